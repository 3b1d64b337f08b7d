//! Checking that a store's files are the ones committed, cheaply enough to do on every
//! command.
//!
//! Every file's size and xxh3-64 hash are in the manifest. Hashing a 25-million-row
//! round on every lab batch job would cost more than the job, so, like git's index,
//! the store keeps a stat cache (`verified.json`): for each file whose hash has been
//! checked, its size, modification time and inode. A command hashes again only the
//! files whose stat no longer matches: any rewrite of a file changes its modification
//! time and is caught. Damage that leaves the stat alone (bit rot on the disk) is what
//! `pooltrack verify` looks for, by hashing everything.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::manifest::{FileRef, Manifest};
use crate::{Error, Result};

/// The stat cache's file name in the store.
pub(crate) const VERIFIED: &str = "verified.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    bytes: u64,
    mtime_ns: i128,
    inode: u64,
}

/// The stat cache as read from the store (see [`StatCache::read`]).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatCache {
    /// path → (stat when checked, hash it had).
    files: HashMap<String, (Stat, String)>,
}

fn stat_of(path: &Path) -> std::io::Result<Stat> {
    Ok(stat_from(&fs::metadata(path)?))
}

fn stat_from(m: &fs::Metadata) -> Stat {
    Stat {
        bytes: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        inode: m.ino(),
    }
}

/// xxh3-64 of a file's content, as the manifest writes it.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    super::fsutil::for_each_block(path, |block| h.update(block))?;
    Ok(format!("{:016x}", h.digest()))
}

impl StatCache {
    /// The store's stat cache; empty when it has none or it cannot be read. Read apart
    /// from [`check_with`], so a command can read it while it reads the logs.
    pub fn read(root: &Path) -> StatCache {
        fs::read(root.join(VERIFIED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

fn save(root: &Path, cache: &StatCache) {
    if let Ok(bytes) = serde_json::to_vec(cache) {
        super::fsutil::save_derived(root, VERIFIED, &bytes);
    }
}

/// Whether a manifest path is a plain relative path inside a table's folder
/// (`collections/`, `results/`, `population/`, `custody/`) or, in stores of formats 1 and 2,
/// `rounds/`: a damaged or forged record must not make pooltrack read (or serve) files
/// outside the store, or take a table's log for a segment.
pub(crate) fn inside_segments(path: &str) -> bool {
    let p = Path::new(path);
    let mut parts = p.components();
    matches!(parts.next(), Some(std::path::Component::Normal(first))
        if ["rounds", "population", "collections", "results", "custody"].iter().any(|t| first == *t))
        && parts.all(|c| matches!(c, std::path::Component::Normal(n) if n != super::delta::LOG))
}

/// Checks every file the manifest names: present, of its size, and (unless `cache`, the
/// store's stat cache as read, vouches for it) of its hash. The first damaged file is
/// named in the error. Returns the cache as it now is (with the files hashed just now),
/// for [`record_in`].
pub fn check_with(root: &Path, manifest: &Manifest, mut cache: StatCache) -> Result<StatCache> {
    let files: Vec<(&FileRef, u32)> = manifest
        .batches
        .iter()
        .flat_map(|b| b.files().map(move |f| (f, b.id)))
        .collect();
    let stats = stats_by_folder(root, &files);
    let checks: Vec<Result<Option<(String, Stat)>>> = files
        .par_iter()
        .zip(stats)
        .map(|(&(f, batch), stat)| {
            if !inside_segments(&f.path) {
                return Err(Error::damaged(
                    root,
                    format!(
                        "the manifest names {} for batch {batch}, which is not a segment file inside the store",
                        f.path
                    ),
                ));
            }
            let path = root.join(&f.path);
            let stat = stat.map_or_else(|| stat_of(&path), Ok).map_err(|_| {
                Error::damaged(root, format!("{} of batch {batch} is missing", f.path))
            })?;
            if stat.bytes != f.bytes {
                return Err(Error::damaged(
                    root,
                    format!(
                        "{} of batch {batch} has {} bytes, the manifest says {}",
                        f.path, stat.bytes, f.bytes
                    ),
                ));
            }
            if matches!(cache.files.get(&f.path), Some((s, h)) if *s == stat && *h == f.xxh3) {
                return Ok(None);
            }
            let hash = hash_file(&path).map_err(|e| Error::io(&path, e))?;
            if hash != f.xxh3 {
                return Err(Error::damaged(
                    root,
                    format!(
                        "{} of batch {batch} is altered: its content no longer matches the checksum the manifest recorded",
                        f.path
                    ),
                ));
            }
            Ok(Some((f.path.clone(), stat)))
        })
        .collect();
    let mut fresh = Vec::new();
    for c in checks {
        if let Some(v) = c? {
            fresh.push(v);
        }
    }
    if !fresh.is_empty() {
        let hashes: HashMap<&str, &str> = files
            .iter()
            .map(|(f, _)| (f.path.as_str(), f.xxh3.as_str()))
            .collect();
        for (path, stat) in fresh {
            let hash = hashes
                .get(path.as_str())
                .map_or(String::new(), |h| (*h).to_owned());
            cache.files.insert(path, (stat, hash));
        }
        cache.files.retain(|p, _| hashes.contains_key(p.as_str()));
        save(root, &cache);
    }
    Ok(cache)
}

/// The stat of each file of `files`, taken folder by folder: each folder listed once and
/// its files stated by name within it (`fstatat` on the open folder), rather than each
/// path walked from the root, which on a lab's day of batches is thousands of walks.
/// `None` for a file the listing did not show as a regular file (missing, a link, or a
/// path outside a folder): [`check_with`] states that one by its path.
fn stats_by_folder(root: &Path, files: &[(&FileRef, u32)]) -> Vec<Option<Stat>> {
    let mut folders: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for (i, (f, _)) in files.iter().enumerate() {
        if let Some((folder, name)) = f.path.rsplit_once('/') {
            folders.entry(folder).or_default().insert(name, i);
        }
    }
    // Listed one folder after another (a lab's day is thousands of files in one folder),
    // then stated on every core.
    let listed: Vec<(usize, fs::DirEntry)> = folders
        .iter()
        .flat_map(|(folder, names)| {
            let entries = fs::read_dir(root.join(folder))
                .into_iter()
                .flatten()
                .flatten();
            entries.filter_map(|e| Some((*names.get(e.file_name().to_str()?)?, e)))
        })
        .collect();
    let found: Vec<(usize, Stat)> = listed
        .par_iter()
        .filter_map(|(i, e)| {
            let m = e.metadata().ok().filter(fs::Metadata::is_file)?;
            Some((*i, stat_from(&m)))
        })
        .collect();
    let mut stats = vec![None; files.len()];
    for (i, s) in found {
        stats[i] = Some(s);
    }
    stats
}

/// Records files the writer has just written and hashed, so no later command hashes
/// them again.
pub fn record(root: &Path, written: &[FileRef]) {
    record_in(root, &mut StatCache::read(root), written);
}

/// [`record`] into the stat cache a writer holds: the file is written, not read again.
pub fn record_in(root: &Path, cache: &mut StatCache, written: &[FileRef]) {
    for f in written {
        if let Ok(stat) = stat_of(&root.join(&f.path)) {
            cache.files.insert(f.path.clone(), (stat, f.xxh3.clone()));
        }
    }
    save(root, cache);
}
