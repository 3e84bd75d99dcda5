//! Policies for cron and CI: the newest good backup of each series must be
//! recent enough (`--max-age`), revisions must keep growing along a series
//! (`--expect-growth`: a backup job that silently saves the same or an older
//! cluster), and snapshots must carry their sha256 trailer (`--require-hash`).

use std::collections::BTreeMap;

use super::VerifyRecord;
use super::series::rfc3339;

/// The policies of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    /// The newest good backup of a series must be younger than this (seconds).
    pub max_age: Option<u64>,
    /// Revisions must strictly increase along each series.
    pub expect_growth: bool,
    /// Every file backup must carry a sha256 trailer.
    pub require_hash: bool,
}

/// A failure that belongs to a series rather than to one backup.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SeriesFailure {
    /// The series.
    pub series: String,
    /// What is wrong.
    pub problem: String,
}

fn age_words(secs: i64) -> String {
    let s = secs.max(0);
    if s >= 2 * 86400 {
        format!("{} days", s / 86400)
    } else if s >= 2 * 3600 {
        format!("{} hours", s / 3600)
    } else {
        format!("{} minutes", s / 60)
    }
}

/// Applies `policy` at time `now`: marks failing records and returns the
/// failures of whole series.
pub fn apply(records: &mut [VerifyRecord], policy: Policy, now: i64) -> Vec<SeriesFailure> {
    let mut failures = Vec::new();
    if policy.require_hash {
        for r in records.iter_mut() {
            if r.verdict.passes() && r.kind != "data-dir" && r.trailer.as_deref() == Some("absent") {
                r.policy.push(
                    "no sha256 trailer (--require-hash): the file cannot be proven to be what etcd sent"
                        .into(),
                );
            }
        }
    }
    // Series, each in the order the backups were taken.
    let mut series: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.kind != "other" {
            series.entry(r.series.clone()).or_default().push(i);
        }
    }
    for (name, mut idx) in series {
        idx.sort_by_key(|&i| (records[i].taken.unwrap_or(i64::MIN), records[i].file.clone()));
        let good: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| records[i].verdict.passes())
            .collect();
        if let Some(max) = policy.max_age {
            match good.last() {
                None => failures.push(SeriesFailure {
                    series: name.clone(),
                    problem: "no good backup at all in this series".into(),
                }),
                Some(&i) => {
                    let taken = records[i].taken.unwrap_or(0);
                    if now - taken > max as i64 {
                        failures.push(SeriesFailure {
                            series: name.clone(),
                            problem: format!(
                                "the newest good backup, {}, was taken {} ago ({}): older than --max-age",
                                records[i].file,
                                age_words(now - taken),
                                rfc3339(taken)
                            ),
                        });
                    }
                }
            }
        }
        if policy.expect_growth {
            for w in good.windows(2) {
                let (a, b) = (&records[w[0]], &records[w[1]]);
                let (ra, rb) = (a.revision.unwrap_or(0), b.revision.unwrap_or(0));
                let why = if rb == ra {
                    Some(format!(
                        "revision did not move since {} (both at {ra}): the backup job may be saving a stale cluster",
                        a.file
                    ))
                } else if rb < ra {
                    Some(format!(
                        "revision went backwards from {ra} ({}) to {rb}: this backup is older than the one before it",
                        a.file
                    ))
                } else {
                    None
                };
                if let Some(why) = why {
                    records[w[1]].policy.push(format!("{why} (--expect-growth)"));
                }
            }
        }
    }
    failures
}
