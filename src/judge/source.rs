//! The keyspace a read command (`get`, `history`, `hashkv`, `stats`,
//! `diff`, `k8s`) answers from: what etcd would serve after starting on the
//! path. For a snapshot or a db that is the file; for a member or data dir
//! it is the db plus the committed WAL entries the db has not applied yet
//! (the replay engine restore uses), unless `--db-only` asks for the db
//! alone. A compressed file is unpacked first.
//!
//! The source is judged too (the quick judgment `status` makes), so that a
//! read of a damaged input says so: it still answers from what can be read,
//! and the command exits 1.

use std::path::{Path, PathBuf};

use super::kind::{self, Sniff};
use super::unpack::{self, Unpacked};
use super::{Judgment, Options};
use crate::bolt::{self, Db};
use crate::datadir::replay::{ReplayReport, replay};
use crate::mvcc::keyspace::{Keyspace, Overlay};
use crate::mvcc::trailer;
use crate::report::Verdict;
use crate::source::{DbImage, MappedFile};
use crate::wal::WalDir;

/// Why a source cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The path cannot be opened.
    #[error("{0}")]
    Io(String),
    /// Not something that holds a keyspace.
    #[error("{path}: {why}")]
    NotKeyspace {
        /// The path.
        path: String,
        /// What it is instead.
        why: String,
    },
}

/// An opened source.
#[derive(Debug)]
pub struct ReadSource {
    /// The path as given.
    pub name: String,
    /// The db file read (the data dir's `member/snap/db`, or the file).
    pub db_path: PathBuf,
    file: DbImage,
    overlay: Option<Overlay>,
    /// What the WAL replay did, for a member dir.
    pub replay: Option<ReplayReport>,
    /// The quick judgment of the path.
    pub judgment: Judgment,
    /// Sentences for stderr: what is read, and how it differs from etcd.
    pub notes: Vec<String>,
    _scratch: Vec<Unpacked>,
}

impl ReadSource {
    /// Opens `path`. `db_only`: read a member dir's db without the WAL.
    pub fn open(path: &Path, db_only: bool) -> Result<ReadSource, OpenError> {
        let name = path.display().to_string();
        let md = std::fs::metadata(path).map_err(|e| OpenError::Io(format!("{name}: {e}")))?;
        if md.is_dir() {
            return open_dir(path, &name, db_only);
        }
        // Compressed, archived, or both (a .tar.gz of a member dir): each
        // layer is unpacked in turn, and the scratch dirs kept while read.
        let mut scratches = Vec::new();
        let mut containers = Vec::new();
        let mut current = path.to_path_buf();
        // What the unit is called: the archive, then `archive!member`.
        let mut shown = name.clone();
        loop {
            if current.is_dir() {
                let mut s = open_dir(&current, &shown, db_only)?;
                s.judgment.containers = containers;
                s._scratch = scratches;
                return Ok(s);
            }
            let file = MappedFile::open(&current).map_err(|e| OpenError::Io(e.to_string()))?;
            let Sniff::Container(c) = kind::sniff(file.bytes()) else {
                drop(file);
                let mut s = open_file(&current, &shown)?;
                s.judgment.containers = containers;
                s._scratch = scratches;
                return Ok(s);
            };
            if containers.len() >= super::MAX_CONTAINER_DEPTH {
                return Err(OpenError::Io(format!(
                    "{name}: containers nested more than {} deep",
                    super::MAX_CONTAINER_DEPTH
                )));
            }
            let limits = unpack::Limits {
                max_bytes: Options::default().max_unpacked,
            };
            let u = unpack::unpack(c, file.bytes(), &name, limits).map_err(OpenError::Io)?;
            current = match &u.single {
                Some(rel) => u.scratch.path().join(rel),
                None => {
                    let unit = single_unit(&u, &name)?;
                    if let Ok(rel) = unit.strip_prefix(u.scratch.path())
                        && !rel.as_os_str().is_empty()
                    {
                        shown = format!("{shown}!{}", rel.display());
                    }
                    unit
                }
            };
            containers.push(c.word());
            scratches.push(u);
        }
    }

    /// The keyspace to answer from.
    pub fn keyspace(&self) -> Result<Keyspace<'_>, bolt::Error> {
        let (db, _) = Db::open(trailer::image(self.file.bytes()))?;
        Ok(Keyspace {
            db,
            overlay: self.overlay.as_ref(),
        })
    }

    /// The whole file read (a snapshot with its trailer).
    pub fn bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// Whether the judgment calls the source damaged (the command then exits
    /// 1 after answering).
    pub fn damaged(&self) -> bool {
        !self.judgment.passes() || self.incomplete().is_some()
    }

    /// The committed entry the replay stopped before (it could not be
    /// decoded): the answer lacks it and what follows.
    pub fn incomplete(&self) -> Option<&(u64, String)> {
        self.replay.as_ref().and_then(|r| r.stopped_at.as_ref())
    }

    /// What to tell on stderr before answering: what is read, and, for a
    /// damaged source, that the answer is what could be read.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.notes.clone();
        if let Some((i, why)) = self.incomplete() {
            out.push(format!(
                "warning: this answer stops before committed entry {i} of {}'s WAL, which etcd-rescue cannot decode ({why}); etcd serves more",
                self.name
            ));
        }
        if !self.judgment.passes() {
            out.push(format!(
                "warning: {} is damaged ({}); this answer is what can be read from it. `etcd-rescue check {}` lists every problem",
                self.name, self.judgment.headline, self.name
            ));
        }
        out
    }
}

/// The one unit inside an archive, or an error naming them.
fn single_unit(u: &Unpacked, name: &str) -> Result<PathBuf, OpenError> {
    let root = u.scratch.path();
    if super::archive_is_member_dir(root) {
        return Ok(root.to_path_buf());
    }
    let mut others = 0;
    let units = super::units_under(root, &mut others);
    match units.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(OpenError::NotKeyspace {
            path: name.into(),
            why: "no etcd data inside".into(),
        }),
        many => Err(OpenError::NotKeyspace {
            path: name.into(),
            why: format!(
                "{} etcd files or dirs inside ({}): unpack it and name one",
                many.len(),
                many.iter()
                    .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn open_file(path: &Path, name: &str) -> Result<ReadSource, OpenError> {
    let judgment = super::judge_named(path, name, &Options::default(), 0)
        .into_iter()
        .next()
        .expect("one judgment for a plain file");
    if !judgment.kind.is_bolt() {
        let why = match judgment.kind {
            super::Kind::RaftSnap => "a raft .snap file: it holds the membership, not the keyspace; `etcd-rescue status` shows it, and the keys are in its member's db".to_string(),
            super::Kind::WalSegment => "a WAL segment: `etcd-rescue wal` reads its entries; the keys are in its member's db".to_string(),
            _ => judgment.headline.clone(),
        };
        return Err(OpenError::NotKeyspace {
            path: name.into(),
            why,
        });
    }
    let file = MappedFile::open(path).map_err(|e| OpenError::Io(e.to_string()))?;
    Ok(ReadSource {
        name: name.into(),
        db_path: path.to_path_buf(),
        file: DbImage::Mapped(file),
        overlay: None,
        replay: None,
        judgment,
        notes: Vec::new(),
        _scratch: Vec::new(),
    })
}

fn open_dir(path: &Path, name: &str, db_only: bool) -> Result<ReadSource, OpenError> {
    let judgment = super::judge_dir(path, name, &Options::default());
    let mut layout = crate::datadir::resolve(path, None).map_err(|e| OpenError::NotKeyspace {
        path: name.into(),
        why: e.to_string(),
    })?;
    // An archive's member dir is shown by the archive's name.
    layout.shown = PathBuf::from(name);
    let mut notes = Vec::new();
    // No db, or an empty file: etcd creates a new one and replays the WAL
    // into it; so is it read here.
    let missing = std::fs::metadata(&layout.db).map_or(true, |m| m.is_file() && m.len() == 0);
    let file = if judgment.live && !missing {
        DbImage::Owned(
            stable_copy(&layout.db).map_err(|e| OpenError::Io(format!("{}: {e}", layout.db.display())))?,
        )
    } else if missing && !db_only {
        notes.push(format!(
            "note: {name} has no db: reading what etcd rebuilds from its WAL"
        ));
        DbImage::Owned(crate::datadir::replay::empty_db().map_err(|e| OpenError::Io(e.to_string()))?)
    } else {
        DbImage::Mapped(MappedFile::open(&layout.db).map_err(|e| OpenError::NotKeyspace {
            path: name.into(),
            why: format!("its db cannot be read ({e}): {}", judgment.headline),
        })?)
    };
    if judgment.live {
        notes.push(format!(
            "note: etcd is running on {name}: this is what it held at the moment it was read"
        ));
    }
    let mut s = ReadSource {
        name: name.into(),
        db_path: layout.db.clone(),
        file,
        overlay: None,
        replay: None,
        judgment,
        notes,
        _scratch: Vec::new(),
    };
    let shown = layout.show(&layout.db);
    if db_only {
        s.notes.push(format!(
            "note: reading {shown} alone (--db-only): committed writes still only in the WAL are left out"
        ));
        return Ok(s);
    }
    let wal = WalDir::open(&layout.wal).ok().filter(|w| !w.segments.is_empty());
    let replayed = match (&wal, s.keyspace()) {
        (Some(w), Ok(ks)) => replay(&ks.db, w).ok(),
        _ => None,
    };
    match replayed {
        Some(r) if r.report.applied_entries > 0 || r.report.stopped_at.is_some() => {
            let rep = &r.report;
            s.notes.push(format!(
                "note: reading {shown} (revision {}) plus the {} committed WAL entries it had not applied (to index {}, revision {}), as etcd serves it after starting; --db-only reads the db alone",
                rep.revision_before, rep.applied_entries, rep.applied_to_index, rep.revision_after
            ));
            if rep.lost.is_some() || !rep.notes.is_empty() {
                for n in &rep.notes {
                    s.notes.push(format!("note: {n}"));
                }
            }
            s.overlay = Some(r.changes);
            s.replay = Some(r.report);
        }
        Some(r) => s.notes.push(format!(
            "note: reading {shown} (revision {}): it holds every committed entry of the WAL, as etcd would serve it",
            r.report.revision_before
        )),
        None if wal.is_none() => s.notes.push(format!(
            "note: {name} has no readable WAL: reading {shown} alone"
        )),
        None => {}
    }
    if s.judgment.verdict == Verdict::Unreadable {
        s.notes.push(format!("note: {}", s.judgment.headline));
    }
    Ok(s)
}

/// The newest committed transaction of the db file at `p`, as bbolt picks it.
fn txid(p: &Path) -> Option<u64> {
    let f = MappedFile::open(p).ok()?;
    let (db, _) = Db::open(f.bytes()).ok()?;
    Some(db.meta().txid.0)
}

/// A copy of a db etcd is writing to, taken while no transaction committed:
/// the pages the newest meta page reaches are only reused two commits
/// later, so a copy during which the committed transaction did not change
/// holds one consistent tree.
fn stable_copy(p: &Path) -> Result<Vec<u8>, String> {
    for _ in 0..20 {
        let before = txid(p);
        let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
        if before.is_some() && txid(p) == before {
            return Ok(bytes);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err("etcd committed during every attempt to read a consistent copy".into())
}
