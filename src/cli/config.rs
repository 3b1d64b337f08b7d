//! `pooltrack config [--time-zone Z] [--ct-cutoff C] [--write-defaults]`

use std::path::Path;

use anyhow::bail;
use pooltrack::store::config::Config;
use pooltrack::store::{Settings, Store, WriterOptions, fsutil};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The store's settings (time zone, sample Ct cut-off) are committed in its collections
table's log and change only through this command. The other cut-offs and the turnaround deadlines live in
STORE/pooltrack.toml, a file you edit (--write-defaults creates it with every key and
its meaning):

  [results]     ic_cutoff                  internal control Ct below it = signal
  [plate_qc]    negative_control_cutoff    a negative control amplifying below it fails its plate
                positive_control_cutoff    a positive control needs both targets below it
  [deadlines]   pool_hours, single_hours   a result later than this after collection is late
  [ids]         id_check                   a resident id (GB 11643) with a wrong check
                                           character: \"warn\" (default), \"reject\" or \"off\"

Cut-offs and id_check apply to batches ingested after the change; committed rows keep the outcomes
they were read with. Deadlines apply to every report made after the change.")]
pub struct Args {
    /// The zone of times written without an offset: a UTC offset (+08:00) or an IANA
    /// zone name whose offset does not change (Asia/Shanghai); zones with daylight-saving
    /// time are refused.
    #[arg(long, value_name = "ZONE")]
    time_zone: Option<String>,
    /// Ct cut-off: a target amplifying below it counts as a hit.
    #[arg(long, value_name = "CT")]
    ct_cutoff: Option<f32>,
    /// Create STORE/pooltrack.toml with the default cut-offs and deadlines, commented.
    #[arg(long)]
    write_defaults: bool,
    /// If another pooltrack process is writing to the store, wait up to SECONDS for it
    /// to finish instead of failing at once with "store is busy" (exit 3).
    #[arg(long, value_name = "SECONDS", value_parser = super::parse_wait, default_value = "0")]
    wait: std::time::Duration,
}

pub fn run(store: &Path, args: &Args) -> anyhow::Result<()> {
    // A zone name is checked (and spelled as the database spells it) before the store
    // is opened for writing.
    let time_zone = match &args.time_zone {
        None => None,
        Some(z) => Some(
            pooltrack::time::resolve_zone(z)
                .map_err(|e| pooltrack::Error::Usage(format!("--time-zone: {e}")))?
                .1,
        ),
    };
    let changes = args.time_zone.is_some() || args.ct_cutoff.is_some();
    let settings = if !changes && !args.write_defaults {
        Store::open(store)?.manifest().settings.clone()
    } else {
        let opts = WriterOptions {
            wait: args.wait,
            ..WriterOptions::default()
        };
        let mut s = Store::open_writer_with(store, opts)?;
        let mut new: Settings = s.manifest().settings.clone();
        if let Some(z) = time_zone {
            new.time_zone = z;
        }
        if let Some(c) = args.ct_cutoff {
            new.ct_cutoff = c;
        }
        if changes {
            s.set_settings(new.clone())?;
        }
        if args.write_defaults {
            let path = Config::path(s.root());
            if path.exists() {
                bail!(
                    "{} exists already; edit it, or remove it to start from the defaults",
                    path.display()
                );
            }
            fsutil::write_atomic(&path, Config::default_text().as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        new
    };
    let config = Config::load(store)?;
    let (negative, positive) = config.control_cutoffs(settings.ct_cutoff);
    match pooltrack::time::zone_offset(&settings.time_zone) {
        Some(offset) if pooltrack::time::Offset::parse(&settings.time_zone).is_none() => {
            println!(
                "time_zone = {}   # UTC{offset} all year",
                settings.time_zone
            );
        }
        _ => println!("time_zone = {}", settings.time_zone),
    }
    println!("ct_cutoff = {}", settings.ct_cutoff);
    let path = Config::path(store);
    let from = if path.exists() {
        path.display().to_string()
    } else {
        "defaults; no pooltrack.toml".to_owned()
    };
    println!("# from {from}");
    println!("results.ic_cutoff = {}", config.results.ic_cutoff);
    println!("plate_qc.negative_control_cutoff = {negative}");
    println!("plate_qc.positive_control_cutoff = {positive}");
    println!("deadlines.pool_hours = {}", config.deadlines.pool_hours);
    println!("deadlines.single_hours = {}", config.deadlines.single_hours);
    println!("ids.id_check = {}", config.ids.id_check.as_str());
    println!("prevalence.sensitivity = {}", config.prevalence.sensitivity);
    println!("prevalence.specificity = {}", config.prevalence.specificity);
    println!("custody.receipt_hours = {}", config.custody.receipt_hours);
    println!(
        "custody.specimen_limit_hours = {}",
        config.custody.specimen_limit_hours
    );
    Ok(())
}
