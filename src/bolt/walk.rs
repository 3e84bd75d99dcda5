//! A tolerant walk over every bucket, page and element reachable from the
//! root, in key order.
//!
//! The walk checks structure as it goes (page bounds and ids, element bounds,
//! key order within and across pages, key ranges assigned by parents, pages
//! reached twice, depth) and hands every problem to the visitor, then skips
//! only the broken part: one bad page does not hide the rest of the tree.
//!
//! Visiting order is exactly the order of `Bucket.ForEach` nested in
//! `Cursor.First/Next` over the root: a bucket's name is visited, then all of
//! the bucket's elements, before the next bucket's name. etcd's snapshot hash
//! depends on that order.

use super::bucket::{Bucket, BucketRoot};
use super::error::{Error, NodeLoc, show_key};
use super::node::{BUCKET_LEAF_FLAG, LeafElem, Node};
use super::page::Pgid;
use super::{Db, MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

/// Callbacks of a walk. All methods have empty defaults.
pub trait Visitor<'a> {
    /// A page of the tree was reached for the first time and parsed as a node.
    fn page(&mut self, _node: &Node<'a>, _depth: usize) {}
    /// A leaf element, in key order within its bucket. `path` holds the names
    /// of the enclosing buckets (empty for the root bucket's own elements).
    fn entry(&mut self, _path: &[&'a [u8]], _node: &Node<'a>, _index: usize, _elem: &LeafElem<'a>) {}
    /// Entering a nested bucket whose name is the last element of `path`.
    fn enter_bucket(&mut self, _path: &[&'a [u8]], _bucket: &Bucket<'a>) {}
    /// Leaving the bucket whose name is the last element of `path`.
    fn leave_bucket(&mut self, _path: &[&'a [u8]]) {}
    /// A structural problem. The walk skips what it cannot read and goes on.
    fn problem(&mut self, _error: Error) {}
}

/// Counts gathered by a walk.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalkStats {
    /// Branch pages reached.
    pub branch_pages: u64,
    /// Leaf pages reached.
    pub leaf_pages: u64,
    /// Overflow pages (beyond the first page of a node).
    pub overflow_pages: u64,
    /// Buckets (including the root bucket).
    pub buckets: u64,
    /// Inline buckets among them.
    pub inline_buckets: u64,
    /// Leaf elements visited.
    pub entries: u64,
    /// Deepest tree level seen (root = 1).
    pub max_depth: u64,
    /// Problems reported.
    pub problems: u64,
}

/// A set of page ids, bounded by the number of pages the file really holds.
#[derive(Clone, Debug)]
pub struct PageSet {
    bits: Vec<u64>,
    len: u64,
}

impl PageSet {
    /// A set able to hold ids `0..len`.
    pub fn new(len: u64) -> PageSet {
        let words = usize::try_from(len.div_ceil(64)).expect("bounded by file size");
        PageSet {
            bits: vec![0; words],
            len,
        }
    }

    /// Capacity (ids `0..len`).
    pub fn capacity(&self) -> u64 {
        self.len
    }

    /// Whether `p` is in the set (false when out of range).
    pub fn contains(&self, p: u64) -> bool {
        p < self.len && self.bits[(p / 64) as usize] & (1 << (p % 64)) != 0
    }

    /// Adds `p`; returns whether it was already present. Out-of-range ids are ignored.
    pub fn insert(&mut self, p: u64) -> bool {
        if p >= self.len {
            return false;
        }
        let w = &mut self.bits[(p / 64) as usize];
        let had = *w & (1 << (p % 64)) != 0;
        *w |= 1 << (p % 64);
        had
    }

    /// Number of ids in the set.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The result of a walk: counts and the set of reachable pages.
#[derive(Clone, Debug)]
pub struct WalkOutcome {
    /// Counts.
    pub stats: WalkStats,
    /// Pages reached (meta pages 0 and 1 are not included).
    pub reachable: PageSet,
}

/// Walks the whole tree of `db` from the root bucket.
pub fn walk<'a, V: Visitor<'a>>(db: Db<'a>, visitor: &mut V) -> WalkOutcome {
    let pages = db.high_water().min(db.file_pages());
    crate::progress::begin("walking pages", pages.saturating_mul(db.page_size() as u64));
    let mut w = Walker {
        db,
        visitor,
        reachable: PageSet::new(pages),
        path: Vec::new(),
        stats: WalkStats::default(),
    };
    w.bucket(db.root());
    WalkOutcome {
        stats: w.stats,
        reachable: w.reachable,
    }
}

struct Walker<'a, 'v, V> {
    db: Db<'a>,
    visitor: &'v mut V,
    reachable: PageSet,
    path: Vec<&'a [u8]>,
    stats: WalkStats,
}

/// Key range a parent assigns to a child: `lower <= key < upper`.
#[derive(Clone, Copy)]
struct Range<'a> {
    lower: Option<&'a [u8]>,
    upper: Option<&'a [u8]>,
    parent: Option<Pgid>,
}

impl<'a> Range<'a> {
    fn contains(&self, k: &[u8]) -> bool {
        self.lower.is_none_or(|l| k >= l) && self.upper.is_none_or(|u| k < u)
    }

    fn describe(&self) -> String {
        let lo = self.lower.map(show_key).unwrap_or_else(|| "-inf".into());
        let hi = self.upper.map(show_key).unwrap_or_else(|| "+inf".into());
        format!("[{lo}, {hi})")
    }
}

impl<'a, V: Visitor<'a>> Walker<'a, '_, V> {
    fn problem(&mut self, e: Error) {
        self.stats.problems += 1;
        self.visitor.problem(e);
    }

    fn bucket(&mut self, b: Bucket<'a>) {
        self.stats.buckets += 1;
        let mut last = None;
        let all = Range {
            lower: None,
            upper: None,
            parent: None,
        };
        match b.root() {
            BucketRoot::Page(p) => self.page(p, None, all, 1, &mut last),
            BucketRoot::Inline(node) => {
                self.stats.inline_buckets += 1;
                self.node(node, all, 1, &mut last);
            }
        }
    }

    fn page(
        &mut self,
        pgid: Pgid,
        from: Option<NodeLoc>,
        range: Range<'a>,
        depth: usize,
        last: &mut Option<&'a [u8]>,
    ) {
        if depth > MAX_TREE_DEPTH {
            self.problem(Error::TooDeep {
                loc: from.unwrap_or(NodeLoc::Page { pgid }),
                limit: MAX_TREE_DEPTH,
            });
            return;
        }
        let (header, span) = match self.db.page(pgid) {
            Ok(x) => x,
            Err(e) => {
                self.reachable.insert(pgid.0);
                self.problem(e);
                return;
            }
        };
        crate::progress::advance((u64::from(header.overflow) + 1) * self.db.page_size() as u64);
        let mut first_seen_before = false;
        let mut overlap = false;
        for (i, p) in (pgid.0..=pgid.0 + u64::from(header.overflow)).enumerate() {
            if self.reachable.insert(p) {
                overlap = true;
                first_seen_before |= i == 0;
            }
        }
        if overlap {
            self.problem(Error::MultipleReferences {
                pgid,
                from: from.unwrap_or(NodeLoc::Page { pgid }),
            });
            if first_seen_before {
                return;
            }
        }
        let offset = self.db.page_offset(pgid).unwrap_or(0);
        let node = match Node::parse(NodeLoc::Page { pgid }, offset, span) {
            Ok(n) => n,
            Err(e) => {
                self.problem(e);
                return;
            }
        };
        self.stats.overflow_pages += u64::from(header.overflow);
        if node.is_branch() {
            self.stats.branch_pages += 1;
        } else {
            self.stats.leaf_pages += 1;
        }
        self.stats.max_depth = self.stats.max_depth.max(depth as u64);
        self.visitor.page(&node, depth);
        self.node(node, range, depth, last);
    }

    fn node(&mut self, node: Node<'a>, range: Range<'a>, depth: usize, last: &mut Option<&'a [u8]>) {
        if node.is_branch() {
            self.branch(node, range, depth, last);
        } else {
            self.leaf(node, range, last);
        }
    }

    /// Checks a key: non-empty, above `prev`, and (with `range`) inside the
    /// range the parent assigns.
    fn check_key(
        &mut self,
        node: &Node<'a>,
        i: usize,
        key: &'a [u8],
        prev: Option<&'a [u8]>,
        range: Option<&Range<'a>>,
    ) {
        let offset = node.elem_file_offset(i);
        if key.is_empty() {
            self.problem(Error::EmptyKey {
                loc: node.loc,
                index: i as u16,
                offset,
            });
        }
        if let Some(p) = prev
            && key <= p
        {
            self.problem(Error::KeyOrder {
                loc: node.loc,
                index: i as u16,
                offset,
                key: show_key(key),
                prev: show_key(p),
            });
        }
        if let Some(range) = range
            && !range.contains(key)
        {
            self.problem(Error::KeyOutsideParent {
                loc: node.loc,
                index: i as u16,
                offset,
                key: show_key(key),
                parent: range.parent.unwrap_or(Pgid(0)),
                range: range.describe(),
            });
        }
    }

    fn branch(&mut self, node: Node<'a>, range: Range<'a>, depth: usize, last: &mut Option<&'a [u8]>) {
        if node.count() == 0 {
            self.problem(Error::EmptyNode {
                loc: node.loc,
                offset: node.offset,
                kind: super::PageKind::Branch,
            });
            return;
        }
        let mut prev: Option<&'a [u8]> = None;
        for i in 0..node.count() {
            let e = match node.branch(i) {
                Ok(e) => e,
                Err(err) => {
                    self.problem(err);
                    continue;
                }
            };
            self.check_key(&node, i, e.key, prev, Some(&range));
            prev = Some(e.key);
            let upper = if i + 1 < node.count() {
                node.key(i + 1).ok().or(range.upper)
            } else {
                range.upper
            };
            let child_range = Range {
                lower: Some(e.key),
                upper,
                parent: Some(node.loc.pgid()),
            };
            self.page(e.child, Some(node.loc), child_range, depth + 1, last);
        }
    }

    fn leaf(&mut self, node: Node<'a>, range: Range<'a>, last: &mut Option<&'a [u8]>) {
        for i in 0..node.count() {
            let e = match node.leaf(i) {
                Ok(e) => e,
                Err(err) => {
                    self.problem(err);
                    continue;
                }
            };
            // Keys rise strictly through the leaf (checked against `last`), so
            // the first and last key inside the parent's range puts all of
            // them inside it.
            let ends = i == 0 || i + 1 == node.count();
            self.check_key(&node, i, e.key, *last, ends.then_some(&range));
            if e.flags & !BUCKET_LEAF_FLAG != 0 {
                self.problem(Error::ElementFlags {
                    loc: node.loc,
                    index: i as u16,
                    offset: node.elem_file_offset(i),
                    flags: e.flags,
                });
            }
            *last = Some(e.key);
            self.stats.entries += 1;
            self.visitor.entry(&self.path, &node, i, &e);
            if e.is_bucket() {
                if self.path.len() >= MAX_BUCKET_DEPTH {
                    self.problem(Error::BucketsTooDeep {
                        loc: node.loc,
                        limit: MAX_BUCKET_DEPTH,
                    });
                    continue;
                }
                match Bucket::from_elem(self.db, &node, i, &e) {
                    Ok(b) => {
                        self.path.push(e.key);
                        self.visitor.enter_bucket(&self.path, &b);
                        self.bucket(b);
                        self.visitor.leave_bucket(&self.path);
                        self.path.pop();
                    }
                    Err(err) => self.problem(err),
                }
            }
        }
    }
}
