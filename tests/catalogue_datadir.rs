//! The corruption catalogue, data dir layer: `.snap` files damaged, empty,
//! cut or disagreeing with the db, the db a `.snap` names missing, the
//! member's db missing or torn. The machinery (and what every case must
//! show, real etcd's verdict on a copy included) is in
//! `tests/common/catalogue.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::catalogue::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::trailer;

// ---------------------------------------------------------------------------
// snap / data dir damage

fn snap_dir(d: &Path) -> PathBuf {
    d.join("member/snap")
}

/// The newest `.snap` file's name.
fn newest_snap(d: &Path) -> String {
    etcd_rescue::snap::scan(&snap_dir(d)).snaps[0].file.clone()
}

fn snap_bad_crc(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    edit(&snap_dir(d).join(&f), |b| {
        let n = b.len();
        b[n / 2] ^= 0xff
    });
    vec![at("snap-crc-mismatch").file(format!("member/snap/{f}"))]
}

fn snap_truncated(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    edit(&snap_dir(d).join(&f), |b| {
        let n = b.len();
        b.truncate(n / 2)
    });
    vec![at("snap-undecodable").file(format!("member/snap/{f}"))]
}

fn snap_empty(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    edit(&snap_dir(d).join(&f), |b| b.clear());
    vec![at("snap-empty").file(format!("member/snap/{f}"))]
}

fn snap_index_mismatch(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    let n = etcd_rescue::snap::name::SnapName::parse(&f).unwrap();
    // Named one index higher than the snapshot it holds.
    let renamed = format!("{:016x}-{:016x}.snap", n.term.0, n.index.0 + 1);
    std::fs::rename(snap_dir(d).join(&f), snap_dir(d).join(&renamed)).unwrap();
    vec![at("snap-name-mismatch").file(format!("member/snap/{renamed}"))]
}

fn snap_db_missing(d: &Path) -> Vec<Loc> {
    let db = snap_dir(d).join("db");
    let bytes = read(&db);
    let (ci_at, oldest) = {
        let (b, _) = Db::open(&bytes).unwrap();
        let meta = b.bucket(b"meta").unwrap().unwrap();
        let v = meta.get(b"consistent_index").unwrap().unwrap().value;
        assert_eq!(v.len(), 8);
        let snaps = etcd_rescue::snap::scan(&snap_dir(d));
        let oldest = snaps
            .snaps
            .iter()
            .filter_map(|s| s.snapshot.as_ref().map(|x| x.index.0))
            .min()
            .unwrap();
        (off_in(&bytes, v), oldest)
    };
    // The db's consistent index below every snapshot, as if etcd had
    // received a snapshot from the leader but its <index>.snap.db was lost.
    edit(&db, |b| {
        b[ci_at..ci_at + 8].copy_from_slice(&(oldest - 1).to_be_bytes())
    });
    vec![
        at("db-behind-snapshot")
            .file("member/snap/db")
            .msg(format!("consistent index {}", oldest - 1)),
    ]
}

fn datadir_db_missing(d: &Path) -> Vec<Loc> {
    std::fs::remove_file(snap_dir(d).join("db")).unwrap();
    vec![at("db-missing").file("member/snap/db")]
}

fn datadir_db_torn(d: &Path) -> Vec<Loc> {
    let db = snap_dir(d).join("db");
    let bytes = read(&db);
    let ps = page_size(&bytes);
    // The cut must take the root page with it (whatever etcd's layout):
    // page 3, or the root page when it comes first.
    let root = Db::open(trailer::image(&bytes)).unwrap().0.meta().root.0 as usize;
    let len = 3.min(root) * ps + ps / 2;
    edit(&db, |b| b.truncate(len));
    vec![at("file-truncated").file("member/snap/db").offset(len as u64)]
}

// ---------------------------------------------------------------------------
// the cases

const CATALOGUE: &[Case] = &[
    case!(
        "snap-bad-crc",
        "one byte in the middle of the newest .snap flipped",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_bad_crc,
        ["snap-crc-mismatch"],
        1,
        false
    ),
    case!(
        "snap-truncated",
        "the newest .snap cut to half its size",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_truncated,
        ["snap-undecodable"],
        1,
        false
    ),
    case!(
        "snap-empty",
        "the newest .snap has 0 bytes",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_empty,
        ["snap-empty"],
        1,
        false
    ),
    case!(
        "snap-index-mismatch",
        "the newest .snap renamed to the next index",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_index_mismatch,
        ["snap-name-mismatch"],
        1,
        false
    ),
    case!(
        "snap-db-missing",
        "the db's consistent index below every snapshot, no <index>.snap.db",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_db_missing,
        ["db-behind-snapshot", "db-behind-wal"],
        1,
        false
    ),
    case!(
        "datadir-db-missing",
        "member/snap/db removed",
        SINGLE,
        Cmd::Check,
        datadir_db_missing,
        ["db-behind-wal", "db-missing"],
        1,
        false
    ),
    case!(
        "datadir-db-torn",
        "member/snap/db cut in the middle of page 3, or of the root page if it comes first",
        SINGLE,
        Cmd::Check,
        datadir_db_torn,
        ["file-truncated", "missing-bucket", "page-beyond-eof"],
        1,
        false
    ),
];

#[test]
fn catalogue_cases() {
    run_catalogue(CATALOGUE);
}

#[test]
fn catalogue_size() {
    assert!(CATALOGUE.len() >= 4, "snap/data dir cases");
}

/// docs/corruption.md has one table row per case, in the same order, with
/// the same codes, exit code and salvage claim.
#[test]
fn docs_match_the_catalogue() {
    docs_match(CATALOGUE);
}
