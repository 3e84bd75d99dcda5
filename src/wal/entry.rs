//! `raftpb.Entry`, the data of entry records, decoded without copying.
//!
//! ```text
//! raftpb.Entry (proto2; gogo writes fields in this order, all but Data always)
//!   2  Term   uint64
//!   3  Index  uint64
//!   1  Type   enum    0 EntryNormal, 1 EntryConfChange, 2 EntryConfChangeV2
//!   4  Data   bytes   Normal: InternalRaftRequest or v2 Request (payload.rs),
//!                     empty for a leader's no-op; ConfChange(V2): confchange.rs
//! ```

pub use super::confchange::ConfState;
use super::ids::{Index, Term};
use crate::wire::{self, Fields, WireError};

/// The kind of a raft entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EntryType {
    /// A normal entry (a request, or a no-op).
    Normal,
    /// A `ConfChange`.
    ConfChange,
    /// A `ConfChangeV2` (etcd never writes one).
    ConfChangeV2,
    /// A type raft does not know.
    Unknown(i32),
}

impl EntryType {
    /// From the raw enum value.
    pub fn from_raw(v: u64) -> EntryType {
        match v {
            0 => EntryType::Normal,
            1 => EntryType::ConfChange,
            2 => EntryType::ConfChangeV2,
            v => EntryType::Unknown(v as i32),
        }
    }
}

/// A raft entry, borrowing its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Term.
    pub term: Term,
    /// Index.
    pub index: Index,
    /// Type.
    pub kind: EntryType,
    /// Data (empty when absent).
    pub data: &'a [u8],
}

impl<'a> Entry<'a> {
    /// Decodes an entry. Unknown fields are skipped.
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Entry<'a>, WireError> {
        let mut e = Entry {
            term: Term(0),
            index: Index(0),
            kind: EntryType::Normal,
            data: &[],
        };
        let mut f = Fields::new(buf);
        while let Some((n, v)) = f.next_field()? {
            match n {
                1 => e.kind = EntryType::from_raw(wire::expect_varint(1, v)?),
                2 => e.term = Term(wire::expect_varint(2, v)?),
                3 => e.index = Index(wire::expect_varint(3, v)?),
                4 => e.data = wire::expect_bytes(4, v)?,
                _ => {}
            }
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn same_as_prost() {
        let pe = crate::pb::raftpb::Entry {
            term: Some(3),
            index: Some(77),
            r#type: Some(1),
            data: Some(b"xyz".to_vec()),
        };
        let bytes = pe.encode_to_vec();
        let e = Entry::parse(&bytes).unwrap();
        assert_eq!(
            (e.term, e.index, e.kind, e.data),
            (Term(3), Index(77), EntryType::ConfChange, &b"xyz"[..])
        );
        assert!(Entry::parse(&bytes[..bytes.len() - 1]).is_err());
    }
}
