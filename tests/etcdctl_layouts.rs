//! `get -w simple|fields|json` and `hashkv -w simple|fields|json` against
//! what etcdctl prints, byte for byte, from real etcd 3.4.23 and 3.5.1
//! started on the same member dir: ours read offline first, then etcd
//! started on it and asked the same questions.
//!
//! The one field left out of the comparison is the raft term: a started
//! member holds an election and serves a newer term than any file records
//! (ours is the last term on disk).

mod common;

use std::path::Path;

use common::etcd::{Etcd, Member, free_port};
use common::*;
use serde_json::Value;

/// Values etcdctl's `%q` escapes in every way it can: C escapes, bytes
/// that are not UTF-8, a non-ASCII space, a zero-width space, a private-use
/// character, quotes and backslashes, and a NUL.
const ODD_VALUE: &[u8] = b"a\x01\xff\xc3\xa9 \xc2\xa0\xe2\x80\x8b\xee\x80\x80\"\\\t\n\x00\x7f";

/// The questions asked of both, as etcdctl's arguments after `get`.
const GETS: &[&[&str]] = &[
    &["", "--prefix"],
    &["/demo/", "--prefix", "--limit", "3"],
    &["/demo/", "--prefix", "--keys-only", "--limit", "2"],
    &["/nonexistent"],
    &["/layouts/", "--prefix"],
    &["/demo/w", "--from-key", "--limit", "4"],
];

/// Writes the odd keys into a member dir with etcd itself (so the dir is
/// what etcd made), then stops it as an operator would.
fn add_odd_keys(bin: &Path, dir: &Path) {
    let e = Etcd::start(member(bin, dir));
    e.put_bytes("/layouts/odd", ODD_VALUE);
    e.put_bytes("/layouts/ünï\u{200b}code", b"v");
    let lease = e.ctl(&["lease", "grant", "3600"]);
    let id = lease.split_whitespace().nth(1).expect("lease id");
    e.ctl(&["put", "/layouts/leased", "x", "--lease", id]);
    e.shutdown();
}

fn member<'a>(bin: &'a Path, dir: &'a Path) -> Member<'a> {
    Member {
        bin,
        data_dir: dir,
        name: "single",
        peer_port: free_port(),
        initial_cluster: None,
        extra: Vec::new(),
    }
}

/// `-w fields` output without the RaftTerm line.
fn without_term(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.starts_with("\"RaftTerm\""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts two texts are equal, naming the first line that differs.
fn same_lines(got: &str, want: &str, label: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{label}: line {}", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count(), "{label}: line count");
}

/// etcdctl's JSON without the raft term.
fn json_without_term(text: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(text).expect("json");
    if let Some(h) = v.get_mut("header").and_then(Value::as_object_mut) {
        h.remove("raft_term");
    }
    if let Some(h) = v
        .get_mut(0)
        .and_then(|r| r.get_mut("HashKV"))
        .and_then(Value::as_object_mut)
    {
        // etcd 3.6 adds hash_revision; 3.4 and 3.5 print none.
        h.remove("hash_revision");
        if let Some(h) = h.get_mut("header").and_then(Value::as_object_mut) {
            h.remove("raft_term");
        }
    }
    v
}

#[test]
fn get_and_hashkv_print_what_etcdctl_prints() {
    let mut compared = 0;
    for vdir in version_dirs() {
        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("single");
        copy_tree(&extracted_dir(&vdir, "single").join("single"), &dir);
        add_odd_keys(&bin, &dir);
        let d = dir.to_str().unwrap();
        // Ours, offline, before etcd touches the dir again.
        let mut ours = Vec::new();
        for q in GETS {
            for w in ["simple", "fields", "json"] {
                let mut args = vec!["get", "-w", w, d];
                args.extend_from_slice(q);
                let r = run_raw(&args);
                assert_eq!(r.0, 0, "{args:?}: {}", r.2);
                ours.push((w, q.to_vec(), r.1));
            }
        }
        let value_only = run_raw(&["get", "-w", "simple", d, "/layouts/odd", "--print-value-only"]);
        let count = run_raw(&["get", "-w", "fields", d, "/demo/", "--prefix", "--count-only"]);
        let hash: Vec<_> = ["simple", "fields", "json"]
            .iter()
            .map(|w| (w, run_raw(&["hashkv", "-w", w, d]).1))
            .collect();
        // etcd's answers.
        let e = Etcd::start(member(&bin, &dir));
        let ctl = |args: &[&str]| {
            let o = e.ctl_output(args);
            assert!(
                o.status.success(),
                "etcdctl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            o.stdout
        };
        for (w, q, got) in &ours {
            let mut args = vec!["get", "-w", w];
            args.extend_from_slice(q);
            let want = ctl(&args);
            let label = format!("{}: get -w {w} {q:?}", vdir.display());
            match *w {
                "simple" => assert_eq!(got, &want, "{label}"),
                // etcdctl 3.4 was built with a Go that quoted DEL as \x7f;
                // 3.5 on (and we) write \u007f.
                "fields" => same_lines(
                    &without_term(got),
                    &without_term(&want).replace("\\x7f", "\\u007f"),
                    &label,
                ),
                _ => assert_eq!(json_without_term(got), json_without_term(&want), "{label}"),
            }
            compared += 1;
        }
        assert_eq!(
            value_only.1,
            ctl(&["get", "-w", "simple", "/layouts/odd", "--print-value-only"])
        );
        // etcdctl 3.4 has no --count-only.
        if !vdir.ends_with("v3.4.23") {
            assert_eq!(
                without_term(&count.1),
                without_term(&ctl(&[
                    "get",
                    "-w",
                    "fields",
                    "/demo/",
                    "--prefix",
                    "--count-only"
                ]))
            );
        }
        // hashkv: etcdctl names the endpoint where we name the source.
        for (w, got) in hash {
            let want = String::from_utf8(ctl(&["endpoint", "hashkv", "-w", w])).unwrap();
            let got = String::from_utf8(got).unwrap().replace(d, &e.client_url);
            match *w {
                "simple" => assert_eq!(got, want),
                "fields" => same_lines(
                    &without_term(got.as_bytes()),
                    &without_term(want.as_bytes()),
                    "hashkv",
                ),
                _ => assert_eq!(
                    json_without_term(got.as_bytes()),
                    json_without_term(want.as_bytes())
                ),
            }
            compared += 1;
        }
        e.shutdown();
    }
    assert!(compared >= 21 || !required(), "compared {compared}");
}

/// `-w simple --count-only` is refused, as etcdctl refuses it; `-w simple`
/// on a command without such a layout says which commands have one.
#[test]
fn layouts_etcdctl_lacks_are_refused() {
    let s = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let s = s.to_str().unwrap();
    let r = run(&["get", "-w", "simple", s, "/", "--prefix", "--count-only"]);
    assert_eq!(r.code, 2, "{}", r.out);
    assert!(r.err.contains("--count-only"), "{}", r.err);
    let r = run(&["stats", "-w", "fields", s]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("`status`, `get` and `hashkv`"), "{}", r.err);
}

/// Several sources: one row each; the same data hashes the same, and a
/// different revision span is pointed out instead of compared.
#[test]
fn hashkv_compares_sources() {
    let s = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let s = s.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy.db");
    std::fs::copy(s, &copy).unwrap();
    let c = copy.to_str().unwrap();
    let r = run(&["hashkv", s, c]);
    assert_eq!(r.code, 0, "{}", r.err);
    let rows: Vec<&str> = r
        .out
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".db"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", r.out);
    let hashes: Vec<&str> = rows.iter().map(|l| l.split('|').nth(2).unwrap().trim()).collect();
    assert_eq!(hashes[0], hashes[1]);
    // A member dir with more revisions than the snapshot: not compared.
    let d = extracted_dir(&repo().join("testdata/fixtures/v3.5.1"), "single").join("single");
    let r = run(&["hashkv", "-o", "json", s, d.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("cover different revisions"), "{}", r.err);
    let j = r.json();
    assert_eq!(j.as_array().unwrap().len(), 2);
    // The member dir's header names its cluster and member, from its WAL.
    assert!(j[1]["HashKV"]["header"]["member_id"].as_u64().unwrap() > 0, "{j}");
    assert!(j[0]["HashKV"]["header"].get("member_id").is_none(), "{j}");
}

fn run_raw(args: &[&str]) -> (i32, Vec<u8>, String) {
    run_bin_bytes(args, &[])
}
