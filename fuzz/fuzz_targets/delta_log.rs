//! Fuzz target: a Delta table's commit file (`_delta_log/NNN.json`) on arbitrary bytes,
//! read as every command reads the store's tables: `delta::parse_commit`.
//!
//! Invariants (any violation, or any panic, is a finding):
//! - what is accepted can be written back and read again to the same actions (a
//!   commit pooltrack read must mean the same when another tool writes it out);
//! - the text pooltrack writes for those actions is one JSON object per line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pooltrack::store::delta::{commit_text, parse_commit};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(actions) = parse_commit(text) else {
        return;
    };
    let written = commit_text(&actions).expect("actions that were read can be written");
    assert_eq!(written.lines().count(), actions.len());
    let again = parse_commit(&written).unwrap_or_else(|why| {
        panic!("a commit that was read cannot be read back once written: {why}\n{written}")
    });
    assert_eq!(again, actions, "a commit changes when written and read again");
});
