//! Collection rows: who was swabbed into which tube, and when.
//!
//! Columns (any order, unknown columns ignored): `tube`, `person`, `mode`
//! (`single`/`pool`), optional `capacity` (1–20), `collected_at`, optional `site`,
//! optional `box` (the box the tube travels in: the batch records it as the round's box
//! manifest, see `src/ingest/plan/collections.rs`).
//!
//! A row says that a person's swab went into a tube at a time: that is a physical
//! fact, and the row is kept whenever its tube, person and time can be read. What it
//! says about the tube (mode, capacity) is metadata: a blank or unreadable value is
//! "not stated" (a warning when it was unreadable), never the mode's default, so a
//! blank capacity cannot contradict a row that states one. The tube's metadata is
//! settled across rows when the batch is planned (`src/ingest/plan/collections.rs`), with the
//! other checks that need the store or the rest of the batch (barcode reuse, duplicate scans).

use std::path::Path;

use super::reject::{Rejects, Severity, Where};
use super::row::{Part, first_problem, line_no, raw, read_parallel, required, text};
use super::table::{Record, Table};
use crate::rows::CollectionRows;

use crate::model::{IdCheck, Mode, check_box, check_label, check_person_id};
use crate::time::{self, Offset};
use crate::{Error, Result};

impl Part for CollectionRows {
    fn append(&mut self, later: &Self) {
        // The box column is empty or one value per row (see `CollectionRows::box_id`):
        // the first part with boxes pads the rows before it, later parts without boxes
        // are padded in turn.
        match (self.box_id.is_empty(), later.box_id.is_empty()) {
            (_, false) => {
                self.box_id
                    .push_missing(self.len().saturating_sub(self.box_id.len()));
                self.box_id.append(&later.box_id);
            }
            (false, true) => self.box_id.push_missing(later.len()),
            (true, true) => {}
        }
        self.tube.append(&later.tube);
        self.person.append(&later.person);
        self.mode.extend_from_slice(&later.mode);
        self.capacity.extend_from_slice(&later.capacity);
        self.collected_at.extend_from_slice(&later.collected_at);
        self.site.append(&later.site);
        self.source.append(&later.source);
    }

    fn clear(&mut self) {
        self.tube.clear();
        self.person.clear();
        self.mode.clear();
        self.capacity.clear();
        self.collected_at.clear();
        self.site.clear();
        self.box_id.clear();
        self.source.clear();
    }
}

/// Reads one file on its own (file number 0, named `label` in rejects): its rows, its
/// rejects and the number of data rows read. What [`read`] does for a batch's files,
/// for callers that check a single file.
///
/// ```
/// use pooltrack::ingest::collections;
/// use pooltrack::ingest::table::{ReadOptions, Table};
/// use pooltrack::model::IdCheck;
/// use pooltrack::time::Offset;
///
/// let csv = "tube,person,mode,collected_at\nPL0001,P-1,pool,2022-04-02 08:00\nPL0001,,pool,x\n";
/// let mut table = Table::from_reader("c.csv", std::io::Cursor::new(csv), &ReadOptions::default())?;
/// let (rows, rejects, read) = collections::read_alone(&mut table, "c.csv", Offset::CHINA, IdCheck::Warn)?;
/// assert_eq!((rows.len(), rejects.errors(), read), (1, 1, 2));
/// # Ok::<(), pooltrack::Error>(())
/// ```
pub fn read_alone(
    table: &mut Table,
    label: &str,
    zone: Offset,
    id_check: IdCheck,
) -> Result<(CollectionRows, Rejects, u64)> {
    let mut rows = CollectionRows::default();
    let mut rejects = Rejects::default();
    let n = read(table, 0, label, zone, id_check, &mut rows, &mut rejects)?;
    Ok((rows, rejects, n))
}

/// Reads every row of `table` into `out`, recording bad rows in `rejects`; chunks of
/// the file are parsed on all cores. Returns the number of data rows read.
pub fn read(
    table: &mut Table,
    file_no: u16,
    file_label: &str,
    zone: Offset,
    id_check: IdCheck,
    out: &mut CollectionRows,
    rejects: &mut Rejects,
) -> Result<u64> {
    let cols = Columns {
        tube: required(table, "tube")?,
        person: required(table, "person")?,
        mode: required(table, "mode")?,
        at: required(table, "collected_at")?,
        capacity: table.column("capacity"),
        site: table.column("site"),
        box_col: table.column("box"),
        width: table.header().len(),
        id_check,
    };
    let path = table.path().to_path_buf();
    read_parallel(table, out, rejects, |line, rec, raw_row, out, rejects| {
        parse_row(
            &cols, &path, file_no, file_label, zone, line, rec, raw_row, out, rejects,
        )
    })
}

struct Columns {
    tube: usize,
    person: usize,
    mode: usize,
    at: usize,
    capacity: Option<usize>,
    site: Option<usize>,
    /// The `box` column; without it no row pays for boxes.
    box_col: Option<usize>,
    width: usize,
    /// What a resident id with a wrong check character does to its row.
    id_check: IdCheck,
}

/// What a row's `box` field says.
enum BoxField<'a> {
    /// The file has no `box` column.
    Absent,
    /// Blank, or not a box barcode.
    NotStated,
    /// The box of the row before.
    AsBefore,
    /// A box.
    Box(&'a str),
}

#[allow(clippy::too_many_arguments)] // one row's context; bundling it would only rename it
fn parse_row(
    cols: &Columns,
    path: &Path,
    file_no: u16,
    file_label: &str,
    zone: Offset,
    line: u64,
    rec: &Record,
    raw_row: &[u8],
    out: &mut CollectionRows,
    rejects: &mut Rejects,
) -> Result<()> {
    let tube = text(path, rec, Some(cols.tube), line)?;
    let person = text(path, rec, Some(cols.person), line)?;
    let at = Where {
        file: file_label,
        line,
        tube,
        person,
    };
    let mut bad = |column, reason: String, value: &[u8]| {
        rejects.push(&at, Severity::Error, column, reason, value);
    };
    if let Some((column, why, value)) = first_problem(rec, raw_row, cols.width, tube, cols.tube) {
        bad(column, why, value);
        return Ok(());
    }
    let id_warning = match check_person_id(person, cols.id_check) {
        Ok(warning) => warning,
        Err(why) => {
            bad("person", why, raw(rec, Some(cols.person)));
            return Ok(());
        }
    };
    // Time first: a row that cannot be placed in time is refused before any warning
    // about its metadata is recorded.
    let at_text = text(path, rec, Some(cols.at), line)?;
    let collected_at = match time::parse(at_text.as_bytes(), zone) {
        Ok(t) => t,
        Err(e) => {
            bad(
                "collected_at",
                format!("collected_at {e}"),
                at_text.as_bytes(),
            );
            return Ok(());
        }
    };
    let mut warn = |column, reason: String, value: &[u8]| {
        rejects.push(&at, Severity::Warning, column, reason, value);
    };
    let mode_text = text(path, rec, Some(cols.mode), line)?;
    let mode = Mode::parse(mode_text);
    if mode.is_none() && !mode_text.is_empty() {
        warn(
            "mode",
            format!(
                "mode {mode_text:?} is neither \"single\" nor \"pool\": read as not stated; the row is kept and the tube's mode comes from its other rows"
            ),
            mode_text.as_bytes(),
        );
    }
    let cap_text = text(path, rec, cols.capacity, line)?;
    let mut capacity = match cap_text.parse::<u8>() {
        _ if cap_text.is_empty() => 0,
        Ok(c @ 1..=20) => c,
        _ => {
            warn(
                "capacity",
                "capacity must be a whole number from 1 to 20: read as not stated; the row is kept"
                    .to_owned(),
                cap_text.as_bytes(),
            );
            0
        }
    };
    if mode == Some(Mode::Single) && capacity > 1 {
        warn(
            "capacity",
            format!(
                "a single tube holds one person, not {capacity}: the capacity is read as not stated; the row is kept"
            ),
            cap_text.as_bytes(),
        );
        capacity = 0;
    }
    let mut site = text(path, rec, cols.site, line)?;
    if let Err(why) = check_label(site) {
        warn(
            "site",
            format!("site {why}: read as not stated; the row is kept"),
            site.as_bytes(),
        );
        site = "";
    }
    // A box is metadata too: unreadable is "not stated", and the membership stays.
    let box_id = match cols.box_col {
        None => BoxField::Absent,
        Some(col) => {
            let b = text(path, rec, Some(col), line)?;
            if b.is_empty() {
                BoxField::NotStated
            } else if out.box_id.last_is(b) {
                // Rows come in runs of one box: the run's first row was checked.
                BoxField::AsBefore
            } else if let Err(why) = check_box(b) {
                warn(
                    "box",
                    format!("{why}: the box is read as not stated; the row is kept"),
                    b.as_bytes(),
                );
                BoxField::NotStated
            } else {
                BoxField::Box(b)
            }
        }
    };
    if let Some(why) = id_warning {
        warn("person", why, person.as_bytes());
    }
    if out.tube.try_push(tube).is_err() {
        return Err(Error::input(
            path,
            "the batch is too large for one ingest (over 2 GiB of barcodes); split it",
        ));
    }
    out.person.push(person);
    out.mode.push(mode);
    out.capacity.push(capacity);
    out.collected_at.push(collected_at);
    out.site.push_opt((!site.is_empty()).then_some(site));
    match box_id {
        BoxField::Absent => {}
        BoxField::NotStated => out.box_id.push_opt(None),
        BoxField::AsBefore => out.box_id.push_last(),
        BoxField::Box(b) => out.box_id.push_opt(Some(b)),
    }
    out.source.push(file_no, line_no(path, line)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a whole table with the defaults a store starts with.
    fn read_table(t: &mut Table) -> Result<(CollectionRows, Rejects, u64)> {
        let mut rows = CollectionRows::default();
        let mut rejects = Rejects::default();
        let n = read(
            t,
            0,
            "c.csv",
            Offset::CHINA,
            IdCheck::Warn,
            &mut rows,
            &mut rejects,
        )?;
        Ok((rows, rejects, n))
    }

    fn read_text(text: &str) -> Result<(CollectionRows, Rejects)> {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.csv");
        std::fs::write(&p, text).expect("write");
        let (rows, rejects, _) = read_table(&mut Table::open(&p)?)?;
        Ok((rows, rejects))
    }

    #[test]
    fn small_chunks_read_as_one_chunk_reads() {
        // Parts and chunk buffers are reused chunk after chunk: nothing of one chunk
        // may leak into the next (a row, a site key, a null).
        let mut text = String::from("tube,person,mode,collected_at,site,box\n");
        for i in 0..3000 {
            let site = ["S1", "", "S2"][i % 3];
            let box_id = ["", "BX01", "BX02", "BX02"][i % 4];
            text.push_str(&format!(
                "PL{:05},p{i},pool,2022-04-02 08:{:02}:00,{site},{box_id}\n",
                i / 10,
                i % 60
            ));
        }
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.csv");
        std::fs::write(&p, &text).expect("write");
        let read_with = |chunk: Option<usize>| {
            let mut t = Table::open(&p).expect("open");
            if let Some(n) = chunk {
                t.set_chunk_size(n);
            }
            let (rows, rejects, n) = read_table(&mut t).expect("read");
            assert!(rejects.rows.is_empty());
            (n, rows)
        };
        let (n, whole) = read_with(None);
        let (m, pieces) = read_with(Some(1000));
        assert_eq!((n, m), (3000, 3000));
        for i in [0, 1, 2, 999, 1500, 2999] {
            assert_eq!(pieces.tube.get(i), whole.tube.get(i));
            assert_eq!(pieces.person.get(i).as_str(), format!("p{i}"));
            assert_eq!(pieces.site.get_opt(i), whole.site.get_opt(i));
            assert_eq!(pieces.box_id.get_opt(i), whole.box_id.get_opt(i));
        }
        assert_eq!((pieces.box_id.len(), pieces.box_id.distinct()), (3000, 2));
        assert_eq!(pieces.box_id.get_opt(2999), Some("BX02"));
        assert!(pieces.source.iter().eq(whole.source.iter()));
        assert_eq!(pieces.collected_at, whole.collected_at);
        assert_eq!(pieces.site.distinct(), 2);
    }

    #[test]
    fn reads_columns_in_any_order_blank_metadata_not_stated() {
        let (rows, rejects) = read_text(
            "site,collected_at,mode,person,tube,extra\n\
             S1,2022-04-02 08:00:00,POOL,p1,PL0001,x\n\
             ,2022-04-02T08:00:00+08:00,single,p2,SG0001,y\n",
        )
        .expect("reads");
        assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
        assert_eq!(rows.len(), 2);
        // No capacity column: not stated (0), never the mode's default.
        assert_eq!(rows.capacity, [0, 0]);
        assert_eq!(rows.mode, [Some(Mode::Pool), Some(Mode::Single)]);
        assert_eq!(rows.collected_at[0], rows.collected_at[1]);
        assert_eq!(rows.site.get_opt(0), Some("S1"));
        assert_eq!(rows.site.get_opt(1), None);
    }

    #[test]
    fn each_bad_field_has_its_reason() {
        let (rows, rejects) = read_text(
            "tube,person,mode,capacity,collected_at\n\
             AB,p1,pool,10,2022-04-02 08:00:00\n\
             PL0001,,pool,10,2022-04-02 08:00:00\n\
             PL0001,p1,mixed,10,2022-04-02 08:00:00\n\
             PL0001,p1,pool,21,2022-04-02 08:00:00\n\
             SG0001,p1,single,5,2022-04-02 08:00:00\n\
             PL0001,p1,pool,10,yesterday\n\
             PL0001,p1,pool,10\n\
             PL0001,p1,pool,,2022-04-02 08:00:00\n\
             PL0001,p1,,,2022-04-02 08:00:00\n",
        )
        .expect("reads");
        let found: Vec<_> = rejects
            .rows
            .iter()
            .map(|r| (r.line, r.column, r.severity))
            .collect();
        // What a row says about its tube is metadata: unreadable is "not stated" with a
        // warning and the row is kept. Only rows that cannot be placed are refused.
        assert_eq!(
            found,
            [
                (2, "tube", Severity::Error),
                (3, "person", Severity::Error),
                (4, "mode", Severity::Warning),
                (5, "capacity", Severity::Warning),
                (6, "capacity", Severity::Warning),
                (7, "collected_at", Severity::Error),
                (8, "", Severity::Error)
            ]
        );
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows.source.iter().map(|(_, l)| l).collect::<Vec<_>>(),
            [4, 5, 6, 9, 10],
            "kept rows, metadata read as not stated"
        );
        assert_eq!(
            rows.mode,
            [
                None,
                Some(Mode::Pool),
                Some(Mode::Single),
                Some(Mode::Pool),
                None
            ]
        );
        assert_eq!(rows.capacity, [10, 0, 0, 0, 0]);
    }

    #[test]
    fn a_box_column_is_read_per_row_and_files_without_one_read_as_not_stated() {
        let dir = tempfile::tempdir().expect("tmp");
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let plain = write(
            "a.csv",
            "tube,person,mode,collected_at\nPL0001,p1,pool,2022-04-02 08:00\n",
        );
        let boxed = write(
            "b.csv",
            "tube,person,mode,collected_at,box\n\
             PL0002,p2,pool,2022-04-02 08:00,BX01\n\
             PL0002,p3,pool,2022-04-02 08:00,\n\
             PL0003,p4,pool,2022-04-02 08:00,B 1\n",
        );
        let mut rows = CollectionRows::default();
        let mut rejects = Rejects::default();
        let mut read_file = |p: &Path, no: u16, rows: &mut CollectionRows| {
            let mut t = Table::open(p).expect("open");
            read(
                &mut t,
                no,
                "f",
                Offset::CHINA,
                IdCheck::Warn,
                rows,
                &mut rejects,
            )
            .expect("reads")
        };
        read_file(&plain, 0, &mut rows);
        assert!(rows.box_id.is_empty(), "no box column, no box values");
        read_file(&boxed, 1, &mut rows);
        read_file(&plain, 2, &mut rows);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows.box_id.len(), 5);
        let boxes: Vec<Option<&str>> = (0..5).map(|i| rows.box_id.get_opt(i)).collect();
        assert_eq!(boxes, [None, Some("BX01"), None, None, None]);
        // An unreadable box is a warning and not stated; the row is kept.
        let found: Vec<_> = rejects
            .rows
            .iter()
            .map(|r| (r.line, r.column, r.severity))
            .collect();
        assert_eq!(found, [(4, "box", Severity::Warning)]);
    }

    #[test]
    fn missing_column_and_bad_utf8_refuse_the_file() {
        let err = read_text("tube,person,collected_at\n").expect_err("refused");
        assert!(err.to_string().contains("\"mode\""), "{err}");
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("latin1.csv");
        std::fs::write(
            &p,
            b"tube,person,mode,collected_at\nPL0001,Jos\xe9,pool,2022-04-02 08:00:00\n",
        )
        .expect("write");
        let err = read_table(&mut Table::open(&p).expect("open")).expect_err("refused");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
