//! Nothing lost on files we did not write (issue 14): blank optional fields, rows that
//! disagree about their tube, and "single" tubes holding two persons.
//!
//! The round generator here is not the project's (`pooltrack gen`): it writes pools
//! of 5, 10 and 20 and single tubes, leaves `capacity` blank at random as a scanning
//! app that records it only sometimes would, lets some rows of a tube state another
//! mode or capacity, scans some persons twice, puts two persons into some single
//! tubes, and writes Ct-only result rows. The statuses are checked against a small
//! model written from the README's rules, not from `src/tracker`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::common::{json_of, pooltrack, stdout_of};
use crate::rules::{exported_statuses, ingest_collections, ingest_results, rejects_of};

const ROUND: &str = "2022-04-02";

/// A small, seeded generator (xorshift64*), so failures repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What the model needs of a tube: its rows' stated metadata and its members.
#[derive(Default, Clone)]
struct Tube {
    stated_mode: Option<&'static str>,
    members: Vec<String>,
    /// (outcome, reported minute) in arrival order.
    results: Vec<(&'static str, u32)>,
}

/// The model: tubes, and each person's memberships (tube, collection minute).
#[derive(Default)]
struct Round {
    tubes: BTreeMap<String, Tube>,
    persons: BTreeMap<String, Vec<(String, u32)>>,
}

impl Round {
    /// Records a scan; the same (tube, person) again is one membership.
    fn scan(&mut self, tube: &str, person: &str, mode: Option<&'static str>, at: u32) {
        let t = self.tubes.entry(tube.to_owned()).or_default();
        if t.stated_mode.is_none() {
            t.stated_mode = mode;
        }
        if t.members.iter().any(|m| m == person) {
            return;
        }
        t.members.push(person.to_owned());
        self.persons
            .entry(person.to_owned())
            .or_default()
            .push((tube.to_owned(), at));
    }

    /// A tube holding more than one person is a pool, whatever its rows call it.
    fn is_single(&self, tube: &str) -> bool {
        let t = &self.tubes[tube];
        t.stated_mode == Some("single") && t.members.len() == 1
    }

    /// The latest result by time, except that a positive is never cleared.
    fn effective(&self, tube: &str) -> Option<&'static str> {
        let mut rs = self.tubes[tube].results.clone();
        rs.sort_by_key(|r| r.1);
        let mut current = None;
        for (o, _) in rs {
            if current != Some("positive") {
                current = Some(o);
            }
        }
        current
    }

    /// The README's precedence.
    fn status(&self, person: &str) -> &'static str {
        let tubes: Vec<(bool, u32, Option<&str>)> = self.persons[person]
            .iter()
            .map(|(t, at)| (self.is_single(t), *at, self.effective(t)))
            .collect();
        if tubes.iter().any(|t| t.0 && t.2 == Some("positive")) {
            return "positive";
        }
        let open: Vec<_> = tubes
            .iter()
            .filter(|t| !t.0 && matches!(t.2, Some("positive" | "inconclusive")))
            .filter(|p| {
                !tubes
                    .iter()
                    .any(|s| s.0 && s.1 > p.1 && s.2 == Some("negative"))
            })
            .collect();
        if !open.is_empty() {
            let waits = |p: &&(bool, u32, Option<&str>)| {
                tubes.iter().any(|s| s.0 && s.1 > p.1 && s.2.is_none())
            };
            return if open.iter().all(waits) {
                "retest_pending"
            } else {
                "recall"
            };
        }
        if tubes.iter().any(|t| {
            (t.2 == Some("invalid") || (t.0 && t.2 == Some("inconclusive")))
                && !tubes.iter().any(|n| n.1 > t.1 && n.2 == Some("negative"))
        }) {
            return "resample";
        }
        if tubes.iter().any(|t| t.2.is_none()) {
            return "pending";
        }
        "negative"
    }
}

fn minute(m: u32) -> String {
    format!(
        "2022-04-{:02} {:02}:{:02}:00",
        2 + m / 1440,
        (m / 60) % 24,
        m % 60
    )
}

/// A result row's outcome columns: a word, or Ct values only.
fn result_fields(rng: &mut Rng, outcome: &'static str) -> String {
    let ct_only = rng.chance(300);
    match (outcome, ct_only) {
        ("positive", true) => "\"\",27.5,29.1".to_owned(),
        ("negative", true) => "\"\",,".to_owned(),
        ("inconclusive", true) => "\"\",38.2,".to_owned(),
        (word, _) => format!("{word},,"),
    }
}

/// Generates a round of `persons` in two stages (pools, then single retests of the
/// recalled), writes the files into `dir`, ingests them, and returns the model.
fn generate_and_ingest(store: &Path, dir: &Path, persons: u32, seed: u64) -> Round {
    let mut rng = Rng(seed);
    let mut round = Round::default();
    let mut rows = String::from("tube,person,mode,capacity,collected_at,site\n");
    let mut results = String::from("tube,result,ct_orf1ab,ct_n,reported_at\n");
    let mut next_person = 0u32;
    let mut tube_no = 0u32;
    let mut minute_at = 0u32;
    // Each first-stage tube with its last swab.
    let mut first_stage: Vec<(String, u32)> = Vec::new();
    while next_person < persons {
        tube_no += 1;
        let single = rng.chance(60);
        let size = if single {
            // Some "single" tubes get a second person.
            if rng.chance(100) { 2 } else { 1 }
        } else {
            match rng.below(3) {
                0 => 5,
                1 => 10,
                _ => 20,
            }
        };
        let tube = format!("{}{tube_no:08}", if single { "S" } else { "P" });
        let site = format!("SITE-{}", tube_no % 7);
        let mode = if single { "single" } else { "pool" };
        for k in 0..size {
            if next_person >= persons {
                break;
            }
            let person = format!("1101{:014}", 10_000 + next_person);
            next_person += 1;
            minute_at += 1;
            // Blank capacity about 30 % of the time; now and then a row states another
            // capacity or mode than the tube's first rows.
            let mut cap = if rng.chance(300) {
                String::new()
            } else if single {
                "1".to_owned()
            } else {
                size.to_string()
            };
            let mut row_mode = mode;
            if k > 0 && rng.chance(40) {
                if single {
                    row_mode = "pool";
                    "10".clone_into(&mut cap);
                } else {
                    if size == 20 { "10" } else { "20" }.clone_into(&mut cap);
                }
            }
            let blank_mode = k > 0 && rng.chance(20);
            let stated = if blank_mode { None } else { Some(row_mode) };
            writeln!(
                rows,
                "{tube},{person},{},{cap},{},{site}",
                stated.unwrap_or(""),
                minute(minute_at)
            )
            .expect("w");
            round.scan(&tube, &person, stated, minute_at);
            // A double scan, a minute later.
            if rng.chance(15) {
                minute_at += 1;
                writeln!(rows, "{tube},{person},{mode},,{},{site}", minute(minute_at)).expect("w");
            }
        }
        first_stage.push((tube, minute_at));
    }
    // First-stage results: about 3 % of tubes positive, a few inconclusive or invalid,
    // each reported 2 to 12 hours after its tube's last swab (within the specimen
    // limit: the round's swabs span two days).
    for (tube, last_swab) in &first_stage {
        let outcome = match rng.below(1000) {
            0..=29 => "positive",
            30..=39 => "inconclusive",
            40..=44 => "invalid",
            _ => "negative",
        };
        let at = last_swab + 120 + u32::try_from(rng.below(600)).expect("small");
        writeln!(
            results,
            "{tube},{},{}",
            result_fields(&mut rng, outcome),
            minute(at)
        )
        .expect("w");
        round
            .tubes
            .get_mut(tube)
            .expect("tube")
            .results
            .push((outcome, at));
    }
    let stage1 = dir.join("stage1.csv");
    let stage1_results = dir.join("stage1-results.csv");
    std::fs::write(&stage1, &rows).expect("write");
    std::fs::write(&stage1_results, &results).expect("write");
    let r = ingest_collections(store, ROUND, std::slice::from_ref(&stage1));
    assert_eq!(r["rejected"], 0, "no membership may be refused: {r}");
    let r = ingest_results(store, std::slice::from_ref(&stage1_results));
    assert_eq!(r["rejected"], 0, "{r}");

    // Retests: each recalled person in a single tube, most with a result.
    let recalled: Vec<String> = round
        .persons
        .keys()
        .filter(|p| round.status(p) == "recall")
        .cloned()
        .collect();
    assert!(recalled.len() > 20, "the generator recalls persons");
    let mut rows = String::from("tube,person,mode,collected_at\n");
    let mut results = String::from("tube,result,ct_orf1ab,ct_n,reported_at\n");
    let retest_at = minute_at + 2000;
    for (i, person) in recalled.iter().enumerate() {
        // Some recalled persons have not come back yet.
        if rng.chance(100) {
            continue;
        }
        let tube = format!("R{:08}", i + 1);
        let at = retest_at + u32::try_from(i).expect("small");
        writeln!(rows, "{tube},{person},single,{}", minute(at)).expect("w");
        round.scan(&tube, person, Some("single"), at);
        if rng.chance(900) {
            let outcome = if rng.chance(150) {
                "positive"
            } else {
                "negative"
            };
            let rat = at + 300;
            writeln!(
                results,
                "{tube},{},{}",
                result_fields(&mut rng, outcome),
                minute(rat)
            )
            .expect("w");
            round
                .tubes
                .get_mut(&tube)
                .expect("tube")
                .results
                .push((outcome, rat));
        }
    }
    let stage2 = dir.join("stage2.csv");
    let stage2_results = dir.join("stage2-results.csv");
    std::fs::write(&stage2, &rows).expect("write");
    std::fs::write(&stage2_results, &results).expect("write");
    let r = ingest_collections(store, ROUND, std::slice::from_ref(&stage2));
    assert_eq!(r["rejected"], 0, "{r}");
    let r = ingest_results(store, std::slice::from_ref(&stage2_results));
    assert_eq!(r["rejected"], 0, "{r}");
    round
}

#[test]
fn a_round_with_blank_capacities_and_conflicting_rows_loses_no_one() {
    for seed in [1u64, 0x9E37_79B9_7F4A_7C15] {
        let dir = tempfile::tempdir().expect("tmp");
        let store = dir.path().join("store");
        let round = generate_and_ingest(&store, dir.path(), 3000, seed);
        let got = exported_statuses(&store, ROUND);
        assert_eq!(
            got.len(),
            round.persons.len(),
            "every person scanned is exported"
        );
        let mut by: BTreeMap<&str, u32> = BTreeMap::new();
        let mut wrong = Vec::new();
        for p in round.persons.keys() {
            let want = round.status(p);
            *by.entry(want).or_default() += 1;
            if got.get(p).map(String::as_str) != Some(want) {
                wrong.push(format!("{p}: model {want}, pooltrack {:?}", got.get(p)));
            }
        }
        assert!(
            wrong.is_empty(),
            "seed {seed}: {} differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        // The generator reaches the statuses that matter here.
        for s in ["positive", "recall", "negative", "resample"] {
            assert!(
                by.get(s).copied().unwrap_or(0) > 0,
                "seed {seed}: no {s}: {by:?}"
            );
        }
        // Conflicts and shared single tubes are flagged, with every row behind them.
        let review =
            json_of(pooltrack(&store).args(["review", "--round", ROUND, "--format", "json"]));
        let shared = round
            .tubes
            .values()
            .filter(|t| t.stated_mode == Some("single") && t.members.len() > 1)
            .count();
        assert!(shared > 0, "the generator shares single tubes");
        assert_eq!(
            review["counts"]["shared_single_tube"], shared,
            "seed {seed}"
        );
        assert!(review["counts"]["conflicting_tube_rows"].as_u64() > Some(0));
        for t in review["conflicting_tube_rows"].as_array().expect("list") {
            let members = t["tube"]["members"].as_u64().expect("members");
            assert!(
                t["rows"].as_array().expect("rows").len() as u64 >= members,
                "{t}"
            );
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn a_blank_capacity_is_not_stated_before_or_after_a_stated_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    // Blank first, then 20 in the same batch; then blank again in a later batch.
    let first = write(
        dir.path(),
        "a.csv",
        "tube,person,mode,capacity,collected_at\n\
         PL0001,p01,pool,,2022-04-02 08:00:00\n\
         PL0001,p02,pool,20,2022-04-02 08:01:00\n\
         PL0001,p03,pool,,2022-04-02 08:02:00\n",
    );
    let r = ingest_collections(&store, ROUND, &[first]);
    assert_eq!(
        (
            r["committed"].as_u64(),
            r["rejected"].as_u64(),
            r["warnings"].as_u64()
        ),
        (Some(3), Some(0), Some(0)),
        "{r}"
    );
    let mut later = String::from("tube,person,mode,capacity,collected_at\n");
    for i in 4..=15 {
        writeln!(later, "PL0001,p{i:02},pool,,2022-04-02 09:{i:02}:00").expect("w");
    }
    let later = write(dir.path(), "b.csv", &later);
    let r = ingest_collections(&store, ROUND, &[later]);
    // 15 persons in a pool of capacity 20: not overfull (the default 10 would be).
    assert_eq!(
        (
            r["committed"].as_u64(),
            r["rejected"].as_u64(),
            r["overfull_tubes"].as_u64()
        ),
        (Some(12), Some(0), Some(0)),
        "{r}"
    );
    let s = json_of(pooltrack(&store).args(["status", "--round", ROUND, "--json"]));
    assert_eq!(s["overfull_pools"], 0, "{s}");
    // A tube whose rows never state a capacity takes its mode's default: 12 > 10.
    let mut blank = String::from("tube,person,mode,capacity,collected_at\n");
    for i in 1..=12 {
        writeln!(blank, "PL0002,q{i:02},pool,,2022-04-02 10:{i:02}:00").expect("w");
    }
    let blank = write(dir.path(), "c.csv", &blank);
    let r = ingest_collections(&store, ROUND, &[blank]);
    assert_eq!(r["overfull_tubes"], 1, "{r}");
    // A capacity stated in a later batch fills in the blank without conflict.
    let fill = write(
        dir.path(),
        "d.csv",
        "tube,person,mode,capacity,collected_at\nPL0002,q13,pool,20,2022-04-02 11:00:00\n",
    );
    let r = ingest_collections(&store, ROUND, &[fill]);
    assert_eq!(
        (
            r["committed"].as_u64(),
            r["warnings"].as_u64(),
            r["overfull_tubes"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{r}"
    );
    let s = json_of(pooltrack(&store).args(["status", "--round", ROUND, "--json"]));
    assert_eq!(s["overfull_pools"], 0, "{s}");
    assert_eq!(s["persons"], 28, "{s}");
}

#[test]
fn conflicting_rows_are_kept_warned_and_flagged_for_review() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    let first = write(
        dir.path(),
        "a.csv",
        "tube,person,mode,capacity,collected_at,site\n\
         PL0001,p01,pool,10,2022-04-02 08:00:00,S1\n\
         PL0001,p02,pool,20,2022-04-02 08:01:00,S1\n\
         PL0001,p03,pool,,2022-04-02 08:02:00,S2\n",
    );
    let r = ingest_collections(&store, ROUND, &[first]);
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    let rejects = rejects_of(&r);
    let warned: Vec<(u64, &str)> = rejects
        .iter()
        .map(|x| (x.line, x.column.as_str()))
        .collect();
    assert_eq!(warned, [(3, "capacity"), (4, "site")], "{rejects:?}");
    assert!(rejects.iter().all(|x| x.severity == "warning"));
    assert!(
        rejects[0].reason.contains("pool of capacity 10"),
        "{rejects:?}"
    );
    assert!(
        rejects[0]
            .reason
            .contains("this row says pool of capacity 20"),
        "{rejects:?}"
    );
    // A later batch calling the same tube single: kept, warned, flagged.
    let later = write(
        dir.path(),
        "b.csv",
        "tube,person,mode,capacity,collected_at\nPL0001,p04,single,1,2022-04-02 08:03:00\n",
    );
    let r = ingest_collections(&store, ROUND, &[later]);
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    assert_eq!(rejects_of(&r)[0].column, "mode");
    let review = json_of(pooltrack(&store).args(["review", "--round", ROUND, "--format", "json"]));
    assert_eq!(review["counts"]["conflicting_tube_rows"], 1, "{review}");
    let flagged = &review["conflicting_tube_rows"][0];
    assert_eq!(flagged["tube"]["tube"], "PL0001");
    assert_eq!(flagged["tube"]["mode"], "pool");
    assert_eq!(flagged["tube"]["capacity"], 10);
    let rows = flagged["rows"].as_array().expect("rows");
    let stated: Vec<(String, String, Option<u64>)> = rows
        .iter()
        .map(|r| {
            (
                r["person"].as_str().unwrap_or("").to_owned(),
                r["mode"].as_str().unwrap_or("").to_owned(),
                r["capacity"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        stated,
        [
            ("p01".into(), "pool".into(), Some(10)),
            ("p02".into(), "pool".into(), Some(20)),
            ("p03".into(), "pool".into(), None),
            ("p04".into(), "single".into(), Some(1)),
        ]
    );
    let csv = stdout_of(pooltrack(&store).args(["review", "--round", ROUND]));
    assert!(
        csv.contains("conflicting_tube_rows,PL0001,p01;p02;p03;p04"),
        "{csv}"
    );
}

#[test]
fn a_single_tube_holding_two_persons_is_deconvoluted_as_a_pool() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    let rows = write(
        dir.path(),
        "a.csv",
        "tube,person,mode,collected_at\n\
         SG0001,alice,single,2022-04-02 08:00:00\n\
         SG0001,bob,single,2022-04-02 08:01:00\n\
         SG0002,carol,single,2022-04-02 08:02:00\n",
    );
    let r = ingest_collections(&store, ROUND, &[rows]);
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    let results = write(
        dir.path(),
        "r.csv",
        "tube,result,reported_at\nSG0001,positive,2022-04-02 12:00:00\nSG0002,positive,2022-04-02 12:00:00\n",
    );
    ingest_results(&store, &[results]);
    let got = exported_statuses(&store, ROUND);
    // Neither alice nor bob was tested alone: both are recalled, neither is positive.
    assert_eq!(got["alice"], "recall");
    assert_eq!(got["bob"], "recall");
    assert_eq!(got["carol"], "positive");
    let recall = stdout_of(pooltrack(&store).args(["worklist", "recall", "--round", ROUND]));
    assert!(
        recall.contains("alice") && recall.contains("bob"),
        "{recall}"
    );
    let review = json_of(pooltrack(&store).args(["review", "--round", ROUND, "--format", "json"]));
    assert_eq!(review["counts"]["shared_single_tube"], 1, "{review}");
    assert_eq!(review["shared_single_tube"][0]["tube"]["tube"], "SG0001");
    assert_eq!(review["shared_single_tube"][0]["tube"]["mode"], "pool");
}
