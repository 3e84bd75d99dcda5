//! Decode-write-decode for the `.snap` writer (`snap::writer`): a
//! membership (distinct member IDs, peer URLs and learner flags with
//! arbitrary text), a configuration, an index and a term drawn from the
//! input are written with `v2_store_json`, `snap_file` and `snap_name`, then
//! read back with the snap reader and the v2 store decoder, and must come
//! back equal.

use std::collections::BTreeSet;

use etcd_rescue::membership::MemberId;
use etcd_rescue::pb::raftpb;
use etcd_rescue::snap::writer::{snap_file, snap_name, v2_store_json};
use etcd_rescue::snap::{SnapName, read, v2store};
use etcd_rescue::wal::entry::ConfState;
use etcd_rescue::wal::{Index, Term};

use super::input::Input;

/// The target's body.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let (index, term) = (inp.u64(), inp.u64());
    let cs = raftpb::ConfState {
        voters: inp.u64s(7),
        learners: inp.u64s(3),
        voters_outgoing: inp.u64s(3),
        learners_next: inp.u64s(3),
        auto_leave: inp.bool().then(|| inp.bool()),
    };
    // (id, peer URLs, learner), in write order.
    let mut members: Vec<(u64, Vec<String>, bool)> = Vec::new();
    let mut seen = BTreeSet::new();
    let n = inp.byte() % 8;
    for _ in 0..n {
        let id = inp.u64();
        let urls: Vec<String> = (0..inp.byte() % 4).map(|_| inp.string(60)).collect();
        let learner = inp.bool();
        if seen.insert(id) {
            members.push((id, urls, learner));
        }
    }
    let written: Vec<(u64, String)> = members
        .iter()
        .map(|(id, urls, learner)| {
            let mut ra = serde_json::json!({ "peerURLs": urls });
            if *learner {
                ra["isLearner"] = serde_json::Value::Bool(true);
            }
            (*id, ra.to_string())
        })
        .collect();
    let json = v2_store_json(&written);
    let bytes = snap_file(json.clone(), index, term, cs.clone());

    let s = read(&bytes).expect("a written .snap reads back");
    assert_eq!((s.index, s.term), (Index(index), Term(term)));
    assert_eq!(s.conf_state, ConfState::from(cs));
    assert_eq!(s.data, json);

    let store = v2store::decode(&s.data).expect("the written v2 store decodes");
    members.sort_by_key(|m| m.0);
    let got: Vec<(u64, Vec<String>, bool)> = store
        .members
        .iter()
        .map(|m| (m.id.0, m.peer_urls.clone(), m.is_learner))
        .collect();
    assert_eq!(got, members);
    assert!(
        store
            .members
            .iter()
            .all(|m| m.name.is_empty() && m.client_urls.is_empty())
    );
    assert_eq!(store.removed, Vec::<MemberId>::new());
    assert_eq!(store.cluster_version, None);
    assert_eq!((store.v2_keys, store.current_index), (0, members.len() as u64));

    let name = snap_name(term, index);
    assert_eq!(
        SnapName::parse(&name),
        Some(SnapName {
            term: Term(term),
            index: Index(index),
        })
    );
}
