//! Writing WAL segments, for restored data dirs.
//!
//! A segment is a sequence of frames (u64 LE length word with the padding in
//! its top byte, the `walpb.Record`, zero padding to 8 bytes). Every record
//! but a crc record carries the running CRC-32C of all record data so far;
//! the first record of a segment is a crc record holding the CRC it starts
//! from (0 for the first segment). etcd preallocates segments to 64,000,000
//! bytes of zeros; so does [`SegmentWriter::finish`].

use prost::Message;

use crate::pb::{etcdserverpb, raftpb, walpb};

use super::frame::encode_word;

/// etcd's segment size.
pub const SEGMENT_SIZE: u64 = 64_000_000;

const METADATA: i64 = 1;
const ENTRY: i64 = 2;
const STATE: i64 = 3;
const CRC: i64 = 4;
const SNAPSHOT: i64 = 5;

/// Builds one segment in memory.
#[derive(Debug)]
pub struct SegmentWriter {
    buf: Vec<u8>,
    crc: u32,
}

impl SegmentWriter {
    /// A segment whose CRC chain continues from `prev_crc` (0 for the first).
    pub fn new(prev_crc: u32) -> SegmentWriter {
        let mut w = SegmentWriter {
            buf: Vec::new(),
            crc: prev_crc,
        };
        let rec = walpb::Record {
            r#type: Some(CRC),
            crc: Some(prev_crc),
            data: None,
        };
        w.frame(&rec.encode_to_vec());
        w
    }

    fn frame(&mut self, rec: &[u8]) {
        let len = rec.len() as u64;
        self.buf.extend_from_slice(&encode_word(len).to_le_bytes());
        self.buf.extend_from_slice(rec);
        let pad = ((8 - len % 8) % 8) as usize;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    fn record(&mut self, kind: i64, data: Vec<u8>) {
        self.crc = crc32c::crc32c_append(self.crc, &data);
        let rec = walpb::Record {
            r#type: Some(kind),
            crc: Some(self.crc),
            data: Some(data),
        };
        self.frame(&rec.encode_to_vec());
    }

    /// The metadata record: this member's ID and the cluster ID.
    pub fn metadata(&mut self, node_id: u64, cluster_id: u64) {
        let m = etcdserverpb::Metadata {
            node_id: Some(node_id),
            cluster_id: Some(cluster_id),
        };
        self.record(METADATA, m.encode_to_vec());
    }

    /// A snapshot marker (with the configuration, as etcd 3.5 writes it).
    pub fn snapshot(&mut self, index: u64, term: u64, conf_state: Option<raftpb::ConfState>) {
        let s = walpb::Snapshot {
            index: Some(index),
            term: Some(term),
            conf_state,
        };
        self.record(SNAPSHOT, s.encode_to_vec());
    }

    /// A raft entry.
    pub fn entry(&mut self, e: &raftpb::Entry) {
        self.record(ENTRY, e.encode_to_vec());
    }

    /// A HardState.
    pub fn state(&mut self, term: u64, vote: u64, commit: u64) {
        let hs = raftpb::HardState {
            term: Some(term),
            vote: Some(vote),
            commit: Some(commit),
        };
        self.record(STATE, hs.encode_to_vec());
    }

    /// The running CRC after the last record.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The segment's records (the file is then extended to [`SEGMENT_SIZE`]
    /// with zeros, as etcd preallocates it).
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A conf-change entry adding a voter, with the member JSON as context.
pub fn add_node_entry(term: u64, index: u64, node_id: u64, context: &[u8]) -> raftpb::Entry {
    let cc = raftpb::ConfChange {
        id: Some(0),
        r#type: Some(raftpb::ConfChangeType::ConfChangeAddNode as i32),
        node_id: Some(node_id),
        context: Some(context.to_vec()),
    };
    raftpb::Entry {
        term: Some(term),
        index: Some(index),
        r#type: Some(raftpb::EntryType::EntryConfChange as i32),
        data: Some(cc.encode_to_vec()),
    }
}
