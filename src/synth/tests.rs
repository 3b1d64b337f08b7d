//! The generator end to end: whole rounds' files, read back and checked against the
//! module docs.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::files::{COLLECTIONS_HEADER, POPULATION_HEADER, RESULTS_HEADER, TRUTH_HEADER};
use super::*;
use crate::time::{Offset, parse};

fn cfg(persons: u64, prevalence: f64, seed: u64) -> GenConfig {
    GenConfig {
        persons,
        prevalence,
        seed,
        ..GenConfig::default()
    }
}

/// Small chunks so that 20,000 people span several chunks and sites.
const TEST_LAYOUT: u64 = 5_000;

fn run(c: &GenConfig) -> (tempfile::TempDir, GenSummary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = generate_with(c, dir.path(), None, Layout::new(TEST_LAYOUT)).expect("generate");
    (dir, s)
}

const FILES: [&str; 6] = [
    "collections.csv",
    "results.csv",
    "retest_collections.csv",
    "retest_results.csv",
    "truth.csv",
    "summary.json",
];

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).expect("read")
}

/// Rows of a CSV file as fields, checking the header.
fn rows(dir: &Path, name: &str, header: &[u8]) -> Vec<Vec<String>> {
    let text = read(dir, name);
    let mut lines = text.split_terminator('\n');
    assert_eq!(
        lines.next().map(str::as_bytes),
        Some(&header[..header.len() - 1])
    );
    lines
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

struct Round {
    coll: Vec<Vec<String>>,
    res: Vec<Vec<String>>,
    rt_coll: Vec<Vec<String>>,
    rt_res: Vec<Vec<String>>,
    truth: HashSet<String>,
    summary: serde_json::Value,
}

fn load(dir: &Path) -> Round {
    let truth = rows(dir, "truth.csv", TRUTH_HEADER);
    Round {
        coll: rows(dir, "collections.csv", COLLECTIONS_HEADER),
        res: rows(dir, "results.csv", RESULTS_HEADER),
        rt_coll: rows(dir, "retest_collections.csv", COLLECTIONS_HEADER),
        rt_res: rows(dir, "retest_results.csv", RESULTS_HEADER),
        truth: truth.into_iter().map(|mut r| r.remove(0)).collect(),
        summary: serde_json::from_str(&read(dir, "summary.json")).expect("json"),
    }
}

/// A result row read as the tracker would: the result field, or the Cts for L3.
fn positive(row: &[String]) -> bool {
    positive_below(row, 38.0)
}

/// [`positive`], with every Ct below `max`.
fn positive_below(row: &[String], max: f64) -> bool {
    assert_eq!(row.len(), 8, "{row:?}");
    let by_ct = !row[2].is_empty() && !row[3].is_empty();
    assert_eq!(row[2].is_empty(), row[3].is_empty(), "{row:?}");
    match row[1].as_str() {
        "positive" => assert!(by_ct, "{row:?}"),
        "negative" => assert!(!by_ct, "{row:?}"),
        "" => assert_eq!(row[5], "L3", "{row:?}"),
        other => panic!("bad result {other}"),
    }
    if by_ct {
        for f in &row[2..4] {
            let ct: f64 = f.parse().expect("ct");
            assert!((10.0..max).contains(&ct), "{row:?}");
            assert_eq!(f.split('.').nth(1).map(str::len), Some(2), "{row:?}");
        }
    }
    by_ct
}

fn time(s: &str) -> i64 {
    parse(s.as_bytes(), Offset::CHINA).expect("time") / 1000
}

#[test]
fn day_start_is_seven_in_the_morning_local() {
    assert_eq!(time("2022-04-02 07:00:00"), DAY_START);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let c = cfg(20_000, 0.01, 5);
    let (a, _) = run(&c);
    let (b, _) = run(&c);
    let (d, _) = run(&GenConfig { seed: 6, ..c });
    for f in FILES {
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f}");
    }
    for f in ["collections.csv", "results.csv", "truth.csv"] {
        assert_ne!(read(a.path(), f), read(d.path(), f), "{f}");
    }
}

#[test]
fn thread_count_does_not_change_the_bytes() {
    let c = cfg(20_000, 0.02, 9);
    let gen_in = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| run(&c))
    };
    let (one, _) = gen_in(1);
    let (four, _) = gen_in(4);
    for f in FILES {
        assert_eq!(read(one.path(), f), read(four.path(), f), "{f}");
    }
}

#[test]
fn pools_are_positive_iff_they_hold_an_infected_person() {
    let (dir, s) = run(&cfg(20_000, 0.01, 3));
    let r = load(dir.path());
    let mut members: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in &r.coll {
        members.entry(&row[0]).or_default().push(&row[1]);
    }
    assert_eq!(members.len(), r.res.len());
    let mut l3 = 0;
    let mut positives = 0;
    for row in &r.res {
        let m = &members[row[0].as_str()];
        let infected = m.iter().any(|p| r.truth.contains(*p));
        assert_eq!(positive(row), infected, "{row:?}");
        positives += u64::from(infected);
        l3 += u64::from(row[5] == "L3");
        assert_eq!(row[1].is_empty(), row[5] == "L3", "{row:?}");
    }
    assert!(l3 > 0 && positives > 10, "{l3} {positives}");
    assert_eq!(positives, s.positive_pools + s.positive_singles);
}

#[test]
fn retests_recall_exactly_the_positive_pools() {
    let (dir, _) = run(&cfg(20_000, 0.01, 4));
    let r = load(dir.path());
    let tube_of: HashMap<&str, &str> = r
        .coll
        .iter()
        .map(|row| (row[1].as_str(), row[0].as_str()))
        .collect();
    let collected: HashMap<&str, i64> = r
        .coll
        .iter()
        .map(|row| (row[1].as_str(), time(&row[4])))
        .collect();
    let site: HashMap<&str, &str> = r
        .coll
        .iter()
        .map(|row| (row[1].as_str(), row[5].as_str()))
        .collect();
    let reported: HashMap<&str, i64> = r
        .res
        .iter()
        .map(|row| (row[0].as_str(), time(&row[4])))
        .collect();
    let positive_pools: HashSet<&str> = r
        .res
        .iter()
        .filter(|row| row[0].starts_with("PL") && positive(row))
        .map(|row| row[0].as_str())
        .collect();
    let expected: HashSet<&str> = r
        .coll
        .iter()
        .filter(|row| positive_pools.contains(row[0].as_str()))
        .map(|row| row[1].as_str())
        .collect();
    let recalled: HashSet<&str> = r.rt_coll.iter().map(|row| row[1].as_str()).collect();
    assert_eq!(recalled, expected);
    assert_eq!(recalled.len(), r.rt_coll.len(), "one retest per person");
    assert!(!recalled.is_empty());
    let rt_at: HashMap<&str, i64> = r
        .rt_coll
        .iter()
        .map(|row| (row[0].as_str(), time(&row[4])))
        .collect();
    for row in &r.rt_coll {
        let person = row[1].as_str();
        assert!(row[0].starts_with("RT"));
        assert_eq!((row[2].as_str(), row[3].as_str()), ("single", "1"));
        assert_eq!(row[5], site[person]);
        let after = time(&row[4]) - reported[tube_of[person]];
        assert!((3_600..=4 * 3_600).contains(&after), "{after}");
    }
    let rt_person: HashMap<&str, &str> = r
        .rt_coll
        .iter()
        .map(|row| (row[0].as_str(), row[1].as_str()))
        .collect();
    assert_eq!(r.rt_res.len(), r.rt_coll.len());
    let mut infected = 0;
    for row in &r.rt_res {
        let person = rt_person[row[0].as_str()];
        assert!(!row[1].is_empty(), "retest results are always filled");
        assert_eq!(positive(row), r.truth.contains(person), "{row:?}");
        infected += usize::from(r.truth.contains(person));
        let after = time(&row[4]) - rt_at[row[0].as_str()];
        assert!((2 * 3_600..=6 * 3_600).contains(&after), "{after}");
    }
    assert!(infected > 0);
    // Reports follow the last swab of the tube by 3 to 10 hours.
    let mut last: HashMap<&str, i64> = HashMap::new();
    for row in &r.coll {
        let t = collected[row[1].as_str()];
        let e = last.entry(row[0].as_str()).or_insert(t);
        *e = (*e).max(t);
    }
    for (tube, at) in &reported {
        let delay = at - last[tube];
        assert!((3 * 3_600..=10 * 3_600).contains(&delay), "{tube} {delay}");
    }
}

#[test]
fn summary_counts_match_the_files() {
    let c = cfg(20_000, 0.02, 11);
    let (dir, s) = run(&c);
    let r = load(dir.path());
    let n = |k: &str| r.summary[k].as_u64().expect("count");
    assert_eq!(serde_json::to_value(&s).expect("json"), r.summary);
    assert_eq!(n("persons"), 20_000);
    assert_eq!(n("persons"), u64::try_from(r.coll.len()).expect("len"));
    assert_eq!(n("infected"), u64::try_from(r.truth.len()).expect("len"));
    let count = |rows: &[Vec<String>], f: &dyn Fn(&Vec<String>) -> bool| {
        u64::try_from(rows.iter().filter(|row| f(row)).count()).expect("len")
    };
    assert_eq!(
        n("pool_tubes"),
        count(&r.res, &|row| row[0].starts_with("PL"))
    );
    assert_eq!(
        n("single_tubes"),
        count(&r.res, &|row| row[0].starts_with("SG"))
    );
    assert_eq!(
        n("positive_pools"),
        count(&r.res, &|row| row[0].starts_with("PL") && positive(row))
    );
    assert_eq!(
        n("positive_singles"),
        count(&r.res, &|row| row[0].starts_with("SG") && positive(row))
    );
    assert_eq!(
        n("recalled_persons"),
        u64::try_from(r.rt_coll.len()).expect("len")
    );
    assert_eq!(
        n("retest_tubes"),
        u64::try_from(r.rt_res.len()).expect("len")
    );
    // Roughly the configured rates.
    assert!((300..=500).contains(&s.infected), "{s:?}");
    assert!((1_850..=2_050).contains(&s.pool_tubes), "{s:?}");
    assert!((850..=1_150).contains(&s.single_tubes), "{s:?}");
}

#[test]
fn tubes_respect_capacity_and_identifiers_are_unique() {
    for pool_size in [2, 5, 10, 20] {
        let c = GenConfig {
            pool_size,
            ..cfg(12_345, 0.01, 2)
        };
        let (dir, s) = run(&c);
        let r = load(dir.path());
        let mut tubes: HashMap<&str, (u64, u64, &str, &str)> = HashMap::new();
        let mut persons = HashSet::new();
        let day = (time("2022-04-02 07:00:00"), time("2022-04-02 19:00:00"));
        let mut partial = 0;
        for row in &r.coll {
            assert_eq!(row.len(), 6, "{row:?}");
            assert_eq!(row[1].len(), 18);
            assert!(row[1].starts_with("31") && row[1][..17].bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(
                crate::model::resident_id(&row[1]),
                crate::model::ResidentId::Valid
            );
            assert!(persons.insert(row[1].as_str()), "duplicate person {row:?}");
            let capacity: u64 = row[3].parse().expect("capacity");
            match row[2].as_str() {
                "pool" => {
                    assert!(row[0].starts_with("PL"));
                    assert_eq!(capacity, u64::from(pool_size));
                }
                "single" => {
                    assert!(row[0].starts_with("SG"));
                    assert_eq!(capacity, 1);
                }
                other => panic!("mode {other}"),
            }
            assert_eq!(row[0].len(), 11);
            assert!(row[5].starts_with('S') && row[5].len() == 6, "{row:?}");
            let t = time(&row[4]);
            assert!(t >= day.0 && t < day.1, "{row:?}");
            let e = tubes
                .entry(&row[0])
                .or_insert((0, capacity, &row[5], &row[4]));
            e.0 += 1;
            assert!(e.0 <= e.1, "tube over capacity: {row:?}");
            assert_eq!(e.2, &row[5], "a tube spans two sites: {row:?}");
        }
        for (tube, (n, cap, _, _)) in &tubes {
            assert!(*n >= 1 && n <= cap, "{tube}");
            partial += u64::from(n < cap);
        }
        // At most one partial pool per site.
        assert!(partial <= c.persons.div_ceil(SITE_PERSONS), "{partial}");
        let mut all: HashSet<&str> = HashSet::new();
        for row in r.res.iter().chain(&r.rt_res) {
            assert!(all.insert(&row[0]), "duplicate tube {}", row[0]);
        }
        assert_eq!(all.len(), tubes.len() + r.rt_coll.len());
        let mut wells = HashSet::new();
        for row in r.res.iter().chain(&r.rt_res) {
            assert!(row[6].starts_with(&format!("{}-P", row[5])), "{row:?}");
            assert!(wells.insert((row[6].clone(), row[7].clone())), "{row:?}");
            let w = row[7].as_bytes();
            assert!(w.len() == 3 && (b'A'..=b'H').contains(&w[0]), "{row:?}");
            assert!(!["G12", "H12"].contains(&row[7].as_str()), "{row:?}");
        }
        assert_eq!(s.persons, c.persons);
    }
}

#[test]
fn extreme_shares_and_prevalences() {
    let (dir, s) = run(&GenConfig {
        pool_share: 1.0,
        ..cfg(5_000, 0.0, 1)
    });
    assert_eq!((s.single_tubes, s.infected, s.retest_tubes), (0, 0, 0));
    assert_eq!(s.pool_tubes, 500);
    assert_eq!(read(dir.path(), "truth.csv"), "person\n");
    let (_, s) = run(&GenConfig {
        pool_share: 0.0,
        ..cfg(5_000, 1.0, 1)
    });
    assert_eq!((s.pool_tubes, s.single_tubes), (0, 5_000));
    assert_eq!((s.infected, s.positive_singles), (5_000, 5_000));
    let (_, s) = run(&GenConfig {
        pool_share: 1.0,
        ..cfg(3, 1.0, 1)
    });
    assert_eq!((s.pool_tubes, s.positive_pools, s.retest_tubes), (1, 1, 3));
}

/// Counts the people reported done.
#[derive(Default)]
struct Done(AtomicU64);

impl Progress for Done {
    fn total(&self, _: u64) {}
    fn stage(&self, _: &str) {}
    fn advance(&self, units: u64) {
        self.0.fetch_add(units, Ordering::Relaxed);
    }
}

#[test]
fn public_entry_point_and_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("new").join("round");
    let done = Done::default();
    let s = generate(&cfg(1_234, 0.05, 8), &out, Some(&done)).expect("generate");
    assert_eq!(done.0.load(Ordering::Relaxed), 1_234);
    assert_eq!(s.persons, 1_234);
    for f in FILES {
        assert!(out.join(f).is_file(), "{f}");
    }
}

#[test]
fn bad_configs_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = GenConfig::default();
    let bad = [
        GenConfig {
            persons: 0,
            ..good.clone()
        },
        GenConfig {
            persons: MAX_PERSONS + 1,
            ..good.clone()
        },
        GenConfig {
            prevalence: -0.1,
            ..good.clone()
        },
        GenConfig {
            prevalence: 1.5,
            ..good.clone()
        },
        GenConfig {
            prevalence: f64::NAN,
            ..good.clone()
        },
        GenConfig {
            pool_share: 1.01,
            ..good.clone()
        },
        GenConfig {
            pool_share: f64::NAN,
            ..good.clone()
        },
        GenConfig {
            pool_size: 1,
            ..good.clone()
        },
        GenConfig {
            pool_size: 21,
            ..good.clone()
        },
        GenConfig {
            blank_optional: 1.5,
            ..good.clone()
        },
        GenConfig {
            blank_optional: f64::NAN,
            ..good.clone()
        },
    ];
    for c in bad {
        let out = dir.path().join("x");
        match generate(&c, &out, None) {
            Err(Error::Usage(msg)) => assert!(!msg.is_empty()),
            other => panic!("{c:?}: {other:?}"),
        }
        assert!(!out.exists(), "nothing is written for a bad config");
    }
    assert!(good.validate().is_ok());
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    assert!(matches!(
        generate(&cfg(10, 0.0, 1), &file, None),
        Err(Error::Io { .. })
    ));
}

/// `row` as `full` with the optional fields of `blanked` emptied (Cts only where the
/// result word is written), or `full` itself.
fn blanked_or_same(full: &[String], row: &[String], blanked: &[usize]) -> bool {
    if full == row {
        return false;
    }
    let mut expect = full.to_vec();
    for &i in blanked {
        if (i == 2 || i == 3) && expect[1].is_empty() {
            continue;
        }
        expect[i].clear();
    }
    assert_eq!(expect, row, "a row differs beyond its optional fields");
    true
}

#[test]
fn blank_optional_fields_change_nothing_else() {
    let c = GenConfig {
        pool_share: 0.8,
        ..cfg(20_000, 0.02, 4)
    };
    let (full_dir, full) = run(&c);
    let (blank_dir, blank) = run(&GenConfig {
        blank_optional: 0.3,
        ..c.clone()
    });
    assert_eq!(full, blank, "the same people, tubes and results");
    let (f, b) = (load(full_dir.path()), load(blank_dir.path()));
    assert_eq!(f.truth, b.truth);
    assert_eq!(
        read(full_dir.path(), "summary.json"),
        read(blank_dir.path(), "summary.json")
    );
    let mut share = Vec::new();
    for (full, rows, optional) in [
        (&f.coll, &b.coll, &[3, 5][..]),
        (&f.rt_coll, &b.rt_coll, &[3, 5][..]),
        (&f.res, &b.res, &[2, 3, 5, 6, 7][..]),
        (&f.rt_res, &b.rt_res, &[2, 3, 5, 6, 7][..]),
    ] {
        assert_eq!(full.len(), rows.len());
        let n = full
            .iter()
            .zip(rows.iter())
            .filter(|(a, r)| blanked_or_same(a, r, optional))
            .count();
        share.push((n, rows.len()));
    }
    // About 30 % of the rows of each large file, each drawn on its own.
    for &(n, rows) in &share[..1] {
        let p = n as f64 / rows as f64;
        assert!((0.28..0.32).contains(&p), "{n} of {rows}");
    }
    let (n, rows) = share[2];
    assert!(
        (0.25..0.35).contains(&(n as f64 / rows as f64)),
        "{n} of {rows}"
    );
    // A blank positive result keeps its word, so it still reads positive.
    assert!(
        b.res
            .iter()
            .any(|r| r[1] == "positive" && r[2].is_empty() && r[5].is_empty())
    );
}

#[test]
fn the_register_holds_every_person_and_the_untested() {
    let c = cfg(12_345, 0.01, 3);
    let (plain_dir, plain) = run(&c);
    let (dir, s) = run(&GenConfig {
        population: true,
        ..c.clone()
    });
    for f in &FILES[..5] {
        assert_eq!(read(plain_dir.path(), f), read(dir.path(), f), "{f}");
    }
    assert!(!plain_dir.path().join("population.csv").exists());
    assert_eq!(plain.registered, 0);
    let untested = 12_345_u64.div_ceil(200);
    assert_eq!(s.registered, 12_345 + untested);
    let register = rows(dir.path(), "population.csv", POPULATION_HEADER);
    assert_eq!(register.len() as u64, s.registered);
    let round = load(dir.path());
    let collected: Vec<&str> = round.coll.iter().map(|r| r[1].as_str()).collect();
    let ids: Vec<&str> = register.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        &ids[..collected.len()],
        &collected[..],
        "every person, in order"
    );
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len());
    // Five sites: four districts, the first holding two of them.
    for r in &register {
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[2].starts_with(&format!("{}-C0", r[1])), "{r:?}");
    }
    assert_eq!(register[0][1..], ["D01", "D01-C01"]);
    assert_eq!(register[2_500][1..], ["D01", "D01-C02"]);
    assert_eq!(register[12_344][1..], ["D04", "D04-C01"]);
    let last = register.last().expect("untested");
    assert_eq!(
        last[0],
        super::text::person_id(super::PersonIds::Numbered, 12_345 + untested - 1)
    );
    let json = read(dir.path(), "summary.json");
    assert!(json.contains("\"registered\": 12407"), "{json}");
    assert!(!read(plain_dir.path(), "summary.json").contains("registered"));
}

#[test]
fn pool_sizes_go_by_site() {
    let c = GenConfig {
        pool_sizes: vec![5, 10, 20],
        ..cfg(20_000, 0.01, 12)
    };
    let (dir, _) = run(&c);
    let r = load(dir.path());
    let mut members: HashMap<&str, (u64, &str, &str)> = HashMap::new();
    for row in r.coll.iter().filter(|row| row[2] == "pool") {
        let e = members
            .entry(row[0].as_str())
            .or_insert((0, row[3].as_str(), row[5].as_str()));
        e.0 += 1;
    }
    let mut sizes = HashSet::new();
    for (tube, (n, capacity, site)) in &members {
        let site: u64 = site[1..].parse().expect("site number");
        let want = [5, 10, 20][usize::try_from(site % 3).expect("small")];
        assert_eq!(capacity.parse::<u64>().expect("capacity"), want, "{tube}");
        assert!(*n <= want, "{tube}");
        sizes.insert(want);
    }
    assert_eq!(sizes.len(), 3);
    // Without the option nothing changes: the same bytes as a config that never had it.
    let (a, _) = run(&GenConfig {
        pool_sizes: vec![10],
        ..cfg(20_000, 0.01, 12)
    });
    let (b, _) = run(&cfg(20_000, 0.01, 12));
    for f in FILES {
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f}");
    }
    assert!(!b.path().join("ct_truth.csv").exists());
}

/// `ct_truth.csv` rows: person, viral Ct, tube, tube size, infected in the tube, the
/// tube's true Ct, the shift, detected.
fn ct_truth(dir: &Path) -> Vec<Vec<String>> {
    rows(dir, "ct_truth.csv", super::files::CT_TRUTH_HEADER)
}

#[test]
fn the_ct_model_dilutes_pools_and_misses_the_weak_ones() {
    let c = GenConfig {
        pool_sizes: vec![5, 10, 20],
        ct_model: true,
        ..cfg(60_000, 0.02, 13)
    };
    let (dir, s) = run(&c);
    let r = load(dir.path());
    let truth = ct_truth(dir.path());
    assert_eq!(truth.len() as u64, s.infected);
    let f = |row: &[String], i: usize| row[i].parse::<f64>().expect("a number");
    let mut detected_in: HashMap<&str, bool> = HashMap::new();
    let mut missed_pools = HashSet::new();
    for row in &truth {
        assert!(r.truth.contains(&row[0]), "{row:?}");
        let (ct, size, infected) = (f(row, 1), f(row, 3), f(row, 4));
        assert!((12.0..=40.0).contains(&ct), "{row:?}");
        if infected == 1.0 {
            // One infected swab in a tube of m: its Ct + log2 m, to the hundredth.
            assert!((f(row, 6) - size.log2()).abs() < 0.011, "{row:?}");
        } else {
            assert!(f(row, 5) <= ct + size.log2() + 0.011, "{row:?}");
        }
        let detected = row[7] == "true";
        detected_in.insert(row[2].as_str(), detected);
        if !detected && row[2].starts_with("PL") {
            missed_pools.insert(row[2].as_str());
        }
    }
    assert_eq!(missed_pools.len() as u64, s.missed_pools);
    assert!(s.missed_pools > 0, "some pools past the cut-off: {s:?}");
    // The files agree with the truth: a tube reads positive iff its reading was below
    // the cut-off, and no member of a missed pool is recalled.
    for row in &r.res {
        let read = positive_below(row, CT_CUTOFF);
        let want = detected_in.get(row[0].as_str()).copied().unwrap_or(false);
        assert_eq!(read, want, "{row:?}");
    }
    let recalled: HashSet<&str> = r.rt_coll.iter().map(|row| row[1].as_str()).collect();
    for row in r
        .coll
        .iter()
        .filter(|row| missed_pools.contains(row[0].as_str()))
    {
        assert!(!recalled.contains(row[1].as_str()), "{row:?}");
    }
    // Positive pools with one infected member read about log2 k above the person's
    // single retest: noise sd 0.5 on each, so the mean of hundreds is within 0.2.
    let viral: HashMap<&str, f64> = truth
        .iter()
        .map(|row| (row[0].as_str(), f(row, 1)))
        .collect();
    let mut shift: HashMap<u32, Vec<f64>> = HashMap::new();
    let single_infected: HashSet<&str> = truth
        .iter()
        .filter(|row| row[4] == "1")
        .map(|row| row[2].as_str())
        .collect();
    for row in r
        .res
        .iter()
        .filter(|row| positive_below(row, CT_CUTOFF) && row[0].starts_with("PL"))
    {
        if !single_infected.contains(row[0].as_str()) {
            continue;
        }
        let (person, k) = truth
            .iter()
            .find(|t| t[2] == row[0])
            .map(|t| (t[0].as_str(), t[3].parse::<u32>().expect("a size")))
            .expect("the infected member");
        shift.entry(k).or_default().push(f(row, 2) - viral[person]);
    }
    for k in [5u32, 10, 20] {
        let v = &shift[&k];
        let n = f64::from(u32::try_from(v.len()).expect("a few"));
        let mean = v.iter().sum::<f64>() / n;
        let want = f64::from(k).log2();
        assert!(v.len() > 100, "{k}: {}", v.len());
        assert!((mean - want).abs() < 0.2, "{k}: mean {mean}, want {want}");
    }
}

#[test]
fn resident_ids_change_the_ids_and_nothing_else() {
    let numbered = GenConfig {
        population: true,
        ..cfg(12_345, 0.01, 3)
    };
    let resident = GenConfig {
        ids: super::PersonIds::Resident,
        ..numbered.clone()
    };
    let (a, summary_a) = run(&numbered);
    let (b, summary_b) = run(&resident);
    assert_eq!(summary_a, summary_b);
    // Every file but the person column is the same, and each numbered id has one
    // resident id wherever it appears.
    let mut twin: HashMap<String, String> = HashMap::new();
    let mut ids = HashSet::new();
    for (name, col) in [
        ("collections.csv", 1),
        ("retest_collections.csv", 1),
        ("population.csv", 0),
        ("truth.csv", 0),
    ] {
        let (ta, tb) = (read(a.path(), name), read(b.path(), name));
        let (la, lb): (Vec<&str>, Vec<&str>) = (ta.lines().collect(), tb.lines().collect());
        assert_eq!(la.len(), lb.len(), "{name}");
        assert_eq!(la[0], lb[0], "{name}: header");
        for (ra, rb) in la[1..].iter().zip(&lb[1..]) {
            let (mut fa, mut fb): (Vec<&str>, Vec<&str>) =
                (ra.split(',').collect(), rb.split(',').collect());
            let (pa, pb) = (fa.remove(col), fb.remove(col));
            assert_eq!(fa, fb, "{name}: {ra} / {rb}");
            assert_eq!(
                crate::model::resident_id(pb),
                crate::model::ResidentId::Valid,
                "{rb}"
            );
            let seen = twin.entry(pa.to_owned()).or_insert_with(|| pb.to_owned());
            assert_eq!(seen, pb, "{pa} has two resident ids");
            ids.insert(pb.to_owned());
        }
    }
    assert_eq!(ids.len(), twin.len(), "two persons share a resident id");
    for f in ["results.csv", "retest_results.csv"] {
        assert_eq!(read(a.path(), f), read(b.path(), f), "{f}");
    }
}

#[test]
fn resident_ids_refuse_more_persons_than_they_can_tell_apart() {
    let too_many = GenConfig {
        ids: super::PersonIds::Resident,
        ..cfg(467_000_000, 0.01, 3)
    };
    let err = generate_with(
        &too_many,
        Path::new("/nonexistent"),
        None,
        Layout::new(TEST_LAYOUT),
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains("resident ids give 467520000"),
        "{err}"
    );
}
