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

/// `etcdserverpb`: etcd server messages (alarms; WAL payloads come later).
pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}
