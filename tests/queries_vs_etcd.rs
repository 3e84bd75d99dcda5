//! `get`, `history`, `hashkv` and `diff` against what real etcd 3.4.23 and
//! 3.5.1 answered on the live server (recorded by testdata/gen-fixtures.sh).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn snap(vdir: &Path) -> String {
    vdir.join("single.snapshot.db").to_string_lossy().into_owned()
}

/// Every `get-rev-N.json` of a version dir, with N.
fn get_revs(vdir: &Path) -> Vec<(i64, std::path::PathBuf)> {
    let mut v: Vec<(i64, std::path::PathBuf)> = std::fs::read_dir(vdir.join("single.expect"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("get-rev-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    v.sort();
    v
}

/// etcdctl's JSON without the fields only a live member knows: cluster and
/// member id, and the current raft term (a db knows only the term of its last
/// applied entry, and 3.4 dbs not even that).
fn comparable(mut v: Value) -> Value {
    if let Some(h) = v.get_mut("header").and_then(Value::as_object_mut) {
        h.remove("cluster_id");
        h.remove("member_id");
        h.remove("raft_term");
    }
    v
}

#[test]
fn get_json_equals_etcdctl_get_at_head_and_every_past_revision() {
    let mut compared = 0;
    for vdir in version_dirs() {
        let s = snap(&vdir);
        let head = run(&["get", "-o", "json", &s, "", "--prefix"]);
        assert_eq!(head.code, 0, "{}", head.err);
        assert_eq!(
            comparable(head.json()),
            comparable(read_json(&vdir.join("single.expect/get.json")))
        );
        for (n, p) in get_revs(&vdir) {
            let r = unchanged(&[Path::new(&s)], || {
                run(&["get", "-o", "json", &s, "", "--prefix", "--rev", &n.to_string()])
            });
            assert_eq!(r.code, 0, "rev {n}: {}", r.err);
            assert_eq!(
                comparable(r.json()),
                comparable(read_json(&p)),
                "{}: rev {n}",
                vdir.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 40, "compared {compared}");
}

#[test]
fn get_single_key_prefix_limit_keys_only_and_count() {
    for vdir in version_dirs() {
        let s = snap(&vdir);
        let (_, all) = etcdctl_get(&vdir.join("single.expect/get.json"));
        // One key, as etcdctl returns it.
        let j = run(&["get", "-o", "json", &s, "/demo/counter"]).json();
        assert_eq!(j["count"], 1);
        let want = all.iter().find(|kv| kv.key == b"/demo/counter").unwrap();
        assert_eq!(j["kvs"][0]["mod_revision"], want.mod_revision);
        assert_eq!(j["kvs"][0]["version"], want.version);
        // Prefix, limit: the first keys in order, the total count, more = true.
        let items: Vec<&Kv> = all
            .iter()
            .filter(|kv| kv.key.starts_with(b"/demo/items/"))
            .collect();
        let j = run(&[
            "get",
            "-o",
            "json",
            &s,
            "/demo/items/",
            "--prefix",
            "--limit",
            "3",
            "--keys-only",
        ])
        .json();
        assert_eq!(j["count"], items.len());
        assert_eq!(j["more"], true);
        assert_eq!(j["kvs"].as_array().unwrap().len(), 3);
        assert!(j["kvs"][0].get("value").is_none());
        // --from-key.
        let from: Vec<&Kv> = all
            .iter()
            .filter(|kv| kv.key.as_slice() >= b"/demo/lease/".as_slice())
            .collect();
        let j = run(&[
            "get",
            "-o",
            "json",
            &s,
            "/demo/lease/",
            "--from-key",
            "--count-only",
        ])
        .json();
        assert_eq!(j["count"], from.len());
        assert!(j.get("kvs").is_none());
        // A missing key: no kvs, no count (as etcdctl prints it).
        let j = run(&["get", "-o", "json", &s, "/no/such/key"]).json();
        assert!(j.get("kvs").is_none() && j.get("count").is_none());
        // JSON Lines: non-UTF-8 keys and values as base64.
        let l = run(&["get", "-o", "lines", &s, "/demo/bin/", "--prefix"]);
        let line: Value = serde_json::from_str(l.out.lines().next().unwrap()).unwrap();
        assert!(
            line.get("key_base64").is_some() && line.get("value_base64").is_some(),
            "{line}"
        );
    }
}

#[test]
fn get_below_compact_revision_is_refused() {
    for vdir in version_dirs() {
        let compact = oracle::compact_revision(&vdir);
        let r = run(&["get", &snap(&vdir), "--rev", &(compact - 1).to_string()]);
        assert_eq!(r.code, 2);
        assert!(
            r.err.contains("compacted") && r.err.contains(&compact.to_string()),
            "{}",
            r.err
        );
        let r = run(&["get", &snap(&vdir), "--rev", "9999"]);
        assert_eq!(r.code, 2);
        assert!(r.err.contains("future"), "{}", r.err);
    }
}

/// Expected (revision, deleted) of a key from the ops log: single puts and
/// deletes of exactly that key, with history at or below the compact
/// revision reduced to what a compaction keeps.
fn expected_history(vdir: &Path, key: &str, compact: i64) -> Vec<(i64, bool)> {
    let text = std::fs::read_to_string(vdir.join("single.expect/ops.jsonl")).unwrap();
    let mut all = Vec::new();
    for line in text.lines() {
        let op: Value = serde_json::from_str(line).unwrap();
        let in_txn = ["success", "failure"]
            .iter()
            .filter_map(|b| op[*b].as_array())
            .flatten()
            .any(|o| o["key"] == key);
        assert!(!in_txn, "key {key} is written by a txn: pick a simpler key");
        if op["key"] != key || op.get("after_snapshot").is_some() {
            continue;
        }
        match op["op"].as_str().unwrap() {
            "put" => all.push((op["rev"].as_i64().unwrap(), false)),
            "del" if op["deleted"].as_i64() == Some(1) => all.push((op["rev"].as_i64().unwrap(), true)),
            other => panic!("key {key} touched by {other}: pick a simpler key"),
        }
    }
    let below: Vec<(i64, bool)> = all.iter().copied().filter(|r| r.0 <= compact).collect();
    let mut out: Vec<(i64, bool)> = below.last().filter(|r| !r.1).into_iter().copied().collect();
    out.extend(all.into_iter().filter(|r| r.0 > compact));
    out
}

#[test]
fn history_equals_the_revisions_written() {
    for vdir in version_dirs() {
        let s = snap(&vdir);
        for key in [
            "/demo/counter",
            "/demo/after/b",
            "/demo/items/item-0001",
            "/demo/items/item-0100",
        ] {
            let j = run(&["history", "-o", "json", &s, key]).json();
            let compact = j["compactRevision"].as_i64().unwrap();
            let got: Vec<(i64, bool)> = j["revisions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["revision"].as_i64().unwrap(), r["deleted"].as_bool().unwrap()))
                .collect();
            assert_eq!(
                got,
                expected_history(&vdir, key, compact),
                "{}: {key}",
                vdir.display()
            );
        }
        // Values and versions of the live generation of /demo/counter.
        let j = run(&["history", "-o", "json", "--values", &s, "/demo/counter"]).json();
        let last = j["revisions"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["value"], "11");
        assert_eq!(last["version"], 5);
        assert_eq!(last["createRevision"], 178);
    }
}

#[test]
fn hashkv_equals_etcdctl_endpoint_hashkv() {
    let mut compared = 0;
    for vdir in version_dirs() {
        let s = snap(&vdir);
        for e in std::fs::read_dir(vdir.join("single.expect")).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if let Some(n) = name
                .strip_prefix("hashkv-rev-")
                .and_then(|s| s.strip_suffix(".error.txt"))
            {
                // etcd refuses a hash at the compact revision: so do we.
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(text.contains("required revision has been compacted"), "{text}");
                let r = run(&["hashkv", "-o", "json", &s, "--rev", n]);
                assert_eq!(r.code, 2, "{}: hashkv --rev {n}: {}", vdir.display(), r.out);
                assert!(r.err.contains("has been compacted"), "{}", r.err);
                compared += 1;
                continue;
            }
            let rev = if name == "hashkv.json" {
                0
            } else if let Some(n) = name
                .strip_prefix("hashkv-rev-")
                .and_then(|s| s.strip_suffix(".json"))
            {
                n.parse().unwrap()
            } else {
                continue;
            };
            let want = &read_json(&p)[0]["HashKV"];
            let got = run(&["hashkv", "-o", "json", &s, "--rev", &rev.to_string()]).json();
            let got = &got[0]["HashKV"];
            assert_eq!(got["hash"], want["hash"], "{}: {name}", vdir.display());
            assert_eq!(
                got["compact_revision"],
                want["compact_revision"],
                "{}: {name}",
                vdir.display()
            );
            compared += 1;
        }
        // A 3-member cluster without compaction: every member's hash is the same.
        let c = vdir.join("cluster.snapshot.db");
        let got = run(&["hashkv", "-o", "json", c.to_str().unwrap()]).json();
        for m in read_json(&vdir.join("cluster.expect/hashkv.json"))
            .as_array()
            .unwrap()
        {
            assert_eq!(got[0]["HashKV"]["hash"], m["HashKV"]["hash"]);
            assert_eq!(got[0]["HashKV"]["compact_revision"], -1);
        }
    }
    assert!(compared >= 40, "compared {compared}");
}

#[test]
fn diff_between_snapshot_and_later_db_lists_exactly_the_writes() {
    for vdir in version_dirs() {
        let dbs = extracted_dbs(&vdir);
        let later = dbs.join("single/member/snap/db");
        let r = unchanged(&[later.as_path()], || {
            run(&["diff", "-o", "json", &snap(&vdir), later.to_str().unwrap()])
        });
        assert_eq!(r.code, 1, "differences exit 1: {}", r.err);
        let j = r.json();
        let got: Vec<(String, String)> = j["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["change"].as_str().unwrap().to_string(),
                    c["key"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        // The writes done after the snapshot (ops.jsonl "after_snapshot").
        let text = std::fs::read_to_string(vdir.join("single.expect/ops.jsonl")).unwrap();
        let mut want: Vec<(String, String)> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|op| op.get("after_snapshot").is_some() && op["key"].is_string())
            .map(|op| {
                let change = if op["op"] == "del" { "removed" } else { "added" };
                (change.to_string(), op["key"].as_str().unwrap().to_string())
            })
            .collect();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(got, want, "{}", vdir.display());
        assert_eq!(j["a"]["revision"], oracle::snapshot_revision(&vdir, "single"));
        assert_eq!(j["b"]["revision"], oracle::db_revision(&vdir, "single"));
        // Two revisions of one source.
        let j = run(&[
            "diff",
            "-o",
            "json",
            &snap(&vdir),
            "--rev-a",
            "186",
            "--rev-b",
            "187",
        ])
        .json();
        assert_eq!(j["summary"]["changed"], 1);
        assert_eq!(j["changes"][0]["key"], "/demo/counter");
        // Identical: exit 0.
        let r = run(&["diff", &snap(&vdir), &snap(&vdir)]);
        assert_eq!(r.code, 0);
        assert!(r.out.contains("0 added, 0 removed, 0 changed"), "{}", r.out);
    }
}

#[test]
fn stats_counts_match_the_keyspace() {
    for vdir in version_dirs() {
        let s = snap(&vdir);
        let (_, all) = etcdctl_get(&vdir.join("single.expect/get.json"));
        let j = run(&["stats", "-o", "json", &s]).json();
        assert_eq!(j["liveKeys"], all.len());
        let items = j["prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["prefix"] == "/demo/items/")
            .unwrap()
            .clone();
        let want = all
            .iter()
            .filter(|kv| kv.key.starts_with(b"/demo/items/"))
            .count();
        assert_eq!(items["liveKeys"], want);
        let lease_keys: u64 = j["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["keys"].as_u64().unwrap())
            .sum();
        assert_eq!(lease_keys as usize, all.iter().filter(|kv| kv.lease != 0).count());
        assert_eq!(j["largestValues"][0]["key"], "/demo/large");
        assert_eq!(j["mostRevisions"][0]["key"], "/demo/counter");
    }
}

#[test]
fn queries_accept_a_data_dir() {
    for vdir in version_dirs() {
        let dir = extracted_dir(&vdir, "single").join("single");
        let r = run(&["get", "-o", "json", dir.to_str().unwrap(), "", "--prefix"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.err.contains("note: reading"), "{}", r.err);
        assert_eq!(
            comparable(r.json()),
            comparable(read_json(&vdir.join("single.expect/get-final.json")))
        );
    }
}
