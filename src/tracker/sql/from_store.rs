//! What the query cannot read from the tables, read from the store when it is made:
//! whether the round's control rows, at the cut-offs in force, fail the plates its
//! batches recorded as failed, and which tubes of one person the tracker reads in
//! another mode than their row in the table states.

use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, BooleanArray, StringArray};

use crate::model::{Mode, Outcome, SampleType};
use crate::store::{BatchKind, Store, read};
use crate::text::text_at;
use crate::{Error, Result};

/// Whether a control row fails its plate, as the ingest decides it: Ct values decide
/// when the row has any (or its result was read from them), else its result word.
pub(super) fn control_fails(
    sample_type: &str,
    result: &str,
    by_ct: bool,
    (orf, n): (Option<f32>, Option<f32>),
    (negative, positive): (f32, f32),
) -> bool {
    let by_ct = by_ct || orf.is_some() || n.is_some();
    let below = |ct: Option<f32>, cutoff: f32| ct.is_some_and(|c| c < cutoff);
    if sample_type == SampleType::NegativeControl.as_str() {
        if by_ct {
            below(orf, negative) || below(n, negative)
        } else {
            result == Outcome::Positive.as_str() || result == Outcome::Inconclusive.as_str()
        }
    } else if sample_type == SampleType::PositiveControl.as_str() {
        let amplified = if by_ct {
            below(orf, positive) && below(n, positive)
        } else {
            result == Outcome::Positive.as_str()
        };
        !amplified
    } else {
        false
    }
}

/// The plates (lab, plate) of `round` that its control rows fail at `cutoffs`. The
/// controls are each results segment's last rows, so only those are read.
pub(super) fn failed_by_controls(
    store: &Store,
    round: &str,
    cutoffs: (f32, f32),
) -> Result<BTreeSet<(String, String)>> {
    let mut rows: Vec<u32> = Vec::new();
    let mut base = 0u64;
    for (kind, seg, _) in store.manifest().segments(Some(round)) {
        if kind != BatchKind::Results {
            continue;
        }
        let end = base + seg.rows;
        let start = end.saturating_sub(seg.controls).max(base);
        rows.extend((start..end).filter_map(|r| u32::try_from(r).ok()));
        base = end;
    }
    let mut failed = BTreeSet::new();
    if rows.is_empty() {
        return Ok(failed);
    }
    let names = [
        "lab",
        "plate",
        "sample_type",
        "result",
        "result_from_ct",
        "ct_orf1ab",
        "ct_n",
    ];
    let cols = read::fetch(store, round, BatchKind::Results, &names, &rows)?;
    let text = |i: usize| cols[i].as_any().downcast_ref::<StringArray>();
    let (Some(lab), Some(plate), Some(kind), Some(result)) = (text(0), text(1), text(2), text(3))
    else {
        return Err(unreadable(store, round));
    };
    let from_ct = cols[4].as_any().downcast_ref::<BooleanArray>();
    let (Some(from_ct), Some(orf), Some(n)) = (
        from_ct,
        cols[5].as_primitive_opt::<Float32Type>(),
        cols[6].as_primitive_opt::<Float32Type>(),
    ) else {
        return Err(unreadable(store, round));
    };
    if [lab.len(), orf.len(), n.len(), from_ct.len()] != [rows.len(); 4] {
        return Err(unreadable(store, round));
    }
    let ct = |a: &arrow_array::Float32Array, i: usize| a.is_valid(i).then(|| a.value(i));
    for i in 0..rows.len() {
        let by_ct = from_ct.is_valid(i) && from_ct.value(i);
        if control_fails(
            text_at(kind, i),
            text_at(result, i),
            by_ct,
            (ct(orf, i), ct(n, i)),
            cutoffs,
        ) {
            failed.insert((text_at(lab, i).to_owned(), text_at(plate, i).to_owned()));
        }
    }
    Ok(failed)
}

/// The tubes of `round` holding one person whose mode the tracker reads otherwise than
/// that person's row in the table states it. A tube keeps the first mode any of its
/// rows stated, and two kinds of row that stated it are not in the table: a repeated
/// scan of the same person into the tube (kept once, and the first scan may have
/// stated nothing), and the rows of a batch retracted after a later batch added to the
/// tube. Nearly always there is none.
pub(super) fn mode_overrides(store: &Store, round: &str) -> Result<Vec<(String, Mode)>> {
    let decided = crate::tracker::Decided::load(store, round)?;
    let tubes = &decided.tubes;
    let alone: Vec<u32> = (0..tubes.len())
        .filter(|&t| tubes.members[t] == 1)
        .filter_map(|t| u32::try_from(t).ok())
        .collect();
    if alone.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<(u32, u32)> = alone.iter().map(|&t| (tubes.row[t as usize], t)).collect();
    rows.sort_unstable();
    let row_numbers: Vec<u32> = rows.iter().map(|&(r, _)| r).collect();
    let cols = read::fetch(
        store,
        round,
        BatchKind::Collections,
        &["mode"],
        &row_numbers,
    )?;
    let Some(stated) = cols
        .first()
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
    else {
        return Err(unreadable(store, round));
    };
    if stated.len() != rows.len() {
        return Err(unreadable(store, round));
    }
    let differ: Vec<(u32, Mode)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, &(_, t))| {
            let by_row = if text_at(stated, i) == Mode::Single.as_str() {
                Mode::Single
            } else {
                Mode::Pool
            };
            let read = tubes.mode[t as usize];
            (read != by_row).then_some((t, read))
        })
        .collect();
    if differ.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<u32> = differ.iter().map(|&(t, _)| t).collect();
    let barcodes = decided.barcodes_of(store, &ids)?;
    let mut out: Vec<(String, Mode)> = differ
        .iter()
        .map(|&(t, m)| (barcodes.get(t).to_owned(), m))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn unreadable(store: &Store, round: &str) -> Error {
    Error::damaged(
        store.root(),
        format!("round {round}: the segments' rows cannot be read as the query needs them"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_fail_as_the_ingest_decides() {
        let cut = (40.0, 35.0);
        let neg = SampleType::NegativeControl.as_str();
        let pos = SampleType::PositiveControl.as_str();
        assert!(control_fails(
            neg,
            "negative",
            false,
            (Some(39.0), None),
            cut
        ));
        assert!(!control_fails(
            neg,
            "positive",
            false,
            (Some(40.0), None),
            cut
        ));
        assert!(control_fails(neg, "positive", false, (None, None), cut));
        assert!(!control_fails(neg, "negative", true, (None, None), cut));
        assert!(control_fails(
            pos,
            "positive",
            false,
            (Some(30.0), Some(36.0)),
            cut
        ));
        assert!(!control_fails(
            pos,
            "negative",
            false,
            (Some(30.0), Some(34.0)),
            cut
        ));
        assert!(!control_fails(pos, "positive", false, (None, None), cut));
        assert!(control_fails(pos, "negative", true, (None, None), cut));
        assert!(!control_fails(
            "sample",
            "positive",
            false,
            (None, None),
            cut
        ));
    }
}
