//! Restore-ready data directories without a running etcd: from snapshot
//! files and from copied member dirs, for one member or all of them, and the
//! offline equivalent of `--force-new-cluster`.

pub mod db;
pub mod members;
