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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

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
            let cached = cache.files.get(&f.path).map(|(s, h)| (*s, h.as_str()));
            check_one(root, f, batch, stat, cached)
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

/// Refuses a manifest path outside the store's tables (see [`inside_segments`]).
pub(crate) fn inside(root: &Path, f: &FileRef, batch: u32) -> Result<()> {
    if inside_segments(&f.path) {
        return Ok(());
    }
    Err(Error::damaged(
        root,
        format!(
            "the manifest names {} for batch {batch}, which is not a segment file inside the store",
            f.path
        ),
    ))
}

/// Checks one committed file: inside the store, present (`stat`, when the caller has
/// taken it), of its size, and of its hash unless `cached` (its stat-cache entry)
/// vouches for it. `Some` with its stat when it was hashed just now.
fn check_one(
    root: &Path,
    f: &FileRef,
    batch: u32,
    stat: Option<Stat>,
    cached: Option<(Stat, &str)>,
) -> Result<Option<(String, Stat)>> {
    inside(root, f, batch)?;
    let path = root.join(&f.path);
    let stat = stat
        .map_or_else(|| stat_of(&path), Ok)
        .map_err(|_| Error::damaged(root, format!("{} of batch {batch} is missing", f.path)))?;
    if stat.bytes != f.bytes {
        return Err(Error::damaged(
            root,
            format!(
                "{} of batch {batch} has {} bytes, the manifest says {}",
                f.path, stat.bytes, f.bytes
            ),
        ));
    }
    if matches!(cached, Some((s, h)) if s == stat && h == f.xxh3) {
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
}

/// Checks a store's files as a command reads them, for a command that reads a few of
/// them (one person's rows): on a lab's day of batches, stating every one of thousands
/// of files, and parsing the stat cache of them all, is most of such a command's time.
/// The same checks as [`check_with`], file by file, each file once.
///
/// A command that turns out to read many files (the history of a person over rounds
/// whose first swabs are read from thousands of footers) has the stat cache parsed
/// once, and the log's files mapped by path, after [`SEARCHED`] look-ups: searching
/// the text for each file is a pass over all of it.
#[derive(Debug)]
pub(crate) struct OnRead {
    /// `verified.json` as read: a check parses only its file's entry.
    cache: Vec<u8>,
    /// The files checked so far.
    checked: Mutex<HashSet<String>>,
    /// Look-ups so far.
    lookups: AtomicUsize,
    /// The stat cache parsed, past [`SEARCHED`] look-ups.
    parsed: OnceLock<StatCache>,
    /// Each committed file's batch and place among the batch's files, by path, past
    /// [`SEARCHED`] look-ups.
    named: OnceLock<HashMap<String, (usize, usize)>>,
}

/// Look-ups answered by searching (the stat cache's text, the log's files) before both
/// are indexed once.
pub(crate) const SEARCHED: usize = 16;

impl OnRead {
    pub(crate) fn read(root: &Path) -> OnRead {
        OnRead {
            cache: fs::read(root.join(VERIFIED)).unwrap_or_default(),
            checked: Mutex::default(),
            lookups: AtomicUsize::new(0),
            parsed: OnceLock::new(),
            named: OnceLock::new(),
        }
    }

    /// Counts a look-up; whether the indexes should answer it.
    pub(crate) fn many(&self) -> bool {
        self.lookups.fetch_add(1, Ordering::Relaxed) >= SEARCHED
    }

    /// The committed files by path: (batch's place in the log, file's place among the
    /// batch's files), made from `manifest` on first use.
    pub(crate) fn named(&self, manifest: &Manifest) -> &HashMap<String, (usize, usize)> {
        self.named.get_or_init(|| {
            let mut by_path = HashMap::new();
            for (b, batch) in manifest.batches.iter().enumerate() {
                for (i, f) in batch.files().enumerate() {
                    by_path.entry(f.path.clone()).or_insert((b, i));
                }
            }
            by_path
        })
    }

    /// Checks `f` of batch `batch`, unless this store object has checked it already.
    pub(crate) fn check(&self, root: &Path, f: &FileRef, batch: u32) -> Result<()> {
        let checked = || self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked().contains(&f.path) {
            return Ok(());
        }
        let cached = match self.parsed.get() {
            Some(all) => all.files.get(&f.path).cloned(),
            None if checked().len() >= SEARCHED => self
                .parsed
                .get_or_init(|| serde_json::from_slice(&self.cache).unwrap_or_default())
                .files
                .get(&f.path)
                .cloned(),
            None => cached_entry(&self.cache, &f.path),
        };
        let fresh = check_one(
            root,
            f,
            batch,
            None,
            cached.as_ref().map(|(s, h)| (*s, h.as_str())),
        )?;
        if fresh.is_some() {
            // Rare (a file copied or touched): recorded so the next command need not
            // hash it again.
            record(root, std::slice::from_ref(f));
        }
        checked().insert(f.path.clone());
        Ok(())
    }
}

/// The stat-cache entry of `path` in `json` (`verified.json` as [`save`] writes it),
/// without parsing the others. `None` when there is none or it cannot be read, which
/// only costs a hash.
fn cached_entry(json: &[u8], path: &str) -> Option<(Stat, String)> {
    let key = serde_json::to_vec(path).ok()?;
    memchr::memmem::find_iter(json, &key).find_map(|at| {
        // A key of the map: after `{` or `,` and before `:` (a path never stands as a
        // value; the values are stats and hex hashes).
        let before = json.get(at.checked_sub(1)?)?;
        let rest = json.get(at + key.len()..)?.strip_prefix(b":")?;
        if !matches!(before, b'{' | b',') {
            return None;
        }
        let mut de = serde_json::Deserializer::from_slice(rest);
        <(Stat, String)>::deserialize(&mut de).ok()
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file_ref(root: &Path, path: &str, content: &[u8]) -> FileRef {
        let full = root.join(path);
        fs::create_dir_all(full.parent().expect("a folder")).expect("mkdir");
        fs::write(&full, content).expect("write");
        FileRef {
            path: path.to_owned(),
            bytes: content.len() as u64,
            xxh3: hash_file(&full).expect("hash"),
        }
    }

    #[test]
    fn a_cache_entry_is_found_without_parsing_the_others() {
        let mut cache = StatCache::default();
        let stat = |n| Stat {
            bytes: n,
            mtime_ns: i128::from(n) * 7,
            inode: n + 1,
        };
        for (i, p) in [
            "collections/R1/b000001.parquet",
            "collections/R1/b000011.parquet",
            "x\"y/b.tubes",
        ]
        .iter()
        .enumerate()
        {
            cache
                .files
                .insert((*p).to_owned(), (stat(i as u64 + 1), format!("{i:016x}")));
        }
        let json = serde_json::to_vec(&cache).expect("json");
        for (p, (s, h)) in &cache.files {
            assert_eq!(cached_entry(&json, p), Some((*s, h.clone())), "{p}");
        }
        // Neither a path that ends another one nor one the cache lacks.
        assert_eq!(cached_entry(&json, "R1/b000001.parquet"), None);
        assert_eq!(cached_entry(&json, "collections/R1/b000002.parquet"), None);
        assert_eq!(
            cached_entry(b"not json", "collections/R1/b000001.parquet"),
            None
        );
    }

    #[test]
    fn past_the_searched_look_ups_the_parsed_cache_still_finds_an_altered_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let files: Vec<FileRef> = (0..SEARCHED + 4)
            .map(|i| {
                let path = format!("collections/R1/b{i:06}.parquet");
                file_ref(root, &path, format!("rows of batch {i:02}").as_bytes())
            })
            .collect();
        record(root, &files);
        let (last, healthy) = files.split_last().expect("files");
        // Altered in a new file of the same size put in its place.
        let copy = root.join("copy");
        fs::write(&copy, format!("ROWS of batch {}", SEARCHED + 3)).expect("copy");
        fs::rename(&copy, root.join(&last.path)).expect("replace");

        let on_read = OnRead::read(root);
        for (i, f) in (1u32..).zip(healthy) {
            on_read.check(root, f, i).expect("healthy");
        }
        assert!(
            on_read.parsed.get().is_some(),
            "parsed once past the searches"
        );
        let err = on_read.check(root, last, 99).expect_err("altered");
        assert!(err.to_string().contains("altered"), "{err}");
    }

    #[test]
    fn files_are_checked_as_read_and_a_touched_one_is_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let kept = file_ref(root, "collections/R1/b000001.parquet", b"rows of batch one");
        let touched = file_ref(root, "collections/R1/b000002.parquet", b"rows of batch two");
        let altered = file_ref(root, "results/R1/b000003.parquet", b"results of three");
        record(root, &[kept.clone(), touched.clone(), altered.clone()]);

        // The same bytes in a new file put in its place: another stat (a new inode;
        // a modification time may not move within a clock tick), the same hash.
        let copy = root.join("copy");
        fs::write(&copy, b"rows of batch two").expect("copy");
        fs::rename(&copy, root.join(&touched.path)).expect("replace");
        fs::write(root.join(&altered.path), b"results of THREE").expect("alter");
        let before = StatCache::read(root).files[&touched.path].0;

        let on_read = OnRead::read(root);
        on_read.check(root, &kept, 1).expect("kept");
        on_read.check(root, &touched, 2).expect("touched");
        let err = on_read.check(root, &altered, 3).expect_err("altered");
        assert!(err.to_string().contains("altered"), "{err}");
        assert!(err.to_string().contains(&altered.path), "{err}");
        let after = StatCache::read(root).files[&touched.path].0;
        assert_ne!(before, after, "the touched file's new stat is recorded");

        // A file checked once is not checked again by the same store object.
        fs::remove_file(root.join(&kept.path)).expect("remove");
        on_read.check(root, &kept, 1).expect("checked before");
        let err = OnRead::read(root)
            .check(root, &kept, 1)
            .expect_err("missing");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
