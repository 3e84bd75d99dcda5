//! The whole bbolt + etcd scan (structure walk, freelist, schema rules,
//! history rules, the snapshot hash) on arbitrary bytes: it must return.

use etcd_rescue::mvcc::{DbScanOptions, scan};

/// The target's body.
pub fn run(data: &[u8]) {
    let r = scan(
        data,
        DbScanOptions {
            deep: true,
            verify_trailer: true,
            file_digest: false,
            single_thread: true,
            skip_hash: false,
        },
    );
    let _ = r.findings.has_problems();
}
