//! The round's progress hour by hour: tubes collected by then, and how many of them had
//! a result by then.

use rayon::prelude::*;
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
    let mut c: Vec<Millis> = collected.to_vec();
    c.par_sort_unstable();
    let mut d: Vec<Millis> = done.iter().flatten().copied().collect();
    d.par_sort_unstable();
    (1..=hours)
        .map(|h| {
            let t = start + i64::from(h) * MS_PER_HOUR;
            let collected = c.partition_point(|&x| x <= t) as u64;
            let with_result = d.partition_point(|&x| x <= t) as u64;
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
    let done: Vec<Option<Millis>> = (0..n)
        .map(|t| (first[t] != NONE).then(|| rs.reported_at[first[t] as usize].max(collected[t])))
        .collect();
    let progress_curve = match start {
        None => Vec::new(),
        Some(s) => {
            let last = collected
                .iter()
                .copied()
                .chain(done.iter().flatten().copied())
                .max()
                .unwrap_or(s)
                .min(as_of)
                .max(s);
            let hours = u32::try_from((last - s + MS_PER_HOUR - 1) / MS_PER_HOUR)
                .unwrap_or(MAX_PROGRESS_HOURS)
                .clamp(1, MAX_PROGRESS_HOURS);
            progress(s, collected, &done, hours)
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
}
