//! The `[schedule]` section: day 1's date, the horizon, the full rounds (every N
//! days, on listed days or on dates) and the routine groups with their frequencies.

use super::document::Tab;
use super::groups::read_group;
use super::{MAX_HORIZON, PlanError, Res};
use crate::planner::calendar::Date;
use crate::planner::projection::{Frequency, FullRounds, Routine, Schedule};

const SCHEDULE_KEYS: [&str; 5] = [
    "start",
    "horizon_days",
    "full_rounds",
    "routine",
    "routine_on_round_days",
];
const FULL_ROUND_KEYS: [&str; 4] = ["every_days", "first_day", "days", "dates"];
const ROUTINE_KEYS: [&str; 9] = [
    "name",
    "people",
    "mode",
    "pool_size",
    "household_size",
    "prevalence",
    "retest_pool_size",
    "frequency",
    "share",
];

pub(super) fn read_schedule(
    t: &Tab<'_>,
    city_prevalence: f64,
    warnings: &mut Vec<String>,
) -> Res<Schedule> {
    let start = t.get("start").map(|v| v.date()).transpose()?;
    let horizon_days = t
        .get("horizon_days")
        .map(|v| v.count_u32(1, u32::try_from(MAX_HORIZON).unwrap_or(u32::MAX)))
        .transpose()?
        .unwrap_or(60);
    let full_rounds = match t.get("full_rounds") {
        None => FullRounds::Never,
        Some(v) => read_full_rounds(&v.table()?, start)?,
    };
    let mut routine = Vec::new();
    if let Some(v) = t.get("routine") {
        for g in v.tables()? {
            let group = read_group(&g, Some(city_prevalence), warnings)?;
            let freq_val = g.req(
                "frequency",
                "daily, every_2_days, every_3_days, twice_weekly, weekly or working_days",
            )?;
            let share = g.get("share");
            let frequency = match freq_val.string()? {
                "daily" => Frequency::Daily,
                "twice_weekly" => Frequency::TwiceWeekly,
                "weekly" => Frequency::Weekly,
                "working_days" => {
                    let v = share.as_ref().ok_or_else(|| {
                        g.missing("share", "frequency = \"working_days\" needs the share tested each working day (0.2 for schools)")
                    })?;
                    Frequency::WorkingDays {
                        share: v.number_in(0.0, 1.0, true, "the share tested each working day")?,
                    }
                }
                other => match other
                    .strip_prefix("every_")
                    .and_then(|s| s.strip_suffix("_days"))
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (1..=365).contains(n))
                {
                    Some(days) => Frequency::EveryDays { days },
                    None => {
                        return Err(freq_val.err(format!(
                            "unknown frequency {other:?}: use daily, every_2_days, every_3_days \
                             (every_N_days), twice_weekly, weekly or working_days"
                        )));
                    }
                },
            };
            if let (Some(v), false) = (&share, matches!(frequency, Frequency::WorkingDays { .. })) {
                return Err(v.err("share only applies to frequency = \"working_days\""));
            }
            g.finish(&ROUTINE_KEYS)?;
            routine.push(Routine { group, frequency });
        }
    }
    let routine_on_round_days = t
        .get("routine_on_round_days")
        .map(|v| v.boolean())
        .transpose()?
        .unwrap_or(true);
    t.finish(&SCHEDULE_KEYS)?;
    Ok(Schedule {
        start,
        horizon_days,
        full_rounds,
        routine,
        routine_on_round_days,
    })
}

fn read_full_rounds(t: &Tab<'_>, start: Option<Date>) -> Res<FullRounds> {
    let every = t.get("every_days");
    let first = t.get("first_day");
    let days = t.get("days");
    let dates = t.get("dates");
    let given = [every.is_some(), days.is_some(), dates.is_some()]
        .iter()
        .filter(|&&b| b)
        .count();
    if given != 1 {
        return Err(PlanError {
            line: t.line,
            key: t.path.clone(),
            message: "give exactly one of every_days (with first_day), days or dates".to_owned(),
        });
    }
    let rounds = if let Some(v) = every {
        FullRounds::Every {
            every_days: v.count_u32(1, 3_650)?,
            first_day: first
                .map(|v| v.count_u32(1, u32::try_from(MAX_HORIZON).unwrap_or(u32::MAX)))
                .transpose()?
                .unwrap_or(1),
        }
    } else if let Some(v) = first {
        return Err(v.err("first_day only applies with every_days"));
    } else if let Some(v) = days {
        let mut list = Vec::new();
        for d in v.array()? {
            list.push(d.count_u32(1, u32::try_from(MAX_HORIZON).unwrap_or(u32::MAX))?);
        }
        FullRounds::Days(list)
    } else if let Some(v) = dates {
        let Some(start) = start else {
            return Err(v.err("dates need schedule.start (the date of day 1)"));
        };
        let mut list = Vec::new();
        for d in v.array()? {
            let date = d.date()?;
            let n = date.days_since(start) + 1;
            let day = u32::try_from(n)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| d.err(format!("{date} is before schedule.start ({start})")))?;
            list.push(day);
        }
        FullRounds::Days(list)
    } else {
        FullRounds::Never
    };
    t.finish(&FULL_ROUND_KEYS)?;
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::config::Plan;
    use crate::planner::config::tests::MINIMAL;

    #[test]
    fn routine_groups_default_to_the_city_prevalence() {
        let text = format!(
            "{MINIMAL}[schedule]\nstart = 2022-04-04\nfull_rounds = {{ dates = [\"2022-04-04\", 2022-04-11] }}\n\
             [[schedule.routine]]\nname = \"schools\"\npeople = 5000\nmode = \"single\"\n\
             frequency = \"working_days\"\nshare = 0.2\n\
             [[schedule.routine]]\nname = \"couriers\"\npeople = 100\nmode = \"pooled\"\npool_size = 5\n\
             prevalence = 0.01\nfrequency = \"every_2_days\"\n"
        );
        let p = Plan::parse(&text).expect("valid");
        assert_eq!(p.schedule.full_rounds, FullRounds::Days(vec![1, 8]));
        assert_eq!(p.schedule.routine[0].group.prevalence, 0.001);
        assert_eq!(
            p.schedule.routine[0].frequency,
            Frequency::WorkingDays { share: 0.2 }
        );
        assert_eq!(p.schedule.routine[1].group.prevalence, 0.01);
        assert_eq!(
            p.schedule.routine[1].frequency,
            Frequency::EveryDays { days: 2 }
        );
    }
}
