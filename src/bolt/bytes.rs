//! Bounds-checked little- and big-endian integer reads: the one place where
//! bytes from disk become integers.

/// Reads a little-endian u16 at `off`, or `None` past the end.
#[inline]
pub fn le_u16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Reads a little-endian u32 at `off`, or `None` past the end.
#[inline]
pub fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Reads a little-endian u64 at `off`, or `None` past the end.
#[inline]
pub fn le_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// Returns `b[off..off+len]`, or `None` if any part is out of range.
#[inline]
pub fn slice(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}
