//! The round report's lab audit: each lab against the others and the rules
//! ([`crate::audit`]) with the store's `[audit]` settings; the capacity check runs when
//! they name a plan.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Capped, RoundReport};
use crate::Result;
use crate::audit::{Audit, AuditOptions, Finding, FindingKind, LabAudit, StrataBy};
use crate::html::escape;
use crate::store::Store;
use crate::tracker::Statuses;

/// The lab audit part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSection {
    /// How the positivity test's strata were made.
    pub strata: StrataBy,
    /// Strata shared by two or more labs.
    pub shared_strata: u64,
    /// The significance level (after Holm's correction).
    pub alpha: f64,
    /// The recall limit, hours.
    pub recall_hours: f64,
    /// The capacity check's window, minutes (with a plan in `[audit]`).
    pub window_minutes: Option<u32>,
    /// Each lab's counts and tests.
    pub labs: Vec<LabAudit>,
    /// Findings by kind.
    pub counts: Vec<(FindingKind, u64)>,
    /// The findings.
    pub findings: Capped<Finding>,
}

impl AuditSection {
    /// Audits the round with the store's settings (`[audit]` in `pooltrack.toml`).
    /// The audit of the round, given each collection row's district when the report
    /// has joined the register.
    pub(super) fn build(
        store: &Store,
        statuses: &Statuses,
        districts: Option<&[u32]>,
    ) -> Result<AuditSection> {
        let options = AuditOptions::of_store(store)?;
        let a = Audit::compute_placed(store, statuses, &options, districts)?;
        Ok(AuditSection {
            strata: a.strata,
            shared_strata: a.shared_strata,
            alpha: a.alpha,
            recall_hours: a.recall_hours,
            window_minutes: a.window_minutes,
            labs: a.labs,
            counts: a.counts,
            findings: Capped::of(a.findings),
        })
    }
}

fn cell(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_owned(), f)
}

/// The part's HTML: the labs' table, then the findings.
pub(super) fn render(h: &mut String, r: &RoundReport) {
    let a = &r.audit;
    let counts: Vec<String> = a
        .counts
        .iter()
        .map(|(k, n)| format!("{}: {n}", k.as_str()))
        .collect();
    let _ = writeln!(
        h,
        "<h2 id=\"audit\">Lab audit</h2>\n<p>Each lab's positivity among first-stage pools against the other labs' in the same {} and pool size (Cochran–Mantel–Haenszel, two-sided, Holm-corrected over the labs; the most significant lab below α = {} is flagged and set aside, the others tested again without it), its discordant pools, results reported before receipt or before the last swab, pools of more than 20 persons, and positive pools whose first retest swab came more than {} h after the report. Findings: {}. Reports beyond the labs' instruments: <code>pooltrack audit --round {} --plan PLAN</code>.</p>",
        a.strata.as_str(),
        a.alpha,
        a.recall_hours,
        if counts.is_empty() {
            "none".to_owned()
        } else {
            escape(&counts.join(", "))
        },
        escape(&r.round)
    );
    h.push_str("<table><tr><th>lab</th><th>pools</th><th>positive</th><th>positivity</th><th>expected</th><th>χ²</th><th>p</th><th>p (Holm)</th><th>flag</th><th>discordant</th><th>before receipt</th><th>before swab</th><th>over 20</th><th>late recalls</th><th>peak / capacity</th></tr>\n");
    for l in &a.labs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.lab),
            l.pools,
            l.positive_pools,
            cell(l.positivity, |v| format!("{:.2} %", 100.0 * v)),
            cell(l.expected_positive_pools, |v| format!("{v:.1}")),
            cell(l.chi_square, |v| format!("{v:.2}")),
            cell(l.p_value, |v| format!("{v:.2e}")),
            cell(l.p_adjusted, |v| format!("{v:.2e}")),
            if l.positivity_flag.is_empty() {
                "-".to_owned()
            } else {
                format!("<b class=\"red\">{}</b>", escape(&l.positivity_flag))
            },
            l.discordant_pools,
            l.positive_pools_all,
            l.reported_before_receipt,
            l.reported_before_collection,
            l.pools_over_20,
            l.late_recalls,
            match (l.peak_in_window, l.capacity_in_window) {
                (Some(p), Some(c)) => format!("{p} / {c}"),
                (Some(p), None) => format!("{p} / (not in the plan)"),
                _ => "-".to_owned(),
            }
        );
    }
    h.push_str("</table>\n");
    if a.findings.first.is_empty() {
        return;
    }
    h.push_str(
        "<table><tr><th>finding</th><th>lab</th><th>tube</th><th>at</th><th>detail</th></tr>\n",
    );
    for f in &a.findings.first {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"text\">{}</span></td></tr>",
            f.kind.as_str(),
            escape(&f.lab),
            if f.tube.is_empty() {
                "-".to_owned()
            } else {
                escape(&f.tube)
            },
            if f.at.is_empty() {
                "-".to_owned()
            } else {
                escape(&f.at)
            },
            escape(&f.detail)
        );
    }
    h.push_str("</table>\n");
    if a.findings.is_cut() {
        let _ = writeln!(
            h,
            "<p class=\"note\">The first {} of {} findings; all of them: <code>pooltrack audit --round {} --rows findings --out findings.csv</code>.</p>",
            a.findings.first.len(),
            a.findings.total,
            escape(&r.round)
        );
    }
}
