//! The `-o json` output of every command, checked against its JSON Schema in
//! `docs/schemas/` (with the validator of `tests/common/schema.rs`): each
//! command runs over good snapshots, member dirs, archives and damaged
//! copies, and over crafted inputs that make the rarer shapes appear (a WAL
//! holding every kind of request, a db with a storage version and an alarm,
//! a Kubernetes object with unknown protobuf fields). Then every schema
//! file must have been used, and every property a schema declares at the
//! top level of a document must have appeared in a real output: the
//! schemas describe no field that never exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::schema::{SchemaError, Schemas, top_keys};
use common::walwrite::{records, write_segments};
use common::*;
use etcd_rescue::pb::{authpb, etcdserverpb as pb, membershippb, mvccpb, raftpb};
use prost::Message;
use serde_json::{Value, json};

fn schema_dir() -> PathBuf {
    repo().join("docs/schemas")
}

fn listed(errs: &[SchemaError]) -> String {
    errs.iter()
        .take(20)
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn excerpt(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap();
    s.chars().take(1500).collect()
}

/// Runs commands and validates what they print, remembering per schema
/// file the top-level keys seen.
struct Checker {
    schemas: Schemas,
    seen: BTreeMap<String, BTreeSet<String>>,
    docs: usize,
}

impl Checker {
    fn new() -> Checker {
        Checker {
            schemas: Schemas::load(&schema_dir()),
            seen: BTreeMap::new(),
            docs: 0,
        }
    }

    /// Runs `args` (which must give the exit code `code` and print on
    /// stdout) and validates stdout against `<schema>.schema.json`, each
    /// line for `wal` (JSON Lines). Returns the documents.
    fn check(&mut self, schema: &str, code: i32, args: &[&str]) -> Vec<Value> {
        let r = run(args);
        assert_eq!(
            r.code, code,
            "{args:?}: exit code {}\nstdout: {}\nstderr: {}",
            r.code, r.out, r.err
        );
        assert!(
            !r.out.trim().is_empty(),
            "{args:?} printed nothing on stdout (stderr: {})",
            r.err
        );
        let parse = |s: &str| -> Value {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {s}"))
        };
        let docs: Vec<Value> = if schema == "wal" {
            r.out.lines().map(parse).collect()
        } else {
            vec![parse(&r.out)]
        };
        for d in &docs {
            self.validate(&format!("{schema}.schema.json"), d, args);
            // An error document is also checked against the error schema.
            if d.get("exitCode").is_some() {
                self.validate("error.schema.json", d, args);
            }
        }
        docs
    }

    fn validate(&mut self, file: &str, doc: &Value, args: &[&str]) {
        let errs = self.schemas.validate(file, doc);
        assert!(
            errs.is_empty(),
            "{args:?}: the output does not match {file}:\n{}\noutput: {}",
            listed(&errs),
            excerpt(doc)
        );
        self.seen
            .entry(file.to_string())
            .or_default()
            .extend(top_keys(doc));
        self.docs += 1;
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Copies a member's data dir, keeping of each WAL segment (and
/// preallocated `.tmp` file) only its written part and a few KiB of the
/// zeros after it: the real files are 64 MB, mostly zeros.
fn copy_member(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_member(&e.path(), &to);
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wal") || name.ends_with(".tmp") {
            let bytes = std::fs::read(e.path()).unwrap();
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let keep = (end.next_multiple_of(8) + 4096).min(bytes.len());
            std::fs::write(&to, &bytes[..keep]).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Rewrites the bbolt image of `src` into `dst` with etcd-rescue's writer,
/// letting `edit` change each bucket's records first.
fn rewrite_db(src: &Path, dst: &Path, edit: impl Fn(&[u8], &mut BTreeMap<Vec<u8>, Vec<u8>>)) {
    use etcd_rescue::bolt::Db;
    use etcd_rescue::bolt::writer::Writer;
    let bytes = std::fs::read(src).unwrap();
    let (db, _) = Db::open(etcd_rescue::mvcc::trailer::image(&bytes)).unwrap();
    let names: Vec<Vec<u8>> = db.root().iter().map(|e| e.unwrap().key.to_vec()).collect();
    let file = std::fs::File::create(dst).unwrap();
    let mut w = Writer::new(std::io::BufWriter::new(file), 4096, 0.9, 7).unwrap();
    for name in &names {
        let b = db.bucket(name).unwrap().unwrap();
        let mut items: BTreeMap<Vec<u8>, Vec<u8>> = b
            .iter()
            .map(|e| {
                let e = e.unwrap();
                (e.key.to_vec(), e.value.to_vec())
            })
            .collect();
        edit(name, &mut items);
        w.bucket(name, b.sequence(), &items).unwrap();
    }
    let (_, out) = w.finish().unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
}

/// A raw db with what etcd 3.6 and an alarm leave in it: a storage version
/// in `meta` and a NOSPACE alarm.
fn db_with_version_and_alarm(src: &Path, dst: &Path, member: u64) {
    use etcd_rescue::mvcc::schema::{Alarm, encode_alarm, meta_keys};
    let alarm = encode_alarm(&Alarm {
        member_id: member,
        alarm: "NOSPACE".into(),
    })
    .unwrap();
    rewrite_db(src, dst, |name, items| match name {
        b"meta" => {
            items.insert(meta_keys::STORAGE_VERSION.to_vec(), b"3.6.0".to_vec());
        }
        b"alarm" => {
            items.insert(alarm.clone(), Vec::new());
        }
        _ => {}
    });
}

/// The length-delimited fields of a protobuf message (all the fields of a
/// Kubernetes `runtime.Unknown` are).
fn fields(mut b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let read = |b: &mut &[u8]| -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let x = b[0];
            *b = &b[1..];
            v |= u64::from(x & 0x7f) << shift;
            if x < 0x80 {
                return v;
            }
            shift += 7;
        }
    };
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = read(&mut b);
        assert_eq!(tag & 7, 2, "a length-delimited field");
        let len = read(&mut b) as usize;
        out.push((tag >> 3, b[..len].to_vec()));
        b = &b[len..];
    }
    out
}

/// A Kubernetes snapshot whose ConfigMap `default/app-config` carries a
/// protobuf field newer than any schema (field 99).
fn k8s_with_unknown_field(src: &Path, dst: &Path) {
    let key = b"/registry/configmaps/default/app-config";
    rewrite_db(src, dst, |name, items| {
        if name != b"key" {
            return;
        }
        for v in items.values_mut() {
            let mut kv = mvccpb::KeyValue::decode(v.as_slice()).unwrap();
            if kv.key != key {
                continue;
            }
            let body = kv.value.strip_prefix(b"k8s\0").expect("a protobuf value");
            let mut unknown = b"k8s\0".to_vec();
            for (n, mut bytes) in fields(body) {
                if n == 2 {
                    bytes.extend_from_slice(&[0x98, 0x06, 0x01]); // field 99, varint 1
                }
                unknown.extend(field(n, &bytes));
            }
            kv.value = unknown;
            *v = kv.encode_to_vec();
        }
    });
}

/// An `InternalRaftRequest` whose txn nests `depth` levels.
fn nested_txn(depth: usize) -> Vec<u8> {
    let put = [field(1, b"/deep"), field(2, b"v")].concat(); // PutRequest
    let mut txn = field(2, &field(2, &put)); // success: [RequestOp{request_put}]
    for _ in 1..depth {
        txn = field(2, &field(4, &txn)); // success: [RequestOp{request_txn}]
    }
    txn = field(6, &txn);
    txn
}

/// The entries of the crafted WAL: every kind of request `wal` decodes, as
/// (entry type, data).
fn every_request() -> Vec<(i32, Vec<u8>)> {
    use pb::compare::TargetUnion as T;
    use pb::request_op::Request as Op;
    let header = |id: u64| {
        Some(pb::RequestHeader {
            id,
            username: b"root".to_vec(),
            auth_revision: 3,
        })
    };
    let irr = |f: &dyn Fn(&mut pb::InternalRaftRequest)| {
        let mut r = pb::InternalRaftRequest {
            header: header(0x100),
            ..Default::default()
        };
        f(&mut r);
        (0, r.encode_to_vec())
    };
    let put = pb::PutRequest {
        key: b"/crafted/a".to_vec(),
        value: vec![0xff, 0xfe],
        lease: 0,
        prev_kv: true,
        ignore_value: true,
        ignore_lease: true,
    };
    let range = pb::RangeRequest {
        key: b"/crafted/".to_vec(),
        range_end: b"/crafted0".to_vec(),
        limit: 10,
        revision: 5,
        ..Default::default()
    };
    let compare = |target: i32, result: i32, u: Option<T>| pb::Compare {
        result,
        target,
        key: b"/crafted/a".to_vec(),
        range_end: if target == 3 {
            b"/crafted/b".to_vec()
        } else {
            Vec::new()
        },
        target_union: u,
    };
    let txn = pb::TxnRequest {
        compare: vec![
            compare(0, 0, Some(T::Version(1))),
            compare(1, 1, Some(T::CreateRevision(2))),
            compare(2, 2, Some(T::ModRevision(3))),
            compare(3, 3, Some(T::Value(b"x".to_vec()))),
            compare(4, 0, Some(T::Lease(4))),
            compare(0, 0, None),
        ],
        success: vec![
            pb::RequestOp {
                request: Some(Op::RequestPut(put.clone())),
            },
            pb::RequestOp {
                request: Some(Op::RequestRange(range.clone())),
            },
            pb::RequestOp { request: None },
        ],
        failure: vec![pb::RequestOp {
            request: Some(Op::RequestDeleteRange(pb::DeleteRangeRequest {
                key: b"/crafted/a".to_vec(),
                range_end: Vec::new(),
                prev_kv: false,
            })),
        }],
    };
    let name = |n: &str| n.as_bytes().to_vec();
    let v2 = pb::Request {
        id: Some(0x200),
        method: Some(b"PUT".to_vec()),
        path: Some(b"/1/crafted".to_vec()),
        val: Some(b"v".to_vec()),
        dir: Some(true),
        recursive: Some(true),
        expiration: Some(1_700_000_000_000_000_000),
        time: Some(1_700_000_000_000_000_000),
        ..Default::default()
    };
    let promote = raftpb::ConfChange {
        id: Some(7),
        r#type: Some(0),
        node_id: Some(5),
        context: Some(
            br#"{"ID":5,"name":"m5","peerURLs":["http://m5:2380"],"isLearner":false,"isPromote":true}"#
                .to_vec(),
        ),
    };
    let other_context = raftpb::ConfChange {
        id: Some(8),
        r#type: Some(3),
        node_id: Some(6),
        context: Some(b"not member JSON".to_vec()),
    };
    let v2_change = raftpb::ConfChangeV2 {
        transition: Some(1),
        changes: vec![raftpb::ConfChangeSingle {
            r#type: Some(1),
            node_id: Some(6),
        }],
        context: Some(b"ctx".to_vec()),
    };
    vec![
        irr(&|r| r.put = Some(put.clone())),
        irr(&|r| {
            r.delete_range = Some(pb::DeleteRangeRequest {
                key: b"/crafted/a".to_vec(),
                range_end: b"/crafted/b".to_vec(),
                prev_kv: true,
            })
        }),
        irr(&|r| r.range = Some(range.clone())),
        irr(&|r| r.txn = Some(txn.clone())),
        irr(&|r| {
            r.lease_checkpoint = Some(pb::LeaseCheckpointRequest {
                checkpoints: vec![pb::LeaseCheckpoint {
                    id: 1,
                    remaining_ttl: 30,
                }],
            })
        }),
        irr(&|r| {
            r.alarm = Some(pb::AlarmRequest {
                action: 1,
                member_id: 5,
                alarm: 1,
            })
        }),
        irr(&|r| r.auth_enable = Some(pb::AuthEnableRequest {})),
        irr(&|r| r.auth_disable = Some(pb::AuthDisableRequest {})),
        irr(&|r| r.auth_status = Some(pb::AuthStatusRequest {})),
        irr(&|r| {
            r.authenticate = Some(pb::InternalAuthenticateRequest {
                name: name("alice"),
                password: name("secret"),
                simple_token: name("token"),
            })
        }),
        irr(&|r| {
            r.auth_user_add = Some(pb::AuthUserAddRequest {
                name: name("bob"),
                options: Some(authpb::UserAddOptions { no_password: true }),
                ..Default::default()
            })
        }),
        irr(&|r| r.auth_user_delete = Some(pb::AuthUserDeleteRequest { name: name("bob") })),
        irr(&|r| r.auth_user_get = Some(pb::AuthUserGetRequest { name: name("bob") })),
        irr(&|r| {
            r.auth_user_change_password = Some(pb::AuthUserChangePasswordRequest {
                name: name("bob"),
                ..Default::default()
            })
        }),
        irr(&|r| {
            r.auth_user_grant_role = Some(pb::AuthUserGrantRoleRequest {
                user: name("bob"),
                role: name("reader"),
            })
        }),
        irr(&|r| {
            r.auth_user_revoke_role = Some(pb::AuthUserRevokeRoleRequest {
                name: name("bob"),
                role: name("reader"),
            })
        }),
        irr(&|r| r.auth_user_list = Some(pb::AuthUserListRequest {})),
        irr(&|r| r.auth_role_list = Some(pb::AuthRoleListRequest {})),
        irr(&|r| r.auth_role_add = Some(pb::AuthRoleAddRequest { name: name("writer") })),
        irr(&|r| r.auth_role_delete = Some(pb::AuthRoleDeleteRequest { role: name("writer") })),
        irr(&|r| r.auth_role_get = Some(pb::AuthRoleGetRequest { role: name("writer") })),
        irr(&|r| {
            r.auth_role_grant_permission = Some(pb::AuthRoleGrantPermissionRequest {
                name: name("writer"),
                perm: Some(authpb::Permission {
                    perm_type: 2,
                    key: name("/crafted/"),
                    range_end: name("/crafted0"),
                }),
            })
        }),
        irr(&|r| {
            r.auth_role_revoke_permission = Some(pb::AuthRoleRevokePermissionRequest {
                role: name("writer"),
                key: name("/crafted/"),
                range_end: name("/crafted0"),
            })
        }),
        irr(&|r| r.cluster_version_set = Some(membershippb::ClusterVersionSetRequest { ver: name("3.5.0") })),
        irr(&|r| {
            r.cluster_member_attr_set = Some(membershippb::ClusterMemberAttrSetRequest {
                member_id: 5,
                member_attributes: Some(membershippb::Attributes {
                    name: name("m5"),
                    client_urls: vec![name("http://m5:2379")],
                }),
            })
        }),
        irr(&|r| {
            r.downgrade_info_set = Some(membershippb::DowngradeInfoSetRequest {
                enabled: true,
                ver: name("3.4.0"),
            })
        }),
        irr(&|_| {}),
        (0, v2.encode_to_vec()),
        (0, Vec::new()),
        (0, vec![0xff, 0xff]),
        (0, nested_txn(300)),
        (1, promote.encode_to_vec()),
        (1, other_context.encode_to_vec()),
        (2, v2_change.encode_to_vec()),
        (7, b"?".to_vec()),
    ]
}

/// A WAL dir: the real records of `member`'s WAL, then an entry of every
/// kind, then an entry that replaces the last few (a new leader's), and a
/// HardState committing it all.
fn crafted_wal(member: &Path, dst: &Path) {
    let mut recs = records(&member.join("wal"));
    let (last, term) = recs
        .iter()
        .filter(|(t, _)| *t == 2)
        .map(|(_, d)| etcd_rescue::wal::Entry::parse(d).unwrap())
        .map(|e| (e.index.0, e.term.0))
        .max()
        .unwrap();
    let vote = recs
        .iter()
        .rev()
        .find(|(t, _)| *t == 3)
        .map(|(_, d)| raftpb::HardState::decode(d.as_slice()).unwrap().vote)
        .unwrap();
    let mut index = last;
    let entry = |index: u64, term: u64, (kind, data): (i32, Vec<u8>)| {
        raftpb::Entry {
            term: Some(term),
            index: Some(index),
            r#type: Some(kind),
            data: Some(data),
        }
        .encode_to_vec()
    };
    for e in every_request() {
        index += 1;
        recs.push((2, entry(index, term, e)));
    }
    // A new leader overwrites the last two entries.
    index -= 1;
    let put = pb::InternalRaftRequest {
        put: Some(pb::PutRequest {
            key: b"/crafted/new-leader".to_vec(),
            value: b"1".to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    };
    recs.push((2, entry(index, term + 1, (0, put.encode_to_vec()))));
    let hs = raftpb::HardState {
        term: Some(term + 1),
        vote,
        commit: Some(index),
    };
    recs.push((3, hs.encode_to_vec()));
    write_segments(dst, &recs, &[]);
}

/// Flips the byte at `at` of the file `p`.
fn flip(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    b[at] ^= 0xff;
    std::fs::write(p, b).unwrap();
}

/// The only segment of a member dir's WAL.
fn segment(member: &Path) -> PathBuf {
    let segs = wal_segments(member);
    assert_eq!(segs.len(), 1, "{}", member.display());
    segs[0].clone()
}

#[test]
fn every_command_output_matches_its_schema() {
    let mut c = Checker::new();
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name);
    let v35 = repo().join("testdata/fixtures/v3.5.1");
    let v34 = repo().join("testdata/fixtures/v3.4.23");
    let k8s = repo().join("testdata/k8s");

    // Files: a snapshot, the same gzipped, truncated, with flipped bytes,
    // and something that is not etcd data.
    let good = v35.join("single.snapshot.db");
    let good_bytes = std::fs::read(&good).unwrap();
    let (gz, trunc, flipped, text) = (t("good.db.gz"), t("trunc.db"), t("flip.db"), t("notes.txt"));
    std::fs::write(&gz, gzip(&good_bytes)).unwrap();
    std::fs::write(&trunc, &good_bytes[..50_000]).unwrap();
    let mut b = good_bytes.clone();
    for at in [4096 * 4 + 100, 4096 * 5 + 200, b.len() - 5] {
        b[at] ^= 0xff;
    }
    std::fs::write(&flipped, &b).unwrap();
    std::fs::write(&text, "hello\n").unwrap();
    let crafted = t("crafted.db");
    db_with_version_and_alarm(&good, &crafted, 0xc6a3_9a9c_6d50_758b);
    let k8s_crafted = t("k8s-crafted.db");
    k8s_with_unknown_field(&k8s.join("objects.snapshot.db"), &k8s_crafted);

    // Member dirs, and copies with a torn WAL, a corrupt WAL, a damaged db.
    let single = extracted_dir(&v35, "single").join("single");
    let cluster = extracted_dir(&v35, "cluster");
    let (m1, m2, m3) = (cluster.join("m1"), cluster.join("m2"), cluster.join("m3"));
    let killed34 = extracted_dir(&v34, "killed").join("killed");
    let killed35 = extracted_dir(&v35, "killed").join("killed");
    let snapcount34 = extracted_dir(&v34, "snapcount").join("snapcount");
    let snapcount35 = extracted_dir(&v35, "snapcount").join("snapcount");
    let single34 = extracted_dir(&v34, "single").join("single");
    let m1_34 = extracted_dir(&v34, "cluster").join("m1");
    let (torn, corrupt, bad_db, in_place) = (t("torn"), t("corrupt"), t("bad-db"), t("in-place"));
    for d in [&torn, &corrupt, &bad_db] {
        copy_member(&single, d);
    }
    copy_member(&m1, &in_place);
    let torn_seg = segment(&torn.join("member"));
    let bytes = std::fs::read(&torn_seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    std::fs::write(&torn_seg, &bytes[..end - 30]).unwrap();
    flip(&segment(&corrupt.join("member")), 30_000);
    flip(&bad_db.join("member/snap/db"), 4096 * 4 + 100);
    let wal_dir = t("crafted-wal");
    crafted_wal(&single.join("member"), &wal_dir);
    let snap_file = std::fs::read_dir(snapcount35.join("member/snap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "snap"))
        .unwrap();
    let tgz35 = v35.join("single.datadir.tar.gz");
    let tgz34 = v34.join("killed.datadir.tar.gz");
    let enc = k8s.join("encryption-config.yaml");
    let (objects, apply) = (k8s.join("objects.snapshot.db"), k8s.join("apply.snapshot.db"));
    let out = |n: &str| t(n).to_str().unwrap().to_string();

    // status
    for p in [
        &good,
        &gz,
        v34.join("cluster.snapshot.db").as_path(),
        &single,
        &snap_file,
    ] {
        c.check("status", 0, &["status", "-o", "json", s(p)]);
    }
    // The NOSPACE alarm is a warning.
    c.check("status", 1, &["status", "-o", "json", s(&crafted)]);
    c.check(
        "status",
        0,
        &["status", "-o", "json", s(&segment(&single.join("member")))],
    );
    c.check("status", 0, &["status", "-o", "json", "--verify-hash", s(&good)]);
    c.check(
        "status",
        0,
        &["status", "-o", "json", s(&single.join("member/wal"))],
    );
    for p in [&flipped, &trunc] {
        c.check("status", 1, &["status", "-o", "json", s(p)]);
    }
    c.check(
        "status",
        1,
        &["status", "-o", "json", s(&segment(&corrupt.join("member")))],
    );
    c.check("status", 2, &["status", "-o", "json", "/nonexistent"]);

    // check
    c.check("check", 0, &["check", "-o", "json", s(&good), s(&gz), s(&tgz35)]);
    c.check(
        "check",
        0,
        &["check", "-o", "json", s(&single), s(&killed34), s(&snap_file)],
    );
    c.check(
        "check",
        1,
        &["check", "-o", "json", s(&flipped), s(&corrupt), s(&torn)],
    );
    c.check(
        "check",
        2,
        &[
            "check",
            "-o",
            "json",
            s(&good),
            s(&trunc),
            s(&text),
            "/nonexistent",
        ],
    );
    c.check(
        "check",
        2,
        &["check", "-o", "json", "--wal-dir", "x", s(&good), s(&good)],
    );

    // inspect
    c.check("inspect", 0, &["inspect", "-o", "json", s(&m1), s(&m2), s(&m3)]);
    c.check("inspect", 0, &["inspect", "-o", "json", s(&tgz34)]);
    c.check(
        "inspect",
        1,
        &["inspect", "-o", "json", s(&killed34), s(&snapcount34)],
    );
    c.check(
        "inspect",
        1,
        &["inspect", "-o", "json", s(&torn), s(&corrupt), s(&bad_db)],
    );
    c.check(
        "inspect",
        2,
        &["inspect", "-o", "json", s(&good), s(&flipped), "/nonexistent"],
    );
    c.check(
        "inspect",
        2,
        &["inspect", "-o", "json", "--wal-dir", "x", s(&m1), s(&m2)],
    );

    // get
    c.check("get", 0, &["get", "-o", "json", s(&good)]);
    c.check(
        "get",
        0,
        &[
            "get",
            "-o",
            "json",
            s(&single),
            "/demo",
            "--prefix",
            "--limit",
            "3",
        ],
    );
    c.check("get", 0, &["get", "-o", "json", s(&single), "--count-only"]);
    c.check("get", 0, &["get", "-o", "json", s(&good), "/nonexistent-key"]);
    c.check(
        "get",
        0,
        &[
            "get",
            "-o",
            "json",
            s(&v34.join("single.snapshot.db")),
            "/",
            "--prefix",
            "--keys-only",
        ],
    );
    c.check(
        "get",
        0,
        &[
            "get",
            "-o",
            "json",
            s(&objects),
            "/registry/",
            "--prefix",
            "--rev",
            "10",
        ],
    );
    c.check("get", 2, &["get", "-o", "json", s(&good), "--rev", "5"]);

    // history
    c.check(
        "history",
        0,
        &["history", "-o", "json", s(&good), "/demo/counter", "--values"],
    );
    c.check(
        "history",
        0,
        &["history", "-o", "json", s(&killed35), "/demo/counter"],
    );
    c.check("history", 0, &["history", "-o", "json", s(&good), "/nope"]);
    c.check(
        "history",
        0,
        &[
            "history",
            "-o",
            "json",
            s(&objects),
            "/registry/configmaps/default/app-config",
            "--values",
        ],
    );
    c.check("history", 2, &["history", "-o", "json", "/nonexistent", "/x"]);

    // diff
    c.check(
        "diff",
        1,
        &["diff", "-o", "json", s(&good), "--rev-a", "172", "--rev-b", "193"],
    );
    c.check(
        "diff",
        1,
        &[
            "diff",
            "-o",
            "json",
            s(&v34.join("single.snapshot.db")),
            s(&good),
            "--values-only",
        ],
    );
    c.check("diff", 1, &["diff", "-o", "json", s(&good), s(&single)]);
    c.check("diff", 1, &["diff", "-o", "json", s(&objects), s(&apply)]);
    c.check(
        "diff",
        0,
        &[
            "diff",
            "-o",
            "json",
            s(&good),
            s(&good),
            "--prefix",
            "/demo/after/",
        ],
    );
    c.check("diff", 2, &["diff", "-o", "json", s(&good), "/nonexistent"]);

    // hashkv
    c.check("hashkv", 0, &["hashkv", "-o", "json", s(&good)]);
    c.check(
        "hashkv",
        0,
        &["hashkv", "-o", "json", s(&m1), s(&m2), s(&m3), "--rev", "50"],
    );
    c.check(
        "hashkv",
        0,
        &[
            "hashkv",
            "-o",
            "json",
            s(&v34.join("cluster.snapshot.db")),
            s(&single34),
        ],
    );
    c.check("hashkv", 2, &["hashkv", "-o", "json", s(&good), "--rev", "5"]);

    // stats
    c.check("stats", 0, &["stats", "-o", "json", s(&good)]);
    c.check("stats", 0, &["stats", "-o", "json", s(&objects), "--top", "3"]);
    c.check("stats", 0, &["stats", "-o", "json", s(&killed34)]);
    c.check("stats", 2, &["stats", "-o", "json", "/nonexistent"]);

    // verify: a store with a named backup, damaged files, an archive, a raw
    // db (a policy failure with --require-hash), then again from the
    // catalog, then the catalog's history.
    let store = t("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::copy(&good, store.join("etcd-2024-01-02T03-04-05.db")).unwrap();
    for p in [&flipped, &trunc, &gz, &text] {
        std::fs::copy(p, store.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(single.join("member/snap/db"), store.join("raw.db")).unwrap();
    let catalog = out("catalog.redb");
    let verify = |c: &mut Checker, code: i32, extra: &[&str]| {
        let mut a = vec!["verify", "-o", "json", "--catalog", catalog.as_str()];
        a.extend_from_slice(extra);
        c.check("verify", code, &a)
    };
    verify(
        &mut c,
        1,
        &[
            s(&store),
            s(&single),
            "--require-hash",
            "--max-age",
            "1h",
            "--expect-growth",
        ],
    );
    verify(&mut c, 1, &[s(&store)]);
    verify(&mut c, 0, &["--history"]);
    c.check("verify", 0, &["verify", "-o", "json", "--no-catalog", s(&tgz35)]);
    c.check(
        "verify",
        2,
        &["verify", "-o", "json", "--no-catalog", "/nonexistent"],
    );

    // salvage
    c.check(
        "salvage",
        0,
        &["salvage", "-o", "json", s(&good), "--out", &out("s1.db")],
    );
    c.check(
        "salvage",
        1,
        &["salvage", "-o", "json", s(&flipped), "--out", &out("s2.db")],
    );
    c.check(
        "salvage",
        1,
        &[
            "salvage",
            "-o",
            "json",
            s(&trunc),
            "--out",
            &out("s3.db"),
            "--dry-run",
        ],
    );
    c.check(
        "salvage",
        0,
        &["salvage", "-o", "json", s(&killed34), "--out", &out("s4.db")],
    );
    c.check(
        "salvage",
        0,
        &["salvage", "-o", "json", s(&gz), "--out", &out("s5.db")],
    );
    c.check(
        "salvage",
        2,
        &["salvage", "-o", "json", s(&good), "--out", &out("s1.db")],
    );

    // compact
    c.check(
        "compact",
        0,
        &[
            "compact",
            "-o",
            "json",
            s(&good),
            "--rev",
            "head",
            "--out",
            &out("c1.db"),
        ],
    );
    c.check(
        "compact",
        0,
        &[
            "compact",
            "-o",
            "json",
            s(&crafted),
            "--rev",
            "head",
            "--disarm",
            "--out",
            &out("c2.db"),
        ],
    );
    c.check(
        "compact",
        0,
        &[
            "compact",
            "-o",
            "json",
            s(&m1),
            s(&m2),
            s(&m3),
            "--keep-revisions",
            "10",
            "--out",
            &out("c3"),
        ],
    );
    c.check(
        "compact",
        0,
        &[
            "compact",
            "-o",
            "json",
            s(&in_place),
            "--rev",
            "head",
            "--in-place",
        ],
    );
    c.check(
        "compact",
        1,
        &[
            "compact",
            "-o",
            "json",
            s(&flipped),
            "--rev",
            "head",
            "--out",
            &out("c4.db"),
        ],
    );
    c.check(
        "compact",
        2,
        &[
            "compact",
            "-o",
            "json",
            s(&good),
            "--rev",
            "5",
            "--out",
            &out("c5.db"),
        ],
    );
    c.check(
        "compact",
        2,
        &[
            "compact",
            "-o",
            "json",
            s(&good),
            "--rev",
            "head",
            "--out",
            &out("c1.db"),
        ],
    );

    // defrag
    c.check(
        "defrag",
        0,
        &["defrag", "-o", "json", s(&good), "--out", &out("d1.db")],
    );
    c.check(
        "defrag",
        0,
        &[
            "defrag",
            "-o",
            "json",
            "--data-dir",
            s(&killed34),
            "--out",
            &out("d2"),
        ],
    );
    c.check(
        "defrag",
        1,
        &["defrag", "-o", "json", s(&trunc), "--out", &out("d3.db")],
    );
    c.check("defrag", 2, &["defrag", "-o", "json", "--data-dir", s(&killed34)]);

    // restore
    c.check(
        "restore",
        0,
        &["restore", "-o", "json", s(&good), "--data-dir", &out("r1")],
    );
    c.check(
        "restore",
        0,
        &[
            "restore",
            "-o",
            "json",
            s(&good),
            "--data-dir",
            &out("r2"),
            "--dry-run",
        ],
    );
    c.check(
        "restore",
        0,
        &[
            "restore",
            "-o",
            "json",
            s(&v35.join("cluster.snapshot.db")),
            "--all-members",
            &out("all"),
            "--initial-cluster",
            "a=http://a:2380,b=http://b:2380",
            "--bump-revision",
            "100",
            "--mark-compacted",
        ],
    );
    c.check(
        "restore",
        0,
        &["restore", "-o", "json", s(&killed35), "--data-dir", &out("r3")],
    );
    c.check(
        "restore",
        0,
        &["restore", "-o", "json", s(&tgz35), "--data-dir", &out("r4")],
    );
    c.check(
        "restore",
        1,
        &["restore", "-o", "json", s(&flipped), "--data-dir", &out("r5")],
    );
    c.check(
        "restore",
        1,
        &[
            "restore",
            "-o",
            "json",
            s(&bad_db),
            "--data-dir",
            &out("r6"),
            "--skip-hash-check",
        ],
    );
    c.check(
        "restore",
        2,
        &["restore", "-o", "json", s(&text), "--data-dir", &out("r7")],
    );
    c.check(
        "restore",
        2,
        &["restore", "-o", "json", "/nonexistent", "--data-dir", &out("r8")],
    );
    c.check(
        "restore",
        2,
        &["restore", "-o", "json", s(&good), "--data-dir", &out("r1")],
    );

    // force-new-cluster
    c.check(
        "force-new-cluster",
        0,
        &["force-new-cluster", "-o", "json", s(&m1), "--out", &out("f1")],
    );
    c.check(
        "force-new-cluster",
        0,
        &[
            "force-new-cluster",
            "-o",
            "json",
            s(&killed34),
            "--out",
            &out("f2"),
            "--dry-run",
        ],
    );
    c.check(
        "force-new-cluster",
        1,
        &["force-new-cluster", "-o", "json", s(&bad_db), "--out", &out("f3")],
    );
    c.check(
        "force-new-cluster",
        1,
        &[
            "force-new-cluster",
            "-o",
            "json",
            s(&corrupt),
            "--out",
            &out("f4"),
        ],
    );
    c.check(
        "force-new-cluster",
        2,
        &["force-new-cluster", "-o", "json", s(&good), "--out", &out("f5")],
    );

    // wal (the crafted WAL's unknown entry type is an error: etcd panics on it)
    let lines = c.check(
        "wal",
        1,
        &["wal", "-o", "json", s(&wal_dir), "--replaced", "--salvage"],
    );
    let ops: BTreeSet<&str> = lines.iter().filter_map(|l| l["op"].as_str()).collect();
    let kinds: BTreeSet<&str> = etcd_rescue::wal::payload::Request::KINDS
        .iter()
        .copied()
        .collect();
    assert_eq!(ops, kinds, "the crafted WAL holds every kind of request");
    c.check("wal", 0, &["wal", "-o", "json", s(&single)]);
    c.check(
        "wal",
        0,
        &[
            "wal",
            "-o",
            "json",
            s(&single34),
            "--type",
            "put,txn",
            "--prefix",
            "/demo/",
        ],
    );
    c.check("wal", 0, &["wal", "-o", "json", s(&snapcount35)]);
    c.check("wal", 0, &["wal", "-o", "json", s(&tgz34)]);
    c.check(
        "wal",
        0,
        &["wal", "-o", "json", s(&m1_34), "--replaced", "--salvage"],
    );
    c.check("wal", 1, &["wal", "-o", "json", s(&torn)]);
    c.check("wal", 1, &["wal", "-o", "json", s(&corrupt), "--salvage"]);
    c.check("wal", 2, &["wal", "-o", "json", "/nonexistent"]);

    // k8s
    c.check("k8s-ls", 1, &["k8s", "ls", "-o", "json", s(&objects)]);
    c.check(
        "k8s-ls",
        1,
        &["k8s", "ls", "-o", "json", s(&objects), "cm", "--include-deleted"],
    );
    c.check("k8s-ls", 1, &["k8s", "ls", "-o", "json", s(&k8s_crafted)]);
    c.check("k8s-ls", 0, &["k8s", "ls", "-o", "json", s(&apply)]);
    c.check("k8s-ls", 2, &["k8s", "ls", "-o", "json", "/nonexistent"]);
    c.check(
        "k8s-get",
        1,
        &["k8s", "get", "-o", "json", s(&objects), "cm", "-A"],
    );
    c.check(
        "k8s-get",
        0,
        &["k8s", "get", "-o", "json", s(&objects), "cm", "app-config"],
    );
    c.check(
        "k8s-get",
        0,
        &[
            "k8s",
            "get",
            "-o",
            "json",
            s(&objects),
            "secrets",
            "-A",
            "--encryption-config",
            s(&enc),
        ],
    );
    c.check(
        "k8s-get",
        0,
        &["k8s", "get", "-o", "json", s(&objects), "cm", "-n", "nowhere"],
    );
    c.check(
        "k8s-get",
        1,
        &["k8s", "get", "-o", "json", s(&objects), "gizmos", "g1"],
    );
    c.check(
        "k8s-get",
        1,
        &[
            "k8s",
            "get",
            "-o",
            "json",
            s(&objects),
            "cm",
            "kms-config",
            "-n",
            "prod",
        ],
    );
    c.check("k8s-get", 2, &["k8s", "get", "-o", "json", "/nonexistent", "cm"]);
    c.check(
        "k8s-diff",
        1,
        &["k8s", "diff", "-o", "json", s(&objects), s(&apply)],
    );
    c.check(
        "k8s-diff",
        1,
        &["k8s", "diff", "-o", "json", s(&objects), s(&k8s_crafted)],
    );
    c.check(
        "k8s-diff",
        0,
        &["k8s", "diff", "-o", "json", s(&objects), s(&objects)],
    );
    c.check("k8s-diff", 2, &["k8s", "diff", "-o", "json", s(&objects)]);
    c.check(
        "k8s-dump",
        1,
        &[
            "k8s",
            "dump",
            "-o",
            "json",
            s(&k8s_crafted),
            "--out",
            &out("dump1"),
        ],
    );
    c.check(
        "k8s-dump",
        0,
        &[
            "k8s",
            "dump",
            "-o",
            "json",
            s(&apply),
            "--out",
            &out("dump2"),
            "--for-apply",
        ],
    );
    c.check(
        "k8s-dump",
        2,
        &[
            "k8s",
            "dump",
            "-o",
            "json",
            "/nonexistent",
            "--out",
            &out("dump3"),
        ],
    );

    // version
    c.check("version", 0, &["version", "-o", "json"]);

    // Every schema file was used, each command's directly.
    let used = c.schemas.used();
    for f in c.schemas.names() {
        assert!(used.contains(&f), "{f} was not used by any validation");
        if f != "common.schema.json" {
            assert!(c.seen.contains_key(&f), "no output was validated against {f}");
        }
    }
    // Every property a schema declares at the top level appeared.
    for (f, seen) in &c.seen {
        let declared = c.schemas.top_properties(f);
        assert!(!declared.is_empty(), "{f} declares no top-level property");
        let missing: Vec<&String> = declared.difference(seen).collect();
        assert!(
            missing.is_empty(),
            "{f} declares top-level properties no output had: {missing:?}"
        );
    }
    assert!(c.docs > 300, "{} documents checked", c.docs);
}

#[test]
fn the_schema_files_are_well_formed_and_listed() {
    let schemas = Schemas::load(&schema_dir());
    let problems = schemas.lint();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let readme = std::fs::read_to_string(schema_dir().join("README.md")).unwrap();
    for f in schemas.names() {
        assert!(readme.contains(&f), "docs/schemas/README.md does not mention {f}");
    }
    // Nothing else in the folder.
    for e in std::fs::read_dir(schema_dir()).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            n == "README.md" || n.ends_with(".schema.json"),
            "{n} in docs/schemas"
        );
    }
}

/// The validator itself: for each keyword a value that must fail and one
/// that must pass, so the schema checks above cannot pass vacuously.
mod validator {
    use super::*;

    fn one(schema: Value) -> Schemas {
        Schemas::from_docs(vec![("t.schema.json".into(), schema)])
    }

    fn errors(schema: Value, v: Value) -> Vec<SchemaError> {
        one(schema).validate("t.schema.json", &v)
    }

    fn fails(schema: Value, v: Value) -> Vec<SchemaError> {
        let e = errors(schema.clone(), v.clone());
        assert!(!e.is_empty(), "{v} must not match {schema}");
        e
    }

    fn passes(schema: Value, v: Value) {
        let e = errors(schema.clone(), v.clone());
        assert!(e.is_empty(), "{v} must match {schema}: {}", listed(&e));
    }

    #[test]
    fn type_names_lists_and_integers() {
        passes(json!({"type": "integer"}), json!(3));
        passes(json!({"type": "integer"}), json!(18446744073709551615u64));
        fails(json!({"type": "integer"}), json!(3.5));
        fails(json!({"type": "integer"}), json!("3"));
        passes(json!({"type": "number"}), json!(3.5));
        fails(json!({"type": "string"}), json!(null));
        passes(json!({"type": ["string", "null"]}), json!(null));
        fails(json!({"type": ["string", "null"]}), json!(false));
        fails(json!({"type": "object"}), json!([]));
        fails(json!({"type": "array"}), json!({}));
        fails(json!({"type": "boolean"}), json!(0));
        fails(json!({"type": "null"}), json!(0));
    }

    #[test]
    fn properties_required_and_additional_properties() {
        let s = json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": false
        });
        passes(s.clone(), json!({"a": 1}));
        passes(s.clone(), json!({"a": 1, "b": "x"}));
        let e = fails(s.clone(), json!({"a": "x"}));
        assert_eq!(e[0].pointer, "/a");
        let e = fails(s.clone(), json!({"b": "x"}));
        assert!(e[0].message.contains("\"a\""), "{}", e[0]);
        let e = fails(s.clone(), json!({"a": 1, "c/d": 2}));
        assert_eq!(e[0].pointer, "/c~1d");
        // A schema for the other properties (a map keyed by data).
        let m = json!({"type": "object", "additionalProperties": {"type": "integer"}});
        passes(m.clone(), json!({"x": 1, "y": 2}));
        let e = fails(m, json!({"x": 1, "y": "2"}));
        assert_eq!(e[0].pointer, "/y");
        // additionalProperties true, and left out: anything goes.
        passes(
            json!({"type": "object", "properties": {}, "additionalProperties": true}),
            json!({"z": 1}),
        );
    }

    #[test]
    fn items_prefix_items_and_min_items() {
        let s = json!({"type": "array", "items": {"type": "string"}});
        passes(s.clone(), json!(["a", "b"]));
        let e = fails(s, json!(["a", 2]));
        assert_eq!(e[0].pointer, "/1");
        let pair = json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false, "minItems": 2});
        passes(pair.clone(), json!([1, "why"]));
        fails(pair.clone(), json!(["1", "why"]));
        let e = fails(pair.clone(), json!([1, "why", 3]));
        assert_eq!(e[0].pointer, "/2");
        let e = fails(pair, json!([1]));
        assert!(e[0].message.contains("at least 2"), "{}", e[0]);
    }

    #[test]
    fn enum_const_and_minimum() {
        passes(json!({"enum": ["a", 1]}), json!(1));
        fails(json!({"enum": ["a", 1]}), json!("b"));
        passes(json!({"const": false}), json!(false));
        fails(json!({"const": false}), json!(true));
        fails(json!({"const": 2}), json!(2.5));
        passes(json!({"minimum": 0}), json!(0));
        fails(json!({"minimum": 0}), json!(-1));
        fails(json!({"type": "integer", "minimum": 1}), json!(0));
        // minimum says nothing about what is not a number.
        passes(json!({"type": ["integer", "null"], "minimum": 0}), json!(null));
    }

    #[test]
    fn one_of_any_of_and_not() {
        let s = json!({"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 5}]});
        passes(s.clone(), json!(3));
        passes(s.clone(), json!(5.5));
        let e = fails(s.clone(), json!(7));
        assert!(e[0].message.contains("2 of the oneOf"), "{}", e[0]);
        fails(s, json!("x"));
        let a = json!({"anyOf": [{"type": "integer"}, {"type": "number", "minimum": 5}]});
        passes(a.clone(), json!(7));
        fails(a, json!("x"));
        passes(json!({"not": {"type": "string"}}), json!(1));
        fails(json!({"not": {"type": "string"}}), json!("x"));
        // A tagged union names the branch that got furthest.
        let u = json!({"oneOf": [
            {"type": "object", "properties": {"t": {"const": "a"}, "n": {"type": "integer"}}, "required": ["t", "n"]},
            {"type": "object", "properties": {"t": {"const": "b"}}, "required": ["t"]}
        ]});
        let e = fails(u, json!({"t": "a", "n": "x"}));
        assert!(e.iter().any(|x| x.pointer == "/n"), "{}", listed(&e));
        // The boolean schemas.
        passes(json!(true), json!(1));
        fails(json!(false), json!(1));
    }

    #[test]
    fn refs_within_a_file_and_to_another() {
        let s = Schemas::from_docs(vec![
            (
                "a.schema.json".into(),
                json!({"$defs": {"x": {"type": "integer"}}, "type": "object",
                       "properties": {"i": {"$ref": "#/$defs/x"}, "s": {"$ref": "b.schema.json#/$defs/y"}},
                       "additionalProperties": false}),
            ),
            (
                "b.schema.json".into(),
                // Resolved in b: "#/..." means b's own definitions.
                json!({"$defs": {"y": {"$ref": "#/$defs/z"}, "z": {"type": "string"}}}),
            ),
        ]);
        assert!(s.validate("a.schema.json", &json!({"i": 1, "s": "x"})).is_empty());
        let e = s.validate("a.schema.json", &json!({"i": "1", "s": 2}));
        let at: Vec<&str> = e.iter().map(|x| x.pointer.as_str()).collect();
        assert_eq!(at, ["/i", "/s"], "{}", listed(&e));
        assert_eq!(
            s.used().into_iter().collect::<Vec<_>>(),
            ["a.schema.json", "b.schema.json"]
        );
        assert_eq!(
            s.top_properties("a.schema.json").into_iter().collect::<Vec<_>>(),
            ["i", "s"]
        );
    }

    #[test]
    fn annotations_are_skipped() {
        passes(
            json!({"$schema": "x", "$id": "y", "title": "t", "description": "d", "$comment": "c",
                   "examples": [1], "$defs": {"u": {"type": "string"}}, "type": "integer"}),
            json!(1),
        );
    }

    #[test]
    #[should_panic(expected = "not supported")]
    fn an_unsupported_keyword_panics() {
        errors(json!({"type": "string", "pattern": "^a"}), json!("b"));
    }

    #[test]
    #[should_panic(expected = "does not resolve")]
    fn a_dangling_ref_panics() {
        errors(json!({"$ref": "#/$defs/nope"}), json!(1));
    }

    #[test]
    fn lint_finds_what_the_schema_files_must_not_have() {
        let s = one(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://etcd-rescue.dev/schemas/t.schema.json",
            "title": "t",
            "description": "d",
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"description": "b", "format": "date"}}
        }));
        let p = s.lint().join("\n");
        assert!(p.contains("/properties/a: no description"), "{p}");
        assert!(p.contains("unsupported keyword \"format\""), "{p}");
        assert!(p.contains("without an additionalProperties decision"), "{p}");
    }
}
