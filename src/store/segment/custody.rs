//! A custody segment: a batch's custody rows of one round, boxes sealed and boxes or
//! tubes scanned at receipt, as one Parquet file in input order. A custody batch has
//! one; so has a collections batch whose files carry a `box` column (its box manifest).
//! No sidecar: a round holds about one custody row per tube, and `pooltrack custody`
//! reads them all.

use std::path::Path;
use std::sync::Arc;

use arrow_array::types::{UInt16Type, UInt32Type};
use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array};
use arrow_array::{DictionaryArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::columns::dictionary;
use super::parquet_file::write_parquet;
use super::schema::with_dictionaries;
use crate::Result;
use crate::column::LabelColumn;
use crate::rows::CollectionRows;
use crate::store::fsutil;
use crate::store::manifest::{BatchKind, CustodySegment};
use crate::time::Millis;

/// What a custody row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scan {
    /// A tube put in a box at a site (a box manifest line, or a collection row with a
    /// box); `at` is when the box was sealed, if stated.
    Sealed,
    /// A box or a tube scanned at a lab's receipt; `at` is when.
    Received,
}

impl Scan {
    /// The word stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Scan::Sealed => "sealed",
            Scan::Received => "received",
        }
    }

    /// The scan a stored word names.
    pub fn parse(word: &str) -> Option<Scan> {
        match word {
            "sealed" => Some(Scan::Sealed),
            "received" => Some(Scan::Received),
            _ => None,
        }
    }
}

/// One custody row, as ingest checked it and the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyRow {
    /// Sealed or received.
    pub kind: Scan,
    /// The box barcode (a sealed row always has one; a receipt has a box, a tube or both).
    pub box_id: Option<String>,
    /// The tube barcode.
    pub tube: Option<String>,
    /// The sampling site that sealed the box.
    pub site: Option<String>,
    /// The lab that received it.
    pub lab: Option<String>,
    /// When it was sealed or received.
    pub at: Option<Millis>,
    /// The source file, as an index into the batch's files.
    pub file: u16,
    /// Its line.
    pub line: u32,
}

/// The schema of custody segments.
pub fn custody_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("round", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("box", DataType::Utf8, true),
        Field::new("tube", DataType::Utf8, true),
        Field::new("site", DataType::Utf8, true),
        Field::new("lab", DataType::Utf8, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("batch", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
    ]))
}

/// Writes batch `batch`'s custody rows of `round` (`files` names the sources) as
/// `custody/<round>/bNNNNNN.parquet`, synced with its folder.
pub fn write_custody(
    root: &Path,
    batch: u32,
    round: &str,
    files: &[String],
    rows: &[CustodyRow],
) -> Result<CustodySegment> {
    let (data, _) = super::segment_stems(BatchKind::Custody, Some(round), batch);
    let path = root.join(data).with_extension("parquet");
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all(dir)?;
    }
    let n = rows.len();
    let text = |f: fn(&CustodyRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(round, n))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.kind.as_str()),
        )),
        text(|r| r.box_id.as_deref()),
        text(|r| r.tube.as_deref()),
        text(|r| r.site.as_deref()),
        text(|r| r.lab.as_deref()),
        Arc::new(
            rows.iter()
                .map(|r| r.at)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        Arc::new(UInt32Array::from_value(batch, n)),
        dictionary::<UInt16Type>(rows.iter().map(|r| r.file).collect(), &files)?,
        Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| u64::from(r.line)),
        )),
    ];
    write_segment(root, &path, columns, n)
}

/// Writes the box manifest a collections batch carries: rows `picked` of `rows`
/// (ascending), each a tube put in its box (`sealed`, with the row's site, no sealing
/// time), as `custody/<round>/bNNNNNN.parquet` of batch `batch`. Read straight from
/// the batch's columns: no row becomes a [`CustodyRow`] on the way.
pub fn write_collection_boxes(
    root: &Path,
    batch: u32,
    round: &str,
    files: &[String],
    rows: &CollectionRows,
    picked: &[u32],
) -> Result<CustodySegment> {
    let (data, _) = super::segment_stems(BatchKind::Custody, Some(round), batch);
    let path = root.join(data).with_extension("parquet");
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all(dir)?;
    }
    let n = picked.len();
    let at = |i: u32| i as usize;
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    // Labels as plain text, as every custody segment has them: taken through their
    // keys, a byte copy per row.
    let text = |labels: &LabelColumn| -> Result<ArrayRef> {
        let keys = labels.arrow_keys(picked.iter().map(|&i| at(i)));
        let dict = DictionaryArray::<UInt32Type>::new(keys, labels.arrow_values());
        Ok(arrow_cast::cast(&dict, &DataType::Utf8)?)
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(round, n))),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            Scan::Sealed.as_str(),
            n,
        ))),
        text(&rows.box_id)?,
        Arc::new(rows.tube.gather(picked).into_arrow()),
        text(&rows.site)?,
        Arc::new(StringArray::new_null(n)),
        Arc::new(TimestampMillisecondArray::new_null(n).with_timezone("UTC")),
        Arc::new(UInt32Array::from_value(batch, n)),
        dictionary::<UInt16Type>(
            picked.iter().map(|&i| rows.source.file(at(i))).collect(),
            &files,
        )?,
        Arc::new(UInt64Array::from_iter_values(
            picked.iter().map(|&i| u64::from(rows.source.line(at(i)))),
        )),
    ];
    write_segment(root, &path, columns, n)
}

/// Writes a custody segment's columns to `path`, synced with its folder.
fn write_segment(
    root: &Path,
    path: &Path,
    columns: Vec<ArrayRef>,
    n: usize,
) -> Result<CustodySegment> {
    let schema = with_dictionaries(&custody_schema(), &[("source", DataType::UInt16)]);
    let record = RecordBatch::try_new(schema, columns)?;
    let parquet = write_parquet(root, path, &record)?;
    if let Some(dir) = path.parent() {
        fsutil::sync_dir(dir)?;
    }
    Ok(CustodySegment {
        rows: n as u64,
        parquet,
    })
}
