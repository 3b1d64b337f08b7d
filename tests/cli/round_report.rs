//! Round report (issue 3): `pooltrack report` gathers plate QC, coverage, turnaround,
//! progress, health codes and review flags into `report.json` and a self-contained
//! `index.html`; each test builds a store from the fixtures that exercise one part and
//! checks the numbers those fixtures make known (worked out in the tests of each part:
//! `plate_qc.rs`, review.rs, coverage.rs), then Chromium renders the page's charts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{
    assert_chromium_ok, assert_screenshot_has_charts, browser, chromium, pooltrack, stdout_of,
    testdata,
};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

const ROUND: &str = "2022-04-02";
const AS_OF: &str = "2022-04-03 12:00:00";

/// Runs `report` into `DIR/out`; returns (stdout, report.json, index.html).
fn report(store: &Path, round: &str) -> (String, Value, String) {
    let out = store.with_file_name("out");
    let text = stdout_of(
        pooltrack(store)
            .args(["report", "--round", round, "--as-of", AS_OF])
            .arg("--out")
            .arg(&out),
    );
    let json =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("valid JSON");
    let page = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    (text, json, page)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x[key].as_str().expect("a string").to_owned())
        .collect()
}

fn example_store(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    ingest_collections(&store, "R1", &[testdata("example_collections.csv")]);
    ingest_results(&store, &[testdata("example_results.csv")]);
    let mut cmd = pooltrack(&store);
    cmd.args(["ingest", "population"])
        .arg(testdata("population_example.csv"));
    stdout_of(&mut cmd);
    store
}

/// The page names no URL and loads nothing: no script, stylesheet link, import or `url()`.
fn assert_self_contained(page: &str) {
    for forbidden in [
        "http://", "https://", "<script", "<link", "@import", "url(", "src=",
    ] {
        assert!(!page.contains(forbidden), "the page contains {forbidden:?}");
    }
}

#[test]
fn round_report_shows_a_failed_plate_and_its_reruns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("qc_collections.csv")]);
    ingest_results(&store, &[testdata("qc_results_plate_fail.csv")]);
    let (text, j, page) = report(&store, ROUND);
    let failed = &j["plate_qc"]["failed_plates"];
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{failed}");
    assert_eq!(
        (&failed[0]["lab"], &failed[0]["plate"]),
        (&"LAB-Q".into(), &"P1".into())
    );
    let reason = failed[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("negative control NC-1 amplified"),
        "{reason}"
    );
    let reruns = &j["plate_qc"]["reruns"];
    assert_eq!(reruns["total"], 2);
    assert_eq!(
        strings(&reruns["first"], "tube"),
        ["QC-POOL-01", "QC-POOL-02"]
    );
    assert_eq!(j["counts"]["tubes_to_rerun"], 2);
    assert!(text.contains("1 failed plate(s)"), "{text}");
    for want in [
        "P1",
        "LAB-Q",
        "negative control NC-1 amplified",
        "QC-POOL-02",
    ] {
        assert!(page.contains(want), "the page names {want}");
    }
    // No register: coverage is skipped with a note, on the page and in the JSON.
    assert!(j["coverage"].is_null());
    assert!(
        j["notes"][0]
            .as_str()
            .expect("a note")
            .contains("population register")
    );
    assert!(page.contains("id=\"coverage-missing\""));
    assert!(!page.contains("id=\"coverage-chart\""));
    assert_eq!(j["health_codes"]["untested_yellow"], 0);
    assert_self_contained(&page);
}

#[test]
fn round_report_counts_and_lists_review_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("review_collections.csv")]);
    ingest_results(&store, &[testdata("review_results.csv")]);
    ingest_collections(&store, ROUND, &[testdata("review_retests_collections.csv")]);
    ingest_results(&store, &[testdata("review_retest_results.csv")]);
    let (_, j, page) = report(&store, ROUND);
    let c = &j["review"]["counts"];
    assert_eq!(
        (
            &c["discordant_pool"],
            &c["missed_by_pooling"],
            &c["changed_from_positive"]
        ),
        (&1.into(), &1.into(), &2.into())
    );
    let flags = &j["review"]["flags"];
    assert_eq!(flags["total"], 4);
    assert_eq!(
        strings(&flags["first"], "kind"),
        [
            "discordant_pool",
            "missed_by_pooling",
            "changed_from_positive",
            "changed_from_positive"
        ]
    );
    assert_eq!(
        strings(&flags["first"], "tube"),
        ["PLDISC01", "PLMISS01", "PLCHG001", "SGCHG001"]
    );
    for want in ["PLDISC01", "PLMISS01", "RV-C1", "SGCHG001"] {
        assert!(page.contains(want), "the page names {want}");
    }
    // The health codes agree with the statuses: red is the positive persons.
    let positive = j["counts"]["by_status"]
        .as_array()
        .expect("by_status")
        .iter()
        .find(|p| p[0] == "positive")
        .map(|p| p[1].clone());
    assert_eq!(Some(j["health_codes"]["red"].clone()), positive);
    let persons = j["counts"]["persons"].as_u64().expect("persons");
    let h = &j["health_codes"];
    let sum: u64 = ["red", "yellow", "green"]
        .iter()
        .filter_map(|k| h[k].as_u64())
        .sum();
    assert_eq!(sum, persons);
}

#[test]
fn round_report_turnaround_names_late_tubes_and_labs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("turnaround_collections.csv")]);
    ingest_results(&store, &[testdata("turnaround_results.csv")]);
    let (text, j, page) = report(&store, ROUND);
    let t = &j["turnaround"];
    assert_eq!(t["round_stats"]["median_minutes"], 120.0);
    assert_eq!(t["round_stats"]["p90_minutes"], 1500.0);
    assert_eq!(t["round_stats"]["reported_late"], 2);
    assert_eq!(strings(&t["by_lab"], "lab"), ["LAB-A", "LAB-B"]);
    assert_eq!(t["by_lab"][0]["median_minutes"], 60.0);
    assert_eq!(t["by_lab"][1]["median_minutes"], 240.0);
    assert_eq!(t["late_tubes"]["total"], 4);
    assert_eq!(
        strings(&t["late_tubes"]["first"], "tube"),
        ["TAS00003", "TAP00004", "TAP00002", "TAS00001"]
    );
    assert_eq!(t["late_tubes"]["first"][2]["lab"], "LAB-A");
    assert_eq!(t["recall_delays"]["total"], 1);
    assert_eq!(t["recall_delays"]["first"][0]["tube"], "TAP00003");
    assert_eq!(t["recall_delays"]["first"][0]["minutes"], 1590.0);
    assert_eq!(t["progress"].as_array().map(Vec::len), Some(26));
    assert_eq!(t["histogram"]["counts"][1], 3);
    assert_eq!(t["deadlines"]["pool_hours"], 24.0);
    assert_eq!(j["as_of"], "2022-04-03T12:00:00+08:00");
    assert_eq!(j["list_cap"], 100);
    assert!(text.contains("4 tube(s) past deadline"), "{text}");
    for want in [
        "TAP00002",
        "TAS00003",
        "lab LAB-A",
        "lab LAB-B",
        "TAP00003",
        "24 h deadline",
    ] {
        assert!(page.contains(want), "the page names {want}");
    }
}

#[test]
fn round_report_coverage_and_health_codes_of_the_example_register() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let (text, j, page) = report(&store, "R1");
    let c = &j["coverage"];
    let totals: Vec<u64> = ["registered", "tested", "untested", "unregistered_tested"]
        .iter()
        .filter_map(|k| c[k].as_u64())
        .collect();
    assert_eq!(totals, [16, 11, 5, 2], "{c}");
    assert_eq!(
        strings(&c["by_district"], "district"),
        ["(none)", "Chaoyang", "Haidian"]
    );
    assert_eq!(c["by_district"][1]["tested"], 7);
    assert_eq!(c["by_community"].as_array().map(Vec::len), Some(5));
    assert_eq!(c["untested_persons"]["total"], 5);
    assert_eq!(
        c["untested_persons"]["first"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(c["unregistered_persons"]["total"], 2);
    // Statuses of R1: 8 recall, 1 pending, 4 negative; the 5 untested count yellow.
    let h = &j["health_codes"];
    assert_eq!(
        (&h["red"], &h["yellow"], &h["green"], &h["untested_yellow"]),
        (&0.into(), &13.into(), &5.into(), &5.into())
    );
    assert!(text.contains("coverage 68.8 %"), "{text}");
    for want in ["Chaoyang", "Zhongguancun", "77.8 %", "68.8 %"] {
        assert!(page.contains(want), "the page shows {want}");
    }
    assert!(j["notes"].as_array().is_some_and(Vec::is_empty));
    assert_self_contained(&page);
    let out = store.with_file_name("out");
    for file in ["index.html", "report.json"] {
        let mode = std::fs::metadata(out.join(file))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[test]
fn round_report_of_an_unknown_round_or_bad_time_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    let out = dir.path().join("out");
    let unknown = run(pooltrack(&store)
        .args(["report", "--round", "R9"])
        .arg("--out")
        .arg(&out));
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr_text(&unknown));
    assert!(!out.exists(), "nothing written for an unknown round");
    let bad = run(pooltrack(&store)
        .args(["report", "--round", "R1", "--as-of", "soon"])
        .arg("--out")
        .arg(&out));
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr_text(&bad).contains("--as-of"));
    let help = stdout_of(pooltrack(&store).args(["report", "--help"]));
    for want in ["index.html", "report.json", "health codes", "first 100"] {
        assert!(help.contains(want), "--help explains {want}");
    }
}

#[test]
fn round_report_renders_its_charts_in_headless_chromium() {
    let Some(browser) = browser("headless Chromium check of the round report") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = example_store(dir.path());
    report(&store, "R1");
    let page = store.with_file_name("out").join("index.html");
    let url = format!("file://{}", page.display());
    let dom = chromium(&browser, &["--dump-dom".to_owned(), url.clone()]);
    assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Each chart as Chromium parsed it: from its <svg> to its </svg>.
    let chart = |id: &str| -> String {
        let start = dom
            .find(&format!("<svg id=\"{id}\""))
            .unwrap_or_else(|| panic!("the rendered page has the {id} chart"));
        let end = dom[start..].find("</svg>").expect("a closed svg") + start;
        dom[start..end].to_owned()
    };
    let progress = chart("progress-chart");
    assert!(
        progress.contains("<path id=\"progress-line\""),
        "a drawn curve"
    );
    assert!(progress.contains("id=\"progress-deadline\""));
    assert!(progress.contains("24 h deadline"));
    assert!(progress.matches("<circle class=\"pt\"").count() >= 2);
    let histogram = chart("turnaround-histogram");
    assert!(histogram.matches("<rect class=\"bar hist\"").count() >= 1);
    let coverage = chart("coverage-chart");
    assert_eq!(coverage.matches("<rect class=\"bar tested\"").count(), 3);
    assert!(coverage.contains("Chaoyang"));
    assert_self_contained(&dom);

    assert_screenshot_has_charts(&browser, &dir.path().join("page.png"), "1100,2400", url);
}
