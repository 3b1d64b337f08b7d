//! The tracker: a round's tubes, their effective results, and every person's status.
//!
//! [`Statuses::load`] decides the whole round from the store's sidecar indexes and one
//! timestamp column, without decoding any text:
//! - tubes are numbered by merging the segments' sorted tube indexes, so a tube whose
//!   members came in several batches is one tube;
//! - each tube's **effective result** comes from the sorted result indexes: its results
//!   ordered by `reported_at`, the latest wins, except that a positive is never cleared
//!   by a later non-positive result (the tube stays positive and is flagged for review);
//! - persons are grouped by merging the segments' sorted person indexes (128-bit hashes
//!   of the ids), in parallel over ranges of the hash space, and each person's
//!   **status** is decided by the rules in [`rules`] from all their tubes.
//!
//! [`Round::load`] adds the text columns (ids, sites, labs, sources) for reports that
//! show every row; worklists fetch text only for the rows they list.
//!
//! Rows are numbered across a round's segments in manifest order: collection row `r`
//! is the `r`th row of the round's collection Parquet files read in that order, and
//! likewise for results.

pub mod load;
pub mod plate_qc;
pub mod rules;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow_array::Array;
use rayon::prelude::*;
use serde::Serialize;

pub use load::{Collections, Results};
use rules::Membership;

use crate::model::{Mode, Outcome, Status};
use crate::store::index::{self, TubeKey};
use crate::store::{BatchKind, CollectionIndex, ResultIndex, Store};
use crate::time::{Millis, Offset};
use crate::{Error, Result};

/// Marks a row or tube with nothing to point to.
pub const NONE: u32 = u32::MAX;

/// Per-tube columns, indexed by tube number (tubes are numbered in barcode order).
#[derive(Default)]
pub struct Tubes {
    /// The tube's first collection row in the round.
    pub row: Vec<u32>,
    /// Persons recorded in it.
    pub members: Vec<u32>,
    /// Its mode.
    pub mode: Vec<Mode>,
    /// Persons it may hold.
    pub capacity: Vec<u8>,
    /// Its effective result row, or [`NONE`].
    pub result: Vec<u32>,
    /// Positive kept against a later non-positive result.
    pub positive_kept: Vec<bool>,
    /// Result rows per tube: `result_rows[result_start[t]..result_start[t + 1]]`.
    pub result_start: Vec<u32>,
    /// Result rows sorted by tube, then time.
    pub result_rows: Vec<u32>,
}

impl Tubes {
    /// Number of tubes.
    pub fn len(&self) -> usize {
        self.row.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.row.is_empty()
    }
}

/// What the status rules need of each result row.
#[derive(Default)]
pub struct ResultFacts {
    /// Outcome of each result row.
    pub outcome: Vec<Outcome>,
    /// Ct ORF1ab.
    pub ct_orf1ab: Vec<Option<f32>>,
    /// Ct N.
    pub ct_n: Vec<Option<f32>>,
    /// Report time.
    pub reported_at: Vec<Millis>,
    /// The tube of each result row, or [`NONE`] for plate controls (not tubes).
    pub tube: Vec<u32>,
    /// Results that do not count: their plate's controls failed.
    pub void: Vec<bool>,
}

impl ResultFacts {
    /// A result row's two Ct values.
    pub fn cts(&self, row: usize) -> (Option<f32>, Option<f32>) {
        (self.ct_orf1ab[row], self.ct_n[row])
    }
}

/// A person's decided status.
#[derive(Debug, Clone, Copy)]
pub struct PersonStatus {
    /// Their status.
    pub status: Status,
    /// The collection row (their membership of a tube) that decided it.
    pub row: u32,
}

/// Counts a round's status report shows.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Counts {
    /// Distinct persons.
    pub persons: u64,
    /// Persons by status, in [`Status::ALL`] order.
    pub by_status: Vec<(Status, u64)>,
    /// Tubes.
    pub tubes: u64,
    /// Pool tubes.
    pub pool_tubes: u64,
    /// Single tubes.
    pub single_tubes: u64,
    /// Tubes with a result.
    pub tubes_with_result: u64,
    /// Tubes by effective result.
    pub tubes_by_result: Vec<(Outcome, u64)>,
    /// Pools holding more persons than their capacity.
    pub overfull_pools: u64,
    /// Positive tubes kept against a later non-positive result (flagged for review).
    pub positives_kept: u64,
    /// Tubes whose only results came from failed plates: the lab must run them again.
    pub tubes_to_rerun: u64,
}

/// A round decided from the sidecar indexes: tubes, results and statuses, no text.
pub struct Statuses {
    /// The round's name.
    pub name: String,
    /// The store's time zone, for printing.
    pub zone: Offset,
    /// Tube of each collection row.
    pub tube_of_row: Vec<u32>,
    /// Collection time of each collection row.
    pub collected_at: Vec<Millis>,
    /// The round's tubes.
    pub tubes: Tubes,
    /// Facts of each result row.
    pub results: ResultFacts,
    /// Every person: those with one row in row order, then the others.
    pub persons: Vec<PersonStatus>,
}

impl Statuses {
    /// Decides `round` from the store's indexes.
    pub fn load(store: &Store, round: &str) -> Result<Statuses> {
        store.require_round(round)?;
        let index = store.index_of(Some(round))?;
        let rid = index.round_id(round).unwrap_or(0);
        let (segs, rsegs) = (index.collections_of(rid), index.results_of(rid));
        let (n_rows, n_results) = index.round_rows(rid);
        let (collected_at, numbered) = rayon::join(
            || load::times(store, round, BatchKind::Collections, "collected_at"),
            || number_tubes(&segs, n_rows),
        );
        let collected_at = collected_at?;
        let (mut tubes, tube_of_row, keys) = numbered;
        if collected_at.len() != n_rows || tube_of_row.contains(&NONE) {
            return Err(Error::damaged(
                store.root(),
                format!("round {round}: the segment files and their indexes disagree on the rows"),
            ));
        }
        let mut results = read_results(&rsegs, &keys, n_results);
        drop(keys);
        results.void = plate_qc::void_results(store, round, n_results)?;
        effective_results(&results, &mut tubes);
        let persons = decide_persons(&segs, &tube_of_row, &collected_at, &tubes, &results);
        Ok(Statuses {
            name: round.to_owned(),
            zone: store.zone(),
            tube_of_row,
            collected_at,
            tubes,
            results,
            persons,
        })
    }

    /// The effective result row of the tube of collection row `row`, or [`NONE`].
    pub fn result_of_row(&self, row: u32) -> u32 {
        self.tubes.result[self.tube_of_row[row as usize] as usize]
    }

    /// A collection row as the status rules see it.
    pub fn membership(&self, row: u32) -> Membership {
        membership(
            &self.tube_of_row,
            &self.collected_at,
            &self.tubes,
            &self.results,
            row,
        )
    }

    /// The counts the status report shows.
    pub fn counts(&self) -> Counts {
        let mut by = [0u64; 6];
        for p in &self.persons {
            by[p.status.index()] += 1;
        }
        let mut by_result = [0u64; 4];
        let mut with_result = 0;
        for &r in &self.tubes.result {
            if r != NONE {
                with_result += 1;
                by_result[usize::from(self.results.outcome[r as usize].code())] += 1;
            }
        }
        let t = &self.tubes;
        let pools = t.mode.iter().filter(|&&m| m == Mode::Pool).count() as u64;
        let overfull = (0..t.len())
            .filter(|&i| t.members[i] > u32::from(t.capacity[i]))
            .count() as u64;
        Counts {
            persons: self.persons.len() as u64,
            by_status: Status::ALL.iter().map(|s| (*s, by[s.index()])).collect(),
            tubes: t.len() as u64,
            pool_tubes: pools,
            single_tubes: t.len() as u64 - pools,
            tubes_with_result: with_result,
            tubes_by_result: [
                Outcome::Positive,
                Outcome::Inconclusive,
                Outcome::Invalid,
                Outcome::Negative,
            ]
            .iter()
            .map(|o| (*o, by_result[usize::from(o.code())]))
            .collect(),
            overfull_pools: overfull,
            positives_kept: t.positive_kept.iter().filter(|&&k| k).count() as u64,
            tubes_to_rerun: self.tubes_to_rerun().len() as u64,
        }
    }

    /// Tubes with a void result and no result that counts, in tube order, each with its
    /// latest void result row.
    pub fn tubes_to_rerun(&self) -> Vec<(u32, u32)> {
        let r = &self.results;
        let mut tubes: Vec<(u32, u32)> = (0..r.void.len())
            .filter(|&row| {
                let t = r.tube[row];
                r.void[row] && t != NONE && self.tubes.result[t as usize] == NONE
            })
            .map(|row| (r.tube[row], u32::try_from(row).unwrap_or(NONE)))
            .collect();
        // Latest report first within a tube, then one row per tube.
        tubes.sort_unstable_by_key(|&(t, row)| (t, std::cmp::Reverse(r.reported_at[row as usize])));
        tubes.dedup_by_key(|&mut (t, _)| t);
        tubes
    }
}

fn membership(
    tube_of_row: &[u32],
    collected_at: &[Millis],
    tubes: &Tubes,
    results: &ResultFacts,
    row: u32,
) -> Membership {
    let row = row as usize;
    let tube = tube_of_row[row] as usize;
    let res = tubes.result[tube];
    let (result, ct) = if res == NONE {
        (None, None)
    } else {
        let ct = match results.cts(res as usize) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (Some(results.outcome[res as usize]), ct)
    };
    Membership {
        mode: tubes.mode[tube],
        at: collected_at[row],
        result,
        ct,
    }
}

fn key_of(r: &[u8]) -> TubeKey {
    let mut k = [0u8; index::KEY];
    k.copy_from_slice(&r[..index::KEY]);
    k
}

/// Numbers the round's tubes in barcode order by merging the segments' sorted tube
/// indexes; returns the tubes, the tube of each row, and the sorted barcode keys.
fn number_tubes(segs: &[&CollectionIndex], n_rows: usize) -> (Tubes, Vec<u32>, Vec<TubeKey>) {
    let mut tubes = Tubes::default();
    let mut keys: Vec<TubeKey> = Vec::new();
    let mut tube_of_row = vec![NONE; n_rows];
    let mut heap: BinaryHeap<Reverse<(TubeKey, usize, usize)>> = segs
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.tubes.is_empty())
        .map(|(k, s)| Reverse((key_of(s.tubes.record(0)), k, 0)))
        .collect();
    while let Some(Reverse((key, s, i))) = heap.pop() {
        let seg = &segs[s];
        let r = seg.tubes.record(i);
        if keys.last() != Some(&key) {
            keys.push(key);
            tubes.row.push(NONE);
            tubes.members.push(0);
            tubes
                .mode
                .push(Mode::from_code(r[40]).unwrap_or(Mode::Pool));
            tubes.capacity.push(r[41]);
        }
        let id = u32::try_from(keys.len() - 1).unwrap_or(NONE);
        let first = seg.base.saturating_add(index::u32_at(r, 32));
        let rows = index::u32_at(r, 36);
        let t = id as usize;
        tubes.members[t] += rows;
        tubes.row[t] = tubes.row[t].min(first);
        let (a, b) = (first as usize, (first as usize + rows as usize).min(n_rows));
        if a < b {
            tube_of_row[a..b].fill(id);
        }
        if i + 1 < seg.tubes.len() {
            heap.push(Reverse((key_of(seg.tubes.record(i + 1)), s, i + 1)));
        }
    }
    (tubes, tube_of_row, keys)
}

/// Reads every result row's facts from the result indexes and finds its tube by a
/// merge join on the sorted barcodes.
fn read_results(rsegs: &[&ResultIndex], keys: &[TubeKey], n: usize) -> ResultFacts {
    let mut facts = ResultFacts {
        outcome: vec![Outcome::Invalid; n],
        ct_orf1ab: vec![None; n],
        ct_n: vec![None; n],
        reported_at: vec![0; n],
        tube: vec![NONE; n],
        void: Vec::new(),
    };
    let result_tube = &mut facts.tube;
    for seg in rsegs {
        let mut j = 0;
        for i in 0..seg.tubes.len() {
            let r = seg.tubes.record(i);
            let key = &r[..index::KEY];
            while j < keys.len() && keys[j].as_slice() < key {
                j += 1;
            }
            let row = seg.base.saturating_add(index::u32_at(r, 32)) as usize;
            if row >= n {
                continue;
            }
            if j < keys.len() && keys[j].as_slice() == key {
                result_tube[row] = u32::try_from(j).unwrap_or(NONE);
            }
            facts.outcome[row] = Outcome::from_code(r[36]).unwrap_or(Outcome::Invalid);
            facts.reported_at[row] = index::i64_at(r, 40);
            facts.ct_orf1ab[row] = index::ct_at(r, 48);
            facts.ct_n[row] = index::ct_at(r, 52);
        }
    }
    facts
}

/// The effective result among one tube's results, given in `reported_at` order (ties:
/// later batches last): the latest wins, except that a positive is never cleared by a
/// later non-positive result. Returns its position and whether a positive was kept
/// against a later result (to flag for review).
pub fn effective(outcomes: impl IntoIterator<Item = Outcome>) -> (Option<usize>, bool) {
    let mut current: Option<(usize, Outcome)> = None;
    let mut kept = false;
    for (i, o) in outcomes.into_iter().enumerate() {
        match current {
            Some((_, Outcome::Positive)) if o != Outcome::Positive => kept = true,
            _ => current = Some((i, o)),
        }
    }
    (current.map(|(i, _)| i), kept)
}

fn effective_results(r: &ResultFacts, tubes: &mut Tubes) {
    let n = tubes.len();
    let result_tube = &r.tube;
    let any_void = r.void.contains(&true);
    let mut order: Vec<u32> = (0..result_tube.len())
        .filter(|&i| result_tube[i] != NONE)
        .map(|i| u32::try_from(i).unwrap_or(NONE))
        .collect();
    // Later rows come from later batches: at equal times the later batch wins.
    order.par_sort_unstable_by_key(|&i| (result_tube[i as usize], r.reported_at[i as usize], i));
    tubes.result = vec![NONE; n];
    tubes.positive_kept = vec![false; n];
    tubes.result_start = Vec::with_capacity(n + 1);
    let mut at = 0;
    for t in 0..n {
        tubes.result_start.push(u32::try_from(at).unwrap_or(NONE));
        let start = at;
        while at < order.len() && result_tube[order[at] as usize] as usize == t {
            at += 1;
        }
        let rows = &order[start..at];
        let (winner, kept) = if any_void {
            // Results on a failed plate stay in the tube's history but do not count.
            let counted = || rows.iter().filter(|&&row| !r.void[row as usize]);
            let (w, kept) = effective(counted().map(|&row| r.outcome[row as usize]));
            (w.and_then(|i| counted().nth(i)).copied(), kept)
        } else {
            let (w, kept) = effective(rows.iter().map(|&row| r.outcome[row as usize]));
            (w.map(|i| rows[i]), kept)
        };
        tubes.result[t] = winner.unwrap_or(NONE);
        tubes.positive_kept[t] = kept;
    }
    tubes.result_start.push(u32::try_from(at).unwrap_or(NONE));
    tubes.result_rows = order;
}

/// The collection rows of each person with more than one row in `round` (a person
/// with one row cannot be retested or flagged against another tube of theirs). Rows of
/// a person are ascending; persons come in person-hash order.
pub fn person_groups(store: &Store, round: &str) -> Result<Vec<Vec<u32>>> {
    store.require_round(round)?;
    let index = store.index_of(Some(round))?;
    let rid = index.round_id(round).unwrap_or(0);
    let segs = index.collections_of(rid);
    let (n_rows, _) = index.round_rows(rid);
    Ok((0..HASH_RANGES)
        .into_par_iter()
        .map(|r| multi_row_persons(&segs, r, n_rows))
        .flatten()
        .map(|mut rows| {
            rows.sort_unstable();
            rows
        })
        .collect())
}

/// Ranges of the person-hash space decided in parallel.
const HASH_RANGES: u32 = 256;

/// The rows of each person who has more than one row in the round, found by merging
/// the segments' sorted person indexes over one range of the hash space.
fn multi_row_persons(segs: &[&CollectionIndex], range: u32, n_rows: usize) -> Vec<Vec<u32>> {
    let bound = |r: u32| -> Option<[u8; 16]> {
        (r < HASH_RANGES).then(|| (u128::from(r) << 120).to_be_bytes())
    };
    let (lo, hi) = (bound(range).unwrap_or([0; 16]), bound(range + 1));
    let spans: Vec<(usize, usize, usize)> = segs
        .iter()
        .enumerate()
        .map(|(k, seg)| {
            let start = seg.persons.lower_bound(&lo);
            let end = hi.map_or(seg.persons.len(), |h| seg.persons.lower_bound(&h));
            (k, start, end)
        })
        .filter(|&(_, start, end)| start < end)
        .collect();
    let entry = |k: usize, i: usize| {
        let seg = &segs[k];
        (
            seg.persons.person(i),
            seg.base.saturating_add(seg.persons.person_row(i)),
        )
    };
    let mut groups = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    let mut current: Option<u128> = None;
    let mut take = |hash: u128, row: u32, groups: &mut Vec<Vec<u32>>| {
        if current != Some(hash) {
            if group.len() > 1 {
                groups.push(std::mem::take(&mut group));
            }
            group.clear();
            current = Some(hash);
        }
        if (row as usize) < n_rows {
            group.push(row);
        }
    };
    if let [(k, start, end)] = spans[..] {
        // One segment covers the range (the usual case): a straight scan.
        for i in start..end {
            let (hash, row) = entry(k, i);
            take(hash, row, &mut groups);
        }
    } else {
        let mut heap: BinaryHeap<Reverse<(u128, u32, usize, usize)>> = spans
            .iter()
            .map(|&(k, start, _)| {
                let (hash, row) = entry(k, start);
                Reverse((hash, row, k, start))
            })
            .collect();
        let ends: Vec<usize> = segs
            .iter()
            .enumerate()
            .map(|(k, _)| spans.iter().find(|s| s.0 == k).map_or(0, |s| s.2))
            .collect();
        while let Some(Reverse((hash, row, k, i))) = heap.pop() {
            take(hash, row, &mut groups);
            if i + 1 < ends[k] {
                let (h, r) = entry(k, i + 1);
                heap.push(Reverse((h, r, k, i + 1)));
            }
        }
    }
    take(u128::MAX, u32::MAX, &mut groups);
    if group.len() > 1 {
        groups.push(group);
    }
    groups
}

/// Decides every person. Most persons have one row: they are decided in row order,
/// where the arrays are read front to back; only persons with several rows (found by
/// merging the person indexes) are decided as groups. Deciding everyone in hash order
/// instead made the 25 M-row pass bound by cache misses.
fn decide_persons(
    segs: &[&CollectionIndex],
    tube_of_row: &[u32],
    collected_at: &[Millis],
    tubes: &Tubes,
    results: &ResultFacts,
) -> Vec<PersonStatus> {
    let n = tube_of_row.len();
    let groups: Vec<Vec<u32>> = (0..HASH_RANGES)
        .into_par_iter()
        .map(|r| multi_row_persons(segs, r, n))
        .flatten()
        .collect();
    let mut grouped = vec![0u64; n.div_ceil(64)];
    for &row in groups.iter().flatten() {
        grouped[row as usize / 64] |= 1 << (row % 64);
    }
    let member = |row: u32| membership(tube_of_row, collected_at, tubes, results, row);
    let mut persons: Vec<PersonStatus> = (0..n)
        .into_par_iter()
        .filter(|&row| grouped[row / 64] & (1 << (row % 64)) == 0)
        .map(|row| {
            let row = u32::try_from(row).unwrap_or(NONE);
            PersonStatus {
                status: rules::decide(&[member(row)]).0,
                row,
            }
        })
        .collect();
    persons.par_extend(groups.par_iter().map(|rows| {
        let tubes: Vec<Membership> = rows.iter().map(|&row| member(row)).collect();
        let (status, i) = rules::decide(&tubes);
        PersonStatus {
            status,
            row: rows[i],
        }
    }));
    persons
}

/// A loaded round: the decided [`Statuses`] (reachable through `Deref`) plus every text
/// column, for reports that show every row (person reports, exports, the planner's
/// measured mode).
pub struct Round {
    /// Tubes, results and statuses.
    pub status: Statuses,
    /// Collection rows with their text.
    pub collections: Collections,
    /// Result rows with their text.
    pub results: Results,
}

impl std::ops::Deref for Round {
    type Target = Statuses;

    fn deref(&self) -> &Statuses {
        &self.status
    }
}

impl Round {
    /// Loads `round` from the store, decides every status, and reads every text column.
    pub fn load(store: &Store, round: &str) -> Result<Round> {
        let status = Statuses::load(store, round)?;
        let (collections, results) = rayon::join(
            || load::collections(store, round),
            || load::results(store, round),
        );
        let (collections, results) = (collections?, results?);
        if collections.person.len() != status.tube_of_row.len()
            || results.outcome.len() != status.results.outcome.len()
        {
            return Err(Error::damaged(
                store.root(),
                format!("round {round}: the segment files and their indexes disagree on the rows"),
            ));
        }
        Ok(Round {
            status,
            collections,
            results,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    #[test]
    fn latest_result_wins_but_a_positive_is_never_cleared() {
        assert_eq!(effective([Invalid, Negative]), (Some(1), false));
        assert_eq!(effective([Negative, Positive]), (Some(1), false));
        assert_eq!(effective([Positive, Negative]), (Some(0), true));
        assert_eq!(
            effective([Positive, Inconclusive, Positive]),
            (Some(2), true)
        );
        assert_eq!(effective(std::iter::empty()), (None, false));
    }
}
