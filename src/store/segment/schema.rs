//! The Arrow schemas of the three tables' segments: the writers build their columns
//! to them, and the reader decodes with them.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// The schema of collections segments.
pub fn collections_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("round", DataType::Utf8, false),
        Field::new("tube", DataType::Utf8, false),
        Field::new("person", DataType::Utf8, false),
        // Null: the row did not state it (its tube's metadata comes from other rows).
        Field::new("mode", DataType::Utf8, true),
        Field::new("capacity", DataType::UInt8, true),
        Field::new("collected_at", timestamp(), false),
        Field::new("site", DataType::Utf8, true),
        Field::new("batch", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
    ]))
}

/// The schema of results segments.
pub fn results_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("round", DataType::Utf8, false),
        Field::new("tube", DataType::Utf8, false),
        Field::new("result", DataType::Utf8, false),
        Field::new("ct_orf1ab", DataType::Float32, true),
        Field::new("ct_n", DataType::Float32, true),
        Field::new("result_from_ct", DataType::Boolean, false),
        Field::new("reported_at", timestamp(), false),
        Field::new("lab", DataType::Utf8, true),
        Field::new("plate", DataType::Utf8, true),
        Field::new("well", DataType::Utf8, true),
        Field::new("sample_type", DataType::Utf8, false),
        Field::new("ct_ic", DataType::Float32, true),
        Field::new("received_at", timestamp(), true),
        Field::new("batch", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
    ]))
}

/// The schema of population segments.
pub fn population_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, true),
        Field::new("community", DataType::Utf8, true),
        Field::new("group", DataType::Utf8, true),
        Field::new("batch", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
    ]))
}

/// `schema` with the named text columns given as dictionaries with the given key types,
/// for writing columns with few values (round, mode, source file, site) without
/// spelling each row's text out in memory. The Parquet file is the same as for plain
/// text (dictionary-encoded byte arrays), and readers see `Utf8`.
pub(super) fn with_dictionaries(schema: &Schema, keys: &[(&str, DataType)]) -> Arc<Schema> {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match keys.iter().find(|(name, _)| name == f.name()) {
            Some((_, key)) => Field::new(
                f.name(),
                DataType::Dictionary(Box::new(key.clone()), Box::new(f.data_type().clone())),
                f.is_nullable(),
            ),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}
