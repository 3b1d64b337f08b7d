//! The library's one error type.
//!
//! Every fallible function in pooltrack returns [`Result`]. Each variant carries the
//! context a clerk or an operator needs to act on it (the file, the store, the reason),
//! and [`Error::exit_code`] maps it to the binary's documented exit codes.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::reasons::ReasonGroup;

/// The library's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pooltrack.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An input file cannot be read as a batch at all: not CSV, empty, not UTF-8,
    /// missing a required column, or a damaged compressed stream.
    #[error("{}: {reason}", path.display())]
    Input {
        /// The input file.
        path: PathBuf,
        /// Why the whole file was refused.
        reason: String,
    },
    /// `--strict` was given and the batch had bad rows: nothing was committed.
    #[error(
        "batch rejected under --strict: {rejected} bad row(s); nothing was committed. The rejected rows are listed in {}",
        rejects.display()
    )]
    StrictRejected {
        /// How many rows were rejected.
        rejected: u64,
        /// The CSV listing each rejected row with its reason.
        rejects: PathBuf,
        /// The rejected and flagged rows grouped by reason, for the terminal.
        reasons: Vec<ReasonGroup>,
    },
    /// Rows were read and every one was refused (or was already in the store), so
    /// nothing was committed: a batch job should look at the reasons.
    #[error(
        "nothing committed: {read} row(s) read, every new row refused ({rejected} rejected); the reasons are listed in {}",
        rejects.display()
    )]
    NothingCommitted {
        /// Data rows read.
        read: u64,
        /// Rows refused.
        rejected: u64,
        /// The CSV listing each refused row with its reason.
        rejects: PathBuf,
    },
    /// `--fail-on-reject` or `--max-rejected` was given and more rows were refused
    /// than it allows. The valid rows were committed (unlike `--strict`).
    #[error(
        "{rejected} row(s) refused, over the limit of {max} (--fail-on-reject, --max-rejected); the valid rows were committed in batch {batch}; the refused rows are listed in {}",
        rejects.display()
    )]
    TooManyRejected {
        /// Rows refused.
        rejected: u64,
        /// How many refused rows were allowed.
        max: u64,
        /// The batch the valid rows went to.
        batch: u32,
        /// The CSV listing each refused row with its reason.
        rejects: PathBuf,
    },
    /// Another process holds the store's writer lock.
    #[error(
        "store is busy: another pooltrack process is writing to {}; {}",
        path.display(),
        busy_advice(*waited)
    )]
    StoreBusy {
        /// The store directory.
        path: PathBuf,
        /// How long this process waited for the lock (zero: it did not wait).
        waited: Duration,
    },
    /// The store's manifest or one of its files is missing, truncated or altered.
    #[error("store {} is damaged: {reason}", path.display())]
    StoreDamaged {
        /// The store directory.
        path: PathBuf,
        /// Which part is damaged and how.
        reason: String,
    },
    /// A command named a round the store does not hold.
    #[error("round {round:?} is not in the store {}{hint}", store.display())]
    UnknownRound {
        /// The round asked for.
        round: String,
        /// The store directory.
        store: PathBuf,
        /// The rounds the store does hold, for the message.
        hint: String,
    },
    /// An argument is well-formed for the parser but not acceptable.
    #[error("{0}")]
    Usage(String),
    /// Encoding or decoding Parquet failed.
    #[error("{}: parquet: {source}", path.display())]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The parquet crate's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building or converting Arrow arrays failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An input file refused as a whole.
    pub fn input(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// A damaged store.
    pub fn damaged(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::StoreDamaged {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// A Parquet error with the file it concerns.
    pub fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.into(),
            source,
        }
    }

    /// The process exit code documented in the README:
    /// 1 rejected under `--strict` or input unreadable, 2 usage, 3 store busy or damaged,
    /// 4 nothing committed because every new row was refused, 5 more rows refused than
    /// `--fail-on-reject` / `--max-rejected` allow (the valid rows committed).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::UnknownRound { .. } => 2,
            Error::StoreBusy { .. } | Error::StoreDamaged { .. } => 3,
            Error::NothingCommitted { .. } => 4,
            Error::TooManyRejected { .. } => 5,
            _ => 1,
        }
    }
}

/// What a writer turned away by the lock can do, given how long it waited.
fn busy_advice(waited: Duration) -> String {
    if waited.is_zero() {
        "try again when it has finished, or give --wait SECONDS to wait for it".to_owned()
    } else {
        format!(
            "waited {} s for it to finish (--wait); try again later, or wait longer",
            fmt_seconds(waited)
        )
    }
}

/// Seconds as a clerk writes them: `5`, `0.5`.
fn fmt_seconds(d: Duration) -> String {
    let s = format!("{:.1}", d.as_secs_f64());
    s.strip_suffix(".0")
        .map_or_else(|| s.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_readme() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        let busy = Error::StoreBusy {
            path: "s".into(),
            waited: Duration::ZERO,
        };
        assert_eq!(busy.exit_code(), 3);
        assert!(busy.to_string().contains("--wait SECONDS"), "{busy}");
        let waited = Error::StoreBusy {
            path: "s".into(),
            waited: Duration::from_millis(2500),
        };
        assert!(waited.to_string().contains("waited 2.5 s"), "{waited}");
        let none = Error::NothingCommitted {
            read: 6,
            rejected: 6,
            rejects: "r.csv".into(),
        };
        assert_eq!(none.exit_code(), 4);
        let over = Error::TooManyRejected {
            rejected: 2,
            max: 0,
            batch: 3,
            rejects: "r.csv".into(),
        };
        assert_eq!(over.exit_code(), 5);
        assert_eq!(Error::damaged("s", "x").exit_code(), 3);
        assert_eq!(Error::input("f.csv", "empty").exit_code(), 1);
        let strict = Error::StrictRejected {
            rejected: 2,
            rejects: "r.csv".into(),
            reasons: Vec::new(),
        };
        assert_eq!(strict.exit_code(), 1);
        assert!(strict.to_string().contains("r.csv"));
    }

    #[test]
    fn messages_name_the_file() {
        let e = Error::input("batch.csv", "the file is empty");
        assert_eq!(e.to_string(), "batch.csv: the file is empty");
    }
}
