//! `etcd-rescue salvage DAMAGED_DB --out NEW_DB`: save what can be saved.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::render::{self, human_bytes};
use super::{EXIT_OK, EXIT_PROBLEMS, Format};
use crate::salvage::{salvage, write_db};
use crate::source::MappedFile;

/// Arguments of `salvage`.
#[derive(Debug, clap::Args)]
pub struct SalvageArgs {
    /// The damaged db or snapshot file (never modified).
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
    let file = MappedFile::open(&a.damaged).context("cannot open the damaged file")?;
    let s = salvage(file.bytes());
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
        Format::Table => {
            let range = r
                .revision_range
                .map_or("none".to_string(), |(a, b)| format!("{a}..{b}"));
            let lost = if r.lost_revision_ranges.is_empty() {
                "none".to_string()
            } else {
                r.lost_revision_ranges
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}..{b}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let rows = vec![
                (
                    "PAGES".to_string(),
                    format!(
                        "{} of {} bytes ({}); {} reachable from the tree",
                        r.pages, r.page_size, r.page_size_from, r.reachable_pages
                    ),
                ),
                ("LEAF PAGES USED".to_string(), r.leaf_pages_used.to_string()),
                (
                    "UNREADABLE LEAF PAGES".to_string(),
                    if r.unreadable_leaf_pages.is_empty() {
                        "none".into()
                    } else {
                        format!("{:?}", r.unreadable_leaf_pages)
                    },
                ),
                (
                    "DESTROYED PAGES".to_string(),
                    if r.damaged_pages.is_empty() {
                        "none".into()
                    } else {
                        format!("{:?}", r.damaged_pages)
                    },
                ),
                (
                    "REVISIONS RECOVERED".to_string(),
                    format!(
                        "{} ({} only on pages the tree no longer reaches), range {range}",
                        r.revisions, r.revisions_from_orphan_pages
                    ),
                ),
                (
                    "KEYS".to_string(),
                    format!("{} ({} live at the head)", r.keys, r.live_keys),
                ),
                ("COMPACT REVISION".to_string(), r.compact_revision.to_string()),
                ("LOST REVISIONS".to_string(), lost),
                (
                    "STALE COPIES DROPPED".to_string(),
                    format!(
                        "{} revisions at or below the compact revision",
                        r.dropped_compacted
                    ),
                ),
                (
                    "OTHER BUCKETS".to_string(),
                    r.buckets
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ];
            writeln!(out, "{}", render::fields(&rows))?;
            for n in &r.notes {
                writeln!(out, "note: {n}")?;
            }
            match &written {
                Some(w) => writeln!(
                    out,
                    "wrote {} ({}, {} keys in {} buckets). Next: `etcd-rescue check {}`, then restore it.",
                    a.out.display(),
                    human_bytes(w.pages * u64::from(w.page_size)),
                    w.keys,
                    w.buckets,
                    a.out.display()
                )?,
                None => writeln!(out, "dry run: nothing written")?,
            }
        }
    }
    // Damage seen: what was recovered is in the report, but losses cannot be
    // ruled out.
    let lossy = !r.tree_walked
        || !r.lost_revision_ranges.is_empty()
        || !r.unreadable_leaf_pages.is_empty()
        || !r.damaged_pages.is_empty()
        || r.revisions == 0;
    if lossy {
        writeln!(
            err,
            "etcd-rescue: the db is damaged: some data may not have been recovered; see the report"
        )?;
    }
    Ok(if lossy { EXIT_PROBLEMS } else { EXIT_OK })
}
