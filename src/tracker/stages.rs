//! Which of a round's tubes are first-stage tubes and which follow up another tube of
//! the same person: the estimates from a round's own tubes ([`crate::tracker`]'s
//! callers: prevalence, dilution) count a person once, in the tube that tested them
//! first.
//!
//! A single tube is a **follow-up** when its person has another tube in the round and
//! - that other tube is a pool: the single tube is the retest of a recalled person
//!   (单采复核) or the resample of an invalid pool, whatever its result; or
//! - all their tubes are single tubes and this one is not the earliest collected (ties
//!   by row: the batch ingested first, then the line): a resample of an invalid or
//!   inconclusive single tube, or a confirmation.
//!
//! Every other tube is first-stage. A pool tube is always first-stage: a person swabbed
//! into two pools was pooled twice, and each pool tested its own swabs.

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;

use super::{Decided, NONE};
use crate::model::Mode;
use crate::store::{BatchKind, Store, read};
use crate::time::Millis;
use crate::{Error, Result};

/// The first-stage tubes of a round ([`Decided::stages`]).
#[derive(Debug, Clone, Default)]
pub struct Stages {
    /// By tube: whether it follows up another tube of its person.
    follow_up: Vec<bool>,
    /// Follow-up tubes in all.
    pub follow_ups: u64,
}

impl Stages {
    /// Whether tube `t` is a first-stage tube (false for a tube the round does not hold).
    pub fn is_first_stage(&self, t: usize) -> bool {
        self.follow_up.get(t).is_some_and(|f| !f)
    }

    /// Whether tube `t` follows up another tube of its person.
    pub fn is_follow_up(&self, t: usize) -> bool {
        self.follow_up.get(t).copied().unwrap_or(false)
    }
}

impl Decided {
    /// Which tubes are first-stage (see the module docs). Reads only the collection
    /// times of the persons with several rows none of which is in a pool.
    ///
    /// ```
    /// use pooltrack::ingest::{IngestOptions, ingest_collections};
    /// use pooltrack::store::Store;
    /// use pooltrack::tracker::Decided;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let tubes = dir.path().join("tubes.csv");
    /// std::fs::write(
    ///     &tubes,
    ///     "tube,person,mode,capacity,collected_at\n\
    ///      PL01,P-1,pool,10,2022-04-02 08:00\n\
    ///      PL01,P-2,pool,10,2022-04-02 08:01\n\
    ///      RT01,P-1,single,1,2022-04-02 15:00\n\
    ///      SG01,P-3,single,1,2022-04-02 08:05\n\
    ///      SG02,P-3,single,1,2022-04-02 16:00\n",
    /// )?;
    /// let mut store = Store::open_writer(&dir.path().join("store"))?;
    /// ingest_collections(&mut store, &[tubes], "R1", &IngestOptions::default(), None)?;
    /// let round = Decided::load(&store, "R1")?;
    /// let stages = round.stages(&store)?;
    /// // Tubes are numbered in barcode order: PL01, RT01, SG01, SG02.
    /// let first: Vec<bool> = (0..4).map(|t| stages.is_first_stage(t)).collect();
    /// assert_eq!(first, [true, false, true, false]);
    /// assert_eq!(stages.follow_ups, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stages(&self, store: &Store) -> Result<Stages> {
        let mut follow_up = vec![false; self.tubes.len()];
        let mut singles_only: Vec<usize> = Vec::new();
        for (g, rows) in self.group_rows.iter().enumerate() {
            let tubes = rows.iter().map(|&r| self.grouped_tube(r) as usize);
            let pooled = tubes
                .clone()
                .any(|t| self.tubes.mode.get(t) == Some(&Mode::Pool));
            if pooled {
                for t in tubes.filter(|&t| self.tubes.mode.get(t) == Some(&Mode::Single)) {
                    follow_up[t] = true;
                }
            } else {
                singles_only.push(g);
            }
        }
        if !singles_only.is_empty() {
            let mut rows: Vec<u32> = singles_only
                .iter()
                .flat_map(|&g| self.group_rows[g].iter().copied())
                .collect();
            rows.sort_unstable();
            rows.dedup();
            let at = self.collection_times(store, &rows)?;
            let time = |row: u32| rows.binary_search(&row).map_or(0, |i| at[i]);
            for &g in &singles_only {
                let group = &self.group_rows[g];
                let first = group.iter().copied().min_by_key(|&r| (time(r), r));
                for &r in group.iter().filter(|&&r| Some(r) != first) {
                    let t = self.grouped_tube(r);
                    if t != NONE {
                        follow_up[t as usize] = true;
                    }
                }
            }
        }
        let follow_ups = follow_up.iter().filter(|&&f| f).count() as u64;
        Ok(Stages {
            follow_up,
            follow_ups,
        })
    }

    /// The collection times of `rows` (ascending).
    fn collection_times(&self, store: &Store, rows: &[u32]) -> Result<Vec<Millis>> {
        let col = read::fetch(
            store,
            &self.name,
            BatchKind::Collections,
            &["collected_at"],
            rows,
        )?;
        col.first()
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
            .map(|a| a.values().to_vec())
            .filter(|v| v.len() == rows.len())
            .ok_or_else(|| {
                Error::damaged(
                    store.root(),
                    format!(
                        "round {}: the segment files and their indexes disagree on the rows",
                        self.name
                    ),
                )
            })
    }
}
