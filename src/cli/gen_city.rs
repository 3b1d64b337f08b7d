//! `pooltrack gen --persons N [--prevalence P] [--seed S] --out DIR`

use std::path::PathBuf;

use pooltrack::synth::{self, GenConfig};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes collections.csv (the pooled stage), results.csv, retest_collections.csv (a single
tube for everyone in a positive pool), retest_results.csv, truth.csv (the infected) and
summary.json. The same arguments always give the same files.")]
pub struct Args {
    /// Persons in the city.
    #[arg(long)]
    persons: u64,
    /// Share of people infected.
    #[arg(long, default_value_t = 0.001)]
    prevalence: f64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of people pooled (the rest get single tubes).
    #[arg(long, default_value_t = 0.95)]
    pool_share: f64,
    /// Persons per pool tube (5, 10 or 20 are the validated sizes).
    #[arg(long, default_value_t = 10)]
    pool_size: u8,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = GenConfig {
        persons: args.persons,
        prevalence: args.prevalence,
        seed: args.seed,
        pool_share: args.pool_share,
        pool_size: args.pool_size,
    };
    let pb = super::progress(args.persons, "pos");
    let summary = synth::generate(&cfg, &args.out, Some(&pb));
    pb.finish_and_clear();
    let summary = summary?;
    println!(
        "generated {} persons ({} infected) in {}: {} pool tubes, {} single tubes, {} positive pools, {} retests",
        summary.persons,
        summary.infected,
        args.out.display(),
        summary.pool_tubes,
        summary.single_tubes,
        summary.positive_pools,
        summary.retest_tubes
    );
    Ok(())
}
