//! `etcd-rescue check PATH...`: every problem in db and snapshot files, and
//! in data dirs (db, WAL, snap files and their cross-checks).

use std::io::Write;

use serde::Serialize;

use super::render;
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format, show_path};
use crate::datadir::{self, Check, Outcome};
use crate::mvcc::{DbReport, ScanOptions, Trailer, scan};
use crate::report::{Finding, Severity, Verdict};
use crate::source::MappedFile;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Snapshot files (`etcdctl snapshot save`), db files (`member/snap/db`),
    /// or data dirs (`--data-dir`, or its `member/` dir).
    #[arg(required = true, value_name = "PATH")]
    pub files: Vec<std::path::PathBuf>,
}

/// The JSON form of one file's check.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCheck {
    /// The file.
    pub file: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Errors found.
    pub errors: usize,
    /// Warnings found.
    pub warnings: usize,
    /// Head revision (when readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// etcdutl's snapshot hash (when readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<u32>,
    /// Stored key revisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_revisions: Option<u64>,
    /// Live keys at the head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_keys: Option<u64>,
    /// The sha256 trailer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trailer: Option<Trailer>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
    /// Findings not listed because of the cap.
    pub suppressed_findings: u64,
    /// Why the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a data dir: what etcd would do with it, and the cross-checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<DataDirCheck>,
}

/// What `check` adds for a data dir.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataDirCheck {
    /// What etcd would do.
    pub outcome: Outcome,
    /// The verdict sentence.
    pub headline: String,
    /// What etcd does on the way, and what is lost.
    pub statements: Vec<String>,
    /// What to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// The cross-checks.
    pub checks: Vec<Check>,
    /// Last WAL entry index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_last_index: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckJson {
    files: Vec<FileCheck>,
    summary: Summary,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    files: usize,
    ok: usize,
    warnings: usize,
    damaged: usize,
    unreadable: usize,
}

/// Checks one file, or one data dir, fully.
pub fn check_path(path: &std::path::Path) -> FileCheck {
    if path.is_dir() {
        check_dir(path)
    } else {
        check_file(path)
    }
}

fn unreadable(file: String, error: String) -> FileCheck {
    FileCheck {
        file,
        verdict: Verdict::Unreadable,
        errors: 0,
        warnings: 0,
        revision: None,
        hash: None,
        key_revisions: None,
        live_keys: None,
        trailer: None,
        findings: Vec::new(),
        suppressed_findings: 0,
        error: Some(error),
        data_dir: None,
    }
}

/// Checks a data dir: the db deeply, every WAL record and payload, the snap
/// files, and the cross-checks behind `inspect`.
pub fn check_dir(path: &std::path::Path) -> FileCheck {
    let name = show_path(path);
    let r = match datadir::inspect(path, None, datadir::Options { deep: true }) {
        Ok(r) => r,
        Err(e) => return unreadable(name, e.to_string()),
    };
    let errors = r.findings.count(Severity::Error);
    let warnings = r.findings.count(Severity::Warning);
    let verdict = if errors > 0 || r.verdict.outcome != Outcome::Starts || (r.has_problems() && warnings == 0)
    {
        Verdict::Damaged
    } else if warnings > 0 {
        Verdict::Warnings
    } else {
        Verdict::Ok
    };
    FileCheck {
        file: name,
        verdict,
        errors,
        warnings,
        revision: r.db.revision,
        hash: r.db.hash,
        key_revisions: None,
        live_keys: None,
        trailer: None,
        findings: r.findings.items().to_vec(),
        suppressed_findings: r.findings.suppressed,
        error: None,
        data_dir: Some(DataDirCheck {
            outcome: r.verdict.outcome,
            headline: r.verdict.headline.clone(),
            statements: r.verdict.statements.clone(),
            advice: r.verdict.advice.clone(),
            checks: r.checks.clone(),
            wal_last_index: r.wal.as_ref().and_then(|w| w.entries.last_index).map(|i| i.0),
        }),
    }
}

/// Checks one file fully.
pub fn check_file(path: &std::path::Path) -> FileCheck {
    let name = show_path(path);
    let file = match MappedFile::open(path) {
        Ok(f) => f,
        Err(e) => {
            return FileCheck {
                file: name,
                verdict: Verdict::Unreadable,
                errors: 0,
                warnings: 0,
                revision: None,
                hash: None,
                key_revisions: None,
                live_keys: None,
                trailer: None,
                findings: Vec::new(),
                suppressed_findings: 0,
                error: Some(e.to_string()),
                data_dir: None,
            };
        }
    };
    let r = scan(
        file.bytes(),
        ScanOptions {
            deep: true,
            verify_trailer: true,
            file_digest: false,
            single_thread: false,
            skip_hash: false,
        },
    );
    from_report(name, &r)
}

fn from_report(file: String, r: &DbReport) -> FileCheck {
    let errors = r.findings.count(Severity::Error);
    let warnings = r.findings.count(Severity::Warning);
    let verdict = Verdict::of(&r.findings);
    let opened = r.meta_choice.is_some();
    FileCheck {
        file,
        verdict,
        errors,
        warnings,
        revision: opened.then_some(r.revision),
        hash: (opened && !r.incomplete).then_some(r.hash),
        key_revisions: opened.then_some(r.keys.revisions),
        live_keys: r.keys.live_keys,
        trailer: opened.then(|| r.trailer.clone()),
        findings: r.findings.items().to_vec(),
        suppressed_findings: r.findings.suppressed,
        error: None,
        data_dir: None,
    }
}

pub(super) fn run(
    a: &CheckArgs,
    fmt: Format,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut results = Vec::with_capacity(a.files.len());
    let mut summary = Summary::default();
    for path in &a.files {
        let c = check_path(path);
        summary.files += 1;
        match c.verdict {
            Verdict::Ok => summary.ok += 1,
            Verdict::Warnings => summary.warnings += 1,
            Verdict::Damaged => summary.damaged += 1,
            Verdict::Unreadable | Verdict::Skipped => summary.unreadable += 1,
        }
        match fmt {
            Format::Table => write_one(out, &c)?,
            Format::Lines => render::json_line(out, &c)?,
            Format::Json | Format::Yaml => {}
        }
        results.push(c);
    }
    if fmt == Format::Json {
        render::json(
            out,
            &CheckJson {
                files: results,
                summary,
            },
        )?;
    } else if summary.files > 1 {
        writeln!(
            out,
            "{} files: {} ok, {} with warnings, {} damaged, {} unreadable",
            summary.files, summary.ok, summary.warnings, summary.damaged, summary.unreadable
        )?;
    }
    Ok(if summary.unreadable > 0 {
        EXIT_ERROR
    } else if summary.warnings + summary.damaged > 0 {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    })
}

fn write_one(out: &mut dyn Write, c: &FileCheck) -> anyhow::Result<()> {
    if let Some(d) = &c.data_dir {
        return write_dir(out, c, d);
    }
    let what = match (c.revision, c.live_keys) {
        (Some(r), Some(k)) => format!("revision {r}, {k} live keys"),
        (Some(r), None) => format!("revision {r}"),
        _ => String::new(),
    };
    let trailer = match &c.trailer {
        Some(Trailer::Valid { .. }) => ", sha256 trailer matches",
        Some(Trailer::Absent) => ", no sha256 trailer",
        Some(Trailer::Mismatch { .. }) => ", SHA256 TRAILER DOES NOT MATCH",
        _ => "",
    };
    match c.verdict {
        Verdict::Unreadable | Verdict::Skipped => {
            writeln!(
                out,
                "{}: UNREADABLE: {}",
                c.file,
                c.error.as_deref().unwrap_or("")
            )?;
            return Ok(());
        }
        Verdict::Ok => writeln!(out, "{}: OK ({what}{trailer})", c.file)?,
        Verdict::Warnings => writeln!(
            out,
            "{}: WARNINGS: {} warning(s) ({what}{trailer})",
            c.file, c.warnings
        )?,
        Verdict::Damaged => writeln!(
            out,
            "{}: DAMAGED: {} error(s), {} warning(s){}",
            c.file,
            c.errors,
            c.warnings,
            if what.is_empty() {
                String::new()
            } else {
                format!(" ({what}{trailer})")
            }
        )?,
    }
    if !c.findings.is_empty() {
        writeln!(out, "{}", render::findings_table(&c.findings))?;
    }
    if c.suppressed_findings > 0 {
        writeln!(out, "... and {} more findings not listed", c.suppressed_findings)?;
    }
    Ok(())
}

fn write_dir(out: &mut dyn Write, c: &FileCheck, d: &DataDirCheck) -> anyhow::Result<()> {
    let what = format!(
        "db revision {}, WAL up to index {}",
        c.revision.map_or("-".into(), |r| r.to_string()),
        d.wal_last_index.map_or("-".into(), |i| i.to_string())
    );
    match c.verdict {
        Verdict::Ok => writeln!(out, "{}: OK ({what})", c.file)?,
        Verdict::Warnings => writeln!(out, "{}: WARNINGS: {} warning(s) ({what})", c.file, c.warnings)?,
        _ => writeln!(
            out,
            "{}: DAMAGED: {} error(s), {} warning(s) ({what})",
            c.file, c.errors, c.warnings
        )?,
    }
    writeln!(out, "  {}.", d.headline)?;
    for s in &d.statements {
        writeln!(out, "  - {s}.")?;
    }
    if let Some(a) = &d.advice {
        writeln!(out, "  What to do: {a}.")?;
    }
    if !c.findings.is_empty() {
        writeln!(out, "{}", render::findings_table(&c.findings))?;
    }
    if c.suppressed_findings > 0 {
        writeln!(out, "... and {} more findings not listed", c.suppressed_findings)?;
    }
    Ok(())
}
