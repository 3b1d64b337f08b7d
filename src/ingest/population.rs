//! Population register rows: who must be tested, and where they live.
//!
//! Columns (any order, unknown columns ignored): `person`, optional `district`,
//! `community` and `group` (a key group such as `cold-chain`). Each row is checked on
//! its own here; a person registered twice in one batch is found in
//! `src/ingest/plan/population.rs`, when the batch is planned.

use std::path::Path;

use super::reject::{Rejects, Severity, Where};
use super::row::{Part, line_no, raw, read_parallel, required, text, width_problem};
use super::table::{Record, Table};
use crate::rows::PopulationRows;

use crate::model::{IdCheck, check_label, check_person_id};
use crate::{Error, Result};

impl Part for PopulationRows {
    fn append(&mut self, later: &Self) {
        self.person.append(&later.person);
        self.district.append(&later.district);
        self.community.append(&later.community);
        self.group.append(&later.group);
        self.source.append(&later.source);
    }

    fn clear(&mut self) {
        self.person.clear();
        self.district.clear();
        self.community.clear();
        self.group.clear();
        self.source.clear();
    }
}

struct Columns {
    person: usize,
    district: Option<usize>,
    community: Option<usize>,
    group: Option<usize>,
    width: usize,
    /// What a resident id with a wrong check character does to its row.
    id_check: IdCheck,
}

/// Reads every row of `table` into `out`, recording bad rows in `rejects`; chunks of
/// the file are parsed on all cores. Returns the number of data rows read.
pub fn read(
    table: &mut Table,
    file_no: u16,
    file_label: &str,
    id_check: IdCheck,
    out: &mut PopulationRows,
    rejects: &mut Rejects,
) -> Result<u64> {
    let cols = Columns {
        person: required(table, "person")?,
        district: table.column("district"),
        community: table.column("community"),
        group: table.column("group"),
        width: table.header().len(),
        id_check,
    };
    let path = table.path().to_path_buf();
    read_parallel(table, out, rejects, |line, rec, raw_row, out, rejects| {
        let at = RowAt {
            path: &path,
            file_no,
            file_label,
            line,
        };
        parse_row(&cols, &at, rec, raw_row, out, rejects)
    })
}

/// Where a row is.
struct RowAt<'a> {
    path: &'a Path,
    file_no: u16,
    file_label: &'a str,
    line: u64,
}

fn parse_row(
    cols: &Columns,
    at: &RowAt<'_>,
    rec: &Record,
    raw_row: &[u8],
    out: &mut PopulationRows,
    rejects: &mut Rejects,
) -> Result<()> {
    let person = text(at.path, rec, Some(cols.person), at.line)?;
    let mut bad = |column, reason: String, value: &[u8]| {
        let w = Where {
            file: at.file_label,
            line: at.line,
            tube: "",
            person,
        };
        rejects.push(&w, Severity::Error, column, reason, value);
    };
    if let Some((column, why, value)) = width_problem(rec, raw_row, cols.width) {
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
    let mut labels = [""; 3];
    for (k, (name, col)) in [
        ("district", cols.district),
        ("community", cols.community),
        ("group", cols.group),
    ]
    .into_iter()
    .enumerate()
    {
        let value = text(at.path, rec, col, at.line)?;
        if let Err(why) = check_label(value) {
            bad(name, format!("{name} {why}"), value.as_bytes());
            return Ok(());
        }
        labels[k] = value;
    }
    if let Some(why) = id_warning {
        let w = Where {
            file: at.file_label,
            line: at.line,
            tube: "",
            person,
        };
        rejects.push(&w, Severity::Warning, "person", why, person.as_bytes());
    }
    if out.person.try_push(person).is_err() {
        return Err(Error::input(
            at.path,
            "the batch is too large for one ingest (over 2 GiB of person ids); split it",
        ));
    }
    let [district, community, group] = labels;
    out.district
        .push_opt((!district.is_empty()).then_some(district));
    out.community
        .push_opt((!community.is_empty()).then_some(community));
    out.group.push_opt((!group.is_empty()).then_some(group));
    out.source.push(at.file_no, line_no(at.path, at.line)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<(PopulationRows, Rejects)> {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("p.csv");
        std::fs::write(&p, text).expect("write");
        let mut t = Table::open(&p)?;
        let mut rows = PopulationRows::default();
        let mut rejects = Rejects::default();
        read(&mut t, 0, "p.csv", IdCheck::Warn, &mut rows, &mut rejects)?;
        Ok((rows, rejects))
    }

    #[test]
    fn optional_columns_may_be_missing_or_empty() {
        let (rows, rejects) =
            read_text("group,person,extra\ncold-chain,p1,x\n,p2,y\n").expect("reads");
        assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.group.get_opt(0), Some("cold-chain"));
        assert_eq!(rows.group.get_opt(1), None);
        assert_eq!(rows.district.get_opt(0), None);
        assert!(rows.source.iter().eq([(0, 2), (0, 3)]));
    }

    #[test]
    fn each_bad_field_has_its_reason() {
        let long = "d".repeat(65);
        let (rows, rejects) = read_text(&format!(
            "person,district,community\n,D1,C1\np2,{long},C1\np3,D1\np4,D1,C\u{1}\np5,D1,C1\n"
        ))
        .expect("reads");
        assert_eq!(rows.len(), 1);
        let cols: Vec<_> = rejects.rows.iter().map(|r| (r.line, r.column)).collect();
        assert_eq!(
            cols,
            [(2, "person"), (3, "district"), (4, ""), (5, "community")]
        );
    }

    #[test]
    fn a_file_without_person_is_refused() {
        let err = read_text("district,community\nD1,C1\n").expect_err("refused");
        assert!(err.to_string().contains("\"person\""), "{err}");
    }
}
