//! `pooltrack export status --round ROUND --out FILE`

use std::path::{Path, PathBuf};

use pooltrack::store::Store;
use pooltrack::tracker::Round;
use pooltrack::worklist::{self, Format};

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Every person of the round with their status and the tube that decided it.
    Status {
        /// The round.
        #[arg(long)]
        round: String,
        /// The output file (.csv, .parquet or .json).
        #[arg(long)]
        out: PathBuf,
        /// Output format (default: from the --out extension, else csv).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Replace person ids with keyed pseudonyms (BLAKE3 keyed hash of the id under
        /// the secret in KEY_FILE): same key, same pseudonym; rows sorted by pseudonym.
        #[arg(long, value_name = "KEY_FILE")]
        pseudonymize: Option<PathBuf>,
    },
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let Args::Status {
        round,
        out,
        format,
        pseudonymize,
    } = args;
    let pseudo = super::worklist::pseudonymizer(pseudonymize.as_deref())?;
    let store = Store::open(store)?;
    let round = Round::load(&store, &round)?;
    let mut rows = worklist::export_status(&round);
    if let Some(p) = &pseudo {
        p.export(&mut rows);
    }
    let format = super::worklist::pick_format(format, Some(&out));
    super::worklist::emit(&rows, format, Some(&out))
}
