//! `pooltrack config [--time-zone Z] [--ct-cutoff C]`

use std::path::Path;

use pooltrack::store::{Settings, Store};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Settings apply to batches ingested after the change; committed rows keep the times and
outcomes they were read with.")]
pub struct Args {
    /// UTC offset for times written without one, like +08:00.
    #[arg(long)]
    time_zone: Option<String>,
    /// Ct cut-off: a target amplifying below it counts as a hit.
    #[arg(long)]
    ct_cutoff: Option<f32>,
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let settings = if args.time_zone.is_none() && args.ct_cutoff.is_none() {
        Store::open(store)?.manifest().settings.clone()
    } else {
        let mut s = Store::open_writer(store)?;
        let mut new: Settings = s.manifest().settings.clone();
        if let Some(z) = args.time_zone {
            new.time_zone = z;
        }
        if let Some(c) = args.ct_cutoff {
            new.ct_cutoff = c;
        }
        s.set_settings(new.clone())?;
        new
    };
    println!("time_zone = {}", settings.time_zone);
    println!("ct_cutoff = {}", settings.ct_cutoff);
    Ok(())
}
