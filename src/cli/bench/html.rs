//! `bench --html DIR`: the report as one self-contained page, `DIR/index.html` (inline
//! CSS and SVG, no script, nothing fetched), so it can be published as it is: the
//! machine, the exact command, a chart of every stage against the floor and DuckDB,
//! and the table of figures.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use pooltrack::html::{escape, nice_ceiling};

use super::report::{ManyBatches, Report, Section, X_FLOOR, seconds, thousands, thousands_f};

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;margin:24px auto;max-width:1000px;color:#1d2430;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d0d7e2;padding-bottom:.2em}
.sub{color:#5a6475;margin-top:0}
pre{background:#f3f6fa;border:1px solid #e3e8ef;border-radius:6px;padding:8px 12px;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;margin:10px 0;font-size:.9em}
th,td{padding:4px 10px;border-bottom:1px solid #e3e8ef;text-align:right;white-space:nowrap}
th{background:#f3f6fa;font-weight:600}th:first-child,td:first-child{text-align:left}
tr.section td{background:#fafbfd;font-weight:600;text-align:left}
.note{color:#5a6475;font-size:.9em}
svg{display:block;max-width:100%;height:auto;margin:12px 0;background:#fff;border:1px solid #e3e8ef;border-radius:6px}
svg text{font-family:inherit;font-size:12px;fill:#3b4452}
.axis{stroke:#8a94a6;stroke-width:1}.grid{stroke:#edf0f5;stroke-width:1}
.bar.yardstick{fill:#adb5c2}.bar.floor{fill:#5a6475}.bar.job{fill:#1f6fb4}.bar.total{fill:#0b3d6e}
.bar.batch{fill:#2b8a9e}.bar.outputs{fill:#f08c28}.bar.duckdb{fill:#7b3fb8}
.val{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.mark{stroke-width:1.6;stroke-dasharray:6 4}.mark.floor{stroke:#5a6475}.mark.duckdb{stroke:#7b3fb8}
";

/// Chart width, in SVG user units, and its margins: left (stage names), right (the
/// figures after each bar), top (legend), bottom (axis labels).
const W: f64 = 960.0;
const ML: f64 = 250.0;
const MR: f64 = 190.0;
const MT: f64 = 44.0;
const MB: f64 = 44.0;
/// Height of one stage's row, and of its bar.
const ROW: f64 = 24.0;
const BAR: f64 = 15.0;

/// One bar: a stage's name, its seconds and its colour class.
struct Bar {
    name: String,
    seconds: f64,
    class: &'static str,
}

fn bars(r: &Report) -> Vec<Bar> {
    let mut out = vec![
        Bar {
            name: "cat of the inputs".into(),
            seconds: r.cat.seconds,
            class: "yardstick",
        },
        Bar {
            name: "floor parse of the inputs".into(),
            seconds: r.floor.seconds,
            class: "floor",
        },
    ];
    let many = ManyBatches::of(&r.steps);
    for section in [Section::Job, Section::Batch, Section::Outputs] {
        if section == Section::Job
            && let Some(m) = &many
        {
            out.push(Bar {
                name: m.name(),
                seconds: m.seconds,
                class: "job",
            });
        }
        for s in r.steps.iter().filter(|s| s.section == section) {
            if many.is_some() && ManyBatches::holds(s) {
                continue;
            }
            out.push(Bar {
                name: s.step.clone(),
                seconds: s.seconds,
                class: match section {
                    Section::Job => "job",
                    Section::Batch => "batch",
                    Section::Outputs => "outputs",
                },
            });
        }
        if section == Section::Job {
            out.push(Bar {
                name: "reference job (4 steps)".into(),
                seconds: r.job_seconds,
                class: "total",
            });
        }
    }
    if let Some(d) = &r.duckdb {
        out.push(Bar {
            name: "DuckDB, same job".into(),
            seconds: d.seconds,
            class: "duckdb",
        });
    }
    out
}

/// The horizontal bar chart of every stage's seconds, with the floor (and DuckDB's
/// job, when run) as vertical lines across it.
fn chart(h: &mut String, r: &Report) {
    let bars = bars(r);
    let floor = r.floor.seconds.max(1e-9);
    let top = bars.iter().map(|b| b.seconds).fold(0.0, f64::max);
    let xmax = nice_ceiling(top * 1.02);
    let pw = W - ML - MR;
    let ph = ROW * bars.len() as f64;
    let height = MT + ph + MB;
    let x = |v: f64| ML + v.clamp(0.0, xmax) / xmax * pw;
    let _ = writeln!(
        h,
        "<svg id=\"stages-chart\" class=\"chart\" viewBox=\"0 0 {W} {height:.0}\" width=\"{W}\" height=\"{height:.0}\" role=\"img\" aria-label=\"Seconds of each stage against the floor parse\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for i in 0..=5 {
        let v = xmax * f64::from(i) / 5.0;
        let xx = x(v);
        let _ = writeln!(
            h,
            "<line class=\"grid\" x1=\"{xx:.1}\" y1=\"{MT}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/><text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            MT + ph,
            MT + ph + 16.0,
            seconds_label(v)
        );
    }
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{ML}\" y1=\"{MT}\" x2=\"{ML}\" y2=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds (wall clock)</text>",
        MT + ph,
        ML + pw / 2.0,
        height - 8.0
    );
    legend(h, r.duckdb.is_some());
    // The lines go under the bars and their figures, which stay readable on top.
    // Labels point away from each other, so a floor and a DuckDB line close
    // together keep both names readable.
    let mut marks = vec![("floor", r.floor.seconds, "floor", "end", -3.0)];
    if let Some(d) = &r.duckdb {
        marks.push(("duckdb", d.seconds, "DuckDB", "start", 3.0));
    }
    for (class, v, label, anchor, dx) in marks {
        let xx = x(v);
        let _ = writeln!(
            h,
            "<line id=\"{class}-line\" class=\"mark {class}\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"><title>{label}: {v:.3} s</title></line><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{label}</text>",
            MT - 14.0,
            MT + ph,
            xx + dx,
            MT - 4.0
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = MT + ROW * i as f64 + (ROW - BAR) / 2.0;
        let w = (x(b.seconds) - ML).max(1.0);
        let figures = format!("{} s · {:.1}× floor", seconds(b.seconds), b.seconds / floor);
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"bar {}\" x=\"{ML}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR}\"><title>{}: {}</title></rect><text class=\"val\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            ML - 8.0,
            y + BAR - 3.0,
            escape(&b.name),
            b.class,
            escape(&b.name),
            escape(&figures),
            ML + w + 6.0,
            y + BAR - 3.0,
            escape(&figures)
        );
    }
    h.push_str("</svg>\n");
}

fn legend(h: &mut String, duckdb: bool) {
    let mut items = vec![
        ("yardstick", "cat"),
        ("floor", "floor parse"),
        ("job", "job step"),
        ("total", "job total"),
        ("batch", "lab batch"),
        ("outputs", "whole-round output"),
    ];
    if duckdb {
        items.push(("duckdb", "DuckDB"));
    }
    let mut xx = 12.0;
    h.push_str("<g class=\"legend\">");
    for (class, label) in items {
        let _ = write!(
            h,
            "<rect class=\"bar {class}\" x=\"{xx:.1}\" y=\"8\" width=\"12\" height=\"12\"/><text x=\"{:.1}\" y=\"18\">{label}</text>",
            xx + 16.0
        );
        xx += 28.0 + 7.0 * label.len() as f64;
    }
    h.push_str("</g>\n");
}

fn seconds_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v < 1.0 {
        format!("{v:.2} s")
    } else {
        format!("{v:.1} s")
    }
}

/// The whole page.
pub(super) fn render(r: &Report) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pooltrack bench: {} persons</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        r.shape.persons
    );
    let _ = writeln!(
        h,
        "<h1>pooltrack bench</h1>\n<p class=\"sub\">{}</p>",
        escape(&r.shape_text())
    );
    let _ = writeln!(
        h,
        "<h2 id=\"machine\">Machine</h2>\n<table><tr><th>CPU</th><td>{}</td></tr><tr><th>cores</th><td>{}</td></tr><tr><th>memory</th><td>{}</td></tr></table>",
        escape(&r.machine.cpu),
        r.machine.cores,
        r.machine
            .memory_gib
            .map_or_else(|| "unknown".to_owned(), |g| format!("{g:.1} GiB"))
    );
    let _ = writeln!(
        h,
        "<h2 id=\"command\">Command</h2>\n<pre><code>{}</code></pre>\n<p class=\"note\">Inputs: {}. {}</p>",
        escape(&r.command),
        escape(&r.inputs_text()),
        escape(&r.city_text())
    );
    let _ = writeln!(
        h,
        "<h2 id=\"chart\">Each stage against the floor{}</h2>",
        if r.duckdb.is_some() {
            " and DuckDB"
        } else {
            ""
        }
    );
    chart(&mut h, r);
    figures_table(&mut h, r);
    let _ = writeln!(
        h,
        "<h2 id=\"notes\">What the figures mean</h2>\n<ul class=\"note\">\
         <li><strong>cat</strong>: {}.</li>\
         <li><strong>floor parse</strong>: {}. A lower bound under any CSV reader of these files: it only finds field and line ends (quotes are not its business), keeps nothing and checks nothing.</li>\
         <li><strong>{}</strong>.</li>\
         <li><strong>Each step</strong> is its own pooltrack process, timed from outside; peak MiB is its own peak resident memory (ru_maxrss of a process whose only child it is).</li>\
         <li><strong>The reference job</strong> (ingest collections, ingest results, worklist recall, status into an empty store) is what DuckDB's script does on the same files, in memory; the lab batch and the whole-round outputs run after it on the full store and are not in its total.</li>\
         </ul>\n</body>\n</html>",
        escape(&r.cat_text()),
        escape(&r.floor_text()),
        escape(X_FLOOR)
    );
    h
}

fn figures_table(h: &mut String, r: &Report) {
    let floor = r.floor.seconds.max(1e-9);
    h.push_str("<table id=\"figures\"><tr><th>stage</th><th>seconds</th><th>× floor</th><th>rows</th><th>rows/s</th><th>peak MiB</th></tr>\n");
    let _ = writeln!(
        h,
        "<tr><td>cat of the inputs</td><td>{}</td><td>{:.2}</td><td></td><td></td><td></td></tr>\n<tr><td>floor parse of the inputs</td><td>{}</td><td>1.00</td><td>{}</td><td></td><td></td></tr>",
        seconds(r.cat.seconds),
        r.cat.seconds / floor,
        seconds(r.floor.seconds),
        thousands(r.floor.rows)
    );
    for section in [Section::Job, Section::Batch, Section::Outputs] {
        let steps: Vec<_> = r.steps.iter().filter(|s| s.section == section).collect();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<tr class=\"section\"><td colspan=\"6\">{}</td></tr>",
            escape(section.title())
        );
        let many = ManyBatches::of(&r.steps).filter(|_| section == Section::Job);
        if let Some(m) = &many {
            let _ = writeln!(
                h,
                "<tr><td title=\"{}\">{} ({})</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
                escape(&m.spread_text()),
                escape(&m.name()),
                escape(&m.spread_text()),
                seconds(m.seconds),
                m.seconds / floor,
                thousands(m.rows),
                thousands_f(m.rows as f64 / m.seconds.max(1e-9)),
                m.peak_mib
            );
        }
        for s in steps {
            if many.is_some() && ManyBatches::holds(s) {
                continue;
            }
            let _ = writeln!(
                h,
                "<tr><td title=\"pooltrack {}\">{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
                escape(&s.args.join(" ")),
                escape(&s.step),
                seconds(s.seconds),
                s.x_floor,
                thousands(s.rows),
                thousands_f(s.rows_per_second),
                s.peak_mib
            );
        }
        if section == Section::Job {
            let _ = writeln!(
                h,
                "<tr><td><strong>reference job (4 steps)</strong></td><td><strong>{:.3}</strong></td><td>{:.2}</td><td></td><td></td><td>{:.0}</td></tr>",
                r.job_seconds, r.job_x_floor, r.job_peak_mib
            );
            let _ = writeln!(
                h,
                "<tr><td colspan=\"6\">{}</td></tr>",
                pooltrack::html::escape(&r.stored.text())
            );
        }
    }
    if let Some(d) = &r.duckdb {
        let _ = writeln!(
            h,
            "<tr class=\"section\"><td colspan=\"6\">DuckDB</td></tr>\n<tr><td>same job on the same files</td><td>{:.3}</td><td>{:.2}</td><td></td><td></td><td>{}</td></tr>{}\n<tr><td>pooltrack / DuckDB time</td><td>{:.2}</td><td></td><td></td><td></td><td></td></tr>",
            d.seconds,
            d.x_floor,
            d.peak_mib.map_or_else(String::new, |p| format!("{p:.0}")),
            d.script_seconds.map_or_else(String::new, |own| format!(
                "\n<tr><td>its queries alone (no Python start)</td><td>{}</td><td>{:.2}</td><td></td><td></td><td></td></tr>",
                seconds(own),
                own / floor
            )),
            d.ratio
        );
    }
    h.push_str("</table>\n");
    if !r.outputs_run {
        h.push_str("<p class=\"note\">The whole-round outputs were not run (<code>--job-only</code>).</p>\n");
    }
}

/// Writes the page to `dir/index.html`, creating `dir`.
pub(super) fn write(dir: &Path, r: &Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let path = dir.join("index.html");
    std::fs::write(&path, render(r)).with_context(|| path.display().to_string())
}
