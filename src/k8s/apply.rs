//! `--for-apply`: what `kubectl apply` on a new cluster must not get.
//!
//! - server-set metadata: `uid`, `resourceVersion`, `generation`,
//!   `creationTimestamp`, `managedFields`, `selfLink`, `deletionTimestamp`,
//!   `deletionGracePeriodSeconds`, and `status`;
//! - `ownerReferences`: owners get new UIDs on the new cluster, so every
//!   reference would dangle (and the garbage collector would delete the
//!   object). Objects a dumped controller owns (`controller: true`) are left
//!   out instead: their controller re-creates them;
//! - objects the new cluster makes for itself: events, leases, endpoints and
//!   endpoint slices, controller revisions, nodes, CSI nodes, service IP
//!   allocations, and service-account token Secrets;
//! - a Service's `clusterIP`/`clusterIPs` (the new cluster allocates them).

use std::collections::HashSet;

use serde_json::Value;

/// Resources a new cluster creates itself (by resource name as shown).
const SKIP_RESOURCES: &[&str] = &[
    "events",
    "leases",
    "endpoints",
    "endpointslices",
    "controllerrevisions",
    "nodes",
    "csinodes",
    "rangeallocations",
    "masterleases",
    "ipaddresses",
];

/// Why an object is left out of a `--for-apply` dump.
pub fn skip_reason(resource: &str, body: &Value, dumped_uids: &HashSet<String>) -> Option<&'static str> {
    let plural = resource.split('.').next().unwrap_or(resource);
    if SKIP_RESOURCES.contains(&plural) && !resource.contains('.') || resource == "events.events.k8s.io" {
        return Some("made by the cluster itself");
    }
    if body.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token") {
        return Some("service-account token (the new cluster issues its own)");
    }
    let owned = body
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| dumped_uids.contains(u))
            })
        });
    if owned {
        return Some("owned by a dumped controller, which re-creates it");
    }
    None
}

/// Strips what `kubectl apply` must not get (in place).
pub fn strip(body: &mut Value) {
    let Value::Object(m) = body else { return };
    m.remove("status");
    let kind = m.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        for f in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "ownerReferences",
        ] {
            meta.remove(f);
        }
    }
    if kind == "Service" {
        if let Some(Value::Object(spec)) = m.get_mut("spec") {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_server_fields() {
        let mut v = json!({"kind": "Service", "metadata": {"name": "s", "uid": "u", "resourceVersion": "5",
            "managedFields": [], "creationTimestamp": "x", "ownerReferences": [{"uid": "o"}], "labels": {"a": "b"}},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}, "status": {"loadBalancer": {}}});
        strip(&mut v);
        assert_eq!(
            v,
            json!({"kind": "Service", "metadata": {"name": "s", "labels": {"a": "b"}},
            "spec": {"ports": [{"port": 80}]}})
        );
    }

    #[test]
    fn skips_what_controllers_recreate() {
        let uids: HashSet<String> = ["rs-uid".to_string()].into();
        let pod = json!({"metadata": {"ownerReferences": [{"uid": "rs-uid", "controller": true}]}});
        assert!(skip_reason("pods", &pod, &uids).is_some());
        let orphan = json!({"metadata": {"ownerReferences": [{"uid": "gone", "controller": true}]}});
        assert!(skip_reason("pods", &orphan, &uids).is_none());
        assert!(skip_reason("events", &json!({}), &uids).is_some());
        assert!(skip_reason("configmaps", &json!({}), &uids).is_none());
    }
}
