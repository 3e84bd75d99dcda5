//! `etcd-rescue compact` and `etcd-rescue defrag`: flags and rendering; the
//! work is `crate::compact::job`.

use std::io::Write;
use std::path::PathBuf;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::compact::job::{CompactRequest, Done, JobError, run as run_job};
use crate::compact::{Disarm, Target};
use crate::judge::Judgment;

/// Where to write, and which alarms go (shared by `compact` and `defrag`).
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Write here: a new snapshot or db file for a file, a new data dir for a
    /// member dir; for several sources, a dir that gets one entry per source.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace each member dir's db where it is; the old db is kept beside it
    /// (member/snap/db.before-compact or db.before-defrag). Member dirs only.
    #[arg(long)]
    pub in_place: bool,
    /// Replace a non-empty --out.
    #[arg(long)]
    pub force: bool,
    /// Remove NOSPACE alarms ("database space exceeded"), as `etcdctl alarm disarm`.
    #[arg(long)]
    pub disarm: bool,
    /// Also remove CORRUPT alarms. Only when you know why the member was
    /// flagged: etcd raised it because members' HashKV differed.
    #[arg(long)]
    pub disarm_corrupt: bool,
}

/// Arguments of `compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    /// Snapshots, db files or member data dirs; several member dirs are the
    /// members of one cluster and get the same compaction (never modified
    /// without --in-place).
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// The revision to compact at, or `head` for the newest.
    #[arg(long, value_name = "REV|head", value_parser = parse_rev, required_unless_present = "keep_revisions")]
    pub rev: Option<Target>,
    /// Keep the newest N revisions of history (compact at head - N), as
    /// etcd's `--auto-compaction-mode=revision` does.
    #[arg(long, value_name = "N", conflicts_with = "rev")]
    pub keep_revisions: Option<u32>,
    /// Output and alarms.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `defrag`.
#[derive(Debug, clap::Args)]
pub struct DefragArgs {
    /// Snapshots, db files or member data dirs.
    #[arg(value_name = "SOURCE", required_unless_present = "data_dir")]
    pub sources: Vec<PathBuf>,
    /// A member's data dir, as `etcdutl defrag --data-dir` takes it (with
    /// --in-place to rewrite it where it is, as etcdutl does).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Output and alarms.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_rev(s: &str) -> Result<Target, String> {
    if s.eq_ignore_ascii_case("head") {
        return Ok(Target::Head);
    }
    s.parse::<i64>()
        .map(Target::Rev)
        .map_err(|_| format!("{s:?} is not a revision (a number, or `head`)"))
}

pub(super) fn run_compact(
    a: &CompactArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let target = match (a.rev, a.keep_revisions) {
        (_, Some(n)) => Target::Keep(i64::from(n)),
        (Some(t), None) => t,
        (None, None) => unreachable!("clap requires --rev or --keep-revisions"),
    };
    let req = request(a.sources.clone(), Some(target), &a.output, "db.before-compact");
    finish(run_job(&req), req.disarm, fmt, out, err)
}

pub(super) fn run_defrag(
    a: &DefragArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut sources = a.sources.clone();
    sources.extend(a.data_dir.clone());
    let req = request(sources, None, &a.output, "db.before-defrag");
    if a.data_dir.is_some() && req.out.is_none() && !req.in_place {
        writeln!(
            err,
            "etcd-rescue: `etcdutl defrag --data-dir` rewrites the db where it is; add --in-place to do the same (the old db is kept as member/snap/db.before-defrag), or --out DIR for a new data dir"
        )?;
        return Ok(EXIT_ERROR);
    }
    finish(run_job(&req), req.disarm, fmt, out, err)
}

fn request(
    sources: Vec<PathBuf>,
    target: Option<Target>,
    o: &OutputArgs,
    keep_old_as: &'static str,
) -> CompactRequest {
    CompactRequest {
        sources,
        target,
        disarm: Disarm {
            nospace: o.disarm || o.disarm_corrupt,
            corrupt: o.disarm_corrupt,
        },
        out: o.out.clone(),
        in_place: o.in_place,
        overwrite: o.force,
        keep_old_as,
    }
}

fn finish(
    r: Result<(Vec<Done>, Vec<Judgment>), JobError>,
    disarm: Disarm,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    super::report_cleaned(err)?;
    match r {
        Ok((done, judgments)) => {
            // The alarms this run removed are no longer worth a note.
            let resolved = |code: &str| {
                (disarm.nospace && code == "alarm-nospace") || (disarm.corrupt && code == "alarm-corrupt")
            };
            let warned: Vec<(&Judgment, usize)> = judgments
                .iter()
                .map(|j| {
                    let n = j
                        .findings
                        .iter()
                        .filter(|f| f.severity == crate::report::Severity::Warning && !resolved(f.code))
                        .count();
                    (j, n)
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            match fmt {
                Format::Table => table(&done, &warned, out)?,
                _ => render::json(
                    out,
                    &serde_json::json!({ "written": done, "judgments": judgments }),
                )?,
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            let code = if e.input_problem() {
                EXIT_PROBLEMS
            } else {
                EXIT_ERROR
            };
            match fmt {
                Format::Table => writeln!(err, "etcd-rescue: {e}\nnothing was written")?,
                _ => {
                    let judgment = match &e {
                        JobError::Refused { judgment, .. } => Some(judgment),
                        _ => None,
                    };
                    render::json(
                        out,
                        &serde_json::json!({ "error": e.to_string(), "exitCode": code, "judgment": judgment }),
                    )?
                }
            }
            Ok(code)
        }
    }
}

fn table(done: &[Done], warned: &[(&Judgment, usize)], out: &mut dyn Write) -> anyhow::Result<()> {
    for d in done {
        let what = match d.compact_revision {
            Some(r) => format!(
                "compacted at revision {r} ({}), head {}",
                match d.previous_compact_revision {
                    c if c > 0 => format!("was {c}"),
                    _ => "never compacted before".into(),
                },
                d.revision
            ),
            None => format!("defragmented, head {}", d.revision),
        };
        let mut rows = vec![
            ("SOURCE".to_string(), d.source.clone()),
            ("DONE".to_string(), what),
            (
                "REVISIONS".to_string(),
                format!(
                    "{} -> {}",
                    d.rewritten.revisions_before, d.rewritten.revisions_after
                ),
            ),
            (
                "SIZE".to_string(),
                format!(
                    "{} -> {}",
                    human_bytes(d.size_before),
                    human_bytes(d.rewritten.size)
                ),
            ),
            ("WRITTEN".to_string(), d.output.clone()),
        ];
        if let Some(k) = &d.kept_old_db {
            rows.push(("OLD DB KEPT AS".to_string(), k.clone()));
        }
        let alarms = |v: &[crate::mvcc::schema::Alarm]| {
            v.iter()
                .map(|a| format!("{} (member {:x})", a.alarm, a.member_id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !d.alarms_removed.is_empty() {
            rows.push(("ALARMS REMOVED".to_string(), alarms(&d.alarms_removed)));
        }
        if !d.alarms.is_empty() {
            rows.push(("ALARMS LEFT".to_string(), alarms(&d.alarms)));
        }
        if let Some(f) = &d.folded {
            rows.push((
                "WAL TAIL FOLDED".to_string(),
                format!(
                    "consistent index {} -> {}: the WAL's alarm entries after the db's index, which etcd would apply again at every start",
                    f.from_index, f.consistent_index
                ),
            ));
        }
        if let Some(r) = d.identical_up_to {
            rows.push((
                "MEMBERS".to_string(),
                format!(
                    "identical keys and history up to revision {r} on all {}",
                    done.len()
                ),
            ));
        }
        writeln!(out, "{}", render::fields(&rows))?;
    }
    for (j, n) in warned {
        writeln!(
            out,
            "note: {} passed with {n} warning(s); `etcd-rescue check {}` lists them",
            j.path, j.path
        )?;
    }
    Ok(())
}
