//! `pooltrack worklist recall|resample|positives --round ROUND [--out FILE]`

use std::path::{Path, PathBuf};

use anyhow::Context;
use pooltrack::store::Store;
use pooltrack::tracker::Round;
use pooltrack::worklist::{self, Format, Worklist};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum List {
    /// Persons whose pool turned positive: re-swab each in a single tube, lowest Ct first.
    Recall,
    /// Persons whose tube was invalid or whose single tube was inconclusive.
    Resample,
    /// Persons found positive, with their tube and times.
    Positives,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Columns: person, status, tube, mode, result, ct_orf1ab, ct_n, site, collected_at,
reported_at, lab. Without --out the list goes to standard output (CSV or JSON).")]
pub struct Args {
    /// Which list.
    #[arg(value_enum)]
    list: List,
    /// The round.
    #[arg(long)]
    round: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format (default: from the --out extension, else csv).
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// Picks the format: the flag, else the output file's extension, else CSV.
pub fn pick_format(flag: Option<Format>, out: Option<&Path>) -> Format {
    flag.or_else(|| out.and_then(Format::from_path))
        .unwrap_or(Format::Csv)
}

/// Writes rows to the file or to standard output.
pub fn emit(
    rows: &[worklist::PersonRow],
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            worklist::write_file(rows, format, path)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} person(s) to {}", rows.len(), path.display());
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            worklist::write_text(rows, format, &mut lock)?;
        }
    }
    Ok(())
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let round = Round::load(&store, &args.round)?;
    let list = match args.list {
        List::Recall => Worklist::Recall,
        List::Resample => Worklist::Resample,
        List::Positives => Worklist::Positives,
    };
    let rows = worklist::build(&round, list);
    let format = pick_format(args.format, args.out.as_deref());
    emit(&rows, format, args.out.as_deref())
}
