//! How a stored value is encoded, told by its first bytes, and the protobuf
//! envelope of built-in types.
//!
//! ```text
//! k8s:enc:<provider>:<v1|v2>:<key name>:<payload>   encrypted at rest
//! 6b 38 73 00 <runtime.Unknown>                     protobuf ("k8s\0")
//! {                                                 JSON
//! d9 d9 f7 <CBOR item>                              CBOR, self-described
//!
//! runtime.Unknown (proto2):
//!   1 typeMeta  {1 apiVersion string, 2 kind string}
//!   2 raw       bytes: the object's own protobuf
//!   3 contentEncoding string   4 contentType string
//! ```

use std::fmt;

use crate::wire::{self, Value as Payload, WireError};

/// The magic in front of protobuf values.
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\0";
/// The prefix of values encrypted at rest.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";
/// CBOR self-described tag 55799.
pub const CBOR_MAGIC: &[u8] = &[0xd9, 0xd9, 0xf7];

/// A value's encoding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encoding {
    /// `k8s\0` + runtime.Unknown.
    Protobuf,
    /// JSON.
    Json,
    /// CBOR.
    Cbor,
    /// Encrypted at rest.
    Encrypted(EncryptedPrefix),
    /// None of the above.
    Unknown,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Protobuf => f.write_str("protobuf"),
            Encoding::Json => f.write_str("json"),
            Encoding::Cbor => f.write_str("cbor"),
            Encoding::Encrypted(p) => write!(f, "encrypted ({p})"),
            Encoding::Unknown => f.write_str("unknown"),
        }
    }
}

/// `k8s:enc:<provider>:<version>:<key name>:`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EncryptedPrefix {
    /// aescbc, aesgcm, secretbox, kms.
    pub provider: String,
    /// v1 or v2.
    pub version: String,
    /// The key (or KMS provider) name.
    pub key_name: String,
    /// Length of the whole prefix, payload after it.
    pub len: usize,
}

impl fmt::Display for EncryptedPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = if self.provider == "kms" {
            format!("kms{}", self.version)
        } else {
            self.provider.clone()
        };
        write!(f, "{p}, key {}", self.key_name)
    }
}

/// Parses the encryption prefix of `v`, if it has one.
pub fn encrypted_prefix(v: &[u8]) -> Option<EncryptedPrefix> {
    let rest = v.strip_prefix(ENCRYPTED_PREFIX)?;
    let mut parts = Vec::with_capacity(3);
    let mut pos = 0;
    for _ in 0..3 {
        let end = rest[pos..].iter().position(|&b| b == b':')? + pos;
        // Prefix parts are short names; a value without a ':' nearby is not one.
        if end - pos > 256 {
            return None;
        }
        parts.push(String::from_utf8_lossy(&rest[pos..end]).into_owned());
        pos = end + 1;
    }
    Some(EncryptedPrefix {
        provider: parts[0].clone(),
        version: parts[1].clone(),
        key_name: parts[2].clone(),
        len: ENCRYPTED_PREFIX.len() + pos,
    })
}

/// Tells the encoding from the first bytes.
pub fn sniff(v: &[u8]) -> Encoding {
    if let Some(p) = encrypted_prefix(v) {
        Encoding::Encrypted(p)
    } else if v.starts_with(PROTOBUF_MAGIC) {
        Encoding::Protobuf
    } else if v.starts_with(CBOR_MAGIC) {
        Encoding::Cbor
    } else if v.trim_ascii_start().starts_with(b"{") {
        Encoding::Json
    } else {
        Encoding::Unknown
    }
}

/// The decoded `runtime.Unknown` envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unknown<'a> {
    /// `apiVersion` of the object.
    pub api_version: String,
    /// `kind` of the object.
    pub kind: String,
    /// The object's protobuf bytes.
    pub raw: &'a [u8],
    /// Normally empty.
    pub content_encoding: String,
    /// Normally empty.
    pub content_type: String,
}

/// Parses the envelope after the `k8s\0` magic.
pub fn parse_unknown(b: &[u8]) -> Result<Unknown<'_>, WireError> {
    let mut u = Unknown::default();
    let s = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for f in wire::fields(b) {
        let f = f?;
        let Payload::Bytes(p) = f.value else {
            continue;
        };
        match f.num {
            1 => {
                for t in wire::fields(p) {
                    let t = t?;
                    if let Payload::Bytes(tp) = t.value {
                        match t.num {
                            1 => u.api_version = s(tp),
                            2 => u.kind = s(tp),
                            _ => {}
                        }
                    }
                }
            }
            2 => u.raw = p,
            3 => u.content_encoding = s(p),
            4 => u.content_type = s(p),
            _ => {}
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_every_encoding() {
        assert_eq!(sniff(b"k8s\0\n\x0b\n\x02v1\x12\x05Secret"), Encoding::Protobuf);
        assert_eq!(sniff(b"{\"kind\":\"Widget\"}\n"), Encoding::Json);
        assert_eq!(sniff(&[0xd9, 0xd9, 0xf7, 0xa0]), Encoding::Cbor);
        assert_eq!(sniff(b"\x00\x01"), Encoding::Unknown);
        let Encoding::Encrypted(p) = sniff(b"k8s:enc:aescbc:v1:key1:\x01\x02") else {
            panic!()
        };
        assert_eq!(
            (p.provider.as_str(), p.key_name.as_str(), p.len),
            ("aescbc", "key1", 23)
        );
        assert_eq!(p.to_string(), "aescbc, key key1");
        assert!(encrypted_prefix(b"k8s:enc:aescbc").is_none());
    }

    #[test]
    fn parses_the_envelope() {
        let b = b"\n\x0c\n\x02v1\x12\x06Secret\x12\x02\x0a\x00\x1a\x00\x22\x00";
        let u = parse_unknown(b).unwrap();
        assert_eq!((u.api_version.as_str(), u.kind.as_str()), ("v1", "Secret"));
        assert_eq!(u.raw, b"\x0a\x00");
    }
}
