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

struct Pending {
    finding: usize,
    segment: usize,
    hidden_records: u64,
}

/// Scans a WAL directory. `on_entry` sees every entry the reader finds, in
/// file order (including ones etcd does not read, flagged).
pub fn scan<'a>(dir: &'a WalDir, opts: ScanOptions, mut on_entry: impl FnMut(&EntryAt<'a>)) -> WalReport {
    let segs = dir.segment_bytes();
    let nseg = segs.len();
    let file = |i: usize| {
        dir.segments
            .get(i)
            .map(|s| s.file_name.clone())
            .unwrap_or_default()
    };
    let mut r = WalReport {
        dir: dir.path.display().to_string(),
        bytes: dir.total_bytes(),
        segments: dir
            .segments
            .iter()
            .map(|s| SegmentInfo {
                file: s.file_name.clone(),
                seq: s.name.seq,
                name_index: s.name.index,
                size: s.file.bytes().len() as u64,
                records: 0,
                valid_end: 0,
                end: EndKind::Eof,
                first_entry: None,
                last_entry: None,
            })
            .collect(),
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

    let mut last_seen_index: Option<Index> = None;
    let mut pending: Option<Pending> = None;
    let mut first_record_of: Vec<Option<RecordType>> = vec![None; nseg];
    // Segments whose first record is damaged beyond telling its type (the
    // damage is reported; what comes next is not the segment's header).
    let mut first_unreadable = vec![false; nseg];
    let mut metadata_raw: Option<&[u8]> = None;
    let mut items: Vec<Finding> = Vec::new();
    let mut stop_seen = false;
    let mut intact_after_stop = 0u64;
    let mut found = Found::default();

    reader::read(&segs, |ev| match ev {
        Event::Record(rec) => {
            let si = rec.at.segment;
            if first_record_of[si].is_none() {
                first_record_of[si] = Some(rec.kind);
            }
            let at = |f: Finding| f.in_file(file(si)).at_offset(rec.at.offset);
            if !rec.seen_by_etcd {
                r.salvage.records += 1;
                if stop_seen {
                    intact_after_stop += 1;
                }
                if let Some(p) = pending.as_mut().filter(|p| p.segment == si) {
                    p.hidden_records += 1;
                }
                if rec.kind == RecordType::Entry {
                    if let Ok(e) = Entry::parse(rec.record.data) {
                        r.salvage.entries += 1;
                        found.add(e.index.0);
                        r.salvage.first_index =
                            Some(r.salvage.first_index.map_or(e.index, |x| x.min(e.index)));
                        r.salvage.last_index = Some(r.salvage.last_index.map_or(e.index, |x| x.max(e.index)));
                        on_entry(&EntryAt {
                            entry: e,
                            at: rec.at,
                            seen_by_etcd: false,
                            damaged: false,
                        });
                    }
                }
                return;
            }
            match rec.kind {
                RecordType::Crc => {}
                RecordType::Metadata => match Metadata::decode(rec.record.data) {
                    Ok(m) => match (metadata_raw, r.metadata) {
                        (Some(raw), Some(first)) if raw != rec.record.data => items.push(at(Finding::new(
                            Severity::Error,
                            "wal-metadata-conflict",
                            format!(
                                "metadata record says node {} in cluster {}, but an earlier one says node {} in cluster {}: etcd refuses a WAL whose metadata records differ",
                                m.node_id, m.cluster_id, first.node_id, first.cluster_id
                            ),
                        ))),
                        (Some(_), _) => {}
                        _ => {
                            metadata_raw = Some(rec.record.data);
                            r.metadata = Some(m);
                        }
                    },
                    Err(e) => items.push(at(undecodable_data("metadata", &e.to_string()))),
                },
                RecordType::State => match HardState::decode(rec.record.data) {
                    Ok(h) => r.hard_state = Some(h),
                    Err(e) => items.push(at(undecodable_data("state", &e.to_string()))),
                },
                RecordType::Snapshot => match SnapshotMark::decode(rec.record.data) {
                    Ok(mark) => r.snapshots.push(SnapshotRecord {
                        mark,
                        file: file(si),
                        segment: si,
                        offset: rec.at.offset,
                    }),
                    Err(e) => items.push(at(undecodable_data("snapshot", &e.to_string()))),
                },
                RecordType::Entry => match Entry::parse(rec.record.data) {
                    Ok(e) => {
                        on_entry(&EntryAt {
                            entry: e,
                            at: rec.at,
                            seen_by_etcd: true,
                            damaged: false,
                        });
                        r.entries.records += 1;
                        last_seen_index = Some(e.index);
                        found.add(e.index.0);
                        let s = &mut r.segments[si];
                        s.first_entry = Some(s.first_entry.map_or(e.index, |x| x.min(e.index)));
                        s.last_entry = Some(s.last_entry.map_or(e.index, |x| x.max(e.index)));
                        match r.log.append(e.index, e.term) {
                            Appended::Gap(g) => items.push(at(Finding::new(
                                Severity::Error,
                                "wal-index-gap",
                                format!(
                                    "entry {} follows entry {}: entries {}..{} are missing, and etcd refuses a log with a hole (ErrSliceOutOfRange)",
                                    g.next,
                                    g.after,
                                    g.after.0 + 1,
                                    g.next.0 - 1
                                ),
                            ))),
                            Appended::Replaced(_) | Appended::Next | Appended::Ignored => {}
                        }
                        match e.kind {
                            EntryType::Normal if e.data.is_empty() => r.entries.noops += 1,
                            EntryType::Normal => {
                                if opts.payloads {
                                    let p = payload::decode(&e);
                                    match &p.request {
                                        Request::Undecodable { reason } => items.push(at(bad_payload(e.index, reason))),
                                        Request::TooDeep { limit } => items.push(at(too_deep(e.index, *limit))),
                                        _ => {}
                                    }
                                }
                            }
                            EntryType::ConfChange | EntryType::ConfChangeV2 | EntryType::Unknown(_) => {
                                if e.kind == EntryType::ConfChange {
                                    r.entries.conf_changes += 1;
                                }
                                let p = payload::decode(&e);
                                match &p.request {
                                    Request::ConfChange(c) => r.member_changes.push(MemberChange {
                                        index: e.index,
                                        change: c.change,
                                        node_id: c.node_id,
                                    }),
                                    Request::ConfChangeV2(c) => {
                                        for x in &c.changes {
                                            r.member_changes.push(MemberChange {
                                                index: e.index,
                                                change: x.change,
                                                node_id: x.node_id,
                                            });
                                        }
                                    }
                                    Request::Undecodable { reason } => items.push(at(bad_payload(e.index, reason))),
                                    Request::UnknownEntryType { raw } => items.push(at(bad_payload(
                                        e.index,
                                        &format!("unknown entry type {raw}"),
                                    ))),
                                    _ => {}
                                }
                            }
                        }
                    }
                    Err(err) => items.push(at(undecodable_data("entry", &err.to_string()))),
                },
            }
        }
        Event::Damage(d) => {
            let si = d.at.segment;
            let last = si + 1 == nseg;
            if d.at.offset == 0 && first_record_of[si].is_none() {
                // A damaged first record still counts as the segment's first
                // (a crc record whose CRC was changed is still a crc record).
                match d.record.and_then(|rec| rec.kind()) {
                    Some(k) => first_record_of[si] = Some(k),
                    None => first_unreadable[si] = true,
                }
            }
            r.salvage.skipped_bytes += d.skipped;
            if matches!(d.kind, DamageKind::DataAfterEnd { .. }) {
                items.push(data_after_end(&d, &file(si), last));
                pending = Some(Pending {
                    finding: items.len() - 1,
                    segment: si,
                    hidden_records: 0,
                });
                return;
            }
            let code = code_of(&d.kind, d.torn && d.stops_etcd, last);
            let claimed = d
                .record
                .filter(|rec| rec.kind() == Some(RecordType::Entry))
                .and_then(|rec| Entry::parse(rec.data).ok())
                .map(|e| e.index);
            if d.stops_etcd {
                stop_seen = true;
                r.tail = if d.torn {
                    Tail::Torn {
                        file: file(si),
                        offset: d.at.offset,
                        message: d.kind.to_string(),
                        intact_after: 0,
                    }
                } else {
                    Tail::Corrupt {
                        file: file(si),
                        offset: d.at.offset,
                        code,
                        message: d.kind.to_string(),
                        after_index: last_seen_index,
                        claimed_index: claimed,
                    }
                };
            }
            if let (Some(rec), Some(_)) = (d.record, claimed) {
                if let Ok(e) = Entry::parse(rec.data) {
                    on_entry(&EntryAt {
                        entry: e,
                        at: d.at,
                        seen_by_etcd: false,
                        damaged: true,
                    });
                }
            }
            items.push(damage_finding(&d, code, &file(si), last_seen_index, claimed));
        }
        Event::SegmentEnd(e) => {
            let s = &mut r.segments[e.segment];
            s.records = e.records;
            s.valid_end = e.valid_end;
            s.end = e.kind;
            if let Some(p) = pending.take() {
                let last = e.segment + 1 == nseg;
                let f = &mut items[p.finding];
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
        }
    });
    if let Tail::Torn { intact_after, .. } = &mut r.tail {
        *intact_after = intact_after_stop;
        if intact_after_stop > 0 {
            items.push(Finding::new(
                Severity::Error,
                "wal-intact-after-tear",
                format!(
                    "{intact_after_stop} intact record(s) follow the torn write: etcd will treat the damage as a torn tail and cut them off; salvage (`etcd-rescue wal --salvage`) still reads them"
                ),
            ));
        }
    }
    for (si, first) in first_record_of.iter().enumerate() {
        match first {
            None => items.push(
                Finding::new(
                    Severity::Warning,
                    "wal-segment-empty",
                    "the segment holds no readable record".to_string(),
                )
                .in_file(file(si)),
            ),
            Some(RecordType::Crc) => {}
            Some(_) if first_unreadable[si] => {}
            Some(k) => items.push(
                Finding::new(
                    Severity::Warning,
                    "wal-segment-header",
                    format!(
                        "the segment starts with a {} record, not a crc record: etcd always starts a segment with one",
                        k.name()
                    ),
                )
                .in_file(file(si))
                .at_offset(0),
            ),
        }
    }
    if nseg > 0 && r.metadata.is_none() {
        items.push(Finding::new(
            Severity::Error,
            "wal-no-metadata",
            "no readable metadata record: etcd cannot tell which member and cluster this WAL belongs to",
        ));
    }
    if r.log.replaced > 0 {
        items.push(Finding::new(
            Severity::Info,
            "wal-entries-replaced",
            format!(
                "{} entries were replaced by later entries with the same index (a new leader overwrote uncommitted entries); etcd keeps the later ones",
                r.log.replaced
            ),
        ));
    }
    if let (Some(h), Some(last)) = (r.hard_state, r.log.last()) {
        if h.commit > last && r.readable_by_etcd() {
            items.push(Finding::new(
                Severity::Error,
                "wal-commit-beyond-log",
                format!(
                    "the HardState says entries up to {} are committed, but the log etcd reads ends at {last}: raft panics at start (\"commit is out of range\")",
                    h.commit
                ),
            ));
        }
    }
    r.entries.entries = r.log.len();
    r.entries.replaced = r.log.replaced;
    r.entries.first_index = r.log.first();
    r.entries.last_index = r.log.last();
    r.entries.last_term = r.log.last_term();
    r.gaps = r.log.gaps.clone();
    r.salvage.lost = found.holes();
    for f in items {
        r.findings.push(f);
    }
    r.findings.sort();
    r
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
