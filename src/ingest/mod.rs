//! Ingest: reading batch files and turning them into committed store batches.
//!
//! [`table`] opens any accepted file form, [`collections`], [`results`] and
//! [`population`] check each row, and [`batch`] runs the checks across rows and against the store, then commits.

pub mod batch;
pub mod collections;
pub mod population;
pub mod reject;
pub mod results;
mod row;
pub mod table;

pub use batch::{
    IngestOptions, IngestReport, ingest_collections, ingest_population, ingest_results,
};
pub use table::{ReadOptions, TextEncoding};
