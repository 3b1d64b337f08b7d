//! `pooltrack migrate`: a store written by the previous release (format 2,
//! `testdata/format2_store`, made by that release from the files in testdata/) is read
//! as it is, refused for writing with the command to run, and converted in place to
//! the Delta tables of format 3; every output stays what the previous release printed
//! (`testdata/format2_outputs`; since then the lists gained a `not_counted` column and
//! `status` the specimen limit and its count of tubes past it, all blank or zero
//! here), and a migration killed at any moment leaves the old store or the new one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{json_of, pooltrack, testdata};
use crate::crash::{bin, copy_dir, files_under};
use crate::rules::{ingest_collections, run, stderr_text};

/// Every output the previous release was asked for, by the file it was saved as:
/// the history, and for each round its counts, both exports, every worklist, the
/// review, the turnaround and the coverage.
fn outputs() -> Vec<(String, Vec<String>)> {
    let mut out = vec![("log.json".to_owned(), vec!["log".into(), "--json".into()])];
    for r in ["R1", "R2", "R3"] {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        out.push((
            format!("status-{r}.json"),
            args(&["status", "--round", r, "--json"]),
        ));
        out.push((
            format!("export-status-{r}.csv"),
            args(&["export", "status", "--round", r]),
        ));
        out.push((
            format!("health-codes-{r}.csv"),
            args(&["export", "health-codes", "--round", r]),
        ));
        for w in [
            "recall",
            "resample",
            "positives",
            "rerun",
            "untested",
            "unregistered",
        ] {
            out.push((
                format!("worklist-{w}-{r}.json"),
                args(&["worklist", w, "--round", r, "--format", "json"]),
            ));
        }
        out.push((
            format!("review-{r}.json"),
            args(&["review", "--round", r, "--format", "json"]),
        ));
        out.push((
            format!("turnaround-{r}.json"),
            args(&["turnaround", "--round", r, "--json"]),
        ));
        out.push((
            format!("coverage-{r}.json"),
            args(&["coverage", "--round", r, "--json"]),
        ));
    }
    out
}

/// Asserts that every output on `store` is the previous release's, byte for byte.
fn assert_outputs_as_before(store: &Path, when: &str) {
    assert_some_outputs_as_before(store, when, |_| true);
}

/// Asserts that the outputs `pick` picks are the previous release's, byte for byte.
fn assert_some_outputs_as_before(store: &Path, when: &str, pick: impl Fn(&str) -> bool) {
    let expected = testdata("format2_outputs");
    for (name, args) in outputs().into_iter().filter(|(name, _)| pick(name)) {
        let out = run(pooltrack(store).args(&args));
        assert!(
            out.status.success(),
            "{when}: {name}: {}",
            stderr_text(&out)
        );
        let want = fs::read(expected.join(&name)).expect("an output of the previous release");
        assert!(
            out.stdout == want,
            "{when}: `pooltrack {}` differs from the previous release's\n--- now\n{}\n--- then\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&want)
        );
    }
}

/// A copy of the previous release's store to work on.
fn old_store(dir: &Path, name: &str) -> PathBuf {
    let store = dir.join(name);
    copy_dir(&testdata("format2_store"), &store);
    store
}

#[test]
fn a_format_2_store_is_read_as_it_is_migrated_once_and_answers_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = old_store(dir.path(), "store");
    assert_outputs_as_before(&store, "the old store read as it is");

    // A writer is refused with the command that fixes it, and changes nothing.
    let out = run(pooltrack(&store)
        .args(["ingest", "collections", "--round", "R4"])
        .arg(testdata("times_collections.csv")));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("pooltrack migrate"),
        "{}",
        stderr_text(&out)
    );
    assert!(!store.join("collections").exists());

    let r = json_of(pooltrack(&store).args(["migrate", "--json"]));
    assert_eq!(
        (r["from"].as_u64(), r["to"].as_u64()),
        (Some(2), Some(3)),
        "{r}"
    );
    assert_eq!(
        (r["batches"].as_u64(), r["retractions"].as_u64()),
        (Some(10), Some(1)),
        "{r}"
    );
    assert_eq!(r["files"], 25, "{r}");
    assert_outputs_as_before(&store, "after the migration");

    // The old names are gone, the old manifest is kept, nothing is left over.
    assert!(!store.join("MANIFEST.json").exists());
    assert!(store.join("MANIFEST.json.format-2").exists());
    assert!(!store.join("rounds").exists());
    assert_eq!(crate::crash::stray_files(&store), Vec::<String>::new());
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
    // The history is the same, read from the logs without pooltrack.
    let old: Value =
        serde_json::from_slice(&fs::read(store.join("MANIFEST.json.format-2")).expect("kept"))
            .expect("JSON");
    let new = crate::crash::manifest_json(&store);
    assert_eq!(new["retractions"], old["retractions"]);
    assert_eq!(new["settings"], old["settings"]);
    let ids = |m: &Value| -> Vec<u64> {
        m["batches"]
            .as_array()
            .expect("batches")
            .iter()
            .filter_map(|b| b["id"].as_u64())
            .collect()
    };
    assert_eq!(ids(&new), ids(&old));

    // Again: nothing to do. Then the store takes new batches.
    let again = json_of(pooltrack(&store).args(["migrate", "--json"]));
    assert_eq!(again["from"], again["to"], "{again}");
    let b = ingest_collections(&store, "R4", &[testdata("times_collections.csv")]);
    assert_eq!(b["batch"], 12, "{b}");
    // A format-3 store stays format 3: its new person index is hashed like its old
    // ones, it verifies whole, the old rounds answer as before, and the new round as it
    // does in a store of this release's format 4 (exact keys, short records).
    let fresh = dir.path().join("fresh");
    ingest_collections(&fresh, "R4", &[testdata("times_collections.csv")]);
    let kinds = |s: &Path| -> Vec<u32> {
        files_under(s)
            .into_iter()
            .filter(|p| {
                p.extension().is_some_and(|e| e == "persons") && p.to_string_lossy().contains("R4")
            })
            .map(|p| {
                let b = fs::read(&p).expect("a person index");
                u32::from_le_bytes([b[8], b[9], b[10], b[11]])
            })
            .collect()
    };
    assert_eq!((kinds(&store), kinds(&fresh)), (vec![2], vec![4]));
    assert_eq!(
        json_of(pooltrack(&store).args(["verify", "--json"]))["healthy"],
        true
    );
    assert_eq!(
        json_of(pooltrack(&fresh).args(["verify", "--json"]))["healthy"],
        true
    );
    assert_some_outputs_as_before(&store, "after a new batch", |name| name != "log.json");
    // (The register is the old store's alone, so only what it does not touch.)
    for args in [
        &["export", "status", "--round", "R4"][..],
        &["worklist", "recall", "--round", "R4", "--format", "json"],
        &["review", "--round", "R4", "--format", "json"],
    ] {
        let (a, b) = (
            run(pooltrack(&store).args(args)),
            run(pooltrack(&fresh).args(args)),
        );
        assert!(
            a.status.success() && b.status.success(),
            "{}",
            stderr_text(&a)
        );
        assert!(
            a.stdout == b.stdout,
            "`pooltrack {}` differs between formats 3 and 4",
            args.join(" ")
        );
    }

    if crate::delta::have_delta_reader("reading a migrated store with delta-rs") {
        let seen = crate::delta::delta_reader(&store);
        // The retracted batch 5 is not seen; batch 12 is.
        assert_eq!(seen["collections"].batches, vec![1, 3, 7, 9, 12]);
        assert_eq!(seen["results"].batches, vec![2, 4, 8, 10]);
        assert_eq!(seen["population"].batches, vec![11]);
    }
}

/// Kills `pooltrack migrate` at moments spread over its life: the store is then the
/// old one (every output as before, a writer still refused) or the new one, and a
/// second `migrate` finishes it either way.
#[test]
fn a_migration_killed_at_any_moment_leaves_the_old_store_or_the_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut old, mut new) = (0, 0);
    for i in 0..16u64 {
        let store = old_store(dir.path(), &format!("kill{i}"));
        let mut child = Command::new(bin())
            .arg("--store")
            .arg(&store)
            .arg("migrate")
            .env_remove("POOLTRACK_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pooltrack starts");
        std::thread::sleep(Duration::from_micros(i * i * 250));
        let _ = child.kill();
        let _ = child.wait();
        if store.join("MANIFEST.json").exists() {
            old += 1;
        } else {
            new += 1;
        }
        let out = run(pooltrack(&store).args(["export", "status", "--round", "R3"]));
        assert!(out.status.success(), "kill {i}: {}", stderr_text(&out));
        let want = fs::read(testdata("format2_outputs/export-status-R3.csv")).expect("expected");
        assert!(out.stdout == want, "kill {i}: the statuses changed");
        let r = json_of(pooltrack(&store).args(["migrate", "--json"]));
        assert_eq!(r["to"], 3, "kill {i}: {r}");
        assert_outputs_as_before(&store, &format!("kill {i}, migrated again"));
        let v = json_of(pooltrack(&store).args(["verify", "--json"]));
        assert_eq!(v["healthy"], true, "kill {i}: {v}");
        // What a killed run left (old names, half-made tables) is gone once a writer ran.
        ingest_collections(&store, "R4", &[testdata("times_collections.csv")]);
        assert!(!store.join("rounds").exists(), "kill {i}");
        let parquet: Vec<PathBuf> = files_under(&store)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        assert_eq!(parquet.len(), 11, "kill {i}: {parquet:?}");
    }
    eprintln!("migration kills: {old} left the old store, {new} the new one");
    assert!(old >= 1, "the kill at 0 ms leaves the old store");
}
