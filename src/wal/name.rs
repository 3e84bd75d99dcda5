//! WAL segment file names.
//!
//! ```text
//! <seq:%016x>-<index:%016x>.wal      e.g. 0000000000000001-000000000000015d.wal
//! ```
//!
//! `seq` counts segments from 0; `index` is the raft index the writer expected
//! next when it created the file (0 for the first). etcd lists names in
//! lexical order, which is `seq` order for well-formed names.

use std::fmt;

use super::ids::Index;

/// A parsed segment name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SegmentName {
    /// Sequence number.
    pub seq: u64,
    /// First raft index the segment was meant for.
    pub index: Index,
}

fn hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl SegmentName {
    /// Parses a file name; `None` unless it is exactly `%016x-%016x.wal`.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let stem = name.strip_suffix(".wal")?;
        let (a, b) = stem.split_once('-')?;
        Some(SegmentName {
            seq: hex16(a)?,
            index: Index(hex16(b)?),
        })
    }

    /// The canonical file name.
    pub fn file_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{:016x}.wal", self.seq, self.index.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = SegmentName::parse("0000000000000001-000000000000015d.wal").unwrap();
        assert_eq!((n.seq, n.index), (1, Index(0x15d)));
        assert_eq!(n.file_name(), "0000000000000001-000000000000015d.wal");
        assert!(SegmentName::parse("0.tmp").is_none());
        assert!(SegmentName::parse("1-2.wal").is_none());
        assert!(SegmentName::parse("000000000000000g-0000000000000000.wal").is_none());
        assert!(SegmentName::parse("0000000000000000-0000000000000000.wal.broken").is_none());
        assert!(SegmentName::parse("+000000000000000-0000000000000000.wal").is_none());
    }
}
