//! A validator for the subset of JSON Schema (draft 2020-12) that
//! `docs/schemas/*.schema.json` use, so tests can check real `-o json`
//! output against them with no schema crate.
//!
//! Supported: `type` (a name or a list; `integer` is a number with no
//! fraction), `properties`, `required`, `additionalProperties` (bool or
//! schema), `items` (bool or schema, after `prefixItems`), `prefixItems`,
//! `minItems`, `enum`, `const`, `minimum`, `oneOf`, `anyOf`, `not` and
//! `$ref` (`#/pointer` in the same file, `other.schema.json#/pointer` in
//! another file of the same folder). Annotations (`$schema`, `$id`, `$defs`,
//! `title`, `description`, `$comment`, `examples`) are skipped; any other
//! keyword panics, so a schema cannot silently rely on a rule that is not
//! checked.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde_json::Value;

/// Keywords that only annotate or hold definitions.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "title",
    "description",
    "$comment",
    "examples",
];

/// Keywords that are checked.
const CHECKED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "enum",
    "const",
    "minimum",
    "oneOf",
    "anyOf",
    "not",
    "$ref",
];

/// One way a value breaks a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    /// JSON pointer of the offending part of the value ("" for the whole value).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(root)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// A set of schema files, by file name (`status.schema.json`).
pub struct Schemas {
    docs: BTreeMap<String, Value>,
    /// The files whose schemas were used by a validation (directly or through `$ref`).
    used: RefCell<BTreeSet<String>>,
}

/// A JSON pointer token, escaped.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => match v {
            Value::Number(n) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
            _ => false,
        },
        other => panic!("unknown type {other:?} in a schema"),
    }
}

/// A short rendering of a value for messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Schemas {
    /// Every `*.schema.json` of `dir`.
    pub fn load(dir: &Path) -> Schemas {
        let mut docs = Vec::new();
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".schema.json") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            docs.push((name, v));
        }
        Schemas::from_docs(docs)
    }

    /// Schemas given in memory, as (file name, schema).
    pub fn from_docs(docs: Vec<(String, Value)>) -> Schemas {
        Schemas {
            docs: docs.into_iter().collect(),
            used: RefCell::new(BTreeSet::new()),
        }
    }

    /// The file names.
    pub fn names(&self) -> Vec<String> {
        self.docs.keys().cloned().collect()
    }

    /// One file's schema.
    pub fn doc(&self, file: &str) -> &Value {
        self.docs
            .get(file)
            .unwrap_or_else(|| panic!("no schema file {file}"))
    }

    /// The files used by validations so far.
    pub fn used(&self) -> BTreeSet<String> {
        self.used.borrow().clone()
    }

    /// Every way `value` breaks the schema of `file` (empty: it conforms).
    pub fn validate(&self, file: &str, value: &Value) -> Vec<SchemaError> {
        let mut errs = Vec::new();
        self.used.borrow_mut().insert(file.to_string());
        self.check(file, self.doc(file), value, "", &mut errs);
        errs
    }

    /// The schema a `$ref` in `base` names, with the file it is in.
    fn lookup<'s>(&'s self, base: &str, r: &str) -> Option<(String, &'s Value)> {
        let (file, pointer) = match r.split_once('#') {
            Some(("", p)) => (base.to_string(), p),
            Some((f, p)) => (f.to_string(), p),
            None => (r.to_string(), ""),
        };
        let target = self.docs.get(&file)?.pointer(pointer)?;
        Some((file, target))
    }

    /// [`Self::lookup`] for a validation: records the file as used, and
    /// panics when the `$ref` does not resolve (a broken schema).
    fn resolve<'s>(&'s self, base: &str, r: &str) -> (String, &'s Value) {
        let (file, target) = self
            .lookup(base, r)
            .unwrap_or_else(|| panic!("{base}: $ref {r:?} does not resolve"));
        self.used.borrow_mut().insert(file.clone());
        (file, target)
    }

    fn check(&self, base: &str, schema: &Value, v: &Value, ptr: &str, errs: &mut Vec<SchemaError>) {
        let err = |errs: &mut Vec<SchemaError>, message: String| {
            errs.push(SchemaError {
                pointer: ptr.to_string(),
                message,
            })
        };
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return err(errs, format!("no value is allowed here, got {}", show(v))),
            Value::Object(s) => s,
            other => panic!("{base}: a schema must be an object or a boolean, got {other}"),
        };
        for (k, kv) in s {
            let k = k.as_str();
            if ANNOTATIONS.contains(&k) {
                continue;
            }
            match k {
                "type" => {
                    let names: Vec<&str> = match kv {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(a) => a
                            .iter()
                            .map(|t| t.as_str().expect("type names are strings"))
                            .collect(),
                        other => panic!("{base}: bad type {other}"),
                    };
                    if !names.iter().any(|t| has_type(v, t)) {
                        err(
                            errs,
                            format!(
                                "expected {}, got {} {}",
                                names.join(" or "),
                                type_name(v),
                                show(v)
                            ),
                        );
                    }
                }
                "enum" => {
                    let allowed = kv.as_array().expect("enum is an array");
                    if !allowed.contains(v) {
                        err(errs, format!("{} is not one of {}", show(v), show(kv)));
                    }
                }
                "const" => {
                    if kv != v {
                        err(errs, format!("{} is not the constant {}", show(v), show(kv)));
                    }
                }
                "minimum" => {
                    let min = kv.as_f64().expect("minimum is a number");
                    if let Some(n) = v.as_f64()
                        && n < min
                    {
                        err(errs, format!("{} is less than the minimum {min}", show(v)));
                    }
                }
                "properties" => {
                    let props = kv.as_object().expect("properties is an object");
                    if let Value::Object(o) = v {
                        for (name, sub) in props {
                            if let Some(x) = o.get(name) {
                                self.check(base, sub, x, &format!("{ptr}/{}", token(name)), errs);
                            }
                        }
                    }
                }
                "required" => {
                    if let Value::Object(o) = v {
                        for name in kv.as_array().expect("required is an array") {
                            let name = name.as_str().expect("required names are strings");
                            if !o.contains_key(name) {
                                err(errs, format!("required property {name:?} is missing"));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Value::Object(o) = v {
                        let declared = s.get("properties").and_then(Value::as_object);
                        for (name, x) in o {
                            if declared.is_some_and(|d| d.contains_key(name)) {
                                continue;
                            }
                            let at = format!("{ptr}/{}", token(name));
                            match kv {
                                Value::Bool(false) => errs.push(SchemaError {
                                    pointer: at,
                                    message: format!("property {name:?} is not allowed"),
                                }),
                                sub => self.check(base, sub, x, &at, errs),
                            }
                        }
                    }
                }
                "prefixItems" => {
                    if let Value::Array(a) = v {
                        for (i, (sub, x)) in kv
                            .as_array()
                            .expect("prefixItems is an array")
                            .iter()
                            .zip(a)
                            .enumerate()
                        {
                            self.check(base, sub, x, &format!("{ptr}/{i}"), errs);
                        }
                    }
                }
                "items" => {
                    if let Value::Array(a) = v {
                        let skip = s.get("prefixItems").and_then(Value::as_array).map_or(0, Vec::len);
                        for (i, x) in a.iter().enumerate().skip(skip) {
                            let at = format!("{ptr}/{i}");
                            match kv {
                                Value::Bool(false) => errs.push(SchemaError {
                                    pointer: at,
                                    message: format!("no item is allowed at position {i}"),
                                }),
                                sub => self.check(base, sub, x, &at, errs),
                            }
                        }
                    }
                }
                "minItems" => {
                    let min = kv.as_u64().expect("minItems is a count") as usize;
                    if let Value::Array(a) = v
                        && a.len() < min
                    {
                        err(errs, format!("{} items, at least {min} expected", a.len()));
                    }
                }
                "oneOf" | "anyOf" => {
                    let branches = kv.as_array().expect("oneOf/anyOf is an array");
                    let results: Vec<Vec<SchemaError>> = branches
                        .iter()
                        .map(|b| {
                            let mut e = Vec::new();
                            self.check(base, b, v, ptr, &mut e);
                            e
                        })
                        .collect();
                    let matching = results.iter().filter(|e| e.is_empty()).count();
                    if matching == 0 {
                        // The branch meant: the one whose shape fits best
                        // (fewest required properties missing, properties
                        // not allowed, or tags, a constant or an enum member
                        // right below, that differ), then the one with the
                        // fewest errors.
                        let misfits = |e: &[SchemaError]| {
                            e.iter()
                                .filter(|x| {
                                    let below = x
                                        .pointer
                                        .strip_prefix(ptr)
                                        .is_some_and(|rest| rest.matches('/').count() == 1);
                                    (x.pointer == ptr && x.message.starts_with("required property"))
                                        || (below
                                            && (x.message.ends_with("is not allowed")
                                                || x.message.contains(" is not the constant ")
                                                || x.message.contains(" is not one of ")))
                                })
                                .count()
                        };
                        let (i, closest) = results
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, e)| (misfits(e), e.len()))
                            .expect("at least one branch");
                        err(
                            errs,
                            format!(
                                "matches none of the {} {k} branches; the closest, #{i}, says:",
                                branches.len()
                            ),
                        );
                        errs.extend(closest.iter().cloned());
                    } else if k == "oneOf" && matching > 1 {
                        err(
                            errs,
                            format!("matches {matching} of the oneOf branches, not exactly one"),
                        );
                    }
                }
                "not" => {
                    let mut e = Vec::new();
                    self.check(base, kv, v, ptr, &mut e);
                    if e.is_empty() {
                        err(errs, format!("{} matches a schema it must not match", show(v)));
                    }
                }
                "$ref" => {
                    let r = kv.as_str().expect("$ref is a string");
                    let (file, target) = self.resolve(base, r);
                    self.check(&file, target, v, ptr, errs);
                }
                other => panic!(
                    "{base}: keyword {other:?} is not supported by tests/common/schema.rs (supported: {})",
                    CHECKED.join(", ")
                ),
            }
        }
    }

    /// Problems with the schema files themselves: unsupported keywords, a
    /// property without a description, an object with properties but no
    /// `additionalProperties` decision, a `$ref` that does not resolve, a
    /// file without `$schema`, `$id`, `title` or `description`.
    pub fn lint(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (file, doc) in &self.docs {
            for k in ["$schema", "$id", "title", "description"] {
                if doc.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                    out.push(format!("{file}: no {k}"));
                }
            }
            let id = format!("https://etcd-rescue.dev/schemas/{file}");
            if doc.get("$id").and_then(Value::as_str) != Some(id.as_str()) {
                out.push(format!("{file}: $id is not {id}"));
            }
            self.lint_schema(file, doc, "#", &mut out);
        }
        out
    }

    fn lint_schema(&self, file: &str, schema: &Value, at: &str, out: &mut Vec<String>) {
        let s = match schema {
            Value::Bool(_) => return,
            Value::Object(s) => s,
            other => {
                out.push(format!(
                    "{file} {at}: a schema must be an object or a boolean, got {other}"
                ));
                return;
            }
        };
        for k in s.keys() {
            if !ANNOTATIONS.contains(&k.as_str()) && !CHECKED.contains(&k.as_str()) {
                out.push(format!("{file} {at}: unsupported keyword {k:?}"));
            }
        }
        if let Some(Value::String(r)) = s.get("$ref")
            && self.lookup(file, r).is_none()
        {
            out.push(format!("{file} {at}: $ref {r:?} does not resolve"));
        }
        if let Some(Value::Object(props)) = s.get("properties") {
            if !s.contains_key("additionalProperties") {
                out.push(format!(
                    "{file} {at}: properties without an additionalProperties decision"
                ));
            }
            for (name, p) in props {
                let here = format!("{at}/properties/{}", token(name));
                if p.get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    out.push(format!("{file} {here}: no description"));
                }
                self.lint_schema(file, p, &here, out);
            }
        }
        if let Some(Value::Object(defs)) = s.get("$defs") {
            for (name, d) in defs {
                self.lint_schema(file, d, &format!("{at}/$defs/{}", token(name)), out);
            }
        }
        for key in ["additionalProperties", "items", "not"] {
            if let Some(x) = s.get(key) {
                self.lint_schema(file, x, &format!("{at}/{key}"), out);
            }
        }
        for key in ["oneOf", "anyOf", "prefixItems"] {
            if let Some(Value::Array(a)) = s.get(key) {
                for (i, x) in a.iter().enumerate() {
                    self.lint_schema(file, x, &format!("{at}/{key}/{i}"), out);
                }
            }
        }
    }

    /// The property names a file's schema declares at the top level of a
    /// document: the root's properties, following `$ref`, `oneOf` and
    /// `anyOf`, and through `items` for a root that is an array (one
    /// record per element or per line).
    pub fn top_properties(&self, file: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        self.collect_top(file, self.doc(file), true, &mut out, &mut seen);
        out
    }

    fn collect_top(
        &self,
        base: &str,
        schema: &Value,
        through_items: bool,
        out: &mut BTreeSet<String>,
        seen: &mut BTreeSet<String>,
    ) {
        let Value::Object(s) = schema else { return };
        if let Some(Value::Object(props)) = s.get("properties") {
            out.extend(props.keys().cloned());
        }
        if let Some(Value::String(r)) = s.get("$ref") {
            if seen.insert(format!("{base}{r}"))
                && let Some((f, target)) = self.lookup(base, r)
            {
                self.collect_top(&f, target, through_items, out, seen);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(a)) = s.get(key) {
                for b in a {
                    self.collect_top(base, b, through_items, out, seen);
                }
            }
        }
        if through_items && let Some(items) = s.get("items") {
            self.collect_top(base, items, false, out, seen);
        }
    }
}

/// The property names at the top level of a document: an object's keys,
/// or the keys of the objects of an array.
pub fn top_keys(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Object(o) => o.keys().cloned().collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|o| o.keys().cloned())
            .collect(),
        _ => BTreeSet::new(),
    }
}
