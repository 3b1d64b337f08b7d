//! The middle load of a round, [`Statuses`]: a [`Decided`] round with the tube and
//! collection time of every row and the list of every person.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::decided::{Undecided, tube_membership};
use super::effective::effective_results;
use super::limit::{FirstSwabs, first_swabs_of_rows, mark_late};
use super::rules::Membership;
use super::{Decided, NONE, PersonStatus, ResultFacts, Tubes};
use crate::store::{BatchKind, Store, read};
use crate::time::Millis;
use crate::{Error, Result};

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
    /// Every person, made on first use: turnaround and review walk tubes, not persons.
    persons: OnceLock<Vec<PersonStatus>>,
    /// Each tube's first and last swab, made on first use.
    swabs: OnceLock<Swabs>,
}

/// Each tube's first and last swab over all of its rows: what the turnaround (from the
/// first), the custody (both) and the audit (the last) measure from. One pass over the
/// round's 25 million rows, shared, where each had made its own (50 ms apiece).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swabs {
    /// Each tube's earliest collection time; [`Millis::MAX`] for a tube with no row.
    pub first: Vec<Millis>,
    /// Each tube's latest collection time; [`Millis::MIN`] for a tube with no row.
    pub last: Vec<Millis>,
    /// The round's latest collection time; [`Millis::MIN`] for a round of no row.
    pub latest: Millis,
}

impl Swabs {
    fn of(tubes: usize, tube_of_row: &[u32], collected_at: &[Millis]) -> Swabs {
        let mut first = vec![Millis::MAX; tubes];
        let mut last = vec![Millis::MIN; tubes];
        let mut latest = Millis::MIN;
        for (&t, &c) in tube_of_row.iter().zip(collected_at) {
            if let (Some(f), Some(l)) = (first.get_mut(t as usize), last.get_mut(t as usize)) {
                *f = (*f).min(c);
                *l = (*l).max(c);
            }
            latest = latest.max(c);
        }
        Swabs {
            first,
            last,
            latest,
        }
    }
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
        let Read {
            mut undecided,
            tube_of_row,
            collected_at,
            firsts,
        } = Read::round(store, round, true)?;
        undecided.settle_results(&firsts);
        let decided = undecided.decide_groups(&|row| collected_at[row as usize]);
        Ok(Statuses {
            decided,
            tube_of_row,
            collected_at,
            persons: OnceLock::new(),
            swabs: OnceLock::new(),
        })
    }

    /// A round made from its parts, with the persons yet to list.
    #[cfg(test)]
    pub(crate) fn of(
        decided: Decided,
        tube_of_row: Vec<u32>,
        collected_at: Vec<Millis>,
    ) -> Statuses {
        Statuses {
            decided,
            tube_of_row,
            collected_at,
            persons: OnceLock::new(),
            swabs: OnceLock::new(),
        }
    }

    /// Each tube's first and last swab ([`Swabs`]).
    pub fn swabs(&self) -> &Swabs {
        self.swabs
            .get_or_init(|| Swabs::of(self.tubes.len(), &self.tube_of_row, &self.collected_at))
    }

    /// Every person: those with one row in row order, then the others.
    pub fn persons(&self) -> &[PersonStatus] {
        self.persons.get_or_init(|| self.list_persons())
    }

    fn list_persons(&self) -> Vec<PersonStatus> {
        let (decided, tube_of_row) = (&self.decided, &self.tube_of_row);
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
        persons
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

/// A round's tubes and results, read against the specimen limit, with the tube and
/// collection time of every row, and no person decided: for a caller that decides each
/// person from their rows itself (health codes across rounds), to which the merge of
/// every person index that finds the persons with several rows in a [`Statuses`] is
/// of no use.
pub struct RoundRows {
    /// The round's name.
    pub name: String,
    /// Its tubes, with each one's effective result when every result counts.
    pub tubes: Tubes,
    /// Facts of each result row, those past the specimen limit marked.
    pub results: ResultFacts,
    /// Tube of each collection row.
    pub tube_of_row: Vec<u32>,
    /// Collection time of each collection row.
    pub collected_at: Vec<Millis>,
}

impl RoundRows {
    /// Reads `round` from the store's indexes and its collection times.
    pub fn load(store: &Store, round: &str) -> Result<RoundRows> {
        let Read {
            undecided,
            tube_of_row,
            collected_at,
            firsts,
        } = Read::round(store, round, false)?;
        let mut d = undecided.decided;
        mark_late(&mut d.results, &firsts, d.specimen_limit);
        effective_results(&d.results, &mut d.tubes, &firsts);
        Ok(RoundRows {
            name: d.name,
            tubes: d.tubes,
            results: d.results,
            tube_of_row,
            collected_at,
        })
    }
}

/// What both loads read of a round: its indexes and collection times, side by side,
/// checked against each other, and each row's tube's first swab for the specimen limit.
struct Read {
    undecided: Undecided,
    tube_of_row: Vec<u32>,
    collected_at: Vec<Millis>,
    firsts: FirstSwabs,
}

impl Read {
    /// Reads `round`; `persons` as in [`Decided::from_indexes`].
    fn round(store: &Store, round: &str, persons: bool) -> Result<Read> {
        let (collected_at, parts) = rayon::join(
            || read::times(store, round, BatchKind::Collections, "collected_at"),
            || Decided::from_indexes(store, round, true, persons),
        );
        let (undecided, tube_of_row) = parts?;
        let collected_at = collected_at?;
        let rows = undecided.decided.rows;
        if collected_at.len() != rows || tube_of_row.len() != rows {
            return Err(Error::damaged(
                store.root(),
                format!("round {round}: the segment files and their indexes disagree on the rows"),
            ));
        }
        let d = &undecided.decided;
        let firsts = first_swabs_of_rows(
            &d.results,
            &d.tubes,
            d.specimen_limit,
            &tube_of_row,
            &collected_at,
        );
        Ok(Read {
            undecided,
            tube_of_row,
            collected_at,
            firsts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swabs_are_each_tube_s_earliest_and_latest_row() {
        // Tube 0 swabbed three times out of order, tube 1 once, tube 2 never; a row
        // naming a tube past the round's is left out, not a panic.
        let tube_of_row = [0, 1, 0, 0, 7];
        let collected_at = [5, 3, 2, 9, 1];
        let s = Swabs::of(3, &tube_of_row, &collected_at);
        assert_eq!(s.first, [2, 3, Millis::MAX]);
        assert_eq!(s.last, [9, 3, Millis::MIN]);
        assert_eq!(s.latest, 9);
        assert_eq!(Swabs::of(1, &[], &[]).latest, Millis::MIN);
    }
}
