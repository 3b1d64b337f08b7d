//! `pooltrack audit --round ROUND [--plan PLAN] [--alpha A] [--recall-hours H]
//! [--window-minutes M] [--by district|site] [--json] [--out FILE] [--rows labs|findings]
//! [--format FORMAT]`

use std::path::{Path, PathBuf};

use pooltrack::audit::{Audit, AuditOptions, LabAudit, LabCapacity, StrataBy};
use pooltrack::output;
use pooltrack::planner::config::Plan;
use pooltrack::store::Store;
use pooltrack::tracker::Statuses;

use super::output::{FormatArg, list_format};

/// Findings of one kind printed on the screen (JSON and --out list all).
const LISTED: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ByArg {
    /// The district of the tube's first person in the population register.
    District,
    /// The tube's sampling site.
    Site,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RowsArg {
    /// One row per lab: counts, the positivity test, the flags.
    Labs,
    /// One row per finding: kind, lab, tube, time, detail.
    Findings,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Audits each lab of a round against the other labs and against the rules, and flags:

  positivity_high / _low      the lab's share of positive pools differs from what the
                              other labs' positivity in the same districts explains.
                              First-stage pools with a positive or negative result are
                              put in strata of (district, pool capacity) — the district
                              of the tube's first person in the population register, or
                              the tube's site when no register is loaded (--by to
                              choose) — and the lab's strata against the other labs'
                              are tested with the Cochran-Mantel-Haenszel test (two-
                              sided, with continuity correction, as R's
                              mantelhaen.test), the p-values corrected for the number
                              of labs tested (Holm). The lab with the smallest corrected
                              p below --alpha is flagged and set aside, and the others
                              are tested again without it, until none is flagged: a lab
                              far off would make the others look off the other way.
                              (With two labs in a district both get the same p; the one
                              with more positives than expected is flagged.)
  discordant_rate             more of its positive pools discordant (every member
                              retested negative: see pooltrack review) than the other
                              labs' share explains (the same test, one stratum,
                              one-sided, Holm, --alpha).
  reported_before_receipt     a result's reported_at is before its received_at.
  reported_before_collection  a result's reported_at is before the tube's last swab.
  pool_over_20                a tube holding more than 20 persons (re-pooled).
  late_recall                 a positive pool whose first recall — the earliest single
                              tube collected from any of its members after the pool —
                              came more than --recall-hours after the pool's first
                              positive report (the one-hour rule). Pools with no retest
                              yet are followed by pooltrack turnaround, not here.
  over_capacity (--plan)      the most tubes the lab reported in any --window-minutes
                              (a window sliding over reported_at; plate controls left
                              out) is more than its slowest stage can finish in that
                              time: instruments x samples_per_run x ceil(window /
                              minutes_per_run), from the plan's [[lab]] of the same
                              name (see pooltrack plan --help; testdata/audit_plan.toml).

Example: in district D01, lab L2 tested 480 pools of 10 and 35 were positive, and lab
L1 (the only other lab there) tested 470 and 5 were. Of the 40 positives L2 would hold
480 x 40 / 950 = 20.2 if both labs read alike; V = 480 x 470 x 40 x 910 / (950^2 x 949)
= 9.59, chi-square = (35 - 20.2 - 0.5)^2 / 9.59 = 21.3, p = 3.9e-6, times 2 labs (Holm)
= 7.9e-6 < 0.01: L2 is flagged positivity_high (L1 has the same p, but L2 holds the
excess), and L1, left with no lab to compare with, is not. The README's \"Lab audit\"
section works a round of two sites through by hand.

  pooltrack ingest population register.csv     (optional: districts for the strata)
  pooltrack audit --round 2022-04-02
  pooltrack audit --round 2022-04-02 --plan plan.toml --window-minutes 60
  pooltrack audit --round 2022-04-02 --json > audit.json
  pooltrack audit --round 2022-04-02 --rows findings --out findings.csv

Defaults for --alpha, --recall-hours, --window-minutes and --plan come from [audit] in
STORE/pooltrack.toml (pooltrack config --write-defaults writes it); the round report's audit part
uses them too.

The exit code is 0 whatever the audit finds (read the flags, or --json); 2 for a usage
error or a round the store does not hold; 1 when the plan cannot be read.")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// A plan file (pooltrack plan): its [[lab]] instruments bound how many tubes a lab
    /// can report in a window (default: audit.plan in STORE/pooltrack.toml, else no
    /// capacity check).
    #[arg(long, value_name = "PLAN")]
    plan: Option<PathBuf>,
    /// Significance level of the positivity and discordance tests, after Holm's
    /// correction (default: audit.alpha in STORE/pooltrack.toml, else 0.01).
    #[arg(long, value_name = "A")]
    alpha: Option<f64>,
    /// Hours from a positive pool's report to its first retest swab before the recall
    /// is late (default: audit.recall_hours in STORE/pooltrack.toml, else 1).
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    recall_hours: Option<f64>,
    /// The capacity check's sliding window, minutes (default: audit.window_minutes in
    /// STORE/pooltrack.toml, else 60).
    #[arg(long, value_name = "M")]
    window_minutes: Option<u32>,
    /// Strata of the positivity test (default: district when a register is loaded, else
    /// site).
    #[arg(long, value_enum, value_name = "PLACE")]
    by: Option<ByArg>,
    /// Print JSON: the settings, every lab, every finding, counts by kind.
    #[arg(long, conflicts_with_all = ["out", "format", "rows"])]
    json: bool,
    /// Write rows to this file (created 0600): .csv, .json or .parquet.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Which rows --out (or --format) writes (default: labs).
    #[arg(long, value_enum)]
    rows: Option<RowsArg>,
    /// Format of the rows (default: from the --out extension, else csv); without --out
    /// the rows go to standard output.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let configured = AuditOptions::of_store(&store)?;
    let capacity = match &args.plan {
        Some(path) => Some(LabCapacity::of_plan(&Plan::load(path)?.labs)),
        None => configured.capacity,
    };
    let options = AuditOptions {
        alpha: args.alpha.unwrap_or(configured.alpha),
        recall_hours: args.recall_hours.unwrap_or(configured.recall_hours),
        window_minutes: args.window_minutes.unwrap_or(configured.window_minutes),
        capacity,
        strata: args.by.map(|b| match b {
            ByArg::District => StrataBy::District,
            ByArg::Site => StrataBy::Site,
        }),
    }
    .check()?;
    let format = list_format(args.rows.is_some(), args.format, args.out.as_deref())?;
    let round = Statuses::load(&store, &args.round)?;
    let audit = Audit::compute(&store, &round, &options)?;
    if let Some(format) = format {
        let out = args.out.as_deref();
        match args.rows.unwrap_or(RowsArg::Labs) {
            RowsArg::Labs => output::emit(&audit.labs, format, out, "lab row(s)")?,
            RowsArg::Findings => output::emit(&audit.findings, format, out, "finding(s)")?,
        }
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&audit)?);
        return Ok(());
    }
    print(&audit);
    Ok(())
}

fn share(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.2} %", 100.0 * v))
}

fn number(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn p(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".to_owned(),
        |v| {
            if v < 1e-300 {
                "<1e-300".to_owned()
            } else {
                format!("{v:.2e}")
            }
        },
    )
}

fn print(a: &Audit) {
    println!(
        "lab audit of round {}: positivity by {} and pool capacity ({} strata shared by two or more labs), alpha {}, recall limit {} h{}",
        a.round,
        a.strata.as_str(),
        a.shared_strata,
        a.alpha,
        a.recall_hours,
        a.window_minutes
            .map_or(String::new(), |w| format!(", capacity window {w} min"))
    );
    println!();
    let w = a
        .labs
        .iter()
        .map(|l| l.lab.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    println!(
        "{:<w$}  {:>7}  {:>8}  {:>9}  {:>8}  {:>7}  {:>9}  {:>9}  {:>6}  {:>10}  {:>7}  {:>6}  {:>5}  {:>6}  {:>15}",
        "lab",
        "pools",
        "positive",
        "share",
        "expected",
        "chi2",
        "p",
        "p (Holm)",
        "flag",
        "discordant",
        "early",
        "early",
        ">20",
        "late",
        "peak/capacity"
    );
    println!(
        "{:<w$}  {:>7}  {:>8}  {:>9}  {:>8}  {:>7}  {:>9}  {:>9}  {:>6}  {:>10}  {:>7}  {:>6}  {:>5}  {:>6}  {:>15}",
        "", "", "", "", "", "", "", "", "", "", "receipt", "swab", "pools", "recall", ""
    );
    for l in &a.labs {
        println!(
            "{:<w$}  {:>7}  {:>8}  {:>9}  {:>8}  {:>7}  {:>9}  {:>9}  {:>6}  {:>10}  {:>7}  {:>6}  {:>5}  {:>6}  {:>15}",
            l.lab,
            l.pools,
            l.positive_pools,
            share(l.positivity),
            number(l.expected_positive_pools, 1),
            number(l.chi_square, 2),
            p(l.p_value),
            p(l.p_adjusted),
            if l.positivity_flag.is_empty() {
                "-"
            } else {
                &l.positivity_flag
            },
            format!("{}/{}", l.discordant_pools, l.positive_pools_all),
            l.reported_before_receipt,
            l.reported_before_collection,
            l.pools_over_20,
            l.late_recalls,
            capacity(l),
        );
    }
    println!();
    if a.findings.is_empty() {
        println!("no findings");
        return;
    }
    let total: u64 = a.counts.iter().map(|(_, n)| n).sum();
    println!("{total} finding(s):");
    for (kind, n) in &a.counts {
        println!("  {} ({n})", kind.as_str());
        for f in a.findings.iter().filter(|f| f.kind == *kind).take(LISTED) {
            let tube = if f.tube.is_empty() {
                String::new()
            } else {
                format!(" {}", f.tube)
            };
            println!("    {}{tube}: {}", f.lab, f.detail);
        }
        if *n > LISTED as u64 {
            println!(
                "    ... and {} more (--json or --rows findings lists all)",
                n - LISTED as u64
            );
        }
    }
}

fn capacity(l: &LabAudit) -> String {
    match (l.peak_in_window, l.capacity_in_window) {
        (Some(p), Some(c)) => format!("{p}/{c}"),
        (Some(p), None) => format!("{p}/(not in plan)"),
        _ => "-".to_owned(),
    }
}
