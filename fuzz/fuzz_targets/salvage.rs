//! Fuzz target `salvage`: the body is `fuzz/bodies/salvage.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::salvage::run(data));
