//! pooltrack: a high-throughput pooled PCR sample tracker.
//!
//! The modules follow the data, and imports point one way, down this list (a test,
//! `cargo test --test cli layout`, holds the code to it):
//!
//! - [`reasons`], [`error`], [`time`], [`model`], [`column`](mod@column), [`text`], [`progress`]:
//!   the vocabulary: errors, times, ids and codes, compact columns; [`floor`] beside
//!   them: the least any CSV reader does, which `pooltrack bench` measures against;
//! - [`rows`]: what a batch is, column by column;
//! - [`store`]: Parquet segments, sorted sidecar indexes and the manifest, written
//!   atomically one batch at a time and read back;
//! - [`ingest`]: batch files of collections, results and the population register →
//!   checked rows → one committed store batch; [`synth`] beside it makes synthetic city
//!   rounds for tests, the demo and benchmarks;
//! - [`tracker`]: a round's tubes, effective results and every person's status (Dorfman
//!   pool deconvolution);
//! - [`output`]: any list as CSV, JSON or Parquet;
//! - [`roster`] and [`dilution`]: every person of a round in order; what pooling costs,
//!   measured from the round's Ct values;
//! - [`worklist`], [`coverage`], [`health_code`], [`report`], [`turnaround`],
//!   [`privacy`], [`prevalence`], [`custody`], [`review`], [`round_report`]: the lists, exports and
//!   reports a lab and an office act on; [`planner`] beside them answers capacity and
//!   reagent questions;
//! - [`audit`]: each lab against the others and against its instruments, above the
//!   review whose discordant pools it counts and below the round report that shows it.
//!
//! A round from files to a recall list:
//!
//! ```
//! use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
//! use pooltrack::model::Status;
//! use pooltrack::output::{Format, write_text};
//! use pooltrack::store::Store;
//! use pooltrack::synth::{GenConfig, generate};
//! use pooltrack::tracker::Decided;
//! use pooltrack::worklist::{Worklist, build};
//!
//! let dir = tempfile::tempdir()?;
//! // A city of 20,000 people, one in a hundred infected, pooled ten to a tube.
//! let cfg = GenConfig { persons: 20_000, prevalence: 0.01, ..GenConfig::default() };
//! let city = generate(&cfg, &dir.path().join("city"), None)?;
//!
//! // Two batches: the swabs, then the lab's results. Each is one atomic commit.
//! let mut store = Store::open_writer(&dir.path().join("store"))?;
//! let opts = IngestOptions::default();
//! let files = |name: &str| vec![dir.path().join("city").join(name)];
//! ingest_collections(&mut store, &files("collections.csv"), "2022-04-02", &opts, None)?;
//! ingest_results(&mut store, &files("results.csv"), &opts, None)?;
//!
//! // Every person's status, decided from the store's indexes.
//! let round = Decided::load(&store, "2022-04-02")?;
//! let counts = round.counts();
//! assert_eq!(counts.persons, city.persons);
//! let recall = counts.by_status.iter().find(|(s, _)| *s == Status::Recall);
//! assert_eq!(recall.map(|(_, n)| *n), Some(city.recalled_persons));
//!
//! // The members of positive pools, to re-swab in single tubes, as CSV.
//! let list = build(&store, &round, Worklist::Recall)?;
//! let mut csv = Vec::new();
//! write_text(&list, Format::Csv, &mut csv)?;
//! assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), list.len() + 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod audit;
pub mod column;
pub mod coverage;
pub mod custody;
pub mod dilution;
pub mod error;
pub mod fasthash;
pub mod floor;
pub mod health_code;
pub mod html;
pub mod ingest;
pub mod model;
pub mod output;
pub mod person_key;
pub mod planner;
pub mod prevalence;
pub mod privacy;
pub mod progress;
pub mod reasons;
pub mod report;
pub mod review;
pub mod roster;
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
