//! Reading the records of a WAL across its segments: frames, the CRC chain,
//! and what etcd would make of any damage.
//!
//! The reader models etcd's decoder (`wal/decoder.go`, identical in 3.4 and
//! 3.5) and says, for every record, whether etcd reads it, and for every
//! damage, whether etcd stops there and whether it calls it a torn write:
//!
//! - a zero length word or the end of a file ends a segment; etcd moves on
//!   to the next file;
//! - in the **last** segment, a cut-off length word or frame, a record whose
//!   protobuf is cut short (Go's decoder says `io.ErrUnexpectedEOF`), or a
//!   record that fails to decode or to match its CRC while some 512-byte
//!   sector of its frame is all zeros, is a **torn write**: etcd truncates
//!   the file there at start (keeping a `.broken` copy) and starts;
//! - anything else (a CRC mismatch, an undecodable record, a record of 10 MiB
//!   or more, a crc record that does not continue the chain, an unknown
//!   record type, or a cut-off frame in an earlier segment) is **corruption**:
//!   etcd refuses to start.
//!
//! Unlike etcd, the reader does not stop there. It reads on past damage
//! (salvage): after a bad frame it looks for the next 8-byte aligned offset
//! where a well-formed frame holds a well-formed record that chains by CRC to
//! the record after it. Records found that way are reported with
//! `seen_by_etcd: false`. After a CRC mismatch (or a crc record that breaks
//! the chain) it keeps both the stored and the computed (running) CRC as
//! candidates and lets the next record decide which one the chain continues
//! from; after unknown damage it adopts the next record's CRC unchecked
//! (`crc_checked: false`).

use super::entry::Entry;
use super::frame::{self, Frame, FrameError, Slot};
use super::name::SegmentName;
use super::record::{HardState, Metadata, Record, RecordType, SnapshotMark};
use crate::wire::WireError;

/// One segment's bytes.
#[derive(Clone, Copy, Debug)]
pub struct SegmentBytes<'a> {
    /// Its name.
    pub name: SegmentName,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// A place in the WAL: segment (position in the list) and byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Loc {
    /// Position of the segment in the list given to [`read`].
    pub segment: usize,
    /// Byte offset in that segment.
    pub offset: u64,
}

/// A record whose frame and protobuf are sound and whose CRC matches.
#[derive(Clone, Copy, Debug)]
pub struct Rec<'a> {
    /// Where its frame starts.
    pub at: Loc,
    /// The record.
    pub record: Record<'a>,
    /// Its type.
    pub kind: RecordType,
    /// Frame length (length word, record, padding).
    pub frame_len: u64,
    /// Whether etcd reads it: false after the point where etcd stops, and
    /// after an end marker that hides it.
    pub seen_by_etcd: bool,
    /// False when the CRC chain was lost by earlier damage, so this record's
    /// CRC was adopted instead of checked.
    pub crc_checked: bool,
}

/// What is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// Fewer than 8 bytes remain after the last record.
    ShortWord {
        /// Bytes remaining.
        remaining: usize,
    },
    /// A record length of 10 MiB or more.
    TooLarge {
        /// The claimed length.
        len: u64,
    },
    /// A frame that runs past the end of its file.
    PastEnd {
        /// Claimed record length.
        len: u64,
        /// Bytes after the length word.
        remaining: usize,
    },
    /// The record bytes are not a `walpb.Record`.
    Undecodable(WireError),
    /// The record's CRC does not match its data and the chain.
    CrcMismatch {
        /// The CRC stored in the record.
        stored: u32,
        /// The CRC computed over the chain and its data.
        computed: u32,
    },
    /// A crc record (segment start) that does not continue the chain.
    ChainBreak {
        /// The CRC it carries.
        stored: u32,
        /// The running CRC before it.
        running: u32,
    },
    /// A record with a valid CRC but an unknown type.
    UnknownType {
        /// The type.
        raw: i64,
    },
    /// Non-zero bytes after the zero length word that ends the segment.
    DataAfterEnd {
        /// Offset of the first non-zero byte.
        first_nonzero: u64,
    },
}

impl std::fmt::Display for DamageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            DamageKind::ShortWord { remaining } => {
                write!(f, "the file ends {remaining} bytes into a length word")
            }
            DamageKind::TooLarge { len } => write!(
                f,
                "the length word claims a record of {len} bytes (etcd refuses 10 MiB or more)"
            ),
            DamageKind::PastEnd { len, remaining } => write!(
                f,
                "the frame claims {len} record bytes but the file ends {remaining} bytes after its length word"
            ),
            DamageKind::Undecodable(e) => write!(f, "the record does not decode: {e}"),
            DamageKind::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: the record says {stored:08x}, its data gives {computed:08x}"
            ),
            DamageKind::ChainBreak { stored, running } => write!(
                f,
                "the crc record carries {stored:08x} but the records before it give {running:08x}: the chain is broken (a segment or records are missing or changed)"
            ),
            DamageKind::UnknownType { raw } => write!(f, "unknown record type {raw}"),
            DamageKind::DataAfterEnd { first_nonzero } => write!(
                f,
                "non-zero bytes (from offset {first_nonzero}) after the zero length word that ends the segment"
            ),
        }
    }
}

/// Damage found while reading.
#[derive(Clone, Copy, Debug)]
pub struct Damage<'a> {
    /// Where: the frame's offset (for `DataAfterEnd`, the end marker's).
    pub at: Loc,
    /// What.
    pub kind: DamageKind,
    /// etcd would call it a torn write (in the last segment) and cut the file here.
    pub torn: bool,
    /// etcd's reading stops here (the first damage etcd meets).
    pub stops_etcd: bool,
    /// etcd reaches this point (it has not stopped earlier).
    pub seen_by_etcd: bool,
    /// The record, when it decoded (CRC mismatch, unknown type).
    pub record: Option<Record<'a>>,
    /// Bytes skipped from `at` to where reading resumed (or to the end of the segment).
    pub skipped: u64,
    /// Where reading resumed in the same segment, if it did.
    pub resumed: Option<u64>,
}

/// How a segment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EndKind {
    /// At the end of the file.
    Eof,
    /// At a zero length word (preallocated space).
    Marker,
    /// At damage (the rest could not be read).
    Damaged,
}

/// The end of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentEnd {
    /// Segment position.
    pub segment: usize,
    /// Offset just past the last record read in order from the start
    /// (etcd's `lastValidOff`, where a repair truncates).
    pub valid_end: u64,
    /// Offset where reading of this segment ended.
    pub end: u64,
    /// How it ended.
    pub kind: EndKind,
    /// Records read.
    pub records: u64,
}

/// What the reader reports, in file order.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A sound record.
    Record(Rec<'a>),
    /// Damage.
    Damage(Damage<'a>),
    /// The end of a segment.
    SegmentEnd(SegmentEnd),
}

#[derive(Clone, Copy, Debug)]
enum Chain {
    Known(u32),
    Either(u32, u32),
    Unknown,
}

struct State {
    chain: Chain,
    /// etcd's running CRC (over the records it reads).
    etcd_crc: u32,
    stopped: bool,
}

impl State {
    fn stop(&mut self, seen: bool) -> bool {
        if seen && !self.stopped {
            self.stopped = true;
            true
        } else {
            false
        }
    }
}

/// Whether `f` holds a record that looks like one etcd wrote: a canonical
/// length word, a known type, and data that decodes for that type.
fn plausible<'a>(f: &Frame<'a>) -> Option<Record<'a>> {
    if !f.canonical || f.body.is_empty() {
        return None;
    }
    let r = Record::parse(f.body).ok()?;
    let ok = match r.kind()? {
        RecordType::Crc => r.data.is_empty(),
        RecordType::Entry => Entry::parse(r.data).is_ok_and(|e| e.index.0 > 0),
        RecordType::State => !r.data.is_empty() && HardState::decode(r.data).is_ok(),
        RecordType::Metadata => !r.data.is_empty() && Metadata::decode(r.data).is_ok(),
        RecordType::Snapshot => !r.data.is_empty() && SnapshotMark::decode(r.data).is_ok(),
    };
    ok.then_some(r)
}

/// Whether `next` continues the chain from `prev`.
fn links(prev: &Record<'_>, next: &Record<'_>) -> bool {
    if next.kind() == Some(RecordType::Crc) {
        next.crc == prev.crc
    } else {
        crc32c::crc32c_append(prev.crc, next.data) == next.crc
    }
}

/// The next offset at or after `from` (8-byte aligned) where a plausible
/// record starts that is either the last in the segment or chains to the
/// plausible record after it.
fn resync(seg: &[u8], from: usize) -> Option<usize> {
    let mut q = from.next_multiple_of(8);
    while q + frame::HEADER <= seg.len() {
        if seg[q..q + frame::HEADER] == [0; 8] {
            // Jump over zeros.
            let nz = frame::first_nonzero(&seg[q..])?;
            q = (q + nz) & !7;
            continue;
        }
        if let Ok(Slot::Frame(f)) = frame::read(seg, q) {
            if let Some(r) = plausible(&f) {
                let follows = match frame::read(seg, f.end()) {
                    Ok(Slot::End { .. }) => true,
                    Ok(Slot::Frame(g)) => plausible(&g).is_some_and(|n| links(&r, &n)),
                    Err(_) => false,
                };
                if follows {
                    return Some(q);
                }
            }
        }
        q += 8;
    }
    None
}

/// Reads every segment in order and reports records, damage and segment
/// ends to `visit`. Never panics, whatever the bytes.
pub fn read<'a, F: FnMut(Event<'a>)>(segments: &[SegmentBytes<'a>], mut visit: F) {
    let mut st = State {
        chain: Chain::Known(0),
        etcd_crc: 0,
        stopped: false,
    };
    let n = segments.len();
    for (si, s) in segments.iter().enumerate() {
        read_segment(si, si + 1 == n, s.bytes, &mut st, &mut visit);
    }
}

fn read_segment<'a, F: FnMut(Event<'a>)>(
    si: usize,
    last: bool,
    seg: &'a [u8],
    st: &mut State,
    visit: &mut F,
) {
    let mut r = SegmentRead {
        si,
        last,
        seg,
        st,
        off: 0,
        hidden: false,
        in_order: true,
        valid_end: 0,
        records: 0,
    };
    let kind = loop {
        match r.step(visit) {
            Step::Next => {}
            Step::End(kind) => break kind,
            Step::Damage(d, framing) => {
                // A frame or record that cannot be read loses the chain; a
                // CRC mismatch has set it already.
                if framing {
                    r.st.chain = Chain::Unknown;
                }
                let (seen, at) = (r.seen(), r.loc());
                emit_damage(visit, r.st, seen, at, d, seg, &mut r.off);
                r.in_order = false;
                if r.off >= seg.len() {
                    break EndKind::Damaged;
                }
            }
        }
    };
    visit(Event::SegmentEnd(SegmentEnd {
        segment: si,
        valid_end: r.valid_end as u64,
        end: r.off.min(seg.len()) as u64,
        kind,
        records: r.records,
    }));
}

/// Damage as found: what, whether etcd takes it for a torn write, the
/// record when it parsed, and where its frame ends when that is known.
type Found<'a> = (DamageKind, bool, Option<Record<'a>>, Option<usize>);

/// What one step of a segment's reading found.
enum Step<'a> {
    /// A record was delivered, or reading resumed: read on.
    Next,
    /// Damage; `true` when it is in the framing or the record's encoding
    /// (the CRC chain is lost; after a CRC mismatch, a chain break or an
    /// unknown type the chain is as the step left it).
    Damage(Found<'a>, bool),
    /// The segment ends.
    End(EndKind),
}

/// The reading of one segment: where it is, and what it has found.
struct SegmentRead<'a, 's> {
    si: usize,
    last: bool,
    seg: &'a [u8],
    st: &'s mut State,
    off: usize,
    /// After an end marker, records are hidden from etcd.
    hidden: bool,
    /// Still reading in order from the start (for etcd's lastValidOff).
    in_order: bool,
    valid_end: usize,
    records: u64,
}

impl<'a> SegmentRead<'a, '_> {
    fn loc(&self) -> Loc {
        Loc {
            segment: self.si,
            offset: self.off as u64,
        }
    }

    /// Whether etcd reads what is at `off`.
    fn seen(&self) -> bool {
        !self.st.stopped && !self.hidden
    }

    #[inline]
    fn step<F: FnMut(Event<'a>)>(&mut self, visit: &mut F) -> Step<'a> {
        match frame::read(self.seg, self.off) {
            Ok(Slot::End { marker: false }) => Step::End(EndKind::Eof),
            Ok(Slot::End { marker: true }) => self.after_end_marker(visit),
            Err(e) => {
                let kind = match e {
                    FrameError::ShortWord { remaining, .. } => DamageKind::ShortWord { remaining },
                    FrameError::TooLarge { len, .. } => DamageKind::TooLarge { len },
                    FrameError::PastEnd { len, remaining, .. } => DamageKind::PastEnd { len, remaining },
                };
                let torn = self.last && !matches!(e, FrameError::TooLarge { .. });
                Step::Damage((kind, torn, None, None), true)
            }
            Ok(Slot::Frame(f)) => match Record::parse(f.body) {
                Err(e) => {
                    // Go's decoder returns io.ErrUnexpectedEOF for a record
                    // cut short, which etcd takes for a torn write as it
                    // does a record with a zeroed sector.
                    let torn = self.last && (e.is_unexpected_eof() || self.zero_sector(&f));
                    Step::Damage((DamageKind::Undecodable(e), torn, None, None), true)
                }
                Ok(rec) if rec.kind() == Some(RecordType::Crc) => self.crc_record(rec, &f, visit),
                Ok(rec) => self.data_record(rec, &f, visit),
            },
        }
    }

    fn zero_sector(&self, f: &Frame<'a>) -> bool {
        frame::has_zero_sector(f.offset, &self.seg[f.offset + frame::HEADER..f.end()])
    }

    /// A zero length word: the end, unless non-zero bytes follow (then
    /// what follows is hidden from etcd, and read from the next record
    /// found).
    fn after_end_marker<F: FnMut(Event<'a>)>(&mut self, visit: &mut F) -> Step<'a> {
        let Some(nz) = frame::first_nonzero(&self.seg[self.off..]) else {
            return Step::End(EndKind::Marker);
        };
        let first = self.off + nz;
        let resumed = resync(self.seg, first & !7);
        let to = resumed.unwrap_or(self.seg.len());
        visit(Event::Damage(Damage {
            at: self.loc(),
            kind: DamageKind::DataAfterEnd {
                first_nonzero: first as u64,
            },
            torn: false,
            stops_etcd: false,
            seen_by_etcd: self.seen(),
            record: None,
            skipped: (to - self.off) as u64,
            resumed: resumed.map(|r| r as u64),
        }));
        self.in_order = false;
        self.hidden = true;
        self.st.chain = Chain::Unknown;
        match resumed {
            Some(r) => {
                self.off = r;
                Step::Next
            }
            None => Step::End(EndKind::Marker),
        }
    }

    /// A crc record: it carries the running CRC, which must match the one
    /// computed so far (0 at the start of a WAL).
    fn crc_record<F: FnMut(Event<'a>)>(&mut self, rec: Record<'a>, f: &Frame<'a>, visit: &mut F) -> Step<'a> {
        let seen = self.seen();
        let running = match (seen, self.st.chain) {
            (true, _) => Some(self.st.etcd_crc),
            (false, Chain::Known(x)) => Some(x),
            _ => None,
        };
        self.st.chain = Chain::Known(rec.crc);
        if seen {
            self.st.etcd_crc = rec.crc;
        }
        match running {
            Some(r) if r != 0 && r != rec.crc => {
                // Either records are missing (the carried CRC is right) or
                // the crc record itself was damaged (the running one is):
                // let the next record decide, as after a CRC mismatch.
                self.st.chain = Chain::Either(rec.crc, r);
                let kind = DamageKind::ChainBreak {
                    stored: rec.crc,
                    running: r,
                };
                Step::Damage((kind, false, Some(rec), Some(f.end())), false)
            }
            _ => self.deliver(visit, rec, RecordType::Crc, f, true),
        }
    }

    /// A data record: its CRC against the chain, then delivered.
    fn data_record<F: FnMut(Event<'a>)>(
        &mut self,
        rec: Record<'a>,
        f: &Frame<'a>,
        visit: &mut F,
    ) -> Step<'a> {
        let (ok, checked, computed) = match self.st.chain {
            Chain::Known(x) => {
                let c = crc32c::crc32c_append(x, rec.data);
                (c == rec.crc, true, c)
            }
            Chain::Either(a, b) => {
                let ca = crc32c::crc32c_append(a, rec.data);
                let cb = crc32c::crc32c_append(b, rec.data);
                (ca == rec.crc || cb == rec.crc, true, ca)
            }
            Chain::Unknown => (true, false, rec.crc),
        };
        if !ok {
            let torn = self.last && self.zero_sector(f);
            self.st.chain = if checked && computed != rec.crc {
                Chain::Either(rec.crc, computed)
            } else {
                Chain::Unknown
            };
            let kind = DamageKind::CrcMismatch {
                stored: rec.crc,
                computed,
            };
            return Step::Damage((kind, torn, Some(rec), Some(f.end())), false);
        }
        self.st.chain = Chain::Known(rec.crc);
        if self.seen() {
            self.st.etcd_crc = rec.crc;
        }
        match rec.kind() {
            Some(k) => self.deliver(visit, rec, k, f, checked),
            None => {
                // The chain holds: the record's CRC matched.
                let kind = DamageKind::UnknownType { raw: rec.raw_type };
                Step::Damage((kind, false, Some(rec), Some(f.end())), false)
            }
        }
    }

    fn deliver<F: FnMut(Event<'a>)>(
        &mut self,
        visit: &mut F,
        rec: Record<'a>,
        kind: RecordType,
        f: &Frame<'a>,
        checked: bool,
    ) -> Step<'a> {
        deliver(visit, self.loc(), rec, kind, f, self.seen(), checked);
        self.records += 1;
        self.off = f.end();
        if self.in_order {
            self.valid_end = self.off;
        }
        Step::Next
    }
}

#[inline]
fn deliver<'a, F: FnMut(Event<'a>)>(
    visit: &mut F,
    at: Loc,
    record: Record<'a>,
    kind: RecordType,
    f: &Frame<'a>,
    seen: bool,
    checked: bool,
) {
    visit(Event::Record(Rec {
        at,
        record,
        kind,
        frame_len: f.len() as u64,
        seen_by_etcd: seen,
        crc_checked: checked,
    }));
}

/// Reports damage at `at` and moves `off` to where reading resumes: for a
/// record that decoded, just past its frame; otherwise the next plausible
/// frame, or the end of the segment.
fn emit_damage<'a, F: FnMut(Event<'a>)>(
    visit: &mut F,
    st: &mut State,
    seen: bool,
    at: Loc,
    (kind, torn, record, frame_end): (DamageKind, bool, Option<Record<'a>>, Option<usize>),
    seg: &[u8],
    off: &mut usize,
) {
    let start = *off;
    let resumed = match frame_end {
        Some(e) => Some(e),
        None => resync(seg, start + 8),
    };
    let to = resumed.unwrap_or(seg.len()).min(seg.len());
    let stops = st.stop(seen);
    visit(Event::Damage(Damage {
        at,
        kind,
        torn,
        stops_etcd: stops,
        seen_by_etcd: seen,
        record,
        skipped: (to.saturating_sub(start)) as u64,
        resumed: resumed.filter(|&r| r < seg.len()).map(|r| r as u64),
    }));
    *off = to.max(start + 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{raftpb, walpb};
    use crate::wal::ids::Index;
    use prost::Message;

    /// Encodes records as etcd does, chaining CRCs from `crc`; returns the
    /// segment and the CRC after it.
    fn segment(mut crc: u32, recs: &[(i64, Vec<u8>)]) -> (Vec<u8>, u32) {
        let mut out = Vec::new();
        let mut put = |t: i64, data: Option<Vec<u8>>, c: u32| {
            let body = walpb::Record {
                r#type: Some(t),
                crc: Some(c),
                data,
            }
            .encode_to_vec();
            out.extend_from_slice(&frame::encode_word(body.len() as u64).to_le_bytes());
            out.extend_from_slice(&body);
            out.resize(out.len().next_multiple_of(8), 0);
        };
        put(4, None, crc);
        for (t, d) in recs {
            crc = crc32c::crc32c_append(crc, d);
            put(*t, Some(d.clone()), crc);
        }
        (out, crc)
    }

    fn entry(i: u64, len: usize) -> (i64, Vec<u8>) {
        let e = raftpb::Entry {
            term: Some(1),
            index: Some(i),
            r#type: Some(0),
            data: Some(vec![b'x'; len]),
        };
        (2, e.encode_to_vec())
    }

    fn two_segments() -> (Vec<u8>, Vec<u8>) {
        let (a, crc) = segment(0, &(1..=5).map(|i| entry(i, 700)).collect::<Vec<_>>());
        let (mut b, _) = segment(crc, &(6..=9).map(|i| entry(i, 700)).collect::<Vec<_>>());
        b.resize(b.len() + 4096, 0);
        (a, b)
    }

    /// (where, seen by etcd, CRC checked, entry index)
    type Seen = (Loc, bool, bool, Option<Index>);

    fn run(a: &[u8], b: &[u8]) -> (Vec<Seen>, Vec<Damage<'static>>) {
        let name = SegmentName {
            seq: 0,
            index: Index(0),
        };
        let segs = [SegmentBytes { name, bytes: a }, SegmentBytes { name, bytes: b }];
        let mut recs = Vec::new();
        let mut dmg = Vec::new();
        read(&segs, |ev| match ev {
            Event::Record(r) => recs.push((
                r.at,
                r.seen_by_etcd,
                r.crc_checked,
                (r.kind == RecordType::Entry)
                    .then(|| Entry::parse(r.record.data).ok().map(|e| e.index))
                    .flatten(),
            )),
            Event::Damage(d) => dmg.push(Damage { record: None, ..d }),
            Event::SegmentEnd(_) => {}
        });
        (recs, dmg)
    }

    fn entries(recs: &[Seen]) -> Vec<u64> {
        recs.iter()
            .filter_map(|r| r.3.filter(|_| r.1).map(|i| i.0))
            .collect()
    }

    #[test]
    fn clean() {
        let (a, b) = two_segments();
        let (recs, dmg) = run(&a, &b);
        assert!(dmg.is_empty(), "{dmg:?}");
        assert_eq!(entries(&recs), (1..=9).collect::<Vec<_>>());
        assert!(recs.iter().all(|r| r.1 && r.2));
    }

    #[test]
    fn flipped_byte_in_a_middle_record() {
        let (mut a, b) = two_segments();
        // Inside the data of entry 3 (frames of ~720 bytes after a 16-byte crc record).
        a[16 + 2 * 728 + 300] ^= 0x01;
        let (recs, dmg) = run(&a, &b);
        assert_eq!(dmg.len(), 1, "{dmg:?}");
        let d = &dmg[0];
        assert!(matches!(d.kind, DamageKind::CrcMismatch { .. }));
        assert!(d.stops_etcd && !d.torn);
        // etcd reads 1 and 2; salvage reads the rest, and the chain resyncs on the
        // stored CRC of the damaged record, so later records are checked.
        assert_eq!(entries(&recs), vec![1, 2]);
        let salvaged: Vec<_> = recs.iter().filter(|r| !r.1 && r.3.is_some()).collect();
        assert_eq!(salvaged.len(), 6);
        assert!(salvaged.iter().all(|r| r.2));
    }

    #[test]
    fn torn_tail_in_the_last_segment() {
        let (a, mut b) = two_segments();
        // Zero the tail of entry 9 from a sector boundary (2560): a sector never written.
        let start = 16 + 3 * 728;
        b[start + 360..start + 728].fill(0);
        let (recs, dmg) = run(&a, &b);
        assert_eq!(dmg.len(), 1, "{dmg:?}");
        assert!(dmg[0].torn && dmg[0].stops_etcd);
        assert_eq!(entries(&recs), (1..=8).collect::<Vec<_>>());
        // A partial last frame is torn too.
        let (a, b) = two_segments();
        let (_, dmg) = run(&a, &b[..start + 100]);
        assert!(matches!(dmg[0].kind, DamageKind::PastEnd { .. }) && dmg[0].torn);
        // The same damage in the first segment is corruption.
        let (_, dmg) = run(&a[..16 + 3 * 728 + 100], &b);
        assert!(dmg[0].stops_etcd && !dmg[0].torn);
    }

    #[test]
    fn missing_segment_breaks_the_chain() {
        let (a, crc) = segment(0, &(1..=3).map(|i| entry(i, 100)).collect::<Vec<_>>());
        let (_, crc2) = segment(crc, &(4..=5).map(|i| entry(i, 100)).collect::<Vec<_>>());
        let (c, _) = segment(crc2, &(6..=7).map(|i| entry(i, 100)).collect::<Vec<_>>());
        let (recs, dmg) = run(&a, &c);
        assert!(matches!(dmg[0].kind, DamageKind::ChainBreak { .. }) && dmg[0].stops_etcd);
        assert_eq!(entries(&recs), vec![1, 2, 3]);
        // Salvage adopts the crc record and reads on.
        assert_eq!(recs.iter().filter(|r| !r.1 && r.3.is_some() && r.2).count(), 2);
    }

    #[test]
    fn damaged_crc_record_keeps_the_chain() {
        let (a, mut b) = two_segments();
        // The second segment's crc record (type 4, crc varint at byte 11):
        // its carried CRC is wrong, the records after it are intact.
        assert_eq!(b[8..11], [0x08, 0x04, 0x10]);
        b[11] ^= 0x01;
        let (recs, dmg) = run(&a, &b);
        assert_eq!(dmg.len(), 1, "only the chain break: {dmg:?}");
        assert!(matches!(dmg[0].kind, DamageKind::ChainBreak { .. }) && dmg[0].stops_etcd);
        assert_eq!(entries(&recs), (1..=5).collect::<Vec<_>>());
        // Salvage reads 6..9, each checked against the running chain.
        let salvaged: Vec<_> = recs.iter().filter(|r| !r.1 && r.3.is_some()).collect();
        assert_eq!(salvaged.len(), 4);
        assert!(salvaged.iter().all(|r| r.2));
    }

    #[test]
    fn garbage_length_word_resyncs() {
        let (mut a, b) = two_segments();
        let at = 16 + 728;
        a[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let (recs, dmg) = run(&a, &b);
        assert!(matches!(dmg[0].kind, DamageKind::TooLarge { .. }));
        assert_eq!(dmg[0].resumed, Some((at + 728) as u64));
        assert_eq!(entries(&recs), vec![1]);
        // Salvage reads 3..9; 3 is adopted unchecked, the rest chain.
        let salvaged: Vec<_> = recs.iter().filter(|r| !r.1 && r.3.is_some()).collect();
        assert_eq!(salvaged.len(), 7);
        assert!(!salvaged[0].2 && salvaged[1..].iter().all(|r| r.2));
    }

    #[test]
    fn data_after_end_marker() {
        let (mut a, b) = two_segments();
        // Zero entry 4 entirely (frame at 16 + 3*728): etcd ends the segment there.
        let at = 16 + 3 * 728;
        a[at..at + 728].fill(0);
        let (recs, dmg) = run(&a, &b);
        assert!(matches!(dmg[0].kind, DamageKind::DataAfterEnd { .. }));
        assert!(!dmg[0].stops_etcd);
        // etcd then fails at the next segment's crc record.
        assert!(matches!(dmg[1].kind, DamageKind::ChainBreak { .. }) && dmg[1].stops_etcd);
        assert_eq!(entries(&recs), vec![1, 2, 3]);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in [0usize, 1, 7, 8, 9, 15, 16, 64, 513, 4096] {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x & 0xff) as u8
                    })
                    .collect();
                let _ = run(&bytes, &bytes);
            }
        }
    }
}
