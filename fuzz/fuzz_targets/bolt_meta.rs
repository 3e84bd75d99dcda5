//! Fuzz target `bolt_meta`: the body is `fuzz/bodies/bolt_meta.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::bolt_meta::run(data));
