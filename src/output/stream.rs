//! Exports too large to hold as text: a city's 25 million rows are made a chunk at a
//! time on all cores, in order, and written while the next chunk is made. A file is
//! written front to back past the page cache (`fsutil::replace_direct`), since copying
//! into the page cache cost as much as formatting on this kind of machine.

use std::io::Write;
use std::ops::Range;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde::Serialize;

use super::{Format, ListRow, refuse_parquet_to_terminal};
use crate::store::fsutil;
use crate::{Error, Result};

/// Rows made on demand, in output order.
pub trait RowMaker: Sync {
    /// A row; its text cells may borrow from the maker.
    type Row<'a>: ListRow + Default + Clone + Send
    where
        Self: 'a;

    /// How JSON output lays out its objects.
    const JSON: JsonLayout = JsonLayout::Pretty;

    /// Columns in which nearly every row differs (ids, times, sources): Parquet writes
    /// them without a dictionary, text as the prefix each value shares with the one
    /// before and the rest (rows in person order share long prefixes), numbers and
    /// times as differences from the one before. A dictionary of such a column is
    /// built and thrown away row group after row group: in the health-code export it
    /// cost a sixth of the time.
    ///
    /// The first is the column the rows are in order of: it alone keeps its minimum
    /// and maximum per page and row group, which let a reader looking for one id skip
    /// the rest. Every row group of the others spans nearly all their values, and
    /// finding those bounds compared every value twice.
    const UNIQUE: &'static [&'static str] = &[];

    /// Number of rows.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `row` with row `i` (`i < len()`), reusing its buffers.
    fn fill<'a>(&'a self, i: usize, row: &mut Self::Row<'a>);

    /// Called before row `i` of `rows` is filled, in order: a maker whose rows read
    /// memory at random reads ahead here, a [`warm_block`] at a time, so that the
    /// misses of a block's rows overlap instead of each waiting for the one before
    /// (`Roster::warm`). By default nothing.
    fn warm(&self, i: usize, rows: &Range<usize>) {
        let _ = (i, rows);
    }

    /// Appends rows `rows` as CSV lines to `out`. By default each row is filled and
    /// serialized by the `csv` crate; a maker of millions of rows may write the same
    /// bytes itself ([`csv_field`]).
    fn csv_rows(&self, rows: Range<usize>, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        let mut row = Self::Row::default();
        for i in rows.clone() {
            self.warm(i, &rows);
            self.fill(i, &mut row);
            w.serialize(&row)?;
        }
        w.flush()
    }

    /// Rows `rows` as one Arrow batch, for Parquet; every batch, the empty one too, has
    /// the same schema. By default the rows are filled, kept and handed to
    /// [`ListRow::record_batch`]; a maker of millions of rows builds the columns itself.
    fn batch(&self, rows: Range<usize>) -> Result<RecordBatch> {
        let mut held = Vec::with_capacity(rows.len());
        let mut row = Self::Row::default();
        for i in rows.clone() {
            self.warm(i, &rows);
            self.fill(i, &mut row);
            held.push(row.clone());
        }
        Self::Row::record_batch(&held)
    }
}

/// Rows a [`RowMaker::warm`] reads ahead at a time: enough misses to overlap, few
/// enough that their lines stay in the cache until the rows are printed.
pub const WARM_ROWS: usize = 64;

/// The block of rows a [`RowMaker::warm`] called with row `i` of `rows` reads ahead:
/// the next [`WARM_ROWS`] when `i` starts a block, else none.
pub fn warm_block(i: usize, rows: &Range<usize>) -> Option<Range<usize>> {
    i.saturating_sub(rows.start)
        .is_multiple_of(WARM_ROWS)
        .then(|| i..(i + WARM_ROWS).min(rows.end))
}

/// The first byte of text `i` of `a` (0 past its end or for an empty text): reading
/// it brings the text's offsets and bytes into the cache.
pub fn first_byte(a: &arrow_array::StringArray, i: usize) -> u64 {
    use arrow_array::Array as _;
    if i < a.len() {
        a.value(i).as_bytes().first().map_or(0, |&b| u64::from(b))
    } else {
        0
    }
}

/// Appends `field` to a CSV line as the `csv` crate writes it by default: in quotes,
/// with quotes doubled, when it holds a comma, a quote, CR or LF; as it is otherwise.
///
/// ```
/// use pooltrack::output::stream::csv_field;
/// let mut line = Vec::new();
/// csv_field(&mut line, b"batch 3, a.csv line 2");
/// line.push(b',');
/// csv_field(&mut line, b"plain");
/// assert_eq!(line, b"\"batch 3, a.csv line 2\",plain");
/// ```
pub fn csv_field(out: &mut Vec<u8>, field: &[u8]) {
    // Cells are short (an id, a time, a word): a table look-up a byte beats a
    // vectorized search's setup.
    const SPECIAL: [bool; 256] = {
        let mut t = [false; 256];
        t[b',' as usize] = true;
        t[b'"' as usize] = true;
        t[b'\r' as usize] = true;
        t[b'\n' as usize] = true;
        t
    };
    if !field.iter().any(|&b| SPECIAL[usize::from(b)]) {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    let mut rest = field;
    while let Some(i) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends a comma and `v` as a CSV field ([`csv_field`]): a cell after the first.
pub fn csv_cell(out: &mut Vec<u8>, v: &str) {
    out.push(b',');
    csv_field(out, v.as_bytes());
}

/// Appends a comma and `v`, a fixed word of the program's own (a status, a color, a
/// mode) that holds nothing a CSV field quotes: no search for what to quote.
pub(crate) fn csv_word(out: &mut Vec<u8>, v: &str) {
    debug_assert!(!v.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')));
    out.push(b',');
    out.extend_from_slice(v.as_bytes());
}

/// Appends a float to a CSV line as the `csv` crate writes it (shortest form that
/// reads back the same, by `ryu`).
pub fn csv_float(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(ryu::Buffer::new().format(v).as_bytes());
}

/// JSON layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLayout {
    /// The layout of every other list (`serde_json`'s pretty printer).
    Pretty,
    /// One object per line, for exports that other programs read line by line.
    Lines,
}

/// Rows made and written at a time.
const CHUNK: usize = 128 * 1024;

/// Rows one thread turns into text at a time.
const PIECE: usize = 4 * 1024;

/// Writes every row of `maker` to `path` in `format`, owner-readable only; the file
/// appears whole or not at all.
pub fn write_file<M: RowMaker>(maker: &M, format: Format, path: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, e);
    // Front to back past the page cache, while the next rows are made.
    fsutil::replace_direct(path, |out| match format {
        Format::Parquet => parquet(maker, out, path).map(drop),
        Format::Csv | Format::Json => text(maker, format, out).map_err(io),
    })
}

/// Writes every row of `maker` to standard output (Parquet only when it is not a
/// terminal).
pub fn write_stdout<M: RowMaker>(maker: &M, format: Format) -> Result<()> {
    refuse_parquet_to_terminal(format)?;
    let path = Path::new("<standard output>");
    let io = |e: std::io::Error| Error::io(path, e);
    // Unlocked: the text is handed to the writer from another thread.
    let out = std::io::BufWriter::new(std::io::stdout());
    let mut out = match format {
        Format::Parquet => parquet(maker, out, path)?,
        Format::Csv | Format::Json => {
            let mut out = out;
            text(maker, format, &mut out).map_err(io)?;
            out
        }
    };
    out.flush().map_err(io)
}

/// CSV (the header first, so an empty export has one) or JSON.
fn text<M: RowMaker>(
    maker: &M,
    format: Format,
    sink: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if format == Format::Csv {
        let mut header = csv::Writer::from_writer(Vec::new());
        header.write_record(M::Row::HEADER)?;
        let header = header
            .into_inner()
            .map_err(csv::IntoInnerError::into_error)?;
        sink.write_all(&header)?;
        return pieces(maker, sink, |rows, out| maker.csv_rows(rows, out), |_| {});
    }
    if maker.is_empty() {
        return sink.write_all(match M::JSON {
            JsonLayout::Pretty => b"[]\n",
            JsonLayout::Lines => b"[\n]\n",
        });
    }
    // Each object follows `,\n`; the very first loses its comma.
    sink.write_all(b"[")?;
    pieces(
        maker,
        sink,
        |rows, out| json_piece(maker, rows, out),
        |first| {
            first.remove(0);
        },
    )?;
    sink.write_all(b"\n]\n")
}

/// Writes the rows in order as the bytes `piece` makes of each run of rows: the runs of
/// a chunk are made on all cores while the previous chunk is written. `first` trims the
/// very first piece.
///
/// The writing runs on a thread of its own, not on the pool that makes the rows: a
/// write to a file waits on the disk, and on a pool worker that wait held one of the
/// two cores, so the next chunk was made on one (a 25 M-person health-code export to a
/// 5.5 GB file spent half its time so).
///
/// The pieces' buffers are handed back and reused: fresh ones of this size come from
/// the kernel as new pages, and zeroing them cost as much as the formatting.
fn pieces(
    maker: &impl RowMaker,
    sink: &mut (dyn Write + Send),
    piece: impl Fn(std::ops::Range<usize>, &mut Vec<u8>) -> std::io::Result<()> + Sync,
    mut first: impl FnMut(&mut Vec<u8>),
) -> std::io::Result<()> {
    let len = maker.len();
    let spare = std::sync::Mutex::new(Vec::<Vec<u8>>::new());
    let take = || {
        let mut buf = spare
            .lock()
            .map_or_else(|_| None, |mut s| s.pop())
            .unwrap_or_default();
        buf.clear();
        buf
    };
    std::thread::scope(|scope| {
        // A chunk is handed over when the writer has written the one before: one
        // chunk is written while the next is made, as many as before.
        let (chunks, made) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>(0);
        let spare = &spare;
        let writer = scope.spawn(move || -> std::io::Result<()> {
            for chunk in made {
                chunk.iter().try_for_each(|p| sink.write_all(p))?;
                if let Ok(mut s) = spare.lock() {
                    s.extend(chunk);
                }
            }
            Ok(())
        });
        let mut making = Ok(());
        for start in (0..len).step_by(CHUNK) {
            let end = (start + CHUNK).min(len);
            let chunk = (start..end)
                .into_par_iter()
                .step_by(PIECE)
                .map(|s| {
                    let mut buf = take();
                    piece(s..(s + PIECE).min(end), &mut buf)?;
                    Ok(buf)
                })
                .collect::<std::io::Result<Vec<Vec<u8>>>>();
            let mut chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    making = Err(e);
                    break;
                }
            };
            if start == 0
                && let Some(p) = chunk.first_mut()
            {
                first(p);
            }
            // A writer that stopped has its error, returned below.
            if chunks.send(chunk).is_err() {
                break;
            }
        }
        drop(chunks);
        let wrote = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        making.and(wrote)
    })
}

fn json_piece<M: RowMaker>(
    maker: &M,
    rows: std::ops::Range<usize>,
    w: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut row = M::Row::default();
    for i in rows {
        maker.fill(i, &mut row);
        w.extend_from_slice(b",\n");
        match M::JSON {
            JsonLayout::Lines => serde_json::to_writer(&mut *w, &row)?,
            JsonLayout::Pretty => pretty_in_array(w, &row)?,
        }
    }
    Ok(())
}

/// `row` as `serde_json`'s pretty printer lays it out inside an array: indented by two
/// more spaces. JSON text holds no raw newline inside a string, so every newline is
/// the printer's own.
fn pretty_in_array(w: &mut Vec<u8>, row: &impl Serialize) -> std::io::Result<()> {
    let start = w.len();
    serde_json::to_writer_pretty(&mut *w, row)?;
    let lines = memchr::memchr_iter(b'\n', &w[start..]).count();
    let mut out = Vec::with_capacity(w.len() - start + 2 * (lines + 1));
    out.extend_from_slice(b"  ");
    for &b in &w[start..] {
        out.push(b);
        if b == b'\n' {
            out.extend_from_slice(b"  ");
        }
    }
    w.truncate(start);
    w.extend_from_slice(&out);
    Ok(())
}

/// Parquet: the batches of a chunk are made on all cores while the previous chunk is
/// encoded.
fn parquet<M: RowMaker, W: Write + Send>(maker: &M, out: W, path: &Path) -> Result<W> {
    let pq = |e| Error::parquet(path, e);
    let len = maker.len();
    // The schema comes from a batch of no rows, so an empty export has it too.
    let schema = maker.batch(0..0)?.schema();
    let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties(&schema, M::UNIQUE)))
        .map_err(pq)?;
    let (file, groups) = writer.into_serialized_writer().map_err(pq)?;
    let mut sink = Columns {
        file,
        groups,
        schema,
        open: Vec::new(),
        rows: 0,
        group: 0,
        path,
    };
    let make = |start: usize| -> Result<Vec<RecordBatch>> {
        let end = (start + CHUNK).min(len);
        (start..end)
            .into_par_iter()
            .step_by(PIECE)
            .map(|s| maker.batch(s..(s + PIECE).min(end)))
            .collect()
    };
    let mut pending: Vec<RecordBatch> = Vec::new();
    for start in (0..len).step_by(CHUNK) {
        let (made, wrote) = rayon::join(|| make(start), || sink.encode(&pending));
        wrote?;
        pending = made?;
    }
    sink.encode(&pending)?;
    sink.finish()
}

/// Rows in a Parquet row group of an export (as many as `ArrowWriter` puts in one).
const GROUP: usize = 8 * CHUNK;

/// A Parquet file written column by column: each chunk's columns are encoded and
/// compressed on all cores at once, where one `ArrowWriter` encodes them one after
/// another on one core (it was the slower half of every whole-round Parquet export).
struct Columns<'p, W: Write + Send> {
    file: SerializedFileWriter<W>,
    groups: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The open row group's column writers (none open: empty).
    open: Vec<ArrowColumnWriter>,
    /// Rows in the open row group.
    rows: usize,
    /// Row groups written.
    group: usize,
    path: &'p Path,
}

impl<W: Write + Send> Columns<'_, W> {
    /// Encodes `batches` into the open row group, opening one first if none is, and
    /// closes the group once it holds [`GROUP`] rows.
    fn encode(&mut self, batches: &[RecordBatch]) -> Result<()> {
        let pq = |e| Error::parquet(self.path, e);
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        if batches.iter().any(|b| b.schema() != self.schema) {
            return Err(Error::Arrow(arrow_schema::ArrowError::SchemaError(
                "an export's batches disagree on their columns".into(),
            )));
        }
        if self.open.is_empty() {
            self.open = self.groups.create_column_writers(self.group).map_err(pq)?;
            // Exports are flat: one leaf, so one writer, per column.
            if self.open.len() != self.schema.fields().len() {
                return Err(Error::Arrow(arrow_schema::ArrowError::SchemaError(
                    "an export has a nested column".into(),
                )));
            }
        }
        let fields = self.schema.fields();
        self.open
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(i, writer)| -> parquet::errors::Result<()> {
                for b in batches {
                    for leaf in compute_leaves(&fields[i], b.column(i))? {
                        writer.write(&leaf)?;
                    }
                }
                Ok(())
            })
            .map_err(pq)?;
        self.rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        if self.rows >= GROUP {
            self.close_group()?;
        }
        Ok(())
    }

    /// Appends the open row group's columns to the file, in column order.
    fn close_group(&mut self) -> Result<()> {
        let pq = |e| Error::parquet(self.path, e);
        let chunks: Vec<ArrowColumnChunk> = std::mem::take(&mut self.open)
            .into_par_iter()
            .map(ArrowColumnWriter::close)
            .collect::<parquet::errors::Result<_>>()
            .map_err(pq)?;
        let mut group = self.file.next_row_group().map_err(pq)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group).map_err(pq)?;
        }
        group.close().map_err(pq)?;
        self.group += 1;
        self.rows = 0;
        Ok(())
    }

    /// Closes the last row group and writes the footer.
    fn finish(mut self) -> Result<W> {
        if !self.open.is_empty() {
            self.close_group()?;
        }
        let path = self.path;
        self.file.into_inner().map_err(|e| Error::parquet(path, e))
    }
}

/// How exports are written to Parquet: Snappy, which costs little and halves text
/// (the health-code export of 25 M persons was 4.8 GB uncompressed), and the
/// `unique` columns as [`RowMaker::UNIQUE`] says.
fn properties(schema: &Schema, unique: &[&str]) -> WriterProperties {
    let mut props = WriterProperties::builder().set_compression(Compression::SNAPPY);
    for &c in unique {
        let encoding = match schema
            .field_with_name(c)
            .map(arrow_schema::Field::data_type)
        {
            Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary) => {
                Encoding::DELTA_BYTE_ARRAY
            }
            Ok(
                DataType::Int32
                | DataType::Int64
                | DataType::UInt32
                | DataType::UInt64
                | DataType::Timestamp(..),
            ) => Encoding::DELTA_BINARY_PACKED,
            _ => continue,
        };
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), encoding);
        if unique.first() != Some(&c) {
            props =
                props.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
        }
    }
    props.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_and_floats_are_written_as_the_csv_crate_writes_them() {
        let texts = [
            "",
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "cr\rhere",
            " spaced ",
            "#hash",
            "北京,上海",
            "\"",
            ",",
        ];
        let floats = [
            0.0f32,
            35.0,
            35.25,
            0.1,
            1e-7,
            1.5e12,
            -2.5,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
        ];
        let mut by_crate = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut ours = Vec::new();
        for t in texts {
            for f in floats {
                by_crate
                    .serialize((t, Some(f), None::<f32>, t))
                    .expect("serialize");
                csv_field(&mut ours, t.as_bytes());
                ours.push(b',');
                csv_float(&mut ours, f);
                ours.extend_from_slice(b",,");
                csv_field(&mut ours, t.as_bytes());
                ours.push(b'\n');
            }
        }
        let by_crate = by_crate.into_inner().expect("flush");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&by_crate)
        );
    }

    #[derive(Debug, Clone, Default, Serialize)]
    struct Row {
        n: usize,
        word: String,
    }

    impl ListRow for Row {
        const HEADER: &'static [&'static str] = &["n", "word"];

        // Types stated, not inferred from the values: an empty batch has them too.
        fn record_batch(rows: &[Self]) -> Result<RecordBatch> {
            let n: arrow_array::UInt64Array = rows.iter().map(|r| r.n as u64).collect();
            let word: arrow_array::StringArray =
                rows.iter().map(|r| Some(r.word.as_str())).collect();
            Ok(RecordBatch::try_from_iter([
                ("n", std::sync::Arc::new(n) as arrow_array::ArrayRef),
                ("word", std::sync::Arc::new(word) as arrow_array::ArrayRef),
            ])?)
        }
    }

    struct Numbers(usize);

    impl RowMaker for Numbers {
        type Row<'a> = Row;
        fn len(&self) -> usize {
            self.0
        }
        fn fill(&self, i: usize, row: &mut Row) {
            row.n = i;
            row.word.clear();
            row.word.push_str(if i.is_multiple_of(2) {
                "even, \"quoted\""
            } else {
                "odd"
            });
        }
    }

    struct Lines(usize);

    impl RowMaker for Lines {
        type Row<'a> = Row;
        const JSON: JsonLayout = JsonLayout::Lines;
        fn len(&self) -> usize {
            self.0
        }
        fn fill(&self, i: usize, row: &mut Row) {
            Numbers(self.0).fill(i, row);
        }
    }

    fn made(maker: &impl RowMaker, format: Format) -> Vec<u8> {
        let mut out = Vec::new();
        text(maker, format, &mut out).expect("in memory");
        out
    }

    fn held(n: usize) -> Vec<Row> {
        let mut rows = vec![Row::default(); n];
        for (i, r) in rows.iter_mut().enumerate() {
            Numbers(n).fill(i, r);
        }
        rows
    }

    #[test]
    fn streamed_text_equals_the_lists_written_whole() {
        // Sizes across the piece and chunk boundaries, and none at all.
        for n in [0, 1, 2, PIECE - 1, PIECE + 1, CHUNK + 3] {
            let rows = held(n);
            for format in [Format::Csv, Format::Json] {
                let mut whole = Vec::new();
                super::super::write_text(&rows, format, &mut whole).expect("in memory");
                if format == Format::Csv && n > 0 {
                    // The whole-list writer's header comes from serde; the same names.
                    assert!(whole.starts_with(b"n,word\n"));
                }
                assert_eq!(made(&Numbers(n), format), whole, "{n} rows as {format:?}");
            }
        }
    }

    #[test]
    fn json_lines_is_an_array_with_one_object_a_line() {
        assert_eq!(made(&Lines(0), Format::Json), b"[\n]\n");
        let two = String::from_utf8(made(&Lines(2), Format::Json)).expect("utf-8");
        assert_eq!(
            two,
            "[\n{\"n\":0,\"word\":\"even, \\\"quoted\\\"\"},\n{\"n\":1,\"word\":\"odd\"}\n]\n"
        );
    }

    #[test]
    fn parquet_written_column_by_column_reads_back_row_for_row() {
        use arrow_array::cast::AsArray;
        use arrow_array::types::UInt64Type;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

        let dir = tempfile::tempdir().expect("tmp");
        // None, one, across a piece, and across a row group's end into a second one.
        for n in [0, 1, PIECE + 1, GROUP + CHUNK + 3] {
            let path = dir.path().join(format!("rows{n}.parquet"));
            write_file(&Numbers(n), Format::Parquet, &path).expect("write");
            let file = std::fs::File::open(&path).expect("open");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file).expect("Parquet");
            assert_eq!(reader.metadata().num_row_groups(), n.div_ceil(GROUP), "{n}");
            assert_eq!(
                reader.schema().fields().len(),
                2,
                "the Arrow schema is kept: {:?}",
                reader.schema()
            );
            let mut next = 0;
            for batch in reader.build().expect("reader") {
                let batch = batch.expect("batch");
                let numbers = batch.column(0).as_primitive::<UInt64Type>();
                let words = batch.column(1).as_string::<i32>();
                for (k, w) in numbers.values().iter().zip(words.iter()) {
                    let mut row = Row::default();
                    Numbers(n).fill(next, &mut row);
                    assert_eq!((*k, w), (next as u64, Some(row.word.as_str())), "{n}");
                    next += 1;
                }
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn a_file_written_at_positions_equals_the_stream() {
        let dir = tempfile::tempdir().expect("tmp");
        let n = CHUNK * 2 + 17;
        for format in [Format::Csv, Format::Json] {
            let path = dir.path().join("rows");
            write_file(&Numbers(n), format, &path).expect("write");
            let on_disk = std::fs::read(&path).expect("read");
            assert_eq!(on_disk, made(&Numbers(n), format));
        }
    }

    /// A sink that takes `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
        took: Vec<u8>,
    }

    impl Write for Full {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.took.len() >= self.room {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no room",
                ));
            }
            let n = data.len().min(self.room - self.took.len());
            self.took.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_that_fails_stops_the_export_with_its_error() {
        // The writer fails in the first chunk, in a later one, and at the very end.
        let n = CHUNK * 3 + 5;
        let whole = made(&Numbers(n), Format::Csv);
        for room in [10, whole.len() / 2, whole.len() - 1] {
            let mut sink = Full {
                room,
                took: Vec::new(),
            };
            let err = text(&Numbers(n), Format::Csv, &mut sink).expect_err("no room");
            assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{room}");
            // What was written is the export's start, in order.
            assert_eq!(sink.took, whole[..room], "{room}");
        }
    }

    #[test]
    fn only_the_first_unique_column_keeps_statistics() {
        let schema = Schema::new(vec![
            arrow_schema::Field::new("person", DataType::Utf8, false),
            arrow_schema::Field::new("tube", DataType::Utf8, true),
            arrow_schema::Field::new("at", DataType::Int64, true),
            arrow_schema::Field::new("color", DataType::Utf8, false),
        ]);
        let props = properties(&schema, &["person", "tube", "at"]);
        let of = |c: &str| {
            let c = ColumnPath::from(c);
            (
                props.statistics_enabled(&c),
                props.dictionary_enabled(&c),
                props.encoding(&c),
            )
        };
        assert_eq!(
            of("person"),
            (
                EnabledStatistics::Page,
                false,
                Some(Encoding::DELTA_BYTE_ARRAY)
            )
        );
        assert_eq!(
            of("tube"),
            (
                EnabledStatistics::None,
                false,
                Some(Encoding::DELTA_BYTE_ARRAY)
            )
        );
        assert_eq!(
            of("at"),
            (
                EnabledStatistics::None,
                false,
                Some(Encoding::DELTA_BINARY_PACKED)
            )
        );
        // A column of few values keeps its dictionary and its statistics.
        assert_eq!(of("color"), (EnabledStatistics::Page, true, None));
    }
}
