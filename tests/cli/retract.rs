//! Fixing mistakes (issue 15): a batch ingested into the wrong round is retracted,
//! the history stays, and the round ends as if the mistake never happened.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of};
use crate::crash::{bin, copy_dir, manifest_json};
use crate::rules::{exported_statuses, ingest_collections, ingest_results};

const WRONG: &str = "2022-04-20";
const RIGHT: &str = "2022-04-02";

/// A small round: 6 pools of 5, one positive, and its results.
fn round_files(dir: &Path) -> (PathBuf, PathBuf) {
    let mut c = String::from("tube,person,mode,capacity,collected_at,site\n");
    let mut r = String::from("tube,result,reported_at\n");
    for t in 0..6 {
        for k in 0..5 {
            writeln!(
                c,
                "FIX-{t:04},fix-p{t}{k},pool,5,2022-04-02 08:{t}{k}:00,S1"
            )
            .expect("w");
        }
        let result = if t == 2 { "positive" } else { "negative" };
        writeln!(r, "FIX-{t:04},{result},2022-04-02 14:00:00").expect("w");
    }
    let (cp, rp) = (dir.join("pools.csv"), dir.join("lab.csv"));
    std::fs::write(&cp, c).expect("write");
    std::fs::write(&rp, r).expect("write");
    (cp, rp)
}

fn retract(store: &Path, batch: u32, reason: &str) -> Value {
    json_of(pooltrack(store).args([
        "retract",
        "--batch",
        &batch.to_string(),
        "--reason",
        reason,
        "--by",
        "clerk-1",
        "--json",
    ]))
}

#[test]
fn a_batch_in_the_wrong_round_is_retracted_and_ingested_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let (pools, lab) = round_files(dir.path());

    // How the round should look.
    let good = dir.path().join("good");
    ingest_collections(&good, RIGHT, std::slice::from_ref(&pools));
    ingest_results(&good, std::slice::from_ref(&lab));
    let want = exported_statuses(&good, RIGHT);
    assert_eq!(want.len(), 30);
    assert_eq!(want.values().filter(|s| *s == "recall").count(), 5);

    // The mistake: the round mistyped; the lab's results follow the tubes there.
    let store = dir.path().join("store");
    ingest_collections(&store, WRONG, std::slice::from_ref(&pools));
    ingest_results(&store, std::slice::from_ref(&lab));
    let again = stdout_of(
        pooltrack(&store)
            .args(["ingest", "collections", "--round", RIGHT])
            .arg(&pools),
    );
    assert!(
        again.contains("already ingested in batch 1 into round 2022-04-20 at "),
        "{again}"
    );
    assert!(again.contains("pooltrack retract --batch 1"), "{again}");

    // Take both back, results first; the log keeps them.
    let r = retract(&store, 2, "results of the mistyped round");
    assert_eq!(
        (r["batch"].as_u64(), r["kind"].as_str()),
        (Some(2), Some("results"))
    );
    let c = retract(&store, 1, "ingested as 2022-04-20, meant 2022-04-02");
    assert_eq!(c["round"], WRONG);
    assert_eq!(c["results_batches_to_check"], serde_json::json!([]), "{c}");
    // The wrong round has no rows left.
    let out = pooltrack(&store)
        .args(["status", "--round", WRONG])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "an unknown round now");

    // The same files go in again, to the right round.
    let c = ingest_collections(&store, RIGHT, std::slice::from_ref(&pools));
    assert_eq!(
        (c["batch"].as_u64(), c["committed"].as_u64()),
        (Some(5), Some(30)),
        "{c}"
    );
    let r = ingest_results(&store, std::slice::from_ref(&lab));
    assert_eq!(r["committed"], 6, "{r}");
    assert_eq!(
        exported_statuses(&store, RIGHT),
        want,
        "as if the mistake never happened"
    );
    let recall = stdout_of(pooltrack(&store).args(["worklist", "recall", "--round", RIGHT]));
    assert_eq!(recall.lines().count(), 6, "{recall}");

    // History: four batches and two retractions, in order.
    let log = json_of(pooltrack(&store).args(["log", "--json"]));
    let entries: Vec<(String, u64, Option<u64>)> = log
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["entry"].as_str().unwrap_or("").to_owned(),
                e["id"].as_u64().unwrap_or(0),
                e["retracted_by"].as_u64().or(e["batch"].as_u64()),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("batch".into(), 1, Some(4)),
            ("batch".into(), 2, Some(3)),
            ("retraction".into(), 3, Some(2)),
            ("retraction".into(), 4, Some(1)),
            ("batch".into(), 5, None),
            ("batch".into(), 6, None),
        ]
    );
    assert_eq!(log[3]["by"], "clerk-1");
    assert_eq!(log[3]["reason"], "ingested as 2022-04-20, meant 2022-04-02");
    let text = stdout_of(pooltrack(&store).args(["log"]));
    assert!(text.contains("[retracted by 4]"), "{text}");
    // The retracted batches' files stay, and the store is healthy.
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(manifest_json(&store)["format"], 3);
}

#[test]
fn retracting_a_collections_batch_names_the_results_batches_that_followed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (pools, lab) = round_files(dir.path());
    let store = dir.path().join("store");
    ingest_collections(&store, WRONG, std::slice::from_ref(&pools));
    ingest_results(&store, std::slice::from_ref(&lab));
    let c = retract(&store, 1, "wrong round");
    assert_eq!(c["results_batches_to_check"], serde_json::json!([2]), "{c}");
    let text = stdout_of(pooltrack(&store).args(["log"]));
    assert!(text.contains("batch 1 by clerk-1: wrong round"), "{text}");
}

#[test]
fn a_retraction_is_refused_when_it_cannot_be_made() {
    let dir = tempfile::tempdir().expect("tmp");
    let (pools, _) = round_files(dir.path());
    let store = dir.path().join("store");
    let code = |args: &[&str]| {
        let out = pooltrack(&store).args(args).output().expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No store yet: a usage error, and no store is created.
    let (c, err) = code(&["retract", "--batch", "1", "--reason", "x"]);
    assert_eq!(c, Some(2), "{err}");
    assert!(!store.exists());
    ingest_collections(&store, RIGHT, std::slice::from_ref(&pools));
    let (c, err) = code(&["retract", "--batch", "9", "--reason", "x"]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("no batch 9"), "{err}");
    let (c, err) = code(&["retract", "--batch", "1", "--reason", "  "]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("--reason"), "{err}");
    retract(&store, 1, "test export");
    let (c, err) = code(&["retract", "--batch", "1", "--reason", "again"]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("already retracted"), "{err}");
}

#[test]
fn a_damaged_or_newer_log_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (pools, _) = round_files(dir.path());
    let store = dir.path().join("store");
    ingest_collections(&store, RIGHT, std::slice::from_ref(&pools));
    let log = store.join("collections/_delta_log");
    // A retraction of a batch the store does not hold.
    let forged = log.join("00000000000000000002.json");
    std::fs::write(
        &forged,
        r#"{"commitInfo":{"operation":"DELETE","pooltrack":{"retraction":{"id":2,"batch":7,"reason":"x","by":"y","at":"z"}}}}"#,
    )
    .expect("write");
    let out = pooltrack(&store)
        .args(["status", "--round", RIGHT])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch 7"));
    // A commit another engine made (no pooltrack record): refused, naming it.
    std::fs::write(
        &forged,
        r#"{"commitInfo":{"operation":"OPTIMIZE","engineInfo":"Apache-Spark/3.5.0"}}"#,
    )
    .expect("write");
    let out = pooltrack(&store)
        .args(["status", "--round", RIGHT])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Apache-Spark") && err.contains("00000000000000000002.json"),
        "{err}"
    );
    std::fs::remove_file(&forged).expect("remove");
    // A store of a later format: refused, naming the upgrade.
    let first = log.join("00000000000000000000.json");
    let text = std::fs::read_to_string(&first).expect("version 0");
    assert!(text.contains(r#""pooltrack.format":"4""#), "{text}");
    std::fs::write(
        &first,
        text.replace(r#""pooltrack.format":"4""#, r#""pooltrack.format":"99""#),
    )
    .expect("write");
    let out = pooltrack(&store)
        .args(["status", "--round", RIGHT])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer pooltrack"));
}

/// A retraction killed at any moment leaves the store before or after it: it is one
/// commit file, made by one link.
#[test]
fn a_retraction_killed_at_any_moment_is_whole_or_absent() {
    let dir = tempfile::tempdir().expect("tmp");
    let (pools, _) = round_files(dir.path());
    let base = dir.path().join("base");
    ingest_collections(&base, RIGHT, std::slice::from_ref(&pools));
    let (mut before, mut after) = (0, 0);
    for i in 0..12u64 {
        let store = dir.path().join(format!("kill{i}"));
        copy_dir(&base, &store);
        let mut child = Process::new(bin())
            .arg("--store")
            .arg(&store)
            .args(["retract", "--batch", "1", "--reason", "kill test"])
            .env_remove("POOLTRACK_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(i * i * 150));
        let _ = child.kill();
        let _ = child.wait();
        let v = json_of(pooltrack(&store).args(["verify", "--json"]));
        assert_eq!(v["healthy"], true, "kill {i}: {v}");
        let retracted = manifest_json(&store)["retractions"]
            .as_array()
            .is_some_and(|r| r.len() == 1);
        let out = pooltrack(&store)
            .args(["status", "--round", RIGHT, "--json"])
            .output()
            .expect("runs");
        if retracted {
            after += 1;
            assert_eq!(out.status.code(), Some(2), "kill {i}: the round is gone");
        } else {
            before += 1;
            let s: Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(s["persons"], 30, "kill {i}");
            // Nothing half-done stops the retraction from being made now.
            retract(&store, 1, "after the kill");
        }
    }
    eprintln!("retraction kills: {before} before, {after} after");
}

/// Two writers: a retraction while another writer holds the store changes nothing and
/// is "store is busy" (exit 3), as for ingests; with `--wait` it waits its turn.
#[test]
fn a_retraction_meets_a_busy_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let (pools, _) = round_files(dir.path());
    let store = dir.path().join("store");
    ingest_collections(&store, RIGHT, std::slice::from_ref(&pools));
    let before = crate::crash::commits(&store);
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(store.join("lock"))
        .expect("lock file");
    holder.lock().expect("hold the writer's lock");
    let out = pooltrack(&store)
        .args(["retract", "--batch", "1", "--reason", "busy"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("busy"));
    assert!(crate::crash::commits(&store) == before);
    // With --wait, it waits for the other writer to finish.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        holder.unlock().expect("release");
    });
    let out = pooltrack(&store)
        .args([
            "retract", "--batch", "1", "--reason", "waited", "--wait", "30",
        ])
        .output()
        .expect("runs");
    release.join().expect("released");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(manifest_json(&store)["retractions"][0]["reason"], "waited");
}
