//! Errors of the bbolt reader. Every variant says where: page id, byte offset
//! in the file, element index.

use std::fmt;

use super::meta::NoValidMeta;
use super::page::{PageKind, Pgid};

/// Where a B+tree node lives: on its own page, or inline in a leaf element of
/// another page (a small bucket stored inside its parent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum NodeLoc {
    /// A real page.
    Page {
        /// The page id.
        pgid: Pgid,
    },
    /// An inline bucket: the value of element `elem` of page `pgid`.
    Inline {
        /// The page holding the element.
        pgid: Pgid,
        /// The element index in that page.
        elem: u16,
    },
}

impl NodeLoc {
    /// The real page this node is on (or inside).
    pub fn pgid(&self) -> Pgid {
        match *self {
            NodeLoc::Page { pgid } | NodeLoc::Inline { pgid, .. } => pgid,
        }
    }
}

impl fmt::Display for NodeLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeLoc::Page { pgid } => write!(f, "page {pgid}"),
            NodeLoc::Inline { pgid, elem } => {
                write!(f, "inline bucket in element {elem} of page {pgid}")
            }
        }
    }
}

/// An error reading a bbolt file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file has no bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// Neither meta page is valid.
    #[error(transparent)]
    NoValidMeta(#[from] NoValidMeta),
    /// A page (or its overflow) lies at or beyond the high-water mark.
    #[error(
        "page {pgid} (with {overflow} overflow pages) reaches past the high-water mark: the meta page says only pages 0..{hwm} are in use"
    )]
    BeyondHighWater {
        /// Page id.
        pgid: Pgid,
        /// Overflow count.
        overflow: u32,
        /// High-water mark from the meta page.
        hwm: u64,
    },
    /// A page lies beyond the end of the file.
    #[error(
        "page {pgid} at byte offset {offset} ({len} bytes) lies past the end of the file ({file_len} bytes): the file is truncated"
    )]
    BeyondEof {
        /// Page id.
        pgid: Pgid,
        /// Byte offset of the page.
        offset: u64,
        /// Length of the page span.
        len: u64,
        /// File length.
        file_len: u64,
    },
    /// The id stored in the page header is not the page's position.
    #[error("page {pgid} at byte offset {offset} carries page id {found} in its header")]
    IdMismatch {
        /// Page id (position).
        pgid: Pgid,
        /// Byte offset.
        offset: u64,
        /// The id found in the header.
        found: u64,
    },
    /// The page is not of the expected kind.
    #[error("{loc} at byte offset {offset}: expected a {expected} page, found {found}")]
    WrongKind {
        /// Location.
        loc: NodeLoc,
        /// Byte offset.
        offset: u64,
        /// What the caller needed.
        expected: &'static str,
        /// What the header says.
        found: PageKind,
    },
    /// The element table does not fit in the page.
    #[error("{loc} at byte offset {offset}: {count} elements need {need} bytes but the node has only {have}")]
    ElementTable {
        /// Location.
        loc: NodeLoc,
        /// Byte offset.
        offset: u64,
        /// Element count from the header.
        count: u16,
        /// Bytes the table needs.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// A key or value of an element lies outside its node.
    #[error(
        "{loc}, element {index} at byte offset {offset}: its {what} (relative position {pos}, {len} bytes) runs past the end of the node ({span} bytes)"
    )]
    ElementBounds {
        /// Location.
        loc: NodeLoc,
        /// Element index.
        index: u16,
        /// File offset of the element header.
        offset: u64,
        /// "key" or "value".
        what: &'static str,
        /// Position relative to the element.
        pos: u64,
        /// Length.
        len: u64,
        /// Node span in bytes.
        span: u64,
    },
    /// A node with no elements where elements are required.
    #[error("{loc} at byte offset {offset}: {kind} node has no elements")]
    EmptyNode {
        /// Location.
        loc: NodeLoc,
        /// Byte offset.
        offset: u64,
        /// Node kind.
        kind: PageKind,
    },
    /// A zero-length key.
    #[error("{loc}, element {index} at byte offset {offset}: empty key")]
    EmptyKey {
        /// Location.
        loc: NodeLoc,
        /// Element index.
        index: u16,
        /// File offset of the element header.
        offset: u64,
    },
    /// A leaf element with unknown flag bits.
    #[error("{loc}, element {index} at byte offset {offset}: unknown leaf flags 0x{flags:x}")]
    ElementFlags {
        /// Location.
        loc: NodeLoc,
        /// Element index.
        index: u16,
        /// File offset of the element header.
        offset: u64,
        /// Flags.
        flags: u32,
    },
    /// A bucket value that cannot be a bucket header.
    #[error("{loc}, element {index} at byte offset {offset}: bucket {name} has a bad value: {why}")]
    BadBucket {
        /// Location of the leaf holding the bucket.
        loc: NodeLoc,
        /// Element index.
        index: u16,
        /// File offset of the element header.
        offset: u64,
        /// Bucket name (lossy UTF-8).
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The tree is deeper than any real bbolt tree can be: the pointers loop.
    #[error(
        "{loc}: the tree is more than {limit} levels deep: branch pointers loop or the page is not what it claims"
    )]
    TooDeep {
        /// Where the limit was hit.
        loc: NodeLoc,
        /// The limit.
        limit: usize,
    },
    /// Buckets nested deeper than the limit.
    #[error("{loc}: buckets are nested more than {limit} levels deep")]
    BucketsTooDeep {
        /// Where the limit was hit.
        loc: NodeLoc,
        /// The limit.
        limit: usize,
    },
    /// Keys out of order.
    #[error(
        "{loc}, element {index} at byte offset {offset}: key {key} is not greater than the previous key {prev}"
    )]
    KeyOrder {
        /// Location.
        loc: NodeLoc,
        /// Element index.
        index: u16,
        /// File offset of the element header.
        offset: u64,
        /// Key (printable form).
        key: String,
        /// Previous key (printable form).
        prev: String,
    },
    /// A key outside the range its parent branch element assigns to it.
    #[error(
        "{loc}, element {index} at byte offset {offset}: key {key} lies outside the range its parent page {parent} assigns ({range})"
    )]
    KeyOutsideParent {
        /// Location.
        loc: NodeLoc,
        /// Element index.
        index: u16,
        /// File offset of the element header.
        offset: u64,
        /// Key (printable form).
        key: String,
        /// Parent page.
        parent: Pgid,
        /// Human form of the range.
        range: String,
    },
    /// A page referenced more than once.
    #[error("page {pgid} is referenced more than once (from {from}): pages overlap or a pointer is wrong")]
    MultipleReferences {
        /// Page id.
        pgid: Pgid,
        /// The referring node.
        from: NodeLoc,
    },
}

impl Error {
    /// A stable, kebab-case identifier for the kind of problem.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "file-empty",
            Error::NoValidMeta(_) => "no-valid-meta",
            Error::BeyondHighWater { .. } => "page-beyond-high-water-mark",
            Error::BeyondEof { .. } => "page-beyond-eof",
            Error::IdMismatch { .. } => "page-id-mismatch",
            Error::WrongKind { .. } => "page-wrong-type",
            Error::ElementTable { .. } => "element-table-overflow",
            Error::ElementBounds { .. } => "element-out-of-bounds",
            Error::EmptyNode { .. } => "empty-node",
            Error::EmptyKey { .. } => "empty-key",
            Error::ElementFlags { .. } => "element-flags",
            Error::BadBucket { .. } => "bad-bucket-header",
            Error::TooDeep { .. } => "tree-too-deep",
            Error::BucketsTooDeep { .. } => "buckets-too-deep",
            Error::KeyOrder { .. } => "key-order",
            Error::KeyOutsideParent { .. } => "key-outside-parent-range",
            Error::MultipleReferences { .. } => "page-multiple-references",
        }
    }

    /// This error as a finding, with its page and byte offset.
    pub fn finding(&self, severity: crate::report::Severity) -> crate::report::Finding {
        let mut f = crate::report::Finding::new(severity, self.code(), self.to_string());
        f.page = self.pgid().map(|p| p.0);
        f.offset = self.offset();
        f
    }

    /// The page the error is about, where there is one.
    pub fn pgid(&self) -> Option<Pgid> {
        match self {
            Error::Empty | Error::NoValidMeta(_) => None,
            Error::BeyondHighWater { pgid, .. }
            | Error::BeyondEof { pgid, .. }
            | Error::IdMismatch { pgid, .. }
            | Error::MultipleReferences { pgid, .. } => Some(*pgid),
            Error::WrongKind { loc, .. }
            | Error::ElementTable { loc, .. }
            | Error::ElementBounds { loc, .. }
            | Error::EmptyNode { loc, .. }
            | Error::EmptyKey { loc, .. }
            | Error::ElementFlags { loc, .. }
            | Error::BadBucket { loc, .. }
            | Error::TooDeep { loc, .. }
            | Error::BucketsTooDeep { loc, .. }
            | Error::KeyOrder { loc, .. }
            | Error::KeyOutsideParent { loc, .. } => Some(loc.pgid()),
        }
    }

    /// The byte offset in the file the error is about, where there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::BeyondEof { offset, .. }
            | Error::IdMismatch { offset, .. }
            | Error::WrongKind { offset, .. }
            | Error::ElementTable { offset, .. }
            | Error::ElementBounds { offset, .. }
            | Error::EmptyNode { offset, .. }
            | Error::EmptyKey { offset, .. }
            | Error::ElementFlags { offset, .. }
            | Error::BadBucket { offset, .. }
            | Error::KeyOrder { offset, .. }
            | Error::KeyOutsideParent { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// Renders a key for messages: printable ASCII as text, anything else as hex.
pub fn show_key(k: &[u8]) -> String {
    KeyDisplay(k).to_string()
}

/// A key formatted for messages only when displayed (printable ASCII as a
/// quoted string, anything else as hex; long keys shortened).
#[derive(Clone, Copy, Debug)]
pub struct KeyDisplay<'a>(pub &'a [u8]);

impl fmt::Display for KeyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        let k = self.0;
        let shown = &k[..k.len().min(MAX)];
        if shown.iter().all(|b| (0x20..0x7f).contains(b)) {
            write!(f, "{:?}", String::from_utf8_lossy(shown))?;
        } else {
            f.write_str("0x")?;
            for b in shown {
                write!(f, "{b:02x}")?;
            }
        }
        if k.len() > MAX {
            write!(f, "... ({} bytes)", k.len())?;
        }
        Ok(())
    }
}
