//! `pooltrack bench --persons N`: the city-scale reference job, timed against the
//! least any reader of its files must do, then every output that reads the whole
//! round; optionally DuckDB on the same files.
//!
//! Each step runs as its own `pooltrack` process (`measure.rs` says how its time and
//! peak memory are taken); `cat` and the floor parse (`inputs.rs`) are timed in this
//! process on the same files. The figures go out as a table, JSON (`report.rs`) or a
//! self-contained page (`html.rs`).

mod html;
mod inputs;
mod machine;
mod measure;
mod report;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use pooltrack::synth::{self, GenConfig};

use crate::cli::gen_city::Ids;

use machine::{Machine, command_line};
use report::{DuckDb, Input, Report, Section, Shape, Step, Stored};

/// The DuckDB side of the comparison, kept in benches/ so anyone can rerun it by hand.
const DUCKDB_SCRIPT: &str = include_str!("../../../benches/duckdb_reference.py");
/// The round the bench ingests into.
const ROUND: &str = "bench";
/// Written beside a generated city: the config that made it, so `--dir` reuses a city
/// only for the same options.
const CITY_CONFIG: &str = "bench-city.txt";

#[derive(Debug, clap::Args)]
#[command(after_help = "\
What runs, in order:
  1. A city is generated (pooltrack gen, with population.csv) unless --dir holds one
     made with the same options. Not timed as part of anything.
  2. cat: collections.csv and results.csv read end to end through a 128 KiB buffer,
     as `cat FILE > /dev/null` does. The files were just written, so the page cache
     is warm, as it is for the job. Best of 5 per file.
  3. floor parse: the same files, already in memory, split into rows and fields on
     every core (memchr2 over 4 MiB blocks cut at line ends; pooltrack::floor). No
     quotes, checks or values: a lower bound under any CSV reader. Best of 5 per file.
  4. The reference job, into an empty store: ingest collections (with --batches K,
     K ingests of the file cut at tube boundaries, into the one round), ingest
     results, worklist recall, status. Its total is what is compared with DuckDB.
  5. A lab batch into the full store: 10,000 collection rows, 10,000 result rows,
     and one status --person.
  6. Whole-round outputs on the full store (skipped with --job-only): ingest
     population (the register, for coverage, the report and the health codes),
     export status, export health-codes, report, turnaround --json, review, coverage.
  7. With --vs-duckdb, the job in DuckDB (python3 with the duckdb package;
     benches/duckdb_reference.py) on the same two files.

The figures:
  seconds     wall clock of the step's own pooltrack process (DuckDB: of python3
              running the script, as a pooltrack step's includes its start; the
              script's own time without starting Python is in the JSON too).
  × floor     the step's seconds over the floor parse's: how far it is from the least
              any reader of these files must do (the floor reads both files, so
              small steps sit far below 1).
  rows        input rows of the step (persons for the outputs); rows/s from them.
  peak MiB    the step's own peak resident memory (ru_maxrss), read from outside
              the step by a pooltrack process whose only child it is.
The table, --json and --html carry the machine (CPU model from /proc/cpuinfo,
cores, memory) and the exact command, so a report can be published as it is.")]
pub struct Args {
    /// Persons in the generated city (25000000 is the city-scale reference).
    #[arg(long, default_value_t = 1_000_000)]
    persons: u64,
    /// Random seed of the city.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of persons given a single tube, 0 to 1; the rest are pooled.
    #[arg(long, default_value_t = 0.05, value_name = "F")]
    single_share: f64,
    /// Persons per pool tube, 2 to 20 (5, 10 and 20 are the validated sizes).
    #[arg(long, default_value_t = 10, value_name = "K")]
    pool_size: u8,
    /// Share of rows, 0 to 1, whose optional fields are left blank: capacity and site
    /// of a collection; lab, plate, well and (where the result word is written) the
    /// Cts of a result. The people, tubes and results stay the same.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    blank_optional: f64,
    /// How person ids look: numbered in row order, or spread as a city's residents'
    /// are (district, birth date, sequence), which costs more to sort and index.
    #[arg(long, value_enum, default_value_t = Ids::Numbered)]
    ids: Ids,
    /// Ingest the collections as this many batches into the one round, as several
    /// cities' or labs' files come: collections.csv is cut at tube boundaries into K
    /// files of about equal size in the work folder (a copy: the city's file stays
    /// whole for DuckDB and for reuse), each ingested on its own and timed as a job
    /// step. A lab's day is thousands of batches (25 M persons in batches of 10,000 is
    /// 2,500); past 8 the table sums them in one line with the spread of a batch's
    /// time, and --json lists each.
    #[arg(long, default_value_t = 1, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batches: u32,
    /// Also run the DuckDB job on the same files and print the ratio.
    #[arg(long)]
    vs_duckdb: bool,
    /// Run only the job and the lab batch, not the whole-round outputs.
    #[arg(long)]
    job_only: bool,
    /// Work in this folder (kept: the city, the store, every output) instead of a
    /// temporary one. A city already there is reused when made with the same options;
    /// the folder must hold no store.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print the whole report as JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained page, DIR/index.html: the machine,
    /// the command, a chart of every stage against the floor (and DuckDB) and the table.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// `pooltrack bench -- ARGS`: run `pooltrack ARGS` as this process's only child,
    /// then print its time and peak memory: how the bench measures each step.
    #[arg(last = true, hide = true, value_name = "ARGS")]
    measure: Vec<OsString>,
}

fn share(name: &str, v: f64) -> anyhow::Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(pooltrack::Error::Usage(format!("{name} must be between 0 and 1, got {v}")).into())
    }
}

/// One step to run: its name, its section, its arguments after `pooltrack`, its rows.
struct Planned {
    name: String,
    section: Section,
    args: Vec<String>,
    rows: u64,
}

impl Planned {
    fn new(name: impl Into<String>, section: Section, args: &[&str], rows: u64) -> Planned {
        Planned {
            name: name.into(),
            section,
            args: args.iter().map(|&a| a.to_owned()).collect(),
            rows,
        }
    }

    fn run(self, floor: f64) -> anyhow::Result<Step> {
        eprintln!("  {}...", self.name);
        let argv: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let (seconds, peak_mib) = measure::step(&argv)?;
        Ok(Step {
            step: self.name,
            section: self.section,
            args: self.args,
            seconds,
            rows: self.rows,
            rows_per_second: self.rows as f64 / seconds.max(1e-9),
            peak_mib,
            x_floor: seconds / floor.max(1e-9),
        })
    }
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Generates the city into `city` unless a city of the same config is there already;
/// returns the seconds it took, none when reused.
fn city(cfg: &GenConfig, city: &Path) -> anyhow::Result<Option<f64>> {
    let key = format!("{cfg:?}\n");
    let marker = city.join(CITY_CONFIG);
    let same = std::fs::read_to_string(&marker).is_ok_and(|k| k == key);
    if same && city.join("summary.json").exists() {
        eprintln!("  reusing the city in {}", city.display());
        return Ok(None);
    }
    let start = Instant::now();
    let pb = super::progress::Bar::new(cfg.persons, "pos");
    let r = synth::generate(cfg, city, Some(&pb));
    pb.finish_and_clear();
    r?;
    std::fs::write(&marker, key).with_context(|| marker.display().to_string())?;
    Ok(Some(start.elapsed().as_secs_f64()))
}

/// Runs the DuckDB job; returns its wall-clock seconds, the script's own seconds (its
/// queries, without starting Python and importing duckdb) and its peak MiB.
fn duckdb(city: &Path, dir: &Path) -> anyhow::Result<(f64, Option<f64>, Option<f64>)> {
    eprintln!("  duckdb...");
    let script = dir.join("duckdb_reference.py");
    std::fs::write(&script, DUCKDB_SCRIPT)?;
    let start = Instant::now();
    let out = Command::new("python3")
        .arg(&script)
        .arg(city)
        .arg(dir)
        .output()
        .context("running python3 (is it installed?)")?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "the DuckDB job failed (pip install duckdb pytz?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading the DuckDB job's figures")?;
    Ok((wall, v["seconds"].as_f64(), v["peak_mib"].as_f64()))
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if !args.measure.is_empty() {
        return measure::measure(&args.measure);
    }
    let single_share = share("--single-share", args.single_share)?;
    let blank_optional = share("--blank-optional", args.blank_optional)?;
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let city_dir = dir.join("city");
    let store = dir.join("store");
    if store.exists() {
        bail!(
            "{} already holds a store; give an empty --dir",
            dir.display()
        );
    }
    let machine = Machine::read();
    let command = command_line(std::env::args_os());
    eprintln!("pooltrack bench: {} persons on {machine}", args.persons);
    let cfg = GenConfig {
        persons: args.persons,
        seed: args.seed,
        pool_share: 1.0 - single_share,
        pool_size: args.pool_size,
        blank_optional,
        population: true,
        ids: args.ids.into(),
        ..GenConfig::default()
    };
    let generate_seconds = city(&cfg, &city_dir)?;

    let inputs = [
        city_dir.join("collections.csv"),
        city_dir.join("results.csv"),
    ];
    eprintln!("  cat and floor parse...");
    let yard = inputs::measure(&inputs)?;
    let floor = yard.floor.seconds;
    let rows: Vec<u64> = yard
        .per_file
        .iter()
        .map(|c| c.rows.saturating_sub(1))
        .collect();
    let (n_coll, n_res) = (rows[0], rows[1]);

    let s = text(&store);
    let (collections, results) = (text(&inputs[0]), text(&inputs[1]));
    let recall = text(&dir.join("recall.csv"));
    let mut plan: Vec<Planned> = if args.batches > 1 {
        let parts = inputs::cut_at_tubes(&inputs[0], &dir, args.batches)?;
        let k = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(i, (path, rows))| {
                Planned::new(
                    format!("ingest collections {}/{k}", i + 1),
                    Section::Job,
                    &[
                        "--store",
                        &s,
                        "ingest",
                        "collections",
                        &text(path),
                        "--round",
                        ROUND,
                    ],
                    *rows,
                )
            })
            .collect()
    } else {
        vec![Planned::new(
            "ingest collections",
            Section::Job,
            &[
                "--store",
                &s,
                "ingest",
                "collections",
                &collections,
                "--round",
                ROUND,
            ],
            n_coll,
        )]
    };
    plan.extend([
        Planned::new(
            "ingest results",
            Section::Job,
            &["--store", &s, "ingest", "results", &results],
            n_res,
        ),
        Planned::new(
            "worklist recall",
            Section::Job,
            &[
                "--store", &s, "worklist", "recall", "--round", ROUND, "--out", &recall,
            ],
            n_coll,
        ),
        Planned::new(
            "status",
            Section::Job,
            &["--store", &s, "status", "--round", ROUND, "--json"],
            n_coll,
        ),
    ]);
    let (bc, br, person) = inputs::small_batches(&city_dir, &dir)?;
    let (bc, br) = (text(&bc), text(&br));
    plan.extend([
        Planned::new(
            "batch: 10k collections",
            Section::Batch,
            &[
                "--store",
                &s,
                "ingest",
                "collections",
                &bc,
                "--round",
                ROUND,
            ],
            10_000,
        ),
        Planned::new(
            "batch: 10k results",
            Section::Batch,
            &["--store", &s, "ingest", "results", &br],
            10_000,
        ),
        Planned::new(
            "status --person",
            Section::Batch,
            &[
                "--store", &s, "status", "--round", ROUND, "--person", &person,
            ],
            1,
        ),
    ]);
    if !args.job_only {
        let persons = n_coll + 10_000;
        let out = |name: &str| text(&dir.join(name));
        let population = text(&city_dir.join("population.csv"));
        let registered = std::fs::read_to_string(city_dir.join("summary.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["registered"].as_u64())
            .unwrap_or(persons);
        let (status_csv, codes_csv, report_dir, review_csv) = (
            out("status.csv"),
            out("health-codes.csv"),
            out("report"),
            out("review.csv"),
        );
        plan.extend([
            Planned::new(
                "ingest population",
                Section::Outputs,
                &["--store", &s, "ingest", "population", &population],
                registered,
            ),
            Planned::new(
                "export status",
                Section::Outputs,
                &[
                    "--store",
                    &s,
                    "export",
                    "status",
                    "--round",
                    ROUND,
                    "--out",
                    &status_csv,
                ],
                persons,
            ),
            Planned::new(
                "export health-codes",
                Section::Outputs,
                &[
                    "--store",
                    &s,
                    "export",
                    "health-codes",
                    "--round",
                    ROUND,
                    "--out",
                    &codes_csv,
                ],
                persons,
            ),
            Planned::new(
                "report",
                Section::Outputs,
                &[
                    "--store",
                    &s,
                    "report",
                    "--round",
                    ROUND,
                    "--out",
                    &report_dir,
                ],
                persons,
            ),
            Planned::new(
                "turnaround --json",
                Section::Outputs,
                &["--store", &s, "turnaround", "--round", ROUND, "--json"],
                persons,
            ),
            Planned::new(
                "review",
                Section::Outputs,
                &[
                    "--store",
                    &s,
                    "review",
                    "--round",
                    ROUND,
                    "--out",
                    &review_csv,
                ],
                persons,
            ),
            Planned::new(
                "coverage --json",
                Section::Outputs,
                &["--store", &s, "coverage", "--round", ROUND, "--json"],
                persons,
            ),
        ]);
    }
    let mut steps = Vec::with_capacity(plan.len());
    let mut stored = None;
    for p in plan {
        // The store is weighed when the job is done, before anything else adds to it.
        if p.section != Section::Job && stored.is_none() {
            stored = Some(Stored::weigh(&store, &inputs)?);
        }
        steps.push(p.run(floor)?);
    }
    let stored = match stored {
        Some(s) => s,
        None => Stored::weigh(&store, &inputs)?,
    };
    let job: Vec<&Step> = steps.iter().filter(|s| s.section == Section::Job).collect();
    let job_seconds: f64 = job.iter().map(|s| s.seconds).sum();
    let job_peak_mib = job.iter().map(|s| s.peak_mib).fold(0.0, f64::max);

    let duckdb = if args.vs_duckdb {
        let (seconds, script_seconds, peak_mib) = duckdb(&city_dir, &dir)?;
        Some(DuckDb {
            seconds,
            script_seconds,
            peak_mib,
            x_floor: seconds / floor.max(1e-9),
            ratio: job_seconds / seconds.max(1e-9),
        })
    } else {
        None
    };
    let report = Report {
        machine,
        command,
        shape: Shape {
            persons: args.persons,
            seed: args.seed,
            single_share,
            pool_size: args.pool_size,
            blank_optional,
            ids: args.ids.as_str(),
            batches: args.batches,
            prevalence: cfg.prevalence,
        },
        generate_seconds,
        page_cache: "warm: the inputs were written (or read) just before",
        inputs: inputs
            .iter()
            .zip(&yard.per_file)
            .zip(&rows)
            .map(|((p, c), &rows)| Input {
                file: p
                    .file_name()
                    .map_or_else(|| text(p), |n| n.to_string_lossy().into_owned()),
                bytes: c.bytes,
                rows,
            })
            .collect(),
        cat: yard.cat,
        floor: yard.floor,
        job_x_floor: job_seconds / floor.max(1e-9),
        steps,
        job_seconds,
        job_peak_mib,
        stored,
        outputs_run: !args.job_only,
        duckdb,
    };
    if let Some(page) = &args.html {
        html::write(page, &report)?;
        eprintln!("  wrote {}", page.join("index.html").display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print_table();
    }
    Ok(())
}
