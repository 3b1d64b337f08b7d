//! The terminal report: one section per question, tables aligned for a fixed-width
//! terminal, every verdict on the section's first line so a reader can skim.
//!
//! One job: the report as terminal text. Its sections share the table layout and the
//! verdict, hour and day wording, so they stay in one file (over 600 lines for that).

use std::fmt::Write as _;

use super::advisor::{Advice, Standing};
use super::capacity::{CapacityReport, StageKind};
use super::numbers::{thousands, thousands_f};
use super::projection::Projection;
use super::{Assessment, MeasuredAssessment, PoolFix, Report};

/// A plain text table: a header row, rows, and which columns are numbers (right-aligned).
struct Table {
    header: Vec<&'static str>,
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[(&'static str, bool)]) -> Table {
        Table {
            header: header.iter().map(|h| h.0).collect(),
            numeric: header.iter().map(|h| h.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let cols = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
            let mut s = String::from(" ");
            for (i, c) in cells.enumerate().take(cols) {
                let pad = width[i].saturating_sub(c.chars().count());
                s.push(' ');
                if self.numeric[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                }
                s.push(' ');
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut self.header.iter().copied(), out);
        for r in &self.rows {
            line(&mut r.iter().map(String::as_str), out);
        }
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "never".to_owned(), |h| format!("{h:.2} h"))
}

fn pct(x: f64) -> String {
    format!("{:.3} %", x * 100.0)
}

fn day_label(day: i64, date: Option<super::calendar::Date>) -> String {
    match date {
        Some(d) => format!("day {day} ({d})"),
        None => format!("day {day}"),
    }
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.plan;
    let _ = writeln!(
        out,
        "plan {:?}: {} people in {} zone(s), {} lab(s), round deadline {} h",
        p.name,
        thousands(p.people),
        p.zones,
        p.labs,
        p.deadline_hours
    );
    let a = &report.planned;
    let measured_pass = report.measured.as_ref().map(|m| m.assessment.capacity.pass);
    let _ = writeln!(
        out,
        "verdict: {} (round capacity {}, sampling {}, reagent reserve {}{})",
        verdict(report.pass),
        verdict(a.capacity.pass),
        verdict(report.sampling.pass),
        verdict(a.reagents.pass),
        measured_pass.map_or(String::new(), |m| format!(", measured labs {}", verdict(m)))
    );
    if !report.warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        for w in &report.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out.push('\n');
    capacity_section(&mut out, "1. Round capacity", a);
    out.push('\n');
    sampling_section(&mut out, report);
    out.push('\n');
    reserve_section(&mut out, a);
    out.push('\n');
    projection_section(&mut out, &a.projection);
    let mut next = 5;
    if let Some(m) = &report.measured {
        out.push('\n');
        measured_section(&mut out, m, report);
        next += 1;
    }
    out.push('\n');
    advice_section(&mut out, &format!("{next}. Pool design"), &report.advice);
    if let Some(a) = report.measured.as_ref().and_then(|m| m.advice.as_ref()) {
        out.push('\n');
        advice_section(
            &mut out,
            &format!(
                "{}. Pool design with the measured pool sensitivities",
                next + 1
            ),
            a,
        );
    }
    out
}

fn capacity_line(c: &CapacityReport) -> String {
    let load = c.load_phrase();
    let spare = c.margin_phrase();
    let timing = match c.hours_needed {
        Some(h) if c.pass => format!("counting whole runs, the last one needed ends at {h:.2} h"),
        Some(h) => format!("counting whole runs, the round needs {h:.2} h"),
        None => "the labs never finish it".to_owned(),
    };
    format!(
        "{}: the labs finish {} tubes within {} h, the round has {} ({load}{spare}); {timing}",
        verdict(c.pass),
        thousands(c.within_deadline),
        c.deadline_hours,
        thousands(c.demand),
    )
}

fn capacity_section(out: &mut String, title: &str, a: &Assessment) {
    let c = &a.capacity;
    let d = &a.demand;
    let _ = writeln!(out, "{title}: {}", capacity_line(c));
    let mut t = Table::new(&[
        ("zone", false),
        ("people", true),
        ("sampling", false),
        ("prevalence", true),
        ("pool tubes", true),
        ("single tubes", true),
        ("positive pools", true),
        ("retests", true),
        ("tests/person", true),
    ]);
    for g in &d.groups {
        t.row(vec![
            g.group.name.clone(),
            thousands(g.group.people),
            g.group.tubing.label(),
            pct(g.group.prevalence),
            thousands(g.pool_tubes),
            thousands(g.single_tubes),
            thousands_f(g.positive_pools),
            thousands_f(g.retests),
            format!("{:.4}", g.tests_per_person),
        ]);
    }
    t.row(vec![
        "total".into(),
        thousands(d.people),
        String::new(),
        pct(d.mean_prevalence()),
        thousands(d.pool_tubes),
        thousands(d.single_tubes),
        thousands_f(d.positive_pools),
        thousands(d.retests),
        String::new(),
    ]);
    t.render(out);
    let _ = writeln!(
        out,
        "  a round: {} first-stage tubes + {} expected retests = {} tubes to test",
        thousands(d.first_stage_tubes),
        thousands(d.retests),
        thousands(d.tubes)
    );
    let mut t = Table::new(&[
        ("stage", false),
        ("instruments", true),
        ("per staffed day", true),
        ("within deadline", true),
        ("round tubes", true),
        ("load", true),
        ("hours alone", true),
    ]);
    for s in &c.stages {
        t.row(vec![
            s.stage.as_str().to_owned(),
            thousands(s.instruments),
            thousands(s.per_day),
            thousands(s.within_deadline),
            thousands(s.demand),
            if s.utilisation.is_finite() {
                format!("{:.0} %", s.utilisation * 100.0)
            } else {
                "-".to_owned()
            },
            hours(s.hours_needed),
        ]);
    }
    t.render(out);
    let stage_names: Vec<StageKind> = c.stages.iter().map(|s| s.stage).collect();
    let mut header: Vec<(&'static str, bool)> = vec![("lab", false), ("staffed h", true)];
    for k in &stage_names {
        header.push((
            match k {
                StageKind::Extraction => "extraction/day",
                StageKind::Pcr => "pcr/day",
                StageKind::Observed => "observed/day",
            },
            true,
        ));
    }
    header.push(("lab/day", true));
    header.push(("limited by", false));
    let mut t = Table::new(&header);
    for l in &c.labs {
        let mut row = vec![l.name.clone(), format!("{}", l.staffed_hours)];
        for k in &stage_names {
            row.push(
                l.stages
                    .iter()
                    .find(|(s, _)| s == k)
                    .map_or_else(|| "-".to_owned(), |(_, n)| thousands(*n)),
            );
        }
        row.push(thousands(l.per_day));
        row.push(l.bottleneck.map_or("-", StageKind::as_str).to_owned());
        t.row(row);
    }
    t.render(out);
    if let Some(b) = c.bottleneck {
        let _ = writeln!(
            out,
            "  bottleneck stage: {}; the labs finish {} tubes within {} h ({} per staffed day)",
            b.as_str(),
            thousands(c.within_deadline),
            c.deadline_hours,
            thousands(c.per_day)
        );
    }
    if let Some(fix) = &c.instruments_to_pass {
        if fix.possible {
            let per_stage: Vec<String> = fix
                .by_stage
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            let _ = writeln!(
                out,
                "  to pass: add {} instrument(s), the fewest by a greedy search:",
                per_stage.join(" and ")
            );
            for (lab, adds) in group_by_lab(&fix.additions) {
                let _ = writeln!(out, "    {lab}: {}", adds.join(", "));
            }
        } else {
            out.push_str(
                "  to pass: no number of instruments of the kinds in the plan is enough (runs longer than the staffed day?)\n",
            );
        }
    }
    if let Some(PoolFix {
        pool_size,
        tubes,
        hours_needed,
    }) = &a.pool_fix
    {
        match (pool_size, tubes) {
            (Some(k), Some(t)) => {
                let _ = writeln!(
                    out,
                    "  or: pool every pooled zone {k}:1: {} tubes, done in {}",
                    thousands(*t),
                    hours(*hours_needed)
                );
            }
            _ => out.push_str(
                "  no validated pool size (5, 10, 20) in the pooled zones would fit the round\n",
            ),
        }
    }
}

/// Additions grouped by lab, in the order labs first appear.
fn group_by_lab(adds: &[super::capacity::Addition]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for a in adds {
        let item = format!("+{} {}", a.add, a.stage.as_str());
        match out.iter_mut().find(|(l, _)| *l == a.lab) {
            Some((_, v)) => v.push(item),
            None => out.push((a.lab.clone(), vec![item])),
        }
    }
    out
}

fn sampling_section(out: &mut String, report: &Report) {
    let s = &report.sampling;
    let stated = s.needs.iter().any(|n| n.planned.is_some());
    let _ = writeln!(
        out,
        "2. Sampling: {} for {} people",
        if stated {
            verdict(s.pass)
        } else {
            "the plan states no resources"
        },
        thousands(s.people)
    );
    let mut t = Table::new(&[
        ("", false),
        ("needed", true),
        ("planned", true),
        ("short by", true),
    ]);
    for n in &s.needs {
        t.row(vec![
            n.what.to_owned(),
            thousands(n.needed),
            n.planned.map_or_else(|| "-".to_owned(), thousands),
            thousands(n.short_by),
        ]);
    }
    t.render(out);
}

fn reserve_section(out: &mut String, a: &Assessment) {
    let r = &a.reagents;
    let _ = writeln!(
        out,
        "3. Reagent reserve: {}: {:.2} rounds physical + {:.2} confirmed = {:.2} rounds (rule: {}, of which {} physical)",
        verdict(r.pass),
        r.rounds_physical,
        r.rounds_confirmed,
        r.rounds_total,
        r.required_rounds,
        r.required_physical_rounds
    );
    let _ = writeln!(
        out,
        "  {} tests a round; {} on hand, {} under confirmed contracts, {} unconfirmed ({:.2} rounds, not counted)",
        thousands(r.tests_per_round),
        thousands(r.physical_tests),
        thousands(r.confirmed_tests),
        thousands(r.unconfirmed_tests),
        r.rounds_unconfirmed
    );
    if r.shortfall_tests > 0 {
        let _ = writeln!(
            out,
            "  shortfall: {} tests ({} kits of {}): {} to buy physically + {} bought or under a confirmed contract",
            thousands(r.shortfall_tests),
            thousands(r.shortfall_kits),
            r.kit_size,
            thousands(r.shortfall_physical_tests),
            thousands(r.shortfall_other_tests)
        );
    }
    let mut t = Table::new(&[
        ("item", false),
        ("per round", true),
        ("stock", true),
        ("rounds", true),
    ]);
    for c in &r.consumables {
        t.row(vec![
            c.item.replace('_', " "),
            thousands(c.per_round),
            c.stock.map_or_else(|| "-".to_owned(), thousands),
            c.rounds
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}")),
        ]);
    }
    t.render(out);
}

fn projection_section(out: &mut String, p: &Projection) {
    let start = p.start.map_or_else(String::new, |s| format!(" from {s}"));
    let rounds: Vec<String> = p.full_round_days.iter().map(u32::to_string).collect();
    let _ = writeln!(
        out,
        "4. Projection over {} days{start}: full rounds on {}; {} tests used",
        p.horizon_days,
        if rounds.is_empty() {
            "no day".to_owned()
        } else {
            format!("day(s) {}", rounds.join(", "))
        },
        thousands_f(p.tests_used)
    );
    let date_of = |d: u32| p.days.get(d as usize).and_then(|x| x.date);
    let per_round = super::numbers::f(p.tests_per_round.max(1));
    let crossing = |what: &str, line: f64, day: Option<u32>| {
        let rounds = format!("{} rounds ({} tests)", line / per_round, thousands_f(line));
        match day {
            Some(0) => format!("  {what} is already under {rounds}\n"),
            Some(d) => format!(
                "  {what} falls under {rounds} on {}\n",
                day_label(i64::from(d), date_of(d))
            ),
            None => format!(
                "  {what} stays at or above {rounds} through day {}\n",
                p.horizon_days
            ),
        }
    };
    out.push_str(&crossing(
        "physical stock",
        p.physical_line,
        p.physical_under_day,
    ));
    out.push_str(&crossing(
        "physical + confirmed stock",
        p.total_line,
        p.total_under_day,
    ));
    if let Some(d) = p.total_out_day {
        let _ = writeln!(
            out,
            "  reagent runs out on {}",
            day_label(i64::from(d), date_of(d))
        );
    }
    match &p.order {
        Some(o) => {
            let when = if o.late_by_days > 0 {
                format!(
                    "order today: {} day(s) late for delivery by {}",
                    o.late_by_days,
                    day_label(i64::from(o.due_day), o.due_date)
                )
            } else {
                format!(
                    "order by {}, for delivery by {}",
                    day_label(o.order_by_day, o.order_by_date),
                    day_label(i64::from(o.due_day), o.due_date)
                )
            };
            let _ = writeln!(
                out,
                "  {when}: {} tests ({} kits),\n    {} to buy physically + {} bought or under a confirmed contract, to hold the reserve through day {}",
                thousands(o.tests),
                thousands(o.kits),
                thousands(o.physical_tests),
                thousands(o.other_tests),
                p.horizon_days
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  no reagent order needed within {} days",
                p.horizon_days
            );
        }
    }
    for c in &p.consumables {
        let item = c.item.replace('_', " ");
        match (c.runs_out_day, c.order_by_day) {
            (Some(d), Some(by)) => {
                let _ = writeln!(
                    out,
                    "  {item} run out on {}: order {} by {}",
                    day_label(i64::from(d), c.runs_out_date),
                    thousands(c.order_quantity),
                    day_label(by, c.order_by_date)
                );
            }
            _ => {
                let _ = writeln!(out, "  {item} last the {} days", p.horizon_days);
            }
        }
    }
    let t_round = p.tests_per_round.max(1);
    let mut t = Table::new(&[
        ("day", true),
        ("date", false),
        ("round", false),
        ("tests used", true),
        ("physical", true),
        ("total", true),
        ("rounds phys/total", true),
    ]);
    let marks = [p.physical_under_day, p.total_under_day, p.total_out_day];
    for d in &p.days {
        let shown =
            d.day == 0 || d.full_round || marks.contains(&Some(d.day)) || d.day == p.horizon_days;
        if !shown {
            continue;
        }
        t.row(vec![
            d.day.to_string(),
            d.date.map_or_else(|| "-".to_owned(), |x| x.to_string()),
            if d.full_round { "full" } else { "" }.to_owned(),
            thousands_f(d.used.tests),
            thousands_f(d.physical),
            thousands_f(d.total),
            format!(
                "{:.2} / {:.2}",
                d.physical / super::numbers::f(t_round),
                d.total / super::numbers::f(t_round)
            ),
        ]);
    }
    t.render(out);
    out.push_str(
        "  (day 0, full-round days, line crossings and the last day; --json lists every day)\n",
    );
}

fn measured_section(out: &mut String, ma: &MeasuredAssessment, report: &Report) {
    let m = &ma.measured;
    let a = &ma.assessment;
    let _ = writeln!(
        out,
        "5. Measured: round {} — {} persons in {} tubes: {} pool tubes, {} single tubes ({} first-stage, {} retests)",
        m.round,
        thousands(m.persons),
        thousands(m.tubes),
        thousands(m.pool_tubes),
        thousands(m.single_tubes),
        thousands(m.first_stage_single_tubes),
        thousands(m.retest_tubes)
    );
    let caps: Vec<String> = m
        .pool_capacities
        .iter()
        .map(|(k, n)| format!("{} of {k}", thousands(*n)))
        .collect();
    let _ = writeln!(
        out,
        "  pools hold {:.2} people on average (capacities: {}); {:.1} % of first-stage samples pooled",
        m.mean_pool_fill,
        if caps.is_empty() {
            "-".to_owned()
        } else {
            caps.join(", ")
        },
        m.pooled_share * 100.0
    );
    let _ = writeln!(
        out,
        "  pool positivity {} ({} positive, {} inconclusive of {} with a result): implied prevalence {} (the plan assumes {})",
        pct(m.pool_positivity),
        thousands(m.positive_pools),
        thousands(m.inconclusive_pools),
        thousands(m.pools_with_result),
        pct(m.implied_prevalence),
        pct(report.planned.demand.mean_prevalence())
    );
    let mut t = Table::new(&[
        ("lab", false),
        ("results", true),
        ("first report", false),
        ("last report", false),
        ("span h", true),
        ("active h", true),
        ("worked h", true),
        ("tubes/h", true),
        ("tubes/day", true),
        ("plan/day", true),
    ]);
    for l in &m.labs {
        let planned = report
            .planned
            .capacity
            .labs
            .iter()
            .find(|p| p.name == l.name)
            .map_or_else(|| "-".to_owned(), |p| thousands(p.per_day));
        t.row(vec![
            l.name.clone(),
            thousands(l.results),
            l.first_report.clone(),
            l.last_report.clone(),
            format!("{:.2}", l.span_hours),
            l.active_hours.to_string(),
            format!("{:.2}", l.working_hours),
            l.tubes_per_hour.map_or_else(|| "-".to_owned(), thousands_f),
            l.tubes_per_day.map_or_else(|| "-".to_owned(), thousands),
            planned,
        ]);
    }
    t.render(out);
    let c = &a.capacity;
    let _ = writeln!(
        out,
        "  a full round of {} people as measured: {} tubes ({} retests); the measured labs finish {} within {} h",
        thousands(a.demand.people),
        thousands(a.demand.tubes),
        thousands(a.demand.retests),
        thousands(c.within_deadline),
        c.deadline_hours
    );
    let _ = writeln!(out, "  measured labs: {}", capacity_line(c));
    if !c.pass {
        match ma.throughput_needed {
            Some(k) => {
                let _ = writeln!(
                    out,
                    "  to pass, the measured labs would need {k:.2}× the throughput they showed"
                );
            }
            None => out.push_str("  no lab's throughput could be measured\n"),
        }
    }
    let r = &a.reagents;
    let _ = writeln!(
        out,
        "  reserve at {} tests a round: {}: {:.2} rounds physical, {:.2} in all",
        thousands(r.tests_per_round),
        verdict(r.pass),
        r.rounds_physical,
        r.rounds_total
    );
    if let Some(o) = &a.projection.order {
        let _ = writeln!(
            out,
            "  order by {}: {} tests ({} kits)",
            day_label(o.order_by_day, o.order_by_date),
            thousands(o.tests),
            thousands(o.kits)
        );
    }
}

fn advice_section(out: &mut String, title: &str, a: &Advice) {
    let recommended = a.zones.iter().filter(|z| z.recommended.is_some()).count();
    let _ = writeln!(
        out,
        "{title}: a scheme recommended for {recommended} of {} zone(s): the fewest tests that find at least {:.1} % of the infected and let the round finish within {} h",
        a.zones.len(),
        a.sensitivity_floor * 100.0,
        a.deadline_hours
    );
    if a.perfect_test {
        out.push_str(
            "  the plan states no [assay], so the test is taken as perfect: every scheme finds every infected\n  person and the schemes differ in tests and hours only; give the kit's figures in [assay]\n",
        );
    } else {
        let mut t = Table::new(&[
            ("tube of", true),
            ("sensitivity", true),
            ("specificity", true),
            ("sensitivity from", false),
        ]);
        for x in &a.accuracy {
            t.row(vec![
                format!("{}", x.tube_size),
                format!("{:.2} %", x.sensitivity * 100.0),
                format!("{:.3} %", x.specificity * 100.0),
                x.source.clone(),
            ]);
        }
        t.render(out);
    }
    match a.stage_hours {
        Some(h) => {
            let _ = writeln!(
                out,
                "  a stage takes {h:.2} h in the lab (the slowest extraction + PCR run pair), {} h between stages (recall, new swabs, transport)",
                a.recall_hours
            );
        }
        None => out.push_str("  no lab finishes a tube, so no stage has a duration\n"),
    }
    for z in &a.zones {
        let _ = writeln!(
            out,
            "  zone {:?} ({} people, prevalence {}, now {}): {}",
            z.zone,
            thousands(z.people),
            pct(z.prevalence),
            z.now,
            z.why
        );
        let mut t = Table::new(&[
            ("", false),
            ("scheme", false),
            ("tests/person", true),
            ("stages", true),
            ("result h", true),
            ("last h", true),
            ("sensitivity", true),
            ("specificity", true),
            ("missed/M", true),
            ("false+/M", true),
            ("round tubes", true),
            ("deadline", false),
            ("reserve", true),
            ("", false),
        ]);
        for o in &z.options {
            let hours = |h: Option<f64>| h.map_or_else(|| "-".to_owned(), |h| format!("{h:.1}"));
            t.row(vec![
                if o.standing == Standing::Recommended {
                    "*"
                } else {
                    ""
                }
                .to_owned(),
                if o.now {
                    format!("{} (now)", o.scheme)
                } else {
                    o.scheme.clone()
                },
                format!("{:.4}", o.tests_per_person),
                format!("{:.2}", o.stages_per_person),
                hours(o.hours_to_result),
                hours(o.hours_to_last_result),
                format!("{:.2} %", o.sensitivity * 100.0),
                format!("{:.3} %", o.specificity * 100.0),
                thousands_f(o.missed_per_million),
                thousands_f(o.false_positives_per_million),
                thousands(o.round_tubes),
                verdict(o.capacity_pass).to_owned(),
                format!("{:.2}", o.rounds_total),
                o.standing.as_str().to_owned(),
            ]);
        }
        t.render(out);
    }
    let g = &a.together;
    let _ = writeln!(
        out,
        "  every zone on its recommendation: {} tubes a round (the plan's {}): capacity {}{}, reserve {:.2} rounds ({:.2} physical) {}",
        thousands(g.round_tubes),
        thousands(g.planned_tubes),
        verdict(g.capacity_pass),
        g.hours_needed
            .map_or_else(String::new, |h| format!(" (the labs need {h:.2} h)")),
        g.rounds_total,
        g.rounds_physical,
        verdict(g.reserve_pass)
    );
    out.push_str(
        "  (* recommended; missed/M and false+/M per million people tested; result h: expected hours to a final\n   result, last h: through every stage; reserve: rounds on hand and confirmed; --json has every figure)\n",
    );
}
