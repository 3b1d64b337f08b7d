//! `pooltrack prevalence (--round ROUND | --rounds R1,R2,...) [--by AREA] [--sensitivity SE]
//! [--specificity SP] [--json] [--out FILE] [--format FORMAT]`

use std::path::{Path, PathBuf};

use pooltrack::output;
use pooltrack::planner::numbers::thousands;
use pooltrack::prevalence::{self, ALL, AreaPrevalence, Assay, By, Prevalence};
use pooltrack::store::Store;
use pooltrack::tracker::Decided;
use serde::Serialize;

use super::output::{FormatArg, list_format};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ByArg {
    /// District of the persons' registration (needs the population register).
    District,
    /// District and community of the persons' registration (needs the register).
    Community,
    /// The tube's sampling site.
    Site,
    /// The lab of the tube's result.
    Lab,
}

impl From<ByArg> for By {
    fn from(b: ByArg) -> By {
        match b {
            ByArg::District => By::District,
            ByArg::Community => By::Community,
            ByArg::Site => By::Site,
            ByArg::Lab => By::Lab,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["round", "rounds"]))]
#[command(after_help = "\
Estimates the share of persons infected (the prevalence p) from the round's own
first-stage tubes, whatever their sizes: a tube of k persons is positive with probability
Se*(1-(1-p)^k) + (1-Sp)*(1-p)^k, and p is the value that makes the round's positive and
negative tubes most likely (maximum likelihood). The 95 % interval is the likelihood-ratio
interval: every p whose log-likelihood is within 3.841/2 of the best (chi-square, 1 degree
of freedom). Unlike p +- 1.96 se it stays inside [0, 1], is not symmetric where the data
are not, and still gives an upper bound when no tube is positive.

Counted: first-stage tubes with an effective result positive or negative. Left out: the
single-tube retests and resamples of persons who have an earlier tube (they would count
a person twice), void results of plates whose controls failed (a tube with only void
results counts as without a result), and inconclusive and invalid tubes (they say
nothing clear; each row gives how many). A tube's size is the persons recorded in it.

Areas: --by district or community places a tube where its persons are registered
(`pooltrack ingest population`); a tube whose persons are registered in different areas
counts under (mixed), persons not in the register under (unregistered). --by site uses
the tube's sampling site, --by lab the lab of its result. The (all) row is the whole
round. Each row gives the tubes and persons behind it and the estimated infected persons
among them (prevalence x persons, with the interval's ends).

Sensitivity and specificity (per tube) default to prevalence.sensitivity and
prevalence.specificity in STORE/pooltrack.toml, else 1 and 1 (a perfect assay).

Examples:
  pooltrack prevalence --round 2022-04-02
  pooltrack prevalence --round 2022-04-02 --by district --sensitivity 0.95 --specificity 0.999
  pooltrack prevalence --rounds 2022-04-02,2022-04-05,2022-04-08 --by district --out trend.csv
  pooltrack prevalence --round 2022-04-02 --by community --json > prevalence.json")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: Option<String>,
    /// Several rounds, comma-separated: one row per area per round, the trend.
    #[arg(long, value_delimiter = ',', value_name = "R1,R2,...")]
    rounds: Vec<String>,
    /// Estimate by area (default: the whole round only).
    #[arg(long, value_enum, value_name = "AREA")]
    by: Option<ByArg>,
    /// Probability that a tube holding an infected person reads positive (default:
    /// prevalence.sensitivity in STORE/pooltrack.toml, else 1).
    #[arg(long, value_name = "SE")]
    sensitivity: Option<f64>,
    /// Probability that a tube holding no infected person reads negative (default:
    /// prevalence.specificity in STORE/pooltrack.toml, else 1).
    #[arg(long, value_name = "SP")]
    specificity: Option<f64>,
    /// Print JSON: the assay, each round's first-stage and follow-up tubes, every row.
    #[arg(long, conflicts_with_all = ["out", "format"])]
    json: bool,
    /// Write the rows to this file (created 0600): .csv, .json or .parquet.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Format of the rows (default: from the --out extension, else csv); without
    /// --out the rows go to standard output.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

/// Each round's tubes, for the JSON.
#[derive(Debug, Serialize)]
struct RoundTubes {
    round: String,
    first_stage_tubes: u64,
    follow_up_tubes: u64,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report {
    by: By,
    assay: Assay,
    rounds: Vec<RoundTubes>,
    rows: Vec<AreaPrevalence>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let configured = store.config()?.prevalence;
    let assay = Assay {
        sensitivity: args.sensitivity.unwrap_or(configured.sensitivity),
        specificity: args.specificity.unwrap_or(configured.specificity),
    }
    .check()?;
    let by = args.by.map_or(By::Round, By::from);
    let rounds: Vec<String> = match &args.round {
        Some(r) => vec![r.clone()],
        None => args.rounds.clone(),
    };
    let format = list_format(false, args.format, args.out.as_deref())?;
    let mut per_round = Vec::with_capacity(rounds.len());
    for round in &rounds {
        let decided = Decided::load(&store, round)?;
        per_round.push(Prevalence::compute(&store, &decided, by, assay)?);
    }
    let tubes: Vec<RoundTubes> = per_round
        .iter()
        .map(|p| RoundTubes {
            round: p.round.clone(),
            first_stage_tubes: p.first_stage_tubes,
            follow_up_tubes: p.follow_up_tubes,
        })
        .collect();
    let rows = prevalence::trend(per_round.into_iter().map(|p| p.rows).collect());
    if let Some(format) = format {
        return Ok(output::emit(&rows, format, args.out.as_deref(), "row(s)")?);
    }
    if args.json {
        let report = Report {
            by,
            assay,
            rounds: tubes,
            rows,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_table(by, assay, &tubes, &rows);
    Ok(())
}

/// A share as a percentage with four decimals.
fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.4} %", 100.0 * v))
}

fn interval(lo: Option<f64>, hi: Option<f64>) -> String {
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("{:.4} – {:.4} %", 100.0 * lo, 100.0 * hi),
        _ => "-".to_owned(),
    }
}

fn positives(r: &AreaPrevalence) -> String {
    match (r.positives, r.positives_lower, r.positives_upper) {
        (Some(p), Some(lo), Some(hi)) => format!("{p:.1} ({lo:.1} – {hi:.1})"),
        _ => "-".to_owned(),
    }
}

fn print_table(by: By, assay: Assay, tubes: &[RoundTubes], rows: &[AreaPrevalence]) {
    let names: Vec<&str> = tubes.iter().map(|t| t.round.as_str()).collect();
    println!(
        "prevalence of round {} by {}; assay sensitivity {}, specificity {}; 95 % likelihood-ratio intervals",
        names.join(", "),
        by.as_str(),
        assay.sensitivity,
        assay.specificity
    );
    println!();
    let area_name = |r: &AreaPrevalence| {
        if r.district.is_empty() {
            r.area.clone()
        } else {
            format!("{} / {}", r.district, r.area)
        }
    };
    let w_area = rows
        .iter()
        .map(|r| area_name(r).chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let w_round = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    println!(
        "{:<w_area$}  {:<w_round$}  {:>10}  {:>11}  {:>8}  {:>10}  {:>21}  infected persons (interval)",
        "area", "round", "tubes", "persons", "positive", "prevalence", "95 % interval"
    );
    for r in rows {
        println!(
            "{:<w_area$}  {:<w_round$}  {:>10}  {:>11}  {:>8}  {:>10}  {:>21}  {}",
            area_name(r),
            r.round,
            thousands(r.tubes),
            thousands(r.persons),
            thousands(r.positive_tubes),
            percent(r.prevalence),
            interval(r.lower, r.upper),
            positives(r)
        );
    }
    println!();
    for t in tubes {
        let all = rows.iter().find(|r| r.round == t.round && r.area == ALL);
        let (inc, inv, none) = all.map_or((0, 0, 0), |r| {
            (
                r.inconclusive_tubes,
                r.invalid_tubes,
                r.tubes_without_result,
            )
        });
        println!(
            "round {}: {} first-stage tubes; left out: {} follow-up tube(s) (retests, resamples), {} inconclusive, {} invalid, {} without a result that counts",
            t.round,
            thousands(t.first_stage_tubes),
            thousands(t.follow_up_tubes),
            thousands(inc),
            thousands(inv),
            thousands(none)
        );
    }
}
