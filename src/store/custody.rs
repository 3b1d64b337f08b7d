//! Reading a round's custody rows back: every live batch's custody Parquet file of the
//! round, whole (a round holds about one custody row per tube). A store without the
//! `custody/` table has none.

use std::fs::File;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Store;
use super::segment::Scan;
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

/// Every custody row of `round` in live batches (custody batches, and collections
/// batches whose files had a `box` column), in batch order then file order.
pub fn rows(store: &Store, round: &str) -> Result<Vec<Stored>> {
    rows_where(store, round, |_| true)
}

/// Whether any live batch holds custody rows of `round`.
pub fn any(store: &Store, round: &str) -> bool {
    store
        .manifest()
        .live_batches()
        .any(|b| b.custody.is_some() && b.round.as_deref() == Some(round))
}

/// The custody rows of `round` whose tube `keep` accepts (a row without a tube is
/// tested as ""), in the order of [`rows`]. Only those rows are made into [`Stored`]:
/// a batch of ten thousand rows checked against a city's boxes reads the round's
/// custody files but makes no text of the other millions of rows.
pub fn rows_where(store: &Store, round: &str, keep: impl Fn(&str) -> bool) -> Result<Vec<Stored>> {
    let mut out = Vec::new();
    for b in store.manifest().live_batches() {
        if b.round.as_deref() != Some(round) {
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
                if !keep(if tube.is_null(i) { "" } else { tube.value(i) }) {
                    continue;
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{IngestOptions, ingest_boxes, ingest_collections};
    use crate::store::{BatchKind, tables};

    #[test]
    fn the_first_custody_batch_makes_the_table_and_its_rows_read_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let pools = file(
            "pools.csv",
            "tube,person,mode,collected_at\nPL0001,P-1,pool,2022-04-02 08:00\n",
        );
        let boxes = file(
            "boxes.csv",
            "box,tube,site,sealed_at\nBX01,PL0001,S1,2022-04-02 09:00\nBX01,PL0009,,\n",
        );
        let root = dir.path().join("store");
        let mut store = Store::open_writer(&root).expect("store");
        let opts = IngestOptions::default();
        ingest_collections(&mut store, &[pools], "R1", &opts, None).expect("collections");
        let custody = tables::table_dir(&root, BatchKind::Custody);
        assert!(!custody.exists(), "no custody table before a custody batch");
        assert!(rows(&store, "R1").expect("rows").is_empty());
        ingest_boxes(&mut store, &[boxes], "R1", &opts).expect("boxes");
        let versions = crate::store::delta::versions(&custody)
            .expect("log")
            .expect("a log");
        assert_eq!(versions, [0, 1]);
        drop(store);
        let store = Store::open(&root).expect("reopen");
        let got = rows(&store, "R1").expect("rows");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].kind, Scan::Sealed);
        assert_eq!(
            (
                got[0].box_id.as_deref(),
                got[0].tube.as_deref(),
                got[0].site.as_deref()
            ),
            (Some("BX01"), Some("PL0001"), Some("S1"))
        );
        assert_eq!((got[0].batch, got[0].line), (2, 2));
        assert!(got[0].at.is_some() && got[1].at.is_none());
        assert_eq!(got[1].site, None);
        assert!(rows(&store, "R2").expect("rows").is_empty());
    }
}
