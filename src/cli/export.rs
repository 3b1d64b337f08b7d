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
    /// Every person's health-code color with the tube and result that decided it.
    #[command(after_help = "\
Colors: red = positive; yellow = recall, retest_pending, resample, or untested (registered
with `ingest population` but no tube in the round); green = negative, or pending (a
collected tube whose result is not in yet). Columns: person, color, status, tube, mode,
collected_at, collection_source, result, ct_orf1ab, ct_n, reported_at, lab, plate,
result_source; the sources name the batch, file and line, so an appeal can be answered.")]
    HealthCodes {
        /// The round.
        #[arg(long)]
        round: String,
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
        Args::HealthCodes { round, out, format } => {
            let store = Store::open(store)?;
            let format = pick_format(format, out.as_deref());
            Ok(health_code::export(&store, &round, format, out.as_deref())?)
        }
    }
}
