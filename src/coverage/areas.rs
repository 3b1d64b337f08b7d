//! Each population row's area (its district and community) as a small number, read
//! from the Parquet dictionary pages: 25 million rows name a few thousand areas, so no
//! row's text is decoded into a string of its own.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3Builder;

use crate::store::Store;
use crate::store::segment::population_schema;
use crate::{Error, Result};

/// A district and community as registered; `None` where the register left it empty.
pub type AreaName = (Option<String>, Option<String>);

/// The areas of every population row.
#[derive(Debug, Default)]
pub struct Areas {
    /// The name of each area number.
    pub names: Vec<AreaName>,
    /// The area number of each row, per population segment (manifest order).
    pub of_row: Vec<Vec<u32>>,
}

/// Reads the area of every row of the population segments `files`.
pub fn read(store: &Store, files: &[PathBuf]) -> Result<Areas> {
    let parts: Vec<(Vec<AreaName>, Vec<u32>)> = files
        .par_iter()
        .map(|path| read_file(store, path))
        .collect::<Result<_>>()?;
    // Number the areas across segments; each segment numbered its own.
    let mut areas = Areas::default();
    let mut ids: HashMap<AreaName, u32> = HashMap::new();
    for (names, mut rows) in parts {
        let global: Vec<u32> = names
            .into_iter()
            .map(|name| {
                let next = u32::try_from(areas.names.len()).unwrap_or(u32::MAX);
                *ids.entry(name.clone()).or_insert_with(|| {
                    areas.names.push(name);
                    next
                })
            })
            .collect();
        for a in &mut rows {
            *a = global.get(*a as usize).copied().unwrap_or(0);
        }
        areas.of_row.push(rows);
    }
    Ok(areas)
}

fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn read_file(store: &Store, path: &Path) -> Result<(Vec<AreaName>, Vec<u32>)> {
    let damaged = |e: &dyn std::fmt::Display| {
        Error::damaged(store.root(), format!("{}: {e}", path.display()))
    };
    let fields: Vec<Field> = population_schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "district" | "community" => Field::new(f.name(), dictionary(), true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| damaged(&e))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["district", "community"]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(256 * 1024)
        .build()
        .map_err(|e| damaged(&e))?;
    let mut names: Vec<AreaName> = Vec::new();
    let mut ids: HashMap<AreaName, u32> = HashMap::new();
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
        let (dv, cv) = (values(district), values(community));
        let (Some(dv), Some(cv)) = (dv, cv) else {
            return Err(damaged(&"district or community is not text"));
        };
        // Batch-local dictionary keys → area number; most rows hit the first lookup.
        let mut local: HashMap<(i32, i32), u32, Xxh3Builder> =
            HashMap::with_hasher(Xxh3Builder::new());
        for i in 0..batch.num_rows() {
            let key = (key_at(district, i), key_at(community, i));
            let id = match local.get(&key) {
                Some(&id) => id,
                None => {
                    let name = (
                        name_at(dv, key.0).map_err(|e| damaged(&e))?,
                        name_at(cv, key.1).map_err(|e| damaged(&e))?,
                    );
                    let next = u32::try_from(names.len()).unwrap_or(u32::MAX);
                    let id = *ids.entry(name.clone()).or_insert_with(|| {
                        names.push(name);
                        next
                    });
                    local.insert(key, id);
                    id
                }
            };
            of_row.push(id);
        }
    }
    Ok((names, of_row))
}

fn values(d: &DictionaryArray<Int32Type>) -> Option<&StringArray> {
    d.values().as_string_opt::<i32>()
}

/// The dictionary key of row `i`, or -1 for an empty (null) value.
fn key_at(d: &DictionaryArray<Int32Type>, i: usize) -> i32 {
    if d.is_null(i) { -1 } else { d.keys().value(i) }
}

fn name_at(values: &StringArray, key: i32) -> Result<Option<String>, String> {
    let Ok(k) = usize::try_from(key) else {
        return Ok(None);
    };
    if k >= values.len() {
        return Err(format!("dictionary key {key} is out of range"));
    }
    Ok((!values.is_null(k)).then(|| values.value(k).to_owned()))
}
