//! Restore into the directories operators have: an empty mount point (a
//! tmpfs, in a private mount namespace) filled in place and served by real
//! etcd; a symlink to an empty dir followed; a dangling one refused before
//! anything is written; a run SIGKILLed mid-write cleaned up by the next;
//! a member name that would climb out of `--all-members` refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::etcd::{Etcd, Member, free_port};
use common::*;

fn restore_args(src: &Path, data_dir: &Path, peer_port: u16) -> Vec<String> {
    vec![
        "restore".into(),
        src.display().to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--name".into(),
        "m1".into(),
        "--initial-cluster".into(),
        format!("m1=http://127.0.0.1:{peer_port}"),
        "--initial-advertise-peer-urls".into(),
        format!("http://127.0.0.1:{peer_port}"),
    ]
}

/// Starts the real etcd of fixture version `v` on `dir` and asserts it
/// serves that version's single fixture's keys at its revision.
fn serves_the_snapshot(v: &Path, dir: &Path, peer_port: u16) {
    let Some(bin) = require(Need::EtcdFor(v)) else {
        return;
    };
    let e = Etcd::start(Member {
        bin: &bin,
        data_dir: dir,
        name: "m1",
        peer_port,
        initial_cluster: None,
        extra: vec![],
    });
    let got =
        etcdctl_get_json(&serde_json::from_str(&e.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap());
    assert_eq!(got, etcdctl_get(&v.join("single.expect/get.json")));
}

#[test]
fn an_empty_mount_point_is_filled_in_place_and_etcd_serves_it() {
    for v in version_dirs() {
        mount_point(&v);
    }
}

fn mount_point(v: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let snap = v.join("single.snapshot.db");
    let mnt = tmp.path().join("var-lib-etcd");
    std::fs::create_dir(&mnt).unwrap();
    let copy = tmp.path().join("copied");
    let port = free_port();
    let args = restore_args(&snap, &mnt, port).join("' '");
    // In a private mount namespace (root: `unshare -m`; otherwise as the
    // namespace's root, `unshare -rm`): mount a tmpfs with mode 0751, restore
    // into it, record what is there, and copy the result out before the
    // namespace (and its tmpfs) goes away.
    let script = format!(
        "set -e; mount -t tmpfs -o mode=0751 etcd-test '{m}'; \
         '{bin}' '{args}'; \
         stat -c '%a %m' '{m}'; ls -A '{m}'; ls -A '{parent}' | grep etcd-rescue-tmp || true; \
         cp -a '{m}' '{copy}'",
        m = mnt.display(),
        bin = env!("CARGO_BIN_EXE_etcd-rescue"),
        parent = tmp.path().display(),
        copy = copy.display(),
    );
    let root = effective_uid() == 0;
    let mut cmd = Command::new("unshare");
    cmd.args(if root { vec!["-m"] } else { vec!["-r", "-m"] });
    let o = cmd
        .args(["sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    // The mount point keeps its mode and is still the mount point; it holds
    // the member dir and nothing else; no temp dir is left beside it.
    assert!(
        lines.contains(&format!("751 {}", mnt.display()).as_str()),
        "{out}"
    );
    assert!(lines.contains(&"member"), "{out}");
    assert!(!out.contains("etcd-rescue-tmp"), "{out}");
    assert!(
        std::fs::read_dir(&mnt).unwrap().next().is_none(),
        "nothing written under the mount point on the parent fs"
    );
    serves_the_snapshot(v, &copy, port);
}

/// The effective uid, from `id -u`.
fn effective_uid() -> u32 {
    let o = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

#[test]
fn symlinked_and_dangling_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let real = tmp.path().join("disk/etcd");
    std::fs::create_dir_all(&real).unwrap();
    let link = tmp.path().join("etcd-data");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let port = free_port();
    let args = restore_args(&snap, &link, port);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
        "the link is kept"
    );
    assert!(
        real.join("member/snap/db").is_file(),
        "the dir it names is filled"
    );
    serves_the_snapshot(&repo().join("testdata/fixtures/v3.5.1"), &link, port);

    let dangling = tmp.path().join("dangling");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
    let args = restore_args(&snap, &dangling, free_port());
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(r.code, 0);
    assert!(r.err.contains("does not exist"), "{}", r.err);
    let left: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        !left
            .iter()
            .any(|p| p.to_string_lossy().contains("etcd-rescue-tmp")),
        "{left:?}"
    );
}

#[test]
fn a_run_killed_mid_write_is_cleaned_up_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let v = repo().join("testdata/fixtures/v3.5.1");
    let src = tmp.path().join("snapcount");
    copy_tree(&extracted_dir(&v, "snapcount").join("snapcount"), &src);
    let out = tmp.path().join("restored");
    let args = restore_args(&src, &out, free_port());
    let stale = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("etcd-rescue-tmp"))
            .collect()
    };
    // Kill a restore as soon as its temp dir appears (a few tries: the
    // restore is quick).
    let mut caught = false;
    for _ in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
            .args(&args)
            .spawn()
            .unwrap();
        loop {
            if !stale(tmp.path()).is_empty() {
                child.kill().unwrap();
                let _ = child.wait();
                caught = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if caught {
            break;
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(caught, "no restore was caught mid-write in 20 tries");
    assert!(!stale(tmp.path()).is_empty(), "the killed run left its temp dir");
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.err.contains("left by an earlier run that was killed"),
        "{}",
        r.err
    );
    assert!(stale(tmp.path()).is_empty(), "{:?}", stale(tmp.path()));
    assert!(out.join("member/snap/db").is_file());
}

#[test]
fn a_member_name_cannot_climb_out_of_all_members() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = repo().join("testdata/fixtures/v3.5.1/single.snapshot.db");
    let out = tmp.path().join("a/b/out");
    let r = run(&[
        "restore",
        snap.to_str().unwrap(),
        "--all-members",
        out.to_str().unwrap(),
        "--initial-cluster",
        "../../escape=http://127.0.0.1:2380",
    ]);
    assert_ne!(r.code, 0);
    assert!(r.err.contains("not a plain file name"), "{}", r.err);
    assert!(!tmp.path().join("a/escape").exists() && !tmp.path().join("escape").exists());
    assert!(!out.exists());
}
