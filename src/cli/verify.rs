//! `pooltrack verify [--json]`

use std::path::Path;

use pooltrack::store::verify::{self, VerifyReport};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks that the tables' logs (collections, results, population: STORE/*/_delta_log/)
read, commit by commit, and that every file they name is there, has its recorded size
and xxh3 hash, and holds what it should: Parquet files open with the segment's row
count, sidecar indexes have a valid header and their records in order. Files no commit
names and temporary commit files are listed as warnings (leftovers of an interrupted
ingest, removed by the next one). A store of an older format is checked through its
MANIFEST.json. Exit code 0: healthy; 3: damaged (each damaged file is named); 2: no store.
The store is only read, never changed, and no lock is taken.")]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let report = verify::verify(store)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    match report.to_error() {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

fn print_report(r: &VerifyReport) {
    for f in &r.damage {
        println!("DAMAGED {}: {}", f.path, f.problem);
    }
    for f in &r.warnings {
        println!("warning {}: {}", f.path, f.problem);
    }
    let verdict = if r.healthy { "healthy" } else { "DAMAGED" };
    println!(
        "store {}: {verdict}: checked {} batch(es), {} segment(s), {} file(s), {} byte(s), {} row(s); {} damaged part(s), {} warning(s)",
        r.store.display(),
        r.batches,
        r.segments,
        r.files,
        r.bytes_checked,
        r.rows,
        r.damage.len(),
        r.warnings.len()
    );
}
