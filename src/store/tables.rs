//! The store as three Delta Lake tables (store format 3): `collections/`, `results/` and
//! `population/`, and `custody/` once a box manifest or lab receipt is ingested (made by
//! that first batch, so older stores of this format read on), each a Delta table
//! ([`super::delta`]) whose log is the store's only commit point.
//!
//! ```text
//! STORE/collections/_delta_log/00000000000000000000.json   the table's commits
//! STORE/collections/R1/b000001.parquet                     a batch's rows of round R1
//! STORE/collections/_pooltrack/R1/b000001.tubes            its sidecar indexes, which
//! STORE/collections/_pooltrack/R1/b000001.persons          engines and VACUUM leave alone
//! STORE/results/…                                          the same, for results
//! STORE/population/b000005.parquet, _pooltrack/b000005.persons
//! ```
//!
//! One ingest is one commit of one table: `add` actions for its Parquet files and a
//! `commitInfo` whose `pooltrack` member holds the batch's record (its sources and their
//! hashes, row counts, every file with its size and hash, sidecars included), so what
//! pooltrack knows of a batch commits in the same file that makes its rows visible to
//! every other engine. A retraction is a commit of `remove` actions for the batch's
//! Parquet files with the retraction's record; the files stay (the tables keep removed
//! files and old commits for a century, so a `VACUUM` run by another engine does not
//! take history away). Settings (time zone, Ct cut-off) are records in the collections
//! table. Batch and retraction ids run in one sequence over the three tables, so the
//! store's history is the three logs merged by id.
//!
//! Version 0 of each table holds the protocol (reader 1, writer 2), the table's schema
//! and `pooltrack.format`; the collections table's version 0 is made last and marks a
//! store of this format. The `custody/` table ([`OPTIONAL`]) is made by the first
//! custody batch, so a store made before it existed reads as one without custody rows.
//! A table that another engine wrote to (a commit without
//! pooltrack's record) is refused, naming the commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::delta::{self, Action, Add, Commit, MetaData, Protocol, Remove};
use super::manifest::{Batch, BatchKind, FORMAT, Manifest, Retraction, Settings};
use super::segment::{collections_schema, custody_schema, population_schema, results_schema};
use crate::time::Offset;
use crate::{Error, Result};

/// The tables in the order their version 0 is made (collections last: it marks the
/// store).
pub const TABLES: [BatchKind; 3] = [
    BatchKind::Results,
    BatchKind::Population,
    BatchKind::Collections,
];

/// Tables a store may lack: made by the first batch that needs one (put-if-absent
/// version 0, as [`create`] makes the others), and read as empty until then, so a
/// format-3 store made before the table existed needs no migration.
pub const OPTIONAL: [BatchKind; 1] = [BatchKind::Custody];

/// Every table a store may hold: [`TABLES`], then [`OPTIONAL`].
pub fn all_tables() -> impl Iterator<Item = BatchKind> {
    TABLES.into_iter().chain(OPTIONAL)
}

/// The private folder in each table for pooltrack's sidecar indexes.
pub const PRIVATE: &str = "_pooltrack";

/// How long the tables keep removed files and old commits: a retracted batch's files
/// and the store's history stay, whatever another engine's `VACUUM` would do.
const KEEP: &str = "interval 36500 days";

/// A table's folder.
pub fn table_dir(root: &Path, kind: BatchKind) -> PathBuf {
    root.join(kind.as_str())
}

/// Whether `root` holds a store of this format: the collections table's log holds a
/// commit. (A log folder without one is what a writer killed while creating the store
/// leaves; the next writer creates the tables again.)
pub fn exists(root: &Path) -> bool {
    delta::versions(&table_dir(root, BatchKind::Collections))
        .is_ok_and(|v| v.is_some_and(|v| !v.is_empty()))
}

/// pooltrack's record in a commit's `commitInfo.pooltrack`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    settings: Option<Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch: Option<Batch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retraction: Option<Retraction>,
}

/// The next version of each table, as the writer commits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Versions([u64; 4]);

impl Versions {
    fn slot(kind: BatchKind) -> usize {
        match kind {
            BatchKind::Collections => 0,
            BatchKind::Results => 1,
            BatchKind::Population => 2,
            BatchKind::Custody => 3,
        }
    }

    /// The version the next commit of `kind`'s table gets.
    pub fn next(&self, kind: BatchKind) -> u64 {
        self.0[Self::slot(kind)]
    }

    fn advance(&mut self, kind: BatchKind) {
        self.0[Self::slot(kind)] += 1;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn commit_info(operation: &str, record: &Record) -> Result<Action> {
    let mut info = serde_json::Map::new();
    info.insert("timestamp".into(), Value::from(now_ms()));
    info.insert("operation".into(), Value::from(operation));
    info.insert(
        "engineInfo".into(),
        Value::from(concat!("pooltrack/", env!("CARGO_PKG_VERSION"))),
    );
    let record = serde_json::to_value(record)
        .map_err(|e| Error::Usage(format!("cannot write the commit record: {e}")))?;
    info.insert("pooltrack".into(), record);
    Ok(Action::CommitInfo(info))
}

/// A table id: unique enough (the time, the process and the folder, hashed), in a
/// UUID's form as the protocol asks.
fn table_id(dir: &Path) -> String {
    let seed = format!("{}:{}:{}", now_ms(), std::process::id(), dir.display());
    let h = xxhash_rust::xxh3::xxh3_128(seed.as_bytes());
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Makes version 0 of every table of [`TABLES`] that has none, collections last; the
/// collections table's records the settings. Returns the next versions.
pub fn create(root: &Path, settings: &Settings) -> Result<Versions> {
    let mut versions = Versions::default();
    for kind in TABLES {
        let dir = table_dir(root, kind);
        if let Some(v) = delta::versions(&dir)?.filter(|v| !v.is_empty()) {
            versions.0[Versions::slot(kind)] = v.last().map_or(0, |l| l + 1);
            continue;
        }
        create_table(root, kind, settings)?;
        versions.0[Versions::slot(kind)] = 1;
    }
    if let Some(custody) = delta::versions(&table_dir(root, BatchKind::Custody))? {
        versions.0[Versions::slot(BatchKind::Custody)] = custody.last().map_or(0, |l| l + 1);
    }
    Ok(versions)
}

/// Commits version 0 of `kind`'s table: protocol, schema, `pooltrack.format` (and the
/// settings, for the collections table).
fn create_table(root: &Path, kind: BatchKind, settings: &Settings) -> Result<()> {
    let dir = table_dir(root, kind);
    let schema = match kind {
        BatchKind::Collections => collections_schema(),
        BatchKind::Results => results_schema(),
        BatchKind::Population => population_schema(),
        BatchKind::Custody => custody_schema(),
    };
    let configuration: BTreeMap<String, String> = [
        ("delta.logRetentionDuration", KEEP),
        ("delta.deletedFileRetentionDuration", KEEP),
        ("pooltrack.format", &FORMAT.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let record = Record {
        format: Some(FORMAT),
        settings: (kind == BatchKind::Collections).then(|| settings.clone()),
        ..Record::default()
    };
    let actions = [
        Action::Protocol(Protocol {
            min_reader_version: delta::READER_VERSION,
            min_writer_version: delta::WRITER_VERSION,
        }),
        Action::MetaData(MetaData {
            id: table_id(&dir),
            name: Some(kind.as_str().to_owned()),
            format: delta::FileFormat {
                provider: "parquet".into(),
                options: BTreeMap::new(),
            },
            schema_string: delta::schema_string(&schema),
            partition_columns: Vec::new(),
            configuration,
            created_time: Some(now_ms()),
        }),
        commit_info("CREATE TABLE", &record)?,
    ];
    delta::commit(&dir, 0, &actions)?;
    Ok(())
}

/// The path of a store file relative to its table's folder, as an `add` names it.
fn in_table(kind: BatchKind, store_path: &str) -> Option<&str> {
    store_path
        .strip_prefix(kind.as_str())
        .and_then(|p| p.strip_prefix('/'))
}

/// The batch's Parquet files as `add` actions.
fn adds(root: &Path, batch: &Batch) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    let parquet = batch
        .segments
        .iter()
        .map(|s| (&s.parquet, s.rows))
        .chain(batch.population.iter().map(|p| (&p.parquet, p.rows)))
        .chain(batch.custody.iter().map(|c| (&c.parquet, c.rows)));
    for (file, rows) in parquet {
        let path = in_table(batch.kind, &file.path).ok_or_else(|| {
            Error::Usage(format!(
                "{} is not in the {} table's folder",
                file.path,
                batch.kind.as_str()
            ))
        })?;
        let full = root.join(&file.path);
        let modified = std::fs::metadata(&full)
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(&full, e))?;
        let ms = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        out.push(Action::Add(Add {
            path: path.to_owned(),
            partition_values: BTreeMap::new(),
            size: file.bytes,
            modification_time: ms,
            data_change: true,
            stats: Some(format!(r#"{{"numRecords":{rows}}}"#)),
        }));
    }
    Ok(out)
}

/// Commits `actions` as the next version of `kind`'s table; every
/// [`delta::CHECKPOINT_INTERVAL`] versions a checkpoint follows for other engines. The
/// checkpoint is best effort: the commit is made and stands whether or not it is
/// written (a reader without it replays the commits), and the next interval tries again.
fn commit(root: &Path, versions: &mut Versions, kind: BatchKind, actions: &[Action]) -> Result<()> {
    let dir = table_dir(root, kind);
    let version = versions.next(kind);
    delta::commit(&dir, version, actions)?;
    versions.advance(kind);
    if version > 0 && version.is_multiple_of(delta::CHECKPOINT_INTERVAL) {
        let _ = delta::write_checkpoint(&dir, version);
    }
    Ok(())
}

/// Commits `batch` (its files written and synced) as the next version of its table;
/// the first batch of an [`OPTIONAL`] table makes the table first. (A writer killed
/// between the two leaves a table without batches, which reads as empty.)
pub fn commit_batch(root: &Path, versions: &mut Versions, batch: &Batch) -> Result<()> {
    if versions.next(batch.kind) == 0 && OPTIONAL.contains(&batch.kind) {
        let settings = Settings::default();
        create_table(root, batch.kind, &settings)?;
        versions.advance(batch.kind);
    }
    let mut actions = adds(root, batch)?;
    actions.push(commit_info(
        "WRITE",
        &Record {
            batch: Some(batch.clone()),
            ..Record::default()
        },
    )?);
    commit(root, versions, batch.kind, &actions)
}

/// Commits the retraction of `batch`: its Parquet files leave its table.
pub fn commit_retraction(
    root: &Path,
    versions: &mut Versions,
    batch: &Batch,
    retraction: &Retraction,
) -> Result<()> {
    let now = now_ms();
    let mut actions: Vec<Action> = adds(root, batch)?
        .into_iter()
        .filter_map(|a| match a {
            Action::Add(a) => Some(Action::Remove(Remove {
                path: a.path,
                deletion_timestamp: Some(now),
                data_change: true,
                extended_file_metadata: Some(true),
                partition_values: Some(BTreeMap::new()),
                size: Some(a.size),
            })),
            _ => None,
        })
        .collect();
    actions.push(commit_info(
        "DELETE",
        &Record {
            retraction: Some(retraction.clone()),
            ..Record::default()
        },
    )?);
    commit(root, versions, batch.kind, &actions)
}

/// Commits new settings (in the collections table).
pub fn commit_settings(root: &Path, versions: &mut Versions, settings: &Settings) -> Result<()> {
    let kind = BatchKind::Collections;
    let info = commit_info(
        "SET TBLPROPERTIES",
        &Record {
            settings: Some(settings.clone()),
            ..Record::default()
        },
    )?;
    commit(root, versions, kind, &[info])
}

/// Reads the store's history from the three logs: the manifest they add up to, its
/// time zone, and each table's next version. `None` when `root` holds no store of this
/// format. A commit pooltrack did not write, or that disagrees with itself, is damage
/// named with its file.
pub fn load(root: &Path) -> Result<Option<(Manifest, Offset, Versions)>> {
    if !exists(root) {
        return Ok(None);
    }
    let mut manifest = Manifest::default();
    let mut versions = Versions::default();
    let mut settings: Option<Settings> = None;
    for kind in all_tables() {
        let dir = table_dir(root, kind);
        let Some(log) = delta::read_log(&dir)? else {
            continue;
        };
        versions.0[Versions::slot(kind)] = log.len() as u64;
        for commit in &log {
            let record = read_commit(kind, commit)?;
            if let Some(s) = record.settings {
                if kind != BatchKind::Collections {
                    return Err(damaged(
                        commit,
                        "holds settings outside the collections table",
                    ));
                }
                settings = Some(s);
            }
            if let Some(b) = record.batch {
                manifest.batches.push(b);
            }
            if let Some(r) = record.retraction {
                manifest.retractions.push(r);
            }
        }
    }
    manifest.settings = settings.ok_or_else(|| {
        Error::damaged(
            table_dir(root, BatchKind::Collections).join(delta::LOG),
            "the collections table records no settings",
        )
    })?;
    manifest.batches.sort_by_key(|b| b.id);
    manifest.retractions.sort_by_key(|r| r.id);
    let zone = crate::time::zone_offset(&manifest.settings.time_zone).ok_or_else(|| {
        Error::damaged(
            root,
            format!(
                "the store's time zone {:?} cannot be read",
                manifest.settings.time_zone
            ),
        )
    })?;
    let cutoff = manifest.settings.ct_cutoff;
    if !(cutoff > 0.0 && cutoff <= 100.0) {
        return Err(Error::damaged(
            root,
            format!("the store's Ct cut-off {cutoff} is outside 0-100"),
        ));
    }
    if let Some(why) = manifest.retraction_problem() {
        return Err(Error::damaged(root, why));
    }
    let mut ids: Vec<u32> = manifest
        .batches
        .iter()
        .map(|b| b.id)
        .chain(manifest.retractions.iter().map(|r| r.id))
        .collect();
    ids.sort_unstable();
    if let Some(&[id, _]) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::damaged(
            root,
            format!("two commits carry batch id {id}"),
        ));
    }
    Ok(Some((manifest, zone, versions)))
}

fn damaged(commit: &Commit, why: impl std::fmt::Display) -> Error {
    Error::damaged(&commit.path, format!("version {} {why}", commit.version))
}

/// pooltrack's record of one commit, checked against the commit's own actions: a
/// batch adds exactly its Parquet files, a retraction removes exactly those.
fn read_commit(kind: BatchKind, commit: &Commit) -> Result<Record> {
    let mut record: Option<Record> = None;
    let mut added: Vec<&str> = Vec::new();
    let mut removed: Vec<&str> = Vec::new();
    let mut engine = String::from("an unknown engine");
    for action in &commit.actions {
        match action {
            Action::Protocol(p) => {
                if p.min_reader_version > delta::READER_VERSION {
                    return Err(damaged(
                        commit,
                        format!(
                            "asks for Delta reader version {}; pooltrack reads version {} (was the table upgraded by another engine?)",
                            p.min_reader_version,
                            delta::READER_VERSION
                        ),
                    ));
                }
            }
            Action::MetaData(m) => {
                let format = m
                    .configuration
                    .get("pooltrack.format")
                    .and_then(|f| f.parse::<u32>().ok());
                match format {
                    Some(f) if f > FORMAT => {
                        return Err(damaged(
                            commit,
                            format!(
                                "has store format {f}, written by a newer pooltrack; this one reads formats {} to {FORMAT}: upgrade pooltrack to read this store",
                                super::manifest::OLDEST_FORMAT
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => return Err(damaged(commit, "names no pooltrack store format")),
                }
                if !m.partition_columns.is_empty() {
                    return Err(damaged(
                        commit,
                        "partitions the table, which pooltrack never does",
                    ));
                }
            }
            Action::Add(a) => added.push(&a.path),
            Action::Remove(r) => removed.push(&r.path),
            Action::CommitInfo(info) => {
                if let Some(e) = info.get("engineInfo").and_then(Value::as_str) {
                    e.clone_into(&mut engine);
                }
                if let Some(r) = info.get("pooltrack") {
                    let r: Record = serde_json::from_value(r.clone()).map_err(|e| {
                        damaged(
                            commit,
                            format!("has a pooltrack record that cannot be read: {e}"),
                        )
                    })?;
                    record = Some(r);
                }
            }
            Action::Other(name) => {
                return Err(damaged(
                    commit,
                    format!(
                        "holds a {name} action, which pooltrack never writes: the table was written by another engine"
                    ),
                ));
            }
        }
    }
    let Some(record) = record else {
        return Err(damaged(
            commit,
            format!(
                "has no pooltrack record: it was written by {engine}, and only pooltrack may write a store's tables"
            ),
        ));
    };
    if commit.version == 0 && record.format.is_none() {
        return Err(damaged(commit, "is not a pooltrack table's first commit"));
    }
    let expect = |b: &Batch| -> Vec<String> {
        b.segments
            .iter()
            .map(|s| s.parquet.path.as_str())
            .chain(b.population.iter().map(|p| p.parquet.path.as_str()))
            .chain(b.custody.iter().map(|c| c.parquet.path.as_str()))
            .map(|p| in_table(kind, p).unwrap_or(p).to_owned())
            .collect()
    };
    let same = |mut a: Vec<&str>, mut b: Vec<String>| {
        a.sort_unstable();
        b.sort_unstable();
        a == b
    };
    if let Some(b) = &record.batch {
        if let Some(f) = b
            .files()
            .find(|f| !super::checked::inside_segments(&f.path))
        {
            return Err(damaged(
                commit,
                format!(
                    "names {} for batch {}, which is not a segment file inside the store",
                    f.path, b.id
                ),
            ));
        }
        if b.kind != kind {
            return Err(damaged(
                commit,
                format!(
                    "records a {} batch in the {} table",
                    b.kind.as_str(),
                    kind.as_str()
                ),
            ));
        }
        if !removed.is_empty() || !same(added, expect(b)) {
            return Err(damaged(
                commit,
                format!("adds other files than batch {}'s Parquet files", b.id),
            ));
        }
    } else if !added.is_empty() {
        return Err(damaged(commit, "adds files without a batch record"));
    }
    if record.retraction.is_none() && !removed.is_empty() {
        return Err(damaged(commit, "removes files without a retraction record"));
    }
    Ok(record)
}

/// Where a batch's files of `round` go in `kind`'s table, relative to the store root:
/// the Parquet file's stem (`collections/R1/b000001`) and the sidecars' stem
/// (`collections/_pooltrack/R1/b000001`).
pub(crate) fn segment_stems(kind: BatchKind, round: Option<&str>, batch: u32) -> (String, String) {
    let table = kind.as_str();
    match round {
        Some(r) => (
            format!("{table}/{r}/b{batch:06}"),
            format!("{table}/{PRIVATE}/{r}/b{batch:06}"),
        ),
        None => (
            format!("{table}/b{batch:06}"),
            format!("{table}/{PRIVATE}/b{batch:06}"),
        ),
    }
}
