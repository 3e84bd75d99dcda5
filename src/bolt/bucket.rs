//! Buckets and cursors.
//!
//! A bucket value (a leaf element with the bucket flag) starts with a 16-byte
//! header:
//!
//! ```text
//! offset  size  field
//!      0     8  root      pgid of the bucket's root page; 0 = inline bucket
//!      8     8  sequence
//!     16        inline buckets only: a leaf page image (header, elements, data)
//! ```
//!
//! A cursor keeps a stack of (node, index) from the bucket root to a leaf; its
//! depth is limited, so a loop in branch pointers becomes an error.

use super::bytes::le_u64;
use super::error::{Error, NodeLoc, show_key};
use super::node::{LeafElem, Node};
use super::page::Pgid;
use super::{Db, MAX_TREE_DEPTH};

/// Size of the bucket header in a bucket value.
pub const BUCKET_HEADER_SIZE: usize = 16;

/// Where a bucket's tree starts.
#[derive(Clone, Copy, Debug)]
pub enum BucketRoot<'a> {
    /// A regular bucket rooted at a page.
    Page(Pgid),
    /// An inline bucket: a single leaf stored in the parent's value.
    Inline(Node<'a>),
}

/// A bucket: a B+tree of keys and values (or nested buckets).
#[derive(Clone, Copy, Debug)]
pub struct Bucket<'a> {
    db: Db<'a>,
    root: BucketRoot<'a>,
    sequence: u64,
}

impl<'a> Bucket<'a> {
    pub(crate) fn page_root(db: Db<'a>, root: Pgid) -> Bucket<'a> {
        Bucket {
            db,
            root: BucketRoot::Page(root),
            sequence: db.meta().sequence,
        }
    }

    /// Opens the bucket stored in element `index` of node `parent`.
    pub fn from_elem(
        db: Db<'a>,
        parent: &Node<'a>,
        index: usize,
        elem: &LeafElem<'a>,
    ) -> Result<Bucket<'a>, Error> {
        let bad = |why: String| Error::BadBucket {
            loc: parent.loc,
            index: index as u16,
            offset: parent.elem_file_offset(index),
            name: show_key(elem.key),
            why,
        };
        let v = elem.value;
        if v.len() < BUCKET_HEADER_SIZE {
            return Err(bad(format!(
                "{} bytes, shorter than the 16-byte bucket header",
                v.len()
            )));
        }
        let root = le_u64(v, 0).unwrap_or(0);
        let sequence = le_u64(v, 8).unwrap_or(0);
        if root != 0 {
            return Ok(Bucket {
                db,
                root: BucketRoot::Page(Pgid(root)),
                sequence,
            });
        }
        let image = &v[BUCKET_HEADER_SIZE..];
        let offset = (image.as_ptr() as usize).wrapping_sub(db.data().as_ptr() as usize) as u64;
        let loc = NodeLoc::Inline {
            pgid: parent.loc.pgid(),
            elem: index as u16,
        };
        let node = Node::parse(loc, offset, image).map_err(|e| bad(format!("inline bucket: {e}")))?;
        if node.is_branch() {
            return Err(bad("inline bucket image is a branch page, not a leaf".into()));
        }
        Ok(Bucket {
            db,
            root: BucketRoot::Inline(node),
            sequence,
        })
    }

    /// Where this bucket's tree starts.
    pub fn root(&self) -> BucketRoot<'a> {
        self.root
    }

    /// The bucket's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The database this bucket belongs to.
    pub fn db(&self) -> Db<'a> {
        self.db
    }

    /// The root node of the bucket.
    pub fn root_node(&self) -> Result<Node<'a>, Error> {
        match self.root {
            BucketRoot::Page(p) => self.db.node(p),
            BucketRoot::Inline(n) => Ok(n),
        }
    }

    /// A cursor over this bucket.
    pub fn cursor(&self) -> Cursor<'a> {
        Cursor {
            bucket: *self,
            stack: Vec::new(),
            visited: None,
            last_key: None,
            skipped: 0,
        }
    }

    /// Iterates over all elements in key order. After an error the iterator ends.
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            cursor: self.cursor(),
            started: false,
            done: false,
        }
    }

    /// Looks up `key`; returns the element (which may be a nested bucket).
    pub fn get(&self, key: &[u8]) -> Result<Option<LeafElem<'a>>, Error> {
        let mut c = self.cursor();
        Ok(c.seek(key)?.filter(|e| e.key == key))
    }

    /// Opens the nested bucket `name`, if present.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>, Error> {
        let mut c = self.cursor();
        match c.seek(name)? {
            Some(e) if e.key == name && e.is_bucket() => {
                let (node, idx) = *c.stack.last().expect("cursor positioned");
                Bucket::from_elem(self.db, &node, idx, &e).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// A position in a bucket: a stack from the root to a leaf element.
///
/// Walking forward (`first`, `next_elem`) visits each page at most once and
/// yields keys in strictly ascending order, whatever the file says: a
/// branch element leading to a page already visited (a shared child or a
/// cycle) is skipped, and so is a leaf element whose key does not ascend.
/// Time and memory stay linear in the file's size on any tree shape;
/// [`Cursor::skipped`] counts what was left out. (The structure checks of
/// `bolt::walk` report these as findings.)
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    bucket: Bucket<'a>,
    stack: Vec<(Node<'a>, usize)>,
    /// Pages entered so far walking forward, one bit per page of the file
    /// (made at the first forward move).
    visited: Option<Vec<u64>>,
    /// The last key yielded walking forward.
    last_key: Option<&'a [u8]>,
    /// Subtrees and elements skipped.
    skipped: u64,
}

impl<'a> Cursor<'a> {
    /// Marks the page of `node` visited; `false` if it was already.
    fn enter(&mut self, node: &Node<'a>) -> bool {
        let (Some(v), super::NodeLoc::Page { pgid }) = (self.visited.as_mut(), node.loc) else {
            return true;
        };
        let Some(word) = v.get_mut((pgid.0 / 64) as usize) else {
            return true;
        };
        let bit = 1u64 << (pgid.0 % 64);
        let fresh = *word & bit == 0;
        *word |= bit;
        fresh
    }

    /// Starts the visited set (walking forward), with the pages on the stack.
    fn track(&mut self) {
        if self.visited.is_some() {
            return;
        }
        let words = self.bucket.db.file_pages().div_ceil(64) as usize;
        self.visited = Some(vec![0u64; words]);
        for (node, _) in self.stack.clone() {
            self.enter(&node);
        }
    }

    fn push(&mut self, node: Node<'a>, index: usize) -> Result<(), Error> {
        if self.stack.len() >= MAX_TREE_DEPTH {
            return Err(Error::TooDeep {
                loc: node.loc,
                limit: MAX_TREE_DEPTH,
            });
        }
        if node.is_branch() && node.count() == 0 {
            return Err(Error::EmptyNode {
                loc: node.loc,
                offset: node.offset,
                kind: super::PageKind::Branch,
            });
        }
        self.stack.push((node, index));
        Ok(())
    }

    /// Descends from the top of the stack to a leaf, taking the first (or
    /// last) child at every branch. `false` when a child was visited
    /// already (the stack then ends at its parent).
    fn descend(&mut self, last: bool) -> Result<bool, Error> {
        loop {
            let (node, idx) = *self.stack.last().expect("non-empty stack");
            if !node.is_branch() {
                return Ok(true);
            }
            let child = self.bucket.db.node(node.branch(idx)?.child)?;
            if !self.enter(&child) {
                return Ok(false);
            }
            let start = if last { child.count().saturating_sub(1) } else { 0 };
            self.push(child, start)?;
        }
    }

    /// The element under the cursor, or `None` when the leaf index is past its end.
    fn current(&self) -> Result<Option<LeafElem<'a>>, Error> {
        match self.stack.last() {
            Some((node, idx)) if *idx < node.count() => node.leaf(*idx).map(Some),
            _ => Ok(None),
        }
    }

    /// After a forward move: descends to a leaf and returns the element
    /// there if it may be yielded (`None`: skip on).
    fn settle(&mut self) -> Result<Option<LeafElem<'a>>, Error> {
        if !self.descend(false)? {
            self.skipped += 1;
            return Ok(None);
        }
        match self.current()? {
            Some(e) if self.last_key.is_none_or(|k| e.key > k) => {
                self.last_key = Some(e.key);
                Ok(Some(e))
            }
            Some(_) => {
                self.skipped += 1;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Subtrees (a branch element to a page already visited) and elements
    /// (a key not above the previous one) skipped walking forward.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Moves to the first element.
    pub fn first(&mut self) -> Result<Option<LeafElem<'a>>, Error> {
        self.stack.clear();
        self.visited = None;
        self.last_key = None;
        self.track();
        let root = self.bucket.root_node()?;
        self.enter(&root);
        self.push(root, 0)?;
        match self.settle()? {
            Some(e) => Ok(Some(e)),
            None => self.next_elem(),
        }
    }

    /// Moves to the last element.
    pub fn last(&mut self) -> Result<Option<LeafElem<'a>>, Error> {
        self.stack.clear();
        self.visited = None;
        self.last_key = None;
        let root = self.bucket.root_node()?;
        let start = root.count().saturating_sub(1);
        self.push(root, start)?;
        self.descend(true)?;
        // Only an empty root leaf has no element here.
        self.current()
    }

    /// Moves to the next element.
    pub fn next_elem(&mut self) -> Result<Option<LeafElem<'a>>, Error> {
        self.track();
        loop {
            // Pop exhausted levels, then advance the deepest level that can.
            loop {
                match self.stack.last_mut() {
                    None => return Ok(None),
                    Some((node, idx)) if *idx + 1 < node.count() => {
                        *idx += 1;
                        break;
                    }
                    Some(_) => {
                        self.stack.pop();
                    }
                }
            }
            if let Some(e) = self.settle()? {
                return Ok(Some(e));
            }
            // An empty leaf, a page seen before, or a key out of order: on.
        }
    }

    /// Moves to the first element whose key is >= `key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<LeafElem<'a>>, Error> {
        self.stack.clear();
        self.visited = None;
        self.last_key = None;
        let mut node = self.bucket.root_node()?;
        loop {
            if node.is_branch() {
                // The last element whose key is <= key (or the first).
                let idx = partition_point(&node, |k| k <= key)?.saturating_sub(1);
                self.push(node, idx)?;
                node = self.bucket.db.node(node.branch(idx)?.child)?;
            } else {
                let idx = partition_point(&node, |k| k < key)?;
                self.push(node, idx)?;
                break;
            }
        }
        match self.current()? {
            Some(e) => {
                self.last_key = Some(e.key);
                Ok(Some(e))
            }
            None => self.next_elem(),
        }
    }

    /// The node and index under the cursor (after a successful move).
    pub fn position(&self) -> Option<(Node<'a>, usize)> {
        self.stack.last().copied()
    }
}

/// Binary search over a node's keys: the number of leading elements for
/// which `pred(key)` holds (keys are sorted, so `pred` is a prefix property).
fn partition_point(node: &Node<'_>, mut pred: impl FnMut(&[u8]) -> bool) -> Result<usize, Error> {
    let (mut lo, mut hi) = (0usize, node.count());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(node.key(mid)?) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Iterator over a bucket's elements in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    cursor: Cursor<'a>,
    started: bool,
    done: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<LeafElem<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = if self.started {
            self.cursor.next_elem()
        } else {
            self.started = true;
            self.cursor.first()
        };
        match r {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
