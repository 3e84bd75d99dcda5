//! The real kubeadm cluster snapshots in `../shared/fixtures/`: every live
//! object lists and decodes with no failure, the listing covers every key
//! under /registry, and `dump --for-apply` writes YAML that reads back as the
//! same objects.

mod common;

use std::path::Path;

use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::mvcc::index::read_at;
use etcd_rescue::mvcc::trailer;
use etcd_rescue::source::MappedFile;
use serde_json::Value;

fn registry_keys(s: &Path) -> Vec<String> {
    let f = MappedFile::open(s).unwrap();
    let (db, _) = Db::open(trailer::image(f.bytes())).unwrap();
    read_at(&db, None)
        .unwrap()
        .kvs
        .into_iter()
        .filter(|kv| kv.key.starts_with(b"/registry/"))
        .map(|kv| String::from_utf8(kv.key).unwrap())
        .collect()
}

#[test]
fn every_live_object_lists_and_decodes() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    for s in snaps {
        let p = s.to_str().unwrap();
        let r = unchanged(&[&s], || run(&["k8s", "ls", p, "-o", "json"]));
        assert_eq!(r.code, 0, "{}: {}", s.display(), r.err);
        let rows = r.json();
        let rows = rows.as_array().unwrap();
        let mut keys: Vec<String> = rows
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            registry_keys(&s),
            "{}: ls covers every /registry key",
            s.display()
        );
        assert!(rows.len() > 300, "{}: {} objects", s.display(), rows.len());
        for row in rows {
            assert!(row.get("problem").is_none(), "{}: {row}", s.display());
            assert!(!row["kind"].as_str().unwrap().is_empty(), "{row}");
            assert!(!row["name"].as_str().unwrap().is_empty(), "{row}");
            let enc = row["encoding"].as_str().unwrap();
            assert!(enc == "protobuf" || enc == "json", "{row}");
        }
        // Every object, fully decoded, as one List.
        let g = run(&["k8s", "get", p, "all-of-them-does-not-exist", "-A", "-o", "json"]);
        assert_eq!(g.code, 1);
        for res in [
            "pods",
            "deployments",
            "secrets",
            "configmaps",
            "nodes",
            "clusterroles",
            "apiservices",
        ] {
            let g = run(&["k8s", "get", p, res, "-A", "-o", "json"]);
            assert_eq!(g.code, 0, "{res}: {}", g.err);
            let items = g.json()["items"].as_array().unwrap().clone();
            assert!(!items.is_empty(), "{res}");
            for it in items {
                assert!(it["metadata"]["name"].is_string(), "{res}: {it}");
                assert!(it["metadata"]["resourceVersion"].is_string(), "{res}: {it}");
            }
        }
    }
}

#[test]
fn get_prints_what_kubectl_prints() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    let s = snaps
        .iter()
        .find(|p| p.to_string_lossy().contains("1.24"))
        .unwrap();
    let r = run(&[
        "k8s",
        "get",
        s.to_str().unwrap(),
        "deploy",
        "coredns",
        "-n",
        "kube-system",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let d = r.json();
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["metadata"]["creationTimestamp"], "2023-04-04T06:32:00Z");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 1);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["memory"], "170Mi");
    // A pointer set to false prints; a zero non-pointer with omitempty does not.
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(d["spec"]["template"]["spec"].get("hostNetwork").is_none());
    assert_eq!(
        d["spec"]["template"]["spec"]["securityContext"],
        serde_json::json!({})
    );
    let y = run(&[
        "k8s",
        "get",
        s.to_str().unwrap(),
        "deploy",
        "coredns",
        "-n",
        "kube-system",
        "-o",
        "yaml",
    ]);
    assert!(y.out.contains("\n  replicas: 2\n"), "{}", y.out);
    assert!(y.out.contains("      - -conf\n"), "{}", y.out);
}

fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_string(), yaml_to_json(v)))
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

/// Parses every manifest of a dump and checks it is a Kubernetes object
/// (a `--for-apply` dump also holds `apply.sh`, the report and a
/// kustomization per phase).
pub fn check_manifests(dir: &Path, for_apply: bool) -> usize {
    let mut n = 0;
    for f in walk_files(dir) {
        let name = f.file_name().unwrap().to_string_lossy();
        if for_apply && (name == "kustomization.yaml" || !name.ends_with(".yaml")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let docs =
            yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(docs.len(), 1, "{}", f.display());
        let v = yaml_to_json(&docs[0]);
        assert!(
            v["apiVersion"].is_string() && v["kind"].is_string(),
            "{}",
            f.display()
        );
        assert!(v["metadata"]["name"].is_string(), "{}", f.display());
        if for_apply {
            for k in [
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "managedFields",
                "ownerReferences",
            ] {
                assert!(v["metadata"].get(k).is_none(), "{}: {k}", f.display());
            }
            assert!(v.get("status").is_none(), "{}", f.display());
        }
        n += 1;
    }
    n
}

#[test]
fn dump_for_apply_is_valid_kubernetes_yaml() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    for s in snaps {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("apply");
        let r = run(&[
            "k8s",
            "dump",
            s.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--for-apply",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.out, r.err);
        assert!(r.out.contains("written"), "{}", r.out);
        let n = check_manifests(&out, true);
        let written = std::fs::read_to_string(out.join("etcd-rescue-report.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"action\":\"written\""))
            .count();
        assert!(n > 50 && n == written, "{n} files, {written} written");
        // The plain dump reads back as exactly what `get -o json` prints.
        let full = tmp.path().join("full");
        let r = run(&[
            "k8s",
            "dump",
            s.to_str().unwrap(),
            "--out",
            full.to_str().unwrap(),
            "-n",
            "kube-system",
        ]);
        assert_eq!(r.code, 0, "{}", r.err);
        let g = run(&[
            "k8s",
            "get",
            s.to_str().unwrap(),
            "pods",
            "-n",
            "kube-system",
            "-o",
            "json",
        ]);
        for item in g.json()["items"].as_array().unwrap() {
            let name = item["metadata"]["name"].as_str().unwrap();
            let f = full.join("kube-system/pods").join(format!("{name}.yaml"));
            let docs = yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            assert_eq!(&yaml_to_json(&docs[0]), item, "{}", f.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let secrets = full.join("kube-system/secrets");
            for f in walk_files(&secrets) {
                let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", f.display());
            }
        }
    }
}
