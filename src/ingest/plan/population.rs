//! Planning a population batch: every row is committed; repeats within the batch are
//! found and flagged.

use rayon::prelude::*;

use super::{Plan, flag};
use crate::ingest::reject::{Rejects, Severity, Where};
use crate::rows::PopulationRows;
use crate::store::index::person_hash;
use crate::store::segment::SegmentPlan;

/// Every row is committed, in input order; a person registered again in the same
/// batch is a warning on the later line, which wins. Repeats are found by sorting the
/// rows' 128-bit person hashes, not by a map of 25 million ids.
pub(crate) fn plan_population(
    rows: &PopulationRows,
    labels: &[String],
    rejects: &mut Rejects,
) -> Plan {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let mut by_person: Vec<(u128, u32)> = (0..n)
        .into_par_iter()
        .map(|i| (person_hash(rows.person.get(i as usize)), i))
        .collect();
    by_person.par_sort_unstable();
    let file = |i: usize| {
        labels
            .get(usize::from(rows.source.file(i)))
            .map_or("", String::as_str)
    };
    for pair in by_person.windows(2) {
        let ((h0, earlier), (h1, later)) = (pair[0], pair[1]);
        if h0 != h1 {
            continue;
        }
        let (earlier, later) = (earlier as usize, later as usize);
        let person = rows.person.get(later);
        let why = format!(
            "{person} is registered again in this batch (earlier at {} line {}); the later line's stated fields are kept, blank ones keep the earlier values",
            file(earlier),
            rows.source.line(earlier)
        );
        let at = Where::row((labels, &rows.source), later, "", person);
        flag(rejects, &at, Severity::Warning, "person", why);
    }
    Plan {
        segments: vec![SegmentPlan {
            order: (0..n).collect(),
            ..SegmentPlan::new("")
        }],
        overfull: 0,
        positives_kept: 0,
        boxed: Vec::new(),
    }
}
