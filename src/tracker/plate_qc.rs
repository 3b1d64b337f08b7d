//! Plate quality control: a plate whose controls failed does not vouch for its samples.
//!
//! The ingest decides each plate from the control rows that come with it (a negative
//! control must not amplify; a positive control must amplify both targets) and records
//! the failed plates in the manifest. Here every sample result on a failed plate (same
//! lab and plate id, same round) becomes **void**: it stays in the tube's history but
//! does not count, so the tube is `pending` again and goes on the lab's **rerun**
//! worklist (same tube, re-extracted; nobody is re-swabbed) until a result from a good
//! plate arrives.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, StringArray};
use serde::Serialize;

use super::Decided;
use crate::listing::ListRow;
use crate::model::Mode;
use crate::store::manifest::FailedPlate;
use crate::store::read;
use crate::store::{BatchKind, Store};
use crate::time::{self, Millis};
use crate::{Error, Result};

/// The round's failed plates, in the order their batches were committed.
pub fn failed_plates(store: &Store, round: &str) -> Vec<FailedPlate> {
    let mut plates: Vec<FailedPlate> = Vec::new();
    for (_, seg, _) in store
        .manifest()
        .segments(Some(round))
        .filter(|(k, _, _)| *k == BatchKind::Results)
    {
        for p in &seg.failed_plates {
            if !plates.iter().any(|q| q.lab == p.lab && q.plate == p.plate) {
                plates.push(p.clone());
            }
        }
    }
    plates
}

fn strings(a: &arrow_array::ArrayRef) -> Option<&StringArray> {
    a.as_any().downcast_ref::<StringArray>()
}

fn at(a: &StringArray, i: usize) -> &str {
    if i < a.len() && a.is_valid(i) {
        a.value(i)
    } else {
        ""
    }
}

/// Which of the round's `n` result rows are void. Only a round with a failed plate
/// reads anything: the lab and plate columns of its results.
pub fn void_results(store: &Store, round: &str, n: usize) -> Result<Vec<bool>> {
    let failed = failed_plates(store, round);
    let mut void = vec![false; n];
    if failed.is_empty() {
        return Ok(void);
    }
    let failed: HashSet<(&str, &str)> = failed
        .iter()
        .map(|p| (p.lab.as_str(), p.plate.as_str()))
        .collect();
    let cols = read::columns(
        store,
        round,
        BatchKind::Results,
        &["lab", "plate", "sample_type"],
    )?;
    let (Some(lab), Some(plate), Some(kind)) =
        (strings(&cols[0]), strings(&cols[1]), strings(&cols[2]))
    else {
        return Err(Error::damaged(
            store.root(),
            format!("round {round}: a results segment's lab or plate column is not text"),
        ));
    };
    for (i, v) in void.iter_mut().enumerate() {
        let is_sample = matches!(at(kind, i), "" | "sample");
        *v = is_sample && failed.contains(&(at(lab, i), at(plate, i)));
    }
    Ok(void)
}

/// A tube the lab must run again: its only results came from failed plates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RerunRow {
    /// Tube barcode.
    pub tube: String,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// Persons in it (all `pending` until the rerun's result).
    pub members: u32,
    /// The lab of the void result.
    pub lab: String,
    /// The failed plate.
    pub plate: String,
    /// The tube's well on it.
    pub well: String,
    /// When the void result was reported.
    pub reported_at: String,
    /// Why the plate failed.
    pub reason: String,
    #[serde(skip)]
    reported_ms: Millis,
}

impl ListRow for RerunRow {
    const HEADER: &'static [&'static str] = &[
        "tube",
        "mode",
        "members",
        "lab",
        "plate",
        "well",
        "reported_at",
        "reason",
    ];
}

/// The rerun worklist: every tube with a void result and no result that counts, the
/// longest-waiting first.
pub fn reruns(store: &Store, round: &Decided) -> Result<Vec<RerunRow>> {
    let latest = round.tubes_to_rerun();
    if latest.is_empty() {
        return Ok(Vec::new());
    }
    let mut result_rows: Vec<u32> = latest.iter().map(|&(_, row)| row).collect();
    result_rows.sort_unstable();
    let text = read::fetch(
        store,
        &round.name,
        BatchKind::Results,
        &["tube", "lab", "plate", "well", "reported_at"],
        &result_rows,
    )?;
    let cols: Vec<&StringArray> = text[..4].iter().filter_map(strings).collect();
    let reported = text[4].as_primitive_opt::<TimestampMillisecondType>();
    let (Some(reported), [tube, lab, plate, well]) = (reported, cols.as_slice()) else {
        return Err(Error::damaged(
            store.root(),
            format!(
                "round {}: a results segment has unexpected column types",
                round.name
            ),
        ));
    };
    let failed = failed_plates(store, &round.name);
    let mut rows: Vec<RerunRow> = latest
        .iter()
        .map(|&(t, row)| {
            let j = result_rows.binary_search(&row).unwrap_or(usize::MAX);
            let (lab, plate) = (at(lab, j), at(plate, j));
            let reason = failed
                .iter()
                .find(|p| p.lab == lab && p.plate == plate)
                .map_or(String::new(), |p| p.reason.clone());
            let reported_ms = if j < reported.len() {
                reported.value(j)
            } else {
                0
            };
            let t = t as usize;
            RerunRow {
                tube: at(tube, j).to_owned(),
                mode: round.tubes.mode.get(t).map_or(Mode::Pool, |m| *m).as_str(),
                members: round.tubes.members.get(t).copied().unwrap_or(0),
                lab: lab.to_owned(),
                plate: plate.to_owned(),
                well: at(well, j).to_owned(),
                reported_at: time::format(reported_ms, round.zone),
                reason,
                reported_ms,
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.reported_ms, &a.tube).cmp(&(b.reported_ms, &b.tube)));
    Ok(rows)
}
