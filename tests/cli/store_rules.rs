//! Cross-row and store rules (issue 2, "Rules" and "The store"): one round per barcode,
//! duplicate scans, overfull pools, conflicting tubes, results for unknown tubes,
//! re-ingesting, and how the store is found and named.

use assert_cmd::Command;

use crate::common::{pooltrack, stdout_of, testdata};
use crate::rules::{
    by_status, counts, ingest_collections, ingest_refused, ingest_results, person_report,
    person_status, rejects_of, round_status, run, stderr_text,
};

#[test]
fn a_barcode_serves_one_round_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r1 = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("reuse_round1_collections.csv")],
    );
    assert_eq!(r1["committed"], 2, "{r1}");

    // Non-strict: the reused rows are rejected, the new tube is committed, exit 0.
    let r2 = ingest_collections(
        dir.path(),
        "R2",
        &[testdata("reuse_round2_collections.csv")],
    );
    assert_eq!(r2["rows_read"], 3, "{r2}");
    assert_eq!(r2["committed"], 1, "{r2}");
    assert_eq!(r2["rejected"], 2, "{r2}");
    let rejects = rejects_of(&r2);
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    let mut lines: Vec<u64> = rejects.iter().map(|r| r.line).collect();
    lines.sort_unstable();
    assert_eq!(lines, [2, 3]);
    for r in &rejects {
        assert_eq!(r.severity, "error");
        assert_eq!(r.column, "tube");
        assert_eq!(r.tube, "REUSE-POOL-01");
        assert!(
            r.reason.contains("R1"),
            "reason names the other round: {r:?}"
        );
        assert!(r.file.ends_with("reuse_round2_collections.csv"), "{r:?}");
    }

    let s2 = round_status(dir.path(), "R2");
    assert_eq!(s2["persons"], 1, "{s2}");
    assert_eq!(s2["tubes"], 1, "{s2}");
    assert_eq!(person_status(dir.path(), "R2", "reuse-p5"), "pending");
    let missing =
        run(pooltrack(dir.path()).args(["status", "--round", "R2", "--person", "reuse-p3"]));
    assert!(!missing.status.success(), "reuse-p3 must not be in R2");
    // R1 is untouched.
    let s1 = round_status(dir.path(), "R1");
    assert_eq!(s1["persons"], 2, "{s1}");
    assert_eq!(
        person_report(dir.path(), "R1", "reuse-p1")["tubes"][0]["members"],
        2
    );
}

#[test]
fn a_barcode_reused_in_another_round_under_strict_commits_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(
        dir.path(),
        "R1",
        &[testdata("reuse_round1_collections.csv")],
    );
    let out = run(pooltrack(dir.path())
        .args(["ingest", "collections", "--strict", "--round", "R2"])
        .arg(testdata("reuse_round2_collections.csv")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let status = run(pooltrack(dir.path()).args(["status", "--round", "R2", "--json"]));
    assert_eq!(status.status.code(), Some(2), "R2 must not exist");
}

#[test]
fn duplicate_scan_within_one_file_is_one_membership_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("duplicate_scan_collections.csv")],
    );
    assert_eq!(r["rows_read"], 4, "{r}");
    assert_eq!(r["committed"], 3, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    assert_eq!(r["warnings"], 1, "{r}");
    let rejects = rejects_of(&r);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].severity, "warning");
    assert_eq!(rejects[0].line, 4);
    assert_eq!(rejects[0].person, "dup-p1");
    assert_eq!(rejects[0].tube, "DUP-POOL-01");

    let s = round_status(dir.path(), "R1");
    assert_eq!(s["persons"], 3, "{s}");
    assert_eq!(s["tubes"], 1, "{s}");
    assert_eq!(s["overfull_pools"], 0, "{s}");
    let p = person_report(dir.path(), "R1", "dup-p1");
    assert_eq!(p["tubes"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["tubes"][0]["members"], 3, "{p}");
}

#[test]
fn duplicate_scan_is_a_warning_even_under_strict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(dir.path())
        .args([
            "ingest",
            "collections",
            "--strict",
            "--json",
            "--round",
            "R1",
        ])
        .arg(testdata("duplicate_scan_collections.csv")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["committed"], 3, "{r}");
    assert_eq!(r["warnings"], 1, "{r}");
}

#[test]
fn duplicate_scan_across_batches_is_one_membership_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(
        dir.path(),
        "R1",
        &[testdata("duplicate_scan_collections.csv")],
    );
    let r = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("duplicate_scan_again_collections.csv")],
    );
    assert_eq!(r["committed"], 1, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    assert_eq!(r["warnings"], 1, "{r}");
    let rejects = rejects_of(&r);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].severity, "warning");
    assert_eq!(rejects[0].line, 2);
    assert_eq!(rejects[0].person, "dup-p2");

    let s = round_status(dir.path(), "R1");
    assert_eq!(s["persons"], 4, "{s}");
    assert_eq!(s["tubes"], 1, "{s}");
    let p = person_report(dir.path(), "R1", "dup-p2");
    assert_eq!(p["tubes"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["tubes"][0]["members"], 4, "{p}");
}

#[test]
fn overfull_pool_is_kept_and_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ingest_collections(dir.path(), "R1", &[testdata("overfull_collections.csv")]);
    assert_eq!(c["committed"], 8, "{c}");
    assert_eq!(c["rejected"], 0, "{c}");
    assert_eq!(c["overfull_tubes"], 1, "{c}");
    let rejects = rejects_of(&c);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].severity, "warning");
    assert_eq!(rejects[0].tube, "OVF-POOL-05");
    assert!(rejects[0].reason.contains('7'), "{:?}", rejects[0]);

    let r = ingest_results(dir.path(), &[testdata("overfull_results.csv")]);
    assert_eq!(r["committed"], 2, "{r}");
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["overfull_pools"], 1, "{s}");
    assert_eq!(s["persons"], 8, "{s}");
    assert_eq!(by_status(&s), counts(&[("recall", 7), ("negative", 1)]));
    for i in 1..=7 {
        assert_eq!(
            person_status(dir.path(), "R1", &format!("ovf-p{i}")),
            "recall"
        );
    }
    assert_eq!(
        person_report(dir.path(), "R1", "ovf-p7")["tubes"][0]["members"],
        7
    );
}

#[test]
fn conflicting_mode_or_capacity_is_kept_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Within one file: the first row makes CONF-POOL-10 a pool of capacity 10; rows
    // saying otherwise are memberships all the same.
    let c = ingest_collections(dir.path(), "R1", &[testdata("conflict_collections.csv")]);
    assert_eq!(c["committed"], 4, "{c}");
    assert_eq!(c["rejected"], 0, "{c}");
    let rejects = rejects_of(&c);
    let lines: Vec<u64> = rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4], "{rejects:?}");
    for r in &rejects {
        assert_eq!(r.severity, "warning");
        assert_eq!(r.tube, "CONF-POOL-10");
        assert!(r.reason.contains("capacity 10"), "{r:?}");
        assert!(r.reason.contains("kept"), "{r:?}");
    }
    assert!(rejects[0].reason.contains("single"), "{:?}", rejects[0]);
    assert!(rejects[1].reason.contains('5'), "{:?}", rejects[1]);

    // Across batches: the tube keeps what it was first stated to be; a blank capacity
    // states nothing, so only the single and the 20 disagree.
    let later = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("conflict_later_collections.csv")],
    );
    assert_eq!(later["committed"], 3, "{later}");
    assert_eq!(later["rejected"], 0, "{later}");
    let rejects = rejects_of(&later);
    let lines: Vec<u64> = rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3], "{rejects:?}");
    assert!(rejects.iter().all(|r| r.reason.contains("capacity 10")));

    let s = round_status(dir.path(), "R1");
    assert_eq!(s["persons"], 7, "{s}");
    assert_eq!(s["tubes"], 1, "{s}");
    assert_eq!(s["single_tubes"], 0, "{s}");
    assert_eq!(
        person_report(dir.path(), "R1", "conf-p7")["tubes"][0]["members"],
        7
    );
}

#[test]
fn result_for_an_unknown_tube_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("conflict_collections.csv")]);
    let r = ingest_results(dir.path(), &[testdata("unknown_tube_results.csv")]);
    assert_eq!(r["committed"], 1, "{r}");
    assert_eq!(r["rejected"], 1, "{r}");
    let rejects = rejects_of(&r);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].line, 3);
    assert_eq!(rejects[0].severity, "error");
    assert_eq!(rejects[0].tube, "NEVER-COLLECTED-77");
    assert!(
        rejects[0].reason.contains("NEVER-COLLECTED-77"),
        "{:?}",
        rejects[0]
    );
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["tubes_with_result"], 1, "{s}");
    assert_eq!(s["tubes"], 1, "{s}");
}

#[test]
fn results_before_any_collection_are_all_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Results need a store (into none they are refused, exit 2: see clerk.rs); this
    // one holds other tubes. Every row refused: exit 4.
    ingest_collections(dir.path(), "R0", &[testdata("bad_rows_collections.csv")]);
    let r = ingest_refused(
        pooltrack(dir.path())
            .args(["ingest", "results"])
            .arg(testdata("example_results.csv")),
    );
    assert_eq!(r["committed"], 0, "{r}");
    assert_eq!(r["rejected"], 4, "{r}");
    // The same file is still new once its tubes are collected: nothing was committed.
    ingest_collections(
        dir.path(),
        "2022-04-02",
        &[testdata("example_collections.csv")],
    );
    let again = ingest_results(dir.path(), &[testdata("example_results.csv")]);
    assert_eq!(again["committed"], 4, "{again}");
    assert_eq!(again["rejected"], 0, "{again}");
}

#[test]
fn reingesting_the_same_file_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    assert_eq!(first["batch"], 1, "{first}");
    let before = round_status(dir.path(), "R1");

    let again = ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    assert!(again["batch"].is_null(), "{again}");
    assert_eq!(again["committed"], 0, "{again}");
    assert_eq!(again["files"][0]["already_in_batch"], 1, "{again}");

    // Under another name: still the same content.
    let copy = dir.path().join("renamed-copy.csv");
    std::fs::copy(testdata("example_collections.csv"), &copy).expect("copy");
    let renamed = ingest_collections(dir.path(), "R1", std::slice::from_ref(&copy));
    assert!(renamed["batch"].is_null(), "{renamed}");
    assert_eq!(renamed["files"][0]["already_in_batch"], 1, "{renamed}");

    // Same size, other content (a digit of a time changed): read, not a repeat (its
    // tubes are refused as already used). Listed twice in one ingest: read once.
    let text = std::fs::read_to_string(&copy).expect("read");
    let other = dir.path().join("same-size.csv");
    std::fs::write(&other, text.replacen("07:00:04", "07:00:05", 1)).expect("write");
    let fresh = ingest_refused(
        pooltrack(dir.path())
            .args(["ingest", "collections", "--round", "R2"])
            .args([&other, &other]),
    );
    assert!(fresh["files"][0]["already_in_batch"].is_null(), "{fresh}");
    assert_eq!(fresh["files"][0]["rows"], first["rows_read"], "{fresh}");
    assert_eq!(fresh["files"][1]["rows"], 0, "{fresh}");
    assert_eq!(fresh["rows_read"], first["rows_read"], "{fresh}");

    // The text summary says so.
    let text = stdout_of(
        pooltrack(dir.path())
            .args(["ingest", "collections", "--round", "R1"])
            .arg(&copy),
    );
    assert!(text.contains("already ingested"), "{text}");

    assert_eq!(round_status(dir.path(), "R1"), before);

    // Results too.
    let r = ingest_results(dir.path(), &[testdata("example_results.csv")]);
    assert_eq!(r["committed"], 4, "{r}");
    let after_results = round_status(dir.path(), "R1");
    let r = ingest_results(dir.path(), &[testdata("example_results.csv")]);
    assert!(r["batch"].is_null(), "{r}");
    assert_eq!(round_status(dir.path(), "R1"), after_results);
    assert_eq!(
        person_report(dir.path(), "R1", "110101199001011234")["tubes"][0]["results"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn store_option_anywhere_on_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store-after");
    // After the subcommand and its file.
    Command::cargo_bin("pooltrack")
        .expect("binary")
        .env_remove("POOLTRACK_STORE")
        .current_dir(dir.path())
        .args(["ingest", "collections"])
        .arg(testdata("example_collections.csv"))
        .args(["--round", "R1", "--store"])
        .arg(&store)
        .assert()
        .success();
    // Between the subcommand and its options.
    let text = stdout_of(
        Command::cargo_bin("pooltrack")
            .expect("binary")
            .env_remove("POOLTRACK_STORE")
            .current_dir(dir.path())
            .args(["status", "--store"])
            .arg(&store)
            .args(["--round", "R1", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["persons"], 13);
    // Before the subcommand.
    let text = stdout_of(
        Command::cargo_bin("pooltrack")
            .expect("binary")
            .env_remove("POOLTRACK_STORE")
            .current_dir(dir.path())
            .arg("--store")
            .arg(&store)
            .args(["worklist", "recall", "--round", "R1"]),
    );
    assert_eq!(text.lines().count(), 1, "no results yet: header only");
    // Nothing went to the default store in the working directory.
    assert!(!dir.path().join("pooltrack-store").exists());
}

#[test]
fn store_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("env-store");
    let cmd = || {
        let mut c = Command::cargo_bin("pooltrack").expect("binary");
        c.env("POOLTRACK_STORE", &store).current_dir(dir.path());
        c
    };
    cmd()
        .args(["ingest", "collections", "--round", "R1"])
        .arg(testdata("example_collections.csv"))
        .assert()
        .success();
    assert!(
        crate::crash::store_exists(&store),
        "store created at POOLTRACK_STORE"
    );
    assert!(!dir.path().join("pooltrack-store").exists());
    let text = stdout_of(cmd().args(["status", "--round", "R1", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["persons"], 13);
}

#[test]
fn unknown_round_is_a_usage_error_naming_the_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    for args in [
        vec!["status", "--round", "NO-SUCH-ROUND"],
        vec!["status", "--round", "NO-SUCH-ROUND", "--json"],
        vec!["worklist", "recall", "--round", "NO-SUCH-ROUND"],
        vec!["worklist", "positives", "--round", "NO-SUCH-ROUND"],
    ] {
        let out = run(pooltrack(dir.path()).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr_text(&out);
        assert!(err.contains("NO-SUCH-ROUND"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(pooltrack(dir.path())
        .args(["export", "status", "--round", "NO-SUCH-ROUND", "--out"])
        .arg(dir.path().join("x.csv")));
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("x.csv").exists());
}

#[test]
fn a_store_that_does_not_exist_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-store-here");
    for args in [
        vec!["status", "--round", "R1"],
        vec!["worklist", "recall", "--round", "R1"],
        vec!["config"],
    ] {
        let out = run(pooltrack(&missing).args(&args));
        assert!(!out.status.success(), "{args:?}");
        assert_ne!(out.status.code(), None);
        let err = stderr_text(&out);
        assert!(err.contains("no-store-here"), "{args:?}: {err}");
        assert!(err.contains("store"), "{args:?}: {err}");
        // Reading does not create a store.
        assert!(!missing.exists(), "{args:?} created the store");
    }
}

#[test]
fn a_pool_overfilled_by_a_later_batch_is_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("overfull_part1_collections.csv")],
    );
    assert_eq!(first["overfull_tubes"], 0, "{first}");
    let second = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("overfull_part2_collections.csv")],
    );
    assert_eq!(second["committed"], 2, "{second}");
    assert_eq!(second["overfull_tubes"], 1, "{second}");
    let rejects = rejects_of(&second);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].severity, "warning");
    assert_eq!(rejects[0].tube, "OVF-POOL-03");
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["overfull_pools"], 1, "{s}");
    assert_eq!(s["persons"], 4, "{s}");
    assert_eq!(
        person_report(dir.path(), "R1", "ovf-part-a")["tubes"][0]["members"],
        4
    );
}

#[test]
fn a_second_writer_gets_store_is_busy() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("lock"))
        .expect("the store has a lock file");
    lock.try_lock().expect("this test holds the writer lock");

    let out = run(pooltrack(dir.path())
        .args(["ingest", "results"])
        .arg(testdata("example_results.csv")));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("busy"), "{err}");
    // Readers are not blocked.
    assert_eq!(round_status(dir.path(), "R1")["tubes_with_result"], 0);

    lock.unlock().expect("unlock");
    let r = ingest_results(dir.path(), &[testdata("example_results.csv")]);
    assert_eq!(r["committed"], 4, "{r}");
}

#[test]
fn committed_rows_are_plain_parquet() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    ingest_results(dir.path(), &[testdata("example_results.csv")]);
    for (kind, rows, column) in [("collections", 13, "person"), ("results", 4, "tube")] {
        let folder = dir.path().join(kind).join("R1");
        let files: Vec<_> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let file = std::fs::File::open(&files[0]).expect("open");
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("plain Parquet");
        assert!(
            builder.schema().field_with_name(column).is_ok(),
            "{kind} has a {column} column: {:?}",
            builder.schema()
        );
        let n: usize = builder
            .build()
            .expect("reader")
            .map(|b| b.expect("batch").num_rows())
            .sum();
        assert_eq!(n, rows, "{kind}");
    }
}

#[test]
fn a_second_person_in_a_single_tube_is_kept_and_the_tube_read_as_a_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("single_tube_two_persons_collections.csv")],
    );
    assert_eq!(r["committed"], 3, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    // Two warnings: bob's row, and the tube over its capacity of 1.
    let rejects = rejects_of(&r);
    let bob: Vec<_> = rejects.iter().filter(|x| x.person == "bob").collect();
    assert_eq!(bob.len(), 1, "{rejects:?}");
    assert_eq!(bob[0].line, 3);
    assert!(bob[0].reason.contains("read as a pool"), "{rejects:?}");
    assert!(
        rejects.iter().all(|x| x.severity == "warning"),
        "{rejects:?}"
    );
    assert_eq!(r["overfull_tubes"], 1, "{r}");
    // Also across batches: the tube already holds carol.
    let later = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("single_tube_later_person_collections.csv")],
    );
    assert_eq!(later["committed"], 1, "{later}");
    assert_eq!(later["rejected"], 0, "{later}");
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["persons"], 4, "{s}");
    // Both tubes now hold two persons: pools, whatever their rows call them.
    assert_eq!(
        (s["pool_tubes"].as_u64(), s["single_tubes"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
}

/// A re-scan of a membership an earlier batch recorded is not stored, so its capacity
/// must not become the tube's: the tube's capacity is the first one a stored row states
/// (found by the operation-sequence model test).
#[test]
fn a_rescan_of_an_earlier_membership_states_nothing_about_the_tube() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(
        dir.path(),
        "R1",
        &[testdata("rescan_part1_collections.csv")],
    );
    let second = ingest_collections(
        dir.path(),
        "R1",
        &[testdata("rescan_part2_collections.csv")],
    );
    assert_eq!(second["committed"], 5, "{second}");
    // Six persons in a pool of capacity 5 (the re-scan's 20 is not the tube's).
    assert_eq!(second["overfull_tubes"], 1, "{second}");
    let rejects = rejects_of(&second);
    // The re-scan is flagged as one, not as a row kept against the tube's capacity;
    // the rows stating 5 agree with the tube; the overfull warning names capacity 5.
    let flagged: Vec<(u64, &str)> = rejects
        .iter()
        .map(|r| (r.line, r.column.as_str()))
        .collect();
    assert_eq!(flagged.len(), 2, "{rejects:?}");
    assert!(flagged.contains(&(2, "person")), "{rejects:?}");
    let full = rejects
        .iter()
        .find(|r| r.column == "capacity")
        .expect("the overfull tube is flagged");
    assert!(full.reason.contains("capacity of 5"), "{rejects:?}");
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["overfull_pools"], 1, "{s}");
    assert_eq!(
        person_report(dir.path(), "R1", "rescan-a")["tubes"][0]["capacity"],
        5
    );
}
