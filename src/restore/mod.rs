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

pub mod admit;
pub mod db;
pub mod job;
pub mod members;

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::bolt::Db;
use crate::pb::raftpb;
use crate::snap::writer::{snap_file, snap_name, v2_store_json};
use crate::wal::writer::{SegmentWriter, add_node_entry};

use crate::datadir::replay::Replayed;
use db::{DbOutcome, DbPlan, write_restored_db};
use members::{ClusterSpec, MemberSpec};

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

fn write_private(path: &Path, bytes: &[u8], len: u64) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    if len > bytes.len() as u64 {
        // Zeros to the segment size, like etcd's preallocation (sparse here).
        f.set_len(len)?;
    }
    f.sync_all()
}

/// Bytes per direct write.
const DIRECT_CHUNK: usize = 16 << 20;

/// Writes as much of `image` as direct I/O allows at the start of the
/// (empty) file at `path`, and returns how many bytes it wrote.
///
/// `image` is the source's memory mapping, which is page-aligned, so with
/// `O_DIRECT` the device reads the pages straight from the source's page
/// cache: no copy into new page-cache pages and little left for the final
/// fsync (on the reference VM, 1.1 GB in 0.9 s against 4.5 s buffered).
/// A filesystem without direct I/O, or a length the device cannot take
/// directly, just ends the direct part early; the caller copies the rest.
fn write_direct(path: &Path, image: &[u8]) -> u64 {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    else {
        return 0;
    };
    let mut done = 0usize;
    while done < image.len() {
        let end = image.len().min(done + DIRECT_CHUNK);
        match f.write(&image[done..end]) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    done as u64
}

/// The raft configuration of the new cluster.
pub fn conf_state(cluster: &ClusterSpec) -> raftpb::ConfState {
    raftpb::ConfState {
        voters: cluster.ids(),
        auto_leave: Some(false),
        ..Default::default()
    }
}

/// What a restore starts from.
pub struct RestoreSource<'s, 'a> {
    /// The source db (a snapshot's or a member dir's).
    pub db: &'s Db<'a>,
    /// The open file behind `db`, for a kernel-side copy of its pages.
    pub file: Option<&'s fs::File>,
    /// Committed WAL entries the db lacks (a member dir restore).
    pub replayed: Option<&'s Replayed>,
    /// `--bump-revision`.
    pub bump_revision: Option<i64>,
}

/// Writes one restored member: the db into `data_dir/member/snap/db`, the
/// snap file beside it, and the WAL into `wal_dir` (which holds the segment
/// directly, like etcd's `--wal-dir`). Both directories are created.
pub fn write_member(
    source: &RestoreSource<'_, '_>,
    cluster: &ClusterSpec,
    local: &MemberSpec,
    data_dir: &Path,
    wal_dir: &Path,
) -> Result<MemberOutcome, BoxError> {
    let RestoreSource {
        db: src,
        file: src_file,
        replayed,
        bump_revision,
    } = *source;
    let n = cluster.members.len() as u64;
    let snap_dir = data_dir.join("member/snap");
    mkdir(&snap_dir)?;
    mkdir(wal_dir)?;
    // The db.
    let mut plan = DbPlan {
        cluster,
        consistent_index: n,
        term: 1,
        bump_revision,
        extra_revisions: replayed.map(|r| r.changes.revisions.clone()).unwrap_or_default(),
        extra_meta: replayed.map(|r| r.changes.meta.clone()).unwrap_or_default(),
        lease_puts: replayed.map(|r| r.changes.lease_puts.clone()).unwrap_or_default(),
        lease_deletes: replayed
            .map(|r| r.changes.lease_deletes.clone())
            .unwrap_or_default(),
        pages_copied: false,
    };
    let db_path = snap_dir.join("db");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(&db_path)?;
    if let Some(sf) = src_file
        && db::copies_pages(&plan)
    {
        // The source's pages are copied whole and the changed buckets
        // appended after: first with direct I/O from the source's mapping,
        // then (for whatever that could not write) by the kernel's
        // copy_file_range, never through a user-space buffer.
        let len = src.high_water().saturating_mul(src.page_size() as u64);
        let image = src.data().get(..len as usize).unwrap_or_default();
        let direct = write_direct(&db_path, image);
        let mut from = sf.try_clone()?;
        std::io::Seek::seek(&mut from, std::io::SeekFrom::Start(direct))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(direct))?;
        let copied = direct + std::io::copy(&mut std::io::Read::take(from, len - direct), &mut f)?;
        plan.pages_copied = copied == len;
    }
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
        &w.into_bytes(),
        crate::wal::writer::SEGMENT_SIZE,
    )?;
    // The snap file.
    let attrs: Vec<(u64, String)> = cluster
        .members
        .iter()
        .map(|m| (m.id, m.raft_attributes()))
        .collect();
    let snap = snap_file(v2_store_json(&attrs), n, 1, conf_state(cluster));
    write_private(&snap_dir.join(snap_name(1, n)), &snap, 0)?;
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
