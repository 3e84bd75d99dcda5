//! One pass over an etcd backend: bbolt structure, the snapshot hash, counts,
//! and (in deep mode) every etcd schema rule.
//!
//! `status` and `check` are both renderings of the [`DbReport`] this builds:
//! status runs it shallow (no KeyValue decoding, no sha256 unless asked),
//! check runs it deep and verifies the trailer on a second thread while the
//! tree is walked.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashSet};

use crate::bolt::check::{PageCounts, StructureReport};
use crate::bolt::walk::{Visitor, WalkStats};
use crate::bolt::{self, Db, LeafElem, MetaChoice, Node, show_key};
use crate::keyhash::KeyMap;
use crate::report::{Finding, Findings, Severity};

use super::kv::KeyValueRef;
use super::revision::RevKey;
use super::schema::{
    self, Alarm, AuthInfo, ClusterInfo, Lease, MetaInfo, decode_alarm, decode_lease, decode_member,
    decode_removed_member, decode_role, decode_user,
};
use super::trailer::{self, Trailer};
use crate::membership::Member;

/// What to do in a scan.
#[derive(Clone, Copy, Debug, Default)]
pub struct DbScanOptions {
    /// Decode and check every KeyValue and the history of every key.
    pub deep: bool,
    /// Verify the sha256 trailer (on a second thread).
    pub verify_trailer: bool,
    /// Also compute the SHA-256 of the whole file (on the same second thread;
    /// a content fingerprint for catalogs).
    pub file_digest: bool,
    /// Run on one thread: no CRC or SHA-256 threads (for callers that
    /// already keep every core busy with other files).
    pub single_thread: bool,
    /// Skip the `etcdutl snapshot status` hash (the report's `hash` is then
    /// 0): for callers that only need the structure and the verdict.
    pub skip_hash: bool,
}

/// Key counts per top-level bucket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BucketCount {
    /// Bucket name (lossy UTF-8).
    pub name: String,
    /// Number of key/value pairs.
    pub keys: u64,
}

/// Counts over the `key` bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStats {
    /// Stored revisions (entries of the `key` bucket).
    pub revisions: u64,
    /// Of which tombstones.
    pub tombstones: u64,
    /// Distinct user keys (deep scans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_keys: Option<u64>,
    /// User keys alive at the head revision (deep scans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_keys: Option<u64>,
    /// Smallest main revision stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_revision: Option<i64>,
}

/// Everything one scan learns about a db file.
#[derive(Clone, Debug)]
pub struct DbReport {
    /// File size in bytes.
    pub file_size: u64,
    /// The meta pages (None when neither is valid).
    pub meta_choice: Option<MetaChoice>,
    /// Page accounting.
    pub pages: PageCounts,
    /// Walk counts.
    pub walk: WalkStats,
    /// etcd's snapshot hash (CRC-32C over all buckets), as `snapshot status` reports it.
    pub hash: u32,
    /// Main revision of the last `key` entry.
    pub revision: i64,
    /// Key/value pairs across all buckets (etcdutl 3.4/3.5 `totalKey`).
    pub total_key: u64,
    /// `pgid * pageSize`.
    pub total_size: u64,
    /// Pairs per bucket.
    pub buckets: Vec<BucketCount>,
    /// `key` bucket counts.
    pub keys: KeyStats,
    /// The `meta` bucket.
    pub meta: MetaInfo,
    /// The `members` bucket.
    pub members: Vec<Member>,
    /// The `members_removed` bucket (ids).
    pub removed_members: Vec<u64>,
    /// The `cluster` bucket.
    pub cluster: ClusterInfo,
    /// The `lease` bucket.
    pub leases: Vec<Lease>,
    /// The `alarm` bucket.
    pub alarms: Vec<Alarm>,
    /// The auth buckets.
    pub auth: AuthInfo,
    /// The sha256 trailer.
    pub trailer: Trailer,
    /// Every finding, errors first.
    pub findings: Findings,
    /// Whether the walk ran into structural problems (counts are then partial).
    pub incomplete: bool,
    /// SHA-256 of the whole file, when asked for.
    pub file_sha256: Option<String>,
}

impl DbReport {
    /// Whether this looks like an etcd backend (has `key` and `meta` buckets).
    pub fn is_etcd(&self) -> bool {
        self.buckets.iter().any(|b| b.name == "key") && self.buckets.iter().any(|b| b.name == "meta")
    }
}

/// etcd's snapshot hash: CRC-32C over bucket names, keys and values in walk
/// order.
///
/// A leaf element's value always follows its key in the node, and bbolt packs
/// consecutive elements back to back, so the pairs of a leaf usually form one
/// contiguous run: it is hashed as one slice instead of two per pair. A pair
/// that does not continue the run starts a new one, so the result does not
/// depend on the layout. Runs are handed in batches to a second thread that
/// computes the CRC while the walk goes on.
struct Hasher<'a> {
    base: &'a [u8],
    start: usize,
    end: usize,
    batch: Vec<&'a [u8]>,
    out: Option<std::sync::mpsc::SyncSender<Vec<&'a [u8]>>>,
    /// Set when hashing on the calling thread instead of a CRC thread.
    inline: Option<u32>,
    /// Set when no hash is wanted at all.
    off: bool,
}

/// Runs per batch sent to the CRC thread (a leaf is usually one run).
const HASH_BATCH: usize = 256;

impl<'a> Hasher<'a> {
    fn new(out: std::sync::mpsc::SyncSender<Vec<&'a [u8]>>) -> Hasher<'a> {
        Hasher {
            base: &[],
            start: 0,
            end: 0,
            batch: Vec::with_capacity(HASH_BATCH),
            out: Some(out),
            inline: None,
            off: false,
        }
    }

    /// A hasher that computes the CRC on the calling thread.
    fn inline() -> Hasher<'a> {
        Hasher {
            base: &[],
            start: 0,
            end: 0,
            batch: Vec::new(),
            out: None,
            inline: Some(0),
            off: false,
        }
    }

    /// A hasher that hashes nothing.
    fn off() -> Hasher<'a> {
        Hasher {
            off: true,
            ..Hasher::inline()
        }
    }

    fn push(&mut self, b: &'a [u8]) {
        if self.off {
            return;
        }
        if let Some(crc) = &mut self.inline {
            *crc = crc32c::crc32c_append(*crc, b);
            return;
        }
        self.batch.push(b);
        if self.batch.len() == HASH_BATCH {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(HASH_BATCH));
            self.send(full);
        }
    }

    fn flush_run(&mut self) {
        if self.end > self.start {
            let run = &self.base[self.start..self.end];
            self.push(run);
        }
        self.start = 0;
        self.end = 0;
    }

    /// Hashes `b` on its own (bucket names, nested bucket keys).
    fn update(&mut self, b: &'a [u8]) {
        self.flush_run();
        self.push(b);
    }

    /// Hashes a key then its value; both lie in `node` with the value right
    /// after the key (as `Node::leaf` returns them).
    fn update_pair(&mut self, node: &'a [u8], key: &'a [u8], value: &'a [u8]) {
        let ks = (key.as_ptr() as usize).wrapping_sub(node.as_ptr() as usize);
        let ve = ks.wrapping_add(key.len()).wrapping_add(value.len());
        let contiguous = ve <= node.len() && value.as_ptr() == key.as_ptr().wrapping_add(key.len());
        if !contiguous {
            self.update(key);
            self.update(value);
            return;
        }
        if !(std::ptr::eq(self.base, node) && ks == self.end && self.end > self.start) {
            self.flush_run();
            self.base = node;
            self.start = ks;
        }
        self.end = ve;
    }

    fn send(&mut self, batch: Vec<&'a [u8]>) {
        if let Some(out) = &self.out {
            // The receiver lives until the walk ends; a send can only fail if
            // it panicked, and then the join reports it.
            let _ = out.send(batch);
        }
    }

    /// Sends what is left and closes the channel, which ends the CRC thread.
    fn finish(&mut self) {
        self.flush_run();
        let rest = std::mem::take(&mut self.batch);
        self.send(rest);
        self.out = None;
    }
}

/// The CRC thread: CRC-32C over every slice received, in order.
fn crc_worker(rx: std::sync::mpsc::Receiver<Vec<&[u8]>>) -> u32 {
    let mut crc = 0;
    for batch in rx {
        for s in batch {
            crc = crc32c::crc32c_append(crc, s);
        }
    }
    crc
}

/// Per-key history state for deep checks.
#[derive(Clone, Copy, Debug)]
struct KeyState {
    create: i64,
    version: i64,
    last_main: i64,
    lease: i64,
    deleted: bool,
    below_compact: u32,
}

/// What is wrong with one record's fields on their own (a tombstone with
/// fields, a put whose revisions or version cannot be).
fn field_problems(rk: RevKey, kv: &KeyValueRef<'_>) -> Vec<(Severity, &'static str, String)> {
    let (main, rev, shown) = (rk.rev.main, rk.rev, bolt::KeyDisplay(kv.key));
    let mut out = Vec::new();
    if rk.tombstone {
        if kv.create_revision != 0 || kv.mod_revision != 0 || kv.version != 0 || !kv.value.is_empty() {
            out.push((
                Severity::Warning,
                "tombstone-fields",
                format!("tombstone of {shown} at revision {rev} carries fields other than the key"),
            ));
        }
        return out;
    }
    if kv.mod_revision != main {
        out.push((
            Severity::Error,
            "mod-revision-mismatch",
            format!(
                "{shown}: stored under revision {rev} but its mod_revision is {}",
                kv.mod_revision
            ),
        ));
    }
    if kv.create_revision < 1 || kv.create_revision > main {
        out.push((
            Severity::Error,
            "create-revision-invalid",
            format!(
                "{shown} at revision {rev}: create_revision {} is not between 1 and the mod revision",
                kv.create_revision
            ),
        ));
    }
    if kv.version < 1 {
        out.push((
            Severity::Error,
            "version-invalid",
            format!("{shown} at revision {rev}: version {} is below 1", kv.version),
        ));
    }
    out
}

/// One step of a key's history, as etcd's compaction leaves it: above the
/// compact revision every revision is kept, so each must continue the one
/// before (a put the version after it, a create after a delete version 1,
/// no delete of a deleted key). The key's state after `rk`, and what is
/// wrong.
fn history_step(
    prev: Option<KeyState>,
    rk: RevKey,
    kv: &KeyValueRef<'_>,
    compact: i64,
) -> (KeyState, Option<(&'static str, String)>) {
    let (main, rev, shown) = (rk.rev.main, rk.rev, bolt::KeyDisplay(kv.key));
    let put = KeyState {
        create: kv.create_revision,
        version: kv.version,
        last_main: main,
        lease: kv.lease,
        deleted: false,
        below_compact: prev.map_or(0, |s| s.below_compact),
    };
    match (prev, rk.tombstone) {
        (None, true) => {
            let state = KeyState {
                create: 0,
                version: 0,
                lease: 0,
                deleted: true,
                ..put
            };
            let problem = (main > compact).then(|| {
                ("orphan-tombstone", format!(
                    "{shown}: a delete at revision {rev} with no earlier revision of the key stored (and it is above the compact revision {compact})"
                ))
            });
            (state, problem)
        }
        (Some(s), true) => {
            let problem = s.deleted.then(|| {
                (
                    "double-tombstone",
                    format!(
                        "{shown}: deleted at revision {rev} but already deleted at {}",
                        s.last_main
                    ),
                )
            });
            let state = KeyState {
                deleted: true,
                last_main: main,
                lease: 0,
                ..s
            };
            (state, problem)
        }
        (None, false) => {
            let problem = (main > compact && (kv.create_revision != main || kv.version != 1)).then(|| {
                ("history-gap", format!(
                    "{shown}: the first stored revision {rev} has version {} and create_revision {}, but no earlier revision survives and it is above the compact revision {compact}",
                    kv.version, kv.create_revision
                ))
            });
            (put, problem)
        }
        (Some(s), false) if s.deleted => {
            let problem = (kv.create_revision != main || kv.version != 1).then(|| {
                ("generation-start", format!(
                    "{shown}: re-created at revision {rev} after a delete, but has version {} and create_revision {} (expected 1 and {main})",
                    kv.version, kv.create_revision
                ))
            });
            (put, problem)
        }
        (Some(s), false) => {
            let problem = (kv.create_revision != s.create || kv.version != s.version + 1).then(|| {
                ("version-discontinuity", format!(
                    "{shown}: revision {rev} has version {} and create_revision {}, but the previous revision {} had version {} and create_revision {}",
                    kv.version, kv.create_revision, s.last_main, s.version, s.create
                ))
            });
            (
                KeyState {
                    deleted: s.deleted,
                    ..put
                },
                problem,
            )
        }
    }
}

struct Scan<'a> {
    opts: DbScanOptions,
    hash: Hasher<'a>,
    bucket: Option<&'a [u8]>,
    total_key: u64,
    buckets: Vec<BucketCount>,
    last_rev_key: Option<&'a [u8]>,
    keys: KeyStats,
    meta: MetaInfo,
    members: Vec<Member>,
    removed: Vec<u64>,
    cluster: ClusterInfo,
    leases: Vec<Lease>,
    alarms: Vec<Alarm>,
    auth: AuthInfo,
    findings: Findings,
    /// Compaction boundary for history rules (read before the walk).
    compact: i64,
    states: KeyMap<&'a [u8], KeyState>,
    /// Set once the walk could not read part of the `key` bucket: history
    /// findings after that may be consequences rather than separate damage.
    key_tree_damaged: bool,
}

impl<'a> Scan<'a> {
    fn finding(&mut self, sev: Severity, code: &'static str, node: &Node<'a>, index: usize, msg: String) {
        self.findings.push(
            Finding::new(sev, code, format!("{}, element {index}: {msg}", node.loc))
                .at_page(node.loc.pgid().0)
                .at_offset(node.elem_file_offset(index)),
        );
    }

    fn key_entry(&mut self, node: &Node<'a>, index: usize, e: &LeafElem<'a>) {
        self.last_rev_key = Some(e.key);
        self.keys.revisions += 1;
        let rk = match RevKey::parse(e.key) {
            Ok(rk) => rk,
            Err(err) => {
                self.finding(
                    Severity::Error,
                    "bad-revision-key",
                    node,
                    index,
                    format!("key bucket key {}: {err}", show_key(e.key)),
                );
                return;
            }
        };
        if rk.tombstone {
            self.keys.tombstones += 1;
        }
        if self.keys.first_revision.is_none() {
            self.keys.first_revision = Some(rk.rev.main);
        }
        if !self.opts.deep {
            return;
        }
        let kv = match KeyValueRef::decode(e.value) {
            Ok(kv) => kv,
            Err(err) => {
                self.finding(
                    Severity::Error,
                    "bad-keyvalue",
                    node,
                    index,
                    format!(
                        "the value at revision {} is not a valid mvccpb.KeyValue: {err}",
                        rk.rev
                    ),
                );
                return;
            }
        };
        self.check_kv(node, index, rk, &kv);
    }

    fn check_kv(&mut self, node: &Node<'a>, index: usize, rk: RevKey, kv: &KeyValueRef<'a>) {
        if kv.key.is_empty() {
            return self.empty_key(node, index, rk, kv);
        }
        for (sev, code, msg) in field_problems(rk, kv) {
            self.finding(sev, code, node, index, msg);
        }
        let main = rk.rev.main;
        let compact = self.compact;
        // A compaction etcd has not finished yet: it resumes it at start,
        // so revisions below it that are still stored are expected.
        let pending = self.meta.scheduled_compact_rev > self.meta.finished_compact_rev;
        // One hash lookup per revision: the deep check runs beside sha256.
        let slot = self.states.entry(kv.key);
        let prev = match &slot {
            Entry::Occupied(o) => Some(*o.get()),
            Entry::Vacant(_) => None,
        };
        let (mut next, mut problem) = history_step(prev, rk, kv, compact);
        if main <= compact {
            next.below_compact += 1;
            if next.below_compact == 2 && !pending {
                problem = problem.or(Some((
                    "uncompacted-revision",
                    format!(
                        "{}: more than one revision at or below the compact revision {compact} survives (a compaction did not finish)",
                        bolt::KeyDisplay(kv.key)
                    ),
                )));
            }
        }
        match slot {
            Entry::Occupied(mut o) => {
                o.insert(next);
            }
            Entry::Vacant(v) => {
                v.insert(next);
            }
        }
        if let Some((code, mut msg)) = problem {
            if self.key_tree_damaged {
                msg.push_str(" (possibly a consequence of the unreadable key-bucket pages reported above)");
            }
            let sev = if code == "uncompacted-revision" {
                Severity::Warning
            } else {
                Severity::Error
            };
            self.finding(sev, code, node, index, msg);
        }
    }

    /// A record with an empty key: the marker a restore with
    /// `--bump-revision` writes, or a key etcd can never serve.
    fn empty_key(&mut self, node: &Node<'a>, index: usize, rk: RevKey, kv: &KeyValueRef<'a>) {
        let rev = rk.rev;
        let blank = !rk.tombstone
            && kv.create_revision == 0
            && kv.mod_revision == 0
            && kv.version == 0
            && kv.lease == 0
            && kv.value.is_empty();
        if blank && self.meta.scheduled_compact_rev == Some(rev.main) {
            self.finding(
                Severity::Info,
                "revision-bump-marker",
                node,
                index,
                format!(
                    "an empty record at revision {rev}, where a compaction is scheduled: the marker a restore with --bump-revision writes so that etcd starts at this revision; etcd keeps it but never serves it"
                ),
            );
        } else {
            self.finding(
                Severity::Warning,
                "empty-user-key",
                node,
                index,
                format!(
                    "revision {rev} has an empty key: etcd keeps it in its index but never serves it (no request can name an empty key)"
                ),
            );
        }
    }

    fn other_entry(&mut self, bucket: &'a [u8], node: &Node<'a>, index: usize, e: &LeafElem<'a>) {
        let (k, v) = (e.key, e.value);
        let r: Result<(), String> = match bucket {
            b"meta" => self.meta.apply(k, v),
            b"members" => decode_member(k, v).map(|m| self.members.push(m)),
            b"members_removed" => decode_removed_member(k).map(|id| self.removed.push(id)),
            b"cluster" => self.cluster.apply(k, v),
            b"lease" => decode_lease(k, v).map(|l| self.leases.push(l)),
            b"alarm" => decode_alarm(k).map(|a| self.alarms.push(a)),
            b"auth" => self.auth.apply(k, v),
            b"authUsers" => decode_user(k, v).map(|u| self.auth.users.push(u)),
            b"authRoles" => decode_role(k, v).map(|r| self.auth.roles.push(r)),
            _ => Ok(()),
        };
        if let Err(msg) = r {
            let b = String::from_utf8_lossy(bucket).into_owned();
            self.finding(
                Severity::Error,
                "bad-bucket-value",
                node,
                index,
                format!("bucket {b}, key {}: {msg}", show_key(k)),
            );
        }
    }
}

impl<'a> Visitor<'a> for Scan<'a> {
    fn problem(&mut self, _error: bolt::Error) {
        if self.bucket == Some(b"key".as_slice()) {
            self.key_tree_damaged = true;
        }
    }

    fn entry(&mut self, path: &[&'a [u8]], node: &Node<'a>, index: usize, e: &LeafElem<'a>) {
        match path {
            [] => {
                self.hash.update(e.key);
                self.bucket = Some(e.key);
                self.buckets.push(BucketCount {
                    name: String::from_utf8_lossy(e.key).into_owned(),
                    keys: 0,
                });
                if !e.is_bucket() {
                    self.finding(
                        Severity::Error,
                        "root-non-bucket",
                        node,
                        index,
                        format!(
                            "the root holds a plain key {} (bbolt only allows buckets there)",
                            show_key(e.key)
                        ),
                    );
                }
            }
            [bucket] => {
                if !e.is_bucket() {
                    self.hash.update_pair(node.data, e.key, e.value);
                } else {
                    self.hash.update(e.key);
                    self.finding(
                        Severity::Warning,
                        "nested-bucket",
                        node,
                        index,
                        format!(
                            "bucket {} holds a nested bucket {} (etcd never writes one)",
                            show_key(bucket),
                            show_key(e.key)
                        ),
                    );
                }
                self.total_key += 1;
                if let Some(b) = self.buckets.last_mut() {
                    b.keys += 1;
                }
                if e.is_bucket() {
                    return;
                }
                if *bucket == b"key" {
                    self.key_entry(node, index, e);
                } else {
                    self.other_entry(bucket, node, index, e);
                }
            }
            _ => {}
        }
    }
}

/// Reads the compaction state from the `meta` bucket before the walk, so the
/// history rules know the boundary. Problems are left to the walk to report.
fn pre_read_meta(db: &Db<'_>) -> MetaInfo {
    let mut m = MetaInfo::default();
    if let Ok(Some(b)) = db.bucket(b"meta") {
        for k in [
            schema::meta_keys::FINISHED_COMPACT_REV,
            schema::meta_keys::SCHEDULED_COMPACT_REV,
        ] {
            if let Ok(Some(e)) = b.get(k) {
                let _ = m.apply(k, e.value);
            }
        }
    }
    m
}

/// Scans the etcd backend in `data` (a db file or a snapshot file, trailer included).
pub fn scan(data: &[u8], opts: DbScanOptions) -> DbReport {
    let file_size = data.len() as u64;
    let image = trailer::image(data);
    let opened = Db::open(image).map(|(db, _)| pre_read_meta(&db));
    let digest_file = opts.file_digest && opened.is_ok();
    let pre = opened.unwrap_or_default();
    let compact = pre
        .finished_compact_rev
        .max(pre.scheduled_compact_rev)
        .unwrap_or(-1);
    let (hash_tx, hash_rx) = std::sync::mpsc::sync_channel(16);
    let hasher = if opts.skip_hash {
        drop(hash_tx);
        Hasher::off()
    } else if opts.single_thread {
        drop(hash_tx);
        Hasher::inline()
    } else {
        Hasher::new(hash_tx)
    };
    let mut s = Scan {
        opts,
        hash: hasher,
        bucket: None,
        total_key: 0,
        buckets: Vec::new(),
        last_rev_key: None,
        keys: KeyStats::default(),
        meta: MetaInfo {
            scheduled_compact_rev: pre.scheduled_compact_rev,
            finished_compact_rev: pre.finished_compact_rev,
            ..MetaInfo::default()
        },
        members: Vec::new(),
        removed: Vec::new(),
        cluster: ClusterInfo::default(),
        leases: Vec::new(),
        alarms: Vec::new(),
        auth: AuthInfo::default(),
        findings: Findings::default(),
        compact,
        states: KeyMap::default(),
        key_tree_damaged: false,
    };
    if opts.deep {
        // A few keys per leaf page: sized up front, the map does not rehash
        // a million keys on the way (bounded, whatever the file claims).
        s.states.reserve(key_capacity(image.len()));
    }
    // The digest of a file that is not a db (no valid meta page) is not
    // worth a read of all of it: it may be a 50 GB hole.
    let want_sha = digest_file || (opts.verify_trailer && trailer::has_trailer(file_size));
    let sha_result = |(t, d): (Trailer, [u8; 32])| (t, digest_file.then_some(d));
    let (structure, trailer, digest, hash) = if opts.single_thread {
        let st = bolt::check::check(image, &mut s);
        s.hash.flush_run();
        let crc = s.hash.inline.unwrap_or(0);
        let (t, d) = if want_sha {
            sha_result(trailer::verify_with_digest(data))
        } else {
            (trailer::inspect(data), None)
        };
        (st, t, d, crc)
    } else {
        std::thread::scope(|sc| {
            // With the hash off the channel's sender is already gone, so
            // this thread ends at once with 0.
            let crc = sc.spawn(move || crc_worker(hash_rx));
            let sha = want_sha.then(|| sc.spawn(|| trailer::verify_with_digest(data)));
            let st = bolt::check::check(image, &mut s);
            s.hash.finish();
            let (trailer, digest) = match sha {
                Some(t) => sha_result(t.join().expect("sha256 thread")),
                None => (trailer::inspect(data), None),
            };
            (st, trailer, digest, crc.join().expect("crc thread"))
        })
    };
    let mut report = finish(file_size, structure, trailer, hash, s);
    report.file_sha256 = digest.map(|d| trailer::hex(&d));
    report
}

fn finish(file_size: u64, st: StructureReport, trailer: Trailer, hash: u32, s: Scan<'_>) -> DbReport {
    let mut findings = st.findings;
    let incomplete = st.walk.problems > 0 || st.meta.is_none();
    let revision = s
        .last_rev_key
        .and_then(|k| RevKey::parse(k).ok())
        .map_or(0, |k| k.rev.main);
    let opened = st.meta.is_some();
    let total_size = st
        .meta
        .as_ref()
        .and_then(|c| c.meta().pgid.0.checked_mul(u64::from(c.page_size)))
        .unwrap_or(0);
    let mut extra = s.findings;
    match &trailer {
        Trailer::Mismatch { stored, computed } => extra.push(
            Finding::new(
                Severity::Error,
                "sha256-mismatch",
                format!("the sha256 trailer does not match the file: stored {stored}, computed {computed}; the snapshot was changed or damaged after it was saved"),
            )
            .at_offset(file_size - trailer::TRAILER_LEN as u64),
        ),
        Trailer::Absent => extra.push(Finding::new(
            Severity::Info,
            "no-sha256-trailer",
            "no sha256 trailer (size is not a multiple of 512 plus 32): a raw db copy such as member/snap/db, or a snapshot whose trailer was cut off; its integrity rests on the structural checks alone",
        )),
        _ => {}
    }
    if opened {
        schema_findings(
            &s.buckets,
            &s.meta,
            &s.members,
            &s.leases,
            &s.states,
            s.opts.deep,
            &mut extra,
        );
        alarm_findings(&s.alarms, &mut extra);
        if st.pages.high_water_mark > 0 {
            let image_len = if trailer::has_trailer(file_size) {
                file_size - 32
            } else {
                file_size
            };
            if trailer::has_trailer(file_size) && image_len != total_size {
                extra.push(Finding::new(
                    Severity::Warning,
                    "snapshot-size",
                    format!(
                        "the snapshot image is {image_len} bytes but the meta page says {total_size} (pgid x pageSize); a snapshot from `etcdctl snapshot save` is exactly that size"
                    ),
                ));
            }
        }
    }
    findings.extend(extra);
    findings.sort();
    let mut keys = s.keys;
    if s.opts.deep && opened {
        keys.distinct_keys = Some(s.states.len() as u64);
        keys.live_keys = Some(s.states.values().filter(|k| !k.deleted).count() as u64);
    }
    DbReport {
        file_size,
        meta_choice: st.meta,
        pages: st.pages,
        walk: st.walk,
        hash,
        revision,
        total_key: s.total_key,
        total_size,
        buckets: s.buckets,
        keys,
        meta: s.meta,
        members: s.members,
        removed_members: s.removed,
        cluster: s.cluster,
        leases: s.leases,
        alarms: s.alarms,
        auth: s.auth,
        trailer,
        findings,
        incomplete,
        file_sha256: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn schema_findings(
    buckets: &[BucketCount],
    meta: &MetaInfo,
    members: &[Member],
    leases: &[Lease],
    states: &KeyMap<&[u8], KeyState>,
    deep: bool,
    out: &mut Findings,
) {
    let names: HashSet<&str> = buckets.iter().map(|b| b.name.as_str()).collect();
    for required in ["key", "meta"] {
        if !names.contains(required) {
            out.push(Finding::new(
                Severity::Error,
                "missing-bucket",
                format!("there is no `{required}` bucket: this is not an etcd v3 backend, or its root page lost entries"),
            ));
        }
    }
    let known: HashSet<&str> = schema::BUCKETS
        .iter()
        .map(|b| std::str::from_utf8(b).expect("ascii"))
        .collect();
    for b in buckets {
        if !known.contains(b.name.as_str()) {
            out.push(Finding::new(
                Severity::Info,
                "unknown-bucket",
                format!("bucket {:?} is not one etcd writes", b.name),
            ));
        }
    }
    if !names.contains("meta") {
        return;
    }
    meta_findings(meta, out);
    if let Some(cs) = &meta.conf_state
        && !members.is_empty()
    {
        let mut conf: Vec<u64> = cs.voters.iter().chain(cs.learners.iter()).copied().collect();
        conf.sort_unstable();
        conf.dedup();
        let mut mem: Vec<u64> = members.iter().map(|m| m.id).collect();
        mem.sort_unstable();
        if conf != mem {
            out.push(Finding::new(
                Severity::Warning,
                "confstate-members-mismatch",
                format!(
                    "meta/confState lists members {} but the members bucket holds {}",
                    ids(&conf),
                    ids(&mem)
                ),
            ));
        }
    }
    if deep {
        lease_findings(leases, states, out);
    }
}

/// The `meta` bucket: the consistent index and the compaction marks.
fn meta_findings(meta: &MetaInfo, out: &mut Findings) {
    match meta.consistent_index {
        None => out.push(Finding::new(
            Severity::Warning,
            "missing-consistent-index",
            "meta/consistent_index is missing: etcd cannot tell which raft entries this db already holds",
        )),
        Some(0) => out.push(Finding::new(
            Severity::Warning,
            "zero-consistent-index",
            "meta/consistent_index is 0",
        )),
        _ => {}
    }
    if let (Some(f), Some(s)) = (meta.finished_compact_rev, meta.scheduled_compact_rev) {
        if f > s {
            out.push(Finding::new(
                Severity::Error,
                "compaction-order",
                format!("finishedCompactRev {f} is above scheduledCompactRev {s}"),
            ));
        } else if s > f {
            out.push(Finding::new(
                Severity::Info,
                "compaction-pending",
                format!("a compaction at revision {s} was scheduled but not finished (last finished: {f}); etcd resumes it at start, which rewrites the db"),
            ));
        }
    }
    if let Some(s) = meta.scheduled_compact_rev
        && meta.finished_compact_rev.is_none()
    {
        out.push(Finding::new(
            Severity::Info,
            "compaction-pending",
            format!(
                "a compaction at revision {s} was scheduled and never finished; etcd resumes it at start"
            ),
        ));
    }
}

/// Live keys attached to a lease the `lease` bucket does not hold.
fn lease_findings(leases: &[Lease], states: &KeyMap<&[u8], KeyState>, out: &mut Findings) {
    let lease_ids: HashSet<i64> = leases.iter().map(|l| l.id).collect();
    let mut missing: BTreeMap<i64, u64> = BTreeMap::new();
    for s in states.values() {
        if !s.deleted && s.lease != 0 && !lease_ids.contains(&s.lease) {
            *missing.entry(s.lease).or_default() += 1;
        }
    }
    for (lease, n) in missing {
        out.push(Finding::new(
            Severity::Warning,
            "key-lease-missing",
            format!("{n} live key(s) are attached to lease {lease:x}, which is not in the lease bucket: they will never expire"),
        ));
    }
}

/// What etcd does at start about the alarms it finds in its `alarm` bucket
/// (`alarm.AlarmStore` restores them; `etcdserver` then picks the applier:
/// `applierV3Capped` for NOSPACE, `applierV3Corrupt` for CORRUPT).
fn alarm_findings(alarms: &[Alarm], out: &mut Findings) {
    for a in alarms {
        let (code, what) = match a.alarm.as_str() {
            "NOSPACE" => (
                "alarm-nospace",
                "etcd starts and serves reads and deletes, but refuses every put, txn with a put and lease grant (\"etcdserver: mvcc: database space exceeded\") until the alarm is disarmed: `etcd-rescue compact --rev head --disarm` offline, or `etcdctl defrag` and `etcdctl alarm disarm` once the db is below its quota",
            ),
            "CORRUPT" => (
                "alarm-corrupt",
                "etcd starts and serves reads (they do not go through the apply path), but refuses every write, delete, compaction and lease change (\"etcdserver: corrupt cluster\") until the alarm is disarmed; it was raised because members' HashKV differed: find out which member is wrong (`etcd-rescue inspect` on all of them) before `etcd-rescue compact --disarm-corrupt` or `etcdctl alarm disarm`",
            ),
            _ => continue,
        };
        out.push(Finding::new(
            Severity::Warning,
            code,
            format!("{} alarm raised by member {:x}: {what}", a.alarm, a.member_id),
        ));
    }
}

/// How many distinct keys to make room for in a file of `len` bytes: two
/// per 4 KiB, at most 4 M (a map that needs more grows as usual).
pub(crate) fn key_capacity(len: usize) -> usize {
    (len / 4096).saturating_mul(2).min(1 << 22)
}

fn ids(v: &[u64]) -> String {
    let s: Vec<String> = v.iter().map(|i| format!("{i:x}")).collect();
    format!("[{}]", s.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::Revision;

    fn put(main: i64, create: i64, version: i64) -> (RevKey, KeyValueRef<'static>) {
        let rk = RevKey {
            rev: Revision { main, sub: 0 },
            tombstone: false,
        };
        let kv = KeyValueRef {
            key: b"/k",
            create_revision: create,
            mod_revision: main,
            version,
            value: b"v",
            lease: 0,
        };
        (rk, kv)
    }

    fn del(main: i64) -> (RevKey, KeyValueRef<'static>) {
        let rk = RevKey {
            rev: Revision { main, sub: 0 },
            tombstone: true,
        };
        (
            rk,
            KeyValueRef {
                key: b"/k",
                ..KeyValueRef::default()
            },
        )
    }

    /// Runs a key's history through `history_step`: the codes found.
    fn history(steps: &[(RevKey, KeyValueRef<'static>)], compact: i64) -> Vec<&'static str> {
        let mut state = None;
        let mut codes = Vec::new();
        for (rk, kv) in steps {
            let (next, problem) = history_step(state, *rk, kv, compact);
            codes.extend(problem.map(|p| p.0));
            state = Some(next);
        }
        codes
    }

    #[test]
    fn a_history_as_etcd_writes_it_has_no_problem() {
        let h = [put(2, 2, 1), put(3, 2, 2), del(4), put(6, 6, 1), put(9, 6, 2)];
        assert_eq!(history(&h, 0), Vec::<&str>::new());
        // Compacted at 3: the history starts at the newest revision at or below it.
        assert_eq!(
            history(&[put(3, 2, 2), del(4), put(6, 6, 1)], 3),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn every_break_in_a_history_is_named() {
        assert_eq!(
            history(&[put(2, 2, 1), put(3, 2, 3)], 0),
            ["version-discontinuity"]
        );
        assert_eq!(history(&[put(2, 2, 1), del(3), del(4)], 0), ["double-tombstone"]);
        assert_eq!(
            history(&[put(2, 2, 1), del(3), put(5, 2, 2)], 0),
            ["generation-start"]
        );
        assert_eq!(history(&[put(5, 2, 2)], 3), ["history-gap"]);
        assert_eq!(history(&[del(5)], 3), ["orphan-tombstone"]);
        assert_eq!(
            history(&[del(2)], 3),
            Vec::<&str>::new(),
            "at or below the compaction"
        );
    }

    #[test]
    fn record_fields_are_checked_on_their_own() {
        let (rk, mut kv) = put(5, 6, 0);
        kv.mod_revision = 4;
        let codes: Vec<&str> = field_problems(rk, &kv).into_iter().map(|p| p.1).collect();
        assert_eq!(
            codes,
            [
                "mod-revision-mismatch",
                "create-revision-invalid",
                "version-invalid"
            ]
        );
        let (rk, mut kv) = del(5);
        kv.version = 1;
        assert_eq!(field_problems(rk, &kv)[0].1, "tombstone-fields");
    }
}
