//! The protobuf wire format, read without copying and with every length
//! checked against the bytes present.
//!
//! ```text
//! message  := field*
//! field    := tag(varint: number << 3 | wire type) payload
//! wire 0   varint                  1  8 bytes (fixed64)
//! wire 2   varint length, bytes    5  4 bytes (fixed32)
//! ```

/// Why bytes are not a protobuf message. `offset` counts from the start of
/// the message being read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct WireError {
    /// Byte offset.
    pub offset: usize,
    /// What is wrong.
    pub what: &'static str,
}

/// One field's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// One field as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireField<'a> {
    /// Field number.
    pub num: u32,
    /// Payload.
    pub payload: Payload<'a>,
    /// Offset of the tag.
    pub offset: usize,
}

/// Reads a varint at `*pos`.
pub fn varint(b: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = b.get(*pos) else {
            return Err(WireError {
                offset: start,
                what: "truncated varint",
            });
        };
        *pos += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError {
        offset: start,
        what: "varint longer than 10 bytes",
    })
}

/// Iterates over the fields of a message.
pub struct Fields<'a> {
    b: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The fields of `b`.
pub fn fields(b: &[u8]) -> Fields<'_> {
    Fields {
        b,
        pos: 0,
        failed: false,
    }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<WireField<'a>, WireError> {
        let offset = self.pos;
        let tag = varint(self.b, &mut self.pos)?;
        let num = u32::try_from(tag >> 3)
            .ok()
            .filter(|&n| n != 0)
            .ok_or(WireError {
                offset,
                what: "invalid field number",
            })?;
        let fixed = |this: &mut Self, n: usize| -> Result<&'a [u8], WireError> {
            let end = this
                .pos
                .checked_add(n)
                .filter(|&e| e <= this.b.len())
                .ok_or(WireError {
                    offset,
                    what: "truncated fixed-size field",
                })?;
            let s = &this.b[this.pos..end];
            this.pos = end;
            Ok(s)
        };
        let payload = match tag & 7 {
            0 => Payload::Varint(varint(self.b, &mut self.pos)?),
            1 => {
                let s = fixed(self, 8)?;
                Payload::Fixed64(u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
            }
            2 => {
                let len = varint(self.b, &mut self.pos)?;
                let len = usize::try_from(len).map_err(|_| WireError {
                    offset,
                    what: "length runs past the end",
                })?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|&e| e <= self.b.len())
                    .ok_or(WireError {
                        offset,
                        what: "length runs past the end",
                    })?;
                let s = &self.b[self.pos..end];
                self.pos = end;
                Payload::Bytes(s)
            }
            5 => {
                let s = fixed(self, 4)?;
                Payload::Fixed32(u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
            }
            _ => {
                return Err(WireError {
                    offset,
                    what: "unsupported wire type (groups or invalid)",
                });
            }
        };
        Ok(WireField { num, payload, offset })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<WireField<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.b.len() {
            return None;
        }
        let r = self.read();
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_wire_types_and_rejects_truncation() {
        let msg = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x12, 0x02, b'h', b'i', // 2: "hi"
            0x19, 1, 0, 0, 0, 0, 0, 0, 0, // 3: fixed64 1
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        let got: Vec<_> = fields(&msg).map(|f| f.unwrap()).collect();
        assert_eq!(got[0].payload, Payload::Varint(150));
        assert_eq!(got[1].payload, Payload::Bytes(b"hi"));
        assert_eq!(got[2].payload, Payload::Fixed64(1));
        assert_eq!(got[3].payload, Payload::Fixed32(2));
        for n in 1..msg.len() {
            // Never a panic; a cut inside a field is an error.
            let _ = fields(&msg[..n]).collect::<Vec<_>>();
        }
        assert!(fields(&[0x12, 0x05, 1]).next().unwrap().is_err());
        assert!(fields(&[0x00]).next().unwrap().is_err());
    }
}
