//! A `.snap` file: a raft snapshot with its CRC.
//!
//! ```text
//! snappb.snapshot (proto2)
//!   1  crc   uint32 varint   CRC-32C of data (0 means "empty": etcd refuses it)
//!   2  data  bytes           raftpb.Snapshot:
//!                              1 data      the v2 store as JSON (v2store.rs)
//!                              2 metadata  {1 conf_state, 2 index, 3 term}
//! ```
//!
//! etcd reads a file like this (`snap.Read`): empty file, empty data or
//! crc 0 is `ErrEmptySnapshot`; a CRC that does not match is
//! `ErrCRCMismatch`. A file that fails is renamed `<name>.broken` when etcd
//! tries to load it.

use prost::Message;

use crate::pb::{raftpb, snappb};
use crate::wal::entry::ConfState;
use crate::wal::{Index, Term};

/// Why a `.snap` file cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapError {
    /// 0 bytes.
    #[error("the file is empty (etcd: ErrEmptySnapshot)")]
    EmptyFile,
    /// Not a snappb.snapshot.
    #[error("not a snapshot file: the envelope does not decode ({0})")]
    Envelope(String),
    /// No data or a zero CRC.
    #[error("the snapshot has no data or a zero CRC (etcd: ErrEmptySnapshot)")]
    EmptyData,
    /// CRC mismatch.
    #[error("CRC mismatch: the file says {stored:08x}, its data gives {computed:08x} (etcd: ErrCRCMismatch)")]
    Crc {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// The data is not a raftpb.Snapshot.
    #[error("the CRC matches but the data is not a raft snapshot ({0})")]
    Snapshot(String),
}

impl SnapError {
    /// Finding code.
    pub fn code(&self) -> &'static str {
        match self {
            SnapError::EmptyFile | SnapError::EmptyData => "snap-empty",
            SnapError::Crc { .. } => "snap-crc-mismatch",
            SnapError::Envelope(_) | SnapError::Snapshot(_) => "snap-undecodable",
        }
    }
}

/// A loaded raft snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Index.
    pub index: Index,
    /// Term.
    pub term: Term,
    /// Configuration at that index.
    pub conf_state: ConfState,
    /// The v2 store JSON.
    pub data: Vec<u8>,
}

/// Reads a `.snap` file's bytes as etcd does.
pub fn read(bytes: &[u8]) -> Result<Snapshot, SnapError> {
    if bytes.is_empty() {
        return Err(SnapError::EmptyFile);
    }
    let env = snappb::Snapshot::decode(bytes).map_err(|e| SnapError::Envelope(e.to_string()))?;
    let data = env.data.unwrap_or_default();
    let stored = env.crc.unwrap_or(0);
    if data.is_empty() || stored == 0 {
        return Err(SnapError::EmptyData);
    }
    let computed = crc32c::crc32c(&data);
    if computed != stored {
        return Err(SnapError::Crc { stored, computed });
    }
    let s = raftpb::Snapshot::decode(data.as_slice()).map_err(|e| SnapError::Snapshot(e.to_string()))?;
    let m = s.metadata.unwrap_or_default();
    Ok(Snapshot {
        index: Index(m.index()),
        term: Term(m.term()),
        conf_state: m.conf_state.map(ConfState::from).unwrap_or_default(),
        data: s.data.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(data: &[u8], crc: Option<u32>) -> Vec<u8> {
        snappb::Snapshot {
            crc: Some(crc.unwrap_or_else(|| crc32c::crc32c(data))),
            data: Some(data.to_vec()),
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_and_refuses() {
        let inner = raftpb::Snapshot {
            data: Some(b"{}".to_vec()),
            metadata: Some(raftpb::SnapshotMetadata {
                conf_state: Some(raftpb::ConfState {
                    voters: vec![5],
                    ..Default::default()
                }),
                index: Some(51),
                term: Some(2),
            }),
        }
        .encode_to_vec();
        let s = read(&make(&inner, None)).unwrap();
        assert_eq!(
            (s.index, s.term, s.data.as_slice()),
            (Index(51), Term(2), &b"{}"[..])
        );
        assert_eq!(s.conf_state.voters, vec![crate::membership::MemberId(5)]);
        assert_eq!(read(&[]), Err(SnapError::EmptyFile));
        assert!(matches!(read(&make(&inner, Some(1))), Err(SnapError::Crc { .. })));
        assert_eq!(read(&make(&inner, Some(0))), Err(SnapError::EmptyData));
        assert!(matches!(read(&[0xff]), Err(SnapError::Envelope(_))));
        assert!(matches!(
            read(&make(&[0xff, 0xff], None)),
            Err(SnapError::Snapshot(_))
        ));
    }
}
