//! The bbolt writer, judged by readers we did not write: real etcdutl (its
//! snapshot status runs bbolt's own check and hashes every bucket), bbolt-rs,
//! and real etcd serving a data dir restored from the written file.

mod common;

use std::path::{Path, PathBuf};

use bbolt_rs::{BucketApi, DbApi, TxApi};
use common::etcd::{Etcd, Member, free_port};
use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::writer::Writer;
use etcd_rescue::mvcc::trailer;

/// Copies every bucket of `src` into a new file with our writer.
fn rewrite(src: &Path, dst: &Path, page_size: u32, fill: f64) {
    let bytes = std::fs::read(src).unwrap();
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let names: Vec<Vec<u8>> = db.root().iter().map(|e| e.unwrap().key.to_vec()).collect();
    let file = std::fs::File::create(dst).unwrap();
    let mut w = Writer::new(std::io::BufWriter::new(file), page_size, fill, 7).unwrap();
    for name in &names {
        let b = db.bucket(name).unwrap().unwrap();
        let items = b.iter().map(|e| {
            let e = e.unwrap();
            assert!(!e.is_bucket(), "etcd has no nested buckets");
            (e.key, e.value)
        });
        w.bucket(name, b.sequence(), items).unwrap();
    }
    let (summary, out) = w.finish().unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    assert_eq!(summary.buckets as usize, names.len());
}

fn sources() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for vdir in version_dirs() {
        v.push(vdir.join("single.snapshot.db"));
        v.push(vdir.join("cluster.snapshot.db"));
    }
    v.extend(shared_k8s_snapshots().unwrap_or_default());
    v
}

#[test]
fn rewritten_files_pass_our_check_and_keep_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, src) in sources().iter().enumerate() {
        for (ps, fill) in [(4096, 0.9), (4096, 0.5), (16384, 1.0)] {
            let dst = tmp.path().join(format!("out-{i}-{ps}.db"));
            rewrite(src, &dst, ps, fill);
            let c = run(&["check", "-o", "json", dst.to_str().unwrap()]);
            let f = &c.json()["files"][0];
            // A written file has no sha256 trailer: that is the only (info) finding.
            let codes: Vec<&str> = f["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["code"].as_str().unwrap())
                .collect();
            assert_eq!(codes, vec!["no-sha256-trailer"], "{}: {}", src.display(), c.out);
            let a = run(&["get", "-o", "json", src.to_str().unwrap(), "", "--prefix"]).json();
            let b = run(&["get", "-o", "json", dst.to_str().unwrap(), "", "--prefix"]).json();
            assert_eq!(a, b, "{}", src.display());
            let ha = run(&["hashkv", "-o", "json", src.to_str().unwrap()]).json();
            let hb = run(&["hashkv", "-o", "json", dst.to_str().unwrap()]).json();
            // The same hash; each row names its own file.
            assert_eq!(ha[0]["HashKV"], hb[0]["HashKV"]);
        }
    }
}

#[test]
fn etcdutl_status_of_rewritten_files_equals_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, src) in sources().iter().enumerate() {
        let dst = tmp.path().join(format!("out-{i}.db"));
        rewrite(src, &dst, 4096, 0.9);
        // Our own status of the rewritten file: the source's hash, revision, keys.
        let ours = run(&["status", "-o", "json", dst.to_str().unwrap()]).json();
        let ours_src = run(&["status", "-o", "json", src.to_str().unwrap()]).json();
        for f in ["hash", "revision", "totalKey"] {
            assert_eq!(ours[f], ours_src[f], "{}: {f}", src.display());
        }
        let Some(bin) = require(Need::Etcd35) else {
            continue;
        };
        let want = etcdutl_status(&bin, src);
        let got = etcdutl_status(&bin, &dst);
        // etcdutl runs bbolt's tx.Check and hashes every bucket with its own reader.
        for f in ["hash", "revision", "totalKey"] {
            assert_eq!(got[f], want[f], "{}: {f}", src.display());
        }
        assert_eq!(ours["totalSize"], got["totalSize"]);
    }
}

#[test]
fn bbolt_rs_reads_rewritten_files() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, src) in sources().iter().enumerate() {
        let dst = tmp.path().join(format!("out-{i}.db"));
        rewrite(src, &dst, 4096, 0.9);
        let bytes = std::fs::read(src).unwrap();
        let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
        let theirs = bbolt_rs::Bolt::open_ro(&dst).unwrap();
        theirs
            .view(|tx| {
                for e in db.root().iter() {
                    let name = e.unwrap().key;
                    let ours: Vec<(Vec<u8>, Vec<u8>)> = db
                        .bucket(name)
                        .unwrap()
                        .unwrap()
                        .iter()
                        .map(|e| {
                            let e = e.unwrap();
                            (e.key.to_vec(), e.value.to_vec())
                        })
                        .collect();
                    let b = tx
                        .bucket(name)
                        .unwrap_or_else(|| panic!("bbolt-rs lacks bucket {name:?}"));
                    let got: Vec<(Vec<u8>, Vec<u8>)> =
                        b.iter_entries().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    assert_eq!(
                        got.len(),
                        ours.len(),
                        "{}: bucket {:?}",
                        src.display(),
                        String::from_utf8_lossy(name)
                    );
                    assert!(
                        got == ours,
                        "{}: bucket {:?} differs",
                        src.display(),
                        String::from_utf8_lossy(name)
                    );
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn real_etcd_serves_a_data_dir_restored_from_a_rewritten_file() {
    let Some(bin) = require(Need::Etcd35) else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (i, src) in sources().iter().enumerate() {
        let dst = tmp.path().join(format!("out-{i}.db"));
        rewrite(src, &dst, 4096, 0.9);
        let data = tmp.path().join(format!("data-{i}"));
        let port = free_port();
        // No sha256 trailer on our file: etcdutl needs --skip-hash-check.
        let o = std::process::Command::new(bin.join("etcdutl"))
            .args(["snapshot", "restore"])
            .arg(&dst)
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--name",
                "w",
                "--initial-cluster",
                &format!("w=http://127.0.0.1:{port}"),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{port}"),
                "--skip-hash-check",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let etcd = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "w",
            peer_port: port,
            initial_cluster: None,
            extra: vec![],
        });
        let live: serde_json::Value =
            serde_json::from_str(&etcd.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap();
        // etcd writes to the db it serves: prove it can.
        etcd.ctl(&["put", "/written/after/restore", "ok"]);
        etcd.stop();
        let ours = run(&["get", "-o", "json", src.to_str().unwrap(), "", "--prefix"]).json();
        assert_eq!(live["kvs"], ours["kvs"], "{}", src.display());
    }
}
