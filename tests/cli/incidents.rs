//! A generated city with incidents (issue 3): `gen --incidents` stages a failed plate, a
//! late lab, a discordant pool, an unregistered person and untested registered people,
//! and a tube tested past the specimen limit, and the commands that exist see each of
//! them where `incidents.json` says they are.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of};
use crate::rules::{ingest_collections, ingest_results, person_status, run, stderr_text};

const ROUND: &str = "2022-04-02";

/// `(column → value)` rows of a generated CSV file.
fn rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("readable csv");
    let header = r.headers().expect("header").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            header
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn header(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("readable")
        .lines()
        .next()
        .expect("a header")
        .to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn field(rows: &Value, name: &str) -> BTreeSet<String> {
    rows.as_array()
        .unwrap_or_else(|| panic!("not an array: {rows}"))
        .iter()
        .map(|r| r[name].as_str().expect("a string").to_owned())
        .collect()
}

fn generate(store: &Path, out: &Path, incidents: bool) {
    let mut cmd = pooltrack(store);
    cmd.args(["gen", "--persons", "20000", "--seed", "3", "--out"])
        .arg(out);
    if incidents {
        cmd.arg("--incidents");
    }
    stdout_of(&mut cmd);
}

fn local_ms(text: &str) -> i64 {
    pooltrack::time::parse(text.as_bytes(), pooltrack::time::Offset::CHINA).expect("a time")
}

#[test]
fn incidents_city_shows_each_incident_to_the_commands() {
    let dir = tempfile::tempdir().expect("tmp");
    let city = dir.path().join("city");
    let store = dir.path().join("store");
    generate(&store, &city, true);
    let file = |name: &str| -> PathBuf { city.join(name) };
    let incidents: Value =
        serde_json::from_str(&std::fs::read_to_string(file("incidents.json")).expect("json"))
            .expect("valid JSON");

    // The generator's truth, from its files.
    let truth: BTreeSet<String> = rows(&file("truth.csv"))
        .into_iter()
        .map(|r| r["person"].clone())
        .collect();
    let collections = rows(&file("collections.csv"));
    let failed = &incidents["failed_plate"];
    let failed_tubes: BTreeSet<String> = strings(&failed["tubes"]).into_iter().collect();
    assert!(!failed_tubes.is_empty());
    let discordant = &incidents["discordant_pool"];
    let discordant_members: BTreeSet<String> =
        strings(&discordant["members"]).into_iter().collect();
    assert!(
        discordant_members.is_disjoint(&truth),
        "nobody in it is infected"
    );
    let hot_pools: BTreeSet<&str> = collections
        .iter()
        .filter(|c| c["mode"] == "pool" && truth.contains(&c["person"]))
        .map(|c| c["tube"].as_str())
        .collect();
    let mut expected_recall: BTreeSet<String> = collections
        .iter()
        .filter(|c| hot_pools.contains(c["tube"].as_str()) && !failed_tubes.contains(&c["tube"]))
        .map(|c| c["person"].clone())
        .collect();
    expected_recall.extend(discordant_members.iter().cloned());
    // The lab audit's false-positive pools recall their members too.
    let audit_pools = &incidents["lab_audit"]["positives_lab"];
    expected_recall.extend(strings(&audit_pools["members"]));
    let audit_false_positives = audit_pools["false_positive_pools"]
        .as_array()
        .map_or(0, Vec::len);

    // The register lacks exactly the unregistered person, who was collected.
    let register: BTreeSet<String> = rows(&file("population.csv"))
        .into_iter()
        .map(|r| r["person"].clone())
        .collect();
    let unregistered = incidents["unregistered_person"]["person"]
        .as_str()
        .expect("person");
    assert!(collections.iter().any(|c| c["person"] == unregistered));
    assert!(!register.contains(unregistered));
    let collected: BTreeSet<&str> = collections.iter().map(|c| c["person"].as_str()).collect();
    let untested: Vec<&String> = register
        .iter()
        .filter(|p| !collected.contains(p.as_str()))
        .collect();
    assert_eq!(
        u64::try_from(untested.len()).ok(),
        incidents["population"]["untested"].as_u64()
    );
    assert_eq!(collected.len() - 1 + untested.len(), register.len());

    // The late lab reports every tube more than 24 h after its last swab.
    let mut last_swab: HashMap<&str, i64> = HashMap::new();
    for c in &collections {
        let t = last_swab.entry(&c["tube"]).or_insert(i64::MIN);
        *t = (*t).max(local_ms(&c["collected_at"]));
    }
    let late = incidents["late_lab"]["lab"].as_str().expect("lab");
    let results = rows(&file("results.csv"));
    let mut late_tubes = 0;
    for r in results.iter().filter(|r| r["sample_type"] == "sample") {
        let turnaround = local_ms(&r["reported_at"]) - last_swab[r["tube"].as_str()];
        if r["lab"] == late {
            assert!(turnaround > 24 * 3_600_000, "{r:?}");
            late_tubes += 1;
        } else {
            assert!(turnaround < 24 * 3_600_000, "{r:?}");
        }
    }
    assert!(late_tubes > 0);

    // Pooled stage: the failed plate, and its tubes to rerun.
    let c = ingest_collections(&store, ROUND, &[file("collections.csv")]);
    assert_eq!(
        (c["committed"].as_u64(), c["rejected"].as_u64()),
        (Some(20_000), Some(0))
    );
    let r = ingest_results(&store, &[file("results.csv")]);
    assert_eq!(r["rejected"], 0, "{r}");
    let plates: Vec<(String, String)> = r["failed_plates"]
        .as_array()
        .expect("failed_plates")
        .iter()
        .map(|p| {
            (
                p["lab"].as_str().expect("lab").to_owned(),
                p["plate"].as_str().expect("plate").to_owned(),
            )
        })
        .collect();
    let staged = (
        failed["lab"].as_str().expect("lab").to_owned(),
        failed["plate"].as_str().expect("plate").to_owned(),
    );
    assert_eq!(plates, [staged]);
    let reruns = json_of(
        pooltrack(&store).args(["worklist", "rerun", "--round", ROUND, "--format", "json"]),
    );
    assert_eq!(field(&reruns, "tube"), failed_tubes);

    // The tube tested past the specimen limit: no result of it counts, so its persons
    // need a resample, and the list says why.
    let past = &incidents["custody"]["past_limit"];
    let past_tube = past["tube"].as_str().expect("tube");
    let past_members: BTreeSet<String> = collections
        .iter()
        .filter(|c| c["tube"] == past_tube)
        .map(|c| c["person"].clone())
        .collect();
    assert_eq!(
        u64::try_from(past_members.len()).ok(),
        past["persons"].as_u64()
    );
    let resample = json_of(
        pooltrack(&store).args(["worklist", "resample", "--round", ROUND, "--format", "json"]),
    );
    assert_eq!(field(&resample, "person"), past_members);
    let why = format!(
        "tested {} h after the swab, past the 48 h specimen limit",
        past["hours"]
    );
    for r in resample.as_array().expect("rows") {
        assert_eq!(
            (r["tube"].as_str(), r["not_counted"].as_str()),
            (Some(past_tube), Some(why.as_str())),
            "{r}"
        );
    }
    let counts = json_of(pooltrack(&store).args(["status", "--round", ROUND, "--json"]));
    assert_eq!(counts["tubes_past_limit"], 1, "{counts}");

    // Recall: the members of positive pools by the truth (the failed plate's tubes wait
    // for their rerun), and the discordant pool's members.
    let recall = json_of(
        pooltrack(&store).args(["worklist", "recall", "--round", ROUND, "--format", "json"]),
    );
    assert_eq!(field(&recall, "person"), expected_recall);
    for p in &discordant_members {
        assert_eq!(person_status(&store, ROUND, p), "recall", "{p}");
    }
    let on_failed_plate = collections
        .iter()
        .find(|c| failed_tubes.contains(&c["tube"]))
        .expect("a person on the failed plate");
    assert_eq!(
        person_status(&store, ROUND, &on_failed_plate["person"]),
        "pending"
    );

    // Retests clear the discordant pool's members and find exactly the infected.
    ingest_collections(&store, ROUND, &[file("retest_collections.csv")]);
    let r = ingest_results(&store, &[file("retest_results.csv")]);
    assert_eq!(r["rejected"], 0, "{r}");
    assert_eq!(r["failed_plates"].as_array().map(Vec::len), Some(0), "{r}");
    for p in &discordant_members {
        assert_eq!(person_status(&store, ROUND, p), "negative", "{p}");
    }
    // Nobody re-swabbed the late tube's persons.
    for p in &past_members {
        assert_eq!(person_status(&store, ROUND, p), "resample", "{p}");
    }
    let positives = json_of(pooltrack(&store).args([
        "worklist",
        "positives",
        "--round",
        ROUND,
        "--format",
        "json",
    ]));
    assert_eq!(field(&positives, "person"), truth);

    // Review: the discordant pool is flagged, with its members.
    let review = json_of(pooltrack(&store).args(["review", "--round", ROUND, "--format", "json"]));
    // (Besides the lab audit's false-positive pools, each discordant too.)
    assert_eq!(
        review["counts"]["discordant_pool"].as_u64(),
        u64::try_from(1 + audit_false_positives).ok(),
        "{review}"
    );
    let pool = discordant["tube"].as_str().expect("tube");
    assert!(
        review["discordant_pool"]
            .as_array()
            .expect("discordant pools")
            .iter()
            .any(|d| d["pool"]["tube"] == pool),
        "{review}"
    );

    // Turnaround: every tube of the late lab is late; the other labs mostly are not.
    let t = json_of(pooltrack(&store).args(["turnaround", "--round", ROUND, "--json"]));
    for lab in t["by_lab"].as_array().expect("by_lab") {
        let (tubes, late_n) = (&lab["tubes"], &lab["reported_late"]);
        if lab["lab"] == late {
            assert!(late_n.as_u64() > Some(0), "{lab}");
            assert_eq!(late_n, tubes, "{lab}");
        } else {
            // Only their single retests can miss the 6 h deadline.
            let share = late_n.as_f64().unwrap_or(1.0) / tubes.as_f64().unwrap_or(1.0);
            assert!(share < 0.5, "{lab}");
        }
    }

    // Coverage: the register's untested persons and the one unregistered person.
    let o = run(pooltrack(&store)
        .args(["ingest", "population"])
        .arg(file("population.csv")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let unreg = json_of(pooltrack(&store).args([
        "worklist",
        "unregistered",
        "--round",
        ROUND,
        "--format",
        "json",
    ]));
    assert_eq!(
        field(&unreg, "person"),
        BTreeSet::from([unregistered.to_owned()])
    );
    let cov = json_of(pooltrack(&store).args(["coverage", "--round", ROUND, "--json"]));
    assert_eq!(
        cov["untested"], incidents["population"]["untested"],
        "{cov}"
    );
    assert_eq!(cov["unregistered_tested"], 1);

    // The round report shows each incident, in the JSON and on the page.
    let out = dir.path().join("report");
    let o = run(pooltrack(&store)
        .args(["report", "--round", ROUND, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("valid JSON");
    let plate = failed["plate"].as_str().expect("plate");
    assert_eq!(
        report["plate_qc"]["failed_plates"][0]["plate"], plate,
        "{}",
        report["plate_qc"]
    );
    assert_eq!(
        report["plate_qc"]["reruns"]["total"].as_u64(),
        u64::try_from(failed_tubes.len()).ok()
    );
    assert_eq!(report["coverage"]["unregistered_tested"], 1);
    assert_eq!(
        report["coverage"]["unregistered_persons"]["first"][0]["person"],
        unregistered
    );
    assert_eq!(
        report["coverage"]["untested"],
        incidents["population"]["untested"]
    );
    let late_lab = report["turnaround"]["by_lab"]
        .as_array()
        .expect("by_lab")
        .iter()
        .find(|l| l["lab"] == late)
        .expect("the late lab is listed");
    assert_eq!(late_lab["reported_late"], late_lab["tubes"], "{late_lab}");
    assert_eq!(
        report["review"]["counts"]["discordant_pool"].as_u64(),
        u64::try_from(1 + audit_false_positives).ok()
    );
    let flagged: Vec<&Value> = report["review"]["flags"]["first"]
        .as_array()
        .expect("flags")
        .iter()
        .filter(|f| f["kind"] == "discordant_pool")
        .collect();
    assert_eq!(flagged.len(), 1 + audit_false_positives);
    assert!(flagged.iter().any(|f| f["tube"] == pool), "{flagged:?}");
    let page = std::fs::read_to_string(out.join("index.html")).expect("page");
    for shown in [plate, unregistered, late, pool] {
        assert!(page.contains(shown), "the page does not show {shown}");
    }
}

#[test]
fn gen_without_incidents_keeps_its_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let city = dir.path().join("city");
    generate(&dir.path().join("store"), &city, false);
    assert!(!city.join("population.csv").exists());
    assert!(!city.join("incidents.json").exists());
    for name in ["results.csv", "retest_results.csv"] {
        assert_eq!(
            header(&city.join(name)),
            "tube,result,ct_orf1ab,ct_n,reported_at,lab,plate,well"
        );
    }
    let summary = std::fs::read_to_string(city.join("summary.json")).expect("summary");
    assert!(!summary.contains("incidents"), "{summary}");
}

#[test]
fn gen_refuses_incidents_for_a_city_too_large_to_rewrite() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("city");
    let done = run(pooltrack(&dir.path().join("store"))
        .args(["gen", "--persons", "2000001", "--incidents", "--out"])
        .arg(&out));
    assert_eq!(done.status.code(), Some(2));
    assert!(
        stderr_text(&done).contains("at most 2000000 persons"),
        "{}",
        stderr_text(&done)
    );
    assert!(!out.exists(), "nothing is generated");
}
