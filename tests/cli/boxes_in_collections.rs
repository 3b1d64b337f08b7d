//! A collections file's `box` column recorded by `ingest collections` itself (issue 20,
//! chain of custody): the round's box manifest in the same batch as the memberships,
//! found by `pooltrack custody` as after the old two steps (`ingest collections`, then
//! `ingest boxes` of the same file), taken back whole by `retract`, and followed into
//! the `custody/` Delta table for other engines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{csv_records, ingest_collections, ingest_results, rejects_of, run, stderr_text};

const ROUND: &str = "R1";

/// The text of a CSV file without its `box` column (the last one in the fixtures):
/// the same collections as a site that does not record boxes sends them.
pub fn without_box_column(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("readable");
    let header: Vec<&str> = text.lines().next().expect("a header").split(',').collect();
    assert_eq!(header.last(), Some(&"box"), "{}", path.display());
    let mut out = String::new();
    for line in text.lines() {
        let (kept, _) = line.rsplit_once(',').expect("a box field");
        out.push_str(kept);
        out.push('\n');
    }
    out
}

fn ingest(store: &Path, what: &str, file: &Path) -> Value {
    json_of(
        pooltrack(store)
            .args(["ingest", what, "--round", ROUND, "--json"])
            .arg(file),
    )
}

fn custody_json(store: &Path) -> Value {
    json_of(pooltrack(store).args(["custody", "--round", ROUND, "--json"]))
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

/// Each tube's box and the boxes, from the file, as a reader would: the first row of
/// a tube that names a box puts it there.
fn boxes_in_file(path: &Path) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut tube_box = BTreeMap::new();
    for r in csv_records(&fs::read_to_string(path).expect("readable")) {
        if !r["box"].is_empty() {
            tube_box
                .entry(r["tube"].clone())
                .or_insert_with(|| r["box"].clone());
        }
    }
    let boxes = tube_box.values().cloned().collect();
    (tube_box, boxes)
}

/// The new way: one `ingest collections` of the file with its box column.
fn one_step(dir: &Path) -> PathBuf {
    let store = dir.join("one");
    let c = ingest_collections(&store, ROUND, &[testdata("custody_collections.csv")]);
    let (tubes, boxes) = boxes_in_file(&testdata("custody_collections.csv"));
    assert_eq!(
        (
            &c["committed"],
            &c["rejected"],
            &c["warnings"],
            &c["boxed_tubes"],
            &c["boxes"]
        ),
        (
            &Value::from(7),
            &Value::from(0),
            &Value::from(0),
            &Value::from(tubes.len()),
            &Value::from(boxes.len())
        ),
        "{c}"
    );
    assert_eq!(c["batch"], 1, "{c}");
    ingest_results(&store, &[testdata("custody_results.csv")]);
    ingest(&store, "receipts", &testdata("custody_receipts.csv"));
    store
}

/// One ingest of a collections file with a box column, then results and receipts,
/// finds what the two steps found (the collections without their box column, then the
/// file given to `ingest boxes`); the same file given to `ingest boxes` afterwards adds
/// nothing.
#[test]
fn one_ingest_with_a_box_column_finds_what_the_two_steps_found() {
    let dir = tempfile::tempdir().expect("tmp");
    let one = one_step(dir.path());
    let c1 = custody_json(&one);

    let two = dir.path().join("two");
    let plain = dir.path().join("plain.csv");
    fs::write(
        &plain,
        without_box_column(&testdata("custody_collections.csv")),
    )
    .expect("write");
    let c = ingest_collections(&two, ROUND, &[plain]);
    // Without a box column: no box manifest, no custody table.
    assert!(c.get("boxed_tubes").is_none(), "{c}");
    assert!(!two.join("custody").exists());
    let log = json_of(pooltrack(&two).args(["log", "--json"]));
    assert!(log[0].get("box_rows").is_none(), "{log}");
    let b = ingest(&two, "boxes", &testdata("custody_collections.csv"));
    assert_eq!(b["committed"], 4, "{b}");
    ingest_results(&two, &[testdata("custody_results.csv")]);
    ingest(&two, "receipts", &testdata("custody_receipts.csv"));
    let c2 = custody_json(&two);

    assert_eq!(c1, c2);
    // Not a comparison of two empty reports: BX02 never arrived, BX09 is unknown, and
    // the file's four boxed tubes are boxed.
    let found = findings(&c1);
    for (kind, b, t) in [
        ("box_not_received", "BX02", ""),
        ("not_received", "BX02", "PL0003"),
        ("unknown_box", "BX09", ""),
        ("received_again", "BX01", ""),
    ] {
        assert!(
            found.contains(&(kind.to_owned(), b.to_owned(), t.to_owned())),
            "{kind} {b} {t} in {c1}"
        );
    }
    assert_eq!(c1["boxed_tubes"], 4, "{c1}");

    // The same file given to `ingest boxes` afterwards: every (box, tube) is already
    // recorded, and SG0005 states no box: passed over quietly, nothing committed.
    let again = ingest(&one, "boxes", &testdata("custody_collections.csv"));
    assert_eq!(
        (
            &again["batch"],
            &again["rows_read"],
            &again["committed"],
            &again["rejected"],
            &again["warnings"]
        ),
        (
            &Value::Null,
            &Value::from(7),
            &Value::from(0),
            &Value::from(0),
            &Value::from(0)
        ),
        "{again}"
    );
    assert_eq!(custody_json(&one), c1);
    let text = stdout_of(
        pooltrack(dir.path().join("three").as_path())
            .args(["ingest", "collections", "--round", ROUND])
            .arg(testdata("custody_collections.csv")),
    );
    assert!(
        text.contains("box manifest: 4 tube(s) in 3 box(es)"),
        "{text}"
    );
    let v = json_of(pooltrack(&one).args(["verify", "--json"]));
    assert_eq!(
        (&v["healthy"], &v["warnings"]),
        (&Value::Bool(true), &Value::Array(vec![])),
        "{v}"
    );
}

/// A blank box keeps its person; a tube put in a second box keeps both memberships and
/// is a warning naming the first box (in the file, then against the store); a refused
/// row adds no box; an unreadable box is not stated.
#[test]
fn a_box_is_metadata_the_membership_is_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    let file = testdata("boxes_conflict_collections.csv");
    let c = ingest_collections(&store, ROUND, std::slice::from_ref(&file));
    // Line 7 has no person: refused. Line 4 (PL0101 in BX12 after BX11) and line 6 (an
    // unreadable box) are warnings; their rows are committed.
    assert_eq!(
        (
            &c["committed"],
            &c["rejected"],
            &c["warnings"],
            &c["boxed_tubes"],
            &c["boxes"]
        ),
        (
            &Value::from(6),
            &Value::from(1),
            &Value::from(2),
            &Value::from(2),
            &Value::from(2)
        ),
        "{c}"
    );
    let rows: Vec<(u64, String, String)> = rejects_of(&c)
        .into_iter()
        .map(|r| {
            assert_eq!(r.file, file.display().to_string());
            (r.line, r.column, r.severity)
        })
        .collect();
    assert_eq!(
        rows,
        [
            (4, "box".to_owned(), "warning".to_owned()),
            (6, "box".to_owned(), "warning".to_owned()),
            (7, "person".to_owned(), "error".to_owned()),
        ]
    );
    let second = &rejects_of(&c)[0];
    assert!(
        second.reason.contains("already in box BX11")
            && second.reason.contains("line 2")
            && second.reason.contains("membership is kept"),
        "{second:?}"
    );
    assert_eq!(
        (second.tube.as_str(), second.value.as_str()),
        ("PL0101", "BX12")
    );

    // Every person whose row was committed is in the round, the blank box's P12 and
    // the second box's P13 among them.
    let persons: BTreeSet<String> = csv_records(&stdout_of(
        pooltrack(&store).args(["export", "status", "--round", ROUND]),
    ))
    .into_iter()
    .map(|r| r["person"].clone())
    .collect();
    let want: BTreeSet<String> = ["P11", "P12", "P13", "P14", "P15", "P16"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(persons, want);
    // PL0101 in BX11 (its first row), PL0102 in BX12; SG0103's box unreadable, SG0104's
    // row refused: BX13 is in no manifest.
    let boxes = csv_records(&stdout_of(
        pooltrack(&store).args(["custody", "--round", ROUND, "--boxes", "--format", "csv"]),
    ));
    let listed: Vec<(&str, &str)> = boxes
        .iter()
        .map(|b| (b["box"].as_str(), b["tubes"].as_str()))
        .collect();
    assert_eq!(listed, [("BX11", "1"), ("BX12", "1")], "{boxes:?}");
    assert_eq!(custody_json(&store)["boxed_tubes"], 2);

    // A later batch: PL0102 put in BX14 though the store has it in BX12 (warned, kept),
    // PL0105 new in BX12 (recorded), PL0101 again in BX11 (the same fact, quiet).
    let later = testdata("boxes_conflict_later_collections.csv");
    let c = ingest_collections(&store, ROUND, &[later]);
    assert_eq!(
        (
            &c["committed"],
            &c["warnings"],
            &c["boxed_tubes"],
            &c["boxes"]
        ),
        (
            &Value::from(3),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1)
        ),
        "{c}"
    );
    let warned = &rejects_of(&c)[0];
    assert_eq!((warned.line, warned.column.as_str()), (2, "box"));
    assert!(
        warned.reason.contains("already in box BX12") && warned.reason.contains("batch 1"),
        "{warned:?}"
    );
    let custody = custody_json(&store);
    assert_eq!(custody["boxed_tubes"], 3, "{custody}");
    let trips = csv_records(&stdout_of(
        pooltrack(&store).args(["custody", "--round", ROUND, "--boxes", "--format", "csv"]),
    ));
    let tubes: BTreeMap<&str, &str> = trips
        .iter()
        .map(|b| (b["box"].as_str(), b["tubes"].as_str()))
        .collect();
    assert_eq!(tubes, BTreeMap::from([("BX11", "1"), ("BX12", "2")]));
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
}

/// `retract` of the collections batch takes its box manifest with it, for pooltrack
/// and for a Delta engine reading `custody/`; the store verifies; the file may be
/// ingested again and brings its boxes back.
#[test]
fn retracting_the_batch_takes_its_boxes() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = one_step(dir.path());
    let log = stdout_of(pooltrack(&store).arg("log"));
    assert!(
        log.contains("collections round R1  7 committed + 4 box manifest row(s)"),
        "{log}"
    );
    if crate::delta::have_delta_reader("reading a collections batch's boxes with delta-rs") {
        let seen = crate::delta::delta_reader(&store);
        // Four sealed rows of batch 1, four receipts of batch 3.
        assert_eq!(seen["custody"].rows, 8, "{seen:?}");
        assert_eq!(seen["custody"].batches, vec![1, 3], "{seen:?}");
        assert_eq!(seen["collections"].rows, 7, "{seen:?}");
    }
    let out = run(pooltrack(&store).args(["retract", "--batch", "1", "--reason", "wrong file"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("7 row(s) and its box manifest of 4 tube(s)"),
        "{said}"
    );
    let c = custody_json(&store);
    assert_eq!(
        (&c["tubes"], &c["boxed_tubes"]),
        (&Value::from(0), &Value::from(0)),
        "{c}"
    );
    // The receipts stay: the boxes they scanned are now in no manifest.
    let unknown: BTreeSet<String> = c["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "unknown_box")
        .map(|f| f["box"].as_str().expect("box").to_owned())
        .collect();
    assert_eq!(
        unknown,
        ["BX01", "BX03", "BX09"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(
        (&v["healthy"], &v["warnings"]),
        (&Value::Bool(true), &Value::Array(vec![])),
        "{v}"
    );
    if crate::delta::have_delta_reader(
        "reading a retracted collections batch's boxes with delta-rs",
    ) {
        let seen = crate::delta::delta_reader(&store);
        assert_eq!(seen["custody"].batches, vec![3], "{seen:?}");
        assert_eq!(seen["collections"].rows, 0, "{seen:?}");
    }
    let again = ingest_collections(&store, ROUND, &[testdata("custody_collections.csv")]);
    assert_eq!(
        (&again["committed"], &again["boxed_tubes"]),
        (&Value::from(7), &Value::from(4)),
        "{again}"
    );
    assert_eq!(custody_json(&store)["boxed_tubes"], 4);
}

/// A writer stopped between the collections commit and the commit that follows in
/// `custody/` (here: that commit's file removed): pooltrack reads the batch whole, and
/// `verify` says what other engines miss; the next writer makes the commit.
#[test]
fn the_custody_tables_commit_after_a_collections_batch_is_made_by_the_next_writer() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("custody_collections.csv")]);
    let log = store.join("custody").join("_delta_log");
    let mirror = log.join("00000000000000000001.json");
    let text = fs::read_to_string(&mirror).expect("the commit after the batch");
    assert!(text.contains(r#""mirror":{"batch":1}"#), "{text}");
    assert!(text.contains(r#""path":"R1/b000001.parquet""#), "{text}");
    fs::remove_file(&mirror).expect("remove");

    assert_eq!(custody_json(&store)["boxed_tubes"], 4);
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(v["healthy"], true, "{v}");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{v}");
    assert_eq!(warnings[0]["path"], "custody/_delta_log", "{v}");
    assert!(
        warnings[0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("does not list batch 1's file yet")),
        "{v}"
    );
    if crate::delta::have_delta_reader("reading a custody table a writer left behind") {
        let seen = crate::delta::delta_reader(&store);
        assert_eq!(seen["custody"].rows, 0, "{seen:?}");
    }
    // Any writer: here the results.
    ingest_results(&store, &[testdata("custody_results.csv")]);
    assert!(mirror.exists());
    let v = json_of(pooltrack(&store).args(["verify", "--json"]));
    assert_eq!(
        (&v["healthy"], &v["warnings"]),
        (&Value::Bool(true), &Value::Array(vec![])),
        "{v}"
    );
    if crate::delta::have_delta_reader("reading a custody table the next writer completed") {
        let seen = crate::delta::delta_reader(&store);
        assert_eq!(seen["custody"].rows, 4, "{seen:?}");
        assert_eq!(seen["custody"].batches, vec![1], "{seen:?}");
    }
}
