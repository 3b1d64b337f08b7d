//! Result rows: what the lab found in each tube.
//!
//! Columns (any order, unknown ignored): `tube`, `result` (`negative`, `positive`,
//! `inconclusive`, `invalid` in any case, or 阴性 / 阳性), `ct_orf1ab`, `ct_n` (empty =
//! no amplification), `reported_at`, and optional `lab`, `plate`, `well`, `received_at`,
//! `ct_ic` (internal control) and `sample_type` (`sample`, `negative_control`,
//! `positive_control`). A file needs a `result` column or both Ct columns; a row with
//! an empty result is read from its Ct values at the store's cut-off.
//!
//! A control row's `tube` is the control's label and it must name its `plate`: the
//! batch decides from the controls whether the plate passed. With a `ct_ic` column, a
//! sample with no target amplified and no internal-control signal is `invalid` (its
//! extraction or amplification failed, so "negative" would be unfounded). The internal
//! control's "no signal" must be written (`-`, `Undetermined`, `No Ct`, `N/A`, or a Ct
//! not below the cut-off): a blank `ct_ic` is "not stated", as every blank optional
//! field is, so an export that fills the column only sometimes does not turn its
//! negatives invalid.

use std::path::Path;

use super::reject::{Rejects, Severity, Where};
use super::row::{Part, first_problem, line_no, read_parallel, required, text, width_problem};
use super::table::{Record, Table};
use crate::rows::ResultRows;

use crate::model::{Outcome, SampleType, check_label};
use crate::time::{self, Offset};
use crate::{Error, Result};

/// Reads a Ct field: empty or a lab's word for "no amplification" is `None`.
///
/// ```
/// use pooltrack::ingest::results::parse_ct;
/// assert_eq!(parse_ct("31.5"), Ok(Some(31.5)));
/// assert_eq!(parse_ct("Undetermined"), Ok(None));
/// assert!(parse_ct("-3").is_err());
/// ```
pub fn parse_ct(s: &str) -> Result<Option<f32>, &'static str> {
    const NONE: [&str; 7] = [
        "",
        "-",
        "undetermined",
        "no ct",
        "noct",
        "n/a",
        "no amplification",
    ];
    if NONE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return Ok(None);
    }
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && (0.0..=100.0).contains(&v) => Ok(Some(v)),
        _ => Err("Ct must be a number from 0 to 100, or empty for no amplification"),
    }
}

impl Part for ResultRows {
    fn append(&mut self, later: &Self) {
        self.tube.append(&later.tube);
        self.outcome.extend_from_slice(&later.outcome);
        self.from_ct.extend_from_slice(&later.from_ct);
        self.ct_orf1ab.append(&later.ct_orf1ab);
        self.ct_n.append(&later.ct_n);
        self.reported_at.extend_from_slice(&later.reported_at);
        self.lab.append(&later.lab);
        self.plate.append(&later.plate);
        self.well.append(&later.well);
        self.sample_type.extend_from_slice(&later.sample_type);
        self.ct_ic.append(&later.ct_ic);
        self.received_at.append(&later.received_at);
        self.source.append(&later.source);
    }

    fn clear(&mut self) {
        self.tube.clear();
        self.outcome.clear();
        self.from_ct.clear();
        self.ct_orf1ab.clear();
        self.ct_n.clear();
        self.reported_at.clear();
        self.lab.clear();
        self.plate.clear();
        self.well.clear();
        self.sample_type.clear();
        self.ct_ic.clear();
        self.received_at.clear();
        self.source.clear();
    }
}

struct Columns {
    tube: usize,
    at: usize,
    result: Option<usize>,
    orf: Option<usize>,
    n: Option<usize>,
    lab: Option<usize>,
    plate: Option<usize>,
    well: Option<usize>,
    sample_type: Option<usize>,
    ic: Option<usize>,
    received: Option<usize>,
    width: usize,
}

/// The cut-offs a results batch is read with.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// A target Ct below this is a hit.
    pub ct: f32,
    /// An internal-control Ct below this is a signal.
    pub ic: f32,
}

/// Reads one file on its own (file number 0, named `label` in rejects): its rows, its
/// rejects and the number of data rows read. What [`read`] does for a batch's files,
/// for callers that check a single file.
pub fn read_alone(
    table: &mut Table,
    label: &str,
    zone: Offset,
    cutoffs: Cutoffs,
) -> Result<(ResultRows, Rejects, u64)> {
    let mut rows = ResultRows::default();
    let mut rejects = Rejects::default();
    let n = read(table, 0, label, zone, cutoffs, &mut rows, &mut rejects)?;
    Ok((rows, rejects, n))
}

/// Reads every row of `table` into `out`, recording bad rows in `rejects`; chunks of
/// the file are parsed on all cores. Returns the number of data rows read.
pub fn read(
    table: &mut Table,
    file_no: u16,
    file_label: &str,
    zone: Offset,
    cutoffs: Cutoffs,
    out: &mut ResultRows,
    rejects: &mut Rejects,
) -> Result<u64> {
    let cols = Columns {
        tube: required(table, "tube")?,
        at: required(table, "reported_at")?,
        result: table.column("result"),
        orf: table.column("ct_orf1ab"),
        n: table.column("ct_n"),
        lab: table.column("lab"),
        plate: table.column("plate"),
        well: table.column("well"),
        sample_type: table.column("sample_type"),
        ic: table.column("ct_ic"),
        received: table.column("received_at"),
        width: table.header().len(),
    };
    let has_ct = cols.orf.is_some() && cols.n.is_some();
    if cols.result.is_none() && !has_ct {
        return Err(Error::input(
            table.path(),
            format!(
                "the header needs a \"result\" column or both \"ct_orf1ab\" and \"ct_n\" (it has: {})",
                table.header().join(", ")
            ),
        ));
    }
    let path = table.path().to_path_buf();
    let row = RowReader {
        cols: &cols,
        path: &path,
        file_no,
        file_label,
        zone,
        cutoffs,
        has_ct,
    };
    read_parallel(table, out, rejects, |line, rec, raw_row, out, rejects| {
        row.parse(line, rec, raw_row, out, rejects)
    })
}

struct RowReader<'a> {
    cols: &'a Columns,
    path: &'a Path,
    file_no: u16,
    file_label: &'a str,
    zone: Offset,
    cutoffs: Cutoffs,
    has_ct: bool,
}

impl RowReader<'_> {
    fn parse(
        &self,
        line: u64,
        rec: &Record,
        raw_row: &[u8],
        out: &mut ResultRows,
        rejects: &mut Rejects,
    ) -> Result<()> {
        let (cols, path) = (self.cols, self.path);
        let tube = text(path, rec, Some(cols.tube), line)?;
        let mut bad = |column, reason: String, value: &[u8]| {
            let at = Where {
                file: self.file_label,
                line,
                tube,
                person: "",
            };
            rejects.push(&at, Severity::Error, column, reason, value);
        };
        // A row of the wrong width is refused before any field is read from it.
        if let Some((column, why, value)) = width_problem(rec, raw_row, cols.width) {
            bad(column, why, value);
            return Ok(());
        }
        let type_text = text(path, rec, cols.sample_type, line)?;
        let Some(sample_type) = SampleType::parse(type_text) else {
            bad(
                "sample_type",
                "sample_type must be sample, negative_control or positive_control".to_owned(),
                type_text.as_bytes(),
            );
            return Ok(());
        };
        if sample_type.is_control() {
            // A control's label is not a tube barcode: only its shape as a label matters.
            if tube.is_empty() || check_label(tube).is_err() {
                bad(
                    "tube",
                    "a control row needs its control's label in the tube column (at most 64 characters)"
                        .to_owned(),
                    tube.as_bytes(),
                );
                return Ok(());
            }
        } else if let Some((column, why, value)) =
            first_problem(rec, raw_row, cols.width, tube, cols.tube)
        {
            bad(column, why, value);
            return Ok(());
        }
        let mut cts = [None, None, None];
        let mut ic_stated = false;
        for (slot, (col, name)) in cts.iter_mut().zip([
            (cols.orf, "ct_orf1ab"),
            (cols.n, "ct_n"),
            (cols.ic, "ct_ic"),
        ]) {
            let t = text(path, rec, col, line)?;
            if name == "ct_ic" {
                ic_stated = !t.is_empty();
            }
            match parse_ct(t) {
                Ok(v) => *slot = v,
                Err(why) => {
                    bad(name, format!("{name}: {why}"), t.as_bytes());
                    return Ok(());
                }
            }
        }
        let result_text = text(path, rec, cols.result, line)?;
        let (mut outcome, from_ct) = if !result_text.is_empty() {
            if let Some(o) = Outcome::parse(result_text) {
                (o, false)
            } else {
                bad(
                    "result",
                    "result must be negative, positive, inconclusive, invalid, 阴性 or 阳性"
                        .to_owned(),
                    result_text.as_bytes(),
                );
                return Ok(());
            }
        } else if self.has_ct {
            (Outcome::from_ct(cts[0], cts[1], self.cutoffs.ct), true)
        } else {
            bad(
                "result",
                "the row has no result and the file has no Ct columns to read one from".to_owned(),
                b"",
            );
            return Ok(());
        };
        let at_text = text(path, rec, Some(cols.at), line)?;
        let reported_at = match time::parse(at_text.as_bytes(), self.zone) {
            Ok(t) => t,
            Err(e) => {
                bad(
                    "reported_at",
                    format!("reported_at {e}"),
                    at_text.as_bytes(),
                );
                return Ok(());
            }
        };
        let received_text = text(path, rec, cols.received, line)?;
        let received_at = if received_text.is_empty() {
            None
        } else {
            match time::parse(received_text.as_bytes(), self.zone) {
                Ok(t) => Some(t),
                Err(e) => {
                    bad(
                        "received_at",
                        format!("received_at {e}"),
                        received_text.as_bytes(),
                    );
                    return Ok(());
                }
            }
        };
        let mut ic_note = None;
        let no_target = !matches!(outcome, Outcome::Positive | Outcome::Inconclusive);
        let no_ic = cts[2].is_none_or(|c| c >= self.cutoffs.ic);
        if ic_stated && !sample_type.is_control() && no_target && no_ic {
            if outcome != Outcome::Invalid && !from_ct {
                ic_note = Some(format!(
                    "no target amplified and the internal control gave no signal (ct_ic says no Ct, or not below {}): read as invalid, not {}",
                    self.cutoffs.ic,
                    outcome.as_str()
                ));
            }
            outcome = Outcome::Invalid;
        }
        let mut labels = [""; 3];
        for (slot, (col, name)) in labels.iter_mut().zip([
            (cols.lab, "lab"),
            (cols.plate, "plate"),
            (cols.well, "well"),
        ]) {
            let t = text(path, rec, col, line)?;
            if let Err(why) = check_label(t) {
                bad(name, format!("{name} {why}"), t.as_bytes());
                return Ok(());
            }
            *slot = t;
        }
        if sample_type.is_control() && labels[1].is_empty() {
            bad(
                "plate",
                format!(
                    "a {} row must name its plate: its plate's results stand or fall with it",
                    sample_type.as_str()
                ),
                b"",
            );
            return Ok(());
        }
        if let Some(why) = ic_note {
            let at = Where {
                file: self.file_label,
                line,
                tube,
                person: "",
            };
            rejects.push(&at, Severity::Warning, "ct_ic", why, b"");
        }
        if out.tube.try_push(tube).is_err() {
            return Err(Error::input(
                path,
                "the batch is too large for one ingest (over 2 GiB of barcodes); split it",
            ));
        }
        out.outcome.push(outcome);
        out.from_ct.push(from_ct);
        out.ct_orf1ab.push(cts[0]);
        out.ct_n.push(cts[1]);
        out.reported_at.push(reported_at);
        out.sample_type.push(sample_type);
        out.ct_ic.push(cts[2]);
        out.received_at.push(received_at);
        for (col, v) in [&mut out.lab, &mut out.plate, &mut out.well]
            .into_iter()
            .zip(labels)
        {
            col.push_opt((!v.is_empty()).then_some(v));
        }
        out.source.push(self.file_no, line_no(path, line)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<(ResultRows, Rejects)> {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("r.csv");
        std::fs::write(&p, text).expect("write");
        let mut t = Table::open(&p)?;
        let mut rows = ResultRows::default();
        let mut rejects = Rejects::default();
        read(
            &mut t,
            0,
            "r.csv",
            Offset::CHINA,
            Cutoffs { ct: 40.0, ic: 40.0 },
            &mut rows,
            &mut rejects,
        )?;
        Ok((rows, rejects))
    }

    #[test]
    fn result_word_wins_and_ct_fills_in() {
        let (rows, rejects) = read_text(
            "tube,result,ct_orf1ab,ct_n,reported_at,lab\n\
             PL0001,阳性,25,26,2022-04-02 12:00:00,L1\n\
             PL0002,,25,26,2022-04-02 12:00:00,L1\n\
             PL0003,,38.5,,2022-04-02 12:00:00,\n\
             PL0004,,Undetermined,-,2022-04-02 12:00:00,\n\
             PL0005,NEGATIVE,,,2022-04-02 12:00:00,\n",
        )
        .expect("reads");
        assert!(rejects.rows.is_empty(), "{:?}", rejects.rows);
        use Outcome::*;
        assert_eq!(
            rows.outcome,
            [Positive, Positive, Inconclusive, Negative, Negative]
        );
        assert_eq!(rows.from_ct, [false, true, true, true, false]);
        assert_eq!(rows.lab.get_opt(2), None);
    }

    #[test]
    fn bad_rows_are_named() {
        let (rows, rejects) = read_text(
            "tube,result,ct_orf1ab,ct_n,reported_at\n\
             PL0001,maybe,,,2022-04-02 12:00:00\n\
             PL0002,,abc,,2022-04-02 12:00:00\n\
             PL0003,negative,,,\n",
        )
        .expect("reads");
        assert!(rows.is_empty());
        let cols: Vec<_> = rejects.rows.iter().map(|r| r.column).collect();
        assert_eq!(cols, ["result", "ct_orf1ab", "reported_at"]);
    }

    #[test]
    fn needs_result_or_ct_columns() {
        let err = read_text("tube,reported_at,ct_n\n").expect_err("refused");
        assert!(err.to_string().contains("\"result\""), "{err}");
        let (_, rejects) =
            read_text("tube,result,reported_at\nPL0001,,2022-04-02 12:00:00\n").expect("reads");
        assert_eq!(rejects.rows[0].column, "result");
    }
}
