//! `k8s diff`: the Kubernetes objects added, deleted and changed (field by
//! field) between two revisions of our own fixture, between a copy of it
//! with more writes (a Secret rotated, a status-only update, a value that
//! does not decode), and between the two real kubeadm cluster snapshots.
//! Expected values are read from the fixture with `k8s ls` and `k8s get`,
//! not typed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use common::*;
use etcd_rescue::bolt::Db;
use etcd_rescue::bolt::writer::Writer;
use etcd_rescue::mvcc::revision::Revision;
use etcd_rescue::mvcc::trailer;
use etcd_rescue::pb::mvccpb::KeyValue;
use prost::Message;
use serde_json::{Value, json};

/// (resource, namespace, name).
type Id = (String, String, String);

fn fixture() -> PathBuf {
    repo().join("testdata/k8s/objects.snapshot.db")
}

fn id(v: &Value) -> Id {
    let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_string();
    (s("resource"), s("namespace"), s("name"))
}

/// `k8s ls -o json` rows by object (with `extra` arguments).
fn ls(src: &Path, extra: &[&str]) -> BTreeMap<Id, Value> {
    let mut args = vec!["k8s", "ls", src.to_str().unwrap(), "-o", "json"];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert!(r.code <= 1, "{args:?}: {}", r.err);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (id(row), row.clone()))
        .collect()
}

/// `k8s get ... -o json` of one object.
fn get(src: &Path, args: &[&str]) -> Value {
    let mut a = vec!["k8s", "get", src.to_str().unwrap()];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let r = run(&a);
    assert_eq!(r.code, 0, "{a:?}: {}", r.err);
    r.json()
}

/// `k8s diff ... -o json`: exit code, report, stderr.
fn diff_json(args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["k8s", "diff"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let r = run(&a);
    assert!(r.code <= 1, "{a:?}: {}", r.err);
    (r.code, r.json(), r.err)
}

fn ids(report: &Value, list: &str) -> BTreeSet<Id> {
    report[list].as_array().unwrap().iter().map(id).collect()
}

fn find<'a>(report: &'a Value, list: &str, resource: &str, name: &str) -> &'a Value {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["resource"] == resource && o["name"] == name)
        .unwrap_or_else(|| panic!("{resource}/{name} not in {list}: {report:#}"))
}

fn field<'a>(changed: &'a Value, path: &str) -> &'a Value {
    changed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no field {path} in {changed:#}"))
}

/// The summary line's counts agree with the report.
fn assert_summary(err: &str, r: &Value) {
    let want = format!(
        "{} added, {} deleted, {} changed between revision {} and {}",
        r["added"].as_array().unwrap().len(),
        r["deleted"].as_array().unwrap().len(),
        r["changed"].as_array().unwrap().len(),
        r["revisionA"],
        r["revisionB"]
    );
    assert!(err.contains(&want), "stderr lacks {want:?}: {err}");
}

/// Revision A of the fixture tests: the one where the deleted ConfigMap
/// was written (it is live there; the Deployment has its first version).
fn old_config_rows(src: &Path) -> (i64, i64) {
    let all = ls(src, &["--include-deleted"]);
    let old = all
        .values()
        .find(|r| r["deletedAt"].is_i64() && r["kind"] == "ConfigMap")
        .expect("the fixture has a deleted ConfigMap");
    (
        old["revision"].as_i64().unwrap(),
        old["deletedAt"].as_i64().unwrap(),
    )
}

#[test]
fn two_revisions_of_one_snapshot() {
    let f = fixture();
    let p = f.to_str().unwrap();
    let (rev_a, deleted_at) = old_config_rows(&f);
    let at_a = ls(&f, &["--rev", &rev_a.to_string()]);
    let at_b = ls(&f, &[]);
    let (code, r, err) = unchanged(&[&f], || diff_json(&[p, "--rev", &rev_a.to_string()]));
    assert_eq!(code, 1, "differences: exit 1");
    assert_summary(&err, &r);
    assert_eq!(r["revisionA"], rev_a);
    let head = at_b
        .values()
        .map(|r| r["revision"].as_i64().unwrap())
        .max()
        .unwrap();
    assert_eq!(r["revisionB"], head);
    // Added and deleted: exactly what the two listings say.
    let a_ids: BTreeSet<Id> = at_a.keys().cloned().collect();
    let b_ids: BTreeSet<Id> = at_b.keys().cloned().collect();
    assert_eq!(ids(&r, "added"), &b_ids - &a_ids);
    assert_eq!(ids(&r, "deleted"), &a_ids - &b_ids);
    assert!(!ids(&r, "added").is_empty());
    // Changed: the objects written in between that are in both.
    let rewritten: BTreeSet<Id> = a_ids
        .intersection(&b_ids)
        .filter(|i| at_a[*i]["revision"] != at_b[*i]["revision"])
        .cloned()
        .collect();
    assert_eq!(ids(&r, "changed"), rewritten);
    assert!(r["undecodable"].as_array().unwrap().is_empty(), "{r:#}");
    // The Deployment's replicas, old and new as `k8s get` shows them.
    let old = get(&f, &["deploy", "web", "--rev", &rev_a.to_string()]);
    let new = get(&f, &["deploy", "web"]);
    assert_ne!(old["spec"]["replicas"], new["spec"]["replicas"]);
    let web = find(&r, "changed", "deployments", "web");
    assert_eq!(web["kind"], "Deployment");
    assert_eq!(web["namespace"], "default");
    assert_eq!(web["revisionA"], at_a[&id(web)]["revision"]);
    assert_eq!(web["revisionB"], at_b[&id(web)]["revision"]);
    let replicas = field(web, "spec.replicas");
    assert_eq!(replicas["old"], old["spec"]["replicas"]);
    assert_eq!(replicas["new"], new["spec"]["replicas"]);
    // generation is kept (it says the spec changed); resourceVersion is not compared.
    assert_eq!(
        field(web, "metadata.generation")["old"],
        old["metadata"]["generation"]
    );
    let paths: Vec<&str> = web["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["metadata.generation", "spec.replicas"], "{web:#}");
    // The deleted ConfigMap, with the revision of its delete.
    let oc = find(&r, "deleted", "configmaps", "old-config");
    assert_eq!(oc["kind"], "ConfigMap");
    assert_eq!(oc["revision"], rev_a);
    assert_eq!(oc["deletedAt"], deleted_at);
    // Added objects that do not decode say why (and are still added).
    for a in r["added"].as_array().unwrap() {
        let row = &at_b[&id(a)];
        assert_eq!(
            a["problem"],
            row.get("problem").cloned().unwrap_or(Value::Null),
            "{a}"
        );
        assert_eq!(a["revision"], row["revision"]);
    }
    // The table: the replicas line under the Deployment, the ConfigMap deleted.
    let t = run(&["k8s", "diff", p, "--rev", &rev_a.to_string()]);
    assert_eq!(t.code, 1);
    let line = format!(
        "~ spec.replicas: {} -> {}",
        old["spec"]["replicas"], new["spec"]["replicas"]
    );
    assert!(t.out.contains(&line), "{line} not in:\n{}", t.out);
    let rows: Vec<&str> = t.out.lines().collect();
    assert!(rows[0].starts_with("CHANGE") && rows[0].contains("RESOURCE") && rows[0].contains("NAMESPACE"));
    let web_row = rows
        .iter()
        .position(|l| l.starts_with("changed") && l.contains("deployments") && l.contains("web"))
        .unwrap();
    assert!(
        rows[web_row + 1..].iter().take(2).any(|l| l.trim() == line),
        "{}",
        t.out
    );
    assert!(
        rows.iter().any(|l| l.starts_with("deleted")
            && l.contains("old-config")
            && l.contains(&format!("(deleted at {deleted_at})"))),
        "{}",
        t.out
    );
    assert_summary(&t.err, &r);
    // --rev-b: B at the revision before the delete has the ConfigMap still.
    let (_, r2, _) = diff_json(&[
        p,
        "--rev",
        &rev_a.to_string(),
        "--rev-b",
        &(deleted_at - 1).to_string(),
    ]);
    assert!(ids(&r2, "deleted").is_empty(), "{r2:#}");
    assert_eq!(r2["revisionB"], deleted_at - 1);
}

#[test]
fn a_file_against_itself_is_empty() {
    let f = fixture();
    let p = f.to_str().unwrap();
    // Two paths, the same bytes; and one source at one revision twice. The
    // fixture holds values that cannot be decoded (KMS, no keys given):
    // identical stored bytes are equal without decoding.
    let (rev, _) = old_config_rows(&f);
    let rev = rev.to_string();
    // One source and no revision is a mistake (a second source forgotten).
    let one = run(&["k8s", "diff", p]);
    assert_eq!(one.code, 2, "{}", one.err);
    assert!(one.err.contains("give a second source"), "{}", one.err);
    for args in [vec![p, p], vec![p, "--rev", &rev, "--rev-b", &rev]] {
        let mut a = vec!["k8s", "diff"];
        a.extend_from_slice(&args);
        let t = run(&a);
        assert_eq!(t.code, 0, "{args:?}: {}", t.err);
        assert_eq!(t.out, "", "{args:?}");
        assert!(
            t.err.contains("0 added, 0 deleted, 0 changed between revision"),
            "{}",
            t.err
        );
        let (code, r, _) = diff_json(&args);
        assert_eq!(code, 0);
        for list in ["added", "deleted", "changed", "undecodable"] {
            assert_eq!(r[list], json!([]), "{list}");
        }
    }
    // Comparing a source with itself at one revision is noted.
    assert!(run(&["k8s", "diff", p]).err.contains("with itself"));
}

#[test]
fn filters_narrow_it() {
    let f = fixture();
    let p = f.to_str().unwrap();
    let rev = ls(&f, &[]).values().find(|r| r["kind"] == "Deployment").unwrap()["createRevision"]
        .as_i64()
        .unwrap()
        .to_string();
    let (_, all, _) = diff_json(&[
        p,
        "--rev",
        &rev,
        "--encryption-config",
        "testdata/k8s/encryption-config.yaml",
    ]);
    let everything = |r: &Value| -> BTreeSet<(String, Id)> {
        ["added", "deleted", "changed", "undecodable"]
            .iter()
            .flat_map(|l| r[*l].as_array().unwrap().iter().map(|o| (l.to_string(), id(o))))
            .collect()
    };
    let full = everything(&all);
    // Objects that do not decode: their labels cannot be read.
    let unreadable: BTreeSet<Id> = ["added", "deleted"]
        .iter()
        .flat_map(|l| {
            all[*l]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["problem"].is_string())
                .map(id)
        })
        .chain(ids(&all, "undecodable"))
        .collect();
    assert!(
        !unreadable.is_empty(),
        "the fixture has objects that do not decode"
    );
    assert!(full.len() > 5, "{all:#}");
    let enc = repo().join("testdata/k8s/encryption-config.yaml");
    let narrowed = |extra: &[&str]| {
        let mut a = vec![p, "--rev", &rev, "--encryption-config", enc.to_str().unwrap()];
        a.extend_from_slice(extra);
        everything(&diff_json(&a).1)
    };
    // -n: the namespace's objects and its Namespace object.
    let want: BTreeSet<_> = full
        .iter()
        .filter(|(_, (res, ns, name))| ns == "prod" || (res == "namespaces" && name == "prod"))
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(narrowed(&["-n", "prod"]), want);
    // --kind, by short name and by kind; --exclude-kind.
    let of = |res: &str| -> BTreeSet<_> { full.iter().filter(|(_, i)| i.0 == res).cloned().collect() };
    assert!(!of("deployments").is_empty());
    assert_eq!(narrowed(&["--kind", "deploy"]), of("deployments"));
    assert_eq!(
        narrowed(&["--kind", "Secret,cm"]),
        &of("secrets") | &of("configmaps")
    );
    assert_eq!(narrowed(&["--exclude-kind", "secrets"]), &full - &of("secrets"));
    // -l: decided on each object's labels (read with `k8s get`, at B, or at
    // A for a deleted object); objects whose labels cannot be read are kept.
    let labelled: BTreeSet<_> = full
        .iter()
        .filter(|(list, i)| {
            if unreadable.contains(i) {
                return true;
            }
            let (res, ns, name) = i;
            let mut a = vec![res.as_str(), name.as_str(), "--include-deleted"];
            if !ns.is_empty() {
                a.extend_from_slice(&["-n", ns]);
            }
            if list == "deleted" {
                a.extend_from_slice(&["--rev", &rev]);
            }
            let mut args = a.clone();
            args.extend_from_slice(&["--encryption-config", enc.to_str().unwrap()]);
            get(&f, &args)["metadata"]["labels"]["app"] == "web"
        })
        .cloned()
        .collect();
    assert!(labelled.len() > unreadable.len());
    assert!(labelled.len() < full.len());
    assert_eq!(narrowed(&["-l", "app=web"]), labelled);
    let prod: BTreeSet<_> = labelled.iter().filter(|(_, i)| i.1 == "prod").cloned().collect();
    assert_eq!(narrowed(&["-l", "app=web", "-n", "prod"]), prod);
    // A bad selector cannot run.
    assert_eq!(run(&["k8s", "diff", p, "-l", "env in prod"]).code, 2);
}

/// A copy of the fixture with three more writes after its head: the Secret
/// `plain` with a rotated password, a new key and kubectl's
/// last-applied-configuration annotation (holding the data); the
/// Deployment with only its status changed; a ConfigMap overwritten by a
/// value that is not a Kubernetes object. Returns the file, the fixture's
/// head revision, and the rotated password.
fn with_more_writes(dir: &Path) -> (PathBuf, i64, String) {
    let f = fixture();
    let rows = ls(&f, &[]);
    let head = rows
        .values()
        .map(|r| r["revision"].as_i64().unwrap())
        .max()
        .unwrap();
    let row = |res: &str, name: &str| {
        rows.values()
            .find(|r| r["resource"] == res && r["name"] == name)
            .unwrap()
            .clone()
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let served = |args: &[&str]| {
        let mut v = get(&f, args);
        v["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        v
    };
    let password = "rotated-password-0042".to_string();
    let mut secret = served(&["secret", "plain"]);
    secret["data"]["password"] = json!(b64(&password));
    secret["data"]["extra"] = json!(b64("extra-value-99"));
    secret["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration":
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"password": b64(&password)}, "stringData": {"clear": password}}).to_string()
    });
    let mut web = served(&["deploy", "web"]);
    web["status"] =
        json!({"replicas": 2, "readyReplicas": 2, "observedGeneration": web["metadata"]["generation"]});
    let writes: Vec<(Value, Vec<u8>)> = vec![
        (row("secrets", "plain"), serde_json::to_vec(&secret).unwrap()),
        (row("deployments", "web"), serde_json::to_vec(&web).unwrap()),
        (
            row("configmaps", "app-config"),
            b"not a Kubernetes object".to_vec(),
        ),
    ];
    let bytes = std::fs::read(&f).unwrap();
    let (db, _) = Db::open(trailer::image(&bytes)).unwrap();
    let out = dir.join("more-writes.db");
    let file = std::fs::File::create(&out).unwrap();
    let mut w = Writer::new(std::io::BufWriter::new(file), 4096, 0.5, 7).unwrap();
    let names: Vec<Vec<u8>> = db.root().iter().map(|e| e.unwrap().key.to_vec()).collect();
    for name in &names {
        let b = db.bucket(name).unwrap().unwrap();
        let mut items: Vec<(Vec<u8>, Vec<u8>)> = b
            .iter()
            .map(|e| {
                let e = e.unwrap();
                (e.key.to_vec(), e.value.to_vec())
            })
            .collect();
        if name == b"key" {
            for (i, (row, value)) in writes.iter().enumerate() {
                let rev = head + 1 + i as i64;
                let kv = KeyValue {
                    key: row["key"].as_str().unwrap().as_bytes().to_vec(),
                    create_revision: row["createRevision"].as_i64().unwrap(),
                    mod_revision: rev,
                    version: row["version"].as_i64().unwrap() + 1,
                    value: value.clone(),
                    lease: 0,
                };
                items.push((
                    Revision { main: rev, sub: 0 }.to_key().to_vec(),
                    kv.encode_to_vec(),
                ));
            }
        }
        w.bucket(
            name,
            b.sequence(),
            items.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )
        .unwrap();
    }
    let (_, out_w) = w.finish().unwrap();
    out_w.into_inner().unwrap().sync_all().unwrap();
    (out, head, password)
}

#[test]
fn secret_values_are_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, head, password) = with_more_writes(tmp.path());
    let p = db.to_str().unwrap();
    let h = head.to_string();
    let old_password = get(&fixture(), &["secret", "plain"])["data"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    let old_len = base64::engine::general_purpose::STANDARD
        .decode(&old_password)
        .unwrap()
        .len();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (code, r, _) = diff_json(&[p, "--rev", &h]);
    assert_eq!(code, 1);
    let s = find(&r, "changed", "secrets", "plain");
    assert_eq!(
        field(s, "data.password")["old"],
        format!("<redacted, {old_len} bytes>")
    );
    assert_eq!(
        field(s, "data.password")["new"],
        format!("<redacted, {} bytes>", password.len())
    );
    assert_eq!(
        field(s, "data.extra")["new"],
        format!("<redacted, {} bytes>", "extra-value-99".len())
    );
    assert!(field(s, "data.extra").get("old").is_none(), "absent in A: no old");
    let ann = field(s, "metadata.annotations");
    assert!(ann.get("old").is_none());
    assert!(
        ann["new"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap()
            .starts_with("<redacted, "),
        "{ann}"
    );
    // Nothing of the values anywhere, in JSON or in the table.
    let t = run(&["k8s", "diff", p, "--rev", &h]);
    assert!(t.out.contains("~ data.password: <redacted, "), "{}", t.out);
    for out in [r.to_string(), t.out.clone()] {
        for leak in [
            password.as_str(),
            &b64(&password),
            &old_password,
            &b64("extra-value-99"),
            "extra-value-99",
        ] {
            assert!(!out.contains(leak), "{leak} leaked:\n{out}");
        }
    }
    // --show-secrets shows them as stored.
    let (_, r, _) = diff_json(&[p, "--rev", &h, "--show-secrets"]);
    let s = find(&r, "changed", "secrets", "plain");
    assert_eq!(field(s, "data.password")["old"], old_password);
    assert_eq!(field(s, "data.password")["new"], b64(&password));
}

#[test]
fn status_is_compared_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, head, _) = with_more_writes(tmp.path());
    let p = db.to_str().unwrap();
    let h = head.to_string();
    let (_, r, err) = diff_json(&[p, "--rev", &h]);
    assert!(!ids(&r, "changed").iter().any(|i| i.0 == "deployments"), "{r:#}");
    assert_eq!(r["changedOnlyInIgnoredFields"], 1);
    assert!(
        err.contains("1 more changed only in status or managedFields"),
        "{err}"
    );
    let (_, r, _) = diff_json(&[p, "--rev", &h, "--include-status"]);
    let web = find(&r, "changed", "deployments", "web");
    let paths: Vec<&str> = web["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "status.replicas",
            "status.readyReplicas",
            "status.observedGeneration"
        ],
        "{web:#}"
    );
    assert_eq!(field(web, "status.replicas")["new"], 2);
    assert!(field(web, "status.replicas").get("old").is_none());
    assert_eq!(r["changedOnlyInIgnoredFields"], 0);
}

#[test]
fn objects_that_do_not_decode_are_never_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, head, _) = with_more_writes(tmp.path());
    let p = db.to_str().unwrap();
    let (code, r, err) = diff_json(&[p, "--rev", &head.to_string()]);
    assert_eq!(code, 1);
    let u = find(&r, "undecodable", "configmaps", "app-config");
    assert_eq!(u["kind"], "ConfigMap", "A's kind, where B's is not known");
    assert!(u.get("problemA").is_none());
    assert!(
        u["problemB"]
            .as_str()
            .unwrap()
            .contains("not a Kubernetes object"),
        "{u}"
    );
    assert_eq!(u["revisionB"], head + 3);
    assert_eq!(u["revisionA"], ls(&fixture(), &[])[&id(u)]["revision"]);
    assert!(err.contains("1 changed but could not be decoded"), "{err}");
    let t = run(&["k8s", "diff", p, "--rev", &head.to_string()]);
    assert!(t.out.contains("! B: not a Kubernetes object"), "{}", t.out);
    // Only the unreadable one left: still exit 1.
    let (code, r, _) = diff_json(&[p, "--rev", &head.to_string(), "--kind", "cm"]);
    assert_eq!(code, 1);
    assert_eq!(r["changed"], json!([]));
    assert_eq!(r["undecodable"].as_array().unwrap().len(), 1);
}

#[test]
fn json_shape() {
    let f = fixture();
    let p = f.to_str().unwrap();
    let (rev_a, _) = old_config_rows(&f);
    let (_, r, _) = diff_json(&[p, "--rev", &rev_a.to_string()]);
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "sourceA",
            "sourceB",
            "revisionA",
            "revisionB",
            "added",
            "deleted",
            "changed",
            "undecodable",
            "changedOnlyInIgnoredFields"
        ]
    );
    assert_eq!(r["sourceA"], p);
    assert_eq!(r["sourceB"], p);
    let entry = |o: &Value| -> BTreeSet<String> { o.as_object().unwrap().keys().cloned().collect() };
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    let basic = set(&[
        "resource",
        "namespace",
        "name",
        "kind",
        "apiVersion",
        "revision",
        "key",
    ]);
    let oc = find(&r, "deleted", "configmaps", "old-config");
    assert_eq!(entry(oc), &basic | &set(&["deletedAt"]));
    let svc = find(&r, "added", "services", "web");
    assert_eq!(entry(svc), basic);
    let web = find(&r, "changed", "deployments", "web");
    assert_eq!(
        entry(web),
        set(&[
            "resource",
            "namespace",
            "name",
            "kind",
            "apiVersion",
            "revisionA",
            "revisionB",
            "key",
            "fields"
        ])
    );
    for f in web["fields"].as_array().unwrap() {
        assert_eq!(entry(f), set(&["path", "old", "new"]));
    }
    // YAML and JSON Lines carry the same.
    let y = run(&["k8s", "diff", p, "--rev", &rev_a.to_string(), "-o", "yaml"]);
    assert_eq!(y.code, 1);
    assert!(
        y.out.contains("revisionA: ") && y.out.contains("path: spec.replicas"),
        "{}",
        y.out
    );
    let l = run(&["k8s", "diff", p, "--rev", &rev_a.to_string(), "-o", "lines"]);
    let lines: Vec<Value> = l.out.lines().map(|s| serde_json::from_str(s).unwrap()).collect();
    let n = |k: &str| r[k].as_array().unwrap().len();
    assert_eq!(
        lines.len(),
        n("added") + n("deleted") + n("changed") + n("undecodable")
    );
    assert!(
        lines
            .iter()
            .any(|v| v["change"] == "changed" && v["name"] == "web")
    );
}

#[test]
fn help_revisions_and_bad_usage() {
    let h = run(&["k8s", "diff", "--help"]);
    assert_eq!(h.code, 0);
    for needle in [
        "SRC_A",
        "SRC_B",
        "--rev-b",
        "--include-status",
        "--show-secrets",
        "-l, --selector",
        "Exit codes: 0 no differences, 1 differences",
    ] {
        assert!(h.out.contains(needle), "help lacks {needle}:\n{}", h.out);
    }
    let k = run(&["k8s", "--help"]);
    assert!(k.out.contains("diff"), "{}", k.out);
    let f = fixture();
    let p = f.to_str().unwrap();
    // A revision after the head, a missing file: exit 2.
    let r = run(&["k8s", "diff", p, "--rev-b", "999999"]);
    assert_eq!(r.code, 2, "{}", r.err);
    let r = run(&["k8s", "diff", p, "/nonexistent/b.db"]);
    assert_eq!(r.code, 2, "{}", r.err);
}

/// Every string in `v` is a redaction placeholder.
fn assert_redacted(v: &Value) {
    match v {
        Value::String(s) => assert!(s.starts_with("<redacted, ") && s.ends_with(" bytes>"), "{s}"),
        Value::Object(m) => m.values().for_each(assert_redacted),
        Value::Array(a) => a.iter().for_each(assert_redacted),
        _ => {}
    }
}

#[test]
fn real_cluster_snapshots_against_each_other() {
    let Some(snaps) = shared_k8s_snapshots() else {
        return;
    };
    let (a, b) = (&snaps[0], &snaps[1]);
    let la = ls(a, &[]);
    let lb = ls(b, &[]);
    let (ia, ib): (BTreeSet<Id>, BTreeSet<Id>) = (la.keys().cloned().collect(), lb.keys().cloned().collect());
    let (code, r, err) = unchanged(&[a.as_path(), b.as_path()], || {
        diff_json(&[a.to_str().unwrap(), b.to_str().unwrap()])
    });
    assert_eq!(code, 1);
    assert_summary(&err, &r);
    assert_eq!(ids(&r, "added"), &ib - &ia);
    assert_eq!(ids(&r, "deleted"), &ia - &ib);
    let both = &ia & &ib;
    let changed = ids(&r, "changed");
    assert!(changed.is_subset(&both));
    assert!(
        r["undecodable"].as_array().unwrap().is_empty(),
        "both clusters decode fully"
    );
    // Two different clusters: most objects in both differ (uids, times).
    assert!(!changed.is_empty() && changed.len() <= both.len());
    eprintln!(
        "{} vs {}: {} in A, {} in B, {} added, {} deleted, {} changed, {} in both",
        a.display(),
        b.display(),
        ia.len(),
        ib.len(),
        ids(&r, "added").len(),
        ids(&r, "deleted").len(),
        changed.len(),
        both.len()
    );
    for c in r["changed"].as_array().unwrap() {
        let fields = c["fields"].as_array().unwrap();
        assert!(!fields.is_empty(), "{c}");
        for f in fields {
            let path = f["path"].as_str().unwrap();
            assert!(
                !path.starts_with("metadata.resourceVersion")
                    && !path.starts_with("metadata.managedFields")
                    && !path.starts_with("status"),
                "{path} is not compared by default"
            );
            assert!(f.get("old").is_some() || f.get("new").is_some(), "{f}");
        }
        assert_eq!(c["revisionA"], la[&id(c)]["revision"]);
        assert_eq!(c["revisionB"], lb[&id(c)]["revision"]);
        if c["kind"] == "Secret" {
            for f in fields
                .iter()
                .filter(|f| f["path"].as_str().unwrap().starts_with("data"))
            {
                for side in ["old", "new"] {
                    if let Some(v) = f.get(side) {
                        assert_redacted(v);
                    }
                }
            }
        }
    }
    // The other way round: added and deleted swap.
    let (_, back, _) = diff_json(&[b.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(ids(&back, "added"), ids(&r, "deleted"));
    assert_eq!(ids(&back, "changed"), changed);
    // Each against itself: nothing.
    for s in [a, b] {
        let (code, r, _) = diff_json(&[s.to_str().unwrap(), s.to_str().unwrap()]);
        assert_eq!(code, 0);
        assert_eq!(r["changed"], json!([]));
    }
}
