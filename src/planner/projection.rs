//! Projection: stock day by day under the schedule, and what to order by when.
//!
//! Day 1 is the plan's start date (or just "day 1" when the plan gives none, counted
//! as a Monday); day 0 is the stock as the plan states it. Each day uses:
//!
//! - a **full round** on the days the schedule names: the round's tests (first-stage
//!   tubes plus expected retests), swabs and tubes (see [`super::demand`]);
//! - each **routine group** on its days: daily; every 2 or 3 days (days 1, 3, 5… or
//!   1, 4, 7…); twice weekly (Monday and Thursday); weekly (Monday); or a share of the
//!   group on each working day (Monday–Friday) — with the retests its pools bring
//!   under the plan's assay.
//!   On full-round days routine groups are counted too unless the plan says
//!   `routine_on_round_days = false` (they are inside the round's population).
//!
//! Retests are used the same day (a full round is within 24 h). Physical stock is used
//! first; when it runs out, the confirmed contracted reserve is called in, so
//!
//! - physical(d) = max(0, physical₀ − used(1..d)),
//! - total(d) = physical₀ + confirmed − used(1..d).
//!
//! The day **physical stock falls under 6 rounds** is the first `d` with
//! physical₀ − used < 6 T, and the day **the total falls under 10 rounds** the first
//! with total < 10 T (`T` = tests per full round). To hold both lines through the
//! horizon `H`, the city must add
//!
//! - physically: ⌈6 T + used(1..H) − physical₀⌉,
//! - in all: ⌈10 T + used(1..H) − physical₀ − confirmed⌉, the rest of which may be a
//!   confirmed contract,
//!
//! delivered by the first day either line is crossed, so **ordered by that day minus
//! the lead time**. (More stock can only move that day later.) Swabs and tubes: the
//! first day the stock cannot cover the day's use, and the quantity that lasts the
//! horizon, ordered the lead time before.
//!
//! One job: the stock day by day and the orders it implies. The schedule's types live
//! here because their day rules ([`Frequency::share_on`], [`FullRounds::on`],
//! [`Schedule::weekday`]) are what that walk asks of each day; the file is over 600
//! lines only by its tests.

use serde::Serialize;

use super::assay::Assay;
use super::calendar::Date;
use super::demand::{Demand, Group, GroupDemand};
use super::numbers::{ceil_u64, f};
use super::reagent::Stock;

/// How often a routine group is tested.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "every")]
pub enum Frequency {
    /// Every day (border, cold chain, quarantine staff).
    Daily,
    /// Every `days` days, from day 1 (couriers every 2, lab staff every 3).
    EveryDays {
        /// The interval.
        days: u32,
    },
    /// Monday and Thursday (market, delivery, transport staff).
    TwiceWeekly,
    /// Monday (care homes).
    Weekly,
    /// A share of the group each working day, Monday to Friday (schools: 20 %).
    WorkingDays {
        /// Share of the group tested each working day, (0, 1].
        share: f64,
    },
}

impl Frequency {
    /// Share of the group tested on `day` (1-based) falling on `weekday` (0 = Monday).
    ///
    /// ```
    /// use pooltrack::planner::projection::Frequency;
    /// let f = Frequency::EveryDays { days: 3 };
    /// let tested: Vec<u32> = (1..=10).filter(|&d| f.share_on(d, 0) > 0.0).collect();
    /// assert_eq!(tested, vec![1, 4, 7, 10]);
    /// assert_eq!(Frequency::WorkingDays { share: 0.2 }.share_on(6, 5), 0.0); // Saturday
    /// ```
    pub fn share_on(self, day: u32, weekday: u32) -> f64 {
        let on = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            Frequency::Daily => 1.0,
            Frequency::EveryDays { days } => {
                on(days > 0 && day.saturating_sub(1).is_multiple_of(days))
            }
            Frequency::TwiceWeekly => on(weekday == 0 || weekday == 3),
            Frequency::Weekly => on(weekday == 0),
            Frequency::WorkingDays { share } => {
                if weekday < 5 {
                    share
                } else {
                    0.0
                }
            }
        }
    }

    /// A short label.
    pub fn label(self) -> String {
        match self {
            Frequency::Daily => "daily".to_owned(),
            Frequency::EveryDays { days } => format!("every {days} days"),
            Frequency::TwiceWeekly => "twice weekly".to_owned(),
            Frequency::Weekly => "weekly".to_owned(),
            Frequency::WorkingDays { share } => {
                format!("{:.0} % each working day", share * 100.0)
            }
        }
    }
}

/// When full-population rounds run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FullRounds {
    /// No full round in the horizon.
    Never,
    /// Every `every_days` days from `first_day`.
    Every {
        /// Interval in days.
        every_days: u32,
        /// The first round's day (1-based).
        first_day: u32,
    },
    /// On these days (1-based).
    Days(Vec<u32>),
}

impl FullRounds {
    /// Whether a full round runs on `day`.
    ///
    /// ```
    /// use pooltrack::planner::projection::FullRounds;
    /// let r = FullRounds::Every { every_days: 7, first_day: 2 };
    /// assert!(r.on(2) && r.on(9) && !r.on(1) && !r.on(8));
    /// ```
    pub fn on(&self, day: u32) -> bool {
        match self {
            FullRounds::Never => false,
            FullRounds::Every {
                every_days,
                first_day,
            } => {
                *every_days > 0
                    && day >= *first_day
                    && (day - first_day).is_multiple_of(*every_days)
            }
            FullRounds::Days(days) => days.contains(&day),
        }
    }
}

/// A group tested routinely (常态化).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Routine {
    /// The group, its sampling and prevalence.
    #[serde(flatten)]
    pub group: Group,
    /// How often.
    pub frequency: Frequency,
}

/// The testing schedule over the horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// The date of day 1, if the plan gives one.
    pub start: Option<Date>,
    /// Days to project.
    pub horizon_days: u32,
    /// Full rounds.
    pub full_rounds: FullRounds,
    /// Routine groups.
    pub routine: Vec<Routine>,
    /// Whether routine groups are also tested (and counted) on full-round days.
    pub routine_on_round_days: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            start: None,
            horizon_days: 60,
            full_rounds: FullRounds::Never,
            routine: Vec::new(),
            routine_on_round_days: true,
        }
    }
}

impl Schedule {
    /// The weekday of `day` (0 = Monday); day 1 is a Monday without a start date.
    pub fn weekday(&self, day: u32) -> u32 {
        match self.start {
            Some(s) => s.add_days(i64::from(day) - 1).weekday(),
            None => (day + 6) % 7,
        }
    }

    /// The date of `day`, if the plan has a start date.
    pub fn date(&self, day: i64) -> Option<Date> {
        self.start.map(|s| s.add_days(day - 1))
    }
}

/// What one day uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Use {
    /// PCR tests.
    pub tests: f64,
    /// Swabs.
    pub swabs: f64,
    /// Single tubes.
    pub single_tubes: f64,
    /// Pool tubes.
    pub pool_tubes: f64,
}

impl Use {
    fn round(d: &Demand) -> Use {
        Use {
            tests: f(d.tubes),
            swabs: f(d.swabs),
            single_tubes: f(d.single_tube_use),
            pool_tubes: f(d.pool_tube_use),
        }
    }

    fn group(g: &GroupDemand, share: f64) -> Use {
        Use {
            tests: g.tests() * share,
            swabs: (f(g.group.people) + g.retest_swabs) * share,
            single_tubes: g.single_tube_use() * share,
            pool_tubes: g.pool_tube_use() * share,
        }
    }

    fn add(&mut self, o: Use) {
        self.tests += o.tests;
        self.swabs += o.swabs;
        self.single_tubes += o.single_tubes;
        self.pool_tubes += o.pool_tubes;
    }
}

/// One projected day (day 0: the stock as stated).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// Day number.
    pub day: u32,
    /// Its date, if the plan has a start date.
    pub date: Option<Date>,
    /// Whether a full round runs.
    pub full_round: bool,
    /// What the day uses.
    pub used: Use,
    /// Physical tests left at the end of the day.
    pub physical: f64,
    /// Physical plus confirmed contracted tests left.
    pub total: f64,
    /// Swabs left, if tracked.
    pub swabs: Option<f64>,
    /// Single tubes left, if tracked.
    pub single_tubes: Option<f64>,
    /// Pool tubes left, if tracked.
    pub pool_tubes: Option<f64>,
}

/// The reagent order that keeps the reserve through the horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReagentOrder {
    /// First day a reserve line is crossed: the order must be in by then.
    pub due_day: u32,
    /// Its date.
    pub due_date: Option<Date>,
    /// Last day to order (due day minus lead time); 0 or less means already late.
    pub order_by_day: i64,
    /// Its date.
    pub order_by_date: Option<Date>,
    /// Days late when ordering on day 1 (0 when in time).
    pub late_by_days: u64,
    /// Tests to buy physically.
    pub physical_tests: u64,
    /// Further tests, bought or under a confirmed contract.
    pub other_tests: u64,
    /// Both.
    pub tests: u64,
    /// In kits.
    pub kits: u64,
}

/// A consumable's run-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumableRun {
    /// `swabs`, `single_tubes` or `pool_tubes`.
    pub item: &'static str,
    /// On hand at day 0.
    pub stock: u64,
    /// Used over the horizon.
    pub used: f64,
    /// First day the stock does not cover the day's use.
    pub runs_out_day: Option<u32>,
    /// Its date.
    pub runs_out_date: Option<Date>,
    /// To last the horizon.
    pub order_quantity: u64,
    /// Last day to order it.
    pub order_by_day: Option<i64>,
    /// Its date.
    pub order_by_date: Option<Date>,
}

/// The projection answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Projection {
    /// Days projected.
    pub horizon_days: u32,
    /// Date of day 1.
    pub start: Option<Date>,
    /// Tests per full round.
    pub tests_per_round: u64,
    /// The physical line: 6 rounds of tests.
    pub physical_line: f64,
    /// The total line: 10 rounds of tests.
    pub total_line: f64,
    /// Full-round days.
    pub full_round_days: Vec<u32>,
    /// Tests used over the horizon.
    pub tests_used: f64,
    /// Day 0 to the horizon.
    pub days: Vec<Day>,
    /// First day physical stock is under the physical line.
    pub physical_under_day: Option<u32>,
    /// First day the total is under the total line.
    pub total_under_day: Option<u32>,
    /// First day physical stock cannot cover the day.
    pub physical_out_day: Option<u32>,
    /// First day physical plus confirmed stock cannot cover the day.
    pub total_out_day: Option<u32>,
    /// The reagent order, if one is needed within the horizon.
    pub order: Option<ReagentOrder>,
    /// Swabs and tubes.
    pub consumables: Vec<ConsumableRun>,
}

/// Projects the stock over the schedule's horizon.
///
/// ```
/// use pooltrack::planner::assay::Assay;
/// use pooltrack::planner::demand::{Demand, Group, Tubing};
/// use pooltrack::planner::projection::{project, FullRounds, Schedule};
/// use pooltrack::planner::reagent::Stock;
/// let round = Demand::of(&[Group {
///     name: "city".into(), people: 1_000_000,
///     tubing: Tubing::Pooled { pool_size: 10 }, prevalence: 0.0,
/// }]);
/// // 100,000 tests a round, a round a week, 1,000,000 tests on hand, 3 days' lead time.
/// let schedule = Schedule {
///     horizon_days: 30,
///     full_rounds: FullRounds::Every { every_days: 7, first_day: 1 },
///     ..Schedule::default()
/// };
/// let stock = Stock { physical_tests: 1_000_000, ..Stock::default() };
/// let p = project(&schedule, &round, &stock, &Assay::PERFECT);
/// // Under 10 rounds after day 1's round, under 6 after the fifth (day 29): 400,000 < 600,000.
/// assert_eq!(p.total_under_day, Some(1));
/// assert_eq!(p.physical_under_day, Some(29));
/// assert_eq!(p.order.unwrap().order_by_day, -2);
/// ```
pub fn project(schedule: &Schedule, round: &Demand, stock: &Stock, assay: &Assay) -> Projection {
    let t = round.tubes;
    let physical_line = stock.physical_rounds * f(t);
    let total_line = stock.reserve_rounds * f(t);
    let physical0 = f(stock.physical_tests);
    let confirmed = f(stock.confirmed_tests());
    let round_use = Use::round(round);
    let routine: Vec<(GroupDemand, Frequency)> = schedule
        .routine
        .iter()
        .map(|r| (GroupDemand::under(&r.group, assay), r.frequency))
        .collect();
    let left = |s: Option<u64>, used: f64| s.map(|s| (f(s) - used).max(0.0));
    let mut days = Vec::with_capacity(usize::try_from(schedule.horizon_days).unwrap_or(0) + 1);
    days.push(Day {
        day: 0,
        date: schedule.date(0),
        full_round: false,
        used: Use::default(),
        physical: physical0,
        total: physical0 + confirmed,
        swabs: left(stock.swabs, 0.0),
        single_tubes: left(stock.single_tubes, 0.0),
        pool_tubes: left(stock.pool_tubes, 0.0),
    });
    let mut cum = Use::default();
    let mut full_round_days = Vec::new();
    let mut physical_under = (physical0 < physical_line).then_some(0);
    let mut total_under = (physical0 + confirmed < total_line).then_some(0);
    let mut physical_out = None;
    let mut total_out = None;
    let mut runs_out: [Option<u32>; 3] = [None; 3];
    for day in 1..=schedule.horizon_days {
        let full = schedule.full_rounds.on(day);
        let weekday = schedule.weekday(day);
        let mut used = Use::default();
        if full {
            used.add(round_use);
            full_round_days.push(day);
        }
        if !full || schedule.routine_on_round_days {
            for (g, freq) in &routine {
                let share = freq.share_on(day, weekday);
                if share > 0.0 {
                    used.add(Use::group(g, share));
                }
            }
        }
        let before = cum;
        cum.add(used);
        let raw_physical = physical0 - cum.tests;
        let raw_total = physical0 + confirmed - cum.tests;
        if physical_under.is_none() && raw_physical < physical_line {
            physical_under = Some(day);
        }
        if total_under.is_none() && raw_total < total_line {
            total_under = Some(day);
        }
        if physical_out.is_none() && raw_physical < 0.0 {
            physical_out = Some(day);
        }
        if total_out.is_none() && raw_total < 0.0 {
            total_out = Some(day);
        }
        let stocks = [stock.swabs, stock.single_tubes, stock.pool_tubes];
        let after = [cum.swabs, cum.single_tubes, cum.pool_tubes];
        let prior = [before.swabs, before.single_tubes, before.pool_tubes];
        for i in 0..3 {
            if let Some(s) = stocks[i]
                && runs_out[i].is_none()
                && after[i] > f(s)
                && after[i] > prior[i]
            {
                runs_out[i] = Some(day);
            }
        }
        days.push(Day {
            day,
            date: schedule.date(i64::from(day)),
            full_round: full,
            used,
            physical: raw_physical.max(0.0),
            total: raw_total.max(0.0),
            swabs: left(stock.swabs, cum.swabs),
            single_tubes: left(stock.single_tubes, cum.single_tubes),
            pool_tubes: left(stock.pool_tubes, cum.pool_tubes),
        });
    }
    let lead = i64::from(stock.order_lead_days);
    let order = match (physical_under, total_under) {
        (None, None) => None,
        (a, b) => {
            let due = a.unwrap_or(u32::MAX).min(b.unwrap_or(u32::MAX));
            let physical_tests = ceil_u64(physical_line + cum.tests - physical0);
            let all = ceil_u64(total_line + cum.tests - physical0 - confirmed);
            let other_tests = all.saturating_sub(physical_tests);
            let tests = physical_tests.saturating_add(other_tests);
            let order_by = i64::from(due) - lead;
            Some(ReagentOrder {
                due_day: due,
                due_date: schedule.date(i64::from(due)),
                order_by_day: order_by,
                order_by_date: schedule.date(order_by),
                late_by_days: u64::try_from(1 - order_by).unwrap_or(0),
                physical_tests,
                other_tests,
                tests,
                kits: tests.div_ceil(stock.kit_size.max(1)),
            })
        }
    };
    let items = [
        ("swabs", stock.swabs, cum.swabs),
        ("single_tubes", stock.single_tubes, cum.single_tubes),
        ("pool_tubes", stock.pool_tubes, cum.pool_tubes),
    ];
    let consumables = items
        .iter()
        .zip(runs_out)
        .filter_map(|(&(item, s, used), out)| {
            let s = s?;
            let order_by = out.map(|d| i64::from(d) - lead);
            Some(ConsumableRun {
                item,
                stock: s,
                used,
                runs_out_day: out,
                runs_out_date: out.and_then(|d| schedule.date(i64::from(d))),
                order_quantity: ceil_u64(used - f(s)),
                order_by_day: order_by,
                order_by_date: order_by.and_then(|d| schedule.date(d)),
            })
        })
        .collect();
    Projection {
        horizon_days: schedule.horizon_days,
        start: schedule.start,
        tests_per_round: t,
        physical_line,
        total_line,
        full_round_days,
        tests_used: cum.tests,
        days,
        physical_under_day: physical_under,
        total_under_day: total_under,
        physical_out_day: physical_out,
        total_out_day: total_out,
        order,
        consumables,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::demand::Tubing;
    use crate::planner::reagent::Contract;
    use proptest::prelude::*;

    fn city(people: u64) -> Demand {
        Demand::of(&[Group {
            name: "city".into(),
            people,
            tubing: Tubing::Pooled { pool_size: 10 },
            prevalence: 0.0,
        }])
    }

    fn routine(people: u64, tubing: Tubing, prevalence: f64, frequency: Frequency) -> Routine {
        Routine {
            group: Group {
                name: "r".into(),
                people,
                tubing,
                prevalence,
            },
            frequency,
        }
    }

    #[test]
    fn weekly_rounds_and_routine_groups_day_by_day() {
        // A city of 1,000,000 at 10:1, p = 0: T = 100,000 tests a round.
        // Full rounds on days 1, 8, 15, 22 (every 7 from day 1) over 28 days.
        // Routine: 7,000 border staff single-tube daily        → 7,000 tests a day;
        //          10,000 couriers 10:1 every 2 days, p = 1 %:
        //            1,000 pools × (1 − 0.99^10 = 0.095 617 924 99) = 95.617 924 99 positive
        //            × 10 = 956.179 249 9 retests → 1,956.179 249 9 tests on days 1, 3, 5, …
        //          5,000 pupils single, 20 % per working day    → 1,000 tests Mon–Fri.
        // Day 1 (Monday, round day): 100,000 + 7,000 + 1,956.179 249 9 + 1,000 = 109,956.179 249 9.
        // Day 2 (Tuesday): 7,000 + 1,000 = 8,000.
        // Over 28 days: 4 rounds 400,000; border 196,000; couriers on 14 days 27,386.509 499;
        //   pupils on 20 working days 20,000 → 643,386.509 499.
        let schedule = Schedule {
            start: Date::from_ymd(2022, 4, 4), // a Monday
            horizon_days: 28,
            full_rounds: FullRounds::Every {
                every_days: 7,
                first_day: 1,
            },
            routine: vec![
                routine(7_000, Tubing::Single, 0.0, Frequency::Daily),
                routine(
                    10_000,
                    Tubing::Pooled { pool_size: 10 },
                    0.01,
                    Frequency::EveryDays { days: 2 },
                ),
                routine(
                    5_000,
                    Tubing::Single,
                    0.0,
                    Frequency::WorkingDays { share: 0.2 },
                ),
            ],
            routine_on_round_days: true,
        };
        // Physical 1,000,000; confirmed 500,000: the 6-round line is 600,000 and the
        // 10-round line 1,000,000.
        let stock = Stock {
            physical_tests: 1_000_000,
            contracts: vec![Contract {
                name: "c".into(),
                tests: 500_000,
                confirmed: true,
            }],
            order_lead_days: 5,
            ..Stock::default()
        };
        let p = project(&schedule, &city(1_000_000), &stock, &Assay::PERFECT);
        assert_eq!(p.full_round_days, vec![1, 8, 15, 22]);
        assert!((p.days[1].used.tests - 109_956.179_249_9).abs() < 1e-6);
        assert!((p.days[2].used.tests - 8_000.0).abs() < 1e-9);
        assert!((p.tests_used - 643_386.509_499).abs() < 1e-5);
        // Physical = 1,000,000 − used falls under 600,000 once more than 400,000 is used:
        //   after day 14: 2 rounds (200,000) + border 98,000 + couriers on days
        //   1, 3, …, 13 (7 × 1,956.179 25 = 13,693.25) + pupils on 10 working days 10,000
        //   = 321,693.25; day 15 is a round day: + 109,956.18 = 431,649.43 > 400,000.
        assert_eq!(p.physical_under_day, Some(15));
        // Total = 1,500,000 − used falls under 1,000,000 once more than 500,000 is used:
        //   after day 21: 483,517.97; day 22 (a round, an even day: no couriers)
        //   + 108,000 = 591,517.97.
        assert_eq!(p.total_under_day, Some(22));
        // The order must be in by the first of the two, day 15 (Monday 18 April), and
        // with 5 days' lead time be placed by day 10 (Wednesday 13 April).
        let order = p.order.expect("an order");
        assert_eq!(order.due_day, 15);
        assert_eq!(order.due_date, Date::from_ymd(2022, 4, 18));
        assert_eq!(order.order_by_day, 10);
        assert_eq!(order.order_by_date, Date::from_ymd(2022, 4, 13));
        // To hold 6 rounds physically through day 28: 600,000 + 643,386.51 − 1,000,000
        //   = 243,386.51 → 243,387 tests; to hold 10 in all: 1,000,000 + 643,386.51
        //   − 1,500,000 = 143,386.51 → already covered by the physical order.
        assert_eq!(order.physical_tests, 243_387);
        assert_eq!(order.other_tests, 0);
        // Kits of 48: ⌈243,387 / 48⌉ = 5,071 (5,070.56).
        assert_eq!(order.kits, 5_071);
        assert_eq!(order.late_by_days, 0);
    }

    #[test]
    fn routine_on_round_days_can_be_left_out() {
        let schedule = Schedule {
            horizon_days: 2,
            full_rounds: FullRounds::Days(vec![1]),
            routine: vec![routine(1_000, Tubing::Single, 0.0, Frequency::Daily)],
            routine_on_round_days: false,
            ..Schedule::default()
        };
        let p = project(&schedule, &city(10_000), &Stock::default(), &Assay::PERFECT);
        assert_eq!(p.days[1].used.tests, 1_000.0);
        assert_eq!(p.days[2].used.tests, 1_000.0);
    }

    #[test]
    fn without_a_date_day_one_is_a_monday() {
        let s = Schedule::default();
        let weekdays: Vec<u32> = (1..=8).map(|d| s.weekday(d)).collect();
        assert_eq!(weekdays, vec![0, 1, 2, 3, 4, 5, 6, 0]);
        let twice: Vec<u32> = (1..=14)
            .filter(|&d| Frequency::TwiceWeekly.share_on(d, s.weekday(d)) > 0.0)
            .collect();
        assert_eq!(twice, vec![1, 4, 8, 11]);
    }

    #[test]
    fn already_under_the_line_is_day_zero_and_late() {
        let schedule = Schedule {
            horizon_days: 10,
            ..Schedule::default()
        };
        let p = project(
            &schedule,
            &city(1_000_000),
            &Stock::default(),
            &Assay::PERFECT,
        );
        assert_eq!(p.physical_under_day, Some(0));
        let order = p.order.expect("an order");
        // Due day 0, lead time 3: order by day −3, i.e. 4 days late on day 1.
        assert_eq!(order.order_by_day, -3);
        assert_eq!(order.late_by_days, 4);
        // 600,000 physical; 1,000,000 in all, the other 400,000 may be contracted.
        assert_eq!(order.physical_tests, 600_000);
        assert_eq!(order.other_tests, 400_000);
    }

    #[test]
    fn swabs_run_out_and_are_reordered() {
        // 100,000 people a round at 10:1, p = 0: 100,000 swabs and 10,000 pool tubes a
        // round, a round every day for 5 days. 250,000 swabs last 2 days; day 3 cannot
        // be covered. To last 5 days: 500,000 − 250,000 = 250,000 more, by day 3 − 3 = 0.
        let schedule = Schedule {
            horizon_days: 5,
            full_rounds: FullRounds::Every {
                every_days: 1,
                first_day: 1,
            },
            ..Schedule::default()
        };
        let stock = Stock {
            swabs: Some(250_000),
            pool_tubes: Some(1_000_000),
            ..Stock::default()
        };
        let p = project(&schedule, &city(100_000), &stock, &Assay::PERFECT);
        let swabs = &p.consumables[0];
        assert_eq!(swabs.runs_out_day, Some(3));
        assert_eq!(swabs.order_quantity, 250_000);
        assert_eq!(swabs.order_by_day, Some(0));
        let pools = &p.consumables[1];
        assert_eq!(pools.item, "pool_tubes");
        assert_eq!(pools.runs_out_day, None);
        assert_eq!(pools.order_quantity, 0);
    }

    fn reorder_key(p: &Projection) -> i64 {
        p.order.as_ref().map_or(i64::MAX, |o| o.order_by_day)
    }

    proptest! {
        #[test]
        fn more_stock_never_moves_the_reorder_day_earlier(
            people in 1u64..5_000_000,
            pool in prop::sample::select(vec![1u8, 5, 10, 20]),
            prevalence in 0.0f64..0.05,
            every in 1u32..15,
            routine_people in 0u64..200_000,
            physical in 0u64..100_000_000,
            confirmed in 0u64..50_000_000,
            more_physical in 0u64..50_000_000,
            more_confirmed in 0u64..50_000_000,
            lead in 0u32..15,
        ) {
            let round = Demand::of(&[Group {
                name: "z".into(),
                people,
                tubing: Tubing::Pooled { pool_size: pool },
                prevalence,
            }]);
            let schedule = Schedule {
                horizon_days: 60,
                full_rounds: FullRounds::Every { every_days: every, first_day: 1 },
                routine: vec![routine(routine_people, Tubing::Single, prevalence, Frequency::TwiceWeekly)],
                ..Schedule::default()
            };
            let stock = |p: u64, c: u64| Stock {
                physical_tests: p,
                contracts: vec![Contract { name: "c".into(), tests: c, confirmed: true }],
                order_lead_days: lead,
                ..Stock::default()
            };
            let before = project(&schedule, &round, &stock(physical, confirmed), &Assay::PERFECT);
            let after = project(
                &schedule,
                &round,
                &stock(physical + more_physical, confirmed + more_confirmed),
                &Assay::PERFECT,
            );
            prop_assert!(reorder_key(&after) >= reorder_key(&before));
            let later = |a: Option<u32>, b: Option<u32>| a.unwrap_or(u32::MAX) >= b.unwrap_or(u32::MAX);
            prop_assert!(later(after.physical_under_day, before.physical_under_day));
            prop_assert!(later(after.total_under_day, before.total_under_day));
        }
    }
}
