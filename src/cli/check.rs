//! `etcd-rescue check PATH...`: the full judgment of each path, with every
//! finding. Rendering only: the judgment is [`crate::judge`]'s.

use std::io::Write;

use serde::Serialize;

use super::render;
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::judge::{self, Judgment, Kind};
use crate::mvcc::Trailer;
use crate::report::Verdict;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Snapshot files (`etcdctl snapshot save`), db files (`member/snap/db`),
    /// raft `.snap` files, WAL segments or dirs, data dirs (`--data-dir`, or
    /// its `member/` dir), and any of them gzip-, zstd-, zip- or
    /// tar-packed.
    #[arg(required = true, value_name = "PATH")]
    pub files: Vec<std::path::PathBuf>,
    /// The WAL dir, when it is kept apart (etcd's `--wal-dir`); one PATH only.
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<std::path::PathBuf>,
}

/// Counts per verdict class.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Judgments made.
    pub files: usize,
    /// OK.
    pub ok: usize,
    /// With warnings.
    pub warnings: usize,
    /// Damaged.
    pub damaged: usize,
    /// Unreadable.
    pub unreadable: usize,
    /// Not etcd data.
    pub not_etcd: usize,
}

impl Summary {
    /// Counts one judgment.
    pub fn add(&mut self, v: Verdict) {
        self.files += 1;
        match v {
            Verdict::Ok => self.ok += 1,
            Verdict::Warnings => self.warnings += 1,
            Verdict::Damaged => self.damaged += 1,
            Verdict::Unreadable => self.unreadable += 1,
            Verdict::Skipped => self.not_etcd += 1,
        }
    }

    /// The exit code: 2 when something could not be read (or is not etcd
    /// data), 1 for warnings or damage, 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.unreadable + self.not_etcd > 0 {
            EXIT_ERROR
        } else if self.warnings + self.damaged > 0 {
            EXIT_PROBLEMS
        } else {
            EXIT_OK
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckJson<'a> {
    files: &'a [Judgment],
    summary: Summary,
}

pub(super) fn run(
    a: &CheckArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if a.wal_dir.is_some() && a.files.len() > 1 {
        writeln!(err, "etcd-rescue: --wal-dir applies to one PATH only")?;
        return Ok(EXIT_ERROR);
    }
    let opts = judge::JudgeOptions {
        wal_dir: a.wal_dir.clone(),
        ..judge::JudgeOptions::full()
    };
    let mut results = Vec::with_capacity(a.files.len());
    let mut summary = Summary::default();
    for path in &a.files {
        for j in judge::judge(path, &opts) {
            summary.add(j.verdict);
            match fmt {
                Format::Table => write_one(out, &j)?,
                Format::Lines => render::json_line(out, &j)?,
                Format::Json | Format::Yaml => {}
            }
            results.push(j);
        }
    }
    if fmt == Format::Json {
        render::json(
            out,
            &CheckJson {
                files: &results,
                summary,
            },
        )?;
    } else if fmt == Format::Table && summary.files > 1 {
        writeln!(
            out,
            "{} files: {} ok, {} with warnings, {} damaged, {} unreadable, {} not etcd data",
            summary.files,
            summary.ok,
            summary.warnings,
            summary.damaged,
            summary.unreadable,
            summary.not_etcd
        )?;
    }
    Ok(summary.exit_code())
}

/// The facts shown after a verdict word.
fn facts_line(j: &Judgment) -> String {
    let f = &j.facts;
    let mut parts = Vec::new();
    match j.kind {
        Kind::DataDir | Kind::V2DataDir => {
            let served = match &j.detail {
                judge::Detail::Member(m) => m.served,
                _ => None,
            };
            parts.push(match served {
                Some(s) => format!(
                    "revision {} once etcd replays {} WAL entries, WAL up to index {}",
                    s.revision,
                    s.entries,
                    f.wal_last_index.map_or("-".into(), |i| i.to_string())
                ),
                None => format!(
                    "db revision {}, WAL up to index {}",
                    f.revision.map_or("-".into(), |r| r.to_string()),
                    f.wal_last_index.map_or("-".into(), |i| i.to_string())
                ),
            });
        }
        Kind::RaftSnap => {
            if let (Some(i), Some(t)) = (f.snapshot_index, f.snapshot_term) {
                parts.push(format!("raft snapshot at index {i}, term {t}"));
            }
        }
        Kind::WalSegment | Kind::WalDir => {
            if let Some(i) = f.wal_last_index {
                parts.push(format!("WAL up to index {i}"));
            }
        }
        _ => {
            match (f.revision, f.live_keys) {
                (Some(r), Some(k)) => parts.push(format!("revision {r}, {k} live keys")),
                (Some(r), None) => parts.push(format!("revision {r}")),
                _ => {}
            }
            match &f.trailer {
                Some(Trailer::Valid { .. }) => parts.push("sha256 trailer matches".into()),
                Some(Trailer::Absent) => parts.push("no sha256 trailer".into()),
                Some(Trailer::Mismatch { .. }) => parts.push("SHA256 TRAILER DOES NOT MATCH".into()),
                _ => {}
            }
        }
    }
    let kind = if j.containers.is_empty() {
        j.kind.word().to_string()
    } else {
        format!("{} in {}", j.kind.word(), j.containers.join("+"))
    };
    if parts.is_empty() {
        format!(" ({kind})")
    } else {
        format!(" ({kind}: {})", parts.join(", "))
    }
}

/// One judgment as a few lines and a table of findings.
pub(super) fn write_one(out: &mut dyn Write, j: &Judgment) -> anyhow::Result<()> {
    let facts = facts_line(j);
    match j.verdict {
        Verdict::Unreadable => {
            writeln!(
                out,
                "{}: UNREADABLE: {}",
                j.path,
                j.error.as_deref().unwrap_or("")
            )?;
            return Ok(());
        }
        Verdict::Skipped => {
            writeln!(
                out,
                "{}: NOT ETCD DATA: {}",
                j.path,
                j.error.as_deref().unwrap_or("")
            )?;
            return Ok(());
        }
        Verdict::Ok => writeln!(out, "{}: OK{facts}", j.path)?,
        Verdict::Warnings => writeln!(out, "{}: WARNINGS: {} warning(s){facts}", j.path, j.warnings)?,
        Verdict::Damaged => writeln!(
            out,
            "{}: DAMAGED: {} error(s), {} warning(s){facts}",
            j.path, j.errors, j.warnings
        )?,
    }
    if j.etcd.is_some() {
        writeln!(out, "  {}.", j.headline)?;
        for s in &j.statements {
            writeln!(out, "  - {s}.")?;
        }
        if let Some(a) = &j.advice {
            writeln!(out, "  What to do: {a}.")?;
        }
    }
    if !j.findings.is_empty() {
        writeln!(out, "{}", render::findings_table(&j.findings))?;
    }
    if j.suppressed_findings > 0 {
        writeln!(out, "... and {} more findings not listed", j.suppressed_findings)?;
    }
    Ok(())
}
