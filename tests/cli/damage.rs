//! Damaged store (issue 6): a truncated or altered data file, a missing file, a manifest
//! pointing nowhere or not JSON. `pooltrack verify` names the damaged part and exits 3;
//! every other command refuses the damaged store with exit 3 instead of answering from
//! it, and changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_of, pooltrack, testdata};
use crate::crash::{copy_dir, manifest_json};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

/// A healthy store: the example collections and results (batches 1 and 2) of round R1.
fn healthy_store(dir: &Path) -> PathBuf {
    let store = dir.join("healthy");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    ingest_results(&store, &[testdata("example_results.csv")]);
    store
}

const COLLECTIONS: &str = "collections/R1/b000001.parquet";
const COLLECTION_TUBES: &str = "collections/_pooltrack/R1/b000001.tubes";
const RESULTS: &str = "results/R1/b000002.parquet";
const RESULT_TUBES: &str = "results/_pooltrack/R1/b000002.tubes";
/// The commit of batch 2 (version 0 of each table creates it).
const RESULTS_COMMIT: &str = "results/_delta_log/00000000000000000001.json";

/// Rewrites a commit file's actions with `edit` (one JSON value per line).
fn edit_commit(store: &Path, commit: &str, edit: impl Fn(&mut Value)) {
    let path = store.join(commit);
    let text = fs::read_to_string(&path).expect("commit");
    let mut out = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).expect("an action");
        edit(&mut v);
        out.push_str(&v.to_string());
        out.push('\n');
    }
    fs::write(&path, out).expect("write");
}

/// The person index of the collections segment (its name is the manifest's business).
fn person_index(store: &Path) -> String {
    let m = manifest_json(store);
    let seg = &m["batches"][0]["segments"][0];
    let obj = seg.as_object().expect("segment object");
    obj.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "parquet" | "tubes"))
        .find_map(|(_, v)| v["path"].as_str().map(str::to_owned))
        .expect("a third file in the collections segment")
}

/// Runs `verify` and asserts exit 3 with `path` and every word of `what` in its output.
fn verify_names(store: &Path, path: &str, what: &[&str]) -> Value {
    let out = run(pooltrack(store).arg("verify"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr_text(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "verify should find damage:\n{text}"
    );
    assert!(text.contains(path), "verify should name {path}:\n{text}");
    for w in what {
        assert!(text.contains(w), "verify should say {w:?}:\n{text}");
    }
    let out = run(pooltrack(store).args(["verify", "--json"]));
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).expect("verify --json prints JSON");
    assert_eq!(v["healthy"], false, "{v}");
    let damage = v["damage"].as_array().expect("damage list");
    assert!(
        damage.iter().any(|d| d["path"] == path),
        "the JSON report names {path}: {v}"
    );
    v
}

/// Every command that reads or writes the store refuses it with exit 3, naming the
/// damage; nothing is written (the manifest is unchanged, no output file appears).
fn every_command_refuses(store: &Path, dir: &Path, names: &str) {
    let commits_before = crate::crash::commits(store);
    let out_file = dir.join("export-of-damaged.csv");
    let worklist_file = dir.join("worklist-of-damaged.csv");
    let (out_s, worklist_s) = (
        out_file.to_string_lossy().into_owned(),
        worklist_file.to_string_lossy().into_owned(),
    );
    let (more_collections, more_results) = (
        testdata("times_collections.csv")
            .to_string_lossy()
            .into_owned(),
        testdata("replace_results_first.csv")
            .to_string_lossy()
            .into_owned(),
    );
    let commands: [&[&str]; 10] = [
        &["status", "--round", "R1"],
        &["status", "--round", "R1", "--json"],
        &["status", "--round", "R1", "--person", "110101199001011234"],
        &["status", "--person", "110101199001011234"],
        &["worklist", "recall", "--round", "R1"],
        &["worklist", "positives", "--round", "R1", "--format", "json"],
        &["worklist", "recall", "--round", "R1", "--out", &worklist_s],
        &["export", "status", "--round", "R1", "--out", &out_s],
        &["ingest", "collections", "--round", "R1", &more_collections],
        &["ingest", "results", &more_results],
    ];
    for args in &commands {
        let out = run(pooltrack(store).args(*args));
        let err = stderr_text(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "`pooltrack {}` must refuse the damaged store with exit 3; stdout: {} stderr: {err}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(err.contains("damaged"), "{}: {err}", args.join(" "));
        assert!(
            err.contains(names),
            "{} should name {names}: {err}",
            args.join(" ")
        );
        assert!(
            out.stdout.is_empty(),
            "`pooltrack {}` answered from a damaged store: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(!out_file.exists(), "export wrote from a damaged store");
    assert!(
        !worklist_file.exists(),
        "worklist wrote from a damaged store"
    );
    assert!(
        crate::crash::commits(store) == commits_before,
        "a refused command changed the tables' logs"
    );
}

/// A copy of the healthy store to damage.
fn copy_of(healthy: &Path, dir: &Path, name: &str) -> PathBuf {
    let store = dir.join(name);
    copy_dir(healthy, &store);
    store
}

fn flip_middle(path: &Path) {
    let mut bytes = fs::read(path).expect("read");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5a;
    }
    fs::write(path, bytes).expect("write");
}

fn truncate_half(path: &Path) {
    let bytes = fs::read(path).expect("read");
    fs::write(path, &bytes[..bytes.len() / 2]).expect("write");
}

#[test]
fn verify_passes_a_healthy_store_with_a_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = healthy_store(dir.path());
    let out = run(pooltrack(&store).arg("verify"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr_text(&out));
    assert!(text.contains("healthy"), "{text}");
    assert!(text.contains("2 batch(es)"), "{text}");
    assert!(text.contains("5 file(s)"), "{text}");
    assert!(text.contains("17 row(s)"), "{text}");
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["batches"], 2, "{v}");
    assert_eq!(v["segments"], 2, "{v}");
    assert_eq!(v["files"], 5, "{v}");
    assert_eq!(v["rows"], 17, "{v}");
    // Segments, sidecars and the tables' commits.
    let on_disk: u64 = ["collections", "results", "population"]
        .iter()
        .flat_map(|t| crate::crash::files_under(&store.join(t)))
        .map(|p| fs::metadata(p).expect("meta").len())
        .sum();
    assert_eq!(v["bytes_checked"], on_disk, "every byte is read: {v}");
    assert_eq!(v["damage"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn verify_without_a_store_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(&dir.path().join("none")).arg("verify"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("no store"),
        "{}",
        stderr_text(&out)
    );
}

#[test]
fn orphan_files_are_warnings_not_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = healthy_store(dir.path());
    let orphan = store.join("collections/R1/b000009.parquet");
    fs::write(&orphan, b"half-written by a killed writer").expect("write");
    let commit = "collections/_delta_log/.00000000000000000002.json.999.tmp";
    fs::write(store.join(commit), b"{").expect("write");
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    let warnings = v["warnings"].as_array().expect("warnings");
    let paths: Vec<&str> = warnings.iter().filter_map(|w| w["path"].as_str()).collect();
    assert!(paths.contains(&"collections/R1/b000009.parquet"), "{v}");
    assert!(paths.contains(&commit), "{v}");
    // Readers are not disturbed by leftovers; the next writer removes them.
    json_of(pooltrack(&store).args(["status", "--round", "R1", "--json"]));
    ingest_collections(&store, "R1", &[testdata("times_collections.csv")]);
    assert!(!orphan.exists(), "the next writer removes a leftover");
    assert!(!store.join(commit).exists());
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn a_truncated_data_file_is_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    for (name, file) in [
        ("parquet", COLLECTIONS),
        ("results", RESULTS),
        ("tubes", COLLECTION_TUBES),
    ] {
        let store = copy_of(&healthy, dir.path(), &format!("truncated-{name}"));
        truncate_half(&store.join(file));
        verify_names(&store, file, &["truncated", "bytes"]);
        every_command_refuses(&store, dir.path(), file);
    }
    let store = copy_of(&healthy, dir.path(), "truncated-persons");
    let persons = person_index(&store);
    truncate_half(&store.join(&persons));
    verify_names(&store, &persons, &["truncated"]);
    every_command_refuses(&store, dir.path(), &persons);
}

#[test]
fn an_altered_data_file_is_named_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let persons = person_index(&healthy);
    for file in [
        COLLECTIONS,
        RESULTS,
        COLLECTION_TUBES,
        RESULT_TUBES,
        &persons,
    ] {
        let store = copy_of(&healthy, dir.path(), &file.replace('/', "_"));
        let before = fs::metadata(store.join(file)).expect("meta").len();
        flip_middle(&store.join(file));
        assert_eq!(fs::metadata(store.join(file)).expect("meta").len(), before);
        verify_names(&store, file, &["altered"]);
    }
}

#[test]
fn an_altered_sidecar_header_is_named_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let store = copy_of(&healthy, dir.path(), "bad-header");
    let path = store.join(RESULT_TUBES);
    let mut bytes = fs::read(&path).expect("read");
    bytes[..8].copy_from_slice(b"NOTANIDX");
    fs::write(&path, bytes).expect("write");
    verify_names(&store, RESULT_TUBES, &["altered"]);
}

/// The other commands must not answer from an altered file either (same size, other
/// bytes): they check the hash of every file they read.
#[test]
fn an_altered_data_file_is_refused_by_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let persons = person_index(&healthy);
    for file in [
        COLLECTIONS,
        RESULTS,
        COLLECTION_TUBES,
        RESULT_TUBES,
        &persons,
    ] {
        let store = copy_of(&healthy, dir.path(), &file.replace('/', "_"));
        flip_middle(&store.join(file));
        every_command_refuses(&store, dir.path(), file);
    }
}

#[test]
fn a_missing_file_is_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    for file in [COLLECTIONS, RESULT_TUBES] {
        let store = copy_of(
            &healthy,
            dir.path(),
            &format!("missing-{}", file.replace('/', "_")),
        );
        fs::remove_file(store.join(file)).expect("remove");
        verify_names(&store, file, &["missing"]);
        every_command_refuses(&store, dir.path(), file);
    }
}

#[test]
fn a_commit_pointing_nowhere_is_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let store = copy_of(&healthy, dir.path(), "nowhere");
    let text = fs::read_to_string(store.join(RESULTS_COMMIT)).expect("commit");
    let nowhere = "results/R1/b999999.parquet";
    assert!(text.contains(RESULTS));
    // The batch's record and its `add` both.
    let moved = text.replace("R1/b000002.parquet", "R1/b999999.parquet");
    fs::write(store.join(RESULTS_COMMIT), moved).expect("write");
    let v = verify_names(&store, nowhere, &["missing"]);
    // The real file is now named by nothing: a warning, not more damage.
    let warnings = v["warnings"].as_array().expect("warnings");
    assert!(warnings.iter().any(|w| w["path"] == RESULTS), "{v}");
    every_command_refuses(&store, dir.path(), nowhere);
}

#[test]
fn a_commit_that_is_not_json_is_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let cases: [(&str, &[u8]); 4] = [
        ("garbage", b"\x00\x01 this is not a commit"),
        (
            "cut",
            b"{\"add\":{\"path\":\"R1/b000002.parquet\",\"partitionVal",
        ),
        ("empty", b""),
        ("wrong-json", b"{\"add\": 7}"),
    ];
    for (name, bytes) in cases {
        let store = copy_of(&healthy, dir.path(), &format!("commit-{name}"));
        fs::write(store.join(RESULTS_COMMIT), bytes).expect("write");
        verify_names(&store, RESULTS_COMMIT, &[]);
        every_command_refuses(&store, dir.path(), RESULTS_COMMIT);
    }
}

#[test]
fn a_missing_log_with_data_is_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let store = copy_of(&healthy, dir.path(), "no-log");
    let log = store.join("collections/_delta_log");
    fs::remove_dir_all(&log).expect("remove");
    verify_names(&store, "collections/_delta_log", &["missing"]);
    every_command_refuses(&store, dir.path(), "collections/_delta_log");
    assert!(
        !log.exists(),
        "a writer must not start a new, empty log over the data"
    );
    // A commit missing from the middle of a log is damage too, named by the next one.
    let store = copy_of(&healthy, dir.path(), "gap");
    ingest_collections(&store, "R1", &[testdata("times_collections.csv")]);
    fs::remove_file(store.join("collections/_delta_log/00000000000000000001.json"))
        .expect("remove");
    let next = "collections/_delta_log/00000000000000000002.json";
    verify_names(&store, next, &["missing"]);
    every_command_refuses(&store, dir.path(), next);
}

#[test]
fn a_commit_naming_a_file_outside_the_store_is_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let store = copy_of(&healthy, dir.path(), "outside");
    let text = fs::read_to_string(store.join(RESULTS_COMMIT)).expect("commit");
    let outside = "../outside.parquet";
    fs::copy(store.join(RESULTS), dir.path().join("outside.parquet")).expect("copy");
    fs::write(store.join(RESULTS_COMMIT), text.replace(RESULTS, outside)).expect("write");
    verify_names(&store, RESULTS_COMMIT, &["outside"]);
}

#[test]
fn a_row_count_that_disagrees_with_the_commit_is_damage() {
    // A commit edited by hand (or by a bug) to claim more rows than a file holds:
    // sizes and hashes match, only the Parquet footer tells.
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let store = copy_of(&healthy, dir.path(), "rows");
    edit_commit(&store, RESULTS_COMMIT, |v| {
        if let Some(b) = v.pointer_mut("/commitInfo/pooltrack/batch") {
            b["segments"][0]["rows"] = Value::from(5);
            b["rows_committed"] = Value::from(5);
        }
    });
    verify_names(&store, RESULTS, &["4 row(s)", "says 5"]);
}

/// A reject report written by an ingest killed before its commit
/// (`rejects/bNNNNNN-KIND.csv` that no batch names) is listed by `verify`: a later
/// batch may get that number, and the report would seem to be its rejects.
#[test]
fn a_stale_reject_report_is_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = healthy_store(dir.path());
    let stale = store.join("rejects/b000003-collections.csv");
    fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    fs::write(
        &stale,
        "file,line,column,severity,reason,tube,person,value\nx.csv,2,tube,error,bad,AB,p,AB\n",
    )
    .expect("write");
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w["path"] == "rejects/b000003-collections.csv"),
        "{v}"
    );
}

/// The next writer removes leftover segment files of a dead writer, but not its reject
/// report; batch 3 then commits without rejects and the stale report seems to be its.
#[test]
fn the_next_writer_removes_a_stale_reject_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = healthy_store(dir.path());
    let stale = store.join("rejects/b000003-collections.csv");
    fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    fs::write(
        &stale,
        "file,line,column,severity,reason,tube,person,value\n",
    )
    .expect("write");
    let r = ingest_collections(&store, "R1", &[testdata("times_collections.csv")]);
    assert_eq!(r["batch"], 3, "{r}");
    // The case in question needs a batch without rejects of its own: with them, the
    // report at that name would be the batch's and rightly there.
    assert_eq!(r["rejects_file"], Value::Null, "{r}");
    assert!(
        !stale.exists(),
        "batch 3 committed no rejects, yet {} is there",
        stale.display()
    );
}

/// A commit that names a file outside the store (`../outside.parquet`, with the right
/// size and hash) is damage for `verify` and for every other command, which must not
/// answer from the outside file.
#[test]
fn every_command_refuses_a_commit_naming_a_file_outside_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let healthy = healthy_store(dir.path());
    let store = copy_of(&healthy, dir.path(), "outside");
    let text = fs::read_to_string(store.join(RESULTS_COMMIT)).expect("commit");
    fs::rename(store.join(RESULTS), dir.path().join("outside.parquet")).expect("move");
    fs::write(
        store.join(RESULTS_COMMIT),
        text.replace(RESULTS, "../outside.parquet"),
    )
    .expect("write");
    every_command_refuses(&store, dir.path(), "outside.parquet");
}
