//! The tracker: a round's tubes, their effective results, and every person's status.
//!
//! [`Round::load`] reads the round's segments and decides:
//! - each tube's **effective result**: its results ordered by `reported_at`, the latest
//!   wins, except that a positive is never cleared by a later non-positive result (the
//!   tube stays positive and is flagged for review);
//! - each person's **status** by the rules in [`rules`], from all their tubes.
//!
//! Persons are grouped by sorting row numbers on a 64-bit hash of the id (ties broken
//! by the id itself, so a hash collision never merges two people) instead of building
//! a map of strings: at 25 million rows that is the difference between seconds and
//! tens of seconds.

pub mod load;
pub mod rules;

use std::collections::HashMap;

use arrow_array::Array;
use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::{Xxh3Builder, xxh3_64};

pub use load::{Collections, Results};
use rules::Membership;

use crate::Result;
use crate::model::{Mode, Outcome, Status};
use crate::store::Store;
use crate::time::Offset;

/// Marks a row or tube with nothing to point to.
pub const NONE: u32 = u32::MAX;

/// A loaded round with every tube's and person's state decided.
pub struct Round {
    /// The round's name.
    pub name: String,
    /// The store's time zone, for printing.
    pub zone: Offset,
    /// Collection rows.
    pub collections: Collections,
    /// Result rows.
    pub results: Results,
    /// Tube of each collection row.
    pub tube_of_row: Vec<u32>,
    /// The round's tubes.
    pub tubes: Tubes,
    /// Every person, in order of their id's hash.
    pub persons: Vec<PersonStatus>,
}

/// Per-tube columns, indexed by tube number.
#[derive(Default)]
pub struct Tubes {
    /// A collection row of the tube (its first in the round).
    pub row: Vec<u32>,
    /// Persons recorded in it.
    pub members: Vec<u32>,
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
}

impl Round {
    /// Loads `round` from the store and decides every status.
    pub fn load(store: &Store, round: &str) -> Result<Round> {
        store.require_round(round)?;
        let (collections, results) = rayon::join(
            || load::collections(store, round),
            || load::results(store, round),
        );
        Ok(Round::decide(
            round.to_owned(),
            store.zone(),
            collections?,
            results?,
        ))
    }

    /// Decides tubes and persons from loaded rows.
    pub fn decide(name: String, zone: Offset, collections: Collections, results: Results) -> Round {
        let (tube_of_row, mut tubes, result_tube) = number_tubes(&collections, &results);
        effective_results(&results, &result_tube, &mut tubes);
        let persons = decide_persons(&collections, &results, &tube_of_row, &tubes);
        Round {
            name,
            zone,
            collections,
            results,
            tube_of_row,
            tubes,
            persons,
        }
    }

    /// The person id of a collection row.
    pub fn person(&self, row: u32) -> &str {
        self.collections.person.value(row as usize)
    }

    /// The tube barcode of a collection row.
    pub fn tube(&self, row: u32) -> &str {
        self.collections.tube.value(row as usize)
    }

    /// The effective result row of the tube of collection row `row`, or [`NONE`].
    pub fn result_of_row(&self, row: u32) -> u32 {
        self.tubes.result[self.tube_of_row[row as usize] as usize]
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
        let pools = self
            .tubes
            .row
            .iter()
            .filter(|&&r| self.collections.mode[r as usize] == Mode::Pool)
            .count() as u64;
        let overfull = (0..self.tubes.len())
            .filter(|&t| {
                let r = self.tubes.row[t] as usize;
                self.tubes.members[t] > u32::from(self.collections.capacity[r])
            })
            .count() as u64;
        Counts {
            persons: self.persons.len() as u64,
            by_status: Status::ALL.iter().map(|s| (*s, by[s.index()])).collect(),
            tubes: self.tubes.len() as u64,
            pool_tubes: pools,
            single_tubes: self.tubes.len() as u64 - pools,
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
            positives_kept: self.tubes.positive_kept.iter().filter(|&&k| k).count() as u64,
        }
    }

    /// Every collection row of one person, found by scanning the round.
    pub fn rows_of(&self, person: &str) -> Vec<u32> {
        let col = &self.collections.person;
        (0..col.len())
            .into_par_iter()
            .filter(|&i| col.value(i) == person)
            .map(|i| u32::try_from(i).unwrap_or(NONE))
            .collect()
    }

    /// The status of one person, decided from their rows (see [`Round::rows_of`]).
    pub fn status_of(&self, rows: &[u32]) -> Option<PersonStatus> {
        if rows.is_empty() {
            return None;
        }
        let tubes: Vec<Membership> = rows.iter().map(|&r| self.membership(r)).collect();
        let (status, i) = rules::decide(&tubes);
        Some(PersonStatus {
            status,
            row: rows[i],
        })
    }

    fn membership(&self, row: u32) -> Membership {
        membership(
            &self.collections,
            &self.results,
            &self.tube_of_row,
            &self.tubes,
            row,
        )
    }
}

fn membership(
    c: &Collections,
    r: &Results,
    tube_of_row: &[u32],
    tubes: &Tubes,
    row: u32,
) -> Membership {
    let row = row as usize;
    let res = tubes.result[tube_of_row[row] as usize];
    let (result, ct) = if res == NONE {
        (None, None)
    } else {
        let (a, b) = r.cts(res as usize);
        let ct = match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (Some(r.outcome[res as usize]), ct)
    };
    Membership {
        mode: c.mode[row],
        at: c.collected_at[row],
        result,
        ct,
    }
}

fn number_tubes(c: &Collections, r: &Results) -> (Vec<u32>, Tubes, Vec<u32>) {
    let mut ids: HashMap<&str, u32, Xxh3Builder> =
        HashMap::with_capacity_and_hasher(c.tube.len() / 4 + 16, Xxh3Builder::new());
    let mut tubes = Tubes::default();
    let mut tube_of_row = Vec::with_capacity(c.tube.len());
    for (row, tube) in c.tube.iter().enumerate() {
        let tube = tube.unwrap_or_default();
        let next = u32::try_from(tubes.row.len()).unwrap_or(NONE);
        let id = *ids.entry(tube).or_insert(next);
        if id == next {
            tubes.row.push(u32::try_from(row).unwrap_or(NONE));
            tubes.members.push(0);
        }
        tubes.members[id as usize] += 1;
        tube_of_row.push(id);
    }
    let result_tube = r
        .tube
        .iter()
        .map(|t| t.and_then(|t| ids.get(t).copied()).unwrap_or(NONE))
        .collect();
    (tube_of_row, tubes, result_tube)
}

fn effective_results(r: &Results, result_tube: &[u32], tubes: &mut Tubes) {
    let n = tubes.len();
    let mut order: Vec<u32> = (0..r.len())
        .filter(|&i| result_tube[i] != NONE)
        .map(|i| u32::try_from(i).unwrap_or(NONE))
        .collect();
    order.par_sort_unstable_by_key(|&i| {
        let i = i as usize;
        (result_tube[i], r.reported_at[i], r.batch[i], r.line[i])
    });
    tubes.result = vec![NONE; n];
    tubes.positive_kept = vec![false; n];
    tubes.result_start = Vec::with_capacity(n + 1);
    let mut at = 0;
    for t in 0..n {
        tubes.result_start.push(u32::try_from(at).unwrap_or(NONE));
        let mut current = NONE;
        while at < order.len() && result_tube[order[at] as usize] as usize == t {
            let row = order[at];
            let keep_positive = current != NONE
                && r.outcome[current as usize] == Outcome::Positive
                && r.outcome[row as usize] != Outcome::Positive;
            if keep_positive {
                tubes.positive_kept[t] = true;
            } else {
                current = row;
            }
            at += 1;
        }
        tubes.result[t] = current;
    }
    tubes.result_start.push(u32::try_from(at).unwrap_or(NONE));
    tubes.result_rows = order;
}

fn decide_persons(
    c: &Collections,
    r: &Results,
    tube_of_row: &[u32],
    tubes: &Tubes,
) -> Vec<PersonStatus> {
    let n = c.person.len();
    let hashes: Vec<u64> = (0..n)
        .into_par_iter()
        .map(|i| xxh3_64(c.person.value(i).as_bytes()))
        .collect();
    let mut order: Vec<u32> = (0..n).map(|i| u32::try_from(i).unwrap_or(NONE)).collect();
    order.par_sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        hashes[a]
            .cmp(&hashes[b])
            .then_with(|| c.person.value(a).cmp(c.person.value(b)))
            .then(c.collected_at[a].cmp(&c.collected_at[b]))
            .then(a.cmp(&b))
    });
    let same = |a: u32, b: u32| {
        let (a, b) = (a as usize, b as usize);
        hashes[a] == hashes[b] && c.person.value(a) == c.person.value(b)
    };
    let mut starts = Vec::with_capacity(n / 2 + 1);
    for i in 0..order.len() {
        if i == 0 || !same(order[i - 1], order[i]) {
            starts.push(i);
        }
    }
    starts.push(order.len());
    starts
        .par_windows(2)
        .map(|w| {
            let rows = &order[w[0]..w[1]];
            let mut buf = [Membership {
                mode: Mode::Pool,
                at: 0,
                result: None,
                ct: None,
            }; 8];
            let (status, i) = if rows.len() <= buf.len() {
                for (slot, &row) in buf.iter_mut().zip(rows) {
                    *slot = membership(c, r, tube_of_row, tubes, row);
                }
                rules::decide(&buf[..rows.len()])
            } else {
                let all: Vec<_> = rows
                    .iter()
                    .map(|&row| membership(c, r, tube_of_row, tubes, row))
                    .collect();
                rules::decide(&all)
            };
            PersonStatus {
                status,
                row: rows[i],
            }
        })
        .collect()
}
