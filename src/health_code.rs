//! Health codes: the color each person's code shows after a round, with the tube and
//! result that decided it, so an appeal of a yellow or red code can be answered.
//!
//! - **red**: `positive`;
//! - **yellow**: `recall`, `retest_pending`, `resample`, and `untested` (registered but
//!   no tube in the round: they missed a required test);
//! - **green**: `negative`, and `pending` (a tube is collected and its result is not in
//!   yet: a code does not turn yellow for the lab's delay, DOMAIN "Green: otherwise").

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use rayon::prelude::*;
use serde::Serialize;

use crate::coverage::Coverage;
use crate::model::Status;
use crate::output::{self, Format, ListRow};
use crate::store::{Store, fsutil};
use crate::text::text_at;
use crate::time;
use crate::tracker::{NONE, PersonStatus, Round};
use crate::worklist::RowText;
use crate::{Error, Result};

/// A health-code color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Color {
    /// Confirmed positive.
    Red,
    /// Must act: re-swab, retest, or get tested.
    Yellow,
    /// Nothing to do.
    Green,
}

impl Color {
    /// The color for a status.
    ///
    /// ```
    /// use pooltrack::health_code::Color;
    /// use pooltrack::model::Status;
    /// assert_eq!(Color::of(Status::Positive), Color::Red);
    /// assert_eq!(Color::of(Status::Recall), Color::Yellow);
    /// assert_eq!(Color::of(Status::Pending), Color::Green);
    /// ```
    pub fn of(status: Status) -> Color {
        match status {
            Status::Positive => Color::Red,
            Status::Recall | Status::RetestPending | Status::Resample => Color::Yellow,
            Status::Pending | Status::Negative => Color::Green,
        }
    }

    /// The word used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Yellow => "yellow",
            Color::Green => "green",
        }
    }
}

/// Health-code colors after a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Positive.
    pub red: u64,
    /// Recalled, retest pending, resample, and untested (registered, no tube).
    pub yellow: u64,
    /// Negative or pending.
    pub green: u64,
    /// Of the yellow codes, registered persons with no tube (0 without a register).
    pub untested_yellow: u64,
}

impl Tally {
    /// Tallies the decided persons' colors, plus `untested` registered persons (yellow).
    pub fn of(persons: &[PersonStatus], untested: u64) -> Tally {
        let mut codes = Tally {
            yellow: untested,
            untested_yellow: untested,
            ..Tally::default()
        };
        for p in persons {
            *match Color::of(p.status) {
                Color::Red => &mut codes.red,
                Color::Yellow => &mut codes.yellow,
                Color::Green => &mut codes.green,
            } += 1;
        }
        codes
    }
}

/// One person's code and the evidence behind it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct HealthCodeRow {
    /// Person id.
    pub person: String,
    /// The code's color.
    pub color: Color,
    /// Their status in the round, or `untested`.
    pub status: &'static str,
    /// The tube that decided it (empty for untested persons).
    pub tube: String,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// When they were swabbed into it.
    pub collected_at: String,
    /// Where the collection row came from: `batch N, FILE line L`.
    pub collection_source: String,
    /// The tube's effective result (empty when none yet).
    pub result: String,
    /// Ct `ORF1ab` of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// When it was reported.
    pub reported_at: String,
    /// The lab and plate that tested it.
    pub lab: String,
    /// The plate.
    pub plate: String,
    /// Where the result row came from: `batch N, FILE line L`.
    pub result_source: String,
}

impl HealthCodeRow {
    /// A row with no tube or result yet.
    fn blank(person: &str, color: Color, status: &'static str) -> HealthCodeRow {
        HealthCodeRow {
            person: person.to_owned(),
            color,
            status,
            tube: String::new(),
            mode: "",
            collected_at: String::new(),
            collection_source: String::new(),
            result: String::new(),
            ct_orf1ab: None,
            ct_n: None,
            reported_at: String::new(),
            lab: String::new(),
            plate: String::new(),
            result_source: String::new(),
        }
    }
}

impl ListRow for HealthCodeRow {
    const HEADER: &'static [&'static str] = &[
        "person",
        "color",
        "status",
        "tube",
        "mode",
        "collected_at",
        "collection_source",
        "result",
        "ct_orf1ab",
        "ct_n",
        "reported_at",
        "lab",
        "plate",
        "result_source",
    ];
}

/// A round's health codes in person-id order, made row by row as they are written:
/// a city's 25 million codes never sit in memory as text at once.
pub struct HealthCodes<'a> {
    round: &'a Round,
    untested: &'a [String],
    /// Entries in person-id order: `i < persons` is `round.persons[i]`, else
    /// `untested[i - persons]`.
    order: Vec<u32>,
}

/// Rows made and written at a time.
const CHUNK: usize = 128 * 1024;

impl<'a> HealthCodes<'a> {
    /// Orders every person of the round and the registered persons `untested` in it by
    /// person id.
    pub fn new(round: &'a Round, untested: &'a [String]) -> Result<HealthCodes<'a>> {
        let total = round.persons.len() + untested.len();
        let last = u32::try_from(total).map_err(|_| {
            Error::Usage(format!(
                "{total} health codes are more than one export holds"
            ))
        })?;
        let mut order: Vec<u32> = (0..last).collect();
        order.par_sort_unstable_by(|&a, &b| {
            HealthCodes::key(round, untested, a).cmp(HealthCodes::key(round, untested, b))
        });
        Ok(HealthCodes {
            round,
            untested,
            order,
        })
    }

    fn key(round: &'a Round, untested: &'a [String], i: u32) -> &'a str {
        let i = i as usize;
        match round.persons.get(i) {
            Some(p) => round.collection(p.row).0,
            None => untested
                .get(i - round.persons.len())
                .map_or("", String::as_str),
        }
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The row of entry `i` (see `order`).
    fn row(&self, i: u32) -> HealthCodeRow {
        let round = self.round;
        let Some(p) = round.persons.get(i as usize) else {
            let person = HealthCodes::key(round, self.untested, i);
            return HealthCodeRow::blank(person, Color::Yellow, "untested");
        };
        let (zone, c, r) = (round.zone, &round.collections, &round.results);
        let row = p.row as usize;
        let (person, tube, _) = round.collection(p.row);
        let mut out = HealthCodeRow::blank(person, Color::of(p.status), p.status.as_str());
        tube.clone_into(&mut out.tube);
        out.mode = round.tubes.mode[round.tube_of_row[row] as usize].as_str();
        out.collected_at = time::format(round.collected_at[row], zone);
        out.collection_source = format!(
            "batch {}, {} line {}",
            c.batch[row],
            text_at(&c.source, row),
            c.line[row]
        );
        let res = round.result_of_row(p.row);
        if res != NONE {
            let i = res as usize;
            let (orf, n) = r.cts(i);
            r.outcome[i].as_str().clone_into(&mut out.result);
            out.ct_orf1ab = orf;
            out.ct_n = n;
            out.reported_at = time::format(r.reported_at[i], zone);
            text_at(&r.lab, i).clone_into(&mut out.lab);
            text_at(&r.plate, i).clone_into(&mut out.plate);
            out.result_source = format!(
                "batch {}, {} line {}",
                r.batch[i],
                text_at(&r.source, i),
                r.line[i]
            );
        }
        out
    }

    /// Calls `f` with the rows in order, a chunk at a time (each chunk made on all cores).
    pub(crate) fn for_each_chunk(
        &self,
        mut f: impl FnMut(&[HealthCodeRow]) -> Result<()>,
    ) -> Result<()> {
        for ids in self.order.chunks(CHUNK) {
            let rows: Vec<HealthCodeRow> = ids.par_iter().map(|&i| self.row(i)).collect();
            f(&rows)?;
        }
        Ok(())
    }

    /// Codes by color.
    pub fn tally(&self) -> Tally {
        Tally::of(&self.round.persons, self.untested.len() as u64)
    }

    /// Writes every code to `path` (CSV, JSON or Parquet), whole or not at all.
    pub fn write_file(&self, format: Format, path: &Path) -> Result<()> {
        fsutil::replace_with(path, |file| {
            let file = self.write_to(format, file, path)?;
            file.sync_all().map_err(|e| Error::io(path, e))
        })
    }

    /// Writes every code to standard output (Parquet only when it is not a terminal).
    pub fn write_stdout(&self, format: Format) -> Result<()> {
        output::refuse_parquet_to_terminal(format)?;
        let out = std::io::BufWriter::new(std::io::stdout());
        self.write_to(format, out, Path::new("<standard output>"))?;
        Ok(())
    }

    /// Writes every code to `out` (flushed), naming `path` in errors; returns `out`.
    fn write_to<W: Write + Send>(&self, format: Format, out: W, path: &Path) -> Result<W> {
        let io = |e: std::io::Error| Error::io(path, e);
        match format {
            Format::Parquet => {
                let schema = schema();
                let mut w = ArrowWriter::try_new(out, schema.clone(), None)
                    .map_err(|e| Error::parquet(path, e))?;
                self.for_each_chunk(|rows| {
                    w.write(&batch(&schema, rows)?)
                        .map_err(|e| Error::parquet(path, e))
                })?;
                let mut out = w.into_inner().map_err(|e| Error::parquet(path, e))?;
                out.flush().map_err(io)?;
                Ok(out)
            }
            Format::Csv => {
                // The header is written by hand so that an empty export has one too.
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(std::io::BufWriter::new(out));
                w.write_record(HealthCodeRow::HEADER)
                    .map_err(|e| io(e.into()))?;
                self.for_each_chunk(|rows| {
                    rows.iter()
                        .try_for_each(|r| w.serialize(r))
                        .map_err(|e| io(e.into()))
                })?;
                w.flush().map_err(io)?;
                let buf = w.into_inner().map_err(|e| io(e.into_error()))?;
                buf.into_inner().map_err(|e| io(e.into_error()))
            }
            Format::Json => {
                let mut w = std::io::BufWriter::new(out);
                w.write_all(b"[").map_err(io)?;
                let mut first = true;
                self.for_each_chunk(|rows| {
                    for r in rows {
                        w.write_all(if first { b"\n" } else { b",\n" })
                            .map_err(io)?;
                        first = false;
                        serde_json::to_writer(&mut w, r).map_err(|e| io(e.into()))?;
                    }
                    Ok(())
                })?;
                w.write_all(b"\n]\n").map_err(io)?;
                w.into_inner().map_err(|e| io(e.into_error()))
            }
        }
    }
}

/// The registered persons with no tube in `round` (their codes are yellow: they missed
/// a required test), or `None` when the store holds no population register.
pub fn untested(store: &Store, round: &str) -> Result<Option<Vec<String>>> {
    if store.manifest().population().next().is_none() {
        return Ok(None);
    }
    let persons = Coverage::compute(store, round)?
        .untested(store)?
        .into_iter()
        .map(|u| u.person)
        .collect();
    Ok(Some(persons))
}

/// Exports the health codes of `round`, the untested registered persons' included, to
/// `out` or else standard output; says on standard error what it wrote, and when there
/// is no register to find the untested in.
pub fn export(store: &Store, round: &str, format: Format, out: Option<&Path>) -> Result<()> {
    let round = Round::load(store, round)?;
    let untested = untested(store, &round.name)?.unwrap_or_else(|| {
        eprintln!(
            "pooltrack: note: no population register, so nobody is listed as untested (pooltrack ingest population FILE)"
        );
        Vec::new()
    });
    let codes = HealthCodes::new(&round, &untested)?;
    let Some(out) = out else {
        return codes.write_stdout(format);
    };
    codes.write_file(format, out)?;
    let Tally {
        red, yellow, green, ..
    } = codes.tally();
    eprintln!(
        "wrote {} health code(s) to {}: {red} red, {yellow} yellow, {green} green",
        codes.len(),
        out.display()
    );
    Ok(())
}

fn schema() -> Arc<Schema> {
    let fields: Vec<Field> = HealthCodeRow::HEADER
        .iter()
        .map(|&name| match name {
            "ct_orf1ab" | "ct_n" => Field::new(name, DataType::Float32, true),
            "person" | "color" | "status" => Field::new(name, DataType::Utf8, false),
            _ => Field::new(name, DataType::Utf8, true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn batch(schema: &Arc<Schema>, rows: &[HealthCodeRow]) -> Result<RecordBatch> {
    let text = |f: fn(&HealthCodeRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |f: fn(&HealthCodeRow) -> &str| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| Some(f(r)).filter(|s| !s.is_empty()))
                .collect::<StringArray>(),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| &r.person),
        text(|r| r.color.as_str()),
        text(|r| r.status),
        opt(|r| &r.tube),
        opt(|r| r.mode),
        opt(|r| &r.collected_at),
        opt(|r| &r.collection_source),
        opt(|r| &r.result),
        Arc::new(rows.iter().map(|r| r.ct_orf1ab).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.ct_n).collect::<Float32Array>()),
        opt(|r| &r.reported_at),
        opt(|r| &r.lab),
        opt(|r| &r.plate),
        opt(|r| &r.result_source),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_the_color_the_rules_give() {
        let colors: Vec<Color> = Status::ALL.iter().map(|&s| Color::of(s)).collect();
        use Color::*;
        // positive, recall, retest_pending, resample, pending, negative
        assert_eq!(colors, [Red, Yellow, Yellow, Yellow, Green, Green]);
    }
}
