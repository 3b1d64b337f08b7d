//! `pooltrack ingest collections|results|population FILE...`

use std::path::{Path, PathBuf};

use pooltrack::ingest::{self, IngestOptions, IngestReport, TextEncoding};
use pooltrack::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Collection rows (tube, person, mode, [capacity], collected_at, [site]) for a round.
    #[command(after_help = "\
Files are CSV with a header (also .csv.gz and .csv.zst) or Parquet with the same column
names. Bad rows are listed with file, line, column and reason in STORE/rejects/; valid
rows are committed unless --strict. Re-ingesting a file already ingested does nothing.

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
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// Reject the whole batch if any row is bad (exit code 1, nothing committed).
    #[arg(long)]
    strict: bool,
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
    let mut store = Store::open_writer(store)?;
    let (common, report) = match args {
        Args::Collections {
            files,
            round,
            common,
        } => {
            let opts = common.options();
            let pb = super::progress(0, "bytes");
            let r = ingest::ingest_collections(&mut store, &files, &round, &opts, Some(&pb));
            pb.finish_and_clear();
            (common, r?)
        }
        Args::Results { files, common } => {
            let opts = common.options();
            let pb = super::progress(0, "bytes");
            let r = ingest::ingest_results(&mut store, &files, &opts, Some(&pb));
            pb.finish_and_clear();
            (common, r?)
        }
        Args::Population { files, common } => {
            let opts = common.options();
            let pb = super::progress(0, "bytes");
            let r = ingest::ingest_population(&mut store, &files, &opts, Some(&pb));
            pb.finish_and_clear();
            (common, r?)
        }
    };
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(())
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
        if let Some(p) = &r.rejects_file {
            println!("rejected and flagged rows: {}", p.display());
        }
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
    if r.overfull_tubes > 0 {
        println!(
            "{} pool tube(s) hold more persons than their capacity: kept and flagged",
            r.overfull_tubes
        );
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
    if let Some(p) = &r.rejects_file {
        println!("rejected and flagged rows: {}", p.display());
    }
}
