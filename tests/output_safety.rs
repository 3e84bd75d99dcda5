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

#[test]
fn k8s_dump_never_writes_through_a_link_and_refuses_a_full_tree_without_merge() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let snap = repo().join("testdata/k8s/objects.snapshot.db");
    let s = snap.to_str().unwrap();
    let out = tmp.path().join("dump");
    let o = out.to_str().unwrap();
    let keys = repo().join("testdata/k8s/encryption-config.yaml");
    let k = keys.to_str().unwrap();
    // (Exit 1: the fixture holds a custom resource of a type no schema
    // knows; every other object is written.)
    let dump = |extra: &[&str]| {
        let mut a = vec!["k8s", "dump", s, "--encryption-config", k, "--out", o];
        a.extend_from_slice(extra);
        run(&a)
    };
    let r = dump(&[]);
    assert!(r.code <= 1 && out.join("prod/secrets").is_dir(), "{}", r.err);
    let secret = out.join("default/secrets/plain.yaml");
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secret), 0o600, "Secrets are 0600");
    // A second dump into the full tree: refused without --merge.
    let r = dump(&[]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("--merge"), "{}", r.err);
    // A symlink planted where a Secret goes, to a file outside the tree:
    // replaced by the Secret's file; the outside file untouched.
    let victim = tmp.path().join("victim.conf");
    std::fs::write(&victim, b"precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(&secret).unwrap();
    std::os::unix::fs::symlink(&victim, &secret).unwrap();
    let r = dump(&["--merge"]);
    assert!(r.code <= 1, "{}", r.err);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(mode(&victim), 0o644);
    assert!(std::fs::symlink_metadata(&secret).unwrap().is_file());
    assert_eq!(mode(&secret), 0o600);
    // A symlinked directory in the tree: not followed.
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::remove_dir_all(out.join("prod")).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("prod")).unwrap();
    let r = dump(&["--merge"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("not followed"), "{}", r.err);
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}
