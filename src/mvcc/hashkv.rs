//! etcd's HashKV: the hash of the `key` bucket as of a revision, the value
//! `etcdctl endpoint hashkv` reports on a live member and etcd's corruption
//! checker compares between members.
//!
//! CRC-32C over the bucket name `key`, then over each stored (revision key,
//! KeyValue) pair in bucket order with main revision <= R, leaving out the
//! revisions at or below the compact revision that a compaction at R would
//! not keep (unless nothing would be kept).

use super::index::KeyIndex;
use super::keyspace::Keyspace;
use super::kv::KvError;

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

/// Computes HashKV at `rev` (0 = the head) as etcd 3.4/3.5 do: a revision
/// at or below the compact revision is refused ("required revision has been
/// compacted"), as is one above the head. `index` must cover all keys.
pub fn hash_kv(ks: &Keyspace<'_>, index: &KeyIndex<'_>, rev: i64) -> Result<KvHash, KvError> {
    if rev > 0 && rev <= index.compact {
        return Err(KvError::Compacted {
            rev,
            compact: index.compact,
        });
    }
    let at = index.check_rev(rev)?;
    let keep = index.keep(at);
    let compact = index.compact;
    let mut crc = crc32c::crc32c(b"key");
    for e in ks.revisions()? {
        let e = e?;
        if e.rev.rev.main > at {
            break;
        }
        let compacted = e.rev.rev.main <= compact && !keep.is_empty() && !keep.contains(&e.rev.rev);
        if !compacted {
            crc = crc32c::crc32c_append(crc, e.raw_key);
            crc = crc32c::crc32c_append(crc, e.value);
        }
    }
    Ok(KvHash {
        hash: crc,
        hash_revision: at,
        compact_revision: compact,
    })
}
