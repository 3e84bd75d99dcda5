//! Decoding a WAL of at least 64 MB, next to plain reads of the same files,
//! on one core.
//!
//! `cargo bench --bench wal` decodes the WAL of the real-etcd `snapcount`
//! fixture (two segments, 128.5 MB, 48 entries of 1.5 MB among 354), which it
//! extracts once into `target/bench/` from
//! `testdata/fixtures/v3.5.1/snapcount.datadir.tar.gz`. Set
//! `ETCD_RESCUE_BENCH_WAL` to a WAL dir (or data dir) to use another.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_rescue::datadir::resolve_wal;
use etcd_rescue::wal::reader::{self, Event};
use etcd_rescue::wal::{self, WalDir, payload};

fn time<T>(name: &str, bytes: u64, runs: usize, mut f: impl FnMut() -> T) -> f64 {
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
        "{name:<52} median {:>8.3} s   {mbs:>8.0} MB/s",
        median.as_secs_f64()
    );
    mbs
}

fn input() -> PathBuf {
    if let Some(p) = std::env::var_os("ETCD_RESCUE_BENCH_WAL") {
        return resolve_wal(Path::new(&p)).expect("ETCD_RESCUE_BENCH_WAL is not a WAL or data dir");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dest = root.join("target/bench/wal-snapcount-v3.5.1");
    let wal = dest.join("snapcount/member/wal");
    if !wal.is_dir() {
        std::fs::create_dir_all(&dest).expect("create target/bench");
        let st = Command::new("tar")
            .arg("-xzf")
            .arg(root.join("testdata/fixtures/v3.5.1/snapcount.datadir.tar.gz"))
            .arg("-C")
            .arg(&dest)
            .status()
            .expect("run tar");
        assert!(st.success(), "extracting the snapcount fixture failed");
    }
    wal
}

fn main() {
    let path = input();
    let files: Vec<PathBuf> = {
        let d = WalDir::open(&path).expect("open the WAL dir");
        d.segments.iter().map(|s| s.file.path().to_path_buf()).collect()
    };
    let bytes: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    println!(
        "{} ({} segments, {bytes} bytes), one core",
        path.display(),
        files.len()
    );
    let runs = 7;
    // Warm the page cache, so every figure below reads from memory.
    for f in &files {
        std::hint::black_box(std::fs::read(f).unwrap());
    }
    time("plain read (std::fs::read of every segment)", bytes, runs, || {
        files
            .iter()
            .map(|f| std::fs::read(f).unwrap().len())
            .sum::<usize>()
    });
    time("plain read (mmap, sum every 8th byte)", bytes, runs, || {
        let d = WalDir::open(&path).unwrap();
        d.segments
            .iter()
            .map(|s| {
                s.file
                    .bytes()
                    .iter()
                    .step_by(8)
                    .map(|&b| u64::from(b))
                    .sum::<u64>()
            })
            .sum::<u64>()
    });
    time("frames + CRC chain + records (wal::reader)", bytes, runs, || {
        let d = WalDir::open(&path).unwrap();
        let mut n = 0u64;
        reader::read(&d.segment_bytes(), |ev| {
            if let Event::Record(_) = ev {
                n += 1;
            }
        });
        n
    });
    let decode = time(
        "decode: frames + CRC + records + raft log (wal::scan)",
        bytes,
        runs,
        || {
            let d = WalDir::open(&path).unwrap();
            wal::scan(&d, wal::ScanOptions::default(), |_| {}).entries.entries
        },
    );
    time(
        "decode + every entry payload (wal::scan, payloads)",
        bytes,
        runs,
        || {
            let d = WalDir::open(&path).unwrap();
            wal::scan(&d, wal::ScanOptions { payloads: true }, |_| {})
                .entries
                .entries
        },
    );
    time(
        "decode + payloads to text (what `wal` prints)",
        bytes,
        runs,
        || {
            let d = WalDir::open(&path).unwrap();
            let mut out = 0usize;
            wal::scan(&d, wal::ScanOptions::default(), |e| {
                out += payload::decode(&e.entry).request.summary(80).len();
            });
            out
        },
    );
    if decode < 500.0 {
        println!("below the 500 MB/s target");
    }
}
