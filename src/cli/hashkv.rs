//! `etcd-rescue hashkv SOURCE [--rev N]`: etcd's HashKV, offline.

use std::io::Write;
use std::path::PathBuf;

use super::render;
use super::{Format, SourceDb};
use crate::mvcc::hashkv::hash_kv;
use crate::mvcc::index::{Index, KeyRange};

/// Arguments of `hashkv`.
#[derive(Debug, clap::Args)]
pub struct HashKvArgs {
    /// A snapshot file, a db file or a data dir.
    pub source: PathBuf,
    /// For a data dir: read its db alone, without the committed WAL entries
    /// etcd would apply on top of it at start.
    #[arg(long)]
    pub db_only: bool,
    /// Hash up to this revision (default: the head).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
}

pub(super) fn run(
    a: &HashKvArgs,
    fmt: Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let src = SourceDb::open(&a.source, a.db_only, err)?;
    let ks = match src.keyspace() {
        Ok(ks) => ks,
        Err(e) => return src.damaged(err, e),
    };
    let index = match Index::build(&ks, &KeyRange::All) {
        Ok(i) => i,
        Err(e) => return src.kv_error(err, &e),
    };
    let h = match hash_kv(&ks, &index, a.rev) {
        Ok(h) => h,
        Err(e) => return src.kv_error(err, &e),
    };
    match fmt {
        Format::Json | Format::Yaml => render::json(out, &h)?,
        Format::Lines => render::json_line(out, &h)?,
        Format::Table => {
            let mut t = render::table(&["HASH", "HASH REVISION", "COMPACT REVISION"]);
            t.add_row(vec![
                h.hash.to_string(),
                h.hash_revision.to_string(),
                h.compact_revision.to_string(),
            ]);
            writeln!(out, "{t}")?;
        }
    }
    Ok(src.exit_code())
}
