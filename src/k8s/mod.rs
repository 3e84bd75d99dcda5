//! Kubernetes objects in etcd: the key layout, the value encodings
//! (protobuf, JSON, CBOR), decryption of values encrypted at rest, and
//! rendering as `kubectl get -o yaml|json` shows them. Library code only: it
//! never prints.

pub mod decode;
pub mod envelope;
pub mod gotime;
pub mod schema;
pub mod wire;
