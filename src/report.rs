//! Status reports: a round's counts, and one person's status with every tube and result
//! behind it (what an appeal of a yellow health code needs).

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray, StringArray};
use serde::Serialize;

use crate::model::{Mode, Status};
use crate::store::index::{TubeMeta, tube_key};
use crate::store::read;
use crate::store::{BatchKind, ResultFact, Store};
use crate::text::text_at;
use crate::time::{self, Millis};
use crate::tracker::rules::{Membership, decide};
use crate::tracker::{Counts, Decided, SpecimenLimit, plate_qc, read_results};
use crate::worklist::{PersonRow, ResultParts, RowParts};
use crate::{Error, Result};

/// A round's counts, as `pooltrack status` shows them.
#[derive(Debug, Serialize)]
pub struct RoundCounts {
    /// The round.
    pub round: String,
    /// The specimen limit the results were read against, in hours.
    pub specimen_limit_hours: f64,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// One result row of a tube, with where it came from.
#[derive(Debug, Serialize)]
pub struct ResultLine {
    /// The result as recorded.
    pub result: &'static str,
    /// Ct `ORF1ab`.
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
    /// Set when the result does not count because its plate failed: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub void: Option<String>,
    /// Set when the result does not count because it was reported past the specimen
    /// limit after the tube's first swab: "tested 50 h after the swab, past the 48 h
    /// specimen limit".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub past_limit: Option<String>,
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
    /// The tube's effective result, empty when none; for a tube whose every result came
    /// past the specimen limit, the one standing in for them (see `not_counted`).
    pub result: String,
    /// Set when no result of the tube counts because every one came past the specimen
    /// limit (the tube needs a resample): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_counted: Option<String>,
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

/// The round's counts.
pub fn round_report(round: &Decided) -> RoundCounts {
    RoundCounts {
        round: round.name.clone(),
        specimen_limit_hours: round.specimen_limit.in_hours(),
        counts: round.counts(),
    }
}

/// Columns of a person's collection rows, read with Parquet row selection.
const COLLECTION_COLUMNS: [&str; 9] = [
    "tube",
    "person",
    "mode",
    "capacity",
    "collected_at",
    "site",
    "batch",
    "source",
    "line",
];
const RESULT_COLUMNS: [&str; 6] = ["lab", "plate", "well", "batch", "source", "line"];

/// Column `i` of `cols` read from the store at `root`, as text; any other type means
/// the segment is damaged (the user asked nothing wrong).
fn text_col<'a>(root: &Path, cols: &'a [ArrayRef], i: usize) -> Result<&'a StringArray> {
    cols.get(i)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| unexpected_type(root))
}

/// Column `i` of `cols` read from the store at `root`, as numbers of type `T`.
fn num_col<'a, T: ArrowPrimitiveType>(
    root: &Path,
    cols: &'a [ArrayRef],
    i: usize,
) -> Result<&'a PrimitiveArray<T>> {
    cols.get(i)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| unexpected_type(root))
}

fn unexpected_type(root: &Path) -> Error {
    Error::damaged(root, "a segment column has an unexpected type")
}

/// Whether every one of `cols` holds `n` rows: the rows an index named and a segment
/// read must agree.
fn all_hold(cols: &[ArrayRef], n: usize) -> bool {
    cols.iter().all(|c| c.len() == n)
}

/// One person's status in a round and every tube and result behind it, found through
/// the store's indexes: the person index gives their rows, the tube and result indexes
/// give their tubes' members and results, and only those rows are read from Parquet.
/// `None` if they have no tube in the round.
pub fn person_report(store: &Store, round: &str, person: &str) -> Result<Option<PersonReport>> {
    store.require_round(round)?;
    let index = store.index_of(Some(round))?;
    let Some(rid) = index.round_id(round) else {
        return Ok(None);
    };
    let rows = index.person_rows(rid, person);
    if rows.is_empty() {
        return Ok(None);
    }
    let zone = store.zone();
    let c = read::fetch(
        store,
        round,
        BatchKind::Collections,
        &COLLECTION_COLUMNS,
        &rows,
    )?;
    let root = store.root();
    let damaged = |why: &str| Error::damaged(root, format!("round {round}: {why}"));
    if !all_hold(&c, rows.len()) {
        return Err(damaged(
            "the collections segments hold fewer rows than the person index names",
        ));
    }
    let text = |i| text_col(root, &c, i);
    let (tube, who, mode) = (text(0)?, text(1)?, text(2)?);
    let capacity = num_col::<UInt8Type>(root, &c, 3)?;
    let at = num_col::<TimestampMillisecondType>(root, &c, 4)?;
    let (site, source) = (text(5)?, text(7)?);
    let (batch, line) = (
        num_col::<UInt32Type>(root, &c, 6)?,
        num_col::<UInt64Type>(root, &c, 8)?,
    );

    // The person's rows (a hash match is checked against the id itself), by time.
    let mut mine: Vec<usize> = (0..tube.len())
        .filter(|&k| who.value(k) == person)
        .collect();
    if mine.is_empty() {
        return Ok(None);
    }
    mine.sort_by_key(|&k| (at.value(k), k));
    let facts: Vec<Vec<ResultFact>> = mine
        .iter()
        .map(|&k| index.result_facts(rid, &tube_key(tube.value(k))))
        .collect();
    let mut result_rows: Vec<u32> = facts.iter().flatten().map(|f| f.row).collect();
    result_rows.sort_unstable();
    result_rows.dedup();
    let r = read::fetch(
        store,
        round,
        BatchKind::Results,
        &RESULT_COLUMNS,
        &result_rows,
    )?;
    if !all_hold(&r, result_rows.len()) {
        return Err(damaged(
            "the results segments hold fewer rows than the result index names",
        ));
    }
    let text = |i| text_col(root, &r, i);
    let (lab, plate, well, rsource) = (text(0)?, text(1)?, text(2)?, text(4)?);
    let (rbatch, rline) = (
        num_col::<UInt32Type>(root, &r, 3)?,
        num_col::<UInt64Type>(root, &r, 5)?,
    );
    let result_at = |row: u32| {
        result_rows
            .binary_search(&row)
            .map_err(|_| damaged("a result row was not read from the results segments"))
    };
    let failed = plate_qc::failed_plates(store, round);
    let void_reason = |row: u32| -> Result<Option<String>> {
        if failed.is_empty() {
            return Ok(None);
        }
        let j = result_at(row)?;
        let (l, p) = (text_at(lab, j), text_at(plate, j));
        Ok(failed
            .iter()
            .find(|f| f.lab == l && f.plate == p)
            .map(|f| format!("plate {p} failed: {}", f.reason)))
    };
    // Void results stay in the history but are not among the facts that decide.
    let mut counted: Vec<Vec<ResultFact>> = Vec::with_capacity(facts.len());
    for fs in &facts {
        let mut kept = Vec::with_capacity(fs.len());
        for f in fs {
            if void_reason(f.row)?.is_none() {
                kept.push(*f);
            }
        }
        counted.push(kept);
    }

    // Each tube's first swab, from all its rows: results past the specimen limit after
    // it do not count.
    let limit = SpecimenLimit::of_store(store)?;
    let tube_rows: Vec<Vec<u32>> = mine
        .iter()
        .zip(&counted)
        .map(|(&k, fs)| {
            if fs.is_empty() {
                Vec::new()
            } else {
                index.tube_rows(rid, &tube_key(tube.value(k)))
            }
        })
        .collect();
    let mut swab_rows: Vec<u32> = tube_rows.iter().flatten().copied().collect();
    swab_rows.sort_unstable();
    swab_rows.dedup();
    let swabs = if swab_rows.is_empty() {
        Vec::new()
    } else {
        let c = read::fetch(
            store,
            round,
            BatchKind::Collections,
            &["collected_at"],
            &swab_rows,
        )?;
        if !all_hold(&c, swab_rows.len()) {
            return Err(damaged(
                "the collections segments hold fewer rows than the tube index names",
            ));
        }
        num_col::<TimestampMillisecondType>(root, &c, 0)?
            .values()
            .to_vec()
    };
    let first_swab: Vec<Millis> = tube_rows
        .iter()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| swab_rows.binary_search(r).ok().map(|i| swabs[i]))
                .min()
                .unwrap_or(Millis::MIN)
        })
        .collect();

    let mut tubes = Vec::with_capacity(mine.len());
    let mut members = Vec::with_capacity(mine.len());
    // The result each tube shows: its effective one, or the one standing in for results
    // past the limit, with why it does not count.
    let mut shown: Vec<(Option<ResultFact>, String)> = Vec::with_capacity(mine.len());
    for (((&k, facts), counted), &first) in mine.iter().zip(&facts).zip(&counted).zip(&first_swab) {
        let late = |f: &ResultFact| limit.is_past(first, f.reported_at);
        let reading = read_results(counted.iter().map(|f| (f.outcome, late(f))));
        // The tube as the rules read it: its settled metadata and member count, not
        // what this one row stated.
        let key = tube_key(tube.value(k));
        let tube_facts = index.tube(&key);
        let members_in = tube_facts.map_or(1, |t| t.members);
        let meta = tube_facts.map_or_else(
            || TubeMeta::stated(Mode::parse(mode.value(k)), capacity.value(k)),
            |t| t.meta,
        );
        let mode = meta.deconvolution_mode(members_in);
        let effective_fact = reading.result.map(|i| counted[i]);
        let stand_in = reading.past_limit.map(|i| counted[i]);
        members.push(Membership {
            mode,
            at: at.value(k),
            result: effective_fact.map(|f| f.outcome),
            past_limit: stand_in.is_some(),
            ct: effective_fact.and_then(|f| match f.cts {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }),
        });
        let not_counted = stand_in.map(|f| limit.explain(first, f.reported_at));
        let results = facts
            .iter()
            .map(|f| {
                let j = result_at(f.row)?;
                let void = void_reason(f.row)?;
                Ok(ResultLine {
                    result: f.outcome.as_str(),
                    ct_orf1ab: f.cts.0,
                    ct_n: f.cts.1,
                    reported_at: time::format(f.reported_at, zone),
                    lab: text_at(lab, j).to_owned(),
                    plate: text_at(plate, j).to_owned(),
                    well: text_at(well, j).to_owned(),
                    effective: effective_fact.is_some_and(|e| e.row == f.row),
                    past_limit: (void.is_none() && late(f))
                        .then(|| limit.explain(first, f.reported_at)),
                    void,
                    batch: rbatch.value(j),
                    source: text_at(rsource, j).to_owned(),
                    line: rline.value(j),
                })
            })
            .collect::<Result<Vec<ResultLine>>>()?;
        let show = effective_fact.or(stand_in);
        tubes.push(TubeLine {
            tube: tube.value(k).to_owned(),
            mode: mode.as_str(),
            capacity: meta.effective_capacity(),
            members: members_in,
            site: text_at(site, k).to_owned(),
            collected_at: time::format(at.value(k), zone),
            result: show.map_or(String::new(), |f| f.outcome.as_str().to_owned()),
            not_counted: not_counted.clone(),
            positive_kept: reading.positive_kept,
            results,
            batch: batch.value(k),
            source: text_at(source, k).to_owned(),
            line: line.value(k),
        });
        shown.push((show, not_counted.unwrap_or_default()));
    }
    let (status, d) = decide(&members);
    let k = mine[d];
    let (deciding, not_counted) = &shown[d];
    let deciding = *deciding;
    let lab_of = match deciding {
        Some(f) => text_at(lab, result_at(f.row)?),
        None => "",
    };
    let decided_by = PersonRow::from(RowParts {
        person,
        status,
        tube: tube.value(k),
        mode: members[d].mode,
        site: text_at(site, k),
        collected_at: at.value(k),
        result: deciding.map(|f| ResultParts {
            outcome: f.outcome,
            cts: f.cts,
            reported_at: f.reported_at,
            lab: lab_of,
            not_counted: not_counted.clone(),
        }),
        zone,
    });
    Ok(Some(PersonReport {
        round: round.to_owned(),
        person: person.to_owned(),
        status,
        decided_by,
        tubes,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::UInt32Array;

    use super::*;

    #[test]
    fn a_column_of_the_wrong_type_is_a_damaged_store_not_a_usage_error() {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt32Array::from(vec![1])),
            Arc::new(StringArray::from(vec!["PL0001"])),
        ];
        let root = Path::new("store");
        let e = text_col(root, &cols, 0).expect_err("numbers are not text");
        assert!(matches!(e, Error::StoreDamaged { .. }), "{e:?}");
        assert_eq!(e.exit_code(), 3);
        let e = num_col::<UInt64Type>(root, &cols, 1).expect_err("text is not numbers");
        assert_eq!(e.exit_code(), 3);
        assert_eq!(
            e.to_string(),
            "store store is damaged: a segment column has an unexpected type"
        );
        assert!(text_col(root, &cols, 1).is_ok());
        assert!(num_col::<UInt32Type>(root, &cols, 0).is_ok());
    }
}
