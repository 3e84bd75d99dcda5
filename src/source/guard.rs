//! Reads of a shared map that outlive the file's end.
//!
//! An input is mapped shared (`MAP_SHARED` is what a read-only map of a
//! file gives on Linux): if another process truncates the file while we
//! read it (a backup being rewritten while `verify` runs), a read of a page
//! past the new end raises `SIGBUS`, which would kill the process. This
//! module installs a `SIGBUS` handler that, for a fault inside a mapping
//! registered here, maps zero-filled anonymous memory over the rest of that
//! mapping (so the read resumes and sees zeros) and records the offset of
//! the first such fault. Readers then report the file as changed while it
//! was read, naming the offset; nothing read from it is trusted. A fault
//! anywhere else is handed back to the handler that was there before (the
//! standard library's, or the default action), as if we were not here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// How many mappings may be guarded at once (a judgment maps a db, a few
/// WAL segments and `.snap` files; `verify` runs a few judgments at once).
/// A mapping beyond this is left unguarded, as it was before this module.
const SLOTS: usize = 1024;

/// No fault recorded.
const NONE: u64 = u64::MAX;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    /// The offset of the first page that faulted, or [`NONE`].
    fault: AtomicU64,
    /// Whether a reader has already reported the fault.
    claimed: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fault: AtomicU64::new(NONE),
    claimed: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// The path of the file in each slot in use (never touched by the handler).
static PATHS: Mutex<Vec<(usize, PathBuf)>> = Mutex::new(Vec::new());
/// Faults of mappings already dropped, not yet reported.
static DROPPED: Mutex<Vec<Cut>> = Mutex::new(Vec::new());
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// A file that was cut short while it was mapped and read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The file.
    pub path: PathBuf,
    /// The first byte offset that could not be read (a page boundary).
    pub offset: u64,
    /// The file's length when the map was made.
    pub mapped_len: u64,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = std::fs::metadata(&self.path)
            .map(|m| format!("it is now {} bytes", m.len()))
            .unwrap_or_else(|e| format!("it is now gone: {e}"));
        write!(
            f,
            "{}: the file changed while it was read: it was {} bytes when opened, and from byte {} on it had no data any more ({now}); nothing read from it can be trusted: read it again when nothing is writing it",
            self.path.display(),
            self.mapped_len,
            self.offset
        )
    }
}

/// A registered mapping; unregisters when dropped.
#[derive(Debug)]
pub(super) struct Guard {
    slot: usize,
}

/// Registers the mapping `[start, start + len)` of `path`. `None` when
/// every slot is taken (the mapping then is not guarded).
pub(super) fn register(path: &Path, start: *const u8, len: usize) -> Option<Guard> {
    install();
    let start = start as usize;
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    let slot = (0..SLOTS).find(|&i| TABLE[i].start.load(Ordering::Acquire) == 0)?;
    let s = &TABLE[slot];
    s.fault.store(NONE, Ordering::Release);
    s.claimed.store(false, Ordering::Release);
    s.len.store(len, Ordering::Release);
    s.start.store(start, Ordering::Release);
    paths.push((slot, path.to_path_buf()));
    Some(Guard { slot })
}

impl Guard {
    /// The fault of this mapping, if one happened.
    pub(super) fn cut(&self) -> Option<u64> {
        let f = TABLE[self.slot].fault.load(Ordering::Acquire);
        (f != NONE).then_some(f)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
        let path = paths
            .iter()
            .position(|(i, _)| *i == self.slot)
            .map(|at| paths.swap_remove(at).1);
        let fault = s.fault.load(Ordering::Acquire);
        if fault != NONE && !s.claimed.load(Ordering::Acquire) {
            if let Some(path) = path {
                let mapped_len = s.len.load(Ordering::Acquire) as u64;
                DROPPED.lock().unwrap_or_else(|e| e.into_inner()).push(Cut {
                    path,
                    offset: fault,
                    mapped_len,
                });
            }
        }
        s.start.store(0, Ordering::Release);
        s.len.store(0, Ordering::Release);
    }
}

/// Takes the cuts not reported yet of files at or under `root` (every
/// file when `root` is `None`), live mappings and dropped ones alike; each
/// is returned once.
pub fn take_cuts(root: Option<&Path>) -> Vec<Cut> {
    let under = |p: &Path| root.is_none_or(|r| p.starts_with(r));
    let mut out = Vec::new();
    {
        let paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
        for (slot, path) in paths.iter().filter(|(_, p)| under(p)) {
            let s = &TABLE[*slot];
            let fault = s.fault.load(Ordering::Acquire);
            if fault != NONE && !s.claimed.swap(true, Ordering::AcqRel) {
                out.push(Cut {
                    path: path.clone(),
                    offset: fault,
                    mapped_len: s.len.load(Ordering::Acquire) as u64,
                });
            }
        }
    }
    let mut dropped = DROPPED.lock().unwrap_or_else(|e| e.into_inner());
    let (mine, rest): (Vec<Cut>, Vec<Cut>) = dropped.drain(..).partition(|c| under(&c.path));
    *dropped = rest;
    out.extend(mine);
    out
}

/// The cuts not reported yet, left for [`take_cuts`] to report.
pub fn pending_cuts() -> Vec<Cut> {
    let mut out = Vec::new();
    let paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    for (slot, path) in paths.iter() {
        let s = &TABLE[*slot];
        let fault = s.fault.load(Ordering::Acquire);
        if fault != NONE && !s.claimed.load(Ordering::Acquire) {
            out.push(Cut {
                path: path.clone(),
                offset: fault,
                mapped_len: s.len.load(Ordering::Acquire) as u64,
            });
        }
    }
    drop(paths);
    out.extend(DROPPED.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
    out
}

fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Ordering::Release);
        }
        // SAFETY: a zeroed sigaction is a valid value to fill in; the
        // handler only touches atomics and makes one system call.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigbus as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut act.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &act, &mut old) == 0 {
                Some(old)
            } else {
                None
            }
        }
    });
}

/// The `SIGBUS` handler: async-signal-safe (atomics and `mmap` only).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Acquire);
    for s in &TABLE {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= start + len {
            continue;
        }
        let from = addr & !(page - 1);
        let end = start + len;
        // SAFETY: [from, end) lies inside a mapping this process made and
        // still holds (registered until its Drop, which unmaps after
        // unregistering); replacing it with anonymous zero pages keeps the
        // range mapped, so the interrupted read resumes on valid memory.
        let r = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            s.fault.fetch_min((from - start) as u64, Ordering::AcqRel);
            return;
        }
    }
    // Not ours: give the signal to whoever had it before, as they asked.
    match PREVIOUS.get().copied().flatten() {
        Some(old) if old.sa_flags & libc::SA_SIGINFO != 0 && old.sa_sigaction > libc::SIG_IGN => {
            // SAFETY: the previous handler was installed for SIGBUS with
            // SA_SIGINFO, so it takes these three arguments.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(old.sa_sigaction) };
            f(sig, info, ctx);
        }
        Some(old) => {
            // SAFETY: restores the previous disposition; the faulting read
            // repeats and is handled by it (the default action ends the process).
            unsafe { libc::sigaction(libc::SIGBUS, &old, std::ptr::null_mut()) };
        }
        None => {
            // SAFETY: as above, with the default action.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        }
    }
}
