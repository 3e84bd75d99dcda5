//! `etcd-rescue k8s diff SRC_A [SRC_B]`: the Kubernetes objects added,
//! deleted and changed (field by field) between two backups, or between two
//! revisions of one.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Common, FilterArgs, Source};
use crate::cli::render;
use crate::cli::{EXIT_OK, EXIT_PROBLEMS, Format, show_path};
use crate::k8s::diff::{self, DiffError, DiffOptions, DiffReport, FieldChange, Side};
use crate::k8s::yaml;

/// Arguments of `k8s diff`.
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("source", |a| a.value_name("SRC_A").index(1).help(
        "A: the older backup (a snapshot file, a db file, or an etcd data directory)"
    )),
    mut_arg("rev", |a| a.help("Read A at this revision (default: its newest)").visible_alias("rev-a"))
)]
pub struct K8sDiffArgs {
    #[command(flatten)]
    common: Common,
    /// B: the newer backup. Without it, B is A's source again (compare two
    /// of its revisions with --rev and --rev-b).
    #[arg(value_name = "SRC_B", index = 2)]
    source_b: Option<PathBuf>,
    /// Read B at this revision (default: its newest).
    #[arg(long, value_name = "N")]
    rev_b: Option<i64>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Compare `status` too (left out by default: controllers rewrite it
    /// all the time).
    #[arg(long)]
    include_status: bool,
    /// Print Secret values (`data`, `stringData`, and the
    /// last-applied-configuration annotation) instead of `<redacted, N bytes>`.
    #[arg(long)]
    show_secrets: bool,
}

impl K8sDiffArgs {
    /// Its input paths.
    pub(super) fn inputs_mut(&mut self) -> Vec<&mut PathBuf> {
        std::iter::once(&mut self.common.source)
            .chain(self.source_b.as_mut())
            .collect()
    }
}

/// The JSON document: where A and B come from, and the report.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Doc<'a> {
    source_a: String,
    source_b: String,
    #[serde(flatten)]
    report: &'a DiffReport,
}

/// Runs `k8s diff`.
pub(super) fn run(
    a: &K8sDiffArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    crate::cli::refuse_self_diff(a.source_b.is_some(), a.rev_b.is_some() || a.common.rev.is_some())?;
    let filter = a.filter.filter()?;
    let src_a = Source::open(&a.common, err)?;
    let common_b = a.source_b.as_ref().map(|b| Common {
        source: b.clone(),
        rev: a.rev_b,
        encryption_config: a.common.encryption_config.clone(),
        prefix: a.common.prefix.clone(),
        db_only: a.common.db_only,
    });
    let src_b = match &common_b {
        Some(c) => Some(Source::open(c, err)?),
        None => None,
    };
    let ks_a = match src_a.keyspace(err)? {
        Ok(ks) => ks,
        Err(code) => return Ok(code),
    };
    let ks_b_owned;
    let (ks_b, src_b_ref, common_b_ref) = match (&src_b, &common_b) {
        (Some(s), Some(c)) => {
            ks_b_owned = match s.keyspace(err)? {
                Ok(ks) => ks,
                Err(code) => return Ok(code),
            };
            (&ks_b_owned, s, c)
        }
        _ => (&ks_a, &src_a, &a.common),
    };
    if a.source_b.is_none() && a.common.rev == a.rev_b {
        writeln!(
            err,
            "etcd-rescue: note: comparing {} with itself at the same revision; give --rev N (A) and --rev-b M (B, default: the newest) to compare two revisions, or a second source",
            show_path(&a.common.source)
        )?;
    }
    let side_a = Side {
        ks: &ks_a,
        rev: a.common.rev,
        cx: src_a.cx(&a.common),
    };
    let side_b = Side {
        ks: ks_b,
        rev: a.rev_b,
        cx: src_b_ref.cx(common_b_ref),
    };
    let opts = DiffOptions {
        filter,
        include_status: a.include_status,
        show_secrets: a.show_secrets,
    };
    let r = match diff::diff(&side_a, &side_b, &opts) {
        Ok(r) => r,
        Err(DiffError::A(e)) => return src_a.db.kv_error(err, &e),
        Err(DiffError::B(e)) => return src_b_ref.db.kv_error(err, &e),
    };
    write_report(
        out,
        fmt,
        &r,
        show_path(&a.common.source),
        show_path(&common_b_ref.source),
    )?;
    writeln!(err, "{}", summary(&r, a.include_status))?;
    let code = if r.has_differences() {
        EXIT_PROBLEMS
    } else {
        EXIT_OK
    };
    Ok(src_a.exit(code).max(src_b_ref.exit(code)))
}

/// The report as JSON, YAML, JSON lines or tables.
fn write_report(
    out: &mut dyn Write,
    fmt: Format,
    r: &DiffReport,
    source_a: String,
    source_b: String,
) -> anyhow::Result<()> {
    match fmt {
        Format::Json | Format::Yaml => {
            let doc = Doc {
                source_a,
                source_b,
                report: r,
            };
            if fmt == Format::Json {
                render::json(out, &doc)?;
            } else {
                out.write_all(yaml::to_string(&serde_json::to_value(&doc)?).as_bytes())?;
            }
        }
        Format::Lines => {
            let line = |change: &str, v: Value| {
                let mut m = Map::new();
                m.insert("change".into(), change.into());
                if let Value::Object(rest) = v {
                    m.extend(rest);
                }
                Value::Object(m)
            };
            for (change, v) in lines(r)? {
                render::json_line(out, &line(change, v))?;
            }
        }
        Format::Table => table(r, out)?,
    }
    Ok(())
}

/// Every difference as (change, JSON), in the table's order.
fn lines(r: &DiffReport) -> anyhow::Result<Vec<(&'static str, Value)>> {
    let mut v = Vec::new();
    for p in &r.added {
        v.push(("added", serde_json::to_value(p)?));
    }
    for p in &r.deleted {
        v.push(("deleted", serde_json::to_value(p)?));
    }
    for c in &r.changed {
        v.push(("changed", serde_json::to_value(c)?));
    }
    for u in &r.undecodable {
        v.push(("undecodable", serde_json::to_value(u)?));
    }
    Ok(v)
}

/// The one-line summary (stderr).
fn summary(r: &DiffReport, include_status: bool) -> String {
    let mut s = format!(
        "{} added, {} deleted, {} changed between revision {} and {}",
        r.added.len(),
        r.deleted.len(),
        r.changed.len(),
        r.revision_a,
        r.revision_b
    );
    if !r.undecodable.is_empty() {
        s += &format!("; {} changed but could not be decoded", r.undecodable.len());
    }
    if r.changed_only_in_ignored_fields > 0 {
        s += &format!(
            "; {} more changed only in {} (not shown{})",
            r.changed_only_in_ignored_fields,
            if include_status {
                "managedFields"
            } else {
                "status or managedFields"
            },
            if include_status {
                ""
            } else {
                "; --include-status compares status"
            }
        );
    }
    s
}

/// Text from the file, safe for a terminal: control characters become `?`.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Longest value shown in the table (-o json has them whole).
const VALUE_MAX: usize = 200;

/// A value as shown in the table: compact JSON, redaction placeholders
/// bare, shortened.
fn show_value(v: &Value, cut: &mut bool) -> String {
    let text = match v {
        Value::String(s) if s.starts_with("<redacted, ") && s.ends_with(" bytes>") => s.clone(),
        v => v.to_string(),
    };
    let text = clean(&text);
    if text.chars().count() > VALUE_MAX {
        *cut = true;
        let mut t: String = text.chars().take(VALUE_MAX).collect();
        t.push_str("...");
        t
    } else {
        text
    }
}

/// `~ path: old -> new`, `+ path: new`, `- path: old`.
fn field_line(f: &FieldChange, cut: &mut bool) -> String {
    let path = clean(&f.path);
    match (&f.old, &f.new) {
        (Some(o), Some(n)) => format!("~ {path}: {} -> {}", show_value(o, cut), show_value(n, cut)),
        (None, Some(n)) => format!("+ {path}: {}", show_value(n, cut)),
        (Some(o), None) => format!("- {path}: {}", show_value(o, cut)),
        (None, None) => format!("~ {path}"),
    }
}

/// The table: one row per object, and under each changed object its
/// fields, under each object that does not decode why.
fn table(r: &DiffReport, out: &mut dyn Write) -> anyhow::Result<()> {
    struct Row {
        cells: [String; 6],
        under: Vec<String>,
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut cut = false;
    let cells = |c: &str, res: &str, ns: &str, name: &str, kind: &str, rev: String| {
        [
            c.to_string(),
            clean(res),
            clean(ns),
            clean(name),
            clean(kind),
            rev,
        ]
    };
    for p in &r.added {
        rows.push(Row {
            cells: cells(
                "added",
                &p.resource,
                &p.namespace,
                &p.name,
                &p.kind,
                p.revision.to_string(),
            ),
            under: p.problem.iter().map(|w| format!("! {}", clean(w))).collect(),
        });
    }
    for p in &r.deleted {
        let rev = match p.deleted_at {
            Some(d) => format!("{} (deleted at {d})", p.revision),
            None => p.revision.to_string(),
        };
        rows.push(Row {
            cells: cells("deleted", &p.resource, &p.namespace, &p.name, &p.kind, rev),
            under: p.problem.iter().map(|w| format!("! {}", clean(w))).collect(),
        });
    }
    for c in &r.changed {
        rows.push(Row {
            cells: cells(
                "changed",
                &c.resource,
                &c.namespace,
                &c.name,
                &c.kind,
                format!("{} -> {}", c.revision_a, c.revision_b),
            ),
            under: c.fields.iter().map(|f| field_line(f, &mut cut)).collect(),
        });
    }
    for u in &r.undecodable {
        let mut under = Vec::new();
        if let Some(w) = &u.problem_a {
            under.push(format!("! A: {}", clean(w)));
        }
        if let Some(w) = &u.problem_b {
            under.push(format!("! B: {}", clean(w)));
        }
        rows.push(Row {
            cells: cells(
                "undecodable",
                &u.resource,
                &u.namespace,
                &u.name,
                &u.kind,
                format!("{} -> {}", u.revision_a, u.revision_b),
            ),
            under,
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    let header = ["CHANGE", "RESOURCE", "NAMESPACE", "NAME", "KIND", "REVISION"];
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, c) in width.iter_mut().zip(&row.cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.extend(std::iter::repeat_n(' ', width[i] - c.chars().count() + 2));
            }
        }
        s
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        let cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
        for u in &row.under {
            writeln!(out, "    {u}")?;
        }
    }
    if cut {
        writeln!(out, "(long values are shortened; -o json has them whole)")?;
    }
    Ok(())
}
