//! Fuzz target: the row parser on arbitrary bytes.
//!
//! The first byte chooses the reader (collections or results); the rest is read as a
//! batch file would be, from memory: `Table::from_reader` recognises CSV, gzip, zstd or
//! Parquet by the first bytes, then the collections or results reader checks each row.
//!
//! Invariants (any violation, or any panic, is a finding):
//! - the file is refused as a whole (an input error naming the file), or
//! - every data row read is either kept or rejected with a reason: kept + rejected =
//!   rows read, and every reject names a line past the header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pooltrack::ingest::collections;
use pooltrack::ingest::reject::Rejects;
use pooltrack::ingest::results;
use pooltrack::ingest::table::{ReadOptions, Table};
use pooltrack::model::IdCheck;
use pooltrack::time::Offset;

fn check(kept: usize, rejects: &Rejects, read: u64) {
    assert_eq!(
        kept as u64 + rejects.errors(),
        read,
        "every row read is kept or rejected"
    );
    for r in &rejects.rows {
        assert!(r.line >= 2, "a reject names a data line: {r:?}");
        assert!(!r.reason.is_empty(), "a reject has a reason: {r:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let input = std::io::Cursor::new(body.to_vec());
    let Ok(mut table) = Table::from_reader("input.csv", input, &ReadOptions::default()) else {
        return;
    };
    let read = if which % 2 == 0 {
        collections::read_alone(&mut table, "input.csv", Offset::CHINA, IdCheck::Warn)
            .map(|(rows, rejects, n)| (rows.len(), rejects, n))
    } else {
        let cutoff = if which % 4 == 1 { 40.0 } else { 35.5 };
        let cutoffs = results::Cutoffs { ct: cutoff, ic: cutoff };
        results::read_alone(&mut table, "input.csv", Offset::CHINA, cutoffs)
            .map(|(rows, rejects, n)| (rows.len(), rejects, n))
    };
    match read {
        Ok((kept, rejects, n)) => check(kept, &rejects, n),
        Err(e) => assert_eq!(e.exit_code(), 1, "input errors exit 1: {e}"),
    }
});
