//! The verification catalog: an embedded redb database remembering every
//! verified backup by a content fingerprint, so re-runs skip what has not
//! changed and `verify --history` can show how each series moved.
//!
//! Tables:
//! - `paths`: absolute path -> the file's stat key and content fingerprint;
//! - `results`: fingerprint -> the records of that content (JSON);
//! - `events`: `series \0 taken \0 file \0 verified-at` -> one verification (JSON).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::Record;

const PATHS: TableDefinition<&str, &str> = TableDefinition::new("paths");
const RESULTS: TableDefinition<&str, &str> = TableDefinition::new("results");
const EVENTS: TableDefinition<&str, &str> = TableDefinition::new("events");

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
}

#[derive(Serialize, Deserialize)]
struct PathEntry {
    stat: StatKey,
    fingerprint: String,
}

/// One verification, for the history view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The series.
    pub series: String,
    /// The backup (file, or file!member).
    pub file: String,
    /// When it was taken (Unix seconds), where known.
    pub taken: Option<i64>,
    /// When it was verified (Unix seconds).
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

impl Catalog {
    /// Opens (or creates) the catalog at `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        let shown = path.display().to_string();
        let err = |msg: String| CatalogError {
            path: shown.clone(),
            msg,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create its directory: {e}")))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let c = Catalog {
            db,
            path: shown.clone(),
        };
        // Make sure the tables exist so that read transactions find them.
        let tx = c.db.begin_write().map_err(|e| err(e.to_string()))?;
        for t in [PATHS, RESULTS, EVENTS] {
            tx.open_table(t).map_err(|e| err(e.to_string()))?;
        }
        tx.commit().map_err(|e| err(e.to_string()))?;
        Ok(c)
    }

    fn err(&self, e: impl std::fmt::Display) -> CatalogError {
        CatalogError {
            path: self.path.clone(),
            msg: e.to_string(),
        }
    }

    /// The records of `path` if its stat key is unchanged since they were stored.
    pub fn lookup(&self, path: &str, stat: &StatKey) -> Result<Option<Vec<Record>>, CatalogError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let paths = tx.open_table(PATHS).map_err(|e| self.err(e))?;
        let Some(entry) = paths.get(path).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let Ok(entry) = serde_json::from_str::<PathEntry>(entry.value()) else {
            return Ok(None);
        };
        if &entry.stat != stat {
            return Ok(None);
        }
        let results = tx.open_table(RESULTS).map_err(|e| self.err(e))?;
        let Some(recs) = results.get(entry.fingerprint.as_str()).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        Ok(serde_json::from_str(recs.value()).ok())
    }

    /// Stores fresh results, in one transaction.
    pub fn store(&self, items: &[(String, StatKey, Vec<Record>)]) -> Result<(), CatalogError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut paths = tx.open_table(PATHS).map_err(|e| self.err(e))?;
            let mut results = tx.open_table(RESULTS).map_err(|e| self.err(e))?;
            let mut events = tx.open_table(EVENTS).map_err(|e| self.err(e))?;
            for (path, stat, recs) in items {
                let Some(fp) = recs.first().map(|r| r.fingerprint.clone()) else {
                    continue;
                };
                let entry = PathEntry {
                    stat: stat.clone(),
                    fingerprint: fp.clone(),
                };
                let entry = serde_json::to_string(&entry).map_err(|e| self.err(e))?;
                paths
                    .insert(path.as_str(), entry.as_str())
                    .map_err(|e| self.err(e))?;
                let json = serde_json::to_string(recs).map_err(|e| self.err(e))?;
                results
                    .insert(fp.as_str(), json.as_str())
                    .map_err(|e| self.err(e))?;
                for r in recs {
                    let ev = Event {
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
                    let json = serde_json::to_string(&ev).map_err(|e| self.err(e))?;
                    events
                        .insert(key.as_str(), json.as_str())
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every verification event, by series, then time taken, then file.
    pub fn history(&self) -> Result<Vec<Event>, CatalogError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let events = tx.open_table(EVENTS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in events.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            if let Ok(ev) = serde_json::from_str(v.value()) {
                out.push(ev);
            }
        }
        Ok(out)
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
