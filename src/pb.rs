//! Protobuf types generated at build time from our own `.proto` files in
//! `proto/` (see `build.rs`). Generated code stays behind this module.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `mvccpb`: the KeyValue record of the `key` bucket.
pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

/// `leasepb`: leases in the `lease` bucket.
pub mod leasepb {
    include!(concat!(env!("OUT_DIR"), "/leasepb.rs"));
}

/// `authpb`: users and roles in the `authUsers` and `authRoles` buckets.
pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
}

/// `etcdserverpb`: etcd server messages: alarms, the WAL metadata, and the
/// payloads of raft entries (`InternalRaftRequest`, the legacy v2 `Request`).
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

/// `membershippb`: membership requests carried in raft entries (3.5+).
pub mod membershippb {
    include!(concat!(env!("OUT_DIR"), "/membershippb.rs"));
}

/// `raftpb`: raft entries, hard state, configuration and snapshots.
pub mod raftpb {
    include!(concat!(env!("OUT_DIR"), "/raftpb.rs"));
}

/// `walpb`: the WAL record and the WAL's snapshot marker.
pub mod walpb {
    include!(concat!(env!("OUT_DIR"), "/walpb.rs"));
}

/// `snappb`: the envelope of a `.snap` file.
pub mod snappb {
    include!(concat!(env!("OUT_DIR"), "/snappb.rs"));
}
