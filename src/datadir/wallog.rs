//! The raft log a restore may apply, read from every sound record of a WAL,
//! past damage where the reader re-finds the framing (salvage), but only
//! where the log provably stays continuous.
//!
//! Within a stretch of records read in order, raft's rules apply: an entry
//! at an index at or below the last one replaces it and everything after.
//! Damage is a barrier: the lost record may have been an entry that replaced
//! uncommitted ones, so at a barrier only the entries committed before it
//! (by the last HardState read before it) are kept, and the first entry
//! after it must continue exactly where those end. Anything else is a hole:
//! its indexes are reported lost and nothing after it is used. Entries at or
//! below the db's consistent index never matter (the db holds them).

use std::collections::BTreeMap;

use crate::wal::reader::{self, Event};
use crate::wal::record::{HardState, RecordType};
use crate::wal::{Entry, EntryType, WalDir};

/// An entry of the usable log.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Entry type.
    pub kind: EntryType,
    /// Raft term.
    pub term: u64,
    /// Payload.
    pub data: Vec<u8>,
    /// Whether etcd itself reads it (false: found by salvage past damage).
    pub seen_by_etcd: bool,
}

/// Why the usable log ends before the last entry found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hole {
    /// First lost index.
    pub first: u64,
    /// Last lost index.
    pub last: u64,
    /// Entries found after the hole (not used).
    pub entries_after: u64,
    /// Highest index found after the hole.
    pub last_found: u64,
}

/// The usable log after the db's consistent index.
#[derive(Debug, Default)]
pub struct UsableLog {
    /// Entries by index, continuous from the db's consistent index + 1.
    pub entries: BTreeMap<u64, LogEntry>,
    /// The highest commit index of any sound HardState record.
    pub commit: u64,
    /// Damage met (barriers crossed or stopped at).
    pub barriers: u64,
    /// Uncommitted entries dropped at a barrier (they may have been replaced
    /// by the lost record).
    pub dropped_at_barrier: u64,
    /// The hole the log stops at, if any.
    pub hole: Option<Hole>,
}

/// Reads the usable log of `wal` above consistent index `ci`.
pub fn usable_log(wal: &WalDir, ci: u64) -> UsableLog {
    let segs = wal.segment_bytes();
    let mut out = UsableLog::default();
    // Damage seen since the last entry was taken: the commit index known then.
    let mut barrier: Option<u64> = None;
    let mut stopped = false;
    reader::read(&segs, |ev| match ev {
        Event::Record(rec) => match rec.kind {
            RecordType::State => {
                if let Ok(h) = HardState::decode(rec.record.data) {
                    out.commit = out.commit.max(h.commit.0);
                }
            }
            RecordType::Entry => {
                let Ok(e) = Entry::parse(rec.record.data) else {
                    return;
                };
                if stopped {
                    if let Some(h) = out.hole.as_mut() {
                        h.entries_after += 1;
                        h.last_found = h.last_found.max(e.index.0);
                    }
                    return;
                }
                take(&mut out, &mut barrier, &mut stopped, ci, &e, rec.seen_by_etcd);
            }
            _ => {}
        },
        Event::Damage(_) => {
            if !stopped && barrier.is_none() {
                out.barriers += 1;
                barrier = Some(out.commit);
            }
        }
        Event::SegmentEnd(_) => {}
    });
    out
}

fn take(
    out: &mut UsableLog,
    barrier: &mut Option<u64>,
    stopped: &mut bool,
    ci: u64,
    e: &Entry<'_>,
    seen: bool,
) {
    let i = e.index.0;
    if i <= ci {
        return;
    }
    if let Some(commit_then) = *barrier {
        // Keep only what was committed before the damage.
        let keep = commit_then.max(ci);
        let dropped = out.entries.split_off(&(keep + 1));
        out.dropped_at_barrier += dropped.len() as u64;
        let last = out.entries.keys().next_back().copied().unwrap_or(ci);
        if i <= last {
            // Already held and committed: raft never rewrites it.
            return;
        }
        *barrier = None;
    }
    let last = out.entries.keys().next_back().copied().unwrap_or(ci);
    if i > last + 1 {
        *stopped = true;
        out.hole = Some(Hole {
            first: last + 1,
            last: i - 1,
            entries_after: 1,
            last_found: i,
        });
        return;
    }
    // Raft's rule within a stretch read in order: replace from i on.
    let _ = out.entries.split_off(&i);
    out.entries.insert(
        i,
        LogEntry {
            kind: e.kind,
            term: e.term.0,
            data: e.data.to_vec(),
            seen_by_etcd: seen,
        },
    );
}
