//! `pooltrack demo`: a small city's whole round, pooled stage → recall → retest, in a
//! temporary store, printed the way a lab would see it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use pooltrack::ingest::{self, IngestOptions};
use pooltrack::model::Status;
use pooltrack::report;
use pooltrack::store::Store;
use pooltrack::synth::{self, GenConfig};
use pooltrack::tracker::Statuses;
use pooltrack::worklist::{self, Worklist};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Persons in the demo city.
    #[arg(long, default_value_t = 5_000)]
    persons: u64,
    /// Share of people infected.
    #[arg(long, default_value_t = 0.004)]
    prevalence: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Keep the generated files and store in this folder instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

const ROUND: &str = "demo-round";

pub fn run(args: &Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let data = dir.join("city");
    let store_dir = dir.join("store");
    let cfg = GenConfig {
        persons: args.persons,
        prevalence: args.prevalence,
        seed: args.seed,
        ..GenConfig::default()
    };
    let summary = synth::generate(&cfg, &data, None)?;
    println!(
        "== A city of {} persons: {} pool tubes of up to 10 swabs, {} single tubes",
        summary.persons, summary.pool_tubes, summary.single_tubes
    );
    let mut store = Store::open_writer(&store_dir)?;
    let opts = IngestOptions::default();

    println!("\n== Pooled stage: collections and the labs' results");
    ingest_step(&mut store, "collections.csv", &data, &opts, true)?;
    ingest_step(&mut store, "results.csv", &data, &opts, false)?;
    let round = Statuses::load(&store, ROUND)?;
    print_counts(&round);
    let recall = worklist::build(&store, &round, Worklist::Recall)?;
    println!(
        "\n== Recall worklist: {} persons to re-swab in single tubes (lowest Ct first)",
        recall.len()
    );
    println!(
        "{:<20}{:<14}{:<8}{:>8}  collected_at",
        "person", "pool tube", "site", "Ct"
    );
    for r in recall.iter().take(8) {
        let ct = r.ct_orf1ab.map_or("-".into(), |c| format!("{c:.1}"));
        println!(
            "{:<20}{:<14}{:<8}{:>8}  {}",
            r.person, r.tube, r.site, ct, r.collected_at
        );
    }
    if recall.len() > 8 {
        println!("... and {} more", recall.len() - 8);
    }

    println!("\n== Retest stage: single tubes for everyone recalled");
    ingest_step(&mut store, "retest_collections.csv", &data, &opts, true)?;
    let mid = Statuses::load(&store, ROUND)?;
    let pending = mid
        .persons()
        .iter()
        .filter(|p| p.status == Status::RetestPending)
        .count();
    println!("retest tubes collected, waiting for the lab: {pending} persons retest_pending");
    ingest_step(&mut store, "retest_results.csv", &data, &opts, false)?;
    let round = Statuses::load(&store, ROUND)?;
    print_counts(&round);
    let positives = worklist::build(&store, &round, Worklist::Positives)?;
    println!("\n== Positives: {} persons", positives.len());
    for r in positives.iter().take(8) {
        println!("{:<20}{:<14}reported {}", r.person, r.tube, r.reported_at);
    }

    let truth = read_truth(&data.join("truth.csv"))?;
    let found: BTreeSet<String> = positives.into_iter().map(|r| r.person).collect();
    let missed = truth.difference(&found).count();
    let extra = found.difference(&truth).count();
    println!(
        "\n== Against the ground truth: {} infected, {} found positive, {missed} missed, {extra} wrongly positive",
        truth.len(),
        found.len()
    );
    ensure!(
        missed == 0 && extra == 0,
        "the round did not find exactly the infected"
    );
    if let Some(keep) = &args.keep {
        println!("files and store kept in {}", keep.display());
    }
    Ok(())
}

fn ingest_step(
    store: &mut Store,
    file: &str,
    data: &Path,
    opts: &IngestOptions,
    collections: bool,
) -> anyhow::Result<()> {
    let files = [data.join(file)];
    let r = if collections {
        ingest::ingest_collections(store, &files, ROUND, opts, None)?
    } else {
        ingest::ingest_results(store, &files, opts, None)?
    };
    println!(
        "ingest {file}: batch {} committed, {} rows, {} rejected",
        r.batch.unwrap_or_default(),
        r.committed,
        r.rejected
    );
    Ok(())
}

fn print_counts(round: &Statuses) {
    let r = report::round_report(round);
    let parts: Vec<String> = r
        .counts
        .by_status
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{} {n}", s.as_str()))
        .collect();
    println!(
        "status of {} persons: {}",
        r.counts.persons,
        parts.join(", ")
    );
}

fn read_truth(path: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut r = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let mut out = BTreeSet::new();
    for rec in r.records() {
        let rec = rec?;
        out.insert(rec.get(0).unwrap_or_default().to_owned());
    }
    Ok(out)
}
