//! `etcd-rescue diff A [B]`: keys added, removed and changed between two
//! sources, or between two revisions of one source.

use std::cmp::Ordering;
use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::render::{self, bytes_text, preview};
use super::{EXIT_OK, EXIT_PROBLEMS, Format, SourceDb};
use crate::mvcc::index::{KeyIndex, KeyRange, RevEntry};
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

/// How a key differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// One differing key: how, the key, its revision in A and in B.
type Difference<'k, 'a> = (Change, &'k [u8], Option<RevEntry<'a>>, Option<RevEntry<'a>>);

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
    if a.b.is_none() && a.rev_a == 0 && a.rev_b == 0 {
        anyhow::bail!(
            "one source and no revision compares its head with itself: give a second source, or two revisions (--rev N --rev-b M)"
        );
    }
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
    let mut left = index_a.live_at(at_a).peekable();
    let mut right = index_b.live_at(at_b).peekable();
    let mut changes: Vec<Difference<'_, '_>> = Vec::new();
    let mut unchanged = 0u64;
    loop {
        let order = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(l), Some(r)) => l.0.cmp(r.0),
        };
        match order {
            Ordering::Less => {
                let (k, r) = left.next().expect("peeked");
                changes.push((Change::Removed, k, Some(r), None));
            }
            Ordering::Greater => {
                let (k, r) = right.next().expect("peeked");
                changes.push((Change::Added, k, None, Some(r)));
            }
            Ordering::Equal => {
                let (k, ra) = left.next().expect("peeked");
                let (_, rb) = right.next().expect("peeked");
                let (ka, kb) = (ra.kv()?, rb.kv()?);
                let same = ka.value == kb.value
                    && ka.lease == kb.lease
                    && (a.values_only
                        || (ka.mod_revision == kb.mod_revision && ka.create_revision == kb.create_revision));
                if same {
                    unchanged += 1;
                } else {
                    changes.push((Change::Changed, k, Some(ra), Some(rb)));
                }
            }
        }
    }
    let count = |c: Change| changes.iter().filter(|x| x.0 == c).count();
    let (added, removed, changed) = (
        count(Change::Added),
        count(Change::Removed),
        count(Change::Changed),
    );
    let summary = format!(
        "{added} added, {removed} removed, {changed} changed, {unchanged} unchanged (A at revision {at_a}, B at revision {at_b})"
    );
    match fmt {
        Format::Json | Format::Lines | Format::Yaml => {
            let mut items = Vec::new();
            for (c, k, ra, rb) in &changes {
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
        }
        Format::Table => {
            if !changes.is_empty() {
                let mut t = render::table(&[
                    "CHANGE",
                    "KEY",
                    "A MOD_REV",
                    "B MOD_REV",
                    "B VALUE (or A's if removed)",
                ]);
                for (c, k, ra, rb) in &changes {
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
        }
    }
    let damaged = src_bref.exit_code().max(src_a.exit_code());
    Ok(damaged.max(if changes.is_empty() {
        EXIT_OK
    } else {
        EXIT_PROBLEMS
    }))
}
