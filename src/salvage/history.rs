//! Making recovered revisions a history etcd's rules accept, and saying
//! what is missing from it.
//!
//! etcd's history has two invariants salvage can test: every main revision
//! from the compaction point to the head has at least one record, and each
//! key's revisions chain (a generation starts with version 1 and
//! create_revision equal to its revision; each later revision has the same
//! create_revision and the next version; a delete ends it). A break in
//! either is evidence of a lost record. etcd answers reads of history it no
//! longer has with "required revision has been compacted", so the output's
//! compaction point is raised to cover every break, and etcd's compaction
//! rule is applied there (per key: keep the newest revision at or below it
//! unless that is a delete; keep everything above it).

use std::collections::{BTreeMap, BTreeSet};

use crate::mvcc::kv::KeyValueRef;
use crate::mvcc::revision::{RevKey, Revision};

/// One revision record.
struct Rec {
    rev: Revision,
    tombstone: bool,
    key: Vec<u8>,
    create: i64,
    version: i64,
    /// Its key in the `key` bucket.
    bucket_key: Vec<u8>,
}

/// A key whose recorded history has a break.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Break {
    /// The user key (lossy UTF-8).
    pub key: String,
    /// The surviving revision right after the break.
    pub revision: i64,
    /// What does not chain.
    pub why: String,
}

/// The outcome for the `key` bucket.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// The records kept, by `key`-bucket key.
    pub kept: BTreeSet<Vec<u8>>,
    /// The output's compaction point (0: none).
    pub compact: i64,
    /// Records dropped by the source's own compaction (stale copies).
    pub dropped_stale: u64,
    /// Records dropped because the compaction point was raised.
    pub dropped_by_raise: u64,
    /// Ranges known lost from page evidence (merged).
    pub lost: Vec<(i64, i64)>,
    /// Main revisions above the source's compaction point (or above the
    /// first one found, when it is unknown) with no record.
    pub gaps: Vec<(i64, i64)>,
    /// Keys whose history breaks.
    pub breaks: Vec<Break>,
}

fn parse(records: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<Rec> {
    records
        .iter()
        .filter_map(|(k, v)| {
            let rk = RevKey::parse(k).ok()?;
            let kv = KeyValueRef::decode(v).ok()?;
            Some(Rec {
                rev: rk.rev,
                tombstone: rk.tombstone,
                key: kv.key.to_vec(),
                create: kv.create_revision,
                version: kv.version,
                bucket_key: k.clone(),
            })
        })
        .collect()
}

/// Indexes of `recs` (in revision order) grouped by user key.
fn by_key(recs: &[Rec], alive: &[bool]) -> BTreeMap<Vec<u8>, Vec<usize>> {
    let mut m: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
    for (i, r) in recs.iter().enumerate().filter(|(i, _)| alive[*i]) {
        m.entry(r.key.clone()).or_default().push(i);
    }
    m
}

/// etcd's compaction at `at`: per key, drop every revision at or below it
/// but the newest, and that one too when it is a delete. Returns how many
/// records it dropped.
fn compact(recs: &[Rec], alive: &mut [bool], at: i64) -> u64 {
    let mut dropped = 0;
    for idx in by_key(recs, alive).values() {
        let below: Vec<usize> = idx.iter().copied().filter(|&i| recs[i].rev.main <= at).collect();
        let Some((&newest, older)) = below.split_last() else {
            continue;
        };
        for &i in older {
            alive[i] = false;
            dropped += 1;
        }
        if recs[newest].tombstone {
            alive[newest] = false;
            dropped += 1;
        }
    }
    dropped
}

/// The breaks in each key's chain above `at` (a first revision at or below
/// it is the one a compaction kept, and may start anywhere).
fn breaks(recs: &[Rec], alive: &[bool], at: i64) -> Vec<Break> {
    let mut out = Vec::new();
    for (key, idx) in by_key(recs, alive) {
        let mut prev: Option<&Rec> = None;
        for &i in &idx {
            let r = &recs[i];
            let why = match prev {
                None if r.rev.main <= at => None,
                None if r.tombstone => Some("a delete with no earlier revision of the key".to_string()),
                None if r.create != r.rev.main || r.version != 1 => Some(format!(
                    "first revision has version {} and create_revision {}: earlier revisions are missing",
                    r.version, r.create
                )),
                None => None,
                Some(p) if p.tombstone && r.tombstone => {
                    Some(format!("deleted again after the delete at {}", p.rev.main))
                }
                Some(p) if p.tombstone && (r.create != r.rev.main || r.version != 1) => Some(format!(
                    "re-created after the delete at {} with version {}: revisions in between are missing",
                    p.rev.main, r.version
                )),
                Some(p)
                    if !p.tombstone
                        && !r.tombstone
                        && (r.create != p.create || r.version != p.version + 1) =>
                {
                    Some(format!(
                        "version {} follows version {} at {}: revisions in between are missing",
                        r.version, p.version, p.rev.main
                    ))
                }
                _ => None,
            };
            if let Some(why) = why {
                out.push(Break {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    revision: r.rev.main,
                    why,
                });
            }
            prev = Some(r);
        }
    }
    out.sort_by_key(|b| b.revision);
    out
}

/// Main revisions above `at` (or above the first one found, when `at` is
/// unknown) that have no record.
fn gaps(recs: &[Rec], alive: &[bool], at: Option<i64>) -> Vec<(i64, i64)> {
    let mains: BTreeSet<i64> = recs
        .iter()
        .zip(alive)
        .filter(|(_, a)| **a)
        .map(|(r, _)| r.rev.main)
        .collect();
    let mut out = Vec::new();
    let mut expect = match at {
        Some(c) if c > 0 => c + 1,
        _ => mains.first().copied().unwrap_or(1),
    };
    for &m in mains.range(expect..) {
        if m > expect {
            out.push((expect, m - 1));
        }
        expect = m + 1;
    }
    out
}

/// Applies the source's compaction, finds the breaks and gaps, raises the
/// compaction point over them and applies it.
/// Sorted, overlapping and adjacent ranges joined.
pub(super) fn merge(ranges: impl IntoIterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = ranges.into_iter().collect();
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(l) if a <= l.1 + 1 => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Applies the source's compaction, finds the breaks and gaps, raises the
/// compaction point over them and over `lost` (ranges other evidence says
/// are lost), and applies it.
pub(super) fn settle(
    records: &BTreeMap<Vec<u8>, Vec<u8>>,
    source_compact: Option<i64>,
    lost: &[(i64, i64)],
) -> Outcome {
    let recs = parse(records);
    let mut alive = vec![true; recs.len()];
    let c0 = source_compact.unwrap_or(0).max(0);
    let dropped_stale = if c0 > 0 { compact(&recs, &mut alive, c0) } else { 0 };
    let gaps = gaps(&recs, &alive, source_compact);
    let found = breaks(&recs, &alive, c0);
    let need = found
        .iter()
        .map(|b| b.revision)
        .chain(gaps.iter().chain(lost).map(|(_, b)| *b))
        .max()
        .unwrap_or(0);
    let c = c0.max(need);
    let dropped_by_raise = if c > c0 { compact(&recs, &mut alive, c) } else { 0 };
    debug_assert!(breaks(&recs, &alive, c).is_empty());
    Outcome {
        kept: recs
            .iter()
            .zip(&alive)
            .filter(|(_, a)| **a)
            .map(|(r, _)| r.bucket_key.clone())
            .collect(),
        compact: c,
        dropped_stale,
        dropped_by_raise,
        lost: merge(lost.iter().copied()),
        gaps,
        breaks: found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::mvccpb::KeyValue;
    use prost::Message;

    fn rec(main: i64, key: &str, create: i64, version: i64, tomb: bool) -> (Vec<u8>, Vec<u8>) {
        let mut k = Revision { main, sub: 0 }.to_key().to_vec();
        if tomb {
            k.push(b't');
        }
        let kv = KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: if tomb { 0 } else { create },
            mod_revision: main,
            version: if tomb { 0 } else { version },
            value: b"v".to_vec(),
            lease: 0,
        };
        (k, kv.encode_to_vec())
    }

    #[test]
    fn a_lost_revision_raises_the_compaction_over_the_break_it_leaves() {
        // a: v1@2, v2@3 (lost), v3@5; b: v1@4; c: put@6, delete@7.
        let m: BTreeMap<_, _> = [
            rec(2, "a", 2, 1, false),
            rec(4, "b", 4, 1, false),
            rec(5, "a", 2, 3, false),
            rec(6, "c", 6, 1, false),
            rec(7, "c", 0, 0, true),
        ]
        .into_iter()
        .collect();
        let o = settle(&m, Some(1), &[]);
        assert_eq!(o.gaps, vec![(3, 3)]);
        assert_eq!(o.breaks.len(), 1);
        assert_eq!(o.breaks[0].revision, 5);
        assert_eq!(o.compact, 5);
        // a keeps 5 only, b keeps 4, c keeps both (above 5).
        assert_eq!(o.kept.len(), 4);
        assert_eq!(o.dropped_by_raise, 1);
    }

    #[test]
    fn an_orphan_delete_is_compacted_away() {
        let m: BTreeMap<_, _> = [rec(2, "a", 2, 1, false), rec(3, "b", 0, 0, true)]
            .into_iter()
            .collect();
        let o = settle(&m, Some(1), &[]);
        assert_eq!(o.compact, 3);
        assert_eq!(o.kept.len(), 1);
        assert!(o.gaps.is_empty());
    }

    #[test]
    fn sound_history_is_left_alone() {
        let m: BTreeMap<_, _> = [rec(5, "a", 2, 4, false), rec(6, "a", 2, 5, false)]
            .into_iter()
            .collect();
        let o = settle(&m, Some(5), &[]);
        assert_eq!(o.compact, 5);
        assert_eq!(o.kept.len(), 2);
        assert!(o.breaks.is_empty() && o.gaps.is_empty());
    }
}
