//! The machinery of the corruption catalogue, shared by its files, one per
//! layer: `catalogue_bolt.rs` (bbolt pages and metas), `catalogue_mvcc.rs`
//! (etcd's buckets and revisions in the db, and the snapshot's sha256
//! trailer), `catalogue_wal.rs` (WAL segments and records) and
//! `catalogue_datadir.rs` (`.snap` files and the member dir's db).
//!
//! Each file lists its cases (real fixture files, copies never the
//! originals, damaged in documented ways, each with the exact finding
//! codes, the place they are reported at and the exit code) and runs them
//! with [`run_catalogue`] on both fixture versions (v3.4.23 and v3.5.1).
//! The expected page/offset of a finding is computed from the fixture's real
//! layout by the damage function, which returns it together with the
//! damage. The tool must not touch its input: the damaged copy's bytes
//! (sha256) and mtime are compared before and after the run. For db damage
//! that leaves every leaf intact, `salvage --out` must rebuild a db that
//! passes `check` and holds every revision of the original.
//! `docs/corruption.md` lists the same cases; [`docs_match`] keeps the two
//! in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::walwrite::{RecordAt, record_map};
use super::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::bucket::BucketRoot;
use etcd_rescue::bolt::meta::fnv1a64;
use etcd_rescue::mvcc::trailer;
use etcd_rescue::wal::RecordType;
use serde_json::Value;

/// What a case damages a copy of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Src {
    /// `single.snapshot.db` (an `etcdctl snapshot save` file, with trailer).
    Snapshot,
    /// A member data dir from a tarball: (scenario, member dir name).
    Dir(&'static str, &'static str),
}

/// The command run on the damaged copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmd {
    /// `check -o json PATH` (a db file or a data dir).
    Check,
    /// `status -o json FILE`: only its exit code is matched (it has no codes);
    /// the codes come from `check`, which is run too.
    StatusAndCheck,
    /// `wal --salvage -o json DIR`.
    WalSalvage,
    /// `inspect -o json DIR`.
    Inspect,
}

impl Cmd {
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Check => "check",
            Cmd::StatusAndCheck => "status+check",
            Cmd::WalSalvage => "wal --salvage",
            Cmd::Inspect => "inspect",
        }
    }
}

/// Where a finding must be reported (fields that are `None` are not matched).
#[derive(Clone, Debug, Default)]
pub struct Loc {
    pub code: &'static str,
    /// Matched as a suffix of the finding's `file`.
    pub file: Option<String>,
    pub page: Option<u64>,
    pub offset: Option<u64>,
    /// A part of the message.
    pub msg: Option<String>,
}

pub fn at(code: &'static str) -> Loc {
    Loc {
        code,
        ..Loc::default()
    }
}

impl Loc {
    pub fn page(mut self, p: u64) -> Loc {
        self.page = Some(p);
        self
    }
    pub fn offset(mut self, o: u64) -> Loc {
        self.offset = Some(o);
        self
    }
    pub fn file(mut self, f: impl Into<String>) -> Loc {
        self.file = Some(f.into());
        self
    }
    pub fn msg(mut self, m: impl Into<String>) -> Loc {
        self.msg = Some(m.into());
        self
    }
}

pub struct Case {
    pub id: &'static str,
    pub what: &'static str,
    pub src: Src,
    pub cmd: Cmd,
    /// Damages the copy (the db file, or the data dir) and returns where the
    /// findings must be reported.
    pub damage: fn(&Path) -> Vec<Loc>,
    /// Exactly the distinct finding codes reported (sorted), apart from
    /// codes the undamaged fixture already gets from the same command.
    pub codes: &'static [&'static str],
    pub exit: i32,
    /// `salvage --out` recovers every revision (db cases only).
    pub salvage: bool,
}

// ---------------------------------------------------------------------------
// db layout helpers

pub const META_CHECKSUM_AT: usize = 16 + 56;

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn edit(p: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = read(p);
    f(&mut b);
    std::fs::write(p, b).unwrap();
}

pub fn page_size(bytes: &[u8]) -> usize {
    Db::open(trailer::image(bytes)).unwrap().0.page_size()
}

/// The `key` bucket's root branch page and its leaf children.
pub fn key_pages(bytes: &[u8]) -> (u64, Vec<u64>) {
    let (db, _) = Db::open(trailer::image(bytes)).unwrap();
    let b = db.bucket(b"key").unwrap().unwrap();
    let BucketRoot::Page(root) = b.root() else {
        panic!("inline key bucket")
    };
    let node = db.node(root).unwrap();
    assert!(node.is_branch(), "the fixture's key bucket has a branch root");
    let leaves = (0..node.count())
        .map(|i| node.branch(i).unwrap().child.0)
        .collect();
    (root.0, leaves)
}

/// File offset of a slice of `bytes`.
pub fn off_in(bytes: &[u8], s: &[u8]) -> usize {
    s.as_ptr() as usize - bytes.as_ptr() as usize
}

/// Rewrites meta page `m` with `f` and fixes its checksum, so the meta stays
/// valid and only the changed field is wrong.
pub fn rewrite_meta(b: &mut [u8], ps: usize, m: usize, f: impl FnOnce(&mut [u8])) {
    let base = m * ps;
    f(&mut b[base..base + ps]);
    let sum = fnv1a64(&b[base + 16..base + META_CHECKSUM_AT]);
    b[base + META_CHECKSUM_AT..base + META_CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
}

pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn high_water(bytes: &[u8]) -> u64 {
    Db::open(trailer::image(bytes)).unwrap().0.high_water()
}

/// Root leaf element of a top-level bucket: (page, element index, element file offset).
pub fn root_elem(bytes: &[u8], name: &[u8]) -> (u64, usize, usize) {
    let (db, _) = Db::open(trailer::image(bytes)).unwrap();
    let root = db.meta().root;
    let node = db.node(root).unwrap();
    assert!(!node.is_branch());
    let i = (0..node.count())
        .find(|&i| node.leaf(i).unwrap().key == name)
        .unwrap();
    (root.0, i, node.elem_file_offset(i) as usize)
}

// ---------------------------------------------------------------------------
// WAL layout helpers

pub type At = RecordAt;

pub fn records(dir: &Path) -> Vec<At> {
    record_map(&dir.join("member/wal"))
}

pub fn entry(dir: &Path, index: u64) -> At {
    records(dir).into_iter().find(|r| r.index == Some(index)).unwrap()
}

pub fn segs(dir: &Path) -> Vec<PathBuf> {
    wal_segments(&dir.join("member"))
}

/// Byte offset, in its frame, of the record's `type` varint (the frame is
/// the 8-byte length word, then `walpb.Record`: field 1 type, field 2 crc, field 3 data).
pub const TYPE_AT: usize = 8 + 1;

/// The last entry record of a member dir's WAL, and where its records end.
pub fn last_entry(d: &Path) -> (At, usize) {
    let recs = records(d);
    let last = recs
        .iter()
        .rfind(|r| r.kind == RecordType::Entry)
        .unwrap()
        .clone();
    let end = recs.last().map(|r| r.offset + r.frame_len).unwrap();
    (last, end)
}

/// What survives a crash just before the torn write: the WAL ends where
/// the torn record would have started (the reference real etcd's answer on
/// the torn copy is compared with).
pub fn wal_torn_tail_reference(d: &Path) {
    let (last, end) = last_entry(d);
    edit(&last.file, |b| b[last.offset..end].fill(0));
}

/// For a case whose damage etcd repairs by dropping a write that never
/// completed, the state etcd must serve is not the undamaged original's but
/// the one before that write: this builds it from a copy of the original.
pub fn reference_of(id: &str) -> Option<fn(&Path)> {
    match id {
        "wal-torn-tail" => Some(wal_torn_tail_reference),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// the catalogue

/// History findings that follow from a lost key leaf, when that leaf held a
/// key's earlier revisions: which keys it held depends on the layout of the
/// fixture, so a case may report them and never requires them.
pub const FOLLOW_ON: &[&str] = &["orphan-tombstone", "history-gap", "version-discontinuity"];

pub const SNAP: Src = Src::Snapshot;
pub const SINGLE: Src = Src::Dir("single", "single");
pub const KILLED: Src = Src::Dir("killed", "killed");
pub const SNAPCOUNT: Src = Src::Dir("snapcount", "snapcount");

/// One catalogue case: `case!(id, what, src, cmd, damage, [codes], exit,
/// salvage)`.
#[allow(unused_macros)]
macro_rules! case {
    ($id:literal, $what:literal, $src:expr, $cmd:expr, $damage:expr, [$($code:literal),*], $exit:literal, $salvage:literal) => {
        $crate::common::catalogue::Case { id: $id, what: $what, src: $src, cmd: $cmd, damage: $damage, codes: &[$($code),*], exit: $exit, salvage: $salvage }
    };
}
#[allow(unused_imports)]
pub(crate) use case;

// ---------------------------------------------------------------------------
// running a case

/// The findings of a command's JSON output, as a list of finding objects.
fn findings(cmd: Cmd, r: &Run) -> Vec<Value> {
    match cmd {
        Cmd::Check | Cmd::StatusAndCheck => r.json()["files"][0]["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Cmd::Inspect => r.json()["members"][0]["findings"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Cmd::WalSalvage => r
            .out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|l| l["record"] == "finding")
            .collect(),
    }
}

fn matches(f: &Value, l: &Loc) -> bool {
    f["code"] == l.code
        && l.page.is_none_or(|p| f["page"].as_u64() == Some(p))
        && l.offset.is_none_or(|o| f["offset"].as_u64() == Some(o))
        && l.file
            .as_ref()
            .is_none_or(|s| f["file"].as_str().is_some_and(|x| x.ends_with(s.as_str())))
        && l.msg
            .as_ref()
            .is_none_or(|m| f["message"].as_str().is_some_and(|x| x.contains(m.as_str())))
}

fn get_all(p: &Path) -> Value {
    let r = run(&["get", "-o", "json", p.to_str().unwrap(), "", "--prefix"]);
    assert_eq!(r.code, 0, "get {}: {}", p.display(), r.err);
    r.json()["kvs"].clone()
}

/// Runs one case on one version; returns a description of what is wrong.
fn run_case(c: &Case, vdir: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, target) = match c.src {
        Src::Snapshot => {
            let orig = vdir.join("single.snapshot.db");
            let t = tmp.path().join("single.snapshot.db");
            std::fs::copy(&orig, &t).unwrap();
            (orig, t)
        }
        Src::Dir(scenario, name) => {
            let orig = extracted_dir(vdir, scenario).join(name);
            let t = tmp.path().join(name);
            copy_tree(&orig, &t);
            (orig, t)
        }
    };
    // What the undamaged fixture itself reports with the same command (the
    // 3.4.23 snapcount db is one entry behind its WAL, for instance).
    let baseline: BTreeSet<String> = {
        let p = orig.to_str().unwrap();
        let r = match c.cmd {
            Cmd::Check | Cmd::StatusAndCheck => run(&["check", "-o", "json", p]),
            Cmd::Inspect => run(&["inspect", "-o", "json", p]),
            Cmd::WalSalvage => run(&["wal", "--salvage", "-o", "json", p]),
        };
        findings(c.cmd, &r)
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    let mut locs = (c.damage)(&target);
    // The trailer finding names where the trailer starts.
    if matches!(c.src, Src::Snapshot) && c.codes.contains(&"sha256-mismatch") {
        let len = std::fs::metadata(&target).unwrap().len();
        locs.push(at("sha256-mismatch").offset(len - 32));
    }
    let before = digests(&target);
    assert_ne!(before, digests(&orig), "{}: the damage changed nothing", c.id);
    let path = target.to_str().unwrap();
    let r = unchanged(&[&target], || match c.cmd {
        Cmd::Check | Cmd::StatusAndCheck => run(&["check", "-o", "json", path]),
        Cmd::Inspect => run(&["inspect", "-o", "json", path]),
        Cmd::WalSalvage => run(&["wal", "--salvage", "-o", "json", path]),
    });
    let mut problems = Vec::new();
    if r.code != c.exit {
        problems.push(format!(
            "{} exit {} (want {}): {}",
            c.cmd.name(),
            r.code,
            c.exit,
            r.err
        ));
    }
    let fs = findings(c.cmd, &r);
    let got: BTreeSet<&str> = fs.iter().map(|f| f["code"].as_str().unwrap()).collect();
    // The case's codes, and those the damage function found in the
    // fixture's layout.
    let want: BTreeSet<&str> = c
        .codes
        .iter()
        .copied()
        .chain(locs.iter().map(|l| l.code))
        .collect();
    // Exactly the case's codes, plus possibly some the undamaged fixture
    // already reports, and the history findings that follow from a lost
    // key leaf: whether a lost leaf held a key's earlier revisions (so that
    // a later delete has nothing before it) depends on how etcd laid out
    // the fixture, so they are allowed, never required.
    let follow_on = |g: &str| FOLLOW_ON.contains(&g) && c.id.starts_with("db-");
    if !want.is_subset(&got)
        || got
            .iter()
            .any(|g| !want.contains(g) && !baseline.contains(*g) && !follow_on(g))
    {
        problems.push(format!("codes {got:?}, want {want:?} (baseline {baseline:?})"));
    }
    for l in &locs {
        if !fs.iter().any(|f| matches(f, l)) {
            let same: Vec<&Value> = fs.iter().filter(|f| f["code"] == l.code).collect();
            problems.push(format!("no finding at {l:?}; {} ones: {same:?}", l.code));
        }
    }
    // Every command gives the same verdict; for a member dir, it is what
    // real etcd does on a copy of the damage.
    match super::agree::agree(&target) {
        Err(e) => problems.push(format!("agreement: {e}")),
        Ok(a) => {
            if let Src::Dir(_, name) = c.src
                && let Some(bin) = require(Need::EtcdFor(vdir))
            {
                let reference = match reference_of(c.id) {
                    Some(f) => {
                        let r = tmp.path().join("reference").join(name);
                        copy_tree(&orig, &r);
                        f(&r);
                        r
                    }
                    None => orig.clone(),
                };
                if let Err(e) = super::agree::agrees_with_etcd(&bin, &target, &reference, &a) {
                    problems.push(format!("real etcd: {e}"));
                }
            }
        }
    }
    if c.cmd == Cmd::StatusAndCheck {
        let s = unchanged(&[&target], || run(&["status", "-o", "json", path]));
        if s.code != c.exit {
            problems.push(format!("status exit {} (want {}): {}", s.code, c.exit, s.err));
        }
    }
    assert_eq!(before, digests(&target), "{}: the input was modified", c.id);
    if std::env::var_os("CATALOGUE_DUMP").is_some() {
        eprintln!(
            "DUMP {} {} {}",
            c.id,
            vdir.display(),
            serde_json::to_string(&fs).unwrap()
        );
    }
    if c.src == Src::Snapshot
        && let Err(e) = check_salvage(&orig, &target, tmp.path(), c.salvage)
    {
        problems.push(e);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}) on {}:\n  {}\n  (findings: {})",
            c.id,
            c.what,
            vdir.display(),
            problems.join("\n  "),
            serde_json::to_string(&fs).unwrap()
        ))
    }
}

fn digests(p: &Path) -> Vec<(PathBuf, [u8; 32])> {
    walk_files(p)
        .into_iter()
        .map(|f| {
            let d = digest(&f);
            (f.strip_prefix(p).map(Path::to_path_buf).unwrap_or(f), d)
        })
        .collect()
}

/// `salvage --out` of every damaged snapshot gives a db in which `check`
/// finds no error, and claims nothing is lost only when nothing is; when
/// `exact` (every leaf intact), it holds every revision and every key of the
/// undamaged original.
fn check_salvage(orig: &Path, damaged: &Path, tmp: &Path, exact: bool) -> Result<(), String> {
    let out = tmp.join("salvaged.db");
    let r = unchanged(&[damaged], || {
        run(&[
            "salvage",
            "-o",
            "json",
            damaged.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--force",
        ])
    });
    if !out.is_file() {
        return Err(format!("salvage wrote nothing (exit {}): {}", r.code, r.err));
    }
    let c = run(&["check", "-o", "json", out.to_str().unwrap()]);
    let cj = c.json();
    let errors: Vec<&Value> = cj["files"][0]["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["severity"] == "error").collect())
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(format!("check finds errors in the salvaged db: {errors:?}"));
    }
    let complete = r.json()["report"]["complete"] == true;
    let missing = revision_keys(&read(orig))
        .difference(&revision_keys(&read(&out)))
        .count();
    if complete && (r.code != 0 || missing > 0) {
        return Err(format!(
            "salvage says nothing is lost (exit {}) but {missing} revisions are missing",
            r.code
        ));
    }
    if !exact {
        return Ok(());
    }
    if c.code != 0 {
        return Err(format!("the salvaged db fails check: {}", c.out));
    }
    if revision_keys(&read(&out)) != revision_keys(&read(orig)) {
        return Err("the salvaged db lost revisions".into());
    }
    if get_all(&out) != get_all(orig) {
        return Err("the salvaged db's keys differ from the original's".into());
    }
    Ok(())
}

/// Runs every case of `cases` on every fixture version, a few at a time
/// (`CATALOGUE_ONLY=<part of an id>` runs only the matching ones).
pub fn run_catalogue(cases: &[Case]) {
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), cases.len(), "case ids are unique");
    let vdirs = version_dirs();
    // Extract each scenario a case uses once, before the threads share it.
    for v in &vdirs {
        for c in cases {
            if let Src::Dir(s, _) = c.src {
                extracted_dir(v, s);
            }
        }
    }
    let only = std::env::var("CATALOGUE_ONLY").ok();
    let jobs: Vec<(&Case, &PathBuf)> = cases
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.id.contains(o)))
        .flat_map(|c| vdirs.iter().map(move |v| (c, v)))
        .collect();
    // A few cases at a time: each holds a copy of a data dir (64-128 MB of
    // WAL) while it runs.
    let width = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    let mut errors: Vec<String> = Vec::new();
    for chunk in jobs.chunks(width) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(c, v)| (c.id, s.spawn(move || run_case(c, v))))
                .collect();
            for (id, h) in handles {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(e),
                    Err(e) => errors.push(format!(
                        "{id}: panic: {}",
                        e.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                }
            }
        });
    }
    assert!(
        errors.is_empty(),
        "{} failure(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// The ids of the cases of every `tests/catalogue_*.rs` file, read from
/// their sources (the first string of each `case!(`), file by file in name
/// order.
fn case_ids_in_sources() -> Vec<(String, Vec<String>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("catalogue_") && n.ends_with(".rs")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let ids = text
                .split("case!(")
                .skip(1)
                .filter_map(|rest| rest.split('"').nth(1).map(str::to_string))
                .collect();
            (f.file_name().unwrap().to_string_lossy().into_owned(), ids)
        })
        .collect()
}

/// docs/corruption.md has one table row per case, with the same codes,
/// exit code and salvage claim, `cases`' rows in `cases`' order; and every
/// row of the table is a case of one of the catalogue files (none lost in
/// the split by layer, none documented and gone).
pub fn docs_match(cases: &[Case]) {
    let text = std::fs::read_to_string(repo().join("docs/corruption.md")).unwrap();
    let ticked = |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    type Row = (String, BTreeSet<String>, String, bool);
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            // | id | what | codes | where | exit | salvage |
            assert!(cols.len() >= 7, "row with too few columns: {l}");
            let id = ticked(cols[1]).first().cloned().unwrap_or_default();
            (
                id,
                ticked(cols[3]).into_iter().collect(),
                cols[5].to_string(),
                cols[6].starts_with("yes"),
            )
        })
        .collect();
    let mine: BTreeSet<&str> = cases.iter().map(|c| c.id).collect();
    let got: Vec<&Row> = rows.iter().filter(|r| mine.contains(r.0.as_str())).collect();
    let want: Vec<Row> = cases
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                c.codes.iter().map(|s| s.to_string()).collect(),
                c.exit.to_string(),
                c.salvage,
            )
        })
        .collect();
    assert_eq!(
        got,
        want.iter().collect::<Vec<_>>(),
        "docs/corruption.md is out of step with the catalogue"
    );
    // Every documented case is in exactly one catalogue file, and every case
    // of every file is documented.
    let files = case_ids_in_sources();
    let mut all: Vec<String> = files.iter().flat_map(|(_, ids)| ids.clone()).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a case id is in two catalogue files: {files:?}");
    let mut documented: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    documented.sort();
    assert_eq!(
        documented, all,
        "docs/corruption.md rows vs the cases of {files:?}"
    );
    assert!(all.len() >= 50, "the catalogue shrank to {} cases", all.len());
}
