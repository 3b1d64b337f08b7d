//! Turnaround and deadlines: how long tubes waited for a result, which are late, how
//! fast positive pools were recalled, and whether the round will finish in 24 h.
//!
//! - A tube's **turnaround** is the `reported_at` of its first counted result (the
//!   earliest by report time that is not void) minus the tube's earliest `collected_at`.
//!   Percentiles are **nearest-rank**: the p-th percentile of n sorted values is the
//!   value at rank ⌈p·n/100⌉ (1-based), always an observed turnaround.
//! - A tube is **late** when that first result came after its deadline (default 24 h
//!   for pools, 6 h for single tubes: the targets cities promised), or when it still has
//!   no result at `as_of` and the deadline has passed.
//! - A positive pool's **recall delay** runs from its first positive result's
//!   `reported_at` to the first `worklist recall` run of the round that started after
//!   the batch holding that result was committed (the log `STORE/logs/recall-runs.jsonl`
//!   that `worklist recall` appends to). Without such a run the pool is still waiting.
//! - **Progress**: for each hour h = 1..=H after the round's first collection, the
//!   tubes collected by then and how many of them had a result by then. H reaches the
//!   round's last collection or first result, or `as_of` if earlier (at most
//!   [`MAX_PROGRESS_HOURS`]).
//!
//! The report is put together in this file, where one pass over the tubes both measures
//! the turnaround by lab and finds the late tubes (apart, they would walk the tubes
//! twice), and one read fetches the barcodes of the late tubes and recalled pools
//! together. `stats` holds the percentiles and the histogram, `recall` the recall-run
//! log and the recall delays measured against it, and `hourly` the progress curve.

use arrow_array::Array;
use arrow_array::types::UInt32Type;
use rayon::prelude::*;
use serde::Serialize;

use crate::model::Mode;
use crate::store::labels::{UNSTATED, labels};
use crate::store::read;
use crate::store::{BatchKind, Store};
use crate::time::{self, Millis, Stamp};
use crate::tracker::{NONE, Statuses};
use crate::{Error, Result};

mod hourly;
mod recall;
mod stats;

pub use hourly::{ProgressPoint, progress};
pub use recall::{RECALL_LOG, RecallDelay, RecallLog, RecallRun, recall_runs, record_recall_run};
pub use stats::{Histogram, LabStats, Stats, nearest_rank};

const MS_PER_MINUTE: f64 = 60_000.0;
const MS_PER_HOUR: i64 = 3_600_000;

/// Hourly histogram bins before the overflow bin.
pub const HISTOGRAM_HOURS: usize = 48;
/// The longest progress curve, in hours (a round of two weeks is no longer one round).
pub const MAX_PROGRESS_HOURS: u32 = 24 * 14;

pub use crate::store::config::Deadlines;

/// What "now" of a report that measures waiting is, when `--as-of` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Given with `--as-of`.
    Given,
    /// The round's last result (its latest `reported_at`).
    LastResult,
    /// The round's last collection (it has no results yet).
    LastCollection,
}

impl AsOf {
    /// Words for the note that says which time was used.
    pub fn describe(self) -> &'static str {
        match self {
            AsOf::Given => "--as-of",
            AsOf::LastResult => "the round's last result; --as-of to change",
            AsOf::LastCollection => {
                "the round's last collection, it has no result yet; --as-of to change"
            }
        }
    }
}

/// The default "now" of a round's waiting measures: its last result, else its last
/// collection. The current time would make a past round's waiting tubes look
/// months late; the round's own last event is what it looked like when it ended.
pub fn round_as_of(round: &Statuses) -> (Millis, AsOf) {
    let rs = &round.results;
    let last_result = rs
        .reported_at
        .iter()
        .zip(&rs.tube)
        .filter(|&(_, &t)| t != NONE)
        .map(|(&at, _)| at)
        .max();
    match last_result {
        Some(at) => (at, AsOf::LastResult),
        None => (
            round.collected_at.iter().copied().max().unwrap_or(0),
            AsOf::LastCollection,
        ),
    }
}

/// A tube past its deadline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateTube {
    /// Barcode.
    pub tube: String,
    /// `pool` or `single`.
    pub mode: &'static str,
    /// Earliest collection.
    pub collected_at: Stamp,
    /// When its result was due.
    pub due_at: Stamp,
    /// Its first counted result's report time; `None` while it still waits.
    pub reported_at: Option<Stamp>,
    /// Lab of that result.
    pub lab: String,
    /// Minutes past the deadline (at `as_of` for a tube still waiting).
    pub minutes_late: f64,
}

/// A late tube as the pass over the tubes finds it, before its text is made.
struct Late {
    tube: u32,
    mode: Mode,
    /// Index of the lab of its first counted result in the pass's lab list.
    lab: Option<usize>,
    collected: Millis,
    due: Millis,
    reported: Option<Millis>,
    /// Milliseconds past the deadline.
    over: Millis,
}

/// Late tubes counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LateCounts {
    /// Pools reported after their deadline.
    pub pool_reported_late: u64,
    /// Pools still without a result past their deadline.
    pub pool_waiting: u64,
    /// Single tubes reported after their deadline.
    pub single_reported_late: u64,
    /// Single tubes still without a result past their deadline.
    pub single_waiting: u64,
}

/// A round's turnaround report.
#[derive(Debug, Clone, Serialize)]
pub struct Turnaround {
    /// The round.
    pub round: String,
    /// The time "now" for tubes still waiting.
    pub as_of: String,
    /// The deadlines applied.
    pub deadlines: Deadlines,
    /// The round's first collection.
    pub first_collection: Option<String>,
    /// Tubes in the round.
    pub tubes: u64,
    /// Turnaround of the whole round.
    pub round_stats: Stats,
    /// Turnaround by lab, by lab name.
    pub by_lab: Vec<LabStats>,
    /// From collection to receipt at the lab, for tubes whose result gave `received_at`.
    pub transport: Stats,
    /// From receipt to report, for the same tubes.
    pub in_lab: Stats,
    /// Late tubes by kind.
    pub late_counts: LateCounts,
    /// Late tubes in all.
    pub late_total: u64,
    /// The late tubes, the latest first: every one, or the first as many as asked for.
    pub late: Vec<LateTube>,
    /// Positive pools in all.
    pub recall_delays_total: u64,
    /// Positive pools' recall delays, the longest first: every one, or the first as
    /// many as asked for.
    pub recall_delays: Vec<RecallDelay>,
    /// Progress by hour since the first collection.
    pub progress: Vec<ProgressPoint>,
    /// Turnaround histogram of the round.
    pub histogram: Histogram,
}

/// The first result of each tube that counts (not void), by report time; [`NONE`] when
/// it has none.
pub(crate) fn first_counted(round: &Statuses) -> Vec<u32> {
    let t = &round.tubes;
    let void = |r: u32| round.results.void.get(r as usize).copied().unwrap_or(false);
    (0..t.len())
        .into_par_iter()
        .map(|i| {
            let (lo, hi) = (t.result_start[i] as usize, t.result_start[i + 1] as usize);
            t.result_rows[lo..hi]
                .iter()
                .copied()
                .find(|&r| !void(r))
                .unwrap_or(NONE)
        })
        .collect()
}

/// Keeps the first `n` of `items` in the order of `cmp` (a total order), sorted: the
/// `n` are selected before they are sorted, since a city's round has 700,000 late
/// single tubes and a report lists a hundred.
fn first_in_order<T: Send>(
    items: &mut Vec<T>,
    n: usize,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering + Sync,
) {
    if n == 0 {
        items.clear();
        return;
    }
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, &cmp);
        items.truncate(n);
    }
    items.par_sort_unstable_by(cmp);
}

impl Turnaround {
    /// Measures a decided round against `deadlines`, with the round's `recall_runs`
    /// (others are ignored) and `as_of` as "now" for tubes still waiting. Reads the lab
    /// and batch of the round's result rows (few: about one per tube), and the barcodes
    /// of only the tubes it lists from the tube index, not the round's 25 million
    /// person ids. Lists at most `listed` late tubes and recall delays (the totals
    /// count them all): a city's round can have 700,000 late single tubes, and a
    /// screen shows ten.
    pub fn compute(
        store: &Store,
        round: &Statuses,
        deadlines: Deadlines,
        recall_runs: &[RecallRun],
        as_of: Millis,
        listed: usize,
    ) -> Result<Turnaround> {
        let deadlines = deadlines.check()?;
        let tubes = &round.tubes;
        let n = tubes.len();
        let first = first_counted(round);
        let collected = &round.swabs().first;
        let rs = &round.results;

        // Batch and receipt time of every result row (row order), for commit times and
        // the transport/lab split; each row's lab as a number (a few labs, 3.6 million
        // result rows in a city's round: no string a row).
        let ((batches, received), labs) = rayon::join(
            || {
                rayon::join(
                    || {
                        read::primitive::<UInt32Type>(
                            store,
                            &round.name,
                            BatchKind::Results,
                            "batch",
                        )
                    },
                    || read::receipt_times(store, &round.name),
                )
            },
            || labels(store, &round.name, BatchKind::Results, "lab"),
        );
        let (batches, received, labs) = (batches?.into_parts().1, received?, labs?);
        let received_at = |r: u32| -> Option<Millis> {
            let i = r as usize;
            (i < received.len() && received.is_valid(i)).then(|| received.value(i))
        };
        if labs.codes.len() != rs.outcome.len() || batches.len() != rs.outcome.len() {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: the result segments and their indexes disagree on the rows",
                    round.name
                ),
            ));
        }
        let lab_of = |r: u32| labs.of_row(r as usize).unwrap_or("");
        // A lab's row below by its number (the last for an unstated lab): the labels'
        // names are distinct and none is empty, so a number is a lab.
        let mut row_of_code: Vec<Option<usize>> = vec![None; labs.names.len() + 1];
        let code_of = |r: u32| {
            let c = labs.codes.get(r as usize).copied().unwrap_or(UNSTATED);
            if c == UNSTATED {
                labs.names.len()
            } else {
                c as usize
            }
        };

        // Turnaround of each tube with a counted result, and its lab.
        let mut lab_names: Vec<&str> = Vec::new();
        let mut per_lab: Vec<(Vec<i64>, u64, Vec<i64>)> = Vec::new();
        let mut all = Vec::with_capacity(n);
        let (mut transport, mut in_lab) = (Vec::new(), Vec::new());
        let mut late_total = 0;
        let mut late: Vec<Late> = Vec::new();
        let mut counts = LateCounts::default();
        for t in 0..n {
            let due = collected[t].saturating_add(deadlines.millis(tubes.mode[t]));
            let pool = tubes.mode[t] == Mode::Pool;
            let tube = u32::try_from(t).unwrap_or(NONE);
            let r = first[t];
            if r == NONE {
                if as_of > due {
                    late.push(Late {
                        tube,
                        mode: tubes.mode[t],
                        lab: None,
                        collected: collected[t],
                        due,
                        reported: None,
                        over: as_of - due,
                    });
                    *if pool {
                        &mut counts.pool_waiting
                    } else {
                        &mut counts.single_waiting
                    } += 1;
                }
                continue;
            }
            let reported = rs.reported_at[r as usize];
            let ms = reported - collected[t];
            let is_late = reported > due;
            let code = code_of(r);
            let id = if let Some(&Some(id)) = row_of_code.get(code) {
                id
            } else {
                lab_names.push(lab_of(r));
                per_lab.push((Vec::new(), 0, Vec::new()));
                let id = lab_names.len() - 1;
                if let Some(slot) = row_of_code.get_mut(code) {
                    *slot = Some(id);
                }
                id
            };
            per_lab[id].0.push(ms);
            all.push(ms);
            if let Some(at) = received_at(r) {
                transport.push(at - collected[t]);
                in_lab.push(reported - at);
                per_lab[id].2.push(reported - at);
            }
            if is_late {
                per_lab[id].1 += 1;
                late_total += 1;
                late.push(Late {
                    tube,
                    mode: tubes.mode[t],
                    lab: Some(id),
                    collected: collected[t],
                    due,
                    reported: Some(reported),
                    over: reported - due,
                });
                *if pool {
                    &mut counts.pool_reported_late
                } else {
                    &mut counts.single_reported_late
                } += 1;
            }
        }
        let histogram = Histogram::of(&all);
        let round_stats = Stats::of(all, late_total);
        let mut by_lab: Vec<LabStats> = lab_names
            .iter()
            .zip(per_lab)
            .map(|(name, (ms, late, in_lab))| LabStats {
                lab: (*name).to_owned(),
                stats: Stats::of(ms, late),
                in_lab: Stats::of(in_lab, 0),
            })
            .collect();
        by_lab.sort_by(|a, b| a.lab.cmp(&b.lab));

        // Positive pools and their recall runs.
        let mut recalls = recall::delays(store, round, recall_runs, &batches, as_of);

        // The lists, cut, then the barcodes of the listed tubes only.
        let (late_total, recall_delays_total) = (late.len() as u64, recalls.len() as u64);
        first_in_order(&mut late, listed, |a, b| {
            b.over.cmp(&a.over).then(a.tube.cmp(&b.tube))
        });
        first_in_order(&mut recalls, listed, |a, b| {
            b.4.cmp(&a.4).then(a.0.cmp(&b.0))
        });
        let listed: Vec<u32> = late
            .iter()
            .map(|l| l.tube)
            .chain(recalls.iter().map(|r| r.0))
            .collect();
        let barcodes = round.barcodes_of(store, &listed)?;
        let barcode = |t: u32| barcodes.get(t).to_owned();
        let fmt = |ms: Millis| time::format(ms, round.zone);
        let stamp = |at: Millis| Stamp {
            at,
            offset: round.zone,
        };
        // Built from the values the pass above copied: the list is in order of lateness,
        // and reading the tube columns in that order was a cache miss a field.
        let late = late
            .into_par_iter()
            .with_min_len(4096)
            .map(|l| LateTube {
                tube: barcode(l.tube),
                mode: l.mode.as_str(),
                collected_at: stamp(l.collected),
                due_at: stamp(l.due),
                reported_at: l.reported.map(stamp),
                lab: l.lab.map_or(String::new(), |id| lab_names[id].to_owned()),
                minutes_late: l.over as f64 / MS_PER_MINUTE,
            })
            .collect();
        let recall_delays = recalls
            .into_par_iter()
            .map(|(t, r, at, run, ms)| RecallDelay {
                tube: barcode(t),
                reported_at: fmt(rs.reported_at[r as usize]),
                committed_at: fmt(at),
                recall_run_at: run.map(fmt),
                minutes: ms as f64 / MS_PER_MINUTE,
            })
            .collect();

        // Progress from the first collection to the last event (or as_of).
        let (start, progress_curve) = hourly::curve(round, &first, collected, as_of);
        Ok(Turnaround {
            round: round.name.clone(),
            as_of: fmt(as_of),
            deadlines,
            first_collection: start.map(fmt),
            tubes: n as u64,
            round_stats,
            by_lab,
            transport: Stats::of(transport, 0),
            in_lab: Stats::of(in_lab, 0),
            late_counts: counts,
            late_total,
            late,
            recall_delays_total,
            recall_delays,
            progress: progress_curve,
            histogram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The first `n` kept are those a full sort puts first, in its order.
        #[test]
        fn the_first_in_order_are_a_sorted_list_cut(
            items in proptest::collection::vec((0i64..50, 0u32..1_000), 0..200),
            n in 0usize..220,
        ) {
            let cmp = |a: &(i64, u32), b: &(i64, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
            let mut want = items.clone();
            want.sort_by(cmp);
            want.truncate(n);
            let mut got = items;
            first_in_order(&mut got, n, cmp);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn deadlines_are_checked() {
        assert!(Deadlines::default().check().is_ok());
        let bad = Deadlines {
            pool_hours: 0.0,
            single_hours: 6.0,
        };
        assert!(bad.check().is_err());
        let nan = Deadlines {
            pool_hours: 24.0,
            single_hours: f64::NAN,
        };
        assert!(nan.check().is_err());
        assert_eq!(Deadlines::default().millis(Mode::Single), 6 * MS_PER_HOUR);
    }
}
