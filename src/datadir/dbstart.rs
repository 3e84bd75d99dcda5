//! What etcd 3.4/3.5 do with a member's db when they start on it.
//!
//! etcd opens the db with bbolt 1.3.6 and then restores its keyspace:
//!
//! 1. bbolt reads the first 4096 bytes and the two meta pages: a file that
//!    is shorter, or whose meta pages are both invalid, is refused
//!    ("invalid database"). A 0-byte file is initialised as a new db.
//! 2. etcd's dbs keep no freelist, so bbolt rebuilds it by visiting every
//!    page the tree reaches (`freepages` → `checkBucket`): a page past the
//!    end of the file faults (SIGBUS), a page past the high-water mark, a
//!    page reached twice or a page that is neither a branch nor a leaf
//!    panics.
//! 3. etcd reads every revision of the `key` bucket (`mvcc.restore`): a
//!    value that is not a `KeyValue` is fatal, and so is a revision key too
//!    short to hold a revision; then the leases, the auth store and the
//!    membership.
//!
//! Anything else a check finds (keys out of order, broken histories, a
//! missing bucket) does not stop etcd: it starts and serves what the damaged
//! db holds, which is lost or wrong data. The findings come from the scan;
//! this module only says, per finding code, which of the two it is.

use crate::report::{Finding, Severity};

/// What etcd does with the db at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbStart {
    /// It is refused: etcd exits, panics or faults. The reason, in words.
    Refused(String),
    /// etcd opens it, but serves lost or wrong data from it.
    Damaged(String),
    /// etcd opens it and reads it as it is.
    Opens,
}

/// For a finding code on a db: the sentence saying how etcd stops on it,
/// when it does.
pub fn refusal(code: &str) -> Option<&'static str> {
    Some(match code {
        "no-valid-meta" | "meta-high-water-mark" => {
            "bbolt refuses the file (\"invalid database\"): etcd panics (\"failed to open database\")"
        }
        "page-beyond-eof" => {
            "a page the tree uses lies past the end of the file: bbolt faults (SIGBUS) when it rebuilds the freelist at open"
        }
        "page-beyond-high-water-mark" | "meta-root-out-of-range" => {
            "a page the tree uses lies past the high-water mark: bbolt panics at open (\"page out of bounds\")"
        }
        "page-multiple-references" | "tree-too-deep" => {
            "a page is reached twice: bbolt panics at open (\"multiple references\")"
        }
        "page-wrong-type" => {
            "a page the tree uses is neither a branch nor a leaf: bbolt panics at open (\"invalid type\")"
        }
        "meta-freelist-out-of-range" => {
            "the meta page names a freelist page that does not exist: bbolt panics reading it"
        }
        "empty-node" | "element-table-overflow" | "element-out-of-bounds" | "bad-bucket-header" => {
            "bbolt reads past the end of a page or a bucket header: etcd crashes on it or reads garbage"
        }
        "bad-keyvalue" => {
            "a revision's value is not a KeyValue: etcd exits (\"failed to unmarshal mvccpb.KeyValue\")"
        }
        "bad-revision-key" => "a key of the key bucket is not a revision: etcd panics restoring the keyspace",
        _ => return None,
    })
}

/// What etcd does with a db that opens, from its findings (with their
/// files: only those of `db_file` count).
pub fn judge<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> DbStart {
    let mut first_error: Option<&Finding> = None;
    for f in findings {
        if let Some(why) = refusal(f.code) {
            return DbStart::Refused(format!("{why} ({}: {})", f.code, f.message));
        }
        if f.severity == Severity::Error && first_error.is_none() {
            first_error = Some(f);
        }
    }
    match first_error {
        Some(f) => DbStart::Damaged(format!("{}: {}", f.code, f.message)),
        None => DbStart::Opens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(sev: Severity, code: &'static str) -> Finding {
        Finding::new(sev, code, "x")
    }

    #[test]
    fn refusals_damage_and_what_etcd_tolerates() {
        let refused = [
            f(Severity::Error, "history-gap"),
            f(Severity::Error, "page-wrong-type"),
        ];
        assert!(matches!(judge(&refused), DbStart::Refused(m) if m.contains("invalid type")));
        let damaged = [
            f(Severity::Warning, "meta-invalid"),
            f(Severity::Error, "key-order"),
        ];
        assert!(matches!(judge(&damaged), DbStart::Damaged(m) if m.starts_with("key-order")));
        let fine = [
            f(Severity::Warning, "meta-invalid"),
            f(Severity::Info, "unknown-bucket"),
        ];
        assert_eq!(judge(&fine), DbStart::Opens);
    }
}
