//! Hostile tree shapes: every command, on key buckets whose branch pages
//! share children (a DAG, small and exponential), point back at an
//! ancestor (a cycle), hold their children out of key order, or nest far
//! too deep, runs in bounded time and memory, never crashes, and never
//! answers as if nothing were wrong (the source is damaged: exit 1).
//!
//! Each command runs as the real binary under `prlimit --as=2G` and is
//! killed after two minutes (a hang, not a timing: linear work on these
//! 115 KB files takes well under a second).

mod common;

use common::*;
use etcd_rescue::bolt::Db;

const BRANCH: u16 = 0x01;
const HEADER: usize = 16;
const BRANCH_ELEM: usize = 16;

/// The key bucket's root page and its children, and the page size.
fn key_tree(bytes: &[u8]) -> (usize, u64, Vec<u64>) {
    let image = etcd_rescue::mvcc::trailer::image(bytes);
    let (db, _) = Db::open(image).unwrap();
    let key = db.bucket(b"key").unwrap().unwrap();
    let root = key.root_node().unwrap();
    assert!(root.is_branch(), "the key bucket's root is a branch page");
    let Some(etcd_rescue::bolt::NodeLoc::Page { pgid }) = Some(root.loc) else {
        panic!("a page root")
    };
    let children = (0..root.count())
        .map(|i| root.branch(i).unwrap().child.0)
        .collect();
    (db.page_size(), pgid.0, children)
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Points element `i` of the branch page `pg` at `child`.
fn point(b: &mut [u8], ps: usize, pg: u64, i: usize, child: u64) {
    set_u64(b, pg as usize * ps + HEADER + i * BRANCH_ELEM + 8, child);
}

/// Rewrites page `pg` as a branch page of `n` elements, all pointing at
/// `child`, with ascending 17-byte revision keys.
fn branch_page(b: &mut [u8], ps: usize, pg: u64, n: usize, child: u64) {
    assert!(
        HEADER + n * (BRANCH_ELEM + 17) <= ps,
        "{n} elements fit in a page"
    );
    let base = pg as usize * ps;
    b[base..base + ps].fill(0);
    set_u64(b, base, pg);
    b[base + 8..base + 10].copy_from_slice(&BRANCH.to_le_bytes());
    b[base + 10..base + 12].copy_from_slice(&(n as u16).to_le_bytes());
    let keys_at = HEADER + n * BRANCH_ELEM;
    for i in 0..n {
        let e = base + HEADER + i * BRANCH_ELEM;
        let key_off = keys_at + i * 17;
        let pos = (key_off - (HEADER + i * BRANCH_ELEM)) as u32;
        b[e..e + 4].copy_from_slice(&pos.to_le_bytes());
        b[e + 4..e + 8].copy_from_slice(&17u32.to_le_bytes());
        set_u64(b, e + 8, child);
        let k = base + key_off;
        b[k..k + 8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        b[k + 8] = b'_';
    }
}

/// The hostile variants of a snapshot: (name, bytes).
fn variants(snap: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let (ps, root, kids) = key_tree(snap);
    assert!(
        kids.len() >= 4,
        "the fixture's key bucket has {} leaves",
        kids.len()
    );
    let mut out = Vec::new();
    // Small DAG: every child of the root is the first leaf.
    let mut b = snap.to_vec();
    for i in 1..kids.len() {
        point(&mut b, ps, root, i, kids[0]);
    }
    out.push(("dag-small", b));
    // Exponential DAG: the root's children all lead to leaf 1, rewritten as a
    // branch of 120 elements all pointing at leaf 2, rewritten the same way
    // to leaf 3, and leaf 3 to leaf 0: kids x 120^3 (19 million) paths to one
    // leaf, gigabytes for a reader that follows them all.
    let mut b = snap.to_vec();
    branch_page(&mut b, ps, kids[1], 120, kids[2]);
    branch_page(&mut b, ps, kids[2], 120, kids[3]);
    branch_page(&mut b, ps, kids[3], 120, kids[0]);
    for i in 0..kids.len() {
        point(&mut b, ps, root, i, kids[1]);
    }
    out.push(("dag-exponential", b));
    // A cycle: the last child of the root is the root.
    let mut b = snap.to_vec();
    point(&mut b, ps, root, kids.len() - 1, root);
    out.push(("cycle", b));
    // Children out of key order: the first two swapped.
    let mut b = snap.to_vec();
    point(&mut b, ps, root, 0, kids[1]);
    point(&mut b, ps, root, 1, kids[0]);
    out.push(("not-ascending", b));
    // Deep nesting: a chain of one-element branch pages through every leaf
    // but the first, ending at it.
    let mut b = snap.to_vec();
    for w in kids[1..].windows(2) {
        branch_page(&mut b, ps, w[0], 1, w[1]);
    }
    branch_page(&mut b, ps, *kids.last().unwrap(), 1, kids[0]);
    for i in 0..kids.len() {
        point(&mut b, ps, root, i, kids[1]);
    }
    out.push(("deep", b));
    out
}

#[test]
fn every_command_is_bounded_on_every_hostile_tree_shape() {
    let tmp = tempfile::tempdir().unwrap();
    for v in version_dirs() {
        let snap = std::fs::read(v.join("single.snapshot.db")).unwrap();
        let good = tmp.path().join("good.db");
        std::fs::write(&good, &snap).unwrap();
        for (name, bytes) in variants(&snap) {
            let f = tmp.path().join(format!("{name}.db"));
            std::fs::write(&f, &bytes).unwrap();
            // A member dir holding it, for restore and force-new-cluster.
            let dir = tmp.path().join(format!("{name}-member"));
            let _ = std::fs::remove_dir_all(&dir);
            copy_tree(&extracted_dir(&v, "single").join("single"), &dir);
            let (ps, _, _) = key_tree(&snap);
            assert_eq!(ps, 4096);
            // A member's db is the snapshot without its trailer.
            std::fs::write(dir.join("member/snap/db"), &bytes[..bytes.len() - 32]).unwrap();
            let fs = f.to_str().unwrap();
            let ds = dir.to_str().unwrap();
            let out = tmp.path().join(format!("{name}-out"));
            let os = out.to_str().unwrap();
            let gs = good.to_str().unwrap();
            let cmds: Vec<Vec<&str>> = vec![
                vec!["status", fs],
                vec!["check", fs],
                vec!["inspect", fs],
                vec!["verify", "--no-catalog", fs],
                vec!["get", fs, "", "--prefix", "-o", "json"],
                vec!["get", fs, "/registry/", "--prefix", "--rev", "180", "-o", "json"],
                vec!["history", fs, "/demo/items/item-0000"],
                vec!["hashkv", fs],
                vec!["stats", fs],
                vec!["diff", gs, fs],
                vec!["k8s", "ls", fs],
                vec!["k8s", "dump", fs, "--out", os],
                vec!["get", ds, "", "--prefix", "-o", "json"],
                vec!["check", ds],
                vec!["restore", fs, "--data-dir", os, "--force", "--skip-hash-check"],
                vec!["restore", ds, "--data-dir", os, "--force"],
                vec!["force-new-cluster", ds, "--out", os, "--force"],
            ];
            for args in cmds {
                let (code, stdout, stderr) = bounded(&args, Some(2 << 30));
                let what = format!("{} {name}: {args:?}", v.display());
                assert!((0..=2).contains(&code), "{what}: exit {code}\n{stderr}");
                assert!(!stderr.contains("panicked"), "{what}: {stderr}");
                // Nothing read from a broken tree passes as a good answer.
                let reads = [
                    "get", "history", "hashkv", "stats", "diff", "status", "check", "verify",
                ];
                if reads.contains(&args[0]) {
                    assert_ne!(code, 0, "{what}: exit 0\n{stdout}\n{stderr}");
                }
                if args[0] == "get" && !stdout.is_empty() {
                    ascending_unique(&stdout, &what);
                }
            }
            let _ = std::fs::remove_dir_all(&out);
        }
    }
}

/// The keys of `get -o json` must ascend, each once.
fn ascending_unique(out: &str, what: &str) {
    let j: serde_json::Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{what}: {e}: {out}"));
    let keys: Vec<&str> = j["kvs"]
        .as_array()
        .map(|a| a.iter().filter_map(|kv| kv["key"].as_str()).collect())
        .unwrap_or_default();
    let decoded: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, k).unwrap())
        .collect();
    for w in decoded.windows(2) {
        assert!(
            w[0] < w[1],
            "{what}: keys out of order or repeated: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}
