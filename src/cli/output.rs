//! Output options shared by the commands that write lists: `--format`, the format an
//! `--out FILE` implies, and `--pseudonymize KEY_FILE`.

use std::path::Path;

use pooltrack::output::Format;
use pooltrack::privacy::{self, Pseudonymizer};

/// `--format`: the library's [`Format`] as the argument parser reads it (the parser's
/// derive stays out of the library).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// CSV with a header line.
    Csv,
    /// Parquet (to --out FILE, or to standard output when it is a pipe).
    Parquet,
    /// A JSON array of objects.
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Json => Format::Json,
        }
    }
}

/// Picks the format: the flag, else the output file's extension, else CSV.
pub fn pick_format(flag: Option<FormatArg>, out: Option<&Path>) -> Format {
    flag.map(Format::from)
        .or_else(|| out.and_then(Format::from_path))
        .unwrap_or(Format::Csv)
}

/// The format of a command's list when one is asked for (`--out`, `--format`, or
/// another option of the command's that asks for its list: `also`), else `None` and
/// the command prints its text. Parquet to a terminal is refused.
pub fn list_format(
    also: bool,
    flag: Option<FormatArg>,
    out: Option<&Path>,
) -> pooltrack::Result<Option<Format>> {
    let format = (also || out.is_some() || flag.is_some()).then(|| pick_format(flag, out));
    if out.is_none()
        && let Some(f) = format
    {
        pooltrack::output::refuse_parquet_to_terminal(f)?;
    }
    Ok(format)
}

/// The pseudonymizer for `--pseudonymize KEY_FILE`, warning when others may read the key.
pub fn pseudonymizer(key_file: Option<&Path>) -> anyhow::Result<Option<Pseudonymizer>> {
    let Some(path) = key_file else {
        return Ok(None);
    };
    let p = Pseudonymizer::from_key_file(path)?;
    if !privacy::key_file_is_private(path) {
        eprintln!(
            "pooltrack: warning: the key file {} is readable by others; chmod 600 it",
            path.display()
        );
    }
    Ok(Some(p))
}
