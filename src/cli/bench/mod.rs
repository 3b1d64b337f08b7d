//! `pooltrack bench --persons N [--vs-duckdb]`: the city-scale reference job, timed.
//!
//! Each step runs as its own `pooltrack` process, as a lab's batch job would, and its
//! peak memory is measured from outside: the step is the only child of a second
//! `pooltrack bench -- ARGS` process, which reads the kernel's `ru_maxrss` for its
//! waited-for children (`getrusage(RUSAGE_CHILDREN)`) once the step has ended. That
//! figure is the largest peak among all such children, so a process per step is what
//! makes it the step's own rather than a running maximum over the job.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use pooltrack::synth::{self, GenConfig};
use serde::Serialize;

/// The DuckDB side of the comparison, kept in benches/ so anyone can rerun it by hand.
const DUCKDB_SCRIPT: &str = include_str!("../../benches/duckdb_reference.py");
/// Starts the line on which a measured step's figures follow its own output.
const MEASURED: &str = "pooltrack bench step: ";

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The job, into an empty store: ingest collections, ingest results, worklist recall,
status. Then a lab batch job: 10,000 collection rows and 10,000 result rows into the
full store, and one person's status. With --vs-duckdb, the same two CSV files go
through DuckDB (Python package duckdb; benches/duckdb_reference.py) in the same run.
Peak MiB is each step's peak resident memory (ru_maxrss), read from outside the step by
a pooltrack process whose only child it is (getrusage of its ended children).")]
pub struct Args {
    /// Persons in the generated city (25000000 is the reference).
    #[arg(long, default_value_t = 1_000_000)]
    persons: u64,
    /// Random seed of the city.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also run the DuckDB job on the same files and print the ratio.
    #[arg(long)]
    vs_duckdb: bool,
    /// Work in this folder (kept) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// `pooltrack bench -- ARGS`: run `pooltrack ARGS` as this process's only child,
    /// then print its time and peak memory: how the bench measures each step.
    #[arg(last = true, hide = true, value_name = "ARGS")]
    measure: Vec<OsString>,
}

/// What `pooltrack bench -- ARGS` prints after the step's own output.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Measured {
    seconds: f64,
    peak_kib: i64,
}

// `step` is the JSON report's field name, kept for readers of earlier reports.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Serialize)]
struct Step {
    step: String,
    seconds: f64,
    rows: u64,
    rows_per_second: f64,
    peak_mib: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    persons: u64,
    seed: u64,
    generate_seconds: f64,
    steps: Vec<Step>,
    job_seconds: f64,
    job_peak_mib: f64,
    duckdb_seconds: Option<f64>,
    duckdb_peak_mib: Option<f64>,
    ratio_to_duckdb: Option<f64>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or_else(
            || "? GiB".into(),
            |k| format!("{:.1} GiB", k as f64 / 1_048_576.0),
        );
    format!("{cpu}, {cores} cores, {mem}")
}

/// Runs `pooltrack ARGS` as the only child of this process and prints its figures
/// ([`Measured`]) on a last line of standard output. Its time is taken here, not by
/// the bench, so that starting this extra process is not counted.
fn measure(argv: &[OsString]) -> anyhow::Result<()> {
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
fn step(args: &[&str]) -> anyhow::Result<(f64, f64)> {
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

/// Runs each (name, arguments, rows) step in turn and records its figures.
fn run_steps(plan: &[(&str, Vec<&str>, u64)]) -> anyhow::Result<Vec<Step>> {
    plan.iter()
        .map(|(name, argv, rows)| {
            eprintln!("  {name}...");
            let (seconds, peak) = step(argv)?;
            Ok(Step {
                step: (*name).to_owned(),
                seconds,
                rows: *rows,
                rows_per_second: *rows as f64 / seconds.max(1e-9),
                peak_mib: peak,
            })
        })
        .collect()
}

/// Data rows of a CSV file (lines less the header), counted without loading it.
fn count_rows(path: &Path) -> anyhow::Result<u64> {
    let mut lines = 0u64;
    pooltrack::store::fsutil::for_each_block(path, |block| {
        lines += memchr::memchr_iter(b'\n', block).count() as u64;
    })
    .with_context(|| path.display().to_string())?;
    Ok(lines.saturating_sub(1))
}

/// A lab's next batch: 1,000 new pools of 10 new persons, and their 1,000 results
/// plus 9,000 results re-sent for tubes already in the store (new report times).
fn small_batches(city: &Path, out: &Path) -> anyhow::Result<(PathBuf, PathBuf, String)> {
    let mut coll = String::from("tube,person,mode,capacity,collected_at,site\n");
    let mut res = String::from("tube,result,ct_orf1ab,ct_n,reported_at,lab\n");
    for i in 0..10_000u32 {
        let pool = i / 10;
        coll.push_str(&format!(
            "BENCH{pool:07},BENCHP{i:012},pool,10,2022-04-03 08:{:02}:00,S99999\n",
            pool % 60
        ));
    }
    for pool in 0..1_000u32 {
        res.push_str(&format!(
            "BENCH{pool:07},negative,,,2022-04-03 15:{:02}:00,L1\n",
            pool % 60
        ));
    }
    let results = std::io::BufReader::new(std::fs::File::open(city.join("results.csv"))?);
    for line in std::io::BufRead::lines(results).skip(1).take(9_000) {
        let line = line?;
        let tube = line.split(',').next().unwrap_or_default();
        res.push_str(&format!("{tube},negative,,,2022-04-03 16:00:00,L9\n"));
    }
    let (c, r) = (
        out.join("batch_collections.csv"),
        out.join("batch_results.csv"),
    );
    std::fs::write(&c, coll)?;
    std::fs::write(&r, res)?;
    Ok((c, r, "BENCHP000000000042".to_owned()))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if !args.measure.is_empty() {
        return measure(&args.measure);
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let city = dir.join("city");
    let store = dir.join("store");
    if store.exists() {
        bail!(
            "{} already holds a store; give an empty --dir",
            dir.display()
        );
    }
    let machine = machine();
    eprintln!("pooltrack bench: {} persons on {machine}", args.persons);
    let cfg = GenConfig {
        persons: args.persons,
        seed: args.seed,
        ..GenConfig::default()
    };
    let start = Instant::now();
    if !city.join("summary.json").exists() {
        let pb = super::progress::Bar::new(args.persons, "pos");
        let r = synth::generate(&cfg, &city, Some(&pb));
        pb.finish_and_clear();
        r?;
    }
    let generate_seconds = start.elapsed().as_secs_f64();

    let s = store.to_string_lossy().into_owned();
    let collections = city.join("collections.csv").to_string_lossy().into_owned();
    let results = city.join("results.csv").to_string_lossy().into_owned();
    let recall = dir.join("recall.csv").to_string_lossy().into_owned();
    let n_coll = count_rows(&city.join("collections.csv"))?;
    let n_res = count_rows(&city.join("results.csv"))?;
    let job: [(&str, Vec<&str>, u64); 4] = [
        (
            "ingest collections",
            vec![
                "--store",
                &s,
                "ingest",
                "collections",
                &collections,
                "--round",
                "bench",
            ],
            n_coll,
        ),
        (
            "ingest results",
            vec!["--store", &s, "ingest", "results", &results],
            n_res,
        ),
        (
            "worklist recall",
            vec![
                "--store", &s, "worklist", "recall", "--round", "bench", "--out", &recall,
            ],
            n_coll,
        ),
        (
            "status",
            vec!["--store", &s, "status", "--round", "bench", "--json"],
            n_coll,
        ),
    ];
    let mut steps = run_steps(&job)?;
    let job_seconds: f64 = steps.iter().map(|s| s.seconds).sum();
    let job_peak_mib = steps.iter().map(|s| s.peak_mib).fold(0.0, f64::max);

    let (bc, br, person) = small_batches(&city, &dir)?;
    let (bc, br) = (
        bc.to_string_lossy().into_owned(),
        br.to_string_lossy().into_owned(),
    );
    let batch: [(&str, Vec<&str>, u64); 3] = [
        (
            "batch: 10k collections",
            vec![
                "--store",
                &s,
                "ingest",
                "collections",
                &bc,
                "--round",
                "bench",
            ],
            10_000,
        ),
        (
            "batch: 10k results",
            vec!["--store", &s, "ingest", "results", &br],
            10_000,
        ),
        (
            "status --person",
            vec![
                "--store", &s, "status", "--round", "bench", "--person", &person,
            ],
            1,
        ),
    ];
    steps.extend(run_steps(&batch)?);

    let (duckdb_seconds, duckdb_peak_mib) = if args.vs_duckdb {
        eprintln!("  duckdb...");
        let script = dir.join("duckdb_reference.py");
        std::fs::write(&script, DUCKDB_SCRIPT)?;
        let start = Instant::now();
        let out = Command::new("python3")
            .arg(&script)
            .arg(&city)
            .arg(&dir)
            .output()
            .context("running python3 (is it installed?)")?;
        let wall = start.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "the DuckDB job failed (pip install duckdb pytz?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        (Some(wall), v["peak_mib"].as_f64())
    } else {
        (None, None)
    };
    let report = Report {
        machine,
        persons: args.persons,
        seed: args.seed,
        generate_seconds,
        ratio_to_duckdb: duckdb_seconds.map(|d| job_seconds / d),
        steps,
        job_seconds,
        job_peak_mib,
        duckdb_seconds,
        duckdb_peak_mib,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "pooltrack bench: {} persons (seed {}) on {}",
        r.persons, r.seed, r.machine
    );
    println!(
        "city generated in {:.2} s (not part of the job)",
        r.generate_seconds
    );
    println!(
        "{:<26}{:>10}{:>14}{:>14}{:>12}",
        "step", "seconds", "rows", "rows/s", "peak MiB"
    );
    for s in &r.steps {
        println!(
            "{:<26}{:>10.3}{:>14}{:>14.0}{:>12.0}",
            s.step, s.seconds, s.rows, s.rows_per_second, s.peak_mib
        );
    }
    println!(
        "{:<26}{:>10.3}{:>40.0}",
        "reference job (4 steps)", r.job_seconds, r.job_peak_mib
    );
    if let (Some(d), Some(ratio)) = (r.duckdb_seconds, r.ratio_to_duckdb) {
        println!(
            "{:<26}{:>10.3}{:>40.0}",
            "duckdb, same files",
            d,
            r.duckdb_peak_mib.unwrap_or(0.0)
        );
        println!("pooltrack / duckdb time: {ratio:.2} (target: at most 0.25)");
    }
}
