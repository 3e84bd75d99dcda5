//! etcd's write-ahead log (`member/wal/*.wal`), read-only.
//!
//! ```text
//! member/wal/<seq>-<index>.wal      segments (name.rs, dir.rs)
//!   frame*                          u64 LE length word + walpb.Record + padding (frame.rs)
//!     walpb.Record                  type, crc, data (record.rs)
//!       1 metadata  -> node and cluster IDs
//!       2 entry     -> raftpb.Entry (entry.rs) -> payload (payload.rs, confchange.rs)
//!       3 state     -> raftpb.HardState
//!       4 crc       -> running CRC-32C at a segment start
//!       5 snapshot  -> walpb.Snapshot {index, term, conf_state}
//! ```
//!
//! Layers: [`frame`] and [`record`] decode bytes into views; [`reader`] walks
//! the segments with the CRC chain and tells torn tails from corruption the
//! way etcd does, reading on past damage (salvage); [`log`] applies raft's
//! replace-on-lower-index rule; [`scan`] turns it all into a [`WalReport`]
//! with findings. Nothing here prints.

pub mod confchange;
pub mod dir;
pub mod entry;
pub mod frame;
pub mod ids;
pub mod log;
pub mod name;
pub mod payload;
pub mod reader;
pub mod record;
pub mod scan;
pub mod writer;

pub use dir::{DirError, WalDir};
pub use entry::{Entry, EntryType};
pub use ids::{Index, Term};
pub use name::SegmentName;
pub use record::{HardState, Metadata, Record, RecordType, SnapshotMark};
pub use scan::{EntryAt, ScanOptions, Tail, WalReport, scan};
