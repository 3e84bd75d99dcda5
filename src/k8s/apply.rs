//! `--for-apply`: what `kubectl apply` on a new cluster must not get, after
//! Velero's restore rules (its non-restorable resources, `resetMetadata`,
//! `resetStatus` and restore item actions; `docs/k8s.md` lists them with
//! where we differ).
//!
//! [`decide`] takes one decoded object and says whether it is left out (and
//! why) or what was changed in it. What every object loses is not listed per
//! object: the server-set metadata (`uid`, `resourceVersion`, `generation`,
//! `creationTimestamp`, `managedFields`, `selfLink`, `generateName`,
//! `deletionTimestamp`, `deletionGracePeriodSeconds`, `ownerReferences`:
//! owners get new UIDs, so a reference would dangle and the garbage
//! collector would delete the object) and `status`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::filter::NamespaceMapping;

/// What the first pass over the dump learned, and the user's choices.
#[derive(Debug, Default)]
pub struct ApplyContext {
    /// UIDs of every selected object (owners that are dumped).
    pub uids: HashSet<String>,
    /// `namespace/name` of Services with a selector (their Endpoints are
    /// the endpoints controller's).
    pub selector_services: HashSet<String>,
    /// Keep objects whose controller is dumped (Velero's behaviour: the
    /// controller adopts them by its selector).
    pub keep_owned: bool,
    /// Keep Services' node ports (Velero's `--preserve-nodeports`).
    pub preserve_nodeports: bool,
    /// Velero's `--namespace-mappings`.
    pub mapping: NamespaceMapping,
}

/// What happens to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Left out, and why.
    Skip(&'static str),
    /// Written, with what was changed besides the server-set metadata and
    /// status.
    Write(Vec<Change>),
}

/// One change made to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Which rule (for counting).
    pub rule: &'static str,
    /// What was done, with the values.
    pub text: String,
}

/// Resources the new cluster makes itself (Velero's `nonRestorableResources`
/// and ours), with why.
const NOT_RESTORABLE: &[(&str, &str)] = &[
    ("nodes", "a node of the old cluster (nodes register themselves)"),
    ("events", "an event of the old cluster"),
    ("events.events.k8s.io", "an event of the old cluster"),
    ("csinodes", "made by each node's kubelet"),
    ("volumeattachments", "made by the attach-detach controller"),
    (
        "controllerrevisions",
        "rollout history its StatefulSet or DaemonSet writes anew",
    ),
    ("rangeallocations", "the apiserver's IP and port allocation"),
    ("masterleases", "the apiserver's own endpoint lease"),
    (
        "ipaddresses",
        "a Service IP allocation (the new cluster allocates its own)",
    ),
    (
        "certificatesigningrequests",
        "a certificate request of the old cluster",
    ),
    ("backups.velero.io", "Velero's own record"),
    ("restores.velero.io", "Velero's own record"),
    ("resticrepositories.velero.io", "Velero's own record"),
    ("backuprepositories.velero.io", "Velero's own record"),
];

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn label<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")
        .and_then(|l| l.get(k))
        .and_then(Value::as_str)
}

fn annotation<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|l| l.get(k))
        .and_then(Value::as_str)
}

fn owned_by_dumped(body: &Value, cx: &ApplyContext) -> bool {
    body.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("controller").and_then(Value::as_bool) == Some(true)
                    && r.get("uid")
                        .and_then(Value::as_str)
                        .is_some_and(|u| cx.uids.contains(u))
            })
        })
}

/// Why an object is left out, or `None` to write it. `body` is the object
/// as stored (status still there: finished pods and jobs are told by it).
pub fn skip_reason(
    resource: &str,
    ns: &str,
    name: &str,
    body: &Value,
    cx: &ApplyContext,
) -> Option<&'static str> {
    if let Some((_, why)) = NOT_RESTORABLE.iter().find(|(r, _)| *r == resource) {
        return Some(why);
    }
    let skip = match resource {
        "leases" if ns == "kube-node-lease" => Some("a node's heartbeat lease"),
        "leases" => Some("a leader-election lease (the new cluster's components elect anew)"),
        "endpoints" | "services" | "endpointslices" if ns == "default" && name == "kubernetes" => {
            Some("the apiserver's own Service (every cluster has it)")
        }
        "servicecidrs" if name == "kubernetes" => Some("the apiserver's default service CIDR"),
        "endpoints" if cx.selector_services.contains(&format!("{ns}/{name}")) => {
            Some("kept by the endpoints controller from its Service's selector")
        }
        "endpointslices"
            if label(body, "endpointslice.kubernetes.io/managed-by")
                .is_some_and(|m| m.ends_with(".k8s.io")) =>
        {
            Some("kept by the endpoint slice controllers")
        }
        "secrets" if str_at(body, "/type") == Some("kubernetes.io/service-account-token") => {
            annotation(body, "kubernetes.io/service-account.name")
                .filter(|sa| name.starts_with(&format!("{sa}-token-")))
                .map(|_| "a service-account token (the new cluster issues its own)")
        }
        "configmaps" if name == "kube-root-ca.crt" => {
            Some("published in every namespace by the new cluster's root CA publisher")
        }
        "apiservices.apiregistration.k8s.io"
            if label(body, "kube-aggregator.kubernetes.io/automanaged").is_some() =>
        {
            Some("registered by the apiserver itself (automanaged)")
        }
        "pods" if annotation(body, "kubernetes.io/config.mirror").is_some() => {
            Some("a static pod's mirror (the node's kubelet makes it from a manifest)")
        }
        "pods" if matches!(str_at(body, "/status/phase"), Some("Succeeded" | "Failed")) => {
            Some("a pod that had finished")
        }
        "jobs" if body.pointer("/status/completionTime").is_some() => Some("a job that had completed"),
        "priorityclasses" if matches!(name, "system-node-critical" | "system-cluster-critical") => {
            Some("built into the apiserver")
        }
        "clusterroles" | "clusterrolebindings" | "roles" | "rolebindings"
            if label(body, "kubernetes.io/bootstrapping") == Some("rbac-defaults") =>
        {
            Some("default RBAC the new apiserver creates and reconciles itself")
        }
        "flowschemas" | "prioritylevelconfigurations"
            if annotation(body, "apf.kubernetes.io/autoupdate-spec") == Some("true") =>
        {
            Some("a default the apiserver keeps up to date itself")
        }
        _ => None,
    };
    if skip.is_some() {
        return skip;
    }
    if !cx.keep_owned && owned_by_dumped(body, cx) {
        return Some("owned by a dumped controller, which re-creates it");
    }
    None
}

/// Decides one object and, when it is written, strips it in place.
pub fn decide(resource: &str, body: &mut Value, cx: &ApplyContext) -> Decision {
    let ns = str_at(body, "/metadata/namespace").unwrap_or("").to_string();
    let name = str_at(body, "/metadata/name").unwrap_or("").to_string();
    if let Some(why) = skip_reason(resource, &ns, &name, body, cx) {
        return Decision::Skip(why);
    }
    let Value::Object(m) = body else {
        return Decision::Write(Vec::new());
    };
    let mut changes = Vec::new();
    let mut note = |rule: &'static str, text: String| changes.push(Change { rule, text });
    match resource {
        "pods" => pod(m, &mut note),
        "jobs" => job(m, &mut note),
        "services" => service(m, cx.preserve_nodeports, &mut note),
        "serviceaccounts" => service_account(m, &name, &mut note),
        "secrets" => token_secret(m, &mut note),
        "persistentvolumeclaims" => pvc(m, &mut note),
        "persistentvolumes" => pv(m, &cx.mapping, &mut note),
        "customresourcedefinitions.apiextensions.k8s.io" => crd(m, &mut note),
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => webhooks(m, &mut note),
        "rolebindings" | "clusterrolebindings" => subjects(m, &cx.mapping, &mut note),
        _ => {}
    }
    map_namespace(resource, m, &cx.mapping, &mut note);
    // Last: the rules above read managedFields (node ports the user set).
    reset_metadata(m);
    Decision::Write(changes)
}

/// Velero's `resetMetadata` and `resetStatus`, and `managedFields`
/// (server-side apply refuses them in what it is given).
fn reset_metadata(m: &mut Map<String, Value>) {
    m.remove("status");
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        for f in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "generateName",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "ownerReferences",
        ] {
            meta.remove(f);
        }
    }
}

fn obj<'a>(m: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(k).and_then(Value::as_object_mut)
}

fn remove_keys(m: Option<&mut Map<String, Value>>, keys: &[&str]) -> Vec<String> {
    let Some(m) = m else { return Vec::new() };
    keys.iter()
        .filter(|k| m.remove(**k).is_some())
        .map(|k| (*k).to_string())
        .collect()
}

/// Whether a pod volume is the service-account token the old cluster
/// injected: the legacy `<sa>-token-xxxxx` Secret volume (Velero's rule) or
/// the projected `kube-api-access-xxxxx` volume (1.22+), which admission
/// injects again on the new cluster.
fn token_volume(v: &Value, sa: &str) -> bool {
    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
    (name.starts_with(&format!("{sa}-token-")) && v.get("secret").is_some())
        || (name.starts_with("kube-api-access-") && v.get("projected").is_some())
}

fn pod(m: &mut Map<String, Value>, note: &mut dyn FnMut(&'static str, String)) {
    let Some(spec) = obj(m, "spec") else { return };
    if let Some(n) = spec.remove("nodeName") {
        let n = n.as_str().unwrap_or_default().to_string();
        note(
            "nodeName",
            format!("removed spec.nodeName {n} (a node of the old cluster)"),
        );
    }
    if spec.remove("priority").is_some() {
        note(
            "priority",
            "removed spec.priority (set again from priorityClassName)".into(),
        );
    }
    let sa = spec
        .get("serviceAccountName")
        .or_else(|| spec.get("serviceAccount"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let mut gone = Vec::new();
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        vols.retain(|v| {
            let t = token_volume(v, &sa);
            if t {
                gone.push(v.get("name").and_then(Value::as_str).unwrap_or("").to_string());
            }
            !t
        });
        if vols.is_empty() {
            spec.remove("volumes");
        }
    }
    if gone.is_empty() {
        return;
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            if let Some(Value::Array(mounts)) = c.get_mut("volumeMounts") {
                mounts.retain(|mt| {
                    !gone
                        .iter()
                        .any(|g| mt.get("name").and_then(Value::as_str) == Some(g))
                });
                if mounts.is_empty() {
                    c.remove("volumeMounts");
                }
            }
        }
    }
    note(
        "token volumes",
        format!(
            "removed the old cluster's service-account token volume {} and its mounts",
            gone.join(", ")
        ),
    );
}

const JOB_UID_LABELS: &[&str] = &["batch.kubernetes.io/controller-uid", "controller-uid"];

fn job(m: &mut Map<String, Value>, note: &mut dyn FnMut(&'static str, String)) {
    let Some(spec) = obj(m, "spec") else { return };
    let mut removed = false;
    if let Some(sel) = obj(spec, "selector") {
        removed |= !remove_keys(obj(sel, "matchLabels"), JOB_UID_LABELS).is_empty();
        if sel
            .get("matchLabels")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            sel.remove("matchLabels");
        }
        if sel.is_empty() {
            spec.remove("selector");
        }
    }
    let tl = obj(spec, "template")
        .and_then(|t| obj(t, "metadata"))
        .and_then(|t| obj(t, "labels"));
    removed |= !remove_keys(tl, JOB_UID_LABELS).is_empty();
    if removed {
        note(
            "job controller-uid",
            "removed the controller-uid selector and labels (the new Job gets its own)".into(),
        );
    }
}

/// Node ports the user asked for: set in `last-applied-configuration`
/// (by port name, or by value for unnamed ports), else named in
/// managedFields (Velero's `deleteNodePorts`).
fn asked_node_ports(m: &Map<String, Value>) -> (HashSet<String>, bool) {
    let mut keep = HashSet::new();
    let last = m
        .get("metadata")
        .and_then(|md| md.pointer("/annotations/kubectl.kubernetes.io~1last-applied-configuration"))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    if let Some(last) = last {
        for p in last
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) > 0 {
                keep.insert(match p.get("name").and_then(Value::as_str) {
                    Some(n) if !n.is_empty() => format!("name:{n}"),
                    _ => format!("nodePort:{}", p["nodePort"]),
                });
            }
        }
        let hc = last
            .pointer("/spec/healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0;
        return (keep, hc);
    }
    let mut hc = false;
    for f in m
        .get("metadata")
        .and_then(|md| md.get("managedFields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(ports) = f.pointer("/fieldsV1/f:spec/f:ports").and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in ports {
            if v.get("f:nodePort").is_some() {
                if let Some(port) = k
                    .strip_prefix("k:")
                    .and_then(|j| serde_json::from_str::<Value>(j).ok())
                {
                    keep.insert(format!("port:{}/{}", port["port"], port["protocol"]));
                }
            }
        }
        hc |= f.pointer("/fieldsV1/f:spec/f:healthCheckNodePort").is_some();
    }
    (keep, hc)
}

fn service(m: &mut Map<String, Value>, preserve_nodeports: bool, note: &mut dyn FnMut(&'static str, String)) {
    let (asked, asked_hc) = asked_node_ports(m);
    let Some(spec) = obj(m, "spec") else { return };
    if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
        let ips = remove_keys(Some(spec), &["clusterIP", "clusterIPs"]);
        if !ips.is_empty() {
            note(
                "clusterIP",
                "removed spec.clusterIP(s) (the new cluster allocates them)".into(),
            );
        }
    }
    if preserve_nodeports || spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    let mut dropped = Vec::new();
    for p in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(p) = p.as_object_mut() else { continue };
        let Some(np) = p.get("nodePort").and_then(Value::as_i64).filter(|n| *n > 0) else {
            continue;
        };
        let by_name = p.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
        let port_key = format!(
            "port:{}/{}",
            p.get("port").unwrap_or(&Value::Null),
            p.get("protocol").unwrap_or(&Value::from("TCP"))
        );
        let wanted = match by_name {
            Some(n) => asked.contains(&format!("name:{n}")),
            None => asked.contains(&format!("nodePort:{np}")),
        } || asked.contains(&port_key);
        if !wanted {
            p.remove("nodePort");
            dropped.push(np.to_string());
        }
    }
    if !dropped.is_empty() {
        note(
            "nodePorts",
            format!(
                "removed nodePort {} (allocated by the old cluster; --preserve-nodeports keeps them)",
                dropped.join(", ")
            ),
        );
    }
    if !asked_hc && spec.remove("healthCheckNodePort").is_some() {
        note(
            "healthCheckNodePort",
            "removed spec.healthCheckNodePort (allocated by the old cluster)".into(),
        );
    }
}

fn service_account(m: &mut Map<String, Value>, name: &str, note: &mut dyn FnMut(&'static str, String)) {
    let prefix = format!("{name}-token-");
    let Some(Value::Array(secrets)) = m.get_mut("secrets") else {
        return;
    };
    let before = secrets.len();
    secrets.retain(|s| {
        !s.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.starts_with(&prefix))
    });
    if secrets.len() != before {
        note(
            "service account token references",
            "removed its token Secret references (the new cluster issues its own)".into(),
        );
    }
    if secrets.is_empty() {
        m.remove("secrets");
    }
}

/// A service-account token Secret the user made (kept, see
/// [`skip_reason`]): the token controller fills it in again.
fn token_secret(m: &mut Map<String, Value>, note: &mut dyn FnMut(&'static str, String)) {
    if m.get("type").and_then(Value::as_str) != Some("kubernetes.io/service-account-token") {
        return;
    }
    let anns = obj(m, "metadata").and_then(|md| obj(md, "annotations"));
    remove_keys(anns, &["kubernetes.io/service-account.uid"]);
    remove_keys(obj(m, "data"), &["token", "ca.crt", "namespace"]);
    note(
        "token secret data",
        "removed the old token, CA and account UID (the new cluster's token controller fills them)".into(),
    );
}

fn pvc(m: &mut Map<String, Value>, note: &mut dyn FnMut(&'static str, String)) {
    let anns = obj(m, "metadata").and_then(|md| obj(md, "annotations"));
    let gone = remove_keys(
        anns,
        &[
            "pv.kubernetes.io/bind-completed",
            "pv.kubernetes.io/bound-by-controller",
            "volume.kubernetes.io/storage-provisioner",
            "volume.beta.kubernetes.io/storage-provisioner",
            "volume.kubernetes.io/selected-node",
        ],
    );
    if !gone.is_empty() {
        note(
            "PVC binding annotations",
            format!("removed binding annotations {}", gone.join(", ")),
        );
    }
}

fn pv(m: &mut Map<String, Value>, mapping: &NamespaceMapping, note: &mut dyn FnMut(&'static str, String)) {
    let anns = obj(m, "metadata").and_then(|md| obj(md, "annotations"));
    remove_keys(
        anns,
        &[
            "pv.kubernetes.io/bind-completed",
            "pv.kubernetes.io/bound-by-controller",
        ],
    );
    let Some(claim) = obj(m, "spec").and_then(|s| obj(s, "claimRef")) else {
        return;
    };
    if !remove_keys(Some(claim), &["uid", "resourceVersion"]).is_empty() {
        note(
            "PV claimRef",
            "removed spec.claimRef's uid and resourceVersion (it binds to the claim by name)".into(),
        );
    }
    if let Some(Value::String(ns)) = claim.get_mut("namespace") {
        let to = mapping.map(ns).to_string();
        if to != *ns {
            note(
                "namespace mapping",
                format!("spec.claimRef.namespace {ns} -> {to}"),
            );
            *ns = to;
        }
    }
}

/// Velero's CRD action: a v1 CRD cannot be created with
/// `preserveUnknownFields: true`; each version's schema says it instead.
fn crd(m: &mut Map<String, Value>, note: &mut dyn FnMut(&'static str, String)) {
    if m.get("apiVersion").and_then(Value::as_str) != Some("apiextensions.k8s.io/v1") {
        return;
    }
    let Some(spec) = obj(m, "spec") else { return };
    if spec.get("preserveUnknownFields").and_then(Value::as_bool) != Some(true) {
        return;
    }
    spec.insert("preserveUnknownFields".into(), Value::Bool(false));
    for v in spec
        .get_mut("versions")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(s) = v
            .pointer_mut("/schema/openAPIV3Schema")
            .and_then(Value::as_object_mut)
        {
            s.insert("x-kubernetes-preserve-unknown-fields".into(), Value::Bool(true));
        }
    }
    note(
        "CRD preserveUnknownFields",
        "preserveUnknownFields moved into each version's schema (v1 refuses it at the top)".into(),
    );
}

/// Velero's webhook action: v1 accepts only `None` and `NoneOnDryRun`.
fn webhooks(m: &mut Map<String, Value>, note: &mut dyn FnMut(&'static str, String)) {
    for w in m
        .get_mut("webhooks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(w) = w.as_object_mut() else { continue };
        let ok = matches!(
            w.get("sideEffects").and_then(Value::as_str),
            Some("None" | "NoneOnDryRun")
        );
        if !ok && w.contains_key("sideEffects") {
            w.insert("sideEffects".into(), Value::from("None"));
            note(
                "webhook sideEffects",
                "sideEffects set to None (admissionregistration v1 refuses the others)".into(),
            );
        }
    }
}

fn subjects(
    m: &mut Map<String, Value>,
    mapping: &NamespaceMapping,
    note: &mut dyn FnMut(&'static str, String),
) {
    for s in m
        .get_mut("subjects")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(Value::String(ns)) = s.get_mut("namespace") {
            let to = mapping.map(ns).to_string();
            if to != *ns {
                note("namespace mapping", format!("subject namespace {ns} -> {to}"));
                *ns = to;
            }
        }
    }
}

/// `metadata.namespace`, and a Namespace's own name, through the mapping.
fn map_namespace(
    resource: &str,
    m: &mut Map<String, Value>,
    mapping: &NamespaceMapping,
    note: &mut dyn FnMut(&'static str, String),
) {
    if mapping.is_empty() {
        return;
    }
    let field = if resource == "namespaces" {
        "name"
    } else {
        "namespace"
    };
    if let Some(Value::String(ns)) = obj(m, "metadata").and_then(|md| md.get_mut(field)) {
        let to = mapping.map(ns).to_string();
        if to != *ns {
            note("namespace mapping", format!("namespace {ns} -> {to}"));
            *ns = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx() -> ApplyContext {
        ApplyContext::default()
    }

    #[test]
    fn strips_server_fields() {
        let mut v = json!({"kind": "Service", "metadata": {"name": "s", "uid": "u", "resourceVersion": "5",
            "managedFields": [], "creationTimestamp": "x", "ownerReferences": [{"uid": "o"}], "labels": {"a": "b"}},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]}, "status": {"loadBalancer": {}}});
        let d = decide("services", &mut v, &cx());
        assert!(matches!(d, Decision::Write(ref c) if c.len() == 1), "{d:?}");
        assert_eq!(
            v,
            json!({"kind": "Service", "metadata": {"name": "s", "labels": {"a": "b"}},
            "spec": {"ports": [{"port": 80}]}})
        );
    }

    #[test]
    fn skips_what_controllers_recreate_unless_asked() {
        let mut c = cx();
        c.uids.insert("rs-uid".into());
        let pod = json!({"metadata": {"ownerReferences": [{"uid": "rs-uid", "controller": true}]}});
        assert!(skip_reason("pods", "a", "p", &pod, &c).is_some());
        let orphan = json!({"metadata": {"ownerReferences": [{"uid": "gone", "controller": true}]}});
        assert!(skip_reason("pods", "a", "p", &orphan, &c).is_none());
        c.keep_owned = true;
        assert!(skip_reason("pods", "a", "p", &pod, &c).is_none());
        assert!(skip_reason("events", "a", "e", &json!({}), &c).is_some());
        assert!(skip_reason("configmaps", "a", "c", &json!({}), &c).is_none());
    }

    #[test]
    fn endpoints_of_selectorless_services_are_kept() {
        let mut c = cx();
        c.selector_services.insert("prod/web".into());
        assert!(skip_reason("endpoints", "prod", "web", &json!({}), &c).is_some());
        assert!(skip_reason("endpoints", "prod", "external-db", &json!({}), &c).is_none());
        let managed = json!({"metadata": {"labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}}});
        assert!(skip_reason("endpointslices", "prod", "web-abc", &managed, &c).is_some());
        let own = json!({"metadata": {"labels": {"endpointslice.kubernetes.io/managed-by": "my-operator"}}});
        assert!(skip_reason("endpointslices", "prod", "x", &own, &c).is_none());
    }

    #[test]
    fn node_ports_follow_what_the_user_asked_for() {
        let last = json!({"spec": {"ports": [{"name": "http", "port": 80, "nodePort": 30080}]}}).to_string();
        let mut v = json!({"metadata": {"name": "s", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last}},
            "spec": {"type": "NodePort", "clusterIP": "None", "ports": [
                {"name": "http", "port": 80, "nodePort": 30080}, {"name": "https", "port": 443, "nodePort": 31443}]}});
        decide("services", &mut v, &cx());
        assert_eq!(v["spec"]["clusterIP"], "None");
        assert_eq!(v["spec"]["ports"][0]["nodePort"], 30080);
        assert!(v["spec"]["ports"][1].get("nodePort").is_none());
        let mut mf = json!({"metadata": {"name": "s", "managedFields": [{"fieldsV1": {"f:spec": {"f:ports": {
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {"f:nodePort": {}}}}}}]},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 81, "protocol": "TCP", "nodePort": 30081}]}});
        decide("services", &mut mf, &cx());
        assert_eq!(mf["spec"]["ports"][0]["nodePort"], 30080);
        assert!(mf["spec"]["ports"][1].get("nodePort").is_none());
    }

    #[test]
    fn jobs_lose_their_controller_uid() {
        let mut v = json!({"metadata": {"name": "j"}, "spec": {
            "selector": {"matchLabels": {"controller-uid": "u", "batch.kubernetes.io/controller-uid": "u"}},
            "template": {"metadata": {"labels": {"controller-uid": "u", "batch.kubernetes.io/controller-uid": "u", "job-name": "j"}}}}});
        decide("jobs", &mut v, &cx());
        assert_eq!(
            v,
            json!({"metadata": {"name": "j"}, "spec": {"template": {"metadata": {"labels": {"job-name": "j"}}}}})
        );
    }

    #[test]
    fn pods_lose_node_and_token_volumes() {
        let mut v = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "priority": 0, "serviceAccountName": "app",
            "volumes": [{"name": "app-token-x1", "secret": {"secretName": "app-token-x1"}}, {"name": "kube-api-access-ab", "projected": {}}, {"name": "data", "emptyDir": {}}],
            "containers": [{"name": "c", "volumeMounts": [{"name": "app-token-x1"}, {"name": "kube-api-access-ab"}, {"name": "data"}]}]}});
        let d = decide("pods", &mut v, &cx());
        assert_eq!(
            v["spec"],
            json!({"serviceAccountName": "app", "volumes": [{"name": "data", "emptyDir": {}}],
                "containers": [{"name": "c", "volumeMounts": [{"name": "data"}]}]})
        );
        assert!(matches!(d, Decision::Write(c) if c.len() == 3));
    }

    #[test]
    fn namespace_mapping_reaches_bindings_and_claims() {
        let mut c = cx();
        c.mapping = NamespaceMapping::parse(&["prod:prod2".into()]).unwrap();
        let mut rb = json!({"metadata": {"name": "r", "namespace": "prod"}, "subjects": [{"kind": "ServiceAccount", "name": "a", "namespace": "prod"}]});
        decide("rolebindings", &mut rb, &c);
        assert_eq!(rb["metadata"]["namespace"], "prod2");
        assert_eq!(rb["subjects"][0]["namespace"], "prod2");
        let mut pv = json!({"metadata": {"name": "v"}, "spec": {"claimRef": {"namespace": "prod", "name": "c", "uid": "u"}}});
        decide("persistentvolumes", &mut pv, &c);
        assert_eq!(pv["spec"]["claimRef"], json!({"namespace": "prod2", "name": "c"}));
        let mut ns = json!({"metadata": {"name": "prod"}});
        decide("namespaces", &mut ns, &c);
        assert_eq!(ns["metadata"]["name"], "prod2");
    }
}
