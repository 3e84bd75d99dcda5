//! KeyValue and revision key decoding.
#![no_main]
use etcd_rescue::mvcc::RevKey;
use etcd_rescue::mvcc::kv::KeyValueRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = KeyValueRef::decode(data);
    let _ = KeyValueRef::key_of(data);
    let _ = RevKey::parse(data);
});
