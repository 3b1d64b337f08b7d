//! Text in a legacy encoding (GB18030), decoded to UTF-8 as a stream before the CSV
//! reader cuts it into chunks, so chunks, record boundaries and line numbers are found
//! in UTF-8 exactly as for a UTF-8 file.

use std::io::Read;

/// Bytes the decoder reads from the file at a time.
pub(super) const DECODE_BUF: usize = 64 << 10;

/// A byte sequence the decoder refused, and on which line (counted as
/// [`count_lines`](super::csv::count_lines) counts them) of the decoded text it stands.
#[derive(Debug)]
pub(super) struct Undecodable {
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
/// The input is read in pieces of any size; `encoding_rs`'s `Decoder` keeps the first
/// bytes of a multibyte sequence cut by a piece's end and finishes it with the next
/// piece, so no character is ever split. A sequence that is not in the encoding fails
/// the read with an [`Undecodable`] naming its line.
pub(super) struct Decoding {
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
    pub(super) fn new(
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

#[cfg(test)]
pub(super) mod tests {
    use std::io::{Cursor, Write};

    use super::*;
    use crate::ingest::table::tests::rows;
    use crate::ingest::table::{ReadOptions, Table, TextEncoding};

    /// A CSV text with Chinese in plain and quoted fields, four-byte GB18030 characters,
    /// CRLF, blank lines and quoted newlines.
    pub(in crate::ingest::table) fn chinese_csv() -> String {
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

    pub(in crate::ingest::table) fn gb18030(text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
        assert!(!unmappable);
        bytes.into_owned()
    }

    pub(in crate::ingest::table) const GB: ReadOptions = ReadOptions {
        encoding: TextEncoding::Gb18030,
        delimiter: None,
    };

    #[test]
    fn gb18030_reads_alike_in_any_pieces_and_chunks() {
        let text = chinese_csv();
        let bytes = gb18030(&text);
        assert!(bytes.len() > 10_000 && std::str::from_utf8(&bytes).is_err());
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).expect("gz");
        let gz = enc.finish().expect("gz");
        // The UTF-8 text in one chunk is the reference.
        let mut t = Table::from_reader(
            "utf8.csv",
            Cursor::new(text.clone()),
            &ReadOptions::default(),
        )
        .expect("open");
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
            for (name, input) in [("gb.csv", &bytes), ("gb.csv.gz", &gz)] {
                let reader = Cursor::new(input.clone());
                let mut t = Table::read_decoding(name, reader, &GB, piece).expect("open");
                t.set_chunk_size(chunk);
                assert_eq!(t.header(), ["tube", "person", "site"]);
                let got = rows(&mut t);
                assert!(got == want, "{name}: piece {piece}, chunk {chunk}");
                assert_eq!(
                    t.source_digest(),
                    Some((input.len() as u64, xxhash_rust::xxh3::xxh3_128(input))),
                    "the digest is of the input's own bytes"
                );
            }
        }
    }

    #[test]
    fn decoding_never_splits_a_character_between_reads() {
        // A reader that hands out `n` bytes a time, whatever is asked for.
        struct Trickle(Cursor<Vec<u8>>, usize);
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
                let inner = Box::new(Trickle(Cursor::new(bytes.clone()), n));
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
        // Far enough from the header for the bad bytes to be read after it, or read
        // with the header's first 4 KB.
        let mut far = bytes[..13].to_vec();
        far.extend(b"T0000,p\r\n".repeat(1000));
        far.extend_from_slice(&bytes[13..]);
        let first_error = |input: &[u8], piece: usize| -> String {
            let reader = Cursor::new(input.to_vec());
            let mut t = match Table::read_decoding("bad.csv", reader, &GB, piece) {
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
            let err = first_error(&far, piece);
            assert!(
                err.contains("bad.csv: line 1006: the text is not GB18030"),
                "piece {piece}: {err}"
            );
            let err = first_error(&bytes, piece);
            assert!(
                err.contains("bad.csv: line 6: the text is not GB18030"),
                "piece {piece}: {err}"
            );
        }
    }
}
