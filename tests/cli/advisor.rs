//! `pooltrack plan`'s pool design advisor (issue 19) through the real binary: two zones
//! of different prevalence get different schemes, in the terminal, the JSON and the
//! HTML (rendered by headless Chromium); the figures equal the textbook formulas,
//! written out here; a plan without an `[assay]` keeps a perfect test; a three-stage
//! zone is counted stage by stage.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{
    assert_chromium_ok, assert_screenshot_has_charts, browser, chromium, json_of, pooltrack,
    stdout_of, testdata,
};

fn plan_json(store: &Path, config: &Path) -> Value {
    json_of(
        pooltrack(store)
            .args(["plan", "--json", "--config"])
            .arg(config),
    )
}

fn x(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a whole number: {v}"))
}

fn option<'a>(zone: &'a Value, scheme: &str) -> &'a Value {
    zone["options"]
        .as_array()
        .expect("options")
        .iter()
        .find(|o| o["scheme"] == scheme)
        .unwrap_or_else(|| panic!("{scheme} in {zone:#}"))
}

// The textbook formulas, written out independently of the planner's general one.

/// Dorfman: 1/k + Se − (Se + Sp − 1)(1 − p)^k, with the pool's Se and Sp.
fn dorfman(p: f64, k: f64, se: f64, sp: f64) -> f64 {
    1.0 / k + se - (se + sp - 1.0) * (1.0 - p).powf(k)
}

/// Three stages k1 → k2 → 1: 1/k1 + A2/k2 + A3 with
/// A2 = Se1(1 − q^k1) + (1 − Sp1) q^k1 and
/// A3 = Se1 Se2 (1 − q^k2) + Se1 (1 − Sp2)(q^k2 − q^k1) + (1 − Sp1)(1 − Sp2) q^k1.
fn three_stage(p: f64, k1: f64, k2: f64, se: (f64, f64), sp: (f64, f64)) -> f64 {
    let q = 1.0 - p;
    let a2 = se.0 * (1.0 - q.powf(k1)) + (1.0 - sp.0) * q.powf(k1);
    let a3 = se.0 * se.1 * (1.0 - q.powf(k2))
        + se.0 * (1.0 - sp.1) * (q.powf(k2) - q.powf(k1))
        + (1.0 - sp.0) * (1.0 - sp.1) * q.powf(k1);
    1.0 / k1 + a2 / k2 + a3
}

/// Dorfman's specificity: 1 − (1 − Sp2)(Se1 (1 − q^(k−1)) + (1 − Sp1) q^(k−1)).
fn dorfman_specificity(p: f64, k: f64, se1: f64, sp1: f64, sp2: f64) -> f64 {
    let q = 1.0 - p;
    1.0 - (1.0 - sp2) * (se1 * (1.0 - q.powf(k - 1.0)) + (1.0 - sp1) * q.powf(k - 1.0))
}

/// `plan_advisor.toml`'s assay: single tube 0.98, pools 0.96 / 0.95 / 0.93, Sp 0.99.
fn se(k: f64) -> f64 {
    if k == 5.0 {
        0.96
    } else if k == 10.0 {
        0.95
    } else if k == 20.0 {
        0.93
    } else {
        0.98
    }
}
const SP: f64 = 0.99;

#[test]
fn two_zones_of_different_prevalence_get_different_schemes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = plan_json(dir.path(), &testdata("plan_advisor.toml"));
    let a = &r["advice"];
    assert_eq!(a["perfect_test"], false);
    let zones = a["zones"].as_array().expect("zones");
    assert_eq!(zones.len(), 2);
    let (old, new) = (&zones[0], &zones[1]);
    assert_eq!(old["zone"], "old town");
    assert_eq!(old["recommended"], "10:1");
    assert_eq!(new["zone"], "new districts");
    assert_eq!(new["recommended"], "20:1");

    for (zone, p) in [(old, 0.01), (new, 0.0005)] {
        for k in [5.0, 10.0, 20.0] {
            let o = option(zone, &format!("{k}:1"));
            let want = dorfman(p, k, se(k), SP);
            assert!((x(&o["tests_per_person"]) - want).abs() < 1e-12, "{k}: {o}");
            assert!((x(&o["sensitivity"]) - se(k) * 0.98).abs() < 1e-12);
            let spec = dorfman_specificity(p, k, se(k), SP, SP);
            assert!((x(&o["specificity"]) - spec).abs() < 1e-12, "{k}");
            let missed = 1e6 * p * (1.0 - se(k) * 0.98);
            assert!((x(&o["missed_per_million"]) - missed).abs() < 1e-6);
        }
        for (k1, k2) in [(10.0, 5.0), (20.0, 5.0), (20.0, 10.0)] {
            let o = option(zone, &format!("{k1}→{k2}→1"));
            let want = three_stage(p, k1, k2, (se(k1), se(k2)), (SP, SP));
            assert!((x(&o["tests_per_person"]) - want).abs() < 1e-12, "{o}");
            // Sensitivity Se(k1) Se(k2) Se(1) < 0.90: the floor rules them out.
            assert!(se(k1) * se(k2) * 0.98 < 0.9);
            assert_eq!(o["standing"], "under_floor");
        }
        let single = option(zone, "single");
        assert_eq!(x(&single["tests_per_person"]), 1.0);
        assert_eq!(single["standing"], "fails_deadline");
    }
    // The README's worked example: p = 1 %, k = 10, Se 0.95 (pool) and 0.98 (single),
    // Sp 0.99: 1/10 + 0.95 − 0.94 × 0.99¹⁰ = 0.1999 tests a person, sensitivity 0.931,
    // 690 missed per million.
    let ten = option(old, "10:1");
    assert!((x(&ten["tests_per_person"]) - 0.1999).abs() < 5e-5);
    assert_eq!(ten["now"], true);
    assert_eq!(ten["standing"], "recommended");
    assert!((x(&ten["missed_per_million"]) - 690.0).abs() < 1e-6);
    // In the new districts 10:1 is what the plan does; 20:1 needs fewer tests.
    assert_eq!(option(new, "10:1")["standing"], "fails_deadline");
    assert!(x(&new["tests_saved"]) > 72_000.0);

    // The labs: Central 130 PCR × 94 × 12 runs = 146,640 (extraction 60 × 94 × 27 =
    // 152,280); Modular, 24 h: 60 × 94 × 16 = 90,240 (extraction 30 × 94 × 36 =
    // 101,520). Within 24 h: 236,880.
    assert_eq!(u(&a["within_deadline"]), 236_880);
    // As planned (both 10:1): 40,000 + 160,000 pools and
    // 400,000 × A2(10, 1 %) + 1,600,000 × A2(10, 0.05 %) retests.
    let a2 = |p: f64, k: f64| dorfman(p, k, se(k), SP) - 1.0 / k;
    let planned = 200_000.0 + (400_000.0 * a2(0.01, 10.0) + 1_600_000.0 * a2(0.0005, 10.0)).ceil();
    assert_eq!(u(&r["planned"]["demand"]["tubes"]) as f64, planned);
    assert_eq!(r["planned"]["capacity"]["pass"], false);
    // On the advice: the new districts at 20:1, 80,000 pools.
    let advised = 120_000.0 + (400_000.0 * a2(0.01, 10.0) + 1_600_000.0 * a2(0.0005, 20.0)).ceil();
    let together = &a["together"];
    assert_eq!(u(&together["round_tubes"]) as f64, advised);
    assert_eq!(u(&together["planned_tubes"]) as f64, planned);
    assert!(advised < 236_880.0);
    assert_eq!(together["capacity_pass"], true);
    assert_eq!(u(&option(old, "10:1")["round_tubes"]) as f64, advised);
}

#[test]
fn the_terminal_report_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = stdout_of(
        pooltrack(dir.path())
            .args(["plan", "--config"])
            .arg(testdata("plan_advisor.toml")),
    );
    for want in [
        "5. Pool design: a scheme recommended for 2 of 2 zone(s)",
        "zone \"old town\" (400,000 people, prevalence 1.000 %, now 10:1): keep 10:1",
        "zone \"new districts\" (1,600,000 people, prevalence 0.050 %, now 10:1): 20:1 instead of 10:1",
        "under the floor",
        "round too late",
        "every zone on its recommendation:",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("*  10:1 (now)"))
        .unwrap_or_else(|| panic!("the recommended row in\n{out}"));
    assert!(row.contains("0.1999") && row.contains("93.10 %"), "{row}");
}

/// A copy of `plan_advisor.toml` with `from` replaced by `to`, in `dir`.
fn variant(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(testdata("plan_advisor.toml")).expect("plan");
    assert!(text.contains(from), "{from}");
    let path = dir.join("variant.toml");
    std::fs::write(&path, text.replace(from, to)).expect("write");
    path
}

#[test]
fn a_lower_floor_admits_three_stages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = variant(
        dir.path(),
        "sensitivity_floor = 0.90",
        "sensitivity_floor = 0.85",
    );
    let r = plan_json(dir.path(), &path);
    let old = &r["advice"]["zones"][0];
    // At 1 %: 20→5→1 needs 1/20 + A2/5 + A3 = 0.1306 tests a person, the least of all,
    // and finds 0.93 × 0.96 × 0.98 = 87.5 % ≥ 85 %.
    assert_eq!(old["recommended"], "20→5→1");
    let o = option(old, "20→5→1");
    let want = three_stage(0.01, 20.0, 5.0, (0.93, 0.96), (SP, SP));
    assert!((want - 0.1306).abs() < 5e-5);
    assert!((x(&o["tests_per_person"]) - want).abs() < 1e-12);
    assert!((x(&o["sensitivity"]) - 0.93 * 0.96 * 0.98).abs() < 1e-12);
    // Three stages: 3 lab stages of 40 + 90 min and 2 recalls of 4 h for the last.
    let last = x(&o["hours_to_last_result"]);
    assert!(
        (last - (3.0 * 130.0 / 60.0 + 2.0 * 4.0)).abs() < 1e-9,
        "{last}"
    );
}

#[test]
fn a_plan_without_an_assay_has_a_perfect_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = plan_json(dir.path(), &testdata("plan_pass.toml"));
    let a = &r["advice"];
    assert_eq!(a["perfect_test"], true);
    for z in a["zones"].as_array().expect("zones") {
        for o in z["options"].as_array().expect("options") {
            assert_eq!(x(&o["sensitivity"]), 1.0);
            assert_eq!(x(&o["specificity"]), 1.0);
            assert_eq!(x(&o["missed_per_million"]), 0.0);
        }
        // The plan's own scheme is among the options (households of 2.7 too).
        assert!(
            z["options"]
                .as_array()
                .expect("options")
                .iter()
                .any(|o| o["now"] == true)
        );
    }
    // The planned round is as before the advisor (see plan.rs): 326,059 tubes.
    assert_eq!(u(&a["together"]["planned_tubes"]), 326_059);
    let text = stdout_of(
        pooltrack(dir.path())
            .args(["plan", "--config"])
            .arg(testdata("plan_pass.toml")),
    );
    assert!(
        text.contains("the plan states no [assay], so the test is taken as perfect"),
        "{text}"
    );
}

#[test]
fn a_three_stage_zone_is_counted_stage_by_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("three.toml");
    std::fs::write(
        &path,
        "[[zone]]\nname = \"z\"\npeople = 1_000_000\nmode = \"pooled\"\npool_size = 20\n\
         retest_pool_size = 5\nprevalence = 0.002\n\
         [[lab]]\nname = \"L\"\n\
         extraction = { instruments = 100, samples_per_run = 94, minutes_per_run = 40 }\n\
         pcr = { instruments = 200, samples_per_run = 94, minutes_per_run = 90 }\n\
         [reagents]\nphysical_tests = 1_000_000\nswabs = 5_000_000\npool_tubes = 500_000\n",
    )
    .expect("write");
    let r = plan_json(dir.path(), &path);
    let d = &r["planned"]["demand"];
    // Perfect test, p = 0.2 %: 50,000 pools of 20; 1 − 0.998²⁰ of them positive, each
    // swabbing 20 people again into 4 pools of 5; 1 − 0.998⁵ of those positive, each
    // swabbing 5 people again into single tubes.
    let q: f64 = 0.998;
    let stage2_people = 1_000_000.0 * (1.0 - q.powi(20));
    let stage2_pools = stage2_people / 5.0;
    let stage3 = 1_000_000.0 * (1.0 - q.powi(5));
    assert_eq!(u(&d["pool_tubes"]), 50_000);
    assert_eq!(u(&d["retests"]) as f64, (stage2_pools + stage3).ceil());
    assert_eq!(
        u(&d["pool_tube_use"]) as f64,
        50_000.0 + stage2_pools.ceil()
    );
    assert_eq!(u(&d["single_tube_use"]) as f64, stage3.ceil());
    assert_eq!(
        u(&d["swabs"]) as f64,
        1_000_000.0 + (stage2_people + stage3).ceil()
    );
    let zone = &d["groups"][0];
    assert_eq!(zone["mode"], "three_stage");
    assert_eq!(zone["retest_pool_size"], 5);
    assert_eq!(r["advice"]["zones"][0]["now"], "20→5→1");
    // A retest pool that does not split the pool is refused with its line.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .expect("read")
            .replace("retest_pool_size = 5", "retest_pool_size = 3"),
    )
    .expect("write");
    let out = pooltrack(dir.path())
        .args(["plan", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 6: zone[1].retest_pool_size: 3 does not split a pool of 20"),
        "{err}"
    );
}

#[test]
fn help_teaches_the_assay_and_the_advisor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = stdout_of(pooltrack(dir.path()).args(["plan", "--help"]));
    for want in [
        "[assay]",
        "sensitivity_floor",
        "0.90",
        "taken as perfect",
        "20→5→1",
        "plan_advisor.toml",
    ] {
        assert!(help.contains(want), "--help explains {want}:\n{help}");
    }
}

#[test]
fn the_advice_renders_in_headless_chromium() {
    let Some(browser) = browser("headless Chromium check of the plan's pool design section") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("report");
    let out = pooltrack(dir.path())
        .args(["plan", "--config"])
        .arg(testdata("plan_advisor.toml"))
        .arg("--html")
        .arg(&out_dir)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let page = out_dir.join("index.html");
    let url = format!("file://{}", page.display());
    let dom = chromium(&browser, &["--dump-dom".to_owned(), url.clone()]);
    assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("id=\"plan-advice\""));
    let chart = |id: &str| -> String {
        let start = dom
            .find(&format!("<svg id=\"{id}\""))
            .unwrap_or_else(|| panic!("the rendered page has the {id} chart"));
        let end = dom[start..].find("</svg>").expect("a closed svg") + start;
        dom[start..end].to_owned()
    };
    for (n, recommended) in [(1, "10:1"), (2, "20:1")] {
        let c = chart(&format!("plan-advice-chart-{n}"));
        // Seven schemes, one dot each, and the floor.
        assert_eq!(c.matches("<circle class=\"scheme ").count(), 7, "{c}");
        assert_eq!(c.matches("<circle class=\"scheme recommended\"").count(), 1);
        assert!(
            c.contains(&format!(
                "<circle class=\"scheme recommended\" data-scheme=\"{recommended}\""
            )),
            "zone {n}: {recommended}"
        );
        assert!(c.contains(&format!("id=\"plan-advice-floor-{n}\"")));
        assert!(c.contains("floor 90.0 %"));
    }
    // The tables say the same, a row per scheme, the recommended one marked.
    for (zone, recommended) in [("old town", "10:1"), ("new districts", "20:1")] {
        let start = dom
            .find(&format!("<table class=\"advice\" data-zone=\"{zone}\""))
            .unwrap_or_else(|| panic!("{zone}'s table"));
        let end = dom[start..].find("</table>").expect("closed") + start;
        let table = &dom[start..end];
        assert_eq!(table.matches("data-scheme=").count(), 7);
        assert!(
            table.contains(&format!(
                "<tr class=\"recommended\" data-scheme=\"{recommended}\">"
            )),
            "{zone}: {table}"
        );
        assert!(table.contains("under the floor"));
    }
    assert!(dom.contains("id=\"plan-advice-together\""));
    assert_screenshot_has_charts(&browser, &dir.path().join("page.png"), "1200,4000", url);
}
