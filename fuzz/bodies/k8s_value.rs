//! A stored Kubernetes value on arbitrary bytes, through what `k8s get`
//! does with it: the encoding sniffed from the first bytes, the encryption
//! prefix, decryption with the test keys of `testdata/k8s` (aescbc key1,
//! aesgcm key2, secretbox key3, kms vault), the `k8s\0` + runtime.Unknown
//! envelope, the schema-driven protobuf decoder, JSON and CBOR, the key
//! layout, then YAML and JSON rendering and `--for-apply` stripping. The
//! envelope's raw object is also decoded as a type picked by the key, so
//! every type of the schema is reachable, and the value as CBOR.
//!
//! Input: `<etcd key> NUL <value>` (no NUL: the whole input is the value,
//! under a fixed key).

use std::sync::OnceLock;

use etcd_rescue::k8s::decode::Decoder;
use etcd_rescue::k8s::encryption::Keyring;
use etcd_rescue::k8s::envelope::{self, Encoding};
use etcd_rescue::k8s::object::{self, Context};
use etcd_rescue::k8s::schema::Schema;
use etcd_rescue::k8s::{apply, cbor, keys, yaml};
use etcd_rescue::mvcc::kv::KeyValueRef;

const CONFIG: &str = include_str!("../../testdata/k8s/encryption-config.yaml");

fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| Keyring::parse(CONFIG).expect("the test encryption config parses"))
}

/// The target's body.
pub fn run(data: &[u8]) {
    let (key, value) = match data.iter().position(|&b| b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (&b"/registry/secrets/default/fuzz"[..], data),
    };
    let kv = KeyValueRef {
        key,
        create_revision: 2,
        mod_revision: 3,
        version: 1,
        value,
        lease: 0,
    };
    let prefix = keys::DEFAULT_PREFIX;
    let o = object::decode(
        &kv,
        None,
        Context {
            keyring: Some(keyring()),
            prefix,
        },
    );
    let _ = o.encoding_label();
    let _ = o.is_secret();
    if let Some(body) = &o.body {
        let _ = yaml::to_string(body);
        let _ = serde_json::to_vec(body).expect("an object renders as JSON");
        let _ = yaml::kubectl_json(body);
        // Every --for-apply rule on whatever decoded, whatever its resource.
        let cx = apply::ApplyContext {
            mapping: etcd_rescue::k8s::filter::NamespaceMapping::parse(&["a:b".to_string()])
                .expect("a valid mapping"),
            ..apply::ApplyContext::default()
        };
        for r in [
            o.location.resource.as_str(),
            "pods",
            "services",
            "jobs",
            "serviceaccounts",
            "secrets",
            "persistentvolumeclaims",
            "persistentvolumes",
            "customresourcedefinitions.apiextensions.k8s.io",
            "validatingwebhookconfigurations",
            "rolebindings",
            "namespaces",
        ] {
            let mut stripped = body.clone();
            let _ = apply::decide(r, &mut stripped, &cx);
        }
    }
    if let Encoding::Encrypted(p) = &o.encoding {
        // Without a configuration: the explanation only.
        let plain = object::decode(
            &kv,
            None,
            Context {
                keyring: None,
                prefix,
            },
        );
        assert!(plain.body.is_none() && plain.problem.is_some(), "{p}");
    }
    let text = String::from_utf8_lossy(key);
    if let Some(loc) = keys::locate(&text, prefix, None, None) {
        let _ = keys::matches("po", &loc.resource, &o.kind);
    }

    // The raw object inside the envelope as a type chosen by the key.
    if let Some(rest) = value.strip_prefix(envelope::PROTOBUF_MAGIC) {
        if let Ok(u) = envelope::parse_unknown(rest) {
            let schema = Schema::get();
            let h = key
                .iter()
                .fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
            let mut d = Decoder::new(schema);
            if let Ok(m) = d.object(h % schema.len(), u.raw) {
                let _ = yaml::to_string(&serde_json::Value::Object(m));
            }
        }
    }
    if let Ok(v) = cbor::to_json(value) {
        let _ = yaml::to_string(&v);
    }
}
