//! Fuzz target: the store's manifest (`MANIFEST.json`) on arbitrary bytes, read as
//! every command reads it: `Manifest::parse`, with its format-version, retraction and
//! time-zone checks.
//!
//! Invariants (any violation, or any panic, is a finding):
//! - what is accepted can be written back and read again to the same manifest (a
//!   store that loads must not be damaged by its next commit);
//! - what is accepted is of a format this pooltrack reads, and its retractions each
//!   name a batch it holds;
//! - the queries a command makes of it answer without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pooltrack::store::manifest::{BatchKind, FORMAT, Manifest, OLDEST_FORMAT};

fuzz_target!(|data: &[u8]| {
    let Ok((manifest, _zone)) = Manifest::parse(data) else {
        return;
    };
    assert!((OLDEST_FORMAT..=FORMAT).contains(&manifest.format));
    assert!(manifest.retraction_problem().is_none());
    for r in &manifest.retractions {
        assert!(manifest.batch(r.batch).is_some(), "retraction {} names no batch", r.id);
    }
    let _ = manifest.next_batch_id();
    let _ = manifest.rounds();
    let _ = manifest.population().count();
    let _ = manifest.segments(None).count();
    let _ = manifest.has_source_of_size(BatchKind::Results, 0);
    let _ = manifest.find_source(BatchKind::Collections, "");

    let written = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    let (again, _) = Manifest::parse(&written).unwrap_or_else(|why| {
        panic!(
            "a manifest that was read cannot be read back once written: {why}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    let rewritten = serde_json::to_vec_pretty(&again).expect("a manifest serializes");
    assert_eq!(written, rewritten, "a manifest changes when written and read again");
});
