//! Salvage on real damage, judged against the undamaged original and real
//! etcd: for each kind of damage to dbs that etcd 3.4.23 and 3.5.1 wrote
//! (the `single` snapshot, and the `snapcount` member db whose large values
//! sit on overflow pages), the walkthrough "salvage → check → restore →
//! start etcd" must work without `--force`, and:
//!
//! - every live revision that is still on a page of the damaged file (the
//!   tree's or an older copy) is in the output, after etcd's compaction at
//!   the output's compaction point, and nothing else is;
//! - the reported lost ranges are exactly the main revisions whose every
//!   record is gone;
//! - "nothing lost" (exit 0) only when nothing was;
//! - `check` finds no error in the output;
//! - etcd serves, at the head, exactly the surviving records' head state.
//!
//! Pages are chosen by their role in the file (the key bucket's branch, its
//! first, middle and last leaves, a leaf with overflow pages, the root), not
//! by number, so a regenerated fixture gives the same cases.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::etcd::{Etcd, Member, free_port, restore_and_serve};
use common::*;
use etcd_rescue::bolt::bucket::BucketRoot;
use etcd_rescue::bolt::{Db, Pgid};
use etcd_rescue::mvcc::kv::KeyValueRef;
use etcd_rescue::mvcc::revision::RevKey;
use etcd_rescue::mvcc::trailer;

type Records = BTreeMap<Vec<u8>, Vec<u8>>;

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// Pages whose bytes are gone: what only they held is lost.
    destroyed: BTreeSet<u64>,
    /// The damage leaves every record readable: salvage must say nothing is lost.
    provable: bool,
}

/// The key bucket's pages in key order: (branch pages, leaf pages).
fn key_pages(db: &Db<'_>) -> (Vec<u64>, Vec<u64>) {
    let BucketRoot::Page(root) = db.bucket(b"key").unwrap().unwrap().root() else {
        panic!("the key bucket is inline")
    };
    let (mut branches, mut leaves) = (Vec::new(), Vec::new());
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        let n = db.node(p).unwrap();
        if n.is_branch() {
            branches.push(p.0);
            for i in (0..n.count()).rev() {
                stack.push(n.branch(i).unwrap().child);
            }
        } else {
            leaves.push(p.0);
        }
    }
    (branches, leaves)
}

fn set_header(b: &mut [u8], ps: usize, p: u64, at: usize, v: &[u8]) {
    let o = p as usize * ps + at;
    b[o..o + v.len()].copy_from_slice(v);
}

fn fill(b: &mut [u8], ps: usize, p: u64, byte: u8) {
    let o = p as usize * ps;
    b[o..o + ps].fill(byte);
}

fn cases(orig: &[u8]) -> Vec<Case> {
    let (db, _) = Db::open(trailer::image(orig)).unwrap();
    let ps = db.page_size();
    let root = db.meta().root.0;
    let (branches, leaves) = key_pages(&db);
    let first = leaves[0];
    let mid = leaves[leaves.len() / 2];
    let last = *leaves.last().unwrap();
    let big = leaves
        .iter()
        .copied()
        .find(|p| db.page(Pgid(*p)).unwrap().0.overflow > 0);
    let mut out = Vec::new();
    let mut add = |name: &str, destroyed: &[u64], provable: bool, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = orig.to_vec();
        f(&mut b);
        out.push(Case {
            name: name.into(),
            bytes: b,
            destroyed: destroyed.iter().copied().collect(),
            provable,
        });
    };
    add("both meta pages zeroed", &[], true, &|b| b[..2 * ps].fill(0));
    add("root page: type flags broken", &[], true, &|b| {
        set_header(b, ps, root, 8, &[0x10, 0])
    });
    add("middle key leaf: type flag flipped", &[], true, &|b| {
        set_header(b, ps, mid, 8, &[0x0a, 0])
    });
    add("middle key leaf: count 0", &[], true, &|b| {
        set_header(b, ps, mid, 10, &[0, 0])
    });
    add("middle key leaf: count 0xffff", &[], true, &|b| {
        set_header(b, ps, mid, 10, &[0xff, 0xff])
    });
    add("first key leaf: overflow 0xffffff", &[], true, &|b| {
        set_header(b, ps, first, 12, &[0xff, 0xff, 0xff, 0])
    });
    add("last key leaf: id wrong", &[], true, &|b| {
        set_header(b, ps, last, 0, &12345u64.to_le_bytes())
    });
    add("middle key leaf: whole header zeroed", &[], true, &|b| {
        set_header(b, ps, mid, 0, &[0; 16])
    });
    add(
        "both meta pages zeroed and a key leaf's flag flipped",
        &[],
        true,
        &|b| {
            b[..2 * ps].fill(0);
            set_header(b, ps, mid, 8, &[0x10, 0]);
        },
    );
    if let Some(p) = big {
        add("leaf with overflow pages: overflow 0", &[], true, &|b| {
            set_header(b, ps, p, 12, &[0, 0, 0, 0])
        });
        add("leaf with overflow pages: overflow 0xffff", &[], true, &|b| {
            set_header(b, ps, p, 12, &[0xff, 0xff, 0, 0])
        });
    }
    if let Some(&br) = branches.first() {
        add("key branch page zeroed", &[br], false, &|b| fill(b, ps, br, 0));
        add(
            "both meta pages and the key branch page zeroed",
            &[br],
            false,
            &|b| {
                b[..2 * ps].fill(0);
                fill(b, ps, br, 0);
            },
        );
    }
    add("newest key leaf destroyed", &[last], false, &|b| {
        fill(b, ps, last, 0xee)
    });
    add("middle key leaf destroyed", &[mid], false, &|b| {
        fill(b, ps, mid, 0xee)
    });
    let cut_page = last.max(leaves[leaves.len() - 1]);
    let img = trailer::image(orig);
    let pages = (img.len() / ps) as u64;
    // A cut through a page loses it only when the cut part held something:
    // the reader pads a cut page with zeros, so a page whose second half
    // was zeros (slack after the last element) reads as it was. Which it
    // is depends on how etcd laid out the fixture.
    let second_half_empty = |p: u64| {
        let o = p as usize * ps;
        img[o + ps / 2..o + ps].iter().all(|&b| b == 0)
    };
    let first_lost = cut_page + u64::from(second_half_empty(cut_page));
    let gone: Vec<u64> = (first_lost..pages).collect();
    add(
        "file cut in the middle of the newest key leaf",
        &gone,
        gone.is_empty(),
        &|b| b.truncate(cut_page as usize * ps + ps / 2),
    );
    let end = img.len();
    let last_whole = second_half_empty(pages - 1);
    let last_gone: Vec<u64> = if last_whole { vec![] } else { vec![pages - 1] };
    add(
        "file cut in the middle of its last page",
        &last_gone,
        last_whole,
        &|b| b.truncate(end - ps / 2),
    );
    add("root leaf (inline buckets) destroyed", &[root], false, &|b| {
        fill(b, ps, root, 0xee)
    });
    out
}

/// Every record of the original's key bucket.
fn records(orig: &[u8]) -> Records {
    bucket_records(orig, "key")
}

/// The keys of leaf records on the original's pages that survive the damage.
fn on_surviving_pages(orig: &[u8], destroyed: &BTreeSet<u64>) -> BTreeSet<Vec<u8>> {
    let (db, _) = Db::open(trailer::image(orig)).unwrap();
    let mut db_all = *db.meta();
    db_all.pgid = Pgid(db.file_pages());
    let db = Db::with_meta(trailer::image(orig), db_all);
    let mut out = BTreeSet::new();
    for p in 2..db.file_pages() {
        let Ok((h, _)) = db.page(Pgid(p)) else { continue };
        let span: BTreeSet<u64> = (p..=p + u64::from(h.overflow)).collect();
        if !span.is_disjoint(destroyed) {
            continue;
        }
        if let Ok(n) = db.node(Pgid(p))
            && !n.is_branch()
        {
            for i in 0..n.count() {
                if let Ok(e) = n.leaf(i) {
                    out.insert(e.key.to_vec());
                }
            }
        }
    }
    out
}

/// etcd's compaction at `at` (per key: the newest revision at or below it
/// unless a delete, and everything above).
fn compacted(recs: &Records, at: i64) -> BTreeSet<Vec<u8>> {
    let mut newest_below: BTreeMap<Vec<u8>, (Vec<u8>, bool)> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (k, v) in recs {
        let rk = RevKey::parse(k).unwrap();
        let key = KeyValueRef::decode(v).unwrap().key.to_vec();
        if rk.rev.main <= at {
            newest_below.insert(key, (k.clone(), rk.tombstone));
        } else {
            out.insert(k.clone());
        }
    }
    out.extend(newest_below.into_values().filter(|(_, t)| !t).map(|(k, _)| k));
    out
}

/// The head state: per key its newest record, unless a delete.
fn head(recs: &Records) -> Vec<Kv> {
    let mut m: BTreeMap<Vec<u8>, Option<Kv>> = BTreeMap::new();
    for (k, v) in recs {
        let rk = RevKey::parse(k).unwrap();
        let kv = KeyValueRef::decode(v).unwrap();
        let e = (!rk.tombstone).then(|| Kv {
            key: kv.key.to_vec(),
            value: kv.value.to_vec(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        });
        m.insert(kv.key.to_vec(), e);
    }
    m.into_values().flatten().collect()
}

fn mains(keys: impl IntoIterator<Item = Vec<u8>>) -> BTreeSet<i64> {
    keys.into_iter()
        .map(|k| RevKey::parse(&k).unwrap().rev.main)
        .collect()
}

fn ranges_of(j: &serde_json::Value) -> BTreeSet<i64> {
    let mut s = BTreeSet::new();
    for r in j.as_array().unwrap() {
        s.extend(r[0].as_i64().unwrap()..=r[1].as_i64().unwrap());
    }
    s
}

fn sources() -> Vec<(PathBuf, PathBuf)> {
    let mut v = Vec::new();
    for vdir in version_dirs() {
        v.push((vdir.clone(), vdir.join("single.snapshot.db")));
        v.push((
            vdir.clone(),
            extracted_dir(&vdir, "snapcount").join("snapcount/member/snap/db"),
        ));
    }
    v
}

/// One case through the whole walkthrough; returns a summary line.
fn one(vdir: &Path, bin: Option<&Path>, orig: &[u8], c: &Case, tmp: &Path) -> String {
    let what = format!("{} / {}", vdir.display(), c.name);
    let all = records(orig);
    let source_compact = {
        let (db, _) = Db::open(trailer::image(orig)).unwrap();
        etcd_rescue::mvcc::kv::read_meta(&db).unwrap().compact_main_rev()
    };
    let surviving = on_surviving_pages(orig, &c.destroyed);
    let recoverable: Records = all
        .iter()
        .filter(|(k, _)| surviving.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let really_lost: BTreeSet<i64> = mains(all.keys().cloned())
        .difference(&mains(recoverable.keys().cloned()))
        .copied()
        .filter(|m| *m > source_compact)
        .collect();
    let records_lost = all.len() - recoverable.len();

    let out = tmp.join("salvaged.db");
    let r = salvage_bytes(&c.bytes, tmp);
    let j = r.json();
    let rep = &j["report"];
    let complete = rep["complete"].as_bool().unwrap();
    assert_eq!(r.code, if complete { 0 } else { 1 }, "{what}: {}", r.err);
    if records_lost > 0 {
        assert!(
            !complete,
            "{what}: {records_lost} records lost but the report says nothing was: {rep:#}"
        );
    }
    if c.provable {
        assert!(
            complete,
            "{what}: every record is readable, yet the report cannot say so: {rep:#}"
        );
    }
    let mut reported = ranges_of(&rep["lostRevisionRanges"]);
    if let Some(f) = rep["lostFromRevision"].as_i64() {
        let top = *mains(all.keys().cloned()).last().unwrap();
        reported.extend(f..=top);
    }
    // Nothing recovered is called lost; every revision above the compaction
    // point whose records are all gone is reported (below it, revisions
    // need not exist, so only the records' loss can be seen). Without a tree
    // the head and the compaction point are unknown: only what the
    // surviving history proves can be reported.
    let recovered_mains = mains(recoverable.keys().cloned());
    assert!(
        reported.is_disjoint(&recovered_mains),
        "{what}: recovered revisions reported lost: {rep:#}"
    );
    if rep["root"].is_null() {
        assert!(!complete, "{what}");
    } else {
        // Revisions after the newest found for an unreadable page at the
        // top may be lost: whether they existed no one can tell.
        let mut maybe = reported.clone();
        if let Some(a) = rep["possiblyLostAfterRevision"].as_i64() {
            let top = *mains(all.keys().cloned()).last().unwrap();
            maybe.extend(a + 1..=top);
        }
        assert!(
            really_lost.is_subset(&maybe),
            "{what}: lost {really_lost:?}, reported: {rep:#}"
        );
        // Below the compaction point too: every lost record's revision.
        let lost_records: BTreeSet<i64> =
            mains(all.keys().filter(|k| !recoverable.contains_key(*k)).cloned());
        let unexplained: BTreeSet<i64> = lost_records.difference(&maybe).copied().collect();
        // A revision that lost only some of its records is reported as
        // partly lost, unless the losses could not be counted.
        let partly: BTreeSet<i64> = rep["partlyLostRevisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["revision"].as_i64().unwrap())
            .collect();
        let uncounted = !rep["possiblyLost"].as_array().unwrap().is_empty();
        // Below the compaction point a revision need not exist, so one an
        // uncounted page may have held can only be called possibly lost.
        assert!(
            unexplained.iter().all(|m| {
                (recovered_mains.contains(m) && (partly.contains(m) || uncounted))
                    || (uncounted && *m <= source_compact)
            }),
            "{what}: records of revisions {unexplained:?} lost and not reported: {rep:#}"
        );
    }

    // The output: what survives, compacted at the output's compaction point.
    let got = revision_keys(&std::fs::read(&out).unwrap());
    let compact = rep["compactRevision"].as_i64().unwrap();
    let want = compacted(&recoverable, compact);
    let rootless = rep["root"].is_null();
    if rootless {
        // Without the tree and its meta bucket the compaction point is
        // unknown: older copies of compacted history may come back. Nothing
        // recoverable may be left out.
        let missing: Vec<_> = want.difference(&got).collect();
        assert!(
            missing.is_empty(),
            "{what}: {} recoverable revisions left out",
            missing.len()
        );
    } else {
        assert!(compact >= source_compact, "{what}");
        assert_eq!(
            got.len(),
            want.len(),
            "{what}: output has {} revisions, expected {}",
            got.len(),
            want.len()
        );
        assert_eq!(got, want, "{what}");
    }

    // The small buckets (leases, members, auth, cluster, alarms) are the
    // live tree's, exactly: nothing it deleted comes back (a revoked lease
    // copied on a free page, say), unless the tree lost them.
    let small_lost = rootless
        || !rep["olderTree"].is_null()
        || rep["unreadable"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["bucket"] != "key");
    if !small_lost {
        let bytes = std::fs::read(&out).unwrap();
        for b in [
            "lease",
            "members",
            "members_removed",
            "auth",
            "authUsers",
            "authRoles",
            "cluster",
            "alarm",
        ] {
            assert_eq!(
                bucket_records(&bytes, b),
                bucket_records(orig, b),
                "{what}: bucket {b}"
            );
        }
    }
    let chk = run(&["check", "-o", "json", out.to_str().unwrap()]);
    let v = &chk.json()["files"][0];
    assert_ne!(
        v["verdict"], "damaged",
        "{what}: check on the output: {}",
        chk.out
    );
    let errors: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: check finds errors in the output: {errors:#?}"
    );

    if let Some(bin) = bin {
        let served = restore_and_serve(bin, &out, tmp);
        let expect = if rootless {
            let out_records = records(&std::fs::read(&out).unwrap());
            head(&out_records)
        } else {
            head(&recoverable)
        };
        assert_eq!(
            served.1, expect,
            "{what}: etcd serves something else than the surviving records' head"
        );
    }
    format!(
        "{:<70} records lost {:>3}, kept {:>3}, reported lost {} from {}, complete {complete}, compact {source_compact} -> {compact}",
        what,
        records_lost,
        recoverable.len(),
        rep["lostRevisionRanges"],
        rep["lostFromRevision"]
    )
}

#[test]
fn salvage_on_real_damage_ends_in_a_running_etcd_that_serves_what_survived() {
    let mut lines = Vec::new();
    let mut kinds = BTreeSet::new();
    for (vdir, file) in sources() {
        let bin = require(Need::EtcdFor(&vdir));
        let orig = std::fs::read(&file).unwrap();
        for c in cases(&orig) {
            kinds.insert(c.name.clone());
            let tmp = tempfile::tempdir().unwrap();
            lines.push(one(&vdir, bin.as_deref(), &orig, &c, tmp.path()));
        }
    }
    eprintln!("{}", lines.join("\n"));
    assert!(kinds.len() >= 16, "{kinds:?}");
}

/// What real etcd serves from a copy of a member dir (`get "" --prefix`).
fn served_by_etcd(bin: &Path, member_dir: &Path, tmp: &Path) -> (i64, Vec<Kv>) {
    let copy = tmp.join("oracle");
    copy_tree(member_dir, &copy);
    let port = free_port();
    // The member's own name and peer URL do not matter to a single member
    // started with --force-new-cluster: it serves its data.
    let etcd = Etcd::start(Member {
        bin,
        data_dir: &copy,
        name: "oracle",
        peer_port: port,
        initial_cluster: Some(format!("oracle=http://127.0.0.1:{port}")),
        extra: vec!["--force-new-cluster".into()],
    });
    let got =
        etcdctl_get_json(&serde_json::from_str(&etcd.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap());
    etcd.stop();
    got
}

/// A member dir salvaged with its WAL: the db's newest key leaf destroyed,
/// or the db gone, in a member whose WAL holds the log from index 1
/// (`single`, `killed`: the db rebuilt from the log, nothing lost); a
/// member whose WAL starts after a snapshot (`snapcount`: the entries after
/// the db's index replayed). Real etcd serves from the restored output
/// exactly what it serves from a copy of the undamaged member dir.
#[test]
fn a_member_dir_is_salvaged_with_its_wal() {
    for vdir in version_dirs() {
        let bin = require(Need::EtcdFor(&vdir));
        // (scenario, damage, how the WAL is used, nothing lost)
        for (scenario, damage, mode, complete) in [
            ("single", "newest key leaf destroyed", "rebuilt", true),
            ("single", "db removed", "rebuilt", true),
            // The root page holds the small buckets inline (members, auth):
            // the log does not hold all of them, so losses stay possible.
            ("killed", "root page destroyed", "rebuilt", false),
            ("snapcount", "a key leaf's type flag flipped", "rebuilt", true),
            // Without the first WAL segment the log from index 1 is gone:
            // only the entries after the db's index are applied.
            (
                "snapcount",
                "a key leaf's type flag flipped, first WAL segment removed",
                "replayed",
                true,
            ),
        ] {
            let what = format!("{} / {scenario} / {damage}", vdir.display());
            let tmp = tempfile::tempdir().unwrap();
            let orig = extracted_dir(&vdir, scenario).join(scenario);
            let dir = tmp.path().join(scenario);
            copy_tree(&orig, &dir);
            let db_path = dir.join("member/snap/db");
            let mut db = std::fs::read(&db_path).unwrap();
            let (d, _) = Db::open(&db).unwrap();
            let ps = d.page_size();
            let root = d.meta().root.0;
            let leaves = if damage.contains("leaf") {
                key_pages(&d).1
            } else {
                Vec::new()
            };
            match damage {
                "db removed" => db.clear(),
                "root page destroyed" => fill(&mut db, ps, root, 0xee),
                "newest key leaf destroyed" => fill(&mut db, ps, *leaves.last().unwrap(), 0xee),
                _ => set_header(&mut db, ps, leaves[leaves.len() / 2], 8, &[0x10, 0]),
            }
            std::fs::write(&db_path, &db).unwrap();
            if damage.contains("first WAL segment") {
                let first = wal_segments(&dir.join("member")).into_iter().min().unwrap();
                std::fs::remove_file(first).unwrap();
            }
            let out = tmp.path().join("salvaged.db");
            let r = unchanged(&[&dir], || {
                run(&[
                    "salvage",
                    "-o",
                    "json",
                    dir.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                ])
            });
            let rep = &r.json()["report"];
            assert_eq!(rep["wal"]["mode"], mode, "{what}: {rep:#}");
            assert_eq!(rep["complete"], complete, "{what}: {rep:#}");
            assert_eq!(r.code, if complete { 0 } else { 1 }, "{what}: {}", r.err);
            let chk = run(&["check", "-o", "json", out.to_str().unwrap()]);
            let cj = chk.json();
            let errors: Vec<_> = cj["files"][0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["severity"] == "error")
                .collect();
            assert!(errors.is_empty(), "{what}: {errors:#?}");
            let Some(bin) = &bin else { continue };
            let got = restore_and_serve(bin, &out, tmp.path());
            let want = served_by_etcd(bin, &orig, tmp.path());
            assert_eq!(
                got.1, want.1,
                "{what}: etcd serves something else than from the undamaged member dir"
            );
        }
    }
}
