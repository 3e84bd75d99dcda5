//! Throughput of the scans behind `status` and `check` on a big snapshot.
//!
//! `cargo bench --bench scan` reads `ETCD_RESCUE_BENCH_FILE` (default
//! `target/bench/big.snapshot.db`, made by `benches/gen-big-snapshot.sh`).
//! Side-by-side timings against etcdutl and sha256sum are in
//! `benches/compare.sh`; this bench isolates our own phases.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use etcd_rescue::mvcc::{DbScanOptions, scan, trailer};
use etcd_rescue::source::MappedFile;

fn time<T>(name: &str, bytes: u64, runs: usize, mut f: impl FnMut() -> T) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[runs / 2];
    let mbs = bytes as f64 / 1e6 / median.as_secs_f64();
    println!(
        "{name:<40} median {:>8.3} s   {mbs:>8.0} MB/s",
        median.as_secs_f64()
    );
}

fn main() {
    let path = std::env::var_os("ETCD_RESCUE_BENCH_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/big.snapshot.db"));
    if !path.is_file() {
        println!(
            "no benchmark input at {}; make one with `bash benches/gen-big-snapshot.sh` (or set ETCD_RESCUE_BENCH_FILE)",
            path.display()
        );
        return;
    }
    let f = MappedFile::open(&path).expect("open bench file");
    let data = f.bytes();
    let n = data.len() as u64;
    println!("{} ({} bytes)", path.display(), n);
    let runs = 5;
    time("read (sum of one byte per 4 KiB)", n, runs, || {
        data.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>()
    });
    time("sha256 of the image", n, runs, || {
        trailer::sha256(trailer::image(data))
    });
    time("status scan (no trailer check)", n, runs, || {
        scan(
            data,
            DbScanOptions {
                deep: false,
                verify_trailer: false,
                file_digest: false,
                single_thread: false,
                skip_hash: false,
            },
        )
        .hash
    });
    time("status scan (trailer checked)", n, runs, || {
        scan(
            data,
            DbScanOptions {
                deep: false,
                verify_trailer: true,
                file_digest: false,
                single_thread: false,
                skip_hash: false,
            },
        )
        .hash
    });
    time("check scan (deep + trailer)", n, runs, || {
        scan(
            data,
            DbScanOptions {
                deep: true,
                verify_trailer: true,
                file_digest: false,
                single_thread: false,
                skip_hash: false,
            },
        )
        .findings
        .has_problems()
    });
    time("deep scan only (no trailer)", n, runs, || {
        scan(
            data,
            DbScanOptions {
                deep: true,
                verify_trailer: false,
                file_digest: false,
                single_thread: false,
                skip_hash: false,
            },
        )
        .findings
        .has_problems()
    });
}
