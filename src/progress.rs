//! Progress of the long jobs ([`crate::ingest`], [`crate::synth`]), reported to whoever
//! shows it: the command line draws bars on the terminal, tests count, and callers that
//! want nothing pass `None`.

/// Receives a long job's progress. Shared with the job's worker threads, so it must be
/// `Sync`; calls are cheap and few (per file or per chunk of people, never per row).
pub trait Progress: Sync {
    /// The whole job is `units` long (ingest: bytes of the new files).
    fn total(&self, units: u64);
    /// What the job is doing now, in a few words.
    fn stage(&self, what: &str);
    /// `units` more are done.
    fn advance(&self, units: u64);
}
