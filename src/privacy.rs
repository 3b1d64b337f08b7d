//! Pseudonyms for person ids in data that leaves the testing office.
//!
//! Person ids are ID-card numbers: personal data. A worklist or status export shared
//! with a district office or researchers can carry a **pseudonym** instead
//! (`--pseudonymize KEY_FILE`): the same person gets the same pseudonym in every file
//! made with the same key, so files can still be joined, but nobody without the key
//! can tell whose it is.
//!
//! Why a *keyed* cryptographic hash, and why BLAKE3:
//! - an unkeyed hash (SHA-256, xxh3...) of an ID-card number is no pseudonym: the
//!   numbers have a known structure (region, birth date, sequence, check digit), about
//!   10^10 candidates per city, so anyone can hash every candidate and read the table
//!   backwards in minutes;
//! - a fast non-cryptographic hash with a secret seed (xxh3 with a seed) is not a
//!   pseudorandom function: it is not designed to keep its seed secret from someone who
//!   sees input/output pairs, and one known person is enough to start;
//! - BLAKE3's keyed mode is a pseudorandom function with a 256-bit key (the same
//!   guarantee HMAC gives), is fast enough for 25 million ids, and is one small crate.
//!
//! The key is derived from the key file's content with BLAKE3's key derivation mode,
//! so a key file of any length works; leading and trailing whitespace (a newline an
//! editor adds) is ignored, so the same file always gives the same pseudonyms. A key
//! file must hold at least 16 bytes; make one with `pooltrack key new pseudonym.key`
//! (32 random bytes from the operating system as hex, in a new 0600 file) and keep it
//! like a password.
//!
//! A pseudonym is the first 128 bits of the keyed hash, as 32 lowercase hex digits:
//! collisions are out of practical reach (about 10^-24 for a 25-million-person round),
//! and it is a valid person id (at most 64 printable characters), so a pseudonymized
//! export can itself be ingested.
//!
//! Rows are reordered where the order was decided by the person id (the status export
//! is sorted by person; worklists break ties by person): sorted by the real id, the
//! order of the pseudonyms would leak it.

use std::io::Read;
use std::path::Path;

use crate::worklist::PersonRow;
use crate::{Error, Result};

/// Fewest bytes of secret a key file must hold.
pub(crate) const MIN_SECRET: usize = 16;
/// Most bytes read from a key file: it is a short secret, not a data file.
const MAX_SECRET: u64 = 64 * 1024;
/// BLAKE3 key-derivation context: fixed, so the same key file always gives the same key.
const CONTEXT: &str = "pooltrack 2022-04-02 person id pseudonyms v1";

/// Replaces person ids with keyed pseudonyms.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: [u8; 32],
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer { key: <secret> }")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer for a secret (leading and trailing whitespace ignored).
    pub(crate) fn from_secret(secret: &[u8]) -> Result<Pseudonymizer> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET {
            return Err(Error::Usage(format!(
                "a pseudonym key must hold at least {MIN_SECRET} bytes of secret, this one holds {}; make one with: pooltrack key new pseudonym.key",
                secret.len()
            )));
        }
        Ok(Pseudonymizer {
            key: blake3::derive_key(CONTEXT, secret),
        })
    }

    /// A pseudonymizer for the secret in `path`.
    pub fn from_key_file(path: &Path) -> Result<Pseudonymizer> {
        let usage = |why: String| Error::Usage(format!("--pseudonymize {}: {why}", path.display()));
        let file = std::fs::File::open(path).map_err(|e| {
            let make = if e.kind() == std::io::ErrorKind::NotFound {
                format!("; make a key with: pooltrack key new {}", path.display())
            } else {
                String::new()
            };
            usage(format!("cannot read the key file: {e}{make}"))
        })?;
        let mut secret = Vec::new();
        file.take(MAX_SECRET + 1)
            .read_to_end(&mut secret)
            .map_err(|e| usage(format!("cannot read the key file: {e}")))?;
        if secret.len() as u64 > MAX_SECRET {
            return Err(usage(format!(
                "the key file is over {MAX_SECRET} bytes; a key is a short secret"
            )));
        }
        Pseudonymizer::from_secret(&secret).map_err(|e| usage(e.to_string()))
    }

    /// The pseudonym of one person id: 32 hex digits.
    pub fn pseudonym(&self, person: &str) -> String {
        let mut out = String::with_capacity(32);
        crate::text::push_hex(&mut out, &self.digest(person));
        out
    }

    /// The bytes a pseudonym prints: the first 16 of the keyed hash of the id.
    pub fn digest(&self, person: &str) -> [u8; 16] {
        let hash = blake3::keyed_hash(&self.key, person.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&hash.as_bytes()[..16]);
        out
    }

    /// Pseudonymizes a status export and sorts it by pseudonym (it was sorted by id).
    pub fn export(&self, rows: &mut [PersonRow]) {
        self.replace(rows);
        rows.sort_by(|a, b| a.person.cmp(&b.person));
    }

    /// Pseudonymizes a worklist, keeping its order (lowest Ct first, or by report
    /// time) but reordering the rows whose order only the person id decided.
    pub fn worklist(&self, rows: &mut [PersonRow]) {
        self.replace(rows);
        let same = |a: &PersonRow, b: &PersonRow| {
            let bits = |c: Option<f32>| c.map(f32::to_bits);
            bits(a.ct_orf1ab) == bits(b.ct_orf1ab)
                && bits(a.ct_n) == bits(b.ct_n)
                && a.reported_at == b.reported_at
                && a.result == b.result
                && a.status == b.status
        };
        let mut start = 0;
        while start < rows.len() {
            let mut end = start + 1;
            while end < rows.len() && same(&rows[start], &rows[end]) {
                end += 1;
            }
            rows[start..end].sort_by(|a, b| (&a.tube, &a.person).cmp(&(&b.tube, &b.person)));
            start = end;
        }
    }

    fn replace(&self, rows: &mut [PersonRow]) {
        for r in rows {
            r.person = self.pseudonym(&r.person);
        }
    }
}

/// Whether a key file is readable by its owner only (a warning otherwise).
pub fn key_file_is_private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // No bit for group or others: the mask says so more plainly than trailing zeros.
    #[allow(clippy::verbose_bit_mask)]
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_pseudonym_other_key_other_pseudonym() {
        let a = Pseudonymizer::from_secret(b"correct horse battery staple").expect("key");
        let a2 = Pseudonymizer::from_secret(b"  correct horse battery staple\n").expect("key");
        let b = Pseudonymizer::from_secret(b"correct horse battery stapler").expect("key");
        let id = "110101199003077777";
        let p = a.pseudonym(id);
        assert_eq!(p.len(), 32);
        assert!(p.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(p, a2.pseudonym(id));
        assert_ne!(p, b.pseudonym(id));
        assert_ne!(p, a.pseudonym("110101199003077778"));
        assert!(crate::model::check_person(&p).is_ok());
    }

    #[test]
    fn short_keys_are_refused() {
        let err = Pseudonymizer::from_secret(b"  short \n").expect_err("short");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("at least 16"), "{err}");
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("no.key");
        let err = Pseudonymizer::from_key_file(&missing).expect_err("missing");
        assert!(err.to_string().contains("no.key"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn the_key_is_not_printed() {
        let a = Pseudonymizer::from_secret(b"a secret that must not leak").expect("key");
        assert!(!format!("{a:?}").contains("secret that"));
    }
}
