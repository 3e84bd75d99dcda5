//! Opening input files: read-only, memory-mapped, never modified.
//!
//! This is the one module allowed `unsafe`: mapping a file is unsafe in Rust
//! because another process could change it underneath us (the few other
//! system calls without a safe std wrapper live here too: `flock`,
//! `SEEK_DATA`, `statvfs`, `getrlimit`). Inputs are opened read-only and
//! mapped read-only. The map is *shared* with the file: another process that
//! writes the file changes what we read, and one that truncates it makes
//! reads past the new end fault. `guard` turns such a fault into a
//! recorded [`Cut`] instead of a `SIGBUS` crash, and readers report it.

#![allow(unsafe_code)]

mod guard;

pub use guard::{Cut, pending_cuts, take_cuts};

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

/// Failure to open an input.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is a directory where a file was expected.
    #[error("{path}: is a directory, not a db or snapshot file")]
    IsDir {
        /// The path.
        path: PathBuf,
    },
    /// Not a regular file (a FIFO, a socket, a device): never opened, since
    /// opening a FIFO blocks and a device has no end.
    #[error("{path}: is not a regular file ({what})")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
}

/// The bytes of a db to read: a mapped input file, or a db made in memory
/// (the empty db etcd creates for a member dir that has none).
#[derive(Debug)]
pub enum DbImage {
    /// An input file, mapped read-only.
    Mapped(MappedFile),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl DbImage {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            DbImage::Mapped(f) => f.bytes(),
            DbImage::Owned(b) => b,
        }
    }

    /// The open file, when it is one.
    pub fn file(&self) -> Option<&File> {
        match self {
            DbImage::Mapped(f) => Some(f.file()),
            DbImage::Owned(_) => None,
        }
    }
}

/// What a non-regular file is, in a word.
pub fn file_type_word(md: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = md.file_type();
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// An input file mapped read-only.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    /// Declared before `map`: it unregisters before the map is unmapped.
    guard: Option<guard::Guard>,
    map: Option<Mmap>,
    file: File,
}

impl MappedFile {
    /// Opens `path` read-only and maps it, advising the kernel that it will
    /// be read mostly in order. (Measured: lazy faults with read-ahead beat
    /// MAP_POPULATE for a full scan, because the walk overlaps with them.)
    pub fn open(path: &Path) -> Result<MappedFile, SourceError> {
        let io = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Stat before opening: opening a FIFO blocks until a writer comes.
        let md = std::fs::metadata(path).map_err(io)?;
        if md.is_dir() {
            return Err(SourceError::IsDir {
                path: path.to_path_buf(),
            });
        }
        if !md.is_file() {
            return Err(SourceError::NotAFile {
                path: path.to_path_buf(),
                what: file_type_word(&md),
            });
        }
        let file = File::open(path).map_err(io)?;
        let md = file.metadata().map_err(io)?;
        if md.len() == 0 {
            return Ok(MappedFile {
                path: path.to_path_buf(),
                guard: None,
                map: None,
                file,
            });
        }
        let opts = MmapOptions::new();
        // SAFETY: the map is read-only and shared with the file, which is
        // opened read-only. Another process may still change the file: a
        // write changes the bytes we see (the judgment reads a live dir
        // twice for that), and a truncation makes reads past the new end
        // fault, which the guard registered below turns into zero pages
        // and a recorded cut that readers report.
        let map = unsafe { opts.map(&file) }.map_err(io)?;
        let guard = guard::register(path, map.as_ptr(), map.len());
        // Advice is only a hint; a kernel that refuses it reads the same bytes.
        let _ = map.advise(memmap2::Advice::Sequential);
        test_barrier(path);
        Ok(MappedFile {
            path: path.to_path_buf(),
            guard,
            map: Some(map),
            file,
        })
    }

    /// The open file (read-only), e.g. for a kernel-side copy.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file was cut short while it was read: the first offset
    /// that had no data any more. (The cut is still reported once by
    /// [`take_cuts`].)
    pub fn cut(&self) -> Option<Cut> {
        let offset = self.guard.as_ref()?.cut()?;
        Some(Cut {
            path: self.path.clone(),
            offset,
            mapped_len: self.bytes().len() as u64,
        })
    }
}

/// For tests of a file changed while it is read: with
/// `ETCD_RESCUE_TEST_MAP_BARRIER=DIR`, each mapping writes the file's path
/// to a new file in DIR and waits (up to a minute) until the test removes
/// it, so the test can truncate the input at a known point. Nothing else
/// changes; the variable is not meant for users.
fn test_barrier(path: &Path) {
    let Some(dir) = std::env::var_os("ETCD_RESCUE_TEST_MAP_BARRIER") else {
        return;
    };
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let flag = Path::new(&dir).join(format!("map-{}-{n}", std::process::id()));
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let tmp = flag.with_extension("tmp");
    if std::fs::write(&tmp, abs.as_os_str().as_encoded_bytes()).is_err()
        || std::fs::rename(&tmp, &flag).is_err()
    {
        return;
    }
    for _ in 0..6000 {
        if !flag.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether another process holds an exclusive `flock` on `path`: whether
/// etcd is running on the data dir this db belongs to.
///
/// bbolt takes an exclusive `flock` on the db when etcd opens it read-write,
/// and etcd holds it until it exits; etcd also `flock`s its WAL segments.
/// A shared, non-blocking `flock` that fails with `EWOULDBLOCK` therefore
/// means a live etcd (or another writer) holds the file. The probe is
/// released at once; it never waits and never writes. (bbolt retries its
/// own lock every 50 ms, so a probe in the same instant does not stop an
/// etcd that is starting.)
pub fn locked(path: &Path) -> bool {
    // Stat first: opening a FIFO would block.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) };
    if r == 0 {
        // SAFETY: as above.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// Takes the exclusive lock etcd (bbolt) takes on its db, without waiting:
/// `None` when someone holds it (etcd is running). The lock lasts as long
/// as the returned file is open.
pub fn lock_exclusive(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    let f = std::fs::File::open(path)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let r = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(Some(f));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(None),
        _ => Err(e),
    }
}

/// Maps a file this process has just written and still owns (an output
/// before its rename into place), read-only, to read it back without
/// copying it. `None` for an empty file.
pub fn map_own_output(f: &File) -> std::io::Result<Option<Mmap>> {
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the file is our own temporary output, not yet visible under
    // its final name; nothing else writes or truncates it while mapped.
    let m = unsafe { MmapOptions::new().map(f) }?;
    let _ = m.advise(memmap2::Advice::Sequential);
    Ok(Some(m))
}

/// Asks the kernel to start writing `f`'s dirty pages to disk now, without
/// waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a large
/// output's writeback overlaps the work still to come and the final fsync
/// has little left to do. Only a hint: durability still comes from fsync.
pub fn start_writeback(f: &File) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(f);
    // SAFETY: a system call on a file descriptor we own; no memory is involved.
    let _ = unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

/// The offset of the next byte of data at or after `from` in `f` (`None`:
/// only a hole remains), by `SEEK_DATA`; where the filesystem cannot tell,
/// `from` (data is assumed).
pub fn next_data(f: &File, from: u64) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let Ok(off) = libc::off_t::try_from(from) else {
        return Some(from);
    };
    // SAFETY: lseek on a file descriptor we own; no memory is passed.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, libc::SEEK_DATA) };
    if r >= 0 {
        Some(r as u64)
    } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
        None
    } else {
        Some(from)
    }
}

/// Whether a process with this id exists (it may belong to another user).
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for the process; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Bytes free for an unprivileged user on the filesystem of `dir`.
pub fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs writes into `st`, which we own; `c` is a valid C string.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// The process's address-space limit (`ulimit -v`, `prlimit --as`), if any.
pub fn address_space_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `r`, which we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

#[cfg(test)]
mod lock_tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn sees_an_exclusive_lock_held_elsewhere() {
        let dir = std::env::temp_dir().join(format!("etcd-rescue-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("db");
        std::fs::write(&p, b"x").unwrap();
        assert!(!locked(&p));
        let holder = std::fs::File::open(&p).unwrap();
        // SAFETY: flock on our own descriptor.
        assert_eq!(
            unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        assert!(locked(&p));
        drop(holder);
        assert!(!locked(&p));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
