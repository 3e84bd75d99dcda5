//! `etcd-rescue get SOURCE [KEY]`: what `etcdctl get` returns, offline, at
//! the head or at a past revision.

use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::render::{self, bytes_text, preview};
use super::{Format, SourceDb};
use crate::mvcc::index::{Index, KeyRange};

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
    /// Get every key starting with KEY.
    #[arg(long)]
    pub prefix: bool,
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
}

/// The key range a get covers.
pub(super) fn key_range(key: Option<&str>, prefix: bool, from_key: bool) -> KeyRange {
    match key {
        None => KeyRange::All,
        Some(k) if prefix && k.is_empty() => KeyRange::All,
        Some(k) if prefix => KeyRange::Prefix(k.as_bytes().to_vec()),
        Some(k) if from_key => KeyRange::FromKey(k.as_bytes().to_vec()),
        Some(k) => KeyRange::Exact(k.as_bytes().to_vec()),
    }
}

pub(super) fn run(a: &GetArgs, fmt: Format, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let src = SourceDb::open(&a.source, a.db_only, err)?;
    let ks = match src.keyspace() {
        Ok(ks) => ks,
        Err(code) => return src.damaged(err, code),
    };
    let range = key_range(a.key.as_deref(), a.prefix, a.from_key);
    let index = match Index::build(&ks, &range) {
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
    let more = shown < count;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match fmt {
        Format::Json | Format::Yaml => {
            // The shape of `etcdctl get -w json`, written as a stream.
            let mut header = Map::new();
            header.insert("revision".into(), index.head.into());
            if let Some(t) = index.term {
                header.insert("raft_term".into(), t.into());
            }
            write!(out, "{{\"header\":{}", Value::Object(header))?;
            if !a.count_only && shown > 0 {
                write!(out, ",\"kvs\":[")?;
                for (i, (_, r)) in live.iter().take(shown).enumerate() {
                    let kv = r.kv()?;
                    let mut o = Map::new();
                    o.insert("key".into(), b64(kv.key).into());
                    o.insert("create_revision".into(), kv.create_revision.into());
                    o.insert("mod_revision".into(), kv.mod_revision.into());
                    o.insert("version".into(), kv.version.into());
                    if !a.keys_only && !kv.value.is_empty() {
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
            if more {
                write!(out, ",\"more\":true")?;
            }
            if count > 0 {
                write!(out, ",\"count\":{count}")?;
            }
            writeln!(out, "}}")?;
        }
        Format::Lines => {
            if a.count_only {
                render::json_line(out, &json!({"count": count, "revision": at}))?;
            } else {
                for (_, r) in live.iter().take(shown) {
                    let kv = r.kv()?;
                    let mut o = Map::new();
                    render::put_bytes(&mut o, "key", kv.key);
                    o.insert("create_revision".into(), kv.create_revision.into());
                    o.insert("mod_revision".into(), kv.mod_revision.into());
                    o.insert("version".into(), kv.version.into());
                    o.insert("lease".into(), kv.lease.into());
                    if !a.keys_only {
                        render::put_bytes(&mut o, "value", kv.value);
                    }
                    render::json_line(out, &Value::Object(o))?;
                }
            }
        }
        Format::Table => {
            if !a.count_only {
                writeln!(
                    out,
                    "{:>10} {:>8} {:>16}  KEY{}",
                    "MOD_REV",
                    "VERSION",
                    "LEASE",
                    if a.keys_only { "" } else { " = VALUE" }
                )?;
                for (_, r) in live.iter().take(shown) {
                    let kv = r.kv()?;
                    let lease = if kv.lease == 0 {
                        "-".to_string()
                    } else {
                        format!("{:x}", kv.lease)
                    };
                    let key = bytes_text(kv.key);
                    if a.keys_only {
                        writeln!(
                            out,
                            "{:>10} {:>8} {:>16}  {key}",
                            kv.mod_revision, kv.version, lease
                        )?;
                    } else {
                        let value = preview(&bytes_text(kv.value), 80);
                        writeln!(
                            out,
                            "{:>10} {:>8} {:>16}  {key} = {value}",
                            kv.mod_revision, kv.version, lease
                        )?;
                    }
                }
            }
            writeln!(
                out,
                "{count} key(s) at revision {at}{}{}",
                if more {
                    format!(", {shown} shown")
                } else {
                    String::new()
                },
                if at != index.head {
                    format!(" (head revision {})", index.head)
                } else {
                    String::new()
                }
            )?;
        }
    }
    Ok(src.exit_code())
}
