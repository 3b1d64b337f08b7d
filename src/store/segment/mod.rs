//! Writing a batch's rows of one round as a segment: a Parquet file (collections in
//! input order, results sorted by tube) plus its sidecar indexes. Every file is hashed as it is written and fsynced before
//! the manifest that names it is committed.
//!
//! One file per job: `schema` holds the tables' Arrow schemas (which the reader decodes
//! with too); `hashed` the writer every segment file goes through, which counts and
//! hashes it for the manifest; `parquet_file` the Parquet encoding, row groups built
//! and encoded on all cores; `columns` the Arrow columns built from a batch's rows;
//! `persons` the person index; `collections`, `results` and `population` the segment
//! of each table, Parquet file and sidecars.

use std::io;
use std::path::{Path, PathBuf};

use super::fsutil;
use super::index::TubeMeta;
use super::manifest::{BatchKind, FailedPlate};
use crate::{Error, Result};

mod collections;
mod columns;
mod custody;
mod hashed;
mod parquet_file;
mod persons;
mod population;
mod results;
mod schema;

pub use collections::write_collections;
pub use custody::{CustodyRow, Scan, custody_schema, write_collection_boxes, write_custody};
pub use parquet_file::ROW_GROUP;
pub use population::write_population;
pub use results::write_results;
pub use schema::{collections_schema, population_schema, results_schema};

/// The private folder in each table for pooltrack's sidecar indexes, which other engines and
/// their `VACUUM` leave alone.
pub const PRIVATE: &str = "_pooltrack";

/// Where a batch's files of `round` go in `kind`'s table, relative to the store root:
/// the Parquet file's stem (`collections/R1/b000001`) and the sidecars' stem
/// (`collections/_pooltrack/R1/b000001`).
pub(crate) fn segment_stems(kind: BatchKind, round: Option<&str>, batch: u32) -> (String, String) {
    let table = kind.as_str();
    match round {
        Some(r) => (
            format!("{table}/{r}/b{batch:06}"),
            format!("{table}/{PRIVATE}/{r}/b{batch:06}"),
        ),
        None => (
            format!("{table}/b{batch:06}"),
            format!("{table}/{PRIVATE}/b{batch:06}"),
        ),
    }
}

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

/// Where a batch's segment files go: the Parquet file in its table's folder, the
/// sidecar indexes in the table's private folder (see [`super::tables`]).
pub(crate) struct Stems {
    /// `collections/R1/b000001`: add `.parquet`.
    pub data: PathBuf,
    /// `collections/_pooltrack/R1/b000001`: add `.tubes` or `.persons`.
    pub private: PathBuf,
}

impl Stems {
    /// The stems of batch `batch`'s files of `round` (none for the population) in
    /// `kind`'s table under `root`, their folders created.
    pub(crate) fn create(
        root: &Path,
        kind: BatchKind,
        round: Option<&str>,
        batch: u32,
    ) -> Result<Stems> {
        let (data, private) = segment_stems(kind, round, batch);
        let stems = Stems {
            data: root.join(data),
            private: root.join(private),
        };
        for s in [&stems.data, &stems.private] {
            if let Some(dir) = s.parent() {
                fsutil::create_dir_all(dir)?;
            }
        }
        Ok(stems)
    }

    /// Fsyncs the folders that name the files, before the commit that names them.
    pub(crate) fn sync(&self) -> Result<()> {
        for s in [&self.data, &self.private] {
            if let Some(dir) = s.parent() {
                fsutil::sync_dir(dir)?;
            }
        }
        Ok(())
    }
}

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

fn too_big(path: &Path) -> Error {
    Error::io(
        path,
        io::Error::other("a segment may hold at most 4,294,967,295 rows"),
    )
}
