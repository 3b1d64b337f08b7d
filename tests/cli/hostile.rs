//! Hostile input (issue 6): property tests that feed the row readers random bytes,
//! random valid and near-valid rows (each with one known defect), very long fields
//! (1 MB), NUL bytes, byte-order marks, CRLF, quoted commas and newlines, invalid UTF-8,
//! compressed streams that end early, and Parquet files with wrong column types.
//!
//! What must hold: no panic; every bad row rejected with its line, the column at fault
//! and a reason; every good row kept, with its values; a file that cannot be read as a
//! whole refused with a message naming it. Most cases call the library's readers
//! directly (fast); a few go through the binary to check the committed counts.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use pooltrack::ingest::collections;
use pooltrack::ingest::reject::{Rejects, Severity};
use pooltrack::ingest::results;
use pooltrack::ingest::table::{ReadOptions, Table};
use pooltrack::model::{IdCheck, Mode, Outcome};
use pooltrack::rows::CollectionRows;
use pooltrack::rows::ResultRows;
use pooltrack::time::Offset;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::common::pooltrack;
use crate::rules::{read_rejects, run, stderr_text};

// ---------------------------------------------------------------------------------------
// Reading through the library
// ---------------------------------------------------------------------------------------

/// Reads `bytes` as a collections file, from memory: the rows kept, the rejects, and
/// the rows read.
fn read_collections(bytes: &[u8]) -> pooltrack::Result<(CollectionRows, Rejects, u64)> {
    let input = std::io::Cursor::new(bytes.to_vec());
    let mut t = Table::from_reader("c.csv", input, &ReadOptions::default())?;
    collections::read_alone(&mut t, "c.csv", Offset::CHINA, IdCheck::Warn)
}

fn read_collections_file(p: &Path) -> pooltrack::Result<(CollectionRows, Rejects, u64)> {
    let mut t = Table::open(p)?;
    collections::read_alone(&mut t, "c.csv", Offset::CHINA, IdCheck::Warn)
}

fn read_results(bytes: &[u8]) -> pooltrack::Result<(ResultRows, Rejects, u64)> {
    let input = std::io::Cursor::new(bytes.to_vec());
    let mut t = Table::from_reader("r.csv", input, &ReadOptions::default())?;
    let cutoffs = results::Cutoffs { ct: 40.0, ic: 40.0 };
    results::read_alone(&mut t, "r.csv", Offset::CHINA, cutoffs)
}

// ---------------------------------------------------------------------------------------
// Generated rows: valid, or with exactly one known defect
// ---------------------------------------------------------------------------------------

/// Characters of valid free text: letters of two scripts, digits, and what CSV must
/// quote (comma, quote); an ideographic space, which is neither ASCII whitespace nor a
/// control character.
const TEXT: &[char] = &[
    'a', 'Z', '0', '9', ' ', ',', '"', '\'', '.', '/', '_', '-', '张', '三', 'é', '\u{3000}', ';',
];
const BARCODE: &[char] = &['A', 'Z', 'a', 'q', '0', '7', '9', '-'];
/// Control characters that make a person id or label invalid (inside the value: at
/// either end, ASCII whitespace is trimmed).
const CONTROL: &[char] = &[
    '\0', '\u{7}', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}',
];

fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TEXT), min..=max).prop_map(|mut v| {
        // Leading and trailing spaces would be trimmed: keep values as they read back.
        if let Some(c) = v.first_mut().filter(|c| **c == ' ') {
            *c = 'x';
        }
        if let Some(c) = v.last_mut().filter(|c| **c == ' ') {
            *c = 'y';
        }
        v.into_iter().collect()
    })
}

fn barcode(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(BARCODE), min..=max)
        .prop_map(|v| v.into_iter().collect())
}

/// A valid time in one of the accepted forms, sometimes padded with spaces.
fn time() -> impl Strategy<Value = String> {
    (1u32..=28, 0u32..24, 0u32..60, 0u32..60, 0u8..8).prop_map(|(d, h, m, s, form)| match form {
        0 => format!("2022-04-{d:02} {h:02}:{m:02}:{s:02}"),
        1 => format!("2022-04-{d:02}T{h:02}:{m:02}:{s:02}+08:00"),
        2 => format!("2022-04-{d:02}T{h:02}:{m:02}:{s:02}Z"),
        3 => format!("2022-04-{d:02}T{h:02}:{m:02}:{s:02}.125-05:30"),
        4 => format!("  2022-04-{d:02} {h:02}:{m:02}:{s:02} "),
        // As Excel writes them: '/', no leading zeros, no seconds.
        5 => format!("2022/4/{d} {h}:{m:02}"),
        6 => format!("2022-04-{d:02} {h:02}:{m:02}"),
        _ => format!("2022-04-{d:02}t{h:02}:{m:02}:{s:02}z"),
    })
}

/// An unknown column's value: anything, including NUL, newlines, quotes and bytes that
/// are not UTF-8 (never read, so never refused).
fn note() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(Vec::new()),
        3 => text(0, 20).prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..40),
        1 => Just(b"line one\nline two, \"quoted\"\r\n\0end".to_vec()),
    ]
}

fn insert_inside(value: &str, c: char, at: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let at = 1 + at % chars.len().saturating_sub(1).max(1);
    let at = at.min(chars.len());
    let mut out: String = chars[..at].iter().collect();
    out.push(c);
    out.extend(&chars[at..]);
    out
}

/// How a row differs from a valid one.
#[derive(Debug, Clone)]
enum Defect {
    /// A field is replaced: (column index in the row, new value, expected reject column).
    Field(usize, Vec<u8>, &'static str),
    /// A field is inserted before position `at` (a control character or space).
    Insert(usize, char, usize, &'static str),
    /// The row has one field too few.
    Short,
    /// The row has one field too many.
    Long,
    /// A single tube with a capacity other than 1.
    SingleCapacity(u8),
}

/// One generated row: its fields in canonical column order, and its defect.
#[derive(Debug, Clone)]
struct Row {
    fields: Vec<Vec<u8>>,
    defect: Option<Defect>,
}

impl Row {
    fn apply(mut self) -> Self {
        match &self.defect {
            Some(Defect::Field(i, v, _)) => self.fields[*i].clone_from(v),
            Some(Defect::Insert(i, c, at, _)) => {
                let mut s = String::from_utf8(self.fields[*i].clone()).expect("generated text");
                if s.chars().count() < 2 {
                    // Room to insert inside: at either end it would be trimmed.
                    "x9".clone_into(&mut s);
                }
                self.fields[*i] = insert_inside(&s, *c, *at).into_bytes();
            }
            Some(Defect::SingleCapacity(n)) => {
                self.fields[2] = b"single".to_vec();
                self.fields[3] = n.to_string().into_bytes();
            }
            _ => {}
        }
        self
    }

    /// The column of the problem this row must be reported with, or `None` when it
    /// must be kept silently.
    fn expected(&self) -> Option<&'static str> {
        match &self.defect {
            None => None,
            // A blank mode is "not stated": nothing to report.
            Some(Defect::Field(2, v, _)) if v.is_empty() => None,
            Some(Defect::Field(_, _, col) | Defect::Insert(_, _, _, col)) => Some(col),
            Some(Defect::Short | Defect::Long) => Some(""),
            Some(Defect::SingleCapacity(_)) => Some("capacity"),
        }
    }

    /// Whether the row is kept: no defect, or one in what a collection row says about
    /// its tube (mode, capacity, site), which is read as not stated with a warning
    /// (a membership is a physical fact). Results and population rows have no such
    /// columns at these positions: their callers pass `metadata = false`.
    fn kept(&self, metadata: bool) -> bool {
        match &self.defect {
            None => true,
            Some(Defect::SingleCapacity(_)) => metadata,
            Some(Defect::Field(i, ..) | Defect::Insert(i, ..)) => {
                metadata && matches!(i, 2 | 3 | 5)
            }
            Some(Defect::Short | Defect::Long) => false,
        }
    }
}

// Collections: tube, person, mode, capacity, collected_at, site, note.
const C_COLUMNS: [&str; 7] = [
    "tube",
    "person",
    "mode",
    "capacity",
    "collected_at",
    "site",
    "note",
];

fn collection_row() -> impl Strategy<Value = Row> {
    let valid = (
        barcode(4, 32),
        text(1, 64),
        prop::bool::ANY,
        prop_oneof![Just(None), (1u8..=20).prop_map(Some)],
        time(),
        text(0, 64),
        note(),
        0u8..3,
    )
        .prop_map(|(tube, person, single, cap, at, site, note, case)| {
            let mode = match (single, case) {
                (true, 0) => "single",
                (true, 1) => "SINGLE",
                (true, _) => "Single",
                (false, 0) => "pool",
                (false, 1) => "POOL",
                (false, _) => "Pool",
            };
            let cap = if single {
                if case == 0 {
                    "1".to_owned()
                } else {
                    String::new()
                }
            } else {
                cap.map_or(String::new(), |c| c.to_string())
            };
            vec![
                tube.into_bytes(),
                person.into_bytes(),
                mode.as_bytes().to_vec(),
                cap.into_bytes(),
                at.into_bytes(),
                site.into_bytes(),
                note,
            ]
        });
    let defect = prop_oneof![
        6 => Just(None),
        1 => barcode(0, 3).prop_map(|v| Some(Defect::Field(0, v.into_bytes(), "tube"))),
        1 => barcode(33, 40).prop_map(|v| Some(Defect::Field(0, v.into_bytes(), "tube"))),
        1 => (prop::sample::select(&[' ', '_', 'é', '/', '.', '\0', ','][..]), any::<usize>())
            .prop_map(|(c, at)| Some(Defect::Insert(0, c, at, "tube"))),
        1 => Just(Some(Defect::Field(1, Vec::new(), "person"))),
        1 => text(65, 80).prop_map(|v| Some(Defect::Field(1, v.into_bytes(), "person"))),
        1 => (prop::sample::select(CONTROL), any::<usize>())
            .prop_map(|(c, at)| Some(Defect::Insert(1, c, at, "person"))),
        1 => prop::sample::select(&["mixed", "p00l", "", "singles", "单"][..])
            .prop_map(|v| Some(Defect::Field(2, v.as_bytes().to_vec(), "mode"))),
        1 => prop::sample::select(&["0", "21", "255", "256", "abc", "1.5", "-1", "99999999999"][..])
            .prop_map(|v| Some(Defect::Field(3, v.as_bytes().to_vec(), "capacity"))),
        1 => prop::sample::select(
            &["yesterday", "02/04/2022 08:00:00", "2022-04-02", "2022-02-30 08:00:00",
              "2022-04-02 25:00:00", "2022-13-01 00:00:00", "1999-12-31 23:59:59",
              "2200-01-01 00:00:00", "2022-04-02T08:00:00+8", ""][..])
            .prop_map(|v| Some(Defect::Field(4, v.as_bytes().to_vec(), "collected_at"))),
        1 => (2u8..=20).prop_map(|n| Some(Defect::SingleCapacity(n))),
        1 => text(65, 80).prop_map(|v| Some(Defect::Field(5, v.into_bytes(), "site"))),
        1 => (prop::sample::select(CONTROL), any::<usize>())
            .prop_map(|(c, at)| Some(Defect::Insert(5, c, at, "site"))),
        1 => Just(Some(Defect::Short)),
        1 => Just(Some(Defect::Long)),
    ];
    (valid, defect).prop_map(|(mut fields, defect)| {
        // A single tube with a capacity other than 1 is its own defect.
        if let Some(Defect::Field(3, ..)) = defect
            && fields[2].eq_ignore_ascii_case(b"single")
        {
            fields[2] = b"pool".to_vec();
        }
        Row { fields, defect }.apply()
    })
}

// Results: tube, result, ct_orf1ab, ct_n, reported_at, lab, plate, well, note.
const R_COLUMNS: [&str; 9] = [
    "tube",
    "result",
    "ct_orf1ab",
    "ct_n",
    "reported_at",
    "lab",
    "plate",
    "well",
    "note",
];

fn ct() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        1 => prop::sample::select(&["-", "Undetermined", "N/A", "no ct", "No Amplification"][..])
            .prop_map(str::to_owned),
        3 => (0u32..=1000).prop_map(|v| format!("{}.{}", v / 10, v % 10)),
        1 => (0u32..=100).prop_map(|v| v.to_string()),
    ]
}

fn result_row() -> impl Strategy<Value = Row> {
    let words = &[
        "negative",
        "POSITIVE",
        "Inconclusive",
        "invalid",
        "阴性",
        "阳性",
        "",
        "",
    ][..];
    let valid = (
        barcode(4, 32),
        prop::sample::select(words),
        ct(),
        ct(),
        time(),
        text(0, 64),
        text(0, 20),
        text(0, 4),
        note(),
    )
        .prop_map(|(tube, result, a, b, at, lab, plate, well, note)| {
            vec![
                tube.into_bytes(),
                result.as_bytes().to_vec(),
                a.into_bytes(),
                b.into_bytes(),
                at.into_bytes(),
                lab.into_bytes(),
                plate.into_bytes(),
                well.into_bytes(),
                note,
            ]
        });
    let bad_ct = &["abc", "-3", "100.5", "NaN", "inf", "1e3", "3O.1"][..];
    let defect = prop_oneof![
        6 => Just(None),
        1 => barcode(0, 3).prop_map(|v| Some(Defect::Field(0, v.into_bytes(), "tube"))),
        1 => (prop::sample::select(&[' ', '_', '\0'][..]), any::<usize>())
            .prop_map(|(c, at)| Some(Defect::Insert(0, c, at, "tube"))),
        1 => prop::sample::select(&["pos", "maybe", "nega tive", "阴", "+"][..])
            .prop_map(|v| Some(Defect::Field(1, v.as_bytes().to_vec(), "result"))),
        1 => prop::sample::select(bad_ct)
            .prop_map(|v| Some(Defect::Field(2, v.as_bytes().to_vec(), "ct_orf1ab"))),
        1 => prop::sample::select(bad_ct)
            .prop_map(|v| Some(Defect::Field(3, v.as_bytes().to_vec(), "ct_n"))),
        1 => prop::sample::select(&["later", "2022-04-31 08:00:00", "", "28/04/2022 08:00"][..])
            .prop_map(|v| Some(Defect::Field(4, v.as_bytes().to_vec(), "reported_at"))),
        1 => text(65, 70).prop_map(|v| Some(Defect::Field(5, v.into_bytes(), "lab"))),
        1 => (prop::sample::select(CONTROL), any::<usize>())
            .prop_map(|(c, at)| Some(Defect::Insert(6, c, at, "plate"))),
        1 => text(65, 70).prop_map(|v| Some(Defect::Field(7, v.into_bytes(), "well"))),
        1 => Just(Some(Defect::Short)),
        1 => Just(Some(Defect::Long)),
    ];
    (valid, defect).prop_map(|(fields, defect)| Row { fields, defect }.apply())
}

/// How a file is written: column order, quoting, line ends, BOM, blank lines.
// Each flag is one independent habit of the program that wrote the file.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
struct Dialect {
    order: Vec<usize>,
    quote_all: bool,
    crlf: bool,
    bom: bool,
    blank_every: usize,
    header_case: u8,
    final_newline: bool,
}

fn dialect(columns: usize) -> impl Strategy<Value = Dialect> {
    (
        Just((0..columns).collect::<Vec<_>>()).prop_shuffle(),
        prop::bool::weighted(0.3),
        prop::bool::ANY,
        prop::bool::weighted(0.3),
        0usize..5,
        0u8..3,
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(order, quote_all, crlf, bom, blank_every, header_case, final_newline)| Dialect {
                order,
                quote_all,
                crlf,
                bom,
                blank_every,
                header_case,
                final_newline,
            },
        )
}

fn csv_field(out: &mut Vec<u8>, v: &[u8], quote_all: bool) {
    let needs = v.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if quote_all || needs {
        out.push(b'"');
        for &b in v {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

/// Writes rows as CSV in a dialect; returns the bytes and each row's line number.
fn write_csv(columns: &[&str], rows: &[Row], d: &Dialect) -> (Vec<u8>, Vec<u64>) {
    let eol: &[u8] = if d.crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::new();
    if d.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for (k, &c) in d.order.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        let name = match d.header_case {
            0 => columns[c].to_owned(),
            1 => columns[c].to_uppercase(),
            _ => format!(" {} ", columns[c]),
        };
        csv_field(&mut out, name.as_bytes(), d.quote_all);
    }
    out.extend_from_slice(eol);
    let mut lines = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        if d.blank_every > 0 && i % d.blank_every == 1 {
            out.extend_from_slice(eol);
        }
        lines.push(1 + line_breaks(&out));
        let mut order = d.order.clone();
        match r.defect {
            Some(Defect::Short) => {
                order.pop();
            }
            Some(Defect::Long) => order.push(order[0]),
            _ => {}
        }
        for (k, &c) in order.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            csv_field(&mut out, &r.fields[c], d.quote_all);
        }
        if i + 1 < rows.len() || d.final_newline {
            out.extend_from_slice(eol);
        }
    }
    (out, lines)
}

/// Line breaks in `b` as a text editor counts them: LF, CRLF, or a CR alone. Plain
/// loops on purpose: this is the test's own model, independent of the reader's.
#[allow(clippy::naive_bytecount)]
fn line_breaks(b: &[u8]) -> u64 {
    let lf = b.iter().filter(|&&c| c == b'\n').count();
    let lone_cr = b
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\r' && b.get(i + 1) != Some(&b'\n'))
        .count();
    (lf + lone_cr) as u64
}

/// Checks rejects against the generated rows: each bad row rejected once, at its line,
/// on its column, with a reason; nothing else rejected. Returns the rows to keep.
fn check_rejects(
    rows: &[Row],
    lines: &[u64],
    rejects: &Rejects,
    metadata: bool,
) -> Result<Vec<usize>, TestCaseError> {
    let mut got: Vec<(u64, &str, Severity)> = rejects
        .rows
        .iter()
        .map(|r| (r.line, r.column, r.severity))
        .collect();
    got.sort_unstable_by_key(|&(l, c, _)| (l, c));
    for r in &rejects.rows {
        prop_assert!(r.reason.len() > 10, "a reason a clerk understands: {:?}", r);
    }
    let mut want: Vec<(u64, &str, Severity)> = rows
        .iter()
        .zip(lines)
        .filter_map(|(r, &l)| {
            let severity = if r.kept(metadata) {
                Severity::Warning
            } else {
                Severity::Error
            };
            r.expected().map(|c| (l, c, severity))
        })
        .collect();
    want.sort_unstable_by_key(|&(l, c, _)| (l, c));
    prop_assert_eq!(got, want, "rejects (line, column, severity)");
    Ok(rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kept(metadata))
        .map(|(i, _)| i)
        .collect())
}

fn as_text(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("generated valid fields are UTF-8")
}

/// Totals over all generated cases, for the README's figures.
#[derive(Default)]
struct Tally {
    files: u64,
    rows: u64,
    rejects: u64,
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn generated_collection_rows_are_kept_or_rejected_exactly() {
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (
        prop::collection::vec(collection_row(), 0..60),
        dialect(C_COLUMNS.len()),
    );
    runner(96)
        .run(&strategy, |(rows, d)| {
            let (bytes, lines) = write_csv(&C_COLUMNS, &rows, &d);
            let (kept, rejects, n) =
                read_collections(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(n, rows.len() as u64, "rows read");
            let good = check_rejects(&rows, &lines, &rejects, true)?;
            prop_assert_eq!(kept.len(), good.len(), "rows kept");
            for (k, &i) in good.iter().enumerate() {
                let f = &rows[i].fields;
                let warned = rows[i].defect.is_some();
                prop_assert_eq!(kept.tube.get(k), as_text(&f[0]));
                prop_assert_eq!(kept.person.get(k).to_string(), as_text(&f[1]));
                // Unreadable metadata is read as not stated, and a blank is not stated.
                let field = |c: usize| std::str::from_utf8(&f[c]).unwrap_or("").trim_ascii();
                let mode = Mode::parse(field(2));
                prop_assert_eq!(kept.mode[k], mode);
                let cap: u8 = match &rows[i].defect {
                    Some(Defect::SingleCapacity(_) | Defect::Field(3, ..)) => 0,
                    _ => field(3).parse().unwrap_or(0),
                };
                prop_assert_eq!(kept.capacity[k], cap);
                let site = if warned
                    && matches!(
                        &rows[i].defect,
                        Some(Defect::Field(5, ..) | Defect::Insert(5, ..))
                    ) {
                    ""
                } else {
                    field(5)
                };
                prop_assert_eq!(kept.site.get_opt(k).unwrap_or(""), site);
                prop_assert_eq!(u64::from(kept.source.line(k)), lines[i]);
            }
            let mut t = tally.borrow_mut();
            t.files += 1;
            t.rows += rows.len() as u64;
            t.rejects += rejects.rows.len() as u64;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let t = tally.into_inner();
    eprintln!(
        "collections: {} generated files, {} rows, {} rejects checked (line, column, reason)",
        t.files, t.rows, t.rejects
    );
}

#[test]
fn generated_result_rows_are_kept_or_rejected_exactly() {
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (
        prop::collection::vec(result_row(), 0..60),
        dialect(R_COLUMNS.len()),
    );
    runner(96)
        .run(&strategy, |(rows, d)| {
            let (bytes, lines) = write_csv(&R_COLUMNS, &rows, &d);
            let (kept, rejects, n) =
                read_results(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(n, rows.len() as u64, "rows read");
            let good = check_rejects(&rows, &lines, &rejects, false)?;
            prop_assert_eq!(kept.len(), good.len(), "rows kept");
            for (k, &i) in good.iter().enumerate() {
                let f = &rows[i].fields;
                prop_assert_eq!(kept.tube.get(k), as_text(&f[0]));
                let ct = |b: &[u8]| results::parse_ct(as_text(b).trim()).expect("valid ct");
                let (a, b) = (ct(&f[2]), ct(&f[3]));
                prop_assert_eq!(kept.ct_orf1ab.get(k), a);
                prop_assert_eq!(kept.ct_n.get(k), b);
                let want = match Outcome::parse(as_text(&f[1])) {
                    Some(o) => o,
                    None => Outcome::from_ct(a, b, 40.0),
                };
                prop_assert_eq!(kept.outcome[k], want);
                prop_assert_eq!(kept.from_ct[k], f[1].is_empty());
                prop_assert_eq!(u64::from(kept.source.line(k)), lines[i]);
            }
            let mut t = tally.borrow_mut();
            t.files += 1;
            t.rows += rows.len() as u64;
            t.rejects += rejects.rows.len() as u64;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let t = tally.into_inner();
    eprintln!(
        "results: {} generated files, {} rows, {} rejects checked (line, column, reason)",
        t.files, t.rows, t.rejects
    );
}

// ---------------------------------------------------------------------------------------
// Random bytes, invalid UTF-8, compressed streams that end early
// ---------------------------------------------------------------------------------------

/// Either a whole-file refusal naming the file, or every row read is kept or rejected.
fn accounted(res: pooltrack::Result<(usize, u64, u64)>) -> Result<(), TestCaseError> {
    match res {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains(".csv"), "the refusal names the file: {}", msg);
            prop_assert!(e.exit_code() == 1, "input errors exit 1: {}", msg);
        }
        Ok((kept, rejected, read)) => {
            prop_assert_eq!(kept as u64 + rejected, read, "every row kept or rejected");
        }
    }
    Ok(())
}

#[test]
fn random_bytes_never_panic_and_every_row_is_accounted_for() {
    let header_c = b"tube,person,mode,capacity,collected_at,site\n".to_vec();
    let header_r = b"tube,result,ct_orf1ab,ct_n,reported_at,lab\n".to_vec();
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        // Mostly CSV-ish bytes, so more of them get past the header.
        prop::collection::vec(
            prop::sample::select(&b"AB01-,\"\n\r \x00\xff\xef\xbb\xbfpoolsingle2022-04:T+Z"[..]),
            0..2048
        ),
    ];
    let strategy = (prop::bool::ANY, prop::bool::ANY, body);
    runner(256)
        .run(&strategy, |(with_header, collections, body)| {
            let mut bytes = Vec::new();
            if with_header {
                bytes.extend(if collections { &header_c } else { &header_r });
            }
            bytes.extend(&body);
            if collections {
                accounted(read_collections(&bytes).map(|(k, r, n)| (k.len(), r.errors(), n)))
            } else {
                accounted(read_results(&bytes).map(|(k, r, n)| (k.len(), r.errors(), n)))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn invalid_utf8_in_a_read_field_refuses_the_file_with_its_line() {
    const BAD: [&[u8]; 4] = [b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80"];
    let strategy = (1usize..30, 0usize..6, prop::sample::select(&BAD[..]));
    runner(64)
        .run(&strategy, |(rows, field, bad)| {
            let mut text = b"tube,person,mode,capacity,collected_at,site,note\n".to_vec();
            for i in 0..rows {
                let mut fields: Vec<Vec<u8>> = vec![
                    format!("TB{i:04}").into_bytes(),
                    format!("p{i}").into_bytes(),
                    b"pool".to_vec(),
                    b"10".to_vec(),
                    b"2022-04-02 08:00:00".to_vec(),
                    b"S1".to_vec(),
                    b"\xff ignored \xfe".to_vec(),
                ];
                if i == rows - 1 {
                    fields[field].extend_from_slice(bad);
                }
                text.extend(fields.join(&b","[..]));
                text.push(b'\n');
            }
            match read_collections(&text) {
                Ok((kept, rejects, _)) => prop_assert!(
                    false,
                    "a file with invalid UTF-8 in field {} was read: {} kept, {:?}",
                    field,
                    kept.len(),
                    rejects.rows
                ),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.contains("UTF-8"), "{}", msg);
                    prop_assert!(msg.contains(&format!("line {}", rows + 1)), "{}", msg);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

fn valid_collections(n: usize) -> Vec<u8> {
    let mut s = String::from("tube,person,mode,capacity,collected_at,site\n");
    for i in 0..n {
        writeln!(
            s,
            "GZ{:06},person-{i},pool,10,2022-04-02 08:00:00,S1",
            i / 10
        )
        .expect("write");
    }
    s.into_bytes()
}

#[test]
fn compressed_streams_that_end_early_refuse_the_file() {
    let plain = valid_collections(3_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::encode_all(&plain[..], 3).expect("zstd");
    // Whole, both read every row.
    for whole in [&gz, &zst] {
        let (kept, _, n) = read_collections(whole).expect("whole stream reads");
        assert_eq!((kept.len(), n), (3_000, 3_000));
    }
    let strategy = (prop::bool::ANY, 0usize..10_000);
    let mut refused = 0u32;
    runner(128)
        .run(&strategy, |(use_gz, frac)| {
            let full = if use_gz { &gz } else { &zst };
            let cut = (full.len() - 1) * frac / 10_000;
            match read_collections(&full[..cut]) {
                Ok((kept, _, n)) => prop_assert!(
                    false,
                    "a {} stream cut at {} of {} bytes read cleanly ({} of {} rows): rows were silently lost",
                    if use_gz { "gzip" } else { "zstd" },
                    cut,
                    full.len(),
                    kept.len(),
                    n
                ),
                Err(e) => prop_assert!(e.to_string().contains("c.csv"), "{}", e),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    refused += 128;
    // The last bytes too: the gzip trailer (CRC and length) and zstd's last block.
    for full in [&gz, &zst] {
        for cut in 1..=8 {
            let r = read_collections(&full[..full.len() - cut]);
            assert!(
                r.is_err(),
                "a stream missing its last {cut} byte(s) must be refused"
            );
            refused += 1;
        }
    }
    eprintln!("{refused} truncated compressed streams refused");
}

// ---------------------------------------------------------------------------------------
// Very long fields, and chunk boundaries
// ---------------------------------------------------------------------------------------

#[test]
fn one_megabyte_fields_are_rejected_or_ignored_without_harm() {
    let mb = 1 << 20;
    let long_text = "x".repeat(mb);
    let long_tube = "A".repeat(mb);
    let mut s = String::from("tube,person,mode,capacity,collected_at,site,note\n");
    let mut expect = Vec::new(); // (line, column or "" kept)
    for i in 0..12u64 {
        let (tube, person, site, note, col) = match i % 4 {
            0 => (
                format!("LONG{i:04}"),
                format!("p{i}"),
                "S1".to_owned(),
                long_text.clone(),
                None,
            ),
            1 => (
                format!("LONG{i:04}"),
                long_text.clone(),
                "S1".to_owned(),
                String::new(),
                Some("person"),
            ),
            2 => (
                long_tube.clone(),
                format!("p{i}"),
                "S1".to_owned(),
                String::new(),
                Some("tube"),
            ),
            _ => (
                format!("LONG{i:04}"),
                format!("p{i}"),
                long_text.clone(),
                String::new(),
                Some("site"),
            ),
        };
        // Each row's note holds a newline: every row takes two lines.
        expect.push((2 + 2 * i, col));
        writeln!(
            s,
            "{tube},{person},pool,10,2022-04-02 08:00:00,{site},\"{note}\n{note}\""
        )
        .expect("write");
    }
    let (kept, rejects, n) = read_collections(s.as_bytes()).expect("reads");
    assert_eq!(n, 12);
    // Rows with a long site are kept with a warning: a site is metadata.
    assert_eq!(kept.len(), 6);
    let mut got: Vec<(u64, &str)> = rejects.rows.iter().map(|r| (r.line, r.column)).collect();
    got.sort_unstable();
    let want: Vec<(u64, &str)> = expect
        .iter()
        .filter_map(|&(l, c)| c.map(|c| (l, c)))
        .collect();
    assert_eq!(got, want);
    for r in &rejects.rows {
        assert!(
            r.value().len() < 300,
            "the report quotes at most 200 characters"
        );
    }
    // Through the binary: the batch commits the 6 rows that can be placed, and the
    // rejects report stays small.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("long.csv");
    fs::write(&f, &s).expect("write");
    let store = dir.path().join("store");
    let out = run(pooltrack(&store)
        .args(["ingest", "collections", "--round", "R1", "--json"])
        .arg(&f));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["committed"].as_u64(), v["rejected"].as_u64()),
        (Some(6), Some(6)),
        "{v}"
    );
    assert!(v["rejects_file"].is_string(), "{v}");
}

/// The reject report quotes a bad value cut to 200 characters, and its `tube` and
/// `person` columns too: a 1 MB barcode or id must not make a 1 MB report line (nor
/// keep 1 MB of memory per reject).
#[test]
fn the_reject_report_stays_small_for_long_fields() {
    let mb = "y".repeat(1 << 20);
    let text = format!(
        "tube,person,mode,collected_at\nAB01,{mb},pool,2022-04-02 08:00:00\n{mb},p,pool,2022-04-02 08:00:00\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("long.csv");
    fs::write(&f, &text).expect("write");
    let store = dir.path().join("store");
    let out = run(pooltrack(&store)
        .args(["ingest", "collections", "--round", "R1", "--json"])
        .arg(&f));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let report = std::path::PathBuf::from(v["rejects_file"].as_str().expect("rejects file"));
    let size = fs::metadata(&report).expect("report").len();
    assert!(
        size < 20_000,
        "the rejects report of 2 rows is {size} bytes"
    );
}

/// Files over the reader's 8 MB chunk: records with quoted newlines and quoted commas
/// must survive every cut, with the line numbers a text editor shows.
#[test]
fn records_survive_chunk_boundaries() {
    let mut s = String::from("tube,person,mode,capacity,collected_at,site,note\n");
    let note = "a, \"b\"\nc".repeat(40);
    let mut line = 2u64;
    let mut lines = Vec::new();
    let mut i = 0;
    while s.len() < 20 << 20 {
        lines.push(line);
        let bad = i % 1000 == 999;
        let person = if bad { String::new() } else { format!("p,{i}") };
        writeln!(
            s,
            "CH{i:07},\"{person}\",pool,10,2022-04-02 08:00:00,S1,\"{}\"",
            note.replace('"', "\"\"")
        )
        .expect("write");
        line += 1 + note.matches('\n').count() as u64;
        i += 1;
    }
    let (kept, rejects, n) = read_collections(s.as_bytes()).expect("reads");
    assert_eq!(n, i as u64);
    assert_eq!(rejects.rows.len(), i / 1000);
    assert_eq!(kept.len() + rejects.rows.len(), i);
    for (k, r) in rejects.rows.iter().enumerate() {
        assert_eq!(r.line, lines[k * 1000 + 999], "{r:?}");
        assert_eq!(r.column, "person");
    }
    let last = kept.len() - 1;
    assert_eq!(kept.person.get(last).as_str(), format!("p,{}", i - 1));
    assert_eq!(u64::from(kept.source.line(last)), lines[i - 1]);
}

// ---------------------------------------------------------------------------------------
// Parquet with wrong column types
// ---------------------------------------------------------------------------------------

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    let f = fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(f, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

fn strings(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn read_parquet(path: &Path) -> pooltrack::Result<(CollectionRows, Rejects, u64)> {
    read_collections_file(path)
}

#[test]
fn parquet_with_wrong_column_types_is_refused_or_rejected_row_by_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 4;
    let base = |tube: ArrayRef, capacity: ArrayRef| -> Vec<(&'static str, ArrayRef)> {
        vec![
            ("tube", tube),
            ("person", strings(&["a", "b", "c", "d"])),
            ("mode", strings(&["pool"; 4])),
            ("capacity", capacity),
            ("collected_at", strings(&["2022-04-02 08:00:00"; 4])),
        ]
    };
    let tubes = strings(&["PQ0001", "PQ0001", "PQ0002", "PQ0002"]);

    // `tube` as a list column: no text form a barcode could have.
    let mut lb = ListBuilder::new(StringBuilder::new());
    for _ in 0..n {
        lb.values().append_value("PQ0001");
        lb.append(true);
    }
    let p = dir.path().join("list.parquet");
    write_parquet(&p, base(Arc::new(lb.finish()), strings(&["10"; 4])));
    refused_or_all_rejected(&p, "tube");

    // `tube` as a struct column.
    let inner: ArrayRef = strings(&["PQ0001"; 4]);
    let st = StructArray::from(vec![(
        Arc::new(Field::new("code", DataType::Utf8, true)),
        inner,
    )]);
    let p = dir.path().join("struct.parquet");
    write_parquet(&p, base(Arc::new(st), strings(&["10"; 4])));
    refused_or_all_rejected(&p, "tube");

    // `capacity` as text with one bad value: that row alone is rejected.
    let p = dir.path().join("text-capacity.parquet");
    write_parquet(&p, base(tubes.clone(), strings(&["10", "abc", "10", "21"])));
    let (kept, rejects, read) = read_parquet(&p).expect("reads");
    assert_eq!(read, 4);
    // Rows are numbered as if line 1 were a header: row 2 of the file is line 3.
    let got: Vec<(u64, &str)> = rejects.rows.iter().map(|r| (r.line, r.column)).collect();
    assert_eq!(got, [(3, "capacity"), (5, "capacity")]);
    // An unreadable capacity is read as not stated: the rows are kept, warned.
    assert!(rejects.rows.iter().all(|r| r.severity == Severity::Warning));
    assert_eq!(kept.len(), 4);

    // Integer and timestamp columns are read as their text: an ID number stored as an
    // integer, a capacity as an integer, a time as a UTC timestamp.
    let p = dir.path().join("typed.parquet");
    let ts = TimestampMillisecondArray::from(vec![1_648_857_600_000i64; 4]).with_timezone("+00:00");
    write_parquet(
        &p,
        vec![
            ("tube", tubes.clone()),
            (
                "person",
                Arc::new(Int64Array::from(vec![110_101_199_001_011_237i64, 2, 3, 4])),
            ),
            ("mode", strings(&["pool"; 4])),
            ("capacity", Arc::new(Int64Array::from(vec![10i64; 4]))),
            ("collected_at", Arc::new(ts)),
        ],
    );
    let (kept, rejects, _) = read_parquet(&p).expect("reads");
    assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
    assert_eq!(kept.person.get(0).as_str(), "110101199001011237");
    assert_eq!(kept.capacity, [10; 4]);
    assert_eq!(kept.collected_at[0], 1_648_857_600_000);
    // A timestamp without a zone is a local time, read in the store's zone (+08:00).
    let p = dir.path().join("local.parquet");
    let local = TimestampMillisecondArray::from(vec![1_648_857_600_000i64; 4]);
    write_parquet(
        &p,
        vec![
            ("tube", tubes.clone()),
            ("person", strings(&["a", "b", "c", "d"])),
            ("mode", strings(&["pool"; 4])),
            ("collected_at", Arc::new(local)),
        ],
    );
    let (kept, _, _) = read_parquet(&p).expect("reads");
    assert_eq!(kept.collected_at[0], 1_648_857_600_000 - 8 * 3_600_000);

    // A binary person column holding bytes that are not UTF-8: refused, named.
    let p = dir.path().join("binary.parquet");
    let bin: ArrayRef = Arc::new(BinaryArray::from(vec![
        &b"ok"[..],
        &b"\xff\xfe"[..],
        &b"c"[..],
        &b"d"[..],
    ]));
    write_parquet(
        &p,
        vec![
            ("tube", tubes.clone()),
            ("person", bin),
            ("mode", strings(&["pool"; 4])),
            ("collected_at", strings(&["2022-04-02 08:00:00"; 4])),
        ],
    );
    // Refused as a file, or that row rejected on `person` (today: the cast to text
    // makes the bad value null, and the row is rejected as "person id is empty").
    match read_parquet(&p) {
        Err(err) => assert!(err.to_string().contains("binary.parquet"), "{err}"),
        Ok((kept, rejects, _)) => {
            assert_eq!(kept.len(), 3);
            let got: Vec<(u64, &str)> = rejects.rows.iter().map(|r| (r.line, r.column)).collect();
            assert_eq!(got, [(3, "person")]);
        }
    }

    // Null barcodes are empty barcodes: rejected on `tube`, the others kept.
    let p = dir.path().join("nulls.parquet");
    let with_nulls: ArrayRef = Arc::new(StringArray::from(vec![
        Some("PQ0001"),
        None,
        Some("PQ0002"),
        None,
    ]));
    write_parquet(&p, base(with_nulls, strings(&["10"; 4])));
    let (kept, rejects, _) = read_parquet(&p).expect("reads");
    assert_eq!(kept.len(), 2);
    assert!(rejects.rows.iter().all(|r| r.column == "tube"));

    // A Parquet file cut short: refused, named.
    let whole = fs::read(dir.path().join("typed.parquet")).expect("read");
    for cut in [whole.len() / 2, whole.len() - 1, 8] {
        let p = dir.path().join("cut.parquet");
        fs::write(&p, &whole[..cut]).expect("write");
        let err = read_parquet(&p).expect_err("a cut Parquet file is refused");
        assert!(err.to_string().contains("cut.parquet"), "{err}");
    }
}

fn refused_or_all_rejected(p: &Path, column: &str) {
    match read_parquet(p) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(column),
                "the refusal names the column {column}: {msg}"
            );
            assert!(
                msg.contains(&*p.file_name().expect("name").to_string_lossy()),
                "{msg}"
            );
        }
        Ok((kept, rejects, n)) => {
            assert_eq!(
                kept.len(),
                0,
                "no row with a {column} of the wrong type is kept"
            );
            assert_eq!(rejects.rows.len() as u64, n);
            assert!(
                rejects.rows.iter().all(|r| r.column == column),
                "{:?}",
                rejects.rows
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Through the binary: the committed count equals the valid rows
// ---------------------------------------------------------------------------------------

#[test]
fn through_the_binary_the_committed_count_is_the_valid_rows() {
    let strategy = (
        prop::collection::vec(collection_row(), 1..40),
        dialect(C_COLUMNS.len()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::cell::Cell::new(0u32);
    runner(12)
        .run(&strategy, |(mut rows, d)| {
            let case = counter.get();
            counter.set(case + 1);
            // One tube and one person per row, so the batch checks pass every valid row.
            for (i, r) in rows.iter_mut().enumerate() {
                if r.expected() != Some("tube") {
                    r.fields[0] = format!("U{case:03}X{i:04}").into_bytes();
                }
                if r.expected() != Some("person") {
                    let mut p = format!("u{case}-{i}-").into_bytes();
                    p.extend_from_slice(&r.fields[1]);
                    p.truncate(60);
                    while std::str::from_utf8(&p).is_err() {
                        p.pop();
                    }
                    r.fields[1] = p;
                }
            }
            let (bytes, lines) = write_csv(&C_COLUMNS, &rows, &d);
            let f = dir.path().join(format!("case{case}.csv"));
            fs::write(&f, &bytes).expect("write");
            let store = dir.path().join(format!("store{case}"));
            let out = run(pooltrack(&store)
                .args(["ingest", "collections", "--round", "R1", "--json"])
                .arg(&f));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            let bad = rows.iter().filter(|r| !r.kept(true)).count() as u64;
            let good = rows.len() as u64 - bad;
            // Exit 4: rows were read and every one was refused.
            let code = if good == 0 { 4 } else { 0 };
            prop_assert_eq!(out.status.code(), Some(code), "{}", stderr_text(&out));
            prop_assert_eq!(v["committed"].as_u64(), Some(good), "{}", v);
            prop_assert_eq!(v["rejected"].as_u64(), Some(bad), "{}", v);
            let reported = rows.iter().filter(|r| r.expected().is_some()).count();
            if reported > 0 {
                let report = read_rejects(Path::new(v["rejects_file"].as_str().expect("file")));
                let mut got: Vec<u64> = report.iter().map(|r| r.line).collect();
                got.sort_unstable();
                let want: Vec<u64> = rows
                    .iter()
                    .zip(&lines)
                    .filter(|(r, _)| r.expected().is_some())
                    .map(|(_, &l)| l)
                    .collect();
                prop_assert_eq!(got, want);
            }
            if good > 0 {
                let s = crate::common::json_of(
                    pooltrack(&store).args(["status", "--round", "R1", "--json"]),
                );
                prop_assert_eq!(s["persons"].as_u64(), Some(good));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A quote inside an unquoted field (`O"Brien`) is read as a literal quote. The reader
/// cuts files over 8 MB into chunks at newlines outside quoted fields; counting quotes
/// alone, the stray quote would flip that count and a cut could fall inside a later
/// quoted field holding a newline, splitting that record in two (a row kept with its
/// field cut short, and a bogus reject).
fn stray_quote_file(rows: usize) -> String {
    let mut s = String::from("tube,person,mode,capacity,collected_at,site,note\n");
    for i in 0..rows {
        let person = if i == 7 {
            "O\"Brien".to_owned()
        } else {
            format!("p{i}")
        };
        writeln!(
            s,
            "SQ{i:07},{person},pool,10,2022-04-02 08:00:00,S1,\"a\nb\""
        )
        .expect("w");
    }
    s
}

#[test]
fn a_stray_quote_in_an_unquoted_field_is_a_literal_quote() {
    let (kept, rejects, n) = read_collections(stray_quote_file(20).as_bytes()).expect("reads");
    assert_eq!((kept.len(), rejects.rows.len(), n), (20, 0, 20));
    assert_eq!(kept.person.get(7).as_str(), "O\"Brien");
}

#[test]
fn a_stray_quote_does_not_split_records_at_a_chunk_boundary() {
    let rows = 180_000; // about 9.5 MB: two chunks
    let text = stray_quote_file(rows);
    assert!(text.len() > 8 << 20);
    let (kept, rejects, n) = read_collections(text.as_bytes()).expect("reads");
    assert_eq!(n, rows as u64, "rows read");
    assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
    assert_eq!(kept.len(), rows);
}

/// Parquet writers (pandas, Spark, `DuckDB`, pooltrack's own segments) mark an instant
/// as `Timestamp(ms, "UTC")`; such a `collected_at` column must read as that instant
/// (arrow's cast to text alone refuses it: "only offset based timezones supported
/// without chrono-tz").
#[test]
fn a_parquet_timestamp_in_utc_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("utc.parquet");
    let ts = TimestampMillisecondArray::from(vec![1_648_857_600_000i64; 2]).with_timezone("UTC");
    write_parquet(
        &p,
        vec![
            ("tube", strings(&["UT0001", "UT0001"])),
            ("person", strings(&["a", "b"])),
            ("mode", strings(&["pool"; 2])),
            ("collected_at", Arc::new(ts)),
        ],
    );
    let (kept, rejects, _) = read_parquet(&p).expect("a UTC timestamp column reads");
    assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
    assert_eq!(kept.collected_at, [1_648_857_600_000; 2]);
}

/// Files with classic Mac line ends (a CR alone, as "CSV (Macintosh)" exports write
/// them): counting lines by LF alone, every reject would say "line 1". Found by the
/// fuzz target (`fuzz/fuzz_targets/row_parser.rs`).
#[test]
fn cr_only_line_ends_keep_line_numbers() {
    let text = "tube,person,mode,collected_at\rAB01,p1,pool,2022-04-02 08:00:00\rAB,p2,pool,2022-04-02 08:00:00\rAB01,p3,mixed,2022-04-02 08:00:00\r";
    let (kept, rejects, n) = read_collections(text.as_bytes()).expect("reads");
    // Line 4's unreadable mode is a warning (the row is kept, its mode not stated).
    assert_eq!((kept.len(), n), (2, 3));
    let lines: Vec<(u64, Severity)> = rejects.rows.iter().map(|r| (r.line, r.severity)).collect();
    assert_eq!(lines, [(3, Severity::Error), (4, Severity::Warning)]);
}

/// A damaged Parquet file (found by the fuzz target: a mutation of
/// `testdata/example_collections.parquet` whose column chunk metadata holds a negative
/// offset) on which the parquet crate panics while reading pages
/// (`ColumnChunkMetaData::byte_range`: "column start and length should not be
/// negative"): refused with exit 1 and the file named, not a crash (exit 101).
#[test]
fn a_damaged_parquet_input_is_refused_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let out = run(pooltrack(&store)
        .args(["ingest", "collections", "--round", "R1"])
        .arg(crate::common::testdata(
            "fuzz_parquet_negative_offset.parquet",
        )));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("fuzz_parquet_negative_offset.parquet"),
        "{}",
        stderr_text(&out)
    );
}

/// A Parquet file whose footer is damaged, with every page intact: the metadata read
/// back, changed by `edit`, and written again in place of the old.
fn with_damaged_footer(
    file: &Path,
    edit: impl FnOnce(
        parquet::file::metadata::ParquetMetaData,
    ) -> parquet::file::metadata::ParquetMetaData,
) -> Vec<u8> {
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&fs::File::open(file).expect("open"))
        .expect("footer");
    let bytes = fs::read(file).expect("read");
    let tail = bytes.len() - 8;
    let len = u32::from_le_bytes(bytes[tail..tail + 4].try_into().expect("4 bytes"));
    let mut out = bytes[..tail - len as usize].to_vec();
    parquet::file::metadata::ParquetMetaDataWriter::new(&mut out, &edit(meta))
        .finish()
        .expect("footer");
    out
}

/// Damaged Parquet through the binary: exit 1 and one line on stderr, the refusal,
/// naming the file. No panic message: the footer damage that makes the parquet crate
/// panic (a negative offset or row count) is refused before anything is decoded, and a
/// panic on damaged pages (a string page that is not UTF-8, which the crate unwraps) is
/// caught by the library's guard and kept quiet by the command's own panic hook; the
/// library never touches the hook.
#[test]
fn damaged_parquet_is_refused_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Two row groups of one row each, both claiming -2 rows: the crate added them up as
    // `usize` outside the old guard, which overflowed (a panic) in a debug build.
    let two_groups = dir.path().join("two_groups.parquet");
    let batch = RecordBatch::try_from_iter([
        ("tube", strings(&["PQ0001", "PQ0002"])),
        ("person", strings(&["a", "b"])),
        ("mode", strings(&["pool"; 2])),
        ("collected_at", strings(&["2022-04-02 08:00:00"; 2])),
    ])
    .expect("batch");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(1))
        .build();
    let f = fs::File::create(&two_groups).expect("create");
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    let negative_rows = dir.path().join("negative_rows.parquet");
    let damaged = with_damaged_footer(&two_groups, |m| {
        let groups = m
            .row_groups()
            .iter()
            .map(|g| g.clone().into_builder().set_num_rows(-2).build())
            .collect::<parquet::errors::Result<_>>()
            .expect("groups");
        m.into_builder().set_row_groups(groups).build()
    });
    fs::write(&negative_rows, damaged).expect("write");
    let cut = dir.path().join("cut.parquet");
    let whole = fs::read(&two_groups).expect("read");
    fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    for (file, reason) in [
        (
            negative_rows,
            "damaged Parquet data: row group 0 holds -2 rows",
        ),
        (cut, "not a readable Parquet file: "),
        (
            crate::common::testdata("fuzz_parquet_negative_offset.parquet"),
            "damaged Parquet data: column ",
        ),
        (
            crate::common::testdata("damaged_pages_collections.parquet"),
            "damaged Parquet data: ",
        ),
    ] {
        let store = dir.path().join("store");
        let out = run(pooltrack(&store)
            .args(["ingest", "collections", "--round", "R1"])
            .arg(&file));
        let stderr = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        let refusal = format!("pooltrack: error: {}: {reason}", file.display());
        assert!(
            lines.len() == 1 && lines[0].starts_with(&refusal),
            "{}: {stderr}",
            file.display()
        );
    }
}
