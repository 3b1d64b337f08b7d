//! `pooltrack compact --round R [--json]`

use std::path::Path;

use anyhow::Context;
use pooltrack::store::runs::Merged;
use pooltrack::store::{BatchKind, Store, WriterOptions};
use serde::Serialize;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
A lab ingests a round in many batches, each with its own sorted indexes beside its rows.
After every batch the ingest merges the round's newest indexes into runs, a few at a
time (four of a size, so that a 10,000-row batch into a large round merges little), and
a round of a day's 2,500 batches ends as a handful of pieces: every output reads them
as one, each a little slower for every piece. When the round's batches have all come
(or before a night of reports), this merges every piece of the round into one run, for
its collections and its results: status, the worklists, the exports and the report
then read the round as if it had come in one batch.

Nothing the round holds changes: runs are derived from the batches' own indexes, which
stay, and no commit is made; `pooltrack verify` checks the run against them. It takes
the writer's lock (another ingest waits or is refused, as for any writer) and about a
second per 10 M rows. Later batches of the round merge as usual.

  pooltrack compact --round 2022-04-02")]
pub struct Args {
    /// The round to merge.
    #[arg(long)]
    round: String,
    /// If another pooltrack process is writing to the store, wait up to SECONDS for it
    /// to finish (default: do not wait; the store is busy, exit 3).
    #[arg(long, value_name = "SECONDS", value_parser = super::parse_wait, default_value = "0")]
    wait: std::time::Duration,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Done<'a> {
    round: &'a str,
    collections: Merged,
    results: Merged,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let opts = WriterOptions {
        wait: args.wait,
        create: false,
    };
    let mut store = Store::open_writer_with(store, opts)?;
    store.require_round(&args.round)?;
    let mut merge = |kind: BatchKind| {
        store.compact_runs(kind, &args.round).with_context(|| {
            format!(
                "merging the {} indexes of round {}",
                kind.as_str(),
                args.round
            )
        })
    };
    let done = Done {
        round: &args.round,
        collections: merge(BatchKind::Collections)?,
        results: merge(BatchKind::Results)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(());
    }
    for (what, m) in [("collections", done.collections), ("results", done.results)] {
        let merged = if m.runs == 0 {
            "nothing to merge".to_owned()
        } else {
            format!("{} index record(s) merged", m.records)
        };
        println!(
            "round {}: {what}: {} batch(es) read as {} piece(s); {merged}",
            done.round, m.segments, m.pieces
        );
    }
    Ok(())
}
