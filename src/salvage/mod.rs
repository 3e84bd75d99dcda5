//! Salvage: recover every record that can still be read from a damaged db,
//! say what is lost on evidence, and write a fresh db that etcd's rules
//! accept.
//!
//! 1. **The tree** (`tree`): the root named by a valid meta page, or, when
//!    none is valid or its root is gone, the newest root leaf in the file
//!    (highest consistent index). Every page it reaches is read without
//!    trusting its header (`page`): a page whose type flags, count, id or
//!    overflow are damaged is used when its elements validate as records of
//!    the bucket the tree says it belongs to. Pages it points at that cannot
//!    be read are kept with their bucket and key range.
//! 2. **Copies elsewhere**: bbolt never rewrites a live page, so the file
//!    holds older copies of leaves. They stand in only where the tree cannot
//!    be read: for the key ranges of its unreadable pages (a revision never
//!    changes, so any copy of it is the record), and, when the tree had to
//!    be reconstructed, for revisions newer than all it holds. A record the
//!    live tree deleted (a revoked lease, a removed member, a compacted
//!    revision) does not come back while the tree's page for it is readable.
//! 3. **History** (`history`): the source's compaction is applied to stale
//!    copies, breaks in the revision sequence and in each key's chain are
//!    the evidence of loss, and the compaction point is raised over them.
//! 4. **Accounting**: lost revision ranges and broken keys from the history;
//!    for each unreadable page, its element count (when its header still
//!    gives one) against the records found for its range. Nothing is called
//!    complete unless every page the tree points at was read, or every
//!    record an unreadable one held was found elsewhere.

mod history;
mod member;
mod page;
mod tree;

use std::collections::BTreeMap;

pub use history::Break;
pub use member::{salvage_dir, salvage_member};
pub use tree::{Repaired, Unreadable};

use crate::mvcc::kv::KeyValueRef;
use crate::mvcc::revision::{RevKey, Revision};
use crate::mvcc::schema::{self, meta_keys};
use tree::{Buckets, Tree};

/// What a salvage recovered and lost.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalvageReport {
    /// Page size used.
    pub page_size: u32,
    /// How it was found: `meta page 0`, `meta page 1` or `probed`.
    pub page_size_from: String,
    /// Pages in the file.
    pub pages: u64,
    /// The root page used, if one was found.
    pub root: Option<u64>,
    /// Where the root came from.
    pub root_from: String,
    /// Whether a tree was walked (from a meta page or a reconstructed root).
    pub tree_walked: bool,
    /// Pages the tree reaches.
    pub reachable_pages: u64,
    /// Pages whose contents were used: the tree's (its branch and overflow
    /// pages included) and the pages other copies came from.
    pub leaf_pages_used: u64,
    /// Pages the tree points at that cannot be read (their ids).
    pub damaged_pages: Vec<u64>,
    /// The same pages: bucket, element count when known, why.
    pub unreadable: Vec<Unreadable>,
    /// Pages used although their header was damaged, and why.
    pub repaired: Vec<Repaired>,
    /// Key revisions in the output.
    pub revisions: u64,
    /// Of which found only on pages the tree does not reach.
    pub revisions_from_orphan_pages: u64,
    /// Records of other buckets taken from pages the tree does not reach.
    pub records_from_free_pages: BTreeMap<String, u64>,
    /// Stale copies of history the source's compaction had removed.
    pub dropped_compacted: u64,
    /// Older revisions dropped because the compaction point was raised.
    pub history_dropped: u64,
    /// Distinct user keys in the output.
    pub keys: u64,
    /// Live keys at the head revision.
    pub live_keys: u64,
    /// Lowest and highest main revision in the output.
    pub revision_range: Option<(i64, i64)>,
    /// The source's compaction point (meta bucket), if found.
    pub source_compact_revision: Option<i64>,
    /// The output's compaction point: the source's, raised over every loss.
    pub compact_revision: i64,
    /// Main revisions above the source's compaction point with no record.
    pub lost_revision_ranges: Vec<(i64, i64)>,
    /// Revisions of which only some records are lost (a transaction's writes
    /// split across pages, one of them unreadable): which sub-revisions.
    pub partly_lost_revisions: Vec<PartlyLost>,
    /// When the page holding the newest revisions cannot be read and no copy
    /// of any of them was found: its first revision (from its parent), lost
    /// with everything after it up to a head no one can tell any more.
    pub lost_from_revision: Option<i64>,
    /// When the page holding the newest revisions cannot be read but older
    /// copies of it were found, or the tree used is older than the last
    /// commit: the newest revision found. Later ones may have existed (the
    /// head is unknown).
    pub possibly_lost_after_revision: Option<i64>,
    /// Keys whose history breaks: a revision of theirs is lost.
    pub keys_with_lost_history: Vec<Break>,
    /// Losses that are possible but cannot be counted (what they are).
    pub possibly_lost: Vec<String>,
    /// When the tree used is older than the last commit (the live root was
    /// lost): the records of the small buckets (members, leases, auth,
    /// alarms) are as of that older commit.
    pub older_tree: Option<String>,
    /// Nothing lost: every page the tree points at was read, or all it held
    /// was found elsewhere, and the history has no break.
    pub complete: bool,
    /// Consistent index and term written to the output's meta (from the source).
    pub consistent_index: Option<u64>,
    /// Raft term (etcd 3.5+ keeps it).
    pub term: Option<u64>,
    /// Records per other bucket.
    pub buckets: BTreeMap<String, u64>,
    /// A member dir's WAL: what it gave (None for a db file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal: Option<member::WalUse>,
    /// Anything else worth telling the user.
    pub notes: Vec<String>,
}

/// Records of one revision that an unreadable page held.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartlyLost {
    /// The main revision.
    pub revision: i64,
    /// The first sub-revision lost.
    pub from_sub: i64,
    /// The first sub-revision not lost (None: every later one is lost).
    pub to_sub: Option<i64>,
}

/// The salvaged contents, ready to be written.
#[derive(Debug, Default)]
pub struct Salvaged {
    /// Every bucket's records, by bucket name, in key order.
    pub buckets: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// The report.
    pub report: SalvageReport,
}

/// Meta records that only grow: of two copies from elsewhere, the larger is
/// newer (fixed-width big-endian values compare as bytes).
const MONOTONIC_META: [&[u8]; 4] = [
    meta_keys::CONSISTENT_INDEX,
    meta_keys::TERM,
    meta_keys::FINISHED_COMPACT_REV,
    meta_keys::SCHEDULED_COMPACT_REV,
];

/// The tree to trust, and how it was found.
fn live_tree(data: &[u8], ps: usize, report: &mut SalvageReport) -> Option<(Tree, bool)> {
    let named = crate::bolt::meta::choose(data).ok();
    if let Some(c) = &named {
        let t = tree::walk(data, ps, c.meta().root.0);
        if !t.unreadable.iter().any(|u| u.bucket == "(root)") {
            report.root_from = format!("meta page {}", c.used);
            return Some((t, false));
        }
        report.notes.push(format!(
            "the root page {} that meta page {} names cannot be read: {}",
            c.meta().root,
            c.used,
            t.unreadable[0].why
        ));
    } else {
        report.notes.push("neither meta page is valid".into());
    }
    let skip = named.map(|c| c.meta().root.0);
    let (root, ci) = tree::newest_root(data, ps, skip)?;
    report.root_from = format!(
        "reconstructed: the newest root page in the file (its meta bucket has consistent index {ci})"
    );
    Some((tree::walk(data, ps, root), true))
}

/// Records from pages the tree does not reach, where the tree allows them.
struct Others {
    records: Buckets,
    pages_used: u64,
}

fn others(data: &[u8], ps: usize, tree: Option<&(Tree, bool)>, report: &mut SalvageReport) -> Others {
    let pages = (data.len() / ps) as u64;
    let head = tree.and_then(|(t, _)| t.records.get(b"key".as_slice())?.keys().next_back().cloned());
    let admits = |bucket: &[u8], key: &[u8]| match tree {
        None => true,
        Some((t, reconstructed)) => {
            t.lost_range_covers(bucket, key)
                || (*reconstructed && bucket == b"key" && head.as_deref().is_none_or(|h| key > h))
        }
    };
    let mut out = Others {
        records: Buckets::new(),
        pages_used: 0,
    };
    let mut p = 2;
    crate::progress::begin("scanning every page", pages.saturating_mul(ps as u64));
    while p < pages {
        let this = p;
        p += 1;
        crate::progress::advance(ps as u64);
        if tree.is_some_and(|(t, _)| t.visited.contains(&this)) {
            continue;
        }
        let Ok(r) = page::read(data, ps, this, Some(crate::bolt::node::NodeKind::Leaf)) else {
            continue;
        };
        let page::Content::Leaf(elems) = r.content else {
            continue;
        };
        let Some(bucket) = tree::classify(&elems) else {
            continue;
        };
        p = this + r.span;
        crate::progress::advance(r.span.saturating_sub(1) * ps as u64);
        let mut used = false;
        let recs = out.records.entry(bucket.to_vec()).or_default();
        for e in elems {
            if !admits(bucket, &e.key) {
                continue;
            }
            used = true;
            let newer = bucket == b"meta"
                && MONOTONIC_META.contains(&e.key.as_slice())
                && recs
                    .get(&e.key)
                    .is_some_and(|old| old.len() == e.value.len() && e.value > *old);
            if newer || !recs.contains_key(&e.key) {
                recs.insert(e.key, e.value);
            }
        }
        if used {
            out.pages_used += 1;
            if !r.repairs.is_empty() {
                report.repaired.push(Repaired {
                    pgid: this,
                    bucket: String::from_utf8_lossy(bucket).into_owned(),
                    repairs: r.repairs,
                    trusted_because: format!(
                        "not reached by the tree; all its elements decode as etcd {} records",
                        String::from_utf8_lossy(bucket)
                    ),
                });
            }
        }
    }
    out
}

/// Salvages the db image in `data` (a snapshot's trailer may be included).
pub fn salvage(data: &[u8]) -> Salvaged {
    let (buckets, tree, report) = collect(data);
    finish(buckets, tree.as_ref(), report)
}

/// Everything readable, before the history is settled.
fn collect(data: &[u8]) -> (Buckets, Option<Tree>, SalvageReport) {
    let data = crate::mvcc::trailer::image(data);
    let (ps, from) = page::page_size(data);
    let mut report = SalvageReport {
        page_size: ps as u32,
        page_size_from: from,
        pages: (data.len() / ps) as u64,
        ..SalvageReport::default()
    };
    let mut tree = live_tree(data, ps, &mut report);
    let named_root_lost = report.notes.iter().any(|n| n.starts_with("the root page "));
    if tree.is_none() {
        report.root_from = "none found: every page was scanned".into();
        report
            .possibly_lost
            .push("no root page could be found: the small buckets (meta, members, leases, auth) come from whatever copies the file holds, and records deleted since may have come back".into());
        tree = tree::key_tree(data, ps).map(|t| {
            report.root_from = format!(
                "none found; the key bucket's own tree was read from its branch page {} (the one reaching the newest revisions)",
                t.root
            );
            (t, true)
        });
    }
    let extra = others(data, ps, tree.as_ref(), &mut report);
    let mut buckets: Buckets = Buckets::new();
    if let Some((t, reconstructed)) = &mut tree {
        report.root = (!t.key_only).then_some(t.root);
        report.tree_walked = !t.key_only;
        report.reachable_pages = t.visited.len() as u64;
        report.unreadable = t.unreadable.clone();
        report.damaged_pages = t.unreadable.iter().map(|u| u.pgid).collect();
        report.repaired.splice(0..0, t.repaired.iter().cloned());
        report.leaf_pages_used = t.visited.len() as u64;
        buckets = std::mem::take(&mut t.records);
        if *reconstructed {
            report.notes.push(
                "the tree was reconstructed from the newest root page: key revisions newer than it holds were taken from the pages that hold them".into(),
            );
        }
        let head = t
            .records
            .get(b"key".as_slice())
            .and_then(|k| k.keys().next_back());
        let newer = *reconstructed
            && extra
                .records
                .get(b"key".as_slice())
                .and_then(|k| k.keys().next_back())
                .is_some_and(|k| head.is_none_or(|h| k > h));
        if !t.key_only && (named_root_lost || newer) {
            report.older_tree = Some(format!(
                "the root used (page {}) is older than the last commit{}: members, leases, auth and alarms are as of that commit",
                t.root,
                if newer {
                    ", as key revisions newer than it holds show"
                } else {
                    " (the live root page was lost)"
                }
            ));
        }
    }
    report.leaf_pages_used += extra.pages_used;
    for (name, recs) in extra.records {
        let into = buckets.entry(name.clone()).or_default();
        for (k, v) in recs {
            if into.contains_key(&k) {
                continue;
            }
            if name == b"key" {
                report.revisions_from_orphan_pages += 1;
            } else {
                *report
                    .records_from_free_pages
                    .entry(String::from_utf8_lossy(&name).into_owned())
                    .or_default() += 1;
            }
            into.insert(k, v);
        }
    }
    (buckets, tree.map(|(t, _)| t), report)
}

fn finish(mut buckets: Buckets, tree: Option<&Tree>, mut report: SalvageReport) -> Salvaged {
    let meta = buckets
        .get(b"meta".as_slice())
        .map(tree::meta_info)
        .unwrap_or_default();
    if meta.consistent_index.is_none() {
        report.notes.push(
            "no consistent index was found: the output has none, and `restore` sets it (as etcdutl snapshot restore does)".into(),
        );
    }
    let source_compact = meta.finished_compact_rev.max(meta.scheduled_compact_rev);
    let keys = buckets.remove(b"key".as_slice()).unwrap_or_default();
    let page_lost = account_unreadable(&keys, tree, &mut report);
    let h = history::settle(&keys, source_compact, &page_lost);
    let mut lost = h.lost.clone();
    if source_compact.is_none() && !h.gaps.is_empty() {
        // Without the compaction point a missing revision may be one a
        // compaction removed: possible, not proven.
        report.possibly_lost.push(format!(
            "revisions {} are missing; the compaction point is unknown (no meta bucket), so a compaction may have removed them",
            h.gaps.iter().map(|(a, b)| format!("{a}..{b}")).collect::<Vec<_>>().join(", ")
        ));
    } else {
        lost = history::merge(lost.into_iter().chain(h.gaps.iter().copied()));
    }
    let kept: BTreeMap<Vec<u8>, Vec<u8>> = keys.into_iter().filter(|(k, _)| h.kept.contains(k)).collect();
    report.source_compact_revision = source_compact;
    report.compact_revision = h.compact;
    report.dropped_compacted = h.dropped_stale;
    report.history_dropped = h.dropped_by_raise;
    report.lost_revision_ranges = lost;
    report.keys_with_lost_history = h.breaks;
    if !report.lost_revision_ranges.is_empty()
        || report.lost_from_revision.is_some()
        || !report.partly_lost_revisions.is_empty()
    {
        report.notes.push("which keys the lost revisions wrote cannot be told from the db: a key written there and not since is missing, one deleted there may be back, one updated there serves its older value (a member dir's WAL can tell: salvage the data dir)".into());
    }
    if h.compact > source_compact.unwrap_or(0) {
        report.notes.push(format!(
            "the compaction point was raised from {} to {}: history at or below it is incomplete, so etcd answers reads there with \"required revision has been compacted\"",
            source_compact.map_or("none".into(), |c| c.to_string()),
            h.compact
        ));
    }
    // The meta bucket: the source's, with the compaction the output has.
    let m = buckets.entry(b"meta".to_vec()).or_default();
    if h.compact > 0 {
        let v = Revision {
            main: h.compact,
            sub: 0,
        }
        .to_key()
        .to_vec();
        m.insert(meta_keys::SCHEDULED_COMPACT_REV.to_vec(), v.clone());
        m.insert(meta_keys::FINISHED_COMPACT_REV.to_vec(), v);
    }
    report.consistent_index = meta.consistent_index;
    report.term = meta.term;
    summarize(&kept, &mut report);
    // An older tree was used because the live root was lost: commits after
    // it may have written revisions that no surviving page holds (a cut
    // file loses the newest leaf with the root). Whether they did, no one
    // can tell: the head is unknown past the newest revision found.
    if report.older_tree.is_some()
        && report.lost_from_revision.is_none()
        && report.possibly_lost_after_revision.is_none()
    {
        report.possibly_lost_after_revision = report.revision_range.map(|(_, hi)| hi);
    }
    buckets.insert(b"key".to_vec(), kept);
    for name in schema::BUCKETS {
        buckets.entry(name.to_vec()).or_default();
    }
    for (name, recs) in &buckets {
        if name != b"key" {
            report
                .buckets
                .insert(String::from_utf8_lossy(name).into_owned(), recs.len() as u64);
        }
    }
    report.complete = report.tree_walked
        && report.lost_revision_ranges.is_empty()
        && report.keys_with_lost_history.is_empty()
        && report.lost_from_revision.is_none()
        && report.possibly_lost_after_revision.is_none()
        && report.partly_lost_revisions.is_empty()
        && report.older_tree.is_none()
        && report.possibly_lost.is_empty();
    Salvaged { buckets, report }
}

/// For each unreadable page of the tree: did its records turn up elsewhere?
/// Returns the revision ranges a `key` page held when none of its records
/// was found anywhere (its parent gives the range).
fn account_unreadable(
    keys: &BTreeMap<Vec<u8>, Vec<u8>>,
    tree: Option<&Tree>,
    report: &mut SalvageReport,
) -> Vec<(i64, i64)> {
    let Some(t) = tree else { return Vec::new() };
    let mut lost = Vec::new();
    let rev = |k: &Option<Vec<u8>>| k.as_deref().and_then(|k| RevKey::parse(k).ok()).map(|r| r.rev);
    // A revision's records (tombstones too) sort between (m, 0) and (m + 1, 0).
    let has_main = |m: i64| {
        let at = |main| Revision { main, sub: 0 }.to_key().to_vec();
        keys.range(at(m)..at(m + 1)).next().is_some()
    };
    for u in &t.unreadable {
        let is_key = u.bucket == "key";
        let found = if is_key { u.records_in(keys).count() } else { 0 };
        let (from, to) = (rev(&u.from), rev(&u.to));
        let range = if is_key {
            format!(
                ", revisions {}..{}",
                from.map_or("start".into(), |r| r.main.to_string()),
                to.map_or("end".into(), |r| r.main.to_string())
            )
        } else {
            String::new()
        };
        if is_key
            && found == 0
            && let Some(f) = from
        {
            // Its first record existed (the parent names it). When records
            // of the same revision survive elsewhere, that one is only
            // partly lost.
            let partly = has_main(f.main);
            let same = to.is_some_and(|t| t.main == f.main);
            if partly {
                report.partly_lost_revisions.push(PartlyLost {
                    revision: f.main,
                    from_sub: f.sub,
                    to_sub: to.filter(|_| same).map(|t| t.sub),
                });
            }
            let lo = f.main + i64::from(partly);
            match to {
                None => report.lost_from_revision = Some(lo),
                Some(t) if lo < t.main => lost.push((lo, t.main - 1)),
                Some(_) => {}
            }
            // The right sibling starts inside a revision: its earlier
            // sub-revisions were on this page.
            if let Some(t) = to.filter(|t| t.sub > 0 && !same) {
                report.partly_lost_revisions.push(PartlyLost {
                    revision: t.main,
                    from_sub: 0,
                    to_sub: Some(t.sub),
                });
            }
        }
        if is_key && to.is_none() && found > 0 {
            let newest = u
                .records_in(keys)
                .next_back()
                .and_then(|(k, _)| RevKey::parse(k).ok());
            report.possibly_lost_after_revision = newest.map(|r| r.rev.main);
        }
        match u.elements {
            Some(n) if is_key && found >= usize::from(n) && n > 0 => report.notes.push(format!(
                "page {} ({} bucket{range}) cannot be read, but its header still counts {n} records and all were found on other pages",
                u.pgid, u.bucket
            )),
            Some(n) => report.possibly_lost.push(format!(
                "page {} ({} bucket{range}) cannot be read: its header counts {n} records, {found} were found on other pages",
                u.pgid, u.bucket
            )),
            None => report.possibly_lost.push(format!(
                "page {} ({} bucket{range}) cannot be read and its header is gone: how many records it held is unknown ({found} found on other pages for its range)",
                u.pgid, u.bucket
            )),
        }
    }
    lost
}

/// Keys, live keys and the revision range of the output.
fn summarize(kept: &BTreeMap<Vec<u8>, Vec<u8>>, report: &mut SalvageReport) {
    let mut last: BTreeMap<&[u8], bool> = BTreeMap::new();
    let mut range: Option<(i64, i64)> = None;
    for (k, v) in kept {
        if let (Ok(rk), Ok(kv)) = (RevKey::parse(k), KeyValueRef::decode(v)) {
            last.insert(kv.key, rk.tombstone);
            let m = rk.rev.main;
            range = Some(range.map_or((m, m), |(a, _)| (a, m)));
        }
    }
    report.revisions = kept.len() as u64;
    report.keys = last.len() as u64;
    report.live_keys = last.values().filter(|t| !**t).count() as u64;
    report.revision_range = range;
}

/// Writes the salvaged buckets as a fresh db (every etcd bucket present).
pub fn write_db<W: std::io::Write + std::io::Seek>(
    s: &Salvaged,
    out: W,
    page_size: u32,
) -> Result<crate::bolt::writer::WriteSummary, crate::bolt::writer::WriteError> {
    let mut w = crate::bolt::writer::Writer::new(
        out,
        crate::bolt::writer::output_page_size(page_size as usize),
        0.9,
        2,
    )?;
    for (name, items) in &s.buckets {
        w.bucket(name, 0, items.iter())?;
    }
    let (summary, mut out) = w.finish()?;
    out.flush()?;
    Ok(summary)
}
