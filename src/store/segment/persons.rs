//! The person index of a segment (round or population): records of the person's key
//! and the row, sorted by key, then row ([`index::Kind::Persons`]).

use std::path::Path;

use rayon::prelude::*;

use super::hashed::HashingWriter;
use super::pipelined;
use crate::store::index::{self, IndexWriter, PersonKeys};
use crate::store::manifest::FileRef;
use crate::{Error, Result};

/// Rows a person-index part keys and partitions on its own.
const PERSON_PART: usize = 1 << 20;

/// Buckets of the radix pass: keys below 2^64 by their byte 8, the others by byte 0.
const BUCKETS: usize = 512;

/// The radix bucket of a record: buckets in key order, each of keys spread evenly
/// (exact resident keys are below 2^64, with eight zero bytes first).
fn bucket(r: &[u8; 20]) -> usize {
    if r[..8] == [0; 8] {
        usize::from(r[8])
    } else {
        256 + usize::from(r[0])
    }
}

/// Writes the person index of the rows `order` of `person_key` (record `k` is row `k` of
/// the segment), keyed by `keys`: records (key big-endian, row) sorted by key, then
/// row.
///
/// A radix pass instead of one big sort: each part of a million rows is keyed (reading
/// the ids in memory order) and split by the key's leading byte ([`bucket`]: keys are
/// uniform, so buckets of equal size); then each bucket, gathered from every part, is
/// sorted on its own while it fits in cache, on all cores, and written in bucket order.
/// One `memcmp`-based sort of all 25 million records had been the ingest's largest cost.
pub(super) fn write_person_index(
    root: &Path,
    path: &Path,
    n: usize,
    keys: PersonKeys,
    person_key: impl Fn(usize) -> u128 + Sync,
) -> Result<FileRef> {
    let part_starts: Vec<usize> = (0..n).step_by(PERSON_PART).collect();
    let parts: Vec<(Vec<[u8; 20]>, Vec<usize>)> = part_starts
        .par_iter()
        .map(|&base| {
            let mut start = vec![0usize; BUCKETS + 1];
            let records: Vec<[u8; 20]> = (base..n.min(base + PERSON_PART))
                .map(|k| {
                    let row = u32::try_from(k).unwrap_or(u32::MAX);
                    index::person_record(person_key(k), row)
                })
                .collect();
            for r in &records {
                start[bucket(r) + 1] += 1;
            }
            for b in 0..BUCKETS {
                start[b + 1] += start[b];
            }
            let mut next = start.clone();
            let mut split = vec![[0u8; 20]; records.len()];
            for r in records {
                let slot = &mut next[bucket(&r)];
                split[*slot] = r;
                *slot += 1;
            }
            (split, start)
        })
        .collect();
    let residents: usize = parts.iter().map(|(_, start)| start[256]).sum();
    let mut w = IndexWriter::persons(
        HashingWriter::create(path)?,
        keys,
        n as u64,
        residents as u64,
    )
    .map_err(|e| Error::io(path, e))?;
    // Buckets are sorted a few per core at a time, each window written while the next
    // one sorts.
    let buckets: Vec<usize> = (0..BUCKETS).collect();
    let sort_window = |group: &[usize]| -> Result<Vec<Vec<[u8; 20]>>> {
        Ok(group
            .par_iter()
            .map(|&b| {
                sort_bucket(
                    parts
                        .iter()
                        .map(|(split, start)| &split[start[b]..start[b + 1]]),
                    if b < 256 { 9 } else { 1 },
                )
            })
            .collect())
    };
    pipelined(
        &buckets,
        rayon::current_num_threads() * 4,
        sort_window,
        |sorted| {
            sorted.iter().try_for_each(|bucket| {
                w.push_all(bucket.as_flattened())
                    .map_err(|e| Error::io(path, e))
            })
        },
    )?;
    w.finish()
        .map_err(|e| Error::io(path, e))?
        .finish(root, path)
}

/// Sorts the person records of one bucket (gathered from `pieces`) by key, then row: a
/// counting sort on the 16 key bits from byte `at` on, those after the bucket's byte
/// (keys are uniform, so about one record per value at 25 million persons), then the
/// few records sharing a slot in full order. Two passes over the bucket instead of a
/// comparison sort's twenty.
fn sort_bucket<'a>(
    pieces: impl Iterator<Item = &'a [[u8; 20]]> + Clone,
    at: usize,
) -> Vec<[u8; 20]> {
    let slot = |r: &[u8; 20]| usize::from(u16::from_be_bytes([r[at], r[at + 1]]));
    let mut start = vec![0u32; (1 << 16) + 1];
    let mut len = 0u32;
    for r in pieces.clone().flatten() {
        start[slot(r) + 1] += 1;
        len += 1;
    }
    for s in 0..1 << 16 {
        start[s + 1] += start[s];
    }
    let mut next = start.clone();
    let mut out = vec![[0u8; 20]; len as usize];
    for r in pieces.flatten() {
        let at = &mut next[slot(r)];
        out[*at as usize] = *r;
        *at += 1;
    }
    for w in start.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if b - a > 1 {
            out[a..b].sort_unstable_by_key(|r| index::person_entry(r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both key schemes' sidecars hold every row once, sorted by key then row, the
    /// exact one with its residents stored short: against a plain sort of the rows.
    #[test]
    fn person_index_is_every_row_sorted_by_key_then_row() {
        let dir = tempfile::tempdir().expect("tmp");
        let ids: Vec<String> = (0..40_000u64)
            .map(|i| match i % 7 {
                // Another form of id, some on several rows.
                0 => format!("P-{}", i % 1000),
                // A resident on many rows.
                1 => "11010519491231002X".to_owned(),
                // Residents (17 digits and a check character), one row each.
                _ => format!("{:017}{}", 110_105_194_912_310_000u64 / 10 + i * 7, i % 10),
            })
            .collect();
        for keys in [PersonKeys::Hashed, PersonKeys::Exact] {
            let path = dir.path().join(format!("{keys:?}.persons"));
            write_person_index(dir.path(), &path, ids.len(), keys, |k| keys.key(&ids[k]))
                .expect("write");
            let f = index::IndexFile::open(&path, index::Kind::Persons).expect("open");
            let mut want: Vec<(u128, u32)> = (0..ids.len())
                .map(|k| (keys.key(&ids[k]), u32::try_from(k).expect("small")))
                .collect();
            want.sort_unstable();
            let got: Vec<(u128, u32)> = (0..f.len())
                .map(|i| (f.person(i), f.person_row(i)))
                .collect();
            assert_eq!(got, want, "{keys:?}");
            let residents = want.iter().filter(|(k, _)| *k < 1 << 64).count();
            match keys {
                PersonKeys::Exact => assert!(residents > 30_000 && f.short_len() == residents),
                PersonKeys::Hashed => assert_eq!(f.short_len(), 0),
            }
        }
    }

    #[test]
    fn bucket_sort_orders_by_hash_then_row() {
        // Hashes sharing the top byte, some sharing 16-bit slots and whole hashes.
        let mut records = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for row in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hash = (u128::from(x) << 64 | u128::from(x.rotate_left(7))) & !(0xff << 120);
            let hash = match row % 10 {
                0 => hash & !(0xffff_u128 << 104), // same slot as others
                1 => 42,                           // one person, many rows
                _ => hash,
            };
            records.push(index::person_record(hash, row));
        }
        let (a, b) = records.split_at(1700);
        let sorted = sort_bucket([a, b].into_iter(), 1);
        let mut expected = records.clone();
        expected.sort_unstable_by_key(|r| index::person_entry(r));
        assert_eq!(sorted, expected);
    }
}
