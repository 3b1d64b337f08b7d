//! The plan file's spanned TOML tree, read key by key: each value knows its line and
//! full key, its typed getters say what they found when they refuse it, and each table
//! marks the keys taken so that it can refuse the rest.

use std::cell::Cell;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::suggest::{distance, is_near};
use super::{PlanError, Res};
use crate::planner::calendar::Date;

pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count()
}

/// A value in the document with its full key and position.
pub(super) struct Val<'a> {
    pub(super) text: &'a str,
    pub(super) path: String,
    pub(super) span: Range<usize>,
    value: &'a DeValue<'a>,
}

impl<'a> Val<'a> {
    pub(super) fn err(&self, message: impl Into<String>) -> PlanError {
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

    pub(super) fn integer(&self) -> Res<i128> {
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
    pub(super) fn count(&self, min: u64, max: u64) -> Res<u64> {
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

    pub(super) fn count_u32(&self, min: u64, max: u32) -> Res<u32> {
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
    pub(super) fn number_in(&self, lo: f64, hi: f64, open_lo: bool, why: &str) -> Res<f64> {
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

    pub(super) fn string(&self) -> Res<&'a str> {
        match self.value {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.expected("a string in quotes")),
        }
    }

    pub(super) fn boolean(&self) -> Res<bool> {
        match self.value {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(self.expected("true or false")),
        }
    }

    pub(super) fn date(&self) -> Res<Date> {
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

    pub(super) fn table(&self) -> Res<Tab<'a>> {
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

    pub(super) fn array(&self) -> Res<Vec<Val<'a>>> {
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
    pub(super) fn tables(&self) -> Res<Vec<Tab<'a>>> {
        match self.value {
            DeValue::Table(_) => Ok(vec![self.table()?]),
            _ => self.array()?.iter().map(Val::table).collect(),
        }
    }
}

/// A table being read: each key taken is marked, and [`Tab::finish`] refuses the rest.
pub(super) struct Tab<'a> {
    text: &'a str,
    pub(super) path: String,
    pub(super) line: Option<usize>,
    entries: Vec<(
        &'a Spanned<std::borrow::Cow<'a, str>>,
        &'a Spanned<DeValue<'a>>,
    )>,
    used: Vec<Cell<bool>>,
}

impl<'a> Tab<'a> {
    pub(super) fn new(
        text: &'a str,
        path: String,
        line: Option<usize>,
        t: &'a DeTable<'a>,
    ) -> Tab<'a> {
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

    pub(super) fn get(&self, key: &str) -> Option<Val<'a>> {
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

    /// Every entry of the table, in the file's order, each marked as read: for tables
    /// whose keys are data (`pool_sensitivity = { 5 = 0.96, 10 = 0.95 }`).
    pub(super) fn entries(&self) -> Vec<(String, Val<'a>)> {
        self.used.iter().for_each(|u| u.set(true));
        let mut out: Vec<(String, Val<'a>)> = self
            .entries
            .iter()
            .map(|(k, v)| {
                (
                    k.get_ref().to_string(),
                    Val {
                        text: self.text,
                        path: self.key(k.get_ref()),
                        span: v.span(),
                        value: v.get_ref(),
                    },
                )
            })
            .collect();
        out.sort_by_key(|(_, v)| v.span.start);
        out
    }

    /// A required key is absent. When a key nobody has read is a near miss of it (a
    /// typo such as `peeople`), that key is the error: "unknown key `peeople`; did you
    /// mean `people`?", on its line.
    pub(super) fn missing(&self, key: &str, hint: &str) -> PlanError {
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

    pub(super) fn req(&self, key: &str, hint: &str) -> Res<Val<'a>> {
        self.get(key).ok_or_else(|| self.missing(key, hint))
    }

    /// Refuses keys nobody asked for, the first in the file first.
    pub(super) fn finish(&self, allowed: &[&str]) -> Res<()> {
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
