//! `pooltrack plan` (issue 4): the example plans in testdata/ through the real binary —
//! a passing city, a failing one, a bad file per kind of mistake — the JSON and HTML
//! outputs, measured mode on a generated round, and the HTML rendered by headless
//! Chromium.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{
    assert_chromium_ok, assert_screenshot_has_charts, browser, chromium, json_of, pooltrack,
    stdout_of, testdata,
};

fn plan(store: &Path, name: &str) -> assert_cmd::Command {
    let mut cmd = pooltrack(store);
    cmd.args(["plan", "--config"]).arg(testdata(name));
    cmd
}

fn output(cmd: &mut assert_cmd::Command) -> Output {
    cmd.output().expect("pooltrack runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a whole number: {v}"))
}

fn x(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

// ---------------------------------------------------------------------------------------
// The passing city
// ---------------------------------------------------------------------------------------

#[test]
fn the_passing_city_passes_every_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = json_of(plan(dir.path(), "plan_pass.toml").arg("--json"));
    assert_eq!(r["pass"], true, "{r:#}");
    let d = &r["planned"]["demand"];
    // Riverside, 2,600,000 people:
    //   sealed      18,000 single                              → 18,000 single tubes
    //   controlled 150,000 in households of 2.7               → ⌈55,555.6⌉ = 55,556 tubes;
    //              1 − 0.995^2.7 = 0.013 443 → 746.8 positive → 2,016.4 retests
    //   the rest 2,432,000 at 10:1                            → 243,200 pools;
    //              1 − 0.9997^10 = 0.002 996 → 728.6 positive → 7,286.2 retests
    //   first stage 316,756; retests 9,302.6 → 9,303; a round 326,059 tubes.
    assert_eq!(u(&d["first_stage_tubes"]), 316_756);
    assert_eq!(u(&d["retests"]), 9_303);
    assert_eq!(u(&d["tubes"]), 326_059);
    let c = &r["planned"]["capacity"];
    // Per lab (18 h: 27 extraction runs of 40 min, 12 PCR runs of 90 min; 24 h: 36 and 16):
    //   Central 16 × 2,538 = 40,608 | 36 × 1,128 = 40,608 → 40,608
    //   CDC     20 × 2,538 = 50,760 | 45 × 1,128 = 50,760 → 50,760
    //   Huoyan  24 × 3,384 = 81,216 | 40 × 1,504 = 60,160 → 60,160
    //   Third  80 × 2,538 = 203,040 | 170 × 1,128 = 191,760 → 191,760
    //   city 343,288 ≥ 326,059: 17,229 spare. PCR over labs 343,288, extraction 375,624.
    assert_eq!(u(&c["within_deadline"]), 343_288);
    assert_eq!(c["margin_tubes"], 17_229);
    assert_eq!(c["bottleneck"], "pcr");
    assert_eq!(c["pass"], true);
    assert!(c["instruments_to_pass"].is_null());
    // Sampling: 2,600,000 / 2,500 = 1,040 sites; / 700 = 3,714.3 → 3,715 stations;
    // / 360 = 7,222.2 → 7,223 collectors; the plan has 1,100, 3,800 and 7,500.
    let needs: Vec<u64> = r["sampling"]["needs"]
        .as_array()
        .expect("needs")
        .iter()
        .map(|n| u(&n["needed"]))
        .collect();
    assert_eq!(needs, vec![1_040, 3_715, 7_223]);
    // Reserve: 3,500,000 / 326,059 = 10.73 rounds physical, 1,500,000 confirmed = 4.60.
    let g = &r["planned"]["reagents"];
    assert!((x(&g["rounds_physical"]) - 10.734).abs() < 1e-3);
    assert!((x(&g["rounds_total"]) - 15.335).abs() < 1e-3);
    assert_eq!(u(&g["unconfirmed_tests"]), 500_000);
    // The projection: 60 days and day 0, a full round every 7 days from day 1.
    let p = &r["planned"]["projection"];
    assert_eq!(p["days"].as_array().expect("days").len(), 61);
    assert_eq!(
        p["full_round_days"],
        serde_json::json!([1, 8, 15, 22, 29, 36, 43, 50, 57])
    );
    assert_eq!(p["days"][1]["date"], "2022-04-04");
    // After 3 rounds physical stock is 3,500,000 − 3 × 326,059 − routine ≈ 2.26 M, over
    // the 6-round line (1,956,354); the fourth round, on day 22, takes it under.
    assert_eq!(p["physical_under_day"], 22);
    let order = &p["order"];
    assert_eq!(order["due_day"], 22);
    assert_eq!(order["order_by_day"], 17); // 5 days' lead time
    assert_eq!(order["order_by_date"], "2022-04-20");
    assert!(r["measured"].is_null());
}

#[test]
fn the_terminal_report_reads_top_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout_of(&mut plan(dir.path(), "plan_pass.toml"));
    let sections = [
        "verdict: PASS",
        "1. Round capacity: PASS: the labs finish 343,288 tubes within 24 h, the round has 326,059",
        "bottleneck stage: pcr",
        "2. Sampling: PASS for 2,600,000 people",
        "3. Reagent reserve: PASS: 10.73 rounds physical",
        "4. Projection over 60 days from 2022-04-04",
        "physical stock falls under 6 rounds (1,956,354 tests) on day 22 (2022-04-25)",
        "order by day 17 (2022-04-20)",
    ];
    let mut at = 0;
    for s in sections {
        let found = out[at..]
            .find(s)
            .unwrap_or_else(|| panic!("{s:?} after byte {at} in\n{out}"));
        at += found;
    }
}

// ---------------------------------------------------------------------------------------
// The failing city
// ---------------------------------------------------------------------------------------

#[test]
fn the_failing_city_is_told_what_would_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = json_of(plan(dir.path(), "plan_fail.toml").arg("--json"));
    assert_eq!(r["pass"], false);
    // Harbour City, 10,000,000 people: 50,000 single + 160,000 household tubes
    // (1 − 0.99^2.5 = 0.024 813 → 9,925.1 retests) + 955,000 pools at 10:1, 0.1 %
    // (0.995 5 % positive → 95,071.4 retests): 1,165,000 + 104,997 = 1,269,997 tubes.
    assert_eq!(u(&r["planned"]["demand"]["tubes"]), 1_269_997);
    let c = &r["planned"]["capacity"];
    // 101,520 + 135,360 + 120,320 + 120,320 + 451,200 = 928,720 < 1,269,997.
    assert_eq!(u(&c["within_deadline"]), 928_720);
    assert_eq!(c["margin_tubes"], 928_720 - 1_269_997);
    assert_eq!(c["pass"], false);
    let fix = &c["instruments_to_pass"];
    assert_eq!(fix["possible"], true);
    let by_stage: Vec<(String, u64)> = fix["by_stage"]
        .as_array()
        .expect("by stage")
        .iter()
        .map(|p| (p[0].as_str().expect("stage").to_owned(), u(&p[1])))
        .collect();
    assert_eq!(by_stage.len(), 2, "{by_stage:?}");
    assert!(by_stage.iter().all(|(_, n)| *n > 0));
    // 20:1 in the pooled zone: 477,500 pools, 1 − 0.999^20 = 0.019 811 → 189,196.4
    // retests; 50,000 + 160,000 + 477,500 + ⌈9,925.1 + 189,196.4⌉ = 886,622 ≤ 928,720.
    assert_eq!(r["planned"]["pool_fix"]["pool_size"], 20);
    assert_eq!(u(&r["planned"]["pool_fix"]["tubes"]), 886_622);
    // Reserve: 6 × 1,269,997 = 7,619,982 physical needed, 5,000,000 held;
    // 10 × 1,269,997 = 12,699,970 in all, 8,000,000 counted (the 6 M unconfirmed do not).
    let g = &r["planned"]["reagents"];
    assert_eq!(u(&g["shortfall_physical_tests"]), 2_619_982);
    assert_eq!(u(&g["shortfall_other_tests"]), 2_079_988);
    assert_eq!(u(&g["shortfall_kits"]), 48_959); // ⌈4,699,970 / 96⌉
    // Sampling: 4,000 sites, 14,286 stations, 27,778 collectors needed.
    let short: Vec<u64> = r["sampling"]["needs"]
        .as_array()
        .expect("needs")
        .iter()
        .map(|n| u(&n["short_by"]))
        .collect();
    assert_eq!(short, vec![1_000, 2_286, 7_778]);
    // Full rounds on dated days: 2022-04-10, -13, -16 from a start on 2022-04-08.
    let p = &r["planned"]["projection"];
    assert_eq!(p["full_round_days"], serde_json::json!([3, 6, 9]));
    assert_eq!(p["physical_under_day"], 0);
    assert_eq!(p["order"]["late_by_days"], 4);
}

#[test]
fn a_failing_plan_still_exits_zero_and_says_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout_of(&mut plan(dir.path(), "plan_fail.toml"));
    assert!(out.starts_with("plan \"Harbour City\""), "{out}");
    assert!(
        out.contains("verdict: FAIL (round capacity FAIL, sampling FAIL, reagent reserve FAIL)")
    );
    assert!(out.contains("to pass: add "), "{out}");
    assert!(
        out.contains("or: pool every pooled zone 20:1: 886,622 tubes"),
        "{out}"
    );
    assert!(out.contains("already under 6 rounds"), "{out}");
}

#[test]
fn an_unvalidated_pool_size_is_used_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = json_of(plan(dir.path(), "plan_unvalidated_pool.toml").arg("--json"));
    let warnings = r["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    let w = warnings[0].as_str().expect("text");
    assert!(
        w.contains(
            "line 6: zone[1].pool_size: 8 is not a validated pool size (only 5, 10 and 20 are)"
        ),
        "{w}"
    );
    // 80,000 at 8:1 = 10,000 tubes.
    assert_eq!(u(&r["planned"]["demand"]["pool_tubes"]), 10_000);
    let text = stdout_of(&mut plan(dir.path(), "plan_unvalidated_pool.toml"));
    assert!(
        text.contains("warnings:\n  line 6: zone[1].pool_size"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Bad plan files and bad arguments
// ---------------------------------------------------------------------------------------

#[test]
fn each_bad_plan_is_refused_with_its_line_and_key() {
    let cases = [
        ("plan_bad_syntax.toml", "line 3: not valid TOML"),
        (
            "plan_bad_pool_size.toml",
            "line 6: zone[1].pool_size: 30 is outside 1–20: a pool tube holds 1 to 20 people, and only 5, 10 and 20 are validated pool sizes",
        ),
        (
            "plan_bad_negative.toml",
            "line 12: lab[1].pcr.instruments: must not be negative (found -4)",
        ),
        (
            "plan_bad_prevalence.toml",
            "line 7: zone[1].prevalence: 1.5 is outside 0–1",
        ),
        (
            "plan_bad_unknown_key.toml",
            "line 11: lab[1]: unknown key `staffed_hour`; did you mean `staffed_hours`? the keys here are: name, staffed_hours, extraction, pcr",
        ),
        (
            "plan_bad_misspelt_key.toml",
            "line 4: zone[1]: unknown key `peeople`; did you mean `people`?",
        ),
        (
            "plan_bad_type.toml",
            "line 4: zone[1].people: expected a whole number, found the string \"80 thousand\"",
        ),
        (
            "plan_bad_missing.toml",
            "line 2: zone[1].prevalence: missing: the expected share infected",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, want) in cases {
        let out = output(plan(dir.path(), name).arg("--json"));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        assert!(
            err.contains(&format!("{name}: {want}")),
            "{name}: want {want:?} in\n{err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: one message: {err}");
    }
}

#[test]
fn a_missing_plan_file_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = output(&mut plan(dir.path(), "no_such_plan.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no_such_plan.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_plan_file_that_is_not_text_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("binary.toml");
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x5b]).expect("write");
    let out = output(pooltrack(dir.path()).args(["plan", "--config"]).arg(&path));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not UTF-8"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    for horizon in ["0", "-5", "4000"] {
        let out = output(plan(dir.path(), "plan_pass.toml").args(["--horizon", horizon]));
        assert_eq!(
            out.status.code(),
            Some(2),
            "--horizon {horizon}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("--horizon"), "{}", stderr(&out));
    }
    let out = output(pooltrack(dir.path()).args(["plan"]));
    assert_eq!(out.status.code(), Some(2), "--config is required");
}

#[test]
fn the_horizon_can_be_set_on_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = json_of(plan(dir.path(), "plan_pass.toml").args(["--json", "--horizon", "90"]));
    assert_eq!(r["plan"]["horizon_days"], 90);
    assert_eq!(
        r["planned"]["projection"]["days"]
            .as_array()
            .expect("days")
            .len(),
        91
    );
}

// ---------------------------------------------------------------------------------------
// Measured mode
// ---------------------------------------------------------------------------------------

/// Generates a city of `persons`, ingests its pooled stage and retests into a store in
/// `dir` as round 2022-04-02, and returns the generator's summary.
fn measured_store(dir: &Path, persons: u64) -> (PathBuf, Value) {
    let city = dir.join("city");
    let store = dir.join("store");
    stdout_of(
        pooltrack(&store)
            .args([
                "gen",
                "--persons",
                &persons.to_string(),
                "--prevalence",
                "0.005",
            ])
            .args(["--seed", "11", "--out"])
            .arg(&city),
    );
    for (kind, file) in [
        ("collections", "collections.csv"),
        ("results", "results.csv"),
        ("collections", "retest_collections.csv"),
        ("results", "retest_results.csv"),
    ] {
        let mut cmd = pooltrack(&store);
        cmd.args(["ingest", kind]).arg(city.join(file));
        if kind == "collections" {
            cmd.args(["--round", "2022-04-02"]);
        }
        stdout_of(&mut cmd);
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(city.join("summary.json")).expect("summary"))
            .expect("json");
    (store, summary)
}

#[test]
fn measured_mode_replaces_assumptions_with_the_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, summary) = measured_store(dir.path(), 30_000);
    let r =
        json_of(plan(&store, "plan_pass.toml").args(["--json", "--measure-round", "2022-04-02"]));
    let m = &r["measured"]["measured"];
    assert_eq!(m["round"], "2022-04-02");
    assert_eq!(m["persons"], summary["persons"]);
    assert_eq!(m["pool_tubes"], summary["pool_tubes"]);
    assert_eq!(m["first_stage_single_tubes"], summary["single_tubes"]);
    assert_eq!(m["retest_tubes"], summary["retest_tubes"]);
    assert_eq!(m["positive_pools"], summary["positive_pools"]);
    // Every pool got a result; the generator's assay is perfect (no inconclusive).
    assert_eq!(m["pools_with_result"], summary["pool_tubes"]);
    let q = x(&m["pool_positivity"]);
    let want = x(&summary["positive_pools"]) / x(&summary["pool_tubes"]);
    assert!((q - want).abs() < 1e-12, "{q} vs {want}");
    // Pools of 10, a site's last pool partly filled: mean fill just under 10.
    let fill = x(&m["mean_pool_fill"]);
    assert!(fill > 9.5 && fill <= 10.0, "{fill}");
    // Each recalled pool brings its members back for a single tube.
    assert!((x(&m["retests_per_recall"]) - fill).abs() < 0.6);
    // The four generated labs, each with a measured rate.
    let labs = m["labs"].as_array().expect("labs");
    let names: Vec<&str> = labs
        .iter()
        .map(|l| l["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["L1", "L2", "L3", "L4"]);
    for l in labs {
        assert!(x(&l["tubes_per_hour"]) > 0.0, "{l}");
        assert_eq!(
            l["staffed_hours"], 18.0,
            "not in the plan: the default 18 h"
        );
        assert!(x(&l["working_hours"]) <= x(&l["span_hours"]) + 1e-9);
    }
    // The full round is for the plan's 2.6 M people, at the measured pooling.
    let a = &r["measured"]["assessment"];
    assert_eq!(u(&a["demand"]["people"]), 2_600_000);
    assert_eq!(a["capacity"]["stages"][0]["stage"], "observed");
    // Four labs doing a few hundred tubes an hour cannot test 2.6 M people in 24 h.
    assert_eq!(a["capacity"]["pass"], false);
    assert_eq!(r["pass"], false);

    let text = stdout_of(plan(&store, "plan_pass.toml").args(["--measure-round", "2022-04-02"]));
    assert!(text.contains("5. Measured: round 2022-04-02"), "{text}");
    assert!(text.contains("measured labs: FAIL"), "{text}");
}

#[test]
fn measured_mode_needs_a_store_and_a_known_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out =
        output(plan(&dir.path().join("nowhere"), "plan_pass.toml").args(["--measure-round", "R"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no store"), "{}", stderr(&out));
    let (store, _) = measured_store(dir.path(), 2_000);
    let out = output(plan(&store, "plan_pass.toml").args(["--measure-round", "2099-01-01"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("2099-01-01"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

fn write_html(store: &Path, name: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let out = output(plan(store, name).arg("--html").arg(dir).args(extra));
    assert!(out.status.success(), "{}", stderr(&out));
    let page = dir.join("index.html");
    assert!(stderr(&out).contains(&page.display().to_string()));
    page
}

#[test]
fn the_html_page_is_self_contained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = write_html(
        dir.path(),
        "plan_pass.toml",
        &dir.path().join("report"),
        &["--json"],
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(html.starts_with("<!DOCTYPE html>"));
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for external in [
        "http:",
        "https:",
        "<script",
        "<link",
        "src=",
        "url(",
        "@import",
        "@font-face",
    ] {
        assert!(
            !without_ns.contains(external),
            "the page must not load {external}"
        );
    }
    assert!(html.contains("id=\"plan-stock-chart\""));
    assert!(html.contains("id=\"plan-capacity-chart\""));
    // One point per day (day 0 to 60) for each of the two series.
    assert_eq!(html.matches("class=\"pt pt-physical\"").count(), 61);
    assert_eq!(html.matches("class=\"pt pt-total\"").count(), 61);
}

#[test]
fn headless_chromium_renders_the_charts() {
    let Some(browser) = browser("headless Chromium check of the plan's HTML") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = measured_store(dir.path(), 5_000);
    let page = write_html(
        &store,
        "plan_fail.toml",
        &dir.path().join("report"),
        &["--measure-round", "2022-04-02"],
    );
    let url = format!("file://{}", page.display());
    let dom = chromium(&browser, &["--dump-dom".to_owned(), url.clone()]);
    assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for id in [
        "plan-stock-chart",
        "plan-capacity-chart",
        "plan-physical",
        "plan-total",
        "plan-physical-line",
        "plan-total-line",
        "measured-stock-chart",
        "measured-capacity-chart",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "the rendered page has #{id}"
        );
    }
    // plan_fail.toml projects 30 days: 31 points per series, in both assessments.
    assert_eq!(dom.matches("class=\"pt pt-physical\"").count(), 2 * 31);
    assert_eq!(dom.matches("class=\"pt pt-total\"").count(), 2 * 31);
    // Capacity: extraction, PCR and the labs as a whole, two bars each; measured: the
    // observed stage and the labs as a whole.
    assert_eq!(dom.matches("data-stage=").count(), 2 * 3 + 2 * 2);
    assert!(dom.contains("Harbour City"));

    assert_screenshot_has_charts(&browser, &dir.path().join("page.png"), "1200,1600", url);
}
