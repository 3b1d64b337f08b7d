//! Collection rows: who was swabbed into which tube, and when.
//!
//! Columns (any order, unknown columns ignored): `tube`, `person`, `mode`
//! (`single`/`pool`), optional `capacity` (1–20; default 1 single, 10 pool),
//! `collected_at`, optional `site`. Each row is checked on its own here; the checks
//! that need the store or the rest of the batch (barcode reuse, duplicate scans,
//! conflicting modes) are in [`crate::ingest::batch`].

use csv::ByteRecord;

use super::reject::{Rejects, Severity, Where};
use super::row::{raw, required, text};
use super::table::Table;
use crate::column::StrColumn;
use crate::model::{Mode, check_label, check_person, check_tube};
use crate::time::{self, Millis, Offset};
use crate::{Error, Result};

/// Valid collection rows of one batch, column by column.
#[derive(Debug, Default)]
pub struct CollectionRows {
    /// Tube barcodes.
    pub tube: StrColumn,
    /// Person ids.
    pub person: StrColumn,
    /// Tube modes.
    pub mode: Vec<Mode>,
    /// Persons the tube may hold.
    pub capacity: Vec<u8>,
    /// When the person was swabbed.
    pub collected_at: Vec<Millis>,
    /// Sampling site, if given.
    pub site: StrColumn,
    /// Which input file of the batch (index into the batch's file list).
    pub file: Vec<u32>,
    /// Line in that file.
    pub line: Vec<u64>,
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

/// Reads every row of `table` into `out`, recording bad rows in `rejects`.
/// Returns the number of data rows read.
pub fn read(
    table: &mut Table,
    file_no: u32,
    file_label: &str,
    zone: Offset,
    out: &mut CollectionRows,
    rejects: &mut Rejects,
) -> Result<u64> {
    let c_tube = required(table, "tube")?;
    let c_person = required(table, "person")?;
    let c_mode = required(table, "mode")?;
    let c_at = required(table, "collected_at")?;
    let c_cap = table.column("capacity");
    let c_site = table.column("site");
    let width = table.header().len();
    let mut rec = ByteRecord::new();
    let mut rows = 0u64;
    while let Some(line) = table.read_row(&mut rec)? {
        rows += 1;
        let tube = text(table, &rec, Some(c_tube), line)?;
        let person = text(table, &rec, Some(c_person), line)?;
        let mut bad = |column, reason: String, value: &[u8]| {
            let at = Where {
                file: file_label,
                line,
                tube,
                person,
            };
            rejects.push(&at, Severity::Error, column, reason, value);
        };
        if rec.len() != width {
            bad(
                "",
                format!(
                    "the row has {} fields but the header has {width}",
                    rec.len()
                ),
                rec.as_slice(),
            );
            continue;
        }
        if let Err(why) = check_tube(tube) {
            bad("tube", why.to_owned(), raw(&rec, Some(c_tube)));
            continue;
        }
        if let Err(why) = check_person(person) {
            bad("person", why.to_owned(), raw(&rec, Some(c_person)));
            continue;
        }
        let mode_text = text(table, &rec, Some(c_mode), line)?;
        let Some(mode) = Mode::parse(mode_text) else {
            bad(
                "mode",
                "mode must be \"single\" or \"pool\"".to_owned(),
                mode_text.as_bytes(),
            );
            continue;
        };
        let cap_text = text(table, &rec, c_cap, line)?;
        let capacity = if cap_text.is_empty() {
            mode.default_capacity()
        } else {
            match cap_text.parse::<u8>() {
                Ok(c @ 1..=20) => c,
                _ => {
                    bad(
                        "capacity",
                        "capacity must be a whole number from 1 to 20".to_owned(),
                        cap_text.as_bytes(),
                    );
                    continue;
                }
            }
        };
        if mode == Mode::Single && capacity != 1 {
            bad(
                "capacity",
                format!("a single tube holds one person, not {capacity}"),
                cap_text.as_bytes(),
            );
            continue;
        }
        let at_text = text(table, &rec, Some(c_at), line)?;
        let collected_at = match time::parse(at_text.as_bytes(), zone) {
            Ok(t) => t,
            Err(e) => {
                bad(
                    "collected_at",
                    format!("collected_at {e}"),
                    at_text.as_bytes(),
                );
                continue;
            }
        };
        let site = text(table, &rec, c_site, line)?;
        if let Err(why) = check_label(site) {
            bad("site", format!("site is {why}"), site.as_bytes());
            continue;
        }
        let full = out.tube.try_push(tube).is_err();
        if full {
            return Err(Error::input(
                table.path(),
                "the batch is too large for one ingest (over 2 GiB of barcodes); split it",
            ));
        }
        out.person.push(person);
        out.mode.push(mode);
        out.capacity.push(capacity);
        out.collected_at.push(collected_at);
        out.site.push_opt((!site.is_empty()).then_some(site));
        out.file.push(file_no);
        out.line.push(line);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<(CollectionRows, Rejects)> {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("c.csv");
        std::fs::write(&p, text).expect("write");
        let mut t = Table::open(&p)?;
        let mut rows = CollectionRows::default();
        let mut rejects = Rejects::default();
        read(&mut t, 0, "c.csv", Offset::CHINA, &mut rows, &mut rejects)?;
        Ok((rows, rejects))
    }

    #[test]
    fn reads_columns_in_any_order_with_defaults() {
        let (rows, rejects) = read_text(
            "site,collected_at,mode,person,tube,extra\n\
             S1,2022-04-02 08:00:00,POOL,p1,PL0001,x\n\
             ,2022-04-02T08:00:00+08:00,single,p2,SG0001,y\n",
        )
        .expect("reads");
        assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.capacity, [10, 1]);
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
             PL0001,p1,pool,,2022-04-02 08:00:00\n",
        )
        .expect("reads");
        assert_eq!(rows.len(), 1);
        let cols: Vec<_> = rejects.rows.iter().map(|r| (r.line, r.column)).collect();
        assert_eq!(
            cols,
            [
                (2, "tube"),
                (3, "person"),
                (4, "mode"),
                (5, "capacity"),
                (6, "capacity"),
                (7, "collected_at"),
                (8, "")
            ]
        );
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
        let mut t = Table::open(&p).expect("open");
        let err = read(
            &mut t,
            0,
            "latin1.csv",
            Offset::CHINA,
            &mut CollectionRows::default(),
            &mut Rejects::default(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
