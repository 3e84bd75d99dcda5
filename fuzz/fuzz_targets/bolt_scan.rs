//! The whole bbolt + etcd scan (structure walk, freelist, schema rules,
//! history rules, the snapshot hash) on arbitrary bytes: it must return.
#![no_main]
use etcd_rescue::mvcc::{ScanOptions, scan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let r = scan(
        data,
        ScanOptions {
            deep: true,
            verify_trailer: true,
            file_digest: false,
            single_thread: true,
            skip_hash: false,
        },
    );
    let _ = r.findings.has_problems();
});
