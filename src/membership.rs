//! Cluster membership, as both the readers and the writers know it: the
//! Member JSON etcd stores (in the db's `members` bucket, in raft
//! configuration changes and in the v2 store), member and cluster IDs, and
//! how etcd computes them. It imports nothing of ours, so the WAL reader,
//! the db reader, the judgment and the restore writer share it without
//! importing one another.

use std::fmt;

use sha1::{Digest, Sha1};

/// A cluster member as stored in the `members` bucket (Member JSON).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Member {
    /// Member id.
    #[serde(rename = "ID", alias = "id")]
    pub id: u64,
    /// Member name (empty until the member publishes it, or after a restore).
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(rename = "peerURLs", default, deserialize_with = "null_as_empty")]
    pub peer_urls: Vec<String>,
    /// Client URLs.
    #[serde(rename = "clientURLs", default, deserialize_with = "null_as_empty")]
    pub client_urls: Vec<String>,
    /// Whether the member is a learner.
    #[serde(rename = "isLearner", default)]
    pub is_learner: bool,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<String>> = serde::Deserialize::deserialize(d)?;
    Ok(v.unwrap_or_default())
}

/// A member (raft node) ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

/// A cluster ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClusterId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{:x}", self.0))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{:x}", self.0))
    }
}

impl serde::Serialize for MemberId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl serde::Serialize for ClusterId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The member ID etcd computes for these peer URLs and token (no time: as
/// at bootstrap and restore).
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut h = Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha1 is 20 bytes"))
}

/// The cluster ID etcd computes from the member IDs.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha1 is 20 bytes"))
}
