//! Where a round's rows came from (`batch N, FILE line L`), held compactly: the batch
//! and file once per run of rows that share them (a batch's rows are stored together),
//! the line per row. A city's collections name one file 25 million times; read as a
//! dictionary, that name is decoded once per row group, not once a row.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef};

use crate::store::read::{self, Picked};
use crate::store::{BatchKind, Store};
use crate::text::{push_number, push_number_bytes};
use crate::{Error, Result};

/// Where some rows came from (`batch N, FILE line L`): the batch and file once per run
/// of rows that share them, the line per row.
#[derive(Default)]
pub struct Cited {
    /// (first row's place, batch, file number), ascending.
    runs: Vec<(u32, u32, u32)>,
    line: Vec<u64>,
}

impl Cited {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    /// Row `i`'s line number (0 past the end).
    pub fn line(&self, i: usize) -> u64 {
        self.line.get(i).copied().unwrap_or(0)
    }

    /// The batch, file name (numbered by `files`) and line of place `i`; `None` past
    /// the end.
    fn source<'f>(&self, i: usize, files: &'f [String]) -> Option<(u32, &'f str, u64)> {
        let &line = self.line.get(i)?;
        let place = u32::try_from(i).unwrap_or(u32::MAX);
        let run = self.runs.partition_point(|r| r.0 <= place);
        let &(_, batch, file) = run.checked_sub(1).and_then(|k| self.runs.get(k))?;
        Some((
            batch,
            files.get(file as usize).map_or("", String::as_str),
            line,
        ))
    }

    /// Appends `batch N, FILE line L` of place `i` to `out` (nothing past the end).
    pub fn write(&self, i: usize, files: &[String], out: &mut String) {
        let Some((batch, file, line)) = self.source(i, files) else {
            return;
        };
        out.push_str("batch ");
        push_number(out, u64::from(batch));
        out.push_str(", ");
        out.push_str(file);
        out.push_str(" line ");
        push_number(out, line);
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

    /// The sources of one part's rows from its `batch`, `source` (a dictionary) and
    /// `line` columns, files numbered by `files`; `None` unless `c` is those three
    /// columns with those types (a damaged segment).
    pub fn of(c: &[ArrayRef], files: &mut Files) -> Option<Cited> {
        let [batch, source, line] = c else {
            return None;
        };
        let batch = batch.as_primitive_opt::<UInt32Type>()?;
        let source = source.as_dictionary_opt::<Int32Type>()?;
        let names = source.values().as_string_opt::<i32>()?;
        let line = line.as_primitive_opt::<UInt64Type>()?;
        let numbers: Vec<u32> = (0..names.len())
            .map(|k| files.number(crate::text::text_at(names, k)))
            .collect();
        let mut cited = Cited {
            runs: Vec::new(),
            line: line.values().to_vec(),
        };
        let keys = source.keys();
        for i in 0..batch.len() {
            let file = usize::try_from(keys.value(i))
                .ok()
                .and_then(|k| numbers.get(k))
                .copied()
                .unwrap_or(u32::MAX);
            let b = batch.value(i);
            if cited.runs.last().is_none_or(|r| (r.1, r.2) != (b, file)) {
                cited
                    .runs
                    .push((u32::try_from(i).unwrap_or(u32::MAX), b, file));
            }
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
                run.2 = numbers.get(run.2 as usize).copied().unwrap_or(u32::MAX);
            }
            cited.append(part);
        }
        (cited, files)
    }

    /// Appends the rows of `part`, whose file numbers are this one's.
    pub fn append(&mut self, part: Cited) {
        let base = u32::try_from(self.line.len()).unwrap_or(u32::MAX);
        for (start, b, f) in part.runs {
            if self.runs.last().is_none_or(|r| (r.1, r.2) != (b, f)) {
                self.runs.push((start.saturating_add(base), b, f));
            }
        }
        self.line.extend(part.line);
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
                let mut out = String::new();
                cited.write(i, &files.names, &mut out);
                out
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
}
