//! Fuzz target: the store's sidecar index files on arbitrary bytes.
//!
//! Each input is read twice: as a whole sidecar file, whose header and length
//! `Records::parse` checks as `IndexFile::open` does; and, so that the searches run on
//! every input and not only on the few with a valid header, as records under a header
//! written here (the first byte picks the kind and form, the rest are the records: a
//! sidecar of each kind whole; a person sidecar with exact keys whose first records,
//! as many as the first byte's upper bits say, are residents stored short; a tube
//! sidecar narrow, its barcodes cut to 16 bytes).
//!
//! Invariants (any violation, or any panic, is a finding):
//! - a parsed file has exactly as many whole records as its length holds;
//! - every search answers within the records, whatever their order;
//! - when the records are in key order (as pooltrack writes them), `find` gives
//!   exactly the records of the key, `lower_bound` the count of smaller keys, and
//!   `find_near` from any record the same as `find`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pooltrack::store::index::{self, IndexWriter, Kind, PersonKeys, Records, TubeMeta};

const KINDS: [Kind; 3] = [Kind::CollectionTubes, Kind::Persons, Kind::ResultTubes];

/// Records whose keys are tried per input (each also just above): enough to reach
/// every search path, few enough that the linear checks stay cheap.
const PROBES: usize = 8;

fn exercise(records: Records<'_>, kind: Kind, file_len: usize) {
    let n = records.len();
    assert_eq!(records.file_len(), file_len, "whole records only");
    let key = |i: usize| records.key(i);
    for i in 0..n {
        let record = records.record(i);
        let r: &[u8] = &record;
        assert_eq!(r.len(), kind.record_size(), "records read whole");
        match kind {
            Kind::CollectionTubes => {
                let meta = TubeMeta::of_record(r);
                let _ = (meta.effective_capacity(), meta.deconvolution_mode(index::u32_at(r, 36)));
            }
            Kind::ResultTubes => {
                let _ = (index::i64_at(r, 40), index::ct_at(r, 48), index::ct_at(r, 52));
            }
            Kind::Persons => {
                let _ = (records.person(i), records.person_row(i));
            }
        }
    }
    let sorted = (1..n).all(|i| *key(i - 1) <= *key(i));
    // Each record's key, and one just above it (which may fall between two keys).
    let step = (n / PROBES).max(1);
    let mut probes: Vec<Vec<u8>> = Vec::new();
    for i in (0..n).step_by(step) {
        let k = key(i).to_vec();
        assert_eq!(k.len(), kind.key_size());
        let mut above = k.clone();
        if let Some(last) = above.last_mut() {
            *last = last.wrapping_add(1);
        }
        probes.push(k);
        probes.push(above);
    }
    probes.push(vec![0; kind.key_size()]);
    probes.push(vec![0xff; kind.key_size()]);
    for probe in &probes {
        let found = records.find(probe);
        assert!(found.start <= found.end && found.end <= n, "{found:?} of {n}");
        let lower = records.lower_bound(probe);
        assert!(lower <= n);
        for from in [0, n / 2, n, n + 1] {
            let near = records.find_near(from, probe);
            assert!(near.start <= near.end && near.end <= n, "{near:?} of {n}");
            if sorted {
                assert_eq!(near, found, "find_near from {from}");
            }
        }
        if sorted {
            let (mut below, mut equal) = (0, 0);
            for i in 0..n {
                match (*key(i)).cmp(probe.as_slice()) {
                    std::cmp::Ordering::Less => below += 1,
                    std::cmp::Ordering::Equal => equal += 1,
                    std::cmp::Ordering::Greater => break,
                }
            }
            assert_eq!(lower, below, "lower_bound");
            assert_eq!(found, below..below + equal, "find");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    for kind in KINDS {
        if let Ok(records) = Records::parse(data, kind) {
            exercise(records, kind, data.len());
        }
    }
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    // Forms: 0-2 each kind whole, 3 exact persons, 4-5 narrow tubes.
    let form = usize::from(pick) % 6;
    let kind = match form {
        0..=2 => KINDS[form],
        3 => Kind::Persons,
        4 => Kind::CollectionTubes,
        _ => Kind::ResultTubes,
    };
    let whole = body.len() / kind.record_size() * kind.record_size();
    let count = (whole / kind.record_size()) as u64;
    let mut body = body[..whole].to_vec();
    let mut w = match form {
        0..=2 => IndexWriter::new(Vec::new(), kind, count),
        3 => {
            let residents = u64::from(pick >> 3).min(count);
            for r in body.chunks_exact_mut(20).take(residents as usize) {
                r[..8].fill(0);
            }
            IndexWriter::persons(Vec::new(), PersonKeys::Exact, count, residents)
        }
        _ => {
            for r in body.chunks_exact_mut(kind.record_size()) {
                r[16..32].fill(0);
            }
            IndexWriter::tubes(Vec::new(), kind, count, true)
        }
    }
    .expect("writing to memory");
    w.push_all(&body).expect("writing to memory");
    let file = w.finish().expect("writing to memory");
    let records = Records::parse(&file, kind).expect("a header written by IndexWriter");
    exercise(records, kind, file.len());
});
