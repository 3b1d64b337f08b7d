//! Health codes across rounds (issue 20): `export health-codes --as-of T` over three
//! generated rounds matches a small model written here, which reads the generated CSV
//! files itself and applies the rules (per-round statuses, then windows of 48 h, 72 h
//! and a group's 24 h, and the clearing of a red code) without the library.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDateTime;
use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of};
use crate::rules::{csv_records, run, stderr_text};

/// Seconds since 1970 of a local `YYYY-MM-DD HH:MM:SS` (or RFC 3339) time; the zone is
/// the same everywhere in these files, so it is left out.
fn secs(t: &str) -> i64 {
    let t = t.get(..19).unwrap_or(t).replace('T', " ");
    NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .and_utc()
        .timestamp()
}

fn local(s: i64) -> String {
    chrono::DateTime::from_timestamp(s, 0)
        .expect("time")
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// One tube of one round, as the model reads the CSV files.
#[derive(Default, Clone)]
struct Tube {
    /// Mode stated by its rows.
    single: bool,
    members: usize,
    /// (`reported_at`, result), in the order the files list them.
    results: Vec<(i64, String)>,
}

/// A person's swab in a round.
#[derive(Clone)]
struct Swab {
    tube: String,
    at: i64,
}

/// A round: tubes and each person's swabs.
struct Round {
    name: String,
    tubes: HashMap<String, Tube>,
    swabs: BTreeMap<String, Vec<Swab>>,
}

fn read_round(dir: &Path, name: &str) -> Round {
    let mut round = Round {
        name: name.to_owned(),
        tubes: HashMap::new(),
        swabs: BTreeMap::new(),
    };
    for file in ["collections.csv", "retest_collections.csv"] {
        let text = std::fs::read_to_string(dir.join(name).join(file)).expect("collections");
        for r in csv_records(&text) {
            let tube = round.tubes.entry(r["tube"].clone()).or_default();
            tube.single = r["mode"] == "single";
            tube.members += 1;
            round
                .swabs
                .entry(r["person"].clone())
                .or_default()
                .push(Swab {
                    tube: r["tube"].clone(),
                    at: secs(&r["collected_at"]),
                });
        }
    }
    for file in ["results.csv", "retest_results.csv"] {
        let text = std::fs::read_to_string(dir.join(name).join(file)).expect("results");
        for r in csv_records(&text) {
            if let Some(tube) = round.tubes.get_mut(&r["tube"]) {
                tube.results
                    .push((secs(&r["reported_at"]), r["result"].clone()));
            }
        }
    }
    round
}

/// What a round says of a person as of `t`: status, deciding swab time, whether the
/// deciding tube is single, and their latest swab.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Said {
    status: &'static str,
    at: i64,
    single: bool,
    has_result: bool,
}

fn result_as_of(tube: &Tube, t: i64) -> Option<&str> {
    let mut rs: Vec<&(i64, String)> = tube.results.iter().filter(|r| r.0 <= t).collect();
    rs.sort_by_key(|r| r.0); // stable: the later file wins a tie
    let mut current: Option<&str> = None;
    for r in rs {
        if current != Some("positive") {
            current = Some(&r.1);
        }
    }
    current
}

fn said(round: &Round, person: &str, t: i64) -> Option<Said> {
    let swabs: Vec<&Swab> = round
        .swabs
        .get(person)?
        .iter()
        .filter(|s| s.at <= t)
        .collect();
    if swabs.is_empty() {
        return None;
    }
    let facts: Vec<(i64, bool, Option<&str>)> = swabs
        .iter()
        .map(|s| {
            let tube = &round.tubes[&s.tube];
            let single = tube.single && tube.members == 1;
            (s.at, single, result_as_of(tube, t))
        })
        .collect();
    let pick = |status, i: usize| Said {
        status,
        at: facts[i].0,
        single: facts[i].1,
        has_result: facts[i].2.is_some(),
    };
    if let Some(i) = facts.iter().position(|f| f.1 && f.2 == Some("positive")) {
        return Some(pick("positive", i));
    }
    let cleared = |at: i64| {
        facts
            .iter()
            .any(|f| f.0 > at && f.1 && f.2 == Some("negative"))
    };
    let waiting = |at: i64| facts.iter().any(|f| f.0 > at && f.1 && f.2.is_none());
    let flagged: Vec<usize> = (0..facts.len())
        .filter(|&i| !facts[i].1 && matches!(facts[i].2, Some("positive" | "inconclusive")))
        .filter(|&i| !cleared(facts[i].0))
        .collect();
    if let Some(&i) = flagged.iter().find(|&&i| !waiting(facts[i].0)) {
        return Some(pick("recall", i));
    }
    if let Some(&i) = flagged.first() {
        return Some(pick("retest_pending", i));
    }
    let resample = |f: &(i64, bool, Option<&str>)| {
        f.2 == Some("invalid") || (f.1 && f.2 == Some("inconclusive"))
    };
    if let Some(i) = (0..facts.len()).find(|&i| {
        resample(&facts[i])
            && !facts
                .iter()
                .any(|x| x.0 > facts[i].0 && x.2 == Some("negative"))
    }) {
        return Some(pick("resample", i));
    }
    if let Some(i) = facts.iter().position(|f| f.2.is_none()) {
        return Some(pick("pending", i));
    }
    let latest = (0..facts.len())
        .max_by_key(|&i| (facts[i].0, i))
        .unwrap_or(0);
    Some(pick("negative", latest))
}

/// The model's code: (color, reason, round of the deciding tube).
fn model_code(
    rounds: &[Round],
    person: &str,
    window_h: Option<i64>,
    t: i64,
) -> (&'static str, String, String) {
    let words: Vec<(&str, Said)> = rounds
        .iter()
        .filter_map(|r| said(r, person, t).map(|s| (r.name.as_str(), s)))
        .collect();
    let hours = window_h.unwrap_or(0);
    let Some(&(last_round, last)) = words.last() else {
        return (
            "yellow",
            format!("no_negative_within_{hours}h"),
            String::new(),
        );
    };
    // Red until two negative single tubes, a day apart, swabbed after the positive.
    if let Some(p) = words.iter().rposition(|w| w.1.status == "positive") {
        let (mut count, mut prev) = (0, i64::MIN);
        for w in &words[p + 1..] {
            match w.1.status {
                "negative" if w.1.single && (count == 0 || w.1.at >= prev + 24 * 3600) => {
                    count += 1;
                    prev = w.1.at;
                }
                "recall" | "retest_pending" | "resample" => count = 0,
                _ => {}
            }
        }
        if count < 2 {
            return ("red", "positive".into(), words[p].0.to_owned());
        }
    }
    if matches!(last.status, "recall" | "retest_pending" | "resample") {
        return ("yellow", last.status.into(), last_round.to_owned());
    }
    if hours == 0 {
        return ("green", last.status.into(), last_round.to_owned());
    }
    let negative = words.iter().rev().find(|w| w.1.status == "negative");
    if let Some(n) = negative
        && n.1.at + hours * 3600 > t
    {
        return ("green", format!("negative_within_{hours}h"), n.0.to_owned());
    }
    if last.status == "pending" && !last.has_result && last.at + hours * 3600 > t {
        return (
            "green",
            format!("pending_within_{hours}h"),
            last_round.to_owned(),
        );
    }
    let by = negative.map_or(last_round, |n| n.0);
    (
        "yellow",
        format!("no_negative_within_{hours}h"),
        by.to_owned(),
    )
}

struct City {
    _dir: tempfile::TempDir,
    store: std::path::PathBuf,
    rounds: Vec<Round>,
    /// Registered persons and their group.
    register: BTreeMap<String, String>,
    staged: Value,
}

fn city() -> City {
    let dir = tempfile::tempdir().expect("tmp");
    let gen_dir = dir.path().join("city");
    let store = dir.path().join("store");
    stdout_of(
        pooltrack(&store)
            .args([
                "gen",
                "--persons",
                "3000",
                "--prevalence",
                "0.02",
                "--seed",
                "7",
                "--rounds",
                "3",
                "--round-gap-hours",
                "30",
                "--out",
            ])
            .arg(&gen_dir),
    );
    let staged: Value = serde_json::from_str(
        &std::fs::read_to_string(gen_dir.join("rounds.json")).expect("rounds.json"),
    )
    .expect("json");
    stdout_of(
        pooltrack(&store)
            .args(["ingest", "population"])
            .arg(gen_dir.join("population.csv")),
    );
    let mut rounds = Vec::new();
    for r in staged["rounds"].as_array().expect("rounds") {
        let name = r["name"].as_str().expect("name");
        let d = gen_dir.join(name);
        stdout_of(
            pooltrack(&store)
                .args(["ingest", "collections", "--round", name])
                .arg(d.join("collections.csv"))
                .arg(d.join("retest_collections.csv")),
        );
        stdout_of(
            pooltrack(&store)
                .args(["ingest", "results"])
                .arg(d.join("results.csv"))
                .arg(d.join("retest_results.csv")),
        );
        rounds.push(read_round(&gen_dir, name));
    }
    let register =
        csv_records(&std::fs::read_to_string(gen_dir.join("population.csv")).expect("reg"))
            .into_iter()
            .map(|r| (r["person"].clone(), r["group"].clone()))
            .collect();
    City {
        _dir: dir,
        store,
        rounds,
        register,
        staged,
    }
}

fn set_windows(store: &Path, validity: u32) {
    std::fs::write(
        store.join("pooltrack.toml"),
        format!("[health_codes]\nvalidity_hours = {validity}\n\n[health_codes.groups]\ncold_chain = 24\nlab_staff = 72\n"),
    )
    .expect("config");
}

fn export(store: &Path, as_of: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = store.join("codes.csv");
    let o = run(pooltrack(store)
        .args(["export", "health-codes", "--as-of", as_of, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(
        text.starts_with(
            "person,color,reason,valid_until,group,round,status,tube,mode,collected_at,"
        )
    );
    csv_records(&text)
        .into_iter()
        .map(|r| (r["person"].clone(), r))
        .collect()
}

/// Compares the export at `as_of` with the model, person by person; returns the codes.
fn check(city: &City, as_of: &str, validity: i64) -> BTreeMap<String, BTreeMap<String, String>> {
    let codes = export(&city.store, as_of);
    let t = secs(as_of);
    let mut persons: Vec<&String> = city.register.keys().collect();
    for r in &city.rounds {
        persons.extend(r.swabs.keys());
    }
    persons.sort();
    persons.dedup();
    assert_eq!(
        codes.len(),
        persons.len(),
        "one code per person as of {as_of}"
    );
    let mut wrong = Vec::new();
    for p in persons {
        let window = city.register.get(p).map(|g| match g.as_str() {
            "cold_chain" => 24,
            "lab_staff" => 72,
            _ => validity,
        });
        let (color, reason, round) = model_code(&city.rounds, p, window, t);
        let got = &codes[p];
        if (
            got["color"].as_str(),
            got["reason"].as_str(),
            got["round"].as_str(),
        ) != (color, reason.as_str(), round.as_str())
        {
            wrong.push(format!(
                "{p}: model {color} {reason} {round}, export {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "as of {as_of}, {} differ:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(5)].join("\n")
    );
    codes
}

fn staged_time(city: &City, round: usize, key: &str) -> i64 {
    secs(city.staged["rounds"][round][key].as_str().expect("time"))
}

#[test]
fn codes_across_three_rounds_match_the_model_and_find_the_staged_lapse() {
    let city = city();
    set_windows(&city.store, 48);
    let before_third = city.staged["before_third_round"]
        .as_str()
        .expect("time")
        .to_owned();
    let codes = check(&city, &before_third, 48);
    // Every staged person without a group has had no swab for over 48 h: yellow, the
    // first round's negative tube named; the lab_staff one is still within 72 h.
    let lapsed = city.staged["lapsed"].as_array().expect("lapsed");
    assert!(lapsed.len() >= 3, "{lapsed:?}");
    for l in lapsed {
        let c = &codes[l["person"].as_str().expect("id")];
        if l["group"] == "lab_staff" {
            assert_eq!(
                (c["color"].as_str(), c["reason"].as_str()),
                ("green", "negative_within_72h"),
                "{c:?}"
            );
        } else {
            assert_eq!(
                (c["color"].as_str(), c["reason"].as_str()),
                ("yellow", "no_negative_within_48h"),
                "{c:?}"
            );
            assert_eq!(
                (c["round"].as_str(), c["result"].as_str()),
                ("R1", "negative"),
                "{c:?}"
            );
            assert!(
                c["collection_source"].contains("R1/collections.csv line "),
                "{c:?}"
            );
        }
    }
    // Nobody else without a group is yellow for a lapsed window unless never swabbed:
    // the clean persons of the second round stay green.
    let staged: Vec<&str> = lapsed.iter().filter_map(|l| l["person"].as_str()).collect();
    for (p, c) in &codes {
        if c["reason"] == "no_negative_within_48h" {
            assert!(
                staged.contains(&p.as_str()) || c["round"].is_empty(),
                "spurious yellow {c:?}"
            );
        }
    }
    let green_r2 = codes
        .values()
        .filter(|c| c["reason"] == "negative_within_48h" && c["round"] == "R2")
        .count();
    assert!(green_r2 > 2_000, "{green_r2}");
    // Mid second round (results after that time do not count), after the last result,
    // and long after: each matches the model.
    check(
        &city,
        &local(staged_time(&city, 1, "first_swab") + 5 * 3600),
        48,
    );
    check(
        &city,
        &local(staged_time(&city, 2, "last_report") + 3600),
        48,
    );
    let late = check(
        &city,
        &local(staged_time(&city, 2, "last_report") + 60 * 3600),
        48,
    );
    assert!(late.values().any(|c| c["reason"] == "negative_within_72h"));
    assert!(
        late.values()
            .any(|c| c["reason"] == "no_negative_within_48h" && c["round"] == "R3")
    );
    // A 72 h window for everyone: the staged persons are green again before R3.
    set_windows(&city.store, 72);
    let wide = check(&city, &before_third, 72);
    let first = lapsed
        .iter()
        .find(|l| l["group"] == "")
        .expect("one without a group");
    assert_eq!(
        wide[first["person"].as_str().expect("id")]["color"],
        "green"
    );
}

#[test]
fn a_person_history_shows_every_round_and_the_code_as_of_a_time() {
    let city = city();
    set_windows(&city.store, 48);
    let before_third = city.staged["before_third_round"]
        .as_str()
        .expect("time")
        .to_owned();
    let lapsed = city.staged["lapsed"].as_array().expect("lapsed");
    let person = lapsed
        .iter()
        .find(|l| l["group"] == "")
        .and_then(|l| l["person"].as_str())
        .expect("one");
    let h = json_of(pooltrack(&city.store).args([
        "status",
        "--person",
        person,
        "--as-of",
        &before_third,
        "--json",
    ]));
    assert_eq!(
        (h["color"].as_str(), h["reason"].as_str()),
        (Some("yellow"), Some("no_negative_within_48h")),
        "{h}"
    );
    let rounds: Vec<(&str, &str)> = h["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .map(|r| {
            (
                r["round"].as_str().unwrap_or(""),
                r["status_as_of"].as_str().unwrap_or(""),
            )
        })
        .collect();
    // R3 has swabbed nobody by then; after R3 the history holds all three.
    assert_eq!(rounds, [("R1", "negative"), ("R2", "no_tube")]);
    let after = local(staged_time(&city, 2, "last_report") + 3600);
    let h = json_of(
        pooltrack(&city.store).args(["status", "--person", person, "--as-of", &after, "--json"]),
    );
    let names: Vec<&str> = h["rounds"]
        .as_array()
        .expect("rounds")
        .iter()
        .filter_map(|r| r["round"].as_str())
        .collect();
    assert_eq!(names, ["R1", "R2", "R3"]);
    assert_eq!(
        h["rounds"][2]["report"]["tubes"][0]["result"], "negative",
        "{h}"
    );
    assert_eq!(
        (h["color"].as_str(), h["decided_by_round"].as_str()),
        (Some("green"), Some("R3"))
    );
    // The text form says the same.
    let text =
        stdout_of(pooltrack(&city.store).args(["status", "--person", person, "--as-of", &after]));
    assert!(
        text.contains("round R2: no tube") && text.contains("green (negative_within_48h"),
        "{text}"
    );
    // JSON lines and Parquet hold the same rows as the CSV.
    let lines = stdout_of(pooltrack(&city.store).args([
        "export",
        "health-codes",
        "--as-of",
        &after,
        "--format",
        "json",
    ]));
    let csv = export(&city.store, &after);
    // One object a line between the brackets.
    assert_eq!(lines.lines().count(), csv.len() + 2);
    let first = lines.lines().nth(1).expect("a line").trim_end_matches(',');
    let first: Value = serde_json::from_str(first).expect("json");
    assert_eq!(
        first["reason"],
        csv[first["person"].as_str().expect("id")]["reason"]
    );
    let pq = city.store.join("codes.parquet");
    stdout_of(
        pooltrack(&city.store)
            .args(["export", "health-codes", "--as-of", &after, "--out"])
            .arg(&pq),
    );
    assert!(std::fs::read(&pq).expect("parquet").starts_with(b"PAR1"));
    // The per-round export is unchanged, and --as-of belongs to the export across rounds.
    let o = run(pooltrack(&city.store).args([
        "export",
        "health-codes",
        "--round",
        "R1",
        "--as-of",
        &after,
    ]));
    assert_eq!(o.status.code(), Some(2));
}

/// A store of the README's example (three rounds, five registered persons).
fn example_store(store: &Path) {
    let example = crate::common::testdata("rounds_example");
    stdout_of(
        pooltrack(store)
            .args(["ingest", "population"])
            .arg(example.join("population.csv")),
    );
    for r in 1..=3 {
        stdout_of(
            pooltrack(store)
                .args(["ingest", "collections", "--round", &format!("R{r}")])
                .arg(example.join(format!("r{r}_collections.csv"))),
        );
        stdout_of(
            pooltrack(store)
                .args(["ingest", "results"])
                .arg(example.join(format!("r{r}_results.csv"))),
        );
    }
    std::fs::copy(example.join("pooltrack.toml"), store.join("pooltrack.toml")).expect("toml");
}

#[test]
fn the_readme_example_gives_the_colors_its_table_shows() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    example_store(&store);
    let table = [
        (
            "2022-04-03 14:00",
            [
                "yellow recall",
                "green negative_within_48h",
                "green negative_within_72h",
                "yellow recall",
                "green negative_within_24h",
            ],
        ),
        (
            "2022-04-04 12:00",
            [
                "green negative_within_48h",
                "yellow no_negative_within_48h",
                "green negative_within_72h",
                "red positive",
                "yellow no_negative_within_24h",
            ],
        ),
        (
            "2022-04-05 10:00",
            [
                "green negative_within_48h",
                "green pending_within_48h",
                "green pending_within_72h",
                "red positive",
                "green pending_within_24h",
            ],
        ),
        (
            "2022-04-05 13:00",
            [
                "green negative_within_48h",
                "green negative_within_48h",
                "green negative_within_72h",
                "red positive",
                "green negative_within_24h",
            ],
        ),
    ];
    for (at, want) in table {
        let codes = export(&store, at);
        let got: Vec<String> = ["A", "B", "C", "D", "E"]
            .iter()
            .map(|p| format!("{} {}", codes[*p]["color"], codes[*p]["reason"]))
            .collect();
        assert_eq!(got, want, "as of {at}");
    }
    let codes = export(&store, "2022-04-04 12:00");
    assert_eq!(
        (codes["B"]["round"].as_str(), codes["B"]["tube"].as_str()),
        ("R1", "PL01")
    );
    assert_eq!(
        (codes["D"]["tube"].as_str(), codes["D"]["result"].as_str()),
        ("SG04", "positive")
    );
    assert_eq!(codes["A"]["valid_until"], "2022-04-05T15:00:00+08:00");
    let b = stdout_of(pooltrack(&store).args([
        "status",
        "--person",
        "B",
        "--as-of",
        "2022-04-04 12:00",
    ]));
    assert!(
        b.contains("round R1: negative")
            && b.contains("round R2: no tube")
            && !b.contains("round R3"),
        "{b}"
    );
}

#[test]
fn the_round_report_counts_the_codes_across_rounds_and_chromium_renders_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    example_store(&store);
    let out = dir.path().join("report");
    stdout_of(
        pooltrack(&store)
            .args([
                "report",
                "--round",
                "R2",
                "--as-of",
                "2022-04-04 12:00",
                "--out",
            ])
            .arg(&out),
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("report.json");
    let c = &json["health_codes_across_rounds"];
    // The README table's row for 04-04 12:00: D red, B and E yellow, A and C green.
    assert_eq!(
        (c["red"].as_u64(), c["yellow"].as_u64(), c["green"].as_u64()),
        (Some(1), Some(2), Some(2)),
        "{c}"
    );
    assert_eq!(c["by_reason"]["no_negative_within_24h"], 1);
    assert_eq!(c["by_reason"]["negative_within_72h"], 1);
    let Some(browser) =
        crate::common::browser("headless Chromium check of the codes across rounds")
    else {
        return;
    };
    let url = format!("file://{}", out.join("index.html").display());
    let dom = crate::common::chromium(&browser, &["--dump-dom".to_owned(), url]);
    crate::common::assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom
        .find("<h2 id=\"health-codes-across-rounds\">")
        .expect("the section is rendered");
    let section = &dom[start..];
    let section = &section[..section.find("</table>").expect("its table")];
    for want in [
        "1 red",
        "2 yellow",
        "2 green",
        "<td>no_negative_within_48h</td><td>1</td>",
        "<td>positive</td><td>1</td>",
    ] {
        assert!(section.contains(want), "{want} in {section}");
    }
}

#[test]
fn a_report_of_a_store_with_one_round_has_no_codes_across_rounds() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    let example = crate::common::testdata("rounds_example");
    stdout_of(
        pooltrack(&store)
            .args(["ingest", "collections", "--round", "R1"])
            .arg(example.join("r1_collections.csv")),
    );
    let out = dir.path().join("report");
    stdout_of(
        pooltrack(&store)
            .args(["report", "--round", "R1", "--out"])
            .arg(&out),
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("report.json");
    assert!(json["health_codes_across_rounds"].is_null());
    let page = std::fs::read_to_string(out.join("index.html")).expect("page");
    assert!(!page.contains("health-codes-across-rounds"));
}

/// `status --person ID` without `--round` answers from each round's person lookup:
/// every round's part is what `status --person ID --round R` prints, and the code is
/// the one `export health-codes --as-of` (which decides every person from whole
/// rounds) gives the person, as of times before, between and after the rounds.
#[test]
fn a_person_history_agrees_with_each_round_and_with_the_export() {
    let city = city();
    set_windows(&city.store, 48);
    // The generator tests no tube past the specimen limit on a plain round.
    for r in &city.rounds {
        let counts = json_of(pooltrack(&city.store).args(["status", "--round", &r.name, "--json"]));
        assert_eq!(counts["tubes_past_limit"], 0, "{}: {counts}", r.name);
    }
    // Persons of every kind: lapsed, recalled and retested, found positive, in a key
    // group, registered but never swabbed, and plain.
    let mut persons: Vec<String> = city.staged["lapsed"]
        .as_array()
        .expect("lapsed")
        .iter()
        .filter_map(|l| l["person"].as_str().map(str::to_owned))
        .collect();
    for r in &city.rounds {
        let retested = r.swabs.iter().filter(|(_, s)| s.len() > 1);
        persons.extend(retested.take(3).map(|(p, _)| p.clone()));
        let positive = r.swabs.iter().filter(|(_, s)| {
            s.iter().any(|x| {
                let t = &r.tubes[&x.tube];
                t.single && t.results.iter().any(|(_, res)| res == "positive")
            })
        });
        persons.extend(positive.take(2).map(|(p, _)| p.clone()));
    }
    for group in ["cold_chain", "lab_staff"] {
        let members = city.register.iter().filter(|(_, g)| *g == group);
        persons.extend(members.take(2).map(|(p, _)| p.clone()));
    }
    let swabbed = |p: &str| city.rounds.iter().any(|r| r.swabs.contains_key(p));
    let never = city.register.keys().filter(|p| !swabbed(p));
    persons.extend(never.take(2).cloned());
    persons.extend(city.rounds[0].swabs.keys().take(2).cloned());
    persons.sort();
    persons.dedup();
    assert!(persons.len() >= 15, "{persons:?}");

    // Each person's report of each round, which does not depend on the time.
    let mut reports: BTreeMap<(String, String), Value> = BTreeMap::new();
    for p in &persons {
        for r in &city.rounds {
            if r.swabs.contains_key(p) {
                let v = json_of(
                    pooltrack(&city.store)
                        .args(["status", "--person", p, "--round", &r.name, "--json"]),
                );
                reports.insert((p.clone(), r.name.clone()), v);
            }
        }
    }
    let times = [
        staged_time(&city, 1, "first_swab") + 2 * 3600,
        secs(city.staged["before_third_round"].as_str().expect("time")),
        staged_time(&city, 2, "last_report") + 3600,
    ];
    for (k, &t) in times.iter().enumerate() {
        let as_of = local(t);
        let codes = export(&city.store, &as_of);
        let rounds_by_then: Vec<&str> = (0..city.rounds.len())
            .filter(|&i| staged_time(&city, i, "first_swab") <= t)
            .map(|i| city.rounds[i].name.as_str())
            .collect();
        for p in &persons {
            let h = json_of(
                pooltrack(&city.store).args(["status", "--person", p, "--as-of", &as_of, "--json"]),
            );
            let row = &codes[p];
            let what = format!("{p} as of {as_of}: {h}\nexport: {row:?}");
            assert_eq!(h["color"].as_str(), Some(row["color"].as_str()), "{what}");
            assert_eq!(h["reason"].as_str(), Some(row["reason"].as_str()), "{what}");
            assert_eq!(
                h["valid_until"].as_str().map(secs),
                Some(row["valid_until"].as_str())
                    .filter(|v| !v.is_empty())
                    .map(secs),
                "{what}"
            );
            assert_eq!(
                h["decided_by_round"].as_str().unwrap_or(""),
                row["round"],
                "{what}"
            );
            assert_eq!(h["group"].as_str(), Some(row["group"].as_str()), "{what}");
            assert_eq!(
                h["registered"].as_bool(),
                Some(city.register.contains_key(p)),
                "{what}"
            );
            let lines = h["rounds"].as_array().expect("rounds");
            let names: Vec<&str> = lines.iter().filter_map(|l| l["round"].as_str()).collect();
            assert_eq!(names, rounds_by_then, "{what}");
            for line in lines {
                let round = line["round"].as_str().expect("round");
                let status = line["status_as_of"].as_str().expect("status");
                let r = city
                    .rounds
                    .iter()
                    .find(|r| r.name == round)
                    .expect("a round");
                let swabbed_by_then = r.swabs.get(p).is_some_and(|s| s.iter().any(|x| x.at <= t));
                let report = reports
                    .get(&(p.clone(), round.to_owned()))
                    .filter(|_| swabbed_by_then);
                if let Some(report) = report {
                    assert_eq!(&line["report"], report, "{what}");
                    if k == times.len() - 1 {
                        // After every result: the round's status, as of then.
                        assert_eq!(Some(status), report["status"].as_str(), "{what}");
                    }
                } else {
                    assert!(line["report"].is_null(), "{what}");
                    assert_eq!(status, "no_tube", "{what}");
                }
                if row["round"] == round {
                    assert_eq!(status, row["status"], "{what}");
                }
            }
        }
    }
}

/// `export health-codes --as-of T --out F`: the file's bytes and what was said on stderr.
fn export_bytes(store: &Path, as_of: &str) -> (Vec<u8>, String) {
    let out = store.join("codes-bytes.csv");
    let o = run(pooltrack(store)
        .args(["export", "health-codes", "--as-of", as_of, "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    (std::fs::read(&out).expect("written"), stderr_text(&o))
}

/// The same export with no saved fold: every round read and folded.
fn export_folding_all(store: &Path, as_of: &str) -> Vec<u8> {
    let _ = std::fs::remove_file(store.join("health-codes.state"));
    let (bytes, said) = export_bytes(store, as_of);
    assert!(!said.contains("came from the fold saved"), "{said}");
    bytes
}

const FROM_STATE: &str = "rounds R1 to R2 came from the fold saved by an earlier export";

#[test]
fn the_saved_fold_of_settled_rounds_gives_the_codes_of_a_full_fold_and_only_while_it_holds() {
    let city = city();
    set_windows(&city.store, 48);
    let state = city.store.join("health-codes.state");
    // After every swab and report of the three rounds: R1 and R2 are settled.
    let late = local(staged_time(&city, 2, "last_report") + 3600);
    let (first, said) = export_bytes(&city.store, &late);
    assert!(!said.contains("came from the fold saved"), "{said}");
    assert!(
        state.exists(),
        "the first export saves the settled rounds' fold"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&state).expect("state").permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o600, "hashes of person ids are the owner's only");
    let (again, said) = export_bytes(&city.store, &late);
    assert!(said.contains(FROM_STATE), "{said}");
    assert_eq!(again, first, "the saved fold gives the same codes");
    // A later time: the same state holds, and the codes agree with a full fold.
    let later = local(staged_time(&city, 2, "last_report") + 40 * 3600);
    let (from_state, said) = export_bytes(&city.store, &later);
    assert!(said.contains(FROM_STATE), "{said}");
    assert_eq!(from_state, export_folding_all(&city.store, &later));

    // An export as of a time when only R1 was settled (R2 under way) neither uses the
    // state nor leaves a shorter one for the next.
    let r1_settled =
        local(staged_time(&city, 0, "last_report").max(staged_time(&city, 1, "first_swab")) + 600);
    let (_, said) = export_bytes(&city.store, &r1_settled);
    assert!(!said.contains("came from the fold saved"), "{said}");
    let (_, said) = export_bytes(&city.store, &late);
    assert!(
        said.contains(FROM_STATE),
        "the state of R1 and R2 is kept: {said}"
    );

    // A time before R2's last report: R2 was not settled then, so the state is not
    // used, and the codes are those of a full fold as of then.
    let earlier = local(staged_time(&city, 1, "last_report") - 3600);
    let (then, said) = export_bytes(&city.store, &earlier);
    assert!(!said.contains("came from the fold saved"), "{said}");
    assert_eq!(then, export_folding_all(&city.store, &earlier));

    // Damage anywhere in the file: not used.
    export_bytes(&city.store, &late);
    let mut bytes = std::fs::read(&state).expect("state");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&state, &bytes).expect("damaged");
    let (damaged, said) = export_bytes(&city.store, &late);
    assert!(!said.contains("came from the fold saved"), "{said}");
    assert_eq!(damaged, first);
    // ... and the export saved a good one again.
    assert!(export_bytes(&city.store, &late).1.contains(FROM_STATE));

    // Other rules in pooltrack.toml: not used.
    std::fs::write(
        city.store.join("pooltrack.toml"),
        "[health_codes]\nvalidity_hours = 48\nclear_negatives = 1\n\n[health_codes.groups]\ncold_chain = 24\nlab_staff = 72\n",
    )
    .expect("config");
    let (ruled, said) = export_bytes(&city.store, &late);
    assert!(!said.contains("came from the fold saved"), "{said}");
    assert_eq!(ruled, export_folding_all(&city.store, &late));
    set_windows(&city.store, 48);
    export_bytes(&city.store, &late);

    // R1's results retracted (batch 3: register 1, R1's collections 2): R1's facts
    // changed, so the state is not used, and the codes follow the retraction.
    let o = run(pooltrack(&city.store).args([
        "retract",
        "--batch",
        "3",
        "--reason",
        "the lab's test export",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let (retracted, said) = export_bytes(&city.store, &late);
    assert!(!said.contains("came from the fold saved"), "{said}");
    assert_eq!(retracted, export_folding_all(&city.store, &late));
    assert_ne!(retracted, first, "R1's results no longer count");

    // The state is the store's own file: verify names no problem with it.
    let o = run(pooltrack(&city.store).args(["verify"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_text(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr_text(&o);
    assert!(!text.contains("health-codes.state"), "{text}");
}
