//! `etcd-rescue history SOURCE KEY`: every stored revision of a key.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::render::{self, bytes_text, preview};
use super::{Format, SourceDb};
use crate::mvcc::index::{KeyIndex, KeyRange, RevEntry};
use crate::mvcc::kv::KvError;

/// Arguments of `history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// A snapshot file, a db file or a data dir.
    pub source: PathBuf,
    /// For a data dir: read its db alone, without the committed WAL entries
    /// etcd would apply on top of it at start.
    #[arg(long)]
    pub db_only: bool,
    /// The key.
    pub key: String,
    /// Print the value of every revision.
    #[arg(long)]
    pub values: bool,
}

pub(super) fn run(
    a: &HistoryArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let src = SourceDb::open(&a.source, a.db_only, err)?;
    let ks = match src.keyspace() {
        Ok(ks) => ks,
        Err(e) => return src.damaged(err, e),
    };
    let key = a.key.as_bytes();
    let index = match KeyIndex::build(&ks, &KeyRange::Exact(key.to_vec())) {
        Ok(i) => i,
        Err(e) => return src.kv_error(err, &e),
    };
    let revs = index.served_history(key);
    let rows = revs
        .iter()
        .map(|r| row_json(r, a.values))
        .collect::<Result<Vec<_>, _>>()?;
    match fmt {
        Format::Json | Format::Yaml => {
            let mut top = Map::new();
            render::put_bytes(&mut top, "key", key);
            top.insert("compactRevision".into(), index.compact.into());
            top.insert("headRevision".into(), index.head.into());
            top.insert(
                "revisions".into(),
                Value::Array(rows.into_iter().map(Value::Object).collect()),
            );
            render::json(out, &Value::Object(top))?;
        }
        Format::Lines => {
            for o in rows {
                render::json_line(out, &Value::Object(o))?;
            }
        }
        Format::Table => write_table(out, a, key, &index, &revs, &rows)?,
    }
    Ok(src.exit_code())
}

/// One revision as JSON: `deleted` for a tombstone, else its fields (and
/// the value with `--values`).
fn row_json(r: &RevEntry<'_>, values: bool) -> Result<Map<String, Value>, KvError> {
    let kv = r.kv()?;
    let mut o = Map::new();
    o.insert("revision".into(), r.rev.main.into());
    o.insert("sub".into(), r.rev.sub.into());
    o.insert("deleted".into(), r.tombstone.into());
    if !r.tombstone {
        o.insert("createRevision".into(), kv.create_revision.into());
        o.insert("modRevision".into(), kv.mod_revision.into());
        o.insert("version".into(), kv.version.into());
        o.insert("lease".into(), kv.lease.into());
        o.insert("valueSize".into(), kv.value.len().into());
        if values {
            render::put_bytes(&mut o, "value", kv.value);
        }
    }
    Ok(o)
}

fn write_table(
    out: &mut dyn Write,
    a: &HistoryArgs,
    key: &[u8],
    index: &KeyIndex<'_>,
    revs: &[RevEntry<'_>],
    rows: &[Map<String, Value>],
) -> anyhow::Result<()> {
    let mut header = vec!["REVISION", "CREATE", "MOD", "VERSION", "LEASE", "VALUE SIZE"];
    if a.values {
        header.push("VALUE");
    }
    let mut t = render::table(&header);
    for (r, o) in revs.iter().zip(rows) {
        let get = |f: &str| o.get(f).map(|v| v.to_string()).unwrap_or_default();
        let mut row = vec![format!("{}.{}", r.rev.main, r.rev.sub)];
        if r.tombstone {
            row.extend([
                "deleted".to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        } else {
            let lease = o.get("lease").and_then(Value::as_i64).unwrap_or(0);
            row.extend([
                get("createRevision"),
                get("modRevision"),
                get("version"),
                if lease == 0 {
                    "-".into()
                } else {
                    format!("{lease:x}")
                },
                get("valueSize"),
            ]);
        }
        if a.values {
            row.push(if r.tombstone {
                String::new()
            } else {
                preview(&bytes_text(r.kv()?.value), 60)
            });
        }
        t.add_row(row);
    }
    writeln!(out, "{}: {} stored revision(s)", bytes_text(key), revs.len())?;
    if !revs.is_empty() {
        writeln!(out, "{t}")?;
    }
    if index.compact > 0 {
        writeln!(
            out,
            "revisions at or below the compact revision {} were compacted away, except the one live at it",
            index.compact
        )?;
    }
    Ok(())
}
