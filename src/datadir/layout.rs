//! Where the parts of a member's data are.
//!
//! ```text
//! <data-dir>/member/            the member dir (either may be given)
//!   snap/db                     the v3 backend
//!   snap/*.snap, *.snap.db      raft snapshots
//!   wal/*.wal                   the WAL (or --wal-dir elsewhere)
//! ```

use std::path::{Path, PathBuf};

/// Why a path is not a data dir.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Missing.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// A file, not a directory.
    #[error("{0}: is a file, not a data dir")]
    NotADir(PathBuf),
    /// A WAL dir given where a data dir was expected.
    #[error(
        "{0}: this is a WAL directory; give the data dir (or its member/ dir), with --wal-dir for a WAL kept elsewhere"
    )]
    WalDir(PathBuf),
    /// Nothing etcd-like inside.
    #[error("{0}: not an etcd data dir (no member/, wal/ or snap/ directory)")]
    NotEtcd(PathBuf),
}

/// The paths of one member's data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layout {
    /// The path given.
    pub input: PathBuf,
    /// The member dir.
    pub member: PathBuf,
    /// The WAL dir.
    pub wal: PathBuf,
    /// Whether the WAL dir was given apart (`--wal-dir`).
    pub wal_apart: bool,
    /// The snap dir.
    pub snap: PathBuf,
    /// The db file.
    pub db: PathBuf,
    /// What the input is called in messages (the archive member it came
    /// from, when it was unpacked into a scratch dir).
    #[serde(skip)]
    pub shown: PathBuf,
}

impl Layout {
    /// A path under the input, as the user knows it.
    pub fn show(&self, p: &Path) -> String {
        match p.strip_prefix(&self.input) {
            Ok(rel) if rel.as_os_str().is_empty() => self.shown.display().to_string(),
            Ok(rel) => self.shown.join(rel).display().to_string(),
            Err(_) => p.display().to_string(),
        }
    }
}

/// Whether `dir` directly holds WAL segment files (`*.wal`, or the
/// preallocated `*.tmp`).
pub fn holds_wal_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok()).any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.ends_with(".wal") || n.ends_with(".tmp")
        })
    })
}

/// Whether `dir` holds what etcd keeps in `member/snap/`: its `db`, or
/// raft `.snap` / `.snap.db` files.
fn holds_snap_files(dir: &Path) -> bool {
    dir.join("db").is_file()
        || std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.filter_map(|e| e.ok()).any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".snap") || n.ends_with(".snap.db")
            })
        })
}

/// Whether `dir` is a member dir: its `wal/` holds segments or its `snap/`
/// holds etcd's files (a folder that merely has a `snap/` subfolder of
/// backups is not one).
pub fn is_member_dir(dir: &Path) -> bool {
    holds_wal_files(&dir.join("wal")) || holds_snap_files(&dir.join("snap"))
}

/// Finds the member dir of `path` (a data dir or a member dir).
pub fn resolve(path: &Path, wal_dir: Option<&Path>) -> Result<Layout, LayoutError> {
    let md = std::fs::metadata(path).map_err(|_| LayoutError::Missing(path.to_path_buf()))?;
    if !md.is_dir() {
        return Err(LayoutError::NotADir(path.to_path_buf()));
    }
    let member = if path.join("member").is_dir() {
        path.join("member")
    } else if path.join("wal").is_dir() || path.join("snap").is_dir() {
        path.to_path_buf()
    } else if holds_wal_files(path) {
        return Err(LayoutError::WalDir(path.to_path_buf()));
    } else {
        return Err(LayoutError::NotEtcd(path.to_path_buf()));
    };
    let snap = member.join("snap");
    Ok(Layout {
        input: path.to_path_buf(),
        wal: wal_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| member.join("wal")),
        wal_apart: wal_dir.is_some(),
        db: snap.join("db"),
        snap,
        member,
        shown: path.to_path_buf(),
    })
}

/// The WAL dir for `path`: `path` itself when it holds `.wal` files,
/// otherwise the WAL dir of the data dir or member dir at `path`.
pub fn resolve_wal(path: &Path) -> Result<PathBuf, LayoutError> {
    if path.is_dir() && (holds_wal_files(path) || path.file_name().is_some_and(|n| n == "wal")) {
        return Ok(path.to_path_buf());
    }
    resolve(path, None).map(|l| l.wal)
}
