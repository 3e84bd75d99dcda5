//! Sniffing and unpacking containers (gzip, zstd, xz, bzip2, zip, tar) the way the
//! judgment does, with a small limit: arbitrary bytes must not panic,
//! exhaust memory or write outside the scratch directory.

use etcd_rescue::judge::kind::{Sniff, sniff};
use etcd_rescue::judge::unpack::{Limits, unpack};

/// The target's body.
pub fn run(data: &[u8]) {
    if let Sniff::Container(c) = sniff(data) {
        let limits = Limits { max_bytes: 1 << 20 };
        if let Ok(u) = unpack(c, data, "fuzz", limits) {
            // Everything unpacked lies under the scratch directory.
            if let Some(rel) = &u.single {
                assert!(u.scratch.path().join(rel).starts_with(u.scratch.path()));
            }
        }
    }
}
