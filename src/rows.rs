//! What a batch is: its rows, column by column, as read from the input files.
//!
//! The readers in [`crate::ingest`] fill these; the writers in [`crate::store`] write
//! them into segments. Neither depends on the other: both depend on these types.

use crate::column::{CtColumn, LabelColumn, PersonColumn, StrColumn, TimeColumn};
use crate::model::{Mode, Outcome, SampleType};
use crate::time::Millis;

/// Valid collection rows of one batch, column by column.
#[derive(Debug, Default)]
pub struct CollectionRows {
    /// Tube barcodes.
    pub tube: StrColumn,
    /// Person ids.
    pub person: PersonColumn,
    /// Tube modes as the rows state them (`None`: blank or unreadable).
    pub mode: Vec<Option<Mode>>,
    /// Persons the tube may hold as the rows state it; 0 = not stated.
    pub capacity: Vec<u8>,
    /// When the person was swabbed.
    pub collected_at: Vec<Millis>,
    /// Sampling site, if given.
    pub site: LabelColumn,
    /// The box the tube travels in, if given: empty (no row) when no file of the batch
    /// has a `box` column, else one value per row (missing: blank, unreadable, or a
    /// file without the column).
    pub box_id: LabelColumn,
    /// Which input file of the batch, and which line of it, each row was read from.
    pub source: Sources,
}

impl CollectionRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.mode.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.mode.is_empty()
    }
}

/// Valid result rows of one batch, column by column.
#[derive(Debug, Default)]
pub struct ResultRows {
    /// Tube barcodes.
    pub tube: StrColumn,
    /// The outcome, as reported or as read from the Ct values.
    pub outcome: Vec<Outcome>,
    /// Whether the outcome was read from Ct values (the row had no `result`).
    pub from_ct: Vec<bool>,
    /// Ct of the `ORF1ab` target; `None` = no amplification.
    pub ct_orf1ab: CtColumn,
    /// Ct of the N target; `None` = no amplification.
    pub ct_n: CtColumn,
    /// When the lab reported the result.
    pub reported_at: Vec<Millis>,
    /// Lab, if given.
    pub lab: StrColumn,
    /// Plate, if given.
    pub plate: StrColumn,
    /// Well, if given.
    pub well: StrColumn,
    /// Sample or control.
    pub sample_type: Vec<SampleType>,
    /// Ct of the internal control; `None` = no signal or no column.
    pub ct_ic: CtColumn,
    /// When the lab received the tube, if given.
    pub received_at: TimeColumn,
    /// Which input file of the batch, and which line of it, each row was read from.
    pub source: Sources,
}

impl ResultRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.outcome.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.outcome.is_empty()
    }
}

/// Valid population rows of one batch, column by column, in input order.
#[derive(Debug, Default)]
pub struct PopulationRows {
    /// Person ids.
    pub person: StrColumn,
    /// District, if given.
    pub district: StrColumn,
    /// Community (residential compound, village), if given.
    pub community: StrColumn,
    /// Key group, if given.
    pub group: StrColumn,
    /// Which input file of the batch, and which line of it, each row was read from.
    pub source: Sources,
}

impl PopulationRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.source.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }
}

/// Where each row of a batch was read: its file (an index into the batch's file list)
/// and line.
///
/// Kept as runs of rows read from consecutive lines of one file: a clean file is one
/// run however long, where a number a row cost six bytes (150 MB of a 25 M-row batch,
/// a tenth of what the batch holds in memory). Rows refused or blank lines between
/// kept rows start new runs.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Each run's first row, ascending.
    row: Vec<usize>,
    /// Each run's file.
    file: Vec<u16>,
    /// The line of each run's first row.
    line: Vec<u32>,
    /// Number of rows.
    len: usize,
}

impl Sources {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a row read from line `line` of file `file`.
    pub fn push(&mut self, file: u16, line: u32) {
        if !self.continues(file, line) {
            self.row.push(self.len);
            self.file.push(file);
            self.line.push(line);
        }
        self.len += 1;
    }

    /// Whether a row from `file`, `line` is the next line of the last run's file.
    fn continues(&self, file: u16, line: u32) -> bool {
        match (self.row.last(), self.file.last(), self.line.last()) {
            (Some(&r), Some(&f), Some(&l)) => {
                f == file && u64::from(l) + (self.len - r) as u64 == u64::from(line)
            }
            _ => false,
        }
    }

    /// The file and line of row `i`.
    ///
    /// # Panics
    ///
    /// When `i` is not a row, as indexing a slice does.
    pub fn get(&self, i: usize) -> (u16, u32) {
        assert!(i < self.len, "row {i} of {}", self.len);
        let r = self.row.partition_point(|&s| s <= i) - 1;
        (self.file[r], self.at(r, i))
    }

    /// The line of row `i` of run `r`: within `u32`, as it was pushed.
    fn at(&self, r: usize, i: usize) -> u32 {
        let line = u64::from(self.line[r]) + (i - self.row[r]) as u64;
        u32::try_from(line).unwrap_or(u32::MAX)
    }

    /// The file of row `i` (see [`Sources::get`]).
    pub fn file(&self, i: usize) -> u16 {
        self.get(i).0
    }

    /// The line of row `i` (see [`Sources::get`]).
    pub fn line(&self, i: usize) -> u32 {
        self.get(i).1
    }

    /// The file and line of each of `rows`, which ascend: runs are walked forwards, not
    /// searched for each row.
    pub fn of_ascending<'a>(
        &'a self,
        rows: impl Iterator<Item = usize> + 'a,
    ) -> impl Iterator<Item = (u16, u32)> + 'a {
        let mut r = 0;
        rows.map(move |i| {
            let next = |r: usize| self.row.get(r + 1).copied().unwrap_or(usize::MAX);
            if i < self.row[r] || i >= next(r) {
                r = self.row.partition_point(|&s| s <= i) - 1;
            }
            (self.file[r], self.at(r, i))
        })
    }

    /// The file and line of every row, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u32)> + '_ {
        self.of_ascending(0..self.len)
    }

    /// Appends every row of `other`, in order; a run that continues this one's last
    /// joins it.
    pub fn append(&mut self, other: &Sources) {
        for (k, (&r, (&f, &l))) in other
            .row
            .iter()
            .zip(other.file.iter().zip(&other.line))
            .enumerate()
        {
            if k == 0 && self.continues(f, l) {
                continue;
            }
            self.row.push(self.len + r);
            self.file.push(f);
            self.line.push(l);
        }
        self.len += other.len;
    }

    /// Removes every row.
    pub fn clear(&mut self) {
        self.row.clear();
        self.file.clear();
        self.line.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Sources;

    /// The rows as a plain list, the model the runs must match.
    fn plain(s: &Sources) -> Vec<(u16, u32)> {
        (0..s.len()).map(|i| s.get(i)).collect()
    }

    #[test]
    fn sources_give_back_each_rows_file_and_line_however_they_were_pushed() {
        // Lines with gaps (refused rows), a second file, a file read again, and lines
        // going back (a file named twice in one batch).
        let rows: Vec<(u16, u32)> = vec![
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 7),
            (0, 8),
            (1, 9),
            (1, 10),
            (0, 11),
            (0, 2),
            (0, 3),
            (2, u32::MAX - 1),
            (2, u32::MAX),
        ];
        let mut whole = Sources::default();
        for &(f, l) in &rows {
            whole.push(f, l);
        }
        assert_eq!(plain(&whole), rows);
        assert_eq!(whole.iter().collect::<Vec<_>>(), rows);
        assert_eq!(
            whole.row.len(),
            6,
            "one run per stretch of consecutive lines"
        );
        let picked = [1, 2, 5, 9, 11];
        let got: Vec<_> = whole.of_ascending(picked.iter().copied()).collect();
        assert_eq!(got, picked.map(|i| rows[i]));
        // Read in parts and joined, as chunks of a file are: the same rows and runs.
        for cut in 0..=rows.len() {
            let (mut a, mut b) = (Sources::default(), Sources::default());
            rows[..cut].iter().for_each(|&(f, l)| a.push(f, l));
            rows[cut..].iter().for_each(|&(f, l)| b.push(f, l));
            a.append(&b);
            assert_eq!(plain(&a), rows, "cut at {cut}");
            assert_eq!(a.row, whole.row, "cut at {cut}");
        }
        whole.clear();
        assert!(whole.is_empty());
        assert_eq!(whole.iter().count(), 0);
    }

    #[test]
    fn a_clean_file_is_one_run() {
        let mut s = Sources::default();
        (2..100_002).for_each(|l| s.push(0, l));
        assert_eq!((s.len(), s.row.len()), (100_000, 1));
        assert_eq!(s.get(99_999), (0, 100_001));
    }
}
