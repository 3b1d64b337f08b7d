//! Merging sorted index scans: tube numbering and person grouping walk several
//! segments' sorted indexes as one, and a round's runs ([`super::runs`]) are written so.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::index;
use crate::Result;

/// Compares the first `key` bytes (a multiple of 8) of two records as big-endian
/// words: the merges compare a key or two per record, and a `memcmp` call per
/// comparison was a quarter of a merge's time.
// Inline: tube numbering calls it per record from another module, and a call that
// cannot be inlined across modules would cost what avoiding `memcmp` saved.
#[inline]
pub(crate) fn key_cmp(a: &[u8], b: &[u8], key: usize) -> std::cmp::Ordering {
    let word = |x: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&x[i..i + 8]);
        u64::from_be_bytes(w)
    };
    (0..key)
        .step_by(8)
        .map(|i| word(a, i).cmp(&word(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// A key as big-endian words, zero past its length.
type Words = [u64; index::KEY / 8];

/// Merges sorted scans: calls `visit(source, record)` for every record in order of
/// the first `key` bytes, equal keys in source order. Records are taken in runs: while
/// one source's keys stay below every other source's next key they are passed on
/// without comparing sources, so one large segment merged with a few small batches
/// costs little more than a straight scan. A heap picks the next run among many
/// sources; among a few, comparing their next keys is cheaper.
pub(crate) fn merge_scans(
    scans: &mut [index::Scan<'_>],
    key: usize,
    mut visit: impl FnMut(usize, &[u8]),
) -> Result<()> {
    // Keys as big-endian words: the heap and the comparisons of heads compare them
    // as integers (as arrays of bytes they were a `memcmp` call each, a tenth of a
    // status on a round of eight pieces).
    let words = |r: &[u8]| -> Words {
        let mut w = [0u64; index::KEY / 8];
        for (i, x) in w.iter_mut().enumerate().take(key / 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(&r[i * 8..i * 8 + 8]);
            *x = u64::from_be_bytes(b);
        }
        w
    };
    let head =
        |scan: &mut index::Scan<'_>| -> Result<Option<Words>> { Ok(scan.peek()?.map(words)) };
    // Takes records of source `i` while they come before `bound` (key, source), a
    // buffer at a time: one large segment beside a small batch (a city's round and its
    // retests) is mostly one long run, which a peek and a check per record made the
    // larger part of loading a round.
    let run = |scans: &mut [index::Scan<'_>],
               i: usize,
               bound: Option<(Words, usize)>,
               visit: &mut dyn FnMut(usize, &[u8])|
     -> Result<()> {
        let size = scans[i].record_size();
        while let Some(records) = scans[i].pending()? {
            let mut taken = 0;
            for r in records.chunks_exact(size) {
                if let Some((b, j)) = &bound {
                    match words(r).cmp(b) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal if i < *j => {}
                        _ => break,
                    }
                }
                visit(i, r);
                taken += 1;
            }
            let whole = taken * size == records.len();
            scans[i].advance_by(taken);
            if !whole {
                break;
            }
        }
        Ok(())
    };
    const FEW: usize = 8;
    if scans.len() == 2 {
        // Two sources (one tube index and one result index, a round ingested in one
        // batch each, interleave record by record; a segment and its retests' batch
        // come in long runs): the source with the lower head gives its run below the
        // other's head. Re-reading both heads each time is cheaper here than the
        // cached heads below (a round of one batch each: ratio 1.065 through them).
        loop {
            let x = head(&mut scans[0])?;
            let (x, y) = match (x, head(&mut scans[1])?) {
                (Some(x), Some(y)) => (x, y),
                (Some(_), None) => {
                    run(scans, 0, None, &mut visit)?;
                    break;
                }
                (None, Some(_)) => {
                    run(scans, 1, None, &mut visit)?;
                    break;
                }
                (None, None) => break,
            };
            if x <= y {
                run(scans, 0, Some((y, 1)), &mut visit)?;
            } else {
                run(scans, 1, Some((x, 0)), &mut visit)?;
            }
        }
    } else if scans.len() <= FEW {
        let mut heads: Vec<Option<Words>> = Vec::with_capacity(scans.len());
        for scan in scans.iter_mut() {
            heads.push(head(scan)?);
        }
        loop {
            let mut live = heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.map(|k| (k, i)));
            let Some(mut first) = live.next() else { break };
            let mut second: Option<(Words, usize)> = None;
            // Sources are visited in order, so a tie keeps the earlier one first.
            let below = |a: &Words, b: &Words| a < b;
            for c in live {
                if below(&c.0, &first.0) {
                    second = Some(first);
                    first = c;
                } else if second.is_none_or(|s| below(&c.0, &s.0)) {
                    second = Some(c);
                }
            }
            let i = first.1;
            run(scans, i, second, &mut visit)?;
            heads[i] = head(&mut scans[i])?;
        }
    } else {
        let mut heap: BinaryHeap<Reverse<(Words, usize)>> = BinaryHeap::new();
        for (i, scan) in scans.iter_mut().enumerate() {
            if let Some(k) = head(scan)? {
                heap.push(Reverse((k, i)));
            }
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let bound = heap.peek().map(|Reverse(b)| *b);
            run(scans, i, bound, &mut visit)?;
            if let Some(k) = head(&mut scans[i])? {
                heap.push(Reverse((k, i)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::index::{IndexFile, IndexWriter, Kind, person_entry, person_record};

    /// What `merge_scans` must give: every record of every source, by key, equal keys
    /// in source order and then in their order within the source.
    fn merged_by_sort(sources: &[Vec<(u128, u32)>]) -> Vec<(usize, u128, u32)> {
        let mut all: Vec<(usize, u128, u32)> = sources
            .iter()
            .enumerate()
            .flat_map(|(s, recs)| recs.iter().map(move |&(h, r)| (s, h, r)))
            .collect();
        all.sort_by_key(|&(s, h, _)| (h, s)); // stable: keeps each source's order
        all
    }

    fn merged_by_scans(sources: &[Vec<(u128, u32)>]) -> Vec<(usize, u128, u32)> {
        let dir = tempfile::tempdir().expect("tmp");
        let files: Vec<IndexFile> = sources
            .iter()
            .enumerate()
            .map(|(k, recs)| {
                let path = dir.path().join(format!("{k}.persons"));
                let file = std::fs::File::create(&path).expect("create");
                let mut w = IndexWriter::new(file, Kind::Persons, recs.len() as u64).expect("w");
                for &(h, r) in recs {
                    w.push(&person_record(h, r)).expect("push");
                }
                w.finish().expect("finish");
                IndexFile::open(&path, Kind::Persons).expect("open")
            })
            .collect();
        let mut scans: Vec<_> = files.iter().map(|f| f.scan(0..f.len())).collect();
        let mut out = Vec::new();
        merge_scans(&mut scans, 16, |s, r| {
            let (h, row) = person_entry(r);
            out.push((s, h, row));
        })
        .expect("merge");
        out
    }

    /// Sorted sources of keys drawn from `0..spread` (small spreads make ties), each
    /// record tagged with its source and place.
    fn sources_of(lens: &[usize], spread: u128, seed: u64) -> Vec<Vec<(u128, u32)>> {
        let mut x = seed | 1;
        lens.iter()
            .enumerate()
            .map(|(s, &n)| {
                let mut keys: Vec<u128> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // High bits set too, so that keys differ in the first word.
                        ((u128::from(x) % spread) << 80) + u128::from(x) % spread
                    })
                    .collect();
                keys.sort_unstable();
                let tag = |i: usize| u32::try_from(s * 1_000_000 + i).expect("tag");
                keys.into_iter()
                    .enumerate()
                    .map(|(i, k)| (k, tag(i)))
                    .collect()
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Two sources (the two-way path), up to eight (heads compared) and more (a
        /// heap) merge as a stable sort would, with ties and empty sources.
        #[test]
        fn merges_as_a_stable_sort(
            lens in proptest::collection::vec(0usize..60, 1..12),
            spread in 1u128..50,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let sources = sources_of(&lens, spread, seed);
            proptest::prop_assert_eq!(merged_by_scans(&sources), merged_by_sort(&sources));
        }
    }

    #[test]
    fn runs_longer_than_a_buffer_merge_as_a_stable_sort() {
        // A city's segment beside a batch of retests: the long source's runs cross the
        // scans' buffers (13,107 person records each).
        for (lens, spread) in [
            (vec![40_000, 3], 1 << 40),
            (vec![5, 40_000], 1 << 40),
            (vec![30_000, 30_000], 1000),
            (vec![30_000, 7, 30_000], 1 << 40),
        ] {
            let sources = sources_of(&lens, spread, 7);
            assert_eq!(
                merged_by_scans(&sources),
                merged_by_sort(&sources),
                "{lens:?}"
            );
        }
    }
}
