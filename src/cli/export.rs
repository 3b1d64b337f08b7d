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
    },
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let Args::Status { round, out, format } = args;
    let store = Store::open(store)?;
    let round = Round::load(&store, &round)?;
    let rows = worklist::export_status(&round);
    let format = super::worklist::pick_format(format, Some(&out));
    super::worklist::emit(&rows, format, Some(&out))
}
