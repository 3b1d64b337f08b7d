//! The specimen limit: a swab tested too long after it was taken does not count.
//!
//! A result reported more than `specimen_limit_hours` (`[custody]` in
//! `STORE/pooltrack.toml`, default 48) after its tube's **first swab** (the earliest
//! `collected_at` of the tube's rows) is **past the limit**: it does not count as a
//! result of the tube. A tube's results are read in `reported_at` order, so those past
//! the limit all come after those within it:
//! - a tube with a result within the limit has its effective result from those alone
//!   (a later one past the limit, such as a re-test of the same old specimen, changes
//!   nothing);
//! - a tube whose every result (not void) came past the limit reads as needing a
//!   resample, as an invalid result does: its persons are `resample` unless a later
//!   negative tube of theirs clears it. The result the rules would otherwise have
//!   picked among them stands in for it in lists and exports, with why it does not
//!   count ([`SpecimenLimit::explain`]).
//!
//! A result within the limit that arrives in a later batch but was reported before a
//! past-limit one sorts before it and counts as any other: whether a result counts
//! depends on its own `reported_at` alone. The check needs only the collections and
//! the results, so it applies to every round, with or without custody data.
//!
//! Finding the first swabs costs nothing for a round whose results all came within the
//! limit of its earliest swab: the `collected_at` statistics in the segments' Parquet
//! footers bound each tube's first swab from below, and only the tubes whose results
//! could be late by that bound have their rows' times read.

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use rayon::prelude::*;

use super::{Decided, NONE, ResultFacts, Tubes};
use crate::Result;
use crate::store::config::hours_to_millis;
use crate::store::{BatchKind, Store, index, read};
use crate::time::Millis;

/// How long a swab may wait for its test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecimenLimit {
    hours: f64,
    ms: Millis,
}

impl SpecimenLimit {
    /// A limit of `hours` (checked by the configuration: above 0, at most a year).
    ///
    /// ```
    /// use pooltrack::tracker::SpecimenLimit;
    /// let limit = SpecimenLimit::hours(48.0);
    /// let hour = 3_600_000;
    /// assert!(!limit.is_past(0, 48 * hour));
    /// assert!(limit.is_past(0, 49 * hour));
    /// assert_eq!(
    ///     limit.explain(0, 49 * hour),
    ///     "tested 49 h after the swab, past the 48 h specimen limit"
    /// );
    /// ```
    pub fn hours(hours: f64) -> SpecimenLimit {
        SpecimenLimit {
            hours,
            ms: hours_to_millis(hours),
        }
    }

    /// The store's limit, `custody.specimen_limit_hours` in `STORE/pooltrack.toml`.
    pub fn of_store(store: &Store) -> Result<SpecimenLimit> {
        Ok(SpecimenLimit::hours(
            store.config()?.custody.specimen_limit_hours,
        ))
    }

    /// The limit in hours.
    pub fn in_hours(self) -> f64 {
        self.hours
    }

    /// The limit in milliseconds, as results are compared against it.
    pub fn in_millis(self) -> Millis {
        self.ms
    }

    /// Whether a result reported at `reported` is past the limit of a tube first
    /// swabbed at `first_swab`.
    pub fn is_past(self, first_swab: Millis, reported: Millis) -> bool {
        reported.saturating_sub(first_swab) > self.ms
    }

    /// Why such a result does not count, for a person reading a list: "tested 49.5 h
    /// after the swab, past the 48 h specimen limit".
    pub fn explain(self, first_swab: Millis, reported: Millis) -> String {
        format!(
            "tested {} h after the swab, past the {} h specimen limit",
            hours(reported.saturating_sub(first_swab)),
            self.hours
        )
    }
}

/// Milliseconds as hours to two decimals: what a reader checks by hand.
pub fn hours(ms: Millis) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let h = ms as f64 / 3_600_000.0;
    (h * 100.0).round() / 100.0
}

/// A tube whose every result came past the specimen limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastLimit {
    /// The tube.
    pub tube: u32,
    /// The result row that stands in for the tube's result in lists: the one the rules
    /// would have picked among its results.
    pub row: u32,
    /// The tube's first swab.
    pub first_swab: Millis,
}

/// The first swab of each tube that may have a result past the limit, sorted by tube.
pub(super) type FirstSwabs = Vec<(u32, Millis)>;

/// The tubes with a result (not void) reported more than `limit` after `floor(t)`, a
/// time at or before the tube's first swab.
fn tubes_reported_after(
    results: &ResultFacts,
    n_tubes: usize,
    limit: SpecimenLimit,
    floor: impl Fn(usize) -> Millis,
) -> Vec<bool> {
    let mut late = vec![false; n_tubes];
    for (row, &t) in results.tube.iter().enumerate() {
        if t == NONE || results.void.get(row).copied().unwrap_or(false) {
            continue;
        }
        let t = t as usize;
        if let Some(l) = late.get_mut(t)
            && !*l
            && limit.is_past(floor(t), results.reported_at[row])
        {
            *l = true;
        }
    }
    late
}

/// Whether any result of the round (not void) could be past the limit of a round
/// whose earliest swab is at or after `floor`.
fn any_reported_after(results: &ResultFacts, limit: SpecimenLimit, floor: Millis) -> bool {
    let last = (0..results.tube.len())
        .filter(|&r| results.tube[r] != NONE && !results.void.get(r).copied().unwrap_or(false))
        .map(|r| results.reported_at[r])
        .max();
    last.is_some_and(|at| limit.is_past(floor, at))
}

/// The first swabs a round's limit needs, from every row's collection time.
pub(super) fn first_swabs_of_rows(
    results: &ResultFacts,
    tubes: &Tubes,
    limit: SpecimenLimit,
    tube_of_row: &[u32],
    collected_at: &[Millis],
) -> FirstSwabs {
    let earliest = collected_at
        .par_iter()
        .copied()
        .min()
        .unwrap_or(Millis::MAX);
    if !any_reported_after(results, limit, earliest) {
        return Vec::new();
    }
    let mut first = vec![Millis::MAX; tubes.len()];
    for (&t, &at) in tube_of_row.iter().zip(collected_at) {
        if let Some(f) = first.get_mut(t as usize) {
            *f = (*f).min(at);
        }
    }
    let late = tubes_reported_after(results, tubes.len(), limit, |t| first[t]);
    (0..tubes.len())
        .filter(|&t| late[t])
        .map(|t| (u32::try_from(t).unwrap_or(NONE), first[t]))
        .collect()
}

/// The first swabs a round's limit needs, reading as little as it can: the footers'
/// least `collected_at` of each collections segment bounds the first swab of the tubes
/// with rows in it, and only the rows of tubes whose results could be late by that
/// bound have their times read.
pub(super) fn first_swabs_of_index(store: &Store, round: &Decided) -> Result<FirstSwabs> {
    let (results, tubes, limit, n_rows) = (
        &round.results,
        &round.tubes,
        round.specimen_limit,
        round.rows,
    );
    let run_tube = &round.run_tube;
    let name = round.name.as_str();
    if results.tube.iter().all(|&t| t == NONE) {
        return Ok(Vec::new());
    }
    // A segment whose footer states no least time bounds nothing.
    let floors: Vec<Millis> =
        read::time_floors(store, name, BatchKind::Collections, "collected_at")?
            .into_iter()
            .map(|f| f.unwrap_or(Millis::MIN))
            .collect();
    let earliest = floors.iter().copied().min().unwrap_or(Millis::MIN);
    if !any_reported_after(results, limit, earliest) {
        return Ok(Vec::new());
    }
    let index = store.index_of(Some(name))?;
    let segs = index.collections_of(index.round_id(name).unwrap_or(0));
    // The floors of the index's pieces: a run's is the least of its segments'.
    let mut at = 0;
    let floors: Vec<Millis> = segs
        .iter()
        .map(|seg| {
            let end = (at + seg.segments).min(floors.len());
            let f = floors[at.min(end)..end].iter().copied().min();
            at = end;
            f.unwrap_or(Millis::MIN)
        })
        .collect();
    let mut floor = vec![Millis::MAX; tubes.len()];
    for (s, tubes_of_records) in run_tube.iter().enumerate() {
        let f = floors.get(s).copied().unwrap_or(Millis::MIN);
        for &t in tubes_of_records {
            if let Some(x) = floor.get_mut(t as usize) {
                *x = (*x).min(f);
            }
        }
    }
    let maybe = tubes_reported_after(results, tubes.len(), limit, |t| floor[t]);
    drop(floor);
    // The rows of those tubes, from their tube-index records.
    let mut rows: Vec<u32> = Vec::new();
    let mut row_tube: Vec<(u32, u32)> = Vec::new();
    for (seg, tubes_of_records) in segs.iter().zip(run_tube) {
        let mut scan = seg.tubes.scan(0..seg.tubes.len());
        while let Some((i, r)) = scan.record()? {
            let Some(&t) = tubes_of_records.get(i) else {
                break;
            };
            if !maybe.get(t as usize).copied().unwrap_or(false) {
                continue;
            }
            let first = seg.base.saturating_add(index::u32_at(r, 32));
            let end = first
                .saturating_add(index::u32_at(r, 36))
                .min(u32::try_from(n_rows).unwrap_or(u32::MAX));
            for row in first..end {
                row_tube.push((row, t));
            }
        }
    }
    if row_tube.is_empty() {
        return Ok(Vec::new());
    }
    row_tube.par_sort_unstable();
    rows.extend(row_tube.iter().map(|&(row, _)| row));
    let damaged = || {
        crate::Error::damaged(
            store.root(),
            format!("round {name}: the segment files and their indexes disagree on the rows"),
        )
    };
    // Past a quarter of the round, one pass over the column is cheaper than picking.
    let at: Vec<Millis> = if rows.len() > n_rows / 4 {
        let all = read::times(store, name, BatchKind::Collections, "collected_at")?;
        if all.len() != n_rows {
            return Err(damaged());
        }
        rows.iter().map(|&r| all[r as usize]).collect()
    } else {
        let col = read::fetch(
            store,
            name,
            BatchKind::Collections,
            &["collected_at"],
            &rows,
        )?;
        col.first()
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .filter(|a| a.len() == rows.len())
            .map(|a| a.values().to_vec())
            .ok_or_else(damaged)?
    };
    let mut first: Vec<(u32, Millis)> = row_tube
        .iter()
        .zip(&at)
        .map(|(&(_, t), &c)| (t, c))
        .collect();
    first.par_sort_unstable();
    first.dedup_by_key(|&mut (t, _)| t);
    // Keep the tubes whose results are late by their true first swab.
    let late = tubes_reported_after(results, tubes.len(), limit, |t| {
        first
            .binary_search_by_key(&u32::try_from(t).unwrap_or(NONE), |&(x, _)| x)
            .map_or(Millis::MAX, |i| first[i].1)
    });
    first.retain(|&(t, _)| late.get(t as usize).copied().unwrap_or(false));
    Ok(first)
}

/// Marks each result row past the limit of its tube's first swab in `firsts`.
pub(super) fn mark_late(results: &mut ResultFacts, firsts: &FirstSwabs, limit: SpecimenLimit) {
    if firsts.is_empty() {
        results.late = Vec::new();
        return;
    }
    results.late = (0..results.tube.len())
        .map(|row| {
            let t = results.tube[row];
            t != NONE
                && firsts
                    .binary_search_by_key(&t, |&(x, _)| x)
                    .is_ok_and(|i| limit.is_past(firsts[i].1, results.reported_at[row]))
        })
        .collect();
}
