//! `etcd-rescue inspect PATH...`: the detailed view of the one judgment
//! ([`crate::judge`]): a member dir judged as a whole, with a verdict in
//! plain words and its evidence (several side by side); any other etcd file
//! with its verdict and what it holds.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_PROBLEMS, Format};
use crate::datadir::{self, CheckStatus, Comparison, EtcdOutcome, MemberReport};
use crate::judge::{self, Detail, Judgment};
use crate::report::{Finding, Severity, Verdict};
use crate::wal::scan::Tail;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Data dirs (`--data-dir`) or their `member/` dirs; also any file
    /// `check` takes (snapshot, db, `.snap`, WAL segment, archives).
    #[arg(required = true, value_name = "PATH")]
    pub dirs: Vec<PathBuf>,
    /// The WAL dir, when it is kept apart (etcd's `--wal-dir`); one DATA_DIR only.
    #[arg(long, value_name = "DIR")]
    pub wal_dir: Option<PathBuf>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectJson<'a> {
    schema_version: u32,
    /// The judgment of every path (as `check` gives it).
    judgments: &'a [Judgment],
    /// The detail of every member dir among them.
    members: &'a [MemberReport],
    #[serde(skip_serializing_if = "Option::is_none")]
    comparison: Option<&'a Comparison>,
}

pub(super) fn run(
    a: &InspectArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if a.wal_dir.is_some() && a.dirs.len() > 1 {
        writeln!(err, "etcd-rescue: --wal-dir applies to one PATH only")?;
        return Ok(EXIT_ERROR);
    }
    let opts = judge::JudgeOptions {
        wal_dir: a.wal_dir.clone(),
        ..judge::JudgeOptions::full()
    };
    let mut judgments: Vec<Judgment> = Vec::new();
    let mut summary = super::check::Summary::default();
    for d in &a.dirs {
        for j in judge::judge(d, &opts) {
            summary.add(j.verdict);
            if matches!(j.verdict, Verdict::Unreadable | Verdict::Skipped) {
                writeln!(err, "etcd-rescue: {}: {}", j.path, j.headline)?;
            }
            judgments.push(j);
        }
    }
    let reports: Vec<MemberReport> = judgments
        .iter()
        .filter_map(|j| match &j.detail {
            Detail::Member(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    let comparison = (reports.len() > 1).then(|| datadir::compare(&reports));
    let json = InspectJson {
        schema_version: 2,
        judgments: &judgments,
        members: &reports,
        comparison: comparison.as_ref(),
    };
    match fmt {
        Format::Json | Format::Yaml => render::json(out, &json)?,
        Format::Lines => render::json_line(out, &json)?,
        Format::Table => {
            if reports.len() > 1 {
                write_side_by_side(out, &reports)?;
                if let Some(c) = &comparison {
                    writeln!(out)?;
                    for s in &c.statements {
                        writeln!(out, "{s}.")?;
                    }
                }
            }
            for j in &judgments {
                match &j.detail {
                    Detail::Member(r) if reports.len() == 1 => write_one(out, j, r)?,
                    Detail::Member(_) => {}
                    _ => write_file(out, j)?,
                }
            }
        }
    }
    let cross = comparison.as_ref().is_some_and(|c| !c.findings.is_empty());
    let code = summary.exit_code();
    Ok(if cross && code == 0 { EXIT_PROBLEMS } else { code })
}

/// A file's judgment, with what it holds.
fn write_file(out: &mut dyn Write, j: &Judgment) -> anyhow::Result<()> {
    super::check::write_one(out, j)?;
    if !matches!(j.verdict, Verdict::Unreadable | Verdict::Skipped) {
        writeln!(out, "  {}.", j.headline)?;
    }
    Ok(())
}

fn outcome_word(o: EtcdOutcome) -> &'static str {
    o.word()
}

/// The verdict block: headline, what happens, advice.
pub(super) fn write_verdict(out: &mut dyn Write, r: &MemberReport, indent: &str) -> anyhow::Result<()> {
    let v = &r.verdict;
    writeln!(
        out,
        "{indent}VERDICT ({}): {}.",
        outcome_word(v.outcome),
        v.headline
    )?;
    for s in &v.statements {
        writeln!(out, "{indent}  - {s}.")?;
    }
    if let Some(a) = &v.advice {
        writeln!(out, "{indent}  What to do: {a}.")?;
    }
    Ok(())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn rows(r: &MemberReport) -> Vec<(String, String)> {
    let db = &r.db;
    let mut rows = vec![(
        "DB".to_string(),
        if !db.exists {
            format!("{}: missing", db.file)
        } else if !db.readable {
            format!("{}: unreadable", db.file)
        } else {
            format!(
                "{} ({}), revision {}{}, {}",
                db.file,
                human_bytes(db.size),
                opt(db.revision),
                db.compact_revision
                    .map(|c| format!(" (compacted at {c})"))
                    .unwrap_or_default(),
                if db.errors + db.warnings == 0 {
                    "no problems".to_string()
                } else {
                    format!("{} error(s), {} warning(s)", db.errors, db.warnings)
                }
            )
        },
    )];
    if db.readable {
        rows.push((
            "CONSISTENT INDEX".into(),
            format!(
                "{}{}",
                opt(db.consistent_index),
                db.term.map(|t| format!(" (term {t})")).unwrap_or_default()
            ),
        ));
        rows.push((
            "DB MEMBERS".into(),
            if db.members.is_empty() {
                "-".into()
            } else {
                db.members
                    .iter()
                    .map(|m| {
                        format!(
                            "{:x} {}{} {}",
                            m.id,
                            if m.name.is_empty() { "(unnamed)" } else { &m.name },
                            if m.is_learner { " (learner)" } else { "" },
                            m.peer_urls.join(",")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        ));
    }
    match &r.wal {
        None => rows.push((
            "WAL".into(),
            format!(
                "{}: {}",
                r.layout.show(&r.layout.wal),
                r.wal_error.as_deref().unwrap_or("unreadable")
            ),
        )),
        Some(w) => {
            let segs: Vec<String> = w
                .segments
                .iter()
                .map(|s| {
                    format!(
                        "{} ({}, {} records{})",
                        s.file,
                        human_bytes(s.size),
                        s.records,
                        match (s.first_entry, s.last_entry) {
                            (Some(a), Some(b)) => format!(", entries {a}..{b}"),
                            _ => String::new(),
                        }
                    )
                })
                .collect();
            rows.push((
                "WAL SEGMENTS".into(),
                if segs.is_empty() {
                    "none".into()
                } else {
                    segs.join("\n")
                },
            ));
            if let Some(m) = w.metadata {
                rows.push(("MEMBER ID".into(), m.node_id.to_string()));
                rows.push(("CLUSTER ID".into(), m.cluster_id.to_string()));
            }
            rows.push((
                "WAL ENTRIES".into(),
                match (w.entries.first_index, w.entries.last_index) {
                    (Some(a), Some(b)) => format!(
                        "{a}..{b}, last term {}{}",
                        opt(w.entries.last_term),
                        if w.entries.replaced > 0 {
                            format!(" ({} replaced)", w.entries.replaced)
                        } else {
                            String::new()
                        }
                    ),
                    _ => "none".into(),
                },
            ));
            rows.push((
                "HARDSTATE".into(),
                w.hard_state
                    .map(|h| format!("term {}, vote {}, commit {}", h.term, h.vote, h.commit))
                    .unwrap_or_else(|| "-".into()),
            ));
            const SHOWN: usize = 10;
            let n = w.snapshots.len();
            let snaps: Vec<String> = w.snapshots[n.saturating_sub(SHOWN)..]
                .iter()
                .map(|s| format!("{}@{}", s.mark.index, s.mark.term))
                .collect();
            rows.push((
                "WAL SNAPSHOTS".into(),
                if snaps.is_empty() {
                    "none".into()
                } else if n > SHOWN {
                    format!(
                        "index@term: ..., {} ({n} in all, the last {SHOWN} shown)",
                        snaps.join(", ")
                    )
                } else {
                    format!("index@term: {}", snaps.join(", "))
                },
            ));
            rows.push((
                "WAL TAIL".into(),
                match &w.tail {
                    Tail::Clean => "clean".to_string(),
                    Tail::Torn { file, offset, .. } => format!("torn at offset {offset} of {file}"),
                    Tail::Corrupt {
                        file, offset, code, ..
                    } => {
                        format!("CORRUPT ({code}) at offset {offset} of {file}")
                    }
                },
            ));
        }
    }
    let s = &r.snap;
    let mut snap = Vec::new();
    for f in &s.snaps {
        snap.push(match (&f.snapshot, &f.error) {
            (Some(l), _) => format!("{} (index {}, term {})", f.file, l.index, l.term),
            (None, Some(e)) => format!("{} BROKEN: {e}", f.file),
            _ => f.file.clone(),
        });
    }
    for d in &s.snap_dbs {
        snap.push(format!("{} ({})", d.file, human_bytes(d.size)));
    }
    for b in &s.broken {
        snap.push(format!("{b} (set aside by etcd)"));
    }
    rows.push((
        "SNAP FILES".into(),
        if snap.is_empty() {
            "none".into()
        } else {
            snap.join("\n")
        },
    ));
    rows
}

fn write_one(out: &mut dyn Write, j: &Judgment, r: &MemberReport) -> anyhow::Result<()> {
    writeln!(
        out,
        "{} ({}{}, member dir {}){}",
        j.path,
        j.kind.word(),
        if j.containers.is_empty() {
            String::new()
        } else {
            format!(" in {}", j.containers.join("+"))
        },
        r.layout.show(&r.layout.member),
        if j.live {
            ": LIVE, etcd is running on it"
        } else {
            ""
        }
    )?;
    write_verdict(out, r, "")?;
    writeln!(out, "Evidence:")?;
    for e in &r.verdict.evidence {
        writeln!(out, "  - {e}")?;
    }
    writeln!(out, "{}", render::fields(&rows(r)))?;
    let mut t = render::table(&["CHECK", "STATUS", "DETAIL"]);
    for c in &r.checks {
        t.add_row(vec![
            c.name.to_string(),
            status_word(c.status).to_string(),
            c.detail.clone(),
        ]);
    }
    writeln!(out, "{t}")?;
    write_findings(out, r.findings.items())?;
    Ok(())
}

pub(super) fn write_findings(out: &mut dyn Write, items: &[Finding]) -> anyhow::Result<()> {
    let shown: Vec<Finding> = items
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .cloned()
        .collect();
    if !shown.is_empty() {
        writeln!(out, "{}", render::findings_table(&shown))?;
    }
    Ok(())
}

fn status_word(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Ok => "ok",
        CheckStatus::Info => "info",
        CheckStatus::Warning => "WARNING",
        CheckStatus::Error => "ERROR",
        CheckStatus::Skipped => "skipped",
    }
}

fn wal_of(r: &MemberReport) -> Option<&crate::wal::WalReport> {
    r.wal.as_ref()
}

fn write_side_by_side(out: &mut dyn Write, reports: &[MemberReport]) -> anyhow::Result<()> {
    let mut header = vec![""];
    header.extend(reports.iter().map(|r| r.path.as_str()));
    let mut t = render::table(&header);
    let col = |f: &dyn Fn(&MemberReport) -> String| -> Vec<String> { reports.iter().map(f).collect() };
    let lines: Vec<(&str, Vec<String>)> = vec![
        ("VERDICT", col(&|r| outcome_word(r.verdict.outcome).to_string())),
        (
            "MEMBER ID",
            col(&|r| opt(wal_of(r).and_then(|w| w.metadata).map(|m| m.node_id))),
        ),
        (
            "NAME",
            col(&|r| {
                wal_of(r)
                    .and_then(|w| w.metadata)
                    .and_then(|m| r.db.member(m.node_id.0))
                    .map(|m| m.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "-".into())
            }),
        ),
        (
            "CLUSTER ID",
            col(&|r| opt(wal_of(r).and_then(|w| w.metadata).map(|m| m.cluster_id))),
        ),
        ("DB REVISION", col(&|r| opt(r.db.revision))),
        ("CONSISTENT INDEX", col(&|r| opt(r.db.consistent_index))),
        (
            "WAL COMMIT",
            col(&|r| opt(wal_of(r).and_then(|w| w.hard_state).map(|h| h.commit))),
        ),
        (
            "WAL LAST INDEX",
            col(&|r| opt(wal_of(r).and_then(|w| w.entries.last_index))),
        ),
        (
            "LAST TERM",
            col(&|r| opt(wal_of(r).and_then(|w| w.entries.last_term))),
        ),
        (
            "WAL TAIL",
            col(&|r| match wal_of(r).map(|w| &w.tail) {
                None => "-".into(),
                Some(Tail::Clean) => "clean".into(),
                Some(Tail::Torn { .. }) => "torn".into(),
                Some(Tail::Corrupt { .. }) => "CORRUPT".into(),
            }),
        ),
        (
            "SNAP FILES",
            col(&|r| {
                let ok = r.snap.snaps.iter().filter(|s| s.snapshot.is_some()).count();
                let bad = r.snap.snaps.len() - ok;
                if bad > 0 {
                    format!("{ok} ok, {bad} broken")
                } else {
                    ok.to_string()
                }
            }),
        ),
        (
            "PROBLEMS",
            col(&|r| format!("{} error(s), {} warning(s)", r.errors, r.warnings)),
        ),
        (
            "COMMITTED DATA",
            col(&|r| {
                let c = &r.verdict.recoverable;
                match c.index {
                    Some(i) => format!("index {i} ({})", c.source),
                    None => "-".into(),
                }
            }),
        ),
    ];
    for (name, vals) in lines {
        let mut row = vec![name.to_string()];
        row.extend(vals);
        t.add_row(row);
    }
    writeln!(out, "{t}")?;
    for r in reports {
        writeln!(out)?;
        writeln!(out, "{}:", r.path)?;
        write_verdict(out, r, "  ")?;
        let shown: Vec<&Finding> = r.findings.items().iter().filter(|f| f.counts()).collect();
        for f in shown.iter().take(5) {
            writeln!(
                out,
                "  {} [{}] {}{}",
                f.severity,
                f.code,
                f.file.as_deref().map(|x| format!("{x}: ")).unwrap_or_default(),
                f.message
            )?;
        }
        if shown.len() > 5 {
            writeln!(
                out,
                "  ... and {} more (inspect {} alone, or check it)",
                shown.len() - 5,
                r.path
            )?;
        }
    }
    Ok(())
}
