//! Go's formatting of times and durations, as Kubernetes prints them:
//! `metav1.Time` as RFC 3339 in UTC with seconds, `metav1.MicroTime` with
//! six fraction digits, `metav1.Duration` as Go's `time.Duration.String()`.

/// Civil date (year, month, day) from days since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn ymdhms(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `2006-01-02T15:04:05Z` for Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    format!("{}Z", ymdhms(secs))
}

/// `2006-01-02T15:04:05.000000Z` for Unix seconds and nanoseconds
/// (truncated to microseconds, as Go's formatting does).
pub fn rfc3339_micro(secs: i64, nanos: i64) -> String {
    let secs = secs + nanos.div_euclid(1_000_000_000);
    let nanos = nanos.rem_euclid(1_000_000_000);
    format!("{}.{:06}Z", ymdhms(secs), nanos / 1000)
}

/// Go's `time.Duration(ns).String()`: `1h2m3.5s`, `150ms`, `0s`.
pub fn duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: one unit with a fraction.
        let (unit, div) = if u < 1000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = u / 60_000_000_000 % 60;
        let s = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(s, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// `v / div` with the fraction's trailing zeros removed.
fn frac(v: u64, div: u64) -> String {
    let int = v / div;
    let f = v % div;
    if f == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{f:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_like_go() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_199_149_261), "2008-01-01T01:01:01Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_micro(1_199_149_261, 123_456_789),
            "2008-01-01T01:01:01.123456Z"
        );
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(1), "1ns");
        assert_eq!(duration(1500), "1.5µs");
        assert_eq!(duration(150_000_000), "150ms");
        assert_eq!(duration(1_000_000_000), "1s");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(duration(-90_000_000_000), "-1m30s");
    }
}
