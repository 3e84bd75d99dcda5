//! `etcd-rescue diff A [B]`: keys added, removed and changed between two
//! sources, or between two revisions of one source.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::render::{self, bytes_text, preview};
use super::{EXIT_OK, EXIT_PROBLEMS, Format, SourceDb};
use crate::mvcc::index::{Difference, KeyChange, KeyIndex, KeyRange, diff_live};
use crate::mvcc::kv::KeyValueRef;

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The old source (snapshot file, db file or data dir).
    pub a: PathBuf,
    /// The new source (default: A again, for comparing two revisions of it).
    pub b: Option<PathBuf>,
    /// Only keys starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Revision to read A at (default: its head).
    #[arg(long, visible_alias = "rev", default_value_t = 0)]
    pub rev_a: i64,
    /// Revision to read B at (default: its head).
    #[arg(long, default_value_t = 0)]
    pub rev_b: i64,
    /// For data dirs: read their dbs alone, without the committed WAL
    /// entries etcd would apply on top at start.
    #[arg(long)]
    pub db_only: bool,
    /// Compare values and leases only, not revisions (for sources from different clusters).
    #[arg(long)]
    pub values_only: bool,
}

fn kv_json(kv: &KeyValueRef<'_>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("createRevision".into(), kv.create_revision.into());
    o.insert("modRevision".into(), kv.mod_revision.into());
    o.insert("version".into(), kv.version.into());
    o.insert("lease".into(), kv.lease.into());
    render::put_bytes(&mut o, "value", kv.value);
    o
}

pub(super) fn run(
    a: &DiffArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    super::refuse_self_diff(a.b.is_some(), a.rev_a != 0 || a.rev_b != 0)?;
    let range = match &a.prefix {
        Some(p) if !p.is_empty() => KeyRange::Prefix(p.as_bytes().to_vec()),
        _ => KeyRange::All,
    };
    let src_a = SourceDb::open(&a.a, a.db_only, err)?;
    let src_b = match &a.b {
        Some(b) => Some(SourceDb::open(b, a.db_only, err)?),
        None => None,
    };
    let db_a = match src_a.keyspace() {
        Ok(ks) => ks,
        Err(e) => return src_a.damaged(err, e),
    };
    let index_a = match KeyIndex::build(&db_a, &range) {
        Ok(i) => i,
        Err(e) => return src_a.kv_error(err, &e),
    };
    let (db_b, index_b_owned);
    let (index_b, src_bref) = match &src_b {
        Some(s) => {
            db_b = match s.keyspace() {
                Ok(ks) => ks,
                Err(e) => return s.damaged(err, e),
            };
            index_b_owned = match KeyIndex::build(&db_b, &range) {
                Ok(i) => i,
                Err(e) => return s.kv_error(err, &e),
            };
            (&index_b_owned, s)
        }
        None => (&index_a, &src_a),
    };
    let at_a = match index_a.check_rev(a.rev_a) {
        Ok(r) => r,
        Err(e) => return src_a.kv_error(err, &e),
    };
    let at_b = match index_b.check_rev(a.rev_b) {
        Ok(r) => r,
        Err(e) => return src_bref.kv_error(err, &e),
    };
    let (changes, unchanged) = diff_live((&index_a, at_a), (index_b, at_b), a.values_only)?;
    let count = |c: KeyChange| changes.iter().filter(|x| x.0 == c).count();
    let (added, removed, changed) = (
        count(KeyChange::Added),
        count(KeyChange::Removed),
        count(KeyChange::Changed),
    );
    let summary = format!(
        "{added} added, {removed} removed, {changed} changed, {unchanged} unchanged (A at revision {at_a}, B at revision {at_b})"
    );
    let counts = Counts {
        added,
        removed,
        changed,
        unchanged,
    };
    match fmt {
        Format::Json | Format::Lines | Format::Yaml => {
            write_json(out, fmt, a, &changes, (at_a, at_b), &counts)?
        }
        Format::Table => write_table(out, &changes, &summary)?,
    }
    let damaged = src_bref.exit_code().max(src_a.exit_code());
    Ok(damaged.max(if changes.is_empty() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    }))
}

/// The counts of a diff.
struct Counts {
    added: usize,
    removed: usize,
    changed: usize,
    unchanged: u64,
}

fn write_json(
    out: &mut dyn Write,
    fmt: Format,
    a: &DiffArgs,
    changes: &[Difference<'_, '_>],
    (at_a, at_b): (i64, i64),
    counts: &Counts,
) -> anyhow::Result<()> {
    let Counts {
        added,
        removed,
        changed,
        unchanged,
    } = counts;
    let mut items = Vec::new();
    for (c, k, ra, rb) in changes {
        let mut o = Map::new();
        o.insert("change".into(), c.word().into());
        render::put_bytes(&mut o, "key", k);
        if let Some(r) = ra {
            o.insert("a".into(), Value::Object(kv_json(&r.kv()?)));
        }
        if let Some(r) = rb {
            o.insert("b".into(), Value::Object(kv_json(&r.kv()?)));
        }
        items.push(Value::Object(o));
    }
    if fmt == Format::Lines {
        for i in items {
            render::json_line(out, &i)?;
        }
    } else {
        render::json(
            out,
            &json!({
                "a": {"source": a.a.display().to_string(), "revision": at_a},
                "b": {"source": a.b.as_ref().unwrap_or(&a.a).display().to_string(), "revision": at_b},
                "changes": items,
                "summary": {"added": added, "removed": removed, "changed": changed, "unchanged": unchanged},
            }),
        )?;
    }
    Ok(())
}

fn write_table(out: &mut dyn Write, changes: &[Difference<'_, '_>], summary: &str) -> anyhow::Result<()> {
    if !changes.is_empty() {
        let mut t = render::table(&[
            "CHANGE",
            "KEY",
            "A MOD_REV",
            "B MOD_REV",
            "B VALUE (or A's if removed)",
        ]);
        for (c, k, ra, rb) in changes {
            let ka = ra.map(|r| r.kv()).transpose()?;
            let kb = rb.map(|r| r.kv()).transpose()?;
            let value = kb
                .or(ka)
                .map(|kv| preview(&bytes_text(kv.value), 50))
                .unwrap_or_default();
            t.add_row(vec![
                c.word().to_string(),
                bytes_text(k),
                ka.map(|kv| kv.mod_revision.to_string()).unwrap_or_default(),
                kb.map(|kv| kv.mod_revision.to_string()).unwrap_or_default(),
                value,
            ]);
        }
        writeln!(out, "{t}")?;
    }
    writeln!(out, "{summary}")?;
    Ok(())
}
