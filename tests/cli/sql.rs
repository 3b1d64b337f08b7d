//! The status rules as SQL (issue 18): `pooltrack sql status|recall` prints one query,
//! and `DuckDB` and Spark, reading the store's Delta tables with the `deltalake` Python
//! package (delta-rs, written apart from pooltrack), compute from it every person's
//! status and the recall list exactly as `pooltrack export status` and `pooltrack
//! worklist recall` give them, on a generated round with every status, failed plates,
//! replaced results, retests, a retraction and crashed batches, and on the hand-made
//! fixtures. The engines run in `sql_engines.py`: `DuckDB` over the datasets delta-rs
//! gives, Spark in local mode over the Parquet files the Delta log lists as committed.
//!
//! Outside CI, a machine without python3, `duckdb`, `pyspark`, `deltalake` or Java skips
//! the engines and says so; in CI (`.ci/run` installs them) they must run.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{in_ci, pooltrack, stdout_of, testdata};
use crate::rules::{
    csv_records, ingest_collections, ingest_results, round_status, run, stderr_text,
};

/// The engines this machine can run (`duckdb`, `spark`); without one, under CI this
/// panics, elsewhere it says on stderr what is skipped.
fn engines(check: &str) -> Vec<&'static str> {
    let python = |code: &str| {
        Command::new("python3")
            .args(["-c", code])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let java = Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut have = Vec::new();
    let mut missing = Vec::new();
    if python("import deltalake, pyarrow, duckdb") {
        have.push("duckdb");
    } else {
        missing.push("DuckDB (python3 cannot import duckdb, deltalake and pyarrow)");
    }
    if python("import deltalake, pyarrow, pyspark") && java {
        have.push("spark");
    } else {
        missing.push("Spark (python3 cannot import pyspark, deltalake and pyarrow, or no java)");
    }
    if !missing.is_empty() {
        let how = "pip install duckdb==2.0.1 pyspark==4.3.0 deltalake==1.6.6 pyarrow==26.0.1, \
                   and a Java 17 runtime (apt-get install openjdk-17-jre-headless)";
        assert!(
            !in_ci(),
            "{check}: cannot run on {}, and CI is set, so the check may not be skipped: {how}",
            missing.join(" and ")
        );
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {check}, on {}: {how} to run it, or run with CI=true to make this a failure",
            missing.join(" and ")
        );
    }
    have
}

/// `pooltrack sql LIST --round ROUND --dialect DIALECT`.
fn sql(store: &Path, list: &str, round: &str, dialect: &str) -> String {
    stdout_of(pooltrack(store).args(["sql", list, "--round", round, "--dialect", dialect]))
}

/// A store whose round the engines decide.
struct Case {
    name: &'static str,
    store: PathBuf,
    round: &'static str,
}

/// Writes `text` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write a file");
    p
}

/// A generated CSV as a header and records.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("readable csv");
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("record").iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).expect("writable csv");
    w.write_record(header).expect("header");
    for r in rows {
        w.write_record(r).expect("row");
    }
    w.flush().expect("flush");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// Leaves on disk the Parquet file of a batch that crashed before its commit: the batch
/// is ingested into a copy of the store and its file copied back without the commit, as
/// a writer killed between writing its files and committing leaves it. Returns its id.
fn crashed_batch(store: &Path, scratch: &Path, ingest: &dyn Fn(&Path)) -> u64 {
    let copy = scratch.join("copy");
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(store, &copy);
    let before: BTreeSet<PathBuf> = parquet_files(&copy).into_iter().collect();
    ingest(&copy);
    let new: Vec<PathBuf> = parquet_files(&copy)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "one new segment file: {new:?}");
    let rel = new[0].strip_prefix(&copy).expect("inside the copy");
    std::fs::copy(&new[0], store.join(rel)).expect("copy the crashed file");
    let name = rel.file_name().and_then(|n| n.to_str()).expect("a name");
    name.trim_start_matches('b')
        .trim_end_matches(".parquet")
        .parse()
        .expect("a batch id")
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A generated round of 8,000 persons with its incidents (a failed plate, a discordant
/// pool) and every status: half the recalled persons retested, half of those with a
/// result; a later results batch with a positive pool reported negative (kept
/// positive), single tubes turned invalid and inconclusive, a pool turned inconclusive
/// and one invalid; a batch of two files whose rows tie on a tube's time (the later
/// file wins); a retracted batch; and a crashed batch in each table.
fn generated_case(dir: &Path) -> (Case, Vec<u64>) {
    const ROUND: &str = "2022-04-02";
    let city = dir.join("city");
    let store = dir.join("store");
    stdout_of(
        pooltrack(&store)
            .args(["gen", "--persons", "8000", "--prevalence", "0.02"])
            .args(["--seed", "5", "--incidents", "--out"])
            .arg(&city),
    );
    ingest_collections(&store, ROUND, &[city.join("collections.csv")]);
    ingest_results(&store, &[city.join("results.csv")]);
    // Half the retests collected; results for half of those.
    let (head, retests) = read_csv(&city.join("retest_collections.csv"));
    let taken = &retests[..retests.len() / 2];
    let retest_file = dir.join("retests_half.csv");
    write_csv(&retest_file, &head, taken);
    ingest_collections(&store, ROUND, &[retest_file]);
    let taken_tubes: BTreeSet<&str> = taken.iter().map(|r| r[0].as_str()).collect();
    let (rhead, rrows) = read_csv(&city.join("retest_results.csv"));
    let tube_col = rhead.iter().position(|h| h == "tube").expect("tube");
    let type_col = rhead.iter().position(|h| h == "sample_type").expect("type");
    let mut answered: Vec<Vec<String>> = rrows
        .iter()
        .filter(|r| r[type_col] == "sample" && taken_tubes.contains(r[tube_col].as_str()))
        .cloned()
        .collect();
    answered.truncate(answered.len() / 2);
    let answered_file = dir.join("retest_results_half.csv");
    write_csv(&answered_file, &rhead, &answered);
    ingest_results(&store, &[answered_file]);

    // Tubes by their first result, to change some of them later.
    let (h, first) = read_csv(&city.join("results.csv"));
    let col = |name: &str| h.iter().position(|c| c == name).expect("column");
    let (tube, result, kind) = (col("tube"), col("result"), col("sample_type"));
    let pick = |prefix: &str, word: &str, n: usize| -> Vec<String> {
        first
            .iter()
            .filter(|r| r[kind] == "sample" && r[result] == word && r[tube].starts_with(prefix))
            .map(|r| r[tube].clone())
            .take(n)
            .collect()
    };
    let positive_pool = pick("PL", "positive", 1);
    let negative_singles = pick("SG", "negative", 6);
    let negative_pools = pick("PL", "negative", 3);
    let late = |tube: &str, word: &str| format!("{tube},{word},2022-04-03 20:00:00,L9,P9\n");
    let mut text = String::from("tube,result,reported_at,lab,plate\n");
    text += &late(&positive_pool[0], "negative");
    for t in &negative_singles[..2] {
        text += &late(t, "invalid");
    }
    text += &late(&negative_singles[2], "inconclusive");
    text += &late(&negative_pools[0], "inconclusive");
    text += &late(&negative_pools[1], "invalid");
    ingest_results(&store, &[write(dir, "late.csv", &text)]);
    // One batch of two files: the same tube at the same time in each, invalid in the
    // first file's third line, negative in the second file's second. The later file is
    // read later, so negative counts (line order alone would say invalid). Their names
    // hold a quote and a backslash, which the query's literals must carry.
    let tie = "2022-04-03 21:00:00";
    let a = write(
        dir,
        "lab's tie a.csv",
        &format!(
            "tube,result,reported_at\n{},negative,{tie}\n{},invalid,{tie}\n",
            negative_singles[4], negative_singles[3]
        ),
    );
    let b = write(
        dir,
        r"tie\b.csv",
        &format!(
            "tube,result,reported_at\n{},negative,{tie}\n",
            negative_singles[3]
        ),
    );
    ingest_results(&store, &[a, b]);
    // A batch that turned a pool positive, taken back.
    let wrong = ingest_results(
        &store,
        &[write(
            dir,
            "wrong.csv",
            &format!(
                "tube,result,ct_orf1ab,ct_n,reported_at\n{},positive,25,26,2022-04-03 22:00:00\n",
                negative_pools[2]
            ),
        )],
    );
    let wrong_id = wrong["batch"].as_u64().expect("a batch");
    let out = run(pooltrack(&store)
        .args(["retract", "--batch", &wrong_id.to_string()])
        .args(["--reason", "another round's file"]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    // Crashed batches: new persons in a pool, and every single tube positive.
    let crash_rows = write(
        dir,
        "crash_collections.csv",
        "tube,person,mode,collected_at\nCRASH-0001,crash-1,pool,2022-04-02 10:00:00\n",
    );
    let crashed_c = crashed_batch(&store, dir, &|s: &Path| {
        ingest_collections(s, ROUND, std::slice::from_ref(&crash_rows));
    });
    let crash_results: String =
        std::iter::once("tube,result,ct_orf1ab,ct_n,reported_at\n".to_owned())
            .chain(
                first
                    .iter()
                    .filter(|r| r[kind] == "sample" && r[tube].starts_with("SG"))
                    .map(|r| format!("{},positive,20,21,2022-04-03 23:00:00\n", r[tube])),
            )
            .collect();
    let crash_results = write(dir, "crash_results.csv", &crash_results);
    let crashed_r = crashed_batch(&store, dir, &|s: &Path| {
        ingest_results(s, std::slice::from_ref(&crash_results));
    });
    (
        Case {
            name: "generated",
            store,
            round: ROUND,
        },
        vec![crashed_c, crashed_r, wrong_id],
    )
}

/// The plate QC fixture ingested with the lenient control cut-off in force (`lenient`:
/// P1 passes) or the default one (P1 fails), the other put in force afterwards.
fn qc_with_config_change(store: &Path, lenient: bool) {
    ingest_collections(store, "2022-04-02", &[testdata("qc_collections.csv")]);
    let config = store.join("pooltrack.toml");
    let put_lenient = || {
        std::fs::copy(testdata("qc_config_lenient.toml"), &config).expect("cp");
    };
    if lenient {
        put_lenient();
    }
    ingest_results(store, &[testdata("qc_results_plate_fail.csv")]);
    if lenient {
        std::fs::remove_file(&config).expect("rm");
    } else {
        put_lenient();
    }
}

/// Two tubes whose mode only rows not in the table state. HM-SG-1: a batch called it
/// single and was retracted after a later batch added the tube's one remaining person
/// without a mode. HM-SG-2: its person was scanned twice in one file, first without a
/// mode, then (the repeat, kept once) as single. Both are single tubes to pooltrack, so
/// their positive results make their persons positive, not recalled.
fn hidden_tube_modes(store: &Path, dir: &Path) {
    let wrong = "tube,person,mode,collected_at\nHM-SG-1,hm-wrong,single,2022-04-02 08:00:00\n";
    let c = ingest_collections(store, "R1", &[write(dir, "hm_wrong.csv", wrong)]);
    let added = "tube,person,mode,collected_at\nHM-SG-1,hm-1,,2022-04-02 08:01:00\n";
    ingest_collections(store, "R1", &[write(dir, "hm_added.csv", added)]);
    let batch = c["batch"].as_u64().expect("a batch").to_string();
    let out =
        run(pooltrack(store).args(["retract", "--batch", &batch, "--reason", "wrong person"]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let repeated = "tube,person,mode,collected_at\n\
        HM-SG-2,hm-2,,2022-04-02 08:02:00\n\
        HM-SG-2,hm-2,single,2022-04-02 08:02:05\n";
    ingest_collections(store, "R1", &[write(dir, "hm_repeated.csv", repeated)]);
    let results = "tube,result,ct_orf1ab,ct_n,reported_at\n\
        HM-SG-1,positive,25,26,2022-04-02 12:00:00\n\
        HM-SG-2,positive,27,28,2022-04-02 12:00:00\n";
    ingest_results(store, &[write(dir, "hm_results.csv", results)]);
}

/// The hand-made fixtures, each in a store of its own.
fn fixture_cases(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &'static str, round: &'static str, build: &dyn Fn(&Path)| {
        let store = dir.join(name);
        build(&store);
        cases.push(Case { name, store, round });
    };
    let c = |s: &Path, round: &str, file: &str| {
        ingest_collections(s, round, &[testdata(file)]);
    };
    let r = |s: &Path, file: &str| {
        ingest_results(s, &[testdata(file)]);
    };
    add("precedence", "R1", &|s| {
        c(s, "R1", "precedence_collections.csv");
        r(s, "precedence_results.csv");
    });
    add("replace", "R1", &|s| {
        c(s, "R1", "replace_collections.csv");
        r(s, "replace_results_first.csv");
        r(s, "replace_results_second.csv");
    });
    add("replace_late_positive", "R1", &|s| {
        c(s, "R1", "replace_collections.csv");
        r(s, "replace_results_second.csv");
        r(s, "replace_results_first.csv");
    });
    // Results past the specimen limit: a pool, a retest and a re-test that do not
    // count, one at exactly 48 h that does.
    add("specimen_limit", "R1", &|s| {
        c(s, "R1", "specimen_limit_collections.csv");
        r(s, "specimen_limit_results.csv");
    });
    add("qc_failed_plate", "2022-04-02", &|s| {
        c(s, "2022-04-02", "qc_collections.csv");
        r(s, "qc_results_plate_fail.csv");
    });
    add("qc_rerun", "2022-04-02", &|s| {
        c(s, "2022-04-02", "qc_collections.csv");
        r(s, "qc_results_plate_fail.csv");
        r(s, "qc_results_rerun.csv");
    });
    add("qc_positive_control", "2022-04-02", &|s| {
        c(s, "2022-04-02", "qc_collections.csv");
        r(s, "qc_results_positive_control_fail.csv");
    });
    // The control cut-offs changed after the results were ingested: the query lists the
    // plates the batches recorded as failed (none, then LAB-Q's P1).
    add("qc_recorded_passed", "2022-04-02", &|s| {
        qc_with_config_change(s, true);
    });
    add("qc_recorded_failed", "2022-04-02", &|s| {
        qc_with_config_change(s, false);
    });
    // A lab whose name holds a quote and a backslash, its plate recorded as failed: the
    // literal is written as each dialect reads it.
    add("qc_recorded_quoted_lab", "R1", &|s| {
        let collections = "tube,person,mode,collected_at\n\
            QL-POOL-1,ql-1,pool,2022-04-02 08:00:00\n\
            QL-POOL-1,ql-2,pool,2022-04-02 08:00:10\n\
            QL-SG-1,ql-3,single,2022-04-02 08:01:00\n";
        let results = "tube,sample_type,result,ct_orf1ab,ct_n,reported_at,lab,plate\n\
            QL-POOL-1,sample,positive,25,26,2022-04-02 12:00:00,Lab 'Q' \\ 1,P1\n\
            QL-SG-1,sample,negative,,,2022-04-02 12:00:00,Lab 'Q' \\ 1,P1\n\
            NC-1,negative_control,,31.2,,2022-04-02 12:00:00,Lab 'Q' \\ 1,P1\n\
            PC-1,positive_control,,30.1,30.9,2022-04-02 12:00:00,Lab 'Q' \\ 1,P1\n";
        ingest_collections(s, "R1", &[write(dir, "ql_collections.csv", collections)]);
        ingest_results(s, &[write(dir, "ql_results.csv", results)]);
        std::fs::copy(testdata("qc_config_lenient.toml"), s.join("pooltrack.toml")).expect("cp");
    });
    add("ct_mixed", "R1", &|s| {
        c(s, "R1", "ct_collections.csv");
        r(s, "ct_mixed_results.csv");
        r(s, "ct_only_results.csv");
    });
    add("ct_cutoff", "R1", &|s| {
        c(s, "R1", "ct_collections.csv");
        r(s, "ct_cutoff_before_results.csv");
        stdout_of(pooltrack(s).args(["config", "--ct-cutoff", "35"]));
        r(s, "ct_cutoff_after_results.csv");
    });
    add("review", "2022-04-02", &|s| {
        c(s, "2022-04-02", "review_collections.csv");
        r(s, "review_results.csv");
        c(s, "2022-04-02", "review_retests_collections.csv");
        r(s, "review_retest_results.csv");
    });
    add("tube_modes", "R1", &|s| {
        c(s, "R1", "single_tube_two_persons_collections.csv");
        c(s, "R1", "single_tube_later_person_collections.csv");
        c(s, "R1", "conflict_collections.csv");
        c(s, "R1", "conflict_later_collections.csv");
        c(s, "R1", "duplicate_scan_collections.csv");
        c(s, "R1", "duplicate_scan_again_collections.csv");
        let results = "tube,result,ct_orf1ab,ct_n,reported_at\n\
            SGL-0001,positive,24,25,2022-04-02 12:00:00\n\
            SGL-0002,positive,26,27,2022-04-02 12:00:00\n\
            CONF-POOL-10,inconclusive,36,,2022-04-02 12:00:00\n\
            DUP-POOL-01,positive,30,,2022-04-02 12:00:00\n";
        ingest_results(s, &[write(dir, "tube_modes_results.csv", results)]);
    });
    add("hidden_tube_modes", "R1", &|s| hidden_tube_modes(s, dir));
    add("edge_rules", "R1", &|s| {
        // Two positive pools (the lower Ct recalls), a pool without Ct values against
        // one with them, a positive pool followed by a negative pool (not a retest), a
        // negative single tube collected at the same moment as the positive pool (not
        // after it), an invalid tube and a negative one at the same moment, and two
        // negative tubes at the same moment (the later row decides).
        let collections = "tube,person,mode,collected_at\n\
            EDGE-POOL-A,two-pools,pool,2022-04-02 08:00:00\n\
            EDGE-POOL-B,two-pools,pool,2022-04-02 09:00:00\n\
            EDGE-POOL-H,no-ct-pool,pool,2022-04-02 08:00:00\n\
            EDGE-POOL-I,no-ct-pool,pool,2022-04-02 09:00:00\n\
            EDGE-POOL-C,pool-then-pool,pool,2022-04-02 08:00:00\n\
            EDGE-POOL-D,pool-then-pool,pool,2022-04-02 10:00:00\n\
            EDGE-POOL-E,same-moment,pool,2022-04-02 08:00:00\n\
            EDGE-SG-E,same-moment,single,2022-04-02 08:00:00\n\
            EDGE-SG-F1,invalid-same-moment,single,2022-04-02 08:00:00\n\
            EDGE-SG-F2,invalid-same-moment,single,2022-04-02 08:00:00\n\
            EDGE-SG-G1,negative-twice,single,2022-04-02 08:00:00\n\
            EDGE-SG-G2,negative-twice,single,2022-04-02 08:00:00\n";
        let results = "tube,result,ct_orf1ab,ct_n,reported_at\n\
            EDGE-POOL-A,positive,33,34,2022-04-02 12:00:00\n\
            EDGE-POOL-B,positive,25,24,2022-04-02 12:00:00\n\
            EDGE-POOL-H,positive,,,2022-04-02 12:00:00\n\
            EDGE-POOL-I,positive,35,,2022-04-02 12:00:00\n\
            EDGE-POOL-C,positive,30,31,2022-04-02 12:00:00\n\
            EDGE-POOL-D,negative,,,2022-04-02 12:00:00\n\
            EDGE-POOL-E,positive,30,30,2022-04-02 12:00:00\n\
            EDGE-SG-E,negative,,,2022-04-02 12:00:00\n\
            EDGE-SG-F1,invalid,,,2022-04-02 12:00:00\n\
            EDGE-SG-F2,negative,,,2022-04-02 12:00:00\n\
            EDGE-SG-G1,negative,,,2022-04-02 12:00:00\n\
            EDGE-SG-G2,negative,,,2022-04-02 12:00:00\n";
        ingest_collections(s, "R1", &[write(dir, "edge_collections.csv", collections)]);
        ingest_results(s, &[write(dir, "edge_results.csv", results)]);
    });
    cases
}

/// Every person of the round as `export status` gives them: (person, status, tube).
fn exported(store: &Path, round: &str) -> Vec<(String, String, String)> {
    let out = stdout_of(pooltrack(store).args(["export", "status", "--round", round]));
    csv_records(&out)
        .into_iter()
        .map(|r| (r["person"].clone(), r["status"].clone(), r["tube"].clone()))
        .collect()
}

/// The recall list as `worklist recall` gives it: (person, tube), in its order.
fn recall_list(store: &Path, round: &str) -> Vec<(String, String)> {
    let out = stdout_of(pooltrack(store).args(["worklist", "recall", "--round", round]));
    csv_records(&out)
        .into_iter()
        .map(|r| (r["person"].clone(), r["tube"].clone()))
        .collect()
}

fn triples(v: &Value) -> Vec<(String, String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or("").to_owned();
            (s(0), s(1), s(2))
        })
        .collect()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap_or("").to_owned();
            (s(0), s(1))
        })
        .collect()
}

fn ids(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|b| b.as_u64().expect("a batch id"))
        .collect()
}

/// Runs every case's queries on the engines, in one Python process (one Spark session).
fn run_engines(engines: &[&str], cases: &[Case]) -> Value {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            let q = |list: &str| {
                json!({
                    "duckdb": sql(&c.store, list, c.round, "duckdb"),
                    "spark": sql(&c.store, list, c.round, "spark"),
                })
            };
            json!({
                "name": c.name,
                "store": c.store,
                "batches": c.name == "generated",
                "queries": {"status": q("status"), "recall": q("recall")},
            })
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/sql_engines.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(engines.join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let body = serde_json::to_vec(&input).expect("JSON");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("write the cases");
    let out = child.wait_with_output().expect("the engines finish");
    assert!(
        out.status.success(),
        "the engines failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the engines")
}

/// The first few differences between two lists, for a failure message.
fn differences<T: std::fmt::Debug + PartialEq>(want: &[T], got: &[T]) -> String {
    let diffs: Vec<String> = want
        .iter()
        .zip(got)
        .filter(|(w, g)| w != g)
        .take(5)
        .map(|(w, g)| format!("pooltrack {w:?}, engine {g:?}"))
        .collect();
    format!(
        "{} rows from pooltrack, {} from the engine; first differences: {}",
        want.len(),
        got.len(),
        diffs.join("; ")
    )
}

#[test]
fn duckdb_and_spark_decide_every_person_as_pooltrack_does() {
    let engines = engines("running pooltrack's SQL");
    if engines.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = dir.path().join("generated");
    std::fs::create_dir_all(&generated).expect("mkdir");
    let (case, unseen) = generated_case(&generated);
    // The generated round has every status, a failed plate and a positive kept.
    let statuses: BTreeSet<String> = exported(&case.store, case.round)
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert_eq!(statuses.len(), 6, "every status: {statuses:?}");
    let counts = round_status(&case.store, case.round);
    assert!(counts["positives_kept"].as_u64() >= Some(1), "{counts}");
    assert!(counts["tubes_to_rerun"].as_u64() >= Some(1), "{counts}");
    // The incidents' tube tested past the specimen limit: its persons need a resample.
    assert_eq!(counts["tubes_past_limit"], 1, "{counts}");
    let mut cases = vec![case];
    cases.extend(fixture_cases(&dir.path().join("fixtures")));
    let seen = run_engines(&engines, &cases);
    for case in &cases {
        let want = exported(&case.store, case.round);
        let want_recall = recall_list(&case.store, case.round);
        let of = &seen[case.name];
        for engine in &engines {
            let got = triples(&of[*engine]["status"]);
            assert!(
                got == want,
                "{} on {}: {}",
                engine,
                case.name,
                differences(&want, &got)
            );
            let recall = pairs(&of[*engine]["recall"]);
            assert!(
                recall == want_recall,
                "{} recall list on {}: {}",
                engine,
                case.name,
                differences(&want_recall, &recall)
            );
        }
    }
    // No engine sees a row of the crashed batches or the retracted one; a reader that
    // globs the folders sees them all.
    let of = &seen["generated"];
    for table in ["collections", "results"] {
        let globbed = ids(&of["glob_batches"][table]);
        for engine in &engines {
            let seen_batches = ids(&of[*engine]["batches"][table]);
            assert!(
                seen_batches.is_subset(&globbed) && !seen_batches.is_empty(),
                "{engine} {table}: {seen_batches:?} of {globbed:?}"
            );
            for id in &unseen {
                assert!(
                    !seen_batches.contains(id),
                    "{engine} sees batch {id} in {table}"
                );
            }
        }
    }
    let globbed: BTreeSet<u64> = ["collections", "results"]
        .iter()
        .flat_map(|t| ids(&of["glob_batches"][*t]))
        .collect();
    for id in &unseen {
        assert!(globbed.contains(id), "batch {id} is on disk: {globbed:?}");
    }
}

/// `sql LIST --round R` with extra arguments: its output, exit code and stderr.
fn sql_run(store: &Path, args: &[&str]) -> (String, Option<i32>, String) {
    let out = run(pooltrack(store).arg("sql").args(args));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
        stderr_text(&out),
    )
}

#[test]
fn the_query_names_its_round_tables_and_cutoffs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, "R1", &[testdata("precedence_collections.csv")]);
    ingest_results(&store, &[testdata("precedence_results.csv")]);
    let status = sql(&store, "status", "R1", "duckdb");
    assert!(status.starts_with("-- pooltrack "), "{status}");
    assert_eq!(status.matches("round = 'R1'").count(), 4, "{status}");
    // The store's specimen limit, 48 h unless pooltrack.toml says otherwise.
    assert!(
        status.contains("first_swab + INTERVAL '172800.000' SECOND"),
        "{status}"
    );
    for word in [
        "positive",
        "recall",
        "retest_pending",
        "resample",
        "pending",
        "negative",
    ] {
        assert!(
            status.contains(&format!("THEN '{word}'")),
            "{word}: {status}"
        );
    }
    // The store's Ct cut-off is the controls' cut-off while pooltrack.toml sets none.
    assert!(status.contains("< CAST(40 AS REAL)"), "{status}");
    assert!(status.trim_end().ends_with("ORDER BY person"), "{status}");
    let recall = sql(&store, "recall", "R1", "spark");
    assert!(recall.contains("WHERE status = 'recall'"), "{recall}");
    assert!(recall.contains("Spark SQL"), "{recall}");
    // Other table names, and the query written to a file.
    let file = dir.path().join("status.sql");
    let (out, code, err) = sql_run(
        &store,
        &[
            "status",
            "--round",
            "R1",
            "--collections-table",
            "city_a.collections",
            "--results-table",
            "city_a.results",
            "--out",
        ],
    );
    assert_eq!(code, Some(2), "--out needs a file: {out}{err}");
    let (out, code, err) = sql_run(
        &store,
        &[
            "status",
            "--round",
            "R1",
            "--collections-table",
            "city_a.collections",
            "--results-table",
            "city_a.results",
            "--out",
            file.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "{out}");
    let text = std::fs::read_to_string(&file).expect("the query file");
    assert!(
        text.contains("FROM city_a.collections WHERE round"),
        "{text}"
    );
    assert!(text.contains("FROM city_a.results"), "{text}");
    assert!(!text.contains("FROM collections "), "{text}");
}

#[test]
fn sql_refuses_what_it_cannot_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let (_, code, err) = sql_run(&store, &["status", "--round", "R1"]);
    assert_eq!(code, Some(2), "no store: {err}");
    ingest_collections(&store, "R1", &[testdata("precedence_collections.csv")]);
    let (_, code, err) = sql_run(&store, &["status", "--round", "R9"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("R9") && err.contains("R1"), "{err}");
    let (_, code, err) = sql_run(&store, &["status", "--round", "R1", "--results-table", " "]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--results-table"), "{err}");
    let (_, code, err) = sql_run(&store, &["status", "--round", "R1", "--dialect", "oracle"]);
    assert_eq!(code, Some(2), "{err}");
    // A store of the previous format has no Delta tables for an engine to read.
    let old = dir.path().join("old");
    copy_dir(&testdata("format2_store"), &old);
    let log = stdout_of(pooltrack(&old).arg("log"));
    assert!(log.contains("round R1"), "{log}");
    let (_, code, err) = sql_run(&old, &["status", "--round", "R1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("pooltrack migrate"), "{err}");
}

#[test]
fn changed_control_cutoffs_give_the_recorded_plates() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Ingested at the default cut-off (plate P1 fails), read at 30 (it would pass).
    let failed = dir.path().join("failed");
    qc_with_config_change(&failed, false);
    let (out, code, err) = sql_run(&failed, &["status", "--round", "2022-04-02"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("the control cut-offs changed"), "{err}");
    assert!(
        out.contains("failed_plates AS (\n  SELECT 'LAB-Q' AS lab, 'P1' AS plate\n)"),
        "{out}"
    );
    assert!(!out.contains("negative_control"), "{out}");
    // Ingested at 30 (P1 passes), read at the default: no plate failed.
    let passed = dir.path().join("passed");
    qc_with_config_change(&passed, true);
    let (out, _, err) = sql_run(&passed, &["status", "--round", "2022-04-02"]);
    assert!(err.contains("the control cut-offs changed"), "{err}");
    assert!(out.contains("WHERE 1 = 0"), "{out}");
    // Unchanged cut-offs: the controls are read, and nothing is said.
    let same = dir.path().join("same");
    ingest_collections(&same, "2022-04-02", &[testdata("qc_collections.csv")]);
    ingest_results(&same, &[testdata("qc_results_plate_fail.csv")]);
    let (out, _, err) = sql_run(&same, &["status", "--round", "2022-04-02"]);
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("sample_type = 'negative_control'"), "{out}");
}

#[test]
fn tube_modes_the_table_cannot_show_are_written_into_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    hidden_tube_modes(&store, dir.path());
    let statuses = exported(&store, "R1");
    let status_of = |p: &str| {
        statuses
            .iter()
            .find(|(person, _, _)| person == p)
            .map(|(_, s, _)| s.as_str())
    };
    assert_eq!(status_of("hm-1"), Some("positive"));
    assert_eq!(status_of("hm-2"), Some("positive"));
    let text = sql(&store, "status", "R1", "duckdb");
    assert!(
        text.contains("WHEN tube IN ('HM-SG-1', 'HM-SG-2') THEN 'single'"),
        "{text}"
    );
    // A round whose rows say it all needs no such list.
    let plain = dir.path().join("plain");
    ingest_collections(
        &plain,
        "R1",
        &[testdata("single_tube_two_persons_collections.csv")],
    );
    assert!(!sql(&plain, "status", "R1", "duckdb").contains("WHEN tube IN"));
}

#[test]
fn sql_help_teaches_with_an_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = stdout_of(pooltrack(dir.path()).args(["sql", "--help"]));
    for needle in [
        "pooltrack sql status --round 2022-04-02",
        "DeltaTable",
        "reported_at",
        "positive, recall, retest_pending, resample, pending, negative",
        "--dialect",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}
