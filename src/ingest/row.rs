//! What every row parser shares: finding columns, reading a field as trimmed UTF-8
//! text, and reading a whole table chunk by chunk on all cores.

use std::path::Path;

use rayon::prelude::*;

use super::reject::Rejects;
use super::table::{Chunk, NOT_UTF8, Record, Table};
use crate::model::{check_tube, excel_scientific, excel_scientific_reason};
use crate::{Error, Result};

/// Finds a required column or refuses the file, naming what is missing, or the
/// delimiter the header seems to be written with.
pub fn required(table: &Table, name: &str) -> Result<usize> {
    table.column(name).ok_or_else(|| {
        if let Some(hint) = table.delimiter_hint(name) {
            return Error::input(table.path(), hint);
        }
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
/// Text that is not UTF-8 refuses the whole file, as the README says ([`read_parallel`]
/// adds the `--encoding` hint when the file reads as GB18030).
pub fn text<'r>(
    path: &Path,
    rec: &'r Record<'_>,
    col: Option<usize>,
    line: u64,
) -> Result<&'r str> {
    let Some(field) = col.and_then(|c| rec.str(c)) else {
        return Ok("");
    };
    let s = field.map_err(|valid_up_to| {
        Error::input(
            path,
            format!(
                "line {line}: {NOT_UTF8} (byte {} of a field); save the file as UTF-8",
                valid_up_to + 1
            ),
        )
    })?;
    Ok(s.trim_ascii())
}

/// A line number as stored: 32 bits, as no batch file comes near 4 billion lines.
pub(crate) fn line_no(path: &Path, line: u64) -> Result<u32> {
    u32::try_from(line).map_err(|_| {
        Error::input(
            path,
            format!(
                "line {line}: a file may hold at most {} lines; split it",
                u32::MAX
            ),
        )
    })
}

/// The checks every row starts with: as many fields as the header, and a tube barcode
/// of the accepted form. Returns the column at fault, the reason and the value to show.
pub(crate) fn first_problem<'r>(
    rec: &'r Record,
    raw_row: &'r [u8],
    width: usize,
    tube: &str,
    tube_col: usize,
) -> Option<(&'static str, String, &'r [u8])> {
    if let Some(problem) = width_problem(rec, raw_row, width) {
        return Some(problem);
    }
    check_tube(tube).err().map(|why| {
        let why = if excel_scientific(tube) {
            excel_scientific_reason("tube", tube)
        } else {
            why.to_owned()
        };
        ("tube", why, raw(rec, Some(tube_col)))
    })
}

/// A row with more or fewer fields than the header: the row as a whole is at fault.
pub(crate) fn width_problem<'r>(
    rec: &Record,
    raw_row: &'r [u8],
    width: usize,
) -> Option<(&'static str, String, &'r [u8])> {
    (rec.len() != width).then(|| {
        let why = format!(
            "the row has {} fields but the header has {width}",
            rec.len()
        );
        ("", why, raw_row)
    })
}

/// The raw bytes of a field, for reject reports.
pub fn raw<'r>(rec: &'r Record<'_>, col: Option<usize>) -> &'r [u8] {
    col.and_then(|c| rec.get(c)).unwrap_or_default()
}

/// Rows parsed from one chunk, to be appended in file order.
pub trait Part: Default + Send {
    /// Appends a later part.
    fn append(&mut self, later: &Self);

    /// Removes every row, keeping the buffers' room for the next chunk's rows.
    fn clear(&mut self);
}

/// Reads every chunk of `table`, parsing chunks in parallel with `parse_row`
/// (`(line, record, raw, out, rejects)`), and appends the parts in file order.
/// Returns the number of data rows read.
///
/// Reading the next chunks and appending the last parts are serial work; they run
/// beside the parsing of the current chunks, so neither core waits for them.
///
/// Parts and chunk buffers are cleared and used again rather than freed: memory the
/// process has not touched yet costs a page fault per 4 KiB (and, in a virtual
/// machine, the host's fault too). At 25 M rows that saved 100k of the ingest's 816k
/// faults and 65 MB of peak; most of the rest are the batch's own columns.
///
/// A refusal of text that is not UTF-8 says whether the file reads as GB18030 (see
/// [`Table::explain`]).
pub(crate) fn read_parallel<P: Part>(
    table: &mut Table,
    out: &mut P,
    rejects: &mut Rejects,
    parse_row: impl Fn(u64, &Record, &[u8], &mut P, &mut Rejects) -> Result<()> + Sync,
) -> Result<u64> {
    read_chunks(table, out, rejects, parse_row).map_err(|e| table.explain(e))
}

fn read_chunks<P: Part>(
    table: &mut Table,
    out: &mut P,
    rejects: &mut Rejects,
    parse_row: impl Fn(u64, &Record, &[u8], &mut P, &mut Rejects) -> Result<()> + Sync,
) -> Result<u64> {
    let mut rows = 0u64;
    let per_round = rayon::current_num_threads() * 2;
    let parse = |(chunk, mut part): (&Chunk, P)| -> Result<(P, Rejects, u64)> {
        let mut rj = Rejects::default();
        let mut n = 0u64;
        chunk.for_each(|line, rec, raw| {
            n += 1;
            parse_row(line, rec, raw, &mut part, &mut rj)
        })?;
        Ok((part, rj, n))
    };
    let mut spare: Vec<P> = Vec::new();
    let mut append = |parts: Vec<Result<(P, Rejects, u64)>>, spare: &mut Vec<P>| -> Result<()> {
        for p in parts {
            let (mut part, rj, n) = p?;
            out.append(&part);
            part.clear();
            spare.push(part);
            rejects.rows.extend(rj.rows);
            rows += n;
        }
        Ok(())
    };
    let mut chunks: Vec<Chunk> = table.next_chunks(per_round)?;
    let mut parsed = Vec::new();
    while !chunks.is_empty() {
        let earlier = std::mem::take(&mut parsed);
        let fresh: Vec<P> = (0..chunks.len())
            .map(|_| spare.pop().unwrap_or_default())
            .collect();
        let (next, now) = rayon::join(
            || append(earlier, &mut spare).and_then(|()| table.next_chunks(per_round)),
            || chunks.par_iter().zip(fresh).map(parse).collect::<Vec<_>>(),
        );
        parsed = now;
        let next = next?;
        table.recycle(std::mem::replace(&mut chunks, next));
    }
    append(parsed, &mut spare)?;
    Ok(rows)
}
