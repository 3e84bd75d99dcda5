//! Salvage of a member's data dir: the damaged db together with its WAL.
//!
//! The WAL holds every committed raft entry since the member's last
//! snapshot. When it still holds the log from index 1 (etcd keeps it until
//! `--snapshot-count` entries, 100000 by default, were applied), replaying
//! it into an empty db rebuilds every revision with the numbers etcd gave
//! them (applying the same entries in the same order is what etcd does), so
//! what the damaged db lost comes back from the log. A rebuilt record must
//! equal the db's copy wherever both exist, or the log is not used.
//! Otherwise the entries after the db's consistent index are replayed onto
//! the salvaged db, as etcd would at start.

use std::io::Cursor;

use super::tree::Buckets;
use super::{Salvaged, collect, finish, summarize, write_db};
use crate::bolt::Db;
use crate::datadir::replay::{Replayed, empty_db, replay};
use crate::mvcc::schema::meta_keys;
use crate::wal::WalDir;

/// What the WAL gave.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalUse {
    /// `rebuilt`: the whole log replayed into an empty db; `replayed`:
    /// entries after the db's consistent index applied; `none`.
    pub mode: String,
    /// Revision records the WAL gave that the damaged db no longer had.
    pub revisions_recovered: u64,
    /// Entries applied.
    pub applied_entries: u64,
    /// The last raft index applied (the output's consistent index).
    pub applied_to_index: u64,
    /// Why the log was not used, or what it could not do.
    pub notes: Vec<String>,
}

/// Salvages a member's db (`db`, empty when it has none) with its WAL.
pub fn salvage_member(db: &[u8], wal: &WalDir) -> Salvaged {
    let (mut buckets, tree, report) = if db.is_empty() {
        let e = empty_db().unwrap_or_default();
        let (b, t, mut r) = collect(&e);
        r.notes
            .push("the member has no db: it is rebuilt from the WAL".into());
        (b, t, r)
    } else {
        collect(db)
    };
    let mut added: Vec<Vec<u8>> = Vec::new();
    let mut used = WalUse {
        mode: "none".into(),
        ..WalUse::default()
    };
    let db_index = buckets
        .get(b"meta".as_slice())
        .and_then(|m| super::tree::meta_info(m).consistent_index);
    match rebuild(wal) {
        Ok(r) if db_index.is_some_and(|i| r.report.applied_to_index < i) => used.notes.push(format!(
            "the WAL's log ends at index {}, before the db's consistent index {}: it cannot vouch for the db",
            r.report.applied_to_index,
            db_index.unwrap_or(0)
        )),
        Ok(r) => match merge(&mut buckets, &r) {
            Ok(a) => {
                used.mode = "rebuilt".into();
                added = a;
                used.applied_entries = r.report.applied_entries;
                used.applied_to_index = r.report.applied_to_index;
            }
            Err(why) => used.notes.push(why),
        },
        Err(why) => used.notes.push(why),
    }
    let only_key_pages = tree
        .as_ref()
        .is_some_and(|t| t.unreadable.iter().all(|u| u.bucket == "key"));
    let mut s = finish(buckets, tree.as_ref(), report);
    // Older copies the compaction drops again do not count.
    let kept = s.buckets.get(b"key".as_slice());
    used.revisions_recovered = added
        .iter()
        .filter(|k| kept.is_some_and(|b| b.contains_key(*k)))
        .count() as u64;
    if used.mode == "rebuilt" && only_key_pages {
        // The log from index 1 to past the db's index holds every revision
        // the db held: pages that could not be read lost nothing the log
        // did not give back.
        let r = &mut s.report;
        r.possibly_lost.clear();
        r.lost_from_revision = None;
        r.possibly_lost_after_revision = None;
        r.complete = r.lost_revision_ranges.is_empty()
            && r.keys_with_lost_history.is_empty()
            && r.older_tree.is_none();
    }
    if used.mode == "rebuilt" {
        set_index(&mut s, used.applied_to_index);
    } else {
        replay_tail(&mut s, wal, &mut used);
    }
    s.report.wal = Some(used);
    s
}

/// The whole log replayed into an empty db, if the WAL still holds it from
/// index 1 and every committed entry applied.
fn rebuild(wal: &WalDir) -> Result<Replayed, String> {
    let empty = empty_db().map_err(|e| e.to_string())?;
    let (db, _) = Db::open(&empty).map_err(|e| e.to_string())?;
    let r = replay(&db, wal).map_err(|e| e.to_string())?;
    if let Some(h) = &r.report.lost {
        return Err(format!(
            "the WAL does not hold the log from index 1 (entries {}..{} are not in it, as after a snapshot): it cannot rebuild the db",
            h.first, h.last
        ));
    }
    if let Some((i, why)) = &r.report.stopped_at {
        return Err(format!("the log from index 1 stops at entry {i}: {why}"));
    }
    if r.report.applied_entries == 0 {
        return Err("the WAL holds no committed entry to rebuild from".into());
    }
    Ok(r)
}

/// Adds the rebuilt records the db lost; refuses the log when a record both
/// have differs (then its revisions are not the db's).
fn merge(buckets: &mut Buckets, r: &Replayed) -> Result<Vec<Vec<u8>>, String> {
    let keys = buckets.entry(b"key".to_vec()).or_default();
    if let Some((k, _)) = r
        .changes
        .revisions
        .iter()
        .find(|(k, v)| keys.get(*k).is_some_and(|have| have != *v))
    {
        return Err(format!(
            "the WAL's replay gives a different record at revision key {} than the db: its log is not the db's, so it was not used",
            crate::bolt::show_key(k)
        ));
    }
    let mut added = Vec::new();
    for (k, v) in &r.changes.revisions {
        if !keys.contains_key(k) {
            keys.insert(k.clone(), v.clone());
            added.push(k.clone());
        }
    }
    let leases = buckets.entry(b"lease".to_vec()).or_default();
    for (k, v) in &r.changes.lease_puts {
        leases.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for k in &r.changes.lease_deletes {
        leases.remove(k);
    }
    Ok(added)
}

/// Entries after the salvaged db's consistent index, applied on top.
fn replay_tail(s: &mut Salvaged, wal: &WalDir, used: &mut WalUse) {
    let Some(ci) = s.report.consistent_index else {
        used.notes.push("the db's consistent index is lost: which WAL entries it already holds is unknown, so none was applied".into());
        return;
    };
    let mut buf = Cursor::new(Vec::new());
    if let Err(e) = write_db(s, &mut buf, s.report.page_size) {
        used.notes
            .push(format!("cannot stage the salvaged db for the replay: {e}"));
        return;
    }
    let bytes = buf.into_inner();
    let r = match Db::open(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|(db, _)| replay(&db, wal).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            used.notes
                .push(format!("the WAL could not be replayed onto the salvaged db: {e}"));
            return;
        }
    };
    // Committed entries that could not be applied are committed writes the
    // output does not have.
    if let Some((i, why)) = &r.report.stopped_at {
        s.report
            .possibly_lost
            .push(format!("the writes of committed WAL entry {i} and after: {why}"));
    }
    if let Some(h) = &r.report.lost {
        s.report.possibly_lost.push(format!(
            "the writes of WAL entries {}..{}: they are not in the WAL, and applying stopped there",
            h.first, h.last
        ));
    }
    s.report.complete &= s.report.possibly_lost.is_empty();
    if let Some(lost) = s.report.lost_from_revision {
        used.notes.push(format!(
            "revisions from {lost} on were lost from the db; the WAL entries after its consistent index {ci} were applied from revision {}, so later revision numbers differ from the cluster's",
            s.report.revision_range.map_or(1, |(_, b)| b + 1)
        ));
    }
    used.mode = "replayed".into();
    used.applied_entries = r.report.applied_entries;
    used.applied_to_index = r.report.applied_to_index.max(ci);
    let c = &r.changes;
    let keys = s.buckets.entry(b"key".to_vec()).or_default();
    keys.extend(c.revisions.iter().map(|(k, v)| (k.clone(), v.clone())));
    s.buckets
        .entry(b"meta".to_vec())
        .or_default()
        .extend(c.meta.clone());
    let leases = s.buckets.entry(b"lease".to_vec()).or_default();
    leases.extend(c.lease_puts.clone());
    for k in &c.lease_deletes {
        leases.remove(k);
    }
    if r.report.applied_entries > 0 {
        set_index(s, used.applied_to_index);
    }
}

/// The output's consistent index, and the summary, after the WAL was used.
fn set_index(s: &mut Salvaged, index: u64) {
    s.buckets
        .entry(b"meta".to_vec())
        .or_default()
        .insert(meta_keys::CONSISTENT_INDEX.to_vec(), index.to_be_bytes().to_vec());
    s.report.consistent_index = Some(index);
    if let Some(keys) = s.buckets.get(b"key".as_slice()) {
        summarize(keys, &mut s.report);
    }
}

/// Salvages the member dir (or data dir) at `path`: its db with its WAL.
pub fn salvage_dir(path: &std::path::Path) -> Result<Salvaged, String> {
    let layout = crate::datadir::resolve(path, None).map_err(|e| e.to_string())?;
    let wal = WalDir::open(&layout.wal).map_err(|e| format!("{}: {e}", layout.wal.display()))?;
    let has_db = std::fs::metadata(&layout.db).is_ok_and(|m| m.is_file() && m.len() > 0);
    if !has_db {
        return Ok(salvage_member(&[], &wal));
    }
    let file =
        crate::source::MappedFile::open(&layout.db).map_err(|e| format!("{}: {e}", layout.db.display()))?;
    Ok(salvage_member(file.bytes(), &wal))
}
