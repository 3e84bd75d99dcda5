//! The Kubernetes object-level difference between two keyspaces (two
//! backups, or two revisions of one): objects added (in B only), deleted (in
//! A only), changed (in both, with a field-level diff), and those that could
//! not be compared because a side does not decode.
//!
//! Streamed like [`super::dump`]: the two key indexes (keys and revisions,
//! sorted by key) are walked together in merge order, and values are read
//! one pair at a time. A pair whose stored bytes are identical (or, in one
//! keyspace, whose last write is the same revision) is unchanged without
//! decoding: equality is proven, never assumed. Only pairs that differ are
//! decoded, compared and dropped; what is kept is the differences.
//!
//! Fields compared: everything the apiserver serves, except
//! - `metadata.resourceVersion` (the revision of the write, different on every write),
//! - `metadata.managedFields` (who wrote what, and when),
//! - `status`, unless [`DiffOptions::include_status`] (controllers rewrite it
//!   all the time).
//!
//! `metadata.generation` is kept: the apiserver raises it only when the
//! desired state (`spec`) changes, so it says that a change was one.
//!
//! Secret values are redacted unless [`DiffOptions::show_secrets`]: `data`
//! and `stringData` entries and the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation (which holds the data in clear) become `<redacted, N bytes>`.

use std::cmp::Ordering;
use std::fmt::Write as _;

use base64::Engine;
use serde::Serialize;
use serde_json::Value;

use super::envelope::Encoding;
use super::filter::Filter;
use super::keys::{self, Location};
use super::object::{self, Context, Object};
use super::store::{self, KeyEntry, ObjectIndex};
use crate::mvcc::keyspace::Keyspace;
use crate::mvcc::kv::{KeyValueRef, KvError};
use crate::mvcc::revision::Revision;

/// The annotation `kubectl apply` leaves, holding the whole object (for a
/// Secret: its data, in clear).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One side of a diff: a keyspace, the revision to read it at, and how to
/// decode its values.
#[derive(Clone, Copy)]
pub struct Side<'s, 'a> {
    /// The keyspace (a db, and what a data dir's WAL adds on top).
    pub ks: &'s Keyspace<'a>,
    /// The revision (the head when `None`).
    pub rev: Option<i64>,
    /// Keys and the registry prefix.
    pub cx: Context<'s>,
}

/// What to compare.
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Which objects (an object in both is taken when either side matches).
    pub filter: Filter,
    /// Compare `status` too.
    pub include_status: bool,
    /// Print Secret values instead of `<redacted, N bytes>`.
    pub show_secrets: bool,
}

/// An object in one side only.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Present {
    /// Resource (`deployments`).
    pub resource: String,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Kind ("" when the value does not decode far enough).
    pub kind: String,
    /// apiVersion ("" when unknown).
    pub api_version: String,
    /// Revision of its value on the side it is in.
    pub revision: i64,
    /// For a deleted object: the revision of the delete, when the other
    /// side's history still has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// The etcd key.
    pub key: String,
    /// Why it does not decode (it is still added or deleted: that is
    /// known from the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One differing field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// Where: `spec.template.spec.containers[0].image`; map keys that are
    /// not plain words are quoted: `metadata.labels["app.kubernetes.io/name"]`.
    pub path: String,
    /// The value in A; left out when A does not have the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value in B; left out when B does not have the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// An object in both sides whose fields differ.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangedObject {
    /// Resource.
    pub resource: String,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Kind (B's).
    pub kind: String,
    /// apiVersion (B's).
    pub api_version: String,
    /// Revision of A's value.
    pub revision_a: i64,
    /// Revision of B's value.
    pub revision_b: i64,
    /// The etcd key.
    pub key: String,
    /// The differing fields, in the objects' field order.
    pub fields: Vec<FieldChange>,
}

/// An object in both sides whose stored values differ, where a side does
/// not decode: how it changed cannot be told.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Undecodable {
    /// Resource.
    pub resource: String,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Kind, as far as it is known.
    pub kind: String,
    /// Revision of A's value.
    pub revision_a: i64,
    /// Revision of B's value.
    pub revision_b: i64,
    /// The etcd key.
    pub key: String,
    /// Why A's value does not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem_a: Option<String>,
    /// Why B's value does not decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem_b: Option<String>,
}

/// The difference between A and B, each list in (resource, namespace,
/// name) order.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    /// The revision A was read at.
    pub revision_a: i64,
    /// The revision B was read at.
    pub revision_b: i64,
    /// In B only.
    pub added: Vec<Present>,
    /// In A only.
    pub deleted: Vec<Present>,
    /// In both, with different fields.
    pub changed: Vec<ChangedObject>,
    /// In both, stored differently, and a side does not decode.
    pub undecodable: Vec<Undecodable>,
    /// In both, stored differently, but equal once the ignored fields
    /// (resourceVersion, managedFields, status) are left out.
    pub changed_only_in_ignored_fields: usize,
}

impl DiffReport {
    /// Whether there is anything to report (the exit code of `k8s diff`).
    pub fn has_differences(&self) -> bool {
        !(self.added.is_empty()
            && self.deleted.is_empty()
            && self.changed.is_empty()
            && self.undecodable.is_empty())
    }

    /// Objects added or deleted whose value does not decode, plus the
    /// undecodable ones.
    pub fn problem_count(&self) -> usize {
        self.added
            .iter()
            .chain(&self.deleted)
            .filter(|p| p.problem.is_some())
            .count()
            + self.undecodable.len()
    }
}

/// Why a diff could not be made: a keyspace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading A failed.
    #[error("A: {0}")]
    A(#[source] KvError),
    /// Reading B failed.
    #[error("B: {0}")]
    B(#[source] KvError),
}

/// One step of a JSON path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

/// A path as shown: `a.b[0]["x.y"]`.
fn path_text(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
            Seg::Key(k)
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Key(k) => {
                s.push('[');
                s.push_str(&Value::String((*k).to_string()).to_string());
                s.push(']');
            }
        }
    }
    s
}

/// The differing leaves of `old` and `new` under `path`: maps compared key
/// by key (A's order, then B's new keys), arrays element by element.
fn walk<'v>(
    path: &mut Vec<Seg<'v>>,
    old: Option<&'v Value>,
    new: Option<&'v Value>,
    out: &mut Vec<(Vec<Seg<'v>>, Option<&'v Value>, Option<&'v Value>)>,
) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (k, va) in a {
                path.push(Seg::Key(k));
                walk(path, Some(va), b.get(k), out);
                path.pop();
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    path.push(Seg::Key(k));
                    walk(path, None, Some(vb), out);
                    path.pop();
                }
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                path.push(Seg::Index(i));
                walk(path, a.get(i), b.get(i), out);
                path.pop();
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push((path.clone(), a, b)),
    }
}

/// `<redacted, N bytes>` for a Secret value (`data` values are base64: N
/// is the decoded length).
fn placeholder(v: &Value, base64: bool) -> Value {
    let n = match v {
        Value::String(s) if base64 => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_or(s.len(), |b| b.len()),
        Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    Value::String(format!("<redacted, {n} bytes>"))
}

/// Replaces the Secret values in `v`, found at `path`, by placeholders.
fn redact(path: &[Seg<'_>], v: &mut Value) {
    let is = |p: &[&str]| {
        path.len() == p.len()
            && path
                .iter()
                .zip(p)
                .all(|(s, want)| matches!(s, Seg::Key(k) if *want == "*" || k == want))
    };
    let secret_maps = [["data"], ["stringData"]];
    if is(&["data", "*"]) || is(&["stringData", "*"]) {
        *v = placeholder(v, is(&["data", "*"]));
        return;
    }
    if is(&["metadata", "annotations", LAST_APPLIED]) {
        *v = placeholder(v, false);
        return;
    }
    if secret_maps.iter().any(|p| is(p)) && !matches!(v, Value::Object(_) | Value::Null) {
        *v = placeholder(v, false);
        return;
    }
    // Could a secret position lie below?
    let below = path.is_empty()
        || is(&["data"])
        || is(&["stringData"])
        || is(&["metadata"])
        || is(&["metadata", "annotations"]);
    if !below {
        return;
    }
    if let Value::Object(m) = v {
        let keys: Vec<String> = m.keys().cloned().collect();
        for k in keys {
            let mut p = path.to_vec();
            p.push(Seg::Key(&k));
            if let Some(x) = m.get_mut(&k) {
                redact(&p, x);
            }
        }
    }
}

/// The fields of the two bodies that differ, Secret values redacted when
/// `redact_secrets`. The bodies are compared as served, less the ignored
/// fields (which the caller removed).
pub fn field_changes(old: &Value, new: &Value, redact_secrets: bool) -> Vec<FieldChange> {
    let mut raw = Vec::new();
    walk(&mut Vec::new(), Some(old), Some(new), &mut raw);
    raw.into_iter()
        .map(|(path, a, b)| {
            let fix = |v: Option<&Value>| {
                v.map(|v| {
                    let mut v = v.clone();
                    if redact_secrets {
                        redact(&path, &mut v);
                    }
                    v
                })
            };
            FieldChange {
                path: path_text(&path),
                old: fix(a),
                new: fix(b),
            }
        })
        .collect()
}

/// Removes the fields that change on every write and mean nothing to the
/// user: `metadata.resourceVersion`, `metadata.managedFields`, and `status`
/// unless `include_status`.
pub fn strip_ignored(body: &mut Value, include_status: bool) {
    if let Value::Object(m) = body {
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        if !include_status {
            m.remove("status");
        }
    }
}

/// An object whose value is missing from the file (a damaged db).
fn missing(key: &[u8], rev: Revision, prefix: &str) -> Object {
    let key = String::from_utf8_lossy(key).into_owned();
    let location = keys::locate(&key, prefix, None, None).unwrap_or_else(|| Location {
        name: key.clone(),
        ..Location::default()
    });
    Object {
        location,
        api_version: String::new(),
        kind: String::new(),
        encoding: Encoding::Unknown,
        inner: None,
        mod_revision: rev.main,
        create_revision: 0,
        version: 0,
        lease: 0,
        size: 0,
        deleted_at: None,
        body: None,
        problem: Some(format!("its value (revision {rev}) is missing from the file")),
        unknown_fields: 0,
        deletion_timestamp: None,
        key,
    }
}

struct Reader<'s, 'a> {
    side: Side<'s, 'a>,
    which: fn(KvError) -> DiffError,
}

impl<'a> Reader<'_, 'a> {
    /// The stored value of the entry's last write (`None`: missing from the file).
    fn kv(&self, e: &KeyEntry<'_>) -> Result<Option<KeyValueRef<'a>>, DiffError> {
        store::value_at(self.side.ks, e.last_put).map_err(self.which)
    }

    /// `kv`, decoded.
    fn decode(&self, e: &KeyEntry<'_>, kv: Option<&KeyValueRef<'_>>) -> Object {
        match kv {
            Some(kv) => object::decode(kv, None, self.side.cx),
            None => missing(e.key, e.last_put, self.side.cx.prefix),
        }
    }

    fn object(&self, e: &KeyEntry<'_>) -> Result<Object, DiffError> {
        Ok(self.decode(e, self.kv(e)?.as_ref()))
    }

    fn index(&self) -> Result<ObjectIndex<'_>, DiffError> {
        let prefix = format!("{}/", self.side.cx.prefix.trim_end_matches('/'));
        store::index(self.side.ks, self.side.rev, prefix.as_bytes()).map_err(self.which)
    }
}

/// Whether a decoded object is selected; for one that does not decode, the
/// label selector cannot be evaluated and is not applied.
fn selected(f: &Filter, no_labels: &Filter, o: &Object) -> bool {
    if o.problem.is_none() {
        f.matches(&o.location, &o.kind, o.body.as_ref())
    } else {
        no_labels.matches(&o.location, &o.kind, None)
    }
}

fn present(o: Object, deleted_at: Option<i64>) -> Present {
    Present {
        resource: o.location.resource,
        namespace: o.location.namespace,
        name: o.location.name,
        kind: o.kind,
        api_version: o.api_version,
        revision: o.mod_revision,
        deleted_at,
        key: o.key,
        problem: o.problem,
    }
}

/// The difference between A and B. When both sides are the same keyspace
/// (the same reference), keys whose last write is the same revision are
/// unchanged without reading their values.
pub fn diff(a: &Side<'_, '_>, b: &Side<'_, '_>, o: &DiffOptions) -> Result<DiffReport, DiffError> {
    let ra = Reader {
        side: *a,
        which: DiffError::A,
    };
    let rb = Reader {
        side: *b,
        which: DiffError::B,
    };
    let ia = ra.index()?;
    let ib = rb.index()?;
    let same_store = std::ptr::eq(
        std::ptr::from_ref(a.ks).cast::<u8>(),
        std::ptr::from_ref(b.ks).cast::<u8>(),
    );
    let no_labels = Filter {
        selector: None,
        ..o.filter.clone()
    };
    // Decided on the key before decoding (a key that does not parse is
    // decided after).
    let key_ok = |key: &[u8], prefix: &str| {
        keys::locate(&String::from_utf8_lossy(key), prefix, None, None)
            .is_none_or(|l| o.filter.key_may_match(&l))
    };
    let mut r = DiffReport {
        revision_a: ia.revision,
        revision_b: ib.revision,
        ..DiffReport::default()
    };
    let (mut x, mut y) = (ia.entries.iter().peekable(), ib.entries.iter().peekable());
    loop {
        let (ea, eb) = match (x.peek(), y.peek()) {
            (None, None) => break,
            (Some(_), None) => (x.next(), None),
            (None, Some(_)) => (None, y.next()),
            (Some(p), Some(q)) => match p.key.cmp(q.key) {
                Ordering::Less => (x.next(), None),
                Ordering::Greater => (None, y.next()),
                Ordering::Equal => (x.next(), y.next()),
            },
        };
        let live_a = ea.filter(|e| e.deleted_at.is_none());
        let live_b = eb.filter(|e| e.deleted_at.is_none());
        match (live_a, live_b) {
            (None, None) => {}
            (Some(ea), None) => {
                if !key_ok(ea.key, a.cx.prefix) {
                    continue;
                }
                let obj = ra.object(ea)?;
                if selected(&o.filter, &no_labels, &obj) {
                    let deleted_at = eb.and_then(|e| e.deleted_at).map(|r| r.main);
                    r.deleted.push(present(obj, deleted_at));
                }
            }
            (None, Some(eb)) => {
                if !key_ok(eb.key, b.cx.prefix) {
                    continue;
                }
                let obj = rb.object(eb)?;
                if selected(&o.filter, &no_labels, &obj) {
                    r.added.push(present(obj, None));
                }
            }
            (Some(ea), Some(eb)) => {
                if same_store && ea.last_put == eb.last_put {
                    continue;
                }
                if !key_ok(ea.key, a.cx.prefix) {
                    continue;
                }
                let (ka, kb) = (ra.kv(ea)?, rb.kv(eb)?);
                if let (Some(va), Some(vb)) = (&ka, &kb)
                    && va.value == vb.value
                {
                    continue;
                }
                let (oa, ob) = (ra.decode(ea, ka.as_ref()), rb.decode(eb, kb.as_ref()));
                if !(selected(&o.filter, &no_labels, &oa) || selected(&o.filter, &no_labels, &ob)) {
                    continue;
                }
                compare(oa, ob, o, &mut r);
            }
        }
    }
    let by_loc = |p: &Present| (p.resource.clone(), p.namespace.clone(), p.name.clone());
    r.added.sort_by_key(by_loc);
    r.deleted.sort_by_key(by_loc);
    r.changed
        .sort_by(|p, q| (&p.resource, &p.namespace, &p.name).cmp(&(&q.resource, &q.namespace, &q.name)));
    r.undecodable
        .sort_by(|p, q| (&p.resource, &p.namespace, &p.name).cmp(&(&q.resource, &q.namespace, &q.name)));
    Ok(r)
}

/// Compares two decoded values of one key whose stored bytes differ.
fn compare(oa: Object, ob: Object, o: &DiffOptions, r: &mut DiffReport) {
    let undecodable = |oa: &Object, ob: Object, pa: Option<String>, pb: Option<String>| Undecodable {
        resource: ob.location.resource,
        namespace: ob.location.namespace,
        name: ob.location.name,
        kind: if ob.kind.is_empty() {
            oa.kind.clone()
        } else {
            ob.kind
        },
        revision_a: oa.mod_revision,
        revision_b: ob.mod_revision,
        key: ob.key,
        problem_a: pa,
        problem_b: pb,
    };
    let (Some(mut ba), Some(mut bb), None, None) =
        (oa.body.clone(), ob.body.clone(), &oa.problem, &ob.problem)
    else {
        let (pa, pb) = (oa.problem.clone(), ob.problem.clone());
        r.undecodable.push(undecodable(&oa, ob, pa, pb));
        return;
    };
    let full_equal = {
        let (mut x, mut y) = (ba.clone(), bb.clone());
        for v in [&mut x, &mut y] {
            if let Some(Value::Object(meta)) = v.get_mut("metadata") {
                meta.remove("resourceVersion");
            }
        }
        x == y
    };
    strip_ignored(&mut ba, o.include_status);
    strip_ignored(&mut bb, o.include_status);
    let secret = oa.is_secret() || ob.is_secret();
    let fields = field_changes(&ba, &bb, secret && !o.show_secrets);
    if fields.is_empty() {
        if full_equal && (oa.unknown_fields > 0 || ob.unknown_fields > 0) {
            // The bytes differ, the decoded objects do not: the difference
            // is in fields the schema does not know.
            let why = |x: &Object| {
                (x.unknown_fields > 0).then(|| {
                    format!(
                        "{} protobuf fields newer than etcd-rescue's schema (Kubernetes up to {}) were skipped; the stored values differ only there",
                        x.unknown_fields,
                        object::schema_version()
                    )
                })
            };
            let (pa, pb) = (why(&oa), why(&ob));
            r.undecodable.push(undecodable(&oa, ob, pa, pb));
        } else if !full_equal {
            r.changed_only_in_ignored_fields += 1;
        }
        return;
    }
    r.changed.push(ChangedObject {
        resource: ob.location.resource,
        namespace: ob.location.namespace,
        name: ob.location.name,
        kind: ob.kind,
        api_version: ob.api_version,
        revision_a: oa.mod_revision,
        revision_b: ob.mod_revision,
        key: ob.key,
        fields,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(c: &[FieldChange]) -> Vec<&str> {
        c.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn maps_by_key_arrays_by_index() {
        let a = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "app.kubernetes.io/part-of": "shop"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "side"}]}}}
        });
        let b = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "app.kubernetes.io/part-of": "store", "tier": "front"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}
        });
        let c = field_changes(&a, &b, false);
        assert_eq!(
            paths(&c),
            [
                "metadata.labels[\"app.kubernetes.io/part-of\"]",
                "metadata.labels.tier",
                "spec.replicas",
                "spec.template.spec.containers[0].image",
                "spec.template.spec.containers[1]",
            ]
        );
        assert_eq!(c[1].old, None);
        assert_eq!(c[1].new, Some(json!("front")));
        assert_eq!(
            (c[2].old.clone(), c[2].new.clone()),
            (Some(json!(1)), Some(json!(3)))
        );
        assert_eq!(c[4].old, Some(json!({"name": "side"})));
        assert_eq!(c[4].new, None);
        assert!(field_changes(&a, &a, false).is_empty());
        // A type change is one change at the path.
        let c = field_changes(&json!({"x": [1]}), &json!({"x": {"a": 1}}), false);
        assert_eq!(paths(&c), ["x"]);
    }

    #[test]
    fn ignored_fields() {
        let mut a = json!({"metadata": {"name": "n", "resourceVersion": "4", "generation": 1, "managedFields": [{"manager": "x"}]}, "status": {"ready": 1}});
        let mut b = json!({"metadata": {"name": "n", "resourceVersion": "9", "generation": 2, "managedFields": [{"manager": "y"}]}, "status": {"ready": 2}});
        let (mut a2, mut b2) = (a.clone(), b.clone());
        strip_ignored(&mut a, false);
        strip_ignored(&mut b, false);
        assert_eq!(paths(&field_changes(&a, &b, false)), ["metadata.generation"]);
        strip_ignored(&mut a2, true);
        strip_ignored(&mut b2, true);
        assert_eq!(
            paths(&field_changes(&a2, &b2, false)),
            ["metadata.generation", "status.ready"]
        );
    }

    #[test]
    fn secret_values_are_redacted_wherever_they_appear() {
        let tok = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let a = json!({"metadata": {"name": "s"}, "data": {"token": tok("old-secret")}});
        let b = json!({
            "metadata": {"name": "s", "annotations": {LAST_APPLIED: "{\"data\":{\"token\":\"bmV3\"}}", "note": "hi"}},
            "data": {"token": tok("new-secret!"), "extra": tok("xyz")},
            "stringData": {"pw": "clear"}
        });
        let c = field_changes(&a, &b, true);
        let text = serde_json::to_string(&c).unwrap();
        for leak in [
            "old-secret",
            "new-secret",
            &tok("old-secret"),
            &tok("new-secret!"),
            &tok("xyz"),
            "clear",
            "bmV3",
        ] {
            assert!(!text.contains(leak), "{leak} leaked: {text}");
        }
        let get = |p: &str| {
            c.iter()
                .find(|f| f.path == p)
                .unwrap_or_else(|| panic!("{p}: {text}"))
        };
        assert_eq!(get("data.token").old, Some(json!("<redacted, 10 bytes>")));
        assert_eq!(get("data.token").new, Some(json!("<redacted, 11 bytes>")));
        assert_eq!(get("data.extra").new, Some(json!("<redacted, 3 bytes>")));
        // Whole maps appearing are redacted inside.
        assert_eq!(get("metadata.annotations").new.as_ref().unwrap()["note"], "hi");
        assert!(
            get("metadata.annotations").new.as_ref().unwrap()[LAST_APPLIED]
                .as_str()
                .unwrap()
                .starts_with("<redacted, ")
        );
        assert_eq!(get("stringData").new, Some(json!({"pw": "<redacted, 5 bytes>"})));
        // Unredacted when asked.
        let c = field_changes(&a, &b, false);
        let token = c.iter().find(|f| f.path == "data.token").unwrap();
        assert_eq!(token.new, Some(json!(tok("new-secret!"))));
    }

    #[test]
    fn path_quoting() {
        assert_eq!(
            path_text(&[Seg::Key("a"), Seg::Index(2), Seg::Key("b-c_d")]),
            "a[2].b-c_d"
        );
        assert_eq!(
            path_text(&[Seg::Key("data"), Seg::Key("x.y \"z\"")]),
            "data[\"x.y \\\"z\\\"\"]"
        );
        assert_eq!(path_text(&[Seg::Key("")]), "[\"\"]");
    }
}
