//! `etcd-rescue restore` and `etcd-rescue force-new-cluster`: restore-ready
//! data dirs, written offline.

use std::io::Write;
use std::path::PathBuf;

use anyhow::anyhow;
use serde_json::json;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::datadir::replay::{Replayed, replay};
use crate::judge::source::Unwrapped;
use crate::restore::MemberOutcome;
use crate::restore::job::{self, Checked, RestorePlan, Source};
use crate::restore::members::{ClusterSpec, parse_initial_cluster};

/// Arguments of `restore` (flag-compatible with `etcdutl snapshot restore`).
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A snapshot file (`etcdctl snapshot save`), a db file, or a member's
    /// data dir (its db plus the committed WAL entries the db lacks).
    pub source: PathBuf,
    /// The data dir to create (default: NAME.etcd, as etcdutl).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A separate WAL dir to create (as etcd's --wal-dir).
    #[arg(long)]
    pub wal_dir: Option<PathBuf>,
    /// This member's name.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The new cluster: NAME=PEER_URL,... (a name may repeat for several URLs).
    #[arg(long, default_value = "default=http://localhost:2380")]
    pub initial_cluster: String,
    /// The cluster token the IDs are computed with.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// This member's peer URLs (must match --initial-cluster).
    #[arg(long, default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: String,
    /// Restore a snapshot whose sha256 trailer is missing or does not match.
    #[arg(long)]
    pub skip_hash_check: bool,
    /// Raise the revision by N (use with --mark-compacted), so clients that
    /// watched the old cluster never see revisions go back.
    #[arg(long, requires = "mark_compacted")]
    pub bump_revision: Option<u64>,
    /// Mark everything below the bumped revision compacted (use with --bump-revision).
    #[arg(long, requires = "bump_revision")]
    pub mark_compacted: bool,
    /// Write the data dir of every member of --initial-cluster into OUTDIR
    /// (OUTDIR/NAME/), with OUTDIR/NAME.flags holding the etcd flags for each.
    #[arg(long, conflicts_with_all = ["data_dir", "wal_dir"])]
    pub all_members: Option<PathBuf>,
    /// Restore even a damaged source, and replace a non-empty target.
    #[arg(long)]
    pub force: bool,
    /// Report what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `force-new-cluster`.
#[derive(Debug, clap::Args)]
pub struct ForceNewClusterArgs {
    /// The surviving member's data dir (never modified).
    pub data_dir: PathBuf,
    /// The new data dir to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The member's name (default: its name in the old cluster).
    #[arg(long)]
    pub name: Option<String>,
    /// The member's peer URLs (default: its URLs in the old cluster).
    #[arg(long)]
    pub initial_advertise_peer_urls: Option<String>,
    /// The token for the new IDs (default: a fresh one, so the IDs are new).
    #[arg(long)]
    pub initial_cluster_token: Option<String>,
    /// Restore even a damaged db, and replace a non-empty target.
    #[arg(long)]
    pub force: bool,
    /// Report what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The judgment's summary of a source, for `-o json`.
fn source_json(c: &Checked) -> serde_json::Value {
    let j = &c.judgment;
    json!({
        "path": j.path,
        "kind": j.kind,
        "verdict": c.admission.verdict,
        "etcd": j.etcd,
        "headline": j.headline,
    })
}

/// The exit code of a refusal: 2 for a source a restore does not take (or
/// cannot read), 1 for damage.
fn refuse_code(c: &Checked) -> i32 {
    if c.admission.usage {
        EXIT_ERROR
    } else {
        EXIT_PROBLEMS
    }
}

/// What the judgment has to say before anything else, on stderr.
fn messages(c: &Checked) -> String {
    let mut m = String::new();
    let a = &c.admission;
    if (a.refused.is_some() && !a.usage || a.forced.is_some()) && !a.findings.is_empty() {
        m.push_str(&render::findings_table(&a.findings).to_string());
        m.push('\n');
    }
    if let Some(r) = &a.refused {
        m.push_str(&format!("etcd-rescue: {r}\n"));
    }
    if let Some(f) = &a.forced {
        m.push_str(&format!("etcd-rescue: warning: {f}\n"));
    }
    m
}

/// Tells the user why nothing was written: the messages on stderr and,
/// with `-o json`, an object on stdout that scripts can read.
fn refused(c: &Checked, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    err.write_all(messages(c).as_bytes())?;
    if fmt != Format::Table {
        let j = json!({
            "error": c.admission.refused,
            "exitCode": refuse_code(c),
            "source": source_json(c),
            "restored": false,
            "reason": c.admission.refused,
            "findings": c.admission.findings,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    }
    Ok(refuse_code(c))
}

/// The source opened (unpacked first when compressed or archived), or the
/// judgment's refusal when it cannot be. The [`Unwrapped`] keeps the
/// unpacked copy while the source is read.
fn open(
    path: &std::path::Path,
    skip_hash: bool,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Result<(Unwrapped, Source), i32>> {
    let input = match Unwrapped::open(path) {
        Ok(u) => u,
        Err(e) => {
            // A missing path: the judgment says so (in the JSON document
            // too); an archive that cannot be unpacked says why.
            if std::fs::metadata(path).is_err() {
                let c = job::check(path, &path.display().to_string(), skip_hash, false);
                if c.refused() {
                    return refused(&c, fmt, out, err).map(Err);
                }
            }
            return Err(e.into());
        }
    };
    match Source::open(&input.path) {
        Ok(mut s) if s.db().is_ok() => {
            s.shown.clone_from(&input.shown);
            Ok(Ok((input, s)))
        }
        opened => {
            // Not something a restore opens, or not a readable db: the
            // judgment says what it is.
            let c = job::check(&input.path, &input.shown, skip_hash, false);
            if c.refused() {
                return refused(&c, fmt, out, err).map(Err);
            }
            let mut s = opened?;
            s.shown.clone_from(&input.shown);
            Ok(Ok((input, s)))
        }
    }
}

fn cluster_spec(initial: &str, token: &str) -> anyhow::Result<ClusterSpec> {
    parse_initial_cluster(initial, token).map_err(|e| anyhow!("{e}"))
}

/// The WAL replay of a member dir, or the judgment's refusal when its db
/// cannot be read for it.
fn replayed(
    src: &Source,
    skip_hash: bool,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Result<Option<Replayed>, i32>> {
    let Some(w) = &src.wal else { return Ok(Ok(None)) };
    let db = src.db().map_err(|e| anyhow!("{}: {e}", src.name))?;
    match replay(&db, w) {
        Ok(r) => Ok(Ok(Some(r))),
        Err(e) => {
            let c = job::check(&src.path, &src.shown, skip_hash, false);
            if c.refused() {
                return refused(&c, fmt, out, err).map(Err);
            }
            Err(anyhow!("{}: {e}", src.name))
        }
    }
}

/// Writes (or, with `--dry-run`, only judges) and reports.
#[allow(clippy::too_many_arguments)]
fn execute(
    src: &Source,
    plan: &RestorePlan<'_>,
    skip_hash: bool,
    force: bool,
    dry_run: bool,
    extra: &[(String, String)],
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
    write: impl FnOnce(job::Gate<'_>) -> Result<Vec<MemberOutcome>, crate::restore::BoxError>,
) -> anyhow::Result<i32> {
    if dry_run {
        let c = job::check(&src.path, &src.shown, skip_hash, force);
        if c.refused() {
            return refused(&c, fmt, out, err);
        }
        err.write_all(messages(&c).as_bytes())?;
        report(out, fmt, plan, &[], Some(&source_json(&c)), extra)?;
        return Ok(EXIT_OK);
    }
    let (c, written) = job::with_check(&src.path, &src.shown, skip_hash, force, write);
    super::report_cleaned(err)?;
    match written {
        None => refused(&c, fmt, out, err),
        Some(w) => {
            err.write_all(messages(&c).as_bytes())?;
            let w = w.map_err(|e| anyhow!("{e}"))?;
            report(out, fmt, plan, &w, None, extra)?;
            // Written, but without a committed entry that could not be
            // decoded (and what follows it): the report names it.
            match plan.replayed.as_ref().and_then(|r| r.report.stopped_at.as_ref()) {
                Some((i, why)) => {
                    writeln!(
                        err,
                        "etcd-rescue: the restored dir stops before committed entry {i}: {why}"
                    )?;
                    Ok(EXIT_PROBLEMS)
                }
                None => Ok(EXIT_OK),
            }
        }
    }
}

pub(super) fn run(
    a: &RestoreArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let skip_hash = a.skip_hash_check;
    let (_input, src) = match open(&a.source, skip_hash, fmt, out, err)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let db = src.db().map_err(|e| anyhow!("{}: {e}", src.name))?;
    let cluster = cluster_spec(&a.initial_cluster, &a.initial_cluster_token)?;
    let local = match a.all_members {
        Some(_) => None,
        None => match cluster.local(&a.name, Some(&a.initial_advertise_peer_urls)) {
            Ok(m) => Some(m),
            Err(e) => {
                writeln!(err, "etcd-rescue: {e}")?;
                return Ok(EXIT_ERROR);
            }
        },
    };
    let replayed = match replayed(&src, skip_hash, fmt, out, err)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let extra = replayed.as_ref().map(replay_rows).unwrap_or_default();
    let plan = RestorePlan {
        cluster: &cluster,
        src_file: src.file.file(),
        replayed,
        bump: a.bump_revision.map(|b| b as i64),
        inputs: vec![a.source.clone(), src.path.clone()],
    };
    let data_dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", a.name)));
    execute(
        &src,
        &plan,
        skip_hash,
        a.force,
        a.dry_run,
        &extra,
        fmt,
        out,
        err,
        |gate| match (&a.all_members, local) {
            (Some(dir), _) => job::write_all_members(&db, &plan, dir, a.force, gate),
            (None, Some(local)) => Ok(vec![job::write_one(
                &db,
                &plan,
                local,
                &data_dir,
                a.wal_dir.as_deref(),
                a.force,
                gate,
            )?]),
            (None, None) => unreachable!("a restore of one member has its member"),
        },
    )
}

pub(super) fn run_force_new_cluster(
    a: &ForceNewClusterArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if !a.data_dir.is_dir() {
        writeln!(err, "etcd-rescue: {}: not a data dir", a.data_dir.display())?;
        return Ok(EXIT_ERROR);
    }
    let (_input, src) = match open(&a.data_dir, true, fmt, out, err)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let db = src.db().map_err(|e| anyhow!("{}: {e}", src.name))?;
    // Who this member was: its ID from the WAL, its name and URLs from the db.
    let me = job::survivor(&src, src.file.bytes());
    let name = a
        .name
        .clone()
        .or_else(|| me.as_ref().map(|m| m.name.clone()).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "default".into());
    let urls = a
        .initial_advertise_peer_urls
        .clone()
        .or_else(|| {
            me.as_ref()
                .map(|m| m.peer_urls.join(","))
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "http://localhost:2380".into());
    let token = a
        .initial_cluster_token
        .clone()
        .unwrap_or_else(|| format!("force-new-cluster-{}", crate::batch::now()));
    let initial: Vec<String> = urls.split(',').map(|u| format!("{name}={}", u.trim())).collect();
    let cluster = cluster_spec(&initial.join(","), &token)?;
    let replayed = match replayed(&src, true, fmt, out, err)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let mut extra = replayed.as_ref().map(replay_rows).unwrap_or_default();
    extra.push((
        "NEXT".into(),
        format!(
            "1. start etcd on {} with\n   --name {name} --initial-cluster {}\n   --initial-cluster-token {token} --initial-advertise-peer-urls {urls}\n2. for each other member: `etcdctl member add NAME --peer-urls URL`,\n   then start it with an empty data dir and --initial-cluster-state existing",
            a.out.display(),
            initial.join(",")
        ),
    ));
    let plan = RestorePlan {
        cluster: &cluster,
        src_file: src.file.file(),
        replayed,
        bump: None,
        inputs: vec![src.path.clone()],
    };
    let local = cluster.members.first().ok_or_else(|| anyhow!("no member"))?;
    execute(
        &src,
        &plan,
        true,
        a.force,
        a.dry_run,
        &extra,
        fmt,
        out,
        err,
        |gate| {
            Ok(vec![job::write_one(
                &db, &plan, local, &a.out, None, a.force, gate,
            )?])
        },
    )
}

fn report(
    out: &mut dyn Write,
    fmt: Format,
    p: &RestorePlan<'_>,
    written: &[MemberOutcome],
    dry_run: Option<&serde_json::Value>,
    extra: &[(String, String)],
) -> anyhow::Result<()> {
    let members: Vec<serde_json::Value> = p
        .cluster
        .members
        .iter()
        .map(|m| json!({"name": m.name, "ID": m.id, "memberID": format!("{:x}", m.id), "peerURLs": m.peer_urls}))
        .collect();
    match fmt {
        Format::Table => {
            let mut rows = vec![
                ("CLUSTER ID".to_string(), format!("{:x}", p.cluster.cluster_id)),
                (
                    "MEMBERS".to_string(),
                    p.cluster
                        .members
                        .iter()
                        .map(|m| format!("{} {:x} {}", m.name, m.id, m.peer_urls.join(",")))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            ];
            rows.extend(extra.iter().cloned());
            for w in written {
                rows.push((
                    format!("DATA DIR {}", w.name),
                    format!(
                        "{} (db {}, revision {}{})",
                        w.data_dir,
                        human_bytes(w.db.written.pages * u64::from(w.db.written.page_size)),
                        w.db.revision,
                        w.db.bumped_to
                            .map(|b| format!(", bumped and compacted at {b}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            writeln!(out, "{}", render::fields(&rows))?;
            if let Some(src) = dry_run {
                writeln!(
                    out,
                    "dry run: nothing written; the source ({}) is {}: {}",
                    src["kind"].as_str().unwrap_or(""),
                    src["verdict"].as_str().unwrap_or("").to_uppercase(),
                    src["headline"].as_str().unwrap_or("")
                )?;
            }
        }
        _ => {
            let v = json!({
                "clusterID": p.cluster.cluster_id,
                "members": members,
                "written": written,
                "replay": p.replayed.as_ref().map(|r| &r.report),
                "dryRun": dry_run.is_some(),
                "source": dry_run,
            });
            if fmt == Format::Lines {
                render::json_line(out, &v)?
            } else {
                render::json(out, &v)?
            }
        }
    }
    Ok(())
}

fn replay_rows(r: &Replayed) -> Vec<(String, String)> {
    let rep = &r.report;
    let mut rows = vec![(
        "WAL REPLAY".to_string(),
        format!(
            "{} committed entries after the db's consistent index {} (WAL commit {}),\napplied up to index {}: revision {} -> {}",
            rep.applied_entries,
            rep.db_consistent_index,
            rep.wal_commit,
            rep.applied_to_index,
            rep.revision_before,
            rep.revision_after
        ),
    )];
    if !rep.applied.is_empty() {
        rows.push((
            "APPLIED".into(),
            rep.applied
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if !rep.not_applied.is_empty() {
        rows.push((
            "NOT APPLIED".into(),
            rep.not_applied
                .iter()
                .map(|(k, v)| format!("{k} ({v})"))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    if rep.uncommitted_entries > 0 {
        rows.push((
            "UNCOMMITTED".into(),
            format!(
                "{} entries after the commit index were dropped, as etcd drops them",
                rep.uncommitted_entries
            ),
        ));
    }
    for n in &rep.notes {
        rows.push(("NOTE".into(), n.clone()));
    }
    rows
}
