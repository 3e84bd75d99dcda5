//! The structural check of a bbolt file: meta pages, every reachable page,
//! key order, the freelist against the reachable set, and page accounting.
//!
//! It is what `bbolt check` does (reachability, double references, freed
//! pages in use, unreachable pages) plus what bbolt skips: element and data
//! bounds, page ids, inline buckets, depth and cycles. Every problem becomes
//! a [`Finding`]; the walk goes on past it.
//!
//! The check takes an inner [`Visitor`] so that higher layers (etcd's schema
//! checks) run in the same single pass over the tree.

use super::error::Error;
use super::freelist::Freelist;
use super::meta::{self, MetaChoice};
use super::node::{LeafElem, Node};
use super::page::Pgid;
use super::walk::{self, PageSet, Visitor, WalkStats};
use super::{Bucket, Db};
use crate::report::{Finding, Findings, Severity};

/// How the pages below the high-water mark are used.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageCounts {
    /// Page size in bytes.
    pub page_size: u64,
    /// The meta's high-water mark (pages 0..hwm are allocated).
    pub high_water_mark: u64,
    /// Whole pages present in the file.
    pub file_pages: u64,
    /// Pages in use: the two meta pages, the freelist page(s) and every page
    /// reachable from the root.
    pub in_use: u64,
    /// Free pages: listed in the freelist, or (with no stored freelist) every
    /// page below the high-water mark the tree does not reach.
    pub free: u64,
    /// Pages neither in use nor listed as free (only knowable with a stored freelist).
    pub leaked: u64,
    /// Whether the file carries a freelist page (etcd's never do on Linux).
    pub freelist_synced: bool,
    /// Branch pages reached.
    pub branch: u64,
    /// Leaf pages reached.
    pub leaf: u64,
    /// Overflow pages (continuations of large nodes).
    pub overflow: u64,
}

/// The result of a structural check.
#[derive(Clone, Debug)]
pub struct StructureReport {
    /// The meta pages, when at least one is valid.
    pub meta: Option<MetaChoice>,
    /// Page accounting (empty when no meta is valid).
    pub pages: PageCounts,
    /// Walk counts.
    pub walk: WalkStats,
    /// Everything found.
    pub findings: Findings,
}

impl StructureReport {
    /// Whether the file could be opened as bbolt at all.
    pub fn opened(&self) -> bool {
        self.meta.is_some()
    }
}

/// Adapts an inner visitor: forwards everything and records problems as findings.
struct Collect<'v, V> {
    inner: &'v mut V,
    findings: Findings,
}

impl<'a, V: Visitor<'a>> Visitor<'a> for Collect<'_, V> {
    fn page(&mut self, node: &Node<'a>, depth: usize) {
        self.inner.page(node, depth);
    }
    fn entry(&mut self, path: &[&'a [u8]], node: &Node<'a>, index: usize, elem: &LeafElem<'a>) {
        self.inner.entry(path, node, index, elem);
    }
    fn enter_bucket(&mut self, path: &[&'a [u8]], bucket: &Bucket<'a>) {
        self.inner.enter_bucket(path, bucket);
    }
    fn leave_bucket(&mut self, path: &[&'a [u8]]) {
        self.inner.leave_bucket(path);
    }
    fn problem(&mut self, error: Error) {
        self.findings.push(error.finding(Severity::Error));
        self.inner.problem(error);
    }
}

/// Checks the bbolt structure of `data`, running `inner` over the same walk.
pub fn check<'a, V: Visitor<'a>>(data: &'a [u8], inner: &mut V) -> StructureReport {
    let mut findings = Findings::default();
    let (db, choice) = match Db::open(data) {
        Ok(x) => x,
        Err(e) => {
            findings.push(e.finding(Severity::Error));
            return StructureReport {
                meta: None,
                pages: PageCounts::default(),
                walk: WalkStats::default(),
                findings,
            };
        }
    };
    meta_findings(&db, &choice, &mut findings);
    let mut collect = Collect {
        inner,
        findings: Findings::default(),
    };
    let outcome = walk::walk(db, &mut collect);
    findings.extend(collect.findings);
    let pages = account_pages(&db, &outcome.reachable, &outcome.stats, Some(&mut findings));
    StructureReport {
        meta: Some(choice),
        pages,
        walk: outcome.stats,
        findings,
    }
}

fn meta_findings(db: &Db<'_>, choice: &MetaChoice, out: &mut Findings) {
    let used = choice.used;
    for (i, m) in choice.metas.iter().enumerate() {
        let offset = if i == 0 { 0 } else { choice.meta1_offset };
        match m {
            Err(e) => out.push(
                Finding::new(
                    Severity::Warning,
                    "meta-invalid",
                    format!(
                        "meta page {i} is invalid: {e}; bbolt uses meta page {used} (txid {}), so the last committed transaction may be lost",
                        choice.meta().txid
                    ),
                )
                .at_page(i as u64)
                .at_offset(offset),
            ),
            Ok(m) if !m.header_is_meta() => out.push(
                Finding::new(
                    Severity::Warning,
                    "meta-header",
                    format!(
                        "meta page {i}: page header flags are 0x{:04x}, not 0x0004 (meta)",
                        m.header_flags
                    ),
                )
                .at_page(i as u64)
                .at_offset(offset),
            ),
            Ok(_) => {}
        }
    }
    if let (Ok(a), Ok(b)) = (&choice.metas[0], &choice.metas[1])
        && a.page_size != b.page_size
    {
        out.push(Finding::new(
            Severity::Error,
            "meta-page-size-mismatch",
            format!(
                "meta pages disagree on the page size: {} and {}",
                a.page_size, b.page_size
            ),
        ));
    }
    used_meta_findings(db, used, out);
}

/// The meta page bbolt uses against the file: its high-water mark, root
/// and freelist pages in range, and the file as long as it says.
fn used_meta_findings(db: &Db<'_>, used: u8, out: &mut Findings) {
    let m = db.meta();
    let hwm = m.pgid.0;
    let used_page = u64::from(used);
    if hwm < 4 {
        out.push(
            Finding::new(
                Severity::Error,
                "meta-high-water-mark",
                format!(
                    "meta page {used}: high-water mark {hwm} is below 4, the size of an empty bbolt file"
                ),
            )
            .at_page(used_page),
        );
    }
    if m.root.0 < 2 || m.root.0 >= hwm {
        out.push(
            Finding::new(
                Severity::Error,
                "meta-root-out-of-range",
                format!(
                    "meta page {used}: root bucket page {} is outside 2..{hwm}",
                    m.root
                ),
            )
            .at_page(used_page),
        );
    }
    if m.has_freelist() && (m.freelist.0 < 2 || m.freelist.0 >= hwm) {
        out.push(
            Finding::new(
                Severity::Error,
                "meta-freelist-out-of-range",
                format!(
                    "meta page {used}: freelist page {} is outside 2..{hwm}",
                    m.freelist
                ),
            )
            .at_page(used_page),
        );
    }
    let file_len = db.data().len() as u64;
    match db.size() {
        Some(size) if size <= file_len => {}
        size => out.push(
            Finding::new(
                Severity::Error,
                "file-truncated",
                format!(
                    "the meta page says the file holds {hwm} pages of {} bytes ({} bytes) but the file has only {file_len} bytes ({} whole pages): it was cut short",
                    db.page_size(),
                    size.map_or_else(|| "more than 2^64".to_string(), |s| s.to_string()),
                    db.file_pages()
                ),
            )
            .at_offset(file_len),
        ),
    }
}

/// Counts pages in use, free and leaked; with `findings`, reports freelist
/// problems (pages listed twice, free pages in use, pages neither free nor used).
pub fn account_pages(
    db: &Db<'_>,
    reachable: &PageSet,
    stats: &WalkStats,
    mut findings: Option<&mut Findings>,
) -> PageCounts {
    let m = db.meta();
    let hwm = m.pgid.0;
    let tracked = reachable.capacity();
    let mut used = reachable.clone();
    used.insert(0);
    used.insert(1);
    let mut counts = PageCounts {
        page_size: db.page_size() as u64,
        high_water_mark: hwm,
        file_pages: db.file_pages(),
        freelist_synced: m.has_freelist(),
        branch: stats.branch_pages,
        leaf: stats.leaf_pages,
        overflow: stats.overflow_pages,
        ..PageCounts::default()
    };
    let mut report = |f: Finding| {
        if let Some(out) = findings.as_deref_mut() {
            out.push(f);
        }
    };
    if !m.has_freelist() {
        counts.in_use = used.count();
        counts.free = tracked.saturating_sub(counts.in_use);
        return counts;
    }
    let fl = match Freelist::read(db, m.freelist) {
        Ok(fl) => fl,
        Err(e) => {
            report(e.finding(Severity::Error));
            counts.in_use = used.count();
            return counts;
        }
    };
    let free = freed_pages(&fl, m.freelist, hwm, tracked, &mut used, &mut report);
    let mut leaked = Vec::new();
    for p in 2..tracked {
        if !used.contains(p) && !free.contains(p) {
            leaked.push(Pgid(p));
        }
    }
    counts.in_use = used.count();
    counts.free = free.count();
    counts.leaked = leaked.len() as u64;
    if !leaked.is_empty() {
        report(Finding::new(
            Severity::Warning,
            "unreachable-unfreed",
            format!(
                "{} pages are neither reachable nor free (leaked): {}",
                leaked.len(),
                ranges(&leaked)
            ),
        ));
    }
    counts
}

/// The pages the freelist frees, checking each against the tree: the
/// freelist's own pages in use, entries out of range, duplicates, and
/// pages both freed and reachable (the next write would overwrite them).
fn freed_pages(
    fl: &Freelist<'_>,
    freelist: Pgid,
    hwm: u64,
    tracked: u64,
    used: &mut PageSet,
    report: &mut dyn FnMut(Finding),
) -> PageSet {
    for p in freelist.0..=freelist.0.saturating_add(u64::from(fl.overflow)) {
        if used.insert(p) {
            report(
                Finding::new(
                    Severity::Error,
                    "freelist-page-in-use",
                    format!("freelist page {p} is also reachable from the tree"),
                )
                .at_page(p),
            );
        }
    }
    let mut free = PageSet::new(tracked);
    for (i, p) in fl.ids().enumerate() {
        let at = fl.ids_offset + 8 * i as u64;
        if p.0 < 2 || p.0 >= hwm {
            report(
                Finding::new(
                    Severity::Error,
                    "freelist-entry-out-of-range",
                    format!("freelist entry {i} names page {p}, outside 2..{hwm}"),
                )
                .at_page(freelist.0)
                .at_offset(at),
            );
            continue;
        }
        if free.insert(p.0) {
            report(
                Finding::new(
                    Severity::Error,
                    "freelist-duplicate",
                    format!("page {p} is listed in the freelist twice (already freed)"),
                )
                .at_page(freelist.0)
                .at_offset(at),
            );
        }
        if used.contains(p.0) {
            report(
                Finding::new(
                    Severity::Error,
                    "reachable-freed",
                    format!("page {p} is in the freelist but also in use by the tree: the next write would overwrite live data"),
                )
                .at_page(p.0),
            );
        }
    }
    free
}

/// "2-5, 9, 12-13" for a sorted list, shortened after 20 ranges.
fn ranges(ids: &[Pgid]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    let mut n = 0;
    while i < ids.len() {
        let start = ids[i].0;
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1].0 == end + 1 {
            i += 1;
            end += 1;
        }
        n += 1;
        if n <= 20 {
            out.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
        }
        i += 1;
    }
    if n > 20 {
        out.push(format!("... ({} ranges)", n));
    }
    out.join(", ")
}

/// Reads the meta pages only (for callers that need the choice without a walk).
pub fn read_meta(data: &[u8]) -> Result<MetaChoice, Error> {
    if data.is_empty() {
        return Err(Error::Empty);
    }
    Ok(meta::choose(data)?)
}
