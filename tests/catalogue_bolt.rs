//! The corruption catalogue, bbolt layer: `single.snapshot.db` copies with
//! damaged meta pages, page headers, branch and leaf elements, overflow
//! pages and bucket headers, the file emptied or cut. The machinery (and
//! what every case must show) is in `tests/common/catalogue.rs`.

mod common;

use std::path::Path;

use common::catalogue::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::trailer;

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

// ---------------------------------------------------------------------------
// the cases

const CATALOGUE: &[Case] = &[
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
];

#[test]
fn catalogue_cases() {
    run_catalogue(CATALOGUE);
}

#[test]
fn catalogue_size() {
    assert!(CATALOGUE.len() >= 15, "db cases");
}

/// docs/corruption.md has one table row per case, in the same order, with
/// the same codes, exit code and salvage claim.
#[test]
fn docs_match_the_catalogue() {
    docs_match(CATALOGUE);
}
