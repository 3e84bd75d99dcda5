//! Raft configuration: `ConfState`, and the `ConfChange` / `ConfChangeV2`
//! payloads of configuration entries.
//!
//! ```text
//! raftpb.ConfState     1 voters, 2 learners, 3 voters_outgoing, 4 learners_next
//!                      (repeated uint64, unpacked), 5 auto_leave bool
//! raftpb.ConfChange    1 id (request id), 2 type, 3 node_id, 4 context
//!                      type: 0 AddNode, 1 RemoveNode, 2 UpdateNode, 3 AddLearnerNode
//!                      context: the Member JSON for add/update (with "isPromote"
//!                      for a learner promotion), empty for remove
//! raftpb.ConfChangeV2  1 transition, 2 changes {1 type, 2 node_id}, 3 context
//! ```

use prost::Message;

use crate::membership::Member;
use crate::membership::MemberId;
use crate::pb::raftpb;

/// The raft configuration: who votes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfState {
    /// Voting members.
    pub voters: Vec<MemberId>,
    /// Learners.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<MemberId>,
    /// Outgoing voters of a joint configuration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub voters_outgoing: Vec<MemberId>,
    /// Learners in the next configuration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learners_next: Vec<MemberId>,
    /// Auto-leave flag.
    pub auto_leave: bool,
}

impl From<raftpb::ConfState> for ConfState {
    fn from(c: raftpb::ConfState) -> ConfState {
        let ids = |v: Vec<u64>| v.into_iter().map(MemberId).collect();
        ConfState {
            auto_leave: c.auto_leave(),
            voters: ids(c.voters),
            learners: ids(c.learners),
            voters_outgoing: ids(c.voters_outgoing),
            learners_next: ids(c.learners_next),
        }
    }
}

/// What a configuration change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Add a voter (or promote a learner).
    AddNode,
    /// Remove a member.
    RemoveNode,
    /// Update a member's attributes.
    UpdateNode,
    /// Add a learner.
    AddLearnerNode,
    /// A value raft does not know.
    Unknown,
}

impl ChangeKind {
    fn from_raw(v: i32) -> ChangeKind {
        match v {
            0 => ChangeKind::AddNode,
            1 => ChangeKind::RemoveNode,
            2 => ChangeKind::UpdateNode,
            3 => ChangeKind::AddLearnerNode,
            _ => ChangeKind::Unknown,
        }
    }

    /// kebab-case name.
    pub fn name(&self) -> &'static str {
        match self {
            ChangeKind::AddNode => "add-node",
            ChangeKind::RemoveNode => "remove-node",
            ChangeKind::UpdateNode => "update-node",
            ChangeKind::AddLearnerNode => "add-learner-node",
            ChangeKind::Unknown => "unknown",
        }
    }
}

/// A decoded `ConfChange`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfChange {
    /// Request id (0 in restore and force-new-cluster entries).
    pub id: u64,
    /// What it does.
    pub change: ChangeKind,
    /// Raw change type.
    pub raw_type: i32,
    /// The member.
    pub node_id: MemberId,
    /// The Member JSON of the context, when it decodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// Whether the context marks a learner promotion.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_promote: bool,
    /// The context as text, when it is not Member JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// One change of a `ConfChangeV2`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SingleChange {
    /// What it does.
    pub change: ChangeKind,
    /// The member.
    pub node_id: MemberId,
}

/// A decoded `ConfChangeV2`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfChangeV2 {
    /// 0 auto, 1 joint implicit, 2 joint explicit.
    pub transition: i32,
    /// The changes.
    pub changes: Vec<SingleChange>,
    /// The context as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

#[derive(serde::Deserialize)]
struct PromoteFlag {
    #[serde(rename = "isPromote", default)]
    is_promote: bool,
}

impl ConfChange {
    /// Decodes a `ConfChange` and its Member JSON context.
    pub fn decode(data: &[u8]) -> Result<ConfChange, prost::DecodeError> {
        let c = raftpb::ConfChange::decode(data)?;
        let raw_type = c.r#type.unwrap_or(0);
        let ctx = c.context.unwrap_or_default();
        let member = serde_json::from_slice::<Member>(&ctx).ok();
        let is_promote = serde_json::from_slice::<PromoteFlag>(&ctx)
            .map(|p| p.is_promote)
            .unwrap_or(false);
        let context =
            (member.is_none() && !ctx.is_empty()).then(|| String::from_utf8_lossy(&ctx).into_owned());
        Ok(ConfChange {
            id: c.id.unwrap_or(0),
            change: ChangeKind::from_raw(raw_type),
            raw_type,
            node_id: MemberId(c.node_id.unwrap_or(0)),
            member,
            is_promote,
            context,
        })
    }
}

impl ConfChangeV2 {
    /// Decodes a `ConfChangeV2`.
    pub fn decode(data: &[u8]) -> Result<ConfChangeV2, prost::DecodeError> {
        let c = raftpb::ConfChangeV2::decode(data)?;
        let ctx = c.context.unwrap_or_default();
        Ok(ConfChangeV2 {
            transition: c.transition.unwrap_or(0),
            changes: c
                .changes
                .iter()
                .map(|s| SingleChange {
                    change: ChangeKind::from_raw(s.r#type.unwrap_or(0)),
                    node_id: MemberId(s.node_id.unwrap_or(0)),
                })
                .collect(),
            context: (!ctx.is_empty()).then(|| String::from_utf8_lossy(&ctx).into_owned()),
        })
    }
}
