//! `etcd-rescue restore` and `etcd-rescue force-new-cluster`: restore-ready
//! data dirs, written offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde_json::json;

use super::render::{self, human_bytes};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::bolt::Db;
use crate::datadir::replay::{Replayed, replay};
use crate::judge;
use crate::mvcc::{ScanOptions, scan, trailer};
use crate::restore::admit::Admission;
use crate::restore::members::{ClusterSpec, parse_initial_cluster};
use crate::restore::{MemberOutcome, RestoreSource, start_flags, write_member};
use crate::source::{DbImage, MappedFile};
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
    path: PathBuf,
    file: DbImage,
    wal: Option<WalDir>,
    name: String,
}

fn open_source(path: &Path) -> anyhow::Result<Source> {
    if path.is_dir() {
        let layout = crate::datadir::resolve(path, None)?;
        let wal = WalDir::open(&layout.wal).map_err(|e| anyhow!("{}: {e}", layout.wal.display()))?;
        // No db, or an empty file: etcd creates a new db and replays the
        // whole WAL into it, and so does the restore.
        let missing = std::fs::metadata(&layout.db).map_or(true, |m| m.is_file() && m.len() == 0);
        let file = if missing {
            DbImage::Owned(crate::datadir::replay::empty_db().map_err(|e| anyhow!("{e}"))?)
        } else {
            DbImage::Mapped(MappedFile::open(&layout.db)?)
        };
        Ok(Source {
            path: path.to_path_buf(),
            file,
            wal: Some(wal),
            name: layout.db.display().to_string(),
        })
    } else {
        Ok(Source {
            path: path.to_path_buf(),
            file: DbImage::Mapped(MappedFile::open(path)?),
            wal: None,
            name: path.display().to_string(),
        })
    }
}

/// The decision on a restore's source, and how to tell it.
struct Verification {
    admission: Admission,
    /// The judgment's kind and outcome, for `-o json`.
    source: serde_json::Value,
}

impl Verification {
    fn refuse_code(&self) -> Option<i32> {
        self.admission.refused.as_ref().map(|_| {
            if self.admission.usage {
                EXIT_ERROR
            } else {
                EXIT_PROBLEMS
            }
        })
    }

    /// What to print on stderr before anything else.
    fn messages(&self) -> String {
        let mut m = String::new();
        let a = &self.admission;
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
    fn refused(
        &self,
        src: &Source,
        fmt: Format,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> anyhow::Result<i32> {
        err.write_all(self.messages().as_bytes())?;
        let code = self.refuse_code().unwrap_or(EXIT_PROBLEMS);
        if fmt != Format::Table {
            let j = json!({
                "source": self.source,
                "sourceFile": src.name,
                "restored": false,
                "reason": self.admission.refused,
                "findings": self.admission.findings,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        }
        Ok(code)
    }
}

/// Judges the source with the one judgment and decides. Runs on its own
/// thread while the output is being written; the output is only renamed
/// into place when this passes.
fn verify_source(path: &Path, skip_hash: bool, force: bool) -> Verification {
    let js = judge::judge(path, &judge::Options::full());
    let j = js.first().expect("one judgment per path");
    let admission = crate::restore::admit::admit(j, skip_hash, force);
    Verification {
        source: json!({
            "path": j.path,
            "kind": j.kind,
            "verdict": admission.verdict,
            "etcd": j.etcd,
            "headline": j.headline,
        }),
        admission,
    }
}

/// The db could not be read to replay the WAL onto it: the judgment says
/// why (and refuses it), or the read error is reported as it is.
fn replay_failed(
    src: &Source,
    skip_hash: bool,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
    e: &crate::mvcc::kv::KvError,
) -> anyhow::Result<i32> {
    let v = verify_source(&src.path, skip_hash, false);
    if v.refuse_code().is_some() {
        return v.refused(src, fmt, out, err);
    }
    Err(anyhow!("{}: {e}", src.name))
}

/// A restore refused by the verification (the temporary output is removed).
#[derive(Debug, thiserror::Error)]
#[error("the source did not pass verification")]
struct Refused(i32);

fn cluster_spec(initial: &str, token: &str) -> anyhow::Result<ClusterSpec> {
    parse_initial_cluster(initial, token).map_err(|e| anyhow!("{e}"))
}

struct Plan<'a> {
    cluster: &'a ClusterSpec,
    src_file: Option<&'a std::fs::File>,
    replayed: Option<Replayed>,
    bump: Option<i64>,
}

impl Plan<'_> {
    fn source<'s, 'a>(&'s self, db: &'s Db<'a>) -> RestoreSource<'s, 'a> {
        RestoreSource {
            db,
            file: self.src_file,
            replayed: self.replayed.as_ref(),
            bump_revision: self.bump,
        }
    }
}

/// Called after everything is written and before it is renamed into place:
/// an error (the source failed verification) removes the output instead.
type Gate<'g> = &'g mut dyn FnMut() -> Result<(), crate::restore::BoxError>;

fn write_all_members(
    db: &Db<'_>,
    p: &Plan<'_>,
    out_dir: &Path,
    force: bool,
    gate: Gate<'_>,
) -> anyhow::Result<Vec<MemberOutcome>> {
    crate::atomic::write_dir(out_dir, force, 0o700, |tmp| {
        let mut outs = Vec::new();
        for m in &p.cluster.members {
            let dir = tmp.join(&m.name);
            let o = write_member(&p.source(db), p.cluster, m, &dir, &dir.join("member/wal"))?;
            outs.push(MemberOutcome {
                data_dir: out_dir.join(&m.name).display().to_string(),
                wal_dir: out_dir.join(&m.name).join("member/wal").display().to_string(),
                ..o
            });
            let flags = start_flags(p.cluster, m, "/var/lib/etcd");
            std::fs::write(tmp.join(format!("{}.flags", m.name)), flags)?;
        }
        gate()?;
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
    gate: Gate<'_>,
) -> anyhow::Result<MemberOutcome> {
    let local = p
        .cluster
        .members
        .iter()
        .find(|m| m.name == name)
        .expect("checked");
    let mut inner = |wal_tmp: Option<&Path>| {
        crate::atomic::write_dir(data_dir, force, 0o700, |tmp| {
            let wal = wal_tmp
                .map(Path::to_path_buf)
                .unwrap_or_else(|| tmp.join("member/wal"));
            let o = write_member(&p.source(db), p.cluster, local, tmp, &wal)?;
            gate()?;
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

/// Runs `write` while the source is verified on another thread; the output
/// is renamed into place only if the verification passes. Returns the exit
/// code when the source is refused.
fn with_verification<T>(
    src: &Source,
    skip_hash: bool,
    force: bool,
    err: &mut dyn Write,
    write: impl FnOnce(Gate<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<Result<T, Verification>> {
    std::thread::scope(|sc| {
        let mut handle = Some(sc.spawn(|| verify_source(&src.path, skip_hash, force)));
        let mut verdict: Option<Verification> = None;
        let result = {
            let mut gate = || -> Result<(), crate::restore::BoxError> {
                let v = handle
                    .take()
                    .expect("joined once")
                    .join()
                    .expect("verification thread");
                let refused = v.refuse_code();
                verdict = Some(v);
                match refused {
                    Some(code) => Err(Box::new(Refused(code))),
                    None => Ok(()),
                }
            };
            write(&mut gate)
        };
        let verdict = match verdict {
            Some(v) => v,
            None => handle
                .take()
                .expect("not joined")
                .join()
                .expect("verification thread"),
        };
        if verdict.refuse_code().is_some() {
            return Ok(Err(verdict));
        }
        err.write_all(verdict.messages().as_bytes())?;
        result.map(Ok)
    })
}

pub(super) fn run(
    a: &RestoreArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let src = match open_source(&a.source) {
        Ok(s) => s,
        // Not something a restore opens: the judgment says what it is.
        Err(_) => {
            let v = verify_source(&a.source, a.skip_hash_check, false);
            if v.refuse_code().is_some() {
                err.write_all(v.messages().as_bytes())?;
                if fmt != Format::Table {
                    let j = json!({"source": v.source, "restored": false, "reason": v.admission.refused});
                    writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
                }
                return Ok(v.refuse_code().unwrap_or(EXIT_ERROR));
            }
            open_source(&a.source)?
        }
    };
    let skip_hash = a.skip_hash_check;
    let (db, _) = match Db::open(trailer::image(src.file.bytes())) {
        Ok(x) => x,
        Err(_) => {
            // Not even a readable db: the verification says why.
            return verify_source(&src.path, skip_hash, false).refused(&src, fmt, out, err);
        }
    };
    let cluster = cluster_spec(&a.initial_cluster, &a.initial_cluster_token)?;
    if a.all_members.is_none()
        && let Err(e) = cluster.local(&a.name, Some(&a.initial_advertise_peer_urls))
    {
        writeln!(err, "etcd-rescue: {e}")?;
        return Ok(EXIT_ERROR);
    }
    let replayed = match &src.wal {
        Some(w) => match replay(&db, w) {
            Ok(r) => Some(r),
            Err(e) => return replay_failed(&src, skip_hash, fmt, out, err, &e),
        },
        None => None,
    };
    let extra = replayed.as_ref().map(replay_rows).unwrap_or_default();
    let plan = Plan {
        cluster: &cluster,
        src_file: src.file.file(),
        replayed,
        bump: a.bump_revision.map(|b| b as i64),
    };
    if a.dry_run {
        let v = verify_source(&src.path, skip_hash, a.force);
        if v.refuse_code().is_some() {
            return v.refused(&src, fmt, out, err);
        }
        err.write_all(v.messages().as_bytes())?;
        report(out, fmt, &plan, &[], Some(&v.source), &extra)?;
        return Ok(EXIT_OK);
    }
    let written = with_verification(&src, skip_hash, a.force, err, |gate| match &a.all_members {
        Some(dir) => write_all_members(&db, &plan, dir, a.force, gate),
        None => {
            let data_dir = a
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", a.name)));
            Ok(vec![write_one(
                &db,
                &plan,
                &a.name,
                &data_dir,
                a.wal_dir.as_deref(),
                a.force,
                gate,
            )?])
        }
    })?;
    match written {
        Ok(written) => {
            report(out, fmt, &plan, &written, None, &extra)?;
            Ok(EXIT_OK)
        }
        Err(v) => v.refused(&src, fmt, out, err),
    }
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
    let (db, _) = match Db::open(trailer::image(src.file.bytes())) {
        Ok(x) => x,
        Err(_) => {
            return verify_source(&src.path, true, false).refused(&src, fmt, out, err);
        }
    };
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
    let replayed = match replay(&db, wal) {
        Ok(r) => Some(r),
        Err(e) => return replay_failed(&src, true, fmt, out, err, &e),
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
    let plan = Plan {
        cluster: &cluster,
        src_file: src.file.file(),
        replayed,
        bump: None,
    };
    if a.dry_run {
        let v = verify_source(&src.path, true, a.force);
        if v.refuse_code().is_some() {
            return v.refused(&src, fmt, out, err);
        }
        err.write_all(v.messages().as_bytes())?;
        report(out, fmt, &plan, &[], Some(&v.source), &extra)?;
        return Ok(EXIT_OK);
    }
    match with_verification(&src, true, a.force, err, |gate| {
        Ok(vec![write_one(&db, &plan, &name, &a.out, None, a.force, gate)?])
    })? {
        Ok(written) => {
            report(out, fmt, &plan, &written, None, &extra)?;
            Ok(EXIT_OK)
        }
        Err(v) => v.refused(&src, fmt, out, err),
    }
}
