//! A fast hasher for user keys in in-memory maps.
//!
//! std's SipHash dominated the deep scan. This is the multiply-rotate scheme
//! of rustc's FxHash over 8-byte words, started from a per-process random
//! seed so collisions cannot be prepared in advance by whoever wrote the file.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// The hasher.
#[derive(Clone, Copy, Debug)]
pub struct KeyHasher {
    h: u64,
}

impl KeyHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.h = (self.h.rotate_left(26) ^ w).wrapping_mul(K);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A final mix so that the high bits (used by hashbrown) depend on all input.
        let h = self.h;
        (h ^ (h >> 29)).wrapping_mul(K) ^ (h >> 32)
    }
}

/// Builds [`KeyHasher`]s from a seed chosen at random per process.
#[derive(Clone, Copy, Debug)]
pub struct KeyHashBuilder {
    seed: u64,
}

impl Default for KeyHashBuilder {
    fn default() -> Self {
        use std::sync::OnceLock;
        static SEED: OnceLock<u64> = OnceLock::new();
        let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64));
        KeyHashBuilder { seed }
    }
}

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { h: self.seed }
    }
}

/// A HashMap keyed by byte strings with [`KeyHasher`].
pub type KeyMap<K, V> = HashMap<K, V, KeyHashBuilder>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_hash_apart() {
        let b = KeyHashBuilder::default();
        let keys: Vec<Vec<u8>> = (0..10_000)
            .map(|i| format!("/registry/pods/ns/{i}").into_bytes())
            .collect();
        let mut hashes: Vec<u64> = keys.iter().map(|k| b.hash_one(k.as_slice())).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), keys.len());
        // Length matters even when the padding bytes are zero.
        assert_ne!(b.hash_one(b"a".as_slice()), b.hash_one(b"a\0".as_slice()));
    }
}
