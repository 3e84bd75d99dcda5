//! Atomic output: everything is written into a temporary directory on the
//! target's filesystem, fsynced, and renamed into place, so a crash or a
//! full disk never leaves a half-written db or data dir where the user
//! expects a good one. A non-empty target is refused unless the caller was
//! told to overwrite.
//!
//! Targets as operators have them: a new path is made by renaming a
//! temporary sibling (`.NAME.etcd-rescue-tmp-PID`); an existing directory,
//! empty (a `lost+found` aside), is filled in place from a temporary dir
//! inside it (`.etcd-rescue-tmp-PID`), entry by entry, so a mount point
//! (`/var/lib/etcd` on its own disk) keeps its filesystem, ownership and
//! mode; a symlink is followed to the directory it names (a dangling one
//! is refused before anything is written). Temporary dirs and files left
//! by a run that was killed (their PID is gone) are removed by the next run
//! that writes there, and listed by [`take_cleaned`].

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors of atomic output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target exists and is not empty.
    #[error("{0}: already exists and is not empty (use --force to replace it)")]
    Exists(PathBuf),
    /// The target is a symlink to nothing.
    #[error("{link}: a symlink to {to}, which does not exist: create it first, or remove the link")]
    Dangling {
        /// The link.
        link: PathBuf,
        /// Where it points.
        to: PathBuf,
    },
    /// The target is, holds, or lies inside an input.
    #[error(
        "{target}: is, contains or lies inside the input {input}: writing there would destroy the input (refused, --force or not)"
    )]
    Overlaps {
        /// The target.
        target: PathBuf,
        /// The input it overlaps.
        input: PathBuf,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `p` made absolute (`.` dropped, `..` taken lexically), with every
/// symlink resolved as far as the path exists; the components that do not
/// exist yet are appended as they are.
fn resolved(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut abs = PathBuf::new();
    let joined = std::env::current_dir().unwrap_or_default().join(p);
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                abs.pop();
            }
            Component::CurDir => {}
            c => abs.push(c),
        }
    }
    let mut base = abs.as_path();
    let mut rest = Vec::new();
    while fs::canonicalize(base).is_err() {
        match (base.file_name(), base.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n);
                base = parent;
            }
            _ => break,
        }
    }
    let mut out = fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    out.extend(rest.iter().rev());
    out
}

/// Refuses to write any of `targets` when it is, contains or lies inside
/// one of `inputs` (symlinks and relative paths resolved): an overwrite
/// with `--force` would otherwise destroy what is being read.
pub fn refuse_overlap(targets: &[&Path], inputs: &[&Path]) -> Result<(), OutputError> {
    for t in targets {
        let rt = resolved(t);
        for i in inputs {
            let ri = resolved(i);
            if rt.starts_with(&ri) || ri.starts_with(&rt) {
                return Err(OutputError::Overlaps {
                    target: t.to_path_buf(),
                    input: i.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// Names left alone when deciding whether a directory is empty: what
/// `mkfs` puts at the root of a new filesystem, and our own temporary dirs.
fn ignorable(name: &std::ffi::OsStr) -> bool {
    name == "lost+found" || name.to_string_lossy().starts_with(".etcd-rescue-tmp-")
}

/// Whether `p` exists and is a non-empty directory or a non-empty file.
fn occupied(p: &Path) -> bool {
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p)
            .map(|d| d.filter_map(Result::ok).any(|e| !ignorable(&e.file_name())))
            .unwrap_or(true),
        Ok(m) => m.len() > 0,
        Err(_) => false,
    }
}

thread_local! {
    /// Temporary dirs and files this thread removed because the run that
    /// made them was killed (per thread: concurrent writers in one process
    /// each hear of their own).
    static CLEANED: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What [`write_dir`] and [`write_file`] removed of earlier killed runs,
/// on this thread, since the last call.
pub fn take_cleaned() -> Vec<PathBuf> {
    CLEANED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// Removes the entries of `dir` named `PREFIX<pid>` whose process is gone.
fn clean_stale(dir: &Path, prefix: &str) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 || crate::source::process_alive(pid) {
            continue;
        }
        let p = e.path();
        let gone = match e.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&p).is_ok(),
            _ => fs::remove_file(&p).is_ok(),
        };
        if gone {
            CLEANED.with(|c| c.borrow_mut().push(p));
        }
    }
}

/// The path to write for `target`: itself, or where its symlink points.
fn follow(target: &Path) -> Result<PathBuf, OutputError> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(target).map_err(|_| OutputError::Dangling {
            link: target.to_path_buf(),
            to: fs::read_link(target).unwrap_or_default(),
        }),
        _ => Ok(target.to_path_buf()),
    }
}

/// A temporary name next to `target`.
fn temp_sibling(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    clean_stale(parent, &format!(".{name}.etcd-rescue-tmp-"));
    parent.join(format!(".{name}.etcd-rescue-tmp-{}", std::process::id()))
}

/// fsyncs a directory (so a rename in it is durable).
pub fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// fsyncs every file and directory under `p`, deepest first.
fn sync_tree(p: &Path) -> Result<(), OutputError> {
    let md = fs::metadata(p).map_err(io_err(p))?;
    if md.is_dir() {
        for e in fs::read_dir(p).map_err(io_err(p))? {
            sync_tree(&e.map_err(io_err(p))?.path())?;
        }
    }
    File::open(p).and_then(|f| f.sync_all()).map_err(io_err(p))
}

/// Writes a file atomically: `fill` writes into a temporary file, which is
/// fsynced and renamed to `target`. Returns what `fill` returned.
pub fn write_file<T>(
    target: &Path,
    overwrite: bool,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<T, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
    use std::os::unix::fs::OpenOptionsExt;
    let target = &follow(target)?;
    if !overwrite && occupied(target) {
        return Err(Box::new(OutputError::Exists(target.to_path_buf())));
    }
    let tmp = temp_sibling(target);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let result = fill(&mut f)
        .and_then(|r| inputs_intact(target).map(|()| r))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    if overwrite && target.is_dir() {
        fs::remove_dir_all(target).map_err(io_err(target))?;
    }
    fs::rename(&tmp, target).map_err(io_err(target))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(result)
}

/// Builds a directory atomically: `fill` populates a temporary directory
/// (created with `mode`), which is fsynced and renamed to `target`; an
/// existing directory target is filled in place (see the module's notes).
pub fn write_dir<T>(
    target: &Path,
    overwrite: bool,
    mode: u32,
    fill: impl FnOnce(&Path) -> Result<T, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
    use std::os::unix::fs::DirBuilderExt;
    let target = &follow(target)?;
    if !overwrite && occupied(target) {
        return Err(Box::new(OutputError::Exists(target.to_path_buf())));
    }
    let in_place = fs::metadata(target).is_ok_and(|m| m.is_dir());
    let tmp = if in_place {
        clean_stale(target, ".etcd-rescue-tmp-");
        target.join(format!(".etcd-rescue-tmp-{}", std::process::id()))
    } else {
        temp_sibling(target)
    };
    let _ = fs::remove_dir_all(&tmp);
    if let Some(parent) = tmp.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::DirBuilder::new()
        .mode(mode)
        .create(&tmp)
        .map_err(io_err(&tmp))?;
    let done = fill(&tmp).and_then(|r| {
        inputs_intact(target)?;
        sync_tree(&tmp)?;
        if in_place {
            move_in(&tmp, target)?;
        } else {
            replace(&tmp, target)?;
        }
        Ok(r)
    });
    if done.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    done
}

/// Refuses to put an output in place when an input was cut short while it
/// was read: the output would hold zeros where the input's data was.
fn inputs_intact(target: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match crate::source::pending_cuts().first() {
        Some(cut) => Err(format!("{}: not written: {cut}", target.display()).into()),
        None => Ok(()),
    }
}

/// Moves every entry of `tmp` (inside `target`) into `target`, replacing
/// what is there (only when overwriting: an empty target has nothing),
/// then removes `tmp` and fsyncs `target`.
fn move_in(tmp: &Path, target: &Path) -> Result<(), OutputError> {
    for e in fs::read_dir(target)
        .map_err(io_err(target))?
        .filter_map(Result::ok)
    {
        let p = e.path();
        if p != tmp && !ignorable(&e.file_name()) {
            let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            r.map_err(io_err(&p))?;
        }
    }
    for e in fs::read_dir(tmp).map_err(io_err(tmp))?.filter_map(Result::ok) {
        let to = target.join(e.file_name());
        fs::rename(e.path(), &to).map_err(io_err(&to))?;
    }
    fs::remove_dir(tmp).map_err(io_err(tmp))?;
    sync_dir(target)
}

/// Renames `tmp` to `target` (replacing a file there), then fsyncs the
/// parent.
fn replace(tmp: &Path, target: &Path) -> Result<(), OutputError> {
    if fs::symlink_metadata(target).is_ok() {
        fs::remove_file(target).map_err(io_err(target))?;
    }
    fs::rename(tmp, target).map_err(io_err(target))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn refuses_non_empty_targets_and_leaves_no_temp_behind() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.db");
        write_file(&t, false, 0o600, |f| Ok(f.write_all(b"one")?)).unwrap();
        assert!(write_file(&t, false, 0o600, |f| Ok(f.write_all(b"two")?)).is_err());
        assert_eq!(fs::read(&t).unwrap(), b"one");
        write_file(&t, true, 0o600, |f| Ok(f.write_all(b"two")?)).unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"two");
        // A failing writer leaves nothing behind.
        let t2 = d.path().join("fail.db");
        assert!(write_file(&t2, false, 0o600, |_| Err::<(), _>("boom".into())).is_err());
        assert!(!t2.exists());
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let dir = d.path().join("data");
        write_dir(&dir, false, 0o700, |p| Ok(fs::write(p.join("x"), b"1")?)).unwrap();
        assert!(write_dir(&dir, false, 0o700, |_| Ok(())).is_err());
        assert_eq!(fs::read(dir.join("x")).unwrap(), b"1");
    }

    #[test]
    fn outputs_that_are_in_or_around_an_input_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("data");
        fs::create_dir_all(input.join("member/snap")).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        for t in [
            input.clone(),
            input.join("member/new"),
            d.path().to_path_buf(),
            link.clone(),
            d.path().join("x/../data"),
            link.join("member"),
        ] {
            assert!(refuse_overlap(&[&t], &[&input]).is_err(), "{}", t.display());
        }
        assert!(refuse_overlap(&[&d.path().join("data2")], &[&input]).is_ok());
        assert!(refuse_overlap(&[&d.path().join("out/data")], &[&input]).is_ok());
    }

    #[test]
    fn existing_dirs_are_filled_in_place_symlinks_followed_and_stale_temps_removed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        // An empty dir with lost+found and mode 0750: filled in place, the
        // dir itself kept (same inode, same mode).
        let t = d.path().join("etcd");
        fs::create_dir_all(t.join("lost+found")).unwrap();
        fs::set_permissions(&t, fs::Permissions::from_mode(0o750)).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = fs::metadata(&t).unwrap().ino();
        // A temp dir of a killed run (pid 0x7ffffffe is not running) inside it,
        // and one beside a new target.
        fs::create_dir_all(t.join(".etcd-rescue-tmp-2147483646/member")).unwrap();
        fs::create_dir_all(d.path().join(".new.etcd-rescue-tmp-2147483646")).unwrap();
        write_dir(&t, false, 0o700, |p| {
            Ok(fs::create_dir_all(p.join("member/snap"))?)
        })
        .unwrap();
        assert!(t.join("member/snap").is_dir());
        let md = fs::metadata(&t).unwrap();
        assert_eq!((md.ino(), md.permissions().mode() & 0o777), (ino, 0o750));
        let mut names: Vec<_> = fs::read_dir(&t)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["lost+found", "member"]);
        // Not empty any more: refused, unless overwriting.
        assert!(write_dir(&t, false, 0o700, |_| Ok(())).is_err());
        write_dir(&t, true, 0o700, |p| Ok(fs::write(p.join("x"), b"1")?)).unwrap();
        assert!(t.join("x").is_file() && !t.join("member").exists());
        // A new target: the stale sibling is gone too.
        write_dir(&d.path().join("new"), false, 0o700, |_| Ok(())).unwrap();
        let cleaned = take_cleaned();
        assert_eq!(cleaned.len(), 2, "{cleaned:?}");
        // A symlink to an empty dir: the dir is filled, the link kept.
        let real = d.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_dir(&link, false, 0o700, |p| Ok(fs::write(p.join("y"), b"1")?)).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(real.join("y").is_file());
        // A dangling symlink: refused before anything is written.
        let dangling = d.path().join("dangling");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        let e = write_dir(&dangling, false, 0o700, |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!d.path().join("nowhere").exists());
        assert!(!fs::read_dir(d.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains("etcd-rescue-tmp")
        }));
    }
}
