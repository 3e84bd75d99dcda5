//! The WAL as a whole on arbitrary bytes: frames, `walpb.Record`s, the CRC
//! chain across segments, torn tail versus corruption, salvage's resync,
//! the raft log and the findings (`wal::scan` with `payloads: true`), then
//! every entry's payload decoded, summarized and rendered as JSON as
//! `etcd-rescue wal` does. The WAL directory is built in memory.
//!
//! Input: the segments' bytes separated by [`SEPARATOR`]; segment `i` is
//! named `<i>-<i>.wal` (`%016x`), so a real segment file is a valid input.

use std::path::Path;

use etcd_rescue::wal::{self, WalDir, payload};

/// Separates segments in the input.
pub const SEPARATOR: &[u8] = b"\n--next-segment--\n";

/// Splits the input into segments.
pub fn segments(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(p) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        out.push(&rest[..p]);
        rest = &rest[p + SEPARATOR.len()..];
    }
    out.push(rest);
    out
}

/// The target's body.
pub fn run(data: &[u8]) {
    let files = segments(data)
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("{i:016x}-{i:016x}.wal"), b.to_vec()))
        .collect();
    let dir = WalDir::from_files(Path::new("fuzz"), files);
    let mut entries = 0u64;
    let report = wal::scan(&dir, wal::ScanOptions { payloads: true }, |e| {
        entries += 1;
        let p = payload::decode(&e.entry);
        let _ = p.request.summary(64);
        let _ = p.request.touches_prefix(b"/registry/");
        let _ = serde_json::to_vec(&p).expect("a payload renders as JSON");
    });
    // What must hold whatever the bytes.
    assert_eq!(report.segments.len(), dir.segments.len());
    assert_eq!(
        report.bytes,
        data.len() as u64 - (SEPARATOR.len() * (dir.segments.len() - 1)) as u64
    );
    for s in &report.segments {
        assert!(s.valid_end <= s.size, "{s:?}");
    }
    assert!(
        report.salvage.skipped_bytes <= report.bytes,
        "{:?}",
        report.salvage
    );
    assert!(report.entries.records + report.salvage.entries <= entries);
    assert!(report.entries.entries <= report.entries.records);
    let _ = serde_json::to_vec(&report).expect("a WAL report renders as JSON");
}
