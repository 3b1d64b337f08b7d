//! The generator's data shapes (`gen --blank-optional F --population`): blank optional
//! fields are "not stated", never a reason to lose a person, so a round with them
//! gives every status the same round without them gives.

use std::path::Path;

use crate::common::{json_of, pooltrack, stdout_of};

fn generate(out: &Path, extra: &[&str]) -> serde_json::Value {
    stdout_of(
        pooltrack(&out.join("unused"))
            .args([
                "gen",
                "--persons",
                "20000",
                "--prevalence",
                "0.01",
                "--pool-share",
                "0.8",
                "--seed",
                "7",
                "--out",
            ])
            .arg(out)
            .args(extra),
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&summary).expect("summary JSON")
}

fn ingest(store: &Path, city: &Path) -> serde_json::Value {
    for (kind, file) in [
        ("collections", "collections.csv"),
        ("results", "results.csv"),
    ] {
        let mut cmd = pooltrack(store);
        cmd.args(["ingest", kind, "--json"]).arg(city.join(file));
        if kind == "collections" {
            cmd.args(["--round", "R"]);
        }
        let report = json_of(&mut cmd);
        assert_eq!(report["rejected"], 0, "{kind}: {report}");
        assert_eq!(report["warnings"], 0, "{kind}: {report}");
    }
    json_of(pooltrack(store).args(["status", "--round", "R", "--json"]))
}

fn by_status(status: &serde_json::Value, name: &str) -> u64 {
    status["by_status"]
        .as_array()
        .expect("by_status")
        .iter()
        .find(|p| p[0] == name)
        .and_then(|p| p[1].as_u64())
        .expect("a count")
}

#[test]
fn blank_optional_fields_lose_no_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blank_city = dir.path().join("blank");
    let full_city = dir.path().join("full");
    let summary = generate(&blank_city, &["--blank-optional", "0.3", "--population"]);
    generate(&full_city, &[]);

    // A third of the rows really are blank where the columns are optional.
    let text = std::fs::read_to_string(blank_city.join("collections.csv")).expect("csv");
    let blank = text.lines().filter(|l| l.ends_with(',')).count();
    assert!(
        (5_000..7_000).contains(&blank),
        "{blank} rows without a site"
    );
    let results = std::fs::read_to_string(blank_city.join("results.csv")).expect("csv");
    assert!(results.lines().any(|l| l.ends_with(",,,")));

    let store = dir.path().join("store-blank");
    let status = ingest(&store, &blank_city);
    assert_eq!(status["persons"], summary["persons"], "{status}");
    assert_eq!(
        Some(by_status(&status, "recall")),
        summary["recalled_persons"].as_u64()
    );
    assert_eq!(
        Some(by_status(&status, "positive")),
        summary["positive_singles"].as_u64()
    );
    let full = ingest(&dir.path().join("store-full"), &full_city);
    assert_eq!(status, full, "the same statuses with every column written");

    // The register lists every generated person: nobody is untested but the 0.5 %
    // registered without a tube.
    let registered = summary["registered"].as_u64().expect("registered");
    let report = json_of(
        pooltrack(&store)
            .args(["ingest", "population", "--json"])
            .arg(blank_city.join("population.csv")),
    );
    assert_eq!(report["committed"].as_u64(), Some(registered));
    let coverage = json_of(pooltrack(&store).args(["coverage", "--round", "R", "--json"]));
    assert_eq!(coverage["tested"], summary["persons"], "{coverage}");
    assert_eq!(coverage["unregistered_tested"], 0, "{coverage}");
    assert_eq!(
        coverage["untested"].as_u64(),
        Some(registered - 20_000),
        "{coverage}"
    );
}

/// `gen --ids resident`: ids as a city's residents' are (district, birth date,
/// sequence, in no order) give the same round as ids numbered in row order: the same
/// statuses and coverage, and exports in id order.
#[test]
fn resident_ids_give_the_round_numbered_ids_give() {
    let dir = tempfile::tempdir().expect("tempdir");
    let resident_city = dir.path().join("resident");
    let numbered_city = dir.path().join("numbered");
    let summary = generate(&resident_city, &["--ids", "resident", "--population"]);
    generate(&numbered_city, &["--population"]);

    let rows = std::fs::read_to_string(resident_city.join("collections.csv")).expect("csv");
    let ids: Vec<&str> = rows
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    let ascending = ids.windows(2).filter(|w| w[0] < w[1]).count();
    assert!(
        (ids.len() * 2 / 5..ids.len() * 3 / 5).contains(&ascending),
        "ids in row order: {ascending} of {} neighbours ascend",
        ids.len()
    );
    assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("31")));

    let store = dir.path().join("store-resident");
    let status = ingest(&store, &resident_city);
    let numbered = dir.path().join("store-numbered");
    assert_eq!(status, ingest(&numbered, &numbered_city));
    assert_eq!(status["persons"], summary["persons"], "{status}");

    for (s, city) in [(&store, &resident_city), (&numbered, &numbered_city)] {
        let report = json_of(
            pooltrack(s)
                .args(["ingest", "population", "--json"])
                .arg(city.join("population.csv")),
        );
        assert_eq!(report["warnings"], 0, "{report}");
    }
    let coverage = |s: &Path| json_of(pooltrack(s).args(["coverage", "--round", "R", "--json"]));
    let resident_coverage = coverage(&store);
    assert_eq!(resident_coverage["tested"], summary["persons"]);
    assert_eq!(resident_coverage, coverage(&numbered));

    // The export lists every person of the round once, in id order.
    let out = dir.path().join("status.csv");
    stdout_of(
        pooltrack(&store)
            .args(["export", "status", "--round", "R", "--out"])
            .arg(&out),
    );
    let text = std::fs::read_to_string(&out).expect("export");
    let exported: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(Some(exported.len() as u64), summary["persons"].as_u64());
    assert!(exported.windows(2).all(|w| w[0] < w[1]), "not in id order");
}
