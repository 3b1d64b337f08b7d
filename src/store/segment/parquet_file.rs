//! Encoding a segment's Parquet file: each column's encoding chosen for what it holds,
//! and the row groups built and encoded on all cores, then appended in order.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use super::hashed::HashingWriter;
use crate::store::keyed;
use crate::store::manifest::FileRef;
use crate::{Error, Result};

/// Rows per Parquet row group: small enough that reading one tube's rows decodes little.
pub const ROW_GROUP: usize = 128 * 1024;

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
/// before and the rest, then Snappy (the person ids zstd, below). At 25 M rows the
/// person column went from 124 MB to 5 MB and the tube column from 35 MB to 24 MB, in
/// the same time.
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
    // A city's ids (district, birth date, sequence) come in no order, so little of each
    // is shared with the one before; Snappy left their digits as they were (25 M ids:
    // 271 MB), zstd's entropy coding takes them to 167 MB and the whole write is
    // sooner, with fewer bytes to hash and write (2.9 s against 3.2 s).
    props = props.set_column_compression(
        ColumnPath::from("person"),
        Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()),
    );
    // Min/max of ids and barcodes prune nothing (lookups go through the sidecar
    // indexes); computing them compared every value twice.
    for c in NO_STATISTICS {
        props = props.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    props.build()
}

/// Writes `batch` as one Parquet file (see [`write_parquet_groups`]).
pub(super) fn write_parquet(root: &Path, path: &Path, batch: &RecordBatch) -> Result<FileRef> {
    let schema = batch.schema();
    let n = batch.num_rows();
    write_parquet_groups(root, path, &schema, n, |start, len| {
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
pub(super) fn write_parquet_groups(
    root: &Path,
    path: &Path,
    schema: &SchemaRef,
    n: usize,
    group: impl Fn(usize, usize) -> Result<RecordBatch> + Sync,
) -> Result<FileRef> {
    let pq = |e| Error::parquet(path, e);
    let props = Arc::new(writer_properties());
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(schema)
        .map_err(pq)?;
    let out = HashingWriter::create(path)?;
    let mut writer =
        SerializedFileWriter::new(out, parquet_schema.root_schema_ptr(), Arc::clone(&props))
            .map_err(pq)?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(schema));
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
