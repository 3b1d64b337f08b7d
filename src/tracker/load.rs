//! Reading a round's segments back from Parquet into typed columns.

use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, TimestampMillisecondType, UInt8Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, Float32Array, RecordBatch, StringArray};
use arrow_schema::Schema;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;

use crate::model::{Mode, Outcome};
use crate::store::segment::{collections_schema, results_schema};
use crate::store::{BatchKind, Store};
use crate::time::Millis;
use crate::{Error, Result};

/// A round's collection rows, all segments concatenated.
#[derive(Clone)]
pub struct Collections {
    /// Tube barcodes.
    pub tube: StringArray,
    /// Person ids.
    pub person: StringArray,
    /// Modes.
    pub mode: Vec<Mode>,
    /// Capacities.
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
    /// Ct ORF1ab (nullable).
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

fn read_table(
    store: &Store,
    round: &str,
    kind: BatchKind,
    schema: Arc<Schema>,
) -> Result<RecordBatch> {
    let files: Vec<_> = store
        .manifest()
        .segments(Some(round))
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, s, _)| store.root().join(&s.parquet.path))
        .collect();
    let parts: Vec<Vec<RecordBatch>> = files
        .par_iter()
        .map(|path| {
            let f = File::open(path).map_err(|e| Error::io(path, e))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.with_batch_size(64 * 1024).build())
                .map_err(|e| Error::damaged(store.root(), format!("{}: {e}", path.display())))?;
            let mut out = Vec::new();
            for b in reader {
                let b = b.map_err(|e| {
                    Error::damaged(store.root(), format!("{}: {e}", path.display()))
                })?;
                if b.schema().fields() != schema.fields() {
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
    Ok(arrow_select::concat::concat_batches(&schema, &all)?)
}

fn strings(b: &RecordBatch, i: usize) -> StringArray {
    b.column(i).as_string::<i32>().clone()
}

fn damaged(store: &Store, what: &str) -> Error {
    Error::damaged(store.root(), format!("a segment holds an unknown {what}"))
}

/// Reads every collection row of `round`.
pub fn collections(store: &Store, round: &str) -> Result<Collections> {
    let b = read_table(store, round, BatchKind::Collections, collections_schema())?;
    let mode = b
        .column(3)
        .as_string::<i32>()
        .iter()
        .map(|m| {
            m.and_then(Mode::parse)
                .ok_or_else(|| damaged(store, "mode"))
        })
        .collect::<Result<_>>()?;
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
    let b = read_table(store, round, BatchKind::Results, results_schema())?;
    let outcome = b
        .column(2)
        .as_string::<i32>()
        .iter()
        .map(|o| {
            o.and_then(Outcome::parse)
                .ok_or_else(|| damaged(store, "result"))
        })
        .collect::<Result<_>>()?;
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
        batch: b.column(10).as_primitive::<UInt32Type>().values().to_vec(),
        source: strings(&b, 11),
        line: b.column(12).as_primitive::<UInt64Type>().values().to_vec(),
    })
}
