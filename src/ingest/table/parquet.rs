//! Parquet input as text rows: every column is cast to text, so Parquet rows go through
//! the same checks as CSV rows, numbered as if line 1 were a header.
//!
//! A damaged Parquet file must be refused, named, like any other unreadable input. The
//! parquet crate returns errors for most damage, but panics on some (fuzzing found
//! negative offsets and row counts in the footer, and page data its decoders index
//! past). Damage to the footer is checked before any page is read; a panic on damaged
//! pages is caught (see [`guarded`]).

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
        check_metadata(path, builder.metadata(), size)?;
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().trim().to_ascii_lowercase())
            .collect();
        let reader = guarded(path, || {
            builder
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))
        })?;
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
/// refuses the file instead of crashing the ingest.
///
/// Only the unwinding is caught; the process's panic hook is left alone. It is one
/// hook for every thread: swapping it here to keep the panic's message off the
/// terminal, as this once did, silenced the panics of every other thread meanwhile
/// (rayon's workers, a library caller's), raced with anyone else setting it, and is
/// itself a panic on a thread that is unwinding. The damage known to make the crate
/// panic before any page is decoded is refused first by [`check_metadata`]. A panic on
/// damaged pages reaches the hook, which can ask [`decoding_guarded`] to stay quiet:
/// the `pooltrack` command's does, so a clerk sees only the refusal.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    /// Resets the flag however `f` ends, unwinding included.
    struct Decoding(bool);
    impl Drop for Decoding {
        fn drop(&mut self) {
            DECODING.set(self.0);
        }
    }
    let _reset = Decoding(DECODING.replace(true));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::input(
            path,
            "damaged Parquet data: the file's metadata is inconsistent",
        ))
    })
}

thread_local! {
    /// Set while this thread decodes Parquet under [`guarded`].
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is decoding Parquet input under a guard that turns a
/// panic of the parquet crate into a clear refusal of the file. A program's panic hook
/// (installed once, at start) can stay quiet for such a panic: the refusal says what
/// happened. Each thread answers for itself, so other threads' panics are unaffected.
pub fn decoding_guarded() -> bool {
    DECODING.get()
}

/// Refuses a Parquet file whose footer the parquet crate would panic on rather than
/// refuse, before any page is read: row counts that are negative or add up past
/// `i64` (the crate sums them as `usize`, outside any page), or column chunks that
/// point outside the file (`byte_range` asserts offset and length are not negative).
fn check_metadata(path: &Path, meta: &ParquetMetaData, size: u64) -> Result<()> {
    let mut rows: i64 = 0;
    for (i, rg) in meta.row_groups().iter().enumerate() {
        match rows.checked_add(rg.num_rows()) {
            Some(sum) if rg.num_rows() >= 0 => rows = sum,
            _ => {
                return Err(Error::input(
                    path,
                    format!(
                        "damaged Parquet data: row group {i} holds {} rows",
                        rg.num_rows()
                    ),
                ));
            }
        }
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
        // The parquet crate checks decoded text for UTF-8 only in debug builds: in a
        // release build a damaged string page became text that is not UTF-8 (a file
        // the debug build refused was ingested). Every column is checked whole, its
        // offsets, text and dictionary keys, before any value is read.
        col.to_data().validate_full().map_err(|e| {
            Error::input(
                path,
                format!("damaged Parquet data: column {:?}: {e}", field.name()),
            )
        })?;
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
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};

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

    /// `file` with the metadata in its footer changed by `edit`, as a damaged writer
    /// or a flipped bit would leave it.
    fn with_footer(file: &[u8], edit: impl FnOnce(ParquetMetaData) -> ParquetMetaData) -> Vec<u8> {
        let meta = ParquetMetaDataReader::new()
            .parse_and_finish(&Bytes::copy_from_slice(file))
            .expect("footer");
        let tail = file.len() - 8;
        let len = u32::from_le_bytes(file[tail..tail + 4].try_into().expect("4 bytes"));
        let mut out = file[..tail - len as usize].to_vec();
        ParquetMetaDataWriter::new(&mut out, &edit(meta))
            .finish()
            .expect("footer");
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
        // An unchanged footer, written again, reads alike: `with_footer` damages only
        // what it is told to.
        let again = with_footer(&one_column(&["T0001", "T0002"]), |m| m);
        assert_eq!(read_all("a.parquet", again).expect("reads"), want);
    }

    #[test]
    fn a_damaged_footer_is_refused_before_any_page_is_read() {
        let file = one_column(&["T0001", "T0002", "T0003"]);
        let negative_rows = with_footer(&file, |m| {
            let groups = m
                .row_groups()
                .iter()
                .map(|g| {
                    g.clone()
                        .into_builder()
                        .set_num_rows(-3)
                        .build()
                        .expect("group")
                })
                .collect();
            m.into_builder().set_row_groups(groups).build()
        });
        let err = read_all("rows.parquet", negative_rows).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "rows.parquet: damaged Parquet data: row group 0 holds -3 rows"
        );
        let negative_offset = with_footer(&file, |m| {
            let groups = m
                .row_groups()
                .iter()
                .map(|g| {
                    let columns = g
                        .columns()
                        .iter()
                        .map(|c| {
                            let c = c.clone().into_builder();
                            let c = c.set_dictionary_page_offset(None);
                            c.set_data_page_offset(-4).build().expect("column")
                        })
                        .collect();
                    g.clone()
                        .into_builder()
                        .set_column_metadata(columns)
                        .build()
                })
                .collect::<parquet::errors::Result<_>>()
                .expect("groups");
            m.into_builder().set_row_groups(groups).build()
        });
        let err = read_all("offset.parquet", negative_offset).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "offset.parquet: damaged Parquet data: column \"tube\" points outside the file"
        );
        // The file the fuzz target found: a negative offset, as above.
        let fuzzed = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/fuzz_parquet_negative_offset.parquet"
        ))
        .expect("testdata");
        let err = read_all("fuzzed.parquet", fuzzed)
            .expect_err("refused")
            .to_string();
        assert!(
            err.starts_with("fuzzed.parquet: damaged Parquet data: column ")
                && err.ends_with(" points outside the file"),
            "{err}"
        );
        // Cut short anywhere: the footer is gone or points past the end.
        for cut in [8, file.len() / 2, file.len() - 1] {
            let err = read_all("cut.parquet", file[..cut].to_vec()).expect_err("refused");
            assert!(
                err.to_string()
                    .starts_with("cut.parquet: not a readable Parquet file: "),
                "{err}"
            );
        }
    }

    /// The process's panic hook is one for all threads, so reading must not touch it.
    /// Swapping it, as the guard once did, has one effect that shows deterministically:
    /// `take_hook` panics on a thread that is unwinding, and a panic in a destructor run
    /// by unwinding aborts the process. So this reads a Parquet file in such a
    /// destructor, in a child process of this test binary so that an abort fails this
    /// test alone.
    #[test]
    fn reading_parquet_while_unwinding_leaves_the_panic_hook_alone() {
        const CHILD: &str = "POOLTRACK_TEST_READ_WHILE_UNWINDING";
        let name = "reading_parquet_while_unwinding_leaves_the_panic_hook_alone";
        if std::env::var_os(CHILD).is_none() {
            let module = module_path!().split_once("::").map_or("", |(_, m)| m);
            let exe = std::env::current_exe().expect("the test binary");
            let out = std::process::Command::new(exe)
                .args(["--exact", &format!("{module}::{name}"), "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .expect("run the child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{:?}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        struct ReadOnDrop(Vec<u8>, Arc<Mutex<Option<usize>>>);
        impl Drop for ReadOnDrop {
            fn drop(&mut self) {
                let read = read_all("unwinding.parquet", std::mem::take(&mut self.0));
                if let Ok(mut got) = self.1.lock() {
                    *got = read.ok().map(|r| r.len());
                }
            }
        }
        let got = Arc::new(Mutex::new(None));
        let bytes = one_column(&["T0001", "T0002"]);
        let unwound = std::panic::catch_unwind(|| {
            let _read = ReadOnDrop(bytes, Arc::clone(&got));
            panic!("unwinding on purpose");
        });
        assert!(unwound.is_err());
        assert_eq!(*got.lock().expect("lock"), Some(2));
    }
}
