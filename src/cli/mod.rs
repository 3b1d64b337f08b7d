//! Command-line parsing: the argument structs validate; each subcommand's `run` builds
//! what it needs from them.

// Doc comments on the argument structs are clap's `--help` text, read as plain text on
// a terminal: Markdown backticks there would be printed as they are.
#![allow(clippy::doc_markdown)]

mod audit;
pub mod bench;
mod compact;
mod config;
mod coverage;
mod custody;
mod demo;
mod dilution;
mod export;
mod gen_city;
mod health_codes_as_of;
mod ingest;
mod key;
mod log;
mod migrate;
mod output;
mod plan;
mod prevalence;
mod progress;
mod report;
mod retract;
mod review;
mod sql;
mod status;
mod turnaround;
mod verify;
mod worklist;

use std::path::PathBuf;

use clap::{Arg, ArgAction, Parser, Subcommand};

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
#[command(mut_subcommands = |c| with_usage(c, "pooltrack", &[]))]
pub struct Cli {
    /// `--store DIR` before the command (`pooltrack --store DIR status ...`): still
    /// read, but hidden, since only the commands that use a store offer `--store`.
    #[arg(long = "store", id = "root_store", value_name = "DIR", hide = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the store is; flattened into each command that uses one, so that `gen`, `demo`,
/// `bench` and `key` do not offer it. Global within the command, so `ingest --store DIR
/// collections` and `ingest collections --store DIR` both work.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// The store folder (created on first ingest). Default: $POOLTRACK_STORE, else
    /// pooltrack-store.
    #[arg(long = "store", value_name = "DIR", global = true)]
    store: Option<PathBuf>,
}

/// The environment variable naming the store, and the store used without it.
const STORE_ENV: &str = "POOLTRACK_STORE";
const DEFAULT_STORE: &str = "pooltrack-store";

impl StoreArgs {
    /// `--store` after the command, else before it, else $POOLTRACK_STORE, else
    /// `pooltrack-store`.
    fn resolve(&self, before: Option<&PathBuf>) -> PathBuf {
        self.store
            .clone()
            .or_else(|| before.cloned())
            .or_else(|| {
                std::env::var_os(STORE_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
    }
}

/// A command's own arguments and the store it works on.
#[derive(Debug, clap::Args)]
struct WithStore<T: clap::Args> {
    #[command(flatten)]
    args: T,
    #[command(flatten)]
    store: StoreArgs,
}

/// A group of commands (`ingest ...`, `export ...`) and the store they work on.
#[derive(Debug, clap::Args)]
struct GroupWithStore<T: clap::Subcommand> {
    #[command(subcommand)]
    command: T,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read batch files of collections, results, the population register, box manifests or
    /// lab receipts into the store.
    Ingest(GroupWithStore<ingest::Args>),
    /// Take back a batch ingested by mistake: its rows stop counting, the history stays.
    Retract(WithStore<retract::Args>),
    /// The store's history: every batch and retraction, oldest first.
    Log(WithStore<log::Args>),
    /// A round's counts by status, or one person's status and the tubes behind it.
    Status(WithStore<status::Args>),
    /// Write a worklist: who to recall, resample, who is positive, untested or unregistered.
    Worklist(WithStore<worklist::Args>),
    /// Results to look at again: discordant pools, persons missed by pooling, results
    /// changed from positive.
    Review(WithStore<review::Args>),
    /// Turnaround by round and lab, late tubes, recall delays and the round's progress.
    Turnaround(WithStore<turnaround::Args>),
    /// A round's coverage of the population register, by district and community.
    Coverage(WithStore<coverage::Args>),
    /// Prevalence by area with 95 % intervals, from a round's own tubes of mixed sizes.
    Prevalence(WithStore<prevalence::Args>),
    /// Dilution risk from the round's Ct values: measured sensitivity and Ct shift per
    /// pool size.
    Dilution(WithStore<dilution::Args>),
    /// One self-contained HTML page and JSON of a round: QC, coverage, turnaround,
    /// progress, health codes, review flags, with charts.
    Report(WithStore<report::Args>),
    /// Print the status rules as one SQL query for DuckDB, Spark or Trino on the store's
    /// Delta tables.
    Sql(WithStore<sql::Args>),
    /// Export every person's status.
    Export(GroupWithStore<export::Args>),
    /// Generate a synthetic city round (collections, results, retests, ground truth).
    Gen(gen_city::Args),
    /// Run a small city's whole round in a temporary store and show what a lab sees.
    Demo(demo::Args),
    /// Show or change the store's settings (time zone, Ct cut-off).
    Config(WithStore<config::Args>),
    /// Can the labs finish a round in 24 hours, and for how many rounds is there reagent?
    #[command(mut_arg("store", |a| a.help(
        "The store whose round --measure-round measures (unused without it). Default: \
         $POOLTRACK_STORE, else pooltrack-store."
    )))]
    Plan(WithStore<plan::Args>),
    /// Time the city-scale reference job and every whole-round output against the floor
    /// of reading the inputs (and optionally DuckDB on the same files).
    Bench(bench::Args),
    /// Check the store: every commit reads, every file it names is there, whole and unaltered.
    Verify(WithStore<verify::Args>),
    /// Merge a round's indexes into one run once its batches have come, so every
    /// output reads it as if it had come in one batch.
    Compact(WithStore<compact::Args>),
    /// Convert a store of an older pooltrack to this one's format (Delta Lake tables),
    /// in place and atomically.
    Migrate(WithStore<migrate::Args>),
    /// Make a key file for `--pseudonymize` (`pooltrack key new office.key`).
    #[command(subcommand)]
    Key(key::Args),
    /// Chain of custody: tubes lost or stuck on the way, boxes received short, unknown
    /// boxes and tubes, transport times, results past the specimen limit.
    Custody(WithStore<custody::Args>),
    /// Each lab against the others and the rules: positivity, discordant pools,
    /// impossible report times, pools over 20, late recalls, reports beyond its
    /// instruments.
    Audit(WithStore<audit::Args>),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let before = cli.store.as_ref();
    match cli.command {
        Command::Ingest(a) => ingest::run(&a.store.resolve(before), a.command),
        Command::Retract(a) => retract::run(&a.store.resolve(before), a.args),
        Command::Log(a) => log::run(&a.store.resolve(before), &a.args),
        Command::Status(a) => status::run(&a.store.resolve(before), &a.args),
        Command::Worklist(a) => worklist::run(&a.store.resolve(before), &a.args),
        Command::Review(a) => review::run(&a.store.resolve(before), &a.args),
        Command::Turnaround(a) => turnaround::run(&a.store.resolve(before), &a.args),
        Command::Coverage(a) => coverage::run(&a.store.resolve(before), &a.args),
        Command::Prevalence(a) => prevalence::run(&a.store.resolve(before), &a.args),
        Command::Dilution(a) => dilution::run(&a.store.resolve(before), &a.args),
        Command::Report(a) => report::run(&a.store.resolve(before), &a.args),
        Command::Sql(a) => sql::run(&a.store.resolve(before), &a.args),
        Command::Export(a) => export::run(&a.store.resolve(before), a.command),
        Command::Gen(a) => gen_city::run(&a),
        Command::Demo(a) => demo::run(&a),
        Command::Config(a) => config::run(&a.store.resolve(before), &a.args),
        Command::Plan(a) => plan::run(&a.store.resolve(before), &a.args),
        Command::Bench(a) => bench::run(&a),
        Command::Verify(a) => verify::run(&a.store.resolve(before), &a.args),
        Command::Compact(a) => compact::run(&a.store.resolve(before), &a.args),
        Command::Migrate(a) => migrate::run(&a.store.resolve(before), &a.args),
        Command::Key(a) => key::run(a),
        Command::Custody(a) => custody::run(&a.store.resolve(before), &a.args),
        Command::Audit(a) => audit::run(&a.store.resolve(before), &a.args),
    }
}

/// Gives every leaf command a usage line that spells out its options, optional ones in
/// brackets (`--round <ROUND> [--out <FILE>] [--format <FORMAT>]`), instead of clap's
/// `[OPTIONS]`, which hid which flags are optional. `inherited` are the global options
/// of the commands above (`--store` of `ingest`).
fn with_usage(cmd: clap::Command, path: &str, inherited: &[Arg]) -> clap::Command {
    let name = format!("{path} {}", cmd.get_name());
    let mut globals = inherited.to_vec();
    globals.extend(cmd.get_arguments().filter(|a| a.is_global_set()).cloned());
    if cmd.has_subcommands() {
        return cmd.mut_subcommands(|c| with_usage(c, &name, &globals));
    }
    let own: Vec<&Arg> = cmd.get_arguments().collect();
    let args: Vec<&Arg> = own
        .iter()
        .copied()
        .chain(
            inherited
                .iter()
                .filter(|g| !own.iter().any(|a| a.get_id() == g.get_id())),
        )
        .filter(|a| {
            !a.is_hide_set()
                && !matches!(
                    a.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
        })
        .collect();
    let mut parts = vec![name];
    let options = args.iter().filter(|a| !a.is_positional());
    let (required, optional): (Vec<&&Arg>, Vec<&&Arg>) = options.partition(|a| a.is_required_set());
    for a in required {
        parts.push(option_usage(a));
    }
    for a in optional {
        parts.push(format!("[{}]", option_usage(a)));
    }
    for a in args.iter().filter(|a| a.is_positional()) {
        let value = a
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| a.get_id().as_str().to_uppercase(), ToString::to_string);
        let many = a.get_num_args().is_some_and(|n| n.max_values() > 1)
            || matches!(a.get_action(), ArgAction::Append);
        let dots = if many { "..." } else { "" };
        parts.push(if a.is_required_set() {
            format!("<{value}>{dots}")
        } else {
            format!("[{value}]{dots}")
        });
    }
    cmd.override_usage(parts.join(" "))
}

/// `--round <ROUND>`, `-o, --out <FILE>`, `--json`, `--lab <LAB>...`.
fn option_usage(a: &Arg) -> String {
    let flag = match (a.get_long(), a.get_short()) {
        (Some(l), _) => format!("--{l}"),
        (None, Some(s)) => format!("-{s}"),
        (None, None) => a.get_id().as_str().to_owned(),
    };
    if !a.get_action().takes_values() {
        return flag;
    }
    let value = a
        .get_value_names()
        .and_then(|v| v.first())
        .map_or_else(|| a.get_id().as_str().to_uppercase(), ToString::to_string);
    let dots = if matches!(a.get_action(), ArgAction::Append) {
        "..."
    } else {
        ""
    };
    format!("{flag} <{value}>{dots}")
}

/// The `--as-of` time of reports that measure waiting: RFC 3339, or a local time in the
/// store's time zone in any form ingest reads (`YYYY-MM-DD HH:MM:SS`, `YYYY/MM/DD HH:MM`,
/// ...); `None` when not given (the round's last result is used: see
/// [`pooltrack::turnaround::round_as_of`]).
fn as_of(
    store: &pooltrack::store::Store,
    text: Option<&str>,
) -> pooltrack::Result<Option<pooltrack::time::Millis>> {
    match text {
        None => Ok(None),
        Some(s) => pooltrack::time::parse(s.trim().as_bytes(), store.zone())
            .map(Some)
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

/// "as of 2022-04-03 09:00:00 (the round's last result; --as-of to change)".
fn as_of_words(
    at: pooltrack::time::Millis,
    basis: pooltrack::turnaround::AsOf,
    zone: pooltrack::time::Offset,
) -> String {
    format!(
        "as of {} ({})",
        pooltrack::time::format_local(at, zone),
        basis.describe()
    )
}
