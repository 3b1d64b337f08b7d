//! pooltrack: a high-throughput pooled PCR sample tracker.
//!
//! The architecture follows the data: [`ingest`] reads batch files of collections and
//! results → [`store`] keeps them durably as Parquet segments under a manifest →
//! [`tracker`] loads a round and decides every person's status (Dorfman pool
//! deconvolution) → [`worklist`] and [`report`] turn statuses into the lists a lab acts
//! on; [`coverage`] compares a round with the population register; [`round_report`]
//! gathers a round's figures into one HTML page and JSON. [`synth`] makes synthetic
//! city rounds for tests, the demo and benchmarks.

pub mod column;
pub mod coverage;
pub mod error;
pub mod fasthash;
pub mod health_code;
pub mod html;
pub mod ingest;
pub mod model;
pub mod output;
pub mod planner;
pub mod privacy;
pub mod progress;
pub mod reasons;
pub mod report;
pub mod review;
pub mod round_report;
pub mod rows;
pub mod store;
pub mod synth;
pub mod text;
pub mod time;
pub mod tracker;
pub mod turnaround;
pub mod worklist;

pub use error::{Error, Result};
