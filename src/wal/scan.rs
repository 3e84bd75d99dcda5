//! One pass over a WAL directory: every record through the [`reader`], the
//! raft log as etcd builds it, and findings with file, offset and raft index.
//! `inspect` and `check` use the [`WalReport`]; `wal` also gets every entry
//! through a callback.
//!
//! [`reader`]: super::reader

use super::confchange::ChangeKind;
use super::dir::WalDir;
use super::entry::{Entry, EntryType};
use super::ids::{Index, Term};
use super::log::{Appended, Gap, Log};
use super::payload::{self, Request};
use super::reader::{self, Damage, DamageKind, EndKind, Event, Loc};
use super::record::{HardState, Metadata, RecordType, SnapshotMark};
use crate::membership::MemberId;
use crate::report::{Finding, Findings, Severity};

/// What to check besides the records themselves.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanOptions {
    /// Decode the payload of every entry etcd would apply (finds entries
    /// etcd would panic on). Costs a copy of every key and value.
    pub payloads: bool,
}

/// One segment.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentInfo {
    /// File name.
    pub file: String,
    /// Sequence number from the name.
    pub seq: u64,
    /// Raft index from the name.
    pub name_index: Index,
    /// Size in bytes.
    pub size: u64,
    /// Sound records.
    pub records: u64,
    /// End of the last record read in order from the start.
    pub valid_end: u64,
    /// How reading it ended.
    pub end: EndKind,
    /// First entry index in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_entry: Option<Index>,
    /// Last entry index in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_entry: Option<Index>,
}

/// How the WAL ends, as etcd reads it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Tail {
    /// etcd reads every record, to the end.
    Clean,
    /// The last segment ends in a torn write, which etcd cuts off at start.
    #[serde(rename_all = "camelCase")]
    Torn {
        /// Segment file.
        file: String,
        /// Offset where etcd truncates it.
        offset: u64,
        /// What is torn.
        message: String,
        /// Sound records after that point that etcd will lose with the cut.
        intact_after: u64,
    },
    /// Corruption where etcd stops and refuses to start.
    #[serde(rename_all = "camelCase")]
    Corrupt {
        /// Segment file.
        file: String,
        /// Offset of the bad frame or record.
        offset: u64,
        /// Finding code.
        code: &'static str,
        /// What is wrong.
        message: String,
        /// Index of the last entry etcd read before it.
        after_index: Option<Index>,
        /// Index the damaged record claims, when its entry still decodes.
        claimed_index: Option<Index>,
    },
}

/// Entries after the point where etcd stops, or hidden from it, that the
/// salvage read found intact.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Salvage {
    /// Records.
    pub records: u64,
    /// Entries among them.
    pub entries: u64,
    /// Lowest entry index among them.
    pub first_index: Option<Index>,
    /// Highest entry index among them.
    pub last_index: Option<Index>,
    /// Bytes skipped over damage.
    pub skipped_bytes: u64,
    /// Index ranges `[first, last]`, between the lowest and highest entry
    /// found, for which no sound entry record was found at all (neither by
    /// etcd's reading nor by salvage): what the damage lost.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<[u64; 2]>,
}

/// The entry indexes met, as sorted ranges (entries come mostly in order).
#[derive(Default)]
struct Found(Vec<[u64; 2]>);

impl Found {
    fn add(&mut self, i: u64) {
        match self.0.last_mut() {
            Some(r) if i >= r[0] && i <= r[1].saturating_add(1) => r[1] = r[1].max(i),
            _ => self.0.push([i, i]),
        }
    }

    /// The holes between the lowest and the highest index met.
    fn holes(mut self) -> Vec<[u64; 2]> {
        self.0.sort_unstable();
        let mut out = Vec::new();
        let mut end: Option<u64> = None;
        for [a, b] in self.0 {
            if let Some(e) = end
                && a > e.saturating_add(1)
            {
                out.push([e + 1, a - 1]);
            }
            end = Some(end.map_or(b, |e| e.max(b)));
        }
        out
    }
}

/// A snapshot record, and where it is.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    /// Index, term and configuration.
    #[serde(flatten)]
    pub mark: SnapshotMark,
    /// Segment file.
    pub file: String,
    /// Position of that segment in the list.
    #[serde(skip)]
    pub segment: usize,
    /// Offset of the record.
    pub offset: u64,
}

/// A membership change in the log.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    /// Entry index.
    pub index: Index,
    /// What it does.
    pub change: ChangeKind,
    /// The member.
    pub node_id: MemberId,
}

/// Counts of entries in the log etcd reads.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryCounts {
    /// Entries in the log (after replacements).
    pub entries: u64,
    /// Entry records read (including replaced ones).
    pub records: u64,
    /// Entries replaced by later ones with the same or a lower index.
    pub replaced: u64,
    /// First index.
    pub first_index: Option<Index>,
    /// Last index.
    pub last_index: Option<Index>,
    /// Term of the last entry.
    pub last_term: Option<Term>,
    /// Empty normal entries (leader no-ops) read.
    pub noops: u64,
    /// ConfChange entries read.
    pub conf_changes: u64,
}

/// Everything one pass learns about a WAL.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalReport {
    /// The directory.
    pub dir: String,
    /// Total bytes of the segments.
    pub bytes: u64,
    /// Segments in order.
    pub segments: Vec<SegmentInfo>,
    /// Preallocated `.tmp` files.
    pub tmp_files: Vec<String>,
    /// `.broken` files.
    pub broken_files: Vec<String>,
    /// Node and cluster IDs.
    pub metadata: Option<Metadata>,
    /// The last HardState etcd reads.
    pub hard_state: Option<HardState>,
    /// Snapshot records etcd reads, in order.
    pub snapshots: Vec<SnapshotRecord>,
    /// Entry counts and range.
    pub entries: EntryCounts,
    /// Membership changes in the log.
    pub member_changes: Vec<MemberChange>,
    /// How it ends.
    pub tail: Tail,
    /// What the salvage read found beyond etcd's view.
    pub salvage: Salvage,
    /// Gaps in the log.
    pub gaps: Vec<Gap>,
    /// Problems, with file and offset.
    pub findings: Findings,
    /// Terms by index.
    #[serde(skip)]
    pub log: Log,
}

impl WalReport {
    /// Whether etcd can read this WAL to its end (perhaps after cutting a torn tail).
    pub fn readable_by_etcd(&self) -> bool {
        !matches!(self.tail, Tail::Corrupt { .. })
    }
}

/// An entry as the scan meets it.
#[derive(Clone, Copy, Debug)]
pub struct EntryAt<'a> {
    /// The entry.
    pub entry: Entry<'a>,
    /// Where its record is.
    pub at: Loc,
    /// Whether etcd reads it.
    pub seen_by_etcd: bool,
    /// Whether its record failed its CRC (shown only when salvaging).
    pub damaged: bool,
}

fn code_of(kind: &DamageKind, torn: bool, last: bool) -> &'static str {
    if torn {
        return "wal-torn-tail";
    }
    match kind {
        DamageKind::ShortWord { .. } | DamageKind::PastEnd { .. } if !last => "wal-truncated-segment",
        DamageKind::ShortWord { .. } | DamageKind::PastEnd { .. } | DamageKind::TooLarge { .. } => {
            "wal-bad-frame"
        }
        DamageKind::Undecodable(_) => "wal-undecodable-record",
        DamageKind::CrcMismatch { .. } => "wal-crc-mismatch",
        DamageKind::ChainBreak { .. } => "wal-chain-break",
        DamageKind::UnknownType { .. } => "wal-unknown-record",
        DamageKind::DataAfterEnd { .. } => "wal-data-after-end",
    }
}

/// A finding about data after a segment's end, whose severity waits for
/// the segment's end (whether records lie hidden beyond it).
struct Pending {
    finding: usize,
    segment: usize,
    hidden_records: u64,
}

/// Scans a WAL directory. `on_entry` sees every entry the reader finds, in
/// file order (including ones etcd does not read, flagged).
pub fn scan<'a>(dir: &'a WalDir, opts: ScanOptions, on_entry: impl FnMut(&EntryAt<'a>)) -> WalReport {
    let segs = dir.segment_bytes();
    let mut state = Scan::new(dir, opts, on_entry);
    reader::read(&segs, |ev| state.event(ev));
    state.finish()
}

/// The scan as a state machine over the reader's events. Its state is what
/// etcd's reading has reached: `stop_seen` once etcd would stop (a torn
/// tail or corruption; records after it are salvage's), and a `pending`
/// data-after-end finding until its segment ends.
struct Scan<'a, 'd, F> {
    dir: &'d WalDir,
    opts: ScanOptions,
    on_entry: F,
    r: WalReport,
    last_seen_index: Option<Index>,
    pending: Option<Pending>,
    /// The type of each segment's first record.
    first_record_of: Vec<Option<RecordType>>,
    /// Segments whose first record is damaged beyond telling its type (the
    /// damage is reported; what comes next is not the segment's header).
    first_unreadable: Vec<bool>,
    metadata_raw: Option<&'a [u8]>,
    items: Vec<Finding>,
    stop_seen: bool,
    intact_after_stop: u64,
    found: Found,
}

impl<'a, 'd, F: FnMut(&EntryAt<'a>)> Scan<'a, 'd, F> {
    fn new(dir: &'d WalDir, opts: ScanOptions, on_entry: F) -> Self {
        let nseg = dir.segments.len();
        let mut r = WalReport {
            dir: dir.path.display().to_string(),
            bytes: dir.total_bytes(),
            segments: dir.segments.iter().map(segment_info).collect(),
            tmp_files: dir.tmp_files.clone(),
            broken_files: dir.broken_files.clone(),
            metadata: None,
            hard_state: None,
            snapshots: Vec::new(),
            entries: EntryCounts::default(),
            member_changes: Vec::new(),
            tail: Tail::Clean,
            salvage: Salvage::default(),
            gaps: Vec::new(),
            findings: Findings::default(),
            log: Log::default(),
        };
        dir_findings(dir, &mut r.findings);
        Scan {
            dir,
            opts,
            on_entry,
            r,
            last_seen_index: None,
            pending: None,
            first_record_of: vec![None; nseg],
            first_unreadable: vec![false; nseg],
            metadata_raw: None,
            items: Vec::new(),
            stop_seen: false,
            intact_after_stop: 0,
            found: Found::default(),
        }
    }

    fn file(&self, i: usize) -> String {
        self.dir
            .segments
            .get(i)
            .map(|s| s.file_name.clone())
            .unwrap_or_default()
    }

    fn last_segment(&self, i: usize) -> bool {
        i + 1 == self.dir.segments.len()
    }

    fn event(&mut self, ev: Event<'a>) {
        match ev {
            Event::Record(rec) => self.record(rec),
            Event::Damage(d) => self.damage(&d),
            Event::SegmentEnd(e) => self.segment_end(&e),
        }
    }

    fn record(&mut self, rec: reader::Rec<'a>) {
        let si = rec.at.segment;
        self.first_record_of[si].get_or_insert(rec.kind);
        if !rec.seen_by_etcd {
            return self.hidden_record(&rec);
        }
        let (file, offset) = (self.file(si), rec.at.offset);
        let at = |f: Finding| f.in_file(file.clone()).at_offset(offset);
        let data = rec.record.data;
        match rec.kind {
            RecordType::Crc => {}
            RecordType::Metadata => match Metadata::decode(data) {
                Ok(m) => {
                    if let Some(f) = self.metadata(m, data) {
                        let f = at(f);
                        self.items.push(f);
                    }
                }
                Err(e) => self.items.push(at(undecodable_data("metadata", &e.to_string()))),
            },
            RecordType::State => match HardState::decode(data) {
                Ok(h) => self.r.hard_state = Some(h),
                Err(e) => self.items.push(at(undecodable_data("state", &e.to_string()))),
            },
            RecordType::Snapshot => match SnapshotMark::decode(data) {
                Ok(mark) => self.r.snapshots.push(SnapshotRecord {
                    mark,
                    file: self.file(si),
                    segment: si,
                    offset: rec.at.offset,
                }),
                Err(e) => self.items.push(at(undecodable_data("snapshot", &e.to_string()))),
            },
            RecordType::Entry => match Entry::parse(data) {
                Ok(e) => {
                    let found = self.entry(e, rec.at);
                    self.items.extend(found.into_iter().map(at));
                }
                Err(err) => self.items.push(at(undecodable_data("entry", &err.to_string()))),
            },
        }
    }

    /// A record etcd does not read (found by salvage past a stop, or
    /// hidden after a segment's end).
    fn hidden_record(&mut self, rec: &reader::Rec<'a>) {
        self.r.salvage.records += 1;
        if self.stop_seen {
            self.intact_after_stop += 1;
        }
        if let Some(p) = self.pending.as_mut().filter(|p| p.segment == rec.at.segment) {
            p.hidden_records += 1;
        }
        if rec.kind != RecordType::Entry {
            return;
        }
        if let Ok(e) = Entry::parse(rec.record.data) {
            let sv = &mut self.r.salvage;
            sv.entries += 1;
            self.found.add(e.index.0);
            sv.first_index = Some(sv.first_index.map_or(e.index, |x| x.min(e.index)));
            sv.last_index = Some(sv.last_index.map_or(e.index, |x| x.max(e.index)));
            (self.on_entry)(&EntryAt {
                entry: e,
                at: rec.at,
                seen_by_etcd: false,
                damaged: false,
            });
        }
    }

    /// The first metadata record is kept; a later one that differs is an
    /// error etcd refuses to start on.
    fn metadata(&mut self, m: Metadata, raw: &'a [u8]) -> Option<Finding> {
        match (self.metadata_raw, self.r.metadata) {
            (Some(first_raw), Some(first)) if first_raw != raw => Some(Finding::new(
                Severity::Error,
                "wal-metadata-conflict",
                format!(
                    "metadata record says node {} in cluster {}, but an earlier one says node {} in cluster {}: etcd refuses a WAL whose metadata records differ",
                    m.node_id, m.cluster_id, first.node_id, first.cluster_id
                ),
            )),
            (Some(_), _) => None,
            _ => {
                self.metadata_raw = Some(raw);
                self.r.metadata = Some(m);
                None
            }
        }
    }

    /// An entry etcd reads: into the raft log, the counts and the
    /// membership changes; the findings it earns.
    fn entry(&mut self, e: Entry<'a>, at: Loc) -> Vec<Finding> {
        (self.on_entry)(&EntryAt {
            entry: e,
            at,
            seen_by_etcd: true,
            damaged: false,
        });
        self.r.entries.records += 1;
        self.last_seen_index = Some(e.index);
        self.found.add(e.index.0);
        let s = &mut self.r.segments[at.segment];
        s.first_entry = Some(s.first_entry.map_or(e.index, |x| x.min(e.index)));
        s.last_entry = Some(s.last_entry.map_or(e.index, |x| x.max(e.index)));
        let mut out = Vec::new();
        if let Appended::Gap(g) = self.r.log.append(e.index, e.term) {
            out.push(Finding::new(
                Severity::Error,
                "wal-index-gap",
                format!(
                    "entry {} follows entry {}: entries {}..{} are missing, and etcd refuses a log with a hole (ErrSliceOutOfRange)",
                    g.next,
                    g.after,
                    g.after.0 + 1,
                    g.next.0 - 1
                ),
            ));
        }
        out.extend(self.payload(&e));
        out
    }

    /// What an entry's payload says: no-ops and conf changes counted,
    /// membership changes kept, undecodable payloads found (every normal
    /// entry's only when asked).
    fn payload(&mut self, e: &Entry<'a>) -> Option<Finding> {
        match e.kind {
            EntryType::Normal if e.data.is_empty() => {
                self.r.entries.noops += 1;
                return None;
            }
            EntryType::Normal if !self.opts.payloads => return None,
            EntryType::ConfChange => self.r.entries.conf_changes += 1,
            _ => {}
        }
        let p = payload::decode(e);
        match &p.request {
            Request::ConfChange(c) => self.r.member_changes.push(MemberChange {
                index: e.index,
                change: c.change,
                node_id: c.node_id,
            }),
            Request::ConfChangeV2(c) => {
                self.r
                    .member_changes
                    .extend(c.changes.iter().map(|x| MemberChange {
                        index: e.index,
                        change: x.change,
                        node_id: x.node_id,
                    }))
            }
            Request::Undecodable { reason } => return Some(bad_payload(e.index, reason)),
            Request::UnknownEntryType { raw } => {
                return Some(bad_payload(e.index, &format!("unknown entry type {raw}")));
            }
            Request::TooDeep { limit } if e.kind == EntryType::Normal => {
                return Some(too_deep(e.index, *limit));
            }
            _ => {}
        }
        None
    }

    fn damage(&mut self, d: &Damage<'a>) {
        let si = d.at.segment;
        let last = self.last_segment(si);
        if d.at.offset == 0 && self.first_record_of[si].is_none() {
            // A damaged first record still counts as the segment's first
            // (a crc record whose CRC was changed is still a crc record).
            match d.record.and_then(|rec| rec.kind()) {
                Some(k) => self.first_record_of[si] = Some(k),
                None => self.first_unreadable[si] = true,
            }
        }
        self.r.salvage.skipped_bytes += d.skipped;
        if matches!(d.kind, DamageKind::DataAfterEnd { .. }) {
            self.items.push(data_after_end(d, &self.file(si), last));
            self.pending = Some(Pending {
                finding: self.items.len() - 1,
                segment: si,
                hidden_records: 0,
            });
            return;
        }
        let code = code_of(&d.kind, d.torn && d.stops_etcd, last);
        let claimed = d
            .record
            .filter(|rec| rec.kind() == Some(RecordType::Entry))
            .and_then(|rec| Entry::parse(rec.data).ok());
        if d.stops_etcd {
            self.stop(d, code, claimed.map(|e| e.index));
        }
        if let Some(e) = claimed {
            (self.on_entry)(&EntryAt {
                entry: e,
                at: d.at,
                seen_by_etcd: false,
                damaged: true,
            });
        }
        let f = damage_finding(
            d,
            code,
            &self.file(si),
            self.last_seen_index,
            claimed.map(|e| e.index),
        );
        self.items.push(f);
    }

    /// Where etcd stops reading: the WAL's tail.
    fn stop(&mut self, d: &Damage<'a>, code: &'static str, claimed: Option<Index>) {
        self.stop_seen = true;
        let file = self.file(d.at.segment);
        self.r.tail = if d.torn {
            Tail::Torn {
                file,
                offset: d.at.offset,
                message: d.kind.to_string(),
                intact_after: 0,
            }
        } else {
            Tail::Corrupt {
                file,
                offset: d.at.offset,
                code,
                message: d.kind.to_string(),
                after_index: self.last_seen_index,
                claimed_index: claimed,
            }
        };
    }

    fn segment_end(&mut self, e: &reader::SegmentEnd) {
        let s = &mut self.r.segments[e.segment];
        s.records = e.records;
        s.valid_end = e.valid_end;
        s.end = e.kind;
        let Some(p) = self.pending.take() else { return };
        let last = self.last_segment(e.segment);
        let f = &mut self.items[p.finding];
        if p.hidden_records > 0 {
            f.severity = Severity::Error;
            f.message.push_str(&format!(
                "; {} intact record(s) lie beyond it, which etcd ignores{}",
                p.hidden_records,
                if last { " and erases when it starts" } else { "" }
            ));
        } else if !last {
            f.severity = Severity::Error;
        }
    }

    fn finish(mut self) -> WalReport {
        if let Tail::Torn { intact_after, .. } = &mut self.r.tail {
            *intact_after = self.intact_after_stop;
            if self.intact_after_stop > 0 {
                self.items.push(Finding::new(
                    Severity::Error,
                    "wal-intact-after-tear",
                    format!(
                        "{} intact record(s) follow the torn write: etcd will treat the damage as a torn tail and cut them off; salvage (`etcd-rescue wal --salvage`) still reads them",
                        self.intact_after_stop
                    ),
                ));
            }
        }
        self.segment_header_findings();
        self.log_findings();
        let r = &mut self.r;
        r.entries.entries = r.log.len();
        r.entries.replaced = r.log.replaced;
        r.entries.first_index = r.log.first();
        r.entries.last_index = r.log.last();
        r.entries.last_term = r.log.last_term();
        r.gaps = r.log.gaps.clone();
        r.salvage.lost = std::mem::take(&mut self.found).holes();
        for f in self.items {
            r.findings.push(f);
        }
        r.findings.sort();
        self.r
    }

    /// Every segment starts with a crc record.
    fn segment_header_findings(&mut self) {
        for (si, first) in self.first_record_of.iter().enumerate() {
            let f = match first {
                None => Finding::new(
                    Severity::Warning,
                    "wal-segment-empty",
                    "the segment holds no readable record".to_string(),
                ),
                Some(RecordType::Crc) => continue,
                Some(_) if self.first_unreadable[si] => continue,
                Some(k) => Finding::new(
                    Severity::Warning,
                    "wal-segment-header",
                    format!(
                        "the segment starts with a {} record, not a crc record: etcd always starts a segment with one",
                        k.name()
                    ),
                )
                .at_offset(0),
            };
            self.items.push(f.in_file(self.file(si)));
        }
    }

    /// Findings about the log as a whole: metadata, replaced entries, a
    /// commit index beyond the log.
    fn log_findings(&mut self) {
        let r = &self.r;
        if !self.dir.segments.is_empty() && r.metadata.is_none() {
            self.items.push(Finding::new(
                Severity::Error,
                "wal-no-metadata",
                "no readable metadata record: etcd cannot tell which member and cluster this WAL belongs to",
            ));
        }
        if r.log.replaced > 0 {
            self.items.push(Finding::new(
                Severity::Info,
                "wal-entries-replaced",
                format!(
                    "{} entries were replaced by later entries with the same index (a new leader overwrote uncommitted entries); etcd keeps the later ones",
                    r.log.replaced
                ),
            ));
        }
        if let (Some(h), Some(last)) = (r.hard_state, r.log.last())
            && h.commit > last
            && r.readable_by_etcd()
        {
            self.items.push(Finding::new(
                Severity::Error,
                "wal-commit-beyond-log",
                format!(
                    "the HardState says entries up to {} are committed, but the log etcd reads ends at {last}: raft panics at start (\"commit is out of range\")",
                    h.commit
                ),
            ));
        }
    }
}

fn segment_info(s: &super::dir::SegmentFile) -> SegmentInfo {
    SegmentInfo {
        file: s.file_name.clone(),
        seq: s.name.seq,
        name_index: s.name.index,
        size: s.file.bytes().len() as u64,
        records: 0,
        valid_end: 0,
        end: EndKind::Eof,
        first_entry: None,
        last_entry: None,
    }
}

fn undecodable_data(what: &str, err: &str) -> Finding {
    Finding::new(
        Severity::Error,
        "wal-undecodable-data",
        format!("a {what} record has a valid CRC but its data does not decode ({err}): etcd panics on it"),
    )
}

fn bad_payload(index: Index, reason: &str) -> Finding {
    Finding::new(
        Severity::Error,
        "wal-bad-payload",
        format!("entry {index} cannot be applied: {reason}; etcd panics when it applies it"),
    )
}

fn too_deep(index: Index, limit: usize) -> Finding {
    Finding::new(
        Severity::Warning,
        "wal-txn-too-deep",
        format!(
            "entry {index} holds a txn nested more than {limit} levels deep: etcd applies it, but etcd-rescue does not decode it, so its reads and restores of this member stop before this entry"
        ),
    )
}

fn data_after_end(d: &Damage<'_>, file: &str, last: bool) -> Finding {
    let DamageKind::DataAfterEnd { first_nonzero } = d.kind else {
        unreachable!("called for DataAfterEnd only")
    };
    let (sev, code, what) = if last {
        (
            Severity::Info,
            "wal-unsynced-tail",
            "leftovers of a write that never completed; etcd zeroes them when it starts".to_string(),
        )
    } else {
        (
            Severity::Error,
            "wal-data-after-end",
            "etcd skips the rest of this segment, so records there are lost and the next segment's CRC will not match"
                .to_string(),
        )
    };
    Finding::new(
        sev,
        code,
        format!(
            "the segment ends with a zero length word at offset {}, but non-zero bytes follow from offset {first_nonzero}: {what}",
            d.at.offset
        ),
    )
    .in_file(file)
    .at_offset(d.at.offset)
}

fn damage_finding(
    d: &Damage<'_>,
    code: &'static str,
    file: &str,
    after: Option<Index>,
    claimed: Option<Index>,
) -> Finding {
    let mut msg = d.kind.to_string();
    match (claimed, after) {
        (Some(c), _) => msg.push_str(&format!("; the record holds entry {c}")),
        (None, Some(a)) => msg.push_str(&format!("; the last good entry before it is {a}")),
        (None, None) => {}
    }
    if d.stops_etcd {
        if d.torn {
            msg.push_str(&format!(
                "; etcd treats this as a torn write: it cuts the segment at offset {} when it starts (keeping a copy as {file}.broken)",
                d.at.offset
            ));
        } else {
            msg.push_str("; etcd stops reading here and refuses to start");
        }
    } else if !d.seen_by_etcd {
        msg.push_str("; found by salvage past the point where etcd stops");
    }
    match d.resumed {
        Some(r) => msg.push_str(&format!(
            "; skipped {} bytes, reading resumed at offset {r}",
            d.skipped
        )),
        None if d.record.is_none() => msg.push_str(&format!(
            "; skipped {} bytes: nothing readable after it in this segment",
            d.skipped
        )),
        None => {}
    }
    let sev = if d.torn && d.stops_etcd {
        Severity::Warning
    } else {
        Severity::Error
    };
    Finding::new(sev, code, msg).in_file(file).at_offset(d.at.offset)
}

fn dir_findings(dir: &WalDir, out: &mut Findings) {
    if dir.segments.is_empty() {
        out.push(Finding::new(
            Severity::Error,
            "wal-empty",
            format!(
                "{}: no WAL segment (*.wal): etcd would not recognise this member and would bootstrap or join a cluster as a new one",
                dir.path.display()
            ),
        ));
    }
    for n in &dir.bad_names {
        out.push(
            Finding::new(
                Severity::Warning,
                "wal-bad-name",
                "ends in .wal but is not named <seq:%016x>-<index:%016x>.wal: not read here; etcd may ignore it or read it out of order",
            )
            .in_file(n.clone()),
        );
    }
    for n in &dir.broken_files {
        out.push(
            Finding::new(
                Severity::Info,
                "wal-broken-file",
                "a copy etcd kept when it repaired a torn WAL tail: an earlier start already cut this WAL",
            )
            .in_file(n.clone()),
        );
    }
    for n in &dir.tmp_files {
        out.push(
            Finding::new(
                Severity::Info,
                "wal-tmp-file",
                "a preallocated next segment: etcd was still running or did not shut down cleanly (a clean stop removes it)",
            )
            .in_file(n.clone()),
        );
    }
    for w in dir.segments.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.name.seq != a.name.seq.wrapping_add(1) {
            // etcd's isValidSeq skips the check after sequence 0 (it takes
            // 0 for "no previous segment yet"): there only the CRC chain
            // tells whether records are missing.
            let (sev, what) = if a.name.seq != 0 {
                (
                    Severity::Error,
                    "etcd refuses a WAL with missing segments (\"wal: file not found\")",
                )
            } else {
                (
                    Severity::Warning,
                    "etcd does not check the sequence after segment 0; the CRC chain at the next segment shows whether records are missing",
                )
            };
            out.push(
                Finding::new(
                    sev,
                    "wal-seq-gap",
                    format!(
                        "segment sequence jumps from {} ({}) to {} ({}): {} segment(s) missing or renamed; {what}",
                        a.name.seq,
                        a.file_name,
                        b.name.seq,
                        b.file_name,
                        b.name.seq.saturating_sub(a.name.seq).saturating_sub(1)
                    ),
                )
                .in_file(b.file_name.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::pb::raftpb;
    use crate::wal::writer::{SegmentWriter, add_node_entry};

    const FIRST: &str = "0000000000000000-0000000000000000.wal";

    fn normal(index: u64, data: &[u8]) -> raftpb::Entry {
        raftpb::Entry {
            term: Some(2),
            index: Some(index),
            r#type: Some(raftpb::EntryType::EntryNormal as i32),
            data: Some(data.to_vec()),
        }
    }

    /// A segment: metadata, a conf change at 1, then `entries` (index,
    /// payload), then a HardState committing `commit`.
    fn segment(entries: &[(u64, &[u8])], commit: u64) -> SegmentWriter {
        let mut w = SegmentWriter::new(0);
        w.metadata(7, 9);
        w.entry(&add_node_entry(2, 1, 7, b"{\"id\":7}"));
        for (i, d) in entries {
            w.entry(&normal(*i, d));
        }
        w.state(2, 7, commit);
        w
    }

    fn scan_bytes(bytes: Vec<u8>) -> WalReport {
        let d = WalDir::from_files(Path::new("mem"), vec![(FIRST.to_string(), bytes)]);
        scan(&d, ScanOptions { payloads: true }, |_| {})
    }

    fn codes(r: &WalReport) -> Vec<&'static str> {
        r.findings.items().iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_clean_log_reads_to_its_end() {
        let r = scan_bytes(segment(&[(2, b""), (3, b"")], 3).into_bytes());
        assert_eq!(r.tail, Tail::Clean);
        assert_eq!(codes(&r), Vec::<&str>::new());
        assert_eq!(
            (r.entries.entries, r.entries.noops, r.entries.conf_changes),
            (3, 2, 1)
        );
        assert_eq!(r.entries.last_index, Some(Index(3)));
        assert_eq!(r.member_changes.len(), 1);
        assert_eq!(r.metadata.map(|m| m.node_id), Some(MemberId(7)));
    }

    #[test]
    fn a_cut_last_record_is_a_torn_tail() {
        let mut b = segment(&[(2, b""), (3, b"")], 3).into_bytes();
        b.truncate(b.len() - 5);
        let r = scan_bytes(b);
        assert!(
            matches!(r.tail, Tail::Torn { intact_after: 0, .. }),
            "{:?}",
            r.tail
        );
        assert!(r.readable_by_etcd());
        assert!(codes(&r).contains(&"wal-torn-tail"), "{:?}", codes(&r));
    }

    #[test]
    fn a_bad_crc_before_the_end_stops_etcd_and_salvage_reads_on() {
        let w = segment(&[(2, b"xxxxxxxx"), (3, b"")], 3);
        let mut b = w.into_bytes();
        let at = b.windows(8).position(|x| x == b"xxxxxxxx").unwrap();
        b[at] = b'y';
        let r = scan_bytes(b);
        match &r.tail {
            Tail::Corrupt {
                code,
                after_index,
                claimed_index,
                ..
            } => {
                assert_eq!(*code, "wal-crc-mismatch");
                assert_eq!(*after_index, Some(Index(1)));
                assert_eq!(*claimed_index, Some(Index(2)));
            }
            t => panic!("{t:?}"),
        }
        assert!(!r.readable_by_etcd());
        // Past the stop: entry 3 and the HardState, read by salvage only.
        assert_eq!(r.salvage.records, 2);
        assert_eq!(r.salvage.last_index, Some(Index(3)));
        assert_eq!(r.entries.last_index, Some(Index(1)));
    }

    #[test]
    fn a_hole_in_the_log_and_a_commit_past_it_are_errors() {
        let r = scan_bytes(segment(&[(2, b""), (4, b"")], 9).into_bytes());
        let c = codes(&r);
        assert!(c.contains(&"wal-index-gap"), "{c:?}");
        assert!(c.contains(&"wal-commit-beyond-log"), "{c:?}");
        assert_eq!(r.gaps.len(), 1);
    }

    #[test]
    fn a_second_metadata_record_that_differs_is_refused() {
        let mut w = segment(&[], 1);
        w.metadata(8, 9);
        let r = scan_bytes(w.into_bytes());
        let f = r
            .findings
            .items()
            .iter()
            .find(|f| f.code == "wal-metadata-conflict")
            .unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(
            r.metadata.map(|m| m.node_id),
            Some(MemberId(7)),
            "the first is kept"
        );
    }

    #[test]
    fn leftovers_after_the_end_wait_for_the_segment_end() {
        // A zero length word, then junk: leftovers of an unfinished write
        // in the last segment (info); with an intact record hidden after
        // them, an error that says so.
        let mut b = segment(&[(2, b"")], 2).into_bytes();
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&[0xab; 16]);
        let r = scan_bytes(b.clone());
        let f = r
            .findings
            .items()
            .iter()
            .find(|f| f.code == "wal-unsynced-tail")
            .unwrap();
        assert_eq!(f.severity, Severity::Info);
        let mut hidden = b;
        let mut more = SegmentWriter::new(0);
        more.entry(&normal(3, b""));
        let bytes = more.into_bytes();
        // The crc record of `more` is left out: only the entry's frame.
        let crc_frame = SegmentWriter::new(0).into_bytes().len();
        hidden.truncate(hidden.len() - 16);
        hidden.extend_from_slice(&bytes[crc_frame..]);
        let r = scan_bytes(hidden);
        let f = r.findings.items().iter().find(|f| f.code == "wal-unsynced-tail");
        if let Some(f) = f {
            assert_eq!(f.severity, Severity::Error, "{}", f.message);
            assert!(
                f.message.contains("intact record(s) lie beyond it"),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn a_segment_without_a_crc_record_first_is_flagged() {
        let mut b = segment(&[(2, b"")], 2).into_bytes();
        let crc_frame = SegmentWriter::new(0).into_bytes().len();
        b.drain(..crc_frame);
        let r = scan_bytes(b);
        assert!(codes(&r).contains(&"wal-segment-header"), "{:?}", codes(&r));
    }
}
