//! Dictionary columns written from their keys.
//!
//! A dictionary-encoded Parquet column chunk is one page of the distinct values
//! (PLAIN: a 4-byte length, then the bytes), then data pages of keys into it: a byte
//! giving the key width in bits, then the keys in the RLE/bit-packed hybrid, after the
//! definition levels when the column may be null.
//!
//! The parquet crate's Arrow writer builds that dictionary again from every row's
//! value, hashing and comparing each one, although an Arrow dictionary array already
//! carries it: for the five dictionary columns of a 25-million-row collections batch
//! that was 1.4 s of CPU, half of all Parquet encoding. Here the keys go straight into
//! pages, renumbered to the values the row group uses in order of first use, as the
//! Arrow writer numbers them; readers see the same column.

use std::io::Write;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_buffer::NullBuffer;
use bytes::Bytes;
use parquet::basic::{Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedPageWriter, SerializedRowGroupWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// One encoded column chunk, ready to be appended to its row group.
#[derive(Debug)]
pub(crate) struct KeyedChunk {
    data: Bytes,
    close: ColumnCloseResult,
}

impl KeyedChunk {
    /// Appends the chunk as the row group's next column.
    pub(crate) fn append_to_row_group<W: Write + Send>(
        self,
        rg: &mut SerializedRowGroupWriter<'_, W>,
    ) -> Result<()> {
        rg.append_column(&self.data, self.close)
    }
}

/// `column` as a dictionary-encoded chunk for the leaf `descr`; `None` when this path
/// does not apply (not a dictionary of strings, dictionary encoding off for the column,
/// or more distinct values than one dictionary page holds) and the Arrow writer
/// should write it.
pub fn encode(
    descr: &ColumnDescPtr,
    props: &WriterProperties,
    column: &dyn Array,
) -> Option<Result<KeyedChunk>> {
    let dict = column.as_any_dictionary_opt()?;
    let values = dict.values().as_string_opt::<i32>()?;
    // No values (every row null) is left to the Arrow writer too.
    if descr.max_rep_level() > 0
        || values.is_empty()
        || values.null_count() > 0
        || !props.dictionary_enabled(descr.path())
    {
        return None;
    }
    let nulls = column.nulls();
    if nulls.is_some() && descr.max_def_level() == 0 {
        return None;
    }
    // Keys renumbered by first use; a null row has no key.
    let keys = dict.normalized_keys();
    let mut renumber = vec![u32::MAX; values.len()];
    let mut used: Vec<usize> = Vec::new();
    let mut ids: Vec<u32> = Vec::with_capacity(keys.len());
    for (row, &k) in keys.iter().enumerate() {
        if nulls.is_some_and(|n| n.is_null(row)) {
            continue;
        }
        let slot = renumber.get_mut(k)?;
        if *slot == u32::MAX {
            *slot = u32::try_from(used.len()).ok()?;
            used.push(k);
        }
        ids.push(*slot);
    }
    let page_bytes: usize = used.iter().map(|&k| 4 + values.value(k).len()).sum();
    if page_bytes > props.dictionary_page_size_limit() {
        return None;
    }
    let dictionary: Vec<&[u8]> = used.iter().map(|&k| values.value(k).as_bytes()).collect();
    Some(write_chunk(
        descr,
        props.data_page_row_count_limit(),
        &dictionary,
        &ids,
        keys.len(),
        nulls,
        descr.max_def_level() > 0,
    ))
}

fn general(msg: &str) -> ParquetError {
    ParquetError::General(msg.to_owned())
}

fn count32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| general("column chunk too large"))
}

fn count64(n: usize) -> Result<i64> {
    i64::try_from(n).map_err(|_| general("column chunk too large"))
}

/// Writes the dictionary page and data pages of `rows` rows whose present values
/// have the keys `ids` into `dictionary`.
fn write_chunk(
    descr: &ColumnDescPtr,
    page_rows: usize,
    dictionary: &[&[u8]],
    ids: &[u32],
    rows: usize,
    nulls: Option<&NullBuffer>,
    levels: bool,
) -> Result<KeyedChunk> {
    let mut sink = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut sink);
    let mut page = Vec::new();
    for v in dictionary {
        page.extend_from_slice(&count32(v.len())?.to_le_bytes());
        page.extend_from_slice(v);
    }
    let size = page.len();
    let spec = pages.write_page(CompressedPage::new(
        Page::DictionaryPage {
            buf: Bytes::from(page),
            num_values: count32(dictionary.len())?,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        },
        size,
    ))?;
    let (mut compressed, mut uncompressed) = (spec.compressed_size, spec.uncompressed_size);
    let mut data_page_offset = None;
    let width = bit_width(dictionary.len().saturating_sub(1));
    let mut offsets = OffsetIndexBuilder::new();
    let mut next_id = 0usize;
    let mut start = 0usize;
    while start < rows {
        let len = page_rows.max(1).min(rows - start);
        let mut page = Vec::new();
        let mut present = len;
        if levels {
            let defined: Vec<u32> = (start..start + len)
                .map(|r| u32::from(nulls.is_none_or(|n| n.is_valid(r))))
                .collect();
            present = defined.iter().filter(|&&d| d == 1).count();
            page.extend_from_slice(&[0; 4]);
            hybrid(&mut page, &defined, 1);
            let level_bytes = count32(page.len() - 4)?.to_le_bytes();
            page[..4].copy_from_slice(&level_bytes);
        }
        page.push(width);
        let keys = ids
            .get(next_id..next_id + present)
            .ok_or_else(|| general("fewer keys than rows"))?;
        hybrid(&mut page, keys, width);
        next_id += present;
        let size = page.len();
        let spec = pages.write_page(CompressedPage::new(
            Page::DataPage {
                buf: Bytes::from(page),
                num_values: count32(len)?,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            size,
        ))?;
        data_page_offset.get_or_insert(spec.offset);
        offsets.append_row_count(count64(len)?);
        offsets.append_offset_and_size(
            i64::try_from(spec.offset).map_err(|_| general("column chunk too large"))?,
            i32::try_from(spec.compressed_size).map_err(|_| general("page too large"))?,
        );
        compressed += spec.compressed_size;
        uncompressed += spec.uncompressed_size;
        start += len;
    }
    pages.close()?;
    let data = sink.into_inner()?;
    let metadata = ColumnChunkMetaData::builder(descr.clone())
        .set_compression(Compression::UNCOMPRESSED)
        .set_encodings(vec![
            Encoding::PLAIN,
            Encoding::RLE,
            Encoding::RLE_DICTIONARY,
        ])
        .set_total_compressed_size(count64(compressed)?)
        .set_total_uncompressed_size(count64(uncompressed)?)
        .set_num_values(count64(rows)?)
        .set_data_page_offset(
            data_page_offset
                .and_then(|o| i64::try_from(o).ok())
                .unwrap_or(0),
        )
        .set_dictionary_page_offset(Some(0))
        .build()?;
    Ok(KeyedChunk {
        close: ColumnCloseResult {
            bytes_written: u64::try_from(data.len()).unwrap_or(u64::MAX),
            rows_written: u64::try_from(rows).unwrap_or(u64::MAX),
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(offsets.build()),
        },
        data: Bytes::from(data),
    })
}

/// Bits needed for keys up to `max`.
fn bit_width(max: usize) -> u8 {
    let bits = usize::BITS - max.leading_zeros();
    u8::try_from(bits).unwrap_or(u8::MAX)
}

/// Length of the run of values equal to `v[i]` starting at `i`.
fn run_len(v: &[u32], i: usize) -> usize {
    v.get(i)
        .map_or(0, |&x| v[i..].iter().take_while(|&&y| y == x).count())
}

/// Values at or above this run length are written as one repeated value.
const MIN_RUN: usize = 8;

/// Literal groups of 8 per bit-packed run: a one-byte header, as the parquet crate
/// writes them.
const MAX_GROUPS: usize = 63;

/// Appends `v` in the RLE/bit-packed hybrid encoding at `width` bits a value: runs of
/// at least 8 equal values as one repeated value, the rest bit-packed in groups of 8
/// (the last group padded with zeros, which readers drop by the value count).
fn hybrid(out: &mut Vec<u8>, v: &[u32], width: u8) {
    let value_bytes = usize::from(width).div_ceil(8);
    let mut i = 0;
    while i < v.len() {
        let run = run_len(v, i);
        if run >= MIN_RUN {
            varint(out, (run as u64) << 1);
            out.extend_from_slice(&v[i].to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // A literal stretch ends where a long run starts on a group boundary.
        let mut end = i;
        loop {
            end = (end + 8).min(v.len());
            if end == v.len() || end - i >= MAX_GROUPS * 8 || run_len(v, end) >= MIN_RUN {
                break;
            }
        }
        let groups = (end - i).div_ceil(8);
        varint(out, ((groups as u64) << 1) | 1);
        bitpack(out, &v[i..end], groups * 8, width);
        i = end;
    }
}

/// Packs `v`, zero-padded to `count` values, least significant bit first.
fn bitpack(out: &mut Vec<u8>, v: &[u32], count: usize, width: u8) {
    let mut acc = 0u64;
    let mut bits = 0u32;
    for k in 0..count {
        acc |= u64::from(v.get(k).copied().unwrap_or(0)) << bits;
        bits += u32::from(width);
        while bits >= 8 {
            out.push(acc.to_le_bytes()[0]);
            acc >>= 8;
            bits -= 8;
        }
    }
}

/// ULEB128, as run headers are written.
fn varint(out: &mut Vec<u8>, mut x: u64) {
    loop {
        let byte = x.to_le_bytes()[0] & 0x7f;
        x >>= 7;
        if x == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::{UInt8Type, UInt32Type};
    use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt8Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowSchemaConverter;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::writer::SerializedFileWriter;
    use proptest::prelude::*;

    use super::*;

    /// Writes `column` as the one column of a file through [`encode`], reads it back.
    fn round_trip(column: &ArrayRef, page_rows: usize) -> ArrayRef {
        let nullable = column.null_count() > 0;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "c",
            column.data_type().clone(),
            nullable,
        )]));
        let props = Arc::new(
            WriterProperties::builder()
                .set_data_page_row_count_limit(page_rows)
                .build(),
        );
        let pq_schema = ArrowSchemaConverter::new()
            .convert(&schema)
            .expect("in-memory Parquet");
        let mut file = Vec::new();
        let mut w =
            SerializedFileWriter::new(&mut file, pq_schema.root_schema_ptr(), Arc::clone(&props))
                .expect("in-memory Parquet");
        let chunk = encode(&pq_schema.column(0), &props, column.as_ref())
            .expect("a dictionary of strings")
            .expect("encodes");
        let mut rg = w.next_row_group().expect("in-memory Parquet");
        chunk
            .append_to_row_group(&mut rg)
            .expect("in-memory Parquet");
        rg.close().expect("in-memory Parquet");
        w.close().expect("in-memory Parquet");
        let options = ArrowReaderOptions::new().with_schema(Arc::clone(&schema));
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(Bytes::from(file), options)
                .expect("in-memory Parquet")
                .build()
                .expect("in-memory Parquet");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("in-memory Parquet")).collect();
        let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches)
            .expect("in-memory Parquet");
        Arc::clone(all.column(0))
    }

    fn as_text(a: &dyn Array) -> Vec<Option<String>> {
        let plain = arrow_cast::cast(a, &DataType::Utf8).expect("in-memory Parquet");
        plain
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    #[test]
    fn one_value_columns_read_back() {
        let values = Arc::new(StringArray::from(vec!["R1"]));
        let d = DictionaryArray::<UInt8Type>::try_new(UInt8Array::from(vec![0u8; 50_000]), values)
            .expect("in-memory Parquet");
        let back = round_trip(&(Arc::new(d.clone()) as ArrayRef), 20_000);
        assert_eq!(as_text(&back), as_text(&d));
    }

    #[test]
    fn unused_values_are_left_out_and_nulls_kept() {
        let values = Arc::new(StringArray::from(vec!["a", "unused", "c", "d"]));
        let keys: Vec<Option<u32>> = (0..1000)
            .map(|i| match i % 7 {
                0 => None,
                1 | 2 => Some(2),
                _ => Some(if i % 3 == 0 { 0 } else { 3 }),
            })
            .collect();
        let d =
            DictionaryArray::<UInt32Type>::try_new(keys.into(), values).expect("in-memory Parquet");
        let back = round_trip(&(Arc::new(d.clone()) as ArrayRef), 100);
        assert_eq!(as_text(&back), as_text(&d));
        let back = back.as_any_dictionary();
        assert_eq!(back.values().len(), 3, "only the values rows use");
    }

    #[test]
    fn an_all_null_column_with_no_values_is_left_to_the_arrow_writer() {
        let values = Arc::new(StringArray::from(Vec::<&str>::new()));
        let keys = UInt8Array::from(vec![None::<u8>; 10]);
        let d = DictionaryArray::<UInt8Type>::try_new(keys, values).expect("in-memory Parquet");
        let field = Field::new("c", d.data_type().clone(), true);
        let schema = ArrowSchemaConverter::new()
            .convert(&Schema::new(vec![field]))
            .expect("in-memory Parquet");
        let props = WriterProperties::builder().build();
        assert!(encode(&schema.column(0), &props, &d).is_none());
    }

    #[test]
    fn hybrid_runs_and_literals() {
        let mut out = Vec::new();
        hybrid(&mut out, &[5; 20], 3);
        assert_eq!(
            out,
            [40, 5],
            "one run of 20: header 20 << 1, then the value"
        );
        out.clear();
        hybrid(&mut out, &[1, 0, 1], 1);
        assert_eq!(out, [3, 0b101], "one group of 8, padded");
    }

    proptest! {
        #[test]
        fn any_keys_and_nulls_read_back(
            keys in proptest::collection::vec(proptest::option::weighted(0.9, 0u32..300), 1..3000),
            page_rows in 1usize..500,
        ) {
            let values = Arc::new(StringArray::from_iter_values((0..300).map(|i| format!("v{i}"))));
            let d = DictionaryArray::<UInt32Type>::try_new(keys.into(), values).expect("in-memory Parquet");
            let back = round_trip(&(Arc::new(d.clone()) as ArrayRef), page_rows);
            prop_assert_eq!(as_text(&back), as_text(&d));
        }
    }
}
