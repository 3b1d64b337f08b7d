//! A `[[zone]]` or `[[schedule.routine]]` group: its people, how they are tubed
//! (single, household or pooled, with the pool-size rules) and its prevalence.

use super::document::{Tab, line_at};
use super::{MAX_PEOPLE, Res, VALIDATED_POOL_SIZES};
use crate::planner::demand::{Group, Tubing};

pub(super) const ZONE_KEYS: [&str; 6] = [
    "name",
    "people",
    "mode",
    "pool_size",
    "household_size",
    "prevalence",
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
            if !VALIDATED_POOL_SIZES.contains(&size) {
                warnings.push(format!(
                    "line {}: {}: {size} is not a validated pool size (only 5, 10 and 20 are); \
                     the plan uses it as given",
                    line_at(v.text, v.span.start),
                    v.path
                ));
            }
            Tubing::Pooled { pool_size: size }
        }
        other => {
            return Err(mode_val.err(format!(
                "unknown mode {other:?}: use \"single\", \"household\" or \"pooled\""
            )));
        }
    };
    if let (Some(v), false) = (&pool_size, matches!(tubing, Tubing::Pooled { .. })) {
        return Err(v.err("pool_size only applies to mode = \"pooled\""));
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
}
