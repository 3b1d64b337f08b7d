//! A generated city of 100,000 through the whole round: the recall list names exactly
//! the members of pools that hold an infected person, and after the retests exactly the
//! infected of the ground truth are positive.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::common::{json_of, pooltrack, stdout_of};

fn column_sets(path: &Path, key: &str, value: &str) -> Vec<(String, String)> {
    let mut r = csv::Reader::from_path(path).expect("readable csv");
    let h = r.headers().expect("header").clone();
    let k = h.iter().position(|c| c == key).expect("key column");
    let v = h.iter().position(|c| c == value).expect("value column");
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            (rec[k].to_owned(), rec[v].to_owned())
        })
        .collect()
}

fn persons(rows: &serde_json::Value) -> BTreeSet<String> {
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["person"].as_str().expect("person").to_owned())
        .collect()
}

fn count(status: &serde_json::Value, name: &str) -> u64 {
    status["by_status"]
        .as_array()
        .expect("by_status")
        .iter()
        .find(|p| p[0] == name)
        .and_then(|p| p[1].as_u64())
        .expect("a count")
}

#[test]
fn city_of_100k_recall_then_retest_finds_exactly_the_infected() {
    let dir = tempfile::tempdir().expect("tmp");
    let city = dir.path().join("city");
    let store = dir.path().join("store");
    stdout_of(
        pooltrack(&store)
            .args([
                "gen",
                "--persons",
                "100000",
                "--prevalence",
                "0.003",
                "--seed",
                "42",
                "--out",
            ])
            .arg(&city),
    );

    let truth: BTreeSet<String> = column_sets(&city.join("truth.csv"), "person", "person")
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        truth.len() > 200,
        "the city has infected people: {}",
        truth.len()
    );

    // The oracle, from the generated files alone: members of pools holding an infected person.
    let members = column_sets(&city.join("collections.csv"), "tube", "person");
    let mode: HashMap<String, String> = column_sets(&city.join("collections.csv"), "tube", "mode")
        .into_iter()
        .collect();
    let hot_pools: BTreeSet<&str> = members
        .iter()
        .filter(|(t, p)| mode[t] == "pool" && truth.contains(p))
        .map(|(t, _)| t.as_str())
        .collect();
    let expected_recall: BTreeSet<String> = members
        .iter()
        .filter(|(t, _)| hot_pools.contains(t.as_str()))
        .map(|(_, p)| p.clone())
        .collect();

    let round = ["--round", "city-100k"];
    let c = json_of(
        pooltrack(&store)
            .args(["ingest", "collections", "--json"])
            .arg(city.join("collections.csv"))
            .args(round),
    );
    assert_eq!(c["committed"], 100_000);
    assert_eq!(c["rejected"], 0);
    let r = json_of(
        pooltrack(&store)
            .args(["ingest", "results", "--json"])
            .arg(city.join("results.csv")),
    );
    assert_eq!(r["rejected"], 0);

    let recall = json_of(
        pooltrack(&store)
            .args(["worklist", "recall", "--format", "json"])
            .args(round),
    );
    assert_eq!(
        persons(&recall),
        expected_recall,
        "recall names exactly the members of positive pools"
    );
    let cts: Vec<f64> = recall
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            r["ct_orf1ab"]
                .as_f64()
                .unwrap_or(f64::INFINITY)
                .min(r["ct_n"].as_f64().unwrap_or(f64::INFINITY))
        })
        .collect();
    assert!(
        cts.windows(2).all(|w| w[0] <= w[1]),
        "recall is sorted lowest Ct first"
    );

    stdout_of(
        pooltrack(&store)
            .args(["ingest", "collections"])
            .arg(city.join("retest_collections.csv"))
            .args(round),
    );
    let mid = json_of(pooltrack(&store).args(["status", "--json"]).args(round));
    assert_eq!(count(&mid, "retest_pending"), expected_recall.len() as u64);
    assert_eq!(count(&mid, "recall"), 0);

    stdout_of(
        pooltrack(&store)
            .args(["ingest", "results"])
            .arg(city.join("retest_results.csv")),
    );
    let positives = json_of(
        pooltrack(&store)
            .args(["worklist", "positives", "--format", "json"])
            .args(round),
    );
    assert_eq!(
        persons(&positives),
        truth,
        "every infected person is positive, and nobody else"
    );
    let end = json_of(pooltrack(&store).args(["status", "--json"]).args(round));
    assert_eq!(end["persons"], 100_000);
    assert_eq!(count(&end, "positive"), truth.len() as u64);
    assert_eq!(count(&end, "negative"), 100_000 - truth.len() as u64);
    for s in ["recall", "retest_pending", "resample", "pending"] {
        assert_eq!(count(&end, s), 0, "{s}");
    }
}

#[test]
fn demo_finds_exactly_the_infected() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = stdout_of(pooltrack(&dir.path().join("unused")).arg("demo"));
    assert!(out.contains("Recall worklist"), "{out}");
    assert!(out.contains(" 0 missed, 0 wrongly positive"), "{out}");
}

#[test]
fn a_closed_pipe_ends_quietly_without_a_panic() {
    let dir = tempfile::tempdir().expect("tmp");
    let bin = assert_cmd::cargo::cargo_bin("pooltrack");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --store '{}' demo | head -n 1",
            bin.display(),
            dir.path().join("s").display()
        ))
        .output()
        .expect("sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
