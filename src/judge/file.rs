//! Judging single files (db, snapshot, `.snap.db`, raft `.snap`, WAL
//! segment) and WAL dirs.

use std::path::Path;

use super::kind::{self, Kind};
use super::{Depth, Detail, Facts, JudgeOptions, Judgment};
use crate::mvcc::{DbReport, DbScanOptions, Trailer, scan};
use crate::report::{Finding, Findings, Severity, Verdict};
use crate::wal::{self, Tail, WalDir};

/// Judges a file from its bytes. `path` is where they are on disk (needed
/// for a WAL segment, which is read as a one-segment WAL).
pub fn judge_bytes(name: &str, bytes: &[u8], path: Option<&Path>, opts: &JudgeOptions) -> Judgment {
    match kind::file_kind(name, bytes) {
        k @ (Kind::Snapshot | Kind::Db | Kind::SnapDb) => judge_bolt(name, k, bytes, opts),
        Kind::RaftSnap => judge_snap(name, bytes, opts),
        Kind::WalSegment => match path {
            Some(p) => judge_segment(name, p, bytes.len() as u64, opts),
            None => Judgment::unreadable(name.into(), Kind::WalSegment, "not on disk".into()),
        },
        _ => Judgment::skipped(
            name.to_string(),
            kind::why_other(&bytes[..bytes.len().min(1 << 16)], bytes.len() as u64),
        ),
    }
}

/// A bbolt file: its structure, etcd's schema and (full) the trailer.
fn judge_bolt(name: &str, kind: Kind, bytes: &[u8], opts: &JudgeOptions) -> Judgment {
    let full = opts.depth == Depth::Full;
    let r = scan(
        bytes,
        DbScanOptions {
            deep: full,
            verify_trailer: full || opts.trailer,
            file_digest: opts.fingerprint,
            single_thread: opts.single_thread,
            skip_hash: opts.skip_hash,
        },
    );
    // A `.snap.db` or a member's db has no trailer, as it should be.
    let mut findings = Findings::default();
    for f in r.findings.items() {
        if !(kind == Kind::SnapDb && f.code == "no-sha256-trailer") {
            findings.push(f.clone());
        }
    }
    findings.extend_suppressed(&r.findings);
    let mut j = Judgment::new(name.to_string(), kind);
    j.set_findings(&findings);
    j.verdict = Verdict::of(&findings);
    j.facts = facts_of(&r, opts.skip_hash);
    j.headline = bolt_headline(kind, &j, &r);
    j.detail = Detail::Db(Box::new(r));
    j
}

fn facts_of(r: &DbReport, skip_hash: bool) -> Facts {
    let opened = r.meta_choice.is_some();
    Facts {
        size: r.file_size,
        revision: opened.then_some(r.revision),
        hash: (opened && !r.incomplete && !skip_hash).then_some(r.hash),
        key_revisions: opened.then_some(r.keys.revisions),
        live_keys: r.keys.live_keys,
        trailer: opened.then(|| r.trailer.clone()),
        consistent_index: r.meta.consistent_index,
        sha256: r.file_sha256.clone(),
        ..Facts::default()
    }
}

fn bolt_headline(kind: Kind, j: &Judgment, r: &DbReport) -> String {
    let what = match kind {
        Kind::Snapshot => "a snapshot (etcdctl snapshot save)",
        Kind::SnapDb => "a db received from a leader (.snap.db)",
        _ => "a db (no sha256 trailer: a member's db or a copy of it)",
    };
    let at = match (j.facts.revision, j.facts.live_keys) {
        (Some(rev), Some(k)) => format!(" at revision {rev}, {k} live keys"),
        (Some(rev), None) => format!(" at revision {rev}"),
        _ => String::new(),
    };
    let trailer = match &r.trailer {
        Trailer::Valid { .. } => ", sha256 trailer matches",
        Trailer::Mismatch { .. } => ", SHA256 TRAILER DOES NOT MATCH",
        _ => "",
    };
    match j.verdict {
        Verdict::Damaged => format!(
            "{what}{at}: damaged ({} error(s)): etcd refuses it or would serve lost or wrong data",
            j.errors
        ),
        Verdict::Warnings => format!("{what}{at}{trailer}: usable, with {} warning(s)", j.warnings),
        _ => format!("{what}{at}{trailer}"),
    }
}

/// A raft `.snap` file, read as etcd's snapshotter and store recovery do.
fn judge_snap(name: &str, bytes: &[u8], _opts: &JudgeOptions) -> Judgment {
    let base = name.rsplit(['/', '!']).next().unwrap_or(name);
    let f = crate::snap::dir::load_bytes(base, bytes);
    let mut findings = Findings::default();
    if let (Some(code), Some(e)) = (f.error_code, &f.error) {
        findings.push(Finding::new(
            Severity::Error,
            code,
            format!("{e}: etcd cannot load it (it renames it .broken and falls back to an older snapshot, if its member has one)"),
        ));
    }
    let mut j = Judgment::new(name.to_string(), Kind::RaftSnap);
    if let Some(s) = &f.snapshot {
        if let Some(e) = &s.v2_error {
            findings.push(Finding::new(
                Severity::Error,
                "snap-v2-store",
                format!("{e}: etcd 3.4/3.5 panic when they recover from this snapshot (\"failed to recover from snapshot\")"),
            ));
        }
        if let Some(n) = f.name
            && (n.index != s.index || n.term != s.term)
        {
            findings.push(Finding::new(
                Severity::Warning,
                "snap-name-mismatch",
                format!(
                    "the name says term {} index {}, the snapshot inside says term {} index {}",
                    n.term, n.index, s.term, s.index
                ),
            ));
        }
        j.facts.snapshot_index = Some(s.index.0);
        j.facts.snapshot_term = Some(s.term.0);
    }
    j.facts.size = bytes.len() as u64;
    j.set_findings(&findings);
    j.verdict = Verdict::of(&findings);
    j.headline = match &f.snapshot {
        Some(s) => format!(
            "a raft snapshot at index {}, term {}{}",
            s.index,
            s.term,
            match &s.v2 {
                Some(v) => format!(
                    ", {} member(s){}, {} v2 key(s)",
                    v.members.len(),
                    v.cluster_version
                        .as_deref()
                        .map(|c| format!(", cluster version {c}"))
                        .unwrap_or_default(),
                    v.v2_keys
                ),
                None => String::new(),
            }
        ),
        None => format!(
            "a raft .snap file that etcd cannot load: {}",
            f.error.as_deref().unwrap_or("")
        ),
    };
    j.detail = Detail::Snap(Box::new(f));
    j
}

/// The verdict class of a WAL read alone: corruption is damage, a torn
/// tail (which etcd repairs) a warning.
fn wal_judgment(name: &str, kind: Kind, r: wal::WalReport, size: u64) -> Judgment {
    let mut j = Judgment::new(name.to_string(), kind);
    j.set_findings(&r.findings);
    j.verdict = Verdict::of(&r.findings);
    if matches!(r.tail, Tail::Corrupt { .. }) {
        j.verdict = Verdict::Damaged;
    }
    j.facts.size = size;
    j.facts.wal_last_index = r.entries.last_index.map(|i| i.0);
    j.headline = format!(
        "{}: {} record(s){}, {}",
        if kind == Kind::WalDir {
            format!("a WAL of {} segment(s)", r.segments.len())
        } else {
            "a WAL segment".to_string()
        },
        r.segments.iter().map(|s| s.records).sum::<u64>(),
        match (r.entries.first_index, r.entries.last_index) {
            (Some(a), Some(b)) => format!(", entries {a}..{b}"),
            _ => String::new(),
        },
        match &r.tail {
            Tail::Clean => "etcd reads every record".to_string(),
            Tail::Torn { offset, .. } => format!("a torn tail at offset {offset} that etcd cuts off"),
            Tail::Corrupt { offset, message, .. } => format!("CORRUPT at offset {offset}: {message}"),
        }
    );
    j.detail = Detail::Wal(Box::new(r));
    j
}

/// One WAL segment on its own.
fn judge_segment(name: &str, path: &Path, size: u64, opts: &JudgeOptions) -> Judgment {
    let d = match WalDir::single(path) {
        Ok(d) => d,
        Err(e) => return Judgment::unreadable(name.into(), Kind::WalSegment, e.to_string()),
    };
    let r = wal::scan(
        &d,
        wal::ScanOptions {
            payloads: opts.depth == Depth::Full,
        },
        |_| {},
    );
    wal_judgment(name, Kind::WalSegment, r, size)
}

/// A directory of WAL segments.
pub fn judge_wal_dir(path: &Path, name: &str, opts: &JudgeOptions) -> Judgment {
    let d = match WalDir::open(path) {
        Ok(d) => d,
        Err(e) => return Judgment::unreadable(name.into(), Kind::WalDir, e.to_string()),
    };
    let size = d.total_bytes();
    let r = wal::scan(
        &d,
        wal::ScanOptions {
            payloads: opts.depth == Depth::Full,
        },
        |_| {},
    );
    wal_judgment(name, Kind::WalDir, r, size)
}
