//! The typical mistakes of a user in a hurry, each with the message that
//! says what the file is and what to run instead, and the exit code the
//! README promises (2: could not run; 1: the input has problems). Each is
//! also run with `-o json`: stdout is then JSON (with an `error` document
//! when a command that has no report of its own fails), never the text of
//! a message. An OS error is printed once.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// The inputs the mistakes are made with.
struct Inputs {
    _tmp: tempfile::TempDir,
    snap: PathBuf,
    raw_db: PathBuf,
    wal: PathBuf,
    raft_snap: PathBuf,
    yaml: PathBuf,
    text_gz: PathBuf,
    snap_gz: PathBuf,
    two_in_tar: PathBuf,
    empty_dir: PathBuf,
    parent_dir: PathBuf,
    full_dir: PathBuf,
}

fn inputs() -> Inputs {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let vdir = repo().join("testdata/fixtures/v3.5.1");
    let snap = t.join("backup.db");
    std::fs::copy(vdir.join("single.snapshot.db"), &snap).unwrap();
    let member = extracted_dir(&vdir, "snapcount");
    let find = |ext: &str| {
        walk_files(&member)
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("a .{ext} file in the snapcount fixture"))
    };
    let raw_db = t.join("db");
    std::fs::copy(
        walk_files(&member)
            .into_iter()
            .find(|p| p.ends_with("snap/db"))
            .unwrap(),
        &raw_db,
    )
    .unwrap();
    let yaml = t.join("kubeconfig.yaml");
    std::fs::write(&yaml, "apiVersion: v1\nkind: Config\nclusters: []\n").unwrap();
    let text_gz = t.join("notes.txt.gz");
    std::fs::write(&text_gz, gzip(b"remember to take backups\n")).unwrap();
    let snap_gz = t.join("backup.db.gz");
    std::fs::write(&snap_gz, gzip(&std::fs::read(&snap).unwrap())).unwrap();
    let pair = t.join("pair");
    std::fs::create_dir_all(&pair).unwrap();
    std::fs::copy(&snap, pair.join("a.db")).unwrap();
    std::fs::copy(&snap, pair.join("b.db")).unwrap();
    let two_in_tar = t.join("pair.tar");
    std::fs::write(&two_in_tar, tar_of(&pair)).unwrap();
    let empty_dir = t.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let full_dir = t.join("full");
    std::fs::create_dir_all(&full_dir).unwrap();
    std::fs::write(full_dir.join("keep.txt"), "x").unwrap();
    Inputs {
        _tmp: tmp,
        snap,
        raw_db,
        wal: find("wal"),
        raft_snap: find("snap"),
        yaml,
        text_gz,
        snap_gz,
        two_in_tar,
        empty_dir,
        parent_dir: member,
        full_dir,
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// One mistake: what is run, the exit code, and what stderr must say.
struct Mistake {
    what: &'static str,
    args: Vec<String>,
    code: i32,
    says: &'static [&'static str],
}

/// `says` made at run time (from an oracle file), for the table.
fn says(v: &[String]) -> &'static [&'static str] {
    let v: Vec<&'static str> = v.iter().map(|s| &*s.clone().leak()).collect();
    v.leak()
}

fn table(i: &Inputs) -> Vec<Mistake> {
    // What real etcd said of the snapshot the mistakes are made with.
    let v35 = repo().join("testdata/fixtures/v3.5.1");
    let compacted = oracle::compact_revision(&v35).to_string();
    let head = format!("head revision is {}", oracle::snapshot_revision(&v35, "single"));
    let m = |what, args: &[&str], code, says| Mistake {
        what,
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        says,
    };
    let restore = |src: &Path, dir: &str| {
        let dir = i.empty_dir.parent().unwrap().join(dir);
        vec!["restore".to_string(), s(src), "--data-dir".into(), s(&dir)]
    };
    let (snap, wal, rs) = (s(&i.snap), s(&i.wal), s(&i.raft_snap));
    let k8s = s(&repo().join("testdata/k8s/objects.snapshot.db"));
    let mut t = vec![
        m(
            "status of a YAML file",
            &["status", &s(&i.yaml)],
            2,
            &["not etcd data", "text"],
        ),
        m(
            "status of a gzip of text",
            &["status", &s(&i.text_gz)],
            2,
            &["not etcd data"],
        ),
        m(
            "get on a WAL segment",
            &["get", &wal, "/"],
            2,
            &["a WAL segment", "etcd-rescue wal"],
        ),
        m(
            "get on a raft .snap",
            &["get", &rs, "/"],
            2,
            &["a raft .snap file", "member's db"],
        ),
        m(
            "get on an empty dir",
            &["get", &s(&i.empty_dir), "/"],
            2,
            &["not an etcd data dir"],
        ),
        m(
            "status of a dir holding a data dir",
            &["status", &s(&i.parent_dir)],
            2,
            &["not etcd data"],
        ),
        m(
            "get below the compaction",
            &["get", &snap, "/", "--prefix", "--rev", "5"],
            2,
            says(&["has been compacted".into(), compacted]),
        ),
        m(
            "get in the future",
            &["get", &snap, "/", "--rev", "99999"],
            2,
            says(&["in the future".into(), head]),
        ),
        m(
            "hashkv below the compaction",
            &["hashkv", &snap, "--rev", "100"],
            2,
            &["has been compacted"],
        ),
        m(
            "check of a missing file",
            &["check", "/nonexistent/backup.db"],
            2,
            &["No such file or directory"],
        ),
        m(
            "get of a missing file",
            &["get", "/nonexistent/backup.db", "/"],
            2,
            &["No such file or directory"],
        ),
        m(
            "wal of a snapshot",
            &["wal", &snap],
            2,
            &["a bbolt db", "not a WAL", "etcd-rescue status"],
        ),
        m(
            "wal of a raft .snap",
            &["wal", &rs],
            2,
            &["a raft .snap file", "not a WAL"],
        ),
        m(
            "diff of one source with itself",
            &["diff", &snap],
            2,
            &["give a second source", "--rev"],
        ),
        m(
            "k8s diff of one source with itself",
            &["k8s", "diff", &snap],
            2,
            &["give a second source"],
        ),
        m(
            "a prefix given twice",
            &["get", &snap, "/a", "--prefix", "/b"],
            2,
            &["give the prefix once"],
        ),
        m(
            "salvage onto its input",
            &["salvage", &snap, "--out", &snap],
            2,
            &["would destroy the input"],
        ),
        m(
            "verify of an empty dir",
            &["verify", "--no-catalog", &s(&i.empty_dir)],
            2,
            &["nothing to verify"],
        ),
        m(
            "-o yaml outside k8s",
            &["-o", "yaml", "status", &snap],
            2,
            &["only for `k8s`"],
        ),
        m(
            "-w fields on stats",
            &["-w", "fields", "stats", &snap],
            2,
            &["`status`, `get` and `hashkv`"],
        ),
        m(
            "--count-only with -w simple",
            &["get", "-w", "simple", &snap, "/", "--prefix", "--count-only"],
            2,
            &["--count-only"],
        ),
        m(
            "compact of a gzip",
            &[
                "compact",
                &s(&i.snap_gz),
                "--rev",
                "head",
                "--out",
                "/nonexistent/x.db",
            ],
            2,
            &["a gzip file", "decompress it first"],
        ),
        m(
            "get from an archive of two backups",
            &["get", &s(&i.two_in_tar), "/"],
            2,
            &["2 etcd files or dirs inside", "a.db", "b.db"],
        ),
        m(
            "k8s get of an object that is not there",
            &["k8s", "get", &snap, "pods", "web"],
            1,
            &["pods \"web\" not found"],
        ),
        m(
            "k8s get of a resource the data has nowhere",
            &["k8s", "get", &snap, "pods"],
            1,
            &["holds no pods at all"],
        ),
        m(
            "k8s get of an empty list",
            &["k8s", "get", &k8s, "configmaps", "-n", "no-such-ns"],
            0,
            &["no configmaps found in namespace no-such-ns"],
        ),
        m(
            "an unknown command",
            &["snapshot", "status", &snap],
            2,
            &["unrecognized subcommand"],
        ),
    ];
    t.push(Mistake {
        what: "restore of a WAL segment",
        args: restore(&i.wal, "r1"),
        code: 2,
        says: &["a WAL segment", "restore the member dir"],
    });
    t.push(Mistake {
        what: "restore of a raw db copy",
        args: restore(&i.raw_db, "r2"),
        code: 1,
        says: &["no sha256 trailer", "--skip-hash-check"],
    });
    let mut onto_full = restore(&i.snap, "full");
    onto_full[3] = s(&i.full_dir);
    t.push(Mistake {
        what: "restore onto a non-empty dir",
        args: onto_full,
        code: 2,
        says: &["not empty", "--force"],
    });
    let mut bad_name = restore(&i.snap, "r3");
    bad_name.extend(["--name", "m9", "--initial-cluster", "m1=http://10.0.0.1:2380"].map(String::from));
    t.push(Mistake {
        what: "restore with a --name not in --initial-cluster",
        args: bad_name,
        code: 2,
        says: &["is not a member of --initial-cluster"],
    });
    t
}

#[test]
fn typical_mistakes_say_what_to_do_with_the_promised_exit_code() {
    let i = inputs();
    let mut failures = Vec::new();
    for m in table(&i) {
        let args: Vec<&str> = m.args.iter().map(String::as_str).collect();
        let r = run(&args);
        let mut wrong = Vec::new();
        if r.code != m.code {
            wrong.push(format!("exit {} (want {})", r.code, m.code));
        }
        // `check` reports on stdout; the others say it on stderr.
        let said = format!("{}{}", r.err, r.out);
        for want in m.says {
            if !said.contains(want) {
                wrong.push(format!("the output lacks {want:?}"));
            }
        }
        if r.err.matches("os error").count() > 1 {
            wrong.push("an OS error printed twice".into());
        }
        if r.err.contains("panicked") {
            wrong.push("a panic".into());
        }
        // The same mistake under -o json: stdout is JSON only.
        if args[0] != "snapshot" && !args.contains(&"-w") && !args.contains(&"-o") {
            let mut jargs = vec!["-o", "json"];
            jargs.extend_from_slice(&args);
            let j = run(&jargs);
            if j.code != m.code {
                wrong.push(format!("-o json: exit {}", j.code));
            }
            match json_docs(&j.out) {
                Err(e) => wrong.push(format!("-o json: stdout is not JSON ({e}): {:?}", j.out)),
                Ok(docs) if m.code != 0 && !docs.iter().any(names_the_failure) => {
                    wrong.push(format!("-o json: no error document: {}", j.out))
                }
                Ok(_) => {}
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {}",
                m.what,
                wrong.join("; "),
                r.err.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Stdout as JSON: one document, or one per line.
fn json_docs(out: &str) -> Result<Vec<Value>, serde_json::Error> {
    match serde_json::from_str::<Value>(out) {
        Ok(v) => Ok(vec![v]),
        Err(e) if out.trim().is_empty() => Err(e),
        Err(_) => out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect(),
    }
}

/// Whether a JSON document says the command failed: an `error`, or a
/// report whose judgment calls the input unreadable or not etcd data.
fn names_the_failure(v: &Value) -> bool {
    if v.get("error").is_some_and(|e| e.is_string()) {
        return true;
    }
    let text = v.to_string();
    text.contains("\"unreadable\"") || text.contains("\"skipped\"")
}
