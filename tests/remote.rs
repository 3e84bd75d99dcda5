//! `verify` and the single-snapshot commands on backups in object stores:
//! real servers on loopback (s3s-fs for S3, Azurite for Azure Blob), the
//! same backup tree as the local verify tests, and the local verdicts as the
//! oracle; a throttling store and one that goes away mid-run; k3s and
//! gardener layouts; the catalog keyed by ETag; metrics checked by promtool.

mod common;

use common::servers::{self, Proxy, Server, run_env};
use common::*;
use serde_json::Value;

/// One record as comparable across stores: where it is under the store's
/// root, and everything the verification said about it.
fn projection(records: &Value, root: &str) -> Vec<Value> {
    let strip = |s: &str| s.replace(&format!("{root}/"), "");
    records["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            serde_json::json!({
                "file": strip(r["file"].as_str().unwrap()),
                "kind": r["kind"], "container": r["container"], "verdict": r["verdict"],
                "revision": r["revision"], "keys": r["keys"], "hash": r["hash"],
                "trailer": r["trailer"], "errors": r["errors"], "size": r["size"],
                "firstProblem": r["firstProblem"].as_str().map(strip),
                "series": strip(r["series"].as_str().unwrap()),
            })
        })
        .collect()
}

/// The backup tree on disk, and what local verify says of it.
fn local_tree() -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    backups::write_tree(&root, false);
    let r = run(&["verify", "--no-catalog", "-o", "json", root.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.err);
    let p = projection(&r.json(), root.to_str().unwrap());
    assert_eq!(p.len(), 13, "{p:#?}");
    (dir, p)
}

fn verify_url(url: &str, env: &[(&str, String)], extra: &[&str]) -> (common::Run, Value) {
    let mut args = vec!["verify", "-o", "json"];
    args.extend_from_slice(extra);
    args.push(url);
    let r = run_env(&args, env);
    let j = serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.out, r.err));
    (r, j)
}

struct Stores {
    s3: Server,
    azure: Server,
    _tree: tempfile::TempDir,
    local: Vec<Value>,
}

/// Both servers, each holding the backup tree in bucket/container `backups`.
fn stores() -> Option<Stores> {
    let servers = require(Need::Servers)?;
    let (tree, local) = local_tree();
    let s3 = servers::s3(&servers);
    servers::s3_put_tree(&s3, "backups", &tree.path().join("backups"));
    let azure = servers::azurite(&servers);
    servers::azure_put_tree(&servers, &azure, "backups", &tree.path().join("backups"));
    Some(Stores {
        s3,
        azure,
        _tree: tree,
        local,
    })
}

#[test]
fn s3_and_azure_give_the_local_verdicts() {
    let Some(st) = stores() else { return };
    let metrics = tempfile::tempdir().unwrap();
    let prom = metrics.path().join("etcd-backups.prom");
    for (url, env) in [
        ("s3://backups/", servers::s3_env(st.s3.port)),
        ("az://backups", servers::azure_env(st.azure.port)),
    ] {
        let extra = ["--no-catalog", "--metrics-file", prom.to_str().unwrap()];
        let (r, j) = verify_url(url, &env, &extra);
        assert_eq!(r.code, 1, "damaged backups fail the run: {}", r.err);
        assert!(
            r.err.contains("13 object(s), ") && r.err.contains(" of spill files in "),
            "{}",
            r.err
        );
        let base = url.trim_end_matches('/');
        assert_eq!(projection(&j, base), st.local, "{url}");
        assert_eq!(j["summary"]["units"], 13);
        // The metrics say the same, in a form promtool accepts.
        let text = std::fs::read_to_string(&prom).unwrap();
        assert!(
            text.contains(&format!(
                "etcd_rescue_backup_ok{{backup=\"{base}/raw/db\",series=\"{base}/raw/db\",kind=\"db\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "etcd_rescue_backup_ok{{backup=\"{base}/damaged/cut.db\""
        )));
        assert!(text.contains("etcd_rescue_verify_last_run_success 0"));
        assert!(text.contains("etcd_rescue_verify_backups{verdict=\"damaged\"} 4"));
        assert!(text.contains(&format!(
            "etcd_rescue_series_newest_good_backup_revision{{series=\"{base}/hourly/etcd-snapshot-m1-*.db\"}} 57"
        )), "{text}");
        if let Some(promtool) = require(Need::Promtool) {
            let o = std::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(std::fs::File::open(&prom).unwrap())
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    // A glob over keys, in both.
    let (r, j) = verify_url(
        "s3://backups/hourly/etcd-snapshot-m1-*",
        &servers::s3_env(st.s3.port),
        &["--no-catalog"],
    );
    assert_eq!((r.code, j["summary"]["ok"].as_u64()), (0, Some(3)), "{}", r.err);
    let (r, j) = verify_url(
        "az://backups/damaged/*.gz",
        &servers::azure_env(st.azure.port),
        &["--no-catalog"],
    );
    assert_eq!(
        (r.code, j["summary"]["units"].as_u64()),
        (1, Some(2)),
        "{}",
        r.err
    );
}

#[test]
fn the_catalog_skips_objects_whose_etag_is_unchanged() {
    let Some(st) = stores() else { return };
    let cat = tempfile::tempdir().unwrap();
    let catalog = cat.path().join("c.redb");
    let c = catalog.to_str().unwrap();
    let env = servers::s3_env(st.s3.port);
    let (_, j1) = verify_url("s3://backups", &env, &["--catalog", c]);
    assert_eq!(
        (
            j1["summary"]["afresh"].as_u64(),
            j1["summary"]["fromCatalog"].as_u64()
        ),
        (Some(13), Some(0))
    );
    let (r2, j2) = verify_url("s3://backups", &env, &["--catalog", c]);
    assert_eq!(
        (
            j2["summary"]["afresh"].as_u64(),
            j2["summary"]["fromCatalog"].as_u64()
        ),
        (Some(0), Some(13)),
        "{}",
        r2.err
    );
    assert_eq!(
        projection(&j2, "s3://backups"),
        st.local,
        "catalog results are the same verdicts"
    );
    // An object rewritten with other bytes of the same size: a new ETag.
    let obj = st.s3.dir.path().join("backups/compressed/single.db.zst");
    let mut bytes = std::fs::read(&obj).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&obj, &bytes).unwrap();
    let (_, j3) = verify_url("s3://backups", &env, &["--catalog", c]);
    assert_eq!(j3["summary"]["afresh"], 1, "{j3:#}");
    let rec = j3["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "s3://backups/compressed/single.db.zst")
        .unwrap();
    assert!(
        rec["recheckReason"].as_str().unwrap().contains("changed"),
        "{rec}"
    );
    assert_ne!(rec["verdict"], "ok", "the rewritten zstd frame is damaged: {rec}");
    let (_, j4) = verify_url("s3://backups", &env, &["--catalog", c, "--recheck"]);
    assert_eq!(j4["summary"]["afresh"], 13);
}

#[test]
fn a_throttling_store_and_one_that_goes_away_fail_only_their_objects() {
    let Some(st) = stores() else { return };
    // Every request for one object is throttled until the retries run out.
    let proxy = Proxy::start(st.s3.port, "damaged/cut.db", None);
    let (r, j) = verify_url(
        "s3://backups",
        &servers::s3_env(proxy.port),
        &["--no-catalog", "--retries", "1"],
    );
    assert_eq!(r.code, 1, "{}", r.err);
    for (got, want) in projection(&j, "s3://backups").iter().zip(&st.local) {
        if got["file"] == "damaged/cut.db" {
            assert_eq!(got["verdict"], "unreadable");
            let p = got["firstProblem"].as_str().unwrap();
            // (The projection cuts the store's URL off names.)
            assert!(p.starts_with("damaged/cut.db: the store is throttling"), "{p}");
        } else {
            assert_eq!(got, want);
        }
    }
    drop(proxy);
    // The store goes away after three downloads.
    let proxy = Proxy::start(st.s3.port, "", Some(3));
    let extra = [
        "--no-catalog",
        "--retries",
        "1",
        "--jobs",
        "1",
        "--download-jobs",
        "1",
    ];
    let (r, j) = verify_url("s3://backups", &servers::s3_env(proxy.port), &extra);
    assert_eq!(r.code, 1, "{}", r.err);
    let got = projection(&j, "s3://backups");
    assert_eq!(got.len(), st.local.len());
    let lost: Vec<&Value> = got
        .iter()
        .filter(|g| {
            g["verdict"] == "unreadable"
                && g["firstProblem"]
                    .as_str()
                    .unwrap()
                    .contains("cannot reach the store")
        })
        .collect();
    assert_eq!(lost.len(), 10, "{got:#?}");
    for (g, want) in got.iter().zip(&st.local).take(3) {
        assert_eq!(g, want, "verified before the store went away");
    }
    for g in &lost {
        let file = g["file"].as_str().unwrap();
        assert!(
            g["firstProblem"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{file}: cannot reach the store")),
            "{g}"
        );
    }
}

#[test]
fn wrong_credentials_and_missing_buckets_are_named() {
    let Some(st) = stores() else { return };
    let mut env = servers::s3_env(st.s3.port);
    env[1].1 = "not-the-secret-xyzzy".into();
    let r = run_env(&["verify", "--no-catalog", "s3://backups/"], &env);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("s3://backups/: not authenticated"), "{}", r.err);
    assert!(
        !r.err.contains("xyzzy") && !r.out.contains("xyzzy"),
        "no secret in messages"
    );
    let r = run_env(
        &["verify", "--no-catalog", "s3://no-such-bucket/"],
        &servers::s3_env(st.s3.port),
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("s3://no-such-bucket/: not found"), "{}", r.err);
    let r = run_env(
        &["status", "az://backups/no/such.db"],
        &servers::azure_env(st.azure.port),
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("az://backups/no/such.db: not found"), "{}", r.err);
    let r = run_env(
        &["-o", "json", "verify", "--no-catalog", "az://nocontainer"],
        &servers::azure_env(st.azure.port),
    );
    assert_eq!(r.code, 2);
    assert!(r.err.contains("az://nocontainer: not found"), "{}", r.err);
    // A store that is not there at all.
    let port = servers::free_port();
    let r = run_env(
        &["verify", "--no-catalog", "--retries", "0", "s3://backups/"],
        &servers::s3_env(port),
    );
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("s3://backups/: cannot reach the store"),
        "{}",
        r.err
    );
    // A store that accepts connections and then says nothing: cut by the
    // read timeout, never a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let args = [
        "verify",
        "--no-catalog",
        "--retries",
        "0",
        "--read-timeout",
        "1",
        "s3://backups/",
    ];
    let start = std::time::Instant::now();
    let r = run_env(&args, &servers::s3_env(port));
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("s3://backups/: cannot reach the store") && r.err.contains("timed out"),
        "{}",
        r.err
    );
    assert!(start.elapsed().as_secs() < 30);
    drop(silent);
    // A URL that is not one.
    let r = run_env(&["verify", "--no-catalog", "s3:///x"], &[]);
    assert!(r.code == 2 && r.err.contains("no bucket named"), "{}", r.err);
}

#[test]
fn single_snapshot_commands_read_urls_as_files() {
    let Some(st) = stores() else { return };
    let tree = st._tree.path().join("backups");
    let s3 = servers::s3_env(st.s3.port);
    let az = servers::azure_env(st.azure.port);
    // The same answer from the object as from the file, but for the name
    // of what was read (the file, or the downloaded copy stderr names).
    let same = |args: &[&str], rel: &str, url: &str, env: &[(&str, String)]| {
        let local = tree.join(rel);
        let mut a: Vec<&str> = args.to_vec();
        a.insert(1, local.to_str().unwrap());
        let want = run(&a);
        a[1] = url;
        let got = run_env(&a, env);
        assert_eq!(got.code, want.code, "{args:?} {url}: {}", got.err);
        let note = format!("{url}: read from a downloaded copy, ");
        let copy = got
            .err
            .lines()
            .find_map(|l| l.strip_prefix("etcd-rescue: ")?.strip_prefix(note.as_str()))
            .and_then(|l| l.split_once(" in ")?.1.strip_suffix(" (deleted at exit)"))
            .unwrap_or_else(|| panic!("no download note: {}", got.err));
        assert_eq!(
            got.out.replace(copy, "SRC"),
            want.out.replace(local.to_str().unwrap(), "SRC"),
            "{args:?} {url}"
        );
    };
    same(&["status", "-o", "json"], "raw/db", "s3://backups/raw/db", &s3);
    same(
        &["status", "-o", "json"],
        "compressed/single.db.zst",
        "az://backups/compressed/single.db.zst",
        &az,
    );
    same(
        &["get", "/", "--prefix", "-w", "json"],
        "compressed/k3s-snapshot.zip",
        "s3://backups/compressed/k3s-snapshot.zip",
        &s3,
    );
    same(&["hashkv", "-w", "json"], "raw/db", "az://backups/raw/db", &az);
    same(
        &["check", "-o", "json"],
        "damaged/cut.db",
        "s3://backups/damaged/cut.db",
        &s3,
    );
    // A plain HTTP server (Python's), one object per URL.
    let port = servers::free_port();
    let mut http = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(&tree)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && start.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{port}/raw/db");
    same(&["status", "-o", "json"], "raw/db", &url, &[]);
    let (r, j) = verify_url(&url, &[], &["--no-catalog"]);
    assert_eq!(
        (r.code, j["results"][0]["verdict"].as_str()),
        (0, Some("ok")),
        "{}",
        r.err
    );
    let r = run_env(&["status", &format!("http://127.0.0.1:{port}/raw/nothing")], &[]);
    assert!(
        r.code == 2 && r.err.contains("/raw/nothing: not found"),
        "{}",
        r.err
    );
    let _ = http.kill();
    let _ = http.wait();
    // restore writes the same member from the object as from the file.
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("a"), out.path().join("b"));
    let want = run(&[
        "restore",
        tree.join("raw/db").to_str().unwrap(),
        "--data-dir",
        a.to_str().unwrap(),
        "--skip-hash-check",
        "-o",
        "json",
    ]);
    let got = run_env(
        &[
            "restore",
            "s3://backups/raw/db",
            "--data-dir",
            b.to_str().unwrap(),
            "--skip-hash-check",
            "-o",
            "json",
        ],
        &s3,
    );
    assert_eq!((want.code, got.code), (0, 0), "{}", got.err);
    let (w, g) = (want.json(), got.json());
    assert_eq!(w["written"][0]["db"], g["written"][0]["db"]);
    assert_eq!(
        digest(&a.join("member/snap/db")),
        digest(&b.join("member/snap/db"))
    );
    // Keys with spaces and plus signs are read as they are named.
    let odd = st.s3.dir.path().join("backups/odd names/etcd snapshot+1.db");
    std::fs::create_dir_all(odd.parent().unwrap()).unwrap();
    std::fs::copy(tree.join("raw/db"), &odd).unwrap();
    let r = run_env(
        &[
            "status",
            "s3://backups/odd names/etcd snapshot+1.db",
            "-o",
            "json",
        ],
        &s3,
    );
    let want = run(&["status", tree.join("raw/db").to_str().unwrap(), "-o", "json"]);
    assert_eq!(
        (r.code, &r.json()["revision"]),
        (0, &want.json()["revision"]),
        "{}",
        r.err
    );
    let (r, j) = verify_url("s3://backups/odd names/", &s3, &["--no-catalog"]);
    assert_eq!(
        j["results"][0]["file"], "s3://backups/odd names/etcd snapshot+1.db",
        "{}",
        r.err
    );
    std::fs::remove_dir_all(odd.parent().unwrap()).unwrap();
    // A URL matching several objects is refused with their names.
    let r = run_env(&["status", "s3://backups/hourly/"], &s3);
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .contains("s3://backups/hourly/: matches 3 objects (s3://backups/hourly/etcd-snapshot-m1-"),
        "{}",
        r.err
    );
    let r = run_env(&["-o", "json", "status", "s3://backups/hourly/"], &s3);
    assert_eq!(serde_json::from_str::<Value>(&r.out).unwrap()["exitCode"], 2);
}

/// The string `field` of every element of array `list` of `j`.
fn strings<'a>(j: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    j[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap())
        .collect()
}

/// `data` in zlib (gardener's `.zlib` policy).
fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A gardener delta snapshot: the events as JSON, then their sha256.
fn delta(revs: &[i64]) -> Vec<u8> {
    let events: Vec<Value> = revs
        .iter()
        .map(|r| serde_json::json!({"etcdEvent": {"kv": {"key": "L2E=", "mod_revision": r, "value": "eA=="}}, "time": "2026-12-04T00:00:00Z"}))
        .collect();
    let mut d = serde_json::to_vec(&events).unwrap();
    use sha2::Digest;
    let h = sha2::Sha256::digest(&d);
    d.extend_from_slice(&h);
    d
}

#[test]
fn k3s_and_gardener_layouts_are_recognised() {
    let Some(servers) = require(Need::Servers) else {
        return;
    };
    let fx = repo().join("testdata/fixtures");
    let snap = std::fs::read(fx.join("v3.5.1/single.snapshot.db")).unwrap();
    let cluster = std::fs::read(fx.join("v3.5.1/cluster.snapshot.db")).unwrap();
    let t = backups::ts;
    let s3 = servers::s3(&servers);
    let root = s3.dir.path().join("fleet");
    let w = |rel: &str, data: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    // k3s: snapshots named <name>-<node>-<unix>, zipped or not, with sidecars.
    w(&format!("k3s/etcd-snapshot-node1-{}", t(7200)), &cluster);
    w(
        &format!("k3s/etcd-snapshot-node1-{}.zip", t(3600)),
        &zip_of(&format!("etcd-snapshot-node1-{}", t(3600)), &snap),
    );
    w(
        &format!("k3s/.metadata/etcd-snapshot-node1-{}.zip", t(3600)),
        br#"{"cluster":"prod"}"#,
    );
    // gardener v2: a full snapshot, a good delta, a corrupt one, a chunk part.
    w(
        &format!("gardener/shoot-a/v2/Full-00000000-00000193-{}.gz", t(3600)),
        &gzip(&snap),
    );
    w(
        &format!("gardener/shoot-a/v2/Incr-00000194-00000196-{}.gz", t(1800)),
        &gzip(&delta(&[194, 195, 196])),
    );
    let mut bad = delta(&[197]);
    bad[10] ^= 1;
    w(
        &format!("gardener/shoot-a/v2/Incr-00000197-00000197-{}", t(600)),
        &bad,
    );
    w(
        &format!(
            "gardener/shoot-a/v2/Full-00000000-00000193-{}.gz/0000000001",
            t(60)
        ),
        b"part",
    );
    // gardener's zlib compression policy.
    w(
        &format!("gardener/shoot-c/v2/Full-00000000-00000057-{}.zlib", t(7200)),
        &zlib(&cluster),
    );
    // gardener v1, a stale cluster: its newest full snapshot is two days old.
    w(
        &format!(
            "gardener/shoot-b/v1/Backup-{0}/Full-00000000-00000057-{0}",
            t(200_000)
        ),
        &cluster,
    );
    let env = servers::s3_env(s3.port);
    let (r, j) = verify_url("s3://fleet", &env, &["--no-catalog", "--max-age", "1d"]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("s3://fleet/k3s/.metadata/etcd-snapshot-node1-")
            && r.err.contains("left out: k3s/rke2 snapshot metadata"),
        "{}",
        r.err
    );
    assert!(
        r.err
            .contains("/0000000001: left out: a chunk part of a gardener snapshot upload"),
        "{}",
        r.err
    );
    type Row = (String, String, String, Option<i64>, Option<i64>);
    let rows: Vec<Row> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let f = r["file"].as_str().unwrap();
            let short = f
                .split_once("fleet/")
                .unwrap()
                .1
                .split('-')
                .next()
                .unwrap()
                .to_string();
            (
                short,
                r["kind"].as_str().unwrap().into(),
                r["verdict"].as_str().unwrap().into(),
                r["revision"].as_i64(),
                r["taken"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "gardener/shoot".into(),
                "snapshot".into(),
                "ok".into(),
                Some(193),
                Some(t(3600))
            ),
            (
                "gardener/shoot".into(),
                "delta-snapshot".into(),
                "ok".into(),
                Some(196),
                Some(t(1800))
            ),
            (
                "gardener/shoot".into(),
                "delta-snapshot".into(),
                "damaged".into(),
                None,
                Some(t(600))
            ),
            (
                "gardener/shoot".into(),
                "snapshot".into(),
                "ok".into(),
                Some(57),
                Some(t(200_000))
            ),
            (
                "gardener/shoot".into(),
                "snapshot".into(),
                "ok".into(),
                Some(57),
                Some(t(7200))
            ),
            (
                "k3s/etcd".into(),
                "snapshot".into(),
                "ok".into(),
                Some(57),
                Some(t(7200))
            ),
            (
                "k3s/etcd".into(),
                "snapshot".into(),
                "ok".into(),
                Some(193),
                Some(t(3600))
            ),
        ],
        "{j:#}"
    );
    let series = strings(&j, "results", "series");
    assert_eq!(series[0], "s3://fleet/gardener/shoot-a/v2/Full-*");
    assert_eq!(series[1], "s3://fleet/gardener/shoot-a/v2/Incr-*");
    assert_eq!(series[3], "s3://fleet/gardener/shoot-b/v1/Full-*");
    assert_eq!(series[4], "s3://fleet/gardener/shoot-c/v2/Full-*");
    assert_eq!(j["results"][4]["container"], "zlib");
    assert_eq!(series[5], "s3://fleet/k3s/etcd-snapshot-node1-*");
    assert_eq!(series[6], series[5], "zipped or not, one series");
    // The document is what docs/schemas says verify prints.
    let schemas = common::schema::Schemas::load(&repo().join("docs/schemas"));
    let errors = schemas.validate("verify.schema.json", &j);
    assert!(
        errors.is_empty(),
        "{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // --max-age per cluster prefix: only the stale cluster fails it.
    let failures = strings(&j, "seriesFailures", "series");
    assert_eq!(failures, vec!["s3://fleet/gardener/shoot-b/v1/Full-*"], "{j:#}");
    // --expect-growth per series: k3s's revision moved 57 -> 193.
    let (r, j) = verify_url("s3://fleet/k3s/", &env, &["--no-catalog", "--expect-growth"]);
    assert_eq!(
        (r.code, j["seriesFailures"].as_array().unwrap().len()),
        (0, 0),
        "{j:#}"
    );
}

#[test]
fn dated_prefixes_are_one_series_per_cluster() {
    let Some(servers) = require(Need::Servers) else {
        return;
    };
    let fx = repo().join("testdata/fixtures");
    let snap = std::fs::read(fx.join("v3.5.1/single.snapshot.db")).unwrap();
    let cluster = std::fs::read(fx.join("v3.5.1/cluster.snapshot.db")).unwrap();
    let t = backups::ts;
    let s3 = servers::s3(&servers);
    let env = servers::s3_env(s3.port);
    // Dated prefixes (<cluster>/YYYY/MM/DD/...): one series per cluster,
    // taken at the date, held to --max-age and --expect-growth together.
    let day = |ago: i64| etcd_rescue::batch::series::rfc3339(t(ago))[..10].replace('-', "/");
    let dated = s3.dir.path().join("dated");
    for (cluster, ago, data) in [
        ("prod", 3 * 86_400, &cluster),
        ("prod", 0, &snap),
        ("stage", 3 * 86_400, &snap),
    ] {
        let p = dated.join(format!("{cluster}/{}/etcd-snapshot.db", day(ago)));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let (r, j) = verify_url(
        "s3://dated",
        &env,
        &["--no-catalog", "--max-age", "2d", "--expect-growth"],
    );
    assert_eq!(r.code, 1, "{}", r.err);
    let series = strings(&j, "results", "series");
    assert_eq!(
        series,
        [
            "s3://dated/prod/*/*/*/etcd-snapshot.db",
            "s3://dated/prod/*/*/*/etcd-snapshot.db",
            "s3://dated/stage/*/*/*/etcd-snapshot.db"
        ]
    );
    let failures = strings(&j, "seriesFailures", "series");
    assert_eq!(failures, ["s3://dated/stage/*/*/*/etcd-snapshot.db"], "{j:#}");
}

#[test]
fn alert_rules_and_deploy_manifests_are_valid() {
    let Some(promtool) = require(Need::Promtool) else {
        return;
    };
    let rules = repo().join("deploy/prometheus/etcd-rescue-rules.yaml");
    for args in [vec!["check", "rules"], vec!["test", "rules"]] {
        let target = if args[0] == "test" {
            repo().join("deploy/prometheus/etcd-rescue-rules.test.yaml")
        } else {
            rules.clone()
        };
        let o = std::process::Command::new(&promtool)
            .args(&args)
            .arg(&target)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The CronJob renders with kustomize (kubectl's, offline).
    let Some(kubectl) = require(Need::Kubectl) else {
        return;
    };
    let o = std::process::Command::new(kubectl)
        .args(["kustomize"])
        .arg(repo().join("deploy/kubernetes"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kustomize: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("kind: CronJob") && text.contains("etcd-rescue") && text.contains("--metrics-file"),
        "{text}"
    );
}
