//! Real object store servers on loopback for the tests: s3s-fs (an S3
//! server over a directory) and Azurite (Azure's Blob emulator), installed
//! by `testdata/servers.sh install`; and a proxy in front of one that
//! throttles chosen objects or goes away mid-run, as a real store does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Run, repo};

/// The S3 credentials s3s-fs is started with (test-only values).
pub const S3_KEY: &str = "AKIDETCDRESCUETEST";
/// The secret that goes with [`S3_KEY`].
pub const S3_SECRET: &str = "etcd-rescue-test-secret-0123456789";
/// Azurite's well-known development account key (public, in Azure's docs).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A port free on loopback now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` accepts connections, or panics with the server's output.
fn wait_port(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited at start: {st}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process, killed when dropped.
pub struct Server {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Its data.
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Stops it now (a store going away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s3s-fs serving a fresh directory: each top-level dir is a bucket.
pub fn s3(servers: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(servers.join("bin/s3s-fs"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    wait_port(port, &mut child, "s3s-fs");
    Server { child, port, dir }
}

/// The environment the tool reads S3 settings from, for an endpoint on `port`.
pub fn s3_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", S3_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
    ]
}

/// Copies a local tree into bucket `bucket` of an s3s-fs server (its
/// objects are its files).
pub fn s3_put_tree(server: &Server, bucket: &str, from: &Path) {
    super::copy_tree(from, &server.dir.path().join(bucket));
}

/// Azurite's blob service on a fresh directory.
pub fn azurite(servers: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(servers.join("node/node_modules/.bin/azurite-blob"))
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir.path())
        .args([
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start azurite");
    wait_port(port, &mut child, "azurite");
    Server { child, port, dir }
}

/// The environment the tool reads Azure settings from, for Azurite on `port`.
pub fn azure_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", format!("http://127.0.0.1:{port}")),
    ]
}

/// Uploads a local tree into container `container` with Azure's own JS client.
pub fn azure_put_tree(servers: &Path, server: &Server, container: &str, from: &Path) {
    let script = servers.join("node/azure-upload.mjs");
    std::fs::copy(repo().join("testdata/remote/azure-upload.mjs"), &script).unwrap();
    let conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
        server.port
    );
    let o = Command::new("node")
        .arg(&script)
        .args([conn.as_str(), container])
        .arg(from)
        .output()
        .expect("run node");
    assert!(
        o.status.success(),
        "upload failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs the real binary with `env` added, and the clouds' other settings
/// of the test process removed.
pub fn run_env(args: &[&str], env: &[(&str, String)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcd-rescue"));
    c.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("AZURE") || k.starts_with("GOOGLE_") {
            c.env_remove(k);
        }
    }
    // No profile files from the machine, no instance metadata lookups.
    c.env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run etcd-rescue");
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A proxy in front of a server: answers `503 SlowDown` for every request
/// whose target contains `throttle`, and, after `stop_after` object GETs,
/// stops listening (a store going away mid-run). One request per connection.
pub struct Proxy {
    /// Its port.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Proxy {
    /// Starts one in front of `upstream`.
    pub fn start(upstream: u16, throttle: &'static str, stop_after: Option<usize>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let gets = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, gets) = (Arc::clone(&s), Arc::clone(&gets));
                        std::thread::spawn(move || serve(conn, upstream, throttle, stop_after, &gets, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // Dropping the listener: connections are refused from now on.
        });
        Proxy { port, stop }
    }
}

/// One connection through the proxy.
fn serve(
    mut conn: TcpStream,
    upstream: u16,
    throttle: &str,
    stop_after: Option<usize>,
    gets: &AtomicUsize,
    stop: &AtomicBool,
) {
    conn.set_nonblocking(false).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut b).unwrap_or(0) == 0 {
            return;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut first = text.lines().next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    if !throttle.is_empty() && target.contains(throttle) {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let _ = write!(
            conn,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let object_get = method == "GET" && !target.contains('?');
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
    let mut forwarded: String = text
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    up.write_all(forwarded.as_bytes()).unwrap();
    let _ = std::io::copy(&mut up, &mut conn);
    if object_get && stop_after.is_some_and(|n| gets.fetch_add(1, Ordering::SeqCst) + 1 >= n) {
        stop.store(true, Ordering::SeqCst);
    }
}
