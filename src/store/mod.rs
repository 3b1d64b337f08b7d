//! The durable store: three Delta Lake tables of Parquet segments (store formats 3 and
//! 4, which differ only in how the person indexes key persons: see
//! [`manifest::FORMAT`]).
//!
//! ```text
//! STORE/
//!   lock                                          held by the one writer
//!   pooltrack.toml                                cut-offs and deadlines (optional, see [`config`])
//!   collections/_delta_log/00000000000000000001.json   a commit: one batch
//!   collections/<round>/b000001.parquet           rows of batch 1, in input order
//!   collections/_pooltrack/<round>/b000001.tubes  sidecar tube index
//!   collections/_pooltrack/<round>/b000001.persons   sidecar person index
//!   results/_delta_log/…
//!   results/<round>/b000002.parquet
//!   results/_pooltrack/<round>/b000002.tubes
//!   population/_delta_log/…
//!   population/b000003.parquet                    a population batch's register rows
//!   population/_pooltrack/b000003.persons         sidecar person index
//!   custody/_delta_log/…                          made by the first custody batch
//!   custody/<round>/b000004.parquet               boxes sealed, boxes and tubes received
//!   rejects/b000001-collections.csv               rows a batch refused or flagged
//! ```
//!
//! A writer takes `lock`, writes a batch's new files, fsyncs them, and commits by
//! adding one numbered commit to its table's `_delta_log/` (see [`tables`] for what a
//! commit holds, [`delta`] for the protocol); committed files are never changed. A
//! reader reads the logs once and only the files they name, so it sees the store
//! before or after a batch, never between, and needs no lock; so does any other Delta
//! reader. Stores of formats 1 and 2 (`MANIFEST.json` and `rounds/`) are read as they
//! are and converted by [`migrate`].

pub mod checked;
pub mod cited;
pub mod config;
pub mod custody;
pub mod delta;
pub mod fsutil;
pub mod index;
mod keyed;
pub mod labels;
mod lookup;
pub mod manifest;
pub(crate) mod merge;
pub mod migrate;
pub mod read;
pub mod runs;
pub mod segment;
pub mod tables;
pub mod verify;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) use lookup::{CollectionIndex, ResultIndex};
pub use lookup::{Members, ResultFact, StoreIndex, TubeCursor, TubeFacts};
pub use manifest::{Batch, BatchKind, Manifest, PopulationSegment, Segment, Settings};

use crate::time::{self, Offset};
use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.json";

/// The health codes' saved fold of settled rounds (`pooltrack::health_code::rounds::state`):
/// derived data at the store's root, like the stat cache, used only while it matches
/// the store.
pub const CODES_STATE: &str = "health-codes.state";

/// The tables' logs as last read (`tables::snapshot`): derived data at the store's root,
/// used only while the log's first and last commits it names are as they were.
pub const LOG_SNAPSHOT: &str = "log-snapshot.json";
const LOCK: &str = "lock";

/// How often a writer given `--wait` tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// How [`Store::open_writer_with`] opens the store for writing.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// How long to wait for another writer to finish; zero: do not wait.
    pub wait: Duration,
    /// Create the store if there is none (collections and the population register
    /// may; results, which must name collected tubes, may not).
    pub create: bool,
}

impl Default for WriterOptions {
    /// Do not wait; create the store if there is none (what [`Store::open_writer`] does).
    fn default() -> Self {
        WriterOptions {
            wait: Duration::ZERO,
            create: true,
        }
    }
}

/// What [`Store::load`] reads beside the tables.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// The stat cache too, on the other core, for a check of every file.
    WithStatCache,
    /// The tables only (the files are checked as they are read).
    Tables,
}

/// An open store.
pub struct Store {
    root: PathBuf,
    manifest: Manifest,
    zone: Offset,
    /// Each table's next version (format 3); `None` for a store of an older format,
    /// which is read as it is and never written.
    versions: Option<tables::Versions>,
    /// The locked lock file of a writer, held open for the store's life: the lock
    /// lasts as long as the file is open. `None` for a reader, which may not commit.
    writer_lock: Option<File>,
    /// Mirror commits not made yet (see [`tables`]): a writer makes them.
    due: Vec<tables::Due>,
    /// The rounds' runs as this store object first opened them ([`runs`]).
    runs: runs::RunCache,
    /// The stat cache as this store object read it and, for a writer, as it recorded its
    /// new files in it since: one read of `verified.json` a command, not one a step.
    stat_cache: Option<checked::StatCache>,
    /// For a store opened by [`Store::open_for_lookups`]: its files are checked as they
    /// are read, not at opening.
    on_read: Option<checked::OnRead>,
}

impl Store {
    /// Opens an existing store for reading; checks that every file its log names is
    /// there with its recorded size. A store of formats 1 and 2 (`MANIFEST.json`) is
    /// read as it is.
    pub fn open(root: &Path) -> Result<Store> {
        let mut store = Store::open_unchecked(root, Load::WithStatCache)?;
        store.check_files()?;
        Ok(store)
    }

    /// Opens an existing store for a command that reads a few of its rows (a person's):
    /// each committed file is checked (present, of its size, of its hash through the
    /// stat cache) when the command first reads it, instead of every file at opening:
    /// on a lab's day of batches that is thousands of files, most of such a command's
    /// time. Every path the log names is still checked to be inside the store. Reads
    /// through [`Store::index_of`] and the `read` module's functions are checked.
    pub fn open_for_lookups(root: &Path) -> Result<Store> {
        let mut store = Store::open_unchecked(root, Load::Tables)?;
        for b in &store.manifest.batches {
            for f in b.files() {
                checked::inside(root, f, b.id)?;
            }
        }
        store.on_read = Some(checked::OnRead::read(root));
        Ok(store)
    }

    fn open_unchecked(root: &Path, load: Load) -> Result<Store> {
        match Store::load(root, None, load)? {
            Some(store) => Ok(store),
            None if has_data(root) => Err(missing_log(root)),
            None => Err(Error::Usage(format!(
                "no store at {}: ingest a batch first, or give --store (or POOLTRACK_STORE)",
                root.display()
            ))),
        }
    }

    /// Checks the committed file at `path` before a read, for a store opened by
    /// [`Store::open_for_lookups`] (any other has checked every file at opening). A
    /// path no batch names (a run, which is derived data) is not checked here. The file
    /// is found by a search of the log's files (a look-up checks a few), or by path once
    /// a command has checked more than a few.
    pub(crate) fn check_read(&self, path: &Path) -> Result<()> {
        let Some(on_read) = &self.on_read else {
            return Ok(());
        };
        let Some(rel) = path.strip_prefix(&self.root).ok().and_then(Path::to_str) else {
            return Ok(());
        };
        let batches = &self.manifest.batches;
        let named = if on_read.many() {
            on_read
                .named(&self.manifest)
                .get(rel)
                .and_then(|&(b, i)| batches.get(b).and_then(|b| Some((b.files().nth(i)?, b.id))))
        } else {
            batches
                .iter()
                .find_map(|b| b.files().find(|f| f.path == rel).map(|f| (f, b.id)))
        };
        match named {
            Some((f, batch)) => on_read.check(&self.root, f, batch),
            None => Ok(()),
        }
    }

    /// Opens the store for writing, creating it if it does not exist. Only one writer
    /// at a time: a second gets [`Error::StoreBusy`] at once. Leftovers of a crashed
    /// writer (files no commit names) are removed.
    pub fn open_writer(root: &Path) -> Result<Store> {
        Store::open_writer_with(root, WriterOptions::default())
    }

    /// Opens the store for writing as `opts` say: waiting up to `opts.wait` for another
    /// writer to finish (then [`Error::StoreBusy`] saying how long it waited), and
    /// creating the store only if `opts.create`; without it a missing store is a usage
    /// error (exit 2) and nothing is created. A store of an older format must be
    /// migrated first (`pooltrack migrate`): this pooltrack writes formats 3 and 4, each
    /// store in its own.
    pub fn open_writer_with(root: &Path, opts: WriterOptions) -> Result<Store> {
        let mut store = Store::lock(root, opts)?;
        if store.versions.is_none() {
            return Err(Error::Usage(format!(
                "the store at {} is of format {} ({MANIFEST}); this pooltrack writes formats 3 to {}: \
                 run `pooltrack migrate --store {}` once (it converts the store in place, \
                 atomically, keeping every file), then try again",
                root.display(),
                store.manifest.format,
                manifest::FORMAT,
                root.display()
            )));
        }
        store.check_files()?;
        store.remove_leftovers()?;
        // A table without a commit: the store was created by a writer killed between
        // its tables' first commits. Only then is there anything to create.
        if let Some(v) = store.versions
            && tables::TABLES.iter().any(|&k| v.next(k) == 0)
        {
            store.versions = Some(tables::create(
                root,
                &store.manifest.settings,
                manifest::FORMAT,
            )?);
        }
        store.make_mirrors();
        Ok(store)
    }

    /// Makes the mirror commits that are due, in order (see [`tables`]). Best effort,
    /// as a checkpoint is: the batches and retractions they follow are committed
    /// already and pooltrack reads them whole; what fails stays due, for `verify` to
    /// name and the next writer to make.
    fn make_mirrors(&mut self) {
        let root = self.root.clone();
        let Some(versions) = self
            .versions
            .as_mut()
            .filter(|_| self.writer_lock.is_some())
        else {
            return;
        };
        while let Some(&due) = self.due.first() {
            let made = self
                .manifest
                .batch(due.mirror.batch)
                .is_some_and(|b| tables::commit_mirror(&root, versions, b, due).is_ok());
            if !made {
                return;
            }
            self.due.remove(0);
        }
    }

    /// The mirror commits not made yet (see [`tables`]).
    pub fn mirrors_due(&self) -> &[tables::Due] {
        &self.due
    }

    /// Takes the writer's lock and reads the store, of any format, creating a format-3
    /// store when there is none and `opts.create`.
    pub(crate) fn lock(root: &Path, opts: WriterOptions) -> Result<Store> {
        if !opts.create && !root.join(MANIFEST).exists() && !tables::exists(root) {
            if has_data(root) {
                return Err(missing_log(root));
            }
            return Err(Error::Usage(format!(
                "no store at {}: ingest collections (pooltrack ingest collections FILE --round R) \
                 or the population register first, which creates it, or give --store (or POOLTRACK_STORE)",
                root.display()
            )));
        }
        fsutil::create_dir_all(root)?;
        let lock_path = root.join(LOCK);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        let start = Instant::now();
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= opts.wait {
                        return Err(Error::StoreBusy {
                            path: root.to_path_buf(),
                            waited: if opts.wait.is_zero() {
                                Duration::ZERO
                            } else {
                                waited
                            },
                        });
                    }
                    // Polled rather than a blocking lock: a blocking flock cannot be
                    // given a timeout without a second thread or a signal.
                    std::thread::sleep(LOCK_POLL.min(opts.wait.saturating_sub(waited)));
                }
                Err(TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
            }
        }
        if root.join(MANIFEST).exists() || tables::exists(root) {
            return Store::load(root, Some(lock), Load::WithStatCache)?
                .ok_or_else(|| missing_log(root));
        }
        if has_data(root) {
            return Err(missing_log(root));
        }
        let manifest = Manifest::default();
        let versions = tables::create(root, &manifest.settings, manifest::FORMAT)?;
        Ok(Store {
            root: root.to_path_buf(),
            zone: Offset::CHINA,
            manifest,
            versions: Some(versions),
            writer_lock: Some(lock),
            due: Vec::new(),
            runs: runs::RunCache::default(),
            stat_cache: None,
            on_read: None,
        })
    }

    /// Reads the store at `root`: its tables (format 3) or, in an older store, its
    /// `MANIFEST.json`. `None` when there is neither. A `MANIFEST.json` wins: beside
    /// tables it means a migration that did not finish, which left the old store whole.
    fn load(root: &Path, lock: Option<File>, load: Load) -> Result<Option<Store>> {
        let path = root.join(MANIFEST);
        match fs::read(&path) {
            Ok(bytes) => {
                let (manifest, zone) =
                    Manifest::parse(&bytes).map_err(|why| Error::damaged(root, why))?;
                return Ok(Some(Store {
                    root: root.to_path_buf(),
                    manifest,
                    zone,
                    versions: None,
                    writer_lock: lock,
                    due: Vec::new(),
                    runs: runs::RunCache::default(),
                    stat_cache: None,
                    on_read: None,
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        // The stat cache is read while the logs are: on a lab's day of batches each is
        // a few milliseconds of a command that should take twenty.
        let (loaded, stat_cache) = match load {
            Load::WithStatCache => {
                let (l, c) = rayon::join(|| tables::load(root), || checked::StatCache::read(root));
                (l, Some(c))
            }
            Load::Tables => (tables::load(root), None),
        };
        Ok(loaded?.map(|t| Store {
            root: root.to_path_buf(),
            manifest: t.manifest,
            zone: t.zone,
            versions: Some(t.versions),
            writer_lock: lock,
            due: t.due,
            runs: runs::RunCache::default(),
            stat_cache,
            on_read: None,
        }))
    }

    fn check_files(&mut self) -> Result<()> {
        let cache = self
            .stat_cache
            .take()
            .unwrap_or_else(|| checked::StatCache::read(&self.root));
        self.stat_cache = Some(checked::check_with(&self.root, &self.manifest, cache)?);
        Ok(())
    }

    /// Removes files that no committed batch names: what a writer killed before its
    /// commit left behind (segment files, sidecars, reject reports, temporary commit
    /// files), and the old folders of a migration killed after its commit.
    fn remove_leftovers(&self) -> Result<()> {
        let named: std::collections::HashSet<&str> = self
            .manifest
            .batches
            .iter()
            .flat_map(Batch::files)
            .map(|f| f.path.as_str())
            .collect();
        let mut dirs = Vec::new();
        for kind in tables::all_tables() {
            let table = tables::table_dir(&self.root, kind);
            dirs.push(table.clone());
            dirs.push(table.join(segment::PRIVATE));
            if kind != BatchKind::Population {
                for (base, private) in
                    [(table.clone(), false), (table.join(segment::PRIVATE), true)]
                {
                    if let Ok(rounds) = fs::read_dir(&base) {
                        for r in rounds.flatten() {
                            if r.file_type().is_ok_and(|t| t.is_dir()) {
                                // A round's runs folder: a merge killed while writing.
                                if private {
                                    dirs.push(r.path().join(runs::RUNS));
                                }
                                dirs.push(r.path());
                            }
                        }
                    }
                }
            }
            let log = table.join(delta::LOG);
            if let Ok(files) = fs::read_dir(&log) {
                for f in files.flatten() {
                    if delta::is_temporary(&f.file_name().to_string_lossy()) {
                        let p = f.path();
                        fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                    }
                }
            }
        }
        for dir in dirs {
            let Ok(files) = fs::read_dir(&dir) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                let rel = p
                    .strip_prefix(&self.root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                let name = f.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with('b') && f.file_type().is_ok_and(|t| t.is_file());
                // A run a writer was killed while merging (runs are derived: see `runs`).
                if (ours && !named.contains(rel.as_str())) || runs::is_temporary(&name) {
                    fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        // A saved fold of the health codes an export was killed while writing: as large
        // as a slot a person, so not left to pile up.
        if let Ok(top) = fs::read_dir(&self.root) {
            for f in top.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                #[allow(clippy::case_sensitive_file_extension_comparisons)]
                if (name.starts_with(CODES_STATE) || name.starts_with(LOG_SNAPSHOT))
                    && name.ends_with(".tmp")
                {
                    let _ = fs::remove_file(f.path());
                }
            }
        }
        // The old layout, left by a migration killed after its commit.
        let old = self.root.join(migrate::OLD_ROUNDS);
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        // A writer killed after writing its reject report but before its commit leaves
        // rejects/bNNNNNN-*.csv that the next batch with that number would seem to own.
        let named_reports: std::collections::HashSet<&str> = self
            .manifest
            .batches
            .iter()
            .filter_map(|b| b.rejects.as_deref())
            .collect();
        if let Ok(reports) = fs::read_dir(self.root.join("rejects")) {
            for r in reports.flatten() {
                let name = r.file_name().to_string_lossy().into_owned();
                let rel = format!("rejects/{name}");
                if name.starts_with('b') && !named_reports.contains(rel.as_str()) {
                    let p = r.path();
                    fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
        }
        Ok(())
    }

    /// The writer's table versions, or an error for a reader.
    fn writer_versions(&mut self) -> Result<&mut tables::Versions> {
        match (&self.writer_lock, &mut self.versions) {
            (Some(_), Some(v)) => Ok(v),
            _ => Err(Error::Usage("the store was opened read-only".into())),
        }
    }

    /// Commits a batch whose files are written and synced: one commit of its table
    /// makes its rows visible to pooltrack and to every Delta reader at once. Only a
    /// writer may commit. A file of the batch in another table (a collections batch's
    /// box manifest) follows into that table by a mirror commit (see [`tables`]).
    pub fn commit(&mut self, batch: Batch) -> Result<()> {
        let root = self.root.clone();
        tables::commit_batch(&root, self.writer_versions()?, &batch)?;
        let written: Vec<manifest::FileRef> = batch.files().cloned().collect();
        for table in tables::other_tables(&batch) {
            self.due.push(tables::Due {
                table,
                mirror: tables::Mirror {
                    batch: batch.id,
                    retraction: None,
                },
            });
        }
        self.manifest.batches.push(batch);
        let root = &self.root;
        let cache = self
            .stat_cache
            .get_or_insert_with(|| checked::StatCache::read(root));
        checked::record_in(root, cache, &written);
        self.make_mirrors();
        Ok(())
    }

    /// Retracts batch `batch`: commits a [`manifest::Retraction`] that takes the
    /// batch's files out of its table (writers only). The batch's rows stop counting
    /// everywhere and its sources may be ingested again; its files stay, as history.
    pub fn retract(&mut self, batch: u32, reason: &str, by: &str) -> Result<manifest::Retraction> {
        self.writer_versions()?;
        if reason.trim().is_empty() {
            return Err(Error::Usage(
                "a retraction needs a --reason: the log keeps why a batch was taken back".into(),
            ));
        }
        let Some(b) = self.manifest.batch(batch) else {
            let last = self.manifest.batches.last().map_or(0, |b| b.id);
            return Err(Error::Usage(format!(
                "there is no batch {batch} (the store's batches are 1 to {last}; pooltrack log lists them)"
            )));
        };
        if let Some(r) = self.manifest.retraction_of(batch) {
            return Err(Error::Usage(format!(
                "batch {} was already retracted at {} by {}: {}",
                b.id, r.at, r.by, r.reason
            )));
        }
        let r = manifest::Retraction {
            id: self.manifest.next_batch_id(),
            batch,
            reason: reason.trim().to_owned(),
            by: by.to_owned(),
            at: time::format(time::now(), self.zone),
        };
        let b = b.clone();
        let root = self.root.clone();
        tables::commit_retraction(&root, self.writer_versions()?, &b, &r)?;
        self.manifest.retractions.push(r.clone());
        // The batch's segments leave the runs that merged them (see `runs`): merge
        // its rounds' pieces again. Best effort, as after an ingest: runs are derived,
        // and readers read the segments of a retired run.
        if matches!(b.kind, BatchKind::Collections | BatchKind::Results) {
            let mut rounds: Vec<&str> = b.segments.iter().map(|s| s.round.as_str()).collect();
            rounds.dedup();
            for round in rounds {
                let _ = self.merge_runs(b.kind, round);
            }
        }
        for table in tables::other_tables(&b) {
            let never_added = |d: &tables::Due| {
                d.table == table && d.mirror.batch == b.id && d.mirror.retraction.is_none()
            };
            // A file never mirrored into its table has nothing to leave it.
            if self.due.iter().any(never_added) {
                self.due.retain(|d| !never_added(d));
                continue;
            }
            self.due.push(tables::Due {
                table,
                mirror: tables::Mirror {
                    batch: b.id,
                    retraction: Some(r.id),
                },
            });
        }
        self.make_mirrors();
        Ok(r)
    }

    /// Replaces the store's settings (writers only; applies to later batches).
    pub fn set_settings(&mut self, settings: Settings) -> Result<()> {
        let zone = crate::time::resolve_zone(&settings.time_zone)
            .map_err(Error::Usage)?
            .0;
        if !(settings.ct_cutoff > 0.0 && settings.ct_cutoff <= 100.0) {
            return Err(Error::Usage(
                "the Ct cut-off must be above 0 and at most 100".into(),
            ));
        }
        let root = self.root.clone();
        tables::commit_settings(&root, self.writer_versions()?, &settings)?;
        self.manifest.settings = settings;
        self.zone = zone;
        Ok(())
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How the store keys persons in its person indexes (by its format).
    pub fn person_keys(&self) -> index::PersonKeys {
        self.sidecars().keys
    }

    /// What the store's sidecars are (by its format).
    pub fn sidecars(&self) -> index::Sidecars {
        index::Sidecars::of_format(self.manifest.format)
    }

    /// What is committed.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The zone for times without an offset.
    pub fn zone(&self) -> Offset {
        self.zone
    }

    /// The store's cut-offs and deadlines (`pooltrack.toml`, defaults when absent).
    pub fn config(&self) -> Result<config::Config> {
        config::Config::load(&self.root)
    }

    /// Fails with [`Error::UnknownRound`] unless the store holds collections of `round`.
    pub fn require_round(&self, round: &str) -> Result<()> {
        let rounds = self.manifest.rounds();
        if rounds.contains(&round) {
            return Ok(());
        }
        let hint = if rounds.is_empty() {
            "; it holds no rounds yet".to_owned()
        } else {
            format!("; it holds: {}", rounds.join(", "))
        };
        Err(Error::UnknownRound {
            round: round.to_owned(),
            store: self.root.clone(),
            hint,
        })
    }
}

/// Whether the store folder holds segment files or tables (of any format).
pub(crate) fn has_data(root: &Path) -> bool {
    ["rounds", "population", "collections", "results"]
        .iter()
        .any(|d| fs::read_dir(root.join(d)).is_ok_and(|mut e| e.next().is_some()))
}

/// The damage of a store whose data has lost what says which of it is committed.
fn missing_log(root: &Path) -> Error {
    Error::damaged(
        root,
        format!(
            "{MANIFEST} and collections/{}/ are both missing but the store holds data: nothing says which batches are committed",
            delta::LOG
        ),
    )
}
