//! Where the apiserver stores objects: `/registry/<resource prefix>/<namespace>/<name>`
//! for namespaced objects and `/registry/<resource prefix>/<name>` for
//! cluster-scoped ones. The resource prefix is the plural resource name, with
//! a few compiled-in exceptions (`minions` for nodes, `services/specs`, ...),
//! and `<group>/<plural>` for custom resources, CRDs and APIServices.

/// Key prefix the apiserver uses by default (`--etcd-prefix`).
pub const DEFAULT_PREFIX: &str = "/registry";

/// Stored prefix → resource name, where they differ.
const PREFIX_TO_RESOURCE: &[(&str, &str)] = &[
    ("controllers", "replicationcontrollers"),
    ("services/endpoints", "endpoints"),
    ("services/specs", "services"),
    ("minions", "nodes"),
    ("ingress", "ingresses"),
    ("podsecuritypolicy", "podsecuritypolicies"),
    ("ranges", "rangeallocations"),
];

/// Resources stored under two path segments without a group.
const TWO_SEGMENT: &[&str] = &["services/specs", "services/endpoints"];

/// Cluster-scoped resources by their stored prefix (built-in ones).
const CLUSTER_SCOPED: &[&str] = &[
    "namespaces",
    "minions",
    "persistentvolumes",
    "clusterroles",
    "clusterrolebindings",
    "priorityclasses",
    "storageclasses",
    "csinodes",
    "csidrivers",
    "volumeattachments",
    "volumeattributesclasses",
    "certificatesigningrequests",
    "clustertrustbundles",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
    "runtimeclasses",
    "podsecuritypolicy",
    "ingressclasses",
    "flowschemas",
    "prioritylevelconfigurations",
    "ranges",
    "masterleases",
    "ipaddresses",
    "servicecidrs",
    "storageversions",
    "storageversionmigrations",
    "resourceslices",
    "deviceclasses",
    "devicetaintrules",
    "apiextensions.k8s.io/customresourcedefinitions",
    "apiregistration.k8s.io/apiservices",
];

/// kubectl's short names and singular names → resource.
const ALIASES: &[(&str, &str)] = &[
    ("po", "pods"),
    ("svc", "services"),
    ("deploy", "deployments"),
    ("rs", "replicasets"),
    ("ds", "daemonsets"),
    ("sts", "statefulsets"),
    ("cm", "configmaps"),
    ("sa", "serviceaccounts"),
    ("ns", "namespaces"),
    ("no", "nodes"),
    ("ep", "endpoints"),
    ("ev", "events"),
    ("pv", "persistentvolumes"),
    ("pvc", "persistentvolumeclaims"),
    ("ing", "ingresses"),
    ("netpol", "networkpolicies"),
    ("crd", "customresourcedefinitions"),
    ("crds", "customresourcedefinitions"),
    ("cj", "cronjobs"),
    ("hpa", "horizontalpodautoscalers"),
    ("pdb", "poddisruptionbudgets"),
    ("pc", "priorityclasses"),
    ("sc", "storageclasses"),
    ("csr", "certificatesigningrequests"),
    ("limits", "limitranges"),
    ("quota", "resourcequotas"),
    ("rc", "replicationcontrollers"),
    ("psp", "podsecuritypolicies"),
    ("endpointslice", "endpointslices"),
    ("endpoints", "endpoints"),
];

/// Where an object lives, from its key.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Resource name (`deployments`, `nodes`, `widgets.example.com`).
    pub resource: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// The resource name for a stored prefix: the exceptions mapped back, and
/// `<group>/<plural>` shown as `<plural>.<group>` as kubectl does.
pub fn resource_of_prefix(prefix: &str) -> String {
    if let Some((_, r)) = PREFIX_TO_RESOURCE.iter().find(|(p, _)| *p == prefix) {
        return (*r).to_string();
    }
    match prefix.split_once('/') {
        Some((group, plural)) if group.contains('.') => format!("{plural}.{group}"),
        _ => prefix.to_string(),
    }
}

/// Splits a key (without the registry prefix) into resource prefix,
/// namespace and name. `meta_ns` and `meta_name` are the object's own
/// `metadata.namespace` and `metadata.name` when it could be decoded; they
/// settle keys that the path alone leaves ambiguous.
pub fn locate(key: &str, prefix: &str, meta_ns: Option<&str>, meta_name: Option<&str>) -> Option<Location> {
    let rest = key.strip_prefix(prefix)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 2 {
        return None;
    }
    let mk = |res_parts: &[&str], ns: &str, name: &str| Location {
        resource: resource_of_prefix(&res_parts.join("/")),
        namespace: ns.to_string(),
        name: name.to_string(),
    };
    // The decoded metadata decides where it can.
    if let Some(name) = meta_name.filter(|n| !n.is_empty() && parts.last() == Some(n)) {
        let ns = meta_ns.unwrap_or("");
        let n = parts.len();
        if !ns.is_empty() && n >= 3 && parts[n - 2] == ns {
            return Some(mk(&parts[..n - 2], ns, name));
        }
        if ns.is_empty() {
            return Some(mk(&parts[..n - 1], "", name));
        }
    }
    // Otherwise the layout: group-qualified or two-segment prefixes first.
    let res_len = if parts[0].contains('.')
        || TWO_SEGMENT.contains(&format!("{}/{}", parts[0], parts.get(1)?).as_str())
    {
        2
    } else {
        1
    };
    let res = parts.get(..res_len)?;
    let tail = parts.get(res_len..)?;
    let joined = res.join("/");
    match tail {
        [name] => Some(mk(res, "", name)),
        [ns, name] if !CLUSTER_SCOPED.contains(&joined.as_str()) => Some(mk(res, ns, name)),
        _ => Some(Location {
            resource: resource_of_prefix(&joined),
            namespace: String::new(),
            name: tail.join("/"),
        }),
    }
}

/// Whether `resource` (as shown by [`resource_of_prefix`]) or `kind`
/// matches what the user typed: a plural, a singular, a kind, a short name,
/// or `plural.group`.
pub fn matches(query: &str, resource: &str, kind: &str) -> bool {
    let q = query.to_ascii_lowercase();
    let q = ALIASES
        .iter()
        .find(|(a, _)| *a == q)
        .map_or(q.clone(), |(_, r)| (*r).to_string());
    let plural = resource.split('.').next().unwrap_or(resource);
    q == resource
        || q == plural
        || (!kind.is_empty() && q == kind.to_ascii_lowercase())
        || format!("{q}s") == plural
        || format!("{q}es") == plural
        || q.strip_suffix('y').is_some_and(|s| format!("{s}ies") == plural)
        || resource.starts_with(&format!("{q}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(r: &str, ns: &str, n: &str) -> Option<Location> {
        Some(Location {
            resource: r.into(),
            namespace: ns.into(),
            name: n.into(),
        })
    }

    #[test]
    fn keys_by_layout() {
        let p = DEFAULT_PREFIX;
        assert_eq!(
            locate("/registry/pods/default/web-1", p, None, None),
            loc("pods", "default", "web-1")
        );
        assert_eq!(
            locate("/registry/minions/node-1", p, None, None),
            loc("nodes", "", "node-1")
        );
        assert_eq!(
            locate("/registry/services/specs/default/kubernetes", p, None, None),
            loc("services", "default", "kubernetes")
        );
        assert_eq!(
            locate("/registry/services/endpoints/kube-system/kube-dns", p, None, None),
            loc("endpoints", "kube-system", "kube-dns")
        );
        assert_eq!(
            locate(
                "/registry/apiregistration.k8s.io/apiservices/v1.apps",
                p,
                None,
                None
            ),
            loc("apiservices.apiregistration.k8s.io", "", "v1.apps")
        );
        assert_eq!(
            locate("/registry/example.com/widgets/ns1/w1", p, None, None),
            loc("widgets.example.com", "ns1", "w1")
        );
        assert_eq!(
            locate("/registry/clusterroles/admin", p, None, None),
            loc("clusterroles", "", "admin")
        );
        assert_eq!(
            locate("/registry/ranges/serviceips", p, None, None),
            loc("rangeallocations", "", "serviceips")
        );
        assert_eq!(locate("compact_rev_key", p, None, None), None);
    }

    #[test]
    fn metadata_settles_cluster_scoped_custom_resources() {
        // A cluster-scoped custom resource: group/plural/name.
        assert_eq!(
            locate(
                "/registry/example.com/clusterwidgets/w1",
                DEFAULT_PREFIX,
                Some(""),
                Some("w1")
            ),
            loc("clusterwidgets.example.com", "", "w1")
        );
        assert_eq!(
            locate(
                "/registry/deployments/default/web",
                DEFAULT_PREFIX,
                Some("default"),
                Some("web")
            ),
            loc("deployments", "default", "web")
        );
    }

    #[test]
    fn resource_names_like_kubectl() {
        assert!(matches("deploy", "deployments", "Deployment"));
        assert!(matches("Deployment", "deployments", "Deployment"));
        assert!(matches("secret", "secrets", "Secret"));
        assert!(matches("svc", "services", "Service"));
        assert!(matches("networkpolicy", "networkpolicies", "NetworkPolicy"));
        assert!(matches("widgets", "widgets.example.com", "Widget"));
        assert!(matches("widgets.example.com", "widgets.example.com", ""));
        assert!(!matches("pods", "podtemplates", "PodTemplate"));
    }
}
