//! Calendar days for the schedule: a plan's start date, dated full rounds, weekdays
//! for twice-weekly, weekly and working-day testing.
//!
//! A [`Date`] is a count of days since 1970-01-01 (proleptic Gregorian), so adding
//! days and finding the weekday are integer arithmetic.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::time::{civil_from_days, days_from_civil, days_in_month};

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i64,
}

impl Date {
    /// A date from year, month and day, if it exists (years 1900–2199).
    ///
    /// ```
    /// use pooltrack::planner::calendar::Date;
    /// assert!(Date::from_ymd(2022, 2, 29).is_none());
    /// assert_eq!(Date::from_ymd(2022, 4, 4).unwrap().to_string(), "2022-04-04");
    /// ```
    pub fn from_ymd(year: i64, month: i64, day: i64) -> Option<Date> {
        let days_in_month = u8::try_from(month).map_or(0, |m| days_in_month(year, m));
        if !(1900..=2199).contains(&year) || day < 1 || day > i64::from(days_in_month) {
            return None;
        }
        Some(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Parses `YYYY-MM-DD`.
    ///
    /// ```
    /// use pooltrack::planner::calendar::Date;
    /// assert_eq!(Date::parse("2022-04-04"), Date::from_ymd(2022, 4, 4));
    /// assert_eq!(Date::parse("2022-4-4"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        Date::from_ymd(num(0..4)?, num(5..7)?, num(8..10)?)
    }

    /// The date `n` days later (earlier for negative `n`).
    ///
    /// ```
    /// use pooltrack::planner::calendar::Date;
    /// let d = Date::from_ymd(2022, 4, 4).unwrap();
    /// assert_eq!(d.add_days(27).to_string(), "2022-05-01");
    /// assert_eq!(d.add_days(-4).to_string(), "2022-03-31");
    /// ```
    #[must_use]
    pub fn add_days(self, n: i64) -> Date {
        Date {
            days: self.days.saturating_add(n),
        }
    }

    /// Days from `earlier` to `self`.
    pub(crate) fn days_since(self, earlier: Date) -> i64 {
        self.days - earlier.days
    }

    /// Day of the week, 0 = Monday … 6 = Sunday.
    ///
    /// ```
    /// use pooltrack::planner::calendar::Date;
    /// assert_eq!(Date::from_ymd(2022, 4, 4).unwrap().weekday(), 0); // a Monday
    /// ```
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (3 counting from Monday = 0).
        u32::try_from((self.days + 3).rem_euclid(7)).unwrap_or(0)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.days);
        let (m, d) = (i64::from(m), i64::from(d));
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_of_two_centuries() {
        let mut d = Date::from_ymd(1900, 1, 1).expect("valid");
        let end = Date::from_ymd(2199, 12, 31).expect("valid");
        let mut weekday = d.weekday();
        assert_eq!(weekday, 0, "1900-01-01 was a Monday");
        while d <= end {
            let s = d.to_string();
            assert_eq!(Date::parse(&s), Some(d), "{s}");
            assert_eq!(d.weekday(), weekday);
            weekday = (weekday + 1) % 7;
            d = d.add_days(1);
        }
    }

    #[test]
    fn refuses_impossible_dates() {
        for s in [
            "2022-13-01",
            "2022-04-31",
            "2100-02-29",
            "abcd-01-01",
            "2022-04-0x",
            "",
        ] {
            assert_eq!(Date::parse(s), None, "{s}");
        }
        assert!(Date::parse("2000-02-29").is_some());
    }
}
