//! Fuzz target `bolt_cursor`: the body is `fuzz/bodies/bolt_cursor.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::bolt_cursor::run(data));
