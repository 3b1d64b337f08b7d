//! The fold of settled rounds, kept between exports.
//!
//! A city's health-code system asks every morning; ten rounds of 25 M persons take most
//! of an export's time to read and fold, yet every round but the newest is settled: no
//! swab or result of it is later than the time asked about, so what it says of each
//! person no longer depends on that time. An export therefore saves the fold of the
//! rounds before the newest (one slot a person: 60 bytes in memory, 36 on disk for
//! most) in `STORE/health-codes.state`, and the next export that finds it still true
//! starts from it and folds only the rounds after it, reading the newest round while
//! it decodes the state.
//!
//! The state is derived data, like `verified.json`: nothing is lost without it, and it
//! is used only while every fact it was made from is unchanged:
//! - the same rounds, in the same order, at the start of the export's rounds, each with
//!   the same live segments (a batch added to an old round, retracted or rewritten by
//!   `compact` or `migrate` changes its fingerprint);
//! - the same `pooltrack.toml` and store settings (a specimen limit, a clearing rule or
//!   a cut-off changes what a round says);
//! - a time at or after the latest swab and report of those rounds (before it, some of
//!   their facts had not happened yet);
//! - every byte as written (an xxh3-64 over the footer and over each shard's bytes).
//!
//! Otherwise the export folds every round, as it would without the state, and saves a
//! new one, unless the state saved already folded more rounds (an export as of an
//! earlier time must not leave the next morning's a shorter state).
//!
//! Layout: the magic `PTSTATE1`, each shard's bytes ([`Range::save`]), the footer (JSON:
//! the rounds, their fingerprints and sizes, the time the state holds from, and each
//! shard's place and checksum), the footer's length and xxh3-64 as two little-endian
//! `u64`, and the magic again. It is written under a temporary name and
//! renamed, so a reader finds the old state or the new; two exports that save at once
//! each rename a whole file.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use super::fold::{Range, SHARDS};
use crate::store::Store;
use crate::store::fsutil::DirectWriter;
use crate::time::Millis;
use crate::{Error, Result};

/// The state's file name in the store's folder.
pub const FILE: &str = crate::store::CODES_STATE;

const MAGIC: &[u8; 8] = b"PTSTATE1";

/// Bumped whenever what a slot means changes: an older state is then folded anew.
const VERSION: u32 = 2;

/// What the state was made from, and where its shards are.
#[derive(Debug, Serialize, Deserialize)]
struct Footer {
    version: u32,
    /// xxh3-128 of the store settings and `pooltrack.toml`, hex ([`Fingerprints`]).
    config: String,
    /// The latest swab or report of its rounds: the state holds for any time from it.
    horizon: Millis,
    rounds: Vec<Folded>,
    shards: Vec<Shard>,
}

/// A round the state folded.
#[derive(Debug, Serialize, Deserialize)]
struct Folded {
    name: String,
    fingerprint: String,
    rows: usize,
    results: usize,
    late: Vec<(u32, Millis)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Shard {
    offset: u64,
    bytes: u64,
    slots: usize,
    extras: usize,
    xxh3: String,
}

/// What the store's facts are now: of the settings and rules, and of each round.
pub(super) struct Fingerprints {
    config: String,
    rounds: Vec<String>,
}

impl Fingerprints {
    /// The fingerprints of `rounds` (names, in fold order) and of the store's rules.
    pub(super) fn of(store: &Store, rounds: &[(String, Millis)]) -> Result<Fingerprints> {
        let mut h = Xxh3::new();
        h.update(&VERSION.to_le_bytes());
        h.update(&store.manifest().format.to_le_bytes());
        let settings = serde_json::to_vec(&store.manifest().settings)
            .map_err(|e| Error::Usage(format!("the store settings: {e}")))?;
        put(&mut h, &settings);
        let config = serde_json::to_vec(&store.config()?)
            .map_err(|e| Error::Usage(format!("pooltrack.toml: {e}")))?;
        put(&mut h, &config);
        let config = format!("{:032x}", h.digest128());
        let rounds = rounds
            .iter()
            .map(|(name, _)| {
                let mut h = Xxh3::new();
                put(&mut h, name.as_bytes());
                for (kind, seg, batch) in store.manifest().segments(Some(name)) {
                    h.update(&batch.to_le_bytes());
                    put(&mut h, kind.as_str().as_bytes());
                    put(&mut h, seg.parquet.path.as_bytes());
                    put(&mut h, seg.parquet.xxh3.as_bytes());
                    h.update(&seg.rows.to_le_bytes());
                    h.update(&seg.controls.to_le_bytes());
                    for p in &seg.failed_plates {
                        for text in [&p.lab, &p.plate, &p.reason] {
                            put(&mut h, text.as_bytes());
                        }
                    }
                }
                format!("{:032x}", h.digest128())
            })
            .collect();
        Ok(Fingerprints { config, rounds })
    }
}

/// A field with its length first, so that two lists of fields never hash alike.
fn put(h: &mut Xxh3, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The fold of the first rounds, read back.
pub(super) struct Saved {
    /// Rounds it folded: the first of the export's.
    pub rounds: usize,
    /// The latest swab or report of those rounds.
    pub horizon: Millis,
    pub state: Vec<Range>,
    /// Per round: collection rows and result rows.
    pub sizes: Vec<(usize, usize)>,
    /// Per round, the late result rows.
    pub late: Vec<Vec<(u32, Millis)>>,
}

fn path(store: &Store) -> PathBuf {
    store.root().join(FILE)
}

/// A saved state whose footer holds (see the module documentation), its shards not
/// read yet: the caller may read the round after it meanwhile.
pub(super) struct Found {
    file: File,
    footer: Footer,
}

/// The saved fold of the first of `rounds`, when its footer holds as of `as_of`;
/// `None` otherwise, or when there is none or its footer does not read back.
pub(super) fn open(
    store: &Store,
    rounds: &[(String, Millis)],
    now: &Fingerprints,
    as_of: Millis,
) -> Option<Found> {
    let file = File::open(path(store)).ok()?;
    let footer = footer_of(&file)?;
    let k = footer.rounds.len();
    let holds = footer.version == VERSION
        && footer.config == now.config
        && footer.horizon <= as_of
        && (1..=rounds.len()).contains(&k)
        && footer.shards.len() == SHARDS as usize
        && footer
            .rounds
            .iter()
            .zip(rounds.iter().zip(&now.rounds))
            .all(|(f, ((name, _), fp))| f.name == *name && f.fingerprint == *fp);
    holds.then_some(Found { file, footer })
}

impl Found {
    /// How many rounds it folded: the first of the export's.
    pub(super) fn rounds(&self) -> usize {
        self.footer.rounds.len()
    }

    /// Its shards, on all cores; `None` when one does not read back as written.
    pub(super) fn read(self) -> Option<Saved> {
        let Found { file, footer } = self;
        let sizes: Vec<(usize, usize)> =
            footer.rounds.iter().map(|r| (r.rows, r.results)).collect();
        let state = footer
            .shards
            .par_iter()
            .map(|s| {
                let mut bytes = vec![0u8; usize::try_from(s.bytes).ok()?];
                file.read_exact_at(&mut bytes, s.offset).ok()?;
                if format!("{:016x}", xxh3_64(&bytes)) != s.xxh3 {
                    return None;
                }
                Range::restore(&bytes, s.slots, s.extras, &sizes)
            })
            .collect::<Option<Vec<Range>>>()?;
        Some(Saved {
            rounds: footer.rounds.len(),
            horizon: footer.horizon,
            state,
            sizes,
            late: footer.rounds.into_iter().map(|r| r.late).collect(),
        })
    }
}

/// How many rounds the saved state folded, when its footer reads back, whether or not
/// it holds now.
fn saved_rounds(store: &Store) -> Option<usize> {
    let file = File::open(path(store)).ok()?;
    footer_of(&file).map(|f| f.rounds.len())
}

/// The footer of a state file, when it reads back as written.
fn footer_of(file: &File) -> Option<Footer> {
    let len = file.metadata().ok()?.len();
    let mut tail = [0u8; 24];
    file.read_exact_at(&mut tail, len.checked_sub(24)?).ok()?;
    let (lens, magic) = tail.split_at(16);
    if magic != MAGIC {
        return None;
    }
    let footer_len = u64::from_le_bytes(lens[..8].try_into().ok()?);
    let footer_sum = u64::from_le_bytes(lens[8..].try_into().ok()?);
    let mut footer = vec![0u8; usize::try_from(footer_len).ok()?];
    file.read_exact_at(&mut footer, len.checked_sub(24)?.checked_sub(footer_len)?)
        .ok()?;
    if xxh3_64(&footer) != footer_sum {
        return None;
    }
    let footer: Footer = serde_json::from_slice(&footer).ok()?;
    Some(footer)
}

/// Saves `state`, the fold of the first `sizes.len()` of `rounds`, which holds from
/// `horizon` on, unless the state saved already folded more rounds: an export as of
/// an earlier time (an old round's report, an appeal) must not leave the next
/// morning's export a shorter state. Best effort: a store on a read-only disk still
/// exports.
pub(super) fn save(
    store: &Store,
    rounds: &[(String, Millis)],
    now: &Fingerprints,
    horizon: Millis,
    sizes: &[(usize, usize)],
    late: &[Vec<(u32, Millis)>],
    state: &[Range],
) {
    if saved_rounds(store).is_some_and(|n| n > sizes.len()) {
        return;
    }
    let tmp = store
        .root()
        .join(format!("{FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        // Private as every file of the store (hashes of person ids and their rows), and
        // written past the page cache: 0.9 GB at 25 M persons went into the cache at a
        // quarter of the disk's speed on this project's virtual machine.
        let mut f = DirectWriter::create(&tmp).map_err(std::io::Error::other)?;
        f.write_all(MAGIC)?;
        let mut offset = MAGIC.len() as u64;
        let mut shards = Vec::with_capacity(state.len());
        // Two shards encoded at a time (one a core), so that the bytes of the whole state
        // are never held beside it.
        for pair in state.chunks(2) {
            let encoded: Vec<(Vec<u8>, u64)> = pair
                .par_iter()
                .map(|r| {
                    let bytes = r.save();
                    let sum = xxh3_64(&bytes);
                    (bytes, sum)
                })
                .collect();
            for ((bytes, sum), r) in encoded.iter().zip(pair) {
                f.write_all(bytes)?;
                let (slots, extras) = r.counts();
                shards.push(Shard {
                    offset,
                    bytes: bytes.len() as u64,
                    slots,
                    extras,
                    xxh3: format!("{sum:016x}"),
                });
                offset += bytes.len() as u64;
            }
        }
        let footer = Footer {
            version: VERSION,
            config: now.config.clone(),
            horizon,
            rounds: rounds
                .iter()
                .zip(&now.rounds)
                .zip(sizes.iter().zip(late))
                .map(|(((name, _), fp), (&(rows, results), late))| Folded {
                    name: name.clone(),
                    fingerprint: fp.clone(),
                    rows,
                    results,
                    late: late.clone(),
                })
                .collect(),
            shards,
        };
        let footer = serde_json::to_vec(&footer)?;
        f.write_all(&footer)?;
        f.write_all(&(footer.len() as u64).to_le_bytes())?;
        f.write_all(&xxh3_64(&footer).to_le_bytes())?;
        f.write_all(MAGIC)?;
        f.finish()?;
        Ok(())
    };
    let written = write().is_ok() && fs::rename(&tmp, path(store)).is_ok();
    if !written {
        let _ = fs::remove_file(&tmp);
    }
}
