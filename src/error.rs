//! The library's one error type.
//!
//! Every fallible function in pooltrack returns [`Result`]. Each variant carries the
//! context a clerk or an operator needs to act on it (the file, the store, the reason),
//! and [`Error::exit_code`] maps it to the binary's documented exit codes.

use std::io;
use std::path::PathBuf;

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
    },
    /// Another process holds the store's writer lock.
    #[error(
        "store is busy: another pooltrack process is writing to {}; try again when it has finished",
        path.display()
    )]
    StoreBusy {
        /// The store directory.
        path: PathBuf,
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
    /// 1 rejected under `--strict` or input unreadable, 2 usage, 3 store busy or damaged.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::UnknownRound { .. } => 2,
            Error::StoreBusy { .. } | Error::StoreDamaged { .. } => 3,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_readme() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::StoreBusy { path: "s".into() }.exit_code(), 3);
        assert_eq!(Error::damaged("s", "x").exit_code(), 3);
        assert_eq!(Error::input("f.csv", "empty").exit_code(), 1);
        let strict = Error::StrictRejected {
            rejected: 2,
            rejects: "r.csv".into(),
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
