//! `pooltrack turnaround --round ROUND [--json] [--as-of TIME] [--pool-deadline-hours H]
//! [--single-deadline-hours H]`

use std::io::Write as _;
use std::path::Path;

use pooltrack::store::Store;
use pooltrack::tracker::Statuses;
use pooltrack::turnaround::{self, Deadlines, Stats, Turnaround};

/// Late tubes and recall delays listed in the human report (JSON lists all).
const LISTED: usize = 10;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Turnaround is the first counted result's reported_at minus the tube's earliest
collected_at. Percentiles are nearest-rank (the value at rank ceil(p*n/100), an observed
turnaround). A tube is late when its first result came after its deadline, or when it
still has no result at --as-of and the deadline has passed. A positive pool's recall
delay runs from its first positive report to the first `worklist recall` run of the
round that started after that result's batch was committed (runs are logged in
STORE/logs/recall-runs.jsonl); \"not yet run\" shows the minutes waited until --as-of.
Progress: for each hour since the round's first collection, the tubes collected by
then and the share of them with a result by then.")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// Print JSON (every late tube and recall delay, the hourly histogram).
    #[arg(long)]
    json: bool,
    /// "Now" for tubes still waiting: RFC 3339, or YYYY-MM-DD HH:MM[:SS] (or with '/',
    /// as Excel writes it) in the store's time zone (default: the round's last result,
    /// else its last collection; the time used is printed).
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Deadline of a pool tube, hours (default: deadlines.pool_hours in STORE/pooltrack.toml, else 24).
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    pool_deadline_hours: Option<f64>,
    /// Deadline of a single tube, hours (default: deadlines.single_hours in STORE/pooltrack.toml, else 6).
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    single_deadline_hours: Option<f64>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let configured = store.config()?.deadlines;
    let deadlines = Deadlines {
        pool_hours: args.pool_deadline_hours.unwrap_or(configured.pool_hours),
        single_hours: args
            .single_deadline_hours
            .unwrap_or(configured.single_hours),
    }
    .check()?;
    let given = super::as_of(&store, args.as_of.as_deref())?;
    let round = Statuses::load(&store, &args.round)?;
    let (as_of, basis) = match given {
        Some(t) => (t, turnaround::AsOf::Given),
        None => turnaround::round_as_of(&round),
    };
    let as_of_words = super::as_of_words(as_of, basis, store.zone());
    let log = turnaround::recall_runs(&store, &args.round)?;
    for why in &log.skipped {
        eprintln!("pooltrack: warning: skipped a malformed recall-run log line: {why}");
    }
    // The screen shows the first few; JSON lists every one.
    let listed = if args.json { usize::MAX } else { LISTED };
    let t = Turnaround::compute(&store, &round, deadlines, &log.runs, as_of, listed)?;
    if args.json {
        if basis != turnaround::AsOf::Given {
            eprintln!("pooltrack: note: {as_of_words}");
        }
        // Streamed: a city's late tubes make 200 MB of JSON.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &t).map_err(std::io::Error::from)?;
        writeln!(out)?;
        out.flush()?;
    } else {
        print(&t, &as_of_words);
    }
    Ok(())
}

fn minutes(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |m| format!("{m:.0}"))
}

fn stats_line(name: &str, s: &Stats) -> String {
    format!(
        "{name:<16}{:>10}{:>10}{:>10}{:>10}{:>8}",
        s.tubes,
        minutes(s.median_minutes),
        minutes(s.p90_minutes),
        minutes(s.p99_minutes),
        s.reported_late
    )
}

fn print(t: &Turnaround, as_of: &str) {
    println!(
        "round {}: {} tubes, first collection {}, {as_of}",
        t.round,
        t.tubes,
        t.first_collection.as_deref().unwrap_or("-"),
    );
    println!(
        "deadlines: pool {} h, single {} h",
        t.deadlines.pool_hours, t.deadlines.single_hours
    );
    println!(
        "turnaround, minutes\n{:<16}{:>10}{:>10}{:>10}{:>10}{:>8}",
        "", "tubes", "median", "p90", "p99", "late"
    );
    println!("{}", stats_line("round", &t.round_stats));
    for l in &t.by_lab {
        let name = if l.lab.is_empty() { "(no lab)" } else { &l.lab };
        println!("{}", stats_line(&format!("lab {name}"), &l.stats));
    }
    if t.in_lab.tubes > 0 {
        println!(
            "with received_at ({} tubes): transport median {} min, in the lab median {} min",
            t.in_lab.tubes,
            minutes(t.transport.median_minutes),
            minutes(t.in_lab.median_minutes)
        );
        for l in t.by_lab.iter().filter(|l| l.in_lab.tubes > 0) {
            let name = if l.lab.is_empty() { "(no lab)" } else { &l.lab };
            println!("{}", stats_line(&format!("in lab {name}"), &l.in_lab));
        }
    }
    let c = &t.late_counts;
    println!(
        "late tubes: {} (pools: {} reported late, {} still waiting; single: {} reported late, {} still waiting)",
        t.late_total,
        c.pool_reported_late,
        c.pool_waiting,
        c.single_reported_late,
        c.single_waiting
    );
    for l in t.late.iter().take(LISTED) {
        println!(
            "  {} {} collected {}, due {}, {} ({:.0} min late)",
            l.tube,
            l.mode,
            l.collected_at,
            l.due_at,
            l.reported_at
                .map_or("no result yet".to_owned(), |r| format!("reported {r}")),
            l.minutes_late
        );
    }
    if t.late_total > LISTED as u64 {
        println!(
            "  ... and {} more (--json lists all)",
            t.late_total - LISTED as u64
        );
    }
    let points: Vec<String> = t
        .progress
        .iter()
        .map(|p| format!("{}h {:.0}%", p.hour, 100.0 * p.share))
        .collect();
    println!("progress (share of collected tubes with a result, by hour):");
    for chunk in points.chunks(8) {
        println!("  {}", chunk.join("  "));
    }
    println!("recall delays of positive pools: {}", t.recall_delays_total);
    for r in t.recall_delays.iter().take(LISTED) {
        match &r.recall_run_at {
            Some(run) => println!(
                "  {} reported {}, recall run {}: {:.0} min",
                r.tube, r.reported_at, run, r.minutes
            ),
            None => println!(
                "  {} reported {}, recall not yet run: waiting {:.0} min",
                r.tube, r.reported_at, r.minutes
            ),
        }
    }
    if t.recall_delays_total > LISTED as u64 {
        println!(
            "  ... and {} more (--json lists all)",
            t.recall_delays_total - LISTED as u64
        );
    }
}
