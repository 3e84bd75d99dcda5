//! Batch verification of backup stores: find every etcd snapshot, db and
//! data dir under the given paths (plain, gzip, zstd, zip or tar, read in
//! memory as stored), check each fully in parallel, remember results in a
//! catalog keyed by content fingerprint, and apply cron-style policies.
//!
//! Results come back in input order whatever the thread timing.

pub mod catalog;
pub mod input;
pub mod policy;
pub mod series;

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::mvcc::{DbReport, ScanOptions, Trailer, scan, trailer};
use crate::report::Verdict;
use crate::source::MappedFile;

use catalog::{Catalog, StatKey};
use input::{MAX_CONTAINER_DEPTH, Sniff, Unit, data_dir_db, sniff};

/// The verification of one backup (a file, an archive member or a data dir).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What to call it: the path, `archive!member` for archive members.
    pub file: String,
    /// The path on disk of the file or data dir it came from.
    pub path: String,
    /// The archive member, when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// How it is stored: `plain`, or containers outside in (`zip`, `gzip+tar`...).
    pub container: String,
    /// `snapshot` (with a sha256 trailer), `db` (a raw bbolt file), `data-dir`, or `other`.
    pub kind: String,
    /// Bytes of the db or snapshot (decompressed).
    pub size: u64,
    /// Bytes on disk of the file (or data dir) it came from.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<String>,
    /// SHA-256 of the file as stored (for data dirs: of the list of their
    /// files with sizes and times).
    pub fingerprint: String,
    /// When it was verified (Unix seconds).
    pub verified_at: i64,
    /// Whether this result came from the catalog instead of a fresh check.
    #[serde(default)]
    pub from_catalog: bool,
    /// Policy failures (filled in by [`policy::apply`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<String>,
}

impl Record {
    /// Whether this record makes a run fail.
    pub fn fails(&self) -> bool {
        matches!(self.verdict, Verdict::Damaged | Verdict::Unreadable) || !self.policy.is_empty()
    }
}

/// Options of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest decompressed size accepted for one compressed file or member.
    pub max_decompressed: u64,
    /// Verify again even what the catalog knows.
    pub recheck: bool,
    /// Check each file on one thread (parallelism comes from checking
    /// several files at once); set when there is more than one unit.
    pub single_thread: bool,
}

/// The outcome for one unit.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The unit.
    pub unit: Unit,
    /// Its stat key (for the catalog).
    pub stat: Option<StatKey>,
    /// Its records (one per backup found).
    pub records: Vec<Record>,
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
    }
}

/// The stat key of a unit; for a data dir, a digest of every file's path,
/// size and modification time.
pub fn unit_stat(unit: &Unit) -> std::io::Result<(StatKey, Option<String>)> {
    match unit {
        Unit::File(p) => Ok((stat_key(&std::fs::metadata(p)?), None)),
        Unit::DataDir(p) => {
            let mut files = Vec::new();
            list_files(p, p, 0, &mut files)?;
            files.sort();
            let listing = files.join("\n");
            let digest = trailer::hex(&trailer::sha256(listing.as_bytes()));
            let mut k = stat_key(&std::fs::metadata(p)?);
            k.listing = Some(digest.clone());
            Ok((k, Some(digest)))
        }
    }
}

fn list_files(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if depth > 8 {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let md = std::fs::symlink_metadata(e.path())?;
        if md.is_dir() {
            list_files(root, &e.path(), depth + 1, out)?;
        } else if md.is_file() {
            let rel = e
                .path()
                .strip_prefix(root)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            out.push(format!("{rel}\t{}\t{}.{}", md.len(), md.mtime(), md.mtime_nsec()));
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
    fn record(&self, file: String, member: Option<String>, container: &[&str], kind: &str) -> Record {
        Record {
            file,
            path: self.path.display().to_string(),
            member,
            container: if container.is_empty() {
                "plain".into()
            } else {
                container.join("+")
            },
            kind: kind.into(),
            size: 0,
            stored_size: self.stored_size,
            revision: None,
            keys: None,
            hash: None,
            trailer: None,
            taken: self.taken,
            taken_from: self.taken_from.clone(),
            series: self.series.clone(),
            verdict: Verdict::Skipped,
            errors: 0,
            warnings: 0,
            first_problem: None,
            fingerprint: self.fingerprint.clone(),
            verified_at: self.verified_at,
            from_catalog: false,
            policy: Vec::new(),
        }
    }

    fn problem(
        &self,
        file: String,
        member: Option<String>,
        container: &[&str],
        verdict: Verdict,
        why: String,
    ) -> Record {
        let mut r = self.record(file, member, container, "other");
        r.verdict = verdict;
        r.first_problem = Some(why);
        r
    }

    /// A record from a full check of a db image.
    fn checked(
        &self,
        file: String,
        member: Option<String>,
        container: &[&str],
        kind: Option<&str>,
        rep: &DbReport,
    ) -> Record {
        let kind = kind.unwrap_or(if trailer::has_trailer(rep.file_size) {
            "snapshot"
        } else {
            "db"
        });
        let mut r = self.record(file, member, container, kind);
        let opened = rep.meta_choice.is_some();
        r.size = rep.file_size;
        r.revision = opened.then_some(rep.revision);
        r.keys = rep.keys.live_keys;
        r.hash = (opened && !rep.incomplete).then_some(rep.hash);
        r.trailer = Some(
            match &rep.trailer {
                Trailer::Absent => "absent",
                Trailer::Valid { .. } => "valid",
                Trailer::Mismatch { .. } => "mismatch",
                Trailer::Unverified { .. } => "unverified",
            }
            .into(),
        );
        r.verdict = Verdict::of(&rep.findings);
        r.errors = rep.findings.count(crate::report::Severity::Error);
        r.warnings = rep.findings.count(crate::report::Severity::Warning);
        r.first_problem = rep
            .findings
            .items()
            .iter()
            .find(|f| f.counts())
            .map(|f| format!("{}: {}", f.code, f.message));
        r
    }
}

/// Whether a file name suggests an etcd backup (so that an empty one is a
/// failed backup, not an unrelated empty file).
fn looks_like_backup(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["snap", "etcd", "backup", ".db"].iter().any(|w| n.contains(w))
}

fn full_check(bytes: &[u8], digest: bool, opts: &Options) -> DbReport {
    scan(
        bytes,
        ScanOptions {
            deep: true,
            verify_trailer: true,
            file_digest: digest,
            single_thread: opts.single_thread,
            skip_hash: false,
        },
    )
}

/// Verifies the contents of one stored file: a bbolt image, or a container
/// to open. Appends a record per backup found.
fn examine(
    o: &Origin<'_>,
    name: &str,
    member: Option<&str>,
    bytes: &[u8],
    containers: &mut Vec<&'static str>,
    opts: &Options,
    out: &mut Vec<Record>,
) {
    let file = |m: Option<&str>| match m {
        Some(m) => format!("{name}!{m}"),
        None => name.to_string(),
    };
    let kind = sniff(bytes);
    let in_archive = member.is_some() || !containers.is_empty();
    match kind {
        Sniff::Bolt => {
            let rep = full_check(bytes, false, opts);
            let k = member
                .filter(|m| m.ends_with("member/snap/db") || m.ends_with("snap/db"))
                .map(|_| "db");
            out.push(o.checked(file(member), member.map(str::to_string), containers, k, &rep));
        }
        Sniff::Gzip | Sniff::Zstd | Sniff::Zip | Sniff::Tar if containers.len() >= MAX_CONTAINER_DEPTH => {
            out.push(o.problem(
                file(member),
                member.map(str::to_string),
                containers,
                Verdict::Unreadable,
                format!("containers nested more than {MAX_CONTAINER_DEPTH} deep"),
            ));
        }
        Sniff::Gzip | Sniff::Zstd => {
            containers.push(if kind == Sniff::Gzip { "gzip" } else { "zstd" });
            match input::decompress(kind, bytes, opts.max_decompressed) {
                Ok(inner) => examine(o, name, member, &inner, containers, opts, out),
                Err(e) => out.push(o.problem(
                    file(member),
                    member.map(str::to_string),
                    containers,
                    Verdict::Unreadable,
                    e,
                )),
            }
            containers.pop();
        }
        Sniff::Zip | Sniff::Tar => {
            containers.push(if kind == Sniff::Zip { "zip" } else { "tar" });
            let before = out.len();
            let mut ignored = 0;
            let mut each = |m: &str, data: Result<Vec<u8>, String>| {
                let inner_name = match member {
                    Some(outer) => format!("{outer}!{m}"),
                    None => m.to_string(),
                };
                match data {
                    Err(e) => out.push(o.problem(
                        file(Some(&inner_name)),
                        Some(inner_name.clone()),
                        containers,
                        Verdict::Unreadable,
                        e,
                    )),
                    Ok(d) => match sniff(&d) {
                        Sniff::Bolt | Sniff::Gzip | Sniff::Zstd | Sniff::Zip | Sniff::Tar => {
                            let mut c = containers.clone();
                            examine(o, name, Some(&inner_name), &d, &mut c, opts, out);
                        }
                        _ => ignored += 1,
                    },
                }
            };
            let listed = if kind == Sniff::Zip {
                input::zip_members(bytes, opts.max_decompressed, &mut each)
            } else {
                input::tar_members(bytes, opts.max_decompressed, &mut each)
            };
            match listed {
                Err(e) => out.push(o.problem(
                    file(member),
                    member.map(str::to_string),
                    containers,
                    Verdict::Unreadable,
                    e,
                )),
                Ok(()) if out.len() == before => out.push(o.problem(
                    file(member),
                    member.map(str::to_string),
                    containers,
                    Verdict::Skipped,
                    format!("no etcd db or snapshot inside ({ignored} other files)"),
                )),
                Ok(()) => {}
            }
            containers.pop();
        }
        Sniff::Wal if !in_archive => out.push(o.problem(
            file(member),
            member.map(str::to_string),
            containers,
            Verdict::Skipped,
            "an etcd WAL segment: verify the data dir it belongs to".into(),
        )),
        _ if bytes.is_empty() && looks_like_backup(&file(member)) => out.push(o.problem(
            file(member),
            member.map(str::to_string),
            containers,
            Verdict::Damaged,
            "empty (0 bytes): a backup that was never written, or was cut off".into(),
        )),
        _ => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            let why = if bytes.is_empty() {
                "empty file".to_string()
            } else {
                format!("not etcd data (starts with {})", head.join(" "))
            };
            out.push(o.problem(
                file(member),
                member.map(str::to_string),
                containers,
                Verdict::Skipped,
                why,
            ));
        }
    }
}

/// Verifies one unit from scratch.
pub fn verify_unit(unit: &Unit, opts: &Options, verified_at: i64) -> (Option<StatKey>, Vec<Record>) {
    let path = unit.path();
    let name = path.display().to_string();
    let (series, name_time) = series::series_of(path);
    let stat = unit_stat(unit);
    let mtime = std::fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64);
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
    let (stat, listing_digest) = match stat {
        Ok((k, d)) => (Some(k), d),
        Err(e) => {
            return (
                None,
                vec![origin.problem(name, None, &[], Verdict::Unreadable, e.to_string())],
            );
        }
    };
    let mut out = Vec::new();
    match unit {
        Unit::File(p) => {
            let f = match MappedFile::open(p) {
                Ok(f) => f,
                Err(e) => {
                    return (
                        stat,
                        vec![origin.problem(name, None, &[], Verdict::Unreadable, e.to_string())],
                    );
                }
            };
            let bytes = f.bytes();
            origin.stored_size = bytes.len() as u64;
            if sniff(bytes) == Sniff::Bolt {
                // One pass hashes the file for the trailer and the fingerprint.
                let rep = full_check(bytes, true, opts);
                origin.fingerprint = rep.file_sha256.clone().unwrap_or_default();
                out.push(origin.checked(name, None, &[], None, &rep));
            } else {
                origin.fingerprint = trailer::hex(&trailer::sha256(bytes));
                examine(&origin, &name, None, bytes, &mut Vec::new(), opts, &mut out);
            }
        }
        Unit::DataDir(p) => {
            origin.fingerprint = listing_digest.unwrap_or_default();
            let Some(db) = data_dir_db(p) else {
                return (
                    stat,
                    vec![origin.problem(name, None, &[], Verdict::Unreadable, "no member/snap/db".into())],
                );
            };
            match MappedFile::open(&db) {
                Ok(f) => {
                    origin.stored_size = f.bytes().len() as u64;
                    let rep = full_check(f.bytes(), false, opts);
                    out.push(origin.checked(name, None, &[], Some("data-dir"), &rep));
                }
                Err(e) => out.push(origin.problem(name, None, &[], Verdict::Unreadable, e.to_string())),
            }
        }
    }
    (stat, out)
}

/// Verifies every unit in parallel (results in input order), taking what the
/// catalog already knows unless `opts.recheck`. `progress` is called with
/// the bytes of each unit as it finishes.
pub fn run(
    units: &[Unit],
    opts: &Options,
    catalog: Option<&Catalog>,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Outcome> {
    let verified_at = now();
    units
        .par_iter()
        .map(|unit| {
            let stat = unit_stat(unit).ok();
            // The catalog answers when the file's stat key (size, time, inode)
            // is what it was when its content was verified.
            let cached = match (catalog, &stat, opts.recheck) {
                (Some(c), Some((k, _)), false) => c.lookup(&abs(unit.path()), k).ok().flatten(),
                _ => None,
            };
            let size = stat.as_ref().map_or(0, |(k, _)| k.size);
            let outcome = match cached {
                Some(mut records) => {
                    for r in &mut records {
                        r.from_catalog = true;
                        r.policy.clear();
                    }
                    Outcome {
                        unit: unit.clone(),
                        stat: stat.map(|s| s.0),
                        records,
                        fresh: false,
                    }
                }
                None => {
                    let (stat, records) = verify_unit(unit, opts, verified_at);
                    Outcome {
                        unit: unit.clone(),
                        stat,
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
    let items: Vec<(String, StatKey, Vec<Record>)> = outcomes
        .iter()
        .filter(|o| o.fresh && !o.records.is_empty())
        .filter_map(|o| o.stat.clone().map(|s| (abs(o.unit.path()), s, o.records.clone())))
        .collect();
    catalog.store(&items)
}
