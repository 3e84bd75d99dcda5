//! The alarms in a member's WAL tail: the committed entries after the db's
//! consistent index, which etcd applies again at every start.
//!
//! etcd 3.4 saves the consistent index only with a key write, so after a
//! NOSPACE alarm the alarm's own raft entry (and every put, txn and lease
//! grant the capped applier refused after it) stays above the db's index
//! for good: each start activates the alarm again from the WAL. A disarm
//! written into the db alone would not last. When nothing in that tail
//! changes data (only alarms, no-ops, reads, member attributes, cluster
//! versions, compactions the new db already covers, and the writes an
//! active alarm refused), applying it is only a matter of the alarm state
//! and the consistent index, and [`UnappliedTail::foldable`] says so.

use std::collections::BTreeSet;

use crate::mvcc::schema::Alarm;
use crate::wal::payload::{self, Request};
use crate::wal::{Entry, WalDir};

use super::wallog::usable_log;

/// What the tail does to the alarms, and whether it can be folded into the db.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnappliedTail {
    /// The db's consistent index.
    pub from: u64,
    /// The last committed index (the tail is `from + 1..=to`).
    pub to: u64,
    /// The term of entry `to`.
    pub term: u64,
    /// The alarms active after the tail (the db's, then the tail's actions).
    pub alarms: BTreeSet<(u64, String)>,
    /// The alarms the tail activates (member, alarm, index).
    pub activations: Vec<(u64, String, u64)>,
    /// The first entry that changes data, which keeps the tail from being
    /// folded: (index, what).
    pub blocked_at: Option<(u64, String)>,
}

impl UnappliedTail {
    /// Whether the db may take the tail's end as its consistent index.
    pub fn foldable(&self) -> bool {
        self.blocked_at.is_none()
    }
}

/// Reads the tail of `wal` above `ci`, starting from the db's `alarms`;
/// compactions at or below `compact` (the new db's) change nothing.
pub fn alarm_tail(wal: &WalDir, ci: u64, alarms: &[Alarm], compact: i64) -> UnappliedTail {
    let log = usable_log(wal, ci);
    let mut t = UnappliedTail {
        from: ci,
        to: ci,
        alarms: alarms.iter().map(|a| (a.member_id, a.alarm.clone())).collect(),
        ..UnappliedTail::default()
    };
    if log.hole.is_some() {
        t.blocked_at = Some((ci + 1, "a damaged or missing stretch of the WAL".into()));
    }
    for (&i, e) in log.entries.range(ci + 1..=log.commit.max(ci)) {
        let entry = Entry {
            term: crate::wal::Term(e.term),
            index: crate::wal::Index(i),
            kind: e.kind,
            data: &e.data,
        };
        let p = payload::decode(&entry);
        let capped = t.alarms.iter().any(|(_, a)| a == "NOSPACE" || a == "CORRUPT");
        match &p.request {
            Request::Alarm {
                action,
                member_id,
                alarm,
            } => match action.as_str() {
                "activate" => {
                    t.alarms.insert((member_id.0, alarm.clone()));
                    t.activations.push((member_id.0, alarm.clone(), i));
                }
                "deactivate" => {
                    t.alarms.remove(&(member_id.0, alarm.clone()));
                }
                _ => {}
            },
            Request::Noop
            | Request::Empty
            | Request::Range { .. }
            | Request::MemberAttr { .. }
            | Request::ClusterVersion { .. }
            | Request::AuthStatus
            | Request::Authenticate { .. } => {}
            Request::Compaction { revision, .. } if *revision <= compact => {}
            // What an active alarm's applier refuses changes nothing.
            Request::Put { .. } | Request::LeaseGrant { .. } if capped => {}
            Request::Txn { success, failure, .. } if capped && has_put(success, failure) => {}
            other => {
                if t.blocked_at.is_none() {
                    t.blocked_at = Some((i, other.kind().to_string()));
                }
            }
        }
        t.to = i;
        t.term = e.term;
    }
    t
}

/// Whether a txn puts anything (etcd's quota cost of a txn counts its puts,
/// nested txns included).
fn has_put(success: &[Request], failure: &[Request]) -> bool {
    success.iter().chain(failure).any(|r| match r {
        Request::Put { .. } => true,
        Request::Txn { success, failure, .. } => has_put(success, failure),
        _ => false,
    })
}
