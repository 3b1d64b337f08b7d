//! Health codes: the color each person's code shows after a round, with the tube and
//! result that decided it, so an appeal of a yellow or red code can be answered.
//!
//! - **red**: `positive`;
//! - **yellow**: `recall`, `retest_pending`, `resample`, and `untested` (registered but
//!   no tube in the round: they missed a required test);
//! - **green**: `negative`, and `pending` (a tube is collected and its result is not in
//!   yet: a code does not turn yellow for the lab's delay, DOMAIN "Green: otherwise").

pub mod person;
pub mod rounds;
pub mod rules;

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::Float32Builder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde::Serialize;

use crate::Result;
use crate::model::Status;
use crate::output::stream::{self, JsonLayout, RowMaker, csv_cell, csv_float, csv_word};
use crate::output::text_column::TextColumn;
use crate::output::{Format, ListRow};
use crate::roster::{Entry, Roster, Wanted, shown_result};
use crate::store::Store;
use crate::text::text_at;
use crate::time;
use crate::tracker::{NONE, PersonStatus};

/// A health-code color.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Color {
    /// Confirmed positive.
    Red,
    /// Must act: re-swab, retest, or get tested.
    Yellow,
    /// Nothing to do.
    Green,
}

impl Color {
    /// The color for a status.
    ///
    /// ```
    /// use pooltrack::health_code::Color;
    /// use pooltrack::model::Status;
    /// assert_eq!(Color::of(Status::Positive), Color::Red);
    /// assert_eq!(Color::of(Status::Recall), Color::Yellow);
    /// assert_eq!(Color::of(Status::Pending), Color::Green);
    /// ```
    pub fn of(status: Status) -> Color {
        match status {
            Status::Positive => Color::Red,
            Status::Recall | Status::RetestPending | Status::Resample => Color::Yellow,
            Status::Pending | Status::Negative => Color::Green,
        }
    }

    /// The word used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Yellow => "yellow",
            Color::Green => "green",
        }
    }
}

/// Health-code colors after a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Positive.
    pub red: u64,
    /// Recalled, retest pending, resample, and untested (registered, no tube).
    pub yellow: u64,
    /// Negative or pending.
    pub green: u64,
    /// Of the yellow codes, registered persons with no tube (0 without a register).
    pub untested_yellow: u64,
}

impl Tally {
    /// Tallies the decided persons' colors, plus `untested` registered persons (yellow).
    pub fn of(persons: &[PersonStatus], untested: u64) -> Tally {
        let mut by_status = [0u64; Status::ALL.len()];
        for p in persons {
            by_status[Status::ALL.iter().position(|&s| s == p.status).unwrap_or(0)] += 1;
        }
        let counted: Vec<(Status, u64)> = Status::ALL.iter().copied().zip(by_status).collect();
        Tally::of_counts(&counted, untested)
    }

    /// The same tally from persons counted by status (a round's `Counts`), without
    /// listing them.
    pub fn of_counts(by_status: &[(Status, u64)], untested: u64) -> Tally {
        let mut codes = Tally {
            yellow: untested,
            untested_yellow: untested,
            ..Tally::default()
        };
        for &(status, n) in by_status {
            *match Color::of(status) {
                Color::Red => &mut codes.red,
                Color::Yellow => &mut codes.yellow,
                Color::Green => &mut codes.green,
            } += n;
        }
        codes
    }
}

/// One person's code and the evidence behind it. The text cells borrow from the loaded
/// columns and the formatted ones are refilled in place, so writing 25 million rows
/// allocates per buffer, not per row.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HealthCodeRow<'a> {
    /// Person id.
    pub person: String,
    /// The code's color.
    pub color: &'static str,
    /// Their status in the round, or `untested`.
    pub status: &'static str,
    /// The tube that decided it (empty for untested persons).
    pub tube: &'a str,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// When they were swabbed into it.
    pub collected_at: String,
    /// Where the collection row came from: `batch N, FILE line L`.
    pub collection_source: String,
    /// The tube's effective result (empty when none yet).
    pub result: &'static str,
    /// Ct `ORF1ab` of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// When it was reported.
    pub reported_at: String,
    /// The lab and plate that tested it.
    pub lab: &'a str,
    /// The plate.
    pub plate: &'a str,
    /// Where the result row came from: `batch N, FILE line L`.
    pub result_source: String,
    /// Why that result does not count, when it does not: "tested 50 h after the swab,
    /// past the 48 h specimen limit" (the tube needs a resample).
    pub not_counted: String,
}

impl ListRow for HealthCodeRow<'_> {
    const HEADER: &'static [&'static str] = &[
        "person",
        "color",
        "status",
        "tube",
        "mode",
        "collected_at",
        "collection_source",
        "result",
        "ct_orf1ab",
        "ct_n",
        "reported_at",
        "lab",
        "plate",
        "result_source",
        "not_counted",
    ];

    fn record_batch(rows: &[Self]) -> Result<RecordBatch> {
        let mut columns = CodeColumns::<13>::with_capacity(rows.len());
        for r in rows {
            columns.push(r);
        }
        columns.finish::<Self>(schema())
    }
}

/// A code row's cells as both code exports write them: its text cells in the header's
/// order with the two Cts left out, and the Cts, which come after text cell
/// `CTS_AFTER`. The first [`REQUIRED`] text cells are never null; other blank text is
/// null in Parquet.
pub(crate) trait CodeCells<const N: usize> {
    /// How many text cells precede the Cts.
    const CTS_AFTER: usize;
    /// The text cells.
    fn text(&self) -> [&str; N];
    /// Ct `ORF1ab` and Ct N.
    fn cts(&self) -> [Option<f32>; 2];
}

/// Text cells of a code row that are never null (person, color and status or reason).
const REQUIRED: usize = 3;

/// Appends `maker`'s rows `rows` as CSV lines, each warmed and filled into one reused
/// row, cell by cell as the `csv` crate writes them: the lines the makers' own
/// `csv_rows`, which write straight from the round, are tested against.
#[cfg(test)]
pub(crate) fn code_csv_lines<'a, M, const N: usize>(
    maker: &'a M,
    rows: std::ops::Range<usize>,
    out: &mut Vec<u8>,
) where
    M: RowMaker,
    M::Row<'a>: CodeCells<N>,
{
    let mut row = M::Row::default();
    for at in rows.clone() {
        maker.warm(at, &rows);
        maker.fill(at, &mut row);
        for (i, v) in row.text().into_iter().enumerate() {
            if i == <M::Row<'a> as CodeCells<N>>::CTS_AFTER {
                for ct in row.cts() {
                    out.push(b',');
                    if let Some(v) = ct {
                        csv_float(out, v);
                    }
                }
            }
            if i > 0 {
                out.push(b',');
            }
            stream::csv_field(out, v.as_bytes());
        }
        out.push(b'\n');
    }
}

/// Rows `rows` as one Arrow batch of `schema`, each warmed, filled into one reused row
/// and appended to column builders: the batches the makers' own `batch`, which write
/// straight from the round, are tested against.
#[cfg(test)]
pub(crate) fn code_batch<'a, M, const N: usize>(
    maker: &'a M,
    schema: Arc<Schema>,
    rows: std::ops::Range<usize>,
) -> Result<RecordBatch>
where
    M: RowMaker,
    M::Row<'a>: CodeCells<N>,
{
    let mut columns = CodeColumns::<N>::with_capacity(rows.len());
    let mut row = M::Row::default();
    for at in rows.clone() {
        maker.warm(at, &rows);
        maker.fill(at, &mut row);
        columns.push(&row);
    }
    columns.finish::<M::Row<'a>>(schema)
}

/// The Arrow columns of code rows as both code exports lay them out: text cells, blank
/// as null past the [`REQUIRED`] ones, and the two Cts as floats after text cell
/// [`CodeCells::CTS_AFTER`].
pub(crate) struct CodeColumns<const N: usize> {
    pub(crate) text: [TextColumn; N],
    pub(crate) cts: Cts,
}

/// The two Ct columns of code rows.
pub(crate) struct Cts {
    orf1ab: Float32Builder,
    n: Float32Builder,
}

impl Cts {
    /// Appends a row's Ct `ORF1ab` and Ct N.
    pub(crate) fn push(&mut self, [orf1ab, n]: [Option<f32>; 2]) {
        self.orf1ab.append_option(orf1ab);
        self.n.append_option(n);
    }
}

impl<const N: usize> CodeColumns<N> {
    /// Builders with room for `n` rows.
    pub(crate) fn with_capacity(n: usize) -> Self {
        CodeColumns {
            text: std::array::from_fn(|i| TextColumn::new(n, 16, i >= REQUIRED)),
            cts: Cts {
                orf1ab: Float32Builder::with_capacity(n),
                n: Float32Builder::with_capacity(n),
            },
        }
    }

    /// Appends one row.
    pub(crate) fn push<R: CodeCells<N>>(&mut self, row: &R) {
        for (b, v) in self.text.iter_mut().zip(row.text()) {
            b.push(v);
        }
        self.cts.push(row.cts());
    }

    /// The rows pushed, as one batch of `schema`.
    pub(crate) fn finish<R: CodeCells<N>>(self, schema: Arc<Schema>) -> Result<RecordBatch> {
        let CodeColumns { text, mut cts } = self;
        let mut columns = Vec::with_capacity(N + 2);
        for t in text {
            columns.push(t.finish()?);
        }
        let cts: [ArrayRef; 2] = [Arc::new(cts.orf1ab.finish()), Arc::new(cts.n.finish())];
        let at = R::CTS_AFTER.min(columns.len());
        columns.splice(at..at, cts);
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

impl CodeCells<13> for HealthCodeRow<'_> {
    const CTS_AFTER: usize = 8;

    fn text(&self) -> [&str; 13] {
        [
            &self.person,
            self.color,
            self.status,
            self.tube,
            self.mode,
            &self.collected_at,
            &self.collection_source,
            self.result,
            &self.reported_at,
            self.lab,
            self.plate,
            &self.result_source,
            &self.not_counted,
        ]
    }

    fn cts(&self) -> [Option<f32>; 2] {
        [self.ct_orf1ab, self.ct_n]
    }
}

/// A round's health codes in person-id order, made row by row as they are written
/// (see [`crate::output::stream`]): a city's 25 million codes never sit in memory as
/// text at once.
pub struct HealthCodes(Roster);

impl HealthCodes {
    /// The text columns the codes print: sites, capacities, wells and the columns the
    /// indexes already hold are not decoded for 25 million rows.
    const WANTED: Wanted = Wanted {
        site: false,
        lab: true,
        plate: true,
        sources: true,
    };

    /// Loads `round` and orders its persons and the registered persons `untested` in it
    /// (see [`untested()`]) by person id.
    pub fn load(
        store: &Store,
        round: &str,
        untested: impl FnOnce(&str) -> Result<Vec<String>>,
    ) -> Result<HealthCodes> {
        Ok(HealthCodes(Roster::load(
            store,
            round,
            Self::WANTED,
            untested,
        )?))
    }

    /// Codes by color.
    pub fn tally(&self) -> Tally {
        Tally::of(self.0.round.persons(), self.0.untested.len() as u64)
    }
}

impl RowMaker for HealthCodes {
    type Row<'a> = HealthCodeRow<'a>;

    /// Other programs read the codes line by line.
    const JSON: JsonLayout = JsonLayout::Lines;

    const UNIQUE: &'static [&'static str] = &[
        "person",
        "tube",
        "collected_at",
        "collection_source",
        "reported_at",
        "result_source",
    ];

    fn len(&self) -> usize {
        self.0.len()
    }

    /// The lines written straight from the round, as `code_csv_lines` (the tests'
    /// reference) writes the rows [`RowMaker::fill`] makes: words and times need no
    /// quoting and citations always do, so neither is made as text and then searched
    /// for what to quote, which was a third of a 25-million-row export.
    fn csv_rows(&self, rows: std::ops::Range<usize>, out: &mut Vec<u8>) -> std::io::Result<()> {
        let Roster { round, text, .. } = &self.0;
        let mut person = String::new();
        for at in rows.clone() {
            let (res, why) = match self.0.csv_person(at, &rows, &mut person, out) {
                Entry::Untested(_) => {
                    csv_word(out, Color::Yellow.as_str());
                    // status, tube, mode, collected_at, collection_source
                    out.extend_from_slice(b",untested,,,,");
                    (NONE, None)
                }
                Entry::Decided(p) => {
                    let row = p.row as usize;
                    let t = round.tube_of_row[row] as usize;
                    csv_word(out, Color::of(p.status).as_str());
                    csv_word(out, p.status.as_str());
                    csv_cell(out, text_at(&text.tube, t));
                    csv_word(out, round.tubes.mode[t].as_str());
                    out.push(b',');
                    time::push_rfc3339(out, round.collected_at[row], round.zone);
                    out.push(b',');
                    if let Some(s) = &text.collected {
                        s.write_csv(row, out);
                    }
                    shown_result(round, t)
                }
            };
            if res == NONE {
                // result, ct_orf1ab, ct_n, reported_at, lab, plate, result_source
                out.extend_from_slice(b",,,,,,,");
            } else {
                let (r, i) = (&round.results, res as usize);
                csv_word(out, r.outcome[i].as_str());
                let (a, b) = r.cts(i);
                for ct in [a, b] {
                    out.push(b',');
                    if let Some(v) = ct {
                        csv_float(out, v);
                    }
                }
                out.push(b',');
                time::push_rfc3339(out, r.reported_at[i], round.zone);
                csv_cell(out, text.lab.as_ref().map_or("", |l| text_at(l, i)));
                csv_cell(out, text.plate.as_ref().map_or("", |l| text_at(l, i)));
                out.push(b',');
                if let Some(s) = &text.reported {
                    s.write_csv(i, out);
                }
            }
            csv_cell(out, why.as_deref().unwrap_or(""));
            out.push(b'\n');
        }
        Ok(())
    }

    /// The columns written straight from the round, as [`RowMaker::csv_rows`] writes
    /// its lines: filling a row of strings and copying it into the builders wrote each
    /// of a city's 25 million rows twice.
    fn batch(&self, rows: std::ops::Range<usize>) -> Result<RecordBatch> {
        let Roster { round, text, .. } = &self.0;
        let mut columns = CodeColumns::<13>::with_capacity(rows.len());
        let CodeColumns { text: cells, cts } = &mut columns;
        let [
            person,
            color,
            status,
            tube,
            mode,
            collected_at,
            collection_source,
            result,
            reported_at,
            lab,
            plate,
            result_source,
            not_counted,
        ] = cells;
        let mut id = String::new();
        for at in rows.clone() {
            self.0.warm(at, &rows);
            let entry = self.0.entry(at, &mut id);
            person.push(&id);
            let (res, why) = match entry {
                Entry::Untested(_) => {
                    color.push(Color::Yellow.as_str());
                    status.push("untested");
                    for c in [
                        &mut *tube,
                        &mut *mode,
                        &mut *collected_at,
                        &mut *collection_source,
                    ] {
                        c.end();
                    }
                    (NONE, None)
                }
                Entry::Decided(p) => {
                    let row = p.row as usize;
                    let t = round.tube_of_row[row] as usize;
                    color.push(Color::of(p.status).as_str());
                    status.push(p.status.as_str());
                    tube.push(text_at(&text.tube, t));
                    mode.push(round.tubes.mode[t].as_str());
                    time::push_rfc3339(collected_at.cell(), round.collected_at[row], round.zone);
                    collected_at.end();
                    if let Some(s) = &text.collected {
                        s.write(row, collection_source.cell());
                    }
                    collection_source.end();
                    shown_result(round, t)
                }
            };
            if res == NONE {
                for c in [
                    &mut *result,
                    &mut *reported_at,
                    &mut *lab,
                    &mut *plate,
                    &mut *result_source,
                ] {
                    c.end();
                }
                cts.push([None, None]);
            } else {
                let (r, i) = (&round.results, res as usize);
                result.push(r.outcome[i].as_str());
                let (a, b) = r.cts(i);
                cts.push([a, b]);
                time::push_rfc3339(reported_at.cell(), r.reported_at[i], round.zone);
                reported_at.end();
                lab.push(text.lab.as_ref().map_or("", |l| text_at(l, i)));
                plate.push(text.plate.as_ref().map_or("", |l| text_at(l, i)));
                if let Some(s) = &text.reported {
                    s.write(i, result_source.cell());
                }
                result_source.end();
            }
            not_counted.push(why.as_deref().unwrap_or(""));
        }
        columns.finish::<HealthCodeRow<'_>>(schema())
    }

    fn warm(&self, at: usize, rows: &std::ops::Range<usize>) {
        self.0.warm(at, rows);
    }

    fn fill<'a>(&'a self, at: usize, out: &mut HealthCodeRow<'a>) {
        let Roster { round, text, .. } = &self.0;
        out.collected_at.clear();
        out.collection_source.clear();
        out.reported_at.clear();
        out.result_source.clear();
        out.not_counted.clear();
        let res = match self.0.entry(at, &mut out.person) {
            Entry::Untested(_) => {
                (out.color, out.status) = (Color::Yellow.as_str(), "untested");
                (out.tube, out.mode) = ("", "");
                NONE
            }
            Entry::Decided(p) => {
                let row = p.row as usize;
                out.color = Color::of(p.status).as_str();
                out.status = p.status.as_str();
                out.tube = text_at(&text.tube, round.tube_of_row[row] as usize);
                out.mode = round.tubes.mode[round.tube_of_row[row] as usize].as_str();
                time::write_rfc3339(&mut out.collected_at, round.collected_at[row], round.zone);
                if let Some(s) = &text.collected {
                    s.write_text(row, &mut out.collection_source);
                }
                let (res, why) = shown_result(round, round.tube_of_row[row] as usize);
                if let Some(why) = why {
                    out.not_counted.push_str(&why);
                }
                res
            }
        };
        if res == NONE {
            out.result = "";
            (out.ct_orf1ab, out.ct_n) = (None, None);
            (out.lab, out.plate) = ("", "");
        } else {
            let (r, i) = (&round.results, res as usize);
            out.result = r.outcome[i].as_str();
            (out.ct_orf1ab, out.ct_n) = r.cts(i);
            time::write_rfc3339(&mut out.reported_at, r.reported_at[i], round.zone);
            out.lab = text.lab.as_ref().map_or("", |l| text_at(l, i));
            out.plate = text.plate.as_ref().map_or("", |l| text_at(l, i));
            if let Some(s) = &text.reported {
                s.write_text(i, &mut out.result_source);
            }
        }
    }
}

/// The registered persons with no tube in `round` (their codes are yellow: they missed
/// a required test), or `None` when the store holds no population register.
pub fn untested(store: &Store, round: &str) -> Result<Option<Vec<String>>> {
    crate::coverage::untested_ids(store, round)
}

/// Exports the health codes of `round`, the untested registered persons' included, to
/// `out` or else standard output; says on standard error what it wrote, and when there
/// is no register to find the untested in.
pub fn export(store: &Store, round: &str, format: Format, out: Option<&Path>) -> Result<()> {
    let codes = HealthCodes::load(store, round, |round| {
        Ok(untested(store, round)?.unwrap_or_else(|| {
            eprintln!(
                "pooltrack: note: no population register, so nobody is listed as untested (pooltrack ingest population FILE)"
            );
            Vec::new()
        }))
    })?;
    let Some(out) = out else {
        return stream::write_stdout(&codes, format);
    };
    stream::write_file(&codes, format, out)?;
    let Tally {
        red, yellow, green, ..
    } = codes.tally();
    eprintln!(
        "wrote {} health code(s) to {}: {red} red, {yellow} yellow, {green} green",
        codes.len(),
        out.display()
    );
    Ok(())
}

fn schema() -> Arc<Schema> {
    let fields: Vec<Field> = HealthCodeRow::HEADER
        .iter()
        .map(|&name| match name {
            "ct_orf1ab" | "ct_n" => Field::new(name, DataType::Float32, true),
            "person" | "color" | "status" => Field::new(name, DataType::Utf8, false),
            _ => Field::new(name, DataType::Utf8, true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_the_color_the_rules_give() {
        let colors: Vec<Color> = Status::ALL.iter().map(|&s| Color::of(s)).collect();
        use Color::*;
        // positive, recall, retest_pending, resample, pending, negative
        assert_eq!(colors, [Red, Yellow, Yellow, Yellow, Green, Green]);
    }

    #[test]
    fn a_tally_counts_each_person_once_by_color_and_the_untested_as_yellow() {
        let p = |status| PersonStatus { status, row: 0 };
        let persons = [
            p(Status::Positive),
            p(Status::Recall),
            p(Status::Resample),
            p(Status::Pending),
            p(Status::Negative),
            p(Status::Negative),
        ];
        let want = Tally {
            red: 1,
            yellow: 2 + 3,
            green: 3,
            untested_yellow: 3,
        };
        assert_eq!(Tally::of(&persons, 3), want);
        let counted = [
            (Status::Positive, 1),
            (Status::Recall, 1),
            (Status::Resample, 1),
        ];
        let by_counts = Tally::of_counts(&counted, 0);
        assert_eq!(
            (by_counts.red, by_counts.yellow, by_counts.green),
            (1, 2, 0)
        );
    }

    /// Every line `HealthCodes::csv_rows` writes is the one [`code_csv_lines`] writes of
    /// the row `fill` makes: citations of a file whose name holds a quote and a comma,
    /// quoted labs and plates, an untested person, a pending tube, a result past the
    /// specimen limit.
    #[test]
    fn code_lines_are_those_of_the_filled_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::roster::store_of_one_round(
            dir.path(),
            (
                "tubes \"north\", 2.csv",
                "tube,person,mode,collected_at\n\
             PL-0001,310000000000000012,pool,2022-04-02 08:00\n\
             PL-0001,310000000000000020,pool,2022-04-02 08:01:30.250\n\
             PL-0002,p-other-1,single,2022-04-02 09:00\n\
             PL-0003,p-other-2,single,2022-04-02 09:30\n\
             PL-0004,p-other-3,single,2022-04-02 10:00\n",
            ),
            "tube,result,ct_orf1ab,ct_n,reported_at,lab,plate\n\
             PL-0001,positive,24.5,25.125,2022-04-02 14:00,\"Lab, north\",\"P\"\"1\"\n\
             PL-0002,negative,,,2022-04-02 15:00,L2,P2\n\
             PL-0003,positive,31,,2022-04-06 15:00,L2,P2\n",
        );
        let codes = HealthCodes::load(&store, "R1", |_| Ok(vec!["p-untested, 9".to_owned()]))
            .expect("load");
        let rows = 0..codes.len();
        assert_eq!(rows.len(), 6);
        let mut ours = Vec::new();
        codes.csv_rows(rows.clone(), &mut ours).expect("lines");
        let mut theirs = Vec::new();
        code_csv_lines(&codes, rows.clone(), &mut theirs);
        let text = String::from_utf8(ours).expect("utf-8");
        assert_eq!(text, String::from_utf8(theirs).expect("utf-8"));
        // The Parquet columns likewise, of every row and of a block within them.
        for part in [rows.clone(), 2..5] {
            let direct = codes.batch(part.clone()).expect("batch");
            assert_eq!(direct, code_batch(&codes, schema(), part).expect("filled"));
        }
        assert!(
            text.contains("tubes \"\"north\"\", 2.csv line 3\""),
            "{text}"
        );
        assert!(text.contains(",\"Lab, north\",\"P\"\"1\","), "{text}");
        assert!(
            text.contains("\"p-untested, 9\",yellow,untested,,,,,,,,,,,,\n"),
            "{text}"
        );
        assert!(text.contains("past the 48 h specimen limit\"\n"), "{text}");
    }
}
