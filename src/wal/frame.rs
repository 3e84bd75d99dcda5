//! WAL frames: how records are laid out in a segment file.
//!
//! ```text
//! offset   size  field
//! 0        8     length word, little-endian u64:
//!                  bits 0..56   N, the record length
//!                  bit  63      set when padding follows
//!                  bits 56..59  P, the padding length (1..7), when bit 63 is set
//! 8        N     the walpb.Record
//! 8+N      P     zero padding: every frame starts 8-byte aligned
//! ```
//!
//! A length word of 0 (the zero-filled preallocated space) or the end of the
//! file ends a segment. etcd 3.4/3.5 refuse records of 10 MiB or more.

/// Bytes of the length word.
pub const HEADER: usize = 8;

/// etcd 3.4/3.5 refuse a record when `N >= MAX_RECORD - P`
/// (`ErrMaxWALEntrySizeLimitExceeded`).
pub const MAX_RECORD: u64 = 10 * 1024 * 1024;

/// Disk sector size etcd assumes when it tells a torn write from corruption.
pub const SECTOR: usize = 512;

/// A frame that lies within its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the length word in the segment.
    pub offset: usize,
    /// The record bytes.
    pub body: &'a [u8],
    /// Padding length.
    pub pad: usize,
    /// Whether the length word is exactly what etcd's encoder writes (the
    /// top byte is `0x80|P` with P = the padding to 8 bytes, or 0 when none
    /// is needed). etcd does not check this; salvage uses it to tell frames
    /// from garbage.
    pub canonical: bool,
}

impl Frame<'_> {
    /// Total bytes: length word, record and padding.
    pub fn len(&self) -> usize {
        HEADER + self.body.len() + self.pad
    }

    /// Always false: a frame has at least its length word.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of the next frame.
    pub fn end(&self) -> usize {
        self.offset + self.len()
    }
}

/// What is at an offset of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot<'a> {
    /// A frame.
    Frame(Frame<'a>),
    /// The segment ends here: end of file, or a zero length word.
    End {
        /// True for a zero length word (preallocated space), false for EOF.
        marker: bool,
    },
}

/// Why no frame can be read at an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer than 8 bytes remain: the length word itself is cut off.
    #[error("only {remaining} bytes remain at offset {offset}, too few for a length word")]
    ShortWord {
        /// Offset.
        offset: usize,
        /// Bytes left in the segment.
        remaining: usize,
    },
    /// The record length is 10 MiB or more.
    #[error("the length word at offset {offset} claims a record of {len} bytes; etcd refuses 10 MiB or more")]
    TooLarge {
        /// Offset.
        offset: usize,
        /// Claimed record length.
        len: u64,
    },
    /// The frame runs past the end of the segment.
    #[error(
        "the frame at offset {offset} claims {len} record bytes and {pad} padding bytes, but only {remaining} bytes follow the length word"
    )]
    PastEnd {
        /// Offset.
        offset: usize,
        /// Claimed record length.
        len: u64,
        /// Claimed padding.
        pad: usize,
        /// Bytes after the length word.
        remaining: usize,
    },
}

impl FrameError {
    /// The offset of the frame.
    pub fn offset(&self) -> usize {
        match *self {
            FrameError::ShortWord { offset, .. }
            | FrameError::TooLarge { offset, .. }
            | FrameError::PastEnd { offset, .. } => offset,
        }
    }
}

/// Splits a length word into (record length, padding), as etcd does.
#[inline]
pub fn decode_word(word: u64) -> (u64, usize) {
    let len = word & 0x00ff_ffff_ffff_ffff;
    let pad = if (word as i64) < 0 {
        ((word >> 56) & 7) as usize
    } else {
        0
    };
    (len, pad)
}

/// The length word etcd writes for a record of `len` bytes.
pub fn encode_word(len: u64) -> u64 {
    let pad = (8 - len % 8) % 8;
    if pad == 0 { len } else { len | ((0x80 | pad) << 56) }
}

/// Reads the frame at `offset` of `seg`.
#[inline]
pub fn read(seg: &[u8], offset: usize) -> Result<Slot<'_>, FrameError> {
    let Some(rest) = seg.get(offset..) else {
        return Ok(Slot::End { marker: false });
    };
    if rest.is_empty() {
        return Ok(Slot::End { marker: false });
    }
    let Some(w) = rest.get(..HEADER) else {
        return Err(FrameError::ShortWord {
            offset,
            remaining: rest.len(),
        });
    };
    let word = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
    if word == 0 {
        return Ok(Slot::End { marker: true });
    }
    let (len, pad) = decode_word(word);
    if len >= MAX_RECORD - pad as u64 {
        return Err(FrameError::TooLarge { offset, len });
    }
    let remaining = rest.len() - HEADER;
    // len < 10 MiB, so this cannot overflow.
    let need = len as usize + pad;
    if need > remaining {
        return Err(FrameError::PastEnd {
            offset,
            len,
            pad,
            remaining,
        });
    }
    let body = &rest[HEADER..HEADER + len as usize];
    Ok(Slot::Frame(Frame {
        offset,
        body,
        pad,
        canonical: encode_word(len) == word,
    }))
}

/// Index of the first non-zero byte of `b`.
pub fn first_nonzero(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(64);
    let mut base = 0;
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            acc |= u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        }
        if acc != 0 {
            return c.iter().position(|&x| x != 0).map(|p| base + p);
        }
        base += 64;
    }
    chunks.remainder().iter().position(|&x| x != 0).map(|p| base + p)
}

/// Whether etcd would call damage in the frame at `offset` (record and
/// padding bytes `data`) a torn write: some 512-byte disk sector of it,
/// counted from the start of the file, is all zeros.
pub fn has_zero_sector(offset: usize, data: &[u8]) -> bool {
    let mut file_off = offset + HEADER;
    let mut cur = 0;
    while cur < data.len() {
        let n = (SECTOR - file_off % SECTOR).min(data.len() - cur);
        if data[cur..cur + n].iter().all(|&b| b == 0) {
            return true;
        }
        file_off += n;
        cur += n;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(decode_word(encode_word(4)), (4, 4));
        assert_eq!(encode_word(4), 0x8400_0000_0000_0004);
        assert_eq!(encode_word(16), 16);
        assert_eq!(decode_word(encode_word(0x1f)), (0x1f, 1));
    }

    #[test]
    fn frames() {
        // The first 16 bytes of every new WAL: a crc record of 4 bytes, padded.
        let seg = [
            4, 0, 0, 0, 0, 0, 0, 0x84, 8, 4, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let Ok(Slot::Frame(f)) = read(&seg, 0) else {
            panic!()
        };
        assert_eq!(
            (f.body, f.pad, f.end(), f.canonical),
            (&[8, 4, 16, 0][..], 4, 16, true)
        );
        assert_eq!(read(&seg, 16), Ok(Slot::End { marker: true }));
        assert_eq!(read(&seg, 24), Ok(Slot::End { marker: false }));
        assert_eq!(read(&seg, 99), Ok(Slot::End { marker: false }));
        assert!(matches!(
            read(&seg[..20], 16),
            Err(FrameError::ShortWord { remaining: 4, .. })
        ));
        let mut big = seg;
        big[3] = 0xff;
        assert!(matches!(read(&big, 0), Err(FrameError::TooLarge { .. })));
        let mut past = seg;
        past[0] = 17;
        assert!(matches!(read(&past, 0), Err(FrameError::PastEnd { .. })));
    }

    #[test]
    fn zero_scan() {
        let mut b = vec![0u8; 1000];
        assert_eq!(first_nonzero(&b), None);
        b[999] = 1;
        assert_eq!(first_nonzero(&b), Some(999));
        b[70] = 1;
        assert_eq!(first_nonzero(&b), Some(70));
        // sector chunks follow file offsets: a frame at 504 has its data from 512
        let mut d = vec![1u8; 600];
        assert!(!has_zero_sector(0, &d));
        d[504..600].fill(0);
        assert!(has_zero_sector(0, &d));
    }
}
