//! The plan file: a TOML description of a city's population, labs, sampling, stock
//! and schedule, read into a [`Plan`].
//!
//! The file is parsed with `toml`'s spanned document tree and read key by key, so
//! every problem is reported with the line it is on and the full key
//! (`zone[2].pool_size`: the second `[[zone]]` table, counted from 1). Unknown keys
//! are refused too: a misspelt `pool_sise` would otherwise silently fall back to a
//! default. Values are checked for what they can mean: counts are whole numbers ≥ 0,
//! a pool holds 1–20 people (5, 10 and 20 being the only validated sizes: others are
//! accepted with a warning), prevalence and shares are 0–1, hours are within a day.
//!
//! See `testdata/plan_pass.toml` for an annotated example of every key.
//!
//! The reading is split by job: `document` walks the spanned tree (typed values that
//! name their line and key when refused, tables that refuse keys nobody read),
//! `suggest` guesses which key a typo meant, `sections` reads the root keys, labs,
//! sampling and reagents, `groups` the zones and routine groups, `schedule` the
//! schedule, and `assay` the test's accuracy and the advisor's rules. This file holds
//! what the rest of the planner sees: [`Plan`] and [`PlanError`].

mod assay;
mod document;
mod groups;
mod schedule;
mod sections;
mod suggest;

use std::fmt;
use std::path::Path;

use serde::Serialize;
use toml::de::DeTable;

use super::assay::Assay;
use super::capacity::Lab;
use super::demand::Group;
use super::projection::Schedule;
use super::reagent::Stock;
use super::sampling::SamplingPlan;
use crate::{Error, Result};
use document::{Tab, line_at};
use sections::read_plan;

/// The validated pool sizes (混采 5合1, 10合1, 20合1).
pub(crate) const VALIDATED_POOL_SIZES: [u8; 3] = [5, 10, 20];
/// The most people a plan may hold in one zone or group (above the world's population).
const MAX_PEOPLE: u64 = 10_000_000_000;
/// The most tests, swabs or tubes a stock figure may hold.
const MAX_STOCK: u64 = 1_000_000_000_000;
/// The most instruments of one kind in one lab.
const MAX_INSTRUMENTS: u64 = 1_000_000;
/// The most samples one run may hold.
const MAX_SAMPLES_PER_RUN: u64 = 1_000_000;
/// The longest projection.
const MAX_HORIZON: u64 = 3_650;

/// What the advisor requires of a scheme, from the plan's `[advisor]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdvisorRules {
    /// The least sensitivity a recommended scheme may have (default 0.90).
    pub sensitivity_floor: f64,
    /// Clock hours from a positive tube's result to its people's new tubes in the lab:
    /// report, recall, swab, carry (default 4).
    pub recall_hours: f64,
}

impl Default for AdvisorRules {
    fn default() -> Self {
        AdvisorRules {
            sensitivity_floor: 0.90,
            recall_hours: 4.0,
        }
    }
}

/// A city's plan, as read from the plan file.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The plan's name.
    pub name: String,
    /// Clock hours a full round must finish in.
    pub deadline_hours: f64,
    /// The population by zone.
    pub zones: Vec<Group>,
    /// The labs.
    pub labs: Vec<Lab>,
    /// Staffed hours of a lab that does not say (default 18).
    pub staffed_hours: f64,
    /// Sampling norms and resources.
    pub sampling: SamplingPlan,
    /// Reagent and consumable stock.
    pub stock: Stock,
    /// The schedule.
    pub schedule: Schedule,
    /// The test's sensitivity and specificity (a perfect test when the plan states
    /// none).
    pub assay: Assay,
    /// What the pool design advisor requires of a scheme.
    pub advisor: AdvisorRules,
    /// Things accepted but worth a second look.
    pub warnings: Vec<String>,
}

impl Plan {
    /// People in all zones.
    pub fn people(&self) -> u64 {
        self.zones
            .iter()
            .fold(0u64, |a, z| a.saturating_add(z.people))
    }

    /// Reads and checks a plan file. A missing or unreadable file is an I/O error; a
    /// file that is not a valid plan is [`Error::Input`] naming the line and key.
    pub fn load(path: &Path) -> Result<Plan> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::input(path, "the plan file is not UTF-8 text"))?;
        Plan::parse(&text).map_err(|e| Error::input(path, e.to_string()))
    }

    /// Parses and checks plan text.
    ///
    /// ```
    /// use pooltrack::planner::config::Plan;
    /// let plan = Plan::parse(r#"
    ///     [[zone]]
    ///     name = "city"
    ///     people = 1_000_000
    ///     mode = "pooled"
    ///     pool_size = 10
    ///     prevalence = 0.001
    ///
    ///     [[lab]]
    ///     name = "central"
    ///     extraction = { instruments = 4, samples_per_run = 94, minutes_per_run = 40 }
    ///     pcr = { instruments = 8, samples_per_run = 94, minutes_per_run = 90 }
    ///
    ///     [reagents]
    ///     physical_tests = 2_000_000
    /// "#).unwrap();
    /// assert_eq!(plan.people(), 1_000_000);
    /// assert_eq!(plan.labs[0].staffed_hours, 18.0);
    ///
    /// let err = Plan::parse("[[zone]]\nname = \"a\"\npeople = -5\n").unwrap_err();
    /// assert_eq!(err.to_string(), "line 3: zone[1].people: must not be negative (found -5)");
    /// ```
    pub fn parse(text: &str) -> std::result::Result<Plan, PlanError> {
        let doc = DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start));
            PlanError {
                line,
                key: String::new(),
                message: format!("not valid TOML: {}", e.message()),
            }
        })?;
        let root = Tab::new(text, String::new(), None, doc.get_ref());
        read_plan(&root)
    }
}

/// A problem in a plan file: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The line (1-based), when the problem has one.
    pub line: Option<usize>,
    /// The full key, e.g. `lab[2].pcr.instruments` (empty for a syntax error).
    pub key: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanError {}

type Res<T> = std::result::Result<T, PlanError>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(super) const MINIMAL: &str = r#"
[[zone]]
name = "city"
people = 1_000_000
mode = "pooled"
pool_size = 10
prevalence = 0.001

[[lab]]
name = "central"
extraction = { instruments = 4, samples_per_run = 94, minutes_per_run = 40 }
pcr = { instruments = 8, samples_per_run = 94, minutes_per_run = 90 }

[reagents]
physical_tests = 2_000_000
"#;

    pub(super) fn err(text: &str) -> String {
        Plan::parse(text).expect_err("a bad plan").to_string()
    }

    #[test]
    fn every_kind_of_problem_names_its_line_and_key() {
        let cases = [
            (
                MINIMAL.replace("pool_size = 10", "pool_size = 30"),
                "line 6: zone[1].pool_size: 30 is outside 1–20: a pool tube holds 1 to 20 people, and only 5, 10 and 20 are validated pool sizes",
            ),
            (
                MINIMAL.replace("pool_size = 10", "pool_size = 0"),
                "line 6: zone[1].pool_size: 0 is outside 1–20",
            ),
            (
                MINIMAL.replace("instruments = 8", "instruments = -2"),
                "line 12: lab[1].pcr.instruments: must not be negative (found -2)",
            ),
            (
                MINIMAL.replace("prevalence = 0.001", "prevalence = 1.5"),
                "line 7: zone[1].prevalence: 1.5 is outside 0–1: the expected share infected",
            ),
            (
                MINIMAL.replace("prevalence = 0.001", "prevalence = -0.1"),
                "line 7: zone[1].prevalence: must not be negative (found -0.1)",
            ),
            (
                MINIMAL.replace("people = 1_000_000", "people = \"lots\""),
                "line 4: zone[1].people: expected a whole number, found the string \"lots\"",
            ),
            (
                MINIMAL.replace("pool_size = 10", "pool_sise = 10"),
                "line 6: zone[1]: unknown key `pool_sise`; did you mean `pool_size`?",
            ),
            (
                MINIMAL.replace("prevalence = 0.001", "prevalence = 0.001\npool_sise = 3"),
                "line 8: zone[1]: unknown key `pool_sise`; did you mean `pool_size`? the keys here are: name, people",
            ),
            (
                MINIMAL.replace("mode = \"pooled\"", "mode = \"mixed\""),
                "line 5: zone[1].mode: unknown mode \"mixed\"",
            ),
            (
                MINIMAL.replace("physical_tests = 2_000_000", "physical_tests = 2_000_000.5"),
                "line 15: reagents.physical_tests: expected a whole number, found the number",
            ),
            (
                MINIMAL.replace("[reagents]\nphysical_tests = 2_000_000\n", ""),
                "reagents: missing: a plan needs a [reagents] table",
            ),
            (
                MINIMAL.replace(
                    "name = \"central\"\n",
                    "name = \"central\"\nstaffed_hours = 25\n",
                ),
                "line 11: lab[1].staffed_hours: must be more than 0 and at most 24 (found 25)",
            ),
            (
                MINIMAL.replace("minutes_per_run = 90", "minutes_per_run = 0"),
                "line 12: lab[1].pcr.minutes_per_run: must be more than 0 and at most 10080 (found 0)",
            ),
            (
                format!("{MINIMAL}[schedule]\nfull_rounds = {{ dates = [2022-04-05] }}\n"),
                "line 17: schedule.full_rounds.dates: dates need schedule.start",
            ),
            (
                format!("{MINIMAL}[schedule]\nstart = 1850-01-01\n"),
                "line 17: schedule.start: expected a date like 2022-04-04",
            ),
            (
                format!(
                    "{MINIMAL}[[schedule.routine]]\nname = \"x\"\npeople = 5\nmode = \"single\"\nfrequency = \"hourly\"\n"
                ),
                "line 20: schedule.routine[1].frequency: unknown frequency \"hourly\"",
            ),
            (
                format!("{MINIMAL}[[reagents.contract]]\ntests = 5\n"),
                "line 16: reagents.contract[1].confirmed: missing: true when confirmed",
            ),
            ("[[zone]\nname = 1".to_owned(), "line 1: not valid TOML"),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.starts_with(want), "got:  {got}\nwant: {want}…");
        }
    }

    #[test]
    fn the_example_plans_parse() {
        for name in ["plan_pass.toml", "plan_fail.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata")
                .join(name);
            let plan = Plan::load(&path);
            assert!(plan.is_ok(), "{name}: {:?}", plan.err());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn no_text_makes_the_reader_panic(text in "\\PC{0,400}") {
            let _ = Plan::parse(&text);
        }

        #[test]
        fn no_damage_to_a_valid_plan_makes_it_panic(
            cut in 0usize..400,
            insert in "[\\[\\]{}=\"'.,0-9a-z_ \\n-]{0,12}",
        ) {
            let mut text = MINIMAL.to_owned();
            let at = (0..=cut.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.insert_str(at, &insert);
            if let Err(e) = Plan::parse(&text) {
                prop_assert!(!e.message.is_empty());
            }
        }

        #[test]
        fn any_number_anywhere_is_read_or_refused(
            key in prop::sample::select(vec![
                "people = 1_000_000", "pool_size = 10", "prevalence = 0.001",
                "instruments = 4", "samples_per_run = 94", "minutes_per_run = 40",
                "physical_tests = 2_000_000",
            ]),
            value in prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|x| format!("{x:?}")),
                Just("inf".to_owned()), Just("-inf".to_owned()), Just("nan".to_owned()),
                Just("0x7fffffffffffffff".to_owned()), Just("99999999999999999999".to_owned()),
            ],
        ) {
            let name = key.split(" = ").next().unwrap_or_default();
            let text = MINIMAL.replacen(key, &format!("{name} = {value}"), 1);
            match Plan::parse(&text) {
                Ok(p) => prop_assert!(p.people() <= MAX_PEOPLE),
                Err(e) => prop_assert!(e.line.is_some(), "{e}"),
            }
        }
    }
}
