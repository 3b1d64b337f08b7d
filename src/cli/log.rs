//! `pooltrack log [--json]`

use std::path::Path;

use pooltrack::store::Store;
use pooltrack::store::manifest::{Batch, Retraction};
use serde::Serialize;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Lists the store's history, oldest first: every batch (number, kind, round, when, rows
committed and refused, its files) and every retraction (which batch, when, by whom, why).
A retracted batch is marked: its rows count nowhere, its files stay in the store.
The store is only read; no lock is taken.")]
pub struct Args {
    /// Print the log as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum Entry<'a> {
    Batch {
        #[serde(flatten)]
        batch: BatchLine<'a>,
    },
    Retraction(&'a Retraction),
}

#[derive(Serialize)]
struct BatchLine<'a> {
    id: u32,
    kind: &'a str,
    round: Option<&'a str>,
    rounds: Vec<&'a str>,
    committed_at: &'a str,
    files: Vec<&'a str>,
    rows_committed: u64,
    rejected: u64,
    warnings: u64,
    retracted_by: Option<u32>,
}

fn line(b: &Batch, retracted_by: Option<u32>) -> BatchLine<'_> {
    BatchLine {
        id: b.id,
        kind: b.kind.as_str(),
        round: b.round.as_deref(),
        // A custody batch has no round segments; its round is the one it names.
        rounds: if b.custody.is_some() {
            b.round.iter().map(String::as_str).collect()
        } else {
            b.segments.iter().map(|s| s.round.as_str()).collect()
        },
        committed_at: &b.committed_at,
        files: b.sources.iter().map(|s| s.path.as_str()).collect(),
        rows_committed: b.rows_committed,
        rejected: b.rejected,
        warnings: b.warnings,
        retracted_by,
    }
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let m = store.manifest();
    let mut entries: Vec<(u32, Entry<'_>)> = m
        .batches
        .iter()
        .map(|b| {
            let by = m.retraction_of(b.id).map(|r| r.id);
            (b.id, Entry::Batch { batch: line(b, by) })
        })
        .chain(m.retractions.iter().map(|r| (r.id, Entry::Retraction(r))))
        .collect();
    entries.sort_by_key(|(id, _)| *id);
    if args.json {
        let list: Vec<&Entry<'_>> = entries.iter().map(|(_, e)| e).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for (_, e) in &entries {
        match e {
            Entry::Batch { batch: b } => {
                let round = if b.rounds.is_empty() {
                    String::new()
                } else {
                    format!(" round {}", b.rounds.join(","))
                };
                let retracted = b
                    .retracted_by
                    .map_or(String::new(), |r| format!("  [retracted by {r}]"));
                println!(
                    "batch {:>4}  {}  {}{round}  {} committed, {} refused, {} warning(s)  {}{retracted}",
                    b.id,
                    b.committed_at,
                    b.kind,
                    b.rows_committed,
                    b.rejected,
                    b.warnings,
                    b.files.join(" ")
                );
            }
            Entry::Retraction(r) => println!(
                "retract {:>3}  {}  batch {} by {}: {}",
                r.id, r.at, r.batch, r.by, r.reason
            ),
        }
    }
    if entries.is_empty() {
        println!("the store holds no batch yet");
    }
    Ok(())
}
