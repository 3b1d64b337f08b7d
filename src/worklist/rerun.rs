//! The rerun worklist: tubes whose only results came from plates whose controls failed
//! ([`plate_qc`] finds them), as the lab reads the list.

use serde::Serialize;

use crate::Result;
use crate::output::ListRow;
use crate::store::Store;
use crate::time;
use crate::tracker::Decided;
use crate::tracker::plate_qc;

/// A tube the lab must run again: its only results came from failed plates.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RerunRow {
    /// Tube barcode.
    pub tube: String,
    /// `single` or `pool`.
    pub mode: &'static str,
    /// Persons in it (all `pending` until the rerun's result).
    pub members: u32,
    /// The lab of the void result.
    pub lab: String,
    /// The failed plate.
    pub plate: String,
    /// The tube's well on it.
    pub well: String,
    /// When the void result was reported.
    pub reported_at: String,
    /// Why the plate failed.
    pub reason: String,
}

impl ListRow for RerunRow {
    const HEADER: &'static [&'static str] = &[
        "tube",
        "mode",
        "members",
        "lab",
        "plate",
        "well",
        "reported_at",
        "reason",
    ];
}

/// The rerun worklist: every tube with a void result and no result that counts, the
/// longest-waiting first.
pub fn reruns(store: &Store, round: &Decided) -> Result<Vec<RerunRow>> {
    let zone = round.zone;
    Ok(plate_qc::reruns(store, round)?
        .into_iter()
        .map(|r| RerunRow {
            tube: r.tube,
            mode: r.mode.as_str(),
            members: r.members,
            lab: r.lab,
            plate: r.plate,
            well: r.well,
            reported_at: time::format(r.reported_at, zone),
            reason: r.reason,
        })
        .collect())
}
