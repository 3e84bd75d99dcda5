//! The backup tree `verify` is tested on: real-etcd snapshots, dbs and
//! data dirs, good and damaged, plain and in gzip, zstd, zip and tar; the
//! same tree on disk and in object stores.

use std::path::Path;

use super::*;

/// Unix seconds `ago` seconds before now.
pub fn ts(ago: i64) -> i64 {
    etcd_rescue::batch::now() - ago
}

/// Writes the tree under `root` (with the loose data dir `dirs/killed`
/// when `loose_dir`: object stores hold archives of dirs, not dirs) and
/// returns (relative path, expected verdict) in the order verify lists them.
pub fn write_tree(root: &Path, loose_dir: bool) -> Vec<(&'static str, &'static str)> {
    let fx = repo().join("testdata/fixtures");
    let snap35 = std::fs::read(fx.join("v3.5.1/single.snapshot.db")).unwrap();
    let snap34 = std::fs::read(fx.join("v3.4.23/single.snapshot.db")).unwrap();
    let cluster = std::fs::read(fx.join("v3.5.1/cluster.snapshot.db")).unwrap();
    let dbs = extracted_dbs(&fx.join("v3.5.1"));
    let raw_db = std::fs::read(dbs.join("single/member/snap/db")).unwrap();
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    // An hourly series of one cluster: growing revisions.
    w(&format!("hourly/etcd-snapshot-m1-{}.db", ts(7200)), &snap34);
    w(&format!("hourly/etcd-snapshot-m1-{}.db", ts(3600)), &snap35);
    w(
        &format!("hourly/etcd-snapshot-m1-{}.db.gz", ts(600)),
        &gzip(&cluster),
    );
    w("compressed/single.db.zst", &zstd(&snap35));
    w(
        "compressed/k3s-snapshot.zip",
        &zip_of("etcd-snapshot-k3s", &cluster),
    );
    w("raw/db", &raw_db);
    // A data dir, and the same member dir in a tar.gz.
    let data = extract(&fx.join("v3.5.1/killed.datadir.tar.gz"));
    let member_dir = data.path().join("killed");
    w("dirs/killed.tar.gz", &gzip(&tar_of(&member_dir)));
    if loose_dir {
        copy_tree(&member_dir, &root.join("dirs/killed"));
    }
    // Damage.
    w("damaged/cut.db", &snap35[..snap35.len() / 2 + 100]);
    let mut bad_trailer = snap35.clone();
    let n = bad_trailer.len();
    bad_trailer[n - 1] ^= 1;
    w("damaged/bad-trailer.db", &bad_trailer);
    let mut flipped = snap34.clone();
    flipped[4096 + 16] ^= 0xff; // meta page 1 magic
    flipped[16] ^= 0xff; // meta page 0 magic
    w("damaged/no-meta.db.gz", &gzip(&flipped));
    let gz = gzip(&snap35);
    w("damaged/truncated.db.gz", &gz[..gz.len() / 2]);
    w("damaged/empty.db", b"");
    // Not etcd data.
    w("notes/README.txt", b"hourly etcd backups\n");
    let mut expect = vec![
        ("compressed/k3s-snapshot.zip!etcd-snapshot-k3s", "ok"),
        ("compressed/single.db.zst", "ok"),
        ("damaged/bad-trailer.db", "damaged"),
        ("damaged/cut.db", "damaged"),
        ("damaged/empty.db", "damaged"),
        ("damaged/no-meta.db.gz", "damaged"),
        ("damaged/truncated.db.gz", "unreadable"),
        ("dirs/killed", "ok"),
        ("dirs/killed.tar.gz!killed", "ok"),
        ("hourly/", "ok"),
        ("hourly/", "ok"),
        ("hourly/", "ok"),
        ("notes/README.txt", "skipped"),
        ("raw/db", "ok"),
    ];
    if !loose_dir {
        expect.retain(|(f, _)| *f != "dirs/killed");
    }
    expect
}
