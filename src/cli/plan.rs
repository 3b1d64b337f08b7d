//! `pooltrack plan --config plan.toml [--json] [--html DIR] [--horizon DAYS] [--measure-round ROUND]`
//!
//! Capacity, reagent and sampling verdicts, the stock projection and the pool design
//! advisor for a plan file (see `pooltrack::planner`).

use std::path::{Path, PathBuf};

use pooltrack::Error;
use pooltrack::dilution;
use pooltrack::planner::assay::PoolSensitivity;
use pooltrack::planner::{self, Plan, html, measure, text};
use pooltrack::store::Store;
use pooltrack::tracker::Round;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Answers, from a TOML plan file (see testdata/plan_pass.toml for every key):
  1. round capacity: tubes of a full round (pools, single tubes, expected retests), what
     the labs finish within the deadline at their staffed hours (default 18 h of 24 h),
     stage by stage, the bottleneck, and what would make a failing round pass;
  2. sampling: sites, stations and collectors by the norms;
  3. reagent reserve: rounds held, physical and under confirmed contracts, against
     10 rounds with at least 6 physical, and the shortfall in tests and kits;
  4. projection: stock day by day under the schedule and what to order by when;
  5. pool design: for each zone, single tubes, two stages (pools of 5, 10 or 20, a
     positive pool's people swabbed again into single tubes) and three stages (20→5→1,
     10→5→1, 20→10→1: into smaller pools first), each with its tests per person,
     stages and hours to a final result, sensitivity, specificity, infected people
     missed per million, and the round's 24 h verdict and reagent rounds with it; the
     recommendation is the fewest tests that keep sensitivity at the floor and the round
     within the deadline, and the report says why for every scheme.
With --measure-round, the same again with what that round in the store measured: its
pool fill and positivity, and each lab's tubes per staffed hour.

The test's accuracy is the plan's [assay] table (every key optional):
  sensitivity = 0.98              a single tube's sensitivity              [1]
  specificity = 0.99              a single tube's specificity              [1]
  pool_specificity = 0.99         a pool tube's                            [specificity]
  dilution_loss_per_log2 = 0.01   sensitivity lost per doubling of a pool  [0]
  pool_sensitivity = { 5 = 0.96, 10 = 0.95, 20 = 0.93 }   per pool size, in place of
                                  sensitivity − loss × log2 k for those sizes
Without [assay] the test is taken as perfect (Se = Sp = 1), the arithmetic of plans
written before it, whose figures therefore do not change. [advisor] holds
sensitivity_floor [0.90] and recall_hours [4], the hours from a positive result to the
new swabs in the lab. A zone may pool in three stages: pool_size = 20 with
retest_pool_size = 5.

Example: pooltrack plan --config testdata/plan_advisor.toml   (two districts at 1 % and
0.05 %: 10:1 stays in the old town, the new districts move to 20:1 and the round fits)

A bad plan file is refused with the line and key (exit 1).")]
pub struct Args {
    /// The plan file (TOML).
    #[arg(long, value_name = "PLAN.toml")]
    config: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report (index.html with SVG charts) to DIR.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// Days to project (overrides the plan's schedule.horizon_days; default 60).
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    horizon: Option<i64>,
    /// Measure this round in the store and plan with what it saw.
    #[arg(long, value_name = "ROUND")]
    measure_round: Option<String>,
}

/// The longest projection `--horizon` accepts (ten years).
const MAX_HORIZON: i64 = 3_650;

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let horizon = match args.horizon {
        None => None,
        Some(d) => Some(
            u32::try_from(d)
                .ok()
                .filter(|&d| d >= 1 && i64::from(d) <= MAX_HORIZON)
                .ok_or_else(|| {
                    Error::Usage(format!("--horizon {d}: give 1 to {MAX_HORIZON} days"))
                })?,
        ),
    };
    let mut plan = Plan::load(&args.config)?;
    if let Some(h) = horizon {
        plan.schedule.horizon_days = h;
    }
    let report = match &args.measure_round {
        None => planner::assess(&plan),
        Some(name) => {
            let store = Store::open(store)?;
            let round = Round::load(&store, name)?;
            let measured = measure::measure(&round, |lab| planner::staffed_hours_of(&plan, lab));
            // Pool sensitivities measured from the round's Ct values replace the plan's
            // [assay] figures per pool size. What the round measures is the share of
            // single-tube positives a k-pool keeps under the cut-off, so a pool's
            // sensitivity is the single tube's times that share. Sizes without a
            // single-tube positive keep the plan's figure.
            let measured_sensitivity: Vec<PoolSensitivity> =
                dilution::measured_sensitivity(&store, name, &[5, 10, 20])?
                    .into_iter()
                    .filter_map(|m| {
                        let kept = m.sensitivity?;
                        Some(PoolSensitivity {
                            pool_size: u8::try_from(m.pool_size).ok()?,
                            sensitivity: plan.assay.sensitivity * kept,
                            source: format!(
                                "round {name}: {} of {} single-tube positives have a Ct at least log2 {} under the cut-off ({:.3}), times the single tube's {}",
                                m.single_positives - m.within_log2k,
                                m.single_positives,
                                m.pool_size,
                                kept,
                                plan.assay.sensitivity
                            ),
                        })
                    })
                    .collect();
            planner::assess_measured(&plan, measured, &measured_sensitivity)
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text::render(&report));
    }
    if let Some(dir) = &args.html {
        let path = html::write(dir, &report)?;
        eprintln!("pooltrack: HTML report written to {}", path.display());
    }
    Ok(())
}
