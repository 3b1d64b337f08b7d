//! Turnaround and deadlines: how long tubes waited for a result, which are late, how
//! fast positive pools were recalled, and whether the round will finish in 24 h.
//!
//! - A tube's **turnaround** is the `reported_at` of its first counted result (the
//!   earliest by report time that is not void) minus the tube's earliest `collected_at`.
//!   Percentiles are **nearest-rank**: the p-th percentile of n sorted values is the
//!   value at rank ⌈p·n/100⌉ (1-based), always an observed turnaround.
//! - A tube is **late** when that first result came after its deadline (default 24 h
//!   for pools, 6 h for single tubes: the targets cities promised), or when it still has
//!   no result at `as_of` and the deadline has passed.
//! - A positive pool's **recall delay** runs from its first positive result's
//!   `reported_at` to the first `worklist recall` run of the round that started after
//!   the batch holding that result was committed (the log `STORE/logs/recall-runs.jsonl`
//!   that `worklist recall` appends to). Without such a run the pool is still waiting.
//! - **Progress**: for each hour h = 1..=H after the round's first collection, the
//!   tubes collected by then and how many of them had a result by then. H reaches the
//!   round's last collection or first result, or `as_of` if earlier (at most
//!   [`MAX_PROGRESS_HOURS`]).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt32Type};
use arrow_array::{Array, StringArray};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{Mode, Outcome};
use crate::store::read::{self, CollectionText};
use crate::store::{BatchKind, Store, fsutil};
use crate::time::{self, Millis, Offset};
use crate::tracker::{NONE, Statuses};
use crate::{Error, Result};

const MS_PER_MINUTE: f64 = 60_000.0;
const MS_PER_HOUR: i64 = 3_600_000;

/// Hourly histogram bins before the overflow bin.
pub const HISTOGRAM_HOURS: usize = 48;
/// The longest progress curve, in hours (a round of two weeks is no longer one round).
pub const MAX_PROGRESS_HOURS: u32 = 24 * 14;
/// The recall-run log, relative to the store root.
pub const RECALL_LOG: &str = "logs/recall-runs.jsonl";

pub use crate::store::config::Deadlines;

/// One run of `worklist recall`, from the recall-run log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecallRun {
    /// The round it listed.
    pub round: String,
    /// When it started.
    pub at: Millis,
    /// Persons it listed.
    pub rows: u64,
}

#[derive(Serialize, Deserialize)]
struct RecallLine {
    round: String,
    at: String,
    rows: u64,
}

/// A round's recall runs, and the log lines that could not be read.
#[derive(Debug, Default, Clone)]
pub struct RecallLog {
    /// Runs of the round, by start time.
    pub runs: Vec<RecallRun>,
    /// "line N: why" for each malformed line (skipped).
    pub skipped: Vec<String>,
}

/// Appends one run to `ROOT/logs/recall-runs.jsonl` (folder 0700, file 0600; one
/// `write` on an `O_APPEND` file, so concurrent runs do not interleave lines). The time
/// is RFC 3339 in `zone`, the store's zone, like every other time pooltrack writes
/// (logs written before this were in UTC, `...Z`; both are read).
///
/// ```
/// use pooltrack::time::Offset;
/// use pooltrack::turnaround::{record_recall_run, RECALL_LOG};
/// let dir = tempfile::tempdir().unwrap();
/// record_recall_run(dir.path(), "2022-04-02", 0, 3, Offset::CHINA).unwrap();
/// let log = std::fs::read_to_string(dir.path().join(RECALL_LOG)).unwrap();
/// assert_eq!(log, "{\"round\":\"2022-04-02\",\"at\":\"1970-01-01T08:00:00+08:00\",\"rows\":3}\n");
/// ```
pub fn record_recall_run(
    root: &Path,
    round: &str,
    at: Millis,
    rows: u64,
    zone: Offset,
) -> Result<()> {
    let path = root.join(RECALL_LOG);
    let dir = path.parent().unwrap_or(root);
    fsutil::create_dir_all(dir)?;
    let line = RecallLine {
        round: round.to_owned(),
        at: time::format(at, zone),
        rows,
    };
    let mut bytes = serde_json::to_vec(&line).map_err(|e| Error::io(&path, e.into()))?;
    bytes.push(b'\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    f.write_all(&bytes).map_err(|e| Error::io(&path, e))
}

/// Reads the recall runs of `round` from the store's log (none when there is no log).
/// A malformed line is skipped and reported in [`RecallLog::skipped`].
pub fn recall_runs(store: &Store, round: &str) -> Result<RecallLog> {
    recall_runs_in(&store.root().join(RECALL_LOG), round)
}

fn recall_runs_in(path: &PathBuf, round: &str) -> Result<RecallLog> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RecallLog::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut log = RecallLog::default();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<RecallLine>(line)
            .map_err(|e| e.to_string())
            .and_then(|l| {
                time::parse(l.at.as_bytes(), Offset::UTC)
                    .map(|at| (l, at))
                    .map_err(|e| format!("\"at\" {e}"))
            });
        match parsed {
            Ok((l, at)) if l.round == round => log.runs.push(RecallRun {
                round: l.round,
                at,
                rows: l.rows,
            }),
            Ok(_) => {}
            Err(why) => log
                .skipped
                .push(format!("{}: line {}: {why}", path.display(), i + 1)),
        }
    }
    log.runs.sort_by_key(|r| r.at);
    Ok(log)
}

/// What "now" of a report that measures waiting is, when `--as-of` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Given with `--as-of`.
    Given,
    /// The round's last result (its latest `reported_at`).
    LastResult,
    /// The round's last collection (it has no results yet).
    LastCollection,
}

impl AsOf {
    /// Words for the note that says which time was used.
    pub fn describe(self) -> &'static str {
        match self {
            AsOf::Given => "--as-of",
            AsOf::LastResult => "the round's last result; --as-of to change",
            AsOf::LastCollection => {
                "the round's last collection, it has no result yet; --as-of to change"
            }
        }
    }
}

/// The default "now" of a round's waiting measures: its last result, else its last
/// collection. The current time would make a past round's waiting tubes look
/// months late; the round's own last event is what it looked like when it ended.
pub fn round_as_of(round: &Statuses) -> (Millis, AsOf) {
    let rs = &round.results;
    let last_result = rs
        .reported_at
        .iter()
        .zip(&rs.tube)
        .filter(|&(_, &t)| t != NONE)
        .map(|(&at, _)| at)
        .max();
    match last_result {
        Some(at) => (at, AsOf::LastResult),
        None => (
            round.collected_at.iter().copied().max().unwrap_or(0),
            AsOf::LastCollection,
        ),
    }
}

/// The value at nearest rank ⌈p·n/100⌉ of `sorted` (ascending); `None` when empty.
///
/// ```
/// use pooltrack::turnaround::nearest_rank;
/// let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
/// assert_eq!(nearest_rank(&v, 50), Some(50));
/// assert_eq!(nearest_rank(&v, 90), Some(90));
/// assert_eq!(nearest_rank(&v, 99), Some(100));
/// assert_eq!(nearest_rank(&[] as &[i64], 50), None);
/// ```
pub fn nearest_rank(sorted: &[i64], p: u32) -> Option<i64> {
    let n = sorted.len();
    let rank = (usize::try_from(p).ok()?.min(100) * n).div_ceil(100).max(1);
    sorted.get(rank.min(n).checked_sub(1)?).copied()
}

/// Turnaround of a set of tubes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Tubes with a counted result.
    pub tubes: u64,
    /// Median turnaround, minutes.
    pub median_minutes: Option<f64>,
    /// 90th percentile, minutes.
    pub p90_minutes: Option<f64>,
    /// 99th percentile, minutes.
    pub p99_minutes: Option<f64>,
    /// Tubes whose first result came after their deadline.
    pub reported_late: u64,
}

impl Stats {
    /// Stats of turnarounds in milliseconds (sorted here).
    pub fn of(mut ms: Vec<i64>, reported_late: u64) -> Stats {
        ms.par_sort_unstable();
        let minutes = |p| nearest_rank(&ms, p).map(|v| v as f64 / MS_PER_MINUTE);
        Stats {
            tubes: ms.len() as u64,
            median_minutes: minutes(50),
            p90_minutes: minutes(90),
            p99_minutes: minutes(99),
            reported_late,
        }
    }
}

/// One lab's turnaround (the lab of each tube's first counted result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabStats {
    /// The lab (empty when the results named none).
    pub lab: String,
    /// Its tubes' turnaround.
    #[serde(flatten)]
    pub stats: Stats,
    /// From receipt to report, for its tubes whose result gave `received_at`: the
    /// lab's own share of the turnaround (the rest is transport).
    pub in_lab: Stats,
}

/// A tube past its deadline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateTube {
    /// Barcode.
    pub tube: String,
    /// `pool` or `single`.
    pub mode: &'static str,
    /// Earliest collection.
    pub collected_at: String,
    /// When its result was due.
    pub due_at: String,
    /// Its first counted result's report time; `None` while it still waits.
    pub reported_at: Option<String>,
    /// Lab of that result.
    pub lab: String,
    /// Minutes past the deadline (at `as_of` for a tube still waiting).
    pub minutes_late: f64,
}

/// How long a positive pool waited for its recall list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallDelay {
    /// The pool's barcode.
    pub tube: String,
    /// Its first positive result's report time.
    pub reported_at: String,
    /// When the batch holding that result was committed.
    pub committed_at: String,
    /// The first recall run after that commit; `None`: not yet run.
    pub recall_run_at: Option<String>,
    /// Minutes from the report to that run, or waited until `as_of` when not yet run.
    pub minutes: f64,
}

/// Progress at one hour of the round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProgressPoint {
    /// Hours since the round's first collection.
    pub hour: u32,
    /// Tubes collected by then.
    pub collected: u64,
    /// Of them, tubes with a counted result by then.
    pub with_result: u64,
    /// with_result / collected (0 when none collected).
    pub share: f64,
}

/// Turnaround counts in 1-hour bins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Width of a bin, minutes.
    pub bin_minutes: u32,
    /// Tubes with turnaround in [h, h+1) hours, h = 0..48 (a negative turnaround, a
    /// result reported before its collection time, counts in bin 0).
    pub counts: Vec<u64>,
    /// Tubes with turnaround of 48 hours or more.
    pub overflow: u64,
}

impl Histogram {
    /// Bins turnarounds given in milliseconds.
    ///
    /// ```
    /// use pooltrack::turnaround::Histogram;
    /// let h = Histogram::of(&[0, 59 * 60_000, 60 * 60_000, 49 * 3_600_000]);
    /// assert_eq!((h.counts[0], h.counts[1], h.overflow), (2, 1, 1));
    /// ```
    pub fn of(ms: &[i64]) -> Histogram {
        let mut counts = vec![0u64; HISTOGRAM_HOURS];
        let mut overflow = 0;
        for &v in ms {
            match usize::try_from(v.max(0) / MS_PER_HOUR) {
                Ok(h) if h < HISTOGRAM_HOURS => counts[h] += 1,
                _ => overflow += 1,
            }
        }
        Histogram {
            bin_minutes: 60,
            counts,
            overflow,
        }
    }
}

/// The progress curve: `collected` holds each tube's earliest collection time, `done`
/// the time by which a tube was both collected and reported (`None`: no result).
///
/// ```
/// use pooltrack::turnaround::progress;
/// let h = 3_600_000;
/// // Two tubes at 0 h and 1.5 h; the first reported at 0.5 h, the second at 2.5 h.
/// let p = progress(0, &[0, 3 * h / 2], &[Some(h / 2), Some(5 * h / 2)], 3);
/// assert_eq!(p.iter().map(|x| (x.collected, x.with_result)).collect::<Vec<_>>(),
///            vec![(1, 1), (2, 1), (2, 2)]);
/// ```
pub fn progress(
    start: Millis,
    collected: &[Millis],
    done: &[Option<Millis>],
    hours: u32,
) -> Vec<ProgressPoint> {
    let mut c: Vec<Millis> = collected.to_vec();
    c.par_sort_unstable();
    let mut d: Vec<Millis> = done.iter().flatten().copied().collect();
    d.par_sort_unstable();
    (1..=hours)
        .map(|h| {
            let t = start + i64::from(h) * MS_PER_HOUR;
            let collected = c.partition_point(|&x| x <= t) as u64;
            let with_result = d.partition_point(|&x| x <= t) as u64;
            ProgressPoint {
                hour: h,
                collected,
                with_result,
                share: if collected == 0 {
                    0.0
                } else {
                    with_result as f64 / collected as f64
                },
            }
        })
        .collect()
}

/// Late tubes counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LateCounts {
    /// Pools reported after their deadline.
    pub pool_reported_late: u64,
    /// Pools still without a result past their deadline.
    pub pool_waiting: u64,
    /// Single tubes reported after their deadline.
    pub single_reported_late: u64,
    /// Single tubes still without a result past their deadline.
    pub single_waiting: u64,
}

/// A round's turnaround report.
#[derive(Debug, Clone, Serialize)]
pub struct Turnaround {
    /// The round.
    pub round: String,
    /// The time "now" for tubes still waiting.
    pub as_of: String,
    /// The deadlines applied.
    pub deadlines: Deadlines,
    /// The round's first collection.
    pub first_collection: Option<String>,
    /// Tubes in the round.
    pub tubes: u64,
    /// Turnaround of the whole round.
    pub round_stats: Stats,
    /// Turnaround by lab, by lab name.
    pub by_lab: Vec<LabStats>,
    /// From collection to receipt at the lab, for tubes whose result gave `received_at`.
    pub transport: Stats,
    /// From receipt to report, for the same tubes.
    pub in_lab: Stats,
    /// Late tubes by kind.
    pub late_counts: LateCounts,
    /// Every late tube, the latest first.
    pub late: Vec<LateTube>,
    /// Each positive pool's recall delay, the longest first.
    pub recall_delays: Vec<RecallDelay>,
    /// Progress by hour since the first collection.
    pub progress: Vec<ProgressPoint>,
    /// Turnaround histogram of the round.
    pub histogram: Histogram,
}

/// The first result of each tube that counts (not void), by report time; [`NONE`] when
/// it has none.
pub fn first_counted(round: &Statuses) -> Vec<u32> {
    let t = &round.tubes;
    let void = |r: u32| round.results.void.get(r as usize).copied().unwrap_or(false);
    (0..t.len())
        .into_par_iter()
        .map(|i| {
            let (lo, hi) = (t.result_start[i] as usize, t.result_start[i + 1] as usize);
            t.result_rows[lo..hi]
                .iter()
                .copied()
                .find(|&r| !void(r))
                .unwrap_or(NONE)
        })
        .collect()
}

/// Each tube's earliest collection time.
pub fn earliest_collection(round: &Statuses) -> Vec<Millis> {
    let mut at = vec![Millis::MAX; round.tubes.len()];
    for (&t, &c) in round.tube_of_row.iter().zip(&round.collected_at) {
        let slot = &mut at[t as usize];
        *slot = (*slot).min(c);
    }
    at
}

impl Turnaround {
    /// Measures a decided round against `deadlines`, with the round's `recall_runs`
    /// (others are ignored) and `as_of` as "now" for tubes still waiting. Reads the lab
    /// and batch of the round's result rows (few: about one per tube) and the barcodes
    /// of only the tubes it lists, not the round's 25 million person ids.
    pub fn compute(
        store: &Store,
        round: &Statuses,
        deadlines: Deadlines,
        recall_runs: &[RecallRun],
        as_of: Millis,
    ) -> Result<Turnaround> {
        let deadlines = deadlines.check()?;
        let tubes = &round.tubes;
        let n = tubes.len();
        let first = first_counted(round);
        let collected = earliest_collection(round);
        let rs = &round.results;

        // Lab, batch and receipt time of every result row (row order), for labs, commit
        // times and the transport/lab split.
        let cols = read::columns(
            store,
            &round.name,
            BatchKind::Results,
            &["lab", "batch", "received_at"],
        )?;
        let received = cols[2].as_primitive_opt::<TimestampMillisecondType>();
        let received_at = |r: u32| -> Option<Millis> {
            let a = received?;
            let i = r as usize;
            (i < a.len() && a.is_valid(i)).then(|| a.value(i))
        };
        let labs: StringArray = cols[0]
            .as_string_opt::<i32>()
            .cloned()
            .unwrap_or_else(|| StringArray::from(Vec::<&str>::new()));
        let batches: Vec<u32> = cols[1]
            .as_primitive_opt::<UInt32Type>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        if labs.len() != rs.outcome.len() || batches.len() != rs.outcome.len() {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: the result segments and their indexes disagree on the rows",
                    round.name
                ),
            ));
        }
        let lab_of = |r: u32| {
            let i = r as usize;
            if labs.is_null(i) { "" } else { labs.value(i) }
        };

        // Turnaround of each tube with a counted result, and its lab.
        let mut lab_ids: HashMap<&str, usize> = HashMap::new();
        let mut lab_names: Vec<&str> = Vec::new();
        let mut per_lab: Vec<(Vec<i64>, u64, Vec<i64>)> = Vec::new();
        let mut all = Vec::with_capacity(n);
        let (mut transport, mut in_lab) = (Vec::new(), Vec::new());
        let mut late_total = 0;
        let mut late: Vec<(u32, Option<u32>, Millis)> = Vec::new();
        let mut counts = LateCounts::default();
        for t in 0..n {
            let due = collected[t].saturating_add(deadlines.millis(tubes.mode[t]));
            let pool = tubes.mode[t] == Mode::Pool;
            let tube = u32::try_from(t).unwrap_or(NONE);
            let r = first[t];
            if r == NONE {
                if as_of > due {
                    late.push((tube, None, as_of - due));
                    *if pool {
                        &mut counts.pool_waiting
                    } else {
                        &mut counts.single_waiting
                    } += 1;
                }
                continue;
            }
            let reported = rs.reported_at[r as usize];
            let ms = reported - collected[t];
            let is_late = reported > due;
            let name = lab_of(r);
            let id = *lab_ids.entry(name).or_insert_with(|| {
                lab_names.push(name);
                per_lab.push((Vec::new(), 0, Vec::new()));
                lab_names.len() - 1
            });
            per_lab[id].0.push(ms);
            all.push(ms);
            if let Some(at) = received_at(r) {
                transport.push(at - collected[t]);
                in_lab.push(reported - at);
                per_lab[id].2.push(reported - at);
            }
            if is_late {
                per_lab[id].1 += 1;
                late_total += 1;
                late.push((tube, Some(r), reported - due));
                *if pool {
                    &mut counts.pool_reported_late
                } else {
                    &mut counts.single_reported_late
                } += 1;
            }
        }
        let histogram = Histogram::of(&all);
        let round_stats = Stats::of(all, late_total);
        let mut by_lab: Vec<LabStats> = lab_names
            .iter()
            .zip(per_lab)
            .map(|(name, (ms, late, in_lab))| LabStats {
                lab: (*name).to_owned(),
                stats: Stats::of(ms, late),
                in_lab: Stats::of(in_lab, 0),
            })
            .collect();
        by_lab.sort_by(|a, b| a.lab.cmp(&b.lab));

        // Positive pools and their recall runs.
        let committed: HashMap<u32, Millis> = store
            .manifest()
            .batches
            .iter()
            .filter_map(|b| {
                Some((
                    b.id,
                    time::parse(b.committed_at.as_bytes(), Offset::UTC).ok()?,
                ))
            })
            .collect();
        let mut runs: Vec<Millis> = recall_runs
            .iter()
            .filter(|r| r.round == round.name)
            .map(|r| r.at)
            .collect();
        runs.sort_unstable();
        let mut recalls: Vec<(u32, u32, Millis, Option<Millis>, i64)> = Vec::new();
        for t in 0..n {
            let eff = tubes.result[t];
            if tubes.mode[t] != Mode::Pool
                || eff == NONE
                || rs.outcome[eff as usize] != Outcome::Positive
            {
                continue;
            }
            let (lo, hi) = (
                tubes.result_start[t] as usize,
                tubes.result_start[t + 1] as usize,
            );
            let Some(&r) = tubes.result_rows[lo..hi].iter().find(|&&r| {
                rs.outcome[r as usize] == Outcome::Positive
                    && !rs.void.get(r as usize).copied().unwrap_or(false)
            }) else {
                continue;
            };
            let reported = rs.reported_at[r as usize];
            // A batch missing from the manifest cannot happen in a checked store; the
            // report time is then the best bound on when the result was known.
            let at = committed
                .get(&batches[r as usize])
                .copied()
                .unwrap_or(reported);
            let run = runs.get(runs.partition_point(|&x| x <= at)).copied();
            let end = run.unwrap_or(as_of);
            recalls.push((u32::try_from(t).unwrap_or(NONE), r, at, run, end - reported));
        }

        // Barcodes of the listed tubes only.
        let listed: Vec<u32> = late
            .iter()
            .map(|l| l.0)
            .chain(recalls.iter().map(|r| r.0))
            .map(|t| tubes.row[t as usize])
            .collect();
        let text = CollectionText::fetch(store, &round.name, &listed)?;
        let barcode = |t: u32| text.get(tubes.row[t as usize]).tube.to_owned();
        let fmt = |ms: Millis| time::format(ms, round.zone);
        late.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let late = late
            .into_iter()
            .map(|(t, r, over)| {
                let i = t as usize;
                LateTube {
                    tube: barcode(t),
                    mode: tubes.mode[i].as_str(),
                    collected_at: fmt(collected[i]),
                    due_at: fmt(collected[i].saturating_add(deadlines.millis(tubes.mode[i]))),
                    reported_at: r.map(|r| fmt(rs.reported_at[r as usize])),
                    lab: r.map_or(String::new(), |r| lab_of(r).to_owned()),
                    minutes_late: over as f64 / MS_PER_MINUTE,
                }
            })
            .collect();
        recalls.sort_by(|a, b| b.4.cmp(&a.4).then(a.0.cmp(&b.0)));
        let recall_delays = recalls
            .into_iter()
            .map(|(t, r, at, run, ms)| RecallDelay {
                tube: barcode(t),
                reported_at: fmt(rs.reported_at[r as usize]),
                committed_at: fmt(at),
                recall_run_at: run.map(fmt),
                minutes: ms as f64 / MS_PER_MINUTE,
            })
            .collect();

        // Progress from the first collection to the last event (or as_of).
        let start = collected.iter().copied().min();
        let done: Vec<Option<Millis>> = (0..n)
            .map(|t| {
                (first[t] != NONE).then(|| rs.reported_at[first[t] as usize].max(collected[t]))
            })
            .collect();
        let progress_curve = match start {
            None => Vec::new(),
            Some(s) => {
                let last = collected
                    .iter()
                    .copied()
                    .chain(done.iter().flatten().copied())
                    .max()
                    .unwrap_or(s)
                    .min(as_of)
                    .max(s);
                let hours = u32::try_from((last - s + MS_PER_HOUR - 1) / MS_PER_HOUR)
                    .unwrap_or(MAX_PROGRESS_HOURS)
                    .clamp(1, MAX_PROGRESS_HOURS);
                progress(s, &collected, &done, hours)
            }
        };
        Ok(Turnaround {
            round: round.name.clone(),
            as_of: fmt(as_of),
            deadlines,
            first_collection: start.map(fmt),
            tubes: n as u64,
            round_stats,
            by_lab,
            transport: Stats::of(transport, 0),
            in_lab: Stats::of(in_lab, 0),
            late_counts: counts,
            late,
            recall_delays,
            progress: progress_curve,
            histogram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_observed_values() {
        let v: Vec<i64> = (1..=200).collect();
        assert_eq!(nearest_rank(&v, 50), Some(100));
        assert_eq!(nearest_rank(&v, 90), Some(180));
        assert_eq!(nearest_rank(&v, 99), Some(198));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3], 0), Some(1));
        assert_eq!(nearest_rank(&[1, 2, 3], 100), Some(3));
        assert_eq!(nearest_rank(&[], 90), None);
    }

    #[test]
    fn stats_in_minutes() {
        let s = Stats::of(vec![3 * 60_000, 60_000, 2 * 60_000], 1);
        assert_eq!(s.tubes, 3);
        assert_eq!(s.median_minutes, Some(2.0));
        assert_eq!(s.p90_minutes, Some(3.0));
        assert_eq!(s.reported_late, 1);
        assert_eq!(Stats::of(Vec::new(), 0).median_minutes, None);
    }

    #[test]
    fn histogram_bins_by_hour_with_overflow() {
        let h = MS_PER_HOUR;
        let hist = Histogram::of(&[-5, 0, h - 1, h, 47 * h + 1, 48 * h, 100 * h]);
        assert_eq!(hist.counts.len(), 48);
        assert_eq!(hist.counts[0], 3);
        assert_eq!(hist.counts[1], 1);
        assert_eq!(hist.counts[47], 1);
        assert_eq!(hist.overflow, 2);
        assert_eq!(hist.counts.iter().sum::<u64>() + hist.overflow, 7);
    }

    #[test]
    fn progress_counts_tubes_collected_and_reported_by_each_hour() {
        let h = MS_PER_HOUR;
        let p = progress(
            100,
            &[100, 100 + h, 100 + 2 * h],
            &[Some(100 + h), None, Some(100 + 3 * h)],
            3,
        );
        let got: Vec<(u32, u64, u64)> = p
            .iter()
            .map(|x| (x.hour, x.collected, x.with_result))
            .collect();
        assert_eq!(got, vec![(1, 2, 1), (2, 3, 1), (3, 3, 2)]);
        assert!((p[0].share - 0.5).abs() < 1e-12);
        assert!(progress(0, &[], &[], 2).iter().all(|x| x.share == 0.0));
    }

    #[test]
    fn recall_log_skips_malformed_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("runs.jsonl");
        std::fs::write(
            &path,
            "{\"round\":\"r1\",\"at\":\"2022-04-02T06:00:00Z\",\"rows\":4}\nnot json\n\n\
             {\"round\":\"r1\",\"at\":\"yesterday\",\"rows\":1}\n\
             {\"round\":\"r2\",\"at\":\"2022-04-02T05:00:00Z\",\"rows\":2}\n\
             {\"round\":\"r1\",\"at\":\"2022-04-02T05:00:00Z\",\"rows\":9}",
        )
        .expect("write");
        let log = recall_runs_in(&path, "r1").expect("read");
        assert_eq!(log.runs.len(), 2);
        assert_eq!(log.runs[0].rows, 9);
        assert_eq!(log.skipped.len(), 2);
        assert!(log.skipped[0].contains("line 2"), "{:?}", log.skipped);
        assert!(log.skipped[1].contains("line 4"), "{:?}", log.skipped);
        let none = recall_runs_in(&dir.path().join("missing"), "r1").expect("no log");
        assert!(none.runs.is_empty());
    }

    #[test]
    fn deadlines_are_checked() {
        assert!(Deadlines::default().check().is_ok());
        let bad = Deadlines {
            pool_hours: 0.0,
            single_hours: 6.0,
        };
        assert!(bad.check().is_err());
        let nan = Deadlines {
            pool_hours: 24.0,
            single_hours: f64::NAN,
        };
        assert!(nan.check().is_err());
        assert_eq!(Deadlines::default().millis(Mode::Single), 6 * MS_PER_HOUR);
    }
}
