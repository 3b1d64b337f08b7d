//! The `[assay]` section (the test's sensitivity and specificity per kind of tube, and
//! the dilution effect on pools) and the `[advisor]` section (the sensitivity floor a
//! recommended scheme must keep, the hours between stages).

use super::AdvisorRules;
use super::Res;
use super::document::Tab;
use crate::planner::assay::{Assay, PoolSensitivity};

const ASSAY_KEYS: [&str; 5] = [
    "sensitivity",
    "specificity",
    "pool_specificity",
    "dilution_loss_per_log2",
    "pool_sensitivity",
];
const ADVISOR_KEYS: [&str; 2] = ["sensitivity_floor", "recall_hours"];

/// The most sensitivity a pool may lose per doubling of its size: at 0.2 a pool of 20
/// keeps 0.86 less than a single tube, past anything a validated kit shows.
const MAX_LOSS: f64 = 0.2;

pub(super) fn read_assay(t: &Tab<'_>, warnings: &mut Vec<String>) -> Res<Assay> {
    let share = |key: &str, why: &str| -> Res<Option<f64>> {
        t.get(key)
            .map(|v| v.number_in(0.0, 1.0, true, why))
            .transpose()
    };
    let sensitivity = share(
        "sensitivity",
        "a single tube's sensitivity: the share of infected people's tubes that test positive",
    )?
    .unwrap_or(1.0);
    let spec_val = t.get("specificity");
    let specificity = spec_val
        .as_ref()
        .map(|v| {
            v.number_in(
                0.0,
                1.0,
                true,
                "a single tube's specificity: the share of uninfected people's tubes that test negative",
            )
        })
        .transpose()?
        .unwrap_or(1.0);
    if sensitivity + specificity <= 1.0 {
        let msg = format!(
            "sensitivity {sensitivity} + specificity {specificity} is at most 1: such a test tells no more than a coin"
        );
        return Err(match &spec_val {
            Some(v) => v.err(msg),
            None => t.missing("specificity", &msg),
        });
    }
    let pool_specificity = share(
        "pool_specificity",
        "a pool tube's specificity (default: the single tube's)",
    )?
    .unwrap_or(specificity);
    let dilution_loss_per_log2 = t
        .get("dilution_loss_per_log2")
        .map(|v| {
            v.number_in(
                0.0,
                MAX_LOSS,
                false,
                "sensitivity lost per doubling of the pool size, e.g. 0.01",
            )
        })
        .transpose()?
        .unwrap_or(0.0);
    let mut pool_sensitivity = Vec::new();
    if let Some(v) = t.get("pool_sensitivity") {
        for (key, val) in v.table()?.entries() {
            let size = key
                .parse::<u8>()
                .ok()
                .filter(|k| (2..=20).contains(k))
                .ok_or_else(|| {
                    val.err(format!(
                        "`{key}` is not a pool size: the keys are pool sizes 2 to 20, as in {{ 5 = 0.96, 10 = 0.95, 20 = 0.93 }}"
                    ))
                })?;
            let se = val.number_in(0.0, 1.0, true, "a pool's sensitivity at this size")?;
            if se > sensitivity {
                warnings.push(format!(
                    "{}: {se} is above the single tube's sensitivity {sensitivity}; a pool dilutes each swab, so it is used as given but is unlikely",
                    val.path
                ));
            }
            pool_sensitivity.push(PoolSensitivity {
                pool_size: size,
                sensitivity: se,
                source: "plan".to_owned(),
            });
        }
        pool_sensitivity.sort_by_key(|s| s.pool_size);
    }
    t.finish(&ASSAY_KEYS)?;
    Ok(Assay {
        sensitivity,
        specificity,
        pool_specificity,
        dilution_loss_per_log2,
        pool_sensitivity,
    })
}

pub(super) fn read_advisor(t: &Tab<'_>) -> Res<AdvisorRules> {
    let d = AdvisorRules::default();
    let rules = AdvisorRules {
        sensitivity_floor: t
            .get("sensitivity_floor")
            .map(|v| {
                v.number_in(
                    0.0,
                    1.0,
                    false,
                    "the least share of infected people a recommended scheme must find",
                )
            })
            .transpose()?
            .unwrap_or(d.sensitivity_floor),
        recall_hours: t
            .get("recall_hours")
            .map(|v| {
                v.number_in(
                    0.0,
                    168.0,
                    false,
                    "clock hours from a positive tube's result to its people's new swabs in the lab",
                )
            })
            .transpose()?
            .unwrap_or(d.recall_hours),
    };
    t.finish(&ADVISOR_KEYS)?;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use crate::planner::config::Plan;
    use crate::planner::config::tests::{MINIMAL, err};

    #[test]
    fn no_assay_is_a_perfect_test() {
        let p = Plan::parse(MINIMAL).expect("valid");
        assert!(p.assay.is_perfect());
        assert_eq!(p.advisor.sensitivity_floor, 0.9);
        assert_eq!(p.advisor.recall_hours, 4.0);
    }

    #[test]
    fn the_assay_is_read_with_its_defaults() {
        let p = Plan::parse(&format!(
            "{MINIMAL}[assay]\nsensitivity = 0.98\nspecificity = 0.995\n\
             dilution_loss_per_log2 = 0.01\npool_sensitivity = {{ 20 = 0.93, 5 = 0.96 }}\n\
             [advisor]\nsensitivity_floor = 0.85\nrecall_hours = 6\n"
        ))
        .expect("valid");
        let a = &p.assay;
        assert_eq!(a.sensitivity, 0.98);
        assert_eq!(a.pool_specificity, 0.995, "defaults to the single tube's");
        assert_eq!(
            a.pool_sensitivity
                .iter()
                .map(|s| s.pool_size)
                .collect::<Vec<_>>(),
            vec![5, 20]
        );
        assert_eq!(a.sensitivity_at(20.0), 0.93);
        assert!((a.sensitivity_at(10.0) - (0.98 - 0.01 * 10f64.log2())).abs() < 1e-12);
        assert_eq!(p.advisor.sensitivity_floor, 0.85);
        assert_eq!(p.advisor.recall_hours, 6.0);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn bad_assays_name_their_line_and_key() {
        let cases = [
            (
                "[assay]\nsensitivity = 1.2\n",
                "line 17: assay.sensitivity: must be more than 0 and at most 1 (found 1.2)",
            ),
            (
                "[assay]\nsensitivity = 0.4\nspecificity = 0.5\n",
                "line 18: assay.specificity: sensitivity 0.4 + specificity 0.5 is at most 1",
            ),
            (
                "[assay]\npool_sensitivity = { 30 = 0.9 }\n",
                "line 17: assay.pool_sensitivity.30: `30` is not a pool size",
            ),
            (
                "[assay]\npool_sensitivity = { 10 = \"high\" }\n",
                "line 17: assay.pool_sensitivity.10: expected a number",
            ),
            (
                "[assay]\ndilution_loss_per_log2 = 0.5\n",
                "line 17: assay.dilution_loss_per_log2: 0.5 is outside 0–0.2",
            ),
            (
                "[assay]\nsensitivty = 0.9\n",
                "line 17: assay: unknown key `sensitivty`; did you mean `sensitivity`?",
            ),
            (
                "[advisor]\nsensitivity_floor = 90\n",
                "line 17: advisor.sensitivity_floor: 90 is outside 0–1",
            ),
        ];
        for (extra, want) in cases {
            let got = err(&format!("{MINIMAL}{extra}"));
            assert!(got.starts_with(want), "got:  {got}\nwant: {want}…");
        }
    }

    #[test]
    fn a_pool_above_the_single_tube_is_warned_about() {
        let p = Plan::parse(&format!(
            "{MINIMAL}[assay]\nsensitivity = 0.9\npool_sensitivity = {{ 10 = 0.95 }}\n"
        ))
        .expect("valid");
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].starts_with("assay.pool_sensitivity.10: 0.95 is above"),
            "{}",
            p.warnings[0]
        );
    }
}
