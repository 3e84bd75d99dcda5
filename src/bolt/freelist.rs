//! The freelist page (flags 0x10).
//!
//! ```text
//! offset  size  field
//!      0    16  page header; count < 0xFFFF is the number of ids
//!     16   8*n  sorted page ids                       (count < 0xFFFF)
//!     16     8  n, the real count                     (count == 0xFFFF)
//!     24   8*n  sorted page ids
//! ```
//!
//! etcd on Linux opens bbolt with `NoFreelistSync`, so its files normally have
//! `meta.freelist` = all ones and no freelist page at all: the free set is
//! then every page below the high-water mark that the tree does not reach.

use super::Db;
use super::bytes::le_u64;
use super::error::Error;
use super::page::{PAGE_HEADER_SIZE, PageKind, Pgid};

/// A decoded freelist page.
#[derive(Clone, Debug)]
pub struct Freelist<'a> {
    /// The freelist page id.
    pub pgid: Pgid,
    /// Its overflow count.
    pub overflow: u32,
    /// Byte offset of the id array.
    pub ids_offset: u64,
    ids: &'a [u8],
}

impl<'a> Freelist<'a> {
    /// Reads the freelist page named by the meta.
    pub fn read(db: &Db<'a>, pgid: Pgid) -> Result<Freelist<'a>, Error> {
        let (header, span) = db.page(pgid)?;
        let offset = db.page_offset(pgid).unwrap_or(0);
        if header.kind() != PageKind::Freelist {
            return Err(Error::WrongKind {
                loc: super::NodeLoc::Page { pgid },
                offset,
                expected: "freelist",
                found: header.kind(),
            });
        }
        let (count, start) = if header.count == 0xFFFF {
            (
                le_u64(span, PAGE_HEADER_SIZE).unwrap_or(u64::MAX),
                PAGE_HEADER_SIZE + 8,
            )
        } else {
            (u64::from(header.count), PAGE_HEADER_SIZE)
        };
        let need = count.checked_mul(8).and_then(|n| n.checked_add(start as u64));
        let ids = need
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|end| span.get(start..end))
            .ok_or(Error::ElementTable {
                loc: super::NodeLoc::Page { pgid },
                offset,
                count: header.count,
                need: need.unwrap_or(u64::MAX),
                have: span.len() as u64,
            })?;
        Ok(Freelist {
            pgid,
            overflow: header.overflow,
            ids_offset: offset + start as u64,
            ids,
        })
    }

    /// Number of ids stored.
    pub fn len(&self) -> usize {
        self.ids.len() / 8
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The stored ids in stored order.
    pub fn ids(&self) -> impl Iterator<Item = Pgid> + 'a {
        self.ids
            .chunks_exact(8)
            .map(|c| Pgid(u64::from_le_bytes(c.try_into().expect("8 bytes"))))
    }
}
