//! Lookups across the store: every segment's sidecar indexes opened together and
//! placed in their round's row numbering, so that a batch is checked against the whole
//! store (barcode reuse, duplicate scans, results for uncollected tubes) without reading
//! any Parquet.

use std::ops::Range;
use std::sync::Arc;

use super::index::{self, IndexFile, Kind, TubeKey};
use super::{BatchKind, Store, manifest, runs};
use crate::model::Outcome;
use crate::time::Millis;
use crate::{Error, Result};

impl Store {
    /// Opens every segment's sidecar index for lookups by tube.
    pub fn index(&self) -> Result<StoreIndex> {
        self.index_of(None)
    }

    /// Opens the sidecar indexes of one round's segments (or of all rounds). Each
    /// segment is placed among its round's rows by the row counts the manifest records,
    /// in manifest order: the numbering the tracker uses everywhere. Consecutive segments
    /// a run has merged ([`super::runs`]) are opened as the run, one index in their
    /// place that reads as they would.
    pub fn index_of(&self, only: Option<&str>) -> Result<StoreIndex> {
        let mut idx = StoreIndex {
            person_keys: self.person_keys(),
            ..StoreIndex::default()
        };
        let rounds = runs::rounds(&self.manifest, only);
        // Where each piece of a round starts, in manifest order: its table, its first
        // segment, rows and segments, and its run's tube and person indexes if it is
        // a run.
        type Start<'a> = (
            BatchKind,
            &'a manifest::Segment,
            u64,
            usize,
            Option<runs::RunFiles>,
        );
        let total = rounds.iter().map(|r| r.members.len()).sum();
        let mut starts: Vec<Option<Start<'_>>> = (0..total).map(|_| None).collect();
        for r in &rounds {
            let open = match runs::dir_of(&self.root, &r.members) {
                Some(dir) if r.members.len() > 1 => self.runs_in(&dir, r.kind),
                _ => Arc::new(Vec::new()),
            };
            for piece in runs::cover(r.kind, &r.members, &open) {
                let first = &r.members[piece.members.start];
                let run = piece.run.map(|x| (x.tubes.clone(), x.persons.clone()));
                let rows = r.members[piece.members.clone()]
                    .iter()
                    .map(|m| m.segment.rows)
                    .sum();
                starts[first.position] =
                    Some((r.kind, first.segment, rows, piece.members.len(), run));
            }
        }
        for (kind, seg, rows, count, run) in starts.into_iter().flatten() {
            let round = if let Some(r) = idx.rounds.iter().position(|r| *r == seg.round) {
                r
            } else {
                idx.rounds.push(seg.round.clone());
                idx.rows.push((0, 0));
                idx.rounds.len() - 1
            };
            let open_file = |f: &manifest::FileRef, k| -> Result<Arc<IndexFile>> {
                let path = self.root.join(&f.path);
                self.check_read(&path)?;
                Ok(Arc::new(IndexFile::open(&path, k)?))
            };
            let (collection_rows, result_rows) = &mut idx.rows[round];
            let next = |rows_so_far: &mut u32| -> Result<u32> {
                let base = *rows_so_far;
                *rows_so_far = u64::from(base)
                    .checked_add(rows)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        Error::damaged(
                            &self.root,
                            format!("round {} holds more than 4,294,967,295 rows", seg.round),
                        )
                    })?;
                Ok(base)
            };
            match kind {
                BatchKind::Collections => {
                    let base = next(collection_rows)?;
                    let (tubes, persons) = if let Some((tubes, persons)) = run {
                        let persons = persons.ok_or_else(|| {
                            Error::damaged(&self.root, "a collections run has no person index")
                        })?;
                        (tubes, persons)
                    } else {
                        let persons = seg.persons.as_ref().ok_or_else(|| {
                            Error::damaged(
                                &self.root,
                                format!("{} has no person index", seg.parquet.path),
                            )
                        })?;
                        (
                            open_file(&seg.tubes, Kind::CollectionTubes)?,
                            open_file(persons, Kind::Persons)?,
                        )
                    };
                    persons.check_person_keys(idx.person_keys)?;
                    idx.collections.push(CollectionIndex {
                        round,
                        base,
                        segments: count,
                        tubes,
                        persons,
                    });
                }
                BatchKind::Results => {
                    let base = next(result_rows)?;
                    let tubes = match run {
                        Some((tubes, _)) => tubes,
                        None => open_file(&seg.tubes, Kind::ResultTubes)?,
                    };
                    idx.results.push(ResultIndex { round, base, tubes });
                }
                // Population and custody batches have no round segments (see
                // `Batch::population`, `Batch::custody`).
                BatchKind::Population | BatchKind::Custody => {}
            }
        }
        Ok(idx)
    }
}

/// A collections segment's indexes, or a run's (several consecutive segments').
pub(crate) struct CollectionIndex {
    round: usize,
    /// First row of the segment among its round's collection rows (manifest order).
    pub(crate) base: u32,
    /// How many of the round's segments it covers (more than one for a run).
    pub(crate) segments: usize,
    pub(crate) tubes: Arc<IndexFile>,
    pub(crate) persons: Arc<IndexFile>,
}

/// A results segment's index, or a run's.
pub(crate) struct ResultIndex {
    round: usize,
    /// First row of the segment among its round's result rows (manifest order).
    pub(crate) base: u32,
    pub(crate) tubes: Arc<IndexFile>,
}

/// One result of a tube, as the result index holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResultFact {
    /// The result's row among its round's result rows.
    pub row: u32,
    /// Outcome.
    pub outcome: Outcome,
    /// Report time.
    pub reported_at: Millis,
    /// Ct `ORF1ab` and Ct N.
    pub cts: (Option<f32>, Option<f32>),
}

/// Sidecar indexes this large are mapped anew by [`StoreIndex::remapped`]. The library's
/// own tests map every one anew, so their batches go through the fresh mappings a
/// city's batch does.
pub(crate) const REMAP_BYTES: usize = if cfg!(test) { 1 } else { 16 << 20 };

/// Lookups by tube barcode across every committed segment, without reading Parquet.
#[derive(Default)]
pub struct StoreIndex {
    person_keys: index::PersonKeys,
    rounds: Vec<String>,
    /// Collection and result rows of each round.
    rows: Vec<(u32, u32)>,
    collections: Vec<CollectionIndex>,
    results: Vec<ResultIndex>,
}

/// What the store knows of a tube.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TubeFacts {
    /// The round it was collected in (see [`StoreIndex::round_name`]).
    pub round: usize,
    /// Its first stated mode, capacity and whether rows disagreed.
    pub meta: index::TubeMeta,
    /// Persons recorded in it.
    pub members: u32,
}

/// A tube's rows in the store ([`StoreIndex::members`]).
pub struct Members<'a> {
    index: &'a StoreIndex,
    /// Collections segment and its rows of the tube.
    runs: Vec<(usize, Range<u32>)>,
}

impl Members<'_> {
    /// Whether the store records the person of this key ([`StoreIndex::person_keys`])
    /// in the tube.
    pub fn has(&self, person_key: u128) -> bool {
        let hash = person_key.to_be_bytes();
        self.runs.iter().any(|(s, rows)| {
            self.index.collections.get(*s).is_some_and(|seg| {
                seg.persons
                    .find(&hash)
                    .any(|p| rows.contains(&seg.persons.person_row(p)))
            })
        })
    }
}

/// Lookups of tubes in ascending key order, as a batch sorted by barcode makes them:
/// each segment's index is galloped through from the last match instead of searched
/// whole, so a lookup is a few comparisons in cache.
///
/// A key below the previous one is still answered correctly, by a full search.
pub struct TubeCursor<'a> {
    index: &'a StoreIndex,
    collections: Vec<usize>,
    results: Vec<usize>,
}

impl TubeCursor<'_> {
    fn find(at: &mut [usize], s: usize, file: &IndexFile, key: &TubeKey) -> Range<usize> {
        let found = file.find_near(at.get(s).copied().unwrap_or(0), key);
        if let Some(slot) = at.get_mut(s) {
            *slot = found.start;
        }
        found
    }

    /// [`StoreIndex::tube`].
    pub fn tube(&mut self, key: &TubeKey) -> Option<TubeFacts> {
        let at = &mut self.collections;
        self.index.tube_in(|s, f| Self::find(at, s, f, key))
    }

    /// [`StoreIndex::results`].
    pub fn results(&mut self, key: &TubeKey) -> Vec<(Outcome, Millis)> {
        let at = &mut self.results;
        self.index.results_in(|s, f| Self::find(at, s, f, key))
    }
}

impl StoreIndex {
    /// The name of round number `i` of this index.
    pub fn round_name(&self, i: usize) -> &str {
        &self.rounds[i]
    }

    /// The tube's round, mode, capacity and member count, if it was ever collected.
    pub fn tube(&self, key: &TubeKey) -> Option<TubeFacts> {
        self.tube_in(|_, f| f.find(key))
    }

    /// The same index with its sidecar indexes of 16 MB or more in new mappings
    /// (see [`IndexFile::remapped`]): a pass of millions of lookups takes one for each
    /// stretch of its keys and drops it after, so the pages it touched leave its
    /// resident memory. Smaller files are shared: their pages are few.
    pub fn remapped(&self) -> Result<StoreIndex> {
        let fresh = |f: &Arc<IndexFile>| -> Result<Arc<IndexFile>> {
            if f.bytes() >= REMAP_BYTES {
                Ok(Arc::new(f.remapped()?))
            } else {
                Ok(Arc::clone(f))
            }
        };
        Ok(StoreIndex {
            person_keys: self.person_keys,
            rounds: self.rounds.clone(),
            rows: self.rows.clone(),
            collections: self
                .collections
                .iter()
                .map(|c| {
                    Ok(CollectionIndex {
                        round: c.round,
                        base: c.base,
                        segments: c.segments,
                        tubes: fresh(&c.tubes)?,
                        persons: fresh(&c.persons)?,
                    })
                })
                .collect::<Result<_>>()?,
            results: self
                .results
                .iter()
                .map(|r| {
                    Ok(ResultIndex {
                        round: r.round,
                        base: r.base,
                        tubes: fresh(&r.tubes)?,
                    })
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Runs `f` on this index, through fresh mappings of its large sidecars when
    /// `fresh` ([`StoreIndex::remapped`]), which are dropped when `f` returns. Mappings
    /// that cannot be made again leave this one in use: only more memory.
    pub fn probe<R>(&self, fresh: bool, f: impl FnOnce(&StoreIndex) -> R) -> R {
        let remapped = fresh.then(|| self.remapped().ok()).flatten();
        f(remapped.as_ref().unwrap_or(self))
    }

    /// A reader for many lookups in ascending key order (see [`TubeCursor`]).
    pub fn cursor(&self) -> TubeCursor<'_> {
        TubeCursor {
            index: self,
            collections: vec![0; self.collections.len()],
            results: vec![0; self.results.len()],
        }
    }

    /// [`tube`](Self::tube), with each collections segment's matching records found by
    /// `find(segment number, tube index)`.
    fn tube_in(
        &self,
        mut find: impl FnMut(usize, &IndexFile) -> Range<usize>,
    ) -> Option<TubeFacts> {
        let mut facts: Option<TubeFacts> = None;
        for (s, seg) in self.collections.iter().enumerate() {
            for i in find(s, &seg.tubes) {
                let rec = seg.tubes.record(i);
                let r: &[u8] = &rec;
                let rows = index::u32_at(r, 36);
                let meta = index::TubeMeta::of_record(r);
                match &mut facts {
                    Some(f) => {
                        f.members += rows;
                        f.meta.settle(meta);
                    }
                    None => {
                        facts = Some(TubeFacts {
                            round: seg.round,
                            meta,
                            members: rows,
                        });
                    }
                }
            }
        }
        facts
    }

    /// Whether the store already records `person_hash` in the tube.
    pub fn has_member(&self, key: &TubeKey, person_hash: u128) -> bool {
        self.members(key).has(person_hash)
    }

    /// The tube's rows in each segment, found once, to ask of several persons whether
    /// the store records them in it: a tube of 20 asked its rows again for each person.
    pub fn members(&self, key: &TubeKey) -> Members<'_> {
        let runs = self
            .collections
            .iter()
            .enumerate()
            .flat_map(|(s, seg)| {
                seg.tubes.find(key).map(move |i| {
                    let rec = seg.tubes.record(i);
                    let r: &[u8] = &rec;
                    let first = index::u32_at(r, 32);
                    (s, first..first.saturating_add(index::u32_at(r, 36)))
                })
            })
            .collect();
        Members { index: self, runs }
    }

    /// Every result the store holds for the tube, as (outcome, `reported_at`).
    pub fn results(&self, key: &TubeKey) -> Vec<(Outcome, Millis)> {
        self.results_in(|_, f| f.find(key))
    }

    /// [`results`](Self::results), with each results segment's matching records found
    /// by `find(segment number, tube index)`.
    fn results_in(
        &self,
        mut find: impl FnMut(usize, &IndexFile) -> Range<usize>,
    ) -> Vec<(Outcome, Millis)> {
        let mut out = Vec::new();
        for (s, seg) in self.results.iter().enumerate() {
            for i in find(s, &seg.tubes) {
                let rec = seg.tubes.record(i);
                let r: &[u8] = &rec;
                if let Some(o) = Outcome::from_code(r[36]) {
                    out.push((o, index::i64_at(r, 40)));
                }
            }
        }
        out
    }

    /// How the store keys persons.
    pub fn person_keys(&self) -> index::PersonKeys {
        self.person_keys
    }

    /// Rows of `round` (numbered across its collection segments) holding `person`,
    /// ascending.
    pub fn person_rows(&self, round: usize, person: &str) -> Vec<u32> {
        let hash = self.person_keys.key(person).to_be_bytes();
        let mut rows: Vec<u32> = self
            .collections
            .iter()
            .filter(|s| s.round == round)
            .flat_map(|s| {
                s.persons
                    .find(&hash)
                    .map(move |i| s.base.saturating_add(s.persons.person_row(i)))
            })
            .collect();
        rows.sort_unstable();
        rows
    }

    /// Rows of `round` (numbered across its collection segments) in the tube,
    /// ascending.
    pub fn tube_rows(&self, round: usize, key: &TubeKey) -> Vec<u32> {
        let mut rows: Vec<u32> = self
            .collections
            .iter()
            .filter(|s| s.round == round)
            .flat_map(|s| {
                s.tubes.find(key).flat_map(move |i| {
                    let rec = s.tubes.record(i);
                    let r: &[u8] = &rec;
                    let first = s.base.saturating_add(index::u32_at(r, 32));
                    first..first.saturating_add(index::u32_at(r, 36))
                })
            })
            .collect();
        rows.sort_unstable();
        rows
    }

    /// Every result of the tube in `round`, in the order that decides its effective
    /// result: by report time, then later batches last.
    pub fn result_facts(&self, round: usize, key: &TubeKey) -> Vec<ResultFact> {
        let mut out: Vec<ResultFact> = self
            .results
            .iter()
            .filter(|s| s.round == round)
            .flat_map(|s| {
                s.tubes.find(key).filter_map(move |i| {
                    let rec = s.tubes.record(i);
                    let r: &[u8] = &rec;
                    Some(ResultFact {
                        row: s.base.saturating_add(index::u32_at(r, 32)),
                        outcome: Outcome::from_code(r[36])?,
                        reported_at: index::i64_at(r, 40),
                        cts: (index::ct_at(r, 48), index::ct_at(r, 52)),
                    })
                })
            })
            .collect();
        out.sort_by_key(|f| (f.reported_at, f.row));
        out
    }

    /// The collection segments of round number `round`, in manifest order.
    pub(crate) fn collections_of(&self, round: usize) -> Vec<&CollectionIndex> {
        self.collections
            .iter()
            .filter(|s| s.round == round)
            .collect()
    }

    /// The result segments of round number `round`, in manifest order.
    pub(crate) fn results_of(&self, round: usize) -> Vec<&ResultIndex> {
        self.results.iter().filter(|s| s.round == round).collect()
    }

    /// Collection and result rows of round number `round`.
    pub fn round_rows(&self, round: usize) -> (usize, usize) {
        self.rows
            .get(round)
            .map_or((0, 0), |&(c, r)| (c as usize, r as usize))
    }

    /// Index of round `name`, if any segment belongs to it.
    pub fn round_id(&self, name: &str) -> Option<usize> {
        self.rounds.iter().position(|r| r == name)
    }
}
