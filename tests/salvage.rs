//! Salvage of damaged copies of real-etcd dbs: every revision on pages that
//! still parse comes back; what was lost is reported.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::bucket::BucketRoot;
use etcd_rescue::mvcc::trailer;

fn salvage_to(damaged: &[u8], dir: &Path) -> (i32, serde_json::Value, Vec<u8>) {
    let r = salvage_bytes(damaged, dir);
    let bytes = std::fs::read(dir.join("salvaged.db")).unwrap();
    (r.code, r.json(), bytes)
}

#[test]
fn salvage_recovers_everything_when_only_structure_is_broken() {
    for vdir in version_dirs() {
        let orig = std::fs::read(vdir.join("single.snapshot.db")).unwrap();
        let want = revision_keys(&orig);
        let (db, _) = Db::open(trailer::image(&orig)).unwrap();
        let ps = db.page_size();
        let BucketRoot::Page(key_root) = db.bucket(b"key").unwrap().unwrap().root() else {
            panic!()
        };
        let tmp = tempfile::tempdir().unwrap();
        // (what, exit code): 0 when every record the tree points at was read
        // (the root's header is repaired; the meta pages are not needed to
        // find the newest root), 1 when a page the tree needs is gone and
        // how many records it held cannot be told.
        let cases: Vec<(&str, Vec<u8>, i32)> = vec![
            (
                "both meta pages destroyed",
                {
                    let mut b = orig.clone();
                    b[..2 * ps].fill(0);
                    b
                },
                0,
            ),
            (
                "the key bucket's branch page zeroed",
                {
                    let mut b = orig.clone();
                    let at = key_root.0 as usize * ps;
                    b[at..at + ps].fill(0);
                    b
                },
                1,
            ),
            (
                "the root page's type broken",
                {
                    let mut b = orig.clone();
                    b[db.meta().root.0 as usize * ps + 8] = 0x10;
                    b
                },
                0,
            ),
        ];
        for (what, damaged, want_code) in cases {
            let (code, j, out) = salvage_to(&damaged, tmp.path());
            assert_eq!(code, want_code, "{what}: {j:#}");
            assert_eq!(revision_keys(&out), want, "{}: {what}", vdir.display());
            // The result is a clean db with the same keyspace as the original.
            let c = run(&[
                "check",
                "-o",
                "json",
                tmp.path().join("salvaged.db").to_str().unwrap(),
            ]);
            assert_eq!(c.json()["files"][0]["verdict"], "ok", "{what}: {}", c.out);
            let a = run(&[
                "get",
                "-o",
                "json",
                vdir.join("single.snapshot.db").to_str().unwrap(),
                "",
                "--prefix",
            ])
            .json();
            let b = run(&[
                "get",
                "-o",
                "json",
                tmp.path().join("salvaged.db").to_str().unwrap(),
                "",
                "--prefix",
            ])
            .json();
            assert_eq!(a["kvs"], b["kvs"], "{what}");
        }
    }
}

#[test]
fn salvage_reports_what_a_destroyed_leaf_took() {
    for vdir in version_dirs() {
        let orig = std::fs::read(vdir.join("single.snapshot.db")).unwrap();
        let (db, _) = Db::open(trailer::image(&orig)).unwrap();
        let ps = db.page_size();
        let kb = db.bucket(b"key").unwrap().unwrap();
        let BucketRoot::Page(root) = kb.root() else {
            panic!()
        };
        let branch = db.node(root).unwrap();
        // The last leaf holds the newest revisions (above the compact revision).
        let leaf = branch.branch(branch.count() - 1).unwrap().child;
        let on_leaf: BTreeSet<Vec<u8>> = {
            let n = db.node(leaf).unwrap();
            (0..n.count()).map(|i| n.leaf(i).unwrap().key.to_vec()).collect()
        };
        let mut damaged = orig.clone();
        let at = leaf.0 as usize * ps;
        damaged[at..at + ps].fill(0xee);
        // bbolt never rewrites a live page, so older copies of that leaf sit
        // in freed pages: revisions found on any other leaf page survive.
        let mut elsewhere = BTreeSet::new();
        for p in 2..(orig.len() / ps) as u64 {
            if p == leaf.0 {
                continue;
            }
            if let Ok(n) = db.node(etcd_rescue::bolt::Pgid(p))
                && !n.is_branch()
            {
                for i in 0..n.count() {
                    if let Ok(e) = n.leaf(i) {
                        elsewhere.insert(e.key.to_vec());
                    }
                }
            }
        }
        let only_there: BTreeSet<Vec<u8>> = on_leaf.difference(&elsewhere).cloned().collect();
        let tmp = tempfile::tempdir().unwrap();
        let (code, j, out) = salvage_to(&damaged, tmp.path());
        let got = revision_keys(&out);
        let want: BTreeSet<Vec<u8>> = revision_keys(&orig).difference(&only_there).cloned().collect();
        assert_eq!(
            got, want,
            "every revision found on another page, none that lived only on the destroyed one"
        );
        // The destroyed page is reported, and the run says data may be lost.
        assert_eq!(code, 1, "possible losses exit 1: {j:#}");
        assert_eq!(j["report"]["damagedPages"], serde_json::json!([leaf.0]), "{j:#}");
    }
}

#[test]
fn salvage_of_a_healthy_db_is_exact_and_exits_0() {
    for vdir in version_dirs() {
        let orig = std::fs::read(vdir.join("single.snapshot.db")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (code, j, out) = salvage_to(&orig, tmp.path());
        assert_eq!(code, 0, "{j:#}");
        assert_eq!(revision_keys(&out), revision_keys(&orig));
        assert_eq!(j["report"]["droppedCompacted"], 0);
        // The input is left alone and the output is private (it holds the whole keyspace).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("salvaged.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second salvage to the same place is refused without --force.
        let r = run(&[
            "salvage",
            tmp.path().join("damaged.db").to_str().unwrap(),
            "--out",
            tmp.path().join("salvaged.db").to_str().unwrap(),
        ]);
        assert_eq!(r.code, 2);
        assert!(r.err.contains("already exists"), "{}", r.err);
    }
}

/// The walkthrough of the README ("My db is corrupt"), judged by real etcd:
/// a db with both meta pages and the key bucket's branch page destroyed is
/// salvaged, the result passes `check`, is restored with
/// `--skip-hash-check`, and etcd 3.4.23 / 3.5.1 start on it and serve every
/// key of the undamaged original at its revision.
#[test]
fn real_etcd_serves_a_salvaged_db_after_restore() {
    for vdir in version_dirs() {
        let (want_rev, want) = etcdctl_get(&vdir.join("single.expect/get.json"));
        let orig = std::fs::read(vdir.join("single.snapshot.db")).unwrap();
        let (db, _) = Db::open(trailer::image(&orig)).unwrap();
        let ps = db.page_size();
        let BucketRoot::Page(key_root) = db.bucket(b"key").unwrap().unwrap().root() else {
            panic!("{}: the key bucket is not on its own page", vdir.display())
        };
        let mut damaged = orig.clone();
        damaged[..2 * ps].fill(0);
        let at = key_root.0 as usize * ps;
        damaged[at..at + ps].fill(0);
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("damaged.db");
        std::fs::write(&src, &damaged).unwrap();

        // etcd's own tools cannot use it, and check says why.
        let c = run(&["check", src.to_str().unwrap()]);
        assert_eq!(c.code, 1, "{}", c.out);
        assert!(c.out.contains("no-valid-meta"), "{}", c.out);

        let (code, j, _) = salvage_to(&damaged, tmp.path());
        assert_eq!(code, 1, "{j:#}");
        let salvaged = tmp.path().join("salvaged.db");
        let c = run(&["check", salvaged.to_str().unwrap()]);
        assert_eq!(c.code, 0, "{}{}", c.out, c.err);
        // Ours: the salvaged db reads as real etcd served the original.
        let g = run(&["get", "-o", "json", salvaged.to_str().unwrap(), "", "--prefix"]);
        assert_eq!(
            etcdctl_get_json(&g.json()),
            (want_rev, want.clone()),
            "{}",
            vdir.display()
        );

        let Some(bin) = require(Need::EtcdFor(&vdir)) else {
            continue;
        };
        let got = common::etcd::restore_and_serve(&bin, &salvaged, tmp.path());
        assert_eq!(got.0, want_rev, "{}", vdir.display());
        assert_eq!(got.1, want, "{}", vdir.display());
    }
}

/// The lease case: with both meta pages destroyed, an older copy of
/// the lease bucket on a free page (holding a lease revoked since) must not
/// win over the live tree's lease bucket. The copy is put at the end of the
/// file as bbolt leaves freed pages: a leaf page with its own id.
#[test]
fn a_revoked_lease_on_a_free_page_does_not_come_back() {
    use etcd_rescue::pb::leasepb::Lease;
    use prost::Message;
    for vdir in version_dirs() {
        let orig = std::fs::read(vdir.join("single.snapshot.db")).unwrap();
        let image = trailer::image(&orig).to_vec();
        let (db, _) = Db::open(&image).unwrap();
        let ps = db.page_size();
        let live: Vec<(Vec<u8>, Vec<u8>)> = bucket_records(&image, "lease").into_iter().collect();
        assert!(
            !live.is_empty(),
            "{}: the fixture has a live lease",
            vdir.display()
        );
        let revoked_id = i64::from_be_bytes(live[0].0.clone().try_into().unwrap()) + 1;
        let revoked = Lease {
            id: revoked_id,
            ttl: 1_000_000,
            remaining_ttl: 0,
        };
        let mut recs = live.clone();
        recs.push((revoked_id.to_be_bytes().to_vec(), revoked.encode_to_vec()));
        recs.sort();
        // A leaf page: header, element table, then keys and values.
        let id = (image.len() / ps) as u64;
        let mut page = vec![0u8; ps];
        page[0..8].copy_from_slice(&id.to_le_bytes());
        page[8..10].copy_from_slice(&2u16.to_le_bytes());
        page[10..12].copy_from_slice(&(recs.len() as u16).to_le_bytes());
        let mut data = 16 + 16 * recs.len();
        for (i, (k, v)) in recs.iter().enumerate() {
            let e = 16 + 16 * i;
            page[e + 4..e + 8].copy_from_slice(&((data - e) as u32).to_le_bytes());
            page[e + 8..e + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
            page[e + 12..e + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
            page[data..data + k.len()].copy_from_slice(k);
            page[data + k.len()..data + k.len() + v.len()].copy_from_slice(v);
            data += k.len() + v.len();
        }
        let mut damaged = image.clone();
        damaged.extend(page);
        damaged[..2 * ps].fill(0);
        let tmp = tempfile::tempdir().unwrap();
        let (_, j, out) = salvage_to(&damaged, tmp.path());
        let got: Vec<(Vec<u8>, Vec<u8>)> = bucket_records(&out, "lease").into_iter().collect();
        assert_eq!(got, live, "{}: {j:#}", vdir.display());
        assert!(
            j["report"]["recordsFromFreePages"].get("lease").is_none(),
            "{j:#}"
        );
    }
}
