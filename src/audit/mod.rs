//! The lab audit of a round (`pooltrack audit`): per lab, the checks an office runs
//! before it trusts a lab's results, each one a count and a list of what it found.
//!
//! - **Positivity against the other labs.** First-stage pool tubes with a positive or
//!   negative effective result (void, inconclusive and invalid results and retests are
//!   left out) are put in strata of (district, tube capacity) — the district of the
//!   tube's first person in the population register when one is loaded, else the
//!   tube's sampling site — so a lab is only compared with labs testing tubes from the
//!   same places, of the same size. Each lab's strata against the other labs' make
//!   2 × 2 × K tables, tested by the Cochran–Mantel–Haenszel test ([`stats::cmh`],
//!   two-sided) with Holm's correction over the labs tested. A lab far off makes the
//!   others look off the other way, so the labs are taken step by step: the most
//!   significant lab is flagged **higher** or **lower** when its adjusted p is below
//!   `alpha` and set aside, and the rest are tested again without it, until none is
//!   flagged. With two labs in a stratum both get the same p; the one with more
//!   positives than expected is taken (an excess, contamination or swapped plates, is
//!   what is looked for first), and the other is left with no lab to compare with.
//! - **Discordant pools** (see [`crate::review`]: a positive pool whose members all
//!   retested negative), as a share of the lab's positive pools, tested one-sided
//!   against the other labs' share (the same test with one stratum) with Holm.
//! - **Reported before receipt** (`reported_at` before the result row's `received_at`)
//!   and **before collection** (before the tube's last swab): each such result row.
//! - **Pools over 20 persons**: a tube holding more persons than any validated pool.
//! - **Late recalls**: a positive pool whose first recall — the earliest single tube
//!   collected from any of its members after the pool — came more than `recall_hours`
//!   after the pool's first positive report (the one-hour rule). A pool none of whose
//!   members has been retested yet is not judged here (`turnaround` follows it).
//! - **Over capacity** (with a plan): the most tubes a lab reported in any window of
//!   `window_minutes` (sliding over `reported_at`, controls left out), against what
//!   its slowest stage can finish in such a window: instruments × samples per run ×
//!   ⌈window ÷ minutes per run⌉ (a run that finishes in the window counts whole).
//!
//! Every flag is one [`Finding`]; [`Audit::labs`] holds the counts and tests by lab.

pub mod stats;

mod capacity;
mod checks;
mod positivity;

use std::collections::HashMap;

use serde::Serialize;

pub use capacity::LabCapacity;
pub use positivity::{Positivity, StrataBy};

use crate::output::ListRow;
use crate::planner::config::Plan;
use crate::store::labels::{UNSTATED, labels};
use crate::store::{BatchKind, Store};
use crate::time::{self, Millis};
use crate::tracker::{NONE, Statuses};
use crate::{Error, Result};

/// The lab of results that name none.
pub const NO_LAB: &str = "(no lab)";
/// The most persons a validated pool holds.
pub const MAX_POOL_PERSONS: u32 = 20;

/// What the audit checks against.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOptions {
    /// Significance level of the positivity and discordance tests (after Holm).
    pub alpha: f64,
    /// Hours from a positive pool's report to its first recall before it is late.
    pub recall_hours: f64,
    /// The sliding window of the capacity check, in minutes.
    pub window_minutes: u32,
    /// The labs' instruments, from a plan (`None`: no capacity check).
    pub capacity: Option<Vec<LabCapacity>>,
    /// How tubes are put in strata; `None`: by district when a register is loaded,
    /// else by site.
    pub strata: Option<StrataBy>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            alpha: 0.01,
            recall_hours: 1.0,
            window_minutes: 60,
            capacity: None,
            strata: None,
        }
    }
}

impl AuditOptions {
    /// The settings in `[audit]` of `STORE/pooltrack.toml`, the plan it names read
    /// (a relative path is taken from the store folder).
    pub fn of_store(store: &Store) -> Result<AuditOptions> {
        let c = store.config()?.audit;
        let capacity = match &c.plan {
            Some(path) => {
                let path = store.root().join(path);
                Some(LabCapacity::of_plan(&Plan::load(&path)?.labs))
            }
            None => None,
        };
        AuditOptions {
            alpha: c.alpha,
            recall_hours: c.recall_hours,
            window_minutes: c.window_minutes,
            capacity,
            strata: None,
        }
        .check()
    }

    /// Refuses values no audit can use.
    pub fn check(self) -> Result<AuditOptions> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::Usage(format!(
                "--alpha must be above 0 and below 1, got {}",
                self.alpha
            )));
        }
        if !(self.recall_hours.is_finite()
            && self.recall_hours >= 0.0
            && self.recall_hours <= 240.0)
        {
            return Err(Error::Usage(format!(
                "--recall-hours must be from 0 to 240, got {}",
                self.recall_hours
            )));
        }
        if self.window_minutes == 0 || self.window_minutes > 24 * 60 {
            return Err(Error::Usage(format!(
                "--window-minutes must be from 1 to 1440, got {}",
                self.window_minutes
            )));
        }
        Ok(self)
    }
}

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// More positive pools than the other labs' positivity explains.
    PositivityHigh,
    /// Fewer positive pools than the other labs' positivity explains.
    PositivityLow,
    /// A larger share of discordant pools than the other labs.
    DiscordantRate,
    /// A result reported before the lab received the tube.
    ReportedBeforeReceipt,
    /// A result reported before the tube's last swab.
    ReportedBeforeCollection,
    /// A tube holding more than [`MAX_POOL_PERSONS`] persons.
    #[serde(rename = "pool_over_20")]
    PoolOver20,
    /// A positive pool whose first recall came too late.
    LateRecall,
    /// More tubes reported in a window than the lab's instruments can run.
    OverCapacity,
}

impl FindingKind {
    /// The word used in text, CSV and JSON.
    ///
    /// ```
    /// assert_eq!(pooltrack::audit::FindingKind::PoolOver20.as_str(), "pool_over_20");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PositivityHigh => "positivity_high",
            FindingKind::PositivityLow => "positivity_low",
            FindingKind::DiscordantRate => "discordant_rate",
            FindingKind::ReportedBeforeReceipt => "reported_before_receipt",
            FindingKind::ReportedBeforeCollection => "reported_before_collection",
            FindingKind::PoolOver20 => "pool_over_20",
            FindingKind::LateRecall => "late_recall",
            FindingKind::OverCapacity => "over_capacity",
        }
    }
}

/// One thing the audit flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What.
    pub kind: FindingKind,
    /// The lab.
    pub lab: String,
    /// The tube, when the finding is about one (empty for a lab-wide finding).
    pub tube: String,
    /// When (local time): the report, or the window's start.
    pub at: String,
    /// In words, with the numbers behind it.
    pub detail: String,
}

impl ListRow for Finding {
    const HEADER: &'static [&'static str] = &["kind", "lab", "tube", "at", "detail"];
}

/// One lab's counts and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabAudit {
    /// The lab.
    pub lab: String,
    /// Result rows of tubes it reported (retests and reruns included).
    pub results: u64,
    /// First-stage pools with a positive or negative result.
    pub pools: u64,
    /// Of them, positive.
    pub positive_pools: u64,
    /// `positive_pools / pools`.
    pub positivity: Option<f64>,
    /// Positive pools the other labs' positivity, stratum by stratum, gives its tubes.
    pub expected_positive_pools: Option<f64>,
    /// The test that decided the positivity flag, in words.
    pub positivity_test: String,
    /// Its Mantel–Haenszel chi-square.
    pub chi_square: Option<f64>,
    /// Its p-value.
    pub p_value: Option<f64>,
    /// Its p-value after Holm's correction over the labs tested.
    pub p_adjusted: Option<f64>,
    /// `higher`, `lower`, or empty.
    pub positivity_flag: String,
    /// Positive pools of any stage.
    pub positive_pools_all: u64,
    /// Discordant pools.
    pub discordant_pools: u64,
    /// `discordant_pools / positive_pools_all`.
    pub discordant_share: Option<f64>,
    /// One-sided p-value of its discordant share against the other labs'.
    pub discordant_p_value: Option<f64>,
    /// After Holm's correction.
    pub discordant_p_adjusted: Option<f64>,
    /// Result rows reported before receipt.
    pub reported_before_receipt: u64,
    /// Result rows reported before the tube's last swab.
    pub reported_before_collection: u64,
    /// Tubes over 20 persons.
    pub pools_over_20: u64,
    /// Positive pools recalled late.
    pub late_recalls: u64,
    /// Most tubes reported in one window (with a plan).
    pub peak_in_window: Option<u64>,
    /// What its instruments finish in one window (with a plan naming the lab).
    pub capacity_in_window: Option<u64>,
    /// The kinds of its findings, `;`-separated.
    pub flags: String,
}

impl ListRow for LabAudit {
    const HEADER: &'static [&'static str] = &[
        "lab",
        "results",
        "pools",
        "positive_pools",
        "positivity",
        "expected_positive_pools",
        "positivity_test",
        "chi_square",
        "p_value",
        "p_adjusted",
        "positivity_flag",
        "positive_pools_all",
        "discordant_pools",
        "discordant_share",
        "discordant_p_value",
        "discordant_p_adjusted",
        "reported_before_receipt",
        "reported_before_collection",
        "pools_over_20",
        "late_recalls",
        "peak_in_window",
        "capacity_in_window",
        "flags",
    ];
}

/// A round's lab audit.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// The round.
    pub round: String,
    /// How tubes were put in strata.
    pub strata: StrataBy,
    /// Strata in which at least two labs tested tubes.
    pub shared_strata: u64,
    /// The significance level.
    pub alpha: f64,
    /// The recall limit, hours.
    pub recall_hours: f64,
    /// The capacity window, minutes (with a plan).
    pub window_minutes: Option<u32>,
    /// Per lab, by name.
    pub labs: Vec<LabAudit>,
    /// Every finding, by kind then lab then tube.
    pub findings: Vec<Finding>,
    /// Findings by kind.
    pub counts: Vec<(FindingKind, u64)>,
}

impl Audit {
    /// Audits `round` (see the module docs).
    pub fn compute(store: &Store, round: &Statuses, options: &AuditOptions) -> Result<Audit> {
        Audit::compute_placed(store, round, options, None)
    }

    /// [`Audit::compute`] given each collection row's district when the caller has
    /// already joined the register ([`crate::coverage::Coverage::compute_with_areas`]
    /// at [`crate::coverage::AreaLevel::District`]): the round report does, and a
    /// second join of 25 million persons had cost it several seconds.
    pub fn compute_placed(
        store: &Store,
        round: &Statuses,
        options: &AuditOptions,
        districts: Option<&[u32]>,
    ) -> Result<Audit> {
        let labs = labels(store, &round.name, BatchKind::Results, "lab")?;
        if labs.codes.len() != round.results.outcome.len() {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: the lab column and the indexes disagree on the rows",
                    round.name
                ),
            ));
        }
        let mut names = labs.names.clone();
        let no_lab = u32::try_from(names.len()).unwrap_or(UNSTATED);
        names.push(NO_LAB.to_owned());
        let lab_of_result: Vec<u32> = labs
            .codes
            .iter()
            .map(|&c| if c == UNSTATED { no_lab } else { c })
            .collect();
        let lab_of_tube: Vec<u32> = round
            .tubes
            .result
            .iter()
            .map(|&r| {
                if r == NONE {
                    no_lab
                } else {
                    lab_of_result.get(r as usize).copied().unwrap_or(no_lab)
                }
            })
            .collect();
        let ctx = checks::Context {
            store,
            round,
            names: &names,
            lab_of_result: &lab_of_result,
            lab_of_tube: &lab_of_tube,
            zone: store.zone(),
            districts,
        };
        // Independent passes over the round: side by side, each on a core.
        let (positivity, found) = rayon::join(
            || Positivity::compute(&ctx, options),
            || checks::run(&ctx, options),
        );
        let (positivity, found) = (positivity?, found?);
        Ok(assemble(round, options, &names, &positivity, found))
    }
}

/// Puts the labs' rows and the findings together, dropping labs with no result.
fn assemble(
    round: &Statuses,
    options: &AuditOptions,
    names: &[String],
    positivity: &Positivity,
    found: checks::Found,
) -> Audit {
    let mut findings = found.findings;
    findings.extend(positivity.findings(names, options.alpha));
    findings.sort_by(|a, b| (a.kind, &a.lab, &a.tube).cmp(&(b.kind, &b.lab, &b.tube)));
    let mut by_lab: HashMap<&str, Vec<FindingKind>> = HashMap::new();
    for f in &findings {
        let kinds = by_lab.entry(f.lab.as_str()).or_default();
        if !kinds.contains(&f.kind) {
            kinds.push(f.kind);
        }
    }
    let mut labs: Vec<LabAudit> = names
        .iter()
        .enumerate()
        .filter(|&(i, _)| found.per_lab.get(i).is_some_and(|l| l.results > 0))
        .map(|(i, name)| {
            let l = &found.per_lab[i];
            let p = positivity.lab(i);
            let mut kinds = by_lab.get(name.as_str()).cloned().unwrap_or_default();
            kinds.sort();
            LabAudit {
                lab: name.clone(),
                results: l.results,
                pools: p.pools,
                positive_pools: p.positives,
                positivity: ratio(p.positives, p.pools),
                expected_positive_pools: p.test.map(|t| t.expected),
                positivity_test: p.test_name.to_owned(),
                chi_square: p.test.map(|t| t.chi_square),
                p_value: p.test.map(|t| t.p_value),
                p_adjusted: p.adjusted,
                positivity_flag: p.flag.to_owned(),
                positive_pools_all: l.positive_pools,
                discordant_pools: l.discordant,
                discordant_share: ratio(l.discordant, l.positive_pools),
                discordant_p_value: l.discordant_p,
                discordant_p_adjusted: l.discordant_adjusted,
                reported_before_receipt: l.before_receipt,
                reported_before_collection: l.before_collection,
                pools_over_20: l.over_20,
                late_recalls: l.late_recalls,
                peak_in_window: l.peak,
                capacity_in_window: l.capacity,
                flags: kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
            }
        })
        .collect();
    labs.sort_by(|a, b| a.lab.cmp(&b.lab));
    let mut counts: Vec<(FindingKind, u64)> = Vec::new();
    for f in &findings {
        match counts.last_mut() {
            Some((k, n)) if *k == f.kind => *n += 1,
            _ => counts.push((f.kind, 1)),
        }
    }
    Audit {
        round: round.name.clone(),
        strata: positivity.by,
        shared_strata: positivity.shared_strata,
        alpha: options.alpha,
        recall_hours: options.recall_hours,
        window_minutes: options.capacity.as_ref().map(|_| options.window_minutes),
        labs,
        findings,
        counts,
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn local(t: Millis, zone: time::Offset) -> String {
    time::format_local(t, zone)
}
