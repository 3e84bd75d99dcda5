//! Raft snapshots in `member/snap/`: `.snap` files (CRC, `raftpb.Snapshot`,
//! the v2 store with the membership in it), received `*.snap.db` files and
//! `.broken` leftovers. Read-only; nothing here prints.
//!
//! ```text
//! member/snap/
//!   <term>-<index>.snap   snappb.snapshot{crc, data = raftpb.Snapshot{data = v2 store JSON, metadata}}
//!   <index>.snap.db       bbolt db received from the leader
//!   *.broken              files etcd failed to load
//!   db                    the v3 backend (read by crate::mvcc)
//! ```

pub mod dir;
pub mod file;
pub mod name;
pub mod v2store;
pub mod writer;

pub use dir::{SnapDir, scan};
pub use file::{SnapError, Snapshot, read};
pub use name::SnapName;
