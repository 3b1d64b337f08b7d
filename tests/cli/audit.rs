//! `pooltrack audit`: a hand-made round whose positivity test is worked out here by
//! hand, the incidents `gen --incidents` stages for it (each found, nothing else), a
//! clean generated round (nothing found), and the arguments it refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of, testdata};
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

const ROUND: &str = "2022-04-02";

/// (kind, lab, tube) of every finding.
fn findings(audit: &Value) -> BTreeSet<(String, String, String)> {
    audit["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {audit}"))
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("lab"), s("tube"))
        })
        .collect()
}

fn finding(kind: &str, lab: &str, tube: &str) -> (String, String, String) {
    (kind.to_owned(), lab.to_owned(), tube.to_owned())
}

fn lab<'a>(audit: &'a Value, name: &str) -> &'a Value {
    audit["labs"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["lab"] == name))
        .unwrap_or_else(|| panic!("no lab {name}: {audit}"))
}

/// P(Z ≥ z) by Simpson's rule over the normal density from z to z + 12: a separate
/// computation from the library's rational approximation of erfc.
fn normal_tail(z: f64) -> f64 {
    let n = 20_000;
    let h = 12.0 / f64::from(n);
    let phi = |t: f64| (-t * t / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let inner: f64 = (1..n)
        .map(|i| {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            w * phi(z + f64::from(i) * h)
        })
        .sum();
    h / 3.0 * (phi(z) + inner + phi(z + 12.0))
}

#[test]
fn the_hand_made_round_gives_the_p_value_worked_out_by_hand() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    let (cols, res) = (
        testdata("audit_collections.csv"),
        testdata("audit_results.csv"),
    );
    ingest_collections(&store, ROUND, std::slice::from_ref(&cols));
    ingest_results(&store, std::slice::from_ref(&res));
    let audit = json_of(pooltrack(&store).args(["audit", "--round", ROUND, "--json"]));
    assert_eq!(
        findings(&audit),
        BTreeSet::from([
            finding("positivity_high", "A", ""),
            finding("reported_before_receipt", "B", "PB1-30"),
            finding("reported_before_collection", "B", "PB2-40"),
            finding("pool_over_20", "B", "BIG-01"),
            finding("late_recall", "A", "PA1-01"),
        ]),
        "{audit}"
    );
    assert_eq!(audit["strata"], "site");

    // The strata from the files: (site, lab) → [pools, positive] of the capacity-10
    // pools (BIG-01 has capacity 20 and only lab B in its stratum; RT tubes are
    // retests).
    let mut site_of: BTreeMap<String, String> = BTreeMap::new();
    let mut r = csv::Reader::from_path(&cols).expect("collections");
    for row in r.records() {
        let row = row.expect("row");
        if &row[3] == "10" {
            site_of.insert(row[0].to_owned(), row[5].to_owned());
        }
    }
    let mut cells: BTreeMap<(String, String), [f64; 2]> = BTreeMap::new();
    let mut r = csv::Reader::from_path(&res).expect("results");
    for row in r.records() {
        let row = row.expect("row");
        if let Some(site) = site_of.get(&row[0]) {
            let c = cells.entry((site.clone(), row[3].to_owned())).or_default();
            c[0] += 1.0;
            c[1] += f64::from(u8::from(&row[1] == "positive"));
        }
    }
    // Mantel–Haenszel for lab A against lab B, by site: Δ = Σ a − n·m₁/N,
    // V = Σ n·n′·m₁·m₀ / (N²(N − 1)), X² = (|Δ| − ½)²/V, two-sided p = P(χ²₁ ≥ X²)
    // = 2·P(Z ≥ √X²).
    let (mut delta, mut var) = (0.0, 0.0);
    for site in ["S1", "S2"] {
        let a = cells[&(site.to_owned(), "A".to_owned())];
        let b = cells[&(site.to_owned(), "B".to_owned())];
        let (n, n2, m1) = (a[0], b[0], a[1] + b[1]);
        let total = n + n2;
        delta += a[1] - n * m1 / total;
        var += n * n2 * m1 * (total - m1) / (total * total * (total - 1.0));
    }
    // S1: A 8 of 20, B 3 of 30; S2: A 4 of 10, B 2 of 40.
    assert!((delta - 6.4).abs() < 1e-9, "{delta}");
    let chi2 = (delta - 0.5) * (delta - 0.5) / var;
    let p = 2.0 * normal_tail(chi2.sqrt());
    let a = lab(&audit, "A");
    assert_eq!(
        (a["pools"].as_u64(), a["positive_pools"].as_u64()),
        (Some(30), Some(12))
    );
    let got_chi2 = a["chi_square"].as_f64().expect("chi_square");
    let got_p = a["p_value"].as_f64().expect("p_value");
    assert!((got_chi2 - chi2).abs() < 1e-9, "{got_chi2} vs {chi2}");
    assert!((got_p - p).abs() < 1e-6 * p, "{got_p} vs {p}");
    // Two labs tested: Holm doubles the smaller p.
    let adj = a["p_adjusted"].as_f64().expect("p_adjusted");
    assert!((adj - 2.0 * got_p).abs() < 1e-12, "{adj}");
    assert_eq!(a["positivity_flag"], "higher");
    assert!(
        a["positivity_test"]
            .as_str()
            .is_some_and(|t| t.contains("Mantel-Haenszel")),
        "{a}"
    );
    // B has the same p, but A holds the excess; set A aside and B has no one left.
    let b = lab(&audit, "B");
    assert_eq!(b["positivity_flag"], "");
    assert_eq!(b["p_value"], Value::Null, "{b}");
    assert_eq!(
        (
            b["discordant_pools"].as_u64(),
            b["positive_pools_all"].as_u64()
        ),
        (Some(1), Some(5))
    );
    // A stricter alpha than the adjusted p: nothing about positivity.
    let strict =
        json_of(pooltrack(&store).args(["audit", "--round", ROUND, "--json", "--alpha", "0.0001"]));
    assert!(
        !findings(&strict)
            .iter()
            .any(|f| f.0.starts_with("positivity")),
        "{strict}"
    );
    // A two-hour limit forgives PA1-01's recall.
    let lenient = json_of(pooltrack(&store).args([
        "audit",
        "--round",
        ROUND,
        "--json",
        "--recall-hours",
        "2",
    ]));
    assert!(!findings(&lenient).iter().any(|f| f.0 == "late_recall"));

    // The text report and the rows.
    let text = stdout_of(pooltrack(&store).args(["audit", "--round", ROUND]));
    for shown in [
        "positivity_high",
        "PB1-30",
        "BIG-01",
        "PA1-01",
        "Mantel-Haenszel",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
    let csv_out = dir.path().join("findings.csv");
    let o = run(pooltrack(&store)
        .args(["audit", "--round", ROUND, "--rows", "findings", "--out"])
        .arg(&csv_out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let text = std::fs::read_to_string(&csv_out).expect("csv");
    assert!(text.starts_with("kind,lab,tube,at,detail\n"), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");
    let labs_csv =
        stdout_of(pooltrack(&store).args(["audit", "--round", ROUND, "--format", "csv"]));
    assert_eq!(labs_csv.lines().count(), 3, "{labs_csv}");
    assert!(
        labs_csv.starts_with("lab,results,pools,positive_pools,"),
        "{labs_csv}"
    );
    let parquet = dir.path().join("labs.parquet");
    let o = run(pooltrack(&store)
        .args(["audit", "--round", ROUND, "--out"])
        .arg(&parquet));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let bytes = std::fs::read(&parquet).expect("parquet");
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
}

/// Generates a city of 20,000 (seed 3) and ingests both stages and its register.
fn generated(dir: &Path, incidents: bool) -> (std::path::PathBuf, std::path::PathBuf) {
    let city = dir.join("city");
    let store = dir.join("store");
    let mut cmd = pooltrack(&store);
    cmd.args(["gen", "--persons", "20000", "--seed", "3", "--out"])
        .arg(&city);
    cmd.arg(if incidents {
        "--incidents"
    } else {
        "--population"
    });
    stdout_of(&mut cmd);
    for name in ["collections.csv", "retest_collections.csv"] {
        ingest_collections(&store, ROUND, &[city.join(name)]);
    }
    for name in ["results.csv", "retest_results.csv"] {
        ingest_results(&store, &[city.join(name)]);
    }
    let o = run(pooltrack(&store)
        .args(["ingest", "population"])
        .arg(city.join("population.csv")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    (city, store)
}

#[test]
fn every_staged_incident_is_found_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tmp");
    let (city, store) = generated(dir.path(), true);
    let incidents: Value =
        serde_json::from_str(&std::fs::read_to_string(city.join("incidents.json")).expect("json"))
            .expect("valid JSON");
    let staged = &incidents["lab_audit"];
    let positives = staged["positives_lab"]["lab"].as_str().expect("lab");
    let fast = staged["fast_lab"]["lab"].as_str().expect("lab");
    let late = &staged["late_recall"];
    let plan = testdata("audit_plan.toml");
    let audit = json_of(
        pooltrack(&store)
            .args(["audit", "--round", ROUND, "--json", "--plan"])
            .arg(&plan),
    );
    assert_eq!(audit["strata"], "district");
    assert_eq!(
        findings(&audit),
        BTreeSet::from([
            finding("positivity_high", positives, ""),
            finding("discordant_rate", positives, ""),
            finding("over_capacity", fast, ""),
            finding(
                "late_recall",
                late["lab"].as_str().expect("lab"),
                late["tube"].as_str().expect("tube")
            ),
        ]),
        "{audit}"
    );
    // The staged false positives are all among the lab's positive pools, each
    // discordant; the staged discordant pool of issue 3 is there too, in its lab.
    let false_positives = staged["positives_lab"]["false_positive_pools"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(false_positives >= 25);
    let p = lab(&audit, positives);
    assert!(p["positive_pools"].as_u64() >= u64::try_from(false_positives).ok());
    let discordant: u64 = audit["labs"]
        .as_array()
        .expect("labs")
        .iter()
        .filter_map(|l| l["discordant_pools"].as_u64())
        .sum();
    assert_eq!(
        discordant,
        u64::try_from(false_positives).expect("count") + 1
    );
    // The burst: more than the plan's 282 an hour, from the staged lab only.
    let f = lab(&audit, fast);
    assert_eq!(f["capacity_in_window"], 282);
    assert!(
        f["peak_in_window"].as_u64() >= staged["fast_lab"]["tubes"].as_u64().filter(|&t| t > 282)
    );
    // The late recall's delay as staged.
    let late_finding = audit["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == "late_recall"))
        .expect("late recall");
    let minutes = late["minutes"].as_u64().expect("minutes");
    assert!((90..=150).contains(&minutes), "{late}");
    assert!(
        late_finding["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("({minutes} min later"))),
        "{late_finding}"
    );
    // Without the plan there is no capacity to exceed.
    let no_plan = json_of(pooltrack(&store).args(["audit", "--round", ROUND, "--json"]));
    assert!(!findings(&no_plan).iter().any(|f| f.0 == "over_capacity"));
    assert_eq!(findings(&no_plan).len(), 3, "{no_plan}");

    // The plan named in the store's settings: audit and the round report both use it.
    std::fs::write(
        store.join("pooltrack.toml"),
        format!("[audit]\nplan = {:?}\n", plan.display().to_string()),
    )
    .expect("config");
    let configured = json_of(pooltrack(&store).args(["audit", "--round", ROUND, "--json"]));
    assert_eq!(findings(&configured), findings(&audit));
    let out = dir.path().join("report");
    let o = run(pooltrack(&store)
        .args(["report", "--round", ROUND, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("valid JSON");
    let in_report: BTreeSet<(String, String, String)> = report["audit"]["findings"]["first"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("lab"), s("tube"))
        })
        .collect();
    assert_eq!(in_report, findings(&audit));
    assert_eq!(report["audit"]["window_minutes"], 60);
    let page = std::fs::read_to_string(out.join("index.html")).expect("page");
    assert!(
        page.contains("over_capacity"),
        "the page shows the fast lab"
    );
    // A bad setting is refused with its key.
    std::fs::write(store.join("pooltrack.toml"), "[audit]\nalpha = 2\n").expect("config");
    let o = run(pooltrack(&store).args(["audit", "--round", ROUND]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr_text(&o));
    assert!(
        stderr_text(&o).contains("audit.alpha"),
        "{}",
        stderr_text(&o)
    );
}

#[test]
fn a_clean_generated_round_flags_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_, store) = generated(dir.path(), false);
    let plan = testdata("audit_plan.toml");
    // The plain generator swabs every retest 1 to 4 hours after its pool's report (its
    // files may not change), so it breaks the one-hour rule by design: with a 4-hour
    // limit nothing is left to flag.
    let audit = json_of(
        pooltrack(&store)
            .args([
                "audit",
                "--round",
                ROUND,
                "--json",
                "--recall-hours",
                "4",
                "--plan",
            ])
            .arg(&plan),
    );
    assert_eq!(findings(&audit), BTreeSet::new(), "{audit}");
    assert_eq!(audit["strata"], "district");
    assert!(audit["shared_strata"].as_u64() > Some(0), "{audit}");
    for l in audit["labs"].as_array().expect("labs") {
        assert!(
            l["p_value"].as_f64().is_some(),
            "every lab is compared: {l}"
        );
        assert!(l["peak_in_window"].as_u64() < Some(282), "{l}");
    }
    // With the default hour, the late recalls are all there is, and all are within
    // the generator's four hours.
    let strict = json_of(pooltrack(&store).args(["audit", "--round", ROUND, "--json"]));
    let kinds: BTreeSet<String> = findings(&strict).into_iter().map(|f| f.0).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["late_recall".to_owned()]),
        "{strict}"
    );
}

#[test]
fn audit_refuses_bad_arguments_with_usage_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("audit_collections.csv")]);
    for (args, says) in [
        (vec!["--alpha", "0"], "--alpha"),
        (vec!["--alpha", "1.5"], "--alpha"),
        (vec!["--recall-hours", "-1"], "--recall-hours"),
        (vec!["--window-minutes", "0"], "--window-minutes"),
        (vec!["--json", "--out", "x.csv"], "cannot be used with"),
        (vec!["--by", "county"], "county"),
    ] {
        let o = run(pooltrack(&store)
            .args(["audit", "--round", ROUND])
            .args(&args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr_text(&o));
        assert!(
            stderr_text(&o).contains(says),
            "{args:?}: {}",
            stderr_text(&o)
        );
    }
    let o = run(pooltrack(&store).args(["audit", "--round", "1999-01-01"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr_text(&o));
    let o = run(pooltrack(&store).args(["audit", "--round", ROUND, "--by", "district"]));
    assert_eq!(o.status.code(), Some(2), "no register: {}", stderr_text(&o));
    let o = run(pooltrack(&store)
        .args(["audit", "--round", ROUND, "--plan"])
        .arg(dir.path().join("missing.toml")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr_text(&o));
    let o = run(pooltrack(&store)
        .args(["audit", "--round", ROUND, "--plan"])
        .arg(testdata("plan_bad_syntax.toml")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr_text(&o));
    let help = stdout_of(pooltrack(&store).args(["audit", "--help"]));
    for taught in [
        "Mantel-Haenszel",
        "Holm",
        "Example",
        "one-hour rule",
        "ceil(window",
    ] {
        assert!(help.contains(taught), "--help lacks {taught}:\n{help}");
    }
}

#[test]
fn the_round_report_has_the_audit_and_chromium_renders_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("audit_collections.csv")]);
    ingest_results(&store, &[testdata("audit_results.csv")]);
    let out = dir.path().join("report");
    let o = run(pooltrack(&store)
        .args(["report", "--round", ROUND, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("valid JSON");
    let part = &report["audit"];
    let shown: BTreeSet<(String, String, String)> = part["findings"]["first"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("lab"), s("tube"))
        })
        .collect();
    let standalone = json_of(pooltrack(&store).args(["audit", "--round", ROUND, "--json"]));
    assert_eq!(shown, findings(&standalone), "{part}");
    assert_eq!(part["findings"]["total"], 5);
    assert_eq!(part["labs"], standalone["labs"]);

    let Some(browser) = crate::common::browser("headless Chromium check of the audit part") else {
        return;
    };
    let url = format!("file://{}", out.join("index.html").display());
    let dom = crate::common::chromium(&browser, &["--dump-dom".to_owned(), url]);
    crate::common::assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom
        .find("<h2 id=\"audit\">")
        .unwrap_or_else(|| panic!("the rendered page has the audit part"));
    let part = &dom[start..];
    let end = part.find("</table>\n<table>").map_or(part.len(), |i| i + 1);
    let labs_table = &part[..end];
    // Two lab rows (A, B) after the header row, A flagged higher.
    assert_eq!(labs_table.matches("<tr>").count(), 3, "{labs_table}");
    assert!(
        labs_table.contains("<b class=\"red\">higher</b>"),
        "{labs_table}"
    );
    for tube in ["PB1-30", "PB2-40", "BIG-01", "PA1-01"] {
        assert!(
            part.contains(&format!("<td>{tube}</td>")),
            "{tube} not in the page"
        );
    }
}
