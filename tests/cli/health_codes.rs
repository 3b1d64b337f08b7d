//! Health-code export (issue 3): each person's color with the tube and result behind it.

use std::collections::BTreeMap;

use crate::common::{pooltrack, testdata};
use crate::rules::{csv_records, ingest_collections, ingest_results, run, stderr_text};

const ROUND: &str = "2022-04-02";

fn codes(store: &std::path::Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = store.join("codes.csv");
    let o = run(pooltrack(store)
        .args(["export", "health-codes", "--round", ROUND, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let text = std::fs::read_to_string(&out).expect("export written");
    assert!(text.starts_with(
        "person,color,status,tube,mode,collected_at,collection_source,result,ct_orf1ab,ct_n,reported_at,lab,plate,result_source,not_counted\n"
    ));
    csv_records(&text)
        .into_iter()
        .map(|r| (r["person"].clone(), r))
        .collect()
}

#[test]
fn colors_follow_statuses_and_name_the_deciding_tube_and_result() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path();
    ingest_collections(store, ROUND, &[testdata("qc_collections.csv")]);
    ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    let positive = store.join("positive.csv");
    std::fs::write(
        &positive,
        "tube,result,ct_orf1ab,ct_n,reported_at,lab\nQC-SINGLE-01,positive,24.1,25.3,2022-04-02 15:00:00,LAB-Z\n",
    )
    .expect("write");
    ingest_results(store, &[positive]);
    let c = codes(store);
    let color = |p: &str| c[p]["color"].as_str();
    let status = |p: &str| c[p]["status"].as_str();
    // A single positive: red, with the result's lab and source line.
    assert_eq!((color("qc-e1"), status("qc-e1")), ("red", "positive"));
    assert_eq!(c["qc-e1"]["tube"], "QC-SINGLE-01");
    assert_eq!(c["qc-e1"]["lab"], "LAB-Z");
    assert_eq!(c["qc-e1"]["ct_orf1ab"], "24.1");
    assert!(
        c["qc-e1"]["result_source"].ends_with("positive.csv line 2"),
        "{:?}",
        c["qc-e1"]
    );
    assert!(c["qc-e1"]["collection_source"].ends_with("qc_collections.csv line 9"));
    // Invalid (no target, no internal control): resample, yellow.
    assert_eq!((color("qc-d1"), status("qc-d1")), ("yellow", "resample"));
    assert_eq!(c["qc-d1"]["result"], "invalid");
    // On the failed plate: pending, green, with no result shown.
    assert_eq!((color("qc-b1"), status("qc-b1")), ("green", "pending"));
    assert_eq!(c["qc-b1"]["result"], "");
    assert_eq!((color("qc-c1"), status("qc-c1")), ("green", "negative"));
    assert_eq!(c["qc-c1"]["plate"], "P2");

    // After the rerun the positive pool recalls its members: yellow.
    ingest_results(store, &[testdata("qc_results_rerun.csv")]);
    let c = codes(store);
    assert_eq!(c["qc-b1"]["color"], "yellow");
    assert_eq!(c["qc-b1"]["status"], "recall");
    assert_eq!(c["qc-b1"]["plate"], "P3");
    assert_eq!(c.len(), 8);
}

#[test]
fn health_codes_export_as_json_and_parquet() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path();
    ingest_collections(store, ROUND, &[testdata("qc_collections.csv")]);
    let json = store.join("codes.json");
    let o = run(pooltrack(store)
        .args(["export", "health-codes", "--round", ROUND, "--out"])
        .arg(&json));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    assert!(
        stderr_text(&o).contains("0 red, 0 yellow, 8 green"),
        "{}",
        stderr_text(&o)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("parses");
    assert_eq!(v.as_array().map(Vec::len), Some(8));
    assert_eq!(v[0]["status"], "pending");
    let pq = store.join("codes.parquet");
    let o = run(pooltrack(store)
        .args(["export", "health-codes", "--round", ROUND, "--out"])
        .arg(&pq));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    assert_eq!(&std::fs::read(&pq).expect("parquet")[..4], b"PAR1");
}

#[test]
fn registered_persons_without_a_tube_are_yellow_untested() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path();
    ingest_collections(store, ROUND, &[testdata("example_collections.csv")]);
    let o = run(pooltrack(store)
        .args(["ingest", "population"])
        .arg(testdata("population_example.csv")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let untested = crate::common::json_of(
        pooltrack(store).args(["worklist", "untested", "--round", ROUND, "--format", "json"]),
    );
    let want: Vec<String> = untested
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["person"].as_str().expect("person").to_owned())
        .collect();
    assert!(
        !want.is_empty(),
        "the fixture registers persons without a tube"
    );
    let c = codes(store);
    let got: Vec<String> = c
        .values()
        .filter(|r| r["status"] == "untested")
        .map(|r| r["person"].clone())
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    for p in &want {
        assert_eq!(c[p]["color"], "yellow");
        assert_eq!(c[p]["tube"], "");
    }
}

/// The round's exports list persons in id order, whether every id is of the resident
/// form (sorted by its exact numeric key) or one is not (sorted as text): ids of one
/// district and birth date that differ only in their last digits or `X`, and one that
/// sorts between them only as text.
#[test]
fn exports_list_persons_in_id_order_for_resident_ids_and_for_mixed_ids() {
    let resident = [
        "31010119900101123X",
        "310101199001011239",
        "110105194912310021",
        "310101199001011220",
        "11010519491231002X",
        "310101198512310017",
    ];
    for extra in [None, Some("310101199001011")] {
        let dir = tempfile::tempdir().expect("tmp");
        let store = dir.path();
        let mut csv = String::from("tube,person,mode,collected_at\n");
        for (i, p) in resident.iter().chain(extra.iter()).enumerate() {
            csv.push_str(&format!("ORD-{i:02},{p},single,2022-04-02 08:{i:02}:00\n"));
        }
        let file = store.join("collections.csv");
        std::fs::write(&file, csv).expect("write");
        ingest_collections(store, ROUND, &[file]);
        let mut want: Vec<&str> = resident.iter().chain(extra.iter()).copied().collect();
        want.sort_unstable();
        for export in ["health-codes", "status"] {
            let o = run(pooltrack(store).args(["export", export, "--round", ROUND]));
            assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
            let text = String::from_utf8(o.stdout).expect("utf-8");
            let got: Vec<String> = csv_records(&text)
                .into_iter()
                .map(|r| r["person"].clone())
                .collect();
            assert_eq!(got, want, "export {export}, extra id {extra:?}");
        }
    }
}
