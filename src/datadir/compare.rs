//! Several member dirs side by side (`inspect m1 m2 m3`): do they belong to
//! one cluster, and which one holds the most recent committed data.
//!
//! raft never lets two members commit different entries at the same index,
//! so the member that can give back the highest committed index holds the
//! most recent committed data. What a member can give back is its db plus
//! the committed part of a WAL etcd can read, or its db alone when the WAL
//! is unusable.

use std::collections::BTreeMap;

use super::MemberReport;
use super::verdict::EtcdOutcome;
use crate::report::{Finding, Severity};
use crate::wal::{Index, Term};

/// The member with the most recent committed data.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MostRecent {
    /// The paths, when several hold the same.
    pub paths: Vec<String>,
    /// Committed index.
    pub index: Index,
    /// Its term, when known.
    pub term: Option<Term>,
    /// Whether etcd starts on (the first of) them as they are.
    pub starts: bool,
}

/// The comparison.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Who holds the most recent committed data.
    pub most_recent: Option<MostRecent>,
    /// The member to start from: the most recent one etcd starts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_startable: Option<MostRecent>,
    /// Sentences for people.
    pub statements: Vec<String>,
    /// Problems across members.
    pub findings: Vec<Finding>,
}

fn best(reports: &[&MemberReport]) -> Option<MostRecent> {
    let key = |r: &MemberReport| (r.verdict.recoverable.index, r.verdict.recoverable.term);
    let top = reports
        .iter()
        .filter_map(|r| r.verdict.recoverable.index.map(|_| key(r)))
        .max()?;
    let paths: Vec<String> = reports
        .iter()
        .filter(|r| key(r) == top)
        .map(|r| r.path.clone())
        .collect();
    let starts = reports
        .iter()
        .filter(|r| key(r) == top)
        .any(|r| r.verdict.outcome == EtcdOutcome::Starts);
    Some(MostRecent {
        paths,
        index: top.0?,
        term: top.1,
        starts,
    })
}

fn names(p: &[String]) -> String {
    match p {
        [one] => one.clone(),
        _ => p.join(" and "),
    }
}

/// Compares member reports.
pub fn compare(reports: &[MemberReport]) -> Comparison {
    let all: Vec<&MemberReport> = reports.iter().collect();
    let mut c = Comparison {
        most_recent: best(&all),
        best_startable: None,
        statements: Vec::new(),
        findings: Vec::new(),
    };
    let mut clusters: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut members: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in reports {
        if let Some(m) = r.wal.as_ref().and_then(|w| w.metadata) {
            clusters.entry(m.cluster_id.0).or_default().push(r.path.clone());
            members.entry(m.node_id.0).or_default().push(r.path.clone());
        }
    }
    if clusters.len() > 1 {
        let desc: Vec<String> = clusters
            .iter()
            .map(|(id, p)| format!("{} in cluster {id:x}", names(p)))
            .collect();
        let msg = format!(
            "the WALs belong to {} different clusters: {}",
            clusters.len(),
            desc.join("; ")
        );
        c.statements.push(msg.clone());
        c.findings
            .push(Finding::new(Severity::Error, "cluster-id-mismatch", msg));
    }
    for (id, p) in &members {
        if p.len() > 1 {
            let msg = format!(
                "{} hold the WAL of the same member {id:x}: copies of one member, not different members",
                names(p)
            );
            c.statements.push(msg.clone());
            c.findings
                .push(Finding::new(Severity::Warning, "duplicate-member", msg));
        }
    }
    if let Some(m) = &c.most_recent {
        c.statements.push(format!(
            "{} {} the most recent committed data: index {}{}{}",
            names(&m.paths),
            if m.paths.len() == 1 { "holds" } else { "hold" },
            m.index,
            m.term.map(|t| format!(" (term {t})")).unwrap_or_default(),
            if m.starts {
                ""
            } else {
                ", but etcd does not start on it as it is (see its verdict)"
            }
        ));
        if !m.starts {
            let startable: Vec<&MemberReport> = reports
                .iter()
                .filter(|r| r.verdict.outcome == EtcdOutcome::Starts)
                .collect();
            c.best_startable = best(&startable);
            if let Some(b) = &c.best_startable {
                c.statements.push(format!(
                    "the most recent member etcd starts on is {}: index {}{}",
                    names(&b.paths),
                    b.index,
                    b.term.map(|t| format!(" (term {t})")).unwrap_or_default()
                ));
            }
        }
    } else {
        c.statements
            .push("no member holds readable committed data".into());
    }
    c
}
