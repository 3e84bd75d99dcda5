//! Fuzz target `k8s_value`: the body is `fuzz/bodies/k8s_value.rs`, shared with
//! `tests/fuzz_regressions.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../bodies/mod.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::k8s_value::run(data));
