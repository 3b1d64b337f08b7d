//! Plate quality control (issue 3): controls fail plates, a failed plate's results do not
//! count and its tubes go on the rerun worklist until a good plate's result arrives; an
//! internal control without signal makes a target-less sample invalid; cut-offs come
//! from `STORE/pooltrack.toml`.

use std::path::Path;

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{
    ingest_collections, ingest_results, person_report, person_status, rejects_of, run, stderr_text,
};

const ROUND: &str = "2022-04-02";

fn store_with_collections() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    ingest_collections(dir.path(), ROUND, &[testdata("qc_collections.csv")]);
    dir
}

fn reruns(store: &Path) -> Vec<Value> {
    let v =
        json_of(pooltrack(store).args(["worklist", "rerun", "--round", ROUND, "--format", "json"]));
    v.as_array().expect("an array").clone()
}

fn tubes_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["tube"].as_str().expect("tube").to_owned())
        .collect()
}

#[test]
fn a_negative_control_that_amplifies_fails_its_plate_and_sends_its_tubes_to_rerun() {
    let dir = store_with_collections();
    let store = dir.path();
    let report = ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    let failed = report["failed_plates"].as_array().expect("failed plates");
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["plate"], "P1");
    assert_eq!(failed[0]["lab"], "LAB-Q");
    let reason = failed[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("negative control NC-1 amplified"),
        "{reason}"
    );
    assert!(reason.contains("ORF1ab Ct 31.2"), "{reason}");
    // Controls are committed with their plate (7 samples + 4 controls).
    assert_eq!(report["committed"], 9);

    // The positive pool on the failed plate does not recall anyone; both its tubes wait.
    for p in ["qc-a1", "qc-a2", "qc-b1", "qc-b2"] {
        assert_eq!(person_status(store, ROUND, p), "pending", "{p}");
    }
    assert_eq!(person_status(store, ROUND, "qc-c1"), "negative");
    assert_eq!(person_status(store, ROUND, "qc-e1"), "negative");
    let rows = reruns(store);
    assert_eq!(tubes_of(&rows), ["QC-POOL-01", "QC-POOL-02"]);
    assert_eq!(rows[0]["plate"], "P1");
    assert_eq!(rows[0]["members"], 2);
    assert_eq!(rows[1]["well"], "B01");
    assert!(rows[1]["reason"].as_str().expect("reason").contains("NC-1"));
    let recall = json_of(
        pooltrack(store).args(["worklist", "recall", "--round", ROUND, "--format", "json"]),
    );
    assert_eq!(recall.as_array().map(Vec::len), Some(0), "{recall}");

    // status counts them and a person's evidence shows the void result.
    let status = json_of(pooltrack(store).args(["status", "--round", ROUND, "--json"]));
    assert_eq!(status["tubes_to_rerun"], 2);
    let person = person_report(store, ROUND, "qc-b1");
    let results = person["tubes"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["effective"], false);
    assert!(
        results[0]["void"]
            .as_str()
            .expect("void")
            .contains("plate P1 failed"),
        "{person}"
    );
    let text = stdout_of(pooltrack(store).args(["status", "--round", ROUND, "--person", "qc-b1"]));
    assert!(text.contains("void, does not count"), "{text}");
}

#[test]
fn a_rerun_on_a_good_plate_counts_and_empties_the_rerun_list() {
    let dir = store_with_collections();
    let store = dir.path();
    ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    ingest_results(store, &[testdata("qc_results_rerun.csv")]);
    assert!(reruns(store).is_empty());
    assert_eq!(person_status(store, ROUND, "qc-a1"), "negative");
    assert_eq!(person_status(store, ROUND, "qc-b1"), "recall");
    let recall = json_of(
        pooltrack(store).args(["worklist", "recall", "--round", ROUND, "--format", "json"]),
    );
    let tubes: Vec<&str> = recall
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["tube"].as_str())
        .collect();
    assert_eq!(tubes, ["QC-POOL-02", "QC-POOL-02"]);
}

#[test]
fn no_target_and_no_internal_control_signal_is_invalid() {
    let dir = store_with_collections();
    let store = dir.path();
    ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    // QC-POOL-04 had no Ct at all and an undetermined ct_ic: invalid, so its person is
    // resampled.
    assert_eq!(person_status(store, ROUND, "qc-d1"), "resample");
    let person = person_report(store, ROUND, "qc-d1");
    assert_eq!(person["tubes"][0]["result"], "invalid");
    // A lab's "negative" word with an internal-control signal stays negative.
    assert_eq!(person_status(store, ROUND, "qc-e1"), "negative");
}

#[test]
fn a_lab_negative_without_internal_control_signal_is_read_invalid_with_a_warning() {
    let dir = store_with_collections();
    let store = dir.path();
    let file = dir.path().join("ic.csv");
    std::fs::write(
        &file,
        "tube,result,ct_ic,reported_at\nQC-POOL-03,negative,-,2022-04-02 14:00:00\n",
    )
    .expect("write");
    let report = ingest_results(store, &[file]);
    let rejects = rejects_of(&report);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].column, "ct_ic");
    assert_eq!(rejects[0].severity, "warning");
    assert!(
        rejects[0].reason.contains("read as invalid, not negative"),
        "{rejects:?}"
    );
    assert_eq!(person_status(store, ROUND, "qc-c1"), "resample");
}

#[test]
fn a_blank_internal_control_is_not_stated_and_leaves_the_result_alone() {
    // An export that fills ct_ic only sometimes: a blank is "not stated", not "no
    // signal", so the lab's negative and the Ct reading stand.
    let dir = store_with_collections();
    let store = dir.path();
    let file = dir.path().join("ic.csv");
    std::fs::write(
        &file,
        "tube,result,ct_orf1ab,ct_n,ct_ic,reported_at\n\
         QC-POOL-03,negative,,,,2022-04-02 14:00:00\n\
         QC-POOL-04,,,,,2022-04-02 14:00:00\n",
    )
    .expect("write");
    let report = ingest_results(store, &[file]);
    assert!(report["rejects_file"].is_null(), "no warning: {report}");
    assert_eq!(report["committed"], 2, "{report}");
    assert_eq!(person_status(store, ROUND, "qc-c1"), "negative");
    assert_eq!(person_status(store, ROUND, "qc-d1"), "negative");
}

#[test]
fn a_positive_control_that_does_not_amplify_fails_its_plate() {
    let dir = store_with_collections();
    let store = dir.path();
    let report = ingest_results(store, &[testdata("qc_results_positive_control_fail.csv")]);
    let reason = report["failed_plates"][0]["reason"]
        .as_str()
        .expect("reason");
    assert_eq!(reason, "positive control PC-9 was reported negative");
    assert_eq!(person_status(store, ROUND, "qc-c1"), "pending");
    assert_eq!(tubes_of(&reruns(store)), ["QC-POOL-03"]);
    let text = stdout_of(
        pooltrack(store)
            .args(["ingest", "results"])
            .arg(testdata("qc_results_plate_fail.csv")),
    );
    assert!(text.contains("plate P1 of lab LAB-Q FAILED"), "{text}");
}

#[test]
fn bad_control_rows_are_rejected_with_their_reason() {
    let dir = store_with_collections();
    let store = dir.path();
    let report = ingest_results(store, &[testdata("qc_results_bad_controls.csv")]);
    let rejects = rejects_of(&report);
    let got: Vec<(u64, &str)> = rejects
        .iter()
        .map(|r| (r.line, r.column.as_str()))
        .collect();
    assert_eq!(
        got,
        [(3, "plate"), (4, "plate"), (5, "sample_type")],
        "{rejects:?}"
    );
    assert!(rejects[0].reason.contains("must name its plate"));
    assert!(rejects[1].reason.contains("no sample of this plate"));
    assert_eq!(report["committed"], 1);
    assert!(report["failed_plates"].as_array().expect("list").is_empty());
}

#[test]
fn control_cutoffs_come_from_the_store_config_file() {
    let dir = store_with_collections();
    let store = dir.path();
    // With the negative-control cut-off at 30, NC-1's Ct 31.2 no longer fails plate P1.
    std::fs::copy(
        testdata("qc_config_lenient.toml"),
        store.join("pooltrack.toml"),
    )
    .expect("cp");
    let report = ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    assert!(
        report["failed_plates"].as_array().expect("list").is_empty(),
        "{report}"
    );
    assert_eq!(person_status(store, ROUND, "qc-b1"), "recall");
    let shown = stdout_of(pooltrack(store).arg("config"));
    assert!(
        shown.contains("plate_qc.negative_control_cutoff = 30"),
        "{shown}"
    );
    assert!(
        shown.contains("plate_qc.positive_control_cutoff = 40"),
        "{shown}"
    );
}

#[test]
fn a_bad_config_file_is_refused_with_its_line() {
    let dir = store_with_collections();
    let store = dir.path();
    std::fs::copy(
        testdata("qc_config_bad_key.toml"),
        store.join("pooltrack.toml"),
    )
    .expect("cp");
    let out = run(pooltrack(store)
        .args(["ingest", "results"])
        .arg(testdata("qc_results_plate_fail.csv")));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_text(&out);
    assert!(err.contains("pooltrack.toml"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("negative_control_cutof"), "{err}");
}

#[test]
fn write_defaults_creates_a_config_that_reads_as_the_defaults() {
    let dir = store_with_collections();
    let store = dir.path();
    let out = stdout_of(pooltrack(store).args(["config", "--write-defaults"]));
    assert!(out.contains("deadlines.pool_hours = 24"), "{out}");
    let text = std::fs::read_to_string(store.join("pooltrack.toml")).expect("written");
    assert!(text.contains("ic_cutoff = 40.0"));
    // A second time refuses to overwrite the clerk's edits.
    let again = run(pooltrack(store).args(["config", "--write-defaults"]));
    assert_ne!(again.status.code(), Some(0));
    assert!(stderr_text(&again).contains("exists already"));
}

#[test]
fn verify_accepts_segments_with_controls() {
    let dir = store_with_collections();
    let store = dir.path();
    ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    let out = run(pooltrack(store).arg("verify"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
}

#[test]
fn received_at_splits_turnaround_into_transport_and_time_in_the_lab() {
    let dir = store_with_collections();
    let store = dir.path();
    ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    let t = json_of(pooltrack(store).args([
        "turnaround",
        "--round",
        ROUND,
        "--json",
        "--as-of",
        "2022-04-02 20:00:00",
    ]));
    // Counted results with received_at: QC-POOL-03 (collected 08:02, received 10:00,
    // reported 14:05) and QC-POOL-04 (08:03, 10:00, 14:05); P1's are void and
    // QC-SINGLE-01 gave no received_at.
    assert_eq!(t["transport"]["tubes"], 2, "{t}");
    assert_eq!(t["transport"]["median_minutes"], 117.0);
    assert_eq!(t["transport"]["p99_minutes"], 118.0);
    assert_eq!(t["in_lab"]["median_minutes"], 245.0);
    assert_eq!(t["by_lab"][0]["in_lab"]["tubes"], 2);
    let text = stdout_of(pooltrack(store).args([
        "turnaround",
        "--round",
        ROUND,
        "--as-of",
        "2022-04-02 20:00:00",
    ]));
    assert!(
        text.contains("transport median 117 min, in the lab median 245 min"),
        "{text}"
    );
}
