//! `etcd-rescue wal DIR`: the WAL decoded, entry by entry.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::datadir::resolve_wal;
use crate::judge::source::Unwrapped;
use crate::wal::payload::{self, Payload, Request};
use crate::wal::scan::{EntryAt, Tail, WalReport};
use crate::wal::{self, EntryType, Index, Term, WalDir};

/// Arguments of `wal`.
#[derive(Debug, clap::Args)]
pub struct WalArgs {
    /// A data dir, its `member/` dir, or a WAL dir.
    pub dir: PathBuf,
    /// Only these entry types, comma-separated: put, delete-range, txn,
    /// compaction, lease-grant, lease-revoke, lease-checkpoint, range, alarm,
    /// user-add (and the other auth kinds), auth (all of them), lease (all
    /// lease kinds), cluster-version, member-attr, downgrade, v2, noop,
    /// conf-change, normal (every normal entry). etcd-dump-logs names work
    /// too (IRRPut, IRRTxn, ConfigChange, Normal, Request, InternalRaftRequest...).
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only entries at or above this index.
    #[arg(long, value_name = "INDEX")]
    pub start_index: Option<u64>,
    /// Only entries at or below this index.
    #[arg(long, value_name = "INDEX")]
    pub end_index: Option<u64>,
    /// Only entries that touch a key with this prefix (puts, deletes, txns, ranges, v2 paths).
    #[arg(long, value_name = "KEY")]
    pub prefix: Option<String>,
    /// Also show what etcd cannot read: entries past damage, and damaged
    /// entries whose record fails its CRC (marked).
    #[arg(long)]
    pub salvage: bool,
    /// Also show entries a later entry replaced (a new leader overwrote them).
    #[arg(long)]
    pub replaced: bool,
    /// Characters of each key and value shown in the table (0: all).
    #[arg(long, value_name = "N", default_value_t = 80)]
    pub max_value: usize,
}

/// Which kinds to show.
struct TypeFilter {
    kinds: BTreeSet<&'static str>,
    normal: bool,
    v3: bool,
}

fn expand(name: &str) -> Option<Vec<&'static str>> {
    let n = name.trim();
    let lower = n.to_ascii_lowercase();
    let one = |k: &'static str| Some(vec![k]);
    match lower.as_str() {
        "irrput" => one("put"),
        "irrdeleterange" => one("delete-range"),
        "irrtxn" => one("txn"),
        "irrrange" => one("range"),
        "irrcompaction" => one("compaction"),
        "irrleasegrant" => one("lease-grant"),
        "irrleaserevoke" => one("lease-revoke"),
        "irrleasecheckpoint" => one("lease-checkpoint"),
        "configchange" | "conf-change" | "confchange" => Some(vec!["conf-change", "conf-change-v2"]),
        "request" => one("v2"),
        "lease" => Some(vec!["lease-grant", "lease-revoke", "lease-checkpoint"]),
        "auth" => Some(
            Request::KINDS
                .iter()
                .copied()
                .filter(|k| k.starts_with("auth") || k.starts_with("user-") || k.starts_with("role-"))
                .collect(),
        ),
        _ => Request::KINDS
            .iter()
            .copied()
            .find(|k| *k == lower)
            .map(|k| vec![k]),
    }
}

impl TypeFilter {
    fn new(names: &[String]) -> Result<Option<TypeFilter>, String> {
        if names.is_empty() {
            return Ok(None);
        }
        let mut f = TypeFilter {
            kinds: BTreeSet::new(),
            normal: false,
            v3: false,
        };
        for n in names {
            match n.trim().to_ascii_lowercase().as_str() {
                "normal" => f.normal = true,
                "internalraftrequest" => f.v3 = true,
                _ => match expand(n) {
                    Some(k) => f.kinds.extend(k),
                    None => {
                        return Err(format!(
                            "unknown entry type {n:?}; known: normal, {}",
                            Request::KINDS.join(", ")
                        ));
                    }
                },
            }
        }
        Ok(Some(f))
    }

    fn wants(&self, kind: EntryType, r: &Request) -> bool {
        let k = r.kind();
        self.kinds.contains(k)
            || (self.normal && kind == EntryType::Normal)
            || (self.v3 && kind == EntryType::Normal && !matches!(r, Request::V2 { .. } | Request::Noop))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryLine<'a> {
    record: &'static str,
    term: Term,
    index: Index,
    #[serde(rename = "type")]
    kind: EntryType,
    file: &'a str,
    offset: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replaced: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    salvaged: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    crc_mismatch: bool,
    #[serde(flatten)]
    payload: &'a Payload,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tagged<'a, T: Serialize> {
    record: &'static str,
    #[serde(flatten)]
    value: &'a T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryLine<'a> {
    record: &'static str,
    dir: &'a str,
    bytes: u64,
    segments: &'a [wal::scan::SegmentInfo],
    entries: &'a wal::scan::EntryCounts,
    tail: &'a Tail,
    salvage: &'a wal::scan::Salvage,
    shown: u64,
    errors: usize,
    warnings: usize,
}

fn jsonl<T: Serialize>(out: &mut dyn Write, v: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

pub(super) fn run(a: &WalArgs, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let filter = match TypeFilter::new(&a.types) {
        Ok(f) => f,
        Err(e) => {
            writeln!(err, "etcd-rescue: {e}")?;
            return Ok(EXIT_ERROR);
        }
    };
    // A compressed or archived WAL (or member dir) is read unpacked.
    let input = Unwrapped::open(&a.dir).context("cannot open the WAL")?;
    let dir = match open_wal(&input) {
        Ok(d) => d?,
        Err(why) => {
            writeln!(err, "etcd-rescue: {why}")?;
            return Ok(EXIT_ERROR);
        }
    };
    let mut entries: Vec<EntryAt<'_>> = Vec::new();
    let mut report = wal::scan(&dir, wal::ScanOptions::default(), |e| entries.push(*e));
    report.dir = input.show(std::path::Path::new(&report.dir));
    let live = wal::log::kept_by_raft(entries.iter().map(|e| (e.entry.index, e.seen_by_etcd)));
    if fmt == Format::Table {
        write_header(out, &report)?;
        writeln!(out, "{:>6} {:>10}  {:<22} REQUEST", "TERM", "INDEX", "TYPE")?;
    } else {
        write_record_lines(out, &report)?;
    }
    let mut shown = 0u64;
    for (e, live) in entries.iter().zip(live) {
        let replaced = e.seen_by_etcd && !live;
        let Some(p) = selected(a, filter.as_ref(), e, replaced) else {
            continue;
        };
        shown += 1;
        let file = dir
            .segments
            .get(e.at.segment)
            .map(|s| s.file_name.as_str())
            .unwrap_or("");
        write_entry(out, fmt, a, e, &p, file, replaced)?;
    }
    write_footer(out, err, fmt, a, &report, shown)?;
    Ok(if report.findings.has_problems() {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    })
}

/// The WAL to read: one segment file, or the WAL dir of a data dir, member
/// dir or WAL dir. `Err` says why the path is not one (exit 2).
fn open_wal(input: &Unwrapped) -> Result<anyhow::Result<WalDir>, String> {
    if input.path.is_file() {
        if let Some(other) = crate::judge::kind::not_a_wal(&input.path) {
            return Err(format!("{}: {other}", input.shown));
        }
        return Ok(WalDir::single(&input.path).context("cannot read the WAL segment"));
    }
    let wal_path = resolve_wal(&input.path).map_err(|e| e.to_string())?;
    Ok(WalDir::open(&wal_path).context("cannot read the WAL directory"))
}

/// The entry's payload when the flags select it (salvaged and replaced
/// entries only when asked, the index range, the types, the key prefix).
fn selected(a: &WalArgs, filter: Option<&TypeFilter>, e: &EntryAt<'_>, replaced: bool) -> Option<Payload> {
    if !e.seen_by_etcd && !a.salvage || replaced && !a.replaced {
        return None;
    }
    let idx = e.entry.index.0;
    if a.start_index.is_some_and(|s| idx < s) || a.end_index.is_some_and(|x| idx > x) {
        return None;
    }
    let p = payload::decode(&e.entry);
    if filter.is_some_and(|f| !f.wants(e.entry.kind, &p.request)) {
        return None;
    }
    let prefix = a.prefix.as_deref().map(str::as_bytes);
    if prefix.is_some_and(|px| !p.request.touches_prefix(px)) {
        return None;
    }
    Some(p)
}

/// The metadata, HardState and snapshot records, one JSON line each.
fn write_record_lines(out: &mut dyn Write, report: &WalReport) -> anyhow::Result<()> {
    if let Some(m) = &report.metadata {
        jsonl(
            out,
            &Tagged {
                record: "metadata",
                value: m,
            },
        )?;
    }
    if let Some(h) = &report.hard_state {
        jsonl(
            out,
            &Tagged {
                record: "hardState",
                value: h,
            },
        )?;
    }
    for s in &report.snapshots {
        jsonl(
            out,
            &Tagged {
                record: "snapshot",
                value: s,
            },
        )?;
    }
    Ok(())
}

fn write_entry(
    out: &mut dyn Write,
    fmt: Format,
    a: &WalArgs,
    e: &EntryAt<'_>,
    p: &Payload,
    file: &str,
    replaced: bool,
) -> anyhow::Result<()> {
    let salvaged = !e.seen_by_etcd;
    if fmt != Format::Table {
        return jsonl(
            out,
            &EntryLine {
                record: "entry",
                term: e.entry.term,
                index: e.entry.index,
                kind: e.entry.kind,
                file,
                offset: e.at.offset,
                replaced,
                salvaged: salvaged && !e.damaged,
                crc_mismatch: e.damaged,
                payload: p,
            },
        );
    }
    let mut kind = p.request.kind().to_string();
    if e.damaged {
        kind.push_str(" [CRC MISMATCH]");
    } else if salvaged {
        kind.push_str(" [salvaged]");
    } else if replaced {
        kind.push_str(" [replaced]");
    }
    writeln!(
        out,
        "{:>6} {:>10}  {:<22} {}",
        e.entry.term,
        e.entry.index,
        kind,
        p.request.summary(a.max_value)
    )?;
    Ok(())
}

/// The findings and the summary (a JSON line, or the count and a table).
fn write_footer(
    out: &mut dyn Write,
    err: &mut dyn Write,
    fmt: Format,
    a: &WalArgs,
    report: &WalReport,
    shown: u64,
) -> anyhow::Result<()> {
    let items = report.findings.items();
    if fmt != Format::Table {
        for f in items {
            jsonl(
                out,
                &Tagged {
                    record: "finding",
                    value: f,
                },
            )?;
        }
        return jsonl(
            out,
            &SummaryLine {
                record: "summary",
                dir: &report.dir,
                bytes: report.bytes,
                segments: &report.segments,
                entries: &report.entries,
                tail: &report.tail,
                salvage: &report.salvage,
                shown,
                errors: report.findings.count(crate::report::Severity::Error),
                warnings: report.findings.count(crate::report::Severity::Warning),
            },
        );
    }
    writeln!(out, "{shown} entries shown")?;
    if !items.is_empty() {
        writeln!(out, "{}", render::findings_table(items))?;
    }
    if report.salvage.entries > 0 && !a.salvage {
        writeln!(
            err,
            "etcd-rescue: {} more entries (index {}..{}) lie past damage etcd cannot read; --salvage shows them",
            report.salvage.entries,
            report.salvage.first_index.map_or(0, |i| i.0),
            report.salvage.last_index.map_or(0, |i| i.0)
        )?;
    }
    Ok(())
}

fn write_header(out: &mut dyn Write, r: &WalReport) -> anyhow::Result<()> {
    let mut rows = vec![(
        "WAL".to_string(),
        format!(
            "{}: {} segment(s), {}",
            r.dir,
            r.segments.len(),
            human_bytes(r.bytes)
        ),
    )];
    for s in &r.segments {
        rows.push((
            "SEGMENT".into(),
            format!(
                "{} ({} bytes, {} records, {})",
                s.file,
                s.size,
                s.records,
                match (s.first_entry, s.last_entry) {
                    (Some(a), Some(b)) => format!("entries {a}..{b}"),
                    _ => "no entries".into(),
                }
            ),
        ));
    }
    if r.salvage.records > 0 || !r.salvage.lost.is_empty() {
        let mut v = format!(
            "{} sound records past damage etcd cannot read ({} entries{}, {} bytes skipped)",
            r.salvage.records,
            r.salvage.entries,
            match (r.salvage.first_index, r.salvage.last_index) {
                (Some(a), Some(b)) => format!(", index {a}..{b}"),
                _ => String::new(),
            },
            r.salvage.skipped_bytes
        );
        if !r.salvage.lost.is_empty() {
            let lost: Vec<String> = r
                .salvage
                .lost
                .iter()
                .map(|[a, b]| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}..{b}")
                    }
                })
                .collect();
            v.push_str(&format!("\nlost: no sound record of entries {}", lost.join(", ")));
        }
        rows.push(("SALVAGE".into(), v));
    }
    if let Some(m) = &r.metadata {
        rows.push(("MEMBER ID".into(), m.node_id.to_string()));
        rows.push(("CLUSTER ID".into(), m.cluster_id.to_string()));
    }
    if let Some(h) = &r.hard_state {
        rows.push((
            "HARDSTATE".into(),
            format!("term {}, vote {}, commit {}", h.term, h.vote, h.commit),
        ));
    }
    const SHOWN: usize = 10;
    let n = r.snapshots.len();
    if n > SHOWN {
        rows.push((
            "SNAPSHOTS".into(),
            format!("{n} snapshot records; the last {SHOWN} follow (-o json lists all)"),
        ));
    }
    for s in &r.snapshots[n.saturating_sub(SHOWN)..] {
        let cs = s
            .mark
            .conf_state
            .as_ref()
            .map(|c| {
                format!(
                    ", voters {}",
                    c.voters
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            })
            .unwrap_or_default();
        rows.push((
            "SNAPSHOT".into(),
            format!("index {}, term {}{cs}", s.mark.index, s.mark.term),
        ));
    }
    rows.push((
        "ENTRIES".into(),
        match (r.entries.first_index, r.entries.last_index) {
            (Some(a), Some(b)) => format!(
                "{a}..{b} ({} entries, last term {}{})",
                r.entries.entries,
                r.entries.last_term.map_or(0, |t| t.0),
                if r.entries.replaced > 0 {
                    format!(", {} replaced", r.entries.replaced)
                } else {
                    String::new()
                }
            ),
            _ => "none".into(),
        },
    ));
    rows.push((
        "TAIL".into(),
        match &r.tail {
            Tail::Clean => "clean: etcd reads every record".into(),
            Tail::Torn { file, offset, .. } => {
                format!("torn record at offset {offset} of {file}: etcd cuts it off at start")
            }
            Tail::Corrupt {
                file,
                offset,
                code,
                after_index,
                ..
            } => format!(
                "CORRUPT ({code}) at offset {offset} of {file}{}: etcd stops there",
                after_index
                    .map(|i| format!(", after entry {i}"))
                    .unwrap_or_default()
            ),
        },
    ));
    writeln!(out, "{}", render::fields(&rows))?;
    Ok(())
}
