//! Backup series and times: which files belong to one backup job, when each
//! was taken (from a timestamp in its name, else its modification time), and
//! durations for policies.
//!
//! A series is a directory plus a file name whose timestamp is replaced by
//! `*`: `etcd-snapshot-node1-1700000000.zip` and
//! `etcd-snapshot-node1-1700003600.zip` are one series; `...-node2-...` another.

use std::path::Path;

/// A timestamp run in a file name: where it is and, when it parses, the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    start: usize,
    end: usize,
    unix: Option<i64>,
}

fn is_stamp_char(c: u8) -> bool {
    c.is_ascii_digit() || matches!(c, b'-' | b'_' | b':' | b'T' | b'.')
}

/// Finds the first run that starts with a digit after a non-alphanumeric
/// character (or the start), ends with a digit, holds at least 6 digits, and
/// contains only digits and date separators.
fn find_stamp(name: &str) -> Option<Stamp> {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut j = i;
        while j < b.len() && is_stamp_char(b[j]) {
            if b[j].is_ascii_digit() {
                end = j + 1;
            }
            j += 1;
        }
        let run = &name[i..end];
        let digits = run.bytes().filter(u8::is_ascii_digit).count();
        if digits >= 6 {
            return Some(Stamp {
                start: i,
                end,
                unix: parse_time(run),
            });
        }
        i = j.max(i + 1);
    }
    None
}

/// Parses a timestamp taken from a file name: Unix seconds (10 digits) or
/// milliseconds (13), or a UTC date-time `YYYY-MM-DD[T_-]HH[:-]MM[:-]SS` in
/// any separators (or none).
pub fn parse_time(run: &str) -> Option<i64> {
    if run.bytes().all(|c| c.is_ascii_digit()) {
        match run.len() {
            10 => return run.parse().ok(),
            13 => return run.parse::<i64>().ok().map(|ms| ms / 1000),
            _ => {}
        }
    }
    let digits: String = run.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return None;
    }
    let n = |a: usize, b: usize| digits.get(a..b).and_then(|s| s.parse::<i64>().ok());
    let (y, mo, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (h, mi, s) = (
        n(8, 10).unwrap_or(0),
        n(10, 12).unwrap_or(0),
        n(12, 14).unwrap_or(0),
    );
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 in UTC (`2024-01-02T03:04:05Z`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Compression suffixes left out of a series name: a job that starts
/// compressing its snapshots is still the same series.
const COMPRESSION_SUFFIXES: [&str; 4] = [".gz", ".zst", ".zstd", ".zip"];

/// The series a file belongs to, and the time in its name if it has one.
pub fn series_of(path: &Path) -> (String, Option<i64>) {
    let dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let mut name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(g) = super::gardener::parse(&name) {
        return (super::gardener::series(&dir, &g), Some(g.created));
    }
    while let Some(stripped) = COMPRESSION_SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) {
        name = stripped.to_string();
    }
    let (dir, dir_time) = undated(&dir);
    match find_stamp(&name) {
        Some(s) => (
            format!("{}/{}*{}", dir, &name[..s.start], &name[s.end..]),
            s.unix.or(dir_time),
        ),
        None => (format!("{dir}/{name}"), dir_time),
    }
}

/// Whether `p` is a number of `width` digits within `lo..=hi`.
fn is_num(p: &str, width: usize, lo: u32, hi: u32) -> bool {
    p.len() == width
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n))
}

/// A dir with its dated components replaced by `*` (a `YYYY/MM[/DD[/HH]]`
/// run, a timestamp in a component: `2026-12-04`, `backup-1700000000`),
/// so that dated prefixes of one job are one series; and the time they give.
fn undated(dir: &str) -> (String, Option<i64>) {
    let parts: Vec<&str> = dir.split('/').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let mut time = None;
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        if is_num(p, 4, 1970, 9999) && parts.get(i + 1).is_some_and(|m| is_num(m, 2, 1, 12)) {
            let mut run = format!("{p}{}", parts[i + 1]);
            let mut j = i + 2;
            match parts.get(j).filter(|d| is_num(d, 2, 1, 31)) {
                Some(d) => {
                    run.push_str(d);
                    j += 1;
                    if let Some(h) = parts.get(j).filter(|h| is_num(h, 2, 0, 23)) {
                        run.push_str(h);
                        j += 1;
                    }
                }
                None => run.push_str("01"),
            }
            time = parse_time(&run);
            out.extend(std::iter::repeat_n("*".to_string(), j - i));
            i = j;
            continue;
        }
        match find_stamp(p) {
            Some(s) if s.unix.is_some() => {
                time = s.unix;
                out.push(format!("{}*{}", &p[..s.start], &p[s.end..]));
            }
            _ => out.push(p.to_string()),
        }
        i += 1;
    }
    (out.join("/"), time)
}

/// Parses a duration like `90s`, `15m`, `36h`, `7d`, `2w` or `1d12h`.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let mut total: u64 = 0;
    let mut num = String::new();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => {
                return Err(format!(
                    "unknown unit {c:?} in duration {s:?} (use s, m, h, d or w)"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("a number must come before {c:?} in {s:?}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!("duration {s:?} needs a unit (s, m, h, d or w)"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_prefixes_are_one_series() {
        let (a, ta) = series_of(Path::new("s3://b/prod/2026/12/03/etcd-snapshot.db"));
        let (b, tb) = series_of(Path::new("s3://b/prod/2026/12/04/etcd-snapshot.db"));
        assert_eq!(a, "s3://b/prod/*/*/*/etcd-snapshot.db");
        assert_eq!(a, b);
        assert_eq!(tb.unwrap() - ta.unwrap(), 86_400);
        let (c, tc) = series_of(Path::new("/backups/prod/backup-2026-12-04T03-00-00/db"));
        assert_eq!(
            (c.as_str(), tc),
            ("/backups/prod/backup-*/db", parse_time("2026-12-04T03-00-00"))
        );
        // The name's time wins over the dir's.
        let (d, td) = series_of(Path::new("/b/2026-12-01/etcd-snapshot-n1-1700000000"));
        assert_eq!((d.as_str(), td), ("/b/*/etcd-snapshot-n1-*", Some(1_700_000_000)));
        // Not dates: left alone.
        assert_eq!(
            series_of(Path::new("/b/v2/node-123456/x.db")).0,
            "/b/v2/node-123456/x.db"
        );
        assert_eq!(series_of(Path::new("/b/2026/13/x.db")).0, "/b/2026/13/x.db");
    }

    #[test]
    fn series_and_times_from_names() {
        let (s1, t1) = series_of(Path::new("/b/etcd-snapshot-node1-1700000000.zip"));
        let (s2, t2) = series_of(Path::new("/b/etcd-snapshot-node1-1700003600.zip"));
        let (s3, _) = series_of(Path::new("/b/etcd-snapshot-node2-1700003600.zip"));
        assert_eq!(s1, "/b/etcd-snapshot-node1-*");
        assert_eq!(s1, s2);
        assert_eq!(series_of(Path::new("/b/etcd-snapshot-node1-1700007200")).0, s1);
        assert_ne!(s1, s3);
        assert_eq!(t1, Some(1_700_000_000));
        assert_eq!(t2, Some(1_700_003_600));
        let (s, t) = series_of(Path::new("/b/snapshot-2024-01-02T03-04-05.db"));
        assert_eq!(s, "/b/snapshot-*.db");
        assert_eq!(t.map(rfc3339).as_deref(), Some("2024-01-02T03:04:05Z"));
        let (s, t) = series_of(Path::new("/b/backup.db"));
        assert_eq!((s.as_str(), t), ("/b/backup.db", None));
        assert_eq!(
            parse_time("20240102030405").map(rfc3339).as_deref(),
            Some("2024-01-02T03:04:05Z")
        );
        assert_eq!(parse_time("1700000000123"), Some(1_700_000_000));
        assert_eq!(parse_time("123456"), None);
    }

    #[test]
    fn rfc3339_round_trip() {
        for t in [
            0,
            86399,
            951_782_400, /* 2000-02-29 */
            1_700_000_000,
            4_102_444_800,
        ] {
            let s = rfc3339(t);
            assert_eq!(parse_time(&s[..19]), Some(t), "{s}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("36h"), Ok(36 * 3600));
        assert_eq!(parse_duration("1d12h"), Ok(36 * 3600));
        assert_eq!(parse_duration("2w"), Ok(14 * 86400));
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("3y").is_err());
        assert!(parse_duration("").is_err());
    }
}
