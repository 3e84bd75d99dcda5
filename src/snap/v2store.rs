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

use crate::membership::MemberId;

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

/// How deep Go's `encoding/json` lets values nest; etcd's store recovery
/// fails (and etcd panics) on anything deeper.
pub const GO_MAX_DEPTH: usize = 10_000;

/// The deepest nesting of arrays and objects in `json` (strings skipped),
/// counted without recursion.
pub fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in json {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses the store and reads it on a thread with a stack large enough for
/// Go's depth limit (the recursion of parsing, reading and dropping the
/// tree is bounded by the depth checked before).
fn parse(json: &[u8]) -> Result<V2Store, String> {
    // Go replaces invalid UTF-8 in strings instead of failing.
    let text = String::from_utf8_lossy(json).into_owned();
    let work = move || -> Result<V2Store, String> {
        let mut de = serde_json::Deserializer::from_str(&text);
        de.disable_recursion_limit();
        let s: Store = serde::Deserialize::deserialize(&mut de)
            .map_err(|e| format!("the v2 store is not valid JSON: {e}"))?;
        de.end()
            .map_err(|e| format!("the v2 store is not valid JSON: {e}"))?;
        read_store(&s)
    };
    std::thread::Builder::new()
        .name("v2store".into())
        .stack_size(256 << 20)
        .spawn(work)
        .map_err(|e| format!("cannot start the decoder: {e}"))?
        .join()
        .map_err(|_| "the decoder failed".to_string())?
}

/// Decodes the v2 store JSON, accepting and refusing what etcd's store
/// recovery (Go's `encoding/json`) does.
pub fn decode(json: &[u8]) -> Result<V2Store, String> {
    let depth = nesting_depth(json);
    if depth > GO_MAX_DEPTH {
        return Err(format!(
            "the v2 store nests {depth} levels deep, more than Go's JSON decoder accepts ({GO_MAX_DEPTH})"
        ));
    }
    parse(json)
}

fn read_store(s: &Store) -> Result<V2Store, String> {
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

    /// A v2 key 3,000 path levels deep nests 6,000 JSON levels: Go (and
    /// etcd) read it; one more than 10,000 levels is refused.
    #[test]
    fn nesting_as_go_accepts_it() {
        let mut j = String::from(r#"{"Root":{"Children":{"1":{"Children":{"#);
        let levels = 3_000;
        for i in 0..levels {
            j.push_str(&format!(r#""k{i}":{{"Children":{{"#));
        }
        j.push_str(r#""leaf":{"Value":"v"}"#);
        for _ in 0..levels {
            j.push_str("}}");
        }
        j.push_str("}}}},\"CurrentIndex\":7}");
        assert!(nesting_depth(j.as_bytes()) > 6_000);
        let s = decode(j.as_bytes()).unwrap();
        assert_eq!((s.v2_keys, s.current_index), (1, 7));
        let too_deep = format!("{}{}", "[".repeat(GO_MAX_DEPTH + 1), "]".repeat(GO_MAX_DEPTH + 1));
        assert!(
            decode(too_deep.as_bytes())
                .unwrap_err()
                .contains("Go's JSON decoder")
        );
        assert_eq!(nesting_depth(br#"{"a":"[[[[{{{"}"#), 1);
    }
}
