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

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float32Array, RecordBatch, StringArray, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use rayon::prelude::*;
use serde::Serialize;

use crate::coverage::Coverage;
use crate::model::Status;
use crate::output::{self, Format, ListRow};
use crate::store::{BatchKind, Store, fsutil, read};
use crate::text::text_at;
use crate::time;
use crate::tracker::{NONE, PersonStatus, Statuses};
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

/// One person's code and the evidence behind it. The text cells borrow from the loaded
/// columns and the formatted ones are refilled in place, so writing 25 million rows
/// allocates per buffer, not per row.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct HealthCodeRow<'a> {
    /// Person id.
    pub person: &'a str,
    /// The code's color.
    pub color: &'static str,
    /// Their status in the round, or `untested`.
    pub status: &'static str,
    /// The tube that decided it (empty for untested persons).
    pub tube: &'a str,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// When they were swabbed into it.
    pub collected_at: String,
    /// Where the collection row came from: `batch N, FILE line L`.
    pub collection_source: String,
    /// The tube's effective result (empty when none yet).
    pub result: &'static str,
    /// Ct `ORF1ab` of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// When it was reported.
    pub reported_at: String,
    /// The lab and plate that tested it.
    pub lab: &'a str,
    /// The plate.
    pub plate: &'a str,
    /// Where the result row came from: `batch N, FILE line L`.
    pub result_source: String,
}

impl ListRow for HealthCodeRow<'_> {
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

/// Where a row of a segment came from, as the codes cite it.
struct Sources {
    batch: UInt32Array,
    /// Each row's entry in `files`.
    file: DictionaryArray<UInt32Type>,
    /// The distinct file names, held once: every row of a batch repeats its file's.
    files: StringArray,
    line: UInt64Array,
}

impl Sources {
    /// Appends `batch N, FILE line L` of row `i` to `out`.
    fn write(&self, i: usize, out: &mut String) {
        use std::fmt::Write as _;
        let file = text_at(&self.files, self.file.keys().value(i) as usize);
        let _ = write!(
            out,
            "batch {}, {file} line {}",
            self.batch.value(i),
            self.line.value(i)
        );
    }
}

/// The text columns the codes print and no others: sites, capacities, wells and the
/// columns the indexes already hold are not decoded for 25 million rows (the whole
/// [`crate::tracker::Round`] took 8 GB).
struct Evidence {
    person: StringArray,
    tube: StringArray,
    collected: Sources,
    lab: StringArray,
    plate: StringArray,
    reported: Sources,
}

impl Evidence {
    fn load(store: &Store, round: &Statuses) -> Result<Evidence> {
        let damaged = || {
            Error::damaged(
                store.root(),
                format!(
                    "round {}: the segment files and their indexes disagree on the rows",
                    round.name
                ),
            )
        };
        // One column at a time: reading concatenates a column's pieces, and doing that
        // for all of them at once held every column twice.
        let column = |kind: BatchKind, name: &str, rows: usize| -> Result<ArrayRef> {
            read::columns(store, &round.name, kind, &[name])?
                .pop()
                .filter(|a| a.len() == rows)
                .ok_or_else(damaged)
        };
        let text = |kind, name, rows| -> Result<StringArray> {
            column(kind, name, rows)?
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(damaged)
        };
        let sources = |kind, rows| -> Result<Sources> {
            // The file name is read first and shrunk to one copy per file before the
            // other columns arrive, while little else is held.
            let dictionary =
                DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
            let file = arrow_cast::cast(&column(kind, "source", rows)?, &dictionary)?;
            let file = file
                .as_dictionary_opt::<UInt32Type>()
                .cloned()
                .ok_or_else(damaged)?;
            let files = file
                .values()
                .as_string_opt::<i32>()
                .cloned()
                .ok_or_else(damaged)?;
            let batch = column(kind, "batch", rows)?;
            let line = column(kind, "line", rows)?;
            let (Some(batch), Some(line)) = (
                batch.as_primitive_opt::<UInt32Type>(),
                line.as_primitive_opt::<UInt64Type>(),
            ) else {
                return Err(damaged());
            };
            Ok(Sources {
                batch: batch.clone(),
                file,
                files,
                line: line.clone(),
            })
        };
        let (rows, results) = (round.tube_of_row.len(), round.results.outcome.len());
        let (reported, collected) = rayon::join(
            || -> Result<_> {
                Ok((
                    sources(BatchKind::Results, results)?,
                    text(BatchKind::Results, "lab", results)?,
                    text(BatchKind::Results, "plate", results)?,
                ))
            },
            || -> Result<_> {
                Ok((
                    sources(BatchKind::Collections, rows)?,
                    text(BatchKind::Collections, "person", rows)?,
                    text(BatchKind::Collections, "tube", rows)?,
                ))
            },
        );
        let ((reported, lab, plate), (collected, person, tube)) = (reported?, collected?);
        Ok(Evidence {
            person,
            tube,
            collected,
            lab,
            plate,
            reported,
        })
    }
}

/// A round's health codes in person-id order, made row by row as they are written:
/// a city's 25 million codes never sit in memory as text at once.
pub struct HealthCodes {
    round: Statuses,
    text: Evidence,
    untested: Vec<String>,
    /// Entries in person-id order: `i < persons` is `round.persons[i]`, else
    /// `untested[i - persons]`.
    order: Vec<u32>,
}

/// Rows made and written at a time.
const CHUNK: usize = 128 * 1024;

/// Rows one thread turns into text at a time.
const PIECE: usize = 4 * 1024;

impl HealthCodes {
    /// Loads `round` and orders its persons and the registered persons `untested` in it
    /// (see [`untested()`]) by person id.
    pub fn load(
        store: &Store,
        round: &str,
        untested: impl FnOnce(&str) -> Result<Vec<String>>,
    ) -> Result<HealthCodes> {
        let round = Statuses::load(store, round)?;
        let untested = untested(&round.name)?;
        let text = Evidence::load(store, &round)?;
        let total = round.persons.len() + untested.len();
        let last = u32::try_from(total).map_err(|_| {
            Error::Usage(format!(
                "{total} health codes are more than one export holds"
            ))
        })?;
        let mut codes = HealthCodes {
            round,
            text,
            untested,
            order: Vec::new(),
        };
        // Eight bytes of each id as a number settle most comparisons without following
        // two pointers into the 25-million-id column; they are taken past the prefix
        // every id shares (a city's ids often start alike), so that they differ.
        let first = codes.key(0).as_bytes();
        let shared = (0..last)
            .into_par_iter()
            .map(|i| {
                let id = codes.key(i).as_bytes();
                id.iter().zip(first).take_while(|(a, b)| a == b).count()
            })
            .min()
            .unwrap_or(0);
        let mut keyed: Vec<(u64, u32)> = (0..last)
            .into_par_iter()
            .map(|i| {
                let mut head = [0u8; 8];
                let id = codes.key(i).as_bytes().get(shared..).unwrap_or_default();
                let n = id.len().min(8);
                head[..n].copy_from_slice(&id[..n]);
                (u64::from_be_bytes(head), i)
            })
            .collect();
        keyed.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| codes.key(a.1).cmp(codes.key(b.1)))
        });
        codes.order = keyed.into_iter().map(|(_, i)| i).collect();
        Ok(codes)
    }

    fn key(&self, i: u32) -> &str {
        let i = i as usize;
        match self.round.persons.get(i) {
            Some(p) => text_at(&self.text.person, p.row as usize),
            None => self
                .untested
                .get(i - self.round.persons.len())
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

    /// Fills `out` with the row of entry `i` (see `order`).
    fn fill<'a>(&'a self, i: u32, out: &mut HealthCodeRow<'a>) {
        let (round, text) = (&self.round, &self.text);
        out.person = self.key(i);
        out.collected_at.clear();
        out.collection_source.clear();
        out.reported_at.clear();
        out.result_source.clear();
        let res = match round.persons.get(i as usize) {
            None => {
                (out.color, out.status) = (Color::Yellow.as_str(), "untested");
                (out.tube, out.mode) = ("", "");
                NONE
            }
            Some(p) => {
                let row = p.row as usize;
                out.color = Color::of(p.status).as_str();
                out.status = p.status.as_str();
                out.tube = text_at(&text.tube, row);
                out.mode = round.tubes.mode[round.tube_of_row[row] as usize].as_str();
                time::write_rfc3339(&mut out.collected_at, round.collected_at[row], round.zone);
                text.collected.write(row, &mut out.collection_source);
                round.result_of_row(p.row)
            }
        };
        if res == NONE {
            out.result = "";
            (out.ct_orf1ab, out.ct_n) = (None, None);
            (out.lab, out.plate) = ("", "");
        } else {
            let (r, i) = (&round.results, res as usize);
            out.result = r.outcome[i].as_str();
            (out.ct_orf1ab, out.ct_n) = r.cts(i);
            time::write_rfc3339(&mut out.reported_at, r.reported_at[i], round.zone);
            out.lab = text_at(&text.lab, i);
            out.plate = text_at(&text.plate, i);
            text.reported.write(i, &mut out.result_source);
        }
    }

    /// Calls `f` with the rows in order, a chunk at a time (each chunk made on all cores).
    fn for_each_chunk(&self, mut f: impl FnMut(&[HealthCodeRow]) -> Result<()>) -> Result<()> {
        for ids in self.order.chunks(CHUNK) {
            let rows: Vec<HealthCodeRow> = ids
                .par_iter()
                .map_init(HealthCodeRow::default, |row, &i| {
                    self.fill(i, row);
                    row.clone()
                })
                .collect();
            f(&rows)?;
        }
        Ok(())
    }

    /// Writes the rows in order as the bytes `piece` makes of each run of rows: the runs
    /// of a chunk are made on all cores while the previous chunk is written.
    fn write_pieces<W: Write + Send>(
        &self,
        out: &mut W,
        piece: impl Fn(&[u32]) -> std::io::Result<Vec<u8>> + Sync,
        mut first: impl FnMut(&[u8]) -> &[u8] + Send,
    ) -> std::io::Result<()> {
        let mut written = false;
        let mut write = |bufs: Vec<Vec<u8>>| -> std::io::Result<()> {
            for b in &bufs {
                let b = if written { b.as_slice() } else { first(b) };
                written = true;
                out.write_all(b)?;
            }
            Ok(())
        };
        let mut pending: Vec<Vec<u8>> = Vec::new();
        for ids in self.order.chunks(CHUNK) {
            let (made, wrote) = rayon::join(
                || {
                    ids.par_chunks(PIECE)
                        .map(&piece)
                        .collect::<std::io::Result<Vec<Vec<u8>>>>()
                },
                || write(std::mem::take(&mut pending)),
            );
            wrote?;
            pending = made?;
        }
        write(pending)
    }

    /// The CSV records of entries `ids`.
    fn csv_piece(&self, ids: &[u32]) -> std::io::Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::with_capacity(ids.len() * 256));
        let mut row = HealthCodeRow::default();
        for &i in ids {
            self.fill(i, &mut row);
            w.serialize(&row)?;
        }
        w.into_inner().map_err(csv::IntoInnerError::into_error)
    }

    /// The JSON objects of entries `ids`, each after `,\n`.
    fn json_piece(&self, ids: &[u32]) -> std::io::Result<Vec<u8>> {
        let mut w = Vec::with_capacity(ids.len() * 384);
        let mut row = HealthCodeRow::default();
        for &i in ids {
            self.fill(i, &mut row);
            w.extend_from_slice(b",\n");
            serde_json::to_writer(&mut w, &row)?;
        }
        Ok(w)
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
                // The header is written by hand so that an empty export has one too; each
                // piece is the csv crate's own output, so quoting is the crate's.
                let mut w = std::io::BufWriter::new(out);
                let mut header = csv::Writer::from_writer(Vec::new());
                header
                    .write_record(HealthCodeRow::HEADER)
                    .map_err(|e| io(e.into()))?;
                let header = header.into_inner().map_err(|e| io(e.into_error()))?;
                w.write_all(&header).map_err(io)?;
                self.write_pieces(&mut w, |ids| self.csv_piece(ids), |b| b)
                    .map_err(io)?;
                w.flush().map_err(io)?;
                w.into_inner().map_err(|e| io(e.into_error()))
            }
            Format::Json => {
                let mut w = std::io::BufWriter::new(out);
                w.write_all(b"[").map_err(io)?;
                // Rows are separated by `,\n`; the first follows `[` with just `\n`.
                self.write_pieces(
                    &mut w,
                    |ids| self.json_piece(ids),
                    |b| b.get(1..).unwrap_or_default(),
                )
                .map_err(io)?;
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
    let codes = HealthCodes::load(store, round, |round| {
        Ok(untested(store, round)?.unwrap_or_else(|| {
            eprintln!(
                "pooltrack: note: no population register, so nobody is listed as untested (pooltrack ingest population FILE)"
            );
            Vec::new()
        }))
    })?;
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
    let text = |f: for<'r> fn(&'r HealthCodeRow<'r>) -> &'r str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |f: for<'r> fn(&'r HealthCodeRow<'r>) -> &'r str| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| Some(f(r)).filter(|s| !s.is_empty()))
                .collect::<StringArray>(),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| r.person),
        text(|r| r.color),
        text(|r| r.status),
        opt(|r| r.tube),
        opt(|r| r.mode),
        opt(|r| &r.collected_at),
        opt(|r| &r.collection_source),
        opt(|r| r.result),
        Arc::new(rows.iter().map(|r| r.ct_orf1ab).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.ct_n).collect::<Float32Array>()),
        opt(|r| &r.reported_at),
        opt(|r| r.lab),
        opt(|r| r.plate),
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
