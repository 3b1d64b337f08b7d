//! A population batch's segment: the Parquet file in input order and the person index
//! that coverage merges with a round's.

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::UInt16Type;
use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::DataType;

use super::Stems;
use super::columns::{batch_column, dictionary, source_keys, take};
use super::parquet_file::write_parquet;
use super::persons::write_person_index;
use super::schema::{population_schema, with_dictionaries};
use crate::Result;
use crate::rows::PopulationRows;
use crate::store::index::PersonKeys;
use crate::store::manifest::{BatchKind, PopulationSegment};

/// Writes the rows `order` of `rows` (input order: file, then line, so a later
/// registration has a later row) as population batch `batch`: the Parquet file and a
/// person index sorted by the 128-bit person hash, which coverage merges with a round's.
pub fn write_population(
    root: &Path,
    batch: u32,
    files: &[String],
    rows: &PopulationRows,
    order: &[u32],
    keys: PersonKeys,
) -> Result<PopulationSegment> {
    let stems = Stems::create(root, BatchKind::Population, None, batch)?;
    let n = order.len();

    let persons_path = stems.private.with_extension("persons");
    let persons = write_person_index(root, &persons_path, order.len(), keys, |k| {
        keys.key(rows.person.get(order[k] as usize))
    })?;

    let columns: Vec<ArrayRef> = vec![
        Arc::new(take(&rows.person, order)),
        Arc::new(take(&rows.district, order)),
        Arc::new(take(&rows.community, order)),
        Arc::new(take(&rows.group, order)),
        batch_column(batch, n)?,
        dictionary::<UInt16Type>(
            source_keys(&rows.source, order),
            &files.iter().map(String::as_str).collect::<Vec<_>>(),
        )?,
        Arc::new(UInt64Array::from_iter_values(
            order
                .iter()
                .map(|&i| u64::from(rows.source.line(i as usize))),
        )),
    ];
    let schema = with_dictionaries(
        &population_schema(),
        &[("batch", DataType::UInt8), ("source", DataType::UInt16)],
    );
    let record = RecordBatch::try_new(schema, columns)?;
    let parquet_path = stems.data.with_extension("parquet");
    let parquet = write_parquet(root, &parquet_path, &record)?;
    stems.sync()?;
    Ok(PopulationSegment {
        rows: n as u64,
        parquet,
        persons,
    })
}
