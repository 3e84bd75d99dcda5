//! Keys a listing leaves out because they are not backups: k3s's and
//! rke2's `.metadata/` sidecars (a JSON map beside each snapshot), the
//! chunk parts gardener's etcd-backup-restore uploads to GCS and Swift
//! before composing them (`Full-…/0000000001`), and directory markers.

/// Why `key` is not a backup, or `None` when it may be one.
pub(super) fn left_out(key: &str, size: u64) -> Option<&'static str> {
    let mut parts = key.rsplit('/');
    let name = parts.next().unwrap_or(key);
    let parent = parts.next().unwrap_or("");
    if name.is_empty() && size == 0 {
        return Some("a directory marker");
    }
    if parent == ".metadata" {
        return Some("k3s/rke2 snapshot metadata (a JSON sidecar, not a snapshot)");
    }
    if name.len() == 10
        && name.bytes().all(|b| b.is_ascii_digit())
        && (parent.starts_with("Full-") || parent.starts_with("Incr-"))
    {
        return Some("a chunk part of a gardener snapshot upload (composed into the snapshot beside it)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::left_out;

    #[test]
    fn sidecars_and_chunk_parts_are_not_backups() {
        assert!(left_out("k3s/.metadata/etcd-snapshot-n1-1700000000", 20).is_some());
        assert!(left_out("g/v2/Full-00000000-00000042-1700000000.gz/0000000001", 9).is_some());
        assert!(left_out("dir/", 0).is_some());
        assert!(left_out("k3s/etcd-snapshot-n1-1700000000", 0).is_none());
        assert!(left_out("g/v2/Incr-00000043-00000050-1700000100.gz", 9).is_none());
    }
}
