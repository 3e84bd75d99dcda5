//! The whole cluster as a tree of manifests:
//! `DIR/<namespace>/<resource>/<name>.yaml`, cluster-scoped objects under
//! `DIR/_cluster/<resource>/<name>.yaml` (`_` cannot start a namespace).
//!
//! Streamed: the key index holds keys and revisions only, and each object is
//! read, decoded, written and dropped in turn. Files of Secrets are created
//! with mode 0600.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::apply;
use super::keys::{self, Location};
use super::object::{self, Context, Object};
use super::store;
use super::yaml;
use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::KvError;

/// What to dump.
#[derive(Clone, Debug)]
pub struct DumpOptions<'a> {
    /// The output directory.
    pub out: PathBuf,
    /// Strip server-set fields and leave out what a new cluster makes itself.
    pub for_apply: bool,
    /// Only this namespace (cluster-scoped objects are then left out).
    pub namespace: Option<String>,
    /// Only these resources (names, kinds or short names).
    pub resources: Vec<String>,
    /// The revision (head when `None`).
    pub rev: Option<i64>,
    /// Decoding context.
    pub cx: Context<'a>,
    /// Worker threads (0: one per core, at most 8).
    pub jobs: usize,
    /// Write into an existing non-empty directory (files there are
    /// replaced; symlinks in it are never followed).
    pub merge: bool,
}

/// Counts for one resource.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ResourceCount {
    /// Files written.
    pub written: usize,
    /// Objects that did not decode (not written).
    pub failed: usize,
    /// Objects left out by `--for-apply`.
    pub skipped: usize,
}

/// One object that could not be dumped.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The etcd key.
    pub key: String,
    /// Why.
    pub problem: String,
}

/// What a dump did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DumpSummary {
    /// The revision dumped.
    pub revision: i64,
    /// Objects seen.
    pub objects: usize,
    /// Files written.
    pub written: usize,
    /// Per resource.
    pub resources: BTreeMap<String, ResourceCount>,
    /// Left out by `--for-apply`, per reason.
    pub skipped: BTreeMap<String, usize>,
    /// Objects that could not be decoded.
    pub failures: Vec<Failure>,
    /// Objects whose protobuf had fields the schema does not know.
    pub with_unknown_fields: usize,
}

/// Why a dump could not run.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Reading the keyspace failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The output directory holds files already.
    #[error(
        "{0}: exists and is not empty: dump into a new or empty directory, or pass --merge to write into it (its files are replaced; symlinks in it are never followed)"
    )]
    NotEmpty(PathBuf),
    /// A symlink (or a file) stands where the tree needs a directory.
    #[error(
        "{0}: a symlink or a file where the dump needs a directory: not followed, refusing to write through it"
    )]
    NotADir(PathBuf),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A path component from a name read from the file: `/`, NUL, `%` and the
/// names `.` and `..` are percent-encoded so nothing escapes `DIR`.
pub fn safe_component(s: &str) -> String {
    if s.is_empty() {
        return "%00empty".into();
    }
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            '%' => out.push_str("%25"),
            '\\' => out.push_str("%5C"),
            c => out.push(c),
        }
    }
    out
}

/// Where an object's file goes, relative to the output directory.
pub fn relative_path(loc: &Location) -> PathBuf {
    let ns = if loc.namespace.is_empty() {
        "_cluster".to_string()
    } else {
        safe_component(&loc.namespace)
    };
    let res = if loc.resource.is_empty() {
        "_unknown".to_string()
    } else {
        safe_component(&loc.resource)
    };
    Path::new(&ns)
        .join(res)
        .join(format!("{}.yaml", safe_component(&loc.name)))
}

/// Whether an object (by location and kind) is selected.
pub fn selected(loc: &Location, kind: &str, namespace: Option<&str>, resources: &[String]) -> bool {
    if let Some(ns) = namespace {
        if loc.namespace != ns {
            return false;
        }
    }
    resources.is_empty() || resources.iter().any(|r| keys::matches(r, &loc.resource, kind))
}

/// Makes the directories of `rel` under `root`, one component at a time,
/// never through a symlink: a symlink (or a file) on the way is refused.
fn make_dirs(root: &Path, rel: &Path) -> Result<(), DumpError> {
    let mut p = root.to_path_buf();
    for c in rel.components() {
        p.push(c);
        let io = |source| DumpError::Io {
            path: p.clone(),
            source,
        };
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(DumpError::NotADir(p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&p) {
                Ok(()) => {}
                // Another worker made it: check what it is.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !std::fs::symlink_metadata(&p).map_err(io)?.is_dir() {
                        return Err(DumpError::NotADir(p));
                    }
                }
                Err(e) => return Err(io(e)),
            },
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

/// Writes `text` to `path` without following any link: into a new file
/// beside it (created exclusively, mode 0600 for a Secret from the first
/// byte, else 0644), then renamed over `path` (which replaces a symlink
/// there instead of writing through it).
fn write_file(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.etcd-rescue-tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// What one worker did, merged into the summary at the end.
#[derive(Default)]
struct Partial {
    objects: usize,
    written: usize,
    with_unknown_fields: usize,
    resources: BTreeMap<String, ResourceCount>,
    skipped: BTreeMap<String, usize>,
    failures: Vec<Failure>,
    uids: Vec<String>,
}

/// Runs `work` on every entry, spread over the machine's cores in chunks;
/// `progress` is called from this thread meanwhile.
fn parallel<'e, 'a: 'e, F>(
    jobs: usize,
    entries: &'e [&'e store::KeyEntry<'a>],
    progress: &mut dyn FnMut(usize, usize),
    work: F,
) -> Result<Vec<Partial>, DumpError>
where
    F: Fn(&store::KeyEntry<'a>, &mut Partial) -> Result<(), DumpError> + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Large chunks of key-sorted entries: workers write to different
    // directories (creating files in one directory serializes in the kernel).
    const CHUNK: usize = 4096;
    let threads = match jobs {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8),
        n => n,
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let total = entries.len();
    std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                sc.spawn(|| {
                    let mut p = Partial::default();
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= total {
                            return Ok(p);
                        }
                        for e in &entries[start..(start + CHUNK).min(total)] {
                            work(e, &mut p)?;
                        }
                        done.fetch_add((start + CHUNK).min(total) - start, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) {
            progress(done.load(Ordering::Relaxed), total);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        progress(total, total);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Dumps the objects of the keyspace `ks`, on all cores. `progress(done, total)` is
/// called as objects are processed. The files written do not depend on the
/// order the workers run in, and the summary is sorted.
pub fn dump(
    ks: &Keyspace<'_>,
    o: &DumpOptions<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DumpSummary, DumpError> {
    let prefix = format!("{}/", o.cx.prefix.trim_end_matches('/'));
    let idx = store::index(ks, o.rev, prefix.as_bytes())?;
    // Cheap filter on the key before decoding (custom resources' keys can be
    // read two ways: they are decided after decoding).
    let key_selected = |e: &&store::KeyEntry<'_>| {
        if o.namespace.is_none() && o.resources.is_empty() {
            return true;
        }
        match keys::locate(&String::from_utf8_lossy(e.key), o.cx.prefix, None, None) {
            Some(loc) if !loc.resource.contains('.') => {
                selected(&loc, "", o.namespace.as_deref(), &o.resources)
            }
            _ => true,
        }
    };
    let live: Vec<_> = idx
        .entries
        .iter()
        .filter(|e| e.deleted_at.is_none())
        .filter(key_selected)
        .collect();
    let read = |e: &store::KeyEntry<'_>| -> Result<Option<Object>, DumpError> {
        let obj = store::value_at(ks, e.last_put)?.map(|kv| object::decode(&kv, None, o.cx));
        Ok(obj.filter(|obj| selected(&obj.location, &obj.kind, o.namespace.as_deref(), &o.resources)))
    };
    // --for-apply needs every selected object's uid first (owners).
    let mut uids = HashSet::new();
    if o.for_apply {
        let parts = parallel(o.jobs, &live, &mut |_, _| {}, |e, p| {
            if let Some(obj) = read(e)? {
                if let Some(u) = obj
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer("/metadata/uid"))
                    .and_then(Value::as_str)
                {
                    p.uids.push(u.to_string());
                }
            }
            Ok(())
        })?;
        uids.extend(parts.into_iter().flat_map(|p| p.uids));
    }
    std::fs::create_dir_all(&o.out).map_err(|source| DumpError::Io {
        path: o.out.clone(),
        source,
    })?;
    let occupied = std::fs::read_dir(&o.out)
        .map(|mut d| d.next().is_some())
        .map_err(|source| DumpError::Io {
            path: o.out.clone(),
            source,
        })?;
    if occupied && !o.merge {
        return Err(DumpError::NotEmpty(o.out.clone()));
    }
    let parts = parallel(o.jobs, &live, progress, |e, p| {
        let Some(mut obj) = read(e)? else { return Ok(()) };
        p.objects += 1;
        if obj.unknown_fields > 0 {
            p.with_unknown_fields += 1;
        }
        let count = p.resources.entry(obj.location.resource.clone()).or_default();
        let (Some(mut body), None) = (obj.body.take(), obj.problem.as_ref()) else {
            count.failed += 1;
            p.failures.push(Failure {
                key: obj.key.clone(),
                problem: obj.problem.clone().unwrap_or_default(),
            });
            return Ok(());
        };
        if o.for_apply {
            if let Some(why) = apply::skip_reason(&obj.location.resource, &body, &uids) {
                count.skipped += 1;
                *p.skipped.entry(why.to_string()).or_default() += 1;
                return Ok(());
            }
            apply::strip(&mut body);
        }
        let path = o.out.join(relative_path(&obj.location));
        let io = |source| DumpError::Io {
            path: path.clone(),
            source,
        };
        let rel = relative_path(&obj.location);
        if let Some(dir) = rel.parent() {
            make_dirs(&o.out, dir)?;
        }
        write_file(&path, &yaml::to_string(&body), obj.is_secret()).map_err(io)?;
        count.written += 1;
        p.written += 1;
        Ok(())
    })?;
    let mut s = DumpSummary {
        revision: idx.revision,
        ..DumpSummary::default()
    };
    for p in parts {
        s.objects += p.objects;
        s.written += p.written;
        s.with_unknown_fields += p.with_unknown_fields;
        for (r, c) in p.resources {
            let t = s.resources.entry(r).or_default();
            t.written += c.written;
            t.failed += c.failed;
            t.skipped += c.skipped;
        }
        for (why, n) in p.skipped {
            *s.skipped.entry(why).or_default() += n;
        }
        s.failures.extend(p.failures);
    }
    s.failures.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(s)
}
