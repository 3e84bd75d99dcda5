//! A compaction or defragmentation as a job: every source is judged (on
//! its own thread, while the new db is planned and written), the members
//! of one cluster are compared at the compaction point, and outputs are
//! renamed into place only when every source passed and every member
//! agrees. Nothing is written into a source unless asked (`--in-place`),
//! and then the old db is kept beside the new one.

use std::path::{Path, PathBuf};

use crate::bolt::Db;
use crate::judge::{self, Judgment, Kind};
use crate::mvcc::schema::Alarm;
use crate::source::MappedFile;

use super::{CompactError, Disarm, Plan, Rewritten, Target};

/// Boxed errors of the writers.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Called after every output is written and before any is renamed.
type Gate<'g> = &'g mut dyn FnMut() -> Result<(), BoxError>;

/// What to do.
#[derive(Clone, Debug)]
pub struct CompactRequest {
    /// Snapshots, db files or member dirs (several: the members of one cluster).
    pub sources: Vec<PathBuf>,
    /// Where to compact (`None`: defragment only).
    pub target: Option<Target>,
    /// Alarms to remove.
    pub disarm: Disarm,
    /// The output (one source), or a dir with one entry per source.
    pub out: Option<PathBuf>,
    /// Replace each member dir's db in place, keeping the old one.
    pub in_place: bool,
    /// Replace a non-empty `out`.
    pub overwrite: bool,
    /// The name the old db keeps in place (`db.before-compact`).
    pub keep_old_as: &'static str,
}

/// Why a job did not write anything.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The request cannot be carried out as given (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A source's judgment refuses it (exit 1).
    #[error("{why}")]
    Refused {
        /// One sentence.
        why: String,
        /// The judgment.
        judgment: Box<Judgment>,
    },
    /// The members do not hold the same key space (exit 1).
    #[error("{0}")]
    Disagree(String),
    /// The compaction cannot be done on a source (exit 2).
    #[error("{path}: {source}")]
    Compact {
        /// The source.
        path: String,
        /// Why.
        source: CompactError,
    },
    /// Writing failed (exit 2).
    #[error("{0}")]
    Write(String),
}

impl JobError {
    /// Whether the inputs are at fault (exit 1) rather than the request (exit 2).
    pub fn input_problem(&self) -> bool {
        match self {
            JobError::Refused { .. } | JobError::Disagree(_) => true,
            JobError::Compact { source, .. } => !matches!(
                source,
                CompactError::Compacted { .. } | CompactError::Future { .. } | CompactError::Invalid(_)
            ),
            _ => false,
        }
    }
}

/// A digest of the records a member keeps up to a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HashAt {
    /// The revision.
    revision: i64,
    /// The digest.
    hash: u32,
}

/// What was done to one source.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    /// The source as given.
    pub source: String,
    /// What it is.
    pub kind: Kind,
    /// The db read.
    pub db: String,
    /// The file or dir written.
    pub output: String,
    /// Where the old db was kept (in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_old_db: Option<String>,
    /// The newest revision.
    pub revision: i64,
    /// The new compact revision (none: defragmented only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact_revision: Option<i64>,
    /// The compact revision before (-1: none).
    pub previous_compact_revision: i64,
    /// Bytes of the db before.
    pub size_before: u64,
    /// The alarms removed.
    pub alarms_removed: Vec<Alarm>,
    /// The alarms left.
    pub alarms: Vec<Alarm>,
    /// The WAL tail folded into the db, so that the disarm lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<crate::compact::Fold>,
    /// Several members: every one holds the same keys and history up to
    /// this revision (the lowest head among them) after the rewrite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identical_up_to: Option<i64>,
    /// What was written.
    #[serde(flatten)]
    pub rewritten: Rewritten,
}

/// One source, opened and planned.
struct Unit {
    path: PathBuf,
    kind: Kind,
    /// The data dir layout (member dirs).
    layout: Option<crate::datadir::Layout>,
    db_path: PathBuf,
    file: MappedFile,
    trailer: bool,
    plan: Plan,
    hashes: Vec<HashAt>,
}

impl Unit {
    fn db(&self) -> Result<Db<'_>, JobError> {
        Db::open(crate::mvcc::trailer::image(self.file.bytes()))
            .map(|(db, _)| db)
            .map_err(|e| JobError::Compact {
                path: self.db_path.display().to_string(),
                source: e.into(),
            })
    }
}

/// Runs the job. Returns one [`Done`] per source, in order, and every
/// source's judgment (for the warnings it passed with).
pub fn run(req: &CompactRequest) -> Result<(Vec<Done>, Vec<Judgment>), JobError> {
    check_request(req)?;
    std::thread::scope(|sc| {
        let mut j = Judging {
            threads: req
                .sources
                .iter()
                .map(|p| sc.spawn(move || judge_one(p)))
                .collect(),
            judgments: Vec::new(),
            refused: None,
        };
        let written = plan_all(req).and_then(|units| write_all(req, &units, &mut || j.settle()));
        // A refusal explains best (a source that cannot be planned is
        // usually damaged); otherwise what went wrong.
        let _ = j.settle();
        match (j.refused, written) {
            (Some(r), _) => Err(r),
            (None, w) => w.map(|d| (d, j.judgments)),
        }
    })
}

/// The judgments running beside the job.
struct Judging<'s> {
    threads: Vec<std::thread::ScopedJoinHandle<'s, Judgment>>,
    judgments: Vec<Judgment>,
    refused: Option<JobError>,
}

impl Judging<'_> {
    /// Waits for every judgment; an error when one refuses its source.
    fn settle(&mut self) -> Result<(), BoxError> {
        if !self.threads.is_empty() {
            self.judgments = self
                .threads
                .drain(..)
                .map(|h| h.join().expect("judgment thread"))
                .collect();
            self.refused = self.judgments.iter().map(admit).find_map(Result::err);
        }
        match self.refused {
            Some(_) => Err("refused by the judgment".into()),
            None => Ok(()),
        }
    }
}

/// The full judgment of one source (`check`'s).
fn judge_one(p: &Path) -> Judgment {
    let mut js = judge::judge(p, &judge::JudgeOptions::full());
    js.remove(0)
}

/// Refuses what the judgment refuses, and what a compaction cannot take.
fn admit(j: &Judgment) -> Result<(), JobError> {
    let refuse = |why: String| JobError::Refused {
        why,
        judgment: Box::new(j.clone()),
    };
    if !j.containers.is_empty() {
        return Err(JobError::Usage(format!(
            "{}: a {} file: decompress it first, then give the file inside",
            j.path,
            j.containers.join("+")
        )));
    }
    match j.kind {
        Kind::Snapshot | Kind::Db | Kind::SnapDb | Kind::DataDir => {}
        Kind::Other => return Err(JobError::Usage(format!("{}: {}", j.path, j.headline))),
        k => {
            return Err(JobError::Usage(format!(
                "{}: a {}, not a snapshot, a db or a member's data dir",
                j.path,
                k.word()
            )));
        }
    }
    if j.live {
        return Err(running(&j.path));
    }
    if j.verdict == crate::report::Verdict::Unreadable {
        return Err(JobError::Usage(format!("{}: {}", j.path, j.headline)));
    }
    if !j.passes() {
        let first = j.first_problem().unwrap_or_else(|| j.headline.clone());
        return Err(refuse(format!(
            "{}: {first}; refusing to rewrite a damaged source (`etcd-rescue check {}` lists every problem; `etcd-rescue salvage` saves what can be saved)",
            j.path, j.path
        )));
    }
    Ok(())
}

fn running(p: &str) -> JobError {
    JobError::Usage(format!(
        "{p}: etcd is running on it (it holds the lock on the db): stop that member first, or compact it online (`etcdctl compact REV --physical`, then `etcdctl defrag`)"
    ))
}

/// The flags' rules: one place to write to, in place only for member dirs.
fn check_request(req: &CompactRequest) -> Result<(), JobError> {
    match (&req.out, req.in_place) {
        (Some(_), true) => Err(JobError::Usage("--out and --in-place exclude each other".into())),
        (None, false) => Err(JobError::Usage(
            "say where to write: --out PATH (a new snapshot, db or data dir; a dir of them for several sources), or --in-place for member dirs (the old db is kept beside the new one)".into(),
        )),
        _ if req.sources.is_empty() => Err(JobError::Usage("no source given".into())),
        _ => Ok(()),
    }
}

/// Opens and plans every source; for several, compares them.
fn plan_all(req: &CompactRequest) -> Result<Vec<Unit>, JobError> {
    let mut units = req
        .sources
        .iter()
        .map(|p| open(p, req))
        .collect::<Result<Vec<_>, _>>()?;
    if units.len() > 1 {
        align(&mut units, req)?;
    }
    // After the compaction point is settled: a re-plan drops a fold.
    if req.disarm.nospace || req.disarm.corrupt {
        for u in &mut units {
            let Some(l) = &u.layout else { continue };
            let shown = u.path.display().to_string();
            if let Some(f) = fold_tail(&u.plan, u.db()?, l, req.disarm, &shown)? {
                u.plan.fold(f, req.disarm);
            }
        }
    }
    Ok(units)
}

/// Opens one source and plans its rewrite.
fn open(path: &Path, req: &CompactRequest) -> Result<Unit, JobError> {
    let shown = path.display().to_string();
    let (kind, layout, db_path) = if path.is_dir() {
        let l = crate::datadir::resolve(path, None).map_err(|e| JobError::Usage(e.to_string()))?;
        if !l.db.is_file() {
            return Err(JobError::Usage(format!(
                "{}: no db to rewrite (etcd would rebuild it from the WAL at start)",
                l.db.display()
            )));
        }
        if crate::source::locked(&l.db) {
            return Err(running(&shown));
        }
        (Kind::DataDir, Some(l.clone()), l.db)
    } else {
        if req.in_place {
            return Err(JobError::Usage(format!(
                "{shown}: --in-place is for member dirs; write a new file with --out (a backup is never rewritten in place)"
            )));
        }
        (Kind::Snapshot, None, path.to_path_buf())
    };
    let file = MappedFile::open(&db_path).map_err(|e| JobError::Usage(e.to_string()))?;
    let trailer = layout.is_none() && crate::mvcc::trailer::has_trailer(file.bytes().len() as u64);
    let mut u = Unit {
        path: path.to_path_buf(),
        kind: if layout.is_none() && !trailer {
            Kind::Db
        } else {
            kind
        },
        layout,
        db_path,
        file,
        trailer,
        plan: Plan::default(),
        hashes: Vec::new(),
    };
    let db = u.db()?;
    let plan = super::plan(db, req.target, req.disarm).map_err(|source| JobError::Compact {
        path: shown.clone(),
        source,
    })?;
    u.plan = plan;
    Ok(u)
}

/// A member dir whose WAL tail would raise a disarmed alarm again at start
/// gets the tail folded into its db, or is refused when the tail changes
/// data (`datadir::tail`).
fn fold_tail(
    plan: &Plan,
    db: Db<'_>,
    l: &crate::datadir::Layout,
    disarm: Disarm,
    shown: &str,
) -> Result<Option<crate::compact::Fold>, JobError> {
    let wal =
        crate::wal::WalDir::open(&l.wal).map_err(|e| JobError::Usage(format!("{}: {e}", l.wal.display())))?;
    let ci = crate::mvcc::kv::read_meta(&db)
        .map_err(|e| JobError::Compact {
            path: shown.to_string(),
            source: e.into(),
        })?
        .consistent_index
        .unwrap_or(0);
    let compact = plan.compact_at.unwrap_or(plan.compacted_before);
    let tail = crate::datadir::tail::alarm_tail(&wal, ci, &plan.alarms, compact);
    let raised: Vec<&(u64, String, u64)> = tail
        .activations
        .iter()
        .filter(|(m, a, _)| {
            disarm.removes(&Alarm {
                member_id: *m,
                alarm: a.clone(),
            })
        })
        .collect();
    let Some((_, alarm, at)) = raised.first() else {
        return Ok(None);
    };
    if let Some((i, what)) = &tail.blocked_at {
        return Err(JobError::Usage(format!(
            "{shown}: the WAL activates the {alarm} alarm at index {at}, after the db's consistent index {ci}, so etcd raises it again at every start; folding that into the db offline is safe only while the entries after {ci} change no data, and entry {i} ({what}) does. Restore this dir instead (`etcd-rescue restore {shown} ...` applies its WAL into a new cluster), then compact and disarm the restored data dir"
        )));
    }
    let alarms = tail
        .alarms
        .iter()
        .map(|(m, a)| Alarm {
            member_id: *m,
            alarm: a.clone(),
        })
        .collect();
    Ok(Some(crate::compact::Fold {
        from_index: ci,
        consistent_index: tail.to,
        term: tail.term,
        alarms,
    }))
}

/// Several members: one compaction point for all (the lowest head bounds
/// `--rev head` and `--keep-revisions`), and the same key space at it and
/// at the lowest head, as etcd's corruption check would compare them.
fn align(units: &mut [Unit], req: &CompactRequest) -> Result<(), JobError> {
    let low = units.iter().map(|u| u.plan.head).min().unwrap_or(0);
    let at = req.target.map(|t| t.resolve(low));
    if let Some(r) = at {
        for u in units.iter_mut() {
            if u.plan.compact_at != Some(r) {
                let db = u.db()?;
                u.plan = super::plan(db, Some(Target::Rev(r)), req.disarm).map_err(|source| {
                    JobError::Compact {
                        path: u.path.display().to_string(),
                        source,
                    }
                })?;
            }
        }
    }
    let mut points: Vec<i64> = at.into_iter().chain([low]).collect();
    points.dedup();
    for u in units.iter_mut() {
        let db = u.db()?;
        u.hashes = points
            .iter()
            .map(|&rev| {
                super::hash_after(&db, &u.plan, rev)
                    .map(|hash| HashAt { revision: rev, hash })
                    .map_err(|source| JobError::Compact {
                        path: u.path.display().to_string(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    for (i, &rev) in points.iter().enumerate() {
        let first = units[0].hashes[i].hash;
        if units.iter().any(|u| u.hashes[i].hash != first) {
            let rows: Vec<String> = units
                .iter()
                .map(|u| {
                    format!(
                        "  {}: digest {:08x} (head {})",
                        u.path.display(),
                        u.hashes[i].hash,
                        u.plan.head
                    )
                })
                .collect();
            return Err(JobError::Disagree(format!(
                "the members do not hold the same keys and history at revision {rev}, so they are not copies of one cluster's state (CRC-32C of the records each keeps, as etcd's HashKV computes it; etcd's corruption check would find them different):\n{}\nrefusing to compact them together; inspect them with `etcd-rescue inspect {}`",
                rows.join("\n"),
                units
                    .iter()
                    .map(|u| u.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        }
    }
    Ok(())
}

/// Where one source's output goes.
fn output_of(req: &CompactRequest, u: &Unit) -> PathBuf {
    match (&req.out, req.sources.len()) {
        (Some(o), 1) => o.clone(),
        (Some(o), _) => o.join(u.path.file_name().unwrap_or(u.path.as_os_str())),
        (None, _) => u.db_path.clone(),
    }
}

/// Writes every output; each is renamed into place only after all are
/// written (nested atomic writes: the innermost renames first).
fn write_all(req: &CompactRequest, units: &[Unit], gate: Gate<'_>) -> Result<Vec<Done>, JobError> {
    let targets: Vec<PathBuf> = units.iter().map(|u| output_of(req, u)).collect();
    if req.sources.len() > 1 {
        let mut seen = std::collections::BTreeSet::new();
        for t in &targets {
            if !seen.insert(t.clone()) {
                return Err(JobError::Usage(format!(
                    "two sources would be written to {}: give them different names",
                    t.display()
                )));
            }
        }
    }
    if !req.in_place {
        let outs: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
        let ins: Vec<&Path> = req.sources.iter().map(PathBuf::as_path).collect();
        crate::atomic::refuse_overlap(&outs, &ins).map_err(|e| JobError::Usage(e.to_string()))?;
    }
    let mut done = Vec::new();
    nest(req, units, &targets, gate, &mut done).map_err(|e| JobError::Write(e.to_string()))?;
    done.reverse();
    Ok(done)
}

/// Writes unit 0 and, inside its atomic write, the rest.
fn nest(
    req: &CompactRequest,
    units: &[Unit],
    targets: &[PathBuf],
    gate: Gate<'_>,
    done: &mut Vec<Done>,
) -> Result<(), BoxError> {
    let (Some(u), Some(target)) = (units.first(), targets.first()) else {
        return gate();
    };
    let mut rest = |done: &mut Vec<Done>| nest(req, &units[1..], &targets[1..], gate, done);
    let d = if req.in_place {
        in_place(req, u, rest, done)?
    } else if let Some(l) = &u.layout {
        crate::atomic::write_dir(target, req.overwrite, 0o700, |tmp| {
            copy_member(&l.input, tmp, &l.db)?;
            if l.wal_apart || !l.wal.starts_with(&l.input) {
                copy_member(&l.wal, &tmp.join("member/wal"), Path::new(""))?;
            }
            let rel = l.db.strip_prefix(&l.input).unwrap_or(Path::new("member/snap/db"));
            let r = write_db(u, &tmp.join(rel))?;
            rest(done)?;
            Ok(finish(u, target.join(rel), r, None))
        })?
    } else {
        crate::atomic::write_file(target, req.overwrite, 0o600, |f| {
            let r = rewrite(u, f)?;
            rest(done)?;
            Ok(finish(u, target.clone(), r, None))
        })?
    };
    done.push(d);
    Ok(())
}

/// Replaces a member dir's db: the new one is written beside it, etcd's
/// lock is taken, the old db is hard-linked to `db.before-...` and the new
/// one renamed over it (so `db` always names a whole file).
fn in_place(
    req: &CompactRequest,
    u: &Unit,
    rest: impl FnOnce(&mut Vec<Done>) -> Result<(), BoxError>,
    done: &mut Vec<Done>,
) -> Result<Done, BoxError> {
    let kept = u.db_path.with_file_name(req.keep_old_as);
    if std::fs::symlink_metadata(&kept).is_ok() {
        return Err(format!(
            "{}: kept from an earlier run; move it away (it is the db from before that run) and run again",
            kept.display()
        )
        .into());
    }
    if std::fs::symlink_metadata(&u.db_path)?.file_type().is_symlink() {
        return Err(format!(
            "{}: a symlink; --in-place replaces the db where it is and keeps the old one beside it, which a link cannot keep apart: write a new data dir with --out instead",
            u.db_path.display()
        )
        .into());
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&u.db_path)?.permissions()) & 0o777;
    let (d, lock) = crate::atomic::write_file(&u.db_path, true, mode, |f| {
        let r = rewrite(u, f)?;
        rest(done)?;
        // etcd's own lock, held until the new db is in place.
        let Some(lock) = crate::source::lock_exclusive(&u.db_path)? else {
            return Err(running(&u.path.display().to_string()).into());
        };
        std::fs::hard_link(&u.db_path, &kept).map_err(|e| format!("{}: {e}", kept.display()))?;
        Ok((finish(u, u.db_path.clone(), r, Some(kept.clone())), lock))
    })
    .inspect_err(|_| {
        // Only while `db` and the kept name are still one file did the swap
        // not happen; then the second name goes. Otherwise it is the only
        // copy of the old db.
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
        if ino(&kept).is_some() && ino(&kept) == ino(&u.db_path) {
            let _ = std::fs::remove_file(&kept);
        }
    })?;
    drop(lock);
    Ok(d)
}

/// Writes the unit's new db at `path`.
fn write_db(u: &Unit, path: &Path) -> Result<Rewritten, BoxError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let r = rewrite(u, &mut f)?;
    f.sync_all()?;
    Ok(r)
}

fn rewrite(u: &Unit, f: &mut std::fs::File) -> Result<Rewritten, BoxError> {
    let db = u.db()?;
    super::rewrite(
        &db,
        &u.plan,
        f,
        crate::bolt::writer::output_page_size(db.page_size()),
        u.trailer,
    )
    .map_err(|e| format!("{}: {e}", u.db_path.display()).into())
}

fn finish(u: &Unit, output: PathBuf, r: Rewritten, kept: Option<PathBuf>) -> Done {
    Done {
        source: u.path.display().to_string(),
        kind: u.kind,
        db: u.db_path.display().to_string(),
        output: output.display().to_string(),
        kept_old_db: kept.map(|k| k.display().to_string()),
        revision: u.plan.head,
        compact_revision: u.plan.compact_at,
        previous_compact_revision: u.plan.compacted_before,
        size_before: u.file.bytes().len() as u64,
        alarms_removed: u.plan.disarmed.clone(),
        alarms: u.plan.alarms_left(),
        folded: u.plan.fold.clone(),
        identical_up_to: u.hashes.last().map(|h| h.revision),
        rewritten: r,
    }
}

/// Copies the files under `from` into `to` (created), leaving out `skip`
/// and the temp files of earlier runs; symlinks are followed.
fn copy_member(from: &Path, to: &Path, skip: &Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let e = e?;
        let p = e.path();
        let name = e.file_name();
        if p == skip || name.to_string_lossy().contains(".etcd-rescue-tmp-") {
            continue;
        }
        let md = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if md.is_dir() {
            copy_member(&p, &to.join(&name), skip)?;
        } else if md.is_file() {
            std::fs::copy(&p, to.join(&name)).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}
