//! One stored key-value as a Kubernetes object: where it lives, how it is
//! encoded (and encrypted), and the object as the apiserver would serve it,
//! or why it could not be decoded.

use serde_json::{Map, Value};

use super::cbor;
use super::decode::Decoder;
use super::encryption::{self, Keyring};
use super::envelope::{self, Encoding};
use super::keys::{self, Location};
use super::schema::Schema;
use crate::mvcc::kv::KeyValueRef;

/// A decoded object, or as much of it as could be read.
#[derive(Clone, Debug)]
pub struct Object {
    /// The etcd key (lossy UTF-8).
    pub key: String,
    /// Resource, namespace and name.
    pub location: Location,
    /// `apiVersion` ("" when unknown).
    pub api_version: String,
    /// `kind` ("" when unknown).
    pub kind: String,
    /// The stored encoding.
    pub encoding: Encoding,
    /// For encrypted values that were decrypted: the encoding inside.
    pub inner: Option<Encoding>,
    /// Revision of this value (the apiserver's `resourceVersion`).
    pub mod_revision: i64,
    /// Revision the key was created at.
    pub create_revision: i64,
    /// Number of writes since creation.
    pub version: i64,
    /// Attached etcd lease (0: none).
    pub lease: i64,
    /// Stored value size in bytes.
    pub size: usize,
    /// When the key's newest change is a delete: its revision.
    pub deleted_at: Option<i64>,
    /// The object as served: complete when `problem` is `None`, the envelope
    /// (apiVersion, kind) for types etcd-rescue does not know, `None` when
    /// nothing could be read.
    pub body: Option<Value>,
    /// Why the object is not (fully) decoded.
    pub problem: Option<String>,
    /// Protobuf fields the schema does not know (skipped, as Go does).
    pub unknown_fields: usize,
    /// `metadata.deletionTimestamp`, when set (a graceful delete began).
    pub deletion_timestamp: Option<String>,
}

impl Object {
    /// The encoding as shown in tables: `protobuf`, `json`, `cbor`,
    /// `aescbc:key1 → protobuf`, `kmsv2:vault`.
    pub fn encoding_label(&self) -> String {
        match (&self.encoding, &self.inner) {
            (Encoding::Encrypted(p), inner) => {
                let prov = if p.provider == "kms" {
                    format!("kms{}", p.version)
                } else {
                    p.provider.clone()
                };
                match inner {
                    Some(i) => format!("{prov}:{} ({i})", p.key_name),
                    None => format!("{prov}:{} (encrypted)", p.key_name),
                }
            }
            (e, _) => e.to_string(),
        }
    }

    /// Whether this is a Secret (its data is redacted in tables).
    pub fn is_secret(&self) -> bool {
        self.kind == "Secret" || (self.kind.is_empty() && self.location.resource == "secrets")
    }
}

/// What decoding needs besides the value.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Keys from `--encryption-config`.
    pub keyring: Option<&'a Keyring>,
    /// The registry prefix (`/registry`).
    pub prefix: &'a str,
}

fn meta_str<'v>(body: &'v Value, field: &str) -> Option<&'v str> {
    body.get("metadata")?.get(field)?.as_str()
}

/// Decodes one stored key-value.
pub fn decode(kv: &KeyValueRef<'_>, deleted_at: Option<i64>, cx: Context<'_>) -> Object {
    let key = String::from_utf8_lossy(kv.key).into_owned();
    let encoding = envelope::sniff(kv.value);
    let mut o = Object {
        key,
        location: Location::default(),
        api_version: String::new(),
        kind: String::new(),
        encoding: encoding.clone(),
        inner: None,
        mod_revision: kv.mod_revision,
        create_revision: kv.create_revision,
        version: kv.version,
        lease: kv.lease,
        size: kv.value.len(),
        deleted_at,
        body: None,
        problem: None,
        unknown_fields: 0,
        deletion_timestamp: None,
    };
    let plain;
    let (enc, bytes) = match &encoding {
        Encoding::Encrypted(p) => {
            let payload = kv.value.get(p.len..).unwrap_or(&[]);
            match encryption::decrypt(cx.keyring, p, payload, kv.key) {
                Ok(v) => {
                    plain = v;
                    let inner = envelope::sniff(&plain);
                    o.inner = Some(inner.clone());
                    (inner, plain.as_slice())
                }
                Err(e) => {
                    o.problem = Some(e.to_string());
                    (Encoding::Unknown, &[][..])
                }
            }
        }
        e => (e.clone(), kv.value),
    };
    if o.problem.is_none() {
        match body_of(&enc, bytes, &mut o) {
            Ok(mut body) => {
                if let Value::Object(m) = &mut body {
                    set_resource_version(m, kv.mod_revision);
                }
                o.body = Some(body);
            }
            Err(why) => o.problem = Some(why),
        }
    }
    if let Some(b) = &o.body {
        if o.api_version.is_empty() {
            o.api_version = b
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        if o.kind.is_empty() {
            o.kind = b.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        }
    }
    o.deletion_timestamp = o
        .body
        .as_ref()
        .and_then(|b| meta_str(b, "deletionTimestamp"))
        .map(str::to_string);
    let (ns, name) = match &o.body {
        Some(b) => (meta_str(b, "namespace"), meta_str(b, "name")),
        None => (None, None),
    };
    o.location = keys::locate(&o.key, cx.prefix, ns, name).unwrap_or_else(|| Location {
        resource: String::new(),
        namespace: String::new(),
        name: o.key.clone(),
    });
    o
}

/// The apiserver serves `metadata.resourceVersion` as the value's revision.
fn set_resource_version(m: &mut Map<String, Value>, rev: i64) {
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        meta.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

fn body_of(enc: &Encoding, bytes: &[u8], o: &mut Object) -> Result<Value, String> {
    match enc {
        Encoding::Protobuf => {
            let u = envelope::parse_unknown(&bytes[envelope::PROTOBUF_MAGIC.len()..])
                .map_err(|e| format!("bad protobuf envelope: {e}"))?;
            o.api_version = u.api_version.clone();
            o.kind = u.kind.clone();
            let mut envelope_only = Map::new();
            envelope_only.insert("apiVersion".into(), Value::String(u.api_version.clone()));
            envelope_only.insert("kind".into(), Value::String(u.kind.clone()));
            let schema = Schema::get();
            let Some(t) = schema.for_kind(&u.api_version, &u.kind) else {
                o.body = Some(Value::Object(envelope_only));
                return Err(format!(
                    "{} {} is not a type etcd-rescue knows (its schema has Kubernetes up to {}); only the envelope is shown",
                    u.api_version,
                    u.kind,
                    schema_version()
                ));
            };
            let mut d = Decoder::new(schema);
            let r = d.object(t, u.raw);
            o.unknown_fields = d.unknown_fields;
            match r {
                Ok(mut m) => {
                    m.insert("apiVersion".into(), Value::String(u.api_version));
                    m.insert("kind".into(), Value::String(u.kind));
                    Ok(Value::Object(m))
                }
                Err(e) => {
                    o.body = Some(Value::Object(envelope_only));
                    Err(format!("{} {}: {e}", o.api_version, o.kind))
                }
            }
        }
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| format!("bad JSON: {e}")),
        Encoding::Cbor => cbor::to_json(bytes).map_err(|e| format!("bad CBOR: {e}")),
        Encoding::Encrypted(p) => Err(format!("encrypted twice ({p})")),
        Encoding::Unknown => {
            let head: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Err(format!("not a Kubernetes object (value starts with {head})"))
        }
    }
}

/// The newest Kubernetes version in the schema table.
pub fn schema_version() -> &'static str {
    "1.37"
}
