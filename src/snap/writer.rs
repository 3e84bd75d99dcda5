//! Writing `.snap` files, for restored data dirs: a `snappb.snapshot`
//! {crc = CRC-32C(data), data = `raftpb.Snapshot`} whose data is the etcd v2
//! store as JSON, holding the membership (`/0/members/<id>/raftAttributes`),
//! which etcd 3.4 and 3.5 read their members from.

use prost::Message;
use serde_json::{Map, Value, json};

use crate::pb::{raftpb, snappb};

const EXPIRE: &str = "0001-01-01T00:00:00Z";

fn node(path: &str, index: u64, value: &str, children: Option<Map<String, Value>>) -> Value {
    json!({
        "Path": path,
        "CreatedIndex": index,
        "ModifiedIndex": index,
        "ExpireTime": EXPIRE,
        "Value": value,
        "Children": children.map(Value::Object).unwrap_or(Value::Null),
    })
}

/// The v2 store JSON with only the membership, as a fresh store looks after
/// one create per member (in the given order): `/0/members/<hex>/raftAttributes`.
pub fn v2_store_json(members: &[(u64, String)]) -> Vec<u8> {
    let mut by_id: Map<String, Value> = Map::new();
    let mut events = Vec::with_capacity(1000);
    // Go marshals map keys in sorted order.
    let mut sorted: Vec<(usize, &(u64, String))> = members.iter().enumerate().collect();
    sorted.sort_by_key(|(_, (id, _))| format!("{id:x}"));
    for (i, (id, attrs)) in &sorted {
        let idx = *i as u64 + 1;
        let hex = format!("{id:x}");
        let dir = format!("/0/members/{hex}");
        let leaf = format!("{dir}/raftAttributes");
        let mut kids = Map::new();
        kids.insert("raftAttributes".into(), node(&leaf, idx, attrs, None));
        by_id.insert(hex, node(&dir, idx, "", Some(kids)));
    }
    for (i, (id, attrs)) in members.iter().enumerate() {
        let idx = i as u64 + 1;
        events.push(json!({"action": "create", "node": {
            "key": format!("/0/members/{id:x}/raftAttributes"),
            "value": attrs,
            "modifiedIndex": idx,
            "createdIndex": idx,
        }}));
    }
    let n = members.len() as u64;
    events.resize(1000, Value::Null);
    let mut zero = Map::new();
    if n > 0 {
        zero.insert("members".into(), node("/0/members", 1, "", Some(by_id)));
    }
    let mut root = Map::new();
    root.insert("0".into(), node("/0", 0, "", Some(zero)));
    root.insert("1".into(), node("/1", 0, "", Some(Map::new())));
    let store = json!({
        "Root": node("/", 0, "", Some(root)),
        "WatcherHub": {"EventHistory": {
            "Queue": {"Events": events, "Size": n, "Front": 0, "Back": n, "Capacity": 1000},
            "StartIndex": if n > 0 { 1 } else { 0 },
            "LastIndex": n,
        }},
        "CurrentIndex": n,
        "Stats": {
            "getsSuccess": 0, "getsFail": 0, "setsSuccess": 0, "setsFail": 0,
            "deleteSuccess": 0, "deleteFail": 0, "updateSuccess": 0, "updateFail": 0,
            "createSuccess": n, "createFail": 0, "compareAndSwapSuccess": 0, "compareAndSwapFail": 0,
            "compareAndDeleteSuccess": 0, "compareAndDeleteFail": 0, "expireCount": 0, "watchers": 0,
        },
        "CurrentVersion": 2,
    });
    serde_json::to_vec(&store).expect("JSON of plain values")
}

/// The bytes of a `.snap` file for a raft snapshot at (`index`, `term`).
pub fn snap_file(data: Vec<u8>, index: u64, term: u64, conf_state: raftpb::ConfState) -> Vec<u8> {
    let snap = raftpb::Snapshot {
        data: Some(data),
        metadata: Some(raftpb::SnapshotMetadata {
            conf_state: Some(conf_state),
            index: Some(index),
            term: Some(term),
        }),
    };
    let body = snap.encode_to_vec();
    snappb::Snapshot {
        crc: Some(crc32c::crc32c(&body)),
        data: Some(body),
    }
    .encode_to_vec()
}

/// The `.snap` file name for (`term`, `index`).
pub fn snap_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}.snap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_snap_reads_back() {
        let json = v2_store_json(&[
            (5, r#"{"peerURLs":["http://a:1"]}"#.into()),
            (3, r#"{"peerURLs":["http://b:1"]}"#.into()),
        ]);
        let cs = raftpb::ConfState {
            voters: vec![3, 5],
            auto_leave: Some(false),
            ..Default::default()
        };
        let bytes = snap_file(json, 2, 1, cs);
        let s = crate::snap::file::read(&bytes).unwrap();
        assert_eq!(s.index, crate::wal::Index(2));
        let store = crate::snap::v2store::decode(&s.data).unwrap();
        assert_eq!(store.members.len(), 2);
    }
}
