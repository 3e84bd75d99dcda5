//! Salvage on arbitrary bytes (a damaged db): it must return, and the db it
//! writes must open and hold exactly the revisions the report counts, in a
//! history `check` accepts.

use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::{DbScanOptions, scan};
use etcd_rescue::salvage::{salvage, write_db};

/// The target's body.
pub fn run(data: &[u8]) {
    let s = salvage(data);
    let mut out = std::io::Cursor::new(Vec::new());
    write_db(&s, &mut out, 4096).expect("the salvaged buckets write");
    let bytes = out.into_inner();
    let (db, _) = Db::open(&bytes).expect("the salvaged db opens");
    let n = db.bucket(b"key").unwrap().unwrap().iter().count();
    assert_eq!(n as u64, s.report.revisions);
    let r = scan(
        &bytes,
        DbScanOptions {
            deep: true,
            verify_trailer: false,
            file_digest: false,
            single_thread: true,
            skip_hash: false,
        },
    );
    let history_errors: Vec<_> = r
        .findings
        .items()
        .iter()
        .filter(|f| {
            matches!(
                f.code,
                "history-gap"
                    | "orphan-tombstone"
                    | "double-tombstone"
                    | "generation-start"
                    | "version-discontinuity"
            )
        })
        .collect();
    assert!(history_errors.is_empty(), "{history_errors:?}");
}
