//! KeyValue and revision key decoding.

use etcd_rescue::mvcc::RevKey;
use etcd_rescue::mvcc::kv::KeyValueRef;

/// The target's body.
pub fn run(data: &[u8]) {
    let _ = KeyValueRef::decode(data);
    let _ = KeyValueRef::key_of(data);
    let _ = RevKey::parse(data);
}
