//! Planning a batch: the checks that need more than one row, against the batch itself
//! and against the store's sidecar indexes (never by re-reading the round), and what
//! the batch will commit. One planner per batch kind:
//! - collections: a tube barcode belongs to one round; a tube keeps the mode and
//!   capacity it was first collected with; the same (tube, person) scanned twice is one
//!   membership (a warning); a pool with more members than its capacity is kept and
//!   flagged (a warning);
//! - results: a result must name a collected tube; the same result sent twice is kept
//!   once; a later non-positive result does not clear a positive tube (a warning; the
//!   tracker keeps the tube positive); a plate's controls go with its samples and can
//!   fail the plate;
//! - population: a person registered twice in one batch: the later line wins (a
//!   warning).

mod collections;
mod population;
mod results;

pub(crate) use collections::{StoredBoxes, plan_collections, stored_boxes};
pub(crate) use population::plan_population;
pub(crate) use results::plan_results;

use super::reject::{Rejects, Severity, Where};
use crate::store::segment::SegmentPlan;

/// What a batch will commit: per round, the rows to write.
pub(crate) struct Plan {
    pub(crate) segments: Vec<SegmentPlan>,
    pub(crate) overfull: u64,
    pub(crate) positives_kept: u64,
    /// Collections with a `box` column: the committed rows that record a tube's box in
    /// the round's box manifest (one a tube whose box is new to the store), ascending.
    pub(crate) boxed: Vec<u32>,
}

/// Records a problem found across rows: it has no single offending field value.
fn flag(
    rejects: &mut Rejects,
    at: &Where<'_>,
    severity: Severity,
    column: &'static str,
    reason: String,
) {
    rejects.push(at, severity, column, reason, b"");
}
