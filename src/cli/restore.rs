//! `etcd-rescue restore` and `etcd-rescue force-new-cluster`: restore-ready
//! data dirs, written offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use serde_json::json;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::bolt::Db;
use crate::mvcc::{ScanOptions, Trailer, scan, trailer};
use crate::report::Verdict;
use crate::restore::members::{ClusterSpec, parse_initial_cluster};
use crate::restore::replay::{Replayed, replay};
use crate::restore::{MemberOutcome, start_flags, write_member};
use crate::source::MappedFile;
use crate::wal::WalDir;

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

/// The source of a restore, opened.
struct Source {
    file: MappedFile,
    wal: Option<WalDir>,
    name: String,
}

fn open_source(path: &Path) -> anyhow::Result<Source> {
    if path.is_dir() {
        let db = crate::source::locate_db(path).context("cannot find the db of the data dir")?;
        let member = db
            .file
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let wal_path = member.join("wal");
        let wal = WalDir::open(&wal_path).map_err(|e| anyhow!("{}: {e}", wal_path.display()))?;
        Ok(Source {
            file: MappedFile::open(&db.file)?,
            wal: Some(wal),
            name: db.file.display().to_string(),
        })
    } else {
        Ok(Source {
            file: MappedFile::open(path)?,
            wal: None,
            name: path.display().to_string(),
        })
    }
}

/// Verifies the source fully; returns an exit code when the restore must stop.
fn verify_source(
    src: &Source,
    skip_hash: bool,
    force: bool,
    err: &mut dyn Write,
) -> anyhow::Result<Option<i32>> {
    let bytes = src.file.bytes();
    let is_snapshot = src.wal.is_none();
    if is_snapshot && !skip_hash && !trailer::has_trailer(bytes.len() as u64) {
        writeln!(
            err,
            "etcd-rescue: {}: no sha256 trailer, so this is not a snapshot from `etcdctl snapshot save` (a raw db copy?) and its integrity cannot be proven; use --skip-hash-check to restore it anyway (as etcdutl requires)",
            src.name
        )?;
        return Ok(Some(EXIT_PROBLEMS));
    }
    let r = scan(
        bytes,
        ScanOptions {
            deep: true,
            verify_trailer: !skip_hash,
            file_digest: false,
            single_thread: false,
        },
    );
    if let Trailer::Mismatch { stored, computed } = &r.trailer
        && !skip_hash
    {
        writeln!(
            err,
            "etcd-rescue: {}: the sha256 trailer does not match (stored {stored}, computed {computed}): the file changed after it was saved; use --skip-hash-check (and --force) to restore it anyway",
            src.name
        )?;
        return Ok(Some(EXIT_PROBLEMS));
    }
    let mut findings = r.findings.clone();
    if skip_hash {
        // The trailer was waived; the structure still counts.
        let kept: Vec<_> = findings
            .items()
            .iter()
            .filter(|f| f.code != "sha256-mismatch")
            .cloned()
            .collect();
        findings = crate::report::Findings::default();
        for f in kept {
            findings.push(f);
        }
    }
    if Verdict::of(&findings) == Verdict::Damaged {
        let problems: Vec<_> = findings.items().iter().filter(|f| f.counts()).cloned().collect();
        writeln!(err, "{}", render::findings_table(&problems))?;
        if !force {
            writeln!(
                err,
                "etcd-rescue: {}: the source is damaged (findings above); refusing to restore it. `etcd-rescue salvage` saves what can be saved; --force restores it as it is",
                src.name
            )?;
            return Ok(Some(EXIT_PROBLEMS));
        }
        writeln!(
            err,
            "etcd-rescue: warning: restoring a damaged source because of --force"
        )?;
    }
    Ok(None)
}

fn cluster_spec(initial: &str, token: &str) -> anyhow::Result<ClusterSpec> {
    parse_initial_cluster(initial, token).map_err(|e| anyhow!("{e}"))
}

struct Plan<'a> {
    cluster: &'a ClusterSpec,
    replayed: Option<Replayed>,
    bump: Option<i64>,
}

fn write_all_members(
    db: &Db<'_>,
    p: &Plan<'_>,
    out_dir: &Path,
    force: bool,
) -> anyhow::Result<Vec<MemberOutcome>> {
    crate::atomic::write_dir(out_dir, force, 0o700, |tmp| {
        let mut outs = Vec::new();
        for m in &p.cluster.members {
            let dir = tmp.join(&m.name);
            let o = write_member(
                db,
                p.cluster,
                m,
                p.replayed.as_ref(),
                p.bump,
                &dir,
                &dir.join("member/wal"),
            )?;
            outs.push(MemberOutcome {
                data_dir: out_dir.join(&m.name).display().to_string(),
                wal_dir: out_dir.join(&m.name).join("member/wal").display().to_string(),
                ..o
            });
            let flags = start_flags(p.cluster, m, "/var/lib/etcd");
            std::fs::write(tmp.join(format!("{}.flags", m.name)), flags)?;
        }
        Ok(outs)
    })
    .map_err(|e| anyhow!("{e}"))
}

fn write_one(
    db: &Db<'_>,
    p: &Plan<'_>,
    name: &str,
    data_dir: &Path,
    wal_dir: Option<&Path>,
    force: bool,
) -> anyhow::Result<MemberOutcome> {
    let local = p
        .cluster
        .members
        .iter()
        .find(|m| m.name == name)
        .expect("checked");
    let inner = |wal_tmp: Option<&Path>| {
        crate::atomic::write_dir(data_dir, force, 0o700, |tmp| {
            let wal = wal_tmp
                .map(Path::to_path_buf)
                .unwrap_or_else(|| tmp.join("member/wal"));
            let o = write_member(db, p.cluster, local, p.replayed.as_ref(), p.bump, tmp, &wal)?;
            Ok(MemberOutcome {
                data_dir: data_dir.display().to_string(),
                wal_dir: wal_dir
                    .map_or_else(|| data_dir.join("member/wal"), Path::to_path_buf)
                    .display()
                    .to_string(),
                ..o
            })
        })
    };
    match wal_dir {
        Some(w) => crate::atomic::write_dir(w, force, 0o700, |wtmp| inner(Some(wtmp))),
        None => inner(None),
    }
    .map_err(|e| anyhow!("{e}"))
}

fn report(
    out: &mut dyn Write,
    fmt: Format,
    p: &Plan<'_>,
    written: &[MemberOutcome],
    dry_run: bool,
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
            if dry_run {
                writeln!(out, "dry run: nothing written")?;
            }
        }
        _ => {
            let v = json!({
                "clusterID": p.cluster.cluster_id,
                "members": members,
                "written": written,
                "replay": p.replayed.as_ref().map(|r| &r.report),
                "dryRun": dry_run,
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
            "{} committed entries after the db's consistent index {} (WAL commit {}), applied up to index {}: revision {} -> {}",
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

pub(super) fn run(
    a: &RestoreArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let src = open_source(&a.source)?;
    if let Some(code) = verify_source(&src, a.skip_hash_check || src.wal.is_some(), a.force, err)? {
        return Ok(code);
    }
    let (db, _) = Db::open(trailer::image(src.file.bytes())).map_err(|e| anyhow!("{}: {e}", src.name))?;
    let cluster = cluster_spec(&a.initial_cluster, &a.initial_cluster_token)?;
    if a.all_members.is_none()
        && let Err(e) = cluster.local(&a.name, Some(&a.initial_advertise_peer_urls))
    {
        writeln!(err, "etcd-rescue: {e}")?;
        return Ok(EXIT_ERROR);
    }
    let replayed = match &src.wal {
        Some(w) => Some(replay(&db, w).map_err(|e| anyhow!("{}: {e}", src.name))?),
        None => None,
    };
    let extra = replayed.as_ref().map(replay_rows).unwrap_or_default();
    let plan = Plan {
        cluster: &cluster,
        replayed,
        bump: a.bump_revision.map(|b| b as i64),
    };
    if a.dry_run {
        report(out, fmt, &plan, &[], true, &extra)?;
        return Ok(EXIT_OK);
    }
    let written = match &a.all_members {
        Some(dir) => write_all_members(&db, &plan, dir, a.force)?,
        None => {
            let data_dir = a
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", a.name)));
            vec![write_one(
                &db,
                &plan,
                &a.name,
                &data_dir,
                a.wal_dir.as_deref(),
                a.force,
            )?]
        }
    };
    report(out, fmt, &plan, &written, false, &extra)?;
    Ok(EXIT_OK)
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
    let src = open_source(&a.data_dir)?;
    if let Some(code) = verify_source(&src, true, a.force, err)? {
        return Ok(code);
    }
    let (db, _) = Db::open(trailer::image(src.file.bytes())).map_err(|e| anyhow!("{}: {e}", src.name))?;
    // Who this member was: its ID from the WAL, its name and URLs from the db.
    let wal = src.wal.as_ref().expect("a data dir has a WAL");
    let node = crate::wal::scan(wal, crate::wal::ScanOptions::default(), |_| {})
        .metadata
        .map(|m| m.node_id.0);
    let report_db = scan(src.file.bytes(), ScanOptions::default());
    let me = node.and_then(|id| report_db.members.iter().find(|m| m.id == id));
    let name = a
        .name
        .clone()
        .or_else(|| me.map(|m| m.name.clone()).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "default".into());
    let urls = a
        .initial_advertise_peer_urls
        .clone()
        .or_else(|| me.map(|m| m.peer_urls.join(",")).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "http://localhost:2380".into());
    let token = a
        .initial_cluster_token
        .clone()
        .unwrap_or_else(|| format!("force-new-cluster-{}", crate::batch::now()));
    let initial: Vec<String> = urls.split(',').map(|u| format!("{name}={}", u.trim())).collect();
    let cluster = cluster_spec(&initial.join(","), &token)?;
    let replayed = Some(replay(&db, wal).map_err(|e| anyhow!("{}: {e}", src.name))?);
    let mut extra = replayed.as_ref().map(replay_rows).unwrap_or_default();
    extra.push((
        "NEXT".into(),
        format!(
            "start etcd on {} with --name {name} --initial-cluster {} --initial-cluster-token {token} --initial-advertise-peer-urls {urls}; then, for each other member: `etcdctl member add NAME --peer-urls URL` and start it with an empty data dir and --initial-cluster-state existing",
            a.out.display(),
            initial.join(",")
        ),
    ));
    let plan = Plan {
        cluster: &cluster,
        replayed,
        bump: None,
    };
    if a.dry_run {
        report(out, fmt, &plan, &[], true, &extra)?;
        return Ok(EXIT_OK);
    }
    let written = vec![write_one(&db, &plan, &name, &a.out, None, a.force)?];
    report(out, fmt, &plan, &written, false, &extra)?;
    Ok(EXIT_OK)
}
