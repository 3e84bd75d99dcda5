//! The restored db, as `etcdutl snapshot restore` leaves it: the source's
//! buckets with the membership replaced and the raft position reset.
//!
//! When the key and lease buckets do not change (a plain snapshot restore),
//! the source's pages are kept as they are and only the members and meta
//! buckets and a new root are appended, as a bbolt commit would do it;
//! otherwise (WAL replay, revision bump) every bucket is rewritten through
//! the bbolt writer.
//!
//! - `members` holds the new members; `members_removed` is emptied;
//! - `meta/consistent_index` = N (the number of members: the conf-change
//!   entries of the new WAL), `meta/term` = 1, `meta/confState` lists the new
//!   voters (etcdutl 3.5 leaves the old one in place; etcd rewrites it at its
//!   first conf change; writing the right one keeps `check` quiet);
//! - with a revision bump, the key bucket gets an empty record at the newest
//!   revision plus N and a compaction is scheduled there, so etcd's first
//!   start compacts all history below it and revisions never go backwards.

use std::collections::BTreeMap;
use std::io::{Seek, Write};

use crate::bolt::Db;
use crate::bolt::writer::{WriteError, WriteSummary, Writer};
use crate::mvcc::revision::{RevKey, Revision};
use crate::mvcc::schema::meta_keys;

use super::members::ClusterSpec;

/// Errors writing the restored db.
#[derive(Debug, thiserror::Error)]
pub enum RestoreDbError {
    /// Reading the source failed.
    #[error("reading the source db: {0}")]
    Read(#[from] crate::bolt::Error),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The source has no `key` bucket.
    #[error("the source has no `key` bucket: it is not an etcd v3 db")]
    NotEtcd,
}

/// What the restored db is to say.
#[derive(Clone, Debug)]
pub struct DbPlan<'c> {
    /// The new membership.
    pub cluster: &'c ClusterSpec,
    /// `meta/consistent_index`.
    pub consistent_index: u64,
    /// `meta/term`.
    pub term: u64,
    /// `--bump-revision N` (with `--mark-compacted`).
    pub bump_revision: Option<i64>,
    /// Extra key-bucket records to add (revision key -> KeyValue), e.g. from
    /// WAL replay; they must be newer than every stored revision.
    pub extra_revisions: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Meta records to set besides the raft position (e.g. compaction state
    /// changed by WAL replay).
    pub extra_meta: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Leases to add (key -> value) and to delete (keys), from WAL replay.
    pub lease_puts: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Lease keys to delete.
    pub lease_deletes: Vec<Vec<u8>>,
    /// The output already holds a copy of the source's pages (see
    /// [`copies_pages`]); only the changed buckets are appended.
    pub pages_copied: bool,
}

/// Whether a restore with this plan keeps the key and lease buckets as they
/// are, so the source's pages can be copied whole (by the kernel) and only
/// the membership and meta buckets appended.
pub fn copies_pages(plan: &DbPlan<'_>) -> bool {
    plan.extra_revisions.is_empty()
        && plan.bump_revision.is_none()
        && plan.lease_puts.is_empty()
        && plan.lease_deletes.is_empty()
}

/// What was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbOutcome {
    /// The writer's summary.
    pub written: WriteSummary,
    /// The newest main revision in the key bucket after the restore.
    pub revision: i64,
    /// The revision bumped to, if any (also scheduled for compaction).
    pub bumped_to: Option<i64>,
}

/// A bucket's new contents, in key order.
type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

/// The new contents of the buckets a restore rewrites (members, removed
/// members, meta), or `None` for a bucket it does not (only `meta` is read).
fn membership_and_meta(
    plan: &DbPlan<'_>,
    name: &[u8],
    bucket: &Option<crate::bolt::Bucket<'_>>,
    bumped_to: Option<i64>,
) -> Result<Option<Contents>, crate::bolt::Error> {
    Ok(match name {
        b"members" => Some(
            plan.cluster
                .members
                .iter()
                .map(|s| (format!("{:x}", s.id).into_bytes(), s.json().into_bytes()))
                .collect(),
        ),
        b"members_removed" => Some(BTreeMap::new()),
        b"meta" => {
            let mut m: BTreeMap<Vec<u8>, Vec<u8>> = stored(bucket)?.into_iter().collect();
            m.extend(plan.extra_meta.clone());
            m.insert(
                meta_keys::CONSISTENT_INDEX.to_vec(),
                plan.consistent_index.to_be_bytes().to_vec(),
            );
            m.insert(meta_keys::TERM.to_vec(), plan.term.to_be_bytes().to_vec());
            let conf = serde_json::json!({"voters": plan.cluster.ids(), "auto_leave": false});
            m.insert(meta_keys::CONF_STATE.to_vec(), conf.to_string().into_bytes());
            if let Some(b) = bumped_to {
                m.insert(
                    meta_keys::SCHEDULED_COMPACT_REV.to_vec(),
                    Revision { main: b, sub: 0 }.to_key().to_vec(),
                );
            }
            Some(m)
        }
        _ => None,
    })
}

/// The fast path when the key and lease buckets do not change (a plain
/// snapshot restore): the source's pages are copied as they are and only
/// the membership and meta buckets and a new root are appended, the way a
/// bbolt commit writes new pages and leaves the old ones free. Restoring a
/// large snapshot then costs about one copy of the file.
fn write_by_copy<W: Write + Seek>(
    src: &Db<'_>,
    plan: &DbPlan<'_>,
    all: &[Vec<u8>],
    mut out: W,
    newest: i64,
) -> Result<DbOutcome, RestoreDbError> {
    let ps = src.page_size();
    let hwm = src.high_water();
    let image = src
        .data()
        .get(..(hwm as usize).saturating_mul(ps))
        .ok_or(RestoreDbError::NotEtcd)?;
    if !plan.pages_copied {
        out.seek(std::io::SeekFrom::Start(0)).map_err(WriteError::Io)?;
        out.write_all(image).map_err(WriteError::Io)?;
    }
    let mut w = Writer::appending(out, ps as u32, 0.9, src.meta().txid.0 + 1, hwm)?;
    let root = src.root();
    for name in all {
        let bucket = src.bucket(name)?;
        let seq = bucket.as_ref().map_or(0, |b| b.sequence());
        match membership_and_meta(plan, name, &bucket, None)? {
            Some(items) => w.bucket(name, seq, items)?,
            None => match root.get(name)? {
                Some(e) if e.is_bucket() => w.bucket_value(name, e.value)?,
                _ => w.bucket(name, seq, std::iter::empty::<(&[u8], &[u8])>())?,
            },
        }
    }
    let (written, mut out) = w.finish()?;
    out.flush().map_err(WriteError::Io)?;
    Ok(DbOutcome {
        written,
        revision: newest,
        bumped_to: None,
    })
}

/// Key/value pairs of a bucket.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Every pair of a bucket, copied (small buckets only: the key bucket streams).
fn stored(b: &Option<crate::bolt::Bucket<'_>>) -> Result<Pairs, crate::bolt::Error> {
    match b {
        Some(b) => b
            .iter()
            .map(|e| e.map(|e| (e.key.to_vec(), e.value.to_vec())))
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// Writes the restored db of `src` to `out`.
pub fn write_restored_db<W: Write + Seek>(
    src: &Db<'_>,
    plan: &DbPlan<'_>,
    out: W,
    page_size: u32,
) -> Result<DbOutcome, RestoreDbError> {
    let names: Vec<Vec<u8>> = src
        .root()
        .iter()
        .map(|e| e.map(|e| e.key.to_vec()))
        .collect::<Result<_, _>>()?;
    let mut all: Vec<Vec<u8>> = names.clone();
    for must in [
        b"key".as_slice(),
        b"lease",
        b"members",
        b"members_removed",
        b"meta",
    ] {
        if !all.iter().any(|n| n == must) {
            all.push(must.to_vec());
        }
    }
    all.sort();
    if !names.iter().any(|n| n == b"key") {
        return Err(RestoreDbError::NotEtcd);
    }
    // The newest stored main revision (and what replay adds).
    let key_bucket = src.bucket(b"key")?.ok_or(RestoreDbError::NotEtcd)?;
    let last_stored = match key_bucket.cursor().last()? {
        Some(e) => RevKey::parse(e.key).map(|k| k.rev.main).unwrap_or(0),
        None => 0,
    };
    let last_extra = plan
        .extra_revisions
        .keys()
        .next_back()
        .and_then(|k| RevKey::parse(k).ok())
        .map_or(0, |k| k.rev.main);
    let newest = last_stored.max(last_extra);
    let bumped_to = plan.bump_revision.map(|n| newest + n);
    if copies_pages(plan) && page_size as usize == src.page_size() {
        return write_by_copy(src, plan, &all, out, newest);
    }
    let mut w = Writer::new(out, page_size, 0.9, 2)?;
    for name in &all {
        let bucket = src.bucket(name)?;
        let seq = bucket.as_ref().map_or(0, |b| b.sequence());
        if let Some(items) = membership_and_meta(plan, name, &bucket, bumped_to)? {
            w.bucket(name, seq, items)?;
            continue;
        }
        match name.as_slice() {
            b"key" => {
                // Stored revisions stream through; replayed ones and the bump
                // marker are all newer, so they follow in order.
                let b = bucket.expect("checked above");
                let tail = plan
                    .extra_revisions
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .chain(bumped_to.map(|m| (Revision { main: m, sub: 0 }.to_key().to_vec(), Vec::new())));
                let mut err = None;
                let items = b
                    .iter()
                    .map_while(|e| match e {
                        Ok(e) => Some((e.key.to_vec(), e.value.to_vec())),
                        Err(x) => {
                            err = Some(x);
                            None
                        }
                    })
                    .chain(tail);
                w.bucket(name, seq, items)?;
                if let Some(e) = err {
                    return Err(e.into());
                }
            }
            b"lease" => {
                let mut m: BTreeMap<Vec<u8>, Vec<u8>> = stored(&bucket)?.into_iter().collect();
                for k in &plan.lease_deletes {
                    m.remove(k);
                }
                m.extend(plan.lease_puts.clone());
                w.bucket(name, seq, m)?;
            }
            _ => w.bucket(name, seq, stored(&bucket)?)?,
        }
    }
    let (written, mut out) = w.finish()?;
    out.flush().map_err(WriteError::Io)?;
    Ok(DbOutcome {
        written,
        revision: bumped_to.unwrap_or(newest),
        bumped_to,
    })
}
