//! The tracker: a round's tubes, their effective results, and every person's status.
//!
//! [`Decided::load`] decides the whole round from the store's sidecar indexes, without
//! decoding any text and without an array of the round's rows:
//! - tubes are numbered by merging the segments' sorted tube indexes, so a tube whose
//!   members came in several batches is one tube;
//! - each tube's **effective result** comes from the sorted result indexes: its results
//!   ordered by `reported_at`, the latest wins, except that a positive is never cleared
//!   by a later non-positive result (the tube stays positive and is flagged for review);
//!   results on a failed plate ([`plate_qc`]) and results reported past the specimen
//!   limit after the tube's first swab ([`SpecimenLimit`], read once here for every
//!   report) do not count, and a tube with only the latter needs a resample;
//! - persons with several rows are found by merging the segments' sorted person indexes
//!   (128-bit hashes of the ids), in parallel over ranges of the hash space, and
//!   decided by the rules in [`rules`] from all their tubes (their rows' times are the
//!   only Parquet read); everyone else has the status their one tube gives.
//!
//! [`Statuses::load`] adds the tube and collection time of every row and the list of
//! every person, for reports that walk all rows; [`Round::load`] adds the text columns
//! (ids, sites, labs, sources) for reports that show every row; worklists fetch text
//! only for the rows they list.
//!
//! Each level holds the one below it and derefs to it ([`Round`] to [`Statuses`] to
//! [`Decided`]) because a level only adds columns: the lighter level's fields and
//! methods mean the same on a heavier one, so code written for a lighter level takes a
//! heavier one unchanged, and each report loads the lightest level it needs (the status
//! report and worklists a [`Decided`], review and turnaround a [`Statuses`], exports
//! and health codes a [`Round`]) without a copy of each reader per level.
//!
//! [`Decided::stages`] tells first-stage tubes from the retests and resamples that
//! follow them, for estimates that must count each person once.
//!
//! Rows are numbered across a round's segments in manifest order: collection row `r`
//! is the `r`th row of the round's collection Parquet files read in that order, and
//! likewise for results.

pub mod limit;
pub mod plate_qc;
pub mod rules;
pub mod sql;

mod decided;
mod effective;
mod persons;
mod round;
mod stages;
mod statuses;
mod tubes;

pub use decided::{Barcodes, Counts, Decided, Listed, StatusRows};
pub use effective::{Reading, effective, read_results};
pub use limit::{PastLimit, SpecimenLimit};
pub use persons::PersonStatus;
pub use round::Round;
pub use stages::Stages;
pub use statuses::{RoundRows, Statuses, Swabs};
pub use tubes::{ResultFacts, Tubes};

pub use crate::store::read::{Collections, Results};

/// Marks a row or tube with nothing to point to.
pub const NONE: u32 = u32::MAX;
