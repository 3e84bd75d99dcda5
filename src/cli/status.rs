//! `etcd-rescue status FILE`: etcdutl's snapshot status and more.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, EtcdutlLayout, Format};
use crate::bolt::check::PageCounts;
use crate::judge::{self, Detail, Judgment};
use crate::membership::Member;
use crate::mvcc::scan::{BucketCount, KeyStats};
use crate::mvcc::schema::{Alarm, AuthInfo, DbConfState};
use crate::mvcc::{DbReport, Trailer};
use crate::report::Finding;
use crate::report::Verdict;
use crate::snap::dir::SnapFile;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A snapshot file (`etcdctl snapshot save`), a db file
    /// (`member/snap/db`), a data dir (its db), a raft `.snap` file or a WAL
    /// segment.
    pub file: PathBuf,
    /// Also verify the sha256 trailer of a snapshot file (reads the whole
    /// file once more; `check` always verifies it).
    #[arg(long)]
    pub verify_hash: bool,
}

/// The JSON form of `status`. The first four fields are etcdutl's.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusJson<'a> {
    /// CRC-32C over all buckets (etcdutl's `hash`).
    pub hash: u32,
    /// Main revision of the last key revision (etcdutl's `revision`).
    pub revision: i64,
    /// Key/value pairs in all buckets (etcdutl 3.4/3.5 `totalKey`).
    pub total_key: u64,
    /// `pgid * pageSize` (etcdutl's `totalSize`).
    pub total_size: u64,
    /// Storage version (etcdutl 3.6's `version`), when the db has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    /// The file.
    pub file: String,
    /// Its size in bytes.
    pub file_size: u64,
    /// The compact revision etcd works with: the last finished compaction,
    /// or a scheduled one (etcd finishes it at start).
    pub compact_revision: Option<i64>,
    /// Last finished compaction.
    pub finished_compact_revision: Option<i64>,
    /// Last scheduled compaction.
    pub scheduled_compact_revision: Option<i64>,
    /// Last applied raft index.
    pub consistent_index: Option<u64>,
    /// Raft term of that index.
    pub term: Option<u64>,
    /// Raft configuration.
    pub conf_state: Option<&'a DbConfState>,
    /// Cluster version.
    pub cluster_version: Option<&'a str>,
    /// Members.
    pub members: &'a [Member],
    /// Removed member ids.
    pub removed_members: &'a [u64],
    /// Number of leases.
    pub leases: usize,
    /// Alarms.
    pub alarms: &'a [Alarm],
    /// Auth state.
    pub auth: &'a AuthInfo,
    /// Per-bucket counts.
    pub buckets: &'a [BucketCount],
    /// Revision counts.
    pub keys: &'a KeyStats,
    /// Page usage.
    pub pages: &'a PageCounts,
    /// Meta page in use.
    pub meta: MetaJson,
    /// The sha256 trailer.
    pub trailer: &'a Trailer,
    /// Problems met while reading (the values above are then partial).
    pub problems: Vec<&'a Finding>,
}

/// Which meta page is used.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaJson {
    /// 0 or 1.
    pub used: u8,
    /// Its transaction id.
    pub txid: u64,
    /// Page size.
    pub page_size: u32,
    /// Whether the other meta page was invalid, so bbolt fell back to this one.
    pub fell_back: bool,
    /// Why a meta page is invalid, if one is.
    pub invalid: Vec<String>,
}

impl<'a> StatusJson<'a> {
    /// Builds the JSON view of a scan.
    pub fn new(file: &str, r: &'a DbReport) -> Option<StatusJson<'a>> {
        let choice = r.meta_choice.as_ref()?;
        let invalid = choice
            .metas
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().err().map(|e| format!("meta page {i}: {e}")))
            .collect();
        Some(StatusJson {
            hash: r.hash,
            revision: r.revision,
            total_key: r.total_key,
            total_size: r.total_size,
            version: r.meta.storage_version.as_deref(),
            file: file.to_string(),
            file_size: r.file_size,
            compact_revision: r.meta.finished_compact_rev.max(r.meta.scheduled_compact_rev),
            finished_compact_revision: r.meta.finished_compact_rev,
            scheduled_compact_revision: r.meta.scheduled_compact_rev,
            consistent_index: r.meta.consistent_index,
            term: r.meta.term,
            conf_state: r.meta.conf_state.as_ref(),
            cluster_version: r.cluster.cluster_version.as_deref(),
            members: &r.members,
            removed_members: &r.removed_members,
            leases: r.leases.len(),
            alarms: &r.alarms,
            auth: &r.auth,
            buckets: &r.buckets,
            keys: &r.keys,
            pages: &r.pages,
            meta: MetaJson {
                used: choice.used,
                txid: choice.meta().txid.0,
                page_size: choice.page_size,
                fell_back: choice.fell_back,
                invalid,
            },
            trailer: &r.trailer,
            problems: r.findings.items().iter().filter(|f| f.counts()).collect(),
        })
    }
}

pub(super) fn run(
    a: &StatusArgs,
    fmt: Format,
    layout: Option<EtcdutlLayout>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let opts = judge::JudgeOptions {
        trailer: a.verify_hash,
        ..judge::JudgeOptions::default()
    };
    let js = judge::judge(&a.file, &opts);
    let mut code = EXIT_OK;
    for j in &js {
        code = code.max(one(j, fmt, layout, out, err)?);
    }
    Ok(code)
}

/// The status of one judged path.
fn one(
    j: &Judgment,
    fmt: Format,
    layout: Option<EtcdutlLayout>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let name = &j.path;
    if matches!(j.verdict, Verdict::Unreadable | Verdict::Skipped) {
        writeln!(err, "etcd-rescue: {name}: {}", j.headline)?;
        return Ok(EXIT_ERROR);
    }
    if layout.is_some() && matches!(j.detail, Detail::Snap(_) | Detail::Wal(_)) {
        writeln!(
            err,
            "etcd-rescue: {name}: {}: -w simple and -w fields show what `etcdutl snapshot status` shows, for a db or snapshot file; use -o table or -o json",
            j.headline
        )?;
        return Ok(EXIT_ERROR);
    }
    let report = match &j.detail {
        Detail::Db(r) => Some(&**r),
        Detail::Member(m) => m.db_report.as_ref(),
        Detail::Snap(f) => {
            write_snap(out, fmt, j, f)?;
            return finish(j, err);
        }
        Detail::Wal(w) => {
            write_wal(out, fmt, j, w)?;
            return finish(j, err);
        }
        Detail::None => None,
    };
    let Some(report) = report else {
        writeln!(err, "etcd-rescue: {name}: {}", j.headline)?;
        return Ok(EXIT_PROBLEMS);
    };
    let Some(json) = StatusJson::new(name, report) else {
        let why = report
            .findings
            .items()
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        writeln!(err, "etcd-rescue: {name}: not a readable bbolt/etcd file: {why}")?;
        writeln!(err, "hint: `etcd-rescue check {name}` lists every problem")?;
        return Ok(EXIT_PROBLEMS);
    };
    match (layout, fmt) {
        (None, Format::Json | Format::Yaml) => render::json(out, &json)?,
        (None, Format::Lines) => render::json_line(out, &json)?,
        (None, Format::Table) => write_table(out, &json)?,
        // etcdutl 3.5's printers, byte for byte.
        (Some(EtcdutlLayout::Simple), _) => writeln!(
            out,
            "{:x}, {}, {}, {}",
            json.hash,
            json.revision,
            json.total_key,
            render::human_bytes(json.total_size)
        )?,
        (Some(EtcdutlLayout::Fields), _) => write!(
            out,
            "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
            json.hash, json.revision, json.total_key, json.total_size
        )?,
    }
    if let Detail::Member(_) = &j.detail {
        writeln!(
            err,
            "note: the status of {name}'s db; `etcd-rescue inspect {name}` judges the whole member dir"
        )?;
    }
    if !json.problems.is_empty() {
        writeln!(
            err,
            "etcd-rescue: {name}: {} problem(s) found while reading{}; run `etcd-rescue check {name}` for the full list",
            json.problems.len(),
            if report.incomplete {
                " (values above are partial)"
            } else {
                ""
            }
        )?;
        return Ok(EXIT_PROBLEMS);
    }
    finish(j, err)
}

/// The exit code of a judgment read by `status`: 0 when it passes with no
/// warning, 1 otherwise (saying why on stderr).
fn finish(j: &Judgment, err: &mut dyn Write) -> anyhow::Result<i32> {
    if j.verdict == Verdict::Ok {
        return Ok(EXIT_OK);
    }
    writeln!(
        err,
        "etcd-rescue: {}: {}; run `etcd-rescue check {}` for every problem",
        j.path, j.headline, j.path
    )?;
    Ok(EXIT_PROBLEMS)
}

/// A raft `.snap` file: what etcd loads from it.
fn write_snap(out: &mut dyn Write, fmt: Format, j: &Judgment, f: &SnapFile) -> anyhow::Result<()> {
    let s = f.snapshot.as_ref();
    let v2 = s.and_then(|s| s.v2.as_ref());
    let v = serde_json::json!({
        "file": j.path,
        "kind": j.kind,
        "fileSize": f.size,
        "index": s.map(|s| s.index),
        "term": s.map(|s| s.term),
        "confState": s.map(|s| &s.conf_state),
        "crc": if f.error_code == Some("snap-crc-mismatch") { "mismatch" } else if s.is_some() { "valid" } else { "unreadable" },
        "members": v2.map(|v| &v.members),
        "removedMembers": v2.map(|v| &v.removed),
        "clusterVersion": v2.and_then(|v| v.cluster_version.as_deref()),
        "v2Keys": v2.map(|v| v.v2_keys),
        "storeIndex": v2.map(|v| v.current_index),
        "problems": j.findings.iter().filter(|f| f.counts()).collect::<Vec<_>>(),
    });
    match fmt {
        Format::Json | Format::Yaml => return render::json(out, &v),
        Format::Lines => return render::json_line(out, &v),
        Format::Table => {}
    }
    let ids = |v: &[crate::membership::MemberId]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
        }
    };
    let mut rows = vec![
        ("FILE".to_string(), j.path.clone()),
        ("KIND".to_string(), "raft snapshot (.snap)".to_string()),
        (
            "SIZE".to_string(),
            format!("{} ({})", human_bytes(f.size), f.size),
        ),
    ];
    match s {
        Some(s) => {
            rows.push(("INDEX".into(), s.index.to_string()));
            rows.push(("TERM".into(), s.term.to_string()));
            rows.push(("VOTERS".into(), ids(&s.conf_state.voters)));
            if !s.conf_state.learners.is_empty() {
                rows.push(("LEARNERS".into(), ids(&s.conf_state.learners)));
            }
            rows.push(("CRC".into(), "matches".into()));
            match (&s.v2, &s.v2_error) {
                (Some(v), _) => {
                    rows.push((
                        "MEMBERS".into(),
                        v.members
                            .iter()
                            .map(|m| {
                                format!(
                                    "{} {} {}",
                                    m.id,
                                    if m.name.is_empty() { "(unnamed)" } else { &m.name },
                                    m.peer_urls.join(",")
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ));
                    rows.push(("CLUSTER VERSION".into(), opt(v.cluster_version.as_deref())));
                    rows.push(("V2 KEYS".into(), v.v2_keys.to_string()));
                }
                (None, Some(e)) => rows.push(("V2 STORE".into(), format!("UNREADABLE: {e}"))),
                _ => {}
            }
        }
        None => rows.push((
            "LOADS".into(),
            format!("NO: {}", f.error.as_deref().unwrap_or("")),
        )),
    }
    writeln!(out, "{}", render::fields(&rows))?;
    Ok(())
}

/// A WAL segment (or dir): what etcd reads from it.
fn write_wal(
    out: &mut dyn Write,
    fmt: Format,
    j: &Judgment,
    w: &crate::wal::WalReport,
) -> anyhow::Result<()> {
    let v = serde_json::json!({
        "file": j.path,
        "kind": j.kind,
        "segments": w.segments,
        "metadata": w.metadata,
        "hardState": w.hard_state,
        "entries": w.entries,
        "tail": w.tail,
        "problems": j.findings.iter().filter(|f| f.counts()).collect::<Vec<_>>(),
    });
    match fmt {
        Format::Json | Format::Yaml => return render::json(out, &v),
        Format::Lines => return render::json_line(out, &v),
        Format::Table => {}
    }
    let rows = vec![
        ("FILE".to_string(), j.path.clone()),
        ("KIND".to_string(), j.kind.word().to_string()),
        ("SUMMARY".to_string(), j.headline.clone()),
        (
            "MEMBER / CLUSTER".to_string(),
            w.metadata
                .map(|m| format!("{} / {}", m.node_id, m.cluster_id))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "HARDSTATE".to_string(),
            w.hard_state
                .map(|h| format!("term {}, vote {}, commit {}", h.term, h.vote, h.commit))
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    writeln!(out, "{}", render::fields(&rows))?;
    writeln!(out, "use `etcd-rescue wal {}` to read its entries", j.path)?;
    Ok(())
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

fn write_table(out: &mut dyn Write, s: &StatusJson<'_>) -> anyhow::Result<()> {
    let trailer = match s.trailer {
        Trailer::Absent => "absent (raw db copy)".to_string(),
        Trailer::Unverified { .. } => "present (not verified: use --verify-hash, or check)".to_string(),
        Trailer::Valid { .. } => "present, matches".to_string(),
        Trailer::Mismatch { .. } => "present, DOES NOT MATCH".to_string(),
    };
    let members = if s.members.is_empty() {
        "-".to_string()
    } else {
        s.members
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
    };
    let p = s.pages;
    let mut rows = vec![
        ("FILE".to_string(), s.file.clone()),
        ("HASH".to_string(), format!("{:x}", s.hash)),
        ("REVISION".to_string(), s.revision.to_string()),
        ("TOTAL KEYS".to_string(), s.total_key.to_string()),
        (
            "TOTAL SIZE".to_string(),
            format!("{} ({})", human_bytes(s.total_size), s.total_size),
        ),
    ];
    if let Some(v) = s.version {
        rows.push(("VERSION".into(), v.to_string()));
    }
    rows.extend([
        (
            "COMPACT REVISION".to_string(),
            match (s.compact_revision, s.finished_compact_revision) {
                (Some(c), f) if f != Some(c) => {
                    format!("{c} (scheduled; etcd finishes the compaction when it starts)")
                }
                (c, _) => opt(c),
            },
        ),
        ("CONSISTENT INDEX".to_string(), opt(s.consistent_index)),
        ("TERM".to_string(), opt(s.term)),
        ("CLUSTER VERSION".to_string(), opt(s.cluster_version)),
        ("MEMBERS".to_string(), members),
        (
            "KEY REVISIONS".to_string(),
            format!("{} ({} deletes)", s.keys.revisions, s.keys.tombstones),
        ),
        ("LEASES".to_string(), s.leases.to_string()),
        (
            "AUTH".to_string(),
            format!(
                "{}, users: {}; roles: {}",
                if s.auth.enabled == Some(true) {
                    "enabled"
                } else {
                    "disabled"
                },
                list_or_none(&s.auth.users),
                list_or_none(&s.auth.roles)
            ),
        ),
        (
            "PAGES".to_string(),
            format!(
                "{} of {} bytes: {} in use, {} free{}{}",
                p.high_water_mark,
                p.page_size,
                p.in_use,
                p.free,
                if p.freelist_synced {
                    format!(", {} leaked", p.leaked)
                } else {
                    String::new()
                },
                if p.freelist_synced {
                    ""
                } else {
                    " (no stored freelist)"
                }
            ),
        ),
        (
            "META PAGE".to_string(),
            format!(
                "{} (txid {}){}",
                s.meta.used,
                s.meta.txid,
                if s.meta.fell_back {
                    format!("; FELL BACK: {}", s.meta.invalid.join("; "))
                } else {
                    String::new()
                }
            ),
        ),
        ("SHA256 TRAILER".to_string(), trailer),
    ]);
    if !s.alarms.is_empty() {
        let a: Vec<String> = s
            .alarms
            .iter()
            .map(|a| format!("{} on {:x}", a.alarm, a.member_id))
            .collect();
        rows.push(("ALARMS".into(), a.join(", ")));
    }
    writeln!(out, "{}", render::fields(&rows))?;
    if !s.problems.is_empty() {
        let items: Vec<Finding> = s.problems.iter().map(|f| (*f).clone()).collect();
        writeln!(out, "{}", render::findings_table(&items))?;
    }
    Ok(())
}
