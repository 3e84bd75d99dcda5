//! What raft entries ask etcd to do: the payloads of normal entries
//! (`InternalRaftRequest`, or the legacy v2 `Request`) and of configuration
//! entries, decoded into one serializable model.
//!
//! ```text
//! EntryNormal, empty data        a leader's no-op
//! EntryNormal, other data        etcdserverpb.InternalRaftRequest (proto3): header (100) and
//!                                one request: put 4, delete_range 5, txn 6, compaction 7,
//!                                lease_grant 8, lease_revoke 9, alarm 10, lease_checkpoint 11,
//!                                auth 1000-1204, cluster_version_set 1300,
//!                                cluster_member_attr_set 1301, downgrade_info_set 1302, v2 2
//!                                If it does not decode as that: etcdserverpb.Request (v2, proto2),
//!                                exactly as etcd does (pbutil.MaybeUnmarshal).
//! EntryConfChange                raftpb.ConfChange (confchange.rs)
//! EntryConfChangeV2              raftpb.ConfChangeV2
//! ```
//!
//! Passwords (plain or hashed) are never copied into the model.

use std::fmt;

use prost::Message;

use super::confchange::{ConfChange, ConfChangeV2};
use super::entry::{Entry, EntryType};
use crate::membership::MemberId;
use crate::pb::{etcdserverpb as pb, membershippb};

/// Bytes shown as text when they are UTF-8 and as base64 otherwise. In JSON:
/// `{"text": "..."}` or `{"bytes": "<base64>"}` (ripgrep's convention).
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Data(pub Vec<u8>);

impl Data {
    /// Whether the bytes are valid UTF-8.
    pub fn is_text(&self) -> bool {
        std::str::from_utf8(&self.0).is_ok()
    }

    /// A one-line rendering: quoted text with control characters escaped, or
    /// `base64:...`; at most `max` characters of content (0: no limit), with
    /// the full length noted when cut.
    pub fn show(&self, max: usize) -> String {
        let (body, cut) = match std::str::from_utf8(&self.0) {
            Ok(s) => {
                let mut out = String::with_capacity(s.len().min(max.max(16)) + 2);
                out.push('"');
                let mut cut = false;
                for (n, c) in s.chars().enumerate() {
                    if max > 0 && n >= max {
                        cut = true;
                        break;
                    }
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c if c.is_control() => out.extend(c.escape_default()),
                        c => out.push(c),
                    }
                }
                out.push('"');
                (out, cut)
            }
            Err(_) => {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD.encode(&self.0);
                let cut = max > 0 && b.len() > max;
                let shown = if cut { &b[..max] } else { &b[..] };
                (format!("base64:{shown}"), cut)
            }
        };
        if cut {
            format!("{body}... ({} bytes)", self.0.len())
        } else {
            body
        }
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show(0))
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.show(0))
    }
}

impl serde::Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match std::str::from_utf8(&self.0) {
            Ok(t) => m.serialize_entry("text", t)?,
            Err(_) => {
                use base64::Engine;
                m.serialize_entry(
                    "bytes",
                    &base64::engine::general_purpose::STANDARD.encode(&self.0),
                )?
            }
        }
        m.end()
    }
}

fn data(v: Vec<u8>) -> Data {
    Data(v)
}

fn text(v: Vec<u8>) -> String {
    String::from_utf8_lossy(&v).into_owned()
}

fn opt_data(v: Vec<u8>) -> Option<Data> {
    (!v.is_empty()).then_some(Data(v))
}

/// A request id, shown in hex (it exceeds 2^53).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestId(pub u64);

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:x}", self.0))
    }
}

/// The header of a v3 request.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Request id (`header.ID`, or the old top-level `ID`).
    pub id: RequestId,
    /// The authenticated user, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Auth revision the request was checked against.
    #[serde(skip_serializing_if = "is_zero")]
    pub auth_revision: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One comparison of a txn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compare {
    /// `version`, `create`, `mod`, `value` or `lease`.
    pub target: &'static str,
    /// `=`, `>`, `<` or `!=`.
    pub result: &'static str,
    /// The key.
    pub key: Data,
    /// The end of the key range, if a range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<Data>,
    /// The value compared against.
    pub against: CompareValue,
}

/// What a comparison compares against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CompareValue {
    /// A version.
    Version(i64),
    /// A create revision.
    CreateRevision(i64),
    /// A mod revision.
    ModRevision(i64),
    /// A value.
    Value(Data),
    /// A lease id.
    Lease(i64),
    /// Nothing set (etcd compares against 0).
    None,
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}", self.target, self.key)?;
        if let Some(e) = &self.range_end {
            write!(f, "..{e}")?;
        }
        write!(f, ") {} ", self.result)?;
        match &self.against {
            CompareValue::Version(v) | CompareValue::CreateRevision(v) | CompareValue::ModRevision(v) => {
                write!(f, "{v}")
            }
            CompareValue::Lease(v) => write!(f, "{v:x}"),
            CompareValue::Value(d) => write!(f, "{d}"),
            CompareValue::None => write!(f, "0"),
        }
    }
}

/// A lease checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Lease id.
    pub id: i64,
    /// Remaining TTL in seconds.
    #[serde(rename = "remainingTTL")]
    pub remaining_ttl: i64,
}

/// What an entry asks etcd to do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// An empty normal entry: a new leader's no-op.
    Noop,
    /// Put a key.
    #[serde(rename_all = "camelCase")]
    Put {
        /// Key.
        key: Data,
        /// Value.
        value: Data,
        /// Lease id (0: none).
        lease: i64,
        /// Return the previous value.
        #[serde(skip_serializing_if = "is_false")]
        prev_kv: bool,
        /// Keep the current value.
        #[serde(skip_serializing_if = "is_false")]
        ignore_value: bool,
        /// Keep the current lease.
        #[serde(skip_serializing_if = "is_false")]
        ignore_lease: bool,
    },
    /// Delete a key or a range.
    #[serde(rename_all = "camelCase")]
    DeleteRange {
        /// Key.
        key: Data,
        /// Range end (exclusive), if a range.
        #[serde(skip_serializing_if = "Option::is_none")]
        range_end: Option<Data>,
        /// Return the deleted pairs.
        #[serde(skip_serializing_if = "is_false")]
        prev_kv: bool,
    },
    /// A read (only in txns, or linearizable reads of old versions).
    #[serde(rename_all = "camelCase")]
    Range {
        /// Key.
        key: Data,
        /// Range end, if a range.
        #[serde(skip_serializing_if = "Option::is_none")]
        range_end: Option<Data>,
        /// Revision read at (0: head).
        revision: i64,
        /// Limit.
        limit: i64,
    },
    /// A transaction.
    Txn {
        /// Comparisons.
        compares: Vec<Compare>,
        /// Operations if all comparisons hold.
        success: Vec<Request>,
        /// Operations otherwise.
        failure: Vec<Request>,
    },
    /// A compaction.
    Compaction {
        /// Revision.
        revision: i64,
        /// Whether the client waits for the physical compaction.
        physical: bool,
    },
    /// Grant a lease.
    LeaseGrant {
        /// Lease id.
        id: i64,
        /// TTL in seconds.
        ttl: i64,
    },
    /// Revoke a lease (and delete its keys).
    LeaseRevoke {
        /// Lease id.
        id: i64,
    },
    /// Lease checkpoints.
    LeaseCheckpoint {
        /// Checkpoints.
        checkpoints: Vec<Checkpoint>,
    },
    /// An alarm request.
    #[serde(rename_all = "camelCase")]
    Alarm {
        /// `get`, `activate`, `deactivate`.
        action: String,
        /// Member.
        member_id: MemberId,
        /// `NONE`, `NOSPACE`, `CORRUPT`.
        alarm: String,
    },
    /// Enable auth.
    AuthEnable,
    /// Disable auth.
    AuthDisable,
    /// Auth status.
    AuthStatus,
    /// Authenticate (issues a simple token).
    Authenticate {
        /// User.
        name: String,
    },
    /// Add a user.
    #[serde(rename_all = "camelCase")]
    UserAdd {
        /// User.
        name: String,
        /// Whether the user has no password.
        #[serde(skip_serializing_if = "is_false")]
        no_password: bool,
    },
    /// Delete a user.
    UserDelete {
        /// User.
        name: String,
    },
    /// Get a user.
    UserGet {
        /// User.
        name: String,
    },
    /// Change a password.
    UserChangePassword {
        /// User.
        name: String,
    },
    /// Grant a role.
    UserGrantRole {
        /// User.
        user: String,
        /// Role.
        role: String,
    },
    /// Revoke a role.
    UserRevokeRole {
        /// User.
        name: String,
        /// Role.
        role: String,
    },
    /// List users.
    UserList,
    /// List roles.
    RoleList,
    /// Add a role.
    RoleAdd {
        /// Role.
        name: String,
    },
    /// Delete a role.
    RoleDelete {
        /// Role.
        role: String,
    },
    /// Get a role.
    RoleGet {
        /// Role.
        role: String,
    },
    /// Grant a permission.
    #[serde(rename_all = "camelCase")]
    RoleGrantPermission {
        /// Role.
        name: String,
        /// `read`, `write`, `readwrite`.
        perm: String,
        /// Key.
        key: Data,
        /// Range end, if a range.
        #[serde(skip_serializing_if = "Option::is_none")]
        range_end: Option<Data>,
    },
    /// Revoke a permission.
    #[serde(rename_all = "camelCase")]
    RoleRevokePermission {
        /// Role.
        role: String,
        /// Key.
        key: Data,
        /// Range end, if a range.
        #[serde(skip_serializing_if = "Option::is_none")]
        range_end: Option<Data>,
    },
    /// Set the cluster version (3.5+).
    ClusterVersion {
        /// Version.
        version: String,
    },
    /// Publish a member's name and client URLs (3.5+).
    #[serde(rename_all = "camelCase")]
    MemberAttr {
        /// Member.
        member_id: MemberId,
        /// Name.
        name: String,
        /// Client URLs.
        client_urls: Vec<String>,
    },
    /// Downgrade info (3.5+).
    Downgrade {
        /// Enabled.
        enabled: bool,
        /// Target version.
        version: String,
    },
    /// A legacy v2 request (3.4 writes these for member publish, cluster
    /// version and v2 API writes).
    #[serde(rename_all = "camelCase")]
    V2 {
        /// Method: PUT, DELETE, POST, QGET, SYNC...
        method: String,
        /// Path.
        path: String,
        /// Value.
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<Data>,
        /// Directory flag.
        #[serde(skip_serializing_if = "is_false")]
        dir: bool,
        /// Recursive flag.
        #[serde(skip_serializing_if = "is_false")]
        recursive: bool,
        /// Expiration (Unix ns, 0: none).
        #[serde(skip_serializing_if = "is_zero_i64")]
        expiration: i64,
        /// Time (Unix ns) of a SYNC.
        #[serde(skip_serializing_if = "is_zero_i64")]
        time: i64,
    },
    /// An InternalRaftRequest with no request in it.
    Empty,
    /// A configuration change.
    ConfChange(ConfChange),
    /// A configuration change (v2 format).
    ConfChangeV2(ConfChangeV2),
    /// An entry type raft does not know.
    UnknownEntryType {
        /// The type.
        raw: i32,
    },
    /// Data that etcd could not apply: it panics on it.
    Undecodable {
        /// Why.
        reason: String,
    },
    /// A txn nested deeper than [`MAX_TXN_DEPTH`]: etcd applies it;
    /// etcd-rescue does not decode it.
    TooDeep {
        /// The limit passed.
        limit: usize,
    },
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl Request {
    /// The kebab-case kind, as in JSON `op` and `wal --type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Noop => "noop",
            Request::Put { .. } => "put",
            Request::DeleteRange { .. } => "delete-range",
            Request::Range { .. } => "range",
            Request::Txn { .. } => "txn",
            Request::Compaction { .. } => "compaction",
            Request::LeaseGrant { .. } => "lease-grant",
            Request::LeaseRevoke { .. } => "lease-revoke",
            Request::LeaseCheckpoint { .. } => "lease-checkpoint",
            Request::Alarm { .. } => "alarm",
            Request::AuthEnable => "auth-enable",
            Request::AuthDisable => "auth-disable",
            Request::AuthStatus => "auth-status",
            Request::Authenticate { .. } => "authenticate",
            Request::UserAdd { .. } => "user-add",
            Request::UserDelete { .. } => "user-delete",
            Request::UserGet { .. } => "user-get",
            Request::UserChangePassword { .. } => "user-change-password",
            Request::UserGrantRole { .. } => "user-grant-role",
            Request::UserRevokeRole { .. } => "user-revoke-role",
            Request::UserList => "user-list",
            Request::RoleList => "role-list",
            Request::RoleAdd { .. } => "role-add",
            Request::RoleDelete { .. } => "role-delete",
            Request::RoleGet { .. } => "role-get",
            Request::RoleGrantPermission { .. } => "role-grant-permission",
            Request::RoleRevokePermission { .. } => "role-revoke-permission",
            Request::ClusterVersion { .. } => "cluster-version",
            Request::MemberAttr { .. } => "member-attr",
            Request::Downgrade { .. } => "downgrade",
            Request::V2 { .. } => "v2",
            Request::Empty => "empty",
            Request::ConfChange(_) => "conf-change",
            Request::ConfChangeV2(_) => "conf-change-v2",
            Request::UnknownEntryType { .. } => "unknown-entry-type",
            Request::Undecodable { .. } => "undecodable",
            Request::TooDeep { .. } => "too-deep",
        }
    }

    /// Every kind name, for `wal --type` help and validation.
    pub const KINDS: &'static [&'static str] = &[
        "noop",
        "put",
        "delete-range",
        "range",
        "txn",
        "compaction",
        "lease-grant",
        "lease-revoke",
        "lease-checkpoint",
        "alarm",
        "auth-enable",
        "auth-disable",
        "auth-status",
        "authenticate",
        "user-add",
        "user-delete",
        "user-get",
        "user-change-password",
        "user-grant-role",
        "user-revoke-role",
        "user-list",
        "role-list",
        "role-add",
        "role-delete",
        "role-get",
        "role-grant-permission",
        "role-revoke-permission",
        "cluster-version",
        "member-attr",
        "downgrade",
        "v2",
        "empty",
        "conf-change",
        "conf-change-v2",
        "unknown-entry-type",
        "undecodable",
        "too-deep",
    ];

    /// Whether any key this request touches starts with `prefix` (for a
    /// range, whether the range can hold such a key).
    pub fn touches_prefix(&self, prefix: &[u8]) -> bool {
        fn range_hits(key: &[u8], end: Option<&Data>, prefix: &[u8]) -> bool {
            if key.starts_with(prefix) {
                return true;
            }
            match end {
                None => false,
                // [key, end) meets [prefix, prefix+) when key < prefix's end and end > prefix.
                Some(e) => {
                    let e = &e.0;
                    let from_zero = e.as_slice() == [0];
                    key <= prefix && (from_zero || e.as_slice() > prefix)
                }
            }
        }
        match self {
            Request::Put { key, .. } => key.0.starts_with(prefix),
            Request::DeleteRange { key, range_end, .. } | Request::Range { key, range_end, .. } => {
                range_hits(&key.0, range_end.as_ref(), prefix)
            }
            Request::Txn {
                compares,
                success,
                failure,
            } => {
                compares
                    .iter()
                    .any(|c| range_hits(&c.key.0, c.range_end.as_ref(), prefix))
                    || success.iter().chain(failure).any(|r| r.touches_prefix(prefix))
            }
            Request::V2 { path, .. } => path.as_bytes().starts_with(prefix),
            _ => false,
        }
    }
}

/// A decoded entry payload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Payload {
    /// The v3 request header, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
}

fn range_end(v: Vec<u8>) -> Option<Data> {
    opt_data(v)
}

fn op(r: pb::RequestOp) -> Request {
    use pb::request_op::Request as R;
    match r.request {
        Some(R::RequestPut(p)) => put(p),
        Some(R::RequestDeleteRange(d)) => delete(d),
        Some(R::RequestRange(g)) => range(g),
        Some(R::RequestTxn(t)) => txn(t),
        None => Request::Empty,
    }
}

fn put(p: pb::PutRequest) -> Request {
    Request::Put {
        key: data(p.key),
        value: data(p.value),
        lease: p.lease,
        prev_kv: p.prev_kv,
        ignore_value: p.ignore_value,
        ignore_lease: p.ignore_lease,
    }
}

fn delete(d: pb::DeleteRangeRequest) -> Request {
    Request::DeleteRange {
        key: data(d.key),
        range_end: range_end(d.range_end),
        prev_kv: d.prev_kv,
    }
}

fn range(g: pb::RangeRequest) -> Request {
    Request::Range {
        key: data(g.key),
        range_end: range_end(g.range_end),
        revision: g.revision,
        limit: g.limit,
    }
}

fn compare(c: pb::Compare) -> Compare {
    use pb::compare::TargetUnion as T;
    let target = match c.target {
        0 => "version",
        1 => "create",
        2 => "mod",
        3 => "value",
        4 => "lease",
        _ => "unknown",
    };
    let result = match c.result {
        0 => "=",
        1 => ">",
        2 => "<",
        3 => "!=",
        _ => "?",
    };
    let against = match c.target_union {
        Some(T::Version(v)) => CompareValue::Version(v),
        Some(T::CreateRevision(v)) => CompareValue::CreateRevision(v),
        Some(T::ModRevision(v)) => CompareValue::ModRevision(v),
        Some(T::Value(v)) => CompareValue::Value(Data(v)),
        Some(T::Lease(v)) => CompareValue::Lease(v),
        None => CompareValue::None,
    };
    Compare {
        target,
        result,
        key: data(c.key),
        range_end: range_end(c.range_end),
        against,
    }
}

fn txn(t: pb::TxnRequest) -> Request {
    Request::Txn {
        compares: t.compare.into_iter().map(compare).collect(),
        success: t.success.into_iter().map(op).collect(),
        failure: t.failure.into_iter().map(op).collect(),
    }
}

fn perm_name(t: i32) -> String {
    match t {
        0 => "read".into(),
        1 => "write".into(),
        2 => "readwrite".into(),
        n => format!("unknown({n})"),
    }
}

fn v2(r: pb::Request) -> Request {
    Request::V2 {
        method: text(r.method.clone().unwrap_or_default()),
        path: text(r.path.clone().unwrap_or_default()),
        value: r.val.clone().and_then(opt_data),
        dir: r.dir(),
        recursive: r.recursive(),
        expiration: r.expiration(),
        time: r.time(),
    }
}

fn internal(r: pb::InternalRaftRequest) -> Payload {
    let header = match &r.header {
        Some(h) => Some(Header {
            id: RequestId(h.id),
            username: String::from_utf8_lossy(&h.username).into_owned(),
            auth_revision: h.auth_revision,
        }),
        None if r.id != 0 => Some(Header {
            id: RequestId(r.id),
            ..Header::default()
        }),
        None => None,
    };
    let request = if let Some(p) = r.put {
        put(p)
    } else if let Some(d) = r.delete_range {
        delete(d)
    } else if let Some(t) = r.txn {
        txn(t)
    } else if let Some(c) = r.compaction {
        Request::Compaction {
            revision: c.revision,
            physical: c.physical,
        }
    } else if let Some(l) = r.lease_grant {
        Request::LeaseGrant { id: l.id, ttl: l.ttl }
    } else if let Some(l) = r.lease_revoke {
        Request::LeaseRevoke { id: l.id }
    } else if let Some(l) = r.lease_checkpoint {
        Request::LeaseCheckpoint {
            checkpoints: l
                .checkpoints
                .into_iter()
                .map(|c| Checkpoint {
                    id: c.id,
                    remaining_ttl: c.remaining_ttl,
                })
                .collect(),
        }
    } else if let Some(g) = r.range {
        range(g)
    } else if let Some(a) = r.alarm {
        Request::Alarm {
            action: match a.action {
                0 => "get".into(),
                1 => "activate".into(),
                2 => "deactivate".into(),
                n => format!("unknown({n})"),
            },
            member_id: MemberId(a.member_id),
            alarm: pb::AlarmType::try_from(a.alarm)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| format!("UNKNOWN({})", a.alarm)),
        }
    } else if let Some(v) = r.v2 {
        v2(v)
    } else if r.auth_enable.is_some() {
        Request::AuthEnable
    } else if r.auth_disable.is_some() {
        Request::AuthDisable
    } else if r.auth_status.is_some() {
        Request::AuthStatus
    } else if let Some(a) = r.authenticate {
        Request::Authenticate { name: text(a.name) }
    } else if let Some(u) = r.auth_user_add {
        Request::UserAdd {
            name: text(u.name),
            no_password: u.options.is_some_and(|o| o.no_password),
        }
    } else if let Some(u) = r.auth_user_delete {
        Request::UserDelete { name: text(u.name) }
    } else if let Some(u) = r.auth_user_get {
        Request::UserGet { name: text(u.name) }
    } else if let Some(u) = r.auth_user_change_password {
        Request::UserChangePassword { name: text(u.name) }
    } else if let Some(u) = r.auth_user_grant_role {
        Request::UserGrantRole {
            user: text(u.user),
            role: text(u.role),
        }
    } else if let Some(u) = r.auth_user_revoke_role {
        Request::UserRevokeRole {
            name: text(u.name),
            role: text(u.role),
        }
    } else if r.auth_user_list.is_some() {
        Request::UserList
    } else if r.auth_role_list.is_some() {
        Request::RoleList
    } else if let Some(x) = r.auth_role_add {
        Request::RoleAdd { name: text(x.name) }
    } else if let Some(x) = r.auth_role_delete {
        Request::RoleDelete { role: text(x.role) }
    } else if let Some(x) = r.auth_role_get {
        Request::RoleGet { role: text(x.role) }
    } else if let Some(x) = r.auth_role_grant_permission {
        let p = x.perm.unwrap_or_default();
        Request::RoleGrantPermission {
            name: text(x.name),
            perm: perm_name(p.perm_type),
            key: data(p.key),
            range_end: range_end(p.range_end),
        }
    } else if let Some(x) = r.auth_role_revoke_permission {
        Request::RoleRevokePermission {
            role: text(x.role),
            key: data(x.key),
            range_end: range_end(x.range_end),
        }
    } else if let Some(c) = r.cluster_version_set {
        Request::ClusterVersion { version: text(c.ver) }
    } else if let Some(m) = r.cluster_member_attr_set {
        let a: membershippb::Attributes = m.member_attributes.unwrap_or_default();
        Request::MemberAttr {
            member_id: MemberId(m.member_id),
            name: text(a.name),
            client_urls: a.client_urls.into_iter().map(text).collect(),
        }
    } else if let Some(d) = r.downgrade_info_set {
        Request::Downgrade {
            enabled: d.enabled,
            version: text(d.ver),
        }
    } else {
        Request::Empty
    };
    Payload { header, request }
}

/// The deepest txn nesting decoded. etcd (Go) has no limit; deeper txns
/// are reported as not decoded (an explicit refusal, never a misreading).
pub const MAX_TXN_DEPTH: usize = 256;

/// Txns nested at least this deep are decoded on a thread of their own with
/// a large stack.
const BIG_STACK_DEPTH: usize = 24;

/// How deep txns nest in an `InternalRaftRequest` (its field 6; a
/// `TxnRequest`'s success and failure ops, fields 2 and 3; a `RequestOp`'s
/// nested txn, field 4), read with the wire reader, without recursion, and
/// no further than `MAX_TXN_DEPTH + 1`.
fn txn_depth(data: &[u8]) -> usize {
    use crate::wire::{Fields, Value};
    let mut deepest = 0;
    let mut stack: Vec<(&[u8], usize)> = Vec::new();
    {
        let mut f = Fields::new(data);
        while let Ok(Some((n, v))) = f.next_field() {
            if let (6, Value::Bytes(b)) = (n, v) {
                stack.push((b, 1));
            }
        }
    }
    while let Some((txn, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if deepest > MAX_TXN_DEPTH {
            break;
        }
        let mut ops = Fields::new(txn);
        while let Ok(Some((n, v))) = ops.next_field() {
            let (2 | 3, Value::Bytes(op)) = (n, v) else {
                continue;
            };
            let mut f = Fields::new(op);
            while let Ok(Some((m, w))) = f.next_field() {
                if let (4, Value::Bytes(inner)) = (m, w) {
                    stack.push((inner, depth + 1));
                }
            }
        }
    }
    deepest
}

/// Decodes an `InternalRaftRequest` whose txns nest `depth` deep: on this
/// thread when shallow, else on a thread with a 64 MiB stack (decoding
/// recurses once per message level).
fn decode_internal(data: &[u8], depth: usize) -> Result<pb::InternalRaftRequest, String> {
    let decode = || pb::InternalRaftRequest::decode(data).map_err(|e| e.to_string());
    if depth < BIG_STACK_DEPTH {
        return decode();
    }
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("deep-txn".into())
            .stack_size(64 << 20)
            .spawn_scoped(s, decode)
            .map_err(|e| format!("cannot start a decoding thread: {e}"))
            .and_then(|h| h.join().unwrap_or_else(|_| Err("the decoder failed".into())))
    })
}

/// Decodes what an entry asks etcd to do.
pub fn decode(e: &Entry<'_>) -> Payload {
    let bare = |request| Payload {
        header: None,
        request,
    };
    match e.kind {
        EntryType::Normal if e.data.is_empty() => bare(Request::Noop),
        EntryType::Normal => match txn_depth(e.data) {
            d if d > MAX_TXN_DEPTH => bare(Request::TooDeep { limit: MAX_TXN_DEPTH }),
            d => match decode_internal(e.data, d) {
                Ok(r) => internal(r),
                Err(e1) => match pb::Request::decode(e.data) {
                    Ok(r) => Payload {
                        header: Some(Header {
                            id: RequestId(r.id()),
                            ..Header::default()
                        }),
                        request: v2(r),
                    },
                    Err(e2) => bare(Request::Undecodable {
                        reason: format!("neither an InternalRaftRequest ({e1}) nor a v2 Request ({e2})"),
                    }),
                },
            },
        },
        EntryType::ConfChange => match ConfChange::decode(e.data) {
            Ok(c) => bare(Request::ConfChange(c)),
            Err(err) => bare(Request::Undecodable {
                reason: format!("not a ConfChange: {err}"),
            }),
        },
        EntryType::ConfChangeV2 => match ConfChangeV2::decode(e.data) {
            Ok(c) => bare(Request::ConfChangeV2(c)),
            Err(err) => bare(Request::Undecodable {
                reason: format!("not a ConfChangeV2: {err}"),
            }),
        },
        EntryType::Unknown(raw) => bare(Request::UnknownEntryType { raw }),
    }
}

impl fmt::Display for Request {
    /// A one-line summary with values cut to 64 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary(64))
    }
}

impl Request {
    /// A one-line summary, values cut to `max` characters (0: whole).
    pub fn summary(&self, max: usize) -> String {
        let re = |e: &Option<Data>| {
            e.as_ref()
                .map(|e| format!(" range_end={}", e.show(max)))
                .unwrap_or_default()
        };
        match self {
            Request::Put {
                key,
                value,
                lease,
                prev_kv,
                ignore_value,
                ignore_lease,
            } => {
                let mut s = format!("key={} value={}", key.show(max), value.show(max));
                if *lease != 0 {
                    s.push_str(&format!(" lease={lease:x}"));
                }
                for (on, name) in [
                    (prev_kv, " prev_kv"),
                    (ignore_value, " ignore_value"),
                    (ignore_lease, " ignore_lease"),
                ] {
                    if *on {
                        s.push_str(name);
                    }
                }
                s
            }
            Request::DeleteRange { key, range_end, .. } => format!("key={}{}", key.show(max), re(range_end)),
            Request::Range {
                key,
                range_end,
                revision,
                limit,
            } => format!(
                "key={}{} rev={revision} limit={limit}",
                key.show(max),
                re(range_end)
            ),
            Request::Txn {
                compares,
                success,
                failure,
            } => {
                let ops = |v: &[Request]| {
                    v.iter()
                        .map(|r| format!("{} {}", r.kind(), r.summary(max)))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                let mut s = String::new();
                if !compares.is_empty() {
                    let c: Vec<String> = compares.iter().map(|c| c.to_string()).collect();
                    s.push_str(&format!("if [{}] ", c.join(", ")));
                }
                s.push_str(&format!("then [{}]", ops(success)));
                if !failure.is_empty() || !compares.is_empty() {
                    s.push_str(&format!(" else [{}]", ops(failure)));
                }
                s
            }
            Request::Compaction { revision, physical } => {
                format!("revision={revision}{}", if *physical { " physical" } else { "" })
            }
            Request::LeaseGrant { id, ttl } => format!("id={id:x} ttl={ttl}"),
            Request::LeaseRevoke { id } => format!("id={id:x}"),
            Request::LeaseCheckpoint { checkpoints } => checkpoints
                .iter()
                .map(|c| format!("id={:x} remaining_ttl={}", c.id, c.remaining_ttl))
                .collect::<Vec<_>>()
                .join(", "),
            Request::Alarm {
                action,
                member_id,
                alarm,
            } => format!("{action} {alarm} member={member_id}"),
            Request::Authenticate { name }
            | Request::UserDelete { name }
            | Request::UserGet { name }
            | Request::UserChangePassword { name }
            | Request::RoleAdd { name } => format!("name={name}"),
            Request::UserAdd { name, no_password } => {
                format!("name={name}{}", if *no_password { " no_password" } else { "" })
            }
            Request::UserGrantRole { user, role } => format!("user={user} role={role}"),
            Request::UserRevokeRole { name, role } => format!("user={name} role={role}"),
            Request::RoleDelete { role } | Request::RoleGet { role } => format!("role={role}"),
            Request::RoleGrantPermission {
                name,
                perm,
                key,
                range_end,
            } => format!("role={name} perm={perm} key={}{}", key.show(max), re(range_end)),
            Request::RoleRevokePermission { role, key, range_end } => {
                format!("role={role} key={}{}", key.show(max), re(range_end))
            }
            Request::ClusterVersion { version } => format!("version={version}"),
            Request::MemberAttr {
                member_id,
                name,
                client_urls,
            } => format!(
                "member={member_id} name={name} client_urls={}",
                client_urls.join(",")
            ),
            Request::Downgrade { enabled, version } => format!("enabled={enabled} version={version}"),
            Request::V2 {
                method, path, value, ..
            } => {
                let v = value
                    .as_ref()
                    .map(|v| format!(" value={}", v.show(max)))
                    .unwrap_or_default();
                format!("{method} {path}{v}")
            }
            Request::ConfChange(c) => {
                let mut s = format!("{} {}", c.change.name(), c.node_id);
                if c.is_promote {
                    s.push_str(" (promote)");
                }
                if let Some(m) = &c.member {
                    s.push_str(&format!(
                        " name={} peer_urls={}{}",
                        if m.name.is_empty() { "-" } else { &m.name },
                        m.peer_urls.join(","),
                        if m.is_learner { " learner" } else { "" }
                    ));
                } else if let Some(ctx) = &c.context {
                    s.push_str(&format!(" context={ctx:?}"));
                }
                s
            }
            Request::ConfChangeV2(c) => {
                let ch: Vec<String> = c
                    .changes
                    .iter()
                    .map(|x| format!("{} {}", x.change.name(), x.node_id))
                    .collect();
                format!("transition={} {}", c.transition, ch.join(", "))
            }
            Request::UnknownEntryType { raw } => format!("entry type {raw}"),
            Request::Undecodable { reason } => reason.clone(),
            Request::TooDeep { limit } => format!(
                "a txn nested more than {limit} levels deep: etcd applies it, etcd-rescue does not decode it"
            ),
            Request::Noop
            | Request::Empty
            | Request::AuthEnable
            | Request::AuthDisable
            | Request::AuthStatus
            | Request::UserList
            | Request::RoleList => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::ids::{Index, Term};

    fn normal(data: &[u8]) -> Payload {
        decode(&Entry {
            term: Term(1),
            index: Index(1),
            kind: EntryType::Normal,
            data,
        })
    }

    #[test]
    fn put_and_fallback() {
        let r = pb::InternalRaftRequest {
            header: Some(pb::RequestHeader {
                id: 7,
                ..Default::default()
            }),
            put: Some(pb::PutRequest {
                key: b"/a".to_vec(),
                value: vec![0xff],
                lease: 10,
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = normal(&r.encode_to_vec());
        assert_eq!(p.header.as_ref().unwrap().id, RequestId(7));
        assert_eq!(p.request.kind(), "put");
        assert_eq!(p.request.summary(0), "key=\"/a\" value=base64:/w== lease=a");
        assert!(p.request.touches_prefix(b"/"));
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["op"], "put");
        assert_eq!(j["key"]["text"], "/a");
        assert_eq!(j["value"]["bytes"], "/w==");
        // A v2 request does not decode as an InternalRaftRequest.
        let v = pb::Request {
            id: Some(3),
            method: Some(b"PUT".to_vec()),
            path: Some(b"/0/version".to_vec()),
            val: Some(b"3.4.0".to_vec()),
            ..Default::default()
        };
        let p = normal(&v.encode_to_vec());
        assert_eq!(p.request.kind(), "v2");
        assert_eq!(p.request.summary(0), "PUT /0/version value=\"3.4.0\"");
        assert_eq!(normal(&[]).request, Request::Noop);
        assert_eq!(normal(&[0xff, 0xff]).request.kind(), "undecodable");
    }

    #[test]
    fn shows() {
        assert_eq!(Data(b"a\nb\"".to_vec()).show(0), "\"a\\nb\\\"\"");
        assert_eq!(Data(b"abcdef".to_vec()).show(3), "\"abc\"... (6 bytes)");
    }

    #[test]
    fn prefixes() {
        let d = Request::DeleteRange {
            key: Data(b"/demo/items/item-00".to_vec()),
            range_end: Some(Data(b"/demo/items/item-01".to_vec())),
            prev_kv: false,
        };
        assert!(d.touches_prefix(b"/demo/items/item-005"));
        assert!(d.touches_prefix(b"/demo/"));
        assert!(!d.touches_prefix(b"/other"));
    }
}
