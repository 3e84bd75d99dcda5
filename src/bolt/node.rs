//! Branch and leaf nodes: checked views over a page span (or an inline bucket
//! image) with fallible element accessors.
//!
//! Elements are 16-byte records right after the 16-byte header; element `i`
//! starts at node offset `16 + 16*i`. `pos` counts from the element itself.
//!
//! ```text
//! branch element:  pos u32 | ksize u32 | child pgid u64
//! leaf element:    flags u32 | pos u32 | ksize u32 | vsize u32
//! key  = node[elem + pos .. elem + pos + ksize]
//! value = node[elem + pos + ksize .. + vsize]          (leaf only)
//! ```
//!
//! A leaf element flag of 0x01 marks the value as a nested bucket.

use super::bytes::{le_u32, le_u64, slice};
use super::error::{Error, NodeLoc};
use super::page::{PAGE_HEADER_SIZE, PageHeader, PageKind, Pgid};

/// Size of one element record.
pub const ELEMENT_SIZE: usize = 16;
/// Leaf element flag: the value is a bucket.
pub const BUCKET_LEAF_FLAG: u32 = 0x01;

/// Branch or leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Interior node.
    Branch,
    /// Leaf node.
    Leaf,
}

/// A validated view of a node: the header parsed, the element table known to fit.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    /// Where the node is.
    pub loc: NodeLoc,
    /// File offset of the node's first byte (its header).
    pub offset: u64,
    /// The node's bytes: the page plus its overflow pages, or the inline image.
    pub data: &'a [u8],
    /// The parsed header.
    pub header: PageHeader,
    /// Branch or leaf.
    pub kind: NodeKind,
}

/// One element of a branch node.
#[derive(Clone, Copy, Debug)]
pub struct BranchElem<'a> {
    /// The first key of the child.
    pub key: &'a [u8],
    /// The child page.
    pub child: Pgid,
}

/// One element of a leaf node.
#[derive(Clone, Copy, Debug)]
pub struct LeafElem<'a> {
    /// Element flags.
    pub flags: u32,
    /// The key.
    pub key: &'a [u8],
    /// The value (a bucket header when `is_bucket`).
    pub value: &'a [u8],
}

impl LeafElem<'_> {
    /// Whether this element is a nested bucket.
    pub fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF_FLAG != 0
    }
}

impl<'a> Node<'a> {
    /// Parses the node header of `data` and checks that the element table fits.
    /// `data` must be the whole span (page plus overflow, or the inline image).
    pub fn parse(loc: NodeLoc, offset: u64, data: &'a [u8]) -> Result<Node<'a>, Error> {
        let header = PageHeader::parse(data).ok_or(Error::ElementTable {
            loc,
            offset,
            count: 0,
            need: PAGE_HEADER_SIZE as u64,
            have: data.len() as u64,
        })?;
        let kind = match header.kind() {
            PageKind::Branch => NodeKind::Branch,
            PageKind::Leaf => NodeKind::Leaf,
            found => {
                return Err(Error::WrongKind {
                    loc,
                    offset,
                    expected: "branch or leaf",
                    found,
                });
            }
        };
        let need = (PAGE_HEADER_SIZE + ELEMENT_SIZE * usize::from(header.count)) as u64;
        if need > data.len() as u64 {
            return Err(Error::ElementTable {
                loc,
                offset,
                count: header.count,
                need,
                have: data.len() as u64,
            });
        }
        Ok(Node {
            loc,
            offset,
            data,
            header,
            kind,
        })
    }

    /// Number of elements.
    pub fn count(&self) -> usize {
        usize::from(self.header.count)
    }

    /// Whether this is a branch node.
    pub fn is_branch(&self) -> bool {
        self.kind == NodeKind::Branch
    }

    /// Byte offset (within the node) of element `i`'s record.
    fn elem_off(i: usize) -> usize {
        PAGE_HEADER_SIZE + ELEMENT_SIZE * i
    }

    /// File offset of element `i`'s record, for messages.
    pub fn elem_file_offset(&self, i: usize) -> u64 {
        self.offset + Self::elem_off(i) as u64
    }

    fn bounds(&self, i: usize, what: &'static str, pos: u64, len: u64) -> Error {
        Error::ElementBounds {
            loc: self.loc,
            index: i as u16,
            offset: self.elem_file_offset(i),
            what,
            pos,
            len,
            span: self.data.len() as u64,
        }
    }

    /// Reads element `i` of a branch node. `i` must be < `count()`.
    pub fn branch(&self, i: usize) -> Result<BranchElem<'a>, Error> {
        debug_assert!(self.is_branch());
        let e = Self::elem_off(i);
        // The table was checked to fit in `parse`.
        let pos = le_u32(self.data, e).unwrap_or(0) as usize;
        let ksize = le_u32(self.data, e + 4).unwrap_or(0) as usize;
        let child = Pgid(le_u64(self.data, e + 8).unwrap_or(0));
        let key = e
            .checked_add(pos)
            .and_then(|start| slice(self.data, start, ksize))
            .ok_or_else(|| self.bounds(i, "key", pos as u64, ksize as u64))?;
        Ok(BranchElem { key, child })
    }

    /// Reads element `i` of a leaf node. `i` must be < `count()`.
    pub fn leaf(&self, i: usize) -> Result<LeafElem<'a>, Error> {
        debug_assert!(!self.is_branch());
        let e = Self::elem_off(i);
        let flags = le_u32(self.data, e).unwrap_or(0);
        let pos = le_u32(self.data, e + 4).unwrap_or(0) as usize;
        let ksize = le_u32(self.data, e + 8).unwrap_or(0) as usize;
        let vsize = le_u32(self.data, e + 12).unwrap_or(0) as usize;
        let kstart = e.checked_add(pos);
        let key = kstart
            .and_then(|s| slice(self.data, s, ksize))
            .ok_or_else(|| self.bounds(i, "key", pos as u64, ksize as u64))?;
        let vpos = pos.checked_add(ksize);
        let value = kstart
            .and_then(|s| s.checked_add(ksize))
            .and_then(|s| slice(self.data, s, vsize))
            .ok_or_else(|| self.bounds(i, "value", vpos.unwrap_or(usize::MAX) as u64, vsize as u64))?;
        Ok(LeafElem { flags, key, value })
    }

    /// The key of element `i`, for either kind.
    pub fn key(&self, i: usize) -> Result<&'a [u8], Error> {
        match self.kind {
            NodeKind::Branch => self.branch(i).map(|e| e.key),
            NodeKind::Leaf => self.leaf(i).map(|e| e.key),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a leaf node image holding `items` (flags, key, value).
    pub(crate) fn leaf_image(items: &[(u32, &[u8], &[u8])], size: usize) -> Vec<u8> {
        let mut p = vec![0u8; size];
        p[8..10].copy_from_slice(&2u16.to_le_bytes());
        p[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
        let mut data = PAGE_HEADER_SIZE + ELEMENT_SIZE * items.len();
        for (i, (flags, k, v)) in items.iter().enumerate() {
            let e = PAGE_HEADER_SIZE + ELEMENT_SIZE * i;
            p[e..e + 4].copy_from_slice(&flags.to_le_bytes());
            p[e + 4..e + 8].copy_from_slice(&((data - e) as u32).to_le_bytes());
            p[e + 8..e + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
            p[e + 12..e + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
            p[data..data + k.len()].copy_from_slice(k);
            data += k.len();
            p[data..data + v.len()].copy_from_slice(v);
            data += v.len();
        }
        p
    }

    #[test]
    fn reads_leaf_elements() {
        let img = leaf_image(&[(0, b"a", b"1"), (0, b"bb", b"22")], 256);
        let n = Node::parse(NodeLoc::Page { pgid: Pgid(3) }, 3 * 4096, &img).unwrap();
        assert_eq!(n.count(), 2);
        let e = n.leaf(1).unwrap();
        assert_eq!(e.key, b"bb");
        assert_eq!(e.value, b"22");
    }

    #[test]
    fn element_past_end_is_an_error_with_location() {
        let mut img = leaf_image(&[(0, b"a", b"1")], 64);
        img[16 + 12..16 + 16].copy_from_slice(&1000u32.to_le_bytes());
        let n = Node::parse(NodeLoc::Page { pgid: Pgid(7) }, 7 * 4096, &img).unwrap();
        let err = n.leaf(0).unwrap_err();
        assert_eq!(err.code(), "element-out-of-bounds");
        assert_eq!(err.pgid(), Some(Pgid(7)));
        assert_eq!(err.offset(), Some(7 * 4096 + 16));
    }

    #[test]
    fn huge_count_is_rejected_before_use() {
        let mut img = leaf_image(&[], 64);
        img[10..12].copy_from_slice(&0xffffu16.to_le_bytes());
        let err = Node::parse(NodeLoc::Page { pgid: Pgid(2) }, 8192, &img).unwrap_err();
        assert_eq!(err.code(), "element-table-overflow");
    }

    #[test]
    fn positions_near_u32_max_do_not_overflow() {
        let mut img = leaf_image(&[(0, b"a", b"1")], 64);
        img[16 + 4..16 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        img[16 + 8..16 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let n = Node::parse(NodeLoc::Page { pgid: Pgid(2) }, 0, &img).unwrap();
        assert!(n.leaf(0).is_err());
    }
}
