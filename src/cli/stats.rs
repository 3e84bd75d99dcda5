//! `etcd-rescue stats SOURCE`: where the space goes.

use std::io::Write;
use std::path::PathBuf;

use super::render::{self, human_bytes};
use super::{Format, SourceDb};
use crate::mvcc::index::{KeyIndex, KeyRange};
use crate::mvcc::stats::{Stats, StatsOptions, compute};
use crate::mvcc::{DbScanOptions, scan};

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// A snapshot file, a db file or a data dir.
    pub source: PathBuf,
    /// For a data dir: read its db alone, without the committed WAL entries
    /// etcd would apply on top of it at start.
    #[arg(long)]
    pub db_only: bool,
    /// Path segments per prefix group for keys outside /registry/ (Kubernetes keys
    /// are grouped by resource: /registry/<resource>/).
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    /// How many of the largest keys, values and most-revised keys to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

pub(super) fn run(
    a: &StatsArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let src = SourceDb::open(&a.source, a.db_only, err)?;
    let ks = match src.keyspace() {
        Ok(ks) => ks,
        Err(e) => return src.damaged(err, e),
    };
    let report = scan(src.bytes(), DbScanOptions::default());
    let index = match KeyIndex::build(&ks, &KeyRange::All) {
        Ok(i) => i,
        Err(e) => return src.kv_error(err, &e),
    };
    let s = match compute(
        &index,
        &report,
        StatsOptions {
            depth: a.depth,
            top: a.top,
        },
    ) {
        Ok(s) => s,
        Err(e) => return src.kv_error(err, &e),
    };
    match fmt {
        Format::Json | Format::Yaml => render::json(out, &s)?,
        Format::Lines => render::json_line(out, &s)?,
        Format::Table => write_table(out, &s)?,
    }
    Ok(src.exit_code())
}

fn write_table(out: &mut dyn Write, s: &Stats) -> anyhow::Result<()> {
    writeln!(
        out,
        "revision {}, compact revision {}: {} keys stored, {} live, {} revisions",
        s.revision, s.compact_revision, s.keys, s.live_keys, s.revisions
    )?;
    let mut t = render::table(&[
        "PREFIX",
        "LIVE KEYS",
        "LIVE VALUE BYTES",
        "REVISIONS",
        "STORED BYTES",
    ]);
    for p in &s.prefixes {
        t.add_row(vec![
            p.prefix.clone(),
            p.live_keys.to_string(),
            human_bytes(p.live_value_bytes),
            p.revisions.to_string(),
            human_bytes(p.stored_bytes),
        ]);
    }
    writeln!(out, "{t}")?;
    let per: Vec<String> = ["1", "2-5", "6-20", "21-100", "over 100"]
        .iter()
        .filter_map(|k| s.revisions_per_key.get(*k).map(|n| format!("{k}: {n}")))
        .collect();
    writeln!(out, "keys by stored revisions: {}", per.join(", "))?;
    for (title, items, unit) in [
        ("MOST REVISIONS", &s.most_revisions, "revisions"),
        ("LARGEST VALUES", &s.largest_values, "bytes"),
        ("LONGEST KEYS", &s.largest_keys, "bytes"),
    ] {
        if items.is_empty() {
            continue;
        }
        let mut t = render::table(&[title, unit, "REVISION"]);
        for i in items {
            t.add_row(vec![i.key.clone(), i.size.to_string(), i.revision.to_string()]);
        }
        writeln!(out, "{t}")?;
    }
    if !s.leases.is_empty() {
        let mut t = render::table(&["LEASE", "TTL", "LIVE KEYS"]);
        for l in &s.leases {
            t.add_row(vec![l.id.clone(), l.ttl.to_string(), l.keys.to_string()]);
        }
        writeln!(out, "{t}")?;
    }
    let r = &s.reclaim;
    writeln!(
        out,
        "pages: {} free{}",
        s.free_pages,
        if s.leaked_pages > 0 {
            format!(", {} leaked", s.leaked_pages)
        } else {
            String::new()
        }
    )?;
    writeln!(
        out,
        "a compaction at revision {} would delete {} revisions ({}); with a defragmentation after it the db would shrink from {} to about {} (reclaiming about {})",
        s.revision,
        r.compaction_removes_revisions,
        human_bytes(r.compaction_removes_bytes),
        human_bytes(r.db_size),
        human_bytes(r.estimated_size_after),
        human_bytes(r.reclaimable_bytes)
    )?;
    Ok(())
}
