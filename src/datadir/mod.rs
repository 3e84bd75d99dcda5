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
pub mod layout;
pub mod replay;
pub mod verdict;
pub mod wallog;

use std::path::Path;

use crate::mvcc::schema::{ConfState as DbConfState, Member};
use crate::mvcc::{DbReport, ScanOptions as DbScanOptions, scan as db_scan};
use crate::report::{Finding, Findings, Severity};
use crate::snap::{self, SnapDir};
use crate::source::MappedFile;
use crate::wal::{self, WalDir, WalReport};

pub use compare::{Comparison, compare};
pub use layout::{Layout, LayoutError, resolve, resolve_wal};
pub use verdict::{Check, CheckStatus, Outcome, Verdict};

/// How thoroughly to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Deep: check every db record and key history, verify the trailer, and
    /// decode every WAL payload (what `check` does). Otherwise what `status`
    /// reads of the db, and the WAL records without their payloads.
    pub deep: bool,
}

/// What the db says, for the cross-checks and the report.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbSummary {
    /// The file (relative to the input).
    pub file: String,
    /// Whether it exists.
    pub exists: bool,
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
            errors: r.findings.count(Severity::Error),
            warnings: r.findings.count(Severity::Warning),
        }
    }

    /// The member named `id`, if the db lists it.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// Everything known about one member's data dir.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberReport {
    /// The path given.
    pub path: String,
    /// Where things are.
    pub layout: Layout,
    /// The verdict.
    pub verdict: Verdict,
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
pub fn inspect(path: &Path, wal_dir: Option<&Path>, opts: Options) -> Result<MemberReport, LayoutError> {
    let layout = resolve(path, wal_dir)?;
    let mut findings = Findings::default();

    // The db.
    let db_file = rel(&layout, &layout.db);
    let (db_report, db) = match MappedFile::open(&layout.db) {
        Ok(f) => {
            let r = db_scan(
                f.bytes(),
                DbScanOptions {
                    deep: opts.deep,
                    verify_trailer: opts.deep,
                    file_digest: false,
                    single_thread: false,
                    skip_hash: false,
                },
            );
            let s = DbSummary::from_report(db_file.clone(), &r);
            let mut fs = r.findings.clone();
            fs.set_file(&db_file);
            for f in fs.items() {
                // A raw db has no trailer; that is how it should be.
                if f.code != "no-sha256-trailer" {
                    findings.push(f.clone());
                }
            }
            (Some(r), s)
        }
        Err(e) => {
            let exists = layout.db.exists();
            findings.push(
                Finding::new(
                    Severity::Error,
                    if exists { "db-unreadable" } else { "db-missing" },
                    if exists {
                        format!("the db cannot be opened: {e}")
                    } else {
                        "no db file (member/snap/db)".to_string()
                    },
                )
                .in_file(db_file.clone()),
            );
            (
                None,
                DbSummary {
                    file: db_file,
                    exists,
                    ..DbSummary::default()
                },
            )
        }
    };

    // The WAL.
    let wal_rel = rel(&layout, &layout.wal);
    let (wal, wal_error) = match WalDir::open(&layout.wal) {
        Ok(d) => {
            let mut r = wal::scan(&d, wal::ScanOptions { payloads: opts.deep }, |_| {});
            under(&mut r.findings, &wal_rel);
            findings.extend(r.findings.clone());
            (Some(r), None)
        }
        Err(e) => {
            findings.push(
                Finding::new(
                    Severity::Error,
                    "wal-dir-missing",
                    format!(
                        "the WAL directory cannot be read ({e}): etcd would not recognise this member and would bootstrap or join a cluster as a new one"
                    ),
                )
                .in_file(wal_rel.clone()),
            );
            (None, Some(e.to_string()))
        }
    };

    // The snap dir.
    let snap_rel = rel(&layout, &layout.snap);
    let mut snap = snap::scan(&layout.snap);
    under(&mut snap.findings, &snap_rel);
    findings.extend(snap.findings.clone());

    let (verdict, checks, cross) = verdict::judge(&verdict::Inputs {
        layout: &layout,
        db: &db,
        db_report: db_report.as_ref(),
        wal: wal.as_ref(),
        snap: &snap,
        wal_rel: &wal_rel,
        snap_rel: &snap_rel,
    });
    for f in cross {
        findings.push(f);
    }
    findings.sort();
    Ok(MemberReport {
        path: path.display().to_string(),
        errors: findings.count(Severity::Error),
        warnings: findings.count(Severity::Warning),
        layout,
        verdict,
        checks,
        db,
        wal,
        wal_error,
        snap,
        findings,
    })
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
