//! JSON values as YAML the way `kubectl get -o yaml` prints them (go-yaml v2
//! through sigs.k8s.io/yaml): keys in go-yaml's order (digit runs compared
//! as numbers), block sequences not indented under their key, strings plain
//! when they read back as strings, double-quoted when they would read back
//! as another type (`"true"`, `"1"`, timestamps), single-quoted when they
//! hold YAML indicators, and literal blocks (`|`) for multi-line text.
//!
//! Known difference: go-yaml folds long plain strings at 80 columns; we keep
//! them on one line (the same value when read back).

use std::cmp::Ordering;
use std::fmt::Write;

use serde_json::Value;

/// Renders `v` as a YAML document (no leading `---`).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, v, 0),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, v, 0),
        _ => {
            out.push_str(&scalar(v, 0));
            out.push('\n');
        }
    }
    out
}

/// `v` as `kubectl get -o json` prints it: kubectl reads objects
/// unstructured, so Go's encoding/json sorts every map's keys (bytewise),
/// indents by four spaces and escapes `<`, `>`, `&`, U+2028 and U+2029.
pub fn kubectl_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&sorted(v), &mut ser).expect("a JSON value serializes");
    let text = String::from_utf8(buf).expect("serde_json writes UTF-8");
    // These characters only occur inside strings.
    let mut out = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    out.push('\n');
    out
}

/// go-yaml v2's key order: letters after other characters, runs of digits
/// compared by value.
pub fn key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn mapping(out: &mut String, v: &Value, ind: usize) {
    let Value::Object(m) = v else { return };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| key_cmp(a, b));
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push_str(&string(k, ind, true));
        out.push(':');
        let val = &m[k];
        match val {
            Value::Object(_) if is_block(val) => {
                out.push('\n');
                indent(out, ind + 2);
                mapping(out, val, ind + 2);
            }
            Value::Array(_) if is_block(val) => {
                out.push('\n');
                indent(out, ind);
                sequence(out, val, ind);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(val, ind));
                out.push('\n');
            }
        }
    }
}

fn sequence(out: &mut String, v: &Value, ind: usize) {
    let Value::Array(a) = v else { return };
    for (i, item) in a.iter().enumerate() {
        if i > 0 {
            indent(out, ind);
        }
        out.push_str("- ");
        match item {
            Value::Object(_) if is_block(item) => mapping(out, item, ind + 2),
            Value::Array(_) if is_block(item) => sequence(out, item, ind + 2),
            _ => {
                out.push_str(&scalar(item, ind + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, ind: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, ind, false),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Whether YAML 1.1 (go-yaml v2) would read `s`, written plain, as
/// something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
        "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf",
        ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<", "=",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let c = s.as_bytes()[0];
    if !(c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.')) {
        return false;
    }
    let plain: String = s.chars().filter(|&ch| ch != '_').collect();
    let body = plain.trim_start_matches(['-', '+']);
    // Integers: decimal, 0x, 0b, 0o / leading-0 octal, base 60 (1:30).
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if let Some(h) = body.strip_prefix("0x") {
        if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return true;
        }
    }
    if let Some(h) = body.strip_prefix("0b") {
        if !h.is_empty() && h.bytes().all(|b| b == b'0' || b == b'1') {
            return true;
        }
    }
    if body.contains(':')
        && body
            .split(':')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    // Floats.
    if plain.parse::<f64>().is_ok()
        && !plain.eq_ignore_ascii_case("inf")
        && !plain.eq_ignore_ascii_case("nan")
    {
        let lower = plain.to_ascii_lowercase();
        if !lower.contains("inf") && !lower.contains("nan") {
            return true;
        }
    }
    // Timestamps: 2006-01-02, 2006-01-02T15:04:05Z and variants.
    let b = s.as_bytes();
    if b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && (b[5].is_ascii_digit())
        && s[5..]
            .split(['-', 'T', 't', ' '])
            .next()
            .is_some_and(|m| m.len() <= 2)
    {
        return true;
    }
    false
}

fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{85}')
        || (' '..='~').contains(&c)
        || ('\u{a0}'..='\u{d7ff}').contains(&c)
        || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
        || c >= '\u{10000}'
}

/// A string scalar in the style go-yaml picks. `key`: a mapping key
/// (never a literal block).
fn string(s: &str, ind: usize, key: bool) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    let all_printable = s.chars().all(printable);
    if !all_printable || (key && s.contains('\n')) {
        return double_quoted(s);
    }
    if s.contains('\n') {
        if let Some(b) = literal(s, ind) {
            return b;
        }
        return double_quoted(s);
    }
    if resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.contains('\t') || s.contains('\r') {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn plain_allowed(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let first = chars[0];
    let last = chars[chars.len() - 1];
    if first == ' ' || last == ' ' || first == '\t' || last == '\t' {
        return false;
    }
    let next_is_space = |i: usize| chars.get(i + 1).is_none_or(|c| *c == ' ' || *c == '\t');
    if matches!(
        first,
        '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`'
    ) {
        return false;
    }
    if matches!(first, '?' | ':' | '-') && next_is_space(0) {
        return false;
    }
    for (i, &c) in chars.iter().enumerate() {
        match c {
            ':' if next_is_space(i) => return false,
            '#' if i > 0 && (chars[i - 1] == ' ' || chars[i - 1] == '\t') => return false,
            ',' | '[' | ']' | '{' | '}' | '?' => {
                // Flow indicators are fine in block context except where they
                // start the scalar (handled above).
            }
            '\t' | '\r' => return false,
            _ => {}
        }
    }
    !s.starts_with("---") && !s.starts_with("...")
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if !printable(c) => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04X}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08X}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block scalar, or `None` where go-yaml would not use one
/// (spaces before a line break, or trailing spaces).
fn literal(s: &str, ind: usize) -> Option<String> {
    if s.contains(" \n") || s.ends_with(' ') || s.contains('\r') || s.contains('\t') && s.contains("\n\t") {
        return None;
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let content_indent = ind + 2;
    let ind_indicator = if s.starts_with(' ') || s.starts_with('\n') {
        "2".to_string()
    } else {
        String::new()
    };
    let mut out = format!("|{ind_indicator}{chomp}");
    let body = if trailing > 0 { &s[..s.len() - 1] } else { s };
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            indent(&mut out, content_indent);
            out.push_str(line);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_like_kubectl() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {}},
            "data": {"a10": "1", "a9": "yes", "script": "echo hi\nexit 0\n", "star": "*", "k": "v: x", "e": ""},
            "list": [{"name": "x", "ports": [80, 443]}, "plain"],
            "empty": [],
            // "n" reads back as a boolean in YAML 1.1: go-yaml quotes it.
            "n": null
        });
        let y = to_string(&v);
        let want = "\
apiVersion: v1
data:
  a9: \"yes\"
  a10: \"1\"
  e: \"\"
  k: 'v: x'
  script: |
    echo hi
    exit 0
  star: '*'
empty: []
kind: ConfigMap
list:
- name: x
  ports:
  - 80
  - 443
- plain
metadata:
  creationTimestamp: \"2024-01-01T00:00:00Z\"
  labels: {}
  name: c
\"n\": null
";
        assert_eq!(y, want);
    }

    #[test]
    fn json_as_kubectl_prints_it() {
        let v = serde_json::json!({"metadata": {"name": "a<b>&"}, "kind": "ConfigMap", "apiVersion": "v1", "data": {"b": "1", "a": "2"}});
        assert_eq!(
            kubectl_json(&v),
            "{\n    \"apiVersion\": \"v1\",\n    \"data\": {\n        \"a\": \"2\",\n        \"b\": \"1\"\n    },\n    \"kind\": \"ConfigMap\",\n    \"metadata\": {\n        \"name\": \"a\\u003cb\\u003e\\u0026\"\n    }\n}\n"
        );
    }

    #[test]
    fn key_order_is_go_yaml_order() {
        let mut k = vec!["b", "a10", "a9", "A", "a.b"];
        k.sort_by(|a, b| key_cmp(a, b));
        assert_eq!(k, vec!["A", "a.b", "a9", "a10", "b"]);
    }
}
