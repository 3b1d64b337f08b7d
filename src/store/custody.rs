//! Reading a round's custody rows back: every live custody batch's Parquet file of the
//! round, whole (a round holds about one custody row per tube). A store without the
//! `custody/` table has none.

use std::fs::File;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::segment::Scan;
use super::{BatchKind, Store};
use crate::time::Millis;
use crate::{Error, Result};

/// A stored custody row with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Sealed or received.
    pub kind: Scan,
    /// Box barcode.
    pub box_id: Option<String>,
    /// Tube barcode.
    pub tube: Option<String>,
    /// Sealing site.
    pub site: Option<String>,
    /// Receiving lab.
    pub lab: Option<String>,
    /// When sealed or received.
    pub at: Option<Millis>,
    /// The batch that committed it.
    pub batch: u32,
    /// Its source file as given to ingest.
    pub source: String,
    /// Its line there.
    pub line: u64,
}

/// Every custody row of `round` in live batches, in batch order then file order.
pub fn rows(store: &Store, round: &str) -> Result<Vec<Stored>> {
    let mut out = Vec::new();
    for b in store.manifest().live_batches() {
        if b.kind != BatchKind::Custody || b.round.as_deref() != Some(round) {
            continue;
        }
        let Some(seg) = &b.custody else { continue };
        let path = store.root().join(&seg.parquet.path);
        let damaged = |e: &dyn std::fmt::Display| {
            Error::damaged(store.root(), format!("{}: {e}", path.display()))
        };
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(ParquetRecordBatchReaderBuilder::build)
            .map_err(|e| damaged(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| damaged(&e))?;
            let col = |name: &str| -> Result<ArrayRef> {
                let c = batch
                    .column_by_name(name)
                    .ok_or_else(|| damaged(&format!("no {name} column")))?;
                match c.data_type() {
                    DataType::Dictionary(_, _) => {
                        arrow_cast::cast(c, &DataType::Utf8).map_err(|e| damaged(&e))
                    }
                    _ => Ok(c.clone()),
                }
            };
            let text = |name: &str| -> Result<StringArray> {
                col(name)?
                    .as_string_opt::<i32>()
                    .cloned()
                    .ok_or_else(|| damaged(&format!("the {name} column is not text")))
            };
            let (kind, box_id, tube, site, lab, source) = (
                text("kind")?,
                text("box")?,
                text("tube")?,
                text("site")?,
                text("lab")?,
                text("source")?,
            );
            let at = col("at")?;
            let at = at
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(|| damaged(&"the at column is not a time"))?;
            let line = col("line")?;
            let line = line
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| damaged(&"the line column is not a number"))?;
            let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
            for i in 0..batch.num_rows() {
                let k = Scan::parse(kind.value(i))
                    .ok_or_else(|| damaged(&format!("row {i} has kind {:?}", kind.value(i))))?;
                out.push(Stored {
                    kind: k,
                    box_id: opt(&box_id, i),
                    tube: opt(&tube, i),
                    site: opt(&site, i),
                    lab: opt(&lab, i),
                    at: (!at.is_null(i)).then(|| at.value(i)),
                    batch: b.id,
                    source: source.value(i).to_owned(),
                    line: line.value(i),
                });
            }
        }
    }
    Ok(out)
}
