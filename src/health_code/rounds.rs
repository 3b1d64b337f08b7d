//! Health codes across every round of the store, as of a time (`pooltrack export
//! health-codes --as-of T`): each person's color from all their tubes in all rounds,
//! by the rules in [`super::rules`], with the tube and result that decided it.
//!
//! The computation streams over compact columns, round by round, never over text:
//! - each round is loaded as the per-round status report loads it
//!   ([`Statuses::load`]: tubes, results and rows from the sidecar indexes), and
//!   re-decided **as of T** (results reported after T and swabs after T do not count);
//! - its persons come in 128-bit-hash order from the round's sorted person sidecars,
//!   in 256 ranges of the hash space decided in parallel, each person reduced to one
//!   [`Word`] (status, deciding row, result row, times);
//! - the words are folded, rounds oldest first (by their earliest swab), into one
//!   [`History`] per person by a sorted merge per hash range;
//! - the population register (its person sidecars and its `group` column as
//!   dictionary codes) is merged in the same hash order to give each registered person
//!   the window of their group;
//! - only then is text read: for each round, the person, tube and source of the rows
//!   that decided a code, and the result rows behind them, fetched by row number.
//!
//! Memory is one [`History`] per person plus one round's load at a time.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMillisecondType, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::DataType;
use rayon::prelude::*;
use serde::Serialize;

use super::Color;
use super::rules::{Clearing, Code, History, Word, decide};
use crate::coverage::{HASH_RANGES, Segments, in_range};
use crate::model::{Mode, Status};
use crate::output::ListRow;
use crate::output::stream::{JsonLayout, RowMaker};
use crate::store::config::HealthCodesConfig;
use crate::store::segment::population_schema;
use crate::store::{BatchKind, Store, read};
use crate::text::text_at;
use crate::time::{self, Millis, Offset};
use crate::tracker::rules::{self as status_rules, Membership};
use crate::tracker::{NONE, SpecimenLimit, Statuses, read_results};
use crate::{Error, Result};

/// The store's rounds with any swab at or before `as_of`, oldest first (by earliest
/// swab, then name), each with its earliest swab.
pub fn rounds_as_of(store: &Store, as_of: Millis) -> Result<Vec<(String, Millis)>> {
    let mut rounds = Vec::new();
    for name in store.manifest().rounds() {
        let first = match first_swab_of_footers(store, name)? {
            Some(first) => Some(first),
            None => read::times(store, name, BatchKind::Collections, "collected_at")?
                .into_iter()
                .min(),
        };
        if let Some(first) = first.filter(|&f| f <= as_of) {
            rounds.push((name.to_owned(), first));
        }
    }
    rounds.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(rounds)
}

/// A round's first swab from the `collected_at` statistics in its segments' Parquet
/// footers, so that ordering ten rounds reads no column; `None` when a footer lacks
/// them (the column is read instead) or the round has no rows.
fn first_swab_of_footers(store: &Store, round: &str) -> Result<Option<Millis>> {
    let floors = read::time_floors(store, round, BatchKind::Collections, "collected_at")?;
    if floors.iter().any(Option::is_none) {
        return Ok(None);
    }
    Ok(floors.into_iter().flatten().min())
}

/// Decides `s` again as of `as_of`, reduces each person to a word and folds the words
/// into `state`, one hash range at a time (a round's words are never all held at
/// once).
fn fold_round(
    s: &Statuses,
    round: u16,
    as_of: Millis,
    store: &Store,
    state: &mut [Vec<(u128, History)>],
    clearing: Clearing,
) -> Result<()> {
    let (tubes, r) = (&s.tubes, &s.results);
    let counted = |i: u32| {
        let i = i as usize;
        r.reported_at.get(i).is_some_and(|&at| at <= as_of)
            && !r.void.get(i).copied().unwrap_or(false)
    };
    // Each tube's effective result as of the time, and the status it gives a person
    // with no other tube in the round.
    // Results past the specimen limit do not count; a tube with only those needs a
    // resample, and the one that stands in for its result is shown.
    let (tube_result, tube_late): (Vec<u32>, Vec<bool>) = (0..tubes.len())
        .into_par_iter()
        .map(|t| {
            let lo = tubes.result_start.get(t).copied().unwrap_or(0) as usize;
            let hi = tubes.result_start.get(t + 1).copied().unwrap_or(0) as usize;
            let rows = tubes.result_rows.get(lo..hi).unwrap_or_default();
            let kept = || rows.iter().copied().filter(|&i| counted(i));
            let reading =
                read_results(kept().map(|i| (r.outcome[i as usize], r.is_late(i as usize))));
            let at = |k: Option<usize>| k.and_then(|k| kept().nth(k));
            match at(reading.result) {
                Some(row) => (row, false),
                None => at(reading.past_limit).map_or((NONE, false), |row| (row, true)),
            }
        })
        .unzip();
    let membership = |t: usize, at: Millis| {
        let res = tube_result[t];
        let (result, ct) = if res == NONE || tube_late[t] {
            (None, None)
        } else {
            let ct = match r.cts(res as usize) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (Some(r.outcome[res as usize]), ct)
        };
        Membership {
            mode: tubes.mode[t],
            at,
            result,
            past_limit: tube_late[t],
            ct,
        }
    };
    let tube_status: Vec<Status> = (0..tubes.len())
        .into_par_iter()
        .map(|t| status_rules::decide(&[membership(t, 0)]).0)
        .collect();
    let index = store.index_of(Some(&s.name))?;
    let rid = index.round_id(&s.name).unwrap_or(0);
    let segs = index.collections_of(rid);
    let n_rows = s.tube_of_row.len();
    let damaged = || {
        Error::damaged(
            store.root(),
            format!(
                "round {}: a person index names a row the round does not hold",
                s.name
            ),
        )
    };
    let words_of = |range: u32| -> Result<Vec<(u128, Word)>> {
        let mut pairs: Vec<(u128, u32)> = Vec::new();
        for seg in &segs {
            for i in in_range(&seg.persons, range) {
                let hash = seg.persons.person(i);
                pairs.push((hash, seg.base.saturating_add(seg.persons.person_row(i))));
            }
        }
        pairs.sort_unstable();
        let mut words = Vec::new();
        let mut at = 0;
        let mut tubes_of: Vec<Membership> = Vec::new();
        let mut rows: Vec<u32> = Vec::new();
        while at < pairs.len() {
            let hash = pairs[at].0;
            rows.clear();
            while at < pairs.len() && pairs[at].0 == hash {
                let row = pairs[at].1;
                if row as usize >= n_rows {
                    return Err(damaged());
                }
                if s.collected_at[row as usize] <= as_of {
                    rows.push(row);
                }
                at += 1;
            }
            let word = match rows.as_slice() {
                [] => continue,
                &[row] => {
                    let t = s.tube_of_row[row as usize] as usize;
                    let when = s.collected_at[row as usize];
                    Word {
                        round,
                        status: tube_status[t],
                        single: tubes.mode[t] == Mode::Single,
                        row,
                        result: tube_result[t],
                        at: when,
                        last_at: when,
                    }
                }
                many => {
                    tubes_of.clear();
                    tubes_of.extend(many.iter().map(|&row| {
                        membership(
                            s.tube_of_row[row as usize] as usize,
                            s.collected_at[row as usize],
                        )
                    }));
                    let (status, i) = status_rules::decide(&tubes_of);
                    let row = many[i];
                    let t = s.tube_of_row[row as usize] as usize;
                    Word {
                        round,
                        status,
                        single: tubes.mode[t] == Mode::Single,
                        row,
                        result: tube_result[t],
                        at: s.collected_at[row as usize],
                        last_at: tubes_of.iter().map(|m| m.at).max().unwrap_or(0),
                    }
                }
            };
            words.push((hash, word));
        }
        Ok(words)
    };
    state
        .par_iter_mut()
        .zip(0..HASH_RANGES)
        .try_for_each(|(held, range)| {
            merge(held, words_of(range)?, clearing);
            Ok(())
        })
}

/// Folds one range of a round's words into the histories of that range, by a sorted
/// merge.
fn merge(held: &mut Vec<(u128, History)>, words: Vec<(u128, Word)>, clearing: Clearing) {
    if words.is_empty() {
        return;
    }
    let old = std::mem::take(held);
    let mut out = Vec::with_capacity(old.len().max(words.len()));
    let mut words = words.into_iter().peekable();
    for (hash, mut h) in old {
        while let Some(&(w_hash, w)) = words.peek() {
            if w_hash > hash {
                break;
            }
            words.next();
            if w_hash == hash {
                h.add(w, clearing);
            } else {
                out.push((w_hash, History::new(w, clearing)));
            }
        }
        out.push((hash, h));
    }
    out.extend(words.map(|(hash, w)| (hash, History::new(w, clearing))));
    *held = out;
}

/// The population register as the codes read it: each registered person's hash with
/// the (global) row to read their id from and their group's dictionary code.
struct Register {
    /// The population segments' Parquet files, in manifest order.
    files: Vec<std::path::PathBuf>,
    /// Per hash range: (hash, row across `files`, group code or [`NONE`]), sorted.
    ranges: Vec<Vec<(u128, u32, u32)>>,
    /// Group names by code.
    groups: StringArray,
}

impl Register {
    /// `None` when the store holds no register.
    fn load(store: &Store) -> Result<Option<Register>> {
        let Some(Segments {
            files,
            sidecars,
            bases,
            rows: total,
        }) = Segments::open(store)?
        else {
            return Ok(None);
        };
        let root = store.root();
        // The group of every registration as a dictionary code: a few names, held once.
        let all: Vec<u32> = (0..total).collect();
        let column = read::fetch_files(store, &files, &population_schema(), &["group"], &all)?;
        let damaged = || {
            Error::damaged(
                root,
                "the population register's group column does not read back",
            )
        };
        let column = column
            .into_iter()
            .next()
            .filter(|c| c.len() == all.len())
            .ok_or_else(damaged)?;
        drop(all);
        let dictionary = DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8));
        let codes = arrow_cast::cast(&column, &dictionary)?;
        drop(column);
        let codes = codes
            .as_dictionary_opt::<UInt32Type>()
            .ok_or_else(damaged)?;
        let groups = codes
            .values()
            .as_string_opt::<i32>()
            .cloned()
            .ok_or_else(damaged)?;
        let keys = codes.keys();
        let code_of = |row: u32| -> u32 {
            let row = row as usize;
            if keys.is_null(row) {
                return NONE;
            }
            let k = keys.value(row);
            if text_at(&groups, k as usize).is_empty() {
                NONE
            } else {
                k
            }
        };
        let ranges = (0..HASH_RANGES)
            .into_par_iter()
            .map(|range| {
                let mut regs: Vec<(u128, u32)> = Vec::new();
                for (f, &base) in sidecars.iter().zip(&bases) {
                    for i in in_range(f, range) {
                        let hash = f.person(i);
                        let row = base.saturating_add(f.person_row(i));
                        if row < total {
                            regs.push((hash, row));
                        }
                    }
                }
                // Later segments and later lines are later registrations: each person's
                // group comes from the latest that states one.
                regs.sort_unstable();
                let mut out: Vec<(u128, u32, u32)> = Vec::new();
                for (hash, row) in regs {
                    let code = code_of(row);
                    match out.last_mut() {
                        Some(last) if last.0 == hash => {
                            last.1 = row;
                            if code != NONE {
                                last.2 = code;
                            }
                        }
                        _ => out.push((hash, row, code)),
                    }
                }
                out
            })
            .collect();
        Ok(Some(Register {
            files,
            ranges,
            groups,
        }))
    }
}

/// Where a code's person id is read from.
#[derive(Debug, Clone, Copy)]
enum IdAt {
    /// The deciding row of the code's word (round number in `Word::round`).
    Word,
    /// A register row.
    Register(u32),
}

/// One person's decided code, before any text is read.
#[derive(Debug, Clone, Copy)]
struct Decided {
    code: Code,
    id: IdAt,
    /// Group code in the register, or [`NONE`].
    group: u32,
    /// Position of the code's rows among those fetched for its round (collection,
    /// result), or of the register row.
    at: (u32, u32),
}

/// Counts of codes by color and by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Red codes.
    pub red: u64,
    /// Yellow codes.
    pub yellow: u64,
    /// Green codes.
    pub green: u64,
    /// By reason word (`no_negative_within_48h`, ...), sorted.
    pub by_reason: BTreeMap<String, u64>,
}

/// The text fetched for the rows of one round that decided codes.
struct RoundText {
    name: String,
    person: StringArray,
    tube: StringArray,
    collected: Sources,
    outcome: StringArray,
    ct_orf1ab: arrow_array::Float32Array,
    ct_n: arrow_array::Float32Array,
    reported_at: arrow_array::TimestampMillisecondArray,
    lab: StringArray,
    plate: StringArray,
    reported: Sources,
    /// The result rows that came past the specimen limit of tubes with no result that
    /// counts, with their tube's first swab, by row: such a row shown is explained.
    late: Vec<(u32, Millis)>,
}

/// `batch N, FILE line L` columns of fetched rows.
struct Sources {
    batch: arrow_array::UInt32Array,
    file: StringArray,
    line: arrow_array::UInt64Array,
}

impl Sources {
    fn of(store: &Store, c: &[ArrayRef]) -> Result<Sources> {
        let damaged = || {
            Error::damaged(
                store.root(),
                "a source column of a segment does not read back",
            )
        };
        Ok(Sources {
            batch: c[0]
                .as_primitive_opt::<UInt32Type>()
                .cloned()
                .ok_or_else(damaged)?,
            file: c[1].as_string_opt::<i32>().cloned().ok_or_else(damaged)?,
            line: c[2]
                .as_primitive_opt::<UInt64Type>()
                .cloned()
                .ok_or_else(damaged)?,
        })
    }

    fn write(&self, i: usize, out: &mut String) {
        use std::fmt::Write as _;
        if i < self.batch.len() {
            let _ = write!(
                out,
                "batch {}, {} line {}",
                self.batch.value(i),
                text_at(&self.file, i),
                self.line.value(i)
            );
        }
    }
}

/// The health codes of every person of the store as of a time, in person-id order,
/// made row by row as they are written.
pub struct CodesAsOf {
    /// The time.
    pub as_of: Millis,
    /// Whether the store holds a register (without one nobody must test).
    pub registered: bool,
    zone: Offset,
    limit: SpecimenLimit,
    rounds: Vec<RoundText>,
    register_person: StringArray,
    groups: StringArray,
    codes: Vec<Decided>,
    order: Vec<u32>,
}

/// One person's words by round and their register entry ([`super::person`]).
pub struct OnePerson {
    /// Every round with a swab by the time, oldest first.
    pub rounds: Vec<String>,
    /// The rounds that swabbed the person, oldest first, with their word in each.
    pub words: Vec<(String, Word)>,
    /// Their window in hours, `None` when not registered.
    pub window_hours: Option<f64>,
    /// Their group in the register (empty: none).
    pub group: String,
}

/// Everything up to the decided codes, before text.
struct Computed {
    rounds: Vec<(String, Millis)>,
    codes: Vec<Vec<Decided>>,
    register: Option<Register>,
    /// Per round, [`RoundText::late`].
    late: Vec<Vec<(u32, Millis)>>,
    limit: SpecimenLimit,
}

/// The late result rows of the tubes of `s` with no result that counts, with their
/// tube's first swab, by row.
fn late_rows(s: &Statuses) -> Vec<(u32, Millis)> {
    let t = &s.tubes;
    let mut rows: Vec<(u32, Millis)> = t
        .past_limit
        .iter()
        .flat_map(|p| {
            let tube = p.tube as usize;
            let (lo, hi) = (
                t.result_start.get(tube).copied().unwrap_or(0) as usize,
                t.result_start.get(tube + 1).copied().unwrap_or(0) as usize,
            );
            t.result_rows
                .get(lo..hi)
                .unwrap_or_default()
                .iter()
                .filter(|&&r| s.results.is_late(r as usize))
                .map(move |&r| (r, p.first_swab))
        })
        .collect();
    rows.sort_unstable();
    rows
}

fn compute(store: &Store, as_of: Millis) -> Result<Computed> {
    let config: HealthCodesConfig = store.config()?.health_codes;
    let clearing = Clearing {
        negatives: config.clear_negatives,
        gap: config.clear_gap(),
    };
    let rounds = rounds_as_of(store, as_of)?;
    if rounds.len() > usize::from(u16::MAX) {
        return Err(Error::Usage(format!(
            "{} rounds are more than the codes can merge",
            rounds.len()
        )));
    }
    let mut state: Vec<Vec<(u128, History)>> = vec![Vec::new(); HASH_RANGES as usize];
    let mut late = Vec::with_capacity(rounds.len());
    let limit = SpecimenLimit::of_store(store)?;
    for (k, (name, _)) in rounds.iter().enumerate() {
        let k = u16::try_from(k).unwrap_or(u16::MAX);
        let s = Statuses::load(store, name)?;
        fold_round(&s, k, as_of, store, &mut state, clearing)?;
        late.push(late_rows(&s));
    }
    let register = Register::load(store)?;
    let window_of = |code: u32| -> f64 {
        let group = register
            .as_ref()
            .filter(|_| code != NONE)
            .map_or("", |r| text_at(&r.groups, code as usize));
        config.window_hours(group)
    };
    let empty = Vec::new();
    let codes: Vec<Vec<Decided>> = state
        .par_iter()
        .enumerate()
        .map(|(range, held)| {
            let regs = register.as_ref().map_or(&empty, |r| &r.ranges[range]);
            let mut out = Vec::with_capacity(held.len().max(regs.len()));
            let (mut i, mut j) = (0, 0);
            while i < held.len() || j < regs.len() {
                let h = held.get(i).map(|x| x.0);
                let g = regs.get(j).map(|x| x.0);
                let (has_history, has_reg) = match (h, g) {
                    (Some(h), Some(g)) => (h <= g, g <= h),
                    (Some(_), None) => (true, false),
                    (None, _) => (false, true),
                };
                let history = has_history.then(|| &held[i].1);
                let reg = has_reg.then(|| regs[j]);
                let window = reg.map(|(_, _, code)| window_of(code));
                let code = decide(history, window, clearing, as_of);
                let id = match (code.by, reg) {
                    (Some(_), _) | (None, None) => IdAt::Word,
                    (None, Some((_, row, _))) => IdAt::Register(row),
                };
                out.push(Decided {
                    code,
                    id,
                    group: reg.map_or(NONE, |r| r.2),
                    at: (NONE, NONE),
                });
                i += usize::from(has_history);
                j += usize::from(has_reg);
            }
            out
        })
        .collect();
    Ok(Computed {
        rounds,
        codes,
        register,
        late,
        limit,
    })
}

/// Codes by color and reason as of `as_of`, across every round of the store, without
/// reading any text (the round report's part).
pub fn counts_as_of(store: &Store, as_of: Millis) -> Result<Counts> {
    let computed = compute(store, as_of)?;
    let mut counts = Counts::default();
    let mut word = String::new();
    for c in computed.codes.iter().flatten() {
        count(&mut counts, &c.code, &mut word);
    }
    Ok(counts)
}

fn count(counts: &mut Counts, code: &Code, word: &mut String) {
    *match code.color {
        Color::Red => &mut counts.red,
        Color::Yellow => &mut counts.yellow,
        Color::Green => &mut counts.green,
    } += 1;
    word.clear();
    code.reason.write(code.window_hours, word);
    match counts.by_reason.get_mut(word.as_str()) {
        Some(n) => *n += 1,
        None => {
            counts.by_reason.insert(word.clone(), 1);
        }
    }
}

impl CodesAsOf {
    /// Decides every person's code as of `as_of` and reads the text of the rows that
    /// decided them.
    pub fn load(store: &Store, as_of: Millis) -> Result<CodesAsOf> {
        let Computed {
            rounds,
            codes,
            register,
            late,
            limit,
            ..
        } = compute(store, as_of)?;
        let mut codes: Vec<Decided> = codes.into_iter().flatten().collect();
        let mut texts = Vec::with_capacity(rounds.len());
        for ((k, (name, _)), late) in rounds.iter().enumerate().zip(late) {
            let mut text = fetch_round(store, name, k, &mut codes)?;
            text.late = late;
            texts.push(text);
        }
        let (register_person, groups, registered) = match &register {
            Some(reg) => {
                let mut rows: Vec<u32> = codes
                    .iter()
                    .filter_map(|c| match c.id {
                        IdAt::Register(row) => Some(row),
                        IdAt::Word => None,
                    })
                    .collect();
                rows.par_sort_unstable();
                let c =
                    read::fetch_files(store, &reg.files, &population_schema(), &["person"], &rows)?;
                let person = c
                    .first()
                    .and_then(|a| a.as_string_opt::<i32>())
                    .filter(|a| a.len() == rows.len())
                    .cloned()
                    .ok_or_else(|| {
                        Error::damaged(
                            store.root(),
                            "the population register's person column does not read back",
                        )
                    })?;
                for c in &mut codes {
                    if let IdAt::Register(row) = c.id {
                        c.at.0 =
                            u32::try_from(rows.binary_search(&row).unwrap_or(0)).unwrap_or(NONE);
                    }
                }
                (person, reg.groups.clone(), true)
            }
            None => (
                StringArray::from(Vec::<&str>::new()),
                StringArray::from(Vec::<&str>::new()),
                false,
            ),
        };
        let mut made = CodesAsOf {
            as_of,
            registered,
            zone: store.zone(),
            limit,
            rounds: texts,
            register_person,
            groups,
            codes,
            order: Vec::new(),
        };
        let n = u32::try_from(made.codes.len())
            .map_err(|_| Error::Usage("more persons than one export holds".into()))?;
        // Eight bytes of each id past the prefix every id shares, as a number, settle
        // most comparisons (comparing the ids themselves was half of the export's time).
        let first: &[u8] = if n == 0 { &[] } else { made.id(0).as_bytes() };
        let shared = (0..n)
            .into_par_iter()
            .map(|i| {
                let id = made.id(i as usize).as_bytes();
                id.iter().zip(first).take_while(|(a, b)| a == b).count()
            })
            .min()
            .unwrap_or(0);
        let mut keyed: Vec<(u64, u32)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut head = [0u8; 8];
                let id = made
                    .id(i as usize)
                    .as_bytes()
                    .get(shared..)
                    .unwrap_or_default();
                let k = id.len().min(8);
                head[..k].copy_from_slice(&id[..k]);
                (u64::from_be_bytes(head), i)
            })
            .collect();
        keyed.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| made.id(a.1 as usize).cmp(made.id(b.1 as usize)))
        });
        let order: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
        made.order = order;
        Ok(made)
    }

    /// The person id of code `i`.
    fn id(&self, i: usize) -> &str {
        let c = &self.codes[i];
        match (c.id, c.code.by) {
            (IdAt::Word, Some(w)) => self
                .rounds
                .get(usize::from(w.round))
                .map_or("", |r| text_at(&r.person, c.at.0 as usize)),
            (IdAt::Register(_), _) => text_at(&self.register_person, c.at.0 as usize),
            (IdAt::Word, None) => "",
        }
    }

    /// Codes by color and reason.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        let mut word = String::new();
        for c in &self.codes {
            count(&mut counts, &c.code, &mut word);
        }
        counts
    }
}

/// Fetches the text of the rows of round `k` that decided codes, and notes in each
/// such code where its rows landed.
fn fetch_round(store: &Store, name: &str, k: usize, codes: &mut [Decided]) -> Result<RoundText> {
    let of_round = |c: &Decided| c.code.by.filter(|w| usize::from(w.round) == k);
    let mut rows: Vec<u32> = codes
        .iter()
        .filter_map(|c| of_round(c).map(|w| w.row))
        .collect();
    rows.par_sort_unstable();
    rows.dedup();
    let mut results: Vec<u32> = codes
        .iter()
        .filter_map(|c| of_round(c).map(|w| w.result).filter(|&r| r != NONE))
        .collect();
    results.par_sort_unstable();
    results.dedup();
    codes.par_iter_mut().for_each(|c| {
        if let Some(w) = of_round(c) {
            let at = |v: &[u32], x: u32| {
                v.binary_search(&x)
                    .ok()
                    .and_then(|i| u32::try_from(i).ok())
                    .unwrap_or(NONE)
            };
            c.at = (
                at(&rows, w.row),
                if w.result == NONE {
                    NONE
                } else {
                    at(&results, w.result)
                },
            );
        }
    });
    let damaged = || {
        Error::damaged(
            store.root(),
            format!("round {name}: the rows that decided health codes do not read back"),
        )
    };
    let c = read::fetch(
        store,
        name,
        BatchKind::Collections,
        &["person", "tube", "batch", "source", "line"],
        &rows,
    )?;
    if c.len() != 5 || c.iter().any(|a| a.len() != rows.len()) {
        return Err(damaged());
    }
    let text = |a: &ArrayRef| a.as_string_opt::<i32>().cloned().ok_or_else(damaged);
    let person = text(&c[0])?;
    let tube = text(&c[1])?;
    let collected = Sources::of(store, &c[2..5])?;
    let r = read::fetch(
        store,
        name,
        BatchKind::Results,
        &[
            "result",
            "ct_orf1ab",
            "ct_n",
            "reported_at",
            "lab",
            "plate",
            "batch",
            "source",
            "line",
        ],
        &results,
    )?;
    if r.len() != 9 || r.iter().any(|a| a.len() != results.len()) {
        return Err(damaged());
    }
    Ok(RoundText {
        name: name.to_owned(),
        person,
        tube,
        collected,
        outcome: text(&r[0])?,
        ct_orf1ab: r[1]
            .as_primitive_opt::<Float32Type>()
            .cloned()
            .ok_or_else(damaged)?,
        ct_n: r[2]
            .as_primitive_opt::<Float32Type>()
            .cloned()
            .ok_or_else(damaged)?,
        reported_at: r[3]
            .as_primitive_opt::<TimestampMillisecondType>()
            .cloned()
            .ok_or_else(damaged)?,
        lab: text(&r[4])?,
        plate: text(&r[5])?,
        reported: Sources::of(store, &r[6..9])?,
        late: Vec::new(),
    })
}

/// One person's code as of a time and the evidence behind it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CodeRow<'a> {
    /// Person id.
    pub person: String,
    /// The code's color.
    pub color: &'static str,
    /// Why (`positive`, `recall`, `no_negative_within_48h`, `negative_within_72h`, ...).
    pub reason: String,
    /// When a green code from a swab within the window lapses (empty otherwise).
    pub valid_until: String,
    /// Their key group in the register (empty: none).
    pub group: &'a str,
    /// The round whose tube decided it (empty: never swabbed).
    pub round: &'a str,
    /// Their status in that round, as of the time.
    pub status: &'static str,
    /// The tube.
    pub tube: &'a str,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// When they were swabbed into it.
    pub collected_at: String,
    /// Where the collection row came from: `batch N, FILE line L`.
    pub collection_source: String,
    /// The tube's effective result as of the time (empty when none yet).
    pub result: &'a str,
    /// Ct `ORF1ab` of that result.
    pub ct_orf1ab: Option<f32>,
    /// Ct N of that result.
    pub ct_n: Option<f32>,
    /// When it was reported.
    pub reported_at: String,
    /// The lab that tested it.
    pub lab: &'a str,
    /// The plate.
    pub plate: &'a str,
    /// Where the result row came from.
    pub result_source: String,
    /// Why that result does not count, when it does not: "tested 50 h after the swab,
    /// past the 48 h specimen limit" (the tube needs a resample).
    pub not_counted: String,
}

impl ListRow for CodeRow<'_> {
    const HEADER: &'static [&'static str] = &[
        "person",
        "color",
        "reason",
        "valid_until",
        "group",
        "round",
        "status",
        "tube",
        "mode",
        "collected_at",
        "collection_source",
        "result",
        "ct_orf1ab",
        "ct_n",
        "reported_at",
        "lab",
        "plate",
        "result_source",
        "not_counted",
    ];

    /// Every batch with the same columns: text, blanks as nulls, Cts as floats.
    fn record_batch(rows: &[Self]) -> Result<arrow_array::RecordBatch> {
        use std::sync::Arc;
        let fields: Vec<arrow_schema::Field> = Self::HEADER
            .iter()
            .map(|&name| match name {
                "ct_orf1ab" | "ct_n" => arrow_schema::Field::new(name, DataType::Float32, true),
                "person" | "color" | "reason" => {
                    arrow_schema::Field::new(name, DataType::Utf8, false)
                }
                _ => arrow_schema::Field::new(name, DataType::Utf8, true),
            })
            .collect();
        let text = |f: for<'r> fn(&'r CodeRow<'r>) -> &'r str| -> ArrayRef {
            Arc::new(
                rows.iter()
                    .map(|r| Some(f(r)).filter(|s| !s.is_empty()))
                    .collect::<StringArray>(),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.person.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.color))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.reason.as_str()),
            )),
            text(|r| &r.valid_until),
            text(|r| r.group),
            text(|r| r.round),
            text(|r| r.status),
            text(|r| r.tube),
            text(|r| r.mode),
            text(|r| &r.collected_at),
            text(|r| &r.collection_source),
            text(|r| r.result),
            Arc::new(
                rows.iter()
                    .map(|r| r.ct_orf1ab)
                    .collect::<arrow_array::Float32Array>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| r.ct_n)
                    .collect::<arrow_array::Float32Array>(),
            ),
            text(|r| &r.reported_at),
            text(|r| r.lab),
            text(|r| r.plate),
            text(|r| &r.result_source),
            text(|r| &r.not_counted),
        ];
        Ok(arrow_array::RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new(fields)),
            columns,
        )?)
    }
}

impl RowMaker for CodesAsOf {
    type Row<'a> = CodeRow<'a>;

    /// Other programs read the codes line by line.
    const JSON: JsonLayout = JsonLayout::Lines;

    fn len(&self) -> usize {
        self.order.len()
    }

    fn fill<'a>(&'a self, at: usize, out: &mut CodeRow<'a>) {
        let i = self.order[at] as usize;
        let c = &self.codes[i];
        out.person.clear();
        out.person.push_str(self.id(i));
        out.color = c.code.color.as_str();
        out.reason.clear();
        c.code.reason.write(c.code.window_hours, &mut out.reason);
        out.valid_until.clear();
        if let Some(until) = c.code.valid_until {
            time::write_rfc3339(&mut out.valid_until, until, self.zone);
        }
        out.group = if c.group == NONE {
            ""
        } else {
            text_at(&self.groups, c.group as usize)
        };
        for s in [
            &mut out.collected_at,
            &mut out.collection_source,
            &mut out.reported_at,
            &mut out.result_source,
            &mut out.not_counted,
        ] {
            s.clear();
        }
        let word = c
            .code
            .by
            .and_then(|w| self.rounds.get(usize::from(w.round)).map(|r| (w, r)));
        let Some((w, r)) = word else {
            (out.round, out.status, out.tube, out.mode, out.result) = ("", "", "", "", "");
            (out.ct_orf1ab, out.ct_n, out.lab, out.plate) = (None, None, "", "");
            return;
        };
        let row = c.at.0 as usize;
        out.round = &r.name;
        out.status = w.status.as_str();
        out.tube = text_at(&r.tube, row);
        out.mode = if w.single {
            Mode::Single.as_str()
        } else {
            Mode::Pool.as_str()
        };
        time::write_rfc3339(&mut out.collected_at, w.at, self.zone);
        r.collected.write(row, &mut out.collection_source);
        let res = c.at.1 as usize;
        if c.at.1 == NONE || res >= r.outcome.len() {
            (out.result, out.ct_orf1ab, out.ct_n, out.lab, out.plate) = ("", None, None, "", "");
            return;
        }
        out.result = text_at(&r.outcome, res);
        let ct = |a: &arrow_array::Float32Array| (!a.is_null(res)).then(|| a.value(res));
        (out.ct_orf1ab, out.ct_n) = (ct(&r.ct_orf1ab), ct(&r.ct_n));
        time::write_rfc3339(&mut out.reported_at, r.reported_at.value(res), self.zone);
        out.lab = if r.lab.is_null(res) {
            ""
        } else {
            r.lab.value(res)
        };
        out.plate = if r.plate.is_null(res) {
            ""
        } else {
            r.plate.value(res)
        };
        r.reported.write(res, &mut out.result_source);
        if let Ok(i) = r.late.binary_search_by_key(&w.result, |&(row, _)| row) {
            let reported = r.reported_at.value(res);
            out.not_counted
                .push_str(&self.limit.explain(r.late[i].1, reported));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest_collections, ingest_results};

    #[test]
    fn rounds_are_ordered_by_their_first_swab_from_the_footers() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let mut store = Store::open_writer(&dir.path().join("store")).expect("store");
        let opts = IngestOptions::default();
        // "later" is ingested first but swabbed a day after "earlier".
        let later = file(
            "b.csv",
            "tube,person,mode,collected_at\nTB02,p1,single,2022-04-03 08:00:00\n",
        );
        let earlier = file(
            "a.csv",
            "tube,person,mode,collected_at\nTB01,p1,single,2022-04-02 09:00:00\nTB03,p2,single,2022-04-02 08:30:00\n",
        );
        ingest_collections(&mut store, &[later], "later", &opts, None).expect("ingest");
        ingest_collections(&mut store, &[earlier], "earlier", &opts, None).expect("ingest");
        let zone = store.zone();
        let t = |s: &str| time::parse(s.as_bytes(), zone).expect("time");
        assert_eq!(
            first_swab_of_footers(&store, "earlier").expect("read"),
            Some(t("2022-04-02 08:30:00"))
        );
        let rounds = rounds_as_of(&store, t("2022-04-05 00:00:00")).expect("rounds");
        let names: Vec<&str> = rounds.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["earlier", "later"]);
        // A round not swabbed by the time is left out.
        assert_eq!(
            rounds_as_of(&store, t("2022-04-02 12:00:00"))
                .expect("rounds")
                .len(),
            1
        );
        // p1: negative single on 04-02, positive single on 04-03: red as of 04-03 12:00.
        let results = file(
            "r.csv",
            "tube,result,reported_at\nTB01,negative,2022-04-02 12:00:00\nTB02,positive,2022-04-03 11:00:00\n",
        );
        ingest_results(&mut store, &[results], &opts, None).expect("ingest");
        let codes = CodesAsOf::load(&store, t("2022-04-03 12:00:00")).expect("codes");
        let counts = codes.counts();
        assert_eq!((counts.red, counts.green), (1, 1), "{counts:?}");
        // An hour earlier the positive is not reported yet: p1's tube of 04-03 is
        // pending, like p2's, whose tube never got a result.
        let counts = CodesAsOf::load(&store, t("2022-04-03 10:00:00"))
            .expect("codes")
            .counts();
        assert_eq!(
            (counts.red, counts.by_reason.get("pending")),
            (0, Some(&2)),
            "{counts:?}"
        );
    }
}
