//! A round's collections segment: the Parquet file in input order, the tube index (one
//! record per run of a tube's consecutive rows) and the person index.

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::{UInt8Type, UInt16Type};
use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, TimestampMillisecondArray, UInt64Array};
use arrow_schema::DataType;
use rayon::prelude::*;

use super::columns::{batch_column, dictionary, stated_capacities, stated_modes};
use super::hashed::HashingWriter;
use super::parquet_file::write_parquet_groups;
use super::persons::write_person_index;
use super::schema::{collections_schema, with_dictionaries};
use super::{SegmentPlan, Stems, pipelined, too_big};
use crate::column::{LabelColumn, PersonColumn, StrColumn};
use crate::model::Mode;
use crate::rows::{CollectionRows, Sources};
use crate::store::index::{self, IndexWriter, Kind};
use crate::store::manifest::{BatchKind, Segment};
use crate::{Error, Result};

/// Writes the rows `plan.order` of `rows` (ascending: the committed rows in input order)
/// as round `plan.round`'s collections segment of batch `batch`, its sidecars as the
/// store's format makes them (`sidecars`). The sidecars are written
/// first; then, when `order` keeps every row in place (nothing was refused), the
/// columns move into Arrow without a copy (so `rows` may be left empty).
///
/// Rows stay in input order rather than grouped by tube: sampling stations fill
/// several pools at once, so a city's file interleaves tubes, and regrouping meant
/// copying the batch's gigabyte of text. The tube index has one record per run of a
/// tube's consecutive rows; readers merge a tube's runs.
///
/// The Parquet file keeps what each row stated; the tube index holds each tube's
/// settled metadata ([`index::TubeMeta`]): `plan.settled` names the rows (ascending) whose
/// tube's metadata differs from what the row itself states.
pub fn write_collections(
    root: &Path,
    batch: u32,
    plan: &SegmentPlan,
    files: &[String],
    rows: &mut CollectionRows,
    sidecars: index::Sidecars,
) -> Result<Segment> {
    let (round, order, settled) = (plan.round.as_str(), &plan.order[..], &plan.settled[..]);
    let stems = Stems::create(root, BatchKind::Collections, Some(round), batch)?;
    let n = order.len();
    let in_place = n == rows.len() && order.iter().enumerate().all(|(k, &i)| k == i as usize);
    // Row `k` of the segment is row `row(k)` of the batch.
    let row = |k: usize| if in_place { k } else { order[k] as usize };
    // The batch's text is the largest thing in memory: keep it as it is (row groups
    // copy their part), or free each column as soon as its reordered copy exists.
    let text = |col: &mut StrColumn| {
        let old = std::mem::take(col);
        if in_place { old } else { old.gather(order) }
    };
    let ids = |col: &mut PersonColumn| {
        let old = std::mem::take(col);
        if in_place { old } else { old.gather(order) }
    };
    let (tube, person) = {
        let (t, p) = (&mut rows.tube, &mut rows.person);
        rayon::join(|| text(t), || ids(p))
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
            Arc::new(tube.arrow_range(start, len)),
            Arc::new(person.arrow_range(start, len)),
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
            dictionary::<UInt16Type>(
                rows.source.of_ascending(ks()).map(|(f, _)| f).collect(),
                &files,
            )?,
            Arc::new(UInt64Array::from_iter_values(
                rows.source.of_ascending(ks()).map(|(_, l)| u64::from(l)),
            )),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
    };
    let parquet_path = stems.data.with_extension("parquet");
    let parquet = write_parquet_groups(root, &parquet_path, &schema, n, group)?;
    // Of the rows written, not of the batch's: a refused row's time is no swab of the round.
    let first_collected_at = (0..n)
        .into_par_iter()
        .map(|k| rows.collected_at[row(k)])
        .min();
    // Only the tube index's columns are still needed.
    rows.collected_at = Vec::new();
    rows.site = LabelColumn::default();
    rows.source = Sources::default();

    // The indexes come last, when the batch's other columns are freed: the tube index
    // has one record per run of a tube's consecutive rows, sorted by barcode.
    let tubes_path = stems.private.with_extension("tubes");
    let starts: Vec<usize> = (0..n)
        .into_par_iter()
        .filter(|&k| k == 0 || tube.bytes(k) != tube.bytes(k - 1))
        .collect();
    let run = |r: u32| {
        let start = starts[r as usize];
        (start, starts.get(r as usize + 1).unwrap_or(&n) - start)
    };
    // Sorted by barcode, a tube's runs in row order: run numbers break the ties.
    let count = u32::try_from(starts.len()).map_err(|_| too_big(&tubes_path))?;
    let mut sorted: Vec<(u128, u32)> = (0..count)
        .into_par_iter()
        .map(|r| (index::tube_prefix(tube.bytes(run(r).0)), r))
        .collect();
    let barcode = |r: u32| tube.bytes(run(r).0);
    sorted.par_sort_unstable_by(|&(ka, a), &(kb, b)| {
        ka.cmp(&kb)
            .then_with(|| barcode(a).cmp(barcode(b)))
            .then(a.cmp(&b))
    });
    let narrow = sidecars.narrow(starts.iter().map(|&k| tube.bytes(k)));
    let mut w = IndexWriter::tubes(
        HashingWriter::create(&tubes_path)?,
        Kind::CollectionTubes,
        sorted.len() as u64,
        narrow,
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
            &index::tube_key(tube.get(start)),
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

    let persons_path = stems.private.with_extension("persons");
    let keys = sidecars.keys;
    let persons = write_person_index(root, &persons_path, n, keys, |k| person.key(k, keys))?;
    stems.sync()?;
    Ok(Segment {
        round: round.to_owned(),
        rows: n as u64,
        parquet,
        tubes,
        persons: Some(persons),
        controls: 0,
        failed_plates: Vec::new(),
        first_collected_at,
    })
}
