//! The corruption catalogue, WAL layer: member dirs whose WAL segments are
//! torn, zeroed, cut, renamed, duplicated or missing, and whose records
//! have bad CRCs, lengths, types, chains or indexes. The machinery (and what
//! every case must show, real etcd's verdict on a copy included) is in
//! `tests/common/catalogue.rs`.

mod common;

use std::path::Path;

use common::catalogue::*;
use common::*;
use etcd_rescue::pb::raftpb;
use etcd_rescue::wal::Entry;
use prost::Message;

// ---------------------------------------------------------------------------
// WAL damage

fn wal_torn_tail(d: &Path) -> Vec<Loc> {
    let (last, end) = last_entry(d);
    // The length word of the last entry reached the disk, nothing after it.
    edit(&last.file, |b| b[last.offset + 8..end].fill(0));
    vec![at("wal-torn-tail").file(last.name()).offset(last.offset as u64)]
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
// the cases

const CATALOGUE: &[Case] = &[
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
];

#[test]
fn catalogue_cases() {
    run_catalogue(CATALOGUE);
}

#[test]
fn catalogue_size() {
    assert!(CATALOGUE.len() >= 10, "wal cases");
}

/// docs/corruption.md has one table row per case, in the same order, with
/// the same codes, exit code and salvage claim.
#[test]
fn docs_match_the_catalogue() {
    docs_match(CATALOGUE);
}
