//! Atomic output: everything is written into a temporary sibling of the
//! target, fsynced, and renamed into place, so a crash or a full disk never
//! leaves a half-written db or data dir where the user expects a good one.
//! A non-empty target is refused unless the caller was told to overwrite.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Errors of atomic output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The target exists and is not empty.
    #[error("{0}: already exists and is not empty (use --force to replace it)")]
    Exists(PathBuf),
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

/// Whether `p` exists and is a non-empty directory or a non-empty file.
fn occupied(p: &Path) -> bool {
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p).map(|mut d| d.next().is_some()).unwrap_or(true),
        Ok(m) => m.len() > 0,
        Err(_) => false,
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
    let result = fill(&mut f).inspect_err(|_| {
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
/// (created with `mode`), which is fsynced and renamed to `target`.
pub fn write_dir<T>(
    target: &Path,
    overwrite: bool,
    mode: u32,
    fill: impl FnOnce(&Path) -> Result<T, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
    use std::os::unix::fs::DirBuilderExt;
    if !overwrite && occupied(target) {
        return Err(Box::new(OutputError::Exists(target.to_path_buf())));
    }
    let tmp = temp_sibling(target);
    let _ = fs::remove_dir_all(&tmp);
    if let Some(parent) = tmp.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::DirBuilder::new()
        .mode(mode)
        .create(&tmp)
        .map_err(io_err(&tmp))?;
    let result = match fill(&tmp) {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    sync_tree(&tmp)?;
    if target.exists() {
        // Only reached when overwriting, or when the target is an empty dir.
        if target.is_dir() {
            fs::remove_dir_all(target).map_err(io_err(target))?;
        } else {
            fs::remove_file(target).map_err(io_err(target))?;
        }
    }
    fs::rename(&tmp, target).map_err(io_err(target))?;
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(result)
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
}
