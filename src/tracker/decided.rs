//! The lightest load of a round, [`Decided`]: every status decided from the sidecar
//! indexes and held per tube, with what the status report and the one-status lists
//! read from it.

use arrow_array::StringArray;
use arrow_array::cast::AsArray;
use rayon::prelude::*;
use serde::Serialize;

use super::effective::{effective_results, order_results};
use super::limit::{FirstSwabs, SpecimenLimit, first_swabs_of_index, mark_late};
use super::persons::{HASH_RANGES, multi_row_persons};
use super::rules::{self, Membership};
use super::tubes::{Numbered, number_tubes, tubes_of_rows};
use super::{NONE, PersonStatus, ResultFacts, Tubes, plate_qc};
use crate::model::{Mode, Outcome, Status};
use crate::store::index;
use crate::store::{BatchKind, Store, read};
use crate::time::{Millis, Offset};
use crate::{Error, Result};

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
    /// The store's specimen limit, which the effective results were read against.
    pub specimen_limit: SpecimenLimit,
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
    /// The rows of each of those persons, ascending, in the same order: the review
    /// looks at them again, and finding them takes a merge of every person index.
    pub group_rows: Vec<Vec<u32>>,
    /// Every row of those persons with its tube, by row.
    pub(crate) grouped: Vec<(u32, u32)>,
    /// The tube of each tube-index record, per collections segment in manifest order.
    pub(crate) run_tube: Vec<Vec<u32>>,
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
    /// Tubes whose every result came past the specimen limit: none counts, and their
    /// persons need a resample.
    pub tubes_past_limit: u64,
}

/// A person on a list: their status, the row that decided it, and its tube.
#[derive(Debug, Clone, Copy)]
pub struct Listed {
    /// Status and deciding row.
    pub person: PersonStatus,
    /// The deciding row's tube.
    pub tube: u32,
}

/// The rows of one status ([`Decided::listed`]): each person of that status with the
/// row that decided it and that row's tube, and the barcodes of those tubes, which the
/// index already holds. A worklist prints them after fetching only these rows' text.
pub struct StatusRows {
    /// The persons, in no particular order.
    pub persons: Vec<Listed>,
    /// The barcode of every tube in `persons`.
    barcodes: Barcodes,
}

impl StatusRows {
    /// The barcode of a listed tube (empty for another tube).
    pub fn barcode(&self, tube: u32) -> &str {
        self.barcodes.get(tube)
    }
}

/// Stretches each segment's tube index is cut into to find barcodes on every core.
const BARCODE_STRETCHES: usize = 16;

/// The barcodes of some tubes of a round ([`Decided::barcodes_of`]).
pub struct Barcodes {
    /// Sorted by tube number.
    pairs: Vec<(u32, String)>,
    /// When many tubes are asked for (a turnaround listing 712,315 late tubes of a
    /// city), each tube number's place in `pairs`: a binary search a tube missed the
    /// cache at every step and took a third of the listing's time.
    place: Vec<u32>,
}

/// [`Barcodes::place`]'s entry for a tube not asked for.
const NO_PLACE: u32 = u32::MAX;

impl Barcodes {
    fn sorted(mut pairs: Vec<(u32, String)>) -> Barcodes {
        pairs.sort_unstable_by_key(|(t, _)| *t);
        pairs.dedup_by_key(|(t, _)| *t);
        let end = pairs.last().map_or(0, |(t, _)| *t as usize + 1);
        // A table of 4 bytes a tube pays when at least one tube in 64 is asked for.
        let place = if pairs.len() >= end / 64 && pairs.len() > 1024 {
            let mut place = vec![NO_PLACE; end];
            for (i, (t, _)) in (0u32..).zip(&pairs) {
                place[*t as usize] = i;
            }
            place
        } else {
            Vec::new()
        };
        Barcodes { pairs, place }
    }

    /// The barcode of `tube` (empty for a tube not asked for).
    pub fn get(&self, tube: u32) -> &str {
        let at = if self.place.is_empty() {
            self.pairs.binary_search_by_key(&tube, |(t, _)| *t).ok()
        } else {
            self.place
                .get(tube as usize)
                .filter(|&&i| i != NO_PLACE)
                .map(|&i| i as usize)
        };
        at.and_then(|i| self.pairs.get(i))
            .map_or("", |(_, b)| b.as_str())
    }
}

/// The rows of persons with several rows, before their times are known.
pub(super) struct Undecided {
    pub(super) decided: Decided,
    pub(super) groups: Vec<Vec<u32>>,
}

impl Decided {
    /// Decides `round` from the store's indexes, reading from Parquet only the times of
    /// the rows of persons with several rows.
    ///
    /// ```
    /// use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
    /// use pooltrack::model::Status;
    /// use pooltrack::store::Store;
    /// use pooltrack::tracker::Decided;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (pools, results) = (dir.path().join("pools.csv"), dir.path().join("results.csv"));
    /// std::fs::write(
    ///     &pools,
    ///     "tube,person,mode,capacity,collected_at\n\
    ///      PL0001,P-1,pool,10,2022-04-02 08:00\n\
    ///      PL0001,P-2,pool,10,2022-04-02 08:01\n\
    ///      PL0002,P-3,pool,10,2022-04-02 08:02\n",
    /// )?;
    /// std::fs::write(
    ///     &results,
    ///     "tube,result,reported_at\nPL0001,positive,2022-04-02 12:00\n",
    /// )?;
    /// let mut store = Store::open_writer(&dir.path().join("store"))?;
    /// let opts = IngestOptions::default();
    /// ingest_collections(&mut store, &[pools], "2022-04-02", &opts, None)?;
    /// ingest_results(&mut store, &[results], &opts, None)?;
    ///
    /// let counts = Decided::load(&store, "2022-04-02")?.counts();
    /// let of = |status| counts.by_status.iter().find(|(s, _)| *s == status).map(|(_, n)| *n);
    /// // The positive pool's members are recalled; the other pool has no result yet.
    /// assert_eq!(of(Status::Recall), Some(2));
    /// assert_eq!(of(Status::Pending), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(store: &Store, round: &str) -> Result<Decided> {
        let (parts, parquet_rows) = rayon::join(
            || Decided::from_indexes(store, round, false, true),
            || read::row_count(store, round, BatchKind::Collections),
        );
        let mut u = parts?.0;
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
        let firsts = first_swabs_of_index(store, &u.decided)?;
        u.settle_results(&firsts);
        let time = |row: u32| rows.binary_search(&row).map_or(0, |i| at[i]);
        Ok(u.decide_groups(&time))
    }

    /// Everything but the effective results (which need the first swabs of the tubes
    /// that may be past the specimen limit, [`Undecided::settle_results`]) and the
    /// persons with several rows; with `fill`, also the tube of each row; with
    /// `persons`, also the rows of each person with several (a merge of every person
    /// index, which a caller that groups the persons itself does without).
    pub(super) fn from_indexes(
        store: &Store,
        round: &str,
        fill: bool,
        persons: bool,
    ) -> Result<(Undecided, Vec<u32>)> {
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
                if !persons {
                    return Ok(Vec::new());
                }
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
        order_results(&results, &mut tubes);
        let specimen_limit = SpecimenLimit::of_store(store)?;
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
            specimen_limit,
            rows: n_rows,
            tubes,
            results,
            single: Vec::new(),
            groups: Vec::new(),
            group_rows: Vec::new(),
            grouped,
            run_tube,
        };
        Ok((Undecided { decided, groups }, tube_of_row))
    }

    /// The tube of a row of a person with several rows ([`NONE`] for any other row).
    pub fn grouped_tube(&self, row: u32) -> u32 {
        self.grouped
            .binary_search_by_key(&row, |&(r, _)| r)
            .map_or(NONE, |i| self.grouped[i].1)
    }

    /// The result row tube `t` shows in lists: its effective result, or, for a tube
    /// whose every result came past the specimen limit, the one standing in for them
    /// with why it does not count; [`NONE`] when it has neither.
    pub fn shown_result(&self, t: usize) -> (u32, Option<String>) {
        let res = self.tubes.result.get(t).copied().unwrap_or(NONE);
        if res != NONE {
            return (res, None);
        }
        match self.tubes.past_limit_of(t) {
            Some(p) => (
                p.row,
                self.results
                    .reported_at
                    .get(p.row as usize)
                    .map(|&at| self.specimen_limit.explain(p.first_swab, at)),
            ),
            None => (NONE, None),
        }
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
            tubes_past_limit: t.past_limit.len() as u64,
        }
    }

    /// Every person of `status`, found from the tube index: the rows of the tubes that
    /// give a one-row person that status, and the persons with several rows decided so.
    pub fn listed(&self, store: &Store, status: Status) -> Result<StatusRows> {
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
        Ok(StatusRows {
            persons,
            barcodes: Barcodes::sorted(barcodes),
        })
    }

    /// The barcodes of `tubes` (any order), from the tube index: a report that lists
    /// late tubes reads no Parquet for them.
    pub fn barcodes_of(&self, store: &Store, tubes: &[u32]) -> Result<Barcodes> {
        let mut want = vec![false; self.tubes.len()];
        for &t in tubes {
            if let Some(w) = want.get_mut(t as usize) {
                *w = true;
            }
        }
        self.barcodes_where(store, &want)
    }

    /// Every tube's barcode, by tube number, from the tube index: an export of every
    /// person prints a barcode a row, and the round has a tenth as many tubes as rows,
    /// so the 25-million-row tube column is not decoded.
    pub fn all_barcodes(&self, store: &Store) -> Result<StringArray> {
        // Each tube's barcode bytes once, where its first record puts them.
        let mut bytes: Vec<u8> = Vec::new();
        let mut span: Vec<(usize, usize)> = vec![(0, 0); self.tubes.len()];
        let mut seen = vec![false; self.tubes.len()];
        let index = store.index_of(Some(&self.name))?;
        let rid = index.round_id(&self.name).unwrap_or(0);
        for (seg, run_tube) in index.collections_of(rid).iter().zip(&self.run_tube) {
            let mut scan = seg.tubes.scan(0..seg.tubes.len());
            while let Some((i, r)) = scan.record()? {
                let Some(&t) = run_tube.get(i) else { break };
                let t = t as usize;
                if seen.get(t).copied().unwrap_or(true) {
                    continue;
                }
                seen[t] = true;
                let key = &r[..index::KEY];
                let n = key.iter().position(|&b| b == 0).unwrap_or(index::KEY);
                span[t] = (bytes.len(), n);
                bytes.extend_from_slice(&key[..n]);
            }
        }
        // Barcodes are checked text when ingested; one that is not (a damaged index)
        // prints empty rather than stopping the export.
        Ok(StringArray::from_iter_values(span.iter().map(
            |&(at, n)| {
                bytes
                    .get(at..at + n)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or_default()
            },
        )))
    }

    fn barcodes_where(&self, store: &Store, want: &[bool]) -> Result<Barcodes> {
        let index = store.index_of(Some(&self.name))?;
        let rid = index.round_id(&self.name).unwrap_or(0);
        // Each segment's index read in stretches on every core: a city's late tubes
        // are a fifth of its 3.6 million, spread over the whole index.
        let segments = index.collections_of(rid);
        let mut stretches = Vec::new();
        for (seg, run_tube) in segments.iter().zip(&self.run_tube) {
            let n = seg.tubes.len();
            let step = n.div_ceil(BARCODE_STRETCHES).max(1);
            stretches.extend(
                (0..n)
                    .step_by(step)
                    .map(|a| (seg, run_tube, a..(a + step).min(n))),
            );
        }
        let found: Vec<Vec<(u32, String)>> = stretches
            .par_iter()
            .map(|(seg, run_tube, range)| {
                let mut barcodes: Vec<(u32, String)> = Vec::new();
                let mut scan = seg.tubes.scan(range.clone());
                while let Some((i, r)) = scan.record()? {
                    let Some(&t) = run_tube.get(i) else { break };
                    if want.get(t as usize).copied().unwrap_or(false)
                        && barcodes.last().is_none_or(|(last, _)| *last != t)
                    {
                        barcodes.push((t, barcode(r)));
                    }
                }
                Ok(barcodes)
            })
            .collect::<Result<_>>()?;
        Ok(Barcodes::sorted(found.into_iter().flatten().collect()))
    }

    /// Tubes with a void result and no result that counts, in tube order, each with its
    /// latest void result row. A tube whose other results came past the specimen limit
    /// is not among them: it is too old to run again, and its persons need a resample.
    pub fn tubes_to_rerun(&self) -> Vec<(u32, u32)> {
        let r = &self.results;
        let mut tubes: Vec<(u32, u32)> = (0..r.void.len())
            .filter(|&row| {
                let t = r.tube[row];
                r.void[row]
                    && t != NONE
                    && self.tubes.result[t as usize] == NONE
                    && self.tubes.past_limit_of(t as usize).is_none()
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
    /// Reads each tube's effective result against the specimen limit, given the first
    /// swab of each tube that may be past it, and the status of a one-row person in each
    /// tube.
    pub(super) fn settle_results(&mut self, firsts: &FirstSwabs) {
        let d = &mut self.decided;
        mark_late(&mut d.results, firsts, d.specimen_limit);
        effective_results(&d.results, &mut d.tubes, firsts);
        let (tubes, results) = (&d.tubes, &d.results);
        d.single = (0..tubes.len())
            .into_par_iter()
            .map(|t| rules::decide(&[tube_membership(tubes, results, t, 0)]).0)
            .collect();
    }

    /// Decides the persons with several rows, given the collection time of their rows.
    pub(super) fn decide_groups(self, at: &(dyn Fn(u32) -> Millis + Sync)) -> Decided {
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
        let mut groups = groups;
        groups.par_iter_mut().for_each(|rows| rows.sort_unstable());
        decided.group_rows = groups;
        decided
    }
}

/// A row in tube `tube`, collected at `at`, as the status rules see it.
pub(super) fn tube_membership(
    tubes: &Tubes,
    results: &ResultFacts,
    tube: usize,
    at: Millis,
) -> Membership {
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
        past_limit: res == NONE && tubes.past_limit_of(tube).is_some(),
        ct,
    }
}

/// The barcode of a tube-index record (its key without the padding).
fn barcode(r: &[u8]) -> String {
    let key = &r[..index::KEY];
    let n = key.iter().position(|&b| b == 0).unwrap_or(index::KEY);
    String::from_utf8_lossy(&key[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::Barcodes;

    #[test]
    fn a_barcode_is_found_by_table_and_by_search_alike() {
        for (asked, every) in [(10u32, 7u32), (5000, 3), (3000, 200)] {
            let pairs: Vec<(u32, String)> = (0..asked)
                .rev()
                .map(|i| (i * every, format!("T{i}")))
                .chain([(0, "T0".to_owned())])
                .collect();
            let barcodes = Barcodes::sorted(pairs);
            let by_table = !barcodes.place.is_empty();
            assert_eq!(by_table, asked == 5000, "{asked} of every {every}");
            for i in 0..asked {
                assert_eq!(barcodes.get(i * every), format!("T{i}"));
                if every > 1 {
                    assert_eq!(barcodes.get(i * every + 1), "", "not asked for");
                }
            }
            assert_eq!(barcodes.get(u32::MAX), "");
        }
    }
}
