//! etcd's schema on top of bbolt: revision keys, `mvccpb.KeyValue`, the
//! `meta`, `members`, `lease`, `auth` and `cluster` buckets, the sha256
//! trailer of snapshot files, and the scan behind `status` and `check`.

pub mod hashkv;
pub mod index;
pub mod keyspace;
pub mod kv;
pub mod revision;
pub mod scan;
pub mod schema;
pub mod stats;
pub mod trailer;

pub use revision::{RevKey, Revision};
pub use scan::{DbReport, DbScanOptions, scan};
pub use trailer::Trailer;
