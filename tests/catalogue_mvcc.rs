//! The corruption catalogue, etcd's layer in the db: the `key` bucket
//! renamed, revision keys out of order, a KeyValue that is not protobuf,
//! and the snapshot's sha256 trailer flipped or cut. The machinery (and what
//! every case must show) is in `tests/common/catalogue.rs`.

mod common;

use std::path::Path;

use common::catalogue::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::trailer;

fn db_bucket_renamed(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let node = db.node(db.meta().root).unwrap();
    let (_, i, _) = root_elem(&bytes, b"key");
    let k = off_in(&bytes, node.leaf(i).unwrap().key);
    // "key" -> "kez": still sorted before "lease", but etcd's bucket is gone.
    edit(p, |b| b[k + 2] = b'z');
    vec![
        at("missing-bucket").msg("no `key` bucket"),
        at("unknown-bucket").msg("\"kez\""),
    ]
}

fn db_key_order(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[1];
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let key = db
        .node(etcd_rescue::bolt::Pgid(leaf))
        .unwrap()
        .leaf(5)
        .unwrap()
        .key;
    let k = off_in(&bytes, key);
    // Raise the high byte of the main revision: order breaks, and the
    // KeyValue's mod_revision no longer matches its key.
    edit(p, |b| b[k + 6] ^= 0x10);
    let ps = page_size(&bytes) as u64;
    let elem = |i: u64| leaf * ps + 16 + 16 * i;
    vec![
        // Element 6 is no longer greater than element 5.
        at("key-order").page(leaf).offset(elem(6)),
        at("mod-revision-mismatch").page(leaf).offset(elem(5)),
        at("history-gap").page(leaf).offset(elem(5)),
    ]
}

fn db_bad_keyvalue(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (_, leaves) = key_pages(&bytes);
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let value = db
        .node(etcd_rescue::bolt::Pgid(leaves[0]))
        .unwrap()
        .leaf(0)
        .unwrap()
        .value;
    let v = off_in(&bytes, value);
    // Field 1's tag with wire type 7: not protobuf.
    edit(p, |b| b[v] = 0x0f);
    let ps = page_size(&bytes) as u64;
    vec![at("bad-keyvalue").page(leaves[0]).offset(leaves[0] * ps + 16)]
}

fn db_trailer_flipped(p: &Path) -> Vec<Loc> {
    edit(p, |b| {
        let n = b.len();
        b[n - 1] ^= 1
    });
    vec![at("sha256-mismatch")]
}

fn db_trailer_cut(p: &Path) -> Vec<Loc> {
    edit(p, |b| {
        let n = b.len();
        b.truncate(n - 32)
    });
    vec![at("no-sha256-trailer")]
}

// ---------------------------------------------------------------------------
// the cases

const CATALOGUE: &[Case] = &[
    case!(
        "db-bucket-renamed",
        "the key bucket's name changed to kez",
        SNAP,
        Cmd::Check,
        db_bucket_renamed,
        ["missing-bucket", "sha256-mismatch", "unknown-bucket"],
        1,
        false
    ),
    case!(
        "db-key-order",
        "a revision key's main revision raised, out of order",
        SNAP,
        Cmd::Check,
        db_key_order,
        [
            "history-gap",
            "key-order",
            "mod-revision-mismatch",
            "sha256-mismatch"
        ],
        1,
        false
    ),
    case!(
        "db-bad-keyvalue",
        "a KeyValue's first byte is not protobuf",
        SNAP,
        Cmd::Check,
        db_bad_keyvalue,
        ["bad-keyvalue", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-sha256-mismatch",
        "one bit of the sha256 trailer flipped",
        SNAP,
        Cmd::Check,
        db_trailer_flipped,
        ["sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-trailer-cut",
        "the 32-byte sha256 trailer cut off",
        SNAP,
        Cmd::Check,
        db_trailer_cut,
        ["no-sha256-trailer"],
        0,
        true
    ),
];

#[test]
fn catalogue_cases() {
    run_catalogue(CATALOGUE);
}

#[test]
fn catalogue_size() {
    assert!(CATALOGUE.len() >= 5, "mvcc cases");
}

/// docs/corruption.md has one table row per case, in the same order, with
/// the same codes, exit code and salvage claim.
#[test]
fn docs_match_the_catalogue() {
    docs_match(CATALOGUE);
}
