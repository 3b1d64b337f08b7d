//! Rejected and flagged rows: what was wrong, where, and the CSV a clerk fixes from.

use std::path::Path;

use serde::Serialize;

use crate::{Error, Result};

/// How serious a row's problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row was not committed.
    Error,
    /// The row was committed (or was already there); the clerk should know.
    Warning,
}

/// One problem with one row.
#[derive(Debug, Clone, Serialize)]
pub struct Reject {
    /// The input file as given on the command line.
    pub file: String,
    /// Line of the row in the file (1 is the header).
    pub line: u64,
    /// The column at fault, or empty when the row as a whole is at fault.
    pub column: &'static str,
    /// Whether the row was dropped.
    pub severity: Severity,
    /// The reason, for a lab clerk.
    pub reason: String,
    /// The row's tube barcode as written.
    pub tube: String,
    /// The row's person id, when the file has one.
    pub person: String,
    /// The offending value as written (cut to 200 characters).
    pub value: String,
}

/// Where a problem is: the row's file and line, and its tube and person as written.
#[derive(Debug, Clone, Copy)]
pub struct Where<'a> {
    /// The input file as given on the command line.
    pub file: &'a str,
    /// Line of the row.
    pub line: u64,
    /// The row's tube barcode.
    pub tube: &'a str,
    /// The row's person id (empty for results).
    pub person: &'a str,
}

/// The problems found in one batch.
#[derive(Debug, Default)]
pub struct Rejects {
    /// Every problem, in the order found.
    pub rows: Vec<Reject>,
}

impl Rejects {
    /// Records a problem with the row at `at`.
    pub fn push(
        &mut self,
        at: &Where<'_>,
        severity: Severity,
        column: &'static str,
        reason: impl Into<String>,
        value: &[u8],
    ) {
        self.rows.push(Reject {
            file: at.file.to_owned(),
            line: at.line,
            column,
            severity,
            reason: reason.into(),
            tube: excerpt(at.tube.as_bytes()),
            person: excerpt(at.person.as_bytes()),
            value: excerpt(value),
        });
    }

    /// Rows that were dropped.
    pub fn errors(&self) -> u64 {
        self.count(Severity::Error)
    }

    /// Rows committed with a warning.
    pub fn warnings(&self) -> u64 {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> u64 {
        self.rows.iter().filter(|r| r.severity == s).count() as u64
    }

    /// Writes the rejects as CSV (`file,line,column,severity,reason,tube,person,value`),
    /// sorted by file and line.
    pub fn write_csv(&mut self, path: &Path) -> Result<()> {
        self.rows
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        // Owner-only, like everything the store holds: the report names persons.
        let mut w = csv::Writer::from_writer(crate::store::fsutil::create_file(path)?);
        for r in &self.rows {
            w.serialize(r).map_err(|e| csv_io(path, e))?;
        }
        w.flush().map_err(|e| Error::io(path, e))?;
        Ok(())
    }
}

/// Cuts a value for the reject report so a 1 MB field does not make a 1 MB report line.
pub fn excerpt(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(&v[..v.len().min(200)]);
    if v.len() > 200 {
        format!("{s}...")
    } else {
        s.into_owned()
    }
}

fn csv_io(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::io(path, std::io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lists_rows_in_file_order() {
        let mut r = Rejects::default();
        for line in [9, 3] {
            r.rows.push(Reject {
                file: "b.csv".into(),
                line,
                column: "tube",
                severity: Severity::Error,
                reason: "bad".into(),
                tube: "x".into(),
                person: String::new(),
                value: excerpt(&[b'y'; 300]),
            });
        }
        assert_eq!(r.errors(), 2);
        assert_eq!(r.warnings(), 0);
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("r.csv");
        r.write_csv(&p).expect("write");
        let text = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[0],
            "file,line,column,severity,reason,tube,person,value"
        );
        assert!(lines[1].starts_with("b.csv,3,tube,error,bad,x,,"));
        assert!(lines[1].ends_with("..."));
    }
}
