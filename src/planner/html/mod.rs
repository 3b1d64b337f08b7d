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
//! And the pool design advisor's section (`plan-advice`, see `advice`): per zone, a
//! chart of each scheme's tests per person against its sensitivity with the floor,
//! and the table of every scheme's figures and why it was or was not recommended.
//!
//! Every number drawn is also in a table beside it.
//!
//! The charts are drawn in `charts`, with their own geometry; the page places them
//! and its stylesheet colours them.

mod advice;
mod charts;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::numbers::{f, thousands, thousands_f};
use super::projection::Projection;
use super::{Assessment, Report};
use crate::Result;
pub use crate::html::escape;
use charts::{capacity_chart, stock_chart};

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
         <title>pooltrack plan: {}</title>\n<style>{STYLE}{}</style>\n</head>\n<body>\n",
        escape(&p.name),
        advice::STYLE
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
    advice::section(&mut h, &report.advice, "plan", "Pool design");
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
        if let Some(adv) = &m.advice {
            advice::section(
                &mut h,
                adv,
                "measured",
                "Pool design with the measured pool sensitivities",
            );
        }
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
