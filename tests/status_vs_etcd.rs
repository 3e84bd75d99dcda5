//! `status` and the keyspace reader against what real etcd 3.4.23 and 3.5.1
//! said about the same files (recorded by testdata/gen-fixtures.sh).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::index::read_at;
use etcd_rescue::mvcc::trailer;
use etcd_rescue::source::MappedFile;

/// (file to read, expected status JSON, expected `get` dump or None)
fn cases(vdir: &Path, tmp: &Path) -> Vec<(PathBuf, PathBuf, Option<PathBuf>)> {
    let x = |s: &str| vdir.join(s);
    let t = |s: &str| tmp.join(s);
    vec![
        (
            x("single.snapshot.db"),
            x("single.expect/snapshot-status.json"),
            Some(x("single.expect/get.json")),
        ),
        (
            t("single/member/snap/db"),
            x("single.expect/db-status.json"),
            Some(x("single.expect/get-final.json")),
        ),
        (
            x("cluster.snapshot.db"),
            x("cluster.expect/snapshot-status.json"),
            Some(x("cluster.expect/get.json")),
        ),
        (
            t("m1/member/snap/db"),
            x("cluster.expect/m1-db-status.json"),
            Some(x("cluster.expect/get.json")),
        ),
        (
            t("m2/member/snap/db"),
            x("cluster.expect/m2-db-status.json"),
            Some(x("cluster.expect/get.json")),
        ),
        (
            t("m3/member/snap/db"),
            x("cluster.expect/m3-db-status.json"),
            Some(x("cluster.expect/get.json")),
        ),
        (
            t("killed/member/snap/db"),
            x("killed.expect/db-status.json"),
            None,
        ),
        (
            t("snapcount/member/snap/db"),
            x("snapcount.expect/db-status.json"),
            None,
        ),
    ]
}

#[test]
fn status_equals_etcd_status_on_every_fixture() {
    let mut checked = 0;
    for vdir in version_dirs() {
        let tmp = extracted_dbs(&vdir);
        for (file, expect, _) in cases(&vdir, &tmp) {
            let want = read_json(&expect);
            let r = unchanged(&[&file], || {
                run(&["status", "-o", "json", file.to_str().unwrap()])
            });
            assert_eq!(r.code, 0, "{}: {}", file.display(), r.err);
            let got = r.json();
            for field in ["hash", "revision", "totalKey", "totalSize"] {
                assert_eq!(got[field], want[field], "{}: field {field}", file.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} files checked");
}

/// `status -w simple` and `-w fields` are etcdutl 3.5's layouts: first
/// checked against the status real etcd recorded for the fixture, then byte
/// for byte against etcdutl 3.5.1 run on the same file.
#[test]
fn status_simple_and_fields_equal_etcdutl_byte_for_byte() {
    let mut compared = 0;
    let mut with_etcdutl = false;
    for vdir in version_dirs() {
        let tmp = extracted_dbs(&vdir);
        for (file, expect, _) in cases(&vdir, &tmp) {
            let f = file.to_str().unwrap();
            let want = read_json(&expect);
            let simple = run(&["status", "-w", "simple", f]);
            let fields = run(&["status", "-w", "fields", f]);
            assert_eq!(
                (simple.code, fields.code),
                (0, 0),
                "{f}: {}{}",
                simple.err,
                fields.err
            );
            let (hash, rev, keys, size) = (
                want["hash"].as_u64().unwrap(),
                &want["revision"],
                &want["totalKey"],
                &want["totalSize"],
            );
            assert!(
                simple.out.starts_with(&format!("{hash:x}, {rev}, {keys}, ")),
                "{f}: {}",
                simple.out
            );
            assert_eq!(
                fields.out,
                format!("\"Hash\" : {hash}\n\"Revision\" : {rev}\n\"Keys\" : {keys}\n\"Size\" : {size}\n"),
                "{f}"
            );
            let Some(bin) = require(Need::Etcd35) else {
                continue;
            };
            with_etcdutl = true;
            for (w, ours) in [("simple", &simple.out), ("fields", &fields.out)] {
                let o = std::process::Command::new(bin.join("etcdutl"))
                    .args(["snapshot", "status", f, "-w", w])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{f}: {}", String::from_utf8_lossy(&o.stderr));
                assert_eq!(ours.as_bytes(), &o.stdout[..], "{f} -w {w}");
                compared += 1;
            }
        }
    }
    assert!(!with_etcdutl || compared >= 32, "only {compared} compared");
    // Other commands and other files say what -w simple is for.
    let r = run(&["stats", "-w", "simple", "x"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("only `status`, `get` and `hashkv`"), "{}", r.err);
}

#[test]
fn keys_and_revisions_equal_etcdctl_get() {
    for vdir in version_dirs() {
        let tmp = extracted_dbs(&vdir);
        for (file, _, get) in cases(&vdir, &tmp) {
            let Some(get) = get else { continue };
            let (want_rev, want) = etcdctl_get(&get);
            let f = MappedFile::open(&file).unwrap();
            let (db, _) = Db::open(trailer::image(f.bytes())).unwrap();
            let snap = read_at(&db, None).unwrap();
            assert_eq!(snap.revision, want_rev, "{}: head revision", file.display());
            let got: Vec<Kv> = snap
                .kvs
                .iter()
                .map(|kv| Kv {
                    key: kv.key.clone(),
                    value: kv.value.clone(),
                    create_revision: kv.create_revision,
                    mod_revision: kv.mod_revision,
                    version: kv.version,
                    lease: kv.lease,
                })
                .collect();
            assert_eq!(got.len(), want.len(), "{}: key count", file.display());
            assert_eq!(got, want, "{}: key-values", file.display());
        }
    }
}

#[test]
fn keyspace_at_every_past_revision_equals_etcdctl_get_rev() {
    let mut revs = 0;
    for vdir in version_dirs() {
        let f = MappedFile::open(&vdir.join("single.snapshot.db")).unwrap();
        let (db, _) = Db::open(trailer::image(f.bytes())).unwrap();
        for e in std::fs::read_dir(vdir.join("single.expect")).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let Some(n) = name
                .strip_prefix("get-rev-")
                .and_then(|s| s.strip_suffix(".json"))
            else {
                continue;
            };
            let n: i64 = n.parse().unwrap();
            let (want_rev, want) = etcdctl_get(&p);
            let snap = read_at(&db, Some(n)).unwrap();
            assert_eq!(snap.revision, n);
            // etcdctl's header carries the current revision, not the one asked.
            assert!(want_rev >= n);
            let got: Vec<(Vec<u8>, Vec<u8>, i64, i64)> = snap
                .kvs
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone(), kv.mod_revision, kv.version))
                .collect();
            let want: Vec<(Vec<u8>, Vec<u8>, i64, i64)> = want
                .into_iter()
                .map(|kv| (kv.key, kv.value, kv.mod_revision, kv.version))
                .collect();
            assert_eq!(got, want, "{}: revision {n}", vdir.display());
            revs += 1;
        }
        // Below the compact revision etcd answers "compacted"; so must we.
        let compact = read_at(&db, None).unwrap().compact_revision;
        assert!(compact > 1);
        let err = read_at(&db, Some(compact - 1)).unwrap_err().to_string();
        assert!(err.contains("compacted"), "{err}");
    }
    assert!(revs >= 40, "only {revs} revisions compared");
}

#[test]
fn members_equal_etcdctl_member_list() {
    for vdir in version_dirs() {
        for (snap, list) in [
            ("single.snapshot.db", "single.expect/member-list.json"),
            ("cluster.snapshot.db", "cluster.expect/member-list.json"),
        ] {
            let want = read_json(&vdir.join(list));
            let mut want: Vec<(u64, String, Vec<String>)> = want["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["ID"].as_u64().unwrap(),
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["peerURLs"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|u| u.as_str().unwrap().to_string())
                            .collect(),
                    )
                })
                .collect();
            want.sort();
            let r = run(&["status", "-o", "json", vdir.join(snap).to_str().unwrap()]);
            let got = r.json();
            let mut got: Vec<(u64, String, Vec<String>)> = got["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["ID"].as_u64().unwrap(),
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["peerURLs"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|u| u.as_str().unwrap().to_string())
                            .collect(),
                    )
                })
                .collect();
            got.sort();
            assert_eq!(got, want, "{}/{snap}", vdir.display());
        }
    }
}

#[test]
fn consistent_index_and_revision_match_endpoint_status() {
    for vdir in version_dirs() {
        let es = read_json(&vdir.join("single.expect/endpoint-status.json"));
        let st = &es[0]["Status"];
        let r = run(&[
            "status",
            "-o",
            "json",
            vdir.join("single.snapshot.db").to_str().unwrap(),
        ]);
        let got = r.json();
        assert_eq!(got["revision"], st["header"]["revision"], "{}", vdir.display());
        // The snapshot was saved right after endpoint status; its db holds
        // everything applied up to then.
        let applied = st["raftIndex"].as_u64().unwrap();
        let ci = got["consistentIndex"].as_u64().unwrap();
        assert!(
            ci <= applied + 2 && ci + 10 >= applied,
            "consistent index {ci} vs raft index {applied}"
        );
    }
}

#[test]
fn check_passes_every_real_etcd_file() {
    for vdir in version_dirs() {
        let tmp = extracted_dbs(&vdir);
        for (file, _, _) in cases(&vdir, &tmp) {
            let r = unchanged(&[&file], || run(&["check", "-o", "json", file.to_str().unwrap()]));
            let j = r.json();
            let f = &j["files"][0];
            assert_eq!(r.code, 0, "{}: {}", file.display(), r.out);
            assert_eq!(f["verdict"], "ok", "{}", file.display());
        }
    }
}
