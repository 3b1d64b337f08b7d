//! The HTML report: one self-contained `index.html` — inline CSS and SVG, no script, no
//! font or image from anywhere — so it opens from a USB stick in an office without a
//! network, and prints.
//!
//! Two charts per assessment (the plan's, and the measured round's when there is one):
//!
//! - `{prefix}-stock-chart`: physical and physical + confirmed stock day by day over
//!   the projection, against the physical line (6 rounds) and the reserve line
//!   (10 rounds); one point per day per series, full-round days marked on the axis,
//!   the order-by day as a vertical line.
//! - `{prefix}-capacity-chart`: per stage, the tubes the labs finish within the
//!   deadline against the round's tubes, and the same for the labs as a whole (each
//!   lab through its slower stage).
//!
//! Every number drawn is also in a table beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::numbers::{f, short, thousands, thousands_f};
use super::projection::Projection;
use super::{Assessment, Report};
use crate::Result;
pub use crate::html::escape;
use crate::html::nice_ceiling;

/// Chart width and height, in SVG user units.
const W: f64 = 960.0;
const STOCK_H: f64 = 380.0;
const CAP_H: f64 = 340.0;
/// Plot margins: left (tick labels), right, top, bottom (axis labels).
const ML: f64 = 96.0;
const MR: f64 = 24.0;
const MT: f64 = 44.0;
const MB: f64 = 56.0;

/// Five gridlines with their value labels, from 0 to `ymax`, as both charts draw them.
fn y_grid(h: &mut String, ymax: f64, y: &dyn Fn(f64) -> f64) {
    crate::html::y_grid(h, (ML, W - MR), ymax, y, &short);
}

fn badge(pass: bool) -> &'static str {
    if pass {
        "<span class=\"badge pass\">PASS</span>"
    } else {
        "<span class=\"badge fail\">FAIL</span>"
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;margin:24px auto;max-width:1000px;color:#1d2430;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d0d7e2;padding-bottom:.2em}
.sub{color:#5a6475;margin-top:0}
.badge{display:inline-block;font-size:.75em;font-weight:700;padding:2px 8px;border-radius:4px;vertical-align:middle;margin-left:6px}
.pass{background:#dff3e4;color:#17612e}.fail{background:#fbe1e1;color:#9b1c1c}
.verdict{font-size:1.05em;padding:10px 14px;border-radius:6px}
.verdict.pass{border:1px solid #9fd4ad}.verdict.fail{border:1px solid #eaa3a3}
.warn{background:#fff6db;border:1px solid #ecd48a;padding:8px 12px;border-radius:6px}
table{border-collapse:collapse;margin:10px 0;font-size:.9em}
th,td{padding:4px 10px;border-bottom:1px solid #e3e8ef;text-align:right;white-space:nowrap}
th{background:#f3f6fa;font-weight:600}th:first-child,td:first-child{text-align:left}
.note{color:#5a6475;font-size:.9em}
svg{display:block;max-width:100%;height:auto;margin:12px 0;background:#fff;border:1px solid #e3e8ef;border-radius:6px}
svg text{font-family:inherit;font-size:12px;fill:#3b4452}
.axis{stroke:#8a94a6;stroke-width:1}.grid{stroke:#edf0f5;stroke-width:1}
.series{fill:none;stroke-width:2.2}.series.physical{stroke:#1f6fb4}.series.total{stroke:#2e9d52}
.pt-physical{fill:#1f6fb4}.pt-total{fill:#2e9d52}
.threshold{stroke-width:1.6;stroke-dasharray:7 5}.physical-line{stroke:#d9480f}.total-line{stroke:#7b3fb8}
.order-by{stroke:#c92a2a;stroke-width:1.5;stroke-dasharray:3 3}
.round-mark{fill:#8a94a6}
.bar.capacity{fill:#2b8a9e}.bar.demand{fill:#f08c28}.bar.capacity.short{fill:#c92a2a}
.legend text{font-size:12px}
";

/// Renders the whole report as one HTML page.
pub fn render(report: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let p = &report.plan;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pooltrack plan: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&p.name)
    );
    let _ = writeln!(
        h,
        "<h1>Capacity and reagent plan: {}</h1>\n<p class=\"sub\">{} people in {} zone(s), {} lab(s); round deadline {} h; projection {} days{}</p>",
        escape(&p.name),
        thousands(p.people),
        p.zones,
        p.labs,
        p.deadline_hours,
        p.horizon_days,
        p.start.map_or_else(String::new, |s| format!(" from {s}"))
    );
    let a = &report.planned;
    let _ = writeln!(
        h,
        "<p id=\"verdict\" class=\"verdict {}\">Verdict: <strong>{}</strong> — round capacity {}, sampling {}, reagent reserve {}{}</p>",
        if report.pass { "pass" } else { "fail" },
        if report.pass { "PASS" } else { "FAIL" },
        badge(a.capacity.pass),
        badge(report.sampling.pass),
        badge(a.reagents.pass),
        report
            .measured
            .as_ref()
            .map_or_else(String::new, |m| format!(
                ", measured labs {}",
                badge(m.assessment.capacity.pass)
            ))
    );
    if !report.warnings.is_empty() {
        h.push_str("<div class=\"warn\"><strong>Warnings</strong><ul>");
        for w in &report.warnings {
            let _ = write!(h, "<li>{}</li>", escape(w));
        }
        h.push_str("</ul></div>\n");
    }
    assessment_sections(&mut h, a, "plan", "", None);
    sampling_section(&mut h, report);
    if let Some(m) = &report.measured {
        let mm = &m.measured;
        let _ = writeln!(
            h,
            "<h2 id=\"measured\">Measured: round {}</h2>\n<p>{} persons in {} tubes: {} pool tubes holding {:.2} people on average, {} single tubes ({} first-stage, {} retests). Pool positivity {:.3} % ({} positive, {} inconclusive of {} with a result): implied prevalence {:.3} %.</p>",
            escape(&mm.round),
            thousands(mm.persons),
            thousands(mm.tubes),
            thousands(mm.pool_tubes),
            mm.mean_pool_fill,
            thousands(mm.single_tubes),
            thousands(mm.first_stage_single_tubes),
            thousands(mm.retest_tubes),
            mm.pool_positivity * 100.0,
            thousands(mm.positive_pools),
            thousands(mm.inconclusive_pools),
            thousands(mm.pools_with_result),
            mm.implied_prevalence * 100.0
        );
        h.push_str("<table><tr><th>lab</th><th>results</th><th>first report</th><th>last report</th><th>span h</th><th>active h</th><th>worked h</th><th>tubes / worked h</th><th>tubes / day</th></tr>\n");
        for l in &mm.labs {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                escape(&l.name),
                thousands(l.results),
                escape(&l.first_report),
                escape(&l.last_report),
                l.span_hours,
                l.active_hours,
                l.working_hours,
                l.tubes_per_hour.map_or_else(|| "-".to_owned(), thousands_f),
                l.tubes_per_day.map_or_else(|| "-".to_owned(), thousands)
            );
        }
        h.push_str("</table>\n");
        assessment_sections(
            &mut h,
            &m.assessment,
            "measured",
            "Measured: ",
            m.throughput_needed,
        );
    }
    h.push_str("<p class=\"note\">Made by <code>pooltrack plan</code>. Rules: lab capacity counted at the staffed hours (18 h) must finish a full round within the deadline (24 h); reagent for 10 rounds, at least 6 physically on hand, the rest under confirmed contracts.</p>\n</body>\n</html>\n");
    h
}

fn assessment_sections(
    h: &mut String,
    a: &Assessment,
    prefix: &str,
    label: &str,
    throughput_needed: Option<f64>,
) {
    let c = &a.capacity;
    let load = c.load_phrase();
    let spare = c.margin_phrase();
    let timing = match c.hours_needed {
        Some(x) if c.pass => format!("Counting whole runs, the last one needed ends at {x:.2} h."),
        Some(x) => format!("Counting whole runs, the round needs <strong>{x:.2} h</strong>."),
        None => "The labs never finish it.".to_owned(),
    };
    let _ = writeln!(
        h,
        "<h2 id=\"{prefix}-capacity\">{}{} {}</h2>\n<p>A round has {} first-stage tubes + {} expected retests = <strong>{}</strong> tubes. The labs finish <strong>{}</strong> within {} h ({load}{spare}){}. {timing}</p>",
        escape(label),
        if label.is_empty() {
            "Round capacity"
        } else {
            "round capacity"
        },
        badge(c.pass),
        thousands(a.demand.first_stage_tubes),
        thousands(a.demand.retests),
        thousands(a.demand.tubes),
        thousands(c.within_deadline),
        c.deadline_hours,
        c.bottleneck.map_or_else(String::new, |b| format!(
            "; bottleneck stage: <strong>{}</strong>",
            b.as_str()
        ))
    );
    capacity_chart(h, a, prefix);
    if let Some(k) = throughput_needed.filter(|_| !c.pass) {
        let _ = writeln!(
            h,
            "<p><strong>To pass</strong>, the measured labs would need {k:.2}× the throughput they showed.</p>"
        );
    }
    if let Some(fix) = &c.instruments_to_pass {
        if fix.possible {
            let stages: Vec<String> = fix
                .by_stage
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            let mut parts: Vec<String> = Vec::new();
            for x in &fix.additions {
                let item = format!("+{} {}", x.add, x.stage.as_str());
                match parts.last_mut() {
                    Some(last) if last.starts_with(&format!("{} ", escape(&x.lab))) => {
                        last.push_str(", ");
                        last.push_str(&item);
                    }
                    _ => parts.push(format!("{} {item}", escape(&x.lab))),
                }
            }
            let _ = writeln!(
                h,
                "<p><strong>To pass:</strong> add {} instrument(s) (the fewest, by a greedy search): {}.</p>",
                stages.join(" and "),
                parts.join("; ")
            );
        } else {
            h.push_str("<p><strong>No number of instruments</strong> of the kinds in the plan is enough.</p>\n");
        }
    }
    if let Some(pf) = &a.pool_fix {
        match (pf.pool_size, pf.tubes) {
            (Some(k), Some(t)) => {
                let _ = writeln!(
                    h,
                    "<p>Or pool every pooled zone {k}:1: {} tubes, done in {}.</p>",
                    thousands(t),
                    pf.hours_needed
                        .map_or_else(|| "-".to_owned(), |x| format!("{x:.2} h"))
                );
            }
            _ => h.push_str("<p>No validated pool size (5, 10, 20) would fit the round.</p>\n"),
        }
    }
    h.push_str("<table><tr><th>zone</th><th>people</th><th>sampling</th><th>prevalence</th><th>pool tubes</th><th>single tubes</th><th>positive pools</th><th>retests</th></tr>\n");
    for g in &a.demand.groups {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3} %</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&g.group.name),
            thousands(g.group.people),
            escape(&g.group.tubing.label()),
            g.group.prevalence * 100.0,
            thousands(g.pool_tubes),
            thousands(g.single_tubes),
            thousands_f(g.positive_pools),
            thousands_f(g.retests)
        );
    }
    h.push_str("</table>\n<table><tr><th>lab</th><th>staffed h</th><th>per staffed day</th><th>limited by</th></tr>\n");
    for l in &c.labs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.name),
            l.staffed_hours,
            thousands(l.per_day),
            l.bottleneck.map_or("-", |b| b.as_str())
        );
    }
    h.push_str("</table>\n");
    let r = &a.reagents;
    let _ = writeln!(
        h,
        "<h2 id=\"{prefix}-reserve\">{}{} {}</h2>\n<p>{} tests a round. Physical {} = <strong>{:.2}</strong> rounds; confirmed contracts {} = {:.2}; in all <strong>{:.2}</strong> rounds (rule: {}, of which {} physical). Unconfirmed contracts {} ({:.2} rounds) do not count.{}</p>",
        escape(label),
        if label.is_empty() {
            "Reagent reserve"
        } else {
            "reagent reserve"
        },
        badge(r.pass),
        thousands(r.tests_per_round),
        thousands(r.physical_tests),
        r.rounds_physical,
        thousands(r.confirmed_tests),
        r.rounds_confirmed,
        r.rounds_total,
        r.required_rounds,
        r.required_physical_rounds,
        thousands(r.unconfirmed_tests),
        r.rounds_unconfirmed,
        if r.shortfall_tests > 0 {
            format!(
                " <strong>Shortfall: {} tests ({} kits of {})</strong>: {} to buy physically, {} bought or under a confirmed contract.",
                thousands(r.shortfall_tests),
                thousands(r.shortfall_kits),
                r.kit_size,
                thousands(r.shortfall_physical_tests),
                thousands(r.shortfall_other_tests)
            )
        } else {
            String::new()
        }
    );
    let p = &a.projection;
    let _ = writeln!(
        h,
        "<h2 id=\"{prefix}-projection\">{}{} over {} days</h2>",
        escape(label),
        if label.is_empty() { "Stock" } else { "stock" },
        p.horizon_days
    );
    stock_chart(h, p, prefix);
    projection_notes(h, p);
}

fn day_text(day: i64, date: Option<super::calendar::Date>) -> String {
    date.map_or_else(|| format!("day {day}"), |d| format!("day {day} ({d})"))
}

fn projection_notes(h: &mut String, p: &Projection) {
    h.push_str("<ul>");
    let date_of = |d: u32| p.days.get(d as usize).and_then(|x| x.date);
    let per_round = f(p.tests_per_round.max(1));
    let line = |what: &str, level: f64, day: Option<u32>| {
        let rounds = format!(
            "{} rounds ({} tests)",
            level / per_round,
            thousands_f(level)
        );
        match day {
            Some(0) => format!("<li>{what} is <strong>already under {rounds}</strong>.</li>"),
            Some(d) => format!(
                "<li>{what} falls under {rounds} on <strong>{}</strong>.</li>",
                day_text(i64::from(d), date_of(d))
            ),
            None => format!(
                "<li>{what} stays at or above {rounds} through day {}.</li>",
                p.horizon_days
            ),
        }
    };
    h.push_str(&line(
        "Physical stock",
        p.physical_line,
        p.physical_under_day,
    ));
    h.push_str(&line(
        "Physical + confirmed stock",
        p.total_line,
        p.total_under_day,
    ));
    if let Some(o) = &p.order {
        let when = if o.late_by_days > 0 {
            "Order today".to_owned()
        } else {
            format!("Order by {}", day_text(o.order_by_day, o.order_by_date))
        };
        let _ = write!(
            h,
            "<li><strong>{when}</strong>: {} tests ({} kits): {} to buy physically + {} bought or confirmed under contract, in by {}.{}</li>",
            thousands(o.tests),
            thousands(o.kits),
            thousands(o.physical_tests),
            thousands(o.other_tests),
            day_text(i64::from(o.due_day), o.due_date),
            if o.late_by_days > 0 {
                format!(" <strong>{} day(s) late already.</strong>", o.late_by_days)
            } else {
                String::new()
            }
        );
    }
    for c in &p.consumables {
        if let (Some(d), Some(by)) = (c.runs_out_day, c.order_by_day) {
            let _ = write!(
                h,
                "<li>{} run out on {}: order {} by {}.</li>",
                c.item.replace('_', " "),
                day_text(i64::from(d), c.runs_out_date),
                thousands(c.order_quantity),
                day_text(by, c.order_by_date)
            );
        }
    }
    h.push_str("</ul>\n");
}

fn sampling_section(h: &mut String, report: &Report) {
    let s = &report.sampling;
    let _ = writeln!(
        h,
        "<h2 id=\"sampling\">Sampling {}</h2>\n<table><tr><th></th><th>needed</th><th>planned</th><th>short by</th></tr>",
        badge(s.pass)
    );
    for n in &s.needs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            n.what,
            thousands(n.needed),
            n.planned.map_or_else(|| "-".to_owned(), thousands),
            thousands(n.short_by)
        );
    }
    h.push_str("</table>\n");
}

fn stock_chart(h: &mut String, p: &Projection, prefix: &str) {
    let top = p
        .days
        .iter()
        .map(|d| d.total.max(d.physical))
        .fold(p.total_line.max(p.physical_line), f64::max);
    let ymax = nice_ceiling(top * 1.05);
    let days = f64::from(p.horizon_days.max(1));
    let pw = W - ML - MR;
    let ph = STOCK_H - MT - MB;
    let x = |d: f64| ML + d / days * pw;
    let y = |v: f64| MT + ph - (v.clamp(0.0, ymax) / ymax) * ph;
    let _ = writeln!(
        h,
        "<svg id=\"{prefix}-stock-chart\" class=\"chart stock\" viewBox=\"0 0 {W} {STOCK_H}\" width=\"{W}\" height=\"{STOCK_H}\" role=\"img\" aria-label=\"Reagent stock over the projection\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    y_grid(h, ymax, &y);
    let step = if p.horizon_days <= 14 {
        1
    } else if p.horizon_days <= 70 {
        7
    } else {
        30
    };
    for d in (0..=p.horizon_days).step_by(step) {
        let xx = x(f64::from(d));
        let label = p.days.get(d as usize).and_then(|day| day.date).map_or_else(
            || d.to_string(),
            |date| date.to_string().get(5..).unwrap_or_default().to_owned(),
        );
        let _ = writeln!(
            h,
            "<line class=\"axis\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            MT + ph,
            MT + ph + 5.0,
            MT + ph + 19.0
        );
    }
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{ML}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{ML}\" y1=\"{MT}\" x2=\"{ML}\" y2=\"{:.1}\"/>",
        MT + ph,
        W - MR,
        MT + ph,
        MT + ph
    );
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">PCR tests in stock</text>",
        ML + pw / 2.0,
        STOCK_H - 10.0,
        if p.start.is_some() {
            "date (full-round days marked ▲)"
        } else {
            "day (full-round days marked ▲)"
        },
        MT + ph / 2.0,
        MT + ph / 2.0
    );
    for &d in &p.full_round_days {
        let xx = x(f64::from(d));
        let _ = writeln!(
            h,
            "<path class=\"round-mark\" d=\"M{:.1} {:.1} l5 9 h-10 z\"><title>full round, day {d}</title></path>",
            xx,
            MT + ph + 22.0
        );
    }
    let per_round = f(p.tests_per_round.max(1));
    let physical_text = format!("{} rounds physical", p.physical_line / per_round);
    let total_text = format!("{} rounds in all", p.total_line / per_round);
    for (class, v, text) in [
        ("physical-line", p.physical_line, physical_text.as_str()),
        ("total-line", p.total_line, total_text.as_str()),
    ] {
        let yy = y(v);
        let _ = writeln!(
            h,
            "<line id=\"{prefix}-{class}\" class=\"threshold {class}\" x1=\"{ML}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"><title>{text}: {} tests</title></line><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{text} ({})</text>",
            W - MR,
            thousands_f(v),
            W - MR - 4.0,
            yy - 5.0,
            short(v)
        );
    }
    if let Some(o) = &p.order
        && o.order_by_day >= 0
        && o.order_by_day <= i64::from(p.horizon_days)
    {
        #[allow(clippy::cast_precision_loss)]
        let xx = x(o.order_by_day as f64);
        let _ = writeln!(
            h,
            "<line id=\"{prefix}-order-by\" class=\"order-by\" x1=\"{xx:.1}\" y1=\"{MT}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\">order by</text>",
            MT + ph,
            xx + 4.0,
            MT + 12.0
        );
    }
    for (series, get) in [
        (
            "total",
            (|d: &super::projection::Day| d.total) as fn(&super::projection::Day) -> f64,
        ),
        ("physical", |d: &super::projection::Day| d.physical),
    ] {
        let points: Vec<String> = p
            .days
            .iter()
            .map(|d| format!("{:.1},{:.1}", x(f64::from(d.day)), y(get(d))))
            .collect();
        let _ = writeln!(
            h,
            "<polyline id=\"{prefix}-{series}\" class=\"series {series}\" points=\"{}\"/>",
            points.join(" ")
        );
        h.push_str("<g>");
        for d in &p.days {
            let _ = write!(
                h,
                "<circle class=\"pt pt-{series}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\"><title>{}: {} {series}</title></circle>",
                x(f64::from(d.day)),
                y(get(d)),
                day_text(i64::from(d.day), d.date),
                thousands_f(get(d))
            );
        }
        h.push_str("</g>\n");
    }
    let _ = writeln!(
        h,
        "<g class=\"legend\"><rect x=\"{ML}\" y=\"14\" width=\"16\" height=\"4\" fill=\"#2e9d52\"/><text x=\"{:.1}\" y=\"20\">physical + confirmed contracts</text><rect x=\"{:.1}\" y=\"14\" width=\"16\" height=\"4\" fill=\"#1f6fb4\"/><text x=\"{:.1}\" y=\"20\">physical</text><line class=\"threshold total-line\" x1=\"{:.1}\" y1=\"16\" x2=\"{:.1}\" y2=\"16\"/><text x=\"{:.1}\" y=\"20\">reserve line</text><line class=\"threshold physical-line\" x1=\"{:.1}\" y1=\"16\" x2=\"{:.1}\" y2=\"16\"/><text x=\"{:.1}\" y=\"20\">physical line</text></g>",
        ML + 22.0,
        ML + 230.0,
        ML + 252.0,
        ML + 340.0,
        ML + 370.0,
        ML + 376.0,
        ML + 480.0,
        ML + 510.0,
        ML + 516.0
    );
    h.push_str("</svg>\n");
}

fn capacity_chart(h: &mut String, a: &Assessment, prefix: &str) {
    let c = &a.capacity;
    let mut groups: Vec<(String, u64)> = c
        .stages
        .iter()
        .map(|s| (s.stage.as_str().to_owned(), s.within_deadline))
        .collect();
    groups.push((
        "labs (each through its slower stage)".to_owned(),
        c.within_deadline,
    ));
    let demand = c.demand;
    let top = groups.iter().map(|g| g.1).max().unwrap_or(0).max(demand);
    let ymax = nice_ceiling(f(top) * 1.08);
    let pw = W - ML - MR;
    let ph = CAP_H - MT - MB;
    let y = |v: f64| MT + ph - (v.clamp(0.0, ymax) / ymax) * ph;
    let n = u32::try_from(groups.len()).unwrap_or(1).max(1);
    let slot = pw / f64::from(n);
    let bar = (slot * 0.3).min(90.0);
    let _ = writeln!(
        h,
        "<svg id=\"{prefix}-capacity-chart\" class=\"chart capacity\" viewBox=\"0 0 {W} {CAP_H}\" width=\"{W}\" height=\"{CAP_H}\" role=\"img\" aria-label=\"Lab capacity within the deadline against the round's tubes, by stage\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    y_grid(h, ymax, &y);
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{ML}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">tubes within {} h</text>",
        MT + ph,
        W - MR,
        MT + ph,
        MT + ph / 2.0,
        MT + ph / 2.0,
        c.deadline_hours
    );
    for (i, (name, cap)) in groups.iter().enumerate() {
        let cx = ML + slot * (f64::from(u32::try_from(i).unwrap_or(0)) + 0.5);
        let short_class = if *cap < demand { " short" } else { "" };
        for (class, v, dx, what) in [
            ("capacity", *cap, -bar - 2.0, "capacity"),
            ("demand", demand, 2.0, "round tubes"),
        ] {
            let yy = y(f(v));
            let extra = if class == "capacity" { short_class } else { "" };
            let _ = writeln!(
                h,
                "<rect class=\"bar {class}{extra}\" data-stage=\"{}\" x=\"{:.1}\" y=\"{yy:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"><title>{}: {what} {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                escape(name),
                cx + dx,
                MT + ph - yy,
                escape(name),
                thousands(v),
                cx + dx + bar / 2.0,
                yy - 5.0,
                short(f(v))
            );
        }
        let _ = writeln!(
            h,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            MT + ph + 20.0,
            escape(name)
        );
    }
    let _ = writeln!(
        h,
        "<g class=\"legend\"><rect x=\"{ML}\" y=\"10\" width=\"12\" height=\"12\" class=\"bar capacity\"/><text x=\"{:.1}\" y=\"20\">capacity within the deadline</text><rect x=\"{:.1}\" y=\"10\" width=\"12\" height=\"12\" class=\"bar capacity short\"/><text x=\"{:.1}\" y=\"20\">capacity short of the round</text><rect x=\"{:.1}\" y=\"10\" width=\"12\" height=\"12\" class=\"bar demand\"/><text x=\"{:.1}\" y=\"20\">tubes of a full round</text></g>",
        ML + 18.0,
        ML + 210.0,
        ML + 228.0,
        ML + 420.0,
        ML + 438.0
    );
    h.push_str("</svg>\n");
}

/// Writes `DIR/index.html`, creating `DIR`; returns the page's path.
pub fn write(dir: &Path, report: &Report) -> Result<PathBuf> {
    // Owner-only, like `report` (folder 0700, file 0600, replaced whole): a plan with
    // `--measure-round` carries a round's measured figures.
    crate::store::fsutil::create_dir_all(dir)?;
    let path = dir.join("index.html");
    crate::store::fsutil::write_atomic(&path, render(report).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::{Plan, assess};

    #[test]
    fn the_page_is_self_contained_and_escapes_names() {
        let plan = Plan::parse(
            r#"
name = "<script>alert(1)</script>"
[[zone]]
name = "A & B"
people = 1000
mode = "single"
prevalence = 0.01
[[lab]]
name = "L"
extraction = { instruments = 1, samples_per_run = 94, minutes_per_run = 40 }
pcr = { instruments = 1, samples_per_run = 94, minutes_per_run = 90 }
[reagents]
physical_tests = 5000
[schedule]
horizon_days = 20
full_rounds = { every_days = 7 }
"#,
        )
        .expect("valid");
        let page = render(&assess(&plan));
        assert!(!page.contains("<script"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("A &amp; B"));
        for forbidden in ["http://", "https://", "src=", "@import", "url("] {
            let outside_xmlns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(!outside_xmlns.contains(forbidden), "{forbidden}");
        }
        // 21 days (0..=20) × 2 series of points; 3 stage groups × 2 bars.
        assert_eq!(page.matches("class=\"pt pt-").count(), 42);
        assert_eq!(page.matches("<rect class=\"bar ").count(), 6);
        assert!(page.contains("id=\"plan-stock-chart\""));
        assert!(page.contains("id=\"plan-capacity-chart\""));
    }
}
