//! `pooltrack sql status|recall --round ROUND [--dialect duckdb|spark] [--out FILE]`

use std::path::{Path, PathBuf};

use pooltrack::store::Store;
use pooltrack::tracker::sql::{Dialect, Plan, PlateQc, Query, Tables};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum List {
    /// Every person with their status and the tube that decided it, by person (the rows
    /// of `pooltrack export status`).
    Status,
    /// The persons in recall with the pool that recalls them, lowest Ct first (the rows
    /// of `pooltrack worklist recall`).
    Recall,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DialectArg {
    /// Standard SQL: DuckDB, Trino, PostgreSQL, Polars.
    Duckdb,
    /// Spark SQL (string literals escape with a backslash).
    Spark,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints one SQL query that computes what pooltrack computes, for an engine that reads the
store's Delta tables: the query reads the tables `collections` and `results` (the store's
STORE/collections and STORE/results; other names with --collections-table and
--results-table) and applies pooltrack's rules: each tube's latest result by reported_at,
a positive kept against a later result, the results of plates whose controls failed and
those reported past the specimen limit after their tube's first swab not counted, a tube
holding several persons read as a pool, and the statuses in order of precedence
(positive, recall, retest_pending, resample, pending, negative). Columns: person,
status, tube, mode, result, ct_orf1ab, ct_n, site, collected_at, reported_at, lab (those
of `export status` but not_counted).

What the tables cannot say is written into the query: the round; the specimen limit
(custody.specimen_limit_hours in STORE/pooltrack.toml); the control cut-offs in force, checked against the plates the round's batches recorded as failed (if a cut-off
changed since, the recorded plates are listed instead); the file order of a batch read
from several files; and the rare tube whose mode only a row not in the table stated.
Make the query again after a batch of several files or a change of cut-offs.

With DuckDB and the deltalake Python package:
  pooltrack sql status --round 2022-04-02 > status.sql
  python3 -c '
import duckdb; from deltalake import DeltaTable
collections = DeltaTable(\"pooltrack-store/collections\").to_pyarrow_dataset()
results = DeltaTable(\"pooltrack-store/results\").to_pyarrow_dataset()
duckdb.sql(open(\"status.sql\").read()).write_csv(\"status.csv\")'

The README's section \"When one machine is not enough\" shows Spark, Trino and Polars.")]
pub struct Args {
    /// Which list the query gives.
    #[arg(value_enum)]
    list: List,
    /// The round.
    #[arg(long)]
    round: String,
    /// How string literals are written.
    #[arg(long, value_enum, default_value = "duckdb")]
    dialect: DialectArg,
    /// The name the query reads the collections table by.
    #[arg(long, value_name = "NAME", default_value = "collections")]
    collections_table: String,
    /// The name the query reads the results table by.
    #[arg(long, value_name = "NAME", default_value = "results")]
    results_table: String,
    /// Write the query to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    for (flag, name) in [
        ("--collections-table", &args.collections_table),
        ("--results-table", &args.results_table),
    ] {
        if name.trim().is_empty() || name.contains(['\n', '\r', ';']) {
            return Err(pooltrack::Error::Usage(format!(
                "{flag} {name:?}: give a table name, on one line and without ';'"
            ))
            .into());
        }
    }
    let store = Store::open(store)?;
    let query = match args.list {
        List::Status => Query::Status,
        List::Recall => Query::Recall,
    };
    let dialect = match args.dialect {
        DialectArg::Duckdb => Dialect::Standard,
        DialectArg::Spark => Dialect::Spark,
    };
    let tables = Tables {
        collections: args.collections_table.clone(),
        results: args.results_table.clone(),
    };
    let plan = Plan::of(&store, &args.round, query, dialect, tables)?;
    if let PlateQc::Recorded(plates) = &plan.plate_qc {
        eprintln!(
            "note: the control cut-offs changed since the round's results were ingested; the \
             query lists the {} plate(s) the batches recorded as failed instead of reading the \
             controls again",
            plates.len()
        );
    }
    let text = plan.text();
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| pooltrack::Error::io(path, e))?;
            eprintln!("wrote the query to {}", path.display());
        }
    }
    Ok(())
}
