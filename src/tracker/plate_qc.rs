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
use arrow_array::{Array, PrimitiveArray, StringArray};

use super::{Decided, Tubes};
use crate::model::Mode;
use crate::store::manifest::FailedPlate;
use crate::store::read;
use crate::store::{BatchKind, Store};
use crate::text::text_at;
use crate::time::Millis;
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

/// Which of the round's `n` result rows are void. Only a round with a failed plate
/// reads anything: the lab and plate columns of its results.
pub(crate) fn void_results(store: &Store, round: &str, n: usize) -> Result<Vec<bool>> {
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
    // Short columns would leave the rows past their end counted, silently: the index
    // and the Parquet files disagree, which is damage.
    if [lab.len(), plate.len(), kind.len()] != [n; 3] {
        return Err(Error::damaged(
            store.root(),
            format!(
                "round {round}: the results segments hold {} rows, their indexes {n}",
                lab.len()
            ),
        ));
    }
    for (i, v) in void.iter_mut().enumerate() {
        let is_sample = matches!(text_at(kind, i), "" | "sample");
        *v = is_sample && failed.contains(&(text_at(lab, i), text_at(plate, i)));
    }
    Ok(void)
}

/// A tube the lab must run again: its only results came from failed plates.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerun {
    /// Tube barcode.
    pub tube: String,
    /// How the tube is deconvoluted.
    pub mode: Mode,
    /// Persons in it (all `pending` until the rerun's result).
    pub members: u32,
    /// The lab of the void result.
    pub lab: String,
    /// The failed plate.
    pub plate: String,
    /// The tube's well on it.
    pub well: String,
    /// When the void result was reported.
    pub reported_at: Millis,
    /// Why the plate failed.
    pub reason: String,
}

/// The tubes to rerun: every tube with a void result and no result that counts, the
/// longest-waiting first.
pub fn reruns(store: &Store, round: &Decided) -> Result<Vec<Rerun>> {
    let latest = round.tubes_to_rerun();
    if latest.is_empty() {
        return Ok(Vec::new());
    }
    let mut result_rows: Vec<u32> = latest.iter().map(|&(_, row)| row).collect();
    result_rows.sort_unstable();
    result_rows.dedup();
    let text = read::fetch(
        store,
        &round.name,
        BatchKind::Results,
        &["tube", "lab", "plate", "well", "reported_at"],
        &result_rows,
    )?;
    let cols: Vec<&StringArray> = text[..4].iter().filter_map(strings).collect();
    let reported = text[4].as_primitive_opt::<TimestampMillisecondType>();
    let (Some(reported), &[tube, lab, plate, well]) = (reported, cols.as_slice()) else {
        return Err(Error::damaged(
            store.root(),
            format!(
                "round {}: a results segment has unexpected column types",
                round.name
            ),
        ));
    };
    let void = VoidRows {
        rows: &result_rows,
        tube,
        lab,
        plate,
        well,
        reported,
    };
    let damaged = |why: &str| Error::damaged(store.root(), format!("round {}: {why}", round.name));
    void.reruns(&round.tubes, &latest, &failed_plates(store, &round.name))
        .map_err(damaged)
}

/// The text of the void result rows behind the reruns, read from the results segments.
struct VoidRows<'a> {
    /// The rows read, ascending: the columns' row `j` is result row `rows[j]`.
    rows: &'a [u32],
    tube: &'a StringArray,
    lab: &'a StringArray,
    plate: &'a StringArray,
    well: &'a StringArray,
    reported: &'a PrimitiveArray<TimestampMillisecondType>,
}

impl VoidRows<'_> {
    /// The reruns of `latest` (tube, void result row), sorted; `Err` says how the
    /// segments disagree with the index that named the rows.
    fn reruns(
        &self,
        tubes: &Tubes,
        latest: &[(u32, u32)],
        failed: &[FailedPlate],
    ) -> std::result::Result<Vec<Rerun>, &'static str> {
        // The index named these rows, so the segments must hold every one: a shorter
        // column would otherwise list a tube without barcode, reported in 1970.
        let n = self.rows.len();
        let lens = [
            self.tube.len(),
            self.lab.len(),
            self.plate.len(),
            self.well.len(),
            self.reported.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err("the results segments hold fewer rows than the result index names");
        }
        let mut rows = latest
            .iter()
            .map(|&(t, row)| {
                let j = self
                    .rows
                    .binary_search(&row)
                    .map_err(|_| "a void result row was not read from the results segments")?;
                let (lab, plate) = (text_at(self.lab, j), text_at(self.plate, j));
                let reason = failed
                    .iter()
                    .find(|p| p.lab == lab && p.plate == plate)
                    .map_or(String::new(), |p| p.reason.clone());
                let t = t as usize;
                Ok(Rerun {
                    tube: text_at(self.tube, j).to_owned(),
                    mode: tubes.mode.get(t).copied().unwrap_or(Mode::Pool),
                    members: tubes.members.get(t).copied().unwrap_or(0),
                    lab: lab.to_owned(),
                    plate: plate.to_owned(),
                    well: text_at(self.well, j).to_owned(),
                    reported_at: self.reported.value(j),
                    reason,
                })
            })
            .collect::<std::result::Result<Vec<Rerun>, &'static str>>()?;
        rows.sort_by(|a, b| (a.reported_at, &a.tube).cmp(&(b.reported_at, &b.tube)));
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::TimestampMillisecondArray;

    fn plate(lab: &str, plate: &str) -> FailedPlate {
        FailedPlate {
            lab: lab.into(),
            plate: plate.into(),
            reason: "negative control amplified".into(),
        }
    }

    #[test]
    fn reruns_come_longest_waiting_first_with_their_plate_reason() {
        let tubes = Tubes {
            mode: vec![Mode::Pool, Mode::Single],
            members: vec![10, 1],
            ..Tubes::default()
        };
        let void = VoidRows {
            rows: &[3, 7],
            tube: &StringArray::from(vec!["PL0001", "SG0002"]),
            lab: &StringArray::from(vec!["L1", "L1"]),
            plate: &StringArray::from(vec!["P1", "P1"]),
            well: &StringArray::from(vec![Some("A01"), None]),
            reported: &TimestampMillisecondArray::from(vec![2_000, 1_000]),
        };
        let rows = void
            .reruns(&tubes, &[(0, 3), (1, 7)], &[plate("L1", "P1")])
            .expect("every row was read");
        let got: Vec<(&str, Mode, u32, &str, Millis)> = rows
            .iter()
            .map(|r| {
                (
                    r.tube.as_str(),
                    r.mode,
                    r.members,
                    r.well.as_str(),
                    r.reported_at,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("SG0002", Mode::Single, 1, "", 1_000),
                ("PL0001", Mode::Pool, 10, "A01", 2_000)
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.reason == "negative control amplified")
        );
    }

    #[test]
    fn a_void_row_the_segments_do_not_hold_is_damage_not_a_blank_tube_from_1970() {
        let tubes = Tubes {
            mode: vec![Mode::Pool, Mode::Pool],
            members: vec![10, 10],
            ..Tubes::default()
        };
        // The index names result rows 3 and 7; the segments gave back only one row.
        let void = VoidRows {
            rows: &[3, 7],
            tube: &StringArray::from(vec!["PL0001"]),
            lab: &StringArray::from(vec!["L1"]),
            plate: &StringArray::from(vec!["P1"]),
            well: &StringArray::from(vec!["A01"]),
            reported: &TimestampMillisecondArray::from(vec![2_000]),
        };
        let got = void.reruns(&tubes, &[(0, 3), (1, 7)], &[plate("L1", "P1")]);
        assert!(got.is_err(), "{got:?}");
        // A row missing from what was read at all is damage too.
        let whole = VoidRows { rows: &[3], ..void };
        let got = whole.reruns(&tubes, &[(0, 3), (1, 7)], &[plate("L1", "P1")]);
        assert!(got.is_err(), "{got:?}");
    }
}
