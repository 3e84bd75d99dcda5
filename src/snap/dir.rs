//! `member/snap/`: the `.snap` files, in the order etcd tries them, plus
//! received `.snap.db` files and leftovers.

use std::path::{Path, PathBuf};

use super::file::{self, SnapError};
use super::name::{SnapName, parse_snap_db};
use super::v2store::{self, V2Store};
use crate::report::{Finding, Findings, Severity};
use crate::source::MappedFile;
use crate::wal::entry::ConfState;
use crate::wal::{Index, Term};

/// A `.snap` file that loads.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedSnap {
    /// Index.
    pub index: Index,
    /// Term.
    pub term: Term,
    /// Configuration.
    pub conf_state: ConfState,
    /// The v2 store's membership, when it decodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2: Option<V2Store>,
    /// Why the v2 store does not decode: etcd panics recovering it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_error: Option<String>,
}

/// One `.snap` file.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapFile {
    /// File name.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Term and index from the name, if it parses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<SnapName>,
    /// The snapshot, if it loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<LoadedSnap>,
    /// Why it does not load (etcd renames such a file `.broken` when it tries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Finding code of the error.
    #[serde(skip)]
    pub error_code: Option<&'static str>,
}

/// A received db for a snapshot index.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapDb {
    /// File name.
    pub file: String,
    /// Index.
    pub index: Index,
    /// Size.
    pub size: u64,
}

/// The snap directory.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapDir {
    /// The directory.
    pub dir: String,
    /// Whether it exists.
    pub exists: bool,
    /// `.snap` files, newest first (the order etcd tries them).
    pub snaps: Vec<SnapFile>,
    /// `.snap.db` files.
    pub snap_dbs: Vec<SnapDb>,
    /// `.broken` files.
    pub broken: Vec<String>,
    /// `db.tmp*` defrag leftovers.
    pub tmp: Vec<String>,
    /// Whether `db` is present.
    pub has_db: bool,
    /// Other files.
    pub other: Vec<String>,
    /// Problems.
    pub findings: Findings,
}

impl SnapDir {
    /// The newest loadable snapshot that matches one of `marks` (term and
    /// index), as etcd chooses at start. Returns its position in `snaps`.
    pub fn newest_matching(&self, marks: &[(Index, Term)]) -> Option<usize> {
        self.snaps.iter().position(|f| {
            f.snapshot
                .as_ref()
                .is_some_and(|s| marks.iter().any(|&(i, t)| i == s.index && t == s.term))
        })
    }

    /// The `.snap.db` for `index`, if present.
    pub fn snap_db(&self, index: Index) -> Option<&SnapDb> {
        self.snap_dbs.iter().find(|d| d.index == index)
    }
}

/// Reads `path` (it need not exist). Never fails: unreadable files become findings.
pub fn scan(path: &Path) -> SnapDir {
    let mut d = SnapDir {
        dir: path.display().to_string(),
        exists: path.is_dir(),
        snaps: Vec::new(),
        snap_dbs: Vec::new(),
        broken: Vec::new(),
        tmp: Vec::new(),
        has_db: false,
        other: Vec::new(),
        findings: Findings::default(),
    };
    let mut names: Vec<String> = match std::fs::read_dir(path) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => return d,
    };
    names.sort();
    names.reverse();
    for n in names {
        let p: PathBuf = path.join(&n);
        if n.ends_with(".snap") {
            d.snaps.push(load(&p, &n));
        } else if let Some(index) = parse_snap_db(&n) {
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            d.snap_dbs.push(SnapDb { file: n, index, size });
        } else if n.ends_with(".broken") {
            d.broken.push(n);
        } else if n.starts_with("db.tmp") {
            d.tmp.push(n);
        } else if n == "db" {
            d.has_db = true;
        } else {
            d.other.push(n);
        }
    }
    for s in &d.snaps {
        if let (Some(code), Some(e)) = (s.error_code, &s.error) {
            d.findings.push(
                Finding::new(
                    Severity::Warning,
                    code,
                    format!("{e}; etcd renames the file to {}.broken when it tries to load it and falls back to an older snapshot", s.file),
                )
                .in_file(s.file.clone()),
            );
        }
        if let (Some(n), Some(l)) = (s.name, &s.snapshot) {
            if n.index != l.index || n.term != l.term {
                d.findings.push(
                    Finding::new(
                        Severity::Warning,
                        "snap-name-mismatch",
                        format!(
                            "the name says term {} index {}, the snapshot inside says term {} index {}",
                            n.term, n.index, l.term, l.index
                        ),
                    )
                    .in_file(s.file.clone()),
                );
            }
        }
        if s.name.is_none() {
            d.findings.push(
                Finding::new(
                    Severity::Warning,
                    "snap-bad-name",
                    "ends in .snap but is not named <term:%016x>-<index:%016x>.snap; etcd still tries it, in name order",
                )
                .in_file(s.file.clone()),
            );
        }
        if let Some(l) = &s.snapshot {
            if let Some(e) = &l.v2_error {
                d.findings.push(
                    Finding::new(
                        Severity::Warning,
                        "snap-v2-store",
                        format!("{e}: etcd 3.4/3.5 panic when they recover from this snapshot (\"failed to recover from snapshot\")"),
                    )
                    .in_file(s.file.clone()),
                );
            }
        }
    }
    for b in &d.broken {
        d.findings.push(
            Finding::new(
                Severity::Info,
                "snap-broken-file",
                "a file etcd failed to load and set aside earlier",
            )
            .in_file(b.clone()),
        );
    }
    d
}

fn load(p: &Path, n: &str) -> SnapFile {
    match MappedFile::open(p) {
        Ok(f) => load_bytes(n, f.bytes()),
        Err(e) => SnapFile {
            file: n.to_string(),
            size: 0,
            name: SnapName::parse(n),
            snapshot: None,
            error: Some(e.to_string()),
            error_code: Some("snap-unreadable"),
        },
    }
}

/// Reads a `.snap` file's bytes as etcd's snapshotter does, and decodes the
/// v2 store in it as etcd's store recovery does.
pub fn load_bytes(n: &str, bytes: &[u8]) -> SnapFile {
    let mut f = SnapFile {
        file: n.to_string(),
        size: bytes.len() as u64,
        name: SnapName::parse(n),
        snapshot: None,
        error: None,
        error_code: None,
    };
    match file::read(bytes) {
        Ok(s) => {
            let v2 = v2store::decode(&s.data);
            f.snapshot = Some(LoadedSnap {
                index: s.index,
                term: s.term,
                conf_state: s.conf_state,
                v2: v2.as_ref().ok().cloned(),
                v2_error: v2.err(),
            });
        }
        Err(e) => {
            f.error_code = Some(SnapError::code(&e));
            f.error = Some(e.to_string());
        }
    }
    f
}
