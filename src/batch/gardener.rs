//! gardener's etcd-backup-restore layout: full snapshots and delta
//! (incremental) snapshots under `<prefix>/v2/` (`<prefix>/v1/Backup-<unix>/`
//! in the old layout), named
//! `Full-<start:08>-<last:08>-<unix>[.gz|.Z|.zlib][.final]` and
//! `Incr-<start:08>-<last:08>-<unix>[.gz|.Z|.zlib]`.
//!
//! A full snapshot is an etcd snapshot (with its sha256 trailer) and is
//! judged like any. A delta snapshot is a JSON array of watch events
//! (`{"etcdEvent": mvccpb.Event, "time": ...}`) followed by the raw sha256
//! of that JSON; gardener's restore checks the hash, replays the events
//! one revision per transaction, and requires the last one to be at the
//! name's last revision. [`verify_delta`] checks exactly that much.

use std::io::Read;
use std::path::Path;

/// A name in gardener's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name {
    /// `Incr` rather than `Full`.
    pub delta: bool,
    /// The first revision held (0 for a full snapshot).
    pub start: i64,
    /// The last revision held.
    pub last: i64,
    /// When it was taken (Unix seconds).
    pub created: i64,
    /// The compression, by suffix: `""`, `gz`, `Z` (lzw) or `zlib`.
    pub compression: &'static str,
    /// A full snapshot taken as the member stopped (`.final`).
    pub last_one: bool,
}

/// Parses a file name in gardener's layout.
pub fn parse(name: &str) -> Option<Name> {
    let (delta, rest) = match name.split_once('-')? {
        ("Full", r) => (false, r),
        ("Incr", r) => (true, r),
        _ => return None,
    };
    let mut parts = rest.splitn(3, '-');
    let (start, last, tail) = (parts.next()?, parts.next()?, parts.next()?);
    let num = |s: &str| {
        (s.len() >= 8 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let (start, last) = (num(start)?, num(last)?);
    let mut dots = tail.split('.');
    let created = dots.next()?.parse::<i64>().ok()?;
    let mut compression = "";
    let mut last_one = false;
    for d in dots {
        match d {
            "gz" if compression.is_empty() && !last_one => compression = "gz",
            "Z" if compression.is_empty() && !last_one => compression = "Z",
            "zlib" if compression.is_empty() && !last_one => compression = "zlib",
            "final" if !last_one && !delta => last_one = true,
            _ => return None,
        }
    }
    (start <= last).then_some(Name {
        delta,
        start,
        last,
        created,
        compression,
        last_one,
    })
}

/// The series of a gardener snapshot: the store prefix (above `v1/Backup-N`
/// or at `v2`) and the kind, full and delta snapshots apart (a delta is not
/// a backup on its own).
pub fn series(dir: &str, n: &Name) -> String {
    let dir = match dir.rsplit_once('/') {
        Some((up, last)) if last.starts_with("Backup-") => up,
        _ => dir,
    };
    format!("{dir}/{}-*", if n.delta { "Incr" } else { "Full" })
}

/// What a delta snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    /// Watch events.
    pub events: u64,
    /// The lowest and highest mod revision of its events.
    pub revisions: Option<(i64, i64)>,
    /// Why gardener's restore would refuse it; `None` when it would apply it.
    pub problem: Option<String>,
    /// The problem is that it cannot be read at all (not damage found in it).
    pub unreadable: bool,
}

impl Delta {
    fn bad(why: String, unreadable: bool) -> Delta {
        Delta {
            events: 0,
            revisions: None,
            problem: Some(why),
            unreadable,
        }
    }
}

/// Checks a delta snapshot file as gardener's restore would: unpacks it by
/// its suffix (no more than `max` bytes), checks the sha256 after the JSON,
/// reads the events, and compares their revisions with the name's.
pub fn verify_delta(path: &Path, n: &Name, max: u64) -> Delta {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Delta::bad(e.to_string(), true),
    };
    let mut reader: Box<dyn Read> = match n.compression {
        "" => Box::new(file),
        "gz" => Box::new(flate2::read::MultiGzDecoder::new(file)),
        "zlib" => Box::new(flate2::read::ZlibDecoder::new(file)),
        _ => {
            return Delta::bad(
                "lzw-compressed (.Z) delta snapshots are not read by etcd-rescue: recognised, not verified"
                    .into(),
                true,
            );
        }
    };
    let mut data = Vec::new();
    if let Err(e) = reader.by_ref().take(max.saturating_add(1)).read_to_end(&mut data) {
        return Delta::bad(
            format!("cannot be unpacked ({} by its suffix): {e}", n.compression),
            false,
        );
    }
    if data.len() as u64 > max {
        return Delta::bad(
            format!("unpacks to more than {max} bytes (--max-decompressed)"),
            true,
        );
    }
    if data.len() <= 32 {
        return Delta::bad(
            format!("{} bytes: too short to hold events and their sha256", data.len()),
            false,
        );
    }
    let (json, hash) = data.split_at(data.len() - 32);
    if crate::mvcc::trailer::sha256(json)[..] != hash[..] {
        return Delta::bad(
            "the sha256 after the events does not match them: gardener's restore refuses it".into(),
            false,
        );
    }
    events(json, n)
}

/// The events of a delta's JSON, against its name.
fn events(json: &[u8], n: &Name) -> Delta {
    let list: Vec<serde_json::Value> = match serde_json::from_slice(json) {
        Ok(l) => l,
        Err(e) => return Delta::bad(format!("the events are not a JSON array of events: {e}"), false),
    };
    let mut revisions: Option<(i64, i64)> = None;
    for (i, ev) in list.iter().enumerate() {
        let Some(rev) = ev
            .pointer("/etcdEvent/kv/mod_revision")
            .and_then(serde_json::Value::as_i64)
        else {
            return Delta::bad(format!("event {i} has no etcdEvent.kv.mod_revision"), false);
        };
        revisions = Some(revisions.map_or((rev, rev), |(lo, hi)| (lo.min(rev), hi.max(rev))));
    }
    let problem = match revisions {
        Some((lo, hi)) if lo < n.start || hi != n.last => Some(format!(
            "its events span revisions {lo}..{hi} where its name says {}..{}: gardener's restore would stop at {hi}",
            n.start, n.last
        )),
        None => Some("holds no events".into()),
        _ => None,
    };
    Delta {
        events: list.len() as u64,
        revisions,
        problem,
        unreadable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_gardener_writes_them() {
        let n = parse("Full-00000000-00001234-1700000000.gz.final").unwrap();
        assert_eq!(
            (n.delta, n.start, n.last, n.created, n.compression, n.last_one),
            (false, 0, 1234, 1700000000, "gz", true)
        );
        let n = parse("Incr-00001235-00001300-1700000100").unwrap();
        assert!(n.delta && n.compression.is_empty() && !n.last_one);
        assert!(parse("Incr-00000001-00000002-1700000000.final").is_none());
        assert!(parse("Full-00000009-00000002-1700000000").is_none());
        assert!(parse("Full-1-2-3").is_none());
        assert!(parse("Full-00000000-00000002-1700000000.lz4").is_none());
        assert_eq!(
            series(
                "s3://b/shoot/v1/Backup-1700000000",
                &parse("Incr-00000001-00000002-1").unwrap()
            ),
            "s3://b/shoot/v1/Incr-*"
        );
    }

    fn delta(events: &str) -> Vec<u8> {
        let mut d = events.as_bytes().to_vec();
        d.extend_from_slice(&crate::mvcc::trailer::sha256(events.as_bytes()));
        d
    }

    #[test]
    fn deltas_are_checked_as_gardener_restores_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d");
        let n = parse("Incr-00000010-00000011-1700000000").unwrap();
        let ev = r#"[{"etcdEvent":{"kv":{"key":"YQ==","mod_revision":10}},"time":"2023-11-14T22:13:20Z"},{"etcdEvent":{"type":1,"kv":{"key":"YQ==","mod_revision":11}},"time":"2023-11-14T22:13:21Z"}]"#;
        std::fs::write(&p, delta(ev)).unwrap();
        let d = verify_delta(&p, &n, 1 << 20);
        assert_eq!((d.events, d.revisions, d.problem), (2, Some((10, 11)), None));
        let mut bad = delta(ev);
        bad[5] ^= 1;
        std::fs::write(&p, bad).unwrap();
        assert!(verify_delta(&p, &n, 1 << 20).problem.unwrap().contains("sha256"));
        std::fs::write(&p, delta(&ev.replace("11}", "12}"))).unwrap();
        assert!(verify_delta(&p, &n, 1 << 20).problem.unwrap().contains("10..12"));
    }
}
