//! The one protobuf wire reader: zero-copy, every length checked against
//! the bytes present. It reads the hot records (`walpb.Record`,
//! `raftpb.Entry`, `mvccpb.KeyValue`) and Kubernetes' objects; the rarer
//! messages go through prost (`crate::pb`).
//!
//! Varints follow the decoders etcd and Kubernetes run (gogo protobuf's
//! generated code): at most 10 bytes, and bits past the 64th in the tenth
//! byte are dropped; an eleventh byte is an error.
//!
//! ```text
//! field  = key value
//! key    = varint (field number << 3 | wire type)
//! value  = varint (type 0) | 8 bytes (type 1) | varint length + bytes (type 2) | 4 bytes (type 5)
//! ```
//!
//! Groups (wire types 3 and 4) are refused: etcd never writes them.

use std::fmt;

/// Why bytes are not a valid protobuf message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A varint is longer than 10 bytes.
    #[error("a varint at byte {at} is longer than 10 bytes")]
    BadVarint {
        /// Byte offset in the message.
        at: usize,
    },
    /// A varint runs past the end of the message.
    #[error("a varint at byte {at} runs past the end of the message")]
    VarintPastEnd {
        /// Byte offset in the message.
        at: usize,
    },
    /// A length-delimited or fixed field runs past the end.
    #[error("field {field} at byte {at} runs past the end of the message ({len} bytes)")]
    Truncated {
        /// Field number.
        field: u32,
        /// Byte offset of its key in the message.
        at: usize,
        /// Message length.
        len: usize,
    },
    /// An unknown or unsupported wire type.
    #[error("field {field} at byte {at} has wire type {wire_type}, which etcd never writes")]
    WireType {
        /// Field number.
        field: u32,
        /// Byte offset of its key.
        at: usize,
        /// The wire type.
        wire_type: u8,
    },
    /// Field number 0 is invalid.
    #[error("field number 0 at byte {at}")]
    FieldZero {
        /// Byte offset of the key.
        at: usize,
    },
    /// A known field has the wrong wire type.
    #[error("field {field} has wire type {wire_type}, expected {expected}")]
    Mismatch {
        /// Field number.
        field: u32,
        /// Found.
        wire_type: u8,
        /// Expected.
        expected: u8,
    },
}

impl WireError {
    /// The byte offset the error is at (of the field's key; none for a
    /// wire type mismatch found after the field was read).
    pub fn offset(&self) -> Option<usize> {
        match *self {
            WireError::BadVarint { at }
            | WireError::VarintPastEnd { at }
            | WireError::Truncated { at, .. }
            | WireError::WireType { at, .. }
            | WireError::FieldZero { at } => Some(at),
            WireError::Mismatch { .. } => None,
        }
    }

    /// Whether Go's generated decoder reports this as `io.ErrUnexpectedEOF`
    /// (a message cut short), which etcd's WAL decoder takes for a torn
    /// write in the last segment.
    pub fn is_unexpected_eof(&self) -> bool {
        matches!(
            self,
            WireError::VarintPastEnd { .. } | WireError::Truncated { .. }
        )
    }
}

/// A field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl Value<'_> {
    /// The wire type number.
    pub fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Varint(v) | Value::Fixed64(v) => write!(f, "{v}"),
            Value::Fixed32(v) => write!(f, "{v}"),
            Value::Bytes(b) => write!(f, "{} bytes", b.len()),
        }
    }
}

/// Reads a varint at `*pos`, advancing it.
#[inline]
pub fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(start + i) else {
            return Err(WireError::VarintPastEnd { at: start });
        };
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos = start + i + 1;
            return Ok(v);
        }
    }
    Err(WireError::BadVarint { at: start })
}

/// One field as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireField<'a> {
    /// Field number.
    pub num: u32,
    /// Its value.
    pub value: Value<'a>,
    /// Byte offset of its key.
    pub offset: usize,
}

/// Iterates over the fields of a message: [`Fields::next_field`], or as an
/// iterator of [`WireField`]s that ends after the first error.
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The fields of `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields::new(buf)
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<WireField<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let offset = self.pos;
        match self.next_field() {
            Ok(Some((num, value))) => Some(Ok(WireField { num, value, offset })),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl<'a> Fields<'a> {
    /// Starts at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// The next field, `Ok(None)` at the end.
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = varint(self.buf, &mut self.pos)?;
        let field = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        if field == 0 {
            return Err(WireError::FieldZero { at });
        }
        let wt = (key & 7) as u8;
        let len = self.buf.len();
        let truncated = WireError::Truncated { field, at, len };
        let v = match wt {
            0 => Value::Varint(varint(self.buf, &mut self.pos)?),
            1 => {
                let s = self.buf.get(self.pos..self.pos + 8).ok_or(truncated)?;
                self.pos += 8;
                Value::Fixed64(u64::from_le_bytes(s.try_into().map_err(|_| truncated)?))
            }
            2 => {
                let n = varint(self.buf, &mut self.pos)?;
                let n = usize::try_from(n).map_err(|_| truncated)?;
                let end = self.pos.checked_add(n).ok_or(truncated)?;
                let s = self.buf.get(self.pos..end).ok_or(truncated)?;
                self.pos = end;
                Value::Bytes(s)
            }
            5 => {
                let s = self.buf.get(self.pos..self.pos + 4).ok_or(truncated)?;
                self.pos += 4;
                Value::Fixed32(u32::from_le_bytes(s.try_into().map_err(|_| truncated)?))
            }
            _ => {
                return Err(WireError::WireType {
                    field,
                    at,
                    wire_type: wt,
                });
            }
        };
        Ok(Some((field, v)))
    }
}

/// The varint of a field expected to be a varint.
#[inline]
pub fn expect_varint(field: u32, v: Value<'_>) -> Result<u64, WireError> {
    match v {
        Value::Varint(x) => Ok(x),
        other => Err(WireError::Mismatch {
            field,
            wire_type: other.wire_type(),
            expected: 0,
        }),
    }
}

/// The bytes of a field expected to be length-delimited.
#[inline]
pub fn expect_bytes(field: u32, v: Value<'_>) -> Result<&[u8], WireError> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => Err(WireError::Mismatch {
            field,
            wire_type: other.wire_type(),
            expected: 2,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields() {
        let mut p = 0;
        assert_eq!(varint(&[0xac, 0x02], &mut p), Ok(300));
        assert_eq!(p, 2);
        let mut p = 0;
        assert!(varint(&[0x80, 0x80], &mut p).is_err());
        assert!(varint(&[0xff; 11], &mut 0).is_err());
        // field 1 varint 4, field 3 bytes "ab"
        let mut f = Fields::new(&[0x08, 0x04, 0x1a, 0x02, b'a', b'b']);
        assert_eq!(f.next_field(), Ok(Some((1, Value::Varint(4)))));
        assert_eq!(f.next_field(), Ok(Some((3, Value::Bytes(b"ab")))));
        assert_eq!(f.next_field(), Ok(None));
        // length past the end
        let mut f = Fields::new(&[0x1a, 0x05, b'a']);
        assert!(matches!(
            f.next_field(),
            Err(WireError::Truncated { field: 3, .. })
        ));
        // a huge length does not overflow
        let mut f = Fields::new(&[0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(f.next_field().is_err());
        // groups are refused
        let mut f = Fields::new(&[0x0b]);
        assert!(matches!(
            f.next_field(),
            Err(WireError::WireType { wire_type: 3, .. })
        ));
        let mut f = Fields::new(&[0x00]);
        assert!(matches!(f.next_field(), Err(WireError::FieldZero { .. })));
    }

    /// Ten bytes with the tenth over 1: kept to 64 bits, as gogo's
    /// generated decoders (etcd's, Kubernetes') do; eleven bytes: an error.
    #[test]
    fn varint_length_follows_gogo() {
        let mut ten = [0xffu8; 10];
        ten[9] = 0x7f;
        assert_eq!(varint(&ten, &mut 0), Ok(u64::MAX));
        let mut eleven = [0xffu8; 11];
        eleven[10] = 0x01;
        assert_eq!(varint(&eleven, &mut 0), Err(WireError::BadVarint { at: 0 }));
    }

    #[test]
    fn iterates_all_wire_types_with_offsets_and_stops_at_an_error() {
        let msg = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x12, 0x02, b'h', b'i', // 2: "hi"
            0x19, 1, 0, 0, 0, 0, 0, 0, 0, // 3: fixed64 1
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        let got: Vec<WireField<'_>> = fields(&msg).map(|f| f.unwrap()).collect();
        assert_eq!(got[0].value, Value::Varint(150));
        assert_eq!((got[1].value, got[1].offset), (Value::Bytes(b"hi"), 3));
        assert_eq!((got[2].value, got[2].offset), (Value::Fixed64(1), 7));
        assert_eq!((got[3].value, got[3].offset), (Value::Fixed32(2), 16));
        for n in 1..msg.len() {
            // Never a panic; a cut inside a field is an error, and the last item.
            let items: Vec<_> = fields(&msg[..n]).collect();
            assert!(items.iter().rev().skip(1).all(Result::is_ok));
        }
        assert_eq!(fields(&[0x12, 0x05, 1]).count(), 1);
        assert!(fields(&[0x00]).next().unwrap().is_err());
    }
}
