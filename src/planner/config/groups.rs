//! A `[[zone]]` or `[[schedule.routine]]` group: its people, how they are tubed
//! (single, household or pooled, with the pool-size rules; pooled in three stages with
//! `retest_pool_size`) and its prevalence.

use super::document::{Tab, line_at};
use super::{MAX_PEOPLE, Res, VALIDATED_POOL_SIZES};
use crate::planner::demand::{Group, Tubing};

pub(super) const ZONE_KEYS: [&str; 7] = [
    "name",
    "people",
    "mode",
    "pool_size",
    "household_size",
    "prevalence",
    "retest_pool_size",
];

/// Reads a zone, or a routine group (`frequency`/`share` are read by the caller);
/// `default_prevalence` is `Some` for routine groups, which may leave it out.
pub(super) fn read_group(
    t: &Tab<'_>,
    default_prevalence: Option<f64>,
    warnings: &mut Vec<String>,
) -> Res<Group> {
    let name = t
        .req("name", "each zone or group needs a name")?
        .string()?
        .to_owned();
    let people = t
        .req("people", "how many people are in it")?
        .count(0, MAX_PEOPLE)?;
    let mode_val = t.req(
        "mode",
        "how people are sampled: \"single\", \"household\" or \"pooled\"",
    )?;
    let pool_size = t.get("pool_size");
    let retest_pool_size = t.get("retest_pool_size");
    let household_size = t.get("household_size");
    let tubing = match mode_val.string()? {
        "single" => Tubing::Single,
        "household" => {
            let v = household_size.as_ref().ok_or_else(|| {
                t.missing(
                    "household_size",
                    "mode = \"household\" needs the mean household size",
                )
            })?;
            Tubing::Household {
                household_size: v.number_in(
                    1.0,
                    20.0,
                    false,
                    "the mean number of people per household tube (1 to 20)",
                )?,
            }
        }
        "pooled" => {
            let v = pool_size.as_ref().ok_or_else(|| {
                t.missing(
                    "pool_size",
                    "mode = \"pooled\" needs pool_size: 5, 10 or 20",
                )
            })?;
            let n = v.integer()?;
            let size = u8::try_from(n)
                .ok()
                .filter(|s| (1..=20).contains(s))
                .ok_or_else(|| {
                    v.err(format!(
                        "{n} is outside 1–20: a pool tube holds 1 to 20 people, and only 5, 10 \
                     and 20 are validated pool sizes"
                    ))
                })?;
            let unvalidated = |size: u8, v: &super::document::Val<'_>| {
                format!(
                    "line {}: {}: {size} is not a validated pool size (only 5, 10 and 20 are); \
                     the plan uses it as given",
                    line_at(v.text, v.span.start),
                    v.path
                )
            };
            if !VALIDATED_POOL_SIZES.contains(&size) {
                warnings.push(unvalidated(size, v));
            }
            match &retest_pool_size {
                None => Tubing::Pooled { pool_size: size },
                Some(r) => {
                    let n = r.integer()?;
                    let retest = u8::try_from(n)
                        .ok()
                        .filter(|&k| k >= 2 && k < size && size % k == 0)
                        .ok_or_else(|| {
                            r.err(format!(
                                "{n} does not split a pool of {size}: a positive pool's people are \
                                 swabbed again into pools of retest_pool_size, which must divide \
                                 pool_size and be 2 to {}",
                                size.saturating_sub(1).max(2)
                            ))
                        })?;
                    if !VALIDATED_POOL_SIZES.contains(&retest) {
                        warnings.push(unvalidated(retest, r));
                    }
                    Tubing::ThreeStage {
                        pool_size: size,
                        retest_pool_size: retest,
                    }
                }
            }
        }
        other => {
            return Err(mode_val.err(format!(
                "unknown mode {other:?}: use \"single\", \"household\" or \"pooled\""
            )));
        }
    };
    let pooled = matches!(tubing, Tubing::Pooled { .. } | Tubing::ThreeStage { .. });
    if let (Some(v), false) = (&pool_size, pooled) {
        return Err(v.err("pool_size only applies to mode = \"pooled\""));
    }
    if let (Some(v), false) = (&retest_pool_size, pooled) {
        return Err(v.err("retest_pool_size only applies to mode = \"pooled\""));
    }
    if let (Some(v), false) = (&household_size, matches!(tubing, Tubing::Household { .. })) {
        return Err(v.err("household_size only applies to mode = \"household\""));
    }
    let why = "the expected share infected, as a fraction (0.001 is 0.1 %)";
    let prevalence = match (t.get("prevalence"), default_prevalence) {
        (Some(v), _) => v.number_in(0.0, 1.0, false, why)?,
        (None, Some(p)) => p,
        (None, None) => {
            return Err(t.missing("prevalence", why));
        }
    };
    Ok(Group {
        name,
        people,
        tubing,
        prevalence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::config::Plan;
    use crate::planner::config::tests::{MINIMAL, err};

    #[test]
    fn unvalidated_pool_sizes_are_accepted_with_a_warning() {
        let p = Plan::parse(&MINIMAL.replace("pool_size = 10", "pool_size = 8")).expect("valid");
        assert_eq!(p.zones[0].tubing, Tubing::Pooled { pool_size: 8 });
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].contains("8 is not a validated pool size (only 5, 10 and 20 are)"),
            "{}",
            p.warnings[0]
        );
        let strict = format!(
            "warnings_are_errors = true\n{}",
            MINIMAL.replace("pool_size = 10", "pool_size = 8")
        );
        assert!(err(&strict).contains("warnings_are_errors"));
    }

    #[test]
    fn a_retest_pool_size_makes_three_stages() {
        let p =
            Plan::parse(&MINIMAL.replace("pool_size = 10", "pool_size = 20\nretest_pool_size = 5"))
                .expect("valid");
        assert_eq!(
            p.zones[0].tubing,
            Tubing::ThreeStage {
                pool_size: 20,
                retest_pool_size: 5
            }
        );
        assert!(p.warnings.is_empty());
        for (bad, want) in [
            (
                "pool_size = 20\nretest_pool_size = 6",
                "line 7: zone[1].retest_pool_size: 6 does not split a pool of 20",
            ),
            (
                "pool_size = 10\nretest_pool_size = 10",
                "line 7: zone[1].retest_pool_size: 10 does not split a pool of 10",
            ),
        ] {
            let got = err(&MINIMAL.replace("pool_size = 10", bad));
            assert!(got.starts_with(want), "{got}");
        }
        let got = err(&MINIMAL.replace(
            "mode = \"pooled\"\npool_size = 10",
            "mode = \"single\"\nretest_pool_size = 5",
        ));
        assert!(
            got.starts_with("line 6: zone[1].retest_pool_size: retest_pool_size only applies"),
            "{got}"
        );
    }
}
