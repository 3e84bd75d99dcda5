//! A WAL directory: which files are segments, which are leftovers.
//!
//! ```text
//! member/wal/
//!   0000000000000000-0000000000000000.wal   segments, in lexical (= seq) order
//!   0000000000000001-000000000000015d.wal
//!   0.tmp, 1.tmp                             the next segment, preallocated (ignored)
//!   *.wal.broken                             a copy kept by etcd's repair of a torn tail
//! ```

use std::path::{Path, PathBuf};

use super::name::SegmentName;
use crate::source::{MappedFile, SourceError};

/// Why a WAL directory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// It does not exist.
    #[error("{path}: no such directory")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// It is not a directory.
    #[error("{path}: not a directory")]
    NotADir {
        /// The path.
        path: PathBuf,
    },
    /// Listing it failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A segment could not be opened.
    #[error(transparent)]
    Open(#[from] SourceError),
}

/// One segment file, mapped read-only.
#[derive(Debug)]
pub struct SegmentFile {
    /// Parsed name.
    pub name: SegmentName,
    /// File name as found.
    pub file_name: String,
    /// The mapped file.
    pub file: MappedFile,
}

/// The files of a WAL directory.
#[derive(Debug)]
pub struct WalDir {
    /// The directory.
    pub path: PathBuf,
    /// Segments in etcd's order (lexical by file name).
    pub segments: Vec<SegmentFile>,
    /// Preallocated next segments (`0.tmp`, `1.tmp`).
    pub tmp_files: Vec<String>,
    /// Copies kept by a repair (`*.broken`).
    pub broken_files: Vec<String>,
    /// Files ending in `.wal` whose names etcd does not parse as `%016x-%016x.wal`.
    pub bad_names: Vec<String>,
    /// Anything else.
    pub other_files: Vec<String>,
}

impl WalDir {
    /// Lists `path` and maps every segment read-only.
    pub fn open(path: &Path) -> Result<WalDir, DirError> {
        let md = std::fs::metadata(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DirError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                DirError::Io {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        if !md.is_dir() {
            return Err(DirError::NotADir {
                path: path.to_path_buf(),
            });
        }
        let io = |source| DirError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut d = WalDir {
            path: path.to_path_buf(),
            segments: Vec::new(),
            tmp_files: Vec::new(),
            broken_files: Vec::new(),
            bad_names: Vec::new(),
            other_files: Vec::new(),
        };
        for n in names {
            let p = path.join(&n);
            if let Some(name) = SegmentName::parse(&n) {
                if p.is_dir() {
                    d.other_files.push(n);
                    continue;
                }
                let file = MappedFile::open(&p)?;
                d.segments.push(SegmentFile {
                    name,
                    file_name: n,
                    file,
                });
            } else if n.ends_with(".tmp") {
                d.tmp_files.push(n);
            } else if n.ends_with(".broken") {
                d.broken_files.push(n);
            } else if n.ends_with(".wal") {
                d.bad_names.push(n);
            } else {
                d.other_files.push(n);
            }
        }
        Ok(d)
    }

    /// The segments' bytes, for [`super::reader::read`].
    pub fn segment_bytes(&self) -> Vec<super::reader::SegmentBytes<'_>> {
        self.segments
            .iter()
            .map(|s| super::reader::SegmentBytes {
                name: s.name,
                bytes: s.file.bytes(),
            })
            .collect()
    }

    /// Total bytes of all segments.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.file.bytes().len() as u64).sum()
    }
}
