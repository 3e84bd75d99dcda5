//! `etcd-rescue salvage DAMAGED_DB --out NEW_DB`: save what can be saved.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::render::{self, human_bytes};
use super::{EXIT_OK, EXIT_PROBLEMS, Format};
use crate::judge::source::Unwrapped;
use crate::salvage::{SalvageReport, salvage, salvage_dir, write_db};
use crate::source::MappedFile;

/// Arguments of `salvage`.
#[derive(Debug, clap::Args)]
pub struct SalvageArgs {
    /// The damaged db or snapshot file, or a member's data dir (its db is
    /// salvaged together with its WAL). Never modified.
    pub damaged: PathBuf,
    /// Where to write the new db.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Only report what would be recovered; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub(super) fn run(
    a: &SalvageArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if !a.dry_run {
        crate::atomic::refuse_overlap(&[&a.out], &[&a.damaged])?;
    }
    // A compressed or archived input is salvaged from what it unpacks to.
    let input = Unwrapped::open(&a.damaged).context("cannot open the damaged input")?;
    let s = if input.path.is_dir() {
        salvage_dir(&input.path).map_err(|e| anyhow::anyhow!("cannot salvage {}: {e}", input.shown))?
    } else {
        let file = MappedFile::open(&input.path).context("cannot open the damaged file")?;
        salvage(file.bytes())
    };
    let r = &s.report;
    let written = if a.dry_run {
        None
    } else {
        let ps = r.page_size;
        Some(
            crate::atomic::write_file(&a.out, a.force, 0o600, |f| {
                Ok(write_db(&s, std::io::BufWriter::new(f), ps)?)
            })
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("cannot write the salvaged db")?,
        )
    };
    super::report_cleaned(err)?;
    match fmt {
        Format::Json | Format::Lines | Format::Yaml => {
            let v = serde_json::json!({"report": r, "written": written, "out": if a.dry_run { None } else { Some(a.out.display().to_string()) }});
            if fmt == Format::Json {
                render::json(out, &v)?
            } else {
                render::json_line(out, &v)?
            }
        }
        Format::Table => table(out, r)?,
    }
    match &written {
        Some(w) if fmt == Format::Table => writeln!(
            out,
            "wrote {} ({}, {} keys in {} buckets). Next: `etcd-rescue check {}`, then restore it.",
            a.out.display(),
            human_bytes(w.pages * u64::from(w.page_size)),
            w.keys,
            w.buckets,
            a.out.display()
        )?,
        None if fmt == Format::Table => writeln!(out, "dry run: nothing written")?,
        _ => {}
    }
    if !r.complete {
        writeln!(
            err,
            "etcd-rescue: data was lost or may have been lost: see LOST REVISIONS and POSSIBLY LOST in the report"
        )?;
    } else if !r.repaired.is_empty() || !r.damaged_pages.is_empty() || !r.notes.is_empty() {
        writeln!(
            err,
            "etcd-rescue: the input was damaged; everything it held was recovered (see the report)"
        )?;
    }
    Ok(if r.complete { EXIT_OK } else { EXIT_PROBLEMS })
}

fn ranges(v: &[(i64, i64)]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lost revisions, whole and in part, and an open end.
fn lost(r: &SalvageReport) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !r.lost_revision_ranges.is_empty() {
        parts.push(ranges(&r.lost_revision_ranges));
    }
    for p in &r.partly_lost_revisions {
        parts.push(match p.to_sub {
            Some(t) if p.from_sub == 0 => format!("part of {} (sub-revisions below {t})", p.revision),
            Some(t) => format!("part of {} (sub-revisions {}..{})", p.revision, p.from_sub, t - 1),
            None => format!("part of {} (sub-revisions from {})", p.revision, p.from_sub),
        });
    }
    if let Some(f) = r.lost_from_revision {
        parts.push(format!("{f} and every later one (the head is unknown)"));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn table(out: &mut dyn Write, r: &SalvageReport) -> std::io::Result<()> {
    let none_or = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join("; ")
        }
    };
    let rows = vec![
        (
            "PAGES".to_string(),
            format!(
                "{} of {} bytes ({}); {} reachable from the tree",
                r.pages, r.page_size, r.page_size_from, r.reachable_pages
            ),
        ),
        (
            "ROOT".to_string(),
            r.root
                .map_or(r.root_from.clone(), |p| format!("page {p} ({})", r.root_from)),
        ),
        (
            "UNREADABLE PAGES".to_string(),
            none_or(
                r.unreadable
                    .iter()
                    .map(|u| format!("{} ({}): {}", u.pgid, u.bucket, u.why))
                    .collect(),
            ),
        ),
        (
            "REPAIRED PAGES".to_string(),
            none_or(
                r.repaired
                    .iter()
                    .map(|p| {
                        format!(
                            "{} ({}): {}; trusted: {}",
                            p.pgid,
                            p.bucket,
                            p.repairs.join(", "),
                            p.trusted_because
                        )
                    })
                    .collect(),
            ),
        ),
        (
            "REVISIONS".to_string(),
            format!(
                "{} kept ({} found only on pages the tree no longer reaches), range {}",
                r.revisions,
                r.revisions_from_orphan_pages,
                r.revision_range
                    .map_or("none".to_string(), |(a, b)| format!("{a}..{b}"))
            ),
        ),
        (
            "KEYS".to_string(),
            format!("{} ({} live at the head)", r.keys, r.live_keys),
        ),
        ("LOST REVISIONS".to_string(), lost(r)),
        (
            "KEYS WITH LOST HISTORY".to_string(),
            none_or(
                r.keys_with_lost_history
                    .iter()
                    .map(|b| format!("{} at {}: {}", b.key, b.revision, b.why))
                    .collect(),
            ),
        ),
        (
            "POSSIBLY LOST".to_string(),
            none_or(
                r.possibly_lost_after_revision
                    .map(|a| format!("revisions after {a} (the page with the newest revisions cannot be read; its older copies end at {a}, and the head is unknown)"))
                    .into_iter()
                    .chain(r.possibly_lost.iter().chain(&r.older_tree).cloned())
                    .collect(),
            ),
        ),
        (
            "COMPACT REVISION".to_string(),
            format!(
                "{} (source: {}); {} stale copies and {} older revisions dropped",
                r.compact_revision,
                r.source_compact_revision
                    .map_or("unknown".into(), |c| c.to_string()),
                r.dropped_compacted,
                r.history_dropped
            ),
        ),
        (
            "CONSISTENT INDEX".to_string(),
            match (r.consistent_index, r.term) {
                (Some(i), Some(t)) => format!("{i} (term {t})"),
                (Some(i), None) => i.to_string(),
                _ => "unknown (restore sets it)".into(),
            },
        ),
        (
            "OTHER BUCKETS".to_string(),
            r.buckets
                .iter()
                .map(|(k, v)| match r.records_from_free_pages.get(k) {
                    Some(n) => format!("{k}: {v} ({n} from pages the tree does not reach)"),
                    None => format!("{k}: {v}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "WAL".to_string(),
            match &r.wal {
                None => "not used (a db file)".into(),
                Some(w) if w.mode == "rebuilt" => format!(
                    "the log from index 1 replayed to index {} ({} entries): {} revisions the db had lost came back{}",
                    w.applied_to_index,
                    w.applied_entries,
                    w.revisions_recovered,
                    w.notes.iter().map(|n| format!("; {n}")).collect::<String>()
                ),
                Some(w) if w.mode == "replayed" => format!(
                    "{} entries after the db's consistent index applied, to index {}{}",
                    w.applied_entries,
                    w.applied_to_index,
                    w.notes.iter().map(|n| format!("; {n}")).collect::<String>()
                ),
                Some(w) => format!("not used: {}", w.notes.join("; ")),
            },
        ),
        (
            "RESULT".to_string(),
            if r.complete {
                "nothing lost".into()
            } else {
                "data lost or possibly lost (above)".into()
            },
        ),
    ];
    writeln!(out, "{}", render::fields(&rows))?;
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}
