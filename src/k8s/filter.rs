//! Which objects a command works on: namespaces, a label selector, kinds to
//! include and to exclude (as `kubectl` and Velero take them), and Velero's
//! namespace mapping.

use std::collections::BTreeMap;

use serde_json::Value;

use super::keys::{self, Location};

/// A bad filter argument.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct FilterError {
    /// The argument as given.
    pub what: String,
    /// What is wrong with it.
    pub why: String,
}

fn bad(what: &str, why: impl Into<String>) -> FilterError {
    FilterError {
        what: what.to_string(),
        why: why.into(),
    }
}

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    /// `key=value` or `key==value`.
    Eq(String, String),
    /// `key!=value` (also true when the label is absent, as in Kubernetes).
    Ne(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    Absent(String),
}

/// A Kubernetes label selector (`-l app=web,tier!=db,env in (a,b),!legacy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Req>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn set_of(s: &str, text: &str) -> Result<Vec<String>, FilterError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad(text, "a set must be in parentheses: env in (prod,staging)"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn parse_req(part: &str, text: &str) -> Result<Req, FilterError> {
    let p = part.trim();
    let key_ok = |k: &str| -> Result<String, FilterError> {
        let k = k.trim();
        if valid_key(k) {
            Ok(k.to_string())
        } else {
            Err(bad(text, format!("{k:?} is not a label key")))
        }
    };
    if let Some(k) = p.strip_prefix('!') {
        return Ok(Req::Absent(key_ok(k)?));
    }
    if let Some((k, v)) = p.split_once("!=") {
        return Ok(Req::Ne(key_ok(k)?, v.trim().to_string()));
    }
    if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
        return Ok(Req::Eq(key_ok(k)?, v.trim().to_string()));
    }
    if let Some((k, set)) = p.split_once(" notin ") {
        return Ok(Req::NotIn(key_ok(k)?, set_of(set, text)?));
    }
    if let Some((k, set)) = p.split_once(" in ") {
        return Ok(Req::In(key_ok(k)?, set_of(set, text)?));
    }
    Ok(Req::Exists(key_ok(p)?))
}

impl Selector {
    /// Parses a selector as `kubectl -l` takes it.
    pub fn parse(text: &str) -> Result<Selector, FilterError> {
        if text.trim().is_empty() {
            return Err(bad(text, "an empty selector"));
        }
        split_top(text)
            .into_iter()
            .map(|p| parse_req(p, text))
            .collect::<Result<_, _>>()
            .map(Selector)
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::Ne(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, set) => get(k).is_some_and(|x| set.iter().any(|s| s == x)),
            Req::NotIn(k, set) => get(k).is_none_or(|x| !set.iter().any(|s| s == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::Absent(k) => get(k).is_none(),
        })
    }
}

/// Velero's `--namespace-mapping old:new[,old2:new2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceMapping(BTreeMap<String, String>);

impl NamespaceMapping {
    /// Parses `old:new` pairs (repeat the flag or comma-separate).
    pub fn parse(pairs: &[String]) -> Result<NamespaceMapping, FilterError> {
        let mut m = BTreeMap::new();
        for p in pairs.iter().flat_map(|p| p.split(',')) {
            let (old, new) = p
                .split_once(':')
                .ok_or_else(|| bad(p, "expected old:new (e.g. prod:prod-restored)"))?;
            let (old, new) = (old.trim(), new.trim());
            if old.is_empty() || new.is_empty() {
                return Err(bad(p, "both namespaces must be named"));
            }
            if m.insert(old.to_string(), new.to_string()).is_some() {
                return Err(bad(p, format!("namespace {old} is mapped twice")));
            }
        }
        Ok(NamespaceMapping(m))
    }

    /// Whether no namespace is mapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The namespace `ns` becomes.
    pub fn map<'a>(&'a self, ns: &'a str) -> &'a str {
        self.0.get(ns).map_or(ns, String::as_str)
    }
}

/// Which objects to take.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these namespaces (empty: all). Cluster-scoped objects are then
    /// left out, except the Namespace objects of these namespaces.
    pub namespaces: Vec<String>,
    /// Only objects whose labels match.
    pub selector: Option<Selector>,
    /// Only these resources (plural, singular, kind, short name or
    /// `plural.group`; empty: all).
    pub kinds: Vec<String>,
    /// Never these resources.
    pub exclude_kinds: Vec<String>,
}

impl Filter {
    fn namespace_ok(&self, loc: &Location) -> bool {
        if self.namespaces.is_empty() {
            return true;
        }
        if loc.namespace.is_empty() {
            return loc.resource == "namespaces" && self.namespaces.contains(&loc.name);
        }
        self.namespaces.contains(&loc.namespace)
    }

    fn kind_ok(&self, loc: &Location, kind: &str) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| keys::matches(k, &loc.resource, kind)))
            && !self
                .exclude_kinds
                .iter()
                .any(|k| keys::matches(k, &loc.resource, kind))
    }

    /// Whether an object at this key may be selected (decided before
    /// decoding; a custom resource's key can be read two ways, so it is
    /// decided after).
    pub fn key_may_match(&self, loc: &Location) -> bool {
        if loc.resource.contains('.') {
            return true;
        }
        self.namespace_ok(loc)
            && (self.kinds.is_empty() && self.exclude_kinds.is_empty() || self.kind_ok(loc, ""))
    }

    /// Whether the decoded object is selected.
    pub fn matches(&self, loc: &Location, kind: &str, body: Option<&Value>) -> bool {
        self.namespace_ok(loc)
            && self.kind_ok(loc, kind)
            && self.selector.as_ref().is_none_or(|s| {
                s.matches(
                    body.and_then(|b| b.pointer("/metadata/labels"))
                        .and_then(Value::as_object),
                )
            })
    }
}

/// What `k8s get` takes, as `kubectl get` does: one resource, perhaps one
/// name, one namespace or all (a cluster-scoped object matches any
/// namespace), and a label selector.
#[derive(Clone, Debug)]
pub struct GetQuery {
    /// The resource (plural, singular, kind, short name or `plural.group`).
    pub resource: String,
    /// Only the object of this name.
    pub name: Option<String>,
    /// Only this namespace (`None`: every namespace).
    pub namespace: Option<String>,
    /// Only objects whose labels match.
    pub selector: Option<Selector>,
}

impl GetQuery {
    /// Whether the resource alone matches (the object is of this resource).
    pub fn resource_matches(&self, loc: &Location, kind: &str) -> bool {
        keys::matches(&self.resource, &loc.resource, kind)
    }

    /// Whether the decoded object is selected.
    pub fn matches(&self, loc: &Location, kind: &str, body: Option<&Value>) -> bool {
        let labels = || {
            body.and_then(|b| b.pointer("/metadata/labels"))
                .and_then(Value::as_object)
        };
        self.resource_matches(loc, kind)
            && self.name.as_deref().is_none_or(|n| loc.name == n)
            && (loc.namespace.is_empty() || self.namespace.as_deref().is_none_or(|n| loc.namespace == n))
            && self.selector.as_ref().is_none_or(|s| s.matches(labels()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn get_takes_cluster_scoped_objects_in_any_namespace() {
        let loc = |resource: &str, namespace: &str, name: &str| Location {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        let q = GetQuery {
            resource: "cm".into(),
            name: None,
            namespace: Some("prod".into()),
            selector: None,
        };
        assert!(q.matches(&loc("configmaps", "prod", "a"), "ConfigMap", None));
        assert!(!q.matches(&loc("configmaps", "dev", "a"), "ConfigMap", None));
        assert!(!q.matches(&loc("secrets", "prod", "a"), "Secret", None));
        let nodes = GetQuery {
            resource: "nodes".into(),
            ..q.clone()
        };
        assert!(nodes.matches(&loc("nodes", "", "n1"), "Node", None));
        let named = GetQuery {
            name: Some("b".into()),
            ..q
        };
        assert!(!named.matches(&loc("configmaps", "prod", "a"), "ConfigMap", None));
    }

    #[test]
    fn selectors_as_kubectl_reads_them() {
        let l = labels(json!({"app": "web", "tier": "front", "env": "prod"}));
        let yes = [
            "app=web",
            "app==web",
            "app=web,tier=front",
            "tier!=db",
            "missing!=x",
            "env in (prod,staging)",
            "env notin (dev)",
            "missing notin (dev)",
            "app",
            "!legacy",
            "app=web, env in (prod, staging), !legacy",
        ];
        for s in yes {
            assert!(Selector::parse(s).unwrap().matches(Some(&l)), "{s}");
        }
        let no = [
            "app=api",
            "tier!=front",
            "env in (dev)",
            "missing",
            "!app",
            "env notin (prod)",
        ];
        for s in no {
            assert!(!Selector::parse(s).unwrap().matches(Some(&l)), "{s}");
        }
        assert!(!Selector::parse("app").unwrap().matches(None));
        for s in ["", "env in prod", "a b=c"] {
            assert!(Selector::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn namespace_mapping_pairs() {
        let m = NamespaceMapping::parse(&["prod:prod2,dev:dev2".into(), "x:y".into()]).unwrap();
        assert_eq!(m.map("prod"), "prod2");
        assert_eq!(m.map("x"), "y");
        assert_eq!(m.map("other"), "other");
        assert!(NamespaceMapping::parse(&["prod".into()]).is_err());
        assert!(NamespaceMapping::parse(&["a:b,a:c".into()]).is_err());
        assert!(NamespaceMapping::parse(&[":b".into()]).is_err());
    }

    #[test]
    fn namespaces_keep_their_namespace_objects() {
        let f = Filter {
            namespaces: vec!["prod".into()],
            ..Filter::default()
        };
        let loc = |r: &str, ns: &str, n: &str| Location {
            resource: r.into(),
            namespace: ns.into(),
            name: n.into(),
        };
        assert!(f.matches(&loc("namespaces", "", "prod"), "Namespace", None));
        assert!(!f.matches(&loc("namespaces", "", "dev"), "Namespace", None));
        assert!(!f.matches(&loc("clusterroles", "", "admin"), "ClusterRole", None));
        assert!(f.matches(&loc("pods", "prod", "p"), "Pod", None));
        let k = Filter {
            kinds: vec!["deploy".into(), "cm".into()],
            exclude_kinds: vec!["configmap".into()],
            ..Filter::default()
        };
        assert!(k.matches(&loc("deployments", "a", "d"), "Deployment", None));
        assert!(!k.matches(&loc("configmaps", "a", "c"), "ConfigMap", None));
        assert!(!k.matches(&loc("pods", "a", "p"), "Pod", None));
    }
}
