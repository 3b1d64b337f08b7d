//! Population register and coverage (issue 3): `ingest population`, `coverage` by
//! district and community, the untested and unregistered worklists, re-registration,
//! bad register rows, re-ingest, and `verify` over population files.
//!
//! Round R1 is `example_collections.csv` (13 persons); `population_example.csv`
//! registers 16 persons: 11 of the round's, 5 with no tube, and leaves 2 of the round's
//! persons unregistered.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{csv_records, ingest_collections, rejects_of, run, stderr_text};

/// `ingest population FILES --json`, asserting success.
pub fn ingest_population(store: &Path, files: &[PathBuf]) -> Value {
    let mut cmd = pooltrack(store);
    cmd.args(["ingest", "population", "--json"]).args(files);
    json_of(&mut cmd)
}

/// A store with round R1 and the example register.
fn example_store(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    let r = ingest_population(&store, &[testdata("population_example.csv")]);
    assert_eq!(r["committed"], 16, "{r}");
    // The register's ids are made up in the form of resident identity numbers with
    // wrong GB 11643 check characters: each is kept with a warning.
    assert_eq!(
        (r["rejected"].as_u64(), r["warnings"].as_u64()),
        (Some(0), Some(16))
    );
    store
}

fn coverage_json(store: &Path) -> Value {
    json_of(pooltrack(store).args(["coverage", "--round", "R1", "--json"]))
}

/// Areas as (district, community, registered, tested).
fn areas(v: &Value, table: &str) -> Vec<(String, String, u64, u64)> {
    v[table]
        .as_array()
        .unwrap_or_else(|| panic!("no {table} in {v}"))
        .iter()
        .map(|a| {
            (
                a["district"].as_str().expect("district").to_owned(),
                a["community"].as_str().expect("community").to_owned(),
                a["registered"].as_u64().expect("registered"),
                a["tested"].as_u64().expect("tested"),
            )
        })
        .collect()
}

fn area(d: &str, c: &str, registered: u64, tested: u64) -> (String, String, u64, u64) {
    (d.to_owned(), c.to_owned(), registered, tested)
}

fn totals(v: &Value) -> [u64; 4] {
    ["registered", "tested", "untested", "unregistered_tested"]
        .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}")))
}

fn worklist(store: &Path, list: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    csv_records(&stdout_of(
        pooltrack(store).args(["worklist", list, "--round", "R1"]),
    ))
}

#[test]
fn coverage_counts_by_district_and_community() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let v = coverage_json(&store);
    assert_eq!(totals(&v), [16, 11, 5, 2], "{v}");
    assert!((v["share"].as_f64().expect("share") - 11.0 / 16.0).abs() < 1e-12);
    assert_eq!(
        areas(&v, "by_district"),
        [
            area("(none)", "", 2, 1),
            area("Chaoyang", "", 9, 7),
            area("Haidian", "", 5, 3),
        ]
    );
    assert_eq!(
        areas(&v, "by_community"),
        [
            area("(none)", "(none)", 2, 1),
            area("Chaoyang", "Jianwai", 5, 4),
            area("Chaoyang", "Sanlitun", 4, 3),
            area("Haidian", "Wudaokou", 2, 1),
            area("Haidian", "Zhongguancun", 3, 2),
        ]
    );
    let text = stdout_of(pooltrack(&store).args(["coverage", "--round", "R1"]));
    for want in [
        "Chaoyang",
        "Zhongguancun",
        "77.8 %",
        "total: 16 registered, 11 tested (68.8 %), 5 untested; 2 tested but not registered",
        "pooltrack worklist untested --round R1",
    ] {
        assert!(
            text.contains(want),
            "coverage should show {want:?}:\n{text}"
        );
    }
}

#[test]
fn untested_lists_exactly_the_registered_persons_without_a_tube() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let rows: Vec<[String; 4]> = worklist(&store, "untested")
        .into_iter()
        .map(|r| ["person", "district", "community", "group"].map(|k| r[k].clone()))
        .collect();
    let want = [
        ["110109199912310005", "", "", ""],
        ["110101199912310002", "Chaoyang", "Jianwai", "cold-chain"],
        ["110101199912310001", "Chaoyang", "Sanlitun", ""],
        ["110105199912310004", "Haidian", "Wudaokou", "school"],
        ["110105199912310003", "Haidian", "Zhongguancun", ""],
    ]
    .map(|r| r.map(str::to_owned));
    assert_eq!(rows, want);
    let json = json_of(
        pooltrack(&store).args(["worklist", "untested", "--round", "R1", "--format", "json"]),
    );
    assert_eq!(json.as_array().map(Vec::len), Some(5), "{json}");
    let out = dir.path().join("untested.parquet");
    pooltrack(&store)
        .args(["worklist", "untested", "--round", "R1", "--out"])
        .arg(&out)
        .assert()
        .success();
    let bytes = std::fs::read(&out).expect("parquet written");
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
}

#[test]
fn tested_persons_missing_from_the_register_are_listed_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let rows: Vec<[String; 4]> = worklist(&store, "unregistered")
        .into_iter()
        .map(|r| ["person", "tube", "site", "collected_at"].map(|k| r[k].clone()))
        .collect();
    let want = [
        [
            "110101196603038901",
            "PL22040200002",
            "S-CHAOYANG-01",
            "2022-04-02T07:06:20+08:00",
        ],
        [
            "110105198004043579",
            "SG22040200002",
            "S-HAIDIAN-02",
            "2022-04-02T08:16:30+08:00",
        ],
    ]
    .map(|r| r.map(str::to_owned));
    assert_eq!(rows, want);
    // They are still in the round: coverage does not change the round's statuses.
    let status = json_of(pooltrack(&store).args(["status", "--round", "R1", "--json"]));
    assert_eq!(status["persons"], 13, "{status}");
}

#[test]
fn a_later_registration_moves_a_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let r = ingest_population(&store, &[testdata("population_moves.csv")]);
    assert_eq!(r["committed"], 2, "{r}");
    let v = coverage_json(&store);
    // Still 16 persons: a move is not a new person.
    assert_eq!(totals(&v), [16, 11, 5, 2], "{v}");
    assert_eq!(
        areas(&v, "by_community"),
        [
            area("(none)", "(none)", 2, 1),
            area("Chaoyang", "Jianwai", 5, 4),
            area("Chaoyang", "Sanlitun", 2, 2),
            area("Haidian", "Wudaokou", 3, 1),
            area("Haidian", "Zhongguancun", 4, 3),
        ]
    );
    let moved = worklist(&store, "untested")
        .into_iter()
        .find(|r| r["person"] == "110101199912310001")
        .expect("still untested");
    assert_eq!(
        (moved["district"].as_str(), moved["community"].as_str()),
        ("Haidian", "Wudaokou")
    );
}

/// Issue 14: a blank optional field of a re-registration means "not stated", never
/// "none". `population_blank_fields.csv`, a later batch, re-registers three untested
/// persons: ...0002 (Chaoyang, Jianwai, cold-chain) with only the district Haidian;
/// ...0004 (Haidian, Wudaokou, school) as Chaoyang / Sanlitun, then on a later line
/// with a blank district and community Jianwai; ...0003 (Haidian, Zhongguancun) with
/// every field stated.
#[test]
fn a_blank_field_of_a_re_registration_keeps_the_earlier_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let r = ingest_population(&store, &[testdata("population_blank_fields.csv")]);
    // One repeat within the batch, and the example register's made-up ids fail their
    // GB 11643 check character (a warning each, the rows are kept).
    assert_eq!(
        (r["committed"].as_u64(), r["warnings"].as_u64()),
        (Some(4), Some(5)),
        "{r}"
    );
    let rejects: Vec<_> = rejects_of(&r)
        .into_iter()
        .filter(|x| x.reason.contains("registered again"))
        .collect();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!((rejects[0].line, rejects[0].column.as_str()), (4, "person"));
    assert!(
        rejects[0].reason.contains("line 3")
            && rejects[0]
                .reason
                .contains("blank ones keep the earlier values"),
        "{:?}",
        rejects[0]
    );

    let v = coverage_json(&store);
    assert_eq!(totals(&v), [16, 11, 5, 2], "{v}");
    assert_eq!(
        areas(&v, "by_district"),
        [
            area("(none)", "", 2, 1),
            area("Chaoyang", "", 10, 7),
            area("Haidian", "", 4, 3),
        ]
    );
    assert_eq!(
        areas(&v, "by_community"),
        [
            area("(none)", "(none)", 2, 1),
            // ...0002 left, ...0004 came (district from its earlier line).
            area("Chaoyang", "Jianwai", 5, 4),
            // ...0003 came, every field stated: a stated district still moves them.
            area("Chaoyang", "Sanlitun", 5, 3),
            // ...0002: the new district, the community of the earlier batch.
            area("Haidian", "Jianwai", 1, 0),
            area("Haidian", "Wudaokou", 1, 1),
            area("Haidian", "Zhongguancun", 2, 2),
        ]
    );

    let rows: Vec<[String; 4]> = worklist(&store, "untested")
        .into_iter()
        .map(|r| ["person", "district", "community", "group"].map(|k| r[k].clone()))
        .collect();
    let want = [
        ["110109199912310005", "", "", ""],
        // District from the batch's earlier line, community from the later line,
        // group from the first batch (neither line states one).
        ["110105199912310004", "Chaoyang", "Jianwai", "school"],
        ["110101199912310001", "Chaoyang", "Sanlitun", ""],
        ["110105199912310003", "Chaoyang", "Sanlitun", "elderly"],
        ["110101199912310002", "Haidian", "Jianwai", "cold-chain"],
    ]
    .map(|r| r.map(str::to_owned));
    assert_eq!(rows, want);

    // The same persons re-registered with a stated district in a still later batch:
    // the stated district wins again, and the other fields stay.
    let later = dir.path().join("later.csv");
    std::fs::write(
        &later,
        "person,district,community,group\n110101199912310002,Chaoyang,,\n",
    )
    .expect("write");
    ingest_population(&store, &[later]);
    let moved = worklist(&store, "untested")
        .into_iter()
        .find(|r| r["person"] == "110101199912310002")
        .expect("still untested");
    assert_eq!(
        ["district", "community", "group"].map(|k| moved[k].as_str()),
        ["Chaoyang", "Jianwai", "cold-chain"]
    );
}

#[test]
fn bad_register_rows_are_rejected_with_file_line_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let r = ingest_population(&store, &[testdata("population_bad_rows.csv")]);
    assert_eq!(
        [
            &r["rows_read"],
            &r["committed"],
            &r["rejected"],
            &r["warnings"]
        ],
        [6, 3, 3, 1],
        "{r}"
    );
    assert!(r["batch"].is_u64(), "{r}");
    let rejects = rejects_of(&r);
    let got: Vec<(u64, &str, &str)> = rejects
        .iter()
        .map(|x| (x.line, x.column.as_str(), x.severity.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "person", "error"),
            (4, "", "error"),
            (5, "district", "error"),
            (6, "person", "warning"),
        ]
    );
    for x in &rejects {
        assert!(x.file.ends_with("population_bad_rows.csv"), "{x:?}");
    }
    assert!(
        rejects[0].reason.contains("person id is empty"),
        "{:?}",
        rejects[0]
    );
    assert!(rejects[1].reason.contains("fields"), "{:?}", rejects[1]);
    assert!(
        rejects[2].reason.contains("longer than 64"),
        "{:?}",
        rejects[2]
    );
    assert!(
        rejects[3].reason.contains("line 2") && rejects[3].reason.contains("later line"),
        "{:?}",
        rejects[3]
    );
    // The repeat won: bad-rows-p1 is registered once, in South; North is left empty
    // and is not shown.
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    let v = coverage_json(&store);
    assert_eq!(totals(&v), [2, 0, 2, 13], "{v}");
    assert_eq!(areas(&v, "by_district"), [area("South", "", 2, 0)]);

    // Under --strict nothing is committed and the exit code is 1.
    let strict = dir.path().join("strict");
    let out = run(pooltrack(&strict)
        .args(["ingest", "population", "--strict"])
        .arg(testdata("population_bad_rows.csv")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
}

#[test]
fn re_ingesting_the_same_register_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let before = crate::crash::commits(&store);
    let copy = dir.path().join("renamed-register.csv");
    std::fs::copy(testdata("population_example.csv"), &copy).expect("copy");
    let again = ingest_population(&store, &[copy]);
    assert!(again["batch"].is_null(), "{again}");
    assert_eq!(again["files"][0]["already_in_batch"], 2, "{again}");
    assert!(crate::crash::commits(&store) == before);
    assert_eq!(totals(&coverage_json(&store)), [16, 11, 5, 2]);
}

#[test]
fn coverage_without_a_register_names_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    for args in [
        &["coverage", "--round", "R1"][..],
        &["worklist", "untested", "--round", "R1"][..],
    ] {
        let out = run(pooltrack(&store).args(args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_text(&out)
        );
        let err = stderr_text(&out);
        assert!(err.contains("pooltrack ingest population FILE"), "{err}");
    }
    let store = example_store(&dir.path().join("with-register"));
    let out = run(pooltrack(&store).args(["coverage", "--round", "R9"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
}

#[test]
fn verify_checks_population_files_and_names_a_damaged_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["files"], 5, "{v}");
    assert_eq!(v["rows"], 13 + 16, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");

    let data = store.join("population/b000002.parquet");
    let mut bytes = std::fs::read(&data).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).expect("write");
    let out = run(pooltrack(&store).arg("verify"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("population/b000002.parquet"), "{text}");
    // Other commands refuse the damaged store too.
    let out = run(pooltrack(&store).args(["coverage", "--round", "R1"]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr_text(&out));
    assert!(stderr_text(&out).contains("population/b000002.parquet"));
}

#[test]
fn a_crashed_population_ingest_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    // What a writer killed before its commit leaves: files no manifest names.
    let leftover = store.join("population/b000003.parquet");
    std::fs::write(&leftover, b"half").expect("write");
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("population/b000003.parquet"),
        "{v}"
    );
    ingest_population(&store, &[testdata("population_moves.csv")]);
    assert!(store.join("population/b000003.parquet").exists());
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn pseudonymized_untested_and_unregistered_lists_hide_every_id() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = example_store(dir.path());
    let key = dir.path().join("office.key");
    std::fs::write(&key, "the office's secret, 2022").expect("key");
    for list in ["untested", "unregistered"] {
        let plain = worklist(&store, list);
        let hidden = csv_records(&stdout_of(
            pooltrack(&store)
                .args(["worklist", list, "--round", "R1", "--pseudonymize"])
                .arg(&key),
        ));
        assert_eq!(hidden.len(), plain.len(), "{list}");
        assert!(!plain.is_empty(), "{list}");
        let real: Vec<&String> = plain.iter().map(|r| &r["person"]).collect();
        for r in &hidden {
            assert!(
                !real.contains(&&r["person"]),
                "{list} shows a real id: {r:?}"
            );
        }
        // Sorted again after the ids changed: the order does not follow the real ids.
        let cols = if list == "untested" {
            ["district", "community", "person"]
        } else {
            ["site", "collected_at", "person"]
        };
        let keys: Vec<Vec<String>> = hidden
            .iter()
            .map(|r| cols.iter().map(|c| r[*c].clone()).collect())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{list}");
    }
}
