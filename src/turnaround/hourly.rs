//! The round's progress hour by hour: tubes collected by then, and how many of them had
//! a result by then.

use serde::Serialize;

use super::{MAX_PROGRESS_HOURS, MS_PER_HOUR};
use crate::time::Millis;
use crate::tracker::{NONE, Statuses};

/// Progress at one hour of the round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProgressPoint {
    /// Hours since the round's first collection.
    pub hour: u32,
    /// Tubes collected by then.
    pub collected: u64,
    /// Of them, tubes with a counted result by then.
    pub with_result: u64,
    /// `with_result` / collected (0 when none collected).
    pub share: f64,
}

/// The progress curve: `collected` holds each tube's earliest collection time, `done`
/// the time by which a tube was both collected and reported (`None`: no result).
///
/// ```
/// use pooltrack::turnaround::progress;
/// let h = 3_600_000;
/// // Two tubes at 0 h and 1.5 h; the first reported at 0.5 h, the second at 2.5 h.
/// let p = progress(0, &[0, 3 * h / 2], &[Some(h / 2), Some(5 * h / 2)], 3);
/// assert_eq!(p.iter().map(|x| (x.collected, x.with_result)).collect::<Vec<_>>(),
///            vec![(1, 1), (2, 1), (2, 2)]);
/// ```
pub fn progress(
    start: Millis,
    collected: &[Millis],
    done: &[Option<Millis>],
    hours: u32,
) -> Vec<ProgressPoint> {
    progress_of(start, collected, done.iter().flatten().copied(), hours)
}

/// [`progress`], of the times `done` yields.
fn progress_of(
    start: Millis,
    collected: &[Millis],
    done: impl Iterator<Item = Millis> + Send,
    hours: u32,
) -> Vec<ProgressPoint> {
    // Counts by the first hour each time falls in, then running sums: a city's 3.6
    // million tubes were two sorts of 3.6 million times for a curve of a few dozen
    // points.
    let (collected_by, done_by) = rayon::join(
        || by_hour(start, collected.iter().copied(), hours),
        || by_hour(start, done, hours),
    );
    // Times at or before the start count from the first hour on.
    let (mut collected, mut with_result) = (collected_by[0], done_by[0]);
    (1..=hours)
        .map(|h| {
            collected += collected_by[h as usize];
            with_result += done_by[h as usize];
            ProgressPoint {
                hour: h,
                collected,
                with_result,
                share: if collected == 0 {
                    0.0
                } else {
                    with_result as f64 / collected as f64
                },
            }
        })
        .collect()
}

/// How many of `times` first count at each hour `h` of `0..=hours` (a time `x` counts
/// from the first `h` with `x <= start + h` hours); those after the last hour are left
/// out.
fn by_hour(start: Millis, times: impl Iterator<Item = Millis>, hours: u32) -> Vec<u64> {
    let mut counts = vec![0u64; hours as usize + 1];
    for x in times {
        // Ceiling of whole hours since the start; times before it count from hour 0.
        let since = x.saturating_sub(start).max(0);
        let h = since / MS_PER_HOUR + i64::from(since % MS_PER_HOUR != 0);
        if let Some(c) = usize::try_from(h).ok().and_then(|h| counts.get_mut(h)) {
            *c += 1;
        }
    }
    counts
}

/// The round's first collection, and its progress from then to the last event (or
/// `as_of`): `first` holds each tube's first counted result ([`super::first_counted`]),
/// `collected` its earliest collection.
pub(super) fn curve(
    round: &Statuses,
    first: &[u32],
    collected: &[Millis],
    as_of: Millis,
) -> (Option<Millis>, Vec<ProgressPoint>) {
    let n = round.tubes.len();
    let rs = &round.results;
    let start = collected.iter().copied().min();
    // Each tube's time of being both collected and reported, made twice where it is
    // read rather than kept: 3.6 million of them were 58 MB of fresh pages.
    let done = || {
        (0..n)
            .filter(|&t| first[t] != NONE)
            .map(|t| rs.reported_at[first[t] as usize].max(collected[t]))
    };
    let progress_curve = match start {
        None => Vec::new(),
        Some(s) => {
            let last = collected
                .iter()
                .copied()
                .chain(done())
                .max()
                .unwrap_or(s)
                .min(as_of)
                .max(s);
            let hours = u32::try_from((last - s + MS_PER_HOUR - 1) / MS_PER_HOUR)
                .unwrap_or(MAX_PROGRESS_HOURS)
                .clamp(1, MAX_PROGRESS_HOURS);
            progress_of(s, collected, done(), hours)
        }
    };
    (start, progress_curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_tubes_collected_and_reported_by_each_hour() {
        let h = MS_PER_HOUR;
        let p = progress(
            100,
            &[100, 100 + h, 100 + 2 * h],
            &[Some(100 + h), None, Some(100 + 3 * h)],
            3,
        );
        let got: Vec<(u32, u64, u64)> = p
            .iter()
            .map(|x| (x.hour, x.collected, x.with_result))
            .collect();
        assert_eq!(got, vec![(1, 2, 1), (2, 3, 1), (3, 3, 2)]);
        assert!((p[0].share - 0.5).abs() < 1e-12);
        assert!(progress(0, &[], &[], 2).iter().all(|x| x.share == 0.0));
    }

    proptest::proptest! {
        /// Against the definition: a tube counts at hour h when its time is at most
        /// start + h hours, whatever the times (before the start, on an hour's
        /// boundary, past the last hour).
        #[test]
        fn progress_counts_as_its_definition(
            start in -5i64..5,
            times in proptest::collection::vec((-3i64..30, 0i64..3, proptest::option::of(-3i64..30)), 0..60),
            hours in 1u32..12,
        ) {
            let h = MS_PER_HOUR;
            // Whole hours, a millisecond either side, to land on and beside boundaries.
            let at = |q: i64, d: i64| start + q * h / 2 + d - 1;
            let collected: Vec<Millis> = times.iter().map(|&(q, d, _)| at(q, d)).collect();
            let done: Vec<Option<Millis>> =
                times.iter().map(|&(_, d, r)| r.map(|q| at(q, d))).collect();
            let got = progress(start, &collected, &done, hours);
            proptest::prop_assert_eq!(got.len(), hours as usize);
            for (p, hour) in got.iter().zip(1..=hours) {
                let until = start + i64::from(hour) * h;
                let c = collected.iter().filter(|&&x| x <= until).count() as u64;
                let d = done.iter().flatten().filter(|&&x| x <= until).count() as u64;
                proptest::prop_assert_eq!((p.hour, p.collected, p.with_result), (hour, c, d));
            }
        }
    }
}
