//! Reading one page without trusting its header.
//!
//! A page's header (id, type flags, element count, overflow count) is 16
//! bytes; its element table and the keys and values after it are the data.
//! When the header is damaged the rest can still be read: the first
//! element's `pos` says where the table ends (the first key follows it), so
//! it gives the count; the elements' extents give the overflow. A page read
//! that way is only used when what it holds validates (the caller checks
//! that its records are etcd's); the repairs are named in the report.

use crate::bolt::bytes::le_u32;
use crate::bolt::node::{ELEMENT_SIZE, NodeKind};
use crate::bolt::page::PAGE_HEADER_SIZE;
use crate::bolt::{Node, NodeLoc, PageHeader, PageKind, Pgid};

/// The page size: from a valid meta page, else the size under which the
/// most pages carry their own id.
pub(super) fn page_size(data: &[u8]) -> (usize, String) {
    if let Ok(c) = crate::bolt::meta::choose(data) {
        return (c.page_size as usize, format!("meta page {}", c.used));
    }
    let mut best = (4096usize, 0usize);
    for shift in 9..=16 {
        let ps = 1usize << shift;
        let n = data.len() / ps;
        let hits = (2..n.min(4096))
            .filter(|&i| PageHeader::parse(&data[i * ps..]).is_some_and(|h| h.id == i as u64))
            .count();
        if hits > best.1 {
            best = (ps, hits);
        }
    }
    (best.0, "probed".into())
}

/// One leaf element, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Elem {
    /// bbolt's element flags (0x01: a nested bucket).
    pub flags: u32,
    /// The key.
    pub key: Vec<u8>,
    /// The value (a bucket header and inline image when a bucket).
    pub value: Vec<u8>,
}

/// A page read as a node.
#[derive(Debug)]
pub(super) enum Content {
    /// Leaf elements, keys ascending.
    Leaf(Vec<Elem>),
    /// Branch elements: each child's first key and page id, keys ascending.
    Branch(Vec<(Vec<u8>, u64)>),
}

/// A page that was read, and how.
#[derive(Debug)]
pub(super) struct Read {
    /// What it holds.
    pub content: Content,
    /// Pages it spans (1 + overflow).
    pub span: u64,
    /// Header fields that were wrong and what was used instead (empty when
    /// the page was read as it is).
    pub repairs: Vec<String>,
}

/// The header as it should have been, for one attempt.
#[derive(Clone, Copy)]
struct Try {
    kind: NodeKind,
    count: u16,
    overflow: u32,
}

/// Reads page `p`. `want` is the kind the tree expects (None: either).
/// The header is used as it is when that works; otherwise the count and
/// overflow are inferred from the element table.
pub(super) fn read(data: &[u8], ps: usize, p: u64, want: Option<NodeKind>) -> Result<Read, String> {
    let pages = (data.len() / ps) as u64;
    let rest = usize::try_from(p)
        .ok()
        .and_then(|p| p.checked_mul(ps))
        .and_then(|off| data.get(off..))
        .filter(|r| p >= 2 && !r.is_empty());
    let Some(rest) = rest else {
        return Err(format!("page {p} is outside the file's {pages} pages"));
    };
    if rest.len() < ps {
        // The file ends inside this page: what is left of it, the rest
        // zeros (elements that reach into the cut part do not validate).
        let mut padded = rest.to_vec();
        padded.resize(ps, 0);
        return read_window(&padded, ps, p, pages + 1, want)
            .map_err(|e| format!("{e} (the file ends inside this page)"));
    }
    match read_window(rest, ps, p, pages, want) {
        Err(e) if reaches_cut_page(rest, ps) => read_cut_span(rest, ps, p, pages, want).ok_or(e),
        read => read,
    }
}

/// The most a page whose overflow run the end of the file cuts is copied
/// for: etcd's largest request (1.5 MiB by default) fits in it.
const MAX_CUT_SPAN: usize = 4 << 20;

/// Whether the file ends inside a page of the window's span (as its header
/// claims it), close enough to copy.
fn reaches_cut_page(rest: &[u8], ps: usize) -> bool {
    let claims = PageHeader::parse(rest).map_or(0, |h| (u64::from(h.overflow) + 1) * ps as u64);
    rest.len() % ps != 0 && rest.len() <= MAX_CUT_SPAN && claims > rest.len() as u64
}

/// A page whose overflow run ends in the file's cut last page: read from a
/// copy padded with zeros, and kept only when every element lies before
/// the cut (then the cut took none of its data).
fn read_cut_span(rest: &[u8], ps: usize, p: u64, pages: u64, want: Option<NodeKind>) -> Option<Read> {
    let mut padded = rest.to_vec();
    padded.resize(rest.len().next_multiple_of(ps), 0);
    let r = read_window(&padded, ps, p, pages + 1, want).ok()?;
    let (kind, count) = match &r.content {
        Content::Leaf(e) => (NodeKind::Leaf, e.len()),
        Content::Branch(e) => (NodeKind::Branch, e.len()),
    };
    let end = extent(&padded, kind, u16::try_from(count).ok()?)?;
    (end <= rest.len()).then_some(r)
}

/// Reads page `p` from `w`, the file from that page on; `pages` is the
/// file's page count (child ids must lie below it).
fn read_window(w: &[u8], ps: usize, p: u64, pages: u64, want: Option<NodeKind>) -> Result<Read, String> {
    let h = PageHeader::parse(w).expect("a page is at least 512 bytes");
    let kinds: Vec<NodeKind> = match (h.kind(), want) {
        (PageKind::Leaf, _) => vec![NodeKind::Leaf],
        (PageKind::Branch, _) => vec![NodeKind::Branch],
        (_, Some(k)) => vec![k],
        (_, None) => vec![NodeKind::Leaf, NodeKind::Branch],
    };
    let mut last = String::new();
    for kind in kinds {
        // A stored count of 0 with an element table behind it is a damaged
        // count: the table is tried first.
        let inferred = inferred_count(w, kind);
        let counts = if h.count == 0 {
            [inferred, Some(0)]
        } else {
            [Some(h.count), inferred]
        };
        let mut tried = Vec::new();
        for count in counts.into_iter().flatten() {
            if tried.contains(&count) {
                continue;
            }
            tried.push(count);
            let mut overflows = vec![h.overflow];
            if let Some(o) = inferred_overflow(w, ps, kind, count) {
                overflows.push(o);
            }
            for overflow in overflows {
                let t = Try {
                    kind,
                    count,
                    overflow,
                };
                match attempt(w, ps, p, pages, t) {
                    Ok(content) => {
                        return Ok(Read {
                            content,
                            span: u64::from(overflow) + 1,
                            repairs: repairs(&h, p, t),
                        });
                    }
                    Err(e) => last = e,
                }
            }
        }
    }
    Err(if h.id != p && matches!(h.kind(), PageKind::Unknown(_)) {
        format!(
            "page {p}: header (id {}, flags 0x{:04x}) and contents are not a bbolt node",
            h.id, h.flags
        )
    } else {
        last
    })
}

/// The element count the first element implies: its key starts right after
/// the table.
fn inferred_count(w: &[u8], kind: NodeKind) -> Option<u16> {
    let pos_at = match kind {
        NodeKind::Leaf => PAGE_HEADER_SIZE + 4,
        NodeKind::Branch => PAGE_HEADER_SIZE,
    };
    let pos = le_u32(w, pos_at)? as usize;
    (pos >= ELEMENT_SIZE && pos % ELEMENT_SIZE == 0)
        .then(|| u16::try_from(pos / ELEMENT_SIZE).ok())
        .flatten()
}

/// Where the last byte of the page's elements ends, from its start.
fn extent(w: &[u8], kind: NodeKind, count: u16) -> Option<usize> {
    let mut end = PAGE_HEADER_SIZE + ELEMENT_SIZE * usize::from(count);
    for i in 0..usize::from(count) {
        let e = PAGE_HEADER_SIZE + ELEMENT_SIZE * i;
        let (pos, len) = match kind {
            NodeKind::Leaf => (
                le_u32(w, e + 4)? as usize,
                le_u32(w, e + 8)? as usize + le_u32(w, e + 12)? as usize,
            ),
            NodeKind::Branch => (le_u32(w, e)? as usize, le_u32(w, e + 4)? as usize),
        };
        end = end.max(e.checked_add(pos)?.checked_add(len)?);
    }
    Some(end)
}

/// The overflow the elements' extents imply.
fn inferred_overflow(w: &[u8], ps: usize, kind: NodeKind, count: u16) -> Option<u32> {
    let span = extent(w, kind, count)?.div_ceil(ps);
    // Only what lies inside the file.
    (span.checked_mul(ps)? <= w.len())
        .then(|| u32::try_from(span.saturating_sub(1)).ok())
        .flatten()
}

/// Reads the page with the header `t`, checking everything a header cannot
/// vouch for: element extents, ascending keys, child ids inside the file.
fn attempt(w: &[u8], ps: usize, p: u64, pages: u64, t: Try) -> Result<Content, String> {
    let span = u64::from(t.overflow) + 1;
    if span.checked_mul(ps as u64).is_none_or(|len| len > w.len() as u64) {
        return Err(format!(
            "page {p}: {} overflow page(s) run past the end of the file",
            t.overflow
        ));
    }
    let bytes = &w[..span as usize * ps];
    let mut owned;
    let patched = PageHeader::parse(bytes) != Some(header_for(p, t));
    let view: &[u8] = if !patched {
        bytes
    } else {
        if t.count == 0 {
            return Err(format!(
                "page {p}: no elements, and the header does not name this page as a node"
            ));
        }
        owned = bytes.to_vec();
        owned[0..8].copy_from_slice(&p.to_le_bytes());
        let flags: u16 = if t.kind == NodeKind::Leaf { 0x02 } else { 0x01 };
        owned[8..10].copy_from_slice(&flags.to_le_bytes());
        owned[10..12].copy_from_slice(&t.count.to_le_bytes());
        owned[12..16].copy_from_slice(&t.overflow.to_le_bytes());
        &owned
    };
    let node = Node::parse(NodeLoc::Page { pgid: Pgid(p) }, p.saturating_mul(ps as u64), view)
        .map_err(|e| e.to_string())?;
    let ascending = |prev: &Option<Vec<u8>>, k: &[u8]| prev.as_deref().is_none_or(|q| q < k);
    match t.kind {
        NodeKind::Leaf => {
            let mut out: Vec<Elem> = Vec::with_capacity(node.count());
            for i in 0..node.count() {
                let e = node.leaf(i).map_err(|e| e.to_string())?;
                if !ascending(&out.last().map(|x| x.key.clone()), e.key) {
                    return Err(format!(
                        "page {p}: leaf keys are not in ascending order at element {i}"
                    ));
                }
                out.push(Elem {
                    flags: e.flags,
                    key: e.key.to_vec(),
                    value: e.value.to_vec(),
                });
            }
            Ok(Content::Leaf(out))
        }
        NodeKind::Branch => {
            if node.count() == 0 {
                return Err(format!("page {p}: a branch page with no elements"));
            }
            let mut out: Vec<(Vec<u8>, u64)> = Vec::with_capacity(node.count());
            for i in 0..node.count() {
                let e = node.branch(i).map_err(|e| e.to_string())?;
                // A child past the end of a cut file is the child's problem;
                // a patched header must point inside the file to be trusted.
                if e.child.0 < 2 || e.child.0 == p || (patched && e.child.0 >= pages) {
                    return Err(format!(
                        "page {p}: branch element {i} points at page {}, not a data page of this file",
                        e.child
                    ));
                }
                if !ascending(&out.last().map(|x| x.0.clone()), e.key) {
                    return Err(format!(
                        "page {p}: branch keys are not in ascending order at element {i}"
                    ));
                }
                out.push((e.key.to_vec(), e.child.0));
            }
            Ok(Content::Branch(out))
        }
    }
}

fn header_for(p: u64, t: Try) -> PageHeader {
    PageHeader {
        id: p,
        flags: if t.kind == NodeKind::Leaf { 0x02 } else { 0x01 },
        count: t.count,
        overflow: t.overflow,
    }
}

/// What differs between the stored header and the one that worked.
fn repairs(h: &PageHeader, p: u64, t: Try) -> Vec<String> {
    let want = header_for(p, t);
    let mut r = Vec::new();
    if h.id != want.id {
        r.push(format!("id {} (expected {p})", h.id));
    }
    if h.flags != want.flags {
        r.push(format!(
            "type flags 0x{:04x} (read as a {})",
            h.flags,
            PageKind::from_flags(want.flags)
        ));
    }
    if h.count != want.count {
        r.push(format!(
            "element count {} (the element table holds {})",
            h.count, want.count
        ));
    }
    if h.overflow != want.overflow {
        r.push(format!(
            "overflow {} (the elements span {})",
            h.overflow, want.overflow
        ));
    }
    r
}

/// The element count as stored, when the header still names this page as a
/// leaf: evidence of how many records an unreadable leaf held.
pub(super) fn stored_count(data: &[u8], ps: usize, p: u64) -> Option<u16> {
    let off = usize::try_from(p).ok()?.checked_mul(ps)?;
    let h = PageHeader::parse(data.get(off..)?)?;
    (h.id == p && h.kind() == PageKind::Leaf).then_some(h.count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::node::tests::leaf_image;

    fn file_with(page: Vec<u8>, ps: usize) -> Vec<u8> {
        let mut f = vec![0u8; 2 * ps];
        f.extend(page);
        f
    }

    #[test]
    fn a_leaf_with_broken_flags_count_and_id_is_read_and_the_repairs_named() {
        let ps = 4096;
        let mut page = leaf_image(&[(0, b"a", b"1"), (0, b"b", b"2"), (0, b"c", b"3")], ps);
        page[0..8].copy_from_slice(&2u64.to_le_bytes());
        let good = read(&file_with(page.clone(), ps), ps, 2, None).unwrap();
        assert!(good.repairs.is_empty());
        page[0..8].copy_from_slice(&77u64.to_le_bytes());
        page[8] = 0x10;
        page[10] = 200;
        page[12] = 9;
        let r = read(&file_with(page, ps), ps, 2, None).unwrap();
        let Content::Leaf(e) = r.content else { panic!() };
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].value, b"3");
        assert_eq!(r.span, 1);
        assert_eq!(r.repairs.len(), 4, "{:?}", r.repairs);
    }

    #[test]
    fn garbage_is_not_a_page() {
        let ps = 4096;
        let page: Vec<u8> = (0..ps).map(|i| (i * 7 + 3) as u8).collect();
        assert!(read(&file_with(page, ps), ps, 2, None).is_err());
        assert!(read(&file_with(vec![0xee; ps], ps), ps, 2, None).is_err());
        assert!(read(&file_with(vec![0; ps], ps), ps, 9, None).is_err());
    }

    /// A leaf of one element with one overflow page (pages 2 and 3), its
    /// key and value 100 bytes into the overflow page.
    fn overflowing_leaf(ps: usize) -> Vec<u8> {
        let mut f = vec![0u8; 4 * ps];
        let p = 2 * ps;
        f[p..p + 8].copy_from_slice(&2u64.to_le_bytes());
        f[p + 8..p + 10].copy_from_slice(&0x02u16.to_le_bytes());
        f[p + 10..p + 12].copy_from_slice(&1u16.to_le_bytes());
        f[p + 12..p + 16].copy_from_slice(&1u32.to_le_bytes());
        let at = PAGE_HEADER_SIZE;
        let pos = (ps + 100 - at) as u32;
        f[p + at + 4..p + at + 8].copy_from_slice(&pos.to_le_bytes());
        f[p + at + 8..p + at + 12].copy_from_slice(&5u32.to_le_bytes());
        f[p + at + 12..p + at + 16].copy_from_slice(&10u32.to_le_bytes());
        f[p + ps + 100..p + ps + 115].copy_from_slice(b"hellovalue-0123");
        f
    }

    #[test]
    fn a_leaf_whose_overflow_run_the_file_end_cuts_is_read_when_its_data_lies_before_the_cut() {
        let ps = 4096;
        let f = overflowing_leaf(ps);
        // Cut after the element's bytes: all of it is there.
        let r = read(&f[..3 * ps + 200], ps, 2, None).unwrap();
        let Content::Leaf(e) = r.content else { panic!() };
        assert_eq!(
            (e[0].key.as_slice(), e[0].value.as_slice()),
            (&b"hello"[..], &b"value-0123"[..])
        );
        assert_eq!(r.span, 2);
        // Cut through the value: its last bytes are gone, so the page is not read.
        let e = read(&f[..3 * ps + 110], ps, 2, None).unwrap_err();
        assert!(e.contains("run past the end of the file"), "{e}");
    }
}
