//! Ingest: reading batch files and turning them into committed store batches.
//!
//! [`table`] opens any accepted file form, [`collections`], [`results`] and
//! [`population`] check each row, and [`batch`] drives an ingest: it reads the files,
//! has the batch kind's planner check the rows across each other and against the
//! store, then commits.

pub mod batch;
pub mod collections;
pub mod custody;
mod plan;
pub mod population;
pub mod reject;
pub mod results;
mod row;
pub mod table;

pub use batch::{
    FileReport, IngestOptions, IngestReport, REASON_EXAMPLES, ingest_collections,
    ingest_population, ingest_results,
};
pub use custody::{ingest_boxes, ingest_receipts};
pub use table::{ReadOptions, TextEncoding};
