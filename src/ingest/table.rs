//! Input tables: one reader for every file form a batch may come in.
//!
//! A batch file is CSV with a header line (plain, `.gz` or `.zst`) or Parquet with the
//! same column names. The form is recognised from the file's first bytes, not its name,
//! so a mislabelled file is still read correctly. Rows come out as [`csv::ByteRecord`]s
//! in a caller's buffer, so the hot loop does not allocate per row.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use csv::ByteRecord;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::{Error, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PARQUET_MAGIC: [u8; 4] = *b"PAR1";

/// An open input table: its header and a row reader.
pub struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Rows,
}

enum Rows {
    Csv(Box<csv::Reader<Box<dyn Read + Send>>>),
    Parquet(ParquetRows),
}

struct ParquetRows {
    reader: ParquetRecordBatchReader,
    batch: Vec<StringArray>,
    at: usize,
    line: u64,
}

impl Table {
    /// Opens `path`, recognising CSV, gzip- or zstd-compressed CSV, or Parquet by the
    /// file's first bytes, and reads its header.
    pub fn open(path: &Path) -> Result<Table> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Err(Error::input(path, "the file is empty: no header line"));
        }
        let magic = &magic[..n];
        if magic == PARQUET_MAGIC {
            return Table::open_parquet(path);
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let raw: Box<dyn Read + Send> = if magic.starts_with(&GZIP_MAGIC) {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else if magic == ZSTD_MAGIC {
            let dec = zstd::stream::read::Decoder::new(file)
                .map_err(|e| Error::input(path, format!("cannot read zstd stream: {e}")))?;
            Box::new(dec)
        } else {
            Box::new(file)
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(raw);
        let mut first = ByteRecord::new();
        let got = reader
            .read_byte_record(&mut first)
            .map_err(|e| csv_error(path, e))?;
        if !got {
            return Err(Error::input(path, "the file is empty: no header line"));
        }
        let mut header = Vec::with_capacity(first.len());
        for (i, field) in first.iter().enumerate() {
            let field = if i == 0 {
                field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
            } else {
                field
            };
            let name = std::str::from_utf8(field).map_err(|_| {
                Error::input(
                    path,
                    "line 1: the header is not UTF-8 text; is this a CSV file?",
                )
            })?;
            header.push(name.trim().to_ascii_lowercase());
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows: Rows::Csv(Box::new(reader)),
        })
    }

    fn open_parquet(path: &Path) -> Result<Table> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))?;
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().trim().to_ascii_lowercase())
            .collect();
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))?;
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows: Rows::Parquet(ParquetRows {
                reader,
                batch: Vec::new(),
                at: 0,
                line: 0,
            }),
        })
    }

    /// The input file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Column names, trimmed and lower-cased, in file order.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Position of column `name`, if the file has it.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Reads the next row into `rec`; returns its line number (CSV: the line it starts
    /// on; Parquet: the row number + 1, counting the header as line 1), or `None` at
    /// the end. A damaged stream (truncated gzip, bad Parquet page) is an error for the
    /// whole file.
    pub fn read_row(&mut self, rec: &mut ByteRecord) -> Result<Option<u64>> {
        match &mut self.rows {
            Rows::Csv(reader) => {
                let got = reader
                    .read_byte_record(rec)
                    .map_err(|e| csv_error(&self.path, e))?;
                Ok(got.then(|| rec.position().map_or(0, csv::Position::line)))
            }
            Rows::Parquet(p) => p.next(&self.path, rec),
        }
    }
}

impl ParquetRows {
    fn next(&mut self, path: &Path, rec: &mut ByteRecord) -> Result<Option<u64>> {
        loop {
            let len = self.batch.first().map_or(0, Array::len);
            if self.at < len {
                rec.clear();
                for col in &self.batch {
                    if col.is_null(self.at) {
                        rec.push_field(b"");
                    } else {
                        rec.push_field(col.value(self.at).as_bytes());
                    }
                }
                self.at += 1;
                self.line += 1;
                return Ok(Some(self.line + 1));
            }
            match self.reader.next() {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(Error::input(path, format!("damaged Parquet data: {e}")));
                }
                Some(Ok(batch)) => {
                    self.batch = stringify(path, &batch)?;
                    self.at = 0;
                }
            }
        }
    }
}

/// Casts every column to text, so Parquet rows go through the same validation as CSV
/// rows. Columns of a type with no text form (lists, structs) refuse the file.
fn stringify(path: &Path, batch: &RecordBatch) -> Result<Vec<StringArray>> {
    let schema = batch.schema();
    let mut out = Vec::with_capacity(batch.num_columns());
    for (field, col) in schema.fields().iter().zip(batch.columns()) {
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

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(csv::Position::line);
    let at = line.map_or(String::new(), |l| format!("line {l}: "));
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::input(
            path,
            format!(
                "{at}cannot read the file (a compressed stream that ends early or is damaged?): {io}"
            ),
        ),
        other => Error::input(path, format!("{at}not readable as CSV: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rows(t: &mut Table) -> Vec<(u64, Vec<String>)> {
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        while let Some(line) = t.read_row(&mut rec).expect("row") {
            out.push((
                line,
                rec.iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            ));
        }
        out
    }

    #[test]
    fn reads_plain_gzip_and_zstd_alike() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = "\u{feff}Tube, person\nT0001,p1\n\"T0002\",\"a,\nb\"\nT0003,p3\n";
        let plain = dir.path().join("a.csv");
        std::fs::write(&plain, text).expect("write");
        let gz = dir.path().join("a.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gz");
        std::fs::write(&gz, enc.finish().expect("gz")).expect("write");
        let zst = dir.path().join("a.bin");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 1).expect("zstd")).expect("w");
        for p in [plain, gz, zst] {
            let mut t = Table::open(&p).expect("open");
            assert_eq!(t.header(), ["tube", "person"]);
            let r = rows(&mut t);
            assert_eq!(r.len(), 3);
            assert_eq!(r[1].0, 3);
            assert_eq!(r[1].1[1], "a,\nb");
            assert_eq!(r[2].0, 5);
        }
    }

    #[test]
    fn truncated_gzip_fails_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..10_000 {
            writeln!(enc, "T{i:05},person{i}").expect("gz");
        }
        let bytes = enc.finish().expect("gz");
        let p = dir.path().join("cut.csv.gz");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("write");
        let mut t = Table::open(&p).expect("header still reads");
        let mut rec = ByteRecord::new();
        let err = loop {
            match t.read_row(&mut rec) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a truncated stream must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("cut.csv.gz"), "{err}");
    }

    #[test]
    fn empty_file_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("empty.csv");
        std::fs::write(&p, "").expect("write");
        let err = Table::open(&p).err().expect("refused");
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
