//! The one bbolt writer: builds a fresh, compact file from top-level buckets
//! whose keys arrive in ascending order, streaming page after page (the
//! largest bucket never has to fit in memory; only one key per leaf is kept
//! for the branch levels).
//!
//! Layout of a written file:
//!
//! ```text
//! page 0, 1      meta pages (written last; meta 0 has txid T, meta 1 txid T-1, as Tx.WriteTo)
//! page 2..       for each bucket: its leaf pages (with overflow pages for big
//!                values), then its branch levels bottom-up; small buckets are
//!                stored inline in the root leaf instead, as bbolt does
//! ...            the root bucket's page(s)
//! last page      an empty freelist page (so readers that need a stored freelist,
//!                like bbolt-rs, can open the file; etcd drops it at its first commit)
//! ```
//!
//! Nodes are filled up to `fill` of a page (etcd's defragmentation uses 0.9).

use std::io::{self, Seek, SeekFrom, Write};

use super::meta::{MAGIC, VERSION, fnv1a64};
use super::node::{BUCKET_LEAF_FLAG, ELEMENT_SIZE};
use super::page::PAGE_HEADER_SIZE;

/// bbolt's largest key.
pub const MAX_KEY_SIZE: usize = 32768;
/// bbolt's largest value.
pub const MAX_VALUE_SIZE: usize = (1 << 31) - 2;

const FLAG_BRANCH: u16 = 0x01;
const FLAG_LEAF: u16 = 0x02;
const FLAG_META: u16 = 0x04;
const FLAG_FREELIST: u16 = 0x10;

/// Errors of the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing failed.
    #[error("writing the db: {0}")]
    Io(#[from] io::Error),
    /// A page size bbolt's readers (and ours) do not take.
    #[error("page size {0}: must be a power of two from 512 to 1 MiB")]
    PageSize(u32),
    /// Keys out of order (they must be strictly ascending), or buckets out of order.
    #[error("bucket {bucket}: key {key} is not greater than the key before it")]
    Order {
        /// Bucket name (printable).
        bucket: String,
        /// The key (printable).
        key: String,
    },
    /// A key or value bbolt cannot store.
    #[error("bucket {bucket}: key {key}: {what}")]
    TooLarge {
        /// Bucket name (printable).
        bucket: String,
        /// The key (printable).
        key: String,
        /// What is too large.
        what: String,
    },
    /// An empty key.
    #[error("bucket {bucket}: an empty key cannot be stored")]
    EmptyKey {
        /// Bucket name (printable).
        bucket: String,
    },
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteSummary {
    /// Pages in the file (the high-water mark).
    pub pages: u64,
    /// Page size.
    pub page_size: u32,
    /// Buckets written.
    pub buckets: u64,
    /// Key/value pairs written.
    pub keys: u64,
    /// Transaction id of meta page 0.
    pub txid: u64,
}

/// One element waiting in a node: key, value (or child pgid) and flags.
struct Pending {
    key: Vec<u8>,
    value: Vec<u8>,
    flags: u32,
}

/// The bbolt writer.
pub struct Writer<W: Write + Seek> {
    out: W,
    page_size: usize,
    fill: f64,
    txid: u64,
    next_pgid: u64,
    /// Entries of the root bucket: (name, bucket value, flags).
    root: Vec<Pending>,
    last_bucket: Option<Vec<u8>>,
    keys: u64,
    /// Write an (empty) freelist page; without one the file says "no
    /// freelist", as etcd's own files do, and readers compute the free pages.
    freelist: bool,
}

/// The page size of the new file: the source's, as bbolt keeps it (4 KiB
/// on amd64, 16 KiB and 64 KiB on arm64 and ppc64le hosts; any power of
/// two from 512 bytes to 1 MiB the reader took); otherwise 4 KiB, which
/// bbolt and etcd read whatever the host (the size is in the meta page).
pub fn output_page_size(source: usize) -> u32 {
    use super::meta::{MAX_PAGE_SIZE, MIN_PAGE_SIZE};
    match u32::try_from(source) {
        Ok(p) if p.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&p) => p,
        _ => 4096,
    }
}

/// Every page size the reader takes (`bolt::meta`): a power of two from
/// 512 bytes to 1 MiB.
fn checked_page_size(page_size: u32) -> Result<usize, WriteError> {
    let ok = page_size.is_power_of_two()
        && (super::meta::MIN_PAGE_SIZE..=super::meta::MAX_PAGE_SIZE).contains(&page_size);
    if ok {
        Ok(page_size as usize)
    } else {
        Err(WriteError::PageSize(page_size))
    }
}

impl<W: Write + Seek> Writer<W> {
    /// Starts a file with `page_size`-byte pages, filling nodes up to `fill`
    /// (0.5..=1.0) of a page. `txid` is meta 0's transaction id (at least 2).
    pub fn new(mut out: W, page_size: u32, fill: f64, txid: u64) -> Result<Writer<W>, WriteError> {
        let page_size = checked_page_size(page_size)?;
        // Reserve the two meta pages; they are written by `finish`.
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&vec![0u8; 2 * page_size])?;
        Ok(Writer {
            out,
            page_size,
            fill: fill.clamp(0.1, 1.0),
            txid: txid.max(2),
            next_pgid: 2,
            root: Vec::new(),
            last_bucket: None,
            keys: 0,
            freelist: true,
        })
    }

    /// Continues a file whose pages `0..first_free` are already in `out`
    /// (a copy of a source db): new pages are appended from `first_free` on,
    /// and [`Writer::bucket_value`] can point at buckets in the copied pages.
    /// The result stores no freelist (the copied pages no longer reachable
    /// are free, as in etcd's own files). Meta pages are rewritten at the end.
    pub fn appending(
        mut out: W,
        page_size: u32,
        fill: f64,
        txid: u64,
        first_free: u64,
    ) -> Result<Writer<W>, WriteError> {
        let page_size = checked_page_size(page_size)?;
        let first_free = first_free.max(2);
        out.seek(SeekFrom::Start(first_free * page_size as u64))?;
        Ok(Writer {
            out,
            page_size,
            fill: fill.clamp(0.1, 1.0),
            txid: txid.max(2),
            next_pgid: first_free,
            root: Vec::new(),
            last_bucket: None,
            keys: 0,
            freelist: false,
        })
    }

    /// Adds a top-level bucket by its stored value: a 16-byte header pointing
    /// at a tree already in the file, or an inline bucket's bytes, as found in
    /// the source's root leaf. Buckets must come in ascending name order.
    pub fn bucket_value(&mut self, name: &[u8], value: &[u8]) -> Result<(), WriteError> {
        if self.last_bucket.as_deref().is_some_and(|l| name <= l) {
            return Err(WriteError::Order {
                bucket: "(root)".into(),
                key: crate::bolt::show_key(name),
            });
        }
        self.last_bucket = Some(name.to_vec());
        self.root.push(Pending {
            key: name.to_vec(),
            value: value.to_vec(),
            flags: BUCKET_LEAF_FLAG,
        });
        Ok(())
    }

    /// Writes a top-level bucket. Buckets must come in ascending name order
    /// and keys in strictly ascending order.
    pub fn bucket<K, V, I>(&mut self, name: &[u8], sequence: u64, items: I) -> Result<(), WriteError>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
        I: IntoIterator<Item = (K, V)>,
    {
        let shown = crate::bolt::show_key(name);
        if name.is_empty() {
            return Err(WriteError::EmptyKey {
                bucket: "(root)".into(),
            });
        }
        if self.last_bucket.as_deref().is_some_and(|l| name <= l) {
            return Err(WriteError::Order {
                bucket: "(root)".into(),
                key: shown,
            });
        }
        self.last_bucket = Some(name.to_vec());
        // Buffer while the bucket could still be inline (bbolt inlines a bucket
        // that is one leaf of at most a quarter page).
        let inline_limit = self.page_size / 4;
        let mut small: Vec<Pending> = Vec::new();
        let mut small_size = PAGE_HEADER_SIZE;
        let mut leaves = LeafBuilder::new(self.page_size, self.fill);
        let mut spilled = false;
        let mut last: Option<Vec<u8>> = None;
        for (k, v) in items {
            let (k, v) = (k.as_ref(), v.as_ref());
            if k.is_empty() {
                return Err(WriteError::EmptyKey { bucket: shown });
            }
            if last.as_deref().is_some_and(|l| k <= l) {
                return Err(WriteError::Order {
                    bucket: shown,
                    key: crate::bolt::show_key(k),
                });
            }
            if k.len() > MAX_KEY_SIZE || v.len() > MAX_VALUE_SIZE {
                return Err(WriteError::TooLarge {
                    bucket: shown,
                    key: crate::bolt::show_key(&k[..k.len().min(64)]),
                    what: format!(
                        "key of {} bytes or value of {} bytes is beyond bbolt's limits",
                        k.len(),
                        v.len()
                    ),
                });
            }
            last = Some(k.to_vec());
            self.keys += 1;
            if !spilled {
                small_size += ELEMENT_SIZE + k.len() + v.len();
                small.push(Pending {
                    key: k.to_vec(),
                    value: v.to_vec(),
                    flags: 0,
                });
                if small_size > inline_limit {
                    spilled = true;
                    for p in small.drain(..) {
                        leaves.push(&mut self.out, &mut self.next_pgid, p)?;
                    }
                }
            } else {
                leaves.push(
                    &mut self.out,
                    &mut self.next_pgid,
                    Pending {
                        key: k.to_vec(),
                        value: v.to_vec(),
                        flags: 0,
                    },
                )?;
            }
        }
        let mut header = Vec::with_capacity(16 + inline_limit);
        if !spilled {
            // Inline: root 0, the sequence, then a leaf page image.
            header.extend_from_slice(&0u64.to_le_bytes());
            header.extend_from_slice(&sequence.to_le_bytes());
            header.extend_from_slice(&node_image(0, FLAG_LEAF, &small, small_size));
        } else {
            let root = leaves.finish(&mut self.out, &mut self.next_pgid)?;
            header.extend_from_slice(&root.to_le_bytes());
            header.extend_from_slice(&sequence.to_le_bytes());
        }
        self.root.push(Pending {
            key: name.to_vec(),
            value: header,
            flags: BUCKET_LEAF_FLAG,
        });
        Ok(())
    }

    /// Writes the root bucket, an empty freelist page and both meta pages,
    /// and returns the underlying writer (not synced: the caller fsyncs).
    pub fn finish(mut self) -> Result<(WriteSummary, W), WriteError> {
        let mut root = LeafBuilder::new(self.page_size, self.fill);
        let buckets = self.root.len() as u64;
        for p in std::mem::take(&mut self.root) {
            root.push(&mut self.out, &mut self.next_pgid, p)?;
        }
        let root_pgid = root.finish(&mut self.out, &mut self.next_pgid)?;
        let freelist = if self.freelist {
            // An empty freelist page.
            let id = self.next_pgid;
            let mut page = vec![0u8; self.page_size];
            write_header(&mut page, id, FLAG_FREELIST, 0, 0);
            self.out.write_all(&page)?;
            self.next_pgid += 1;
            id
        } else {
            u64::MAX
        };
        let hwm = self.next_pgid;
        for (id, txid) in [(0u64, self.txid), (1u64, self.txid - 1)] {
            let mut m = vec![0u8; self.page_size];
            write_header(&mut m, id, FLAG_META, 0, 0);
            m[16..20].copy_from_slice(&MAGIC.to_le_bytes());
            m[20..24].copy_from_slice(&VERSION.to_le_bytes());
            m[24..28].copy_from_slice(&(self.page_size as u32).to_le_bytes());
            m[28..32].copy_from_slice(&0u32.to_le_bytes());
            m[32..40].copy_from_slice(&root_pgid.to_le_bytes());
            m[40..48].copy_from_slice(&0u64.to_le_bytes());
            m[48..56].copy_from_slice(&freelist.to_le_bytes());
            m[56..64].copy_from_slice(&hwm.to_le_bytes());
            m[64..72].copy_from_slice(&txid.to_le_bytes());
            let sum = fnv1a64(&m[16..72]);
            m[72..80].copy_from_slice(&sum.to_le_bytes());
            self.out.seek(SeekFrom::Start(id * self.page_size as u64))?;
            self.out.write_all(&m)?;
        }
        self.out.seek(SeekFrom::Start(hwm * self.page_size as u64))?;
        self.out.flush()?;
        Ok((
            WriteSummary {
                pages: hwm,
                page_size: self.page_size as u32,
                buckets,
                keys: self.keys,
                txid: self.txid,
            },
            self.out,
        ))
    }
}

fn write_header(page: &mut [u8], id: u64, flags: u16, count: u16, overflow: u32) {
    page[0..8].copy_from_slice(&id.to_le_bytes());
    page[8..10].copy_from_slice(&flags.to_le_bytes());
    page[10..12].copy_from_slice(&count.to_le_bytes());
    page[12..16].copy_from_slice(&overflow.to_le_bytes());
}

/// Serializes a node (leaf or branch) of `size` bytes; for branches the
/// value of each pending element is the child pgid (8 bytes LE).
fn node_image(id: u64, flags: u16, items: &[Pending], size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    write_header(&mut b, id, flags, items.len() as u16, 0);
    let mut data = PAGE_HEADER_SIZE + ELEMENT_SIZE * items.len();
    for (i, p) in items.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + ELEMENT_SIZE * i;
        let pos = (data - e) as u32;
        if flags == FLAG_LEAF {
            b[e..e + 4].copy_from_slice(&p.flags.to_le_bytes());
            b[e + 4..e + 8].copy_from_slice(&pos.to_le_bytes());
            b[e + 8..e + 12].copy_from_slice(&(p.key.len() as u32).to_le_bytes());
            b[e + 12..e + 16].copy_from_slice(&(p.value.len() as u32).to_le_bytes());
            b[data..data + p.key.len()].copy_from_slice(&p.key);
            data += p.key.len();
            b[data..data + p.value.len()].copy_from_slice(&p.value);
            data += p.value.len();
        } else {
            b[e..e + 4].copy_from_slice(&pos.to_le_bytes());
            b[e + 4..e + 8].copy_from_slice(&(p.key.len() as u32).to_le_bytes());
            b[e + 8..e + 16].copy_from_slice(&p.value[..8]);
            b[data..data + p.key.len()].copy_from_slice(&p.key);
            data += p.key.len();
        }
    }
    b
}

/// Builds one level of nodes, writing each full node as it closes.
struct Level {
    flags: u16,
    items: Vec<Pending>,
    size: usize,
    /// (first key, pgid) of every node written at this level.
    written: Vec<(Vec<u8>, u64)>,
}

impl Level {
    fn new(flags: u16) -> Level {
        Level {
            flags,
            items: Vec::new(),
            size: PAGE_HEADER_SIZE,
            written: Vec::new(),
        }
    }

    fn elem_size(&self, p: &Pending) -> usize {
        ELEMENT_SIZE + p.key.len() + if self.flags == FLAG_LEAF { p.value.len() } else { 0 }
    }

    fn push<W: Write>(
        &mut self,
        out: &mut W,
        next: &mut u64,
        page: usize,
        fill: f64,
        p: Pending,
    ) -> io::Result<()> {
        let add = self.elem_size(&p);
        let limit = (page as f64 * fill) as usize;
        // Close the node when the next element would take it past the fill
        // limit (a lone element larger than that gets overflow pages), or
        // when the element count field would overflow.
        if !self.items.is_empty() && (self.size + add > limit || self.items.len() == 0xFFFE) {
            self.flush(out, next, page)?;
        }
        self.size += add;
        self.items.push(p);
        Ok(())
    }

    fn flush<W: Write>(&mut self, out: &mut W, next: &mut u64, page: usize) -> io::Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let pages = self.size.div_ceil(page);
        let id = *next;
        let mut img = node_image(id, self.flags, &self.items, pages * page);
        img[12..16].copy_from_slice(&((pages - 1) as u32).to_le_bytes());
        out.write_all(&img)?;
        *next += pages as u64;
        self.written.push((std::mem::take(&mut self.items[0].key), id));
        self.items.clear();
        self.size = PAGE_HEADER_SIZE;
        Ok(())
    }
}

/// Leaves, then as many branch levels as needed, for one bucket.
struct LeafBuilder {
    page: usize,
    fill: f64,
    leaf: Level,
}

impl LeafBuilder {
    fn new(page: usize, fill: f64) -> LeafBuilder {
        LeafBuilder {
            page,
            fill,
            leaf: Level::new(FLAG_LEAF),
        }
    }

    fn push<W: Write>(&mut self, out: &mut W, next: &mut u64, p: Pending) -> io::Result<()> {
        self.leaf.push(out, next, self.page, self.fill, p)
    }

    /// Flushes the last leaf and writes the branch levels; returns the root pgid.
    fn finish<W: Write>(mut self, out: &mut W, next: &mut u64) -> io::Result<u64> {
        if self.leaf.written.is_empty() && self.leaf.items.is_empty() {
            // An empty bucket still has a (leaf) root page.
            let id = *next;
            let img = node_image(id, FLAG_LEAF, &[], self.page);
            out.write_all(&img)?;
            *next += 1;
            return Ok(id);
        }
        self.leaf.flush(out, next, self.page)?;
        let mut children = std::mem::take(&mut self.leaf.written);
        while children.len() > 1 {
            let mut level = Level::new(FLAG_BRANCH);
            for (key, pgid) in children {
                level.push(
                    out,
                    next,
                    self.page,
                    self.fill,
                    Pending {
                        key,
                        value: pgid.to_le_bytes().to_vec(),
                        flags: 0,
                    },
                )?;
            }
            level.flush(out, next, self.page)?;
            children = level.written;
        }
        Ok(children[0].1)
    }
}
