//! The plan file's root keys and its `[[lab]]`, `[sampling]` and `[reagents]` sections,
//! read into the planner's types with their defaults and the rules that tie their
//! keys together.

use super::AdvisorRules;
use super::assay::{read_advisor, read_assay};
use super::document::Tab;
use super::groups::{ZONE_KEYS, read_group};
use super::schedule::read_schedule;
use super::{MAX_INSTRUMENTS, MAX_PEOPLE, MAX_SAMPLES_PER_RUN, MAX_STOCK, Plan, PlanError, Res};
use crate::planner::assay::Assay;
use crate::planner::capacity::{Lab, Stage, StageKind};
use crate::planner::demand::Demand;
use crate::planner::projection::Schedule;
use crate::planner::reagent::{Contract, Stock};
use crate::planner::sampling::SamplingPlan;

const ROOT_KEYS: [&str; 11] = [
    "name",
    "deadline_hours",
    "staffed_hours",
    "zone",
    "lab",
    "sampling",
    "reagents",
    "schedule",
    "assay",
    "advisor",
    "warnings_are_errors",
];

pub(super) fn read_plan(root: &Tab<'_>) -> Res<Plan> {
    let mut warnings = Vec::new();
    let name = root
        .get("name")
        .map(|v| v.string().map(str::to_owned))
        .transpose()?
        .unwrap_or_else(|| "plan".to_owned());
    let deadline_hours = root
        .get("deadline_hours")
        .map(|v| {
            v.number_in(
                0.0,
                720.0,
                true,
                "the round deadline in clock hours (24 by the rule)",
            )
        })
        .transpose()?
        .unwrap_or(24.0);
    let staffed_hours = root
        .get("staffed_hours")
        .map(|v| v.number_in(0.0, 24.0, true, "staffed hours a day (18 by the rule)"))
        .transpose()?
        .unwrap_or(18.0);
    let zone_list = root.req("zone", "a plan needs at least one [[zone]] with its people")?;
    let mut zones = Vec::new();
    for t in zone_list.tables()? {
        zones.push(read_group(&t, None, &mut warnings)?);
        t.finish(&ZONE_KEYS)?;
    }
    if zones.is_empty() {
        return Err(zone_list.err("a plan needs at least one [[zone]] with its people"));
    }
    let city = Demand::of(&zones);
    if city.people == 0 {
        return Err(zone_list.err("the zones hold no people"));
    }
    let lab_list = root.req(
        "lab",
        "a plan needs at least one [[lab]] with its instruments",
    )?;
    let mut labs = Vec::new();
    for t in lab_list.tables()? {
        labs.push(read_lab(&t, staffed_hours, &mut warnings)?);
    }
    if labs.is_empty() {
        return Err(lab_list.err("a plan needs at least one [[lab]] with its instruments"));
    }
    let sampling = match root.get("sampling") {
        Some(v) => read_sampling(&v.table()?)?,
        None => SamplingPlan::default(),
    };
    let reagents = root.req(
        "reagents",
        "a plan needs a [reagents] table with at least physical_tests",
    )?;
    let stock = read_stock(&reagents.table()?)?;
    let schedule = match root.get("schedule") {
        Some(v) => read_schedule(&v.table()?, city.mean_prevalence(), &mut warnings)?,
        None => Schedule::default(),
    };
    let assay = match root.get("assay") {
        Some(v) => read_assay(&v.table()?, &mut warnings)?,
        None => Assay::PERFECT,
    };
    let advisor = match root.get("advisor") {
        Some(v) => read_advisor(&v.table()?)?,
        None => AdvisorRules::default(),
    };
    let strict = root
        .get("warnings_are_errors")
        .map(|v| v.boolean())
        .transpose()?
        .unwrap_or(false);
    root.finish(&ROOT_KEYS)?;
    if strict && let Some(w) = warnings.first() {
        return Err(PlanError {
            line: None,
            key: "warnings_are_errors".to_owned(),
            message: format!("is true and the plan has a warning: {w}"),
        });
    }
    Ok(Plan {
        name,
        deadline_hours,
        zones,
        labs,
        staffed_hours,
        sampling,
        stock,
        schedule,
        assay,
        advisor,
        warnings,
    })
}

const LAB_KEYS: [&str; 4] = ["name", "staffed_hours", "extraction", "pcr"];
const STAGE_KEYS: [&str; 3] = ["instruments", "samples_per_run", "minutes_per_run"];

fn read_lab(t: &Tab<'_>, default_hours: f64, warnings: &mut Vec<String>) -> Res<Lab> {
    let name = t.req("name", "each lab needs a name")?.string()?.to_owned();
    let staffed_hours = t
        .get("staffed_hours")
        .map(|v| v.number_in(0.0, 24.0, true, "staffed hours a day (18 by the rule)"))
        .transpose()?
        .unwrap_or(default_hours);
    let mut stages = Vec::with_capacity(2);
    for (key, kind) in [
        ("extraction", StageKind::Extraction),
        ("pcr", StageKind::Pcr),
    ] {
        let s = t
            .req(
                key,
                "instruments, samples_per_run and minutes_per_run of this stage",
            )?
            .table()?;
        let stage = Stage {
            kind,
            instruments: s
                .req("instruments", "how many instruments (0 if none)")?
                .count_u32(0, u32::try_from(MAX_INSTRUMENTS).unwrap_or(u32::MAX))?,
            samples_per_run: {
                let n = s
                    .req(
                        "samples_per_run",
                        "samples a run holds after the controls (94 on a 96-well plate)",
                    )?
                    .count(1, MAX_SAMPLES_PER_RUN)?;
                crate::planner::numbers::f(n)
            },
            minutes_per_run: s
                .req("minutes_per_run", "minutes one run takes")?
                .number_in(0.0, 10_080.0, true, "minutes one run takes")?,
        };
        s.finish(&STAGE_KEYS)?;
        if stage.runs(staffed_hours) == 0.0 {
            warnings.push(format!(
                "{}.{key}: a run of {} min does not fit in {staffed_hours} staffed hours; the stage does nothing",
                t.path, stage.minutes_per_run
            ));
        }
        stages.push(stage);
    }
    t.finish(&LAB_KEYS)?;
    Ok(Lab {
        name,
        staffed_hours,
        stages,
    })
}

const SAMPLING_KEYS: [&str; 6] = [
    "people_per_site",
    "people_per_station",
    "people_per_collector",
    "sites",
    "stations",
    "collectors",
];

fn read_sampling(t: &Tab<'_>) -> Res<SamplingPlan> {
    let d = SamplingPlan::default();
    let norm = |key: &str, default: f64| -> Res<f64> {
        t.get(key)
            .map(|v| v.number_in(0.0, 1e9, true, "people served by one"))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let have =
        |key: &str| -> Res<Option<u64>> { t.get(key).map(|v| v.count(0, MAX_PEOPLE)).transpose() };
    let plan = SamplingPlan {
        people_per_site: norm("people_per_site", d.people_per_site)?,
        people_per_station: norm("people_per_station", d.people_per_station)?,
        people_per_collector: norm("people_per_collector", d.people_per_collector)?,
        sites: have("sites")?,
        stations: have("stations")?,
        collectors: have("collectors")?,
    };
    t.finish(&SAMPLING_KEYS)?;
    Ok(plan)
}

const STOCK_KEYS: [&str; 10] = [
    "physical_tests",
    "kit_size",
    "swabs",
    "single_tubes",
    "pool_tubes",
    "reserve_rounds",
    "physical_rounds",
    "order_lead_days",
    "contract",
    "contracts",
];
const CONTRACT_KEYS: [&str; 3] = ["name", "tests", "confirmed"];

fn read_stock(t: &Tab<'_>) -> Res<Stock> {
    let d = Stock::default();
    let opt =
        |key: &str| -> Res<Option<u64>> { t.get(key).map(|v| v.count(0, MAX_STOCK)).transpose() };
    let physical_tests = t
        .req("physical_tests", "PCR tests physically on hand")?
        .count(0, MAX_STOCK)?;
    let kit_size = t
        .get("kit_size")
        .map(|v| v.count(1, 1_000_000))
        .transpose()?
        .unwrap_or(d.kit_size);
    let reserve_rounds = t
        .get("reserve_rounds")
        .map(|v| {
            v.number_in(
                0.0,
                1_000.0,
                false,
                "rounds of reagent to hold (10 by the rule)",
            )
        })
        .transpose()?
        .unwrap_or(d.reserve_rounds);
    let physical_val = t.get("physical_rounds");
    let physical_rounds = physical_val
        .as_ref()
        .map(|v| {
            v.number_in(
                0.0,
                1_000.0,
                false,
                "rounds to hold physically (6 by the rule)",
            )
        })
        .transpose()?
        .unwrap_or(d.physical_rounds);
    if physical_rounds > reserve_rounds {
        let msg = format!(
            "{physical_rounds} physical rounds is more than the {reserve_rounds} reserve rounds in all"
        );
        return Err(match &physical_val {
            Some(v) => v.err(msg),
            None => t.missing("physical_rounds", &msg),
        });
    }
    let mut contracts = Vec::new();
    for key in ["contract", "contracts"] {
        if let Some(v) = t.get(key) {
            for c in v.tables()? {
                contracts.push(Contract {
                    name: c
                        .get("name")
                        .map(|v| v.string().map(str::to_owned))
                        .transpose()?
                        .unwrap_or_else(|| format!("contract {}", contracts.len() + 1)),
                    tests: c.req("tests", "tests the contract covers")?.count(0, MAX_STOCK)?,
                    confirmed: c
                        .req(
                            "confirmed",
                            "true when confirmed (a paid deposit), else false: only confirmed contracts count",
                        )?
                        .boolean()?,
                });
                c.finish(&CONTRACT_KEYS)?;
            }
        }
    }
    let stock = Stock {
        physical_tests,
        contracts,
        kit_size,
        swabs: opt("swabs")?,
        single_tubes: opt("single_tubes")?,
        pool_tubes: opt("pool_tubes")?,
        reserve_rounds,
        physical_rounds,
        order_lead_days: t
            .get("order_lead_days")
            .map(|v| v.count_u32(0, 365))
            .transpose()?
            .unwrap_or(d.order_lead_days),
    };
    t.finish(&STOCK_KEYS)?;
    Ok(stock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::config::tests::MINIMAL;

    #[test]
    fn defaults_follow_the_rules() {
        let p = Plan::parse(MINIMAL).expect("valid");
        assert_eq!(p.deadline_hours, 24.0);
        assert_eq!(p.labs[0].staffed_hours, 18.0);
        assert_eq!(p.sampling, SamplingPlan::default());
        assert_eq!(p.stock.reserve_rounds, 10.0);
        assert_eq!(p.stock.physical_rounds, 6.0);
        assert_eq!(p.stock.kit_size, 48);
        assert_eq!(p.schedule.horizon_days, 60);
        assert!(p.warnings.is_empty());
    }
}
