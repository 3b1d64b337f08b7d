//! The specimen limit (issue 20, "such a result does not count and the persons need a
//! resample"): a result reported more than `specimen_limit_hours` after its tube's
//! first swab does not count; a tube with only such results needs a resample, as an
//! invalid one does, and every list that shows the tube says why.
//!
//! `testdata/specimen_limit_*.csv` (times +08:00, limit 48 h unless the store's
//! `pooltrack.toml` says otherwise):
//!
//! | tube | persons (swab) | results (reported) |
//! | --- | --- | --- |
//! | SL-POOL-01 | A 04-02 08:00, B 08:05 | negative 04-04 09:00: 49 h after A's swab |
//! | SL-POOL-02 | C 08:10, D 08:15 | positive 04-02 14:00 |
//! | SL-RT-03, SL-RT-04 | C 16:00, D 16:05 (retests) | negative 04-04 17:00 (49 h), negative 04-02 20:00 |
//! | SL-POOL-03 | E 09:00 | negative 04-02 15:00; positive 04-04 12:00 (51 h: a re-test too late) |
//! | SL-POOL-04, SL-SG-06 | F 09:30, F 04-03 09:00 | negative 04-04 10:00 (48.5 h); negative 04-03 12:00 |
//! | SL-POOL-05 | G 10:00 | negative 04-04 10:00: exactly 48 h |
//!
//! At 48 h: A and B resample (their tube's only result came 49 h after the first swab);
//! C recall (the late retest neither clears the pool nor waits); D negative; E negative
//! (the late re-test does not count); F negative (a later negative tube clears the late
//! one); G negative (48 h is within). At 72 h every result counts: A, B, C, F negative,
//! and E recall (the re-test's positive is the tube's, and never cleared).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{
    csv_records, exported_statuses, ingest_collections, ingest_results, person_report, round_status,
};

const ROUND: &str = "R1";

fn store_of(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("store");
    ingest_collections(&store, ROUND, &[testdata("specimen_limit_collections.csv")]);
    ingest_results(&store, &[testdata("specimen_limit_results.csv")]);
    store
}

fn statuses(store: &Path) -> BTreeMap<String, String> {
    exported_statuses(store, ROUND)
}

fn want(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect()
}

const LATE_49: &str = "tested 49 h after the swab, past the 48 h specimen limit";

#[test]
fn a_tube_tested_past_the_limit_needs_a_resample_and_says_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = store_of(dir.path());
    assert_eq!(
        statuses(&store),
        want(&[
            ("SL-A", "resample"),
            ("SL-B", "resample"),
            ("SL-C", "recall"),
            ("SL-D", "negative"),
            ("SL-E", "negative"),
            ("SL-F", "negative"),
            ("SL-G", "negative"),
        ])
    );
    let counts = round_status(&store, ROUND);
    assert_eq!(counts["tubes_past_limit"], 3, "{counts}");
    assert_eq!(counts["specimen_limit_hours"], 48.0, "{counts}");
    // SL-POOL-03 counts its negative; the late positive is not kept against it.
    assert_eq!(counts["positives_kept"], 0, "{counts}");

    // `status --person`: the deciding tube, its result and why it does not count.
    let a = person_report(&store, ROUND, "SL-A");
    assert_eq!(a["status"], "resample", "{a}");
    assert_eq!(a["decided_by"]["tube"], "SL-POOL-01");
    assert_eq!(a["decided_by"]["result"], "negative");
    assert_eq!(a["decided_by"]["not_counted"], LATE_49);
    let tube = &a["tubes"][0];
    assert_eq!(tube["not_counted"], LATE_49, "{tube}");
    assert_eq!(tube["results"][0]["past_limit"], LATE_49, "{tube}");
    assert_eq!(tube["results"][0]["effective"], false, "{tube}");
    let text = stdout_of(pooltrack(&store).args(["status", "--round", ROUND, "--person", "SL-A"]));
    assert!(
        text.contains(&format!(
            "decided by pool tube SL-POOL-01 (negative, which does not count: {LATE_49})"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("does not count: {LATE_49}")),
        "{text}"
    );
    // C's late retest is shown as not counting; the pool still recalls C.
    let c = person_report(&store, ROUND, "SL-C");
    let retest = c["tubes"]
        .as_array()
        .expect("tubes")
        .iter()
        .find(|t| t["tube"] == "SL-RT-03")
        .expect("the retest");
    assert_eq!(retest["not_counted"], LATE_49, "{retest}");
    assert_eq!(c["decided_by"]["tube"], "SL-POOL-02");
    // E's tube has a result that counts: the late re-test is marked, the tube is not.
    let e = person_report(&store, ROUND, "SL-E");
    let tube = &e["tubes"][0];
    assert!(tube.get("not_counted").is_none(), "{tube}");
    assert_eq!(tube["result"], "negative");
    assert_eq!(
        tube["results"][1]["past_limit"],
        "tested 51 h after the swab, past the 48 h specimen limit"
    );

    // The resample list and the exports carry the reason.
    let list = json_of(
        pooltrack(&store).args(["worklist", "resample", "--round", ROUND, "--format", "json"]),
    );
    let rows: Vec<(&str, &str)> = list
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["person"].as_str().unwrap_or(""),
                r["not_counted"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().all(|(_, why)| *why == LATE_49), "{list}");
    let export = csv_records(&stdout_of(
        pooltrack(&store).args(["export", "status", "--round", ROUND]),
    ));
    let of = |rows: &[BTreeMap<String, String>], p: &str| {
        rows.iter()
            .find(|r| r["person"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} not exported"))
    };
    assert_eq!(of(&export, "SL-B")["not_counted"], LATE_49);
    assert_eq!(
        of(&export, "SL-B")["reported_at"],
        "2022-04-04T09:00:00+08:00"
    );
    assert_eq!(of(&export, "SL-G")["not_counted"], "");
    let codes = csv_records(&stdout_of(pooltrack(&store).args([
        "export",
        "health-codes",
        "--round",
        ROUND,
    ])));
    let a = of(&codes, "SL-A");
    assert_eq!(
        (
            a["color"].as_str(),
            a["status"].as_str(),
            a["not_counted"].as_str()
        ),
        ("yellow", "resample", LATE_49)
    );
    // Across rounds too, as of a time after every result.
    let h = json_of(pooltrack(&store).args([
        "status",
        "--person",
        "SL-A",
        "--as-of",
        "2022-04-05 12:00",
        "--json",
    ]));
    assert_eq!(
        (h["color"].as_str(), h["reason"].as_str()),
        (Some("yellow"), Some("resample"))
    );
    let across = csv_records(&stdout_of(pooltrack(&store).args([
        "export",
        "health-codes",
        "--as-of",
        "2022-04-05 12:00",
    ])));
    assert_eq!(of(&across, "SL-A")["not_counted"], LATE_49);
    // Before the late report, the tube was simply waiting.
    let h = json_of(pooltrack(&store).args([
        "status",
        "--person",
        "SL-A",
        "--as-of",
        "2022-04-04 08:00",
        "--json",
    ]));
    assert_eq!(h["rounds"][0]["status_as_of"], "pending", "{h}");

    // custody flags the same tubes, with the tracker's words.
    let custody = json_of(pooltrack(&store).args(["custody", "--round", ROUND, "--json"]));
    let flagged: Vec<(&str, f64)> = custody["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "past_limit")
        .map(|f| {
            (
                f["tube"].as_str().unwrap_or(""),
                f["hours"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    assert_eq!(
        flagged,
        [
            ("SL-POOL-01", 49.0),
            ("SL-POOL-04", 48.5),
            ("SL-RT-03", 49.0)
        ],
        "{custody}"
    );
}

#[test]
fn a_longer_limit_in_the_store_counts_those_results() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = store_of(dir.path());
    std::fs::write(
        store.join("pooltrack.toml"),
        "[custody]\nspecimen_limit_hours = 72\n",
    )
    .expect("config");
    assert_eq!(
        statuses(&store),
        want(&[
            ("SL-A", "negative"),
            ("SL-B", "negative"),
            ("SL-C", "negative"),
            ("SL-D", "negative"),
            ("SL-E", "recall"),
            ("SL-F", "negative"),
            ("SL-G", "negative"),
        ])
    );
    let counts = round_status(&store, ROUND);
    assert_eq!(counts["tubes_past_limit"], 0, "{counts}");
    assert_eq!(counts["positives_kept"], 0, "{counts}");
    let a = person_report(&store, ROUND, "SL-A");
    assert_eq!(a["decided_by"]["not_counted"], "", "{a}");
    assert_eq!(a["tubes"][0]["results"][0]["effective"], true, "{a}");
    let custody: Value = json_of(pooltrack(&store).args(["custody", "--round", ROUND, "--json"]));
    assert_eq!(custody["counts"]["past_limit"], 0, "{custody}");
    // A limit asked of custody alone is a question: it says the statuses follow the
    // store's.
    let what_if = json_of(pooltrack(&store).args([
        "custody",
        "--round",
        ROUND,
        "--specimen-limit-hours",
        "48",
        "--json",
    ]));
    let detail = what_if["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["tube"] == "SL-POOL-01")
        .map(|f| f["detail"].as_str().unwrap_or("").to_owned())
        .expect("flagged at 48 h");
    assert!(
        detail.starts_with(LATE_49)
            && detail.contains("the store's limit, which the statuses follow, is 72 h"),
        "{detail}"
    );
}
