//! Status reports: a round's counts, and one person's status with every tube and result
//! behind it (what an appeal of a yellow health code needs).

use arrow_array::{Array, StringArray};
use serde::Serialize;

use crate::model::Status;
use crate::time;
use crate::tracker::{Counts, NONE, Round};
use crate::worklist::PersonRow;

/// A round's status report.
#[derive(Debug, Serialize)]
pub struct RoundReport {
    /// The round.
    pub round: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// One result row of a tube, with where it came from.
#[derive(Debug, Serialize)]
pub struct ResultLine {
    /// The result as recorded.
    pub result: &'static str,
    /// Ct ORF1ab.
    pub ct_orf1ab: Option<f32>,
    /// Ct N.
    pub ct_n: Option<f32>,
    /// When it was reported.
    pub reported_at: String,
    /// Lab.
    pub lab: String,
    /// Plate.
    pub plate: String,
    /// Well.
    pub well: String,
    /// Whether this is the tube's effective result.
    pub effective: bool,
    /// The batch, file and line it came in.
    pub batch: u32,
    /// Source file.
    pub source: String,
    /// Line in the source file.
    pub line: u64,
}

/// One of a person's tubes.
#[derive(Debug, Serialize)]
pub struct TubeLine {
    /// Barcode.
    pub tube: String,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// Capacity.
    pub capacity: u8,
    /// Persons recorded in the tube.
    pub members: u32,
    /// Site.
    pub site: String,
    /// When this person was swabbed into it.
    pub collected_at: String,
    /// The tube's effective result, empty when none.
    pub result: String,
    /// A positive kept against a later non-positive result: review it.
    pub positive_kept: bool,
    /// Every result row for the tube, oldest first.
    pub results: Vec<ResultLine>,
    /// The batch, file and line of the collection row.
    pub batch: u32,
    /// Source file.
    pub source: String,
    /// Line in the source file.
    pub line: u64,
}

/// One person's status in a round and the evidence behind it.
#[derive(Debug, Serialize)]
pub struct PersonReport {
    /// The round.
    pub round: String,
    /// The person.
    pub person: String,
    /// Their status.
    pub status: Status,
    /// The tube that decided it.
    pub decided_by: PersonRow,
    /// All their tubes in the round, by collection time.
    pub tubes: Vec<TubeLine>,
}

fn text(a: &StringArray, i: usize) -> String {
    if a.is_null(i) {
        String::new()
    } else {
        a.value(i).to_owned()
    }
}

/// The round's counts.
pub fn round_report(round: &Round) -> RoundReport {
    RoundReport {
        round: round.name.clone(),
        counts: round.counts(),
    }
}

/// One person's report, or `None` if they have no tube in the round.
pub fn person_report(round: &Round, person: &str) -> Option<PersonReport> {
    let mut rows = round.rows_of(person);
    let decided = round.status_of(&rows)?;
    let c = &round.collections;
    rows.sort_by_key(|&r| (c.collected_at[r as usize], r));
    let r = &round.results;
    let tubes = rows
        .iter()
        .map(|&row| {
            let t = round.tube_of_row[row as usize] as usize;
            let effective = round.tubes.result[t];
            let (a, b) = (
                round.tubes.result_start[t] as usize,
                round.tubes.result_start[t + 1] as usize,
            );
            let results = round.tubes.result_rows[a..b]
                .iter()
                .map(|&i| {
                    let (ct_orf1ab, ct_n) = r.cts(i as usize);
                    let i = i as usize;
                    ResultLine {
                        result: r.outcome[i].as_str(),
                        ct_orf1ab,
                        ct_n,
                        reported_at: time::format(r.reported_at[i], round.zone),
                        lab: text(&r.lab, i),
                        plate: text(&r.plate, i),
                        well: text(&r.well, i),
                        effective: i == effective as usize,
                        batch: r.batch[i],
                        source: text(&r.source, i),
                        line: r.line[i],
                    }
                })
                .collect();
            let row = row as usize;
            TubeLine {
                tube: c.tube.value(row).to_owned(),
                mode: c.mode[row].as_str(),
                capacity: c.capacity[row],
                members: round.tubes.members[t],
                site: text(&c.site, row),
                collected_at: time::format(c.collected_at[row], round.zone),
                result: if effective == NONE {
                    String::new()
                } else {
                    r.outcome[effective as usize].as_str().to_owned()
                },
                positive_kept: round.tubes.positive_kept[t],
                results,
                batch: c.batch[row],
                source: text(&c.source, row),
                line: c.line[row],
            }
        })
        .collect();
    Some(PersonReport {
        round: round.name.clone(),
        person: person.to_owned(),
        status: decided.status,
        decided_by: PersonRow::new(round, decided),
        tubes,
    })
}
