//! Batch verification of backup stores: find every etcd snapshot, db and
//! data dir under the given paths (plain, gzip, zstd, zip or tar, read in
//! memory as stored), check each fully in parallel, remember results in a
//! catalog keyed by content fingerprint, and apply cron-style policies.
//!
//! Results come back in input order whatever the thread timing.

pub mod catalog;
pub mod gardener;
pub mod input;
pub mod metrics;
pub mod policy;
pub mod series;
pub mod sums;

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::judge::{self, Judgment};
use crate::mvcc::{Trailer, trailer};
use crate::report::Verdict;

use catalog::{Catalog, CatalogEntry, StatKey};
use input::Unit;

/// The verification of one backup (a file, an archive member or a data dir).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRecord {
    /// What to call it: the path, `archive!member` for archive members.
    pub file: String,
    /// The path on disk of the file or data dir it came from.
    pub path: String,
    /// The archive member, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// How it is stored: `plain`, or containers outside in (`zip`, `gzip+tar`...).
    pub container: String,
    /// What it is, as the judgment says: `snapshot` (with a sha256
    /// trailer), `db` (a raw bbolt file), `snap-db`, `raft-snap`,
    /// `wal-segment`, `wal-dir`, `data-dir`, `v2-data-dir` or `other`.
    pub kind: String,
    /// For a member dir: what etcd does when started on it (`starts`,
    /// `unsafe`, `wont-start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<String>,
    /// Bytes of the db or snapshot (decompressed).
    pub size: u64,
    /// Bytes on disk of the file (or data dir) it came from.
    #[serde(alias = "stored_size")]
    pub stored_size: u64,
    /// Head revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Live keys at the head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// etcdutl's snapshot hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<u32>,
    /// The sha256 trailer: `valid`, `mismatch` or `absent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailer: Option<String>,
    /// When it was taken (Unix seconds), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken: Option<i64>,
    /// Where `taken` comes from: `name` (a timestamp in the file name) or `mtime`.
    #[serde(alias = "taken_from")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_from: Option<String>,
    /// The backup series (directory plus name pattern).
    pub series: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Errors found.
    pub errors: usize,
    /// Warnings found.
    pub warnings: usize,
    /// The first problem (or why it was skipped or unreadable).
    #[serde(alias = "first_problem")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<String>,
    /// The content's fingerprint: the SHA-256 of a plain bbolt file (read
    /// whole by its check anyway); for anything else `chunks:` and a digest
    /// of its chunk sums ([`sums`]), so nothing is hashed twice.
    pub fingerprint: String,
    /// When it was verified (Unix seconds).
    #[serde(alias = "verified_at")]
    pub verified_at: i64,
    /// Whether this result came from the catalog instead of a fresh check.
    #[serde(alias = "from_catalog")]
    #[serde(default)]
    pub from_catalog: bool,
    /// Why the catalog's result was not used although it had one (changed,
    /// changed in place, or due for a fresh check).
    #[serde(alias = "recheck_reason")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_reason: Option<String>,
    /// Policy failures (filled in by [`policy::apply`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<String>,
}

impl VerifyRecord {
    /// Whether this record makes a run fail.
    pub fn fails(&self) -> bool {
        matches!(self.verdict, Verdict::Damaged | Verdict::Unreadable) || !self.policy.is_empty()
    }
}

/// Options of a run.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Largest size one compressed file or archive may unpack to.
    pub max_decompressed: u64,
    /// Verify again even what the catalog knows.
    pub recheck: bool,
    /// Verify again what the catalog verified longer ago than this (seconds).
    pub recheck_after: i64,
    /// Check each file on one thread (parallelism comes from checking
    /// several files at once); set when there is more than one unit.
    pub single_thread: bool,
}

/// The outcome for one unit.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The unit.
    pub unit: Unit,
    /// What to store in the catalog (fresh verifications).
    pub entry: Option<CatalogEntry>,
    /// Its records (one per backup found).
    pub records: Vec<VerifyRecord>,
    /// Whether it was verified now (not taken from the catalog).
    pub fresh: bool,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn stat_key(md: &std::fs::Metadata) -> StatKey {
    use std::os::unix::fs::MetadataExt;
    StatKey {
        size: md.len(),
        mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
        ino: md.ino(),
        dev: md.dev(),
        listing: None,
        etag: None,
    }
}

/// The regular files of a unit, as (path relative to the unit, path): a
/// file unit is its one file; a data dir, every file under it in path order
/// (symlinks not followed, 8 levels at most).
pub fn unit_files(unit: &Unit) -> std::io::Result<Vec<(String, std::path::PathBuf)>> {
    match unit {
        Unit::File(p) => Ok(vec![(String::new(), p.clone())]),
        // Read only once downloaded.
        Unit::Remote(_) => Ok(Vec::new()),
        Unit::DataDir(p) => {
            let mut files = Vec::new();
            list_files(p, p, 0, &mut files)?;
            files.sort();
            Ok(files)
        }
    }
}

/// The stat key of a unit; for a data dir with a digest of every file's
/// path, size and modification time.
pub fn unit_stat(unit: &Unit) -> std::io::Result<StatKey> {
    stat_of(unit, &unit_files(unit)?)
}

/// The stat key of a unit whose files ([`unit_files`]) are known.
fn stat_of(unit: &Unit, files: &[(String, std::path::PathBuf)]) -> std::io::Result<StatKey> {
    use std::os::unix::fs::MetadataExt;
    if let Unit::Remote(r) = unit {
        return Ok(remote_stat(&r.object));
    }
    let mut k = stat_key(&std::fs::metadata(unit.path())?);
    if let Unit::DataDir(_) = unit {
        let mut listing = String::new();
        for (rel, p) in files {
            let md = std::fs::symlink_metadata(p)?;
            listing.push_str(&format!(
                "{rel}\t{}\t{}.{}\n",
                md.len(),
                md.mtime(),
                md.mtime_nsec()
            ));
        }
        k.listing = Some(trailer::hex(&trailer::sha256(listing.as_bytes())));
    }
    Ok(k)
}

/// What identifies an object without reading it: its size, time, ETag and
/// version (an object rewritten gets a new ETag, and a new version in a
/// versioned bucket).
fn remote_stat(o: &crate::remote::StoreObject) -> StatKey {
    StatKey {
        size: o.size,
        mtime_ns: i128::from(o.modified) * 1_000_000_000,
        ino: 0,
        dev: 0,
        listing: None,
        etag: Some(format!(
            "{}|{}",
            o.etag.as_deref().unwrap_or(""),
            o.version.as_deref().unwrap_or("")
        )),
    }
}

fn list_files(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, std::path::PathBuf)>,
) -> std::io::Result<()> {
    if depth > 8 {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let md = std::fs::symlink_metadata(&p)?;
        if md.is_dir() {
            list_files(root, &p, depth + 1, out)?;
        } else if md.is_file() {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            out.push((rel, p));
        }
    }
    Ok(())
}

/// What a record needs to know about where it came from.
struct Origin<'p> {
    path: &'p Path,
    stored_size: u64,
    fingerprint: String,
    taken: Option<i64>,
    taken_from: Option<String>,
    series: String,
    verified_at: i64,
}

impl Origin<'_> {
    /// The record of one judgment.
    fn record(&self, j: &Judgment) -> VerifyRecord {
        let f = &j.facts;
        let member = j.path.split_once('!').map(|(_, m)| m.to_string());
        VerifyRecord {
            file: j.path.clone(),
            path: self.path.display().to_string(),
            member,
            container: if j.containers.is_empty() {
                "plain".into()
            } else {
                j.containers.join("+")
            },
            kind: serde_name(&j.kind),
            etcd: j.etcd.as_ref().map(serde_name),
            size: f.size,
            stored_size: self.stored_size,
            revision: f.revision,
            keys: f.live_keys,
            hash: f.hash,
            trailer: f.trailer.as_ref().map(|t| {
                match t {
                    Trailer::Absent => "absent",
                    Trailer::Valid { .. } => "valid",
                    Trailer::Mismatch { .. } => "mismatch",
                    Trailer::Unverified { .. } => "unverified",
                }
                .into()
            }),
            taken: self.taken,
            taken_from: self.taken_from.clone(),
            series: self.series.clone(),
            verdict: j.verdict,
            errors: j.errors,
            warnings: j.warnings,
            first_problem: j.first_problem(),
            fingerprint: self.fingerprint.clone(),
            verified_at: self.verified_at,
            from_catalog: false,
            recheck_reason: None,
            policy: Vec::new(),
        }
    }
}

/// A value's name as it serializes (a unit enum variant).
fn serde_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The message of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// The judgments of a path, with a panic anywhere inside turned into an
/// unreadable verdict: one bad file never ends a nightly run.
fn judge_guarded(path: &Path, name: &str, opts: &judge::JudgeOptions) -> Vec<Judgment> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    catch_unwind(AssertUnwindSafe(|| judge::judge(path, opts))).unwrap_or_else(|p| {
        let msg = panic_message(&*p);
        let kind = judge::kind::name_hint(name).unwrap_or(judge::Kind::Other);
        vec![Judgment::unreadable(
            name.to_string(),
            kind,
            format!("etcd-rescue failed while reading it (a bug: please report it): {msg}"),
        )]
    })
}

/// The gardener name of a delta snapshot file.
fn gardener_delta(path: &Path) -> Option<gardener::Name> {
    let n = gardener::parse(&path.file_name()?.to_string_lossy())?;
    n.delta.then_some(n)
}

/// A delta snapshot's check as a judgment (a delta is not an etcd file:
/// the judgment has no words for it, so its verdict is made here).
fn delta_judgment(name: &str, n: &gardener::Name, d: &gardener::Delta) -> Judgment {
    let why = d.problem.clone().unwrap_or_default();
    let mut j = Judgment::unreadable(name.to_string(), judge::Kind::Other, why);
    match (&d.problem, d.unreadable) {
        (None, _) => {
            j.verdict = Verdict::Ok;
            j.error = None;
            j.headline = format!(
                "gardener delta snapshot: {} events, revisions {}..{}",
                d.events, n.start, n.last
            );
        }
        (Some(_), false) => {
            j.verdict = Verdict::Damaged;
            j.errors = 1;
        }
        (Some(_), true) => {}
    }
    j.facts.revision = d.revisions.map(|(_, hi)| hi);
    j
}

/// The judgments of a unit's file or dir at `local` (a delta snapshot's
/// check for gardener's), named as the unit is (a spill file by its URL).
fn judge_unit(
    local: &Path,
    name: &str,
    delta: Option<&gardener::Name>,
    spill: Option<&crate::remote::Spill>,
    opts: &VerifyOptions,
) -> Vec<Judgment> {
    let jopts = judge::JudgeOptions {
        single_thread: opts.single_thread,
        max_unpacked: opts.max_decompressed,
        fingerprint: true,
        ..judge::JudgeOptions::full()
    };
    let mut judgments = match delta {
        Some(n) => vec![delta_judgment(
            name,
            n,
            &gardener::verify_delta(local, n, opts.max_decompressed),
        )],
        None => judge_guarded(local, name, &jopts),
    };
    if let Some(s) = spill {
        for j in &mut judgments {
            j.path = s.rename(&j.path);
            j.headline = s.rename(&j.headline);
            j.error = j.error.as_deref().map(|e| s.rename(e));
            for f in &mut j.findings {
                f.message = s.rename(&f.message);
            }
        }
    }
    judgments
}

/// Verifies one unit from scratch: its records, and the catalog entry that
/// remembers them.
pub fn verify_unit(
    unit: &Unit,
    opts: &VerifyOptions,
    verified_at: i64,
) -> (Option<CatalogEntry>, Vec<VerifyRecord>) {
    let path = unit.path();
    let name = path.display().to_string();
    let (series, name_time) = series::series_of(path);
    let mtime = match unit {
        Unit::Remote(r) => Some(r.object.modified),
        _ => std::fs::metadata(path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64),
    };
    let (taken, taken_from) = match (name_time, mtime) {
        (Some(t), _) => (Some(t), Some("name".to_string())),
        (None, Some(t)) => (Some(t), Some("mtime".to_string())),
        _ => (None, None),
    };
    let mut origin = Origin {
        path,
        stored_size: 0,
        fingerprint: String::new(),
        taken,
        taken_from,
        series,
        verified_at,
    };
    let unreadable = |origin: &Origin, e: std::io::Error| {
        let kind = judge::kind::name_hint(&name).unwrap_or(judge::Kind::Other);
        (
            None,
            vec![origin.record(&Judgment::unreadable(name.clone(), kind, e.to_string()))],
        )
    };
    // Identity first: a file that changes while it is read is judged
    // again next time, never remembered under the wrong sums.
    let (stat, mut files) = match listed(unit) {
        Ok(x) => x,
        Err(e) => return unreadable(&origin, e),
    };
    // An object is read from a spill file, pinned to the ETag listed.
    let spill = match unit {
        Unit::Remote(r) => match r.store.download(&r.object) {
            Ok(s) => Some(s),
            Err(e) => return unreadable(&origin, std::io::Error::other(e.to_string())),
        },
        _ => None,
    };
    let local = spill.as_ref().map_or(path, |s| s.path.as_path());
    if let Some(s) = &spill {
        files = vec![(String::new(), s.path.clone())];
    }
    let delta = gardener_delta(path);
    let judgments = judge_unit(local, &name, delta.as_ref(), spill.as_ref(), opts);
    let sums = match sums::compute(&files) {
        Ok(s) => s,
        Err(e) => return unreadable(&origin, e),
    };
    origin.stored_size = match unit {
        Unit::File(_) | Unit::Remote(_) => stat.size,
        Unit::DataDir(_) => judgments.first().map_or(0, |j| j.facts.size),
    };
    // A plain bbolt file was hashed in the same pass as its check.
    origin.fingerprint = match judgments.first().and_then(|j| j.facts.sha256.clone()) {
        Some(d) if judgments.len() == 1 && judgments[0].containers.is_empty() => d,
        _ => format!("chunks:{}", sums::digest(&sums)),
    };
    let mut records: Vec<VerifyRecord> = judgments.iter().map(|j| origin.record(j)).collect();
    if delta.is_some() {
        for r in &mut records {
            r.kind = "delta-snapshot".into();
        }
    }
    // An object's read was pinned to its ETag: what was read is what was listed.
    let unchanged = spill.is_some() || unit_stat(unit).is_ok_and(|s| s == stat);
    let entry = unchanged.then(|| CatalogEntry {
        stat,
        sums,
        name,
        verified_at,
        records: records.clone(),
    });
    (entry, records)
}

/// A unit's stat key and files, read once.
type Listed = std::io::Result<(StatKey, Vec<(String, std::path::PathBuf)>)>;

/// Lists a unit's files and makes its stat key of them.
fn listed(unit: &Unit) -> Listed {
    let files = unit_files(unit)?;
    Ok((stat_of(unit, &files)?, files))
}

/// Why a catalog entry does not stand for the unit as it is now; `None`
/// when it does.
fn stale(
    unit: &Unit,
    now_listed: &Listed,
    e: &CatalogEntry,
    opts: &VerifyOptions,
    now: i64,
) -> Option<String> {
    let since = series::rfc3339(e.verified_at);
    let files = match now_listed {
        Ok((s, _)) if *s != e.stat => return Some(format!("changed since it was verified at {since}")),
        Err(err) => return Some(format!("cannot be read now: {err}")),
        Ok((_, files)) => files,
    };
    if now - e.verified_at > opts.recheck_after {
        return Some(format!(
            "last verified at {since}, longer ago than --recheck-after allows"
        ));
    }
    // An object with the same size, ETag and version is the same object:
    // sampling its chunks would mean downloading them.
    if let Unit::Remote(_) = unit {
        return None;
    }
    let day = (now.max(0) / 86_400) as u64;
    match sums::compare(files, &e.sums, day) {
        Ok(None) => None,
        Ok(Some(c)) => Some(format!(
            "changed in place since it was verified at {since} (same size, time and inode): the {} bytes at offset {} of {} differ",
            e.sums
                .files
                .iter()
                .find(|f| f.rel == c.rel)
                .map_or(0, |f| f.chunk),
            c.offset,
            if c.rel.is_empty() {
                unit.path().display().to_string()
            } else {
                c.rel.clone()
            },
        )),
        Err(err) => Some(format!("cannot be read now: {err}")),
    }
}

/// The records of a catalog entry, named as the unit is named now.
fn cached_records(unit: &Unit, e: CatalogEntry) -> Vec<VerifyRecord> {
    let name = unit.path().display().to_string();
    let mut records = e.records;
    for r in &mut records {
        if let Some(rest) = r.file.strip_prefix(&e.name) {
            r.file = format!("{name}{rest}");
        }
        r.path = name.clone();
        r.from_catalog = true;
        r.recheck_reason = None;
        r.policy.clear();
    }
    records
}

/// Verifies every unit in parallel (results in input order), taking what
/// the catalog already knows unless `opts.recheck`: a catalog result is
/// used only while the file's stat key is unchanged, it was verified less
/// than `opts.recheck_after` ago, and today's sample of its chunks reads as
/// it did then. `progress` is called with the bytes of each unit as it
/// finishes; `catalog_errors` collects what went wrong reading the catalog.
pub fn run(
    units: &[Unit],
    opts: &VerifyOptions,
    catalog: Option<&Catalog>,
    progress: &(dyn Fn(u64) + Sync),
    catalog_errors: &std::sync::Mutex<Vec<String>>,
) -> Vec<Outcome> {
    let verified_at = now();
    units
        .par_iter()
        .map(|unit| {
            let now_listed = listed(unit);
            let size = now_listed.as_ref().map_or(0, |(k, _)| k.size);
            let entry = match (catalog, opts.recheck) {
                (Some(c), false) => c.lookup(&abs(unit.path())).unwrap_or_else(|e| {
                    if let Ok(mut v) = catalog_errors.lock() {
                        v.push(e.to_string());
                    }
                    None
                }),
                _ => None,
            };
            let (entry, reason) = match entry {
                Some(e) => match stale(unit, &now_listed, &e, opts, verified_at) {
                    None => (Some(e), None),
                    Some(why) => (None, Some(why)),
                },
                None => (None, None),
            };
            let outcome = match entry {
                Some(e) => Outcome {
                    unit: unit.clone(),
                    entry: None,
                    records: cached_records(unit, e),
                    fresh: false,
                },
                None => {
                    let (entry, mut records) = verify_unit(unit, opts, verified_at);
                    for r in &mut records {
                        r.recheck_reason = reason.clone();
                    }
                    Outcome {
                        unit: unit.clone(),
                        entry,
                        records,
                        fresh: true,
                    }
                }
            };
            progress(size);
            outcome
        })
        .collect()
}

/// The absolute form of a path, as the catalog keys it.
pub fn abs(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Stores the fresh outcomes in the catalog.
pub fn remember(catalog: &Catalog, outcomes: &[Outcome]) -> Result<(), catalog::CatalogError> {
    let items: Vec<(String, CatalogEntry)> = outcomes
        .iter()
        .filter(|o| o.fresh && !o.records.is_empty())
        .filter_map(|o| o.entry.clone().map(|e| (abs(o.unit.path()), e)))
        .collect();
    catalog.store(&items)
}
