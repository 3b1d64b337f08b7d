//! Parquet input as text rows: every column is cast to text, so Parquet rows go through
//! the same checks as CSV rows, numbered as if line 1 were a header.
//!
//! A damaged Parquet file must be refused, named, like any other unreadable input:
//! column chunks are checked against the file's size before any page is read, and
//! decoding runs in [`guarded`].

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;

use super::{Chunk, ChunkKind, Record};
use crate::{Error, Result};

/// Rows per Parquet chunk.
const BATCH_ROWS: usize = 64 * 1024;

/// A Parquet file being read a batch of rows at a time.
pub(super) struct ParquetSource {
    reader: ParquetRecordBatchReader,
    /// Rows read so far.
    rows: u64,
}

/// A batch of Parquet rows, each column as text.
pub(super) struct ParquetChunk {
    columns: Vec<StringArray>,
    first_row: u64,
}

impl ParquetChunk {
    /// Calls `f(line, record, raw)` for each row, as [`Chunk::for_each`] says; `raw` is
    /// the row's fields joined by commas.
    pub(super) fn for_each(
        &self,
        mut f: impl FnMut(u64, &Record, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut rec = Record::default();
        let rows = self.columns.first().map_or(0, Array::len);
        let mut raw = Vec::new();
        for i in 0..rows {
            rec.clear();
            raw.clear();
            for (k, col) in self.columns.iter().enumerate() {
                let v = if col.is_null(i) { "" } else { col.value(i) };
                rec.push(v);
                if k > 0 {
                    raw.push(b',');
                }
                raw.extend_from_slice(v.as_bytes());
            }
            // Line 1 is the header, as in CSV, so row 0 is "line" 2.
            f(self.first_row + i as u64 + 2, &rec, &raw)?;
        }
        Ok(())
    }
}

impl ParquetSource {
    /// Opens Parquet `input`, `size` bytes long: the source and the column names,
    /// trimmed and lower-cased, in file order.
    pub(super) fn open<T: ChunkReader + 'static>(
        path: &Path,
        input: T,
        size: u64,
    ) -> Result<(ParquetSource, Vec<String>)> {
        let builder = guarded(path, || {
            ParquetRecordBatchReaderBuilder::try_new(input)
                .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))
        })?;
        check_chunks(path, builder.metadata(), size)?;
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().trim().to_ascii_lowercase())
            .collect();
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))?;
        Ok((ParquetSource { reader, rows: 0 }, header))
    }

    /// The next batch of rows; `None` after the last.
    pub(super) fn next_chunk(&mut self, path: &Path) -> Result<Option<Chunk>> {
        let next = guarded(path, || Ok(self.reader.next()))?;
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(Error::input(path, format!("damaged Parquet data: {e}"))),
            Some(Ok(batch)) => {
                let columns = stringify(path, &batch)?;
                let first_row = self.rows;
                self.rows += batch.num_rows() as u64;
                Ok(Some(Chunk {
                    kind: ChunkKind::Parquet(ParquetChunk { columns, first_row }),
                }))
            }
        }
    }
}

/// Runs Parquet decoding so that a panic inside the parquet crate on a damaged file
/// (one was found by fuzzing) refuses the file instead of crashing the ingest. The panic
/// hook is silenced meanwhile, so no panic message reaches the clerk's terminal.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|_| {
        Err(Error::input(
            path,
            "damaged Parquet data: the file's metadata is inconsistent",
        ))
    })
}

/// Refuses a Parquet file whose column chunks point outside the file, before any page
/// is read.
fn check_chunks(path: &Path, meta: &ParquetMetaData, size: u64) -> Result<()> {
    for rg in meta.row_groups() {
        for col in rg.columns() {
            let start = col
                .dictionary_page_offset()
                .unwrap_or(col.data_page_offset());
            let len = col.compressed_size();
            let fits = start >= 0
                && len >= 0
                && u64::try_from(start.saturating_add(len)).is_ok_and(|end| end <= size);
            if !fits {
                return Err(Error::input(
                    path,
                    format!(
                        "damaged Parquet data: column {} points outside the file",
                        col.column_path()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Casts every column to text, so Parquet rows go through the same validation as CSV
/// rows. Columns of a type with no text form (lists, structs) refuse the file.
fn stringify(path: &Path, batch: &RecordBatch) -> Result<Vec<StringArray>> {
    let schema = batch.schema();
    let mut out = Vec::with_capacity(batch.num_columns());
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
        if let DataType::Timestamp(_, zone) = field.data_type() {
            out.push(timestamps_as_text(path, field.name(), col, zone.is_some())?);
            continue;
        }
        let text = arrow_cast::cast(col, &DataType::Utf8).map_err(|e| {
            Error::input(
                path,
                format!(
                    "column {:?} has type {} which cannot be read as text: {e}",
                    field.name(),
                    field.data_type()
                ),
            )
        })?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| Error::input(path, format!("column {:?} is not text", field.name())))?;
        out.push(text);
    }
    Ok(out)
}

/// Timestamps as the text the row parsers read: an instant (a column with a zone) as
/// RFC 3339 UTC; a wall-clock time (no zone) as `YYYY-MM-DD HH:MM:SS`, read in the
/// store's zone. Formatted here because Arrow's own cast needs a zone database for
/// named zones such as "UTC".
fn timestamps_as_text(
    path: &Path,
    name: &str,
    col: &ArrayRef,
    instant: bool,
) -> Result<StringArray> {
    let millis = arrow_cast::cast(col, &DataType::Timestamp(TimeUnit::Millisecond, None))
        .map_err(|e| Error::input(path, format!("column {name:?}: {e}")))?;
    let millis = millis
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| Error::input(path, format!("column {name:?} is not a timestamp")))?;
    Ok(millis
        .iter()
        .map(|v| {
            v.map(|ms| {
                if instant {
                    crate::time::format(ms, crate::time::Offset::UTC)
                } else {
                    crate::time::format_local(ms, crate::time::Offset::UTC)
                }
            })
        })
        .collect())
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::ingest::table::tests::rows;
    use crate::ingest::table::{ReadOptions, Table};

    /// A Parquet file of one text column, `tube`.
    pub(in crate::ingest::table) fn one_column(values: &[&str]) -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([(
            "tube",
            Arc::new(StringArray::from(values.to_vec())) as ArrayRef,
        )])
        .expect("batch");
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        out
    }

    fn read_all(name: &str, bytes: Vec<u8>) -> Result<Vec<(u64, Vec<String>, String)>> {
        let mut t = Table::from_reader(name, std::io::Cursor::new(bytes), &ReadOptions::default())?;
        let mut out = Vec::new();
        loop {
            let chunks = t.next_chunks(2)?;
            if chunks.is_empty() {
                return Ok(out);
            }
            for c in chunks {
                c.for_each(|line, rec, raw| {
                    let fields = (0..rec.len())
                        .map(|i| String::from_utf8_lossy(rec.get(i).unwrap_or_default()).into())
                        .collect();
                    out.push((line, fields, String::from_utf8_lossy(raw).into()));
                    Ok(())
                })?;
            }
        }
    }

    #[test]
    fn a_parquet_stream_reads_as_the_file_does() {
        let bytes = one_column(&["T0001", "T0002"]);
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.parquet");
        std::fs::write(&p, &bytes).expect("w");
        let mut t = Table::open(&p).expect("open");
        assert_eq!(t.header(), ["tube"]);
        let want = rows(&mut t);
        assert_eq!(want.len(), 2);
        assert_eq!(want[1].0, 3, "row 1 is line 3, after the header's line");
        assert_eq!(read_all("a.parquet", bytes).expect("reads"), want);
    }
}
