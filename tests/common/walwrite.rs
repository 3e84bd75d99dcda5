//! A minimal WAL writer for tests: it re-encodes the records of a real WAL
//! into more segments, cut the way etcd cuts (each new segment starts with a
//! crc record carrying the running CRC, then the metadata record and the
//! last HardState), so tests can remove a middle segment of a real WAL.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use etcd_rescue::pb::walpb;
use etcd_rescue::wal::frame::encode_word;
use etcd_rescue::wal::reader::{self, Event};
use etcd_rescue::wal::{Entry, RecordType, WalDir};
use prost::Message;

/// Every record of a WAL dir as (type, data), in order, with no damage allowed.
pub fn records(wal: &Path) -> Vec<(i64, Vec<u8>)> {
    let d = WalDir::open(wal).unwrap();
    let mut out = Vec::new();
    reader::read(&d.segment_bytes(), |ev| match ev {
        Event::Record(r) => {
            if r.kind != RecordType::Crc {
                out.push((r.record.raw_type, r.record.data.to_vec()));
            }
        }
        Event::Damage(d) => panic!("damage in the source WAL: {:?}", d.kind),
        Event::SegmentEnd(_) => {}
    });
    out
}

/// Where a record of a WAL is: segment file, frame offset and length, type,
/// and the entry index for entry records.
#[derive(Debug, Clone)]
pub struct RecordAt {
    pub file: PathBuf,
    pub offset: usize,
    pub frame_len: usize,
    pub kind: RecordType,
    pub index: Option<u64>,
}

impl RecordAt {
    /// The segment's file name.
    pub fn name(&self) -> String {
        self.file.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// Where every record of a WAL dir is (records etcd reads; damage skipped),
/// for tests that damage a chosen record.
pub fn record_map(wal: &Path) -> Vec<RecordAt> {
    let d = WalDir::open(wal).unwrap();
    let mut out = Vec::new();
    reader::read(&d.segment_bytes(), |ev| {
        if let Event::Record(r) = ev {
            out.push(RecordAt {
                file: d.segments[r.at.segment].file.path().to_path_buf(),
                offset: r.at.offset as usize,
                frame_len: r.frame_len as usize,
                kind: r.kind,
                index: (r.kind == RecordType::Entry).then(|| Entry::parse(r.record.data).unwrap().index.0),
            });
        }
    });
    out
}

fn frame(out: &mut Vec<u8>, t: i64, crc: u32, data: Option<&[u8]>) {
    let body = walpb::Record {
        r#type: Some(t),
        crc: Some(crc),
        data: data.map(<[u8]>::to_vec),
    }
    .encode_to_vec();
    out.extend_from_slice(&encode_word(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out.resize(out.len().next_multiple_of(8), 0);
}

/// Writes `recs` into `dst` as segments, starting a new segment before the
/// entry records whose index is in `cut_before`. Returns the file names.
pub fn write_segments(dst: &Path, recs: &[(i64, Vec<u8>)], cut_before: &[u64]) -> Vec<String> {
    std::fs::create_dir_all(dst).unwrap();
    let mut names = Vec::new();
    let mut crc = 0u32;
    let mut seq = 0u64;
    let mut buf = Vec::new();
    let mut metadata: Option<Vec<u8>> = None;
    let mut state: Option<Vec<u8>> = None;
    let mut name_index = 0u64;
    frame(&mut buf, 4, 0, None);
    for (t, data) in recs {
        if *t == 2 {
            let e = Entry::parse(data).unwrap();
            if cut_before.contains(&e.index.0) {
                let name = format!("{seq:016x}-{name_index:016x}.wal");
                std::fs::write(dst.join(&name), &buf).unwrap();
                names.push(name);
                seq += 1;
                name_index = e.index.0;
                buf.clear();
                frame(&mut buf, 4, crc, None);
                for (tt, d) in [(1, &metadata), (3, &state)] {
                    if let Some(d) = d {
                        crc = crc32c::crc32c_append(crc, d);
                        frame(&mut buf, tt, crc, Some(d));
                    }
                }
            }
        }
        match t {
            1 => metadata = Some(data.clone()),
            3 => state = Some(data.clone()),
            _ => {}
        }
        crc = crc32c::crc32c_append(crc, data);
        frame(&mut buf, *t, crc, Some(data));
    }
    let name = format!("{seq:016x}-{name_index:016x}.wal");
    std::fs::write(dst.join(&name), &buf).unwrap();
    names.push(name);
    names
}
