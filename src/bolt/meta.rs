//! The two meta pages (pages 0 and 1) and the choice between them.
//!
//! ```text
//! offset  size  field (from the start of the page; 0..16 is the page header)
//!     16     4  magic     0xED0CDAED
//!     20     4  version   2
//!     24     4  pageSize
//!     28     4  flags
//!     32     8  root      pgid of the root bucket's page
//!     40     8  sequence  root bucket sequence
//!     48     8  freelist  pgid of the freelist page, or all ones for none
//!     56     8  pgid      high-water mark: pages 0..pgid-1 are in use
//!     64     8  txid
//!     72     8  checksum  FNV-1a-64 over bytes 16..72
//! ```
//!
//! The current meta is the valid one with the larger txid (meta 0 on a tie).
//! A torn meta write therefore falls back one transaction; we report when
//! that happens instead of hiding it.

use std::fmt;

use super::bytes::{le_u32, le_u64};
use super::page::{PAGE_HEADER_SIZE, PageHeader, PageKind, Pgid, Txid};

/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only file format version bbolt has written.
pub const VERSION: u32 = 2;
/// Bytes covered by the meta page: header plus the 64-byte meta struct.
pub const META_PAGE_BYTES: usize = PAGE_HEADER_SIZE + 64;
/// Smallest page size we accept.
pub const MIN_PAGE_SIZE: u32 = 512;
/// Largest page size we accept (bbolt has no limit; real systems use <= 64 KiB).
pub const MAX_PAGE_SIZE: u32 = 1 << 20;

/// A decoded meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The page header's id field.
    pub header_id: u64,
    /// The page header's flags field.
    pub header_flags: u16,
    /// Magic number.
    pub magic: u32,
    /// Format version.
    pub version: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Meta flags (normally 0).
    pub flags: u32,
    /// Root bucket page.
    pub root: Pgid,
    /// Root bucket sequence.
    pub sequence: u64,
    /// Freelist page or [`Pgid::NONE`].
    pub freelist: Pgid,
    /// High-water mark.
    pub pgid: Pgid,
    /// Transaction id.
    pub txid: Txid,
    /// Stored checksum.
    pub checksum: u64,
}

/// Why a meta page is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MetaError {
    /// The file ends before the meta page does.
    #[error("the file ends at byte {file_len}, before the meta page at offset {offset} is complete")]
    Truncated {
        /// Offset of the meta page.
        offset: u64,
        /// File length.
        file_len: u64,
    },
    /// Wrong magic.
    #[error("bad magic 0x{found:08x} (expected 0xed0cdaed)")]
    BadMagic {
        /// What was found.
        found: u32,
    },
    /// The magic is byte-swapped: the file was written on a big-endian host.
    #[error(
        "magic is byte-swapped (0x{found:08x}): the file was written on a big-endian host, which is not supported"
    )]
    BigEndian {
        /// What was found.
        found: u32,
    },
    /// Unsupported version.
    #[error("unsupported version {found} (expected 2)")]
    BadVersion {
        /// What was found.
        found: u32,
    },
    /// Checksum mismatch.
    #[error("checksum mismatch: stored 0x{stored:016x}, computed 0x{computed:016x}")]
    BadChecksum {
        /// Stored checksum.
        stored: u64,
        /// Computed checksum.
        computed: u64,
    },
    /// Page size not a power of two in range.
    #[error("implausible page size {found} (must be a power of two from 512 to 1 MiB)")]
    BadPageSize {
        /// What was found.
        found: u32,
    },
}

impl Meta {
    /// Decodes the meta page starting at `b[0]` (the page header) without validating it.
    /// Returns `None` if fewer than 80 bytes are given.
    pub fn decode(b: &[u8]) -> Option<Meta> {
        let h = PageHeader::parse(b)?;
        Some(Meta {
            header_id: h.id,
            header_flags: h.flags,
            magic: le_u32(b, 16)?,
            version: le_u32(b, 20)?,
            page_size: le_u32(b, 24)?,
            flags: le_u32(b, 28)?,
            root: Pgid(le_u64(b, 32)?),
            sequence: le_u64(b, 40)?,
            freelist: Pgid(le_u64(b, 48)?),
            pgid: Pgid(le_u64(b, 56)?),
            txid: Txid(le_u64(b, 64)?),
            checksum: le_u64(b, 72)?,
        })
    }

    /// Decodes and validates the meta page at `offset` of `file`, in bbolt's order:
    /// magic, version, checksum; then our own page-size sanity check.
    pub fn read(file: &[u8], offset: u64) -> Result<Meta, MetaError> {
        let truncated = MetaError::Truncated {
            offset,
            file_len: file.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| truncated.clone())?;
        let b = file
            .get(start..start.saturating_add(META_PAGE_BYTES))
            .filter(|b| b.len() == META_PAGE_BYTES)
            .ok_or(truncated)?;
        let m = Meta::decode(b).expect("80 bytes decode");
        if m.magic != MAGIC {
            if m.magic == MAGIC.swap_bytes() {
                return Err(MetaError::BigEndian { found: m.magic });
            }
            return Err(MetaError::BadMagic { found: m.magic });
        }
        if m.version != VERSION {
            return Err(MetaError::BadVersion { found: m.version });
        }
        let computed = fnv1a64(&b[16..72]);
        if computed != m.checksum {
            return Err(MetaError::BadChecksum {
                stored: m.checksum,
                computed,
            });
        }
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&m.page_size) || !m.page_size.is_power_of_two() {
            return Err(MetaError::BadPageSize { found: m.page_size });
        }
        Ok(m)
    }

    /// Whether the page header says "meta page".
    pub fn header_is_meta(&self) -> bool {
        PageKind::from_flags(self.header_flags) == PageKind::Meta
    }

    /// Whether the file has a stored freelist (etcd on Linux never writes one).
    pub fn has_freelist(&self) -> bool {
        self.freelist != Pgid::NONE
    }
}

/// FNV-1a, 64-bit, as bbolt's meta checksum uses it.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Which meta page a reader uses, and what happened to the other.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaChoice {
    /// Page size taken from the chosen meta (or the probe).
    pub page_size: u32,
    /// The result of reading meta page 0 and meta page 1.
    pub metas: [Result<Meta, MetaError>; 2],
    /// 0 or 1: the meta in use.
    pub used: u8,
    /// Set when the newer meta was invalid and the other one had to be used.
    pub fell_back: bool,
    /// Byte offset at which meta 1 was found.
    pub meta1_offset: u64,
}

impl MetaChoice {
    /// The meta in use.
    pub fn meta(&self) -> &Meta {
        self.metas[usize::from(self.used)]
            .as_ref()
            .expect("chosen meta is valid")
    }
}

/// Both meta pages are invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no valid meta page: meta 0 (offset 0): {meta0}; meta 1 (offset {meta1_offset}): {meta1}")]
pub struct NoValidMeta {
    /// Why meta 0 failed.
    pub meta0: MetaError,
    /// Why meta 1 failed.
    pub meta1: MetaError,
    /// Where meta 1 was looked for.
    pub meta1_offset: u64,
}

/// Reads both meta pages of `file` and picks the current one as bbolt does.
///
/// The page size comes from meta 0; if meta 0 is invalid, meta 1 is probed at
/// offsets 1024 << i, as bbolt does, and its page size is used.
pub fn choose(file: &[u8]) -> Result<MetaChoice, NoValidMeta> {
    let m0 = Meta::read(file, 0);
    let (m1_offset, m1) = match &m0 {
        Ok(m) => (u64::from(m.page_size), Meta::read(file, u64::from(m.page_size))),
        Err(_) => probe_meta1(file),
    };
    let (used, fell_back) = match (&m0, &m1) {
        (Ok(a), Ok(b)) => (if b.txid > a.txid { 1 } else { 0 }, false),
        // One meta is unusable: the reader may be one transaction behind.
        (Ok(_), Err(_)) => (0, true),
        (Err(_), Ok(_)) => (1, true),
        (Err(e0), Err(e1)) => {
            return Err(NoValidMeta {
                meta0: e0.clone(),
                meta1: e1.clone(),
                meta1_offset: m1_offset,
            });
        }
    };
    let page_size = match (&m0, &m1) {
        (Ok(a), _) if used == 0 => a.page_size,
        (_, Ok(b)) => b.page_size,
        (Ok(a), _) => a.page_size,
        _ => unreachable!(),
    };
    Ok(MetaChoice {
        page_size,
        metas: [m0, m1],
        used,
        fell_back,
        meta1_offset: m1_offset,
    })
}

fn probe_meta1(file: &[u8]) -> (u64, Result<Meta, MetaError>) {
    let mut first_err = None;
    for i in 0..15u32 {
        let pos: u64 = 1024u64 << i;
        if pos >= (file.len() as u64).saturating_sub(1024) {
            break;
        }
        match Meta::read(file, pos) {
            Ok(m) if u64::from(m.page_size) == pos => return (pos, Ok(m)),
            Ok(m) => {
                first_err.get_or_insert((pos, Err(MetaError::BadPageSize { found: m.page_size })));
            }
            Err(e) => {
                // Remember the error at the default page size, the most likely place.
                if pos == 4096 || first_err.is_none() {
                    first_err = Some((pos, Err(e)));
                }
            }
        }
    }
    first_err.unwrap_or((
        4096,
        Err(MetaError::Truncated {
            offset: 4096,
            file_len: file.len() as u64,
        }),
    ))
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "txid {} root {} freelist {} pgid {} pageSize {}",
            self.txid,
            self.root,
            if self.has_freelist() {
                self.freelist.to_string()
            } else {
                "none".into()
            },
            self.pgid,
            self.page_size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a valid meta page image for tests.
    pub(crate) fn meta_page(id: u64, txid: u64, page_size: u32) -> Vec<u8> {
        let mut p = vec![0u8; page_size as usize];
        p[0..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&4u16.to_le_bytes());
        p[16..20].copy_from_slice(&MAGIC.to_le_bytes());
        p[20..24].copy_from_slice(&VERSION.to_le_bytes());
        p[24..28].copy_from_slice(&page_size.to_le_bytes());
        p[32..40].copy_from_slice(&3u64.to_le_bytes());
        p[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        p[56..64].copy_from_slice(&4u64.to_le_bytes());
        p[64..72].copy_from_slice(&txid.to_le_bytes());
        let c = fnv1a64(&p[16..72]);
        p[72..80].copy_from_slice(&c.to_le_bytes());
        p
    }

    #[test]
    fn fnv_known_value() {
        // FNV-1a-64 of "a" is a well-known test vector.
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    }

    #[test]
    fn chooses_newer_and_falls_back() {
        let mut f = meta_page(0, 10, 4096);
        f.extend(meta_page(1, 11, 4096));
        let c = choose(&f).unwrap();
        assert_eq!(c.used, 1);
        assert!(!c.fell_back);
        // Damage meta 1: meta 0 must be used and the fallback reported.
        f[4096 + 70] ^= 0xff;
        let c = choose(&f).unwrap();
        assert_eq!(c.used, 0);
        assert!(c.fell_back);
        assert!(matches!(c.metas[1], Err(MetaError::BadChecksum { .. })));
        // Damage meta 0 as well: no valid meta.
        f[16] ^= 0xff;
        let e = choose(&f).unwrap_err();
        assert!(matches!(e.meta0, MetaError::BadMagic { .. }));
    }

    #[test]
    fn probes_meta1_when_meta0_is_bad() {
        let mut f = meta_page(0, 10, 8192);
        f.extend(meta_page(1, 9, 8192));
        f.extend(vec![0u8; 8192]);
        f[20] = 7; // meta 0 version
        let c = choose(&f).unwrap();
        assert_eq!(c.used, 1);
        assert_eq!(c.page_size, 8192);
        assert_eq!(c.meta1_offset, 8192);
        assert!(matches!(c.metas[0], Err(MetaError::BadVersion { found: 7 })));
    }

    #[test]
    fn big_endian_magic_is_its_own_error() {
        let mut p = meta_page(0, 1, 4096);
        p[16..20].copy_from_slice(&MAGIC.to_be_bytes());
        assert!(matches!(Meta::read(&p, 0), Err(MetaError::BigEndian { .. })));
    }

    #[test]
    fn short_input_is_truncated_not_panic() {
        for n in 0..80 {
            let p = meta_page(0, 1, 4096);
            assert!(matches!(Meta::read(&p[..n], 0), Err(MetaError::Truncated { .. })));
        }
        assert!(Meta::read(&[0u8; 100], u64::MAX).is_err());
    }
}
