//! `pooltrack worklist recall|resample|positives|rerun|untested|unregistered --round ROUND [--out FILE]`

use std::path::{Path, PathBuf};

use pooltrack::coverage::Coverage;
use pooltrack::output;
use pooltrack::privacy::Pseudonymizer;
use pooltrack::store::Store;
use pooltrack::tracker::Decided;
use pooltrack::turnaround;
use pooltrack::worklist::{self, Worklist};

use super::output::{FormatArg, pick_format, pseudonymizer};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum List {
    /// Persons whose pool turned positive: re-swab each in a single tube, lowest Ct first.
    Recall,
    /// Persons whose tube was invalid, whose single tube was inconclusive, or whose tube
    /// was tested only past the specimen limit.
    Resample,
    /// Persons found positive, with their tube and times.
    Positives,
    /// Tubes the lab must run again because their plate's controls failed (same tube,
    /// re-extracted; nobody is re-swabbed), longest-waiting first.
    Rerun,
    /// Registered persons (population register) with no tube in the round.
    Untested,
    /// Persons tested in the round who are not in the population register.
    Unregistered,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Columns of recall, resample, positives: person, status, tube, mode, result, ct_orf1ab,
ct_n, site, collected_at, reported_at, lab, not_counted (why the result shown does not
count: \"tested 49 h after the swab, past the 48 h specimen limit\"). Rerun: tube, mode, members, lab, plate, well,
reported_at (of the void result), reason (which control failed). Untested (needs
`pooltrack ingest population FILE`): person, district, community, group, by district and
community. Unregistered: person, tube, site, collected_at (their first tube in the
round), by site and time. Without --out the list goes to standard output (CSV or JSON).")]
pub struct Args {
    /// Which list.
    #[arg(value_enum)]
    list: List,
    /// The round.
    #[arg(long)]
    round: String,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Output format (default: from the --out extension, else csv).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Replace person ids with keyed pseudonyms (BLAKE3 keyed hash of the id under the
    /// secret in KEY_FILE): same key, same pseudonym; for lists shared outside the office.
    #[arg(long, value_name = "KEY_FILE")]
    pseudonymize: Option<PathBuf>,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    let started = pooltrack::time::now();
    // Read the key first: a bad key file fails before any work.
    let pseudo = pseudonymizer(args.pseudonymize.as_deref())?;
    let store = Store::open(store)?;
    let format = pick_format(args.format, args.out.as_deref());
    if args.out.is_none() {
        output::refuse_parquet_to_terminal(format)?;
    }
    let list = match args.list {
        List::Recall => Worklist::Recall,
        List::Resample => Worklist::Resample,
        List::Positives => Worklist::Positives,
        List::Rerun => {
            let rows = worklist::reruns(&store, &Decided::load(&store, &args.round)?)?;
            return Ok(output::emit(&rows, format, args.out.as_deref(), "tube(s)")?);
        }
        List::Untested => {
            let mut rows = Coverage::compute(&store, &args.round)?.untested(&store)?;
            if let Some(p) = &pseudo {
                pseudonymize(
                    &mut rows,
                    p,
                    |r| &mut r.person,
                    |r| (r.district.clone(), r.community.clone(), r.person.clone()),
                );
            }
            return Ok(output::emit(
                &rows,
                format,
                args.out.as_deref(),
                "person(s)",
            )?);
        }
        List::Unregistered => {
            let mut rows = Coverage::compute(&store, &args.round)?.unregistered(&store)?;
            if let Some(p) = &pseudo {
                pseudonymize(
                    &mut rows,
                    p,
                    |r| &mut r.person,
                    |r| (r.site.clone(), r.collected_at.clone(), r.person.clone()),
                );
            }
            return Ok(output::emit(
                &rows,
                format,
                args.out.as_deref(),
                "person(s)",
            )?);
        }
    };
    let round = Decided::load(&store, &args.round)?;
    let mut rows = worklist::build(&store, &round, list)?;
    if let Some(p) = &pseudo {
        p.worklist(&mut rows);
    }
    output::emit(&rows, format, args.out.as_deref(), "person(s)")?;
    if matches!(list, Worklist::Recall) {
        // `turnaround` measures recall delays from this log. The list is out already:
        // a store we cannot write to (read-only media, another user's) costs the
        // measurement, not the list.
        let n = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        if let Err(e) =
            turnaround::record_recall_run(store.root(), &args.round, started, n, store.zone())
        {
            eprintln!("pooltrack: warning: the recall run was not logged: {e}");
        }
    }
    Ok(())
}

/// Replaces each row's person id by its pseudonym, then re-sorts the rows by `key` so
/// their order does not follow the real ids.
fn pseudonymize<R, K: Ord>(
    rows: &mut [R],
    p: &Pseudonymizer,
    person: impl Fn(&mut R) -> &mut String,
    key: impl Fn(&R) -> K,
) {
    for r in rows.iter_mut() {
        let id = person(r);
        *id = p.pseudonym(id);
    }
    rows.sort_by_cached_key(key);
}
