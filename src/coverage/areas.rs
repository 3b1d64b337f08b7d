//! What each population row states — its district and community as small numbers, and
//! whether it names a key group — read from the Parquet dictionary pages: 25 million
//! rows name a few thousand areas, so no row's text is decoded into a string of its own.
//!
//! Rows are numbered by their *kind*: the (district, community, group stated) they
//! have in common. A person's fields are resolved one by one from the kinds of their
//! registrations (see [`super::join`]), so a blank field of a later registration keeps
//! the earlier value instead of reading as "none".

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3Builder;

use super::join::{COMMUNITY, DISTRICT, GROUP};
use crate::fasthash::KeyHash;
use crate::store::Store;
use crate::store::segment::population_schema;
use crate::{Error, Result};

/// What a population row states: its district and community (numbers into
/// [`Areas::names`], `None` where the register left them blank) and whether it names
/// a key group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Kind {
    /// District number, if stated.
    pub district: Option<u32>,
    /// Community number, if stated.
    pub community: Option<u32>,
    /// Whether the row names a key group.
    pub group: bool,
}

impl Kind {
    /// The fields this kind of row states, as [`DISTRICT`] | [`COMMUNITY`] | [`GROUP`].
    pub fn stated(&self) -> u8 {
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        bit(self.district.is_some(), DISTRICT)
            | bit(self.community.is_some(), COMMUNITY)
            | bit(self.group, GROUP)
    }
}

/// The kinds of every population row.
#[derive(Debug, Clone, Default)]
pub struct Areas {
    /// District and community names, by number.
    pub names: Vec<String>,
    /// Each kind number's kind.
    pub kinds: Vec<Kind>,
    /// The kind number of each row, per population segment (manifest order).
    pub of_row: Vec<Vec<u32>>,
    /// The same, by blocks of rows, for [`Areas::kind_of`].
    blocks: Vec<Blocks>,
}

/// Rows per block of [`Blocks`], as a shift: a block's group bits are one `u64`.
const BLOCK_SHIFT: usize = 6;
/// A block whose rows are of more than one kind of that group state.
const MIXED: u32 = u32::MAX;

/// A segment's row kinds as a join looks them up: in person-hash order, a random row
/// each time. The 4-byte-a-row table is 100 MB for 25 million rows, so nearly every
/// lookup missed the cache (95 % of the coverage join's own time). Registers come in
/// area order (a site's or a community's people together), and a kind is an area plus
/// whether the row names a group, so a block of 64 rows nearly always holds one kind
/// without a group and one with: a bit a row for the group and two kinds a block keep
/// lookups in 6 MB, and a block of mixed areas falls back to the table.
#[derive(Debug, Clone, Default)]
struct Blocks {
    /// Bit `row % 64` of word `row / 64`: the row names a group.
    grouped: Vec<u64>,
    /// Per block, the kind of its rows naming no group, else [`MIXED`].
    plain_kind: Vec<u32>,
    /// Per block, the kind of its rows naming a group, else [`MIXED`].
    grouped_kind: Vec<u32>,
    /// Per block, the kind of all its rows when they are of one kind numbered below
    /// [`SLOW`], else `SLOW`: two bytes a block (780 KB for 25 million rows) stay in
    /// the core's cache where the three tables above (4.5 MB) missed it.
    fast: Vec<u16>,
}

/// A block of [`Blocks::fast`] whose kind is found in the other tables.
const SLOW: u16 = u16::MAX;

/// Rows in block `i` of `rows`.
fn block_len(rows: &[u32], i: usize) -> usize {
    rows.len()
        .saturating_sub(i << BLOCK_SHIFT)
        .min(1 << BLOCK_SHIFT)
}

impl Blocks {
    fn of(rows: &[u32], kinds: &[Kind]) -> Blocks {
        let blocks = rows.len().div_ceil(1 << BLOCK_SHIFT);
        let mut b = Blocks {
            grouped: vec![0; blocks],
            plain_kind: vec![MIXED; blocks],
            grouped_kind: vec![MIXED; blocks],
            fast: Vec::new(),
        };
        for (i, block) in rows.chunks(1 << BLOCK_SHIFT).enumerate() {
            let (mut plain, mut grouped) = (None, None);
            let (mut plain_mixed, mut grouped_mixed) = (false, false);
            for (bit, &k) in block.iter().enumerate() {
                let has_group = kinds.get(k as usize).is_some_and(|k| k.group);
                let (seen, mixed) = if has_group {
                    b.grouped[i] |= 1 << bit;
                    (&mut grouped, &mut grouped_mixed)
                } else {
                    (&mut plain, &mut plain_mixed)
                };
                match *seen {
                    None => *seen = Some(k),
                    Some(s) if s != k => *mixed = true,
                    Some(_) => {}
                }
            }
            if !plain_mixed && let Some(k) = plain {
                b.plain_kind[i] = k;
            }
            if !grouped_mixed && let Some(k) = grouped {
                b.grouped_kind[i] = k;
            }
        }
        b.fast = (0..blocks)
            .map(|i| {
                let one = match (b.grouped[i], b.plain_kind[i], b.grouped_kind[i]) {
                    (0, k, MIXED) => k,
                    (_, MIXED, k) if b.grouped[i].count_ones() as usize == block_len(rows, i) => k,
                    _ => MIXED,
                };
                u16::try_from(one).unwrap_or(SLOW)
            })
            .collect();
        b
    }
}

impl Areas {
    /// The kind of row `row` of segment `segment` (what `of_row` holds); `None` past
    /// the segment's end.
    pub fn kind_of(&self, segment: usize, row: u32) -> Option<u32> {
        let r = row as usize;
        let rows = self.of_row.get(segment)?;
        if r >= rows.len() {
            return None; // a block's kinds hold for its rows, not past its end
        }
        let blocks = self.blocks.get(segment)?;
        if let Some(&k) = blocks.fast.get(r >> BLOCK_SHIFT)
            && k != SLOW
        {
            return Some(u32::from(k));
        }
        let word = blocks.grouped.get(r >> BLOCK_SHIFT)?;
        let per_block = if word >> (r & 63) & 1 == 1 {
            &blocks.grouped_kind
        } else {
            &blocks.plain_kind
        };
        match per_block.get(r >> BLOCK_SHIFT) {
            Some(&k) if k != MIXED => Some(k),
            _ => rows.get(r).copied(),
        }
    }

    /// The name numbered `n`; [`None`] (and `None` for a bad number) for no name.
    pub fn name(&self, n: Option<u32>) -> Option<&str> {
        n.and_then(|n| self.names.get(n as usize))
            .map(String::as_str)
    }
}

/// Numbers things as they are first seen.
struct Numbering<T> {
    items: Vec<T>,
    ids: HashMap<T, u32, Xxh3Builder>,
}

impl<T: Clone + Eq + std::hash::Hash> Numbering<T> {
    fn new() -> Self {
        Numbering {
            items: Vec::new(),
            ids: HashMap::with_hasher(Xxh3Builder::new()),
        }
    }

    fn number(&mut self, item: T) -> u32 {
        if let Some(&id) = self.ids.get(&item) {
            return id;
        }
        let id = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        self.items.push(item.clone());
        self.ids.insert(item, id);
        id
    }
}

/// One segment's rows: its own names and kinds, and each row's kind number.
struct Part {
    names: Vec<String>,
    kinds: Vec<Kind>,
    of_row: Vec<u32>,
}

/// Reads the kind of every row of the population segments `files`.
pub fn read(store: &Store, files: &[PathBuf]) -> Result<Areas> {
    // Each file's row groups are read on all cores (see `read_file`).
    let parts: Vec<Part> = files
        .iter()
        .map(|path| read_file(store, path))
        .collect::<Result<_>>()?;
    let (names, kinds, of_row) = renumber(parts);
    Ok(Areas::new(names, kinds, of_row))
}

impl Areas {
    /// The areas of rows of these kinds, with the blocks [`Areas::kind_of`] reads.
    pub fn new(names: Vec<String>, kinds: Vec<Kind>, of_row: Vec<Vec<u32>>) -> Areas {
        let blocks = of_row
            .par_iter()
            .map(|rows| Blocks::of(rows, &kinds))
            .collect();
        Areas {
            names,
            kinds,
            of_row,
            blocks,
        }
    }
}

/// Numbers names and kinds across `parts`, each of which numbered its own; returns the
/// names, the kinds, and each part's rows with the common kind numbers.
fn renumber(parts: Vec<Part>) -> (Vec<String>, Vec<Kind>, Vec<Vec<u32>>) {
    let mut names = Numbering::new();
    let mut kinds = Numbering::new();
    let mut of_row = Vec::with_capacity(parts.len());
    for part in parts {
        let name_ids: Vec<u32> = part.names.into_iter().map(|n| names.number(n)).collect();
        let global = |n: Option<u32>| n.and_then(|n| name_ids.get(n as usize).copied());
        let kind_ids: Vec<u32> = part
            .kinds
            .iter()
            .map(|k| {
                kinds.number(Kind {
                    district: global(k.district),
                    community: global(k.community),
                    group: k.group,
                })
            })
            .collect();
        let mut rows = part.of_row;
        for k in &mut rows {
            *k = kind_ids.get(*k as usize).copied().unwrap_or(0);
        }
        of_row.push(rows);
    }
    (names.items, kinds.items, of_row)
}

fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Reads one segment, a row group per task on all cores. A reader of one row group also
/// keeps each batch within one dictionary: a batch across two row groups made the
/// Parquet reader re-pack every value into a new dictionary, a `memcmp` a row.
fn read_file(store: &Store, path: &Path) -> Result<Part> {
    let damaged = |e: &dyn std::fmt::Display| {
        Error::damaged(store.root(), format!("{}: {e}", path.display()))
    };
    let fields: Vec<Field> = population_schema()
        .fields()
        .iter()
        .map(|f| {
            if DICTIONARIES.contains(&f.name().as_str()) {
                Field::new(f.name(), dictionary(), true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, options).map_err(|e| damaged(&e))?;
    let groups = meta.metadata().num_row_groups();
    let parts: Vec<Part> = (0..groups)
        .into_par_iter()
        .map(|g| {
            // A file of its own: a cloned handle shares the read position, and the
            // reader seeks.
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
            let mask = ProjectionMask::columns(builder.parquet_schema(), COLUMNS);
            let reader = builder
                .with_projection(mask)
                .with_row_groups(vec![g])
                .with_batch_size(crate::store::segment::ROW_GROUP)
                .build()
                .map_err(|e| damaged(&e))?;
            read_batches(reader, &damaged)
        })
        .collect::<Result<_>>()?;
    let (names, kinds, of_row) = renumber(parts);
    Ok(Part {
        names,
        kinds,
        of_row: of_row.concat(),
    })
}

const COLUMNS: [&str; 3] = ["district", "community", "group"];

/// The columns read as dictionaries. Not `group`: a register that names no group has
/// only nulls there, and the Parquet reader builds a dictionary for such a column
/// by re-packing every (null) value, a third of the whole read.
const DICTIONARIES: [&str; 2] = ["district", "community"];

/// The kinds of the rows `reader` reads.
fn read_batches(
    reader: ParquetRecordBatchReader,
    damaged: &(dyn Fn(&dyn std::fmt::Display) -> Error + Sync),
) -> Result<Part> {
    let mut names: Numbering<String> = Numbering::new();
    let mut kinds: Numbering<Kind> = Numbering::new();
    let mut of_row = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| damaged(&e))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_dictionary_opt::<Int32Type>())
                .ok_or_else(|| damaged(&format!("{name} is not a text column")))
        };
        let (district, community) = (column("district")?, column("community")?);
        let group = batch
            .column_by_name("group")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| damaged(&"group is not a text column"))?;
        let (Some(dv), Some(cv)) = (values(district), values(community)) else {
            return Err(damaged(&"district or community is not text"));
        };
        // Batch-local dictionary keys → kind number. A register comes in area order,
        // so a row nearly always has the key of the row before: that one compare
        // spares a hash of three fields a row (the map's lookups were half of opening
        // a 25 M-person register).
        let mut local: HashMap<(i32, i32, bool), u32, KeyHash> = HashMap::with_hasher(KeyHash);
        let mut last: Option<((i32, i32, bool), u32)> = None;
        of_row.reserve(batch.num_rows());
        for i in 0..batch.num_rows() {
            // A blank group states nothing, like a null one.
            let grouped = group.is_valid(i) && !group.value(i).is_empty();
            let key = (key_at(district, i), key_at(community, i), grouped);
            let id = if let Some((k, id)) = last
                && k == key
            {
                id
            } else if let Some(&id) = local.get(&key) {
                last = Some((key, id));
                id
            } else {
                let mut number = |values: &StringArray, key: i32| -> Result<Option<u32>> {
                    let name = name_at(values, key).map_err(|e| damaged(&e))?;
                    Ok(name.map(|n| names.number(n.to_owned())))
                };
                let kind = Kind {
                    district: number(dv, key.0)?,
                    community: number(cv, key.1)?,
                    group: grouped,
                };
                let id = kinds.number(kind);
                local.insert(key, id);
                last = Some((key, id));
                id
            };
            of_row.push(id);
        }
    }
    Ok(Part {
        names: names.items,
        kinds: kinds.items,
        of_row,
    })
}

fn values(d: &DictionaryArray<Int32Type>) -> Option<&StringArray> {
    d.values().as_string_opt::<i32>()
}

/// The dictionary key of row `i`, or -1 for an empty (null) value.
fn key_at(d: &DictionaryArray<Int32Type>, i: usize) -> i32 {
    if d.is_null(i) { -1 } else { d.keys().value(i) }
}

/// The text of dictionary key `key`; `None` for no value (a null, or empty text: a
/// blank field states nothing).
fn name_at(values: &StringArray, key: i32) -> Result<Option<&str>, String> {
    let Ok(k) = usize::try_from(key) else {
        return Ok(None);
    };
    if k >= values.len() {
        return Err(format!("dictionary key {key} is out of range"));
    }
    Ok(Some(values)
        .filter(|v| !v.is_null(k))
        .map(|v| v.value(k))
        .filter(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_states_the_fields_it_names() {
        let kind = |district, community, group| Kind {
            district,
            community,
            group,
        };
        assert_eq!(kind(None, None, false).stated(), 0);
        assert_eq!(kind(Some(0), None, false).stated(), DISTRICT);
        assert_eq!(kind(None, Some(3), true).stated(), COMMUNITY | GROUP);
        assert_eq!(
            kind(Some(1), Some(2), true).stated(),
            DISTRICT | COMMUNITY | GROUP
        );
    }

    #[test]
    fn a_row_s_kind_is_the_same_by_block_as_in_the_table() {
        let kind = |district, group| Kind {
            district: Some(district),
            community: Some(district),
            group,
        };
        // 0 and 2 name no group, 1 and 3 do; areas change mid-block and rows mix.
        let kinds = vec![kind(0, false), kind(0, true), kind(1, false), kind(1, true)];
        let mut rows: Vec<u32> = (0..1000u32).map(|r| u32::from(r % 17 == 0)).collect();
        rows.extend((0..300u32).map(|r| 2 + u32::from(r % 5 == 0)));
        rows.extend((0..200u32).map(|r| (r * 7919) % 4));
        // Blocks of one kind from block 24 (row 1536): all naming a group, none, all
        // naming a group, then a last block cut short.
        rows.extend([0; 36]);
        rows.extend([1, 2, 3].iter().flat_map(|&k| [k; 64]));
        rows.extend([2; 9]);
        let areas = Areas::new(Vec::new(), kinds, vec![vec![3, 2], rows.clone()]);
        for (r, &k) in (0u32..).zip(&rows) {
            assert_eq!(areas.kind_of(1, r), Some(k), "row {r}");
        }
        let fast = &areas.blocks[1].fast;
        assert_eq!(fast[0], SLOW, "rows of two kinds");
        assert_eq!(
            (fast[24], fast[25], fast[26], fast[27]),
            (1, 2, 3, 2),
            "one kind, grouped or not"
        );
        let end = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        assert_eq!(
            areas.kind_of(1, end),
            None,
            "past the end of a block of one kind"
        );
        assert_eq!(
            (areas.kind_of(0, 0), areas.kind_of(0, 1)),
            (Some(3), Some(2))
        );
        assert_eq!(areas.kind_of(2, 0), None);
        let b = &areas.blocks[1];
        assert_ne!(b.plain_kind[0], MIXED, "a block of one area");
        assert_eq!(b.plain_kind[23], MIXED, "rows of two kinds at random");
    }

    #[test]
    fn blank_text_names_nothing() {
        let values = StringArray::from(vec![Some("North"), Some(""), None]);
        assert_eq!(name_at(&values, 0), Ok(Some("North")));
        assert_eq!(name_at(&values, 1), Ok(None));
        assert_eq!(name_at(&values, 2), Ok(None));
        assert_eq!(name_at(&values, -1), Ok(None));
        assert!(name_at(&values, 3).is_err());
    }
}
