//! Decode-write-decode for the WAL writer (`wal::writer::SegmentWriter`):
//! a sequence of records drawn from the input (metadata, entries of every
//! type, conf-change entries with Member JSON, HardStates, snapshot marks,
//! and new segments continuing the CRC chain, each segment perhaps followed
//! by preallocated zeros) is written, then read back with the reader and the
//! scan. Every record must come back, in order, equal to what was written,
//! seen by etcd with its CRC checked, with no damage and no damage finding.

use std::path::Path;

use etcd_rescue::membership::{Member, MemberId};
use etcd_rescue::pb::raftpb;
use etcd_rescue::wal::confchange::ChangeKind;
use etcd_rescue::wal::payload::{self, Request};
use etcd_rescue::wal::reader::{self, Event};
use etcd_rescue::wal::writer::{SegmentWriter, add_node_entry};
use etcd_rescue::wal::{
    self, Entry, EntryType, HardState, Index, Metadata, RecordType, SnapshotMark, Tail, Term, WalDir,
};

use super::input::Input;

/// What was written, as the reader should give it back.
#[derive(Debug, PartialEq)]
enum Rec {
    /// A crc record with the CRC the segment starts from.
    Crc(u32),
    Metadata(Metadata),
    Entry {
        term: u64,
        index: u64,
        kind: EntryType,
        data: Vec<u8>,
    },
    State(HardState),
    Snapshot(SnapshotMark),
}

/// Findings that mean the bytes are damaged, not just odd.
const DAMAGE: &[&str] = &[
    "wal-torn-tail",
    "wal-truncated-segment",
    "wal-bad-frame",
    "wal-undecodable-record",
    "wal-undecodable-data",
    "wal-crc-mismatch",
    "wal-chain-break",
    "wal-unknown-record",
    "wal-data-after-end",
    "wal-unsynced-tail",
    "wal-intact-after-tear",
    "wal-segment-empty",
    "wal-segment-header",
    "wal-seq-gap",
];

fn conf_state(inp: &mut Input<'_>) -> raftpb::ConfState {
    raftpb::ConfState {
        voters: inp.u64s(5),
        learners: inp.u64s(3),
        voters_outgoing: inp.u64s(3),
        learners_next: inp.u64s(2),
        auto_leave: inp.bool().then(|| inp.bool()),
    }
}

/// The target's body.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut segments: Vec<Vec<u8>> = Vec::new();
    let mut expected: Vec<Rec> = Vec::new();
    // Conf changes written with Member JSON: (position in `expected`, member).
    let mut members: Vec<(usize, Member)> = Vec::new();
    let first_crc = inp.u32();
    let mut w = SegmentWriter::new(first_crc);
    expected.push(Rec::Crc(first_crc));
    let mut zeros = usize::from(inp.byte() % 4) * 512;
    while !inp.is_empty() && expected.len() < 2000 {
        match inp.byte() % 7 {
            0 => {
                let (node, cluster) = (inp.u64(), inp.u64());
                w.metadata(node, cluster);
                expected.push(Rec::Metadata(Metadata {
                    node_id: MemberId(node),
                    cluster_id: etcd_rescue::membership::ClusterId(cluster),
                }));
            }
            1 | 2 => {
                let (term, index) = (inp.u64(), inp.u64());
                let t = match inp.byte() % 8 {
                    k @ 0..=2 => i32::from(k),
                    _ => inp.u32() as i32,
                };
                let data = inp.bytes(1 << 16).to_vec();
                w.entry(&raftpb::Entry {
                    term: Some(term),
                    index: Some(index),
                    r#type: Some(t),
                    data: Some(data.clone()),
                });
                expected.push(Rec::Entry {
                    term,
                    index,
                    kind: EntryType::from_raw(t as u64),
                    data,
                });
            }
            3 => {
                let (term, index, node) = (inp.u64(), inp.u64(), inp.u64());
                let m = Member {
                    id: node,
                    name: inp.string(40),
                    peer_urls: (0..inp.byte() % 3).map(|_| inp.string(40)).collect(),
                    client_urls: (0..inp.byte() % 3).map(|_| inp.string(40)).collect(),
                    is_learner: inp.bool(),
                };
                let ctx = serde_json::to_vec(&m).expect("Member JSON");
                let e = add_node_entry(term, index, node, &ctx);
                w.entry(&e);
                members.push((expected.len(), m));
                expected.push(Rec::Entry {
                    term,
                    index,
                    kind: EntryType::ConfChange,
                    data: e.data.unwrap_or_default(),
                });
            }
            4 => {
                let (term, vote, commit) = (inp.u64(), inp.u64(), inp.u64());
                w.state(term, vote, commit);
                expected.push(Rec::State(HardState {
                    term: Term(term),
                    vote: MemberId(vote),
                    commit: Index(commit),
                }));
            }
            5 => {
                let (index, term) = (inp.u64(), inp.u64());
                let cs = inp.bool().then(|| conf_state(&mut inp));
                w.snapshot(index, term, cs.clone());
                expected.push(Rec::Snapshot(SnapshotMark {
                    index: Index(index),
                    term: Term(term),
                    conf_state: cs.map(Into::into),
                }));
            }
            _ => {
                let crc = w.crc();
                let mut bytes = std::mem::replace(&mut w, SegmentWriter::new(crc)).into_bytes();
                bytes.resize(bytes.len() + zeros, 0);
                segments.push(bytes);
                zeros = usize::from(inp.byte() % 4) * 512;
                expected.push(Rec::Crc(crc));
            }
        }
    }
    let mut bytes = w.into_bytes();
    bytes.resize(bytes.len() + zeros, 0);
    segments.push(bytes);

    // Read back record by record.
    let files: Vec<(String, Vec<u8>)> = segments
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("{i:016x}-{:016x}.wal", i * 3), b))
        .collect();
    let nseg = files.len();
    let dir = WalDir::from_files(Path::new("fuzz"), files);
    let mut got: Vec<Rec> = Vec::new();
    reader::read(&dir.segment_bytes(), |ev| match ev {
        Event::Record(r) => {
            assert!(r.seen_by_etcd && r.crc_checked, "{r:?}");
            let d = r.record.data;
            got.push(match r.kind {
                RecordType::Crc => Rec::Crc(r.record.crc),
                RecordType::Metadata => Rec::Metadata(Metadata::decode(d).expect("metadata decodes")),
                RecordType::Entry => {
                    let e = Entry::parse(d).expect("entry decodes");
                    Rec::Entry {
                        term: e.term.0,
                        index: e.index.0,
                        kind: e.kind,
                        data: e.data.to_vec(),
                    }
                }
                RecordType::State => Rec::State(HardState::decode(d).expect("state decodes")),
                RecordType::Snapshot => Rec::Snapshot(SnapshotMark::decode(d).expect("snapshot decodes")),
            });
        }
        Event::Damage(d) => panic!("damage in a written WAL: {:?} at {:?}", d.kind, d.at),
        Event::SegmentEnd(_) => {}
    });
    assert_eq!(got, expected);

    // The scan agrees, with no damage.
    let r = wal::scan(&dir, wal::ScanOptions { payloads: true }, |_| {});
    assert_eq!(r.tail, Tail::Clean);
    assert_eq!(r.salvage.records, 0);
    assert_eq!(r.segments.len(), nseg);
    let bad: Vec<_> = r
        .findings
        .items()
        .iter()
        .filter(|f| DAMAGE.contains(&f.code))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    let last_state = expected.iter().rev().find_map(|x| match x {
        Rec::State(h) => Some(*h),
        _ => None,
    });
    assert_eq!(r.hard_state, last_state);
    let metas: Vec<Metadata> = expected
        .iter()
        .filter_map(|x| match x {
            Rec::Metadata(m) => Some(*m),
            _ => None,
        })
        .collect();
    assert_eq!(r.metadata, metas.first().copied());
    let marks: Vec<&SnapshotMark> = expected
        .iter()
        .filter_map(|x| match x {
            Rec::Snapshot(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(r.snapshots.iter().map(|s| &s.mark).collect::<Vec<_>>(), marks);
    let n_entries = expected.iter().filter(|x| matches!(x, Rec::Entry { .. })).count();
    assert_eq!(r.entries.records, n_entries as u64);

    // Conf-change entries carry their member back.
    for (at, m) in members {
        let Rec::Entry {
            term, index, data, ..
        } = &got[at]
        else {
            panic!("record {at} is not the conf change written there");
        };
        let e = Entry {
            term: Term(*term),
            index: Index(*index),
            kind: EntryType::ConfChange,
            data,
        };
        match payload::decode(&e).request {
            Request::ConfChange(c) => {
                assert_eq!((c.change, c.node_id), (ChangeKind::AddNode, MemberId(m.id)));
                assert!(!c.is_promote && c.context.is_none(), "{c:?}");
                assert_eq!(c.member, Some(m));
            }
            other => panic!("the conf change at record {at} decodes as {other:?}"),
        }
    }
}
