//! `pooltrack dilution --round ROUND [--pool-sizes K1,K2,...] [--with-retests] [--json]
//! [--out FILE] [--format FORMAT]`

use std::path::{Path, PathBuf};

use pooltrack::dilution::{Dilution, DilutionOptions, VALIDATED_SIZES};
use pooltrack::output;
use pooltrack::planner::numbers::thousands;
use pooltrack::store::Store;
use pooltrack::tracker::Decided;

use super::output::{FormatArg, list_format};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Pooling k swabs into one tube dilutes each k-fold, which PCR reads as log2(k) more cycles
(Ct): a person whose own tube reads Ct 37 reads about 40.3 in a 10-pool (log2 10 = 3.32),
past a cut-off of 40. This command measures what that costs in the round's own data.

Sensitivity per pool size: of the round's first-stage single-tube positives (retests
left out: a pool already found those, so they lack the weak positives a pool misses;
--with-retests counts them too), the share whose Ct lies within log2(k) of the cut-off
(Ct + log2 k >= cut-off) would likely have been missed in a k-pool; 1 minus that share
is the measured sensitivity of a k-pool, by lab and for all labs.

Shift: for each positive pool whose retests found exactly one positive person, the
pool's Ct minus that person's single-tube Ct: mean, p90 (nearest rank) and count by pool
size (the persons in the pool), against the log2(k) a k-fold dilution predicts. Pools
whose retests found several positives hold their summed template and are only counted.

The Ct read is the lower stated Ct of ORF1ab and N; results without a Ct are counted
apart. The cut-off is the store's ct_cutoff (pooltrack config).

--out FILE writes both parts as one list (csv, json or parquet), one row per lab and
pool size, the column part saying which: sensitivity (tubes = single-tube positives,
within_log2k, sensitivity) or shift (tubes = pools measured, mean_shift, p90_shift).

Examples:
  pooltrack dilution --round 2022-04-02
  pooltrack dilution --round 2022-04-02 --pool-sizes 5,10,20,30 --out dilution.csv
  pooltrack dilution --round 2022-04-02 --json > dilution.json")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// Pool sizes to measure the sensitivity of, comma-separated (default 5,10,20).
    #[arg(long, value_delimiter = ',', value_name = "K1,K2,...")]
    pool_sizes: Vec<u32>,
    /// Count retest single tubes among the single-tube positives too (an upper figure).
    #[arg(long)]
    with_retests: bool,
    /// Print JSON: the counts, and both parts by lab and pool size.
    #[arg(long, conflicts_with_all = ["out", "format"])]
    json: bool,
    /// Write both parts as one list to this file (created 0600): .csv, .json or .parquet.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Format of the list (default: from the --out extension, else csv); without --out
    /// the list goes to standard output.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let format = list_format(false, args.format, args.out.as_deref())?;
    if args.pool_sizes.iter().any(|&k| k == 0 || k > 1_000) {
        return Err(pooltrack::Error::Usage(
            "--pool-sizes: each size must be 1 to 1000 persons".to_owned(),
        )
        .into());
    }
    let opts = DilutionOptions {
        pool_sizes: if args.pool_sizes.is_empty() {
            VALIDATED_SIZES.to_vec()
        } else {
            args.pool_sizes.clone()
        },
        with_retests: args.with_retests,
    };
    let round = Decided::load(&store, &args.round)?;
    let d = Dilution::compute(&store, &round, &opts)?;
    if let Some(format) = format {
        return Ok(output::emit(
            &d.rows(),
            format,
            args.out.as_deref(),
            "row(s)",
        )?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    print(&d);
    Ok(())
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn print(d: &Dilution) {
    println!(
        "dilution risk of round {}: cut-off Ct {}, reading {}",
        d.round, d.ct_cutoff, d.ct_read
    );
    println!();
    println!(
        "sensitivity of a k-pool: {} single-tube positives{} with a Ct ({} without)",
        thousands(d.single_positives),
        if d.with_retests {
            " (retests included)"
        } else {
            " (first-stage)"
        },
        thousands(d.single_positives_without_ct)
    );
    table(
        &["lab", "k", "positives", "within log2 k", "sensitivity"],
        d.sensitivity.iter().map(|s| {
            vec![
                s.lab.clone(),
                s.pool_size.to_string(),
                thousands(s.single_positives),
                thousands(s.within_log2k),
                opt(s.sensitivity, 4),
            ]
        }),
    );
    println!();
    println!(
        "Ct shift of positive pools over their positive member's single tube: {} positive pools, {} measured; {} with no positive retest (yet), {} with several, {} without a Ct",
        thousands(d.positive_pools),
        thousands(d.pools_measured),
        thousands(d.pools_none_found),
        thousands(d.pools_several_found),
        thousands(d.pools_without_ct)
    );
    table(
        &["lab", "k", "pools", "mean shift", "p90 shift", "log2 k"],
        d.shift.iter().map(|s| {
            vec![
                s.lab.clone(),
                s.pool_size.to_string(),
                thousands(s.pools),
                opt(s.mean_shift, 2),
                opt(s.p90_shift, 2),
                format!("{:.2}", s.expected_shift),
            ]
        }),
    );
}

/// Prints a table: the first (lab) column left-aligned, the others right-aligned,
/// each as wide as its widest cell or heading.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    use std::fmt::Write as _;
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            let _ = if i == 0 {
                write!(text, "{cell:<w$}")
            } else {
                write!(text, "  {cell:>w$}")
            };
        }
        println!("{text}");
    };
    line(header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
