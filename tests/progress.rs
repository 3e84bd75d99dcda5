//! The progress bar of long commands goes to stderr, only on a terminal
//! (`ETCD_RESCUE_PROGRESS=always` stands in for one here), and never
//! changes a byte of stdout.

mod common;

use common::{repo, run_bin_bytes};

/// (stdout, stderr) of the binary with `ETCD_RESCUE_PROGRESS` set to `mode`.
fn run_with(mode: Option<&str>, args: &[&str]) -> (Vec<u8>, String) {
    let (_, out, err) = run_bin_bytes(args, &[("ETCD_RESCUE_PROGRESS", mode)]);
    (out, err)
}

#[test]
fn the_bar_is_drawn_on_stderr_only_and_stdout_is_unchanged() {
    let snap = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let s = snap.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("salvaged.db");
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", s],
        vec!["-o", "json", "check", s],
        vec!["stats", s],
        vec!["salvage", s, "--out", out.to_str().unwrap(), "--dry-run"],
    ];
    let steps = [
        "walking pages",
        "hashing",
        "reading revisions",
        "scanning every page",
    ];
    for args in cases {
        let (plain_out, plain_err) = run_with(None, &args);
        let (bar_out, bar_err) = run_with(Some("always"), &args);
        assert_eq!(bar_out, plain_out, "{args:?}: stdout changed by the bar");
        // The final drawing: a step, and every byte begun done.
        let final_line = final_drawing(&bar_err);
        assert!(
            steps.iter().any(|st| final_line.starts_with(st)),
            "{args:?}: {final_line:?}"
        );
        let sizes = final_line.split("] ").nth(1).unwrap_or("");
        let (done, rest) = sizes.split_once('/').unwrap_or(("", ""));
        assert!(
            rest.starts_with(done) && done != "0 B",
            "{args:?}: {final_line:?}"
        );
        // Captured stderr is no terminal: no bar; nor with `never`.
        let (_, never_err) = run_with(Some("never"), &args);
        for e in [&plain_err, &never_err] {
            assert!(
                !steps.iter().any(|st| e.contains(st)),
                "{args:?}: a bar off a terminal: {e:?}"
            );
        }
    }
}

/// The text of the last line the bar drew (after its cursor movements).
fn final_drawing(stderr: &str) -> &str {
    let seg = stderr.rsplit('\u{1b}').find(|l| l.contains("] ")).unwrap_or("");
    // Past the rest of the escape sequence (`[1A`).
    let text = match seg.strip_prefix('[') {
        Some(rest) => rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .get(1..)
            .unwrap_or(""),
        None => seg,
    };
    text.trim_start_matches('\r')
}
