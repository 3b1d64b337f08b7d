//! A text column with few distinct values (sites, labs) read as a small number per row:
//! 25 million rows name a few thousand sites, so no row's text becomes a string of its
//! own. The Parquet dictionary pages are read as Arrow dictionaries, a row group per
//! task on all cores, and each part's names are numbered across the round.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use rayon::prelude::*;

use super::read::segment_files;
use super::{BatchKind, Store};
use crate::{Error, Result};

/// The code of a row that leaves the column empty (null or blank text).
pub const UNSTATED: u32 = u32::MAX;

/// One text column of a round's rows as numbers into `names`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// The distinct texts, by number (in order of first appearance).
    pub names: Vec<String>,
    /// Each row's number, or [`UNSTATED`], rows numbered across the round's segments of
    /// the kind in manifest order.
    pub codes: Vec<u32>,
}

impl Labels {
    /// The text of row `row`; `None` when it is unstated (or past the end).
    pub fn of_row(&self, row: usize) -> Option<&str> {
        self.codes
            .get(row)
            .and_then(|&c| self.names.get(c as usize))
            .map(String::as_str)
    }
}

/// Reads the text column `column` of every row of `round`'s segments of `kind` as
/// [`Labels`]. A segment without the column gives [`UNSTATED`] rows.
///
/// ```
/// use pooltrack::ingest::{IngestOptions, ingest_collections};
/// use pooltrack::store::{BatchKind, Store, labels::labels};
///
/// let dir = tempfile::tempdir()?;
/// let tubes = dir.path().join("tubes.csv");
/// std::fs::write(
///     &tubes,
///     "tube,person,mode,collected_at,site\n\
///      PL01,P-1,pool,2022-04-02 08:00,North\n\
///      PL01,P-2,pool,2022-04-02 08:01,North\n\
///      PL02,P-3,pool,2022-04-02 08:02,\n\
///      PL03,P-4,pool,2022-04-02 08:03,South\n",
/// )?;
/// let mut store = Store::open_writer(&dir.path().join("store"))?;
/// ingest_collections(&mut store, &[tubes], "R1", &IngestOptions::default(), None)?;
/// let sites = labels(&store, "R1", BatchKind::Collections, "site")?;
/// assert_eq!(sites.names, ["North", "South"]);
/// let rows: Vec<Option<&str>> = (0..4).map(|r| sites.of_row(r)).collect();
/// assert_eq!(rows, [Some("North"), Some("North"), None, Some("South")]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn labels(store: &Store, round: &str, kind: BatchKind, column: &str) -> Result<Labels> {
    let parts: Vec<Labels> = segment_files(store, round, kind)
        .iter()
        .map(|path| read_file(store, path, column))
        .collect::<Result<Vec<Vec<Labels>>>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(renumber(parts))
}

/// Joins parts that each numbered their own names.
fn renumber(parts: Vec<Labels>) -> Labels {
    let mut names: Vec<String> = Vec::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut codes = Vec::with_capacity(parts.iter().map(|p| p.codes.len()).sum());
    for part in parts {
        let global: Vec<u32> = part
            .names
            .into_iter()
            .map(|n| {
                *ids.entry(n).or_insert_with_key(|n| {
                    names.push(n.clone());
                    u32::try_from(names.len() - 1).unwrap_or(UNSTATED)
                })
            })
            .collect();
        codes.extend(
            part.codes
                .iter()
                .map(|&c| global.get(c as usize).copied().unwrap_or(UNSTATED)),
        );
    }
    Labels { names, codes }
}

/// One segment's rows, a part per row group (in order).
fn read_file(store: &Store, path: &Path, column: &str) -> Result<Vec<Labels>> {
    let damaged = |e: &dyn std::fmt::Display| {
        Error::damaged(store.root(), format!("{}: {e}", path.display()))
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let plain =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| damaged(&e))?;
    let rows = usize::try_from(plain.metadata().file_metadata().num_rows()).unwrap_or(0);
    if plain.schema().field_with_name(column).is_err() {
        return Ok(vec![Labels {
            names: Vec::new(),
            codes: vec![UNSTATED; rows],
        }]);
    }
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let fields: Vec<Field> = plain
        .schema()
        .fields()
        .iter()
        .map(|f| {
            if f.name() == column {
                Field::new(f.name(), dictionary.clone(), true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    let meta = ArrowReaderMetadata::load(&file, options).map_err(|e| damaged(&e))?;
    let groups = meta.metadata().num_row_groups();
    (0..groups)
        .into_par_iter()
        .map(|g| {
            // A file of its own: a cloned handle shares the read position, and the
            // reader seeks.
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone());
            let mask = ProjectionMask::columns(builder.parquet_schema(), [column]);
            let reader = builder
                .with_projection(mask)
                .with_row_groups(vec![g])
                .with_batch_size(super::segment::ROW_GROUP)
                .build()
                .map_err(|e| damaged(&e))?;
            let mut part = Labels::default();
            let mut ids: HashMap<&str, u32> = HashMap::new();
            let mut batches = Vec::new();
            for batch in reader {
                batches.push(batch.map_err(|e| damaged(&e))?);
            }
            for batch in &batches {
                let col = batch
                    .column(0)
                    .as_dictionary_opt::<Int32Type>()
                    .ok_or_else(|| damaged(&format!("{column} is not a text column")))?;
                let values: &StringArray = col
                    .values()
                    .as_string_opt::<i32>()
                    .ok_or_else(|| damaged(&format!("{column} is not a text column")))?;
                // Dictionary key → part number, made once per batch.
                let local: Vec<u32> = (0..values.len())
                    .map(|k| {
                        if values.is_null(k) || values.value(k).is_empty() {
                            return UNSTATED;
                        }
                        *ids.entry(values.value(k)).or_insert_with(|| {
                            part.names.push(values.value(k).to_owned());
                            u32::try_from(part.names.len() - 1).unwrap_or(UNSTATED)
                        })
                    })
                    .collect();
                let keys = col.keys();
                part.codes.extend((0..col.len()).map(|i| {
                    if keys.is_null(i) {
                        UNSTATED
                    } else {
                        usize::try_from(keys.value(i))
                            .ok()
                            .and_then(|k| local.get(k))
                            .copied()
                            .unwrap_or(UNSTATED)
                    }
                }));
            }
            Ok(part)
        })
        .collect()
}
