//! Each collection row of a round with the area its person is registered in, for
//! estimates by area ([`crate::coverage::areas_of_rows`]): the same join and the same
//! rule as coverage (each field from the latest registration stating it), kept per row
//! as one small number, so 25 million rows cost 100 MB and no string each.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use super::areas::Areas;
use super::join::{self, Person};
use super::{HASH_RANGES, NO_AREA, Register, in_range, index_collections};
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
    let collections = index_collections(&index, round);
    let codes = RowCodes::new(n_rows, register.areas.kinds.len());
    let damage: Option<String> = (0..HASH_RANGES)
        .into_par_iter()
        .map(|r| {
            let mut damage = None;
            let population = register.in_range(r, &mut damage);
            let tested: Vec<join::Membership> = collections
                .iter()
                .flat_map(|seg| {
                    in_range(&seg.persons, r).map(|i| {
                        let row = seg.base.saturating_add(seg.persons.person_row(i));
                        (seg.persons.person(i), row)
                    })
                })
                .collect();
            join::resolve_rows(
                population,
                tested,
                |k| register.stated(k),
                |row, p| {
                    if let Err(why) = codes.set(row, p) {
                        damage = Some(format!("a person index of round {round} {why}"));
                    }
                },
            );
            damage
        })
        .reduce(|| None, Option::or);
    if let Some(why) = damage {
        return Err(Error::damaged(store.root(), why));
    }
    Ok(codes.areas(&register.areas, level))
}

/// Each collection row's person's registration kinds, filled by a join on all cores:
/// the kind their district and community both come from, or for a person whose two
/// fields come from registrations of different kinds (rare: a move that restated
/// only one of them) a code past the kinds.
pub(crate) struct RowCodes {
    codes: Vec<AtomicU32>,
    n_kinds: u32,
    mixed: Mutex<HashMap<(u32, u32), u32>>,
}

impl RowCodes {
    /// Codes for `n_rows` rows, all [`UNREGISTERED`], of a register of `n_kinds` kinds.
    pub(crate) fn new(n_rows: usize, n_kinds: usize) -> RowCodes {
        RowCodes {
            codes: (0..n_rows).map(|_| AtomicU32::new(UNREGISTERED)).collect(),
            n_kinds: u32::try_from(n_kinds).unwrap_or(u32::MAX),
            mixed: Mutex::new(HashMap::new()),
        }
    }

    /// Places row `row` with its person (`None`: not registered, which it already is);
    /// says what is wrong with a row past the round's end.
    pub(crate) fn set(&self, row: u32, person: Option<Person>) -> std::result::Result<(), String> {
        let Some(slot) = self.codes.get(row as usize) else {
            return Err(format!(
                "names row {row}, past its {} rows",
                self.codes.len()
            ));
        };
        if let Some(p) = person {
            slot.store(self.code_of(p), Ordering::Relaxed);
        }
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
        let of_row = self
            .codes
            .into_par_iter()
            .map(|c| match c.into_inner() {
                UNREGISTERED => UNREGISTERED,
                c => table.get(c as usize).copied().unwrap_or(UNREGISTERED),
            })
            .collect();
        RowAreas {
            areas: names,
            of_row,
        }
    }
}
