//! `pooltrack report --round ROUND --out DIR [--as-of TIME]`

use std::path::{Path, PathBuf};

use pooltrack::round_report::RoundReport;
use pooltrack::store::Store;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes DIR/index.html, one self-contained page (inline CSS and SVG charts, no script,
no font or link to anywhere: it opens offline and prints), and DIR/report.json with the
same figures for other systems. The page holds:
  - headline numbers, persons by status and tubes by result;
  - progress: the share of collected tubes with a result, hour by hour, against the
    pool deadline (24 h by default, deadlines.pool_hours in STORE/pooltrack.toml);
  - turnaround: a histogram by hour, median/p90/p99 for the round and each lab, the
    tubes past their deadline, each positive pool's recall delay;
  - plate QC: failed plates with the reason, tubes to rerun;
  - review flags: discordant pools, missed by pooling, changed from positive;
  - coverage of the population register by district (chart) and community, untested
    and unregistered persons (skipped, with a note, when no register was ingested);
  - prevalence by district (chart of each estimate on its 95 % likelihood-ratio
    interval; by lab when no register was ingested) and by lab, from the round's
    first-stage tubes (pooltrack prevalence explains what counts);
  - dilution risk: the measured sensitivity of 5-, 10- and 20-pools from the single-tube
    positives' Ct values, and the Ct shift of positive pools (pooltrack dilution);
  - health codes: red, yellow (untested registered persons count yellow), green.
Long lists keep their first 100 rows beside their total; the worklist commands give
them whole. Files are readable by the owner only.

Example:
  pooltrack report --round 2022-04-02 --out report-0402/ --as-of \"2022-04-03 09:00:00\"")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// The folder to write index.html and report.json in (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// "Now" for tubes still waiting: RFC 3339, or YYYY-MM-DD HH:MM[:SS] (or with '/',
    /// as Excel writes it) in the store's time zone (default: the round's last result,
    /// else its last collection; the time used is printed).
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let given = super::as_of(&store, args.as_of.as_deref())?;
    let (report, at, basis) = RoundReport::build_as_of(&store, &args.round, given)?;
    if basis != pooltrack::turnaround::AsOf::Given {
        eprintln!(
            "pooltrack: note: waiting measured {}",
            super::as_of_words(at, basis, store.zone())
        );
    }
    for note in &report.notes {
        eprintln!("pooltrack: note: {note}");
    }
    let (page, json) = report.write(&args.out)?;
    println!("{}", page.display());
    println!("{}", json.display());
    let t = &report.turnaround;
    println!(
        "round {}: {} persons in {} tubes; median turnaround {} min, {} tube(s) past deadline; {} failed plate(s); {} review flag(s); coverage {}; prevalence {}",
        report.round,
        report.counts.persons,
        report.counts.tubes,
        t.round_stats
            .median_minutes
            .map_or_else(|| "-".to_owned(), |m| format!("{m:.0}")),
        t.late_tubes.total,
        report.plate_qc.failed_plates.len(),
        report.review.flags.total,
        report.coverage.as_ref().map_or_else(
            || "not measured (no register)".to_owned(),
            |c| format!("{:.1} %", 100.0 * c.totals.share)
        ),
        report.prevalence.by_lab.first().map_or_else(
            || "-".to_owned(),
            |a| match (a.prevalence, a.lower, a.upper) {
                (Some(p), Some(lo), Some(hi)) => format!(
                    "{:.4} % (95 % interval {:.4} – {:.4} %)",
                    100.0 * p,
                    100.0 * lo,
                    100.0 * hi
                ),
                _ => "- (no tube with a result)".to_owned(),
            }
        )
    );
    Ok(())
}
