//! The bench's figures as one report: printed as a table, as JSON (`--json`), or as a
//! page (`--html DIR`, in `html.rs`).

use super::inputs::{Cat, Floor};
use super::machine::Machine;

/// Which part of the bench a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Section {
    /// The reference job into an empty store; its steps add up to the job's time.
    Job,
    /// A lab's batch into the full store.
    Batch,
    /// Every output that reads the whole round, on the full store.
    Outputs,
}

impl Section {
    pub(super) fn title(self) -> &'static str {
        match self {
            Section::Job => "reference job, into an empty store",
            Section::Batch => "lab batch, into the full store",
            Section::Outputs => "whole-round outputs, on the full store",
        }
    }
}

/// One measured pooltrack process.
// `step` is the JSON report's field name, kept for readers of earlier reports.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Step {
    pub(super) step: String,
    pub(super) section: Section,
    /// The command after `pooltrack`, paths included.
    pub(super) args: Vec<String>,
    pub(super) seconds: f64,
    pub(super) rows: u64,
    pub(super) rows_per_second: f64,
    pub(super) peak_mib: f64,
    /// `seconds` over the floor's.
    pub(super) x_floor: f64,
}

/// The data the city was generated with.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Shape {
    pub(super) persons: u64,
    pub(super) seed: u64,
    pub(super) single_share: f64,
    pub(super) pool_size: u8,
    pub(super) blank_optional: f64,
    /// Person ids: `numbered` in row order or `resident` as a city's.
    pub(super) ids: &'static str,
    /// Batches the collections were ingested as (1: the file whole).
    pub(super) batches: u32,
    pub(super) prevalence: f64,
}

/// The input files the job reads.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Input {
    pub(super) file: String,
    pub(super) bytes: u64,
    /// Data rows (the header left out).
    pub(super) rows: u64,
}

/// The round's tables after the reference job, against the job's input.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Stored {
    /// Bytes of the collections and results tables: Parquet files, sidecar indexes,
    /// runs and logs.
    pub(super) bytes: u64,
    /// Bytes of the job's input CSV files.
    pub(super) input_bytes: u64,
    /// `bytes` over `input_bytes`.
    pub(super) share: f64,
}

impl Stored {
    /// Weighs the tables of the store at `store` against the files `inputs`.
    pub(super) fn weigh(
        store: &std::path::Path,
        inputs: &[std::path::PathBuf],
    ) -> anyhow::Result<Stored> {
        fn under(p: &std::path::Path) -> std::io::Result<u64> {
            let mut bytes = 0;
            for e in std::fs::read_dir(p)? {
                let e = e?;
                let meta = e.metadata()?;
                bytes += if meta.is_dir() {
                    under(&e.path())?
                } else {
                    meta.len()
                };
            }
            Ok(bytes)
        }
        let bytes = under(&store.join("collections"))? + under(&store.join("results"))?;
        let input_bytes = inputs
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()))
            .sum::<std::io::Result<u64>>()?;
        Ok(Stored {
            bytes,
            input_bytes,
            share: bytes as f64 / input_bytes.max(1) as f64,
        })
    }

    /// The line the table and the page print.
    pub(super) fn text(&self) -> String {
        format!(
            "store after the job: {} MB of collections and results tables, {:.1} % of the {} MB of input CSV",
            thousands(self.bytes / 1_000_000),
            self.share * 100.0,
            thousands(self.input_bytes / 1_000_000)
        )
    }
}

/// DuckDB's run of the same job on the same files.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct DuckDb {
    /// Wall clock of `python3` running the script, start and import included, as a
    /// pooltrack step's time includes its process start.
    pub(super) seconds: f64,
    /// The script's own timer: its queries only.
    pub(super) script_seconds: Option<f64>,
    pub(super) peak_mib: Option<f64>,
    pub(super) x_floor: f64,
    /// pooltrack's job time over DuckDB's.
    pub(super) ratio: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Report {
    pub(super) machine: Machine,
    pub(super) command: String,
    pub(super) shape: Shape,
    /// Seconds to generate the city; none when `--dir` held it already.
    pub(super) generate_seconds: Option<f64>,
    /// The files were written just before: `cat` and the floor read them from the
    /// page cache, as the job does.
    pub(super) page_cache: &'static str,
    pub(super) inputs: Vec<Input>,
    pub(super) cat: Cat,
    pub(super) floor: Floor,
    pub(super) steps: Vec<Step>,
    pub(super) job_seconds: f64,
    pub(super) job_peak_mib: f64,
    pub(super) job_x_floor: f64,
    pub(super) stored: Stored,
    pub(super) outputs_run: bool,
    pub(super) duckdb: Option<DuckDb>,
}

/// What a step's "× floor" column and bar mean.
pub(super) const X_FLOOR: &str = "× floor: the step's seconds over the floor parse's";

pub(super) fn thousands(n: u64) -> String {
    group(&n.to_string())
}

/// A rate rounded to a whole number, with thousands separators.
pub(super) fn thousands_f(v: f64) -> String {
    group(&format!("{:.0}", v.max(0.0)))
}

fn group(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with three decimals, four below 0.01 s so that short steps still show.
pub(super) fn seconds(v: f64) -> String {
    if v < 0.01 {
        format!("{v:.4}")
    } else {
        format!("{v:.3}")
    }
}

/// Batches of collections a table or chart shows one by one; more are summed in one
/// line, with the spread of a batch's time (a lab's day is thousands of batches).
const SHOWN_BATCHES: usize = 8;

/// The job's collections batches summed, when there are more than [`SHOWN_BATCHES`].
pub(super) struct ManyBatches {
    pub(super) count: usize,
    pub(super) seconds: f64,
    pub(super) rows: u64,
    pub(super) peak_mib: f64,
    /// A batch's seconds at the median, the 90th and 99th percentiles, and the most.
    pub(super) spread: [f64; 4],
}

impl ManyBatches {
    /// Whether `step` is one of the batches summed.
    pub(super) fn holds(step: &Step) -> bool {
        step.section == Section::Job && step.step.starts_with("ingest collections ")
    }

    /// The sum of the job's collections batches in `steps`, if there are many.
    pub(super) fn of(steps: &[Step]) -> Option<ManyBatches> {
        let batches: Vec<&Step> = steps.iter().filter(|s| Self::holds(s)).collect();
        if batches.len() <= SHOWN_BATCHES {
            return None;
        }
        let mut times: Vec<f64> = batches.iter().map(|s| s.seconds).collect();
        times.sort_by(f64::total_cmp);
        let at = |per_mille: usize| {
            // The nearest rank: the batch at or below which that share of them fall.
            let rank = (per_mille * times.len()).div_ceil(1000).max(1);
            times[rank.min(times.len()) - 1]
        };
        Some(ManyBatches {
            count: batches.len(),
            seconds: times.iter().sum(),
            rows: batches.iter().map(|s| s.rows).sum(),
            peak_mib: batches.iter().map(|s| s.peak_mib).fold(0.0, f64::max),
            spread: [at(500), at(900), at(990), at(1000)],
        })
    }

    /// The summed line's name.
    pub(super) fn name(&self) -> String {
        format!("ingest collections, {} batches", self.count)
    }

    /// The spread of a batch's time, as a sentence.
    pub(super) fn spread_text(&self) -> String {
        let [m, p90, p99, max] = self.spread;
        format!(
            "a batch: median {} s, 90th percentile {} s, 99th {} s, most {} s",
            seconds(m),
            seconds(p90),
            seconds(p99),
            seconds(max)
        )
    }
}

impl Report {
    /// The data shape in words, for the table and the page.
    pub(super) fn shape_text(&self) -> String {
        let s = &self.shape;
        format!(
            "{} persons (seed {}), {:.1} % single tubes, pools of {}, {:.1} % of rows with optional fields blank, {} ids, collections in {} batch(es), prevalence {:.2} %",
            thousands(s.persons),
            s.seed,
            s.single_share * 100.0,
            s.pool_size,
            s.blank_optional * 100.0,
            s.ids,
            s.batches,
            s.prevalence * 100.0
        )
    }

    /// How the city came to be, which no figure includes.
    pub(super) fn city_text(&self) -> String {
        match self.generate_seconds {
            Some(s) => format!("The city was generated in {s:.2} s, not part of any figure."),
            None => "The city was reused from --dir (made with the same options).".to_owned(),
        }
    }

    pub(super) fn inputs_text(&self) -> String {
        self.inputs
            .iter()
            .map(|i| {
                format!(
                    "{} ({:.1} MB, {} rows)",
                    i.file,
                    i.bytes as f64 / 1e6,
                    thousands(i.rows)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(super) fn cat_text(&self) -> String {
        format!(
            "read end to end through a 128 KiB buffer, as cat FILE > /dev/null does; page cache warm; best of {}; {:.2} GB/s",
            self.cat.runs, self.cat.gb_per_second
        )
    }

    pub(super) fn floor_text(&self) -> String {
        let f = &self.floor;
        format!(
            "the files in memory split into {} rows and {} fields (memchr2 over 4 MiB blocks, {} threads); best of {}; {:.2} GB/s",
            thousands(f.rows),
            thousands(f.fields),
            f.threads,
            f.runs,
            f.gb_per_second
        )
    }

    /// The report as a table on standard output.
    pub(super) fn print_table(&self) {
        println!("pooltrack bench: {}", self.shape_text());
        println!("machine: {}", self.machine);
        println!("command: {}", self.command);
        println!("inputs: {}", self.inputs_text());
        println!("{}", self.city_text());
        println!("cat: {}", self.cat_text());
        println!("floor: {}", self.floor_text());
        println!();
        println!(
            "{:<34}{:>10}{:>10}{:>13}{:>13}{:>10}",
            "step", "seconds", "× floor", "rows", "rows/s", "peak MiB"
        );
        println!(
            "{:<34}{:>10}{:>10.2}",
            "cat of the inputs",
            seconds(self.cat.seconds),
            self.cat.seconds / self.floor.seconds.max(1e-9)
        );
        println!(
            "{:<34}{:>10}{:>10.2}{:>13}",
            "floor parse of the inputs",
            seconds(self.floor.seconds),
            1.0,
            thousands(self.floor.rows)
        );
        for section in [Section::Job, Section::Batch, Section::Outputs] {
            let steps: Vec<&Step> = self.steps.iter().filter(|s| s.section == section).collect();
            if steps.is_empty() {
                continue;
            }
            println!("{}", section.title());
            let many = if section == Section::Job {
                ManyBatches::of(&self.steps)
            } else {
                None
            };
            if let Some(m) = &many {
                println!(
                    "  {:<32}{:>10}{:>10.2}{:>13}{:>13}{:>10.0}",
                    m.name(),
                    seconds(m.seconds),
                    m.seconds / self.floor.seconds.max(1e-9),
                    thousands(m.rows),
                    thousands_f(m.rows as f64 / m.seconds.max(1e-9)),
                    m.peak_mib
                );
                println!("    ({}; --json lists each)", m.spread_text());
            }
            for s in steps {
                if many.is_some() && ManyBatches::holds(s) {
                    continue;
                }
                println!(
                    "  {:<32}{:>10}{:>10.2}{:>13}{:>13}{:>10.0}",
                    s.step,
                    seconds(s.seconds),
                    s.x_floor,
                    thousands(s.rows),
                    thousands_f(s.rows_per_second),
                    s.peak_mib
                );
            }
            if section == Section::Job {
                println!(
                    "  {:<32}{:>10.3}{:>10.2}{:>36.0}",
                    "reference job (4 steps)",
                    self.job_seconds,
                    self.job_x_floor,
                    self.job_peak_mib
                );
                println!("  ({})", self.stored.text());
            }
        }
        if let Some(d) = &self.duckdb {
            println!(
                "{:<34}{:>10}{:>10.2}{:>36}",
                "duckdb, same job on the same files",
                seconds(d.seconds),
                d.x_floor,
                d.peak_mib.map_or_else(String::new, |p| format!("{p:.0}"))
            );
            if let Some(own) = d.script_seconds {
                println!(
                    "  (python3 wall clock; the script's queries alone took {} s)",
                    seconds(own)
                );
            }
            println!(
                "pooltrack / duckdb time: {:.2} (target: at most 0.25)",
                d.ratio
            );
        }
        if !self.outputs_run {
            println!("whole-round outputs not run (--job-only)");
        }
        println!("{X_FLOOR}. Peak MiB: the step's own peak resident memory.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(25_000_000), "25,000,000");
        assert_eq!(thousands_f(1_234_567.6), "1,234,568");
        assert_eq!(thousands_f(-1.0), "0");
    }
}
