//! Reading the keyspace: the live key-values at the head or at a past
//! revision, as `etcdctl get "" --prefix [--rev N]` returns them.

use crate::bolt::{self, Db};
use crate::pb::mvccpb::KeyValue;

use super::index::{Index, KeyRange};
use super::revision::{RevKeyError, Revision};
use super::schema::MetaInfo;

/// A `mvccpb.KeyValue` decoded without copying: key and value borrow from the
/// stored bytes.
///
/// ```text
/// field  wire      name
///     1  bytes     key
///     2  varint    create_revision (int64)
///     3  varint    mod_revision (int64)
///     4  varint    version (int64)
///     5  bytes     value
///     6  varint    lease (int64)
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyValueRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// Revision of the key's creation (of this generation).
    pub create_revision: i64,
    /// Revision of this change.
    pub mod_revision: i64,
    /// Version within the generation (1 at creation).
    pub version: i64,
    /// The value.
    pub value: &'a [u8],
    /// Attached lease (0 for none).
    pub lease: i64,
}

/// Why bytes are not a `KeyValue`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset} of the record")]
pub struct KvDecodeError {
    /// Byte offset within the value.
    pub offset: usize,
    /// What is wrong.
    pub what: &'static str,
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, KvDecodeError> {
    let start = *pos;
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = b.get(*pos) else {
            return Err(KvDecodeError {
                offset: start,
                what: "truncated varint",
            });
        };
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err(KvDecodeError {
                offset: start,
                what: "varint longer than 64 bits",
            });
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(KvDecodeError {
        offset: start,
        what: "varint longer than 10 bytes",
    })
}

impl<'a> KeyValueRef<'a> {
    /// Decodes a stored KeyValue. Unknown fields are skipped, as protobuf does.
    pub fn decode(b: &'a [u8]) -> Result<KeyValueRef<'a>, KvDecodeError> {
        let mut kv = KeyValueRef::default();
        let mut pos = 0;
        while pos < b.len() {
            let tag_at = pos;
            let tag = varint(b, &mut pos)?;
            let (field, wire) = (tag >> 3, tag & 7);
            if field == 0 {
                return Err(KvDecodeError {
                    offset: tag_at,
                    what: "field number 0",
                });
            }
            match wire {
                0 => {
                    let v = varint(b, &mut pos)? as i64;
                    match field {
                        2 => kv.create_revision = v,
                        3 => kv.mod_revision = v,
                        4 => kv.version = v,
                        6 => kv.lease = v,
                        1 | 5 => {
                            return Err(KvDecodeError {
                                offset: tag_at,
                                what: "bytes field with varint wire type",
                            });
                        }
                        _ => {}
                    }
                }
                2 => {
                    let len = varint(b, &mut pos)?;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|l| pos.checked_add(l))
                        .filter(|&e| e <= b.len())
                        .ok_or(KvDecodeError {
                            offset: tag_at,
                            what: "length runs past the end",
                        })?;
                    let bytes = &b[pos..end];
                    pos = end;
                    match field {
                        1 => kv.key = bytes,
                        5 => kv.value = bytes,
                        2 | 3 | 4 | 6 => {
                            return Err(KvDecodeError {
                                offset: tag_at,
                                what: "integer field with bytes wire type",
                            });
                        }
                        _ => {}
                    }
                }
                1 => {
                    pos = pos
                        .checked_add(8)
                        .filter(|&e| e <= b.len())
                        .ok_or(KvDecodeError {
                            offset: tag_at,
                            what: "truncated fixed64",
                        })?
                }
                5 => {
                    pos = pos
                        .checked_add(4)
                        .filter(|&e| e <= b.len())
                        .ok_or(KvDecodeError {
                            offset: tag_at,
                            what: "truncated fixed32",
                        })?
                }
                _ => {
                    return Err(KvDecodeError {
                        offset: tag_at,
                        what: "invalid wire type",
                    });
                }
            }
        }
        Ok(kv)
    }

    /// The user key alone, reading no further than the key field when it
    /// comes first (as etcd writes it); otherwise a full decode.
    pub fn key_of(b: &'a [u8]) -> Result<&'a [u8], KvDecodeError> {
        if b.first() == Some(&0x0a) {
            let mut pos = 1;
            if let Ok(len) = varint(b, &mut pos)
                && let Some(end) = usize::try_from(len).ok().and_then(|l| pos.checked_add(l))
                && end <= b.len()
            {
                return Ok(&b[pos..end]);
            }
        }
        KeyValueRef::decode(b).map(|kv| kv.key)
    }

    /// An owned copy.
    pub fn to_owned(&self) -> KeyValue {
        KeyValue {
            key: self.key.to_vec(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: self.value.to_vec(),
            lease: self.lease,
        }
    }
}

/// Errors reading the keyspace.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The bbolt layer failed.
    #[error(transparent)]
    Bolt(#[from] bolt::Error),
    /// The db has no `key` bucket.
    #[error("the db has no `key` bucket: it is not an etcd v3 backend")]
    NoKeyBucket,
    /// A key of the `key` bucket is not a revision key.
    #[error("key bucket{}: {source}", at_page(*.page))]
    RevKey {
        /// The page holding it (none for a revision replayed from the WAL).
        page: Option<u64>,
        /// What is wrong.
        source: RevKeyError,
    },
    /// A value does not decode.
    #[error("key bucket{}: the value at revision {rev} is not a valid KeyValue: {source}", at_page(*.page))]
    Decode {
        /// The page holding it (none when not known).
        page: Option<u64>,
        /// Its revision.
        rev: Revision,
        /// The decode error.
        source: KvDecodeError,
    },
    /// The revision asked for was compacted away.
    #[error("required revision {rev} has been compacted (the compact revision is {compact})")]
    Compacted {
        /// Asked.
        rev: i64,
        /// Compact revision.
        compact: i64,
    },
    /// The revision asked for is newer than the head.
    #[error("revision {rev} is in the future; the head revision is {head}")]
    Future {
        /// Asked.
        rev: i64,
        /// Head.
        head: i64,
    },
}

fn at_page(p: Option<u64>) -> String {
    p.map(|p| format!(", page {p}")).unwrap_or_default()
}

/// The keyspace at one revision.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The revision the keyspace is read at (the head when none was asked).
    pub revision: i64,
    /// The compact revision.
    pub compact_revision: i64,
    /// Live keys in key order.
    pub kvs: Vec<KeyValue>,
}

/// Reads the `meta` bucket.
pub fn read_meta(db: &Db<'_>) -> Result<MetaInfo, bolt::Error> {
    let mut m = MetaInfo::default();
    if let Some(b) = db.bucket(b"meta")? {
        for e in b.iter() {
            let e = e?;
            // Malformed values are reported by `check`; here they read as absent.
            let _ = m.apply(e.key, e.value);
        }
    }
    Ok(m)
}

/// The live key-values at `rev` (the head when `None`), like
/// `etcdctl get "" --prefix --rev N`, copied out of the file. For large
/// keyspaces prefer [`super::index::Index`], which copies nothing.
pub fn read_at(db: &Db<'_>, rev: Option<i64>) -> Result<Snapshot, KvError> {
    let index = Index::build(&super::keyspace::Keyspace::db(*db), &KeyRange::All)?;
    let at = index.check_rev(rev.unwrap_or(0))?;
    let kvs = index
        .live_at(at)
        .map(|(_, r)| r.kv().map(|kv| kv.to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Snapshot {
        revision: at,
        compact_revision: index.compact,
        kvs,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn zero_copy_decoder_agrees_with_prost() {
        let kv = KeyValue {
            key: b"/registry/pods/default/x".to_vec(),
            create_revision: 5,
            mod_revision: 1 << 40,
            version: 3,
            value: vec![0, 1, 2, 255],
            lease: -7,
        };
        let bytes = kv.encode_to_vec();
        assert_eq!(KeyValueRef::decode(&bytes).unwrap().to_owned(), kv);
        // Every truncation is an error or a shorter record, never a panic.
        for n in 0..bytes.len() {
            let _ = KeyValueRef::decode(&bytes[..n]);
        }
        assert!(KeyValueRef::decode(&[0x0f]).is_err());
        assert!(KeyValueRef::decode(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert_eq!(KeyValueRef::decode(&[]).unwrap(), KeyValueRef::default());
        assert_eq!(KeyValueRef::key_of(&bytes).unwrap(), kv.key.as_slice());
        assert!(KeyValueRef::key_of(&[0x0a, 0x05, b'a']).is_err());
    }
}
