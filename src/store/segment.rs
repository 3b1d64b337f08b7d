//! Writing a batch's rows of one round as a segment: a Parquet file (collections in
//! input order, results sorted by tube) plus its sidecar indexes. Every file is hashed as it is written and fsynced before
//! the manifest that names it is committed.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::types::{ArrowDictionaryKeyType, UInt8Type, UInt16Type};
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, PrimitiveArray, RecordBatch,
    StringArray, TimestampMillisecondArray, UInt8Array, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use xxhash_rust::xxh3::Xxh3;

use super::fsutil;
use super::index::TubeMeta;
use super::index::{self, IndexWriter, Kind};
use super::keyed;
use super::manifest::{FailedPlate, FileRef, PopulationSegment, Segment};
use crate::column::{LabelColumn, StrColumn};
use crate::model::{Mode, Outcome, SampleType};
use crate::rows::{CollectionRows, PopulationRows, ResultRows};
use crate::{Error, Result};

/// One round's rows of a batch.
pub struct SegmentPlan {
    /// The round.
    pub round: String,
    /// Rows in the order to write them (collections: input order; results: by tube,
    /// then time).
    pub order: Vec<u32>,
    /// Plate control rows (results only), written after `order`.
    pub controls: Vec<u32>,
    /// Plates whose controls in this batch failed.
    pub failed_plates: Vec<FailedPlate>,
    /// Collections: rows whose tube's settled metadata differs from what they state
    /// (ascending by row).
    pub settled: Vec<(u32, TubeMeta)>,
}

impl SegmentPlan {
    /// An empty plan for `round`.
    pub fn new(round: &str) -> SegmentPlan {
        SegmentPlan {
            round: round.to_owned(),
            order: Vec::new(),
            controls: Vec::new(),
            failed_plates: Vec::new(),
            settled: Vec::new(),
        }
    }
}

/// Rows per Parquet row group: small enough that reading one tube's rows decodes little.
const ROW_GROUP: usize = 128 * 1024;

/// A writer that counts and hashes what passes through it, into a file written past
/// the page cache where the file system allows it ([`fsutil::DirectWriter`]).
struct HashingWriter {
    file: fsutil::DirectWriter,
    hasher: Xxh3,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl HashingWriter {
    fn create(path: &Path) -> Result<Self> {
        Ok(HashingWriter {
            file: fsutil::DirectWriter::create(path)?,
            hasher: Xxh3::new(),
            bytes: 0,
        })
    }

    /// Flushes to disk and describes the file for the manifest.
    fn finish(self, root: &Path, path: &Path) -> Result<FileRef> {
        self.file.finish().map_err(|e| Error::io(path, e))?;
        let rel = path.strip_prefix(root).unwrap_or(path);
        Ok(FileRef {
            path: rel.to_string_lossy().into_owned(),
            bytes: self.bytes,
            xxh3: format!("{:016x}", self.hasher.digest()),
        })
    }
}

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
fn with_dictionaries(schema: &Schema, keys: &[(&str, DataType)]) -> Arc<Schema> {
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

/// Rows a person-index part hashes and partitions on its own.
const PERSON_PART: usize = 1 << 20;

/// Builds `items` a window at a time with `build` (on all cores) and hands each
/// window's result to `write` in order, while the next window is built: the serial
/// writing of a sidecar then costs no time of its own.
fn pipelined<T: Sync, R: Send + Sync>(
    items: &[T],
    window: usize,
    build: impl Fn(&[T]) -> Result<R> + Sync,
    mut write: impl FnMut(&R) -> Result<()> + Send,
) -> Result<()> {
    let mut windows = items.chunks(window.max(1));
    let mut built = windows.next().map(&build).transpose()?;
    while let Some(done) = built {
        let next = windows.next();
        let (written, later) = rayon::join(|| write(&done), || next.map(&build).transpose());
        written?;
        built = later?;
    }
    Ok(())
}

/// Writes the person index of the rows `order` of `person` (record `k` is row `k` of
/// the segment): 20-byte records (hash big-endian, row) sorted by hash, then row.
///
/// A radix pass instead of one big sort: each part of a million rows is hashed (reading
/// the ids in memory order) and split by the hash's top byte (hashes are uniform, so
/// 256 buckets of equal size); then each bucket, gathered from every part, is sorted on
/// its own while it fits in cache, on all cores, and written in bucket order. One
/// `memcmp`-based sort of all 25 million records had been the ingest's largest cost.
fn write_person_index<'a>(
    root: &Path,
    path: &Path,
    n: usize,
    person: impl Fn(usize) -> &'a [u8] + Sync,
) -> Result<FileRef> {
    let part_starts: Vec<usize> = (0..n).step_by(PERSON_PART).collect();
    let parts: Vec<(Vec<[u8; 20]>, [usize; 257])> = part_starts
        .par_iter()
        .map(|&base| {
            let mut start = [0usize; 257];
            let records: Vec<[u8; 20]> = (base..n.min(base + PERSON_PART))
                .map(|k| {
                    let row = u32::try_from(k).unwrap_or(u32::MAX);
                    index::person_record(xxhash_rust::xxh3::xxh3_128(person(k)), row)
                })
                .collect();
            for r in &records {
                start[usize::from(r[0]) + 1] += 1;
            }
            for b in 0..256 {
                start[b + 1] += start[b];
            }
            let mut next = start;
            let mut split = vec![[0u8; 20]; records.len()];
            for r in records {
                let slot = &mut next[usize::from(r[0])];
                split[*slot] = r;
                *slot += 1;
            }
            (split, start)
        })
        .collect();
    let mut w = IndexWriter::new(HashingWriter::create(path)?, Kind::Persons, n as u64)
        .map_err(|e| Error::io(path, e))?;
    // Buckets are sorted a few per core at a time, each window written while the next
    // one sorts.
    let buckets: Vec<usize> = (0..256).collect();
    let sort_window = |group: &[usize]| -> Result<Vec<Vec<[u8; 20]>>> {
        Ok(group
            .par_iter()
            .map(|&b| {
                sort_bucket(
                    parts
                        .iter()
                        .map(|(split, start)| &split[start[b]..start[b + 1]]),
                )
            })
            .collect())
    };
    pipelined(
        &buckets,
        rayon::current_num_threads() * 4,
        sort_window,
        |sorted| {
            sorted.iter().try_for_each(|bucket| {
                w.push_all(bucket.as_flattened())
                    .map_err(|e| Error::io(path, e))
            })
        },
    )?;
    w.finish()
        .map_err(|e| Error::io(path, e))?
        .finish(root, path)
}

/// Sorts the person records of one top-byte bucket (gathered from `pieces`) by hash,
/// then row: a counting sort on the hash's next 16 bits (hashes are uniform, so about
/// one record per value at 25 million persons), then the few records sharing a slot
/// in full order. Two passes over the bucket instead of a comparison sort's twenty.
fn sort_bucket<'a>(pieces: impl Iterator<Item = &'a [[u8; 20]]> + Clone) -> Vec<[u8; 20]> {
    let slot = |r: &[u8; 20]| usize::from(u16::from_be_bytes([r[1], r[2]]));
    let mut start = vec![0u32; (1 << 16) + 1];
    let mut len = 0u32;
    for r in pieces.clone().flatten() {
        start[slot(r) + 1] += 1;
        len += 1;
    }
    for s in 0..1 << 16 {
        start[s + 1] += start[s];
    }
    let mut next = start.clone();
    let mut out = vec![[0u8; 20]; len as usize];
    for r in pieces.flatten() {
        let at = &mut next[slot(r)];
        out[*at as usize] = *r;
        *at += 1;
    }
    for w in start.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if b - a > 1 {
            out[a..b].sort_unstable_by_key(|r| {
                let mut hash = [0u8; 16];
                hash.copy_from_slice(&r[..16]);
                (u128::from_be_bytes(hash), index::u32_at(r, 16))
            });
        }
    }
    out
}

/// A column of `keys` into `values`, as a dictionary array.
/// The mode each row states, as keys into `modes`; null where the row stated none.
/// Without a null the column has no validity buffer, as format-1 segments had.
fn stated_modes(
    modes: impl Iterator<Item = Option<Mode>>,
    len: usize,
    values: &[&str],
) -> Result<ArrayRef> {
    let mut keys = Vec::with_capacity(len);
    let mut valid = Vec::with_capacity(len);
    for m in modes {
        keys.push(m.map_or(0, Mode::code));
        valid.push(m.is_some());
    }
    let nulls = valid
        .contains(&false)
        .then(|| arrow_buffer::NullBuffer::from(valid));
    let keys = PrimitiveArray::<UInt8Type>::new(keys.into(), nulls);
    let values = Arc::new(StringArray::from_iter_values(values.iter()));
    Ok(Arc::new(DictionaryArray::<UInt8Type>::try_new(
        keys, values,
    )?))
}

/// The capacity each row states; null where it stated none (stored as 0 in the rows).
fn stated_capacities(caps: impl Iterator<Item = u8>, len: usize) -> UInt8Array {
    let mut values = Vec::with_capacity(len);
    let mut valid = Vec::with_capacity(len);
    for c in caps {
        values.push(c);
        valid.push(c != 0);
    }
    let nulls = valid
        .contains(&false)
        .then(|| arrow_buffer::NullBuffer::from(valid));
    UInt8Array::new(values.into(), nulls)
}

fn dictionary<K: ArrowDictionaryKeyType>(
    keys: Vec<K::Native>,
    values: &[&str],
) -> Result<ArrayRef> {
    let keys = PrimitiveArray::<K>::new(keys.into(), None);
    let values = Arc::new(StringArray::from_iter_values(values.iter()));
    Ok(Arc::new(DictionaryArray::<K>::try_new(keys, values)?))
}

/// One batch number for every row: one-byte keys, not 100 MB of copies at 25 M rows.
fn batch_column(batch: u32, n: usize) -> Result<ArrayRef> {
    Ok(Arc::new(DictionaryArray::<UInt8Type>::try_new(
        PrimitiveArray::new(vec![0; n].into(), None),
        Arc::new(UInt32Array::from_value(batch, 1)),
    )?))
}

/// The source file of each row in `order`, as keys into `files` (at most 65,536 files
/// a batch: more is refused before any file is read).
fn source_keys(file_no: &[u16], order: &[u32]) -> Vec<u16> {
    order.par_iter().map(|&i| file_no[i as usize]).collect()
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Where a batch's segment files go, relative to the store root.
pub fn segment_stem(round: &str, table: &str, batch: u32) -> String {
    format!("rounds/{round}/{table}/b{batch:06}")
}

fn take(col: &StrColumn, order: &[u32]) -> StringArray {
    col.gather(order).into_arrow()
}

/// Columns with (nearly) one value per row: a dictionary only costs time there.
const NO_DICTIONARY: [&str; 8] = [
    "tube",
    "person",
    "collected_at",
    "reported_at",
    "received_at",
    "ct_ic",
    "line",
    "well",
];

/// Integer columns that change by small steps from row to row (line numbers, times of
/// a station's swabs): stored as bit-packed differences, which is smaller than
/// Snappy's output and costs less than running Snappy over the plain values.
const DELTA: [&str; 5] = [
    "line",
    "collected_at",
    "reported_at",
    "received_at",
    "capacity",
];

/// Text columns with (nearly) one value per row.
const NO_STATISTICS: [&str; 5] = ["person", "tube", "lab", "plate", "well"];

/// Text columns whose neighbouring values share a prefix (ids issued in sequence,
/// barcodes of one print run): each value stored as the length it shares with the one
/// before and the rest, then Snappy. At 25 M rows the person column went from 124 MB
/// to 5 MB and the tube column from 35 MB to 24 MB, in the same time.
const PREFIXED: [&str; 2] = ["person", "tube"];

fn writer_properties() -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP));
    for c in NO_DICTIONARY {
        props = props.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    for c in DELTA {
        props = props
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED);
    }
    for c in PREFIXED {
        props = props.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BYTE_ARRAY);
    }
    // Min/max of ids and barcodes prune nothing (lookups go through the sidecar
    // indexes); computing them compared every value twice.
    for c in NO_STATISTICS {
        props = props.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    props.build()
}

/// Writes `batch` as one Parquet file (see [`write_parquet_groups`]).
fn write_parquet(root: &Path, path: &Path, batch: RecordBatch) -> Result<FileRef> {
    let schema = batch.schema();
    let n = batch.num_rows();
    write_parquet_groups(root, path, schema, n, |start, len| {
        Ok(batch.slice(start, len))
    })
}

/// One encoded column chunk of a row group.
enum Chunk {
    Arrow(ArrowColumnChunk),
    Keyed(keyed::KeyedChunk),
}

impl Chunk {
    fn append_to_row_group<W: std::io::Write + Send>(
        self,
        rg: &mut parquet::file::writer::SerializedRowGroupWriter<'_, W>,
    ) -> parquet::errors::Result<()> {
        match self {
            Chunk::Arrow(c) => c.append_to_row_group(rg),
            Chunk::Keyed(c) => c.append_to_row_group(rg),
        }
    }
}

/// Writes `n` rows as one Parquet file, asking `group(start, len)` for each row
/// group's columns, so a batch's derived columns (keys, gathered numbers) exist one
/// row group at a time rather than whole. The columns of several row groups are
/// encoded at once on all cores (the parquet crate's column-writer API), then appended
/// in order. The file is the same as `ArrowWriter` would write, only sooner.
fn write_parquet_groups(
    root: &Path,
    path: &Path,
    schema: SchemaRef,
    n: usize,
    group: impl Fn(usize, usize) -> Result<RecordBatch> + Sync,
) -> Result<FileRef> {
    let pq = |e| Error::parquet(path, e);
    let props = Arc::new(writer_properties());
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&schema)
        .map_err(pq)?;
    let out = HashingWriter::create(path)?;
    let mut writer =
        SerializedFileWriter::new(out, parquet_schema.root_schema_ptr(), Arc::clone(&props))
            .map_err(pq)?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(&schema));
    let flat = parquet_schema.num_columns() == schema.fields().len();
    let groups: Vec<usize> = (0..n).step_by(ROW_GROUP).collect();
    let window = rayon::current_num_threads() * 2;
    for (w, starts) in groups.chunks(window).enumerate() {
        let slices = starts
            .par_iter()
            .map(|&start| group(start, ROW_GROUP.min(n - start)))
            .collect::<Result<Vec<RecordBatch>>>()?;
        let mut jobs = Vec::new();
        for (k, slice) in slices.iter().enumerate() {
            let writers = factory.create_column_writers(w * window + k).map_err(pq)?;
            for (c, (writer, (field, col))) in writers
                .into_iter()
                .zip(schema.fields().iter().zip(slice.columns()))
                .enumerate()
            {
                // Flat schemas only: there, field `c` is leaf `c`.
                let descr = flat.then(|| parquet_schema.column(c));
                jobs.push((k, writer, field, col, descr));
            }
        }
        // A column's levels are computed on the core that encodes it, and only when
        // the Arrow writer encodes it: they are an index per value (`0..n` for a
        // required column), a gigabyte of writes at 25 M rows for the keyed columns
        // alone, and computing them serially had kept one core waiting.
        let mut chunks: Vec<(usize, Chunk)> = jobs
            .into_par_iter()
            .map(|(k, mut writer, field, col, descr)| {
                if let Some(descr) = descr
                    && let Some(chunk) = keyed::encode(&descr, &props, col.as_ref())
                {
                    return Ok((k, Chunk::Keyed(chunk?)));
                }
                let mut leaves = compute_leaves(field, col)?;
                let leaf = leaves.pop().ok_or_else(|| {
                    parquet::errors::ParquetError::General("no leaf column".into())
                })?;
                writer.write(&leaf)?;
                Ok((k, Chunk::Arrow(writer.close()?)))
            })
            .collect::<std::result::Result<_, parquet::errors::ParquetError>>()
            .map_err(pq)?;
        // Jobs were made row group by row group, column by column; keep that order.
        chunks.sort_by_key(|(k, _)| *k);
        let mut chunks = chunks.into_iter().peekable();
        while let Some((k, first)) = chunks.next() {
            let mut rg = writer.next_row_group().map_err(pq)?;
            first.append_to_row_group(&mut rg).map_err(pq)?;
            while let Some((_, chunk)) = chunks.next_if(|(next, _)| *next == k) {
                chunk.append_to_row_group(&mut rg).map_err(pq)?;
            }
            rg.close().map_err(pq)?;
        }
    }
    let out = writer.into_inner().map_err(pq)?;
    out.finish(root, path)
}

/// Writes the rows `order` of `rows` (ascending: the committed rows in input order) as
/// round `round`'s collections segment of batch `batch`. The sidecars are written
/// first; then, when `order` keeps every row in place (nothing was refused), the
/// columns move into Arrow without a copy (so `rows` may be left empty).
///
/// Rows stay in input order rather than grouped by tube: sampling stations fill
/// several pools at once, so a city's file interleaves tubes, and regrouping meant
/// copying the batch's gigabyte of text. The tube index has one record per run of a
/// tube's consecutive rows; readers merge a tube's runs.
///
/// The Parquet file keeps what each row stated; the tube index holds each tube's
/// settled metadata ([`index::TubeMeta`]): `settled` names the rows (ascending) whose
/// tube's metadata differs from what the row itself states.
pub fn write_collections(
    root: &Path,
    batch: u32,
    round: &str,
    files: &[String],
    rows: &mut CollectionRows,
    order: &[u32],
    settled: &[(u32, index::TubeMeta)],
) -> Result<Segment> {
    let stem = root.join(segment_stem(round, "collections", batch));
    if let Some(dir) = stem.parent() {
        fsutil::create_dir_all(dir)?;
    }
    let n = order.len();
    let in_place = n == rows.len() && order.iter().enumerate().all(|(k, &i)| k == i as usize);
    // Row `k` of the segment is row `row(k)` of the batch.
    let row = |k: usize| if in_place { k } else { order[k] as usize };
    // The batch's text is the largest thing in memory: move it, or free each column
    // as soon as its reordered copy exists.
    let text = |col: &mut StrColumn| {
        let old = std::mem::take(col);
        if in_place {
            old.into_arrow()
        } else {
            old.gather(order).into_arrow()
        }
    };
    let (tube, person) = {
        let (t, p) = (&mut rows.tube, &mut rows.person);
        rayon::join(|| text(t), || text(p))
    };
    let sites = rows.site.arrow_values();
    let modes = [Mode::Single.as_str(), Mode::Pool.as_str()];
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let schema = with_dictionaries(
        &collections_schema(),
        &[
            ("round", DataType::UInt8),
            ("mode", DataType::UInt8),
            ("source", DataType::UInt16),
            ("site", DataType::UInt32),
            ("batch", DataType::UInt8),
        ],
    );
    // Every other column is built a row group at a time from the batch's own arrays.
    let all: &CollectionRows = rows;
    let group = |start: usize, len: usize| -> Result<RecordBatch> {
        let rows = all;
        let ks = || (start..start + len).map(row);
        let columns: Vec<ArrayRef> = vec![
            dictionary::<UInt8Type>(vec![0; len], &[round])?,
            Arc::new(tube.slice(start, len)),
            Arc::new(person.slice(start, len)),
            stated_modes(ks().map(|i| rows.mode[i]), len, &modes)?,
            Arc::new(stated_capacities(ks().map(|i| rows.capacity[i]), len)),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(ks().map(|i| rows.collected_at[i]))
                    .with_timezone("UTC"),
            ),
            Arc::new(DictionaryArray::new(
                rows.site.arrow_keys(ks()),
                Arc::clone(&sites),
            )),
            batch_column(batch, len)?,
            dictionary::<UInt16Type>(ks().map(|i| rows.file[i]).collect(), &files)?,
            Arc::new(UInt64Array::from_iter_values(
                ks().map(|i| u64::from(rows.line[i])),
            )),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
    };
    let parquet_path = stem.with_extension("parquet");
    let parquet = write_parquet_groups(root, &parquet_path, Arc::clone(&schema), n, group)?;
    // Only the tube index's columns are still needed.
    rows.collected_at = Vec::new();
    rows.site = LabelColumn::default();
    rows.file = Vec::new();
    rows.line = Vec::new();

    // The indexes come last, when the batch's other columns are freed: the tube index
    // has one record per run of a tube's consecutive rows, sorted by barcode.
    let tubes_path = stem.with_extension("tubes");
    let starts: Vec<usize> = (0..n)
        .into_par_iter()
        .filter(|&k| k == 0 || tube.value(k) != tube.value(k - 1))
        .collect();
    let run = |r: u32| {
        let start = starts[r as usize];
        (start, starts.get(r as usize + 1).unwrap_or(&n) - start)
    };
    // Sorted by barcode, a tube's runs in row order: run numbers break the ties.
    let count = u32::try_from(starts.len()).map_err(|_| too_big(&tubes_path))?;
    let mut sorted: Vec<(u128, u32)> = (0..count)
        .into_par_iter()
        .map(|r| (index::tube_prefix(tube.value(run(r).0).as_bytes()), r))
        .collect();
    let barcode = |r: u32| tube.value(run(r).0).as_bytes();
    sorted.par_sort_unstable_by(|&(ka, a), &(kb, b)| {
        ka.cmp(&kb)
            .then_with(|| barcode(a).cmp(barcode(b)))
            .then(a.cmp(&b))
    });
    let mut w = IndexWriter::new(
        HashingWriter::create(&tubes_path)?,
        Kind::CollectionTubes,
        sorted.len() as u64,
    )
    .map_err(|e| Error::io(&tubes_path, e))?;
    // Records reach into the barcode, mode and capacity columns at random, a cache miss
    // each: they are built on all cores, a window at a time, while the last is written.
    let meta = |i: usize| {
        let key = u32::try_from(i).unwrap_or(u32::MAX);
        settled.binary_search_by_key(&key, |&(r, _)| r).map_or_else(
            |_| index::TubeMeta::stated(rows.mode[i], rows.capacity[i]),
            |k| settled[k].1,
        )
    };
    let record = |&(_, r): &(u128, u32)| -> Result<[u8; 48]> {
        let (start, len) = run(r);
        Ok(index::collection_tube_record(
            &index::tube_key(tube.value(start)),
            u32::try_from(start).map_err(|_| too_big(&tubes_path))?,
            u32::try_from(len).map_err(|_| too_big(&tubes_path))?,
            meta(row(start)),
        ))
    };
    let build = |part: &[(u128, u32)]| part.par_iter().map(&record).collect::<Result<Vec<_>>>();
    pipelined(&sorted, 1 << 16, build, |records| {
        w.push_all(records.as_flattened())
            .map_err(|e| Error::io(&tubes_path, e))
    })?;
    let tubes = w
        .finish()
        .map_err(|e| Error::io(&tubes_path, e))?
        .finish(root, &tubes_path)?;
    drop((sorted, starts, tube));

    let persons_path = stem.with_extension("persons");
    let persons = write_person_index(root, &persons_path, n, |k| person.value(k).as_bytes())?;
    if let Some(dir) = stem.parent() {
        fsutil::sync_dir(dir)?;
    }
    Ok(Segment {
        round: round.to_owned(),
        rows: n as u64,
        parquet,
        tubes,
        persons: Some(persons),
        controls: 0,
        failed_plates: Vec::new(),
    })
}

/// Writes the rows `order` of `rows` (input order: file, then line, so a later
/// registration has a later row) as population batch `batch`: the Parquet file and a
/// person index sorted by the 128-bit person hash, which coverage merges with a round's.
pub fn write_population(
    root: &Path,
    batch: u32,
    files: &[String],
    rows: &PopulationRows,
    order: &[u32],
) -> Result<PopulationSegment> {
    let dir = root.join("population");
    fsutil::create_dir_all(&dir)?;
    let stem = dir.join(format!("b{batch:06}"));
    let n = order.len();

    let persons_path = stem.with_extension("persons");
    let persons = write_person_index(root, &persons_path, order.len(), |k| {
        rows.person.bytes(order[k] as usize)
    })?;

    let columns: Vec<ArrayRef> = vec![
        Arc::new(take(&rows.person, order)),
        Arc::new(take(&rows.district, order)),
        Arc::new(take(&rows.community, order)),
        Arc::new(take(&rows.group, order)),
        batch_column(batch, n)?,
        dictionary::<UInt16Type>(
            source_keys(&rows.file, order),
            &files.iter().map(String::as_str).collect::<Vec<_>>(),
        )?,
        Arc::new(UInt64Array::from_iter_values(
            order.iter().map(|&i| u64::from(rows.line[i as usize])),
        )),
    ];
    let schema = with_dictionaries(
        &population_schema(),
        &[("batch", DataType::UInt8), ("source", DataType::UInt16)],
    );
    let record = RecordBatch::try_new(schema, columns)?;
    let parquet_path = stem.with_extension("parquet");
    let parquet = write_parquet(root, &parquet_path, record)?;
    fsutil::sync_dir(&dir)?;
    Ok(PopulationSegment {
        rows: n as u64,
        parquet,
        persons,
    })
}

/// Writes one round's result rows of batch `batch`: the samples (`plan.order`, sorted by
/// tube, then reported_at) and after them the plate controls, which the tube index
/// leaves out.
pub fn write_results(
    root: &Path,
    batch: u32,
    plan: &SegmentPlan,
    files: &[String],
    rows: &ResultRows,
) -> Result<Segment> {
    let round = plan.round.as_str();
    let stem = root.join(segment_stem(round, "results", batch));
    if let Some(dir) = stem.parent() {
        fsutil::create_dir_all(dir)?;
    }
    let samples = plan.order.as_slice();
    let all: Vec<u32> = samples.iter().chain(&plan.controls).copied().collect();
    let order = all.as_slice();
    let n = order.len();
    let at = |i: &u32| *i as usize;
    let outcomes = [
        Outcome::Negative,
        Outcome::Positive,
        Outcome::Inconclusive,
        Outcome::Invalid,
    ]
    .map(Outcome::as_str);
    let sample_types = [
        SampleType::Sample,
        SampleType::NegativeControl,
        SampleType::PositiveControl,
    ];
    let schema = with_dictionaries(
        &results_schema(),
        &[
            ("round", DataType::UInt8),
            ("result", DataType::UInt8),
            ("sample_type", DataType::UInt8),
            ("batch", DataType::UInt8),
            ("source", DataType::UInt16),
        ],
    );
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    // Built a row group at a time: the batch's rows are gathered in tube order, and a
    // whole gathered copy of every column had the kernel zeroing fresh pages for a
    // fifth of the ingest.
    let group = |start: usize, len: usize| -> Result<RecordBatch> {
        let order = &order[start..start + len];
        let cts = |col: &[Option<f32>]| -> ArrayRef {
            Arc::new(order.iter().map(|i| col[at(i)]).collect::<Float32Array>())
        };
        let columns: Vec<ArrayRef> = vec![
            dictionary::<UInt8Type>(vec![0; len], &[round])?,
            Arc::new(take(&rows.tube, order)),
            // Codes index `outcomes` (Outcome::code is the position).
            dictionary::<UInt8Type>(
                order.iter().map(|i| rows.outcome[at(i)].code()).collect(),
                &outcomes,
            )?,
            cts(&rows.ct_orf1ab),
            cts(&rows.ct_n),
            Arc::new(
                order
                    .iter()
                    .map(|i| Some(rows.from_ct[at(i)]))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    order.iter().map(|i| rows.reported_at[at(i)]),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(take(&rows.lab, order)),
            Arc::new(take(&rows.plate, order)),
            Arc::new(take(&rows.well, order)),
            dictionary::<UInt8Type>(
                order
                    .iter()
                    .map(|i| {
                        let t = rows.sample_type[at(i)];
                        u8::try_from(sample_types.iter().position(|&s| s == t).unwrap_or(0))
                            .unwrap_or(0)
                    })
                    .collect(),
                &sample_types.map(SampleType::as_str),
            )?,
            cts(&rows.ct_ic),
            Arc::new(
                order
                    .iter()
                    .map(|i| rows.received_at[at(i)])
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            ),
            batch_column(batch, len)?,
            dictionary::<UInt16Type>(
                order.iter().map(|&i| rows.file[i as usize]).collect(),
                &files,
            )?,
            Arc::new(UInt64Array::from_iter_values(
                order.iter().map(|i| u64::from(rows.line[at(i)])),
            )),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
    };
    let parquet_path = stem.with_extension("parquet");
    let parquet = write_parquet_groups(root, &parquet_path, Arc::clone(&schema), n, group)?;

    let tubes_path = stem.with_extension("tubes");
    let mut w = IndexWriter::new(
        HashingWriter::create(&tubes_path)?,
        Kind::ResultTubes,
        samples.len() as u64,
    )
    .map_err(|e| Error::io(&tubes_path, e))?;
    for (row, &i) in samples.iter().enumerate() {
        let i = i as usize;
        let rec = index::result_tube_record(
            &index::tube_key(rows.tube.get(i)),
            u32::try_from(row).map_err(|_| too_big(&tubes_path))?,
            rows.outcome[i].code(),
            rows.reported_at[i],
            (rows.ct_orf1ab[i], rows.ct_n[i]),
        );
        w.push(&rec).map_err(|e| Error::io(&tubes_path, e))?;
    }
    let tubes = w
        .finish()
        .map_err(|e| Error::io(&tubes_path, e))?
        .finish(root, &tubes_path)?;
    if let Some(dir) = stem.parent() {
        fsutil::sync_dir(dir)?;
    }
    Ok(Segment {
        round: round.to_owned(),
        rows: n as u64,
        parquet,
        tubes,
        persons: None,
        controls: plan.controls.len() as u64,
        failed_plates: plan.failed_plates.clone(),
    })
}

fn too_big(path: &Path) -> Error {
    Error::io(
        path,
        io::Error::other("a segment may hold at most 4,294,967,295 rows"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_sort_orders_by_hash_then_row() {
        // Hashes sharing the top byte, some sharing 16-bit slots and whole hashes.
        let mut records = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for row in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hash = (u128::from(x) << 64 | u128::from(x.rotate_left(7))) & !(0xff << 120);
            let hash = match row % 10 {
                0 => hash & !(0xffff_u128 << 104), // same slot as others
                1 => 42,                           // one person, many rows
                _ => hash,
            };
            records.push(index::person_record(hash, row));
        }
        let (a, b) = records.split_at(1700);
        let sorted = sort_bucket([a, b].into_iter());
        let mut expected = records.clone();
        expected.sort_unstable_by_key(|r| {
            let mut h = [0u8; 16];
            h.copy_from_slice(&r[..16]);
            (u128::from_be_bytes(h), index::u32_at(r, 16))
        });
        assert_eq!(sorted, expected);
    }
}
