//! Reading a round's segments back from Parquet into typed columns.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::types::{
    Float32Type, TimestampMillisecondType, UInt8Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, Float32Array, PrimitiveArray, RecordBatch, StringArray};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use rayon::prelude::*;

use crate::model::{Mode, Outcome, SampleType};
use crate::store::segment::{collections_schema, population_schema, results_schema};
use crate::store::{BatchKind, Store};
use crate::text::text_at;
use crate::time::Millis;
use crate::{Error, Result};

/// A round's collection rows, all segments concatenated.
#[derive(Clone)]
pub struct Collections {
    /// Tube barcodes.
    pub tube: StringArray,
    /// Person ids.
    pub person: StringArray,
    /// Modes as each row stated them (`None`: not stated).
    pub mode: Vec<Option<Mode>>,
    /// Capacities as each row stated them (0: not stated).
    pub capacity: Vec<u8>,
    /// Collection times.
    pub collected_at: Vec<Millis>,
    /// Sites (nullable).
    pub site: StringArray,
    /// Batch of each row.
    pub batch: Vec<u32>,
    /// Source file of each row.
    pub source: StringArray,
    /// Line in the source file.
    pub line: Vec<u64>,
}

/// A round's result rows, all segments concatenated.
#[derive(Clone)]
pub struct Results {
    /// Tube barcodes.
    pub tube: StringArray,
    /// Outcomes.
    pub outcome: Vec<Outcome>,
    /// Ct `ORF1ab` (nullable).
    pub ct_orf1ab: Float32Array,
    /// Ct N (nullable).
    pub ct_n: Float32Array,
    /// Report times.
    pub reported_at: Vec<Millis>,
    /// Labs (nullable).
    pub lab: StringArray,
    /// Plates (nullable).
    pub plate: StringArray,
    /// Wells (nullable).
    pub well: StringArray,
    /// Sample or plate control.
    pub sample_type: Vec<SampleType>,
    /// Internal-control Ct (nullable).
    pub ct_ic: Float32Array,
    /// When the lab received the tube (nullable).
    pub received_at: Vec<Option<Millis>>,
    /// Batch of each row.
    pub batch: Vec<u32>,
    /// Source file of each row.
    pub source: StringArray,
    /// Line in the source file.
    pub line: Vec<u64>,
}

impl Results {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.outcome.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.outcome.is_empty()
    }

    /// The row's Ct values.
    pub fn cts(&self, row: usize) -> (Option<f32>, Option<f32>) {
        let get = |a: &Float32Array| (!a.is_null(row)).then(|| a.value(row));
        (get(&self.ct_orf1ab), get(&self.ct_n))
    }
}

/// The Parquet files of a round's segments of one kind, in manifest order: the order
/// that numbers the round's rows everywhere in the tracker.
pub(crate) fn segment_files(store: &Store, round: &str, kind: BatchKind) -> Vec<PathBuf> {
    segments_of(store, round, kind)
        .map(|(path, _)| path)
        .collect()
}

/// The round's segment files of `kind` in manifest order, each with its rows as its
/// commit records them.
fn segments_of<'a>(
    store: &'a Store,
    round: &'a str,
    kind: BatchKind,
) -> impl Iterator<Item = (PathBuf, u64)> + 'a {
    store
        .manifest()
        .segments(Some(round))
        .filter(move |(k, _, _)| *k == kind)
        .map(|(_, s, _)| (store.root().join(&s.parquet.path), s.rows))
}

fn open_reader(store: &Store, path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    store.check_read(path)?;
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| Error::damaged(store.root(), format!("{}: {e}", path.display())))
}

fn damaged_file(store: &Store, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::damaged(store.root(), format!("{}: {e}", path.display()))
}

/// The schema segments of `kind` are read with.
fn schema_of(kind: BatchKind) -> Arc<Schema> {
    match kind {
        BatchKind::Collections => collections_schema(),
        BatchKind::Results => results_schema(),
        BatchKind::Population => population_schema(),
        BatchKind::Custody => crate::store::segment::custody_schema(),
    }
}

/// The types of the named columns (text for a name the schema lacks).
fn column_types(schema: &Schema, names: &[&str]) -> Vec<DataType> {
    names
        .iter()
        .map(|c| {
            schema
                .field_with_name(c)
                .map_or(DataType::Utf8, |f| f.data_type().clone())
        })
        .collect()
}

/// Reads a segment file's footer; a footer that does not read is damage.
fn segment_footer(store: &Store, path: &Path) -> Result<ArrowReaderMetadata> {
    store.check_read(path)?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| damaged_file(store, path, e))
}

/// Rows in a round's segments of `kind`, from the Parquet footers alone.
pub fn row_count(store: &Store, round: &str, kind: BatchKind) -> Result<u64> {
    segment_files(store, round, kind)
        .iter()
        .map(|path| {
            let meta = segment_footer(store, path)?;
            Ok(u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0))
        })
        .sum()
}

/// The least value of a timestamp column in each of a round's segment files of
/// `kind`, in manifest order, without reading a column: a collections segment's first
/// `collected_at` as its commit records it, else the statistics in the file's footer;
/// `None` for a file whose footer states none (or that holds no rows).
pub fn time_floors(
    store: &Store,
    round: &str,
    kind: BatchKind,
    column: &str,
) -> Result<Vec<Option<Millis>>> {
    let recorded = kind == BatchKind::Collections && column == "collected_at";
    store
        .manifest()
        .segments(Some(round))
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, s, _)| match s.first_collected_at {
            Some(at) if recorded => Ok(Some(at)),
            _ => footer_floor(store, &store.root().join(&s.parquet.path), column),
        })
        .collect()
}

/// The least value of a timestamp column of the Parquet file at `path` by its footer's
/// statistics ([`time_floors`]).
fn footer_floor(store: &Store, path: &Path, column: &str) -> Result<Option<Millis>> {
    use parquet::file::statistics::Statistics;
    let meta = segment_footer(store, path)?;
    let meta = meta.metadata();
    let Some(at) = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == column)
    else {
        return Ok(None);
    };
    let mut least: Option<Millis> = None;
    for group in meta.row_groups() {
        if group.num_rows() == 0 {
            continue;
        }
        let Some(Statistics::Int64(stats)) = group.column(at).statistics() else {
            return Ok(None);
        };
        let Some(&min) = stats.min_opt() else {
            return Ok(None);
        };
        least = Some(least.map_or(min, |l| l.min(min)));
    }
    Ok(least)
}

/// Reads the named columns of the rows `rows` (ascending, numbered across the round's
/// segments of `kind` in manifest order). Only the pages holding those rows are decoded.
pub fn fetch(
    store: &Store,
    round: &str,
    kind: BatchKind,
    columns: &[&str],
    rows: &[u32],
) -> Result<Vec<ArrayRef>> {
    let (files, counts): (Vec<PathBuf>, Vec<u64>) = segments_of(store, round, kind).unzip();
    let schema = schema_of(kind);
    fetch_counted(store, &files, Some(&counts), &schema, columns, rows)
}

/// Reads the named columns of the rows `rows` (ascending, numbered across `files` in
/// order), decoding only the pages that hold them; `schema` gives the columns' types
/// when no row is read.
pub fn fetch_files(
    store: &Store,
    files: &[PathBuf],
    schema: &Schema,
    columns: &[&str],
    rows: &[u32],
) -> Result<Vec<ArrayRef>> {
    fetch_counted(store, files, None, schema, columns, rows)
}

/// [`fetch_files`], given each file's rows where the manifest records them: then only
/// the files holding a wanted row have their footers read (a person's rows in a round
/// of 2,500 batches are in one or two of them).
fn fetch_counted(
    store: &Store,
    files: &[PathBuf],
    counts: Option<&[u64]>,
    schema: &Schema,
    columns: &[&str],
    rows: &[u32],
) -> Result<Vec<ArrayRef>> {
    let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
    let types = column_types(schema, columns);
    let mut base = 0u64;
    let mut at = 0;
    for (i, path) in files.iter().enumerate() {
        let known = counts.and_then(|c| c.get(i).copied());
        if let Some(n) = known
            && rows.get(at).is_none_or(|&r| u64::from(r) >= base + n)
        {
            base += n;
            continue;
        }
        let meta = segment_footer(store, path)?;
        let n = u64::try_from(meta.metadata().file_metadata().num_rows()).unwrap_or(0);
        if known.is_some_and(|k| k != n) {
            return Err(damaged_file(
                store,
                path,
                format!(
                    "holds {n} row(s), its commit says {}",
                    known.unwrap_or_default()
                ),
            ));
        }
        let start = at;
        while at < rows.len() && u64::from(rows[at]) < base + n {
            at += 1;
        }
        let local: Vec<u64> = rows[start..at]
            .iter()
            .map(|&r| u64::from(r) - base)
            .collect();
        base += n;
        if local.is_empty() {
            continue;
        }
        // Row groups in chunks decoded in parallel: a list scattered over a 25 M-row
        // segment touches nearly every page, and decompressing them is the work.
        let groups: Vec<u64> = meta
            .metadata()
            .row_groups()
            .iter()
            .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
            .collect();
        let per_chunk = groups
            .len()
            .div_ceil(4 * rayon::current_num_threads())
            .max(1);
        let mut chunks: Vec<(Vec<usize>, u64, &[u64])> = Vec::new();
        let (mut first_row, mut from) = (0u64, 0usize);
        let ids: Vec<usize> = (0..groups.len()).collect();
        for ids in ids.chunks(per_chunk) {
            let len: u64 = ids.iter().map(|&g| groups[g]).sum();
            let to = from + local[from..].partition_point(|&r| r < first_row + len);
            if to > from {
                chunks.push((ids.to_vec(), first_row, &local[from..to]));
            }
            first_row += len;
            from = to;
        }
        let pieces: Vec<Vec<RecordBatch>> = chunks
            .par_iter()
            .map(|(ids, first, sel)| {
                // Its own descriptor: clones share one file offset, and readers seek.
                let f = File::open(path).map_err(|e| Error::io(path, e))?;
                let total: u64 = ids.iter().map(|&g| groups[g]).sum();
                let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
                let selection = RowSelection::from_consecutive_ranges(
                    sel.iter().map(|&r| {
                        let r = to_usize(r - first);
                        r..r + 1
                    }),
                    to_usize(total),
                );
                let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta.clone());
                let mask =
                    ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
                let reader = builder
                    .with_row_groups(ids.clone())
                    .with_projection(mask)
                    .with_row_selection(selection)
                    .with_batch_size(64 * 1024)
                    .build()
                    .map_err(|e| damaged_file(store, path, e))?;
                reader
                    .map(|b| b.map_err(|e| damaged_file(store, path, e)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        let batches: Vec<RecordBatch> = pieces.into_iter().flatten().collect();
        let Some(first) = batches.first() else {
            continue;
        };
        let all = arrow_select::concat::concat_batches(&first.schema(), &batches)?;
        let cols = columns
            .iter()
            .map(|c| {
                all.column_by_name(c)
                    .cloned()
                    .ok_or_else(|| damaged_file(store, path, format!("no column {c}")))
            })
            .collect::<Result<Vec<_>>>()?;
        parts.push(cols);
    }
    concat_parts(&parts, &types)
}

/// Which rows [`map_rows`] reads.
#[derive(Debug, Clone, Copy)]
pub enum Picked<'a> {
    /// Every row.
    All,
    /// These rows, ascending, numbered across the files in order.
    Rows(&'a [u32]),
}

/// One row group of a segment file, read on its own (a task of [`map_rows`] and
/// [`times`]: a city's collections are one file of 191 row groups, which read as one
/// file would keep a core busy and the other idle).
struct RowGroup<'s> {
    path: &'s Path,
    meta: ArrowReaderMetadata,
    index: usize,
    rows: usize,
}

impl RowGroup<'_> {
    /// A reader of this row group's `columns`, on its own descriptor (clones share one
    /// file offset, and readers seek), in one batch.
    fn reader(&self, columns: &[&str]) -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let f = File::open(self.path).map_err(|e| Error::io(self.path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, self.meta.clone());
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        Ok(builder
            .with_row_groups(vec![self.index])
            .with_projection(mask)
            .with_batch_size(self.rows.max(1)))
    }
}

/// [`segment_footer`], with the columns named in `dictionaries` read as dictionaries
/// (`Int32` keys).
fn footer_with_dictionaries(
    store: &Store,
    path: &Path,
    dictionaries: &[&str],
) -> Result<ArrowReaderMetadata> {
    let plain = segment_footer(store, path)?;
    if dictionaries.is_empty() {
        return Ok(plain);
    }
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let fields: Vec<arrow_schema::Field> = plain
        .schema()
        .fields()
        .iter()
        .map(|f| {
            if dictionaries.contains(&f.name().as_str()) {
                arrow_schema::Field::new(f.name(), dictionary.clone(), f.is_nullable())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(Schema::new(fields)));
    ArrowReaderMetadata::try_new(Arc::clone(plain.metadata()), options)
        .map_err(|e| damaged_file(store, path, e))
}

/// The row groups of the file at `path` whose footer is `meta`, in order.
fn row_groups_of<'s>(
    store: &Store,
    path: &'s Path,
    meta: &ArrowReaderMetadata,
) -> Result<Vec<RowGroup<'s>>> {
    meta.metadata()
        .row_groups()
        .iter()
        .enumerate()
        .map(|(index, group)| {
            let rows = usize::try_from(group.num_rows())
                .map_err(|_| damaged_file(store, path, "a row group of a negative length"))?;
            Ok(RowGroup {
                path,
                meta: meta.clone(),
                index,
                rows,
            })
        })
        .collect()
}

/// Reads the named columns of the picked rows of `files` (rows numbered across them in
/// order), a row group per task on all cores, and hands each row group's picked rows to
/// `make` as columns in `columns` order; returns what it made, in row order. The
/// columns named in `dictionaries` are read as dictionaries (`Int32` keys): a file
/// name repeated on every row of a segment is decoded once, not once a row.
///
/// What `make` gets is dropped before the next row group is read, so reading a whole
/// round's ids into a compact form never holds them as text.
pub fn map_rows<T: Send>(
    store: &Store,
    files: &[PathBuf],
    columns: &[&str],
    dictionaries: &[&str],
    rows: Picked<'_>,
    make: impl Fn(&[ArrayRef]) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    struct Task<'s> {
        group: RowGroup<'s>,
        /// Rows of the group to read, from its start; `None`: all.
        picked: Option<Vec<usize>>,
    }
    let mut tasks: Vec<Task<'_>> = Vec::new();
    let mut base = 0u64;
    let mut at = 0usize;
    for path in files {
        let meta = footer_with_dictionaries(store, path, dictionaries)?;
        for group in row_groups_of(store, path, &meta)? {
            let len = group.rows as u64;
            let picked = match rows {
                Picked::All => None,
                Picked::Rows(rows) => {
                    let start = at;
                    while at < rows.len() && u64::from(rows[at]) < base + len {
                        at += 1;
                    }
                    if start == at {
                        base += len;
                        continue;
                    }
                    let local: Vec<usize> = rows[start..at]
                        .iter()
                        .filter_map(|&r| usize::try_from(u64::from(r) - base).ok())
                        .collect();
                    (local.len() as u64 != len).then_some(local)
                }
            };
            tasks.push(Task { group, picked });
            base += len;
        }
    }
    tasks
        .par_iter()
        .map(|task| -> Result<Vec<T>> {
            let g = &task.group;
            let path = g.path;
            let mut builder = g.reader(columns)?;
            if let Some(picked) = &task.picked {
                builder = builder.with_row_selection(RowSelection::from_consecutive_ranges(
                    picked.iter().map(|&r| r..r + 1),
                    g.rows,
                ));
            }
            let reader = builder.build().map_err(|e| damaged_file(store, path, e))?;
            let mut made = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| damaged_file(store, path, e))?;
                let cols = columns
                    .iter()
                    .map(|c| {
                        batch
                            .column_by_name(c)
                            .cloned()
                            .ok_or_else(|| damaged_file(store, path, format!("no column {c}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                made.push(make(&cols)?);
            }
            Ok(made)
        })
        .collect::<Result<Vec<Vec<T>>>>()
        .map(|parts| parts.into_iter().flatten().collect())
}

/// Joins each column's pieces (one piece per segment) into one array.
fn concat_parts(parts: &[Vec<ArrayRef>], types: &[DataType]) -> Result<Vec<ArrayRef>> {
    types
        .iter()
        .enumerate()
        .map(|(c, ty)| {
            let pieces: Vec<&dyn Array> = parts.iter().map(|p| p[c].as_ref()).collect();
            if pieces.is_empty() {
                return Ok(arrow_array::new_empty_array(ty));
            }
            Ok(arrow_select::concat::concat(&pieces)?)
        })
        .collect()
}

/// Reads whole columns of every row of a round's segments of `kind`, in row order. A
/// segment written before a column existed gives nulls for it.
pub fn columns(
    store: &Store,
    round: &str,
    kind: BatchKind,
    names: &[&str],
) -> Result<Vec<ArrayRef>> {
    let files = segment_files(store, round, kind);
    let schema = schema_of(kind);
    let types = column_types(&schema, names);
    let parts: Vec<Vec<ArrayRef>> = files
        .par_iter()
        .map(|path| {
            let builder = open_reader(store, path)?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().copied());
            let reader = builder
                .with_projection(mask)
                .with_batch_size(256 * 1024)
                .build()
                .map_err(|e| damaged_file(store, path, e))?;
            let mut batches = Vec::new();
            for b in reader {
                batches.push(b.map_err(|e| damaged_file(store, path, e))?);
            }
            let rows = batches.iter().map(RecordBatch::num_rows).sum();
            names
                .iter()
                .zip(&types)
                .map(|(name, ty)| {
                    let pieces: Vec<&dyn Array> = batches
                        .iter()
                        .filter_map(|b| b.column_by_name(name).map(std::convert::AsRef::as_ref))
                        .collect();
                    if pieces.len() < batches.len() || batches.is_empty() {
                        return Ok(arrow_array::new_null_array(ty, rows));
                    }
                    Ok(arrow_select::concat::concat(&pieces)?)
                })
                .collect::<Result<Vec<ArrayRef>>>()
        })
        .collect::<Result<_>>()?;
    concat_parts(&parts, &types)
}

/// Reads one timestamp column of every row of a round's segments of `kind` (a null
/// reads as 0): [`primitive`]'s values.
pub fn times(store: &Store, round: &str, kind: BatchKind, column: &str) -> Result<Vec<Millis>> {
    Ok(in_place::<TimestampMillisecondType>(store, round, kind, column)?.0)
}

/// Reads one column of a primitive type `T` of every row of a round's segments of
/// `kind`, in row order; a segment written before the column existed gives nulls.
///
/// Each row group is read on whichever core is free, straight into its place in one
/// output: a city's collections are one file of 25 M times (200 MB), which read whole
/// on one core and then copied into the round's column had cost every whole-round
/// command a serial stretch and twice the fresh memory; a round's result times read
/// as batches and joined were copied twice more (once per file, once across files).
pub fn primitive<T: ArrowPrimitiveType>(
    store: &Store,
    round: &str,
    kind: BatchKind,
    column: &str,
) -> Result<PrimitiveArray<T>> {
    let (values, validity) = in_place::<T>(store, round, kind, column)?;
    let nulls = if validity.iter().all(|(_, v)| matches!(v, Validity::All)) {
        None
    } else {
        let mut bits = BooleanBufferBuilder::new(values.len());
        for (rows, v) in &validity {
            match v {
                Validity::All => bits.append_n(*rows, true),
                Validity::Absent => bits.append_n(*rows, false),
                Validity::Some(n) => bits.append_buffer(n.inner()),
            }
        }
        Some(NullBuffer::new(bits.finish()))
    };
    Ok(PrimitiveArray::new(ScalarBuffer::from(values), nulls))
}

/// Each result row's `received_at` in a round (null where the lab did not state it):
/// turnaround, custody and the lab audit each split a result's time at it.
pub fn receipt_times(
    store: &Store,
    round: &str,
) -> Result<PrimitiveArray<TimestampMillisecondType>> {
    primitive::<TimestampMillisecondType>(store, round, BatchKind::Results, "received_at")
}

/// A run of rows [`in_place`] read and which of them have a value.
type Run = (usize, Validity);

/// Which of a run of rows [`in_place`] read a value for.
enum Validity {
    /// Every row.
    All,
    /// None: the segment has no such column.
    Absent,
    /// These.
    Some(NullBuffer),
}

/// The values of a primitive column of every row of a round's segments of `kind`
/// (nulls as the reader leaves them, 0 where the column is absent) and the validity of
/// each run of rows read (a row group reads as one), in row order.
fn in_place<T: ArrowPrimitiveType>(
    store: &Store,
    round: &str,
    kind: BatchKind,
    column: &str,
) -> Result<(Vec<T::Native>, Vec<Run>)> {
    let files = segment_files(store, round, kind);
    let mut groups = Vec::new();
    for path in &files {
        let meta = segment_footer(store, path)?;
        let has = meta.schema().column_with_name(column).is_some();
        groups.extend(
            row_groups_of(store, path, &meta)?
                .into_iter()
                .map(|g| (g, has)),
        );
    }
    // Zeroed by the allocator, so a page is first touched where its row group is copied.
    let mut out: Vec<T::Native> = vec![T::Native::default(); groups.iter().map(|g| g.0.rows).sum()];
    let mut places = Vec::with_capacity(groups.len());
    let mut rest = out.as_mut_slice();
    for (g, _) in &groups {
        let (place, after) = rest.split_at_mut(g.rows);
        places.push(place);
        rest = after;
    }
    let validity = groups
        .par_iter()
        .zip(places)
        .map(|((g, has), place)| -> Result<Vec<Run>> {
            if !has {
                return Ok(vec![(g.rows, Validity::Absent)]);
            }
            let path = g.path;
            let reader = g
                .reader(&[column])?
                .build()
                .map_err(|e| damaged_file(store, path, e))?;
            let mut at = 0;
            let mut runs = Vec::with_capacity(1);
            for b in reader {
                let b = b.map_err(|e| damaged_file(store, path, e))?;
                let col = b
                    .columns()
                    .first()
                    .and_then(|c| c.as_primitive_opt::<T>())
                    .ok_or_else(|| {
                        damaged_file(store, path, format!("{column} is not of its type"))
                    })?;
                let values = col.values();
                let into = place.get_mut(at..at + values.len()).ok_or_else(|| {
                    damaged_file(
                        store,
                        path,
                        "a row group holds more rows than its footer says",
                    )
                })?;
                into.copy_from_slice(values);
                at += values.len();
                runs.push((
                    values.len(),
                    match col.nulls().filter(|n| n.null_count() > 0) {
                        Some(n) => Validity::Some(n.clone()),
                        None => Validity::All,
                    },
                ));
            }
            if at != place.len() {
                return Err(damaged_file(
                    store,
                    path,
                    "a row group holds fewer rows than its footer says",
                ));
            }
            Ok(runs)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out, validity.into_iter().flatten().collect()))
}

fn read_table(
    store: &Store,
    round: &str,
    kind: BatchKind,
    schema: &Arc<Schema>,
) -> Result<RecordBatch> {
    let files = segment_files(store, round, kind);
    let parts: Vec<Vec<RecordBatch>> = files
        .par_iter()
        .map(|path| {
            store.check_read(path)?;
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .map_err(|e| Error::damaged(store.root(), format!("{}: {e}", path.display())))?;
            let mut out = Vec::new();
            for b in reader {
                let b = b.map_err(|e| {
                    Error::damaged(store.root(), format!("{}: {e}", path.display()))
                })?;
                if !same_columns(&b.schema(), schema) {
                    return Err(Error::damaged(
                        store.root(),
                        format!("{} does not have the segment schema", path.display()),
                    ));
                }
                out.push(b);
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let all: Vec<RecordBatch> = parts.into_iter().flatten().collect();
    Ok(arrow_select::concat::concat_batches(schema, &all)?)
}

/// Whether a segment has the expected columns, names and types in order. Nullability
/// is not compared: format-1 segments declared `mode` and `capacity` required, later
/// ones let a row leave them unstated.
fn same_columns(found: &Schema, expected: &Schema) -> bool {
    found.fields().len() == expected.fields().len()
        && found
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
}

fn strings(b: &RecordBatch, i: usize) -> StringArray {
    b.column(i).as_string::<i32>().clone()
}

/// A text column of words read into their enum; an unknown word is damage.
fn words<T>(
    store: &Store,
    b: &RecordBatch,
    i: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Vec<T>> {
    b.column(i)
        .as_string::<i32>()
        .iter()
        .map(|w| {
            w.and_then(parse).ok_or_else(|| {
                Error::damaged(store.root(), format!("a segment holds an unknown {what}"))
            })
        })
        .collect()
}

/// Reads every collection row of `round`.
pub fn collections(store: &Store, round: &str) -> Result<Collections> {
    let b = read_table(store, round, BatchKind::Collections, &collections_schema())?;
    let mode = b
        .column(3)
        .as_string::<i32>()
        .iter()
        .map(|w| match w {
            None => Ok(None),
            Some(w) => Mode::parse(w).map(Some).ok_or_else(|| {
                Error::damaged(store.root(), "a segment holds an unknown mode".to_owned())
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Collections {
        tube: strings(&b, 1),
        person: strings(&b, 2),
        mode,
        capacity: b.column(4).as_primitive::<UInt8Type>().values().to_vec(),
        collected_at: b
            .column(5)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec(),
        site: strings(&b, 6),
        batch: b.column(7).as_primitive::<UInt32Type>().values().to_vec(),
        source: strings(&b, 8),
        line: b.column(9).as_primitive::<UInt64Type>().values().to_vec(),
    })
}

/// Reads every result row of `round`.
pub fn results(store: &Store, round: &str) -> Result<Results> {
    let b = read_table(store, round, BatchKind::Results, &results_schema())?;
    let outcome = words(store, &b, 2, "result", Outcome::parse)?;
    let sample_type = words(store, &b, 10, "sample type", SampleType::parse)?;
    Ok(Results {
        tube: strings(&b, 1),
        outcome,
        ct_orf1ab: b.column(3).as_primitive::<Float32Type>().clone(),
        ct_n: b.column(4).as_primitive::<Float32Type>().clone(),
        reported_at: b
            .column(6)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec(),
        lab: strings(&b, 7),
        plate: strings(&b, 8),
        well: strings(&b, 9),
        sample_type,
        ct_ic: b.column(11).as_primitive::<Float32Type>().clone(),
        received_at: b
            .column(12)
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
        batch: b.column(13).as_primitive::<UInt32Type>().values().to_vec(),
        source: strings(&b, 14),
        line: b.column(15).as_primitive::<UInt64Type>().values().to_vec(),
    })
}

/// The text of some result rows, read with Parquet row selection: a review that shows
/// a few flagged tubes' results does not decode the round's four million.
pub struct ResultText {
    rows: Vec<u32>,
    lab: StringArray,
    plate: StringArray,
    well: StringArray,
    batch: Vec<u32>,
    source: StringArray,
    line: Vec<u64>,
}

/// One result row's text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultTextLine<'a> {
    /// Lab (empty when none).
    pub lab: &'a str,
    /// Plate (empty when none).
    pub plate: &'a str,
    /// Well (empty when none).
    pub well: &'a str,
    /// Batch that ingested it.
    pub batch: u32,
    /// Source file.
    pub source: &'a str,
    /// Line in the source file.
    pub line: u64,
}

impl ResultText {
    /// Reads the text of result rows `rows` (any order, duplicates allowed) of `round`.
    pub fn fetch(store: &Store, round: &str, rows: &[u32]) -> Result<ResultText> {
        let mut rows = rows.to_vec();
        rows.par_sort_unstable();
        rows.dedup();
        let c = fetch(
            store,
            round,
            BatchKind::Results,
            &["lab", "plate", "well", "batch", "source", "line"],
            &rows,
        )?;
        let text = |a: &ArrayRef| {
            a.as_string_opt::<i32>()
                .cloned()
                .unwrap_or_else(|| StringArray::from(Vec::<&str>::new()))
        };
        let batch = c[3]
            .as_primitive_opt::<UInt32Type>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        let line = c[5]
            .as_primitive_opt::<UInt64Type>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        Ok(ResultText {
            lab: text(&c[0]),
            plate: text(&c[1]),
            well: text(&c[2]),
            source: text(&c[4]),
            batch,
            line,
            rows,
        })
    }

    /// The text of result row `row`, or empty fields when it was not fetched.
    pub fn get(&self, row: u32) -> ResultTextLine<'_> {
        let Ok(i) = self.rows.binary_search(&row) else {
            return ResultTextLine::default();
        };
        ResultTextLine {
            lab: text_at(&self.lab, i),
            plate: text_at(&self.plate, i),
            well: text_at(&self.well, i),
            batch: self.batch.get(i).copied().unwrap_or(0),
            source: text_at(&self.source, i),
            line: self.line.get(i).copied().unwrap_or(0),
        }
    }
}

/// The text of some collection rows, read with Parquet row selection: reports that list
/// a few tubes of a 25-million-row round decode only those rows.
pub struct CollectionText {
    rows: Vec<u32>,
    tube: StringArray,
    person: StringArray,
    site: StringArray,
    batch: Vec<u32>,
    source: StringArray,
    line: Vec<u64>,
    mode: StringArray,
    capacity: Vec<Option<u8>>,
}

/// One collection row's text.
#[derive(Debug, Clone, Copy, Default)]
pub struct CollectionLine<'a> {
    /// Tube barcode.
    pub tube: &'a str,
    /// Person id.
    pub person: &'a str,
    /// Site (empty when none).
    pub site: &'a str,
    /// Batch that ingested it.
    pub batch: u32,
    /// Source file.
    pub source: &'a str,
    /// Line in the source file.
    pub line: u64,
    /// The mode the row stated (empty when it stated none).
    pub mode: &'a str,
    /// The capacity the row stated.
    pub capacity: Option<u8>,
}

impl CollectionText {
    /// Reads the text of `rows` (any order, duplicates allowed) of `round`.
    pub fn fetch(store: &Store, round: &str, rows: &[u32]) -> Result<CollectionText> {
        let mut rows = rows.to_vec();
        rows.par_sort_unstable();
        rows.dedup();
        let c = fetch(
            store,
            round,
            BatchKind::Collections,
            &[
                "tube", "person", "site", "batch", "source", "line", "mode", "capacity",
            ],
            &rows,
        )?;
        let text = |a: &ArrayRef| {
            a.as_string_opt::<i32>()
                .cloned()
                .unwrap_or_else(|| StringArray::from(Vec::<&str>::new()))
        };
        let batch = c[3]
            .as_primitive_opt::<UInt32Type>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        let line = c[5]
            .as_primitive_opt::<UInt64Type>()
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        let capacity = c[7]
            .as_primitive_opt::<UInt8Type>()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        Ok(CollectionText {
            mode: text(&c[6]),
            capacity,
            tube: text(&c[0]),
            person: text(&c[1]),
            site: text(&c[2]),
            source: text(&c[4]),
            batch,
            line,
            rows,
        })
    }

    /// The text of `row`, or empty fields when it was not fetched.
    pub fn get(&self, row: u32) -> CollectionLine<'_> {
        let Ok(i) = self.rows.binary_search(&row) else {
            return CollectionLine::default();
        };
        fn s(a: &StringArray, i: usize) -> &str {
            if i >= a.len() || a.is_null(i) {
                ""
            } else {
                a.value(i)
            }
        }
        let s = |a| s(a, i);
        CollectionLine {
            tube: s(&self.tube),
            person: s(&self.person),
            site: s(&self.site),
            batch: self.batch.get(i).copied().unwrap_or(0),
            source: s(&self.source),
            line: self.line.get(i).copied().unwrap_or(0),
            mode: s(&self.mode),
            capacity: self.capacity.get(i).copied().flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest_collections};

    fn collections(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_segment_s_recorded_first_swab_is_its_footer_s_and_no_refused_row_s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        // The earliest row is refused (it names no person): its time is no swab.
        let csv = collections(
            dir.path(),
            "tubes.csv",
            "tube,person,mode,collected_at\n\
             PL-1,,pool,2022-04-01 07:00\n\
             PL-1,p1,pool,2022-04-02 08:05\n\
             PL-1,p2,pool,2022-04-02 08:00\n",
        );
        let mut writer = Store::open_writer(&root).expect("store");
        ingest_collections(&mut writer, &[csv], "R1", &IngestOptions::default(), None)
            .expect("ingest");
        drop(writer);
        let store = Store::open(&root).expect("open");
        let (_, segment, _) = store
            .manifest()
            .segments(Some("R1"))
            .next()
            .expect("a segment");
        let path = store.root().join(&segment.parquet.path);
        let footer = footer_floor(&store, &path, "collected_at").expect("footer");
        let swabs = times(&store, "R1", BatchKind::Collections, "collected_at").expect("times");
        assert_eq!(swabs.len(), 2, "the refused row is not in the segment");
        assert_eq!(footer, swabs.iter().copied().min());
        assert_eq!(segment.first_collected_at, footer);
        assert_eq!(
            time_floors(&store, "R1", BatchKind::Collections, "collected_at").expect("floors"),
            vec![footer]
        );
    }

    #[test]
    fn a_primitive_column_read_in_place_is_the_column_read_whole() {
        // Three result batches: receipt times stated, some blank, none stated; the
        // place-by-place read gives the values and nulls of the whole-column read.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let mut writer = Store::open_writer(&root).expect("store");
        let tubes = collections(
            dir.path(),
            "tubes.csv",
            "tube,person,mode,collected_at\n\
             TB-001,p1,single,2022-04-02 08:00\n\
             TB-002,p2,single,2022-04-02 08:00\n\
             TB-003,p3,single,2022-04-02 08:00\n",
        );
        ingest_collections(&mut writer, &[tubes], "R1", &IngestOptions::default(), None)
            .expect("collections");
        let head = "tube,result,reported_at,received_at\n";
        let batches = [
            "TB-001,negative,2022-04-02 14:00,2022-04-02 10:00\nTB-002,negative,2022-04-02 14:00,2022-04-02 11:00\n",
            "TB-003,negative,2022-04-02 15:00,\nTB-001,negative,2022-04-02 16:00,2022-04-02 12:30\n",
            "TB-002,negative,2022-04-02 17:00,\nTB-003,negative,2022-04-02 17:00,\n",
        ];
        for (i, rows) in batches.iter().enumerate() {
            let csv = collections(dir.path(), &format!("r{i}.csv"), &format!("{head}{rows}"));
            let report =
                crate::ingest::ingest_results(&mut writer, &[csv], &IngestOptions::default(), None)
                    .expect("results");
            assert_eq!(report.committed, 2, "batch {i}");
        }
        drop(writer);
        let store = Store::open(&root).expect("open");
        let got =
            primitive::<TimestampMillisecondType>(&store, "R1", BatchKind::Results, "received_at")
                .expect("in place");
        let whole = columns(&store, "R1", BatchKind::Results, &["received_at"]).expect("whole");
        let whole = whole[0]
            .as_primitive_opt::<TimestampMillisecondType>()
            .expect("times");
        assert_eq!(got.len(), 6);
        assert_eq!(got.null_count(), 3);
        let rows = |a: &PrimitiveArray<TimestampMillisecondType>| -> Vec<Option<i64>> {
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect()
        };
        assert_eq!(rows(&got), rows(whole));
        // A column no segment has reads as nulls, one a row.
        let none = primitive::<UInt32Type>(&store, "R1", BatchKind::Results, "no_such_column")
            .expect("absent");
        assert_eq!((none.len(), none.null_count()), (6, 6));
    }

    #[test]
    fn a_look_up_reading_many_files_still_checks_each_one() {
        // More batches than a look-up searches for before it maps the log's files by
        // path: the files read past that point are checked all the same.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let mut writer = Store::open_writer(&root).expect("store");
        let batches = crate::store::checked::SEARCHED + 4;
        for b in 0..batches {
            let csv = collections(
                dir.path(),
                &format!("b{b}.csv"),
                &format!(
                    "tube,person,mode,collected_at\nTUBE-{b:03},p{b},single,2022-04-02 08:00\n"
                ),
            );
            ingest_collections(&mut writer, &[csv], "R1", &IngestOptions::default(), None)
                .expect("ingest");
        }
        drop(writer);
        let healthy = Store::open_for_lookups(&root).expect("open");
        let swabs = times(&healthy, "R1", BatchKind::Collections, "collected_at").expect("times");
        assert_eq!(swabs.len(), batches);

        // The last batch's file altered: a new file of the same size in its place.
        let last = segment_files(&healthy, "R1", BatchKind::Collections)
            .pop()
            .expect("a file");
        let mut bytes = std::fs::read(&last).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        let copy = dir.path().join("altered");
        std::fs::write(&copy, &bytes).expect("write");
        std::fs::rename(&copy, &last).expect("replace");
        let store = Store::open_for_lookups(&root).expect("open");
        let err = times(&store, "R1", BatchKind::Collections, "collected_at")
            .expect_err("an altered file");
        assert!(err.to_string().contains("altered"), "{err}");
    }
}
