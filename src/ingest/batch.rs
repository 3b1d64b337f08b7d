//! One ingest: files → checked rows → a committed batch (or nothing, under `--strict`).
//!
//! The driver runs the steps, each timed for [`IngestReport::stage_seconds`]: find
//! which files are new (`hash`), read their rows (`parse`), check the rows across each
//! other and against the store with the planner of the batch's kind (`check`), write
//! the segments (`write`), then the rejects report and the manifest (`commit`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::collections;
use super::plan::{
    Plan, StoredBoxes, plan_collections, plan_population, plan_results, stored_boxes,
};
use super::population;
use super::reject::{ReasonGroup, Rejects};
use super::results;
use super::table::{ReadOptions, Table};
use crate::column::LabelColumn;
use crate::fasthash::KeyHash;
use crate::model::{IdCheck, check_round};
use crate::progress::Progress;
use crate::rows::{CollectionRows, PopulationRows, ResultRows};
use crate::store::index::Sidecars;
use crate::store::manifest::{FailedPlate, Source};
use crate::store::segment::{self, SegmentPlan};
use crate::store::{Batch, BatchKind, PopulationSegment, Segment, Store, StoreIndex, fsutil};
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
    /// Collections with a `box` column: tubes the batch put in the round's box manifest
    /// (its custody segment; tubes the store already had in the same box are not
    /// counted again). Absent from the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub boxed_tubes: u64,
    /// The distinct boxes of those tubes. Absent from the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub boxes: u64,
    /// Why merging the round's indexes after the commit failed, if it did: the batch
    /// is committed either way (see [`crate::store::runs`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_failed: Option<String>,
    /// Seconds spent in each stage (hash, parse, check, write, commit, merge), for
    /// benchmarks.
    pub stage_seconds: Vec<(&'static str, f64)>,
}

/// Ingests collection files into `round`: reads and checks every row, and commits the
/// rows that can be placed as one batch. Bad rows are refused with their file, line
/// and reason; the rest are committed all or nothing.
///
/// ```
/// use pooltrack::ingest::{IngestOptions, ingest_collections};
/// use pooltrack::store::Store;
///
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("pools.csv");
/// std::fs::write(
///     &file,
///     "tube,person,mode,capacity,collected_at\n\
///      PL0001,P-1,pool,10,2022-04-02 08:00\n\
///      PL0001,P-2,pool,10,2022-04-02 08:01\n\
///      PL0002,,pool,10,2022-04-02 08:02\n",
/// )?;
/// let mut store = Store::open_writer(&dir.path().join("store"))?;
/// let report =
///     ingest_collections(&mut store, &[file], "2022-04-02", &IngestOptions::default(), None)?;
/// assert_eq!((report.committed, report.rejected), (2, 1));
/// assert_eq!(report.reasons[0].column, "person");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl IngestReport {
    pub(super) fn empty(kind: BatchKind) -> IngestReport {
        IngestReport {
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
            boxed_tubes: 0,
            boxes: 0,
            merge_failed: None,
            stage_seconds: Vec::new(),
        }
    }

    /// Takes in what the checks found.
    fn count_findings(&mut self, plan: &Plan, rejects: &Rejects) {
        self.overfull_tubes = plan.overfull;
        self.positives_kept = plan.positives_kept;
        self.rejected = rejects.errors();
        self.warnings = rejects.warnings();
        self.reasons = rejects.summary(REASON_EXAMPLES);
    }
}

/// Times the stages for [`IngestReport::stage_seconds`], each from the end of the last.
pub(super) struct Stages(pub(super) Instant);

impl Stages {
    pub(super) fn lap(&mut self, report: &mut IngestReport, stage: &'static str) {
        report
            .stage_seconds
            .push((stage, self.0.elapsed().as_secs_f64()));
        self.0 = Instant::now();
    }
}

/// A file to ingest: its path, and what the manifest will record of it.
pub(super) type NewFile = (PathBuf, Source);

fn ingest(
    store: &mut Store,
    kind: BatchKind,
    files: &[PathBuf],
    round: Option<&str>,
    opts: &IngestOptions,
    progress: Option<&dyn Progress>,
) -> Result<IngestReport> {
    let mut report = IngestReport::empty(kind);
    let mut clock = Stages(Instant::now());
    let mut sources = new_files(store, kind, files, &mut report)?;
    clock.lap(&mut report, "hash");
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
    if let Some(p) = progress {
        p.total(sources.iter().map(|(_, s)| s.bytes).sum());
    }

    let settings = Settings::of(store)?;
    let mut rejects = Rejects::default();
    let mut rows = Rows::new(kind);
    let labels: Vec<String> = sources.iter().map(|(_, s)| s.path.clone()).collect();
    read_files(
        &mut sources,
        opts,
        &settings,
        &mut rows,
        &mut report,
        &mut rejects,
        progress,
    )?;
    clock.lap(&mut report, "parse");
    if let Some(p) = progress {
        p.stage("checking against the store");
    }

    let index = store.index()?;
    // The boxes the store already holds for the batch's boxed tubes, read only when a
    // file has a `box` column and the round has custody rows.
    let custody = match (&rows, round) {
        (Rows::Collections(r), Some(round))
            if !r.box_id.is_empty() && crate::store::custody::any(store, round) =>
        {
            let boxed: HashSet<&[u8], KeyHash> = (0..r.len())
                .filter(|&i| r.box_id.key(i) != LabelColumn::MISSING)
                .map(|i| r.tube.bytes(i))
                .collect();
            crate::store::custody::rows_where(store, round, |t| boxed.contains(t.as_bytes()))?
        }
        _ => Vec::new(),
    };
    let stored = stored_boxes(&custody);
    let planned = rows.plan(round, &index, &stored, &labels, &settings, &mut rejects);
    drop(stored);
    drop(custody);
    clock.lap(&mut report, "check");
    report.count_findings(&planned, &rejects);

    let rejects_dir = store.root().join("rejects");
    if opts.strict && report.rejected > 0 {
        let name = format!("strict-{}-{}.csv", time::now(), kind.as_str());
        let p = save_rejects(&rejects_dir, &name, &mut rejects)?;
        return Err(Error::StrictRejected {
            rejected: report.rejected,
            rejects: p,
            reasons: std::mem::take(&mut report.reasons),
        });
    }

    let sources = committed_files(sources, &rows, &planned);
    // A run that commits nothing commits no batch.
    if sources.is_empty() {
        if !rejects.rows.is_empty() {
            let name = format!("uncommitted-{}-{}.csv", time::now(), kind.as_str());
            report.rejects_file = Some(save_rejects(&rejects_dir, &name, &mut rejects)?);
        }
        return Ok(report);
    }

    let id = store.manifest().next_batch_id();
    if let Some(p) = progress {
        p.stage(&format!("writing batch {id}"));
    }
    let root = store.root().to_path_buf();
    // The box manifest first: writing the collections segment takes the rows' columns.
    let custody = match (&rows, round) {
        (Rows::Collections(r), Some(round)) if !planned.boxed.is_empty() => {
            let boxed = &planned.boxed;
            let seg = segment::write_collection_boxes(&root, id, round, &labels, r, boxed)?;
            report.boxed_tubes = seg.rows;
            report.boxes = distinct_boxes(r, boxed);
            Some(seg)
        }
        _ => None,
    };
    let (segments, population) = write_segments(
        &root,
        id,
        &mut rows,
        &labels,
        planned.segments,
        &mut report,
        store.sidecars(),
    )?;
    clock.lap(&mut report, "write");
    let rejects_rel = write_batch_rejects(&root, id, kind, &mut rejects, &mut report)?;
    let batch = Batch {
        id,
        kind,
        round: round.map(str::to_owned),
        committed_at: time::format(time::now(), settings.zone),
        sources: sources.into_iter().map(|(_, s)| s).collect(),
        rows_read: report.rows_read,
        // Every row of the batch's files, its box manifest's too (`Batch::rows_in_files`).
        rows_committed: report.committed + report.boxed_tubes,
        rejected: report.rejected,
        warnings: report.warnings,
        rejects: rejects_rel,
        segments,
        population,
        custody,
    };
    let mut merge: Vec<String> = batch.segments.iter().map(|s| s.round.clone()).collect();
    merge.dedup();
    store.commit(batch)?;
    clock.lap(&mut report, "commit");
    report.batch = Some(id);
    if matches!(kind, BatchKind::Collections | BatchKind::Results) {
        // The batch's rows and the store's indexes as they were: the merge opens its own.
        drop((rows, index, rejects));
        if let Some(p) = progress {
            p.stage("merging the round's indexes");
        }
        for round in &merge {
            // The batch is committed: a merge that fails costs later reads speed, not
            // rows, and the next batch merges again.
            if let Err(e) = store.merge_runs(kind, round) {
                report.merge_failed = Some(format!(
                    "merging the indexes of round {round} failed ({e}); the batch is committed, and the next batch merges again"
                ));
            }
        }
        clock.lap(&mut report, "merge");
    }
    Ok(report)
}

/// How many distinct boxes the rows `boxed` name.
fn distinct_boxes(rows: &CollectionRows, boxed: &[u32]) -> u64 {
    let mut seen = vec![false; rows.box_id.distinct()];
    let mut n = 0;
    for &i in boxed {
        if let Some(s) = seen.get_mut(rows.box_id.key(i as usize) as usize)
            && !*s
        {
            *s = true;
            n += 1;
        }
    }
    n
}

/// Lists every file in the report and returns those not ingested before (nor earlier
/// in `files`), identified by content, so a renamed copy is still a repeat.
pub(super) fn new_files(
    store: &Store,
    kind: BatchKind,
    files: &[PathBuf],
    report: &mut IngestReport,
) -> Result<Vec<NewFile>> {
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
    let mut sources: Vec<NewFile> = Vec::new();
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
    Ok(sources)
}

/// The size and xxh3-128 of a source file: the key for "already ingested".
pub(super) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let bytes =
        fsutil::for_each_block(path, |block| h.update(block)).map_err(|e| Error::io(path, e))?;
    Ok((bytes, format!("{:032x}", h.digest128())))
}

/// What reading and checking take from the store and its config, read once an ingest.
struct Settings {
    zone: Offset,
    id_check: IdCheck,
    cutoffs: results::Cutoffs,
    /// The negative and the positive controls' cut-offs.
    control_cutoffs: (f32, f32),
}

impl Settings {
    fn of(store: &Store) -> Result<Settings> {
        let zone = store.zone();
        let ct_cutoff = store.manifest().settings.ct_cutoff;
        let config = store.config()?;
        Ok(Settings {
            zone,
            id_check: config.ids.id_check,
            cutoffs: results::Cutoffs {
                ct: ct_cutoff,
                ic: config.results.ic_cutoff,
            },
            control_cutoffs: config.control_cutoffs(ct_cutoff),
        })
    }
}

/// The rows read, of the batch's kind.
enum Rows {
    Collections(CollectionRows),
    Results(ResultRows),
    Population(PopulationRows),
}

impl Rows {
    fn new(kind: BatchKind) -> Rows {
        match kind {
            BatchKind::Collections => Rows::Collections(CollectionRows::default()),
            BatchKind::Results => Rows::Results(ResultRows::default()),
            // Custody batches are read by `super::custody`, never through here.
            BatchKind::Population | BatchKind::Custody => {
                Rows::Population(PopulationRows::default())
            }
        }
    }

    fn file_of(&self, row: usize) -> u16 {
        match self {
            Rows::Collections(r) => r.source.file(row),
            Rows::Results(r) => r.source.file(row),
            Rows::Population(r) => r.source.file(row),
        }
    }

    /// Checks and appends the rows of `table`, file number `no`; returns how many it read.
    fn read(
        &mut self,
        table: &mut Table,
        no: u16,
        label: &str,
        settings: &Settings,
        rejects: &mut Rejects,
    ) -> Result<u64> {
        let Settings {
            zone,
            id_check,
            cutoffs,
            ..
        } = *settings;
        match self {
            Rows::Collections(out) => {
                collections::read(table, no, label, zone, id_check, out, rejects)
            }
            Rows::Results(out) => results::read(table, no, label, zone, cutoffs, out, rejects),
            Rows::Population(out) => population::read(table, no, label, id_check, out, rejects),
        }
    }

    /// Checks the rows against each other and the store: what the batch will commit.
    fn plan(
        &self,
        round: Option<&str>,
        index: &StoreIndex,
        stored: &StoredBoxes<'_>,
        labels: &[String],
        settings: &Settings,
        rejects: &mut Rejects,
    ) -> Plan {
        match self {
            Rows::Collections(r) => {
                let round = round.unwrap_or_default();
                plan_collections(r, round, index, stored, labels, rejects)
            }
            Rows::Results(r) => plan_results(
                r,
                index,
                labels,
                settings.zone,
                settings.control_cutoffs,
                rejects,
            ),
            Rows::Population(r) => plan_population(r, labels, rejects),
        }
    }
}

/// Reads the new files into `rows`, in order, and fills in the hashes left for the parse.
fn read_files(
    sources: &mut [NewFile],
    opts: &IngestOptions,
    settings: &Settings,
    rows: &mut Rows,
    report: &mut IngestReport,
    rejects: &mut Rejects,
    progress: Option<&dyn Progress>,
) -> Result<()> {
    let read = ReadOptions {
        encoding: opts.encoding,
        delimiter: opts.delimiter,
    };
    for (no, (path, source)) in sources.iter_mut().enumerate() {
        if let Some(p) = progress {
            p.stage(&format!("reading {}", source.path));
        }
        let mut table = Table::open_with(path, &read)?;
        let no = u16::try_from(no).unwrap_or(u16::MAX);
        let n = rows.read(&mut table, no, &source.path, settings, rejects)?;
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
        if let Some(p) = progress {
            p.advance(source.bytes);
        }
    }
    Ok(())
}

/// The files with a row the plan commits. A file none of whose rows was committed is
/// not recorded as ingested, so it can be sent again once its tubes are collected.
fn committed_files(sources: Vec<NewFile>, rows: &Rows, plan: &Plan) -> Vec<NewFile> {
    let mut committed_per_file = vec![0u64; sources.len()];
    for seg in &plan.segments {
        for &i in seg.order.iter().chain(&seg.controls) {
            if let Some(n) = committed_per_file.get_mut(rows.file_of(i as usize) as usize) {
                *n += 1;
            }
        }
    }
    sources
        .into_iter()
        .zip(&committed_per_file)
        .filter(|(_, n)| **n > 0)
        .map(|(s, _)| s)
        .collect()
}

/// Writes batch `id`'s segments: one per round the plan adds rows to, or the
/// population's.
fn write_segments(
    root: &Path,
    id: u32,
    rows: &mut Rows,
    labels: &[String],
    plans: Vec<SegmentPlan>,
    report: &mut IngestReport,
    sidecars: Sidecars,
) -> Result<(Vec<Segment>, Option<PopulationSegment>)> {
    let mut segments = Vec::new();
    let mut population = None;
    for plan in plans {
        if plan.order.is_empty() {
            continue;
        }
        if let Rows::Population(r) = &*rows {
            let seg = segment::write_population(root, id, labels, r, &plan.order, sidecars.keys)?;
            report.committed += seg.rows;
            population = Some(seg);
            continue;
        }
        let seg = match &mut *rows {
            Rows::Collections(r) => {
                segment::write_collections(root, id, &plan, labels, r, sidecars)?
            }
            Rows::Results(r) => segment::write_results(root, id, &plan, labels, r, sidecars)?,
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
    Ok((segments, population))
}

/// Writes the rejects report of a batch that is not committed, as `dir/name`.
pub(super) fn save_rejects(dir: &Path, name: &str, rejects: &mut Rejects) -> Result<PathBuf> {
    fsutil::create_dir_all(dir)?;
    let p = dir.join(name);
    rejects.write_csv(&p)?;
    Ok(p)
}

/// Writes committed batch `id`'s rejects report, if any row was refused or flagged;
/// returns its path relative to the store, for the manifest.
pub(super) fn write_batch_rejects(
    root: &Path,
    id: u32,
    kind: BatchKind,
    rejects: &mut Rejects,
    report: &mut IngestReport,
) -> Result<Option<String>> {
    if rejects.rows.is_empty() {
        return Ok(None);
    }
    fsutil::create_dir_all(&root.join("rejects"))?;
    let rel = format!("rejects/b{id:06}-{}.csv", kind.as_str());
    rejects.write_csv(&root.join(&rel))?;
    report.rejects_file = Some(root.join(&rel));
    Ok(Some(rel))
}
