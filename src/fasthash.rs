//! A hash for the short byte-string keys of hot maps (barcodes, site names).
//!
//! `xxh3::Xxh3Builder` gives each key a streaming hasher: 500-odd bytes of state and
//! a finalisation per lookup, which cost more than the table probe itself when
//! 25 million rows look up their tube. Here each `write` is one one-shot `xxh3_64`
//! call, seeded by what came before (a slice's length prefix, a tuple's first part).

use std::hash::{BuildHasher, Hasher};

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Builds [`KeyHasher`]s; use as a `HashMap`'s hasher.
///
/// ```
/// use std::collections::HashMap;
/// use pooltrack::fasthash::KeyHash;
/// let mut tubes: HashMap<&[u8], u32, KeyHash> = HashMap::with_hasher(KeyHash);
/// tubes.insert(b"PL0001", 0);
/// assert_eq!(tubes.get(&b"PL0001"[..]), Some(&0));
/// assert_eq!(tubes.get(&b"PL0002"[..]), None);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHash;

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// One-shot xxh3 over each written piece, chained through the seed.
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // A multiply-rotate mix: length prefixes and small integers need no xxh3 call.
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash<T: Hash + ?Sized>(v: &T) -> u64 {
        KeyHash.hash_one(v)
    }

    #[test]
    fn keys_differ_and_lengths_count() {
        assert_ne!(hash(&b"PL0001"[..]), hash(&b"PL0002"[..]));
        assert_eq!(hash(&b"PL0001"[..]), hash(&b"PL0001"[..]));
        // ("ab", "c") and ("a", "bc") must not collide through concatenation.
        assert_ne!(hash(&("ab", "c")), hash(&("a", "bc")));
    }
}
