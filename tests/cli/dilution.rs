//! Dilution risk (issue 19, part 3): `pooltrack dilution` measures what pooling costs
//! from the round's own Ct values. On a generated round whose Cts follow the generator's
//! Ct model (`gen --ct-model`: a k-pool with one infected swab reads its Ct + log2 k),
//! the measured shift must come out near log2 k, and every figure must equal a count
//! made here from the generator's files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

const ROUND: &str = "2022-04-02";
const CUTOFF: f64 = 40.0;

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("a file")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// A results row's lower stated Ct, when it reads positive: the result word, or for
/// the lab that sends Cts only, both Cts stated.
fn positive_ct(row: &[String]) -> Option<f64> {
    let ct = |i: usize| row[i].parse::<f64>().ok();
    let positive = match row[1].as_str() {
        "positive" => true,
        "" => ct(2).is_some() && ct(3).is_some(),
        _ => false,
    };
    if !positive {
        return None;
    }
    match (ct(2), ct(3)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn dilution(store: &Path, args: &[&str]) -> Value {
    json_of(pooltrack(store).arg("dilution").args(args).arg("--json"))
}

fn rows<'a>(d: &'a Value, part: &str) -> &'a Vec<Value> {
    d[part].as_array().expect("rows")
}

fn find<'a>(d: &'a Value, part: &str, lab: &str, k: u64) -> &'a Value {
    rows(d, part)
        .iter()
        .find(|r| r["lab"] == lab && r["pool_size"] == k)
        .unwrap_or_else(|| panic!("a {part} row for {lab}, {k}"))
}

/// A generated round under the Ct model, ingested with its retests: 100,000 persons,
/// 2 % infected, sites pooling 5, 10 or 20, a tenth in single tubes.
fn ct_round(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let city = dir.join("city");
    stdout_of(
        pooltrack(&dir.join("unused"))
            .args([
                "gen",
                "--persons",
                "100000",
                "--prevalence",
                "0.02",
                "--pool-sizes",
                "5,10,20",
                "--pool-share",
                "0.9",
                "--ct-model",
                "--seed",
                "8",
                "--out",
            ])
            .arg(&city),
    );
    let store = dir.join("store");
    ingest_collections(
        &store,
        "R",
        &[
            city.join("collections.csv"),
            city.join("retest_collections.csv"),
        ],
    );
    ingest_results(
        &store,
        &[city.join("results.csv"), city.join("retest_results.csv")],
    );
    (city, store)
}

/// The measured shift: within 0.25 cycles of log2 k for each validated size. Each pool's
/// shift is two readings with noise sd 0.5 each (and the lower of two targets, N
/// spread ±1.5 around `ORF1ab`), so about 0.8 per pool; with over 300 pools of each size
/// the mean's own sd is below 0.05, and the pools the cut-off hid (their noise pushed
/// them past 40) pull it down by less than 0.05: 0.25 leaves room for both, and a
/// shift of log2 of another size (1 cycle away) could not pass.
#[test]
fn the_measured_shift_is_log2_k_on_a_round_with_a_known_shift() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (city, store) = ct_round(dir.path());
    let d = dilution(&store, &["--round", "R"]);

    // The count made here: positive pools whose retests found exactly one positive.
    let coll = read_csv(&city.join("collections.csv"));
    let mut members: HashMap<&str, u64> = HashMap::new();
    let mut pool_of: HashMap<&str, &str> = HashMap::new();
    for r in &coll {
        *members.entry(r[0].as_str()).or_default() += 1;
        if r[0].starts_with("PL") {
            pool_of.insert(r[1].as_str(), r[0].as_str());
        }
    }
    let results = read_csv(&city.join("results.csv"));
    let pool_ct: HashMap<&str, (f64, &str)> = results
        .iter()
        .filter(|r| r[0].starts_with("PL"))
        .filter_map(|r| positive_ct(r).map(|ct| (r[0].as_str(), (ct, r[5].as_str()))))
        .collect();
    let rt_person: HashMap<String, String> = read_csv(&city.join("retest_collections.csv"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let mut found: HashMap<&str, Vec<f64>> = HashMap::new();
    let rt_results = read_csv(&city.join("retest_results.csv"));
    for r in &rt_results {
        if let Some(ct) = positive_ct(r) {
            let person = &rt_person[&r[0]];
            found.entry(pool_of[person.as_str()]).or_default().push(ct);
        }
    }
    let mut shifts: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let mut several = 0;
    for (pool, cts) in &found {
        if cts.len() > 1 {
            several += 1;
            continue;
        }
        let (ct, _) = pool_ct[pool];
        shifts.entry(members[pool]).or_default().push(ct - cts[0]);
    }
    assert_eq!(d["positive_pools"], pool_ct.len() as u64);
    assert_eq!(d["pools_several_found"], several);
    let measured: usize = shifts.values().map(Vec::len).sum();
    assert_eq!(d["pools_measured"], measured as u64);
    for (&k, v) in &shifts {
        let row = find(&d, "shift", "(all)", k);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert_eq!(row["pools"], v.len() as u64, "k = {k}");
        let got = row["mean_shift"].as_f64().expect("a mean");
        // The store keeps Cts as 32-bit floats.
        assert!((got - mean).abs() < 1e-4, "k = {k}: {got} against {mean}");
        assert!(
            (row["expected_shift"].as_f64().expect("log2 k") - (k as f64).log2()).abs() < 1e-12
        );
    }
    for k in [5u64, 10, 20] {
        let row = find(&d, "shift", "(all)", k);
        let pools = row["pools"].as_u64().expect("pools");
        let mean = row["mean_shift"].as_f64().expect("a mean");
        let want = (k as f64).log2();
        assert!(pools > 300, "k = {k}: {pools} pools");
        assert!(
            (mean - want).abs() < 0.25,
            "k = {k}: mean shift {mean}, log2 k = {want}"
        );
        let p90 = row["p90_shift"].as_f64().expect("p90");
        assert!(p90 > mean, "k = {k}: p90 {p90} above the mean {mean}");
    }
    // The generator's own record of the truth agrees: a pool with one infected swab
    // holds exactly its Ct + log2 k (to the hundredth written).
    let truth = read_csv(&city.join("ct_truth.csv"));
    for t in truth
        .iter()
        .filter(|t| t[2].starts_with("PL") && t[4] == "1")
    {
        let k: f64 = t[3].parse().expect("a size");
        let shift: f64 = t[6].parse().expect("a shift");
        assert!((shift - k.log2()).abs() < 0.011, "{t:?}");
    }

    // Sensitivity per pool size, counted here from the first-stage single tubes.
    let mut singles: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in results.iter().filter(|r| r[0].starts_with("SG")) {
        if let Some(ct) = positive_ct(r) {
            singles.entry(r[5].as_str()).or_default().push(ct);
            singles.entry("(all)").or_default().push(ct);
        }
    }
    let mut previous = 1.0;
    for k in [5u64, 10, 20] {
        for (lab, cts) in &singles {
            let row = find(&d, "sensitivity", lab, k);
            let within = cts
                .iter()
                .filter(|&&ct| ct + (k as f64).log2() >= CUTOFF)
                .count() as u64;
            assert_eq!(row["single_positives"], cts.len() as u64, "{lab} {k}");
            assert_eq!(row["within_log2k"], within, "{lab} {k}");
            let want = 1.0 - within as f64 / cts.len() as f64;
            assert!((row["sensitivity"].as_f64().expect("a share") - want).abs() < 1e-12);
        }
        let all = find(&d, "sensitivity", "(all)", k)["sensitivity"]
            .as_f64()
            .expect("a share");
        assert!(all <= previous, "a larger pool misses at least as many");
        previous = all;
    }
    assert!(previous < 1.0, "a 20-pool misses some of these positives");
}

fn fixture_store(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("store");
    ingest_collections(
        &store,
        ROUND,
        &[
            testdata("prevalence_collections.csv"),
            testdata("prevalence_retest_collections.csv"),
        ],
    );
    ingest_results(
        &store,
        &[
            testdata("prevalence_results.csv"),
            testdata("prevalence_retest_results.csv"),
        ],
    );
    store
}

/// The fixture by hand: PV-P01 (5 persons) read 31.2 / 32.0 and its one positive
/// member pv-a1 30.0 / 30.5 in the retest: a shift of 31.2 − 30.0 = 1.2 against
/// log2 5 = 2.32. The one first-stage single positive, PV-S01, read 27.5: far from the
/// cut-off even in a 20-pool (27.5 + 4.32 < 40). PV-P06's positive was on a failed
/// plate and does not count.
#[test]
fn the_fixture_by_hand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = fixture_store(dir.path());
    let d = dilution(&store, &["--round", ROUND]);
    assert_eq!(
        (
            &d["positive_pools"],
            &d["pools_measured"],
            &d["single_positives"]
        ),
        (&1.into(), &1.into(), &1.into())
    );
    let shift = find(&d, "shift", "LAB-A", 5);
    assert!((shift["mean_shift"].as_f64().expect("a mean") - 1.2).abs() < 1e-5);
    assert_eq!(find(&d, "sensitivity", "(all)", 20)["sensitivity"], 1.0);
    // With the retests, pv-a1's single tube (30.0) counts too: two positives.
    let with = dilution(&store, &["--round", ROUND, "--with-retests"]);
    assert_eq!(with["single_positives"], 2);
    // A 64-pool (log2 64 = 6) would miss nothing here either: 30.0 + 6 < 40.
    let big = dilution(&store, &["--round", ROUND, "--pool-sizes", "64"]);
    assert_eq!(rows(&big, "sensitivity").len(), 2);
    assert_eq!(find(&big, "sensitivity", "(all)", 64)["within_log2k"], 0);

    let csv = dir.path().join("d.csv");
    let mut cmd = pooltrack(&store);
    cmd.args(["dilution", "--round", ROUND, "--out"]).arg(&csv);
    stdout_of(&mut cmd);
    let text = std::fs::read_to_string(&csv).expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "round,part,lab,pool_size,tubes,within_log2k,sensitivity,mean_shift,p90_shift,expected_shift"
    );
    // Sensitivity: LAB-A and (all) for 5, 10, 20; shift: LAB-A and (all) for 5.
    assert_eq!(lines.len(), 1 + 6 + 2, "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2022-04-02,shift,(all),5,1,,,1.2")),
        "{text}"
    );
    let pq = dir.path().join("d.parquet");
    let mut cmd = pooltrack(&store);
    cmd.args(["dilution", "--round", ROUND, "--out"]).arg(&pq);
    stdout_of(&mut cmd);
    let bytes = std::fs::read(&pq).expect("parquet");
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));

    let text = stdout_of(pooltrack(&store).args(["dilution", "--round", ROUND]));
    assert!(text.contains("1 positive pools, 1 measured"), "{text}");
}

#[test]
fn bad_requests_are_usage_errors_and_help_teaches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = fixture_store(dir.path());
    for args in [
        vec!["--round", "R9"],
        vec!["--round", ROUND, "--pool-sizes", "0"],
        vec![],
    ] {
        let out = run(pooltrack(&store).arg("dilution").args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_text(&out)
        );
    }
    let help = stdout_of(pooltrack(&store).args(["dilution", "--help"]));
    for want in [
        "log2(k)",
        "cut-off",
        "first-stage single-tube positives",
        "exactly one positive person",
        "lower stated Ct of ORF1ab and N",
        "Examples",
    ] {
        assert!(help.contains(want), "--help explains {want}");
    }
}

/// `plan --measure-round` takes each pool size's sensitivity from the round's Ct values:
/// the single tube's (from the plan) times the share of single-tube positives a k-pool
/// keeps under the cut-off, as `dilution` measures it, and runs the advisor again.
#[test]
fn plan_measure_round_takes_the_measured_pool_sensitivities() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, store) = ct_round(dir.path());
    let d = dilution(&store, &["--round", "R"]);
    let r = json_of(
        pooltrack(&store)
            .args(["plan", "--config"])
            .arg(crate::common::testdata("plan_advisor.toml"))
            .args(["--measure-round", "R", "--json"]),
    );
    let got = r["measured"]["pool_sensitivity"]
        .as_array()
        .expect("measured pool sensitivities");
    assert_eq!(got.len(), 3, "{got:?}");
    for k in [5u64, 10, 20] {
        let kept = find(&d, "sensitivity", "(all)", k)["sensitivity"]
            .as_f64()
            .expect("a measured share");
        let row = got
            .iter()
            .find(|g| g["pool_size"] == k)
            .unwrap_or_else(|| panic!("size {k}: {got:?}"));
        let se = row["sensitivity"].as_f64().expect("a sensitivity");
        // plan_advisor.toml: a single tube's sensitivity is 0.98.
        assert!(
            (se - 0.98 * kept).abs() < 1e-9,
            "size {k}: {se} against 0.98 × {kept}"
        );
        assert!(
            row["source"]
                .as_str()
                .is_some_and(|s| s.contains("round R")),
            "{row}"
        );
    }
    assert!(r["measured"]["advice"].is_object(), "the advisor ran again");
}

/// The README's worked example is what the command prints on its files.
#[test]
fn the_readme_example_is_what_dilution_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(
        &store,
        "R",
        &[
            testdata("dilution_example_collections.csv"),
            testdata("dilution_example_retest_collections.csv"),
        ],
    );
    ingest_results(
        &store,
        &[
            testdata("dilution_example_results.csv"),
            testdata("dilution_example_retest_results.csv"),
        ],
    );
    let printed = stdout_of(pooltrack(&store).args(["dilution", "--round", "R"]));
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let block = readme
        .split("```text\n$ pooltrack dilution --round R\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's dilution example");
    assert_eq!(printed, block);
    assert!(printed.contains("(all)     20          4              2       0.5000"));
}
