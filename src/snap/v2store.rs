//! The etcd v2 store inside a `.snap` file, and the membership in it
//! (authoritative for etcd 3.4 and 3.5).
//!
//! ```text
//! {"Root": node, "WatcherHub": {...}, "CurrentIndex": n, "Stats": {...}, "CurrentVersion": 2}
//! node = {"Path", "CreatedIndex", "ModifiedIndex", "ExpireTime", "Value", "Children": {name: node} | null}
//!
//! /0/members/<hex id>/raftAttributes   {"peerURLs":[...], "isLearner":true?}
//! /0/members/<hex id>/attributes       {"name":..., "clientURLs":[...]}
//! /0/removed_members/<hex id>          ""
//! /0/version                           cluster version, e.g. "3.5.0"
//! /1/...                               v2 API keys
//! ```

use std::collections::BTreeMap;

use crate::wal::MemberId;

#[derive(serde::Deserialize)]
struct Store {
    #[serde(rename = "Root")]
    root: Node,
    #[serde(rename = "CurrentIndex", default)]
    current_index: u64,
}

#[derive(serde::Deserialize, Default)]
struct Node {
    #[serde(rename = "Value", default)]
    value: String,
    #[serde(rename = "Children", default)]
    children: Option<BTreeMap<String, Node>>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.as_ref()?.get(name)
    }

    fn count_leaves(&self) -> u64 {
        match &self.children {
            None => 1,
            Some(c) => c.values().map(Node::count_leaves).sum(),
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct RaftAttributes {
    #[serde(rename = "peerURLs", default)]
    peer_urls: Option<Vec<String>>,
    #[serde(rename = "isLearner", default)]
    is_learner: bool,
}

#[derive(serde::Deserialize, Default)]
struct Attributes {
    #[serde(default)]
    name: String,
    #[serde(rename = "clientURLs", default)]
    client_urls: Option<Vec<String>>,
}

/// A member as the v2 store records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Member {
    /// Member ID.
    pub id: MemberId,
    /// Name (empty until published).
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs.
    pub client_urls: Vec<String>,
    /// Learner.
    pub is_learner: bool,
}

/// What the v2 store says about the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Store {
    /// Members, by ID.
    pub members: Vec<V2Member>,
    /// Removed member IDs.
    pub removed: Vec<MemberId>,
    /// Cluster version.
    pub cluster_version: Option<String>,
    /// Keys stored through the v2 API (under `/1`).
    pub v2_keys: u64,
    /// The store's `CurrentIndex`.
    pub current_index: u64,
}

/// Decodes the v2 store JSON.
pub fn decode(json: &[u8]) -> Result<V2Store, String> {
    let s: Store =
        serde_json::from_slice(json).map_err(|e| format!("the v2 store is not valid JSON: {e}"))?;
    let mut out = V2Store {
        current_index: s.current_index,
        ..V2Store::default()
    };
    let zero = s.root.child("0");
    if let Some(ms) = zero
        .and_then(|z| z.child("members"))
        .and_then(|m| m.children.as_ref())
    {
        for (hex, node) in ms {
            let id =
                u64::from_str_radix(hex, 16).map_err(|_| format!("/0/members/{hex}: not a hex member id"))?;
            let ra: RaftAttributes = node
                .child("raftAttributes")
                .map(|n| serde_json::from_str(&n.value))
                .transpose()
                .map_err(|e| format!("/0/members/{hex}/raftAttributes: {e}"))?
                .unwrap_or_default();
            let at: Attributes = node
                .child("attributes")
                .map(|n| serde_json::from_str(&n.value))
                .transpose()
                .map_err(|e| format!("/0/members/{hex}/attributes: {e}"))?
                .unwrap_or_default();
            out.members.push(V2Member {
                id: MemberId(id),
                name: at.name,
                peer_urls: ra.peer_urls.unwrap_or_default(),
                client_urls: at.client_urls.unwrap_or_default(),
                is_learner: ra.is_learner,
            });
        }
    }
    if let Some(rs) = zero
        .and_then(|z| z.child("removed_members"))
        .and_then(|m| m.children.as_ref())
    {
        for hex in rs.keys() {
            let id = u64::from_str_radix(hex, 16)
                .map_err(|_| format!("/0/removed_members/{hex}: not a hex member id"))?;
            out.removed.push(MemberId(id));
        }
    }
    out.cluster_version = zero
        .and_then(|z| z.child("version"))
        .map(|v| v.value.clone())
        .filter(|v| !v.is_empty());
    out.v2_keys = s
        .root
        .child("1")
        .and_then(|n| n.children.as_ref())
        .map(|c| c.values().map(Node::count_leaves).sum())
        .unwrap_or(0);
    out.members.sort_by_key(|m| m.id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership() {
        let j = br#"{"Root":{"Path":"/","Value":"","Children":{"0":{"Path":"/0","Children":{
            "members":{"Children":{"461c31bbbbaaabb9":{"Children":{
              "attributes":{"Value":"{\"name\":\"s\",\"clientURLs\":[\"http://a\"]}","Children":null},
              "raftAttributes":{"Value":"{\"peerURLs\":[\"http://b\"]}","Children":null}}}}},
            "removed_members":{"Children":{"5":{"Value":"","Children":null}}},
            "version":{"Value":"3.5.0","Children":null}}},
          "1":{"Children":{"k":{"Value":"v","Children":null}}}}},"CurrentIndex":3}"#;
        let s = decode(j).unwrap();
        assert_eq!(s.members.len(), 1);
        assert_eq!(s.members[0].id, MemberId(0x461c31bbbbaaabb9));
        assert_eq!(s.members[0].name, "s");
        assert_eq!(s.members[0].peer_urls, vec!["http://b"]);
        assert_eq!(s.removed, vec![MemberId(5)]);
        assert_eq!(s.cluster_version.as_deref(), Some("3.5.0"));
        assert_eq!((s.v2_keys, s.current_index), (1, 3));
        assert!(decode(b"{").is_err());
        let deep = "[".repeat(10_000);
        assert!(decode(deep.as_bytes()).is_err());
    }
}
