//! Command-line parsing: the argument structs validate; each subcommand's `run` builds
//! what it needs from them.

pub mod bench;
mod config;
mod coverage;
mod demo;
mod export;
mod gen_city;
mod ingest;
mod log;
mod plan;
mod report;
mod retract;
mod review;
mod status;
mod turnaround;
mod verify;
mod worklist;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

const ABOUT: &str = "Pooled PCR sample tracker: ingest tube batches and lab results, keep \
them in a durable store, and deconvolute positive pools into recall, resample and \
positive worklists.";

const AFTER: &str = "\
A typical round:
  pooltrack ingest collections pools.csv --round 2022-04-02
  pooltrack ingest results lab1.csv lab2.csv.gz
  pooltrack worklist recall --round 2022-04-02 --out recall.csv
  pooltrack ingest collections retests.csv --round 2022-04-02
  pooltrack ingest results retest-results.csv
  pooltrack status --round 2022-04-02
  pooltrack coverage --round 2022-04-02   (after: pooltrack ingest population FILE)
  pooltrack report --round 2022-04-02 --out report/   (HTML page and JSON)

Exit codes: 0 done, 1 batch rejected under --strict or input unreadable,
2 usage error, 3 store busy or damaged, 4 nothing committed: every new row refused,
5 more rows refused than --fail-on-reject / --max-rejected allow (valid rows committed).";

/// The `pooltrack` command line.
#[derive(Debug, Parser)]
#[command(name = "pooltrack", version, about = ABOUT, after_help = AFTER, max_term_width = 100)]
pub struct Cli {
    /// The store folder (created on first ingest).
    #[arg(
        long,
        global = true,
        env = "POOLTRACK_STORE",
        default_value = "pooltrack-store"
    )]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read batch files of collections, results or the population register into the store.
    #[command(subcommand)]
    Ingest(ingest::Args),
    /// Take back a batch ingested by mistake: its rows stop counting, the history stays.
    Retract(retract::Args),
    /// The store's history: every batch and retraction, oldest first.
    Log(log::Args),
    /// A round's counts by status, or one person's status and the tubes behind it.
    Status(status::Args),
    /// Write a worklist: who to recall, resample, who is positive, untested or unregistered.
    Worklist(worklist::Args),
    /// Results to look at again: discordant pools, persons missed by pooling, results
    /// changed from positive.
    Review(review::Args),
    /// Turnaround by round and lab, late tubes, recall delays and the round's progress.
    Turnaround(turnaround::Args),
    /// A round's coverage of the population register, by district and community.
    Coverage(coverage::Args),
    /// One self-contained HTML page and JSON of a round: QC, coverage, turnaround,
    /// progress, health codes, review flags, with charts.
    Report(report::Args),
    /// Export every person's status.
    #[command(subcommand)]
    Export(export::Args),
    /// Generate a synthetic city round (collections, results, retests, ground truth).
    Gen(gen_city::Args),
    /// Run a small city's whole round in a temporary store and show what a lab sees.
    Demo(demo::Args),
    /// Show or change the store's settings (time zone, Ct cut-off).
    Config(config::Args),
    /// Can the labs finish a round in 24 hours, and for how many rounds is there reagent?
    Plan(plan::Args),
    /// Time the city-scale reference job (and optionally DuckDB on the same files).
    Bench(bench::Args),
    /// Check the store: every file the manifest names is there, whole and unaltered.
    Verify(verify::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ingest(a) => ingest::run(&cli.store, a),
        Command::Retract(a) => retract::run(&cli.store, a),
        Command::Log(a) => log::run(&cli.store, a),
        Command::Status(a) => status::run(&cli.store, a),
        Command::Worklist(a) => worklist::run(&cli.store, a),
        Command::Review(a) => review::run(&cli.store, a),
        Command::Turnaround(a) => turnaround::run(&cli.store, a),
        Command::Coverage(a) => coverage::run(&cli.store, a),
        Command::Report(a) => report::run(&cli.store, a),
        Command::Export(a) => export::run(&cli.store, a),
        Command::Gen(a) => gen_city::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Config(a) => config::run(&cli.store, a),
        Command::Plan(a) => plan::run(&cli.store, a),
        Command::Bench(a) => bench::run(a),
        Command::Verify(a) => verify::run(&cli.store, a),
    }
}

/// The `--as-of` time of reports that measure waiting ("now" by default): RFC 3339,
/// or a local time in the store's time zone in any form ingest reads
/// (`YYYY-MM-DD HH:MM:SS`, `YYYY/MM/DD HH:MM`, ...).
fn as_of(
    store: &pooltrack::store::Store,
    text: Option<&str>,
) -> pooltrack::Result<pooltrack::time::Millis> {
    match text {
        None => Ok(pooltrack::time::now()),
        Some(s) => pooltrack::time::parse(s.trim().as_bytes(), store.zone())
            .map_err(|e| pooltrack::Error::Usage(format!("--as-of {s:?} {e}"))),
    }
}

/// Reads a `--wait` value: seconds, whole or decimal, from 0 to a day.
fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|w| w.is_finite() && (0.0..=86_400.0).contains(w))
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds from 0 to 86400"))
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn progress(len: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let template =
        format!("{{spinner}} {{msg}} [{{bar:30}}] {{{unit}}}/{{total_{unit}}} ({{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}
