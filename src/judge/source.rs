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
use super::{JudgeOptions, Judgment};
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
    _scratch: Option<Unwrapped>,
}

/// A path with its compressed and archived layers unpacked (a `.tar.gz` of
/// a member dir, a `.db.zst`): the plain file or dir inside, in scratch
/// dirs that live as long as this does. Every command that reads one
/// snapshot, db or member dir opens its input through this.
#[derive(Debug)]
pub struct Unwrapped {
    /// The plain file or dir to read (the path itself when not a container).
    pub path: PathBuf,
    /// What to call it: the path as given, `archive!member` inside an archive.
    pub shown: String,
    /// The containers, outside in (`gzip`, `tar`...); empty for a plain path.
    pub containers: Vec<&'static str>,
    _scratch: Vec<Unpacked>,
}

impl Unwrapped {
    /// A path under the unpacked copy as the user knows it: under the
    /// archive's name (`backup.tar.gz!single/member/wal`).
    pub fn show(&self, p: &Path) -> String {
        match p.strip_prefix(&self.path) {
            Ok(rel) if !self.containers.is_empty() => {
                if rel.as_os_str().is_empty() {
                    self.shown.clone()
                } else {
                    format!("{}/{}", self.shown, rel.display())
                }
            }
            _ => p.display().to_string(),
        }
    }

    /// Unpacks `path` layer by layer until a plain file or dir remains; an
    /// archive must hold exactly one etcd file or member dir.
    pub fn open(path: &Path) -> Result<Unwrapped, OpenError> {
        let name = path.display().to_string();
        std::fs::metadata(path).map_err(|e| OpenError::Io(format!("{name}: {e}")))?;
        let mut u = Unwrapped {
            path: path.to_path_buf(),
            shown: name.clone(),
            containers: Vec::new(),
            _scratch: Vec::new(),
        };
        loop {
            if u.path.is_dir() {
                return Ok(u);
            }
            let file = MappedFile::open(&u.path).map_err(|e| OpenError::Io(e.to_string()))?;
            let Sniff::Container(c) = kind::sniff(file.bytes()) else {
                return Ok(u);
            };
            if u.containers.len() >= super::MAX_CONTAINER_DEPTH {
                return Err(OpenError::Io(format!(
                    "{name}: containers nested more than {} deep",
                    super::MAX_CONTAINER_DEPTH
                )));
            }
            let limits = unpack::Limits {
                max_bytes: JudgeOptions::default().max_unpacked,
            };
            let layer = unpack::unpack(c, file.bytes(), &name, limits).map_err(OpenError::Io)?;
            u.path = match &layer.single {
                Some(rel) => layer.scratch.path().join(rel),
                None => {
                    let unit = single_unit(&layer, &name)?;
                    if let Ok(rel) = unit.strip_prefix(layer.scratch.path())
                        && !rel.as_os_str().is_empty()
                    {
                        u.shown = format!("{}!{}", u.shown, rel.display());
                    }
                    unit
                }
            };
            u.containers.push(c.word());
            u._scratch.push(layer);
        }
    }
}

impl ReadSource {
    /// Opens `path`. `db_only`: read a member dir's db without the WAL.
    pub fn open(path: &Path, db_only: bool) -> Result<ReadSource, OpenError> {
        let u = Unwrapped::open(path)?;
        let mut s = if u.path.is_dir() {
            open_dir(&u.path, &u.shown, db_only)?
        } else {
            open_file(&u.path, &u.shown)?
        };
        s.judgment.containers.clone_from(&u.containers);
        s._scratch = Some(u);
        Ok(s)
    }

    /// The keyspace to answer from.
    pub fn keyspace(&self) -> Result<Keyspace<'_>, bolt::Error> {
        let (db, _) = Db::open(trailer::image(self.file.bytes()))?;
        Ok(Keyspace {
            db,
            overlay: self.overlay.as_ref(),
        })
    }

    /// The cluster and member IDs a member dir's WAL records (its metadata
    /// record), as etcdctl's response header shows them. A snapshot or db
    /// does not record them.
    pub fn member_ids(&self) -> Option<(u64, u64)> {
        match &self.judgment.detail {
            super::Detail::Member(m) => {
                let md = m.wal.as_ref()?.metadata.as_ref()?;
                Some((md.cluster_id.0, md.node_id.0))
            }
            _ => None,
        }
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
    let judgment = super::judge_named(path, name, &JudgeOptions::default(), 0)
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
        _scratch: None,
    })
}

fn open_dir(path: &Path, name: &str, db_only: bool) -> Result<ReadSource, OpenError> {
    let judgment = super::judge_dir(path, name, &JudgeOptions::default());
    let mut layout = crate::datadir::resolve(path, None).map_err(|e| {
        // The error names the path it resolved (a scratch copy for an
        // archive): name it once, as the user gave it.
        let text = e.to_string();
        let prefix = format!("{}: ", path.display());
        OpenError::NotKeyspace {
            path: name.into(),
            why: text.strip_prefix(&prefix).unwrap_or(&text).to_string(),
        }
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
        _scratch: None,
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
