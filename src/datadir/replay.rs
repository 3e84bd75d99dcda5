//! Replaying committed WAL entries onto a db: the writes a member made after
//! its last backend commit (etcd batches commits; a crash loses up to the
//! batch interval from the db, not from the WAL). Puts, deletes, txns
//! (compares evaluated against the state as it is then), compactions and
//! lease grants and revokes are applied with etcd's revision semantics: one
//! main revision per request that changes something, one sub revision per
//! change within it.
//!
//! What is not applied (auth changes, membership changes, which a restore
//! rewrites anyway, v2 requests) is counted and reported.

use std::collections::{BTreeMap, HashMap};

use prost::Message;

use crate::bolt::Db;
use crate::mvcc::index::{KeyIndex, KeyRange};
use crate::mvcc::keyspace::{Keyspace, Overlay};
use crate::mvcc::kv::{KvError, read_meta};
use crate::mvcc::revision::Revision;
use crate::mvcc::schema::{decode_lease, meta_keys};
use crate::pb::{leasepb, mvccpb};
use crate::wal::payload::{self, Compare, CompareValue, Request};
use crate::wal::{Entry, EntryType, ScanOptions, WalDir};

use super::wallog::{Hole, usable_log};

/// A key's current state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Kv {
    create: i64,
    modified: i64,
    version: i64,
    lease: i64,
    value: Vec<u8>,
}

/// What a replay did.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    /// The db's consistent index: entries up to it were already in the db.
    pub db_consistent_index: u64,
    /// The WAL's commit index (from its last HardState).
    pub wal_commit: u64,
    /// Entries applied (committed, after the db's index).
    pub applied_entries: u64,
    /// The last raft index applied.
    pub applied_to_index: u64,
    /// The db's revision before and after.
    pub revision_before: i64,
    /// The revision after the replay.
    pub revision_after: i64,
    /// Requests applied, by kind.
    pub applied: BTreeMap<String, u64>,
    /// Requests not applied, by kind, with why.
    pub not_applied: BTreeMap<String, u64>,
    /// Entries after the commit index (not committed: dropped, as etcd drops them).
    pub uncommitted_entries: u64,
    /// Applied entries that etcd itself would not read (found by salvage
    /// past damage).
    pub salvaged_entries: u64,
    /// Indexes lost to damage or missing segments, where applying stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<Hole>,
    /// A committed entry that could not be decoded, where applying stopped:
    /// (index, why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<(u64, String)>,
    /// Problems reading the WAL.
    pub notes: Vec<String>,
}

/// The result of a replay: what etcd applies on top of the db, and the
/// report.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The records to add (revisions, leases, meta).
    pub changes: Overlay,
    /// The report.
    pub report: ReplayReport,
}

/// The replay state: the db's keys as of its last commit, with changes on top.
struct State<'a> {
    index: KeyIndex<'a>,
    overlay: BTreeMap<Vec<u8>, Option<Kv>>,
    leases: HashMap<i64, (i64, i64)>,
    rev: i64,
    compact: i64,
    out: Replayed,
}

impl State<'_> {
    fn base(&self, key: &[u8]) -> Option<Kv> {
        let revs = self.index.history(key);
        let last = revs.last()?;
        if last.tombstone {
            return None;
        }
        let kv = last.kv().ok()?;
        Some(Kv {
            create: kv.create_revision,
            modified: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
            value: kv.value.to_vec(),
        })
    }

    fn get(&self, key: &[u8]) -> Option<Kv> {
        match self.overlay.get(key) {
            Some(v) => v.clone(),
            None => self.base(key),
        }
    }

    /// Live keys in [key, end) (end empty: just key; end = "\0": every key >= key).
    fn range(&self, key: &[u8], end: Option<&[u8]>) -> Vec<(Vec<u8>, Kv)> {
        let Some(end) = end.filter(|e| !e.is_empty()) else {
            return self
                .get(key)
                .map(|kv| vec![(key.to_vec(), kv)])
                .unwrap_or_default();
        };
        let upto = |k: &[u8]| end == b"\0" || k < end;
        let mut keys: Vec<Vec<u8>> = self
            .index
            .iter_from(key)
            .map(|(k, _)| k)
            .take_while(|k| upto(k))
            .map(<[u8]>::to_vec)
            .collect();
        keys.extend(
            self.overlay
                .range(key.to_vec()..)
                .map(|(k, _)| k)
                .take_while(|k| upto(k))
                .cloned(),
        );
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| self.get(&k).map(|kv| (k, kv)))
            .collect()
    }

    fn compare(&self, c: &Compare) -> bool {
        let end = c.range_end.as_ref().map(|d| d.0.as_slice());
        let kvs = self.range(&c.key.0, end);
        if kvs.is_empty() {
            if matches!(c.against, CompareValue::Value(_)) {
                return false;
            }
            let zero = Kv {
                create: 0,
                modified: 0,
                version: 0,
                lease: 0,
                value: Vec::new(),
            };
            return compare_kv(c, &zero);
        }
        kvs.iter().all(|(_, kv)| compare_kv(c, kv))
    }
}

fn compare_kv(c: &Compare, kv: &Kv) -> bool {
    use std::cmp::Ordering;
    let ord = match &c.against {
        CompareValue::Version(v) => kv.version.cmp(v),
        CompareValue::CreateRevision(v) => kv.create.cmp(v),
        CompareValue::ModRevision(v) => kv.modified.cmp(v),
        CompareValue::Lease(v) => kv.lease.cmp(v),
        CompareValue::Value(v) => kv.value.as_slice().cmp(v.0.as_slice()),
        CompareValue::None => match c.target {
            "version" => kv.version.cmp(&0),
            "create" => kv.create.cmp(&0),
            "mod" => kv.modified.cmp(&0),
            "lease" => kv.lease.cmp(&0),
            _ => kv.value.as_slice().cmp(&[]),
        },
    };
    match c.result {
        "=" => ord == Ordering::Equal,
        ">" => ord == Ordering::Greater,
        "<" => ord == Ordering::Less,
        "!=" => ord != Ordering::Equal,
        _ => false,
    }
}

/// One change within a request.
enum Change {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
        ignore_value: bool,
        ignore_lease: bool,
    },
    Delete {
        key: Vec<u8>,
        end: Option<Vec<u8>>,
    },
}

/// Collects the changes a request makes (the txn branch chosen now).
fn changes(state: &State<'_>, r: &Request, out: &mut Vec<Change>) {
    match r {
        Request::Put {
            key,
            value,
            lease,
            ignore_value,
            ignore_lease,
            ..
        } => out.push(Change::Put {
            key: key.0.clone(),
            value: value.0.clone(),
            lease: *lease,
            ignore_value: *ignore_value,
            ignore_lease: *ignore_lease,
        }),
        Request::DeleteRange { key, range_end, .. } => out.push(Change::Delete {
            key: key.0.clone(),
            end: range_end.as_ref().map(|d| d.0.clone()),
        }),
        Request::Txn {
            compares,
            success,
            failure,
        } => {
            let ok = compares.iter().all(|c| state.compare(c));
            for op in if ok { success } else { failure } {
                changes(state, op, out);
            }
        }
        _ => {}
    }
}

fn kv_bytes(key: &[u8], kv: &Kv) -> Vec<u8> {
    mvccpb::KeyValue {
        key: key.to_vec(),
        create_revision: kv.create,
        mod_revision: kv.modified,
        version: kv.version,
        value: kv.value.clone(),
        lease: kv.lease,
    }
    .encode_to_vec()
}

impl State<'_> {
    /// Applies the changes of one request at the next main revision;
    /// returns whether anything changed.
    fn apply(&mut self, changes: Vec<Change>) -> Result<bool, String> {
        // A put on a lease that does not exist fails the whole request.
        for c in &changes {
            if let Change::Put {
                lease,
                ignore_lease: false,
                ..
            } = c
                && *lease != 0
                && !self.leases.contains_key(lease)
            {
                return Err(format!("lease {lease:x} not found"));
            }
        }
        let main = self.rev + 1;
        let mut sub = 0i64;
        for c in changes {
            match c {
                Change::Put {
                    key,
                    value,
                    lease,
                    ignore_value,
                    ignore_lease,
                } => {
                    let prev = self.get(&key);
                    let kv = Kv {
                        create: prev.as_ref().map_or(main, |p| p.create),
                        modified: main,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        lease: if ignore_lease {
                            prev.as_ref().map_or(0, |p| p.lease)
                        } else {
                            lease
                        },
                        value: if ignore_value {
                            prev.as_ref().map(|p| p.value.clone()).unwrap_or_default()
                        } else {
                            value
                        },
                    };
                    let rk = Revision { main, sub }.to_key().to_vec();
                    self.out.changes.revisions.insert(rk, kv_bytes(&key, &kv));
                    self.overlay.insert(key, Some(kv));
                    sub += 1;
                }
                Change::Delete { key, end } => {
                    for (k, _) in self.range(&key, end.as_deref()) {
                        let mut rk = Revision { main, sub }.to_key().to_vec();
                        rk.push(b't');
                        let tomb = mvccpb::KeyValue {
                            key: k.clone(),
                            ..Default::default()
                        };
                        self.out.changes.revisions.insert(rk, tomb.encode_to_vec());
                        self.overlay.insert(k, None);
                        sub += 1;
                    }
                }
            }
        }
        if sub > 0 {
            self.rev = main;
        }
        Ok(sub > 0)
    }

    fn revoke(&mut self, id: i64) -> bool {
        if self.leases.remove(&id).is_none() {
            return false;
        }
        let key = (id as u64).to_be_bytes().to_vec();
        self.out.changes.lease_puts.remove(&key);
        self.out.changes.lease_deletes.push(key);
        // Delete the keys attached to it, in key order, in one revision.
        let keys: Vec<Vec<u8>> = self
            .range(b"", Some(b"\0"))
            .into_iter()
            .filter(|(_, kv)| kv.lease == id)
            .map(|(k, _)| k)
            .collect();
        let deletes = keys
            .into_iter()
            .map(|k| Change::Delete { key: k, end: None })
            .collect();
        let _ = self.apply(deletes);
        true
    }
}

fn bump(map: &mut BTreeMap<String, u64>, what: &str) {
    *map.entry(what.to_string()).or_default() += 1;
}

/// Replays the committed entries of `wal` newer than `db`'s consistent index.
pub fn replay<'a>(db: &Db<'a>, wal: &WalDir) -> Result<Replayed, KvError> {
    let meta = read_meta(db)?;
    let ci = meta.consistent_index.unwrap_or(0);
    let index = KeyIndex::build(&Keyspace::db(*db), &KeyRange::All)?;
    let mut leases = HashMap::new();
    if let Some(b) = db.bucket(b"lease")? {
        for e in b.iter() {
            let e = e?;
            if let Ok(l) = decode_lease(e.key, e.value) {
                leases.insert(l.id, (l.ttl, l.remaining_ttl));
            }
        }
    }
    // The log a restore may use: every sound record, past damage where the
    // log provably stays continuous (wallog.rs).
    let log = usable_log(wal, ci);
    let report = crate::wal::scan(wal, ScanOptions::default(), |_| {});
    let commit = log.commit;
    let mut st = State {
        rev: index.head,
        compact: index.compact,
        index,
        overlay: BTreeMap::new(),
        leases,
        out: Replayed::default(),
    };
    let r = &mut st.out.report;
    r.db_consistent_index = ci;
    r.wal_commit = commit;
    r.revision_before = st.rev;
    r.applied_to_index = ci;
    let last = log.entries.keys().next_back().copied().unwrap_or(ci);
    r.uncommitted_entries = log.entries.range(commit + 1..).count() as u64;
    // Committed entries the db does not hold yet (none when the db is at or
    // past the commit index).
    let entries: Vec<(u64, EntryType, Vec<u8>)> = log
        .entries
        .range(ci + 1..=commit.max(ci))
        .map(|(i, e)| (*i, e.kind, e.data.clone()))
        .collect();
    r.salvaged_entries = log
        .entries
        .range(ci + 1..=commit.max(ci))
        .filter(|(_, e)| !e.seen_by_etcd)
        .count() as u64;
    log_notes(&mut st.out.report, &report, &log, last);
    for (i, kind, data) in entries {
        let e = Entry {
            term: crate::wal::Term(0),
            index: crate::wal::Index(i),
            kind,
            data: &data,
        };
        let p = payload::decode(&e);
        let what = p.request.kind();
        // Never skipped: what comes after an entry depends on it.
        if let Request::Undecodable { .. } | Request::TooDeep { .. } = &p.request {
            let why = p.request.summary(400);
            st.out.report.notes.push(format!(
                "committed entry {i} cannot be decoded ({why}): the replay stops before it, so this result lacks it and every entry after it"
            ));
            st.out.report.stopped_at = Some((i, why));
            break;
        }
        let result = apply(&mut st, &p.request);
        let r = &mut st.out.report;
        r.applied_entries += 1;
        r.applied_to_index = i;
        match result {
            Ok(true) => bump(&mut r.applied, what),
            Ok(false) => {}
            Err(why) => bump(&mut r.not_applied, &format!("{what}: {why}")),
        }
    }
    st.out.report.revision_after = st.rev;
    Ok(st.out)
}

/// Applies one committed request as etcd's apply loop does: `Ok(true)`
/// when it changed something, `Ok(false)` when there is nothing to replay,
/// `Err` with why it was not applied.
fn apply(st: &mut State<'_>, req: &Request) -> Result<bool, String> {
    match req {
        Request::Put { .. } | Request::DeleteRange { .. } | Request::Txn { .. } => {
            let mut ch = Vec::new();
            changes(st, req, &mut ch);
            st.apply(ch)
        }
        Request::Compaction { revision, .. } => {
            if *revision > st.rev {
                Err("compaction beyond the current revision".into())
            } else if *revision <= st.compact {
                Err("already compacted".into())
            } else {
                st.compact = *revision;
                st.out.changes.meta.insert(
                    meta_keys::SCHEDULED_COMPACT_REV.to_vec(),
                    Revision {
                        main: *revision,
                        sub: 0,
                    }
                    .to_key()
                    .to_vec(),
                );
                Ok(true)
            }
        }
        Request::LeaseGrant { id, ttl } => {
            if st.leases.contains_key(id) {
                Err("lease exists".into())
            } else {
                st.leases.insert(*id, (*ttl, 0));
                let l = leasepb::Lease {
                    id: *id,
                    ttl: *ttl,
                    remaining_ttl: 0,
                };
                st.out
                    .changes
                    .lease_puts
                    .insert((*id as u64).to_be_bytes().to_vec(), l.encode_to_vec());
                Ok(true)
            }
        }
        Request::LeaseRevoke { id } => {
            if st.revoke(*id) {
                Ok(true)
            } else {
                Err("lease not found".into())
            }
        }
        Request::LeaseCheckpoint { checkpoints } => {
            for c in checkpoints {
                if let Some(l) = st.leases.get_mut(&c.id) {
                    l.1 = c.remaining_ttl;
                    let lease = leasepb::Lease {
                        id: c.id,
                        ttl: l.0,
                        remaining_ttl: c.remaining_ttl,
                    };
                    st.out
                        .changes
                        .lease_puts
                        .insert((c.id as u64).to_be_bytes().to_vec(), lease.encode_to_vec());
                }
            }
            Ok(true)
        }
        // Nothing to replay: reads, no-ops, membership (rewritten by the
        // restore), cluster version, alarms.
        Request::Noop
        | Request::Range { .. }
        | Request::Empty
        | Request::ConfChange(_)
        | Request::ConfChangeV2(_)
        | Request::MemberAttr { .. }
        | Request::ClusterVersion { .. }
        | Request::Alarm { .. }
        | Request::AuthStatus
        | Request::Authenticate { .. } => Ok(false),
        _ => Err("not replayed (auth, v2 and downgrade requests are left to etcd's own records)".into()),
    }
}

/// What the log a restore uses says about the WAL's damage.
fn log_notes(
    r: &mut ReplayReport,
    report: &crate::wal::WalReport,
    log: &super::wallog::UsableLog,
    last: u64,
) {
    if !report.readable_by_etcd() {
        r.notes.push(if r.salvaged_entries > 0 {
            format!(
                "the WAL is damaged where etcd would stop; {} committed entries past the damage were read by salvage and applied (the raft log stays continuous through them)",
                r.salvaged_entries
            )
        } else {
            "the WAL is damaged where etcd would stop; no committed entry past the damage could be used".into()
        });
    }
    if log.dropped_at_barrier > 0 {
        r.notes.push(format!(
            "{} uncommitted entries before the damage were set aside: the damaged record may have replaced them",
            log.dropped_at_barrier
        ));
    }
    if let Some(h) = &log.hole {
        r.lost = Some(h.clone());
        r.notes.push(format!(
            "{} lost (damaged or missing), so the {} entries found after (up to index {}) cannot be applied safely; the restore stops at index {last}",
            if h.first == h.last {
                format!("entry {} is", h.first)
            } else {
                format!("entries {}..{} are", h.first, h.last)
            },
            h.entries_after,
            h.last_found
        ));
    }
}

/// A new, empty etcd db (the `key` and `meta` buckets), as etcd creates one
/// when a member dir has none: what a WAL that starts at index 1 is
/// replayed into.
pub fn empty_db() -> Result<Vec<u8>, crate::bolt::writer::WriteError> {
    let mut w = crate::bolt::writer::Writer::new(std::io::Cursor::new(Vec::new()), 4096, 0.9, 1)?;
    let none: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    w.bucket(b"key", 0, none.clone())?;
    w.bucket(b"meta", 0, none)?;
    let (_, out) = w.finish()?;
    Ok(out.into_inner())
}
