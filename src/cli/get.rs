//! `etcd-rescue get SOURCE [KEY]`: what `etcdctl get` returns, offline, at
//! the head or at a past revision.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::render::{self, bytes_text, go_quote, preview};
use super::{EtcdctlHeader, EtcdutlLayout, Format, SourceDb};
use crate::mvcc::index::{KeyIndex, KeyRange};
use crate::mvcc::kv::KeyValueRef;

/// Arguments of `get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// A snapshot file, a db file or a data dir.
    pub source: PathBuf,
    /// For a data dir: read its db alone, without the committed WAL entries
    /// etcd would apply on top of it at start.
    #[arg(long)]
    pub db_only: bool,
    /// The key (all keys when omitted).
    pub key: Option<String>,
    /// Get every key starting with KEY, as etcdctl does; or `--prefix P`
    /// without KEY, as `diff` and `wal` take a prefix.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "P")]
    pub prefix: Option<String>,
    /// Get every key greater than or equal to KEY.
    #[arg(long, conflicts_with = "prefix")]
    pub from_key: bool,
    /// Read at this revision (default: the head). Must not be below the compact revision.
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Keys and revisions only, no values.
    #[arg(long)]
    pub keys_only: bool,
    /// At most this many keys (in key order); the count is still the total.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Only the number of keys.
    #[arg(long)]
    pub count_only: bool,
    /// Only the values (`-w simple`, as etcdctl prints them).
    #[arg(long)]
    pub print_value_only: bool,
}

/// The key range a get covers. `prefix`: `Some("")` for etcdctl's switch
/// (KEY is the prefix), `Some(p)` for a prefix given as a value.
fn key_range(key: Option<&str>, prefix: Option<&str>, from_key: bool) -> anyhow::Result<KeyRange> {
    let key = match (key, prefix) {
        (Some(k), Some(p)) if !p.is_empty() => {
            anyhow::bail!(
                "KEY {k:?} and --prefix {p:?}: give the prefix once (`get SOURCE P --prefix` or `get SOURCE --prefix P`)"
            )
        }
        (None, Some(p)) => Some(p),
        (k, _) => k,
    };
    Ok(match key {
        None => KeyRange::All,
        Some("") if prefix.is_some() => KeyRange::All,
        Some(k) if prefix.is_some() => KeyRange::Prefix(k.as_bytes().to_vec()),
        Some(k) if from_key => KeyRange::FromKey(k.as_bytes().to_vec()),
        Some(k) => KeyRange::Exact(k.as_bytes().to_vec()),
    })
}

pub(super) fn run(
    a: &GetArgs,
    fmt: Format,
    layout: Option<EtcdutlLayout>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    if a.count_only && layout == Some(EtcdutlLayout::Simple) {
        anyhow::bail!(
            "--count-only has no -w simple layout (etcdctl refuses it too); use -w fields or -o json"
        );
    }
    let src = SourceDb::open(&a.source, a.db_only, err)?;
    let ks = match src.keyspace() {
        Ok(ks) => ks,
        Err(code) => return src.damaged(err, code),
    };
    let range = key_range(a.key.as_deref(), a.prefix.as_deref(), a.from_key)?;
    let index = match KeyIndex::build(&ks, &range) {
        Ok(i) => i,
        Err(e) => return src.kv_error(err, &e),
    };
    let at = match index.check_rev(a.rev) {
        Ok(at) => at,
        Err(e) => return src.kv_error(err, &e),
    };
    let live: Vec<_> = index.live_at(at).collect();
    let count = live.len();
    let shown = if a.limit > 0 { count.min(a.limit) } else { count };
    let answer = Answer {
        header: src.header(index.head, index.term),
        kvs: live
            .iter()
            .take(if a.count_only { 0 } else { shown })
            .map(|(_, r)| r.kv())
            .collect::<Result<_, _>>()?,
        count,
        more: shown < count,
        at,
        head: index.head,
    };
    match (layout, fmt) {
        (Some(EtcdutlLayout::Simple), _) => simple(a, &answer, out)?,
        (Some(EtcdutlLayout::Fields), _) => fields(a, &answer, out)?,
        (None, Format::Json | Format::Yaml) => json_answer(a, &answer, out)?,
        (None, Format::Lines) => lines(a, &answer, out)?,
        (None, Format::Table) => table(a, &answer, out)?,
    }
    Ok(src.exit_code())
}

/// What a get answers.
struct Answer<'a> {
    header: EtcdctlHeader,
    /// The keys shown (none with --count-only).
    kvs: Vec<KeyValueRef<'a>>,
    /// Every key in the range.
    count: usize,
    more: bool,
    /// The revision read at, and the head.
    at: i64,
    head: i64,
}

/// The value as printed: nothing with --keys-only.
fn value<'a>(a: &GetArgs, kv: &KeyValueRef<'a>) -> &'a [u8] {
    if a.keys_only { b"" } else { kv.value }
}

/// etcdctl's `-w simple`: the key and the value on lines of their own, the
/// raw bytes (`--print-value-only`: the value alone).
fn simple(a: &GetArgs, r: &Answer<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    for kv in &r.kvs {
        if !a.print_value_only {
            out.write_all(kv.key)?;
            out.write_all(b"\n")?;
        }
        out.write_all(value(a, kv))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// etcdctl's `-w fields`: `"Name" : value` lines, keys and values quoted as
/// Go's `%q` quotes them.
fn fields(a: &GetArgs, r: &Answer<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    r.header.fields(out)?;
    for kv in &r.kvs {
        writeln!(out, "\"Key\" : {}", go_quote(kv.key))?;
        writeln!(out, "\"CreateRevision\" : {}", kv.create_revision)?;
        writeln!(out, "\"ModRevision\" : {}", kv.mod_revision)?;
        writeln!(out, "\"Version\" : {}", kv.version)?;
        writeln!(out, "\"Value\" : {}", go_quote(value(a, kv)))?;
        writeln!(out, "\"Lease\" : {}", kv.lease)?;
    }
    writeln!(out, "\"More\" : {}", r.more)?;
    writeln!(out, "\"Count\" : {}", r.count)?;
    Ok(())
}

/// The shape of `etcdctl get -w json`, written as a stream.
fn json_answer(a: &GetArgs, r: &Answer<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    write!(out, "{{\"header\":{}", serde_json::to_string(&r.header)?)?;
    if !r.kvs.is_empty() {
        write!(out, ",\"kvs\":[")?;
        for (i, kv) in r.kvs.iter().enumerate() {
            let mut o = Map::new();
            o.insert("key".into(), b64(kv.key).into());
            o.insert("create_revision".into(), kv.create_revision.into());
            o.insert("mod_revision".into(), kv.mod_revision.into());
            o.insert("version".into(), kv.version.into());
            if !value(a, kv).is_empty() {
                o.insert("value".into(), b64(kv.value).into());
            }
            if kv.lease != 0 {
                o.insert("lease".into(), kv.lease.into());
            }
            if i > 0 {
                write!(out, ",")?;
            }
            serde_json::to_writer(&mut *out, &Value::Object(o))?;
        }
        write!(out, "]")?;
    }
    if r.more {
        write!(out, ",\"more\":true")?;
    }
    if r.count > 0 {
        write!(out, ",\"count\":{}", r.count)?;
    }
    writeln!(out, "}}")?;
    Ok(())
}

/// One JSON object per key.
fn lines(a: &GetArgs, r: &Answer<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    if a.count_only {
        return render::json_line(out, &json!({"count": r.count, "revision": r.at}));
    }
    for kv in &r.kvs {
        let mut o = Map::new();
        render::put_bytes_snake(&mut o, "key", kv.key);
        o.insert("create_revision".into(), kv.create_revision.into());
        o.insert("mod_revision".into(), kv.mod_revision.into());
        o.insert("version".into(), kv.version.into());
        o.insert("lease".into(), kv.lease.into());
        if !a.keys_only {
            render::put_bytes_snake(&mut o, "value", kv.value);
        }
        render::json_line(out, &Value::Object(o))?;
    }
    Ok(())
}

fn table(a: &GetArgs, r: &Answer<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    if !a.count_only {
        let tail = if a.keys_only { "" } else { " = VALUE" };
        writeln!(
            out,
            "{:>10} {:>8} {:>16}  KEY{tail}",
            "MOD_REV", "VERSION", "LEASE"
        )?;
        for kv in &r.kvs {
            let lease = if kv.lease == 0 {
                "-".to_string()
            } else {
                format!("{:x}", kv.lease)
            };
            let mut line = format!(
                "{:>10} {:>8} {:>16}  {}",
                kv.mod_revision,
                kv.version,
                lease,
                bytes_text(kv.key)
            );
            if !a.keys_only {
                line.push_str(&format!(" = {}", preview(&bytes_text(kv.value), 80)));
            }
            writeln!(out, "{line}")?;
        }
    }
    let shown = if r.more {
        format!(", {} shown", r.kvs.len())
    } else {
        String::new()
    };
    let head = if r.at != r.head {
        format!(" (head revision {})", r.head)
    } else {
        String::new()
    };
    writeln!(out, "{} key(s) at revision {}{shown}{head}", r.count, r.at)?;
    Ok(())
}
