//! A file cut short while a command reads it (a backup rewritten while
//! `verify` runs, a db copied over while `status` reads it): every command
//! that maps a file must end normally with an error naming the file and the
//! offset, never be killed by SIGBUS, and never put an output in place.
//!
//! The cut is made at a known point: `ETCD_RESCUE_TEST_MAP_BARRIER` makes
//! the binary stop after each mapping until the test has seen it; the test
//! truncates the input then, as another process would.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the file is cut: after its two meta pages, so every command gets
/// past opening it and faults on the pages it reads next.
const CUT_AT: u64 = 8192;

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    out: String,
    err: String,
    /// How many times the target was mapped.
    mappings: usize,
}

/// Runs the binary with `args` behind the barrier; when `cut` is
/// `Some(k)`, the target is cut to [`CUT_AT`] bytes right after its k-th
/// mapping (0-based), before the command reads through it.
fn run_barrier(args: &[&str], target: &Path, cut: Option<usize>) -> Outcome {
    let barrier = tempfile::tempdir().unwrap();
    let target = std::fs::canonicalize(target).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
        .args(args)
        .env("ETCD_RESCUE_TEST_MAP_BARRIER", barrier.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut mappings = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let done = child.try_wait().unwrap();
        assert!(Instant::now() < deadline, "{args:?}: no end in 120 s");
        let mut flags: Vec<PathBuf> = std::fs::read_dir(barrier.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_none())
            .collect();
        flags.sort();
        for flag in flags {
            let mapped = PathBuf::from(std::fs::read_to_string(&flag).unwrap());
            if mapped == target {
                if cut == Some(mappings) {
                    let f = std::fs::OpenOptions::new().write(true).open(&target).unwrap();
                    f.set_len(CUT_AT).unwrap();
                }
                mappings += 1;
            }
            std::fs::remove_file(&flag).unwrap();
        }
        if let Some(st) = done {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: status.code(),
        signal: status.signal(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
        mappings,
    }
}

/// Runs `args` once uncut (it must succeed), then once per mapping of the
/// target with the cut right after that mapping, on a fresh copy made by
/// `setup` each time. Every cut run ends on its own, non-zero, naming the
/// file as cut short; at least one sees the file change under a read.
fn every_cut(what: &str, setup: &dyn Fn(&Path) -> (Vec<String>, PathBuf), outputs: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (args, target) = setup(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let clean = run_barrier(&args, &target, None);
    assert!(clean.mappings > 0, "{what}: the target is never mapped");
    assert!(
        matches!(clean.code, Some(0 | 1)),
        "{what}: uncut run: {:?}\n{}{}",
        clean.code,
        clean.out,
        clean.err
    );
    let mut seen_changing = false;
    for k in 0..clean.mappings {
        let dir = tempfile::tempdir().unwrap();
        let (args, target) = setup(dir.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run_barrier(&args, &target, Some(k));
        let what = format!("{what} (cut after mapping {k} of {})", clean.mappings);
        let changing = assert_reported(&what, &o, &target);
        seen_changing |= changing;
        for out in outputs.iter().filter(|_| changing) {
            assert!(
                !dir.path().join(out).exists(),
                "{what}: {out} was put in place from a cut input"
            );
        }
    }
    assert!(seen_changing, "{what}: no cut fell under a read");
}

/// Asserts the command ended on its own and non-zero; whether it saw the
/// file change under a read, which it must then report naming the file,
/// the offset and the size the file has now. (A cut between two mappings
/// is a file that was short when it was read: reported as such, or
/// salvaged as such, never exit 0.)
fn assert_reported(what: &str, o: &Outcome, file: &Path) -> bool {
    assert_eq!(
        o.signal, None,
        "{what}: killed by signal {:?}\n{}",
        o.signal, o.err
    );
    let all = format!("{}{}", o.out, o.err);
    assert!(!all.contains("panicked"), "{what}: panic\n{all}");
    let code = o.code.unwrap();
    assert_ne!(code, 0, "{what}: exit 0 on a file cut short\n{all}");
    let changing = all.contains("changed while it was read");
    if changing {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(all.contains(&*name), "{what}: the file is not named:\n{all}");
        assert!(
            all.contains("from byte ") && all.contains(&format!("it is now {CUT_AT} bytes")),
            "{what}: the offset is not named:\n{all}"
        );
    }
    changing
}

fn fresh_copy(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(src, &p).unwrap();
    p
}

fn fixture(rel: &str) -> PathBuf {
    common::repo().join(rel)
}

/// A snapshot copied to `dir/in/backup.db`, and `args` with FILE and
/// OUT(name) filled in.
fn on_snapshot(src: &Path, name: &str, args: &[&str]) -> impl Fn(&Path) -> (Vec<String>, PathBuf) {
    let src = src.to_path_buf();
    let name = name.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    move |dir: &Path| {
        std::fs::create_dir_all(dir.join("in")).unwrap();
        let file = fresh_copy(&src, &dir.join("in"), &name);
        let args = args
            .iter()
            .map(|a| match a.as_str() {
                "FILE" => file.display().to_string(),
                "IN" => dir.join("in").display().to_string(),
                "OTHER" => fresh_copy(&src, dir, "other.db").display().to_string(),
                a if a.starts_with("OUT:") => dir.join(&a[4..]).display().to_string(),
                a => a.to_string(),
            })
            .collect();
        (args, file)
    }
}

#[test]
fn snapshot_commands_survive_a_cut() {
    let snap = fixture("testdata/fixtures/v3.5.1/single.snapshot.db");
    let cases: [(&str, &[&str]); 14] = [
        ("status", &["status", "FILE"]),
        ("status -o json", &["status", "-o", "json", "FILE"]),
        ("check", &["check", "FILE"]),
        ("inspect", &["inspect", "FILE"]),
        ("get", &["get", "FILE", "", "--prefix"]),
        ("history", &["history", "FILE", "foo"]),
        ("diff", &["diff", "FILE", "OTHER"]),
        ("hashkv", &["hashkv", "FILE"]),
        ("stats", &["stats", "FILE"]),
        ("restore", &["restore", "FILE", "--data-dir", "OUT:restored"]),
        ("salvage", &["salvage", "FILE", "--out", "OUT:rescued.db"]),
        (
            "compact",
            &["compact", "FILE", "--rev", "head", "--out", "OUT:compacted.db"],
        ),
        ("defrag", &["defrag", "FILE", "--out", "OUT:defragged.db"]),
        ("verify", &["verify", "-o", "json", "IN"]),
    ];
    for (what, args) in cases {
        let outs = ["restored", "rescued.db", "compacted.db", "defragged.db"];
        every_cut(what, &on_snapshot(&snap, "backup.db", args), &outs);
    }
}

#[test]
fn k8s_commands_survive_a_cut() {
    let snap = fixture("testdata/k8s/objects.snapshot.db");
    let cases: [(&str, &[&str]); 4] = [
        ("k8s ls", &["k8s", "ls", "FILE"]),
        ("k8s get", &["k8s", "get", "FILE", "cm"]),
        ("k8s dump", &["k8s", "dump", "FILE", "--out", "OUT:dump"]),
        ("k8s diff", &["k8s", "diff", "FILE", "--rev", "2"]),
    ];
    for (what, args) in cases {
        every_cut(what, &on_snapshot(&snap, "objects.db", args), &["dump"]);
    }
}

#[test]
fn data_dir_commands_survive_a_cut() {
    let vdir = fixture("testdata/fixtures/v3.5.1");
    let src = common::extracted_dir(&vdir, "single").join("single");
    let cases: [(&str, &[&str]); 7] = [
        ("check", &["check"]),
        ("inspect", &["inspect"]),
        ("status", &["status"]),
        ("get", &["get"]),
        ("wal", &["wal"]),
        ("verify", &["verify", "-o", "json"]),
        ("restore", &["restore"]),
    ];
    for (what, sub) in cases {
        let setup = |dir: &Path| {
            let data = dir.join("data");
            common::copy_tree(&src, &data);
            // The db for every command but `wal`, which reads the WAL: its
            // first segment.
            let file = if what == "wal" {
                common::wal_segments(&data.join("member"))[0].clone()
            } else {
                data.join("member/snap/db")
            };
            let mut args: Vec<String> = sub.iter().map(|s| s.to_string()).collect();
            args.push(data.display().to_string());
            match what {
                "get" => args.extend(["".into(), "--prefix".into()]),
                "restore" => args.extend(["--data-dir".into(), dir.join("restored").display().to_string()]),
                _ => {}
            }
            (args, file)
        };
        every_cut(what, &setup, &["restored"]);
    }
}
