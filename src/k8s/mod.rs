//! Kubernetes objects in etcd: the key layout, the value encodings
//! (protobuf, JSON, CBOR), decryption of values encrypted at rest, and
//! rendering as `kubectl get -o yaml|json` shows them. Library code only: it
//! never prints.

pub mod apply;
pub mod cbor;
pub mod decode;
pub mod diff;
pub mod dump;
pub mod encryption;
pub mod envelope;
pub mod filter;
pub mod gotime;
pub mod keys;
pub mod list;
pub mod object;
pub mod phase;
pub mod schema;
pub mod store;
pub mod yaml;
