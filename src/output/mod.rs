//! Output formats: writing any list of rows (worklists, exports, reruns, coverage
//! lists) as CSV, JSON or Parquet, so every list a command prints has the same three
//! forms.
//!
//! Rows are `Serialize` structs of flat fields. CSV and JSON come straight from serde;
//! Parquet columns take their type from the values (whole numbers → Int64, other
//! numbers → Float64, booleans, text), empty values and `None` become nulls.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use serde_json::Value;

use crate::store::fsutil;
use crate::{Error, Result};

pub mod stream;
pub mod text_column;

pub use stream::{JsonLayout, RowMaker};

/// An output format for lists.
///
/// The command line maps its own option onto this, so the library does not depend on
/// the argument parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header line.
    Csv,
    /// Parquet (to a file, or to standard output when it is a pipe).
    Parquet,
    /// A JSON array of objects.
    Json,
}

impl Format {
    /// The format a file name implies, if any.
    ///
    /// ```
    /// use pooltrack::output::Format;
    /// use std::path::Path;
    /// assert_eq!(Format::from_path(Path::new("recall.parquet")), Some(Format::Parquet));
    /// assert_eq!(Format::from_path(Path::new("recall.txt")), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A row of a list pooltrack writes: its CSV header, and its Parquet columns.
pub trait ListRow: Serialize {
    /// Column names, in order (the CSV header of an empty list).
    const HEADER: &'static [&'static str];

    /// The rows as one Arrow batch, for Parquet output. By default the column types come
    /// from the values (see the module docs); a row type with timestamps overrides it.
    fn record_batch(rows: &[Self]) -> Result<RecordBatch>
    where
        Self: Sized,
    {
        inferred_batch(rows, Self::HEADER)
    }
}

/// Writes `rows` as CSV (just the header when there are no rows) or JSON to a stream.
///
/// ```
/// use pooltrack::output::{Format, ListRow, write_text};
/// #[derive(serde::Serialize)]
/// struct Row { tube: &'static str, members: u32 }
/// impl ListRow for Row { const HEADER: &'static [&'static str] = &["tube", "members"]; }
/// let mut out = Vec::new();
/// write_text(&[Row { tube: "PL0001", members: 10 }], Format::Csv, &mut out)?;
/// assert_eq!(String::from_utf8(out)?, "tube,members\nPL0001,10\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_text<R: ListRow>(rows: &[R], format: Format, out: &mut dyn Write) -> Result<()> {
    let io = |e: std::io::Error| Error::io("<output>", e);
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            if rows.is_empty() {
                w.write_record(R::HEADER).map_err(|e| io(e.into()))?;
            }
            for r in rows {
                w.serialize(r).map_err(|e| io(e.into()))?;
            }
            w.flush().map_err(io)?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
        }
        Format::Parquet => return Err(Error::Usage("Parquet output needs --out FILE".into())),
    }
    Ok(())
}

/// Refuses Parquet to standard output when it is a terminal: binary bytes on a screen
/// help nobody and can leave the terminal in a strange state. A pipe or file is fine.
pub fn refuse_parquet_to_terminal(format: Format) -> Result<()> {
    use std::io::IsTerminal;
    if format == Format::Parquet && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "Parquet is binary and standard output is a terminal: give --out FILE.parquet, \
             pipe the output to a program, or choose --format csv or json"
                .into(),
        ));
    }
    Ok(())
}

/// Writes `rows` to standard output in any format (Parquet only when it is not a
/// terminal: see [`refuse_parquet_to_terminal`]).
pub fn write_stdout<R: ListRow>(rows: &[R], format: Format) -> Result<()> {
    refuse_parquet_to_terminal(format)?;
    let io = |e: std::io::Error| Error::io("<standard output>", e);
    if format == Format::Parquet {
        let batch = R::record_batch(rows)?;
        let out = std::io::BufWriter::new(std::io::stdout());
        let mut w = ArrowWriter::try_new(out, batch.schema(), None)
            .map_err(|e| Error::parquet("<standard output>", e))?;
        w.write(&batch)
            .map_err(|e| Error::parquet("<standard output>", e))?;
        let mut out = w
            .into_inner()
            .map_err(|e| Error::parquet("<standard output>", e))?;
        return out.flush().map_err(io);
    }
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::new(stdout.lock());
    write_text(rows, format, &mut lock)?;
    lock.flush().map_err(io)
}

/// Writes `rows` to `path` in `format`, owner-readable only (person ids are personal
/// data); the file appears whole.
pub fn write_file<R: ListRow>(rows: &[R], format: Format, path: &Path) -> Result<()> {
    fsutil::replace_direct(path, |out| {
        if format == Format::Parquet {
            let batch = R::record_batch(rows)?;
            let mut w = ArrowWriter::try_new(out, batch.schema(), None)
                .map_err(|e| Error::parquet(path, e))?;
            w.write(&batch).map_err(|e| Error::parquet(path, e))?;
            w.close().map_err(|e| Error::parquet(path, e))?;
            Ok(())
        } else {
            write_text(rows, format, out)
        }
    })
}

/// Writes to `out` when given (saying so on standard error), else to standard output.
pub fn emit<R: ListRow>(rows: &[R], format: Format, out: Option<&Path>, what: &str) -> Result<()> {
    match out {
        Some(path) => {
            write_file(rows, format, path)?;
            eprintln!("wrote {} {what} to {}", rows.len(), path.display());
            Ok(())
        }
        None => write_stdout(rows, format),
    }
}

/// Column types from the values: whole numbers → Int64, other numbers → Float64,
/// booleans, else text; empty text and `None` are nulls.
fn inferred_batch<T: Serialize>(rows: &[T], header: &[&str]) -> Result<RecordBatch> {
    let values: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| match serde_json::to_value(r) {
            Ok(Value::Object(m)) => Ok(m),
            // A row type that does not serialise as a struct is a bug in pooltrack, not
            // in what the user asked for: an Arrow conversion failure, not a usage error.
            Ok(_) => Err(Error::Arrow(ArrowError::InvalidArgumentError(
                "a list row is not a record".into(),
            ))),
            Err(e) => Err(Error::io("<output>", std::io::Error::other(e))),
        })
        .collect::<Result<_>>()?;
    let mut fields = Vec::with_capacity(header.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(header.len());
    for &name in header {
        let cells: Vec<Option<&Value>> = values
            .iter()
            .map(|m| {
                m.get(name)
                    .filter(|v| !v.is_null() && v.as_str() != Some(""))
            })
            .collect();
        let all = |f: fn(&Value) -> bool| cells.iter().flatten().all(|v| f(v));
        let (ty, col): (DataType, ArrayRef) = if cells.iter().all(Option::is_none) {
            (DataType::Utf8, Arc::new(StringArray::new_null(cells.len())))
        } else if all(serde_json::Value::is_i64) {
            let a: Int64Array = cells.iter().map(|v| v.and_then(Value::as_i64)).collect();
            (DataType::Int64, Arc::new(a))
        } else if all(Value::is_number) {
            let a: Float64Array = cells.iter().map(|v| v.and_then(Value::as_f64)).collect();
            (DataType::Float64, Arc::new(a))
        } else if all(Value::is_boolean) {
            let a: BooleanArray = cells.iter().map(|v| v.and_then(Value::as_bool)).collect();
            (DataType::Boolean, Arc::new(a))
        } else {
            let a: StringArray = cells
                .iter()
                .map(|v| {
                    v.map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .collect();
            (DataType::Utf8, Arc::new(a))
        };
        fields.push(Field::new(name, ty, true));
        columns.push(col);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[derive(Serialize)]
    struct Row {
        tube: &'static str,
        members: u32,
        ct: Option<f32>,
        lab: &'static str,
    }

    impl ListRow for Row {
        const HEADER: &'static [&'static str] = &["tube", "members", "ct", "lab"];
    }

    #[test]
    fn parquet_columns_take_their_type_from_the_values() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("l.parquet");
        let rows = [
            Row {
                tube: "PL0001",
                members: 10,
                ct: Some(31.5),
                lab: "",
            },
            Row {
                tube: "PL0002",
                members: 9,
                ct: None,
                lab: "L1",
            },
        ];
        write_file(&rows, Format::Parquet, &p).expect("writes");
        let f = std::fs::File::open(&p).expect("open");
        let mut r = ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(ParquetRecordBatchReaderBuilder::build)
            .expect("reader");
        let b = r.next().expect("a batch").expect("reads");
        let types: Vec<DataType> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            [
                DataType::Utf8,
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8
            ]
        );
        assert_eq!(b.column(3).null_count(), 1);
    }

    /// Serialises as a bare number, which no list column can hold.
    #[derive(Serialize)]
    struct Bare(u32);

    impl ListRow for Bare {
        const HEADER: &'static [&'static str] = &["n"];
    }

    #[test]
    fn a_row_that_is_not_a_record_is_a_program_error_not_a_usage_error() {
        let e = Bare::record_batch(&[Bare(1)]).expect_err("not a record");
        assert!(matches!(e, Error::Arrow(_)), "{e:?}");
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("a list row is not a record"), "{e}");
    }
}
