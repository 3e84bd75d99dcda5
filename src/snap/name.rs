//! Names of the files in `member/snap/`.
//!
//! ```text
//! <term:%016x>-<index:%016x>.snap     raft snapshot (file.rs)
//! <index:%016x>.snap.db               a db received from the leader for that index
//! <name>.broken                       a file etcd failed to load and set aside
//! db                                  the v3 backend (bbolt)
//! ```
//!
//! etcd loads every name ending in `.snap`, newest first in reverse lexical
//! order; the term and index in the name are only for ordering.

use crate::wal::{Index, Term};

/// A parsed `.snap` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct SnapName {
    /// Term.
    pub term: Term,
    /// Index.
    pub index: Index,
}

fn hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl SnapName {
    /// Parses `%016x-%016x.snap`.
    pub fn parse(name: &str) -> Option<SnapName> {
        let (t, i) = name.strip_suffix(".snap")?.split_once('-')?;
        Some(SnapName {
            term: Term(hex16(t)?),
            index: Index(hex16(i)?),
        })
    }

    /// The canonical file name.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.snap", self.term.0, self.index.0)
    }
}

/// Parses `%016x.snap.db` into its index.
pub fn parse_snap_db(name: &str) -> Option<Index> {
    name.strip_suffix(".snap.db").and_then(hex16).map(Index)
}

/// The `.snap.db` name for an index.
pub fn snap_db_name(index: Index) -> String {
    format!("{:016x}.snap.db", index.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = SnapName::parse("0000000000000002-0000000000000132.snap").unwrap();
        assert_eq!((n.term, n.index), (Term(2), Index(0x132)));
        assert_eq!(n.file_name(), "0000000000000002-0000000000000132.snap");
        assert!(SnapName::parse("0000000000000002-0000000000000132.snap.broken").is_none());
        assert_eq!(parse_snap_db("0000000000000132.snap.db"), Some(Index(0x132)));
        assert_eq!(snap_db_name(Index(0x132)), "0000000000000132.snap.db");
        assert!(parse_snap_db("db").is_none());
    }
}
