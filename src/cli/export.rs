//! `pooltrack export status|health-codes --round ROUND [--out FILE]`

use std::path::{Path, PathBuf};

use pooltrack::output::stream;
use pooltrack::roster::StatusExport;
use pooltrack::store::Store;
use pooltrack::{health_code, output};

use super::output::{FormatArg, pick_format, pseudonymizer};

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Every person of the round with their status and the tube that decided it.
    Status {
        /// The round.
        #[arg(long)]
        round: String,
        /// Write to this file (.csv, .parquet or .json) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format (default: from the --out extension, else csv).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Replace person ids with keyed pseudonyms (BLAKE3 keyed hash of the id under
        /// the secret in KEY_FILE): same key, same pseudonym; rows sorted by pseudonym.
        #[arg(long, value_name = "KEY_FILE")]
        pseudonymize: Option<PathBuf>,
    },
    /// Every person's health-code color with the tube and result that decided it: of one
    /// round (--round), or across every round of the store as of a time (--as-of).
    #[command(after_help = "\
With --round R, the codes after that round: red = positive; yellow = recall,
retest_pending, resample, or untested (registered with `ingest population` but no tube in
the round); green = negative, or pending (a collected tube whose result is not in yet).
Columns: person, color, status, tube, mode, collected_at, collection_source, result,
ct_orf1ab, ct_n, reported_at, lab, plate, result_source, not_counted; the sources name
the batch, file and line, so an appeal can be answered; not_counted says why a result
shown does not count (\"tested 49 h after the swab, past the 48 h specimen limit\": a
tube with only results past the specimen limit needs a resample).

Without --round, the codes across every round of the store as of --as-of T (default:
now); results reported after T and swabs after T do not count. Each person's rounds are
read oldest first:
  red     positive: a round found them positive and it is not cleared yet (cleared by
          clear_negatives = 2 negative single tubes swabbed after it, each at least
          clear_gap_hours = 24 after the one before)
  yellow  recall / retest_pending / resample: what the latest round that swabbed them says
  yellow  no_negative_within_48h: registered (ingest population), and no negative swab
          within their window: validity_hours = 48, or their group's (the register's group
          column) from [health_codes.groups] in STORE/pooltrack.toml
  green   negative_within_48h (valid_until = swab + window), pending_within_48h (a tube
          swabbed within the window awaits its result), or, for persons who need not
          test (not registered, or a group with window 0), negative / pending
Columns: person, color, reason, valid_until, group, round, status (in that round, as of
T), tube, mode, collected_at, collection_source, result, ct_orf1ab, ct_n, reported_at,
lab, plate, result_source, not_counted.
The rounds before the newest are settled once all their swabs and reports are at or
before T: the export keeps their fold in STORE/health-codes.state, and the next export
starts from it and reads only the rounds after them (it says so on stderr). It is used only while those rounds, their batches,
pooltrack.toml and the store settings are unchanged; deleting it is always safe.

Example:
  pooltrack export health-codes --as-of '2022-04-04 08:00' --out codes.csv
  pooltrack status --person 310000000000000012 --as-of '2022-04-04 08:00'")]
    HealthCodes {
        /// The round (without it: the codes across every round, as of --as-of).
        #[arg(long)]
        round: Option<String>,
        /// Across rounds: the time the codes are decided at (RFC 3339, or a local time
        /// in the store's zone such as '2022-04-04 08:00'); default now.
        #[arg(long, value_name = "TIME", conflicts_with = "round")]
        as_of: Option<String>,
        /// Write to this file (.csv, .parquet or .json) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format (default: from the --out extension, else csv).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
    },
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    // Parquet to a terminal is refused before any work.
    let (Args::Status { out, format, .. } | Args::HealthCodes { out, format, .. }) = &args;
    if out.is_none() {
        output::refuse_parquet_to_terminal(pick_format(*format, None))?;
    }
    match args {
        Args::Status {
            round,
            out,
            format,
            pseudonymize,
        } => {
            let pseudo = pseudonymizer(pseudonymize.as_deref())?;
            let store = Store::open(store)?;
            let mut export = StatusExport::load(&store, &round)?;
            if let Some(p) = &pseudo {
                export.0.pseudonymize(|id| p.digest(id));
            }
            let format = pick_format(format, out.as_deref());
            let Some(out) = out else {
                return Ok(stream::write_stdout(&export, format)?);
            };
            stream::write_file(&export, format, &out)?;
            eprintln!("wrote {} person(s) to {}", export.0.len(), out.display());
            Ok(())
        }
        Args::HealthCodes {
            round,
            as_of,
            out,
            format,
        } => {
            let store = Store::open(store)?;
            let format = pick_format(format, out.as_deref());
            match round {
                Some(round) => Ok(health_code::export(&store, &round, format, out.as_deref())?),
                None => super::health_codes_as_of::export(
                    &store,
                    as_of.as_deref(),
                    format,
                    out.as_deref(),
                ),
            }
        }
    }
}
