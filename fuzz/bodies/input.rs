//! Structured values drawn from fuzz bytes, for the roundtrip targets
//! (`arbitrary` is not a dependency: this is the little they need). When
//! the bytes run out every draw returns zeros or empty values, so any input
//! gives a (possibly empty) sequence of operations.

/// A cursor over the fuzz input.
pub struct Input<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// Draws from `b`.
    pub fn new(b: &'a [u8]) -> Input<'a> {
        Input { b, pos: 0 }
    }

    /// Whether every byte was used.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// The next byte (0 when none is left).
    pub fn byte(&mut self) -> u8 {
        let v = self.b.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    /// A bool.
    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A u64 of 0 to 8 bytes (the first byte says how many), so that small
    /// and large values are both common.
    pub fn u64(&mut self) -> u64 {
        let n = self.byte() % 9;
        let mut v = 0u64;
        for i in 0..n {
            v |= u64::from(self.byte()) << (8 * i);
        }
        v
    }

    /// A u32 of 0 to 4 bytes.
    pub fn u32(&mut self) -> u32 {
        let n = self.byte() % 5;
        let mut v = 0u32;
        for i in 0..n {
            v |= u32::from(self.byte()) << (8 * i);
        }
        v
    }

    /// Up to `max` bytes (a u16 length, then that many bytes, fewer at
    /// the end of the input).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let want = usize::from(u16::from_le_bytes([self.byte(), self.byte()])) % (max + 1);
        let start = self.pos.min(self.b.len());
        let end = start.saturating_add(want).min(self.b.len());
        self.pos = start + want;
        &self.b[start..end]
    }

    /// A string of up to `max` bytes (lossy UTF-8).
    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    /// Up to `max` u64s.
    pub fn u64s(&mut self, max: usize) -> Vec<u64> {
        let n = usize::from(self.byte()) % (max + 1);
        (0..n).map(|_| self.u64()).collect()
    }
}
