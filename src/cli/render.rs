//! Rendering helpers shared by commands: tables, sizes, JSON.

use std::io::Write;

use base64::Engine;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use crate::report::Finding;

/// A table with our house style (ASCII borders, wrapping on a terminal).
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !header.is_empty() {
        t.set_header(header.iter().copied());
    }
    t
}

/// A two-column FIELD/VALUE table from pairs.
pub fn fields(rows: &[(String, String)]) -> Table {
    let mut t = table(&[]);
    for (k, v) in rows {
        t.add_row(vec![k.as_str(), v.as_str()]);
    }
    t
}

/// Bytes in SI units as etcdutl prints them ("25 kB", "1.1 GB").
pub fn human_bytes(n: u64) -> String {
    // go-humanize's Bytes, which etcdutl prints: rounded to one decimal
    // first, then one decimal below 10 and none from 10 on.
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let v = (n as f64 / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[e])
    } else {
        format!("{v:.0} {}", UNITS[e])
    }
}

/// Writes `v` as pretty JSON and a newline.
pub fn json<T: Serialize>(out: &mut dyn Write, v: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Writes `v` as compact JSON on one line.
pub fn json_line<T: Serialize>(out: &mut dyn Write, v: &T) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Bytes as text when they are UTF-8, else as base64 (marked).
pub fn bytes_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(b)),
    }
}

/// Inserts `b` into a JSON object as `name` (UTF-8 text) or `name_base64`.
pub fn put_bytes(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => obj.insert(name.to_string(), s.into()),
        Err(_) => obj.insert(
            format!("{name}_base64"),
            base64::engine::general_purpose::STANDARD.encode(b).into(),
        ),
    };
}

/// Shortens text for a table cell.
pub fn preview(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}

/// A table of findings.
/// A FILE column appears when any finding names a file (a data dir check).
pub fn findings_table(items: &[Finding]) -> Table {
    let with_file = items.iter().any(|f| f.file.is_some());
    let mut header = vec!["SEVERITY", "CODE"];
    if with_file {
        header.push("FILE");
    }
    header.extend(["PAGE", "OFFSET", "WHAT IS WRONG"]);
    let mut t = table(&header);
    for f in items {
        let mut row = vec![f.severity.to_string(), f.code.to_string()];
        if with_file {
            row.push(f.file.clone().unwrap_or_default());
        }
        row.extend([
            f.page.map(|p| p.to_string()).unwrap_or_default(),
            f.offset.map(|o| o.to_string()).unwrap_or_default(),
            f.message.clone(),
        ]);
        t.add_row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_like_etcdutl() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(20480), "20 kB");
        assert_eq!(human_bytes(1_100_000_000), "1.1 GB");
        assert_eq!(human_bytes(999), "999 B");
    }
}
