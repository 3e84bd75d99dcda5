//! Damaged copies of real-etcd files: each gives the right finding or error,
//! never a panic, and the damaged input is left as it was.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use etcd_rescue::bolt::bucket::BucketRoot;
use etcd_rescue::bolt::{Db, Pgid};
use serde_json::Value;

/// A damaged copy of a fixture, made read-only so any write attempt fails.
struct Damaged {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn damaged(src: &Path, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> Damaged {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(src).unwrap();
    f(&mut bytes);
    let path = dir.path().join(name);
    std::fs::write(&path, &bytes).unwrap();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&path, perm).unwrap();
    Damaged { _dir: dir, path }
}

fn snapshot(vdir: &Path) -> PathBuf {
    vdir.join("single.snapshot.db")
}

/// Runs `check -o json` on the file (proving it unchanged) and returns
/// (exit code, the file's JSON report).
fn check(p: &Path) -> (i32, Value) {
    let r = unchanged(&[p], || run(&["check", "-o", "json", p.to_str().unwrap()]));
    let j = r.json();
    (r.code, j["files"][0].clone())
}

fn status(p: &Path) -> Run {
    unchanged(&[p], || run(&["status", "-o", "json", p.to_str().unwrap()]))
}

fn codes(file: &Value) -> Vec<String> {
    file["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'a>(file: &'a Value, code: &str) -> &'a Value {
    file["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no finding {code} in {file:#}"))
}

/// Page ids of the `key` bucket: (root branch page, its leaf children).
fn key_bucket_pages(bytes: &[u8]) -> (u64, Vec<u64>) {
    let (db, _) = Db::open(bytes).unwrap();
    let b = db.bucket(b"key").unwrap().unwrap();
    let BucketRoot::Page(root) = b.root() else {
        panic!("inline key bucket")
    };
    let node = db.node(root).unwrap();
    assert!(node.is_branch(), "fixture's key bucket must have a branch root");
    let leaves = (0..node.count())
        .map(|i| node.branch(i).unwrap().child.0)
        .collect();
    (root.0, leaves)
}

fn page_size(bytes: &[u8]) -> usize {
    Db::open(bytes).unwrap().0.page_size()
}

#[test]
fn file_cut_mid_page() {
    for vdir in version_dirs() {
        let d = damaged(&snapshot(&vdir), "cut.db", |b| {
            let ps = page_size(b);
            let cut = (b.len() / ps / 2) * ps + ps / 2;
            b.truncate(cut);
        });
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        assert_eq!(f["verdict"], "damaged");
        let t = finding(&f, "file-truncated");
        assert!(t["message"].as_str().unwrap().contains("cut short"));
        // Pages past the end are named with their page id and offset.
        let beyond = finding(&f, "page-beyond-eof");
        assert!(beyond["page"].as_u64().is_some() && beyond["offset"].as_u64().is_some());
        let s = status(&d.path);
        assert_eq!(s.code, 1, "status on a truncated file must fail: {}", s.out);
        assert!(s.err.contains("problem"), "{}", s.err);
    }
}

#[test]
fn flipped_byte_in_leaf_element_table() {
    for vdir in version_dirs() {
        let src = snapshot(&vdir);
        let bytes = std::fs::read(&src).unwrap();
        let ps = page_size(&bytes);
        let (_, leaves) = key_bucket_pages(&bytes);
        let leaf = leaves[2];
        let d = damaged(&src, "flip.db", |b| {
            // Element 3's ksize (offset 16 + 16*3 + 8): make it huge.
            let off = leaf as usize * ps + 16 + 16 * 3 + 8 + 2;
            b[off] ^= 0x40;
        });
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        let e = finding(&f, "element-out-of-bounds");
        assert_eq!(e["page"].as_u64(), Some(leaf));
        assert_eq!(e["offset"].as_u64(), Some((leaf as usize * ps + 16 + 48) as u64));
        // The trailer no longer matches either.
        finding(&f, "sha256-mismatch");
    }
}

#[test]
fn flipped_byte_in_a_key_breaks_order_and_revision_rules() {
    for vdir in version_dirs() {
        let src = snapshot(&vdir);
        let bytes = std::fs::read(&src).unwrap();
        let ps = page_size(&bytes);
        let (_, leaves) = key_bucket_pages(&bytes);
        let leaf = leaves[1] as usize;
        let (db, _) = Db::open(&bytes).unwrap();
        let node = db.node(Pgid(leaf as u64)).unwrap();
        let key = node.leaf(5).unwrap().key;
        let key_off = key.as_ptr() as usize - bytes.as_ptr() as usize;
        assert!(key_off > leaf * ps && key_off < (leaf + 1) * ps);
        // Raise the high byte of the main revision: order breaks, and the
        // KeyValue's mod_revision no longer matches its key.
        let d = damaged(&src, "key.db", |b| b[key_off + 6] ^= 0x10);
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        let c = codes(&f);
        assert!(c.contains(&"key-order".to_string()), "{c:?}");
        assert!(c.contains(&"mod-revision-mismatch".to_string()), "{c:?}");
        assert_eq!(finding(&f, "key-order")["page"].as_u64(), Some(leaf as u64));
    }
}

#[test]
fn flipped_byte_in_a_value_is_caught_by_the_trailer_and_decoding() {
    for vdir in version_dirs() {
        let src = snapshot(&vdir);
        let bytes = std::fs::read(&src).unwrap();
        let (_, leaves) = key_bucket_pages(&bytes);
        let (db, _) = Db::open(&bytes).unwrap();
        let node = db.node(Pgid(leaves[0])).unwrap();
        let value = node.leaf(0).unwrap().value;
        let off = value.as_ptr() as usize - bytes.as_ptr() as usize;
        // The first byte of a KeyValue is the tag of field 1 (key, bytes);
        // 0x0f makes it an invalid wire type.
        let d = damaged(&src, "value.db", |b| b[off] = 0x0f);
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        finding(&f, "bad-keyvalue");
        finding(&f, "sha256-mismatch");
    }
}

#[test]
fn meta_page_0_damaged_meta_1_is_used() {
    for vdir in version_dirs() {
        let src = snapshot(&vdir);
        let d = damaged(&src, "meta0.db", |b| b[16 + 40] ^= 0xff);
        let s = status(&d.path);
        let j = s.json();
        assert_eq!(j["meta"]["used"], 1);
        assert_eq!(j["meta"]["fellBack"], true);
        assert!(
            j["meta"]["invalid"][0]
                .as_str()
                .unwrap()
                .contains("checksum mismatch")
        );
        // The data is all there: same revision as the undamaged file.
        let good = run(&["status", "-o", "json", src.to_str().unwrap()]).json();
        assert_eq!(j["revision"], good["revision"]);
        assert_eq!(j["totalKey"], good["totalKey"]);
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        let m = finding(&f, "meta-invalid");
        assert_eq!(m["page"], 0);
        assert_eq!(m["severity"], "warning");
        assert!(m["message"].as_str().unwrap().contains("uses meta page 1"));
    }
}

#[test]
fn both_meta_pages_damaged() {
    for vdir in version_dirs() {
        let d = damaged(&snapshot(&vdir), "metas.db", |b| {
            let ps = page_size(b);
            b[16] ^= 0xff; // meta 0 magic
            b[ps + 20] = 9; // meta 1 version
        });
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        assert_eq!(f["verdict"], "damaged");
        let m = finding(&f, "no-valid-meta");
        let msg = m["message"].as_str().unwrap();
        assert!(
            msg.contains("bad magic") && msg.contains("unsupported version 9"),
            "{msg}"
        );
        let s = status(&d.path);
        assert_eq!(s.code, 1);
        assert!(s.err.contains("no valid meta page"), "{}", s.err);
    }
}

#[test]
fn wrong_sha256_trailer() {
    for vdir in version_dirs() {
        let d = damaged(&snapshot(&vdir), "trailer.db", |b| {
            let n = b.len();
            b[n - 1] ^= 1;
        });
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        let m = finding(&f, "sha256-mismatch");
        assert_eq!(m["severity"], "error");
        assert_eq!(f["facts"]["trailer"]["state"], "mismatch");
        let s = unchanged(&[&d.path], || {
            run(&["status", "--verify-hash", "-o", "json", d.path.to_str().unwrap()])
        });
        assert_eq!(s.code, 1);
        assert_eq!(s.json()["trailer"]["state"], "mismatch");
        assert_eq!(status(&d.path).json()["trailer"]["state"], "unverified");
    }
}

#[test]
fn zero_length_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.db");
    std::fs::write(&p, b"").unwrap();
    let (code, f) = check(&p);
    assert_eq!(code, 1);
    finding(&f, "file-empty");
    let s = status(&p);
    assert_eq!(s.code, 1);
    assert!(s.err.contains("empty"), "{}", s.err);
}

#[test]
fn not_a_bolt_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("readme.db");
    std::fs::write(&p, std::fs::read(repo().join("testdata/README.md")).unwrap()).unwrap();
    let (code, f) = check(&p);
    assert_eq!(code, 1);
    let m = finding(&f, "no-valid-meta");
    assert!(m["message"].as_str().unwrap().contains("bad magic"));
    // A WAL segment is not a db either.
    let s = run(&["status", p.to_str().unwrap()]);
    assert_eq!(s.code, 1);
}

#[test]
fn missing_file_cannot_run() {
    let r = run(&["check", "/nonexistent/etcd.db"]);
    assert_eq!(r.code, 2);
    assert!(
        r.out.contains("UNREADABLE") && r.out.contains("No such file"),
        "{}",
        r.out
    );
    let r = run(&["status", "/nonexistent/etcd.db"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("/nonexistent/etcd.db"), "{}", r.err);
}

#[test]
fn branch_pointer_loop_and_out_of_range() {
    for vdir in version_dirs() {
        let src = snapshot(&vdir);
        let bytes = std::fs::read(&src).unwrap();
        let ps = page_size(&bytes);
        let (root, _) = key_bucket_pages(&bytes);
        // Element 1's child pointer -> the branch page itself (a loop).
        let ptr = root as usize * ps + 16 + 16 + 8;
        let d = damaged(&src, "loop.db", |b| {
            b[ptr..ptr + 8].copy_from_slice(&root.to_le_bytes())
        });
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        assert_eq!(
            finding(&f, "page-multiple-references")["page"].as_u64(),
            Some(root)
        );
        // -> far past the end of the file.
        let d = damaged(&src, "far.db", |b| {
            b[ptr..ptr + 8].copy_from_slice(&(1u64 << 40).to_le_bytes())
        });
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        finding(&f, "page-beyond-high-water-mark");
    }
}

#[test]
fn wrong_page_type() {
    for vdir in version_dirs() {
        let src = snapshot(&vdir);
        let bytes = std::fs::read(&src).unwrap();
        let ps = page_size(&bytes);
        let (_, leaves) = key_bucket_pages(&bytes);
        let leaf = leaves[0] as usize;
        let d = damaged(&src, "type.db", |b| b[leaf * ps + 8] = 0x10);
        let (code, f) = check(&d.path);
        assert_eq!(code, 1);
        let m = finding(&f, "page-wrong-type");
        assert_eq!(m["page"].as_u64(), Some(leaf as u64));
        assert!(m["message"].as_str().unwrap().contains("freelist"));
    }
}

/// Deterministic xorshift, so failures reproduce.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn random_damage_never_panics() {
    let vdir = &version_dirs()[0];
    let src = std::fs::read(snapshot(vdir)).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..300 {
        let mut b = src.clone();
        let flips = 1 + rng(&mut seed) % 16;
        for _ in 0..flips {
            let i = (rng(&mut seed) % b.len() as u64) as usize;
            b[i] ^= 1 << (rng(&mut seed) % 8);
        }
        if round % 10 == 0 {
            let cut = (rng(&mut seed) % b.len() as u64) as usize;
            b.truncate(cut);
        }
        // Both the shallow and deep scans must return, never panic or hang,
        // and one thread must find exactly what three threads find.
        for deep in [false, true] {
            let scan = |single_thread| {
                etcd_rescue::mvcc::scan(
                    &b,
                    etcd_rescue::mvcc::DbScanOptions {
                        deep,
                        verify_trailer: true,
                        file_digest: true,
                        single_thread,
                        skip_hash: false,
                    },
                )
            };
            let (a, one) = (scan(false), scan(true));
            assert_eq!(a.hash, one.hash);
            assert_eq!(a.trailer, one.trailer);
            assert_eq!(a.file_sha256, one.file_sha256);
            assert_eq!(a.findings.items(), one.findings.items());
        }
    }
}
