//! A round's results segment: the Parquet file sorted by tube (plate controls last)
//! and the tube index of its samples.

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::{UInt8Type, UInt16Type};
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, RecordBatch, TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::DataType;

use super::columns::{batch_column, dictionary, take};
use super::hashed::HashingWriter;
use super::parquet_file::write_parquet_groups;
use super::schema::{results_schema, with_dictionaries};
use super::{SegmentPlan, Stems, too_big};
use crate::column::CtColumn;
use crate::model::{Outcome, SampleType};
use crate::rows::ResultRows;
use crate::store::index::{self, IndexWriter, Kind};
use crate::store::manifest::{BatchKind, Segment};
use crate::{Error, Result};

/// Writes one round's result rows of batch `batch`: the samples (`plan.order`, sorted by
/// tube, then `reported_at`) and after them the plate controls, which the tube index
/// leaves out.
pub fn write_results(
    root: &Path,
    batch: u32,
    plan: &SegmentPlan,
    files: &[String],
    rows: &ResultRows,
    sidecars: index::Sidecars,
) -> Result<Segment> {
    let round = plan.round.as_str();
    let stems = Stems::create(root, BatchKind::Results, Some(round), batch)?;
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
        let cts = |col: &CtColumn| -> ArrayRef {
            Arc::new(
                order
                    .iter()
                    .map(|i| col.get(at(i)))
                    .collect::<Float32Array>(),
            )
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
                    .map(|i| rows.received_at.get(at(i)))
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            ),
            batch_column(batch, len)?,
            dictionary::<UInt16Type>(
                order.iter().map(|&i| rows.source.file(at(&i))).collect(),
                &files,
            )?,
            Arc::new(UInt64Array::from_iter_values(
                order.iter().map(|i| u64::from(rows.source.line(at(i)))),
            )),
        ];
        Ok(RecordBatch::try_new(Arc::clone(&schema), columns)?)
    };
    let parquet_path = stems.data.with_extension("parquet");
    let parquet = write_parquet_groups(root, &parquet_path, &schema, n, group)?;

    let tubes_path = stems.private.with_extension("tubes");
    let narrow = sidecars.narrow(
        samples
            .iter()
            .map(|&i| rows.tube.get(i as usize).as_bytes()),
    );
    let mut w = IndexWriter::tubes(
        HashingWriter::create(&tubes_path)?,
        Kind::ResultTubes,
        samples.len() as u64,
        narrow,
    )
    .map_err(|e| Error::io(&tubes_path, e))?;
    for (row, &i) in samples.iter().enumerate() {
        let i = i as usize;
        let rec = index::result_tube_record(
            &index::tube_key(rows.tube.get(i)),
            u32::try_from(row).map_err(|_| too_big(&tubes_path))?,
            rows.outcome[i].code(),
            rows.reported_at[i],
            (rows.ct_orf1ab.get(i), rows.ct_n.get(i)),
        );
        w.push(&rec).map_err(|e| Error::io(&tubes_path, e))?;
    }
    let tubes = w
        .finish()
        .map_err(|e| Error::io(&tubes_path, e))?
        .finish(root, &tubes_path)?;
    stems.sync()?;
    Ok(Segment {
        round: round.to_owned(),
        rows: n as u64,
        parquet,
        tubes,
        persons: None,
        controls: plan.controls.len() as u64,
        failed_plates: plan.failed_plates.clone(),
        first_collected_at: None,
    })
}
