//! The two coverage worklists' rows and how they are written (CSV, JSON, Parquet).

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde::Serialize;

use crate::Result;
use crate::output::ListRow;
use crate::time::Millis;

/// A registered person with no tube in the round: who the field team must find.
///
/// ```
/// use pooltrack::coverage::UntestedPerson;
/// let p = UntestedPerson {
///     person: "110101199001011234".into(),
///     district: "Chaoyang".into(),
///     community: "Sanlitun".into(),
///     group: String::new(),
/// };
/// assert_eq!(p.district, "Chaoyang");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UntestedPerson {
    /// Person id.
    pub person: String,
    /// District, from the latest registration stating one (empty when none does).
    pub district: String,
    /// Community, from the latest registration stating one (empty when none does).
    pub community: String,
    /// Key group, from the latest registration stating one (empty when none does).
    pub group: String,
}

/// A person tested in the round who is not in the population register: kept and
/// listed, so the register can be corrected (a visitor, a typo in an id).
///
/// ```
/// use pooltrack::coverage::UnregisteredPerson;
/// let p = UnregisteredPerson::new("visitor-1", "PL0001", "S-01", 1_648_854_000_000, "2022-04-02T07:00:00+08:00");
/// assert_eq!(p.tube, "PL0001");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnregisteredPerson {
    /// Person id.
    pub person: String,
    /// Their first tube in the round.
    pub tube: String,
    /// Its sampling site (empty when none).
    pub site: String,
    /// When they were swabbed into it (RFC 3339, store zone).
    pub collected_at: String,
    #[serde(skip)]
    collected_ms: Millis,
}

impl UnregisteredPerson {
    /// A row; `collected_ms` is the time `collected_at` shows, for Parquet output.
    pub fn new(
        person: &str,
        tube: &str,
        site: &str,
        collected_ms: Millis,
        collected_at: &str,
    ) -> Self {
        UnregisteredPerson {
            person: person.to_owned(),
            tube: tube.to_owned(),
            site: site.to_owned(),
            collected_at: collected_at.to_owned(),
            collected_ms,
        }
    }
}

fn text<R>(rows: &[R], f: impl Fn(&R) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}

fn optional<R>(rows: &[R], f: impl Fn(&R) -> &str) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(|r| Some(f(r)).filter(|s| !s.is_empty()))
            .collect::<StringArray>(),
    )
}

impl ListRow for UntestedPerson {
    const HEADER: &'static [&'static str] = &["person", "district", "community", "group"];

    fn record_batch(rows: &[Self]) -> Result<RecordBatch> {
        let schema = Schema::new(vec![
            Field::new("person", DataType::Utf8, false),
            Field::new("district", DataType::Utf8, true),
            Field::new("community", DataType::Utf8, true),
            Field::new("group", DataType::Utf8, true),
        ]);
        let columns = vec![
            text(rows, |r| &r.person),
            optional(rows, |r| &r.district),
            optional(rows, |r| &r.community),
            optional(rows, |r| &r.group),
        ];
        Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
    }
}

impl ListRow for UnregisteredPerson {
    const HEADER: &'static [&'static str] = &["person", "tube", "site", "collected_at"];

    fn record_batch(rows: &[Self]) -> Result<RecordBatch> {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Schema::new(vec![
            Field::new("person", DataType::Utf8, false),
            Field::new("tube", DataType::Utf8, false),
            Field::new("site", DataType::Utf8, true),
            Field::new("collected_at", ts, false),
        ]);
        let columns = vec![
            text(rows, |r| &r.person),
            text(rows, |r| &r.tube),
            optional(rows, |r| &r.site),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.collected_ms))
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ];
        Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
    }
}
