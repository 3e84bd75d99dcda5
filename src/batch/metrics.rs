//! A verify run as Prometheus metrics, in the text exposition format that
//! node-exporter's textfile collector (and a Pushgateway) read: per backup
//! its verdict, revision, keys, size and times; per series the newest good
//! backup and its age; per run when it ran and whether it passed.
//!
//! All times are Unix seconds; the age is as of the run, so alerts should
//! prefer `time() - etcd_rescue_series_newest_good_backup_timestamp_seconds`
//! (see the README's "Verify the backups in my bucket every night" for the rule).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::VerifyRecord;
use super::policy::SeriesFailure;
use crate::report::Verdict;

/// What the run as a whole did.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// When it ran (Unix seconds).
    pub at: i64,
    /// Its exit code.
    pub exit_code: i32,
    /// Arguments that named nothing readable.
    pub input_errors: usize,
}

/// One metric family being written.
struct Family<'o> {
    out: &'o mut String,
}

impl Family<'_> {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", parts.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Starts a family: its HELP and TYPE lines.
fn family<'o>(out: &'o mut String, name: &str, help: &str) -> Family<'o> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    Family { out }
}

/// A label value escaped as the format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Whether a record is a good backup: a verdict that passes, no policy failure.
fn good(r: &VerifyRecord) -> bool {
    r.verdict.passes() && r.policy.is_empty()
}

/// The metrics text of a run.
pub fn render(records: &[VerifyRecord], series_failures: &[SeriesFailure], run: Run) -> String {
    let mut out = String::new();
    backups(&mut out, records);
    series(&mut out, records, series_failures, run.at);
    let mut f = family(
        &mut out,
        "etcd_rescue_verify_last_run_timestamp_seconds",
        "When this verify run ended.",
    );
    f.sample(
        "etcd_rescue_verify_last_run_timestamp_seconds",
        &[],
        run.at as f64,
    );
    let mut f = family(
        &mut out,
        "etcd_rescue_verify_last_run_success",
        "1 when the run passed (exit code 0): every backup good and every policy met.",
    );
    f.sample(
        "etcd_rescue_verify_last_run_success",
        &[],
        f64::from(u8::from(run.exit_code == 0)),
    );
    let mut f = family(
        &mut out,
        "etcd_rescue_verify_input_errors",
        "Paths and URLs of the run that named nothing readable (missing, denied, unreachable).",
    );
    f.sample("etcd_rescue_verify_input_errors", &[], run.input_errors as f64);
    let mut f = family(
        &mut out,
        "etcd_rescue_verify_backups",
        "Backups of the run by verdict.",
    );
    for v in [
        Verdict::Ok,
        Verdict::Warnings,
        Verdict::Damaged,
        Verdict::Unreadable,
        Verdict::Skipped,
    ] {
        let n = records.iter().filter(|r| r.verdict == v).count();
        f.sample("etcd_rescue_verify_backups", &[("verdict", v.word())], n as f64);
    }
    out
}

/// The per-backup families.
fn backups(out: &mut String, records: &[VerifyRecord]) {
    type Value = fn(&VerifyRecord) -> Option<f64>;
    let families: [(&str, &str, Value); 7] = [
        (
            "etcd_rescue_backup_ok",
            "1 when the backup verified good and met every policy.",
            |r| Some(f64::from(u8::from(good(r)))),
        ),
        (
            "etcd_rescue_backup_verified_timestamp_seconds",
            "When the backup was last verified.",
            |r| Some(r.verified_at as f64),
        ),
        (
            "etcd_rescue_backup_taken_timestamp_seconds",
            "When the backup was taken (from its name, else its modification time).",
            |r| r.taken.map(|t| t as f64),
        ),
        (
            "etcd_rescue_backup_revision",
            "The head revision the backup holds.",
            |r| r.revision.map(|v| v as f64),
        ),
        (
            "etcd_rescue_backup_keys",
            "Live keys at the backup's head revision.",
            |r| r.keys.map(|v| v as f64),
        ),
        (
            "etcd_rescue_backup_size_bytes",
            "Bytes of the backup as stored.",
            |r| Some(r.stored_size as f64),
        ),
        (
            "etcd_rescue_backup_findings",
            "Errors found in the backup.",
            |r| Some(r.errors as f64),
        ),
    ];
    for (name, help, value) in families {
        let mut f = family(out, name, help);
        for r in records {
            if let Some(v) = value(r) {
                f.sample(name, &labels(r), v);
            }
        }
    }
    let name = "etcd_rescue_backup_verdict";
    let mut f = family(out, name, "The backup's verdict, as the label (value always 1).");
    for r in records {
        let mut l = labels(r);
        l.push(("verdict", r.verdict.word()));
        f.sample(name, &l, 1.0);
    }
}

fn labels(r: &VerifyRecord) -> Vec<(&str, &str)> {
    vec![
        ("backup", r.file.as_str()),
        ("series", r.series.as_str()),
        ("kind", r.kind.as_str()),
    ]
}

/// The per-series families.
fn series(out: &mut String, records: &[VerifyRecord], failures: &[SeriesFailure], now: i64) {
    let mut by: BTreeMap<&str, Vec<&VerifyRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind != "other") {
        by.entry(r.series.as_str()).or_default().push(r);
    }
    let newest = |rs: &Vec<&VerifyRecord>| -> Option<(i64, Option<i64>)> {
        rs.iter()
            .filter(|r| good(r) && r.kind != "delta-snapshot")
            .filter_map(|r| r.taken.map(|t| (t, r.revision)))
            .max_by_key(|(t, _)| *t)
    };
    let mut f = family(out, "etcd_rescue_series_backups", "Backups found in the series.");
    for (s, rs) in &by {
        f.sample("etcd_rescue_series_backups", &[("series", s)], rs.len() as f64);
    }
    let mut f = family(
        out,
        "etcd_rescue_series_failed_backups",
        "Backups of the series that are not good.",
    );
    for (s, rs) in &by {
        let n = rs.iter().filter(|r| !good(r)).count();
        f.sample("etcd_rescue_series_failed_backups", &[("series", s)], n as f64);
    }
    let mut f = family(
        out,
        "etcd_rescue_series_policy_ok",
        "1 when the series met --max-age and --expect-growth.",
    );
    for s in by.keys() {
        let ok = !failures.iter().any(|x| x.series == *s);
        f.sample(
            "etcd_rescue_series_policy_ok",
            &[("series", s)],
            f64::from(u8::from(ok)),
        );
    }
    type Pick = fn(i64, Option<i64>, i64) -> Option<f64>;
    let picks: [(&str, &str, Pick); 3] = [
        (
            "etcd_rescue_series_newest_good_backup_timestamp_seconds",
            "When the newest good full backup of the series was taken (absent: none is good).",
            |t, _, _| Some(t as f64),
        ),
        (
            "etcd_rescue_series_newest_good_backup_age_seconds",
            "Age of the newest good full backup of the series at the end of the run.",
            |t, _, now| Some((now - t).max(0) as f64),
        ),
        (
            "etcd_rescue_series_newest_good_backup_revision",
            "Head revision of the newest good full backup of the series.",
            |_, rev, _| rev.map(|v| v as f64),
        ),
    ];
    for (name, help, pick) in picks {
        let mut f = family(out, name, help);
        for (s, rs) in &by {
            if let Some(v) = newest(rs).and_then(|(t, rev)| pick(t, rev, now)) {
                f.sample(name, &[("series", s)], v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
