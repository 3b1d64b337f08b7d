//! Each collection row of a round with the area its person is registered in, for
//! estimates by area ([`crate::coverage::areas_of_rows`]): the same join and the same
//! rule as coverage (each field from the latest registration stating it), kept per row
//! as one small number, so 25 million rows cost 100 MB and no string each.

use std::collections::HashMap;
use std::sync::Mutex;

use rayon::prelude::*;

use super::areas::Areas;
use super::join::{self, Person};
use super::{HASH_RANGES, NO_AREA, Register, index_collections, tested_in_range};
use crate::store::Store;
use crate::{Error, Result};

/// The area of a row whose person is not in the register.
pub const UNREGISTERED: u32 = u32::MAX;

/// How finely rows are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaLevel {
    /// By district.
    District,
    /// By district and community.
    Community,
}

/// A round's collection rows placed in the register's areas.
#[derive(Debug, Clone, Default)]
pub struct RowAreas {
    /// Each area's (district, community), by number; the community is empty by
    /// district. A field no registration states is [`NO_AREA`].
    pub areas: Vec<(String, String)>,
    /// Each collection row's area number, or [`UNREGISTERED`].
    pub of_row: Vec<u32>,
}

/// Places every collection row of `round` in the area (district, or district and
/// community) its person is registered in; fails as [`super::Coverage::compute`]
/// does without a register or the round.
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
/// # let register = file("register.csv", "person,district,community\np1,North,N1\np2,South,S1\n")?;
/// # pooltrack::ingest::ingest_population(&mut store, &[register], &opts, None)?;
/// # let tubes = file("tubes.csv", "tube,person,mode,collected_at\nPL-1,p1,pool,2022-04-02 08:00\nPL-1,v9,pool,2022-04-02 08:01\nPL-2,p2,pool,2022-04-02 08:02\n")?;
/// # pooltrack::ingest::ingest_collections(&mut store, &[tubes], "R1", &opts, None)?;
/// use pooltrack::coverage::{AreaLevel, UNREGISTERED, areas_of_rows};
///
/// let rows = areas_of_rows(&store, "R1", AreaLevel::District)?;
/// let name = |row: usize| rows.areas[rows.of_row[row] as usize].0.as_str();
/// assert_eq!((name(0), name(2)), ("North", "South"));
/// assert_eq!(rows.of_row[1], UNREGISTERED); // v9 is not in the register
/// # Ok(()) }
/// ```
pub fn areas_of_rows(store: &Store, round: &str, level: AreaLevel) -> Result<RowAreas> {
    let register = Register::open(store, round)?;
    let index = store.index_of(Some(round))?;
    let rid = index.round_id(round).unwrap_or(0);
    let n_rows = index.round_rows(rid).0;
    let collections = index_collections(&index, round)?;
    let mut codes = RowCodes::new(n_rows, register.areas.kinds.len());
    let ranges: Vec<u32> = (0..HASH_RANGES).collect();
    for window in ranges.chunks(WINDOW) {
        let staging = &codes;
        let placed: Vec<Placed> = window
            .par_iter()
            .map(|&r| {
                let mut damage = None;
                let population = register.in_range(r, &mut damage);
                if let Some(why) = damage {
                    return Err(why);
                }
                let tested = tested_in_range(&collections, r).map_err(|e| e.to_string())?;
                let mut placed = Placed::with_capacity(tested.len());
                join::resolve_rows(
                    &population,
                    &tested,
                    |k| register.stated(k),
                    |row, p| staging.stage(&mut placed, row, p),
                );
                Ok(placed)
            })
            .collect::<std::result::Result<_, String>>()
            .map_err(|why| Error::damaged(store.root(), why))?;
        codes.write(&placed).map_err(|why| {
            Error::damaged(
                store.root(),
                format!("a person index of round {round} {why}"),
            )
        })?;
    }
    Ok(codes.areas(&register.areas, level))
}

/// Hash ranges joined at a time before their rows' areas are written: about 3 million
/// rows of a 25 M round, 25 MB staged.
pub(crate) const WINDOW: usize = 32;

/// Rows whose area a join found, (row, code), before [`RowCodes::write`] puts them in
/// place.
pub(crate) type Placed = Vec<(u32, u32)>;

/// Rows per bucket of [`RowCodes::write`]: their codes (256 KB) stay in cache.
const BUCKET_SHIFT: u32 = 16;

/// Each collection row's person's registration kinds, filled by a join on all cores:
/// the kind their district and community both come from, or for a person whose two
/// fields come from registrations of different kinds (rare: a move that restated
/// only one of them) a code past the kinds.
pub(crate) struct RowCodes {
    codes: Vec<u32>,
    n_kinds: u32,
    mixed: Mutex<HashMap<(u32, u32), u32>>,
    /// [`RowCodes::write`]'s staged rows grouped by bucket, kept for the next window.
    grouped: Vec<(u32, u32)>,
}

impl RowCodes {
    /// Codes for `n_rows` rows, all [`UNREGISTERED`], of a register of `n_kinds` kinds.
    pub(crate) fn new(n_rows: usize, n_kinds: usize) -> RowCodes {
        RowCodes {
            codes: vec![UNREGISTERED; n_rows],
            n_kinds: u32::try_from(n_kinds).unwrap_or(u32::MAX),
            mixed: Mutex::new(HashMap::new()),
            grouped: Vec::new(),
        }
    }

    /// Stages row `row` with its person (`None`: not registered, which it already is)
    /// into `placed`, for [`RowCodes::write`].
    pub(crate) fn stage(&self, placed: &mut Placed, row: u32, person: Option<Person>) {
        if let Some(p) = person {
            placed.push((row, self.code_of(p)));
        }
    }

    /// Puts the staged rows (in any number of parts) in place; says what is wrong with
    /// a row past the round's end.
    ///
    /// The joins find rows in the order of their persons' hashes, so writing each
    /// where it belongs touched a page of the 100 MB of codes at random for every row
    /// (a fifth of the round report's time at 25 M rows). The rows are first grouped
    /// by bucket of 65,536 rows, then each bucket's codes are written on their own,
    /// on all cores. The parts are each hash range's, never joined into one (copying
    /// them was a twentieth of the report), and the grouping's buffer is reused from
    /// window to window rather than made afresh.
    pub(crate) fn write(&mut self, parts: &[Placed]) -> std::result::Result<(), String> {
        let n = self.codes.len();
        let staged = || parts.iter().flatten();
        if let Some(&(row, _)) = staged().find(|&&(row, _)| row as usize >= n) {
            return Err(format!("names row {row}, past its {n} rows"));
        }
        let buckets = n.div_ceil(1 << BUCKET_SHIFT);
        let bucket = |row: u32| (row >> BUCKET_SHIFT) as usize;
        let mut start = vec![0usize; buckets + 1];
        for &(row, _) in staged() {
            start[bucket(row) + 1] += 1;
        }
        for b in 0..buckets {
            start[b + 1] += start[b];
        }
        let mut next = start.clone();
        let grouped = &mut self.grouped;
        grouped.clear();
        grouped.resize(start[buckets], (0, 0));
        for &(row, code) in staged() {
            let at = &mut next[bucket(row)];
            grouped[*at] = (row, code);
            *at += 1;
        }
        let mask = (1usize << BUCKET_SHIFT) - 1;
        let grouped = &self.grouped;
        self.codes
            .par_chunks_mut(1 << BUCKET_SHIFT)
            .enumerate()
            .for_each(|(b, codes)| {
                for &(row, code) in &grouped[start[b]..start[b + 1]] {
                    codes[row as usize & mask] = code;
                }
            });
        Ok(())
    }

    fn code_of(&self, p: Person) -> u32 {
        if p.district == p.community {
            return p.district;
        }
        let mut m = self
            .mixed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = self
            .n_kinds
            .saturating_add(u32::try_from(m.len()).unwrap_or(u32::MAX));
        *m.entry((p.district, p.community)).or_insert(next)
    }

    /// The rows' areas at `level`, named from the register's `areas`.
    pub(crate) fn areas(self, areas: &Areas, level: AreaLevel) -> RowAreas {
        let name = |n: Option<u32>| areas.name(n).unwrap_or(NO_AREA).to_owned();
        let kind = |k: u32| areas.kinds.get(k as usize);
        let mut pairs: Vec<(u32, u32)> = (0..self.n_kinds).map(|k| (k, k)).collect();
        let mut extra: Vec<((u32, u32), u32)> = self
            .mixed
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .into_iter()
            .collect();
        extra.sort_unstable_by_key(|&(_, code)| code);
        pairs.extend(extra.into_iter().map(|(pair, _)| pair));
        let mut numbered: HashMap<(String, String), u32> = HashMap::new();
        let mut names: Vec<(String, String)> = Vec::new();
        let table: Vec<u32> = pairs
            .iter()
            .map(|&(d, c)| {
                let district = name(kind(d).and_then(|k| k.district));
                let community = match level {
                    AreaLevel::District => String::new(),
                    AreaLevel::Community => name(kind(c).and_then(|k| k.community)),
                };
                *numbered
                    .entry((district, community))
                    .or_insert_with_key(|key| {
                        names.push(key.clone());
                        u32::try_from(names.len() - 1).unwrap_or(UNREGISTERED)
                    })
            })
            .collect();
        // Renamed in place: a second 100 MB column for 25 M rows would be fresh memory.
        let mut of_row = self.codes;
        of_row.par_iter_mut().for_each(|c| {
            if *c != UNREGISTERED {
                *c = table.get(*c as usize).copied().unwrap_or(UNREGISTERED);
            }
        });
        RowAreas {
            areas: names,
            of_row,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(district: u32, community: u32) -> Person {
        Person {
            district,
            community,
            group: (0, 0),
            tested: true,
        }
    }

    #[test]
    fn staged_rows_land_on_their_rows_across_buckets() {
        // Three buckets and a bit; rows staged in a scrambled order, some twice (the
        // last staging wins, as the last write did), some never.
        let n = 3 * (1 << BUCKET_SHIFT) + 17;
        let mut codes = RowCodes::new(n, 8);
        let mut expected = vec![UNREGISTERED; n];
        let mut placed = Placed::new();
        let mut x = 12_345u32;
        for _ in 0..50_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let row = (x >> 3) % u32::try_from(n).expect("small");
            let kind = x % 8;
            codes.stage(&mut placed, row, Some(person(kind, kind)));
            expected[row as usize] = kind;
        }
        codes.stage(&mut placed, 5, None); // not registered: stays as it is
        let (a, b) = placed.split_at(20_000);
        // The first write in three parts, the second in one.
        let (a1, rest) = a.split_at(7_000);
        let (a2, a3) = rest.split_at(9_000);
        codes
            .write(&[a1.to_vec(), a2.to_vec(), Vec::new(), a3.to_vec()])
            .expect("in range");
        codes.write(&[b.to_vec()]).expect("in range");
        assert_eq!(codes.codes, expected);
        let past = u32::try_from(n).expect("small");
        let err = codes.write(&[vec![(past, 1)]]).expect_err("past the end");
        assert!(err.contains("past its"), "{err}");
    }
}
