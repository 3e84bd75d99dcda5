//! Revision keys of the `key` bucket.
//!
//! ```text
//! offset  size  field
//!      0     8  main   u64 big-endian (the store revision)
//!      8     1  '_'    0x5f
//!      9     8  sub    u64 big-endian (index of the change within its txn)
//!     17     1  't'    0x74, only on tombstones (deletes)
//! ```
//!
//! Byte order of the keys equals revision order.

use std::fmt;

/// Length of a revision key without the tombstone marker.
pub const REV_KEY_LEN: usize = 17;
/// Length of a tombstone revision key.
pub const TOMBSTONE_KEY_LEN: usize = 18;

/// A store revision: the main revision and the sub-revision within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Revision {
    /// Main revision (one per transaction that changed something).
    pub main: i64,
    /// Sub-revision (the change's index within its transaction).
    pub sub: i64,
}

impl Revision {
    /// Encodes as the 17-byte key form.
    pub fn to_key(self) -> [u8; REV_KEY_LEN] {
        let mut k = [0u8; REV_KEY_LEN];
        k[0..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        k[8] = b'_';
        k[9..17].copy_from_slice(&(self.sub as u64).to_be_bytes());
        k
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.main, self.sub)
    }
}

/// A decoded key of the `key` bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevKey {
    /// The revision.
    pub rev: Revision,
    /// Whether this is a tombstone (a delete).
    pub tombstone: bool,
}

/// Why a `key` bucket key is not a revision key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevKeyError {
    /// Not 17 or 18 bytes long.
    #[error("revision key is {0} bytes long (expected 17, or 18 for a tombstone)")]
    Length(usize),
    /// Byte 8 is not '_'.
    #[error("revision key byte 8 is 0x{0:02x}, not '_' (0x5f)")]
    Separator(u8),
    /// Byte 17 of an 18-byte key is not 't'.
    #[error("revision key byte 17 is 0x{0:02x}, not the tombstone marker 't' (0x74)")]
    Marker(u8),
    /// The main or sub revision is negative as an int64.
    #[error("revision key holds a negative revision ({main}, {sub})")]
    Negative {
        /// Main as decoded.
        main: i64,
        /// Sub as decoded.
        sub: i64,
    },
}

impl RevKey {
    /// Decodes a `key` bucket key.
    pub fn parse(k: &[u8]) -> Result<RevKey, RevKeyError> {
        let tombstone = match k.len() {
            REV_KEY_LEN => false,
            TOMBSTONE_KEY_LEN => true,
            n => return Err(RevKeyError::Length(n)),
        };
        if k[8] != b'_' {
            return Err(RevKeyError::Separator(k[8]));
        }
        if tombstone && k[17] != b't' {
            return Err(RevKeyError::Marker(k[17]));
        }
        let main = i64::from_be_bytes(k[0..8].try_into().expect("8 bytes"));
        let sub = i64::from_be_bytes(k[9..17].try_into().expect("8 bytes"));
        if main < 0 || sub < 0 {
            return Err(RevKeyError::Negative { main, sub });
        }
        Ok(RevKey {
            rev: Revision { main, sub },
            tombstone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let r = Revision { main: 300, sub: 2 };
        let k = r.to_key();
        assert_eq!(
            RevKey::parse(&k).unwrap(),
            RevKey {
                rev: r,
                tombstone: false
            }
        );
        let mut t = k.to_vec();
        t.push(b't');
        assert!(RevKey::parse(&t).unwrap().tombstone);
        t[17] = b'x';
        assert_eq!(RevKey::parse(&t), Err(RevKeyError::Marker(b'x')));
        assert_eq!(RevKey::parse(b"short"), Err(RevKeyError::Length(5)));
        let mut s = k;
        s[8] = b'-';
        assert_eq!(RevKey::parse(&s), Err(RevKeyError::Separator(b'-')));
        let mut n = k;
        n[0] = 0x80;
        assert!(matches!(RevKey::parse(&n), Err(RevKeyError::Negative { .. })));
    }
}
