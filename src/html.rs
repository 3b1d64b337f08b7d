//! Pieces shared by the self-contained HTML pages (the planner's and the round
//! report's): escaping every text that comes from data, and the axis arithmetic of
//! their inline SVG charts, so both pages draw gridlines the same way.

use std::fmt::Write as _;

/// Escapes text for HTML and SVG.
///
/// ```
/// use pooltrack::html::escape;
/// assert_eq!(escape("<Lab \"A\" & B>"), "&lt;Lab &quot;A&quot; &amp; B&gt;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round number at or above `x` for an axis top (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or
/// 8 × 10^n), so tick labels read as round numbers; 1 for nothing to show.
///
/// ```
/// use pooltrack::html::nice_ceiling;
/// assert_eq!(nice_ceiling(1_900.0), 2_000.0);
/// assert_eq!(nice_ceiling(0.0), 1.0);
/// ```
pub fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

/// Writes five gridlines from 0 to `ymax` across `x0..x1`, each with its value
/// `label`led left of `x0`; `y` maps a value to its SVG y.
///
/// ```
/// let mut svg = String::new();
/// pooltrack::html::y_grid(&mut svg, (96.0, 900.0), 10.0, &|v| 300.0 - v * 20.0, &|v| format!("{v}"));
/// assert_eq!(svg.matches("<line class=\"grid\"").count(), 6);
/// assert!(svg.contains(">10</text>"));
/// ```
pub fn y_grid(
    out: &mut String,
    (x0, x1): (f64, f64),
    ymax: f64,
    y: &dyn Fn(f64) -> f64,
    label: &dyn Fn(f64) -> String,
) {
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let yy = y(v);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{x0}\" y1=\"{yy:.1}\" x2=\"{x1:.1}\" y2=\"{yy:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 8.0,
            yy + 4.0,
            escape(&label(v))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(27_488_780.0), 30_000_000.0);
        assert_eq!(nice_ceiling(1_900.0), 2_000.0);
        assert_eq!(nice_ceiling(2_100.0), 2_500.0);
        assert_eq!(nice_ceiling(13_300_000.0), 15_000_000.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
    }

    #[test]
    fn escape_leaves_plain_text_alone() {
        assert_eq!(escape("LAB-A 检测"), "LAB-A 检测");
        assert_eq!(escape("'"), "&#39;");
    }
}
