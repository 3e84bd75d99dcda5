//! The sha256 trailer that `etcdctl snapshot save` appends to the bbolt image.
//!
//! A snapshot file is the bbolt image (`pgid * pageSize` bytes, a multiple of
//! 512) followed by 32 bytes: SHA-256 of everything before them. etcd detects
//! it by `size % 512 == 32`; a raw `member/snap/db` copy has none.

use sha2::{Digest, Sha256};

/// Length of the trailer.
pub const TRAILER_LEN: usize = 32;

/// What the trailer says about a file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Trailer {
    /// No trailer: the size is not 32 more than a multiple of 512 (a raw db,
    /// e.g. `member/snap/db`, or a snapshot whose trailer was lost).
    Absent,
    /// A trailer is present and was not verified.
    Unverified {
        /// The stored digest (hex).
        stored: String,
    },
    /// The trailer matches the SHA-256 of the preceding bytes.
    Valid {
        /// The digest (hex).
        sha256: String,
    },
    /// The trailer does not match: the file was changed or damaged after it was saved.
    Mismatch {
        /// The stored digest (hex).
        stored: String,
        /// The digest of the preceding bytes (hex).
        computed: String,
    },
}

/// Whether a file of `len` bytes carries a trailer, by etcd's rule.
pub fn has_trailer(len: u64) -> bool {
    len % 512 == TRAILER_LEN as u64
}

/// The bytes before the trailer (all of `data` when there is none).
pub fn image(data: &[u8]) -> &[u8] {
    if has_trailer(data.len() as u64) {
        &data[..data.len() - TRAILER_LEN]
    } else {
        data
    }
}

/// Reports the trailer without hashing the file.
pub fn inspect(data: &[u8]) -> Trailer {
    if !has_trailer(data.len() as u64) {
        return Trailer::Absent;
    }
    Trailer::Unverified {
        stored: hex(&data[data.len() - TRAILER_LEN..]),
    }
}

/// Reports the trailer, verifying it against the SHA-256 of the image.
pub fn verify(data: &[u8]) -> Trailer {
    if !has_trailer(data.len() as u64) {
        return Trailer::Absent;
    }
    let (body, stored) = data.split_at(data.len() - TRAILER_LEN);
    let computed = sha256(body);
    if computed.as_slice() == stored {
        Trailer::Valid { sha256: hex(stored) }
    } else {
        Trailer::Mismatch {
            stored: hex(stored),
            computed: hex(&computed),
        }
    }
}

/// Verifies the trailer and returns the SHA-256 of the whole file too, in one
/// pass: the image is hashed, the state is copied to finish the image's
/// digest, and the original goes on over the trailer.
pub fn verify_with_digest(data: &[u8]) -> (Trailer, [u8; 32]) {
    let split = if has_trailer(data.len() as u64) {
        data.len() - TRAILER_LEN
    } else {
        data.len()
    };
    let (body, stored) = data.split_at(split);
    let mut h = Sha256::new();
    crate::progress::begin("hashing", body.len() as u64);
    for chunk in body.chunks(1 << 20) {
        h.update(chunk);
        crate::progress::advance(chunk.len() as u64);
    }
    let trailer = if stored.is_empty() {
        Trailer::Absent
    } else {
        let image: [u8; 32] = h.clone().finalize().into();
        if image.as_slice() == stored {
            Trailer::Valid { sha256: hex(stored) }
        } else {
            Trailer::Mismatch {
                stored: hex(stored),
                computed: hex(&image),
            }
        }
    };
    h.update(stored);
    (trailer, h.finalize().into())
}

/// SHA-256 of `data`, hashed in 1 MiB steps so the pages of a large mmap are
/// touched in order.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    crate::progress::begin("hashing", data.len() as u64);
    for chunk in data.chunks(1 << 20) {
        h.update(chunk);
        crate::progress::advance(chunk.len() as u64);
    }
    h.finalize().into()
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_verifies() {
        let mut f = vec![7u8; 1024];
        assert_eq!(verify(&f), Trailer::Absent);
        let d = sha256(&f);
        f.extend_from_slice(&d);
        assert!(matches!(verify(&f), Trailer::Valid { .. }));
        let n = f.len();
        f[n - 1] ^= 1;
        assert!(matches!(verify(&f), Trailer::Mismatch { .. }));
        assert_eq!(image(&f).len(), 1024);
    }

    #[test]
    fn digest_and_trailer_in_one_pass() {
        let mut f = vec![3u8; 2048];
        let (t, d) = verify_with_digest(&f);
        assert_eq!(t, Trailer::Absent);
        assert_eq!(d, sha256(&f));
        let inner = sha256(&f);
        f.extend_from_slice(&inner);
        let (t, d) = verify_with_digest(&f);
        assert!(matches!(t, Trailer::Valid { .. }));
        assert_eq!(d, sha256(&f));
        assert_eq!(verify(&f), t);
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
