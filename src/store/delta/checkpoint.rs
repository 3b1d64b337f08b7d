//! Checkpoints: the table's state at a version (protocol, metadata, the files in it and
//! the files taken out) as one Parquet file, `NNN.checkpoint.parquet`, named by
//! `_last_checkpoint`, so that another engine opening a table of thousands of commits
//! reads one file and the commits after it instead of every commit. pooltrack itself
//! reads the JSON commits, which it keeps; a checkpoint is derived from them and
//! written after the commit it summarizes, never in place of it.
//!
//! The columns are the protocol's (`txn`, `add`, `remove`, `metaData`, `protocol`), one
//! action a row, maps with Spark's `key_value`/`key`/`value` names.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, MapBuilder, MapFieldNames, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;

use super::{Action, Add, LOG, MetaData, Protocol, Remove, read_log};
use crate::store::fsutil;
use crate::{Error, Result};

/// A checkpoint after every this many versions (the protocol's usual interval).
pub const INTERVAL: u64 = 10;

/// The file name of the checkpoint of version `v`.
pub fn checkpoint_name(v: u64) -> String {
    format!("{v:020}.checkpoint.parquet")
}

/// The table's state after replaying its commits up to `version`.
struct State {
    protocol: Option<Protocol>,
    meta: Option<MetaData>,
    files: BTreeMap<String, Add>,
    removed: BTreeMap<String, Remove>,
}

fn replay(table: &Path, version: u64) -> Result<State> {
    let log = read_log(table)?.unwrap_or_default();
    let mut s = State {
        protocol: None,
        meta: None,
        files: BTreeMap::new(),
        removed: BTreeMap::new(),
    };
    for commit in log.iter().take_while(|c| c.version <= version) {
        for a in &commit.actions {
            match a {
                Action::Protocol(p) => s.protocol = Some(*p),
                Action::MetaData(m) => s.meta = Some(m.clone()),
                Action::Add(add) => {
                    s.removed.remove(&add.path);
                    s.files.insert(add.path.clone(), add.clone());
                }
                Action::Remove(r) => {
                    s.files.remove(&r.path);
                    s.removed.insert(r.path.clone(), r.clone());
                }
                Action::CommitInfo(_) | Action::Other(_) => {}
            }
        }
    }
    Ok(s)
}

fn string_map() -> DataType {
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

fn field(name: &str, t: DataType) -> Field {
    Field::new(name, t, true)
}

fn strukt(fields: Vec<Field>) -> DataType {
    DataType::Struct(Fields::from(fields))
}

fn schema() -> Schema {
    let add = strukt(vec![
        field("path", DataType::Utf8),
        field("partitionValues", string_map()),
        field("size", DataType::Int64),
        field("modificationTime", DataType::Int64),
        field("dataChange", DataType::Boolean),
        field("tags", string_map()),
        field("stats", DataType::Utf8),
    ]);
    let remove = strukt(vec![
        field("path", DataType::Utf8),
        field("deletionTimestamp", DataType::Int64),
        field("dataChange", DataType::Boolean),
        field("extendedFileMetadata", DataType::Boolean),
        field("partitionValues", string_map()),
        field("size", DataType::Int64),
    ]);
    let meta = strukt(vec![
        field("id", DataType::Utf8),
        field("name", DataType::Utf8),
        field("description", DataType::Utf8),
        field(
            "format",
            strukt(vec![
                field("provider", DataType::Utf8),
                field("options", string_map()),
            ]),
        ),
        field("schemaString", DataType::Utf8),
        field(
            "partitionColumns",
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        ),
        field("configuration", string_map()),
        field("createdTime", DataType::Int64),
    ]);
    let protocol = strukt(vec![
        field("minReaderVersion", DataType::Int32),
        field("minWriterVersion", DataType::Int32),
    ]);
    let txn = strukt(vec![
        field("appId", DataType::Utf8),
        field("version", DataType::Int64),
        field("lastUpdated", DataType::Int64),
    ]);
    Schema::new(vec![
        field("txn", txn),
        field("add", add),
        field("remove", remove),
        field("metaData", meta),
        field("protocol", protocol),
    ])
}

/// A map column: `maps[i]` is row i's map, `None` a null row.
fn maps(rows: &[Option<&BTreeMap<String, String>>]) -> Result<ArrayRef> {
    let names = MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    };
    let mut b = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for row in rows {
        if let Some(m) = row {
            for (k, v) in *m {
                b.keys().append_value(k);
                b.values().append_value(v);
            }
        }
        b.append(row.is_some())?;
    }
    Ok(Arc::new(b.finish()))
}

fn struct_of(t: &DataType, children: Vec<ArrayRef>, valid: &[bool]) -> Result<ArrayRef> {
    let DataType::Struct(fields) = t else {
        return Err(Error::Usage("a checkpoint column must be a struct".into()));
    };
    let nulls = NullBuffer::from(valid.to_vec());
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        children,
        Some(nulls),
    )?))
}

/// The rows of the checkpoint: protocol, metadata, every file in the table, every file
/// taken out of it.
fn batch(s: &State) -> Result<RecordBatch> {
    let schema = Arc::new(schema());
    let adds: Vec<&Add> = s.files.values().collect();
    let removes: Vec<&Remove> = s.removed.values().collect();
    // Row layout: [protocol][metaData][adds...][removes...].
    let n = 2 + adds.len() + removes.len();
    let kind = |i: usize| -> u8 {
        match i {
            0 => 0,
            1 => 1,
            i if i < 2 + adds.len() => 2,
            _ => 3,
        }
    };
    let add_at = |i: usize| (kind(i) == 2).then(|| adds[i - 2]);
    let remove_at = |i: usize| (kind(i) == 3).then(|| removes[i - 2 - adds.len()]);
    let meta_at = |i: usize| if kind(i) == 1 { s.meta.as_ref() } else { None };
    let protocol_at = |i: usize| if kind(i) == 0 { s.protocol } else { None };
    let empty = BTreeMap::new();
    let rows = 0..n;
    let field_type =
        |name: &str| -> Result<DataType> { Ok(schema.field_with_name(name)?.data_type().clone()) };

    let txn = struct_of(
        &field_type("txn")?,
        vec![
            Arc::new(StringArray::new_null(n)),
            Arc::new(Int64Array::new_null(n)),
            Arc::new(Int64Array::new_null(n)),
        ],
        &vec![false; n],
    )?;
    let add = struct_of(
        &field_type("add")?,
        vec![
            Arc::new(
                rows.clone()
                    .map(|i| add_at(i).map(|a| a.path.as_str()))
                    .collect::<StringArray>(),
            ),
            maps(
                &rows
                    .clone()
                    .map(|i| add_at(i).map(|a| &a.partition_values))
                    .collect::<Vec<_>>(),
            )?,
            Arc::new(
                rows.clone()
                    .map(|i| add_at(i).map(|a| i64::try_from(a.size).unwrap_or(i64::MAX)))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| add_at(i).map(|a| a.modification_time))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| add_at(i).map(|a| a.data_change))
                    .collect::<BooleanArray>(),
            ),
            maps(&vec![None; n])?,
            Arc::new(
                rows.clone()
                    .map(|i| add_at(i).and_then(|a| a.stats.as_deref()))
                    .collect::<StringArray>(),
            ),
        ],
        &rows
            .clone()
            .map(|i| add_at(i).is_some())
            .collect::<Vec<_>>(),
    )?;
    let remove = struct_of(
        &field_type("remove")?,
        vec![
            Arc::new(
                rows.clone()
                    .map(|i| remove_at(i).map(|r| r.path.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| remove_at(i).and_then(|r| r.deletion_timestamp))
                    .collect::<Int64Array>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| remove_at(i).map(|r| r.data_change))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| remove_at(i).and_then(|r| r.extended_file_metadata))
                    .collect::<BooleanArray>(),
            ),
            maps(
                &rows
                    .clone()
                    .map(|i| remove_at(i).map(|r| r.partition_values.as_ref().unwrap_or(&empty)))
                    .collect::<Vec<_>>(),
            )?,
            Arc::new(
                rows.clone()
                    .map(|i| {
                        remove_at(i)
                            .and_then(|r| r.size)
                            .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
                    })
                    .collect::<Int64Array>(),
            ),
        ],
        &rows
            .clone()
            .map(|i| remove_at(i).is_some())
            .collect::<Vec<_>>(),
    )?;
    let format_type = match field_type("metaData")? {
        DataType::Struct(f) => f
            .iter()
            .find(|f| f.name() == "format")
            .map(|f| f.data_type().clone())
            .ok_or_else(|| Error::Usage("no format field".into()))?,
        _ => return Err(Error::Usage("metaData must be a struct".into())),
    };
    let format = struct_of(
        &format_type,
        vec![
            Arc::new(
                rows.clone()
                    .map(|i| meta_at(i).map(|m| m.format.provider.as_str()))
                    .collect::<StringArray>(),
            ),
            maps(
                &rows
                    .clone()
                    .map(|i| meta_at(i).map(|m| &m.format.options))
                    .collect::<Vec<_>>(),
            )?,
        ],
        &rows
            .clone()
            .map(|i| meta_at(i).is_some())
            .collect::<Vec<_>>(),
    )?;
    let mut partition_columns = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(Field::new("element", DataType::Utf8, true)));
    for i in rows.clone() {
        match meta_at(i) {
            Some(m) => {
                for c in &m.partition_columns {
                    partition_columns.values().append_value(c);
                }
                partition_columns.append(true);
            }
            None => partition_columns.append(false),
        }
    }
    let meta = struct_of(
        &field_type("metaData")?,
        vec![
            Arc::new(
                rows.clone()
                    .map(|i| meta_at(i).map(|m| m.id.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| meta_at(i).and_then(|m| m.name.as_deref()))
                    .collect::<StringArray>(),
            ),
            Arc::new(StringArray::new_null(n)),
            format,
            Arc::new(
                rows.clone()
                    .map(|i| meta_at(i).map(|m| m.schema_string.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(partition_columns.finish()),
            maps(
                &rows
                    .clone()
                    .map(|i| meta_at(i).map(|m| &m.configuration))
                    .collect::<Vec<_>>(),
            )?,
            Arc::new(
                rows.clone()
                    .map(|i| meta_at(i).and_then(|m| m.created_time))
                    .collect::<Int64Array>(),
            ),
        ],
        &rows
            .clone()
            .map(|i| meta_at(i).is_some())
            .collect::<Vec<_>>(),
    )?;
    let protocol = struct_of(
        &field_type("protocol")?,
        vec![
            Arc::new(
                rows.clone()
                    .map(|i| protocol_at(i).map(|p| p.min_reader_version))
                    .collect::<Int32Array>(),
            ),
            Arc::new(
                rows.clone()
                    .map(|i| protocol_at(i).map(|p| p.min_writer_version))
                    .collect::<Int32Array>(),
            ),
        ],
        &rows.map(|i| protocol_at(i).is_some()).collect::<Vec<_>>(),
    )?;
    Ok(RecordBatch::try_new(
        schema,
        vec![txn, add, remove, meta, protocol],
    )?)
}

/// Writes the checkpoint of `table` at `version` and points `_last_checkpoint` at it:
/// the Parquet file under a temporary name, fsynced and renamed, then
/// `_last_checkpoint` replaced atomically. Readers that find no checkpoint, or an older
/// one, replay the commits instead: a checkpoint never decides what is committed.
pub fn write_checkpoint(table: &Path, version: u64) -> Result<()> {
    let state = replay(table, version)?;
    if state.protocol.is_none() || state.meta.is_none() {
        return Err(Error::damaged(
            table.join(LOG),
            format!("version {version} has no protocol or metadata to checkpoint"),
        ));
    }
    let rows = batch(&state)?;
    let log = table.join(LOG);
    let path = log.join(checkpoint_name(version));
    let tmp = log.join(format!(
        ".{}.{}.tmp",
        checkpoint_name(version),
        std::process::id()
    ));
    let file = fsutil::create_file(&tmp)?;
    let written = (|| -> Result<()> {
        let mut w =
            ArrowWriter::try_new(file, rows.schema(), None).map_err(|e| Error::parquet(&tmp, e))?;
        w.write(&rows).map_err(|e| Error::parquet(&tmp, e))?;
        let file = w.into_inner().map_err(|e| Error::parquet(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    let last = format!(r#"{{"version":{version},"size":{}}}"#, rows.num_rows());
    fsutil::write_atomic(&log.join("_last_checkpoint"), last.as_bytes())
}
