//! Planning a population batch: every row is committed; repeats within the batch are
//! found and flagged.

use rayon::prelude::*;

use super::{Plan, flag};
use crate::ingest::reject::{Rejects, Severity, Where};
use crate::rows::PopulationRows;
use crate::store::index::PersonKeys;
use crate::store::segment::SegmentPlan;

/// Every row is committed, in input order; a person registered again in the same
/// batch is a warning on the later line, which wins. Repeats are found by sorting the
/// rows' person hashes, not by a map of 25 million ids: first the top 32 bits beside
/// the row, packed in one `u64` (25 million 8-byte keys, where (hash, row) pairs were
/// 32 bytes each and a tenth of the ingest), then, only for rows whose top bits tie,
/// the whole 128-bit hashes.
pub(crate) fn plan_population(
    rows: &PopulationRows,
    labels: &[String],
    rejects: &mut Rejects,
) -> Plan {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let file = |i: usize| {
        labels
            .get(usize::from(rows.source.file(i)))
            .map_or("", String::as_str)
    };
    for (earlier, later) in repeats(n, |i| PersonKeys::Exact.key(rows.person.get(i as usize))) {
        let (earlier, later) = (earlier as usize, later as usize);
        let person = rows.person.get(later);
        let why = format!(
            "{person} is registered again in this batch (earlier at {} line {}); the later line's stated fields are kept, blank ones keep the earlier values",
            file(earlier),
            rows.source.line(earlier)
        );
        let at = Where::row((labels, &rows.source), later, "", person);
        flag(rejects, &at, Severity::Warning, "person", why);
    }
    Plan {
        segments: vec![SegmentPlan {
            order: (0..n).collect(),
            ..SegmentPlan::new("")
        }],
        overfull: 0,
        positives_kept: 0,
        boxed: Vec::new(),
    }
}

/// Each row `later` of `0..n` whose `hash` equals that of an earlier row, with the row
/// `earlier` just before it among those of that hash: in order of hash, then row (the
/// pairs of neighbours a sort of (hash, row) gives).
fn repeats(n: u32, hash: impl Fn(u32) -> u128 + Sync) -> Vec<(u32, u32)> {
    let mut keys: Vec<u64> = (0..n)
        .into_par_iter()
        .map(|i| (((hash(i) >> 96) as u64) << 32) | u64::from(i))
        .collect();
    keys.par_sort_unstable();
    let mut pairs = Vec::new();
    // Rows whose top bits tie, in order of their whole hash then row.
    let mut tied: Vec<(u128, u32)> = Vec::new();
    for run in keys
        .chunk_by(|a, b| a >> 32 == b >> 32)
        .filter(|r| r.len() > 1)
    {
        tied.clear();
        tied.extend(run.iter().map(|&k| {
            let i = u32::try_from(k & u64::from(u32::MAX)).unwrap_or(u32::MAX);
            (hash(i), i)
        }));
        tied.sort_unstable();
        pairs.extend(
            tied.windows(2)
                .filter(|p| p[0].0 == p[1].0)
                .map(|p| (p[0].1, p[1].1)),
        );
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The repeats found through the top bits are those a sort of whole (hash, row)
        /// pairs finds, also when distinct hashes share their top bits.
        #[test]
        fn repeats_are_the_neighbours_of_a_full_sort(
            ids in proptest::collection::vec((0u128..4, 0u128..6), 0..200),
        ) {
            // Few top values and few low values: many rows tie on the top bits
            // without being the same person, and many are the same person.
            let hash = |i: u32| {
                let (top, low) = ids[i as usize];
                (top << 100) | low
            };
            let n = u32::try_from(ids.len()).unwrap_or(0);
            let mut all: Vec<(u128, u32)> = (0..n).map(|i| (hash(i), i)).collect();
            all.sort_unstable();
            let want: Vec<(u32, u32)> = all
                .windows(2)
                .filter(|p| p[0].0 == p[1].0)
                .map(|p| (p[0].1, p[1].1))
                .collect();
            proptest::prop_assert_eq!(repeats(n, hash), want);
        }
    }
}
