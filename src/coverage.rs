//! Coverage of a round: how many of the people who must be tested (the population
//! register, `pooltrack ingest population`) have a tube in the round, by district and
//! community; who has none (untested); and who was tested but is not registered.
//!
//! [`Coverage::compute`] joins the register with the round on the sorted 128-bit person
//! hashes of the `.persons` sidecars, in parallel over ranges of the hash space, and
//! reads only the district, community and group columns of the register (as
//! dictionary codes). It keeps the row numbers of the untested and unregistered
//! persons, so [`Coverage::untested`] and [`Coverage::unregistered`] read the text of
//! just those rows, with no second join.
//!
//! A person registered more than once counts once. Each of their optional fields —
//! district, community, group — comes from the latest registration (later batch, then
//! later line) that states it: a blank field means "not stated", never "none", so a
//! re-registration that gives only a new district keeps the earlier community and
//! group. A field no registration states counts under [`NO_AREA`]. A person is tested
//! when they have any tube in the round, whatever its result.
//!
//! ```
//! # fn main() -> pooltrack::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| pooltrack::Error::io("tmp", e))?;
//! # let file = |name: &str, text: &str| {
//! #     let p = dir.path().join(name);
//! #     std::fs::write(&p, text).map(|()| p).map_err(|e| pooltrack::Error::io(name, e))
//! # };
//! # let mut store = pooltrack::store::Store::open_writer(&dir.path().join("store"))?;
//! # let opts = pooltrack::ingest::IngestOptions::default();
//! # let register = file("register.csv", "person,district,community\np1,North,N1\np2,North,N2\np3,South,S1\n")?;
//! # pooltrack::ingest::ingest_population(&mut store, &[register], &opts, None)?;
//! # let moved = file("moved.csv", "person,district,community\np3,West,\n")?;
//! # pooltrack::ingest::ingest_population(&mut store, &[moved], &opts, None)?;
//! # let tubes = file("tubes.csv", "tube,person,mode,collected_at\nPL0001,p1,pool,2022-04-02 08:00:00\nPL0001,v9,pool,2022-04-02 08:01:00\n")?;
//! # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
//! use pooltrack::coverage::Coverage;
//!
//! let coverage = Coverage::compute(&store, "R1")?;
//! assert_eq!((coverage.registered, coverage.tested, coverage.untested), (3, 1, 2));
//! assert_eq!(coverage.unregistered_tested, 1); // v9 is not in the register
//! assert_eq!(coverage.by_district[0].district, "North");
//! // p3 moved to West in a later batch that left the community blank: still S1.
//! assert_eq!(coverage.by_community[2], pooltrack::coverage::Area::new("West", "S1", 1, 0));
//! # Ok(()) }
//! ```

mod areas;
mod join;
mod lists;
mod of_rows;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, ArrayRef, StringArray};
use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3Builder;

pub use lists::{UnregisteredPerson, UntestedPerson};
pub use of_rows::{AreaLevel, RowAreas, UNREGISTERED, areas_of_rows};

use crate::store::index::{self, IndexFile, Kind};
use crate::store::read;
use crate::store::segment::population_schema;
use crate::store::{BatchKind, CollectionIndex, Store};
use crate::text::text_at;
use crate::{Error, Result, time};

/// The name shown for persons registered without a district (or community).
///
/// ```
/// assert_eq!(pooltrack::coverage::NO_AREA, "(none)");
/// ```
pub const NO_AREA: &str = "(none)";

/// Coverage of one district, or of one community of a district.
///
/// ```
/// use pooltrack::coverage::Area;
/// let north = Area::new("North", "", 4, 3);
/// assert_eq!(north.share, 0.75);
/// assert_eq!(Area::new("South", "", 0, 0).share, 0.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Area {
    /// District, or [`NO_AREA`].
    pub district: String,
    /// Community, or [`NO_AREA`]; empty in the table by district.
    pub community: String,
    /// Persons registered here (each field from their latest registration stating it).
    pub registered: u64,
    /// Of them, persons with a tube in the round.
    pub tested: u64,
    /// `tested / registered`, from 0 to 1 (0 when no one is registered).
    pub share: f64,
}

impl Area {
    /// An area's line, with its share worked out.
    ///
    /// ```
    /// let a = pooltrack::coverage::Area::new("North", "N1", 8, 2);
    /// assert_eq!((a.community.as_str(), a.share), ("N1", 0.25));
    /// ```
    pub fn new(district: &str, community: &str, registered: u64, tested: u64) -> Area {
        Area {
            district: district.to_owned(),
            community: community.to_owned(),
            registered,
            tested,
            share: share(tested, registered),
        }
    }
}

fn share(tested: u64, registered: u64) -> f64 {
    if registered == 0 {
        0.0
    } else {
        tested as f64 / registered as f64
    }
}

/// A round's coverage of the population register.
///
/// ```
/// # fn main() -> pooltrack::Result<()> {
/// # let dir = tempfile::tempdir().map_err(|e| pooltrack::Error::io("tmp", e))?;
/// # let file = |name: &str, text: &str| {
/// #     let p = dir.path().join(name);
/// #     std::fs::write(&p, text).map(|()| p).map_err(|e| pooltrack::Error::io(name, e))
/// # };
/// # let mut store = pooltrack::store::Store::open_writer(&dir.path().join("store"))?;
/// # let opts = pooltrack::ingest::IngestOptions::default();
/// # let register = file("register.csv", "person,district,community\np1,North,N1\np2,North,N2\np3,,\n")?;
/// # pooltrack::ingest::ingest_population(&mut store, &[register], &opts, None)?;
/// # let tubes = file("tubes.csv", "tube,person,mode,collected_at\nPL0001,p1,pool,2022-04-02 08:00:00\n")?;
/// # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
/// use pooltrack::coverage::{Area, Coverage};
///
/// let c = Coverage::compute(&store, "R1")?;
/// assert_eq!(c.by_district, [Area::new("(none)", "", 1, 0), Area::new("North", "", 2, 1)]);
/// assert_eq!(c.by_community[2], Area::new("North", "N2", 1, 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// The round.
    pub round: String,
    /// Persons in the population register.
    pub registered: u64,
    /// Registered persons with a tube in the round.
    pub tested: u64,
    /// Registered persons with no tube in the round.
    pub untested: u64,
    /// Persons with a tube in the round who are not registered.
    pub unregistered_tested: u64,
    /// `tested / registered`.
    pub share: f64,
    /// By district, sorted by name.
    pub by_district: Vec<Area>,
    /// By district and community, sorted by district then community.
    pub by_community: Vec<Area>,
    /// Untested persons, sorted by row.
    #[serde(skip)]
    untested_rows: Vec<UntestedRow>,
    /// Unregistered persons' first collection rows in the round.
    #[serde(skip)]
    unregistered_rows: Vec<u32>,
    /// The population segments the join read, in manifest order.
    #[serde(skip)]
    population_files: Vec<PathBuf>,
    /// The register's names and row kinds (not each row's kind).
    #[serde(skip)]
    areas: areas::Areas,
}

/// An untested person: the row (across `population_files`) to read their id and group
/// from, and the kinds of the registrations their district and community come from.
#[derive(Debug, Clone, Copy)]
struct UntestedRow {
    row: u32,
    district: u32,
    community: u32,
}

/// A district and community, as name numbers (`None`: not stated).
type AreaKey = (Option<u32>, Option<u32>);

/// Ranges of the person-key space joined in parallel ([`index::partition_start`]).
pub(crate) const HASH_RANGES: u32 = index::person_partitions(RANGES_PER_FAMILY);

/// [`HASH_RANGES`] per family of keys.
const RANGES_PER_FAMILY: u32 = 256;

/// The first key of range `r` (none past the last range).
fn range_start(r: u32) -> Option<[u8; 16]> {
    index::partition_start(r, RANGES_PER_FAMILY).map(u128::to_be_bytes)
}

/// Registrations read before their kinds are looked up ([`Register::in_range`]).
const KIND_BLOCK: usize = 256;

/// Where each hash range starts in a sorted person sidecar: `HASH_RANGES + 1` record
/// numbers, the last the end.
pub(crate) struct Bounds(Vec<usize>);

impl Bounds {
    /// Searches `f` for the start of every range once, through a mapping of its own
    /// that is dropped after: the searches of a range each, through the shared
    /// mapping, faulted in the pages around every probe, and the health-code
    /// export's two 500 MB person sidecars came to hold 900 MB resident at once.
    pub(crate) fn of(f: &IndexFile) -> Result<Bounds> {
        let fresh = f.remapped()?;
        Ok(Bounds(
            (0..=HASH_RANGES)
                .map(|r| range_start(r).map_or(fresh.len(), |h| fresh.lower_bound(&h)))
                .collect(),
        ))
    }

    /// The records within hash range `r`.
    pub(crate) fn range(&self, r: u32) -> std::ops::Range<usize> {
        let at = |r: u32| self.0.get(r as usize).copied().unwrap_or(0);
        at(r)..at(r + 1).max(at(r))
    }
}

/// Appends the records `range` of a person sidecar to `out` as (hash, `base` + row),
/// read through a buffer rather than the mapping (see [`Bounds::of`]).
fn read_entries(
    f: &IndexFile,
    base: u32,
    range: std::ops::Range<usize>,
    out: &mut Vec<join::Membership>,
) -> Result<()> {
    let size = Kind::Persons.record_size();
    let mut scan = f.scan(range);
    while let Some(records) = scan.records()? {
        out.extend(records.chunks_exact(size).map(|r| {
            let (hash, row) = index::person_entry(r);
            (hash, base.saturating_add(row))
        }));
    }
    Ok(())
}

/// What the parallel join adds up.
#[derive(Default)]
struct Tally {
    /// Registered and tested persons per row kind, for the persons whose district
    /// and community come from registrations of one kind (nearly everyone).
    by_kind: Vec<[u64; 2]>,
    /// Registered and tested persons whose district and community come from
    /// registrations of different kinds, by area.
    mixed: HashMap<AreaKey, [u64; 2], Xxh3Builder>,
    untested: Vec<UntestedRow>,
    unregistered: Vec<u32>,
    damage: Option<String>,
    /// Rows whose area the join found, a vector per hash range, to write into the row
    /// codes.
    placed: Vec<of_rows::Placed>,
}

fn add(into: &mut [u64; 2], c: [u64; 2]) {
    into[0] += c[0];
    into[1] += c[1];
}

impl Tally {
    fn merge(mut self, other: Tally) -> Tally {
        if self.by_kind.len() < other.by_kind.len() {
            self.by_kind.resize(other.by_kind.len(), [0; 2]);
        }
        for (a, &b) in self.by_kind.iter_mut().zip(&other.by_kind) {
            add(a, b);
        }
        for (area, c) in other.mixed {
            add(self.mixed.entry(area).or_default(), c);
        }
        self.untested.extend(other.untested);
        self.unregistered.extend(other.unregistered);
        self.placed.extend(other.placed);
        self.damage = self.damage.or(other.damage);
        self
    }
}

/// The population register's segments as every join with it reads them: each
/// segment's Parquet file and person sidecar, and its first row across the segments.
pub(crate) struct Segments {
    /// The Parquet files, in manifest order.
    pub files: Vec<PathBuf>,
    /// Their person sidecars.
    pub sidecars: Vec<IndexFile>,
    /// Each segment's first row, counting the segments before it.
    pub bases: Vec<u32>,
    /// Rows in all.
    pub rows: u32,
}

impl Segments {
    /// `None` when the store holds no register; damage when it holds over `u32::MAX`
    /// rows.
    pub(crate) fn open(store: &Store) -> Result<Option<Segments>> {
        let segments: Vec<_> = store.manifest().population().map(|(s, _)| s).collect();
        if segments.is_empty() {
            return Ok(None);
        }
        let root = store.root();
        let files: Vec<PathBuf> = segments
            .iter()
            .map(|s| root.join(&s.parquet.path))
            .collect();
        let sidecars: Vec<IndexFile> = segments
            .iter()
            .map(|s| {
                let path = root.join(&s.persons.path);
                store.check_read(&path)?;
                let f = IndexFile::open(&path, Kind::Persons)?;
                f.check_person_keys(store.person_keys())?;
                Ok(f)
            })
            .collect::<Result<_>>()?;
        let mut bases = Vec::with_capacity(segments.len());
        let mut rows = 0u32;
        for s in &segments {
            bases.push(rows);
            rows = u64::from(rows)
                .checked_add(s.rows)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::damaged(
                        root,
                        "the population register holds over 4,294,967,295 rows",
                    )
                })?;
        }
        Ok(Some(Segments {
            files,
            sidecars,
            bases,
            rows,
        }))
    }
}

/// The population register as the joins read it: its segments' Parquet files and
/// person sidecars, each segment's first row, and every row's kind.
struct Register {
    files: Vec<PathBuf>,
    sidecars: Vec<IndexFile>,
    bounds: Vec<Bounds>,
    bases: Vec<u32>,
    areas: areas::Areas,
}

impl Register {
    /// Opens the register to join with `round`: a usage error when the store holds no
    /// register, [`Error::UnknownRound`] when it holds no collections of `round`.
    fn open(store: &Store, round: &str) -> Result<Register> {
        let Some(Segments {
            files,
            sidecars,
            bases,
            rows: _,
        }) = Segments::open(store)?
        else {
            return Err(Error::Usage(format!(
                "the store {} holds no population register, so there is nothing to measure coverage against; ingest it first: pooltrack ingest population FILE",
                store.root().display()
            )));
        };
        store.require_round(round)?;
        let root = store.root();
        let segments: Vec<_> = store.manifest().population().map(|(s, _)| s).collect();
        let areas = areas::read(store, &files)?;
        let disagree = segments.len() != areas.of_row.len()
            || segments
                .iter()
                .zip(&areas.of_row)
                .any(|(s, rows)| rows.len() as u64 != s.rows);
        if disagree {
            return Err(Error::damaged(
                root,
                "the population segments and their manifest rows disagree",
            ));
        }
        let bounds = sidecars.iter().map(Bounds::of).collect::<Result<_>>()?;
        Ok(Register {
            files,
            sidecars,
            bounds,
            bases,
            areas,
        })
    }

    /// The registrations within hash range `r`: (hash, segment, row, kind), sorted; a
    /// row past its segment's end is damage, named in `damage`.
    // The stable sort is chosen for the sorted runs it merges (below).
    #[allow(clippy::stable_sort_primitive)]
    fn in_range(&self, r: u32, damage: &mut Option<String>) -> Vec<join::Registration> {
        let ranges: Vec<_> = self.bounds.iter().map(|b| b.range(r)).collect();
        let runs = ranges.iter().filter(|range| !range.is_empty()).count();
        let mut population = Vec::with_capacity(ranges.iter().map(ExactSizeIterator::len).sum());
        // Records are taken a block at a time and their kinds looked up in a loop of
        // their own: the rows come in hash order, each lookup a miss somewhere in the
        // kind tables, and a short loop of independent loads lets the misses overlap
        // (one at a time they were two thirds of the coverage join).
        let mut block: Vec<(u128, u32)> = Vec::with_capacity(KIND_BLOCK);
        let size = Kind::Persons.record_size();
        for ((k, f), range) in (0u32..).zip(&self.sidecars).zip(ranges) {
            // Read through a buffer, not the mapping: a first touch of each mapped page
            // of the 25 M-person register's 500 MB index was a tenth of the report.
            let mut scan = f.scan(range);
            let segment = k as usize;
            loop {
                let records = match scan.records() {
                    Ok(Some(records)) => records,
                    Ok(None) => break,
                    Err(e) => {
                        *damage = Some(e.to_string());
                        break;
                    }
                };
                for chunk in records.chunks(size * KIND_BLOCK) {
                    block.clear();
                    block.extend(chunk.chunks_exact(size).map(index::person_entry));
                    for &(hash, row) in &block {
                        match self.areas.kind_of(segment, row) {
                            Some(kind) => population.push((hash, k, row, kind)),
                            None => {
                                *damage = Some(format!(
                                    "a population person index names row {row}, which its segment does not hold"
                                ));
                            }
                        }
                    }
                }
            }
        }
        // One sidecar's records are sorted already (a register of one batch); those of
        // several batches are sorted runs, which the stable sort finds and merges in
        // linear time. Entries are whole tuples, so the order is the tuples'.
        if runs > 1 {
            population.sort();
        }
        population
    }

    /// The fields ([`join::DISTRICT`] | ...) a kind of registration states.
    fn stated(&self, kind: u32) -> u8 {
        self.areas
            .kinds
            .get(kind as usize)
            .map_or(0, areas::Kind::stated)
    }
}

impl Coverage {
    /// Computes `round`'s coverage of the population register.
    ///
    /// Fails with [`Error::Usage`] (exit code 2) when no population was ingested, and
    /// with [`Error::UnknownRound`] when the store holds no collections of `round`.
    ///
    /// ```
    /// # fn main() -> pooltrack::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| pooltrack::Error::io("tmp", e))?;
    /// # let file = |name: &str, text: &str| {
    /// #     let p = dir.path().join(name);
    /// #     std::fs::write(&p, text).map(|()| p).map_err(|e| pooltrack::Error::io(name, e))
    /// # };
    /// # let mut store = pooltrack::store::Store::open_writer(&dir.path().join("store"))?;
    /// # let opts = pooltrack::ingest::IngestOptions::default();
    /// # let tubes = file("tubes.csv", "tube,person,mode,collected_at\nPL0001,p1,pool,2022-04-02 08:00:00\n")?;
    /// # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
    /// use pooltrack::coverage::Coverage;
    ///
    /// let err = Coverage::compute(&store, "R1").expect_err("no register yet");
    /// assert_eq!(err.exit_code(), 2);
    /// # let register = file("register.csv", "person\np1\np2\n")?;
    /// # pooltrack::ingest::ingest_population(&mut store, &[register], &opts, None)?;
    /// assert_eq!(Coverage::compute(&store, "R1")?.share, 0.5);
    /// # Ok(()) }
    /// ```
    pub fn compute(store: &Store, round: &str) -> Result<Coverage> {
        Ok(Self::compute_placing(store, round, None)?.0)
    }

    /// [`Coverage::compute`], and in the same join each collection row's area at
    /// `level` (what [`areas_of_rows`] gives), for a report that needs both: one join
    /// of the register instead of two.
    pub fn compute_with_areas(
        store: &Store,
        round: &str,
        level: AreaLevel,
    ) -> Result<(Coverage, RowAreas)> {
        let (coverage, rows) = Self::compute_placing(store, round, Some(level))?;
        Ok((coverage, rows.unwrap_or_default()))
    }

    fn compute_placing(
        store: &Store,
        round: &str,
        level: Option<AreaLevel>,
    ) -> Result<(Coverage, Option<RowAreas>)> {
        let register = Register::open(store, round)?;
        let root = store.root();
        let index = store.index_of(Some(round))?;
        let collections = index_collections(&index, round)?;
        let areas = &register.areas;
        let mut codes = level.map(|_| {
            let rid = index.round_id(round).unwrap_or(0);
            of_rows::RowCodes::new(index.round_rows(rid).0, areas.kinds.len())
        });
        let n_kinds = areas.kinds.len();
        let stated = |kind: u32| register.stated(kind);
        let ranges: Vec<u32> = (0..HASH_RANGES).collect();
        let mut tally = Tally::default();
        for window in ranges.chunks(of_rows::WINDOW) {
            let staging = codes.as_ref();
            let mut t = window
                .par_iter()
                .fold(Tally::default, |mut t, &r| {
                    let population = register.in_range(r, &mut t.damage);
                    let tested = tested_in_range(&collections, r).unwrap_or_else(|e| {
                        t.damage = Some(e.to_string());
                        Vec::new()
                    });
                    // Sized for every membership: never grown, so never copied.
                    let mut placed = Vec::with_capacity(staging.map_or(0, |_| tested.len()));
                    t.by_kind.resize(n_kinds, [0; 2]);
                    let Tally {
                        by_kind,
                        mixed,
                        untested,
                        damage,
                        ..
                    } = &mut t;
                    let unregistered = join::join_each(
                        &population,
                        &tested,
                        stated,
                        |row, p| {
                            if let Some(c) = staging {
                                c.stage(&mut placed, row, p);
                            }
                        },
                        |p| {
                            let (seg, row) = p.group;
                            let Some(&base) = register.bases.get(seg as usize) else {
                                *damage = Some(format!("no population segment {seg}"));
                                return;
                            };
                            let c = [1, u64::from(p.tested)];
                            let kind = |k: u32| areas.kinds.get(k as usize);
                            if p.district == p.community {
                                match by_kind.get_mut(p.district as usize) {
                                    Some(into) => add(into, c),
                                    None => *damage = Some(format!("no row kind {}", p.district)),
                                }
                            } else {
                                let district = kind(p.district).and_then(|k| k.district);
                                let community = kind(p.community).and_then(|k| k.community);
                                add(mixed.entry((district, community)).or_default(), c);
                            }
                            if !p.tested {
                                untested.push(UntestedRow {
                                    row: base + row,
                                    district: p.district,
                                    community: p.community,
                                });
                            }
                        },
                    );
                    if staging.is_some() {
                        t.placed.push(placed);
                    }
                    t.unregistered.extend(unregistered);
                    t
                })
                .reduce(Tally::default, Tally::merge);
            if let Some(c) = codes.as_mut()
                && let Err(why) = c.write(&t.placed)
            {
                t.damage = Some(format!("a person index of round {round} {why}"));
            }
            t.placed = Vec::new();
            tally = tally.merge(t);
        }
        if let Some(why) = tally.damage {
            return Err(Error::damaged(root, why));
        }
        let Register {
            files, mut areas, ..
        } = register;
        areas.of_row = Vec::new(); // each row's kind is no longer needed
        let mut districts: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
        let mut communities: BTreeMap<(&str, &str), [u64; 2]> = BTreeMap::new();
        let by_kind = areas
            .kinds
            .iter()
            .zip(&tally.by_kind)
            .map(|(k, &c)| ((k.district, k.community), c));
        for ((district, community), c) in by_kind.chain(tally.mixed) {
            if c[0] == 0 {
                continue; // everyone registered here moved by a later registration
            }
            let d = areas.name(district).unwrap_or(NO_AREA);
            let m = areas.name(community).unwrap_or(NO_AREA);
            add(districts.entry(d).or_default(), c);
            add(communities.entry((d, m)).or_default(), c);
        }
        let registered: u64 = districts.values().map(|c| c[0]).sum();
        let tested: u64 = districts.values().map(|c| c[1]).sum();
        let by_district = districts
            .iter()
            .map(|(d, c)| Area::new(d, "", c[0], c[1]))
            .collect();
        let by_community = communities
            .iter()
            .map(|((d, m), c)| Area::new(d, m, c[0], c[1]))
            .collect();
        let (mut untested_rows, mut unregistered_rows) = (tally.untested, tally.unregistered);
        untested_rows.par_sort_unstable_by_key(|u| u.row);
        unregistered_rows.par_sort_unstable();
        let rows = codes.zip(level).map(|(c, level)| c.areas(&areas, level));
        let coverage = Coverage {
            round: round.to_owned(),
            registered,
            tested,
            untested: registered - tested,
            unregistered_tested: unregistered_rows.len() as u64,
            share: share(tested, registered),
            by_district,
            by_community,
            untested_rows,
            unregistered_rows,
            population_files: files,
            areas,
        };
        Ok((coverage, rows))
    }

    /// The registered persons with no tube in the round, each field from their latest
    /// registration stating it, sorted by district, community and person. Reads the
    /// register's text of only those rows.
    ///
    /// ```
    /// # fn main() -> pooltrack::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| pooltrack::Error::io("tmp", e))?;
    /// # let file = |name: &str, text: &str| {
    /// #     let p = dir.path().join(name);
    /// #     std::fs::write(&p, text).map(|()| p).map_err(|e| pooltrack::Error::io(name, e))
    /// # };
    /// # let mut store = pooltrack::store::Store::open_writer(&dir.path().join("store"))?;
    /// # let opts = pooltrack::ingest::IngestOptions::default();
    /// # let register = file("register.csv", "person,district,community,group\np1,North,N1,\np2,North,N2,school\n")?;
    /// # pooltrack::ingest::ingest_population(&mut store, &[register], &opts, None)?;
    /// # let tubes = file("tubes.csv", "tube,person,mode,collected_at\nPL0001,p1,pool,2022-04-02 08:00:00\n")?;
    /// # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
    /// use pooltrack::coverage::Coverage;
    ///
    /// let untested = Coverage::compute(&store, "R1")?.untested(&store)?;
    /// assert_eq!(untested.len(), 1);
    /// assert_eq!((untested[0].person.as_str(), untested[0].group.as_str()), ("p2", "school"));
    /// # Ok(()) }
    /// ```
    pub fn untested(&self, store: &Store) -> Result<Vec<UntestedPerson>> {
        // The person's id and group from the row their group comes from; their
        // district and community by name number, from the kinds the join resolved.
        let columns = ["person", "group"];
        let at: Vec<u32> = self.untested_rows.iter().map(|u| u.row).collect();
        let c = read::fetch_files(
            store,
            &self.population_files,
            &population_schema(),
            &columns,
            &at,
        )?;
        let (person, group) = (strings(store, &c[0])?, strings(store, &c[1])?);
        if person.len() != at.len() || group.len() != at.len() {
            return Err(Error::damaged(
                store.root(),
                "the population segments hold fewer rows than their person indexes name",
            ));
        }
        let kind = |k: u32| self.areas.kinds.get(k as usize);
        let mut rows: Vec<UntestedPerson> = self
            .untested_rows
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let district = kind(u.district).and_then(|k| self.areas.name(k.district));
                let community = kind(u.community).and_then(|k| self.areas.name(k.community));
                UntestedPerson {
                    person: text_at(person, i).to_owned(),
                    district: district.unwrap_or("").to_owned(),
                    community: community.unwrap_or("").to_owned(),
                    group: text_at(group, i).to_owned(),
                }
            })
            .collect();
        rows.par_sort_by(|a, b| {
            (&a.district, &a.community, &a.person).cmp(&(&b.district, &b.community, &b.person))
        });
        Ok(rows)
    }

    /// The persons tested in the round who are not registered, each with their first
    /// tube in the round, sorted by site, collection time and person.
    ///
    /// ```
    /// # fn main() -> pooltrack::Result<()> {
    /// # let dir = tempfile::tempdir().map_err(|e| pooltrack::Error::io("tmp", e))?;
    /// # let file = |name: &str, text: &str| {
    /// #     let p = dir.path().join(name);
    /// #     std::fs::write(&p, text).map(|()| p).map_err(|e| pooltrack::Error::io(name, e))
    /// # };
    /// # let mut store = pooltrack::store::Store::open_writer(&dir.path().join("store"))?;
    /// # let opts = pooltrack::ingest::IngestOptions::default();
    /// # let register = file("register.csv", "person\np1\n")?;
    /// # pooltrack::ingest::ingest_population(&mut store, &[register], &opts, None)?;
    /// # let tubes = file("tubes.csv", "tube,person,mode,collected_at,site\nPL0001,p1,pool,2022-04-02 08:00:00,S1\nPL0001,v9,pool,2022-04-02 08:01:00,S1\n")?;
    /// # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
    /// use pooltrack::coverage::Coverage;
    ///
    /// let visitors = Coverage::compute(&store, "R1")?.unregistered(&store)?;
    /// assert_eq!(visitors.len(), 1);
    /// assert_eq!((visitors[0].person.as_str(), visitors[0].tube.as_str()), ("v9", "PL0001"));
    /// assert_eq!(visitors[0].collected_at, "2022-04-02T08:01:00+08:00");
    /// # Ok(()) }
    /// ```
    pub fn unregistered(&self, store: &Store) -> Result<Vec<UnregisteredPerson>> {
        let columns = ["person", "tube", "site", "collected_at"];
        let c = read::fetch(
            store,
            &self.round,
            BatchKind::Collections,
            &columns,
            &self.unregistered_rows,
        )?;
        let (person, tube, site) = (
            strings(store, &c[0])?,
            strings(store, &c[1])?,
            strings(store, &c[2])?,
        );
        let at = c[3]
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| Error::damaged(store.root(), "collected_at is not a timestamp"))?;
        let wanted = self.unregistered_rows.len();
        if [person.len(), tube.len(), site.len(), at.len()] != [wanted; 4] {
            return Err(Error::damaged(
                store.root(),
                format!(
                    "round {}: {} collection row(s) read back of the {wanted} asked for",
                    self.round,
                    person.len().min(at.len())
                ),
            ));
        }
        let zone = store.zone();
        let mut rows: Vec<UnregisteredPerson> = (0..wanted)
            .map(|i| {
                let ms = at.value(i);
                UnregisteredPerson::new(
                    text_at(person, i),
                    text_at(tube, i),
                    text_at(site, i),
                    ms,
                    &time::format(ms, zone),
                )
            })
            .collect();
        rows.par_sort_by(|a, b| {
            (&a.site, &a.collected_at, &a.person).cmp(&(&b.site, &b.collected_at, &b.person))
        });
        Ok(rows)
    }
}

/// The ids of the registered persons with no tube in `round`, in no set order, or
/// `None` when the store holds no register: the persons [`Coverage::untested`] lists,
/// found without their areas. The register's person sidecars are anti-joined with the
/// round's, hash range by hash range on all cores, and only the untested persons' ids
/// are read; coverage's join also reads every registration's district, community and
/// group, which the health codes do not print.
///
/// Fails with [`Error::UnknownRound`] when the store holds no collections of `round`.
// The stable sort is chosen for the sorted runs it merges (below).
#[allow(clippy::stable_sort_primitive)]
pub fn untested_ids(store: &Store, round: &str) -> Result<Option<Vec<String>>> {
    let Some(segments) = Segments::open(store)? else {
        return Ok(None);
    };
    store.require_round(round)?;
    let index = store.index_of(Some(round))?;
    let collections = index_collections(&index, round)?;
    let bounds: Vec<Bounds> = segments
        .sidecars
        .iter()
        .map(Bounds::of)
        .collect::<Result<_>>()?;
    let ends: Vec<u32> = segments
        .bases
        .iter()
        .skip(1)
        .copied()
        .chain([segments.rows])
        .collect();
    let found: Vec<Option<Vec<u32>>> = (0..HASH_RANGES)
        .into_par_iter()
        .map(|r| {
            // (hash, row across the segments): a person's latest registration is
            // their last entry once sorted.
            let mut population: Vec<(u128, u32)> = Vec::new();
            let mut runs = 0;
            let sidecars = segments.sidecars.iter().zip(&bounds);
            for (((f, bounds), &base), &end) in sidecars.zip(&segments.bases).zip(&ends) {
                let range = bounds.range(r);
                runs += usize::from(!range.is_empty());
                let from = population.len();
                read_entries(f, base, range, &mut population)?;
                if population[from..].iter().any(|&(_, row)| row >= end) {
                    return Ok(None);
                }
            }
            // Several batches' sorted runs, merged by the stable sort in linear time.
            if runs > 1 {
                population.sort();
            }
            Ok(Some(join::untested(
                &population,
                &tested_in_range(&collections, r)?,
            )))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for part in found {
        let Some(part) = part else {
            return Err(Error::damaged(
                store.root(),
                "a population person index names a row its segment does not hold",
            ));
        };
        rows.extend(part);
    }
    rows.par_sort_unstable();
    let c = read::fetch_files(
        store,
        &segments.files,
        &population_schema(),
        &["person"],
        &rows,
    )?;
    let person = c
        .first()
        .map(|a| strings(store, a))
        .transpose()?
        .filter(|p| p.len() == rows.len())
        .ok_or_else(|| {
            Error::damaged(
                store.root(),
                "the population segments hold fewer rows than their person indexes name",
            )
        })?;
    Ok(Some(
        (0..person.len())
            .map(|i| text_at(person, i).to_owned())
            .collect(),
    ))
}

/// The round's memberships (person hash, row in the round) whose hashes fall in range
/// `r`, from every collections segment, sorted; read through buffers, not the mappings
/// (see [`in_range`]).
fn tested_in_range(
    collections: &[(&CollectionIndex, Bounds)],
    r: u32,
) -> Result<Vec<join::Membership>> {
    let mut runs: Vec<Vec<join::Membership>> = Vec::new();
    for (seg, bounds) in collections {
        let range = bounds.range(r);
        if !range.is_empty() {
            let mut run = Vec::with_capacity(range.len());
            read_entries(&seg.persons, seg.base, range, &mut run)?;
            runs.push(run);
        }
    }
    let len = runs.iter().map(Vec::len).sum();
    Ok(match runs.len() {
        0 => Vec::new(),
        1 => runs.swap_remove(0),
        // A round's batch and its retests: the larger copied in stretches, the other
        // merged in.
        2 => {
            runs.sort_by_key(|run| std::cmp::Reverse(run.len()));
            let small = runs.pop().unwrap_or_default();
            let big = runs.pop().unwrap_or_default();
            let mut out = Vec::with_capacity(len);
            join::merge_galloping(&mut out, 0..big.len(), |i| big[i], small);
            out
        }
        _ => join::merged(runs.into_iter().map(Vec::into_iter).collect(), len),
    })
}

/// The round's collection segments (the round exists: [`Store::require_round`]), and
/// where each hash range starts in their person sidecars.
fn index_collections<'a>(
    index: &'a crate::store::StoreIndex,
    round: &str,
) -> Result<Vec<(&'a CollectionIndex, Bounds)>> {
    index
        .round_id(round)
        .map_or_else(Vec::new, |rid| index.collections_of(rid))
        .into_iter()
        .map(|seg| Ok((seg, Bounds::of(&seg.persons)?)))
        .collect()
}

fn strings<'a>(store: &Store, a: &'a ArrayRef) -> Result<&'a StringArray> {
    a.as_string_opt::<i32>()
        .ok_or_else(|| Error::damaged(store.root(), "a text column of a segment is not text"))
}
