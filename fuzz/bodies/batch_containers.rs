//! Sniffing and opening containers (gzip, zstd, zip, tar) with a small
//! decompression limit: arbitrary bytes must not panic or exhaust memory.

use etcd_rescue::batch::input::{Sniff, decompress, sniff, tar_members, zip_members};

/// The target's body.
pub fn run(data: &[u8]) {
    const LIMIT: u64 = 1 << 20;
    match sniff(data) {
        k @ (Sniff::Gzip | Sniff::Zstd) => {
            let _ = decompress(k, data, LIMIT);
        }
        Sniff::Zip => {
            let _ = zip_members(data, LIMIT, |_, _| {});
        }
        Sniff::Tar => {
            let _ = tar_members(data, LIMIT, |_, _| {});
        }
        _ => {}
    }
}
