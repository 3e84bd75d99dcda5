//! Fuzz target `mvcc_kv`: the body is `fuzz/bodies/mvcc_kv.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::mvcc_kv::run(data));
