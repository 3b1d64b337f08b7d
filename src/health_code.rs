//! Health codes: the color each person's code shows after a round, with the tube and
//! result that decided it, so an appeal of a yellow or red code can be answered.
//!
//! - **red**: `positive`;
//! - **yellow**: `recall`, `retest_pending`, `resample`, and `untested` (registered but
//!   no tube in the round: they missed a required test);
//! - **green**: `negative`, and `pending` (a tube is collected and its result is not in
//!   yet: a code does not turn yellow for the lab's delay, DOMAIN "Green: otherwise").

use rayon::prelude::*;
use serde::Serialize;

use crate::listing::ListRow;
use crate::model::Status;
use crate::time;
use crate::tracker::{NONE, Round};
use crate::worklist::RowText;

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

/// One person's code and the evidence behind it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HealthCodeRow {
    /// Person id.
    pub person: String,
    /// The code's color.
    pub color: Color,
    /// Their status in the round, or `untested`.
    pub status: &'static str,
    /// The tube that decided it (empty for untested persons).
    pub tube: String,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// When they were swabbed into it.
    pub collected_at: String,
    /// Where the collection row came from: `batch N, FILE line L`.
    pub collection_source: String,
    /// The tube's effective result (empty when none yet).
    pub result: String,
    /// Ct ORF1ab of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// When it was reported.
    pub reported_at: String,
    /// The lab and plate that tested it.
    pub lab: String,
    /// The plate.
    pub plate: String,
    /// Where the result row came from: `batch N, FILE line L`.
    pub result_source: String,
}

impl HealthCodeRow {
    /// A row with no tube or result yet.
    fn blank(person: &str, color: Color, status: &'static str) -> HealthCodeRow {
        HealthCodeRow {
            person: person.to_owned(),
            color,
            status,
            tube: String::new(),
            mode: "",
            collected_at: String::new(),
            collection_source: String::new(),
            result: String::new(),
            ct_orf1ab: None,
            ct_n: None,
            reported_at: String::new(),
            lab: String::new(),
            plate: String::new(),
            result_source: String::new(),
        }
    }
}

impl ListRow for HealthCodeRow {
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
    ];
}

fn text(a: &arrow_array::StringArray, i: usize) -> &str {
    use arrow_array::Array;
    if i < a.len() && a.is_valid(i) {
        a.value(i)
    } else {
        ""
    }
}

/// Every person of the round with their code, plus the registered persons `untested`
/// in it (yellow), sorted by person id.
pub fn export(round: &Round, untested: &[String]) -> Vec<HealthCodeRow> {
    let zone = round.zone;
    let c = &round.collections;
    let r = &round.results;
    let mut rows: Vec<HealthCodeRow> = round
        .persons
        .par_iter()
        .map(|p| {
            let row = p.row as usize;
            let (person, tube, _) = round.collection(p.row);
            let res = round.result_of_row(p.row);
            let mode = round.tubes.mode[round.tube_of_row[row] as usize].as_str();
            let collection_source = format!(
                "batch {}, {} line {}",
                c.batch[row],
                text(&c.source, row),
                c.line[row]
            );
            let mut out = HealthCodeRow::blank(person, Color::of(p.status), p.status.as_str());
            out.tube = tube.to_owned();
            out.mode = mode;
            out.collected_at = time::format(round.collected_at[row], zone);
            out.collection_source = collection_source;
            if res != NONE {
                let i = res as usize;
                let (orf, n) = r.cts(i);
                out.result = r.outcome[i].as_str().to_owned();
                out.ct_orf1ab = orf;
                out.ct_n = n;
                out.reported_at = time::format(r.reported_at[i], zone);
                out.lab = text(&r.lab, i).to_owned();
                out.plate = text(&r.plate, i).to_owned();
                out.result_source = format!(
                    "batch {}, {} line {}",
                    r.batch[i],
                    text(&r.source, i),
                    r.line[i]
                );
            }
            out
        })
        .collect();
    rows.par_extend(
        untested
            .par_iter()
            .map(|person| HealthCodeRow::blank(person, Color::Yellow, "untested")),
    );
    rows.par_sort_by(|a, b| a.person.cmp(&b.person));
    rows
}

/// Counts of codes by color, for reports: (red, yellow, green).
pub fn tally(rows: &[HealthCodeRow]) -> (u64, u64, u64) {
    rows.iter()
        .fold((0, 0, 0), |(r, y, g), row| match row.color {
            Color::Red => (r + 1, y, g),
            Color::Yellow => (r, y + 1, g),
            Color::Green => (r, y, g + 1),
        })
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
}
