//! `inspect` and `check DIR` on data dirs made by real etcd 3.4.23 and 3.5.1,
//! and on a member SIGKILLed while it was being written to. Where etcd is
//! installed, the verdicts are checked against what etcd does.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::etcd::{Etcd, Member, free_port};
use common::*;
use etcd_rescue::wal::payload::{self, Request};
use etcd_rescue::wal::{self, WalDir};
use serde_json::Value;

fn inspect_json(dirs: &[&Path]) -> (i32, Value) {
    let mut args = vec!["inspect", "-o", "json"];
    let strs: Vec<String> = dirs.iter().map(|d| d.to_string_lossy().into_owned()).collect();
    args.extend(strs.iter().map(String::as_str));
    let r = unchanged(dirs, || run(&args));
    (r.code, r.json())
}

#[test]
fn every_single_member_fixture_starts() {
    for vdir in version_dirs() {
        for name in ["single", "killed", "snapcount"] {
            let dir = extracted_dir(&vdir, name).join(name);
            let (code, j) = inspect_json(&[&dir]);
            let m = &j["members"][0];
            let ctx = format!("{} {name}: {:#}", vdir.display(), m["verdict"]);
            assert_eq!(j["schemaVersion"], 2);
            assert_eq!(code, 0, "{ctx}");
            assert_eq!(m["verdict"]["outcome"], "starts", "{ctx}");
            for c in m["checks"].as_array().unwrap() {
                assert!(c["status"] == "ok" || c["status"] == "info", "{ctx}: {c}");
            }
            let ev: Vec<&str> = m["verdict"]["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            assert!(
                ev.iter()
                    .any(|e| e.contains("is the ID etcd derives from the db's 1 member")),
                "{ctx}"
            );
            let ci = m["db"]["consistentIndex"].as_u64().unwrap();
            let commit = m["wal"]["hardState"]["commit"].as_u64().unwrap();
            let h = m["verdict"]["headline"].as_str().unwrap();
            if name == "killed" {
                assert!(ci < commit, "{ctx}");
                let s = format!(
                    "the db is {} committed entries behind the WAL: etcd will replay them (entries {}..{commit})",
                    commit - ci,
                    ci + 1
                );
                assert!(
                    m["verdict"]["statements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == &Value::from(s.clone())),
                    "{ctx}: {s}"
                );
                assert!(
                    ev.iter().any(|e| e.contains("0.tmp: etcd was killed or crashed")),
                    "{ctx}"
                );
            } else if ci == commit {
                assert_eq!(h, "etcd will start on this as it is", "{ctx}");
            } else {
                // 3.4 writes the consistent index only with a write to the db,
                // so a last entry that changes nothing leaves the db one behind.
                assert_eq!(ci + 1, commit, "{ctx}");
                assert_eq!(h, "etcd will start on this", "{ctx}");
            }
            if name == "snapcount" {
                let snaps = etcd_rescue::snap::scan(&dir.join("member/snap"));
                let s = snaps.snaps[0].snapshot.as_ref().unwrap();
                let want = format!(
                    "newest usable snapshot: member/snap/{} (index {}, term {})",
                    snaps.snaps[0].file, s.index, s.term
                );
                assert!(ev.iter().any(|e| e.contains(&want)), "{ctx}");
            }
            // The table says the same in words.
            let t = run(&["inspect", dir.to_str().unwrap()]);
            assert!(t.out.contains(&format!("VERDICT (STARTS): {h}.")), "{}", t.out);
            for row in [
                "CONSISTENT INDEX",
                "WAL SEGMENTS",
                "MEMBER ID",
                "CLUSTER ID",
                "HARDSTATE",
                "WAL TAIL",
                "SNAP FILES",
            ] {
                assert!(t.out.contains(row), "{row}: {}", t.out);
            }
        }
    }
}

#[test]
fn killed_member_replays_to_the_acknowledged_state_in_real_etcd() {
    for vdir in version_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("killed");
        copy_tree(&extracted_dir(&vdir, "killed").join("killed"), &dir);
        let (_, j) = inspect_json(&[&dir]);
        assert_eq!(j["members"][0]["verdict"]["outcome"], "starts");
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let e = Etcd::start(Member {
            bin: &bin,
            data_dir: &dir,
            name: "killed",
            peer_port: free_port(),
            initial_cluster: None,
            extra: vec![],
        });
        let got: Value = serde_json::from_str(&e.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap();
        e.stop();
        let want = read_json(&vdir.join("killed.expect/get.json"));
        assert_eq!(got["kvs"], want["kvs"], "{}", vdir.display());
        assert_eq!(got["header"]["revision"], want["header"]["revision"]);
    }
}

#[test]
fn cluster_side_by_side() {
    for vdir in version_dirs() {
        let root = extracted_dir(&vdir, "cluster");
        let dirs: Vec<PathBuf> = ["m1", "m2", "m3"].iter().map(|m| root.join(m)).collect();
        let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let (code, j) = inspect_json(&refs);
        assert_eq!(code, 0);
        let ms = j["members"].as_array().unwrap();
        assert_eq!(ms.len(), 3);
        let clusters: Vec<&Value> = ms.iter().map(|m| &m["wal"]["metadata"]["clusterId"]).collect();
        assert!(clusters.windows(2).all(|w| w[0] == w[1]));
        // The most recent committed data: the highest committed index.
        let best = ms
            .iter()
            .map(|m| m["verdict"]["recoverable"]["index"].as_u64().unwrap())
            .max()
            .unwrap();
        let holders: Vec<String> = ms
            .iter()
            .filter(|m| m["verdict"]["recoverable"]["index"].as_u64() == Some(best))
            .map(|m| m["path"].as_str().unwrap().to_string())
            .collect();
        let mr = &j["comparison"]["mostRecent"];
        assert_eq!(mr["index"].as_u64(), Some(best));
        assert_eq!(mr["paths"].as_array().unwrap().len(), holders.len());
        assert!(j["comparison"]["findings"].as_array().unwrap().is_empty());
        let t = run(&[
            "inspect",
            refs[0].to_str().unwrap(),
            refs[1].to_str().unwrap(),
            refs[2].to_str().unwrap(),
        ]);
        assert_eq!(t.code, 0);
        for row in [
            "VERDICT",
            "MEMBER ID",
            "CLUSTER ID",
            "DB REVISION",
            "WAL COMMIT",
            "COMMITTED DATA",
        ] {
            assert!(t.out.contains(row), "{}", t.out);
        }
        assert!(
            t.out
                .contains(&format!("the most recent committed data: index {best}")),
            "{}",
            t.out
        );
        // A member of another cluster is called out.
        let other = extracted_dir(&vdir, "single").join("single");
        let (code, j) = inspect_json(&[refs[0], &other]);
        assert_eq!(code, 1);
        assert_eq!(j["comparison"]["findings"][0]["code"], "cluster-id-mismatch");
    }
}

#[test]
fn check_accepts_data_dirs_and_files() {
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let dir = extracted_dir(&vdir, "snapcount").join("snapcount");
    let db = dir.join("member/snap/db");
    let snapshot = vdir.join("single.snapshot.db");
    let d = dir.to_str().unwrap();
    let r = unchanged(&[&dir], || run(&["check", d, snapshot.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(
        r.out.contains(&format!(
            "{d}: OK (data-dir: db revision {}, WAL up to index {})",
            oracle::db_revision(&vdir, "snapcount"),
            oracle::raft_index(&vdir, "snapcount")
        )),
        "{}",
        r.out
    );
    assert!(r.out.contains("etcd will start on this as it is."), "{}", r.out);
    assert!(r.out.contains("2 files: 2 ok"), "{}", r.out);
    let j = run(&["check", "-o", "json", d, db.to_str().unwrap()]).json();
    assert_eq!(j["files"][0]["kind"], "data-dir");
    assert_eq!(j["files"][0]["etcd"], "starts");
    // A db file is judged as a file: no etcd outcome of its own.
    assert!(j["files"][1].get("etcd").is_none());
    assert_eq!(j["files"][1]["kind"], "db");
    assert_eq!(j["files"][1]["verdict"], "ok");
    // The member dir works as well as the data dir.
    let r = run(&["check", dir.join("member").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.out);
}

#[test]
fn inspect_usage_errors() {
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let dir = extracted_dir(&vdir, "single").join("single");
    let r = run(&["inspect", "/nonexistent/dir"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.to_lowercase().contains("no such file or directory"),
        "{}",
        r.err
    );
    // Any etcd file is judged: inspect is the detailed view of the judgment.
    let r = run(&["inspect", vdir.join("single.snapshot.db").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let rev = oracle::snapshot_revision(&vdir, "single");
    assert!(
        r.out.contains(&format!("OK (snapshot: revision {rev}")),
        "{}",
        r.out
    );
    let r = run(&["inspect", dir.join("member/wal").to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("OK (WAL dir"), "{}", r.out);
    let r = run(&[
        "inspect",
        "--wal-dir",
        "x",
        dir.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    let empty = tempfile::tempdir().unwrap();
    let r = run(&["inspect", empty.path().to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("not an etcd data dir"), "{}", r.err);
    // --wal-dir for a WAL kept apart.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_tree(&dir, &data);
    let wal = tmp.path().join("wal-ssd");
    std::fs::rename(data.join("member/wal"), &wal).unwrap();
    let r = run(&["inspect", data.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    let r = run(&[
        "inspect",
        "-o",
        "json",
        "--wal-dir",
        wal.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.out);
    assert_eq!(r.json()["members"][0]["verdict"]["outcome"], "starts");
}

/// etcd under a stream of writes, SIGKILLed mid-stream: every write etcdctl
/// saw acknowledged is in the WAL, inspect says etcd starts, and real etcd
/// started on the copy serves every acknowledged write.
#[test]
fn member_killed_mid_write() {
    for vdir in version_dirs().into_iter().take(2) {
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("load");
        let e = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "load",
            peer_port: free_port(),
            initial_cluster: None,
            extra: vec![],
        });
        let url = e.client_url.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (stop, url, bin) = (stop.clone(), url.clone(), bin.clone());
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let value = "v".repeat(4000);
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("/load/w{w}/k{i:05}");
                        let ok = std::process::Command::new(bin.join("etcdctl"))
                            .env("ETCDCTL_API", "3")
                            .args([
                                "--endpoints",
                                &url,
                                "--command-timeout",
                                "2s",
                                "put",
                                &key,
                                &value,
                            ])
                            .output()
                            .is_ok_and(|o| o.status.success());
                        if ok {
                            acked.push(key);
                        } else {
                            break;
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(2500));
        e.stop(); // SIGKILL, while the writers are writing
        stop.store(true, Ordering::Relaxed);
        let acked: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        assert!(acked.len() > 10, "too few writes acknowledged: {}", acked.len());

        let (_, j) = inspect_json(&[&data]);
        let m = &j["members"][0];
        assert_eq!(m["verdict"]["outcome"], "starts", "{:#}", m["verdict"]);
        let d = WalDir::open(&data.join("member/wal")).unwrap();
        let mut keys = Vec::new();
        let r = wal::scan(&d, wal::ScanOptions::default(), |e| {
            if let Request::Put { key, .. } = payload::decode(&e.entry).request {
                keys.push(String::from_utf8_lossy(&key.0).into_owned());
            }
        });
        assert!(r.readable_by_etcd());
        for k in &acked {
            assert!(keys.contains(k), "acknowledged {k} is not in the WAL");
        }
        // Real etcd agrees: every acknowledged write is there after a restart.
        let e = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "load",
            peer_port: free_port(),
            initial_cluster: None,
            extra: vec![],
        });
        let got = e.ctl(&["get", "/load/", "--prefix", "--keys-only"]);
        e.stop();
        for k in &acked {
            assert!(got.contains(k.as_str()), "{k} lost after restart");
        }
    }
}
