//! The bodies of the fuzz targets, one `run(&[u8])` per target.
//!
//! They are shared by `fuzz/fuzz_targets/*.rs` (built by `cargo fuzz` on
//! nightly) and `tests/fuzz_regressions.rs` (plain `cargo test`), both with
//! `#[path]`, so the regression test runs exactly what the fuzzer ran. Every
//! body must return without panicking on any bytes; the roundtrip bodies
//! assert that what was written reads back the same.

pub mod batch_containers;
pub mod bolt_cursor;
pub mod bolt_meta;
pub mod bolt_scan;
pub mod bolt_writer_roundtrip;
pub mod input;
pub mod k8s_value;
pub mod mvcc_kv;
pub mod salvage;
pub mod snap_file;
pub mod snap_writer_roundtrip;
pub mod wal_entry;
pub mod wal_records;
pub mod wal_writer_roundtrip;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target by name (the `[[bin]]` names in `fuzz/Cargo.toml` and the
/// folder names under `fuzz/seeds/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Body)] = &[
    ("batch_containers", batch_containers::run),
    ("bolt_cursor", bolt_cursor::run),
    ("bolt_meta", bolt_meta::run),
    ("bolt_scan", bolt_scan::run),
    ("bolt_writer_roundtrip", bolt_writer_roundtrip::run),
    ("k8s_value", k8s_value::run),
    ("mvcc_kv", mvcc_kv::run),
    ("salvage", salvage::run),
    ("snap_file", snap_file::run),
    ("snap_writer_roundtrip", snap_writer_roundtrip::run),
    ("wal_entry", wal_entry::run),
    ("wal_records", wal_records::run),
    ("wal_writer_roundtrip", wal_writer_roundtrip::run),
];
