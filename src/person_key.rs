//! Person keys: the 128-bit key every person sidecar sorts and groups a person's rows
//! by, fixed per store by its format so that one person has one key in every file.
//!
//! Exact keys (format 4) need no hash for the ids nearly every row holds: a resident
//! id's 64-bit code through a bijection, so the key is the id and the sidecar stores it
//! in 8 bytes; any other id by a 128-bit hash kept apart from them by its top bit.

use crate::text::resident_key;

/// How a store keys persons in its person indexes: fixed per store by its format, so
/// that one person has one key in every sidecar of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PersonKeys {
    /// Formats 1 to 3: the xxh3-128 hash of the id's text.
    Hashed,
    /// Format 4, the stores this pooltrack makes: a resident id ([`resident_key`])
    /// keyed by a bijection of its code, below 2^64; any other id by its xxh3-128 hash
    /// with the top bit set.
    #[default]
    Exact,
}

impl PersonKeys {
    /// The keys of a store of `format`.
    pub fn of_format(format: u32) -> PersonKeys {
        if format >= 4 {
            PersonKeys::Exact
        } else {
            PersonKeys::Hashed
        }
    }

    /// The key of a person id.
    ///
    /// ```
    /// use pooltrack::store::index::PersonKeys;
    /// let resident = PersonKeys::Exact.key("11010519491231002X");
    /// assert!(resident < 1 << 64);
    /// assert!(PersonKeys::Exact.key("P-0001") >= 1 << 127);
    /// assert_ne!(PersonKeys::Hashed.key("11010519491231002X"), resident);
    /// ```
    pub fn key(self, person: &str) -> u128 {
        match self {
            PersonKeys::Hashed => xxhash_rust::xxh3::xxh3_128(person.as_bytes()),
            PersonKeys::Exact => match resident_key(person.as_bytes()) {
                Some(code) => resident_person_key(code),
                None => other_person_key(person.as_bytes()),
            },
        }
    }
}

/// The exact key of a resident id's code ([`resident_key`]): the code through the
/// splitmix64 finalizer, a bijection on 64 bits, so keys are spread evenly over
/// `0..2^64` (codes cluster by region and birth date) and never collide.
pub fn resident_person_key(code: u64) -> u128 {
    let mut z = code;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    u128::from(z ^ (z >> 31))
}

/// The exact-scheme key of an id of another form: its xxh3-128 hash with the top bit
/// set, above every resident key.
pub fn other_person_key(id: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id) | 1 << 127
}
