//! Prevalence by area (issue 19, part 1): `pooltrack prevalence` estimates the
//! prevalence of a round from its first-stage tubes of mixed sizes. Each test checks
//! the command against a computation of its own: the tubes counted from the generator's
//! files or a fixture counted by hand, and the likelihood written out here and
//! maximised by brute force over a fine grid (not the crate's search).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{
    assert_chromium_ok, browser, chromium, json_of, pooltrack, stdout_of, testdata,
};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

/// χ² with one degree of freedom, 95 %.
const CHI2_95: f64 = 3.841_458_820_694_124;
const ROUND: &str = "2022-04-02";

/// Tubes by size: (positive, negative).
type Tubes = BTreeMap<u32, (u64, u64)>;

/// The log-likelihood of prevalence `p`, written out from its definition: a tube of
/// `k` is positive with probability `se·(1 − (1 − p)^k) + (1 − sp)·(1 − p)^k`.
fn log_likelihood(p: f64, tubes: &Tubes, se: f64, sp: f64) -> f64 {
    tubes
        .iter()
        .map(|(&k, &(pos, neg))| {
            let none = (1.0 - p).powi(i32::try_from(k).expect("a small size"));
            let positive = se * (1.0 - none) + (1.0 - sp) * none;
            let mut l = 0.0;
            if pos > 0 {
                l += pos as f64 * positive.ln();
            }
            if neg > 0 {
                l += neg as f64 * (1.0 - positive).ln();
            }
            l
        })
        .sum()
}

/// The maximum over `steps + 1` grid points across `[0, top]`, and the first and last
/// grid points whose log-likelihood is within χ²/2 of it: (p̂, lower, upper).
fn grid_estimate(tubes: &Tubes, se: f64, sp: f64, top: f64, steps: u32) -> (f64, f64, f64) {
    let points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let p = top * f64::from(i) / f64::from(steps);
            (p, log_likelihood(p, tubes, se, sp))
        })
        .filter(|(_, l)| l.is_finite())
        .collect();
    let (p_hat, best) =
        points.iter().copied().fold(
            (0.0, f64::NEG_INFINITY),
            |a, b| if b.1 > a.1 { b } else { a },
        );
    let cut = best - CHI2_95 / 2.0;
    let inside: Vec<f64> = points
        .iter()
        .filter(|(_, l)| *l >= cut)
        .map(|(p, _)| *p)
        .collect();
    (p_hat, inside[0], inside[inside.len() - 1])
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// `prevalence --json` with extra arguments.
fn prevalence(store: &Path, args: &[&str]) -> Value {
    json_of(pooltrack(store).arg("prevalence").args(args).arg("--json"))
}

/// The row of `area` (and round) in a `--json` report.
fn row<'a>(report: &'a Value, round: &str, area: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["round"] == round && r["area"] == area)
        .unwrap_or_else(|| panic!("a row for {area} in {round}: {report}"))
}

/// Generates a city with `gen ARGS --out DIR`.
fn generate(dir: &Path, args: &[&str]) {
    stdout_of(
        pooltrack(&dir.join("unused"))
            .arg("gen")
            .args(args)
            .arg("--out")
            .arg(dir),
    );
}

/// Ingests a generated city's first stage and retests into `store` as `round`.
fn ingest_city(store: &Path, city: &Path, round: &str) {
    ingest_collections(
        store,
        round,
        &[
            city.join("collections.csv"),
            city.join("retest_collections.csv"),
        ],
    );
    ingest_results(
        store,
        &[city.join("results.csv"), city.join("retest_results.csv")],
    );
}

/// The first-stage tubes of a generated city, counted from its files: a tube's size
/// from `collections.csv`, positive when `results.csv` says so (or, for the lab that
/// sends Cts only, when both Cts are stated: the generator writes them below 40).
fn count_city(city: &Path) -> Tubes {
    let text = |name: &str| std::fs::read_to_string(city.join(name)).expect("a city file");
    let mut size: BTreeMap<String, u32> = BTreeMap::new();
    for line in text("collections.csv").lines().skip(1) {
        let tube = line.split(',').next().expect("a tube");
        *size.entry(tube.to_owned()).or_default() += 1;
    }
    let mut tubes = Tubes::new();
    for line in text("results.csv").lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let positive = match f[1] {
            "positive" => true,
            "negative" => false,
            "" => !f[2].is_empty() && !f[3].is_empty(),
            other => panic!("a result word: {other}"),
        };
        let e = tubes.entry(size[f[0]]).or_default();
        if positive {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    tubes
}

fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} against {want} (tolerance {tol})"
    );
}

/// The fixture round: first-stage tubes, their retests, and a plate that failed.
fn fixture_store(dir: &Path) -> PathBuf {
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

/// The fixture, counted by hand (testdata/prevalence_*.csv):
/// - PV-P01 (5) positive, PV-P02 (5) negative, PV-S01 (1) positive, PV-S02 (1) negative;
/// - PV-P03 (10): negative on plate F1, whose negative control amplified (void), then
///   negative on plate B2: one negative;
/// - PV-P06 (10): positive on F1 (void), negative on B2: one negative, not positive;
/// - PV-P04 (10): only a void result: left out, without a result;
/// - PV-P05 (10): inconclusive: left out;
/// - PV-RT01..05: single retests of PV-P01's members (one positive): follow-ups, left
///   out, or they would count pv-a1..a5 twice.
///
/// So 6 tubes, 32 persons, 2 positive: sizes 1 (1+, 1−), 5 (1+, 1−), 10 (0+, 2−).
#[test]
fn the_fixture_counts_first_stage_tubes_once_and_no_void_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = fixture_store(dir.path());
    let r = prevalence(&store, &["--round", ROUND, "--by", "site"]);
    assert_eq!(r["rounds"][0]["first_stage_tubes"], 8, "{r}");
    assert_eq!(r["rounds"][0]["follow_up_tubes"], 5, "{r}");
    let all = row(&r, ROUND, "(all)");
    let counts: Vec<u64> = [
        "tubes",
        "persons",
        "positive_tubes",
        "negative_tubes",
        "inconclusive_tubes",
        "invalid_tubes",
        "tubes_without_result",
    ]
    .iter()
    .map(|k| all[k].as_u64().expect("a count"))
    .collect();
    assert_eq!(counts, [6, 32, 2, 4, 1, 0, 1], "{all}");
    assert_eq!(all["tubes_by_size"], "1:2 5:2 10:2");
    let tubes: Tubes = [(1, (1, 1)), (5, (1, 1)), (10, (0, 2))].into();
    let (p, lo, hi) = grid_estimate(&tubes, 1.0, 1.0, 0.5, 500_000);
    let step = 0.5 / 500_000.0;
    assert_close("p̂", num(&all["prevalence"]), p, step);
    assert_close("lower", num(&all["lower"]), lo, step);
    assert_close("upper", num(&all["upper"]), hi, step);
    assert_close("positives", num(&all["positives"]), 32.0 * p, 32.0 * step);

    // By site. S1: PV-P01 +, PV-P02 −, PV-S01 +. S2: PV-P03, PV-P06, PV-S02, all
    // negative: p̂ = 0, and the upper end solves 21·ln(1 − u) = −3.841 / 2.
    let s1 = row(&r, ROUND, "S1");
    assert_eq!((&s1["tubes"], &s1["persons"]), (&3.into(), &11.into()));
    let s2 = row(&r, ROUND, "S2");
    assert_eq!(
        (&s2["tubes"], &s2["persons"], &s2["positive_tubes"]),
        (&3.into(), &21.into(), &0.into())
    );
    assert_eq!((num(&s2["prevalence"]), num(&s2["lower"])), (0.0, 0.0));
    let upper = 1.0 - (-CHI2_95 / 2.0 / 21.0).exp();
    assert_close("S2 upper", num(&s2["upper"]), upper, 1e-9);
    assert!((num(&s2["upper"]) - 0.087_405).abs() < 1e-6);

    // By lab: the tube without a counted result has no lab.
    let r = prevalence(&store, &["--round", ROUND, "--by", "lab"]);
    assert_eq!(row(&r, ROUND, "LAB-A")["tubes"], 4);
    assert_eq!(row(&r, ROUND, "LAB-B")["tubes"], 2);
    assert_eq!(row(&r, ROUND, "(no lab)")["tubes_without_result"], 1);

    // The terminal table names what was left out.
    let text = stdout_of(pooltrack(&store).args(["prevalence", "--round", ROUND]));
    assert!(text.contains("5 follow-up tube(s)"), "{text}");
    assert!(text.contains("1 inconclusive"), "{text}");
    assert!(text.contains("1 without a result"), "{text}");
}

#[test]
fn rows_go_to_csv_json_and_parquet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = fixture_store(dir.path());
    let csv = dir.path().join("p.csv");
    let mut cmd = pooltrack(&store);
    cmd.args(["prevalence", "--round", ROUND, "--by", "site", "--out"])
        .arg(&csv);
    stdout_of(&mut cmd);
    let text = std::fs::read_to_string(&csv).expect("csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "round,district,area,tubes,persons,positive_tubes,negative_tubes,inconclusive_tubes,invalid_tubes,tubes_without_result,tubes_by_size,prevalence,lower,upper,positives,positives_lower,positives_upper"
        )
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains(",S2,3,21,0,3,"), "{text}");
    let pq = dir.path().join("p.parquet");
    let mut cmd = pooltrack(&store);
    cmd.args(["prevalence", "--round", ROUND, "--by", "site", "--out"])
        .arg(&pq);
    stdout_of(&mut cmd);
    let file = std::fs::File::open(&pq).expect("parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a file");
    assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
    let json =
        stdout_of(pooltrack(&store).args(["prevalence", "--round", ROUND, "--format", "json"]));
    let rows: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(rows[0]["area"], "(all)");
}

#[test]
fn estimates_equal_a_grid_search_on_mixed_pool_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    generate(
        &city,
        &[
            "--persons",
            "60000",
            "--prevalence",
            "0.01",
            "--pool-sizes",
            "5,10,20",
            "--pool-share",
            "0.85",
            "--seed",
            "19",
        ],
    );
    let store = dir.path().join("store");
    ingest_city(&store, &city, "R");
    let tubes = count_city(&city);
    assert!(
        [1, 5, 10, 20].iter().all(|k| tubes.contains_key(k)),
        "singles and three pool sizes: {tubes:?}"
    );
    let tube_count: u64 = tubes.values().map(|(a, b)| a + b).sum();
    let (top, steps) = (0.03, 300_000);
    let step = top / f64::from(steps);
    for (se, sp) in [(1.0, 1.0), (0.95, 0.998)] {
        let r = prevalence(
            &store,
            &[
                "--round",
                "R",
                "--sensitivity",
                &se.to_string(),
                "--specificity",
                &sp.to_string(),
            ],
        );
        let all = row(&r, "R", "(all)");
        assert_eq!(all["persons"], 60_000, "{all}");
        assert_eq!(all["tubes"], tube_count, "{all}");
        let (p, lo, hi) = grid_estimate(&tubes, se, sp, top, steps);
        assert!(
            lo > 0.0 && hi < top,
            "the grid spans the interval: {lo} {hi}"
        );
        assert_close("p̂", num(&all["prevalence"]), p, step);
        assert_close("lower", num(&all["lower"]), lo, step);
        assert_close("upper", num(&all["upper"]), hi, step);
    }
}

/// Over 40 seeds, the 95 % interval should cover the generator's prevalence (0.01) in
/// about 38. The band is loose — at least 34 of 40 — so that a fair interval cannot
/// fail it by chance (P(≤ 33 of 40) ≈ 0.4 % at a true 95 %), while an interval that
/// covers, say, 80 % would (P(≥ 34) ≈ 24 %, and a Wald interval at these counts is
/// worse). The seeds are fixed, so the test gives the same answer every run.
#[test]
fn intervals_cover_the_true_prevalence_in_most_seeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = 0.01;
    let mut covered = 0;
    let mut misses = Vec::new();
    for seed in 1..=40u32 {
        let city = dir.path().join(format!("city{seed}"));
        generate(
            &city,
            &[
                "--persons",
                "10000",
                "--prevalence",
                "0.01",
                "--pool-sizes",
                "5,10,20",
                "--pool-share",
                "0.9",
                "--seed",
                &seed.to_string(),
            ],
        );
        let store = dir.path().join(format!("store{seed}"));
        ingest_city(&store, &city, "R");
        let r = prevalence(&store, &["--round", "R"]);
        let all = row(&r, "R", "(all)");
        let (lo, hi) = (num(&all["lower"]), num(&all["upper"]));
        if lo <= truth && truth <= hi {
            covered += 1;
        } else {
            misses.push((seed, lo, hi));
        }
    }
    assert!(
        covered >= 34,
        "{covered} of 40 cover {truth}; misses: {misses:?}"
    );
}

/// A copy of a generated city's first stage with other barcodes, for a second round in
/// the same store (a barcode belongs to one round).
fn rebarcode(city: &Path, out: &Path) {
    std::fs::create_dir_all(out).expect("a folder");
    for name in ["collections.csv", "results.csv"] {
        let text = std::fs::read_to_string(city.join(name)).expect("a city file");
        let text: String = text
            .lines()
            .map(|l| {
                let l = l
                    .strip_prefix("PL")
                    .map_or_else(|| l.to_owned(), |r| format!("QL{r}"));
                let l = l.strip_prefix("SG").map_or(l.clone(), |r| format!("TG{r}"));
                l + "\n"
            })
            .collect();
        std::fs::write(out.join(name), text).expect("write");
    }
}

#[test]
fn rounds_make_a_trend_by_district() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let common = [
        "--persons",
        "20000",
        "--pool-sizes",
        "5,10,20",
        "--population",
    ];
    generate(
        &one,
        &[&common[..], &["--prevalence", "0.005", "--seed", "3"]].concat(),
    );
    generate(
        &two,
        &[&common[..], &["--prevalence", "0.02", "--seed", "4"]].concat(),
    );
    let store = dir.path().join("store");
    ingest_city(&store, &one, "R1");
    let second = dir.path().join("two-rebarcoded");
    rebarcode(&two, &second);
    ingest_collections(&store, "R2", &[second.join("collections.csv")]);
    ingest_results(&store, &[second.join("results.csv")]);
    let mut cmd = pooltrack(&store);
    cmd.args(["ingest", "population"])
        .arg(one.join("population.csv"));
    stdout_of(&mut cmd);

    let trend = prevalence(&store, &["--rounds", "R1,R2", "--by", "district"]);
    let order: Vec<(String, String)> = trend["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["area"].as_str().expect("area").to_owned(),
                r["round"].as_str().expect("round").to_owned(),
            )
        })
        .collect();
    let mut want = vec![
        ("(all)".to_owned(), "R1".to_owned()),
        ("(all)".to_owned(), "R2".to_owned()),
    ];
    for d in ["D01", "D02", "D03", "D04"] {
        want.push((d.to_owned(), "R1".to_owned()));
        want.push((d.to_owned(), "R2".to_owned()));
    }
    assert_eq!(order, want);
    // Each round's rows are the rows of that round alone.
    for round in ["R1", "R2"] {
        let alone = prevalence(&store, &["--round", round, "--by", "district"]);
        for r in alone["rows"].as_array().expect("rows") {
            let area = r["area"].as_str().expect("area");
            assert_eq!(row(&trend, round, area), r);
        }
    }
    // The counts behind R2 (district) come from its own files: the whole city.
    let tubes = count_city(&two);
    let tube_count: u64 = tubes.values().map(|(a, b)| a + b).sum();
    assert_eq!(row(&trend, "R2", "(all)")["tubes"], tube_count);
    let districts: u64 = ["D01", "D02", "D03", "D04"]
        .iter()
        .map(|d| row(&trend, "R2", d)["persons"].as_u64().expect("persons"))
        .sum();
    assert_eq!(districts, 20_000);
    let p = |round: &str| num(&row(&trend, round, "(all)")["prevalence"]);
    assert!(p("R2") > 2.0 * p("R1"), "{} {}", p("R1"), p("R2"));
    let text =
        stdout_of(pooltrack(&store).args(["prevalence", "--rounds", "R1,R2", "--by", "district"]));
    assert!(text.contains("D04"), "{text}");
}

#[test]
fn a_tube_across_districts_counts_as_mixed_and_strangers_as_unregistered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let tubes = file(
        "tubes.csv",
        "tube,person,mode,capacity,collected_at\n\
         MX-1,n1,pool,5,2022-04-02 08:00\nMX-1,n2,pool,5,2022-04-02 08:00\n\
         MX-2,n3,pool,5,2022-04-02 08:00\nMX-2,s1,pool,5,2022-04-02 08:00\n\
         MX-3,v1,pool,5,2022-04-02 08:00\nMX-3,v2,pool,5,2022-04-02 08:00\n",
    );
    let results = file(
        "results.csv",
        "tube,result,reported_at\nMX-1,negative,2022-04-02 12:00\n\
         MX-2,positive,2022-04-02 12:00\nMX-3,negative,2022-04-02 12:00\n",
    );
    let register = file(
        "register.csv",
        "person,district,community\nn1,North,N1\nn2,North,N2\nn3,North,N1\ns1,South,S1\n",
    );
    ingest_collections(&store, ROUND, &[tubes]);
    ingest_results(&store, &[results]);
    // No register yet: a usage error, not an empty table.
    let out = run(pooltrack(&store).args(["prevalence", "--round", ROUND, "--by", "district"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    let mut cmd = pooltrack(&store);
    cmd.args(["ingest", "population"]).arg(&register);
    stdout_of(&mut cmd);
    let r = prevalence(&store, &["--round", ROUND, "--by", "district"]);
    let areas: Vec<(String, u64)> = r["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["area"].as_str().expect("area").to_owned(),
                r["tubes"].as_u64().expect("tubes"),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("(all)", 3),
        ("(mixed)", 1),
        ("(unregistered)", 1),
        ("North", 1),
    ]
    .iter()
    .map(|&(a, n)| (a.to_owned(), n))
    .collect();
    assert_eq!(areas, want);
    // By community MX-1 spans N1 and N2: mixed too.
    let r = prevalence(&store, &["--round", ROUND, "--by", "community"]);
    assert_eq!(row(&r, ROUND, "(mixed)")["tubes"], 2);
}

#[test]
fn bad_requests_are_usage_errors_and_help_teaches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = fixture_store(dir.path());
    for args in [
        vec!["--round", ROUND, "--sensitivity", "1.5"],
        vec![
            "--round",
            ROUND,
            "--sensitivity",
            "0.4",
            "--specificity",
            "0.5",
        ],
        vec!["--round", "R9"],
        vec![],
    ] {
        let out = run(pooltrack(&store).arg("prevalence").args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_text(&out)
        );
    }
    let out = run(pooltrack(&store).args(["prevalence", "--round", ROUND, "--by", "district"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_text(&out).contains("population"),
        "{}",
        stderr_text(&out)
    );
    // The store's settings give the assay when the command line does not.
    std::fs::write(
        store.join("pooltrack.toml"),
        "[prevalence]\nsensitivity = 0.9\nspecificity = 0.995\n",
    )
    .expect("write");
    let r = prevalence(&store, &["--round", ROUND]);
    assert_eq!(
        (
            num(&r["assay"]["sensitivity"]),
            num(&r["assay"]["specificity"])
        ),
        (0.9, 0.995)
    );
    let r = prevalence(&store, &["--round", ROUND, "--sensitivity", "1"]);
    assert_eq!(num(&r["assay"]["sensitivity"]), 1.0);
    let help = stdout_of(pooltrack(&store).args(["prevalence", "--help"]));
    for want in [
        "likelihood-ratio",
        "3.841",
        "first-stage",
        "retests",
        "void",
        "inconclusive",
        "(mixed)",
        "Example",
        "prevalence.sensitivity",
    ] {
        assert!(help.contains(want), "--help explains {want}");
    }
}

/// The round report draws each district's estimate on its interval.
#[test]
fn the_round_report_charts_prevalence_by_district() {
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    generate(
        &city,
        &[
            "--persons",
            "20000",
            "--prevalence",
            "0.01",
            "--pool-sizes",
            "5,10,20",
            "--population",
            "--ct-model",
        ],
    );
    let store = dir.path().join("store");
    ingest_city(&store, &city, "R");
    let mut cmd = pooltrack(&store);
    cmd.args(["ingest", "population"])
        .arg(city.join("population.csv"));
    stdout_of(&mut cmd);
    let out = dir.path().join("report");
    let mut cmd = pooltrack(&store);
    cmd.args(["report", "--round", "R", "--out"]).arg(&out);
    let text = stdout_of(&mut cmd);
    assert!(text.contains("prevalence "), "{text}");
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("json"))
            .expect("JSON");
    let by_district = json["prevalence"]["by_district"]
        .as_array()
        .expect("by district");
    assert_eq!(by_district.len(), 5, "the round and 4 districts");
    let alone = prevalence(&store, &["--round", "R", "--by", "district"]);
    assert_eq!(&Value::Array(by_district.clone()), &alone["rows"]);
    let all_labs = json["dilution"]["sensitivity"]
        .as_array()
        .expect("sensitivity rows")
        .iter()
        .filter(|s| s["lab"] == "(all)")
        .count();
    assert_eq!(all_labs, 3, "pools of 5, 10 and 20");
    let Some(browser) = browser("headless Chromium check of the prevalence chart") else {
        return;
    };
    let url = format!("file://{}", out.join("index.html").display());
    let dom = chromium(&browser, &["--dump-dom".to_owned(), url]);
    assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom
        .find("<svg id=\"prevalence-chart\"")
        .expect("the prevalence chart");
    let end = dom[start..].find("</svg>").expect("a closed svg") + start;
    let chart = &dom[start..end];
    assert_eq!(
        chart.matches("<line class=\"interval").count(),
        5,
        "{chart}"
    );
    assert_eq!(chart.matches("<circle class=\"estimate").count(), 5);
    assert!(chart.contains("whole round") && chart.contains("D04"));
    for id in [
        "id=\"dilution-sensitivity\"",
        "id=\"dilution-shift\"",
        "id=\"prevalence-by-lab\"",
    ] {
        assert!(dom.contains(id), "the page has {id}");
    }
}
