//! The keys under a prefix at a revision, with their history state, read
//! without holding values in memory: one pass over the `key` bucket builds a
//! small index (key → revision of its live value, or of its last value and
//! its deletion), and values are fetched one at a time by revision.
//!
//! This is the one place the Kubernetes commands read the keyspace; a faster
//! keyspace index can replace [`index`] without touching them.

use crate::bolt::{Bucket, Db};
use crate::mvcc::kv::{KeyValueRef, KvError, read_meta};
use crate::mvcc::revision::{RevKey, Revision};

/// One key's state at the revision read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEntry<'a> {
    /// The key (borrowed from the file).
    pub key: &'a [u8],
    /// Revision of its newest value at or below the revision read.
    pub last_put: Revision,
    /// When the newest change is a delete: its revision.
    pub deleted_at: Option<Revision>,
}

/// The keys under a prefix at one revision, sorted by key.
#[derive(Clone, Debug, Default)]
pub struct KeyIndex<'a> {
    /// The revision read (the head when none was asked).
    pub revision: i64,
    /// The compact revision: history at or below it is gone.
    pub compact_revision: i64,
    /// Keys in key order: live ones, and deleted ones whose last value
    /// survives compaction.
    pub entries: Vec<KeyEntry<'a>>,
}

fn key_bucket<'a>(db: &Db<'a>) -> Result<Bucket<'a>, KvError> {
    db.bucket(b"key")?.ok_or(KvError::NoKeyBucket)
}

/// Indexes the keys starting with `prefix` at `rev` (the head when `None`).
pub fn index<'a>(db: &Db<'a>, rev: Option<i64>, prefix: &[u8]) -> Result<KeyIndex<'a>, KvError> {
    let compact = read_meta(db)?.compact_main_rev();
    let bucket = key_bucket(db)?;
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
    // Every change under the prefix, in revision order: (key, revision, delete).
    let mut changes: Vec<(&'a [u8], Revision, bool)> = Vec::new();
    let mut c = bucket.cursor();
    let mut cur = c.first()?;
    while let Some(e) = cur {
        let page = c.position().map_or(0, |(n, _)| n.loc.pgid().0);
        let rk = RevKey::parse(e.key).map_err(|source| KvError::RevKey { page, source })?;
        if rk.rev.main > at {
            break;
        }
        let kv = KeyValueRef::decode(e.value).map_err(|source| KvError::Decode {
            page,
            rev: rk.rev,
            source,
        })?;
        if kv.key.starts_with(prefix) {
            changes.push((kv.key, rk.rev, rk.tombstone));
        }
        cur = c.next_elem()?;
    }
    // Stable: each key's changes stay in revision order.
    changes.sort_by_key(|&(k, _, _)| k);
    let mut entries: Vec<KeyEntry<'a>> = Vec::new();
    for group in changes.chunk_by(|a, b| a.0 == b.0) {
        // The newest put, and the delete after it if the newest change is one.
        let Some(put) = group.iter().rposition(|c| !c.2) else {
            continue; // only deletes survive compaction: nothing to show
        };
        let last = group[group.len() - 1];
        entries.push(KeyEntry {
            key: group[put].0,
            last_put: group[put].1,
            deleted_at: last.2.then_some(last.1),
        });
    }
    Ok(KeyIndex {
        revision: at,
        compact_revision: compact,
        entries,
    })
}

/// The stored KeyValue of a put at `rev` (borrowed from the file).
pub fn value_at<'a>(db: &Db<'a>, rev: Revision) -> Result<Option<KeyValueRef<'a>>, KvError> {
    let bucket = key_bucket(db)?;
    let Some(e) = bucket.get(&rev.to_key())? else {
        return Ok(None);
    };
    KeyValueRef::decode(e.value)
        .map(Some)
        .map_err(|source| KvError::Decode { page: 0, rev, source })
}
