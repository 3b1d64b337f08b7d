//! Chain of custody (issue 20, item 2): box manifests and receipt scans stored in the
//! `custody/` table, and `pooltrack custody` finding what went wrong between the swab
//! and the test, on hand-made fixtures, on a generated city with its staged custody
//! incidents, and in the round report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    assert_chromium_ok, browser, chromium, json_of, pooltrack, stdout_of, testdata,
};
use crate::crash::{bin, commits, copy_dir, stray_files, temporary_commits};
use crate::rules::{csv_records, ingest_collections, ingest_results, rejects_of, run, stderr_text};

const ROUND: &str = "R1";

fn ingest(store: &Path, what: &str, file: &Path, round: &str) -> Value {
    json_of(
        pooltrack(store)
            .args(["ingest", what, "--round", round, "--json"])
            .arg(file),
    )
}

/// The fixture round: collections with a box column, results, the box manifest and
/// the receipts of `receipts`.
fn fixture_store(dir: &Path, receipts: &[&str]) -> PathBuf {
    let store = dir.join("store");
    ingest_collections(&store, ROUND, &[testdata("custody_collections.csv")]);
    ingest_results(&store, &[testdata("custody_results.csv")]);
    ingest(&store, "boxes", &testdata("custody_boxes.csv"), ROUND);
    for r in receipts {
        ingest(&store, "receipts", &testdata(r), ROUND);
    }
    store
}

fn custody_json(store: &Path, extra: &[&str]) -> Value {
    json_of(
        pooltrack(store)
            .args(["custody", "--round", ROUND, "--json"])
            .args(extra),
    )
}

/// (kind, box, tube) of every finding.
fn findings(c: &Value) -> BTreeSet<(String, String, String)> {
    c["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().expect("text").to_owned();
            (s("kind"), s("box"), s("tube"))
        })
        .collect()
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    items
        .iter()
        .map(|(k, b, t)| ((*k).to_owned(), (*b).to_owned(), (*t).to_owned()))
        .collect()
}

fn finding<'a>(c: &'a Value, kind: &str, key: &str) -> &'a Value {
    c["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == kind && (f["tube"] == key || f["box"] == key))
        .unwrap_or_else(|| panic!("no {kind} finding for {key}: {c}"))
}

/// The README's worked example, with the specimen limit set to 24 h in the store's
/// pooltrack.toml: every figure checkable by hand from the fixtures.
#[test]
fn the_worked_example_matches_its_hand_counts() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = fixture_store(dir.path(), &["custody_receipts.csv"]);
    fs::write(
        store.join("pooltrack.toml"),
        "[custody]\nspecimen_limit_hours = 24\n",
    )
    .expect("config");
    let c = custody_json(&store, &[]);
    // As of the last event: PL0002's report, 2022-04-03 10:00.
    assert_eq!(c["as_of"], "2022-04-03 10:00:00");
    assert_eq!(c["limits"]["specimen_limit_hours"], 24.0);
    assert_eq!(
        findings(&c),
        set(&[
            ("box_not_received", "BX02", ""),
            ("not_received", "BX02", "PL0003"),
            ("unknown_box", "BX09", ""),
            ("unknown_tube", "BX03", "SG0099"),
            ("received_again", "BX01", ""),
            ("past_limit", "BX01", "PL0002"),
        ])
    );
    // BX02 sealed 2022-04-02 09:00, 25 h before; PL0003 swabbed 08:20, 25 h 40 min.
    assert_eq!(finding(&c, "box_not_received", "BX02")["hours"], 25.0);
    assert_eq!(finding(&c, "not_received", "PL0003")["hours"], 25.67);
    // PL0002 swabbed 08:10, reported the next day at 10:00: 25 h 50 min.
    let late = finding(&c, "past_limit", "PL0002");
    assert_eq!(late["hours"], 25.83);
    assert_eq!(late["lab"], "L1");
    assert_eq!(late["persons"], 1);
    assert_eq!(c["counts"]["resample_persons"], 1);
    assert_eq!(
        late["detail"],
        "tested 25.83 h after the swab, past the 24 h specimen limit: no result of the tube counts: resample its 1 person(s)"
    );
    // The statuses read it the same way: P03, alone in PL0002, needs a resample.
    assert_eq!(
        crate::rules::person_status(&store, ROUND, "P03"),
        "resample"
    );
    // The repeat scan names the first.
    let again = finding(&c, "received_again", "BX01");
    assert_eq!(again["received_at"], "2022-04-02 10:45:00");
    assert!(
        again["detail"]
            .as_str()
            .is_some_and(|d| d.contains("10:30:00") && d.contains("custody_receipts.csv:2")),
        "{again}"
    );
    // Transport: BX01 09:00 → 10:30 and BX03 09:30 → 11:00, 90 minutes each.
    assert_eq!(c["transport"]["boxes"], 2);
    assert_eq!(c["transport"]["median_minutes"], 90.0);
    let trips: BTreeMap<String, Value> = c["box_trips"]
        .as_array()
        .expect("box_trips")
        .iter()
        .map(|b| (b["box"].as_str().expect("box").to_owned(), b.clone()))
        .collect();
    assert_eq!(trips["BX01"]["transport_minutes"], 90.0);
    assert_eq!(trips["BX02"]["received_at"], "");
    assert_eq!(trips["BX02"]["not_received"], 1);
    assert_eq!(trips["BX03"]["unknown_tubes"], 1);
    assert_eq!(
        (&c["tubes"], &c["boxed_tubes"], &c["received_tubes"]),
        (&Value::from(5), &Value::from(4), &Value::from(4))
    );

    // The same on the screen, and as lists.
    let text = stdout_of(pooltrack(&store).args(["custody", "--round", ROUND]));
    for want in [
        "box_not_received: 1",
        "box BX02",
        "past_limit: 1",
        "median 90 min",
        "persons to resample (results past the specimen limit): 1",
    ] {
        assert!(text.contains(want), "{want} in:\n{text}");
    }
    let out = dir.path().join("custody.csv");
    stdout_of(
        pooltrack(&store)
            .args(["custody", "--round", ROUND, "--out"])
            .arg(&out),
    );
    let rows = csv_records(&fs::read_to_string(&out).expect("csv"));
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0]["kind"], "box_not_received");
    let boxes = stdout_of(
        pooltrack(&store).args(["custody", "--round", ROUND, "--boxes", "--format", "csv"]),
    );
    let boxes = csv_records(&boxes);
    assert_eq!(
        boxes.iter().map(|b| b["box"].as_str()).collect::<Vec<_>>(),
        ["BX01", "BX02", "BX03"]
    );
    let pq = dir.path().join("boxes.parquet");
    stdout_of(
        pooltrack(&store)
            .args(["custody", "--round", ROUND, "--boxes", "--out"])
            .arg(&pq),
    );
    assert_eq!(&fs::read(&pq).expect("parquet")[..4], b"PAR1");
    // The command line beats the file, as a question: the statuses keep the store's
    // limit.
    let c48 = custody_json(&store, &["--specimen-limit-hours", "48"]);
    assert_eq!(c48["counts"]["past_limit"], 0, "{c48}");
    assert_eq!(
        crate::rules::person_status(&store, ROUND, "P03"),
        "resample"
    );
}

/// `--as-of` counts only what had happened: a tube scanned twice, a box scanned tube
/// by tube with one tube missing, and nothing yet lost.
#[test]
fn as_of_counts_what_had_happened_and_a_box_scanned_tube_by_tube_shows_its_missing_tube() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = fixture_store(
        dir.path(),
        &["custody_receipts.csv", "custody_tube_twice_receipts.csv"],
    );
    let c = custody_json(&store, &["--as-of", "2022-04-02 20:00"]);
    assert_eq!(
        findings(&c),
        set(&[
            // BX01's tubes were scanned one by one (PL0001); PL0002 has no scan and, by
            // 20:00, no result.
            ("missing_from_box", "BX01", "PL0002"),
            ("unknown_box", "BX09", ""),
            ("unknown_tube", "BX03", "SG0099"),
            ("received_again", "BX01", ""),
            ("received_again", "", "SG0004"),
        ])
    );
    assert_eq!(finding(&c, "received_again", "SG0004")["lab"], "L2");
    // A day later PL0002 has its result: nothing is missing, and BX02 is lost.
    let later = custody_json(&store, &["--as-of", "2022-04-03 10:00"]);
    let kinds: BTreeSet<String> = findings(&later).into_iter().map(|f| f.0).collect();
    assert!(!kinds.contains("missing_from_box"), "{later}");
    assert!(kinds.contains("box_not_received"), "{later}");
    let bad = run(pooltrack(&store).args(["custody", "--round", ROUND, "--as-of", "noon"]));
    assert_eq!(bad.status.code(), Some(2), "{}", stderr_text(&bad));
}

/// A collections file with a box column is a box manifest for `ingest boxes` too: a
/// blank box is "not stated", a pool's rows count once. (Here the store's collections
/// came from the file without its box column, so the manifest is new to it; after
/// `ingest collections` of the file itself it adds nothing, see
/// `tests/cli/boxes_in_collections.rs`.)
#[test]
fn a_collections_file_with_a_box_column_is_a_manifest_and_a_blank_box_is_not_stated() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    let boxed = testdata("custody_collections.csv");
    let plain = dir.path().join("plain.csv");
    fs::write(
        &plain,
        crate::boxes_in_collections::without_box_column(&boxed),
    )
    .expect("write");
    let c = ingest_collections(&store, ROUND, &[plain]);
    assert_eq!(
        (c["committed"].as_u64(), c["rejected"].as_u64()),
        (Some(7), Some(0))
    );
    assert!(c.get("boxed_tubes").is_none(), "{c}");
    let b = ingest(&store, "boxes", &boxed, ROUND);
    // 7 rows: PL0001's two rows are one fact, SG0005 states no box.
    assert_eq!(
        (
            &b["rows_read"],
            &b["committed"],
            &b["rejected"],
            &b["warnings"]
        ),
        (
            &Value::from(7),
            &Value::from(4),
            &Value::from(0),
            &Value::from(0)
        ),
        "{b}"
    );
    ingest_results(&store, &[testdata("custody_results.csv")]);
    let c = custody_json(&store, &["--as-of", "2022-04-03 10:00"]);
    // No sealed_at: a box is sealed at its last collection (BX02: 08:25), and without
    // receipts nothing of BX02 arrived.
    let lost = finding(&c, "box_not_received", "BX02");
    assert_eq!(lost["since"], "2022-04-02 08:25:00");
    assert_eq!(c["boxed_tubes"], 4);
    // Ingesting the same file again does nothing. The manifest of the same boxes
    // states their sealing times, which the store lacks: its lines are kept (and
    // SG0099 is new); nothing is refused.
    let again = ingest(&store, "boxes", &boxed, ROUND);
    assert!(again["batch"].is_null(), "{again}");
    let manifest = ingest(&store, "boxes", &testdata("custody_boxes.csv"), ROUND);
    assert_eq!(
        (&manifest["committed"], &manifest["rejected"]),
        (&Value::from(5), &Value::from(0)),
        "{manifest}"
    );
    let c = custody_json(&store, &["--as-of", "2022-04-03 10:00"]);
    assert_eq!(
        finding(&c, "box_not_received", "BX02")["since"],
        "2022-04-02 09:00:00"
    );
    assert_eq!(c["boxed_tubes"], 4);
}

#[test]
fn bad_custody_rows_are_refused_naming_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("custody_collections.csv")]);
    let file = testdata("custody_bad_boxes.csv");
    let b = ingest(&store, "boxes", &file, ROUND);
    assert_eq!(
        (&b["committed"], &b["rejected"]),
        (&Value::from(1), &Value::from(4)),
        "{b}"
    );
    let rows: Vec<(u64, String)> = rejects_of(&b)
        .into_iter()
        .map(|r| {
            assert_eq!(r.file, file.display().to_string());
            (r.line, r.column)
        })
        .collect();
    assert_eq!(
        rows,
        [
            (3, "box".to_owned()),
            (4, "tube".to_owned()),
            (5, "box".to_owned()),
            (6, "sealed_at".to_owned())
        ]
    );
    let reasons = rejects_of(&b);
    assert!(
        reasons[2].reason.contains("already in box BX01"),
        "{:?}",
        reasons[2]
    );

    let file = testdata("custody_bad_receipts.csv");
    let r = ingest(&store, "receipts", &file, ROUND);
    assert_eq!(
        (&r["committed"], &r["rejected"]),
        (&Value::from(1), &Value::from(3)),
        "{r}"
    );
    let rows: Vec<(u64, String)> = rejects_of(&r)
        .into_iter()
        .map(|r| (r.line, r.column))
        .collect();
    assert_eq!(
        rows,
        [
            (3, "box".to_owned()),
            (4, "received_at".to_owned()),
            (5, "box".to_owned())
        ]
    );
    // The terminal names them too.
    let store2 = dir.path().join("store2");
    ingest_collections(&store2, ROUND, &[testdata("custody_collections.csv")]);
    let text = stdout_of(
        pooltrack(&store2)
            .args(["ingest", "receipts", "--round", ROUND])
            .arg(&file),
    );
    assert!(text.contains("custody_bad_receipts.csv:4"), "{text}");
    assert!(text.contains("column received_at"), "{text}");

    // --strict commits nothing; a file without box and tube columns is refused whole;
    // an unknown round is a usage error.
    let before = commits(&store2);
    let strict = run(pooltrack(&store2)
        .args(["ingest", "boxes", "--strict", "--round", ROUND])
        .arg(testdata("custody_bad_boxes.csv")));
    assert_eq!(strict.status.code(), Some(1), "{}", stderr_text(&strict));
    assert_eq!(commits(&store2), before);
    let no_columns = run(pooltrack(&store2)
        .args(["ingest", "receipts", "--round", ROUND])
        .arg(testdata("population_example.csv")));
    assert_eq!(
        no_columns.status.code(),
        Some(1),
        "{}",
        stderr_text(&no_columns)
    );
    assert!(stderr_text(&no_columns).contains("neither a \"box\" nor a \"tube\""));
    let unknown = run(pooltrack(&store2)
        .args(["ingest", "boxes", "--round", "R9"])
        .arg(testdata("custody_boxes.csv")));
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr_text(&unknown));
    let nowhere = run(pooltrack(&dir.path().join("none"))
        .args(["ingest", "boxes", "--round", ROUND])
        .arg(testdata("custody_boxes.csv")));
    assert_eq!(nowhere.status.code(), Some(2), "{}", stderr_text(&nowhere));
    assert!(!dir.path().join("none").exists(), "no store is created");
}

/// Custody batches are batches like the others: logged, retracted, verified, and read
/// by another Delta engine.
#[test]
fn custody_batches_are_logged_retracted_verified_and_read_by_a_delta_engine() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = fixture_store(dir.path(), &["custody_receipts.csv"]);
    let log = stdout_of(pooltrack(&store).arg("log"));
    // The collections file's box column is the collections batch's box manifest.
    assert!(
        log.contains("collections round R1  7 committed + 4 box manifest row(s)"),
        "{log}"
    );
    assert!(log.contains("custody round R1  5 committed"), "{log}");
    assert!(
        log.contains("custody round R1  4 committed, 0 refused, 1 warning(s)"),
        "{log}"
    );
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["batches"], 4, "{v}");
    // 7 + 4 (collections and their boxes) + 4 + 5 + 4 rows.
    assert_eq!(v["rows"], 24, "{v}");
    if crate::delta::have_delta_reader("reading the custody table with delta-rs") {
        let seen = crate::delta::delta_reader(&store);
        assert_eq!(seen["custody"].rows, 13, "{seen:?}");
        assert_eq!(seen["custody"].batches, vec![1, 3, 4]);
    }
    // Retracting the receipts: BX01 and BX03 still arrived, through their tubes'
    // results; the repeat scan and the unknown box are gone with the scans.
    let out = run(pooltrack(&store).args(["retract", "--batch", "4", "--reason", "wrong lab"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let c = custody_json(&store, &["--as-of", "2022-04-03 10:00"]);
    assert_eq!(
        findings(&c),
        set(&[
            ("box_not_received", "BX02", ""),
            ("not_received", "BX02", "PL0003")
        ])
    );
    // BX01 and BX03 arrived, when is not known: no transport time.
    assert_eq!(c["received_boxes"], 2, "{c}");
    assert_eq!(c["transport"]["boxes"], 0, "{c}");
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    if crate::delta::have_delta_reader("reading a retracted custody batch with delta-rs") {
        let seen = crate::delta::delta_reader(&store);
        assert_eq!(seen["custody"].batches, vec![1, 3], "{seen:?}");
    }
    // The retracted file may be ingested again.
    let again = ingest(&store, "receipts", &testdata("custody_receipts.csv"), ROUND);
    assert_eq!(again["committed"], 4, "{again}");
}

/// A format-3 store made before the custody table (here: the format-2 fixture
/// migrated) reads as one without custody rows; its first custody ingest makes the
/// table and leaves the other tables' logs alone.
#[test]
fn a_store_from_before_custody_gets_its_table_from_the_first_custody_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("old");
    copy_dir(&testdata("format2_store"), &store);
    let m = run(pooltrack(&store).arg("migrate"));
    assert_eq!(m.status.code(), Some(0), "{}", stderr_text(&m));
    assert!(!store.join("custody").exists());
    let c = custody_json(&store, &[]);
    assert_eq!(c["custody_rows"], 0, "{c}");
    assert_eq!(c["boxed_tubes"], 0, "{c}");
    let before = commits(&store);
    let boxes = dir.path().join("boxes.csv");
    fs::write(&boxes, "box,tube,sealed_at\nBX01,T0001,\n").expect("write");
    let b = ingest(&store, "boxes", &boxes, ROUND);
    assert_eq!(b["committed"], 1, "{b}");
    let after = commits(&store);
    assert_eq!(after[..before.len()], before[..], "the old commits stay");
    let added: Vec<String> = after[before.len()..]
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        added,
        [
            "custody/_delta_log/00000000000000000000.json",
            "custody/_delta_log/00000000000000000001.json"
        ]
    );
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    // The SQL of the status rules reads only collections and results.
    let sql = stdout_of(pooltrack(&store).args(["sql", "status", "--round", ROUND]));
    assert!(!sql.contains("custody"), "{sql}");
}

fn generate(store: &Path, out: &Path, incidents: bool) {
    let mut cmd = pooltrack(store);
    cmd.args(["gen", "--persons", "20000", "--seed", "3", "--out"])
        .arg(out);
    if incidents {
        cmd.arg("--incidents");
    }
    stdout_of(&mut cmd);
}

fn local_ms(text: &str) -> i64 {
    pooltrack::time::parse(text.as_bytes(), pooltrack::time::Offset::CHINA).expect("a time")
}

fn csv_file(path: &Path) -> Vec<BTreeMap<String, String>> {
    csv_records(&fs::read_to_string(path).expect("readable"))
}

/// Every custody incident `gen --incidents` stages is found, and nothing else; the
/// round report shows them.
#[test]
fn the_staged_lost_box_and_tube_past_its_limit_are_found_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tmp");
    let city = dir.path().join("city");
    let store = dir.path().join("store");
    generate(&store, &city, true);
    let file = |n: &str| city.join(n);
    let incidents: Value =
        serde_json::from_str(&fs::read_to_string(file("incidents.json")).expect("json"))
            .expect("JSON");
    let staged = &incidents["custody"];
    let lost_box = staged["lost_box"]["box"].as_str().expect("box");
    let lost: BTreeSet<String> = staged["lost_box"]["tubes"]
        .as_array()
        .expect("tubes")
        .iter()
        .map(|t| t.as_str().expect("tube").to_owned())
        .collect();
    let past = staged["past_limit"]["tube"].as_str().expect("tube");
    assert!(!lost.is_empty() && !past.is_empty());

    // Independently of pooltrack, from the files: the tubes without a result are the
    // lost box's, and only the staged tube was reported past 48 h after its first swab.
    let collections = csv_file(&file("collections.csv"));
    let results = csv_file(&file("results.csv"));
    let mut first: HashMap<&str, i64> = HashMap::new();
    for c in &collections {
        let t = first.entry(c["tube"].as_str()).or_insert(i64::MAX);
        *t = (*t).min(local_ms(&c["collected_at"]));
    }
    let reported: BTreeSet<&str> = results.iter().map(|r| r["tube"].as_str()).collect();
    let unreported: BTreeSet<String> = first
        .keys()
        .filter(|t| !reported.contains(*t))
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(unreported, lost);
    let over: Vec<&str> = results
        .iter()
        .filter(|r| r["sample_type"] == "sample")
        .filter(|r| local_ms(&r["reported_at"]) - first[r["tube"].as_str()] > 48 * 3_600_000)
        .map(|r| r["tube"].as_str())
        .collect();
    assert_eq!(over, [past]);
    // Every box but the lost one was scanned once; transport from the files.
    let sealed: HashMap<String, i64> = csv_file(&file("boxes.csv"))
        .iter()
        .map(|b| (b["box"].clone(), local_ms(&b["sealed_at"])))
        .collect();
    let receipts = csv_file(&file("receipts.csv"));
    let mut trips: Vec<i64> = receipts
        .iter()
        .map(|r| local_ms(&r["received_at"]) - sealed[&r["box"]])
        .collect();
    trips.sort_unstable();
    assert_eq!(trips.len() + 1, sealed.len());
    assert!(receipts.iter().all(|r| r["box"] != lost_box));

    // Through the store.
    ingest_collections(&store, ROUND, &[file("collections.csv")]);
    ingest_collections(&store, ROUND, &[file("retest_collections.csv")]);
    ingest_results(&store, &[file("results.csv"), file("retest_results.csv")]);
    ingest(&store, "boxes", &file("boxes.csv"), ROUND);
    let r = ingest(&store, "receipts", &file("receipts.csv"), ROUND);
    assert_eq!(
        (&r["rejected"], &r["warnings"]),
        (&Value::from(0), &Value::from(0)),
        "{r}"
    );
    let c = custody_json(&store, &[]);
    let mut want: Vec<(&str, &str, &str)> = vec![("box_not_received", lost_box, "")];
    want.extend(lost.iter().map(|t| ("not_received", lost_box, t.as_str())));
    let past_box = staged["past_limit"]["box"].as_str().expect("box");
    want.push(("past_limit", past_box, past));
    assert_eq!(findings(&c), set(&want));
    let late = finding(&c, "past_limit", past);
    assert_eq!(late["persons"], staged["past_limit"]["persons"]);
    assert_eq!(late["hours"], staged["past_limit"]["hours"]);
    assert_eq!(
        finding(&c, "box_not_received", lost_box)["persons"],
        Value::from(lost.len())
    );
    let nearest = |p: usize| trips[(p * trips.len()).div_ceil(100) - 1] as f64 / 60_000.0;
    let t = &c["transport"];
    assert_eq!(t["boxes"], Value::from(trips.len()));
    assert!(
        (t["median_minutes"].as_f64().expect("median") - nearest(50)).abs() < 0.051,
        "{t}"
    );
    assert!(
        (t["max_minutes"].as_f64().expect("max") - nearest(100)).abs() < 0.051,
        "{t}"
    );
    assert_eq!(c["boxes"], staged["boxes"]);
    assert_eq!(c["received_boxes"], staged["received_boxes"]);

    // The round report carries the same, in its JSON and on its page.
    let out = dir.path().join("report");
    let o = run(pooltrack(&store)
        .args(["report", "--round", ROUND, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let report: Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).expect("json")).expect("JSON");
    assert_eq!(
        report["custody"]["counts"], c["counts"],
        "{}",
        report["custody"]
    );
    let page = fs::read_to_string(out.join("index.html")).expect("page");
    for shown in [lost_box, past, "Chain of custody"] {
        assert!(page.contains(shown), "the page shows {shown}");
    }
}

/// A generated round without incidents and without custody files: every tube has its
/// result within hours, so the chain shows nothing.
#[test]
fn a_clean_round_reports_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let city = dir.path().join("city");
    let store = dir.path().join("store");
    generate(&store, &city, false);
    assert!(!city.join("boxes.csv").exists() && !city.join("receipts.csv").exists());
    ingest_collections(
        &store,
        ROUND,
        &[
            city.join("collections.csv"),
            city.join("retest_collections.csv"),
        ],
    );
    ingest_results(
        &store,
        &[city.join("results.csv"), city.join("retest_results.csv")],
    );
    let c = custody_json(&store, &[]);
    assert_eq!(c["findings"], Value::Array(Vec::new()), "{c}");
    assert_eq!(c["tubes"], c["received_tubes"], "{c}");
    let text = stdout_of(pooltrack(&store).args(["custody", "--round", ROUND]));
    assert!(text.contains("nothing wrong in the chain"), "{text}");
    let csv = stdout_of(pooltrack(&store).args(["custody", "--round", ROUND, "--format", "csv"]));
    assert_eq!(
        csv,
        "kind,box,tube,site,lab,persons,since,received_at,reported_at,hours,source,detail\n"
    );
}

#[test]
fn custody_help_teaches_with_an_example() {
    let dir = tempfile::tempdir().expect("tmp");
    let help = stdout_of(pooltrack(dir.path()).args(["custody", "--help"]));
    for want in [
        "box_not_received",
        "past_limit",
        "Example",
        "pooltrack ingest receipts",
        "specimen_limit_hours",
        "--as-of",
    ] {
        assert!(help.contains(want), "--help explains {want}:\n{help}");
    }
    for sub in ["boxes", "receipts"] {
        let help = stdout_of(pooltrack(dir.path()).args(["ingest", sub, "--help"]));
        assert!(help.contains("Example"), "{help}");
    }
}

#[test]
fn the_custody_part_of_the_round_report_renders_in_headless_chromium() {
    let Some(browser) = browser("headless Chromium check of the round report's custody part")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let store = fixture_store(dir.path(), &["custody_receipts.csv"]);
    let out = dir.path().join("out");
    stdout_of(
        pooltrack(&store)
            .args([
                "report",
                "--round",
                ROUND,
                "--as-of",
                "2022-04-03 10:00",
                "--out",
            ])
            .arg(&out),
    );
    let url = format!("file://{}", out.join("index.html").display());
    let dom = chromium(&browser, &["--dump-dom".to_owned(), url]);
    assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom.find("<h2 id=\"custody\">").expect("the custody part");
    let part = &dom[start..];
    let table = |id: &str| -> &str {
        let s = part
            .find(&format!("<table id=\"{id}\""))
            .unwrap_or_else(|| panic!("table {id}"));
        let e = part[s..].find("</table>").expect("closed") + s;
        &part[s..e]
    };
    let findings = table("custody-findings");
    // Header row and one row per finding, as Chromium parsed them.
    assert_eq!(findings.matches("<tr>").count(), 1 + 5, "{findings}");
    for shown in ["BX02", "PL0003", "BX09", "SG0099"] {
        assert!(findings.contains(shown), "{shown} in {findings}");
    }
    assert!(table("custody-counts").contains("<td>box_not_received</td><td>1</td>"));
    assert!(part.contains("median 90 min"), "{part}");
}

/// An ingest of boxes killed at moments of its life, the first of the store (so the
/// custody table is made by it): the store holds the batch whole or not at all, and
/// the same ingest run again completes.
#[test]
fn a_boxes_ingest_killed_at_any_moment_leaves_the_batch_whole_or_absent() {
    const TUBES: usize = 150_000;
    let dir = tempfile::tempdir().expect("tmp");
    let base = dir.path().join("base");
    // Collections without a box column: the store has no custody table yet.
    ingest_collections(&base, ROUND, &[testdata("example_collections.csv")]);
    assert!(!base.join("custody").exists());
    let base_commits = commits(&base);
    let big = dir.path().join("boxes.csv");
    let mut text = String::from("box,tube,site,sealed_at\n");
    for i in 0..TUBES {
        text.push_str(&format!("BX{:06},T{i:07},S1,2022-04-02 09:00\n", i / 40));
    }
    fs::write(&big, text).expect("write");
    let rows = |store: &Path| -> u64 {
        custody_json(store, &[])["custody_rows"]
            .as_u64()
            .expect("rows")
    };
    let t = Instant::now();
    let probe = dir.path().join("probe");
    copy_dir(&base, &probe);
    ingest(&probe, "boxes", &big, ROUND);
    let life = t.elapsed();
    assert_eq!(rows(&probe), TUBES as u64);
    let (mut absent, mut whole) = (0, 0);
    for i in 0..12u32 {
        // The last one well after the end, even on a loaded machine.
        let at = life.mul_f64(if i == 11 { 3.0 } else { f64::from(i) / 10.0 });
        let store = dir.path().join(format!("kill{i}"));
        copy_dir(&base, &store);
        let mut child = Command::new(bin())
            .arg("--store")
            .arg(&store)
            .args(["ingest", "boxes", "--round", ROUND])
            .arg(&big)
            .env_remove("POOLTRACK_STORE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        std::thread::sleep(at.max(Duration::from_millis(1)));
        let _ = child.kill();
        let _ = child.wait();
        match rows(&store) {
            0 => {
                absent += 1;
                let now = commits(&store);
                assert_eq!(now[..base_commits.len()], base_commits[..], "kill {i}");
                // At most the custody table's first commit, which holds no batch.
                assert!(now.len() <= base_commits.len() + 1, "kill {i}: {now:?}");
            }
            n if n == TUBES as u64 => whole += 1,
            n => panic!("kill {i} at {at:?}: {n} custody rows"),
        }
        let v = json_of(pooltrack(&store).args(["verify", "--json"]));
        assert_eq!(
            v["damage"].as_array().map(Vec::len),
            Some(0),
            "kill {i}: {v}"
        );
        ingest(&store, "boxes", &big, ROUND);
        assert_eq!(rows(&store), TUBES as u64, "kill {i}");
        assert_eq!(stray_files(&store), Vec::<String>::new(), "kill {i}");
        assert_eq!(temporary_commits(&store), Vec::<PathBuf>::new(), "kill {i}");
        fs::remove_dir_all(&store).expect("cleanup");
    }
    assert!(absent >= 1 && whole >= 1, "absent {absent}, whole {whole}");
}

/// A scan naming a tube and its box receives both: the box's trip ends there, and the
/// box counts as scanned tube by tube.
#[test]
fn a_scan_naming_a_tube_and_its_box_receives_both() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = fixture_store(dir.path(), &[]);
    let scans = dir.path().join("scans.csv");
    fs::write(
        &scans,
        "box,tube,received_at,lab\nBX02,PL0003,2022-04-02 10:00,L1\nBX01,PL0001,2022-04-02 10:30,L1\n",
    )
    .expect("write");
    ingest(&store, "receipts", &scans, ROUND);
    let c = custody_json(&store, &["--as-of", "2022-04-02 20:00"]);
    let trips: BTreeMap<String, Value> = c["box_trips"]
        .as_array()
        .expect("box_trips")
        .iter()
        .map(|b| (b["box"].as_str().expect("box").to_owned(), b.clone()))
        .collect();
    // BX02 sealed 09:00, its tube scanned at 10:00.
    assert_eq!(trips["BX02"]["transport_minutes"], 60.0);
    assert_eq!(trips["BX02"]["lab"], "L1");
    // BX01 was opened tube by tube: PL0002, with no scan and no result by 20:00, is missing.
    assert_eq!(findings(&c), set(&[("missing_from_box", "BX01", "PL0002")]));
}
