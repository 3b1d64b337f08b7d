//! What every row parser shares: finding columns, reading a field as trimmed UTF-8 text,
//! and recording a row's problem.

use csv::ByteRecord;

use super::table::Table;
use crate::{Error, Result};

/// Finds a required column or refuses the file, naming what is missing.
pub fn required(table: &Table, name: &str) -> Result<usize> {
    table.column(name).ok_or_else(|| {
        Error::input(
            table.path(),
            format!(
                "the header has no {name:?} column (it has: {}); is this the right kind of file?",
                table.header().join(", ")
            ),
        )
    })
}

/// The field at `col` as trimmed text; a missing column reads as empty.
/// Text that is not UTF-8 refuses the whole file, as the README says.
pub fn text<'r>(
    table: &Table,
    rec: &'r ByteRecord,
    col: Option<usize>,
    line: u64,
) -> Result<&'r str> {
    let Some(raw) = col.and_then(|c| rec.get(c)) else {
        return Ok("");
    };
    let s = std::str::from_utf8(raw).map_err(|e| {
        Error::input(
            table.path(),
            format!(
                "line {line}: the text is not UTF-8 (byte {} of a field); save the file as UTF-8",
                e.valid_up_to() + 1
            ),
        )
    })?;
    Ok(s.trim_matches(|c: char| c.is_ascii_whitespace()))
}

/// The raw bytes of a field, for reject reports.
pub fn raw(rec: &ByteRecord, col: Option<usize>) -> &[u8] {
    col.and_then(|c| rec.get(c)).unwrap_or_default()
}
