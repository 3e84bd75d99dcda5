//! `walpb.Record`, the unit of the WAL, and the small records it carries.
//!
//! ```text
//! walpb.Record (proto2)
//!   1  type  int64   varint, always written      1 metadata, 2 entry, 3 state, 4 crc, 5 snapshot
//!   2  crc   uint32  varint (not fixed32), always written
//!   3  data  bytes   omitted in crc records
//!
//! type 1  data = etcdserverpb.Metadata{1 NodeID, 2 ClusterID}
//! type 2  data = raftpb.Entry                         (entry.rs)
//! type 3  data = raftpb.HardState{1 term, 2 vote, 3 commit}
//! type 4  crc  = the running CRC-32C at the start of a segment
//! type 5  data = walpb.Snapshot{1 index, 2 term, 3 conf_state (3.5+)}
//! ```
//!
//! For every record but crc records, `crc` is CRC-32C over the `data` of all
//! earlier non-crc records and this one, in order, since the WAL was created.

use prost::Message;

use super::entry::ConfState;
use super::ids::{Index, Term};
use crate::membership::{ClusterId, MemberId};
use crate::pb::{etcdserverpb, raftpb, walpb};
use crate::wire::{self, Fields, WireError};

/// The record types etcd writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordType {
    /// WAL metadata: node and cluster IDs.
    Metadata,
    /// A raft entry.
    Entry,
    /// A raft HardState.
    State,
    /// The running CRC at a segment start.
    Crc,
    /// A snapshot marker.
    Snapshot,
}

impl RecordType {
    /// The type for a record's `type` field, if etcd knows it.
    pub fn from_raw(t: i64) -> Option<RecordType> {
        Some(match t {
            1 => RecordType::Metadata,
            2 => RecordType::Entry,
            3 => RecordType::State,
            4 => RecordType::Crc,
            5 => RecordType::Snapshot,
            _ => return None,
        })
    }

    /// Lowercase name.
    pub fn name(&self) -> &'static str {
        match self {
            RecordType::Metadata => "metadata",
            RecordType::Entry => "entry",
            RecordType::State => "state",
            RecordType::Crc => "crc",
            RecordType::Snapshot => "snapshot",
        }
    }
}

/// A decoded `walpb.Record`, borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The raw `type` field.
    pub raw_type: i64,
    /// The `crc` field.
    pub crc: u32,
    /// The `data` field (empty when absent).
    pub data: &'a [u8],
}

impl<'a> Record<'a> {
    /// Decodes a record. Unknown fields are skipped, as gogo does.
    #[inline]
    pub fn parse(body: &'a [u8]) -> Result<Record<'a>, WireError> {
        let mut r = Record {
            raw_type: 0,
            crc: 0,
            data: &[],
        };
        let mut f = Fields::new(body);
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => r.raw_type = wire::expect_varint(1, v)? as i64,
                // gogo keeps the low 32 bits of a longer varint.
                2 => r.crc = wire::expect_varint(2, v)? as u32,
                3 => r.data = wire::expect_bytes(3, v)?,
                _ => {}
            }
        }
        Ok(r)
    }

    /// The record type, if known.
    pub fn kind(&self) -> Option<RecordType> {
        RecordType::from_raw(self.raw_type)
    }
}

/// WAL metadata: which member wrote this WAL, in which cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The member's ID.
    pub node_id: MemberId,
    /// The cluster's ID.
    pub cluster_id: ClusterId,
}

impl Metadata {
    /// Decodes `etcdserverpb.Metadata`.
    pub fn decode(data: &[u8]) -> Result<Metadata, prost::DecodeError> {
        let m = etcdserverpb::Metadata::decode(data)?;
        Ok(Metadata {
            node_id: MemberId(m.node_id()),
            cluster_id: ClusterId(m.cluster_id()),
        })
    }
}

/// raft's persistent state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HardState {
    /// Current term.
    pub term: Term,
    /// Vote in that term (0: none).
    pub vote: MemberId,
    /// Highest index known committed.
    pub commit: Index,
}

impl HardState {
    /// Decodes `raftpb.HardState`.
    pub fn decode(data: &[u8]) -> Result<HardState, prost::DecodeError> {
        let h = raftpb::HardState::decode(data)?;
        Ok(HardState {
            term: Term(h.term()),
            vote: MemberId(h.vote()),
            commit: Index(h.commit()),
        })
    }
}

/// A snapshot marker: etcd saved a `.snap` at this index and term.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMark {
    /// Index.
    pub index: Index,
    /// Term.
    pub term: Term,
    /// The configuration at that index (written since 3.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_state: Option<ConfState>,
}

impl SnapshotMark {
    /// Decodes `walpb.Snapshot`.
    pub fn decode(data: &[u8]) -> Result<SnapshotMark, prost::DecodeError> {
        let s = walpb::Snapshot::decode(data)?;
        Ok(SnapshotMark {
            index: Index(s.index()),
            term: Term(s.term()),
            conf_state: s.conf_state.map(ConfState::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fields() {
        // crc record of a new WAL: type 4, crc 0
        let r = Record::parse(&[0x08, 0x04, 0x10, 0x00]).unwrap();
        assert_eq!((r.kind(), r.crc, r.data), (Some(RecordType::Crc), 0, &[][..]));
        // snapshot record {0,0}
        let r = Record::parse(&[0x08, 0x05, 0x10, 0x01, 0x1a, 0x04, 0x08, 0x00, 0x10, 0x00]).unwrap();
        assert_eq!(r.kind(), Some(RecordType::Snapshot));
        let s = SnapshotMark::decode(r.data).unwrap();
        assert_eq!((s.index, s.term, s.conf_state), (Index(0), Term(0), None));
        assert!(Record::parse(&[0x08]).is_err());
        assert!(Record::parse(&[0x0a, 0x00]).is_err());
        assert_eq!(Record::parse(&[0x08, 0x09]).unwrap().kind(), None);
    }
}
