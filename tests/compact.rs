//! Offline `compact`, `defrag` and `--disarm` judged by real etcd 3.4.23
//! and 3.5.1: the same data compacted online (`etcdctl compact --physical`,
//! then `etcdctl defrag`) and offline must answer every `get --rev X` and
//! `endpoint hashkv --rev X` the same, for every X from the compaction
//! point to the head; a cluster compacted offline starts with equal HashKV
//! on every member; a member stopped by its quota accepts writes again.

mod common;

use std::path::{Path, PathBuf};

use common::etcd::{Etcd, Member, free_port};
use common::*;
use serde_json::Value;

/// Both etcd versions: (label, bin dir), each [`require`]d.
fn versions() -> Vec<(&'static str, PathBuf)> {
    [("3.4.23", Need::Etcd34), ("3.5.1", Need::Etcd35)]
        .into_iter()
        .filter_map(|(label, need)| Some((label, require(need)?)))
        .collect()
}

fn start(bin: &Path, dir: &Path, extra: &[&str]) -> Etcd {
    Etcd::start(member(bin, dir, free_port(), extra))
}

/// A one-member etcd named m1 on `dir` with peer port `peer`.
fn member<'a>(bin: &'a Path, dir: &'a Path, peer: u16, extra: &[&str]) -> Member<'a> {
    Member {
        bin,
        data_dir: dir,
        name: "m1",
        peer_port: peer,
        initial_cluster: None,
        extra: extra.iter().map(|s| s.to_string()).collect(),
    }
}

/// The current revision.
fn head(e: &Etcd) -> i64 {
    let j: Value = serde_json::from_str(&e.ctl(&["endpoint", "status", "-w", "json"])).unwrap();
    j[0]["Status"]["header"]["revision"].as_i64().unwrap()
}

/// A history with every case compaction treats differently: keys written
/// once, overwritten, deleted at the compaction point, deleted and created
/// again, deleted by a lease revoke, changed in a multi-op txn (sub
/// revisions), plus an earlier compaction. Returns the compaction point
/// (the revision of a delete).
fn workload(e: &Etcd) -> i64 {
    for i in 0..24 {
        e.ctl(&["put", &format!("k{i:02}"), &format!("v{i}-1")]);
    }
    e.ctl_stdin(&["txn"], "\nput k00 t0\nput k01 t1\ndel k02\nput k30 t30\n\n\n");
    let lease = |ttl: &str| -> String {
        let out = e.ctl(&["lease", "grant", ttl]);
        out.split_whitespace().nth(1).unwrap().to_string()
    };
    let l1 = lease("3600");
    let l2 = lease("3600");
    e.ctl(&["put", "lk1", "x", "--lease", &l1]);
    e.ctl(&["put", "lk2", "y", "--lease", &l2]);
    let early = head(e) - 10;
    e.ctl(&["compact", &early.to_string()]);
    for i in (0..24).step_by(3) {
        e.ctl(&["put", &format!("k{i:02}"), &format!("v{i}-2")]);
    }
    e.ctl(&["del", "k05"]);
    e.ctl(&["put", "k05", "again"]);
    e.ctl(&["del", "k07"]);
    let at = head(e);
    e.ctl(&["put", "k08", "after"]);
    e.ctl(&["lease", "revoke", &l2]);
    for i in 10..16 {
        e.ctl(&["put", &format!("k{i:02}"), &format!("v{i}-3")]);
    }
    e.ctl(&["del", "k2", "--prefix"]);
    e.ctl(&["put", "k21", "back"]);
    e.ctl_stdin(&["txn"], "\nput k09 t9\ndel k10\n\n\n");
    at
}

/// What a member answers at one revision: the kvs of `get "" --prefix`,
/// and HashKV with its compact revision (or the error of each).
#[derive(Debug, PartialEq)]
struct Answer {
    get: Result<Vec<Kv>, String>,
    hashkv: Result<(u64, i64), String>,
}

fn error_kind(stderr: &str) -> String {
    if stderr.contains("compacted") {
        "compacted".into()
    } else if stderr.contains("future") {
        "future".into()
    } else {
        stderr.trim().to_string()
    }
}

fn answer(e: &Etcd, rev: i64) -> Answer {
    let r = rev.to_string();
    let (ok, out, err) = e.ctl_raw(&["get", "", "--prefix", "--rev", &r, "-w", "json"]);
    let get = if ok {
        Ok(etcdctl_get_json(&serde_json::from_str(&out).unwrap()).1)
    } else {
        Err(error_kind(&err))
    };
    let (ok, out, err) = e.ctl_raw(&["endpoint", "hashkv", "--rev", &r, "-w", "json"]);
    let hashkv = if ok {
        let j: Value = serde_json::from_str(&out).unwrap();
        let h = &j[0]["HashKV"];
        Ok((
            h["hash"].as_u64().unwrap_or(0),
            h["compact_revision"].as_i64().unwrap_or(0),
        ))
    } else {
        Err(error_kind(&err))
    };
    Answer { get, hashkv }
}

fn answers(e: &Etcd, from: i64, to: i64) -> Vec<(i64, Answer)> {
    (from..=to).map(|x| (x, answer(e, x))).collect()
}

fn rescue(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(r.code, 0, "etcd-rescue {args:?}: {}{}", r.out, r.err);
    r
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One member: online compaction + defrag vs offline compact in place, on
/// copies of one stopped data dir; and a snapshot compacted offline and
/// restored by the version's own restore tool.
#[test]
fn offline_compaction_answers_like_online_compaction() {
    for (label, bin) in versions() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let e = start(&bin, &src, &[]);
        let at = workload(&e);
        let top = head(&e);
        let snap = t.path().join("snap.db");
        e.ctl(&["snapshot", "save", s(&snap)]);
        // Never under a running member: its db is locked.
        let live = run(&["compact", s(&src), "--rev", "head", "--in-place"]);
        assert_eq!(live.code, 2, "{label}: {}{}", live.out, live.err);
        assert!(live.err.contains("etcd is running"), "{label}: {}", live.err);
        assert!(!src.join("member/snap/db.before-compact").exists());
        e.shutdown();
        let online = t.path().join("online");
        let offline = t.path().join("offline");
        copy_tree(&src, &online);
        copy_tree(&src, &offline);

        let e = start(&bin, &online, &[]);
        e.ctl(&["compact", &at.to_string(), "--physical"]);
        e.ctl(&["defrag"]);
        let want = answers(&e, at - 1, top);
        e.shutdown();
        assert!(
            matches!(&want[0].1.get, Err(k) if k == "compacted"),
            "{label}: {want:?}"
        );

        let before = digest(&snap);
        let r = rescue(&[
            "compact",
            s(&offline),
            "--rev",
            &at.to_string(),
            "--in-place",
            "-o",
            "json",
        ]);
        let j = r.json();
        assert_eq!(j["written"][0]["compactRevision"], at, "{label}: {}", r.out);
        assert!(offline.join("member/snap/db.before-compact").is_file());
        let c = run(&["check", s(&offline)]);
        assert_eq!(c.code, 0, "{label}: check after compact: {}{}", c.out, c.err);
        let e = start(&bin, &offline, &[]);
        let got = answers(&e, at - 1, top);
        e.shutdown();
        assert_eq!(
            got, want,
            "{label}: offline compaction answers differently from etcd's own"
        );

        // The snapshot: compacted to a new file, restored by etcd's tool.
        let out = t.path().join("compacted.db");
        rescue(&["compact", s(&snap), "--rev", &at.to_string(), "--out", s(&out)]);
        assert_eq!(digest(&snap), before, "the source snapshot changed");
        let restored = t.path().join("restored");
        let tool = if label == "3.4.23" { "etcdctl" } else { "etcdutl" };
        let peer = free_port();
        let o = std::process::Command::new(bin.join(tool))
            .env("ETCDCTL_API", "3")
            .args([
                "snapshot",
                "restore",
                s(&out),
                "--data-dir",
                s(&restored),
                "--name",
                "m1",
            ])
            .args(["--initial-cluster", &format!("m1=http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{label} {tool} restore: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let e = Etcd::start(member(&bin, &restored, peer, &[]));
        let got = answers(&e, at - 1, top);
        e.shutdown();
        let strip = |v: &[(i64, Answer)]| v.iter().map(|(x, a)| (*x, a.get.clone())).collect::<Vec<_>>();
        assert_eq!(strip(&got), strip(&want), "{label}: restored compacted snapshot");
    }
}

/// `defrag --data-dir --in-place` against `etcdutl defrag --data-dir`
/// (3.5.1): the same keys and HashKV at every revision.
#[test]
fn defrag_answers_like_etcdutl_defrag() {
    let Some(bin) = require(Need::Etcd35) else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let e = start(&bin, &src, &[]);
    workload(&e);
    let top = head(&e);
    e.shutdown();
    let (theirs, ours) = (t.path().join("theirs"), t.path().join("ours"));
    copy_tree(&src, &theirs);
    copy_tree(&src, &ours);
    let o = std::process::Command::new(bin.join("etcdutl"))
        .args(["defrag", "--data-dir", s(&theirs)])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "etcdutl defrag: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Like etcdutl, but only with --in-place.
    let refused = run(&["defrag", "--data-dir", s(&ours)]);
    assert_eq!(refused.code, 2, "{}", refused.err);
    assert!(refused.err.contains("--in-place"), "{}", refused.err);
    rescue(&["defrag", "--data-dir", s(&ours), "--in-place"]);
    assert!(ours.join("member/snap/db.before-defrag").is_file());
    let size = |d: &Path| std::fs::metadata(d.join("member/snap/db")).unwrap().len();
    assert!(
        size(&ours) <= size(&theirs),
        "ours {} bytes, etcdutl's {}",
        size(&ours),
        size(&theirs)
    );
    let mut seen = Vec::new();
    for d in [&theirs, &ours] {
        let e = start(&bin, d, &[]);
        seen.push(answers(&e, 1, top));
        e.shutdown();
    }
    assert_eq!(seen[0], seen[1]);
}

/// Three members stopped together, compacted offline together: they start
/// as one cluster, with equal HashKV at every revision above the point.
#[test]
fn a_cluster_compacted_offline_starts_with_equal_hashes() {
    for (label, bin) in versions() {
        let t = tempfile::tempdir().unwrap();
        let names = ["m1", "m2", "m3"];
        let peers: Vec<u16> = names.iter().map(|_| free_port()).collect();
        let cluster = names
            .iter()
            .zip(&peers)
            .map(|(n, p)| format!("{n}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let dirs: Vec<PathBuf> = names.iter().map(|n| t.path().join(n)).collect();
        let spawn = |i: usize| {
            Etcd::spawn(Member {
                bin: &bin,
                data_dir: &dirs[i],
                name: names[i],
                peer_port: peers[i],
                initial_cluster: Some(cluster.clone()),
                extra: vec![],
            })
        };
        let mut members: Vec<Etcd> = (0..3).map(spawn).collect();
        for m in &mut members {
            m.wait_healthy();
        }
        let at = workload(&members[0]);
        // Every member has applied everything before it stops.
        let top = head(&members[0]);
        for m in &members {
            assert_eq!(head(m), top);
        }
        for m in members {
            m.shutdown();
        }
        let args: Vec<&str> = ["compact"]
            .into_iter()
            .chain(dirs.iter().map(|d| s(d)))
            .chain(["--rev", &*at.to_string().leak(), "--in-place", "-o", "json"])
            .collect();
        let r = rescue(&args);
        assert_eq!(r.json()["written"].as_array().unwrap().len(), 3);
        let mut members: Vec<Etcd> = (0..3).map(spawn).collect();
        for m in &mut members {
            m.wait_healthy();
        }
        for x in at + 1..=top {
            let hashes: Vec<Answer> = members.iter().map(|m| answer(m, x)).collect();
            assert!(
                hashes.iter().all(|h| h == &hashes[0]),
                "{label}: at {x}: {hashes:?}"
            );
            assert!(hashes[0].hashkv.is_ok(), "{label}: at {x}: {hashes:?}");
        }
        assert!(matches!(answer(&members[1], at - 1).get, Err(k) if k == "compacted"));
        members[2].ctl(&["put", "after-restart", "ok"]);
        for m in members {
            m.shutdown();
        }
    }
}

/// A member stopped by its quota: refused writes before, accepted after
/// `compact --rev head --disarm --in-place`.
#[test]
fn a_member_past_its_quota_takes_writes_after_compact_and_disarm() {
    for (label, bin) in versions() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("full");
        let quota = ["--quota-backend-bytes", "2097152"];
        let e = start(&bin, &dir, &quota);
        let value = "x".repeat(100 * 1024);
        let mut tripped = false;
        for i in 0..200 {
            let (ok, _, err) = e.ctl_raw(&["put", "big", &format!("{i}{value}")]);
            if !ok {
                assert!(err.contains("database space exceeded"), "{label}: {err}");
                tripped = true;
                break;
            }
        }
        assert!(tripped, "{label}: the quota never tripped");
        e.shutdown();
        let st = run(&["status", "-o", "json", s(&dir.join("member/snap/db"))]);
        assert_eq!(st.json()["alarms"][0]["alarm"], "NOSPACE", "{}", st.out);
        let c = run(&["check", "-o", "json", s(&dir)]);
        assert!(c.out.contains("alarm-nospace"), "{}", c.out);

        // etcd does what the finding says: reads yes, writes no.
        let copy = t.path().join("copy");
        copy_tree(&dir, &copy);
        // etcdctl 3.5's `endpoint health` fails while an alarm is active: probe with a read.
        let e = Etcd::try_start_probe(
            member(&bin, &copy, free_port(), &quota),
            &["get", "big", "--keys-only"],
        )
        .unwrap();
        let (ok, _, err) = e.ctl_raw(&["put", "small", "1"]);
        assert!(!ok && err.contains("database space exceeded"), "{label}: {err}");
        e.shutdown();

        let r = rescue(&[
            "compact",
            s(&dir),
            "--rev",
            "head",
            "--disarm",
            "--in-place",
            "-o",
            "json",
        ]);
        let j = r.json();
        assert_eq!(
            j["written"][0]["alarmsRemoved"][0]["alarm"], "NOSPACE",
            "{}",
            r.out
        );
        assert!(j["written"][0]["size"].as_u64().unwrap() < 1 << 20, "{}", r.out);
        let c = run(&["check", s(&dir)]);
        assert_eq!(c.code, 0, "{}{}", c.out, c.err);
        let e = start(&bin, &dir, &quota);
        e.ctl(&["put", "small", "1"]);
        let (ok, out, _) = e.ctl_raw(&["alarm", "list"]);
        assert!(ok && out.trim().is_empty(), "{label}: alarms after disarm: {out}");
        e.shutdown();
    }
}

/// What the command refuses, with nothing written (no etcd needed).
#[test]
fn refusals_write_nothing() {
    let snap = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out.db");
    let o = s(&out);
    // Already compacted, future, nowhere to write, in place on a file.
    for (args, code, says) in [
        (vec!["--rev", "10", "--out", o], 2, "already compacted"),
        (vec!["--rev", "99999", "--out", o], 2, "future revision"),
        (vec!["--rev", "head"], 2, "--out"),
        (vec!["--rev", "head", "--in-place"], 2, "member dirs"),
    ] {
        let mut a = vec!["compact", s(&snap)];
        a.extend(args);
        let r = run(&a);
        assert_eq!(r.code, code, "{a:?}: {}{}", r.out, r.err);
        assert!(r.err.contains(says), "{a:?}: {}", r.err);
        assert!(!out.exists());
    }
    // A damaged snapshot: the judgment refuses it (exit 1).
    let bad = t.path().join("bad.db");
    let mut bytes = std::fs::read(&snap).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xff;
    std::fs::write(&bad, &bytes).unwrap();
    let r = run(&["compact", s(&bad), "--rev", "head", "--out", o, "-o", "json"]);
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert_eq!(r.json()["judgment"]["verdict"], "damaged", "{}", r.out);
    assert!(!out.exists());
    // Members that are not copies of one cluster.
    let other = repo().join("testdata/fixtures/v3.5.1/cluster.snapshot.db");
    let r = run(&[
        "compact",
        s(&snap),
        s(&other),
        "--rev",
        "head",
        "--out",
        s(t.path()),
    ]);
    assert!(r.code != 0, "{}{}", r.out, r.err);
}

/// A snapshot compacted offline is a valid snapshot whose answers above
/// the point are the source's (no etcd needed: our reader on both).
#[test]
fn compacted_snapshot_keeps_every_answer_above_the_point() {
    let snap = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("c.db");
    let st = run(&["status", "-o", "json", s(&snap)]).json();
    let (compact, top) = (
        st["compactRevision"].as_i64().unwrap(),
        st["revision"].as_i64().unwrap(),
    );
    let at = (compact + top) / 2;
    let r = unchanged(&[&snap], || {
        rescue(&[
            "compact",
            s(&snap),
            "--rev",
            &at.to_string(),
            "--out",
            s(&out),
            "-o",
            "json",
        ])
    });
    let j = r.json();
    assert!(j["written"][0]["sha256"].is_string(), "{}", r.out);
    let c = run(&["check", s(&out)]);
    assert_eq!(c.code, 0, "{}{}", c.out, c.err);
    for x in at..=top {
        let rev = x.to_string();
        let a = run(&["get", "-o", "json", s(&snap), "", "--prefix", "--rev", &rev]);
        let b = run(&["get", "-o", "json", s(&out), "", "--prefix", "--rev", &rev]);
        assert_eq!(a.json()["kvs"], b.json()["kvs"], "at {x}");
    }
    let below = run(&["get", s(&out), "", "--prefix", "--rev", &(at - 1).to_string()]);
    assert_eq!(below.code, 2, "{}", below.err);
    // --keep-revisions N compacts at head - N.
    let kept = t.path().join("k.db");
    let r = rescue(&[
        "compact",
        s(&snap),
        "--keep-revisions",
        "5",
        "--out",
        s(&kept),
        "-o",
        "json",
    ]);
    assert_eq!(r.json()["written"][0]["compactRevision"], top - 5, "{}", r.out);
    // Defragmenting changes no answer at any revision the source serves.
    let d = t.path().join("d.db");
    rescue(&["defrag", s(&snap), "--out", s(&d)]);
    for x in compact..=top {
        let rev = x.to_string();
        let a = run(&["hashkv", "-o", "json", s(&snap), "--rev", &rev]);
        let b = run(&["hashkv", "-o", "json", s(&d), "--rev", &rev]);
        assert_eq!(a.code, b.code, "hashkv at {x}: {}{}", a.err, b.err);
        if a.code == 0 {
            assert_eq!(a.json()[0]["HashKV"], b.json()[0]["HashKV"], "hashkv at {x}");
        }
    }
}

/// The one-pass keep set the rewrite uses is etcd's `keyIndex.keep`, as
/// the index computes it, at every revision of real etcd's snapshots.
#[test]
fn the_streaming_keep_set_is_the_index_keep_set() {
    use etcd_rescue::mvcc::index::{KeyIndex, KeyRange, compaction_keep};
    use etcd_rescue::mvcc::keyspace::Keyspace;
    let mut checked = 0;
    for v in ["v3.4.23", "v3.5.1"] {
        for name in ["single.snapshot.db", "cluster.snapshot.db"] {
            let bytes = std::fs::read(repo().join("testdata/fixtures").join(v).join(name)).unwrap();
            let image = etcd_rescue::mvcc::trailer::image(&bytes);
            let (db, _) = etcd_rescue::bolt::Db::open(image).unwrap();
            let ks = Keyspace::db(db);
            let index = KeyIndex::build(&ks, &KeyRange::All).unwrap();
            for at in 1..=index.head {
                let mut want: Vec<_> = index.keep(at).into_iter().collect();
                want.sort_unstable();
                assert_eq!(compaction_keep(&ks, at).unwrap(), want, "{v}/{name} at {at}");
                checked += 1;
            }
        }
    }
    assert!(checked > 400, "{checked}");
}

/// Dbs with the 16 KiB and 64 KiB pages of arm64 and ppc64le hosts go
/// through reader, compaction and writer with their page size, and real
/// etcd serves a restore of the result.
#[test]
fn large_page_dbs_compact_and_restore() {
    use etcd_rescue::compact::{Disarm, plan, rewrite};
    let snap = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let bytes = std::fs::read(&snap).unwrap();
    let (db, _) = etcd_rescue::bolt::Db::open(etcd_rescue::mvcc::trailer::image(&bytes)).unwrap();
    let t = tempfile::tempdir().unwrap();
    let head = run(&["get", "-o", "json", s(&snap), "", "--prefix"]).json();
    for ps in [16384u32, 65536] {
        let big = t.path().join(format!("p{ps}.db"));
        let p = plan(db, None, Disarm::default()).unwrap();
        let mut f = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&big)
            .unwrap();
        rewrite(&db, &p, &mut f, ps, true).unwrap();
        drop(f);
        let st = run(&["status", "-o", "json", s(&big)]).json();
        assert_eq!(st["pages"]["pageSize"], ps, "{st}");
        let out = t.path().join(format!("c{ps}.db"));
        rescue(&["compact", s(&big), "--rev", "head", "--out", s(&out)]);
        let c = run(&["check", s(&out)]);
        assert_eq!(c.code, 0, "{ps}: {}{}", c.out, c.err);
        assert_eq!(
            run(&["status", "-o", "json", s(&out)]).json()["pages"]["pageSize"],
            ps
        );
        let got = run(&["get", "-o", "json", s(&out), "", "--prefix"]).json();
        assert_eq!(got["kvs"], head["kvs"], "{ps}");
        let Some(bin) = require(Need::Etcd35) else {
            continue;
        };
        let dir = t.path().join(format!("r{ps}"));
        let peer = free_port();
        common::etcd::etcdutl_restore(&bin, &out, &dir, "m1", peer);
        let e = Etcd::start(member(&bin, &dir, peer, &[]));
        let served =
            etcdctl_get_json(&serde_json::from_str(&e.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap())
                .1;
        e.shutdown();
        let ours = etcdctl_get_json(&got).1;
        assert_eq!(
            served, ours,
            "{ps}: etcd serves the compacted {ps}-byte-page snapshot"
        );
    }
}

/// In place: a second run does not overwrite the db kept by the first, a
/// symlinked db is refused, and nothing changes when refused.
#[test]
fn in_place_keeps_the_old_db_and_never_loses_it() {
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("m");
    copy_tree(&extracted_dir(&vdir, "single").join("single"), &dir);
    let db = dir.join("member/snap/db");
    let old = digest(&db);
    rescue(&["compact", s(&dir), "--rev", "head", "--in-place"]);
    let kept = dir.join("member/snap/db.before-compact");
    assert_eq!(digest(&kept), old, "the old db is kept as it was");
    let again = run(&["defrag", s(&dir), "--in-place"]);
    assert_eq!(again.code, 0, "{}", again.err);
    let defragged = digest(&db);
    let third = run(&["defrag", s(&dir), "--in-place"]);
    assert_eq!(third.code, 2, "{}{}", third.out, third.err);
    assert!(third.err.contains("earlier run"), "{}", third.err);
    assert_eq!(digest(&kept), old);
    assert!(dir.join("member/snap/db.before-defrag").is_file());
    assert_eq!(digest(&db), defragged, "a refused run changes nothing");

    let other = t.path().join("l");
    copy_tree(&extracted_dir(&vdir, "single").join("single"), &other);
    let odb = other.join("member/snap/db");
    let real = t.path().join("real.db");
    std::fs::rename(&odb, &real).unwrap();
    std::os::unix::fs::symlink(&real, &odb).unwrap();
    let before = digest(&real);
    let r = run(&["compact", s(&other), "--rev", "head", "--in-place"]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    assert!(r.err.contains("symlink"), "{}", r.err);
    assert_eq!(digest(&real), before);
    assert!(!other.join("member/snap/db.before-compact").exists());
}
