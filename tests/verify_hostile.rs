//! A nightly `verify` that can be trusted: every way a backup store goes
//! wrong, with the verdict and exit code each must get. Destroyed backups
//! are never "skipped"; archives are read as people make them (GNU and PAX
//! sparse tars, long names, hard links, xz, bzip2, several zstd frames);
//! bombs are unreadable under an address-space limit, never a panic; a
//! damaged catalog is rebuilt; bit rot under an unchanged stat is found;
//! two paths with the same bytes are two rows; and `verify` on a terminal
//! (the README's cron line included) finishes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn snapshot() -> Vec<u8> {
    std::fs::read(repo().join("testdata/fixtures/v3.5.1/single.snapshot.db")).unwrap()
}

/// GNU tar, run in `dir` on `what`, into `out` (extra flags first).
fn gnu_tar(dir: &Path, flags: &[&str], out: &Path, what: &str) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = Command::new("tar")
        .current_dir(dir)
        .args(flags)
        .arg("-cf")
        .arg(out)
        .arg(what)
        .status()
        .expect("GNU tar");
    assert!(st.success(), "tar {flags:?} failed");
}

/// Runs verify (in process) with `-o json --no-catalog` on `paths`.
fn verify_json(extra: &[&str], paths: &[&Path]) -> (i32, Value) {
    let mut args = vec!["verify", "-o", "json"];
    args.extend_from_slice(extra);
    let ps: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(ps.iter().map(String::as_str));
    let r = run(&args);
    (r.code, r.json())
}

/// (file relative to `root`, verdict, first problem) of every record.
fn rows(root: &Path, j: &Value) -> Vec<(String, String, String)> {
    j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = r["file"].as_str().unwrap();
            (
                f.strip_prefix(&format!("{}/", root.display()))
                    .unwrap_or(f)
                    .to_string(),
                r["verdict"].as_str().unwrap().to_string(),
                r["firstProblem"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn destroyed_backups_are_never_skipped_and_archives_are_read_as_people_make_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let snap = snapshot();
    let v = repo().join("testdata/fixtures/v3.5.1");

    // Destroyed backups, by name, size and place.
    let mut zeroed = snap.clone();
    zeroed[..2 * 4096].fill(0);
    write(&root.join("nightly/snapshot.db"), &zeroed);
    write(&root.join("k3s/etcd-snapshot-node1-1700000000"), &snap[..15]);
    write(
        &root.join("k3s/etcd-snapshot-node2-1700000001"),
        &vec![0u8; 4 << 20],
    );
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&root.join("cron/etcd-backup-2024-01-01.db"), &noise);
    write(&root.join("misc/blob"), &noise[..10 * 4096 + 32]);
    write(&root.join("etcd/2024-01-02"), &noise[..5000]);
    // Clearly something else.
    write(&root.join("etcd/README"), b"nightly etcd backups, kept 7 days\n");
    write(&root.join("misc/logo.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    write(&root.join("misc/small.bin"), &noise[..3000]);

    // Member dirs without their db: etcd rebuilds the killed member's from
    // its WAL (which starts at index 1); the snapcount member's WAL was
    // cut after a snapshot, so its db cannot be rebuilt.
    for (scenario, name) in [("killed", "killed"), ("snapcount", "snapcount")] {
        let d = root.join(format!("nodb/{name}"));
        copy_tree(&extracted_dir(&v, scenario).join(name), &d);
        std::fs::remove_file(d.join("member/snap/db")).unwrap();
    }

    // A real member dir packed as people pack them: GNU and PAX sparse
    // tars of every PAX sparse version, gzip, xz, bzip2; a long path and a
    // hard link; a snapshot in xz, bzip2 and in two zstd frames.
    let killed = extracted_dir(&v, "killed");
    let arch = root.join("archives");
    gnu_tar(
        &killed,
        &["--sparse", "--format=gnu"],
        &arch.join("gnu-sparse.tar"),
        "killed",
    );
    for ver in ["0.0", "0.1", "1.0"] {
        let flag = format!("--sparse-version={ver}");
        let out = arch.join(format!("pax-sparse-{ver}.tar"));
        gnu_tar(&killed, &["--sparse", "--format=posix", &flag], &out, "killed");
    }
    gnu_tar(
        &killed,
        &["--sparse", "-z"],
        &arch.join("sparse.tar.gz"),
        "killed",
    );
    let plain_tar = tmp.path().join("killed.tar");
    gnu_tar(&killed, &["--format=gnu"], &plain_tar, "killed");
    let t = std::fs::read(&plain_tar).unwrap();
    write(&arch.join("killed.tar.xz"), &xz(&t));
    write(&arch.join("killed.tar.bz2"), &bzip2(&t));
    write(&arch.join("single.db.xz"), &xz(&snap));
    write(&arch.join("single.db.bz2"), &bzip2(&snap));
    let mut frames = zstd(&snap[..snap.len() / 2]);
    frames.extend(zstd(&snap[snap.len() / 2..]));
    write(&arch.join("single.db.zst"), &frames);
    let deep = tmp.path().join("deep");
    let long = "a-rather-long-directory-name-for-nightly-etcd-backups/".repeat(3);
    write(&deep.join(&long).join("etcd-snapshot.db"), &snap);
    std::fs::hard_link(
        deep.join(&long).join("etcd-snapshot.db"),
        deep.join(&long).join("etcd-snapshot-link.db"),
    )
    .unwrap();
    gnu_tar(
        &deep,
        &["--format=gnu"],
        &arch.join("long-names-and-links.tar"),
        ".",
    );

    let (code, j) = unchanged(&[&root], || verify_json(&["--no-catalog"], &[&root]));
    assert_eq!(code, 1, "destroyed backups fail the run");
    let got = rows(&root, &j);
    let want: &[(&str, &str, &str)] = &[
        ("archives/gnu-sparse.tar!killed", "ok", ""),
        ("archives/killed.tar.bz2!killed", "ok", ""),
        ("archives/killed.tar.xz!killed", "ok", ""),
        (
            &format!("archives/long-names-and-links.tar!{long}etcd-snapshot-link.db"),
            "ok",
            "",
        ),
        (
            &format!("archives/long-names-and-links.tar!{long}etcd-snapshot.db"),
            "ok",
            "",
        ),
        ("archives/pax-sparse-0.0.tar!killed", "ok", ""),
        ("archives/pax-sparse-0.1.tar!killed", "ok", ""),
        ("archives/pax-sparse-1.0.tar!killed", "ok", ""),
        ("archives/single.db.bz2", "ok", ""),
        ("archives/single.db.xz", "ok", ""),
        ("archives/single.db.zst", "ok", ""),
        ("archives/sparse.tar.gz!killed", "ok", ""),
        ("cron/etcd-backup-2024-01-01.db", "damaged", "no-valid-meta"),
        ("etcd/2024-01-02", "damaged", "no-valid-meta"),
        ("etcd/README", "skipped", "text"),
        ("k3s/etcd-snapshot-node1-1700000000", "damaged", "no-valid-meta"),
        ("k3s/etcd-snapshot-node2-1700000001", "damaged", "no-valid-meta"),
        ("misc/blob", "damaged", "no-valid-meta"),
        ("misc/logo.png", "skipped", "PNG image"),
        (
            "misc/small.bin",
            "skipped",
            "not named, sized or placed like a backup",
        ),
        ("nightly/snapshot.db", "damaged", "no-valid-meta"),
        ("nodb/killed", "warnings", "db-missing"),
        ("nodb/snapcount", "damaged", ""),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((file, verdict, problem), (wf, wv, wp)) in got.iter().zip(want) {
        assert_eq!((file.as_str(), verdict.as_str()), (*wf, *wv), "{problem}");
        assert!(problem.contains(wp), "{file}: {problem:?} should say {wp:?}");
    }
    // The member dirs in archives are read whole: what etcd served before
    // it was killed.
    let (rev, keys) = oracle::final_get(&repo().join("testdata/fixtures/v3.5.1"), "killed");
    for r in j["results"].as_array().unwrap() {
        if r["kind"] == "data-dir" && r["verdict"] == "ok" {
            assert_eq!(r["revision"], rev, "{}", r["file"]);
            assert_eq!(r["keys"], keys, "{}", r["file"]);
        }
    }
}

#[test]
fn a_sparse_file_named_like_a_snapshot_is_judged_without_reading_its_holes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("etcd-snapshot-huge.db");
    std::fs::File::create(&p).unwrap().set_len(50 << 30).unwrap();
    let (code, j) = verify_json(&["--no-catalog"], &[&p]);
    assert_eq!(code, 1);
    assert_eq!(j["results"][0]["verdict"], "damaged");
    assert!(
        j["results"][0]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("chunks:")
    );
}

/// Concatenated gzip members, zstd frames or zip entries of zeros, each
/// 64 MiB: `copies` of them.
fn bombs(dir: &Path, copies: usize) -> Vec<PathBuf> {
    let zeros = vec![0u8; 64 << 20];
    let one_gz = gzip(&zeros);
    let one_zst = zstd(&zeros);
    let gz = dir.join("etcd-snapshot-bomb.db.gz");
    let zst = dir.join("etcd-snapshot-bomb.db.zst");
    write(&gz, &one_gz.repeat(copies));
    write(&zst, &one_zst.repeat(copies));
    let zip = dir.join("etcd-snapshot-bomb.zip");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..copies {
        w.start_file(format!("etcd-snapshot-{i}.db"), o).unwrap();
        w.write_all(&zeros).unwrap();
    }
    write(&zip, &w.finish().unwrap().into_inner());
    vec![gz, zst, zip]
}

#[test]
fn bombs_are_unreadable_under_an_address_space_limit_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    // 512 MiB of zeros each; under a 1.5 GiB address-space limit the
    // default cap is at most 384 MiB per worker (two workers or more).
    let files = bombs(tmp.path(), 8);
    let out = Command::new("prlimit")
        .arg(format!("--as={}", 1536u64 << 20))
        .arg(env!("CARGO_BIN_EXE_etcd-rescue"))
        .args(["verify", "--no-catalog", "-o", "json"])
        .args(&files)
        .output()
        .expect("prlimit (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = j["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{results:#?}");
    for r in results {
        assert_eq!(r["verdict"], "unreadable", "{r:#}");
        assert!(
            r["firstProblem"]
                .as_str()
                .unwrap()
                .contains("unpacks to more than"),
            "{r:#}"
        );
    }
    // The cap is the user's to raise, and to lower.
    let (code, j) = verify_json(&["--no-catalog", "--max-decompressed", "100"], &[&files[0]]);
    assert_eq!(code, 1);
    assert!(
        j["results"][0]["firstProblem"]
            .as_str()
            .unwrap()
            .contains("100.0 MiB")
    );
}

/// The store of one good snapshot, and the catalog beside it.
fn small_store(tmp: &Path) -> (PathBuf, PathBuf) {
    let root = tmp.join("backups");
    write(&root.join("a/etcd-snapshot-m1.db"), &snapshot());
    (root, tmp.join("catalog.redb"))
}

fn with_catalog(catalog: &Path, extra: &[&str], root: &Path) -> (i32, Value, String) {
    let mut args = vec!["verify", "-o", "json", "--catalog", catalog.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(root.to_str().unwrap());
    let r = run(&args);
    let j = r.json();
    (r.code, j, r.err)
}

#[test]
fn a_damaged_catalog_is_moved_aside_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, catalog) = small_store(tmp.path());
    let (code, _, _) = with_catalog(&catalog, &[], &root);
    assert_eq!(code, 0);
    let good = std::fs::read(&catalog).unwrap();
    // Truncated, and bytes flipped inside the stored records.
    let at = good
        .windows(7)
        .position(|w| w == b"verdict")
        .expect("a stored record");
    let mut flipped = good.clone();
    flipped[at + 2] ^= 0x20;
    for (what, bytes) in [("truncated", good[..5000].to_vec()), ("flipped", flipped)] {
        std::fs::write(&catalog, &bytes).unwrap();
        let (code, j, err) = with_catalog(&catalog, &[], &root);
        assert_eq!(code, 0, "{what}: {err}");
        assert!(
            err.contains("damaged") && err.contains("moved aside"),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(j["summary"]["afresh"], 1, "{what}");
        assert_eq!(j["results"][0]["verdict"], "ok", "{what}");
        // The rebuilt catalog serves the next run.
        let (_, j, err) = with_catalog(&catalog, &[], &root);
        assert_eq!(j["summary"]["fromCatalog"], 1, "{what}: {err}");
    }
    let aside = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".damaged-")
        })
        .count();
    assert!(aside >= 1, "the damaged catalogs are kept aside");
}

#[test]
fn bit_rot_under_an_unchanged_stat_is_found_and_paths_with_the_same_bytes_are_two_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, catalog) = small_store(tmp.path());
    let twin = root.join("b/etcd-snapshot-m2.db");
    write(&twin, &snapshot());
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&twin)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let (code, j, _) = with_catalog(&catalog, &[], &root);
    assert_eq!(code, 0);
    let files: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "two paths, two rows: {files:?}");
    assert_ne!(j["results"][0]["taken"], j["results"][1]["taken"]);
    // From the catalog: still two rows, each under its own name and date.
    let (_, j2, err) = with_catalog(&catalog, &[], &root);
    assert_eq!(j2["summary"]["fromCatalog"], 2, "{err} {j2:#}");
    for (a, b) in j["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(j2["results"].as_array().unwrap())
    {
        assert_eq!((&a["file"], &a["taken"]), (&b["file"], &b["taken"]));
    }

    // Bit rot: bytes in the middle change in place; size, time and inode stay.
    let p = root.join("a/etcd-snapshot-m1.db");
    let md = std::fs::metadata(&p).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.write_all_at(&[0xff; 8], md.len() / 2).unwrap();
        f.set_modified(md.modified().unwrap()).unwrap();
    }
    let now = std::fs::metadata(&p).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (now.len(), now.mtime(), now.mtime_nsec(), now.ino()),
        (md.len(), md.mtime(), md.mtime_nsec(), md.ino())
    );
    let (code, j3, _) = with_catalog(&catalog, &[], &root);
    assert_eq!(code, 1, "the rotted backup fails the run");
    let r = &j3["results"][0];
    assert_eq!(r["verdict"], "damaged");
    assert_eq!(r["fromCatalog"], false);
    assert!(
        r["recheckReason"].as_str().unwrap().contains("changed in place"),
        "{r:#}"
    );
    assert_eq!(j3["results"][1]["fromCatalog"], true);
    // `check` agrees.
    assert_eq!(run(&["check", p.to_str().unwrap()]).code, 1);

    // A verdict older than --recheck-after is not trusted.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (_, j4, _) = with_catalog(&catalog, &["--recheck-after", "1s"], &root);
    assert_eq!(j4["summary"]["afresh"], 2);
    assert!(
        j4["results"][1]["recheckReason"]
            .as_str()
            .unwrap()
            .contains("--recheck-after")
    );
}

// ---------------------------------------------------------------------------
// On a terminal

/// Runs the binary with stderr on a new pseudo-terminal (80x24) and stdout
/// in a pipe; fails if it has not finished after two minutes. Returns the
/// exit code, stdout, and what the terminal received.
fn on_pty(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    let ws = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into our integers.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcd-rescue"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn etcd-rescue");
    drop(cmd); // the parent's copy of the terminal's slave side
    let tty = std::thread::spawn(move || {
        use std::io::Read;
        let mut master = master;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child, the last holder of the slave, exits.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        use std::io::Read;
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let start = std::time::Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("verify {args:?} hung on a terminal");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (code, out.join().unwrap(), tty.join().unwrap())
}

#[test]
fn verify_on_a_terminal_finishes_with_one_or_two_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("backups");
    let snap = snapshot();
    for i in 0..4 {
        write(&root.join(format!("etcd-snapshot-m{i}.db")), &snap);
    }
    write(&root.join("etcd-snapshot-m9.db.gz"), &gzip(&snap));
    let r = root.to_str().unwrap();
    for jobs in ["1", "2"] {
        let (code, out, tty) = on_pty(&["verify", "--no-catalog", "--jobs", jobs, r], &[]);
        assert_eq!(code, 0, "--jobs {jobs}: {tty}");
        assert!(out.contains("5 backups in 5 paths"), "--jobs {jobs}: {out}");
        assert!(!tty.contains("panicked"), "{tty}");
    }
}

#[test]
fn the_readme_cron_line_runs_on_a_terminal() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains(" root etcd-rescue verify "))
        .expect("the README's cron line");
    // `30 6 * * * root etcd-rescue verify ... /backups/etcd > LOG 2>&1 || mail ...`
    let cmd = line.split(" root ").nth(1).unwrap().split(" > ").next().unwrap();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(words[..2], ["etcd-rescue", "verify"]);
    assert_eq!(*words.last().unwrap(), "/backups/etcd", "the README's store path");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("backups/etcd");
    let now = etcd_rescue::batch::now();
    write(
        &store.join(format!("etcd-snapshot-m1-{}.db", now - 3600)),
        &snapshot(),
    );
    let mut args: Vec<&str> = words[1..words.len() - 1].to_vec();
    let s = store.display().to_string();
    args.push(&s);
    // The default catalog, under a private cache dir.
    let cache = tmp.path().join("cache");
    let env = [("XDG_CACHE_HOME", cache.as_path())];
    let (code, out, tty) = on_pty(&args, &env);
    assert_eq!(code, 0, "{out}\n{tty}");
    assert!(cache.join("etcd-rescue/catalog.redb").is_file());
    // A damaged backup in the store makes the same line fail.
    write(
        &store.join(format!("etcd-snapshot-m1-{}.db", now - 60)),
        &snapshot()[..5000],
    );
    let (code, out, tty) = on_pty(&args, &env);
    assert_eq!(code, 1, "{out}\n{tty}");
}
