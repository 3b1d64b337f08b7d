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
//! by encoding_rs's streaming decoder, which carries a multibyte sequence split between
//! two reads over to the next: chunks, record boundaries and line numbers are then
//! found in UTF-8 text exactly as for a UTF-8 file (GB18030 keeps ASCII, so every
//! newline, quote and delimiter is where it was).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::{Error, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PARQUET_MAGIC: [u8; 4] = *b"PAR1";
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// A zip archive's first local file header: `.xlsx` (and `.ods`) workbooks are zips.
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";
/// An OLE2 compound file: the `.xls` of Excel 97-2003.
const OLE2_MAGIC: [u8; 4] = [0xD0, 0xCF, 0x11, 0xE0];
/// What to do with a workbook. pooltrack does not read workbooks itself: a cell's type
/// is whatever Excel guessed (dates as serial numbers, ids as floats), the very
/// corruption the CSV checks look for, and the clerk's "Save As CSV" makes it visible.
const SAVE_AS_CSV: &str =
    "in Excel use File › Save As › CSV UTF-8 (comma delimited) and ingest that file";

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

/// Appended to a "not UTF-8" refusal when the file reads cleanly as GB18030.
const GB18030_HINT: &str = "; it reads as GB18030 (Chinese Windows/Excel): add --encoding gb18030";

/// The words of the refusal of a field that is not UTF-8 (see `row::text`), by which
/// [`Table::explain`] recognises it.
pub(crate) const NOT_UTF8: &str = "the text is not UTF-8";

/// How much of a refused file [`reads_as_gb18030`] looks at.
const SNIFF: u64 = 16 << 20;

/// Bytes the decoder reads from the file at a time.
const DECODE_BUF: usize = 64 << 10;

/// A byte sequence the decoder refused, and on which line (counted as [`count_lines`]
/// counts them) of the decoded text it stands.
#[derive(Debug)]
struct Undecodable {
    line: u64,
    encoding: &'static str,
}

impl std::fmt::Display for Undecodable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.encoding.to_ascii_uppercase();
        write!(
            f,
            "line {}: the text is not {name} (a byte sequence no {name} file holds); check which encoding the file was saved in (--encoding utf-8 or gb18030)",
            self.line
        )
    }
}

impl std::error::Error for Undecodable {}

/// A reader that decodes `inner` from a legacy encoding into UTF-8, as a stream.
///
/// The input is read in pieces of any size; encoding_rs's `Decoder` keeps the first
/// bytes of a multibyte sequence cut by a piece's end and finishes it with the next
/// piece, so no character is ever split. A sequence that is not in the encoding fails
/// the read with an [`Undecodable`] naming its line.
struct Decoding {
    inner: Box<dyn Read + Send>,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    /// `input[start..end]` is read but not decoded yet.
    start: usize,
    end: usize,
    inner_done: bool,
    output: Vec<u8>,
    /// `output[out_start..out_end]` is decoded but not handed out yet.
    out_start: usize,
    out_end: usize,
    finished: bool,
    /// Line ends in the text decoded so far; `cr` when it ended with a CR whose next
    /// byte is not known yet.
    lines: u64,
    cr: bool,
}

impl Decoding {
    fn new(
        inner: Box<dyn Read + Send>,
        encoding: &'static encoding_rs::Encoding,
        piece: usize,
    ) -> Self {
        let piece = piece.max(1);
        // With BOM sniffing: a file that starts with a UTF-8 or UTF-16 byte-order mark
        // is in that encoding, whatever was said.
        let decoder = encoding.new_decoder();
        Decoding {
            inner,
            decoder,
            input: vec![0; piece],
            start: 0,
            end: 0,
            inner_done: false,
            // Room for at least one whole character, whatever the piece size.
            output: vec![0; piece * 3 + 16],
            out_start: 0,
            out_end: 0,
            finished: false,
            lines: 0,
            cr: false,
        }
    }

    /// Counts the line ends in the next `written` bytes of decoded text.
    fn count(&mut self, written: usize) {
        for &b in &self.output[..written] {
            if b == b'\n' {
                self.lines += 1;
                self.cr = false;
            } else {
                if self.cr {
                    self.lines += 1;
                }
                self.cr = b == b'\r';
            }
        }
    }
}

impl Read for Decoding {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            if self.start == self.end && !self.inner_done {
                let n = self.inner.read(&mut self.input)?;
                self.start = 0;
                self.end = n;
                self.inner_done = n == 0;
            }
            let (res, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.start..self.end],
                &mut self.output,
                self.inner_done,
            );
            self.start += read;
            self.out_start = 0;
            self.out_end = written;
            self.count(written);
            match res {
                encoding_rs::DecoderResult::InputEmpty => self.finished = self.inner_done,
                encoding_rs::DecoderResult::OutputFull => {}
                encoding_rs::DecoderResult::Malformed(..) => {
                    // A CR right before the bad bytes ends its line.
                    let line = self.lines + u64::from(self.cr) + 1;
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        Undecodable {
                            line,
                            encoding: self.decoder.encoding().name(),
                        },
                    ));
                }
            }
        }
    }
}

/// Whether a file refused as not UTF-8 reads as GB18030 instead, to say so in the
/// refusal. Looks at the first 16 MB (decompressed): they must decode with no error
/// and hold Chinese text, see [`looks_like_gb18030`]. Only called on a refusal.
pub(crate) fn reads_as_gb18030(path: &Path) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    let Ok(n) = read_up_to(&mut file, &mut magic) else {
        return false;
    };
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(reader) = decompressed(path, &magic[..n], file) else {
        return false;
    };
    let mut bytes = Vec::new();
    if reader.take(SNIFF).read_to_end(&mut bytes).is_err() {
        return false;
    }
    let whole = (bytes.len() as u64) < SNIFF;
    looks_like_gb18030(&bytes, whole)
}

/// Whether `bytes` (the whole text when `whole`, else its start) are GB18030 text: they
/// decode with no error, and hold at least one multibyte character, at least half of
/// them in the GB2312 area (both bytes 0xA1 or above), where the common simplified
/// Chinese characters and Chinese punctuation are.
///
/// The second condition keeps the hint honest for Latin-1 or Windows-1252 text: an
/// accented letter followed by an ASCII letter ("Mü" + "ller") is often a valid GBK
/// pair, but one whose second byte is below 0xA1.
fn looks_like_gb18030(bytes: &[u8], whole: bool) -> bool {
    let mut decoder = encoding_rs::GB18030.new_decoder_without_bom_handling();
    let mut out = vec![0u8; DECODE_BUF];
    let mut pos = 0;
    loop {
        let (res, read, _) =
            decoder.decode_to_utf8_without_replacement(&bytes[pos..], &mut out, whole);
        pos += read;
        match res {
            encoding_rs::DecoderResult::InputEmpty => break,
            encoding_rs::DecoderResult::OutputFull => {}
            encoding_rs::DecoderResult::Malformed(..) => return false,
        }
    }
    // The text decoded cleanly, so its multibyte sequences are where this finds them.
    let (mut multi, mut gb2312) = (0u64, 0u64);
    let mut i = 0;
    while let Some(&lead) = bytes.get(i) {
        if lead < 0x81 {
            i += 1;
            continue;
        }
        let Some(&next) = bytes.get(i + 1) else {
            break;
        };
        multi += 1;
        if next.is_ascii_digit() {
            i += 4;
        } else {
            gb2312 += u64::from(lead >= 0xA1 && next >= 0xA1);
            i += 2;
        }
    }
    multi > 0 && gb2312 * 2 >= multi
}

/// `file` as a stream of CSV bytes: gunzipped or unzstd'ed when its first bytes
/// (`magic`) say it is compressed.
fn decompressed<R: Read + Send + 'static>(
    path: &Path,
    magic: &[u8],
    file: R,
) -> Result<Box<dyn Read + Send>> {
    Ok(if magic.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else if magic == ZSTD_MAGIC {
        let dec = zstd::stream::read::Decoder::new(file)
            .map_err(|e| Error::input(path, format!("cannot read zstd stream: {e}")))?;
        Box::new(dec)
    } else {
        Box::new(file)
    })
}

/// The refusal for a failed read of the file after line `next_line`: a decoding error
/// says itself; any other is the stream's (`what` says what may be wrong).
fn read_failed(path: &Path, next_line: u64, what: &str, e: &std::io::Error) -> Error {
    if let Some(bad) = e.get_ref().and_then(|x| x.downcast_ref::<Undecodable>()) {
        return Error::input(path, bad.to_string());
    }
    Error::input(
        path,
        format!("cannot read the file after line {next_line}{what}: {e}"),
    )
}

/// Line ends in `data[range]`: LF, CRLF, or a lone CR (old Mac files), as csv_core
/// reads them. A CR is lone when the byte after it, even past the range, is not LF.
fn count_lines(data: &[u8], range: std::ops::Range<usize>) -> u64 {
    let part = &data[range.clone()];
    let lf = memchr::memchr_iter(b'\n', part).count();
    let lone_cr = memchr::memchr_iter(b'\r', part)
        .filter(|&i| data.get(range.start + i + 1) != Some(&b'\n'))
        .count();
    (lf + lone_cr) as u64
}

/// Target size of a CSV chunk.
const CHUNK: usize = 8 << 20;

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
    /// Bytes between one field's end and the next one's start: 0 when csv_core
    /// unescaped the fields end to end, 1 when `text` is the raw line with its
    /// delimiters.
    gap: usize,
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
            None => 0,
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
    }

    fn push(&mut self, field: &str) {
        self.text.to_mut().push_str(field);
        self.ends.push(self.text.len());
    }

    /// Fields unescaped by csv_core, end to end: checked for UTF-8 once for the row.
    fn set_unescaped(&mut self, data: &[u8], ends: &[usize]) {
        self.clear();
        match std::str::from_utf8(data) {
            Ok(s) => self.text.to_mut().push_str(s),
            Err(_) => {
                self.utf8 = false;
                self.bytes.extend_from_slice(data);
            }
        }
        self.ends.extend_from_slice(ends);
    }

    /// A raw line with no quotes, borrowed: its fields are the text between delimiters.
    fn set_plain(&mut self, line: &'a str, delimiter: u8) {
        self.text = Cow::Borrowed(line);
        self.bytes.clear();
        self.utf8 = true;
        self.ends.clear();
        self.ends
            .extend(memchr::memchr_iter(delimiter, line.as_bytes()));
        self.ends.push(line.len());
        self.gap = 1;
    }
}

/// A piece of the input that parses on its own.
pub struct Chunk {
    kind: ChunkKind,
}

enum ChunkKind {
    Csv {
        data: Vec<u8>,
        first_line: u64,
        delimiter: u8,
    },
    Parquet {
        columns: Vec<StringArray>,
        first_row: u64,
    },
}

impl Chunk {
    /// Calls `f(line, record, raw)` for each row, in order; `raw` is the row as
    /// written (for reports). Stops at the first error `f` returns.
    pub fn for_each(&self, mut f: impl FnMut(u64, &Record, &[u8]) -> Result<()>) -> Result<()> {
        let mut rec = Record::default();
        match &self.kind {
            ChunkKind::Csv {
                data,
                first_line,
                delimiter,
            } => {
                if let Some(text) = plain_text(data) {
                    return for_each_plain(text, *first_line, *delimiter, &mut rec, f);
                }
                let mut parser = Parser::new(data, *first_line, *delimiter);
                while let Some((line, raw)) = parser.next(&mut rec) {
                    f(line, &rec, raw)?;
                }
            }
            ChunkKind::Parquet { columns, first_row } => {
                let rows = columns.first().map_or(0, Array::len);
                let mut raw = Vec::new();
                for i in 0..rows {
                    rec.clear();
                    raw.clear();
                    for (k, col) in columns.iter().enumerate() {
                        let v = if col.is_null(i) { "" } else { col.value(i) };
                        rec.push(v);
                        if k > 0 {
                            raw.push(b',');
                        }
                        raw.extend_from_slice(v.as_bytes());
                    }
                    // Line 1 is the header, as in CSV, so row 0 is "line" 2.
                    f(*first_row + i as u64 + 2, &rec, &raw)?;
                }
            }
        }
        Ok(())
    }
}

/// The chunk as text when it can be split by plain byte search: valid UTF-8, no quote
/// (so no field holds a delimiter or a newline) and no carriage return but those of CRLF
/// line ends. Generated and exported files nearly always are; anything else goes
/// through csv_core.
fn plain_text(data: &[u8]) -> Option<&str> {
    if memchr::memchr(b'"', data).is_some() {
        return None;
    }
    let lone_cr = memchr::memchr_iter(b'\r', data).any(|i| data.get(i + 1) != Some(&b'\n'));
    if lone_cr {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// The rows of a plain chunk (see [`plain_text`]), with the line numbers csv_core's
/// path gives: one per line, blank lines skipped but counted. Each row is lent to `f`
/// from the chunk, not copied.
fn for_each_plain<'a>(
    text: &'a str,
    first_line: u64,
    delimiter: u8,
    rec: &mut Record<'a>,
    mut f: impl FnMut(u64, &Record<'a>, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut line = first_line;
    let mut rest = text;
    while !rest.is_empty() {
        let (row, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(nl) => (&rest[..nl], &rest[nl + 1..]),
            None => (rest, ""),
        };
        let row = row.strip_suffix('\r').unwrap_or(row);
        if !row.is_empty() {
            rec.set_plain(row, delimiter);
            f(line, rec, row.as_bytes())?;
        }
        line += 1;
        rest = next;
    }
    Ok(())
}

/// Parses the records of one in-memory CSV chunk with exact line numbers.
struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
    csv: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8], first_line: u64, delimiter: u8) -> Self {
        Parser {
            data,
            pos: 0,
            line: first_line,
            csv: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            out: vec![0; 4096],
            ends: vec![0; 64],
        }
    }

    /// The next record into `rec`, with its line and raw bytes; `None` at the end.
    fn next(&mut self, rec: &mut Record) -> Option<(u64, &'a [u8])> {
        // Blank lines and the LF of a CRLF are skipped here, not inside csv_core,
        // so every newline is counted.
        while let Some(&b) = self.data.get(self.pos) {
            match b {
                b'\n' => self.line += 1,
                b'\r' if self.data.get(self.pos + 1) != Some(&b'\n') => self.line += 1,
                b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
        if self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let line = self.line;
        let (mut nout, mut nend) = (0, 0);
        self.csv.reset();
        loop {
            let input = &self.data[self.pos..];
            let (res, nin, o, e) =
                self.csv
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            self.pos += nin;
            nout += o;
            nend += e;
            match res {
                csv_core::ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                // The chunk ends on a record boundary: an empty input finishes the
                // last record.
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
            }
        }
        let raw = &self.data[start..self.pos];
        self.line += count_lines(self.data, start..self.pos);
        rec.set_unescaped(&self.out[..nout], &self.ends[..nend]);
        let trimmed = raw
            .iter()
            .rposition(|&b| b != b'\n' && b != b'\r')
            .map_or(&raw[..0], |i| &raw[..=i]);
        Some((line, trimmed))
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
    /// The file's size when opened.
    size: u64,
    /// How the CSV file was said to be written.
    options: ReadOptions,
}

/// xxh3-128 of the bytes read so far, and how many.
#[derive(Default)]
struct Digest {
    hasher: xxhash_rust::xxh3::Xxh3,
    bytes: u64,
}

/// A file that hashes what is read from it: the ingest's "already ingested" key costs
/// no second pass over a file that is read anyway (at 1.65 GB, a 0.24–0.5 s serial
/// pass before the parse could start).
struct Hashing {
    file: File,
    digest: Arc<Mutex<Digest>>,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        let mut d = self.digest.lock().unwrap_or_else(PoisonError::into_inner);
        d.hasher.update(&buf[..n]);
        d.bytes += n as u64;
        Ok(n)
    }
}

enum Source {
    Csv {
        reader: Box<dyn Read + Send>,
        carry: Vec<u8>,
        next_line: u64,
        eof: bool,
        /// Buffers of parsed chunks, to read the next chunks into.
        spare: Vec<Vec<u8>>,
    },
    Parquet {
        reader: ParquetRecordBatchReader,
        rows: u64,
    },
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
        if n == 0 {
            return Err(Error::input(path, "the file is empty: no header line"));
        }
        let magic = &magic[..n];
        if magic == PARQUET_MAGIC {
            return Table::open_parquet(path);
        }
        if magic == ZIP_MAGIC {
            return Err(Error::input(
                path,
                format!("this is an Excel workbook (.xlsx, a zip archive), not CSV: {SAVE_AS_CSV}"),
            ));
        }
        if magic == OLE2_MAGIC {
            return Err(Error::input(
                path,
                format!("this is an Excel 97-2003 workbook (.xls), not CSV: {SAVE_AS_CSV}"),
            ));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let digest = Arc::new(Mutex::new(Digest::default()));
        let file = Hashing {
            file,
            digest: Arc::clone(&digest),
        };
        let reader = decompressed(path, magic, file)?;
        let reader: Box<dyn Read + Send> = match options.encoding {
            TextEncoding::Utf8 => reader,
            TextEncoding::Gb18030 => Box::new(Decoding::new(reader, encoding_rs::GB18030, piece)),
        };
        let mut table = Table {
            path: path.to_path_buf(),
            header: Vec::new(),
            source: Source::Csv {
                reader,
                carry: Vec::new(),
                next_line: 1,
                eof: false,
                spare: Vec::new(),
            },
            chunk: CHUNK,
            digest: Some(digest),
            size,
            options: *options,
        };
        let first = table.next_csv_chunk(4096)?;
        let Some(ChunkKind::Csv {
            data,
            first_line,
            delimiter,
        }) = first.map(|c| c.kind)
        else {
            return Err(Error::input(path, "the file is empty: no header line"));
        };
        let data = data.strip_prefix(BOM).unwrap_or(&data);
        let mut parser = Parser::new(data, first_line, delimiter);
        let mut rec = Record::default();
        let Some((_, _)) = parser.next(&mut rec) else {
            return Err(Error::input(path, "the file is empty: no header line"));
        };
        for i in 0..rec.len() {
            let name = std::str::from_utf8(rec.get(i).unwrap_or_default()).map_err(|_| {
                let hint = if reads_as_gb18030(path) {
                    GB18030_HINT
                } else {
                    "; is this a CSV file?"
                };
                Error::input(path, format!("line 1: the header is not UTF-8 text{hint}"))
            })?;
            table.header.push(name.trim().to_ascii_lowercase());
        }
        // Whatever followed the header in that first piece is data.
        let rest = data[parser.pos..].to_vec();
        if let Source::Csv {
            carry, next_line, ..
        } = &mut table.source
        {
            let mut joined = rest;
            joined.append(carry);
            *carry = joined;
            *next_line = parser.line;
        }
        Ok(table)
    }

    fn open_parquet(path: &Path) -> Result<Table> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let builder = guarded(path, || {
            ParquetRecordBatchReaderBuilder::try_new(file)
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
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| Error::input(path, format!("not a readable Parquet file: {e}")))?;
        Ok(Table {
            path: path.to_path_buf(),
            header,
            source: Source::Parquet { reader, rows: 0 },
            chunk: CHUNK,
            digest: None,
            size,
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
    pub fn delimiter_hint(&self, name: &str) -> Option<String> {
        if !matches!(self.source, Source::Csv { .. }) {
            return None;
        }
        let used = self.options.delimiter.unwrap_or(b',');
        let line = self.header.join(&char::from(used).to_string());
        let (delimiter, word, option) = [
            (b',', "comma", "','"),
            (b';', "semicolon", "';'"),
            (b'\t', "tab", "tab"),
            (b'|', "pipe", "'|'"),
        ]
        .into_iter()
        .filter(|&(d, ..)| d != used)
        .find(|&(d, ..)| {
            let mut names = line
                .split(char::from(d))
                .map(|n| n.trim().trim_matches('"').trim());
            // More columns than the delimiter used found, one of them the missing one.
            names.clone().count() > self.header.len() && names.any(|n| n == name)
        })?;
        // The first names as written, a tab shown as `\t`.
        let sep = match delimiter {
            b'\t' => "\\t".to_owned(),
            d => char::from(d).to_string(),
        };
        let names: Vec<&str> = line.split(char::from(delimiter)).map(str::trim).collect();
        let mut sample = names[..names.len().min(3)].join(&sep);
        if names.len() > 3 {
            sample.push_str(&sep);
            sample.push_str("...");
        }
        let verb = if self.options.delimiter.is_some() {
            "use"
        } else {
            "add"
        };
        Some(format!(
            "the header looks {word}-separated ({sample}): {verb} --delimiter {option}"
        ))
    }

    /// Adds what the file may be to a refusal of text that is not UTF-8: a file read
    /// as UTF-8 whose bytes read cleanly as GB18030 gets the `--encoding gb18030`
    /// hint. Any other error is returned as it is.
    pub fn explain(&self, e: Error) -> Error {
        match e {
            Error::Input { path, reason }
                if reason.contains(NOT_UTF8)
                    && self.options.encoding == TextEncoding::Utf8
                    && matches!(self.source, Source::Csv { .. })
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

    /// The size and xxh3-128 of the whole file, once every chunk has been read; `None`
    /// for Parquet, before the end, or when the decoder stopped short of the file's
    /// end (then the caller hashes the file itself).
    pub fn source_digest(&self) -> Option<(u64, u128)> {
        let d = self.digest.as_ref()?;
        let d = d.lock().unwrap_or_else(PoisonError::into_inner);
        let done = matches!(self.source, Source::Csv { eof: true, .. });
        (done && d.bytes == self.size).then(|| (d.bytes, d.hasher.digest128()))
    }

    /// Reads up to `n` more chunks; an empty result means the end of the file. A
    /// damaged stream (truncated gzip, bad Parquet page) is an error for the whole file.
    pub fn next_chunks(&mut self, n: usize) -> Result<Vec<Chunk>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let next = match &self.source {
                Source::Csv { .. } => self.next_csv_chunk(self.chunk)?,
                Source::Parquet { .. } => self.next_parquet_chunk()?,
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
    pub fn recycle(&mut self, chunks: Vec<Chunk>) {
        if let Source::Csv { spare, .. } = &mut self.source {
            spare.extend(chunks.into_iter().filter_map(|c| match c.kind {
                ChunkKind::Csv { mut data, .. } => {
                    data.clear();
                    Some(data)
                }
                ChunkKind::Parquet { .. } => None,
            }));
        }
    }

    fn next_csv_chunk(&mut self, size: usize) -> Result<Option<Chunk>> {
        let Source::Csv {
            reader,
            carry,
            next_line,
            eof,
            spare,
        } = &mut self.source
        else {
            return Ok(None);
        };
        let delimiter = self.options.delimiter.unwrap_or(b',');
        let mut buf = spare.pop().unwrap_or_default();
        buf.extend_from_slice(carry);
        carry.clear();
        // Room for the whole chunk now: growing by doubling copied each chunk twice.
        buf.reserve(size.saturating_sub(buf.len()));
        loop {
            if !*eof && buf.len() < size {
                let want = size - buf.len();
                let got = reader
                    .by_ref()
                    .take(want as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| {
                        read_failed(
                            &self.path,
                            *next_line,
                            " (a compressed stream that ends early or is damaged?)",
                            &e,
                        )
                    })?;
                if got == 0 {
                    *eof = true;
                }
                if got < want && got != 0 {
                    continue;
                }
            }
            if *eof {
                if buf.is_empty() {
                    return Ok(None);
                }
                let first_line = *next_line;
                *next_line += count_lines(&buf, 0..buf.len());
                return Ok(Some(Chunk {
                    kind: ChunkKind::Csv {
                        data: buf,
                        first_line,
                        delimiter,
                    },
                }));
            }
            if let Some(cut) = record_boundary(&buf, delimiter) {
                carry.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
                let first_line = *next_line;
                *next_line += count_lines(&buf, 0..buf.len());
                return Ok(Some(Chunk {
                    kind: ChunkKind::Csv {
                        data: buf,
                        first_line,
                        delimiter,
                    },
                }));
            }
            // One record longer than the chunk: read on until it ends.
            let more = buf.len().max(size);
            let got = reader
                .by_ref()
                .take(more as u64)
                .read_to_end(&mut buf)
                .map_err(|e| read_failed(&self.path, *next_line, "", &e))?;
            if got == 0 {
                *eof = true;
            }
        }
    }

    fn next_parquet_chunk(&mut self) -> Result<Option<Chunk>> {
        let Source::Parquet { reader, rows } = &mut self.source else {
            return Ok(None);
        };
        let next = guarded(&self.path, || Ok(reader.next()))?;
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(Error::input(
                &self.path,
                format!("damaged Parquet data: {e}"),
            )),
            Some(Ok(batch)) => {
                let columns = stringify(&self.path, &batch)?;
                let first_row = *rows;
                *rows += batch.num_rows() as u64;
                Ok(Some(Chunk {
                    kind: ChunkKind::Parquet { columns, first_row },
                }))
            }
        }
    }
}

/// The end of the last complete record in `buf`: just after the last newline that is
/// outside a quoted field. Quotes are read as csv_core reads them: a quote opens a
/// quoted field only at the start of a field (just after a `delimiter`, so `O"Brien`
/// is a literal quote), and inside one `""` is an escaped quote.
fn record_boundary(buf: &[u8], delimiter: u8) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut at = At::FieldStart;
    let mut last = None;
    for (i, &b) in buf.iter().enumerate() {
        at = match (at, b) {
            (At::Quoted, b'"') => At::QuoteInQuoted,
            (At::Quoted, _) => At::Quoted,
            (At::QuoteInQuoted, b'"') => At::Quoted,
            (_, b'\n') => {
                last = Some(i + 1);
                At::FieldStart
            }
            (_, d) if d == delimiter => At::FieldStart,
            (At::FieldStart, b'"') => At::Quoted,
            (At::FieldStart, b'\r') => At::FieldStart,
            _ => At::Unquoted,
        };
    }
    last
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
fn check_chunks(
    path: &Path,
    meta: &parquet::file::metadata::ParquetMetaData,
    size: u64,
) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rows(t: &mut Table) -> Vec<(u64, Vec<String>, String)> {
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
    fn the_digest_is_the_whole_files_hash_once_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = format!("tube,person\n{}", "T0001,p1\nT0002,p2\n".repeat(500));
        let plain = dir.path().join("a.csv");
        std::fs::write(&plain, &text).expect("write");
        let zst = dir.path().join("a.zst");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 1).expect("zstd")).expect("w");
        let gz = dir.path().join("a.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gz");
        std::fs::write(&gz, enc.finish().expect("gz")).expect("write");
        for p in [plain, zst, gz] {
            let bytes = std::fs::read(&p).expect("read");
            let whole = (bytes.len() as u64, xxhash_rust::xxh3::xxh3_128(&bytes));
            let mut t = Table::open(&p).expect("open");
            t.set_chunk_size(1000);
            assert_eq!(t.source_digest(), None, "{}: not read yet", p.display());
            assert_eq!(rows(&mut t).len(), 1000);
            assert_eq!(t.source_digest(), Some(whole), "{}", p.display());
        }
        let parquet = dir.path().join("a.parquet");
        let batch = RecordBatch::try_from_iter([(
            "tube",
            Arc::new(StringArray::from(vec!["T0001"])) as ArrayRef,
        )])
        .expect("batch");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            File::create(&parquet).expect("create"),
            batch.schema(),
            None,
        )
        .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let mut t = Table::open(&parquet).expect("open");
        assert_eq!(rows(&mut t).len(), 1);
        assert_eq!(t.source_digest(), None, "Parquet is hashed by the caller");
    }

    #[test]
    fn line_numbers_count_crlf_blank_lines_and_quoted_newlines() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("crlf.csv");
        std::fs::write(
            &p,
            "tube,person\r\nA001,p1\r\n\r\nA002,\"x\r\ny\"\r\n\nA003,p3",
        )
        .expect("w");
        let mut t = Table::open(&p).expect("open");
        let r = rows(&mut t);
        let lines: Vec<u64> = r.iter().map(|x| x.0).collect();
        assert_eq!(lines, [2, 4, 7]);
        assert_eq!(r[1].2, "A002,\"x\r\ny\"");
        assert_eq!(r[2].1, ["A003", "p3"]);
    }

    #[test]
    fn chunks_split_only_between_records() {
        // Many records with quoted newlines, read in tiny chunks: every record and
        // line number must survive the cuts.
        let mut text = String::from("tube,note\n");
        for i in 0..2000 {
            text.push_str(&format!("T{i:04},\"a\nb,\"\"{i}\"\"\"\n"));
        }
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("q.csv");
        std::fs::write(&p, &text).expect("w");
        let mut t = Table::open(&p).expect("open");
        let mut out = Vec::new();
        while let Some(c) = t.next_csv_chunk(97).expect("chunk") {
            c.for_each(|line, rec, _| {
                out.push((
                    line,
                    String::from_utf8_lossy(rec.get(1).unwrap_or_default()).into_owned(),
                ));
                Ok(())
            })
            .expect("rows");
            // The next chunks are read into this one's buffer.
            t.recycle(vec![c]);
        }
        assert_eq!(out.len(), 2000);
        assert_eq!(out[1999], (2 + 2 * 1999, "a\nb,\"1999\"".to_owned()));
    }

    #[test]
    fn plain_chunks_read_as_csv_core_reads_them() {
        // The same rows, once plain (split by byte search) and once with a quote that
        // sends every chunk through csv_core: fields, lines and raw rows must agree.
        let body = "T0001,p1, x \r\n\nT0002,,\r\nT0003,p3,z\n\n\nT0004,p4";
        let dir = tempfile::tempdir().expect("tmp");
        let plain = dir.path().join("plain.csv");
        std::fs::write(&plain, format!("tube,person,note\n{body}")).expect("w");
        let quoted = dir.path().join("quoted.csv");
        std::fs::write(&quoted, format!("tube,person,note\n{body}\n\"T0005\",p5,q")).expect("w");
        let a = rows(&mut Table::open(&plain).expect("open"));
        let mut b = rows(&mut Table::open(&quoted).expect("open"));
        assert_eq!(b.pop().map(|r| r.0), Some(9));
        assert_eq!(a, b);
        assert_eq!(a[0].1, ["T0001", "p1", " x "]);
        assert_eq!(a[0].2, "T0001,p1, x ");
        assert_eq!(a[1].1, ["T0002", "", ""]);
        let lines: Vec<u64> = a.iter().map(|r| r.0).collect();
        assert_eq!(lines, [2, 4, 5, 8]);
        assert!(plain_text(b"a,b\r\nc,d\n").is_some());
        assert!(
            plain_text(b"a,b\rc,d\n").is_none(),
            "a lone CR ends a record"
        );
        assert!(plain_text(b"a,\"b\"\n").is_none());
        assert!(
            plain_text(b"a,\xe9\n").is_none(),
            "not UTF-8: checked field by field"
        );
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_does_not_open_quoting() {
        let buf = b"a,O\"Brien,x\nb,\"q\nq\",y\nc,\"open";
        assert_eq!(record_boundary(buf, b','), Some(22));
        assert_eq!(record_boundary(b"a,\"x\"\"\ny\"", b','), None);
        assert_eq!(record_boundary(b"a,\"x\"\"\"\ny", b','), Some(8));
        // With another delimiter, a quote after a comma is inside a field.
        assert_eq!(record_boundary(b"a;\"x\ny\"\nb", b';'), Some(8));
        assert_eq!(record_boundary(b"a,\"x\ny\nb", b';'), Some(7));
    }

    #[test]
    fn truncated_gzip_fails_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..100_000 {
            writeln!(enc, "T{i:05},person{i}").expect("gz");
        }
        let bytes = enc.finish().expect("gz");
        let p = dir.path().join("cut.csv.gz");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("write");
        let mut t = Table::open(&p).expect("header still reads");
        let err = loop {
            match t.next_chunks(2) {
                Ok(c) if c.is_empty() => panic!("a truncated stream must not end cleanly"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("cut.csv.gz"), "{err}");
    }

    /// A CSV text with Chinese in plain and quoted fields, four-byte GB18030 characters,
    /// CRLF, blank lines and quoted newlines.
    fn chinese_csv() -> String {
        let mut text = String::from("tube,person,site\r\n");
        for i in 0..600 {
            match i % 5 {
                0 => text.push_str(&format!("T{i:04},张伟{i},朝阳区第一采样点\r\n")),
                1 => text.push_str(&format!("T{i:04},\"王\r\n芳\",\"海淀区,第二\"\r\n\r\n")),
                2 => text.push_str(&format!("T{i:04},𠀀😀{i},€‰—“”\n")),
                3 => text.push_str(&format!("T{i:04},a,b\n\n")),
                _ => text.push_str(&format!("T{i:04},阳性,阴性\r\n")),
            }
        }
        text
    }

    fn gb18030(text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
        assert!(!unmappable);
        bytes.into_owned()
    }

    const GB: ReadOptions = ReadOptions {
        encoding: TextEncoding::Gb18030,
        delimiter: None,
    };

    #[test]
    fn gb18030_reads_alike_in_any_pieces_and_chunks() {
        let text = chinese_csv();
        let bytes = gb18030(&text);
        assert!(bytes.len() > 10_000 && std::str::from_utf8(&bytes).is_err());
        let dir = tempfile::tempdir().expect("tmp");
        let utf8 = dir.path().join("utf8.csv");
        std::fs::write(&utf8, &text).expect("w");
        let gb = dir.path().join("gb.csv");
        std::fs::write(&gb, &bytes).expect("w");
        let gz = dir.path().join("gb.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).expect("gz");
        std::fs::write(&gz, enc.finish().expect("gz")).expect("w");
        // The UTF-8 file in one chunk is the reference.
        let mut t = Table::open(&utf8).expect("open");
        t.set_chunk_size(1 << 30);
        let want = rows(&mut t);
        assert_eq!(want.len(), 600);
        assert_eq!(want[0].1, ["T0000", "张伟0", "朝阳区第一采样点"]);
        assert_eq!(want[1].1, ["T0001", "王\r\n芳", "海淀区,第二"]);
        assert_eq!(want[2].1, ["T0002", "𠀀😀2", "€‰—“”"]);
        // Each fifth row from the second adds a quoted newline and a blank line, from
        // the fourth a blank line.
        assert_eq!(want.last().map(|r| r.0), Some(2 + 599 + 120 * 3));
        // Pieces of 1 to 7 bytes cut every multibyte sequence somewhere; chunks of a
        // few bytes cut the text between nearly every record.
        for (piece, chunk) in [
            (1, 1),
            (2, 3),
            (3, 7),
            (5, 97),
            (7, 1 << 30),
            (DECODE_BUF, 13),
        ] {
            for p in [&gb, &gz] {
                let mut t = Table::open_decoding(p, &GB, piece).expect("open");
                t.set_chunk_size(chunk);
                assert_eq!(t.header(), ["tube", "person", "site"]);
                let got = rows(&mut t);
                assert!(got == want, "{}: piece {piece}, chunk {chunk}", p.display());
                assert_eq!(
                    t.source_digest(),
                    Some((
                        std::fs::metadata(p).expect("size").len(),
                        xxhash_rust::xxh3::xxh3_128(&std::fs::read(p).expect("read"))
                    )),
                    "the digest is of the file's own bytes"
                );
            }
        }
    }

    #[test]
    fn decoding_never_splits_a_character_between_reads() {
        // A reader that hands out `n` bytes a time, whatever is asked for.
        struct Trickle(std::io::Cursor<Vec<u8>>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.1);
                self.0.read(&mut buf[..n])
            }
        }
        let text = chinese_csv();
        let bytes = gb18030(&text);
        for n in 1..=9 {
            for piece in [1, 2, 3, 4, 64] {
                let inner = Box::new(Trickle(std::io::Cursor::new(bytes.clone()), n));
                let mut dec = Decoding::new(inner, encoding_rs::GB18030, piece);
                let mut out = Vec::new();
                // Read it back in small, odd sizes too.
                let mut buf = [0u8; 5];
                loop {
                    let k = dec.read(&mut buf).expect("decodes");
                    if k == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..k]);
                }
                assert!(out == text.as_bytes(), "reads of {n}, pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_bad_gb18030_sequence_refuses_the_file_naming_its_line() {
        // Line 6 holds 0xFF, which no GB18030 text holds, after a CRLF, a blank line,
        // a quoted newline and a lone CR.
        let mut bytes = gb18030("tube,person\r\nT0001,张伟\r\n\r\nT0002,\"王\n芳\"\rT0003,");
        bytes.extend_from_slice(b"\xff\xfe\nT0004,p4\n");
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, &bytes).expect("w");
        // Far enough from the header for the bad bytes to be read after it, or read
        // with the header's first 4 KB.
        let mut far = bytes[..13].to_vec();
        far.extend(b"T0000,p\r\n".repeat(1000));
        far.extend_from_slice(&bytes[13..]);
        let far_path = dir.path().join("far.csv");
        std::fs::write(&far_path, &far).expect("w");
        let first_error = |p: &Path, piece: usize| -> String {
            let mut t = match Table::open_decoding(p, &GB, piece) {
                Ok(t) => t,
                Err(e) => return e.to_string(),
            };
            loop {
                match t.next_chunks(2) {
                    Ok(c) if c.is_empty() => panic!("bad bytes must not read cleanly"),
                    Ok(_) => {}
                    Err(e) => return e.to_string(),
                }
            }
        };
        for piece in [1, 2, 3, DECODE_BUF] {
            let err = first_error(&far_path, piece);
            assert!(
                err.contains("line 1006: the text is not GB18030"),
                "piece {piece}: {err}"
            );
            let err = first_error(&p, piece);
            assert!(
                err.contains("line 6: the text is not GB18030"),
                "piece {piece}: {err}"
            );
        }
    }

    #[test]
    fn only_text_that_reads_as_chinese_gets_the_gb18030_hint() {
        assert!(looks_like_gb18030(
            &gb18030("T1,朝阳区第一采样点,阳性"),
            true
        ));
        // Latin-1 "José García": 0xE9 then a space is no GB18030 pair.
        assert!(!looks_like_gb18030(b"p,Jos\xe9 Garc\xeda", true));
        // Latin-1 "Müller, Straße" decodes cleanly as GBK, to nonsense: refused by the
        // GB2312-area rule.
        let latin = b"p,M\xfcller,Stra\xdfe";
        assert!(
            encoding_rs::GB18030
                .decode_without_bom_handling_and_without_replacement(latin)
                .is_some()
        );
        assert!(!looks_like_gb18030(latin, true));
        assert!(
            !looks_like_gb18030(b"tube,person\n", true),
            "ASCII: nothing to hint"
        );
        // A cut sequence at the end of a sample is not an error; at the end of the file
        // it is.
        let cut = &gb18030("朝阳区")[..5];
        assert!(looks_like_gb18030(cut, false));
        assert!(!looks_like_gb18030(cut, true));

        let dir = tempfile::tempdir().expect("tmp");
        let gb = dir.path().join("gb.csv");
        std::fs::write(&gb, gb18030("tube,site\nT001,朝阳区第一采样点\n")).expect("w");
        let latin1 = dir.path().join("latin1.csv");
        std::fs::write(&latin1, b"tube,site\nT001,M\xfcller\n").expect("w");
        let refusal = |p: &Path| Error::input(p, format!("line 2: {NOT_UTF8} (byte 1 of a field)"));
        let t = Table::open(&gb).expect("open");
        assert!(
            t.explain(refusal(&gb))
                .to_string()
                .ends_with("add --encoding gb18030")
        );
        let other = t.explain(Error::input(&gb, "something else")).to_string();
        assert!(!other.contains("gb18030"), "{other}");
        let t = Table::open(&latin1).expect("open");
        assert!(!t.explain(refusal(&latin1)).to_string().contains("gb18030"));
        // A header in GB18030 gets the hint where it is refused.
        let header = dir.path().join("header.csv");
        std::fs::write(&header, gb18030("tube,采样点\nT001,x\n")).expect("w");
        let err = Table::open(&header).err().expect("refused").to_string();
        assert!(
            err.contains("line 1: the header is not UTF-8 text; it reads as GB18030"),
            "{err}"
        );
        assert!(Table::open_with(&header, &GB).is_ok());
    }

    #[test]
    fn semicolon_and_tab_files_read_with_their_delimiter() {
        let dir = tempfile::tempdir().expect("tmp");
        let comma = "tube,site,note\nT001,a;b,x\n\"T002\",\"c\nd\",\"e,f\"\nT003,g h,\n";
        let semi = "tube;site;note\nT001;\"a;b\";x\n\"T002\";\"c\nd\";e,f\nT003;g h;\n";
        let tab = "tube\tsite\tnote\nT001\ta;b\tx\n\"T002\"\t\"c\nd\"\te,f\nT003\tg h\t\n";
        let fields = |text: &str, delimiter: u8, chunk: usize| {
            let p = dir.path().join("f.csv");
            std::fs::write(&p, text).expect("w");
            let opts = ReadOptions {
                delimiter: Some(delimiter),
                ..ReadOptions::default()
            };
            let mut t = Table::open_with(&p, &opts).expect("open");
            t.set_chunk_size(chunk);
            assert_eq!(t.header(), ["tube", "site", "note"]);
            rows(&mut t)
                .into_iter()
                .map(|(line, fields, _)| (line, fields))
                .collect::<Vec<_>>()
        };
        let want = fields(comma, b',', 1 << 20);
        assert_eq!(want[0].1, ["T001", "a;b", "x"]);
        assert_eq!(want[1].1, ["T002", "c\nd", "e,f"]);
        for chunk in [1, 5, 1 << 20] {
            assert_eq!(fields(semi, b';', chunk), want, "semicolons, chunk {chunk}");
            assert_eq!(fields(tab, b'\t', chunk), want, "tabs, chunk {chunk}");
        }
        // Plain chunks (no quote) split on the delimiter too.
        let plain = fields("tube;site;note\nT001;a,b;x\n", b';', 1 << 20);
        assert_eq!(plain[0].1, ["T001", "a,b", "x"]);
    }

    #[test]
    fn a_header_split_on_another_delimiter_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("semi.csv");
        std::fs::write(&p, "Tube; Person;mode;collected_at\nT001;p;pool;x\n").expect("w");
        let t = Table::open(&p).expect("open");
        assert_eq!(t.column("tube"), None);
        let hint = t.delimiter_hint("tube").expect("a hint");
        assert_eq!(
            hint,
            "the header looks semicolon-separated (tube;person;mode;...): add --delimiter ';'"
        );
        assert_eq!(
            t.delimiter_hint("site"),
            None,
            "not in the header either way"
        );
        let p = dir.path().join("tab.csv");
        std::fs::write(&p, "tube\tperson\nT001\tp\n").expect("w");
        let hint = Table::open(&p).expect("open").delimiter_hint("person");
        assert_eq!(
            hint.as_deref(),
            Some("the header looks tab-separated (tube\\tperson): add --delimiter tab")
        );
        // A comma file read with ';' is told to use ','.
        let p = dir.path().join("comma.csv");
        std::fs::write(&p, "tube,person\nT001,p\n").expect("w");
        let semi = ReadOptions {
            delimiter: Some(b';'),
            ..ReadOptions::default()
        };
        let hint = Table::open_with(&p, &semi)
            .expect("open")
            .delimiter_hint("tube");
        assert_eq!(
            hint.as_deref(),
            Some("the header looks comma-separated (tube,person): use --delimiter ','")
        );
        assert_eq!(Table::open(&p).expect("open").delimiter_hint("site"), None);
        // A ';' inside a comma-separated header that splits into no more columns is
        // not taken for the delimiter.
        std::fs::write(&p, "tube,remark;person\nT001,p\n").expect("w");
        assert_eq!(
            Table::open(&p).expect("open").delimiter_hint("person"),
            None
        );
    }

    #[test]
    fn empty_file_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("empty.csv");
        std::fs::write(&p, "").expect("write");
        let err = Table::open(&p).err().expect("refused");
        assert!(err.to_string().contains("empty"), "{err}");
        std::fs::write(&p, "\n\r\n").expect("write");
        assert!(Table::open(&p).is_err());
    }
}
