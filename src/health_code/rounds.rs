//! Health codes across every round of the store, as of a time (`pooltrack export
//! health-codes --as-of T`): each person's color from all their tubes in all rounds,
//! by the rules in [`super::rules`], with the tube and result that decided it.
//!
//! The computation streams over compact columns, round by round, never over text:
//! - each round is loaded from the same sidecar indexes as the per-round status report
//!   ([`RoundRows::load`]: tubes, results, and each row's tube and swab time, without
//!   the merge of the person indexes that finds persons with several rows, which the
//!   fold below does anyway), and re-decided **as of T** (results reported after T and
//!   swabs after T do not count);
//! - its persons come in 128-bit-hash order from the round's sorted person sidecars,
//!   read through the file in runs, in 16 shards of the hash space on all cores, each
//!   person reduced to one [`Word`] and folded, rounds oldest first (by their earliest
//!   swab), into one compact slot per person (60 bytes: the
//!   [`super::rules::History`] without what it never reads) by a merge in place per
//!   shard;
//! - the population register (its person sidecars and its `group` column as numbers)
//!   is merged shard by shard in the same hash order, each person decided into 32
//!   bytes (the deciding round, row, result row, swab, status, reason, group and, once
//!   read, the key their id sorts by) as their slots are freed;
//! - only then is text read: for each round, the person, tube and source of the rows
//!   that decided a code and the result rows behind them, marked a bit a row and read a
//!   row group per task, kept compactly (ids of the resident-number form as a number
//!   that sorts as their text, barcodes once per tube, batch and file once per run);
//! - the codes themselves are sorted by that key on all cores, so that rows are made in
//!   order of memory, and made into text row by row as they are written.
//!
//! Memory is one slot per person plus one round's load, then 32 bytes a code and the
//! compact text of its rows.

mod fold;
mod state;
mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use rayon::prelude::*;
use serde::Serialize;

use super::Color;
use super::rules::{Clearing, Reason, Word};
use crate::model::Mode;
use crate::output::ListRow;
use crate::output::stream::{
    JsonLayout, RowMaker, WARM_ROWS, csv_cell, csv_field, csv_float, csv_word, warm_block,
};
use crate::store::cited::Files;
use crate::store::config::{HealthCodesConfig, hours_to_millis};
use crate::store::{BatchKind, Store, read};
use crate::time::{self, Millis, Offset};
use crate::tracker::{NONE, RoundRows, SpecimenLimit};
use crate::{Error, Result};
use fold::{Out, REASONS, REGISTERED, Range, Register, SINGLE};
use text::{OTHER, Ranks, ResultsText, RowsText};

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
    /// The first rounds, taken from the state saved by an earlier export.
    saved: usize,
    /// Per round: collection rows and result rows.
    sizes: Vec<(usize, usize)>,
    /// Per round, the late result rows ([`ResultsText::late`]).
    late: Vec<Vec<(u32, Millis)>>,
    outs: Vec<Out>,
    register: Option<Register>,
    windows: Windows,
    limit: SpecimenLimit,
}

/// The window of each kind of person, and the reason words that name it.
struct Windows {
    /// Hours by window number: 0 unregistered (0 h), 1 registered without a group, then
    /// each group of the register by number.
    hours: Vec<f64>,
    /// The reason words, [`REASONS`] order, by window number.
    words: Vec<[String; REASONS.len()]>,
}

impl Windows {
    fn new(config: &HealthCodesConfig, groups: &[String]) -> Windows {
        let mut hours = vec![0.0, config.window_hours("")];
        hours.extend(groups.iter().map(|g| config.window_hours(g)));
        let words = hours
            .iter()
            .map(|&h| {
                REASONS.map(|r| {
                    let mut w = String::new();
                    r.write(h, &mut w);
                    w
                })
            })
            .collect();
        Windows { hours, words }
    }

    /// The window number of a code.
    fn of(o: &Out) -> usize {
        if o.bits & REGISTERED == 0 {
            0
        } else if o.group == NONE {
            1
        } else {
            o.group as usize + 2
        }
    }

    fn word(&self, o: &Out) -> &str {
        let reason = usize::from(o.bits & 0x0f).min(REASONS.len() - 1);
        self.words
            .get(Self::of(o))
            .map_or("", |w| w[reason].as_str())
    }

    /// When a green code from a swab within the window lapses.
    fn valid_until(&self, o: &Out) -> Option<Millis> {
        match o.reason() {
            Reason::NegativeWithin | Reason::PendingWithin => {
                let h = self.hours.get(Self::of(o)).copied().unwrap_or(0.0);
                Some(o.at.saturating_add(hours_to_millis(h)))
            }
            _ => None,
        }
    }
}

/// The color of a reason.
fn color(reason: Reason) -> Color {
    match reason {
        Reason::Positive => Color::Red,
        Reason::Recall | Reason::RetestPending | Reason::Resample | Reason::NoNegative => {
            Color::Yellow
        }
        Reason::NegativeWithin | Reason::PendingWithin | Reason::Negative | Reason::Pending => {
            Color::Green
        }
    }
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
    let limit = SpecimenLimit::of_store(store)?;
    // The settled rounds' fold saved by an earlier export, when it still holds.
    let now = state::Fingerprints::of(store, &rounds)?;
    let found = state::open(store, &rounds, &now, as_of);
    // The morning's case: the state holds every round but the newest, which is read
    // beside the state's shards (both are reads, then decoding on all cores).
    let newest = found
        .as_ref()
        .map(state::Found::rounds)
        .filter(|&k| k + 1 == rounds.len());
    let (found, mut early) = match newest {
        Some(k) => {
            let (found, rows) = rayon::join(
                || found.and_then(state::Found::read),
                || RoundRows::load(store, &rounds[k].0),
            );
            (found, Some((k, rows)))
        }
        None => (found.and_then(state::Found::read), None),
    };
    let (mut state, mut sizes, mut late, mut horizon, saved) = match found {
        Some(s) => (s.state, s.sizes, s.late, s.horizon, s.rounds),
        None => (
            (0..fold::SHARDS).map(|_| Range::default()).collect(),
            Vec::with_capacity(rounds.len()),
            Vec::with_capacity(rounds.len()),
            Millis::MIN,
            0,
        ),
    };
    // Every round but the newest is saved for the next export once settled: the newest
    // may still be taking results.
    let keep = rounds.len().saturating_sub(1);
    let mut facts = Vec::new();
    for (k, (name, _)) in rounds.iter().enumerate().skip(saved) {
        let mut s = match early.take() {
            Some((at, rows)) if at == k => rows?,
            other => {
                early = other;
                RoundRows::load(store, name)?
            }
        };
        horizon = horizon.max(settled_at(&s));
        sizes.push((s.tube_of_row.len(), s.results.outcome.len()));
        let n = u16::try_from(k).unwrap_or(u16::MAX);
        fold::fold_round(&mut s, &mut facts, n, as_of, store, &mut state, clearing)?;
        late.push(fold::late_rows(&s));
        if k + 1 == keep && horizon <= as_of {
            state::save(store, &rounds[..keep], &now, horizon, &sizes, &late, &state);
        }
    }
    drop(facts);
    let register = Register::load(store)?;
    let groups = register.as_ref().map_or(&[][..], |r| r.groups.as_slice());
    let windows = Windows::new(&config, groups);
    // Each group's window looked up once, not once a person.
    let window_of = |code: u32| -> f64 {
        let at = if code == NONE { 1 } else { code as usize + 2 };
        windows
            .hours
            .get(at)
            .or(windows.hours.get(1))
            .copied()
            .unwrap_or(0.0)
    };
    let outs = fold::decide_all(state, register.as_ref(), &window_of, clearing, as_of)?;
    Ok(Computed {
        rounds,
        saved,
        sizes,
        late,
        outs,
        register,
        windows,
        limit,
    })
}

/// The latest swab or report of a round: from then on, what it says of each person
/// no longer depends on the time asked about.
fn settled_at(s: &RoundRows) -> Millis {
    let swabs = s.collected_at.iter().copied().max();
    let reports = s.results.reported_at.iter().copied().max();
    swabs.max(reports).unwrap_or(Millis::MIN)
}

/// Codes by color and reason as of `as_of`, across every round of the store, without
/// reading any text (the round report's part).
pub fn counts_as_of(store: &Store, as_of: Millis) -> Result<Counts> {
    let c = compute(store, as_of)?;
    Ok(count(c.outs.iter(), &c.windows))
}

fn count<'a>(outs: impl Iterator<Item = &'a Out>, windows: &Windows) -> Counts {
    let mut by = vec![[0u64; REASONS.len()]; windows.words.len()];
    for o in outs {
        let reason = usize::from(o.bits & 0x0f).min(REASONS.len() - 1);
        if let Some(n) = by.get_mut(Windows::of(o)) {
            n[reason] += 1;
        }
    }
    let mut counts = Counts::default();
    for (w, n) in by.iter().enumerate() {
        for (r, &n) in n.iter().enumerate() {
            if n == 0 {
                continue;
            }
            *match color(REASONS[r]) {
                Color::Red => &mut counts.red,
                Color::Yellow => &mut counts.yellow,
                Color::Green => &mut counts.green,
            } += n;
            *counts
                .by_reason
                .entry(windows.words[w][r].clone())
                .or_insert(0) += n;
        }
    }
    counts
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
    /// Round names, oldest first.
    names: Vec<String>,
    /// How many of them came folded from the state an earlier export saved.
    saved: usize,
    rows: Vec<RowsText>,
    results: Vec<ResultsText>,
    files: Vec<String>,
    groups: Vec<String>,
    windows: Windows,
    /// The codes in output order, each with its id's key ([`text::resident_key`]).
    codes: Vec<Out>,
    /// The ids of other forms, which keys at or past [`OTHER`] name.
    other: text::Arena,
}

impl CodesAsOf {
    /// Why the result row `row`, reported at `reported`, does not count, when it came
    /// past the specimen limit of a tube with no result that counts.
    fn late_explained(&self, r: &ResultsText, row: u32, reported: Millis) -> Option<String> {
        r.late
            .binary_search_by_key(&row, |&(row, _)| row)
            .ok()
            .map(|i| self.limit.explain(r.late[i].1, reported))
    }

    /// Decides every person's code as of `as_of` and reads the text of the rows that
    /// decided them.
    pub fn load(store: &Store, as_of: Millis) -> Result<CodesAsOf> {
        let Computed {
            rounds,
            saved,
            sizes,
            late,
            outs,
            register,
            windows,
            limit,
        } = compute(store, as_of)?;
        // The rows to read, a bit a row: each round's deciding collection and result
        // rows, and the register rows of persons never swabbed.
        let row_marks: Vec<_> = sizes.iter().map(|&(r, _)| Ranks::marks(r)).collect();
        let result_marks: Vec<_> = sizes.iter().map(|&(_, r)| Ranks::marks(r)).collect();
        let reg_rows = register.as_ref().map_or(0, Register::rows);
        let reg_marks = Ranks::marks(reg_rows);
        outs.par_iter().for_each(|o| {
            if o.by_word() {
                let k = usize::from(o.round);
                if let Some(m) = row_marks.get(k) {
                    text::mark(m, o.row);
                }
                if o.result != NONE
                    && let Some(m) = result_marks.get(k)
                {
                    text::mark(m, o.result);
                }
            } else if o.row != NONE {
                text::mark(&reg_marks, o.row);
            }
        });
        let mut files = Files::default();
        let mut rows = Vec::with_capacity(rounds.len());
        let mut results = Vec::with_capacity(rounds.len());
        for (((name, _), &(n_rows, n_results)), (marks, (rmarks, late))) in rounds
            .iter()
            .zip(&sizes)
            .zip(row_marks.iter().zip(result_marks.iter().zip(late)))
        {
            rows.push(text::rows_text(
                store,
                name,
                Ranks::of(n_rows, marks),
                &mut files,
            )?);
            let mut r = text::results_text(store, name, Ranks::of(n_results, rmarks), &mut files)?;
            r.late = late;
            results.push(r);
        }
        drop((row_marks, result_marks));
        let reg_ranks = Ranks::of(reg_rows, &reg_marks);
        drop(reg_marks);
        let (mut reg_ids, groups, registered) = match register {
            Some(reg) => (
                text::register_ids(store, &reg.files, &reg_ranks)?,
                reg.groups,
                true,
            ),
            None => (text::Ids::default(), Vec::new(), false),
        };
        // Every id's key in one list with the ids of other forms: the rounds' first,
        // then the register's.
        let mut other = text::Arena::default();
        let mut bases = Vec::with_capacity(rows.len());
        for r in &mut rows {
            bases.push(other.len() as u64);
            other.append(&std::mem::take(&mut r.other));
        }
        let reg_base = other.len() as u64;
        other.append(&std::mem::take(&mut reg_ids.other));
        if u32::try_from(outs.len()).is_err() {
            return Err(Error::Usage("more persons than one export holds".into()));
        }
        let rebase = |k: u64, base: u64| if k & OTHER == 0 { k } else { k + base };
        // Each code beside its key, sorted together: the rows are then made in order
        // of memory, where a list of places sent each row to a code in no order.
        // Each code's key in place, and the codes sorted by it: the rows are then made
        // in order of memory, where a list of places sent each row to a code in no order.
        let mut codes = outs;
        codes.par_iter_mut().for_each(|o| {
            let key = if o.by_word() {
                let k = usize::from(o.round);
                rows.get(k).and_then(|r| {
                    let i = r.ranks.rank(o.row)?;
                    r.key(i).map(|key| rebase(key, bases[k]))
                })
            } else {
                reg_ranks
                    .rank(o.row)
                    .and_then(|i| reg_ids.keys.get(i))
                    .map(|&key| rebase(key, reg_base))
            };
            o.key = key.unwrap_or(OTHER | u64::from(u32::MAX));
        });
        drop(reg_ids);
        for r in &mut rows {
            r.drop_keys();
        }
        text::sort_by_id(&mut codes, |o| o.key, &other);
        Ok(CodesAsOf {
            as_of,
            registered,
            zone: store.zone(),
            limit,
            names: rounds.into_iter().map(|(name, _)| name).collect(),
            saved,
            rows,
            results,
            files: files.names,
            groups,
            windows,
            codes,
            other,
        })
    }

    /// The rounds, oldest first, whose fold came from the state an earlier export saved
    /// (`STORE/health-codes.state`) rather than from reading them.
    pub fn saved_rounds(&self) -> &[String] {
        self.names.get(..self.saved).unwrap_or_default()
    }

    /// Codes by color and reason.
    pub fn counts(&self) -> Counts {
        count(self.codes.iter(), &self.windows)
    }
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
        let mut columns = super::CodeColumns::<17>::with_capacity(rows.len());
        for r in rows {
            columns.push(r);
        }
        columns.finish::<Self>(code_schema())
    }
}

impl super::CodeCells<17> for CodeRow<'_> {
    const CTS_AFTER: usize = 12;

    fn text(&self) -> [&str; 17] {
        [
            &self.person,
            self.color,
            &self.reason,
            &self.valid_until,
            self.group,
            self.round,
            self.status,
            self.tube,
            self.mode,
            &self.collected_at,
            &self.collection_source,
            self.result,
            &self.reported_at,
            self.lab,
            self.plate,
            &self.result_source,
            &self.not_counted,
        ]
    }

    fn cts(&self) -> [Option<f32>; 2] {
        [self.ct_orf1ab, self.ct_n]
    }
}

impl RowMaker for CodesAsOf {
    type Row<'a> = CodeRow<'a>;

    /// Other programs read the codes line by line.
    const JSON: JsonLayout = JsonLayout::Lines;

    const UNIQUE: &'static [&'static str] = &[
        "person",
        "valid_until",
        "tube",
        "collected_at",
        "collection_source",
        "reported_at",
        "result_source",
    ];

    fn len(&self) -> usize {
        self.codes.len()
    }

    /// The lines written straight from the fold, as `code_csv_lines` (the tests'
    /// reference) writes the rows [`RowMaker::fill`] makes: times and fixed words need
    /// no quoting and citations always do, so neither is made as text and then
    /// searched for what to quote.
    fn csv_rows(&self, rows: std::ops::Range<usize>, out: &mut Vec<u8>) -> std::io::Result<()> {
        for at in rows.clone() {
            self.warm(at, &rows);
            let o = &self.codes[at];
            let k = o.key;
            if k & OTHER == 0 {
                out.extend_from_slice(&text::resident_text(k));
            } else {
                let id = self
                    .other
                    .get(usize::try_from(k & !OTHER).unwrap_or(usize::MAX));
                csv_field(out, id.as_bytes());
            }
            csv_word(out, color(o.reason()).as_str());
            csv_cell(out, self.windows.word(o));
            out.push(b',');
            if let Some(until) = self.windows.valid_until(o) {
                time::push_rfc3339(out, until, self.zone);
            }
            let group = if o.group == NONE {
                ""
            } else {
                self.groups.get(o.group as usize).map_or("", String::as_str)
            };
            csv_cell(out, group);
            let k = usize::from(o.round);
            let (Some(name), Some(rows), Some(results), true) = (
                self.names.get(k),
                self.rows.get(k),
                self.results.get(k),
                o.by_word(),
            ) else {
                // round, status, tube, mode, collected_at, collection_source, result,
                // ct_orf1ab, ct_n, reported_at, lab, plate, result_source, not_counted
                out.extend_from_slice(&[b','; 14]);
                out.push(b'\n');
                continue;
            };
            csv_cell(out, name);
            csv_word(out, o.status.as_str());
            let rank = rows.ranks.rank(o.row);
            csv_cell(out, rank.map_or("", |i| rows.tube(i)));
            csv_word(
                out,
                if o.bits & SINGLE != 0 {
                    Mode::Single.as_str()
                } else {
                    Mode::Pool.as_str()
                },
            );
            out.push(b',');
            time::push_rfc3339(out, o.at, self.zone);
            out.push(b',');
            if let Some(i) = rank {
                rows.cite_csv(i, &self.files, out);
            }
            let Some(shown) = results.shown(o.result) else {
                // result, ct_orf1ab, ct_n, reported_at, lab, plate, result_source,
                // not_counted
                out.extend_from_slice(&[b','; 8]);
                out.push(b'\n');
                continue;
            };
            csv_cell(out, shown.outcome);
            for ct in [shown.ct_orf1ab, shown.ct_n] {
                out.push(b',');
                if let Some(v) = ct {
                    csv_float(out, v);
                }
            }
            out.push(b',');
            time::push_rfc3339(out, shown.reported_at, self.zone);
            csv_cell(out, shown.lab);
            csv_cell(out, shown.plate);
            out.push(b',');
            results.cited.write_csv(shown.at, &self.files, out);
            out.push(b',');
            if let Some(why) = self.late_explained(results, o.result, shown.reported_at) {
                csv_field(out, why.as_bytes());
            }
            out.push(b'\n');
        }
        Ok(())
    }

    /// The columns written straight from the fold, as [`RowMaker::csv_rows`] writes its
    /// lines and [`ListRow::record_batch`] lays them out: no row is filled and copied.
    fn batch(&self, rows: std::ops::Range<usize>) -> Result<RecordBatch> {
        let mut columns = super::CodeColumns::<17>::with_capacity(rows.len());
        let super::CodeColumns { text: cells, cts } = &mut columns;
        let [
            person,
            code_color,
            reason,
            valid_until,
            group,
            round,
            status,
            tube,
            mode,
            collected_at,
            collection_source,
            result,
            reported_at,
            lab,
            plate,
            result_source,
            not_counted,
        ] = cells;
        for at in rows.clone() {
            self.warm(at, &rows);
            let o = &self.codes[at];
            let k = o.key;
            if k & OTHER == 0 {
                person.cell().extend_from_slice(&text::resident_text(k));
                person.end();
            } else {
                person.push(
                    self.other
                        .get(usize::try_from(k & !OTHER).unwrap_or(usize::MAX)),
                );
            }
            code_color.push(color(o.reason()).as_str());
            reason.push(self.windows.word(o));
            if let Some(until) = self.windows.valid_until(o) {
                time::push_rfc3339(valid_until.cell(), until, self.zone);
            }
            valid_until.end();
            group.push(if o.group == NONE {
                ""
            } else {
                self.groups.get(o.group as usize).map_or("", String::as_str)
            });
            let k = usize::from(o.round);
            // The deciding row's cells, then its result's; a code no word decided has
            // neither, a row without a result that counts only the first.
            let shown = if let (Some(name), Some(rows), Some(results), true) = (
                self.names.get(k),
                self.rows.get(k),
                self.results.get(k),
                o.by_word(),
            ) {
                let rank = rows.ranks.rank(o.row);
                round.push(name);
                status.push(o.status.as_str());
                tube.push(rank.map_or("", |i| rows.tube(i)));
                mode.push(if o.bits & SINGLE != 0 {
                    Mode::Single.as_str()
                } else {
                    Mode::Pool.as_str()
                });
                time::push_rfc3339(collected_at.cell(), o.at, self.zone);
                collected_at.end();
                if let Some(i) = rank {
                    rows.cite(i, &self.files, collection_source.cell());
                }
                collection_source.end();
                results.shown(o.result).map(|shown| (results, shown))
            } else {
                for c in [
                    &mut *round,
                    &mut *status,
                    &mut *tube,
                    &mut *mode,
                    &mut *collected_at,
                    &mut *collection_source,
                ] {
                    c.end();
                }
                None
            };
            let Some((results, shown)) = shown else {
                for c in [
                    &mut *result,
                    &mut *reported_at,
                    &mut *lab,
                    &mut *plate,
                    &mut *result_source,
                    &mut *not_counted,
                ] {
                    c.end();
                }
                cts.push([None, None]);
                continue;
            };
            result.push(shown.outcome);
            cts.push([shown.ct_orf1ab, shown.ct_n]);
            time::push_rfc3339(reported_at.cell(), shown.reported_at, self.zone);
            reported_at.end();
            lab.push(shown.lab);
            plate.push(shown.plate);
            results
                .cited
                .write(shown.at, &self.files, result_source.cell());
            result_source.end();
            not_counted.push(
                self.late_explained(results, o.result, shown.reported_at)
                    .as_deref()
                    .unwrap_or(""),
            );
        }
        columns.finish::<CodeRow<'_>>(code_schema())
    }

    /// Codes are in id order and their rows and results in each round's file order:
    /// the ranks of a block's rows are found first, then their text read, each loop
    /// of independent reads (see [`RowMaker::warm`]).
    fn warm(&self, at: usize, rows: &std::ops::Range<usize>) {
        let Some(block) = warm_block(at, rows) else {
            return;
        };
        let mut ranks = [(u16::MAX, usize::MAX, usize::MAX); WARM_ROWS];
        for (slot, at) in ranks.iter_mut().zip(block) {
            let Some(o) = self.codes.get(at) else {
                continue;
            };
            let k = usize::from(o.round);
            let (Some(rows), Some(results)) = (self.rows.get(k), self.results.get(k)) else {
                continue;
            };
            let rank = |r: &Ranks, row: u32| {
                if row == NONE {
                    usize::MAX
                } else {
                    r.rank(row).unwrap_or(usize::MAX)
                }
            };
            *slot = (
                o.round,
                rank(&rows.ranks, o.row),
                rank(&results.ranks, o.result),
            );
        }
        let mut sum = 0u64;
        for (k, row, result) in ranks {
            let k = usize::from(k);
            if let (Some(rows), true) = (self.rows.get(k), row != usize::MAX) {
                sum = sum.wrapping_add(rows.warm(row));
            }
            if let (Some(results), true) = (self.results.get(k), result != usize::MAX) {
                sum = sum.wrapping_add(results.warm(result));
            }
        }
        std::hint::black_box(sum);
    }

    fn fill<'a>(&'a self, at: usize, out: &mut CodeRow<'a>) {
        let o = &self.codes[at];
        let k = o.key;
        out.person.clear();
        if k & OTHER == 0 {
            out.person
                .push_str(std::str::from_utf8(&text::resident_text(k)).unwrap_or_default());
        } else {
            out.person.push_str(
                self.other
                    .get(usize::try_from(k & !OTHER).unwrap_or(usize::MAX)),
            );
        }
        out.color = color(o.reason()).as_str();
        out.reason.clear();
        out.reason.push_str(self.windows.word(o));
        out.valid_until.clear();
        if let Some(until) = self.windows.valid_until(o) {
            time::write_rfc3339(&mut out.valid_until, until, self.zone);
        }
        out.group = if o.group == NONE {
            ""
        } else {
            self.groups.get(o.group as usize).map_or("", String::as_str)
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
        let k = usize::from(o.round);
        let (Some(name), Some(rows), Some(results), true) = (
            self.names.get(k),
            self.rows.get(k),
            self.results.get(k),
            o.by_word(),
        ) else {
            (out.round, out.status, out.tube, out.mode, out.result) = ("", "", "", "", "");
            (out.ct_orf1ab, out.ct_n, out.lab, out.plate) = (None, None, "", "");
            return;
        };
        out.round = name;
        out.status = o.status.as_str();
        out.mode = if o.bits & SINGLE != 0 {
            Mode::Single.as_str()
        } else {
            Mode::Pool.as_str()
        };
        time::write_rfc3339(&mut out.collected_at, o.at, self.zone);
        match rows.ranks.rank(o.row) {
            Some(i) => {
                out.tube = rows.tube(i);
                crate::text::append_bytes(&mut out.collection_source, |b| {
                    rows.cite(i, &self.files, b);
                });
            }
            None => out.tube = "",
        }
        let Some(shown) = results.shown(o.result) else {
            (out.result, out.ct_orf1ab, out.ct_n, out.lab, out.plate) = ("", None, None, "", "");
            return;
        };
        out.result = shown.outcome;
        (out.ct_orf1ab, out.ct_n) = (shown.ct_orf1ab, shown.ct_n);
        time::write_rfc3339(&mut out.reported_at, shown.reported_at, self.zone);
        out.lab = shown.lab;
        out.plate = shown.plate;
        crate::text::append_bytes(&mut out.result_source, |b| {
            results.cited.write(shown.at, &self.files, b);
        });
        if let Some(why) = self.late_explained(results, o.result, shown.reported_at) {
            out.not_counted.push_str(&why);
        }
    }
}

/// The Parquet columns of the codes: text, blanks as nulls, Cts as floats.
fn code_schema() -> Arc<arrow_schema::Schema> {
    let fields: Vec<arrow_schema::Field> = CodeRow::HEADER
        .iter()
        .map(|&name| match name {
            "ct_orf1ab" | "ct_n" => arrow_schema::Field::new(name, DataType::Float32, true),
            "person" | "color" | "reason" => arrow_schema::Field::new(name, DataType::Utf8, false),
            _ => arrow_schema::Field::new(name, DataType::Utf8, true),
        })
        .collect();
    Arc::new(arrow_schema::Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest_collections, ingest_results};

    /// Writes `text` to the file `name` in `dir`, for a test to ingest.
    fn written(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn rounds_are_ordered_by_their_first_swab_from_the_footers() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = |name: &str, text: &str| written(dir.path(), name, text);
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

    /// Every line `CodesAsOf::csv_rows` writes is the one `code_csv_lines` writes of
    /// the row `fill` makes, over two rounds: a cited file whose name holds a quote and
    /// a comma, an id that needs quoting, quoted labs, a pending tube, a result past the
    /// specimen limit, and a time before any result.
    #[test]
    fn code_lines_across_rounds_are_those_of_the_filled_rows() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = |name: &str, text: &str| written(dir.path(), name, text);
        let mut store = Store::open_writer(&dir.path().join("store")).expect("store");
        let opts = IngestOptions::default();
        let one = file(
            "round \"one\", a.csv",
            "tube,person,mode,collected_at\n\
             PL-0001,310000000000000012,pool,2022-04-02 08:00\n\
             PL-0001,\"p, other\",pool,2022-04-02 08:01:30.250\n\
             PL-0002,p3,single,2022-04-02 09:00\n\
             PL-0003,p4,single,2022-04-02 09:30\n",
        );
        let two = file(
            "two.csv",
            "tube,person,mode,collected_at\n\
             PL-0101,310000000000000012,single,2022-04-05 08:00\n\
             PL-0102,p4,single,2022-04-05 08:00\n",
        );
        ingest_collections(&mut store, &[one], "R1", &opts, None).expect("one");
        ingest_collections(&mut store, &[two], "R2", &opts, None).expect("two");
        let results = file(
            "r.csv",
            "tube,result,ct_orf1ab,ct_n,reported_at,lab,plate\n\
             PL-0001,negative,,,2022-04-02 14:00,\"Lab, north\",P1\n\
             PL-0002,positive,24.5,25.125,2022-04-06 15:00,L2,\"P\"\"2\"\n\
             PL-0101,negative,,,2022-04-05 12:00,L2,P3\n",
        );
        ingest_results(&mut store, &[results], &opts, None).expect("results");
        let zone = store.zone();
        let t = |s: &str| time::parse(s.as_bytes(), zone).expect("time");
        let mut seen = String::new();
        for as_of in ["2022-04-02 10:00", "2022-04-05 13:00", "2022-04-08 00:00"] {
            let codes = CodesAsOf::load(&store, t(as_of)).expect("codes");
            let rows = 0..codes.len();
            assert_eq!(rows.len(), 4, "{as_of}");
            let mut ours = Vec::new();
            codes.csv_rows(rows.clone(), &mut ours).expect("lines");
            let mut theirs = Vec::new();
            super::super::code_csv_lines(&codes, rows.clone(), &mut theirs);
            let text = String::from_utf8(ours).expect("utf-8");
            assert_eq!(text, String::from_utf8(theirs).expect("utf-8"), "{as_of}");
            for part in [rows.clone(), 1..3] {
                let direct = codes.batch(part.clone()).expect("batch");
                let filled = super::super::code_batch(&codes, code_schema(), part);
                assert_eq!(direct, filled.expect("filled"), "{as_of}");
            }
            seen.push_str(&text);
        }
        assert!(seen.contains("round \"\"one\"\", a.csv line 3\""), "{seen}");
        assert!(seen.contains("\"p, other\","), "{seen}");
        assert!(seen.contains("\"Lab, north\""), "{seen}");
        assert!(seen.contains("past the 48 h specimen limit\"\n"), "{seen}");
    }
}
