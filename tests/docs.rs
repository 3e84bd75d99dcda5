//! `docs/findings.md` says, for every finding code the source can report,
//! what it means and what etcd does with it.

mod common;

use std::collections::BTreeSet;

use common::*;

/// Whether `s` looks like a finding code (`kebab-case`, two words or more).
fn is_code(s: &str) -> bool {
    s.contains('-')
        && s.split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && s.as_bytes()[0].is_ascii_lowercase()
}

/// The string literal starting at or after `from` in `text`, if one starts
/// within `within` bytes.
fn next_literal(text: &str, from: usize, within: usize) -> Option<&str> {
    let rest = &text[from..text.len().min(from + within)];
    let a = rest.find('"')?;
    let b = rest[a + 1..].find('"')?;
    Some(&rest[a + 1..a + 1 + b])
}

/// Every code the source reports: the literal after a severity, or after a
/// call that reports one (`refuse`, `lose`), or returned by a `code` function.
fn codes_in_source() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in walk_files(&repo().join("src")) {
        if f.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for pat in [
            "Severity::Error",
            "Severity::Warning",
            "Severity::Info",
            ".refuse(",
            ".lose(",
            "Finding::new(",
            "error_code: Some(",
            "problem = Some((",
            "problem.or(Some((",
            ".then(|| {",
        ] {
            for (at, _) in text.match_indices(pat) {
                if let Some(l) = next_literal(&text, at + pat.len(), 120)
                    && is_code(l)
                {
                    out.insert(l.to_string());
                }
            }
        }
        // `fn code(&self)`, `fn code_of(...)` and `let (code, what) = ...`:
        // every code literal in the function or the expression.
        for pat in ["fn code", "(code, what) ="] {
            for (at, _) in text.match_indices(pat) {
                let body = &text[at..];
                // A function ends at the closing brace of its own indentation.
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let indent = &text[line_start..at];
                let indent = &indent[..indent.len() - indent.trim_start().len()];
                let end = if pat.starts_with("fn") {
                    body.find(&format!("\n{indent}}}"))
                } else {
                    body.find(";\n")
                }
                .unwrap_or(body.len());
                for lit in body[..end].split('"').skip(1).step_by(2) {
                    if is_code(lit) {
                        out.insert(lit.to_string());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_code_is_documented_with_what_etcd_does() {
    let doc = std::fs::read_to_string(repo().join("docs/findings.md")).unwrap();
    let mut documented = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cols: Vec<&str> = line.split(" | ").collect();
        assert_eq!(
            cols.len(),
            4,
            "a row needs code, severity, meaning and what etcd does: {line}"
        );
        assert!(cols[3].trim_end_matches(" |").len() > 5, "{line}");
        let code = cols[0].trim_start_matches("| `").trim_end_matches('`');
        documented.insert(code.to_string());
    }
    let source = codes_in_source();
    assert!(
        source.len() > 80,
        "the scan found only {} codes: {source:?}",
        source.len()
    );
    let missing: Vec<&String> = source.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "codes reported but not in docs/findings.md: {missing:?}"
    );
    let stale: Vec<&String> = documented.difference(&source).collect();
    assert!(
        stale.is_empty(),
        "codes in docs/findings.md the source never reports: {stale:?}"
    );
}
