//! `pooltrack status --round ROUND [--person ID]`

use std::path::Path;

use anyhow::bail;
use pooltrack::report::{self, PersonReport, RoundCounts};
use pooltrack::store::Store;
use pooltrack::tracker::Decided;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Statuses, in order of precedence: positive (a single tube positive), recall (a pool
positive or inconclusive, not cleared by a later negative single tube), retest_pending
(recalled, retest collected, no result yet), resample (a tube invalid, a single tube
inconclusive, or a tube whose every result came more than the specimen limit, 48 h by
default, after its first swab), pending (a tube without result), negative. A result past
the specimen limit does not count; --person says so beside it.

Without --round, --person ID shows the person's history over every round of the store
(each round: their status as of the time, tubes and results) and their health code
across rounds as of --as-of (default now), decided as `export health-codes` without
--round decides it:
  pooltrack status --person 310000000000000012 --as-of '2022-04-04 08:00' [--json]")]
pub struct Args {
    /// The round (without it, with --person: the person's history over every round).
    #[arg(long, required_unless_present = "person")]
    round: Option<String>,
    /// Without --round: the time the person's health code is decided at (RFC 3339 or a
    /// local time in the store's zone); default now.
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with = "round",
        requires = "person"
    )]
    as_of: Option<String>,
    /// Show one person's status with every tube and result behind it.
    #[arg(long)]
    person: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    // One person reads a few files of the store, in one round or across them: those
    // are checked as they are read (on a lab's day, checking all of them was most of
    // the time).
    let store = if args.person.is_some() {
        Store::open_for_lookups(store)?
    } else {
        Store::open(store)?
    };
    let Some(round) = &args.round else {
        let person = args.person.as_deref().unwrap_or_default().trim_ascii();
        return super::health_codes_as_of::person_history(
            &store,
            person,
            args.as_of.as_deref(),
            args.json,
        );
    };
    match &args.person {
        None => {
            let round = Decided::load(&store, round)?;
            let r = report::round_report(&round);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_round(&r);
            }
        }
        Some(person) => {
            // Ingest trims the spaces around a field: so does the look-up.
            let person = person.trim_ascii();
            let Some(r) = report::person_report(&store, round, person)? else {
                bail!("person {person:?} has no tube in round {round}");
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_person(&r);
            }
        }
    }
    Ok(())
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

fn print_round(r: &RoundCounts) {
    let c = &r.counts;
    println!(
        "round {}: {} persons in {} tubes ({} pools, {} single)",
        r.round, c.persons, c.tubes, c.pool_tubes, c.single_tubes
    );
    println!("{:<16}{:>12}{:>10}", "status", "persons", "share");
    for (s, n) in &c.by_status {
        println!("{:<16}{:>12}{:>9.2}%", s.as_str(), n, pct(*n, c.persons));
    }
    let results: Vec<String> = c
        .tubes_by_result
        .iter()
        .map(|(o, n)| format!("{} {n}", o.as_str()))
        .collect();
    println!(
        "tubes with a result: {} of {} ({})",
        c.tubes_with_result,
        c.tubes,
        results.join(", ")
    );
    println!(
        "flags: {} overfull pool(s), {} positive(s) kept against a later result",
        c.overfull_pools, c.positives_kept
    );
    if c.tubes_to_rerun > 0 {
        println!(
            "plate QC: {} tube(s) await a rerun because their plate failed (pooltrack worklist rerun)",
            c.tubes_to_rerun
        );
    }
    if c.tubes_past_limit > 0 {
        println!(
            "specimen limit: {} tube(s) were tested only past the {} h limit after their first swab; no result of theirs counts and their persons need a resample (pooltrack worklist resample)",
            c.tubes_past_limit, r.specimen_limit_hours
        );
    }
}

fn ct(v: Option<f32>) -> String {
    v.map_or("-".to_owned(), |c| format!("{c:.2}"))
}

fn print_person(r: &PersonReport) {
    println!(
        "person {} in round {}: {}",
        r.person,
        r.round,
        r.status.as_str()
    );
    let d = &r.decided_by;
    let result = if d.result.is_empty() {
        "no result yet".to_owned()
    } else if d.not_counted.is_empty() {
        d.result.clone()
    } else {
        format!("{}, which does not count: {}", d.result, d.not_counted)
    };
    println!(
        "decided by {} tube {} ({result}), collected {} at site {}",
        d.mode,
        d.tube,
        d.collected_at,
        if d.site.is_empty() { "-" } else { &d.site }
    );
    println!("tubes:");
    for t in &r.tubes {
        println!(
            "  {} {} ({} of capacity {}), collected {}, site {}, result {}{}  [batch {}, {} line {}]",
            t.tube,
            t.mode,
            t.members,
            t.capacity,
            t.collected_at,
            if t.site.is_empty() { "-" } else { &t.site },
            match (&t.not_counted, t.result.is_empty()) {
                (Some(why), _) => format!("none that counts ({why})"),
                (None, true) => "none yet".to_owned(),
                (None, false) => t.result.clone(),
            },
            if t.positive_kept {
                " (positive kept against a later result: review)"
            } else {
                ""
            },
            t.batch,
            t.source,
            t.line
        );
        for x in &t.results {
            if let Some(why) = &x.void {
                println!("      void, does not count: {why}");
            }
            if let Some(why) = &x.past_limit {
                println!("      does not count: {why}");
            }
            println!(
                "      {}{} ORF1ab {} N {} reported {} lab {} plate {} well {}  [batch {}, {} line {}]",
                x.result,
                if x.effective { " (effective)" } else { "" },
                ct(x.ct_orf1ab),
                ct(x.ct_n),
                x.reported_at,
                dash(&x.lab),
                dash(&x.plate),
                dash(&x.well),
                x.batch,
                x.source,
                x.line
            );
        }
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
