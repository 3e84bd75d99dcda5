//! Offline compaction, defragmentation and alarm disarming: the db etcd
//! would have after `etcdctl compact R --physical`, `etcdctl defrag` and
//! `etcdctl alarm disarm`, written without a running etcd.
//!
//! ```text
//! mod.rs   one db: the plan (revision, what is kept, which alarms go) and the rewrite
//! job.rs   sources (snapshot, db, member dirs), the judgment, outputs, in place, clusters
//! ```
//!
//! The rewrite is etcd's own steps done in one pass:
//!
//! - **compaction at R** (`mvcc/kvstore_compaction.go`, `keyIndex.compact`):
//!   every revision above R is kept; at or below R, each key keeps only its
//!   newest revision in the generation that reaches R, and nothing when that
//!   revision is the tombstone closing its generation. `meta` then says
//!   `scheduledCompactRev` = `finishedCompactRev` = R, as etcd leaves it
//!   when a compaction finishes, so a start does not resume one;
//! - **defragmentation** (`backend.defragdb`): every bucket is copied in key
//!   order into a fresh file with nodes filled to 90 %; free pages vanish;
//! - **disarm**: the chosen `alarm` bucket records are left out; everything
//!   else (consistent index, term, members, leases, auth) is copied as it is,
//!   so a member's WAL stays consistent with its db.

pub mod job;

use std::io::{Seek, SeekFrom, Write};

use crate::bolt::Db;
use crate::bolt::writer::{WriteError, WriteSummary, Writer};
use crate::mvcc::index::compaction_keep;
use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::KvError;
use crate::mvcc::revision::{RevKey, Revision};
use crate::mvcc::schema::{Alarm, decode_alarm, encode_alarm, meta_keys};

/// Which revision to compact at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `--rev R`.
    Rev(i64),
    /// `--rev head`: the newest revision.
    Head,
    /// `--keep-revisions N`: the head minus N.
    Keep(i64),
}

impl Target {
    /// The revision for a store whose newest revision is `head`.
    pub fn resolve(self, head: i64) -> i64 {
        match self {
            Target::Rev(r) => r,
            Target::Head => head,
            Target::Keep(n) => head.saturating_sub(n),
        }
    }
}

/// Which alarms to remove.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Disarm {
    /// NOSPACE ("database space exceeded").
    pub nospace: bool,
    /// CORRUPT (only when asked for by name).
    pub corrupt: bool,
}

impl Disarm {
    /// Whether the disarm removes `a`.
    pub fn removes(&self, a: &Alarm) -> bool {
        (self.nospace && a.alarm == "NOSPACE") || (self.corrupt && a.alarm == "CORRUPT")
    }
}

/// Why a db cannot be compacted.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The revision is at or below the last compaction (etcd: ErrCompacted).
    #[error(
        "revision {rev} is already compacted: this db was compacted at {compact} (etcd answers \"mvcc: required revision has been compacted\"); choose a revision above {compact}"
    )]
    Compacted {
        /// The revision asked for.
        rev: i64,
        /// The db's compact revision.
        compact: i64,
    },
    /// The revision is above the head (etcd: ErrFutureRev).
    #[error(
        "revision {rev} is above the newest revision {head} (etcd answers \"mvcc: required revision is a future revision\")"
    )]
    Future {
        /// The revision asked for.
        rev: i64,
        /// The newest revision.
        head: i64,
    },
    /// A revision below 1.
    #[error("revision {0} is not a revision (revisions start at 1)")]
    Invalid(i64),
    /// The key bucket could not be read.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The db could not be read.
    #[error("reading the db: {0}")]
    Read(#[from] crate::bolt::Error),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Something etcd never writes.
    #[error("{0}")]
    NotEtcd(String),
}

/// What a rewrite does to one db.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The newest revision (etcd's currentRev).
    pub head: i64,
    /// The compaction the db had (-1: none).
    pub compacted_before: i64,
    /// The revision to compact at (`None`: defragment only).
    pub compact_at: Option<i64>,
    /// The revisions at or below `compact_at` that survive, ascending.
    keep: Vec<Revision>,
    /// The alarms in the db.
    pub alarms: Vec<Alarm>,
    /// The alarms the rewrite removes.
    pub disarmed: Vec<Alarm>,
    /// A member's WAL tail folded into the db (see `datadir::tail`).
    pub fold: Option<Fold>,
}

/// A WAL tail that changes only alarms, applied to the db: the consistent
/// index (and term, where the db keeps one) it ends at, and the alarms
/// active after it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fold {
    /// The db's consistent index before.
    pub from_index: u64,
    /// The new consistent index.
    pub consistent_index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The alarms active after the tail, before the disarm.
    #[serde(skip)]
    pub alarms: Vec<Alarm>,
}

impl Plan {
    /// Folds a WAL tail in: the alarms become the tail's, and the disarm
    /// applies to them.
    pub fn fold(&mut self, f: Fold, disarm: Disarm) {
        self.alarms = f.alarms.clone();
        self.disarmed = f.alarms.iter().filter(|a| disarm.removes(a)).cloned().collect();
        self.fold = Some(f);
    }

    /// The alarms left after the rewrite.
    pub fn alarms_left(&self) -> Vec<Alarm> {
        self.alarms
            .iter()
            .filter(|a| !self.disarmed.contains(a))
            .cloned()
            .collect()
    }
}

/// Plans the rewrite of `db`: checks the revision as etcd's compaction
/// does and finds what each key keeps.
pub fn plan(db: Db<'_>, target: Option<Target>, disarm: Disarm) -> Result<Plan, CompactError> {
    let (alarms, disarmed) = alarms(&db, disarm)?;
    let mut p = Plan {
        alarms,
        disarmed,
        ..Plan::default()
    };
    // Where the store stands, as etcd's store restores it: the compaction
    // (a scheduled one is resumed at start) and currentRev.
    let meta = crate::mvcc::kv::read_meta(&db)?;
    p.compacted_before = meta
        .finished_compact_rev
        .max(meta.scheduled_compact_rev)
        .unwrap_or(-1);
    let newest = match db.bucket(b"key")? {
        Some(b) => b
            .cursor()
            .last()?
            .and_then(|e| RevKey::parse(e.key).ok())
            .map_or(0, |k| k.rev.main),
        None => 0,
    };
    p.head = newest.max(p.compacted_before).max(1);
    let Some(t) = target else {
        return Ok(p);
    };
    let rev = check_target(&p, t.resolve(p.head))?;
    p.keep = compaction_keep(&Keyspace::db(db), rev)?;
    p.compact_at = Some(rev);
    Ok(p)
}

/// The revision etcd would accept for a compaction, or why not
/// (`store.updateCompactRev`).
fn check_target(p: &Plan, rev: i64) -> Result<i64, CompactError> {
    if rev < 1 {
        return Err(CompactError::Invalid(rev));
    }
    if rev <= p.compacted_before {
        return Err(CompactError::Compacted {
            rev,
            compact: p.compacted_before,
        });
    }
    if rev > p.head {
        return Err(CompactError::Future { rev, head: p.head });
    }
    Ok(rev)
}

/// Every alarm of the db, and those `disarm` removes.
fn alarms(db: &Db<'_>, disarm: Disarm) -> Result<(Vec<Alarm>, Vec<Alarm>), CompactError> {
    let Some(b) = db.bucket(b"alarm")? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut all = Vec::new();
    for e in b.iter() {
        let e = e?;
        all.push(decode_alarm(e.key).map_err(|m| CompactError::NotEtcd(format!("bucket alarm: {m}")))?);
    }
    let gone = all.iter().filter(|a| disarm.removes(a)).cloned().collect();
    Ok((all, gone))
}

/// CRC-32C (the function of etcd's HashKV) over the bucket name `key` and
/// the key-bucket records the rewrite keeps up to revision `upto`: a digest
/// for comparing members before they are written. (Not a HashKV etcd would
/// report: it refuses HashKV at the compact revision, and above it leaves
/// out kept records a newer revision of the same key replaces.)
pub fn hash_after(db: &Db<'_>, plan: &Plan, upto: i64) -> Result<u32, CompactError> {
    let mut counts = (0, 0);
    let mut kept = Kept::new(&plan.keep, plan.compact_at, &mut counts);
    let mut crc = crc32c::crc32c(b"key");
    for e in Keyspace::db(*db).revisions()? {
        let e = e?;
        if e.rev.rev.main > upto {
            break;
        }
        if kept.keeps(e.raw_key) {
            crc = crc32c::crc32c_append(crc, e.raw_key);
            crc = crc32c::crc32c_append(crc, e.value);
        }
    }
    Ok(crc)
}

/// What a rewrite wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rewritten {
    /// Revisions in the key bucket before.
    pub revisions_before: u64,
    /// Revisions in the key bucket after.
    pub revisions_after: u64,
    /// The writer's summary (pages, page size, keys).
    pub written: WriteSummary,
    /// Bytes of the new file (with the trailer, if any).
    pub size: u64,
    /// The new snapshot's sha256 (when a trailer was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Rewrites `db` into `out` by the plan, densely packed, with `page_size`
/// pages; with `trailer`, appends the sha256 trailer of a snapshot.
pub fn rewrite(
    db: &Db<'_>,
    plan: &Plan,
    out: &mut std::fs::File,
    page_size: u32,
    trailer: bool,
) -> Result<Rewritten, CompactError> {
    let sink = Writeback {
        f: &mut *out,
        since: 0,
    };
    let mut w = Writer::new(
        std::io::BufWriter::with_capacity(1 << 20, sink),
        page_size,
        0.9,
        db.meta().txid.0 + 1,
    )?;
    let mut counts = (0u64, 0u64);
    for e in db.root().iter() {
        let e = e?;
        let Some(b) = db.bucket(e.key)? else {
            return Err(CompactError::NotEtcd(format!(
                "the root holds a value {} where etcd keeps only buckets",
                crate::bolt::show_key(e.key)
            )));
        };
        let mut failed: Option<CompactError> = None;
        let name = e.key;
        let items = b.iter().map_while(|e| match e {
            Ok(e) if e.is_bucket() => {
                failed = Some(CompactError::NotEtcd(format!(
                    "bucket {} holds a nested bucket {}: etcd never writes one",
                    crate::bolt::show_key(name),
                    crate::bolt::show_key(e.key)
                )));
                None
            }
            Ok(e) => Some((e.key, e.value)),
            Err(x) => {
                failed = Some(x.into());
                None
            }
        });
        match name {
            b"key" => {
                let mut kept = Kept::new(&plan.keep, plan.compact_at, &mut counts);
                w.bucket(name, b.sequence(), items.filter(|(k, _)| kept.keeps(k)))?;
            }
            b"meta" => w.bucket(name, b.sequence(), new_meta(items, plan))?,
            b"alarm" if plan.fold.is_some() => {
                let mut keys: Vec<Vec<u8>> = plan.alarms_left().iter().filter_map(encode_alarm).collect();
                keys.sort();
                keys.dedup();
                w.bucket(name, b.sequence(), keys.into_iter().map(|k| (k, Vec::new())))?
            }
            b"alarm" => {
                let gone = |k: &[u8]| decode_alarm(k).is_ok_and(|a| plan.disarmed.contains(&a));
                w.bucket(name, b.sequence(), items.filter(|(k, _)| !gone(k)))?
            }
            _ => w.bucket(name, b.sequence(), items)?,
        }
        if let Some(f) = failed {
            return Err(f);
        }
    }
    let (written, buffered) = w.finish()?;
    buffered
        .into_inner()
        .map_err(|e| WriteError::Io(e.into_error()))?;
    crate::source::start_writeback(out);
    let sha256 = if trailer { Some(append_trailer(out)?) } else { None };
    out.flush().map_err(WriteError::Io)?;
    let size = out.seek(SeekFrom::End(0)).map_err(WriteError::Io)?;
    Ok(Rewritten {
        revisions_before: counts.0,
        revisions_after: counts.1,
        written,
        size,
        sha256,
    })
}

/// The output file, with its writeback started every 4 MiB written (see
/// [`crate::source::start_writeback`]): the disk works while the rest is
/// built.
struct Writeback<'f> {
    f: &'f mut std::fs::File,
    since: usize,
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.f.write(buf)?;
        self.since += n;
        if self.since >= 4 << 20 {
            crate::source::start_writeback(self.f);
            self.since = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.f.flush()
    }
}

impl Seek for Writeback<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.f.seek(pos)
    }
}

/// The key bucket's filter: revisions above the compaction point pass,
/// at or below it only those in the (ascending) keep list. Counts what it
/// sees and what it passes.
struct Kept<'p> {
    keep: std::iter::Peekable<std::slice::Iter<'p, Revision>>,
    at: i64,
    counts: &'p mut (u64, u64),
}

impl<'p> Kept<'p> {
    fn new(keep: &'p [Revision], at: Option<i64>, counts: &'p mut (u64, u64)) -> Kept<'p> {
        Kept {
            keep: keep.iter().peekable(),
            at: at.unwrap_or(i64::MIN),
            counts,
        }
    }

    fn keeps(&mut self, k: &[u8]) -> bool {
        self.counts.0 += 1;
        // A key that is not a revision is the judgment's business; a
        // source with one is refused before this runs. Keep it.
        let pass = match RevKey::parse(k) {
            Ok(rk) if rk.rev.main <= self.at => {
                while self.keep.next_if(|r| **r < rk.rev).is_some() {}
                self.keep.peek().is_some_and(|r| **r == rk.rev)
            }
            _ => true,
        };
        self.counts.1 += u64::from(pass);
        pass
    }
}

/// The meta bucket's records with the compaction and a folded tail
/// recorded (in key order among the others).
fn new_meta<'a>(items: impl Iterator<Item = (&'a [u8], &'a [u8])>, plan: &Plan) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut m: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
        items.map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    if let Some(f) = &plan.fold {
        m.insert(
            meta_keys::CONSISTENT_INDEX.to_vec(),
            f.consistent_index.to_be_bytes().to_vec(),
        );
        // etcd 3.4 keeps no term; 3.5 saves it with the index.
        if m.contains_key(meta_keys::TERM) {
            m.insert(meta_keys::TERM.to_vec(), f.term.to_be_bytes().to_vec());
        }
    }
    if let Some(r) = plan.compact_at {
        let v = Revision { main: r, sub: 0 }.to_key().to_vec();
        m.insert(meta_keys::SCHEDULED_COMPACT_REV.to_vec(), v.clone());
        m.insert(meta_keys::FINISHED_COMPACT_REV.to_vec(), v);
    }
    m.into_iter().collect()
}

/// Appends the sha256 of everything in `f` to it (the trailer
/// `etcdctl snapshot save` writes) and returns it in hex.
fn append_trailer(f: &mut std::fs::File) -> Result<String, WriteError> {
    use sha2::{Digest, Sha256};
    let d = {
        let map = crate::source::map_own_output(f)?;
        Sha256::digest(map.as_deref().unwrap_or(&[]))
    };
    f.seek(SeekFrom::End(0))?;
    f.write_all(&d)?;
    Ok(d.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_the_writer_cannot_take_become_4k() {
        use crate::bolt::writer::output_page_size;
        assert_eq!(output_page_size(256), 4096);
        assert_eq!(output_page_size(512), 512);
        assert_eq!(output_page_size(4096), 4096);
        assert_eq!(output_page_size(16384), 16384);
        assert_eq!(output_page_size(65536), 65536);
        assert_eq!(output_page_size(1 << 20), 1 << 20);
        assert_eq!(output_page_size(2 << 20), 4096);
        assert_eq!(output_page_size(3000), 4096);
    }

    #[test]
    fn targets_resolve_against_the_head() {
        assert_eq!(Target::Rev(7).resolve(100), 7);
        assert_eq!(Target::Head.resolve(100), 100);
        assert_eq!(Target::Keep(30).resolve(100), 70);
        assert_eq!(Target::Keep(i64::MAX).resolve(-5), i64::MIN);
    }

    #[test]
    fn the_keep_filter_passes_only_listed_revisions_at_or_below_the_point() {
        let keep = [Revision { main: 2, sub: 0 }, Revision { main: 4, sub: 1 }];
        let mut counts = (0, 0);
        let mut k = Kept::new(&keep, Some(4), &mut counts);
        let key = |m, s| Revision { main: m, sub: s }.to_key();
        let seen: Vec<bool> = [(1, 0), (2, 0), (3, 0), (4, 0), (4, 1), (5, 0)]
            .iter()
            .map(|&(m, s)| k.keeps(&key(m, s)))
            .collect();
        assert_eq!(seen, [false, true, false, false, true, true]);
        assert_eq!(counts, (6, 3));
    }

    #[test]
    fn meta_gets_both_compaction_keys() {
        let items = [(b"consistent_index".as_slice(), b"x".as_slice())];
        let plan = Plan {
            compact_at: Some(9),
            ..Plan::default()
        };
        let m = new_meta(items.into_iter(), &plan);
        let names: Vec<&[u8]> = m.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(
            names,
            [
                b"consistent_index".as_slice(),
                b"finishedCompactRev",
                b"scheduledCompactRev"
            ]
        );
        assert_eq!(m[1].1, Revision { main: 9, sub: 0 }.to_key());
    }
}
