//! WAL segments and .snap files made by real etcd 3.4.23 and 3.5.1, decoded
//! and compared with what the fixture scripts wrote through etcdctl.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use etcd_rescue::snap;
use etcd_rescue::wal::payload::{self, CompareValue, Request};
use etcd_rescue::wal::scan::{EntryAt, Tail};
use etcd_rescue::wal::{self, EntryType, WalDir, WalReport};
use serde_json::Value;

/// Every data dir of a version folder: (scenario, member dir).
fn member_dirs(vdir: &Path) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    for (scenario, subs) in [
        ("single", vec!["single"]),
        ("cluster", vec!["m1", "m2", "m3"]),
        ("killed", vec!["killed"]),
        ("snapcount", vec!["snapcount"]),
    ] {
        let root = extracted_dir(vdir, scenario);
        for s in subs {
            v.push((s.to_string(), root.join(s).join("member")));
        }
    }
    v
}

/// Decoded entries (etcd's view) of a member dir, with the report.
fn decode(member: &Path) -> (WalReport, Vec<(u64, u64, EntryType, payload::Payload)>) {
    let d = WalDir::open(&member.join("wal")).unwrap();
    let mut es: Vec<EntryAt<'_>> = Vec::new();
    let r = wal::scan(&d, wal::ScanOptions { payloads: true }, |e| es.push(*e));
    let out = es
        .iter()
        .filter(|e| e.seen_by_etcd)
        .map(|e| {
            (
                e.entry.term.0,
                e.entry.index.0,
                e.entry.kind,
                payload::decode(&e.entry),
            )
        })
        .collect();
    (r, out)
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

#[test]
fn every_fixture_wal_reads_cleanly_with_its_ids() {
    for vdir in version_dirs() {
        for (name, member) in member_dirs(&vdir) {
            let r = unchanged(&[&member], || decode(&member).0);
            let ctx = format!("{} {name}", vdir.display());
            assert_eq!(r.tail, Tail::Clean, "{ctx}");
            assert!(!r.findings.has_problems(), "{ctx}: {:#?}", r.findings);
            assert!(r.gaps.is_empty(), "{ctx}");
            let m = r.metadata.unwrap_or_else(|| panic!("{ctx}: no metadata"));
            let h = r.hard_state.unwrap();
            // Every committed entry is in the WAL, from index 1.
            assert_eq!(r.entries.first_index.map(|i| i.0), Some(1), "{ctx}");
            assert!(r.entries.last_index.unwrap() >= h.commit, "{ctx}");
            // IDs as etcd reported them while running.
            let scenario = match name.as_str() {
                "m1" | "m2" | "m3" => "cluster",
                s => s,
            };
            let list = vdir.join(format!("{scenario}.expect/member-list.json"));
            let ids: Vec<u64> = if list.is_file() {
                read_json(&list)["members"]
                    .as_array()
                    .map(|a| a.iter().map(|m| u64_of(&m["ID"])).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            let status = read_json(&vdir.join(format!("{scenario}.expect/endpoint-status.json")));
            let st = if status.is_array() {
                status.as_array().unwrap().clone()
            } else {
                vec![status]
            };
            let cluster_id = u64_of(&st[0]["Status"]["header"]["cluster_id"]);
            assert_eq!(m.cluster_id.0, cluster_id, "{ctx}");
            if !ids.is_empty() {
                assert!(ids.contains(&m.node_id.0), "{ctx}: {} not in {ids:?}", m.node_id);
            }
            if scenario != "cluster" {
                assert_eq!(
                    m.node_id.0,
                    u64_of(&st[0]["Status"]["header"]["member_id"]),
                    "{ctx}"
                );
            }
        }
    }
}

/// A txn compare as etcdctl's text: `value("/demo/counter") = "8"`.
fn compare_text(c: &payload::Compare) -> String {
    let v = match &c.against {
        CompareValue::Value(d) => String::from_utf8_lossy(&d.0).into_owned(),
        CompareValue::Version(n) | CompareValue::CreateRevision(n) | CompareValue::ModRevision(n) => {
            n.to_string()
        }
        CompareValue::Lease(n) => n.to_string(),
        CompareValue::None => "0".into(),
    };
    format!(
        "{}(\"{}\") {} \"{v}\"",
        c.target,
        String::from_utf8_lossy(&c.key.0),
        c.result
    )
}

fn bytes_of(o: &Value, field: &str) -> Vec<u8> {
    match o.get(format!("{field}_hex")).and_then(Value::as_str) {
        Some(h) => (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect(),
        None => o[field].as_str().unwrap_or("").as_bytes().to_vec(),
    }
}

fn op_matches(o: &Value, r: &Request) -> bool {
    match (o["op"].as_str().unwrap(), r) {
        ("put", Request::Put { key, value, .. }) => {
            key.0 == bytes_of(o, "key") && value.0 == bytes_of(o, "value")
        }
        ("del", Request::DeleteRange { key, .. }) => key.0 == bytes_of(o, "key"),
        _ => false,
    }
}

#[test]
fn single_entries_are_what_etcdctl_wrote() {
    for vdir in version_dirs() {
        let member = extracted_dir(&vdir, "single").join("single/member");
        let (_, entries) = decode(&member);
        let ops: Vec<Value> = std::fs::read_to_string(vdir.join("single.expect/ops.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|o: &Value| o["op"] != "snapshot-save")
            .collect();
        // The client writes, in order: everything but raft/server bookkeeping.
        let writes: Vec<&payload::Payload> = entries
            .iter()
            .map(|e| &e.3)
            .filter(|p| {
                !matches!(
                    p.request,
                    Request::Noop
                        | Request::ConfChange(_)
                        | Request::V2 { .. }
                        | Request::ClusterVersion { .. }
                        | Request::MemberAttr { .. }
                        | Request::Alarm { .. }
                )
            })
            .collect();
        assert_eq!(writes.len(), ops.len(), "{}: {writes:#?}", vdir.display());
        for (o, p) in ops.iter().zip(&writes) {
            let r = &p.request;
            let ctx = format!("{}: op {o} vs entry {r:?}", vdir.display());
            match o["op"].as_str().unwrap() {
                "put" => {
                    assert!(op_matches(o, r), "{ctx}");
                    let Request::Put { lease, .. } = r else {
                        unreachable!()
                    };
                    assert_eq!(*lease as u64, o["lease_id"].as_u64().unwrap_or(0), "{ctx}");
                }
                "del" => {
                    let Request::DeleteRange { key, range_end, .. } = r else {
                        panic!("{ctx}")
                    };
                    assert_eq!(key.0, bytes_of(o, "key"), "{ctx}");
                    if o["prefix"] == true {
                        let mut end = key.0.clone();
                        *end.last_mut().unwrap() += 1;
                        assert_eq!(range_end.as_ref().map(|d| d.0.clone()), Some(end), "{ctx}");
                    } else {
                        assert!(range_end.is_none(), "{ctx}");
                    }
                }
                "txn" => {
                    let Request::Txn {
                        compares,
                        success,
                        failure,
                    } = r
                    else {
                        panic!("{ctx}")
                    };
                    let want: Vec<String> = o["compares"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_string())
                        .collect();
                    let got: Vec<String> = compares.iter().map(compare_text).collect();
                    assert_eq!(got, want, "{ctx}");
                    for (branch, reqs) in [("success", success), ("failure", failure)] {
                        let want = o[branch].as_array().unwrap();
                        assert_eq!(want.len(), reqs.len(), "{ctx}");
                        for (w, g) in want.iter().zip(reqs) {
                            assert!(op_matches(w, g), "{ctx}: {w} vs {g:?}");
                        }
                    }
                }
                "lease-grant" => {
                    assert_eq!(
                        r,
                        &Request::LeaseGrant {
                            id: o["lease_id"].as_i64().unwrap(),
                            ttl: o["ttl"].as_i64().unwrap()
                        },
                        "{ctx}"
                    );
                }
                "lease-revoke" => assert_eq!(
                    r,
                    &Request::LeaseRevoke {
                        id: o["lease_id"].as_i64().unwrap()
                    },
                    "{ctx}"
                ),
                "compact" => assert_eq!(
                    r,
                    &Request::Compaction {
                        revision: o["rev"].as_i64().unwrap(),
                        physical: true
                    },
                    "{ctx}"
                ),
                "user-add" => assert!(
                    matches!(r, Request::UserAdd { name, .. } if name == o["user"].as_str().unwrap()),
                    "{ctx}"
                ),
                "role-add" => assert!(
                    matches!(r, Request::RoleAdd { name } if name == o["role"].as_str().unwrap()),
                    "{ctx}"
                ),
                "user-grant-role" => assert!(
                    matches!(r, Request::UserGrantRole { user, role } if user == o["user"].as_str().unwrap() && role == o["role"].as_str().unwrap()),
                    "{ctx}"
                ),
                "role-grant-permission" => {
                    let Request::RoleGrantPermission {
                        name,
                        perm,
                        key,
                        range_end,
                    } = r
                    else {
                        panic!("{ctx}")
                    };
                    assert_eq!(name, o["role"].as_str().unwrap(), "{ctx}");
                    assert_eq!(perm, o["perm"].as_str().unwrap(), "{ctx}");
                    assert_eq!(key.0, o["key"].as_str().unwrap().as_bytes(), "{ctx}");
                    assert_eq!(
                        range_end.as_ref().map(|d| d.0.as_slice()),
                        Some(&b"/demo0"[..]),
                        "{ctx}"
                    );
                }
                other => panic!("{ctx}: unexpected op {other}"),
            }
        }
        // Passwords never reach the model.
        let j = serde_json::to_string(&writes).unwrap();
        assert!(!j.contains("alicepw") && !j.contains("rootpw"));
    }
}

#[test]
fn snapcount_spans_two_segments_and_six_snapshots() {
    for vdir in version_dirs() {
        let root = extracted_dir(&vdir, "snapcount");
        let member = root.join("snapcount/member");
        let (r, entries) = unchanged(&[&member], || decode(&member));
        let ctx = vdir.display().to_string();
        assert_eq!(r.segments.len(), 2, "{ctx}");
        // The second segment's name index is the index after the first's last entry,
        // and the CRC chain carried across (no finding).
        assert_eq!(r.segments[1].seq, 1);
        assert_eq!(
            r.segments[1].name_index.0,
            r.segments[0].last_entry.unwrap().0 + 1,
            "{ctx}"
        );
        assert_eq!(r.segments[1].first_entry, Some(r.segments[1].name_index), "{ctx}");
        // Records of the preallocated first segment fill it to its cut.
        assert_eq!(r.segments[0].valid_end, r.segments[0].size, "{ctx}");
        // Snapshot records: {0,0} and one per .snap file, at the same term and index.
        let snaps = snap::scan(&member.join("snap"));
        assert_eq!(snaps.snaps.len(), 6, "{ctx}");
        let marks: Vec<(u64, u64)> = r
            .snapshots
            .iter()
            .map(|s| (s.mark.index.0, s.mark.term.0))
            .collect();
        assert_eq!(marks[0], (0, 0));
        for f in &snaps.snaps {
            let s = f.snapshot.as_ref().unwrap_or_else(|| panic!("{ctx}: {f:?}"));
            let n = f.name.unwrap();
            assert_eq!((n.index, n.term), (s.index, s.term), "{ctx}");
            assert!(marks.contains(&(s.index.0, s.term.0)), "{ctx}: {marks:?}");
        }
        // The 48 big values, in order, each one repeated letter.
        let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv";
        let big: Vec<&Vec<u8>> = entries
            .iter()
            .filter_map(|e| match &e.3.request {
                Request::Put { key, value, .. } if key.0 == b"/snap/big" => Some(&value.0),
                _ => None,
            })
            .collect();
        assert_eq!(big.len(), 48, "{ctx}");
        for (v, c) in big.iter().zip(chars) {
            assert_eq!(v.len(), 1_500_000);
            assert!(v.iter().all(|b| b == c));
        }
        // /snap/k000..k299 as get.json shows them.
        let (_, kvs) = etcdctl_get(&vdir.join("snapcount.expect/get.json"));
        let puts: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .filter_map(|e| match &e.3.request {
                Request::Put { key, value, .. } if key.0.starts_with(b"/snap/k") => {
                    Some((key.0.clone(), value.0.clone()))
                }
                _ => None,
            })
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = kvs.into_iter().map(|k| (k.key, k.value)).collect();
        assert_eq!(puts, want, "{ctx}");
    }
}

#[test]
fn snap_files_hold_the_membership() {
    for vdir in version_dirs() {
        let member = extracted_dir(&vdir, "snapcount").join("snapcount/member");
        let status = read_json(&vdir.join("snapcount.expect/endpoint-status.json"));
        let st = if status.is_array() {
            status[0].clone()
        } else {
            status
        };
        let id = u64_of(&st["Status"]["header"]["member_id"]);
        // The db's record of the member, to compare with the v2 store's.
        let db = etcd_rescue::datadir::inspect(&member, None, Default::default())
            .unwrap()
            .db;
        let m = db.member(id).expect("the member in the db").clone();
        let d = unchanged(&[&member], || snap::scan(&member.join("snap")));
        assert!(d.has_db && d.findings.items().is_empty(), "{:?}", d.findings);
        for f in &d.snaps {
            let s = f.snapshot.as_ref().unwrap();
            assert_eq!(
                s.conf_state.voters.iter().map(|v| v.0).collect::<Vec<_>>(),
                vec![id]
            );
            let v2 = s.v2.as_ref().unwrap();
            assert_eq!(v2.members.len(), 1);
            assert_eq!(v2.members[0].id.0, id);
            assert_eq!(v2.members[0].name, m.name);
            assert_eq!(v2.members[0].peer_urls, m.peer_urls);
            // The v2 store always has the published client URLs; 3.4's members
            // bucket never gets them (it publishes through the v2 store only).
            assert!(!v2.members[0].client_urls.is_empty());
            assert!(v2.cluster_version.as_deref().is_some_and(|v| v.starts_with("3.")));
            assert!(v2.removed.is_empty());
        }
        // The same through the bytes API, newest first.
        let newest = member.join("snap").join(&d.snaps[0].file);
        let s = snap::read(&std::fs::read(&newest).unwrap()).unwrap();
        assert_eq!(s.index, d.snaps[0].snapshot.as_ref().unwrap().index);
    }
}

#[test]
fn cluster_members_share_one_log() {
    for vdir in version_dirs() {
        let root = extracted_dir(&vdir, "cluster");
        let members = read_json(&vdir.join("cluster.expect/member-list.json"));
        let mut ids: Vec<u64> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| u64_of(&m["ID"]))
            .collect();
        ids.sort();
        let mut clusters = Vec::new();
        for m in ["m1", "m2", "m3"] {
            let (r, entries) = decode(&root.join(m).join("member"));
            clusters.push(r.metadata.unwrap().cluster_id);
            // The three bootstrap conf changes add exactly the three members.
            let mut added: Vec<u64> = entries
                .iter()
                .filter_map(|e| match &e.3.request {
                    Request::ConfChange(c) => Some(c.node_id.0),
                    _ => None,
                })
                .collect();
            added.sort();
            assert_eq!(added, ids, "{m}");
            // 50 puts, 5 overwrites, 1 delete.
            let puts = entries
                .iter()
                .filter(
                    |e| matches!(&e.3.request, Request::Put { key, .. } if key.0.starts_with(b"/cluster/")),
                )
                .count();
            let dels: Vec<_> = entries
                .iter()
                .filter_map(|e| match &e.3.request {
                    Request::DeleteRange { key, .. } => Some(key.to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!((puts, dels), (55, vec!["\"/cluster/k49\"".to_string()]), "{m}");
        }
        assert!(clusters.windows(2).all(|w| w[0] == w[1]));
    }
}

#[test]
fn killed_wal_holds_the_writes_its_db_lacks() {
    for vdir in version_dirs() {
        let member = extracted_dir(&vdir, "killed").join("killed/member");
        let report = unchanged(&[&member], || {
            etcd_rescue::datadir::inspect(&member, None, Default::default()).unwrap()
        });
        let ci = report.db.consistent_index.unwrap();
        let (r, entries) = decode(&member);
        assert!(r.tmp_files.contains(&"0.tmp".to_string()));
        let after: Vec<&Request> = entries
            .iter()
            .filter(|e| e.1 > ci)
            .map(|e| &e.3.request)
            .filter(|r| !matches!(r, Request::Noop))
            .collect();
        let mut want = Vec::new();
        for i in 10..20 {
            want.push(format!("put /killed/k{i:02}"));
        }
        want.push("delete-range /killed/k03".into());
        want.push("txn".into());
        let got: Vec<String> = after
            .iter()
            .map(|r| match r {
                Request::Put { key, .. } | Request::DeleteRange { key, .. } => {
                    format!("{} {}", r.kind(), String::from_utf8_lossy(&key.0))
                }
                other => other.kind().to_string(),
            })
            .collect();
        assert_eq!(got, want, "{}", vdir.display());
        // db revision 11 + 12 writes = the acknowledged revision 23.
        let (ack, _) = etcdctl_get(&vdir.join("killed.expect/get.json"));
        assert_eq!(report.db.revision.unwrap() + got.len() as i64, ack);
    }
}

#[test]
fn wal_command_json_lines_and_filters() {
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let root = extracted_dir(&vdir, "single");
    let dir = root.join("single");
    let d = dir.to_str().unwrap();
    let r = unchanged(&[&dir], || run(&["wal", "-o", "json", d]));
    assert_eq!(r.code, 0, "{}", r.err);
    let lines: Vec<Value> = r.out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["record"], "metadata");
    assert_eq!(lines[1]["record"], "hardState");
    assert_eq!(lines[2]["record"], "snapshot");
    assert_eq!(lines.last().unwrap()["record"], "summary");
    let entries: Vec<&Value> = lines.iter().filter(|l| l["record"] == "entry").collect();
    assert_eq!(
        entries.len() as u64,
        lines.last().unwrap()["shown"].as_u64().unwrap()
    );
    // The non-UTF-8 key and value come out as base64.
    let bin = entries
        .iter()
        .find(|e| e["key"]["bytes"].is_string())
        .expect("an entry with a binary key");
    assert_eq!(bin["key"]["bytes"], "L2RlbW8vYmluL//+");
    assert_eq!(bin["value"]["bytes"], "AAH/");
    assert_eq!(entries[0]["op"], "conf-change");
    // Filters: the counter's puts, by prefix and type; an index window.
    let r = run(&[
        "wal",
        "-o",
        "json",
        "--type",
        "IRRPut",
        "--prefix",
        "/demo/counter",
        d,
    ]);
    let vals: Vec<String> = r
        .out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["record"] == "entry")
        .map(|l| l["value"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(vals, (1..=11).map(|i| i.to_string()).collect::<Vec<_>>());
    let r = run(&["wal", "--start-index", "10", "--end-index", "12", d]);
    assert!(r.out.contains("3 entries shown"), "{}", r.out);
    let r = run(&["wal", "--type", "nonsense", d]);
    assert_eq!(r.code, 2);
    // The member dir and the WAL dir work too.
    for p in [dir.join("member"), dir.join("member/wal")] {
        let r = run(&["wal", "--type", "txn", p.to_str().unwrap()]);
        assert_eq!(r.code, 0);
        assert!(r.out.contains("17 entries shown"), "{}", r.out);
    }
}
