//! `verify` on a backup store made of real-etcd snapshots, dbs and data dirs,
//! good and damaged, plain and in gzip, zstd, zip and tar.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

struct Store {
    _dir: tempfile::TempDir,
    root: PathBuf,
    catalog: PathBuf,
}

/// The store: (relative path, expected verdict).
fn make_store() -> (Store, Vec<(&'static str, &'static str)>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let expect = backups::write_tree(&root, true);
    let catalog = dir.path().join("catalog.redb");
    (
        Store {
            _dir: dir,
            root,
            catalog,
        },
        expect,
    )
}

fn verify(store: &Store, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "verify",
        "-o",
        "json",
        "--catalog",
        store.catalog.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(store.root.to_str().unwrap());
    let r = run(&args);
    (r.code, r.json())
}

fn rel(store: &Store, r: &Value) -> String {
    r["file"]
        .as_str()
        .unwrap()
        .strip_prefix(&format!("{}/", store.root.display()))
        .unwrap()
        .to_string()
}

#[test]
fn verdicts_catalog_reuse_and_changed_files() {
    let (store, expect) = make_store();
    let files_before: Vec<PathBuf> = walk_files(&store.root);
    let (code, j) = unchanged(
        &files_before.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        || verify(&store, &[]),
    );
    assert_eq!(code, 1, "damaged backups fail the run");
    let results = j["results"].as_array().unwrap();
    let got: Vec<(String, String)> = results
        .iter()
        .map(|r| (rel(&store, r), r["verdict"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for ((file, verdict), (want_file, want_verdict)) in got.iter().zip(&expect) {
        assert!(file.starts_with(want_file), "{file} vs {want_file}");
        assert_eq!(verdict, want_verdict, "{file}");
    }
    // What the checks found is in the record.
    let find = |name: &str| results.iter().find(|r| rel(&store, r) == name).unwrap().clone();
    assert!(
        find("damaged/bad-trailer.db")["firstProblem"]
            .as_str()
            .unwrap()
            .starts_with("sha256-mismatch")
    );
    assert!(
        find("damaged/cut.db")["firstProblem"]
            .as_str()
            .unwrap()
            .contains("file-truncated")
    );
    assert!(
        find("damaged/no-meta.db.gz")["firstProblem"]
            .as_str()
            .unwrap()
            .starts_with("no-valid-meta")
    );
    assert!(
        find("damaged/empty.db")["firstProblem"]
            .as_str()
            .unwrap()
            .contains("0 bytes")
    );
    assert!(
        find("damaged/truncated.db.gz")["firstProblem"]
            .as_str()
            .unwrap()
            .contains("gzip")
    );
    assert_eq!(find("compressed/single.db.zst")["container"], "zstd");
    assert_eq!(
        find("compressed/single.db.zst")["revision"],
        oracle::snapshot_revision(&repo().join("testdata/fixtures/v3.5.1"), "single")
    );
    assert_eq!(find("dirs/killed")["kind"], "data-dir");
    assert_eq!(j["summary"]["units"], 14);
    assert_eq!(j["summary"]["afresh"], 14);
    assert_eq!(j["summary"]["fromCatalog"], 0);

    // Second run: everything from the catalog, nothing verified afresh, same verdicts.
    let (code2, j2) = verify(&store, &[]);
    assert_eq!(code2, 1);
    assert_eq!(j2["summary"]["afresh"], 0);
    assert_eq!(j2["summary"]["fromCatalog"], j["summary"]["units"]);
    let v1: Vec<&Value> = results.iter().map(|r| &r["verdict"]).collect();
    let v2: Vec<&Value> = j2["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["verdict"])
        .collect();
    assert_eq!(v1, v2);
    assert!(
        j2["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["fromCatalog"] == true)
    );

    // A file changed after the first run is verified again (and only it).
    std::thread::sleep(std::time::Duration::from_millis(20));
    let good = std::fs::read(repo().join("testdata/fixtures/v3.5.1/single.snapshot.db")).unwrap();
    std::fs::write(store.root.join("damaged/cut.db"), &good).unwrap();
    let (_, j3) = verify(&store, &[]);
    assert_eq!(j3["summary"]["afresh"], 1);
    let cut = j3["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| rel(&store, r) == "damaged/cut.db")
        .unwrap()
        .clone();
    assert_eq!(cut["verdict"], "ok");
    assert_eq!(cut["fromCatalog"], false);
    // --recheck verifies everything again.
    let (_, j4) = verify(&store, &["--recheck"]);
    assert_eq!(j4["summary"]["afresh"], j["summary"]["units"]);
}

#[test]
fn order_is_the_same_whatever_the_threads() {
    let (store, _) = make_store();
    let strip = |j: &Value| -> Vec<Value> {
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("verifiedAt");
                r
            })
            .collect()
    };
    let root = store.root.to_str().unwrap();
    let with = |jobs: &str| run(&["verify", "-o", "json", "--no-catalog", "--jobs", jobs, root]).json();
    let (one, two, four) = (with("1"), with("2"), with("4"));
    assert_eq!(strip(&one), strip(&two));
    assert_eq!(strip(&one), strip(&four));
}

#[test]
fn policies_for_cron() {
    let (store, _) = make_store();
    // Only the hourly series (growing, all with trailers, recent).
    let hourly = store.root.join("hourly");
    let args = |extra: &[&str]| {
        let mut a = vec!["verify", "-o", "json", "--no-catalog"];
        a.extend_from_slice(extra);
        a.push(hourly.to_str().unwrap());
        run(&a)
    };
    let r = args(&["--max-age", "2h", "--expect-growth", "--require-hash"]);
    assert_eq!(
        r.code, 1,
        "the gzip snapshot holds an older cluster (revision 57 after 193)"
    );
    let j = r.json();
    let last = j["results"].as_array().unwrap().last().unwrap().clone();
    assert!(
        last["policy"][0].as_str().unwrap().contains("went backwards"),
        "{last}"
    );
    // Without growth expectations the series passes.
    assert_eq!(args(&["--max-age", "2h", "--require-hash"]).code, 0);
    // Too old.
    let r = args(&["--max-age", "5m"]);
    assert_eq!(r.code, 1);
    assert!(
        r.json()["seriesFailures"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("older than --max-age")
    );
    // A raw db has no trailer.
    let r = run(&[
        "verify",
        "-o",
        "json",
        "--no-catalog",
        "--require-hash",
        store.root.join("raw").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.json()["results"][0]["policy"][0]
            .as_str()
            .unwrap()
            .contains("no sha256 trailer")
    );
}

#[test]
fn history_shows_series_and_revisions() {
    let (store, _) = make_store();
    verify(&store, &[]);
    let r = run(&[
        "verify",
        "--history",
        "--catalog",
        store.catalog.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("etcd-snapshot-m1-*.db:"), "{}", r.out);
    assert!(
        r.out.contains("BACKWARDS"),
        "the gzip snapshot's revision went down:\n{}",
        r.out
    );
    let j = run(&[
        "verify",
        "--history",
        "-o",
        "json",
        "--catalog",
        store.catalog.to_str().unwrap(),
    ])
    .json();
    assert!(j.as_array().unwrap().len() >= 10);
}

#[test]
fn missing_paths_and_globs() {
    let (store, _) = make_store();
    let r = run(&["verify", "--no-catalog", "/nonexistent/backups"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("no such file"), "{}", r.err);
    let pattern = format!("{}/hourly/*.db", store.root.display());
    let j = run(&["verify", "-o", "json", "--no-catalog", &pattern]).json();
    assert_eq!(j["results"].as_array().unwrap().len(), 2);
}
