//! Our own Kubernetes fixture: objects encoded with real Kubernetes protobuf
//! types (the `k8s-pb` crate), wrapped in the apiserver's `k8s\0` +
//! runtime.Unknown envelope, some encrypted with each provider exactly as
//! the apiserver's value transformers do (known test keys), a custom
//! resource as JSON and one as CBOR, an object of a type etcd-rescue does not
//! know, an update and a delete for history, all written through real etcd
//! 3.5.1 and saved with `etcdctl snapshot save`.
//!
//! The committed result is `testdata/k8s/objects.snapshot.db` (with
//! `testdata/k8s/encryption-config.yaml`). Regenerate it with
//! `ETCD_RESCUE_REGEN_K8S=1 cargo test --test k8s_fixtures`; when etcd is
//! installed every run also builds a fresh one and checks it the same way.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use common::etcd::{Etcd, Member, free_port};
use common::*;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Value, json};

/// Test keys of `testdata/k8s/encryption-config.yaml` (not secret).
const CBC_KEY: &[u8; 32] = b"etcd-rescue test key aescbc 0001";
const GCM_KEY: &[u8; 32] = b"etcd-rescue test key aesgcm 0002";
const BOX_KEY: &[u8; 32] = b"etcd-rescue test key secretbox03";

fn fixture_dir() -> PathBuf {
    repo().join("testdata/k8s")
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn time(secs: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(secs),
        nanos: Some(0),
    })
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn objmeta(ns: Option<&str>, name: &str, uid: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        namespace: ns.map(str::to_string),
        uid: s(uid),
        creation_timestamp: time(1_700_000_000),
        ..Default::default()
    })
}

/// `k8s\0` + runtime.Unknown, as the apiserver's protobuf serializer writes it.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let u = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        content_encoding: s(""),
        content_type: s(""),
    };
    [b"k8s\0".as_slice(), &u.encode_to_vec()].concat()
}

/// The apiserver's aescbc transformer: IV ‖ AES-CBC(PKCS#7), prefixed.
fn aescbc(key_name: &str, plain: &[u8]) -> Vec<u8> {
    let iv = [0x11u8; 16];
    let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(CBC_KEY, &iv)
        .unwrap()
        .encrypt_padded_vec_mut::<Pkcs7>(plain);
    [format!("k8s:enc:aescbc:v1:{key_name}:").as_bytes(), &iv, &ct].concat()
}

/// The apiserver's aesgcm transformer: nonce ‖ AES-GCM(plain, AAD = etcd key).
fn aesgcm(key_name: &str, etcd_key: &str, plain: &[u8]) -> Vec<u8> {
    let nonce = [0x22u8; 12];
    let ct = aes_gcm::Aes256Gcm::new_from_slice(GCM_KEY)
        .unwrap()
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: etcd_key.as_bytes(),
            },
        )
        .unwrap();
    [format!("k8s:enc:aesgcm:v1:{key_name}:").as_bytes(), &nonce, &ct].concat()
}

/// The apiserver's secretbox transformer: nonce ‖ secretbox.Seal(plain).
fn secretbox(key_name: &str, plain: &[u8]) -> Vec<u8> {
    let nonce = [0x33u8; 24];
    let ct = crypto_secretbox::XSalsa20Poly1305::new_from_slice(BOX_KEY)
        .unwrap()
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), plain)
        .unwrap();
    [
        format!("k8s:enc:secretbox:v1:{key_name}:").as_bytes(),
        &nonce,
        &ct,
    ]
    .concat()
}

/// CBOR as Kubernetes writes it: self-described tag, strings as byte strings.
fn cbor(v: &Value) -> Vec<u8> {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes());
            }
        }
    }
    fn item(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Null => out.push(0xf6),
            Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Value::Number(n) => match n.as_i64() {
                Some(i) if i >= 0 => head(out, 0, i as u64),
                Some(i) => head(out, 1, (-1 - i) as u64),
                None => {
                    out.push(0xfb);
                    out.extend(n.as_f64().unwrap().to_be_bytes());
                }
            },
            Value::String(s) => {
                head(out, 2, s.len() as u64);
                out.extend(s.as_bytes());
            }
            Value::Array(a) => {
                head(out, 4, a.len() as u64);
                a.iter().for_each(|x| item(out, x));
            }
            Value::Object(m) => {
                head(out, 5, m.len() as u64);
                for (k, x) in m {
                    head(out, 2, k.len() as u64);
                    out.extend(k.as_bytes());
                    item(out, x);
                }
            }
        }
    }
    let mut out = vec![0xd9, 0xd9, 0xf7];
    item(&mut out, v);
    out
}

fn deployment(replicas: i32) -> Vec<u8> {
    let sel = labels(&[("app", "web")]);
    let d = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            labels: labels(&[("app", "web")]),
            annotations: labels(&[("note", "line one\nline two\n")]),
            generation: Some(if replicas == 0 { 2 } else { 1 }),
            ..objmeta(Some("default"), "web", "11111111-0000-0000-0000-000000000001").unwrap()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(replicas),
            selector: Some(meta::LabelSelector {
                match_labels: sel.clone(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: sel,
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("web"),
                        image: s("nginx:1.25"),
                        ports: vec![core::ContainerPort {
                            container_port: Some(80),
                            protocol: s("TCP"),
                            ..Default::default()
                        }],
                        resources: Some(core::ResourceRequirements {
                            limits: [
                                ("cpu".to_string(), Quantity { string: s("500m") }),
                                ("memory".to_string(), Quantity { string: s("128Mi") }),
                            ]
                            .into_iter()
                            .collect(),
                            ..Default::default()
                        }),
                        security_context: Some(core::SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    // A non-pointer field with omitempty, written as the Go
                    // apiserver writes it (always on the wire): not printed.
                    host_network: Some(false),
                    termination_grace_period_seconds: Some(30),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(0),
                        str_val: s(""),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    envelope("apps/v1", "Deployment", d.encode_to_vec())
}

fn deployment_json(replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "11111111-0000-0000-0000-000000000001",
            "creationTimestamp": "2023-11-14T22:13:20Z", "generation": if replicas == 0 { 2 } else { 1 },
            "labels": {"app": "web"}, "annotations": {"note": "line one\nline two\n"}
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web", "image": "nginx:1.25",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true}
                    }],
                    "terminationGracePeriodSeconds": 30
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}
        },
        "status": {}
    })
}

fn secret(ns: &str, name: &str, uid: &str, data: &[(&str, &[u8])]) -> Vec<u8> {
    let sec = core::Secret {
        metadata: objmeta(Some(ns), name, uid),
        data: data.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    envelope("v1", "Secret", sec.encode_to_vec())
}

fn secret_json(ns: &str, name: &str, uid: &str, data: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "creationTimestamp": "2023-11-14T22:13:20Z"},
        "data": data.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>(),
        "type": "Opaque"
    })
}

fn configmap(ns: &str, name: &str, data: &[(&str, &str)]) -> Vec<u8> {
    let cm = core::ConfigMap {
        metadata: objmeta(Some(ns), name, "33333333-0000-0000-0000-000000000003"),
        data: labels(data),
        immutable: Some(false),
        ..Default::default()
    };
    envelope("v1", "ConfigMap", cm.encode_to_vec())
}

fn namespace(name: &str) -> Vec<u8> {
    let n = core::Namespace {
        metadata: objmeta(None, name, "44444444-0000-0000-0000-000000000004"),
        spec: Some(core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            ..Default::default()
        }),
    };
    envelope("v1", "Namespace", n.encode_to_vec())
}

fn service() -> Vec<u8> {
    let svc = core::Service {
        metadata: objmeta(Some("default"), "web", "55555555-0000-0000-0000-000000000005"),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(1),
                    int_val: Some(0),
                    str_val: s("http"),
                }),
                ..Default::default()
            }],
            selector: labels(&[("app", "web")]),
            cluster_ip: s("10.96.0.42"),
            cluster_ips: vec!["10.96.0.42".into()],
            r#type: s("ClusterIP"),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            ..Default::default()
        }),
    };
    envelope("v1", "Service", svc.encode_to_vec())
}

const WIDGET: &str = r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"default","uid":"66666666-0000-0000-0000-000000000006","creationTimestamp":"2023-11-14T22:13:20Z","generation":1},"spec":{"size":3,"colors":["red","blue"],"ratio":0.5}}
"#;

fn widget2() -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w2", "namespace": "default", "uid": "77777777-0000-0000-0000-000000000007"},
        "spec": {"size": 7, "enabled": true, "owner": null, "offset": -4}})
}

/// The writes, in order: (key, Some(value)) puts, (key, None) deletes.
fn ops() -> Vec<(String, Option<Vec<u8>>)> {
    let put = |k: &str, v: Vec<u8>| (k.to_string(), Some(v));
    vec![
        put("/registry/namespaces/default", namespace("default")),
        put("/registry/namespaces/prod", namespace("prod")),
        put("/registry/deployments/default/web", deployment(1)),
        put(
            "/registry/secrets/default/plain",
            secret(
                "default",
                "plain",
                "22222222-0000-0000-0000-000000000001",
                &[("password", b"s3cr3t")],
            ),
        ),
        put(
            "/registry/secrets/prod/cbc-secret",
            aescbc(
                "key1",
                &secret(
                    "prod",
                    "cbc-secret",
                    "22222222-0000-0000-0000-000000000002",
                    &[("token", b"cbc-token")],
                ),
            ),
        ),
        put(
            "/registry/secrets/prod/gcm-secret",
            aesgcm(
                "key2",
                "/registry/secrets/prod/gcm-secret",
                &secret(
                    "prod",
                    "gcm-secret",
                    "22222222-0000-0000-0000-000000000003",
                    &[("token", b"gcm-token")],
                ),
            ),
        ),
        put(
            "/registry/secrets/prod/box-secret",
            secretbox(
                "key3",
                &secret(
                    "prod",
                    "box-secret",
                    "22222222-0000-0000-0000-000000000004",
                    &[("token", b"box-token")],
                ),
            ),
        ),
        put(
            "/registry/configmaps/prod/kms-config",
            [b"k8s:enc:kms:v2:vault:".as_slice(), b"\x0a\x04opaque"].concat(),
        ),
        put(
            "/registry/configmaps/default/app-config",
            configmap(
                "default",
                "app-config",
                &[("app.properties", "color=blue\nsize=3\n"), ("mode", "yes")],
            ),
        ),
        put(
            "/registry/configmaps/default/old-config",
            configmap("default", "old-config", &[("x", "1")]),
        ),
        put("/registry/services/specs/default/web", service()),
        put(
            "/registry/example.com/widgets/default/w1",
            WIDGET.as_bytes().to_vec(),
        ),
        put("/registry/example.com/widgets/default/w2", cbor(&widget2())),
        put(
            "/registry/gizmos/default/g1",
            envelope("future.k8s.io/v9", "Gizmo", vec![0x0a, 0x02, 0x0a, 0x00]),
        ),
        ("/registry/configmaps/default/old-config".to_string(), None),
        put("/registry/deployments/default/web", deployment(0)),
    ]
}

/// Revision of the first deployment write (revisions start at 2).
const REV_DEPLOYMENT_V1: i64 = 4;

fn generate(bin: &Path, out: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let etcd = Etcd::start(Member {
        bin,
        data_dir: &data,
        name: "k8s-fixture",
        peer_port: free_port(),
        initial_cluster: None,
        extra: vec![],
    });
    for (k, v) in ops() {
        match v {
            Some(v) => etcd.put_bytes(&k, &v),
            None => {
                etcd.ctl(&["del", &k]);
            }
        }
    }
    let snap = tmp.path().join("snap.db");
    etcd.ctl(&["snapshot", "save", snap.to_str().unwrap()]);
    etcd.stop();
    std::fs::copy(&snap, out).unwrap();
}

fn enc_config() -> PathBuf {
    fixture_dir().join("encryption-config.yaml")
}

/// The committed fixture (regenerated first when ETCD_RESCUE_REGEN_K8S is
/// set) and, when etcd is installed, a fresh one; each made once per run.
fn snapshots() -> Vec<(String, PathBuf)> {
    use std::sync::OnceLock;
    static FRESH: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    let committed = fixture_dir().join("objects.snapshot.db");
    // Asked on every call, so each test says what it left out.
    let bin = require(Need::Etcd35);
    let fresh = FRESH.get_or_init(|| {
        if std::env::var_os("ETCD_RESCUE_REGEN_K8S").is_some() {
            let bin = bin
                .clone()
                .expect("ETCD_RESCUE_REGEN_K8S needs etcd 3.5.1 (testdata/etcd.sh install)");
            generate(&bin, &committed);
        }
        match bin {
            Some(bin) => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().join("fresh.snapshot.db");
                generate(&bin, &p);
                Some((t, p))
            }
            None => None,
        }
    });
    let mut v = vec![("committed".to_string(), committed)];
    if let Some((_, p)) = fresh {
        v.push(("fresh".to_string(), p.clone()));
    }
    v
}

fn get_json(snap: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["k8s", "get", snap.to_str().unwrap()];
    a.extend_from_slice(args);
    let cfg = enc_config();
    a.extend_from_slice(&["-o", "json", "--encryption-config", cfg.to_str().unwrap()]);
    let r = run(&a);
    let v = if r.out.is_empty() { Value::Null } else { r.json() };
    (r.code, v, r.err)
}

/// The decoded object without the revision-dependent resourceVersion.
fn without_rv(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        assert!(
            m.remove("resourceVersion").is_some_and(|r| r.is_string()),
            "resourceVersion missing"
        );
    }
    v
}

#[test]
fn objects_decode_and_decrypt_to_the_originals() {
    for (what, snap) in snapshots() {
        let one = |args: &[&str]| {
            let (code, v, err) = get_json(&snap, args);
            assert_eq!(code, 0, "{what} {args:?}: {err}");
            without_rv(v)
        };
        assert_eq!(one(&["deploy", "web"]), deployment_json(0), "{what}");
        assert_eq!(
            one(&["secret", "plain"]),
            secret_json(
                "default",
                "plain",
                "22222222-0000-0000-0000-000000000001",
                &[("password", "czNjcjN0")]
            ),
        );
        for (name, uid, tok) in [
            (
                "cbc-secret",
                "22222222-0000-0000-0000-000000000002",
                "Y2JjLXRva2Vu",
            ),
            (
                "gcm-secret",
                "22222222-0000-0000-0000-000000000003",
                "Z2NtLXRva2Vu",
            ),
            (
                "box-secret",
                "22222222-0000-0000-0000-000000000004",
                "Ym94LXRva2Vu",
            ),
        ] {
            assert_eq!(
                one(&["secret", name, "-n", "prod"]),
                secret_json("prod", name, uid, &[("token", tok)]),
                "{what} {name}"
            );
        }
        assert_eq!(
            one(&["cm", "app-config"]),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "app-config", "namespace": "default", "uid": "33333333-0000-0000-0000-000000000003",
                    "creationTimestamp": "2023-11-14T22:13:20Z"},
                "data": {"app.properties": "color=blue\nsize=3\n", "mode": "yes"}, "immutable": false})
        );
        assert_eq!(
            one(&["ns", "prod"]),
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "prod", "uid": "44444444-0000-0000-0000-000000000004", "creationTimestamp": "2023-11-14T22:13:20Z"},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        );
        assert_eq!(
            one(&["svc", "web"]),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "default", "uid": "55555555-0000-0000-0000-000000000005",
                    "creationTimestamp": "2023-11-14T22:13:20Z"},
                "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
                    "selector": {"app": "web"}, "clusterIP": "10.96.0.42", "clusterIPs": ["10.96.0.42"], "type": "ClusterIP"},
                "status": {"loadBalancer": {}}})
        );
        let w1: Value = serde_json::from_str(WIDGET).unwrap();
        assert_eq!(one(&["widgets", "w1"]), w1);
        assert_eq!(one(&["widget", "w2"]), widget2());
        // History: the deployment as it was.
        let rev = REV_DEPLOYMENT_V1.to_string();
        assert_eq!(one(&["deploy", "web", "--rev", &rev]), deployment_json(1));
    }
}

#[test]
fn ls_shows_encodings_and_what_cannot_be_read() {
    for (what, snap) in snapshots() {
        let p = snap.to_str().unwrap();
        let r = run(&["k8s", "ls", p, "-o", "json"]);
        assert_eq!(
            r.code, 1,
            "{what}: the KMS value and the unknown type are problems: {}",
            r.err
        );
        let rows = r.json();
        let by_name: BTreeMap<String, Value> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap().to_string(), r.clone()))
            .collect();
        assert_eq!(by_name["cbc-secret"]["encoding"], "aescbc:key1 (encrypted)");
        assert_eq!(by_name["kms-config"]["encoding"], "kmsv2:vault (encrypted)");
        assert_eq!(by_name["w1"]["encoding"], "json");
        assert_eq!(by_name["w1"]["resource"], "widgets.example.com");
        assert_eq!(by_name["w2"]["encoding"], "cbor");
        assert_eq!(by_name["g1"]["kind"], "Gizmo");
        assert!(
            by_name["g1"]["problem"]
                .as_str()
                .unwrap()
                .contains("not a type etcd-rescue knows")
        );
        assert!(
            by_name["kms-config"]["problem"]
                .as_str()
                .unwrap()
                .contains("KMS v2 provider vault")
        );
        assert!(
            by_name["cbc-secret"]["problem"]
                .as_str()
                .unwrap()
                .contains("--encryption-config")
        );
        assert!(!by_name.contains_key("old-config"));
        assert_eq!(rows.as_array().unwrap().len(), 13, "{what}");
        // With the keys, the encrypted secrets decode.
        let r = run(&[
            "k8s",
            "ls",
            p,
            "secrets",
            "-A",
            "--encryption-config",
            enc_config().to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("aesgcm:key2 (protobuf)"), "{}", r.out);
        assert!(r.out.contains("secretbox:key3 (protobuf)"), "{}", r.out);
        // Keys never appear in output.
        for k in [CBC_KEY.as_slice(), GCM_KEY, BOX_KEY] {
            assert!(!r.out.contains(std::str::from_utf8(k).unwrap()));
        }
        // Deleted objects, with their last live version.
        let r = run(&["k8s", "ls", p, "cm", "--include-deleted"]);
        assert!(r.out.contains("old-config"), "{}", r.out);
        assert!(r.out.contains("deleted at rev"), "{}", r.out);
        let (code, v, err) = get_json(&snap, &["cm", "old-config", "--include-deleted"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(v["data"]["x"], "1");
        assert!(err.contains("was deleted at revision"), "{err}");
    }
}

#[test]
fn unknown_types_print_their_envelope_and_the_run_goes_on() {
    for (_what, snap) in snapshots() {
        let (code, v, err) = get_json(&snap, &["gizmos", "g1"]);
        assert_eq!(code, 1);
        assert_eq!(v, json!({"apiVersion": "future.k8s.io/v9", "kind": "Gizmo"}));
        assert!(err.contains("not a type etcd-rescue knows"), "{err}");
        // Without keys, the encrypted secrets say why, and the plain one prints.
        let r = run(&[
            "k8s",
            "get",
            snap.to_str().unwrap(),
            "secrets",
            "-A",
            "-o",
            "yaml",
        ]);
        assert_eq!(r.code, 1);
        assert!(r.out.contains("password: czNjcjN0"), "{}", r.out);
        assert!(
            r.err.contains("aescbc key key1; pass --encryption-config"),
            "{}",
            r.err
        );
    }
}

#[test]
fn secrets_are_redacted_in_tables_and_private_on_disk() {
    for (_what, snap) in snapshots() {
        let p = snap.to_str().unwrap();
        let cfg = enc_config();
        let r = run(&[
            "k8s",
            "get",
            p,
            "secrets",
            "-n",
            "prod",
            "--encryption-config",
            cfg.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("token=<redacted, 9 bytes>"), "{}", r.out);
        assert!(!r.out.contains("cbc-token"));
        let r = run(&[
            "k8s",
            "get",
            p,
            "secrets",
            "-n",
            "prod",
            "--show-secrets",
            "--encryption-config",
            cfg.to_str().unwrap(),
        ]);
        assert!(r.out.contains("token=cbc-token"), "{}", r.out);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("d");
        let r = run(&[
            "k8s",
            "dump",
            p,
            "--out",
            out.to_str().unwrap(),
            "--encryption-config",
            cfg.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 1, "the unknown type and the KMS value fail: {}", r.out);
        assert!(r.out.contains("FAILED /registry/gizmos/default/g1"), "{}", r.out);
        let f = out.join("prod/secrets/gcm-secret.yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("token: Z2NtLXRva2Vu"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
            let cm = out.join("default/configmaps/app-config.yaml");
            assert_eq!(
                std::fs::metadata(&cm).unwrap().permissions().mode() & 0o777,
                0o644
            );
        }
        assert!(out.join("_cluster/namespaces/prod.yaml").is_file());
        assert!(out.join("default/widgets.example.com/w2.yaml").is_file());
        let app = std::fs::read_to_string(out.join("default/configmaps/app-config.yaml")).unwrap();
        assert!(
            app.contains("  app.properties: |\n    color=blue\n    size=3\n"),
            "{app}"
        );
        assert!(app.contains("  mode: \"yes\"\n"), "{app}");
    }
}
