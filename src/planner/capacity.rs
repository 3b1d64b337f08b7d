//! Lab capacity: can the labs test a round's tubes before the deadline?
//!
//! The rule (Chifeng notice 2022-63, citing the national guide, 3rd ed.): count the
//! testing equipment at **18 staffed hours a day**, and that capacity must finish a
//! full-population round **within 24 hours**.
//!
//! The arithmetic, per lab and stage (extraction, PCR):
//!
//! - **Whole runs.** An instrument does ⌊working minutes / minutes per run⌋ runs: a
//!   run that would end after the staffed hours does not count. This is the choice
//!   between "floor" and "continuous" runs per day, and floor is the conservative one
//!   a lab director would sign: 18 h of a 90-minute PCR run is exactly 12 runs, 18 h of
//!   a 100-minute run is 10 runs, not 10.8.
//! - **Working time within a clock time.** A lab staffed `H` hours a day works `H/24`
//!   of each clock hour on average, so within a deadline of `D` clock hours it works
//!   `H × D / 24` hours (18 h within the 24 h deadline).
//! - **Stage capacity** = instruments × samples per run (after controls) × whole runs.
//! - **A lab's capacity** is that of its slower stage (its own bottleneck): extraction
//!   and PCR run as a pipeline, and tubes do not move between labs mid-test. The fill
//!   time of the pipeline (one extraction run before the first PCR run) is ignored.
//! - **The city's capacity** is the sum over labs, with tubes sent to each lab in
//!   proportion to what it can do. The city's *bottleneck stage* is the stage with
//!   the least capacity summed over labs.
//! - **Hours needed** is the least clock time in which that capacity reaches the
//!   round's tubes (found by bisection on the step function, so it agrees with the
//!   whole-run verdict: the round passes exactly when hours needed ≤ deadline).
//!
//! When a round fails, [`instruments_to_pass`] adds instruments one at a time where
//! they raise the city's capacity most (to a lab's bottleneck stage, or to both stages
//! when they are level) until the round fits: the instruments per stage that would
//! make it pass.
//!
//! One job: the capacity verdict and the instruments that would change it. The search
//! runs on the same whole-run arithmetic as the verdict (a property test checks that
//! its fix passes [`assess`]), so they stay together; the file is over 600 lines only
//! by its tests.

use serde::Serialize;

use super::numbers::{f, floor_u64, thousands, thousands_i};

/// Small slack so that 18 h × 60 / 90 min is 12 runs, not 11.999…
const EPS: f64 = 1e-9;
/// Clock hours beyond which a round is reported as never finishing.
const NEVER_HOURS: f64 = 1e7;
/// Most instruments [`instruments_to_pass`] will add before saying none will do.
const MAX_ADDED: u32 = 1_000_000;

/// A stage of a lab's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Nucleic-acid extraction.
    Extraction,
    /// RT-PCR amplification.
    Pcr,
    /// The whole lab as a measured round saw it (tubes reported per hour).
    Observed,
}

impl StageKind {
    /// The stage's name in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Extraction => "extraction",
            StageKind::Pcr => "pcr",
            StageKind::Observed => "observed",
        }
    }
}

/// One kind of instrument in a lab.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// Which stage.
    pub kind: StageKind,
    /// How many instruments.
    pub instruments: u32,
    /// Samples per run, after the wells the controls take.
    pub samples_per_run: f64,
    /// Minutes per run (greater than 0).
    pub minutes_per_run: f64,
}

impl Stage {
    /// Whole runs one instrument completes in `working_hours`.
    ///
    /// ```
    /// use pooltrack::planner::capacity::{Stage, StageKind};
    /// let pcr = Stage { kind: StageKind::Pcr, instruments: 1, samples_per_run: 94.0, minutes_per_run: 100.0 };
    /// assert_eq!(pcr.runs(18.0), 10.0); // 1,080 min / 100 min = 10.8 → 10 whole runs
    /// ```
    pub fn runs(&self, working_hours: f64) -> f64 {
        if self.minutes_per_run <= 0.0 || working_hours <= 0.0 {
            return 0.0;
        }
        (working_hours * 60.0 / self.minutes_per_run + EPS).floor()
    }

    /// Samples one instrument completes in `working_hours`.
    pub(crate) fn per_instrument(&self, working_hours: f64) -> f64 {
        self.samples_per_run * self.runs(working_hours)
    }

    /// Samples all the stage's instruments complete in `working_hours`.
    ///
    /// ```
    /// use pooltrack::planner::capacity::{Stage, StageKind};
    /// let pcr = Stage { kind: StageKind::Pcr, instruments: 8, samples_per_run: 94.0, minutes_per_run: 90.0 };
    /// assert_eq!(pcr.tubes_in(18.0), 8.0 * 94.0 * 12.0); // 9,024 a staffed day
    /// ```
    pub fn tubes_in(&self, working_hours: f64) -> f64 {
        f64::from(self.instruments) * self.per_instrument(working_hours)
    }
}

/// A lab: its staffed hours and its stages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lab {
    /// The lab's name.
    pub name: String,
    /// Staffed hours a day (0–24].
    pub staffed_hours: f64,
    /// Its stages; a lab does as much as its slowest stage.
    pub stages: Vec<Stage>,
}

impl Lab {
    /// Working hours within `clock_hours` of the clock.
    pub fn working_hours(&self, clock_hours: f64) -> f64 {
        self.staffed_hours * clock_hours / 24.0
    }

    /// Tubes the lab finishes within `clock_hours`: its slowest stage's whole runs.
    ///
    /// ```
    /// use pooltrack::planner::capacity::{Lab, Stage, StageKind};
    /// let lab = Lab {
    ///     name: "A".into(),
    ///     staffed_hours: 18.0,
    ///     stages: vec![
    ///         Stage { kind: StageKind::Extraction, instruments: 2, samples_per_run: 94.0, minutes_per_run: 40.0 },
    ///         Stage { kind: StageKind::Pcr, instruments: 4, samples_per_run: 94.0, minutes_per_run: 90.0 },
    ///     ],
    /// };
    /// // extraction 2 × 94 × 27 = 5,076; PCR 4 × 94 × 12 = 4,512: PCR limits the lab.
    /// assert_eq!(lab.tubes_within(24.0), 4_512.0);
    /// ```
    pub fn tubes_within(&self, clock_hours: f64) -> f64 {
        let w = self.working_hours(clock_hours);
        self.stages
            .iter()
            .map(|s| s.tubes_in(w))
            .reduce(f64::min)
            .unwrap_or(0.0)
    }

    /// The stage that limits the lab within `clock_hours`.
    pub fn bottleneck(&self, clock_hours: f64) -> Option<StageKind> {
        let w = self.working_hours(clock_hours);
        self.stages
            .iter()
            .min_by(|a, b| a.tubes_in(w).total_cmp(&b.tubes_in(w)))
            .map(|s| s.kind)
    }
}

/// Tubes all labs finish within `clock_hours`.
pub(crate) fn city_tubes_within(labs: &[Lab], clock_hours: f64) -> f64 {
    labs.iter().map(|l| l.tubes_within(clock_hours)).sum()
}

/// Tubes one stage, summed over labs, finishes within `clock_hours`.
pub(crate) fn stage_tubes_within(labs: &[Lab], kind: StageKind, clock_hours: f64) -> f64 {
    labs.iter()
        .flat_map(|l| {
            let w = l.working_hours(clock_hours);
            l.stages
                .iter()
                .filter(move |s| s.kind == kind)
                .map(move |s| s.tubes_in(w))
        })
        .sum()
}

/// The least clock time in which `done(t)` (non-decreasing) reaches `tubes`, or `None`
/// when it never does.
///
/// ```
/// use pooltrack::planner::capacity::hours_to_reach;
/// // 100 tubes an hour in whole hours: 250 tubes are done after 3 h.
/// let h = hours_to_reach(|t| (t + 1e-9).floor() * 100.0, 250.0).unwrap();
/// assert!((h - 3.0).abs() < 1e-6);
/// assert_eq!(hours_to_reach(|_| 0.0, 1.0), None);
/// ```
pub fn hours_to_reach(done: impl Fn(f64) -> f64, tubes: f64) -> Option<f64> {
    if tubes <= 0.0 {
        return Some(0.0);
    }
    let mut hi = 1.0;
    while done(hi) < tubes {
        hi *= 2.0;
        if hi > NEVER_HOURS {
            return None;
        }
    }
    let mut lo = 0.0;
    for _ in 0..64 {
        let mid = f64::midpoint(lo, hi);
        if done(mid) >= tubes {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// A stage's capacity against the round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLoad {
    /// The stage.
    pub stage: StageKind,
    /// Instruments of this stage over all labs.
    pub instruments: u64,
    /// Tubes it finishes in one staffed day, summed over labs.
    pub per_day: u64,
    /// Tubes it finishes within the deadline, summed over labs.
    pub within_deadline: u64,
    /// The round's tubes.
    pub demand: u64,
    /// Demand ÷ capacity within the deadline (over 1 fails).
    pub utilisation: f64,
    /// Clock hours this stage alone needs for the round.
    pub hours_needed: Option<f64>,
}

/// One lab's capacity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabLoad {
    /// The lab.
    pub name: String,
    /// Its staffed hours a day.
    pub staffed_hours: f64,
    /// Tubes per staffed day, by stage.
    pub stages: Vec<(StageKind, u64)>,
    /// Tubes per staffed day through its slower stage.
    pub per_day: u64,
    /// Its slower stage.
    pub bottleneck: Option<StageKind>,
}

/// Instruments to add to one lab's stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Addition {
    /// The lab.
    pub lab: String,
    /// The stage.
    pub stage: StageKind,
    /// How many more instruments of the kind it has.
    pub add: u32,
}

/// The instruments that would make a failing round pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstrumentFix {
    /// Whether any number of instruments of the kinds in the plan would do.
    pub possible: bool,
    /// Instruments to add, per lab and stage.
    pub additions: Vec<Addition>,
    /// The same, summed per stage.
    pub by_stage: Vec<(StageKind, u32)>,
}

/// The round-capacity answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityReport {
    /// The deadline, clock hours.
    pub deadline_hours: f64,
    /// First-stage tubes of the round.
    pub first_stage_tubes: u64,
    /// Tubes of the round, retests included.
    pub demand: u64,
    /// Each stage against the round.
    pub stages: Vec<StageLoad>,
    /// Each lab.
    pub labs: Vec<LabLoad>,
    /// Tubes per staffed day through every lab's slower stage.
    pub per_day: u64,
    /// Tubes the labs finish within the deadline.
    pub within_deadline: u64,
    /// The stage with the least capacity over all labs.
    pub bottleneck: Option<StageKind>,
    /// Clock hours the round needs.
    pub hours_needed: Option<f64>,
    /// Whether the round is done within the deadline.
    pub pass: bool,
    /// Capacity within the deadline minus the round's tubes.
    pub margin_tubes: i64,
    /// Deadline minus hours needed.
    pub margin_hours: Option<f64>,
    /// When failing: instruments that would make it pass.
    pub instruments_to_pass: Option<InstrumentFix>,
}

impl CapacityReport {
    /// "load 95 %, " (demand against capacity within the deadline), or nothing when the
    /// labs finish no tube at all: the text and HTML reports both say it this way.
    pub(crate) fn load_phrase(&self) -> String {
        if self.within_deadline > 0 {
            format!(
                "load {:.0} %, ",
                f(self.demand) / f(self.within_deadline) * 100.0
            )
        } else {
            String::new()
        }
    }

    /// "17,229 spare" or "341,277 short".
    pub(crate) fn margin_phrase(&self) -> String {
        if self.margin_tubes >= 0 {
            format!("{} spare", thousands_i(self.margin_tubes))
        } else {
            format!("{} short", thousands(self.margin_tubes.unsigned_abs()))
        }
    }
}

/// Assesses the labs against a round of `demand` tubes (of which `first_stage` before
/// retests) and a deadline of `deadline_hours` clock hours.
///
/// ```
/// use pooltrack::planner::capacity::{assess, Lab, Stage, StageKind};
/// let labs = vec![Lab {
///     name: "A".into(),
///     staffed_hours: 18.0,
///     stages: vec![
///         Stage { kind: StageKind::Extraction, instruments: 2, samples_per_run: 94.0, minutes_per_run: 40.0 },
///         Stage { kind: StageKind::Pcr, instruments: 4, samples_per_run: 94.0, minutes_per_run: 90.0 },
///     ],
/// }];
/// let r = assess(&labs, 4_000, 4_000, 24.0);
/// assert!(r.pass);
/// assert_eq!(r.within_deadline, 4_512);
/// assert_eq!(r.margin_tubes, 512);
/// ```
pub fn assess(labs: &[Lab], demand: u64, first_stage: u64, deadline_hours: f64) -> CapacityReport {
    let need = f(demand);
    let mut kinds: Vec<StageKind> = labs
        .iter()
        .flat_map(|l| l.stages.iter().map(|s| s.kind))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let stages: Vec<StageLoad> = kinds
        .iter()
        .map(|&kind| {
            let within = stage_tubes_within(labs, kind, deadline_hours);
            StageLoad {
                stage: kind,
                instruments: labs
                    .iter()
                    .flat_map(|l| l.stages.iter())
                    .filter(|s| s.kind == kind)
                    .map(|s| u64::from(s.instruments))
                    .sum(),
                per_day: floor_u64(stage_tubes_within(labs, kind, 24.0)),
                within_deadline: floor_u64(within),
                demand,
                utilisation: if within > 0.0 {
                    need / within
                } else {
                    f64::INFINITY
                },
                hours_needed: hours_to_reach(|t| stage_tubes_within(labs, kind, t), need),
            }
        })
        .collect();
    let bottleneck = stages
        .iter()
        .min_by_key(|s| s.within_deadline)
        .map(|s| s.stage);
    let lab_loads = labs
        .iter()
        .map(|l| LabLoad {
            name: l.name.clone(),
            staffed_hours: l.staffed_hours,
            stages: l
                .stages
                .iter()
                .map(|s| (s.kind, floor_u64(s.tubes_in(l.staffed_hours))))
                .collect(),
            per_day: floor_u64(l.tubes_within(24.0)),
            bottleneck: l.bottleneck(24.0),
        })
        .collect();
    let within = floor_u64(city_tubes_within(labs, deadline_hours));
    let hours_needed = hours_to_reach(|t| city_tubes_within(labs, t), need);
    let pass = within >= demand;
    let margin_tubes = i64::try_from(i128::from(within) - i128::from(demand))
        .unwrap_or(if within >= demand { i64::MAX } else { i64::MIN });
    CapacityReport {
        deadline_hours,
        first_stage_tubes: first_stage,
        demand,
        stages,
        labs: lab_loads,
        per_day: floor_u64(city_tubes_within(labs, 24.0)),
        within_deadline: within,
        bottleneck,
        hours_needed,
        pass,
        margin_tubes,
        margin_hours: hours_needed.map(|h| deadline_hours - h),
        instruments_to_pass: (!pass).then(|| instruments_to_pass(labs, demand, deadline_hours)),
    }
}

/// The fewest instruments (greedily) of the kinds the labs already have that would let
/// them finish `demand` tubes within `deadline_hours`.
///
/// Each step adds one instrument to the stage that limits some lab (or one to each
/// stage when a lab's stages are level, since one alone would not help), choosing the
/// lab where that raises the city's capacity most per instrument.
///
/// ```
/// use pooltrack::planner::capacity::{instruments_to_pass, Lab, Stage, StageKind};
/// let labs = vec![Lab {
///     name: "A".into(),
///     staffed_hours: 18.0,
///     stages: vec![
///         Stage { kind: StageKind::Extraction, instruments: 2, samples_per_run: 94.0, minutes_per_run: 40.0 },
///         Stage { kind: StageKind::Pcr, instruments: 4, samples_per_run: 94.0, minutes_per_run: 90.0 },
///     ],
/// }];
/// // 5,000 tubes: PCR does 4,512 (1,128 per instrument), so one more PCR instrument.
/// let fix = instruments_to_pass(&labs, 5_000, 24.0);
/// assert!(fix.possible);
/// assert_eq!(fix.additions[0].add, 1);
/// ```
pub fn instruments_to_pass(labs: &[Lab], demand: u64, deadline_hours: f64) -> InstrumentFix {
    let need = f(demand);
    // Per lab, per stage: capacity now and per added instrument, within the deadline.
    let mut cap: Vec<Vec<f64>> = Vec::with_capacity(labs.len());
    let mut unit: Vec<Vec<f64>> = Vec::with_capacity(labs.len());
    for l in labs {
        let w = l.working_hours(deadline_hours);
        cap.push(l.stages.iter().map(|s| s.tubes_in(w)).collect());
        unit.push(l.stages.iter().map(|s| s.per_instrument(w)).collect());
    }
    let mut added: Vec<Vec<u32>> = labs.iter().map(|l| vec![0; l.stages.len()]).collect();
    let lab_cap = |c: &[f64]| c.iter().copied().reduce(f64::min).unwrap_or(0.0);
    let mut total: f64 = cap.iter().map(|c| lab_cap(c)).sum();
    let mut count = 0u32;
    let mut possible = true;
    while total < need {
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in cap.iter().enumerate() {
            let now = lab_cap(c);
            let mut n: f64 = 0.0;
            let mut next = f64::INFINITY;
            for (s, &v) in c.iter().enumerate() {
                let raised = if v <= now { v + unit[i][s] } else { v };
                if v <= now {
                    n += 1.0;
                }
                next = next.min(raised);
            }
            let gain = if next.is_finite() {
                (next - now) / n.max(1.0)
            } else {
                0.0
            };
            if gain > 0.0 && best.is_none_or(|(_, g)| gain > g) {
                best = Some((i, gain));
            }
        }
        let Some((i, _)) = best else {
            possible = false;
            break;
        };
        let now = lab_cap(&cap[i]);
        for s in 0..cap[i].len() {
            if cap[i][s] <= now {
                cap[i][s] += unit[i][s];
                added[i][s] += 1;
                count += 1;
            }
        }
        total = cap.iter().map(|c| lab_cap(c)).sum();
        if count > MAX_ADDED {
            possible = false;
            break;
        }
    }
    let mut additions = Vec::new();
    let mut by_stage: Vec<(StageKind, u32)> = Vec::new();
    for (l, lab) in labs.iter().enumerate() {
        for (s, stage) in lab.stages.iter().enumerate() {
            let add = added[l][s];
            if add == 0 {
                continue;
            }
            additions.push(Addition {
                lab: lab.name.clone(),
                stage: stage.kind,
                add,
            });
            match by_stage.iter_mut().find(|(k, _)| *k == stage.kind) {
                Some((_, n)) => *n += add,
                None => by_stage.push((stage.kind, add)),
            }
        }
    }
    by_stage.sort_unstable();
    InstrumentFix {
        possible,
        additions: if possible { additions } else { Vec::new() },
        by_stage: if possible { by_stage } else { Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stage(kind: StageKind, instruments: u32, samples: f64, minutes: f64) -> Stage {
        Stage {
            kind,
            instruments,
            samples_per_run: samples,
            minutes_per_run: minutes,
        }
    }

    fn lab(name: &str, hours: f64, ext: (u32, f64, f64), pcr: (u32, f64, f64)) -> Lab {
        Lab {
            name: name.into(),
            staffed_hours: hours,
            stages: vec![
                stage(StageKind::Extraction, ext.0, ext.1, ext.2),
                stage(StageKind::Pcr, pcr.0, pcr.1, pcr.2),
            ],
        }
    }

    #[test]
    fn shanghai_round_needs_hundreds_of_pcr_machines() {
        // The 25 M round at 10:1 and 0.1 % needs 2,748,878 tubes (see demand.rs).
        // One lab type: extraction 94 samples / 40 min, PCR 94 samples / 90 min, 18 h.
        //   extraction runs a day = ⌊1,080 / 40⌋ = 27 → 94 × 27 = 2,538 per instrument
        //   PCR runs a day        = ⌊1,080 / 90⌋ = 12 → 94 × 12 = 1,128 per instrument
        // With 1,000 extraction and 2,000 PCR instruments:
        //   extraction 2,538,000, PCR 2,256,000 → PCR is the bottleneck, 2,256,000 < 2,748,878.
        //   PCR instruments needed: ⌈2,748,878 / 1,128⌉ = ⌈2,436.95⌉ = 2,437, i.e. 437 more;
        //   extraction then needs ⌈2,748,878 / 2,538⌉ = ⌈1,083.1⌉ = 1,084, i.e. 84 more.
        // Hours needed at 2,256,000 tubes / 18 working hours: the 2,748,878th tube is in
        //   PCR run ⌈2,748,878 / (2,000 × 94)⌉ = ⌈14.62⌉ = 15, done at 15 × 90 min = 22.5
        //   working hours = 22.5 × 24 / 18 = 30 clock hours.
        let labs = vec![lab("big", 18.0, (1_000, 94.0, 40.0), (2_000, 94.0, 90.0))];
        let r = assess(&labs, 2_748_878, 2_500_000, 24.0);
        assert_eq!(r.within_deadline, 2_256_000);
        assert_eq!(r.bottleneck, Some(StageKind::Pcr));
        assert!(!r.pass);
        assert_eq!(r.margin_tubes, 2_256_000 - 2_748_878);
        let h = r.hours_needed.expect("finishes eventually");
        assert!((h - 30.0).abs() < 1e-6, "{h}");
        let fix = r.instruments_to_pass.expect("a fix");
        assert!(fix.possible);
        assert_eq!(
            fix.by_stage,
            vec![(StageKind::Extraction, 84), (StageKind::Pcr, 437)]
        );
        let mut fixed = labs.clone();
        fixed[0].stages[0].instruments += 84;
        fixed[0].stages[1].instruments += 437;
        assert!(assess(&fixed, 2_748_878, 2_500_000, 24.0).pass);
        fixed[0].stages[1].instruments -= 1;
        assert!(!assess(&fixed, 2_748_878, 2_500_000, 24.0).pass);
    }

    #[test]
    fn staffed_hours_and_whole_runs() {
        // 16 staffed hours: 960 min / 90 = 10.67 → 10 PCR runs; 960 / 40 = 24 extraction runs.
        let l = lab("A", 16.0, (1, 94.0, 40.0), (1, 94.0, 90.0));
        assert_eq!(l.tubes_within(24.0), 940.0);
        // A 48 h deadline gives 32 working hours: ⌊1,920 / 90⌋ = 21 runs, not 2 × 10.
        assert_eq!(l.tubes_within(48.0), 21.0 * 94.0);
        // A run longer than the staffed day never completes within a day.
        let slow = lab("B", 2.0, (1, 94.0, 40.0), (1, 94.0, 150.0));
        assert_eq!(slow.tubes_within(24.0), 0.0);
    }

    #[test]
    fn the_bottleneck_is_the_weaker_stage_summed_over_labs() {
        // Lab A: extraction 3 × 94 × 27 = 7,614, PCR 5 × 94 × 12 = 5,640 → 5,640.
        // Lab B: extraction 1 × 94 × 27 = 2,538, PCR 4 × 94 × 12 = 4,512 → 2,538.
        // Stages summed: extraction 10,152, PCR 10,152 → a tie; the city does 8,178.
        let labs = vec![
            lab("A", 18.0, (3, 94.0, 40.0), (5, 94.0, 90.0)),
            lab("B", 18.0, (1, 94.0, 40.0), (4, 94.0, 90.0)),
        ];
        let r = assess(&labs, 8_000, 8_000, 24.0);
        assert_eq!(r.per_day, 8_178);
        assert!(r.pass);
        assert_eq!(r.labs[0].bottleneck, Some(StageKind::Pcr));
        assert_eq!(r.labs[1].bottleneck, Some(StageKind::Extraction));
        assert_eq!(r.stages[0].per_day, 10_152);
        assert_eq!(r.stages[1].per_day, 10_152);
        // 8,000 tubes: before 18 working hours A has 11 PCR runs (5,170) and B 26
        // extraction runs (2,444), 7,614 < 8,000; both next runs end at 1,080 min, so
        // the round needs all 18 working hours = 24 clock hours.
        let h = r.hours_needed.expect("finishes");
        assert!((h - 24.0).abs() < 1e-6, "{h}");
    }

    #[test]
    fn level_stages_get_one_of_each() {
        // Extraction and PCR both 1,128 a day: adding one of either alone gains nothing.
        let labs = vec![lab("A", 18.0, (1, 94.0, 90.0), (1, 94.0, 90.0))];
        let fix = instruments_to_pass(&labs, 2_000, 24.0);
        assert!(fix.possible);
        assert_eq!(
            fix.by_stage,
            vec![(StageKind::Extraction, 1), (StageKind::Pcr, 1)]
        );
    }

    #[test]
    fn no_instrument_helps_when_runs_never_finish() {
        let labs = vec![lab("A", 1.0, (1, 94.0, 40.0), (1, 94.0, 90.0))];
        let r = assess(&labs, 10, 10, 24.0);
        assert!(!r.pass);
        let fix = r.instruments_to_pass.expect("a fix section");
        assert!(!fix.possible);
        assert!(fix.additions.is_empty());
    }

    #[test]
    fn an_empty_round_passes_in_no_time() {
        let labs = vec![lab("A", 18.0, (1, 94.0, 40.0), (1, 94.0, 90.0))];
        let r = assess(&labs, 0, 0, 24.0);
        assert!(r.pass);
        assert_eq!(r.hours_needed, Some(0.0));
    }

    fn arb_lab() -> impl Strategy<Value = Lab> {
        (
            1.0f64..=24.0,
            0u32..40,
            1u32..400,
            5u32..300,
            0u32..40,
            1u32..400,
            5u32..300,
        )
            .prop_map(|(h, ei, es, em, pi, ps, pm)| {
                lab(
                    "L",
                    h,
                    (ei, f64::from(es), f64::from(em)),
                    (pi, f64::from(ps), f64::from(pm)),
                )
            })
    }

    proptest! {
        #[test]
        fn more_instruments_never_make_a_passing_plan_fail(
            labs in prop::collection::vec(arb_lab(), 1..5),
            demand in 0u64..200_000,
            deadline in 1.0f64..72.0,
            which in 0usize..10,
            stage in 0usize..2,
            more in 1u32..50,
        ) {
            let before = assess(&labs, demand, demand, deadline);
            let mut bigger = labs.clone();
            let i = which % bigger.len();
            bigger[i].stages[stage].instruments += more;
            let after = assess(&bigger, demand, demand, deadline);
            prop_assert!(after.within_deadline >= before.within_deadline);
            if before.pass {
                prop_assert!(after.pass);
            }
            if let (Some(a), Some(b)) = (after.hours_needed, before.hours_needed) {
                prop_assert!(a <= b + 1e-6);
            }
        }

        #[test]
        fn the_instrument_fix_passes(
            labs in prop::collection::vec(arb_lab(), 1..4),
            demand in 0u64..100_000,
        ) {
            let labs: Vec<Lab> = labs
                .into_iter()
                .enumerate()
                .map(|(i, mut l)| {
                    l.name = format!("L{i}");
                    l
                })
                .collect();
            let fix = instruments_to_pass(&labs, demand, 24.0);
            if fix.possible {
                let mut fixed = labs.clone();
                for a in &fix.additions {
                    for l in fixed.iter_mut().filter(|l| l.name == a.lab) {
                        for s in l.stages.iter_mut().filter(|s| s.kind == a.stage) {
                            s.instruments += a.add;
                        }
                    }
                }
                prop_assert!(assess(&fixed, demand, demand, 24.0).pass);
            }
        }
    }
}
