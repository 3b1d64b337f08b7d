//! How a step is measured: it runs as its own `pooltrack` process, as a lab's batch
//! job would, and its peak memory is read from outside it. The step is the only child
//! of a second `pooltrack bench -- ARGS` process, which reads the kernel's `ru_maxrss`
//! for its waited-for children (`getrusage(RUSAGE_CHILDREN)`) once the step has ended.
//! That figure is the largest peak among all such children, so a process per step is
//! what makes it the step's own rather than a running maximum over the job.

use std::ffi::OsString;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// Starts the line on which a measured step's figures follow its own output.
const MEASURED: &str = "pooltrack bench step: ";

/// What `pooltrack bench -- ARGS` prints after the step's own output.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Measured {
    seconds: f64,
    peak_kib: i64,
}

/// Runs `pooltrack ARGS` as the only child of this process and prints its figures
/// ([`Measured`]) on a last line of standard output. Its time is taken here, not by
/// the bench, so that starting this extra process is not counted.
pub(super) fn measure(argv: &[OsString]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the pooltrack binary")?;
    let start = Instant::now();
    let status = Command::new(exe)
        .args(argv)
        .status()
        .context("running the pooltrack step")?;
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the pooltrack step ended with {status}");
    }
    // The step was the only child, so the largest peak among this process's ended
    // children is the step's own.
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("reading the step's peak memory (getrusage)")?;
    let figures = Measured {
        seconds,
        // Linux gives ru_maxrss in KiB.
        peak_kib: usage.max_rss(),
    };
    println!("{MEASURED}{}", serde_json::to_string(&figures)?);
    Ok(())
}

/// Runs one pooltrack step in its own measuring process; returns (seconds, peak MiB).
pub(super) fn step(args: &[&str]) -> anyhow::Result<(f64, f64)> {
    let exe = std::env::current_exe().context("finding the pooltrack binary")?;
    let out = Command::new(exe)
        .arg("bench")
        .arg("--")
        .args(args)
        .output()
        .with_context(|| format!("running pooltrack {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "pooltrack {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: Measured = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(MEASURED))
        .context("the measuring process printed no figures")
        .and_then(|json| Ok(serde_json::from_str(json)?))
        .with_context(|| format!("measuring pooltrack {}", args.join(" ")))?;
    Ok((figures.seconds, figures.peak_kib as f64 / 1024.0))
}
