//! The pool design advisor (issue 19): for each zone, which pooling scheme to use.
//!
//! Each zone of the plan is tried, one at a time, with
//!
//! - individual testing (single tubes);
//! - two stages (Dorfman): pools of each validated size (5, 10, 20), a positive pool's
//!   people swabbed again into single tubes;
//! - three stages whose sizes are validated and nest (10 → 5 → 1, 20 → 5 → 1,
//!   20 → 10 → 1): a positive pool's people are swabbed again into pools of the second
//!   size, and a positive second pool's people into single tubes;
//! - and the zone's own scheme when it is none of these (households, a pool of 8).
//!
//! For each scheme, under the plan's [`Assay`] (see [`super::assay`] for the formulas):
//! expected tests per person and per round, expected stages per person, hours to a
//! final result, sensitivity and specificity, expected missed positives (and false
//! positives) per million people, and what the round becomes with it: its tubes, the
//! 24 h capacity verdict (the same whole-run arithmetic as [`super::capacity`]) and the
//! reagent rounds held ([`super::reagent`]). The round is the one the advice leads
//! to: the other zones on their recommended schemes (their own where none is), so
//! that a wasteful scheme in one zone does not shut another zone out of the deadline;
//! [`Together`] is that round, against the plan's.
//!
//! **Hours to a final result.** A stage takes one extraction run and one PCR run in
//! the lab (the slowest such pair among the plan's labs, so no tube waits longer);
//! between stages the plan's `recall_hours` pass (the result reported, the people
//! recalled and swabbed, the new tubes carried to the lab). A person whose result comes
//! at stage `s` waits `s × lab + (s − 1) × recall`, so the expected wait is
//! `lab × E + recall × (E − 1)` with `E` the expected stages per person, and the longest
//! `S × lab + (S − 1) × recall` for an `S`-stage scheme. Queueing is not in these
//! figures: whether the labs get through the round's tubes at all is the capacity
//! verdict.
//!
//! **The recommendation.** Of the schemes whose sensitivity is at least the plan's
//! floor (`advisor.sensitivity_floor`, default 0.90) and with which the round passes
//! the 24 h capacity verdict, the one with the fewest expected tests per person (fewer
//! stages, then higher sensitivity, on a tie). Each scheme says why it was or was not
//! chosen. The advisor weighs tests, sensitivity and the deadline only: a zone the
//! rules keep on single tubes (sealed zones, quarantine sites) stays so whatever the
//! arithmetic says, and routine groups are not advised.
//!
//! One job: the comparison and the recommendation it leads to (the formulas live in
//! [`super::assay`], the rendering in `text` and `html`); the file is over 600 lines by
//! its result types and its tests.

use serde::Serialize;

use super::assay::Assay;
use super::capacity::{self, Lab};
use super::config::{Plan, VALIDATED_POOL_SIZES};
use super::demand::{Demand, Group, GroupDemand, Tubing};
use super::numbers::{f, floor_u64, thousands};
use super::reagent;

/// Where a scheme stands against the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// The fewest tests of the schemes that keep the floor and the deadline.
    Recommended,
    /// Finds too few of the infected.
    UnderFloor,
    /// The round would not finish within the deadline.
    FailsDeadline,
    /// Keeps the floor and the deadline, with more tests than the recommended scheme.
    MoreTests,
}

impl Standing {
    /// A short word for the tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Recommended => "recommended",
            Standing::UnderFloor => "under the floor",
            Standing::FailsDeadline => "round too late",
            Standing::MoreTests => "more tests",
        }
    }
}

/// One scheme for one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeOption {
    /// `single`, `10:1`, `20→5→1`, …
    pub scheme: String,
    /// The scheme as the plan file would state it.
    pub tubing: Tubing,
    /// Whether the plan samples the zone this way now.
    pub now: bool,
    /// People per tube at each stage, the first first.
    pub stage_sizes: Vec<f64>,
    /// Each stage's sensitivity under the assay.
    pub stage_sensitivity: Vec<f64>,
    /// Expected tubes tested per person.
    pub tests_per_person: f64,
    /// Expected tubes the zone needs in a round.
    pub tests: f64,
    /// Expected stages a person takes part in.
    pub stages_per_person: f64,
    /// Expected clock hours from swab to final result (no queue).
    pub hours_to_result: Option<f64>,
    /// Hours for a person who goes through every stage.
    pub hours_to_last_result: Option<f64>,
    /// Share of infected people found.
    pub sensitivity: f64,
    /// Share of uninfected people cleared.
    pub specificity: f64,
    /// Infected people missed per million people tested.
    pub missed_per_million: f64,
    /// Infected people of the zone missed in a round.
    pub missed: f64,
    /// Uninfected people called positive per million people tested.
    pub false_positives_per_million: f64,
    /// The round's tubes with the zone on this scheme and the other zones on their
    /// recommended schemes (their own, without one).
    pub round_tubes: u64,
    /// Whether the labs finish that round within the deadline.
    pub capacity_pass: bool,
    /// Clock hours the labs need for that round.
    pub round_hours_needed: Option<f64>,
    /// Tubes the labs finish within the deadline minus the round's.
    pub margin_tubes: i64,
    /// Rounds of reagent on hand at that round's tests.
    pub rounds_physical: f64,
    /// Rounds on hand and under confirmed contracts.
    pub rounds_total: f64,
    /// Whether the reserve rule is met at that round's tests.
    pub reserve_pass: bool,
    /// Where it stands.
    pub standing: Standing,
    /// Why, in a sentence.
    pub why: String,
}

/// The advice for one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneAdvice {
    /// The zone.
    pub zone: String,
    /// Its people.
    pub people: u64,
    /// Its expected prevalence.
    pub prevalence: f64,
    /// Its scheme in the plan.
    pub now: String,
    /// The recommended scheme, if any keeps the floor and the deadline.
    pub recommended: Option<String>,
    /// Why, in a sentence.
    pub why: String,
    /// Tests a round the recommendation saves against the plan's scheme (negative:
    /// costs).
    pub tests_saved: Option<f64>,
    /// Every scheme tried.
    pub options: Vec<SchemeOption>,
}

/// The round with every zone on its recommended scheme (or its own, without one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Together {
    /// Tubes of the round.
    pub round_tubes: u64,
    /// Against the plan's round.
    pub planned_tubes: u64,
    /// Whether the labs finish it within the deadline.
    pub capacity_pass: bool,
    /// Clock hours they need.
    pub hours_needed: Option<f64>,
    /// Rounds of reagent on hand.
    pub rounds_physical: f64,
    /// Rounds on hand and confirmed.
    pub rounds_total: f64,
    /// Whether the reserve rule is met.
    pub reserve_pass: bool,
}

/// One tube size's accuracy as the advisor used it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TubeAccuracy {
    /// People per tube (1: a single tube).
    pub tube_size: f64,
    /// Sensitivity.
    pub sensitivity: f64,
    /// Specificity.
    pub specificity: f64,
    /// Where the sensitivity comes from.
    pub source: String,
}

/// The advisor's answer for the whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// Whether the test is taken as perfect (the plan states no `[assay]`): then every
    /// scheme finds every infected person and only tests and hours tell them apart.
    pub perfect_test: bool,
    /// The assay used.
    pub assay: Assay,
    /// Each tube size's sensitivity and specificity, with its source.
    pub accuracy: Vec<TubeAccuracy>,
    /// The sensitivity floor.
    pub sensitivity_floor: f64,
    /// Hours between stages.
    pub recall_hours: f64,
    /// Hours one stage takes in the lab (an extraction and a PCR run).
    pub stage_hours: Option<f64>,
    /// The round deadline.
    pub deadline_hours: f64,
    /// Tubes the labs finish within it.
    pub within_deadline: u64,
    /// Each zone.
    pub zones: Vec<ZoneAdvice>,
    /// Every zone on its recommendation at once.
    pub together: Together,
}

/// The schemes tried for every zone: single tubes, two stages at each validated size,
/// three stages whose validated sizes nest.
///
/// ```
/// use pooltrack::planner::advisor::candidates;
/// let labels: Vec<String> = candidates().iter().map(|t| t.label()).collect();
/// assert_eq!(labels, ["single", "5:1", "10:1", "20:1", "10→5→1", "20→5→1", "20→10→1"]);
/// ```
pub fn candidates() -> Vec<Tubing> {
    let mut out = vec![Tubing::Single];
    out.extend(
        VALIDATED_POOL_SIZES
            .iter()
            .map(|&pool_size| Tubing::Pooled { pool_size }),
    );
    for &first in &VALIDATED_POOL_SIZES {
        for &second in &VALIDATED_POOL_SIZES {
            if second < first && first % second == 0 {
                out.push(Tubing::ThreeStage {
                    pool_size: first,
                    retest_pool_size: second,
                });
            }
        }
    }
    out
}

/// Hours one stage takes in the lab: the slowest extraction-plus-PCR run pair among
/// the labs that finish anything in a day (`None` without such a lab).
pub fn stage_hours(labs: &[Lab]) -> Option<f64> {
    labs.iter()
        .filter(|l| l.tubes_within(24.0) > 0.0)
        .map(|l| l.stages.iter().map(|s| s.minutes_per_run).sum::<f64>() / 60.0)
        .reduce(f64::max)
}

/// The round of `zones` under `assay`: its tubes, and the capacity and reserve verdicts.
struct RoundCheck {
    tubes: u64,
    capacity_pass: bool,
    hours_needed: Option<f64>,
    margin_tubes: i64,
    rounds_physical: f64,
    rounds_total: f64,
    reserve_pass: bool,
}

fn check_round(plan: &Plan, zones: &[Group], assay: &Assay, within: u64) -> RoundCheck {
    let d = Demand::under(zones, assay);
    let r = reagent::assess(&plan.stock, &d);
    RoundCheck {
        tubes: d.tubes,
        capacity_pass: within >= d.tubes,
        hours_needed: capacity::hours_to_reach(
            |t| capacity::city_tubes_within(&plan.labs, t),
            f(d.tubes),
        ),
        margin_tubes: i64::try_from(i128::from(within) - i128::from(d.tubes)).unwrap_or(
            if within >= d.tubes {
                i64::MAX
            } else {
                i64::MIN
            },
        ),
        rounds_physical: r.rounds_physical,
        rounds_total: r.rounds_total,
        reserve_pass: r.pass,
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// Advises every zone of `plan` under `assay` (the plan's, or one with measured pool
/// sensitivities: see [`Assay::with_measured`]).
///
/// ```
/// use pooltrack::planner::{advisor, Plan};
/// let plan = Plan::parse(r#"
///     [[zone]]
///     name = "city"
///     people = 50_000
///     mode = "pooled"
///     pool_size = 10
///     prevalence = 0.05
///
///     [[lab]]
///     name = "lab"
///     extraction = { instruments = 10, samples_per_run = 94, minutes_per_run = 40 }
///     pcr = { instruments = 20, samples_per_run = 94, minutes_per_run = 90 }
///
///     [reagents]
///     physical_tests = 1_000_000
/// "#).unwrap();
/// let advice = advisor::advise(&plan, &plan.assay);
/// let z = &advice.zones[0];
/// // A perfect test at 5 %: the best two-stage pool is 5, 1/5 + 1 − 0.95⁵ = 0.4262 tests
/// // a person; three stages 20 → 5 → 1 need 1/20 + (1 − 0.95²⁰)/5 + (1 − 0.95⁵) = 0.4045.
/// let five = z.options.iter().find(|o| o.scheme == "5:1").unwrap();
/// assert!((five.tests_per_person - 0.4262).abs() < 5e-5);
/// assert_eq!(z.recommended.as_deref(), Some("20→5→1"));
/// ```
pub fn advise(plan: &Plan, assay: &Assay) -> Advice {
    let within = floor_u64(capacity::city_tubes_within(&plan.labs, plan.deadline_hours));
    let lab = stage_hours(&plan.labs);
    let rules = &plan.advisor;
    // Each zone is weighed with the others on their recommended schemes, found by
    // going over the zones until no recommendation moves. A zone's pick only moves to
    // fewer tests once it has left the plan's scheme (the least tests that keep the
    // floor; fewer tests elsewhere only widen what fits), so this settles within a
    // pass or two per zone; the bound is a guard.
    let mut picks: Vec<Tubing> = plan.zones.iter().map(|z| z.tubing).collect();
    let mut zones: Vec<ZoneAdvice> = Vec::with_capacity(plan.zones.len());
    for _ in 0..2 * plan.zones.len() + 2 {
        zones.clear();
        let mut moved = false;
        for (i, zone) in plan.zones.iter().enumerate() {
            let a = advise_zone(plan, assay, i, &picks, within, lab);
            let pick = a
                .options
                .iter()
                .find(|o| o.standing == Standing::Recommended)
                .map_or(zone.tubing, |o| o.tubing);
            if picks[i] != pick {
                picks[i] = pick;
                moved = true;
            }
            zones.push(a);
        }
        if !moved {
            break;
        }
    }
    let chosen: Vec<Group> = plan
        .zones
        .iter()
        .zip(&picks)
        .map(|(z, &tubing)| Group {
            tubing,
            ..z.clone()
        })
        .collect();
    let planned = Demand::under(&plan.zones, &plan.assay).tubes;
    let r = check_round(plan, &chosen, assay, within);
    let mut sizes: Vec<f64> = vec![1.0];
    for z in &zones {
        for o in &z.options {
            sizes.extend(o.stage_sizes.iter().copied());
        }
    }
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    Advice {
        perfect_test: assay.is_perfect(),
        accuracy: sizes
            .iter()
            .map(|&k| TubeAccuracy {
                tube_size: k,
                sensitivity: assay.sensitivity_at(k),
                specificity: assay.specificity_at(k),
                source: assay.sensitivity_source(k),
            })
            .collect(),
        assay: assay.clone(),
        sensitivity_floor: rules.sensitivity_floor,
        recall_hours: rules.recall_hours,
        stage_hours: lab,
        deadline_hours: plan.deadline_hours,
        within_deadline: within,
        zones,
        together: Together {
            round_tubes: r.tubes,
            planned_tubes: planned,
            capacity_pass: r.capacity_pass,
            hours_needed: r.hours_needed,
            rounds_physical: r.rounds_physical,
            rounds_total: r.rounds_total,
            reserve_pass: r.reserve_pass,
        },
    }
}

/// The options for zone `index`, the other zones sampled as `picks` says.
fn advise_zone(
    plan: &Plan,
    assay: &Assay,
    index: usize,
    picks: &[Tubing],
    within: u64,
    lab: Option<f64>,
) -> ZoneAdvice {
    let rules = &plan.advisor;
    let zone = &plan.zones[index];
    let floor = rules.sensitivity_floor;
    let p = zone.prevalence;
    let mut schemes = candidates();
    if !schemes.contains(&zone.tubing) {
        schemes.push(zone.tubing);
    }
    let mut options: Vec<SchemeOption> = schemes
        .into_iter()
        .map(|tubing| {
            let sizes = tubing.stage_sizes();
            let c = assay.characteristics(p, &sizes);
            let group = Group {
                tubing,
                ..zone.clone()
            };
            let zones: Vec<Group> = plan
                .zones
                .iter()
                .zip(picks)
                .enumerate()
                .map(|(j, (z, &t))| {
                    if j == index {
                        group.clone()
                    } else {
                        Group {
                            tubing: t,
                            ..z.clone()
                        }
                    }
                })
                .collect();
            let r = check_round(plan, &zones, assay, within);
            let stages = f(sizes.len() as u64);
            let e = c.stages_per_person;
            let recall = rules.recall_hours;
            let (standing, why) = if c.sensitivity < floor - 1e-12 {
                (
                    Standing::UnderFloor,
                    format!(
                        "finds {} of the infected, under the floor of {}",
                        pct(c.sensitivity),
                        pct(floor)
                    ),
                )
            } else if !r.capacity_pass {
                (
                    Standing::FailsDeadline,
                    format!(
                        "with it the round has {} tubes; the labs finish {} within {} h",
                        thousands(r.tubes),
                        thousands(within),
                        plan.deadline_hours
                    ),
                )
            } else {
                (Standing::MoreTests, String::new())
            };
            SchemeOption {
                scheme: tubing.label(),
                tubing,
                now: tubing == zone.tubing,
                stage_sensitivity: sizes.iter().map(|&k| assay.sensitivity_at(k)).collect(),
                stage_sizes: sizes,
                tests_per_person: c.tests_per_person,
                tests: GroupDemand::under(&group, assay).tests(),
                stages_per_person: e,
                hours_to_result: lab.map(|l| l * e + recall * (e - 1.0)),
                hours_to_last_result: lab.map(|l| l * stages + recall * (stages - 1.0)),
                sensitivity: c.sensitivity,
                specificity: c.specificity,
                missed_per_million: 1e6 * p * (1.0 - c.sensitivity),
                missed: f(zone.people) * p * (1.0 - c.sensitivity),
                false_positives_per_million: 1e6 * (1.0 - p) * (1.0 - c.specificity),
                round_tubes: r.tubes,
                capacity_pass: r.capacity_pass,
                round_hours_needed: r.hours_needed,
                margin_tubes: r.margin_tubes,
                rounds_physical: r.rounds_physical,
                rounds_total: r.rounds_total,
                reserve_pass: r.reserve_pass,
                standing,
                why,
            }
        })
        .collect();
    let best = options
        .iter()
        .enumerate()
        .filter(|(_, o)| o.standing == Standing::MoreTests)
        .min_by(|(_, a), (_, b)| {
            a.tests_per_person
                .total_cmp(&b.tests_per_person)
                .then(a.stage_sizes.len().cmp(&b.stage_sizes.len()))
                .then(b.sensitivity.total_cmp(&a.sensitivity))
        })
        .map(|(i, _)| i);
    let now = options.iter().find(|o| o.now).cloned();
    let mut recommended = None;
    let mut tests_saved = None;
    let why = if let Some(b) = best {
        let (label, t, se, tests) = {
            let o = &options[b];
            (o.scheme.clone(), o.tests_per_person, o.sensitivity, o.tests)
        };
        for (i, o) in options.iter_mut().enumerate() {
            if i == b {
                o.standing = Standing::Recommended;
                o.why = format!(
                    "the fewest tests ({t:.4} a person) of the schemes that find at least {} of the infected and let the round finish within {} h",
                    pct(floor),
                    plan.deadline_hours
                );
            } else if o.standing == Standing::MoreTests {
                o.why = format!(
                    "{:.4} tests a person, {:.4} more than {label}",
                    o.tests_per_person,
                    o.tests_per_person - t
                );
            }
        }
        recommended = Some(label.clone());
        match &now {
            Some(n) if n.scheme == label => format!(
                "keep {label}: the fewest tests ({t:.4} a person) that find at least {} of the infected (it finds {}) within the {} h deadline",
                pct(floor),
                pct(se),
                plan.deadline_hours
            ),
            Some(n) => {
                tests_saved = Some(n.tests - tests);
                let change = if n.tests >= tests {
                    format!(
                        "{} fewer tests a round",
                        thousands(floor_u64(n.tests - tests))
                    )
                } else {
                    format!(
                        "{} more tests a round, because {} {}",
                        thousands(floor_u64(tests - n.tests)),
                        n.scheme,
                        if n.standing == Standing::UnderFloor {
                            "misses too many of the infected"
                        } else {
                            "makes the round too late"
                        }
                    )
                };
                format!(
                    "{label} instead of {}: {t:.4} tests a person instead of {:.4} ({change}); it finds {} of the infected ({} now)",
                    n.scheme,
                    n.tests_per_person,
                    pct(se),
                    pct(n.sensitivity)
                )
            }
            None => format!("{label}: the fewest tests ({t:.4} a person)"),
        }
    } else {
        let above: Vec<&SchemeOption> = options
            .iter()
            .filter(|o| o.standing != Standing::UnderFloor)
            .collect();
        if let Some(o) = above
            .iter()
            .min_by(|a, b| a.tests_per_person.total_cmp(&b.tests_per_person))
        {
            format!(
                "no scheme both keeps the floor of {} and lets the round finish within {} h; of those at the floor, {} needs the fewest tests, and with it the round has {} tubes against the {} the labs finish",
                pct(floor),
                plan.deadline_hours,
                o.scheme,
                thousands(o.round_tubes),
                thousands(within)
            )
        } else {
            let most = options
                .iter()
                .max_by(|a, b| a.sensitivity.total_cmp(&b.sensitivity));
            format!(
                "no scheme finds {} of the infected: the most sensitive, {}, finds {}",
                pct(floor),
                most.map_or("-", |o| o.scheme.as_str()),
                pct(most.map_or(0.0, |o| o.sensitivity))
            )
        }
    };
    let why = match (zone.tubing, &recommended) {
        (Tubing::Single | Tubing::Household { .. }, Some(r)) if *r != zone.tubing.label() => {
            format!(
                "{why} — where the rules allow it: sealed zones and quarantine sites are sampled single or by household"
            )
        }
        _ => why,
    };
    ZoneAdvice {
        zone: zone.name.clone(),
        people: zone.people,
        prevalence: p,
        now: zone.tubing.label(),
        recommended,
        why,
        tests_saved,
        options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::assay::best_pool_size;

    fn plan(zones: &str, extra: &str) -> Plan {
        Plan::parse(&format!(
            "{zones}\n[[lab]]\nname = \"L\"\n\
             extraction = {{ instruments = 100, samples_per_run = 94, minutes_per_run = 40 }}\n\
             pcr = {{ instruments = 200, samples_per_run = 94, minutes_per_run = 90 }}\n\
             [reagents]\nphysical_tests = 5_000_000\n{extra}"
        ))
        .expect("valid plan")
    }

    fn zone(name: &str, people: u64, prevalence: f64) -> String {
        format!(
            "[[zone]]\nname = \"{name}\"\npeople = {people}\nmode = \"pooled\"\npool_size = 10\nprevalence = {prevalence}\n"
        )
    }

    fn option<'a>(z: &'a ZoneAdvice, scheme: &str) -> &'a SchemeOption {
        z.options
            .iter()
            .find(|o| o.scheme == scheme)
            .unwrap_or_else(|| panic!("{scheme} in {:?}", z.options))
    }

    #[test]
    fn a_perfect_test_picks_the_validated_size_nearest_the_optimum() {
        // Perfect test, plenty of labs: two stages by 1/k + 1 − (1 − p)^k, three by
        // 1/k₁ + (1 − q^k₁)/k₂ + (1 − q^k₂). Written out here, not taken from the code.
        let two = |p: f64, k: f64| 1.0 / k + 1.0 - (1.0 - p).powf(k);
        let three = |p: f64, a: f64, b: f64| {
            let q = 1.0 - p;
            1.0 / a + (1.0 - q.powf(a)) / b + (1.0 - q.powf(b))
        };
        for p in [0.0005, 0.003, 0.01, 0.03, 0.08, 0.2, 0.4] {
            let pl = plan(&zone("z", 100_000, p), "");
            let a = advise(&pl, &pl.assay);
            let z = &a.zones[0];
            let mut want = vec![("single".to_owned(), 1.0)];
            for k in [5.0, 10.0, 20.0] {
                want.push((format!("{k}:1"), two(p, k)));
            }
            for (x, y) in [(10.0, 5.0), (20.0, 5.0), (20.0, 10.0)] {
                want.push((format!("{x}→{y}→1"), three(p, x, y)));
            }
            for (label, t) in &want {
                let o = option(z, label);
                assert!((o.tests_per_person - t).abs() < 1e-12, "{p} {label}");
                assert_eq!(o.sensitivity, 1.0);
            }
            let best = want
                .iter()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("some");
            assert_eq!(z.recommended.as_deref(), Some(best.0.as_str()), "p = {p}");
        }
        // The validated choice is never better than the free optimum.
        let pl = plan(&zone("z", 100_000, 0.01), "");
        let a = advise(&pl, &pl.assay);
        let rec = option(
            &a.zones[0],
            a.zones[0].recommended.as_deref().unwrap_or("-"),
        );
        let (_, free) = best_pool_size(0.01, 1.0, 1.0, 100);
        assert!(rec.stage_sizes.len() == 3 || rec.tests_per_person >= free);
    }

    #[test]
    fn the_floor_rules_out_three_stages() {
        // Se: single 0.98, pools 0.96 (5), 0.95 (10), 0.93 (20); Sp 0.99 everywhere.
        // At p = 1 %: 10:1 → 0.1 + 0.95 × (1 − 0.99¹⁰) + 0.01 × 0.99¹⁰ = 0.199 881,
        // sensitivity 0.95 × 0.98 = 0.931; 20→5→1 uses 0.1306 but finds
        // 0.93 × 0.96 × 0.98 = 0.874 944 of the infected, under 0.90.
        let assay = "[assay]\nsensitivity = 0.98\nspecificity = 0.99\n\
                     pool_sensitivity = { 5 = 0.96, 10 = 0.95, 20 = 0.93 }\n";
        let pl = plan(&zone("z", 100_000, 0.01), assay);
        let a = advise(&pl, &pl.assay);
        let z = &a.zones[0];
        assert_eq!(z.recommended.as_deref(), Some("10:1"));
        let ten = option(z, "10:1");
        assert!((ten.tests_per_person - 0.199_881).abs() < 1e-6);
        assert!((ten.sensitivity - 0.931).abs() < 1e-12);
        // 1,000,000 × 0.01 × (1 − 0.931) = 690 missed per million.
        assert!((ten.missed_per_million - 690.0).abs() < 1e-6);
        let three = option(z, "20→5→1");
        assert_eq!(three.standing, Standing::UnderFloor);
        assert!((three.sensitivity - 0.874_944).abs() < 1e-12);
        assert!((three.tests_per_person - 0.130_58).abs() < 1e-5);
        assert!(z.why.starts_with("keep 10:1"), "{}", z.why);
        // Lowered to 0.85, the three-stage scheme wins.
        let pl = plan(
            &zone("z", 100_000, 0.01),
            &format!("{assay}[advisor]\nsensitivity_floor = 0.85\n"),
        );
        let a = advise(&pl, &pl.assay);
        assert_eq!(a.zones[0].recommended.as_deref(), Some("20→5→1"));
        assert!(a.zones[0].tests_saved.is_some_and(|s| s > 0.0));
    }

    #[test]
    fn a_scheme_that_makes_the_round_late_is_not_recommended() {
        // 1,000,000 people; the labs finish 200 × 1,128 = 225,600 tubes in 24 h. Single
        // tubes need 1,000,000 and 5:1 200,000 + 200,000 × 5 × (1 − 0.995⁵) = 224,752.
        let pl = plan(&zone("z", 1_000_000, 0.005), "");
        let a = advise(&pl, &pl.assay);
        assert_eq!(a.within_deadline, 225_600);
        let z = &a.zones[0];
        assert_eq!(option(z, "single").standing, Standing::FailsDeadline);
        assert_eq!(option(z, "single").round_tubes, 1_000_000);
        let five = option(z, "5:1");
        assert!(five.capacity_pass);
        // The best at 0.5 % is three stages (20→5→1: 0.05 + 0.0954/5 + 0.0248 = 0.0939).
        assert_eq!(z.recommended.as_deref(), Some("20→5→1"));
        assert!(a.together.capacity_pass);
    }

    #[test]
    fn nothing_fits_and_the_advisor_says_so() {
        // Labs for 225,600 tubes; 10,000,000 people cannot be tested at any pooling.
        let pl = plan(&zone("z", 10_000_000, 0.01), "");
        let a = advise(&pl, &pl.assay);
        let z = &a.zones[0];
        assert_eq!(z.recommended, None);
        assert!(
            z.options
                .iter()
                .all(|o| o.standing == Standing::FailsDeadline)
        );
        assert!(
            z.why.starts_with("no scheme both keeps the floor"),
            "{}",
            z.why
        );
        assert!(!a.together.capacity_pass);
    }

    #[test]
    fn hours_count_stages_and_recalls() {
        // One stage: 40 + 90 min = 2 1/6 h; recall 4 h.
        let pl = plan(&zone("z", 10_000, 0.0), "");
        let a = advise(&pl, &pl.assay);
        let lab = 130.0 / 60.0;
        assert_eq!(a.stage_hours, Some(lab));
        let z = &a.zones[0];
        // At p = 0 nobody goes past the first stage.
        assert_eq!(option(z, "20→5→1").hours_to_result, Some(lab));
        assert_eq!(
            option(z, "20→5→1").hours_to_last_result,
            Some(3.0 * lab + 2.0 * 4.0)
        );
        assert_eq!(option(z, "single").hours_to_last_result, Some(lab));
    }

    #[test]
    fn a_household_zone_keeps_its_own_scheme_among_the_options() {
        let pl = plan(
            "[[zone]]\nname = \"h\"\npeople = 30_000\nmode = \"household\"\nhousehold_size = 3\nprevalence = 0.02\n",
            "",
        );
        let a = advise(&pl, &pl.assay);
        let z = &a.zones[0];
        assert_eq!(z.options.len(), 8);
        let own = option(z, "household 3.0");
        assert!(own.now);
        // 1/3 + 1 − 0.98³ = 0.392 259
        assert!((own.tests_per_person - (1.0 / 3.0 + 1.0 - 0.98f64.powi(3))).abs() < 1e-12);
    }
}
