//! The verification catalog: an embedded redb database remembering every
//! verified backup by path, so re-runs skip what has not changed and
//! `verify --history` can show how each series moved.
//!
//! Tables:
//! - `backups`: absolute path -> [`CatalogEntry`]: the stat key, the chunk sums, when
//!   it was verified, and its records (JSON); one entry per path, always;
//! - `events`: `series \0 taken \0 file \0 verified-at` -> one verification (JSON).
//!
//! The catalog stores; [`crate::batch`] decides whether an entry still
//! stands for the file. A catalog redb cannot read (truncated, bytes
//! flipped, a panic inside redb) is moved aside and rebuilt: it only ever
//! costs a fresh verification, never a wrong verdict or a crash.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition};
use serde::{Deserialize, Serialize};

use super::sums::Sums;
use super::{VerifyRecord, panic_message};

const BACKUPS: TableDefinition<&str, &str> = TableDefinition::new("backups");
const EVENTS: TableDefinition<&str, &str> = TableDefinition::new("events");
/// Tables of the first layout (results shared by content, which made two
/// paths with the same bytes one row): dropped on open.
const OLD: [TableDefinition<&str, &str>; 2] =
    [TableDefinition::new("paths"), TableDefinition::new("results")];

/// Errors of the catalog.
#[derive(Debug, thiserror::Error)]
#[error("catalog {path}: {msg}")]
pub struct CatalogError {
    /// The catalog file.
    pub path: String,
    /// What failed.
    pub msg: String,
}

/// What identifies a file on disk without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatKey {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
    /// For a data dir: digest of its files' paths, sizes and times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<String>,
    /// For an object in an object store: `ETag|version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// What the catalog holds for one path.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEntry {
    /// The file's stat key when it was verified.
    pub stat: StatKey,
    /// Its chunk sums then.
    pub sums: Sums,
    /// The name the records were made under (the path as given then).
    pub name: String,
    /// When it was verified (Unix seconds).
    pub verified_at: i64,
    /// The records.
    pub records: Vec<VerifyRecord>,
}

/// One verification, for the history view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEvent {
    /// The series.
    pub series: String,
    /// The backup (file, or file!member).
    pub file: String,
    /// When it was taken (Unix seconds), where known.
    pub taken: Option<i64>,
    /// When it was verified (Unix seconds).
    #[serde(alias = "verified_at")]
    pub verified_at: i64,
    /// Its head revision.
    pub revision: Option<i64>,
    /// Its verdict.
    pub verdict: String,
}

/// An open catalog.
pub struct Catalog {
    db: Database,
    path: String,
}

/// Whether a redb error means the file is damaged (rather than in use,
/// unreadable for permissions, or on a full disk).
fn is_damage(e: &DatabaseError) -> bool {
    match e {
        DatabaseError::Storage(StorageError::Corrupted(_)) | DatabaseError::UpgradeRequired(_) => true,
        DatabaseError::Storage(StorageError::Io(io)) => {
            matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            )
        }
        _ => false,
    }
}

/// Runs `f`, turning a panic inside redb into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(format!("redb failed: {}", panic_message(&*p))))
}

/// How opening went.
enum Open {
    Ok(Database),
    Damaged(String),
    Failed(String),
}

/// Opens the database and reads all of it once: a damaged file shows here,
/// not in the middle of a run. Runs before any worker starts, so the panic
/// message redb's assertions would print is silenced here (the damage is
/// reported in one line instead).
fn open_checked(path: &Path) -> Open {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = catch_unwind(AssertUnwindSafe(|| -> Open {
        let mut db = match Database::create(path) {
            Ok(db) => db,
            Err(e) if is_damage(&e) => return Open::Damaged(e.to_string()),
            Err(e) => return Open::Failed(e.to_string()),
        };
        match db.check_integrity() {
            Ok(_) => {}
            Err(e) if is_damage(&e) => return Open::Damaged(e.to_string()),
            Err(e) => return Open::Failed(e.to_string()),
        }
        let init = || -> Result<(), redb::Error> {
            let tx = db.begin_write()?;
            for t in OLD {
                tx.delete_table(t)?;
            }
            for t in [BACKUPS, EVENTS] {
                tx.open_table(t)?;
            }
            tx.commit()?;
            let tx = db.begin_read()?;
            for t in [BACKUPS, EVENTS] {
                for item in tx.open_table(t)?.iter()? {
                    let (k, v) = item?;
                    let _ = (k.value().len(), v.value().len());
                }
            }
            Ok(())
        };
        match init() {
            Ok(()) => Open::Ok(db),
            Err(redb::Error::Corrupted(e)) => Open::Damaged(e),
            Err(e) => Open::Failed(e.to_string()),
        }
    }));
    std::panic::set_hook(hook);
    r.unwrap_or_else(|p| Open::Damaged(format!("redb failed reading it: {}", panic_message(&*p))))
}

impl Catalog {
    /// Opens (or creates) the catalog at `path`, creating its directory. A
    /// damaged catalog is moved aside (`PATH.damaged-UNIXTIME`) and a new one
    /// made; the second value then says so.
    pub fn open(path: &Path) -> Result<(Catalog, Option<String>), CatalogError> {
        let shown = path.display().to_string();
        let err = |msg: String| CatalogError {
            path: shown.clone(),
            msg,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create its directory: {e}")))?;
        }
        let mut notice = None;
        let db = match open_checked(path) {
            Open::Ok(db) => db,
            Open::Failed(e) => return Err(err(e)),
            Open::Damaged(why) => {
                let aside = PathBuf::from(format!("{shown}.damaged-{}", super::now()));
                std::fs::rename(path, &aside)
                    .map_err(|e| err(format!("damaged ({why}) and cannot be moved aside: {e}")))?;
                notice = Some(format!(
                    "the catalog {shown} was damaged ({why}); moved aside to {} and rebuilt: every backup is verified afresh",
                    aside.display()
                ));
                match open_checked(path) {
                    Open::Ok(db) => db,
                    Open::Failed(e) | Open::Damaged(e) => return Err(err(e)),
                }
            }
        };
        Ok((Catalog { db, path: shown }, notice))
    }

    fn err(&self, e: impl std::fmt::Display) -> CatalogError {
        CatalogError {
            path: self.path.clone(),
            msg: e.to_string(),
        }
    }

    /// What the catalog holds for `path` (an entry it cannot parse is none).
    pub fn lookup(&self, path: &str) -> Result<Option<CatalogEntry>, CatalogError> {
        guarded(|| {
            let tx = self.db.begin_read().map_err(|e| e.to_string())?;
            let t = tx.open_table(BACKUPS).map_err(|e| e.to_string())?;
            let v = t.get(path).map_err(|e| e.to_string())?;
            Ok(v.and_then(|v| serde_json::from_str::<CatalogEntry>(v.value()).ok()))
        })
        .map_err(|e| self.err(e))
    }

    /// Stores fresh entries (absolute path, entry), in one transaction.
    pub fn store(&self, items: &[(String, CatalogEntry)]) -> Result<(), CatalogError> {
        guarded(|| self.store_inner(items).map_err(|e| e.to_string())).map_err(|e| self.err(e))
    }

    fn store_inner(&self, items: &[(String, CatalogEntry)]) -> Result<(), Box<dyn std::error::Error>> {
        let tx = self.db.begin_write()?;
        {
            let mut backups = tx.open_table(BACKUPS)?;
            let mut events = tx.open_table(EVENTS)?;
            for (path, entry) in items {
                backups.insert(path.as_str(), serde_json::to_string(entry)?.as_str())?;
                for r in &entry.records {
                    let ev = CatalogEvent {
                        series: r.series.clone(),
                        file: r.file.clone(),
                        taken: r.taken,
                        verified_at: r.verified_at,
                        revision: r.revision,
                        verdict: r.verdict.word().to_string(),
                    };
                    let key = format!(
                        "{}\0{:020}\0{}\0{:020}",
                        ev.series,
                        ev.taken.unwrap_or(0).max(0),
                        ev.file,
                        ev.verified_at.max(0)
                    );
                    events.insert(key.as_str(), serde_json::to_string(&ev)?.as_str())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every verification event, by series, then time taken, then file.
    pub fn history(&self) -> Result<Vec<CatalogEvent>, CatalogError> {
        guarded(|| {
            let tx = self.db.begin_read().map_err(|e| e.to_string())?;
            let events = tx.open_table(EVENTS).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for item in events.iter().map_err(|e| e.to_string())? {
                let (_, v) = item.map_err(|e| e.to_string())?;
                if let Ok(ev) = serde_json::from_str(v.value()) {
                    out.push(ev);
                }
            }
            Ok(out)
        })
        .map_err(|e| self.err(e))
    }
}

/// The default catalog: `$XDG_CACHE_HOME/etcd-rescue/catalog.redb`, else
/// `~/.cache/etcd-rescue/catalog.redb`.
pub fn default_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("etcd-rescue").join("catalog.redb"))
}
