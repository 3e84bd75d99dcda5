//! etcd's HashKV: the hash of the `key` bucket as of a revision, the value
//! `etcdctl endpoint hashkv` reports on a live member and etcd's corruption
//! checker compares between members.
//!
//! CRC-32C over the bucket name `key`, then over each stored (revision key,
//! KeyValue) pair in bucket order with main revision <= R, leaving out the
//! revisions at or below the compact revision that a compaction at R would
//! not keep (unless nothing would be kept).

use crate::bolt::Db;

use super::index::Index;
use super::kv::KvError;
use super::revision::RevKey;

/// A HashKV result, with etcdutl's field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KvHash {
    /// The hash.
    pub hash: u32,
    /// The revision hashed up to.
    pub hash_revision: i64,
    /// The compact revision.
    pub compact_revision: i64,
}

/// Computes HashKV at `rev` (0 = the head). `index` must cover all keys.
pub fn hash_kv(db: &Db<'_>, index: &Index<'_>, rev: i64) -> Result<KvHash, KvError> {
    let at = index.check_rev(rev)?;
    let keep = index.keep(at);
    let compact = index.compact;
    let bucket = db.bucket(b"key")?.ok_or(KvError::NoKeyBucket)?;
    let mut crc = crc32c::crc32c(b"key");
    let mut c = bucket.cursor();
    let mut cur = c.first()?;
    while let Some(e) = cur {
        let page = c.position().map_or(0, |(n, _)| n.loc.pgid().0);
        let rk = RevKey::parse(e.key).map_err(|source| KvError::RevKey { page, source })?;
        if rk.rev.main > at {
            break;
        }
        let compacted = rk.rev.main <= compact && !keep.is_empty() && !keep.contains(&rk.rev);
        if !compacted {
            crc = crc32c::crc32c_append(crc, e.key);
            crc = crc32c::crc32c_append(crc, e.value);
        }
        cur = c.next_elem()?;
    }
    Ok(KvHash {
        hash: crc,
        hash_revision: at,
        compact_revision: compact,
    })
}
