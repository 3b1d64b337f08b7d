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

use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::calendar::Date;
use super::capacity::{Lab, Stage, StageKind};
use super::demand::{Demand, Group, Tubing};
use super::projection::{Frequency, FullRounds, Routine, Schedule};
use super::reagent::{Contract, Stock};
use super::sampling::SamplingPlan;
use crate::{Error, Result};

/// The validated pool sizes (混采 5合1, 10合1, 20合1).
pub const VALIDATED_POOL_SIZES: [u8; 3] = [5, 10, 20];
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

fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// A value in the document with its full key and position.
struct Val<'a> {
    text: &'a str,
    path: String,
    span: Range<usize>,
    value: &'a DeValue<'a>,
}

impl<'a> Val<'a> {
    fn err(&self, message: impl Into<String>) -> PlanError {
        PlanError {
            line: Some(line_at(self.text, self.span.start)),
            key: self.path.clone(),
            message: message.into(),
        }
    }

    fn found(&self) -> String {
        match self.value {
            DeValue::String(s) => format!("the string {s:?}"),
            DeValue::Integer(i) => format!("the whole number {i}"),
            DeValue::Float(x) => format!("the number {x}"),
            DeValue::Boolean(b) => format!("{b}"),
            DeValue::Datetime(d) => format!("the date/time {d}"),
            DeValue::Array(_) => "a list".to_owned(),
            DeValue::Table(_) => "a table".to_owned(),
        }
    }

    fn expected(&self, what: &str) -> PlanError {
        self.err(format!("expected {what}, found {}", self.found()))
    }

    fn integer(&self) -> Res<i128> {
        match self.value {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| self.err(format!("the number {i} is too large"))),
            DeValue::Float(x) => {
                let v: f64 = x.as_str().parse().unwrap_or(f64::NAN);
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
                    // A whole float (2.0) is a count written with a point: accept it.
                    // In range and whole: the conversion is exact.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(v as i128)
                } else {
                    Err(self.expected("a whole number"))
                }
            }
            _ => Err(self.expected("a whole number")),
        }
    }

    /// A whole number from `min` to `max`.
    fn count(&self, min: u64, max: u64) -> Res<u64> {
        let n = self.integer()?;
        if n < 0 {
            return Err(self.err(format!("must not be negative (found {n})")));
        }
        let n = u64::try_from(n).map_err(|_| self.err(format!("is too large (at most {max})")))?;
        if n < min {
            return Err(self.err(format!("must be at least {min} (found {n})")));
        }
        if n > max {
            return Err(self.err(format!("is too large: at most {max} (found {n})")));
        }
        Ok(n)
    }

    fn count_u32(&self, min: u64, max: u32) -> Res<u32> {
        let n = self.count(min, u64::from(max))?;
        u32::try_from(n).map_err(|_| self.err(format!("is too large (at most {max})")))
    }

    fn number(&self) -> Res<f64> {
        let v = match self.value {
            DeValue::Integer(_) => {
                let n = self.integer()?;
                // Within ±2^63: f64 rounding of a plan figure that large is harmless.
                #[allow(clippy::cast_precision_loss)]
                let v = n as f64;
                v
            }
            DeValue::Float(x) => x.as_str().parse().unwrap_or(f64::NAN),
            _ => return Err(self.expected("a number")),
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(format!("must be a finite number (found {})", self.found())))
        }
    }

    /// A number in `lo..=hi` (or `lo < x` when `open_lo`), with `why` saying what it is.
    fn number_in(&self, lo: f64, hi: f64, open_lo: bool, why: &str) -> Res<f64> {
        let v = self.number()?;
        let below = if open_lo { v <= lo } else { v < lo };
        if v < 0.0 && lo >= 0.0 {
            return Err(self.err(format!("must not be negative (found {v}): {why}")));
        }
        if below || v > hi {
            return Err(self.err(if open_lo {
                format!("must be more than {lo} and at most {hi} (found {v}): {why}")
            } else {
                format!("{v} is outside {lo}–{hi}: {why}")
            }));
        }
        Ok(v)
    }

    fn string(&self) -> Res<&'a str> {
        match self.value {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.expected("a string in quotes")),
        }
    }

    fn boolean(&self) -> Res<bool> {
        match self.value {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(self.expected("true or false")),
        }
    }

    fn date(&self) -> Res<Date> {
        let date = match self.value {
            DeValue::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                d.date.and_then(|d| {
                    Date::from_ymd(i64::from(d.year), i64::from(d.month), i64::from(d.day))
                })
            }
            DeValue::String(s) => Date::parse(s),
            _ => None,
        };
        date.ok_or_else(|| self.expected("a date like 2022-04-04 (years 1900–2199)"))
    }

    fn table(&self) -> Res<Tab<'a>> {
        match self.value {
            DeValue::Table(t) => Ok(Tab::new(
                self.text,
                self.path.clone(),
                Some(line_at(self.text, self.span.start)),
                t,
            )),
            _ => Err(self.expected("a table")),
        }
    }

    fn array(&self) -> Res<Vec<Val<'a>>> {
        match self.value {
            DeValue::Array(a) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, v)| Val {
                    text: self.text,
                    path: format!("{}[{}]", self.path, i + 1),
                    span: v.span(),
                    value: v.get_ref(),
                })
                .collect()),
            _ => Err(self.expected("a list")),
        }
    }

    /// A list of tables (`[[zone]]`), also accepting a single table.
    fn tables(&self) -> Res<Vec<Tab<'a>>> {
        match self.value {
            DeValue::Table(_) => Ok(vec![self.table()?]),
            _ => self.array()?.iter().map(Val::table).collect(),
        }
    }
}

/// A table being read: each key taken is marked, and [`Tab::finish`] refuses the rest.
struct Tab<'a> {
    text: &'a str,
    path: String,
    line: Option<usize>,
    entries: Vec<(
        &'a Spanned<std::borrow::Cow<'a, str>>,
        &'a Spanned<DeValue<'a>>,
    )>,
    used: Vec<Cell<bool>>,
}

impl<'a> Tab<'a> {
    fn new(text: &'a str, path: String, line: Option<usize>, t: &'a DeTable<'a>) -> Tab<'a> {
        let entries: Vec<_> = t.iter().collect();
        let used = entries.iter().map(|_| Cell::new(false)).collect();
        Tab {
            text,
            path,
            line,
            entries,
            used,
        }
    }

    fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<Val<'a>> {
        let i = self.entries.iter().position(|(k, _)| k.get_ref() == key)?;
        self.used[i].set(true);
        let v = self.entries[i].1;
        Some(Val {
            text: self.text,
            path: self.key(key),
            span: v.span(),
            value: v.get_ref(),
        })
    }

    /// A required key is absent. When a key nobody has read is a near miss of it (a
    /// typo such as `peeople`), that key is the error: "unknown key `peeople`; did you
    /// mean `people`?", on its line.
    fn missing(&self, key: &str, hint: &str) -> PlanError {
        let near = self
            .entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !u.get())
            .map(|(e, _)| e.0)
            .filter(|k| is_near(k.get_ref(), key))
            .min_by_key(|k| k.span().start);
        if let Some(k) = near {
            return PlanError {
                line: Some(line_at(self.text, k.span().start)),
                key: self.path.clone(),
                message: format!("unknown key `{}`; did you mean `{key}`?", k.get_ref()),
            };
        }
        PlanError {
            line: self.line,
            key: self.key(key),
            message: format!("missing: {hint}"),
        }
    }

    fn req(&self, key: &str, hint: &str) -> Res<Val<'a>> {
        self.get(key).ok_or_else(|| self.missing(key, hint))
    }

    /// Refuses keys nobody asked for, the first in the file first.
    fn finish(&self, allowed: &[&str]) -> Res<()> {
        let unknown = self
            .entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !u.get())
            .map(|(e, _)| e.0)
            .min_by_key(|k| k.span().start);
        match unknown {
            None => Ok(()),
            Some(k) => {
                let name = k.get_ref();
                let guess = allowed
                    .iter()
                    .filter(|a| is_near(name, a))
                    .min_by_key(|a| distance(name, a))
                    .map(|a| format!(" did you mean `{a}`?"))
                    .unwrap_or_default();
                Err(PlanError {
                    line: Some(line_at(self.text, k.span().start)),
                    key: self.path.clone(),
                    message: format!(
                        "unknown key `{name}`;{guess} the keys here are: {}",
                        allowed.join(", ")
                    ),
                })
            }
        }
    }
}

/// Whether `typed` looks like a slip of `known`: a few letters added, dropped, changed
/// or swapped (about one in three), or another case.
fn is_near(typed: &str, known: &str) -> bool {
    if typed == known {
        return false;
    }
    let d = distance(&typed.to_ascii_lowercase(), &known.to_ascii_lowercase());
    d <= (known.chars().count() / 3).max(1)
}

/// Edit distance counting an insertion, deletion, substitution or swap of two
/// neighbouring characters as one edit (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

const ROOT_KEYS: [&str; 9] = [
    "name",
    "deadline_hours",
    "staffed_hours",
    "zone",
    "lab",
    "sampling",
    "reagents",
    "schedule",
    "warnings_are_errors",
];

fn read_plan(root: &Tab<'_>) -> Res<Plan> {
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
        warnings,
    })
}

const ZONE_KEYS: [&str; 6] = [
    "name",
    "people",
    "mode",
    "pool_size",
    "household_size",
    "prevalence",
];

/// Reads a zone, or a routine group (`frequency`/`share` are read by the caller);
/// `default_prevalence` is `Some` for routine groups, which may leave it out.
fn read_group(
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
                super::numbers::f(n)
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

const SCHEDULE_KEYS: [&str; 5] = [
    "start",
    "horizon_days",
    "full_rounds",
    "routine",
    "routine_on_round_days",
];
const FULL_ROUND_KEYS: [&str; 4] = ["every_days", "first_day", "days", "dates"];
const ROUTINE_KEYS: [&str; 8] = [
    "name",
    "people",
    "mode",
    "pool_size",
    "household_size",
    "prevalence",
    "frequency",
    "share",
];

fn read_schedule(t: &Tab<'_>, city_prevalence: f64, warnings: &mut Vec<String>) -> Res<Schedule> {
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
    use proptest::prelude::*;

    const MINIMAL: &str = r#"
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

    fn err(text: &str) -> String {
        Plan::parse(text).expect_err("a bad plan").to_string()
    }

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
