//! CSV text cut into chunks that end on a record boundary, and the rows of a chunk.
//!
//! A chunk is about 8 MB and ends just after a newline outside quotes, found by quote
//! parity, so it parses on its own (in parallel with the others) and its first line's
//! number is known from the newlines before it. A chunk with no quote and valid UTF-8
//! is split by byte search; any other goes through `csv_core`. Both count CRLF, lone CR,
//! blank lines and quoted newlines as a text editor numbers lines.

use std::io::Read;
use std::path::Path;

use super::decode::Undecodable;
use super::{Chunk, ChunkKind, Record};
use crate::{Error, Result};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Target size of a CSV chunk.
pub(super) const CHUNK: usize = 8 << 20;

/// How many bytes are read for the header: a header line longer than this is read on
/// until it ends, like any long record.
const HEADER_CHUNK: usize = 4096;

/// A CSV stream being cut into chunks.
pub(super) struct CsvSource {
    reader: Box<dyn Read + Send>,
    /// Read past the last chunk's end: the start of the next one.
    carry: Vec<u8>,
    next_line: u64,
    pub(super) eof: bool,
    /// Buffers of parsed chunks, to read the next chunks into.
    spare: Vec<Vec<u8>>,
    delimiter: u8,
}

/// One chunk of CSV text, ending on a record boundary.
pub(super) struct CsvChunk {
    data: Vec<u8>,
    first_line: u64,
    delimiter: u8,
}

impl CsvChunk {
    /// Calls `f(line, record, raw)` for each row, as [`Chunk::for_each`] says.
    pub(super) fn for_each(
        &self,
        mut f: impl FnMut(u64, &Record, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut rec = Record::default();
        if let Some(text) = plain_text(&self.data) {
            return for_each_plain(text, self.first_line, self.delimiter, &mut rec, f);
        }
        let mut parser = Parser::new(&self.data, self.first_line, self.delimiter);
        while let Some((line, raw)) = parser.next(&mut rec) {
            f(line, &rec, raw)?;
        }
        Ok(())
    }

    /// The chunk's buffer, emptied, to read another chunk into.
    pub(super) fn into_buffer(self) -> Vec<u8> {
        let mut data = self.data;
        data.clear();
        data
    }
}

impl CsvSource {
    /// Cuts `reader` (decompressed and decoded text) into chunks of fields split on
    /// `delimiter`.
    pub(super) fn new(reader: Box<dyn Read + Send>, delimiter: u8) -> Self {
        CsvSource {
            reader,
            carry: Vec::new(),
            next_line: 1,
            eof: false,
            spare: Vec::new(),
            delimiter,
        }
    }

    /// Reads the header line: its column names, trimmed and lower-cased. A header that
    /// is not UTF-8 is refused, with the GB18030 hint when `gb18030()` says the file
    /// reads as GB18030.
    pub(super) fn read_header(
        &mut self,
        path: &Path,
        gb18030: impl Fn() -> bool,
    ) -> Result<Vec<String>> {
        let first = self.next_chunk(path, HEADER_CHUNK)?;
        let Some(ChunkKind::Csv(CsvChunk {
            data,
            first_line,
            delimiter,
        })) = first.map(|c| c.kind)
        else {
            return Err(Error::input(path, "the file is empty: no header line"));
        };
        let data = data.strip_prefix(BOM).unwrap_or(&data);
        let mut parser = Parser::new(data, first_line, delimiter);
        let mut rec = Record::default();
        let Some((_, _)) = parser.next(&mut rec) else {
            return Err(Error::input(path, "the file is empty: no header line"));
        };
        let mut header = Vec::with_capacity(rec.len());
        for i in 0..rec.len() {
            let name = std::str::from_utf8(rec.get(i).unwrap_or_default()).map_err(|_| {
                let hint = if gb18030() {
                    super::sniff::GB18030_HINT
                } else {
                    "; is this a CSV file?"
                };
                Error::input(path, format!("line 1: the header is not UTF-8 text{hint}"))
            })?;
            header.push(name.trim().to_ascii_lowercase());
        }
        // Whatever followed the header in that first piece is data.
        let mut joined = data[parser.pos..].to_vec();
        joined.append(&mut self.carry);
        self.carry = joined;
        self.next_line = parser.line;
        Ok(header)
    }

    /// Takes back a parsed chunk's buffer, to read a next chunk into.
    pub(super) fn recycle(&mut self, buffer: Vec<u8>) {
        self.spare.push(buffer);
    }

    /// The next chunk of about `size` bytes; `None` at the end of the stream.
    pub(super) fn next_chunk(&mut self, path: &Path, size: usize) -> Result<Option<Chunk>> {
        let CsvSource {
            reader,
            carry,
            next_line,
            eof,
            spare,
            delimiter,
        } = self;
        let delimiter = *delimiter;
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
                            path,
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
                    kind: ChunkKind::Csv(CsvChunk {
                        data: buf,
                        first_line,
                        delimiter,
                    }),
                }));
            }
            if let Some(cut) = record_boundary(&buf, delimiter) {
                carry.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
                let first_line = *next_line;
                *next_line += count_lines(&buf, 0..buf.len());
                return Ok(Some(Chunk {
                    kind: ChunkKind::Csv(CsvChunk {
                        data: buf,
                        first_line,
                        delimiter,
                    }),
                }));
            }
            // One record longer than the chunk: read on until it ends.
            let more = buf.len().max(size);
            let got = reader
                .by_ref()
                .take(more as u64)
                .read_to_end(&mut buf)
                .map_err(|e| read_failed(path, *next_line, "", &e))?;
            if got == 0 {
                *eof = true;
            }
        }
    }
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

/// Line ends in `data[range]`: LF, CRLF, or a lone CR (old Mac files), as `csv_core`
/// reads them. A CR is lone when the byte after it, even past the range, is not LF.
pub(super) fn count_lines(data: &[u8], range: std::ops::Range<usize>) -> u64 {
    let part = &data[range.clone()];
    let lf = memchr::memchr_iter(b'\n', part).count();
    let lone_cr = memchr::memchr_iter(b'\r', part)
        .filter(|&i| data.get(range.start + i + 1) != Some(&b'\n'))
        .count();
    (lf + lone_cr) as u64
}

/// The chunk as text when it can be split by plain byte search: valid UTF-8, no quote
/// (so no field holds a delimiter or a newline) and no carriage return but those of CRLF
/// line ends. Generated and exported files nearly always are; anything else goes
/// through `csv_core`.
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

/// The rows of a plain chunk (see [`plain_text`]), with the line numbers `csv_core`'s
/// path gives: one per line, blank lines skipped but counted. Each row is lent to `f`
/// from the chunk, not copied.
///
/// One search for delimiters and newlines runs over the whole chunk rather than one
/// per line and one per field: rows are about 60 bytes and fields a few, too short for
/// a vector search restarted at each to pay off (at 25 M rows the restarts were 6 % of
/// the ingest's time).
fn for_each_plain<'a>(
    text: &'a str,
    first_line: u64,
    delimiter: u8,
    rec: &mut Record<'a>,
    mut f: impl FnMut(u64, &Record<'a>, &[u8]) -> Result<()>,
) -> Result<()> {
    let bytes = text.as_bytes();
    let mut line = first_line;
    let mut start = 0;
    rec.set_plain(text);
    let mut row = |start: usize, end: usize, line: u64, rec: &mut Record<'a>| {
        // A plain chunk has no CR but those of CRLF line ends.
        let end = if end > start && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        let result = if end > start {
            rec.set_plain_row(start, end);
            f(line, rec, &bytes[start..end])
        } else {
            Ok(())
        };
        rec.next_plain_row();
        result
    };
    for at in memchr::memchr2_iter(delimiter, b'\n', bytes) {
        if bytes[at] == b'\n' {
            row(start, at, line, rec)?;
            line += 1;
            start = at + 1;
        } else {
            rec.push_end(at);
        }
    }
    if start < bytes.len() {
        row(start, bytes.len(), line, rec)?;
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

/// The end of the last complete record in `buf`: just after the last newline that is
/// outside a quoted field. Quotes are read as `csv_core` reads them: a quote opens a
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
            (At::Quoted, _) | (At::QuoteInQuoted, b'"') => At::Quoted,
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

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;
    use crate::ingest::table::tests::rows;
    use crate::ingest::table::{ReadOptions, Table};

    /// A table of `text`, read as comma-separated UTF-8.
    fn table(name: &str, text: impl Into<Vec<u8>>) -> Table {
        Table::from_reader(name, Cursor::new(text.into()), &ReadOptions::default()).expect("open")
    }

    #[test]
    fn line_numbers_count_crlf_blank_lines_and_quoted_newlines() {
        let mut t = table(
            "crlf.csv",
            "tube,person\r\nA001,p1\r\n\r\nA002,\"x\r\ny\"\r\n\nA003,p3",
        );
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
        let mut t = table("q.csv", text);
        t.set_chunk_size(97);
        let mut out = Vec::new();
        loop {
            let chunks = t.next_chunks(1).expect("chunk");
            if chunks.is_empty() {
                break;
            }
            for c in &chunks {
                c.for_each(|line, rec, _| {
                    out.push((
                        line,
                        String::from_utf8_lossy(rec.get(1).unwrap_or_default()).into_owned(),
                    ));
                    Ok(())
                })
                .expect("rows");
            }
            // The next chunks are read into this one's buffer.
            t.recycle(chunks);
        }
        assert_eq!(out.len(), 2000);
        assert_eq!(out[1999], (2 + 2 * 1999, "a\nb,\"1999\"".to_owned()));
    }

    #[test]
    fn plain_chunks_read_as_csv_core_reads_them() {
        // The same rows, once plain (split by byte search) and once with a quote that
        // sends every chunk through csv_core: fields, lines and raw rows must agree.
        let body = "T0001,p1, x \r\n\nT0002,,\r\nT0003,p3,z\n\n\nT0004,p4";
        let a = rows(&mut table("plain.csv", format!("tube,person,note\n{body}")));
        let quoted = format!("tube,person,note\n{body}\n\"T0005\",p5,q");
        let mut b = rows(&mut table("quoted.csv", quoted));
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
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..100_000 {
            writeln!(enc, "T{i:05},person{i}").expect("gz");
        }
        let bytes = enc.finish().expect("gz");
        let mut t = table("cut.csv.gz", &bytes[..bytes.len() / 2]);
        let err = loop {
            match t.next_chunks(2) {
                Ok(c) if c.is_empty() => panic!("a truncated stream must not end cleanly"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("cut.csv.gz"), "{err}");
    }

    #[test]
    fn semicolon_and_tab_files_read_with_their_delimiter() {
        let comma = "tube,site,note\nT001,a;b,x\n\"T002\",\"c\nd\",\"e,f\"\nT003,g h,\n";
        let semi = "tube;site;note\nT001;\"a;b\";x\n\"T002\";\"c\nd\";e,f\nT003;g h;\n";
        let tab = "tube\tsite\tnote\nT001\ta;b\tx\n\"T002\"\t\"c\nd\"\te,f\nT003\tg h\t\n";
        let fields = |text: &str, delimiter: u8, chunk: usize| {
            let opts = ReadOptions {
                delimiter: Some(delimiter),
                ..ReadOptions::default()
            };
            let reader = Cursor::new(text.as_bytes().to_vec());
            let mut t = Table::from_reader("f.csv", reader, &opts).expect("open");
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
    fn a_stream_that_fails_is_refused_naming_it() {
        // A reader that gives its bytes, then fails.
        struct Failing(Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(std::io::Error::other("the pipe broke")),
                    n => Ok(n),
                }
            }
        }
        let body = format!("tube,person\n{}", "T0001,p1\n".repeat(1000));
        let reader = Failing(Cursor::new(body.into_bytes()));
        let mut t = Table::from_reader("pipe.csv", reader, &ReadOptions::default()).expect("open");
        let err = loop {
            match t.next_chunks(2) {
                Ok(c) if c.is_empty() => panic!("a failed read must not end cleanly"),
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        assert_eq!(
            err,
            "pipe.csv: cannot read the file after line 2 (a compressed stream that ends early or is damaged?): the pipe broke"
        );
    }
}
