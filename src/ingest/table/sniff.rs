//! What a file is, told from its first bytes rather than its name (a clerk's
//! `.csv` may be a workbook, a `.bin` may be zstd): Parquet, an Excel workbook, or CSV,
//! plain or compressed; and, for a refusal of text that is not UTF-8, whether the file
//! reads as GB18030.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::decode::DECODE_BUF;
use crate::{Error, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PARQUET_MAGIC: [u8; 4] = *b"PAR1";
/// A zip archive's first local file header: `.xlsx` (and `.ods`) workbooks are zips.
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";
/// An OLE2 compound file: the `.xls` of Excel 97-2003.
const OLE2_MAGIC: [u8; 4] = [0xD0, 0xCF, 0x11, 0xE0];
/// What to do with a workbook. pooltrack does not read workbooks itself: a cell's type
/// is whatever Excel guessed (dates as serial numbers, ids as floats), the very
/// corruption the CSV checks look for, and the clerk's "Save As CSV" makes it visible.
const SAVE_AS_CSV: &str =
    "in Excel use File › Save As › CSV UTF-8 (comma delimited) and ingest that file";

/// Appended to a "not UTF-8" refusal when the file reads cleanly as GB18030.
pub(super) const GB18030_HINT: &str =
    "; it reads as GB18030 (Chinese Windows/Excel): add --encoding gb18030";

/// How much of a refused file [`reads_as_gb18030`] looks at.
const SNIFF: u64 = 16 << 20;

/// The forms a table is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    Parquet,
    /// CSV text, plain or compressed (see [`decompressed`]).
    Csv,
}

/// The form `magic` (the file's first bytes, at most 4) says the file is in. An empty
/// file and a workbook are refused here, before anything is decoded.
pub(super) fn form(path: &Path, magic: &[u8]) -> Result<Form> {
    if magic.is_empty() {
        return Err(Error::input(path, "the file is empty: no header line"));
    }
    if magic == PARQUET_MAGIC {
        return Ok(Form::Parquet);
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
    Ok(Form::Csv)
}

/// `file` as a stream of CSV bytes: gunzipped or unzstd'ed when its first bytes
/// (`magic`) say it is compressed.
pub(super) fn decompressed<R: Read + Send + 'static>(
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

/// Whether a file refused as not UTF-8 reads as GB18030 instead, to say so in the
/// refusal. Looks at the first 16 MB (decompressed): they must decode with no error
/// and hold Chinese text, see [`looks_like_gb18030`]. Only called on a refusal.
pub(super) fn reads_as_gb18030(path: &Path) -> bool {
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

/// Fills `buf` as far as `r` goes: a short read is not the end of a stream.
pub(super) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
    use crate::ingest::table::decode::tests::{GB, gb18030};
    use crate::ingest::table::tests::{gzip, rows, stream};
    use crate::ingest::table::{NOT_UTF8, ReadOptions, Table};

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

        // The hint reads the file again from its start, so these are files.
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
    fn a_stream_is_refused_without_a_hint_it_cannot_check() {
        // A stream cannot be read again from its start: the refusal is the plain one.
        let text = gb18030("tube,采样点\nT001,x\n");
        let err = Table::from_reader(
            "header.csv",
            std::io::Cursor::new(text.clone()),
            &ReadOptions::default(),
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            err.ends_with("line 1: the header is not UTF-8 text; is this a CSV file?"),
            "{err}"
        );
        let mut body = b"tube,site\n".to_vec();
        body.extend(gb18030("T001,朝阳区\n"));
        let t = Table::from_reader(
            "rows.csv",
            std::io::Cursor::new(body),
            &ReadOptions::default(),
        )
        .expect("open");
        let refusal = Error::input(
            "rows.csv",
            format!("line 2: {NOT_UTF8} (byte 1 of a field)"),
        );
        assert!(!t.explain(refusal).to_string().contains("gb18030"));
    }

    #[test]
    fn workbooks_and_empty_files_are_refused_by_their_first_bytes() {
        let refusal = |name: &str, bytes: &'static [u8]| {
            Table::from_reader(name, bytes, &ReadOptions::default())
                .err()
                .expect("refused")
                .to_string()
        };
        let xlsx = refusal("book.csv", b"PK\x03\x04\x14\x00\x06\x00");
        assert!(xlsx.contains("book.csv"), "{xlsx}");
        assert!(xlsx.contains("an Excel workbook (.xlsx"), "{xlsx}");
        let xls = refusal("old.csv", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1");
        assert!(xls.contains("an Excel 97-2003 workbook (.xls)"), "{xls}");
        assert!(refusal("none.csv", b"").contains("the file is empty"));
        // Fewer than 4 bytes are still text.
        assert_eq!(
            Table::from_reader("short.csv", &b"ab\n"[..], &ReadOptions::default())
                .expect("open")
                .header(),
            ["ab"]
        );
    }

    #[test]
    fn reads_plain_gzip_and_zstd_alike() {
        let text = "\u{feff}Tube, person\nT0001,p1\n\"T0002\",\"a,\nb\"\nT0003,p3\n";
        let zst = zstd::encode_all(text.as_bytes(), 1).expect("zstd");
        for (name, bytes) in [
            ("a.csv", text.as_bytes().to_vec()),
            ("a.csv.gz", gzip(text.as_bytes())),
            ("a.bin", zst),
        ] {
            let mut t = stream(name, bytes).expect("open");
            assert_eq!(t.header(), ["tube", "person"]);
            let r = rows(&mut t);
            assert_eq!(r.len(), 3, "{name}");
            assert_eq!(r[1].0, 3);
            assert_eq!(r[1].1[1], "a,\nb");
            assert_eq!(r[2].0, 5);
        }
    }

    #[test]
    fn empty_file_is_refused() {
        let err = stream("empty.csv", "").err().expect("refused");
        assert!(err.to_string().contains("empty"), "{err}");
        assert!(stream("empty.csv", "\n\r\n").is_err());
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("empty.csv");
        std::fs::write(&p, "").expect("write");
        assert_eq!(
            Table::open(&p).err().expect("refused").to_string(),
            err.to_string()
                .replace("empty.csv", &p.display().to_string())
        );
    }
}
