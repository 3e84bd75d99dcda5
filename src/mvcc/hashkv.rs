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

/// What several hashes say together, as etcd's corruption check reads
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agreement {
    /// Fewer than two hashes.
    Alone,
    /// The same revisions, the same hash.
    Agree,
    /// Different revisions: not comparable (compare at one `--rev`).
    DifferentSpans,
    /// Different hashes over the same revisions: what etcd calls CORRUPT.
    Differ,
}

/// Whether `hashes` agree.
pub fn agreement(hashes: &[KvHash]) -> Agreement {
    let Some(first) = hashes.first().filter(|_| hashes.len() > 1) else {
        return Agreement::Alone;
    };
    let span = |h: &KvHash| (h.compact_revision, h.hash_revision);
    if hashes.iter().any(|h| span(h) != span(first)) {
        Agreement::DifferentSpans
    } else if hashes.iter().any(|h| h.hash != first.hash) {
        Agreement::Differ
    } else {
        Agreement::Agree
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_follows_etcds_corruption_check() {
        let h = |hash, compact, rev| KvHash {
            hash,
            hash_revision: rev,
            compact_revision: compact,
        };
        assert_eq!(agreement(&[h(1, 2, 9)]), Agreement::Alone);
        assert_eq!(agreement(&[h(1, 2, 9), h(1, 2, 9)]), Agreement::Agree);
        assert_eq!(agreement(&[h(1, 2, 9), h(1, 3, 9)]), Agreement::DifferentSpans);
        assert_eq!(agreement(&[h(1, 2, 9), h(5, 2, 9)]), Agreement::Differ);
    }
}
