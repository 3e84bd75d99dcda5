//! One judgment, checked from every side: for every fixture and every kind
//! of damaged member dir, `check`, `inspect`, `verify` (plain, gzip, tar)
//! and `restore --dry-run` give the same verdict class, and for member dirs
//! the judgment is what real etcd 3.4.23 / 3.5.1 does when started on a copy
//! (starts and serves everything / starts and loses data / refuses).
//! The corruption catalogue runs the same harness on each of its cases
//! (`tests/catalogue_*.rs`); this file covers the fixtures themselves and the
//! damage the catalogue does not make: the db of a member dir destroyed in
//! the ways people meet, etcd 2.x member dirs, `.snap` files etcd must load,
//! a restore's own output, and a dir etcd is running on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::agree::{Agreed, agree, agrees_with_etcd, serve};
use common::etcd::free_port;
use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::bucket::BucketRoot;
use etcd_rescue::pb::{raftpb, snappb};
use prost::Message;
use serde_json::Value;

fn agreed(p: &Path) -> Agreed {
    agree(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every fixture is judged alike by every command, passes, and (member
/// dirs) is started on by real etcd exactly as judged.
#[test]
fn every_fixture_is_judged_alike_and_as_etcd_does() {
    for vdir in version_dirs() {
        let bin = require(Need::EtcdFor(&vdir));
        let mut paths: Vec<PathBuf> = vec![vdir.join("single.snapshot.db"), vdir.join("cluster.snapshot.db")];
        let mut dirs = Vec::new();
        for (scenario, names) in [
            ("single", &["single"][..]),
            ("killed", &["killed"][..]),
            ("snapcount", &["snapcount"][..]),
            ("cluster", &["m1", "m2", "m3"][..]),
        ] {
            for n in names {
                let d = extracted_dir(&vdir, scenario).join(n);
                paths.push(d.join("member/snap/db"));
                dirs.push(d);
            }
        }
        let snapcount = extracted_dir(&vdir, "snapcount").join("snapcount/member");
        for f in walk_files(&snapcount.join("snap")) {
            if f.extension().is_some_and(|e| e == "snap") {
                paths.push(f);
            }
        }
        paths.extend(wal_segments(&snapcount));
        paths.push(snapcount.join("wal"));
        // A db as a follower receives it from its leader.
        let tmp = tempfile::tempdir().unwrap();
        let snap_db = tmp.path().join("0000000000000132.snap.db");
        std::fs::copy(snapcount.join("snap/db"), &snap_db).unwrap();
        paths.push(snap_db.clone());
        for p in paths.iter().chain(&dirs) {
            let a = agreed(p);
            assert!(a.class == "ok" || a.class == "warnings", "{}: {a:?}", p.display());
        }
        assert_eq!(agreed(&snap_db).kind, "snap-db");
        assert_eq!(agreed(&snapcount.join("wal")).kind, "wal-dir");
        let Some(bin) = bin else { continue };
        // A member of the 3-member cluster waits for its peers: the cluster
        // is started together below.
        for d in dirs
            .iter()
            .filter(|d| !d.ends_with("m1") && !d.ends_with("m2") && !d.ends_with("m3"))
        {
            let a = agreed(d);
            let does = agrees_with_etcd(&bin, d, d, &a).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            assert_eq!(does.outcome(), "starts", "{}", d.display());
        }
    }
}

/// The three members of the cluster fixture are each judged "starts", and
/// real etcd started on copies of all three (on the peer URLs they were
/// created with) serves what the cluster served.
#[test]
fn cluster_members_start_together_as_judged() {
    for vdir in version_dirs() {
        let list = read_json(&vdir.join("cluster.expect/member-list.json"));
        let members: Vec<(String, String)> = list["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_string(),
                    m["peerURLs"][0].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let initial: Vec<String> = members.iter().map(|(n, u)| format!("{n}={u}")).collect();
        for (name, _) in &members {
            let src = extracted_dir(&vdir, "cluster").join(name);
            assert_eq!(agreed(&src).etcd.as_deref(), Some("starts"), "{name}");
        }
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let mut running = Vec::new();
        for (name, url) in &members {
            let src = extracted_dir(&vdir, "cluster").join(name);
            let d = tmp.path().join(name);
            copy_tree(&src, &d);
            let client = free_port();
            let curl = format!("http://127.0.0.1:{client}");
            let child = Command::new(bin.join("etcd"))
                .args(["--name", name, "--data-dir"])
                .arg(&d)
                .args(["--listen-client-urls", &curl, "--advertise-client-urls", &curl])
                .args(["--listen-peer-urls", url, "--initial-advertise-peer-urls", url])
                .args(["--initial-cluster", &initial.join(",")])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(d.with_extension("log")).unwrap())
                .spawn()
                .unwrap();
            running.push(Live {
                child,
                bin: bin.clone(),
                client,
                log: d.with_extension("log"),
            });
        }
        let t = Instant::now();
        let out = loop {
            let (ok, out) = running[0].ctl(&["--command-timeout=2s", "get", "", "--prefix", "-w", "json"]);
            if ok {
                break out;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the cluster did not start: {}",
                std::fs::read_to_string(&running[0].log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        let (_, kvs) = etcdctl_get_json(&serde_json::from_str(&out).unwrap());
        let (_, want) = etcdctl_get(&vdir.join("cluster.expect/get.json"));
        assert_eq!(kvs, want, "{}", vdir.display());
    }
}

// ---------------------------------------------------------------------------
// damage to a member dir's db, WAL and snap files

fn edit(p: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(p).unwrap();
    f(&mut b);
    std::fs::write(p, b).unwrap();
}

fn db_of(d: &Path) -> PathBuf {
    d.join("member/snap/db")
}

/// The `key` bucket's leaf pages.
fn key_leaves(db: &[u8]) -> Vec<u64> {
    let (db, _) = Db::open(db).unwrap();
    let b = db.bucket(b"key").unwrap().unwrap();
    let BucketRoot::Page(root) = b.root() else {
        panic!("inline key bucket")
    };
    let node = db.node(root).unwrap();
    assert!(node.is_branch());
    (0..node.count())
        .map(|i| node.branch(i).unwrap().child.0)
        .collect()
}

fn page_size(db: &[u8]) -> usize {
    Db::open(db).unwrap().0.page_size()
}

/// The newest `.snap` file of a member dir.
fn newest_snap(d: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = walk_files(&d.join("member/snap"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    v.sort();
    v.pop().expect("a .snap file")
}

/// Rewrites a `.snap` file's v2 store JSON with `f` (a valid CRC after).
fn rewrite_v2_store(snap: &Path, f: impl FnOnce(String) -> String) {
    let env = snappb::Snapshot::decode(std::fs::read(snap).unwrap().as_slice()).unwrap();
    let mut s = raftpb::Snapshot::decode(env.data.unwrap().as_slice()).unwrap();
    let json = String::from_utf8(s.data.take().unwrap()).unwrap();
    s.data = Some(f(json).into_bytes());
    let body = s.encode_to_vec();
    let out = snappb::Snapshot {
        crc: Some(crc32c::crc32c(&body)),
        data: Some(body),
    }
    .encode_to_vec();
    std::fs::write(snap, out).unwrap();
}

/// Adds an ignored field nested `depth` levels deep to the store's JSON.
fn nest(json: String, depth: usize) -> String {
    let body = json.trim_end().strip_suffix('}').unwrap();
    format!("{body},\"Deep\":{}{}}}", "[".repeat(depth), "]".repeat(depth))
}

type Damage = fn(&Path);

/// (name, scenario, damage). Each is judged by every command, then started
/// on by real etcd.
const DAMAGE: &[(&str, &str, Damage)] = &[
    ("db-empty", "single", |d| std::fs::write(db_of(d), b"").unwrap()),
    ("db-empty", "snapcount", |d| {
        std::fs::write(db_of(d), b"").unwrap()
    }),
    ("db-not-bbolt", "single", |d| {
        std::fs::write(db_of(d), b"this is not a bbolt file\n".repeat(300)).unwrap()
    }),
    ("db-not-bbolt", "snapcount", |d| {
        std::fs::write(db_of(d), b"this is not a bbolt file\n".repeat(300)).unwrap()
    }),
    ("db-metas-zeroed", "single", |d| {
        edit(&db_of(d), |b| {
            let ps = page_size(b);
            b[..2 * ps].fill(0)
        })
    }),
    ("db-metas-zeroed", "snapcount", |d| {
        edit(&db_of(d), |b| {
            let ps = page_size(b);
            b[..2 * ps].fill(0)
        })
    }),
    ("db-meta1-zeroed", "single", |d| {
        edit(&db_of(d), |b| {
            let ps = page_size(b);
            b[ps..2 * ps].fill(0)
        })
    }),
    ("db-removed", "snapcount", |d| {
        std::fs::remove_file(db_of(d)).unwrap()
    }),
    ("db-key-leaf-wrong-type", "single", |d| {
        edit(&db_of(d), |b| {
            let ps = page_size(b);
            let leaf = key_leaves(b)[1] as usize;
            // Page flags (offset 8): freelist instead of leaf.
            b[leaf * ps + 8..leaf * ps + 10].copy_from_slice(&0x10u16.to_le_bytes());
        })
    }),
    ("db-bad-keyvalue", "single", |d| {
        edit(&db_of(d), |b| {
            let (db, _) = Db::open(b).unwrap();
            let kb = db.bucket(b"key").unwrap().unwrap();
            let e = kb.iter().nth(5).unwrap().unwrap();
            let at = e.value.as_ptr() as usize - b.as_ptr() as usize;
            // Field 1 with wire type 7: no protobuf at all.
            b[at] = 0x0f;
        })
    }),
    ("wal-dir-emptied", "single", |d| {
        for f in walk_files(&d.join("member/wal")) {
            std::fs::remove_file(f).unwrap();
        }
    }),
    ("snap-v2-store-too-deep", "snapcount", |d| {
        rewrite_v2_store(&newest_snap(d), |j| nest(j, 10_001))
    }),
    ("snap-v2-store-deep", "snapcount", |d| {
        rewrite_v2_store(&newest_snap(d), |j| nest(j, 9_000))
    }),
];

#[test]
fn damaged_member_dirs_are_judged_alike_and_as_etcd_does() {
    for vdir in version_dirs() {
        let bin = require(Need::EtcdFor(&vdir));
        let mut failures = Vec::new();
        for (name, scenario, damage) in DAMAGE {
            let orig = extracted_dir(&vdir, scenario).join(scenario);
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().join(scenario);
            copy_tree(&orig, &d);
            damage(&d);
            let what = format!("{name} ({scenario}, {})", vdir.display());
            let a = match agree(&d) {
                Ok(a) => a,
                Err(e) => {
                    failures.push(format!("{what}: {e}"));
                    continue;
                }
            };
            if let Some(bin) = &bin {
                match agrees_with_etcd(bin, &d, &orig, &a) {
                    Ok(does) => eprintln!("{what}: {} / etcd {does:?}", a.class),
                    Err(e) => failures.push(format!("{what}: {e}")),
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

// ---------------------------------------------------------------------------
// real etcd making the dirs

/// An etcd member started on a new data dir for a test, killed when dropped.
struct Live {
    child: Child,
    bin: PathBuf,
    client: u16,
    log: PathBuf,
}

impl Live {
    fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Live {
        let (child, client, log) = common::agree::spawn(bin, dir, extra);
        let l = Live {
            child,
            bin: bin.to_path_buf(),
            client,
            log,
        };
        let t = Instant::now();
        while !l.ctl(&["--command-timeout=2s", "endpoint", "health"]).0 {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "etcd did not start: {}",
                std::fs::read_to_string(&l.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        l
    }

    fn ctl(&self, args: &[&str]) -> (bool, String) {
        let o = Command::new(self.bin.join("etcdctl"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &format!("127.0.0.1:{}", self.client)])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }

    /// A write through the v2 HTTP API (`--enable-v2`).
    fn v2_put(&self, key: &str, value: &str) {
        let body = format!("value={value}");
        let mut s = TcpStream::connect(("127.0.0.1", self.client)).unwrap();
        write!(
            s,
            "PUT /v2/keys{key} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(
            resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.1 201"),
            "v2 PUT {key}: {resp}"
        );
    }

    /// Stops it as an operator does (SIGTERM), waiting for it to exit.
    fn stop(mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// etcd 2.x member dirs, as etcd 3 itself leaves them with only v2 data: a
/// WAL from index 1 and no db; `.snap` files holding the v2 keys and no db;
/// `.snap` files and no WAL.
#[test]
fn etcd_2_member_dirs_are_named_and_judged_as_etcd_does() {
    for vdir in version_dirs() {
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let make = |name: &str, snapshot_count: &str| -> PathBuf {
            let d = tmp.path().join(name);
            let e = Live::start(&bin, &d, &["--enable-v2", "--snapshot-count", snapshot_count]);
            for i in 0..40 {
                e.v2_put(&format!("/app/k{i:02}"), &format!("v{i}"));
            }
            e.stop();
            d
        };
        // v3 keys: none; the v2 keys are what the original serves through v2.
        let wal_only = make("v2-wal", "100000");
        let with_snap = make("v2-snap", "10");
        assert!(
            walk_files(&with_snap.join("member/snap"))
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "snap"))
        );
        let mut cases = Vec::new();
        for (name, base, damage) in [
            (
                "wal, no db",
                &wal_only,
                (|d: &Path| std::fs::remove_file(db_of(d)).unwrap()) as Damage,
            ),
            ("snap and wal, no db", &with_snap, |d| {
                std::fs::remove_file(db_of(d)).unwrap()
            }),
            ("snap, no db, no wal", &with_snap, |d| {
                std::fs::remove_file(db_of(d)).unwrap();
                std::fs::remove_dir_all(d.join("member/wal")).unwrap();
            }),
        ] {
            let d = tmp.path().join(format!("case-{}", cases.len()));
            copy_tree(base, &d);
            damage(&d);
            cases.push((name, base.clone(), d));
        }
        for (name, base, d) in &cases {
            let a = agreed(d);
            assert_eq!(a.kind, "v2-data-dir", "{name}: {a:?}");
            agrees_with_etcd(&bin, d, base, &a)
                .unwrap_or_else(|e| panic!("{name} ({}): {e}", vdir.display()));
            let r = run(&["inspect", d.to_str().unwrap()]);
            assert!(r.out.contains("etcd 2.x member"), "{name}: {}", r.out);
        }
        // Where etcd starts, what it serves through v2 is the data the
        // judgment points at; `etcd-rescue get` (v3) has none of it.
        let g = run(&[
            "get",
            cases[0].2.to_str().unwrap(),
            "",
            "--prefix",
            "--count-only",
        ]);
        assert!(g.out.starts_with("0 key(s)"), "{}", g.out);
    }
}

/// The index in a `.snap` or `.wal` file's name (`<a>-<index>.<ext>`).
fn name_index(p: &Path) -> u64 {
    let stem = p.file_stem().unwrap().to_str().unwrap();
    u64::from_str_radix(stem.split('-').nth(1).unwrap(), 16).unwrap()
}

/// A member dir whose only loadable `.snap` is broken and whose older WAL
/// segments etcd has purged: etcd cannot fall back, so it refuses.
fn purged_snapcount(bin: &Path, vdir: &Path, into: &Path) {
    copy_tree(&extracted_dir(vdir, "snapcount").join("snapcount"), into);
    let e = Live::start(bin, into, &["--snapshot-count", "5"]);
    for i in 0..12 {
        assert!(e.ctl(&["put", &format!("/purge/k{i}"), "v"]).0);
    }
    e.stop();
    let _ = std::fs::remove_file(into.with_extension("log"));
    // What etcd's purge (--max-wals 1, --max-snapshots 1) removes: the
    // segments before the one the newest snapshot needs, and older .snaps.
    let newest = newest_snap(into);
    let index = name_index(&newest);
    let segs = wal_segments(&into.join("member"));
    let keep = segs.iter().rposition(|s| name_index(s) <= index).unwrap();
    assert!(keep > 0, "the newest snapshot must need only later segments");
    for s in &segs[..keep] {
        std::fs::remove_file(s).unwrap();
    }
    for f in walk_files(&into.join("member/snap")) {
        if f.extension().is_some_and(|e| e == "snap") && f != newest {
            std::fs::remove_file(f).unwrap();
        }
    }
}

/// `verify` on a directory of member dirs etcd cannot (safely) start on
/// reports each one damaged, plain and in tar.gz form, with exit 1.
#[test]
fn verify_reports_damaged_member_dirs() {
    for vdir in version_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let single = extracted_dir(&vdir, "single").join("single");
        let snapcount = extracted_dir(&vdir, "snapcount").join("snapcount");
        // A CRC break in the middle of the WAL.
        let crc = store.join("wal-crc-break");
        copy_tree(&single, &crc);
        let seg = wal_segments(&crc.join("member"))[0].clone();
        let recs = common::walwrite::record_map(&crc.join("member/wal"));
        let mid = recs.iter().find(|r| r.index == Some(100)).unwrap().clone();
        edit(&seg, |b| b[mid.offset + mid.frame_len / 2] ^= 0x40);
        // The first of two segments, which etcd needs, removed.
        let missing = store.join("wal-segment-missing");
        copy_tree(&snapcount, &missing);
        std::fs::remove_file(&wal_segments(&missing.join("member"))[0]).unwrap();
        // An empty WAL dir.
        let empty = store.join("wal-dir-empty");
        copy_tree(&single, &empty);
        for f in walk_files(&empty.join("member/wal")) {
            std::fs::remove_file(f).unwrap();
        }
        // Ours, without etcd: each is damaged.
        for n in ["wal-crc-break", "wal-dir-empty", "wal-segment-missing"] {
            let a = agreed(&store.join(n));
            assert_eq!(a.class, "damaged", "{n}: {a:?}");
        }
        // etcd makes the one .snap it can load; flip a byte of it.
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let snap = store.join("snap-crc-bad");
        purged_snapcount(&bin, &vdir, &snap);
        let before = agreed(&snap);
        assert_eq!(
            before.etcd.as_deref(),
            Some("starts"),
            "the purged dir itself starts"
        );
        let s = newest_snap(&snap);
        edit(&s, |b| {
            let n = b.len();
            b[n / 2] ^= 0xff
        });
        let names = [
            "snap-crc-bad",
            "wal-crc-break",
            "wal-dir-empty",
            "wal-segment-missing",
        ];
        for n in names {
            let d = store.join(n);
            let a = agreed(&d);
            assert_eq!(a.class, "damaged", "{n}: {a:?}");
            let does = common::agree::etcd_alone(&bin, &d);
            assert_eq!(a.etcd.as_deref(), Some(does.outcome()), "{n}: real etcd {does:?}");
        }
        // The same dirs, packed as people pack them.
        for n in names {
            let st = Command::new("tar")
                .args(["--sparse", "-czf"])
                .arg(store.join(format!("{n}.tar.gz")))
                .arg("-C")
                .arg(&store)
                .arg(n)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let r = run(&["verify", "--no-catalog", "-o", "json", store.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{}{}", r.out, r.err);
        let j = r.json();
        let results = j["results"].as_array().unwrap();
        assert_eq!(results.len(), 8, "{:#}", j["results"]);
        for r in results {
            assert_eq!(r["verdict"], "damaged", "{r:#}");
            assert!(r["kind"] == "data-dir", "{r:#}");
        }
    }
}

/// What a restore with `--bump-revision --mark-compacted` writes reads back
/// as etcd serves it: no phantom key, the bumped compact revision, a clean
/// check, and real etcd starting on it.
#[test]
fn bumped_restore_reads_back_as_etcd_serves_it() {
    for vdir in version_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("bumped");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let r = run(&[
            "restore",
            vdir.join("single.snapshot.db").to_str().unwrap(),
            "--data-dir",
            out.to_str().unwrap(),
            "--name",
            "b",
            "--initial-cluster",
            &format!("b={url}"),
            "--initial-advertise-peer-urls",
            &url,
            "--bump-revision",
            "1000",
            "--mark-compacted",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let a = agreed(&out);
        assert_eq!(a.class, "ok", "{a:?}");
        let g = run(&["get", "-o", "json", out.to_str().unwrap(), "", "--prefix"]);
        assert_eq!(g.code, 0, "{}", g.err);
        let (rev, kvs) = etcdctl_get_json(&g.json());
        let status = run(&["status", "-o", "json", db_of(&out).to_str().unwrap()]).json();
        assert_eq!(status["compactRevision"], rev, "{status:#}");
        let h = run(&["hashkv", "-o", "json", out.to_str().unwrap()]).json();
        assert_eq!(h[0]["HashKV"]["compact_revision"], rev);
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let (served, writes) = serve(&bin, &out).unwrap();
        assert!(writes);
        assert_eq!(kvs, served.kvs, "get serves what etcd serves");
        assert_eq!(rev, served.revision);
    }
}

/// A dir etcd is running on (and writing to) is named live, and what may be
/// a write in progress is never called damage.
#[test]
fn a_live_dir_is_named_and_not_called_damaged() {
    for vdir in version_dirs() {
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("live");
        copy_tree(&extracted_dir(&vdir, "single").join("single"), &d);
        let e = Live::start(&bin, &d, &[]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            let bin = bin.clone();
            let ep = format!("127.0.0.1:{}", e.client);
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = Command::new(bin.join("etcdctl"))
                        .env("ETCDCTL_API", "3")
                        .args([
                            "--endpoints",
                            &ep,
                            "put",
                            &format!("/live/k{}", i % 50),
                            &"x".repeat(3000),
                        ])
                        .output();
                    i += 1;
                }
            })
        };
        for _ in 0..3 {
            let r = run(&["check", "-o", "json", d.to_str().unwrap()]);
            let f = &r.json()["files"][0];
            assert_eq!(f["live"], true, "{f:#}");
            assert!(f["verdict"] == "ok" || f["verdict"] == "warnings", "{f:#}");
            assert!(
                f["headline"]
                    .as_str()
                    .unwrap()
                    .contains("etcd is running on this dir"),
                "{f:#}"
            );
            let i = run(&["inspect", d.to_str().unwrap()]);
            assert!(i.out.contains("LIVE"), "{}", i.out);
            assert!(!i.out.contains("killed or crashed"), "{}", i.out);
            let g = run(&["get", d.to_str().unwrap(), "/live/", "--prefix", "--count-only"]);
            assert_eq!(g.code, 0, "{}", g.err);
            assert!(g.err.contains("etcd is running on"), "{}", g.err);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        drop(e);
    }
}

/// On a member SIGKILLed mid-write, the read commands answer what etcd
/// serves after starting on it (the db plus the committed WAL entries), and
/// `--db-only` the db alone.
#[test]
fn reads_of_a_killed_member_equal_what_etcd_serves() {
    for vdir in version_dirs() {
        let dir = extracted_dir(&vdir, "killed").join("killed");
        let d = dir.to_str().unwrap();
        let (want_rev, want) = etcdctl_get(&vdir.join("killed.expect/get.json"));
        let g = run(&["get", "-o", "json", d, "", "--prefix"]);
        assert_eq!(g.code, 0, "{}", g.err);
        let (rev, kvs) = etcdctl_get_json(&g.json());
        assert_eq!((rev, &kvs), (want_rev, &want), "{}", vdir.display());
        // The same dir as it is packed: read in place from the tarball.
        let packed = vdir.join("killed.datadir.tar.gz");
        let g = run(&["get", "-o", "json", packed.to_str().unwrap(), "", "--prefix"]);
        assert_eq!(g.code, 0, "{}", g.err);
        assert_eq!(etcdctl_get_json(&g.json()), (want_rev, want.clone()));
        let db_only = run(&["get", "-o", "json", d, "", "--prefix", "--db-only"]);
        assert!(etcdctl_get_json(&db_only.json()).0 < want_rev);
        let h = run(&["history", "-o", "json", d, "/killed/k03"]).json();
        let revs = h["revisions"].as_array().unwrap();
        assert!(revs.last().unwrap()["deleted"] == true, "{h:#}");
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let (served, _) = serve(&bin, &dir).unwrap();
        assert_eq!((served.revision, &served.kvs), (want_rev, &want));
        // HashKV: what etcd computes after replaying the same entries.
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("k");
        copy_tree(&dir, &copy);
        let e = Live::start(&bin, &copy, &[]);
        let (ok, out) = e.ctl(&["endpoint", "hashkv", "-w", "json"]);
        assert!(ok);
        let theirs: Value = serde_json::from_str(&out).unwrap();
        let ours = run(&["hashkv", "-o", "json", d]).json();
        assert_eq!(ours[0]["HashKV"]["hash"], theirs[0]["HashKV"]["hash"], "{out}");
    }
}

/// The read commands on a damaged source answer what can be read, say on
/// stderr that it is damaged, and exit 1.
#[test]
fn reads_of_a_damaged_source_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("damaged.snapshot.db");
    let mut b = std::fs::read(repo().join("testdata/fixtures/v3.5.1/single.snapshot.db")).unwrap();
    let ps = page_size(&b);
    let image_len = b.len() - 32;
    let leaf = key_leaves(&b[..image_len])[1] as usize;
    b[leaf * ps + 8..leaf * ps + 10].copy_from_slice(&0x10u16.to_le_bytes());
    std::fs::write(&snap, &b).unwrap();
    let s = snap.to_str().unwrap();
    for args in [
        vec!["status", s],
        vec!["get", s, "", "--prefix", "--count-only"],
        vec!["history", s, "/demo/counter"],
        vec!["stats", s],
        vec![
            "diff",
            s,
            repo()
                .join("testdata/fixtures/v3.5.1/single.snapshot.db")
                .to_str()
                .unwrap(),
        ],
    ] {
        let r = unchanged(&[&snap], || run(&args));
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.out, r.err);
        assert!(
            r.err.contains("damaged") || r.err.contains("problem"),
            "{args:?}: {}",
            r.err
        );
    }
    let r = run(&["hashkv", s]);
    assert_ne!(r.code, 0, "{}{}", r.out, r.err);
    // A Kubernetes snapshot cut short: `k8s get` says so.
    let k = tmp.path().join("k8s.db");
    let kb = std::fs::read(repo().join("testdata/k8s/objects.snapshot.db")).unwrap();
    std::fs::write(&k, &kb[..kb.len() / 2]).unwrap();
    let r = run(&["k8s", "get", k.to_str().unwrap(), "cm", "-A"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(r.err.contains("damaged"), "{}", r.err);
}
