//! `pooltrack coverage --round ROUND [--json]`

use std::path::Path;

use pooltrack::coverage::{Area, Coverage};
use pooltrack::store::Store;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Compares a round with the population register: of the persons who must be tested
(`pooltrack ingest population FILE`), how many have a tube in the round, by district
and by community. A person counts as tested once they have any tube in the round,
whatever its result; a person registered twice counts once, where they were registered
last. Persons without a district or community count under (none).

Two worklists follow from it:
  pooltrack worklist untested --round R       registered persons with no tube
  pooltrack worklist unregistered --round R   persons tested but not registered

Example:
  pooltrack ingest population register.csv
  pooltrack coverage --round 2022-04-02
  pooltrack coverage --round 2022-04-02 --json > coverage.json

Exit code 2 when the store holds no population register or not the round.")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// Print the coverage as JSON (totals, by_district, by_community).
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let coverage = Coverage::compute(&store, &args.round)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&coverage)?);
    } else {
        print_tables(&coverage);
    }
    Ok(())
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

fn print_tables(c: &Coverage) {
    println!("coverage of round {}", c.round);
    println!();
    let width = |f: fn(&Area) -> &str, rows: &[Area], title: &str| {
        rows.iter()
            .map(|a| f(a).chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let d = width(|a| &a.district, &c.by_district, "district");
    println!(
        "{:<d$}  {:>12}  {:>12}  {:>9}",
        "district", "registered", "tested", "share"
    );
    for a in &c.by_district {
        println!(
            "{:<d$}  {:>12}  {:>12}  {:>9}",
            a.district,
            a.registered,
            a.tested,
            percent(a.share)
        );
    }
    println!();
    let d = width(|a| &a.district, &c.by_community, "district");
    let m = width(|a| &a.community, &c.by_community, "community");
    println!(
        "{:<d$}  {:<m$}  {:>12}  {:>12}  {:>9}",
        "district", "community", "registered", "tested", "share"
    );
    for a in &c.by_community {
        println!(
            "{:<d$}  {:<m$}  {:>12}  {:>12}  {:>9}",
            a.district,
            a.community,
            a.registered,
            a.tested,
            percent(a.share)
        );
    }
    println!();
    println!(
        "total: {} registered, {} tested ({}), {} untested; {} tested but not registered",
        c.registered,
        c.tested,
        percent(c.share),
        c.untested,
        c.unregistered_tested
    );
    if c.untested > 0 {
        println!("who: pooltrack worklist untested --round {}", c.round);
    }
    if c.unregistered_tested > 0 {
        println!("who: pooltrack worklist unregistered --round {}", c.round);
    }
}
