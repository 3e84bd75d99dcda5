//! Every command that reads one snapshot, db or member dir takes it
//! compressed or archived too (gzip, zstd, xz, bzip2, zip, tar, tar.gz) and
//! answers exactly what it answers on the plain file: `status`, `get`,
//! `hashkv`, `wal`, `salvage` and `restore` (whose output real etcd starts
//! on and serves every key from). Inputs stay unchanged.

mod common;

use std::path::{Path, PathBuf};

use common::etcd::restore_and_serve;
use common::*;

/// The plain snapshot and each packed form of it, written under `dir`.
fn forms(dir: &Path) -> (PathBuf, Vec<PathBuf>) {
    let plain = dir.join("snap.db");
    std::fs::copy(repo().join("testdata/fixtures/v3.5.1/single.snapshot.db"), &plain).unwrap();
    let data = std::fs::read(&plain).unwrap();
    let tar = tar_of(&plain);
    let packed: Vec<(&str, Vec<u8>)> = vec![
        ("snap.db.gz", gzip(&data)),
        ("snap.db.zst", zstd(&data)),
        ("snap.db.xz", xz(&data)),
        ("snap.db.bz2", bzip2(&data)),
        ("snap.zip", zip_of("snap.db", &data)),
        ("snap.tar", tar.clone()),
        ("snap.tar.gz", gzip(&tar)),
    ];
    let paths = packed
        .into_iter()
        .map(|(name, bytes)| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    (plain, paths)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_reading_command_answers_the_same_from_a_packed_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed) = forms(tmp.path());
    let ask = |p: &Path| {
        let status = run(&["status", "-o", "json", s(p)]);
        let get = run(&["get", "-o", "json", s(p), "", "--prefix"]);
        let hash = run(&["hashkv", "-o", "json", s(p)]);
        assert_eq!(
            (status.code, get.code, hash.code),
            (0, 0, 0),
            "{}: {}{}",
            p.display(),
            status.err,
            get.err
        );
        let mut st = status.json();
        st.as_object_mut().unwrap().remove("file");
        (st, get.out, hash.json()[0]["HashKV"].clone())
    };
    let want = ask(&plain);
    for p in &packed {
        let got = unchanged(&[p.as_path()], || ask(p));
        assert_eq!(got.0, want.0, "status of {}", p.display());
        assert_eq!(got.1, want.1, "get of {}", p.display());
        assert_eq!(got.2, want.2, "hashkv of {}", p.display());
    }
}

/// `salvage` of a packed snapshot salvages what is inside (it once read the
/// compressed bytes as a db and wrote an empty one, saying data was lost).
#[test]
fn salvage_reads_inside_a_packed_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed) = forms(tmp.path());
    let salvage = |p: &Path, out: &str| {
        let out = tmp.path().join(out);
        let r = run(&["salvage", "-o", "json", s(p), "--out", s(&out)]);
        assert_eq!(r.code, 0, "salvage {}: {}{}", p.display(), r.out, r.err);
        let j = r.json();
        (j["written"]["keys"].clone(), j["report"]["revisions"].clone())
    };
    let want = salvage(&plain, "plain.out.db");
    assert!(want.0.as_u64().unwrap() > 400, "{want:?}");
    for (i, p) in packed.iter().enumerate() {
        let got = unchanged(&[p.as_path()], || salvage(p, &format!("{i}.out.db")));
        assert_eq!(got, want, "salvage of {}", p.display());
    }
}

/// `wal` of a packed member dir reads its WAL (it once read the archive's
/// bytes as a WAL segment and called them a torn tail).
#[test]
fn wal_reads_inside_a_packed_member_dir() {
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let tgz = vdir.join("single.datadir.tar.gz");
    let dir = extracted_dir(&vdir, "single").join("single");
    let plain = run(&["wal", "-o", "json", s(&dir)]);
    let packed = unchanged(&[tgz.as_path()], || run(&["wal", "-o", "json", s(&tgz)]));
    assert_eq!(plain.code, 0, "{}", plain.err);
    assert_eq!(packed.code, 0, "{}", packed.err);
    // The same records; the summary names the WAL inside the archive.
    let (p_body, p_sum) = plain.out.trim_end().rsplit_once('\n').unwrap();
    let (k_body, k_sum) = packed.out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(k_body, p_body);
    let dir = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap()["dir"].clone();
    assert_eq!(dir(k_sum), format!("{}!single/member/wal", tgz.display()));
    assert_eq!(
        p_sum.replace(dir(p_sum).as_str().unwrap(), ""),
        k_sum.replace(dir(k_sum).as_str().unwrap(), "")
    );
}

/// `restore` of a packed snapshot and of a packed member dir: real etcd
/// starts on what it writes and serves every key the plain source holds.
#[test]
fn restore_of_packed_sources_serves_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, packed) = forms(tmp.path());
    let want = run(&["get", "-o", "json", s(&plain), "", "--prefix"]);
    let want = etcdctl_get_json(&want.json());
    // Without real etcd, the restores are still made and checked.
    for p in &packed {
        let out = tmp.path().join("r").join(p.file_name().unwrap());
        let r = run(&["restore", s(p), "--data-dir", s(&out)]);
        assert_eq!(r.code, 0, "restore {}: {}{}", p.display(), r.out, r.err);
        let got = run(&["get", "-o", "json", s(&out), "", "--prefix"]);
        assert_eq!(etcdctl_get_json(&got.json()).1, want.1, "{}", p.display());
    }
    let Some(bin) = require(Need::Etcd35) else { return };
    for p in [&packed[2], &packed[6]] {
        let (rev, kvs) = restore_and_serve(&bin, p, tmp.path());
        assert_eq!(
            (rev, &kvs),
            (want.0, &want.1),
            "etcd on the restore of {}",
            p.display()
        );
    }
    // A member dir packed as the fixture is: etcd serves what we read.
    let tgz = repo().join("testdata/fixtures/v3.5.1/single.datadir.tar.gz");
    let ours = run(&["get", "-o", "json", s(&tgz), "", "--prefix"]);
    let (rev, kvs) = restore_and_serve(&bin, &tgz, tmp.path());
    assert_eq!((rev, kvs), etcdctl_get_json(&ours.json()));
}
