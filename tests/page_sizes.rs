//! Every page size bbolt files come with, end to end: 512 bytes to 64 KiB
//! (4 KiB on amd64, 16 KiB and 64 KiB on arm64 and ppc64le hosts) and 1 MiB,
//! the largest our reader takes. For each, our writer makes an etcd db; our
//! `check` passes it, bbolt-rs reads every bucket of it, `restore`,
//! `salvage` and `compact` take it without a panic and keep every key, and
//! real etcd 3.5.1 starts on the restored data dir and serves every key.

mod common;

use std::path::Path;

use bbolt_rs::{BucketApi, DbApi, TxApi};
use common::etcd::restore_and_serve;
use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::writer::Writer;
use etcd_rescue::mvcc::trailer;

const PAGE_SIZES: [u32; 9] = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 1 << 20];

/// Copies every bucket of `src` into `dst` with `page_size`-byte pages.
fn rewrite(src: &Path, dst: &Path, page_size: u32) {
    let bytes = std::fs::read(src).unwrap();
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let names: Vec<Vec<u8>> = db.root().iter().map(|e| e.unwrap().key.to_vec()).collect();
    let file = std::fs::File::create(dst).unwrap();
    let mut w = Writer::new(std::io::BufWriter::new(file), page_size, 0.9, 7).unwrap();
    for name in &names {
        let b = db.bucket(name).unwrap().unwrap();
        w.bucket(
            name,
            b.sequence(),
            b.iter().map(|e| e.unwrap()).map(|e| (e.key, e.value)),
        )
        .unwrap();
    }
    let (_, out) = w.finish().unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    assert_eq!(page_size_of(dst), page_size);
}

/// The page size a db file says it has.
fn page_size_of(p: &Path) -> u32 {
    let bytes = std::fs::read(p).unwrap();
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    db.page_size() as u32
}

fn source() -> std::path::PathBuf {
    repo().join("testdata/fixtures/v3.5.1/single.snapshot.db")
}

fn keys_of(p: &Path) -> serde_json::Value {
    let r = run(&["get", "-o", "json", p.to_str().unwrap(), "", "--prefix"]);
    assert_eq!(r.code, 0, "{}: {}", p.display(), r.err);
    r.json()["kvs"].clone()
}

fn check_codes(p: &Path) -> Vec<String> {
    let c = run(&["check", "-o", "json", p.to_str().unwrap()]);
    c.json()["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_writer_refuses_page_sizes_no_reader_takes() {
    for ps in [0u32, 256, 3000, 2 << 20] {
        let r = Writer::new(std::io::Cursor::new(Vec::new()), ps, 0.9, 2);
        let e = r.err().unwrap_or_else(|| panic!("{ps} accepted"));
        assert!(e.to_string().contains("page size"), "{e}");
    }
}

#[test]
fn every_page_size_through_check_bbolt_restore_salvage_and_compact() {
    let want = keys_of(&source());
    let tmp = tempfile::tempdir().unwrap();
    for ps in PAGE_SIZES {
        let db = tmp.path().join(format!("ps{ps}.db"));
        rewrite(&source(), &db, ps);
        // A written file has no sha256 trailer: that is its only (info) finding.
        assert_eq!(check_codes(&db), ["no-sha256-trailer"], "page size {ps}");
        assert_eq!(keys_of(&db), want, "page size {ps}");
        let status = run(&["status", "-o", "json", db.to_str().unwrap()]);
        assert_eq!(status.code, 0, "{ps}: {}", status.err);

        // bbolt-rs, a reader we did not write, sees every bucket's items.
        let ours = bucket_records(&std::fs::read(&db).unwrap(), "key");
        let theirs = bbolt_rs::Bolt::open_ro(&db).unwrap_or_else(|e| panic!("{ps}: bbolt-rs: {e}"));
        theirs
            .view(|tx| {
                let b = tx.bucket("key").expect("key bucket");
                let got: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
                    b.iter_entries().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                assert_eq!(got, ours, "page size {ps}: bbolt-rs reads other items");
                Ok(())
            })
            .unwrap();

        // restore: the same page size, pages copied (no panic at 512 bytes).
        let data = tmp.path().join(format!("data{ps}"));
        let r = run(&[
            "restore",
            db.to_str().unwrap(),
            "--skip-hash-check",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{ps}: {}{}", r.out, r.err);
        assert_eq!(
            page_size_of(&data.join("member/snap/db")),
            ps,
            "restore keeps the page size"
        );
        assert_eq!(keys_of(&data), want, "page size {ps}: restored");

        // salvage and compact write new files at the source's page size.
        let rescued = tmp.path().join(format!("rescued{ps}.db"));
        let s = run(&[
            "salvage",
            db.to_str().unwrap(),
            "--out",
            rescued.to_str().unwrap(),
        ]);
        assert_eq!(s.code, 0, "{ps}: {}{}", s.out, s.err);
        assert_eq!(keys_of(&rescued), want, "page size {ps}: salvaged");
        let compacted = tmp.path().join(format!("compacted{ps}.db"));
        let c = run(&[
            "compact",
            db.to_str().unwrap(),
            "--rev",
            "head",
            "--out",
            compacted.to_str().unwrap(),
        ]);
        assert_eq!(c.code, 0, "{ps}: {}{}", c.out, c.err);
        assert_eq!(keys_of(&compacted), want, "page size {ps}: compacted");
        for out in [&rescued, &compacted] {
            assert_eq!(page_size_of(out), ps, "{}", out.display());
        }
    }
}

/// Real etcd starts on what `restore` wrote from each page size and serves
/// every key, at the source's revision, exactly as the source holds them.
#[test]
fn real_etcd_serves_a_restore_of_every_page_size() {
    let source_json = run(&["get", "-o", "json", source().to_str().unwrap(), "", "--prefix"]).json();
    let want = etcdctl_get_json(&source_json);
    let Some(bin) = require(Need::Etcd35) else { return };
    let tmp = tempfile::tempdir().unwrap();
    for ps in PAGE_SIZES {
        let db = tmp.path().join(format!("ps{ps}.db"));
        rewrite(&source(), &db, ps);
        let served = restore_and_serve(&bin, &db, tmp.path());
        assert_eq!(served, want, "page size {ps}: what etcd serves");
    }
}
