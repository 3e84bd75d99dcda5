//! Every `.pb` file of the upstream round-trip data decodes to JSON equal to
//! its `.json` twin.

mod common;

use etcd_rescue::k8s::decode::Decoder;
use etcd_rescue::k8s::envelope;
use etcd_rescue::k8s::schema::Schema;
use serde_json::Value;

/// The `.pb` files of `../shared/fixtures/k8s-api-roundtrip/`, sorted
/// ([`common::require`]d).
fn roundtrip_files() -> Option<Vec<std::path::PathBuf>> {
    let dir = common::require(common::Need::Shared("k8s-api-roundtrip"))?;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "pb").then_some(p)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no .pb files in {}", dir.display());
    Some(names)
}

#[test]
fn every_roundtrip_type_decodes_exactly() {
    let Some(names) = roundtrip_files() else { return };
    let schema = Schema::get();
    let mut failed = Vec::new();
    for pb in &names {
        let want: Value = serde_json::from_slice(&std::fs::read(pb.with_extension("json")).unwrap()).unwrap();
        let bytes = std::fs::read(pb).unwrap();
        let u = envelope::parse_unknown(&bytes[4..]).unwrap();
        // WatchEvent is stored with an empty TypeMeta: take the type from the file name.
        let stem = pb.file_stem().unwrap().to_string_lossy().into_owned();
        let (gv, kind) = stem.rsplit_once('.').unwrap();
        let (g, v) = gv.rsplit_once('.').unwrap();
        let file_gv = if g == "core" {
            v.to_string()
        } else {
            format!("{g}/{v}")
        };
        let (av, k) = if u.kind.is_empty() {
            (file_gv.as_str(), kind)
        } else {
            (u.api_version.as_str(), u.kind.as_str())
        };
        let Some(t) = schema.for_kind(av, k) else {
            failed.push(format!(
                "{}: no type for {} {}",
                pb.display(),
                u.api_version,
                u.kind
            ));
            continue;
        };
        let mut d = Decoder::new(schema);
        match d.object(t, u.raw) {
            Ok(mut m) => {
                if !u.kind.is_empty() {
                    m.insert("apiVersion".into(), Value::String(u.api_version.clone()));
                    m.insert("kind".into(), Value::String(u.kind.clone()));
                }
                let got = Value::Object(m);
                if got != want {
                    let mut d = Vec::new();
                    diff("", &got, &want, &mut d);
                    failed.push(format!("{}: differs: {}", pb.display(), d.join("; ")));
                }
            }
            Err(e) => failed.push(format!("{}: {e}", pb.display())),
        }
    }
    eprintln!(
        "{} of {} round-trip types decode exactly",
        names.len() - failed.len(),
        names.len()
    );
    for f in &failed {
        eprintln!("FAIL {f}");
    }
    assert!(failed.is_empty(), "{} types differ", failed.len());
}

fn diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => diff(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: extra {v}")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}.{k}: missing, want {w}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if got != want => out.push(format!("{path}: got {got}, want {want}")),
        _ => {}
    }
}

/// Damaged values: every cut and many flipped bytes of every round-trip
/// object end in a decode error or a (different) object, never a panic or a
/// hang.
#[test]
fn damaged_values_never_panic() {
    let Some(names) = roundtrip_files() else { return };
    let schema = Schema::get();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut errors = 0;
    for pb in names.iter().step_by(3) {
        let bytes = std::fs::read(pb).unwrap();
        let u = envelope::parse_unknown(&bytes[4..]).unwrap();
        let Some(t) = schema.for_kind(&u.api_version, &u.kind) else {
            continue;
        };
        let raw = u.raw.to_vec();
        let stride = (raw.len() / 40).max(1);
        for cut in (0..raw.len()).step_by(stride) {
            errors += usize::from(Decoder::new(schema).object(t, &raw[..cut]).is_err());
        }
        for _ in 0..40 {
            let mut v = raw.clone();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % v.len().max(1);
            if let Some(b) = v.get_mut(at) {
                *b ^= (seed >> 32) as u8 | 1;
            }
            errors += usize::from(Decoder::new(schema).object(t, &v).is_err());
        }
    }
    assert!(errors > 0, "damage was never detected");
}
