//! `etcd-rescue hashkv SOURCE... [--rev N]`: etcd's HashKV, offline, in the
//! layouts of `etcdctl endpoint hashkv` (one row per source, the source
//! where etcdctl has the endpoint).

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::render::{self, go_quote};
use super::{EXIT_PROBLEMS, EtcdctlHeader, EtcdutlLayout, Format, SourceDb};
use crate::mvcc::hashkv::{KvHash, hash_kv};
use crate::mvcc::index::{KeyIndex, KeyRange};

/// Arguments of `hashkv`.
#[derive(Debug, clap::Args)]
pub struct HashKvArgs {
    /// Snapshot files, db files or data dirs (several: compare members).
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// For a data dir: read its db alone, without the committed WAL entries
    /// etcd would apply on top of it at start.
    #[arg(long)]
    pub db_only: bool,
    /// Hash up to this revision (default: each source's head).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
}

/// One source's hash.
struct Row {
    endpoint: String,
    header: EtcdctlHeader,
    hash: KvHash,
}

pub(super) fn run(
    a: &HashKvArgs,
    fmt: Format,
    layout: Option<EtcdutlLayout>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut rows = Vec::new();
    let mut code = 0;
    for path in &a.sources {
        let src = SourceDb::open(path, a.db_only, err)?;
        let ks = match src.keyspace() {
            Ok(ks) => ks,
            Err(e) => return src.damaged(err, e),
        };
        let index = match KeyIndex::build(&ks, &KeyRange::All) {
            Ok(i) => i,
            Err(e) => return src.kv_error(err, &e),
        };
        let hash = match hash_kv(&ks, &index, a.rev) {
            Ok(h) => h,
            Err(e) => return src.kv_error(err, &e),
        };
        code = code.max(src.exit_code());
        rows.push(Row {
            endpoint: path.display().to_string(),
            header: src.header(index.head, index.term),
            hash,
        });
    }
    match (layout, fmt) {
        (Some(EtcdutlLayout::Simple), _) => {
            for r in &rows {
                writeln!(out, "{}, {}", r.endpoint, r.hash.hash)?;
            }
        }
        (Some(EtcdutlLayout::Fields), _) => {
            for r in &rows {
                r.header.fields(out)?;
                writeln!(out, "\"Endpoint\" : {}", go_quote(r.endpoint.as_bytes()))?;
                writeln!(out, "\"Hash\" : {}\n", r.hash.hash)?;
            }
        }
        (None, Format::Json | Format::Yaml) => {
            let all: Vec<Value> = rows.iter().map(etcdctl_json).collect();
            serde_json::to_writer(&mut *out, &all)?;
            writeln!(out)?;
        }
        (None, Format::Lines) => {
            for r in &rows {
                render::json_line(out, &etcdctl_json(r))?;
            }
        }
        (None, Format::Table) => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| vec![r.endpoint.clone(), r.hash.hash.to_string()])
                .collect();
            out.write_all(render::etcdctl_table(&["endpoint", "hash"], &cells).as_bytes())?;
        }
    }
    Ok(code.max(compare(&rows, err)?))
}

/// One row as `etcdctl endpoint hashkv -w json` prints it (with etcd 3.6's
/// `hash_revision`).
fn etcdctl_json(r: &Row) -> Value {
    json!({
        "Endpoint": r.endpoint,
        "HashKV": {
            "header": r.header,
            "hash": r.hash.hash,
            "compact_revision": r.hash.compact_revision,
            "hash_revision": r.hash.hash_revision,
        }
    })
}

/// With several sources: says on stderr whether the hashes can be compared
/// and whether they agree. Different hashes over the same revisions are
/// what etcd's corruption check calls CORRUPT: exit 1.
fn compare(rows: &[Row], err: &mut dyn Write) -> anyhow::Result<i32> {
    use crate::mvcc::hashkv::{Agreement, agreement};
    let hashes: Vec<KvHash> = rows.iter().map(|r| r.hash).collect();
    match agreement(&hashes) {
        Agreement::Alone | Agreement::Agree => Ok(0),
        Agreement::DifferentSpans => {
            let list: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{} {}..{}",
                        r.endpoint, r.hash.compact_revision, r.hash.hash_revision
                    )
                })
                .collect();
            writeln!(
                err,
                "etcd-rescue: note: the hashes cover different revisions ({}): compare them with --rev R, R above every compact revision and at most every head",
                list.join(", ")
            )?;
            Ok(0)
        }
        Agreement::Differ => {
            writeln!(
                err,
                "etcd-rescue: the hashes differ over the same revisions ({}..{}): these members hold different data (etcd's corruption check would raise CORRUPT); `etcd-rescue diff` shows the keys",
                hashes[0].compact_revision, hashes[0].hash_revision
            )?;
            Ok(EXIT_PROBLEMS)
        }
    }
}
