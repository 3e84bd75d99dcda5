//! The agreement harness: every command that gives a verdict (`check`,
//! `inspect`, `verify` on the plain path and on its gzip and tar forms,
//! `restore --dry-run`) must give the same verdict class for the same
//! input; and, for a member dir, the class must be what real etcd does when
//! started on a copy of it.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::etcd::free_port;
use super::{Kv, copy_tree, etcdctl_get_json, gzip, run, tar_of, unchanged, walk_files};

/// What the commands said about one path.
#[derive(Clone, Debug)]
pub struct Agreed {
    /// The verdict class they agree on (`ok`, `warnings`, `damaged`, ...).
    pub class: String,
    /// For a member dir: what the judgment says etcd does (`starts`,
    /// `unsafe`, `wont-start`).
    pub etcd: Option<String>,
    /// The kind the judgment gave.
    pub kind: String,
}

fn class_of(v: &Value, what: &str, out: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no verdict in {out}"))
}

/// The verdict `verify --no-catalog -o json` gives the one backup at `p`.
fn verify_class(p: &Path) -> Result<String, String> {
    let r = run(&["verify", "--no-catalog", "-o", "json", p.to_str().unwrap()]);
    let j: Value = serde_json::from_str(&r.out)
        .map_err(|e| format!("verify {}: {e}: {}{}", p.display(), r.out, r.err))?;
    let results = j["results"].as_array().cloned().unwrap_or_default();
    if results.len() != 1 {
        return Err(format!(
            "verify {}: {} results: {:#}",
            p.display(),
            results.len(),
            j["results"]
        ));
    }
    class_of(&results[0]["verdict"], "verify", &r.out)
}

/// Runs every command on `p` (never changing it) and checks they agree.
pub fn agree(p: &Path) -> Result<Agreed, String> {
    let s = p.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    unchanged(&[p], || {
        let mut got: Vec<(String, String)> = Vec::new();
        let c = run(&["check", "-o", "json", s]);
        let cj: Value =
            serde_json::from_str(&c.out).map_err(|e| format!("check: {e}: {}{}", c.out, c.err))?;
        let f = &cj["files"][0];
        let class = class_of(&f["verdict"], "check", &c.out)?;
        let etcd = f["etcd"].as_str().map(str::to_string);
        let kind = f["kind"].as_str().unwrap_or("").to_string();
        let want_code = match class.as_str() {
            "ok" => 0,
            "warnings" | "damaged" => 1,
            _ => 2,
        };
        if c.code != want_code {
            return Err(format!("check exits {} for {class}: {}", c.code, c.err));
        }
        got.push(("check".into(), class.clone()));
        let i = run(&["inspect", "-o", "json", s]);
        let ij: Value =
            serde_json::from_str(&i.out).map_err(|e| format!("inspect: {e}: {}{}", i.out, i.err))?;
        got.push((
            "inspect".into(),
            class_of(&ij["judgments"][0]["verdict"], "inspect", &i.out)?,
        ));
        if i.code != want_code {
            return Err(format!("inspect exits {} for {class}: {}", i.code, i.err));
        }
        got.push(("verify".into(), verify_class(p)?));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let tarred = tmp.path().join(format!("{name}.tar"));
        std::fs::write(&tarred, tar_of(p)).unwrap();
        got.push(("verify (tar)".into(), verify_class(&tarred)?));
        let gz = if p.is_dir() {
            let t = tmp.path().join(format!("{name}.tar.gz"));
            std::fs::write(&t, gzip(&std::fs::read(&tarred).unwrap())).unwrap();
            t
        } else {
            let t = tmp.path().join(format!("{name}.gz"));
            std::fs::write(&t, gzip(&std::fs::read(p).unwrap())).unwrap();
            t
        };
        got.push(("verify (gzip)".into(), verify_class(&gz)?));
        let out = tmp.path().join("restored");
        let r = run(&[
            "restore",
            "--dry-run",
            "-o",
            "json",
            s,
            "--data-dir",
            out.to_str().unwrap(),
        ]);
        let rj: Value =
            serde_json::from_str(&r.out).map_err(|e| format!("restore: {e}: {}{}", r.out, r.err))?;
        got.push((
            "restore --dry-run".into(),
            class_of(&rj["source"]["verdict"], "restore", &r.out)?,
        ));
        let refused = rj["restored"] == false;
        let passes = class == "ok" || class == "warnings";
        // A db has no trailer: etcdutl and restore want --skip-hash-check
        // for it, whatever its verdict; snapshots and data dirs are taken
        // exactly when they pass.
        let takes = matches!(kind.as_str(), "snapshot" | "data-dir");
        if takes && passes && refused {
            return Err(format!(
                "restore --dry-run refuses a source judged {class}: {}",
                r.err
            ));
        }
        if !passes && !refused {
            return Err(format!("restore --dry-run accepts a source judged {class}"));
        }
        if out.exists() {
            return Err("restore --dry-run wrote its output".into());
        }
        let disagree: Vec<&(String, String)> = got.iter().filter(|(_, c)| *c != class).collect();
        if !disagree.is_empty() {
            return Err(format!("the commands disagree: {got:?}"));
        }
        Ok(Agreed { class, etcd, kind })
    })
}

/// What real etcd does when started on a copy of a member dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Does {
    /// It starts and serves every key the reference serves (and commits a
    /// write, for a one-member cluster).
    ServesAll,
    /// It starts, but serves other data than the reference, or cannot
    /// commit a write.
    Loses(String),
    /// It exits, panics, faults, or never becomes ready.
    Refuses(String),
}

impl Does {
    /// The outcome word the judgment uses for the same thing.
    pub fn outcome(&self) -> &'static str {
        match self {
            Does::ServesAll => "starts",
            Does::Loses(_) => "unsafe",
            Does::Refuses(_) => "wont-start",
        }
    }
}

/// What a started etcd serves: its header revision and every key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// Header revision.
    pub revision: i64,
    /// Every key (`get "" --prefix`, serializable).
    pub kvs: Vec<Kv>,
    /// Every v2 key with its value (etcd 2.x data, served through the v2 API).
    pub v2: Vec<(String, String)>,
}

/// Every v2 key and value etcd serves (`GET /v2/keys/?recursive=true`).
fn v2_keys(port: u16) -> Result<Vec<(String, String)>, String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET /v2/keys/?recursive=true&sorted=true HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // A chunked body: the JSON object is between the first '{' and the last '}'.
    let (a, b) = (body.find('{'), body.rfind('}'));
    let (Some(a), Some(b)) = (a, b) else {
        return Err(format!("v2 answer: {resp}"));
    };
    let j: Value = serde_json::from_str(&body[a..=b]).map_err(|e| format!("{e}: {body}"))?;
    let mut out = Vec::new();
    fn walk(n: &Value, out: &mut Vec<(String, String)>) {
        if let Some(v) = n["value"].as_str() {
            out.push((n["key"].as_str().unwrap_or("").to_string(), v.to_string()));
        }
        for c in n["nodes"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    walk(&j["node"], &mut out);
    out.sort();
    Ok(out)
}

struct Running {
    child: Child,
    bin: PathBuf,
    url: String,
    log: PathBuf,
    port: u16,
}

impl Running {
    fn ctl(&self, args: &[&str]) -> (bool, String, String) {
        let o = Command::new(self.bin.join("etcdctl"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url, "--dial-timeout=1s"])
            .args(args)
            .output()
            .expect("run etcdctl");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// The line of the log that says why etcd stopped.
    fn why(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines
            .iter()
            .find(|l| {
                l.contains("\"level\":\"panic\"")
                    || l.contains("\"level\":\"fatal\"")
                    || l.starts_with("panic:")
                    || l.contains(" C | ")
                    || l.starts_with("unexpected fault")
                    || l.starts_with("fatal error")
            })
            .or(lines.last())
            .map(|l| l.chars().take(300).collect())
            .unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns one etcd member from `bin` on `dir` on free loopback ports, its
/// log beside `dir`: (the process, its client port, its log).
pub fn spawn(bin: &Path, dir: &Path, extra: &[&str]) -> (Child, u16, PathBuf) {
    let client = free_port();
    let peer = free_port();
    let url = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let log = dir.with_extension("log");
    let child = Command::new(bin.join("etcd"))
        .args(["--name", "t", "--data-dir"])
        .arg(dir)
        .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
        .args([
            "--listen-peer-urls",
            &purl,
            "--initial-advertise-peer-urls",
            &purl,
        ])
        .args(["--initial-cluster", &format!("t={purl}")])
        .args(["--logger", "zap", "--log-outputs", "stderr"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start etcd");
    (child, client, log)
}

/// Starts etcd from `bin` on `dir` (which it may change: a copy) and waits
/// up to `wait` for a serializable read to answer.
fn start(bin: &Path, dir: &Path, wait: Duration) -> Result<Running, String> {
    let (child, client, log) = spawn(bin, dir, &["--enable-v2"]);
    let url = format!("http://127.0.0.1:{client}");
    let mut r = Running {
        child,
        bin: bin.to_path_buf(),
        url,
        log,
        port: client,
    };
    let t = Instant::now();
    while t.elapsed() < wait {
        if let Ok(Some(st)) = r.child.try_wait() {
            return Err(format!("etcd exited ({st}): {}", r.why()));
        }
        if r.ctl(&["--command-timeout=2s", "get", "--consistency=s", "x"]).0 {
            return Ok(r);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "etcd did not answer in {} s: {}",
        wait.as_secs(),
        r.why()
    ))
}

/// How long etcd may take to become ready on a member dir.
const READY: Duration = Duration::from_secs(30);

/// Starts etcd on a copy of `dir` and reads everything it serves; for a
/// one-member cluster, also whether it commits a write.
pub fn serve(bin: &Path, dir: &Path) -> Result<(Served, bool), String> {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("d");
    copy_tree(dir, &copy);
    let r = start(bin, &copy, READY)?;
    let (ok, out, e) = r.ctl(&[
        "--command-timeout=10s",
        "get",
        "",
        "--prefix",
        "--consistency=s",
        "-w",
        "json",
    ]);
    if !ok {
        return Err(format!("etcd started but does not read: {e}"));
    }
    let j: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
    let (revision, kvs) = etcdctl_get_json(&j);
    let v2 = v2_keys(r.port)?;
    let members = r.ctl(&["--command-timeout=5s", "member", "list", "-w", "json"]);
    let single = serde_json::from_str::<Value>(&members.1)
        .ok()
        .and_then(|m| m["members"].as_array().map(|a| a.len() == 1))
        .unwrap_or(true);
    let writes = !single || r.ctl(&["--command-timeout=5s", "put", "/agreement/probe", "x"]).0;
    Ok((Served { revision, kvs, v2 }, writes))
}

/// What etcd does with (a copy of) `dir`, against what it serves from the
/// undamaged `reference`.
pub fn etcd_does(bin: &Path, dir: &Path, reference: &Served) -> Does {
    match serve(bin, dir) {
        Err(e) => Does::Refuses(e),
        Ok((_, false)) => Does::Loses("etcd starts but cannot commit a write".into()),
        Ok((s, true)) if s == *reference => Does::ServesAll,
        Ok((s, true)) => Does::Loses(format!(
            "etcd serves {} keys at revision {} ({} v2 keys), where the undamaged dir gives {} keys at revision {} ({} v2 keys)",
            s.kvs.len(),
            s.revision,
            s.v2.len(),
            reference.kvs.len(),
            reference.revision,
            reference.v2.len()
        )),
    }
}

/// What etcd does with (a copy of) `dir` when there is no undamaged dir to
/// compare its answers with: refuses, or starts without committing a
/// write, or starts and commits one.
pub fn etcd_alone(bin: &Path, dir: &Path) -> Does {
    match serve(bin, dir) {
        Err(e) => Does::Refuses(e),
        Ok((_, false)) => Does::Loses("etcd starts but cannot commit a write".into()),
        Ok((_, true)) => Does::ServesAll,
    }
}

/// Every file under `dir`, for `unchanged`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    walk_files(dir)
}

/// What etcd serves from the undamaged member dir `dir`, computed once per
/// test process.
pub fn reference(bin: &Path, dir: &Path) -> Served {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Served>>> = OnceLock::new();
    let mut c = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = c.get(dir) {
        return s.clone();
    }
    let (s, writes) =
        serve(bin, dir).unwrap_or_else(|e| panic!("etcd on the undamaged {}: {e}", dir.display()));
    assert!(writes, "etcd on the undamaged {} commits no write", dir.display());
    c.insert(dir.to_path_buf(), s.clone());
    s
}

/// Checks that the judgment of the member dir `dir` is what real etcd does
/// on a copy of it (against the undamaged `original`).
pub fn agrees_with_etcd(bin: &Path, dir: &Path, original: &Path, judged: &Agreed) -> Result<Does, String> {
    let reference = reference(bin, original);
    let does = etcd_does(bin, dir, &reference);
    let ours = judged.etcd.as_deref().unwrap_or("-");
    if ours != does.outcome() {
        return Err(format!("the judgment says {ours}, real etcd: {does:?}"));
    }
    Ok(does)
}
