//! Finding backups under the paths given: files, and data dirs as the
//! judgment's resolver ([`crate::judge::kind`]) recognises them, and the
//! objects under object store URLs ([`crate::remote`]). What each one is,
//! compressed or not, is the judgment's to say.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::remote::{self, Store, StoreObject};

/// Deepest directory nesting walked.
const MAX_DIR_DEPTH: usize = 32;

/// One thing to verify: a file (maybe compressed or an archive) or a data dir.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// A file.
    File(PathBuf),
    /// A data dir or member dir (or a WAL dir), as the judgment's resolver
    /// recognises them.
    DataDir(PathBuf),
    /// An object in an object store, read through a spill file.
    Remote(RemoteUnit),
}

/// An object and the store it is read from.
#[derive(Clone)]
pub struct RemoteUnit {
    /// The object as listed.
    pub object: StoreObject,
    /// Its store.
    pub store: Arc<Store>,
}

impl std::fmt::Debug for RemoteUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.object.fmt(f)
    }
}

impl PartialEq for RemoteUnit {
    fn eq(&self, o: &Self) -> bool {
        self.object == o.object
    }
}

impl Eq for RemoteUnit {}

impl PartialOrd for RemoteUnit {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for RemoteUnit {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.object.cmp(&o.object)
    }
}

impl Unit {
    /// Its path (an object's URL).
    pub fn path(&self) -> &Path {
        match self {
            Unit::File(p) | Unit::DataDir(p) => p,
            Unit::Remote(r) => Path::new(&r.object.url),
        }
    }

    /// Its bytes as stored: a file's size, a data dir's db, an object's size.
    pub fn stored_bytes(&self) -> u64 {
        match self {
            Unit::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            Unit::DataDir(p) => crate::datadir::resolve(p, None)
                .ok()
                .and_then(|l| std::fs::metadata(l.db).ok())
                .map_or(0, |m| m.len()),
            Unit::Remote(r) => r.object.size,
        }
    }
}

/// What reading the objects among `units` takes: (objects, their bytes,
/// the scratch space the `at_once` largest need as spill files at once).
pub fn remote_needs(units: &[Unit], at_once: usize) -> (usize, u64, u64) {
    let mut sizes: Vec<u64> = units
        .iter()
        .filter_map(|u| match u {
            Unit::Remote(r) => Some(r.object.size),
            _ => None,
        })
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let need = sizes.iter().take(at_once.max(1)).sum();
    (sizes.len(), sizes.iter().sum(), need)
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The units, in a stable order.
    pub units: Vec<Unit>,
    /// Arguments that name nothing readable (the run fails).
    pub errors: Vec<String>,
    /// Objects left out of listings, with why (not failures).
    pub notes: Vec<String>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands the command line's paths into units, in a stable order: each
/// argument in turn; directories walked in name order; glob patterns (for
/// when the shell did not expand them) in name order. Missing paths are
/// returned as errors. Object store URLs are listed (a prefix or a glob
/// over keys), through one connection per bucket.
pub fn discover(args: &[PathBuf], ropts: &remote::RemoteOptions) -> Discovered {
    let mut units = Vec::new();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for a in args {
        let s = a.to_string_lossy();
        if remote::is_url(&s) {
            match list_remote(&s, ropts) {
                Ok((found, left_out)) => {
                    units.extend(found);
                    notes.extend(left_out);
                }
                Err(e) => errors.push(e.to_string()),
            }
        } else if !a.exists() && has_glob(&s) {
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
    Discovered { units, errors, notes }
}

/// The units under one object store URL, and what its listing left out.
fn list_remote(
    url: &str,
    ropts: &remote::RemoteOptions,
) -> Result<(Vec<Unit>, Vec<String>), remote::RemoteError> {
    let target = remote::StoreTarget::parse(url)?;
    let store = Arc::new(Store::connect(&target, ropts)?);
    let listing = store.list()?;
    let units = listing
        .objects
        .into_iter()
        .map(|object| {
            Unit::Remote(RemoteUnit {
                object,
                store: Arc::clone(&store),
            })
        })
        .collect();
    let notes = listing
        .left_out
        .into_iter()
        .map(|(u, why)| format!("{u}: left out: {why}"))
        .collect();
    Ok((units, notes))
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
        // Named on the command line: say why it is not read. Found in a
        // walk (a socket beside backups): left alone.
        if depth == 0 {
            errors.push(format!(
                "{}: not a regular file ({}): not read",
                p.display(),
                crate::source::file_type_word(&md)
            ));
        }
        return;
    }
    if matches!(
        crate::judge::kind::dir_kind(p),
        crate::judge::kind::DirKind::Member | crate::judge::kind::DirKind::Wal
    ) {
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
