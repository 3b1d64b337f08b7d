//! `pooltrack log [--json]`

use std::path::Path;

use pooltrack::store::Store;
use pooltrack::store::manifest::{Batch, BatchKind, Retraction};
use serde::Serialize;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Lists the store's history, oldest first: every batch (number, kind, round, when, rows
committed and refused, its files; a collections batch whose files had a box column also
its box manifest rows) and every retraction (which batch, when, by whom, why).
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
    /// Of those, the rows of a collections batch's box manifest (its files' box column).
    #[serde(skip_serializing_if = "Option::is_none")]
    box_rows: Option<u64>,
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
        rounds: if b.kind == BatchKind::Custody {
            b.round.iter().map(String::as_str).collect()
        } else {
            b.segments.iter().map(|s| s.round.as_str()).collect()
        },
        committed_at: &b.committed_at,
        files: b.sources.iter().map(|s| s.path.as_str()).collect(),
        rows_committed: b.rows_committed,
        box_rows: b
            .custody
            .as_ref()
            .filter(|_| b.kind != BatchKind::Custody)
            .map(|c| c.rows),
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
                // A collections batch's box manifest rows are told apart from its
                // memberships.
                let committed = match b.box_rows {
                    Some(n) => format!(
                        "{} committed + {n} box manifest row(s)",
                        b.rows_committed.saturating_sub(n)
                    ),
                    None => format!("{} committed", b.rows_committed),
                };
                println!(
                    "batch {:>4}  {}  {}{round}  {committed}, {} refused, {} warning(s)  {}{retracted}",
                    b.id,
                    b.committed_at,
                    b.kind,
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
