//! `pooltrack custody --round ROUND [--as-of TIME] [--receipt-hours H]
//! [--specimen-limit-hours H] [--boxes] [--json] [--out FILE] [--format FORMAT]`

use std::path::{Path, PathBuf};

use pooltrack::custody::{self, Custody, KINDS, Limits};
use pooltrack::output;
use pooltrack::store::Store;

use super::output::{FormatArg, list_format};

/// Findings of each kind the screen lists (JSON and --out list all).
const LISTED: usize = 10;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Follows each tube of the round from its swab to the lab's door to its test, from the
collections, the results (their received_at) and the custody rows: box manifests
(pooltrack ingest boxes) and the labs' receipt scans (pooltrack ingest receipts). Only
what had happened by --as-of counts. Findings:

  box_not_received   a box sealed --receipt-hours ago of which nothing arrived
  not_received       a tube collected --receipt-hours ago with no receipt and no result
                     (lost or stuck); a scan of its box counts, unless the lab scanned
                     that box's tubes one by one
  missing_from_box   a tube of a box received tube by tube, not scanned, no result
  unknown_box        a box scanned that no manifest or collection lists
  unknown_tube       a tube scanned, or carried in a received box, that no collection
                     of the round lists
  received_again     a box or tube scanned twice (the first scan counts)
  past_limit         a tube none of whose results came within --specimen-limit-hours
                     of its first swab: as every report reads it, no result of it
                     counts and its persons need a resample (status resample unless a
                     later negative tube clears it)

Transport: each box's minutes from sealing (sealed_at, else its last collection) to
receipt (its scan, else its first tube received); median and p90 are nearest-rank.

Example: box B01 (tubes PL01, PL02) sealed 09:00, scanned at lab L1 at 10:30; box B02
(PL03) sealed 09:10 and never scanned; PL01 reported at 12:00 the next day, 27 h after
its 09:00 swab. With --receipt-hours 12 --specimen-limit-hours 24, as of the next day
12:00: B01's transport is 90 min, B02 is box_not_received (26.8 h), PL03 not_received,
PL01 past_limit.

  pooltrack ingest boxes boxes.csv --round 2022-04-02
  pooltrack ingest receipts receipts.csv --round 2022-04-02
  pooltrack custody --round 2022-04-02
  pooltrack custody --round 2022-04-02 --out custody.csv
  pooltrack custody --round 2022-04-02 --boxes --out boxes.parquet

Limits default to [custody] receipt_hours (12) and specimen_limit_hours (48) in
STORE/pooltrack.toml. The statuses, worklists and exports follow the store's specimen
limit; --specimen-limit-hours asks what another limit would flag, and says so.")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// "Now": RFC 3339, or YYYY-MM-DD HH:MM[:SS] in the store's time zone (default:
    /// the round's last collection, scan or result).
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// A tube not received this many hours after collection is lost or stuck (default:
    /// custody.receipt_hours in STORE/pooltrack.toml, else 12).
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    receipt_hours: Option<f64>,
    /// A result reported later than this after its tube's first swab does not count
    /// (default: custody.specimen_limit_hours in STORE/pooltrack.toml, else 48, which
    /// the statuses follow; another value only asks what it would flag).
    #[arg(long, value_name = "H", allow_negative_numbers = true)]
    specimen_limit_hours: Option<f64>,
    /// With --out or --format: list each box's trip instead of the findings.
    #[arg(long)]
    boxes: bool,
    /// Print the whole report as JSON (counts, every finding, transport, every box).
    #[arg(long, conflicts_with_all = ["out", "format"])]
    json: bool,
    /// Write the findings (or with --boxes the boxes) to this file: .csv, .json or .parquet.
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
    store.require_round(&args.round)?;
    let configured = store.config()?.custody;
    let limits = Limits {
        receipt_hours: args.receipt_hours.unwrap_or(configured.receipt_hours),
        specimen_limit_hours: args
            .specimen_limit_hours
            .unwrap_or(configured.specimen_limit_hours),
    }
    .check()?;
    let as_of = super::as_of(&store, args.as_of.as_deref())?;
    let c = custody::load(&store, &args.round, Some(limits), as_of)?;
    if let Some(format) = format {
        let out = args.out.as_deref();
        if args.boxes {
            output::emit(&c.box_trips, format, out, "box(es)")?;
        } else {
            output::emit(&c.findings, format, out, "finding(s)")?;
        }
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    print(&c, as_of.is_some());
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |m| format!("{m:.0}"))
}

fn print(c: &Custody, given: bool) {
    let basis = if given {
        "--as-of"
    } else {
        "the round's last event; --as-of to change"
    };
    println!(
        "chain of custody of round {}, as of {} ({basis})",
        c.round, c.as_of
    );
    println!(
        "limits: received within {} h of collection, tested within {} h",
        c.limits.receipt_hours, c.limits.specimen_limit_hours
    );
    println!(
        "tubes: {} collected, {} in a box, {} received; boxes: {} named, {} received; custody rows: {}",
        c.tubes, c.boxed_tubes, c.received_tubes, c.boxes, c.received_boxes, c.custody_rows
    );
    let t = &c.transport;
    if t.boxes > 0 {
        println!(
            "transport, sealing to receipt: {} box(es), median {} min, p90 {} min, longest {} min",
            t.boxes,
            opt(t.median_minutes),
            opt(t.p90_minutes),
            opt(t.max_minutes)
        );
    }
    if c.is_clean() {
        println!("nothing wrong in the chain");
        return;
    }
    for kind in KINDS {
        let of: Vec<_> = c.findings.iter().filter(|f| f.kind == kind).collect();
        if of.is_empty() {
            continue;
        }
        println!("{kind}: {}", of.len());
        for f in of.iter().take(LISTED) {
            let what = match (f.box_id.is_empty(), f.tube.is_empty()) {
                (false, true) => format!("box {}", f.box_id),
                (_, false) => format!("tube {}", f.tube),
                (true, true) => String::new(),
            };
            println!("  {what}: {}", f.detail);
        }
        if of.len() > LISTED {
            println!(
                "  ... and {} more (--json or --out lists all)",
                of.len() - LISTED
            );
        }
    }
    if c.counts.resample_persons > 0 {
        println!(
            "persons to resample (results past the specimen limit): {}",
            c.counts.resample_persons
        );
    }
}
