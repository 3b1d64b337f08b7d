//! The round report as one self-contained HTML page: inline CSS and SVG, no script, no
//! font, image or link to anywhere, so it opens from a USB stick on an office PC
//! without a network, and prints. Every text that comes from the data is escaped.

use std::fmt::Write as _;

use super::{Capped, RoundReport, charts};
use crate::html::escape;
use crate::planner::numbers::thousands;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif;margin:24px auto;max-width:1000px;color:#1d2430;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d0d7e2;padding-bottom:.2em}
h3{font-size:1.05em;margin-top:1.2em}
.sub{color:#5a6475;margin-top:0}
.headline{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.figure{border:1px solid #d0d7e2;border-radius:6px;padding:8px 14px;min-width:120px}
.figure b{display:block;font-size:1.5em}.figure span{color:#5a6475;font-size:.85em}
.warn{background:#fff6db;border:1px solid #ecd48a;padding:8px 12px;border-radius:6px}
table{border-collapse:collapse;margin:10px 0;font-size:.9em}
th,td{padding:4px 10px;border-bottom:1px solid #e3e8ef;text-align:right;white-space:nowrap}
th{background:#f3f6fa;font-weight:600}th:first-child,td:first-child{text-align:left}
.text{white-space:normal;display:inline-block;max-width:420px;text-align:left}
.note{color:#5a6475;font-size:.9em}
svg{display:block;max-width:100%;height:auto;margin:12px 0;background:#fff;border:1px solid #e3e8ef;border-radius:6px}
svg text{font-family:inherit;font-size:12px;fill:#3b4452}
.axis{stroke:#8a94a6;stroke-width:1}.grid{stroke:#edf0f5;stroke-width:1}
.series{fill:none;stroke:#1f6fb4;stroke-width:2.2}.pt{fill:#1f6fb4}
.deadline{stroke:#c92a2a;stroke-width:1.6;stroke-dasharray:7 5}svg text.deadline-label{fill:#c92a2a;font-weight:600}
.bar.hist{fill:#2b8a9e}.bar.registered{fill:#edf0f5}.bar.tested{fill:#2e9d52}
.interval{stroke:#7a4fb5;stroke-width:3;stroke-linecap:round}.interval.all{stroke:#1d2430}
.estimate{fill:#fff;stroke:#7a4fb5;stroke-width:2}.estimate.all{stroke:#1d2430;fill:#1d2430}
.red{color:#c92a2a}.yellow{color:#b07d00}.green{color:#17612e}
";

/// A table: `head` cells, then one row of cells per entry (cells already escaped).
fn table(h: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    h.push_str("<table><tr>");
    for c in head {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// "(the first 100 of 2,345)" after a cut list's table, so nobody takes it as whole.
fn cut_note<T>(h: &mut String, list: &Capped<T>, whole: &str) {
    if list.is_cut() {
        let _ = writeln!(
            h,
            "<p class=\"note\">The first {} of {}; the whole list: <code>{}</code>.</p>",
            thousands(list.first.len() as u64),
            thousands(list.total),
            escape(whole)
        );
    }
}

fn minutes(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |m| format!("{m:.0}"))
}

fn percent(share: f64) -> String {
    format!("{:.1} %", 100.0 * share)
}

fn none_as_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        escape(s)
    }
}

fn figure(h: &mut String, value: &str, what: &str) {
    let _ = write!(
        h,
        "<div class=\"figure\"><b>{value}</b><span>{what}</span></div>"
    );
}

/// Renders the whole report as one HTML page.
pub fn render(r: &RoundReport) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let round = escape(&r.round);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pooltrack round report: {round}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Round {round}</h1>\n<p class=\"sub\">As of {}; store <code>{}</code>; first collection {}.</p>\n",
        escape(&r.as_of),
        escape(&r.store),
        escape(r.turnaround.first_collection.as_deref().unwrap_or("-"))
    );
    if !r.notes.is_empty() {
        h.push_str("<div class=\"warn\"><ul>");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul></div>\n");
    }
    headline(&mut h, r);
    statuses(&mut h, r);
    turnaround(&mut h, r);
    plate_qc(&mut h, r);
    review(&mut h, r);
    coverage(&mut h, r);
    prevalence(&mut h, r);
    dilution(&mut h, r);
    health_codes(&mut h, r);
    super::custody::render(&mut h, &r.custody, &r.round);
    super::audit_part::render(&mut h, r);
    health_codes_across_rounds(&mut h, r);
    h.push_str("<p class=\"note\">Made by <code>pooltrack report</code>; the same figures are in <code>report.json</code> beside this page.</p>\n</body>\n</html>\n");
    h
}

fn headline(h: &mut String, r: &RoundReport) {
    let c = &r.counts;
    let by = |name: &str| {
        c.by_status
            .iter()
            .find(|(s, _)| s.as_str() == name)
            .map_or(0, |x| x.1)
    };
    h.push_str("<div id=\"headline\" class=\"headline\">");
    figure(h, &thousands(c.persons), "persons tested");
    figure(h, &thousands(c.tubes), "tubes");
    figure(h, &thousands(by("positive")), "positive");
    figure(h, &thousands(by("recall")), "to recall");
    figure(
        h,
        &minutes(r.turnaround.round_stats.median_minutes),
        "median turnaround, min",
    );
    figure(
        h,
        &thousands(r.turnaround.late_tubes.total),
        "tubes past deadline",
    );
    figure(
        h,
        &thousands(r.plate_qc.failed_plates.len() as u64),
        "failed plates",
    );
    let flags = r.review.counts;
    figure(
        h,
        &thousands(
            flags.discordant_pool
                + flags.missed_by_pooling
                + flags.changed_from_positive
                + flags.conflicting_tube_rows
                + flags.shared_single_tube,
        ),
        "review flags",
    );
    if let Some(cov) = &r.coverage {
        figure(h, &percent(cov.totals.share), "of the register tested");
    }
    if let Some(p) = r.prevalence.by_lab.first().and_then(|a| a.prevalence) {
        figure(h, &format!("{:.3} %", 100.0 * p), "prevalence (estimate)");
    }
    h.push_str("</div>\n");
}

fn statuses(h: &mut String, r: &RoundReport) {
    let c = &r.counts;
    h.push_str("<h2 id=\"statuses\">Persons and tubes</h2>\n");
    table(
        h,
        &["status", "persons"],
        c.by_status
            .iter()
            .map(|(s, n)| vec![s.as_str().to_owned(), thousands(*n)]),
    );
    let mut rows = vec![
        vec!["pool tubes".to_owned(), thousands(c.pool_tubes)],
        vec!["single tubes".to_owned(), thousands(c.single_tubes)],
        vec!["with a result".to_owned(), thousands(c.tubes_with_result)],
    ];
    rows.extend(
        c.tubes_by_result
            .iter()
            .map(|(o, n)| vec![format!("result {}", o.as_str()), thousands(*n)]),
    );
    rows.push(vec![
        "overfull pools".to_owned(),
        thousands(c.overfull_pools),
    ]);
    rows.push(vec![
        "positives kept against a later result".to_owned(),
        thousands(c.positives_kept),
    ]);
    rows.push(vec!["to rerun".to_owned(), thousands(c.tubes_to_rerun)]);
    table(h, &["tubes", "count"], rows);
}

fn turnaround(h: &mut String, r: &RoundReport) {
    let t = &r.turnaround;
    let _ = writeln!(
        h,
        "<h2 id=\"progress\">Progress against the deadline</h2>\n<p>Share of the tubes collected by each hour that had a result by then. Deadlines: pools {} h, single tubes {} h.</p>",
        t.deadlines.pool_hours, t.deadlines.single_hours
    );
    charts::progress(h, r);
    h.push_str("<h2 id=\"turnaround\">Turnaround</h2>\n<p>First counted result minus earliest collection; percentiles are nearest-rank, in minutes.</p>\n");
    charts::histogram(h, r);
    let stats_row = |name: String, s: &crate::turnaround::Stats| {
        vec![
            name,
            thousands(s.tubes),
            minutes(s.median_minutes),
            minutes(s.p90_minutes),
            minutes(s.p99_minutes),
            thousands(s.reported_late),
        ]
    };
    let mut rows = vec![stats_row("whole round".to_owned(), &t.round_stats)];
    rows.extend(
        t.by_lab
            .iter()
            .map(|l| stats_row(format!("lab {}", none_as_dash(&l.lab)), &l.stats)),
    );
    h.push_str("<div id=\"labs\">");
    table(
        h,
        &["", "tubes", "median", "p90", "p99", "reported late"],
        rows,
    );
    h.push_str("</div>\n");
    if t.in_lab.tubes > 0 {
        let _ = writeln!(
            h,
            "<p id=\"transport\">Of {} tubes whose result gave a receipt time: transport (collection to receipt) median {} min, p90 {} min; in the lab (receipt to report) median {} min, p90 {} min.</p>",
            thousands(t.in_lab.tubes),
            minutes(t.transport.median_minutes),
            minutes(t.transport.p90_minutes),
            minutes(t.in_lab.median_minutes),
            minutes(t.in_lab.p90_minutes)
        );
    }
    let c = &t.late_counts;
    let _ = writeln!(
        h,
        "<h3 id=\"late\">Tubes past their deadline: {}</h3>\n<p>Pools: {} reported late, {} still waiting. Single tubes: {} reported late, {} still waiting.</p>",
        thousands(t.late_tubes.total),
        thousands(c.pool_reported_late),
        thousands(c.pool_waiting),
        thousands(c.single_reported_late),
        thousands(c.single_waiting)
    );
    table(
        h,
        &[
            "tube",
            "mode",
            "collected",
            "due",
            "reported",
            "lab",
            "minutes late",
        ],
        t.late_tubes.first.iter().map(|l| {
            vec![
                escape(&l.tube),
                l.mode.to_owned(),
                // Times are digits and punctuation: nothing to escape.
                l.collected_at.to_string(),
                l.due_at.to_string(),
                l.reported_at
                    .map_or_else(|| "still waiting".to_owned(), |at| at.to_string()),
                none_as_dash(&l.lab),
                format!("{:.0}", l.minutes_late),
            ]
        }),
    );
    cut_note(
        h,
        &t.late_tubes,
        &format!("pooltrack turnaround --round {} --json", r.round),
    );
    let _ = writeln!(
        h,
        "<h3 id=\"recall-delays\">Recall delay of positive pools: {}</h3>",
        thousands(t.recall_delays.total)
    );
    table(
        h,
        &[
            "pool",
            "positive reported",
            "committed",
            "recall run",
            "minutes",
        ],
        t.recall_delays.first.iter().map(|d| {
            vec![
                escape(&d.tube),
                escape(&d.reported_at),
                escape(&d.committed_at),
                d.recall_run_at
                    .as_deref()
                    .map_or_else(|| "not yet run".to_owned(), escape),
                format!("{:.0}", d.minutes),
            ]
        }),
    );
    cut_note(
        h,
        &t.recall_delays,
        &format!("pooltrack turnaround --round {} --json", r.round),
    );
}

fn plate_qc(h: &mut String, r: &RoundReport) {
    let q = &r.plate_qc;
    let _ = writeln!(
        h,
        "<h2 id=\"plate-qc\">Plate quality control</h2>\n<p>{} plate(s) failed their controls; {} tube(s) wait to be run again.</p>",
        thousands(q.failed_plates.len() as u64),
        thousands(q.reruns.total)
    );
    table(
        h,
        &["lab", "plate", "reason"],
        q.failed_plates
            .iter()
            .map(|p| vec![none_as_dash(&p.lab), escape(&p.plate), escape(&p.reason)]),
    );
    table(
        h,
        &[
            "tube to rerun",
            "mode",
            "members",
            "lab",
            "plate",
            "well",
            "reported",
        ],
        q.reruns.first.iter().map(|x| {
            vec![
                escape(&x.tube),
                x.mode.to_owned(),
                thousands(u64::from(x.members)),
                none_as_dash(&x.lab),
                escape(&x.plate),
                escape(&x.well),
                escape(&x.reported_at),
            ]
        }),
    );
    cut_note(
        h,
        &q.reruns,
        &format!("pooltrack worklist rerun --round {}", r.round),
    );
}

fn review(h: &mut String, r: &RoundReport) {
    let c = r.review.counts;
    let _ = writeln!(
        h,
        "<h2 id=\"review\">Review flags</h2>\n<p>Discordant pools: {}; missed by pooling: {}; changed from positive: {}; tubes with conflicting rows: {}; shared single tubes: {}.</p>",
        thousands(c.discordant_pool),
        thousands(c.missed_by_pooling),
        thousands(c.changed_from_positive),
        thousands(c.conflicting_tube_rows),
        thousands(c.shared_single_tube)
    );
    table(
        h,
        &["flag", "tube", "persons", "detail"],
        r.review.flags.first.iter().map(|f| {
            vec![
                f.kind.to_owned(),
                escape(&f.tube),
                escape(&f.persons),
                format!("<span class=\"text\">{}</span>", escape(&f.detail)),
            ]
        }),
    );
    cut_note(
        h,
        &r.review.flags,
        &format!("pooltrack review --round {}", r.round),
    );
}

fn coverage(h: &mut String, r: &RoundReport) {
    h.push_str("<h2 id=\"coverage\">Coverage of the population register</h2>\n");
    let Some(c) = &r.coverage else {
        h.push_str("<p id=\"coverage-missing\" class=\"note\">The store holds no population register, so there is no coverage to show: <code>pooltrack ingest population FILE</code>, then make the report again.</p>\n");
        return;
    };
    let t = &c.totals;
    let _ = writeln!(
        h,
        "<p>{} registered, {} tested ({}), {} untested; {} tested but not registered.</p>",
        thousands(t.registered),
        thousands(t.tested),
        percent(t.share),
        thousands(t.untested),
        thousands(t.unregistered_tested)
    );
    charts::coverage(h, &t.by_district);
    let area_row = |a: &crate::coverage::Area, community: bool| {
        let mut row = vec![escape(&a.district)];
        if community {
            row.push(escape(&a.community));
        }
        row.extend([
            thousands(a.registered),
            thousands(a.tested),
            percent(a.share),
        ]);
        row
    };
    table(
        h,
        &["district", "registered", "tested", "share"],
        t.by_district.iter().map(|a| area_row(a, false)),
    );
    table(
        h,
        &["district", "community", "registered", "tested", "share"],
        t.by_community.iter().map(|a| area_row(a, true)),
    );
    let _ = writeln!(
        h,
        "<h3 id=\"untested\">Registered, not tested: {}</h3>",
        thousands(c.untested_persons.total)
    );
    table(
        h,
        &["person", "district", "community", "group"],
        c.untested_persons.first.iter().map(|p| {
            vec![
                escape(&p.person),
                none_as_dash(&p.district),
                none_as_dash(&p.community),
                none_as_dash(&p.group),
            ]
        }),
    );
    cut_note(
        h,
        &c.untested_persons,
        &format!("pooltrack worklist untested --round {}", r.round),
    );
    let _ = writeln!(
        h,
        "<h3 id=\"unregistered\">Tested, not registered: {}</h3>",
        thousands(c.unregistered_persons.total)
    );
    table(
        h,
        &["person", "tube", "site", "collected"],
        c.unregistered_persons.first.iter().map(|p| {
            vec![
                escape(&p.person),
                escape(&p.tube),
                none_as_dash(&p.site),
                escape(&p.collected_at),
            ]
        }),
    );
    cut_note(
        h,
        &c.unregistered_persons,
        &format!("pooltrack worklist unregistered --round {}", r.round),
    );
}

fn share4(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.4} %", 100.0 * v))
}

fn prevalence_table(h: &mut String, rows: &[crate::prevalence::AreaPrevalence], what: &str) {
    table(
        h,
        &[
            what,
            "tubes",
            "persons",
            "positive",
            "left out",
            "prevalence",
            "95 % interval",
            "infected persons (interval)",
        ],
        rows.iter().map(|a| {
            let interval = match (a.lower, a.upper) {
                (Some(lo), Some(hi)) => format!("{:.4} – {:.4} %", 100.0 * lo, 100.0 * hi),
                _ => "-".to_owned(),
            };
            let infected = match (a.positives, a.positives_lower, a.positives_upper) {
                (Some(p), Some(lo), Some(hi)) => format!("{p:.1} ({lo:.1} – {hi:.1})"),
                _ => "-".to_owned(),
            };
            vec![
                if a.area == crate::prevalence::ALL {
                    "whole round".to_owned()
                } else {
                    escape(&a.area)
                },
                thousands(a.tubes),
                thousands(a.persons),
                thousands(a.positive_tubes),
                thousands(a.inconclusive_tubes + a.invalid_tubes + a.tubes_without_result),
                share4(a.prevalence),
                interval,
                infected,
            ]
        }),
    );
}

fn prevalence(h: &mut String, r: &RoundReport) {
    let p = &r.prevalence;
    let _ = writeln!(
        h,
        "<h2 id=\"prevalence\">Prevalence by area</h2>\n<p>The maximum-likelihood prevalence of the round's {} first-stage tubes (their sizes mixed: a tube of k persons is negative with probability (1 − p)<sup>k</sup>), assay sensitivity {} and specificity {}, with the 95 % likelihood-ratio interval (χ² cut-off 3.841: it stays within 0 and 1 and gives an upper bound when no tube is positive). Left out: {} follow-up tubes (retests, resamples), void results of failed plates, and inconclusive and invalid tubes (the column <i>left out</i>, with tubes still without a result). <code>pooltrack prevalence --round {} --by community</code> gives finer areas and CSV, JSON or Parquet.</p>",
        thousands(p.first_stage_tubes),
        p.assay.sensitivity,
        p.assay.specificity,
        thousands(p.follow_up_tubes),
        escape(&r.round)
    );
    if let Some(rows) = &p.by_district {
        charts::prevalence(h, "prevalence-chart", rows, "district");
        prevalence_table(h, rows, "district");
    } else {
        h.push_str("<p id=\"prevalence-by-district-missing\" class=\"note\">No population register, so no prevalence by district; by lab below.</p>\n");
        charts::prevalence(h, "prevalence-chart", &p.by_lab, "lab");
    }
    h.push_str("<h3 id=\"prevalence-by-lab\">By lab</h3>\n");
    prevalence_table(h, &p.by_lab, "lab");
}

fn dilution(h: &mut String, r: &RoundReport) {
    let d = &r.dilution;
    let _ = writeln!(
        h,
        "<h2 id=\"dilution\">Dilution risk</h2>\n<p>Pooling k swabs dilutes each k-fold: a positive reads about log<sub>2</sub> k cycles later (Ct) in a k-pool. Of the round's {} first-stage single-tube positives with a Ct (cut-off {}; {}), those within log<sub>2</sub> k of the cut-off would likely have been missed in a k-pool: the measured sensitivity of a k-pool is the share of the others.</p>",
        thousands(d.single_positives),
        d.ct_cutoff,
        d.ct_read
    );
    // One row per lab, one column per pool size: the cell is the sensitivity and, in
    // brackets, the positives a k-pool would likely have missed.
    let mut sizes: Vec<u32> = d.sensitivity.iter().map(|s| s.pool_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut labs: Vec<&str> = Vec::new();
    for s in &d.sensitivity {
        if !labs.contains(&s.lab.as_str()) {
            labs.push(&s.lab);
        }
    }
    let heads: Vec<String> = sizes
        .iter()
        .map(|k| format!("{k}-pool sensitivity (missed)"))
        .collect();
    let mut head: Vec<&str> = vec!["lab", "single-tube positives"];
    head.extend(heads.iter().map(String::as_str));
    h.push_str("<div id=\"dilution-sensitivity\">");
    table(
        h,
        &head,
        labs.iter().map(|&lab| {
            let of = |k: u32| {
                d.sensitivity
                    .iter()
                    .find(|s| s.lab == lab && s.pool_size == k)
            };
            let n = sizes
                .first()
                .and_then(|&k| of(k))
                .map_or(0, |s| s.single_positives);
            let mut row = vec![escape(lab), thousands(n)];
            row.extend(sizes.iter().map(|&k| {
                of(k).map_or_else(
                    || "-".to_owned(),
                    |s| match s.sensitivity {
                        Some(v) => format!("{:.1} % ({})", 100.0 * v, thousands(s.within_log2k)),
                        None => "-".to_owned(),
                    },
                )
            }));
            row
        }),
    );
    h.push_str("</div>\n");
    let _ = writeln!(
        h,
        "<p>Positive pools whose retests found exactly one positive person: the pool's Ct minus that person's single-tube Ct, against log<sub>2</sub> k. {} positive pools: {} measured, {} with no positive retest (yet), {} with several positives, {} without a Ct.</p>",
        thousands(d.positive_pools),
        thousands(d.pools_measured),
        thousands(d.pools_none_found),
        thousands(d.pools_several_found),
        thousands(d.pools_without_ct)
    );
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    h.push_str("<div id=\"dilution-shift\">");
    table(
        h,
        &[
            "lab",
            "pool size k",
            "pools",
            "mean shift",
            "p90 shift",
            "log<sub>2</sub> k",
        ],
        d.shift.iter().map(|s| {
            vec![
                escape(&s.lab),
                s.pool_size.to_string(),
                thousands(s.pools),
                num(s.mean_shift),
                num(s.p90_shift),
                format!("{:.2}", s.expected_shift),
            ]
        }),
    );
    h.push_str("</div>\n");
}

fn health_codes(h: &mut String, r: &RoundReport) {
    let c = r.health_codes;
    h.push_str("<h2 id=\"health-codes\">Health codes</h2>\n");
    table(
        h,
        &["color", "persons"],
        [
            vec![
                "<span class=\"red\">red</span>".to_owned(),
                thousands(c.red),
            ],
            vec![
                "<span class=\"yellow\">yellow</span>".to_owned(),
                thousands(c.yellow),
            ],
            vec![
                "<span class=\"green\">green</span>".to_owned(),
                thousands(c.green),
            ],
        ],
    );
    let _ = writeln!(
        h,
        "<p class=\"note\">Yellow includes {} registered person(s) with no tube in the round{}. Pending tubes stay green: the lab's delay is not the person's.</p>",
        thousands(c.untested_yellow),
        if r.coverage.is_none() {
            " (none counted: no population register)"
        } else {
            ""
        }
    );
}

/// The codes across the store's rounds as of the report's time, by reason.
fn health_codes_across_rounds(h: &mut String, r: &RoundReport) {
    let Some(c) = &r.health_codes_across_rounds else {
        return;
    };
    h.push_str("<h2 id=\"health-codes-across-rounds\">Health codes across rounds</h2>\n");
    let _ = writeln!(
        h,
        "<p class=\"note\">Every person of every round of the store and the register, as of {}: <span class=\"red\">{} red</span>, <span class=\"yellow\">{} yellow</span>, <span class=\"green\">{} green</span> (<code>pooltrack export health-codes --as-of</code> lists them).</p>",
        escape(&r.as_of),
        thousands(c.red),
        thousands(c.yellow),
        thousands(c.green)
    );
    table(
        h,
        &["reason", "persons"],
        c.by_reason
            .iter()
            .map(|(reason, n)| vec![escape(reason), thousands(*n)]),
    );
}
