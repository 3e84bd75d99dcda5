//! The WAL's small decoders directly on arbitrary bytes: frames,
//! `walpb.Record`, `raftpb.Entry`, HardState, Metadata, the snapshot mark,
//! ConfChange / ConfChangeV2, and an entry's payload (InternalRaftRequest or
//! v2 Request) for every entry type, summarized and rendered as JSON.

use etcd_rescue::wal::confchange::{ConfChange, ConfChangeV2};
use etcd_rescue::wal::frame::{self, Slot};
use etcd_rescue::wal::payload;
use etcd_rescue::wal::{Entry, EntryType, HardState, Index, Metadata, Record, SnapshotMark, Term};

fn payload_of(e: &Entry<'_>) {
    let p = payload::decode(e);
    let _ = p.request.summary(0);
    let _ = p.request.summary(16);
    let _ = p.request.kind();
    let _ = p.request.touches_prefix(b"/");
    let _ = serde_json::to_vec(&p).expect("a payload renders as JSON");
}

/// The target's body.
pub fn run(data: &[u8]) {
    // Frames from the start, each body as a record, each record's data as
    // what its type says.
    let mut off = 0;
    while let Ok(Slot::Frame(f)) = frame::read(data, off) {
        assert!(f.end() > off && f.end() <= data.len(), "{f:?}");
        let _ = frame::has_zero_sector(f.offset, &data[f.offset + frame::HEADER..f.end()]);
        if let Ok(r) = Record::parse(f.body) {
            let _ = r.kind();
            if let Ok(e) = Entry::parse(r.data) {
                payload_of(&e);
            }
        }
        off = f.end();
    }
    let _ = frame::first_nonzero(data);

    // The whole input as each kind of record data.
    if let Ok(r) = Record::parse(data) {
        assert!(r.data.len() <= data.len());
    }
    let _ = Metadata::decode(data);
    let _ = HardState::decode(data);
    if let Ok(m) = SnapshotMark::decode(data) {
        let _ = serde_json::to_vec(&m).expect("a snapshot mark renders as JSON");
    }
    if let Ok(c) = ConfChange::decode(data) {
        let _ = serde_json::to_vec(&c).expect("a ConfChange renders as JSON");
    }
    if let Ok(c) = ConfChangeV2::decode(data) {
        let _ = serde_json::to_vec(&c).expect("a ConfChangeV2 renders as JSON");
    }
    if let Ok(e) = Entry::parse(data) {
        assert!(e.data.len() <= data.len());
        payload_of(&e);
    }
    // ... and as the data of an entry of every type.
    for kind in [
        EntryType::Normal,
        EntryType::ConfChange,
        EntryType::ConfChangeV2,
        EntryType::Unknown(7),
    ] {
        payload_of(&Entry {
            term: Term(1),
            index: Index(1),
            kind,
            data,
        });
    }
}
