//! The real Kubernetes cluster snapshots in `../shared/fixtures/`: status
//! equals real etcdutl's, check passes, and the keyspace we read equals what
//! real etcd serves after restoring the same snapshot.

mod common;

use common::etcd::{Etcd, Member, etcdutl_restore, free_port};
use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::index::read_at;
use etcd_rescue::mvcc::trailer;
use etcd_rescue::source::MappedFile;

#[test]
fn status_equals_real_etcdutl_and_check_passes() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    for s in snaps {
        // Ours, with or without etcd: the hash verifies, check passes.
        let r = unchanged(&[&s], || {
            run(&["status", "--verify-hash", "-o", "json", s.to_str().unwrap()])
        });
        assert_eq!(r.code, 0, "{}", r.err);
        let got = r.json();
        assert_eq!(got["trailer"]["state"], "valid");
        let c = unchanged(&[&s], || run(&["check", "-o", "json", s.to_str().unwrap()]));
        assert_eq!(c.code, 0, "{}", c.out);
        // What real etcdutl says of the same file.
        let Some(bin) = require(Need::Etcd35) else {
            continue;
        };
        let want = etcdutl_status(&bin, &s);
        for f in ["hash", "revision", "totalKey", "totalSize"] {
            assert_eq!(got[f], want[f], "{}: {f}", s.display());
        }
    }
}

#[test]
fn keyspace_equals_what_real_etcd_serves_after_restore() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    let Some(bin) = require(Need::Etcd35) else { return };
    for s in snaps {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("restored");
        let port = free_port();
        etcdutl_restore(&bin, &s, &data, "oracle", port);
        let etcd = Etcd::start(Member {
            bin: &bin,
            data_dir: &data,
            name: "oracle",
            peer_port: port,
            initial_cluster: None,
            extra: vec![],
        });
        let dump = tmp.path().join("get.json");
        std::fs::write(&dump, etcd.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap();
        // HashKV and a read at a past revision, from the live member and from us.
        let status = run(&["status", "-o", "json", s.to_str().unwrap()]).json();
        let compact = status["compactRevision"].as_i64().unwrap();
        let head = status["revision"].as_i64().unwrap();
        for rev in [0, compact + 1, (compact + head) / 2] {
            let live: serde_json::Value = serde_json::from_str(&etcd.ctl(&[
                "endpoint",
                "hashkv",
                "--rev",
                &rev.to_string(),
                "-w",
                "json",
            ]))
            .unwrap();
            let ours = run(&[
                "hashkv",
                "-o",
                "json",
                s.to_str().unwrap(),
                "--rev",
                &rev.to_string(),
            ])
            .json();
            assert_eq!(
                ours[0]["HashKV"]["hash"],
                live[0]["HashKV"]["hash"],
                "{}: hashkv at {rev}",
                s.display()
            );
        }
        let past = (compact + head) / 2;
        let live: serde_json::Value = serde_json::from_str(&etcd.ctl(&[
            "get",
            "",
            "--prefix",
            "--rev",
            &past.to_string(),
            "-w",
            "json",
        ]))
        .unwrap();
        let ours = run(&[
            "get",
            "-o",
            "json",
            s.to_str().unwrap(),
            "",
            "--prefix",
            "--rev",
            &past.to_string(),
        ])
        .json();
        assert_eq!(ours["kvs"], live["kvs"], "{}: get at {past}", s.display());
        assert_eq!(ours["count"], live["count"]);
        etcd.stop();
        let (want_rev, want) = etcdctl_get(&dump);
        let f = MappedFile::open(&s).unwrap();
        let (db, _) = Db::open(trailer::image(f.bytes())).unwrap();
        let snap = read_at(&db, None).unwrap();
        assert_eq!(snap.revision, want_rev, "{}", s.display());
        let got: Vec<Kv> = snap
            .kvs
            .into_iter()
            .map(|kv| Kv {
                key: kv.key,
                value: kv.value,
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                lease: kv.lease,
            })
            .collect();
        assert!(got.len() > 300, "{}: only {} keys", s.display(), got.len());
        assert_eq!(got.len(), want.len(), "{}", s.display());
        assert_eq!(got, want, "{}", s.display());
    }
}
