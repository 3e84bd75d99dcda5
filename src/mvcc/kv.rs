//! Reading the keyspace: the live key-values at the head or at a past
//! revision, as `etcdctl get "" --prefix [--rev N]` returns them.

use crate::bolt::{self, Db};
use crate::pb::mvccpb::KeyValue;

use super::revision::{RevKeyError, Revision};
use super::schema::MetaInfo;
use crate::wire::WireError;

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

impl<'a> KeyValueRef<'a> {
    /// Decodes a stored KeyValue. Unknown fields are skipped, as protobuf
    /// does; a known field with another wire type is an error, as in etcd's
    /// generated decoder.
    pub fn decode(b: &'a [u8]) -> Result<KeyValueRef<'a>, WireError> {
        use crate::wire::{expect_bytes, expect_varint};
        let mut kv = KeyValueRef::default();
        let mut fields = crate::wire::Fields::new(b);
        while let Some((num, v)) = fields.next_field()? {
            match num {
                1 => kv.key = expect_bytes(1, v)?,
                2 => kv.create_revision = expect_varint(2, v)? as i64,
                3 => kv.mod_revision = expect_varint(3, v)? as i64,
                4 => kv.version = expect_varint(4, v)? as i64,
                5 => kv.value = expect_bytes(5, v)?,
                6 => kv.lease = expect_varint(6, v)? as i64,
                _ => {}
            }
        }
        Ok(kv)
    }

    /// The user key alone, reading no further than the key field when it
    /// comes first (as etcd writes it); otherwise a full decode.
    pub fn key_of(b: &'a [u8]) -> Result<&'a [u8], WireError> {
        if b.first() == Some(&0x0a)
            && let Ok(Some((1, crate::wire::Value::Bytes(key)))) = crate::wire::Fields::new(b).next_field()
        {
            return Ok(key);
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
    /// More index entries than the index can number.
    #[error("the key bucket has {entries} entries of one kind, more than the index can hold (4294967295)")]
    IndexTooLarge {
        /// How many.
        entries: u64,
    },
    /// A key of the `key` bucket is not a revision key.
    #[error("key bucket{}: {source}", at_page(*.page))]
    RevKey {
        /// The page holding it (none for a revision replayed from the WAL).
        page: Option<bolt::Pgid>,
        /// What is wrong.
        source: RevKeyError,
    },
    /// A value does not decode.
    #[error("key bucket{}: the value at revision {rev} is not a valid KeyValue: {source}", at_page(*.page))]
    Decode {
        /// The page holding it (none when not known).
        page: Option<bolt::Pgid>,
        /// Its revision.
        rev: Revision,
        /// The decode error.
        source: WireError,
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

fn at_page(p: Option<bolt::Pgid>) -> String {
    p.map(|p| format!(", page {p}")).unwrap_or_default()
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
