//! A restore as a job: open the source, judge it on another thread while
//! the output is written, and rename the output into place only when the
//! judgment admits the source (`admit.rs`). `force-new-cluster` finds who
//! the survivor was here too. The command line only parses flags and shows
//! the result.

use std::path::{Path, PathBuf};

use crate::bolt::Db;
use crate::datadir::replay::Replayed;
use crate::judge::{self, Judgment};
use crate::membership::Member;
use crate::source::{DbImage, MappedFile};
use crate::wal::WalDir;

use super::admit::{Admission, admit};
use super::members::{ClusterSpec, MemberSpec};
use super::{BoxError, MemberOutcome, RestoreSource, start_flags, write_member};

/// Why a source cannot be opened for a restore.
#[derive(Debug, thiserror::Error)]
pub enum RestoreOpenError {
    /// Its layout is not a data dir.
    #[error(transparent)]
    Layout(#[from] crate::datadir::LayoutError),
    /// A file cannot be opened.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The WAL dir cannot be read.
    #[error("{path}: {msg}")]
    Wal {
        /// The WAL dir.
        path: PathBuf,
        /// What failed.
        msg: String,
    },
    /// The empty db for a member dir without one could not be made.
    #[error("making an empty db: {0}")]
    Empty(String),
}

/// The source of a restore, opened.
pub struct Source {
    /// The path given.
    pub path: PathBuf,
    /// The db (a member dir's, or the file; a new empty one for a member
    /// dir etcd would rebuild from its WAL).
    pub file: DbImage,
    /// A member dir's WAL.
    pub wal: Option<WalDir>,
    /// The db as named in messages.
    pub name: String,
    /// The source as named in the judgment: the path, or the archive it
    /// was unpacked from (set by the caller that unpacked it).
    pub shown: String,
}

impl Source {
    /// Opens a snapshot or db file, or a member dir (its db and WAL).
    pub fn open(path: &Path) -> Result<Source, RestoreOpenError> {
        if !path.is_dir() {
            return Ok(Source {
                path: path.to_path_buf(),
                file: DbImage::Mapped(MappedFile::open(path)?),
                wal: None,
                name: path.display().to_string(),
                shown: path.display().to_string(),
            });
        }
        let layout = crate::datadir::resolve(path, None)?;
        let wal = WalDir::open(&layout.wal).map_err(|e| RestoreOpenError::Wal {
            path: layout.wal.clone(),
            msg: e.to_string(),
        })?;
        // No db, or an empty file: etcd creates a new db and replays the
        // whole WAL into it, and so does the restore.
        let missing = std::fs::metadata(&layout.db).map_or(true, |m| m.is_file() && m.len() == 0);
        let file = if missing {
            DbImage::Owned(
                crate::datadir::replay::empty_db().map_err(|e| RestoreOpenError::Empty(e.to_string()))?,
            )
        } else {
            DbImage::Mapped(MappedFile::open(&layout.db)?)
        };
        Ok(Source {
            path: path.to_path_buf(),
            file,
            wal: Some(wal),
            name: layout.db.display().to_string(),
            shown: path.display().to_string(),
        })
    }

    /// Opens the bbolt image (without a snapshot's trailer).
    pub fn db(&self) -> Result<Db<'_>, crate::bolt::Error> {
        Db::open(crate::mvcc::trailer::image(self.file.bytes())).map(|(db, _)| db)
    }
}

/// The judgment of a restore's source and the decision on it.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The judgment (`check`'s).
    pub judgment: Judgment,
    /// Whether the restore may go ahead.
    pub admission: Admission,
}

impl Checked {
    /// Whether the restore must stop.
    pub fn refused(&self) -> bool {
        self.admission.refused.is_some()
    }
}

/// Judges the source at `path` (called `name` in messages) with the one
/// judgment and decides.
pub fn check(path: &Path, name: &str, skip_hash: bool, force: bool) -> Checked {
    let opts = judge::JudgeOptions {
        skip_hash: true,
        ..judge::JudgeOptions::full()
    };
    let js = judge::judge_as(path, name, &opts);
    let judgment = js.into_iter().next().expect("one judgment per path");
    let admission = admit(&judgment, skip_hash, force);
    Checked { judgment, admission }
}

/// What a restore writes from its source.
pub struct RestorePlan<'a> {
    /// The new cluster.
    pub cluster: &'a ClusterSpec,
    /// The source's open file, for a kernel-side copy of its pages.
    pub src_file: Option<&'a std::fs::File>,
    /// The committed WAL entries applied on top (a member-dir restore).
    pub replayed: Option<Replayed>,
    /// `--bump-revision`.
    pub bump: Option<i64>,
    /// The paths read (the source file or data dir): never written, nor
    /// anything inside or around them.
    pub inputs: Vec<PathBuf>,
}

impl RestorePlan<'_> {
    fn input_paths(&self) -> Vec<&Path> {
        self.inputs.iter().map(PathBuf::as_path).collect()
    }

    fn source<'s, 'a>(&'s self, db: &'s Db<'a>) -> RestoreSource<'s, 'a> {
        RestoreSource {
            db,
            file: self.src_file,
            replayed: self.replayed.as_ref(),
            bump_revision: self.bump,
        }
    }
}

/// Called after everything is written and before it is renamed into place:
/// an error (the source was refused) removes the output instead.
pub type Gate<'g> = &'g mut dyn FnMut() -> Result<(), BoxError>;

/// Writes every member of the plan's cluster into `out_dir/NAME/`, with
/// `out_dir/NAME.flags`.
pub fn write_all_members(
    db: &Db<'_>,
    p: &RestorePlan<'_>,
    out_dir: &Path,
    force: bool,
    gate: Gate<'_>,
) -> Result<Vec<MemberOutcome>, BoxError> {
    crate::atomic::refuse_overlap(&[out_dir], &p.input_paths())?;
    // Each member's dir is named after it: a name must be one plain path
    // component, or the write would land outside `out_dir`.
    for m in &p.cluster.members {
        let plain = !m.name.is_empty()
            && m.name != "."
            && m.name != ".."
            && !m.name.contains(['/', '\0'])
            && !m.name.starts_with('.');
        if !plain {
            return Err(format!(
                "member name {:?}: --all-members writes a dir named after each member, and this name is not a plain file name (no '/', no leading '.')",
                m.name
            )
            .into());
        }
    }
    crate::atomic::write_dir(out_dir, force, 0o700, |tmp| {
        let mut outs = Vec::new();
        for m in &p.cluster.members {
            let dir = tmp.join(&m.name);
            let o = write_member(&p.source(db), p.cluster, m, &dir, &dir.join("member/wal"))?;
            outs.push(MemberOutcome {
                data_dir: out_dir.join(&m.name).display().to_string(),
                wal_dir: out_dir.join(&m.name).join("member/wal").display().to_string(),
                ..o
            });
            let flags = start_flags(p.cluster, m, "/var/lib/etcd");
            std::fs::write(tmp.join(format!("{}.flags", m.name)), flags)?;
        }
        gate()?;
        Ok(outs)
    })
}

/// Writes the member `local` into `data_dir` (its WAL into `wal_dir` when
/// given).
pub fn write_one(
    db: &Db<'_>,
    p: &RestorePlan<'_>,
    local: &MemberSpec,
    data_dir: &Path,
    wal_dir: Option<&Path>,
    force: bool,
    gate: Gate<'_>,
) -> Result<MemberOutcome, BoxError> {
    let targets: Vec<&Path> = std::iter::once(data_dir).chain(wal_dir).collect();
    crate::atomic::refuse_overlap(&targets, &p.input_paths())?;
    let mut inner = |wal_tmp: Option<&Path>| {
        crate::atomic::write_dir(data_dir, force, 0o700, |tmp| {
            let wal = wal_tmp
                .map(Path::to_path_buf)
                .unwrap_or_else(|| tmp.join("member/wal"));
            let o = write_member(&p.source(db), p.cluster, local, tmp, &wal)?;
            gate()?;
            Ok(MemberOutcome {
                data_dir: data_dir.display().to_string(),
                wal_dir: wal_dir
                    .map_or_else(|| data_dir.join("member/wal"), Path::to_path_buf)
                    .display()
                    .to_string(),
                ..o
            })
        })
    };
    match wal_dir {
        Some(w) => crate::atomic::write_dir(w, force, 0o700, |wtmp| inner(Some(wtmp))),
        None => inner(None),
    }
}

/// A restore refused by the judgment (the temporary output is removed).
#[derive(Debug, thiserror::Error)]
#[error("the source did not pass the judgment")]
struct Refused;

/// Runs `write` while the source is judged on another thread; the output is
/// renamed into place only if the judgment admits the source. Returns the
/// judgment, and what `write` returned when it was admitted.
pub fn with_check<T>(
    path: &Path,
    name: &str,
    skip_hash: bool,
    force: bool,
    write: impl FnOnce(Gate<'_>) -> Result<T, BoxError>,
) -> (Checked, Option<Result<T, BoxError>>) {
    std::thread::scope(|sc| {
        let mut handle = Some(sc.spawn(|| check(path, name, skip_hash, force)));
        let mut checked: Option<Checked> = None;
        let result = {
            let mut gate = || -> Result<(), BoxError> {
                let c = handle
                    .take()
                    .expect("joined once")
                    .join()
                    .expect("judgment thread");
                let refused = c.refused();
                checked = Some(c);
                if refused { Err(Box::new(Refused)) } else { Ok(()) }
            };
            write(&mut gate)
        };
        let checked = match checked {
            Some(c) => c,
            None => handle
                .take()
                .expect("not joined")
                .join()
                .expect("judgment thread"),
        };
        if checked.refused() {
            return (checked, None);
        }
        (checked, Some(result))
    })
}

/// Who the survivor of a `force-new-cluster` was: its entry in the db's
/// members, found by the member ID its WAL was written for.
pub fn survivor(src: &Source, db_bytes: &[u8]) -> Option<Member> {
    let wal = src.wal.as_ref()?;
    let node = crate::wal::scan(wal, crate::wal::ScanOptions::default(), |_| {})
        .metadata
        .map(|m| m.node_id.0)?;
    let report = crate::mvcc::scan(db_bytes, crate::mvcc::DbScanOptions::default());
    report.members.into_iter().find(|m| m.id == node)
}
