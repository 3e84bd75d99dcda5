//! The keys under a prefix at a revision, with their history state, read
//! without holding values in memory: the keyspace index
//! ([`crate::mvcc::index`]) of the prefix gives, per key, the revision of
//! its live value (or of its last value and its deletion), and values are
//! fetched one at a time by revision.
//!
//! This is the one place the Kubernetes commands read the keyspace.

use crate::mvcc::index::{KeyIndex, KeyRange};
use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::{KeyValueRef, KvError};
use crate::mvcc::revision::Revision;

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
pub struct ObjectIndex<'a> {
    /// The revision read (the head when none was asked).
    pub revision: i64,
    /// The compact revision: history at or below it is gone.
    pub compact_revision: i64,
    /// Keys in key order: live ones, and deleted ones whose last value
    /// survives compaction.
    pub entries: Vec<KeyEntry<'a>>,
}

/// Indexes the keys starting with `prefix` at `rev` (the head when `None`)
/// in the keyspace `ks` (a db, and what the WAL adds on top of it).
pub fn index<'a>(ks: &Keyspace<'a>, rev: Option<i64>, prefix: &[u8]) -> Result<ObjectIndex<'a>, KvError> {
    let range = if prefix.is_empty() {
        KeyRange::All
    } else {
        KeyRange::Prefix(prefix.to_vec())
    };
    let idx = KeyIndex::build(ks, &range)?;
    let at = idx.check_rev(rev.unwrap_or(0))?;
    let mut entries: Vec<KeyEntry<'a>> = Vec::new();
    for (key, revs) in idx.iter() {
        let n = revs.partition_point(|r| r.rev.main <= at);
        let upto = &revs[..n];
        // The newest put, and the delete after it if the newest change is one.
        let Some(put) = upto.iter().rposition(|r| !r.tombstone) else {
            continue; // only deletes survive compaction: nothing to show
        };
        if key.is_empty() {
            continue;
        }
        let last = upto[upto.len() - 1];
        let kv = upto[put].kv()?;
        entries.push(KeyEntry {
            key: kv.key,
            last_put: upto[put].rev,
            deleted_at: last.tombstone.then_some(last.rev),
        });
    }
    Ok(ObjectIndex {
        revision: at,
        compact_revision: idx.compact,
        entries,
    })
}

/// The stored KeyValue of a put at `rev` (borrowed from the file or the
/// overlay).
pub fn value_at<'a>(ks: &Keyspace<'a>, rev: Revision) -> Result<Option<KeyValueRef<'a>>, KvError> {
    let Some(v) = ks.get(rev)? else {
        return Ok(None);
    };
    KeyValueRef::decode(v)
        .map(Some)
        .map_err(|source| KvError::Decode {
            page: None,
            rev,
            source,
        })
}
