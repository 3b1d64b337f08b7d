//! Turnaround figures: nearest-rank percentiles, a set of tubes' statistics and the
//! hourly histogram.

use serde::Serialize;

use super::{HISTOGRAM_HOURS, MS_PER_HOUR, MS_PER_MINUTE};

/// The value at nearest rank ⌈p·n/100⌉ of `sorted` (ascending); `None` when empty.
///
/// ```
/// use pooltrack::turnaround::nearest_rank;
/// let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
/// assert_eq!(nearest_rank(&v, 50), Some(50));
/// assert_eq!(nearest_rank(&v, 90), Some(90));
/// assert_eq!(nearest_rank(&v, 99), Some(100));
/// assert_eq!(nearest_rank(&[] as &[i64], 50), None);
/// ```
pub fn nearest_rank(sorted: &[i64], p: u32) -> Option<i64> {
    let n = sorted.len();
    let rank = (usize::try_from(p).ok()?.min(100) * n).div_ceil(100).max(1);
    sorted.get(rank.min(n).checked_sub(1)?).copied()
}

/// Turnaround of a set of tubes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Tubes with a counted result.
    pub tubes: u64,
    /// Median turnaround, minutes.
    pub median_minutes: Option<f64>,
    /// 90th percentile, minutes.
    pub p90_minutes: Option<f64>,
    /// 99th percentile, minutes.
    pub p99_minutes: Option<f64>,
    /// Tubes whose first result came after their deadline.
    pub reported_late: u64,
}

impl Stats {
    /// Stats of turnarounds in milliseconds: the [`nearest_rank`] percentiles, found by
    /// selection rather than a sort. A city's round has 3.6 million turnarounds and five
    /// such sets (the round, the labs, transport, in the labs); sorting them all was a
    /// fifth of the round report, for three values each.
    pub fn of(mut ms: Vec<i64>, reported_late: u64) -> Stats {
        let n = ms.len();
        // The ranks ascend, and a selection leaves every value above its rank after it,
        // so each next one searches only those.
        let mut from = 0;
        let mut minutes = |p: u32| -> Option<f64> {
            let rank = (usize::try_from(p).ok()?.min(100) * n)
                .div_ceil(100)
                .max(1)
                .min(n)
                .checked_sub(1)?;
            let rank = rank.max(from);
            let (_, v, _) = ms.get_mut(from..)?.select_nth_unstable(rank - from);
            let v = *v;
            from = rank;
            Some(v as f64 / MS_PER_MINUTE)
        };
        let (median_minutes, p90_minutes, p99_minutes) = (minutes(50), minutes(90), minutes(99));
        Stats {
            tubes: n as u64,
            median_minutes,
            p90_minutes,
            p99_minutes,
            reported_late,
        }
    }
}

/// One lab's turnaround (the lab of each tube's first counted result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabStats {
    /// The lab (empty when the results named none).
    pub lab: String,
    /// Its tubes' turnaround.
    #[serde(flatten)]
    pub stats: Stats,
    /// From receipt to report, for its tubes whose result gave `received_at`: the
    /// lab's own share of the turnaround (the rest is transport).
    pub in_lab: Stats,
}

/// Turnaround counts in 1-hour bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Width of a bin, minutes.
    pub bin_minutes: u32,
    /// Tubes with turnaround in [h, h+1) hours, h = 0..48 (a negative turnaround, a
    /// result reported before its collection time, counts in bin 0).
    pub counts: Vec<u64>,
    /// Tubes with turnaround of 48 hours or more.
    pub overflow: u64,
}

impl Histogram {
    /// Bins turnarounds given in milliseconds.
    ///
    /// ```
    /// use pooltrack::turnaround::Histogram;
    /// let h = Histogram::of(&[0, 59 * 60_000, 60 * 60_000, 49 * 3_600_000]);
    /// assert_eq!((h.counts[0], h.counts[1], h.overflow), (2, 1, 1));
    /// ```
    pub fn of(ms: &[i64]) -> Histogram {
        let mut counts = vec![0u64; HISTOGRAM_HOURS];
        let mut overflow = 0;
        for &v in ms {
            match usize::try_from(v.max(0) / MS_PER_HOUR) {
                Ok(h) if h < HISTOGRAM_HOURS => counts[h] += 1,
                _ => overflow += 1,
            }
        }
        Histogram {
            bin_minutes: 60,
            counts,
            overflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_observed_values() {
        let v: Vec<i64> = (1..=200).collect();
        assert_eq!(nearest_rank(&v, 50), Some(100));
        assert_eq!(nearest_rank(&v, 90), Some(180));
        assert_eq!(nearest_rank(&v, 99), Some(198));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3], 0), Some(1));
        assert_eq!(nearest_rank(&[1, 2, 3], 100), Some(3));
        assert_eq!(nearest_rank(&[], 90), None);
    }

    proptest::proptest! {
        /// The selected percentiles are those of the sorted values.
        #[test]
        fn selected_percentiles_are_the_sorted_values_nearest_ranks(
            ms in proptest::collection::vec(-5i64..400, 0..300)
        ) {
            let mut sorted = ms.clone();
            sorted.sort_unstable();
            let minutes = |p| nearest_rank(&sorted, p).map(|v| v as f64 / MS_PER_MINUTE);
            let s = Stats::of(ms, 0);
            proptest::prop_assert_eq!(s.median_minutes, minutes(50));
            proptest::prop_assert_eq!(s.p90_minutes, minutes(90));
            proptest::prop_assert_eq!(s.p99_minutes, minutes(99));
        }
    }

    #[test]
    fn stats_in_minutes() {
        let s = Stats::of(vec![3 * 60_000, 60_000, 2 * 60_000], 1);
        assert_eq!(s.tubes, 3);
        assert_eq!(s.median_minutes, Some(2.0));
        assert_eq!(s.p90_minutes, Some(3.0));
        assert_eq!(s.reported_late, 1);
        assert_eq!(Stats::of(Vec::new(), 0).median_minutes, None);
    }

    #[test]
    fn histogram_bins_by_hour_with_overflow() {
        let h = MS_PER_HOUR;
        let hist = Histogram::of(&[-5, 0, h - 1, h, 47 * h + 1, 48 * h, 100 * h]);
        assert_eq!(hist.counts.len(), 48);
        assert_eq!(hist.counts[0], 3);
        assert_eq!(hist.counts[1], 1);
        assert_eq!(hist.counts[47], 1);
        assert_eq!(hist.overflow, 2);
        assert_eq!(hist.counts.iter().sum::<u64>() + hist.overflow, 7);
    }
}
