//! Why rows were refused or flagged, grouped by kind of reason: what a batch's report
//! and its error show a clerk.
//!
//! These types sit below [`crate::error`] so that an error can carry them; the
//! grouping itself is [`crate::ingest::reject::Rejects::summary`].

use serde::Serialize;

/// How serious a row's problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row was not committed.
    Error,
    /// The row was committed (or was already there); the clerk should know.
    Warning,
}

/// Rows refused or flagged for one kind of reason (see [`crate::ingest::reject::Rejects::summary`]).
#[derive(Debug, Clone, Serialize)]
pub struct ReasonGroup {
    /// Whether these rows were dropped.
    pub severity: Severity,
    /// The column at fault, or empty when the row as a whole is at fault.
    pub column: &'static str,
    /// The reason with the row's particulars masked ([`crate::ingest::reject::Reject::kind`]): the same text
    /// for the same kind of problem in every batch.
    pub kind: String,
    /// The first such row's reason, in full.
    pub reason: String,
    /// Whether every row of the group has word for word that reason.
    pub same_reason: bool,
    /// How many rows.
    pub count: u64,
    /// The first few such rows, in file order.
    pub examples: Vec<Example>,
}

/// One row of a [`ReasonGroup`].
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// The input file as given on the command line.
    pub file: String,
    /// Line of the row in the file (1 is the header).
    pub line: u64,
    /// The row's tube barcode as written.
    pub tube: String,
    /// The row's person id, when the file has one.
    pub person: String,
    /// The reason, in full.
    pub reason: String,
}
