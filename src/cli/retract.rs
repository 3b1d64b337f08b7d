//! `pooltrack retract --batch N --reason TEXT [--by NAME] [--json]`

use std::path::Path;

use anyhow::Context;
use pooltrack::store::{BatchKind, Store, WriterOptions};
use serde::Serialize;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Takes back a batch ingested by mistake (the wrong file, the wrong day's file, a mistyped
--round, a lab's test export). Nothing is deleted: the store commits a retraction (who,
when, why) to the batch's table in one atomic commit, which takes the batch's files out
of the Delta table for every engine (they stay on disk), and from then on its rows count
nowhere (statuses, worklists, exports, reports, custody, checks of later batches), and
its files may be ingested again. A collections batch whose files had a box column takes
its box manifest with it (other engines see it leave custody/ by the commit after). `pooltrack log` shows every batch and retraction.

A results batch attaches each result to the round its tube was collected in. To move a
collections batch to another round, retract the results batches that followed it first
(this command lists them), then the collections batch, then ingest both files again:
  pooltrack retract --batch 2 --reason \"results of the mistyped round\"
  pooltrack retract --batch 1 --reason \"ingested as 2022-04-20, meant 2022-04-02\"
  pooltrack ingest collections pools.csv --round 2022-04-02
  pooltrack ingest results lab1.csv")]
pub struct Args {
    /// The batch to retract (its number, as the ingest and `pooltrack log` show it).
    #[arg(long, value_name = "N")]
    batch: u32,
    /// Why, in words: kept in the store's history.
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Who retracts it (default: the login name, $USER).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
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
    retraction: u32,
    batch: u32,
    kind: &'a str,
    round: Option<&'a str>,
    rows: u64,
    /// Of those, the rows of a collections batch's box manifest, which go with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    box_rows: Option<u64>,
    reason: &'a str,
    by: &'a str,
    at: &'a str,
    /// Live results batches with results in the retracted collections batch's round.
    results_batches_to_check: Vec<u32>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let by = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    // A retraction needs a store: a missing one is a usage error, never a new store.
    let opts = WriterOptions {
        wait: args.wait,
        create: false,
    };
    let mut store = Store::open_writer_with(store, opts)?;
    let r = store
        .retract(args.batch, &args.reason, &by)
        .with_context(|| format!("retracting batch {}", args.batch))?;
    let m = store.manifest();
    let b = m
        .batch(args.batch)
        .context("the retracted batch is in the manifest")?;
    // Results batches after a collections batch that put results in its rounds: they
    // stay attached to those rounds until they are retracted too.
    let rounds: Vec<&str> = b.segments.iter().map(|s| s.round.as_str()).collect();
    let follow: Vec<u32> = if b.kind == BatchKind::Collections {
        m.live_batches()
            .filter(|x| x.kind == BatchKind::Results && x.id > b.id)
            .filter(|x| {
                x.segments
                    .iter()
                    .any(|s| rounds.contains(&s.round.as_str()))
            })
            .map(|x| x.id)
            .collect()
    } else {
        Vec::new()
    };
    let done = Done {
        retraction: r.id,
        batch: b.id,
        kind: b.kind.as_str(),
        round: b.round.as_deref(),
        rows: b.rows_committed,
        box_rows: b
            .custody
            .as_ref()
            .filter(|_| b.kind != BatchKind::Custody)
            .map(|c| c.rows),
        reason: &r.reason,
        by: &r.by,
        at: &r.at,
        results_batches_to_check: follow,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
        return Ok(());
    }
    let round = done
        .round
        .map_or(String::new(), |r| format!(" of round {r}"));
    let rows = match done.box_rows {
        Some(n) => format!(
            "{} row(s) and its box manifest of {n} tube(s)",
            done.rows.saturating_sub(n)
        ),
        None => format!("{} row(s)", done.rows),
    };
    println!(
        "retracted batch {} ({}{round}, {rows}) at {} by {}: {}",
        done.batch, done.kind, done.at, done.by, done.reason
    );
    println!(
        "its rows no longer count; its files may be ingested again (pooltrack log shows the history)"
    );
    if !done.results_batches_to_check.is_empty() {
        let list: Vec<String> = done
            .results_batches_to_check
            .iter()
            .map(u32::to_string)
            .collect();
        println!(
            "note: results batch(es) {} hold results for round(s) {}: results of this batch's tubes stay there until those batches are retracted and their files ingested again",
            list.join(", "),
            rounds.join(", ")
        );
    }
    Ok(())
}
