//! The live tree, read without trusting it: every page it reaches is read
//! tolerantly (see `page`), every page it points at that cannot be read is
//! recorded with the bucket and the key range its parent gives it, so that
//! copies found elsewhere are used for exactly that range and nothing else.

use std::collections::{BTreeMap, HashSet};

use super::page::{self, Content, Elem};
use crate::bolt::bytes::le_u64;
use crate::bolt::node::NodeKind;
use crate::bolt::{Node, NodeLoc, Pgid};
use crate::mvcc::kv::KeyValueRef;
use crate::mvcc::revision::RevKey;
use crate::mvcc::schema::{self, MetaInfo};

/// bbolt's bucket header: root page id and sequence, then an inline image.
const BUCKET_HEADER: usize = 16;
/// bbolt's `MaxKeySize`.
const MAX_KEY_SIZE: usize = 32768;
/// Deeper than any real bbolt tree.
const MAX_DEPTH: usize = 32;

/// A branch page's elements: each child's first key and page.
type Children = Vec<(Vec<u8>, u64)>;

/// Records by bucket name, then key.
pub(super) type Buckets = BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A page the tree points at that could not be read.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreadable {
    /// The page.
    pub pgid: u64,
    /// The bucket it belongs to (`(root)` for the root page).
    pub bucket: String,
    /// The first key its parent gives it (hex of a revision key for `key`).
    #[serde(skip)]
    pub from: Option<Vec<u8>>,
    /// The first key of its right sibling: its keys are below it.
    #[serde(skip)]
    pub to: Option<Vec<u8>>,
    /// The element count its header still gives, when the header names it.
    pub elements: Option<u16>,
    /// Why it could not be read.
    pub why: String,
}

impl Unreadable {
    /// Whether `key` lies in the range this page held.
    pub fn covers(&self, key: &[u8]) -> bool {
        self.from.as_deref().is_none_or(|f| f <= key) && self.to.as_deref().is_none_or(|t| key < t)
    }

    /// The records of `map` in the range this page held.
    pub(super) fn records_in<'m, V>(
        &self,
        map: &'m BTreeMap<Vec<u8>, V>,
    ) -> std::collections::btree_map::Range<'m, Vec<u8>, V> {
        use std::ops::Bound;
        let lo = self.from.as_ref().map_or(Bound::Unbounded, Bound::Included);
        let hi = self.to.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
        map.range::<Vec<u8>, _>((lo, hi))
    }
}

/// A page used although its header was damaged.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repaired {
    /// The page.
    pub pgid: u64,
    /// The bucket whose records it holds.
    pub bucket: String,
    /// The header fields that were wrong.
    pub repairs: Vec<String>,
    /// Why its contents were trusted.
    pub trusted_because: String,
}

/// What a walk of one tree found.
#[derive(Debug, Default)]
pub(super) struct Tree {
    /// The root page.
    pub root: u64,
    /// Records read from pages the tree reaches.
    pub records: Buckets,
    /// Buckets the root names.
    pub bucket_names: Vec<Vec<u8>>,
    /// Pages the tree points at that could not be read.
    pub unreadable: Vec<Unreadable>,
    /// Pages read despite a damaged header.
    pub repaired: Vec<Repaired>,
    /// Every page whose contents the tree used (with overflow pages).
    pub visited: HashSet<u64>,
    /// Only the key bucket's own tree (no root was found): every other
    /// bucket comes from wherever its records are.
    pub key_only: bool,
    /// Pages met so far, and those of them that read as branches.
    met: HashSet<u64>,
    branch_pages: HashSet<u64>,
}

impl Tree {
    /// Whether copies from elsewhere may stand in for this bucket's record
    /// `key`: the tree's page for it could not be read.
    pub fn lost_range_covers(&self, bucket: &[u8], key: &[u8]) -> bool {
        let root_lost = self.unreadable.iter().any(|u| u.bucket == "(root)");
        root_lost
            || (self.key_only && bucket != b"key")
            || self
                .unreadable
                .iter()
                .any(|u| u.bucket.as_bytes() == bucket && u.covers(key))
    }
}

/// Whether `key`/`value` is a record of etcd's bucket `bucket`. Buckets etcd
/// does not have accept anything.
pub(super) fn fits(bucket: &[u8], e: &Elem) -> bool {
    // bbolt stores no empty key and none longer than its MaxKeySize.
    if e.flags & 1 != 0 || e.key.is_empty() || e.key.len() > MAX_KEY_SIZE {
        return false;
    }
    let (k, v) = (e.key.as_slice(), e.value.as_slice());
    match bucket {
        b"key" => RevKey::parse(k).is_ok_and(|rk| {
            KeyValueRef::decode(v)
                .is_ok_and(|kv| !kv.key.is_empty() && (rk.tombstone || kv.mod_revision == rk.rev.main))
        }),
        b"meta" => {
            let names: [&[u8]; 6] = [
                schema::meta_keys::CONSISTENT_INDEX,
                schema::meta_keys::TERM,
                schema::meta_keys::FINISHED_COMPACT_REV,
                schema::meta_keys::SCHEDULED_COMPACT_REV,
                schema::meta_keys::CONF_STATE,
                schema::meta_keys::STORAGE_VERSION,
            ];
            names.contains(&k) && MetaInfo::default().apply(k, v).is_ok()
        }
        b"members" => schema::decode_member(k, v).is_ok(),
        b"members_removed" => v == b"removed" && schema::decode_removed_member(k).is_ok(),
        b"lease" => k.len() == 8 && schema::decode_lease(k, v).is_ok(),
        b"auth" => matches!(k, b"authEnabled" | b"authRevision"),
        b"authUsers" => schema::decode_user(k, v).is_ok(),
        b"authRoles" => schema::decode_role(k, v).is_ok(),
        b"cluster" => matches!(k, b"clusterVersion" | b"downgrade"),
        b"alarm" => v.is_empty() && schema::decode_alarm(k).is_ok(),
        _ => true,
    }
}

/// Which etcd bucket a leaf's elements all belong to.
pub(super) fn classify(elems: &[Elem]) -> Option<&'static [u8]> {
    if elems.is_empty() {
        return None;
    }
    const ORDER: [&[u8]; 10] = [
        b"key",
        b"meta",
        b"members",
        b"members_removed",
        b"lease",
        b"auth",
        b"authUsers",
        b"authRoles",
        b"cluster",
        b"alarm",
    ];
    ORDER.into_iter().find(|b| elems.iter().all(|e| fits(b, e)))
}

/// Whether a leaf is a root bucket's page: every element an etcd bucket.
pub(super) fn is_root_leaf(elems: &[Elem]) -> bool {
    elems.len() >= 2
        && elems
            .iter()
            .all(|e| e.flags & 1 != 0 && schema::BUCKETS.contains(&e.key.as_slice()))
}

/// Walks the tree whose root is page `root`.
pub(super) fn walk(data: &[u8], ps: usize, root: u64) -> Tree {
    let mut t = Tree {
        root,
        ..Tree::default()
    };
    let root_elems = match t.root_elements(data, ps, root, 0) {
        Ok(e) => e,
        Err(why) => {
            // Nothing read on the way counts: the tree is as it started.
            t = Tree {
                root,
                ..Tree::default()
            };
            t.unreadable
                .push(unreadable(data, ps, root, "(root)", None, None, why));
            return t;
        }
    };
    for e in root_elems
        .iter()
        .filter(|e| e.flags & 1 != 0 && !e.key.is_empty() && e.key.len() <= MAX_KEY_SIZE)
    {
        t.bucket_names.push(e.key.clone());
        t.bucket(data, ps, root, e);
    }
    t.rename_damaged_names();
    for b in [b"key".as_slice(), b"meta"] {
        if !t.bucket_names.iter().any(|n| n == b) {
            let name = String::from_utf8_lossy(b).into_owned();
            let why = format!("the root page has no {name} bucket (etcd always has one)");
            t.unreadable.push(Unreadable {
                pgid: root,
                bucket: name,
                from: None,
                to: None,
                elements: None,
                why,
            });
        }
    }
    t
}

fn unreadable(
    data: &[u8],
    ps: usize,
    pgid: u64,
    bucket: &str,
    from: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
    why: String,
) -> Unreadable {
    Unreadable {
        pgid,
        bucket: bucket.to_string(),
        from,
        to,
        elements: page::stored_count(data, ps, pgid),
        why,
    }
}

impl Tree {
    /// A bucket whose name is not etcd's but whose records all are records
    /// of an etcd bucket the root lacks: its name is what was damaged.
    fn rename_damaged_names(&mut self) {
        let unknown: Vec<Vec<u8>> = self
            .bucket_names
            .iter()
            .filter(|n| !schema::BUCKETS.contains(&n.as_slice()))
            .cloned()
            .collect();
        for name in unknown {
            let Some(recs) = self.records.get(&name) else {
                continue;
            };
            let elems: Vec<Elem> = recs
                .iter()
                .map(|(k, v)| Elem {
                    flags: 0,
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect();
            let Some(real) = classify(&elems) else { continue };
            if self.bucket_names.iter().any(|n| n == real) {
                continue;
            }
            let n = elems.len();
            let recs = self.records.remove(&name).unwrap_or_default();
            self.records.insert(real.to_vec(), recs);
            self.bucket_names.retain(|b| *b != name);
            self.bucket_names.push(real.to_vec());
            let real = String::from_utf8_lossy(real).into_owned();
            self.repaired.push(Repaired {
                pgid: self.root,
                bucket: real.clone(),
                repairs: vec![format!(
                    "bucket name {:?} (read as {real:?})",
                    String::from_utf8_lossy(&name)
                )],
                trusted_because: format!(
                    "all {n} of its records decode as etcd {real} records, and the root has no {real} bucket"
                ),
            });
        }
    }

    /// The root bucket's elements: one leaf page, or (with small pages,
    /// where etcd's buckets do not fit one) a branch over leaves.
    fn root_elements(&mut self, data: &[u8], ps: usize, p: u64, depth: usize) -> Result<Vec<Elem>, String> {
        let leaf = page::read(data, ps, p, Some(NodeKind::Leaf));
        let as_leaf = |r: &page::Read| matches!(&r.content, Content::Leaf(e) if is_root_leaf(e) || (r.repairs.is_empty() && !e.is_empty()));
        let r = match leaf {
            Ok(r) if as_leaf(&r) => r,
            leaf => page::read(data, ps, p, None).or(leaf)?,
        };
        let is_leaf = as_leaf(&r);
        match r.content {
            Content::Leaf(e) if is_leaf => {
                self.visited.insert(p);
                if !r.repairs.is_empty() {
                    self.repaired.push(Repaired {
                        pgid: p,
                        bucket: "(root)".into(),
                        repairs: r.repairs,
                        trusted_because: "every element is one of etcd's buckets".into(),
                    });
                }
                Ok(e)
            }
            Content::Branch(children) if r.repairs.is_empty() && depth < 3 => {
                self.visited.insert(p);
                self.branch_pages.insert(p);
                let mut all = Vec::new();
                for (_, child) in children {
                    if self.visited.contains(&child) {
                        return Err(format!("the root's branch page {p} leads to page {child} twice"));
                    }
                    all.extend(self.root_elements(data, ps, child, depth + 1)?);
                }
                // A branch is taken for the root only when what it leads to
                // is etcd's buckets (a branch of the key bucket is not).
                if depth == 0 && !is_root_leaf(&all) {
                    return Err("a branch page whose leaves are not etcd's buckets".into());
                }
                Ok(all)
            }
            _ => Err("not a page of etcd's buckets".into()),
        }
    }

    fn was_branch(&self, p: u64) -> bool {
        self.branch_pages.contains(&p)
    }

    /// Reads one top-level bucket from its element in the root.
    fn bucket(&mut self, data: &[u8], ps: usize, root: u64, e: &Elem) {
        let name = String::from_utf8_lossy(&e.key).into_owned();
        let (Some(sub), Some(image)) = (le_u64(&e.value, 0), e.value.get(BUCKET_HEADER..)) else {
            return self.inline_lost(root, &name, "bucket header shorter than 16 bytes".into());
        };
        if sub != 0 {
            self.descend(data, ps, &e.key, sub, None, None, 0);
            return;
        }
        let loc = NodeLoc::Inline {
            pgid: Pgid(root),
            elem: 0,
        };
        let elems = Node::parse(loc, 0, image).and_then(|n| {
            (0..n.count())
                .map(|i| {
                    n.leaf(i).map(|l| Elem {
                        flags: l.flags,
                        key: l.key.to_vec(),
                        value: l.value.to_vec(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        });
        match elems {
            Ok(elems) if elems.iter().all(|x| fits(&e.key, x)) => self.take(&e.key, elems),
            Ok(_) => self.inline_lost(
                root,
                &name,
                format!("the inline {name} bucket holds records that are not etcd's {name} records"),
            ),
            Err(err) => self.inline_lost(root, &name, format!("inline bucket: {err}")),
        }
    }

    /// A bucket inline in the root that cannot be read: all its records.
    fn inline_lost(&mut self, root: u64, name: &str, why: String) {
        self.unreadable.push(Unreadable {
            pgid: root,
            bucket: name.to_string(),
            from: None,
            to: None,
            elements: None,
            why,
        });
    }

    fn take(&mut self, bucket: &[u8], elems: Vec<Elem>) {
        let out = self.records.entry(bucket.to_vec()).or_default();
        for e in elems {
            out.insert(e.key, e.value);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn descend(
        &mut self,
        data: &[u8],
        ps: usize,
        bucket: &[u8],
        p: u64,
        from: Option<Vec<u8>>,
        to: Option<Vec<u8>>,
        depth: usize,
    ) {
        let name = String::from_utf8_lossy(bucket).into_owned();
        // A page already used holds another range; a branch met twice is a
        // cycle or a shared subtree. A leaf that did not fit one range may
        // still be the right page for another: it is tried again.
        if depth > MAX_DEPTH || self.visited.contains(&p) || !self.met.insert(p) && self.was_branch(p) {
            let why = format!(
                "page {p} is reached twice or the tree is deeper than {MAX_DEPTH} levels (a cycle or overlapping pages)"
            );
            self.unreadable
                .push(unreadable(data, ps, p, &name, from, to, why));
            return;
        }
        let r = match page::read(data, ps, p, None) {
            Ok(r) => r,
            Err(why) => {
                self.unreadable
                    .push(unreadable(data, ps, p, &name, from, to, why));
                return;
            }
        };
        let in_range =
            |k: &[u8]| from.as_deref().is_none_or(|f| f <= k) && to.as_deref().is_none_or(|t| k < t);
        match r.content {
            Content::Branch(children) => {
                self.branch_pages.insert(p);
                if !children.iter().all(|(k, _)| in_range(k)) {
                    let why = format!("branch page {p} holds keys outside the range its parent gives it");
                    self.unreadable
                        .push(unreadable(data, ps, p, &name, from, to, why));
                    return;
                }
                self.visited.insert(p);
                if !r.repairs.is_empty() {
                    self.repaired.push(Repaired {
                        pgid: p,
                        bucket: name.clone(),
                        repairs: r.repairs,
                        trusted_because: format!(
                            "{} child page ids inside the file, keys ascending and inside the parent's range",
                            children.len()
                        ),
                    });
                }
                for (i, (k, child)) in children.iter().enumerate() {
                    let lo = if i == 0 { from.clone() } else { Some(k.clone()) };
                    let hi = children.get(i + 1).map(|(k, _)| k.clone()).or_else(|| to.clone());
                    self.descend(data, ps, bucket, *child, lo, hi, depth + 1);
                }
            }
            Content::Leaf(elems) => {
                let ok = elems.iter().all(|e| fits(bucket, e) && in_range(&e.key));
                if !ok || (elems.is_empty() && !r.repairs.is_empty()) {
                    let why = format!(
                        "leaf page {p} holds records that are not this {name} bucket's (or keys outside its range)"
                    );
                    self.unreadable
                        .push(unreadable(data, ps, p, &name, from, to, why));
                    return;
                }
                self.visited.extend(p..p + r.span);
                if !r.repairs.is_empty() {
                    self.repaired.push(Repaired {
                        pgid: p,
                        bucket: name,
                        repairs: r.repairs,
                        trusted_because: format!("all {} elements decode as etcd {} records and lie inside the range the parent gives the page", elems.len(), String::from_utf8_lossy(bucket)),
                    });
                }
                self.take(bucket, elems);
            }
        }
    }
}

/// The newest root page in the file when no meta page names one: among
/// leaves that hold etcd's buckets, the one whose meta bucket has the
/// highest consistent index (then term). bbolt writes a new root with every
/// commit and etcd's consistent index only grows, so that is the last
/// commit still in the file.
pub(super) fn newest_root(data: &[u8], ps: usize, skip: Option<u64>) -> Option<(u64, u64)> {
    let pages = (data.len() / ps) as u64;
    let mut best: Option<((u64, u64), u64)> = None;
    for p in 2..pages {
        if Some(p) == skip {
            continue;
        }
        let Ok(r) = page::read(data, ps, p, Some(NodeKind::Leaf)) else {
            continue;
        };
        let Content::Leaf(elems) = r.content else { continue };
        if !is_root_leaf(&elems) {
            continue;
        }
        let score = elems
            .iter()
            .find(|e| e.key == b"meta")
            .and_then(|e| meta_of(data, ps, p, e))
            .map(|m| (m.consistent_index.unwrap_or(0), m.term.unwrap_or(0)))
            .unwrap_or((0, 0));
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, p));
        }
    }
    best.map(|((ci, _), p)| (p, ci))
}

/// When no root page is left: the key bucket's own tree, from the branch
/// page of revision keys that no other such page points at and that
/// reaches the newest revisions (older copies of it reach fewer).
pub(super) fn key_tree(data: &[u8], ps: usize) -> Option<Tree> {
    let pages = (data.len() / ps) as u64;
    let mut cands: Vec<(u64, Children)> = Vec::new();
    for p in 2..pages {
        let Ok(r) = page::read(data, ps, p, Some(NodeKind::Branch)) else {
            continue;
        };
        if let Content::Branch(ch) = r.content
            && r.repairs.is_empty()
            && ch.iter().all(|(k, _)| RevKey::parse(k).is_ok())
        {
            cands.push((p, ch));
        }
    }
    let children: HashSet<u64> = cands.iter().flat_map(|(_, ch)| ch.iter().map(|c| c.1)).collect();
    let (top, _) = cands
        .iter()
        .filter(|(p, _)| !children.contains(p))
        .max_by(|a, b| {
            (a.1.last().map(|c| &c.0), a.1.len(), a.0).cmp(&(b.1.last().map(|c| &c.0), b.1.len(), b.0))
        })?;
    let mut t = Tree {
        root: *top,
        key_only: true,
        bucket_names: vec![b"key".to_vec()],
        ..Tree::default()
    };
    t.descend(data, ps, b"key", *top, None, None, 0);
    Some(t)
}

/// The meta bucket a root element leads to, if it can be read.
fn meta_of(data: &[u8], ps: usize, root: u64, e: &Elem) -> Option<MetaInfo> {
    let mut t = Tree::default();
    t.bucket(data, ps, root, e);
    t.records.get(b"meta".as_slice()).map(meta_info)
}

/// What a `meta` bucket's records say (malformed values are skipped).
pub(super) fn meta_info(recs: &BTreeMap<Vec<u8>, Vec<u8>>) -> MetaInfo {
    let mut m = MetaInfo::default();
    for (k, v) in recs {
        let _ = m.apply(k, v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::node::tests::leaf_image;

    #[test]
    fn a_root_with_short_bucket_headers_is_lost_not_a_panic() {
        let ps = 4096;
        let mut page = leaf_image(&[(1, b"key", &[1u8; 10]), (1, b"meta", &[0u8; 12])], ps);
        page[0..8].copy_from_slice(&2u64.to_le_bytes());
        let mut file = vec![0u8; 2 * ps];
        file.extend(page);
        let t = walk(&file, ps, 2);
        assert_eq!(t.unreadable.len(), 2, "{:?}", t.unreadable);
        assert!(t.unreadable.iter().all(|u| u.elements.is_none()));
    }
}
