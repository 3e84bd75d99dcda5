//! Listing the Kubernetes objects of a keyspace: the keys under the
//! apiserver's prefix at a revision, filtered by resource before decoding and
//! by what the caller keeps after, in (resource, namespace, name) order.

use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::KvError;

use super::object::{self, Context, Object};
use super::{keys, store};

/// Objects of the source at the revision, filtered, in (resource,
/// namespace, name) order; deleted ones only when asked. `resource` filters
/// on the key before decoding; `keep` decides on the decoded object;
/// `bodies: false` drops the decoded objects (listings).
pub fn objects(
    ks: &Keyspace<'_>,
    rev: Option<i64>,
    cx: Context<'_>,
    include_deleted: bool,
    resource: Option<&str>,
    keep: &dyn Fn(&Object) -> bool,
    bodies: bool,
) -> Result<(i64, Vec<Object>), KvError> {
    let prefix = format!("{}/", cx.prefix);
    let idx = store::index(ks, rev, prefix.as_bytes())?;
    let mut out = Vec::new();
    for e in &idx.entries {
        if e.deleted_at.is_some() && !include_deleted {
            continue;
        }
        if let (Some(r), Some(loc)) = (
            resource,
            keys::locate(&String::from_utf8_lossy(e.key), cx.prefix, None, None),
        ) {
            // Custom resources' keys can be read two ways: decide after decoding.
            if !keys::matches(r, &loc.resource, "") && !loc.resource.contains('.') {
                continue;
            }
        }
        if let Some(kv) = store::value_at(ks, e.last_put)? {
            let mut o = object::decode(&kv, e.deleted_at.map(|r| r.main), cx);
            if keep(&o) {
                if !bodies {
                    // Listings keep one row per object, not the objects.
                    o.body = None;
                }
                out.push(o);
            }
        }
    }
    out.sort_by(|a, b| {
        (
            &a.location.resource,
            &a.location.namespace,
            &a.location.name,
            a.deleted_at,
        )
            .cmp(&(
                &b.location.resource,
                &b.location.namespace,
                &b.location.name,
                b.deleted_at,
            ))
    });
    Ok((idx.revision, out))
}
