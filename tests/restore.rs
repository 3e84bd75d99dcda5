//! Restores judged by real etcd 3.4.23 and 3.5.1: every output dir is started
//! and must serve exactly the source's keys; IDs must equal what etcdutl
//! 3.5.1 computes for the same flags.

mod common;

use std::path::{Path, PathBuf};

use common::etcd::{Etcd, Member, free_port};
use common::*;
use serde_json::Value;

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn ctl_get(e: &Etcd, extra: &[&str]) -> (i64, Vec<Kv>) {
    let mut args = vec!["get", "", "--prefix", "-w", "json"];
    args.extend_from_slice(extra);
    etcdctl_get_json(&serde_json::from_str(&e.ctl(&args)).unwrap())
}

fn member_ids(e: &Etcd) -> Vec<(String, u64, Vec<String>)> {
    let j: Value = serde_json::from_str(&e.ctl(&["member", "list", "-w", "json"])).unwrap();
    let mut v: Vec<(String, u64, Vec<String>)> = j["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["ID"].as_u64().unwrap(),
                m["peerURLs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The WAL metadata (member and cluster ID) of a data dir, from our reader.
fn wal_ids(dir: &Path) -> (String, String) {
    let r = run(&["inspect", "-o", "json", dir.to_str().unwrap()]);
    let j = r.json();
    let m = &j["members"][0];
    let wal = &m["wal"];
    (
        wal["metadata"]["nodeId"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| wal["metadata"]["nodeId"].to_string()),
        wal["metadata"]["clusterId"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| wal["metadata"]["clusterId"].to_string()),
    )
}

#[test]
fn snapshot_to_one_member_served_by_real_etcd_with_etcdutl_ids() {
    // Every snapshot fixture: a single member's and a 3-member cluster's.
    for (vdir, fixture) in version_dirs()
        .into_iter()
        .flat_map(|v| [(v.clone(), "single"), (v, "cluster")])
    {
        let snap = vdir.join(format!("{fixture}.snapshot.db"));
        let (want_rev, want) = etcdctl_get(&vdir.join(format!("{fixture}.expect/get.json")));
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("r1");
        let port = free_port();
        let cluster = format!("r1={}", url(port));
        let r = unchanged(&[&snap], || {
            run(&[
                "restore",
                snap.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
                "--name",
                "r1",
                "--initial-cluster",
                &cluster,
                "--initial-cluster-token",
                "restore-test",
                "--initial-advertise-peer-urls",
                &url(port),
            ])
        });
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        // Ours: the restored dir reads back as real etcd served the fixture.
        let g = run(&["get", "-o", "json", data.to_str().unwrap(), "", "--prefix"]);
        assert_eq!(
            etcdctl_get_json(&g.json()),
            (want_rev, want.clone()),
            "{}",
            vdir.display()
        );
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let etcd = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "r1",
            peer_port: port,
            initial_cluster: Some(cluster.clone()),
            extra: vec![],
        });
        let (rev, got) = ctl_get(&etcd, &[]);
        assert_eq!(rev, want_rev, "{}", vdir.display());
        assert_eq!(got, want, "{}", vdir.display());
        let ids = member_ids(&etcd);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].2, vec![url(port)]);
        // The restored member takes writes.
        etcd.ctl(&["put", "/after/restore", "yes"]);
        assert_eq!(ctl_get(&etcd, &[]).0, want_rev + 1);
        etcd.stop();
        // The same IDs as etcdutl 3.5.1 for the same flags.
        if let Some(e35) = require(Need::Etcd35) {
            let theirs = tmp.path().join("etcdutl");
            let o = std::process::Command::new(e35.join("etcdutl"))
                .args(["snapshot", "restore"])
                .arg(&snap)
                .arg("--data-dir")
                .arg(&theirs)
                .args([
                    "--name",
                    "r1",
                    "--initial-cluster",
                    &cluster,
                    "--initial-cluster-token",
                    "restore-test",
                ])
                .args(["--initial-advertise-peer-urls", &url(port)])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(wal_ids(&theirs), wal_ids(&data));
            // (Our dir has been served since: etcd added the member's client URLs.)
            let members = |p: &Path| -> Vec<(u64, String, Value)> {
                let j = run(&["status", "-o", "json", p.join("member/snap/db").to_str().unwrap()]).json();
                j["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["ID"].as_u64().unwrap(),
                            m["name"].as_str().unwrap().to_string(),
                            m["peerURLs"].clone(),
                        )
                    })
                    .collect()
            };
            assert_eq!(members(&theirs), members(&data));
        }
    }
}

#[test]
fn all_members_of_a_three_member_cluster_start_together() {
    // Every snapshot fixture: a single member's and a 3-member cluster's.
    for (vdir, fixture) in version_dirs()
        .into_iter()
        .flat_map(|v| [(v.clone(), "single"), (v, "cluster")])
    {
        let snap = vdir.join(format!("{fixture}.snapshot.db"));
        let (want_rev, want) = etcdctl_get(&vdir.join(format!("{fixture}.expect/get.json")));
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("restored");
        let ports = [free_port(), free_port(), free_port()];
        let cluster = format!("a={},b={},c={}", url(ports[0]), url(ports[1]), url(ports[2]));
        let r = run(&[
            "restore",
            snap.to_str().unwrap(),
            "--all-members",
            out.to_str().unwrap(),
            "--initial-cluster",
            &cluster,
            "--initial-cluster-token",
            "three",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let mut want_initial: Vec<&str> = cluster.split(',').collect();
        want_initial.sort();
        for n in ["a", "b", "c"] {
            let flags = std::fs::read_to_string(out.join(format!("{n}.flags"))).unwrap();
            assert!(flags.contains(&format!("--name={n}\n")), "{flags}");
            let line = flags
                .lines()
                .find_map(|l| l.strip_prefix("--initial-cluster="))
                .unwrap();
            let mut got: Vec<&str> = line.split(',').collect();
            got.sort();
            assert_eq!(got, want_initial);
        }
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let mut members: Vec<Etcd> = ["a", "b", "c"]
            .iter()
            .zip(ports)
            .map(|(n, p)| {
                Etcd::spawn(Member {
                    bin: &bin,
                    data_dir: &out.join(n),
                    name: n,
                    peer_port: p,
                    initial_cluster: Some(cluster.clone()),
                    extra: vec![],
                })
            })
            .collect();
        for m in &mut members {
            m.wait_healthy();
        }
        for m in &members {
            let (rev, got) = ctl_get(m, &["--consistency", "s"]);
            assert_eq!(rev, want_rev);
            assert_eq!(got, want);
        }
        let ids = member_ids(&members[0]);
        assert_eq!(
            ids.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        // IDs as etcd computes them from the flags.
        let mut want_ids: Vec<u64> = ["a", "b", "c"]
            .iter()
            .zip(ports)
            .map(|(_, p)| etcd_rescue::restore::members::member_id(&[url(p)], "three"))
            .collect();
        want_ids.sort();
        let mut got_ids: Vec<u64> = ids.iter().map(|m| m.1).collect();
        got_ids.sort();
        assert_eq!(got_ids, want_ids);
        // The cluster takes writes and replicates them.
        members[0].ctl(&["put", "/three/members", "ok"]);
        let v = members[2].ctl(&["get", "/three/members", "--print-value-only"]);
        assert_eq!(v.trim(), "ok");
        for m in members {
            m.stop();
        }
    }
}

#[test]
fn bump_revision_mark_compacted_as_etcd_does() {
    for vdir in version_dirs() {
        let snap = vdir.join("single.snapshot.db");
        let (want_rev, want) = etcdctl_get(&vdir.join("single.expect/get.json"));
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("bumped");
        let port = free_port();
        let r = run(&[
            "restore",
            snap.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--name",
            "x",
            "--initial-cluster",
            &format!("x={}", url(port)),
            "--initial-advertise-peer-urls",
            &url(port),
            "--bump-revision",
            "1000",
            "--mark-compacted",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let etcd = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "x",
            peer_port: port,
            initial_cluster: None,
            extra: vec![],
        });
        let (rev, got) = ctl_get(&etcd, &[]);
        assert_eq!(rev, want_rev + 1000, "revisions move forward, never back");
        assert_eq!(got, want, "the data is unchanged");
        // History below the bump is compacted: old revisions are refused.
        let (ok, _, err) = etcd.ctl_raw(&["get", "/demo/counter", "--rev", &(want_rev).to_string()]);
        assert!(!ok && err.contains("compacted"), "{err}");
        etcd.stop();
    }
}

#[test]
fn member_dir_restore_keeps_the_writes_only_the_wal_had() {
    for vdir in version_dirs() {
        let killed = extracted_dir(&vdir, "killed");
        let src = killed.join("killed");
        let (want_rev, want) = etcdctl_get(&vdir.join("killed.expect/get.json"));
        // The db alone is behind (the fixture checks that); the restore replays the WAL.
        let db_rev = run(&[
            "status",
            "-o",
            "json",
            src.join("member/snap/db").to_str().unwrap(),
        ])
        .json()["revision"]
            .as_i64()
            .unwrap();
        assert!(db_rev < want_rev);
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("replayed");
        let port = free_port();
        let r = restore_dir(&src, &data, port);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let j = r.json();
        assert_eq!(j["replay"]["revisionBefore"], db_rev);
        assert_eq!(j["replay"]["revisionAfter"], want_rev);
        assert!(j["replay"]["notApplied"].as_object().unwrap().is_empty(), "{j:#}");
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let etcd = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "k",
            peer_port: port,
            initial_cluster: None,
            extra: vec![],
        });
        let (rev, got) = ctl_get(&etcd, &[]);
        assert_eq!(rev, want_rev, "{}", vdir.display());
        assert_eq!(got, want, "every acknowledged write is back ({})", vdir.display());
        etcd.stop();
    }
}

#[test]
fn force_new_cluster_then_a_second_member_joins() {
    for vdir in version_dirs() {
        let dirs = extracted_dir(&vdir, "cluster");
        let survivor = dirs.join("m1");
        let (want_rev, want) = etcdctl_get(&vdir.join("cluster.expect/get.json"));
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("alone");
        let p1 = free_port();
        let r = run(&[
            "force-new-cluster",
            "-o",
            "json",
            survivor.to_str().unwrap(),
            "--out",
            data.to_str().unwrap(),
            "--name",
            "m1",
            "--initial-advertise-peer-urls",
            &url(p1),
        ]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let j = r.json();
        let old = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
            .args(["wal", "-o", "json"])
            .arg(&survivor)
            .output()
            .unwrap();
        let old_cluster = String::from_utf8_lossy(&old.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        assert!(
            !old_cluster.contains(&format!("{:x}", j["clusterID"].as_u64().unwrap())),
            "new cluster ID"
        );
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let e1 = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "m1",
            peer_port: p1,
            initial_cluster: None,
            extra: vec![],
        });
        let (rev, got) = ctl_get(&e1, &[]);
        assert_eq!(rev, want_rev);
        assert_eq!(got, want);
        assert_eq!(member_ids(&e1).len(), 1);
        // A second member joins the usual way.
        let p2 = free_port();
        e1.ctl(&["member", "add", "m2", "--peer-urls", &url(p2)]);
        let d2 = tmp.path().join("m2");
        let mut e2 = Etcd::spawn(Member {
            bin: &bin,
            data_dir: &d2,
            name: "m2",
            peer_port: p2,
            initial_cluster: Some(format!("m1={},m2={}", url(p1), url(p2))),
            extra: vec!["--initial-cluster-state".into(), "existing".into()],
        });
        e2.wait_healthy();
        let (rev2, got2) = ctl_get(&e2, &[]);
        assert_eq!(rev2, want_rev);
        assert_eq!(got2, want);
        assert_eq!(member_ids(&e1).len(), 2);
        e2.stop();
        e1.stop();
    }
}

#[test]
fn safety_refusals_dry_run_and_inputs_untouched() {
    let vdir = &version_dirs()[1];
    let snap = vdir.join("single.snapshot.db");
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("occupied");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("keep.txt"), b"do not delete").unwrap();
    let args = |t: &Path, extra: &[&str]| {
        let mut a = vec![
            "restore".to_string(),
            snap.display().to_string(),
            "--data-dir".into(),
            t.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_s = |v: Vec<String>| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        run(&refs)
    };
    // A non-empty target is refused, and left as it was.
    let r = run_s(args(&target, &[]));
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("not empty"), "{}", r.err);
    assert_eq!(std::fs::read(target.join("keep.txt")).unwrap(), b"do not delete");
    // --dry-run writes nothing.
    let fresh = tmp.path().join("fresh");
    let r = run_s(args(&fresh, &["--dry-run"]));
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!fresh.exists());
    // A damaged snapshot is refused with the findings; a wrong trailer too.
    let mut bad = std::fs::read(&snap).unwrap();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let bad_path = tmp.path().join("bad.db");
    std::fs::write(&bad_path, &bad).unwrap();
    let r = run(&[
        "restore",
        bad_path.to_str().unwrap(),
        "--data-dir",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("does not match"), "{}", r.err);
    assert!(!fresh.exists());
    // A raw db (no trailer) needs --skip-hash-check, as with etcdutl.
    let raw = extracted_dbs(vdir).join("single/member/snap/db");
    let r = run(&[
        "restore",
        raw.to_str().unwrap(),
        "--data-dir",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("--skip-hash-check"), "{}", r.err);
    let r = unchanged(&[raw.as_path()], || {
        run(&[
            "restore",
            raw.to_str().unwrap(),
            "--data-dir",
            fresh.to_str().unwrap(),
            "--skip-hash-check",
        ])
    });
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(fresh.join("member/snap/db").is_file());
    // Structural damage is refused unless --force.
    let mut broken = std::fs::read(&snap).unwrap();
    broken[4096 * 3 + 8] = 0x10; // a page's type
    let broken_path = tmp.path().join("broken.db");
    std::fs::write(&broken_path, &broken).unwrap();
    let other = tmp.path().join("other");
    let r = run(&[
        "restore",
        broken_path.to_str().unwrap(),
        "--data-dir",
        other.to_str().unwrap(),
        "--skip-hash-check",
    ]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains("damaged"), "{}", r.err);
    assert!(!other.exists());
    // With -o json, scripts get an object saying why, with the findings.
    let r = run(&[
        "restore",
        "-o",
        "json",
        broken_path.to_str().unwrap(),
        "--data-dir",
        other.to_str().unwrap(),
        "--skip-hash-check",
    ]);
    assert_eq!(r.code, 1, "{}", r.err);
    let j = r.json();
    assert_eq!(j["restored"], false, "{j:#}");
    assert!(
        j["reason"].as_str().unwrap().contains("refusing to restore"),
        "{j:#}"
    );
    assert!(
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error" && f["page"] == 3),
        "{j:#}"
    );
    let r = run(&[
        "restore",
        "-o",
        "json",
        bad_path.to_str().unwrap(),
        "--data-dir",
        other.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.json()["reason"].as_str().unwrap().contains("does not match"),
        "{}",
        r.out
    );
    assert!(!other.exists());
    let _ = PathBuf::new();
}

/// (offset, frame length, entry index) of every entry record of a member's WAL
/// (one segment in the killed fixture), with the segment's path.
fn entry_records(member: &Path) -> (PathBuf, Vec<(usize, usize, u64)>) {
    let recs = common::walwrite::record_map(&member.join("wal"));
    let seg = recs[0].file.clone();
    assert!(
        recs.iter().all(|r| r.file == seg),
        "the killed fixture has one segment"
    );
    let entries = recs
        .iter()
        .filter_map(|r| r.index.map(|i| (r.offset, r.frame_len, i)))
        .collect();
    (seg, entries)
}

/// Restores `src` (a data dir) into `data` as a one-member cluster on `port`.
fn restore_dir(src: &Path, data: &Path, port: u16) -> Run {
    restore_dir_with(src, data, port, &[])
}

fn restore_dir_with(src: &Path, data: &Path, port: u16, extra: &[&str]) -> Run {
    let u = url(port);
    let cluster = format!("k={u}");
    let mut args = vec![
        "restore",
        "-o",
        "json",
        src.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--name",
        "k",
        "--initial-cluster",
        &cluster,
        "--initial-advertise-peer-urls",
        &u,
    ];
    args.extend_from_slice(extra);
    unchanged(&[src], || run(&args))
}

#[test]
fn member_dir_restore_reads_past_wal_damage_while_the_log_stays_continuous() {
    for vdir in version_dirs() {
        let bin = require(Need::EtcdFor(&vdir));
        let (want_rev, want) = etcdctl_get(&vdir.join("killed.expect/get.json"));
        let original = extracted_dir(&vdir, "killed").join("killed");
        let ci = run(&[
            "status",
            "-o",
            "json",
            original.join("member/snap/db").to_str().unwrap(),
        ])
        .json()["consistentIndex"]
            .as_u64()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();

        // 1. A record the db already holds (index <= its consistent index) is
        //    corrupt: etcd refuses the WAL, the restore reads past the damage
        //    and keeps every acknowledged write.
        let a = tmp.path().join("a");
        copy_tree(&original, &a);
        let (seg, recs) = entry_records(&a.join("member"));
        let &(off, len, idx) = recs.iter().rev().find(|r| r.2 <= ci && r.2 > 1).unwrap();
        let mut b = std::fs::read(&seg).unwrap();
        b[off + len / 2] ^= 0x40;
        std::fs::write(&seg, b).unwrap();
        make_readonly(&a);
        let inspect = run(&["inspect", "-o", "json", a.to_str().unwrap()]);
        assert_eq!(
            inspect.code, 1,
            "etcd would refuse the damaged WAL: {}",
            inspect.out
        );
        let port = free_port();
        let out_a = tmp.path().join("restored-a");
        // The dir is damaged (etcd refuses it): the restore refuses it too,
        // exactly as `inspect` and `check` judge it, unless told to go on.
        let refused = restore_dir(&a, &out_a, port);
        assert_eq!(refused.code, 1, "{}{}", refused.out, refused.err);
        assert_eq!(refused.json()["source"]["etcd"], "wont-start", "{}", refused.out);
        assert!(!out_a.exists());
        let r = restore_dir_with(&a, &out_a, port, &["--force"]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let j = r.json();
        let rep = &j["replay"];
        let after_ci = recs.iter().filter(|r| r.2 > ci).count() as u64;
        assert!(after_ci > 0, "the fixture's WAL must be ahead of its db");
        assert_eq!(rep["salvagedEntries"], after_ci, "damaged entry {idx}: {j:#}");
        assert!(rep.get("lost").is_none(), "{j:#}");
        assert_eq!(rep["revisionAfter"], want_rev, "{j:#}");
        if let Some(bin) = &bin {
            let etcd = Etcd::start(Member {
                bin,
                data_dir: &out_a,
                name: "k",
                peer_port: port,
                initial_cluster: None,
                extra: vec![],
            });
            let (rev, got) = ctl_get(&etcd, &[]);
            assert_eq!(rev, want_rev);
            assert_eq!(got, want, "every acknowledged write is back ({})", vdir.display());
            etcd.stop();
        }

        // 2. An entry the db lacks is corrupt: nothing after it may be used,
        //    the lost indexes are reported, and etcd serves exactly the state
        //    at the last entry applied.
        let b_dir = tmp.path().join("b");
        copy_tree(&original, &b_dir);
        let (seg, recs) = entry_records(&b_dir.join("member"));
        let &(off, len, k) = recs.iter().find(|r| r.2 == ci + 3).unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[off + len / 2] ^= 0x40;
        std::fs::write(&seg, bytes).unwrap();
        make_readonly(&b_dir);
        // `wal --salvage` names what is lost.
        let w = run(&["wal", "--salvage", "-o", "json", b_dir.to_str().unwrap()]);
        assert_eq!(w.code, 1, "{}", w.err);
        let summary: Value = w
            .out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|l| l["record"] == "summary")
            .unwrap();
        assert_eq!(
            summary["salvage"]["lost"],
            serde_json::json!([[k, k]]),
            "{summary:#}"
        );
        let port = free_port();
        let out_b = tmp.path().join("restored-b");
        let r = restore_dir_with(&b_dir, &out_b, port, &["--force"]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        let j = r.json();
        let rep = &j["replay"];
        let lost = &rep["lost"];
        let (first, last) = (lost["first"].as_u64().unwrap(), lost["last"].as_u64().unwrap());
        assert!(first <= k && k <= last, "entry {k} must be among the lost: {j:#}");
        assert_eq!(rep["appliedToIndex"], first - 1, "{j:#}");
        let rev_b = rep["revisionAfter"].as_i64().unwrap();
        assert!(rev_b < want_rev, "{j:#}");
        // The state at that revision, read from the full restore of case 1.
        let at = run(&[
            "get",
            "-o",
            "json",
            out_a.join("member/snap/db").to_str().unwrap(),
            "",
            "--prefix",
            "--rev",
            &rev_b.to_string(),
        ]);
        assert_eq!(at.code, 0, "{}", at.err);
        let (_, want_b) = etcdctl_get_json(&at.json());
        let Some(bin) = &bin else { continue };
        let etcd = Etcd::start(Member {
            bin,
            data_dir: &out_b,
            name: "k",
            peer_port: port,
            initial_cluster: None,
            extra: vec![],
        });
        let (rev, got) = ctl_get(&etcd, &[]);
        etcd.stop();
        assert_eq!(rev, rev_b);
        assert_eq!(
            got,
            want_b,
            "etcd serves the state at entry {} ({})",
            first - 1,
            vdir.display()
        );
    }
}
