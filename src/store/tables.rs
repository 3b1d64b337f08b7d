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
//! take history away).
//!
//! A batch may hold a Parquet file of another table: a collections batch whose files
//! carry a `box` column holds its box manifest, a file of `custody/`. Delta commits one
//! table at a time, so such a batch still commits once, in its own table, whose commit
//! names every file of it: that commit is the commit point, for the batch and for its
//! retraction, and pooltrack reads the batch whole from it. A [`Mirror`] commit follows
//! in the other table, adding (or, for the retraction, removing) the file there, so
//! other engines find custody rows in `custody/`. Until it is made (a writer stopped
//! between the two commits), [`load`] lists it as due and the next writer makes it;
//! `verify` names it, as a warning. Settings (time zone, Ct cut-off) are records in the collections
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
use super::manifest::{Batch, BatchKind, FORMAT, FileRef, Manifest, Retraction, Settings};
use super::segment::{collections_schema, custody_schema, population_schema, results_schema};
use crate::time::Offset;
use crate::{Error, Result};

mod snapshot;

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
    /// Boxed: a lab's day is thousands of records, moved a few times as they are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch: Option<Box<Batch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retraction: Option<Retraction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mirror: Option<Mirror>,
}

/// What a mirror commit carries: batch `batch`'s files of this table, added, or removed
/// by retraction `retraction`. The batch and the retraction are recorded, and committed,
/// in the batch's own table (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// The batch whose files the commit adds or removes.
    pub batch: u32,
    /// The retraction whose removal it is; `None` for the addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraction: Option<u32>,
}

/// A mirror commit not made yet: its table, and what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The table the batch's files belong to.
    pub table: BatchKind,
    /// The batch, and the retraction for a removal.
    pub mirror: Mirror,
}

/// The next version of each table, as the writer commits, and the store's format (the
/// one a table it makes records).
#[derive(Debug, Clone, Copy, Default)]
pub struct Versions([u64; 4], u32);

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

/// Makes version 0 of every table of [`TABLES`] that has none, of store format
/// `format`, collections last; the collections table's records the settings. Returns
/// the next versions.
pub fn create(root: &Path, settings: &Settings, format: u32) -> Result<Versions> {
    let mut versions = Versions([0; 4], format);
    for kind in TABLES {
        let dir = table_dir(root, kind);
        if let Some(v) = delta::versions(&dir)?.filter(|v| !v.is_empty()) {
            versions.0[Versions::slot(kind)] = v.last().map_or(0, |l| l + 1);
            continue;
        }
        create_table(root, kind, settings, format)?;
        versions.0[Versions::slot(kind)] = 1;
    }
    if let Some(custody) = delta::versions(&table_dir(root, BatchKind::Custody))? {
        versions.0[Versions::slot(BatchKind::Custody)] = custody.last().map_or(0, |l| l + 1);
    }
    Ok(versions)
}

/// Commits version 0 of `kind`'s table: protocol, schema, `pooltrack.format` (and the
/// settings, for the collections table).
fn create_table(root: &Path, kind: BatchKind, settings: &Settings, format: u32) -> Result<()> {
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
        ("pooltrack.format", &format.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let record = Record {
        format: Some(format),
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

/// The table whose folder holds a store file, by its path.
fn table_of(store_path: &str) -> Option<BatchKind> {
    all_tables().find(|&k| in_table(k, store_path).is_some())
}

/// The batch's Parquet files with their rows.
fn parquet_files(batch: &Batch) -> impl Iterator<Item = (&FileRef, u64)> {
    batch
        .segments
        .iter()
        .map(|s| (&s.parquet, s.rows))
        .chain(batch.population.iter().map(|p| (&p.parquet, p.rows)))
        .chain(batch.custody.iter().map(|c| (&c.parquet, c.rows)))
}

/// The tables other than its own that hold a Parquet file of `batch` (see the module
/// docs), each once.
pub fn other_tables(batch: &Batch) -> Vec<BatchKind> {
    let mut out: Vec<BatchKind> = Vec::new();
    for (f, _) in parquet_files(batch) {
        if let Some(t) = table_of(&f.path)
            && t != batch.kind
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out
}

/// The batch's Parquet files in `table`, as `add` actions.
fn adds(root: &Path, batch: &Batch, table: BatchKind) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    for (file, rows) in parquet_files(batch) {
        if table_of(&file.path).is_some_and(|t| t != table) {
            continue;
        }
        let path = in_table(table, &file.path).ok_or_else(|| {
            Error::Usage(format!(
                "{} is not in the {} table's folder",
                file.path,
                table.as_str()
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

/// Makes an [`OPTIONAL`] table that has no commit yet. (A writer killed between this
/// and the commit it makes way for leaves a table without batches, which reads as
/// empty.)
fn make_optional(root: &Path, versions: &mut Versions, kind: BatchKind) -> Result<()> {
    if versions.next(kind) == 0 && OPTIONAL.contains(&kind) {
        create_table(root, kind, &Settings::default(), versions.1)?;
        versions.advance(kind);
    }
    Ok(())
}

/// Commits `batch` (its files written and synced) as the next version of its table;
/// the first batch of an [`OPTIONAL`] table makes the table first. A batch with files
/// of other tables ([`other_tables`]) needs their [`Mirror`] commits next
/// ([`commit_mirror`]); this commit names those files too, and is the commit point.
pub fn commit_batch(root: &Path, versions: &mut Versions, batch: &Batch) -> Result<()> {
    make_optional(root, versions, batch.kind)?;
    let mut actions = adds(root, batch, batch.kind)?;
    actions.push(commit_info(
        "WRITE",
        &Record {
            batch: Some(Box::new(batch.clone())),
            ..Record::default()
        },
    )?);
    commit(root, versions, batch.kind, &actions)
}

/// `adds` as `remove` actions.
fn removes(adds: Vec<Action>) -> Vec<Action> {
    let now = now_ms();
    adds.into_iter()
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
        .collect()
}

/// Commits the retraction of `batch`: its Parquet files leave its table. Its files of
/// other tables leave them by [`Mirror`] commits next ([`commit_mirror`]).
pub fn commit_retraction(
    root: &Path,
    versions: &mut Versions,
    batch: &Batch,
    retraction: &Retraction,
) -> Result<()> {
    let mut actions = removes(adds(root, batch, batch.kind)?);
    actions.push(commit_info(
        "DELETE",
        &Record {
            retraction: Some(retraction.clone()),
            ..Record::default()
        },
    )?);
    commit(root, versions, batch.kind, &actions)
}

/// Makes a mirror commit that is due: `batch`'s files of `due.table` are added to it or
/// (for a retraction) removed from it. The first commit of an [`OPTIONAL`] table makes
/// the table first.
pub fn commit_mirror(root: &Path, versions: &mut Versions, batch: &Batch, due: Due) -> Result<()> {
    if batch.id != due.mirror.batch || batch.kind == due.table {
        return Err(Error::Usage(format!(
            "batch {} has no files of another table to mirror in {}",
            batch.id,
            due.table.as_str()
        )));
    }
    make_optional(root, versions, due.table)?;
    let files = adds(root, batch, due.table)?;
    let (operation, mut actions) = match due.mirror.retraction {
        None => ("WRITE", files),
        Some(_) => ("DELETE", removes(files)),
    };
    actions.push(commit_info(
        operation,
        &Record {
            mirror: Some(due.mirror),
            ..Record::default()
        },
    )?);
    commit(root, versions, due.table, &actions)
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

/// The store's history as its tables' logs tell it.
#[derive(Debug)]
pub struct Loaded {
    /// The manifest the logs add up to.
    pub manifest: Manifest,
    /// Its time zone.
    pub zone: Offset,
    /// Each table's next version.
    pub versions: Versions,
    /// The mirror commits not made yet, in batch order (see the module docs).
    pub due: Vec<Due>,
    /// From [`load_every_commit`]: where the store's log snapshot, which other commands
    /// take the logs' first commits from, says otherwise than the commit files (`None`
    /// when it agrees, or is not used because it does not hold). `None` from [`load`].
    pub snapshot_problem: Option<String>,
}

/// A mirror commit as read, checked against its batch once every table is read.
struct MirrorSeen {
    table: BatchKind,
    path: PathBuf,
    version: u64,
    mirror: Mirror,
    files: Vec<String>,
}

/// Reads the store's history from the tables' logs: the manifest they add up to, its
/// time zone, each table's next version and the mirror commits still due. `None` when
/// `root` holds no store of this format. A commit pooltrack did not write, or that
/// disagrees with itself, is damage named with its file. The commits the store's log
/// snapshot holds are taken from it (`log-snapshot.json`, see "The store" in the README).
pub fn load(root: &Path) -> Result<Option<Loaded>> {
    load_with(root, true)
}

/// [`load`], every commit read from its file and the log snapshot neither used nor
/// written, only compared with them ([`Loaded::snapshot_problem`]): what `pooltrack
/// verify` checks.
pub fn load_every_commit(root: &Path) -> Result<Option<Loaded>> {
    load_with(root, false)
}

/// Each table's commits as read (from the snapshot `saved` where it holds), and how
/// many were read past it; `None` when the collections table, which marks a store,
/// has no commit (see [`exists`]: its log is listed once, for both).
fn read_tables(
    root: &Path,
    mut saved: Option<snapshot::Snapshot>,
) -> Result<Option<(Vec<snapshot::TableReads>, usize)>> {
    let marker = table_dir(root, BatchKind::Collections);
    let Ok(Some(listed)) = delta::versions(&marker) else {
        return Ok(None);
    };
    if listed.is_empty() {
        return Ok(None);
    }
    let mut listed = Some(listed);
    let mut tables = Vec::new();
    let mut fresh = 0;
    for kind in all_tables() {
        let dir = table_dir(root, kind);
        let versions = if kind == BatchKind::Collections
            && let Some(l) = listed.take()
        {
            delta::contiguous(&dir, l)?
        } else if let Some(v) = delta::contiguous_versions(&dir)? {
            v
        } else {
            continue;
        };
        let mut reads = saved
            .as_mut()
            .map(|s| s.take(root, kind, versions.len()))
            .unwrap_or_default();
        let from = reads.len();
        fresh += versions.len() - from;
        for commit in delta::read_commits(&dir, &versions[from..])? {
            reads.push(read_commit(kind, &commit)?);
        }
        tables.push((kind, reads));
    }
    Ok(Some((tables, fresh)))
}

fn load_with(root: &Path, use_snapshot: bool) -> Result<Option<Loaded>> {
    let saved = if use_snapshot {
        snapshot::Snapshot::read(root)
    } else {
        None
    };
    let Some((tables, fresh)) = read_tables(root, saved)? else {
        return Ok(None);
    };
    if use_snapshot && fresh >= snapshot::EVERY {
        snapshot::save(root, &tables);
    }
    let snapshot_problem = if use_snapshot {
        None
    } else {
        snapshot::disagreement(root, &tables)
    };
    let mut manifest = Manifest::default();
    let mut versions = Versions::default();
    let mut settings: Option<Settings> = None;
    let mut mirrors: Vec<MirrorSeen> = Vec::new();
    for (kind, reads) in tables {
        versions.0[Versions::slot(kind)] = reads.len() as u64;
        for (version, (record, mirror)) in (0u64..).zip(reads) {
            mirrors.extend(mirror);
            // The collections table's first commit marks the store, and its format.
            if let (BatchKind::Collections, 0, Some(f)) = (kind, version, record.format) {
                manifest.format = f;
                versions.1 = f;
            }
            if let Some(s) = record.settings {
                if kind != BatchKind::Collections {
                    return Err(Error::damaged(
                        table_dir(root, kind)
                            .join(delta::LOG)
                            .join(delta::commit_name(version)),
                        "holds settings outside the collections table",
                    ));
                }
                settings = Some(s);
            }
            if let Some(b) = record.batch {
                manifest.batches.push(*b);
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
    let newest = ids.last().copied().unwrap_or(0);
    let due = mirrors_due(&manifest, &mirrors, newest)?;
    Ok(Some(Loaded {
        manifest,
        zone,
        versions,
        due,
        snapshot_problem,
    }))
}

/// Checks each mirror commit against the batch (and retraction) it names, and returns
/// the mirror commits still due. A mirror of a batch or retraction newer than every id
/// read (`newest`) is one committed while this reader read the logs (a reader takes no
/// lock), and is left for the next read.
fn mirrors_due(manifest: &Manifest, mirrors: &[MirrorSeen], newest: u32) -> Result<Vec<Due>> {
    let mut made: Vec<Due> = Vec::new();
    for m in mirrors {
        let damaged = |why: String| Error::damaged(&m.path, format!("version {} {why}", m.version));
        let Some(b) = manifest.batch(m.mirror.batch) else {
            if m.mirror.batch > newest {
                continue;
            }
            return Err(damaged(format!(
                "mirrors batch {}, which no table records",
                m.mirror.batch
            )));
        };
        if let Some(rid) = m.mirror.retraction {
            match manifest.retractions.iter().find(|r| r.id == rid) {
                None if rid > newest => continue,
                Some(r) if r.batch == b.id => {}
                _ => {
                    return Err(damaged(format!(
                        "mirrors retraction {rid} of batch {}, which no table records",
                        b.id
                    )));
                }
            }
        }
        let mut want: Vec<String> = parquet_files(b)
            .filter_map(|(f, _)| in_table(m.table, &f.path))
            .map(str::to_owned)
            .collect();
        want.sort_unstable();
        if b.kind == m.table || want.is_empty() || want != m.files {
            return Err(damaged(format!(
                "mirrors other files than batch {}'s Parquet files of the {} table",
                b.id,
                m.table.as_str()
            )));
        }
        made.push(Due {
            table: m.table,
            mirror: m.mirror,
        });
    }
    let mut due = Vec::new();
    for b in &manifest.batches {
        for table in other_tables(b) {
            let added = made.iter().any(|d| {
                d.table == table && d.mirror.batch == b.id && d.mirror.retraction.is_none()
            });
            let removed = made.iter().any(|d| {
                d.table == table && d.mirror.batch == b.id && d.mirror.retraction.is_some()
            });
            let retraction = manifest.retraction_of(b.id).map(|r| r.id);
            let mirror = match retraction {
                None if !added => Mirror {
                    batch: b.id,
                    retraction: None,
                },
                // Never added: a retracted batch's file stays out of the table.
                Some(r) if added && !removed => Mirror {
                    batch: b.id,
                    retraction: Some(r),
                },
                _ => continue,
            };
            due.push(Due { table, mirror });
        }
    }
    Ok(due)
}

fn damaged(commit: &Commit, why: impl std::fmt::Display) -> Error {
    Error::damaged(&commit.path, format!("version {} {why}", commit.version))
}

/// pooltrack's record of one commit, checked against the commit's own actions: a
/// batch adds exactly its Parquet files of this table, a retraction removes exactly
/// those; a mirror commit, returned too, is checked against its batch by [`load`].
fn read_commit(kind: BatchKind, commit: &Commit) -> Result<(Record, Option<MirrorSeen>)> {
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
    if let Some(mirror) = record.mirror {
        let plain = record.batch.is_none()
            && record.retraction.is_none()
            && record.settings.is_none()
            && record.format.is_none();
        let (files, other) = match mirror.retraction {
            None => (added, removed),
            Some(_) => (removed, added),
        };
        if !plain || files.is_empty() || !other.is_empty() {
            return Err(damaged(
                commit,
                format!(
                    "is a mirror of batch {} that does not only {} its files",
                    mirror.batch,
                    if mirror.retraction.is_none() {
                        "add"
                    } else {
                        "remove"
                    }
                ),
            ));
        }
        let mut files: Vec<String> = files.into_iter().map(str::to_owned).collect();
        files.sort_unstable();
        let seen = MirrorSeen {
            table: kind,
            path: commit.path.clone(),
            version: commit.version,
            mirror,
            files,
        };
        return Ok((record, Some(seen)));
    }
    // The batch's Parquet files in this table; its files of other tables are added by
    // their mirror commits (a path in no table is refused above).
    let expect = |b: &Batch| -> Vec<String> {
        parquet_files(b)
            .filter_map(|(f, _)| {
                let p = f.path.as_str();
                match table_of(p) {
                    Some(t) if t != kind => None,
                    _ => Some(in_table(kind, p).unwrap_or(p).to_owned()),
                }
            })
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
        // The one file a batch may hold in another table: a collections batch's box
        // manifest, in `custody/`.
        let foreign: Vec<&str> = parquet_files(b)
            .map(|(f, _)| f.path.as_str())
            .filter(|p| table_of(p).is_some_and(|t| t != kind))
            .collect();
        let box_manifest = b
            .custody
            .as_ref()
            .filter(|_| kind == BatchKind::Collections)
            .map(|c| c.parquet.path.as_str())
            .filter(|p| table_of(p) == Some(BatchKind::Custody));
        if !(foreign.is_empty() || foreign == box_manifest.into_iter().collect::<Vec<_>>()) {
            return Err(damaged(
                commit,
                format!(
                    "names a file of another table for batch {}, which only a collections batch's box manifest in custody/ may be",
                    b.id
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
    Ok((record, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest_collections};
    use crate::store::Store;

    /// A commit of the custody table that adds `file` under `mirror`'s record.
    fn forged_mirror(root: &Path, version: u64, file: &str, mirror: Mirror) {
        let add = Action::Add(Add {
            path: file.to_owned(),
            partition_values: BTreeMap::new(),
            size: 1,
            modification_time: 0,
            data_change: true,
            stats: None,
        });
        let info = commit_info(
            "WRITE",
            &Record {
                mirror: Some(mirror),
                ..Record::default()
            },
        )
        .expect("a record");
        let dir = table_dir(root, BatchKind::Custody);
        let path = dir.join(delta::LOG).join(delta::commit_name(version));
        let _ = std::fs::remove_file(&path);
        delta::commit(&dir, version, &[add, info]).expect("commit");
    }

    #[test]
    fn a_mirror_carries_its_batchs_files_and_one_not_made_is_due() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.csv");
        std::fs::write(
            &file,
            "tube,person,mode,collected_at,box\nPL0001,P-1,pool,2022-04-02 08:00,BX01\n",
        )
        .expect("write");
        let root = dir.path().join("store");
        let mut store = Store::open_writer(&root).expect("store");
        ingest_collections(&mut store, &[file], "R1", &IngestOptions::default(), None)
            .expect("ingest");
        drop(store);
        let loaded = load(&root).expect("loads").expect("a store");
        assert!(loaded.due.is_empty());
        // The custody table's first commit, then the mirror of batch 1.
        assert_eq!(loaded.versions.next(BatchKind::Custody), 2);
        let batch_1 = Mirror {
            batch: 1,
            retraction: None,
        };
        let due_1 = Due {
            table: BatchKind::Custody,
            mirror: batch_1,
        };
        let mirror = table_dir(&root, BatchKind::Custody)
            .join(delta::LOG)
            .join(delta::commit_name(1));
        std::fs::remove_file(&mirror).expect("remove");
        let loaded = load(&root).expect("loads").expect("a store");
        assert_eq!(loaded.due, [due_1]);

        // A mirror of a batch newer than every id read: committed while this reader
        // read the logs, left for the next read.
        let newer = Mirror {
            batch: 7,
            retraction: None,
        };
        forged_mirror(&root, 1, "R1/b000007.parquet", newer);
        let loaded = load(&root).expect("loads").expect("a store");
        assert_eq!(loaded.due, [due_1]);

        // A mirror of a batch the store holds must carry exactly its files.
        forged_mirror(&root, 1, "R1/b000009.parquet", batch_1);
        let err = load(&root).expect_err("damage");
        assert!(err.to_string().contains("mirrors other files"), "{err}");
        forged_mirror(&root, 1, "R1/b000001.parquet", batch_1);
        assert!(load(&root).expect("loads").expect("a store").due.is_empty());
        // A retraction's mirror names a retraction the store holds.
        let retracted = Mirror {
            batch: 1,
            retraction: Some(1),
        };
        let remove = removes(vec![Action::Add(Add {
            path: "R1/b000001.parquet".into(),
            partition_values: BTreeMap::new(),
            size: 1,
            modification_time: 0,
            data_change: true,
            stats: None,
        })]);
        let info = commit_info(
            "DELETE",
            &Record {
                mirror: Some(retracted),
                ..Record::default()
            },
        )
        .expect("a record");
        let actions: Vec<Action> = remove.into_iter().chain([info]).collect();
        delta::commit(&table_dir(&root, BatchKind::Custody), 2, &actions).expect("commit");
        let err = load(&root).expect_err("damage");
        assert!(err.to_string().contains("retraction 1 of batch 1"), "{err}");
    }

    /// Collections batches `batches` of one row each, into the store at `root`.
    fn store_of(root: &Path, batches: std::ops::Range<usize>) {
        let mut store = Store::open_writer(root).expect("store");
        for i in batches {
            let file = root.with_extension(format!("{i}.csv"));
            std::fs::write(
                &file,
                format!("tube,person,mode,collected_at\nPL{i:04},P-{i},pool,2022-04-02 08:00\n"),
            )
            .expect("write");
            ingest_collections(&mut store, &[file], "R1", &IngestOptions::default(), None)
                .expect("ingest");
        }
    }

    /// What a load of `root` gives, with the snapshot (`load`) or without (`every`).
    fn history(root: &Path, every: bool) -> String {
        let t = if every {
            load_every_commit(root)
        } else {
            load(root)
        };
        let t = t.expect("loads").expect("a store");
        format!(
            "{} {} {:?} {:?}",
            serde_json::to_string(&t.manifest.batches).expect("json"),
            serde_json::to_string(&t.manifest.retractions).expect("json"),
            t.versions.0,
            t.due
        )
    }

    fn problem(root: &Path) -> Option<String> {
        load_every_commit(root)
            .expect("loads")
            .expect("a store")
            .snapshot_problem
    }

    fn batches(root: &Path) -> usize {
        load(root)
            .expect("loads")
            .expect("a store")
            .manifest
            .batches
            .len()
    }

    #[test]
    fn the_log_snapshot_gives_the_history_of_every_commit_and_only_while_it_holds() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("store");
        let snapshot = root.join(crate::store::LOG_SNAPSHOT);
        store_of(&root, 0..4);
        let same = |root: &Path| assert_eq!(history(root, false), history(root, true));
        // Fewer fresh commits than EVERY (each table's first, the settings, the
        // batches): no snapshot yet.
        same(&root);
        assert!(!snapshot.exists());
        store_of(&root, 4..4 + snapshot::EVERY);
        same(&root);
        assert!(snapshot.exists(), "enough commits read to keep a snapshot");
        assert_eq!(problem(&root), None);

        // Read from the snapshot, then the commits after it.
        store_of(&root, 100..102);
        let written = std::fs::metadata(&snapshot)
            .and_then(|m| m.modified())
            .expect("stat");
        same(&root);
        assert_eq!(batches(&root), snapshot::EVERY + 6);
        assert_eq!(
            std::fs::metadata(&snapshot)
                .and_then(|m| m.modified())
                .expect("stat"),
            written,
            "two commits past it do not make a new one"
        );

        // A store made again in the same folder does not take the old one's snapshot.
        let kept = std::fs::read(&snapshot).expect("read");
        std::fs::remove_dir_all(&root).expect("remove");
        store_of(&root, 0..3);
        std::fs::write(&snapshot, &kept).expect("put back");
        same(&root);
        assert_eq!(batches(&root), 3);

        // A snapshot that holds but says otherwise than the commits: verify names it.
        std::fs::remove_file(&snapshot).expect("remove");
        store_of(&root, 3..3 + snapshot::EVERY);
        same(&root);
        let text = std::fs::read_to_string(&snapshot).expect("read");
        let forged = text.replacen("\"rows\":1", "\"rows\":7", 1);
        assert_ne!(forged, text);
        std::fs::write(&snapshot, forged).expect("write");
        assert_ne!(
            history(&root, false),
            history(&root, true),
            "readers take the commits it holds from it"
        );
        let why = problem(&root).expect("a problem");
        assert!(why.contains("says otherwise than commit"), "{why}");
        // Cut short, or unreadable: not used.
        std::fs::write(&snapshot, &text[..text.len() / 2]).expect("write");
        same(&root);
        std::fs::write(&snapshot, "not json").expect("write");
        same(&root);
    }
}
