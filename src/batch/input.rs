//! Finding backups and reading them as they are stored: plain snapshot and db
//! files, gzip and zstd files, zip and tar archives (decompressed in memory,
//! never unpacked to disk), and data dirs.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// Deepest directory nesting walked.
const MAX_DIR_DEPTH: usize = 32;
/// Deepest nesting of containers (a tar inside a gzip inside a zip...).
pub const MAX_CONTAINER_DEPTH: usize = 3;

/// One thing to verify: a file (maybe compressed or an archive) or a data dir.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A file.
    File(PathBuf),
    /// A data dir (holding `member/snap/db`) or a member dir (holding `snap/db`).
    DataDir(PathBuf),
}

impl Unit {
    /// Its path.
    pub fn path(&self) -> &Path {
        match self {
            Unit::File(p) | Unit::DataDir(p) => p,
        }
    }
}

/// The db file of a data dir or member dir, if `dir` is one.
pub fn data_dir_db(dir: &Path) -> Option<PathBuf> {
    ["member/snap/db", "snap/db"]
        .iter()
        .map(|r| dir.join(r))
        .find(|p| p.is_file())
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands the command line's paths into units, in a stable order: each
/// argument in turn; directories walked in name order; glob patterns (for
/// when the shell did not expand them) in name order. Missing paths are
/// returned as errors.
pub fn discover(args: &[PathBuf]) -> (Vec<Unit>, Vec<String>) {
    let mut units = Vec::new();
    let mut errors = Vec::new();
    for a in args {
        let s = a.to_string_lossy();
        if !a.exists() && has_glob(&s) {
            match glob::glob(&s) {
                Ok(paths) => {
                    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                    found.sort();
                    if found.is_empty() {
                        errors.push(format!("{s}: no file matches this pattern"));
                    }
                    for p in found {
                        walk(&p, 0, &mut units, &mut errors);
                    }
                }
                Err(e) => errors.push(format!("{s}: bad pattern: {e}")),
            }
        } else if !a.exists() {
            errors.push(format!("{s}: no such file or directory"));
        } else {
            walk(a, 0, &mut units, &mut errors);
        }
    }
    // The same path named twice is verified once.
    let mut seen = std::collections::HashSet::new();
    units.retain(|u| seen.insert(u.path().to_path_buf()));
    (units, errors)
}

fn walk(p: &Path, depth: usize, units: &mut Vec<Unit>, errors: &mut Vec<String>) {
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) => {
            errors.push(format!("{}: {e}", p.display()));
            return;
        }
    };
    if md.is_file() {
        units.push(Unit::File(p.to_path_buf()));
        return;
    }
    if !md.is_dir() {
        return;
    }
    if data_dir_db(p).is_some() {
        units.push(Unit::DataDir(p.to_path_buf()));
        return;
    }
    if depth >= MAX_DIR_DEPTH {
        errors.push(format!(
            "{}: directories nested deeper than {MAX_DIR_DEPTH} levels are not walked",
            p.display()
        ));
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            errors.push(format!("{}: {e}", p.display()));
            return;
        }
    };
    entries.sort();
    for e in entries {
        // Do not follow symlinked directories (they can loop).
        let is_link_dir =
            std::fs::symlink_metadata(&e).is_ok_and(|m| m.file_type().is_symlink()) && e.is_dir();
        if !is_link_dir {
            walk(&e, depth + 1, units, errors);
        }
    }
}

/// What the first bytes of a file say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// A bbolt file (magic at offset 16).
    Bolt,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
    /// A zip archive.
    Zip,
    /// A tar archive (ustar magic at offset 257).
    Tar,
    /// An etcd WAL segment (its first record header).
    Wal,
    /// Anything else.
    Other,
}

/// Whether `b` looks like a bbolt file: the magic of meta page 0, or of meta
/// page 1 at a usual page size, or (both magics destroyed) the headers of
/// pages 0 and 1 saying "meta page 0" and "meta page 1". A damaged db is
/// still a db: it must be reported as damaged, not skipped as unknown.
fn looks_like_bolt(b: &[u8]) -> bool {
    let magic = crate::bolt::meta::MAGIC.to_le_bytes();
    if b.get(16..20) == Some(&magic) {
        return true;
    }
    let meta_header = |off: usize, id: u64| {
        crate::bolt::PageHeader::parse(b.get(off..).unwrap_or(&[]))
            .is_some_and(|h| h.id == id && h.flags == 0x04 && h.count == 0 && h.overflow == 0)
    };
    // Meta page 1 must say so in its header too: a bbolt file inside a tar
    // stream has its meta page 0 magic at offsets like 2048+16.
    [1024usize, 2048, 4096, 8192, 16384, 32768, 65536]
        .iter()
        .any(|&ps| meta_header(ps, 1) && (b.get(ps + 16..ps + 20) == Some(&magic) || meta_header(0, 0)))
}

/// Looks at the first bytes.
pub fn sniff(b: &[u8]) -> Sniff {
    if looks_like_bolt(b) {
        Sniff::Bolt
    } else if b.starts_with(&[0x1f, 0x8b]) {
        Sniff::Gzip
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Sniff::Zstd
    } else if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") {
        Sniff::Zip
    } else if b.get(257..262) == Some(b"ustar") {
        Sniff::Tar
    } else if b.starts_with(&[0x04, 0, 0, 0, 0, 0, 0, 0x84]) {
        Sniff::Wal
    } else {
        Sniff::Other
    }
}

/// Reads all of `r` into memory, refusing more than `limit` bytes (a
/// compressed file can claim anything; we never trust it).
pub fn read_limited(mut r: impl Read, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let n = (&mut r)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("{what}: {e}"))?;
    if n as u64 > limit {
        return Err(format!(
            "{what}: more than {limit} bytes once decompressed (raise --max-decompressed if this is real)"
        ));
    }
    Ok(out)
}

/// Decompresses gzip (all members) or zstd data.
pub fn decompress(kind: Sniff, b: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    match kind {
        Sniff::Gzip => read_limited(flate2::read::MultiGzDecoder::new(b), limit, "gzip"),
        Sniff::Zstd => {
            let d = ruzstd::decoding::StreamingDecoder::new(b).map_err(|e| format!("zstd: {e}"))?;
            read_limited(d, limit, "zstd")
        }
        _ => Err("not compressed".into()),
    }
}

/// The regular files in a zip archive: (name, contents), read one at a time.
pub fn zip_members(
    b: &[u8],
    limit: u64,
    mut each: impl FnMut(&str, Result<Vec<u8>, String>),
) -> Result<(), String> {
    let mut z = zip::ZipArchive::new(Cursor::new(b)).map_err(|e| format!("zip: {e}"))?;
    for i in 0..z.len() {
        let mut f = match z.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                each(&format!("#{i}"), Err(format!("zip entry {i}: {e}")));
                continue;
            }
        };
        if !f.is_file() {
            continue;
        }
        let name = f.name().to_string();
        let data = read_limited(&mut f, limit, &format!("zip entry {name}"));
        each(&name, data);
    }
    Ok(())
}

/// The regular files in a tar archive: (name, contents), read one at a time.
pub fn tar_members(
    b: &[u8],
    limit: u64,
    mut each: impl FnMut(&str, Result<Vec<u8>, String>),
) -> Result<(), String> {
    let mut t = tar::Archive::new(Cursor::new(b));
    let entries = t.entries().map_err(|e| format!("tar: {e}"))?;
    for e in entries {
        let mut e = e.map_err(|e| format!("tar: {e}"))?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        let data = read_limited(&mut e, limit, &format!("tar member {name}"));
        each(&name, data);
    }
    Ok(())
}
