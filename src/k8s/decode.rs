//! Protobuf bytes of a built-in Kubernetes type to the JSON the apiserver
//! serves, driven by the [`schema`](super::schema) table.
//!
//! The decoder follows what Go does: unmarshal into the struct (absent
//! fields keep their zero value), then `encoding/json` marshals it:
//! - a field with `omitempty` is left out when false, 0, "", a nil pointer, or
//!   a nil or empty slice or map (never for a struct value);
//! - a field with `omitzero` is left out when its value is the zero value
//!   (`metav1.Time` by its `IsZero`);
//! - any other field is always printed: a nil slice, map or pointer as `null`;
//! - a pointer that is set prints its value even when zero (`replicas: 0`);
//! - embedded structs without a JSON name are flattened into the parent;
//! - the special types (times, durations, quantities, int-or-string, raw
//!   extensions, managed fields, apiextensions JSON) print as their own
//!   `MarshalJSON` does.
//!
//! What gogo's generated `Unmarshal` leaves in the struct (k8s.io/api
//! `generated.pb.go`), kind by kind:
//! - scalars and strings: the last occurrence; absent, the zero value;
//! - `[]byte`: absent nil (`null`), present non-nil even when empty (`""`);
//! - repeated fields: one element per occurrence, so present means non-nil,
//!   except a packed scalar run of zero bytes, which appends nothing and
//!   leaves the slice nil (`null`);
//! - named slices sent as a message (`metav1.Verbs`): present means
//!   non-nil (`Verbs{}`), even when the message is empty;
//! - map entries: each starts from `var mapkey K` and the value's zero as
//!   the generated code writes it: `mapvalue := []byte{}` (`""`),
//!   `&ExtraValue{}` (a non-nil empty slice, `[]`), `&V{}` for a struct or
//!   special type (its zero fields, a `Quantity` `"0"`, a `Time` `null`);
//!   field 1 or 2 seen again replaces the earlier one (a message value is
//!   unmarshalled into a fresh `&V{}`, not merged); a key seen again
//!   replaces its value; `encoding/json` prints the keys sorted;
//! - `metav1.Time` / `MicroTime`: each occurrence replaces the time (empty:
//!   the zero time); `Time` drops the nanoseconds, `MicroTime` truncates
//!   them to microseconds; January 1 of year 1 is the zero time (`null`);
//! - strings: invalid UTF-8 prints one U+FFFD per bad byte, as
//!   `encoding/json` writes it.
//!
//! Unknown field numbers are skipped, as Go does, and counted.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::gotime;
use super::schema::{Def, Field, JsonName, Schema, Special, Ty};
use crate::wire::{self, Value as Payload, WireError};

/// Why an object does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {what}")]
pub struct DecodeError {
    /// Where, as a JSON path (`spec.template.spec.containers[0]`).
    pub path: String,
    /// What is wrong.
    pub what: String,
}

const MAX_DEPTH: usize = 64;

/// One step of the path to where the decoder is (kept cheap: it is only
/// turned into text for an error).
enum Seg {
    Key(&'static str),
    Index(usize),
    MapKey(String),
}

/// A decode in progress: the schema, where we are (for errors) and what was
/// skipped.
pub struct Decoder<'s> {
    schema: &'s Schema,
    path: Vec<Seg>,
    /// Field numbers found on the wire that the schema does not know.
    pub unknown_fields: usize,
}

/// A rendered Go value: its JSON, and whether Go counts it as zero (for
/// `omitzero`) and as empty (for `omitempty`).
struct Rendered {
    json: Value,
    zero: bool,
    empty: bool,
}

impl Rendered {
    fn new(json: Value, zero: bool, empty: bool) -> Rendered {
        Rendered { json, zero, empty }
    }
    fn nil() -> Rendered {
        Rendered::new(Value::Null, true, true)
    }
}

/// Go's `string(b)` as `encoding/json` prints it: every byte of an invalid
/// UTF-8 sequence becomes one U+FFFD (`String::from_utf8_lossy` would turn
/// a cut-off sequence into a single one).
fn go_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(chunk.valid());
                out.extend(chunk.invalid().iter().map(|_| char::REPLACEMENT_CHARACTER));
            }
            out
        }
    }
}

/// Unix seconds of January 1, year 1, 00:00:00 UTC: Go's zero `time.Time`,
/// which `metav1.Time` prints as `null` (`IsZero`).
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

fn float(f: f64) -> Value {
    // Go prints integral floats without a fraction ("3", not "3.0").
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

impl<'s> Decoder<'s> {
    /// A decoder over `schema`.
    pub fn new(schema: &'s Schema) -> Decoder<'s> {
        Decoder {
            schema,
            path: Vec::new(),
            unknown_fields: 0,
        }
    }

    fn err(&self, what: impl Into<String>) -> DecodeError {
        let mut path = String::new();
        for p in &self.path {
            match p {
                Seg::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Seg::Index(i) => path.push_str(&format!("[{i}]")),
                Seg::MapKey(k) => path.push_str(&format!("[{k:?}]")),
            }
        }
        if path.is_empty() {
            path.push('.');
        }
        DecodeError {
            path,
            what: what.into(),
        }
    }

    fn wire_err(&self, e: WireError) -> DecodeError {
        self.err(format!("bad protobuf: {e}"))
    }

    /// Decodes `bytes` as the struct type `idx` into a JSON object.
    pub fn object(&mut self, idx: usize, bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
        match self.struct_value(idx, &[bytes])?.json {
            Value::Object(m) => Ok(m),
            _ => Err(self.err("not a struct type")),
        }
    }

    fn struct_value(&mut self, idx: usize, chunks: &[&[u8]]) -> Result<Rendered, DecodeError> {
        if self.path.len() > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let schema = self.schema;
        let t = schema.ty(idx);
        let fields: &[Field] = match &t.def {
            Def::Struct(f) => f,
            Def::Special(s) => return self.special(*s, idx, chunks),
            Def::Alias(_) => return Err(self.err(format!("{} is not a struct", t.name))),
        };
        // Every field occurrence with its field index, in field order (one
        // allocation per struct; repeated fields keep their wire order).
        let mut occ: Vec<(usize, Payload<'_>)> = Vec::new();
        for chunk in chunks {
            for f in wire::fields(chunk) {
                let f = f.map_err(|e| self.wire_err(e))?;
                match t.by_num.binary_search_by_key(&f.num, |&(n, _)| n) {
                    Ok(i) => occ.push((t.by_num[i].1, f.value)),
                    Err(_) => self.unknown_fields += 1,
                }
            }
        }
        occ.sort_by_key(|&(i, _)| i);
        let mut payloads: Vec<Payload<'_>> = Vec::with_capacity(occ.len());
        let mut out = Map::new();
        let mut inline: Vec<Map<String, Value>> = Vec::new();
        let mut zero = true;
        let mut at = 0;
        for (fi, f) in fields.iter().enumerate() {
            let start = at;
            while at < occ.len() && occ[at].0 == fi {
                at += 1;
            }
            if f.json == JsonName::Skip {
                continue;
            }
            payloads.clear();
            payloads.extend(occ[start..at].iter().map(|&(_, p)| p));
            let occ = payloads.as_slice();
            // Inline fields add no step: their fields are the parent's.
            let named = if let JsonName::Key(k) = f.json {
                self.path.push(Seg::Key(k));
                true
            } else {
                false
            };
            let r = self.render(&f.ty, occ, f.repeated);
            if named {
                self.path.pop();
            }
            let r = r?;
            zero &= r.zero;
            match f.json {
                JsonName::Inline => {
                    if let Value::Object(m) = r.json {
                        inline.push(m);
                    }
                }
                JsonName::Key(k) => {
                    // A field newer Kubernetes removed prints only when stored.
                    if (f.omitempty && r.empty) || (f.omitzero && r.zero) || (f.old && occ.is_empty()) {
                        continue;
                    }
                    out.insert(k.to_string(), r.json);
                }
                JsonName::Skip => {}
            }
        }
        // Promoted fields never override the struct's own.
        for m in inline {
            for (k, v) in m {
                out.entry(k).or_insert(v);
            }
        }
        Ok(Rendered::new(Value::Object(out), zero, false))
    }

    fn last_varint(&self, occ: &[Payload<'_>]) -> Result<Option<u64>, DecodeError> {
        match occ.last() {
            None => Ok(None),
            Some(Payload::Varint(v)) => Ok(Some(*v)),
            Some(_) => Err(self.err("wrong wire type: expected a varint")),
        }
    }

    fn bytes_of<'a>(&self, p: &Payload<'a>) -> Result<&'a [u8], DecodeError> {
        match p {
            Payload::Bytes(b) => Ok(b),
            _ => Err(self.err("wrong wire type: expected length-delimited bytes")),
        }
    }

    fn chunks<'a>(&self, occ: &[Payload<'a>]) -> Result<Vec<&'a [u8]>, DecodeError> {
        occ.iter().map(|p| self.bytes_of(p)).collect()
    }

    /// Renders one value of Go type `ty` from all its occurrences on the
    /// wire (none: the zero value). `rep`: the field's protobuf label is
    /// `rep` (a named slice type is then not wrapped in a message).
    fn render(&mut self, ty: &Ty, occ: &[Payload<'_>], rep: bool) -> Result<Rendered, DecodeError> {
        Ok(match ty {
            Ty::Bool => {
                let v = self.last_varint(occ)?.unwrap_or(0) != 0;
                Rendered::new(Value::Bool(v), !v, !v)
            }
            Ty::Int => {
                let v = self.last_varint(occ)?.unwrap_or(0) as i64;
                Rendered::new(Value::from(v), v == 0, v == 0)
            }
            Ty::Uint => {
                let v = self.last_varint(occ)?.unwrap_or(0);
                Rendered::new(Value::from(v), v == 0, v == 0)
            }
            Ty::F64 => {
                let v = match occ.last() {
                    None => 0.0,
                    Some(Payload::Fixed64(b)) => f64::from_bits(*b),
                    Some(_) => return Err(self.err("wrong wire type: expected fixed64")),
                };
                Rendered::new(float(v), v == 0.0, v == 0.0)
            }
            Ty::F32 => {
                let v = match occ.last() {
                    None => 0.0,
                    Some(Payload::Fixed32(b)) => f32::from_bits(*b),
                    Some(_) => return Err(self.err("wrong wire type: expected fixed32")),
                };
                // Go prints the shortest float32 form: go through its text.
                let f: f64 = v.to_string().parse().unwrap_or(0.0);
                Rendered::new(float(f), v == 0.0, v == 0.0)
            }
            Ty::Str => {
                let s = match occ.last() {
                    None => String::new(),
                    Some(p) => go_string(self.bytes_of(p)?),
                };
                let e = s.is_empty();
                Rendered::new(Value::String(s), e, e)
            }
            Ty::Bytes => match occ.last() {
                None => Rendered::nil(),
                Some(p) => {
                    let b = self.bytes_of(p)?;
                    let s = base64::engine::general_purpose::STANDARD.encode(b);
                    Rendered::new(Value::String(s), false, b.is_empty())
                }
            },
            Ty::Opaque => Rendered::nil(),
            Ty::Ptr(inner) => {
                if occ.is_empty() {
                    Rendered::nil()
                } else {
                    let r = self.render(inner, occ, rep)?;
                    Rendered::new(r.json, false, false)
                }
            }
            Ty::Slice(elem) => {
                if occ.is_empty() {
                    return Ok(Rendered::nil());
                }
                let mut items = Vec::new();
                for p in occ {
                    self.path.push(Seg::Index(items.len()));
                    let r = self.slice_items(elem, p, &mut items);
                    self.path.pop();
                    r?;
                }
                // Every occurrence appends an element, except a packed run
                // of zero bytes: Go makes the slice only for a nonzero
                // element count (`if elementCount != 0 && len(m.F) == 0`),
                // so with nothing appended it stays nil.
                if items.is_empty() {
                    return Ok(Rendered::nil());
                }
                Rendered::new(Value::Array(items), false, false)
            }
            Ty::Map(k, v) => {
                if occ.is_empty() {
                    return Ok(Rendered::nil());
                }
                let mut m = Map::new();
                for p in occ {
                    let entry = self.bytes_of(p)?;
                    // Go's generated code reads each entry into `var mapkey
                    // K` and `mapvalue := <zero>`; a field seen again
                    // replaces the earlier one (a message value is read into
                    // a fresh `&V{}`, never merged).
                    let (mut ko, mut vo) = (None, None);
                    for f in wire::fields(entry) {
                        let f = f.map_err(|e| self.wire_err(e))?;
                        match f.num {
                            1 => ko = Some(f.value),
                            2 => vo = Some(f.value),
                            _ => self.unknown_fields += 1,
                        }
                    }
                    let key = match self.render(k, ko.as_slice(), false)?.json {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.path.push(Seg::MapKey(key.clone()));
                    let r = match vo {
                        Some(p) => self.render(v, &[p], false),
                        None => self.map_value_zero(v),
                    };
                    self.path.pop();
                    // `m.F[mapkey] = mapvalue`: a key seen again replaces.
                    m.insert(key, r?.json);
                }
                // encoding/json prints map keys sorted.
                m.sort_keys();
                let e = m.is_empty();
                Rendered::new(Value::Object(m), false, e)
            }
            Ty::Named(i) => {
                let schema = self.schema;
                match &schema.ty(*i).def {
                    Def::Struct(_) | Def::Special(_) => {
                        let chunks = self.chunks(occ)?;
                        self.struct_value(*i, &chunks)?
                    }
                    Def::Alias(Ty::Slice(elem)) if !rep => {
                        // A named slice (metav1.Verbs, ExtraValue): a message
                        // whose field 1 holds the items.
                        if occ.is_empty() {
                            return Ok(Rendered::nil());
                        }
                        let mut items = Vec::new();
                        for p in occ {
                            for f in wire::fields(self.bytes_of(p)?) {
                                let f = f.map_err(|e| self.wire_err(e))?;
                                if f.num == 1 {
                                    self.slice_items(elem, &f.value, &mut items)?;
                                } else {
                                    self.unknown_fields += 1;
                                }
                            }
                        }
                        let e = items.is_empty();
                        Rendered::new(Value::Array(items), false, e)
                    }
                    Def::Alias(t) => self.render(t, occ, rep)?,
                }
            }
        })
    }

    /// A map value whose entry has no field 2: what the generated code
    /// starts `mapvalue` at. `[]byte{}` for bytes (`""`, where a nil slice
    /// would print `null`) and `&ExtraValue{}` for a named slice (non-nil
    /// and empty: `[]`); otherwise the type's zero value, as for an absent
    /// field (a struct with its zero fields, a `Quantity` `"0"`, a `Time`
    /// `null`, a string `""`).
    fn map_value_zero(&mut self, ty: &Ty) -> Result<Rendered, DecodeError> {
        let schema = self.schema;
        match ty {
            Ty::Bytes => Ok(Rendered::new(Value::String(String::new()), false, true)),
            Ty::Named(i) => match &schema.ty(*i).def {
                Def::Alias(Ty::Slice(_)) => Ok(Rendered::new(Value::Array(Vec::new()), false, true)),
                Def::Alias(t) => self.map_value_zero(t),
                _ => self.render(ty, &[], false),
            },
            _ => self.render(ty, &[], false),
        }
    }

    /// Appends the element(s) one occurrence of a repeated field holds:
    /// one, or several for a packed scalar.
    fn slice_items(&mut self, elem: &Ty, p: &Payload<'_>, items: &mut Vec<Value>) -> Result<(), DecodeError> {
        let scalar = matches!(elem, Ty::Bool | Ty::Int | Ty::Uint);
        if let (true, Payload::Bytes(b)) = (scalar, p) {
            let mut pos = 0;
            while pos < b.len() {
                let v = wire::varint(b, &mut pos).map_err(|e| self.wire_err(e))?;
                items.push(self.render(elem, &[Payload::Varint(v)], false)?.json);
            }
            return Ok(());
        }
        if let (Ty::F64, Payload::Bytes(b)) = (elem, p) {
            for c in b.chunks_exact(8) {
                let v = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                items.push(self.render(elem, &[Payload::Fixed64(v)], false)?.json);
            }
            return Ok(());
        }
        items.push(self.render(elem, std::slice::from_ref(p), false)?.json);
        Ok(())
    }

    /// Fields of a special type's message: number → occurrences.
    fn special_fields<'a>(&self, chunks: &[&'a [u8]]) -> Result<[Vec<Payload<'a>>; 4], DecodeError> {
        let mut f: [Vec<Payload<'a>>; 4] = Default::default();
        for c in chunks {
            for w in wire::fields(c) {
                let w = w.map_err(|e| self.wire_err(e))?;
                if let Some(slot) = f.get_mut(w.num as usize) {
                    slot.push(w.value);
                }
            }
        }
        Ok(f)
    }

    fn special(&mut self, s: Special, idx: usize, chunks: &[&[u8]]) -> Result<Rendered, DecodeError> {
        let f = self.special_fields(chunks)?;
        let int = |this: &Self, n: usize| -> Result<i64, DecodeError> {
            Ok(this.last_varint(&f[n])?.unwrap_or(0) as i64)
        };
        let string = |this: &Self, n: usize| -> Result<String, DecodeError> {
            Ok(match f[n].last() {
                Some(p) => go_string(this.bytes_of(p)?),
                None => String::new(),
            })
        };
        Ok(match s {
            Special::Time | Special::MicroTime => {
                // `(*Time).Unmarshal` replaces the whole time on each
                // occurrence (time_proto.go): only the last one counts, and
                // an empty one (how Go marshals the zero time) is the zero
                // time.
                let last = chunks.last().copied().unwrap_or_default();
                if last.is_empty() {
                    return Ok(Rendered::new(Value::Null, true, false));
                }
                let f = self.special_fields(&[last])?;
                let secs = self.last_varint(&f[1])?.unwrap_or(0) as i64;
                // `Timestamp.Nanos` is an int32. `Time` drops it
                // (`time.Unix(p.Seconds, 0)`); `MicroTime` truncates it
                // toward zero to microseconds before `time.Unix`, which
                // carries it into the seconds.
                let nanos = if s == Special::Time {
                    0
                } else {
                    let n = i64::from(self.last_varint(&f[2])?.unwrap_or(0) as i32);
                    n - n % 1000
                };
                let secs = secs.saturating_add(nanos.div_euclid(1_000_000_000));
                let nanos = nanos.rem_euclid(1_000_000_000);
                // `MarshalJSON` prints the zero time (year 1) as null.
                if secs == GO_ZERO_TIME_UNIX && nanos == 0 {
                    return Ok(Rendered::new(Value::Null, true, false));
                }
                let text = if s == Special::Time {
                    gotime::rfc3339(secs)
                } else {
                    gotime::rfc3339_micro(secs, nanos)
                };
                Rendered::new(Value::String(text), false, false)
            }
            Special::Duration => {
                let ns = int(self, 1)?;
                Rendered::new(Value::String(gotime::duration(ns)), ns == 0, false)
            }
            Special::Quantity => {
                let q = string(self, 1)?;
                let zero = q.is_empty() || q == "0";
                let q = if q.is_empty() { "0".to_string() } else { q };
                Rendered::new(Value::String(q), zero, false)
            }
            Special::IntOrString => {
                let kind = int(self, 1)?;
                let i = int(self, 2)? as i32;
                let st = string(self, 3)?;
                let zero = kind == 0 && i == 0 && st.is_empty();
                let json = if kind == 1 {
                    Value::String(st)
                } else {
                    Value::from(i)
                };
                Rendered::new(json, zero, false)
            }
            Special::RawExtension | Special::RawJson => match f[1].last() {
                None => Rendered::new(Value::Null, true, false),
                Some(p) => {
                    let raw = self.bytes_of(p)?;
                    if raw.is_empty() {
                        Rendered::new(Value::Null, false, false)
                    } else {
                        let v: Value = serde_json::from_slice(raw)
                            .map_err(|e| self.err(format!("embedded object is not JSON: {e}")))?;
                        Rendered::new(v, false, false)
                    }
                }
            },
            Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray => {
                let props = self.props_type(idx)?;
                let schema_field = if s == Special::PropsOrBool { 2 } else { 1 };
                let sch = if f[schema_field].is_empty() {
                    None
                } else {
                    let c = self.chunks(&f[schema_field])?;
                    Some(self.struct_value(props, &c)?.json)
                };
                match s {
                    Special::PropsOrBool => {
                        let allows = int(self, 1)? != 0;
                        let json = sch.unwrap_or(Value::Bool(allows));
                        Rendered::new(json, false, false)
                    }
                    Special::PropsOrArray => {
                        // `MarshalJSON`: the list when it has items, else the
                        // schema (a nil one prints null).
                        let json = if !f[2].is_empty() {
                            let mut items = Vec::new();
                            for p in &f[2] {
                                let c = [self.bytes_of(p)?];
                                items.push(self.struct_value(props, &c)?.json);
                            }
                            Value::Array(items)
                        } else {
                            sch.unwrap_or(Value::Null)
                        };
                        Rendered::new(json, false, false)
                    }
                    _ => {
                        let json = if !f[2].is_empty() {
                            let mut items = Vec::new();
                            for p in &f[2] {
                                items.push(Value::String(go_string(self.bytes_of(p)?)));
                            }
                            Value::Array(items)
                        } else {
                            sch.unwrap_or(Value::Null)
                        };
                        Rendered::new(json, false, false)
                    }
                }
            }
        })
    }

    fn props_type(&self, idx: usize) -> Result<usize, DecodeError> {
        let name = self.schema.ty(idx).name;
        let pkg = name.rsplit_once('.').map_or(name, |(p, _)| p);
        self.schema
            .lookup(&format!("{pkg}.JSONSchemaProps"))
            .ok_or_else(|| self.err(format!("{pkg}.JSONSchemaProps is not in the schema")))
    }
}
