//! One person's health code across rounds (`pooltrack status --person ID` without
//! `--round`), from the store's per-round person lookups: their rows, their tubes and
//! those tubes' results come from the sidecar indexes, and only those rows are read
//! from Parquet, so a person is answered without loading any round.
//!
//! Each round is decided for the person as [`super::rounds`] decides it for everyone
//! as of the time (swabs and results after it do not count, nor results on a failed
//! plate or past the specimen limit), reduced to the same [`Word`], and the words are
//! folded, rounds oldest first, into the same [`History`]: the code is the one
//! `export health-codes --as-of` gives the person.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, ArrayRef, StringArray};

use super::rounds::{OnePerson, rounds_as_of};
use super::rules::{Clearing, Code, History, Word, decide};
use crate::coverage::Segments;
use crate::model::{Mode, Outcome};
use crate::store::index::tube_key;
use crate::store::segment::population_schema;
use crate::store::{BatchKind, ResultFact, Store, StoreIndex, read};
use crate::text::text_at;
use crate::time::Millis;
use crate::tracker::rules::{self as status_rules, Membership};
use crate::tracker::{NONE, SpecimenLimit, plate_qc, read_results};
use crate::{Error, Result};

/// One person's words in every round as of `as_of`, their register entry, and their
/// code; `None` when neither any round nor the register knows them.
pub fn one_person(store: &Store, person: &str, as_of: Millis) -> Result<Option<(OnePerson, Code)>> {
    let config = store.config()?;
    let codes = &config.health_codes;
    let clearing = Clearing {
        negatives: codes.clear_negatives,
        gap: codes.clear_gap(),
    };
    let limit = SpecimenLimit::hours(config.custody.specimen_limit_hours);
    let rounds = rounds_as_of(store, as_of)?;
    if rounds.len() > usize::from(u16::MAX) {
        return Err(Error::Usage(format!(
            "{} rounds are more than the codes can merge",
            rounds.len()
        )));
    }
    let index = store.index()?;
    let mut history: Option<History> = None;
    let mut words = Vec::new();
    for (k, (name, _)) in rounds.iter().enumerate() {
        let Some(rid) = index.round_id(name) else {
            continue;
        };
        let round = Round {
            store,
            index: &index,
            rid,
            name,
            number: u16::try_from(k).unwrap_or(u16::MAX),
        };
        let Some(w) = round.word(person, as_of, limit)? else {
            continue;
        };
        match &mut history {
            Some(h) => h.add(w, clearing),
            None => history = Some(History::new(w, clearing)),
        }
        words.push((name.clone(), w));
    }
    let registered = registration(store, person)?;
    if history.is_none() && registered.is_none() {
        return Ok(None);
    }
    let window_hours = registered.as_ref().map(|g| codes.window_hours(g));
    let group = registered.unwrap_or_default();
    let code = decide(history.as_ref(), window_hours, clearing, as_of);
    Ok(Some((
        OnePerson {
            rounds: rounds.into_iter().map(|(r, _)| r).collect(),
            words,
            window_hours,
            group,
        },
        code,
    )))
}

/// The person's group when the register lists them (`None`: it does not, or there is
/// none): the latest registration's that states one, empty when none does.
fn registration(store: &Store, person: &str) -> Result<Option<String>> {
    let Some(Segments {
        files,
        sidecars,
        bases,
        rows: total,
    }) = Segments::open(store)?
    else {
        return Ok(None);
    };
    let mut rows: Vec<u32> = Vec::new();
    for (f, &base) in sidecars.iter().zip(&bases) {
        for i in f.find(&f.person_keys().key(person).to_be_bytes()) {
            let row = base.saturating_add(f.person_row(i));
            if row < total {
                rows.push(row);
            }
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_unstable();
    rows.dedup();
    let column = read::fetch_files(store, &files, &population_schema(), &["group"], &rows)?;
    let groups = column
        .first()
        .and_then(|c| c.as_string_opt::<i32>())
        .filter(|c| c.len() == rows.len())
        .ok_or_else(|| {
            Error::damaged(
                store.root(),
                "the population register's group column does not read back",
            )
        })?;
    // Later segments and later lines are later registrations.
    let group = (0..groups.len())
        .rev()
        .map(|i| text_at(groups, i))
        .find(|g| !g.is_empty())
        .unwrap_or_default();
    Ok(Some(group.to_owned()))
}

/// One round of the store, for one person's lookups.
struct Round<'a> {
    store: &'a Store,
    index: &'a StoreIndex,
    rid: usize,
    name: &'a str,
    number: u16,
}

/// A tube as the rules see it as of the time.
struct AsOf {
    result: Option<Outcome>,
    ct: Option<f32>,
    /// The result row it shows: the effective one, or the one standing in for results
    /// past the specimen limit; [`NONE`] for none.
    shown: u32,
    past_limit: bool,
}

/// One of the person's tubes in the round.
struct Tube {
    /// Its rows' first swab.
    first_swab: Millis,
    mode: Mode,
    results: Vec<ResultFact>,
}

impl Round<'_> {
    fn damaged(&self, why: &str) -> Error {
        Error::damaged(self.store.root(), format!("round {}: {why}", self.name))
    }

    /// The word the round says of `person` as of `as_of`; `None` when it swabbed them
    /// after it or not at all.
    fn word(&self, person: &str, as_of: Millis, limit: SpecimenLimit) -> Result<Option<Word>> {
        let rows = self.index.person_rows(self.rid, person);
        if rows.is_empty() {
            return Ok(None);
        }
        let c = self.fetch(BatchKind::Collections, &["tube", "collected_at"], &rows)?;
        let (Some(tube), Some(at)) = (
            c[0].as_string_opt::<i32>(),
            c[1].as_primitive_opt::<TimestampMillisecondType>(),
        ) else {
            return Err(self.damaged("a collections column has an unexpected type"));
        };
        // Their rows swabbed by the time, ascending, with their tube's barcode.
        let mine: Vec<(u32, Millis, &str)> = (0..rows.len())
            .filter(|&i| at.value(i) <= as_of)
            .map(|i| (rows[i], at.value(i), text_at(tube, i)))
            .collect();
        if mine.is_empty() {
            return Ok(None);
        }
        let mut barcodes: Vec<&str> = mine.iter().map(|&(_, _, t)| t).collect();
        barcodes.sort_unstable();
        barcodes.dedup();
        let tubes = self.tubes(&barcodes)?;
        let void = self.void_results(&tubes)?;
        // Each tube as the rules see it as of the time, and the result row it shows.
        let read: Vec<AsOf> = tubes
            .iter()
            .map(|t| {
                let counted: Vec<&ResultFact> = t
                    .results
                    .iter()
                    .filter(|f| f.reported_at <= as_of && !void.contains(&f.row))
                    .collect();
                let reading = read_results(
                    counted
                        .iter()
                        .map(|f| (f.outcome, limit.is_past(t.first_swab, f.reported_at))),
                );
                match (reading.result, reading.past_limit) {
                    (Some(i), _) => AsOf {
                        result: Some(counted[i].outcome),
                        ct: match counted[i].cts {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        },
                        shown: counted[i].row,
                        past_limit: false,
                    },
                    (None, Some(i)) => AsOf {
                        result: None,
                        ct: None,
                        shown: counted[i].row,
                        past_limit: true,
                    },
                    (None, None) => AsOf {
                        result: None,
                        ct: None,
                        shown: NONE,
                        past_limit: false,
                    },
                }
            })
            .collect();
        let tube_of = |barcode: &str| barcodes.binary_search(&barcode).unwrap_or(0);
        let members: Vec<Membership> = mine
            .iter()
            .map(|&(_, when, barcode)| {
                let t = tube_of(barcode);
                Membership {
                    mode: tubes[t].mode,
                    at: when,
                    result: read[t].result,
                    past_limit: read[t].past_limit,
                    ct: read[t].ct,
                }
            })
            .collect();
        let (status, i) = status_rules::decide(&members);
        let (row, when, barcode) = mine[i];
        let t = tube_of(barcode);
        Ok(Some(Word {
            round: self.number,
            status,
            single: tubes[t].mode == Mode::Single,
            row,
            result: read[t].shown,
            at: when,
            last_at: members.iter().map(|m| m.at).max().unwrap_or(when),
        }))
    }

    /// The tubes of these barcodes (sorted) as the round's indexes hold them: mode as
    /// deconvolution reads it, results in the order that decides, and first swab.
    fn tubes(&self, barcodes: &[&str]) -> Result<Vec<Tube>> {
        let mut tubes: Vec<Tube> = Vec::with_capacity(barcodes.len());
        let mut all_rows: Vec<Vec<u32>> = Vec::with_capacity(barcodes.len());
        for b in barcodes {
            let key = tube_key(b);
            let facts = self
                .index
                .tube(&key)
                .ok_or_else(|| self.damaged("a person's tube is missing from the tube index"))?;
            let results = self.index.result_facts(self.rid, &key);
            all_rows.push(if results.is_empty() {
                Vec::new()
            } else {
                self.index.tube_rows(self.rid, &key)
            });
            tubes.push(Tube {
                first_swab: Millis::MIN,
                mode: facts.meta.deconvolution_mode(facts.members),
                results,
            });
        }
        // The first swab of each tube with a result: results past the specimen limit
        // after it do not count.
        let mut rows: Vec<u32> = all_rows.iter().flatten().copied().collect();
        rows.sort_unstable();
        rows.dedup();
        if rows.is_empty() {
            return Ok(tubes);
        }
        let c = self.fetch(BatchKind::Collections, &["collected_at"], &rows)?;
        let at = c[0]
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| self.damaged("collected_at is not a time"))?;
        for (tube, its) in tubes.iter_mut().zip(&all_rows) {
            tube.first_swab = its
                .iter()
                .filter_map(|r| rows.binary_search(r).ok().map(|i| at.value(i)))
                .min()
                .unwrap_or(Millis::MIN);
        }
        Ok(tubes)
    }

    /// The rows among these tubes' results that lie on a plate whose controls failed.
    fn void_results(&self, tubes: &[Tube]) -> Result<HashSet<u32>> {
        let failed = plate_qc::failed_plates(self.store, self.name);
        let mut rows: Vec<u32> = tubes
            .iter()
            .flat_map(|t| t.results.iter().map(|f| f.row))
            .collect();
        if failed.is_empty() || rows.is_empty() {
            return Ok(HashSet::new());
        }
        rows.sort_unstable();
        rows.dedup();
        let c = self.fetch(BatchKind::Results, &["lab", "plate", "sample_type"], &rows)?;
        let text = |i: usize| -> Result<&StringArray> {
            c[i].as_string_opt::<i32>()
                .ok_or_else(|| self.damaged("a results column is not text"))
        };
        let (lab, plate, kind) = (text(0)?, text(1)?, text(2)?);
        Ok((0..rows.len())
            .filter(|&i| {
                matches!(text_at(kind, i), "" | "sample")
                    && failed
                        .iter()
                        .any(|p| p.lab == text_at(lab, i) && p.plate == text_at(plate, i))
            })
            .map(|i| rows[i])
            .collect())
    }

    /// The named columns of `rows` (ascending), each holding every one of them.
    fn fetch(&self, kind: BatchKind, columns: &[&str], rows: &[u32]) -> Result<Vec<ArrayRef>> {
        let c = read::fetch(self.store, self.name, kind, columns, rows)?;
        if c.len() != columns.len() || c.iter().any(|a| a.len() != rows.len()) {
            return Err(self.damaged("the segments hold fewer rows than the indexes name"));
        }
        Ok(c)
    }
}
