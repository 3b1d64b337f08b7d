//! The durable store: Parquet segments named by a manifest.
//!
//! ```text
//! STORE/
//!   MANIFEST.json                       what is committed (see [`manifest`])
//!   lock                                held by the one writer
//!   pooltrack.toml                      cut-offs and deadlines (optional, see [`config`])
//!   rounds/<round>/collections/b000001.parquet   rows of batch 1, in input order
//!   rounds/<round>/collections/b000001.tubes     sidecar tube index
//!   rounds/<round>/collections/b000001.persons   sidecar person index
//!   rounds/<round>/results/b000002.parquet
//!   rounds/<round>/results/b000002.tubes
//!   population/b000003.parquet          a population batch's register rows
//!   population/b000003.persons          sidecar person index
//!   rejects/b000001-collections.csv     rows a batch refused or flagged
//! ```
//!
//! A writer takes `lock`, writes a batch's new files, fsyncs them, and commits by
//! renaming a new `MANIFEST.json` into place; committed files are never changed. A
//! reader reads the manifest once and only the files it names, so it sees the store
//! before or after a batch, never between, and needs no lock.

pub mod checked;
pub mod config;
pub mod fsutil;
pub mod index;
mod keyed;
pub mod labels;
mod lookup;
pub mod manifest;
pub mod read;
pub mod segment;
pub mod verify;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) use lookup::{CollectionIndex, ResultIndex};
pub use lookup::{ResultFact, StoreIndex, TubeCursor, TubeFacts};
pub use manifest::{Batch, BatchKind, Manifest, PopulationSegment, Segment, Settings};

use crate::time::{self, Offset};
use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.json";
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

/// An open store.
pub struct Store {
    root: PathBuf,
    manifest: Manifest,
    zone: Offset,
    /// The locked lock file of a writer, held open for the store's life: the lock
    /// lasts as long as the file is open. `None` for a reader, which may not commit.
    writer_lock: Option<File>,
}

impl Store {
    /// Opens an existing store for reading; checks that every file the manifest names
    /// is there with its recorded size.
    pub fn open(root: &Path) -> Result<Store> {
        let path = root.join(MANIFEST);
        if !path.exists() {
            if has_data(root) {
                return Err(Error::damaged(
                    root,
                    format!("{MANIFEST} is missing but the store holds data"),
                ));
            }
            return Err(Error::Usage(format!(
                "no store at {}: ingest a batch first, or give --store (or POOLTRACK_STORE)",
                root.display()
            )));
        }
        let store = Store::load(root, None)?;
        store.check_files()?;
        Ok(store)
    }

    /// Opens the store for writing, creating it if it does not exist. Only one writer
    /// at a time: a second gets [`Error::StoreBusy`] at once. Leftovers of a crashed
    /// writer (files no manifest names) are removed.
    pub fn open_writer(root: &Path) -> Result<Store> {
        Store::open_writer_with(root, WriterOptions::default())
    }

    /// Opens the store for writing as `opts` say: waiting up to `opts.wait` for another
    /// writer to finish (then [`Error::StoreBusy`] saying how long it waited), and
    /// creating the store only if `opts.create`; without it a missing store is a usage
    /// error (exit 2) and nothing is created.
    pub fn open_writer_with(root: &Path, opts: WriterOptions) -> Result<Store> {
        if !opts.create && !root.join(MANIFEST).exists() {
            if has_data(root) {
                return Err(Error::damaged(
                    root,
                    format!("{MANIFEST} is missing but the store holds data"),
                ));
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
        let store = if root.join(MANIFEST).exists() {
            Store::load(root, Some(lock))?
        } else if has_data(root) {
            return Err(Error::damaged(
                root,
                format!("{MANIFEST} is missing but the store holds data"),
            ));
        } else {
            let manifest = Manifest::default();
            let mut store = Store {
                root: root.to_path_buf(),
                zone: Offset::CHINA,
                manifest,
                writer_lock: Some(lock),
            };
            store.write_manifest()?;
            store
        };
        store.check_files()?;
        store.remove_leftovers()?;
        Ok(store)
    }

    fn load(root: &Path, lock: Option<File>) -> Result<Store> {
        let path = root.join(MANIFEST);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (manifest, zone) = Manifest::parse(&bytes).map_err(|why| Error::damaged(root, why))?;
        Ok(Store {
            root: root.to_path_buf(),
            manifest,
            zone,
            writer_lock: lock,
        })
    }

    fn check_files(&self) -> Result<()> {
        checked::check(&self.root, &self.manifest)
    }

    /// Removes segment files that no committed batch names: what a writer killed before
    /// its commit left behind.
    fn remove_leftovers(&self) -> Result<()> {
        let named: std::collections::HashSet<&str> = self
            .manifest
            .batches
            .iter()
            .flat_map(Batch::files)
            .map(|f| f.path.as_str())
            .collect();
        let mut dirs = vec![self.root.join("population")];
        if let Ok(rounds) = fs::read_dir(self.root.join("rounds")) {
            for round in rounds.flatten() {
                for table in ["collections", "results"] {
                    dirs.push(round.path().join(table));
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
                let ours = f.file_name().to_string_lossy().starts_with('b');
                if ours && !named.contains(rel.as_str()) {
                    fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                }
            }
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
        let tmp = self.root.join(MANIFEST).with_extension("tmp");
        if tmp.exists() {
            fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        Ok(())
    }

    /// Writes the manifest, in this pooltrack's format from now on; when the write
    /// fails, the manifest in memory keeps the format it had, as the one on disk does.
    fn write_manifest(&mut self) -> Result<()> {
        let old = std::mem::replace(&mut self.manifest.format, manifest::FORMAT);
        let written = serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| Error::io(self.root.join(MANIFEST), std::io::Error::other(e)))
            .and_then(|bytes| fsutil::write_atomic(&self.root.join(MANIFEST), &bytes));
        if written.is_err() {
            self.manifest.format = old;
        }
        written
    }

    /// Commits a batch whose files are written and synced: the manifest naming it is
    /// atomically put in place. Only a writer may commit.
    pub fn commit(&mut self, batch: Batch) -> Result<()> {
        if self.writer_lock.is_none() {
            return Err(Error::Usage("the store was opened read-only".into()));
        }
        let written: Vec<manifest::FileRef> = batch.files().cloned().collect();
        self.manifest.batches.push(batch);
        let res = self.write_manifest();
        if res.is_err() {
            self.manifest.batches.pop();
        } else {
            checked::record(&self.root, &written);
        }
        res
    }

    /// Retracts batch `batch`: appends a [`manifest::Retraction`] and commits the
    /// manifest atomically (writers only). The batch's rows stop counting everywhere
    /// and its sources may be ingested again; its files stay, as history.
    pub fn retract(&mut self, batch: u32, reason: &str, by: &str) -> Result<manifest::Retraction> {
        if self.writer_lock.is_none() {
            return Err(Error::Usage("the store was opened read-only".into()));
        }
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
        self.manifest.retractions.push(r.clone());
        if let Err(e) = self.write_manifest() {
            self.manifest.retractions.pop();
            return Err(e);
        }
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
        let old = std::mem::replace(&mut self.manifest.settings, settings);
        if let Err(e) = self.write_manifest() {
            self.manifest.settings = old;
            return Err(e);
        }
        self.zone = zone;
        Ok(())
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
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

/// Whether the store folder holds segment files (of rounds or of the population).
pub(crate) fn has_data(root: &Path) -> bool {
    ["rounds", "population"]
        .iter()
        .any(|d| fs::read_dir(root.join(d)).is_ok_and(|mut e| e.next().is_some()))
}
