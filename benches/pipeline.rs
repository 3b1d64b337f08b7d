//! Criterion benches of each stage of a round, on a city the bench generates:
//! parse, check + index + commit, a small batch into a large store, deconvolution
//! from the indexes, and a recall worklist.
//!
//! `cargo bench --bench pipeline` (set `POOLTRACK_BENCH_PERSONS` to change the city
//! size; default 200,000).

use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pooltrack::ingest::collections::{self, CollectionRows};
use pooltrack::ingest::reject::Rejects;
use pooltrack::ingest::table::Table;
use pooltrack::ingest::{IngestOptions, ingest_collections, ingest_results};
use pooltrack::store::{BatchKind, Store};
use pooltrack::synth::{GenConfig, generate};
use pooltrack::time::Offset;
use pooltrack::tracker::{Statuses, load};
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

/// A lab's batch of 10,000 new collection rows: 1,000 pools of 10 new persons.
fn small_batch(dir: &Path) -> PathBuf {
    let mut text = String::from("tube,person,mode,capacity,collected_at,site\n");
    for i in 0..10_000u32 {
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

fn stages(c: &mut Criterion) {
    let city = city();
    let n = persons();
    let mut g = c.benchmark_group("round");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));

    let csv = city.data.join("collections.csv");
    g.bench_function("parse_collections", |b| {
        b.iter(|| {
            let mut t = Table::open(&csv).expect("open");
            let mut rows = CollectionRows::default();
            let mut rejects = Rejects::default();
            collections::read(&mut t, 0, "c.csv", Offset::CHINA, &mut rows, &mut rejects)
                .expect("read");
            rows.len()
        });
    });

    g.bench_function("ingest_collections_empty_store", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tmp"),
            |dir| {
                let mut s = Store::open_writer(dir.path()).expect("store");
                ingest_collections(
                    &mut s,
                    std::slice::from_ref(&csv),
                    ROUND,
                    &IngestOptions::default(),
                    None,
                )
                .expect("ingest")
                .committed
            },
            BatchSize::PerIteration,
        );
    });

    let store = Store::open(&city.store).expect("store");
    g.bench_function("load_collected_at", |b| {
        b.iter(|| {
            load::times(&store, ROUND, BatchKind::Collections, "collected_at")
                .expect("load")
                .len()
        });
    });
    g.bench_function("deconvolute_from_indexes", |b| {
        b.iter(|| {
            Statuses::load(&store, ROUND)
                .expect("statuses")
                .persons
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
    g.bench_function("ingest_10k_collections_into_full_store", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tmp");
                copy_dir(&city.store, dir.path());
                dir
            },
            |dir| {
                let mut s = Store::open_writer(dir.path()).expect("store");
                ingest_collections(
                    &mut s,
                    std::slice::from_ref(&small),
                    ROUND,
                    &IngestOptions::default(),
                    None,
                )
                .expect("ingest")
                .committed
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
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
