//! Reading the keyspace: the live key-values at the head or at a past
//! revision, as `etcdctl get "" --prefix [--rev N]` returns them.

use std::collections::BTreeMap;

use prost::Message;

use crate::bolt::{self, Db};
use crate::pb::mvccpb::KeyValue;

use super::revision::{RevKey, RevKeyError, Revision};
use super::schema::MetaInfo;

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
    #[error("key bucket, page {page}: {source}")]
    RevKey {
        /// The page holding it.
        page: u64,
        /// What is wrong.
        source: RevKeyError,
    },
    /// A value does not decode.
    #[error("key bucket, page {page}: the value at revision {rev} is not a valid KeyValue: {source}")]
    Decode {
        /// The page holding it.
        page: u64,
        /// Its revision.
        rev: Revision,
        /// The decode error.
        source: prost::DecodeError,
    },
    /// The revision asked for was compacted away.
    #[error("revision {rev} has been compacted; the oldest readable revision is {compact}")]
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
/// `etcdctl get "" --prefix --rev N`.
pub fn read_at(db: &Db<'_>, rev: Option<i64>) -> Result<Snapshot, KvError> {
    let meta = read_meta(db)?;
    let compact = meta.compact_main_rev();
    let bucket = db.bucket(b"key")?.ok_or(KvError::NoKeyBucket)?;
    let head = {
        let mut c = bucket.cursor();
        match c.last()? {
            Some(e) => {
                RevKey::parse(e.key)
                    .map_err(|source| KvError::RevKey {
                        page: c.position().map_or(0, |(n, _)| n.loc.pgid().0),
                        source,
                    })?
                    .rev
                    .main
            }
            None => 0,
        }
        .max(compact)
        .max(1)
    };
    let at = rev.filter(|r| *r > 0).unwrap_or(head);
    if at > head {
        return Err(KvError::Future { rev: at, head });
    }
    if at < compact {
        return Err(KvError::Compacted { rev: at, compact });
    }
    let mut live: BTreeMap<Vec<u8>, KeyValue> = BTreeMap::new();
    let mut c = bucket.cursor();
    let mut cur = c.first()?;
    while let Some(e) = cur {
        let page = c.position().map_or(0, |(n, _)| n.loc.pgid().0);
        let rk = RevKey::parse(e.key).map_err(|source| KvError::RevKey { page, source })?;
        if rk.rev.main > at {
            break;
        }
        let kv = KeyValue::decode(e.value).map_err(|source| KvError::Decode {
            page,
            rev: rk.rev,
            source,
        })?;
        if rk.tombstone {
            live.remove(&kv.key);
        } else {
            live.insert(kv.key.clone(), kv);
        }
        cur = c.next_elem()?;
    }
    Ok(Snapshot {
        revision: at,
        compact_revision: compact,
        kvs: live.into_values().collect(),
    })
}
