//! Worklists and exports: the lists a lab or an office acts on, from a decided round.
//!
//! - **recall**: persons in `recall`, with the pool tube that recalls them, its site,
//!   collection time and Ct, lowest Ct first (the strongest signal is re-swabbed first);
//! - **resample**: persons in `resample`, with the tube to redo, lowest Ct first;
//! - **positives**: persons `positive`, with their positive tube and its times;
//! - **status export**: every person with their status and the tube that decided it;
//! - **rerun**: tubes whose plate's controls failed, for the lab to run again
//!   ([`reruns`]).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{
    Array, ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::model::{Mode, Outcome, Status};
use crate::output::ListRow;
use crate::store::read;
use crate::store::{BatchKind, Store};
use crate::text::text_at;
use crate::time::{self, Millis, Offset};
use crate::tracker::{Decided, Listed, NONE, PersonStatus, ResultFacts, Round, Statuses};
use crate::{Error, Result};

mod rerun;

pub use rerun::{RerunRow, reruns};

/// Which worklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worklist {
    /// Persons to re-swab in a single tube because their pool turned positive.
    Recall,
    /// Persons to swab again because a tube was invalid or inconclusive.
    Resample,
    /// Persons found positive.
    Positives,
}

/// One person on a list: who, their status, and the tube and result behind it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PersonRow {
    /// Person id.
    pub person: String,
    /// Status.
    pub status: Status,
    /// The tube that decided the status.
    pub tube: String,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// The tube's effective result, empty when none yet.
    pub result: String,
    /// Ct `ORF1ab` of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// Sampling site.
    pub site: String,
    /// When this person was swabbed into the tube (RFC 3339, store zone).
    pub collected_at: String,
    /// When the result was reported, empty when none yet.
    pub reported_at: String,
    /// The lab that reported it.
    pub lab: String,
    /// Why that result does not count, when it does not: "tested 50 h after the swab,
    /// past the 48 h specimen limit" (the tube needs a resample); empty otherwise.
    pub not_counted: String,
    #[serde(skip)]
    collected_ms: Millis,
    #[serde(skip)]
    reported_ms: Option<Millis>,
}

/// Where the text of collection and result rows comes from for reports that show
/// every person (a fully loaded [`Round`]); lists of one status fetch only their rows.
pub trait RowText {
    /// Person id, tube barcode and site (empty when none) of a collection row.
    fn collection(&self, row: u32) -> (&str, &str, &str);
    /// Lab of a result row (empty when none).
    fn lab(&self, result_row: u32) -> &str;
}

impl RowText for Round {
    fn collection(&self, row: u32) -> (&str, &str, &str) {
        let c = &self.collections;
        let i = row as usize;
        (
            text_at(&c.person, i),
            text_at(&c.tube, i),
            text_at(&c.site, i),
        )
    }

    fn lab(&self, result_row: u32) -> &str {
        text_at(&self.results.lab, result_row as usize)
    }
}

/// The text and times of just the rows one list needs, read from the Parquet files
/// with row selection: a recall list of 240,000 persons does not decode 25 million
/// ids. Barcodes come from the tube index, so the tube column is not read.
struct Fetched {
    rows: Vec<u32>,
    person: StringArray,
    site: StringArray,
    collected_at: Vec<Millis>,
    result_rows: Vec<u32>,
    lab: StringArray,
}

impl Fetched {
    /// Reads the person, site and time of `persons`' deciding rows and the lab of their
    /// tubes' results.
    fn load(store: &Store, round: &Decided, persons: &[Listed]) -> Result<Fetched> {
        let mut rows: Vec<u32> = persons.iter().map(|p| p.person.row).collect();
        rows.par_sort_unstable();
        rows.dedup();
        let mut result_rows: Vec<u32> = persons
            .iter()
            .map(|p| round.shown_result(p.tube as usize).0)
            .filter(|&r| r != NONE)
            .collect();
        result_rows.par_sort_unstable();
        result_rows.dedup();
        let strings = |a: &arrow_array::ArrayRef| {
            a.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .unwrap_or_else(|| StringArray::from(Vec::<&str>::new()))
        };
        let (c, r) = rayon::join(
            || {
                read::fetch(
                    store,
                    &round.name,
                    BatchKind::Collections,
                    &["person", "site", "collected_at"],
                    &rows,
                )
            },
            || {
                read::fetch(
                    store,
                    &round.name,
                    BatchKind::Results,
                    &["lab"],
                    &result_rows,
                )
            },
        );
        let (c, r) = (c?, r?);
        let collected_at = c[2]
            .as_primitive_opt::<TimestampMillisecondType>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        let fetched = Fetched {
            person: strings(&c[0]),
            site: strings(&c[1]),
            collected_at,
            rows,
            lab: strings(&r[0]),
            result_rows,
        };
        // The indexes named these rows, so the segments must hold every one: a shorter
        // column would list persons without an id, swabbed in 1970.
        let n = fetched.rows.len();
        let whole = fetched.person.len() == n
            && fetched.site.len() == n
            && fetched.collected_at.len() == n
            && fetched.lab.len() == fetched.result_rows.len();
        if !whole {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: the segments hold fewer rows than the indexes name, or not as text and times",
                    round.name
                ),
            ));
        }
        Ok(fetched)
    }

    /// Person id, site and collection time of a fetched row (`None` if it was not
    /// fetched).
    fn collection(&self, row: u32) -> Option<(&str, &str, Millis)> {
        let i = self.rows.binary_search(&row).ok()?;
        Some((
            text_at(&self.person, i),
            text_at(&self.site, i),
            *self.collected_at.get(i)?,
        ))
    }

    /// Lab of a fetched result row (`None` if it was not fetched).
    fn lab(&self, result_row: u32) -> Option<&str> {
        let i = self.result_rows.binary_search(&result_row).ok()?;
        Some(text_at(&self.lab, i))
    }
}

/// What a [`PersonRow`] shows, before formatting.
pub struct RowParts<'a> {
    /// Person id.
    pub person: &'a str,
    /// Their status.
    pub status: Status,
    /// The deciding tube.
    pub tube: &'a str,
    /// Its mode.
    pub mode: Mode,
    /// Its site (empty when none).
    pub site: &'a str,
    /// When this person was swabbed into it.
    pub collected_at: Millis,
    /// The tube's effective result, if it has one.
    pub result: Option<ResultParts<'a>>,
    /// The zone to print times in.
    pub zone: Offset,
}

/// A tube's effective result as a [`PersonRow`] shows it.
pub struct ResultParts<'a> {
    /// Outcome.
    pub outcome: Outcome,
    /// Ct `ORF1ab` and Ct N.
    pub cts: (Option<f32>, Option<f32>),
    /// Report time.
    pub reported_at: Millis,
    /// Lab (empty when none).
    pub lab: &'a str,
    /// Why it does not count, when it does not (empty: it counts).
    pub not_counted: String,
}

impl From<RowParts<'_>> for PersonRow {
    fn from(p: RowParts<'_>) -> PersonRow {
        let (result, cts, reported_ms, lab, not_counted) = match p.result {
            None => (
                String::new(),
                (None, None),
                None,
                String::new(),
                String::new(),
            ),
            Some(r) => (
                r.outcome.as_str().to_owned(),
                r.cts,
                Some(r.reported_at),
                r.lab.to_owned(),
                r.not_counted,
            ),
        };
        PersonRow {
            person: p.person.to_owned(),
            status: p.status,
            tube: p.tube.to_owned(),
            mode: p.mode.as_str(),
            result,
            ct_orf1ab: cts.0,
            ct_n: cts.1,
            site: p.site.to_owned(),
            collected_at: time::format(p.collected_at, p.zone),
            reported_at: reported_ms.map_or(String::new(), |t| time::format(t, p.zone)),
            lab,
            not_counted,
            collected_ms: p.collected_at,
            reported_ms,
        }
    }
}

impl<'a> ResultParts<'a> {
    /// Result row `res` of `results` (`None` for [`NONE`], no result), with its lab and
    /// why it does not count, if it does not.
    fn of(
        results: &ResultFacts,
        (res, not_counted): (u32, Option<String>),
        lab: impl FnOnce() -> &'a str,
    ) -> Option<Self> {
        let i = usize::try_from(res).ok().filter(|_| res != NONE)?;
        Some(ResultParts {
            outcome: results.outcome[i],
            cts: results.cts(i),
            reported_at: results.reported_at[i],
            lab: lab(),
            not_counted: not_counted.unwrap_or_default(),
        })
    }
}

impl PersonRow {
    /// The row for a person's decided status.
    pub fn new(round: &Statuses, text: &dyn RowText, p: PersonStatus) -> PersonRow {
        let row = p.row as usize;
        let shown = round.shown_result(round.tube_of_row[row] as usize);
        let res = shown.0;
        let result = ResultParts::of(&round.results, shown, || text.lab(res));
        let (person, tube, site) = text.collection(p.row);
        PersonRow::from(RowParts {
            person,
            status: p.status,
            tube,
            mode: round.tubes.mode[round.tube_of_row[row] as usize],
            site,
            collected_at: round.collected_at[row],
            result,
            zone: round.zone,
        })
    }

    fn min_ct(&self) -> f32 {
        match (self.ct_orf1ab, self.ct_n) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(f32::INFINITY),
        }
    }
}

fn wanted(list: Worklist) -> Status {
    match list {
        Worklist::Recall => Status::Recall,
        Worklist::Resample => Status::Resample,
        Worklist::Positives => Status::Positive,
    }
}

fn sorted(rows: Vec<PersonRow>, list: Worklist) -> Vec<PersonRow> {
    // The rows' numbers are sorted, not the rows: a row is a dozen strings (260
    // bytes), and a city's recall list of 236,000 rows moved them about on every
    // merge of the stable sort. The order is the same: the sort is stable either way,
    // and on all cores (rayon's parallel sort is stable too).
    let mut order: Vec<usize> = (0..rows.len()).collect();
    match list {
        Worklist::Recall | Worklist::Resample => order.par_sort_by(|&a, &b| {
            let (a, b) = (&rows[a], &rows[b]);
            a.min_ct()
                .total_cmp(&b.min_ct())
                .then_with(|| a.tube.cmp(&b.tube))
                .then_with(|| a.person.cmp(&b.person))
        }),
        Worklist::Positives => order.par_sort_by(|&a, &b| {
            let (a, b) = (&rows[a], &rows[b]);
            (a.reported_ms, &a.person).cmp(&(b.reported_ms, &b.person))
        }),
    }
    put_in_order(rows, &order)
}

/// `rows` rearranged so that position `k` holds what was at `order[k]` (`order` is a
/// permutation), by following its cycles with swaps: no second list of rows.
fn put_in_order<T>(mut rows: Vec<T>, order: &[usize]) -> Vec<T> {
    let mut done = vec![false; order.len()];
    for start in 0..order.len() {
        let mut at = start;
        while !done[at] {
            done[at] = true;
            let from = order[at];
            if from == start {
                break;
            }
            rows.swap(at, from);
            at = from;
        }
    }
    rows
}

/// Builds a worklist in the order the lab works it, reading the text of only the
/// listed rows from the store.
///
/// ```
/// use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
/// use pooltrack::store::Store;
/// use pooltrack::tracker::Decided;
/// use pooltrack::worklist::{Worklist, build};
///
/// let dir = tempfile::tempdir()?;
/// let (pools, results) = (dir.path().join("pools.csv"), dir.path().join("results.csv"));
/// std::fs::write(
///     &pools,
///     "tube,person,mode,capacity,collected_at\n\
///      PL0001,P-2,pool,10,2022-04-02 08:01\n\
///      PL0001,P-1,pool,10,2022-04-02 08:00\n",
/// )?;
/// std::fs::write(&results, "tube,result,reported_at\nPL0001,positive,2022-04-02 12:00\n")?;
/// let mut store = Store::open_writer(&dir.path().join("store"))?;
/// let opts = IngestOptions::default();
/// ingest_collections(&mut store, &[pools], "2022-04-02", &opts, None)?;
/// ingest_results(&mut store, &[results], &opts, None)?;
///
/// let round = Decided::load(&store, "2022-04-02")?;
/// let recall = build(&store, &round, Worklist::Recall)?;
/// let persons: Vec<&str> = recall.iter().map(|r| r.person.as_str()).collect();
/// assert_eq!(persons, ["P-1", "P-2"]);
/// assert!(recall.iter().all(|r| r.tube == "PL0001"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build(store: &Store, round: &Decided, list: Worklist) -> Result<Vec<PersonRow>> {
    let listing = round.listed(store, wanted(list))?;
    let text = Fetched::load(store, round, &listing.persons)?;
    let unread = || {
        Error::damaged(
            store.root(),
            format!(
                "round {}: a listed row was not read from the segments",
                round.name
            ),
        )
    };
    let rows = listing
        .persons
        .par_iter()
        .map(|l| {
            let t = l.tube as usize;
            let shown = round.shown_result(t);
            let res = shown.0;
            let lab = if res == NONE { Some("") } else { text.lab(res) };
            let (Some(lab), Some((person, site, collected_at))) =
                (lab, text.collection(l.person.row))
            else {
                return Err(unread());
            };
            Ok(PersonRow::from(RowParts {
                person,
                status: l.person.status,
                tube: listing.barcode(l.tube),
                mode: round.tubes.mode.get(t).copied().unwrap_or(Mode::Pool),
                site,
                collected_at,
                result: ResultParts::of(&round.results, shown, || lab),
                zone: round.zone,
            }))
        })
        .collect::<Result<Vec<PersonRow>>>()?;
    Ok(sorted(rows, list))
}

/// Every person of the round with their status, sorted by person id.
pub fn export_status(round: &Round) -> Vec<PersonRow> {
    let mut rows: Vec<PersonRow> = round
        .persons()
        .par_iter()
        .map(|&p| PersonRow::new(round, round, p))
        .collect();
    rows.par_sort_by(|a, b| a.person.cmp(&b.person));
    rows
}

impl ListRow for PersonRow {
    const HEADER: &'static [&'static str] = &HEADER;

    fn record_batch(rows: &[PersonRow]) -> Result<RecordBatch> {
        person_rows_batch(rows)
    }
}

const HEADER: [&str; 12] = [
    "person",
    "status",
    "tube",
    "mode",
    "result",
    "ct_orf1ab",
    "ct_n",
    "site",
    "collected_at",
    "reported_at",
    "lab",
    "not_counted",
];

fn person_rows_batch(rows: &[PersonRow]) -> Result<RecordBatch> {
    let schema = crate::roster::status_schema();
    let col = |f: &dyn Fn(&PersonRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |f: &dyn Fn(&PersonRow) -> &str| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| Some(f(r)).filter(|s| !s.is_empty()))
                .collect::<StringArray>(),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        col(&|r| &r.person),
        col(&|r| r.status.as_str()),
        col(&|r| &r.tube),
        col(&|r| r.mode),
        opt(&|r| &r.result),
        Arc::new(rows.iter().map(|r| r.ct_orf1ab).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.ct_n).collect::<Float32Array>()),
        opt(&|r| &r.site),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.collected_ms))
                .with_timezone("UTC"),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.reported_ms)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        opt(&|r| &r.lab),
        opt(&|r| &r.not_counted),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rows_land_where_the_order_puts_them(
            order in (0usize..300).prop_flat_map(|n| Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        ) {
            let rows: Vec<String> = (0..order.len()).map(|i| format!("row {i}")).collect();
            let expected: Vec<String> = order.iter().map(|&i| rows[i].clone()).collect();
            prop_assert_eq!(put_in_order(rows, &order), expected);
        }
    }
}
