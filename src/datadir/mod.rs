//! A member's data dir judged as a whole: the db, the WAL and the snap files,
//! checked against each other, and a verdict in plain words on what etcd
//! would do with it.
//!
//! ```text
//! layout.rs    where db, WAL and snap files are
//! mod.rs       read all three (mvcc::scan, wal::scan, snap::scan) into a MemberReport
//! verdict.rs   the cross-checks and the verdict, following etcd 3.4/3.5's start-up
//! compare.rs   several members side by side: who holds the most recent committed data
//! ```

pub mod compare;
pub mod dbstart;
pub mod layout;
pub mod replay;
pub mod tail;
pub mod verdict;
pub mod wallog;

use std::path::Path;

use crate::membership::Member;
use crate::mvcc::schema::DbConfState;
use crate::mvcc::{DbReport, DbScanOptions, scan as db_scan};
use crate::report::{Finding, Findings, Severity};
use crate::snap::{self, SnapDir};
use crate::source::MappedFile;
use crate::wal::{self, WalDir, WalReport};

pub use compare::{Comparison, compare};
pub use layout::{Layout, LayoutError, resolve, resolve_wal};
pub use verdict::{Check, CheckStatus, EtcdOutcome, MemberVerdict};

/// How thoroughly to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct InspectOptions {
    /// Check each file on one thread (the caller keeps the other cores busy).
    pub single_thread: bool,
    /// Deep: check every db record and key history, verify the trailer, and
    /// decode every WAL payload (what `check` does). Otherwise what `status`
    /// reads of the db, and the WAL records without their payloads.
    pub deep: bool,
}

/// What bbolt finds when etcd opens a member's db.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbState {
    /// No `member/snap/db`: etcd creates a new, empty one.
    #[default]
    Missing,
    /// A 0-byte file: bbolt initialises it as a new, empty db.
    Empty,
    /// Neither meta page is valid, or the file is too short: bbolt refuses
    /// it ("invalid database").
    Invalid,
    /// It opens.
    Readable,
}

/// What the db says, for the cross-checks and the report.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbSummary {
    /// The file (relative to the input).
    pub file: String,
    /// Whether it exists.
    pub exists: bool,
    /// What bbolt finds when it opens it.
    pub state: DbState,
    /// Whether its meta pages could be read.
    pub readable: bool,
    /// Size in bytes.
    pub size: u64,
    /// Head revision.
    pub revision: Option<i64>,
    /// Compact revision.
    pub compact_revision: Option<i64>,
    /// Last applied raft index.
    pub consistent_index: Option<u64>,
    /// Its term (3.5+).
    pub term: Option<u64>,
    /// etcdutl's hash.
    pub hash: Option<u32>,
    /// The `members` bucket.
    pub members: Vec<Member>,
    /// The `members_removed` bucket.
    pub removed_members: Vec<u64>,
    /// `meta/confState` (3.5+).
    pub conf_state: Option<DbConfState>,
    /// Cluster version.
    pub cluster_version: Option<String>,
    /// Why it could not be opened at all (not a regular file, no
    /// permission...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_error: Option<String>,
    /// Errors found in it.
    pub errors: usize,
    /// Warnings found in it.
    pub warnings: usize,
}

impl DbSummary {
    fn from_report(file: String, r: &DbReport) -> DbSummary {
        let readable = r.meta_choice.is_some();
        DbSummary {
            file,
            exists: true,
            state: if readable {
                DbState::Readable
            } else {
                DbState::Invalid
            },
            readable,
            size: r.file_size,
            revision: readable.then_some(r.revision),
            compact_revision: r.meta.finished_compact_rev,
            consistent_index: r.meta.consistent_index,
            term: r.meta.term,
            hash: (readable && !r.incomplete).then_some(r.hash),
            members: r.members.clone(),
            removed_members: r.removed_members.clone(),
            conf_state: r.meta.conf_state.clone(),
            cluster_version: r.cluster.cluster_version.clone(),
            open_error: None,
            errors: r.findings.count(Severity::Error),
            warnings: r.findings.count(Severity::Warning),
        }
    }

    /// The member named `id`, if the db lists it.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// What etcd serves after starting on a member dir whose db is behind its
/// WAL: the db plus the committed entries replayed.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Served {
    /// The revision etcd serves.
    pub revision: i64,
    /// The committed WAL entries applied on top of the db.
    pub entries: u64,
    /// The keys it serves at that revision.
    pub keys: u64,
}

/// Everything known about one member's data dir.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberReport {
    /// The path given.
    pub path: String,
    /// Where things are.
    pub layout: Layout,
    /// Whether etcd is running on it now (it holds the db's lock).
    pub live: bool,
    /// Set for an etcd 2.x member dir: where its v2 data is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2: Option<verdict::V2Data>,
    /// The verdict.
    pub verdict: MemberVerdict,
    /// The cross-checks.
    pub checks: Vec<Check>,
    /// The db.
    pub db: DbSummary,
    /// The WAL, when its directory could be read.
    pub wal: Option<WalReport>,
    /// Why the WAL dir could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_error: Option<String>,
    /// The snap dir.
    pub snap: SnapDir,
    /// The db's scan, when it opens.
    #[serde(skip)]
    pub db_report: Option<DbReport>,
    /// What etcd serves after replaying the WAL (full readings of a dir
    /// whose db is behind its WAL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served: Option<Served>,
    /// Every finding (db, WAL, snap and cross-checks), errors first, with its file.
    pub findings: Findings,
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
}

impl MemberReport {
    /// Whether any finding is a warning or an error.
    pub fn has_problems(&self) -> bool {
        self.findings.has_problems()
    }
}

fn rel(layout: &Layout, p: &Path) -> String {
    p.strip_prefix(&layout.input)
        .ok()
        .filter(|r| !r.as_os_str().is_empty())
        .map(|r| r.display().to_string())
        .unwrap_or_else(|| p.display().to_string())
}

/// Reads and judges the data dir at `path`.
pub fn inspect(
    path: &Path,
    wal_dir: Option<&Path>,
    opts: InspectOptions,
) -> Result<MemberReport, LayoutError> {
    inspect_as(path, &path.display().to_string(), wal_dir, opts)
}

/// Every error means lost or wrong data: the start-up steps say why, and
/// this is the net for one they do not name.
fn unsafe_on_any_error(verdict: &mut MemberVerdict, findings: &Findings) {
    if verdict.outcome != EtcdOutcome::Starts {
        return;
    }
    if let Some(e) = findings.items().iter().find(|f| f.severity == Severity::Error) {
        verdict.outcome = EtcdOutcome::Unsafe;
        verdict.headline = format!(
            "etcd would start on this, but it should not: {}{}",
            e.file.as_deref().map(|f| format!("{f}: ")).unwrap_or_default(),
            e.message
        );
    }
}

/// What etcd serves from the db in `map` once it has replayed the WAL.
fn served_by(map: &crate::source::MappedFile, wal: &WalDir) -> Option<Served> {
    crate::bolt::Db::open(crate::mvcc::trailer::image(map.bytes()))
        .ok()
        .and_then(|(bdb, _)| served(bdb, wal))
}

/// Reads and judges the data dir at `path`, calling it `shown` in what it
/// says (an archive member unpacked into a scratch dir).
pub fn inspect_as(
    path: &Path,
    shown: &str,
    wal_dir: Option<&Path>,
    opts: InspectOptions,
) -> Result<MemberReport, LayoutError> {
    let mut layout = resolve(path, wal_dir)?;
    layout.shown = std::path::PathBuf::from(shown);
    let mut findings = Findings::default();
    let live = crate::source::locked(&layout.db);

    // The db.
    let db_file = rel(&layout, &layout.db);
    let (db_report, db, db_map) = read_db(&layout.db, &db_file, opts, &mut findings);

    // The WAL. When the db has nothing to say (missing or empty), the
    // payloads tell whether this is an etcd 2.x member (v2 store only).
    let wal_rel = rel(&layout, &layout.wal);
    let want_usage = opts.deep || matches!(db.state, DbState::Missing | DbState::Empty);
    let mut usage = WalUsage::default();
    let wal_dir = WalDir::open(&layout.wal);
    let (wal, wal_error) = match &wal_dir {
        Ok(d) => {
            let mut r = wal::scan(d, wal::ScanOptions { payloads: opts.deep }, |e| {
                if want_usage && e.seen_by_etcd {
                    usage.add(&e.entry);
                }
            });
            under(&mut r.findings, &wal_rel);
            findings.extend(r.findings.clone());
            (Some(r), None)
        }
        Err(e) => (None, Some(e.to_string())),
    };

    // The snap dir.
    let snap_rel = rel(&layout, &layout.snap);
    let mut snap = snap::scan(&layout.snap);
    under(&mut snap.findings, &snap_rel);
    findings.extend(snap.findings.clone());

    let judged = verdict::judge(&verdict::Inputs {
        layout: &layout,
        db: &db,
        db_report: db_report.as_ref(),
        wal: wal.as_ref(),
        wal_error: wal_error.as_deref(),
        snap: &snap,
        wal_rel: &wal_rel,
        snap_rel: &snap_rel,
        usage: want_usage.then_some(&usage),
        live,
    });
    for f in judged.findings {
        findings.push(f);
    }
    findings.raise(&judged.raise);
    let mut verdict = judged.verdict;
    unsafe_on_any_error(&mut verdict, &findings);
    findings.sort();
    // What etcd serves once it has replayed the committed entries the db
    // lacks (full readings only; nothing to do when the db holds them all).
    let behind = match (db.consistent_index, wal.as_ref().and_then(|w| w.hard_state)) {
        (Some(ci), Some(h)) => ci < h.commit.0,
        _ => false,
    };
    let served = match (&wal_dir, &db_map) {
        (Ok(d), Some(m)) if opts.deep && behind && verdict.outcome == EtcdOutcome::Starts => served_by(m, d),
        _ => None,
    };
    Ok(MemberReport {
        served,
        path: shown.to_string(),
        errors: findings.count(Severity::Error),
        warnings: findings.count(Severity::Warning),
        layout,
        v2: judged.v2,
        live,
        verdict,
        checks: judged.checks,
        db,
        wal,
        wal_error,
        snap,
        db_report,
        findings,
    })
}

/// What etcd serves from `db` once it has applied the committed entries
/// of `wal` the db lacks.
fn served(db: crate::bolt::Db<'_>, wal: &WalDir) -> Option<Served> {
    use crate::mvcc::index::{KeyIndex, KeyRange};
    use crate::mvcc::keyspace::Keyspace;
    let r = replay::replay(&db, wal).ok()?;
    let ks = Keyspace {
        db,
        overlay: Some(&r.changes),
    };
    let index = KeyIndex::build(&ks, &KeyRange::All).ok()?;
    Some(Served {
        revision: r.report.revision_after,
        entries: r.report.applied_entries,
        keys: index.live_at(index.head).count() as u64,
    })
}

/// Reads the db of a member dir: its summary, and its scan when it opens.
/// Its findings go to `findings` (named by their file); that it is missing
/// or empty is the verdict's to say, since what etcd does then depends on
/// the rest of the dir.
fn read_db(
    path: &Path,
    file: &str,
    opts: InspectOptions,
    findings: &mut Findings,
) -> (Option<DbReport>, DbSummary, Option<MappedFile>) {
    let f = match MappedFile::open(path) {
        Ok(f) => f,
        Err(e) => {
            let exists = path.exists();
            if exists {
                findings.push(
                    Finding::new(
                        Severity::Error,
                        "db-unreadable",
                        format!("the db cannot be opened: {e}"),
                    )
                    .in_file(file.to_string()),
                );
            }
            let state = if exists {
                DbState::Invalid
            } else {
                DbState::Missing
            };
            return (
                None,
                DbSummary {
                    file: file.to_string(),
                    exists,
                    state,
                    open_error: exists.then(|| e.to_string()),
                    ..DbSummary::default()
                },
                None,
            );
        }
    };
    if f.bytes().is_empty() {
        return (
            None,
            DbSummary {
                file: file.to_string(),
                exists: true,
                state: DbState::Empty,
                ..DbSummary::default()
            },
            None,
        );
    }
    let r = db_scan(
        f.bytes(),
        DbScanOptions {
            deep: opts.deep,
            verify_trailer: opts.deep,
            file_digest: false,
            single_thread: opts.single_thread,
            skip_hash: false,
        },
    );
    let s = DbSummary::from_report(file.to_string(), &r);
    let mut fs = r.findings.clone();
    fs.set_file(file);
    for f in fs.items() {
        // A raw db has no trailer; that is how it should be.
        if f.code != "no-sha256-trailer" {
            findings.push(f.clone());
        }
    }
    (Some(r), s, Some(f))
}

/// What the WAL's entries write: v3 requests (the db's keyspace) or v2
/// requests (the v2 store of etcd 2.x and of etcd 3's v2 API).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalUsage {
    /// v3 requests that change the keyspace or leases.
    pub v3_writes: u64,
    /// v2 requests that write user keys (paths under `/1`).
    pub v2_writes: u64,
    /// Other v2 requests (membership and cluster version, under `/0`).
    pub v2_cluster: u64,
}

impl WalUsage {
    fn add(&mut self, e: &wal::Entry<'_>) {
        use wal::payload::Request;
        if e.kind != wal::EntryType::Normal || e.data.is_empty() {
            return;
        }
        match wal::payload::decode(e).request {
            Request::V2 { path, .. } if path.starts_with("/1") => self.v2_writes += 1,
            Request::V2 { .. } => self.v2_cluster += 1,
            Request::Put { .. }
            | Request::DeleteRange { .. }
            | Request::Txn { .. }
            | Request::Compaction { .. }
            | Request::LeaseGrant { .. }
            | Request::LeaseRevoke { .. } => self.v3_writes += 1,
            _ => {}
        }
    }
}

/// Names the files of a WAL or snap scan's findings by their path under
/// the input (`dir/<name>`, or `dir` for findings about the directory).
fn under(fs: &mut Findings, dir: &str) {
    fs.map_files(|f| match f {
        Some(n) if !n.starts_with(dir) => format!("{dir}/{n}"),
        Some(n) => n.to_string(),
        None => dir.to_string(),
    });
}
