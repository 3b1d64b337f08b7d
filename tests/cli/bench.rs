//! How `pooltrack bench` measures a step: `pooltrack bench -- ARGS` runs `pooltrack
//! ARGS` as its only child and prints the step's time and peak memory after the
//! step's own output. `pooltrack bench` itself: its JSON report and its page.

use crate::common::{json_of, pooltrack, stdout_of};
use crate::rules::{run, stderr_text};

#[test]
fn a_measured_step_reports_its_own_peak_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    let out = run(pooltrack(&dir.path().join("unused"))
        .args(["bench", "--", "gen", "--persons", "20000", "--out"])
        .arg(&city));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let figures = lines.next_back().expect("a last line");
    assert!(
        lines.any(|l| l.starts_with("generated 20000 persons")),
        "the step's own output comes first: {stdout}"
    );
    let json = figures
        .strip_prefix("pooltrack bench step: ")
        .unwrap_or_else(|| panic!("not the figures line: {figures}"));
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON figures");
    let kib = v["peak_kib"].as_i64().expect("peak_kib");
    // A pooltrack process holds some MiB at least; a generator of 20,000 persons
    // nowhere near a GiB.
    assert!((1024..1 << 20).contains(&kib), "{v}");
    assert!(v["seconds"].as_f64().is_some_and(|s| s > 0.0), "{v}");
    assert!(city.join("collections.csv").exists());

    // A step that fails fails its measurement, with the step's own message.
    let out = run(pooltrack(&dir.path().join("unused"))
        .args(["bench", "--", "--store"])
        .arg(dir.path().join("none"))
        .args(["status", "--round", "R1"]));
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("no store"),
        "{}",
        stderr_text(&out)
    );
}

/// Runs `pooltrack bench ARGS` on a small city and returns its standard output.
fn bench(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(pooltrack(&dir.path().join("unused"))
        .args(["bench", "--persons", "20000"])
        .args(args));
    assert!(out.status.success(), "{}", stderr_text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn bench_json_reports_the_machine_the_floor_and_every_job_step() {
    let text = bench(&["--json", "--job-only", "--single-share", "0.3"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON report");
    assert!(
        v["machine"]["cpu"].as_str().is_some_and(|c| !c.is_empty()),
        "{v}"
    );
    assert!(v["machine"]["cores"].as_u64().is_some_and(|c| c >= 1));
    let command = v["command"].as_str().expect("command");
    assert!(command.ends_with("bench --persons 20000 --json --job-only --single-share 0.3"));
    assert_eq!(v["shape"]["single_share"], 0.3);
    assert_eq!(v["shape"]["pool_size"], 10);

    // The floor counted every line of both inputs (their headers too).
    let inputs = v["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0]["rows"], 20_000);
    let rows: u64 = inputs
        .iter()
        .map(|i| i["rows"].as_u64().expect("rows"))
        .sum();
    let floor = &v["floor"];
    assert_eq!(floor["rows"].as_u64(), Some(rows + 2), "{floor}");
    // Six fields a collection, eight a result.
    let results = inputs[1]["rows"].as_u64().expect("rows");
    assert_eq!(
        floor["fields"].as_u64(),
        Some(6 * 20_001 + 8 * (results + 1))
    );
    let floor_seconds = floor["seconds"].as_f64().expect("floor seconds");
    assert!(floor_seconds > 0.0);
    assert!(v["cat"]["seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert_eq!(v["cat"]["bytes"], floor["bytes"]);

    let steps = v["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        names,
        [
            "ingest collections",
            "ingest results",
            "worklist recall",
            "status",
            "batch: 10k collections",
            "batch: 10k results",
            "status --person"
        ]
    );
    for s in steps {
        let seconds = s["seconds"].as_f64().expect("seconds");
        let x = s["x_floor"].as_f64().expect("x_floor");
        assert!(
            (x - seconds / floor_seconds).abs() < 1e-9 * x.max(1.0),
            "{s}"
        );
        assert!(s["peak_mib"].as_f64().is_some_and(|p| p > 1.0), "{s}");
    }
    let job: f64 = steps[..4]
        .iter()
        .map(|s| s["seconds"].as_f64().expect("seconds"))
        .sum();
    assert!((v["job_seconds"].as_f64().expect("job") - job).abs() < 1e-9);
    // The store is weighed against the two input files, after the job.
    let stored = &v["stored"];
    let input: u64 = inputs
        .iter()
        .map(|i| i["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(stored["input_bytes"].as_u64(), Some(input), "{stored}");
    let bytes = stored["bytes"].as_u64().expect("bytes");
    assert!(bytes > 0 && bytes < input, "{stored}");
    let share = stored["share"].as_f64().expect("share");
    assert!(
        (share - bytes as f64 / input as f64).abs() < 1e-9,
        "{stored}"
    );
    assert_eq!(v["outputs_run"], false);
    assert!(v["duckdb"].is_null());
}

#[test]
fn bench_html_is_a_page_with_a_chart_and_runs_every_whole_round_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("page");
    let text = bench(&[
        "--blank-optional",
        "0.2",
        "--pool-size",
        "5",
        "--html",
        page.to_str().expect("utf-8 path"),
    ]);
    assert!(text.contains("machine: "), "{text}");
    assert!(text.contains("floor parse of the inputs"), "{text}");
    assert!(text.contains("whole-round outputs"), "{text}");
    for step in [
        "ingest population",
        "export status",
        "export health-codes",
        "report",
        "turnaround --json",
        "review",
        "coverage --json",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(step)),
            "{step} missing:\n{text}"
        );
    }
    let html = std::fs::read_to_string(page.join("index.html")).expect("index.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg id=\"stages-chart\""), "a chart");
    assert!(
        html.contains("id=\"floor-line\""),
        "the floor across the chart"
    );
    assert!(html.contains("export health-codes"));
    assert!(
        html.contains("--blank-optional 0.2 --pool-size 5 --html"),
        "the command"
    );
    // Self-contained: nothing is fetched.
    for fetch in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(fetch), "{fetch}");
    }
}

/// `bench --batches K`: the collections cut at tube boundaries into K files, each
/// ingested as its own batch into the one round, every person kept.
#[test]
fn bench_batches_ingest_the_collections_as_k_batches_of_one_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let work_text = work.to_str().expect("a UTF-8 temp path");
    let text = bench(&["--json", "--job-only", "--batches", "3", "--dir", work_text]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON report");
    assert_eq!(v["shape"]["batches"], 3);
    let steps = v["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        names[..6],
        [
            "ingest collections 1/3",
            "ingest collections 2/3",
            "ingest collections 3/3",
            "ingest results",
            "worklist recall",
            "status"
        ]
    );
    let rows: Vec<u64> = steps[..3]
        .iter()
        .map(|s| s["rows"].as_u64().expect("rows"))
        .collect();
    assert_eq!(rows.iter().sum::<u64>(), 20_000);
    assert!(
        rows.iter().all(|&r| (5_000..8_500).contains(&r)),
        "{rows:?}"
    );
    let job: f64 = steps[..6]
        .iter()
        .map(|s| s["seconds"].as_f64().expect("seconds"))
        .sum();
    assert!((v["job_seconds"].as_f64().expect("job") - job).abs() < 1e-9);

    // Each file has the header, and no tube's rows run across a cut.
    let mut last_tube = String::new();
    for k in 1..=3 {
        let part = std::fs::read_to_string(work.join(format!("collections-{k}-of-3.csv")))
            .expect("a part");
        let mut lines = part.lines();
        assert_eq!(
            lines.next(),
            Some("tube,person,mode,capacity,collected_at,site")
        );
        let first = lines
            .next()
            .and_then(|l| l.split(',').next())
            .expect("a row");
        assert_ne!(first, last_tube, "tube {first} cut across parts");
        last_tube = part
            .lines()
            .last()
            .and_then(|l| l.split(',').next())
            .expect("a row")
            .to_owned();
    }

    // Three batches of one round, every person in it (and the lab batch's 10,000).
    let store = work.join("store");
    let status = json_of(pooltrack(&store).args(["status", "--round", "bench", "--json"]));
    assert_eq!(status["persons"], 30_000, "{status}");
    let log = stdout_of(pooltrack(&store).args(["log"]));
    assert_eq!(
        log.lines().filter(|l| l.contains("collections-")).count(),
        3,
        "{log}"
    );
}

/// Past eight batches the table sums them in one line with a batch's spread, the JSON
/// keeps each, and the page sums them too.
#[test]
fn bench_many_batches_are_summed_in_the_table_and_listed_in_the_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let page = dir.path().join("page");
    let out = run(pooltrack(&dir.path().join("unused"))
        .args([
            "bench",
            "--persons",
            "20000",
            "--job-only",
            "--batches",
            "12",
        ])
        .arg("--dir")
        .arg(&work)
        .arg("--html")
        .arg(&page));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let table = String::from_utf8(out.stdout).expect("utf-8");
    let summed: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("ingest collections"))
        .collect();
    assert_eq!(summed.len(), 1, "{table}");
    assert!(
        summed[0].contains("ingest collections, 12 batches"),
        "{table}"
    );
    assert!(
        table.contains("(a batch: median ") && table.contains("--json lists each"),
        "{table}"
    );
    let html = std::fs::read_to_string(page.join("index.html")).expect("the page");
    assert!(
        html.contains("ingest collections, 12 batches"),
        "the page sums them"
    );
    assert!(
        !html.contains("ingest collections 3/12"),
        "the page lists none alone"
    );

    // The JSON lists every batch.
    let text = bench(&["--json", "--job-only", "--batches", "12"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON report");
    let batches = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| {
            s["step"]
                .as_str()
                .is_some_and(|n| n.starts_with("ingest collections "))
        })
        .count();
    assert_eq!(batches, 12);
}
