//! Effective results: which of a tube's results counts.

use rayon::prelude::*;

use super::{NONE, ResultFacts, Tubes};
use crate::model::Outcome;

/// The effective result among one tube's results, given in `reported_at` order (ties:
/// later batches last): the latest wins, except that a positive is never cleared by a
/// later non-positive result. Returns its position and whether a positive was kept
/// against a later result (to flag for review).
pub fn effective(outcomes: impl IntoIterator<Item = Outcome>) -> (Option<usize>, bool) {
    let mut current: Option<(usize, Outcome)> = None;
    let mut kept = false;
    for (i, o) in outcomes.into_iter().enumerate() {
        match current {
            Some((_, Outcome::Positive)) if o != Outcome::Positive => kept = true,
            _ => current = Some((i, o)),
        }
    }
    (current.map(|(i, _)| i), kept)
}

pub(super) fn effective_results(r: &ResultFacts, tubes: &mut Tubes) {
    let n = tubes.len();
    let result_tube = &r.tube;
    let any_void = r.void.contains(&true);
    let mut order: Vec<u32> = (0..result_tube.len())
        .filter(|&i| result_tube[i] != NONE)
        .map(|i| u32::try_from(i).unwrap_or(NONE))
        .collect();
    // Later rows come from later batches: at equal times the later batch wins.
    order.par_sort_unstable_by_key(|&i| (result_tube[i as usize], r.reported_at[i as usize], i));
    tubes.result = vec![NONE; n];
    tubes.positive_kept = vec![false; n];
    tubes.result_start = Vec::with_capacity(n + 1);
    let mut at = 0;
    for t in 0..n {
        tubes.result_start.push(u32::try_from(at).unwrap_or(NONE));
        let start = at;
        while at < order.len() && result_tube[order[at] as usize] as usize == t {
            at += 1;
        }
        let rows = &order[start..at];
        let (winner, kept) = if any_void {
            // Results on a failed plate stay in the tube's history but do not count.
            let counted = || rows.iter().filter(|&&row| !r.void[row as usize]);
            let (w, kept) = effective(counted().map(|&row| r.outcome[row as usize]));
            (w.and_then(|i| counted().nth(i)).copied(), kept)
        } else {
            let (w, kept) = effective(rows.iter().map(|&row| r.outcome[row as usize]));
            (w.map(|i| rows[i]), kept)
        };
        tubes.result[t] = winner.unwrap_or(NONE);
        tubes.positive_kept[t] = kept;
    }
    tubes.result_start.push(u32::try_from(at).unwrap_or(NONE));
    tubes.result_rows = order;
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    #[test]
    fn latest_result_wins_but_a_positive_is_never_cleared() {
        assert_eq!(effective([Invalid, Negative]), (Some(1), false));
        assert_eq!(effective([Negative, Positive]), (Some(1), false));
        assert_eq!(effective([Positive, Negative]), (Some(0), true));
        assert_eq!(
            effective([Positive, Inconclusive, Positive]),
            (Some(2), true)
        );
        assert_eq!(effective(std::iter::empty()), (None, false));
    }
}
