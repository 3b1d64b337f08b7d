//! `pooltrack ingest collections|results|population|boxes|receipts FILE...`

use std::path::{Path, PathBuf};
use std::time::Duration;

use pooltrack::Error;
use pooltrack::ingest::reject::{ReasonGroup, Severity};
use pooltrack::ingest::{self, IngestOptions, IngestReport, TextEncoding};
use pooltrack::store::{Store, WriterOptions};

use super::progress::Bar;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Collection rows (tube, person, mode, [capacity], collected_at, [site], [box]) for a
    /// round.
    #[command(after_help = "\
Files are CSV with a header (also .csv.gz and .csv.zst) or Parquet with the same column
names. Bad rows are listed with file, line, column and reason in STORE/rejects/; valid
rows are committed unless --strict. Re-ingesting a file already ingested does nothing.

A `box` column (the box each tube travels to the lab in) is recorded as the round's box
manifest in the same batch, for `pooltrack custody`: one atomic commit, taken back
whole by `pooltrack retract`. A blank box is not stated (the row is committed, its tube
just has no box); a pool's rows count once; a row putting its tube in a second box (in
the file, or other than the store has it in) is committed all the same (the swab is in
the tube) and listed as a warning, and the manifest keeps the first box. Refused rows
add nothing. `ingest boxes` of the same file afterwards adds nothing; a manifest with
sealed_at adds the sealing times.

Example:
  pooltrack ingest collections collections.csv --round 2022-04-02    # tube,...,box
  pooltrack ingest receipts receipts.csv --round 2022-04-02
  pooltrack custody --round 2022-04-02

CSV saved by Excel on a Chinese-language Windows is GB18030, not UTF-8: add
--encoding gb18030. CSV saved with ';' or tabs between fields: add --delimiter ';' or
--delimiter tab.")]
    Collections {
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The testing round these tubes belong to (letters, digits, '-', '_', '.').
        #[arg(long)]
        round: String,
        #[command(flatten)]
        common: Common,
    },
    /// Result rows (tube, result or ct_orf1ab + ct_n, reported_at, [lab, plate, well]).
    #[command(after_help = "\
A row without a result is read from its Ct values: both below the store's cut-off
(default 40) positive, one inconclusive, none negative. Each result goes to the round
its tube was collected in.")]
    Results {
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// The population register (person, [district, community, group]): who must be tested.
    #[command(after_help = "\
One row per person who must be tested in every round; `pooltrack coverage` and the
untested and unregistered worklists compare it with a round's collections. Registering
a person again (in a later file, or a later line of the same batch) updates them:
each of district, community and group comes from the latest registration that states
it (a blank field keeps the earlier value); a repeat within one batch is listed as a
warning. The register belongs to no round. Same file forms, rejects report, --strict
and re-ingest rules as collections.")]
    Population {
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Box manifest rows (box, tube, [site], [sealed_at]) of a round: which box each
    /// tube travels in. A collections file with a box column works too.
    #[command(after_help = "\
One row per tube put in a box. A collections file with a `box` column is a manifest
too (`ingest collections` records it already): there a blank box means not stated (the
row is passed over), a pool's repeated (box, tube) counts once, and without sealed_at
`pooltrack custody` takes the box's last collection as its sealing. A tube put in a
second box is refused, naming the first. A tube put again in the box the store has it
in is a repeat, passed over quietly, unless the line states a sealing time the store
does not have for it (then it is kept). Same file forms, rejects report, --strict and
re-ingest rules as collections.

Example:
  pooltrack ingest boxes boxes.csv --round 2022-04-02
  pooltrack ingest receipts receipts.csv --round 2022-04-02
  pooltrack custody --round 2022-04-02")]
    Boxes {
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The round the boxed tubes were collected in.
        #[arg(long)]
        round: String,
        #[command(flatten)]
        common: Common,
    },
    /// A lab's receipt scans (box and/or tube, received_at, [lab]) of a round.
    #[command(after_help = "\
One row per scan at the lab's door: a box (its tubes arrive with it) or a single tube.
A box or tube scanned again is kept with a warning; `pooltrack custody` counts the
first scan and lists the repeat. Boxes and tubes no manifest or collection names are
not refused (they may come later): `pooltrack custody` lists those still unknown.

Example:
  pooltrack ingest receipts lab1-receipts.csv --round 2022-04-02")]
    Receipts {
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The round the scanned tubes were collected in.
        #[arg(long)]
        round: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// Reject the whole batch if any row is bad: nothing is committed, exit code 1.
    /// Compare --fail-on-reject, which commits the valid rows and then fails.
    #[arg(long)]
    strict: bool,
    /// For batch jobs: commit the valid rows as usual, then exit with code 5 if any
    /// row was refused, so the job notices (warnings do not count). Unlike --strict,
    /// which commits nothing if any row is bad (exit 1). Same as --max-rejected 0.
    #[arg(long, conflicts_with = "max_rejected")]
    fail_on_reject: bool,
    /// Like --fail-on-reject, but tolerate up to N refused rows: exit 5 only when more
    /// than N rows were refused (the valid rows are committed either way).
    #[arg(long, value_name = "N")]
    max_rejected: Option<u64>,
    /// If another pooltrack process is writing to the store, wait up to SECONDS for it
    /// to finish (checking every 0.1 s) instead of failing at once with "store is busy"
    /// (exit 3), which is still the outcome after SECONDS.
    #[arg(long, value_name = "SECONDS", value_parser = super::parse_wait, default_value = "0")]
    wait: Duration,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// The CSV files' character encoding. "CSV (逗号分隔)" saved by Excel on a
    /// Chinese-language Windows is GB18030 (GBK), not UTF-8: a file refused with "the
    /// text is not UTF-8 ... it reads as GB18030" needs --encoding gb18030. Line numbers
    /// in the rejects report stay those of the file; stored text is UTF-8. Parquet files
    /// are always UTF-8 and ignore this.
    #[arg(long, value_enum, value_name = "ENCODING", default_value = "utf-8")]
    encoding: Encoding,
    /// The character between fields in CSV files: ',' (the default), ';', tab (write
    /// `tab` or '\t') or '|'. Excel in many European locales saves "CSV" with ';'. Without
    /// this option, a header that only makes sense split on ';' or tabs is refused,
    /// naming the option to add. Parquet files ignore this.
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    delimiter: Option<u8>,
}

/// `--encoding` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Encoding {
    /// UTF-8, with or without a byte-order mark (the default).
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GB18030: Chinese Windows and Excel; a superset of GBK and GB2312.
    Gb18030,
    /// Read as gb18030, its superset.
    Gbk,
}

/// Reads a `--delimiter` value.
fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "," => Ok(b','),
        ";" => Ok(b';'),
        "|" => Ok(b'|'),
        "tab" | "TAB" | "\\t" | "\t" => Ok(b'\t'),
        _ => Err(format!(
            "{s:?} is not a delimiter pooltrack reads: use ',', ';', tab (or '\\t') or '|'"
        )),
    }
}

impl Common {
    fn options(&self) -> IngestOptions {
        IngestOptions {
            strict: self.strict,
            encoding: match self.encoding {
                Encoding::Utf8 => TextEncoding::Utf8,
                Encoding::Gb18030 | Encoding::Gbk => TextEncoding::Gb18030,
            },
            delimiter: self.delimiter,
        }
    }
}

pub fn run(store: &Path, args: Args) -> anyhow::Result<()> {
    let (common, create) = match &args {
        Args::Collections { common, .. } | Args::Population { common, .. } => (common, true),
        // Results name tubes already collected: into a store that does not exist they
        // could only all be refused, and would leave an empty store behind.
        // Custody rows, too, belong to a round already collected.
        Args::Results { common, .. }
        | Args::Boxes { common, .. }
        | Args::Receipts { common, .. } => (common, false),
    };
    let opts = WriterOptions {
        wait: common.wait,
        create,
    };
    let mut store = Store::open_writer_with(store, opts)?;
    let (common, report) = match args {
        Args::Collections {
            files,
            round,
            common,
        } => {
            let opts = common.options();
            let pb = Bar::new(0, "bytes");
            let r = ingest::ingest_collections(&mut store, &files, &round, &opts, Some(&pb));
            pb.finish_and_clear();
            (common, strict_reasons(r)?)
        }
        Args::Results { files, common } => {
            let opts = common.options();
            let pb = Bar::new(0, "bytes");
            let r = ingest::ingest_results(&mut store, &files, &opts, Some(&pb));
            pb.finish_and_clear();
            (common, strict_reasons(r)?)
        }
        Args::Population { files, common } => {
            let opts = common.options();
            let pb = Bar::new(0, "bytes");
            let r = ingest::ingest_population(&mut store, &files, &opts, Some(&pb));
            pb.finish_and_clear();
            (common, strict_reasons(r)?)
        }
        Args::Boxes {
            files,
            round,
            common,
        } => {
            let r = ingest::ingest_boxes(&mut store, &files, &round, &common.options());
            (common, strict_reasons(r)?)
        }
        Args::Receipts {
            files,
            round,
            common,
        } => {
            let r = ingest::ingest_receipts(&mut store, &files, &round, &common.options());
            (common, strict_reasons(r)?)
        }
    };
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    outcome(&report, common.max_rejected())
}

impl Common {
    /// How many refused rows a batch job tolerates (`None`: any number).
    fn max_rejected(&self) -> Option<u64> {
        if self.fail_on_reject {
            Some(0)
        } else {
            self.max_rejected
        }
    }
}

/// Under `--strict` the batch fails before a summary is printed: show its reasons on
/// stderr, above the error.
fn strict_reasons(r: pooltrack::Result<IngestReport>) -> pooltrack::Result<IngestReport> {
    if let Err(Error::StrictRejected { reasons, .. }) = &r {
        for line in reason_lines(reasons) {
            eprintln!("{line}");
        }
    }
    r
}

/// The exit status a batch job acts on: 4 when rows were read and every new one was
/// refused, 5 when more rows were refused than `max_rejected` allows.
fn outcome(r: &IngestReport, max_rejected: Option<u64>) -> anyhow::Result<()> {
    let rejects = || r.rejects_file.clone().unwrap_or_default();
    match r.batch {
        None if r.rejected > 0 => Err(Error::NothingCommitted {
            read: r.rows_read,
            rejected: r.rejected,
            rejects: rejects(),
        }
        .into()),
        Some(batch) if max_rejected.is_some_and(|max| r.rejected > max) => {
            Err(Error::TooManyRejected {
                rejected: r.rejected,
                max: max_rejected.unwrap_or(0),
                batch,
                rejects: rejects(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// The reasons rows were refused and flagged, for the terminal: per kind of reason the
/// count, the column and the first rows with <file:line>.
fn reason_lines(groups: &[ReasonGroup]) -> Vec<String> {
    let mut out = Vec::new();
    for severity in [Severity::Error, Severity::Warning] {
        let of: Vec<&ReasonGroup> = groups.iter().filter(|g| g.severity == severity).collect();
        if of.is_empty() {
            continue;
        }
        let rows: u64 = of.iter().map(|g| g.count).sum();
        out.push(match severity {
            Severity::Error => format!("refused rows ({rows}), by reason:"),
            Severity::Warning => format!("warnings ({rows}), by reason:"),
        });
        for g in of {
            let column = if g.column.is_empty() {
                "the row".to_owned()
            } else {
                format!("column {}", g.column)
            };
            // One wording for all: say it once. Wordings that differ by tube, value or
            // count: their common form, and each example's own.
            if g.same_reason {
                out.push(format!("  {} × {column}: {}", g.count, g.reason));
            } else {
                out.push(format!("  {} × {column}: {}", g.count, g.kind));
            }
            for e in &g.examples {
                let at = format!("{}:{}", e.file, e.line);
                if g.same_reason {
                    // The tube, or the person where a file has no tubes (the register);
                    // persons otherwise stay in the owner-only rejects file, not in
                    // a batch job's log.
                    if !e.tube.is_empty() {
                        out.push(format!("      {at} (tube {})", e.tube));
                    } else if !e.person.is_empty() {
                        out.push(format!("      {at} (person {})", e.person));
                    } else {
                        out.push(format!("      {at}"));
                    }
                } else {
                    out.push(format!("      {at}: {}", e.reason));
                }
            }
            let more = g.count.saturating_sub(g.examples.len() as u64);
            if more > 0 {
                out.push(format!("      … and {more} more (all in the rejects file)"));
            }
        }
    }
    out
}

fn print_summary(r: &IngestReport) {
    for f in &r.files {
        if let Some(b) = f.already_in_batch {
            let round = f
                .already_round
                .as_deref()
                .map_or(String::new(), |r| format!(" into round {r}"));
            let at = f
                .already_committed_at
                .as_deref()
                .map_or(String::new(), |t| format!(" at {t}"));
            println!(
                "{}: already ingested in batch {b}{round}{at}; skipped (if that batch was a mistake: pooltrack retract --batch {b} --reason \"...\", then ingest again)",
                f.path
            );
        }
    }
    let Some(batch) = r.batch else {
        if r.rows_read == 0 {
            println!("nothing new to ingest");
        } else {
            println!(
                "nothing committed: {} row(s) read, {} rejected, {} warning(s)",
                r.rows_read, r.rejected, r.warnings
            );
        }
        print_reasons(r);
        return;
    };
    println!(
        "batch {batch} committed: {} {} row(s) of {} read; {} rejected, {} warning(s)",
        r.committed,
        r.kind.as_str(),
        r.rows_read,
        r.rejected,
        r.warnings
    );
    if !r.rounds.is_empty() {
        println!("round(s): {}", r.rounds.join(", "));
    }
    if r.boxed_tubes > 0 {
        println!(
            "box manifest: {} tube(s) in {} box(es), in the same batch (pooltrack custody --round {})",
            r.boxed_tubes,
            r.boxes,
            r.rounds.join(",")
        );
    }
    if r.overfull_tubes > 0 {
        println!(
            "{} pool tube(s) hold more persons than their capacity: kept and flagged",
            r.overfull_tubes
        );
    }
    if let Some(why) = &r.merge_failed {
        eprintln!("warning: {why}");
    }
    if r.positives_kept > 0 {
        println!(
            "{} positive tube(s) got a later non-positive result: kept positive and flagged for review",
            r.positives_kept
        );
    }
    for p in &r.failed_plates {
        let lab = if p.lab.is_empty() {
            String::new()
        } else {
            format!(" of lab {}", p.lab)
        };
        println!(
            "plate {}{lab} FAILED: {}; its results do not count and its tubes are on the rerun worklist (pooltrack worklist rerun)",
            p.plate, p.reason
        );
    }
    print_reasons(r);
}

/// The reasons, then the rejects file that lists every row.
fn print_reasons(r: &IngestReport) {
    for line in reason_lines(&r.reasons) {
        println!("{line}");
    }
    if let Some(p) = &r.rejects_file {
        println!("rejected and flagged rows: {}", p.display());
    }
}
