//! Only regular files are read as files: a FIFO, a device or a socket given
//! as a file, as a member's `member/snap/db` or as a WAL segment gets a
//! clear "not a regular file" and a non-zero exit, never a blocked `open()`
//! or a misreading ("the file is empty").

mod common;

use std::path::Path;

use common::*;

fn mkfifo(p: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

#[test]
fn fifos_devices_and_sockets_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("snapshot.db");
    mkfifo(&fifo);
    let sock = tmp.path().join("etcd.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    for f in [fifo.as_path(), Path::new("/dev/zero"), sock.as_path()] {
        let s = f.to_str().unwrap();
        for args in [
            vec!["status", s],
            vec!["check", s],
            vec!["inspect", s],
            vec!["get", s, "", "--prefix"],
            vec!["hashkv", s],
            vec!["k8s", "ls", s],
            vec!["verify", "--no-catalog", s],
            vec!["restore", s, "--data-dir", o],
            vec!["salvage", s, "--out", o],
        ] {
            let (code, stdout, err) = bounded(&args, None);
            assert_eq!(code, 2, "{args:?}: {stdout}{err}");
            assert!(
                format!("{stdout}{err}").contains("not a regular file"),
                "{args:?}: {stdout}{err}"
            );
            assert!(!out.exists(), "{args:?} wrote an output");
        }
    }
    // Inside a member dir: its db, or a WAL segment.
    let v = repo().join("testdata/fixtures/v3.5.1");
    for part in ["db", "wal"] {
        let dir = tmp.path().join(format!("member-{part}"));
        copy_tree(&extracted_dir(&v, "killed").join("killed"), &dir);
        let target = if part == "db" {
            dir.join("member/snap/db")
        } else {
            wal_segments(&dir.join("member")).remove(0)
        };
        std::fs::remove_file(&target).unwrap();
        mkfifo(&target);
        let d = dir.to_str().unwrap();
        for args in [
            vec!["status", d],
            vec!["check", d],
            vec!["inspect", d],
            vec!["get", d, "", "--prefix"],
            vec!["verify", "--no-catalog", "-o", "json", d],
            vec!["restore", d, "--data-dir", o],
            vec!["force-new-cluster", d, "--out", o],
        ] {
            let (code, stdout, err) = bounded(&args, None);
            assert!(code == 1 || code == 2, "{args:?}: exit {code}: {err}");
            assert!(
                format!("{stdout}{err}").contains("not a regular file"),
                "{args:?}: {stdout}{err}"
            );
            assert!(!out.exists(), "{args:?} wrote an output");
        }
    }
}
