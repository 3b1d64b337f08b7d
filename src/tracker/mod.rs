//! The tracker: a round's tubes, their effective results, and every person's status.
//!
//! [`Decided::load`] decides the whole round from the store's sidecar indexes, without
//! decoding any text and without an array of the round's rows:
//! - tubes are numbered by merging the segments' sorted tube indexes, so a tube whose
//!   members came in several batches is one tube;
//! - each tube's **effective result** comes from the sorted result indexes: its results
//!   ordered by `reported_at`, the latest wins, except that a positive is never cleared
//!   by a later non-positive result (the tube stays positive and is flagged for review);
//! - persons with several rows are found by merging the segments' sorted person indexes
//!   (128-bit hashes of the ids), in parallel over ranges of the hash space, and
//!   decided by the rules in [`rules`] from all their tubes (their rows' times are the
//!   only Parquet read); everyone else has the status their one tube gives.
//!
//! [`Statuses::load`] adds the tube and collection time of every row and the list of
//! every person, for reports that walk all rows; [`Round::load`] adds the text columns
//! (ids, sites, labs, sources) for reports that show every row; worklists fetch text
//! only for the rows they list.
//!
//! [`Round::load`] adds the text columns (ids, sites, labs, sources) for reports that
//! show every row; worklists fetch text only for the rows they list.
//!
//! Rows are numbered across a round's segments in manifest order: collection row `r`
//! is the `r`th row of the round's collection Parquet files read in that order, and
//! likewise for results.

pub mod plate_qc;
pub mod rules;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use rayon::prelude::*;
use serde::Serialize;

pub use crate::store::read::{Collections, Results};
use rules::Membership;

use crate::model::{Mode, Outcome, Status};
use crate::store::index::{self, TubeKey};
use crate::store::{BatchKind, CollectionIndex, ResultIndex, Store, read};
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
    /// Its mode as deconvolution reads it: a tube holding more than one person is a
    /// pool whatever its rows call it; a tube no row stated a mode for is a pool.
    pub mode: Vec<Mode>,
    /// The first mode any of its rows stated.
    pub stated_mode: Vec<Option<Mode>>,
    /// Persons it may hold: the first stated capacity, else the mode's default.
    pub capacity: Vec<u8>,
    /// Rows disagreed about its mode, capacity or site (flagged for review).
    pub conflict: Vec<bool>,
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
    /// Ct ORF1ab, NaN for none (as the index stores it: half the size of an `Option`).
    pub ct_orf1ab: Vec<f32>,
    /// Ct N, NaN for none.
    pub ct_n: Vec<f32>,
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
        let ct = |v: f32| (!v.is_nan()).then_some(v);
        (ct(self.ct_orf1ab[row]), ct(self.ct_n[row]))
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

/// A round decided from the sidecar indexes alone: tubes, results and every person's
/// status, held per tube rather than per row. A person with one row in the round (all
/// but the retested) has the status [`Decided::single`] gives their tube, so counting
/// statuses or listing one status needs no array of the round's 25 million rows;
/// only persons with several rows are decided one by one.
pub struct Decided {
    /// The round's name.
    pub name: String,
    /// The store's time zone, for printing.
    pub zone: Offset,
    /// Collection rows in the round.
    pub rows: usize,
    /// The round's tubes.
    pub tubes: Tubes,
    /// Facts of each result row.
    pub results: ResultFacts,
    /// The status of a person whose only row in the round is in the tube, by tube.
    pub single: Vec<Status>,
    /// Persons with several rows, in person-hash order.
    pub groups: Vec<PersonStatus>,
    /// Every row of those persons with its tube, by row.
    pub(crate) grouped: Vec<(u32, u32)>,
    /// The tube of each tube-index record, per collections segment in manifest order.
    pub(crate) run_tube: Vec<Vec<u32>>,
}

/// A person on a list: their status, the row that decided it, and its tube.
#[derive(Debug, Clone, Copy)]
pub struct Listed {
    /// Status and deciding row.
    pub person: PersonStatus,
    /// The deciding row's tube.
    pub tube: u32,
}

/// The persons of one status ([`Decided::listed`]) with their tubes' barcodes.
pub struct Listing {
    /// The persons, in no particular order.
    pub persons: Vec<Listed>,
    /// (tube, barcode) of every tube in `persons`, by tube.
    barcodes: Vec<(u32, String)>,
}

impl Listing {
    /// The barcode of a listed tube (empty for another tube).
    pub fn barcode(&self, tube: u32) -> &str {
        self.barcodes
            .binary_search_by_key(&tube, |(t, _)| *t)
            .map_or("", |i| self.barcodes[i].1.as_str())
    }
}

/// The rows of persons with several rows, before their times are known.
struct Undecided {
    decided: Decided,
    groups: Vec<Vec<u32>>,
}

impl Decided {
    /// Decides `round` from the store's indexes, reading from Parquet only the times of
    /// the rows of persons with several rows.
    pub fn load(store: &Store, round: &str) -> Result<Decided> {
        let (parts, parquet_rows) = rayon::join(
            || Decided::from_indexes(store, round, false),
            || read::row_count(store, round, BatchKind::Collections),
        );
        let u = parts?.0;
        // The lists read their rows' text from Parquet: it must hold the rows the
        // indexes number.
        if parquet_rows? != u.decided.rows as u64 {
            return Err(Error::damaged(
                store.root(),
                format!("round {round}: the segment files and their indexes disagree on the rows"),
            ));
        }
        let mut rows: Vec<u32> = u.decided.grouped.iter().map(|&(row, _)| row).collect();
        rows.dedup();
        let at = if rows.is_empty() {
            Vec::new()
        } else {
            let col = read::fetch(
                store,
                round,
                BatchKind::Collections,
                &["collected_at"],
                &rows,
            )?;
            col.first()
                .and_then(|c| {
                    c.as_primitive_opt::<arrow_array::types::TimestampMillisecondType>()
                })
                .map(|a| a.values().to_vec())
                .filter(|v| v.len() == rows.len())
                .ok_or_else(|| {
                    Error::damaged(
                        store.root(),
                        format!("round {round}: the segment files and their indexes disagree on the rows"),
                    )
                })?
        };
        let time = |row: u32| rows.binary_search(&row).map_or(0, |i| at[i]);
        Ok(u.decide_groups(&time))
    }

    /// Everything but the persons with several rows; with `fill`, also the tube of each
    /// row.
    fn from_indexes(store: &Store, round: &str, fill: bool) -> Result<(Undecided, Vec<u32>)> {
        store.require_round(round)?;
        let index = store.index_of(Some(round))?;
        let rid = index.round_id(round).unwrap_or(0);
        let (segs, rsegs) = (index.collections_of(rid), index.results_of(rid));
        let (n_rows, n_results) = index.round_rows(rid);
        let damaged = || {
            Error::damaged(
                store.root(),
                format!("round {round}: the segment files and their indexes disagree on the rows"),
            )
        };
        let (numbered, groups) = rayon::join(
            || number_tubes(&segs, &rsegs, (n_rows, n_results), fill),
            || {
                (0..HASH_RANGES)
                    .into_par_iter()
                    .map(|r| multi_row_persons(&segs, r, n_rows))
                    .collect::<Result<Vec<_>>>()
            },
        );
        let Numbered {
            mut tubes,
            mut results,
            run_tube,
            tube_of_row,
            covered,
        } = numbered?;
        if !covered {
            return Err(damaged());
        }
        let groups: Vec<Vec<u32>> = groups?.into_iter().flatten().collect();
        results.void = plate_qc::void_results(store, round, n_results)?;
        effective_results(&results, &mut tubes);
        let single = (0..tubes.len())
            .map(|t| rules::decide(&[tube_membership(&tubes, &results, t, 0)]).0)
            .collect();
        let mut rows: Vec<u32> = groups.iter().flatten().copied().collect();
        rows.par_sort_unstable();
        let grouped = if rows.is_empty() {
            Vec::new()
        } else if fill {
            rows.iter().map(|&r| (r, tube_of_row[r as usize])).collect()
        } else {
            tubes_of_rows(&segs, &run_tube, &rows)?
        };
        let decided = Decided {
            name: round.to_owned(),
            zone: store.zone(),
            rows: n_rows,
            tubes,
            results,
            single,
            groups: Vec::new(),
            grouped,
            run_tube,
        };
        Ok((Undecided { decided, groups }, tube_of_row))
    }

    /// The tube of a row of a person with several rows.
    fn grouped_tube(&self, row: u32) -> u32 {
        self.grouped
            .binary_search_by_key(&row, |&(r, _)| r)
            .map_or(NONE, |i| self.grouped[i].1)
    }

    /// The counts the status report shows.
    pub fn counts(&self) -> Counts {
        let mut by = [0i64; 6];
        for (t, s) in self.single.iter().enumerate() {
            by[s.index()] += i64::from(self.tubes.members[t]);
        }
        for &(_, t) in &self.grouped {
            if let Some(s) = self.single.get(t as usize) {
                by[s.index()] -= 1;
            }
        }
        for p in &self.groups {
            by[p.status.index()] += 1;
        }
        let persons = self.rows - self.grouped.len() + self.groups.len();
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
            persons: persons as u64,
            by_status: Status::ALL
                .iter()
                .map(|s| (*s, u64::try_from(by[s.index()]).unwrap_or(0)))
                .collect(),
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

    /// Every person of `status`, found from the tube index: the rows of the tubes that
    /// give a one-row person that status, and the persons with several rows decided so.
    pub fn listed(&self, store: &Store, status: Status) -> Result<Listing> {
        let index = store.index_of(Some(&self.name))?;
        let rid = index.round_id(&self.name).unwrap_or(0);
        let segs = index.collections_of(rid);
        let want: Vec<bool> = self.single.iter().map(|&s| s == status).collect();
        let mut persons: Vec<Listed> = self
            .groups
            .iter()
            .filter(|p| p.status == status)
            .map(|&p| Listed {
                person: p,
                tube: self.grouped_tube(p.row),
            })
            .collect();
        let mut named = vec![false; self.tubes.len()];
        for p in &persons {
            if let Some(n) = named.get_mut(p.tube as usize) {
                *n = true;
            }
        }
        let mut barcodes: Vec<(u32, String)> = Vec::new();
        for (seg, run_tube) in segs.iter().zip(&self.run_tube) {
            let mut scan = seg.tubes.scan(0..seg.tubes.len());
            while let Some((i, r)) = scan.record()? {
                let Some(&t) = run_tube.get(i) else { break };
                let (w, n) = (want[t as usize], named[t as usize]);
                if !(w || n) {
                    continue;
                }
                if barcodes.last().is_none_or(|(last, _)| *last != t) {
                    barcodes.push((t, barcode(r)));
                }
                if !w {
                    continue;
                }
                let first = seg.base.saturating_add(index::u32_at(r, 32));
                let end = first
                    .saturating_add(index::u32_at(r, 36))
                    .min(u32::try_from(self.rows).unwrap_or(u32::MAX));
                for row in first..end {
                    if self.grouped.is_empty() || self.grouped_tube(row) == NONE {
                        persons.push(Listed {
                            person: PersonStatus { status, row },
                            tube: t,
                        });
                    }
                }
            }
        }
        barcodes.sort_unstable_by_key(|(t, _)| *t);
        barcodes.dedup_by_key(|(t, _)| *t);
        Ok(Listing { persons, barcodes })
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

impl Undecided {
    /// Decides the persons with several rows, given the collection time of their rows.
    fn decide_groups(self, at: &(dyn Fn(u32) -> Millis + Sync)) -> Decided {
        let Undecided {
            mut decided,
            groups,
        } = self;
        let d = &decided;
        decided.groups = groups
            .par_iter()
            .map(|rows| {
                let tubes: Vec<Membership> = rows
                    .iter()
                    .map(|&row| {
                        let t = d.grouped_tube(row) as usize;
                        tube_membership(&d.tubes, &d.results, t, at(row))
                    })
                    .collect();
                let (status, i) = rules::decide(&tubes);
                PersonStatus {
                    status,
                    row: rows[i],
                }
            })
            .collect();
        decided
    }
}

/// The barcode of a tube-index record (its key without the padding).
fn barcode(r: &[u8]) -> String {
    let key = &r[..index::KEY];
    let n = key.iter().position(|&b| b == 0).unwrap_or(index::KEY);
    String::from_utf8_lossy(&key[..n]).into_owned()
}

/// A round decided from the sidecar indexes, with a value per collection row: the tube
/// and collection time of each row and every person's status. [`Decided`] (reachable
/// through `Deref`) is the lighter load for counts and lists of one status.
pub struct Statuses {
    /// Tubes, results, and statuses by tube.
    pub decided: Decided,
    /// Tube of each collection row.
    pub tube_of_row: Vec<u32>,
    /// Collection time of each collection row.
    pub collected_at: Vec<Millis>,
    /// Every person: those with one row in row order, then the others.
    pub persons: Vec<PersonStatus>,
}

impl std::ops::Deref for Statuses {
    type Target = Decided;

    fn deref(&self) -> &Decided {
        &self.decided
    }
}

impl Statuses {
    /// Decides `round` from the store's indexes.
    pub fn load(store: &Store, round: &str) -> Result<Statuses> {
        let (collected_at, parts) = rayon::join(
            || read::times(store, round, BatchKind::Collections, "collected_at"),
            || Decided::from_indexes(store, round, true),
        );
        let (undecided, tube_of_row) = parts?;
        let collected_at = collected_at?;
        if collected_at.len() != undecided.decided.rows {
            return Err(Error::damaged(
                store.root(),
                format!("round {round}: the segment files and their indexes disagree on the rows"),
            ));
        }
        let decided = undecided.decide_groups(&|row| collected_at[row as usize]);
        let grouped = &decided.grouped;
        let mut persons: Vec<PersonStatus> = if grouped.is_empty() {
            tube_of_row
                .par_iter()
                .enumerate()
                .map(|(row, &t)| PersonStatus {
                    status: decided.single[t as usize],
                    row: u32::try_from(row).unwrap_or(NONE),
                })
                .collect()
        } else {
            let n = tube_of_row.len();
            let mut bits = vec![0u64; n.div_ceil(64)];
            for &(row, _) in grouped {
                bits[row as usize / 64] |= 1 << (row % 64);
            }
            (0..n)
                .into_par_iter()
                .filter(|&row| bits[row / 64] & (1 << (row % 64)) == 0)
                .map(|row| PersonStatus {
                    status: decided.single[tube_of_row[row] as usize],
                    row: u32::try_from(row).unwrap_or(NONE),
                })
                .collect()
        };
        persons.extend_from_slice(&decided.groups);
        Ok(Statuses {
            decided,
            tube_of_row,
            collected_at,
            persons,
        })
    }

    /// The effective result row of the tube of collection row `row`, or [`NONE`].
    pub fn result_of_row(&self, row: u32) -> u32 {
        self.tubes.result[self.tube_of_row[row as usize] as usize]
    }

    /// A collection row as the status rules see it.
    pub fn membership(&self, row: u32) -> Membership {
        let t = self.tube_of_row[row as usize] as usize;
        tube_membership(
            &self.tubes,
            &self.results,
            t,
            self.collected_at[row as usize],
        )
    }
}

/// A row in tube `tube`, collected at `at`, as the status rules see it.
fn tube_membership(tubes: &Tubes, results: &ResultFacts, tube: usize, at: Millis) -> Membership {
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
        at,
        result,
        ct,
    }
}

fn key_of(r: &[u8]) -> TubeKey {
    let mut k = [0u8; index::KEY];
    k.copy_from_slice(&r[..index::KEY]);
    k
}

/// What numbering the tubes gives.
struct Numbered {
    tubes: Tubes,
    /// Facts of each result row, with its tube.
    results: ResultFacts,
    /// The tube of each tube-index record, per segment.
    run_tube: Vec<Vec<u32>>,
    /// The tube of each row, when asked for.
    tube_of_row: Vec<u32>,
    /// Whether the records cover every row.
    covered: bool,
}

/// Numbers the round's tubes in barcode order by merging the segments' sorted tube
/// indexes, and reads every result row's facts from the result indexes, finding its
/// tube in the same merge: a result record comes after the tube records of its key,
/// so its tube is the last one numbered if the keys match. Nothing per tube beyond
/// the last key is kept for the join (the barcodes of 3.6 M tubes took 115 MB).
fn number_tubes(
    segs: &[&CollectionIndex],
    rsegs: &[&ResultIndex],
    (n_rows, n_results): (usize, usize),
    fill: bool,
) -> Result<Numbered> {
    // Records bound the tubes from above. Reserving that much costs nothing untouched,
    // while growing by doubling copies and holds up to twice the final size.
    let records: usize = segs.iter().map(|s| s.tubes.len()).sum();
    let mut tubes = Tubes {
        row: Vec::with_capacity(records),
        members: Vec::with_capacity(records),
        ..Tubes::default()
    };
    let mut meta: Vec<index::TubeMeta> = Vec::with_capacity(records);
    let mut facts = ResultFacts {
        outcome: vec![Outcome::Invalid; n_results],
        ct_orf1ab: vec![f32::NAN; n_results],
        ct_n: vec![f32::NAN; n_results],
        reported_at: vec![0; n_results],
        tube: vec![NONE; n_results],
        void: Vec::new(),
    };
    let mut last: Option<TubeKey> = None;
    let mut tube_of_row = if fill { vec![NONE; n_rows] } else { Vec::new() };
    // Rows the records cover: a row no record names means the store is damaged.
    let mut seen = vec![0u64; n_rows.div_ceil(64)];
    let mut run_tube: Vec<Vec<u32>> = segs
        .iter()
        .map(|s| Vec::with_capacity(s.tubes.len()))
        .collect();
    let mut visit_tube = |s: usize, r: &[u8]| {
        let key = &r[..index::KEY];
        if last.is_none_or(|k| key_cmp(&k, key, index::KEY).is_ne()) {
            last = Some(key_of(r));
            tubes.row.push(NONE);
            tubes.members.push(0);
            meta.push(index::TubeMeta::of_record(r));
        } else if let Some(m) = meta.last_mut() {
            // A later batch's record: fills in what earlier ones had not stated.
            m.settle(index::TubeMeta::of_record(r));
        }
        let id = u32::try_from(tubes.row.len() - 1).unwrap_or(NONE);
        run_tube[s].push(id);
        let first = segs[s].base.saturating_add(index::u32_at(r, 32));
        let rows = index::u32_at(r, 36);
        let t = id as usize;
        tubes.members[t] += rows;
        tubes.row[t] = tubes.row[t].min(first);
        let (a, b) = (first as usize, (first as usize + rows as usize).min(n_rows));
        if a < b {
            if fill {
                tube_of_row[a..b].fill(id);
            }
            set_bits(&mut seen, a, b);
        }
        (last, tubes.row.len())
    };
    let visit_result =
        |facts: &mut ResultFacts, s: usize, r: &[u8], last: (Option<TubeKey>, usize)| {
            let row = rsegs[s].base.saturating_add(index::u32_at(r, 32)) as usize;
            if row >= n_results {
                return;
            }
            if let (Some(k), n) = last
                && k.as_slice() == &r[..index::KEY]
            {
                facts.tube[row] = u32::try_from(n - 1).unwrap_or(NONE);
            }
            facts.outcome[row] = Outcome::from_code(r[36]).unwrap_or(Outcome::Invalid);
            facts.reported_at[row] = index::i64_at(r, 40);
            facts.ct_orf1ab[row] = index::ct_at(r, 48).unwrap_or(f32::NAN);
            facts.ct_n[row] = index::ct_at(r, 52).unwrap_or(f32::NAN);
        };
    // Equal keys come out tubes first, then segment by segment in manifest order.
    let mut scans: Vec<index::Scan<'_>> = segs
        .iter()
        .map(|s| s.tubes.scan(0..s.tubes.len()))
        .chain(rsegs.iter().map(|s| s.tubes.scan(0..s.tubes.len())))
        .collect();
    let n_tube_scans = segs.len();
    let mut at = (None, 0);
    merge_scans(&mut scans, index::KEY, |i, r| {
        if i < n_tube_scans {
            at = visit_tube(i, r);
        } else {
            visit_result(&mut facts, i - n_tube_scans, r, at);
        }
    })?;
    drop(scans);
    settle_tubes(&mut tubes, &meta);
    let covered = (0..n_rows / 64).all(|w| seen[w] == u64::MAX)
        && (n_rows.is_multiple_of(64) || seen[n_rows / 64] == (1u64 << (n_rows % 64)) - 1);
    Ok(Numbered {
        tubes,
        results: facts,
        run_tube,
        tube_of_row,
        covered,
    })
}

/// Sets each tube's mode and capacity as the rules read them from its settled
/// metadata and member count. A tube holding more than one person is deconvoluted as
/// a pool whatever its rows call it: its positive recalls everyone in it and makes
/// no one positive, as no one of them was tested alone.
fn settle_tubes(tubes: &mut Tubes, meta: &[index::TubeMeta]) {
    tubes.stated_mode = meta.iter().map(|m| m.mode).collect();
    tubes.conflict = meta.iter().map(|m| m.conflict).collect();
    tubes.capacity = meta.iter().map(|m| m.effective_capacity()).collect();
    tubes.mode = meta
        .iter()
        .zip(&tubes.members)
        .map(|(m, &members)| m.deconvolution_mode(members))
        .collect();
}

/// Compares the first `key` bytes (a multiple of 8) of two records as big-endian
/// words: the merges compare a key or two per record, and a `memcmp` call per
/// comparison was a quarter of a merge's time.
fn key_cmp(a: &[u8], b: &[u8], key: usize) -> std::cmp::Ordering {
    let word = |x: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&x[i..i + 8]);
        u64::from_be_bytes(w)
    };
    (0..key)
        .step_by(8)
        .map(|i| word(a, i).cmp(&word(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Merges sorted scans: calls `visit(source, record)` for every record in order of
/// the first `key` bytes, equal keys in source order. Records are taken in runs: while
/// one source's keys stay below every other source's next key they are passed on
/// without comparing sources, so one large segment merged with a few small batches
/// costs little more than a straight scan. A heap picks the next run among many
/// sources; among a few, comparing their next keys is cheaper.
fn merge_scans(
    scans: &mut [index::Scan<'_>],
    key: usize,
    mut visit: impl FnMut(usize, &[u8]),
) -> Result<()> {
    let head = |scan: &mut index::Scan<'_>| -> Result<Option<[u8; index::KEY]>> {
        Ok(scan.peek()?.map(|r| {
            let mut k = [0u8; index::KEY];
            k[..key].copy_from_slice(&r[..key]);
            k
        }))
    };
    // Takes records of source `i` while they come before `bound` (key, source).
    let run = |scans: &mut [index::Scan<'_>],
               i: usize,
               bound: Option<([u8; index::KEY], usize)>,
               visit: &mut dyn FnMut(usize, &[u8])|
     -> Result<()> {
        while let Some(r) = scans[i].peek()? {
            if let Some((b, j)) = &bound {
                match key_cmp(r, b, key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal if i < *j => {}
                    _ => break,
                }
            }
            visit(i, r);
            scans[i].advance();
        }
        Ok(())
    };
    const FEW: usize = 8;
    if let [a, b] = scans {
        // Two sources (one tube index and one result index: a round ingested in one
        // batch each) interleave record by record: a plain two-way merge.
        loop {
            match (a.peek()?, b.peek()?) {
                (Some(x), Some(y)) => {
                    if key_cmp(x, y, key).is_le() {
                        visit(0, x);
                        a.advance();
                    } else {
                        visit(1, y);
                        b.advance();
                    }
                }
                (Some(x), None) => {
                    visit(0, x);
                    a.advance();
                }
                (None, Some(y)) => {
                    visit(1, y);
                    b.advance();
                }
                (None, None) => break,
            }
        }
    } else if scans.len() <= FEW {
        let mut heads: Vec<Option<[u8; index::KEY]>> = Vec::with_capacity(scans.len());
        for scan in scans.iter_mut() {
            heads.push(head(scan)?);
        }
        loop {
            let mut live = heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.map(|k| (k, i)));
            let Some(mut first) = live.next() else { break };
            let mut second: Option<([u8; index::KEY], usize)> = None;
            // Sources are visited in order, so a tie keeps the earlier one first.
            let below = |a: &[u8; index::KEY], b: &[u8; index::KEY]| key_cmp(a, b, key).is_lt();
            for c in live {
                if below(&c.0, &first.0) {
                    second = Some(first);
                    first = c;
                } else if second.is_none_or(|s| below(&c.0, &s.0)) {
                    second = Some(c);
                }
            }
            let i = first.1;
            run(scans, i, second, &mut visit)?;
            heads[i] = head(&mut scans[i])?;
        }
    } else {
        let mut heap: BinaryHeap<Reverse<([u8; index::KEY], usize)>> = BinaryHeap::new();
        for (i, scan) in scans.iter_mut().enumerate() {
            if let Some(k) = head(scan)? {
                heap.push(Reverse((k, i)));
            }
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let bound = heap.peek().map(|Reverse(b)| *b);
            run(scans, i, bound, &mut visit)?;
            if let Some(k) = head(&mut scans[i])? {
                heap.push(Reverse((k, i)));
            }
        }
    }
    Ok(())
}

/// Sets bits `a..b` of a bitmap.
fn set_bits(bits: &mut [u64], a: usize, b: usize) {
    let mut i = a;
    while i < b {
        let (w, o) = (i / 64, i % 64);
        let n = (64 - o).min(b - i);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << o
        };
        bits[w] |= mask;
        i += n;
    }
}

/// The tube of each of `rows` (ascending), found by one pass over the tube indexes.
fn tubes_of_rows(
    segs: &[&CollectionIndex],
    run_tube: &[Vec<u32>],
    rows: &[u32],
) -> Result<Vec<(u32, u32)>> {
    let mut out: Vec<(u32, u32)> = rows.iter().map(|&r| (r, NONE)).collect();
    for (seg, run_tube) in segs.iter().zip(run_tube) {
        let mut scan = seg.tubes.scan(0..seg.tubes.len());
        while let Some((i, r)) = scan.record()? {
            let first = seg.base.saturating_add(index::u32_at(r, 32));
            let end = first.saturating_add(index::u32_at(r, 36));
            let mut at = rows.partition_point(|&x| x < first);
            while at < rows.len() && rows[at] < end {
                out[at].1 = run_tube.get(i).copied().unwrap_or(NONE);
                at += 1;
            }
        }
    }
    Ok(out)
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
    let groups = (0..HASH_RANGES)
        .into_par_iter()
        .map(|r| multi_row_persons(&segs, r, n_rows))
        .collect::<Result<Vec<_>>>()?;
    Ok(groups
        .into_iter()
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
fn multi_row_persons(
    segs: &[&CollectionIndex],
    range: u32,
    n_rows: usize,
) -> Result<Vec<Vec<u32>>> {
    let bound = |r: u32| -> Option<[u8; 16]> {
        (r < HASH_RANGES).then(|| (u128::from(r) << 120).to_be_bytes())
    };
    let (lo, hi) = (bound(range).unwrap_or([0; 16]), bound(range + 1));
    let mut scans: Vec<(u32, index::Scan<'_>)> = Vec::with_capacity(segs.len());
    for seg in segs {
        let start = seg.persons.lower_bound_read(&lo)?;
        let end = match hi {
            Some(h) => seg.persons.lower_bound_read(&h)?,
            None => seg.persons.len(),
        };
        if start < end {
            scans.push((seg.base, seg.persons.scan(start..end)));
        }
    }
    let entry = |base: u32, r: &[u8]| {
        let mut h = [0u8; 16];
        h.copy_from_slice(&r[..16]);
        (
            u128::from_be_bytes(h),
            base.saturating_add(index::u32_at(r, 16)),
        )
    };
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    // A group is started only when a hash repeats: the 25 M one-row persons cost a
    // comparison with the record before, not a push into a group.
    let mut prev: Option<(u128, u32)> = None;
    let mut open = false;
    let flush = |group: &mut Vec<u32>, groups: &mut Vec<Vec<u32>>| {
        if group.len() > 1 {
            groups.push(std::mem::take(group));
        }
        group.clear();
    };
    let (bases, mut scans): (Vec<u32>, Vec<index::Scan<'_>>) = scans.into_iter().unzip();
    // Rows of later segments are numbered after earlier ones, so (hash, segment) order
    // is (hash, row) order.
    merge_scans(&mut scans, 16, |k, r| {
        let (hash, row) = entry(bases[k], r);
        match prev {
            Some((h, p)) if h == hash => {
                if !open {
                    open = true;
                    if (p as usize) < n_rows {
                        group.push(p);
                    }
                }
                if (row as usize) < n_rows {
                    group.push(row);
                }
            }
            _ if open => {
                flush(&mut group, &mut groups);
                open = false;
            }
            _ => {}
        }
        prev = Some((hash, row));
    })?;
    if open {
        flush(&mut group, &mut groups);
    }
    Ok(groups)
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
            || read::collections(store, round),
            || read::results(store, round),
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
