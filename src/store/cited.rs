//! Where a round's rows came from (`batch N, FILE line L`), held compactly: one entry
//! per run of rows that share a batch and file and whose lines count up by one. A
//! batch's rows are stored together and in the order of its file, so a city's 25
//! million collection rows are a few runs (one more after each rejected or skipped
//! line), where a line number per row held 200 MB through a whole export. A file's
//! name is read as a dictionary, decoded once per row group, not once a row.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef};

use crate::store::read::{self, Picked};
use crate::store::{BatchKind, Store};
use crate::text::push_number_bytes;
use crate::{Error, Result};

/// Rows from one place on that share a batch and file, their lines counting up by one
/// from `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// The first row's place.
    place: u32,
    batch: u32,
    /// The file, by number.
    file: u32,
    /// The first row's line.
    line: u64,
}

impl Run {
    /// Whether `next`, starting at a later place, only continues this run.
    fn continued_by(&self, next: &Run) -> bool {
        (self.batch, self.file) == (next.batch, next.file)
            && next
                .place
                .checked_sub(self.place)
                .and_then(|d| u64::from(d).checked_add(self.line))
                == Some(next.line)
    }
}

/// Where some rows came from (`batch N, FILE line L`), as runs of rows.
#[derive(Default)]
pub struct Cited {
    /// Ascending by place; the first (when any) at place 0.
    runs: Vec<Run>,
    /// Each row's line, when its rows' lines jump so often that runs would take more
    /// room than a line a row (rows picked here and there, as the deciding rows of
    /// the across-rounds health codes are); the runs then say only batch and file.
    each: Option<Vec<u64>>,
    rows: u32,
}

impl Cited {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Row `i`'s line number (0 past the end).
    pub fn line(&self, i: usize) -> u64 {
        match &self.each {
            Some(each) => each.get(i).copied().filter(|_| i < self.len()).unwrap_or(0),
            None => self
                .run_of(i)
                .map_or(0, |(run, place)| run.line + u64::from(place - run.place)),
        }
    }

    /// The run holding place `i`, and the place as a `u32`.
    fn run_of(&self, i: usize) -> Option<(&Run, u32)> {
        let place = u32::try_from(i).ok().filter(|&p| p < self.rows)?;
        let k = self.runs.partition_point(|r| r.place <= place);
        Some((self.runs.get(k.checked_sub(1)?)?, place))
    }

    /// The batch, file name (numbered by `files`) and line of place `i`; `None` past
    /// the end.
    fn source<'f>(&self, i: usize, files: &'f [String]) -> Option<(u32, &'f str, u64)> {
        let (run, _) = self.run_of(i)?;
        Some((
            run.batch,
            files.get(run.file as usize).map_or("", String::as_str),
            self.line(i),
        ))
    }

    /// Appends `batch N, FILE line L` of place `i` to `out` (nothing past the end).
    pub fn write(&self, i: usize, files: &[String], out: &mut Vec<u8>) {
        let Some((batch, file, line)) = self.source(i, files) else {
            return;
        };
        out.extend_from_slice(b"batch ");
        push_number_bytes(out, u64::from(batch));
        out.extend_from_slice(b", ");
        out.extend_from_slice(file.as_bytes());
        out.extend_from_slice(b" line ");
        push_number_bytes(out, line);
    }

    /// Appends `batch N, FILE line L` of place `i` to a CSV line as its field: quoted,
    /// since it holds a comma, with any quote in the file name doubled (nothing past
    /// the end, an empty field).
    pub fn write_csv(&self, i: usize, files: &[String], out: &mut Vec<u8>) {
        let Some((batch, file, line)) = self.source(i, files) else {
            return;
        };
        out.extend_from_slice(b"\"batch ");
        push_number_bytes(out, u64::from(batch));
        out.extend_from_slice(b", ");
        let mut rest = file.as_bytes();
        while let Some(q) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=q]);
            out.push(b'"');
            rest = &rest[q + 1..];
        }
        out.extend_from_slice(rest);
        out.extend_from_slice(b" line ");
        push_number_bytes(out, line);
        out.push(b'"');
    }

    /// Adds the row at the next place.
    fn push(&mut self, batch: u32, file: u32, line: u64) {
        self.add_run(Run {
            place: self.rows,
            batch,
            file,
            line,
        });
        self.rows = self.rows.saturating_add(1);
    }

    /// Keeps `run`, which starts at or past the last run's rows, unless it only
    /// continues the last run (with lines kept a row each, whatever its line).
    fn add_run(&mut self, run: Run) {
        let dense = self.each.is_some();
        let continues = |r: &Run| {
            if dense {
                (r.batch, r.file) == (run.batch, run.file)
            } else {
                r.continued_by(&run)
            }
        };
        if !self.runs.last().is_some_and(continues) {
            self.runs.push(run);
        }
    }

    /// Keeps a line a row, and runs only where the batch or file changes.
    fn make_dense(&mut self) {
        if self.each.is_some() {
            return;
        }
        let each = (0..self.len()).map(|i| self.line(i)).collect();
        let runs = std::mem::take(&mut self.runs);
        self.each = Some(each);
        for run in runs {
            self.add_run(Run { line: 0, ..run });
        }
    }

    /// The sources of one part's rows from its `batch`, `source` (a dictionary) and
    /// `line` columns, files numbered by `files`; `None` unless `c` is those three
    /// columns with those types (a damaged segment), or the part holds `u32::MAX` rows.
    pub fn of(c: &[ArrayRef], files: &mut Files) -> Option<Cited> {
        let [batch, source, line] = c else {
            return None;
        };
        let batch = batch.as_primitive_opt::<UInt32Type>()?;
        let source = source.as_dictionary_opt::<Int32Type>()?;
        let names = source.values().as_string_opt::<i32>()?;
        let line = line.as_primitive_opt::<UInt64Type>()?;
        if batch.len() != line.len() || batch.len() != source.len() {
            return None;
        }
        u32::try_from(batch.len()).ok().filter(|&n| n < u32::MAX)?;
        let numbers: Vec<u32> = (0..names.len())
            .map(|k| files.number(crate::text::text_at(names, k)))
            .collect();
        let mut cited = Cited::default();
        let keys = source.keys();
        for (i, &l) in line.values().iter().enumerate() {
            let file = usize::try_from(keys.value(i))
                .ok()
                .and_then(|k| numbers.get(k))
                .copied()
                .unwrap_or(u32::MAX);
            cited.push(batch.value(i), file, l);
        }
        if cited.runs.len() * std::mem::size_of::<Run>() > cited.len() * 8 {
            cited.make_dense();
        }
        Some(cited)
    }

    /// The parts' rows one after the other, their files numbered anew.
    pub fn join(parts: Vec<(Cited, Files)>) -> (Cited, Files) {
        let mut files = Files::default();
        let mut cited = Cited::default();
        for (mut part, names) in parts {
            let numbers: Vec<u32> = names.names.iter().map(|n| files.number(n)).collect();
            for run in &mut part.runs {
                run.file = numbers.get(run.file as usize).copied().unwrap_or(u32::MAX);
            }
            cited.append(part);
        }
        (cited, files)
    }

    /// Appends the rows of `part`, whose file numbers are this one's.
    pub fn append(&mut self, mut part: Cited) {
        if self.each.is_some() || part.each.is_some() {
            self.make_dense();
            part.make_dense();
            if let (Some(each), Some(more)) = (&mut self.each, part.each.take()) {
                each.extend(more);
            }
        }
        let base = self.rows;
        for run in part.runs {
            self.add_run(Run {
                place: run.place.saturating_add(base),
                ..run
            });
        }
        self.rows = self.rows.saturating_add(part.rows);
    }
}

/// Source file names, numbered.
#[derive(Default)]
pub struct Files {
    /// The names, by number.
    pub names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Files {
    /// The number of `name`, given it the first time it is met.
    pub fn number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.ids.get(name) {
            return n;
        }
        self.names.push(name.to_owned());
        let n = u32::try_from(self.names.len() - 1).unwrap_or(u32::MAX);
        self.ids.insert(name.to_owned(), n);
        n
    }
}

/// The sources of every row of `round`'s `kind` segments, in row order, read a row
/// group per task on all cores.
///
/// # Errors
///
/// A segment that cannot be read, or whose columns are not the store's.
pub fn of_round(store: &Store, round: &str, kind: BatchKind) -> Result<(Cited, Files)> {
    let files_of_round = read::segment_files(store, round, kind);
    let parts = read::map_rows(
        store,
        &files_of_round,
        &["batch", "source", "line"],
        &["source"],
        Picked::All,
        |c| {
            let mut names = Files::default();
            let part = Cited::of(c, &mut names).ok_or_else(|| {
                Error::damaged(
                    store.root(),
                    format!("round {round}: the source columns of its {kind:?} segments are not the store's"),
                )
            })?;
            Ok((part, names))
        },
    )?;
    Ok(Cited::join(parts))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, StringArray, UInt32Array, UInt64Array};

    use super::*;

    fn part(batch: &[u32], keys: &[i32], names: &[&str], line: &[u64]) -> (Cited, Files) {
        let source = DictionaryArray::<Int32Type>::try_new(
            keys.iter().copied().collect(),
            Arc::new(StringArray::from(names.to_vec())),
        )
        .expect("keys within the names");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(batch.to_vec())),
            Arc::new(source),
            Arc::new(UInt64Array::from(line.to_vec())),
        ];
        let mut files = Files::default();
        let cited = Cited::of(&columns, &mut files).expect("the store's columns");
        (cited, files)
    }

    #[test]
    fn rows_of_parts_read_with_their_own_dictionaries_cite_their_own_file() {
        let parts = vec![
            part(&[1, 1, 2], &[0, 0, 1], &["a.csv", "b.csv"], &[2, 3, 2]),
            // The same files, numbered the other way round in this part's dictionary.
            part(
                &[2, 1, 3],
                &[0, 1, 1],
                &["b.csv", "a.csv", "c.csv"],
                &[3, 4, 9],
            ),
        ];
        let (cited, files) = Cited::join(parts);
        assert_eq!(cited.len(), 6);
        let got: Vec<String> = (0..7)
            .map(|i| {
                let mut out = Vec::new();
                cited.write(i, &files.names, &mut out);
                String::from_utf8(out).expect("text")
            })
            .collect();
        assert_eq!(
            got,
            [
                "batch 1, a.csv line 2",
                "batch 1, a.csv line 3",
                "batch 2, b.csv line 2",
                "batch 2, b.csv line 3",
                "batch 1, a.csv line 4",
                "batch 3, a.csv line 9",
                "",
            ]
        );
        // Each file once, however many parts named it.
        assert_eq!(files.names[..2], ["a.csv", "b.csv"]);
        let mut names = files.names.clone();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), files.names.len());
    }

    proptest::proptest! {
        /// Runs give every row the batch, file and line a column per row gave: parts
        /// of rows whose lines jump, repeat and change file, read one after the other.
        #[test]
        fn runs_cite_each_row_as_its_own_columns_do(
            parts in proptest::collection::vec(
                proptest::collection::vec((0u8..12, 0u64..8), 0..40),
                0..5,
            )
        ) {
            let names = ["a.csv", "b\"q.csv"];
            let mut want = Vec::new();
            let built: Vec<(Cited, Files)> = parts
                .iter()
                .map(|rows| {
                    let (mut batch, mut keys, mut line) = (Vec::new(), Vec::new(), Vec::new());
                    let (mut l, mut b, mut k) = (2u64, 1u32, 0i32);
                    for &(change, step) in rows {
                        // Now and then another batch, or another file.
                        match change {
                            0 => b = 3 - b,
                            1 => k = 1 - k,
                            _ => {}
                        }
                        // The next line, a skip or the same line: parts of few
                        // jumps keep runs, parts of many a line a row.
                        l = match step {
                            0..=4 => l + 1,
                            5 | 6 => l + step,
                            _ => l,
                        };
                        batch.push(b);
                        keys.push(k);
                        line.push(l);
                        want.push(format!(
                            "batch {b}, {} line {l}",
                            names[usize::try_from(k).expect("small")]
                        ));
                    }
                    part(&batch, &keys, &names, &line)
                })
                .collect();
            let (cited, files) = Cited::join(built);
            proptest::prop_assert_eq!(cited.len(), want.len());
            for (i, w) in want.iter().enumerate() {
                let mut got = Vec::new();
                cited.write(i, &files.names, &mut got);
                proptest::prop_assert_eq!(String::from_utf8(got).expect("text"), w.clone());
                let mut csv = Vec::new();
                cited.write_csv(i, &files.names, &mut csv);
                let quoted = format!("\"{}\"", w.replace('"', "\"\""));
                proptest::prop_assert_eq!(String::from_utf8(csv).expect("text"), quoted);
            }
            let mut past = Vec::new();
            cited.write(want.len(), &files.names, &mut past);
            proptest::prop_assert!(past.is_empty());
            proptest::prop_assert_eq!(cited.line(want.len()), 0);
        }
    }

    #[test]
    fn rows_picked_here_and_there_keep_a_line_each() {
        let line: Vec<u64> = (0..1_000).map(|i| 2 + 3 * i).collect();
        let (cited, files) = part(&vec![7; 1_000], &vec![0; 1_000], &["city.csv"], &line);
        assert_eq!(cited.runs.len(), 1);
        assert_eq!(cited.each.as_ref().map(Vec::len), Some(1_000));
        let mut out = Vec::new();
        cited.write(999, &files.names, &mut out);
        assert_eq!(out, b"batch 7, city.csv line 2999");
    }

    #[test]
    fn a_file_of_consecutive_lines_is_one_run() {
        let line: Vec<u64> = (2..100_002).collect();
        let (cited, _) = part(&vec![7; 100_000], &vec![0; 100_000], &["city.csv"], &line);
        assert_eq!((cited.runs.len(), cited.len()), (1, 100_000));
        assert!(cited.each.is_none());
        assert_eq!(cited.line(99_999), 100_001);
    }
}
