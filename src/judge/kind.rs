//! What a path is: the one resolver every command goes through.
//!
//! Files are identified by their first bytes (never by their size: nothing
//! large is read to decide), then by their name when the bytes say nothing
//! (an empty or destroyed file named like a backup is a damaged backup, not
//! "something else"). Directories by their layout.
//!
//! ```text
//! bbolt meta page magic (or both meta page headers)   db, snapshot (sha256 trailer) or .snap.db
//! 08 <crc varint> 12 ...  (snappb.snapshot)            raft .snap file
//! <length word> 08 04 10 ... (walpb crc record)        WAL segment
//! 1f 8b / 28 b5 2f fd / fd 37 7a 58 5a / 42 5a 68      gzip / zstd / xz / bzip2
//! PK 03 04 / "ustar" at 257                           zip / tar
//! DIR/member/{wal,snap}, DIR/{wal,snap}                a member's data dir (or its member dir)
//! DIR/*.wal                                            a WAL directory
//! ```

use std::path::{Path, PathBuf};

pub use crate::datadir::layout::{holds_wal_files, is_member_dir};

use crate::bolt::PageHeader;
use crate::bolt::meta::MAGIC;

/// What a file or directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A bbolt db with etcd's sha256 trailer: `etcdctl snapshot save`.
    Snapshot,
    /// A bbolt db without a trailer: `member/snap/db` or a copy of it.
    Db,
    /// A `<index>.snap.db`: a db a follower received from its leader.
    SnapDb,
    /// A raft `<term>-<index>.snap` file (the v2 store and the membership).
    RaftSnap,
    /// One WAL segment file.
    WalSegment,
    /// A directory of WAL segments (`member/wal`, or etcd's `--wal-dir`).
    WalDir,
    /// An etcd 3 member's data dir (or its `member/` dir).
    DataDir,
    /// An etcd 2.x member dir: a WAL and `.snap` files holding the v2
    /// store, and no v3 db.
    V2DataDir,
    /// Not etcd data.
    Other,
}

impl Kind {
    /// Lowercase words, as tables show it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Db => "db",
            Kind::SnapDb => "snap.db",
            Kind::RaftSnap => "raft .snap",
            Kind::WalSegment => "WAL segment",
            Kind::WalDir => "WAL dir",
            Kind::DataDir => "data-dir",
            Kind::V2DataDir => "etcd 2.x data-dir",
            Kind::Other => "other",
        }
    }

    /// Whether it is a bbolt file (db, snapshot, .snap.db).
    pub fn is_bolt(self) -> bool {
        matches!(self, Kind::Snapshot | Kind::Db | Kind::SnapDb)
    }
}

/// A compression or archive format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// gzip (all members).
    Gzip,
    /// zstd.
    Zstd,
    /// xz.
    Xz,
    /// bzip2.
    Bzip2,
    /// zlib (RFC 1950): gardener's etcd-backup-restore `.zlib` snapshots.
    Zlib,
    /// A zip archive.
    Zip,
    /// A tar archive.
    Tar,
}

impl Container {
    /// Its name in reports.
    pub fn word(self) -> &'static str {
        match self {
            Container::Gzip => "gzip",
            Container::Zlib => "zlib",
            Container::Zstd => "zstd",
            Container::Xz => "xz",
            Container::Bzip2 => "bzip2",
            Container::Zip => "zip",
            Container::Tar => "tar",
        }
    }

    /// Whether it holds one stream (compression) rather than several files.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Container::Gzip | Container::Zstd | Container::Xz | Container::Bzip2 | Container::Zlib
        )
    }
}

/// What the first bytes of a file say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// A bbolt file.
    Bolt,
    /// A raft `.snap` file.
    RaftSnap,
    /// A WAL segment.
    Wal,
    /// A compressed file or an archive.
    Container(Container),
    /// Nothing known.
    Unknown,
}

/// Whether `b` looks like a bbolt file: the magic of meta page 0, or of meta
/// page 1 at a usual page size, or (both magics destroyed) the headers of
/// pages 0 and 1 saying "meta page 0" and "meta page 1". A damaged db is
/// still a db: it must be reported as damaged, not skipped as unknown.
fn looks_like_bolt(b: &[u8]) -> bool {
    let magic = MAGIC.to_le_bytes();
    if b.get(16..20) == Some(&magic) {
        return true;
    }
    let meta_header = |off: usize, id: u64| {
        PageHeader::parse(b.get(off..).unwrap_or(&[]))
            .is_some_and(|h| h.id == id && h.flags == 0x04 && h.count == 0 && h.overflow == 0)
    };
    // Meta page 1 must say so in its header too: a bbolt file inside a tar
    // stream has its meta page 0 magic at offsets like 2048+16.
    (9..=20)
        .map(|shift| 1usize << shift)
        .any(|ps| meta_header(ps, 1) && (b.get(ps + 16..ps + 20) == Some(&magic) || meta_header(0, 0)))
}

/// Reads a protobuf varint at the start of `b`: (value, length).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().take(10).enumerate() {
        v |= u64::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A `snappb.snapshot`: field 1 (crc, varint) then field 2 (data, bytes),
/// as etcd's marshaller writes them; the data length must fit the file.
fn looks_like_snap(b: &[u8]) -> bool {
    if b.first() != Some(&0x08) {
        return false;
    }
    let Some((_, n)) = varint(&b[1..]) else {
        return false;
    };
    let rest = &b[1 + n..];
    if rest.first() != Some(&0x12) {
        return false;
    }
    varint(&rest[1..]).is_some_and(|(len, m)| len > 0 && len <= (rest.len() - 1 - m) as u64)
}

/// A WAL segment starts with a frame whose record is a crc record
/// (`walpb.Record{type: 4, crc: ...}`: bytes 08 04 10).
fn looks_like_wal(b: &[u8]) -> bool {
    let Some(word) = b.get(..8) else {
        return false;
    };
    let len = u64::from_le_bytes(word.try_into().expect("8 bytes")) & 0x00ff_ffff_ffff_ffff;
    (4..=16).contains(&len) && b.get(8..11) == Some(&[0x08, 0x04, 0x10][..])
}

/// A zlib header: deflate with a window of at most 32 KiB, no preset
/// dictionary, one of the four levels' flag bytes, and the header's check
/// (a multiple of 31).
fn looks_like_zlib(b: &[u8]) -> bool {
    matches!(b, [0x78, f, ..] if matches!(f, 0x01 | 0x5e | 0x9c | 0xda) && (0x7800 | u16::from(*f)) % 31 == 0)
}

/// What the first bytes of a file say it is.
pub fn sniff(b: &[u8]) -> Sniff {
    if looks_like_bolt(b) {
        Sniff::Bolt
    } else if b.starts_with(&[0x1f, 0x8b]) {
        Sniff::Container(Container::Gzip)
    } else if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Sniff::Container(Container::Zstd)
    } else if b.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Sniff::Container(Container::Xz)
    } else if b.starts_with(b"BZh") && b.get(3).is_some_and(|c| (b'1'..=b'9').contains(c)) {
        Sniff::Container(Container::Bzip2)
    } else if looks_like_zlib(b) {
        Sniff::Container(Container::Zlib)
    } else if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") {
        Sniff::Container(Container::Zip)
    } else if b.get(257..262) == Some(b"ustar") {
        Sniff::Container(Container::Tar)
    } else if looks_like_wal(b) {
        Sniff::Wal
    } else if looks_like_snap(b) {
        Sniff::RaftSnap
    } else {
        Sniff::Unknown
    }
}

/// What a file's name says it would be, when its bytes say nothing (empty,
/// or destroyed): etcd's own names, and the names backup jobs give
/// snapshots (etcdctl, k3s/rke2 `etcd-snapshot-*`, cron scripts).
pub fn name_hint(name: &str) -> Option<Kind> {
    let mut n = name
        .rsplit(['/', '!'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    // `backup.db.gz`: the name of what is inside.
    for suf in [".gz", ".zst", ".zstd", ".xz", ".bz2", ".gzip"] {
        if let Some(s) = n.strip_suffix(suf) {
            n = s.to_string();
            break;
        }
    }
    if n.ends_with(".snap.db") {
        Some(Kind::SnapDb)
    } else if n.ends_with(".snap") {
        Some(Kind::RaftSnap)
    } else if n.ends_with(".wal") {
        Some(Kind::WalSegment)
    } else if n == "db" || n.ends_with(".db") || backup_name(&n) {
        Some(Kind::Db)
    } else {
        None
    }
}

/// Names backup jobs give snapshot files: `etcd-snapshot-<node>-<time>`
/// (k3s, rke2), `snapshot-2024...`, `etcd-backup.bak`: a word of etcd's
/// and no extension that says it is something else; and gardener's full
/// snapshots, `Full-<first rev>-<last rev>-<time>` (its `Incr-` files are
/// JSON event lists, not dbs).
fn backup_name(n: &str) -> bool {
    if let Some(rest) = n.strip_prefix("full-") {
        let parts: Vec<&str> = rest.split('-').collect();
        if parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return true;
        }
    }
    let ext = n.rsplit_once('.').map(|(_, e)| e);
    let plain = match ext {
        None => true,
        Some(e) => {
            e.chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '_' || c == 'z' || c == 't')
                || ["bak", "backup", "snapshot", "bin", "dat", "snap"].contains(&e)
        }
    };
    plain && ["snapshot", "etcd", "backup"].iter().any(|w| n.contains(w))
}

/// What a file clearly is when it is not etcd data: a format with a magic
/// of its own, or text. `None`: nothing says.
pub fn foreign(head: &[u8]) -> Option<String> {
    const MAGICS: [(&[u8], &str); 12] = [
        (b"\x7fELF", "an ELF executable"),
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (b"SQLite format 3\0", "an SQLite database"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (b"LUKS", "a LUKS volume"),
        (b"QFI\xfb", "a qcow2 disk image"),
        (b"-----BEGIN", "a PEM file"),
        (b"\xef\xbb\xbf", "text"),
    ];
    if let Some((_, what)) = MAGICS.iter().find(|(m, _)| head.starts_with(m)) {
        return Some((*what).to_string());
    }
    let sample = &head[..head.len().min(4096)];
    // Text: UTF-8 (a character cut at the sample's end is fine) without
    // NUL or other control bytes than tab, CR, LF and form feed.
    let utf8 = match std::str::from_utf8(sample) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    let controls = sample
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c));
    (!sample.is_empty() && utf8 && !controls).then(|| {
        let line: String = String::from_utf8_lossy(&sample[..sample.len().min(40)])
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        format!("text ({line:?})")
    })
}

/// Whether a file's size is that of a bbolt file: at least 4 pages of
/// 4 KiB, a whole number of them, or that and a 32-byte sha256 trailer.
fn sized_like_bolt(size: u64) -> bool {
    size >= 4 * 4096 && matches!(size % 4096, 0 | 32)
}

/// Whether a file is placed like a backup: in a directory whose name says
/// etcd, with no extension or a backup's (`.bak`, `.backup`, `.bin`).
fn placed_like_backup(name: &str) -> bool {
    let mut parts: Vec<&str> = name.split(['/', '!']).filter(|p| !p.is_empty()).collect();
    let Some(base) = parts.pop() else {
        return false;
    };
    let base = base.to_ascii_lowercase();
    let ext_ok = match base.rsplit_once('.') {
        None => true,
        Some((stem, e)) => stem.is_empty() || ["bak", "backup", "bin"].contains(&e),
    };
    ext_ok && parts.iter().any(|d| d.to_ascii_lowercase().contains("etcd"))
}

/// The kind of a file from its first bytes (`head`), its size and its
/// name (containers aside). The bytes decide first; then a name etcd or a
/// backup job gives (an empty or destroyed backup is a damaged backup);
/// then a file that is clearly something else (text, an image...) is
/// `Other`; then one sized like a bbolt file, or placed like a backup, is
/// judged as a db, so that destroyed contents are never "not etcd data".
pub fn classify(name: &str, head: &[u8], size: u64) -> Kind {
    let hint = name_hint(name);
    match sniff(head) {
        Sniff::Bolt if hint == Some(Kind::SnapDb) => Kind::SnapDb,
        Sniff::Bolt if crate::mvcc::trailer::has_trailer(size) => Kind::Snapshot,
        Sniff::Bolt => Kind::Db,
        Sniff::RaftSnap => Kind::RaftSnap,
        Sniff::Wal => Kind::WalSegment,
        Sniff::Container(_) => Kind::Other,
        Sniff::Unknown => match hint {
            Some(k) => k,
            None if foreign(head).is_some() => Kind::Other,
            None if sized_like_bolt(size) || placed_like_backup(name) => Kind::Db,
            None => Kind::Other,
        },
    }
}

/// The kind of a file from all its bytes and its name (containers aside).
pub fn file_kind(name: &str, bytes: &[u8]) -> Kind {
    classify(name, bytes, bytes.len() as u64)
}

/// Why a file is not etcd data, in words.
pub fn why_other(head: &[u8], size: u64) -> String {
    if size == 0 {
        return "an empty file, not named like a backup".into();
    }
    if let Some(what) = foreign(head) {
        return what;
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "{size} bytes starting {}: not a bbolt, WAL or snap file, and not named, sized or placed like a backup",
        hex.join(" ")
    )
}

/// What a directory is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirKind {
    /// A data dir or member dir (`member/` inside, or `wal/` or `snap/`).
    Member,
    /// A directory holding WAL segments.
    Wal,
    /// A `snap/` directory holding a db (`DIR/db`) outside a member dir.
    SnapDir(PathBuf),
    /// Anything else.
    Other,
}

/// What the directory at `p` is.
pub fn dir_kind(p: &Path) -> DirKind {
    let member = p.join("member");
    if member.is_dir() && (member.join("wal").is_dir() || member.join("snap").is_dir()) || is_member_dir(p) {
        DirKind::Member
    } else if holds_wal_files(p) {
        DirKind::Wal
    } else if p.join("db").is_file() {
        DirKind::SnapDir(p.join("db"))
    } else {
        DirKind::Other
    }
}

/// What a file given as a WAL segment is instead, when its bytes say it
/// is another etcd file (a damaged segment is still read as one).
pub fn not_a_wal(p: &std::path::Path) -> Option<&'static str> {
    let f = crate::source::MappedFile::open(p).ok()?;
    match sniff(f.bytes()) {
        Sniff::Bolt => Some(
            "a bbolt db (a snapshot or a member's snap/db), not a WAL: `etcd-rescue status` or `get` reads it; a member's WAL is its member/wal dir",
        ),
        Sniff::RaftSnap => Some(
            "a raft .snap file, not a WAL: `etcd-rescue status` reads it; a member's WAL is its member/wal dir",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_etcd_file_kinds() {
        let mut w = crate::wal::writer::SegmentWriter::new(0);
        w.metadata(1, 2);
        assert_eq!(sniff(&w.into_bytes()), Sniff::Wal);
        let mut w = crate::wal::writer::SegmentWriter::new(0x1234_5678);
        w.metadata(1, 2);
        assert_eq!(sniff(&w.into_bytes()), Sniff::Wal);
        let snap = crate::snap::writer::snap_file(b"{}".to_vec(), 3, 1, Default::default());
        assert_eq!(sniff(&snap), Sniff::RaftSnap);
        assert_eq!(sniff(b"\x1f\x8b\x08"), Sniff::Container(Container::Gzip));
        assert_eq!(sniff(b"\x78\x9c\x01"), Sniff::Container(Container::Zlib));
        assert_eq!(sniff(b"\x78\x01\x01"), Sniff::Container(Container::Zlib));
        assert_eq!(sniff(b"x-ray notes\n"), Sniff::Unknown);
        assert_eq!(sniff(b"\x78\x9d\x01"), Sniff::Unknown);
        assert_eq!(sniff(b"hello"), Sniff::Unknown);
        assert_eq!(file_kind("x/etcd-snapshot-1.db", b""), Kind::Db);
        assert_eq!(
            file_kind("x/0000000000000002-0000000000000033.snap", b""),
            Kind::RaftSnap
        );
        assert_eq!(file_kind("notes.txt", b"hello"), Kind::Other);
        assert_eq!(
            file_kind("v2/Backup-1586415580/Full-00000000-00002088-1586415580.gz", b""),
            Kind::Db
        );
        assert_eq!(
            file_kind("Incr-00002089-00002100-1586415600", b"{\"events\":[]}"),
            Kind::Other
        );
        // Destroyed contents sized like a bbolt file, or placed like a
        // backup, are a damaged db; text there is text.
        assert_eq!(classify("x/2024-01-01", &[7u8; 64], 8 * 4096 + 32), Kind::Db);
        assert_eq!(classify("x/2024-01-01", &[7u8; 64], 1000), Kind::Other);
        assert_eq!(classify("/backups/etcd/2024-01-01", &[7u8; 64], 1000), Kind::Db);
        assert_eq!(
            classify("/backups/etcd/README", b"# backups\n", 8 * 4096),
            Kind::Other
        );
        assert_eq!(classify("/backups/etcd/notes.txt", &[7u8; 64], 1000), Kind::Other);
        assert!(why_other(b"\x89PNG\r\n", 100).contains("PNG"));
    }

    #[test]
    fn a_folder_named_snap_is_not_a_member_dir() {
        let base = std::env::temp_dir().join(format!("etcd-rescue-kind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("backups/snap")).unwrap();
        std::fs::write(base.join("backups/snap/etcd-2024.db"), b"x").unwrap();
        assert_eq!(dir_kind(&base.join("backups")), DirKind::Other);
        std::fs::create_dir_all(base.join("m/snap")).unwrap();
        std::fs::write(base.join("m/snap/db"), b"x").unwrap();
        assert_eq!(dir_kind(&base.join("m")), DirKind::Member);
        std::fs::create_dir_all(base.join("d/member/wal")).unwrap();
        assert_eq!(dir_kind(&base.join("d")), DirKind::Member);
        std::fs::create_dir_all(base.join("w")).unwrap();
        std::fs::write(base.join("w/0000000000000000-0000000000000000.wal"), b"").unwrap();
        assert_eq!(dir_kind(&base.join("w")), DirKind::Wal);
        let _ = std::fs::remove_dir_all(&base);
    }
}
