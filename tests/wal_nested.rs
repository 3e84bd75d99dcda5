//! WAL payloads decoded as etcd decodes them. A committed entry holding a
//! txn nested 45, 49, 60 or 5000 levels deep is appended to a real member's
//! WAL; real etcd starts on a copy and is asked for the key the innermost
//! txn puts. Up to `MAX_TXN_DEPTH` (256) levels `get` and `restore` give
//! what etcd serves; deeper, they say they stop before the entry, with exit
//! code 1. A committed entry that is not a request at all stops the replay
//! the same way, named, exit code 1: never skipped in silence.

mod common;

use std::path::Path;

use common::etcd::{Etcd, Member, free_port};
use common::walwrite::{records, write_segments};
use common::*;
use etcd_rescue::pb::raftpb;
use etcd_rescue::wal::Entry;
use prost::Message;

/// An `InternalRaftRequest` whose txn nests `depth` levels, the innermost
/// putting `key = v`, built from the inside out (no recursion).
fn nested_txn(depth: usize, key: &str, id: u64) -> Vec<u8> {
    let put = [field(1, key.as_bytes()), field(2, b"v")].concat(); // PutRequest
    let mut txn = field(2, &field(2, &put)); // success: [RequestOp{request_put}]
    for _ in 1..depth {
        txn = field(2, &field(4, &txn)); // success: [RequestOp{request_txn}]
    }
    let mut header = Vec::new();
    varint(1 << 3, &mut header); // RequestHeader.ID
    varint(id, &mut header);
    [field(100, &header), field(6, &txn)].concat()
}

/// Appends a committed normal entry with `data` to the WAL of `member`.
fn append_committed(member: &Path, data: Vec<u8>) {
    let wal = member.join("wal");
    let mut recs = records(&wal);
    let last = recs
        .iter()
        .filter(|(t, _)| *t == 2)
        .map(|(_, d)| Entry::parse(d).unwrap())
        .map(|e| (e.index.0, e.term.0))
        .max()
        .unwrap();
    let state = recs
        .iter()
        .rev()
        .find(|(t, _)| *t == 3)
        .map(|(_, d)| raftpb::HardState::decode(d.as_slice()).unwrap())
        .unwrap();
    let e = raftpb::Entry {
        term: Some(last.1),
        index: Some(last.0 + 1),
        r#type: Some(0),
        data: Some(data),
    };
    recs.push((2, e.encode_to_vec()));
    let hs = raftpb::HardState {
        term: Some(state.term().max(last.1)),
        vote: state.vote,
        commit: Some(last.0 + 1),
    };
    recs.push((3, hs.encode_to_vec()));
    std::fs::remove_dir_all(&wal).unwrap();
    write_segments(&wal, &recs, &[]);
}

/// What real etcd serves for `key` from a copy of `dir` (None: not served).
fn etcd_serves(bin: &Path, dir: &Path, key: &str) -> Option<String> {
    let copy = dir.with_extension("etcd-copy");
    let _ = std::fs::remove_dir_all(&copy);
    copy_tree(dir, &copy);
    let port = free_port();
    let e = Etcd::start(Member {
        bin,
        data_dir: &copy,
        name: "killed",
        peer_port: port,
        initial_cluster: None,
        extra: vec![],
    });
    let (_, kvs) = etcdctl_get_json(&serde_json::from_str(&e.ctl(&["get", key, "-w", "json"])).unwrap());
    kvs.first()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

#[test]
fn nested_txns_are_applied_as_etcd_applies_them() {
    let tmp = tempfile::tempdir().unwrap();
    for v in version_dirs() {
        for depth in [45usize, 49, 60, 5000] {
            let dir = tmp
                .path()
                .join(format!("{}-{depth}", v.file_name().unwrap().to_string_lossy()));
            copy_tree(&extracted_dir(&v, "killed").join("killed"), &dir);
            append_committed(&dir.join("member"), nested_txn(depth, "/nested", 77));
            let what = format!("{} depth {depth}", v.display());
            let d = dir.to_str().unwrap();
            let r = run(&["get", d, "/nested", "-o", "json"]);
            let out = tmp.path().join(format!("restored-{depth}"));
            let rr = run(&["restore", d, "--data-dir", out.to_str().unwrap()]);
            if depth <= etcd_rescue::wal::payload::MAX_TXN_DEPTH {
                assert_eq!(r.code, 0, "{what}: {}", r.err);
                let (_, kvs) = etcdctl_get_json(&r.json());
                assert_eq!(kvs.len(), 1, "{what}: {}", r.out);
                assert_eq!(kvs[0].value, b"v");
                assert_eq!(rr.code, 0, "{what}: {}", rr.err);
            } else {
                // An explicit refusal: named, exit 1, never a silent skip.
                assert_eq!(r.code, 1, "{what}: {}", r.err);
                assert!(
                    r.err.contains("cannot decode") && r.err.contains("nested more than 256"),
                    "{what}: {}",
                    r.err
                );
                assert_eq!(rr.code, 1, "{what}: {}", rr.err);
                assert!(
                    rr.err.contains("stops before committed entry"),
                    "{what}: {}",
                    rr.err
                );
                let c = run(&["check", d]);
                assert!(c.out.contains("wal-txn-too-deep"), "{what}: {}", c.out);
            }
            let _ = std::fs::remove_dir_all(&out);
            // What etcd applies: the killed member's own name and peer URL.
            let Some(bin) = require(Need::EtcdFor(&v)) else {
                continue;
            };
            let served = etcd_serves(&bin, &dir, "/nested");
            assert_eq!(served.as_deref(), Some("v"), "{what}: etcd applies it");
        }
    }
}

#[test]
fn a_committed_entry_that_is_not_a_request_stops_the_replay_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let v = repo().join("testdata/fixtures/v3.5.1");
    let dir = tmp.path().join("garbage");
    copy_tree(&extracted_dir(&v, "killed").join("killed"), &dir);
    // Field 1 with wire type 7: neither an InternalRaftRequest nor a v2 Request.
    append_committed(&dir.join("member"), vec![0x0f, 0xff, 0xff]);
    let d = dir.to_str().unwrap();
    let out = tmp.path().join("restored");
    let r = run(&["restore", d, "--data-dir", out.to_str().unwrap(), "--force"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    let c = run(&["check", d]);
    assert_eq!(c.code, 1);
    assert!(c.out.contains("wal-bad-payload"), "{}", c.out);
}
