//! The command line as a user meets it: the real binary, its help, exit
//! codes and output shapes.

mod common;

use common::*;

fn example() -> String {
    repo()
        .join("testdata/fixtures/v3.5.1/single.snapshot.db")
        .to_string_lossy()
        .into_owned()
}

const COMMANDS: &[&str] = &[
    "status",
    "check",
    "get",
    "history",
    "diff",
    "hashkv",
    "stats",
    "verify",
    "salvage",
    "inspect",
    "wal",
    "restore",
    "force-new-cluster",
    "k8s",
];

#[test]
fn version_and_help_with_examples() {
    let v = run_bin(&["--version"]);
    assert_eq!(v.code, 0);
    assert!(v.out.starts_with("etcd-rescue "), "{}", v.out);
    let h = run_bin(&["--help"]);
    assert_eq!(h.code, 0);
    for needle in COMMANDS.iter().chain(&["Examples:", "Exit codes"]) {
        assert!(h.out.contains(needle), "--help lacks {needle}: {}", h.out);
    }
    for cmd in COMMANDS {
        let h = run_bin(&[cmd, "--help"]);
        assert_eq!(h.code, 0);
        assert!(
            h.out.contains("Example:"),
            "{cmd} --help has no example: {}",
            h.out
        );
        assert!(h.out.contains(&format!("etcd-rescue {cmd} ")), "{}", h.out);
    }
}

#[test]
fn bad_usage_exits_2() {
    let r = run_bin(&["status"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("FILE"), "{}", r.err);
    let r = run_bin(&["frobnicate"]);
    assert_eq!(r.code, 2);
    let r = run_bin(&["check", "-o", "xml", &example()]);
    assert_eq!(r.code, 2);
}

#[test]
fn status_table_and_json_through_the_binary() {
    let t = run_bin(&["status", &example()]);
    assert_eq!(t.code, 0, "{}", t.err);
    for row in [
        "HASH",
        "REVISION",
        "TOTAL KEYS",
        "TOTAL SIZE",
        "COMPACT REVISION",
        "CONSISTENT INDEX",
        "MEMBERS",
        "SHA256 TRAILER",
    ] {
        assert!(t.out.contains(row), "table lacks {row}:\n{}", t.out);
    }
    // -w is accepted as in etcdutl.
    let j = run_bin(&["status", "-w", "json", &example()]);
    assert_eq!(j.code, 0);
    let v = j.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    for k in [
        "hash",
        "revision",
        "totalKey",
        "totalSize",
        "file",
        "fileSize",
        "compactRevision",
        "scheduledCompactRevision",
        "consistentIndex",
        "term",
        "confState",
        "clusterVersion",
        "members",
        "removedMembers",
        "leases",
        "alarms",
        "auth",
        "buckets",
        "keys",
        "pages",
        "meta",
        "trailer",
        "problems",
    ] {
        assert!(keys.contains(&k), "status JSON lacks {k}: {keys:?}");
    }
    // status does not hash the file unless asked (like etcdutl); check does.
    assert_eq!(v["trailer"]["state"], "unverified");
    let h = run_bin(&["status", "--verify-hash", "-o", "json", &example()]).json();
    assert_eq!(h["trailer"]["state"], "valid");
    assert_eq!(v["auth"]["users"], serde_json::json!(["alice", "root"]));
    // The built-in root role is not stored until auth is enabled.
    assert_eq!(v["auth"]["roles"], serde_json::json!(["reader"]));
    // Auth was never enabled, so no authEnabled key is stored.
    assert_eq!(v["auth"]["enabled"], serde_json::Value::Null);
    assert!(
        t.out.contains("disabled, users: alice, root; roles: reader"),
        "{}",
        t.out
    );
}

#[test]
fn check_several_files_and_exit_codes() {
    let good = example();
    let r = run_bin(&["check", &good, &good]);
    assert_eq!(r.code, 0, "{}", r.out);
    let rev = oracle::snapshot_revision(&repo().join("testdata/fixtures/v3.5.1"), "single");
    assert!(
        r.out.contains(&format!(": OK (snapshot: revision {rev}")),
        "{}",
        r.out
    );
    assert!(r.out.contains("2 files: 2 ok"), "{}", r.out);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.db");
    let mut b = std::fs::read(&good).unwrap();
    let n = b.len();
    b[n - 3] ^= 0x55;
    std::fs::write(&bad, b).unwrap();
    let r = run_bin(&["check", &good, bad.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.out.contains("DAMAGED") && r.out.contains("sha256-mismatch"),
        "{}",
        r.out
    );
    // An unreadable file wins: the run could not finish its job.
    let r = run_bin(&["check", bad.to_str().unwrap(), "/nonexistent.db"]);
    assert_eq!(r.code, 2);
    let j = run_bin(&["check", "-o", "json", &good, bad.to_str().unwrap()]).json();
    assert_eq!(j["summary"]["files"], 2);
    assert_eq!(j["summary"]["ok"], 1);
    assert_eq!(j["summary"]["damaged"], 1);
    assert_eq!(j["files"][1]["verdict"], "damaged");
}

#[test]
fn closed_stdout_is_not_an_error() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
        .args(["status", &example()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn usage_errors_and_help_are_coloured_only_on_a_terminal_or_when_forced() {
    let bin = env!("CARGO_BIN_EXE_etcd-rescue");
    let run_env = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(bin);
        c.args(args).env_remove("CLICOLOR_FORCE").env_remove("NO_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run etcd-rescue")
    };
    // Piped: no escape codes, in errors or in help.
    let o = run_env(&["get"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !o.stderr.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: the following required arguments"));
    let o = run_env(&["--help"], &[]);
    assert!(!o.stdout.contains(&0x1b));
    // Forced: coloured; NO_COLOR does not win over CLICOLOR_FORCE.
    let o = run_env(&["get"], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(o.stderr.contains(&0x1b), "{}", String::from_utf8_lossy(&o.stderr));
}
