//! Criterion benches of each stage of a round, on a city the bench generates:
//! parse, check + index + commit, a small batch into a large store, deconvolution
//! from the indexes, and a recall worklist. Two yardsticks, not pooltrack:
//! `split_floor` is `pooltrack::floor::split`, the floor `pooltrack bench` states
//! every step against (rows and fields found, nothing kept); `parse_floor` goes one
//! step further and turns each field into a number (see [`floor`]).
//!
//! `cargo bench --bench pipeline` (set `POOLTRACK_BENCH_PERSONS` to change the city
//! size; default 200,000).

use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pooltrack::ingest::collections;
use pooltrack::ingest::table::Table;
use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
use pooltrack::model::IdCheck;
use pooltrack::store::read;
use pooltrack::store::{BatchKind, Store};
use pooltrack::synth::{GenConfig, generate};
use pooltrack::time::Offset;
use pooltrack::tracker::Statuses;
use pooltrack::worklist::{self, Worklist};

const ROUND: &str = "bench";

fn persons() -> u64 {
    std::env::var("POOLTRACK_BENCH_PERSONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

struct City {
    _dir: tempfile::TempDir,
    data: PathBuf,
    store: PathBuf,
}

fn city() -> City {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("city");
    let cfg = GenConfig {
        persons: persons(),
        ..GenConfig::default()
    };
    generate(&cfg, &data, None).expect("generate");
    let store = dir.path().join("store");
    let mut s = Store::open_writer(&store).expect("store");
    let opts = IngestOptions::default();
    ingest_collections(&mut s, &[data.join("collections.csv")], ROUND, &opts, None)
        .expect("ingest");
    ingest_results(&mut s, &[data.join("results.csv")], &opts, None).expect("ingest");
    City {
        _dir: dir,
        data,
        store,
    }
}

/// Rows of [`small_batch`].
const SMALL_BATCH_ROWS: u32 = 10_000;

/// A lab's batch of 10,000 new collection rows: 1,000 pools of 10 new persons.
fn small_batch(dir: &Path) -> PathBuf {
    let mut text = String::from("tube,person,mode,capacity,collected_at,site\n");
    for i in 0..SMALL_BATCH_ROWS {
        let pool = i / 10;
        text.push_str(&format!(
            "NB{pool:08},NEW{i:015},pool,10,2022-04-02 20:{:02}:00,S09999\n",
            pool % 60
        ));
    }
    let out = dir.join("small.csv");
    std::fs::write(&out, text).expect("write");
    out
}

/// Reads a collections file as an ingest does, up to the rows and their rejects;
/// returns how many rows were kept.
fn parse_collections(path: &Path) -> usize {
    let mut t = Table::open(path).expect("open");
    let (rows, _, _) =
        collections::read_alone(&mut t, "c.csv", Offset::CHINA, IdCheck::Warn).expect("read");
    rows.len()
}

fn stages(c: &mut Criterion) {
    let city = city();
    let n = persons();
    let mut g = c.benchmark_group("round");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));

    let csv = city.data.join("collections.csv");
    g.bench_function("parse_collections", |b| b.iter(|| parse_collections(&csv)));

    let text = std::fs::read(&csv).expect("read");
    g.bench_function("split_floor", |b| {
        b.iter(|| pooltrack::floor::split(&text, b','));
    });
    g.bench_function("parse_floor", |b| b.iter(|| floor::parse(&text)));

    g.bench_function("ingest_collections_empty_store", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tmp"),
            // The folder is returned, not dropped here: criterion drops what the
            // routine returns after the clock stops, so deleting the store is not timed.
            |dir| {
                let mut s = Store::open_writer(dir.path()).expect("store");
                let report = ingest_collections(
                    &mut s,
                    std::slice::from_ref(&csv),
                    ROUND,
                    &IngestOptions::default(),
                    None,
                )
                .expect("ingest");
                (dir, report.committed)
            },
            BatchSize::PerIteration,
        );
    });

    let store = Store::open(&city.store).expect("store");
    g.bench_function("load_collected_at", |b| {
        b.iter(|| {
            read::times(&store, ROUND, BatchKind::Collections, "collected_at")
                .expect("load")
                .len()
        });
    });
    g.bench_function("deconvolute_from_indexes", |b| {
        b.iter(|| {
            Statuses::load(&store, ROUND)
                .expect("statuses")
                .persons()
                .len()
        });
    });
    let statuses = Statuses::load(&store, ROUND).expect("statuses");
    g.bench_function("worklist_recall", |b| {
        b.iter(|| {
            worklist::build(&store, &statuses, Worklist::Recall)
                .expect("worklist")
                .len()
        });
    });
    g.finish();

    // A lab batch job: 10,000 new rows into the full store. The store is copied per
    // iteration so each run adds to the same state.
    let small = small_batch(&city.data);
    let mut g = c.benchmark_group("small_batch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SMALL_BATCH_ROWS.into()));
    g.bench_function("ingest_10k_collections_into_full_store", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tmp");
                copy_dir(&city.store, dir.path());
                dir
            },
            // Returned so that deleting the copy is not timed (see above).
            |dir| {
                let mut s = Store::open_writer(dir.path()).expect("store");
                let report = ingest_collections(
                    &mut s,
                    std::slice::from_ref(&small),
                    ROUND,
                    &IngestOptions::default(),
                    None,
                )
                .expect("ingest");
                (dir, report.committed)
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

/// The floor under `parse_collections`: the file already in memory, split by newline
/// and comma on all cores, each field turned into a number (tube: a 64-bit hash;
/// person: its digits; time: seconds; site: a small map) in columns reserved up front.
/// No checks, rejects, line numbers or text columns. Whatever pooltrack does beyond
/// this is what its checks and its store's text cost; this is what no design avoids.
mod floor {
    use std::collections::HashMap;

    use rayon::prelude::*;

    #[derive(Default)]
    pub struct Columns {
        tube: Vec<u64>,
        person: Vec<u64>,
        pool: Vec<bool>,
        capacity: Vec<u64>,
        at: Vec<i64>,
        site: Vec<usize>,
    }

    fn digits(b: &[u8]) -> u64 {
        b.iter().fold(0, |a: u64, &c| {
            a.wrapping_mul(10)
                .wrapping_add(u64::from(c.wrapping_sub(b'0')))
        })
    }

    fn signed(b: &[u8]) -> i64 {
        i64::try_from(digits(b)).unwrap_or(0)
    }

    /// `YYYY-MM-DD HH:MM:SS` as seconds since 1970 (days from the civil calendar).
    fn seconds(b: &[u8]) -> i64 {
        let Some(b) = b.get(..19) else { return 0 };
        let (y, m, d) = (signed(&b[..4]), signed(&b[5..7]), signed(&b[8..10]));
        let y = if m <= 2 { y - 1 } else { y };
        let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        days * 86_400 + signed(&b[11..13]) * 3600 + signed(&b[14..16]) * 60 + signed(&b[17..19])
    }

    fn part(text: &[u8]) -> Columns {
        let rows = text.len() / 60;
        let mut c = Columns {
            tube: Vec::with_capacity(rows),
            person: Vec::with_capacity(rows),
            pool: Vec::with_capacity(rows),
            capacity: Vec::with_capacity(rows),
            at: Vec::with_capacity(rows),
            site: Vec::with_capacity(rows),
        };
        let mut sites: HashMap<&[u8], usize> = HashMap::new();
        let mut commas = [0usize; 5];
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut k = 0;
            for at in memchr::memchr_iter(b',', line) {
                if let Some(slot) = commas.get_mut(k) {
                    *slot = at;
                }
                k += 1;
            }
            if k != 5 {
                continue;
            }
            let field = |i: usize| {
                let start = if i == 0 { 0 } else { commas[i - 1] + 1 };
                &line[start..commas.get(i).copied().unwrap_or(line.len())]
            };
            c.tube.push(xxhash_rust::xxh3::xxh3_64(field(0)));
            c.person.push(digits(field(1)));
            c.pool.push(field(2) == b"pool");
            c.capacity.push(digits(field(3)));
            c.at.push(seconds(field(4)));
            let next = sites.len();
            c.site.push(*sites.entry(field(5)).or_insert(next));
        }
        c
    }

    /// Parses the file's rows (after its header) in pieces of 8 MB on all cores.
    pub fn parse(file: &[u8]) -> Vec<Columns> {
        let body = memchr::memchr(b'\n', file).map_or(&file[..0], |h| &file[h + 1..]);
        let mut cuts = vec![0];
        let mut at = 0;
        while at < body.len() {
            at = (at + (8 << 20)).min(body.len());
            at = memchr::memchr(b'\n', &body[at..]).map_or(body.len(), |nl| at + nl + 1);
            cuts.push(at);
        }
        cuts.par_windows(2)
            .map(|w| part(&body[w[0]..w[1]]))
            .collect()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
