//! Running real etcd in tests: a member on free loopback ports, etcdctl
//! against it, killed when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (the listener is closed before returning).
///
/// Ports come from 25000..32000, below Linux's ephemeral range (32768 and
/// up): a port the kernel handed out for `bind(0)` can be taken by any
/// outgoing connection (etcdctl's, etcd's own) before etcd listens on it,
/// which made starts fail now and then with "address already in use". Each
/// test process walks the range from its own offset, so parallel tests never
/// get the same port, and the fixture generator's 23000-24999 stay clear.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 25000;
    const SPAN: u32 = 7000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 997) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}

/// A running etcd member.
pub struct Etcd {
    child: Child,
    bin: PathBuf,
    /// Client URL.
    pub client_url: String,
    /// Where its log goes.
    pub log: PathBuf,
}

/// How to start a member.
pub struct Member<'a> {
    /// Directory with etcd and etcdctl.
    pub bin: &'a Path,
    /// --data-dir.
    pub data_dir: &'a Path,
    /// --name.
    pub name: &'a str,
    /// Peer port (the advertised peer URL is http://127.0.0.1:PORT).
    pub peer_port: u16,
    /// --initial-cluster (None: just this member).
    pub initial_cluster: Option<String>,
    /// Extra flags.
    pub extra: Vec<String>,
}

impl Etcd {
    /// Starts the member and waits until it answers `endpoint health`.
    pub fn start(m: Member<'_>) -> Etcd {
        let mut e = Etcd::spawn(m);
        e.wait_healthy();
        e
    }

    /// Starts the member without waiting (for clusters, whose members only
    /// become healthy together); call [`Etcd::wait_healthy`] after.
    pub fn spawn(m: Member<'_>) -> Etcd {
        let client_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{}", m.peer_port);
        let log = m.data_dir.with_extension("log");
        let logf = std::fs::File::create(&log).expect("log file");
        let cluster = m
            .initial_cluster
            .unwrap_or_else(|| format!("{}={peer_url}", m.name));
        let child = Command::new(m.bin.join("etcd"))
            .arg("--name")
            .arg(m.name)
            .arg("--data-dir")
            .arg(m.data_dir)
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &cluster])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .args(&m.extra)
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start etcd");
        Etcd {
            child,
            bin: m.bin.to_path_buf(),
            client_url,
            log,
        }
    }

    /// Waits until the member answers `endpoint health` (panics after 60 s).
    pub fn wait_healthy(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("etcd exited ({st}); log:\n{}", self.log_tail());
            }
            let o = self.ctl_output(&["--command-timeout=2s", "--dial-timeout=1s", "endpoint", "health"]);
            if o.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("etcd did not become healthy in 60 s; log:\n{}", self.log_tail());
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn ctl_output(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("etcdctl"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client_url, "--command-timeout", "20s"])
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    /// Runs etcdctl and returns its stdout; panics with stderr on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        let o = self.ctl_output(args);
        assert!(
            o.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `etcdctl put KEY` with the value read from stdin (byte-exact).
    pub fn put_bytes(&self, key: &str, value: &[u8]) {
        self.ctl_input(&["put", key], value);
    }

    /// Runs etcdctl with `input` on its stdin; returns its stdout, panics
    /// with stderr on failure.
    fn ctl_input(&self, args: &[&str], input: &[u8]) -> String {
        use std::io::Write;
        let mut child = Command::new(self.bin.join("etcdctl"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client_url, "--command-timeout", "20s"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run etcdctl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        let o = child.wait_with_output().expect("wait etcdctl");
        assert!(
            o.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Stops the member (SIGKILL) and waits for it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restores `snapshot` with real `etcdutl snapshot restore` into `data_dir`
/// for a one-member cluster whose peer port is `peer_port`.
pub fn etcdutl_restore(bin: &Path, snapshot: &Path, data_dir: &Path, name: &str, peer_port: u16) {
    let peer = format!("http://127.0.0.1:{peer_port}");
    let o = Command::new(bin.join("etcdutl"))
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--name", name, "--initial-cluster", &format!("{name}={peer}")])
        .args(["--initial-advertise-peer-urls", &peer])
        .output()
        .expect("run etcdutl");
    assert!(
        o.status.success(),
        "etcdutl snapshot restore failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Etcd {
    /// Starts the member like [`Etcd::start`], but returns its log instead
    /// of panicking when etcd exits or does not become healthy in 60 s.
    pub fn try_start(m: Member<'_>) -> Result<Etcd, String> {
        Etcd::try_start_probe(m, &["endpoint", "health"])
    }

    /// Like [`Etcd::try_start`], with another etcdctl command as the sign
    /// that etcd is up (a read, for a member that serves reads but cannot
    /// commit writes).
    pub fn try_start_probe(m: Member<'_>, probe: &[&str]) -> Result<Etcd, String> {
        let mut e = Etcd::spawn(m);
        let start = Instant::now();
        // Generous: a loaded CI machine replays a 128 MB WAL slowly. A start
        // that fails makes etcd exit at once, so this costs nothing then.
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(st)) = e.child.try_wait() {
                return Err(format!("etcd exited ({st}); log:\n{}", e.log_tail()));
            }
            // Short timeouts: against a dead endpoint etcdctl would wait out
            // the whole command timeout.
            let mut args = vec!["--command-timeout=2s", "--dial-timeout=1s"];
            args.extend_from_slice(probe);
            if e.ctl_output(&args).status.success() {
                return Ok(e);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "etcd did not answer {probe:?} in 60 s; log:\n{}",
            e.log_tail()
        ))
    }

    /// Runs etcdctl and returns (success, stdout, stderr).
    pub fn ctl_raw(&self, args: &[&str]) -> (bool, String, String) {
        let o = self.ctl_output(args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

impl Etcd {
    /// Runs etcdctl with `input` on its stdin (`etcdctl txn` reads its
    /// ops this way); returns its stdout, panics with stderr on failure.
    pub fn ctl_stdin(&self, args: &[&str], input: &str) -> String {
        self.ctl_input(args, input.as_bytes())
    }

    /// Stops the member as an operator would (SIGTERM: etcd commits its db
    /// and closes its files), waiting up to 30 s before killing it.
    pub fn shutdown(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restores the salvaged (trailer-less) `db` with `etcd-rescue restore
/// --skip-hash-check` into `dir/restored` (the input left unchanged, no
/// `--force`), starts real etcd on it and returns what it serves for
/// `get "" --prefix` (header revision and kvs), after proving etcd can
/// write to it.
pub fn restore_and_serve(bin: &Path, db: &Path, dir: &Path) -> (i64, Vec<super::Kv>) {
    let data = dir.join("restored");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cluster = format!("r={url}");
    let r = super::unchanged(&[db], || {
        super::run(&[
            "restore",
            db.to_str().unwrap(),
            "--skip-hash-check",
            "--data-dir",
            data.to_str().unwrap(),
            "--name",
            "r",
            "--initial-cluster",
            &cluster,
            "--initial-advertise-peer-urls",
            &url,
        ])
    });
    assert_eq!(r.code, 0, "restore of {}: {}{}", db.display(), r.out, r.err);
    let etcd = Etcd::start(Member {
        bin,
        data_dir: &data,
        name: "r",
        peer_port: port,
        initial_cluster: Some(cluster),
        extra: vec![],
    });
    let got = super::etcdctl_get_json(
        &serde_json::from_str(&etcd.ctl(&["get", "", "--prefix", "-w", "json"])).unwrap(),
    );
    // etcd writes to the db it serves: prove it can.
    etcd.ctl(&["put", "/written/after/restore", "ok"]);
    etcd.stop();
    std::fs::remove_dir_all(&data).unwrap();
    got
}
