//! The round report's chain-of-custody part: what `pooltrack custody` finds, as of the
//! report's time, in the JSON and on the page.

use std::fmt::Write as _;

use serde::Serialize;

use super::Capped;
use crate::Result;
use crate::custody::{self, Counts, Finding, KINDS, Limits, Transport};
use crate::html::escape;
use crate::planner::numbers::thousands;
use crate::store::Store;
use crate::time::Millis;
use crate::tracker::Statuses;

/// The chain of custody of the round (see [`crate::custody`]).
#[derive(Debug, Clone, Serialize)]
pub struct CustodySection {
    /// The limits applied (`[custody]` in `STORE/pooltrack.toml`).
    pub limits: Limits,
    /// Custody rows of the round in the store (box manifests and receipt scans).
    pub custody_rows: u64,
    /// Tubes collected, boxed, received.
    pub tubes: u64,
    /// Of them, in a box.
    pub boxed_tubes: u64,
    /// Of them, received.
    pub received_tubes: u64,
    /// Boxes named and received.
    pub boxes: u64,
    /// Of them, received.
    pub received_boxes: u64,
    /// Findings by kind.
    pub counts: Counts,
    /// Transport time of the received boxes.
    pub transport: Transport,
    /// The findings, by kind.
    pub findings: Capped<Finding>,
}

impl CustodySection {
    /// Measures the decided round as of `as_of`.
    pub fn compute(store: &Store, statuses: &Statuses, as_of: Millis) -> Result<CustodySection> {
        let configured = store.config()?.custody;
        let limits = Limits {
            receipt_hours: configured.receipt_hours,
            specimen_limit_hours: configured.specimen_limit_hours,
        };
        let rows = crate::store::custody::rows(store, &statuses.name)?;
        let c = custody::Custody::compute(store, statuses, &rows, limits, as_of)?;
        Ok(CustodySection {
            limits: c.limits,
            custody_rows: c.custody_rows,
            tubes: c.tubes,
            boxed_tubes: c.boxed_tubes,
            received_tubes: c.received_tubes,
            boxes: c.boxes,
            received_boxes: c.received_boxes,
            counts: c.counts,
            transport: c.transport,
            findings: Capped::of(c.findings),
        })
    }
}

fn cell(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        escape(s)
    }
}

/// Draws the part.
pub(super) fn render(h: &mut String, c: &CustodySection, round: &str) {
    h.push_str("<h2 id=\"custody\">Chain of custody</h2>\n");
    let _ = writeln!(
        h,
        "<p>{} of {} tubes received; {} in boxes; {} of {} boxes received; {} custody rows \
         (box manifests and receipt scans). Limits: received within {} h of collection, \
         tested within {} h.</p>",
        thousands(c.received_tubes),
        thousands(c.tubes),
        thousands(c.boxed_tubes),
        thousands(c.received_boxes),
        thousands(c.boxes),
        thousands(c.custody_rows),
        c.limits.receipt_hours,
        c.limits.specimen_limit_hours
    );
    let t = &c.transport;
    if t.boxes > 0 {
        let m = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |m| format!("{m:.0}"));
        let _ = writeln!(
            h,
            "<p id=\"custody-transport\">Transport, sealing to receipt: {} boxes, median {} min, \
             p90 {} min, longest {} min.</p>",
            thousands(t.boxes),
            m(t.median_minutes),
            m(t.p90_minutes),
            m(t.max_minutes)
        );
    }
    if c.findings.total == 0 {
        h.push_str("<p id=\"custody-clean\">Nothing wrong in the chain.</p>\n");
        return;
    }
    h.push_str("<table id=\"custody-counts\"><tr><th>finding</th><th>count</th></tr>\n");
    let counts = &c.counts;
    for (kind, n) in KINDS.iter().zip([
        counts.box_not_received,
        counts.not_received,
        counts.missing_from_box,
        counts.unknown_box,
        counts.unknown_tube,
        counts.received_again,
        counts.past_limit,
    ]) {
        if n > 0 {
            let _ = writeln!(h, "<tr><td>{kind}</td><td>{}</td></tr>", thousands(n));
        }
    }
    h.push_str("</table>\n");
    if counts.resample_persons > 0 {
        let _ = writeln!(
            h,
            "<p class=\"warn\">{} persons need a resample: their tubes were tested past the \
             {} h specimen limit, so those results do not count (the statuses and worklists \
             read them so).</p>",
            thousands(counts.resample_persons),
            c.limits.specimen_limit_hours
        );
    }
    h.push_str(
        "<table id=\"custody-findings\"><tr><th>finding</th><th>box</th><th>tube</th>\
         <th>site</th><th>lab</th><th>hours</th><th>what happened</th></tr>\n",
    );
    for f in &c.findings.first {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td>\
             <td><span class=\"text\">{}</span></td></tr>",
            f.kind,
            cell(&f.box_id),
            cell(&f.tube),
            cell(&f.site),
            cell(&f.lab),
            f.hours,
            escape(&f.detail)
        );
    }
    h.push_str("</table>\n");
    if c.findings.is_cut() {
        let _ = writeln!(
            h,
            "<p class=\"note\">The first {} of {}; the whole list: <code>pooltrack custody \
             --round {} --out custody.csv</code>.</p>",
            thousands(c.findings.first.len() as u64),
            thousands(c.findings.total),
            escape(round)
        );
    }
}
