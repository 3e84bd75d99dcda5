//! The corruption catalogue: real fixture files (copies, never the originals)
//! damaged in documented ways, each with the exact finding codes, the place
//! they are reported at and the exit code. `docs/corruption.md` lists the
//! same cases; `docs_match_the_catalogue` keeps the two in step.
//!
//! Every case runs on both fixture versions (v3.4.23 and v3.5.1). The
//! expected page/offset of a finding is computed from the fixture's real
//! layout by the damage function, which returns it together with the damage.
//! The tool must not touch its input: the damaged copy's bytes (sha256) and
//! mtime are compared before and after the run. For db damage that leaves
//! every leaf intact, `salvage --out` must rebuild a db that passes `check`
//! and holds every revision of the original.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::walwrite::{RecordAt, record_map};
use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::bucket::BucketRoot;
use etcd_rescue::bolt::meta::fnv1a64;
use etcd_rescue::mvcc::trailer;
use etcd_rescue::pb::raftpb;
use etcd_rescue::wal::{Entry, RecordType};
use prost::Message;
use serde_json::Value;

/// What a case damages a copy of.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    /// `single.snapshot.db` (an `etcdctl snapshot save` file, with trailer).
    Snapshot,
    /// A member data dir from a tarball: (scenario, member dir name).
    Dir(&'static str, &'static str),
}

/// The command run on the damaged copy.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmd {
    /// `check -o json PATH` (a db file or a data dir).
    Check,
    /// `status -o json FILE`: only its exit code is matched (it has no codes);
    /// the codes come from `check`, which is run too.
    StatusAndCheck,
    /// `wal --salvage -o json DIR`.
    WalSalvage,
    /// `inspect -o json DIR`.
    Inspect,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Check => "check",
            Cmd::StatusAndCheck => "status+check",
            Cmd::WalSalvage => "wal --salvage",
            Cmd::Inspect => "inspect",
        }
    }
}

/// Where a finding must be reported (fields that are `None` are not matched).
#[derive(Clone, Debug, Default)]
struct Loc {
    code: &'static str,
    /// Matched as a suffix of the finding's `file`.
    file: Option<String>,
    page: Option<u64>,
    offset: Option<u64>,
    /// A part of the message.
    msg: Option<String>,
}

fn at(code: &'static str) -> Loc {
    Loc {
        code,
        ..Loc::default()
    }
}

impl Loc {
    fn page(mut self, p: u64) -> Loc {
        self.page = Some(p);
        self
    }
    fn offset(mut self, o: u64) -> Loc {
        self.offset = Some(o);
        self
    }
    fn file(mut self, f: impl Into<String>) -> Loc {
        self.file = Some(f.into());
        self
    }
    fn msg(mut self, m: impl Into<String>) -> Loc {
        self.msg = Some(m.into());
        self
    }
}

struct Case {
    id: &'static str,
    what: &'static str,
    src: Src,
    cmd: Cmd,
    /// Damages the copy (the db file, or the data dir) and returns where the
    /// findings must be reported.
    damage: fn(&Path) -> Vec<Loc>,
    /// Exactly the distinct finding codes reported (sorted), apart from
    /// codes the undamaged fixture already gets from the same command.
    codes: &'static [&'static str],
    exit: i32,
    /// `salvage --out` recovers every revision (db cases only).
    salvage: bool,
}

// ---------------------------------------------------------------------------
// db layout helpers

const META_CHECKSUM_AT: usize = 16 + 56;

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn edit(p: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = read(p);
    f(&mut b);
    std::fs::write(p, b).unwrap();
}

fn page_size(bytes: &[u8]) -> usize {
    Db::open(trailer::image(bytes)).unwrap().0.page_size()
}

/// The `key` bucket's root branch page and its leaf children.
fn key_pages(bytes: &[u8]) -> (u64, Vec<u64>) {
    let (db, _) = Db::open(trailer::image(bytes)).unwrap();
    let b = db.bucket(b"key").unwrap().unwrap();
    let BucketRoot::Page(root) = b.root() else {
        panic!("inline key bucket")
    };
    let node = db.node(root).unwrap();
    assert!(node.is_branch(), "the fixture's key bucket has a branch root");
    let leaves = (0..node.count())
        .map(|i| node.branch(i).unwrap().child.0)
        .collect();
    (root.0, leaves)
}

/// File offset of a slice of `bytes`.
fn off_in(bytes: &[u8], s: &[u8]) -> usize {
    s.as_ptr() as usize - bytes.as_ptr() as usize
}

/// Rewrites meta page `m` with `f` and fixes its checksum, so the meta stays
/// valid and only the changed field is wrong.
fn rewrite_meta(b: &mut [u8], ps: usize, m: usize, f: impl FnOnce(&mut [u8])) {
    let base = m * ps;
    f(&mut b[base..base + ps]);
    let sum = fnv1a64(&b[base + 16..base + META_CHECKSUM_AT]);
    b[base + META_CHECKSUM_AT..base + META_CHECKSUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn high_water(bytes: &[u8]) -> u64 {
    Db::open(trailer::image(bytes)).unwrap().0.high_water()
}

// ---------------------------------------------------------------------------
// db damage

fn db_empty(p: &Path) -> Vec<Loc> {
    edit(p, |b| b.clear());
    vec![at("file-empty")]
}

fn db_torn_mid_leaf(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes) as u64;
    // Cut in the middle of the leaf that holds the 20,000-byte value.
    let leaf = overflow_page(&bytes);
    let (key_root, _) = key_pages(&bytes);
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let root = db.meta().root.0;
    let len = leaf * ps + ps / 2;
    edit(p, |b| b.truncate(len as usize));
    // What the cut takes depends on where etcd put the tree's upper pages
    // (bbolt writes them anywhere): the first page the walk cannot reach is
    // the root page, or the key bucket's root, or the cut leaf.
    let lost = if root >= leaf {
        root
    } else if key_root >= leaf {
        key_root
    } else {
        leaf
    };
    let mut locs = vec![
        at("file-truncated").offset(len),
        at("page-beyond-eof").page(lost).offset(lost * ps),
    ];
    if lost == root {
        // The root leaf lists the buckets: without it there are none.
        locs.push(at("missing-bucket"));
    }
    locs
}

fn db_meta0_checksum(p: &Path) -> Vec<Loc> {
    edit(p, |b| b[META_CHECKSUM_AT] ^= 0x01);
    vec![at("meta-invalid").page(0).offset(0)]
}

fn db_meta1_zeroed(p: &Path) -> Vec<Loc> {
    let ps = page_size(&read(p));
    edit(p, |b| b[ps..2 * ps].fill(0));
    vec![at("meta-invalid").page(1).offset(ps as u64)]
}

fn db_metas_zeroed(p: &Path) -> Vec<Loc> {
    let ps = page_size(&read(p));
    edit(p, |b| b[..2 * ps].fill(0));
    vec![at("no-valid-meta")]
}

fn db_metas_magic_version(p: &Path) -> Vec<Loc> {
    let ps = page_size(&read(p));
    edit(p, |b| {
        b[16] ^= 0xff; // meta 0: magic
        b[ps + 20] = 9; // meta 1: version
    });
    vec![at("no-valid-meta")]
}

fn db_meta_page_size(p: &Path) -> Vec<Loc> {
    let ps = page_size(&read(p));
    // Meta 1 (the older txid) says 8192, with a valid checksum.
    edit(p, |b| {
        rewrite_meta(b, ps, 1, |m| {
            m[24..28].copy_from_slice(&((ps as u32) * 2).to_le_bytes())
        })
    });
    vec![at("meta-page-size-mismatch")]
}

fn db_meta_root_out_of_range(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let hw = high_water(&bytes);
    edit(p, |b| {
        for m in 0..2 {
            rewrite_meta(b, ps, m, |x| put_u64(x, 32, hw + 5));
        }
    });
    // Meta 0 (the higher txid) is the one in use.
    vec![
        at("meta-root-out-of-range").page(0),
        at("page-beyond-high-water-mark").page(hw + 5),
    ]
}

fn db_meta_freelist_out_of_range(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let hw = high_water(&bytes);
    edit(p, |b| {
        for m in 0..2 {
            rewrite_meta(b, ps, m, |x| put_u64(x, 48, hw + 7));
        }
    });
    vec![
        at("meta-freelist-out-of-range").page(0),
        at("page-beyond-high-water-mark").page(hw + 7),
    ]
}

fn db_freelist_is_a_leaf(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[1];
    edit(p, |b| {
        for m in 0..2 {
            rewrite_meta(b, ps, m, |x| put_u64(x, 48, leaf));
        }
    });
    vec![
        at("page-wrong-type")
            .page(leaf)
            .offset(leaf * ps as u64)
            .msg("expected a freelist page, found leaf"),
    ]
}

fn db_page_id_mismatch(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[1];
    edit(p, |b| put_u64(b, leaf as usize * ps, leaf + 1000));
    vec![
        at("page-id-mismatch")
            .page(leaf)
            .offset(leaf * ps as u64)
            .msg(format!("carries page id {}", leaf + 1000)),
    ]
}

fn db_wrong_page_type(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[0];
    edit(p, |b| b[leaf as usize * ps + 8] = 0x10); // freelist flag
    vec![
        at("page-wrong-type")
            .page(leaf)
            .offset(leaf * ps as u64)
            .msg("found freelist"),
    ]
}

fn db_branch_loop(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (root, _) = key_pages(&bytes);
    // Branch element 1's child pointer -> the branch page itself.
    edit(p, |b| put_u64(b, root as usize * ps + 16 + 16 + 8, root));
    vec![at("page-multiple-references").page(root)]
}

fn db_overlapping_pages(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (root, leaves) = key_pages(&bytes);
    // Branch element 1's child pointer -> element 2's leaf: two elements
    // share one page, and element 1's own leaf is no longer reached.
    edit(p, |b| put_u64(b, root as usize * ps + 16 + 16 + 8, leaves[2]));
    vec![at("page-multiple-references").page(leaves[2])]
}

fn db_branch_past_hwm(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (root, _) = key_pages(&bytes);
    let hw = high_water(&bytes);
    edit(p, |b| put_u64(b, root as usize * ps + 16 + 16 + 8, hw + 3));
    vec![at("page-beyond-high-water-mark").page(hw + 3)]
}

fn db_branch_empty(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (root, _) = key_pages(&bytes);
    edit(p, |b| b[root as usize * ps + 10..root as usize * ps + 12].fill(0));
    vec![at("empty-node").page(root).offset(root * ps as u64)]
}

fn db_element_out_of_bounds(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[2] as usize;
    // Element 3's ksize (u32 at element + 8): make it huge.
    let elem = leaf * ps + 16 + 16 * 3;
    edit(p, |b| b[elem + 8 + 2] ^= 0x40);
    vec![at("element-out-of-bounds").page(leaf as u64).offset(elem as u64)]
}

fn db_element_table_overflow(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[3];
    edit(p, |b| {
        let at = leaf as usize * ps + 10;
        b[at..at + 2].copy_from_slice(&0xffffu16.to_le_bytes())
    });
    vec![at("element-table-overflow").page(leaf).offset(leaf * ps as u64)]
}

fn db_element_flags(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[4] as usize;
    let elem = leaf * ps + 16 + 16 * 2;
    edit(p, |b| b[elem] = 0x08);
    vec![at("element-flags").page(leaf as u64).offset(elem as u64)]
}

/// The first page that has overflow pages (the 20,000-byte `/demo/large` value).
fn overflow_page(bytes: &[u8]) -> u64 {
    let (db, _) = Db::open(trailer::image(bytes)).unwrap();
    let kb = db.bucket(b"key").unwrap().unwrap();
    for e in kb.iter() {
        let e = e.unwrap();
        if e.value.len() > db.page_size() {
            let at = off_in(bytes, e.value) / db.page_size();
            // The leaf page that holds it starts the run.
            let mut p = at as u64;
            loop {
                let h = &bytes[p as usize * db.page_size()..];
                if u64::from_le_bytes(h[..8].try_into().unwrap()) == p
                    && u32::from_le_bytes(h[12..16].try_into().unwrap()) > 0
                {
                    return p;
                }
                p -= 1;
            }
        }
    }
    panic!("no value spans overflow pages")
}

fn db_overflow_past_eof(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let ps = page_size(&bytes);
    let pg = overflow_page(&bytes);
    edit(p, |b| {
        let at = pg as usize * ps + 12;
        b[at..at + 4].copy_from_slice(&0x10000u32.to_le_bytes())
    });
    vec![at("page-beyond-high-water-mark").page(pg)]
}

/// Root leaf element of a top-level bucket: (page, element index, element file offset).
fn root_elem(bytes: &[u8], name: &[u8]) -> (u64, usize, usize) {
    let (db, _) = Db::open(trailer::image(bytes)).unwrap();
    let root = db.meta().root;
    let node = db.node(root).unwrap();
    assert!(!node.is_branch());
    let i = (0..node.count())
        .find(|&i| node.leaf(i).unwrap().key == name)
        .unwrap();
    (root.0, i, node.elem_file_offset(i) as usize)
}

fn db_bucket_header(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (page, _, elem) = root_elem(&bytes, b"alarm");
    // vsize (u32 at element + 12) shorter than a bucket header.
    edit(p, |b| {
        b[elem + 12..elem + 16].copy_from_slice(&4u32.to_le_bytes())
    });
    vec![
        at("bad-bucket-header")
            .page(page)
            .offset(elem as u64)
            .msg("bucket \"alarm\" has a bad value"),
    ]
}

fn db_bucket_renamed(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let node = db.node(db.meta().root).unwrap();
    let (_, i, _) = root_elem(&bytes, b"key");
    let k = off_in(&bytes, node.leaf(i).unwrap().key);
    // "key" -> "kez": still sorted before "lease", but etcd's bucket is gone.
    edit(p, |b| b[k + 2] = b'z');
    vec![
        at("missing-bucket").msg("no `key` bucket"),
        at("unknown-bucket").msg("\"kez\""),
    ]
}

fn db_key_order(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (_, leaves) = key_pages(&bytes);
    let leaf = leaves[1];
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let key = db
        .node(etcd_rescue::bolt::Pgid(leaf))
        .unwrap()
        .leaf(5)
        .unwrap()
        .key;
    let k = off_in(&bytes, key);
    // Raise the high byte of the main revision: order breaks, and the
    // KeyValue's mod_revision no longer matches its key.
    edit(p, |b| b[k + 6] ^= 0x10);
    let ps = page_size(&bytes) as u64;
    let elem = |i: u64| leaf * ps + 16 + 16 * i;
    vec![
        // Element 6 is no longer greater than element 5.
        at("key-order").page(leaf).offset(elem(6)),
        at("mod-revision-mismatch").page(leaf).offset(elem(5)),
        at("history-gap").page(leaf).offset(elem(5)),
    ]
}

fn db_bad_keyvalue(p: &Path) -> Vec<Loc> {
    let bytes = read(p);
    let (_, leaves) = key_pages(&bytes);
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let value = db
        .node(etcd_rescue::bolt::Pgid(leaves[0]))
        .unwrap()
        .leaf(0)
        .unwrap()
        .value;
    let v = off_in(&bytes, value);
    // Field 1's tag with wire type 7: not protobuf.
    edit(p, |b| b[v] = 0x0f);
    let ps = page_size(&bytes) as u64;
    vec![at("bad-keyvalue").page(leaves[0]).offset(leaves[0] * ps + 16)]
}

fn db_trailer_flipped(p: &Path) -> Vec<Loc> {
    edit(p, |b| {
        let n = b.len();
        b[n - 1] ^= 1
    });
    vec![at("sha256-mismatch")]
}

fn db_trailer_cut(p: &Path) -> Vec<Loc> {
    edit(p, |b| {
        let n = b.len();
        b.truncate(n - 32)
    });
    vec![at("no-sha256-trailer")]
}

// ---------------------------------------------------------------------------
// WAL layout helpers

type At = RecordAt;

fn records(dir: &Path) -> Vec<At> {
    record_map(&dir.join("member/wal"))
}

fn entry(dir: &Path, index: u64) -> At {
    records(dir).into_iter().find(|r| r.index == Some(index)).unwrap()
}

fn segs(dir: &Path) -> Vec<PathBuf> {
    wal_segments(&dir.join("member"))
}

/// Byte offset, in its frame, of the record's `type` varint (the frame is
/// the 8-byte length word, then `walpb.Record`: field 1 type, field 2 crc, field 3 data).
const TYPE_AT: usize = 8 + 1;

// ---------------------------------------------------------------------------
// WAL damage

/// The last entry record of a member dir's WAL, and where its records end.
fn last_entry(d: &Path) -> (At, usize) {
    let recs = records(d);
    let last = recs
        .iter()
        .rfind(|r| r.kind == RecordType::Entry)
        .unwrap()
        .clone();
    let end = recs.last().map(|r| r.offset + r.frame_len).unwrap();
    (last, end)
}

fn wal_torn_tail(d: &Path) -> Vec<Loc> {
    let (last, end) = last_entry(d);
    // The length word of the last entry reached the disk, nothing after it.
    edit(&last.file, |b| b[last.offset + 8..end].fill(0));
    vec![at("wal-torn-tail").file(last.name()).offset(last.offset as u64)]
}

/// What survives a crash just before the torn write: the WAL ends where
/// the torn record would have started (the reference real etcd's answer on
/// the torn copy is compared with).
fn wal_torn_tail_reference(d: &Path) {
    let (last, end) = last_entry(d);
    edit(&last.file, |b| b[last.offset..end].fill(0));
}

/// For a case whose damage etcd repairs by dropping a write that never
/// completed, the state etcd must serve is not the undamaged original's but
/// the one before that write: this builds it from a copy of the original.
fn reference_of(id: &str) -> Option<fn(&Path)> {
    match id {
        "wal-torn-tail" => Some(wal_torn_tail_reference),
        _ => None,
    }
}

fn wal_zero_sector(d: &Path) -> Vec<Loc> {
    let recs = records(d);
    let e = entry(d, 100);
    // The first 512-byte sector at or after entry 100 that starts 16 bytes
    // into a frame (past the length word and the record's type and crc), so
    // the zeros hit the record's data field.
    let mut s = e.offset.next_multiple_of(512);
    let victim = loop {
        if let Some(r) = recs.iter().find(|r| r.file == e.file && r.offset + 16 == s) {
            break r.clone();
        }
        s += 512;
        assert!(s < e.offset + 64 * 1024, "no sector starts 16 bytes into a frame");
    };
    edit(&e.file, |b| b[s..s + 512].fill(0));
    vec![
        at("wal-torn-tail")
            .file(victim.name())
            .offset(victim.offset as u64),
        at("wal-intact-after-tear"),
    ]
}

fn wal_lost_writes(d: &Path) -> Vec<Loc> {
    let e = entry(d, 150);
    // Everything from entry 150 on is back to the preallocated zeros.
    edit(&e.file, |b| {
        let n = b.len();
        b[e.offset..n].fill(0)
    });
    vec![
        at("db-ahead-of-wal")
            .file("member/snap/db")
            .msg("the WAL ends at index 149"),
    ]
}

fn wal_crc_mismatch(d: &Path) -> Vec<Loc> {
    let e = entry(d, 100);
    edit(&e.file, |b| b[e.offset + e.frame_len - 12] ^= 0x20);
    vec![at("wal-crc-mismatch").file(e.name()).offset(e.offset as u64)]
}

fn wal_undecodable(d: &Path) -> Vec<Loc> {
    let e = entry(d, 100);
    // The whole record body (after the length word) is 0xff.
    edit(&e.file, |b| b[e.offset + 8..e.offset + e.frame_len].fill(0xff));
    vec![
        at("wal-undecodable-record")
            .file(e.name())
            .offset(e.offset as u64),
    ]
}

fn wal_unknown_type(d: &Path) -> Vec<Loc> {
    let e = entry(d, 100);
    edit(&e.file, |b| {
        assert_eq!(b[e.offset + 8], 0x08, "field 1 tag");
        assert_eq!(b[e.offset + TYPE_AT], 2, "entry type");
        b[e.offset + TYPE_AT] = 9
    });
    vec![at("wal-unknown-record").file(e.name()).offset(e.offset as u64)]
}

fn wal_huge_length(d: &Path) -> Vec<Loc> {
    let e = entry(d, 100);
    edit(&e.file, |b| put_u64(b, e.offset, 11 << 20));
    vec![at("wal-bad-frame").file(e.name()).offset(e.offset as u64)]
}

fn wal_short_length(d: &Path) -> Vec<Loc> {
    let e = entry(d, 100);
    // The length word says 8 bytes fewer than the record has (no padding).
    edit(&e.file, |b| {
        let len = (e.frame_len - 8 - 8) as u64;
        put_u64(b, e.offset, len)
    });
    // Go's decoder reports the record cut short as io.ErrUnexpectedEOF,
    // which etcd takes for a torn write in the last segment: it cuts the
    // file there, losing the intact records after it.
    vec![
        at("wal-torn-tail").file(e.name()).offset(e.offset as u64),
        at("wal-intact-after-tear"),
    ]
}

fn wal_chain_break(d: &Path) -> Vec<Loc> {
    let s = segs(d);
    let second = s[1].clone();
    // The second segment's crc record: flip the low bit of its crc varint.
    edit(&second, |b| {
        assert_eq!(b[8..11], [0x08, 0x04, 0x10], "a crc record with a crc field");
        b[11] ^= 0x01
    });
    vec![
        at("wal-chain-break")
            .file(second.file_name().unwrap().to_string_lossy())
            .offset(0),
    ]
}

fn wal_bad_name(d: &Path) -> Vec<Loc> {
    let first = segs(d)[0].clone();
    let bad = first.with_file_name("backup-0.wal");
    std::fs::write(&bad, &read(&first)[..4096]).unwrap();
    vec![at("wal-bad-name").file("backup-0.wal")]
}

fn wal_seq_gap(d: &Path) -> Vec<Loc> {
    let second = segs(d)[1].clone();
    let name = second.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("0000000000000001-"));
    let renamed = format!("0000000000000002-{}", &name[17..]);
    std::fs::rename(&second, second.with_file_name(&renamed)).unwrap();
    vec![at("wal-seq-gap").file(renamed)]
}

fn wal_duplicated_segment(d: &Path) -> Vec<Loc> {
    let second = segs(d)[1].clone();
    let name = second.file_name().unwrap().to_string_lossy().into_owned();
    // A copy of the last segment under the next sequence number, as a
    // careless `cp` or a restore of files over a live dir leaves.
    let copy = format!("0000000000000002-{}", &name[17..]);
    std::fs::copy(&second, second.with_file_name(&copy)).unwrap();
    vec![at("wal-chain-break").file(copy).offset(0)]
}

fn wal_truncated_segment(d: &Path) -> Vec<Loc> {
    let recs = records(d);
    let first = segs(d)[0].clone();
    let last = recs.iter().rfind(|r| r.file == first).unwrap().clone();
    // The first segment ends in the middle of its last record.
    edit(&first, |b| b.truncate(last.offset + last.frame_len / 2));
    vec![
        at("wal-truncated-segment")
            .file(last.name())
            .offset(last.offset as u64),
    ]
}

fn wal_missing_first(d: &Path) -> Vec<Loc> {
    std::fs::remove_file(&segs(d)[0]).unwrap();
    vec![
        at("wal-files-missing").file("member/wal"),
        at("wal-entries-missing").file("member/wal"),
    ]
}

fn wal_garbage_after_end(d: &Path) -> Vec<Loc> {
    let recs = records(d);
    let last = recs.last().unwrap().clone();
    let end = last.offset + last.frame_len;
    // Bytes of an unfinished write, 64 bytes past the zero length word.
    edit(&last.file, |b| b[end + 64..end + 96].fill(0x5a));
    vec![at("wal-unsynced-tail").file(last.name()).offset(end as u64)]
}

/// Rewrites the WAL of `d` into one segment from its records, after `f`
/// changed the list (entries can be re-indexed or dropped; the CRC chain is
/// recomputed, so only the change is wrong).
fn rewrite_wal(d: &Path, f: impl FnOnce(&mut Vec<(i64, Vec<u8>)>)) {
    let wal = d.join("member/wal");
    let mut recs = walwrite::records(&wal);
    f(&mut recs);
    for s in segs(d) {
        std::fs::remove_file(s).unwrap();
    }
    let names = walwrite::write_segments(&wal, &recs, &[]);
    assert_eq!(names.len(), 1);
}

fn entry_pos(recs: &[(i64, Vec<u8>)], index: u64) -> usize {
    recs.iter()
        .position(|(t, d)| *t == 2 && Entry::parse(d).unwrap().index.0 == index)
        .unwrap()
}

fn wal_index_gap(d: &Path) -> Vec<Loc> {
    rewrite_wal(d, |recs| {
        let i = entry_pos(recs, 150);
        recs.remove(i);
    });
    let next = entry(d, 151);
    vec![
        at("wal-index-gap")
            .file(next.name())
            .offset(next.offset as u64)
            .msg("entry 151 follows entry 149"),
    ]
}

fn wal_index_backwards(d: &Path) -> Vec<Loc> {
    rewrite_wal(d, |recs| {
        let i = entry_pos(recs, 150);
        let mut e = raftpb::Entry::decode(recs[i].1.as_slice()).unwrap();
        e.index = Some(140);
        recs[i].1 = e.encode_to_vec();
    });
    // Raft reads index 140 after 149 as replacing 140..149, then 151 after
    // 140 as a hole.
    let next = entry(d, 151);
    vec![
        at("wal-entries-replaced").msg("10 entries were replaced"),
        at("wal-index-gap")
            .file(next.name())
            .offset(next.offset as u64)
            .msg("entry 151 follows entry 140"),
    ]
}

// ---------------------------------------------------------------------------
// snap / data dir damage

fn snap_dir(d: &Path) -> PathBuf {
    d.join("member/snap")
}

/// The newest `.snap` file's name.
fn newest_snap(d: &Path) -> String {
    etcd_rescue::snap::scan(&snap_dir(d)).snaps[0].file.clone()
}

fn snap_bad_crc(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    edit(&snap_dir(d).join(&f), |b| {
        let n = b.len();
        b[n / 2] ^= 0xff
    });
    vec![at("snap-crc-mismatch").file(format!("member/snap/{f}"))]
}

fn snap_truncated(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    edit(&snap_dir(d).join(&f), |b| {
        let n = b.len();
        b.truncate(n / 2)
    });
    vec![at("snap-undecodable").file(format!("member/snap/{f}"))]
}

fn snap_empty(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    edit(&snap_dir(d).join(&f), |b| b.clear());
    vec![at("snap-empty").file(format!("member/snap/{f}"))]
}

fn snap_index_mismatch(d: &Path) -> Vec<Loc> {
    let f = newest_snap(d);
    let n = etcd_rescue::snap::name::SnapName::parse(&f).unwrap();
    // Named one index higher than the snapshot it holds.
    let renamed = format!("{:016x}-{:016x}.snap", n.term.0, n.index.0 + 1);
    std::fs::rename(snap_dir(d).join(&f), snap_dir(d).join(&renamed)).unwrap();
    vec![at("snap-name-mismatch").file(format!("member/snap/{renamed}"))]
}

fn snap_db_missing(d: &Path) -> Vec<Loc> {
    let db = snap_dir(d).join("db");
    let bytes = read(&db);
    let (ci_at, oldest) = {
        let (b, _) = Db::open(&bytes).unwrap();
        let meta = b.bucket(b"meta").unwrap().unwrap();
        let v = meta.get(b"consistent_index").unwrap().unwrap().value;
        assert_eq!(v.len(), 8);
        let snaps = etcd_rescue::snap::scan(&snap_dir(d));
        let oldest = snaps
            .snaps
            .iter()
            .filter_map(|s| s.snapshot.as_ref().map(|x| x.index.0))
            .min()
            .unwrap();
        (off_in(&bytes, v), oldest)
    };
    // The db's consistent index below every snapshot, as if etcd had
    // received a snapshot from the leader but its <index>.snap.db was lost.
    edit(&db, |b| {
        b[ci_at..ci_at + 8].copy_from_slice(&(oldest - 1).to_be_bytes())
    });
    vec![
        at("db-behind-snapshot")
            .file("member/snap/db")
            .msg(format!("consistent index {}", oldest - 1)),
    ]
}

fn datadir_db_missing(d: &Path) -> Vec<Loc> {
    std::fs::remove_file(snap_dir(d).join("db")).unwrap();
    vec![at("db-missing").file("member/snap/db")]
}

fn datadir_db_torn(d: &Path) -> Vec<Loc> {
    let db = snap_dir(d).join("db");
    let bytes = read(&db);
    let ps = page_size(&bytes);
    // The cut must take the root page with it (whatever etcd's layout):
    // page 3, or the root page when it comes first.
    let root = Db::open(trailer::image(&bytes)).unwrap().0.meta().root.0 as usize;
    let len = 3.min(root) * ps + ps / 2;
    edit(&db, |b| b.truncate(len));
    vec![at("file-truncated").file("member/snap/db").offset(len as u64)]
}

// ---------------------------------------------------------------------------
// the catalogue

/// History findings that follow from a lost key leaf, when that leaf held a
/// key's earlier revisions: which keys it held depends on the layout of the
/// fixture, so a case may report them and never requires them.
const FOLLOW_ON: &[&str] = &["orphan-tombstone", "history-gap", "version-discontinuity"];

const SNAP: Src = Src::Snapshot;
const SINGLE: Src = Src::Dir("single", "single");
const KILLED: Src = Src::Dir("killed", "killed");
const SNAPCOUNT: Src = Src::Dir("snapcount", "snapcount");

macro_rules! case {
    ($id:literal, $what:literal, $src:expr, $cmd:expr, $damage:expr, [$($code:literal),*], $exit:literal, $salvage:literal) => {
        Case { id: $id, what: $what, src: $src, cmd: $cmd, damage: $damage, codes: &[$($code),*], exit: $exit, salvage: $salvage }
    };
}

const CATALOGUE: &[Case] = &[
    // --- bbolt db (single.snapshot.db) ---
    case!(
        "db-file-empty",
        "the file has 0 bytes",
        SNAP,
        Cmd::StatusAndCheck,
        db_empty,
        ["file-empty", "no-sha256-trailer"],
        1,
        false
    ),
    case!(
        "db-torn-mid-page",
        "the file is cut in the middle of the key bucket leaf that starts a 6-page value",
        SNAP,
        Cmd::StatusAndCheck,
        db_torn_mid_leaf,
        ["file-truncated", "no-sha256-trailer", "page-beyond-eof"],
        1,
        false
    ),
    case!(
        "db-meta0-checksum",
        "one bit of meta page 0's checksum flipped",
        SNAP,
        Cmd::Check,
        db_meta0_checksum,
        ["meta-invalid", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-meta1-zeroed",
        "meta page 1 zeroed",
        SNAP,
        Cmd::Check,
        db_meta1_zeroed,
        ["meta-invalid", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-meta-both-zeroed",
        "both meta pages zeroed",
        SNAP,
        Cmd::StatusAndCheck,
        db_metas_zeroed,
        ["no-valid-meta", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-meta-both-bad",
        "meta 0's magic and meta 1's version broken",
        SNAP,
        Cmd::StatusAndCheck,
        db_metas_magic_version,
        ["no-valid-meta", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-meta-page-size-mismatch",
        "meta 1 says another page size (valid checksum)",
        SNAP,
        Cmd::Check,
        db_meta_page_size,
        ["meta-page-size-mismatch", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-meta-root-out-of-range",
        "both metas name a root page past the high-water mark (valid checksums)",
        SNAP,
        Cmd::Check,
        db_meta_root_out_of_range,
        [
            "meta-root-out-of-range",
            "missing-bucket",
            "page-beyond-high-water-mark",
            "sha256-mismatch"
        ],
        1,
        true
    ),
    case!(
        "db-meta-freelist-out-of-range",
        "both metas name a freelist page past the high-water mark (valid checksums)",
        SNAP,
        Cmd::Check,
        db_meta_freelist_out_of_range,
        [
            "meta-freelist-out-of-range",
            "page-beyond-high-water-mark",
            "sha256-mismatch"
        ],
        1,
        true
    ),
    case!(
        "db-freelist-garbage",
        "both metas name a live key leaf as the freelist page",
        SNAP,
        Cmd::Check,
        db_freelist_is_a_leaf,
        ["page-wrong-type", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-page-id-mismatch",
        "a key leaf's page header carries another page id",
        SNAP,
        Cmd::Check,
        db_page_id_mismatch,
        ["page-id-mismatch", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-wrong-page-type",
        "a key leaf's page flags say freelist",
        SNAP,
        Cmd::Check,
        db_wrong_page_type,
        ["page-wrong-type", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-branch-pointer-loop",
        "a key bucket branch element points at the branch page itself",
        SNAP,
        Cmd::Check,
        db_branch_loop,
        ["page-multiple-references", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-overlapping-pages",
        "two key bucket branch elements point at the same leaf",
        SNAP,
        Cmd::Check,
        db_overlapping_pages,
        [
            "key-outside-parent-range",
            "page-multiple-references",
            "sha256-mismatch"
        ],
        1,
        true
    ),
    case!(
        "db-branch-pointer-past-hwm",
        "a key bucket branch element points past the high-water mark",
        SNAP,
        Cmd::Check,
        db_branch_past_hwm,
        ["page-beyond-high-water-mark", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-branch-empty",
        "the key bucket's branch page says it has 0 elements",
        SNAP,
        Cmd::Check,
        db_branch_empty,
        ["empty-node", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-element-out-of-bounds",
        "a leaf element's key size runs past its page",
        SNAP,
        Cmd::Check,
        db_element_out_of_bounds,
        ["element-out-of-bounds", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-element-table-overflow",
        "a leaf's element count is 65535",
        SNAP,
        Cmd::Check,
        db_element_table_overflow,
        ["element-table-overflow", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-element-flags",
        "a leaf element has an unknown flag bit",
        SNAP,
        Cmd::Check,
        db_element_flags,
        ["element-flags", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-overflow-past-eof",
        "the page holding a 20,000-byte value claims 65536 overflow pages",
        SNAP,
        Cmd::Check,
        db_overflow_past_eof,
        ["page-beyond-high-water-mark", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-bucket-header",
        "the alarm bucket's value is 4 bytes, shorter than a bucket header",
        SNAP,
        Cmd::Check,
        db_bucket_header,
        ["bad-bucket-header", "sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-bucket-renamed",
        "the key bucket's name changed to kez",
        SNAP,
        Cmd::Check,
        db_bucket_renamed,
        ["missing-bucket", "sha256-mismatch", "unknown-bucket"],
        1,
        false
    ),
    case!(
        "db-key-order",
        "a revision key's main revision raised, out of order",
        SNAP,
        Cmd::Check,
        db_key_order,
        [
            "history-gap",
            "key-order",
            "mod-revision-mismatch",
            "sha256-mismatch"
        ],
        1,
        false
    ),
    case!(
        "db-bad-keyvalue",
        "a KeyValue's first byte is not protobuf",
        SNAP,
        Cmd::Check,
        db_bad_keyvalue,
        ["bad-keyvalue", "sha256-mismatch"],
        1,
        false
    ),
    case!(
        "db-sha256-mismatch",
        "one bit of the sha256 trailer flipped",
        SNAP,
        Cmd::Check,
        db_trailer_flipped,
        ["sha256-mismatch"],
        1,
        true
    ),
    case!(
        "db-trailer-cut",
        "the 32-byte sha256 trailer cut off",
        SNAP,
        Cmd::Check,
        db_trailer_cut,
        ["no-sha256-trailer"],
        0,
        true
    ),
    // --- WAL ---
    case!(
        "wal-torn-tail",
        "the last entry's length word reached the disk, its body did not (killed member)",
        KILLED,
        Cmd::WalSalvage,
        wal_torn_tail,
        ["wal-tmp-file", "wal-torn-tail"],
        1,
        false
    ),
    case!(
        "wal-zero-sector",
        "a 512-byte sector inside the segment zeroed, records after it intact",
        SINGLE,
        Cmd::WalSalvage,
        wal_zero_sector,
        ["wal-intact-after-tear", "wal-torn-tail"],
        1,
        false
    ),
    case!(
        "wal-lost-writes",
        "entries from 150 on back to preallocated zeros, while the db holds them",
        SINGLE,
        Cmd::Inspect,
        wal_lost_writes,
        ["db-ahead-of-wal"],
        1,
        false
    ),
    case!(
        "wal-crc-mismatch",
        "one bit of entry 100's data flipped mid-segment",
        SINGLE,
        Cmd::WalSalvage,
        wal_crc_mismatch,
        ["wal-crc-mismatch"],
        1,
        false
    ),
    case!(
        "wal-undecodable-record",
        "entry 100's record bytes are all 0xff",
        SINGLE,
        Cmd::WalSalvage,
        wal_undecodable,
        ["wal-undecodable-record"],
        1,
        false
    ),
    case!(
        "wal-unknown-record-type",
        "entry 100's record type changed to 9 (CRC still valid)",
        SINGLE,
        Cmd::WalSalvage,
        wal_unknown_type,
        ["wal-unknown-record"],
        1,
        false
    ),
    case!(
        "wal-huge-length",
        "entry 100's length word says 11 MiB",
        SINGLE,
        Cmd::WalSalvage,
        wal_huge_length,
        ["wal-bad-frame"],
        1,
        false
    ),
    case!(
        "wal-short-length",
        "entry 100's length word says 8 bytes fewer",
        SINGLE,
        Cmd::WalSalvage,
        wal_short_length,
        ["wal-intact-after-tear", "wal-torn-tail"],
        1,
        false
    ),
    case!(
        "wal-chain-break",
        "the CRC carried by the second segment's crc record changed",
        SNAPCOUNT,
        Cmd::WalSalvage,
        wal_chain_break,
        ["wal-chain-break"],
        1,
        false
    ),
    case!(
        "wal-bad-name",
        "a file backup-0.wal beside the segments",
        SINGLE,
        Cmd::WalSalvage,
        wal_bad_name,
        ["wal-bad-name"],
        1,
        false
    ),
    case!(
        "wal-seq-gap",
        "the second segment renamed to sequence 2",
        SNAPCOUNT,
        Cmd::WalSalvage,
        wal_seq_gap,
        ["wal-seq-gap"],
        1,
        false
    ),
    case!(
        "wal-duplicated-segment",
        "the last of two segments copied under the next sequence number",
        SNAPCOUNT,
        Cmd::WalSalvage,
        wal_duplicated_segment,
        ["wal-chain-break"],
        1,
        false
    ),
    case!(
        "wal-truncated-segment",
        "the first of two segments cut inside its last record",
        SNAPCOUNT,
        Cmd::WalSalvage,
        wal_truncated_segment,
        ["wal-truncated-segment"],
        1,
        false
    ),
    case!(
        "wal-missing-first-segment",
        "the first of two segments removed",
        SNAPCOUNT,
        Cmd::Inspect,
        wal_missing_first,
        ["wal-entries-missing", "wal-files-missing"],
        1,
        false
    ),
    case!(
        "wal-garbage-after-end",
        "non-zero bytes past the end of the last segment's records",
        SINGLE,
        Cmd::WalSalvage,
        wal_garbage_after_end,
        ["wal-unsynced-tail"],
        0,
        false
    ),
    case!(
        "wal-index-gap",
        "entry 150 removed (the WAL re-encoded, CRC chain valid)",
        SINGLE,
        Cmd::WalSalvage,
        wal_index_gap,
        ["wal-index-gap"],
        1,
        false
    ),
    case!(
        "wal-index-backwards",
        "entry 150 says index 140 (the WAL re-encoded, CRC chain valid)",
        SINGLE,
        Cmd::WalSalvage,
        wal_index_backwards,
        ["wal-entries-replaced", "wal-index-gap"],
        1,
        false
    ),
    // --- snap files and data dirs ---
    case!(
        "snap-bad-crc",
        "one byte in the middle of the newest .snap flipped",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_bad_crc,
        ["snap-crc-mismatch"],
        1,
        false
    ),
    case!(
        "snap-truncated",
        "the newest .snap cut to half its size",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_truncated,
        ["snap-undecodable"],
        1,
        false
    ),
    case!(
        "snap-empty",
        "the newest .snap has 0 bytes",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_empty,
        ["snap-empty"],
        1,
        false
    ),
    case!(
        "snap-index-mismatch",
        "the newest .snap renamed to the next index",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_index_mismatch,
        ["snap-name-mismatch"],
        1,
        false
    ),
    case!(
        "snap-db-missing",
        "the db's consistent index below every snapshot, no <index>.snap.db",
        SNAPCOUNT,
        Cmd::Inspect,
        snap_db_missing,
        ["db-behind-snapshot", "db-behind-wal"],
        1,
        false
    ),
    case!(
        "datadir-db-missing",
        "member/snap/db removed",
        SINGLE,
        Cmd::Check,
        datadir_db_missing,
        ["db-behind-wal", "db-missing"],
        1,
        false
    ),
    case!(
        "datadir-db-torn",
        "member/snap/db cut in the middle of page 3, or of the root page if it comes first",
        SINGLE,
        Cmd::Check,
        datadir_db_torn,
        ["file-truncated", "missing-bucket", "page-beyond-eof"],
        1,
        false
    ),
];

// ---------------------------------------------------------------------------
// running a case

/// The findings of a command's JSON output, as a list of finding objects.
fn findings(cmd: Cmd, r: &Run) -> Vec<Value> {
    match cmd {
        Cmd::Check | Cmd::StatusAndCheck => r.json()["files"][0]["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Cmd::Inspect => r.json()["members"][0]["findings"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Cmd::WalSalvage => r
            .out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|l| l["record"] == "finding")
            .collect(),
    }
}

fn matches(f: &Value, l: &Loc) -> bool {
    f["code"] == l.code
        && l.page.is_none_or(|p| f["page"].as_u64() == Some(p))
        && l.offset.is_none_or(|o| f["offset"].as_u64() == Some(o))
        && l.file
            .as_ref()
            .is_none_or(|s| f["file"].as_str().is_some_and(|x| x.ends_with(s.as_str())))
        && l.msg
            .as_ref()
            .is_none_or(|m| f["message"].as_str().is_some_and(|x| x.contains(m.as_str())))
}

fn get_all(p: &Path) -> Value {
    let r = run(&["get", "-o", "json", p.to_str().unwrap(), "", "--prefix"]);
    assert_eq!(r.code, 0, "get {}: {}", p.display(), r.err);
    r.json()["kvs"].clone()
}

/// Runs one case on one version; returns a description of what is wrong.
fn run_case(c: &Case, vdir: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, target) = match c.src {
        Src::Snapshot => {
            let orig = vdir.join("single.snapshot.db");
            let t = tmp.path().join("single.snapshot.db");
            std::fs::copy(&orig, &t).unwrap();
            (orig, t)
        }
        Src::Dir(scenario, name) => {
            let orig = extracted_dir(vdir, scenario).join(name);
            let t = tmp.path().join(name);
            copy_tree(&orig, &t);
            (orig, t)
        }
    };
    // What the undamaged fixture itself reports with the same command (the
    // 3.4.23 snapcount db is one entry behind its WAL, for instance).
    let baseline: BTreeSet<String> = {
        let p = orig.to_str().unwrap();
        let r = match c.cmd {
            Cmd::Check | Cmd::StatusAndCheck => run(&["check", "-o", "json", p]),
            Cmd::Inspect => run(&["inspect", "-o", "json", p]),
            Cmd::WalSalvage => run(&["wal", "--salvage", "-o", "json", p]),
        };
        findings(c.cmd, &r)
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect()
    };
    let mut locs = (c.damage)(&target);
    // The trailer finding names where the trailer starts.
    if matches!(c.src, Src::Snapshot) && c.codes.contains(&"sha256-mismatch") {
        let len = std::fs::metadata(&target).unwrap().len();
        locs.push(at("sha256-mismatch").offset(len - 32));
    }
    let before = digests(&target);
    assert_ne!(before, digests(&orig), "{}: the damage changed nothing", c.id);
    let path = target.to_str().unwrap();
    let r = unchanged(&[&target], || match c.cmd {
        Cmd::Check | Cmd::StatusAndCheck => run(&["check", "-o", "json", path]),
        Cmd::Inspect => run(&["inspect", "-o", "json", path]),
        Cmd::WalSalvage => run(&["wal", "--salvage", "-o", "json", path]),
    });
    let mut problems = Vec::new();
    if r.code != c.exit {
        problems.push(format!(
            "{} exit {} (want {}): {}",
            c.cmd.name(),
            r.code,
            c.exit,
            r.err
        ));
    }
    let fs = findings(c.cmd, &r);
    let got: BTreeSet<&str> = fs.iter().map(|f| f["code"].as_str().unwrap()).collect();
    // The case's codes, and those the damage function found in the
    // fixture's layout.
    let want: BTreeSet<&str> = c
        .codes
        .iter()
        .copied()
        .chain(locs.iter().map(|l| l.code))
        .collect();
    // Exactly the case's codes, plus possibly some the undamaged fixture
    // already reports, and the history findings that follow from a lost
    // key leaf: whether a lost leaf held a key's earlier revisions (so that
    // a later delete has nothing before it) depends on how etcd laid out
    // the fixture, so they are allowed, never required.
    let follow_on = |g: &str| FOLLOW_ON.contains(&g) && c.id.starts_with("db-");
    if !want.is_subset(&got)
        || got
            .iter()
            .any(|g| !want.contains(g) && !baseline.contains(*g) && !follow_on(g))
    {
        problems.push(format!("codes {got:?}, want {want:?} (baseline {baseline:?})"));
    }
    for l in &locs {
        if !fs.iter().any(|f| matches(f, l)) {
            let same: Vec<&Value> = fs.iter().filter(|f| f["code"] == l.code).collect();
            problems.push(format!("no finding at {l:?}; {} ones: {same:?}", l.code));
        }
    }
    // Every command gives the same verdict; for a member dir, it is what
    // real etcd does on a copy of the damage.
    match common::agree::agree(&target) {
        Err(e) => problems.push(format!("agreement: {e}")),
        Ok(a) => {
            if let Src::Dir(_, name) = c.src
                && let Some(bin) = require(Need::EtcdFor(vdir))
            {
                let reference = match reference_of(c.id) {
                    Some(f) => {
                        let r = tmp.path().join("reference").join(name);
                        copy_tree(&orig, &r);
                        f(&r);
                        r
                    }
                    None => orig.clone(),
                };
                if let Err(e) = common::agree::agrees_with_etcd(&bin, &target, &reference, &a) {
                    problems.push(format!("real etcd: {e}"));
                }
            }
        }
    }
    if c.cmd == Cmd::StatusAndCheck {
        let s = unchanged(&[&target], || run(&["status", "-o", "json", path]));
        if s.code != c.exit {
            problems.push(format!("status exit {} (want {}): {}", s.code, c.exit, s.err));
        }
    }
    assert_eq!(before, digests(&target), "{}: the input was modified", c.id);
    if std::env::var_os("CATALOGUE_DUMP").is_some() {
        eprintln!(
            "DUMP {} {} {}",
            c.id,
            vdir.display(),
            serde_json::to_string(&fs).unwrap()
        );
    }
    if c.src == Src::Snapshot
        && let Err(e) = check_salvage(&orig, &target, tmp.path(), c.salvage)
    {
        problems.push(e);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}) on {}:\n  {}\n  (findings: {})",
            c.id,
            c.what,
            vdir.display(),
            problems.join("\n  "),
            serde_json::to_string(&fs).unwrap()
        ))
    }
}

fn digests(p: &Path) -> Vec<(PathBuf, [u8; 32])> {
    walk_files(p)
        .into_iter()
        .map(|f| {
            let d = digest(&f);
            (f.strip_prefix(p).map(Path::to_path_buf).unwrap_or(f), d)
        })
        .collect()
}

/// `salvage --out` of every damaged snapshot gives a db in which `check`
/// finds no error, and claims nothing is lost only when nothing is; when
/// `exact` (every leaf intact), it holds every revision and every key of the
/// undamaged original.
fn check_salvage(orig: &Path, damaged: &Path, tmp: &Path, exact: bool) -> Result<(), String> {
    let out = tmp.join("salvaged.db");
    let r = unchanged(&[damaged], || {
        run(&[
            "salvage",
            "-o",
            "json",
            damaged.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--force",
        ])
    });
    if !out.is_file() {
        return Err(format!("salvage wrote nothing (exit {}): {}", r.code, r.err));
    }
    let c = run(&["check", "-o", "json", out.to_str().unwrap()]);
    let cj = c.json();
    let errors: Vec<&Value> = cj["files"][0]["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["severity"] == "error").collect())
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(format!("check finds errors in the salvaged db: {errors:?}"));
    }
    let complete = r.json()["report"]["complete"] == true;
    let missing = revision_keys(&read(orig))
        .difference(&revision_keys(&read(&out)))
        .count();
    if complete && (r.code != 0 || missing > 0) {
        return Err(format!(
            "salvage says nothing is lost (exit {}) but {missing} revisions are missing",
            r.code
        ));
    }
    if !exact {
        return Ok(());
    }
    if c.code != 0 {
        return Err(format!("the salvaged db fails check: {}", c.out));
    }
    if revision_keys(&read(&out)) != revision_keys(&read(orig)) {
        return Err("the salvaged db lost revisions".into());
    }
    if get_all(&out) != get_all(orig) {
        return Err("the salvaged db's keys differ from the original's".into());
    }
    Ok(())
}

#[test]
fn catalogue_cases() {
    let ids: BTreeSet<&str> = CATALOGUE.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), CATALOGUE.len(), "case ids are unique");
    let vdirs = version_dirs();
    // Extract each scenario once, before the threads share it.
    for v in &vdirs {
        for s in ["single", "killed", "snapcount"] {
            extracted_dir(v, s);
        }
    }
    let only = std::env::var("CATALOGUE_ONLY").ok();
    let jobs: Vec<(&Case, &PathBuf)> = CATALOGUE
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.id.contains(o)))
        .flat_map(|c| vdirs.iter().map(move |v| (c, v)))
        .collect();
    // A few cases at a time: each holds a copy of a data dir (64-128 MB of
    // WAL) while it runs.
    let width = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    let mut errors: Vec<String> = Vec::new();
    for chunk in jobs.chunks(width) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(c, v)| (c.id, s.spawn(move || run_case(c, v))))
                .collect();
            for (id, h) in handles {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(e),
                    Err(e) => errors.push(format!(
                        "{id}: panic: {}",
                        e.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                }
            }
        });
    }
    assert!(
        errors.is_empty(),
        "{} failure(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn catalogue_size() {
    let n = |p: &str| CATALOGUE.iter().filter(|c| c.id.starts_with(p)).count();
    assert!(CATALOGUE.len() >= 30);
    assert!(n("db-") >= 15, "db cases");
    assert!(n("wal-") >= 10, "WAL cases");
    assert!(n("snap-") + n("datadir-") >= 4, "snap/data dir cases");
}

/// docs/corruption.md has one table row per case, in the same order, with
/// the same codes, exit code and salvage claim.
#[test]
fn docs_match_the_catalogue() {
    let text = std::fs::read_to_string(repo().join("docs/corruption.md")).unwrap();
    let ticked = |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    type Row = (String, BTreeSet<String>, String, bool);
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            // | id | what | codes | where | exit | salvage |
            assert!(cols.len() >= 7, "row with too few columns: {l}");
            let id = ticked(cols[1]).first().cloned().unwrap_or_default();
            (
                id,
                ticked(cols[3]).into_iter().collect(),
                cols[5].to_string(),
                cols[6].starts_with("yes"),
            )
        })
        .collect();
    let want: Vec<Row> = CATALOGUE
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                c.codes.iter().map(|s| s.to_string()).collect(),
                c.exit.to_string(),
                c.salvage,
            )
        })
        .collect();
    assert_eq!(rows, want, "docs/corruption.md is out of step with the catalogue");
}
