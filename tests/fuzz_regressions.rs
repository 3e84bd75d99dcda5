//! The fuzz targets' bodies (`fuzz/bodies/`, the very code `cargo fuzz`
//! runs) over every committed fuzz input, on the stable toolchain:
//!
//! - `fuzz/seeds/<target>/*`: small inputs derived from the real-etcd
//!   fixtures (some are links to them), so every body runs here;
//! - `fuzz/regressions/<target>/*`: inputs that once made a target crash,
//!   hang or blow up, named after what was wrong (see `docs/fuzzing.md`).
//!
//! Each body must return without panicking.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/bodies/mod.rs"]
mod bodies;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// `(target, file)` for every file under `fuzz/<kind>/<target>/`.
fn inputs(kind: &str) -> Vec<(String, PathBuf)> {
    let root = fuzz_dir().join(kind);
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for d in dirs {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue;
        }
        let target = d.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            // Links to fixtures are followed.
            if f.is_file() {
                out.push((target.clone(), f));
            }
        }
    }
    out.sort();
    out
}

/// Runs each input through its target's body; lists every input that
/// panics or names no target.
fn run_all(kind: &str) -> usize {
    let mut failed = Vec::new();
    let all = inputs(kind);
    for (target, file) in &all {
        let Some((_, body)) = bodies::TARGETS.iter().find(|(n, _)| n == target) else {
            failed.push(format!("{}: no fuzz target {target}", file.display()));
            continue;
        };
        let data = std::fs::read(file).unwrap();
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(format!("{}: {target} panicked", file.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    all.len()
}

#[test]
fn regressions_run_clean() {
    run_all("regressions");
}

#[test]
fn seeds_run_clean() {
    let n = run_all("seeds");
    let seeded: BTreeSet<String> = inputs("seeds").into_iter().map(|(t, _)| t).collect();
    for (name, _) in bodies::TARGETS {
        assert!(seeded.contains(*name), "fuzz/seeds/{name}/ has no input");
    }
    assert!(n >= bodies::TARGETS.len());
}

/// Every `[[bin]]` of `fuzz/Cargo.toml` has a body here, and the other way
/// round, so a new target cannot miss the regression test.
#[test]
fn every_fuzz_target_has_a_body() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins: BTreeSet<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| {
            let line = b.lines().find(|l| l.trim_start().starts_with("name"))?;
            line.split('"').nth(1)
        })
        .collect();
    let names: BTreeSet<&str> = bodies::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(bins, names);
    for n in &names {
        let src = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{n}.rs"))).unwrap();
        assert!(
            src.contains(&format!("bodies::{n}::run(data)")),
            "fuzz_targets/{n}.rs does not run bodies::{n}"
        );
    }
}
