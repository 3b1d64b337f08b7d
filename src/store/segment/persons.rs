//! The person index of a segment (round or population): 20-byte records of the
//! person's hash and the row, sorted by hash, then row.

use std::path::Path;

use rayon::prelude::*;

use super::hashed::HashingWriter;
use super::pipelined;
use crate::store::index::{self, IndexWriter, Kind};
use crate::store::manifest::FileRef;
use crate::{Error, Result};

/// Rows a person-index part hashes and partitions on its own.
const PERSON_PART: usize = 1 << 20;

/// Writes the person index of the rows `order` of `person_hash` (record `k` is row `k` of
/// the segment): 20-byte records (hash big-endian, row) sorted by hash, then row.
///
/// A radix pass instead of one big sort: each part of a million rows is hashed (reading
/// the ids in memory order) and split by the hash's top byte (hashes are uniform, so
/// 256 buckets of equal size); then each bucket, gathered from every part, is sorted on
/// its own while it fits in cache, on all cores, and written in bucket order. One
/// `memcmp`-based sort of all 25 million records had been the ingest's largest cost.
pub(super) fn write_person_index(
    root: &Path,
    path: &Path,
    n: usize,
    person_hash: impl Fn(usize) -> u128 + Sync,
) -> Result<FileRef> {
    let part_starts: Vec<usize> = (0..n).step_by(PERSON_PART).collect();
    let parts: Vec<(Vec<[u8; 20]>, [usize; 257])> = part_starts
        .par_iter()
        .map(|&base| {
            let mut start = [0usize; 257];
            let records: Vec<[u8; 20]> = (base..n.min(base + PERSON_PART))
                .map(|k| {
                    let row = u32::try_from(k).unwrap_or(u32::MAX);
                    index::person_record(person_hash(k), row)
                })
                .collect();
            for r in &records {
                start[usize::from(r[0]) + 1] += 1;
            }
            for b in 0..256 {
                start[b + 1] += start[b];
            }
            let mut next = start;
            let mut split = vec![[0u8; 20]; records.len()];
            for r in records {
                let slot = &mut next[usize::from(r[0])];
                split[*slot] = r;
                *slot += 1;
            }
            (split, start)
        })
        .collect();
    let mut w = IndexWriter::new(HashingWriter::create(path)?, Kind::Persons, n as u64)
        .map_err(|e| Error::io(path, e))?;
    // Buckets are sorted a few per core at a time, each window written while the next
    // one sorts.
    let buckets: Vec<usize> = (0..256).collect();
    let sort_window = |group: &[usize]| -> Result<Vec<Vec<[u8; 20]>>> {
        Ok(group
            .par_iter()
            .map(|&b| {
                sort_bucket(
                    parts
                        .iter()
                        .map(|(split, start)| &split[start[b]..start[b + 1]]),
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

/// Sorts the person records of one top-byte bucket (gathered from `pieces`) by hash,
/// then row: a counting sort on the hash's next 16 bits (hashes are uniform, so about
/// one record per value at 25 million persons), then the few records sharing a slot
/// in full order. Two passes over the bucket instead of a comparison sort's twenty.
fn sort_bucket<'a>(pieces: impl Iterator<Item = &'a [[u8; 20]]> + Clone) -> Vec<[u8; 20]> {
    let slot = |r: &[u8; 20]| usize::from(u16::from_be_bytes([r[1], r[2]]));
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
        let sorted = sort_bucket([a, b].into_iter());
        let mut expected = records.clone();
        expected.sort_unstable_by_key(|r| index::person_entry(r));
        assert_eq!(sorted, expected);
    }
}
