//! The whole cluster as manifests, in one of four shapes:
//! - a tree `DIR/<namespace>/<resource>/<name>.yaml`, cluster-scoped
//!   objects under `DIR/_cluster/<resource>/<name>.yaml` (`_` cannot start
//!   a namespace);
//! - multi-document YAML, one file per namespace (`DIR/<namespace>.yaml`,
//!   `DIR/_cluster.yaml`);
//! - the tree as a tar stream, or the documents as one YAML stream, on a
//!   writer (`--out -`).
//!
//! `--for-apply` puts each object under its [`Phase`] directory, with a
//! `kustomization.yaml` per phase, an `apply.sh` that applies the phases in
//! order and waits for the CRDs, and `etcd-rescue-report.jsonl`: per object,
//! what was changed or why it was left out ([`apply`]).
//!
//! Streamed: the key index holds keys and revisions only, and each object is
//! read, decoded, written and dropped in turn; streams are written in key
//! order, a chunk at a time, whatever order the workers finish in. Files
//! holding Secrets are created with mode 0600.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use serde::Serialize;
use serde_json::Value;

use super::apply::{self, ApplyContext, Decision};
use super::filter::{Filter, NamespaceMapping};
use super::keys::Location;
use super::object::{self, Context, Object};
use super::phase::{self, PHASES, Phase};
use super::store;
use super::yaml;
use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::KvError;

/// Where the dump goes.
pub enum DumpTarget {
    /// A directory (created if missing).
    Dir(PathBuf),
    /// A writer: a tar stream of the tree, or one YAML stream
    /// ([`DumpLayout::MultiDoc`]).
    Stream(Box<dyn Write + Send>),
}

/// How objects are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpLayout {
    /// One file per object.
    Files,
    /// One multi-document YAML per namespace (or one stream).
    MultiDoc,
}

/// `--for-apply`'s choices.
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    /// Keep objects whose controller is dumped too.
    pub keep_owned: bool,
    /// Keep Services' node ports.
    pub preserve_nodeports: bool,
    /// Velero's namespace mapping.
    pub mapping: NamespaceMapping,
}

/// What to dump.
pub struct DumpOptions<'a> {
    /// Where to.
    pub target: DumpTarget,
    /// One file per object or per namespace.
    pub layout: DumpLayout,
    /// Ready for a new cluster: stripped, left out, in phases.
    pub for_apply: Option<ApplyOptions>,
    /// Which objects.
    pub filter: Filter,
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
#[serde(rename_all = "camelCase")]
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
    /// `--for-apply`: the phases written, in order.
    pub phases: Vec<String>,
    /// `--for-apply`: changes beyond the server-set metadata and status,
    /// per rule.
    pub changed: BTreeMap<String, usize>,
}

/// What `--for-apply` did to one object (a line of
/// `etcd-rescue-report.jsonl`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEntry {
    /// The etcd key.
    pub key: String,
    /// Resource, as `k8s ls` shows it.
    pub resource: String,
    /// Namespace (after mapping; empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `written`, `skipped` or `failed`.
    pub action: &'static str,
    /// The file written, relative to the dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why it was left out or could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was changed besides the server-set metadata and status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
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

fn namespace_component(ns: &str) -> String {
    if ns.is_empty() {
        "_cluster".to_string()
    } else {
        safe_component(ns)
    }
}

/// Where an object's file goes, relative to the output directory (or to
/// its phase directory).
pub fn relative_path(loc: &Location) -> PathBuf {
    let ns = namespace_component(&loc.namespace);
    let res = if loc.resource.is_empty() {
        "_unknown".to_string()
    } else {
        safe_component(&loc.resource)
    };
    Path::new(&ns)
        .join(res)
        .join(format!("{}.yaml", safe_component(&loc.name)))
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

fn create_new(path: &Path, secret: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
}

/// Writes `text` to `path` without following any link (mode 0600 for a
/// Secret from the first byte, else 0644). In a directory that was empty
/// when the dump began (`fresh`), the file is created in place; otherwise,
/// or when the name is taken, into a new file beside it that is renamed
/// over `path` (which replaces a symlink there instead of writing through
/// it).
fn write_file(path: &Path, text: &str, secret: bool, fresh: bool) -> std::io::Result<()> {
    if fresh {
        match create_new(path, secret) {
            Ok(mut f) => return f.write_all(text.as_bytes()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.etcd-rescue-tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = create_new(&tmp, secret)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// One rendered manifest on its way to a stream or a multi-document file.
struct Item {
    /// Relative path of its file (per-object layout) or its namespace's
    /// file (multi-document layout).
    rel: PathBuf,
    text: String,
    secret: bool,
}

/// What one worker did, merged into the summary at the end.
#[derive(Default)]
struct Partial {
    objects: usize,
    written: usize,
    with_unknown_fields: usize,
    resources: BTreeMap<String, ResourceCount>,
    skipped: BTreeMap<String, usize>,
    changed: BTreeMap<String, usize>,
    failures: Vec<Failure>,
    report: Vec<ReportEntry>,
    /// Per phase, the files (relative to the phase directory).
    files: BTreeMap<Phase, BTreeSet<String>>,
    crds: Vec<String>,
    /// First pass of --for-apply.
    uids: Vec<String>,
    selector_services: Vec<String>,
    /// Directories this worker made (per-object files).
    dirs: HashSet<PathBuf>,
}

/// Writes chunks in order: chunk `n` waits until chunks before it are
/// written, so a stream does not depend on the order workers finish in.
#[derive(Default)]
struct InOrder {
    next: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl InOrder {
    fn commit(&self, n: usize, write: impl FnOnce() -> Result<(), DumpError>) -> Result<(), DumpError> {
        let mut g = self.next.lock().unwrap_or_else(|e| e.into_inner());
        while g.0 != n && !g.1 {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        if g.1 {
            // An earlier chunk failed: its error is the one reported.
            return Ok(());
        }
        let r = write();
        g.0 += 1;
        g.1 |= r.is_err();
        self.cv.notify_all();
        r
    }

    fn fail(&self) {
        self.next.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// Runs `work` on every entry, spread over the machine's cores in chunks of
/// key-sorted entries; `commit(n, items)` gets chunk `n`'s items;
/// `progress` is called from this thread meanwhile.
fn parallel<'e, 'a: 'e, F, C>(
    jobs: usize,
    entries: &'e [&'e store::KeyEntry<'a>],
    progress: &mut dyn FnMut(usize, usize),
    work: F,
    commit: C,
) -> Result<Vec<Partial>, DumpError>
where
    F: Fn(&store::KeyEntry<'a>, &mut Partial, &mut Vec<Item>) -> Result<(), DumpError> + Sync,
    C: Fn(usize, Vec<Item>) -> Result<(), DumpError> + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Large chunks: workers write to different directories (creating files
    // in one directory serializes in the kernel).
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
    let one_chunk = |start: usize, p: &mut Partial| -> Result<(), DumpError> {
        let mut items = Vec::new();
        for e in &entries[start..(start + CHUNK).min(total)] {
            work(e, p, &mut items)?;
        }
        commit(start / CHUNK, items)
    };
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
                        one_chunk(start, &mut p)?;
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

/// Where the manifests go while the workers run.
enum Sink {
    /// Per-object files, written by the workers as they go.
    Files { root: PathBuf, fresh: bool },
    /// Multi-document files per namespace, appended in key order.
    Docs {
        root: PathBuf,
        open: Mutex<HashMap<PathBuf, std::io::BufWriter<std::fs::File>>>,
    },
    /// A tar stream.
    Tar(Mutex<tar::Builder<Box<dyn Write + Send>>>),
    /// One YAML stream.
    Yaml(Mutex<Box<dyn Write + Send>>),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DumpError + '_ {
    move |source| DumpError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the output directory, refusing a non-empty one unless merging;
/// says whether it was empty.
fn prepare_dir(out: &Path, merge: bool) -> Result<bool, DumpError> {
    std::fs::create_dir_all(out).map_err(io_at(out))?;
    let occupied = std::fs::read_dir(out)
        .map(|mut d| d.next().is_some())
        .map_err(io_at(out))?;
    if occupied && !merge {
        return Err(DumpError::NotEmpty(out.to_path_buf()));
    }
    Ok(!occupied)
}

fn tar_header(len: usize, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len as u64);
    h.set_mode(mode);
    h.set_entry_type(tar::EntryType::Regular);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    h.set_mtime(now);
    h
}

impl Sink {
    fn open(target: DumpTarget, layout: DumpLayout, merge: bool) -> Result<Sink, DumpError> {
        Ok(match (target, layout) {
            (DumpTarget::Dir(root), DumpLayout::Files) => {
                let fresh = prepare_dir(&root, merge)?;
                Sink::Files { root, fresh }
            }
            (DumpTarget::Dir(root), DumpLayout::MultiDoc) => {
                prepare_dir(&root, merge)?;
                Sink::Docs {
                    root,
                    open: Mutex::new(HashMap::new()),
                }
            }
            (DumpTarget::Stream(w), DumpLayout::Files) => Sink::Tar(Mutex::new(tar::Builder::new(w))),
            (DumpTarget::Stream(w), DumpLayout::MultiDoc) => Sink::Yaml(Mutex::new(w)),
        })
    }

    fn ordered(&self) -> bool {
        !matches!(self, Sink::Files { .. })
    }

    /// Per-object files: write now. Streams: keep for the chunk's commit.
    fn put(&self, item: Item, p: &mut Partial, items: &mut Vec<Item>) -> Result<(), DumpError> {
        let Sink::Files { root, fresh } = self else {
            items.push(item);
            return Ok(());
        };
        if let Some(dir) = item.rel.parent() {
            if !p.dirs.contains(dir) {
                make_dirs(root, dir)?;
                p.dirs.insert(dir.to_path_buf());
            }
        }
        let path = root.join(&item.rel);
        write_file(&path, &item.text, item.secret, *fresh).map_err(io_at(&path))
    }

    /// Writes a chunk's items, in order.
    fn write(&self, items: Vec<Item>) -> Result<(), DumpError> {
        match self {
            Sink::Files { .. } => Ok(()),
            Sink::Tar(t) => {
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                for it in items {
                    let mut h = tar_header(it.text.len(), if it.secret { 0o600 } else { 0o644 });
                    t.append_data(&mut h, &it.rel, it.text.as_bytes())
                        .map_err(io_at(&it.rel))?;
                }
                Ok(())
            }
            Sink::Yaml(w) => {
                let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
                for it in items {
                    w.write_all(b"---\n")
                        .and_then(|()| w.write_all(it.text.as_bytes()))
                        .map_err(io_at(Path::new("-")))?;
                }
                Ok(())
            }
            Sink::Docs { root, open } => {
                let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
                for it in items {
                    let path = root.join(&it.rel);
                    if !open.contains_key(&path) {
                        if let Some(dir) = it.rel.parent() {
                            make_dirs(root, dir)?;
                        }
                        // Namespaces hold Secrets: every file is private.
                        let f = create_new(&path, true).map_err(io_at(&path))?;
                        open.insert(path.clone(), std::io::BufWriter::new(f));
                    }
                    let f = open.get_mut(&path).expect("opened above");
                    f.write_all(b"---\n")
                        .and_then(|()| f.write_all(it.text.as_bytes()))
                        .map_err(io_at(&path))?;
                }
                Ok(())
            }
        }
    }

    /// Adds a file that is not a manifest (the script, a kustomization,
    /// the report).
    fn extra(&self, rel: &Path, text: &str, mode: u32) -> Result<(), DumpError> {
        match self {
            Sink::Files { root, .. } | Sink::Docs { root, .. } => {
                use std::os::unix::fs::PermissionsExt;
                if let Some(dir) = rel.parent() {
                    make_dirs(root, dir)?;
                }
                let path = root.join(rel);
                write_file(&path, text, false, false)
                    .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)))
                    .map_err(io_at(&path))
            }
            Sink::Tar(t) => {
                let mut h = tar_header(text.len(), mode);
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                t.append_data(&mut h, rel, text.as_bytes()).map_err(io_at(rel))
            }
            Sink::Yaml(_) => Ok(()),
        }
    }

    fn finish(self) -> Result<(), DumpError> {
        match self {
            Sink::Files { .. } => Ok(()),
            Sink::Docs { open, .. } => {
                for (path, mut f) in open.into_inner().unwrap_or_else(|e| e.into_inner()) {
                    f.flush().map_err(io_at(&path))?;
                }
                Ok(())
            }
            Sink::Tar(t) => {
                let t = t.into_inner().unwrap_or_else(|e| e.into_inner());
                t.into_inner()
                    .and_then(|mut w| w.flush())
                    .map_err(io_at(Path::new("-")))
            }
            Sink::Yaml(w) => w
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .flush()
                .map_err(io_at(Path::new("-"))),
        }
    }
}

/// The first pass of `--for-apply`, over every live object: the UIDs of the
/// selected ones (owners that are dumped), and the Services with a selector
/// (whose Endpoints the endpoints controller of the new cluster keeps,
/// whether or not the Service itself is selected).
fn learn(
    ks: &Keyspace<'_>,
    jobs: usize,
    filter: &Filter,
    cx: Context<'_>,
    live: &[&store::KeyEntry<'_>],
    a: &ApplyOptions,
) -> Result<ApplyContext, DumpError> {
    let parts = parallel(
        jobs,
        live,
        &mut |_, _| {},
        |e, p, _| {
            let Some(obj) = store::value_at(ks, e.last_put)?.map(|kv| object::decode(&kv, None, cx)) else {
                return Ok(());
            };
            let Some(body) = obj.body.as_ref() else {
                return Ok(());
            };
            let uid = body.pointer("/metadata/uid").and_then(Value::as_str);
            if let Some(u) = uid.filter(|_| filter.matches(&obj.location, &obj.kind, Some(body))) {
                p.uids.push(u.to_string());
            }
            let has_selector = body
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .is_some_and(|s| !s.is_empty());
            if obj.location.resource == "services" && has_selector {
                p.selector_services
                    .push(format!("{}/{}", obj.location.namespace, obj.location.name));
            }
            Ok(())
        },
        |_, _| Ok(()),
    )?;
    let mut cx = ApplyContext {
        keep_owned: a.keep_owned,
        preserve_nodeports: a.preserve_nodeports,
        mapping: a.mapping.clone(),
        ..ApplyContext::default()
    };
    for p in parts {
        cx.uids.extend(p.uids);
        cx.selector_services.extend(p.selector_services);
    }
    Ok(cx)
}

/// Where an object goes: its file (per-object layout) or its namespace's
/// file (multi-document), under its phase directory for `--for-apply`.
fn place(loc: &Location, layout: DumpLayout, phase: Option<Phase>) -> (PathBuf, String) {
    let inside = match layout {
        DumpLayout::Files => relative_path(loc),
        DumpLayout::MultiDoc => PathBuf::from(format!("{}.yaml", namespace_component(&loc.namespace))),
    };
    let rel_in_phase = inside.to_string_lossy().into_owned();
    match phase {
        Some(ph) => (Path::new(ph.dir()).join(&inside), rel_in_phase),
        None => (inside, rel_in_phase),
    }
}

/// Dumps the objects of the keyspace `ks`, on all cores. `progress(done, total)` is
/// called as objects are processed. What is written does not depend on the
/// order the workers run in, and the summary is sorted.
pub fn dump(
    ks: &Keyspace<'_>,
    o: DumpOptions<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DumpSummary, DumpError> {
    let prefix = format!("{}/", o.cx.prefix.trim_end_matches('/'));
    let idx = store::index(ks, o.rev, prefix.as_bytes())?;
    let all_live: Vec<_> = idx.entries.iter().filter(|e| e.deleted_at.is_none()).collect();
    // Cheap filter on the key before decoding.
    let live: Vec<_> = all_live
        .iter()
        .copied()
        .filter(|e| {
            super::keys::locate(&String::from_utf8_lossy(e.key), o.cx.prefix, None, None)
                .is_none_or(|loc| o.filter.key_may_match(&loc))
        })
        .collect();
    let read = |e: &store::KeyEntry<'_>| -> Result<Option<Object>, DumpError> {
        let obj = store::value_at(ks, e.last_put)?.map(|kv| object::decode(&kv, None, o.cx));
        Ok(obj.filter(|obj| o.filter.matches(&obj.location, &obj.kind, obj.body.as_ref())))
    };
    let apply_cx = match &o.for_apply {
        Some(a) => Some(learn(ks, o.jobs, &o.filter, o.cx, &all_live, a)?),
        None => None,
    };
    let DumpOptions { target, layout, .. } = o;
    let sink = Sink::open(target, layout, o.merge)?;
    let order = InOrder::default();
    let parts = parallel(
        o.jobs,
        &live,
        progress,
        |e, p, items| {
            let r = read(e).and_then(|obj| match obj {
                Some(obj) => one(obj, apply_cx.as_ref(), layout, &sink, p, items),
                None => Ok(()),
            });
            if r.is_err() {
                // Chunks after this one must not wait for it.
                order.fail();
            }
            r
        },
        |n, items| {
            if !sink.ordered() {
                return Ok(());
            }
            let r = order.commit(n, || sink.write(items));
            if r.is_err() {
                order.fail();
            }
            r
        },
    );
    let parts = parts?;
    let s = summarize(idx.revision, parts, &sink, apply_cx.is_some())?;
    sink.finish()?;
    Ok(s)
}

/// Decodes, judges and places one object.
fn one(
    mut obj: Object,
    apply_cx: Option<&ApplyContext>,
    layout: DumpLayout,
    sink: &Sink,
    p: &mut Partial,
    items: &mut Vec<Item>,
) -> Result<(), DumpError> {
    p.objects += 1;
    if obj.unknown_fields > 0 {
        p.with_unknown_fields += 1;
    }
    let resource = obj.location.resource.clone();
    let count = p.resources.entry(resource.clone()).or_default();
    let mut entry = ReportEntry {
        key: obj.key.clone(),
        resource: resource.clone(),
        namespace: obj.location.namespace.clone(),
        name: obj.location.name.clone(),
        action: "written",
        file: None,
        reason: None,
        changes: Vec::new(),
    };
    let (Some(mut body), None) = (obj.body.take(), obj.problem.as_ref()) else {
        count.failed += 1;
        let problem = obj.problem.clone().unwrap_or_default();
        p.failures.push(Failure {
            key: obj.key.clone(),
            problem: problem.clone(),
        });
        if apply_cx.is_some() {
            entry.action = "failed";
            entry.reason = Some(problem);
            p.report.push(entry);
        }
        return Ok(());
    };
    let mut phase = None;
    if let Some(cx) = apply_cx {
        match apply::decide(&resource, &mut body, cx) {
            Decision::Skip(why) => {
                count.skipped += 1;
                *p.skipped.entry(why.to_string()).or_default() += 1;
                entry.action = "skipped";
                entry.reason = Some(why.to_string());
                p.report.push(entry);
                return Ok(());
            }
            Decision::Write(changes) => {
                for c in &changes {
                    *p.changed.entry(c.rule.to_string()).or_default() += 1;
                }
                entry.changes = changes.into_iter().map(|c| c.text).collect();
            }
        }
        obj.location.namespace = cx.mapping.map(&obj.location.namespace).to_string();
        if resource == "namespaces" {
            obj.location.name = cx.mapping.map(&obj.location.name).to_string();
        }
        let ph = Phase::of(&resource, !obj.location.namespace.is_empty());
        if ph == Phase::Crds {
            p.crds.push(obj.location.name.clone());
        }
        phase = Some(ph);
    }
    let (rel, in_phase) = place(&obj.location, layout, phase);
    if let Some(ph) = phase {
        p.files.entry(ph).or_default().insert(in_phase);
        entry.namespace = obj.location.namespace.clone();
        entry.file = Some(rel.to_string_lossy().into_owned());
        p.report.push(entry);
    }
    let item = Item {
        rel,
        text: yaml::to_string(&body),
        secret: obj.is_secret(),
    };
    sink.put(item, p, items)?;
    p.resources.entry(resource).or_default().written += 1;
    p.written += 1;
    Ok(())
}

/// Merges the workers' parts and, for `--for-apply`, writes the phases'
/// kustomizations, the script and the report.
fn summarize(
    revision: i64,
    parts: Vec<Partial>,
    sink: &Sink,
    for_apply: bool,
) -> Result<DumpSummary, DumpError> {
    let mut s = DumpSummary {
        revision,
        ..DumpSummary::default()
    };
    let mut report = Vec::new();
    let mut files: BTreeMap<Phase, BTreeSet<String>> = BTreeMap::new();
    let mut crds = Vec::new();
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
        for (what, n) in p.changed {
            *s.changed.entry(what).or_default() += n;
        }
        s.failures.extend(p.failures);
        report.extend(p.report);
        for (ph, f) in p.files {
            files.entry(ph).or_default().extend(f);
        }
        crds.extend(p.crds);
    }
    s.failures.sort_by(|a, b| a.key.cmp(&b.key));
    if !for_apply {
        return Ok(s);
    }
    crds.sort();
    let phases: Vec<Phase> = PHASES.into_iter().filter(|ph| files.contains_key(ph)).collect();
    for (ph, f) in &files {
        let list: Vec<String> = f.iter().cloned().collect();
        sink.extra(
            &Path::new(ph.dir()).join("kustomization.yaml"),
            &phase::kustomization(&list),
            0o644,
        )?;
    }
    sink.extra(
        Path::new("apply.sh"),
        &phase::apply_script(&phases, &crds, revision),
        0o755,
    )?;
    report.sort_by(|a, b| a.key.cmp(&b.key));
    let mut lines = String::new();
    for r in &report {
        lines.push_str(&serde_json::to_string(r).unwrap_or_default());
        lines.push('\n');
    }
    sink.extra(Path::new(REPORT), &lines, 0o644)?;
    s.phases = phases.iter().map(|p| p.dir().to_string()).collect();
    Ok(s)
}

/// The per-object report of a `--for-apply` dump.
pub const REPORT: &str = "etcd-rescue-report.jsonl";
