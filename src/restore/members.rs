//! Membership of a restored cluster: `--initial-cluster` parsing and the
//! member and cluster IDs etcd computes from it.
//!
//! Member ID: SHA-1 over the member's peer URLs sorted and joined with no
//! separator, then the cluster token; the first 8 bytes big-endian.
//! Cluster ID: SHA-1 over the sorted member IDs as u64be; first 8 bytes.

use std::collections::BTreeMap;

pub use crate::membership::{cluster_id, member_id};

/// A member to create.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemberSpec {
    /// Its ID.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its peer URLs, sorted.
    pub peer_urls: Vec<String>,
}

impl MemberSpec {
    /// The Member JSON etcd stores in the `members` bucket (Go field order;
    /// empty fields left out, as etcd does).
    pub fn json(&self) -> String {
        serde_json::json!({"id": self.id, "peerURLs": self.peer_urls, "name": self.name}).to_string()
    }

    /// The `raftAttributes` value of the v2 store.
    pub fn raft_attributes(&self) -> String {
        serde_json::json!({"peerURLs": self.peer_urls}).to_string()
    }
}

/// A parsed `--initial-cluster` with its token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClusterSpec {
    /// Members in ascending ID order.
    pub members: Vec<MemberSpec>,
    /// The cluster ID.
    pub cluster_id: u64,
    /// The token the IDs were computed with.
    pub token: String,
}

/// Errors in the membership flags.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// A malformed `--initial-cluster` entry.
    #[error("--initial-cluster entry {0:?} is not NAME=URL")]
    Entry(String),
    /// A URL that is not http(s)://host:port.
    #[error("{0:?} is not a peer URL like http://10.0.0.1:2380")]
    Url(String),
    /// The same URL given twice.
    #[error("peer URL {0} is given for more than one member")]
    DuplicateUrl(String),
    /// `--name` is not in `--initial-cluster`.
    #[error("--name {0:?} is not a member of --initial-cluster")]
    NotMember(String),
    /// `--initial-advertise-peer-urls` differ from the member's URLs in `--initial-cluster`.
    #[error(
        "--initial-advertise-peer-urls {given} do not match {name}'s URLs in --initial-cluster ({listed})"
    )]
    UrlMismatch {
        /// The member.
        name: String,
        /// What --initial-advertise-peer-urls says.
        given: String,
        /// What --initial-cluster says.
        listed: String,
    },
    /// No members.
    #[error("--initial-cluster is empty")]
    Empty,
}

fn check_url(u: &str) -> Result<String, MembershipError> {
    let u = u.trim();
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .or_else(|| u.strip_prefix("unix://"))
        .or_else(|| u.strip_prefix("unixs://"))
        .ok_or_else(|| MembershipError::Url(u.to_string()))?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(MembershipError::Url(u.to_string()));
    }
    Ok(u.to_string())
}

/// Parses `--initial-cluster` (`n1=http://a:2380,n2=http://b:2380`; a name
/// may appear more than once for several URLs) and computes the IDs.
pub fn parse_initial_cluster(spec: &str, token: &str) -> Result<ClusterSpec, MembershipError> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry
            .split_once('=')
            .ok_or_else(|| MembershipError::Entry(entry.to_string()))?;
        if name.is_empty() {
            return Err(MembershipError::Entry(entry.to_string()));
        }
        let url = check_url(url)?;
        if !seen.insert(url.clone()) {
            return Err(MembershipError::DuplicateUrl(url));
        }
        by_name.entry(name.to_string()).or_default().push(url);
    }
    if by_name.is_empty() {
        return Err(MembershipError::Empty);
    }
    let mut members: Vec<MemberSpec> = by_name
        .into_iter()
        .map(|(name, mut urls)| {
            urls.sort();
            MemberSpec {
                id: member_id(&urls, token),
                name,
                peer_urls: urls,
            }
        })
        .collect();
    members.sort_by_key(|m| m.id);
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    Ok(ClusterSpec {
        cluster_id: cluster_id(&ids),
        members,
        token: token.to_string(),
    })
}

impl ClusterSpec {
    /// The member named `name`, checked against `--initial-advertise-peer-urls`.
    pub fn local(&self, name: &str, advertise: Option<&str>) -> Result<&MemberSpec, MembershipError> {
        let m = self
            .members
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| MembershipError::NotMember(name.to_string()))?;
        if let Some(adv) = advertise {
            let mut given: Vec<String> = adv
                .split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect();
            given.sort();
            if given != m.peer_urls {
                return Err(MembershipError::UrlMismatch {
                    name: name.to_string(),
                    given: given.join(","),
                    listed: m.peer_urls.join(","),
                });
            }
        }
        Ok(m)
    }

    /// Member IDs, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_equal_what_etcdutl_computes() {
        // etcdutl 3.5.1 snapshot restore --initial-cluster
        // m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2381,m3=http://127.0.0.1:2382
        // --initial-cluster-token tok printed these.
        let c = parse_initial_cluster(
            "m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2381,m3=http://127.0.0.1:2382",
            "tok",
        )
        .unwrap();
        assert_eq!(c.cluster_id, 0x62e5_1227_d18c_f864);
        let ids: Vec<String> = c.members.iter().map(|m| format!("{:x}", m.id)).collect();
        assert_eq!(ids, ["321b4ccd5c32edea", "71405583d3e2d5ce", "bf923f8405cbb3bc"]);
        assert_eq!(
            c.members[1].json(),
            r#"{"id":8160616549479273934,"peerURLs":["http://127.0.0.1:2380"],"name":"m1"}"#
        );
        assert!(c.local("m1", Some("http://127.0.0.1:2380")).is_ok());
        assert!(matches!(
            c.local("m1", Some("http://127.0.0.1:9999")),
            Err(MembershipError::UrlMismatch { .. })
        ));
        assert!(matches!(c.local("m9", None), Err(MembershipError::NotMember(_))));
    }

    #[test]
    fn bad_specs() {
        assert!(parse_initial_cluster("", "t").is_err());
        assert!(parse_initial_cluster("m1", "t").is_err());
        assert!(parse_initial_cluster("m1=localhost:2380", "t").is_err());
        assert!(parse_initial_cluster("a=http://x:1,b=http://x:1", "t").is_err());
        let two = parse_initial_cluster("a=http://x:1,a=http://y:1", "t").unwrap();
        assert_eq!(two.members.len(), 1);
        assert_eq!(two.members[0].peer_urls.len(), 2);
    }
}
