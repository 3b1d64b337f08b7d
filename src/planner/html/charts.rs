//! The two SVG charts of each assessment, `{prefix}-stock-chart` and
//! `{prefix}-capacity-chart`, drawn into the page at a fixed size.

use std::fmt::Write as _;

use super::day_text;
use crate::html::{escape, nice_ceiling};
use crate::planner::Assessment;
use crate::planner::numbers::{f, short, thousands, thousands_f};
use crate::planner::projection::{Day, Projection};

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

pub(super) fn stock_chart(h: &mut String, p: &Projection, prefix: &str) {
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
        ("total", (|d: &Day| d.total) as fn(&Day) -> f64),
        ("physical", |d: &Day| d.physical),
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

pub(super) fn capacity_chart(h: &mut String, a: &Assessment, prefix: &str) {
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
