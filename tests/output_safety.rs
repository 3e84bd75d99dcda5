//! Writers never destroy what they read: an output that is, contains or
//! lies inside an input is refused, `--force` or not, and the input is left
//! byte-identical (issue: `--force` with the output equal to the input used
//! to replace the input with the output's temporary copy).

mod common;

use std::path::Path;

use common::*;

fn refused(args: &[&str], input: &Path) {
    let r = unchanged(&[input], || run(args));
    assert_ne!(r.code, 0, "{args:?} was not refused: {}", r.out);
    assert!(r.err.contains("would destroy the input"), "{args:?}: {}", r.err);
}

#[test]
fn restore_force_new_cluster_and_salvage_refuse_to_write_over_their_input() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snapshot.db");
    std::fs::copy(repo().join("testdata/fixtures/v3.5.1/single.snapshot.db"), &snap).unwrap();
    let dir = tmp.path().join("killed");
    copy_tree(
        &extracted_dir(&repo().join("testdata/fixtures/v3.5.1"), "killed").join("killed"),
        &dir,
    );
    let s = snap.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let inside = dir.join("member/restored");
    let parent = tmp.path().to_str().unwrap();
    let other = tmp.path().join("other");
    let o = other.to_str().unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    for args in [
        vec!["restore", s, "--data-dir", s, "--force"],
        vec!["restore", d, "--data-dir", d, "--force"],
        vec!["restore", d, "--data-dir", inside.to_str().unwrap(), "--force"],
        vec!["restore", d, "--data-dir", link.to_str().unwrap(), "--force"],
        vec!["restore", d, "--all-members", parent, "--force"],
        vec!["restore", s, "--data-dir", o, "--wal-dir", s, "--force"],
        vec!["force-new-cluster", d, "--out", d, "--force"],
        vec!["salvage", s, "--out", s, "--force"],
    ] {
        let input = if args.contains(&s) { &snap } else { &dir };
        refused(&args, input);
    }
    // A target beside the input is written as before.
    let beside = tmp.path().join("restored");
    let r = unchanged(&[&snap], || {
        run(&["restore", s, "--data-dir", beside.to_str().unwrap()])
    });
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(beside.join("member/snap/db").is_file());
}
