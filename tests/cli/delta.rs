//! The store's tables as another engine reads them: the `deltalake` Python package (the
//! delta-rs implementation of the Delta protocol, written apart from pooltrack) opens
//! each table from its log and reads the Parquet files the log says are committed.
//!
//! Outside CI, a machine without python3 and `deltalake` skips these checks and says
//! so; in CI (`.ci/run` installs the package) they must run.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{in_ci, pooltrack, testdata};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

/// What the Delta reader saw of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSeen {
    /// The table's version (its newest commit).
    pub version: u64,
    /// Rows of the committed files.
    pub rows: u64,
    /// The batch ids of those rows, each once, ascending.
    pub batches: Vec<u64>,
}

const READER: &str = r#"
import json, sys
from deltalake import DeltaTable
out = {}
import os
# custody/ exists once a custody batch made it.
for t in ["collections", "results", "population", "custody"]:
    if t == "custody" and not os.path.isdir(f"{sys.argv[1]}/{t}/_delta_log"):
        continue
    dt = DeltaTable(f"{sys.argv[1]}/{t}")
    tab = dt.to_pyarrow_table(columns=["batch"])
    out[t] = {"version": dt.version(), "rows": tab.num_rows,
              "batches": sorted(set(tab.column("batch").to_pylist()))}
print(json.dumps(out), flush=True)
# deltalake's threads can abort the interpreter's shutdown after the answer is out
# ("terminate called without an active exception"): leave at once instead.
import os
os._exit(0)
"#;

/// Whether python3 can import `deltalake`; without it, under CI this panics, elsewhere
/// it says on stderr what `check` skipped and returns false.
pub fn have_delta_reader(check: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import deltalake, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let how = "pip install deltalake pyarrow";
    assert!(
        !in_ci(),
        "{check}: python3 cannot import deltalake, and CI is set, so the check may not be skipped: {how}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {check}: python3 cannot import deltalake; {how} to run it, or run with CI=true to make this a failure"
    );
    false
}

/// Each table as the Delta reader sees it, by table name.
pub fn delta_reader(store: &Path) -> std::collections::BTreeMap<String, TableSeen> {
    let out = Command::new("python3")
        .args(["-c", READER])
        .arg(store)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Delta reader failed on {}: {}",
        store.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the reader");
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(t, s)| {
            let n = |k: &str| s[k].as_u64().expect("a count");
            let batches = s["batches"]
                .as_array()
                .expect("batches")
                .iter()
                .map(|b| b.as_u64().expect("a batch id"))
                .collect();
            (
                t.clone(),
                TableSeen {
                    version: n("version"),
                    rows: n("rows"),
                    batches,
                },
            )
        })
        .collect()
}

/// A round with a retracted batch: the Delta reader sees the committed batches' rows
/// and not the retracted one's, and the tables' versions count pooltrack's commits.
#[test]
fn a_delta_reader_sees_the_committed_batches_and_not_a_retracted_one() {
    if !have_delta_reader("reading the store's tables with delta-rs") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    ingest_results(&store, &[testdata("example_results.csv")]);
    ingest_collections(&store, "R9", &[testdata("times_collections.csv")]);
    let out = run(pooltrack(&store).args(["retract", "--batch", "3", "--reason", "wrong round"]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let seen = delta_reader(&store);
    // Version 0 creates each table; then batch 1, batch 3 and its retraction.
    assert_eq!(
        seen["collections"],
        TableSeen {
            version: 3,
            rows: 13,
            batches: vec![1]
        }
    );
    assert_eq!(
        seen["results"],
        TableSeen {
            version: 1,
            rows: 4,
            batches: vec![2]
        }
    );
    assert_eq!(seen["population"].rows, 0);
}

/// Every tenth version of a table gets a checkpoint. A reader given only the checkpoint
/// and the commits after it (the older commits deleted from a copy) sees the same
/// table: the checkpoint holds the files in it and the retracted ones taken out.
#[test]
fn a_checkpoint_alone_gives_a_delta_reader_the_same_table() {
    if !have_delta_reader("reading a checkpoint with delta-rs") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    for i in 0..11 {
        let f = dir.path().join(format!("b{i}.csv"));
        crate::crash::write_pools(&f, &format!("P{i:02}X"), 20, 10);
        ingest_collections(&store, "R1", &[f]);
    }
    // Version 12: batch 3 taken out; the checkpoint of version 10 came before.
    let out = run(pooltrack(&store).args(["retract", "--batch", "3", "--reason", "test"]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let log = store.join("collections/_delta_log");
    let last: Value = serde_json::from_slice(
        &std::fs::read(log.join("_last_checkpoint")).expect("_last_checkpoint"),
    )
    .expect("JSON");
    assert_eq!(last["version"], 10, "{last}");
    // Protocol, metadata and ten files.
    assert_eq!(last["size"], 12, "{last}");
    let full = delta_reader(&store);
    assert_eq!(full["collections"].rows, 200);
    assert_eq!(full["collections"].version, 12);
    assert!(!full["collections"].batches.contains(&3));

    let copy = dir.path().join("copy");
    crate::crash::copy_dir(&store, &copy);
    for v in 0..10 {
        std::fs::remove_file(copy.join(format!("collections/_delta_log/{v:020}.json")))
            .expect("remove an old commit");
    }
    let seen = delta_reader(&copy);
    assert_eq!(seen["collections"], full["collections"]);
}
