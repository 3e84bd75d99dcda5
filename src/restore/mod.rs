//! Restore-ready data directories without a running etcd: from snapshot
//! files and from copied member dirs, for one member or all of them, and the
//! offline equivalent of `--force-new-cluster`.
//!
//! A restored member dir holds what `etcdutl snapshot restore` writes:
//!
//! ```text
//! member/snap/db                                   the db (db.rs): new members, raft position N
//! member/wal/0000000000000000-0000000000000000.wal crc, metadata{node, cluster}, snapshot{0,0},
//!                                                  N AddNode conf changes (term 1), HardState
//!                                                  {term 1, vote smallest id, commit N},
//!                                                  snapshot{N, 1, voters}
//! member/snap/0000000000000001-<N>.snap            raft snapshot at (N, 1) with the v2 store's
//!                                                  membership (read by etcd 3.4 and 3.5)
//! ```
//! where N is the number of members. IDs follow etcd (members.rs).

pub mod db;
pub mod members;
pub mod replay;

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::bolt::Db;
use crate::pb::raftpb;
use crate::snap::writer::{snap_file, snap_name, v2_store_json};
use crate::wal::writer::{SegmentWriter, add_node_entry};

use db::{DbOutcome, DbPlan, write_restored_db};
use members::{ClusterSpec, MemberSpec};
use replay::Replayed;

/// Errors writing a member dir.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What was written for one member.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberOutcome {
    /// Member name.
    pub name: String,
    /// Member ID (hex).
    pub member_id: String,
    /// The data dir.
    pub data_dir: String,
    /// The WAL dir.
    pub wal_dir: String,
    /// The db.
    pub db: DbOutcome,
    /// The raft index of the snapshot (the number of members).
    pub snapshot_index: u64,
}

fn mkdir(p: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The raft configuration of the new cluster.
pub fn conf_state(cluster: &ClusterSpec) -> raftpb::ConfState {
    raftpb::ConfState {
        voters: cluster.ids(),
        auto_leave: Some(false),
        ..Default::default()
    }
}

/// Writes one restored member: the db into `data_dir/member/snap/db`, the
/// snap file beside it, and the WAL into `wal_dir` (which holds the segment
/// directly, like etcd's `--wal-dir`). Both directories are created.
pub fn write_member(
    src: &Db<'_>,
    cluster: &ClusterSpec,
    local: &MemberSpec,
    replayed: Option<&Replayed>,
    bump_revision: Option<i64>,
    data_dir: &Path,
    wal_dir: &Path,
) -> Result<MemberOutcome, BoxError> {
    let n = cluster.members.len() as u64;
    let snap_dir = data_dir.join("member/snap");
    mkdir(&snap_dir)?;
    mkdir(wal_dir)?;
    // The db.
    let plan = DbPlan {
        cluster,
        consistent_index: n,
        term: 1,
        bump_revision,
        extra_revisions: replayed.map(|r| r.revisions.clone()).unwrap_or_default(),
        extra_meta: replayed.map(|r| r.meta.clone()).unwrap_or_default(),
        lease_puts: replayed.map(|r| r.lease_puts.clone()).unwrap_or_default(),
        lease_deletes: replayed.map(|r| r.lease_deletes.clone()).unwrap_or_default(),
    };
    let db_path = snap_dir.join("db");
    let f = fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(&db_path)?;
    let mut out = BufWriter::new(f);
    let db = write_restored_db(src, &plan, &mut out, src.page_size() as u32)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    // The WAL.
    let mut w = SegmentWriter::new(0);
    w.metadata(local.id, cluster.cluster_id);
    w.snapshot(0, 0, None);
    for (i, m) in cluster.members.iter().enumerate() {
        w.entry(&add_node_entry(1, i as u64 + 1, m.id, m.json().as_bytes()));
    }
    w.state(1, cluster.members[0].id, n);
    w.snapshot(n, 1, Some(conf_state(cluster)));
    write_private(
        &wal_dir.join("0000000000000000-0000000000000000.wal"),
        &w.finish(),
    )?;
    // The snap file.
    let attrs: Vec<(u64, String)> = cluster
        .members
        .iter()
        .map(|m| (m.id, m.raft_attributes()))
        .collect();
    let snap = snap_file(v2_store_json(&attrs), n, 1, conf_state(cluster));
    write_private(&snap_dir.join(snap_name(1, n)), &snap)?;
    Ok(MemberOutcome {
        name: local.name.clone(),
        member_id: format!("{:x}", local.id),
        data_dir: data_dir.display().to_string(),
        wal_dir: wal_dir.display().to_string(),
        db,
        snapshot_index: n,
    })
}

/// The flags to start a restored member with, one per line.
pub fn start_flags(cluster: &ClusterSpec, m: &MemberSpec, data_dir: &str) -> String {
    let initial: Vec<String> = cluster
        .members
        .iter()
        .flat_map(|x| x.peer_urls.iter().map(move |u| format!("{}={u}", x.name)))
        .collect();
    let urls = m.peer_urls.join(",");
    format!(
        "# etcd flags for member {name} (member ID {id:x}) of the restored cluster {cid:x}.\n\
         # Copy the folder {name}/ to the host as the data dir below, then run: etcd $(grep -v '^#' {name}.flags)\n\
         # Add your client URLs (--listen-client-urls, --advertise-client-urls) and TLS flags as before.\n\
         --name={name}\n\
         --data-dir={data_dir}\n\
         --initial-advertise-peer-urls={urls}\n\
         --listen-peer-urls={urls}\n\
         --initial-cluster={initial}\n\
         --initial-cluster-token={token}\n\
         --initial-cluster-state=new\n",
        name = m.name,
        id = m.id,
        cid = cluster.cluster_id,
        initial = initial.join(","),
        token = cluster.token,
    )
}
