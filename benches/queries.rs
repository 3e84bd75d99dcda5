//! Keyspace queries on a big snapshot: a single-key get, a full-prefix count,
//! HashKV and stats, with time and peak heap (a counting allocator: the
//! mapped file's pages are not heap and are not counted).
//!
//! `cargo bench --bench queries` reads `ETCD_RESCUE_BENCH_FILE` (default
//! `target/bench/big.snapshot.db`, made by `benches/gen-big-snapshot.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::hashkv::hash_kv;
use etcd_rescue::mvcc::index::{KeyIndex, KeyRange};
use etcd_rescue::mvcc::stats::{StatsOptions, compute};
use etcd_rescue::mvcc::{DbScanOptions, scan, trailer};
use etcd_rescue::source::MappedFile;

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = NOW.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

fn measure<T>(name: &str, f: impl FnOnce() -> T) -> T {
    PEAK.store(NOW.load(Ordering::Relaxed), Ordering::Relaxed);
    let base = NOW.load(Ordering::Relaxed);
    let t = Instant::now();
    let r = f();
    let secs = t.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "{name:<44} {secs:>7.3} s   peak heap {:>7.1} MiB",
        peak as f64 / (1 << 20) as f64
    );
    r
}

fn main() {
    let path = std::env::var_os("ETCD_RESCUE_BENCH_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/big.snapshot.db"));
    if !path.is_file() {
        println!(
            "no benchmark input at {}; make one with `bash benches/gen-big-snapshot.sh`",
            path.display()
        );
        return;
    }
    let f = MappedFile::open(&path).expect("open");
    let data = f.bytes();
    println!("{} ({} bytes)", path.display(), data.len());
    let (db, _) = Db::open(trailer::image(data)).expect("db");
    let ks = etcd_rescue::mvcc::keyspace::Keyspace::db(db);
    // Warm the page cache and find a key to look up.
    let all = measure("index, all keys (full scan + sort)", || {
        KeyIndex::build(&ks, &KeyRange::All).unwrap()
    });
    let key = all
        .iter()
        .nth(all.key_count() / 2)
        .map(|(k, _)| k.to_vec())
        .unwrap();
    println!("  {} keys, {} revisions", all.key_count(), all.revision_count());
    measure("single-key get (index of one key + decode)", || {
        let i = KeyIndex::build(&ks, &KeyRange::Exact(key.clone())).unwrap();
        let at = i.check_rev(0).unwrap();
        i.live_at(at)
            .map(|(_, r)| r.kv().unwrap().value.len())
            .sum::<usize>()
    });
    measure("count of /registry/ (prefix index + count)", || {
        let i = KeyIndex::build(&ks, &KeyRange::Prefix(b"/registry/".to_vec())).unwrap();
        let at = i.check_rev(0).unwrap();
        i.live_at(at).count()
    });
    measure("hashkv at head (index + keep + hash)", || {
        let i = KeyIndex::build(&ks, &KeyRange::All).unwrap();
        hash_kv(&ks, &i, 0).unwrap().hash
    });
    measure("stats (scan + index + compute)", || {
        let r = scan(data, DbScanOptions::default());
        let i = KeyIndex::build(&ks, &KeyRange::All).unwrap();
        compute(&i, &r, StatsOptions { depth: 2, top: 10 })
            .unwrap()
            .live_keys
    });
}
