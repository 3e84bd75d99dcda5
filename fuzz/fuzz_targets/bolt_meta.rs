//! Meta page decoding and the choice between the two meta pages.
#![no_main]
use etcd_rescue::bolt::meta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meta::Meta::read(data, 0);
    let _ = meta::choose(data);
});
