//! Runs: the sidecar indexes of a round's consecutive segments merged into one.
//!
//! Labs ingest a round in many batches (a batch every few minutes, all day), and each
//! batch is a segment with its own sorted sidecars. Whole-round reads merge the round's
//! sidecars (tube numbering, person grouping) and each new batch's checks search every
//! one of them, so the cost of both grew with the number of batches: at 25 M persons in
//! 64 batches `status` took 2.5 s against 0.4 s in one. A run holds the sidecars of
//! consecutive segments merged, each record's row renumbered from the run's first
//! segment, the records in the order a merge of the segments visits them (by key, equal
//! keys segment by segment): a reader given a run in place of its segments reads the
//! same records in the same order (`Store::index_of`).
//!
//! Runs are derived data, kept in a folder of their own beside the segments' sidecars
//! and named by what they cover (first batch, last batch, number of segments):
//!
//! ```text
//! collections/_pooltrack/<round>/runs/r000003-000018-16.tubes
//! collections/_pooltrack/<round>/runs/r000003-000018-16.persons
//! results/_pooltrack/<round>/runs/r000004-000031-8.tubes
//! ```
//!
//! A folder of their own because every reader lists them: the sidecars' folder of a
//! lab's day holds thousands of files, and listing it was a tenth of a person's
//! look-up. Stores made before kept their runs among the sidecars: readers read them
//! there while the round has no `runs` folder, and the round's next writer moves them
//! into one (gathered in `runs.tmp`, then renamed, so a crash leaves either folder
//! whole and the next writer goes on).
//!
//! No commit names them, and nothing is lost without them. A run is used only while the
//! round's live segments from its first batch to its last are exactly as many as its
//! name says (a retraction of one of them retires it) and its records are as many as
//! those segments' rows; otherwise readers read the segments. `verify` checks every run
//! in use against a merge of its segments.
//!
//! A writer merges after each commit ([`Store::merge_runs`]), size-tiered as an LSM
//! tree is: pieces (runs or single segments) fall in size classes a factor of
//! [`FAN_IN`] apart, and when [`FAN_IN`] pieces of the newest piece's class have
//! gathered at the round's end they are merged into one, with any smaller pieces among
//! them. So a row is rewritten about once per class (six at 25 M rows), a round is read
//! as a few pieces of each class, and a small batch into a large round merges little.
//! A run is written under a temporary name, fsynced and renamed, so a crash leaves none
//! half written; runs no longer used are removed.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::index::{self, IndexFile, Kind};
use super::merge::merge_scans;
use super::{BatchKind, Segment, Store, fsutil};
use crate::{Error, Result};

/// Pieces of one size class merged at a time, and the factor between classes.
pub const FAN_IN: usize = 4;

/// Rows of the smallest size class's largest piece, over [`FAN_IN`]: pieces below
/// 65,536 rows are of class 0.
const CLASS_ROWS: u64 = 16_384;

/// What a run covers: the round's live segments from batch `first` to batch `last`,
/// `segments` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunName {
    /// The batch of its first segment.
    pub first: u32,
    /// The batch of its last segment.
    pub last: u32,
    /// How many segments it merges.
    pub segments: u32,
}

/// Extension of a run's tube index.
const TUBES: &str = "tubes";
/// Extension of a run's person index (collections only).
const PERSONS: &str = "persons";
/// Start of a run being written.
const TEMPORARY: &str = "tmp-r";
/// The folder of a round's runs, in its sidecars' folder.
pub(crate) const RUNS: &str = "runs";
/// Where a writer gathers the runs of an older store before renaming it to [`RUNS`].
const GATHERING: &str = "runs.tmp";

impl RunName {
    /// The run's file name with extension `ext`.
    fn file(self, ext: &str) -> String {
        format!(
            "r{:06}-{:06}-{}.{ext}",
            self.first, self.last, self.segments
        )
    }

    /// The run and extension a file name is of, if it is a run's.
    ///
    /// ```
    /// use pooltrack::store::runs::RunName;
    /// let (run, ext) = RunName::parse("r000003-000018-16.persons").expect("a run");
    /// assert_eq!((run.first, run.last, run.segments, ext), (3, 18, 16, "persons"));
    /// assert!(RunName::parse("b000003.persons").is_none());
    /// assert!(RunName::parse("r3-18-16.persons").is_none());
    /// ```
    pub fn parse(name: &str) -> Option<(RunName, &str)> {
        let (stem, ext) = name.strip_prefix('r')?.split_once('.')?;
        let mut parts = stem.split('-').map(|p| p.parse::<u32>().ok());
        let run = RunName {
            first: parts.next()??,
            last: parts.next()??,
            segments: parts.next()??,
        };
        let ext = [TUBES, PERSONS].into_iter().find(|&e| e == ext)?;
        // Only the name the run would be written under: one file per run.
        (run.segments > 0 && run.first <= run.last && run.file(ext) == name).then_some((run, ext))
    }
}

/// A sidecar with the row its rows start at in the run being written or checked.
type Based = (Arc<IndexFile>, u32);

/// A run's tube index, and its person index for collections.
pub(crate) type RunFiles = (Arc<IndexFile>, Option<Arc<IndexFile>>);

/// A run's files, open.
pub(crate) struct OpenRun {
    pub(crate) name: RunName,
    pub(crate) tubes: Arc<IndexFile>,
    /// The person index of a collections run.
    pub(crate) persons: Option<Arc<IndexFile>>,
}

/// The runs a reader has opened, by folder: opened once per store object, so that
/// every read of a round in one command sees the same pieces even while a writer
/// merges and removes runs beside it (an open run stays readable when removed).
#[derive(Default)]
pub(crate) struct RunCache(Mutex<HashMap<PathBuf, Arc<Vec<OpenRun>>>>);

impl RunCache {
    /// The runs of the runs folder `dir`, opened on the first call.
    fn get(&self, dir: &Path, kind: BatchKind) -> Arc<Vec<OpenRun>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(dir.to_path_buf())
            .or_insert_with(|| Arc::new(open_runs(&in_use(dir), kind)))
            .clone()
    }

    /// Forgets the runs of `dir` (a writer has changed them).
    fn forget(&self, dir: &Path) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(dir);
    }
}

/// The file kinds of a table's runs: (extension, kind).
fn files_of(kind: BatchKind) -> &'static [(&'static str, Kind)] {
    match kind {
        BatchKind::Collections => &[(TUBES, Kind::CollectionTubes), (PERSONS, Kind::Persons)],
        _ => &[(TUBES, Kind::ResultTubes)],
    }
}

/// Opens the runs whose every file is in `dir` and whole. A run that cannot be opened
/// (removed by a writer meanwhile, or damaged) is left out: its segments are read.
fn open_runs(dir: &Path, kind: BatchKind) -> Vec<OpenRun> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<RunName> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            RunName::parse(&name).and_then(|(r, ext)| (ext == TUBES).then_some(r))
        })
        .collect();
    names.sort_unstable();
    names
        .into_iter()
        .filter_map(|name| {
            let open = |ext: &str, k: Kind| IndexFile::open(&dir.join(name.file(ext)), k).ok();
            let files = files_of(kind);
            let tubes = Arc::new(open(files[0].0, files[0].1)?);
            let persons = match files.get(1) {
                Some(&(ext, k)) => Some(Arc::new(open(ext, k)?)),
                None => None,
            };
            Some(OpenRun {
                name,
                tubes,
                persons,
            })
        })
        .collect()
}

/// One of a round's segments, as a cover sees it.
pub(crate) struct Member<'a> {
    /// Its batch.
    pub(crate) batch: u32,
    pub(crate) segment: &'a Segment,
    /// Its place among the segments [`rounds`] went through.
    pub(crate) position: usize,
}

/// One table's live segments of one round, in manifest order.
pub(crate) struct Round<'a> {
    pub(crate) kind: BatchKind,
    pub(crate) members: Vec<Member<'a>>,
}

/// The collections and results segments of `only` one round (or of all), each
/// table's of each round together, in manifest order.
pub(crate) fn rounds<'a>(manifest: &'a super::Manifest, only: Option<&'a str>) -> Vec<Round<'a>> {
    let mut rounds: Vec<Round<'a>> = Vec::new();
    let segments = manifest
        .segments(only)
        .filter(|(k, _, _)| matches!(k, BatchKind::Collections | BatchKind::Results));
    for (position, (kind, segment, batch)) in segments.enumerate() {
        let member = Member {
            batch,
            segment,
            position,
        };
        match rounds
            .iter_mut()
            .find(|r| r.kind == kind && r.members[0].segment.round == segment.round)
        {
            Some(r) => r.members.push(member),
            None => rounds.push(Round {
                kind,
                members: vec![member],
            }),
        }
    }
    rounds
}

impl Member<'_> {
    /// Records its tube index holds, as far as the manifest tells: a results segment's
    /// plate controls have none. `None` for a collections segment, whose tube index
    /// holds a record per run of a tube's rows.
    fn tube_records(&self, kind: BatchKind) -> Option<u64> {
        (kind != BatchKind::Collections)
            .then(|| self.segment.rows.saturating_sub(self.segment.controls))
    }
}

/// A piece of a round: one segment, or a run of several.
pub(crate) struct Piece<'r> {
    /// The members it covers, as positions in the round's list.
    pub(crate) members: Range<usize>,
    pub(crate) run: Option<&'r OpenRun>,
}

/// Covers a round's members (one table's live segments of the round, in manifest
/// order) with the usable runs among `runs` and single segments: at each member the
/// longest usable run starting there. Runs are nested or apart (each was merged from
/// whole pieces), so this uses every run that covers most.
pub(crate) fn cover<'r>(
    kind: BatchKind,
    members: &[Member<'_>],
    runs: &'r [OpenRun],
) -> Vec<Piece<'r>> {
    let at: HashMap<u32, usize> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (m.batch, i))
        .collect();
    let mut longest: HashMap<usize, (usize, &OpenRun)> = HashMap::new();
    for run in runs {
        let (Some(&i), Some(&j)) = (at.get(&run.name.first), at.get(&run.name.last)) else {
            continue;
        };
        if j < i || j - i + 1 != run.name.segments as usize || !usable(kind, &members[i..=j], run) {
            continue;
        }
        let e = longest.entry(i).or_insert((j, run));
        if j > e.0 {
            *e = (j, run);
        }
    }
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < members.len() {
        let j = longest.get(&i).map_or(i, |&(j, _)| j);
        pieces.push(Piece {
            members: i..j + 1,
            run: longest.get(&i).map(|&(_, run)| run),
        });
        i = j + 1;
    }
    pieces
}

/// Whether a run's record counts agree with the segments it names.
fn usable(kind: BatchKind, members: &[Member<'_>], run: &OpenRun) -> bool {
    let rows: u64 = members.iter().map(|m| m.segment.rows).sum();
    if let Some(p) = &run.persons {
        return p.len() as u64 == rows && kind == BatchKind::Collections;
    }
    let records: Option<u64> = members.iter().map(|m| m.tube_records(kind)).sum();
    records == Some(run.tubes.len() as u64)
}

/// The folder of a round's runs: [`RUNS`] in its segments' sidecars' folder.
pub(crate) fn dir_of(root: &Path, members: &[Member<'_>]) -> Option<PathBuf> {
    let first = members.first()?;
    Path::new(&first.segment.tubes.path)
        .parent()
        .map(|p| root.join(p).join(RUNS))
}

/// The folder a round's runs are read from: `dir` (see [`dir_of`]), or, in a store
/// whose round has no runs folder yet, the sidecars' folder that held them before.
fn in_use(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(sidecars) if !dir.is_dir() => sidecars.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// Gives the round whose runs folder is `dir` that folder, moving into it the runs an
/// older store kept among the sidecars: gathered in [`GATHERING`] (which a writer
/// killed before had perhaps begun), then renamed, each step made durable.
fn make_runs_folder(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let Some(sidecars) = dir.parent() else {
        return Ok(());
    };
    let gathering = sidecars.join(GATHERING);
    fsutil::create_dir_all(&gathering)?;
    for e in fs::read_dir(sidecars)
        .map_err(|e| Error::io(sidecars, e))?
        .flatten()
    {
        let name = e.file_name();
        if name.to_str().and_then(RunName::parse).is_some() {
            let to = gathering.join(&name);
            fs::rename(e.path(), &to).map_err(|e| Error::io(&to, e))?;
        }
    }
    fsutil::sync_dir(&gathering)?;
    fs::rename(&gathering, dir).map_err(|e| Error::io(dir, e))?;
    fsutil::sync_dir(sidecars)
}

impl Store {
    /// The runs of the folder `dir` of a `kind` round, as this store object first saw
    /// them.
    pub(crate) fn runs_in(&self, dir: &Path, kind: BatchKind) -> Arc<Vec<OpenRun>> {
        self.runs.get(dir, kind)
    }

    /// Merges the newest pieces of `round`'s `kind` segments as the size classes call
    /// for (see the module's documentation), then removes the round's runs that are no
    /// longer used. Writers only; after a commit. The batch is committed whatever this
    /// returns: runs are derived, and the next writer merges again.
    pub fn merge_runs(&mut self, kind: BatchKind, round: &str) -> Result<Merged> {
        self.merge_runs_with(kind, round, false)
    }

    /// Merges every piece of `round`'s `kind` segments into one run, whatever their
    /// size classes (`pooltrack compact`: a round whose batches have all come reads
    /// fastest as one piece), then removes the runs no longer used. Writers only.
    pub fn compact_runs(&mut self, kind: BatchKind, round: &str) -> Result<Merged> {
        self.merge_runs_with(kind, round, true)
    }

    fn merge_runs_with(&mut self, kind: BatchKind, round: &str, whole: bool) -> Result<Merged> {
        if self.writer_lock.is_none() {
            return Err(Error::Usage("the store was opened read-only".into()));
        }
        let root = self.root.clone();
        let members: Vec<Member<'_>> = rounds(&self.manifest, Some(round))
            .into_iter()
            .find(|r| r.kind == kind)
            .map(|r| r.members)
            .unwrap_or_default();
        let mut merged = Merged::default();
        let Some(dir) = dir_of(&root, &members) else {
            return Ok(merged);
        };
        if members.len() > 1 {
            make_runs_folder(&dir)?;
        }
        let runs = open_runs(&dir, kind);
        let mut pieces: Vec<(Range<usize>, Option<RunName>)> = cover(kind, &members, &runs)
            .into_iter()
            .map(|p| (p.members, p.run.map(|r| r.name)))
            .collect();
        let mut written: Vec<OpenRun> = Vec::new();
        loop {
            let rows: Vec<u64> = pieces
                .iter()
                .map(|(m, _)| members[m.clone()].iter().map(|m| m.segment.rows).sum())
                .collect();
            let group = if whole {
                (rows.len() > 1).then_some(0..rows.len())
            } else {
                plan(&rows)
            };
            let Some(group) = group else { break };
            let span = pieces[group.start].0.start..pieces[group.end - 1].0.end;
            let name = RunName {
                first: members[span.start].batch,
                last: members[span.end - 1].batch,
                segments: u32::try_from(span.len()).unwrap_or(u32::MAX),
            };
            let sources: Vec<Source> = pieces[group.clone()]
                .iter()
                .map(|(m, run)| {
                    let base = members[span.start..m.start]
                        .iter()
                        .map(|m| m.segment.rows)
                        .sum::<u64>();
                    let run = run.and_then(|n| {
                        written
                            .iter()
                            .chain(&runs)
                            .find(|r| r.name == n)
                            .map(|r| (r.tubes.clone(), r.persons.clone()))
                    });
                    Source::open(&root, kind, &members[m.start], run, base)
                })
                .collect::<Result<_>>()?;
            let run = write_run(&dir, kind, name, &sources)?;
            merged.runs += 1;
            merged.records +=
                run.tubes.len() as u64 + run.persons.as_ref().map_or(0, |p| p.len() as u64);
            written.push(run);
            pieces.splice(group, [(span, Some(name))]);
        }
        let used: Vec<RunName> = pieces.iter().filter_map(|p| p.1).collect();
        merged.removed = remove_unused(&dir, &used)?;
        merged.pieces = pieces.len();
        merged.segments = members.len();
        self.runs.forget(&dir);
        Ok(merged)
    }
}

/// What [`Store::merge_runs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Merged {
    /// Runs written.
    pub runs: usize,
    /// Records written into them.
    pub records: u64,
    /// Run files removed as no longer used.
    pub removed: usize,
    /// The round's segments of the table.
    pub segments: usize,
    /// The pieces (runs and single segments) they read as now.
    pub pieces: usize,
}

/// The size class of a piece of `rows` rows.
fn class(rows: u64) -> u32 {
    let mut n = rows.max(CLASS_ROWS) / CLASS_ROWS;
    let mut c = 0;
    while n >= FAN_IN as u64 {
        n /= FAN_IN as u64;
        c += 1;
    }
    c
}

/// The pieces to merge next, given each piece's rows in round order: the newest pieces
/// back to the last piece of a larger class than the newest's, when [`FAN_IN`] of
/// them are of the newest's class.
fn plan(rows: &[u64]) -> Option<Range<usize>> {
    let newest = class(*rows.last()?);
    let start = rows
        .iter()
        .rposition(|&r| class(r) > newest)
        .map_or(0, |i| i + 1);
    let same = rows[start..]
        .iter()
        .filter(|&&r| class(r) == newest)
        .count();
    (same >= FAN_IN).then_some(start..rows.len())
}

/// One piece's sidecars as the source of a merge, with the row its rows start at in
/// the run being written.
struct Source {
    tubes: Arc<IndexFile>,
    persons: Option<Arc<IndexFile>>,
    base: u32,
}

impl Source {
    /// A run's files, or else the segment's own sidecars.
    fn open(
        root: &Path,
        kind: BatchKind,
        member: &Member<'_>,
        run: Option<RunFiles>,
        base: u64,
    ) -> Result<Source> {
        let base = u32::try_from(base)
            .map_err(|_| Error::damaged(root, "a round holds more than 4,294,967,295 rows"))?;
        if let Some((tubes, persons)) = run {
            return Ok(Source {
                tubes,
                persons,
                base,
            });
        }
        let seg = member.segment;
        let (tubes, persons) = match kind {
            BatchKind::Collections => {
                let p = seg.persons.as_ref().ok_or_else(|| {
                    Error::damaged(root, format!("{} has no person index", seg.parquet.path))
                })?;
                (
                    IndexFile::open(&root.join(&seg.tubes.path), Kind::CollectionTubes)?,
                    Some(Arc::new(IndexFile::open(
                        &root.join(&p.path),
                        Kind::Persons,
                    )?)),
                )
            }
            _ => (
                IndexFile::open(&root.join(&seg.tubes.path), Kind::ResultTubes)?,
                None,
            ),
        };
        Ok(Source {
            tubes: Arc::new(tubes),
            persons,
            base,
        })
    }
}

/// Writes run `name` of `sources` into `dir` (each file under a temporary name, then
/// fsynced and renamed) and opens it.
fn write_run(dir: &Path, kind: BatchKind, name: RunName, sources: &[Source]) -> Result<OpenRun> {
    let files = files_of(kind);
    let tubes: Vec<(&IndexFile, u32)> = sources.iter().map(|s| (&*s.tubes, s.base)).collect();
    let persons: Option<Vec<(&IndexFile, u32)>> = sources
        .iter()
        .map(|s| s.persons.as_deref().map(|p| (p, s.base)))
        .collect();
    let (t, p) = rayon::join(
        || merge_into(&dir.join(name.file(files[0].0)), files[0].1, &tubes),
        || match (&persons, files.get(1)) {
            (Some(persons), Some(&(ext, k))) => {
                merge_into(&dir.join(name.file(ext)), k, persons).map(Some)
            }
            _ => Ok(None),
        },
    );
    let (tubes, persons) = (t?, p?);
    fsutil::sync_dir(dir)?;
    Ok(OpenRun {
        name,
        tubes: Arc::new(tubes),
        persons: persons.map(Arc::new),
    })
}

/// Bytes of a run merged as one part: parts are merged in parallel, a pair at a time
/// while the pair before is written.
const PART_BYTES: usize = 8 << 20;

/// Merges the sorted `sources` (each with the row its rows start at) into one sorted
/// sidecar at `path`, renumbering rows: cut into parts at keys of the largest source,
/// merged in parallel and written in order past the page cache, as segments' sidecars
/// are ([`fsutil::DirectWriter`]: copying 620 MB of a 25 M-row round's run into the
/// cache was half of its merge's time).
fn merge_into(path: &Path, kind: Kind, sources: &[(&IndexFile, u32)]) -> Result<IndexFile> {
    let size = kind.record_size();
    let key = kind.key_size();
    let total: usize = sources.iter().map(|(f, _)| f.len()).sum();
    // A run keys persons as its segments do (one store, one way).
    let keys = sources
        .first()
        .map(|(f, _)| f.person_keys())
        .unwrap_or_default();
    if kind == Kind::Persons {
        for (f, _) in sources {
            f.check_person_keys(keys)?;
        }
    }
    let shorten = kind == Kind::Persons && keys == index::PersonKeys::Exact;
    // Narrow when every piece is: their barcodes all fit in 16 bytes.
    let narrow = kind != Kind::Persons && sources.iter().all(|(f, _)| f.is_narrow());
    let residents: usize = sources.iter().map(|(f, _)| f.short_len()).sum();
    let parts = (total * size / PART_BYTES).clamp(1, 1024);
    let mut cuts: Vec<[u8; index::KEY]> = Vec::new();
    if let Some((big, _)) = sources.iter().max_by_key(|(f, _)| f.len())
        && !big.is_empty()
    {
        for p in 1..parts {
            let k = big.key_read(big.len() * p / parts)?;
            if cuts.last() != Some(&k) {
                cuts.push(k);
            }
        }
    }
    // bounds[s]: where each part starts in source s, then its end.
    let mut bounds: Vec<Vec<usize>> = Vec::with_capacity(sources.len());
    for (f, _) in sources {
        let mut b = Vec::with_capacity(cuts.len() + 2);
        b.push(0);
        for c in &cuts {
            b.push(f.lower_bound_read(&c[..key])?);
        }
        b.push(f.len());
        bounds.push(b);
    }
    let part = |p: usize| -> Result<Vec<u8>> {
        let mut scans: Vec<index::Scan<'_>> = sources
            .iter()
            .zip(&bounds)
            .map(|((f, _), b)| f.scan(b[p]..b[p + 1]))
            .collect();
        let records: usize = bounds.iter().map(|b| b[p + 1] - b[p]).sum();
        let mut buf: Vec<u8> = Vec::with_capacity(records * size);
        let row_at = kind.row_at();
        merge_scans(&mut scans, key, |s, r| {
            let from = buf.len();
            buf.extend_from_slice(r);
            rebase(&mut buf[from..], row_at, sources[s].1);
        })?;
        if shorten {
            // A part's residents are its records with keys below 2^64, which come first;
            // a count that disagrees with the sources' makes the run's length disagree
            // with its header, and it is refused when opened below.
            let residents = buf
                .chunks_exact(20)
                .take_while(|r| r[..8] == [0; 8])
                .count();
            index::shorten_persons(&mut buf, residents);
        }
        if narrow {
            index::narrow_tubes(&mut buf, size);
        }
        Ok(buf)
    };
    // `tmp-r…`: what `is_temporary` and the next writer know as a run half written.
    let tmp = path.with_file_name(format!(
        "tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let io = |e| Error::io(&tmp, e);
    let mut out = fsutil::DirectWriter::create(&tmp)?;
    let header = if kind == Kind::Persons {
        index::persons_header(keys, total as u64, residents as u64)
    } else {
        index::tubes_header(kind, total as u64, narrow)
    };
    out.write_all(&header).map_err(io)?;
    let wave = rayon::current_num_threads().max(1);
    let mut merged: Vec<Vec<u8>> = Vec::new();
    let n_parts = cuts.len() + 1;
    for first in (0..n_parts).step_by(wave).chain([n_parts]) {
        let (written, next) = rayon::join(
            || merged.iter().try_for_each(|b| out.write_all(b)),
            || {
                (first..(first + wave).min(n_parts))
                    .into_par_iter()
                    .map(part)
                    .collect::<Result<Vec<_>>>()
            },
        );
        written.map_err(io)?;
        merged = next?;
    }
    out.finish().map_err(io)?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    IndexFile::open(path, kind)
}

/// Renumbers the row of `record` (at `row_at`) from its piece's first row to the
/// run's: the one change a run makes to a record it merges.
fn rebase(record: &mut [u8], row_at: usize, base: u32) {
    let row = index::u32_at(record, row_at).wrapping_add(base);
    record[row_at..row_at + 4].copy_from_slice(&row.to_le_bytes());
}

/// Removes the run files of `dir` not of `used`, and runs left half written; returns
/// how many files it removed.
fn remove_unused(dir: &Path, used: &[RunName]) -> Result<usize> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale =
            is_temporary(&name) || RunName::parse(&name).is_some_and(|(r, _)| !used.contains(&r));
        if stale {
            let p = e.path();
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fsutil::sync_dir(dir)?;
    }
    Ok(removed)
}

/// Whether a file name in a round's sidecar folder is a run's being written.
pub(crate) fn is_temporary(name: &str) -> bool {
    name.starts_with(TEMPORARY)
}

/// What `verify` finds of a store's runs.
#[derive(Debug, Default)]
pub(crate) struct RunsFound {
    /// Run files readers use, checked against their segments (paths under the root).
    pub(crate) used: Vec<String>,
    /// Run files no reader uses, with why: superseded, retired or unreadable.
    pub(crate) unused: Vec<(String, &'static str)>,
    /// Run files in use whose records differ from a merge of their segments.
    pub(crate) damaged: Vec<(String, String)>,
    /// Bytes read.
    pub(crate) bytes: u64,
}

/// Checks every run a reader of the store at `root` would use against a fresh merge of
/// its segments' sidecars, and lists the run files no reader uses.
pub(crate) fn check(root: &Path, manifest: &super::Manifest) -> RunsFound {
    let mut found = RunsFound::default();
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut checks: Vec<(PathBuf, Kind, Vec<Based>)> = Vec::new();
    for Round { kind, members } in &rounds(manifest, None) {
        let Some(dir) = dir_of(root, members) else {
            continue;
        };
        let dir = in_use(&dir);
        let runs = open_runs(&dir, *kind);
        let pieces = cover(*kind, members, &runs);
        let mut used: Vec<PathBuf> = Vec::new();
        for piece in &pieces {
            let Some(run) = piece.run else { continue };
            let span = &members[piece.members.clone()];
            let mut sources = Vec::with_capacity(span.len());
            let mut base = 0u64;
            for m in span {
                match Source::open(root, *kind, m, None, base) {
                    Ok(s) => sources.push(s),
                    // The segment's own damage is the segment check's to report.
                    Err(_) => break,
                }
                base += m.segment.rows;
            }
            for &(ext, k) in files_of(*kind) {
                let path = dir.join(run.name.file(ext));
                used.push(path.clone());
                let of_kind: Option<Vec<Based>> = sources
                    .iter()
                    .map(|s| {
                        let file = if k == Kind::Persons {
                            s.persons.clone()
                        } else {
                            Some(s.tubes.clone())
                        };
                        file.map(|f| (f, s.base))
                    })
                    .collect();
                if let Some(of_kind) = of_kind.filter(|_| sources.len() == span.len()) {
                    checks.push((path, k, of_kind));
                }
            }
        }
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            let why = if is_temporary(&name) {
                "a merged index an interrupted ingest did not finish writing; the next writer removes it"
            } else if RunName::parse(&name).is_some() && !used.contains(&p) {
                if runs
                    .iter()
                    .any(|r| dir.join(r.name.file(TUBES)) == p.with_extension(TUBES))
                {
                    "a merged index no longer used (merged again, or a retraction took one of its batches back); the next ingest of the round removes it"
                } else {
                    "a merged index that cannot be read whole, so readers read its segments; the next ingest of the round removes it"
                }
            } else {
                continue;
            };
            found.unused.push((rel(&p), why));
        }
        found.used.extend(used.iter().map(|p| rel(p)));
    }
    let results: Vec<(u64, Option<(String, String)>)> = checks
        .par_iter()
        .map(|(path, kind, sources)| {
            let (bytes, problem) = compare(path, *kind, sources);
            (bytes, problem.map(|p| (rel(path), p)))
        })
        .collect();
    for (bytes, problem) in results {
        found.bytes += bytes;
        found.damaged.extend(problem);
    }
    found
}

/// Compares the run file at `path` with the merge of `sources` (each a segment's
/// sidecar of `kind`, with the row its rows start at in the run): the bytes read and
/// the first difference.
fn compare(path: &Path, kind: Kind, sources: &[Based]) -> (u64, Option<String>) {
    let run = match IndexFile::open(path, kind) {
        Ok(r) => r,
        Err(e) => return (0, Some(e.to_string())),
    };
    let size = kind.record_size();
    let bytes = run.bytes() as u64;
    let mut scans: Vec<index::Scan<'_>> = sources.iter().map(|(f, _)| f.scan(0..f.len())).collect();
    let mut own = run.scan(0..run.len());
    let row_at = kind.row_at();
    let mut expected = vec![0u8; size];
    let mut problem: Option<String> = None;
    let mut at = 0usize;
    let merged = merge_scans(&mut scans, kind.key_size(), |s, r| {
        if problem.is_some() {
            return;
        }
        expected.copy_from_slice(r);
        rebase(&mut expected, row_at, sources[s].1);
        match own.record() {
            Ok(Some((_, mine))) if mine == expected.as_slice() => {}
            Ok(_) | Err(_) => {
                problem = Some(format!(
                    "merged index record {at} differs from the merge of its segments' indexes: readers of the round would read wrong rows; remove the file (readers then read the segments, and the next ingest of the round merges again)"
                ));
            }
        }
        at += 1;
    });
    if problem.is_none() {
        problem = match merged {
            Err(e) => Some(format!("its segments' indexes cannot be merged: {e}")),
            Ok(()) if at != run.len() => Some(format!(
                "merged index holds {} record(s), its segments {at}",
                run.len()
            )),
            Ok(()) => None,
        };
    }
    (bytes, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends batches of the given sizes as the writer does, merging after each, and
    /// checks the policy's promises against a plain model of the pieces.
    fn append(sizes: &[u64]) -> (Vec<u64>, u64) {
        let mut pieces: Vec<u64> = Vec::new();
        let mut rewritten = 0;
        for &s in sizes {
            pieces.push(s);
            while let Some(g) = plan(&pieces) {
                assert!(g.len() >= FAN_IN, "{pieces:?}: merged {g:?}");
                assert_eq!(g.end, pieces.len(), "only the newest pieces merge");
                let rows: u64 = pieces[g.clone()].iter().sum();
                rewritten += rows;
                pieces.splice(g, [rows]);
            }
        }
        assert_eq!(pieces.iter().sum::<u64>(), sizes.iter().sum::<u64>());
        (pieces, rewritten)
    }

    #[test]
    fn a_round_of_small_batches_stays_a_few_pieces_each_row_rewritten_once_a_class() {
        // 2,500 lab batches of 10,000 rows: a 25 M-person round.
        let (pieces, rewritten) = append(&vec![10_000; 2_500]);
        let classes = class(25_000_000) + 1;
        assert!(
            pieces.len() <= (FAN_IN - 1) * classes as usize,
            "{pieces:?}"
        );
        assert!(rewritten <= 25_000_000 * u64::from(classes), "{rewritten}");
        // Four batches of one size merge into one when the fourth comes.
        assert_eq!(append(&[6_250_000; 4]).0, vec![25_000_000]);
        assert_eq!(append(&[6_250_000; 3]).0, vec![6_250_000; 3]);
    }

    #[test]
    fn smaller_pieces_wait_for_their_larger_neighbours() {
        // Three small batches, then four large: the small ones go with the large.
        let (pieces, _) = append(&[5, 5, 5, 1_000_000, 1_000_000, 1_000_000, 1_000_000]);
        assert_eq!(pieces, vec![4_000_015]);
        // A small batch after a large round merges nothing large.
        let (pieces, rewritten) = append(&[25_000_000, 10_000]);
        assert_eq!((pieces.len(), rewritten), (2, 0));
        // Mixed sizes at random keep the piece count bounded by the classes.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let sizes: Vec<u64> = (0..3_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                1 + x % 400_000
            })
            .collect();
        let (pieces, _) = append(&sizes);
        let total: u64 = sizes.iter().sum();
        let bound = 2 * FAN_IN * (class(total) as usize + 1);
        assert!(pieces.len() <= bound, "{} pieces: {pieces:?}", pieces.len());
    }

    #[test]
    fn names_are_what_they_cover() {
        let r = RunName {
            first: 3,
            last: 1_000_018,
            segments: 16,
        };
        assert_eq!(
            RunName::parse(&r.file(TUBES)),
            Some((r, TUBES)),
            "past six digits"
        );
        let r = RunName { last: 18, ..r };
        assert_eq!(r.file(PERSONS), "r000003-000018-16.persons");
        assert_eq!(RunName::parse(&r.file(PERSONS)), Some((r, PERSONS)));
        for bad in [
            "r000003-000018-0.tubes",
            "r000018-000003-2.tubes",
            "r000003-000018-16.parquet",
            "r000003-000018-16-1.tubes",
            "r000003-000018.tubes",
            "tmp-r000003-000018-16.tubes",
            "r3-18-16.tubes",
            "r000003-000018-016.tubes",
            "r000003-000018-+16.tubes",
        ] {
            assert_eq!(RunName::parse(bad), None, "{bad}");
        }
        assert!(is_temporary("tmp-r000003-000018-16.tubes"));
    }
}
