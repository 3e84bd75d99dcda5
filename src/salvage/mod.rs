//! Salvage: recover every key revision that can still be read from a
//! damaged db, and write a fresh, valid one.
//!
//! The tree is not trusted. Every page of the file is looked at: leaf pages
//! that parse and whose contents are clearly etcd's (revision keys with
//! KeyValue values; meta, members, lease, auth, cluster and alarm records;
//! the root leaf with inline buckets) are kept, whether the current tree
//! still reaches them or not. bbolt never rewrites a live page, so the file
//! also holds older copies of leaves; a revision is immutable, so any copy
//! of it is the same record. Revisions at or below the compact revision that
//! a compaction would have deleted (stale copies in freed pages) are dropped
//! again, by etcd's keep rule. Small buckets take the copy reachable from the
//! current tree when there is one.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::bolt::bucket::Bucket;
use crate::bolt::walk::{self, Visitor};
use crate::bolt::{Db, LeafElem, Node, NodeLoc, PageHeader, PageKind, Pgid, meta};
use crate::mvcc::kv::KeyValueRef;
use crate::mvcc::revision::RevKey;
use crate::mvcc::schema::{self, MetaInfo};

/// Where a record was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    /// On a page the current tree reaches.
    Reachable,
    /// On a page the tree does not reach (lost branch, or an older copy).
    Orphan,
}

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
    /// Pages reachable from the current tree.
    pub reachable_pages: u64,
    /// Leaf pages (with the root leaf) whose contents were used.
    pub leaf_pages_used: u64,
    /// Pages that parse as nothing usable (branches, other data).
    pub pages_not_used: u64,
    /// Pages the current tree points at but that cannot be read (destroyed,
    /// overwritten, cut off). What only they held is lost.
    pub damaged_pages: Vec<u64>,
    /// Whether the tree could be walked from a valid meta page at all (if
    /// not, losses cannot be ruled out).
    pub tree_walked: bool,
    /// Pages whose header says leaf but whose elements do not parse.
    pub unreadable_leaf_pages: Vec<u64>,
    /// Revisions recovered.
    pub revisions: u64,
    /// Of which found only on pages the tree no longer reaches.
    pub revisions_from_orphan_pages: u64,
    /// Revisions at or below the compact revision dropped by etcd's keep rule
    /// (stale copies of compacted history).
    pub dropped_compacted: u64,
    /// Distinct user keys, and live ones at the head.
    pub keys: u64,
    /// Live keys at the head revision.
    pub live_keys: u64,
    /// Lowest and highest main revision recovered.
    pub revision_range: Option<(i64, i64)>,
    /// The compact revision (from the meta bucket found).
    pub compact_revision: i64,
    /// Main revisions above the compact revision that are missing: lost writes.
    pub lost_revision_ranges: Vec<(i64, i64)>,
    /// Records per other bucket.
    pub buckets: BTreeMap<String, u64>,
    /// Anything worth telling the user.
    pub notes: Vec<String>,
}

/// The salvaged contents, ready to be written.
#[derive(Debug, Default)]
pub struct Salvaged {
    /// Every bucket's records, by bucket name, in key order.
    pub buckets: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// The report.
    pub report: SalvageReport,
}

/// Finds the page size: from a valid meta page, else the size under which
/// the most pages carry their own id.
fn page_size(data: &[u8]) -> (usize, String) {
    if let Ok(c) = meta::choose(data) {
        return (c.page_size as usize, format!("meta page {}", c.used));
    }
    let mut best = (4096usize, 0usize);
    for shift in 9..=16 {
        let ps = 1usize << shift;
        let n = data.len() / ps;
        let hits = (2..n.min(4096))
            .filter(|&i| PageHeader::parse(&data[i * ps..]).is_some_and(|h| h.id == i as u64))
            .count();
        if hits > best.1 {
            best = (ps, hits);
        }
    }
    (best.0, "probed".into())
}

/// Records pages reached by the current tree (tolerantly), and the pages
/// it points at that cannot be read.
struct Reach {
    pages: HashSet<u64>,
    broken: BTreeSet<u64>,
}

impl<'a> Visitor<'a> for Reach {
    fn page(&mut self, node: &Node<'a>, _depth: usize) {
        if let NodeLoc::Page { pgid } = node.loc {
            self.pages.insert(pgid.0);
        }
    }

    fn problem(&mut self, e: crate::bolt::Error) {
        if let Some(p) = e.pgid() {
            self.broken.insert(p.0);
        }
    }
}

/// Which bucket a leaf's elements belong to, judged from all of them.
fn classify(elems: &[LeafElem<'_>]) -> Option<&'static [u8]> {
    if elems.is_empty() {
        return None;
    }
    let all = |f: &dyn Fn(&LeafElem<'_>) -> bool| elems.iter().all(|e| !e.is_bucket() && f(e));
    if all(&|e| {
        RevKey::parse(e.key).is_ok_and(|rk| {
            KeyValueRef::decode(e.value)
                .is_ok_and(|kv| !kv.key.is_empty() && (rk.tombstone || kv.mod_revision == rk.rev.main))
        })
    }) {
        return Some(b"key");
    }
    let meta_names: [&[u8]; 6] = [
        schema::meta_keys::CONSISTENT_INDEX,
        schema::meta_keys::TERM,
        schema::meta_keys::FINISHED_COMPACT_REV,
        schema::meta_keys::SCHEDULED_COMPACT_REV,
        schema::meta_keys::CONF_STATE,
        schema::meta_keys::STORAGE_VERSION,
    ];
    if all(&|e| meta_names.contains(&e.key)) {
        return Some(b"meta");
    }
    if all(&|e| schema::decode_member(e.key, e.value).is_ok()) {
        return Some(b"members");
    }
    if all(&|e| e.value == b"removed" && schema::decode_removed_member(e.key).is_ok()) {
        return Some(b"members_removed");
    }
    if all(&|e| e.key.len() == 8 && schema::decode_lease(e.key, e.value).is_ok()) {
        return Some(b"lease");
    }
    if all(&|e| matches!(e.key, b"authEnabled" | b"authRevision")) {
        return Some(b"auth");
    }
    if all(&|e| schema::decode_user(e.key, e.value).is_ok()) {
        return Some(b"authUsers");
    }
    if all(&|e| schema::decode_role(e.key, e.value).is_ok()) {
        return Some(b"authRoles");
    }
    if all(&|e| matches!(e.key, b"clusterVersion" | b"downgrade")) {
        return Some(b"cluster");
    }
    None
}

type Records = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, (Vec<u8>, Found)>>;

/// Meta records that only grow; of two orphan copies, the larger is newer
/// (fixed-width big-endian values compare as bytes).
const MONOTONIC_META: [&[u8]; 4] = [
    schema::meta_keys::CONSISTENT_INDEX,
    schema::meta_keys::TERM,
    schema::meta_keys::FINISHED_COMPACT_REV,
    schema::meta_keys::SCHEDULED_COMPACT_REV,
];

fn add(records: &mut Records, bucket: &[u8], key: &[u8], value: &[u8], found: Found) {
    let b = records.entry(bucket.to_vec()).or_default();
    let replace = match b.get(key) {
        None => true,
        // A copy on a reachable page wins over orphan copies (old versions of
        // small buckets' records; revisions themselves are immutable).
        Some((_, Found::Reachable)) => false,
        Some(_) if found == Found::Reachable => true,
        Some((old, _)) => {
            bucket == b"meta"
                && MONOTONIC_META.contains(&key)
                && value.len() == old.len()
                && value > old.as_slice()
        }
    };
    if replace {
        b.insert(key.to_vec(), (value.to_vec(), found));
    }
}

/// Collects the records of one leaf (a page, or an inline bucket image).
fn take_leaf(node: &Node<'_>, found: Found, records: &mut Records, db: Db<'_>) -> bool {
    let mut elems = Vec::with_capacity(node.count());
    for i in 0..node.count() {
        match node.leaf(i) {
            Ok(e) => elems.push(e),
            Err(_) => return false,
        }
    }
    // The root leaf: buckets, small ones inline.
    if elems
        .iter()
        .all(|e| e.is_bucket() && schema::BUCKETS.contains(&e.key))
        && !elems.is_empty()
    {
        for (i, e) in elems.iter().enumerate() {
            if let Ok(b) = Bucket::from_elem(db, node, i, e)
                && let crate::bolt::bucket::BucketRoot::Inline(inline) = b.root()
            {
                let mut inner = Vec::new();
                let ok = (0..inline.count()).all(|j| inline.leaf(j).map(|x| inner.push(x)).is_ok());
                if ok {
                    for x in inner {
                        add(records, e.key, x.key, x.value, found);
                    }
                }
            }
        }
        return true;
    }
    let Some(bucket) = classify(&elems) else {
        return false;
    };
    for e in &elems {
        add(records, bucket, e.key, e.value, found);
    }
    true
}

/// Salvages the db image in `data` (a snapshot's trailer may be included).
pub fn salvage(data: &[u8]) -> Salvaged {
    let data = crate::mvcc::trailer::image(data);
    let (ps, from) = page_size(data);
    let pages = (data.len() / ps) as u64;
    let mut report = SalvageReport {
        page_size: ps as u32,
        page_size_from: from,
        pages,
        ..SalvageReport::default()
    };
    // The tree as far as it can be walked, and a Db view for page access
    // (with a synthetic meta when none is valid, so every page is addressable).
    let fallback = meta::Meta {
        header_id: 0,
        header_flags: 0x04,
        magic: meta::MAGIC,
        version: meta::VERSION,
        page_size: ps as u32,
        flags: 0,
        root: Pgid(u64::MAX),
        sequence: 0,
        freelist: Pgid::NONE,
        pgid: Pgid(pages),
        txid: crate::bolt::Txid(0),
        checksum: 0,
    };
    let mut reach = Reach {
        pages: HashSet::new(),
        broken: BTreeSet::new(),
    };
    let db = match Db::open(data) {
        Ok((db, _)) => {
            walk::walk(db, &mut reach);
            report.tree_walked = true;
            // Every page of the file is addressable, even past a bad high-water mark.
            let mut m = *db.meta();
            m.pgid = Pgid(pages);
            Db::with_meta(data, m)
        }
        Err(_) => {
            report
                .notes
                .push("neither meta page is valid: the tree was not walked; every page was scanned".into());
            Db::with_meta(data, fallback)
        }
    };
    report.reachable_pages = reach.pages.len() as u64;
    report.damaged_pages = reach.broken.iter().copied().collect();
    let mut records: Records = BTreeMap::new();
    for p in 2..pages {
        let Some(h) = PageHeader::parse(&data[p as usize * ps..]) else {
            continue;
        };
        if h.id != p || h.kind() != PageKind::Leaf {
            report.pages_not_used += 1;
            continue;
        }
        let found = if reach.pages.contains(&p) {
            Found::Reachable
        } else {
            Found::Orphan
        };
        let node = match db.node(Pgid(p)) {
            Ok(n) => n,
            Err(_) => {
                // The overflow count may be what is broken: try the first page alone.
                match Node::parse(
                    NodeLoc::Page { pgid: Pgid(p) },
                    p * ps as u64,
                    &data[p as usize * ps..(p as usize + 1) * ps],
                ) {
                    Ok(n) => n,
                    Err(_) => {
                        report.unreadable_leaf_pages.push(p);
                        continue;
                    }
                }
            }
        };
        if take_leaf(&node, found, &mut records, db) {
            report.leaf_pages_used += 1;
        } else if node.count() > 0 {
            report.unreadable_leaf_pages.push(p);
        } else {
            report.pages_not_used += 1;
        }
    }
    finish(records, report)
}

fn finish(mut records: Records, mut report: SalvageReport) -> Salvaged {
    let mut meta = MetaInfo::default();
    if let Some(m) = records.get(b"meta".as_slice()) {
        for (k, (v, _)) in m {
            let _ = meta.apply(k, v);
        }
    } else {
        report.notes.push("no meta bucket records were found: the consistent index and compaction state are unknown (restore sets them)".into());
    }
    let compact = meta
        .finished_compact_rev
        .max(meta.scheduled_compact_rev)
        .unwrap_or(-1);
    report.compact_revision = compact;
    // The key bucket: per user key, its revisions; drop what compaction would.
    let mut per_key: BTreeMap<Vec<u8>, Vec<(crate::mvcc::Revision, bool)>> = BTreeMap::new();
    if let Some(kb) = records.get(b"key".as_slice()) {
        for (k, (v, _)) in kb {
            if let (Ok(rk), Ok(kv)) = (RevKey::parse(k), KeyValueRef::decode(v)) {
                per_key
                    .entry(kv.key.to_vec())
                    .or_default()
                    .push((rk.rev, rk.tombstone));
            }
        }
    }
    let mut drop: BTreeSet<Vec<u8>> = BTreeSet::new();
    if compact > 0 {
        for revs in per_key.values() {
            // etcd's keep at the compact revision: the newest revision at or
            // below it in the generation that reaches it (a closing tombstone
            // below it goes too).
            let mut gens: Vec<Vec<(crate::mvcc::Revision, bool)>> = vec![Vec::new()];
            for r in revs {
                gens.last_mut().expect("one").push(*r);
                if r.1 {
                    gens.push(Vec::new());
                }
            }
            let gi = gens
                .iter()
                .position(|g| g.last().is_some_and(|r| r.0.main >= compact))
                .unwrap_or(gens.len() - 1);
            let keep = gens[gi].iter().rev().find(|r| r.0.main <= compact).map(|r| r.0);
            for g in &gens {
                for r in g {
                    if r.0.main <= compact && Some(r.0) != keep {
                        let mut k = r.0.to_key().to_vec();
                        if r.1 {
                            k.push(b't');
                        }
                        drop.insert(k);
                    }
                }
            }
        }
    }
    let mut buckets: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> = BTreeMap::new();
    for name in schema::BUCKETS {
        buckets.insert(name.to_vec(), BTreeMap::new());
    }
    for (name, recs) in std::mem::take(&mut records) {
        let out = buckets.entry(name.clone()).or_default();
        for (k, (v, found)) in recs {
            if name == b"key" {
                if drop.contains(&k) {
                    report.dropped_compacted += 1;
                    continue;
                }
                report.revisions += 1;
                if found == Found::Orphan {
                    report.revisions_from_orphan_pages += 1;
                }
            }
            out.insert(k, v);
        }
    }
    for (name, recs) in &buckets {
        if name != b"key" {
            report
                .buckets
                .insert(String::from_utf8_lossy(name).into_owned(), recs.len() as u64);
        }
    }
    // Keys, live keys, revision range and lost ranges from what is kept.
    let kept = &buckets[b"key".as_slice()];
    let mut mains: Vec<i64> = Vec::new();
    let mut last: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
    for (k, v) in kept {
        if let (Ok(rk), Ok(kv)) = (RevKey::parse(k), KeyValueRef::decode(v)) {
            if mains.last() != Some(&rk.rev.main) {
                mains.push(rk.rev.main);
            }
            last.insert(kv.key.to_vec(), rk.tombstone);
        }
    }
    report.keys = last.len() as u64;
    report.live_keys = last.values().filter(|t| !**t).count() as u64;
    report.revision_range = mains.first().copied().zip(mains.last().copied());
    let above: Vec<i64> = mains.iter().copied().filter(|m| *m > compact).collect();
    let mut expected = if compact > 0 {
        compact + 1
    } else {
        above.first().copied().unwrap_or(0)
    };
    for m in above {
        if m > expected {
            report.lost_revision_ranges.push((expected, m - 1));
        }
        expected = m + 1;
    }
    report.unreadable_leaf_pages.sort_unstable();
    if !report.damaged_pages.is_empty() {
        report.notes.push(format!(
            "the tree points at {} page(s) that cannot be read; what only they held is lost (copies found on other pages were used), which can include the newest revisions",
            report.damaged_pages.len()
        ));
    }
    Salvaged { buckets, report }
}

/// Writes the salvaged buckets as a fresh db (every etcd bucket present).
pub fn write_db<W: std::io::Write + std::io::Seek>(
    s: &Salvaged,
    out: W,
    page_size: u32,
) -> Result<crate::bolt::writer::WriteSummary, crate::bolt::writer::WriteError> {
    let mut w = crate::bolt::writer::Writer::new(out, page_size.clamp(1024, 65536), 0.9, 2)?;
    for (name, items) in &s.buckets {
        w.bucket(name, 0, items.iter())?;
    }
    let (summary, mut out) = w.finish()?;
    out.flush()?;
    Ok(summary)
}
