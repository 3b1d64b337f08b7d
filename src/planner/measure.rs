//! Measured mode: what a round in the store saw, in place of the plan's assumptions.
//!
//! From a loaded [`Round`]:
//!
//! - **Tubes and pool sizes.** Pool and single tubes; the mean number of people per
//!   pool tube (its *fill*, usually a little under the capacity, because a site's
//!   last pool is partly filled); pool tubes by capacity.
//! - **Retests.** A single tube of a person who also has a pool tube in the round is a
//!   retest; the other single tubes are first-stage single tubes. The pooled share of
//!   the round is pool memberships ÷ (pool memberships + first-stage single tubes).
//! - **Pool positivity.** Positive pools ÷ pools with a result, and the *recall*
//!   positivity (positive or inconclusive: both recall the pool). The prevalence that
//!   explains it is p̂ = 1 − (1 − q)^(1/k̄) at mean fill k̄.
//! - **Each lab's tubes per staffed hour**, from its `reported_at` times: results
//!   arrive in plate batches, so the first batch stands for work done before the first
//!   report; the rate is the tubes reported *after* the first report time ÷ the lab's
//!   working hours between its first and last report. Those are the least of
//!   - the clock span `s` from first to last report;
//!   - the staffed time within it: a lab staffed `H` hours a day worked `s` hours when
//!     `s ≤ H`, `H` hours when `H < s ≤ 24`, and `H × s / 24` over several days;
//!   - its *active* hours: the one-hour windows from its first report that hold at
//!     least one report, so that a night without tubes or a wait for the retests does
//!     not count as work.
//!
//!   Even so it is a lower bound of what the lab can do: it may have waited for tubes
//!   within an hour.
//!
//! [`measured_demand_groups`] and [`measured_labs`] turn these into a full round for the
//! plan's population and labs that run at the measured rates, so the planner can say
//! whether the measured labs would finish a full round before the deadline.

use std::collections::HashMap;

use arrow_array::Array;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::capacity::{Lab, Stage, StageKind};
use super::demand::{Group, Tubing};
use super::numbers::{f, floor_u64};
use crate::model::{Mode, Outcome};
use crate::time;
use crate::tracker::{NONE, Round};

const MS_PER_HOUR: f64 = 3_600_000.0;
/// The lab name for results that give none.
pub(crate) const NO_LAB: &str = "(no lab)";

/// One lab's measured throughput.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredLab {
    /// The lab as results name it.
    pub name: String,
    /// Result rows it reported.
    pub results: u64,
    /// Its first report.
    pub first_report: String,
    /// Its last report.
    pub last_report: String,
    /// Clock hours from first to last report.
    pub span_hours: f64,
    /// One-hour windows (from the first report) with at least one report.
    pub active_hours: u64,
    /// Staffed hours a day (from the plan's lab of that name, else the plan default).
    pub staffed_hours: f64,
    /// Working hours: the least of the span, the staffed time in it, the active hours.
    pub working_hours: f64,
    /// Tubes per staffed hour (`None` when every result came at one time).
    pub tubes_per_hour: Option<f64>,
    /// Tubes per staffed day at that rate.
    pub tubes_per_day: Option<u64>,
}

/// What a round in the store saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The round.
    pub round: String,
    /// Distinct persons.
    pub persons: u64,
    /// Tubes.
    pub tubes: u64,
    /// Pool tubes.
    pub pool_tubes: u64,
    /// Single tubes.
    pub single_tubes: u64,
    /// Single tubes of persons not pooled in the round.
    pub first_stage_single_tubes: u64,
    /// Single tubes of persons also pooled in the round (retests).
    pub retest_tubes: u64,
    /// People recorded in pool tubes.
    pub pool_members: u64,
    /// Mean people per pool tube.
    pub mean_pool_fill: f64,
    /// Pool tubes by capacity.
    pub pool_capacities: Vec<(u8, u64)>,
    /// Pool memberships ÷ first-stage samples.
    pub pooled_share: f64,
    /// Pool tubes with a result.
    pub pools_with_result: u64,
    /// Of which positive.
    pub positive_pools: u64,
    /// Of which inconclusive.
    pub inconclusive_pools: u64,
    /// Positive ÷ with result.
    pub pool_positivity: f64,
    /// (Positive + inconclusive) ÷ with result: pools that recall their people.
    pub recall_positivity: f64,
    /// Prevalence implied by the positive pools at the mean fill.
    pub implied_prevalence: f64,
    /// Retests per recalling pool.
    pub retests_per_recall: Option<f64>,
    /// Each lab.
    pub labs: Vec<MeasuredLab>,
}

/// Working hours of a lab staffed `staffed` hours a day within `span` clock hours.
///
/// ```
/// use pooltrack::planner::measure::working_hours;
/// assert_eq!(working_hours(6.0, 18.0), 6.0);
/// assert_eq!(working_hours(20.0, 18.0), 18.0);
/// assert_eq!(working_hours(48.0, 18.0), 36.0);
/// ```
pub fn working_hours(span: f64, staffed: f64) -> f64 {
    if span <= 24.0 {
        span.min(staffed)
    } else {
        staffed * span / 24.0
    }
}

/// The prevalence that makes `share` of `k`-person pools positive: 1 − (1 − q)^(1/k).
///
/// ```
/// use pooltrack::planner::measure::implied_prevalence;
/// // 1 − 0.999^10 = 0.009 955 12 of 10-person pools positive ⇔ p = 0.001.
/// assert!((implied_prevalence(0.009_955_119_79, 10.0) - 0.001).abs() < 1e-12);
/// ```
pub fn implied_prevalence(share: f64, k: f64) -> f64 {
    if k <= 0.0 {
        return 0.0;
    }
    1.0 - (1.0 - share.clamp(0.0, 1.0)).powf(1.0 / k)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { f(a) / f(b) }
}

/// Measures a loaded round; `staffed_hours` gives each lab's staffed hours by name.
pub fn measure(round: &Round, staffed_hours: impl Fn(&str) -> f64) -> Measured {
    let c = &round.collections;
    let t = &round.tubes;
    let mut pooled: Vec<u64> = Vec::new();
    // Modes and capacities as deconvolution reads them (the tube's settled ones), not
    // as one row stated them.
    for row in 0..c.mode.len() {
        let tube = round.tube_of_row.get(row).map_or(NONE, |&t| t);
        if t.mode.get(tube as usize) == Some(&Mode::Pool) {
            pooled.push(xxh3_64(c.person.value(row).as_bytes()));
        }
    }
    pooled.sort_unstable();
    pooled.dedup();
    let (mut pool_tubes, mut single_tubes, mut retests, mut members) = (0u64, 0u64, 0u64, 0u64);
    let (mut with_result, mut positive, mut inconclusive) = (0u64, 0u64, 0u64);
    let mut capacities: HashMap<u8, u64> = HashMap::new();
    for i in 0..t.len() {
        let row = t.row[i] as usize;
        match t.mode[i] {
            Mode::Pool => {
                pool_tubes += 1;
                members += u64::from(t.members[i]);
                *capacities.entry(t.capacity[i]).or_default() += 1;
                let r = t.result[i];
                if r != NONE {
                    with_result += 1;
                    match round.results.outcome[r as usize] {
                        Outcome::Positive => positive += 1,
                        Outcome::Inconclusive => inconclusive += 1,
                        _ => {}
                    }
                }
            }
            Mode::Single => {
                single_tubes += 1;
                let h = xxh3_64(c.person.value(row).as_bytes());
                if pooled.binary_search(&h).is_ok() {
                    retests += 1;
                }
            }
        }
    }
    let first_single = single_tubes - retests;
    let mean_fill = ratio(members, pool_tubes);
    let pool_positivity = ratio(positive, with_result);
    let recalls = positive + inconclusive;
    let mut pool_capacities: Vec<(u8, u64)> = capacities.into_iter().collect();
    pool_capacities.sort_unstable();
    Measured {
        round: round.name.clone(),
        persons: round.persons().len() as u64,
        tubes: t.len() as u64,
        pool_tubes,
        single_tubes,
        first_stage_single_tubes: first_single,
        retest_tubes: retests,
        pool_members: members,
        mean_pool_fill: mean_fill,
        pool_capacities,
        pooled_share: ratio(members, members + first_single),
        pools_with_result: with_result,
        positive_pools: positive,
        inconclusive_pools: inconclusive,
        pool_positivity,
        recall_positivity: ratio(recalls, with_result),
        implied_prevalence: implied_prevalence(pool_positivity, mean_fill),
        retests_per_recall: (recalls > 0).then(|| ratio(retests, recalls)),
        labs: measure_labs(round, staffed_hours),
    }
}

fn measure_labs(round: &Round, staffed_hours: impl Fn(&str) -> f64) -> Vec<MeasuredLab> {
    let r = &round.results;
    let lab_of = |i: usize| {
        if r.lab.is_null(i) || r.lab.value(i).is_empty() {
            NO_LAB
        } else {
            r.lab.value(i)
        }
    };
    let mut times: HashMap<&str, Vec<i64>> = HashMap::new();
    for i in 0..r.len() {
        times.entry(lab_of(i)).or_default().push(r.reported_at[i]);
    }
    let mut labs: Vec<MeasuredLab> = times
        .into_iter()
        .map(|(name, mut at)| {
            at.sort_unstable();
            let first = at.first().copied().unwrap_or(0);
            let last = at.last().copied().unwrap_or(0);
            let mut windows: Vec<i64> = at.iter().map(|t| (t - first) / 3_600_000).collect();
            windows.dedup();
            let active = windows.len() as u64;
            let n = at.len() as u64;
            let at_first = at.iter().take_while(|&&t| t == first).count() as u64;
            // Millisecond spans of a round are far below 2^53: exact as f64.
            #[allow(clippy::cast_precision_loss)]
            let span = (last - first) as f64 / MS_PER_HOUR;
            let staffed = staffed_hours(name);
            let work = working_hours(span, staffed).min(f(active));
            let rate = (work > 0.0).then(|| f(n - at_first) / work);
            MeasuredLab {
                name: name.to_owned(),
                results: n,
                first_report: time::format_local(first, round.zone),
                last_report: time::format_local(last, round.zone),
                span_hours: span,
                active_hours: active,
                staffed_hours: staffed,
                working_hours: work,
                tubes_per_hour: rate,
                tubes_per_day: rate.map(|r| floor_u64(r * staffed)),
            }
        })
        .collect();
    labs.sort_by(|a, b| a.name.cmp(&b.name));
    labs
}

/// A full round of `people` sampled the way the measured round was.
///
/// ```
/// use pooltrack::planner::measure::{measured_demand_groups, Measured};
/// let m = Measured {
///     round: "r".into(), persons: 1_000, tubes: 110, pool_tubes: 100, single_tubes: 10,
///     first_stage_single_tubes: 10, retest_tubes: 0, pool_members: 990,
///     mean_pool_fill: 9.9, pool_capacities: vec![(10, 100)], pooled_share: 0.99,
///     pools_with_result: 100, positive_pools: 0, inconclusive_pools: 0,
///     pool_positivity: 0.0, recall_positivity: 0.0, implied_prevalence: 0.0,
///     retests_per_recall: None, labs: vec![],
/// };
/// let g = measured_demand_groups(&m, 1_000_000);
/// assert_eq!(g[0].people, 990_000);
/// assert_eq!(g[1].people, 10_000);
/// ```
pub fn measured_demand_groups(m: &Measured, people: u64) -> Vec<Group> {
    let pooled = floor_u64(f(people) * m.pooled_share + 0.5).min(people);
    let mut groups = Vec::with_capacity(2);
    if pooled > 0 && m.mean_pool_fill > 0.0 {
        groups.push(Group {
            name: "pooled (as measured)".into(),
            people: pooled,
            tubing: Tubing::MeasuredPool {
                mean_fill: m.mean_pool_fill,
            },
            // Recall positivity, not positive only: inconclusive pools are recalled too.
            prevalence: implied_prevalence(m.recall_positivity, m.mean_pool_fill),
        });
    }
    groups.push(Group {
        name: "single (as measured)".into(),
        people: people - pooled,
        tubing: Tubing::Single,
        prevalence: 0.0,
    });
    groups
}

/// Labs that run at the measured rates (labs without a rate are left out).
pub fn measured_labs(m: &Measured) -> Vec<Lab> {
    m.labs
        .iter()
        .filter_map(|l| {
            let rate = l.tubes_per_hour?;
            Some(Lab {
                name: l.name.clone(),
                staffed_hours: l.staffed_hours,
                // One "instrument" doing a minute's worth of tubes a minute: the measured
                // rate, counted in whole minutes of staffed time.
                stages: vec![Stage {
                    kind: StageKind::Observed,
                    instruments: 1,
                    samples_per_run: rate / 60.0,
                    minutes_per_run: 1.0,
                }],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_hours_are_continuous() {
        // At the staffed hours and at 24 h the two rules meet.
        assert_eq!(working_hours(18.0, 18.0), 18.0);
        assert_eq!(working_hours(24.0, 18.0), 18.0);
        assert!((working_hours(24.000_001, 18.0) - 18.0).abs() < 1e-5);
        assert_eq!(working_hours(0.0, 18.0), 0.0);
    }

    #[test]
    fn a_measured_lab_does_its_rate_over_its_staffed_day() {
        // 500 tubes an hour, 18 h: 9,000 a day; in minutes 500/60 × 1,080 = 9,000.
        let m = MeasuredLab {
            name: "L1".into(),
            results: 3_000,
            first_report: String::new(),
            last_report: String::new(),
            span_hours: 6.0,
            active_hours: 6,
            staffed_hours: 18.0,
            working_hours: 6.0,
            tubes_per_hour: Some(500.0),
            tubes_per_day: Some(9_000),
        };
        let labs = measured_labs(&Measured {
            round: "r".into(),
            persons: 0,
            tubes: 0,
            pool_tubes: 0,
            single_tubes: 0,
            first_stage_single_tubes: 0,
            retest_tubes: 0,
            pool_members: 0,
            mean_pool_fill: 0.0,
            pool_capacities: vec![],
            pooled_share: 0.0,
            pools_with_result: 0,
            positive_pools: 0,
            inconclusive_pools: 0,
            pool_positivity: 0.0,
            recall_positivity: 0.0,
            implied_prevalence: 0.0,
            retests_per_recall: None,
            labs: vec![m],
        });
        assert!((labs[0].tubes_within(24.0) - 9_000.0).abs() < 1e-6);
    }
}
