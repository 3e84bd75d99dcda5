//! Page ids and the 16-byte page header that starts every bbolt page.
//!
//! ```text
//! offset  size  field
//!      0     8  id        u64  the page's own position (pgid)
//!      8     2  flags     u16  branch 0x01, leaf 0x02, meta 0x04, freelist 0x10
//!     10     2  count     u16  number of elements (or freelist entries)
//!     12     4  overflow  u32  extra pages that follow this one
//!     16        elements / meta / freelist ids
//! ```
//!
//! All integers are little-endian (bbolt maps host structs onto the file; every
//! file we support was written on a little-endian host).

use std::fmt;

use super::bytes::{le_u16, le_u32, le_u64};

/// Size of the page header in bytes.
pub const PAGE_HEADER_SIZE: usize = 16;

/// A page id (bbolt's `pgid`): the page's position in the file, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Pgid(pub u64);

impl Pgid {
    /// The "no freelist" marker etcd writes into `meta.freelist`.
    pub const NONE: Pgid = Pgid(u64::MAX);
}

impl fmt::Display for Pgid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A transaction id from a meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Txid(pub u64);

impl fmt::Display for Txid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kind of page, from the header's `flags` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageKind {
    /// 0x01: interior node of a B+tree.
    Branch,
    /// 0x02: leaf node of a B+tree.
    Leaf,
    /// 0x04: one of the two meta pages.
    Meta,
    /// 0x10: the freelist.
    Freelist,
    /// Any other flags value (bbolt requires exactly one of the four).
    Unknown(u16),
}

impl PageKind {
    /// Decodes the header's flags. bbolt compares for equality, so combined
    /// bits are not a valid page.
    pub fn from_flags(flags: u16) -> PageKind {
        match flags {
            0x01 => PageKind::Branch,
            0x02 => PageKind::Leaf,
            0x04 => PageKind::Meta,
            0x10 => PageKind::Freelist,
            other => PageKind::Unknown(other),
        }
    }
}

impl fmt::Display for PageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageKind::Branch => f.write_str("branch"),
            PageKind::Leaf => f.write_str("leaf"),
            PageKind::Meta => f.write_str("meta"),
            PageKind::Freelist => f.write_str("freelist"),
            PageKind::Unknown(v) => write!(f, "unknown (flags 0x{v:04x})"),
        }
    }
}

/// The decoded page header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageHeader {
    /// The id stored in the page (should equal its position).
    pub id: u64,
    /// Raw flags.
    pub flags: u16,
    /// Element count.
    pub count: u16,
    /// Number of overflow pages after this one.
    pub overflow: u32,
}

impl PageHeader {
    /// Decodes a header from at least 16 bytes; `None` if fewer are given.
    pub fn parse(b: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: le_u64(b, 0)?,
            flags: le_u16(b, 8)?,
            count: le_u16(b, 10)?,
            overflow: le_u32(b, 12)?,
        })
    }

    /// The page kind from the flags.
    pub fn kind(&self) -> PageKind {
        PageKind::from_flags(self.flags)
    }
}
