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

/// Inserts `b` into a JSON object as `name` (UTF-8 text) or `nameBase64`.
pub fn put_bytes(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, b: &[u8]) {
    put_text_or_base64(obj, name, &format!("{name}Base64"), b);
}

/// [`put_bytes`] in the snake_case of etcdctl's names (`name_base64`), for
/// `get -o lines`, whose other fields are etcdctl's.
pub fn put_bytes_snake(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, b: &[u8]) {
    put_text_or_base64(obj, name, &format!("{name}_base64"), b);
}

fn put_text_or_base64(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    text: &str,
    base64: &str,
    b: &[u8],
) {
    match std::str::from_utf8(b) {
        Ok(s) => obj.insert(text.to_string(), s.into()),
        Err(_) => obj.insert(
            base64.to_string(),
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

/// `bytes` as Go's `%q` prints a string (strconv.Quote), which etcdctl's
/// `-w fields` uses for keys and values: printable UTF-8 as is, `"` and `\`
/// escaped, the C escapes, `\xNN` for bytes that are not UTF-8 or are ASCII
/// controls, `\uNNNN`/`\UNNNNNNNN` for characters Go does not print.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            go_quote_char(&mut s, c);
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}

fn go_quote_char(s: &mut String, c: char) {
    match c {
        '"' => s.push_str("\\\""),
        '\\' => s.push_str("\\\\"),
        '\x07' => s.push_str("\\a"),
        '\x08' => s.push_str("\\b"),
        '\x0c' => s.push_str("\\f"),
        '\n' => s.push_str("\\n"),
        '\r' => s.push_str("\\r"),
        '\t' => s.push_str("\\t"),
        '\x0b' => s.push_str("\\v"),
        // Go writes the other C0 controls as \xNN, but DEL as \u007f.
        c if c < ' ' => s.push_str(&format!("\\x{:02x}", c as u32)),
        c if go_prints(c) => s.push(c),
        c if (c as u32) < 0x10000 => s.push_str(&format!("\\u{:04x}", c as u32)),
        c => s.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `unicode.IsPrint` for a non-ASCII-control character, without
/// Unicode's tables: controls, spaces other than U+0020, format
/// characters, private use and noncharacters are not printed. (Unassigned
/// code points, which Go also escapes, are printed as they are.)
fn go_prints(c: char) -> bool {
    let u = c as u32;
    let format_chars = matches!(
        u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
            | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
            | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
    );
    let private_or_non =
        matches!(u, 0xe000..=0xf8ff | 0xf0000..) || (u & 0xfffe) == 0xfffe || (0xfdd0..=0xfdef).contains(&u);
    !(c.is_control() || (c.is_whitespace() && c != ' ') || format_chars || private_or_non)
}

/// A table as etcdctl prints it (olekukonko/tablewriter with right-aligned
/// cells): upper-case header centred, `+---+` rules, one space of padding.
pub fn etcdctl_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule = widths
        .iter()
        .fold("+".to_string(), |acc, w| format!("{acc}{}+", "-".repeat(w + 2)));
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .fold("|".to_string(), |acc, c| format!("{acc} {c} |"))
    };
    let head = header
        .iter()
        .zip(&widths)
        .map(|(h, w)| {
            let h = h.to_uppercase();
            let pad = w - h.chars().count();
            // tablewriter centres with the odd space on the right.
            format!("{}{h}{}", " ".repeat(pad / 2), " ".repeat(pad - pad / 2))
        })
        .collect();
    let mut out = format!("{rule}\n{}\n{rule}\n", line(head));
    for r in rows {
        let cells = r.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        out.push_str(&line(cells));
        out.push('\n');
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_etcdutl() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(20480), "20 kB");
        assert_eq!(human_bytes(1_100_000_000), "1.1 GB");
        assert_eq!(human_bytes(999), "999 B");
    }

    #[test]
    fn go_quote_matches_strconv_quote() {
        // Compared with etcdctl 3.5.1's `get -w fields` on the same value.
        let v = b"a\x01\xff\xc3\xa9 \xc2\xa0\xe2\x80\x8b\"\\\t";
        assert_eq!(go_quote(v), r#""a\x01\xffé \u00a0\u200b\"\\\t""#);
        assert_eq!(go_quote(b"\x7f\n\xf3\xb0\x80\x80"), r#""\u007f\n\U000f0000""#);
    }

    #[test]
    fn etcdctl_table_matches_tablewriter() {
        // etcdctl 3.5.1 `endpoint hashkv -w table` with two endpoints.
        let t = etcdctl_table(
            &["endpoint", "hash"],
            &[
                vec!["127.0.0.1:23791".into(), "3960050184".into()],
                vec!["http://127.0.0.1:23791".into(), "3960050184".into()],
            ],
        );
        let want = "\
+------------------------+------------+
|        ENDPOINT        |    HASH    |
+------------------------+------------+
|        127.0.0.1:23791 | 3960050184 |
| http://127.0.0.1:23791 | 3960050184 |
+------------------------+------------+
";
        assert_eq!(t, want);
    }
}
