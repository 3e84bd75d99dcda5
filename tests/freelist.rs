//! bbolt files that carry a freelist page (what bbolt writes by default, and
//! etcd on platforms other than Linux), written by an independent bbolt
//! implementation (bbolt-rs): read back exactly, pages accounted for, and
//! freelist damage reported.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bbolt_rs::{BucketApi, BucketRwApi, DbApi, DbRwAPI, TxApi, TxRwRefApi};
use etcd_rescue::bolt::walk::Visitor;
use etcd_rescue::bolt::{Db, check};

struct Nop;
impl Visitor<'_> for Nop {}

type Contents = BTreeMap<Vec<Vec<u8>>, Vec<u8>>;

/// Writes a db with several buckets (one inline, one nested, values spanning
/// overflow pages), then deletes half of a big bucket so pages become free.
fn write_db(path: &Path) -> Contents {
    let mut db = bbolt_rs::Bolt::open(path).unwrap();
    db.update(|mut tx| {
        let mut big = tx.create_bucket("big")?;
        for i in 0..3000u32 {
            let v = if i % 500 == 1 {
                vec![b'x'; 9000]
            } else {
                format!("value-{i}").into_bytes()
            };
            big.put(format!("key-{i:05}"), v)?;
        }
        let mut small = tx.create_bucket("small")?;
        small.put("a", "1")?;
        small.put("b", "2")?;
        let mut outer = tx.create_bucket("outer")?;
        let mut inner = outer.create_bucket("inner")?;
        inner.put("deep", "value")?;
        outer.put("plain", "x")?;
        Ok(())
    })
    .unwrap();
    db.update(|mut tx| {
        let mut big = tx.bucket_mut("big").unwrap();
        for i in (0..3000u32).filter(|i| i % 2 == 0) {
            big.delete(format!("key-{i:05}"))?;
        }
        Ok(())
    })
    .unwrap();
    let mut want = Contents::new();
    db.view(|tx| {
        for name in ["big", "small", "outer"] {
            let b = tx.bucket(name).unwrap();
            for (k, v) in b.iter_entries() {
                want.insert(vec![name.as_bytes().to_vec(), k.to_vec()], v.to_vec());
            }
        }
        let outer = tx.bucket("outer").unwrap();
        let inner = outer.bucket("inner").unwrap();
        // A nested bucket is an entry of its parent (with no value of its own).
        want.insert(vec![b"outer".to_vec(), b"inner".to_vec()], Vec::new());
        for (k, v) in inner.iter_entries() {
            want.insert(vec![b"outer".to_vec(), b"inner".to_vec(), k.to_vec()], v.to_vec());
        }
        Ok(())
    })
    .unwrap();
    drop(db);
    want
}

struct Collect(Contents);
impl<'a> Visitor<'a> for Collect {
    fn entry(
        &mut self,
        path: &[&'a [u8]],
        _node: &etcd_rescue::bolt::Node<'a>,
        _index: usize,
        elem: &etcd_rescue::bolt::LeafElem<'a>,
    ) {
        if path.is_empty() {
            return;
        }
        let mut k: Vec<Vec<u8>> = path.iter().map(|p| p.to_vec()).collect();
        k.push(elem.key.to_vec());
        let v = if elem.is_bucket() {
            Vec::new()
        } else {
            elem.value.to_vec()
        };
        self.0.insert(k, v);
    }
}

#[test]
fn reads_a_freelist_synced_file_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bbolt.db");
    let want = write_db(&path);
    let bytes = std::fs::read(&path).unwrap();
    let mut c = Collect(Contents::new());
    let r = common::unchanged(&[&path], || check::check(&bytes, &mut c));
    assert!(r.findings.items().is_empty(), "{:#?}", r.findings.items());
    assert!(r.pages.freelist_synced);
    assert!(r.pages.free > 0, "{:?}", r.pages);
    assert_eq!(r.pages.leaked, 0);
    assert_eq!(r.pages.in_use + r.pages.free, r.pages.high_water_mark);
    assert!(r.walk.inline_buckets >= 2, "{:?}", r.walk);
    assert!(r.pages.overflow > 0);
    assert_eq!(c.0, want);
    // Cursor lookups agree too.
    let (db, _) = Db::open(&bytes).unwrap();
    let big = db.bucket(b"big").unwrap().unwrap();
    assert_eq!(big.get(b"key-00003").unwrap().unwrap().value, b"value-3");
    assert!(big.get(b"key-00002").unwrap().is_none());
    let inner = db
        .bucket(b"outer")
        .unwrap()
        .unwrap()
        .bucket(b"inner")
        .unwrap()
        .unwrap();
    assert_eq!(inner.get(b"deep").unwrap().unwrap().value, b"value");
}

/// Returns (bytes, freelist ids offset, count) of a fresh file.
fn with_freelist() -> (Vec<u8>, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bbolt.db");
    write_db(&path);
    let bytes = std::fs::read(&path).unwrap();
    let (db, _) = Db::open(&bytes).unwrap();
    let fl = etcd_rescue::bolt::freelist::Freelist::read(&db, db.meta().freelist).unwrap();
    let (off, n) = (fl.ids_offset as usize, fl.len());
    assert!(n >= 3, "expected free pages, got {n}");
    (bytes, off, n)
}

fn codes(bytes: &[u8]) -> Vec<&'static str> {
    check::check(bytes, &mut Nop)
        .findings
        .items()
        .iter()
        .map(|f| f.code)
        .collect()
}

#[test]
fn freelist_damage_is_reported() {
    let (bytes, off, _) = with_freelist();
    // The same page listed twice.
    let mut b = bytes.clone();
    let first = b[off..off + 8].to_vec();
    b[off + 8..off + 16].copy_from_slice(&first);
    let c = codes(&b);
    assert!(c.contains(&"freelist-duplicate"), "{c:?}");
    assert!(c.contains(&"unreachable-unfreed"), "{c:?}");
    // A page in use (the root bucket page) listed as free.
    let mut b = bytes.clone();
    let (db, _) = Db::open(&bytes).unwrap();
    let root = db.meta().root.0;
    b[off..off + 8].copy_from_slice(&root.to_le_bytes());
    let c = codes(&b);
    assert!(c.contains(&"reachable-freed"), "{c:?}");
    // A page id past the high-water mark.
    let mut b = bytes.clone();
    b[off..off + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let c = codes(&b);
    assert!(c.contains(&"freelist-entry-out-of-range"), "{c:?}");
}
