//! A read-only, zero-copy, corruption-tolerant reader of bbolt files (the
//! storage engine under etcd's `member/snap/db` and `etcdctl snapshot save`
//! files).
//!
//! Everything here works on a byte slice (normally an mmap of the file) and
//! returns views that borrow from it. Every read is bounds-checked; every
//! error names the page and the byte offset; tree walks have depth limits
//! and visited sets, so no input can make the reader panic, loop or allocate
//! by an unchecked length.
//!
//! - [`meta`]: the two meta pages and which one is current;
//! - [`page`], [`node`]: page headers, branch and leaf elements;
//! - [`bucket`]: buckets (regular and inline), cursors and lookups;
//! - [`freelist`]: the freelist page (absent in etcd files);
//! - [`walk`]: a tolerant whole-tree walk that reports every problem;
//! - [`check`]: the structural check built on the walk;
//! - [`writer`]: the one writer of bbolt files (restore, salvage).

pub mod bucket;
pub(crate) mod bytes;
pub mod check;
pub mod error;
pub mod freelist;
pub mod meta;
pub mod node;
pub mod page;
pub mod walk;
pub mod writer;

pub use bucket::{Bucket, Cursor};
pub use error::{Error, KeyDisplay, NodeLoc, show_key};
pub use meta::{Meta, MetaChoice, MetaError};
pub use node::{LeafElem, Node};
pub use page::{PageHeader, PageKind, Pgid, Txid};

/// Maximum depth of a B+tree we follow. bbolt trees of any real size are a
/// handful of levels deep; deeper means a loop.
pub const MAX_TREE_DEPTH: usize = 64;
/// Maximum nesting of buckets we follow (etcd uses one level).
pub const MAX_BUCKET_DEPTH: usize = 32;

/// An open bbolt file: the bytes, the chosen meta page and its page size.
///
/// `Db` is a small `Copy` value; views borrow from the underlying bytes.
#[derive(Clone, Copy, Debug)]
pub struct Db<'a> {
    data: &'a [u8],
    page_size: usize,
    meta: Meta,
}

impl<'a> Db<'a> {
    /// Opens the bbolt image in `data`: reads both meta pages and picks the
    /// current one. Trailing bytes (a snapshot's sha256 trailer, or the
    /// preallocated space of a live db) are allowed.
    pub fn open(data: &'a [u8]) -> Result<(Db<'a>, MetaChoice), Error> {
        if data.is_empty() {
            return Err(Error::Empty);
        }
        let choice = meta::choose(data)?;
        let meta = *choice.meta();
        Ok((
            Db {
                data,
                page_size: meta.page_size as usize,
                meta,
            },
            choice,
        ))
    }

    /// Opens with an explicitly chosen meta (for forensics: reading the older
    /// transaction).
    pub fn with_meta(data: &'a [u8], meta: Meta) -> Db<'a> {
        Db {
            data,
            page_size: meta.page_size as usize,
            meta,
        }
    }

    /// The meta page in use.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The high-water mark: number of pages in use.
    pub fn high_water(&self) -> u64 {
        self.meta.pgid.0
    }

    /// All bytes of the file.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// `pgid * pageSize` as bbolt reports `tx.Size()`; `None` on overflow.
    pub fn size(&self) -> Option<u64> {
        self.meta.pgid.0.checked_mul(self.page_size as u64)
    }

    /// Number of whole pages present in the file.
    pub fn file_pages(&self) -> u64 {
        self.data.len() as u64 / self.page_size as u64
    }

    /// Byte offset of a page, if representable.
    pub fn page_offset(&self, pgid: Pgid) -> Option<u64> {
        pgid.0.checked_mul(self.page_size as u64)
    }

    /// Returns the header and the full span (page plus overflow pages) of the
    /// data page `pgid`, checking that it lies below the high-water mark and
    /// inside the file, and that its header carries its own id.
    pub fn page(&self, pgid: Pgid) -> Result<(PageHeader, &'a [u8]), Error> {
        let hwm = self.high_water();
        if pgid.0 >= hwm {
            return Err(Error::BeyondHighWater {
                pgid,
                overflow: 0,
                hwm,
            });
        }
        let file_len = self.data.len() as u64;
        let ps = self.page_size as u64;
        let offset = self.page_offset(pgid).ok_or(Error::BeyondHighWater {
            pgid,
            overflow: 0,
            hwm,
        })?;
        let first = usize::try_from(offset)
            .ok()
            .and_then(|o| bytes::slice(self.data, o, self.page_size))
            .ok_or(Error::BeyondEof {
                pgid,
                offset,
                len: ps,
                file_len,
            })?;
        let header = PageHeader::parse(first).expect("page is at least 512 bytes");
        if header.id != pgid.0 {
            return Err(Error::IdMismatch {
                pgid,
                offset,
                found: header.id,
            });
        }
        let overflow = header.overflow;
        if pgid
            .0
            .checked_add(u64::from(overflow))
            .is_none_or(|last| last >= hwm)
        {
            return Err(Error::BeyondHighWater { pgid, overflow, hwm });
        }
        // (overflow + 1) * ps is below hwm * ps, which bounds it by u64 only if
        // the multiplication does not overflow: check it.
        let len = (u64::from(overflow) + 1)
            .checked_mul(ps)
            .ok_or(Error::BeyondHighWater { pgid, overflow, hwm })?;
        let span = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(o, l)| bytes::slice(self.data, o, l))
            .ok_or(Error::BeyondEof {
                pgid,
                offset,
                len,
                file_len,
            })?;
        Ok((header, span))
    }

    /// Reads page `pgid` as a branch or leaf node.
    pub fn node(&self, pgid: Pgid) -> Result<Node<'a>, Error> {
        let (_, span) = self.page(pgid)?;
        let offset = self.page_offset(pgid).unwrap_or(0);
        Node::parse(NodeLoc::Page { pgid }, offset, span)
    }

    /// The root bucket (whose entries are the top-level buckets).
    pub fn root(&self) -> Bucket<'a> {
        Bucket::page_root(*self, self.meta.root)
    }

    /// Looks up a top-level bucket by name.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>, Error> {
        self.root().bucket(name)
    }
}
