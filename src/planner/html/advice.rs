//! The pool design section: per zone, why its scheme was recommended — a chart of
//! every scheme's tests per person against its sensitivity, with the floor drawn, and
//! the table of every figure beside it.
//!
//! `{prefix}-advice` is the section, `{prefix}-advice-chart-{i}` the chart of the
//! `i`-th zone (from 1); each scheme is a `<circle class="scheme …">` with the
//! scheme's standing as a class (`recommended`, `under_floor`, `fails_deadline`,
//! `more_tests`), and each table row carries `data-scheme` and the same class.

use std::fmt::Write as _;

use crate::html::{escape, nice_ceiling};
use crate::planner::advisor::{Advice, Standing, ZoneAdvice};
use crate::planner::numbers::{thousands, thousands_f};

const W: f64 = 960.0;
const H: f64 = 300.0;
const ML: f64 = 96.0;
const MR: f64 = 24.0;
const MT: f64 = 40.0;
const MB: f64 = 52.0;

fn standing_class(s: Standing) -> &'static str {
    match s {
        Standing::Recommended => "recommended",
        Standing::UnderFloor => "under_floor",
        Standing::FailsDeadline => "fails_deadline",
        Standing::MoreTests => "more_tests",
    }
}

pub(super) const STYLE: &str = "
.scheme{stroke:#fff;stroke-width:1.5}.scheme.more_tests{fill:#8a94a6}.scheme.recommended{fill:#2e9d52}
.scheme.under_floor{fill:#d9480f}.scheme.fails_deadline{fill:#c92a2a;fill-opacity:.35;stroke:#c92a2a}
.floor-line{stroke:#7b3fb8;stroke-width:1.6;stroke-dasharray:7 5}
table.advice{font-size:.78em}table.advice th{white-space:normal;vertical-align:bottom}
table.advice td{padding:3px 5px}table.advice tr.recommended td{background:#eaf6ed}
table.advice td.why{text-align:left;white-space:normal;min-width:160px;color:#3b4452}
";

/// Writes the section for `advice`, its ids starting with `prefix`.
pub(super) fn section(h: &mut String, a: &Advice, prefix: &str, title: &str) {
    let _ = writeln!(
        h,
        "<h2 id=\"{prefix}-advice\">{}</h2>\n<p>For each zone, every scheme of validated pool sizes: single tubes, two stages (a positive pool's people swabbed again into single tubes) and three stages (into smaller pools first). <strong>Recommended</strong>: the fewest tests per person of the schemes that find at least <strong>{:.1} %</strong> of the infected and with which the round finishes within {} h (the labs finish {} tubes), the other zones on their recommended schemes.{}</p>",
        escape(title),
        a.sensitivity_floor * 100.0,
        a.deadline_hours,
        thousands(a.within_deadline),
        a.stage_hours.map_or_else(String::new, |s| format!(
            " A stage takes {s:.2} h in the lab (an extraction and a PCR run), {} h between stages.",
            a.recall_hours
        ))
    );
    if a.perfect_test {
        h.push_str("<p class=\"warn\">The plan states no <code>[assay]</code>, so the test is taken as perfect: every scheme finds every infected person, and the schemes differ in tests and hours only. Give the kit's sensitivity and specificity in <code>[assay]</code>.</p>\n");
    } else {
        h.push_str("<table><tr><th>tube of</th><th>sensitivity</th><th>specificity</th><th>sensitivity from</th></tr>\n");
        for x in &a.accuracy {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{:.2} %</td><td>{:.3} %</td><td>{}</td></tr>",
                x.tube_size,
                x.sensitivity * 100.0,
                x.specificity * 100.0,
                escape(&x.source)
            );
        }
        h.push_str("</table>\n");
    }
    for (i, z) in a.zones.iter().enumerate() {
        zone(h, z, a.sensitivity_floor, prefix, i + 1);
    }
    let g = &a.together;
    let _ = writeln!(
        h,
        "<p id=\"{prefix}-advice-together\">With every zone on its recommendation a round has <strong>{}</strong> tubes (the plan's: {}); the labs {} ({}); reagent for {:.2} rounds, {:.2} of them on hand ({}).</p>",
        thousands(g.round_tubes),
        thousands(g.planned_tubes),
        if g.capacity_pass {
            "finish it within the deadline"
        } else {
            "do <strong>not</strong> finish it within the deadline"
        },
        g.hours_needed
            .map_or_else(|| "never".to_owned(), |x| format!("{x:.2} h")),
        g.rounds_total,
        g.rounds_physical,
        if g.reserve_pass {
            "the reserve rule is met"
        } else {
            "<strong>short of the reserve rule</strong>"
        }
    );
}

fn zone(h: &mut String, z: &ZoneAdvice, floor: f64, prefix: &str, n: usize) {
    let _ = writeln!(
        h,
        "<h3 id=\"{prefix}-advice-zone-{n}\">{}: {}</h3>\n<p class=\"sub\">{} people, prevalence {:.3} %, sampled {} in the plan.</p>\n<p class=\"why\">{}</p>",
        escape(&z.zone),
        z.recommended.as_ref().map_or_else(
            || "no scheme recommended".to_owned(),
            |r| format!("recommended <strong>{}</strong>", escape(r))
        ),
        thousands(z.people),
        z.prevalence * 100.0,
        escape(&z.now),
        escape(&z.why)
    );
    chart(h, z, floor, prefix, n);
    let _ = writeln!(
        h,
        "<table class=\"advice\" data-zone=\"{}\"><tr><th>scheme</th><th>tests / person</th><th>stages</th><th>hours (all stages)</th><th>sensitivity</th><th>specificity</th><th>missed / M</th><th>false + / M</th><th>round tubes</th><th>deadline</th><th>reagent rounds</th><th>why</th></tr>",
        escape(&z.zone)
    );
    for o in &z.options {
        let hours = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"));
        let _ = writeln!(
            h,
            "<tr class=\"{}\" data-scheme=\"{}\"><td>{}{}</td><td>{:.4}</td><td>{:.2}</td><td>{} ({})</td><td>{:.2} %</td><td>{:.3} %</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td class=\"why\"><strong>{}</strong>: {}</td></tr>",
            standing_class(o.standing),
            escape(&o.scheme),
            escape(&o.scheme),
            if o.now { " (now)" } else { "" },
            o.tests_per_person,
            o.stages_per_person,
            hours(o.hours_to_result),
            hours(o.hours_to_last_result),
            o.sensitivity * 100.0,
            o.specificity * 100.0,
            thousands_f(o.missed_per_million),
            thousands_f(o.false_positives_per_million),
            thousands(o.round_tubes),
            if o.capacity_pass {
                "<span class=\"badge pass\">PASS</span>"
            } else {
                "<span class=\"badge fail\">FAIL</span>"
            },
            o.rounds_total,
            o.standing.as_str(),
            escape(&o.why)
        );
    }
    h.push_str("</table>\n");
}

/// Tests per person (x) against sensitivity (y), one dot per scheme, the floor as a
/// dashed line: the recommended scheme is the leftmost green dot above the line.
fn chart(h: &mut String, z: &ZoneAdvice, floor: f64, prefix: &str, n: usize) {
    let xmax = nice_ceiling(
        z.options
            .iter()
            .map(|o| o.tests_per_person)
            .fold(0.0, f64::max)
            * 1.08,
    );
    let lowest = z
        .options
        .iter()
        .map(|o| o.sensitivity)
        .fold(floor, f64::min);
    // Five gridlines down from 100 % in a round step that reaches below everything shown.
    let step = [0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2]
        .into_iter()
        .find(|s| 1.0 - 5.0 * s <= lowest - 0.005)
        .unwrap_or(0.2);
    let ymin = 1.0 - 5.0 * step;
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let x = |v: f64| ML + v.clamp(0.0, xmax) / xmax * pw;
    let y = |v: f64| MT + ph - (v.clamp(ymin, 1.0) - ymin) / (1.0 - ymin).max(1e-9) * ph;
    let _ = writeln!(
        h,
        "<svg id=\"{prefix}-advice-chart-{n}\" class=\"chart advice\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"Tests per person against sensitivity, each scheme for {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(&z.zone)
    );
    for i in 0..=5 {
        let v = ymin + (1.0 - ymin) * f64::from(i) / 5.0;
        let yy = y(v);
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{ML}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.1} %</text>",
            W - MR,
            ML - 8.0,
            yy + 4.0,
            v * 100.0
        );
        let xv = xmax * f64::from(i) / 5.0;
        let xx = x(xv);
        let _ = writeln!(
            h,
            "<line class=\"axis\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{xv:.2}</text>",
            MT + ph,
            MT + ph + 5.0,
            MT + ph + 19.0
        );
    }
    let fy = y(floor);
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{ML}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{ML}\" y1=\"{MT}\" x2=\"{ML}\" y2=\"{:.1}\"/>\n<line id=\"{prefix}-advice-floor-{n}\" class=\"floor-line\" x1=\"{ML}\" y1=\"{fy:.1}\" x2=\"{:.1}\" y2=\"{fy:.1}\"><title>sensitivity floor {:.1} %</title></line><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">floor {:.1} %</text>",
        MT + ph,
        W - MR,
        MT + ph,
        MT + ph,
        W - MR,
        floor * 100.0,
        W - MR - 4.0,
        fy - 5.0,
        floor * 100.0
    );
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">expected tests per person</text><text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">sensitivity</text>",
        ML + pw / 2.0,
        H - 10.0,
        MT + ph / 2.0,
        MT + ph / 2.0
    );
    for (i, o) in z.options.iter().enumerate() {
        let (cx, cy) = (x(o.tests_per_person), y(o.sensitivity));
        // Labels right of the dot, alternately above and below, so that schemes close
        // together stay legible.
        let dy = if i % 2 == 0 { -6.0 } else { 14.0 };
        let _ = writeln!(
            h,
            "<circle class=\"scheme {}\" data-scheme=\"{}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{}\"><title>{}: {:.4} tests a person, sensitivity {:.2} %, {}</title></circle><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            standing_class(o.standing),
            escape(&o.scheme),
            if o.standing == Standing::Recommended {
                7.0
            } else {
                5.0
            },
            escape(&o.scheme),
            o.tests_per_person,
            o.sensitivity * 100.0,
            o.standing.as_str(),
            cx + 8.0,
            cy + dy,
            escape(&o.scheme)
        );
    }
    let _ = writeln!(
        h,
        "<g class=\"legend\"><circle cx=\"{:.1}\" cy=\"16\" r=\"6\" class=\"scheme recommended\"/><text x=\"{:.1}\" y=\"20\">recommended</text><circle cx=\"{:.1}\" cy=\"16\" r=\"5\" class=\"scheme more_tests\"/><text x=\"{:.1}\" y=\"20\">more tests</text><circle cx=\"{:.1}\" cy=\"16\" r=\"5\" class=\"scheme under_floor\"/><text x=\"{:.1}\" y=\"20\">under the floor</text><circle cx=\"{:.1}\" cy=\"16\" r=\"5\" class=\"scheme fails_deadline\"/><text x=\"{:.1}\" y=\"20\">round too late</text></g>",
        ML + 6.0,
        ML + 16.0,
        ML + 136.0,
        ML + 146.0,
        ML + 246.0,
        ML + 256.0,
        ML + 386.0,
        ML + 396.0
    );
    h.push_str("</svg>\n");
}
