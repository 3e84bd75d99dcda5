//! The cross-checks between db, WAL and snap files, and the verdict: what
//! etcd 3.4/3.5 would do if started on this member dir, and what it would
//! lose. The steps follow etcd's start-up (`etcdserver.NewServer`):
//!
//! 1. no `*.wal` file: etcd sees a new member, not this one;
//! 2. read every segment for snapshot records (`ValidSnapshotEntries`): any
//!    corruption stops it, a torn tail in the last segment does not;
//! 3. load the newest `.snap` that matches a snapshot record at or below the
//!    WAL's commit index (broken ones are renamed `.broken`), else start from
//!    index 0;
//! 4. if the db's consistent index is below that snapshot, replace the db by
//!    `<index>.snap.db`, or refuse;
//! 5. open the WAL from the last segment named at or below the snapshot index
//!    (sequence numbers must be consecutive), read it all, cut a torn tail;
//!    a gap in the entries or a missing snapshot record is fatal;
//! 6. raft refuses a commit index beyond the last entry;
//! 7. entries after the consistent index are applied again; entries at or
//!    below it are skipped, so a db ahead of its WAL silently ignores writes.

use super::{DbSummary, Layout};
use crate::mvcc::DbReport;
use crate::report::{Finding, Severity};
use crate::snap::SnapDir;
use crate::snap::name::snap_db_name;
use crate::wal::ids::cluster_id;
use crate::wal::scan::Tail;
use crate::wal::{Index, Term, WalReport};

/// What etcd would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// etcd starts on it.
    Starts,
    /// etcd would start on it, but should not: it would lose or ignore data.
    Unsafe,
    /// etcd refuses to start (or panics).
    WontStart,
}

/// The status of one cross-check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Holds.
    Ok,
    /// Holds, with something worth knowing.
    Info,
    /// Off, but usable.
    Warning,
    /// Fails.
    Error,
    /// Could not be checked.
    Skipped,
}

/// One cross-check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    /// Stable name.
    pub name: &'static str,
    /// Result.
    pub status: CheckStatus,
    /// What was compared, with numbers.
    pub detail: String,
}

/// The committed data a member can give back, and from where.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recoverable {
    /// Highest committed raft index available.
    pub index: Option<Index>,
    /// Its term, when known.
    pub term: Option<Term>,
    /// `wal` (db plus WAL replay), `db` (the db alone) or `none`.
    pub source: &'static str,
}

/// The verdict on one member dir.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// What etcd would do.
    pub outcome: Outcome,
    /// One sentence.
    pub headline: String,
    /// What etcd will do on the way, and what is lost; one sentence each.
    pub statements: Vec<String>,
    /// What to do instead, when etcd should not be started on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// The facts the verdict rests on.
    pub evidence: Vec<String>,
    /// The committed data this member holds.
    pub recoverable: Recoverable,
}

/// What the verdict is made from.
pub struct Inputs<'a> {
    /// Paths.
    pub layout: &'a Layout,
    /// The db summary.
    pub db: &'a DbSummary,
    /// The db scan, when the db could be opened.
    pub db_report: Option<&'a DbReport>,
    /// The WAL scan, when its dir could be read.
    pub wal: Option<&'a WalReport>,
    /// The snap dir.
    pub snap: &'a SnapDir,
    /// WAL dir as shown.
    pub wal_rel: &'a str,
    /// Snap dir as shown.
    pub snap_rel: &'a str,
}

struct Judge {
    blockers: Vec<String>,
    /// What a restore from the db would lose (told when etcd cannot start).
    loss: Vec<String>,
    unsafe_: Vec<String>,
    statements: Vec<String>,
    evidence: Vec<String>,
    checks: Vec<Check>,
    findings: Vec<Finding>,
}

impl Judge {
    fn check(&mut self, name: &'static str, status: CheckStatus, detail: String) {
        self.checks.push(Check { name, status, detail });
    }

    fn finding(&mut self, sev: Severity, code: &'static str, file: &str, msg: String) {
        self.findings
            .push(Finding::new(sev, code, msg).in_file(file.to_string()));
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The cross-checks, the verdict and the cross-check findings.
pub fn judge(i: &Inputs<'_>) -> (Verdict, Vec<Check>, Vec<Finding>) {
    let mut j = Judge {
        blockers: Vec::new(),
        loss: Vec::new(),
        unsafe_: Vec::new(),
        statements: Vec::new(),
        evidence: Vec::new(),
        checks: Vec::new(),
        findings: Vec::new(),
    };
    let db = i.db;
    let ci = db.consistent_index;
    let db_desc = match (db.exists, db.readable, db.revision, ci) {
        (false, _, _, _) => "no db".to_string(),
        (true, false, _, _) => "a db whose meta pages are unreadable".to_string(),
        (true, true, rev, ci) => format!(
            "the db at revision {}, consistent index {}{}{}",
            rev.map_or("?".into(), |r| r.to_string()),
            ci.map_or("missing".into(), |c| c.to_string()),
            db.term.map(|t| format!(" (term {t})")).unwrap_or_default(),
            if db.errors > 0 {
                format!(", with {}", plural(db.errors as u64, "error", "errors"))
            } else {
                String::new()
            }
        ),
    };
    j.evidence.push(format!("{}: {db_desc}", db.file));
    if db.exists && db.readable && db.errors > 0 {
        j.blockers.push(format!(
            "the db ({}) is damaged ({}): etcd may refuse it, panic on it or serve wrong data",
            db.file,
            plural(db.errors as u64, "error", "errors")
        ));
    }

    let recoverable_db = Recoverable {
        index: ci.filter(|_| db.readable).map(Index),
        term: db.term.map(Term),
        source: if db.readable { "db" } else { "none" },
    };
    let restore_advice = || -> Option<String> {
        if db.readable && db.errors == 0 {
            Some(format!(
                "restore from its db (revision {}): `etcd-rescue restore {} --skip-hash-check --data-dir <new dir> --name ... --initial-cluster ...` writes a new cluster's data dir from it offline (or copy it and run `etcdutl snapshot restore <copy> --skip-hash-check`)",
                db.revision.unwrap_or(0),
                i.layout.db.display()
            ))
        } else {
            None
        }
    };

    // 1. The WAL exists and has segments.
    let wal = match i.wal {
        Some(w) if !w.segments.is_empty() => w,
        other => {
            let why = if other.is_some() {
                format!("the WAL directory {} holds no segment", i.wal_rel)
            } else {
                format!("there is no WAL directory ({})", i.wal_rel)
            };
            match ci.filter(|_| db.readable) {
                Some(c) if c > 0 => j.unsafe_.push(format!(
                    "{why}, so etcd would not see this as an existing member: it would start a new raft log on top of this db (or join a cluster as a new member); it serves the old data, but it skips every new entry up to index {c} as already applied, so writes time out and are never applied"
                )),
                _ if !db.exists => j.blockers.push(format!(
                    "{why} and there is no db: there is nothing here to start from"
                )),
                _ => j.unsafe_.push(format!(
                    "{why}, so etcd would not see this as an existing member: it would start a new raft log on top of this db, or join a cluster as a new member"
                )),
            }
            for name in [
                "db-vs-wal",
                "member-ids",
                "wal-covers-db",
                "wal-files-from-snapshot",
            ] {
                j.check(name, CheckStatus::Skipped, "no WAL to compare with".into());
            }
            return finish(j, recoverable_db, restore_advice());
        }
    };

    let hs = wal.hard_state.unwrap_or_default();
    let commit = hs.commit;
    let last = wal.entries.last_index;
    j.evidence.push(format!(
        "{}: {}, {}, HardState term {} commit {}{}",
        i.wal_rel,
        plural(wal.segments.len() as u64, "segment", "segments"),
        match (wal.entries.first_index, last) {
            (Some(a), Some(b)) => format!(
                "entries {a}..{b} (last term {})",
                wal.entries.last_term.map_or(0, |t| t.0)
            ),
            _ => "no entries".to_string(),
        },
        hs.term,
        commit,
        match &wal.tail {
            Tail::Clean => String::new(),
            Tail::Torn { offset, file, .. } => format!(", torn tail at offset {offset} of {file}"),
            Tail::Corrupt { offset, file, .. } => format!(", CORRUPT at offset {offset} of {file}"),
        }
    ));
    if !wal.tmp_files.is_empty() {
        j.evidence.push(format!(
            "{} holds a preallocated {}: etcd was killed or crashed rather than stopped (a clean stop removes it)",
            i.wal_rel,
            wal.tmp_files.join(", ")
        ));
    }

    // 2. Corruption, and the other things etcd cannot read past.
    if wal.metadata.is_none() {
        j.blockers
            .push("the WAL has no readable metadata record (member and cluster IDs)".into());
    }
    let fatal_codes = [
        "wal-metadata-conflict",
        "wal-undecodable-data",
        "wal-bad-payload",
        "wal-commit-beyond-log",
        "wal-seq-gap",
    ];
    for f in wal.findings.items() {
        if fatal_codes.contains(&f.code) {
            j.blockers.push(format!(
                "{}{}",
                f.file.as_deref().map(|x| format!("{x}: ")).unwrap_or_default(),
                f.message
            ));
        }
    }
    if let Tail::Corrupt {
        file,
        offset,
        message,
        after_index,
        claimed_index,
        ..
    } = &wal.tail
    {
        let at = match (claimed_index, after_index) {
            (Some(c), _) => format!("index {c}"),
            (None, Some(a)) => format!("index {} (the record after entry {a})", a.0 + 1),
            (None, None) => "its first records".to_string(),
        };
        j.blockers.push(format!(
            "the WAL is corrupt at {at}: {file} offset {offset}: {message}"
        ));
    }

    // 3. The snapshot etcd starts from.
    let marks: Vec<(Index, Term)> = wal
        .snapshots
        .iter()
        .filter(|s| s.mark.index <= commit)
        .map(|s| (s.mark.index, s.mark.term))
        .collect();
    let chosen = i.snap.newest_matching(&marks);
    for f in &i.snap.snaps[..chosen.unwrap_or(i.snap.snaps.len())] {
        if f.error.is_some() {
            j.statements.push(format!(
                "etcd will rename {}/{} to {}.broken ({}) and try older snapshots",
                i.snap_rel,
                f.file,
                f.file,
                f.error.as_deref().unwrap_or("")
            ));
        }
    }
    let (si, st) = match chosen.and_then(|c| i.snap.snaps[c].snapshot.as_ref().map(|s| (c, s))) {
        Some((c, s)) => {
            j.evidence.push(format!(
                "newest usable snapshot: {}/{} (index {}, term {}), matching a WAL snapshot record",
                i.snap_rel, i.snap.snaps[c].file, s.index, s.term
            ));
            (s.index, s.term)
        }
        None => {
            let newer = wal
                .snapshots
                .iter()
                .map(|s| s.mark.index)
                .max()
                .unwrap_or(Index(0));
            if newer > Index(0) {
                j.evidence.push(format!(
                    "no .snap file loads and matches the WAL's snapshot records (newest at index {newer}): etcd replays the WAL from index 0"
                ));
            } else if let Some(s) = i.snap.snaps.iter().find_map(|f| f.snapshot.as_ref()) {
                j.evidence.push(format!(
                    "the .snap files (newest at index {}) match no snapshot record left in the WAL: etcd ignores them and replays the WAL from index 0",
                    s.index
                ));
            } else {
                j.evidence
                    .push("no snapshot yet: etcd replays the WAL from index 0".into());
            }
            (Index(0), Term(0))
        }
    };

    // 4. The db against the snapshot.
    let snap_db = (si > Index(0)).then(|| i.snap.snap_db(si)).flatten();
    let mut db_index = ci.map(Index).filter(|_| db.readable);
    if !db.exists {
        if si > Index(0) && snap_db.is_none() {
            j.blockers.push(format!(
                "there is no db, and the snapshot at index {si} needs one: etcd panics (\"failed to find database snapshot file\")"
            ));
        } else if let Some(d) = snap_db {
            j.statements
                .push(format!("etcd will use {}/{} as the db", i.snap_rel, d.file));
            db_index = Some(si);
        } else {
            j.statements
                .push("there is no db: etcd will build one by replaying the whole WAL".into());
            db_index = Some(Index(0));
        }
    } else if db.readable {
        match ci {
            None | Some(0) => j.statements.push(
                "the db has no consistent index: etcd cannot tell which entries it already holds and applies every entry after the snapshot again".into(),
            ),
            Some(c) if Index(c) < si => match snap_db {
                Some(d) => {
                    j.statements.push(format!(
                        "the db (consistent index {c}) is older than the snapshot at index {si}: etcd will replace it with {}/{}",
                        i.snap_rel, d.file
                    ));
                    db_index = Some(si);
                }
                None => {
                    j.blockers.push(format!(
                        "the db (consistent index {c}) is older than the snapshot at index {si} and there is no {}: etcd refuses it (\"database file does not match with snapshot\")",
                        snap_db_name(si)
                    ));
                    j.finding(
                        Severity::Error,
                        "db-behind-snapshot",
                        &i.db.file,
                        format!(
                            "consistent index {c} is below the snapshot index {si} and no {} exists",
                            snap_db_name(si)
                        ),
                    );
                }
            },
            Some(_) => {}
        }
    }

    // 5. The WAL files etcd opens from the snapshot.
    let start = wal.segments.iter().rposition(|s| s.name_index <= si);
    match start {
        None => {
            let first = &wal.segments[0];
            let msg = format!(
                "the WAL segments needed from the snapshot at index {si} are missing: the first segment, {}, starts at index {}",
                first.file, first.name_index
            );
            j.check("wal-files-from-snapshot", CheckStatus::Error, msg.clone());
            j.finding(Severity::Error, "wal-files-missing", i.wal_rel, msg.clone());
            j.blockers
                .push(format!("{msg}: etcd fails (\"wal: file not found\")"));
        }
        Some(p) => {
            let consecutive = wal.segments[p..]
                .windows(2)
                .all(|w| w[1].seq == w[0].seq.wrapping_add(1));
            let has_mark = wal
                .snapshots
                .iter()
                .any(|s| s.segment >= p && s.mark.index == si && s.mark.term == st);
            let n = wal.segments.len() - p;
            let detail = format!(
                "etcd reads {} {} (named at index {}, at or below the snapshot index {si}){}",
                if n == 1 { "the segment" } else { "from" },
                wal.segments[p].file,
                wal.segments[p].name_index,
                if n == 1 {
                    String::new()
                } else {
                    format!(" to {}: {n} segments", wal.segments[wal.segments.len() - 1].file)
                },
            );
            if !consecutive {
                j.check(
                    "wal-files-from-snapshot",
                    CheckStatus::Error,
                    format!("{detail}; sequence numbers are not consecutive: segments are missing"),
                );
            } else if !has_mark && wal.readable_by_etcd() {
                let msg = format!(
                    "{detail}; but none of them holds the snapshot record (index {si}, term {st}) etcd needs to start from"
                );
                j.check("wal-files-from-snapshot", CheckStatus::Error, msg.clone());
                j.finding(Severity::Error, "wal-snapshot-not-found", i.wal_rel, msg);
                j.blockers.push(format!(
                    "the WAL holds no snapshot record for index {si} term {st}: etcd fails (\"wal: snapshot not found\")"
                ));
            } else {
                j.check("wal-files-from-snapshot", CheckStatus::Ok, detail);
            }
        }
    }

    // 6. Every entry after the db's index, up to the commit index.
    let from = db_index.unwrap_or(si).max(si);
    let bad_gap = wal.gaps.iter().find(|g| g.next.0 > si.0 + 1);
    let first_after = wal.entries.first_index;
    match (bad_gap, first_after) {
        (Some(g), _) => {
            let msg = format!(
                "entries {}..{} are missing from the WAL (entry {} follows entry {})",
                g.after.0 + 1,
                g.next.0 - 1,
                g.next,
                g.after
            );
            j.check("wal-covers-db", CheckStatus::Error, msg.clone());
            j.blockers.push(format!(
                "{msg}: etcd refuses a log with a hole (\"slice bounds out of range\")"
            ));
        }
        (None, Some(f)) if f.0 > si.0 + 1 => {
            let msg = format!(
                "the WAL's entries start at {f}, but etcd needs every entry after the snapshot index {si}: entries {}..{} are missing",
                si.0 + 1,
                f.0 - 1
            );
            j.check("wal-covers-db", CheckStatus::Error, msg.clone());
            j.finding(Severity::Error, "wal-entries-missing", i.wal_rel, msg.clone());
            j.blockers.push(msg);
        }
        _ => {
            let status = if last.is_some_and(|l| l >= commit) || commit.0 == 0 {
                CheckStatus::Ok
            } else {
                CheckStatus::Error
            };
            j.check(
                "wal-covers-db",
                status,
                format!(
                    "the WAL holds every entry from {} to {}; {}",
                    first_after.map_or("-".into(), |f| f.to_string()),
                    last.map_or("-".into(), |l| l.to_string()),
                    if from >= commit {
                        "the db already holds every committed entry".to_string()
                    } else {
                        format!(
                            "etcd needs {}..{commit} to bring the db up to the commit index",
                            from.0 + 1
                        )
                    }
                ),
            );
        }
    }

    // 7. The db's index against the WAL's commit and last entry. (Against a
    // corrupt WAL, what etcd reads ends early anyway: the loss is told below.)
    let corrupt = matches!(wal.tail, Tail::Corrupt { .. });
    match (db_index, last) {
        (Some(d), Some(l)) if d > l && d.0 > 0 && !corrupt => {
            let msg = format!(
                "the db has applied entries up to index {d}, but the WAL ends at index {l}: the db is ahead of its WAL"
            );
            j.check(
                "db-vs-wal",
                CheckStatus::Error,
                format!("{msg} (commit {commit}, snapshot {si})"),
            );
            j.finding(Severity::Error, "db-ahead-of-wal", &i.db.file, msg.clone());
            j.unsafe_.push(format!(
                "{msg}; etcd would start, but it skips every new entry up to index {d} as already applied, so the next {} writes would time out and never be applied",
                d.0 - l.0
            ));
        }
        (Some(d), _) => {
            let behind = commit.0.saturating_sub(d.0);
            let mut detail = format!("db consistent index {d}, WAL commit {commit}, snapshot index {si}");
            let status = if behind > 0 {
                let msg = format!(
                    "the db is {} behind the WAL: etcd will replay them (entries {}..{})",
                    plural(behind, "committed entry", "committed entries"),
                    d.0 + 1,
                    commit
                );
                detail.push_str(&format!(": {msg}"));
                j.statements.push(msg.clone());
                j.finding(Severity::Info, "db-behind-wal", &i.db.file, msg);
                CheckStatus::Info
            } else if d > commit {
                let msg = format!(
                    "the db has applied {} beyond the WAL's recorded commit index {commit}; they are in the WAL",
                    plural(d.0 - commit.0, "entry", "entries")
                );
                detail.push_str(&format!(": {msg}"));
                CheckStatus::Info
            } else {
                detail.push_str(": the db holds every committed entry");
                CheckStatus::Ok
            };
            j.check("db-vs-wal", status, detail);
            // The term of the db's last applied entry (3.5+).
            if let (Some(t), Some(wt)) = (db.term, wal.log.term_at(d)) {
                if t != wt.0 && d.0 > 0 {
                    let msg = format!(
                        "the db applied entry {d} at term {t}, but the WAL holds entry {d} at term {wt}: they come from different histories"
                    );
                    j.finding(Severity::Warning, "db-term-mismatch", &i.db.file, msg.clone());
                    j.unsafe_.push(msg);
                }
            }
        }
        (None, _) => j.check(
            "db-vs-wal",
            CheckStatus::Skipped,
            format!("no usable consistent index in the db; WAL commit {commit}"),
        ),
    }
    if let Some(l) = last {
        let applied = commit.max(db_index.unwrap_or(Index(0)));
        if l > applied {
            let n = l.0 - applied.0;
            j.statements.push(format!(
                "{} after the commit index ({}..{l}) {} not known to be committed: a lone member commits {} when it becomes leader, in a cluster the leader decides",
                plural(n, "entry", "entries"),
                applied.0 + 1,
                if n == 1 { "is" } else { "are" },
                if n == 1 { "it" } else { "them" },
            ));
        }
    }

    // The tail.
    match &wal.tail {
        Tail::Torn {
            file,
            offset,
            intact_after,
            ..
        } => {
            j.statements.push(format!(
                "the WAL ends in a torn record at offset {offset} of {file} that etcd will cut off (it keeps the original as {file}.broken); that write never completed, so no acknowledged data is lost"
            ));
            if *intact_after > 0 {
                j.unsafe_.push(format!(
                    "{} after the torn record in {file} look intact, and etcd would cut them off with it",
                    plural(*intact_after, "record", "records")
                ));
            }
        }
        Tail::Clean | Tail::Corrupt { .. } => {}
    }
    if wal
        .findings
        .items()
        .iter()
        .any(|f| f.code == "wal-unsynced-tail" && f.severity == Severity::Error)
    {
        j.unsafe_.push(
            "the last WAL segment has intact records after its end marker, which etcd ignores and erases at start".into(),
        );
    }

    // 8. Member and cluster IDs.
    member_checks(&mut j, i, wal, db_index);

    // What a restore from the db would lose, when etcd cannot start.
    if !j.blockers.is_empty() {
        if let Some(d) = db_index.filter(|_| db.readable && db.errors == 0) {
            let wal_max = last.max(wal.salvage.last_index);
            match wal_max {
                Some(w) if w > d => j.loss.push(format!(
                    "the WAL holds entries up to index {w} (some readable only by salvage) and the db up to {d}: restoring the db loses entries {}..{w}; `etcd-rescue wal --salvage --start-index {}` lists them",
                    d.0 + 1,
                    d.0 + 1
                )),
                _ => j.loss.push(format!(
                    "the db holds every entry the WAL has (up to index {d}): restoring it loses nothing the WAL could give"
                )),
            }
        }
    }

    let recoverable = if j.blockers.is_empty() {
        let idx = commit.max(db_index.unwrap_or(Index(0)));
        Recoverable {
            index: Some(idx),
            term: wal
                .log
                .term_at(idx)
                .or(if idx == commit { Some(hs.term) } else { None }),
            source: "wal",
        }
    } else {
        recoverable_db
    };
    finish(j, recoverable, restore_advice())
}

fn member_checks(j: &mut Judge, i: &Inputs<'_>, wal: &WalReport, db_index: Option<Index>) {
    let db = i.db;
    let Some(m) = wal.metadata else {
        j.check("member-ids", CheckStatus::Skipped, "no WAL metadata".into());
        return;
    };
    j.evidence.push(format!(
        "WAL metadata: member {}, cluster {}",
        m.node_id, m.cluster_id
    ));
    if !db.readable {
        j.check(
            "member-ids",
            CheckStatus::Skipped,
            format!(
                "WAL member {} cluster {}; the db is unreadable",
                m.node_id, m.cluster_id
            ),
        );
        return;
    }
    let ids: Vec<u64> = db.members.iter().map(|x| x.id).collect();
    let list = db
        .members
        .iter()
        .map(|x| {
            format!(
                "{:x}{}",
                x.id,
                if x.name.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", x.name)
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    // Members the WAL adds after the db's index.
    let added_later = wal.member_changes.iter().any(|c| {
        c.node_id == m.node_id
            && Some(c.index) > db_index
            && matches!(
                c.change,
                crate::wal::confchange::ChangeKind::AddNode
                    | crate::wal::confchange::ChangeKind::AddLearnerNode
            )
    });
    let mut status = CheckStatus::Ok;
    let mut detail = format!(
        "WAL member {} cluster {}; db members: {}",
        m.node_id,
        m.cluster_id,
        if list.is_empty() {
            "none".into()
        } else {
            list.clone()
        }
    );
    if db.removed_members.contains(&m.node_id.0) {
        status = CheckStatus::Error;
        let msg = format!(
            "the WAL belongs to member {}, which the db lists as removed from the cluster: the other members refuse to talk to it",
            m.node_id
        );
        detail.push_str(&format!(": {msg}"));
        j.finding(Severity::Error, "member-removed", i.wal_rel, msg.clone());
        j.unsafe_.push(msg);
    } else if !ids.contains(&m.node_id.0) && !added_later {
        if ids.is_empty() {
            status = CheckStatus::Warning;
            detail.push_str(": the db lists no members to compare with");
        } else {
            status = CheckStatus::Error;
            let msg = format!(
                "the WAL belongs to member {}, which is not among the db's members ({list}): the WAL and the db come from different members or clusters",
                m.node_id
            );
            detail.push_str(&format!(": {msg}"));
            j.finding(Severity::Error, "member-not-in-db", i.wal_rel, msg.clone());
            j.unsafe_.push(msg);
        }
    } else if let Some(x) = db.member(m.node_id.0) {
        j.evidence.push(format!(
            "member {} is in the db's members{}",
            m.node_id,
            if x.name.is_empty() {
                String::new()
            } else {
                format!(" as {}", x.name)
            }
        ));
    }
    if status == CheckStatus::Ok && !ids.is_empty() {
        if cluster_id(&ids) == m.cluster_id.0 {
            detail.push_str("; the cluster ID is the one etcd derives from these members");
            j.evidence.push(format!(
                "cluster {} is the ID etcd derives from the db's {}",
                m.cluster_id,
                plural(ids.len() as u64, "member", "members")
            ));
        } else {
            detail.push_str("; the cluster ID is not derived from these members (membership changed since bootstrap, or a restore)");
            status = CheckStatus::Info;
        }
    }
    j.check("member-ids", status, detail);
}

fn finish(
    j: Judge,
    recoverable: Recoverable,
    restore: Option<String>,
) -> (Verdict, Vec<Check>, Vec<Finding>) {
    let Judge {
        blockers,
        loss,
        unsafe_,
        statements,
        evidence,
        checks,
        findings,
    } = j;
    let (outcome, headline, mut statements, advice) = if !blockers.is_empty() {
        let mut st = blockers.clone();
        st.extend(unsafe_);
        st.extend(loss);
        (
            Outcome::WontStart,
            format!("this member cannot start: {}", blockers[0]),
            st.split_off(1),
            restore.or_else(|| {
                Some("neither the WAL nor the db is usable as it is: try `etcd-rescue wal --salvage` on the WAL and check the other members".into())
            }),
        )
    } else if !unsafe_.is_empty() {
        let mut st = unsafe_.clone();
        st.extend(statements);
        (
            Outcome::Unsafe,
            format!("etcd would start on this, but it should not: {}", unsafe_[0]),
            st.split_off(1),
            restore,
        )
    } else if statements.is_empty() {
        (
            Outcome::Starts,
            "etcd will start on this as it is".to_string(),
            Vec::new(),
            None,
        )
    } else {
        (
            Outcome::Starts,
            "etcd will start on this".to_string(),
            statements,
            None,
        )
    };
    statements.dedup();
    (
        Verdict {
            outcome,
            headline,
            statements,
            advice,
            evidence,
            recoverable,
        },
        checks,
        findings,
    )
}
