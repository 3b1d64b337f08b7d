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
    // Takes records of source `i` while they come before `bound` (key, source).
    let run = |scans: &mut [index::Scan<'_>],
               i: usize,
               bound: Option<(Words, usize)>,
               visit: &mut dyn FnMut(usize, &[u8])|
     -> Result<()> {
        while let Some(r) = scans[i].peek()? {
            if let Some((b, j)) = &bound {
                match words(r).cmp(b) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal if i < *j => {}
                    _ => break,
                }
            }
            visit(i, r);
            scans[i].advance();
        }
        Ok(())
    };
    const FEW: usize = 8;
    if let [a, b] = scans {
        // Two sources (one tube index and one result index: a round ingested in one
        // batch each) interleave record by record: a plain two-way merge.
        loop {
            match (a.peek()?, b.peek()?) {
                (Some(x), Some(y)) => {
                    if key_cmp(x, y, key).is_le() {
                        visit(0, x);
                        a.advance();
                    } else {
                        visit(1, y);
                        b.advance();
                    }
                }
                (Some(x), None) => {
                    visit(0, x);
                    a.advance();
                }
                (None, Some(y)) => {
                    visit(1, y);
                    b.advance();
                }
                (None, None) => break,
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
