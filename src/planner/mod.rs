//! The capacity and reagent planner (issue 4): can the city finish a round in 24 hours,
//! and for how many rounds does it hold reagent?
//!
//! A [`Plan`] (read from a TOML plan file by [`config`]) describes the population by
//! zone, the labs, the sampling norms, the stock and the schedule. [`assess`] answers
//! the campaign office's questions from it, each in its own module:
//!
//! 1. [`demand`]: tubes in a full round — pooled, household and single tubes, and the
//!    expected retests from positive pools (Dorfman).
//! 2. [`capacity`]: what the labs finish within the deadline at their staffed hours,
//!    stage by stage; the bottleneck; hours needed; and if the round does not fit,
//!    the instruments (or the pool size) that would make it.
//! 3. [`sampling`]: sites, stations and collectors by the norms.
//! 4. [`reagent`]: rounds of reagent held, physical and confirmed-contracted, against
//!    the 10-round / 6-physical rule, and the shortfall in tests and kits.
//! 5. [`projection`]: stock day by day under the schedule, the days the reserve lines
//!    are crossed, and what to order by when.
//! 6. [`advisor`]: for each zone, the pooling scheme (single tubes, two or three
//!    stages of validated sizes) with the fewest tests that keeps the plan's
//!    sensitivity floor and the 24 h verdict, under the test's sensitivity and
//!    specificity ([`assay`]).
//! 7. [`measure`]: the same questions with what a round in the store measured in
//!    place of the plan's assumptions ([`assess_measured`]).
//!
//! Tubes are counted under the plan's [`assay`]: a plan without an `[assay]` table has
//! a perfect test, as the planner always assumed, so its figures do not move.
//!
//! [`text`] renders a [`Report`] for a terminal, [`html`] as a self-contained page with
//! SVG charts; the report serialises to JSON as is.
//!
//! ```
//! use pooltrack::planner::{assess, Plan};
//! let plan = Plan::parse(r#"
//!     [[zone]]
//!     name = "city"
//!     people = 25_000_000
//!     mode = "pooled"
//!     pool_size = 10
//!     prevalence = 0.001
//!
//!     [[lab]]
//!     name = "all labs"
//!     extraction = { instruments = 1_100, samples_per_run = 94, minutes_per_run = 40 }
//!     pcr = { instruments = 2_500, samples_per_run = 94, minutes_per_run = 90 }
//!
//!     [reagents]
//!     physical_tests = 20_000_000
//!     contract = [{ name = "A", tests = 8_000_000, confirmed = true }]
//! "#).unwrap();
//! let report = assess(&plan);
//! assert_eq!(report.planned.demand.tubes, 2_748_878);
//! assert!(report.planned.capacity.pass); // 2,500 × 1,128 = 2,820,000 PCR tubes in 18 h
//! assert!(report.planned.reagents.pass); // 7.28 rounds physical, 10.19 in all
//! ```

pub mod advisor;
pub mod assay;
pub mod calendar;
pub mod capacity;
pub mod config;
pub mod demand;
pub mod html;
pub mod measure;
pub mod numbers;
pub mod projection;
pub mod reagent;
pub mod sampling;
pub mod text;

use serde::Serialize;

pub use config::{Plan, PlanError};

use advisor::Advice;
use assay::{Assay, PoolSensitivity};
use calendar::Date;
use capacity::{CapacityReport, Lab};
use demand::{Demand, Group, Tubing};
use measure::Measured;
use projection::Projection;
use reagent::Reserve;
use sampling::SamplingReport;

/// The plan's headline figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The plan's name.
    pub name: String,
    /// People in all zones.
    pub people: u64,
    /// Zones.
    pub zones: usize,
    /// Labs.
    pub labs: usize,
    /// Round deadline, clock hours.
    pub deadline_hours: f64,
    /// Days projected.
    pub horizon_days: u32,
    /// Date of day 1.
    pub start: Option<Date>,
}

/// A pool size that would make a failing round fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolFix {
    /// The smallest validated pool size (for every pooled zone) that fits, if any.
    pub pool_size: Option<u8>,
    /// The round's tubes at that size.
    pub tubes: Option<u64>,
    /// Hours the round needs at that size.
    pub hours_needed: Option<f64>,
}

/// The answers for one set of assumptions (the plan's, or a measured round's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Tubes of a full round.
    pub demand: Demand,
    /// Lab capacity against it.
    pub capacity: CapacityReport,
    /// When capacity fails: the pool size that would fit.
    pub pool_fix: Option<PoolFix>,
    /// The reagent reserve.
    pub reagents: Reserve,
    /// Stock day by day.
    pub projection: Projection,
}

/// What a measured round changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredAssessment {
    /// What the round saw.
    pub measured: Measured,
    /// The answers with the measured figures. Its capacity has no instrument fix: a
    /// measured lab has no instruments to add, only throughput to find.
    pub assessment: Assessment,
    /// Round tubes ÷ what the measured labs finish within the deadline: how many times
    /// their measured throughput a full round needs (`None` when they finish nothing).
    pub throughput_needed: Option<f64>,
    /// Pool sensitivities measured for the round (for example from its Ct values), in
    /// place of the plan's for their pool sizes.
    pub pool_sensitivity: Vec<PoolSensitivity>,
    /// The advisor again with those sensitivities (`None` when none were measured).
    pub advice: Option<Advice>,
}

/// Everything the planner answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Headline figures.
    pub plan: Summary,
    /// Accepted but worth a second look.
    pub warnings: Vec<String>,
    /// Sampling needs.
    pub sampling: SamplingReport,
    /// Under the plan's assumptions.
    pub planned: Assessment,
    /// The pool design advisor, under the plan's assay.
    pub advice: Advice,
    /// Under a measured round's, with `--measure-round`.
    pub measured: Option<MeasuredAssessment>,
    /// Whether every verdict passes (capacity, sampling, reserve; measured capacity).
    pub pass: bool,
}

fn assessment(plan: &Plan, zones: &[Group], labs: &[Lab], try_pools: bool) -> Assessment {
    let demand = Demand::under(zones, &plan.assay);
    let capacity = capacity::assess(
        labs,
        demand.tubes,
        demand.first_stage_tubes,
        plan.deadline_hours,
    );
    let pool_fix = (try_pools && !capacity.pass).then(|| pool_fix(plan, zones, labs));
    let reagents = reagent::assess(&plan.stock, &demand);
    let projection = projection::project(&plan.schedule, &demand, &plan.stock, &plan.assay);
    Assessment {
        demand,
        capacity,
        pool_fix,
        reagents,
        projection,
    }
}

/// The smallest validated pool size that, used in every pooled zone, fits the round.
fn pool_fix(plan: &Plan, zones: &[Group], labs: &[Lab]) -> PoolFix {
    let none = PoolFix {
        pool_size: None,
        tubes: None,
        hours_needed: None,
    };
    if !zones
        .iter()
        .any(|z| matches!(z.tubing, Tubing::Pooled { .. }))
    {
        return none;
    }
    for size in config::VALIDATED_POOL_SIZES {
        let repooled: Vec<Group> = zones
            .iter()
            .map(|z| match z.tubing {
                Tubing::Pooled { .. } => Group {
                    tubing: Tubing::Pooled { pool_size: size },
                    ..z.clone()
                },
                _ => z.clone(),
            })
            .collect();
        let d = Demand::under(&repooled, &plan.assay);
        // The verdict alone (not capacity::assess, which would search for instruments).
        let within = numbers::floor_u64(capacity::city_tubes_within(labs, plan.deadline_hours));
        if within >= d.tubes {
            return PoolFix {
                pool_size: Some(size),
                tubes: Some(d.tubes),
                hours_needed: capacity::hours_to_reach(
                    |t| capacity::city_tubes_within(labs, t),
                    numbers::f(d.tubes),
                ),
            };
        }
    }
    none
}

fn summary(plan: &Plan) -> Summary {
    Summary {
        name: plan.name.clone(),
        people: plan.people(),
        zones: plan.zones.len(),
        labs: plan.labs.len(),
        deadline_hours: plan.deadline_hours,
        horizon_days: plan.schedule.horizon_days,
        start: plan.schedule.start,
    }
}

/// Answers the plan's questions under its own assumptions.
pub fn assess(plan: &Plan) -> Report {
    let planned = assessment(plan, &plan.zones, &plan.labs, true);
    let sampling = sampling::assess(plan.people(), &plan.sampling);
    let pass = planned.capacity.pass && planned.reagents.pass && sampling.pass;
    Report {
        plan: summary(plan),
        warnings: plan.warnings.clone(),
        sampling,
        planned,
        advice: advisor::advise(plan, &plan.assay),
        measured: None,
        pass,
    }
}

/// Answers the plan's questions, and again with what a measured round saw: its pool
/// fill, pooled share and pool positivity for the plan's population, and its labs'
/// measured rates for the plan's labs.
///
/// `pool_sensitivity` holds pool sensitivities measured for the round (from its Ct
/// values: the share of single-tube positives a `k`-pool's log₂ k shift would keep
/// under the cut-off); they replace the plan's `[assay]` figures for their pool sizes
/// and the advisor is run again with them. Pass none to leave the plan's assumption.
pub fn assess_measured(
    plan: &Plan,
    measured: Measured,
    pool_sensitivity: &[PoolSensitivity],
) -> Report {
    let mut report = assess(plan);
    let zones = measure::measured_demand_groups(&measured, plan.people());
    let labs = measure::measured_labs(&measured);
    let mut assessment = assessment(plan, &zones, &labs, false);
    assessment.capacity.instruments_to_pass = None;
    let c = &assessment.capacity;
    let throughput_needed =
        (c.within_deadline > 0).then(|| numbers::f(c.demand) / numbers::f(c.within_deadline));
    report.pass = report.pass && assessment.capacity.pass;
    let advice = (!pool_sensitivity.is_empty()).then(|| {
        let assay: Assay = plan.assay.with_measured(pool_sensitivity);
        advisor::advise(plan, &assay)
    });
    report.measured = Some(MeasuredAssessment {
        measured,
        assessment,
        throughput_needed,
        pool_sensitivity: pool_sensitivity.to_vec(),
        advice,
    });
    report
}

/// The staffed hours of the plan's lab called `name`, else the plan's default.
pub fn staffed_hours_of(plan: &Plan, name: &str) -> f64 {
    plan.labs
        .iter()
        .find(|l| l.name == name)
        .map_or(plan.staffed_hours, |l| l.staffed_hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILING: &str = r#"
[[zone]]
name = "city"
people = 25_000_000
mode = "pooled"
pool_size = 10
prevalence = 0.001

[[lab]]
name = "all labs"
extraction = { instruments = 1_000, samples_per_run = 94, minutes_per_run = 40 }
pcr = { instruments = 2_000, samples_per_run = 94, minutes_per_run = 90 }

[reagents]
physical_tests = 15_000_000
contract = [{ tests = 5_000_000, confirmed = true }, { tests = 10_000_000, confirmed = false }]
"#;

    #[test]
    fn a_failing_city_is_told_what_would_pass() {
        let plan = Plan::parse(FAILING).expect("valid");
        let r = assess(&plan);
        assert!(!r.pass);
        // 2,748,878 tubes against 2,256,000 (see capacity.rs): 437 PCR and 84 extraction
        // instruments more, or 20:1 pools: 1,745,279 tubes (see demand.rs), which the
        // 2,256,000 fit.
        let fix = r.planned.pool_fix.expect("a pool fix");
        assert_eq!(fix.pool_size, Some(20));
        assert_eq!(fix.tubes, Some(1_745_279));
        // 1,745,279 tubes: ⌈1,745,279 / 188,000⌉ = 10 PCR runs = 15 working h = 20 clock h.
        let h = fix.hours_needed.expect("fits");
        assert!((h - 20.0).abs() < 1e-6, "{h}");
        // Reagent: 1,493,268 physical and 5,995,512 more (see reagent.rs).
        assert_eq!(r.planned.reagents.shortfall_tests, 7_488_780);
    }

    #[test]
    fn a_passing_city_gets_no_fix() {
        let plan = Plan::parse(
            &FAILING
                .replace("instruments = 1_000", "instruments = 1_100")
                .replace("instruments = 2_000", "instruments = 2_500"),
        )
        .expect("valid");
        let r = assess(&plan);
        assert!(r.planned.capacity.pass);
        assert!(r.planned.capacity.instruments_to_pass.is_none());
        assert!(r.planned.pool_fix.is_none());
    }

    fn measured_round() -> Measured {
        Measured {
            round: "R".into(),
            persons: 1_000,
            tubes: 110,
            pool_tubes: 100,
            single_tubes: 10,
            first_stage_single_tubes: 10,
            retest_tubes: 0,
            pool_members: 990,
            mean_pool_fill: 9.9,
            pool_capacities: vec![(10, 100)],
            pooled_share: 0.99,
            pools_with_result: 100,
            positive_pools: 0,
            inconclusive_pools: 0,
            pool_positivity: 0.0,
            recall_positivity: 0.0,
            implied_prevalence: 0.0,
            retests_per_recall: None,
            labs: vec![],
        }
    }

    #[test]
    fn measured_pool_sensitivities_replace_the_plans_in_the_advice() {
        let plan = Plan::parse(&format!(
            "{FAILING}[assay]\nsensitivity = 0.98\npool_sensitivity = {{ 10 = 0.95 }}\n"
        ))
        .expect("valid");
        // None measured: the advisor runs once, on the plan's figures.
        let r = assess_measured(&plan, measured_round(), &[]);
        let m = r.measured.as_ref().expect("measured");
        assert!(m.advice.is_none());
        // 10-pools measured at 0.80: 10:1 two-stage finds 0.80 × 0.98 = 78.4 %.
        let measured = [PoolSensitivity {
            pool_size: 10,
            sensitivity: 0.8,
            source: "round R: Ct of 120 single-tube positives".into(),
        }];
        let r = assess_measured(&plan, measured_round(), &measured);
        let m = r.measured.as_ref().expect("measured");
        assert_eq!(m.pool_sensitivity, measured.to_vec());
        let advice = m.advice.as_ref().expect("advice with the measured figures");
        let ten = advice.zones[0]
            .options
            .iter()
            .find(|o| o.scheme == "10:1")
            .expect("10:1");
        assert!((ten.sensitivity - 0.8 * 0.98).abs() < 1e-12);
        assert_eq!(ten.standing, advisor::Standing::UnderFloor);
        let ten_size = advice
            .accuracy
            .iter()
            .find(|a| a.tube_size == 10.0)
            .expect("10");
        assert_eq!(ten_size.source, "round R: Ct of 120 single-tube positives");
        // The plan's own advice keeps the plan's 0.95.
        let plan_ten = r.advice.zones[0]
            .options
            .iter()
            .find(|o| o.scheme == "10:1")
            .expect("10:1");
        assert!((plan_ten.sensitivity - 0.95 * 0.98).abs() < 1e-12);
        let text = text::render(&r);
        assert!(
            text.contains("7. Pool design with the measured pool sensitivities"),
            "{text}"
        );
        let page = html::render(&r);
        assert!(page.contains("id=\"measured-advice\""));
        assert!(page.contains("id=\"measured-advice-chart-1\""));
    }
}
