//! `pooltrack migrate [--wait SECONDS] [--json]`

use std::path::Path;

use pooltrack::store::manifest::FORMAT;
use pooltrack::store::migrate::migrate;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Converts a store written by an older pooltrack (formats 1 and 2: MANIFEST.json and the
rounds/ folder) to format 3, in which the collections, results and population register
are three Delta Lake tables that Spark, Trino, DuckDB, Polars or delta-rs read as they
are, seeing only committed batches:
  STORE/collections/_delta_log/   one commit per batch
  STORE/collections/R1/b000001.parquet
  STORE/collections/_pooltrack/R1/b000001.tubes   pooltrack's own indexes
This pooltrack reads an old store as it is but writes only formats 3 and 4, so an
ingest into an old store asks for this command first. A format-3 store (made by an
earlier pooltrack, or by this command) is read and written as it is; format 4 differs
only in its smaller sidecar indexes, and new stores are made in it.

Nothing is copied and nothing is lost: every file is checked, then given its new name
(a hard link), every batch and retraction is committed to its table in order, and the
switch is one rename (MANIFEST.json becomes MANIFEST.json.format-2, kept as history).
Killed at any moment, the store is the old one or the new one; run the command again.
Run it between batch jobs: a command that was reading the old files when they were
renamed fails and is run again. On a store already of format 3 or 4 it does nothing.

Example:
  pooltrack migrate --store /data/pooltrack-store")]
pub struct Args {
    /// If another pooltrack process is writing to the store, wait up to SECONDS for it
    /// to finish (default: do not wait; the store is busy, exit 3).
    #[arg(long, value_name = "SECONDS", value_parser = super::parse_wait, default_value = "0")]
    wait: std::time::Duration,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let r = migrate(store, args.wait)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    if r.from == r.to {
        println!(
            "{}: already store format {} (this pooltrack reads and writes formats 3 and {FORMAT} as they are); nothing to do",
            store.display(),
            r.to
        );
        return Ok(());
    }
    println!(
        "{}: store format {} -> {} in {:.2} s: {} batch(es) and {} retraction(s) committed to the \
         collections, results and population tables; {} file(s), {} bytes, renamed (not copied)",
        store.display(),
        r.from,
        r.to,
        r.seconds,
        r.batches,
        r.retractions,
        r.files,
        r.bytes
    );
    if let Some(old) = &r.old_manifest {
        println!("the old manifest is kept as {old}");
    }
    Ok(())
}
