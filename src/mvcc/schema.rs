//! Decoders for the values of etcd's non-`key` buckets: `meta`, `members`,
//! `members_removed`, `cluster`, `lease`, `alarm`, `auth`, `authUsers`,
//! `authRoles`. Each returns a typed value or a message saying what is wrong,
//! so that `status` can show and `check` can report.

use prost::Message;

use crate::pb::{authpb, etcdserverpb, leasepb};

use super::revision::{RevKey, Revision};
use crate::membership::Member;

/// Bucket names etcd uses (all top level), in byte order.
pub const BUCKETS: [&[u8]; 10] = [
    b"alarm",
    b"auth",
    b"authRoles",
    b"authUsers",
    b"cluster",
    b"key",
    b"lease",
    b"members",
    b"members_removed",
    b"meta",
];

/// `meta` bucket keys.
pub mod meta_keys {
    /// Last applied raft index, u64be.
    pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
    /// Raft term of that entry, u64be (3.5+).
    pub const TERM: &[u8] = b"term";
    /// 17-byte revision of the last finished compaction.
    pub const FINISHED_COMPACT_REV: &[u8] = b"finishedCompactRev";
    /// 17-byte revision of the last scheduled compaction.
    pub const SCHEDULED_COMPACT_REV: &[u8] = b"scheduledCompactRev";
    /// JSON raftpb.DbConfState (3.5+).
    pub const CONF_STATE: &[u8] = b"confState";
    /// Storage version string (3.6+).
    pub const STORAGE_VERSION: &[u8] = b"storageVersion";
}

/// The raft configuration stored in `meta/confState` (read with etcd's
/// snake_case names, written in our camelCase).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct DbConfState {
    /// Voting members.
    #[serde(default)]
    pub voters: Vec<u64>,
    /// Learners.
    #[serde(default)]
    pub learners: Vec<u64>,
    /// Outgoing voters of a joint configuration.
    #[serde(default)]
    pub voters_outgoing: Vec<u64>,
    /// Learners in the next configuration.
    #[serde(default)]
    pub learners_next: Vec<u64>,
    /// Auto-leave flag.
    #[serde(default)]
    pub auto_leave: bool,
}

/// Everything the `meta` bucket says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaInfo {
    /// Last applied raft index.
    pub consistent_index: Option<u64>,
    /// Raft term of that index (3.5+).
    pub term: Option<u64>,
    /// Last finished compaction (main revision).
    pub finished_compact_rev: Option<i64>,
    /// Last scheduled compaction (main revision).
    pub scheduled_compact_rev: Option<i64>,
    /// Raft configuration (3.5+).
    pub conf_state: Option<DbConfState>,
    /// Storage version (3.6+).
    pub storage_version: Option<String>,
}

impl MetaInfo {
    /// Applies one `meta` bucket entry; returns a message if its value is malformed.
    pub fn apply(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        match key {
            meta_keys::CONSISTENT_INDEX => self.consistent_index = Some(u64_value(value)?),
            meta_keys::TERM => self.term = Some(u64_value(value)?),
            meta_keys::FINISHED_COMPACT_REV => self.finished_compact_rev = Some(rev_value(value)?.main),
            meta_keys::SCHEDULED_COMPACT_REV => self.scheduled_compact_rev = Some(rev_value(value)?.main),
            meta_keys::CONF_STATE => {
                self.conf_state = Some(
                    serde_json::from_slice(value)
                        .map_err(|e| format!("confState is not valid DbConfState JSON: {e}"))?,
                )
            }
            meta_keys::STORAGE_VERSION => {
                self.storage_version = Some(
                    std::str::from_utf8(value)
                        .map_err(|_| "storageVersion is not UTF-8".to_string())?
                        .to_string(),
                )
            }
            _ => {}
        }
        Ok(())
    }

    /// The compaction revision etcd's store starts from: finished, or -1.
    pub fn compact_main_rev(&self) -> i64 {
        self.finished_compact_rev.unwrap_or(-1)
    }
}

/// Big-endian u64 of an 8-byte slice (callers check the length).
fn be_u64(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn u64_value(v: &[u8]) -> Result<u64, String> {
    if v.len() != 8 {
        return Err(format!(
            "value is {} bytes, expected an 8-byte big-endian integer",
            v.len()
        ));
    }
    Ok(be_u64(v))
}

fn rev_value(v: &[u8]) -> Result<Revision, String> {
    let k = RevKey::parse(v).map_err(|e| e.to_string())?;
    if k.tombstone {
        return Err("value is a tombstone revision key".into());
    }
    Ok(k.rev)
}

/// Decodes a `members` entry and checks the key is the id in lowercase hex.
pub fn decode_member(key: &[u8], value: &[u8]) -> Result<Member, String> {
    let m: Member =
        serde_json::from_slice(value).map_err(|e| format!("member value is not valid Member JSON: {e}"))?;
    let want = format!("{:x}", m.id);
    if key != want.as_bytes() {
        return Err(format!(
            "member key {:?} does not match the id in its value ({want})",
            String::from_utf8_lossy(key)
        ));
    }
    if m.id == 0 {
        return Err("member id is 0".into());
    }
    Ok(m)
}

/// Decodes a `members_removed` key (a hex member id).
pub fn decode_removed_member(key: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| {
            format!(
                "removed-member key {:?} is not a hex member id",
                String::from_utf8_lossy(key)
            )
        })
}

/// A lease from the `lease` bucket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lease {
    /// Lease id.
    #[serde(rename = "ID")]
    pub id: i64,
    /// Granted TTL in seconds.
    #[serde(rename = "TTL")]
    pub ttl: i64,
    /// Remaining TTL at the last checkpoint (0 if never checkpointed).
    #[serde(rename = "remainingTTL")]
    pub remaining_ttl: i64,
}

/// Decodes a `lease` entry; the key must be the id as u64be.
pub fn decode_lease(key: &[u8], value: &[u8]) -> Result<Lease, String> {
    let l = leasepb::Lease::decode(value).map_err(|e| format!("lease value does not decode: {e}"))?;
    if key.len() != 8 || be_u64(key) as i64 != l.id {
        return Err(format!(
            "lease key {} does not match the lease id {} in its value",
            crate::bolt::show_key(key),
            l.id
        ));
    }
    Ok(Lease {
        id: l.id,
        ttl: l.ttl,
        remaining_ttl: l.remaining_ttl,
    })
}

/// An alarm from the `alarm` bucket (the key is the marshalled AlarmMember).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// Member that raised it.
    #[serde(rename = "memberID")]
    pub member_id: u64,
    /// NONE, NOSPACE or CORRUPT.
    pub alarm: String,
}

/// Decodes an `alarm` key.
pub fn decode_alarm(key: &[u8]) -> Result<Alarm, String> {
    let a = etcdserverpb::AlarmMember::decode(key).map_err(|e| format!("alarm key does not decode: {e}"))?;
    let name = etcdserverpb::AlarmType::try_from(a.alarm)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({})", a.alarm));
    Ok(Alarm {
        member_id: a.member_id,
        alarm: name,
    })
}

/// Encodes an `alarm` key (the marshalled AlarmMember), as etcd writes it;
/// `None` for an alarm name etcd does not know.
pub fn encode_alarm(a: &Alarm) -> Option<Vec<u8>> {
    let t = etcdserverpb::AlarmType::from_str_name(&a.alarm)?;
    Some(
        etcdserverpb::AlarmMember {
            member_id: a.member_id,
            alarm: t as i32,
        }
        .encode_to_vec(),
    )
}

/// What the `auth` bucket says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthInfo {
    /// Whether authentication is enabled.
    pub enabled: Option<bool>,
    /// Auth revision.
    pub revision: Option<u64>,
    /// User names.
    pub users: Vec<String>,
    /// Role names.
    pub roles: Vec<String>,
}

impl AuthInfo {
    /// Applies an `auth` bucket entry.
    pub fn apply(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        match key {
            b"authEnabled" => match value {
                [0] => self.enabled = Some(false),
                [1] => self.enabled = Some(true),
                _ => {
                    return Err(format!(
                        "authEnabled is {} bytes, expected one byte 0 or 1",
                        value.len()
                    ));
                }
            },
            b"authRevision" => self.revision = Some(u64_value(value)?),
            _ => {}
        }
        Ok(())
    }
}

/// Decodes an `authUsers` entry; the key must equal the user name.
pub fn decode_user(key: &[u8], value: &[u8]) -> Result<String, String> {
    let u = authpb::User::decode(value).map_err(|e| format!("user value does not decode: {e}"))?;
    if u.name != key {
        return Err(format!(
            "user key {} does not match the name in its value",
            crate::bolt::show_key(key)
        ));
    }
    Ok(String::from_utf8_lossy(&u.name).into_owned())
}

/// Decodes an `authRoles` entry; the key must equal the role name.
pub fn decode_role(key: &[u8], value: &[u8]) -> Result<String, String> {
    let r = authpb::Role::decode(value).map_err(|e| format!("role value does not decode: {e}"))?;
    if r.name != key {
        return Err(format!(
            "role key {} does not match the name in its value",
            crate::bolt::show_key(key)
        ));
    }
    Ok(String::from_utf8_lossy(&r.name).into_owned())
}

/// What the `cluster` bucket says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Cluster version, e.g. "3.5.0".
    pub cluster_version: Option<String>,
    /// Downgrade info JSON (3.5+), as stored.
    pub downgrade: Option<serde_json::Value>,
}

impl ClusterInfo {
    /// Applies a `cluster` bucket entry.
    pub fn apply(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        match key {
            b"clusterVersion" => {
                self.cluster_version = Some(
                    std::str::from_utf8(value)
                        .map_err(|_| "clusterVersion is not UTF-8".to_string())?
                        .to_string(),
                )
            }
            b"downgrade" => {
                self.downgrade = Some(
                    serde_json::from_slice(value).map_err(|e| format!("downgrade is not valid JSON: {e}"))?,
                )
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_json_with_big_id() {
        let v = br#"{"id":17237436991929493444,"peerURLs":["http://127.0.0.1:2380"],"name":"m1","clientURLs":["http://127.0.0.1:2379"]}"#;
        let key = format!("{:x}", 17237436991929493444u64);
        let m = decode_member(key.as_bytes(), v).unwrap();
        assert_eq!(m.id, 17237436991929493444);
        assert_eq!(m.name, "m1");
        assert!(decode_member(b"1", v).is_err());
        let n = br#"{"id":5,"peerURLs":null}"#;
        assert!(decode_member(b"5", n).unwrap().peer_urls.is_empty());
    }

    #[test]
    fn meta_values() {
        let mut m = MetaInfo::default();
        m.apply(b"consistent_index", &7u64.to_be_bytes()).unwrap();
        assert_eq!(m.consistent_index, Some(7));
        assert!(m.apply(b"term", &[1, 2]).is_err());
        let r = Revision { main: 12, sub: 0 }.to_key();
        m.apply(b"finishedCompactRev", &r).unwrap();
        assert_eq!(m.compact_main_rev(), 12);
        m.apply(b"confState", br#"{"voters":[1,2],"auto_leave":false}"#)
            .unwrap();
        assert_eq!(m.conf_state.unwrap().voters, vec![1, 2]);
    }
}
