//! Where the space goes: keys and bytes per prefix (Kubernetes-aware),
//! revisions kept per key, the largest keys and values, leases with their
//! keys, and what a compaction plus defragmentation would reclaim.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::index::{KeyIndex, live};
use super::kv::KvError;
use super::scan::DbReport;

/// Bytes a stored revision takes in a leaf page besides its value: the
/// 16-byte element header and the 17/18-byte revision key.
const PER_REVISION_OVERHEAD: u64 = 16 + 17;
/// How full etcd's defragmentation packs pages (bbolt's fill percent 0.9).
const DEFRAG_FILL: f64 = 0.9;

/// How to group keys.
#[derive(Clone, Copy, Debug)]
pub struct StatsOptions {
    /// Path segments per group (for keys outside `/registry/`).
    pub depth: usize,
    /// How many of the largest keys/values/most-revised keys to list.
    pub top: usize,
}

/// Keys and bytes under one prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixStat {
    /// The prefix (lossy UTF-8).
    pub prefix: String,
    /// Keys alive at the head.
    pub live_keys: u64,
    /// Bytes of their current values.
    pub live_value_bytes: u64,
    /// Stored revisions (live or not, including deletes).
    pub revisions: u64,
    /// Bytes all stored revisions take (values plus per-revision overhead).
    pub stored_bytes: u64,
}

/// One key in a top list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopItem {
    /// The measure (bytes or revisions).
    pub size: u64,
    /// The key (lossy UTF-8).
    pub key: String,
    /// The revision it is about.
    pub revision: i64,
}

/// A lease and the live keys attached to it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseStat {
    /// Lease id (hex, as etcdctl prints it).
    pub id: String,
    /// Granted TTL in seconds.
    pub ttl: i64,
    /// Live keys attached.
    pub keys: u64,
}

/// What compaction and defragmentation would reclaim.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reclaim {
    /// The db's size (pgid * pageSize).
    pub db_size: u64,
    /// Stored revisions that a compaction at the head would delete.
    pub compaction_removes_revisions: u64,
    /// Their bytes.
    pub compaction_removes_bytes: u64,
    /// Bytes of pages that are free now.
    pub free_page_bytes: u64,
    /// Estimated size after compaction at the head and defragmentation.
    pub estimated_size_after: u64,
    /// `db_size - estimated_size_after`.
    pub reclaimable_bytes: u64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Head revision.
    pub revision: i64,
    /// Compact revision.
    pub compact_revision: i64,
    /// Distinct keys stored.
    pub keys: u64,
    /// Keys alive at the head.
    pub live_keys: u64,
    /// Stored revisions.
    pub revisions: u64,
    /// Per prefix, largest stored bytes first.
    pub prefixes: Vec<PrefixStat>,
    /// Number of keys with 1, 2-5, 6-20, 21-100 and more than 100 stored revisions.
    pub revisions_per_key: BTreeMap<String, u64>,
    /// Keys with the most stored revisions.
    pub most_revisions: Vec<TopItem>,
    /// Largest values (any stored revision).
    pub largest_values: Vec<TopItem>,
    /// Longest keys.
    pub largest_keys: Vec<TopItem>,
    /// Leases with attached live keys.
    pub leases: Vec<LeaseStat>,
    /// Page use.
    pub free_pages: u64,
    /// Pages neither used nor free (only knowable with a stored freelist).
    pub leaked_pages: u64,
    /// Space a compaction at the head plus defragmentation would reclaim.
    pub reclaim: Reclaim,
}

/// The group a key is counted under, as a prefix of the key:
/// `/registry/<resource>/` (with the API group for custom resources, and
/// `services/specs|endpoints`), otherwise the first `depth` path segments. A
/// key no deeper than that is counted under its parent (or itself, with no '/').
pub fn group_of(key: &[u8], depth: usize) -> &[u8] {
    let lead = usize::from(key.first() == Some(&b'/'));
    let segs: Vec<&[u8]> = key[lead..].split(|&b| b == b'/').collect();
    let want = if segs.first() == Some(&b"registry".as_slice()) {
        let res = segs.get(1).copied().unwrap_or(b"");
        if res.contains(&b'.') || res == b"services" {
            3
        } else {
            2
        }
    } else {
        depth.max(1)
    };
    if segs.len() <= want {
        return match key.iter().rposition(|&b| b == b'/') {
            Some(i) => &key[..=i],
            None => key,
        };
    }
    let len: usize = lead + segs[..want].iter().map(|s| s.len() + 1).sum::<usize>();
    &key[..len]
}

fn bucket_label(n: usize) -> &'static str {
    match n {
        0..=1 => "1",
        2..=5 => "2-5",
        6..=20 => "6-20",
        21..=100 => "21-100",
        _ => "over 100",
    }
}

/// Offers an item of measure `size` to a top-`n` heap; the item (and its
/// key text) is only made when it gets in.
fn push_top(heap: &mut BinaryHeap<Reverse<TopItem>>, n: usize, size: u64, make: impl FnOnce() -> TopItem) {
    if n == 0 {
        return;
    }
    if heap.len() < n {
        heap.push(Reverse(make()));
    } else if heap.peek().is_some_and(|m| size >= m.0.size) {
        let item = make();
        if item > heap.peek().expect("full heap").0 {
            heap.pop();
            heap.push(Reverse(item));
        }
    }
}

fn sorted(heap: BinaryHeap<Reverse<TopItem>>) -> Vec<TopItem> {
    let mut v: Vec<TopItem> = heap.into_iter().map(|r| r.0).collect();
    v.sort_by(|a, b| b.cmp(a));
    v
}

/// The leases, with how many live keys each holds, most first.
fn lease_stats(report: &DbReport, lease_keys: &BTreeMap<i64, u64>) -> Vec<LeaseStat> {
    let mut leases: Vec<LeaseStat> = report
        .leases
        .iter()
        .map(|l| LeaseStat {
            id: format!("{:x}", l.id),
            ttl: l.ttl,
            keys: lease_keys.get(&l.id).copied().unwrap_or(0),
        })
        .collect();
    leases.sort_by(|a, b| b.keys.cmp(&a.keys).then(a.id.cmp(&b.id)));
    leases
}

/// The db's size after a compaction at the head and a defrag: the live
/// revisions (`live_bytes`) and the other buckets at bbolt's fill, plus
/// branch and meta pages; never more than the db is now.
fn size_after_defrag(live_bytes: u64, report: &DbReport) -> u64 {
    let page = report.pages.page_size.max(1);
    let db_size = report.total_size;
    // Everything outside the `key` bucket stays (a rough 64 bytes per entry:
    // those buckets hold small records).
    let other_bytes = report
        .buckets
        .iter()
        .filter(|b| b.name != "key")
        .map(|b| b.keys * 64)
        .sum::<u64>();
    let data = (live_bytes + other_bytes) as f64 / DEFRAG_FILL;
    // Two meta pages, a freelist-less root, branch pages (~1% of leaves), rounded to pages.
    let pages_after = (data / page as f64).ceil() as u64;
    let estimated = (pages_after + pages_after / 100 + 4) * page;
    if db_size > 0 {
        estimated.min(db_size)
    } else {
        estimated
    }
}

/// Computes the statistics from a full index and the db scan.
pub fn compute(index: &KeyIndex<'_>, report: &DbReport, opts: StatsOptions) -> Result<Stats, KvError> {
    let head = index.head;
    let mut prefixes: BTreeMap<Vec<u8>, PrefixStat> = BTreeMap::new();
    let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
    let (mut most, mut values, mut keys) = (BinaryHeap::new(), BinaryHeap::new(), BinaryHeap::new());
    let mut lease_keys: BTreeMap<i64, u64> = BTreeMap::new();
    let (mut live_keys, mut live_bytes, mut removed_revs, mut removed_bytes) = (0u64, 0u64, 0u64, 0u64);
    for (key, revs) in index.iter() {
        let group = group_of(key, opts.depth);
        if !prefixes.contains_key(group) {
            let st = PrefixStat {
                prefix: String::from_utf8_lossy(group).into_owned(),
                ..PrefixStat::default()
            };
            prefixes.insert(group.to_vec(), st);
        }
        let st = prefixes.get_mut(group).expect("inserted above");
        let shown = || String::from_utf8_lossy(key).into_owned();
        let current = live(revs, head);
        for r in revs {
            let kv = r.kv()?;
            let bytes = PER_REVISION_OVERHEAD + r.raw.len() as u64;
            st.revisions += 1;
            st.stored_bytes += bytes;
            if current.is_none_or(|c| c.rev != r.rev) {
                removed_revs += 1;
                removed_bytes += bytes;
            }
            if !r.tombstone {
                let size = kv.value.len() as u64;
                push_top(&mut values, opts.top, size, || TopItem {
                    size,
                    key: shown(),
                    revision: r.rev.main,
                });
            }
        }
        if let Some(c) = current {
            let kv = c.kv()?;
            live_keys += 1;
            live_bytes += PER_REVISION_OVERHEAD + c.raw.len() as u64;
            st.live_keys += 1;
            st.live_value_bytes += kv.value.len() as u64;
            if kv.lease != 0 {
                *lease_keys.entry(kv.lease).or_default() += 1;
            }
        }
        *per_key.entry(bucket_label(revs.len()).to_string()).or_default() += 1;
        let last = revs.last().map_or(0, |r| r.rev.main);
        push_top(&mut most, opts.top, revs.len() as u64, || TopItem {
            size: revs.len() as u64,
            key: shown(),
            revision: last,
        });
        push_top(&mut keys, opts.top, key.len() as u64, || TopItem {
            size: key.len() as u64,
            key: shown(),
            revision: last,
        });
    }
    let mut prefixes: Vec<PrefixStat> = prefixes.into_values().collect();
    prefixes.sort_by(|a, b| b.stored_bytes.cmp(&a.stored_bytes).then(a.prefix.cmp(&b.prefix)));
    let leases = lease_stats(report, &lease_keys);
    let page = report.pages.page_size.max(1);
    let db_size = report.total_size;
    let estimated = size_after_defrag(live_bytes, report);
    Ok(Stats {
        revision: head,
        compact_revision: index.compact,
        keys: index.key_count() as u64,
        live_keys,
        revisions: index.revision_count() as u64,
        prefixes,
        revisions_per_key: per_key,
        most_revisions: sorted(most),
        largest_values: sorted(values),
        largest_keys: sorted(keys),
        leases,
        free_pages: report.pages.free,
        leaked_pages: report.pages.leaked,
        reclaim: Reclaim {
            db_size,
            compaction_removes_revisions: removed_revs,
            compaction_removes_bytes: removed_bytes,
            free_page_bytes: report.pages.free * page,
            estimated_size_after: estimated,
            reclaimable_bytes: db_size.saturating_sub(estimated),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::group_of;

    fn g(k: &[u8], d: usize) -> String {
        String::from_utf8_lossy(group_of(k, d)).into_owned()
    }

    #[test]
    fn kubernetes_aware_groups() {
        let group_of = g;
        assert_eq!(group_of(b"/registry/pods/default/web-1", 2), "/registry/pods/");
        assert_eq!(
            group_of(b"/registry/services/specs/default/kube", 2),
            "/registry/services/specs/"
        );
        assert_eq!(
            group_of(b"/registry/apiextensions.k8s.io/customresourcedefinitions/x.y", 2),
            "/registry/apiextensions.k8s.io/customresourcedefinitions/"
        );
        assert_eq!(
            group_of(b"/registry/example.com/widgets/ns/w1", 2),
            "/registry/example.com/widgets/"
        );
        assert_eq!(
            group_of(b"/registry/namespaces/default", 2),
            "/registry/namespaces/"
        );
        assert_eq!(group_of(b"/demo/items/item-0001", 2), "/demo/items/");
        assert_eq!(group_of(b"/demo/counter", 2), "/demo/");
        assert_eq!(group_of(b"compact_rev_key", 2), "compact_rev_key");
        assert_eq!(group_of(b"/a/b/c/d", 1), "/a/");
        assert_eq!(group_of(b"a/b/c", 1), "a/");
        assert_eq!(group_of(b"/", 2), "/");
        assert_eq!(group_of(b"", 2), "");
    }
}
