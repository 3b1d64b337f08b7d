//! The heaviest load of a round, [`Round`]: its [`Statuses`] with every text column.

use arrow_array::Array;

use super::{Collections, Results, Statuses};
use crate::store::{Store, read};
use crate::{Error, Result};

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
