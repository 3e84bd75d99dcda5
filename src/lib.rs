//! etcd-rescue: offline forensics, verification and recovery of etcd data
//! files, with no etcd running.
//!
//! Layers, from the bytes up:
//! - [`bolt`]: a read-only, corruption-tolerant bbolt reader;
//! - [`mvcc`]: etcd's backend schema, `status` and `check` scans;
//! - [`batch`]: verifying whole backup stores with a catalog;
//! - [`datadir`]: a member dir judged as a whole (db + WAL + snap) and the verdict;
//! - [`judge`]: the one judgment of any path (what it is, what is wrong, what etcd does);
//! - [`report`]: findings with severity and location;
//! - [`source`]: read-only mapped input files;
//! - [`wal`]: WAL segments, records, raft entries and their payloads;
//! - [`snap`]: `.snap` files and the rest of `member/snap/`;
//! - [`cli`]: the command line (rendering only, no format logic).
//!
//! Every input is untrusted: parsers check bounds and never allocate by a
//! length read from disk before checking it against the bytes present.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod atomic;
pub mod batch;
pub mod bolt;
pub mod cli;
pub mod compact;
pub mod datadir;
pub mod judge;
pub mod k8s;
pub mod keyhash;
pub mod membership;
pub mod mvcc;
pub mod pb;
pub mod progress;
pub mod remote;
pub mod report;
pub mod restore;
pub mod salvage;
pub mod snap;
pub mod source;
pub mod wal;
pub mod wire;
