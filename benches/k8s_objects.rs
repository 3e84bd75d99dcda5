//! Kubernetes objects for the `k8s dump` benchmark, encoded with real
//! Kubernetes protobuf types (the `k8s-pb` crate) in the apiserver's
//! `k8s\0` + runtime.Unknown envelope, printed as JSON lines
//! `{"k": <key base64>, "v": <value base64>}` for `benches/load_k8s.py`.
//!
//!     cargo bench --bench k8s_objects -- COUNT [SEED] > objects.jsonl
//!
//! The mix is shaped like a busy cluster: pods with managed fields and
//! status (about half the objects), events, config maps (a few large),
//! secrets (one in ten encrypted with the aescbc test key of
//! `testdata/k8s/encryption-config.yaml`), deployments, services and
//! service accounts, over 200 namespaces. Deterministic for a
//! seed.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

use base64::Engine;
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;

const CBC_KEY: &[u8; 32] = b"etcd-rescue test key aescbc 0001";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn word(&mut self, len: usize) -> String {
        (0..len).map(|_| (b'a' + self.below(26) as u8) as char).collect()
    }
    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }
}

fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

fn time(t: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(t),
        nanos: Some(0),
    })
}

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

fn meta(r: &mut Rng, ns: &str, name: &str, t: i64, manager: &str) -> meta::ObjectMeta {
    let fields = format!(
        r#"{{"f:metadata":{{"f:labels":{{".":{{}},"f:app":{{}},"f:tier":{{}}}}}},"f:spec":{{"f:{}":{{}}}}}}"#,
        r.word(8)
    );
    meta::ObjectMeta {
        name: s(name),
        namespace: s(ns),
        uid: s(format!(
            "{}-{}-{}-{}-{}",
            r.hex(8),
            r.hex(4),
            r.hex(4),
            r.hex(4),
            r.hex(12)
        )),
        creation_timestamp: time(t),
        labels: [
            ("app".to_string(), r.word(6)),
            ("tier".to_string(), "backend".to_string()),
        ]
        .into_iter()
        .collect(),
        managed_fields: vec![meta::ManagedFieldsEntry {
            manager: s(manager),
            operation: s("Update"),
            api_version: s("v1"),
            time: time(t),
            fields_type: s("FieldsV1"),
            fields_v1: Some(meta::FieldsV1 {
                raw: Some(fields.into_bytes()),
            }),
            subresource: s(""),
        }],
        ..Default::default()
    }
}

fn container(r: &mut Rng, name: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(format!(
            "registry.example.com/{}/{}:v{}.{}",
            r.word(5),
            r.word(7),
            r.below(9),
            r.below(30)
        )),
        args: (0..r.below(4))
            .map(|_| format!("--{}={}", r.word(6), r.word(10)))
            .collect(),
        env: (0..r.below(6))
            .map(|_| core::EnvVar {
                name: s(r.word(10).to_uppercase()),
                value: s(r.word(20)),
                value_from: None,
            })
            .collect(),
        ports: vec![core::ContainerPort {
            container_port: Some(8080),
            protocol: s("TCP"),
            name: s("http"),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: [("cpu".to_string(), Quantity { string: s("500m") })]
                .into_iter()
                .collect(),
            requests: [("memory".to_string(), Quantity { string: s("128Mi") })]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("http"),
                    }),
                    scheme: s("HTTP"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            period_seconds: Some(10),
            ..Default::default()
        }),
        termination_message_path: s("/dev/termination-log"),
        termination_message_policy: s("File"),
        image_pull_policy: s("IfNotPresent"),
        security_context: Some(core::SecurityContext {
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(r: &mut Rng, ns: &str, name: &str, t: i64) -> Vec<u8> {
    let n = 1 + r.below(3) as usize;
    let containers: Vec<_> = (0..n).map(|i| container(r, &format!("c{i}"))).collect();
    let statuses = (0..n)
        .map(|i| core::ContainerStatus {
            name: s(format!("c{i}")),
            ready: Some(true),
            restart_count: Some(r.below(3) as i32),
            image: s("registry.example.com/app:v1"),
            image_id: s(format!("sha256:{}", r.hex(64))),
            container_id: s(format!("containerd://{}", r.hex(64))),
            started: Some(true),
            state: Some(core::ContainerState {
                running: Some(core::ContainerStateRunning {
                    started_at: time(t + 5),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let p = core::Pod {
        metadata: Some(meta(r, ns, name, t, "kubelet")),
        spec: Some(core::PodSpec {
            containers,
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(30),
            dns_policy: s("ClusterFirst"),
            service_account_name: s("default"),
            node_name: s(format!("node-{}", r.below(400))),
            scheduler_name: s("default-scheduler"),
            enable_service_links: Some(true),
            tolerations: vec![core::Toleration {
                key: s("node.kubernetes.io/not-ready"),
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            conditions: ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
                .iter()
                .map(|c| core::PodCondition {
                    r#type: s(*c),
                    status: s("True"),
                    last_transition_time: time(t + 3),
                    ..Default::default()
                })
                .collect(),
            host_ip: s(format!("10.0.{}.{}", r.below(256), r.below(256))),
            pod_ip: s(format!("10.244.{}.{}", r.below(256), r.below(256))),
            start_time: time(t + 1),
            container_statuses: statuses,
            qos_class: s("Burstable"),
            ..Default::default()
        }),
    };
    envelope("v1", "Pod", p.encode_to_vec())
}

fn event(r: &mut Rng, ns: &str, name: &str, t: i64) -> Vec<u8> {
    let e = core::Event {
        metadata: Some(meta::ObjectMeta {
            name: s(name),
            namespace: s(ns),
            uid: s(r.hex(32)),
            creation_timestamp: time(t),
            ..Default::default()
        }),
        involved_object: Some(core::ObjectReference {
            kind: s("Pod"),
            namespace: s(ns),
            name: s(format!("pod-{}", r.word(8))),
            api_version: s("v1"),
            ..Default::default()
        }),
        reason: s("Pulled"),
        message: s(format!(
            "Successfully pulled image \"registry.example.com/{}\" in {}ms",
            r.word(12),
            r.below(5000)
        )),
        source: Some(core::EventSource {
            component: s("kubelet"),
            host: s(format!("node-{}", r.below(400))),
        }),
        first_timestamp: time(t),
        last_timestamp: time(t),
        count: Some(1),
        r#type: s("Normal"),
        ..Default::default()
    };
    envelope("v1", "Event", e.encode_to_vec())
}

fn configmap(r: &mut Rng, ns: &str, name: &str, t: i64) -> Vec<u8> {
    let big = r.below(50) == 0;
    let data: BTreeMap<String, String> = (0..1 + r.below(4))
        .map(|_| {
            let lines = if big { 200 + r.below(400) } else { 5 + r.below(30) };
            let body: String = (0..lines)
                .map(|_| format!("{}={}\n", r.word(8), r.word(24)))
                .collect();
            (format!("{}.properties", r.word(6)), body)
        })
        .collect();
    let c = core::ConfigMap {
        metadata: Some(meta(r, ns, name, t, "kubectl-client-side-apply")),
        data,
        ..Default::default()
    };
    envelope("v1", "ConfigMap", c.encode_to_vec())
}

fn secret(r: &mut Rng, ns: &str, name: &str, t: i64) -> Vec<u8> {
    let sec = core::Secret {
        metadata: Some(meta(r, ns, name, t, "kubectl-client-side-apply")),
        data: (0..1 + r.below(3))
            .map(|_| {
                let len = 40 + r.below(200) as usize;
                (r.word(8), r.word(len).into_bytes())
            })
            .collect(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    let plain = envelope("v1", "Secret", sec.encode_to_vec());
    if r.below(10) != 0 {
        return plain;
    }
    let iv: Vec<u8> = (0..16).map(|_| r.below(256) as u8).collect();
    let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(CBC_KEY, &iv)
        .expect("key and iv sizes")
        .encrypt_padded_vec_mut::<Pkcs7>(&plain);
    [b"k8s:enc:aescbc:v1:key1:".as_slice(), &iv, &ct].concat()
}

fn deployment(r: &mut Rng, ns: &str, name: &str, t: i64) -> Vec<u8> {
    let labels: BTreeMap<String, String> = [("app".to_string(), name.to_string())].into_iter().collect();
    let d = apps::Deployment {
        metadata: Some(meta(r, ns, name, t, "kubectl-client-side-apply")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(r.below(5) as i32),
            selector: Some(meta::LabelSelector {
                match_labels: labels.clone(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![container(r, "app")],
                    ..Default::default()
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(2),
            ready_replicas: Some(2),
            ..Default::default()
        }),
    };
    envelope("apps/v1", "Deployment", d.encode_to_vec())
}

fn service(r: &mut Rng, ns: &str, name: &str, t: i64) -> Vec<u8> {
    let svc = core::Service {
        metadata: Some(meta(r, ns, name, t, "kubectl-client-side-apply")),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("http"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: s(""),
                }),
                ..Default::default()
            }],
            cluster_ip: s(format!("10.96.{}.{}", r.below(256), r.below(256))),
            r#type: s("ClusterIP"),
            session_affinity: s("None"),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    envelope("v1", "Service", svc.encode_to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let count: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(42);
    let mut r = Rng(seed | 1);
    let out = std::io::stdout();
    let mut w = BufWriter::new(out.lock());
    let b64 = base64::engine::general_purpose::STANDARD;
    for i in 0..count {
        let ns = format!("team-{:03}", r.below(200));
        let t = 1_700_000_000 + i as i64;
        let pick = r.below(100);
        let (res, name, value) = match pick {
            0..=49 => {
                let n = format!("app-{}-{}", r.word(6), r.hex(5));
                ("pods", n.clone(), pod(&mut r, &ns, &n, t))
            }
            50..=69 => {
                let n = format!("app-{}.{}", r.word(6), r.hex(16));
                ("events", n.clone(), event(&mut r, &ns, &n, t))
            }
            70..=79 => {
                let n = format!("config-{}-{i}", r.word(6));
                ("configmaps", n.clone(), configmap(&mut r, &ns, &n, t))
            }
            80..=87 => {
                let n = format!("secret-{}-{i}", r.word(6));
                ("secrets", n.clone(), secret(&mut r, &ns, &n, t))
            }
            88..=91 => {
                let n = format!("web-{}-{i}", r.word(6));
                ("deployments", n.clone(), deployment(&mut r, &ns, &n, t))
            }
            92..=95 => {
                let n = format!("svc-{}-{i}", r.word(6));
                ("services/specs", n.clone(), service(&mut r, &ns, &n, t))
            }
            _ => {
                let n = format!("sa-{}-{i}", r.word(6));
                let sa = core::ServiceAccount {
                    metadata: Some(meta(&mut r, &ns, &n, t, "kube-controller-manager")),
                    ..Default::default()
                };
                (
                    "serviceaccounts",
                    n,
                    envelope("v1", "ServiceAccount", sa.encode_to_vec()),
                )
            }
        };
        let key = format!("/registry/{res}/{ns}/{name}");
        writeln!(
            w,
            "{{\"k\":\"{}\",\"v\":\"{}\"}}",
            b64.encode(key),
            b64.encode(&value)
        )
        .expect("write");
    }
    w.flush().expect("flush");
}
