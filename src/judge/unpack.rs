//! Compressed files and archives, read as they are stored: unpacked into a
//! private scratch directory (never next to the input), so that what is
//! inside is judged exactly as the same files on disk would be: a
//! snapshot in a `.gz` gets the findings of the plain snapshot, a member
//! dir in a `.tar.gz` the verdict of the member dir.
//!
//! Runs of zero bytes are written as holes, so a member dir's preallocated
//! WAL segments (64 MB of zeros each) take almost no disk. What one
//! container may unpack to is capped (`Limits::max_bytes`); past the cap the
//! container is unreadable, never a partial judgment.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::kind::Container;

/// A directory removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new private directory under the system's temporary directory
    /// (`TMPDIR`), mode 0700.
    pub fn new() -> io::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        static N: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let p = base.join(format!(
                "etcd-rescue-unpack-{}-{}-{nanos:x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(Scratch { path: p }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("cannot create a scratch directory"))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// How much a container may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes in all, over every member.
    pub max_bytes: u64,
}

/// Copies `r` into a new file at `to`, writing runs of zeros as holes and
/// refusing more than `budget` bytes. Returns the bytes written.
fn copy_sparse(mut r: impl Read, to: &Path, budget: u64, what: &str) -> Result<u64, String> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut f = File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{what}: {e}")),
        };
        total += n as u64;
        if total > budget {
            return Err(format!(
                "{what}: unpacks to more than {budget} bytes (raise --max-decompressed if this is real)"
            ));
        }
        let chunk = &buf[..n];
        if chunk.iter().all(|&b| b == 0) {
            f.seek(SeekFrom::Current(n as i64))
                .map_err(|e| format!("{}: {e}", to.display()))?;
        } else {
            f.write_all(chunk).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    f.set_len(total).map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(total)
}

/// A member name made safe to join under a directory: no absolute paths,
/// no `..`, no empty names.
fn safe_rel(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The name the single stream inside `outer` gets: its name without the
/// compression suffix.
fn inner_name(outer: &str) -> String {
    let base = outer.rsplit('/').next().unwrap_or(outer);
    for suf in [".gz", ".tgz", ".zst", ".zstd", ".xz", ".bz2", ".gzip"] {
        if let Some(s) = base.strip_suffix(suf)
            && !s.is_empty()
        {
            return if suf == ".tgz" {
                format!("{s}.tar")
            } else {
                s.to_string()
            };
        }
    }
    "unpacked".to_string()
}

/// What an unpacked container gives: its files under the scratch dir.
#[derive(Debug)]
pub struct Unpacked {
    /// Where the files are.
    pub scratch: Scratch,
    /// For a compressed stream, the one file (relative to the scratch dir).
    pub single: Option<PathBuf>,
    /// Members that could not be read: (name, why).
    pub unreadable: Vec<(String, String)>,
}

/// Unpacks the container `kind` whose bytes are `data` (named `name` in
/// messages).
pub fn unpack(kind: Container, data: &[u8], name: &str, limits: Limits) -> Result<Unpacked, String> {
    let scratch = Scratch::new().map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let open = || -> Result<io::Cursor<&[u8]>, String> { Ok(io::Cursor::new(data)) };
    match kind {
        Container::Gzip | Container::Zstd => {
            let rel = PathBuf::from(inner_name(name));
            let to = scratch.path().join(&rel);
            let what = kind.word();
            if kind == Container::Gzip {
                let r = flate2::read::MultiGzDecoder::new(open()?);
                copy_sparse(r, &to, limits.max_bytes, what)?;
            } else {
                let r = ruzstd::decoding::StreamingDecoder::new(open()?).map_err(|e| format!("zstd: {e}"))?;
                copy_sparse(r, &to, limits.max_bytes, what)?;
            }
            Ok(Unpacked {
                scratch,
                single: Some(rel),
                unreadable: Vec::new(),
            })
        }
        Container::Xz | Container::Bzip2 => Err(format!(
            "{} compression is recognised but not read by etcd-rescue: decompress it first (`{} -dk {name}`)",
            kind.word(),
            if kind == Container::Xz { "xz" } else { "bzip2" }
        )),
        Container::Tar => {
            let mut unreadable = Vec::new();
            let mut budget = limits.max_bytes;
            let mut t = tar::Archive::new(open()?);
            let entries = t.entries().map_err(|e| format!("tar: {e}"))?;
            for e in entries {
                let mut e = e.map_err(|e| format!("tar: {e}"))?;
                let ty = e.header().entry_type();
                if !(ty.is_file() || ty.is_gnu_sparse()) {
                    continue;
                }
                let member = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                let Some(rel) = safe_rel(&member) else {
                    unreadable.push((member, "an unsafe member name (absolute or with ..)".into()));
                    continue;
                };
                let n = copy_sparse(
                    &mut e,
                    &scratch.path().join(rel),
                    budget,
                    &format!("tar member {member}"),
                )?;
                budget -= n;
            }
            Ok(Unpacked {
                scratch,
                single: None,
                unreadable,
            })
        }
        Container::Zip => {
            let mut unreadable = Vec::new();
            let mut budget = limits.max_bytes;
            let mut z = zip::ZipArchive::new(open()?).map_err(|e| format!("zip: {e}"))?;
            for i in 0..z.len() {
                let mut f = match z.by_index(i) {
                    Ok(f) => f,
                    Err(e) => {
                        unreadable.push((format!("#{i}"), format!("zip entry {i}: {e}")));
                        continue;
                    }
                };
                if !f.is_file() {
                    continue;
                }
                let member = f.name().to_string();
                let Some(rel) = safe_rel(&member) else {
                    unreadable.push((member, "an unsafe member name (absolute or with ..)".into()));
                    continue;
                };
                let to = scratch.path().join(rel);
                match copy_sparse(&mut f, &to, budget, &format!("zip entry {member}")) {
                    Ok(n) => budget -= n,
                    Err(e) => {
                        let _ = fs::remove_file(&to);
                        unreadable.push((member, e));
                    }
                }
            }
            Ok(Unpacked {
                scratch,
                single: None,
                unreadable,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(inner_name("a/b/snap.db.gz"), "snap.db");
        assert_eq!(inner_name("x.tgz"), "x.tar");
        assert_eq!(inner_name(".gz"), "unpacked");
        assert_eq!(safe_rel("./a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_rel("../x"), None);
        assert_eq!(safe_rel("/etc/passwd"), None);
    }

    #[test]
    fn zeros_become_holes_and_the_cap_holds() {
        let s = Scratch::new().unwrap();
        let data = vec![0u8; 1 << 20];
        let to = s.path().join("z");
        assert_eq!(copy_sparse(&data[..], &to, 1 << 21, "t").unwrap(), 1 << 20);
        assert_eq!(fs::metadata(&to).unwrap().len(), 1 << 20);
        assert!(copy_sparse(&data[..], &s.path().join("y"), 1000, "t").is_err());
    }
}
