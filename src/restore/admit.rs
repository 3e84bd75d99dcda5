//! Whether a restore may go ahead: exactly when the one judgment
//! ([`crate::judge`]) passes its source, plus etcdutl's rule that a
//! snapshot's integrity must be provable by its sha256 trailer unless
//! `--skip-hash-check` waives it.

use crate::judge::{Judgment, Kind};
use crate::report::{Finding, Findings, Verdict};

/// The decision on a restore's source.
#[derive(Clone, Debug)]
pub struct Admission {
    /// The verdict class of the source, as the restore counts it (the
    /// judgment's, with the trailer waived by `--skip-hash-check`).
    pub verdict: Verdict,
    /// Why it is refused, in one sentence; `None` when it may go ahead.
    pub refused: Option<String>,
    /// Whether a refusal is about the command (exit 2: not a source a
    /// restore takes, or unreadable) rather than damage (exit 1).
    pub usage: bool,
    /// The findings that count (warnings and errors).
    pub findings: Vec<Finding>,
    /// A warning to print when `--force` overrides damage.
    pub forced: Option<String>,
}

/// Decides on a source judged by [`crate::judge::judge`].
pub fn admit(j: &Judgment, skip_hash: bool, force: bool) -> Admission {
    let a = Admission {
        verdict: j.verdict,
        refused: None,
        usage: false,
        findings: Vec::new(),
        forced: None,
    };
    let refused = not_a_source(j)
        .map(|why| (why, true))
        .or_else(|| (j.verdict == Verdict::Unreadable).then(|| (format!("{}: {}", j.path, j.headline), true)))
        .or_else(|| trailer_refusal(j, skip_hash).map(|why| (why, false)));
    match refused {
        Some((why, usage)) => Admission {
            refused: Some(why),
            usage,
            ..a
        },
        None => weigh_findings(j, skip_hash, force, a),
    }
}

/// Why the path is not a source a restore takes (a container, an etcd 2
/// dir, a WAL or `.snap` file, not etcd data).
fn not_a_source(j: &Judgment) -> Option<String> {
    if !j.containers.is_empty() {
        return Some(format!(
            "{}: a {} file: decompress it first, then restore the file inside",
            j.path,
            j.containers.join("+")
        ));
    }
    match j.kind {
        Kind::Snapshot | Kind::Db | Kind::SnapDb | Kind::DataDir => {}
        Kind::V2DataDir => {
            return Some(format!(
                "{}: an etcd 2.x member dir: its data is in the v2 store, which a v3 restore does not carry (see `etcd-rescue inspect {}`)",
                j.path, j.path
            ));
        }
        Kind::RaftSnap | Kind::WalSegment | Kind::WalDir => {
            return Some(format!(
                "{}: a {}, not a snapshot, a db or a data dir: restore the member dir it belongs to (or its member/snap/db)",
                j.path,
                j.kind.word()
            ));
        }
        Kind::Other => {
            return Some(format!("{}: {}", j.path, j.headline));
        }
    }
    None
}

/// etcdutl's rule: a snapshot's integrity must be provable by its sha256
/// trailer unless `--skip-hash-check` waives it.
fn trailer_refusal(j: &Judgment, skip_hash: bool) -> Option<String> {
    let bolt_file = j.kind != Kind::DataDir;
    if bolt_file && !skip_hash && j.facts.trailer == Some(crate::mvcc::Trailer::Absent) {
        return Some(format!(
            "{}: no sha256 trailer, so this is not a snapshot from `etcdctl snapshot save` (a raw db copy?) and its integrity cannot be proven; use --skip-hash-check to restore it anyway (as etcdutl requires){}",
            j.path,
            also_damaged(j)
        ));
    }
    if bolt_file
        && !skip_hash
        && let Some(crate::mvcc::Trailer::Mismatch { stored, computed }) = &j.facts.trailer
    {
        return Some(format!(
            "{}: the sha256 trailer does not match (stored {stored}, computed {computed}): the file changed after it was saved; use --skip-hash-check (and --force) to restore it anyway",
            j.path
        ));
    }
    None
}

/// With the trailer waived, the rest of the judgment still counts:
/// damage refuses the restore unless `--force`.
fn weigh_findings(j: &Judgment, skip_hash: bool, force: bool, mut a: Admission) -> Admission {
    let bolt_file = j.kind != Kind::DataDir;
    let mut counted = Findings::default();
    for f in j
        .findings
        .iter()
        .filter(|f| !(skip_hash && bolt_file && f.code == "sha256-mismatch"))
    {
        counted.push(f.clone());
    }
    a.findings = counted.items().iter().filter(|f| f.counts()).cloned().collect();
    a.verdict = match j.etcd {
        Some(_) => j.verdict,
        None => Verdict::of(&counted),
    };
    if a.verdict == Verdict::Damaged {
        let why = if j.etcd.is_some() {
            format!("{}: {}", j.path, j.headline)
        } else {
            format!(
                "{}: the source is damaged ({} error(s))",
                j.path,
                counted.count(crate::report::Severity::Error)
            )
        };
        if force {
            a.forced = Some(format!("{why}; restoring it anyway because of --force"));
        } else {
            a.refused = Some(format!(
                "{why}; refusing to restore it. `etcd-rescue salvage` saves what can be saved; --force restores it as it is"
            ));
        }
    }
    a
}

/// For a refusal about the trailer: the judgment's first error, when the
/// file is also damaged (so the advice to skip the check is not all).
fn also_damaged(j: &Judgment) -> String {
    let errors = j
        .findings
        .iter()
        .filter(|f| f.severity == crate::report::Severity::Error);
    match errors.clone().next() {
        Some(first) => format!(
            "; but it is also damaged ({} error(s), the first: {}): `etcd-rescue check {}` lists them",
            errors.count(),
            first.message,
            j.path
        ),
        None => String::new(),
    }
}
