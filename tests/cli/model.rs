//! Model check (issue 6): random sequences of collection batches, result batches,
//! re-sent files and queries, run through the library against a store, and checked
//! after every step against a small in-memory model of the rules.
//!
//! The model is written from the rules as issue 2 and the README state them, not from
//! `src/tracker/rules.rs`:
//! - a tube barcode belongs to one round (a row of another round's barcode is refused);
//!   every other row is a membership and is kept: a tube keeps the first mode and the
//!   first capacity any row states (a blank one states nothing; the default capacity
//!   counts only while none is stated), a row stating others is kept with a warning;
//!   the same (tube, person) twice is one membership (the first); an overfull pool is
//!   kept; a tube holding more than one person is deconvoluted as a pool, whatever its
//!   rows call it (a tube no row calls anything is a pool);
//! - a result for a tube never collected is rejected; the same result (outcome and
//!   time) twice is kept once; the latest result by `reported_at` is the tube's, except
//!   that a positive is never cleared by a later non-positive one; a row without a
//!   result is read from its Ct values (both below 40 positive, one inconclusive);
//! - a result reported more than the specimen limit (48 h, the default) after its
//!   tube's first swab does not count; a tube whose every result came so late needs a
//!   resample, as an invalid one does;
//! - a file already ingested is skipped, unless none of its rows was committed;
//! - a person's status from their tubes in the round, in order: any single tube
//!   positive → positive; any pool positive or inconclusive not followed (by collection
//!   time) by a negative single tube of theirs → recall, or `retest_pending` when each
//!   such pool is followed by a single tube of theirs with no result yet (a tube tested
//!   too late has had its result); any tube invalid, single tube inconclusive, or tested
//!   too late, not followed by a negative tube of theirs → resample; any tube without a
//!   result (not tested too late) → pending; else negative.
//!
//! Universes are small (30 persons, 15 pool tubes, 2 rounds) so that steps collide:
//! the same tubes, persons and times come back again and again.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pooltrack::ingest::{self, IngestOptions, IngestReport};
use pooltrack::model::{Mode, Outcome, Status};
use pooltrack::store::Store;
use pooltrack::tracker::{Decided, Round};
use pooltrack::worklist::Worklist;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const PERSONS: u32 = 30;
const POOLS: u32 = 15;
const ROUNDS: [&str; 2] = ["R1", "R2"];
/// The specimen limit: 48 hours, the store's default.
const SPECIMEN_LIMIT_SECONDS: i64 = 48 * 3600;

/// One step, as raw numbers interpreted against the model's state (so that proptest
/// can shrink a failing sequence).
#[derive(Debug, Clone)]
enum Step {
    Collections { round: u8, rows: Vec<[u32; 4]> },
    Results { rows: Vec<[u32; 4]> },
    Resend { pick: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    let row = || any::<[u32; 4]>();
    prop_oneof![
        5 => (prop::bool::weighted(0.2), prop::collection::vec(row(), 1..9))
            .prop_map(|(r2, rows)| Step::Collections { round: u8::from(r2), rows }),
        4 => prop::collection::vec(row(), 1..7).prop_map(|rows| Step::Results { rows }),
        1 => any::<u32>().prop_map(|pick| Step::Resend { pick }),
    ]
}

#[derive(Debug, Clone)]
struct Membership {
    tube: String,
    at: u32,
}

#[derive(Debug, Clone, Copy)]
struct ResultRow {
    outcome: Outcome,
    at: u32,
}

/// The rules, kept as plainly as possible.
#[derive(Default)]
struct Model {
    tube_round: HashMap<String, String>,
    /// The first mode and the first capacity (0: none yet) any row stated.
    tube_kind: HashMap<String, (Option<Mode>, u8)>,
    tube_members: HashMap<String, Vec<String>>,
    /// (round, person) → memberships.
    persons: BTreeMap<(String, String), Vec<Membership>>,
    /// tube → results in arrival order.
    results: HashMap<String, Vec<ResultRow>>,
    /// File contents recorded as ingested, with their kind.
    recorded: HashSet<(bool, Vec<u8>)>,
    /// Every file sent so far: (collections round or None for results, content).
    sent: Vec<(Option<String>, Vec<u8>)>,
    /// Times already used: every time in a run is distinct unless a row repeats one.
    used_times: HashSet<u32>,
}

/// What the model expects of one ingest.
#[derive(Debug, Default, PartialEq)]
struct Expect {
    batch: bool,
    committed: u64,
    rejected: u64,
}

impl Model {
    fn fresh_time(&mut self, seed: u32) -> u32 {
        let mut t = seed % 2_500_000;
        while !self.used_times.insert(t) {
            t = (t + 7_919) % 2_500_000;
        }
        t
    }

    /// One collection row per seed: `[kind, a, b, time]`.
    fn collection_rows(&mut self, round: &str, seeds: &[[u32; 4]]) -> Vec<CRow> {
        let mut rows: Vec<CRow> = Vec::new();
        for &[kind, a, b, t] in seeds {
            let person = format!("P{:02}", a % PERSONS);
            // A scanning app that records the capacity only sometimes.
            let blank = (a / PERSONS).is_multiple_of(3);
            let row = match kind % 20 {
                // A pool tube, with the capacity its number gives it, or none stated.
                0..=8 => {
                    let n = b % POOLS;
                    let tube = format!("POOL-{n:02}");
                    let cap = match (blank, n % 3) {
                        (true, _) => 0,
                        (false, 0) => 5,
                        (false, 1) => 10,
                        (false, _) => 20,
                    };
                    (tube, person, Some(Mode::Pool), cap, self.fresh_time(t))
                }
                // The person's own single tube (three per person); the mode sometimes
                // left blank.
                9..=14 => {
                    let tube = format!("SG-{person}-{}", b % 3);
                    let mode = (!(b / 3).is_multiple_of(7)).then_some(Mode::Single);
                    let cap = u8::from(!blank && mode.is_some());
                    (tube, person, mode, cap, self.fresh_time(t))
                }
                // A pool tube with another capacity than its first rows state.
                15 => {
                    let tube = format!("POOL-{:02}", b % POOLS);
                    let cap = if b % 2 == 0 { 20 } else { 5 };
                    (tube, person, Some(Mode::Pool), cap, self.fresh_time(t))
                }
                // A single tube used as a pool.
                16 => {
                    let tube = format!("SG-{person}-{}", b % 3);
                    let cap = if blank { 0 } else { 10 };
                    (tube, person, Some(Mode::Pool), cap, self.fresh_time(t))
                }
                // Someone else into a single tube committed before this batch.
                17 => {
                    let taken: Vec<&String> = self
                        .tube_kind
                        .iter()
                        .filter(|(_, k)| k.0 == Some(Mode::Single))
                        .map(|(t, _)| t)
                        .collect();
                    if taken.is_empty() {
                        continue;
                    }
                    let mut taken: Vec<String> = taken.into_iter().cloned().collect();
                    taken.sort();
                    let tube = taken[(b as usize) % taken.len()].clone();
                    (tube, person, Some(Mode::Single), 1, self.fresh_time(t))
                }
                // A recalled person's single retest, collected after everything so far.
                19 => {
                    let recalled: Vec<String> = self
                        .persons
                        .keys()
                        .filter(|(r, p)| r == round && self.status(r, p) == Status::Recall)
                        .map(|(_, p)| p.clone())
                        .collect();
                    let Some(p) = recalled.get((a as usize) % recalled.len().max(1)).cloned()
                    else {
                        continue;
                    };
                    let tube = format!("SG-{p}-{}", b % 3);
                    (
                        tube,
                        p,
                        Some(Mode::Single),
                        1,
                        self.fresh_time(2_000_000 + t % 500_000),
                    )
                }
                // The same scan again, later: earlier in this batch, or in the store.
                _ => {
                    if let Some(prev) = rows.get((b as usize) % rows.len().max(1)).cloned() {
                        (prev.0, prev.1, prev.2, prev.3, self.fresh_time(t))
                    } else {
                        let known: Vec<(String, String)> = self
                            .persons
                            .iter()
                            .filter(|((r, _), _)| r == round)
                            .flat_map(|((_, p), ms)| {
                                ms.iter().map(move |m| (m.tube.clone(), p.clone()))
                            })
                            .collect();
                        let Some((tube, person)) =
                            known.get((b as usize) % known.len().max(1)).cloned()
                        else {
                            continue;
                        };
                        let (mode, cap) = self.tube_kind[&tube];
                        (tube, person, mode, cap, self.fresh_time(t))
                    }
                }
            };
            rows.push(row);
        }
        rows
    }

    fn apply_collections(&mut self, round: &str, rows: &[CRow]) -> Expect {
        let mut e = Expect::default();
        // Tentative state: committed only if the batch commits.
        let mut kind = self.tube_kind.clone();
        let mut tround = self.tube_round.clone();
        let mut members = self.tube_members.clone();
        let mut added: Vec<(String, String, u32)> = Vec::new();
        for (tube, person, mode, cap, at) in rows {
            if tround.get(tube).is_some_and(|r| r != round) {
                e.rejected += 1;
                continue;
            }
            // A repeat of a membership an earlier batch recorded adds nothing, not even
            // what it states about the tube (the store keeps no row of it).
            if self
                .tube_members
                .get(tube)
                .is_some_and(|m| m.contains(person))
            {
                continue;
            }
            // The first stated value of each stands; a row stating another is kept.
            let first = kind.entry(tube.clone()).or_insert((None, 0));
            if first.0.is_none() {
                first.0 = *mode;
            }
            if first.1 == 0 {
                first.1 = *cap;
            }
            let m = members.entry(tube.clone()).or_default();
            if m.contains(person) {
                continue; // one membership, a warning
            }
            m.push(person.clone());
            tround.insert(tube.clone(), round.to_owned());
            added.push((tube.clone(), person.clone(), *at));
        }
        e.committed = added.len() as u64;
        if e.committed > 0 {
            e.batch = true;
            // Tubes whose every row was refused keep no mode.
            kind.retain(|t, _| members.get(t).is_some_and(|m| !m.is_empty()));
            self.tube_kind = kind;
            self.tube_round = tround;
            self.tube_members = members;
            self.tube_members.retain(|_, m| !m.is_empty());
            for (tube, person, at) in added {
                self.persons
                    .entry((round.to_owned(), person))
                    .or_default()
                    .push(Membership { tube, at });
            }
        }
        e
    }

    /// One result row per seed: `[kind, tube pick, outcome, time]`; the text of the row.
    fn result_rows(&mut self, seeds: &[[u32; 4]]) -> Vec<(String, ResultRow, String)> {
        let mut tubes: Vec<String> = self.tube_round.keys().cloned().collect();
        tubes.sort();
        let mut rows = Vec::new();
        for &[kind, a, b, t] in seeds {
            let tube = match (kind % 10, tubes.is_empty()) {
                (0, _) | (_, true) => format!("POOL-{:02}", a % (POOLS + 3)),
                _ => tubes[(a as usize) % tubes.len()].clone(),
            };
            // An earlier result sent again (same outcome and time): kept once.
            if kind % 10 == 1
                && let Some(prev) = self.results.get(&tube).and_then(|r| r.first()).copied()
            {
                let text = format!(
                    "{},{},,,{}",
                    tube,
                    prev.outcome.as_str(),
                    time_text(prev.at)
                );
                rows.push((tube, prev, text));
                continue;
            }
            let at = self.fresh_time(t);
            let (outcome, fields) = match b % 12 {
                0..=3 => (Outcome::Negative, "negative,,".to_owned()),
                4..=5 => (Outcome::Positive, "POSITIVE,31.5,33".to_owned()),
                6 => (Outcome::Inconclusive, "inconclusive,38,".to_owned()),
                7 => (Outcome::Invalid, "invalid,,".to_owned()),
                8 => (Outcome::Positive, ",25.1,27".to_owned()),
                9 => (Outcome::Inconclusive, ",,39.9".to_owned()),
                10 => (Outcome::Negative, ",41,45".to_owned()),
                _ => (Outcome::Negative, ",,".to_owned()),
            };
            let text = format!("{tube},{fields},{}", time_text(at));
            rows.push((tube, ResultRow { outcome, at }, text));
        }
        rows
    }

    fn apply_results(&mut self, rows: &[(String, ResultRow, String)]) -> Expect {
        let mut e = Expect::default();
        let mut results = self.results.clone();
        for (tube, r, _) in rows {
            if !self.tube_round.contains_key(tube) {
                e.rejected += 1;
                continue;
            }
            let known = results.entry(tube.clone()).or_default();
            if known.iter().any(|k| k.outcome == r.outcome && k.at == r.at) {
                continue; // kept once, a warning
            }
            known.push(*r);
            e.committed += 1;
        }
        if e.committed > 0 {
            e.batch = true;
            self.results = results;
        }
        e
    }

    /// The tube's first swab: the earliest of its members' collection times.
    fn first_swab(&self, tube: &str) -> Option<u32> {
        self.persons
            .values()
            .flatten()
            .filter(|m| m.tube == tube)
            .map(|m| m.at)
            .min()
    }

    /// A tube's result: of those reported within the specimen limit of its first swab,
    /// the latest by time, but a positive stays positive; and whether a positive was
    /// kept so, and whether every result came past the limit (a resample).
    fn effective(&self, tube: &str) -> (Option<Outcome>, bool, bool) {
        let Some(rs) = self.results.get(tube) else {
            return (None, false, false);
        };
        let first = self.first_swab(tube).unwrap_or(0);
        let (within, late): (Vec<ResultRow>, Vec<ResultRow>) = rs
            .iter()
            .partition(|r| i64::from(r.at) - i64::from(first) <= SPECIMEN_LIMIT_SECONDS);
        let mut sorted = within;
        sorted.sort_by_key(|r| r.at);
        let mut current: Option<Outcome> = None;
        let mut kept = false;
        for r in sorted {
            if current == Some(Outcome::Positive) && r.outcome != Outcome::Positive {
                kept = true;
            } else {
                current = Some(r.outcome);
            }
        }
        (current, kept, current.is_none() && !late.is_empty())
    }

    /// How deconvolution reads a tube: a pool when it holds more than one person or no
    /// row stated its mode; its capacity the first stated, else its mode's default.
    fn kind(&self, tube: &str) -> (Mode, u8) {
        let (stated, cap) = self.tube_kind[tube];
        let mode = match stated {
            Some(Mode::Single) if self.tube_members[tube].len() <= 1 => Mode::Single,
            _ => Mode::Pool,
        };
        let cap = match (cap, stated) {
            (0, Some(Mode::Single)) => 1,
            (0, _) => 10,
            (c, _) => c,
        };
        (mode, cap)
    }

    fn status(&self, round: &str, person: &str) -> Status {
        // (mode, swabbed, result, tested too late)
        let tubes: Vec<(Mode, u32, Option<Outcome>, bool)> = self.persons
            [&(round.to_owned(), person.to_owned())]
            .iter()
            .map(|m| {
                let (result, _, late) = self.effective(&m.tube);
                (self.kind(&m.tube).0, m.at, result, late)
            })
            .collect();
        use Outcome::{Inconclusive, Invalid, Negative, Positive};
        if tubes
            .iter()
            .any(|t| t.0 == Mode::Single && t.2 == Some(Positive))
        {
            return Status::Positive;
        }
        let uncleared: Vec<&(Mode, u32, Option<Outcome>, bool)> = tubes
            .iter()
            .filter(|t| t.0 == Mode::Pool && matches!(t.2, Some(Positive | Inconclusive)))
            .filter(|p| {
                !tubes
                    .iter()
                    .any(|s| s.0 == Mode::Single && s.1 > p.1 && s.2 == Some(Negative))
            })
            .collect();
        if !uncleared.is_empty() {
            let retest_waits = |p: &(Mode, u32, Option<Outcome>, bool)| {
                tubes
                    .iter()
                    .any(|s| s.0 == Mode::Single && s.1 > p.1 && s.2.is_none() && !s.3)
            };
            return if uncleared.iter().all(|p| retest_waits(p)) {
                Status::RetestPending
            } else {
                Status::Recall
            };
        }
        let resample = tubes.iter().any(|t| {
            let bad =
                t.2 == Some(Invalid) || t.3 || (t.0 == Mode::Single && t.2 == Some(Inconclusive));
            bad && !tubes.iter().any(|n| n.1 > t.1 && n.2 == Some(Negative))
        });
        if resample {
            return Status::Resample;
        }
        if tubes.iter().any(|t| t.2.is_none() && !t.3) {
            return Status::Pending;
        }
        Status::Negative
    }
}

fn time_text(t: u32) -> String {
    let (d, s) = (t / 86_400, t % 86_400);
    format!(
        "2022-04-{:02} {:02}:{:02}:{:02}",
        d + 1,
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// A collection row: tube, person, mode (`None`: blank), capacity (0: blank), time.
type CRow = (String, String, Option<Mode>, u8, u32);

fn collections_csv(rows: &[CRow]) -> Vec<u8> {
    let mut s = String::from("tube,person,mode,capacity,collected_at\n");
    for (tube, person, mode, cap, at) in rows {
        let cap = if *cap == 0 {
            String::new()
        } else {
            cap.to_string()
        };
        writeln!(
            s,
            "{tube},{person},{},{cap},{}",
            mode.map_or("", Mode::as_str),
            time_text(*at)
        )
        .expect("w");
    }
    s.into_bytes()
}

fn results_csv(rows: &[(String, ResultRow, String)]) -> Vec<u8> {
    let mut s = String::from("tube,result,ct_orf1ab,ct_n,reported_at\n");
    for (_, _, text) in rows {
        s.push_str(text);
        s.push('\n');
    }
    s.into_bytes()
}

fn check_report(what: &str, report: &IngestReport, e: &Expect) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        report.batch.is_some(),
        e.batch,
        "{}: batch committed? {:?}",
        what,
        report
    );
    prop_assert_eq!(
        report.committed,
        e.committed,
        "{}: rows committed {:?}",
        what,
        report
    );
    prop_assert_eq!(
        report.rejected,
        e.rejected,
        "{}: rows rejected {:?}",
        what,
        report
    );
    Ok(())
}

/// Compares every person's status and the round counts with the model.
fn check_store(
    root: &Path,
    m: &Model,
    step: usize,
    seen: &mut BTreeMap<Status, u64>,
    past_limit: &mut u64,
) -> Result<u64, TestCaseError> {
    let store = Store::open(root).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut checked = 0;
    for round in ROUNDS {
        let want: BTreeMap<&str, Status> = m
            .persons
            .keys()
            .filter(|(r, _)| r == round)
            .map(|(_, p)| (p.as_str(), m.status(round, p)))
            .collect();
        let loaded = Round::load(&store, round);
        if want.is_empty() {
            let err = loaded.err();
            prop_assert!(
                err.as_ref().is_some_and(|e| e.exit_code() == 2),
                "step {}: round {} has no rows, so it is unknown: {:?}",
                step,
                round,
                err
            );
            continue;
        }
        let loaded = loaded.map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
        let got: BTreeMap<String, Status> = pooltrack::worklist::export_status(&loaded)
            .into_iter()
            .map(|r| (r.person, r.status))
            .collect();
        let got: BTreeMap<&str, Status> = got.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        if got != want {
            let mut diff = String::new();
            for (p, s) in &want {
                if got.get(p) != Some(s) {
                    let tubes: Vec<String> = m.persons[&(round.to_owned(), (*p).to_owned())]
                        .iter()
                        .map(|ms| {
                            format!(
                                "{} {:?} at {} result {:?}",
                                ms.tube,
                                m.kind(&ms.tube).0,
                                ms.at,
                                m.effective(&ms.tube)
                            )
                        })
                        .collect();
                    writeln!(
                        diff,
                        "{round} {p}: model {s:?}, store {:?}; tubes: {tubes:?}",
                        got.get(p)
                    )
                    .expect("w");
                }
            }
            for p in got.keys().filter(|p| !want.contains_key(*p)) {
                writeln!(diff, "{round} {p}: in the store only").expect("w");
            }
            prop_assert!(false, "step {}: statuses differ:\n{}", step, diff);
        }
        checked += want.len() as u64;
        for s in want.values() {
            *seen.entry(*s).or_default() += 1;
        }
        let c = loaded.counts();
        // The light load that `status` and the worklists use decides the same: same
        // counts, and each list holds exactly the persons of its status, each row as
        // the full export shows it.
        let mut by: BTreeMap<Status, u64> = BTreeMap::new();
        for s in want.values() {
            *by.entry(*s).or_default() += 1;
        }
        let counted: BTreeMap<Status, u64> = c
            .by_status
            .iter()
            .filter(|(_, n)| *n > 0)
            .copied()
            .collect();
        prop_assert_eq!(&counted, &by, "step {}: counts by status", step);
        prop_assert_eq!(c.persons, want.len() as u64, "step {}: persons", step);
        let lean = Decided::load(&store, round)
            .map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
        prop_assert_eq!(
            format!("{:?}", lean.counts()),
            format!("{c:?}"),
            "step {}: light counts",
            step
        );
        let exported = pooltrack::worklist::export_status(&loaded);
        for list in [Worklist::Recall, Worklist::Resample, Worklist::Positives] {
            let status = match list {
                Worklist::Recall => Status::Recall,
                Worklist::Resample => Status::Resample,
                Worklist::Positives => Status::Positive,
            };
            let mut expect: Vec<_> = exported.iter().filter(|r| r.status == status).collect();
            expect.sort_by(|a, b| a.person.cmp(&b.person));
            for from in [&**loaded, &lean] {
                let mut rows = pooltrack::worklist::build(&store, from, list)
                    .map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
                rows.sort_by(|a, b| a.person.cmp(&b.person));
                let rows: Vec<_> = rows.iter().collect();
                prop_assert_eq!(&rows, &expect, "step {}: {:?} list", step, list);
            }
        }
        let tubes: Vec<&String> = m
            .tube_round
            .iter()
            .filter(|(_, r)| *r == round)
            .map(|(t, _)| t)
            .collect();
        prop_assert_eq!(
            c.tubes,
            tubes.len() as u64,
            "step {}: tubes of {}",
            step,
            round
        );
        let with_result = tubes.iter().filter(|t| m.effective(t).0.is_some()).count();
        prop_assert_eq!(
            c.tubes_with_result,
            with_result as u64,
            "step {}: tubes with a result",
            step
        );
        let overfull = tubes
            .iter()
            .filter(|t| m.tube_members[**t].len() > usize::from(m.kind(t).1))
            .count();
        prop_assert_eq!(
            c.overfull_pools,
            overfull as u64,
            "step {}: overfull pools",
            step
        );
        let kept = tubes.iter().filter(|t| m.effective(t).1).count();
        prop_assert_eq!(
            c.positives_kept,
            kept as u64,
            "step {}: positives kept",
            step
        );
        let late = tubes.iter().filter(|t| m.effective(t).2).count();
        *past_limit += late as u64;
        prop_assert_eq!(
            c.tubes_past_limit,
            late as u64,
            "step {}: tubes tested past the specimen limit",
            step
        );
    }
    Ok(checked)
}

#[derive(Default)]
struct Tally {
    sequences: u64,
    steps: u64,
    rows: u64,
    statuses: u64,
    rejected: u64,
    by_status: BTreeMap<Status, u64>,
    /// Tubes seen with every result past the specimen limit, over all checks.
    past_limit: u64,
}

/// Opens the store in this process. Other tests spawn programs meanwhile, and a child
/// forked before it execs holds a copy of the lock's file descriptor for a moment, so
/// the lock this test just released can still look held: that is no second writer.
fn open_writer(root: &Path) -> pooltrack::Result<Store> {
    let mut tries = 0;
    loop {
        match Store::open_writer(root) {
            Err(pooltrack::Error::StoreBusy { .. }) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn run_sequence(steps: &[Step], tally: &RefCell<Tally>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let mut m = Model::default();
    let opts = IngestOptions::default();
    for (i, s) in steps.iter().enumerate() {
        let file: PathBuf = dir.path().join(format!("step{i:03}.csv"));
        let (what, round, bytes, expect) = match s {
            Step::Collections { round, rows } => {
                let round = ROUNDS[usize::from(*round)];
                let rows = m.collection_rows(round, rows);
                if rows.is_empty() {
                    continue;
                }
                let bytes = collections_csv(&rows);
                let e = if m.recorded.contains(&(true, bytes.clone())) {
                    Expect::default()
                } else {
                    m.apply_collections(round, &rows)
                };
                tally.borrow_mut().rows += rows.len() as u64;
                ("collections", Some(round.to_owned()), bytes, e)
            }
            Step::Results { rows } => {
                let rows = m.result_rows(rows);
                let bytes = results_csv(&rows);
                let e = if m.recorded.contains(&(false, bytes.clone())) {
                    Expect::default()
                } else {
                    m.apply_results(&rows)
                };
                tally.borrow_mut().rows += rows.len() as u64;
                ("results", None, bytes, e)
            }
            Step::Resend { pick } => {
                if m.sent.is_empty() {
                    continue;
                }
                let (round, bytes) = m.sent[(*pick as usize) % m.sent.len()].clone();
                let key = (round.is_some(), bytes.clone());
                let e = if m.recorded.contains(&key) {
                    Expect::default()
                } else {
                    // Sent before and nothing committed: it is read again, as new.
                    let text = String::from_utf8(bytes.clone()).expect("utf-8");
                    if let Some(r) = &round {
                        let rows = parse_collections(&text);
                        m.apply_collections(r, &rows)
                    } else {
                        let rows = parse_results(&text);
                        m.apply_results(&rows)
                    }
                };
                ("re-sent file", round, bytes, e)
            }
        };
        std::fs::write(&file, &bytes).expect("write");
        let mut store = open_writer(&root).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let report = match &round {
            Some(r) => {
                ingest::ingest_collections(&mut store, std::slice::from_ref(&file), r, &opts, None)
            }
            None => ingest::ingest_results(&mut store, std::slice::from_ref(&file), &opts, None),
        }
        .map_err(|e| TestCaseError::fail(format!("step {i} {what}: {e}")))?;
        drop(store);
        check_report(
            &format!(
                "step {i} {what}\n{}\n(store tubes: {:?})",
                String::from_utf8_lossy(&bytes),
                m.tube_kind
            ),
            &report,
            &expect,
        )?;
        if expect.batch {
            m.recorded.insert((round.is_some(), bytes.clone()));
        }
        m.sent.push((round, bytes));
        let mut t = tally.borrow_mut();
        let t = &mut *t;
        let checked = if crate::crash::store_exists(&root) {
            check_store(&root, &m, i, &mut t.by_status, &mut t.past_limit)?
        } else {
            0
        };
        t.rejected += report.rejected;
        t.steps += 1;
        t.statuses += checked;
    }
    tally.borrow_mut().sequences += 1;
    Ok(())
}

/// Reads back a collections file the test wrote (to replay a re-sent one).
fn parse_collections(text: &str) -> Vec<CRow> {
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_owned(),
                f[1].to_owned(),
                Mode::parse(f[2]),
                f[3].parse().unwrap_or(0),
                parse_time(f[4]),
            )
        })
        .collect()
}

fn parse_results(text: &str) -> Vec<(String, ResultRow, String)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let ct = |s: &str| s.parse::<f32>().ok();
            let outcome =
                Outcome::parse(f[1]).unwrap_or(Outcome::from_ct(ct(f[2]), ct(f[3]), 40.0));
            let r = ResultRow {
                outcome,
                at: parse_time(f[4]),
            };
            (f[0].to_owned(), r, l.to_owned())
        })
        .collect()
}

fn parse_time(s: &str) -> u32 {
    let n = |a: usize, b: usize| s[a..b].parse::<u32>().expect("number");
    (n(8, 10) - 1) * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

#[test]
fn random_ingests_and_queries_match_the_model() {
    let tally = RefCell::new(Tally::default());
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(step(), 10..40), |steps| {
            run_sequence(&steps, &tally)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let t = tally.into_inner();
    eprintln!(
        "model check: {} sequences, {} steps, {} rows ingested ({} rejected), {} person statuses compared: {:?}; tubes past the specimen limit seen {} times",
        t.sequences, t.steps, t.rows, t.rejected, t.statuses, t.by_status, t.past_limit
    );
    assert!(t.steps >= 200, "a few hundred steps: {}", t.steps);
    // Every status and some rejections must come up, or the sequences are too tame.
    for s in Status::ALL {
        assert!(
            t.by_status.get(&s).copied().unwrap_or(0) > 0,
            "no {s:?} in {:?}",
            t.by_status
        );
    }
    assert!(t.rejected > 0);
    // Times spread over 29 days: many tubes are tested past the specimen limit.
    assert!(t.past_limit > 0, "no tube past the specimen limit");
}

/// The model itself, on the README's examples, so a wrong model cannot pass silently.
#[test]
fn the_model_follows_the_written_rules() {
    let mut m = Model::default();
    let pool = |m: &mut Model, p: &str, at: u32| {
        m.apply_collections(
            "R1",
            &[("POOL-01".into(), p.into(), Some(Mode::Pool), 10, at)],
        )
    };
    pool(&mut m, "a", 10);
    pool(&mut m, "b", 11);
    assert_eq!(m.status("R1", "a"), Status::Pending);
    m.apply_results(&[(
        "POOL-01".into(),
        ResultRow {
            outcome: Outcome::Positive,
            at: 100,
        },
        String::new(),
    )]);
    assert_eq!(m.status("R1", "a"), Status::Recall);
    m.apply_collections(
        "R1",
        &[("SG-a".into(), "a".into(), Some(Mode::Single), 1, 200)],
    );
    assert_eq!(m.status("R1", "a"), Status::RetestPending);
    // A single tube collected before the pool does not clear it.
    m.apply_collections(
        "R1",
        &[("SG-b".into(), "b".into(), Some(Mode::Single), 1, 5)],
    );
    m.apply_results(&[(
        "SG-b".into(),
        ResultRow {
            outcome: Outcome::Negative,
            at: 300,
        },
        String::new(),
    )]);
    assert_eq!(m.status("R1", "b"), Status::Recall);
    m.apply_results(&[(
        "SG-a".into(),
        ResultRow {
            outcome: Outcome::Negative,
            at: 300,
        },
        String::new(),
    )]);
    assert_eq!(m.status("R1", "a"), Status::Negative);
    // A positive is not cleared by a later negative.
    m.apply_results(&[(
        "POOL-01".into(),
        ResultRow {
            outcome: Outcome::Negative,
            at: 400,
        },
        String::new(),
    )]);
    assert_eq!(
        m.effective("POOL-01"),
        (Some(Outcome::Positive), true, false)
    );
    // A barcode serves one round.
    let e = m.apply_collections(
        "R2",
        &[("POOL-01".into(), "c".into(), Some(Mode::Pool), 10, 1)],
    );
    assert_eq!((e.committed, e.rejected), (0, 1));
    // A second person in a single tube is kept, and the tube is read as a pool: its
    // negative no longer clears a's positive pool, and makes c negative.
    let e = m.apply_collections(
        "R1",
        &[("SG-a".into(), "c".into(), Some(Mode::Single), 1, 2)],
    );
    assert_eq!((e.committed, e.rejected), (1, 0));
    assert_eq!(m.status("R1", "a"), Status::Recall);
    assert_eq!(m.status("R1", "c"), Status::Negative);
    // A blank capacity states nothing: the first stated one stands.
    m.apply_collections(
        "R1",
        &[("POOL-09".into(), "e".into(), Some(Mode::Pool), 0, 3)],
    );
    assert_eq!(m.kind("POOL-09"), (Mode::Pool, 10));
    m.apply_collections(
        "R1",
        &[("POOL-09".into(), "f".into(), Some(Mode::Pool), 20, 4)],
    );
    m.apply_collections(
        "R1",
        &[("POOL-09".into(), "g".into(), Some(Mode::Pool), 5, 5)],
    );
    assert_eq!(m.kind("POOL-09"), (Mode::Pool, 20));
    // Invalid, not followed by a negative: resample.
    m.apply_collections(
        "R1",
        &[("POOL-02".into(), "d".into(), Some(Mode::Pool), 10, 50)],
    );
    m.apply_results(&[(
        "POOL-02".into(),
        ResultRow {
            outcome: Outcome::Invalid,
            at: 60,
        },
        String::new(),
    )]);
    assert_eq!(m.status("R1", "d"), Status::Resample);
    m.apply_collections(
        "R1",
        &[("POOL-03".into(), "d".into(), Some(Mode::Pool), 10, 70)],
    );
    assert_eq!(m.status("R1", "d"), Status::Resample);
    m.apply_results(&[(
        "POOL-03".into(),
        ResultRow {
            outcome: Outcome::Negative,
            at: 80,
        },
        String::new(),
    )]);
    assert_eq!(m.status("R1", "d"), Status::Negative);
    // A single positive wins over everything.
    m.apply_collections(
        "R1",
        &[("SG-d".into(), "d".into(), Some(Mode::Single), 1, 90)],
    );
    m.apply_results(&[(
        "SG-d".into(),
        ResultRow {
            outcome: Outcome::Positive,
            at: 95,
        },
        String::new(),
    )]);
    assert_eq!(m.status("R1", "d"), Status::Positive);

    // A result reported more than 48 h after its tube's first swab does not count: the
    // tube needs a resample, as an invalid one does. The tube's first swab counts, not
    // each member's: i, swabbed 100 s after h, is 48 h 58 min 20 s from the report.
    let hour = 3600;
    let result = |m: &mut Model, tube: &str, outcome: Outcome, at: u32| {
        m.apply_results(&[(tube.into(), ResultRow { outcome, at }, String::new())])
    };
    m.apply_collections(
        "R2",
        &[
            ("POOL-05".into(), "h".into(), Some(Mode::Pool), 10, 1_000),
            ("POOL-05".into(), "i".into(), Some(Mode::Pool), 10, 1_100),
        ],
    );
    result(&mut m, "POOL-05", Outcome::Negative, 1_000 + 49 * hour);
    assert_eq!(m.effective("POOL-05"), (None, false, true));
    assert_eq!(m.status("R2", "h"), Status::Resample);
    assert_eq!(m.status("R2", "i"), Status::Resample);
    // A later negative tube clears it, as it clears an invalid one.
    m.apply_collections(
        "R2",
        &[("POOL-06".into(), "h".into(), Some(Mode::Pool), 10, 200_000)],
    );
    assert_eq!(m.status("R2", "h"), Status::Resample, "not while it waits");
    result(&mut m, "POOL-06", Outcome::Negative, 200_000 + 5 * hour);
    assert_eq!(m.status("R2", "h"), Status::Negative);
    // A positive past the limit recalls no one; a result within it, sent later but
    // reported earlier, counts; exactly 48 h is within.
    m.apply_collections(
        "R2",
        &[("POOL-07".into(), "j".into(), Some(Mode::Pool), 10, 300_000)],
    );
    result(&mut m, "POOL-07", Outcome::Positive, 300_000 + 60 * hour);
    assert_eq!(m.status("R2", "j"), Status::Resample);
    result(&mut m, "POOL-07", Outcome::Negative, 300_000 + 48 * hour);
    assert_eq!(
        m.effective("POOL-07"),
        (Some(Outcome::Negative), false, false)
    );
    assert_eq!(m.status("R2", "j"), Status::Negative);
    // A recalled person's retest tested too late neither clears the pool nor keeps it
    // waiting: recall again.
    m.apply_collections(
        "R2",
        &[("POOL-08".into(), "k".into(), Some(Mode::Pool), 10, 400_000)],
    );
    result(&mut m, "POOL-08", Outcome::Positive, 400_000 + 4 * hour);
    m.apply_collections(
        "R2",
        &[("SG-k".into(), "k".into(), Some(Mode::Single), 1, 420_000)],
    );
    assert_eq!(m.status("R2", "k"), Status::RetestPending);
    result(&mut m, "SG-k", Outcome::Negative, 420_000 + 50 * hour);
    assert_eq!(m.status("R2", "k"), Status::Recall);
}

/// A second person scanned into a single tube, twice in one batch: the swab is in the
/// tube, so the first row is kept (with a warning) and the second is the same
/// membership again; nothing is refused, and the tube is read as a pool.
#[test]
fn a_second_person_in_a_single_tube_is_kept_once() {
    use crate::rules::{ingest_collections, rejects_of};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let first = dir.path().join("first.csv");
    std::fs::write(
        &first,
        "tube,person,mode,collected_at\nSG-0001,alice,single,2022-04-02 08:00:00\n",
    )
    .expect("write");
    ingest_collections(&store, "R1", &[first]);
    let again = dir.path().join("again.csv");
    std::fs::write(
        &again,
        "tube,person,mode,collected_at\nSG-0001,bob,single,2022-04-02 09:00:00\nSG-0001,bob,single,2022-04-02 09:05:00\n",
    )
    .expect("write");
    let r = ingest_collections(&store, "R1", &[again]);
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    let rejects = rejects_of(&r);
    assert!(
        rejects.iter().all(|row| row.severity == "warning"),
        "{rejects:?}"
    );
    assert!(
        rejects
            .iter()
            .any(|row| row.reason.contains("read as a pool")),
        "{rejects:?}"
    );
    assert!(
        rejects
            .iter()
            .any(|row| row.reason.contains("twice; kept once")),
        "{rejects:?}"
    );
}
