//! Input tables: one reader for every file form a batch may come in.
//!
//! A batch file is CSV with a header line (plain, `.gz` or `.zst`) or Parquet with the
//! same column names. The form is recognised from the file's first bytes, not its name.
//!
//! CSV is read in **chunks** of about 8 MB that end on a record boundary (a newline
//! outside quotes, found by quote parity), each tagged with the line it starts on. A
//! chunk parses on its own, so chunks are parsed in parallel, and line numbers are
//! counted from the bytes themselves: CRLF, blank lines and quoted newlines all keep
//! the numbers a text editor shows.
//!
//! A CSV file need not be comma-separated UTF-8: [`ReadOptions`] names its field
//! delimiter and its encoding. A GB18030 (GBK) file, as Excel on a Chinese-language
//! Windows saves one, is decoded to UTF-8 as a stream *before* it is cut into chunks,
//! by `encoding_rs`'s streaming decoder, which carries a multibyte sequence split between
//! two reads over to the next: chunks, record boundaries and line numbers are then
//! found in UTF-8 text exactly as for a UTF-8 file (GB18030 keeps ASCII, so every
//! newline, quote and delimiter is where it was).
//!
//! Any other byte stream (a pipe, bytes in memory) reads alike through
//! [`Table::from_reader`]. The work is split by seam: `sniff` tells the form from the first bytes, `decode` turns GB18030
//! into UTF-8, `csv` cuts text into chunks and rows, `delimiter` explains a header
//! split on the wrong character, `parquet` turns typed Parquet columns into the same
//! text rows.

mod csv;
mod decode;
mod delimiter;
mod parquet;
mod sniff;

pub use parquet::decoding_guarded;

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use self::csv::{CHUNK, CsvChunk, CsvSource};
use self::decode::{DECODE_BUF, Decoding};
use self::parquet::{ParquetChunk, ParquetSource};
use self::sniff::{Form, GB18030_HINT, read_up_to, reads_as_gb18030};
use crate::{Error, Result};

/// The character encoding of a CSV file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 (with or without a byte-order mark): read as it is.
    #[default]
    Utf8,
    /// GB18030, the superset of GBK and GB2312: what Excel on a Chinese-language
    /// Windows saves as "CSV". Decoded to UTF-8 while read.
    Gb18030,
}

/// How to read a CSV file. Parquet files are always UTF-8 with typed columns: these
/// options do not apply to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The file's character encoding.
    pub encoding: TextEncoding,
    /// The byte between fields (an ASCII character). `None` reads commas, and a
    /// required column missing from a header that splits on another delimiter is
    /// refused with a hint naming that delimiter.
    pub delimiter: Option<u8>,
}

/// The words of the refusal of a field that is not UTF-8 (see `row::text`), by which
/// [`Table::explain`] recognises it.
pub(crate) const NOT_UTF8: &str = "the text is not UTF-8";

/// One parsed row: its fields, unescaped, in a reusable buffer.
///
/// A row that is valid UTF-8 (nearly every row) is kept as text, so its fields are
/// handed out as `&str` without checking each one again; a row that is not keeps its
/// bytes, and [`Record::str`] says where the bad byte is.
#[derive(Debug, Default, Clone)]
pub struct Record<'a> {
    /// Borrowed from the chunk for a plain row; owned (and reused) otherwise.
    text: Cow<'a, str>,
    bytes: Vec<u8>,
    utf8: bool,
    ends: Vec<usize>,
    /// Bytes between one field's end and the next one's start: 0 when `csv_core`
    /// unescaped the fields end to end, 1 when `text` is the raw line with its
    /// delimiters.
    gap: usize,
    /// Where the first field starts in `text`: a plain row borrows its whole chunk.
    start: usize,
}

impl<'a> Record<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the row has no field.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn span(&self, i: usize) -> Option<std::ops::Range<usize>> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            None => self.start,
            Some(p) => self.ends.get(p)? + self.gap,
        };
        (start <= end).then_some(start..end)
    }

    /// The `i`th field's bytes.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let span = self.span(i)?;
        if self.utf8 {
            self.text.as_bytes().get(span)
        } else {
            self.bytes.get(span)
        }
    }

    /// The `i`th field as text; `Err` holds the position (from 0) of the first byte
    /// that is not UTF-8.
    pub fn str(&self, i: usize) -> Option<std::result::Result<&str, usize>> {
        let span = self.span(i)?;
        if self.utf8 {
            return self.text.get(span).map(Ok);
        }
        let raw = self.bytes.get(span)?;
        Some(std::str::from_utf8(raw).map_err(|e| e.valid_up_to()))
    }

    fn clear(&mut self) {
        match &mut self.text {
            Cow::Borrowed(_) => self.text = Cow::Owned(String::new()),
            Cow::Owned(t) => t.clear(),
        }
        self.bytes.clear();
        self.utf8 = true;
        self.ends.clear();
        self.gap = 0;
        self.start = 0;
    }

    fn push(&mut self, field: &str) {
        self.text.to_mut().push_str(field);
        self.ends.push(self.text.len());
    }

    /// Fields unescaped by `csv_core`, end to end: checked for UTF-8 once for the row.
    fn set_unescaped(&mut self, data: &[u8], ends: &[usize]) {
        self.clear();
        if let Ok(s) = std::str::from_utf8(data) {
            self.text.to_mut().push_str(s);
        } else {
            self.utf8 = false;
            self.bytes.extend_from_slice(data);
        }
        self.ends.extend_from_slice(ends);
    }

    /// A plain chunk's text, borrowed for its rows: see [`Record::set_plain_row`].
    fn set_plain(&mut self, chunk: &'a str) {
        self.text = Cow::Borrowed(chunk);
        self.bytes.clear();
        self.utf8 = true;
        self.ends.clear();
        self.gap = 1;
        self.start = 0;
    }

    /// The row of the plain chunk (given to [`Record::set_plain`]) that starts at byte
    /// `start`: its fields end at the delimiters already pushed by [`Record::push_end`]
    /// and at `end`.
    fn set_plain_row(&mut self, start: usize, end: usize) {
        self.start = start;
        self.ends.push(end);
    }

    /// A delimiter of the current plain row, at byte `at` of the chunk.
    fn push_end(&mut self, at: usize) {
        self.ends.push(at);
    }

    /// Forgets the current plain row's fields, for the next row.
    fn next_plain_row(&mut self) {
        self.ends.clear();
    }
}

/// A piece of the input that parses on its own.
pub struct Chunk {
    kind: ChunkKind,
}

enum ChunkKind {
    Csv(CsvChunk),
    Parquet(ParquetChunk),
}

impl Chunk {
    /// Calls `f(line, record, raw)` for each row, in order; `raw` is the row as
    /// written (for reports). Stops at the first error `f` returns.
    pub fn for_each(&self, f: impl FnMut(u64, &Record, &[u8]) -> Result<()>) -> Result<()> {
        match &self.kind {
            ChunkKind::Csv(c) => c.for_each(f),
            ChunkKind::Parquet(c) => c.for_each(f),
        }
    }
}

/// An open input table: its header and a chunk reader.
pub struct Table {
    path: PathBuf,
    header: Vec<String>,
    source: Source,
    /// Target size of a CSV chunk.
    chunk: usize,
    /// The file's raw bytes as read so far, hashed on the way (CSV only).
    digest: Option<Arc<Mutex<Digest>>>,
    origin: Origin,
    /// How the CSV file was said to be written.
    options: ReadOptions,
}

/// Where a table's bytes come from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// A file, of `size` bytes when opened: it can be read again from its start, for a
    /// refusal's GB18030 hint.
    File { size: u64 },
    /// A stream, read once.
    Stream,
}

/// xxh3-128 of the bytes read so far, and how many.
#[derive(Default)]
struct Digest {
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
    /// The input said it had no more bytes: the hash is of all of a stream.
    ended: bool,
}

/// An input that hashes what is read from it: the ingest's "already ingested" key costs
/// no second pass over a file that is read anyway (at 1.65 GB, a 0.24–0.5 s serial
/// pass before the parse could start).
struct Hashing<R> {
    inner: R,
    digest: Arc<Mutex<Digest>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut d = self.digest.lock().unwrap_or_else(PoisonError::into_inner);
        d.hasher.update(&buf[..n]);
        d.bytes += n as u64;
        d.ended |= n == 0 && !buf.is_empty();
        Ok(n)
    }
}

enum Source {
    Csv(CsvSource),
    Parquet(ParquetSource),
}

impl Table {
    /// Opens `path`, recognising CSV, gzip- or zstd-compressed CSV, or Parquet by the
    /// file's first bytes, and reads its header. CSV is read as comma-separated UTF-8.
    pub fn open(path: &Path) -> Result<Table> {
        Table::open_with(path, &ReadOptions::default())
    }

    /// Opens `path` as [`Table::open`] does, reading CSV with `options` (its encoding
    /// and delimiter); Parquet ignores them.
    pub fn open_with(path: &Path, options: &ReadOptions) -> Result<Table> {
        Table::open_decoding(path, options, DECODE_BUF)
    }

    /// [`Table::open_with`], decoding a non-UTF-8 file `piece` bytes at a time.
    fn open_decoding(path: &Path, options: &ReadOptions, piece: usize) -> Result<Table> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
        let magic = &magic[..n];
        let form = sniff::form(path, magic)?;
        // Opened again, so every byte from the first goes through the decompressor and
        // the hash.
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let origin = Origin::File { size };
        match form {
            Form::Parquet => Table::read_parquet(path, file, size, origin),
            Form::Csv => Table::read_csv(path, magic, file, origin, options, piece),
        }
    }

    /// Reads a table from `reader` as [`Table::open_with`] reads a file: the form is
    /// told from the first bytes, and CSV is read with `options`. `name` stands for the
    /// file in every message.
    ///
    /// CSV is read as it streams in, chunk by chunk. Parquet is read into memory whole
    /// first, because its footer, at the end, says where everything else is. A stream
    /// cannot be read again from its start, so text refused as not UTF-8 gets no
    /// `--encoding gb18030` hint; and [`Table::source_digest`] is of the bytes the
    /// stream gave.
    ///
    /// ```
    /// use pooltrack::ingest::table::{ReadOptions, Table};
    ///
    /// let csv = "Tube,Person\nT0001,p1\n\"T0002\",\"p,2\"\n";
    /// let mut table = Table::from_reader("tubes.csv", csv.as_bytes(), &ReadOptions::default())?;
    /// assert_eq!(table.header(), ["tube", "person"]);
    /// let mut people = Vec::new();
    /// for chunk in table.next_chunks(4)? {
    ///     chunk.for_each(|line, record, _raw| {
    ///         let person = record.str(1).and_then(Result::ok).unwrap_or_default();
    ///         people.push((line, person.to_owned()));
    ///         Ok(())
    ///     })?;
    /// }
    /// assert_eq!(people, [(2, "p1".to_owned()), (3, "p,2".to_owned())]);
    /// # Ok::<(), pooltrack::Error>(())
    /// ```
    pub fn from_reader(
        name: &str,
        reader: impl Read + Send + 'static,
        options: &ReadOptions,
    ) -> Result<Table> {
        Table::read_decoding(name, reader, options, DECODE_BUF)
    }

    /// [`Table::from_reader`], decoding a non-UTF-8 stream `piece` bytes at a time.
    fn read_decoding(
        name: &str,
        mut reader: impl Read + Send + 'static,
        options: &ReadOptions,
        piece: usize,
    ) -> Result<Table> {
        let path = Path::new(name);
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut reader, &mut magic).map_err(|e| Error::io(path, e))?;
        let magic = &magic[..n];
        match sniff::form(path, magic)? {
            Form::Parquet => {
                let mut bytes = magic.to_vec();
                reader
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io(path, e))?;
                let size = bytes.len() as u64;
                Table::read_parquet(path, bytes::Bytes::from(bytes), size, Origin::Stream)
            }
            Form::Csv => {
                // The first bytes, already read, go first through the decompressor and
                // the hash.
                let whole = std::io::Cursor::new(magic.to_vec()).chain(reader);
                Table::read_csv(path, magic, whole, Origin::Stream, options, piece)
            }
        }
    }

    /// The table of CSV `input` (all of it, from its first byte `magic[0]`).
    fn read_csv(
        path: &Path,
        magic: &[u8],
        input: impl Read + Send + 'static,
        origin: Origin,
        options: &ReadOptions,
        piece: usize,
    ) -> Result<Table> {
        let digest = Arc::new(Mutex::new(Digest::default()));
        let input = Hashing {
            inner: input,
            digest: Arc::clone(&digest),
        };
        let reader = sniff::decompressed(path, magic, input)?;
        let reader: Box<dyn Read + Send> = match options.encoding {
            TextEncoding::Utf8 => reader,
            TextEncoding::Gb18030 => Box::new(Decoding::new(reader, encoding_rs::GB18030, piece)),
        };
        let mut source = CsvSource::new(reader, options.delimiter.unwrap_or(b','));
        let header = source.read_header(path, || {
            matches!(origin, Origin::File { .. }) && reads_as_gb18030(path)
        })?;
        Ok(Table {
            path: path.to_path_buf(),
            header,
            source: Source::Csv(source),
            chunk: CHUNK,
            digest: Some(digest),
            origin,
            options: *options,
        })
    }

    /// The table of Parquet `input`, `size` bytes long.
    fn read_parquet(
        path: &Path,
        input: impl ::parquet::file::reader::ChunkReader + 'static,
        size: u64,
        origin: Origin,
    ) -> Result<Table> {
        let (source, header) = ParquetSource::open(path, input, size)?;
        Ok(Table {
            path: path.to_path_buf(),
            header,
            source: Source::Parquet(source),
            chunk: CHUNK,
            digest: None,
            origin,
            options: ReadOptions::default(),
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

    /// Why column `name` is missing when the header is not split on the right
    /// character: a CSV header that lacks it but, split on another delimiter, names it
    /// (`tube;person;mode` read with commas is one column). `None` for Parquet, or
    /// when no other delimiter explains it.
    pub(crate) fn delimiter_hint(&self, name: &str) -> Option<String> {
        if !matches!(self.source, Source::Csv(_)) {
            return None;
        }
        delimiter::delimiter_hint(&self.header, self.options.delimiter, name)
    }

    /// Adds what the file may be to a refusal of text that is not UTF-8: a file read
    /// as UTF-8 whose bytes read cleanly as GB18030 gets the `--encoding gb18030`
    /// hint. Any other error is returned as it is.
    pub(crate) fn explain(&self, e: Error) -> Error {
        match e {
            Error::Input { path, reason }
                if reason.contains(NOT_UTF8)
                    && self.options.encoding == TextEncoding::Utf8
                    && matches!(self.source, Source::Csv(_))
                    && matches!(self.origin, Origin::File { .. })
                    && reads_as_gb18030(&self.path) =>
            {
                Error::Input {
                    path,
                    reason: format!("{reason}{GB18030_HINT}"),
                }
            }
            e => e,
        }
    }

    /// The size and xxh3-128 of the whole file (or of all a stream gave), once every
    /// chunk has been read; `None` for Parquet, before the end, or when the decoder
    /// stopped short of the file's end (then the caller hashes the file itself).
    pub fn source_digest(&self) -> Option<(u64, u128)> {
        let d = self.digest.as_ref()?;
        let d = d.lock().unwrap_or_else(PoisonError::into_inner);
        let done = matches!(&self.source, Source::Csv(s) if s.eof);
        let whole = match self.origin {
            Origin::File { size } => d.bytes == size,
            Origin::Stream => d.ended,
        };
        (done && whole).then(|| (d.bytes, d.hasher.digest128()))
    }

    /// Reads up to `n` more chunks; an empty result means the end of the file. A
    /// damaged stream (truncated gzip, bad Parquet page) is an error for the whole file.
    pub fn next_chunks(&mut self, n: usize) -> Result<Vec<Chunk>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let next = match &mut self.source {
                Source::Csv(s) => s.next_chunk(&self.path, self.chunk)?,
                Source::Parquet(s) => s.next_chunk(&self.path)?,
            };
            match next {
                Some(c) => out.push(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// Reads CSV chunks of about `bytes` from now on: tests cut small files into many.
    #[cfg(test)]
    pub(crate) fn set_chunk_size(&mut self, bytes: usize) {
        self.chunk = bytes;
    }

    /// Takes back parsed chunks, whose buffers the next chunks are read into.
    pub(crate) fn recycle(&mut self, chunks: Vec<Chunk>) {
        if let Source::Csv(s) = &mut self.source {
            for c in chunks {
                if let ChunkKind::Csv(c) = c.kind {
                    s.recycle(c.into_buffer());
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    /// Every row of `t`: its line, its fields and its raw text.
    pub(super) fn rows(t: &mut Table) -> Vec<(u64, Vec<String>, String)> {
        let mut out = Vec::new();
        loop {
            let chunks = t.next_chunks(3).expect("chunks");
            if chunks.is_empty() {
                return out;
            }
            for c in chunks {
                c.for_each(|line, rec, raw| {
                    let fields = (0..rec.len())
                        .map(|i| {
                            String::from_utf8_lossy(rec.get(i).unwrap_or_default()).into_owned()
                        })
                        .collect();
                    out.push((line, fields, String::from_utf8_lossy(raw).into_owned()));
                    Ok(())
                })
                .expect("rows");
            }
        }
    }

    /// A table of `bytes`, read as comma-separated UTF-8.
    pub(super) fn stream(name: &str, bytes: impl Into<Vec<u8>>) -> Result<Table> {
        Table::from_reader(name, Cursor::new(bytes.into()), &ReadOptions::default())
    }

    pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gz");
        enc.finish().expect("gz")
    }

    #[test]
    fn the_digest_is_the_whole_files_hash_once_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = format!("tube,person\n{}", "T0001,p1\nT0002,p2\n".repeat(500));
        let plain = dir.path().join("a.csv");
        std::fs::write(&plain, &text).expect("write");
        let zst = dir.path().join("a.zst");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 1).expect("zstd")).expect("w");
        let gz = dir.path().join("a.gz");
        std::fs::write(&gz, gzip(text.as_bytes())).expect("write");
        for p in [plain, zst, gz] {
            let bytes = std::fs::read(&p).expect("read");
            let whole = (bytes.len() as u64, xxhash_rust::xxh3::xxh3_128(&bytes));
            let mut t = Table::open(&p).expect("open");
            t.set_chunk_size(1000);
            assert_eq!(t.source_digest(), None, "{}: not read yet", p.display());
            assert_eq!(rows(&mut t).len(), 1000);
            assert_eq!(t.source_digest(), Some(whole), "{}", p.display());
            // A stream of the same bytes hashes alike.
            let mut t = stream("a", bytes).expect("open");
            t.set_chunk_size(1000);
            assert_eq!(t.source_digest(), None, "{}: not read yet", p.display());
            assert_eq!(rows(&mut t).len(), 1000);
            assert_eq!(t.source_digest(), Some(whole), "{}", p.display());
        }
        let parquet = dir.path().join("a.parquet");
        std::fs::write(&parquet, parquet::tests::one_column(&["T0001"])).expect("w");
        let mut t = Table::open(&parquet).expect("open");
        assert_eq!(rows(&mut t).len(), 1);
        assert_eq!(t.source_digest(), None, "Parquet is hashed by the caller");
    }
}
