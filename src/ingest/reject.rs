//! Rejected and flagged rows: what was wrong, where, and the CSV a clerk fixes from.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

pub use crate::reasons::{Example, ReasonGroup, Severity};

use crate::rows::Sources;
use crate::{Error, Result};

/// One problem with one row.
///
/// A batch can flag every one of its rows (a city's file sent twice is 25 million
/// repeats): a row's file and reason are shared with the rows before it that have the
/// same, and its tube, person and value sit in one allocation, about 150 bytes a row
/// where five strings of its own were 580.
#[derive(Debug, Clone)]
pub struct Reject {
    /// The input file as given on the command line.
    pub file: Arc<str>,
    /// Line of the row in the file (1 is the header).
    pub line: u64,
    /// The column at fault, or empty when the row as a whole is at fault.
    pub column: &'static str,
    /// Whether the row was dropped.
    pub severity: Severity,
    /// The reason, for a lab clerk.
    pub reason: Arc<str>,
    /// The row's tube, person and offending value as written, one after another.
    written: Box<str>,
    /// Where the tube and the person end in `written`.
    ends: [usize; 2],
}

impl Serialize for Reject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut r = s.serialize_struct("Reject", 8)?;
        r.serialize_field("file", &*self.file)?;
        r.serialize_field("line", &self.line)?;
        r.serialize_field("column", self.column)?;
        r.serialize_field("severity", &self.severity)?;
        r.serialize_field("reason", &*self.reason)?;
        r.serialize_field("tube", self.tube())?;
        r.serialize_field("person", self.person())?;
        r.serialize_field("value", self.value())?;
        r.end()
    }
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

impl<'a> Where<'a> {
    /// Row `i` of a batch whose files are named `files` and whose rows were read from
    /// `sources`.
    pub(crate) fn row(
        (files, sources): (&'a [String], &Sources),
        i: usize,
        tube: &'a str,
        person: &'a str,
    ) -> Where<'a> {
        let (file, line) = sources.get(i);
        Where {
            file: files.get(usize::from(file)).map_or("", String::as_str),
            line: u64::from(line),
            tube,
            person,
        }
    }
}

/// The problems found in one batch.
#[derive(Debug, Default)]
pub struct Rejects {
    /// Every problem, in the order found.
    pub rows: Vec<Reject>,
    /// The last row's file and reason, for the next row with the same to share.
    shared: Option<(Arc<str>, Arc<str>)>,
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
        let reason: String = reason.into();
        let (file, reason) = match self.shared.take() {
            Some((f, r)) if *f == *at.file && *r == *reason => (f, r),
            Some((f, _)) if *f == *at.file => (f, Arc::from(reason)),
            _ => (Arc::from(at.file), Arc::from(reason)),
        };
        self.shared = Some((Arc::clone(&file), Arc::clone(&reason)));
        let mut written = excerpt(at.tube.as_bytes());
        let tube_end = written.len();
        written.push_str(&excerpt(at.person.as_bytes()));
        let person_end = written.len();
        written.push_str(&excerpt(value));
        self.rows.push(Reject {
            file,
            line: at.line,
            column,
            severity,
            reason,
            written: written.into_boxed_str(),
            ends: [tube_end, person_end],
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

    /// The problems grouped by reason, for the terminal and `--json`: one group per
    /// severity, column and [`Reject::kind`], errors first, then the largest groups,
    /// each with its first `examples` rows in file order.
    pub fn summary(&self, examples: usize) -> Vec<ReasonGroup> {
        let mut order: Vec<&Reject> = self.rows.iter().collect();
        order.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        let mut groups: Vec<ReasonGroup> = Vec::new();
        let mut at: HashMap<(Severity, &'static str, String), usize> = HashMap::new();
        for r in order {
            let slot = *at
                .entry((r.severity, r.column, r.kind()))
                .or_insert_with_key(|(severity, column, kind)| {
                    groups.push(ReasonGroup {
                        severity: *severity,
                        column,
                        kind: kind.clone(),
                        reason: r.reason.to_string(),
                        same_reason: true,
                        count: 0,
                        examples: Vec::new(),
                    });
                    groups.len() - 1
                });
            let g = &mut groups[slot];
            g.count += 1;
            g.same_reason &= *g.reason == *r.reason;
            if g.examples.len() < examples {
                g.examples.push(Example {
                    file: r.file.to_string(),
                    line: r.line,
                    tube: r.tube().to_owned(),
                    person: r.person().to_owned(),
                    reason: r.reason.to_string(),
                });
            }
        }
        // Stable: groups of equal severity and size stay in order of first appearance.
        groups.sort_by(|a, b| a.severity.cmp(&b.severity).then(b.count.cmp(&a.count)));
        groups
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

impl Reject {
    /// The row's tube barcode as written (cut to 200 characters).
    pub fn tube(&self) -> &str {
        self.written.get(..self.ends[0]).unwrap_or_default()
    }

    /// The row's person id as written, when the file has one.
    pub fn person(&self) -> &str {
        self.written
            .get(self.ends[0]..self.ends[1])
            .unwrap_or_default()
    }

    /// The offending value as written (cut to 200 characters).
    pub fn value(&self) -> &str {
        self.written.get(self.ends[1]..).unwrap_or_default()
    }

    /// The kind of problem: the reason with what is particular to the row masked, so
    /// rows refused for the same reason group together. Quoted text becomes `"…"`; a
    /// word holding a digit (tube ids, counts, times, Ct values), or the row's own tube,
    /// person or value, becomes `…` (the column's own name, `ct_orf1ab`, is kept).
    ///
    /// Reasons are written in many places (each check words its own), so the mask is
    /// applied to the text rather than asking each place for a code: a new check groups
    /// correctly without anyone remembering to give it one.
    pub fn kind(&self) -> String {
        let own = |word: &str| {
            !word.is_empty()
                && word != self.column
                && (word.bytes().any(|b| b.is_ascii_digit())
                    || word == self.tube()
                    || word == self.person()
                    || word == self.value())
        };
        let mut out = String::with_capacity(self.reason.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            // Punctuation around a word ("round R1;", "(Ct 38)") is kept, the core masked.
            let core = word.trim_matches(|c: char| !c.is_alphanumeric());
            if own(core) {
                let start = word.find(core).unwrap_or(0);
                out.push_str(&word[..start]);
                out.push('…');
                out.push_str(&word[start + core.len()..]);
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        let mut chars = self.reason.chars();
        while let Some(c) = chars.next() {
            if c == '"' {
                // A quoted value, as `{:?}` writes it: skip to the closing quote.
                flush(&mut word, &mut out);
                let mut escaped = false;
                for q in chars.by_ref() {
                    match q {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"…\"");
            } else if c.is_whitespace() {
                flush(&mut word, &mut out);
                out.push(c);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }
}

/// Cuts a value for the reject report so a 1 MB field does not make a 1 MB report line.
pub(crate) fn excerpt(v: &[u8]) -> String {
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

    fn reject(line: u64, column: &'static str, reason: &str, tube: &str) -> Reject {
        let mut r = Rejects::default();
        let at = Where {
            file: "b.csv",
            line,
            tube,
            person: "",
        };
        r.push(&at, Severity::Error, column, reason, b"");
        r.rows.remove(0)
    }

    #[test]
    fn rows_share_their_file_and_reason_and_keep_their_own_text() {
        let mut r = Rejects::default();
        let at = |file, line, tube, person| Where {
            file,
            line,
            tube,
            person,
        };
        let kept = "already recorded in this tube; kept once";
        r.push(
            &at("a.csv", 2, "T1", "P1"),
            Severity::Warning,
            "person",
            kept,
            b"P1",
        );
        r.push(
            &at("a.csv", 3, "T1", ""),
            Severity::Warning,
            "person",
            kept,
            b"",
        );
        r.push(
            &at("a.csv", 4, "", "P3"),
            Severity::Error,
            "tube",
            "no tube",
            b"",
        );
        r.push(
            &at("b.csv", 2, "T4", "P4"),
            Severity::Error,
            "tube",
            "no tube",
            &[b'v'; 300],
        );
        let rows = &r.rows;
        assert!(Arc::ptr_eq(&rows[0].reason, &rows[1].reason));
        assert!(Arc::ptr_eq(&rows[0].file, &rows[2].file));
        assert!(!Arc::ptr_eq(&rows[2].file, &rows[3].file));
        assert_eq!(&*rows[3].file, "b.csv");
        assert_eq!(&*rows[3].reason, "no tube");
        let texts: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|x| (x.tube(), x.person(), x.value()))
            .collect();
        assert_eq!(texts[0], ("T1", "P1", "P1"));
        assert_eq!(texts[1], ("T1", "", ""));
        assert_eq!(texts[2], ("", "P3", ""));
        assert_eq!((texts[3].0, texts[3].1), ("T4", "P4"));
        assert_eq!(texts[3].2, excerpt(&[b'v'; 300]));
    }

    #[test]
    fn a_kind_masks_what_belongs_to_the_row() {
        let kind = |reason: &str, tube: &str| reject(2, "tube", reason, tube).kind();
        assert_eq!(
            kind("tube RC00000001 was never collected", "RC00000001"),
            "tube … was never collected"
        );
        assert_eq!(
            kind(
                "tube ABC was collected in round spring; one round only",
                "ABC"
            ),
            "tube … was collected in round spring; one round only"
        );
        assert_eq!(
            kind(r#"mode "mi\"xed" is neither "single" nor "pool""#, "T1"),
            r#"mode "…" is neither "…" nor "…""#
        );
        assert_eq!(
            kind("reported at 2022-04-02 08:00 (Ct 38.5).", "T1"),
            "reported at … … (Ct …)."
        );
        let ct = reject(2, "ct_orf1ab", "ct_orf1ab: Ct must be a number", "T1");
        assert_eq!(ct.kind(), "ct_orf1ab: Ct must be a number");
    }

    #[test]
    fn a_summary_groups_by_kind_errors_first_with_the_first_rows() {
        let mut r = Rejects::default();
        for (line, tube) in [(9, "T9"), (3, "T3"), (5, "T5"), (4, "T4")] {
            r.rows.push(reject(
                line,
                "tube",
                &format!("tube {tube} was never collected"),
                tube,
            ));
        }
        let mut w = reject(2, "person", "scanned twice; kept once", "T2");
        w.severity = Severity::Warning;
        r.rows.insert(0, w);
        r.rows.push(reject(
            7,
            "",
            "the row has 3 fields but the header has 5",
            "T7",
        ));
        let s = r.summary(3);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].count, s[0].column), (4, "tube"));
        assert!(!s[0].same_reason);
        assert_eq!(s[0].reason, "tube T3 was never collected");
        let lines: Vec<u64> = s[0].examples.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert_eq!((s[1].count, s[1].column), (1, ""));
        assert!(s[1].same_reason);
        assert_eq!(s[2].severity, Severity::Warning);
    }

    #[test]
    fn csv_lists_rows_in_file_order() {
        let mut r = Rejects::default();
        for line in [9, 3] {
            let at = Where {
                file: "b.csv",
                line,
                tube: "x",
                person: "",
            };
            r.push(&at, Severity::Error, "tube", "bad", &[b'y'; 300]);
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
