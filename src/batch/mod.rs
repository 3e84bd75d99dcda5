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

use crate::judge::{self, Judgment};
use crate::mvcc::{Trailer, trailer};
use crate::report::Verdict;

use catalog::{Catalog, StatKey};
use input::Unit;

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
    /// Largest size one compressed file or archive may unpack to.
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
    /// The record of one judgment.
    fn record(&self, j: &Judgment) -> Record {
        let f = &j.facts;
        let member = j.path.split_once('!').map(|(_, m)| m.to_string());
        Record {
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
                vec![origin.record(&Judgment::unreadable(name, judge::Kind::Other, e.to_string()))],
            );
        }
    };
    let jopts = judge::Options {
        single_thread: opts.single_thread,
        max_unpacked: opts.max_decompressed,
        fingerprint: true,
        ..judge::Options::full()
    };
    let judgments = judge::judge(path, &jopts);
    match unit {
        Unit::File(p) => {
            origin.stored_size = std::fs::metadata(p).map_or(0, |m| m.len());
            // A plain bbolt file is hashed in the same pass as its check;
            // anything else is hashed here.
            origin.fingerprint = match judgments.first().and_then(|j| j.facts.sha256.clone()) {
                Some(d) if judgments.len() == 1 && judgments[0].containers.is_empty() => d,
                _ => crate::source::MappedFile::open(p)
                    .map(|f| trailer::hex(&trailer::sha256(f.bytes())))
                    .unwrap_or_default(),
            };
        }
        Unit::DataDir(_) => {
            origin.fingerprint = listing_digest.unwrap_or_default();
            origin.stored_size = judgments.first().map_or(0, |j| j.facts.size);
        }
    }
    (stat, judgments.iter().map(|j| origin.record(j)).collect())
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
