//! The recall-run log that `worklist recall` appends to, and how long each positive
//! pool waited for the first run after its result was committed.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{Mode, Outcome};
use crate::store::{Store, fsutil};
use crate::time::{self, Millis, Offset};
use crate::tracker::{NONE, Statuses};
use crate::{Error, Result};

/// The recall-run log, relative to the store root.
pub const RECALL_LOG: &str = "logs/recall-runs.jsonl";

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

/// Each positive pool with its recall: (tube, its first counted positive result row,
/// when the batch holding that result was committed, the first of `recall_runs` after
/// that, and the milliseconds from the report to that run, or to `as_of` while none
/// ran). `batches` holds the batch of each of the round's result rows.
pub(super) fn delays(
    store: &Store,
    round: &Statuses,
    recall_runs: &[RecallRun],
    batches: &[u32],
    as_of: Millis,
) -> Vec<(u32, u32, Millis, Option<Millis>, i64)> {
    let tubes = &round.tubes;
    let n = tubes.len();
    let rs = &round.results;
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
    recalls
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
