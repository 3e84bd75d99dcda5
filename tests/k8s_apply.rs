//! `k8s dump --for-apply`: Velero's restore rules, the phase layout and its
//! one-pass apply, filters, namespace mapping, and the stream formats.
//!
//! The "dead cluster" is `testdata/k8s/apply.snapshot.db`: objects as an
//! apiserver with `--storage-media-type=application/json` stores them
//! (Calico-style CRDs and custom resources, a Deployment with its
//! ReplicaSet and Pod, a standalone Pod with a node and a token volume,
//! Jobs, Services with and without selectors and their Endpoints, token
//! Secrets, a PV and its claim, bindings, webhooks, APIServices, what the
//! control plane makes itself), written through real etcd 3.5.1 and saved
//! with `etcdctl snapshot save`. Regenerate it with
//! `ETCD_RESCUE_REGEN_K8S=1 cargo test --test k8s_apply`; when etcd is
//! installed every run also checks a fresh one.
//!
//! No kube-apiserver can run here. What stands in for it when `apply.sh`
//! runs: a `kubectl` on PATH that hands each `apply -k PHASE` to the real
//! `kubectl kustomize` (which parses every manifest of the phase, as apply
//! would before sending anything) and records what it would have created,
//! and records each `wait`; the test then holds that record to the rules an
//! apiserver enforces on order: a namespaced object needs its Namespace, a
//! custom resource needs its CRD established, and webhooks come after
//! everything they could refuse.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::etcd::{Etcd, Member, free_port};
use common::*;
use serde_json::{Value, json};

fn meta(ns: Option<&str>, name: &str, uid: &str) -> Value {
    let mut m = json!({"name": name, "uid": uid, "resourceVersion": "7", "creationTimestamp": "2024-05-01T10:00:00Z",
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1"}]});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

fn with(mut v: Value, path: &str, x: Value) -> Value {
    let mut cur = &mut v;
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts[..parts.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[parts[parts.len() - 1]] = x;
    v
}

fn crd(plural: &str, kind: &str, scope: &str, preserve: bool) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": meta(None, &format!("{plural}.crd.projectcalico.org"), &format!("crd-{plural}")),
        "spec": {"group": "crd.projectcalico.org", "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": kind.to_lowercase()},
            "scope": scope, "preserveUnknownFields": preserve,
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]}})
}

fn owner(kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}])
}

fn pod(ns: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(Some(ns), name, uid),
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}, "status": {"phase": "Running"}})
}

/// The objects of the dead cluster, by etcd key.
fn objects() -> Vec<(String, Value)> {
    let last_applied = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000, "nodePort": 30900}]}})
    .to_string();
    let v = vec![
        (
            "/registry/apiextensions.k8s.io/customresourcedefinitions/ippools.crd.projectcalico.org",
            crd("ippools", "IPPool", "Cluster", false),
        ),
        (
            "/registry/apiextensions.k8s.io/customresourcedefinitions/networkpolicies.crd.projectcalico.org",
            crd("networkpolicies", "NetworkPolicy", "Namespaced", true),
        ),
        (
            "/registry/crd.projectcalico.org/ippools/default-ipv4-ippool",
            json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
            "metadata": meta(None, "default-ipv4-ippool", "pool-1"), "spec": {"cidr": "192.168.0.0/16", "natOutgoing": true}}),
        ),
        (
            "/registry/crd.projectcalico.org/networkpolicies/prod/allow-web",
            json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy",
            "metadata": meta(Some("prod"), "allow-web", "np-1"), "spec": {"selector": "app == 'web'"}}),
        ),
        (
            "/registry/namespaces/prod",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(None, "prod", "ns-prod"),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        ),
        (
            "/registry/deployments/prod/web",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": with(meta(Some("prod"), "web", "deploy-web"), "labels", json!({"app": "web"})),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}),
        ),
        (
            "/registry/replicasets/prod/web-5d9c",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": with(with(meta(Some("prod"), "web-5d9c", "rs-web"), "ownerReferences", owner("Deployment", "web", "deploy-web")), "labels", json!({"app": "web"})),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}),
        ),
        (
            "/registry/pods/prod/web-5d9c-x1",
            with(
                with(
                    pod("prod", "web-5d9c-x1", "pod-web"),
                    "metadata/ownerReferences",
                    owner("ReplicaSet", "web-5d9c", "rs-web"),
                ),
                "metadata/labels",
                json!({"app": "web"}),
            ),
        ),
        (
            "/registry/pods/prod/debug",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": with(meta(Some("prod"), "debug", "pod-debug"), "labels", json!({"app": "debug"})),
            "spec": {"nodeName": "node-1", "priority": 0, "priorityClassName": "", "serviceAccountName": "app",
                "volumes": [{"name": "app-token-abcde", "secret": {"secretName": "app-token-abcde"}}, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
                "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "app-token-abcde", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}, {"name": "data", "mountPath": "/data"}]}]},
            "status": {"phase": "Running"}}),
        ),
        (
            "/registry/pods/prod/finished",
            with(
                pod("prod", "finished", "pod-fin"),
                "status/phase",
                json!("Succeeded"),
            ),
        ),
        (
            "/registry/pods/kube-system/etcd-node-1",
            with(
                with(
                    pod("kube-system", "etcd-node-1", "pod-mirror"),
                    "metadata/annotations",
                    json!({"kubernetes.io/config.mirror": "abc"}),
                ),
                "metadata/ownerReferences",
                json!([{"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "node-1-uid", "controller": true}]),
            ),
        ),
        (
            "/registry/jobs/prod/migrate",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(Some("prod"), "migrate", "job-1"),
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-1"}},
                "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "job-1", "controller-uid": "job-1", "job-name": "migrate"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "migrate:1"}]}}}, "status": {"active": 1}}),
        ),
        (
            "/registry/jobs/prod/done",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(Some("prod"), "done", "job-2"),
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "migrate:1"}]}}},
            "status": {"completionTime": "2024-05-01T10:05:00Z", "succeeded": 1}}),
        ),
        (
            "/registry/services/specs/prod/web",
            json!({"apiVersion": "v1", "kind": "Service",
            "metadata": with(meta(Some("prod"), "web", "svc-web"), "annotations", json!({"kubectl.kubernetes.io/last-applied-configuration": last_applied})),
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 31080}, {"name": "admin", "port": 9000, "protocol": "TCP", "nodePort": 30900}]}}),
        ),
        (
            "/registry/services/specs/prod/db",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(Some("prod"), "db", "svc-db"),
            "spec": {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
        ),
        (
            "/registry/services/specs/prod/external-db",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(Some("prod"), "external-db", "svc-ext"),
            "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 5432}]}}),
        ),
        (
            "/registry/services/endpoints/prod/web",
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta(Some("prod"), "web", "ep-web"),
            "subsets": [{"addresses": [{"ip": "192.168.1.5"}], "ports": [{"port": 80}]}]}),
        ),
        (
            "/registry/services/endpoints/prod/external-db",
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta(Some("prod"), "external-db", "ep-ext"),
            "subsets": [{"addresses": [{"ip": "10.0.0.50"}], "ports": [{"port": 5432}]}]}),
        ),
        (
            "/registry/endpointslices/prod/web-abcde",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": with(meta(Some("prod"), "web-abcde", "eps-web"), "labels", json!({"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "web"})),
            "addressType": "IPv4", "endpoints": []}),
        ),
        (
            "/registry/serviceaccounts/prod/app",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(Some("prod"), "app", "sa-app"),
            "secrets": [{"name": "app-token-abcde"}], "imagePullSecrets": [{"name": "regcred"}]}),
        ),
        (
            "/registry/secrets/prod/app-token-abcde",
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": with(meta(Some("prod"), "app-token-abcde", "sec-tok"), "annotations", json!({"kubernetes.io/service-account.name": "app", "kubernetes.io/service-account.uid": "sa-app"})),
            "data": {"token": "dG9rZW4=", "ca.crt": "Y2E=", "namespace": "cHJvZA=="}}),
        ),
        (
            "/registry/secrets/prod/ci-token",
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": with(meta(Some("prod"), "ci-token", "sec-ci"), "annotations", json!({"kubernetes.io/service-account.name": "app", "kubernetes.io/service-account.uid": "sa-app"})),
            "data": {"token": "b2xk", "ca.crt": "Y2E=", "namespace": "cHJvZA=="}}),
        ),
        (
            "/registry/secrets/prod/regcred",
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": meta(Some("prod"), "regcred", "sec-reg"), "data": {".dockerconfigjson": "e30="}}),
        ),
        (
            "/registry/configmaps/prod/kube-root-ca.crt",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(Some("prod"), "kube-root-ca.crt", "cm-ca"), "data": {"ca.crt": "x"}}),
        ),
        (
            "/registry/configmaps/prod/app-config",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": with(meta(Some("prod"), "app-config", "cm-app"), "labels", json!({"app": "web"})), "data": {"mode": "prod"}}),
        ),
        (
            "/registry/persistentvolumeclaims/prod/data",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": with(meta(Some("prod"), "data", "pvc-data"), "annotations", json!({"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes", "volume.kubernetes.io/selected-node": "node-1", "team": "db"})),
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv-data"}, "status": {"phase": "Bound"}}),
        ),
        (
            "/registry/persistentvolumes/pv-data",
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta(None, "pv-data", "pv-1"),
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/srv/data"},
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "prod", "name": "data", "uid": "pvc-data", "resourceVersion": "9"}}, "status": {"phase": "Bound"}}),
        ),
        (
            "/registry/rolebindings/prod/app-rb",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta(Some("prod"), "app-rb", "rb-1"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "prod"}]}),
        ),
        (
            "/registry/clusterroles/view",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": with(meta(None, "view", "cr-view"), "labels", json!({"kubernetes.io/bootstrapping": "rbac-defaults"})), "rules": []}),
        ),
        (
            "/registry/clusterroles/pool-reader",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(None, "pool-reader", "cr-pool"),
            "rules": [{"apiGroups": ["crd.projectcalico.org"], "resources": ["ippools"], "verbs": ["get"]}]}),
        ),
        (
            "/registry/validatingwebhookconfigurations/policy",
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": meta(None, "policy", "vwc-1"),
            "webhooks": [{"name": "policy.example.com", "sideEffects": "Unknown", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
                "clientConfig": {"service": {"namespace": "prod", "name": "web"}}}]}),
        ),
        (
            "/registry/apiregistration.k8s.io/apiservices/v1.apps",
            json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": with(meta(None, "v1.apps", "aps-apps"), "labels", json!({"kube-aggregator.kubernetes.io/automanaged": "onstart"})),
            "spec": {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15}}),
        ),
        (
            "/registry/apiregistration.k8s.io/apiservices/v1beta1.metrics.k8s.io",
            json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": meta(None, "v1beta1.metrics.k8s.io", "aps-metrics"),
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "service": {"namespace": "kube-system", "name": "metrics-server"}, "groupPriorityMinimum": 100, "versionPriority": 100}}),
        ),
        (
            "/registry/minions/node-1",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": meta(None, "node-1", "node-1-uid")}),
        ),
        (
            "/registry/events/prod/web.17a",
            json!({"apiVersion": "v1", "kind": "Event", "metadata": meta(Some("prod"), "web.17a", "ev-1"), "reason": "Scheduled"}),
        ),
        (
            "/registry/leases/kube-node-lease/node-1",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta(Some("kube-node-lease"), "node-1", "lease-1")}),
        ),
        (
            "/registry/configmaps/dev/settings",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(Some("dev"), "settings", "cm-dev"), "data": {"a": "b"}}),
        ),
        (
            "/registry/namespaces/dev",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(None, "dev", "ns-dev")}),
        ),
    ];
    v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn generate(bin: &Path, out: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(Member {
        bin,
        data_dir: &tmp.path().join("data"),
        name: "k8s-apply-fixture",
        peer_port: free_port(),
        initial_cluster: None,
        extra: vec![],
    });
    for (k, v) in objects() {
        etcd.put_bytes(&k, v.to_string().as_bytes());
    }
    let snap = tmp.path().join("snap.db");
    etcd.ctl(&["snapshot", "save", snap.to_str().unwrap()]);
    etcd.stop();
    std::fs::copy(&snap, out).unwrap();
}

/// The committed fixture (regenerated first when ETCD_RESCUE_REGEN_K8S is
/// set) and, when etcd is installed, a fresh one.
fn snapshots() -> Vec<PathBuf> {
    use std::sync::OnceLock;
    static FRESH: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    let committed = repo().join("testdata/k8s/apply.snapshot.db");
    // Asked on every call, so each test says what it left out.
    let bin = require(Need::Etcd35);
    let fresh = FRESH.get_or_init(|| {
        if std::env::var_os("ETCD_RESCUE_REGEN_K8S").is_some() {
            generate(
                bin.as_ref().expect("ETCD_RESCUE_REGEN_K8S needs etcd 3.5.1"),
                &committed,
            );
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
    let mut v = vec![committed];
    v.extend(fresh.iter().map(|(_, p)| p.clone()));
    v
}

fn dump(snap: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "k8s",
        "dump",
        snap.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = unchanged(&[snap], || run(&args));
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    r
}

fn report(dir: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(dir.join("etcd-rescue-report.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn yaml_file(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    yaml_json(&docs[0])
}

fn yaml_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().map_or_else(|| format!("{k:?}"), str::to_string),
                        yaml_json(v),
                    )
                })
                .collect(),
        ),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_json).collect()),
        Yaml::String(s) => json!(s),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Boolean(b) => json!(b),
        _ => Value::Null,
    }
}

fn skipped_because(rep: &BTreeMap<String, Value>, key: &str, why: &str) {
    let e = &rep[key];
    assert_eq!(e["action"], "skipped", "{key}: {e}");
    assert!(e["reason"].as_str().unwrap().contains(why), "{key}: {e}");
}

fn written<'a>(rep: &'a BTreeMap<String, Value>, key: &str) -> &'a Value {
    let e = &rep[key];
    assert_eq!(e["action"], "written", "{key}: {e}");
    e
}

#[test]
fn every_velero_rule_on_the_dead_cluster() {
    for snap in snapshots() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("apply");
        dump(&snap, &out, &["--for-apply"]);
        let rep = report(&out);
        // Every object of the fixture has one line.
        assert_eq!(rep.len(), objects().len(), "{}", snap.display());
        for (key, why) in [
            ("/registry/minions/node-1", "node"),
            ("/registry/events/prod/web.17a", "event"),
            ("/registry/leases/kube-node-lease/node-1", "heartbeat"),
            (
                "/registry/replicasets/prod/web-5d9c",
                "owned by a dumped controller",
            ),
            ("/registry/pods/prod/web-5d9c-x1", "owned by a dumped controller"),
            ("/registry/pods/prod/finished", "finished"),
            ("/registry/pods/kube-system/etcd-node-1", "mirror"),
            ("/registry/jobs/prod/done", "completed"),
            ("/registry/services/endpoints/prod/web", "endpoints controller"),
            ("/registry/endpointslices/prod/web-abcde", "endpoint slice"),
            ("/registry/secrets/prod/app-token-abcde", "service-account token"),
            ("/registry/configmaps/prod/kube-root-ca.crt", "root CA"),
            ("/registry/clusterroles/view", "default RBAC"),
            (
                "/registry/apiregistration.k8s.io/apiservices/v1.apps",
                "automanaged",
            ),
        ] {
            skipped_because(&rep, key, why);
        }
        let f = |key: &str| out.join(written(&rep, key)["file"].as_str().unwrap());
        // Standalone pod: no node, no priority, no token volume or mount.
        let p = yaml_file(&f("/registry/pods/prod/debug"));
        assert!(
            p["spec"].get("nodeName").is_none() && p["spec"].get("priority").is_none(),
            "{p}"
        );
        assert_eq!(
            p["spec"]["volumes"],
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
        );
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"],
            json!([{"mountPath": "/data", "name": "data"}])
        );
        for k in ["uid", "resourceVersion", "creationTimestamp", "managedFields"] {
            assert!(p["metadata"].get(k).is_none(), "{k}");
        }
        assert!(p.get("status").is_none());
        // Job: no controller-uid anywhere.
        let j = yaml_file(&f("/registry/jobs/prod/migrate"));
        assert!(j["spec"].get("selector").is_none(), "{j}");
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"],
            json!({"job-name": "migrate"})
        );
        // Service: cluster IPs go, the node port the user asked for stays.
        let s = yaml_file(&f("/registry/services/specs/prod/web"));
        assert!(s["spec"].get("clusterIP").is_none() && s["spec"].get("clusterIPs").is_none());
        assert!(s["spec"]["ports"][0].get("nodePort").is_none(), "{s}");
        assert_eq!(s["spec"]["ports"][1]["nodePort"], 30900);
        let h = yaml_file(&f("/registry/services/specs/prod/db"));
        assert_eq!(h["spec"]["clusterIP"], "None");
        // A selector-less Service keeps its hand-made Endpoints.
        written(&rep, "/registry/services/endpoints/prod/external-db");
        // Token references and a hand-made token Secret.
        let sa = yaml_file(&f("/registry/serviceaccounts/prod/app"));
        assert!(sa.get("secrets").is_none(), "{sa}");
        assert_eq!(sa["imagePullSecrets"], json!([{"name": "regcred"}]));
        let ci = yaml_file(&f("/registry/secrets/prod/ci-token"));
        assert!(
            ci.get("data").is_none_or(|d| d.as_object().unwrap().is_empty()),
            "{ci}"
        );
        assert_eq!(
            ci["metadata"]["annotations"],
            json!({"kubernetes.io/service-account.name": "app"})
        );
        // Claims and volumes bind again by name.
        let pvc = yaml_file(&f("/registry/persistentvolumeclaims/prod/data"));
        assert_eq!(pvc["metadata"]["annotations"], json!({"team": "db"}));
        assert_eq!(pvc["spec"]["volumeName"], "pv-data");
        let pv = yaml_file(&f("/registry/persistentvolumes/pv-data"));
        assert_eq!(
            pv["spec"]["claimRef"],
            json!({"kind": "PersistentVolumeClaim", "name": "data", "namespace": "prod"})
        );
        // CRD and webhook fixes.
        let c = yaml_file(&f(
            "/registry/apiextensions.k8s.io/customresourcedefinitions/networkpolicies.crd.projectcalico.org",
        ));
        assert_eq!(c["spec"]["preserveUnknownFields"], false);
        assert_eq!(
            c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let w = yaml_file(&f("/registry/validatingwebhookconfigurations/policy"));
        assert_eq!(w["webhooks"][0]["sideEffects"], "None");
        // Each change is named in the report.
        let changes = written(&rep, "/registry/pods/prod/debug")["changes"].to_string();
        assert!(
            changes.contains("nodeName node-1") && changes.contains("app-token-abcde"),
            "{changes}"
        );
    }
}

#[test]
fn phases_follow_velero_order_and_kustomize_reads_each() {
    let snap = &snapshots()[0];
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("apply");
    let r = dump(snap, &out, &["--for-apply", "-o", "json"]);
    let phases: Vec<String> = serde_json::from_value(r.json()["phases"].clone()).unwrap();
    assert_eq!(
        phases,
        [
            "00-crds",
            "01-namespaces",
            "02-cluster",
            "03-config",
            "04-workloads",
            "05-admission"
        ]
    );
    let rep = report(&out);
    let phase_of = |key: &str| {
        written(&rep, key)["file"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        phase_of("/registry/apiextensions.k8s.io/customresourcedefinitions/ippools.crd.projectcalico.org"),
        "00-crds"
    );
    assert_eq!(
        phase_of("/registry/crd.projectcalico.org/ippools/default-ipv4-ippool"),
        "02-cluster"
    );
    assert_eq!(phase_of("/registry/persistentvolumes/pv-data"), "02-cluster");
    assert_eq!(
        phase_of("/registry/persistentvolumeclaims/prod/data"),
        "03-config"
    );
    assert_eq!(
        phase_of("/registry/crd.projectcalico.org/networkpolicies/prod/allow-web"),
        "04-workloads"
    );
    assert_eq!(
        phase_of("/registry/validatingwebhookconfigurations/policy"),
        "05-admission"
    );
    assert_eq!(
        phase_of("/registry/apiregistration.k8s.io/apiservices/v1beta1.metrics.k8s.io"),
        "05-admission"
    );
    // `kubectl kustomize` (real, offline) reads every phase, and gives
    // exactly the objects the report says were written there.
    for ph in &phases {
        let got = kustomize(&out.join(ph));
        let want: BTreeSet<(String, String)> = rep
            .values()
            .filter(|e| e["action"] == "written" && e["file"].as_str().unwrap().starts_with(ph.as_str()))
            .map(|e| {
                (
                    e["namespace"].as_str().unwrap().to_string(),
                    e["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let got: BTreeSet<(String, String)> = got.iter().map(|o| (o.2.clone(), o.3.clone())).collect();
        assert_eq!(got, want, "{ph}");
    }
}

/// (apiVersion, kind, namespace, name) of what `kubectl kustomize DIR` builds.
fn kustomize(dir: &Path) -> Vec<(String, String, String, String)> {
    let o = std::process::Command::new("kubectl")
        .args(["kustomize", dir.to_str().unwrap()])
        .output()
        .expect("kubectl is on the machine image");
    assert!(
        o.status.success(),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    docs.iter()
        .map(yaml_json)
        .map(|v| {
            let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
            (
                s("/apiVersion"),
                s("/kind"),
                s("/metadata/namespace"),
                s("/metadata/name"),
            )
        })
        .collect()
}

/// The stand-in for the apiserver (see the module doc): a `kubectl` that
/// builds each applied phase with the real `kubectl kustomize` and records
/// it, and records each wait.
const FAKE_KUBECTL: &str = r##"#!/bin/sh
set -eu
case "$1" in
apply)
  dir=""; prev=""
  for a in "$@"; do [ "$prev" = "-k" ] && dir="$a"; prev="$a"; done
  echo "APPLY $dir $*" >> "$LOG"
  kubectl kustomize "$dir" >> "$LOG.objects"
  echo "---" >> "$LOG.objects"
  echo "# end of $dir" >> "$LOG.objects"
  ;;
wait) echo "WAIT $*" >> "$LOG" ;;
*) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac
"##;

#[test]
fn apply_sh_brings_everything_in_an_order_an_apiserver_accepts() {
    let snap = &snapshots()[0];
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("apply");
    dump(snap, &out, &["--for-apply"]);
    let fake = tmp.path().join("fake-kubectl");
    std::fs::write(&fake, FAKE_KUBECTL).unwrap();
    let log = tmp.path().join("log");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = std::process::Command::new("sh")
        .arg(out.join("apply.sh"))
        .env("KUBECTL", &fake)
        .env("LOG", &log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let steps: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        steps[0].starts_with("APPLY 00-crds") && steps[0].contains("--server-side"),
        "{steps:?}"
    );
    assert!(
        steps[1].starts_with("WAIT") && steps[1].contains("condition=Established"),
        "{steps:?}"
    );
    assert!(
        steps[1].contains("crd/ippools.crd.projectcalico.org")
            && steps[1].contains("crd/networkpolicies.crd.projectcalico.org")
    );
    assert!(steps[2].contains("condition=NamesAccepted"), "{steps:?}");
    // Replay the applied objects in order against an apiserver's rules.
    let text = std::fs::read_to_string(log.with_extension("objects")).unwrap();
    let (mut namespaces, mut groups, mut applied) = (BTreeSet::new(), BTreeSet::new(), 0);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        namespaces.insert(ns.to_string());
    }
    let crds_waited = steps
        .iter()
        .position(|s| s.contains("condition=Established"))
        .unwrap();
    let webhooks_at = steps
        .iter()
        .position(|s| s.starts_with("APPLY 05-admission"))
        .unwrap();
    assert_eq!(webhooks_at, steps.len() - 1, "admission last: {steps:?}");
    for doc in yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .iter()
        .map(yaml_json)
    {
        if doc.is_null() {
            continue;
        }
        let kind = doc["kind"].as_str().unwrap();
        let group = doc["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .map_or("", |(g, _)| g);
        if let Some(ns) = doc.pointer("/metadata/namespace").and_then(Value::as_str) {
            assert!(
                namespaces.contains(ns),
                "{kind} {} before its namespace {ns}",
                doc["metadata"]["name"]
            );
        }
        if group.ends_with("projectcalico.org") {
            assert!(groups.contains(group) && crds_waited > 0, "{kind} before its CRD");
        }
        match kind {
            "Namespace" => {
                namespaces.insert(doc["metadata"]["name"].as_str().unwrap().to_string());
            }
            "CustomResourceDefinition" => {
                groups.insert(doc["spec"]["group"].as_str().unwrap().to_string());
            }
            _ => {}
        }
        applied += 1;
    }
    let rep = report(&out);
    assert_eq!(applied, rep.values().filter(|e| e["action"] == "written").count());
}

#[test]
fn owned_objects_and_node_ports_on_request() {
    let snap = &snapshots()[0];
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("a");
    dump(
        snap,
        &out,
        &["--for-apply", "--include-owned", "--preserve-nodeports"],
    );
    let rep = report(&out);
    written(&rep, "/registry/replicasets/prod/web-5d9c");
    let p = written(&rep, "/registry/pods/prod/web-5d9c-x1");
    let pod = yaml_file(&out.join(p["file"].as_str().unwrap()));
    assert!(pod["metadata"].get("ownerReferences").is_none());
    let s = written(&rep, "/registry/services/specs/prod/web");
    let svc = yaml_file(&out.join(s["file"].as_str().unwrap()));
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 31080);
    // Nodes are never restorable, whatever is asked.
    skipped_because(&rep, "/registry/minions/node-1", "node");
}

#[test]
fn namespace_mapping_moves_objects_bindings_and_claims() {
    let snap = &snapshots()[0];
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    dump(
        snap,
        &out,
        &[
            "--for-apply",
            "--namespace-mapping",
            "prod:prod-restored",
            "-n",
            "prod",
        ],
    );
    let rep = report(&out);
    let ns = written(&rep, "/registry/namespaces/prod");
    assert_eq!(ns["file"], "01-namespaces/_cluster/namespaces/prod-restored.yaml");
    assert_eq!(
        yaml_file(&out.join(ns["file"].as_str().unwrap()))["metadata"]["name"],
        "prod-restored"
    );
    let rb = written(&rep, "/registry/rolebindings/prod/app-rb");
    assert_eq!(rb["namespace"], "prod-restored");
    let v = yaml_file(&out.join(rb["file"].as_str().unwrap()));
    assert_eq!(v["metadata"]["namespace"], "prod-restored");
    assert_eq!(v["subjects"][0]["namespace"], "prod-restored");
    // -n prod: dev and cluster-scoped objects are not in it (PVs neither).
    assert!(!rep.contains_key("/registry/configmaps/dev/settings"));
    assert!(!rep.contains_key("/registry/persistentvolumes/pv-data"));
    for (_, _, ns, _) in kustomize(&out.join("04-workloads")) {
        assert_eq!(ns, "prod-restored");
    }
    // A bad mapping is refused before anything is written.
    let bad = run(&[
        "k8s",
        "dump",
        snap.to_str().unwrap(),
        "--out",
        tmp.path().join("b").to_str().unwrap(),
        "--for-apply",
        "--namespace-mapping",
        "prod",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.err);
    assert!(bad.err.contains("old:new"), "{}", bad.err);
    assert!(!tmp.path().join("b").exists());
}

#[test]
fn selector_and_kind_filters() {
    let snap = &snapshots()[0];
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("l");
    let r = dump(snap, &out, &["-l", "app=web", "-o", "json"]);
    let files: BTreeSet<String> = walk_files(&out)
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = [
        "prod/configmaps/app-config.yaml",
        "prod/deployments/web.yaml",
        "prod/pods/web-5d9c-x1.yaml",
        "prod/replicasets/web-5d9c.yaml",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(files, want);
    assert_eq!(r.json()["written"], 4);
    let out2 = tmp.path().join("k");
    dump(snap, &out2, &["--kind", "svc,cm", "--exclude-kind", "configmaps"]);
    let files = walk_files(&out2);
    assert!(
        !files.is_empty() && files.iter().all(|p| p.to_string_lossy().contains("/services/")),
        "{files:?}"
    );
    // Only Endpoints, --for-apply: whether a controller keeps one depends on
    // its Service in the source, selected or not.
    let out3 = tmp.path().join("ep");
    dump(snap, &out3, &["--for-apply", "--kind", "endpoints"]);
    let rep = report(&out3);
    assert_eq!(rep.len(), 2, "{rep:?}");
    skipped_because(
        &rep,
        "/registry/services/endpoints/prod/web",
        "endpoints controller",
    );
    written(&rep, "/registry/services/endpoints/prod/external-db");
    // An owner outside the selection is not dumped: what it owns is
    // written (without its ownerReferences), not left out.
    let out4 = tmp.path().join("own");
    dump(snap, &out4, &["--for-apply", "--kind", "pods,rs"]);
    skipped_because(
        &report(&out4),
        "/registry/pods/prod/web-5d9c-x1",
        "owned by a dumped controller",
    );
    let out5 = tmp.path().join("own2");
    dump(snap, &out5, &["--for-apply", "--kind", "pods"]);
    written(&report(&out5), "/registry/pods/prod/web-5d9c-x1");
}

/// Every file of a per-object dump as (relative path, parsed document).
fn tree(dir: &Path) -> BTreeMap<String, Value> {
    walk_files(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                yaml_file(p),
            )
        })
        .collect()
}

#[test]
fn tar_stream_and_multi_doc_hold_the_same_objects() {
    let snap = &snapshots()[0];
    let tmp = tempfile::tempdir().unwrap();
    let files = tmp.path().join("files");
    dump(snap, &files, &["--for-apply"]);
    let want = tree(&files);
    // --out -: a tar stream of the same tree, on stdout.
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
        .args(["k8s", "dump", snap.to_str().unwrap(), "--out", "-", "--for-apply"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("written"));
    let untar = tmp.path().join("untar");
    tar::Archive::new(&r.stdout[..]).unpack(&untar).unwrap();
    assert_eq!(tree(&untar), want);
    assert_eq!(
        std::fs::read(untar.join("apply.sh")).unwrap(),
        std::fs::read(files.join("apply.sh")).unwrap()
    );
    // --format multi-doc: one file per namespace (per phase), same documents.
    let multi = tmp.path().join("multi");
    dump(snap, &multi, &["--for-apply", "--format", "multi-doc"]);
    let mut got = BTreeSet::new();
    for f in walk_files(&multi)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        if f.ends_with("kustomization.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for d in yaml_rust2::YamlLoader::load_from_str(&text).unwrap() {
            got.insert(yaml_json(&d).to_string());
        }
    }
    let want_docs: BTreeSet<String> = want
        .iter()
        .filter(|(k, _)| !k.ends_with("kustomization.yaml"))
        .map(|(_, v)| v.to_string())
        .collect();
    assert_eq!(got, want_docs);
    for ph in ["03-config", "04-workloads"] {
        assert!(multi.join(ph).join("prod.yaml").is_file(), "{ph}");
        assert_eq!(
            kustomize(&multi.join(ph)).len(),
            kustomize(&files.join(ph)).len(),
            "{ph}"
        );
    }
    // --out - --format multi-doc: one YAML stream.
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
        .args([
            "k8s",
            "dump",
            snap.to_str().unwrap(),
            "--out",
            "-",
            "--format",
            "multi-doc",
        ])
        .output()
        .unwrap();
    assert!(r.status.success());
    let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&r.stdout)).unwrap();
    assert_eq!(docs.len(), objects().len());
}

#[test]
fn real_clusters_lose_what_the_new_cluster_makes() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    for snap in snaps {
        let s = snap.to_str().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("apply");
        dump(&snap, &out, &["--for-apply"]);
        let rep = report(&out);
        // The oracle is the objects themselves, as `k8s get` prints them.
        let all = |res: &str| {
            run(&["k8s", "get", s, res, "-A", "-o", "json"]).json()["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let key = |res: &str, o: &Value| {
            let m = &o["metadata"];
            match m.get("namespace").and_then(Value::as_str) {
                Some(ns) => format!("/registry/{res}/{ns}/{}", m["name"].as_str().unwrap()),
                None => format!("/registry/{res}/{}", m["name"].as_str().unwrap()),
            }
        };
        let automanaged: Vec<Value> = all("apiservices")
            .into_iter()
            .filter(|a| {
                a.pointer("/metadata/labels/kube-aggregator.kubernetes.io~1automanaged")
                    .is_some()
            })
            .collect();
        assert!(automanaged.len() >= 29, "{}", automanaged.len());
        for a in &automanaged {
            skipped_because(&rep, &key("apiregistration.k8s.io/apiservices", a), "automanaged");
        }
        for sec in all("secrets")
            .iter()
            .filter(|x| x["type"] == "kubernetes.io/service-account-token")
        {
            skipped_because(&rep, &key("secrets", sec), "service-account token");
        }
        for cm in all("configmaps")
            .iter()
            .filter(|c| c["metadata"]["name"] == "kube-root-ca.crt")
        {
            skipped_because(&rep, &key("configmaps", cm), "root CA");
        }
        for p in all("pods") {
            let k = key("pods", &p);
            let e = &rep[&k];
            if e["action"] == "written" {
                let v = yaml_file(&out.join(e["file"].as_str().unwrap()));
                assert!(v["spec"].get("nodeName").is_none(), "{k}");
                for vol in v["spec"]["volumes"].as_array().into_iter().flatten() {
                    let n = vol["name"].as_str().unwrap();
                    assert!(
                        !n.starts_with("kube-api-access-") && !n.contains("-token-"),
                        "{k}: {n}"
                    );
                }
            } else if p.pointer("/metadata/ownerReferences").is_none()
                && p.pointer("/metadata/annotations/kubernetes.io~1config.mirror")
                    .is_none()
            {
                panic!("{k}: a standalone pod was left out: {e}");
            }
        }
        for ph in walk_files(&out)
            .iter()
            .filter(|p| p.ends_with("kustomization.yaml"))
        {
            kustomize(ph.parent().unwrap());
        }
        // The forensic tree as a tar stream: more than the 1 MiB the stream
        // buffers (on the 1.24 snapshot), so the workers write to stdout
        // while the main thread holds it locked (this hung once).
        let plain = tmp.path().join("plain");
        dump(&snap, &plain, &[]);
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-rescue"))
            .args(["k8s", "dump", s, "--out", "-", "-j", "2"])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let untar = tmp.path().join("untar");
        tar::Archive::new(&r.stdout[..]).unpack(&untar).unwrap();
        assert_eq!(tree(&untar), tree(&plain), "{s}");
    }
}
