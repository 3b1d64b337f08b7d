//! The report's inline SVG charts. Each has a fixed id the page's readers (and the
//! Chromium test) look for: `progress-chart`, `turnaround-histogram`,
//! `coverage-chart`, `prevalence-chart`. Every number drawn is also in a table on the
//! page.

use std::fmt::Write as _;

use super::RoundReport;
use crate::coverage::Area;
use crate::html::{escape, nice_ceiling, y_grid};
use crate::planner::numbers::{short, thousands};
use crate::prevalence::{ALL, AreaPrevalence};
use crate::turnaround::HISTOGRAM_HOURS;

/// Chart width, in SVG user units.
const W: f64 = 960.0;
/// Plot margins: left (tick labels), right, top (legend), bottom (axis labels).
const ML: f64 = 72.0;
const MR: f64 = 24.0;
const MT: f64 = 40.0;
const MB: f64 = 52.0;
const PROGRESS_H: f64 = 340.0;
const HISTOGRAM_H: f64 = 320.0;
/// Height of one district's bar row in the coverage chart.
const ROW_H: f64 = 26.0;

/// A linear map from data values to SVG coordinates; values outside the domain are
/// clamped so a stray value cannot draw outside the plot.
#[derive(Debug, Clone, Copy)]
struct Scale {
    from: (f64, f64),
    to: (f64, f64),
}

impl Scale {
    fn new(from: (f64, f64), to: (f64, f64)) -> Scale {
        Scale { from, to }
    }

    fn at(self, v: f64) -> f64 {
        let (d0, d1) = self.from;
        let span = d1 - d0;
        let t = if span > 0.0 && v.is_finite() {
            ((v - d0) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.to.0 + t * (self.to.1 - self.to.0)
    }
}

/// Hours between labeled ticks on an axis of `hours`, about eight labels at most.
fn hour_step(hours: u32) -> u32 {
    [1, 2, 3, 6, 12, 24, 48, 72, 168]
        .into_iter()
        .find(|&s| hours.div_ceil(s) <= 8)
        .unwrap_or(336)
}

fn open_svg(h: &mut String, id: &str, height: f64, label: &str) {
    // No xmlns: inline SVG in HTML does not need one, and the page names no URL at all.
    let _ = writeln!(
        h,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
}

fn hour_axis(h: &mut String, x: Scale, bottom: f64, hours: u32, caption: &str) {
    let step = hour_step(hours);
    for hour in (0..=hours).step_by(usize::try_from(step).unwrap_or(1)) {
        let xx = x.at(f64::from(hour));
        let _ = writeln!(
            h,
            "<line class=\"axis\" x1=\"{xx:.1}\" y1=\"{bottom:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{hour}</text>",
            bottom + 5.0,
            bottom + 19.0
        );
    }
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{ML}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\"/><line class=\"axis\" x1=\"{ML}\" y1=\"{MT}\" x2=\"{ML}\" y2=\"{bottom:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        W - MR,
        ML + (W - ML - MR) / 2.0,
        bottom + 40.0,
        escape(caption)
    );
}

fn y_caption(h: &mut String, text: &str, mid: f64) {
    let _ = writeln!(
        h,
        "<text x=\"14\" y=\"{mid:.1}\" transform=\"rotate(-90 14 {mid:.1})\" text-anchor=\"middle\">{}</text>",
        escape(text)
    );
}

fn deadline_line(h: &mut String, id: &str, x: f64, bottom: f64, hours: f64) {
    // Near the right edge the label goes left of the line, or it would be cut off.
    let (tx, anchor) = if x > W - MR - 110.0 {
        (x - 4.0, "end")
    } else {
        (x + 4.0, "start")
    };
    let _ = writeln!(
        h,
        "<line id=\"{id}\" class=\"deadline\" x1=\"{x:.1}\" y1=\"{MT}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"><title>pool deadline: {hours} h</title></line><text class=\"deadline-label\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{hours} h deadline</text>",
        MT + 12.0
    );
}

/// The top of a count axis: five gridlines at whole numbers.
fn count_top(max: u64) -> f64 {
    let top = nice_ceiling(max as f64).max(5.0);
    (top / 5.0).ceil() * 5.0
}

/// The share of collected tubes with a result, hour by hour, against the pool deadline.
pub(super) fn progress(h: &mut String, r: &RoundReport) {
    let t = &r.turnaround;
    let deadline = t.deadlines.pool_hours;
    let last = t.progress.last().map_or(0, |p| p.hour);
    // The axis reaches the deadline even while the round is young, so the line shows
    // how much time is left.
    let hours = last
        .max(u32::try_from(crate::planner::numbers::ceil_u64(deadline)).unwrap_or(u32::MAX))
        .clamp(1, crate::turnaround::MAX_PROGRESS_HOURS);
    let bottom = PROGRESS_H - MB;
    let x = Scale::new((0.0, f64::from(hours)), (ML, W - MR));
    let y = Scale::new((0.0, 100.0), (bottom, MT));
    open_svg(
        h,
        "progress-chart",
        PROGRESS_H,
        "Share of collected tubes with a result, by hour, against the deadline",
    );
    y_grid(h, (ML, W - MR), 100.0, &|v| y.at(v), &|v| {
        format!("{v:.0} %")
    });
    hour_axis(
        h,
        x,
        bottom,
        hours,
        "hours since the round's first collection",
    );
    y_caption(h, "tubes with a result", MT + (bottom - MT) / 2.0);
    deadline_line(h, "progress-deadline", x.at(deadline), bottom, deadline);
    if t.progress.is_empty() {
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no tube collected yet</text>",
            ML + (W - ML - MR) / 2.0,
            MT + (bottom - MT) / 2.0
        );
    } else {
        let points: Vec<String> = std::iter::once(format!("{:.1},{:.1}", x.at(0.0), y.at(0.0)))
            .chain(t.progress.iter().map(|p| {
                format!(
                    "{:.1},{:.1}",
                    x.at(f64::from(p.hour)),
                    y.at(100.0 * p.share)
                )
            }))
            .collect();
        let _ = writeln!(
            h,
            "<path id=\"progress-line\" class=\"series\" d=\"M{}\"/>",
            points.join(" L")
        );
        h.push_str("<g>");
        for p in &t.progress {
            let _ = write!(
                h,
                "<circle class=\"pt\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.8\"><title>{} h: {} of {} tubes ({:.1} %)</title></circle>",
                x.at(f64::from(p.hour)),
                y.at(100.0 * p.share),
                p.hour,
                thousands(p.with_result),
                thousands(p.collected),
                100.0 * p.share
            );
        }
        h.push_str("</g>\n");
    }
    h.push_str("</svg>\n");
}

/// Tubes by turnaround hour, the overflow bin last, with the pool deadline marked.
pub(super) fn histogram(h: &mut String, r: &RoundReport) {
    let hist = &r.turnaround.histogram;
    let bins: Vec<u64> = hist
        .counts
        .iter()
        .copied()
        .chain(std::iter::once(hist.overflow))
        .collect();
    let top = bins.iter().copied().max().unwrap_or(0);
    let ymax = count_top(top);
    let bottom = HISTOGRAM_H - MB;
    let n = u32::try_from(bins.len()).unwrap_or(1).max(1);
    let hours = u32::try_from(HISTOGRAM_HOURS).unwrap_or(48);
    let x = Scale::new((0.0, f64::from(n)), (ML, W - MR));
    let y = Scale::new((0.0, ymax), (bottom, MT));
    open_svg(
        h,
        "turnaround-histogram",
        HISTOGRAM_H,
        "Tubes by turnaround, in hours",
    );
    y_grid(h, (ML, W - MR), ymax, &|v| y.at(v), &|v| short(v));
    hour_axis(
        h,
        x,
        bottom,
        hours,
        "turnaround, hours (last bar: 48 h or more)",
    );
    y_caption(h, "tubes", MT + (bottom - MT) / 2.0);
    let deadline = r.turnaround.deadlines.pool_hours;
    deadline_line(h, "histogram-deadline", x.at(deadline), bottom, deadline);
    for (i, &count) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let lo = f64::from(u32::try_from(i).unwrap_or(0));
        let (x0, x1) = (x.at(lo), x.at(lo + 1.0));
        let top = y.at(count as f64);
        let what = if i < HISTOGRAM_HOURS {
            format!("{i}–{} h", i + 1)
        } else {
            format!("{HISTOGRAM_HOURS} h or more")
        };
        let _ = writeln!(
            h,
            "<rect class=\"bar hist\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{what}: {} tube(s)</title></rect>",
            x0 + 1.0,
            (x1 - x0 - 2.0).max(1.0),
            bottom - top,
            thousands(count)
        );
    }
    h.push_str("</svg>\n");
}

/// Each district's tested share of its registered persons, as horizontal bars.
pub(super) fn coverage(h: &mut String, districts: &[Area]) {
    let rows = u32::try_from(districts.len()).unwrap_or(u32::MAX).max(1);
    let height = MT + ROW_H * f64::from(rows) + MB;
    let label_w = 180.0;
    let x = Scale::new((0.0, 100.0), (label_w, W - MR - 150.0));
    open_svg(
        h,
        "coverage-chart",
        height,
        "Share of registered persons tested, by district",
    );
    let bottom = height - MB;
    for pct in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let xx = x.at(pct);
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{xx:.1}\" y1=\"{MT}\" x2=\"{xx:.1}\" y2=\"{bottom:.1}\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{pct:.0} %</text>",
            bottom + 18.0
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">registered persons with a tube in the round</text>",
        x.at(50.0),
        bottom + 40.0
    );
    for (i, a) in districts.iter().enumerate() {
        let top = MT + ROW_H * f64::from(u32::try_from(i).unwrap_or(0));
        let name = escape(&a.district);
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{name}</text><rect class=\"bar registered\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><rect class=\"bar tested\" data-district=\"{name}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{name}: {} of {} tested</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{:.1} % ({} of {})</text>",
            label_w - 8.0,
            top + ROW_H / 2.0 + 4.0,
            x.at(0.0),
            top + 4.0,
            x.at(100.0) - x.at(0.0),
            ROW_H - 8.0,
            x.at(0.0),
            top + 4.0,
            x.at(100.0 * a.share) - x.at(0.0),
            ROW_H - 8.0,
            thousands(a.tested),
            thousands(a.registered),
            x.at(100.0) + 8.0,
            top + ROW_H / 2.0 + 4.0,
            100.0 * a.share,
            thousands(a.tested),
            thousands(a.registered)
        );
    }
    h.push_str("</svg>\n");
}

/// Each area's prevalence as a dot on its 95 % interval, the whole round first.
pub(super) fn prevalence(h: &mut String, id: &str, rows: &[AreaPrevalence], what: &str) {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX).max(1);
    let height = MT + ROW_H * f64::from(n) + MB;
    let label_w = 180.0;
    let top_pct = rows.iter().filter_map(|r| r.upper).fold(0.0f64, f64::max) * 100.0;
    let xmax = nice_ceiling(top_pct).max(0.001);
    let x = Scale::new((0.0, xmax), (label_w, W - MR - 230.0));
    open_svg(
        h,
        id,
        height,
        &format!("Prevalence with its 95 % likelihood-ratio interval, by {what}"),
    );
    let bottom = height - MB;
    for i in 0..=4 {
        let v = xmax * f64::from(i) / 4.0;
        let xx = x.at(v);
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{xx:.1}\" y1=\"{MT}\" x2=\"{xx:.1}\" y2=\"{bottom:.1}\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} %</text>",
            bottom + 18.0,
            percent_label(v)
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">prevalence: estimate (dot) and 95 % likelihood-ratio interval (bar)</text>",
        x.at(xmax / 2.0),
        bottom + 40.0
    );
    for (i, r) in rows.iter().enumerate() {
        let mid = MT + ROW_H * f64::from(u32::try_from(i).unwrap_or(0)) + ROW_H / 2.0;
        let name = if r.area == ALL {
            "whole round".to_owned()
        } else if r.district.is_empty() {
            escape(&r.area)
        } else {
            escape(&format!("{} / {}", r.district, r.area))
        };
        let class = if r.area == ALL { " all" } else { "" };
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{name}</text>",
            label_w - 8.0,
            mid + 4.0
        );
        let (Some(p), Some(lo), Some(hi)) = (r.prevalence, r.lower, r.upper) else {
            let _ = writeln!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\">no tube with a result</text>",
                x.at(0.0),
                mid + 4.0
            );
            continue;
        };
        let _ = writeln!(
            h,
            "<line class=\"interval{class}\" data-area=\"{name}\" x1=\"{:.1}\" y1=\"{mid:.1}\" x2=\"{:.1}\" y2=\"{mid:.1}\"/><circle class=\"estimate{class}\" cx=\"{:.1}\" cy=\"{mid:.1}\" r=\"4\"><title>{name}: {:.4} % ({:.4} – {:.4} %), {} positive of {} tubes, {} persons</title></circle><text x=\"{:.1}\" y=\"{:.1}\">{:.4} % ({:.4} – {:.4})</text>",
            x.at(100.0 * lo),
            x.at(100.0 * hi),
            x.at(100.0 * p),
            100.0 * p,
            100.0 * lo,
            100.0 * hi,
            thousands(r.positive_tubes),
            thousands(r.tubes),
            thousands(r.persons),
            x.at(xmax) + 10.0,
            mid + 4.0,
            100.0 * p,
            100.0 * lo,
            100.0 * hi
        );
    }
    h.push_str("</svg>\n");
}

/// A percentage tick: as few decimals as its size needs.
fn percent_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_maps_and_clamps() {
        let s = Scale::new((0.0, 100.0), (300.0, 40.0));
        assert_eq!(s.at(0.0), 300.0);
        assert_eq!(s.at(100.0), 40.0);
        assert_eq!(s.at(50.0), 170.0);
        assert_eq!(s.at(150.0), 40.0);
        assert_eq!(s.at(-1.0), 300.0);
        assert_eq!(s.at(f64::NAN), 300.0);
        // An empty domain draws everything at the start instead of dividing by zero.
        assert_eq!(Scale::new((5.0, 5.0), (10.0, 20.0)).at(5.0), 10.0);
    }

    #[test]
    fn count_axes_have_whole_gridlines() {
        assert_eq!(count_top(0), 5.0);
        assert_eq!(count_top(3), 5.0);
        assert_eq!(count_top(11), 15.0);
        assert_eq!(count_top(1_900), 2_000.0);
    }

    #[test]
    fn hour_ticks_stay_few() {
        assert_eq!(hour_step(1), 1);
        assert_eq!(hour_step(8), 1);
        assert_eq!(hour_step(24), 3);
        assert_eq!(hour_step(48), 6);
        assert_eq!(hour_step(49), 12);
        assert_eq!(hour_step(336), 48);
        assert_eq!(hour_step(u32::MAX), 336);
    }

    #[test]
    fn coverage_bars_are_as_long_as_the_share() {
        let mut h = String::new();
        coverage(
            &mut h,
            &[Area::new("North", "", 4, 2), Area::new("<South>", "", 0, 0)],
        );
        assert_eq!(h.matches("class=\"bar tested\"").count(), 2);
        assert!(h.contains("&lt;South&gt;"));
        let full = x_width(&h, "registered");
        let half = x_width(&h, "tested");
        assert!((full / 2.0 - half).abs() < 0.2, "{full} {half}");
    }

    /// The width of the first `bar {class}` rect.
    fn x_width(svg: &str, class: &str) -> f64 {
        let at = svg.find(&format!("class=\"bar {class}\"")).expect("a bar");
        let rest = &svg[at..];
        let w = rest.find("width=\"").expect("a width") + 7;
        let end = rest[w..].find('"').expect("closing quote");
        rest[w..w + end].parse().expect("a number")
    }
}
