//! `pooltrack review --round ROUND [--format csv|json] [--out FILE]`

use std::path::{Path, PathBuf};

use anyhow::Context;
use pooltrack::review::Review;
use pooltrack::store::Store;
use pooltrack::tracker::Statuses;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One row per flag: kind, tube, persons (`;`-separated), detail.
    Csv,
    /// Flags grouped by kind, with counts and every tube's result rows.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Flags:
  discordant_pool        a pool whose effective result is positive while every member
                         retested negative in a later single tube: contamination, a weak
                         sample, or a swapped tube. Inconclusive pools are not flagged
                         (an all-negative retest is the expected end of a weak signal).
  missed_by_pooling      a person positive in a single tube who has an earlier pool
                         tube (by collection time) whose result is negative: pooling
                         diluted the sample, or the person was infected in between.
                         The row's tube is the negative pool.
  changed_from_positive  a tube whose positive result was followed by a negative,
                         inconclusive or invalid one; pooltrack keeps it positive until
                         a person decides.
  conflicting_tube_rows  a tube whose rows disagree about its mode, capacity or site.
                         Every row was kept (the swabs are in the tube); the tube keeps
                         the first values stated. Lists every row with what it stated.
  shared_single_tube     a tube its rows call single that holds more than one person.
                         It is read as a pool: its positive recalls everyone in it.
Each flag names the tube, the persons and every result with its time, lab, plate and
the batch, file and line it came from. Without --out the list goes to standard output.")]
pub struct Args {
    /// The round.
    #[arg(long)]
    round: String,
    /// Output format (default: from the --out extension, else csv).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write to this file (created 0600) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let round = Statuses::load(&store, &args.round)?;
    let review = Review::compute(&store, &round)?;
    let json = args.format.map_or_else(
        || {
            args.out
                .as_deref()
                .and_then(Path::extension)
                .is_some_and(|e| e == "json")
        },
        |f| f == Format::Json,
    );
    if let Some(path) = &args.out {
        review
            .write_file(json, path)
            .with_context(|| format!("writing {}", path.display()))?;
        let c = review.counts;
        eprintln!(
            "wrote {} discordant pool(s), {} missed by pooling, {} changed from positive, {} tube(s) with conflicting rows, {} shared single tube(s) to {}",
            c.discordant_pool,
            c.missed_by_pooling,
            c.changed_from_positive,
            c.conflicting_tube_rows,
            c.shared_single_tube,
            path.display()
        );
    } else {
        let stdout = std::io::stdout();
        review.write(json, &mut stdout.lock())?;
    }
    Ok(())
}
