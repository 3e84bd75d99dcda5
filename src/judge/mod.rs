//! The one judgment: what a path is, what is wrong with it, and what etcd
//! will do with it. Every command that gives a verdict (`check`, `verify`,
//! `inspect`, `restore`) and every command that reads (`status`, `get`,
//! `history`, `hashkv`, `stats`, `diff`, `k8s`) asks [`judge`]; none of
//! them decides on its own.
//!
//! ```text
//! kind.rs     what a path is: file kinds by their bytes (then their name), dir layouts
//! unpack.rs   gzip, zstd, xz, bzip2, zip, tar: unpacked into a scratch dir, then judged as files
//! file.rs     db, snapshot, .snap.db, raft .snap, WAL segment, WAL dir
//! mod.rs      dispatch, data dirs (datadir::inspect), live dirs, the verdict classes
//! source.rs   the keyspace a read command answers from (db, or db + WAL replay)
//! ```
//!
//! A path gives one [`Judgment`], or one per unit found inside an archive.
//! The verdict class says what etcd does: `ok` and `warnings` pass (etcd
//! starts on it, or restores it, and serves all of it); `damaged` means
//! etcd refuses it, or would serve lost or wrong data; `unreadable` means it
//! could not be read at all; `skipped` is not etcd data.

mod file;
pub mod kind;
pub mod source;
pub mod unpack;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::datadir::{self, EtcdOutcome, MemberReport};
use crate::mvcc::{DbReport, Trailer};
use crate::report::{Finding, Findings, Severity, Verdict};
use crate::snap::dir::SnapFile;
use crate::wal::WalReport;

pub use kind::{Container, Kind};

/// How much to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Depth {
    /// What `status` reads: the structure of every page, the meta pages, the
    /// small buckets, the WAL's records; no KeyValue decoding, no sha256.
    #[default]
    Quick,
    /// Everything (`check`): every KeyValue and key history, the sha256
    /// trailer, every WAL payload.
    Full,
}

/// Options of a judgment.
#[derive(Clone, Debug)]
pub struct JudgeOptions {
    /// How much to read.
    pub depth: Depth,
    /// Check on one thread (the caller runs several judgments at once).
    pub single_thread: bool,
    /// A WAL dir kept apart from the data dir (etcd's `--wal-dir`).
    pub wal_dir: Option<PathBuf>,
    /// Also compute the SHA-256 of a plain file (a fingerprint for catalogs).
    pub fingerprint: bool,
    /// What one container may unpack to, in bytes.
    pub max_unpacked: u64,
    /// Verify a snapshot's sha256 trailer even in a quick judgment.
    pub trailer: bool,
    /// Leave out etcdutl's snapshot hash (a fact, not part of the verdict):
    /// for callers that only need the verdict, such as `restore`.
    pub skip_hash: bool,
}

impl Default for JudgeOptions {
    fn default() -> JudgeOptions {
        JudgeOptions {
            depth: Depth::Quick,
            single_thread: false,
            wal_dir: None,
            fingerprint: false,
            max_unpacked: 16 << 30,
            trailer: false,
            skip_hash: false,
        }
    }
}

impl JudgeOptions {
    /// A full judgment (`check`, `verify`, `restore`).
    pub fn full() -> JudgeOptions {
        JudgeOptions {
            depth: Depth::Full,
            ..JudgeOptions::default()
        }
    }
}

/// Facts a verdict is shown with (whatever could be read).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Bytes (of the file as judged: decompressed; for a dir, its db).
    pub size: u64,
    /// Head revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// etcdutl's snapshot hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<u32>,
    /// Stored key revisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_revisions: Option<u64>,
    /// Live keys at the head (full judgments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_keys: Option<u64>,
    /// The sha256 trailer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailer: Option<Trailer>,
    /// The db's consistent index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_index: Option<u64>,
    /// The last index of the WAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_last_index: Option<u64>,
    /// A raft snapshot's index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_index: Option<u64>,
    /// A raft snapshot's term.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_term: Option<u64>,
    /// SHA-256 of the file as stored, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The full reading behind a judgment, for views that show more.
#[derive(Clone, Debug, Default)]
pub enum Detail {
    /// Nothing more.
    #[default]
    None,
    /// A bbolt file.
    Db(Box<DbReport>),
    /// A member dir.
    Member(Box<MemberReport>),
    /// A raft `.snap` file.
    Snap(Box<SnapFile>),
    /// A WAL (segment or dir).
    Wal(Box<WalReport>),
}

/// The judgment on one file, dir or archive member.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgment {
    /// The path as given (`archive!member` inside an archive).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// How it is stored, outside in (`gzip`, `tar`...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<&'static str>,
    /// The verdict class.
    pub verdict: Verdict,
    /// For a member dir: what etcd does when started on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdOutcome>,
    /// One sentence.
    pub headline: String,
    /// What etcd does on the way, and what is lost (member dirs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
    /// What to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// etcd is running on it now (it holds the db's lock).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// Errors found.
    pub errors: usize,
    /// Warnings found.
    pub warnings: usize,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
    /// Findings not listed because of the cap.
    pub suppressed_findings: u64,
    /// What could be read.
    pub facts: Facts,
    /// Why it could not be read (unreadable, skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reading behind it.
    #[serde(skip)]
    pub detail: Detail,
}

impl Judgment {
    /// A judgment with nothing read yet.
    fn new(path: String, kind: Kind) -> Judgment {
        Judgment {
            path,
            kind,
            containers: Vec::new(),
            verdict: Verdict::Ok,
            etcd: None,
            headline: String::new(),
            statements: Vec::new(),
            advice: None,
            live: false,
            errors: 0,
            warnings: 0,
            findings: Vec::new(),
            suppressed_findings: 0,
            facts: Facts::default(),
            error: None,
            detail: Detail::None,
        }
    }

    /// Could not be read at all.
    pub fn unreadable(path: String, kind: Kind, why: String) -> Judgment {
        let mut j = Judgment::new(path, kind);
        j.verdict = Verdict::Unreadable;
        j.headline = format!("cannot be read: {why}");
        j.error = Some(why);
        j
    }

    /// Not etcd data.
    fn skipped(path: String, why: String) -> Judgment {
        let mut j = Judgment::new(path, Kind::Other);
        j.verdict = Verdict::Skipped;
        j.headline = format!("not etcd data: {why}");
        j.error = Some(why);
        j
    }

    /// Sets the findings and counts, and the verdict class they earn (for
    /// judgments without an etcd outcome).
    fn set_findings(&mut self, f: &Findings) {
        self.errors = f.count(Severity::Error);
        self.warnings = f.count(Severity::Warning);
        self.findings = f.items().to_vec();
        self.suppressed_findings = f.suppressed;
    }

    /// The first problem, in one line (for tables).
    pub fn first_problem(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(if self.verdict == Verdict::Skipped {
                format!("not etcd data ({e})")
            } else {
                e.clone()
            });
        }
        if self.etcd.is_some_and(|o| o != EtcdOutcome::Starts) {
            return Some(self.headline.clone());
        }
        self.findings
            .iter()
            .find(|f| f.counts())
            .map(|f| format!("{}: {}", f.code, f.message))
    }

    /// Whether it passes: etcd can use it as it is (ok or warnings).
    pub fn passes(&self) -> bool {
        self.verdict.passes()
    }
}

/// Judges the thing at `path`: one judgment, or one per unit inside an
/// archive.
pub fn judge(path: &Path, opts: &JudgeOptions) -> Vec<Judgment> {
    judge_as(path, &path.display().to_string(), opts)
}

/// [`judge`] of `path` under another name (the archive a scratch copy was
/// unpacked from, see [`source::Unwrapped`]).
pub fn judge_as(path: &Path, name: &str, opts: &JudgeOptions) -> Vec<Judgment> {
    let judged = judge_named(path, name, opts, 0);
    let cuts = crate::source::take_cuts(Some(path));
    if cuts.is_empty() {
        return judged;
    }
    // A file under the path was cut short while it was read: whatever the
    // reading found is not a reading of any state of the file.
    let why = cuts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    judged
        .into_iter()
        .map(|j| Judgment::unreadable(j.path, j.kind, why.clone()))
        .collect()
}

/// How deep containers may nest (a tar in a gzip in a zip...).
pub const MAX_CONTAINER_DEPTH: usize = 3;

fn judge_named(path: &Path, name: &str, opts: &JudgeOptions, depth: usize) -> Vec<Judgment> {
    let md = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let kind = kind::name_hint(name).unwrap_or(Kind::Other);
            return vec![Judgment::unreadable(name.to_string(), kind, e.to_string())];
        }
    };
    if md.is_dir() {
        return vec![judge_dir(path, name, opts)];
    }
    if !md.is_file() {
        let kind = kind::name_hint(name).unwrap_or(Kind::Other);
        return vec![Judgment::unreadable(
            name.to_string(),
            kind,
            format!("not a regular file ({})", crate::source::file_type_word(&md)),
        )];
    }
    let f = match crate::source::MappedFile::open(path) {
        Ok(f) => f,
        Err(e) => {
            let kind = kind::name_hint(name).unwrap_or(Kind::Other);
            return vec![Judgment::unreadable(name.to_string(), kind, e.to_string())];
        }
    };
    match kind::sniff(f.bytes()) {
        kind::Sniff::Container(c) => judge_container(c, f.bytes(), name, opts, depth),
        _ => vec![file::judge_bytes(name, f.bytes(), Some(path), opts)],
    }
}

/// A directory: a member dir, a WAL dir, or a snap dir.
fn judge_dir(path: &Path, name: &str, opts: &JudgeOptions) -> Judgment {
    match kind::dir_kind(path) {
        kind::DirKind::Member => judge_member(path, name, opts),
        kind::DirKind::Wal => file::judge_wal_dir(path, name, opts),
        kind::DirKind::SnapDir(db) => {
            // `member/snap` of a member dir: the member dir is what etcd uses.
            match path
                .parent()
                .filter(|p| kind::dir_kind(p) == kind::DirKind::Member)
            {
                Some(member) => judge_member(member, name, opts),
                None => judge_named(&db, &format!("{name}/db"), opts, 0)
                    .into_iter()
                    .next()
                    .expect("one judgment for a plain file"),
            }
        }
        kind::DirKind::Other => Judgment::skipped(
            name.to_string(),
            "a directory that is not an etcd data dir (no member/, wal/ or snap/ inside)".into(),
        ),
    }
}

/// A member's data dir, judged as etcd starts on it. A dir etcd is running
/// on changes while it is read: a problem is only called damage when a
/// second reading finds it too.
fn judge_member(path: &Path, name: &str, opts: &JudgeOptions) -> Judgment {
    let dopts = datadir::InspectOptions {
        deep: opts.depth == Depth::Full,
        single_thread: opts.single_thread,
    };
    let read = || datadir::inspect_as(path, name, opts.wal_dir.as_deref(), dopts);
    let mut report = match read() {
        Ok(r) => r,
        Err(e) => return Judgment::unreadable(name.to_string(), Kind::DataDir, e.to_string()),
    };
    // A live dir is read again while its readings disagree, three times at
    // most: a problem is damage only when two readings in a row find it.
    let mut readings = 1;
    let mut agreed = !(report.live && report.has_problems());
    while !agreed && readings < 3 {
        let Ok(again) = read() else { break };
        readings += 1;
        agreed = problems(&again) == problems(&report);
        report = again;
    }
    if !agreed {
        label_transient(&mut report);
    }
    from_member(name, report)
}

/// The warnings and errors of a reading, by code and file.
fn problems(r: &MemberReport) -> Vec<(&'static str, Option<String>)> {
    let mut v: Vec<_> = r
        .findings
        .items()
        .iter()
        .filter(|f| f.counts())
        .map(|f| (f.code, f.file.clone()))
        .collect();
    v.sort();
    v
}

/// Readings of a live dir that never agreed: what they found may be etcd's
/// writes in progress, so it is reported as such, not as damage.
fn label_transient(r: &mut MemberReport) {
    let mut f = Findings::default();
    for mut x in r.findings.items().iter().cloned() {
        if x.severity == Severity::Error {
            x.severity = Severity::Warning;
            x.message = format!(
                "{} (seen while etcd was writing, and not the same in a second reading: may be transient)",
                x.message
            );
        }
        f.push(x);
    }
    r.findings = f;
    if r.verdict.outcome != EtcdOutcome::Starts {
        r.verdict.statements.insert(0, r.verdict.headline.clone());
        r.verdict.outcome = EtcdOutcome::Starts;
        r.verdict.headline =
            "etcd is running on this dir; readings taken while it wrote did not agree, so nothing here is called damage".into();
    }
}

/// The judgment of a member dir.
fn from_member(name: &str, r: MemberReport) -> Judgment {
    let kind = if r.v2.is_some() {
        Kind::V2DataDir
    } else {
        Kind::DataDir
    };
    let mut j = Judgment::new(name.to_string(), kind);
    j.set_findings(&r.findings);
    // etcd's outcome is the class: a member etcd starts on has no error
    // (datadir::inspect makes sure of it).
    j.verdict = match r.verdict.outcome {
        EtcdOutcome::Starts if r.findings.has_problems() => Verdict::Warnings,
        EtcdOutcome::Starts => Verdict::Ok,
        EtcdOutcome::Unsafe | EtcdOutcome::WontStart => Verdict::Damaged,
    };
    j.etcd = Some(r.verdict.outcome);
    j.live = r.live;
    j.headline = if r.live {
        format!(
            "etcd is running on this dir; if it stopped now: {}",
            r.verdict.headline
        )
    } else {
        r.verdict.headline.clone()
    };
    j.statements = r.verdict.statements.clone();
    j.advice = r.verdict.advice.clone();
    j.facts = Facts {
        size: r.db.size,
        revision: r.served.map(|s| s.revision).or(r.db.revision),
        hash: r.db.hash,
        consistent_index: r.db.consistent_index,
        wal_last_index: r.wal.as_ref().and_then(|w| w.entries.last_index).map(|i| i.0),
        live_keys: match r.served {
            Some(s) => Some(s.keys),
            None => r.db_report.as_ref().and_then(|d| d.keys.live_keys),
        },
        key_revisions: r
            .db_report
            .as_ref()
            .filter(|d| d.meta_choice.is_some())
            .map(|d| d.keys.revisions),
        ..Facts::default()
    };
    j.detail = Detail::Member(Box::new(r));
    j
}

/// A compressed file or an archive: what is inside, judged as files and
/// dirs, under the archive's name.
fn judge_container(
    c: Container,
    data: &[u8],
    name: &str,
    opts: &JudgeOptions,
    depth: usize,
) -> Vec<Judgment> {
    let in_container = |mut js: Vec<Judgment>| {
        for j in &mut js {
            j.containers.insert(0, c.word());
        }
        js
    };
    if depth >= MAX_CONTAINER_DEPTH {
        let j = Judgment::unreadable(
            name.to_string(),
            Kind::Other,
            format!("containers nested more than {MAX_CONTAINER_DEPTH} deep"),
        );
        return in_container(vec![j]);
    }
    let limits = unpack::Limits {
        max_bytes: opts.max_unpacked,
    };
    let u = match unpack::unpack(c, data, name, limits) {
        Ok(u) => u,
        Err(e) => {
            let kind = kind::name_hint(name).unwrap_or(Kind::Other);
            return in_container(vec![Judgment::unreadable(name.to_string(), kind, e)]);
        }
    };
    let mut out = Vec::new();
    if let Some(rel) = &u.single {
        // One stream: the file inside is the backup, under the outer name.
        let inner = u.scratch.path().join(rel);
        let mut js = judge_named(&inner, name, opts, depth + 1);
        for j in &mut js {
            j.facts.sha256 = None;
        }
        out.extend(js);
        return in_container(out);
    }
    for (member, why) in &u.unreadable {
        out.push(Judgment::unreadable(
            format!("{name}!{member}"),
            kind::name_hint(member).unwrap_or(Kind::Other),
            why.clone(),
        ));
    }
    let mut others = 0usize;
    let root = u.scratch.path();
    if archive_is_member_dir(root) {
        out.push(judge_member(root, name, opts));
    } else {
        for unit in units_under(root, &mut others) {
            let rel = unit.strip_prefix(root).unwrap_or(&unit).display().to_string();
            out.extend(judge_named(&unit, &format!("{name}!{rel}"), opts, depth + 1));
        }
    }
    if out.is_empty() {
        out.push(Judgment::skipped(
            name.to_string(),
            format!("no etcd data inside ({others} other files)"),
        ));
    }
    in_container(out)
}

/// Whether an unpacked archive is itself a member dir (packed from inside
/// the data dir: `member/`, or `wal/` and `snap/`), rather than a tree
/// holding one (a lone `wal/` is a WAL dir).
fn archive_is_member_dir(root: &Path) -> bool {
    root.join("member").is_dir() || kind::is_member_dir(root) && root.join("snap").is_dir()
}

/// The units under an unpacked archive: member dirs (not descended into),
/// WAL dirs, and files that are etcd data or containers. Others are counted.
fn units_under(dir: &Path, others: &mut usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        let mut subdirs = Vec::new();
        for p in entries {
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                match kind::dir_kind(&p) {
                    kind::DirKind::Member | kind::DirKind::Wal => out.push(p),
                    _ if depth < 32 => subdirs.push(p),
                    _ => {}
                }
            } else if md.is_file() {
                // What the judgment would call etcd data (by its bytes,
                // name, size or place) is judged; containers too.
                let head = read_head(&p);
                let container = matches!(kind::sniff(&head), kind::Sniff::Container(_));
                let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
                if container || kind::classify(&rel, &head, md.len()) != Kind::Other {
                    out.push(p);
                } else {
                    *others += 1;
                }
            }
        }
        for s in subdirs.into_iter().rev() {
            stack.push((s, depth + 1));
        }
    }
    out.sort();
    out
}

/// The first 64 KiB of a file (enough to sniff any kind).
fn read_head(p: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.take(1 << 16).read_to_end(&mut buf);
    }
    buf
}
