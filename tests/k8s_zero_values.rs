//! Go zero values, kind by kind: what the apiserver prints for a value that
//! is absent, empty or zero on the wire, following gogo's generated
//! `Unmarshal` (k8s.io/api `generated.pb.go`) and then `encoding/json`.
//!
//! Each object is real: encoded with the `k8s-pb` types (prost, Kubernetes
//! 1.34), wrapped in `k8s\0` + runtime.Unknown as the apiserver stores it,
//! and decoded through `k8s::object::decode` as a stored value. Where prost
//! cannot write the form (a packed run of zero bytes, a field twice, an
//! invalid UTF-8 string, unsorted map entries), the bytes are built by hand
//! around prost-encoded parts.

use std::collections::BTreeMap;

use etcd_rescue::k8s::decode::Decoder;
use etcd_rescue::k8s::object::{self, Context};
use etcd_rescue::k8s::schema::Schema;
use etcd_rescue::mvcc::kv::KeyValueRef;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::certificates::v1 as certs;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::events::v1 as events;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::api::resource::v1 as dra;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{Value, json};

/// Unix seconds of 0001-01-01T00:00:00Z: Go's zero `time.Time`.
const YEAR_ONE: i64 = -62_135_596_800;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn objmeta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        namespace: s("default"),
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        ..Default::default()
    })
}

/// A length-delimited field: tag, length, bytes.
fn field(num: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(num) << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes `raw` (the protobuf of an `api_version` `kind`) as the stored
/// value `k8s\0` + runtime.Unknown, through the library's object decoder.
fn decode(api_version: &str, kind: &str, raw: Vec<u8>) -> Value {
    let u = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        content_encoding: s(""),
        content_type: s(""),
    };
    let value = [b"k8s\0".as_slice(), &u.encode_to_vec()].concat();
    let key = format!("/registry/{kind}/default/x");
    let kv = KeyValueRef {
        key: key.as_bytes(),
        create_revision: 2,
        mod_revision: 2,
        version: 1,
        value: &value,
        lease: 0,
    };
    let cx = Context {
        keyring: None,
        prefix: "/registry",
    };
    let o = object::decode(&kv, None, cx);
    assert_eq!(o.problem, None, "{api_version} {kind} does not decode");
    o.body.expect("a body")
}

/// `path` (`/`-separated, as `Value::pointer`) of `v`, or a panic naming it.
fn at<'v>(v: &'v Value, path: &str) -> &'v Value {
    v.pointer(path).unwrap_or_else(|| panic!("no {path} in {v:#}"))
}

fn secret_with_data(data: &[(&str, &[u8])]) -> core::Secret {
    core::Secret {
        metadata: objmeta("s"),
        data: data.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
        r#type: s("Opaque"),
        ..Default::default()
    }
}

// ---- map values: each entry starts at the generated code's zero value ----

/// core/v1 `Secret.Unmarshal`: `mapvalue := []byte{}`; Go's `Marshal`
/// writes no field 2 for a nil value (`if v != nil`) and prost skips the
/// default (empty) value: `""`, not `null`.
#[test]
fn secret_data_value_absent_is_empty_string() {
    let raw = secret_with_data(&[("csrf", b""), ("token", b"abc")]).encode_to_vec();
    // The entry really is the key alone: field 2 (data) { field 1 "csrf" }.
    let entry = field(2, &field(1, b"csrf"));
    assert!(raw.windows(entry.len()).any(|w| w == entry.as_slice()));
    let v = decode("v1", "Secret", raw);
    assert_eq!(at(&v, "/data"), &json!({"csrf": "", "token": "YWJj"}));
}

/// The form Go writes for `[]byte{}` (field 2 of length 0) reads the same.
#[test]
fn secret_data_value_present_empty_is_empty_string() {
    let head = secret_with_data(&[]).encode_to_vec();
    let entry = [field(1, b"csrf"), field(2, b"")].concat();
    let raw = [head, field(2, &entry)].concat();
    let v = decode("v1", "Secret", raw);
    assert_eq!(at(&v, "/data"), &json!({"csrf": ""}));
}

/// `var mapkey string`: an entry without field 1 (prost skips the default
/// key) has the key "". `StringData`: `var mapvalue string`.
#[test]
fn map_key_absent_is_empty_string_and_string_value_absent_is_empty() {
    let mut sec = secret_with_data(&[("", b"x")]);
    sec.string_data = BTreeMap::from([("k".to_string(), String::new())]);
    let v = decode("v1", "Secret", sec.encode_to_vec());
    assert_eq!(at(&v, "/data"), &json!({"": "eA=="}));
    assert_eq!(at(&v, "/stringData"), &json!({"k": ""}));
}

/// core/v1 `ConfigMap.Unmarshal`, `BinaryData`: `mapvalue := []byte{}`.
#[test]
fn configmap_binary_data_value_absent_is_empty_string() {
    let cm = core::ConfigMap {
        metadata: objmeta("cm"),
        data: BTreeMap::from([("empty".to_string(), String::new())]),
        binary_data: BTreeMap::from([("blob".to_string(), Vec::new())]),
        ..Default::default()
    };
    let v = decode("v1", "ConfigMap", cm.encode_to_vec());
    assert_eq!(at(&v, "/binaryData"), &json!({"blob": ""}));
    assert_eq!(at(&v, "/data"), &json!({"empty": ""}));
}

/// certificates/v1 and authentication/v1 `UserInfo.Unmarshal`:
/// `mapvalue := &ExtraValue{}`, a non-nil empty slice: `[]`, not `null`.
#[test]
fn extra_value_absent_is_empty_list() {
    let extra = BTreeMap::from([
        ("scopes".to_string(), certs::ExtraValue { items: vec![] }),
        (
            "groups".to_string(),
            certs::ExtraValue {
                items: vec!["a".into()],
            },
        ),
    ]);
    let csr = certs::CertificateSigningRequest {
        metadata: objmeta("csr"),
        spec: Some(certs::CertificateSigningRequestSpec {
            request: Some(b"pem".to_vec()),
            signer_name: s("kubernetes.io/kube-apiserver-client"),
            extra,
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = decode(
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        csr.encode_to_vec(),
    );
    assert_eq!(at(&v, "/spec/extra"), &json!({"groups": ["a"], "scopes": []}));

    let review = authn::TokenReview {
        metadata: objmeta("tr"),
        status: Some(authn::TokenReviewStatus {
            authenticated: Some(true),
            user: Some(authn::UserInfo {
                username: s("u"),
                extra: BTreeMap::from([("scopes".to_string(), authn::ExtraValue { items: vec![] })]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = decode("authentication.k8s.io/v1", "TokenReview", review.encode_to_vec());
    assert_eq!(at(&v, "/status/user/extra"), &json!({"scopes": []}));
}

/// Go's `Marshal` always writes an `ExtraValue` as field 2 (an empty
/// message for an empty one): `[]` as well.
#[test]
fn extra_value_present_empty_is_empty_list() {
    let head = certs::CertificateSigningRequestSpec {
        request: Some(b"pem".to_vec()),
        ..Default::default()
    }
    .encode_to_vec();
    let entry = [field(1, b"scopes"), field(2, b"")].concat();
    let spec = [head, field(6, &entry)].concat();
    let raw = [
        field(1, &objmeta("csr").unwrap().encode_to_vec()),
        field(2, &spec),
    ]
    .concat();
    let v = decode("certificates.k8s.io/v1", "CertificateSigningRequest", raw);
    assert_eq!(at(&v, "/spec/extra"), &json!({"scopes": []}));
}

/// `ResourceList`: `mapvalue := &resource.Quantity{}`, printed `"0"`.
#[test]
fn resource_list_value_absent_is_zero_quantity() {
    let pod = core::Pod {
        metadata: objmeta("p"),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                image: s("i"),
                resources: Some(core::ResourceRequirements {
                    limits: BTreeMap::from([
                        ("cpu".to_string(), Quantity::default()),
                        ("memory".to_string(), Quantity { string: s("1Gi") }),
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = decode("v1", "Pod", pod.encode_to_vec());
    assert_eq!(
        at(&v, "/spec/containers/0/resources/limits"),
        &json!({"cpu": "0", "memory": "1Gi"})
    );
}

/// resource/v1: `mapvalue := &Counter{}`, `&DeviceAttribute{}`,
/// `&DeviceCapacity{}`: the struct with its own zero fields.
#[test]
fn struct_map_values_absent_are_zero_structs() {
    let slice = dra::ResourceSlice {
        metadata: objmeta("rs"),
        spec: Some(dra::ResourceSliceSpec {
            driver: s("d"),
            pool: Some(dra::ResourcePool {
                name: s("p"),
                generation: Some(1),
                resource_slice_count: Some(1),
            }),
            all_nodes: Some(true),
            devices: vec![dra::Device {
                name: s("dev"),
                attributes: BTreeMap::from([("a".to_string(), dra::DeviceAttribute::default())]),
                capacity: BTreeMap::from([("c".to_string(), dra::DeviceCapacity::default())]),
                ..Default::default()
            }],
            shared_counters: vec![dra::CounterSet {
                name: s("cs"),
                counters: BTreeMap::from([("mem".to_string(), dra::Counter::default())]),
            }],
            ..Default::default()
        }),
    };
    let v = decode("resource.k8s.io/v1", "ResourceSlice", slice.encode_to_vec());
    assert_eq!(
        at(&v, "/spec/sharedCounters/0/counters"),
        &json!({"mem": {"value": "0"}})
    );
    assert_eq!(at(&v, "/spec/devices/0/attributes"), &json!({"a": {}}));
    assert_eq!(at(&v, "/spec/devices/0/capacity"), &json!({"c": {"value": "0"}}));
}

/// policy/v1 `DisruptedPods`: `mapvalue := &v1.Time{}`, the zero time:
/// `null`.
#[test]
fn time_map_value_absent_is_null() {
    let pdb = policy::PodDisruptionBudget {
        metadata: objmeta("pdb"),
        status: Some(policy::PodDisruptionBudgetStatus {
            disrupted_pods: BTreeMap::from([
                ("p0".to_string(), meta::Time::default()),
                (
                    "p1".to_string(),
                    meta::Time {
                        seconds: Some(1_700_000_000),
                        nanos: None,
                    },
                ),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = decode("policy/v1", "PodDisruptionBudget", pdb.encode_to_vec());
    assert_eq!(
        at(&v, "/status/disruptedPods"),
        &json!({"p0": null, "p1": "2023-11-14T22:13:20Z"})
    );
}

/// apiextensions/v1: `mapvalue := &JSONSchemaProps{}` (every field
/// omitempty: `{}`) and `&JSONSchemaPropsOrStringArray{}` (its
/// `MarshalJSON` of neither: `null`).
#[test]
fn schema_map_values_absent() {
    let props = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: BTreeMap::from([("a".to_string(), ext::JsonSchemaProps::default())]),
        dependencies: BTreeMap::from([("d".to_string(), ext::JsonSchemaPropsOrStringArray::default())]),
        ..Default::default()
    };
    let v = decode(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd(props).encode_to_vec(),
    );
    let sch = at(&v, "/spec/versions/0/schema/openAPIV3Schema");
    assert_eq!(at(sch, "/properties"), &json!({"a": {}}));
    assert_eq!(at(sch, "/dependencies"), &json!({"d": null}));
}

fn crd(props: ext::JsonSchemaProps) -> ext::CustomResourceDefinition {
    ext::CustomResourceDefinition {
        metadata: objmeta("widgets.example.com"),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("widgets"),
                kind: s("Widget"),
                ..Default::default()
            }),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(props),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// In a map entry a message value is read into a fresh `&V{}` each time
/// field 2 comes (`mapvalue = &Counter{}` before `Unmarshal`): the last one
/// wins whole, nothing is merged.
#[test]
fn map_value_seen_twice_is_the_last_one_not_merged() {
    let one = dra::Counter {
        value: Some(Quantity { string: s("1") }),
    }
    .encode_to_vec();
    let entry = [field(1, b"mem"), field(2, &one), field(2, b"")].concat();
    let set = [field(1, b"cs"), field(2, &entry)].concat();
    let spec = [
        dra::ResourceSliceSpec {
            driver: s("d"),
            all_nodes: Some(true),
            ..Default::default()
        }
        .encode_to_vec(),
        field(8, &set),
    ]
    .concat();
    let raw = [field(1, &objmeta("rs").unwrap().encode_to_vec()), field(2, &spec)].concat();
    let v = decode("resource.k8s.io/v1", "ResourceSlice", raw);
    assert_eq!(
        at(&v, "/spec/sharedCounters/0/counters"),
        &json!({"mem": {"value": "0"}})
    );
}

/// `encoding/json` prints map keys sorted, whatever order the entries came
/// in; a key seen again replaces the value (`m.Labels[mapkey] = mapvalue`).
#[test]
fn map_keys_print_sorted_and_a_repeated_key_replaces() {
    let entry = |k: &str, v: &str| field(11, &[field(1, k.as_bytes()), field(2, v.as_bytes())].concat());
    let om = [
        objmeta("cm").unwrap().encode_to_vec(),
        entry("b", "1"),
        entry("a", "2"),
        entry("c", "3"),
        entry("b", "4"),
    ]
    .concat();
    let v = decode("v1", "ConfigMap", field(1, &om));
    let labels = at(&v, "/metadata/labels").as_object().unwrap();
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(labels["b"], json!("4"));
}

// ---- repeated fields ----

/// batch/v1 `PodFailurePolicyOnExitCodesRequirement.Unmarshal`, packed
/// `Values`: `if elementCount != 0 && len(m.Values) == 0 { m.Values =
/// make(...) }`; a packed run of zero bytes appends nothing and the slice
/// stays nil: `values: null` (no omitempty), as when absent.
#[test]
fn packed_repeated_scalar_of_zero_bytes_is_null() {
    let job = |values: &[u8]| {
        let req = [
            batch::PodFailurePolicyOnExitCodesRequirement {
                operator: s("In"),
                ..Default::default()
            }
            .encode_to_vec(),
            values.to_vec(),
        ]
        .concat();
        let rule = [
            batch::PodFailurePolicyRule {
                action: s("FailJob"),
                ..Default::default()
            }
            .encode_to_vec(),
            field(2, &req),
        ]
        .concat();
        let spec = [
            batch::JobSpec {
                backoff_limit: Some(1),
                ..Default::default()
            }
            .encode_to_vec(),
            field(11, &field(1, &rule)),
        ]
        .concat();
        let raw = [field(1, &objmeta("j").unwrap().encode_to_vec()), field(2, &spec)].concat();
        let v = decode("batch/v1", "Job", raw);
        at(&v, "/spec/podFailurePolicy/rules/0/onExitCodes/values").clone()
    };
    // Packed, zero bytes.
    assert_eq!(job(&field(3, b"")), Value::Null);
    // Absent.
    assert_eq!(job(b""), Value::Null);
    // Packed with elements, then an empty run, then one unpacked (0x18 =
    // field 3, varint): all appended.
    assert_eq!(
        job(&[field(3, &[1, 2]), field(3, b""), vec![0x18, 5]].concat()),
        json!([1, 2, 5])
    );
}

/// A repeated field without omitempty that is absent stays nil: `null`
/// (rbac/v1 `PolicyRule.Verbs`, `json:"verbs"`).
#[test]
fn repeated_field_absent_prints_null_without_omitempty() {
    let role = rbac::ClusterRole {
        metadata: objmeta("r"),
        rules: vec![rbac::PolicyRule {
            api_groups: vec![String::new()],
            resources: vec!["pods".into()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let v = decode(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        role.encode_to_vec(),
    );
    assert_eq!(
        at(&v, "/rules/0"),
        &json!({"verbs": null, "apiGroups": [""], "resources": ["pods"]})
    );
}

/// meta/v1 `APIResource.Unmarshal`: `if m.Verbs == nil { m.Verbs = Verbs{}
/// }` before reading the message: present but empty is `[]`; absent is nil,
/// `null` (`json:"verbs"`).
#[test]
fn named_slice_message_present_empty_is_empty_list() {
    let schema = Schema::get();
    let t = schema
        .lookup("apimachinery/pkg/apis/meta/v1.APIResourceList")
        .expect("APIResourceList in the schema");
    let list = meta::APIResourceList {
        group_version: s("v1"),
        resources: vec![
            meta::APIResource {
                name: s("empty"),
                verbs: Some(meta::Verbs { items: vec![] }),
                ..Default::default()
            },
            meta::APIResource {
                name: s("absent"),
                ..Default::default()
            },
        ],
    };
    let m = Decoder::new(schema).object(t, &list.encode_to_vec()).unwrap();
    assert_eq!(m["resources"][0]["verbs"], json!([]));
    assert_eq!(m["resources"][1]["verbs"], Value::Null);
}

// ---- bytes ----

/// `m.Request = append(m.Request[:0], ...); if m.Request == nil {
/// m.Request = []byte{} }`: present but empty is `""`; absent is nil,
/// `null` (`json:"request"`); with omitempty both are left out.
#[test]
fn bytes_field_present_empty_vs_absent() {
    let csr = |request: Option<Vec<u8>>, certificate: Option<Vec<u8>>| {
        let c = certs::CertificateSigningRequest {
            metadata: objmeta("csr"),
            spec: Some(certs::CertificateSigningRequestSpec {
                request,
                signer_name: s("x/y"),
                ..Default::default()
            }),
            status: Some(certs::CertificateSigningRequestStatus {
                certificate,
                ..Default::default()
            }),
        };
        decode(
            "certificates.k8s.io/v1",
            "CertificateSigningRequest",
            c.encode_to_vec(),
        )
    };
    let v = csr(None, None);
    assert_eq!(at(&v, "/spec/request"), &Value::Null);
    assert_eq!(at(&v, "/status"), &json!({}));
    let v = csr(Some(vec![]), Some(vec![]));
    assert_eq!(at(&v, "/spec/request"), &json!(""));
    assert_eq!(at(&v, "/status"), &json!({}));
    let v = csr(Some(b"ab".to_vec()), Some(b"c".to_vec()));
    assert_eq!(at(&v, "/spec/request"), &json!("YWI="));
    assert_eq!(at(&v, "/status/certificate"), &json!("Yw=="));
}

// ---- times ----

fn configmap_with_meta(om: meta::ObjectMeta) -> Vec<u8> {
    core::ConfigMap {
        metadata: Some(om),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `creationTimestamp` (omitzero, `Time.IsZero`): the empty message Go
/// writes for the zero time and a year-1 timestamp are both the zero time
/// and left out; a set `*Time` to the zero time prints `null` (omitempty
/// keeps a non-nil pointer).
#[test]
fn zero_creation_and_deletion_timestamps() {
    let om = |secs: Option<i64>| meta::ObjectMeta {
        name: s("cm"),
        namespace: s("default"),
        creation_timestamp: Some(meta::Time {
            seconds: secs,
            nanos: None,
        }),
        deletion_timestamp: Some(meta::Time::default()),
        ..Default::default()
    };
    for secs in [None, Some(YEAR_ONE)] {
        let v = decode("v1", "ConfigMap", configmap_with_meta(om(secs)));
        let m = at(&v, "/metadata").as_object().unwrap();
        assert!(!m.contains_key("creationTimestamp"), "{secs:?}: {m:?}");
        assert_eq!(m["deletionTimestamp"], Value::Null, "{secs:?}");
    }
    // The Unix epoch is not Go's zero time.
    let v = decode("v1", "ConfigMap", configmap_with_meta(om(Some(0))));
    assert_eq!(
        at(&v, "/metadata/creationTimestamp"),
        &json!("1970-01-01T00:00:00Z")
    );
}

/// `(*Time).Unmarshal` replaces the time on each occurrence (an empty one
/// with the zero time): the last one counts. It drops the nanoseconds.
#[test]
fn time_seen_twice_is_the_last_one() {
    let set = meta::Time {
        seconds: Some(1_700_000_000),
        nanos: Some(999_999_999),
    }
    .encode_to_vec();
    let om = meta::ObjectMeta {
        name: s("cm"),
        ..Default::default()
    }
    .encode_to_vec();
    // Field 8: creationTimestamp, set then empty.
    let v = decode(
        "v1",
        "ConfigMap",
        field(1, &[om.clone(), field(8, &set), field(8, b"")].concat()),
    );
    assert!(at(&v, "/metadata").get("creationTimestamp").is_none(), "{v}");
    let v = decode(
        "v1",
        "ConfigMap",
        field(1, &[om, field(8, b""), field(8, &set)].concat()),
    );
    assert_eq!(
        at(&v, "/metadata/creationTimestamp"),
        &json!("2023-11-14T22:13:20Z")
    );
}

/// A `metav1.Time` value field without omitempty (`Condition.
/// lastTransitionTime`): absent or year 1 is the zero time, `null`.
#[test]
fn zero_time_value_field_prints_null() {
    let pdb = |t: Option<meta::Time>| {
        let p = policy::PodDisruptionBudget {
            metadata: objmeta("pdb"),
            status: Some(policy::PodDisruptionBudgetStatus {
                conditions: vec![meta::Condition {
                    r#type: s("DisruptionAllowed"),
                    status: s("True"),
                    last_transition_time: t,
                    reason: s("r"),
                    message: s("m"),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = decode("policy/v1", "PodDisruptionBudget", p.encode_to_vec());
        at(&v, "/status/conditions/0/lastTransitionTime").clone()
    };
    assert_eq!(pdb(None), Value::Null);
    assert_eq!(pdb(Some(meta::Time::default())), Value::Null);
    assert_eq!(
        pdb(Some(meta::Time {
            seconds: Some(YEAR_ONE),
            nanos: Some(0)
        })),
        Value::Null
    );
}

/// `(*MicroTime).Unmarshal`: `time.Duration(p.Nanos).Truncate(
/// time.Microsecond)` (toward zero) before `time.Unix`; year 1 is the zero
/// time (`eventTime`, no omitempty: `null`).
#[test]
fn micro_time_zero_and_truncation() {
    let event = |t: Option<meta::MicroTime>| {
        let e = events::Event {
            metadata: objmeta("e"),
            event_time: t,
            reason: s("r"),
            ..Default::default()
        };
        let v = decode("events.k8s.io/v1", "Event", e.encode_to_vec());
        at(&v, "/eventTime").clone()
    };
    let mt = |seconds: i64, nanos: i32| {
        Some(meta::MicroTime {
            seconds: Some(seconds),
            nanos: Some(nanos),
        })
    };
    assert_eq!(event(None), Value::Null);
    assert_eq!(event(Some(meta::MicroTime::default())), Value::Null);
    assert_eq!(event(mt(YEAR_ONE, 0)), Value::Null);
    assert_eq!(event(mt(YEAR_ONE, 999)), Value::Null);
    assert_eq!(event(mt(YEAR_ONE, 1000)), json!("0001-01-01T00:00:00.000001Z"));
    assert_eq!(
        event(mt(1_700_000_000, 1_234_567)),
        json!("2023-11-14T22:13:20.001234Z")
    );
    // -1ns truncates to 0, not to the microsecond before.
    assert_eq!(event(mt(1_700_000_000, -1)), json!("2023-11-14T22:13:20.000000Z"));
    assert_eq!(
        event(mt(1_700_000_000, -1500)),
        json!("2023-11-14T22:13:19.999999Z")
    );
}

// ---- pointers and scalars ----

/// A set pointer prints even when zero (`replicas: 0`,
/// `automountServiceAccountToken: false`); a plain bool with omitempty does
/// not (`hostNetwork`), even when on the wire.
#[test]
fn pointers_to_zero_values_print() {
    let d = apps::Deployment {
        metadata: objmeta("d"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector::default()),
            template: Some(core::PodTemplateSpec {
                metadata: None,
                spec: Some(core::PodSpec {
                    host_network: Some(false),
                    automount_service_account_token: Some(false),
                    termination_grace_period_seconds: Some(0),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = decode("apps/v1", "Deployment", d.encode_to_vec());
    assert_eq!(at(&v, "/spec/replicas"), &json!(0));
    assert_eq!(at(&v, "/spec/selector"), &json!({}));
    let pod = at(&v, "/spec/template/spec").as_object().unwrap();
    assert!(!pod.contains_key("hostNetwork"));
    assert_eq!(pod["automountServiceAccountToken"], json!(false));
    assert_eq!(pod["terminationGracePeriodSeconds"], json!(0));
    // `containers` has no omitempty: nil prints null.
    assert_eq!(pod["containers"], Value::Null);
}

// ---- special types ----

/// apiextensions `JSONSchemaPropsOrArray.MarshalJSON`: `if
/// len(s.JSONSchemas) > 0` the list, else the schema.
#[test]
fn json_schema_props_or_array_prints_the_list_first() {
    let str_schema = |t: &str| ext::JsonSchemaProps {
        r#type: s(t),
        ..Default::default()
    };
    let props = ext::JsonSchemaProps {
        r#type: s("array"),
        items: Some(Box::new(ext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(str_schema("string"))),
            j_son_schemas: vec![str_schema("integer")],
        })),
        ..Default::default()
    };
    let v = decode(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        crd(props).encode_to_vec(),
    );
    assert_eq!(
        at(&v, "/spec/versions/0/schema/openAPIV3Schema/items"),
        &json!([{"type": "integer"}])
    );
}

// ---- strings ----

/// Go keeps the bytes of a string (`string(dAtA[...])`); `encoding/json`
/// writes one U+FFFD per byte that does not start a valid sequence.
#[test]
fn invalid_utf8_prints_one_replacement_per_byte() {
    let entry = [field(1, b"k\xff"), field(2, b"a\xf0\x9f\x98b\xed\xa0\x80")].concat();
    let raw = [
        field(1, &objmeta("cm").unwrap().encode_to_vec()),
        field(2, &entry),
    ]
    .concat();
    let v = decode("v1", "ConfigMap", raw);
    assert_eq!(
        at(&v, "/data"),
        &json!({"k\u{fffd}": "a\u{fffd}\u{fffd}\u{fffd}b\u{fffd}\u{fffd}\u{fffd}"})
    );
}
