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

/// Where a segment's bytes are.
#[derive(Debug)]
pub enum SegmentData {
    /// A file, mapped read-only.
    Mapped(MappedFile),
    /// Bytes in memory ([`WalDir::from_files`]), with the path they stand for.
    Memory {
        /// The path the segment would have.
        path: PathBuf,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

impl SegmentData {
    /// The segment's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            SegmentData::Mapped(f) => f.bytes(),
            SegmentData::Memory { bytes, .. } => bytes,
        }
    }

    /// The path it was opened from (or stands for).
    pub fn path(&self) -> &Path {
        match self {
            SegmentData::Mapped(f) => f.path(),
            SegmentData::Memory { path, .. } => path,
        }
    }
}

/// One segment file.
#[derive(Debug)]
pub struct SegmentFile {
    /// Parsed name.
    pub name: SegmentName,
    /// File name as found.
    pub file_name: String,
    /// Its bytes.
    pub file: SegmentData,
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
        let mut d = WalDir::empty(path);
        for n in names {
            let p = path.join(&n);
            if let Some(name) = SegmentName::parse(&n) {
                if p.is_dir() {
                    d.other_files.push(n);
                    continue;
                }
                let file = SegmentData::Mapped(MappedFile::open(&p)?);
                d.segments.push(SegmentFile {
                    name,
                    file_name: n,
                    file,
                });
            } else {
                d.add_other(n);
            }
        }
        Ok(d)
    }

    /// One segment file on its own, mapped read-only, as the only segment of
    /// a WAL (a name etcd does not parse counts as sequence 0, index 0).
    pub fn single(path: &Path) -> Result<WalDir, DirError> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = SegmentName::parse(&file_name).unwrap_or_default();
        let mut d = WalDir::empty(path.parent().unwrap_or(Path::new(".")));
        d.segments.push(SegmentFile {
            name,
            file_name,
            file: SegmentData::Mapped(MappedFile::open(path)?),
        });
        Ok(d)
    }

    /// A WAL directory held in memory, for tests and fuzzing: `files` are
    /// (file name, bytes), sorted and classified as [`WalDir::open`] does;
    /// `path` only names it in reports. Nothing is read from disk.
    pub fn from_files(path: &Path, files: Vec<(String, Vec<u8>)>) -> WalDir {
        let mut files = files;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut d = WalDir::empty(path);
        for (n, bytes) in files {
            match SegmentName::parse(&n) {
                Some(name) => d.segments.push(SegmentFile {
                    name,
                    file: SegmentData::Memory {
                        path: path.join(&n),
                        bytes,
                    },
                    file_name: n,
                }),
                None => d.add_other(n),
            }
        }
        d
    }

    fn empty(path: &Path) -> WalDir {
        WalDir {
            path: path.to_path_buf(),
            segments: Vec::new(),
            tmp_files: Vec::new(),
            broken_files: Vec::new(),
            bad_names: Vec::new(),
            other_files: Vec::new(),
        }
    }

    /// Files that are not segments, by name.
    fn add_other(&mut self, n: String) {
        if n.ends_with(".tmp") {
            self.tmp_files.push(n);
        } else if n.ends_with(".broken") {
            self.broken_files.push(n);
        } else if n.ends_with(".wal") {
            self.bad_names.push(n);
        } else {
            self.other_files.push(n);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::writer::SegmentWriter;

    #[test]
    fn in_memory_dir_is_classified_like_a_listed_one() {
        let mut w = SegmentWriter::new(0);
        w.metadata(7, 9);
        let first = "0000000000000000-0000000000000000.wal";
        let files = [
            ("0000000000000001-0000000000000005.wal", Vec::new()),
            ("0.tmp", Vec::new()),
            ("x.wal", Vec::new()),
            ("0000000000000000-0000000000000000.wal.broken", Vec::new()),
            ("notes", Vec::new()),
            (first, w.into_bytes()),
        ];
        let d = WalDir::from_files(
            Path::new("mem"),
            files.into_iter().map(|(n, b)| (n.to_string(), b)).collect(),
        );
        let seqs: Vec<u64> = d.segments.iter().map(|s| s.name.seq).collect();
        assert_eq!(seqs, [0, 1]);
        assert_eq!(d.segments[0].file.path(), Path::new("mem").join(first));
        assert_eq!(d.tmp_files, ["0.tmp"]);
        assert_eq!(d.bad_names, ["x.wal"]);
        assert_eq!(d.broken_files, ["0000000000000000-0000000000000000.wal.broken"]);
        assert_eq!(d.other_files, ["notes"]);
        let r = crate::wal::scan(&d, crate::wal::ScanOptions::default(), |_| {});
        let m = r.metadata.expect("metadata record");
        assert_eq!((m.node_id.0, m.cluster_id.0), (7, 9));
        assert!(r.findings.items().iter().any(|f| f.code == "wal-segment-empty"));
    }
}
