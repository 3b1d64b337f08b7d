//! `pooltrack plan --config plan.toml`: being written (issue 4).

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_store: &std::path::Path, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("pooltrack plan is not built yet")
}
