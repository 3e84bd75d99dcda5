//! `etcd-rescue verify PATH...`: verify whole backup stores in one run.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use super::render::{self, human_bytes, preview};
use super::{EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, Format};
use crate::batch::catalog::{self, Catalog};
use crate::batch::input::{self, Unit};
use crate::batch::policy::{self, Policy};
use crate::batch::series::{parse_duration, rfc3339};
use crate::batch::{self, VerifyOptions, VerifyRecord};
use crate::report::Verdict;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Files, directories (walked) and glob patterns: snapshots, db files,
    /// data dirs, and gzip/zstd/zip/tar files holding them; and object store
    /// URLs (s3://bucket/prefix, gs://, az://container/prefix, https://...),
    /// a prefix or a glob over keys.
    #[arg(required_unless_present = "history")]
    pub paths: Vec<PathBuf>,
    /// The catalog of past results (default: ~/.cache/etcd-rescue/catalog.redb).
    #[arg(long, conflicts_with = "no_catalog")]
    pub catalog: Option<PathBuf>,
    /// Do not read or write a catalog.
    #[arg(long)]
    pub no_catalog: bool,
    /// Verify again even files the catalog knows unchanged.
    #[arg(long)]
    pub recheck: bool,
    /// Verify again what the catalog verified longer ago than this (e.g.
    /// 7d, 36h), even if unchanged.
    #[arg(long, value_parser = parse_duration, default_value = "7d")]
    pub recheck_after: u64,
    /// Show, per backup series, when each backup was verified and how its
    /// revision moved (from the catalog).
    #[arg(long)]
    pub history: bool,
    /// Fail when the newest good backup of a series is older than this (e.g. 36h, 7d).
    #[arg(long, value_parser = parse_duration)]
    pub max_age: Option<u64>,
    /// Fail when a series' revision stops moving or goes backwards.
    #[arg(long)]
    pub expect_growth: bool,
    /// Fail for snapshot files without a sha256 trailer.
    #[arg(long)]
    pub require_hash: bool,
    /// Threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Objects downloaded at once from object stores (each to a spill file
    /// in TMPDIR, deleted once read).
    #[arg(long, default_value_t = 4)]
    pub download_jobs: usize,
    /// Retries of one object store request (throttling, server errors,
    /// dropped connections), with exponential backoff.
    #[arg(long, default_value_t = 8)]
    pub retries: usize,
    /// Seconds an object store connection may send nothing before the
    /// request is retried (then given up).
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub read_timeout: u64,
    /// Write Prometheus metrics of this run to this file (text exposition
    /// format, written atomically: node-exporter's textfile collector reads it).
    #[arg(long)]
    pub metrics_file: Option<PathBuf>,
    /// Largest size a compressed file or archive may unpack to, in MiB
    /// (default: 16 GiB, less when the scratch filesystem's free space or
    /// the address-space limit, shared by the workers, is smaller).
    #[arg(long)]
    pub max_decompressed: Option<u64>,
}

fn open_catalog(a: &VerifyArgs, err: &mut dyn Write) -> anyhow::Result<Option<Catalog>> {
    if a.no_catalog {
        return Ok(None);
    }
    let path = match &a.catalog {
        Some(p) => p.clone(),
        None => match catalog::default_path() {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let (c, notice) = Catalog::open(&path).context("cannot open the catalog")?;
    if let Some(n) = notice {
        writeln!(err, "etcd-rescue: warning: {n}")?;
    }
    Ok(Some(c))
}

pub(super) fn run(
    a: &VerifyArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let catalog = open_catalog(a, err)?;
    if a.history {
        let Some(c) = &catalog else {
            writeln!(err, "etcd-rescue: --history needs a catalog")?;
            return Ok(EXIT_ERROR);
        };
        return history(c, fmt, out);
    }
    let ropts = crate::remote::RemoteOptions {
        retries: a.retries,
        downloads: a.download_jobs.max(1),
        read_timeout: std::time::Duration::from_secs(a.read_timeout.max(1)),
        ..crate::remote::RemoteOptions::default()
    };
    let input::Discovered { units, errors, notes } = input::discover(&a.paths, &ropts);
    for line in errors.iter().chain(&notes) {
        writeln!(err, "etcd-rescue: {line}")?;
    }
    if units.is_empty() {
        writeln!(err, "etcd-rescue: nothing to verify")?;
        return Ok(EXIT_ERROR);
    }
    let outcomes = verify_units(a, &units, &ropts, catalog.as_ref(), err)?;
    let n = units.len();
    let afresh = outcomes.iter().filter(|o| o.fresh).count();
    let mut records: Vec<VerifyRecord> = outcomes.into_iter().flat_map(|o| o.records).collect();
    let policy = Policy {
        max_age: a.max_age,
        expect_growth: a.expect_growth,
        require_hash: a.require_hash,
    };
    let series_failures = policy::apply(&mut records, policy, batch::now());
    let tally = Tally::of(&records, &series_failures, n, afresh);
    match fmt {
        Format::Json | Format::Yaml => render::json(
            out,
            &json!({"results": records, "seriesFailures": series_failures, "summary": tally.json()}),
        )?,
        Format::Lines => {
            for r in &records {
                render::json_line(out, r)?;
            }
        }
        Format::Table => write_table(out, &records, &series_failures, &tally)?,
    }
    let code = if !errors.is_empty() {
        EXIT_ERROR
    } else if tally.failed > 0 {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    };
    if let Some(path) = &a.metrics_file {
        let run = batch::metrics::Run {
            at: batch::now(),
            exit_code: code,
            input_errors: errors.len(),
        };
        let text = batch::metrics::render(&records, &series_failures, run);
        crate::atomic::write_file(path, true, 0o644, |f| Ok(f.write_all(text.as_bytes())?))
            .map_err(|e| anyhow::anyhow!("cannot write the metrics file {}: {e}", path.display()))?;
    }
    Ok(code)
}

/// Judges every unit (on `--jobs` threads) with a progress bar, and keeps
/// the results in the catalog.
fn verify_units(
    a: &VerifyArgs,
    units: &[Unit],
    ropts: &crate::remote::RemoteOptions,
    catalog: Option<&Catalog>,
    err: &mut dyn Write,
) -> anyhow::Result<Vec<batch::Outcome>> {
    let workers = a
        .jobs
        .unwrap_or_else(rayon::current_num_threads)
        .clamp(1, units.len());
    let (objects, bytes, need) = input::remote_needs(units, workers.min(ropts.downloads));
    if objects > 0 {
        writeln!(
            err,
            "etcd-rescue: {objects} object(s), {}, to download: up to {} of spill files in {} at once (deleted as each is read), plus what compressed ones unpack to",
            human_bytes(bytes),
            human_bytes(need),
            std::env::temp_dir().display()
        )?;
    }
    let opts = VerifyOptions {
        max_decompressed: match a.max_decompressed {
            Some(m) => m.saturating_mul(1 << 20),
            None => crate::judge::unpack::default_cap(workers),
        },
        recheck: a.recheck,
        recheck_after: i64::try_from(a.recheck_after).unwrap_or(i64::MAX),
        single_thread: units.len() > 1,
    };
    let total: u64 = units.iter().map(Unit::stored_bytes).sum();
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {msg} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let files_done = std::sync::atomic::AtomicUsize::new(0);
    let n = units.len();
    bar.set_message(format!("0/{n} files"));
    let progress = |bytes: u64| {
        let d = files_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        bar.set_message(format!("{d}/{n} files"));
        bar.inc(bytes);
    };
    let catalog_errors = std::sync::Mutex::new(Vec::new());
    let go = || batch::run(units, &opts, catalog, &progress, &catalog_errors);
    let outcomes = match a.jobs {
        Some(j) => rayon::ThreadPoolBuilder::new()
            .num_threads(j.max(1))
            .build()
            .context("cannot start worker threads")?
            .install(go),
        None => go(),
    };
    bar.finish_and_clear();
    // The catalog only saves work: when it fails, every result here still
    // stands (and the next run verifies afresh).
    let mut catalog_errors = catalog_errors.into_inner().unwrap_or_default();
    if let Some(c) = catalog
        && let Err(e) = batch::remember(c, &outcomes)
    {
        catalog_errors.push(format!("not updated: {e}"));
    }
    for e in catalog_errors.iter().take(3) {
        writeln!(err, "etcd-rescue: warning: catalog: {e}")?;
    }
    Ok(outcomes)
}

/// The counts of a run.
struct Tally {
    units: usize,
    afresh: usize,
    backups: usize,
    by_verdict: [(Verdict, usize); 5],
    policy_failed: usize,
    /// Backups that fail, and series that fail a policy.
    failed: usize,
}

impl Tally {
    fn of(records: &[VerifyRecord], series: &[policy::SeriesFailure], units: usize, afresh: usize) -> Tally {
        let count = |v: Verdict| records.iter().filter(|r| r.verdict == v).count();
        let by_verdict = [
            Verdict::Ok,
            Verdict::Warnings,
            Verdict::Damaged,
            Verdict::Unreadable,
            Verdict::Skipped,
        ]
        .map(|v| (v, count(v)));
        Tally {
            units,
            afresh,
            backups: records.iter().filter(|r| r.verdict != Verdict::Skipped).count(),
            by_verdict,
            policy_failed: records.iter().filter(|r| !r.policy.is_empty()).count() + series.len(),
            failed: records.iter().filter(|r| r.fails()).count() + series.len(),
        }
    }

    fn count(&self, v: Verdict) -> usize {
        self.by_verdict
            .iter()
            .find(|(x, _)| *x == v)
            .map_or(0, |(_, n)| *n)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "units": self.units,
            "backups": self.backups,
            "afresh": self.afresh,
            "fromCatalog": self.units - self.afresh,
            "ok": self.count(Verdict::Ok),
            "warnings": self.count(Verdict::Warnings),
            "damaged": self.count(Verdict::Damaged),
            "unreadable": self.count(Verdict::Unreadable),
            "skipped": self.count(Verdict::Skipped),
            "policyFailures": self.policy_failed,
            "failed": self.failed,
        })
    }
}

fn write_table(
    out: &mut dyn Write,
    records: &[VerifyRecord],
    series_failures: &[policy::SeriesFailure],
    tally: &Tally,
) -> anyhow::Result<()> {
    let mut t = render::table(&[
        "FILE",
        "KIND",
        "SIZE",
        "REVISION",
        "KEYS",
        "TAKEN",
        "VERDICT",
        "FIRST PROBLEM",
    ]);
    for r in records {
        t.add_row(row(r));
    }
    writeln!(out, "{t}")?;
    for f in series_failures {
        writeln!(out, "POLICY: {}: {}", f.series, f.problem)?;
    }
    writeln!(
        out,
        "{} backups in {} paths ({} verified now, {} from the catalog): {} ok, {} with warnings, {} damaged, {} unreadable, {} skipped; {} policy failure(s)",
        tally.backups,
        tally.units,
        tally.afresh,
        tally.units - tally.afresh,
        tally.count(Verdict::Ok),
        tally.count(Verdict::Warnings),
        tally.count(Verdict::Damaged),
        tally.count(Verdict::Unreadable),
        tally.count(Verdict::Skipped),
        tally.policy_failed
    )?;
    Ok(())
}

/// One backup's row in the table.
fn row(r: &VerifyRecord) -> Vec<String> {
    let verdict = if r.policy.is_empty() {
        r.verdict.word().to_uppercase()
    } else {
        format!("{} (POLICY)", r.verdict.word().to_uppercase())
    };
    let problem = r
        .policy
        .first()
        .or(r.first_problem.as_ref())
        .map(|p| preview(p, 90))
        .unwrap_or_default();
    let kind = if r.container == "plain" {
        r.kind.clone()
    } else {
        format!("{} ({})", r.kind, r.container)
    };
    let size = human_bytes(if r.size > 0 { r.size } else { r.stored_size });
    let taken = r.taken.map(|t| {
        let mtime = if r.taken_from.as_deref() == Some("mtime") {
            " (mtime)"
        } else {
            ""
        };
        format!("{}{mtime}", rfc3339(t))
    });
    vec![
        r.file.clone(),
        kind,
        size,
        r.revision.map(|v| v.to_string()).unwrap_or_default(),
        r.keys.map(|v| v.to_string()).unwrap_or_default(),
        taken.unwrap_or_default(),
        verdict,
        problem,
    ]
}

fn history(c: &Catalog, fmt: Format, out: &mut dyn Write) -> anyhow::Result<i32> {
    let events = c.history().context("cannot read the catalog")?;
    match fmt {
        Format::Json | Format::Yaml => render::json(out, &events)?,
        Format::Lines => {
            for e in &events {
                render::json_line(out, e)?;
            }
        }
        Format::Table => {
            if events.is_empty() {
                writeln!(out, "the catalog holds no verifications yet")?;
            }
            let mut start = 0;
            while start < events.len() {
                let series = &events[start].series;
                let end = events[start..]
                    .iter()
                    .position(|e| &e.series != series)
                    .map_or(events.len(), |p| start + p);
                let mut t = render::table(&["TAKEN", "BACKUP", "REVISION", "CHANGE", "VERDICT", "VERIFIED"]);
                let mut prev: Option<i64> = None;
                for e in &events[start..end] {
                    let change = match (prev, e.revision) {
                        (Some(p), Some(r)) if r > p => format!("+{}", r - p),
                        (Some(p), Some(r)) if r == p => "no change".into(),
                        (Some(p), Some(r)) => format!("BACKWARDS {}", r - p),
                        _ => String::new(),
                    };
                    if e.revision.is_some() {
                        prev = e.revision;
                    }
                    t.add_row(vec![
                        e.taken.map(rfc3339).unwrap_or_default(),
                        e.file.clone(),
                        e.revision.map(|r| r.to_string()).unwrap_or_default(),
                        change,
                        e.verdict.clone(),
                        rfc3339(e.verified_at),
                    ]);
                }
                writeln!(out, "series {series}:\n{t}")?;
                start = end;
            }
        }
    }
    Ok(EXIT_OK)
}
