//! The cross-checks between db, WAL and snap files, and the verdict: what
//! etcd 3.4/3.5 would do if started on this member dir, and what it would
//! lose. The steps follow etcd's start-up (`etcdserver.NewServer`), one
//! function each:
//!
//! 1. the db as bbolt opens it (`dbstart.rs`): refused, or damaged, or
//!    missing/empty (etcd creates a new one);
//! 2. no `*.wal` file: etcd sees a new member, not this one;
//! 3. read every segment for snapshot records (`ValidSnapshotEntries`): any
//!    corruption stops it, a torn tail in the last segment does not;
//! 4. load the newest `.snap` that matches a snapshot record at or below the
//!    WAL's commit index (broken ones are renamed `.broken`), else start from
//!    index 0; recover the v2 store from it (a store etcd cannot decode
//!    panics);
//! 5. if the db's consistent index is below that snapshot, replace the db by
//!    `<index>.snap.db`, or refuse;
//! 6. open the WAL from the last segment named at or below the snapshot index
//!    (sequence numbers must be consecutive), read it all, cut a torn tail;
//!    a gap in the entries or a missing snapshot record is fatal;
//! 7. raft refuses a commit index beyond the last entry;
//! 8. entries after the consistent index are applied again; entries at or
//!    below it are skipped, so a db ahead of its WAL silently ignores writes.
//!
//! Every reason etcd refuses (`blockers`) or would lose data (`unsafe_`)
//! comes with an error finding, and an error finding always comes with one
//! of them: a member etcd starts on as it is has no errors.

use super::dbstart::{self, DbStart};
use super::{DbState, DbSummary, Layout, WalUsage};
use crate::membership::cluster_id;
use crate::mvcc::DbReport;
use crate::report::{Finding, Severity};
use crate::snap::SnapDir;
use crate::snap::name::snap_db_name;
use crate::wal::scan::Tail;
use crate::wal::{Index, Term, WalReport};

/// What etcd would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EtcdOutcome {
    /// etcd starts on it.
    Starts,
    /// etcd would start on it, but should not: it would lose or ignore data.
    Unsafe,
    /// etcd refuses to start (or panics).
    WontStart,
}

impl EtcdOutcome {
    /// The words tables show.
    pub fn word(self) -> &'static str {
        match self {
            EtcdOutcome::Starts => "STARTS",
            EtcdOutcome::Unsafe => "UNSAFE",
            EtcdOutcome::WontStart => "WILL NOT START",
        }
    }
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
pub struct MemberVerdict {
    /// What etcd would do.
    pub outcome: EtcdOutcome,
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

/// Where an etcd 2.x member's data is: the v2 store, which etcd 3 serves
/// only through the v2 API and the v3 API (`etcdctl get`) never shows.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Data {
    /// The newest `.snap` that loads, with the v2 keys in its store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snap_file: Option<String>,
    /// Its index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snap_index: Option<Index>,
    /// v2 keys in its store (under `/1`).
    pub snap_keys: u64,
    /// v2 writes to user keys in the WAL.
    pub wal_writes: u64,
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
    /// Why the WAL dir could not be read.
    pub wal_error: Option<&'a str>,
    /// The snap dir.
    pub snap: &'a SnapDir,
    /// WAL dir as shown.
    pub wal_rel: &'a str,
    /// Snap dir as shown.
    pub snap_rel: &'a str,
    /// What the WAL's entries write (read when the db is missing or empty).
    pub usage: Option<&'a WalUsage>,
    /// Whether etcd is running on it now.
    pub live: bool,
}

/// The verdict, the cross-checks, the findings they add, and (for an etcd
/// 2.x member) where its data is.
pub struct Judged {
    /// The verdict.
    pub verdict: MemberVerdict,
    /// The cross-checks.
    pub checks: Vec<Check>,
    /// Findings of the cross-checks.
    pub findings: Vec<Finding>,
    /// Findings of the files, by (code, file), that are errors here because
    /// etcd cannot work around them in this dir (a `.snap` etcd must load).
    pub raise: Vec<(&'static str, String)>,
    /// Set for an etcd 2.x member.
    pub v2: Option<V2Data>,
}

struct Judge<'i, 'a> {
    i: &'i Inputs<'a>,
    blockers: Vec<String>,
    /// What a restore from the db would lose (told when etcd cannot start).
    loss: Vec<String>,
    unsafe_: Vec<String>,
    statements: Vec<String>,
    evidence: Vec<String>,
    checks: Vec<Check>,
    findings: Vec<Finding>,
    raise: Vec<(&'static str, String)>,
    /// The raft index the db holds, as etcd will see it after step 5.
    db_index: Option<Index>,
    v2: Option<V2Data>,
}

impl Judge<'_, '_> {
    fn check(&mut self, name: &'static str, status: CheckStatus, detail: String) {
        self.checks.push(Check { name, status, detail });
    }

    fn finding(&mut self, sev: Severity, code: &'static str, file: &str, msg: String) {
        self.findings
            .push(Finding::new(sev, code, msg).in_file(file.to_string()));
    }

    /// etcd refuses: with the error finding that says so.
    fn refuse(&mut self, code: &'static str, file: &str, msg: String) {
        self.finding(Severity::Error, code, file, msg.clone());
        self.blockers.push(msg);
    }

    /// etcd starts but loses or ignores data: with its error finding.
    fn lose(&mut self, code: &'static str, file: &str, msg: String) {
        self.finding(Severity::Error, code, file, msg.clone());
        self.unsafe_.push(msg);
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The cross-checks, the verdict and the cross-check findings.
pub fn judge(i: &Inputs<'_>) -> Judged {
    let mut j = Judge {
        i,
        blockers: Vec::new(),
        loss: Vec::new(),
        unsafe_: Vec::new(),
        statements: Vec::new(),
        evidence: Vec::new(),
        checks: Vec::new(),
        findings: Vec::new(),
        raise: Vec::new(),
        db_index: None,
        v2: None,
    };
    db_step(&mut j);
    let recoverable_db = Recoverable {
        index: i.db.consistent_index.filter(|_| i.db.readable).map(Index),
        term: i.db.term.map(Term),
        source: if i.db.readable { "db" } else { "none" },
    };
    let wal = match i.wal {
        Some(w) if !w.segments.is_empty() => w,
        other => {
            no_wal(&mut j, other.is_some());
            return finish(j, recoverable_db);
        }
    };
    describe_wal(&mut j, wal);
    wal_corruption(&mut j, wal);
    let (si, st) = chosen_snapshot(&mut j, wal);
    db_against_snapshot(&mut j, si);
    wal_files_from_snapshot(&mut j, wal, si, st);
    wal_covers_db(&mut j, wal, si);
    db_against_wal(&mut j, wal, si);
    tail(&mut j, wal);
    member_checks(&mut j, wal);
    v2_member(&mut j, wal);
    loss_if_refused(&mut j, wal);
    let recoverable = if j.blockers.is_empty() {
        let commit = wal.hard_state.unwrap_or_default().commit;
        let idx = commit.max(j.db_index.unwrap_or(Index(0)));
        Recoverable {
            index: Some(idx),
            term: wal.log.term_at(idx).or(if idx == commit {
                wal.hard_state.map(|h| h.term)
            } else {
                None
            }),
            source: "wal",
        }
    } else {
        recoverable_db
    };
    finish(j, recoverable)
}

/// Step 1: the db as bbolt and etcd open it.
fn db_step(j: &mut Judge<'_, '_>) {
    let db = j.i.db;
    let ci = db.consistent_index;
    let db_desc = match db.state {
        DbState::Missing => "no db".to_string(),
        DbState::Empty => "an empty db file (0 bytes)".to_string(),
        DbState::Invalid => "a db bbolt cannot open".to_string(),
        DbState::Readable => format!(
            "the db at revision {}, consistent index {}{}{}",
            db.revision.map_or("?".into(), |r| r.to_string()),
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
    if j.i.live {
        j.evidence.push(format!(
            "{} is locked by a running process: etcd is running on this dir now; what is read is a moment of a changing dir",
            db.file
        ));
    }
    j.db_index = ci.map(Index).filter(|_| db.readable);
    let own: Vec<&Finding> =
        j.i.db_report
            .map(|r| r.findings.items().iter().collect())
            .unwrap_or_default();
    match db.state {
        DbState::Invalid => {
            let why = own
                .iter()
                .find(|f| f.severity == Severity::Error)
                .map(|f| f.message.clone())
                .or_else(|| db.open_error.clone())
                .unwrap_or_else(|| "it cannot be read".into());
            j.blockers.push(format!(
                "bbolt refuses the db ({}: {why}): etcd panics (\"failed to open database\")",
                db.file
            ));
        }
        DbState::Readable => match dbstart::judge(own) {
            DbStart::Refused(why) => j
                .blockers
                .push(format!("the db ({}) is damaged: {why}", db.file)),
            DbStart::Damaged(why) => j.unsafe_.push(format!(
                "the db ({}) is damaged ({}; first: {why}): etcd starts on it, but serves what is left of it, so data is lost or wrong",
                db.file,
                plural(db.errors as u64, "error", "errors")
            )),
            DbStart::Opens => {}
        },
        DbState::Missing | DbState::Empty => {}
    }
}

/// Step 2: no WAL: etcd sees a new member.
fn no_wal(j: &mut Judge<'_, '_>, dir_exists: bool) {
    let i = j.i;
    let why = if dir_exists {
        format!("the WAL directory {} holds no segment", i.wal_rel)
    } else {
        format!(
            "there is no WAL directory ({}{})",
            i.wal_rel,
            i.wal_error.map(|e| format!(": {e}")).unwrap_or_default()
        )
    };
    if !dir_exists {
        j.finding(
            Severity::Error,
            "wal-dir-missing",
            i.wal_rel,
            format!(
                "{why}: etcd would not recognise this member and would bootstrap or join a cluster as a new one"
            ),
        );
    }
    let db = i.db;
    let v2_keys: u64 = i
        .snap
        .snaps
        .iter()
        .find_map(|f| f.snapshot.as_ref().and_then(|s| s.v2.as_ref()))
        .map_or(0, |v| v.v2_keys);
    if db.state != DbState::Readable && v2_keys > 0 {
        let snap = i.snap.snaps.iter().find(|f| f.snapshot.is_some());
        j.v2 = Some(V2Data {
            snap_file: snap.map(|f| f.file.clone()),
            snap_index: snap.and_then(|f| f.snapshot.as_ref()).map(|s| s.index),
            snap_keys: v2_keys,
            wal_writes: 0,
        });
    }
    match j.db_index {
        Some(c) if c.0 > 0 => j.unsafe_.push(format!(
            "{why}, so etcd would not see this as an existing member: it would start a new raft log on top of this db (or join a cluster as a new member); it serves the old data, but it skips every new entry up to index {c} as already applied, so writes time out and are never applied"
        )),
        _ if db.state != DbState::Readable && j.v2.is_some() => j.unsafe_.push(format!(
            "{why}, so etcd would start a new, empty member: the {v2_keys} v2 keys of this etcd 2.x member's snapshot would not be served"
        )),
        _ if db.state != DbState::Readable => j.blockers.push(format!(
            "{why} and there is no usable db: there is nothing here to start from"
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
}

fn describe_wal(j: &mut Judge<'_, '_>, wal: &WalReport) {
    let hs = wal.hard_state.unwrap_or_default();
    j.evidence.push(format!(
        "{}: {}, {}, HardState term {} commit {}{}",
        j.i.wal_rel,
        plural(wal.segments.len() as u64, "segment", "segments"),
        match (wal.entries.first_index, wal.entries.last_index) {
            (Some(a), Some(b)) => format!(
                "entries {a}..{b} (last term {})",
                wal.entries.last_term.map_or(0, |t| t.0)
            ),
            _ => "no entries".to_string(),
        },
        hs.term,
        hs.commit,
        match &wal.tail {
            Tail::Clean => String::new(),
            Tail::Torn { offset, file, .. } => format!(", torn tail at offset {offset} of {file}"),
            Tail::Corrupt { offset, file, .. } => format!(", CORRUPT at offset {offset} of {file}"),
        }
    ));
    if !wal.tmp_files.is_empty() {
        j.evidence.push(if j.i.live {
            format!(
                "{} holds a preallocated {}: the next segment of the running etcd",
                j.i.wal_rel,
                wal.tmp_files.join(", ")
            )
        } else {
            format!(
                "{} holds a preallocated {}: etcd was killed or crashed rather than stopped (a clean stop removes it)",
                j.i.wal_rel,
                wal.tmp_files.join(", ")
            )
        });
    }
}

/// Step 3: corruption, and the other things etcd cannot read past.
fn wal_corruption(j: &mut Judge<'_, '_>, wal: &WalReport) {
    if wal.metadata.is_none() {
        j.blockers
            .push("the WAL has no readable metadata record (member and cluster IDs)".into());
    }
    const FATAL: [&str; 4] = [
        "wal-metadata-conflict",
        "wal-undecodable-data",
        "wal-bad-payload",
        "wal-commit-beyond-log",
    ];
    for f in wal.findings.items() {
        if FATAL.contains(&f.code) {
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
}

/// Step 4: the snapshot etcd starts from, and the v2 store it recovers from it.
fn chosen_snapshot(j: &mut Judge<'_, '_>, wal: &WalReport) -> (Index, Term) {
    let i = j.i;
    let commit = wal.hard_state.unwrap_or_default().commit;
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
    let Some((c, s)) = chosen.and_then(|c| i.snap.snaps[c].snapshot.as_ref().map(|s| (c, s))) else {
        let newer = wal
            .snapshots
            .iter()
            .map(|s| s.mark.index)
            .max()
            .unwrap_or(Index(0));
        j.evidence.push(if newer > Index(0) {
            format!(
                "no .snap file loads and matches the WAL's snapshot records (newest at index {newer}): etcd replays the WAL from index 0"
            )
        } else if let Some(s) = i.snap.snaps.iter().find_map(|f| f.snapshot.as_ref()) {
            format!(
                "the .snap files (newest at index {}) match no snapshot record left in the WAL: etcd ignores them and replays the WAL from index 0",
                s.index
            )
        } else {
            "no snapshot yet: etcd replays the WAL from index 0".into()
        });
        return (Index(0), Term(0));
    };
    let file = &i.snap.snaps[c].file;
    j.evidence.push(format!(
        "newest usable snapshot: {}/{file} (index {}, term {}), matching a WAL snapshot record",
        i.snap_rel, s.index, s.term
    ));
    if let Some(e) = &s.v2_error {
        j.raise.push(("snap-v2-store", format!("{}/{file}", i.snap_rel)));
        j.blockers.push(format!(
            "etcd recovers its v2 store from {}/{file} and cannot decode it ({e}): it panics (\"failed to recover from snapshot\")",
            i.snap_rel
        ));
    }
    (s.index, s.term)
}

/// Step 5: the db against the snapshot (and a missing or empty db).
fn db_against_snapshot(j: &mut Judge<'_, '_>, si: Index) {
    let i = j.i;
    let db = i.db;
    let snap_db = (si > Index(0)).then(|| i.snap.snap_db(si)).flatten();
    match db.state {
        DbState::Missing | DbState::Empty => {
            let (code, what) = if db.state == DbState::Missing {
                ("db-missing", "there is no db")
            } else {
                ("db-empty", "the db file is empty (0 bytes)")
            };
            if si > Index(0) && snap_db.is_none() {
                j.refuse(
                    code,
                    &db.file,
                    format!(
                        "{what}, and the snapshot at index {si} needs one: etcd panics (\"failed to recover v3 backend from snapshot\": no {})",
                        snap_db_name(si)
                    ),
                );
            } else if let Some(d) = snap_db {
                j.statements
                    .push(format!("etcd will use {}/{} as the db", i.snap_rel, d.file));
                j.finding(
                    Severity::Info,
                    code,
                    &db.file,
                    format!("{what}: etcd uses {}/{} instead", i.snap_rel, d.file),
                );
                j.db_index = Some(si);
            } else {
                let msg = format!(
                    "{what}: etcd creates a new one and rebuilds it by replaying the whole WAL"
                );
                j.statements.push(msg.clone());
                // An etcd 2.x member never had a db; for etcd 3 it was lost.
                let v2 = i.usage.is_some_and(|u| u.v3_writes == 0);
                j.finding(
                    if v2 { Severity::Info } else { Severity::Warning },
                    code,
                    &db.file,
                    msg,
                );
                j.db_index = Some(Index(0));
            }
        }
        DbState::Invalid => {}
        DbState::Readable => match db.consistent_index {
            None | Some(0) => j.statements.push(
                "the db has no consistent index: etcd cannot tell which entries it already holds and applies every entry after the snapshot again".into(),
            ),
            Some(c) if Index(c) < si => match snap_db {
                Some(d) => {
                    j.statements.push(format!(
                        "the db (consistent index {c}) is older than the snapshot at index {si}: etcd will replace it with {}/{}",
                        i.snap_rel, d.file
                    ));
                    j.db_index = Some(si);
                }
                None => j.refuse(
                    "db-behind-snapshot",
                    &db.file,
                    format!(
                        "the db (consistent index {c}) is older than the snapshot at index {si} and there is no {}: etcd refuses it (\"database file does not match with snapshot\")",
                        snap_db_name(si)
                    ),
                ),
            },
            Some(_) => {}
        },
    }
}

/// Step 6: the WAL files etcd opens from the snapshot.
fn wal_files_from_snapshot(j: &mut Judge<'_, '_>, wal: &WalReport, si: Index, st: Term) {
    let Some(p) = wal.segments.iter().rposition(|s| s.name_index <= si) else {
        let first = &wal.segments[0];
        let msg = format!(
            "the WAL segments needed from the snapshot at index {si} are missing: the first segment, {}, starts at index {}",
            first.file, first.name_index
        );
        j.check("wal-files-from-snapshot", CheckStatus::Error, msg.clone());
        let wal_rel = j.i.wal_rel;
        j.refuse(
            "wal-files-missing",
            wal_rel,
            format!("{msg}: etcd fails (\"wal: file not found\")"),
        );
        return;
    };
    // etcd's isValidSeq: a previous sequence of 0 counts as "none yet".
    let consecutive = wal.segments[p..]
        .windows(2)
        .all(|w| w[0].seq == 0 || w[1].seq == w[0].seq.wrapping_add(1));
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
        let msg = format!("{detail}; sequence numbers are not consecutive: segments are missing");
        j.check("wal-files-from-snapshot", CheckStatus::Error, msg.clone());
        j.blockers
            .push(format!("{msg}: etcd fails (\"wal: file not found\")"));
    } else if !has_mark && wal.readable_by_etcd() {
        let msg = format!(
            "{detail}; but none of them holds the snapshot record (index {si}, term {st}) etcd needs to start from"
        );
        j.check("wal-files-from-snapshot", CheckStatus::Error, msg.clone());
        j.finding(Severity::Error, "wal-snapshot-not-found", j.i.wal_rel, msg);
        j.blockers.push(format!(
            "the WAL holds no snapshot record for index {si} term {st}: etcd fails (\"wal: snapshot not found\")"
        ));
    } else {
        j.check("wal-files-from-snapshot", CheckStatus::Ok, detail);
    }
}

/// Step 7: every entry after the db's index, up to the commit index.
fn wal_covers_db(j: &mut Judge<'_, '_>, wal: &WalReport, si: Index) {
    let commit = wal.hard_state.unwrap_or_default().commit;
    let last = wal.entries.last_index;
    let from = j.db_index.unwrap_or(si).max(si);
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
            let wal_rel = j.i.wal_rel;
            j.refuse("wal-entries-missing", wal_rel, msg);
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
}

/// Step 8: the db's index against the WAL's commit and last entry. Against
/// a corrupt WAL, what etcd reads ends early anyway: the loss is told below.
fn db_against_wal(j: &mut Judge<'_, '_>, wal: &WalReport, si: Index) {
    let commit = wal.hard_state.unwrap_or_default().commit;
    let last = wal.entries.last_index;
    let corrupt = matches!(wal.tail, Tail::Corrupt { .. });
    let db_file = j.i.db.file.clone();
    match (j.db_index, last) {
        (Some(d), Some(l)) if d > l && d.0 > 0 && !corrupt => {
            let msg = format!(
                "the db has applied entries up to index {d}, but the WAL ends at index {l}: the db is ahead of its WAL"
            );
            j.check(
                "db-vs-wal",
                CheckStatus::Error,
                format!("{msg} (commit {commit}, snapshot {si})"),
            );
            j.finding(Severity::Error, "db-ahead-of-wal", &db_file, msg.clone());
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
                j.finding(Severity::Info, "db-behind-wal", &db_file, msg);
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
            if let (Some(t), Some(wt)) = (j.i.db.term, wal.log.term_at(d))
                && t != wt.0
                && d.0 > 0
                && j.i.db.state == DbState::Readable
            {
                let msg = format!(
                    "the db applied entry {d} at term {t}, but the WAL holds entry {d} at term {wt}: they come from different histories"
                );
                j.lose("db-term-mismatch", &db_file, msg);
            }
        }
        (None, _) => j.check(
            "db-vs-wal",
            CheckStatus::Skipped,
            format!("no usable consistent index in the db; WAL commit {commit}"),
        ),
    }
    if let Some(l) = last {
        let applied = commit.max(j.db_index.unwrap_or(Index(0)));
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
}

/// How the WAL ends.
fn tail(j: &mut Judge<'_, '_>, wal: &WalReport) {
    if let Tail::Torn {
        file,
        offset,
        intact_after,
        ..
    } = &wal.tail
    {
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
}

/// An etcd 2.x member: no v3 db, and the data is in the v2 store.
fn v2_member(j: &mut Judge<'_, '_>, wal: &WalReport) {
    let Some(u) = j.i.usage else { return };
    if j.i.db.state == DbState::Readable || u.v3_writes > 0 {
        return;
    }
    let snap =
        j.i.snap
            .snaps
            .iter()
            .find(|f| f.snapshot.as_ref().is_some_and(|s| s.v2.is_some()));
    let snap_keys = snap
        .and_then(|f| f.snapshot.as_ref())
        .and_then(|s| s.v2.as_ref())
        .map_or(0, |v| v.v2_keys);
    if u.v2_writes == 0 && snap_keys == 0 && u.v2_cluster == 0 {
        return;
    }
    let d = V2Data {
        snap_file: snap.map(|f| f.file.clone()),
        snap_index: snap.and_then(|f| f.snapshot.as_ref()).map(|s| s.index),
        snap_keys,
        wal_writes: u.v2_writes,
    };
    let mut where_ = Vec::new();
    if let (Some(f), Some(i)) = (&d.snap_file, d.snap_index) {
        where_.push(format!(
            "{} in the v2 store of {}/{f} (index {i})",
            plural(snap_keys, "key", "keys"),
            j.i.snap_rel
        ));
    }
    if u.v2_writes > 0 {
        where_.push(format!(
            "{} in the WAL{}",
            plural(u.v2_writes, "v2 write", "v2 writes"),
            wal.entries
                .last_index
                .map(|l| format!(" (up to index {l})"))
                .unwrap_or_default()
        ));
    }
    j.evidence.insert(1, format!(
        "this is an etcd 2.x member (a v2 store and no v3 db): its data is {}; etcd 3 serves v2 keys only through the v2 API (`--enable-v2`, `ETCDCTL_API=2 etcdctl ls`), never through `etcdctl get`",
        if where_.is_empty() {
            "the membership only".to_string()
        } else {
            where_.join(" and ")
        }
    ));
    j.v2 = Some(d);
}

/// What a restore from the db would lose, when etcd cannot start.
fn loss_if_refused(j: &mut Judge<'_, '_>, wal: &WalReport) {
    if j.blockers.is_empty() {
        return;
    }
    let db = j.i.db;
    if db.state != DbState::Readable || db.errors > 0 {
        return;
    }
    let Some(d) = db.consistent_index.map(Index) else {
        return;
    };
    let wal_max = wal.entries.last_index.max(wal.salvage.last_index);
    j.loss.push(match wal_max {
        Some(w) if w > d => format!(
            "the WAL holds entries up to index {w} (some readable only by salvage) and the db up to {d}: restoring the db loses entries {}..{w}; `etcd-rescue wal --salvage --start-index {}` lists them",
            d.0 + 1,
            d.0 + 1
        ),
        _ => format!(
            "the db holds every entry the WAL has (up to index {d}): restoring it loses nothing the WAL could give"
        ),
    });
}

/// What to do when etcd should not be started on this dir.
fn advice(j: &Judge<'_, '_>) -> Option<String> {
    let i = j.i;
    let db = i.db;
    if db.state == DbState::Readable && db.errors == 0 {
        return Some(format!(
            "restore from its db (revision {}): `etcd-rescue restore {} --skip-hash-check --data-dir <new dir> --name ... --initial-cluster ...` writes a new cluster's data dir from it offline (or copy it and run `etcdutl snapshot restore <copy> --skip-hash-check`)",
            db.revision.unwrap_or(0),
            i.layout.show(&i.layout.db)
        ));
    }
    if let Some(v2) = &j.v2 {
        let mut places = Vec::new();
        if let Some(f) = &v2.snap_file {
            places.push(format!(
                "the v2 store of {}",
                i.layout.show(&i.layout.snap.join(f))
            ));
        }
        if v2.wal_writes > 0 {
            places.push(format!("the v2 requests of {}", i.layout.show(&i.layout.wal)));
        }
        return Some(format!(
            "its keys are in {}: `etcd-rescue wal {} --type v2` lists the WAL's; etcd 3.4's `ETCDCTL_API=3 etcdctl migrate --data-dir <copy>` converts a v2 member dir into a v3 db (removed in 3.5), or start etcd 2.3/3.x with `--enable-v2` on a copy and read it with `ETCDCTL_API=2 etcdctl`",
            if places.is_empty() {
                "its v2 store".to_string()
            } else {
                places.join(" and ")
            },
            i.layout.show(&i.layout.input)
        ));
    }
    if db.state == DbState::Readable {
        return Some(format!(
            "the db is damaged: `etcd-rescue salvage {} --out rescued.db` recovers what can be read, then `etcd-rescue check rescued.db` and restore it; check the other members first",
            i.layout.show(&i.layout.db)
        ));
    }
    let wal_usable = i.wal.is_some_and(|w| !w.segments.is_empty());
    Some(if wal_usable {
        "neither the WAL nor the db is usable as it is: `etcd-rescue wal --salvage` shows what the WAL still holds; check the other members".to_string()
    } else {
        "there is no usable db and no WAL here: check the other members and your backups".to_string()
    })
}

fn member_checks(j: &mut Judge<'_, '_>, wal: &WalReport) {
    let db = j.i.db;
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
    let list = member_list(db);
    let shown = if list.is_empty() { "none" } else { list.as_str() };
    let mut detail = format!(
        "WAL member {} cluster {}; db members: {shown}",
        m.node_id, m.cluster_id
    );
    let mut status = wal_member_in_db(j, wal, m.node_id, &list, &mut detail);
    let ids: Vec<u64> = db.members.iter().map(|x| x.id).collect();
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

/// The db's members as `id (name), ...`.
fn member_list(db: &DbSummary) -> String {
    db.members
        .iter()
        .map(|x| match x.name.as_str() {
            "" => format!("{:x}", x.id),
            name => format!("{:x} ({name})", x.id),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the member the WAL belongs to is one of the db's (or one the
/// WAL adds after the db's index): removed or absent, etcd starts on data
/// that is not this member's.
fn wal_member_in_db(
    j: &mut Judge<'_, '_>,
    wal: &WalReport,
    node: crate::membership::MemberId,
    list: &str,
    detail: &mut String,
) -> CheckStatus {
    use crate::wal::confchange::ChangeKind;
    let (db, wal_rel, db_index) = (j.i.db, j.i.wal_rel, j.db_index);
    let ids: Vec<u64> = db.members.iter().map(|x| x.id).collect();
    let added_later = wal.member_changes.iter().any(|c| {
        c.node_id == node
            && Some(c.index) > db_index
            && matches!(c.change, ChangeKind::AddNode | ChangeKind::AddLearnerNode)
    });
    if db.removed_members.contains(&node.0) {
        let msg = format!(
            "the WAL belongs to member {node}, which the db lists as removed from the cluster: the other members refuse to talk to it"
        );
        detail.push_str(&format!(": {msg}"));
        j.lose("member-removed", wal_rel, msg);
        return CheckStatus::Error;
    }
    if !ids.contains(&node.0) && !added_later {
        if ids.is_empty() {
            detail.push_str(": the db lists no members to compare with");
            return CheckStatus::Warning;
        }
        let msg = format!(
            "the WAL belongs to member {node}, which is not among the db's members ({list}): the WAL and the db come from different members or clusters"
        );
        detail.push_str(&format!(": {msg}"));
        j.lose("member-not-in-db", wal_rel, msg);
        return CheckStatus::Error;
    }
    if let Some(x) = db.member(node.0) {
        let named = match x.name.as_str() {
            "" => String::new(),
            name => format!(" as {name}"),
        };
        j.evidence
            .push(format!("member {node} is in the db's members{named}"));
    }
    CheckStatus::Ok
}

fn finish(j: Judge<'_, '_>, recoverable: Recoverable) -> Judged {
    let advice = advice(&j);
    let Judge {
        blockers,
        loss,
        unsafe_,
        statements,
        evidence,
        checks,
        findings,
        raise,
        v2,
        ..
    } = j;
    let (outcome, headline, mut statements, advice) = if !blockers.is_empty() {
        let mut st = blockers.clone();
        st.extend(unsafe_);
        st.extend(loss);
        (
            EtcdOutcome::WontStart,
            format!("this member cannot start: {}", blockers[0]),
            st.split_off(1),
            advice,
        )
    } else if !unsafe_.is_empty() {
        let mut st = unsafe_.clone();
        st.extend(statements);
        (
            EtcdOutcome::Unsafe,
            format!("etcd would start on this, but it should not: {}", unsafe_[0]),
            st.split_off(1),
            advice,
        )
    } else if statements.is_empty() {
        (
            EtcdOutcome::Starts,
            "etcd will start on this as it is".to_string(),
            Vec::new(),
            None,
        )
    } else {
        (
            EtcdOutcome::Starts,
            "etcd will start on this".to_string(),
            statements,
            None,
        )
    };
    statements.dedup();
    Judged {
        verdict: MemberVerdict {
            outcome,
            headline,
            statements,
            advice,
            evidence,
            recoverable,
        },
        checks,
        findings,
        raise,
        v2,
    }
}

#[cfg(test)]
mod tests {
    //! Each step of etcd's start-up, on a member dir built in memory: a
    //! WAL written by our writer and scanned, a db summary and a snap dir.
    //! (The same verdicts on real files are checked against real etcd in
    //! `tests/wal_damaged.rs` and `tests/catalogue_*.rs`.)

    use std::path::{Path, PathBuf};

    use super::*;
    use crate::membership::Member;
    use crate::pb::raftpb;
    use crate::wal::WalDir;
    use crate::wal::writer::{SegmentWriter, add_node_entry};

    fn layout() -> Layout {
        let m = PathBuf::from("m/member");
        Layout {
            input: PathBuf::from("m"),
            wal: m.join("wal"),
            wal_apart: false,
            snap: m.join("snap"),
            db: m.join("snap/db"),
            member: m,
            shown: PathBuf::from("m"),
        }
    }

    fn db(consistent_index: u64) -> DbSummary {
        DbSummary {
            file: "member/snap/db".into(),
            exists: true,
            state: DbState::Readable,
            readable: true,
            size: 20480,
            revision: Some(5),
            consistent_index: Some(consistent_index),
            term: Some(2),
            members: vec![Member {
                id: 7,
                name: "m".into(),
                peer_urls: vec!["http://127.0.0.1:2380".into()],
                client_urls: vec![],
                is_learner: false,
            }],
            ..DbSummary::default()
        }
    }

    fn snap_dir() -> SnapDir {
        SnapDir {
            dir: "member/snap".into(),
            exists: true,
            snaps: vec![],
            snap_dbs: vec![],
            broken: vec![],
            tmp: vec![],
            has_db: true,
            other: vec![],
            findings: Default::default(),
        }
    }

    /// A WAL of one segment: metadata, the member's conf change at 1,
    /// no-ops up to `last`, a HardState committing `commit`; `corrupt`
    /// flips a byte of its last entry (a CRC mismatch before the HardState).
    fn wal(last: u64, commit: u64, corrupt: bool) -> WalReport {
        let mut w = SegmentWriter::new(0);
        w.metadata(7, cluster_id(&[7]));
        // etcd's first segment marks the empty snapshot at index 0.
        w.snapshot(0, 0, None);
        w.entry(&add_node_entry(2, 1, 7, b"{\"id\":7}"));
        for i in 2..=last {
            w.entry(&raftpb::Entry {
                term: Some(2),
                index: Some(i),
                r#type: Some(0),
                data: Some(if corrupt && i == last {
                    b"zzzzzzzz".to_vec()
                } else {
                    vec![]
                }),
            });
        }
        w.state(2, 7, commit);
        let mut bytes = w.into_bytes();
        if corrupt {
            let at = bytes.windows(8).position(|x| x == b"zzzzzzzz").unwrap();
            bytes[at] = b'y';
        }
        let d = WalDir::from_files(
            Path::new("m/member/wal"),
            vec![("0000000000000000-0000000000000000.wal".into(), bytes)],
        );
        crate::wal::scan(&d, crate::wal::ScanOptions::default(), |_| {})
    }

    fn judge_with(db: &DbSummary, wal: Option<&WalReport>) -> Judged {
        let (layout, snap) = (layout(), snap_dir());
        judge(&Inputs {
            layout: &layout,
            db,
            db_report: None,
            wal,
            wal_error: None,
            snap: &snap,
            wal_rel: "member/wal",
            snap_rel: "member/snap",
            usage: None,
            live: false,
        })
    }

    fn codes(j: &Judged) -> Vec<&'static str> {
        j.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn db_and_wal_in_step_start() {
        let w = wal(5, 5, false);
        let j = judge_with(&db(5), Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::Starts, "{:?}", j.verdict);
        assert!(
            j.findings.iter().all(|f| f.severity < Severity::Error),
            "{:?}",
            codes(&j)
        );
        assert_eq!(j.verdict.recoverable.index, Some(Index(5)));
    }

    #[test]
    fn a_db_behind_the_wal_is_replayed() {
        let w = wal(8, 8, false);
        let j = judge_with(&db(5), Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::Starts);
        assert!(codes(&j).contains(&"db-behind-wal"), "{:?}", codes(&j));
        assert!(
            j.verdict
                .statements
                .iter()
                .any(|s| s.contains("etcd will replay them (entries 6..8)"))
        );
    }

    #[test]
    fn a_db_ahead_of_its_wal_starts_but_is_unsafe() {
        let w = wal(5, 5, false);
        let j = judge_with(&db(9), Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::Unsafe, "{:?}", j.verdict);
        assert!(codes(&j).contains(&"db-ahead-of-wal"), "{:?}", codes(&j));
    }

    #[test]
    fn no_wal_over_a_db_with_data_is_unsafe() {
        let j = judge_with(&db(5), None);
        assert_eq!(j.verdict.outcome, EtcdOutcome::Unsafe, "{:?}", j.verdict);
        assert!(j.verdict.recoverable.source == "db");
    }

    #[test]
    fn a_corrupt_wal_does_not_start_and_says_what_a_restore_keeps() {
        let w = wal(6, 6, true);
        let j = judge_with(&db(3), Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::WontStart, "{:?}", j.verdict);
        let crc = w.findings.items().iter().find(|f| f.code == "wal-crc-mismatch");
        assert_eq!(
            crc.map(|f| f.severity),
            Some(Severity::Error),
            "the WAL scan says why"
        );
        assert_eq!(j.verdict.recoverable.source, "db");
        assert_eq!(j.verdict.recoverable.index, Some(Index(3)));
        assert!(j.verdict.advice.is_some());
    }

    #[test]
    fn a_missing_db_is_rebuilt_from_a_wal_that_starts_at_one() {
        let missing = DbSummary {
            file: "member/snap/db".into(),
            ..DbSummary::default()
        };
        let w = wal(4, 4, false);
        let j = judge_with(&missing, Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::Starts, "{:?}", j.verdict);
        assert!(codes(&j).contains(&"db-missing"), "{:?}", codes(&j));
    }

    #[test]
    fn a_wal_of_another_member_is_unsafe_and_a_removed_one_too() {
        let w = wal(5, 5, false);
        let mut other = db(5);
        other.members[0].id = 8;
        let j = judge_with(&other, Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::Unsafe, "{:?}", j.verdict);
        assert!(codes(&j).contains(&"member-not-in-db"), "{:?}", codes(&j));
        let mut removed = db(5);
        removed.removed_members = vec![7];
        let j = judge_with(&removed, Some(&w));
        assert!(codes(&j).contains(&"member-removed"), "{:?}", codes(&j));
        let ids = j.checks.iter().find(|c| c.name == "member-ids").unwrap();
        assert_eq!(ids.status, CheckStatus::Error);
    }

    #[test]
    fn a_commit_beyond_the_log_does_not_start() {
        let w = wal(4, 9, false);
        let j = judge_with(&db(4), Some(&w));
        assert_eq!(j.verdict.outcome, EtcdOutcome::WontStart, "{:?}", j.verdict);
    }
}
