//! CBOR values (newer clusters store custom resources as CBOR when the
//! `CBORServingAndStorage` feature is on) to JSON.
//!
//! ```text
//! d9 d9 f7            self-described CBOR tag 55799, then one data item
//! major 0/1           unsigned / negative integer
//! major 2             byte string: Kubernetes encodes Go strings as byte
//!                     strings, so they become JSON strings (lossy UTF-8)
//! major 3             text string
//! major 4/5           array / map (definite or indefinite length)
//! major 6             tag: 21/22/23 ask for base64url/base64/base16 text of
//!                     the byte string that follows; others are transparent
//! major 7             false, true, null, undefined, floats
//! ```

use base64::Engine;
use serde_json::{Map, Number, Value};

/// Why bytes are not CBOR.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct CborError {
    /// Byte offset.
    pub offset: usize,
    /// What is wrong.
    pub what: &'static str,
}

const MAX_DEPTH: usize = 128;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> CborError {
        CborError {
            offset: self.pos,
            what,
        }
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        let v = *self.b.get(self.pos).ok_or(self.err("truncated"))?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        let n = usize::try_from(n).map_err(|_| self.err("length too large"))?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(self.err("length runs past the end"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The argument of a head: `None` for indefinite length.
    fn arg(&mut self, info: u8) -> Result<Option<u64>, CborError> {
        Ok(Some(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap_or([0; 2]))),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or([0; 4]))),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or([0; 8])),
            31 => return Ok(None),
            _ => return Err(self.err("reserved additional information")),
        }))
    }

    fn at_break(&mut self) -> Result<bool, CborError> {
        if *self.b.get(self.pos).ok_or(self.err("truncated"))? == 0xff {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn bytes(&mut self, major: u8, info: u8) -> Result<Vec<u8>, CborError> {
        match self.arg(info)? {
            Some(n) => Ok(self.take(n)?.to_vec()),
            None => {
                let mut out = Vec::new();
                while !self.at_break()? {
                    let h = self.byte()?;
                    if h >> 5 != major {
                        return Err(self.err("mixed chunk types in an indefinite string"));
                    }
                    let n = self.arg(h & 31)?.ok_or(self.err("nested indefinite string"))?;
                    out.extend_from_slice(self.take(n)?);
                }
                Ok(out)
            }
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let h = self.byte()?;
        let (major, info) = (h >> 5, h & 31);
        Ok(match major {
            0 => Value::from(self.arg(info)?.ok_or(self.err("indefinite integer"))?),
            1 => {
                let n = self.arg(info)?.ok_or(self.err("indefinite integer"))?;
                match i64::try_from(n) {
                    Ok(v) => Value::from(-1 - v),
                    Err(_) => Number::from_f64(-1.0 - n as f64).map_or(Value::Null, Value::Number),
                }
            }
            2 | 3 => Value::String(String::from_utf8_lossy(&self.bytes(major, info)?).into_owned()),
            4 => {
                let mut items = Vec::new();
                match self.arg(info)? {
                    Some(n) => {
                        for _ in 0..n {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Value::Array(items)
            }
            5 => {
                let mut m = Map::new();
                let mut entry = |this: &mut Self| -> Result<(), CborError> {
                    let at = this.pos;
                    // A scalar key becomes its JSON text. Arrays and maps are
                    // refused: as text, each level of nesting would escape
                    // the quotes of the one inside, doubling the size.
                    let k = match this.item(depth + 1)? {
                        Value::String(s) => s,
                        Value::Array(_) | Value::Object(_) => {
                            return Err(CborError {
                                offset: at,
                                what: "a map key is an array or a map",
                            });
                        }
                        other => other.to_string(),
                    };
                    let v = this.item(depth + 1)?;
                    m.insert(k, v);
                    Ok(())
                };
                match self.arg(info)? {
                    Some(n) => {
                        for _ in 0..n {
                            entry(self)?;
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            entry(self)?;
                        }
                    }
                }
                Value::Object(m)
            }
            6 => {
                let tag = self.arg(info)?.ok_or(self.err("indefinite tag"))?;
                let start = self.pos;
                if matches!(tag, 21..=23) && self.b.get(start).is_some_and(|b| b >> 5 == 2) {
                    let h = self.byte()?;
                    let raw = self.bytes(2, h & 31)?;
                    let e = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
                    Value::String(match tag {
                        21 => e.encode(&raw),
                        22 => base64::engine::general_purpose::STANDARD.encode(&raw),
                        _ => raw.iter().map(|b| format!("{b:02x}")).collect(),
                    })
                } else {
                    self.item(depth + 1)?
                }
            }
            _ => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 | 23 => Value::Null,
                25 => {
                    let b = self.take(2)?;
                    float(half(u16::from_be_bytes([b[0], b[1]])))
                }
                26 => float(f64::from(f32::from_be_bytes(
                    self.take(4)?.try_into().unwrap_or([0; 4]),
                ))),
                27 => float(f64::from_be_bytes(self.take(8)?.try_into().unwrap_or([0; 8]))),
                _ => return Err(self.err("unsupported simple value")),
            },
        })
    }
}

fn float(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn half(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 => f64::NAN,
        e => (mant + 1024.0) * 2f64.powi(i32::from(e) - 25),
    };
    if h & 0x8000 != 0 { -v } else { v }
}

/// Decodes one CBOR data item (with or without the self-described tag).
pub fn to_json(b: &[u8]) -> Result<Value, CborError> {
    let mut r = Reader { b, pos: 0 };
    let v = r.item(0)?;
    if r.pos != b.len() {
        return Err(r.err("trailing bytes after the data item"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kubernetes_style_cbor() {
        // 55799({"kind": h'Widget', "spec": {"n": 1, "f": 1.5, "neg": -2, "ok": true, "l": [null]}})
        let b = [
            0xd9, 0xd9, 0xf7, 0xa2, 0x44, b'k', b'i', b'n', b'd', 0x46, b'W', b'i', b'd', b'g', b'e', b't',
            0x64, b's', b'p', b'e', b'c', 0xa5, 0x61, b'n', 0x01, 0x61, b'f', 0xf9, 0x3e, 0x00, 0x63, b'n',
            b'e', b'g', 0x21, 0x62, b'o', b'k', 0xf5, 0x61, b'l', 0x81, 0xf6,
        ];
        let v = to_json(&b).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "Widget", "spec": {"n": 1, "f": 1.5, "neg": -2, "ok": true, "l": [null]}})
        );
        for n in 0..b.len() {
            assert!(to_json(&b[..n]).is_err());
        }
    }

    #[test]
    fn scalar_map_keys_become_text_and_nested_ones_are_refused() {
        // {1: "a", true: null}
        let v = to_json(&[0xa2, 0x01, 0x61, b'a', 0xf5, 0xf6]).unwrap();
        assert_eq!(v, serde_json::json!({"1": "a", "true": null}));
        // {{{...{}: 0 ...}: 0}: 0}, 120 deep: refused at once, where turning
        // each key into text would double the size at every level.
        let mut b = vec![0xa1; 120];
        b.push(0xa0);
        b.extend(std::iter::repeat_n(0x00, 120));
        let e = to_json(&b).unwrap_err();
        assert_eq!((e.offset, e.what), (120, "a map key is an array or a map"));
    }
}
