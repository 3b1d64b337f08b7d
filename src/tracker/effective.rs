//! Effective results: which of a tube's results counts.

use super::limit::{FirstSwabs, PastLimit};
use super::{NONE, ResultFacts, Tubes};
use crate::model::Outcome;

/// The latest result wins, except that a positive is never cleared by a later
/// non-positive one.
#[derive(Default)]
struct Latest {
    current: Option<(usize, Outcome)>,
    kept: bool,
}

impl Latest {
    fn push(&mut self, i: usize, o: Outcome) {
        match self.current {
            Some((_, Outcome::Positive)) if o != Outcome::Positive => self.kept = true,
            _ => self.current = Some((i, o)),
        }
    }

    fn winner(&self) -> Option<usize> {
        self.current.map(|(i, _)| i)
    }
}

/// The effective result among one tube's results, given in `reported_at` order (ties:
/// later batches last): the latest wins, except that a positive is never cleared by a
/// later non-positive result. Returns its position and whether a positive was kept
/// against a later result (to flag for review).
pub fn effective(outcomes: impl IntoIterator<Item = Outcome>) -> (Option<usize>, bool) {
    let mut latest = Latest::default();
    for (i, o) in outcomes.into_iter().enumerate() {
        latest.push(i, o);
    }
    (latest.winner(), latest.kept)
}

/// How one tube's results read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// The position of the effective result among those within the specimen limit.
    pub result: Option<usize>,
    /// A positive kept against a later non-positive result within the limit.
    pub positive_kept: bool,
    /// When no result came within the limit and some came past it: the position of the
    /// one the rules would have picked among those, which stands in for the tube's
    /// result in lists (the tube needs a resample).
    pub past_limit: Option<usize>,
}

/// Reads one tube's results that are not void, given in `reported_at` order (ties:
/// later batches last), each with whether it came past the specimen limit: the
/// effective result among those within the limit ([`effective`]), or, when none came
/// within it, the one standing in for the tube (see [`super::limit`]).
///
/// ```
/// use pooltrack::model::Outcome::{Invalid, Negative, Positive};
/// use pooltrack::tracker::{Reading, read_results};
/// // A negative within the limit stands; a re-test past it changes nothing.
/// let r = read_results([(Negative, false), (Positive, true)]);
/// assert_eq!((r.result, r.past_limit), (Some(0), None));
/// // Nothing within the limit: the tube needs a resample; its latest result shows why.
/// let r = read_results([(Invalid, true), (Negative, true)]);
/// assert_eq!((r.result, r.past_limit), (None, Some(1)));
/// ```
pub fn read_results(results: impl IntoIterator<Item = (Outcome, bool)>) -> Reading {
    let (mut within, mut past) = (Latest::default(), Latest::default());
    for (i, (o, late)) in results.into_iter().enumerate() {
        if late {
            past.push(i, o);
        } else {
            within.push(i, o);
        }
    }
    match within.winner() {
        Some(i) => Reading {
            result: Some(i),
            positive_kept: within.kept,
            past_limit: None,
        },
        None => Reading {
            result: None,
            positive_kept: false,
            past_limit: past.winner(),
        },
    }
}

/// Sorts the result rows by tube, then time, into `tubes.result_rows`.
///
/// By counting: each tube's rows placed in row order, then each tube's few rows (one,
/// mostly) by time. A comparison sort of a city's 3.6 M result rows by a key read from
/// two columns missed the cache at every comparison: 0.15-0.2 s of every whole-round
/// load.
pub(super) fn order_results(r: &ResultFacts, tubes: &mut Tubes) {
    let n = tubes.len();
    let result_tube = &r.tube;
    let to_u32 = |v: usize| u32::try_from(v).unwrap_or(NONE);
    // Later rows come from later batches: at equal times the later batch wins.
    let by_time =
        |a: &u32, b: &u32| (r.reported_at[*a as usize], *a).cmp(&(r.reported_at[*b as usize], *b));
    // Each tube's rows counted two places on, summed, then placed by advancing the
    // count one place on: it ends as the tube's end, that is the next tube's start.
    let mut start = vec![0u32; n + 2];
    let mut beyond: Vec<u32> = Vec::new();
    for (i, &t) in result_tube.iter().enumerate() {
        if (t as usize) < n {
            start[t as usize + 2] += 1;
        } else if t != NONE {
            // A tube the numbering does not hold: kept past the last tube's rows, as a
            // sort by tube would.
            beyond.push(to_u32(i));
        }
    }
    for k in 2..n + 2 {
        start[k] += start[k - 1];
    }
    let mut order = vec![0u32; start[n + 1] as usize];
    for (i, &t) in result_tube.iter().enumerate() {
        if (t as usize) < n {
            let at = &mut start[t as usize + 1];
            order[*at as usize] = to_u32(i);
            *at += 1;
        }
    }
    start.truncate(n + 1);
    for t in 0..n {
        let rows = &mut order[start[t] as usize..start[t + 1] as usize];
        if rows.len() > 1 {
            rows.sort_unstable_by(by_time);
        }
    }
    beyond.sort_unstable_by(|a, b| {
        result_tube[*a as usize]
            .cmp(&result_tube[*b as usize])
            .then_with(|| by_time(a, b))
    });
    order.extend(beyond);
    tubes.result_start = start;
    tubes.result_rows = order;
}

/// Each tube's effective result from its ordered rows ([`order_results`]): void
/// results and those past the specimen limit ([`ResultFacts::late`]) do not count; a
/// tube with only the latter is listed in `tubes.past_limit`, with its first swab from
/// `firsts`.
pub(super) fn effective_results(r: &ResultFacts, tubes: &mut Tubes, firsts: &FirstSwabs) {
    let n = tubes.len();
    tubes.result = vec![NONE; n];
    tubes.positive_kept = vec![false; n];
    tubes.past_limit = Vec::new();
    tubes.late_first_swab.clone_from(firsts);
    let plain = !r.void.contains(&true) && r.late.is_empty();
    for t in 0..n {
        let rows =
            &tubes.result_rows[tubes.result_start[t] as usize..tubes.result_start[t + 1] as usize];
        if plain {
            let (w, kept) = effective(rows.iter().map(|&row| r.outcome[row as usize]));
            tubes.result[t] = w.map_or(NONE, |i| rows[i]);
            tubes.positive_kept[t] = kept;
            continue;
        }
        // Results on a failed plate stay in the tube's history but do not count.
        let counted = || rows.iter().filter(|&&row| !r.is_void(row as usize));
        let reading =
            read_results(counted().map(|&row| (r.outcome[row as usize], r.is_late(row as usize))));
        let at = |i: Option<usize>| i.and_then(|i| counted().nth(i)).copied();
        tubes.result[t] = at(reading.result).unwrap_or(NONE);
        tubes.positive_kept[t] = reading.positive_kept;
        if let Some(row) = at(reading.past_limit) {
            let tube = u32::try_from(t).unwrap_or(NONE);
            let first_swab = firsts
                .binary_search_by_key(&tube, |&(x, _)| x)
                .map_or(0, |i| firsts[i].1);
            tubes.past_limit.push(PastLimit {
                tube,
                row,
                first_swab,
            });
        }
    }
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

    #[test]
    fn results_past_the_limit_count_only_as_the_reason_for_a_resample() {
        let read = |rs: &[(Outcome, bool)]| {
            let r = read_results(rs.iter().copied());
            (r.result, r.positive_kept, r.past_limit)
        };
        // Within the limit, as before, whatever came past it.
        assert_eq!(
            read(&[(Positive, false), (Negative, false)]),
            (Some(0), true, None)
        );
        assert_eq!(
            read(&[(Invalid, false), (Positive, true)]),
            (Some(0), false, None)
        );
        // A positive past the limit is not kept against anything: it does not count.
        assert_eq!(
            read(&[(Negative, false), (Positive, true), (Negative, true)]),
            (Some(0), false, None)
        );
        // Nothing within: the one the rules would pick among the late ones stands in.
        assert_eq!(
            read(&[(Positive, true), (Negative, true)]),
            (None, false, Some(0))
        );
        assert_eq!(read(&[(Negative, true)]), (None, false, Some(0)));
        assert_eq!(read(&[]), (None, false, None));
    }

    /// The counting sort against the comparison sort it replaced.
    fn ordered_by_comparison(r: &ResultFacts, n: usize) -> (Vec<u32>, Vec<u32>) {
        let tube = &r.tube;
        let mut order: Vec<u32> = (0..tube.len())
            .filter(|&i| tube[i] != NONE)
            .map(|i| u32::try_from(i).expect("rows"))
            .collect();
        order.sort_unstable_by_key(|&i| (tube[i as usize], r.reported_at[i as usize], i));
        let mut start = Vec::with_capacity(n + 1);
        let mut at = 0;
        for t in 0..n {
            start.push(u32::try_from(at).expect("rows"));
            while at < order.len() && tube[order[at] as usize] as usize == t {
                at += 1;
            }
        }
        start.push(u32::try_from(at).expect("rows"));
        (order, start)
    }

    proptest::proptest! {
        #[test]
        fn results_are_ordered_by_tube_then_time_then_row(
            n in 0usize..12,
            rows in proptest::collection::vec((0u32..14, 0i64..4), 0..60),
        ) {
            // Tubes 12 and 13 stand for controls (NONE) and for tubes past the last.
            let r = ResultFacts {
                tube: rows.iter().map(|&(t, _)| if t == 12 { NONE } else { t }).collect(),
                reported_at: rows.iter().map(|&(_, at)| at).collect(),
                ..ResultFacts::default()
            };
            let mut tubes = Tubes { row: vec![0; n], ..Tubes::default() };
            order_results(&r, &mut tubes);
            let (order, start) = ordered_by_comparison(&r, n);
            proptest::prop_assert_eq!(tubes.result_rows, order);
            proptest::prop_assert_eq!(tubes.result_start, start);
        }
    }
}
