//! Status rules and worklists (issue 2, "Rules"): each person's status by the five rules
//! in order of precedence, how results are read (words, Ct values, cut-off), how a later
//! result replaces an earlier one, the worklists and the status export, and time zones.
//!
//! The helpers at the top are shared with `bad_input.rs` and `store_rules.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// Runs a command, asserts it did not panic, and returns its output (any exit code).
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("pooltrack runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "pooltrack panicked:\n{stderr}"
    );
    out
}

/// Standard error of a finished command, as text.
pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ingest collections FILES --round ROUND --json`, asserting success (exit 0).
pub fn ingest_collections(store: &Path, round: &str, files: &[PathBuf]) -> Value {
    let mut cmd = pooltrack(store);
    cmd.args(["ingest", "collections", "--round", round, "--json"])
        .args(files);
    json_of(&mut cmd)
}

/// `ingest results FILES --json`, asserting success (exit 0).
pub fn ingest_results(store: &Path, files: &[PathBuf]) -> Value {
    let mut cmd = pooltrack(store);
    cmd.args(["ingest", "results", "--json"]).args(files);
    json_of(&mut cmd)
}

/// Runs an ingest command (`--json` is added) that refuses every new row: asserts
/// exit 4, nothing committed, and returns its report.
pub fn ingest_refused(cmd: &mut Command) -> Value {
    let out = run(cmd.arg("--json"));
    assert_eq!(out.status.code(), Some(4), "{}", stderr_text(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("ingest --json");
    assert!(r["batch"].is_null(), "{r}");
    r
}

/// `status --round ROUND --json`.
pub fn round_status(store: &Path, round: &str) -> Value {
    json_of(pooltrack(store).args(["status", "--round", round, "--json"]))
}

/// `status --round ROUND --person ID --json`.
pub fn person_report(store: &Path, round: &str, person: &str) -> Value {
    json_of(pooltrack(store).args(["status", "--round", round, "--person", person, "--json"]))
}

/// A person's status word.
pub fn person_status(store: &Path, round: &str, person: &str) -> String {
    let v = person_report(store, round, person);
    v["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status in {v}"))
        .to_owned()
}

/// The round's persons by status, from `status --json` (`by_status` is a list of
/// `[status, count]` pairs).
pub fn by_status(status: &Value) -> BTreeMap<String, u64> {
    status["by_status"]
        .as_array()
        .unwrap_or_else(|| panic!("no by_status in {status}"))
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("status name").to_owned(),
                pair[1].as_u64().expect("count"),
            )
        })
        .collect()
}

/// The expected `by_status` map: every status present, zero unless listed.
pub fn counts(nonzero: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = [
        "positive",
        "recall",
        "retest_pending",
        "resample",
        "pending",
        "negative",
    ]
    .iter()
    .map(|s| ((*s).to_owned(), 0))
    .collect();
    for (s, n) in nonzero {
        m.insert((*s).to_owned(), *n);
    }
    m
}

/// Tubes by effective result, from `status --json`.
pub fn tubes_by_result(status: &Value) -> BTreeMap<String, u64> {
    status["tubes_by_result"]
        .as_array()
        .unwrap_or_else(|| panic!("no tubes_by_result in {status}"))
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().expect("outcome").to_owned(),
                pair[1].as_u64().expect("count"),
            )
        })
        .collect()
}

/// One row of a rejects CSV.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RejectRow {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub severity: String,
    pub reason: String,
    pub tube: String,
    pub person: String,
    pub value: String,
}

/// The header every rejects CSV starts with.
pub const REJECTS_HEADER: &str = "file,line,column,severity,reason,tube,person,value";

/// Reads a rejects CSV, asserting its header.
pub fn read_rejects(path: &Path) -> Vec<RejectRow> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("rejects file {}: {e}", path.display()));
    assert_eq!(
        text.lines().next(),
        Some(REJECTS_HEADER),
        "rejects header of {}",
        path.display()
    );
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<RejectRow>, _>>()
        .expect("rejects CSV parses")
}

/// The rejects CSV an ingest's `--json` summary names.
pub fn rejects_of(report: &Value) -> Vec<RejectRow> {
    let p = report["rejects_file"]
        .as_str()
        .unwrap_or_else(|| panic!("no rejects_file in {report}"));
    read_rejects(Path::new(p))
}

/// Every person's status in `round`, from `export status` on standard output.
pub fn exported_statuses(store: &Path, round: &str) -> BTreeMap<String, String> {
    let out = stdout_of(pooltrack(store).args(["export", "status", "--round", round]));
    csv_records(&out)
        .into_iter()
        .map(|r| (r["person"].clone(), r["status"].clone()))
        .collect()
}

/// Parses CSV text with a header into maps of column → value.
pub fn csv_records(text: &str) -> Vec<BTreeMap<String, String>> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<BTreeMap<String, String>>, _>>()
        .expect("CSV parses")
}

/// A worklist as JSON (`worklist LIST --round R --format json`).
fn worklist_json(store: &Path, list: &str, round: &str) -> Vec<Value> {
    let v =
        json_of(pooltrack(store).args(["worklist", list, "--round", round, "--format", "json"]));
    v.as_array()
        .unwrap_or_else(|| panic!("worklist is not an array: {v}"))
        .clone()
}

fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {row}"))
}

fn persons_of(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| field(r, "person")).collect()
}

// ---------------------------------------------------------------------------------------
// Status precedence
// ---------------------------------------------------------------------------------------

/// One store with the precedence round ingested: collections then results.
fn precedence_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ingest_collections(dir.path(), "R1", &[testdata("precedence_collections.csv")]);
    assert_eq!(c["committed"], 19, "{c}");
    assert_eq!(c["rejected"], 0, "{c}");
    let r = ingest_results(dir.path(), &[testdata("precedence_results.csv")]);
    assert_eq!(r["committed"], 11, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    dir
}

#[test]
fn precedence_each_person_lands_in_the_right_status() {
    let dir = precedence_store();
    let expected = [
        // 1. a single tube positive
        ("single-positive", "positive"),
        // 1 beats 2: a single positive and a positive pool
        ("single-pos-and-pool-pos", "positive"),
        // 2. a positive pool, no retest
        ("recall-plain", "recall"),
        // 2. an inconclusive pool recalls too
        ("recall-inconclusive", "recall"),
        // 2. a negative single collected BEFORE the positive pool does not clear it
        ("single-before-pool", "recall"),
        // 2. a later single retest without result
        ("retest-waiting", "retest_pending"),
        // 2. cleared by a later negative single
        ("cleared-by-retest", "negative"),
        // 3. an invalid tube
        ("invalid-pool", "resample"),
        // 3. a single tube inconclusive
        ("single-inconclusive", "resample"),
        // 3. cleared by a later negative tube
        ("invalid-then-negative", "negative"),
        // 3 beats 4: an invalid single and a pool without result
        ("resample-and-pending", "resample"),
        // 4. a tube without result
        ("no-result-yet", "pending"),
        // 5.
        ("all-negative", "negative"),
    ];
    for (person, status) in expected {
        assert_eq!(
            person_status(dir.path(), "R1", person),
            status,
            "status of {person}"
        );
    }
}

#[test]
fn precedence_round_counts() {
    let dir = precedence_store();
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["round"], "R1");
    assert_eq!(s["persons"], 13, "{s}");
    assert_eq!(s["tubes"], 13, "{s}");
    assert_eq!(s["pool_tubes"], 5, "{s}");
    assert_eq!(s["single_tubes"], 8, "{s}");
    assert_eq!(s["tubes_with_result"], 11, "{s}");
    assert_eq!(
        by_status(&s),
        counts(&[
            ("positive", 2),
            ("recall", 3),
            ("retest_pending", 1),
            ("resample", 3),
            ("pending", 1),
            ("negative", 3),
        ])
    );
    let results = tubes_by_result(&s);
    assert_eq!(results["positive"], 3);
    assert_eq!(results["inconclusive"], 2);
    assert_eq!(results["invalid"], 2);
    assert_eq!(results["negative"], 4);
}

#[test]
fn person_report_shows_the_deciding_tube_and_every_tube() {
    let dir = precedence_store();
    // Positive by the single tube, although the pool is positive too.
    let p = person_report(dir.path(), "R1", "single-pos-and-pool-pos");
    assert_eq!(p["status"], "positive");
    assert_eq!(p["decided_by"]["tube"], "PRE-SG-COLL");
    assert_eq!(p["decided_by"]["mode"], "single");
    let tubes: Vec<&str> = p["tubes"]
        .as_array()
        .expect("tubes")
        .iter()
        .map(|t| t["tube"].as_str().expect("tube"))
        .collect();
    // By collection time: the pool at 08:00:40, the retest at 15:10.
    assert_eq!(tubes, ["PRE-POOL-POS", "PRE-SG-COLL"]);
    assert_eq!(p["tubes"][0]["members"], 5);
    assert_eq!(p["tubes"][0]["result"], "positive");
    assert_eq!(p["tubes"][0]["results"][0]["lab"], "LAB-A");
    // The evidence points at the source line of the collection row.
    assert_eq!(p["tubes"][0]["line"], 6);

    // A single tube collected before the pool: the pool decides.
    let p = person_report(dir.path(), "R1", "single-before-pool");
    assert_eq!(p["status"], "recall");
    assert_eq!(p["decided_by"]["tube"], "PRE-POOL-POS");
    assert_eq!(p["decided_by"]["site"], "S-01");

    // Retest pending: still decided by the positive pool.
    let p = person_report(dir.path(), "R1", "retest-waiting");
    assert_eq!(p["status"], "retest_pending");
    assert_eq!(p["decided_by"]["tube"], "PRE-POOL-POS");
    assert_eq!(p["tubes"][1]["tube"], "PRE-SG-RETEST");
    assert_eq!(p["tubes"][1]["result"], "");
}

#[test]
fn person_without_a_tube_in_the_round_is_an_error() {
    let dir = precedence_store();
    let out = run(pooltrack(dir.path()).args(["status", "--round", "R1", "--person", "nobody"]));
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("nobody"),
        "{}",
        stderr_text(&out)
    );
}

// ---------------------------------------------------------------------------------------
// Reading results: Ct values, cut-off, words
// ---------------------------------------------------------------------------------------

fn ct_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ingest_collections(dir.path(), "R1", &[testdata("ct_collections.csv")]);
    assert_eq!(c["committed"], 10, "{c}");
    dir
}

/// The effective result of a person's only tube.
fn tube_result(store: &Path, round: &str, person: &str) -> String {
    let p = person_report(store, round, person);
    p["tubes"][0]["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no result in {p}"))
        .to_owned()
}

#[test]
fn ct_values_are_read_when_there_is_no_result_column() {
    let dir = ct_store();
    let r = ingest_results(dir.path(), &[testdata("ct_only_results.csv")]);
    assert_eq!(r["committed"], 4, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    for (person, result, status) in [
        ("ct-both", "positive", "positive"),
        ("ct-orf-only", "inconclusive", "resample"),
        ("ct-n-only", "inconclusive", "resample"),
        ("ct-none", "negative", "negative"),
    ] {
        assert_eq!(tube_result(dir.path(), "R1", person), result, "{person}");
        assert_eq!(person_status(dir.path(), "R1", person), status, "{person}");
    }
    let p = person_report(dir.path(), "R1", "ct-both");
    let ct = p["tubes"][0]["results"][0]["ct_orf1ab"]
        .as_f64()
        .expect("ct");
    assert!((ct - 25.3).abs() < 1e-4, "{ct}");
}

#[test]
fn ct_values_fill_in_an_empty_result_and_40_is_not_a_hit() {
    let dir = ct_store();
    let r = ingest_results(dir.path(), &[testdata("ct_mixed_results.csv")]);
    assert_eq!(r["committed"], 4, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    for (person, result) in [
        // both exactly 40: neither below the cut-off
        ("ct-forty", "negative"),
        // 39.99 is a hit, 40.0 is not
        ("ct-just-under", "inconclusive"),
        ("ct-undetermined", "negative"),
        // a result word wins over the Ct values
        ("ct-word-wins", "negative"),
    ] {
        assert_eq!(tube_result(dir.path(), "R1", person), result, "{person}");
    }
}

#[test]
fn ct_cutoff_setting_changes_how_later_batches_are_read() {
    let dir = ct_store();
    ingest_results(dir.path(), &[testdata("ct_cutoff_before_results.csv")]);
    assert_eq!(tube_result(dir.path(), "R1", "cutoff-before"), "positive");

    let out = stdout_of(pooltrack(dir.path()).args(["config", "--ct-cutoff", "35"]));
    assert!(out.contains("ct_cutoff = 35"), "{out}");
    let shown = stdout_of(pooltrack(dir.path()).arg("config"));
    assert!(shown.contains("ct_cutoff = 35"), "{shown}");

    // The same Ct values (36 and 37) in a later batch: no hit at a cut-off of 35.
    ingest_results(dir.path(), &[testdata("ct_cutoff_after_results.csv")]);
    assert_eq!(tube_result(dir.path(), "R1", "cutoff-after"), "negative");
    assert_eq!(person_status(dir.path(), "R1", "cutoff-after"), "negative");
    // The committed batch keeps the outcome it was read with.
    assert_eq!(tube_result(dir.path(), "R1", "cutoff-before"), "positive");
    assert_eq!(person_status(dir.path(), "R1", "cutoff-before"), "positive");
}

#[test]
fn result_words_in_any_case_and_chinese() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(
        dir.path(),
        "R1",
        &[testdata("result_words_collections.csv")],
    );
    let r = ingest_results(dir.path(), &[testdata("result_words_results.csv")]);
    assert_eq!(r["committed"], 7, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    for (person, result, status) in [
        ("word-upper-positive", "positive", "positive"),
        ("word-title-negative", "negative", "negative"),
        ("word-mixed-inconclusive", "inconclusive", "resample"),
        ("word-upper-invalid", "invalid", "resample"),
        ("word-yinxing", "negative", "negative"),
        ("word-yangxing", "positive", "positive"),
        ("word-padded-negative", "negative", "negative"),
    ] {
        assert_eq!(tube_result(dir.path(), "R1", person), result, "{person}");
        assert_eq!(person_status(dir.path(), "R1", person), status, "{person}");
    }
}

// ---------------------------------------------------------------------------------------
// A later result replaces an earlier one; a positive is never silently cleared
// ---------------------------------------------------------------------------------------

#[test]
fn later_result_replaces_earlier_by_reported_at() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("replace_collections.csv")]);
    ingest_results(dir.path(), &[testdata("replace_results_first.csv")]);
    ingest_results(dir.path(), &[testdata("replace_results_second.csv")]);
    // invalid at 10:00, then negative at 12:00
    assert_eq!(
        tube_result(dir.path(), "R1", "replace-invalid-then-negative"),
        "negative"
    );
    assert_eq!(
        person_status(dir.path(), "R1", "replace-invalid-then-negative"),
        "negative"
    );
    // negative at 15:00 ingested first, invalid at 10:00 ingested second: 15:00 wins
    assert_eq!(
        tube_result(dir.path(), "R1", "replace-later-ingested-first"),
        "negative"
    );
    // invalid at 16:00 ingested first, negative at 11:00 ingested second: 16:00 wins
    assert_eq!(
        tube_result(dir.path(), "R1", "replace-invalid-reported-last"),
        "invalid"
    );
    assert_eq!(
        person_status(dir.path(), "R1", "replace-invalid-reported-last"),
        "resample"
    );
    // Both results are kept as evidence, and only one is effective.
    let p = person_report(dir.path(), "R1", "replace-later-ingested-first");
    let results = p["tubes"][0]["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{p}");
    let effective: Vec<&Value> = results.iter().filter(|r| r["effective"] == true).collect();
    assert_eq!(effective.len(), 1, "{p}");
    assert_eq!(effective[0]["result"], "negative");
    assert_eq!(effective[0]["lab"], "LAB-A");
}

#[test]
fn positive_followed_by_negative_stays_positive_and_is_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("replace_collections.csv")]);
    let first = ingest_results(dir.path(), &[testdata("replace_results_first.csv")]);
    assert_eq!(first["positives_kept"], 0, "{first}");
    let second = ingest_results(dir.path(), &[testdata("replace_results_second.csv")]);
    assert_eq!(second["committed"], 4, "{second}");
    assert_eq!(second["rejected"], 0, "{second}");
    assert!(second["positives_kept"].as_u64() >= Some(1), "{second}");
    assert!(second["warnings"].as_u64() >= Some(1), "{second}");
    let rejects = rejects_of(&second);
    let flagged: Vec<&RejectRow> = rejects.iter().filter(|r| r.tube == "RPL-POS-NEG").collect();
    assert_eq!(flagged.len(), 1, "{rejects:?}");
    assert_eq!(flagged[0].severity, "warning");
    assert_eq!(flagged[0].line, 5);
    assert!(flagged[0].file.ends_with("replace_results_second.csv"));
    assert!(flagged[0].reason.contains("positive"), "{:?}", flagged[0]);

    let s = round_status(dir.path(), "R1");
    assert_eq!(s["positives_kept"], 1, "{s}");
    let p = person_report(dir.path(), "R1", "replace-positive-then-negative");
    assert_eq!(p["status"], "positive");
    assert_eq!(p["tubes"][0]["result"], "positive");
    assert_eq!(p["tubes"][0]["positive_kept"], true);
    assert_eq!(p["tubes"][0]["results"].as_array().map(Vec::len), Some(2));
}

#[test]
fn positive_ingested_after_a_later_negative_is_flagged_by_ingest() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("replace_collections.csv")]);
    // Negative reported 12:00 for RPL-POS-NEG first (with the others)...
    ingest_results(dir.path(), &[testdata("replace_results_second.csv")]);
    // ...then its positive reported at 10:00 arrives.
    let late = ingest_results(dir.path(), &[testdata("replace_results_first.csv")]);
    let s = round_status(dir.path(), "R1");
    assert_eq!(s["positives_kept"], 1, "{s}");
    assert_eq!(
        person_status(dir.path(), "R1", "replace-positive-then-negative"),
        "positive"
    );
    // The clerk ingesting the batch should be told, as in the usual order.
    assert_eq!(late["positives_kept"], 1, "{late}");
    let rejects = rejects_of(&late);
    assert!(
        rejects
            .iter()
            .any(|r| r.tube == "RPL-POS-NEG" && r.severity == "warning"),
        "{rejects:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Worklists and export
// ---------------------------------------------------------------------------------------

fn worklist_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ingest_collections(dir.path(), "R1", &[testdata("worklist_collections.csv")]);
    assert_eq!(c["committed"], 12, "{c}");
    let r = ingest_results(dir.path(), &[testdata("worklist_results.csv")]);
    assert_eq!(r["committed"], 9, "{r}");
    dir
}

#[test]
fn recall_worklist_lists_recalled_persons_lowest_ct_first() {
    let dir = worklist_store();
    let rows = worklist_json(dir.path(), "recall", "R1");
    // Ct 22.1 (min of 23.9/22.1), then 30.4, then 35.0; within a pool by person.
    assert_eq!(
        persons_of(&rows),
        ["wl-b1", "wl-b2", "wl-b3", "wl-a1", "wl-a2", "wl-c1"]
    );
    for r in &rows {
        assert_eq!(field(r, "status"), "recall");
        assert_eq!(field(r, "mode"), "pool");
    }
    let b2 = &rows[1];
    assert_eq!(field(b2, "tube"), "WL-POOL-CT22");
    assert_eq!(field(b2, "site"), "S-WEST");
    assert_eq!(field(b2, "collected_at"), "2022-04-02T08:30:00+08:00");
    assert_eq!(field(b2, "result"), "positive");
    let c1 = &rows[5];
    assert_eq!(field(c1, "tube"), "WL-POOL-CT35");
    assert_eq!(field(c1, "site"), "S-NORTH");
    assert_eq!(field(c1, "result"), "inconclusive");
    assert_eq!(field(c1, "collected_at"), "2022-04-02T09:00:00+08:00");
}

#[test]
fn recall_worklist_names_exactly_the_recall_status() {
    let dir = precedence_store();
    let rows = worklist_json(dir.path(), "recall", "R1");
    let mut persons = persons_of(&rows);
    persons.sort_unstable();
    // Not retest-waiting (retest_pending), not cleared-by-retest (negative), not the
    // positive single.
    assert_eq!(
        persons,
        ["recall-inconclusive", "recall-plain", "single-before-pool"]
    );
    // Lowest Ct first: the positive pool (27.5) before the inconclusive one (36.2).
    assert_eq!(field(&rows[2], "person"), "recall-inconclusive");
    assert_eq!(field(&rows[2], "tube"), "PRE-POOL-INC");
}

#[test]
fn resample_worklist_lists_resample_persons_lowest_ct_first() {
    let dir = worklist_store();
    let rows = worklist_json(dir.path(), "resample", "R1");
    // Ct 31, then 36, then the invalid tube with no Ct.
    assert_eq!(persons_of(&rows), ["wl-e2", "wl-e1", "wl-e3"]);
    assert_eq!(field(&rows[0], "tube"), "WL-SG-INC31");
    assert_eq!(field(&rows[2], "tube"), "WL-SG-INV");
    assert_eq!(field(&rows[2], "result"), "invalid");
    assert_eq!(field(&rows[2], "site"), "S-SOUTH");
    for r in &rows {
        assert_eq!(field(r, "status"), "resample");
    }
}

#[test]
fn positives_worklist_lists_positive_persons_with_tube_and_times() {
    let dir = worklist_store();
    let rows = worklist_json(dir.path(), "positives", "R1");
    assert_eq!(persons_of(&rows), ["wl-f2", "wl-f1"]);
    let f1 = &rows[1];
    assert_eq!(field(f1, "status"), "positive");
    assert_eq!(field(f1, "tube"), "WL-SG-POS-LATE");
    assert_eq!(field(f1, "collected_at"), "2022-04-02T09:30:00+08:00");
    assert_eq!(field(f1, "reported_at"), "2022-04-02T16:45:00+08:00");
    assert_eq!(field(f1, "lab"), "LAB-B");
    assert_eq!(field(&rows[0], "tube"), "WL-SG-POS-EARLY");
}

#[test]
fn worklist_csv_to_stdout_and_to_a_file() {
    let dir = worklist_store();
    let header = "person,status,tube,mode,result,ct_orf1ab,ct_n,site,collected_at,reported_at,lab,not_counted";
    let text = stdout_of(pooltrack(dir.path()).args(["worklist", "recall", "--round", "R1"]));
    assert_eq!(text.lines().next(), Some(header));
    let recs = csv_records(&text);
    assert_eq!(recs.len(), 6);
    assert_eq!(recs[0]["person"], "wl-b1");
    assert_eq!(recs[0]["site"], "S-WEST");

    let out = dir.path().join("recall-list.csv");
    pooltrack(dir.path())
        .args(["worklist", "recall", "--round", "R1", "--out"])
        .arg(&out)
        .assert()
        .success();
    let file = std::fs::read_to_string(&out).expect("worklist file");
    assert_eq!(file, text, "the file holds what stdout shows");

    // An empty list still has its header.
    let dir2 = tempfile::tempdir().expect("tempdir");
    ingest_collections(
        dir2.path(),
        "R1",
        &[testdata("result_words_collections.csv")],
    );
    let text = stdout_of(pooltrack(dir2.path()).args(["worklist", "recall", "--round", "R1"]));
    assert_eq!(text.trim_end(), header);
}

#[test]
fn worklist_json_and_parquet_files() {
    let dir = worklist_store();
    let json_out = dir.path().join("resample.json");
    pooltrack(dir.path())
        .args(["worklist", "resample", "--round", "R1", "--out"])
        .arg(&json_out)
        .assert()
        .success();
    let v: Value =
        serde_json::from_slice(&std::fs::read(&json_out).expect("json file")).expect("json");
    assert_eq!(
        persons_of(v.as_array().expect("array")),
        ["wl-e2", "wl-e1", "wl-e3"]
    );

    let pq = dir.path().join("recall.parquet");
    pooltrack(dir.path())
        .args([
            "worklist", "recall", "--round", "R1", "--format", "parquet", "--out",
        ])
        .arg(&pq)
        .assert()
        .success();
    let bytes = std::fs::read(&pq).expect("parquet file");
    assert!(bytes.len() > 8);
    assert_eq!(&bytes[..4], b"PAR1");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(&pq).expect("open")).expect("pq");
    assert_eq!(reader.metadata().file_metadata().num_rows(), 6);

    // Parquet to standard output is fine when it is a pipe (only a terminal is refused):
    // the same file.
    let out =
        run(pooltrack(dir.path())
            .args(["worklist", "recall", "--round", "R1", "--format", "parquet"]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(out.stdout, bytes);
}

#[test]
fn export_status_lists_every_person() {
    let dir = precedence_store();
    let out = dir.path().join("status.csv");
    pooltrack(dir.path())
        .args(["export", "status", "--round", "R1", "--out"])
        .arg(&out)
        .assert()
        .success();
    let recs = csv_records(&std::fs::read_to_string(&out).expect("export"));
    assert_eq!(recs.len(), 13);
    let status: BTreeMap<&str, &str> = recs
        .iter()
        .map(|r| (r["person"].as_str(), r["status"].as_str()))
        .collect();
    assert_eq!(status.len(), 13, "one row per person");
    assert_eq!(status["single-positive"], "positive");
    assert_eq!(status["retest-waiting"], "retest_pending");
    assert_eq!(status["resample-and-pending"], "resample");
    assert_eq!(status["no-result-yet"], "pending");
    assert_eq!(status["cleared-by-retest"], "negative");
    let mut tally: BTreeMap<String, u64> = counts(&[]);
    for s in status.values() {
        *tally.get_mut(*s).expect("known status") += 1;
    }
    assert_eq!(tally, by_status(&round_status(dir.path(), "R1")));

    let json_out = dir.path().join("status.json");
    pooltrack(dir.path())
        .args(["export", "status", "--round", "R1", "--out"])
        .arg(&json_out)
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&std::fs::read(&json_out).expect("json")).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(13));
}

// ---------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------

#[test]
fn local_times_are_read_at_plus_eight() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("times_collections.csv")]);
    ingest_results(dir.path(), &[testdata("times_results.csv")]);
    // Pool at "2022-04-02 10:00:00" (+08:00). A retest at 01:30Z = 09:30 +08:00 is
    // before it and does not clear it; one at 02:00Z is the same instant, not after;
    // one at 10:30 +08:00 is after and clears it.
    assert_eq!(
        person_status(dir.path(), "R1", "tz-retest-before"),
        "recall"
    );
    assert_eq!(
        person_status(dir.path(), "R1", "tz-retest-same-instant"),
        "recall"
    );
    assert_eq!(
        person_status(dir.path(), "R1", "tz-retest-after"),
        "negative"
    );

    let p = person_report(dir.path(), "R1", "tz-retest-before");
    let tubes = p["tubes"].as_array().expect("tubes");
    assert_eq!(tubes[0]["tube"], "TZ-SG-0930");
    assert_eq!(tubes[0]["collected_at"], "2022-04-02T09:30:00+08:00");
    assert_eq!(tubes[1]["tube"], "TZ-POOL-1000");
    assert_eq!(tubes[1]["collected_at"], "2022-04-02T10:00:00+08:00");
    let p = person_report(dir.path(), "R1", "tz-retest-same-instant");
    assert_eq!(p["tubes"][0]["collected_at"], p["tubes"][1]["collected_at"]);
    // A result reported as 07:00Z shows as 15:00 +08:00.
    let p = person_report(dir.path(), "R1", "tz-retest-same-instant");
    let single = p["tubes"]
        .as_array()
        .expect("tubes")
        .iter()
        .find(|t| t["tube"] == "TZ-SG-1000")
        .expect("single tube");
    assert_eq!(
        single["results"][0]["reported_at"],
        "2022-04-02T15:00:00+08:00"
    );
}

// ---------------------------------------------------------------------------------------
// The README's examples
// ---------------------------------------------------------------------------------------

#[test]
fn example_round_statuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ingest_collections(
        dir.path(),
        "2022-04-02",
        &[testdata("example_collections.csv")],
    );
    assert_eq!(c["committed"], 13, "{c}");
    assert_eq!(c["rounds"], serde_json::json!(["2022-04-02"]));
    let r = ingest_results(dir.path(), &[testdata("example_results.csv")]);
    assert_eq!(r["committed"], 4, "{r}");
    assert_eq!(r["rounds"], serde_json::json!(["2022-04-02"]));
    let s = round_status(dir.path(), "2022-04-02");
    assert_eq!(s["persons"], 13);
    assert_eq!(s["tubes"], 5);
    assert_eq!(
        by_status(&s),
        counts(&[("recall", 8), ("pending", 1), ("negative", 4)])
    );
    let recall = worklist_json(dir.path(), "recall", "2022-04-02");
    assert_eq!(recall.len(), 8);
    // The positive pool (Ct 28.41) before the inconclusive one (Ct 37.2).
    assert!(recall[..5].iter().all(|r| r["tube"] == "PL22040200001"));
    assert!(recall[5..].iter().all(|r| r["tube"] == "PL22040200003"));
    assert_eq!(field(&recall[0], "site"), "S-CHAOYANG-01");
}

#[test]
fn store_time_zone_setting_changes_how_local_times_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shown = stdout_of(pooltrack(dir.path()).args(["config", "--time-zone", "Z"]));
    assert!(shown.contains("time_zone = Z"), "{shown}");
    ingest_collections(dir.path(), "R1", &[testdata("example_collections.csv")]);
    // A bare time is now read as UTC...
    let p = person_report(dir.path(), "R1", "110101199001011234");
    assert_eq!(p["tubes"][0]["collected_at"], "2022-04-02T07:00:04Z");
    // ...while an RFC 3339 time keeps its own offset.
    let p = person_report(dir.path(), "R1", "110105199909099012");
    assert_eq!(p["tubes"][0]["collected_at"], "2022-04-01T23:10:00Z");
}

#[test]
fn config_refuses_bad_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    ingest_collections(dir.path(), "R1", &[testdata("ct_collections.csv")]);
    for args in [
        ["config", "--ct-cutoff", "nan"],
        ["config", "--ct-cutoff", "0"],
        ["config", "--ct-cutoff", "1000"],
        ["config", "--time-zone", "Beijing"],
    ] {
        let out = run(pooltrack(dir.path()).args(args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_text(&out)
        );
    }
    let shown = stdout_of(pooltrack(dir.path()).arg("config"));
    assert!(shown.contains("ct_cutoff = 40"), "{shown}");
    assert!(shown.contains("time_zone = +08:00"), "{shown}");
    // The default cut-off still reads 36/37 as positive.
    ingest_results(dir.path(), &[testdata("ct_cutoff_before_results.csv")]);
    assert_eq!(tube_result(dir.path(), "R1", "cutoff-before"), "positive");
}
