//! Two writers and readers beside a writer (issue 6): two ingests started at once, one
//! commits and the other commits after it or exits 3 with "store is busy", with no row
//! lost or doubled; readers (`status`, `worklist`) running while a writer commits see
//! the store before or after the batch, never between.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::common::{json_of, pooltrack};
use crate::crash::{bin, persons_in, stray_files, write_pools};
use crate::rules::{ingest_collections, run, stderr_text};

fn spawn_ingest(store: &Path, file: &Path) -> std::process::Child {
    Command::new(bin())
        .arg("--store")
        .arg(store)
        .args(["ingest", "collections", "--round", "R1", "--json"])
        .arg(file)
        .env_remove("POOLTRACK_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pooltrack starts")
}

/// Whether a writer committed its batch (`Some(rows)`) or was told the store is busy.
fn outcome(out: &Output) -> Option<u64> {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    match out.status.code() {
        Some(0) => {
            let v: Value = serde_json::from_slice(&out.stdout).expect("ingest --json");
            Some(v["committed"].as_u64().expect("committed"))
        }
        Some(3) => {
            assert!(err.contains("store is busy"), "exit 3 must say busy: {err}");
            None
        }
        other => panic!("a concurrent writer exited {other:?}: {err}"),
    }
}

#[test]
fn two_writers_at_once_never_lose_or_double_a_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut busy, mut both) = (0, 0);
    for trial in 0..5 {
        let store = dir.path().join(format!("store{trial}"));
        // A first batch so both writers find an existing store (and one trial where
        // both race to create it).
        if trial > 0 {
            let first = dir.path().join(format!("first{trial}.csv"));
            write_pools(&first, &format!("F{trial}"), 30, 10);
            ingest_collections(&store, "R1", &[first]);
        }
        let base = if trial > 0 { 30 } else { 0 };
        let (a, b) = (
            dir.path().join(format!("a{trial}.csv")),
            dir.path().join(format!("b{trial}.csv")),
        );
        let (na, nb) = (20_000u64, 15_000u64);
        write_pools(&a, &format!("A{trial}"), 20_000, 10);
        write_pools(&b, &format!("B{trial}"), 15_000, 5);
        let (ca, cb) = (spawn_ingest(&store, &a), spawn_ingest(&store, &b));
        let (oa, ob) = (
            ca.wait_with_output().expect("wait"),
            cb.wait_with_output().expect("wait"),
        );
        let (ra, rb) = (outcome(&oa), outcome(&ob));
        assert!(
            ra.is_some() || rb.is_some(),
            "trial {trial}: one of two writers must commit"
        );
        if let Some(n) = ra {
            assert_eq!(n, na, "trial {trial}");
        }
        if let Some(n) = rb {
            assert_eq!(n, nb, "trial {trial}");
        }
        let committed = ra.unwrap_or(0) + rb.unwrap_or(0);
        assert_eq!(
            persons_in(&store, "R1").1,
            Some(base + committed),
            "trial {trial}: persons = the committed batches, no more, no less"
        );
        if ra.is_none() || rb.is_none() {
            busy += 1;
        } else {
            both += 1;
        }
        // The writer that was turned away tries again; the other's file is a no-op.
        for f in [&a, &b] {
            ingest_collections(&store, "R1", std::slice::from_ref(f));
        }
        assert_eq!(persons_in(&store, "R1").1, Some(base + na + nb));
        let s = json_of(pooltrack(&store).args(["status", "--round", "R1", "--json"]));
        assert_eq!(
            s["tubes"],
            (base / 10) + 2_000 + 3_000,
            "trial {trial}: {s}"
        );
        assert_eq!(stray_files(&store), Vec::<String>::new());
    }
    eprintln!(
        "5 races of two writers: {busy} turned one away as busy, {both} ran one after the other"
    );
    assert!(
        busy >= 1,
        "two writers started at once should meet the lock at least once"
    );
}

/// What readers may see of the store: the counts of `status --json` and the number of
/// persons on the recall and positives lists. Each is one command, so each on its own
/// must be the store before or after a batch (the three are not read atomically).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct View {
    status: String,
    recall: usize,
    positives: usize,
}

fn status_view(store: &Path) -> String {
    let out = run(pooltrack(store).args(["status", "--round", "R1", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn list_len(store: &Path, list: &str) -> usize {
    let out = run(pooltrack(store).args(["worklist", list, "--round", "R1", "--format", "csv"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines().count().saturating_sub(1)
}

fn view(store: &Path) -> View {
    View {
        status: status_view(store),
        recall: list_len(store, "recall"),
        positives: list_len(store, "positives"),
    }
}

#[test]
fn readers_see_each_batch_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    let generated = run(pooltrack(&dir.path().join("unused"))
        .args([
            "gen",
            "--persons",
            "40000",
            "--prevalence",
            "0.003",
            "--seed",
            "4",
            "--out",
        ])
        .arg(&city));
    assert!(generated.status.success(), "{}", stderr_text(&generated));
    let store = dir.path().join("store");
    ingest_collections(&store, "R1", &[city.join("collections.csv")]);
    let more = dir.path().join("more.csv");
    write_pools(&more, "MORE", 40_000, 10);

    // Each step is one batch that changes what readers see.
    let steps: Vec<(&str, PathBuf)> = vec![
        ("collections", more),
        ("results", city.join("results.csv")),
        ("collections", city.join("retest_collections.csv")),
        ("results", city.join("retest_results.csv")),
    ];
    let mut reads = 0usize;
    let mut distinct_transitions = 0usize;
    for (kind, file) in steps {
        let before = view(&store);
        let done = Arc::new(AtomicBool::new(false));
        // One reader runs all three commands, two run `status` alone (more often).
        let readers: Vec<_> = (0..3)
            .map(|k| {
                let (store, done) = (store.clone(), Arc::clone(&done));
                let (b_recall, b_positives) = (before.recall, before.positives);
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    // Read until the writer is done, then once more.
                    loop {
                        let finished = done.load(Ordering::SeqCst);
                        seen.push(if k == 0 {
                            view(&store)
                        } else {
                            View {
                                status: status_view(&store),
                                recall: b_recall,
                                positives: b_positives,
                            }
                        });
                        if finished {
                            return seen;
                        }
                    }
                })
            })
            .collect();
        let mut w = pooltrack(&store);
        w.args(["ingest", kind, "--json"]);
        if kind == "collections" {
            w.args(["--round", "R1"]);
        }
        let report = json_of(w.arg(&file));
        done.store(true, Ordering::SeqCst);
        assert!(report["batch"].is_u64(), "{report}");
        let after = view(&store);
        assert_ne!(
            before,
            after,
            "step {kind} {} changes the store",
            file.display()
        );
        let mut seen_states = BTreeSet::new();
        for r in readers {
            for v in r.join().expect("reader thread") {
                reads += 1;
                assert!(
                    v.status == before.status || v.status == after.status,
                    "`status` saw a state between two batches:\n{}\nbefore: {}\nafter: {}",
                    v.status,
                    before.status,
                    after.status
                );
                assert!(
                    v.recall == before.recall || v.recall == after.recall,
                    "`worklist recall` saw {} persons, before {} after {}",
                    v.recall,
                    before.recall,
                    after.recall
                );
                assert!(
                    v.positives == before.positives || v.positives == after.positives,
                    "`worklist positives` saw {} persons, before {} after {}",
                    v.positives,
                    before.positives,
                    after.positives
                );
                seen_states.insert(v.status == after.status);
            }
        }
        distinct_transitions += usize::from(seen_states.len() == 2);
    }
    eprintln!(
        "{reads} reader views (status; recall and positives lists) during 4 commits; {distinct_transitions} commits seen from both sides"
    );
}
