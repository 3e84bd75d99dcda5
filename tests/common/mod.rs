//! Helpers shared by the integration tests: fixture discovery, extraction of
//! data-dir tarballs, running the CLI in-process, proving inputs unchanged.

#![allow(dead_code)]

pub mod agree;
pub mod backups;
pub mod catalogue;
pub mod etcd;
pub mod require;
pub mod schema;
pub mod servers;
pub mod walwrite;

#[allow(unused_imports)]
pub use require::{Need, require, required};

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::Value;

/// `data` gzipped (the fast level: tests compress a lot of zeros).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// `data` as one zstd frame.
pub fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// `data` as xz (preset 1).
pub fn xz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).expect("xz");
    w.write_all(data).expect("xz");
    w.finish().expect("xz")
}

/// `data` as bzip2.
pub fn bzip2(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    w.write_all(data).expect("bzip2");
    w.finish().expect("bzip2")
}

/// A zip holding `data` as `name` (deflated).
pub fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, o).expect("zip");
    w.write_all(data).expect("zip");
    w.finish().expect("zip").into_inner()
}

/// A tar of `p` (a file or a dir), under its own name.
pub fn tar_of(p: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let name = p.file_name().expect("a named path");
    if p.is_dir() {
        b.append_dir_all(name, p).expect("tar");
    } else {
        b.append_path_with_name(p, name).expect("tar");
    }
    b.into_inner().expect("tar")
}

/// `v` as a protobuf varint, appended to `out`.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited protobuf field: tag, length, bytes.
pub fn field(n: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 12);
    varint(n << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fixture roots: the committed `testdata/fixtures`, plus a freshly generated
/// tree when `ETCD_RESCUE_FRESH_FIXTURES` names one (CI regenerates fixtures
/// with real etcd and runs every test against them too).
///
/// `ETCD_RESCUE_FRESH_ONLY=1` leaves the committed tree out (to run a suite
/// against many regenerated fixture sets, one after another).
pub fn fixture_roots() -> Vec<PathBuf> {
    let fresh_only = std::env::var_os("ETCD_RESCUE_FRESH_ONLY").is_some_and(|v| v == "1")
        && std::env::var_os("ETCD_RESCUE_FRESH_FIXTURES").is_some();
    let mut roots = if fresh_only {
        Vec::new()
    } else {
        vec![repo().join("testdata/fixtures")]
    };
    if let Some(p) = std::env::var_os("ETCD_RESCUE_FRESH_FIXTURES") {
        let p = PathBuf::from(p);
        assert!(
            p.join("v3.5.1").is_dir() && p.join("v3.4.23").is_dir(),
            "ETCD_RESCUE_FRESH_FIXTURES={} has no v3.4.23 and v3.5.1 folders",
            p.display()
        );
        roots.push(p);
    }
    roots
}

/// Every version folder (`.../v3.4.23`, `.../v3.5.1`) of every root.
pub fn version_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in fixture_roots() {
        for v in ["v3.4.23", "v3.5.1"] {
            let d = root.join(v);
            assert!(d.is_dir(), "missing fixture folder {}", d.display());
            out.push(d);
        }
    }
    out
}

/// Parses a JSON file.
pub fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Extracts a `.tar.gz` into a new temporary directory.
pub fn extract(tarball: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("run tar");
    assert!(st.success(), "tar -xzf {} failed", tarball.display());
    dir
}

/// The db files of every data-dir tarball of a version folder, extracted
/// once per test process under Cargo's target tmp dir: `<dir>/single/...`,
/// `<dir>/m1/...`, `<dir>/killed/...`, `<dir>/snapcount/...`.
pub fn extracted_dbs(vdir: &Path) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DONE: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = done.get(vdir) {
        return p.clone();
    }
    let name: String = vdir
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dest = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fixture-dbs-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).expect("create extraction dir");
    for t in ["single", "cluster", "killed", "snapcount"] {
        let st = Command::new("tar")
            .arg("-xzf")
            .arg(vdir.join(format!("{t}.datadir.tar.gz")))
            .arg("-C")
            .arg(&dest)
            .args(["--wildcards", "*/member/snap/db"])
            .status()
            .expect("run tar");
        assert!(st.success(), "extracting {t} from {} failed", vdir.display());
    }
    done.insert(vdir.to_path_buf(), dest.clone());
    dest
}

/// Output of an in-process CLI run.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub out: String,
    /// Standard error.
    pub err: String,
}

impl Run {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.out))
    }
}

/// Runs the CLI in-process with `args` (without the program name).
pub fn run(args: &[&str]) -> Run {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut argv = vec!["etcd-rescue"];
    argv.extend_from_slice(args);
    let code = etcd_rescue::cli::run(argv, &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8(out).expect("utf-8 stdout"),
        err: String::from_utf8(err).expect("utf-8 stderr"),
    }
}

/// Runs the real binary.
pub fn run_bin(args: &[&str]) -> Run {
    let (code, out, err) = run_bin_bytes(args, &[]);
    Run {
        code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err,
    }
}

/// Runs the real binary with environment variables set (`Some`) or
/// removed (`None`): (exit code, stdout's bytes, stderr).
pub fn run_bin_bytes(args: &[&str], env: &[(&str, Option<&str>)]) -> (i32, Vec<u8>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcd-rescue"));
    c.args(args);
    for (k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c.output().expect("run etcd-rescue");
    (
        o.status.code().unwrap_or(-1),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// SHA-256 of a file's bytes, to prove inputs are unchanged.
pub fn digest(p: &Path) -> [u8; 32] {
    use sha2::Digest;
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    sha2::Sha256::digest(&bytes).into()
}

/// Runs `f` and asserts that every file under `paths` is byte-identical afterwards.
pub fn unchanged<T>(paths: &[&Path], f: impl FnOnce() -> T) -> T {
    let files: Vec<PathBuf> = paths.iter().flat_map(|p| walk_files(p)).collect();
    let before: Vec<_> = files.iter().map(|p| (digest(p), mtime(p))).collect();
    let r = f();
    for (p, b) in files.iter().zip(before) {
        assert_eq!(b.0, digest(p), "input {} was modified", p.display());
        assert_eq!(b.1, mtime(p), "input {} had its mtime changed", p.display());
    }
    r
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).and_then(|m| m.modified()).expect("mtime")
}

/// Every regular file under `p` (or `p` itself).
pub fn walk_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for e in entries {
            out.extend(walk_files(&e));
        }
    }
    out
}

/// One key-value as `etcdctl get -w json` prints it, fields defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

fn b64(v: &Value) -> Vec<u8> {
    v.as_str()
        .map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("base64")
        })
        .unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The kvs and header revision of an `etcdctl get -w json` dump.
pub fn etcdctl_get(p: &Path) -> (i64, Vec<Kv>) {
    etcdctl_get_json(&read_json(p))
}

/// The kvs and header revision of parsed `etcdctl get -w json` output.
pub fn etcdctl_get_json(j: &Value) -> (i64, Vec<Kv>) {
    let rev = j["header"]["revision"].as_i64().expect("header.revision");
    let kvs = j["kvs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| Kv {
                    key: b64(&kv["key"]),
                    value: b64(&kv["value"]),
                    create_revision: int(&kv["create_revision"]),
                    mod_revision: int(&kv["mod_revision"]),
                    version: int(&kv["version"]),
                    lease: int(&kv["lease"]),
                })
                .collect()
        })
        .unwrap_or_default();
    (rev, kvs)
}

/// What real etcd said of a fixture, from the oracle files
/// `testdata/gen-fixtures.sh` writes next to it (`<scenario>.expect/`), so
/// that tests never type in a revision or a count etcd decided (a
/// regenerated fixture may differ).
pub mod oracle {
    use std::path::Path;

    use super::read_json;

    /// The revision of `<scenario>.snapshot.db` (`snapshot-status.json`).
    pub fn snapshot_revision(vdir: &Path, scenario: &str) -> i64 {
        let p = vdir.join(format!("{scenario}.expect/snapshot-status.json"));
        read_json(&p)["revision"].as_i64().expect("revision")
    }

    /// The revision of the data dir's db after etcd stopped (`db-status.json`).
    pub fn db_revision(vdir: &Path, scenario: &str) -> i64 {
        let p = vdir.join(format!("{scenario}.expect/db-status.json"));
        read_json(&p)["revision"].as_i64().expect("revision")
    }

    /// The revision and the key count of etcd's last `get "" --prefix` before
    /// it stopped (`get-final.json` where there is one, else `get.json`).
    pub fn final_get(vdir: &Path, scenario: &str) -> (i64, i64) {
        let dir = vdir.join(format!("{scenario}.expect"));
        let p = Some(dir.join("get-final.json"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| dir.join("get.json"));
        let j = read_json(&p);
        (
            j["header"]["revision"].as_i64().expect("revision"),
            j["count"].as_i64().unwrap_or(0),
        )
    }

    /// The compact revision etcd reported (`single.expect/hashkv.json`).
    pub fn compact_revision(vdir: &Path) -> i64 {
        let j = read_json(&vdir.join("single.expect/hashkv.json"));
        j[0]["HashKV"]["compact_revision"]
            .as_i64()
            .expect("compact_revision")
    }

    /// The raft index etcd had applied when asked (`endpoint-status.json`).
    pub fn raft_index(vdir: &Path, scenario: &str) -> u64 {
        let j = read_json(&vdir.join(format!("{scenario}.expect/endpoint-status.json")));
        j[0]["Status"]["raftIndex"].as_u64().expect("raftIndex")
    }
}

/// Runs `etcdutl snapshot status FILE -w json` with real etcdutl 3.5.1.
pub fn etcdutl_status(bin: &Path, file: &Path) -> Value {
    let o = Command::new(bin.join("etcdutl"))
        .args(["snapshot", "status"])
        .arg(file)
        .args(["-w", "json"])
        .output()
        .expect("run etcdutl");
    assert!(
        o.status.success(),
        "etcdutl failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    // etcdutl may log before the JSON line.
    let line = text.lines().rfind(|l| l.starts_with('{')).expect("json line");
    serde_json::from_str(line).expect("etcdutl json")
}

/// The data dir(s) of one scenario's tarball (`single`, `cluster`, `killed`,
/// `snapcount`), extracted once per test process under Cargo's target tmp
/// dir. Returns the folder that holds `single/` (or `m1/ m2/ m3/`, ...).
/// The folder is per test binary and replaced at its first use, so runs do
/// not pile up copies of the 64 MB WAL segments.
pub fn extracted_dir(vdir: &Path, scenario: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DONE: OnceLock<Mutex<HashMap<(PathBuf, String), PathBuf>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (vdir.to_path_buf(), scenario.to_string());
    if let Some(p) = done.get(&key) {
        return p.clone();
    }
    let name: String = vdir
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dest = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("fixture-dirs")
        .join(env!("CARGO_CRATE_NAME"))
        .join(name)
        .join(scenario);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).expect("create extraction dir");
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(vdir.join(format!("{scenario}.datadir.tar.gz")))
        .arg("-C")
        .arg(&dest)
        .status()
        .expect("run tar");
    assert!(
        st.success(),
        "extracting {scenario} from {} failed",
        vdir.display()
    );
    // The WAL segments are mostly zeros (preallocated); punch holes in them
    // where the system can, so the extracted copies take little disk. The
    // bytes read back are the same.
    for f in walk_files(&dest) {
        let n = f.to_string_lossy();
        if n.ends_with(".wal") || n.ends_with(".tmp") {
            let _ = Command::new("fallocate").arg("--dig-holes").arg(&f).status();
        }
    }
    done.insert(key, dest.clone());
    dest
}

/// Copies a directory tree.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
    for e in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        }
    }
}

/// Makes every file under `p` read-only, so that any write attempt fails.
pub fn make_readonly(p: &Path) {
    for f in walk_files(p) {
        let mut perm = std::fs::metadata(&f).unwrap().permissions();
        perm.set_readonly(true);
        std::fs::set_permissions(&f, perm).unwrap();
    }
}

/// The WAL segment files of a member dir, in order.
pub fn wal_segments(member: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(member.join("wal"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

/// The two real Kubernetes cluster snapshots of
/// `../shared/fixtures/k8s-cluster-snapshots/` ([`require`]d).
pub fn shared_k8s_snapshots() -> Option<Vec<PathBuf>> {
    let dir = require(Need::Shared("k8s-cluster-snapshots"))?;
    let mut v: Vec<PathBuf> = walk_files(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 2, "expected the two k8s snapshots in {}", dir.display());
    Some(v)
}

/// Every revision key of the `key` bucket of a file (snapshot or db), from a
/// healthy read.
pub fn revision_keys(bytes: &[u8]) -> std::collections::BTreeSet<Vec<u8>> {
    let (db, _) = etcd_rescue::bolt::Db::open(etcd_rescue::mvcc::trailer::image(bytes)).unwrap();
    db.bucket(b"key")
        .unwrap()
        .unwrap()
        .iter()
        .map(|e| e.unwrap().key.to_vec())
        .collect()
}

/// Runs the real binary (under `prlimit --as=LIMIT` when a limit is given)
/// with stdin empty, and kills it after two minutes: a hang fails the test
/// (a guard, not a timing). Returns (exit code, or minus the signal that
/// ended it; stdout; stderr).
pub fn bounded(args: &[&str], address_space: Option<u64>) -> (i32, String, String) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let bin = env!("CARGO_BIN_EXE_etcd-rescue");
    let mut cmd = match address_space {
        Some(limit) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--as={limit}")).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcd-rescue (prlimit is util-linux's)");
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{args:?} ran for two minutes");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let code = status.code().unwrap_or_else(|| -status.signal().unwrap_or(0));
    let out = String::from_utf8_lossy(&o.join().expect("stdout reader")).into_owned();
    let err = String::from_utf8_lossy(&e.join().expect("stderr reader")).into_owned();
    (code, out, err)
}

/// Every record of a bucket of a file (snapshot or db), from a healthy
/// read; empty when the bucket does not exist.
pub fn bucket_records(bytes: &[u8], name: &str) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let (db, _) = etcd_rescue::bolt::Db::open(etcd_rescue::mvcc::trailer::image(bytes)).unwrap();
    let Some(b) = db.bucket(name.as_bytes()).unwrap() else {
        return Default::default();
    };
    b.iter()
        .map(|e| {
            let e = e.unwrap();
            (e.key.to_vec(), e.value.to_vec())
        })
        .collect()
}

/// Writes `damaged` to `dir/damaged.db` and runs `salvage -o json` on it
/// into `dir/salvaged.db` (`--force`), checking the input is left alone.
pub fn salvage_bytes(damaged: &[u8], dir: &Path) -> Run {
    let src = dir.join("damaged.db");
    let out = dir.join("salvaged.db");
    std::fs::write(&src, damaged).unwrap();
    unchanged(&[&src], || {
        run(&[
            "salvage",
            "-o",
            "json",
            src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--force",
        ])
    })
}
