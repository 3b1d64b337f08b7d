//! One ingest: files → checked rows → a committed batch (or nothing, under `--strict`).
//!
//! The checks that need more than one row happen here, against the batch itself and
//! against the store's sidecar indexes (never by re-reading the round):
//! - a tube barcode belongs to one round;
//! - a tube keeps the mode and capacity it was first collected with;
//! - the same (tube, person) scanned twice is one membership (a warning);
//! - a pool with more members than its capacity is kept and flagged (a warning);
//! - a result must name a collected tube; the same result sent twice is kept once;
//! - a later non-positive result does not clear a positive tube (a warning; the
//!   tracker keeps the tube positive);
//! - a person registered twice in one population batch: the later line wins (a
//!   warning).

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::collections::HashMap;

use crate::fasthash::KeyHash;
use rayon::prelude::*;
use serde::Serialize;

use super::collections;
use super::population;
use super::reject::{ReasonGroup, Rejects, Severity, Where};
use super::results;
use super::table::Table;
use crate::column::LabelColumn;
use crate::model::{Mode, Outcome, SampleType, check_round};
use crate::progress::Progress;
use crate::rows::{CollectionRows, PopulationRows, ResultRows};
use crate::store::index::{TubeKey, TubeMeta, person_hash, tube_key, tube_prefix};
use crate::store::manifest::{FailedPlate, Source};
use crate::store::segment::{self, SegmentPlan};
use crate::store::{Batch, BatchKind, Store, StoreIndex, TubeFacts, fsutil};
use crate::time::{self, Offset};
use crate::{Error, Result};

/// How many rows of each reason the summary shows; the rejects file lists them all.
pub const REASON_EXAMPLES: usize = 3;

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Reject the whole batch if any row is bad.
    pub strict: bool,
    /// The CSV files' character encoding (Parquet is always UTF-8).
    pub encoding: super::table::TextEncoding,
    /// The CSV files' field delimiter; `None` reads commas and refuses a header that
    /// looks separated by another character, naming it.
    pub delimiter: Option<u8>,
}

/// What happened to one input file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path as given.
    pub path: String,
    /// Data rows read (0 when skipped).
    pub rows: u64,
    /// Set when the same content was already ingested, by that batch.
    pub already_in_batch: Option<u32>,
    /// That batch's round (collections), so a clerk sees where the file went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_round: Option<String>,
    /// When that batch was committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_committed_at: Option<String>,
}

/// The summary an ingest prints.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// Collections or results.
    pub kind: BatchKind,
    /// The committed batch, or `None` when there was nothing new.
    pub batch: Option<u32>,
    /// Each input file.
    pub files: Vec<FileReport>,
    /// Data rows read from new files.
    pub rows_read: u64,
    /// Rows committed.
    pub committed: u64,
    /// Rows refused.
    pub rejected: u64,
    /// Rows committed or dropped with a warning.
    pub warnings: u64,
    /// The reject report, if any row was refused or flagged.
    pub rejects_file: Option<PathBuf>,
    /// The refused and flagged rows grouped by reason, errors first, each with its
    /// first few rows ([`Rejects::summary`]): what the terminal shows.
    pub reasons: Vec<ReasonGroup>,
    /// Rounds the batch added rows to.
    pub rounds: Vec<String>,
    /// Pools that now hold more persons than their capacity.
    pub overfull_tubes: u64,
    /// Positive tubes a later non-positive result did not clear.
    pub positives_kept: u64,
    /// Plates whose controls failed: their samples' results do not count.
    pub failed_plates: Vec<FailedPlate>,
    /// Seconds spent in each stage (hash, parse, check, write, commit), for benchmarks.
    pub stage_seconds: Vec<(&'static str, f64)>,
}

/// Ingests collection files into `round`.
pub fn ingest_collections(
    store: &mut Store,
    files: &[PathBuf],
    round: &str,
    opts: &IngestOptions,
    progress: Option<&dyn Progress>,
) -> Result<IngestReport> {
    check_round(round).map_err(|why| Error::Usage(format!("--round {round:?}: {why}")))?;
    ingest(
        store,
        BatchKind::Collections,
        files,
        Some(round),
        opts,
        progress,
    )
}

/// Ingests result files (each tube's round is the one it was collected in).
pub fn ingest_results(
    store: &mut Store,
    files: &[PathBuf],
    opts: &IngestOptions,
    progress: Option<&dyn Progress>,
) -> Result<IngestReport> {
    ingest(store, BatchKind::Results, files, None, opts, progress)
}

/// Ingests population register files: who must be tested (no round). A person
/// registered again, in this batch or a later one, takes the later line's district,
/// community and group.
pub fn ingest_population(
    store: &mut Store,
    files: &[PathBuf],
    opts: &IngestOptions,
    progress: Option<&dyn Progress>,
) -> Result<IngestReport> {
    ingest(store, BatchKind::Population, files, None, opts, progress)
}

enum Rows {
    Collections(CollectionRows),
    Results(ResultRows),
    Population(PopulationRows),
}

impl Rows {
    fn file_of(&self, row: usize) -> u16 {
        match self {
            Rows::Collections(r) => r.file[row],
            Rows::Results(r) => r.file[row],
            Rows::Population(r) => r.file[row],
        }
    }
}

fn ingest(
    store: &mut Store,
    kind: BatchKind,
    files: &[PathBuf],
    round: Option<&str>,
    opts: &IngestOptions,
    progress: Option<&dyn Progress>,
) -> Result<IngestReport> {
    let mut report = IngestReport {
        kind,
        batch: None,
        files: Vec::new(),
        rows_read: 0,
        committed: 0,
        rejected: 0,
        warnings: 0,
        rejects_file: None,
        reasons: Vec::new(),
        rounds: Vec::new(),
        overfull_tubes: 0,
        positives_kept: 0,
        failed_plates: Vec::new(),
        stage_seconds: Vec::new(),
    };
    let mut clock = Instant::now();
    let mut lap = |report: &mut IngestReport, stage: &'static str| {
        report
            .stage_seconds
            .push((stage, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    // Which files are new: identified by content, so a renamed copy is still a repeat.
    // Only a file of the same size as an ingested one, or as another in this list, can
    // be a repeat: those are hashed now; the rest are hashed as they are parsed.
    let sizes = files
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| Error::io(p, e))
        })
        .collect::<Result<Vec<u64>>>()?;
    let mut listed: HashMap<u64, usize> = HashMap::new();
    for &size in &sizes {
        *listed.entry(size).or_default() += 1;
    }
    let mut sources: Vec<(PathBuf, Source)> = Vec::new();
    for (path, &size) in files.iter().zip(&sizes) {
        let label = path.to_string_lossy().into_owned();
        let may_repeat =
            listed.get(&size) > Some(&1) || store.manifest().has_source_of_size(kind, size);
        // An empty hash stands for "hashed while read", filled in after the parse.
        let (bytes, hash) = if may_repeat {
            hash_file(path)?
        } else {
            (size, String::new())
        };
        let earlier_batch = may_repeat
            .then(|| store.manifest().find_source(kind, &hash))
            .flatten();
        let earlier = earlier_batch.map(|b| b.id);
        let repeat = may_repeat && sources.iter().any(|(_, s)| s.xxh3_128 == hash);
        report.files.push(FileReport {
            path: label.clone(),
            rows: 0,
            already_in_batch: earlier,
            already_round: earlier_batch.and_then(|b| b.round.clone()),
            already_committed_at: earlier_batch.map(|b| b.committed_at.clone()),
        });
        if earlier.is_none() && !repeat {
            sources.push((
                path.clone(),
                Source {
                    path: label,
                    bytes,
                    xxh3_128: hash,
                },
            ));
        }
    }
    lap(&mut report, "hash");
    if sources.is_empty() {
        return Ok(report);
    }
    // Segments name each row's source file by a 16-bit key.
    if sources.len() > usize::from(u16::MAX) {
        return Err(Error::Usage(format!(
            "{} new files in one ingest; at most {} a batch: split the list",
            sources.len(),
            u16::MAX
        )));
    }
    if let Some(pb) = progress {
        pb.total(sources.iter().map(|(_, s)| s.bytes).sum());
    }

    let zone = store.zone();
    let ct_cutoff = store.manifest().settings.ct_cutoff;
    let config = store.config()?;
    let id_check = config.ids.id_check;
    let cutoffs = results::Cutoffs {
        ct: ct_cutoff,
        ic: config.results.ic_cutoff,
    };
    let mut rejects = Rejects::default();
    let mut rows = match kind {
        BatchKind::Collections => Rows::Collections(CollectionRows::default()),
        BatchKind::Results => Rows::Results(ResultRows::default()),
        BatchKind::Population => Rows::Population(PopulationRows::default()),
    };
    let labels: Vec<String> = sources.iter().map(|(_, s)| s.path.clone()).collect();
    for (no, (path, source)) in sources.iter_mut().enumerate() {
        if let Some(pb) = progress {
            pb.stage(&format!("reading {}", source.path));
        }
        let read = super::table::ReadOptions {
            encoding: opts.encoding,
            delimiter: opts.delimiter,
        };
        let mut table = Table::open_with(path, &read)?;
        let no = u16::try_from(no).unwrap_or(u16::MAX);
        let n = match &mut rows {
            Rows::Collections(out) => collections::read(
                &mut table,
                no,
                &source.path,
                zone,
                id_check,
                out,
                &mut rejects,
            )?,
            Rows::Results(out) => results::read(
                &mut table,
                no,
                &source.path,
                zone,
                cutoffs,
                out,
                &mut rejects,
            )?,
            Rows::Population(out) => {
                population::read(&mut table, no, &source.path, id_check, out, &mut rejects)?
            }
        };
        if source.xxh3_128.is_empty() {
            let (bytes, hash) = match table.source_digest() {
                Some((bytes, hash)) => (bytes, format!("{hash:032x}")),
                None => hash_file(path)?,
            };
            source.bytes = bytes;
            source.xxh3_128 = hash;
        }
        report.rows_read += n;
        if let Some(f) = report.files.iter_mut().find(|f| f.path == source.path) {
            f.rows = n;
        }
        if let Some(pb) = progress {
            pb.advance(source.bytes);
        }
    }
    lap(&mut report, "parse");
    if let Some(pb) = progress {
        pb.stage("checking against the store");
    }

    let index = store.index()?;
    let planned = match &rows {
        Rows::Collections(r) => {
            let round = round.unwrap_or_default();
            plan_collections(r, round, &index, &labels, &mut rejects)
        }
        Rows::Results(r) => {
            let controls = config.control_cutoffs(ct_cutoff);
            plan_results(r, &index, &labels, zone, controls, &mut rejects)
        }
        Rows::Population(r) => plan_population(r, &labels, &mut rejects),
    };
    lap(&mut report, "check");
    report.overfull_tubes = planned.overfull;
    report.positives_kept = planned.positives_kept;
    report.rejected = rejects.errors();
    report.warnings = rejects.warnings();
    report.reasons = rejects.summary(REASON_EXAMPLES);

    let rejects_dir = store.root().join("rejects");
    if opts.strict && report.rejected > 0 {
        fsutil::create_dir_all(&rejects_dir)?;
        let now = time::now();
        let p = rejects_dir.join(format!("strict-{now}-{}.csv", kind.as_str()));
        rejects.write_csv(&p)?;
        return Err(Error::StrictRejected {
            rejected: report.rejected,
            rejects: p,
            reasons: std::mem::take(&mut report.reasons),
        });
    }

    // A file none of whose rows was committed is not recorded as ingested, so it can
    // be sent again once its tubes are collected; a run that commits nothing commits
    // no batch.
    let mut committed_per_file = vec![0u64; sources.len()];
    for seg in &planned.segments {
        for &i in seg.order.iter().chain(&seg.controls) {
            if let Some(n) = committed_per_file.get_mut(rows.file_of(i as usize) as usize) {
                *n += 1;
            }
        }
    }
    if committed_per_file.iter().all(|&n| n == 0) {
        if !rejects.rows.is_empty() {
            fsutil::create_dir_all(&rejects_dir)?;
            let p = rejects_dir.join(format!("uncommitted-{}-{}.csv", time::now(), kind.as_str()));
            rejects.write_csv(&p)?;
            report.rejects_file = Some(p);
        }
        return Ok(report);
    }
    let sources: Vec<(PathBuf, Source)> = sources
        .into_iter()
        .zip(&committed_per_file)
        .filter(|(_, n)| **n > 0)
        .map(|(s, _)| s)
        .collect();

    let id = store.manifest().next_batch_id();
    if let Some(pb) = progress {
        pb.stage(&format!("writing batch {id}"));
    }
    let root = store.root().to_path_buf();
    let mut segments = Vec::new();
    let mut population = None;
    for plan in planned.segments {
        if plan.order.is_empty() {
            continue;
        }
        if let Rows::Population(r) = &rows {
            let seg = segment::write_population(&root, id, &labels, r, &plan.order)?;
            report.committed += seg.rows;
            population = Some(seg);
            continue;
        }
        let seg = match &mut rows {
            Rows::Collections(r) => segment::write_collections(
                &root,
                id,
                &plan.round,
                &labels,
                r,
                &plan.order,
                &plan.settled,
            )?,
            Rows::Results(r) => segment::write_results(&root, id, &plan, &labels, r)?,
            Rows::Population(_) => continue,
        };
        report.committed += seg.rows;
        for p in &seg.failed_plates {
            if !report.failed_plates.contains(p) {
                report.failed_plates.push(p.clone());
            }
        }
        report.rounds.push(plan.round);
        segments.push(seg);
    }
    lap(&mut report, "write");
    let rejects_rel = if rejects.rows.is_empty() {
        None
    } else {
        fsutil::create_dir_all(&rejects_dir)?;
        let rel = format!("rejects/b{id:06}-{}.csv", kind.as_str());
        rejects.write_csv(&root.join(&rel))?;
        report.rejects_file = Some(root.join(&rel));
        Some(rel)
    };
    let batch = Batch {
        id,
        kind,
        round: round.map(str::to_owned),
        committed_at: time::format(time::now(), zone),
        sources: sources.into_iter().map(|(_, s)| s).collect(),
        rows_read: report.rows_read,
        rows_committed: report.committed,
        rejected: report.rejected,
        warnings: report.warnings,
        rejects: rejects_rel,
        segments,
        population,
    };
    store.commit(batch)?;
    lap(&mut report, "commit");
    report.batch = Some(id);
    Ok(report)
}

/// The size and xxh3-128 of a source file: the key for "already ingested".
fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let bytes =
        fsutil::for_each_block(path, |block| h.update(block)).map_err(|e| Error::io(path, e))?;
    Ok((bytes, format!("{:032x}", h.digest128())))
}

/// What a batch will commit: per round, the rows to write.
struct Plan {
    segments: Vec<SegmentPlan>,
    overfull: u64,
    positives_kept: u64,
}

/// Records a problem found across rows: it has no single offending field value.
fn flag(
    rejects: &mut Rejects,
    at: &Where<'_>,
    severity: Severity,
    column: &'static str,
    reason: String,
) {
    rejects.push(at, severity, column, reason, b"");
}

fn describe(mode: Option<Mode>, cap: u8) -> String {
    let cap = |what: &str| match cap {
        0 => format!("{what} of unstated capacity"),
        c => format!("{what} of capacity {c}"),
    };
    match mode {
        Some(Mode::Single) => "single tube".to_owned(),
        Some(Mode::Pool) => cap("pool"),
        None => cap("tube of unstated mode"),
    }
}

fn plan_collections(
    rows: &CollectionRows,
    round: &str,
    index: &StoreIndex,
    labels: &[String],
    rejects: &mut Rejects,
) -> Plan {
    // Whole tubes in the grouping's few hundred spans, checked on all cores; the spans'
    // findings are joined in span order, which is the order one pass would find them.
    let (order, cuts) = group_by_tube(rows);
    let checked: Vec<Checked> = cuts
        .par_windows(2)
        .map(|w| check_tubes(rows, &order[w[0]..w[1]], round, index, labels))
        .collect();
    let mut keep = Vec::with_capacity(order.len());
    let mut settled = Vec::new();
    let mut overfull = 0;
    for (kept, meta, found, over) in checked {
        keep.extend(kept);
        settled.extend(meta);
        rejects.rows.extend(found.rows);
        overfull += over;
    }
    settled.par_sort_unstable_by_key(|&(r, _)| r);
    // Committed in input order (see `segment::write_collections`); when every row is
    // kept, that is simply every row.
    if keep.len() == rows.len() {
        keep = (0..u32::try_from(keep.len()).unwrap_or(u32::MAX)).collect();
    } else {
        keep.par_sort_unstable();
    }
    let mut seg = SegmentPlan::new(round);
    seg.order = keep;
    seg.settled = settled;
    Plan {
        segments: vec![seg],
        overfull,
        positives_kept: 0,
    }
}

/// What checking a span of tubes found: the rows to keep, the rows whose tube's
/// settled metadata differs from what they state (ascending), the problems found, and
/// the number of overfull tubes.
type Checked = (Vec<u32>, Vec<(u32, TubeMeta)>, Rejects, u64);

/// Checks the rows `order` (whole tubes, a tube's rows together) against each other and
/// the store.
///
/// A row is refused only when it cannot be placed (its barcode belongs to another
/// round); a repeat of a membership is kept once. Everything else a row says about its
/// tube is metadata: the tube keeps the first mode and capacity any of its rows stated
/// (in the store, then in this batch in input order), a row stating other values is
/// kept with a warning, and the tube is flagged for review.
fn check_tubes(
    rows: &CollectionRows,
    order: &[u32],
    round: &str,
    index: &StoreIndex,
    labels: &[String],
) -> Checked {
    let mut rejects = Rejects::default();
    let rejects = &mut rejects;
    let this_round = index.round_id(round);
    let mut keep = Vec::with_capacity(order.len());
    let mut settled_rows = Vec::new();
    let mut overfull = 0;
    let at = |i: usize, tube, person| Where {
        file: labels.get(rows.file[i] as usize).map_or("", String::as_str),
        line: u64::from(rows.line[i]),
        tube,
        person,
    };
    let row_no = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let mut start = 0;
    while start < order.len() {
        let tube = rows.tube.get(order[start] as usize);
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| rows.tube.bytes(i as usize) == tube.as_bytes())
                .count();
        let group = &order[start..end];
        start = end;
        let key = tube_key(tube);
        let facts = index.tube(&key);
        if let Some(f) = facts
            && Some(f.round) != this_round
        {
            for &i in group {
                let i = i as usize;
                let why = format!(
                    "tube {tube} was collected in round {}; a barcode serves one round only",
                    index.round_name(f.round)
                );
                flag(
                    rejects,
                    &at(i, tube, rows.person.get(i)),
                    Severity::Error,
                    "tube",
                    why,
                );
            }
            continue;
        }
        // The group is in person order: the first row to state a value is the one
        // earliest in the input.
        let first_stating = |states: &dyn Fn(usize) -> bool| {
            group
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| states(i))
                .min()
        };
        let mut meta = facts.map_or_else(TubeMeta::default, |f| TubeMeta {
            conflict: false,
            ..f.meta
        });
        if let Some(i) = first_stating(&|i| rows.mode[i].is_some()) {
            meta.settle(TubeMeta::stated(rows.mode[i], 0));
        }
        if let Some(i) = first_stating(&|i| rows.capacity[i] != 0) {
            meta.settle(TubeMeta::stated(None, rows.capacity[i]));
        }
        // The row that first states a site; sites compare by their interned keys, and
        // the text is read only for a warning.
        let site = first_stating(&|i| rows.site.key(i) != LabelColumn::MISSING);
        let mut members = facts.map_or(0, |f| f.members);
        let mut prev: Option<&[u8]> = None;
        let mut first_kept = None;
        let kept_from = keep.len();
        for &i in group {
            let i = i as usize;
            let person_bytes = rows.person.bytes(i);
            let person = || rows.person.get(i);
            if let Some(why) = disagreement(tube, meta, site, rows, i) {
                meta.conflict = true;
                flag(
                    rejects,
                    &at(i, tube, person()),
                    Severity::Warning,
                    why.0,
                    why.1,
                );
            }
            if prev == Some(person_bytes) {
                let why = "the same person was scanned into this tube twice; kept once".to_owned();
                flag(
                    rejects,
                    &at(i, tube, person()),
                    Severity::Warning,
                    "person",
                    why,
                );
                continue;
            }
            prev = Some(person_bytes);
            if facts.is_some() && index.has_member(&key, person_hash(person())) {
                let why =
                    "this person is already recorded in this tube by an earlier batch; kept once"
                        .to_owned();
                flag(
                    rejects,
                    &at(i, tube, person()),
                    Severity::Warning,
                    "person",
                    why,
                );
                continue;
            }
            if meta.mode == Some(Mode::Single) && members >= 1 {
                let why = format!(
                    "tube {tube} is a single tube and already holds another person: kept (the swab is in the tube); a tube holding more than one person is read as a pool, so a positive recalls everyone in it, and it is flagged for review"
                );
                flag(
                    rejects,
                    &at(i, tube, person()),
                    Severity::Warning,
                    "person",
                    why,
                );
            }
            members += 1;
            first_kept.get_or_insert(i);
            keep.push(row_no(i));
        }
        for &k in &keep[kept_from..] {
            let i = k as usize;
            if meta != TubeMeta::stated(rows.mode[i], rows.capacity[i]) {
                settled_rows.push((k, meta));
            }
        }
        let cap = meta.effective_capacity();
        if let Some(i) = first_kept
            && members > u32::from(cap)
        {
            overfull += 1;
            let why = format!(
                "tube {tube} now holds {members} persons, more than its capacity of {cap}: kept and flagged for review"
            );
            flag(
                rejects,
                &at(i, tube, ""),
                Severity::Warning,
                "capacity",
                why,
            );
        }
    }
    settled_rows.sort_unstable_by_key(|&(r, _)| r);
    (keep, settled_rows, std::mem::take(rejects), overfull)
}

/// What row `i` says about its tube that differs from the tube's settled metadata
/// (`meta`, and the row that first states a `site`): the column and the warning.
fn disagreement(
    tube: &str,
    meta: TubeMeta,
    site: Option<usize>,
    rows: &CollectionRows,
    i: usize,
) -> Option<(&'static str, String)> {
    let kept = "the row is kept (the swab is in the tube) and the tube is flagged for review";
    let (mode, cap) = (rows.mode[i], rows.capacity[i]);
    if mode.is_some() && mode != meta.mode || cap != 0 && cap != meta.capacity {
        let said = describe(
            mode.or(meta.mode),
            if cap == 0 { meta.capacity } else { cap },
        );
        let column = if mode.is_some() && mode != meta.mode {
            "mode"
        } else {
            "capacity"
        };
        let why = format!(
            "tube {tube} is a {}, as its first rows state; this row says {said}: {kept} (conflicting_tube_rows)",
            describe(meta.mode, meta.capacity)
        );
        return Some((column, why));
    }
    let (first, this) = (site.map(|r| rows.site.key(r))?, rows.site.key(i));
    if this == LabelColumn::MISSING || this == first {
        return None;
    }
    match (
        site.and_then(|r| rows.site.get_opt(r)),
        rows.site.get_opt(i),
    ) {
        (Some(first), Some(this)) => Some((
            "site",
            format!(
                "tube {tube} was collected at site {first}, as its first rows state; this row says {this}: {kept} (conflicting_tube_rows)"
            ),
        )),
        _ => None,
    }
}

/// A run's barcode hash, its number and its first row.
type RunKey = (u64, u32, u32);

/// The runs of a tube's consecutive rows (their first rows) and each run's group: the
/// tubes numbered in order of first appearance; returns the number of groups too.
///
/// Input nearly always has a tube's rows together, so only runs are looked up, and a
/// city's few million lookups in one table missed the cache each time (0.85 s at 25 M
/// rows). Runs are split by their barcode hash's top byte into 256 parts, each small
/// enough for its own table to stay in cache, on all cores; a part keeps input order,
/// so each run learns the first run of its tube, and one pass numbers the tubes.
fn group_runs<'a>(
    n: usize,
    tube: impl Fn(usize) -> &'a [u8] + Sync,
    hash: impl Fn(&[u8]) -> u64 + Sync,
) -> (Vec<u32>, Vec<u32>, usize) {
    const PARTS: usize = 256;
    let row = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
    let runs: Vec<u32> = (0..n)
        .into_par_iter()
        .filter(|&i| i == 0 || tube(i) != tube(i - 1))
        .map(row)
        .collect();
    let hashes: Vec<u64> = runs.par_iter().map(|&r| hash(tube(r as usize))).collect();
    let part_of = |h: u64| usize::from(h.to_be_bytes()[0]);
    let mut start = [0usize; PARTS + 1];
    for &h in &hashes {
        start[part_of(h) + 1] += 1;
    }
    for p in 0..PARTS {
        start[p + 1] += start[p];
    }
    // (hash, run, its first row) by part, each part in run order.
    let mut next = start;
    let mut by_part: Vec<RunKey> = vec![(0, 0, 0); runs.len()];
    for (r, (&h, &first_row)) in hashes.iter().zip(&runs).enumerate() {
        let at = &mut next[part_of(h)];
        by_part[*at] = (h, row(r), first_row);
        *at += 1;
    }
    drop(hashes);
    // For each run (in part order), the first run of its tube. Tables are keyed by the
    // 64-bit hash, so a lookup reads no barcode; a hit is confirmed by comparing
    // barcodes, and two tubes sharing a hash go to an exact table.
    let mut first = vec![0u32; runs.len()];
    let mut pieces: Vec<(&[RunKey], &mut [u32])> = Vec::with_capacity(PARTS);
    let mut rest = first.as_mut_slice();
    for p in 0..PARTS {
        let (head, tail) = rest.split_at_mut(start[p + 1] - start[p]);
        pieces.push((&by_part[start[p]..start[p + 1]], head));
        rest = tail;
    }
    pieces.into_par_iter().for_each_init(
        || {
            (
                HashMap::<u64, (u32, u32), KeyHash>::with_hasher(KeyHash),
                HashMap::<&[u8], u32, KeyHash>::with_hasher(KeyHash),
            )
        },
        |(seen, exact), (members, out)| {
            seen.clear();
            seen.reserve(members.len());
            exact.clear();
            for (&(h, r, i), first) in members.iter().zip(out.iter_mut()) {
                let (f, j) = *seen.entry(h).or_insert((r, i));
                *first = if f == r || tube(j as usize) == tube(i as usize) {
                    f
                } else {
                    *exact.entry(tube(i as usize)).or_insert(r)
                };
            }
        },
    );
    let mut first_of_run = vec![0u32; runs.len()];
    for (&(_, r, _), &f) in by_part.iter().zip(&first) {
        first_of_run[r as usize] = f;
    }
    drop((by_part, first));
    let mut groups = 0usize;
    let mut group = vec![0u32; runs.len()];
    for r in 0..runs.len() {
        let f = first_of_run[r] as usize;
        group[r] = if f == r {
            groups += 1;
            row(groups - 1)
        } else {
            group[f]
        };
    }
    (runs, group, groups)
}

/// Row numbers with each tube's rows together (tubes in order of first appearance) and,
/// within a tube, sorted by person. Sorting all rows by string would cost seconds at
/// city scale; input nearly always arrives with a tube's rows together already, so
/// only runs are looked up (see [`group_runs`]), and a stable counting sort by group,
/// a run at a time, leaves such input in place.
///
/// Also returns where the spans of whole tubes it sorts on all cores start in that
/// order, ending with the row count, for the checks to run on the same spans.
fn group_by_tube(rows: &CollectionRows) -> (Vec<u32>, Vec<usize>) {
    let n = rows.len();
    let tube = |i: usize| rows.tube.bytes(i);
    let (runs, group, groups) = group_runs(n, tube, xxhash_rust::xxh3::xxh3_64);
    let run_rows = |r: usize| {
        let from = runs[r] as usize;
        from..runs.get(r + 1).map_or(n, |&e| e as usize)
    };
    let mut start = vec![0u32; groups + 1];
    for (r, &g) in group.iter().enumerate() {
        start[g as usize + 1] += u32::try_from(run_rows(r).len()).unwrap_or(u32::MAX);
    }
    for g in 0..groups {
        start[g + 1] += start[g];
    }
    let mut next = start.clone();
    let mut order = vec![0u32; n];
    for (r, &g) in group.iter().enumerate() {
        let at = &mut next[g as usize];
        for i in run_rows(r) {
            order[*at as usize] = u32::try_from(i).unwrap_or(u32::MAX);
            *at += 1;
        }
    }
    drop((runs, group, next));
    // Within a tube, by person then input order: duplicates become neighbours. The
    // tubes are cut into a few hundred spans of whole tubes, sorted on all cores (a
    // slice per tube cost 16 bytes for each of 3.6 million tubes).
    let spans = 256;
    let step = start.len().div_ceil(spans).max(1);
    let mut pieces: Vec<(&mut [u32], &[u32])> = Vec::with_capacity(spans);
    let mut cuts = Vec::with_capacity(spans + 1);
    let mut rest = order.as_mut_slice();
    let mut from = 0;
    for bounds in start.chunks(step) {
        let (Some(&first), Some(&last)) = (bounds.first(), bounds.last()) else {
            continue;
        };
        let end = start.get(from + bounds.len()).copied().unwrap_or(last);
        let (head, tail) = rest.split_at_mut((end - first) as usize);
        pieces.push((head, bounds));
        cuts.push(first as usize);
        rest = tail;
        from += bounds.len();
    }
    cuts.push(n);
    cuts.dedup();
    pieces.into_par_iter().for_each(|(piece, bounds)| {
        let base = bounds.first().copied().unwrap_or(0);
        let mut tubes = bounds.iter().peekable();
        while let Some(&a) = tubes.next() {
            let end = base.saturating_add(u32::try_from(piece.len()).unwrap_or(u32::MAX));
            let b = tubes.peek().map_or(end, |&&b| b);
            let g = &mut piece[(a - base) as usize..(b - base) as usize];
            if g.len() > 1 {
                g.sort_unstable_by(|&a, &b| {
                    rows.person
                        .bytes(a as usize)
                        .cmp(rows.person.bytes(b as usize))
                        .then(a.cmp(&b))
                });
            }
        }
    });
    (order, cuts)
}

/// Every row is committed, in input order; a person registered again in the same
/// batch is a warning on the later line, which wins. Repeats are found by sorting the
/// rows' 128-bit person hashes, not by a map of 25 million ids.
fn plan_population(rows: &PopulationRows, labels: &[String], rejects: &mut Rejects) -> Plan {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let mut by_person: Vec<(u128, u32)> = (0..n)
        .into_par_iter()
        .map(|i| (person_hash(rows.person.get(i as usize)), i))
        .collect();
    by_person.par_sort_unstable();
    let file = |i: usize| labels.get(rows.file[i] as usize).map_or("", String::as_str);
    for pair in by_person.windows(2) {
        let ((h0, earlier), (h1, later)) = (pair[0], pair[1]);
        if h0 != h1 {
            continue;
        }
        let (earlier, later) = (earlier as usize, later as usize);
        let person = rows.person.get(later);
        let why = format!(
            "{person} is registered again in this batch (earlier at {} line {}); the later line's stated fields are kept, blank ones keep the earlier values",
            file(earlier),
            rows.line[earlier]
        );
        let at = Where {
            file: file(later),
            line: u64::from(rows.line[later]),
            tube: "",
            person,
        };
        flag(rejects, &at, Severity::Warning, "person", why);
    }
    Plan {
        segments: vec![SegmentPlan {
            order: (0..n).collect(),
            ..SegmentPlan::new("")
        }],
        overfull: 0,
        positives_kept: 0,
    }
}

/// The tube key of a barcode with this [`tube_prefix`], when the prefix holds all of
/// it: barcodes hold no NUL, so a zero last byte means the barcode ended within it.
fn key_of_prefix(prefix: u128) -> Option<TubeKey> {
    let bytes = prefix.to_be_bytes();
    (bytes[15] == 0).then(|| {
        let mut key = TubeKey::default();
        key[..16].copy_from_slice(&bytes);
        key
    })
}

fn plan_results(
    rows: &ResultRows,
    index: &StoreIndex,
    labels: &[String],
    zone: Offset,
    control_cutoffs: (f32, f32),
    rejects: &mut Rejects,
) -> Plan {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let (control_rows, order): (Vec<u32>, Vec<u32>) =
        (0..n).partition(|&i| rows.sample_type[i as usize].is_control());
    // By barcode, then time; memcmp on the text had been a third of this stage.
    let mut keyed: Vec<(u128, u32)> = order
        .par_iter()
        .map(|&i| (tube_prefix(rows.tube.bytes(i as usize)), i))
        .collect();
    drop(order);
    keyed.par_sort_unstable_by(|&(ka, a), &(kb, b)| {
        let (a, b) = (a as usize, b as usize);
        ka.cmp(&kb)
            .then_with(|| rows.tube.bytes(a).cmp(rows.tube.bytes(b)))
            .then(rows.reported_at[a].cmp(&rows.reported_at[b]))
            .then(a.cmp(&b))
    });
    let order: Vec<u32> = keyed.iter().map(|&(_, i)| i).collect();
    let at = |i: usize, tube, person| Where {
        file: labels.get(rows.file[i] as usize).map_or("", String::as_str),
        line: u64::from(rows.line[i]),
        tube,
        person,
    };
    let mut per_round: Vec<SegmentPlan> = Vec::new();
    // Which rounds each plate's committed samples went to: its controls go with them.
    // Only built when the batch has controls, so plain batches pay nothing for it.
    let mut plate_rounds: HashMap<(&str, &str), Vec<usize>, KeyHash> =
        HashMap::with_hasher(KeyHash);
    let mut positives_kept = 0;
    // Each tube's rows are a run of `order`; what the store knows of each tube is
    // looked up on all cores first (cursors through the sidecar indexes), then the runs
    // are checked in order. Rows sit at random in the batch now: a run's end is found
    // by the sort keys alone where they differ, and the text is read only where they tie.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for k in 1..=keyed.len() {
        let ends = keyed.get(k).is_none_or(|&(key, i)| {
            let (first_key, first) = keyed[start];
            key != first_key || rows.tube.bytes(i as usize) != rows.tube.bytes(first as usize)
        });
        if ends {
            runs.push((start, k));
            start = k;
        }
    }
    type Known = (Option<TubeFacts>, Vec<(Outcome, i64)>);
    // Runs ascend by barcode: each core takes a stretch of them with one cursor.
    let keyed = &keyed;
    let known_of: Vec<Known> = runs
        .par_chunks(4096)
        .flat_map_iter(|stretch| {
            let mut cursor = index.cursor();
            stretch.iter().map(move |&(start, _)| {
                let (prefix, i) = keyed[start];
                let key =
                    key_of_prefix(prefix).unwrap_or_else(|| tube_key(rows.tube.get(i as usize)));
                let facts = cursor.tube(&key);
                let known = if facts.is_some() {
                    cursor.results(&key)
                } else {
                    Vec::new()
                };
                (facts, known)
            })
        })
        .collect();
    for (&(start, end), (facts, known)) in runs.iter().zip(known_of) {
        let tube = rows.tube.get(order[start] as usize);
        let group = &order[start..end];
        let Some(facts) = facts else {
            for &i in group {
                let why = format!(
                    "tube {tube} was never collected: no collection row in the store names it"
                );
                flag(
                    rejects,
                    &at(i as usize, tube, ""),
                    Severity::Error,
                    "tube",
                    why,
                );
            }
            continue;
        };
        let round = index.round_name(facts.round);
        let slot = match per_round.iter().position(|p| p.round == round) {
            Some(s) => s,
            None => {
                per_round.push(SegmentPlan::new(round));
                per_round.len() - 1
            }
        };
        let mut known = known;
        let mut kept_flagged = false;
        for &i in group {
            let i = i as usize;
            let this = (rows.outcome[i], rows.reported_at[i]);
            if known.contains(&this) {
                let why = "the same result for this tube is already recorded; kept once".to_owned();
                flag(rejects, &at(i, tube, ""), Severity::Warning, "result", why);
                continue;
            }
            let earlier_positive = known
                .iter()
                .filter(|(o, t)| *o == Outcome::Positive && *t <= this.1)
                .map(|&(_, t)| t)
                .min();
            let later_clear = known
                .iter()
                .filter(|(o, t)| *o != Outcome::Positive && *t >= this.1)
                .map(|&(o, t)| (t, o))
                .max();
            if let (Outcome::Positive, Some((t, o))) = (this.0, later_clear) {
                let why = format!(
                    "tube {tube} already has a later {} result reported at {}; this positive keeps the tube positive and is flagged for review",
                    o.as_str(),
                    time::format(t, zone)
                );
                flag(rejects, &at(i, tube, ""), Severity::Warning, "result", why);
                kept_flagged = true;
            }
            if let Some(t) = earlier_positive
                && this.0 != Outcome::Positive
            {
                let why = format!(
                    "tube {tube} was reported positive at {}; this later {} result does not clear it: the tube stays positive and is flagged for review",
                    time::format(t, zone),
                    this.0.as_str()
                );
                flag(rejects, &at(i, tube, ""), Severity::Warning, "result", why);
                kept_flagged = true;
            }
            known.push(this);
            per_round[slot]
                .order
                .push(u32::try_from(i).unwrap_or(u32::MAX));
            if !control_rows.is_empty() {
                let plate = (rows.lab.get(i), rows.plate.get(i));
                let slots = plate_rounds.entry(plate).or_default();
                if !slots.contains(&slot) {
                    slots.push(slot);
                }
            }
        }
        positives_kept += u64::from(kept_flagged);
    }
    plan_controls(
        rows,
        &control_rows,
        &plate_rounds,
        control_cutoffs,
        &mut per_round,
        &at,
        rejects,
    );
    Plan {
        segments: per_round,
        overfull: 0,
        positives_kept,
    }
}

/// Puts each control row with its plate's samples (in every round they went to) and
/// fails the plates whose controls say the run cannot be trusted.
fn plan_controls<'r>(
    rows: &'r ResultRows,
    control_rows: &[u32],
    plate_rounds: &HashMap<(&str, &str), Vec<usize>, KeyHash>,
    (negative_cutoff, positive_cutoff): (f32, f32),
    per_round: &mut [SegmentPlan],
    at: &dyn Fn(usize, &'r str, &'r str) -> Where<'r>,
    rejects: &mut Rejects,
) {
    let mut failed: Vec<((&str, &str), String)> = Vec::new();
    for &c in control_rows {
        let i = c as usize;
        let (lab, plate, label) = (rows.lab.get(i), rows.plate.get(i), rows.tube.get(i));
        let Some(slots) = plate_rounds.get(&(lab, plate)) else {
            let why = format!(
                "control {label} of plate {plate}{}: no sample of this plate is committed in this batch; send a plate's controls with its results",
                lab_phrase(lab)
            );
            flag(rejects, &at(i, label, ""), Severity::Error, "plate", why);
            continue;
        };
        for &slot in slots {
            per_round[slot].controls.push(c);
        }
        if let Some(why) = control_failure(rows, i, negative_cutoff, positive_cutoff)
            && !failed.iter().any(|(p, _)| *p == (lab, plate))
        {
            failed.push(((lab, plate), why));
        }
    }
    for ((lab, plate), reason) in failed {
        for &slot in plate_rounds.get(&(lab, plate)).into_iter().flatten() {
            per_round[slot].failed_plates.push(FailedPlate {
                lab: lab.to_owned(),
                plate: plate.to_owned(),
                reason: reason.clone(),
            });
        }
    }
}

fn lab_phrase(lab: &str) -> String {
    if lab.is_empty() {
        String::new()
    } else {
        format!(" (lab {lab})")
    }
}

/// Why control row `i` fails its plate, if it does. Ct values decide when the row has
/// any (or its result was read from them); otherwise the lab's result word does.
fn control_failure(
    rows: &ResultRows,
    i: usize,
    negative_cutoff: f32,
    positive_cutoff: f32,
) -> Option<String> {
    let (orf, n) = (rows.ct_orf1ab[i], rows.ct_n[i]);
    let by_ct = rows.from_ct[i] || orf.is_some() || n.is_some();
    let label = rows.tube.get(i);
    let show = |ct: Option<f32>| ct.map_or("no Ct".to_owned(), |c| format!("Ct {c}"));
    let cts = format!("ORF1ab {}, N {}", show(orf), show(n));
    let word = rows.outcome[i];
    match rows.sample_type[i] {
        SampleType::NegativeControl => {
            let hit = |ct: Option<f32>| ct.is_some_and(|c| c < negative_cutoff);
            let amplified = if by_ct {
                hit(orf) || hit(n)
            } else {
                matches!(word, Outcome::Positive | Outcome::Inconclusive)
            };
            amplified.then(|| {
                if by_ct {
                    format!("negative control {label} amplified ({cts}; cut-off {negative_cutoff})")
                } else {
                    format!("negative control {label} was reported {}", word.as_str())
                }
            })
        }
        SampleType::PositiveControl => {
            let hit = |ct: Option<f32>| ct.is_some_and(|c| c < positive_cutoff);
            let amplified = if by_ct {
                hit(orf) && hit(n)
            } else {
                word == Outcome::Positive
            };
            (!amplified).then(|| {
                if by_ct {
                    format!(
                        "positive control {label} did not amplify both targets ({cts}; cut-off {positive_cutoff})"
                    )
                } else {
                    format!("positive control {label} was reported {}", word.as_str())
                }
            })
        }
        SampleType::Sample => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tubes interleaved as sampling stations fill several at once, some returning
    /// after many others, with persons out of order within a tube.
    fn interleaved() -> CollectionRows {
        let mut rows = CollectionRows::default();
        let mut x = 7u64;
        for i in 0..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let tube = match x >> 60 {
                0..=9 => i / 7,
                10..=13 => i / 7 + 1,
                _ => (x >> 20) % (i / 7 + 1),
            };
            rows.tube.push(&format!("PL{tube:09}"));
            rows.person.push(&format!("P{}", (x >> 33) % 50));
            rows.mode.push(Some(Mode::Pool));
        }
        rows
    }

    /// Tubes by first appearance, rows within a tube by person, then row.
    fn naive(rows: &CollectionRows) -> Vec<u32> {
        let mut tubes: Vec<&str> = Vec::new();
        for i in 0..rows.tube.len() {
            let t = rows.tube.get(i);
            if !tubes.contains(&t) {
                tubes.push(t);
            }
        }
        let mut order = Vec::new();
        for t in tubes {
            let mut g: Vec<u32> = (0..rows.tube.len())
                .filter(|&i| rows.tube.get(i) == t)
                .map(|i| u32::try_from(i).expect("small"))
                .collect();
            g.sort_by_key(|&i| (rows.person.get(i as usize), i));
            order.extend(g);
        }
        order
    }

    #[test]
    fn tubes_group_in_order_of_first_appearance() {
        let rows = interleaved();
        let (order, cuts) = group_by_tube(&rows);
        assert_eq!(order, naive(&rows));
        // The spans the checks run on hold whole tubes and cover every row.
        assert_eq!((cuts.first(), cuts.last()), (Some(&0), Some(&order.len())));
        assert!(cuts.len() > 2);
        for &c in &cuts[1..cuts.len() - 1] {
            let tube = |k: usize| rows.tube.get(order[k] as usize);
            assert_ne!(tube(c), tube(c - 1), "span cut at {c} splits a tube");
        }
    }

    #[test]
    fn a_short_barcode_key_comes_from_its_prefix() {
        for b in ["PL0001", "SG000000001", "ABCDEFGHIJKLMNO"] {
            assert_eq!(
                key_of_prefix(tube_prefix(b.as_bytes())),
                Some(tube_key(b)),
                "{b}"
            );
        }
        for b in ["ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOPQRSTUVWXYZ-12345"] {
            assert_eq!(key_of_prefix(tube_prefix(b.as_bytes())), None, "{b}");
        }
    }

    #[test]
    fn tubes_sharing_a_hash_stay_apart() {
        let rows = interleaved();
        let tube = |i: usize| rows.tube.bytes(i);
        let fair = group_runs(rows.tube.len(), tube, xxhash_rust::xxh3::xxh3_64);
        // Every barcode hashing alike sends every tube but the first to the exact table.
        let clash = group_runs(rows.tube.len(), tube, |_| 42);
        assert_eq!(fair, clash);
        let few = group_runs(rows.tube.len(), tube, |b| u64::from(b[b.len() - 1] % 3));
        assert_eq!(fair, few);
    }
}
