//! Files that went through Excel or a clerk's hands (issue 14, points 4 and 6): the
//! GB 11643 check character of resident identity numbers (`[ids] id_check` in
//! `STORE/pooltrack.toml`), ids and barcodes Excel turned into scientific notation, the
//! time forms Excel writes, and look-ups trimmed like ingest trims.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{json_of, pooltrack, stdout_of};
use crate::rules::{
    RejectRow, ingest_collections, ingest_refused, ingest_results, person_report, rejects_of,
    round_status, run, stderr_text,
};

const ROUND: &str = "R1";

/// 11010519491231002X is the standard's example. The wrong one differs in its check
/// character only; the other three are not of the 18-character form and never checked.
const COLLECTIONS: &str = "tube,person,mode,collected_at\n\
    PL-0001,11010519491231002X,pool,2022-04-02 08:00:00\n\
    PL-0001,110105194912310021,pool,2022-04-02 08:01:00\n\
    PL-0002,11010519491231002x,pool,2022-04-02 08:02:00\n\
    PL-0002,E12345678,pool,2022-04-02 08:03:00\n\
    PL-0002,110105491231002,pool,2022-04-02 08:04:00\n\
    PL-0002,1101051949123100211,pool,2022-04-02 08:05:00\n";

const POPULATION: &str = "person,district\n\
    11010519491231002X,D1\n\
    E12345678,D1\n\
    110105194912310021,D1\n";

/// A temporary folder with the store in `store/` and input files beside it.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(id_check: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("store")).expect("store dir");
        if let Some(word) = id_check {
            std::fs::write(
                dir.path().join("store").join("pooltrack.toml"),
                format!("[ids]\nid_check = \"{word}\"\n"),
            )
            .expect("write config");
        }
        Setup { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write input");
        p
    }

    fn collections(&self, text: &str) -> Value {
        let f = self.file("collections.csv", text);
        ingest_collections(&self.store(), ROUND, &[f])
    }

    fn population(&self, text: &str) -> Value {
        let f = self.file("population.csv", text);
        json_of(
            pooltrack(&self.store())
                .args(["ingest", "population", "--json"])
                .arg(f),
        )
    }
}

fn only(rows: &[RejectRow]) -> &RejectRow {
    assert_eq!(rows.len(), 1, "{rows:#?}");
    &rows[0]
}

fn has_person(store: &Path, person: &str) -> bool {
    run(pooltrack(store).args(["status", "--round", ROUND, "--person", person, "--json"]))
        .status
        .success()
}

// ---------------------------------------------------------------------------------------
// GB 11643 check character
// ---------------------------------------------------------------------------------------

#[test]
fn a_wrong_check_character_is_a_warning_and_the_row_is_kept() {
    let s = Setup::new(None);
    let r = s.collections(COLLECTIONS);
    assert_eq!(r["committed"], 6, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    assert_eq!(r["warnings"], 1, "{r}");
    let rejects = rejects_of(&r);
    let w = only(&rejects);
    assert_eq!(
        w.file,
        s.dir.path().join("collections.csv").display().to_string()
    );
    assert_eq!((w.line, w.column.as_str()), (3, "person"), "{w:?}");
    assert_eq!(w.severity, "warning");
    assert_eq!(w.person, "110105194912310021");
    assert_eq!(w.tube, "PL-0001");
    assert!(w.reason.contains("GB 11643"), "{}", w.reason);
    assert!(
        w.reason.contains("check character is 1, not X"),
        "{}",
        w.reason
    );
    // The swab is real: the person is in the round, in their pool.
    let p = person_report(&s.store(), ROUND, "110105194912310021");
    assert_eq!(p["tubes"][0]["tube"], "PL-0001", "{p}");
    assert_eq!(round_status(&s.store(), ROUND)["persons"], 6);
    // The population register is checked the same way.
    let pop = s.population(POPULATION);
    assert_eq!(pop["committed"], 3, "{pop}");
    assert_eq!(pop["warnings"], 1, "{pop}");
    let w = rejects_of(&pop);
    let w = only(&w);
    assert_eq!((w.line, w.severity.as_str()), (4, "warning"), "{w:?}");
    assert!(w.reason.contains("not X"), "{}", w.reason);
}

#[test]
fn id_check_reject_refuses_the_row() {
    let s = Setup::new(Some("reject"));
    let r = s.collections(COLLECTIONS);
    assert_eq!(r["committed"], 5, "{r}");
    assert_eq!(r["rejected"], 1, "{r}");
    assert_eq!(r["warnings"], 0, "{r}");
    let rejects = rejects_of(&r);
    let e = only(&rejects);
    assert_eq!((e.line, e.column.as_str()), (3, "person"), "{e:?}");
    assert_eq!(e.severity, "error");
    assert!(e.reason.contains("id_check = \"reject\""), "{}", e.reason);
    assert!(!has_person(&s.store(), "110105194912310021"));
    // Lower-case x is the same check character as X.
    assert!(has_person(&s.store(), "11010519491231002x"));
    let pop = s.population(POPULATION);
    assert_eq!(
        (pop["committed"].as_u64(), pop["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let shown = stdout_of(pooltrack(&s.store()).arg("config"));
    assert!(shown.contains("ids.id_check = reject"), "{shown}");
}

#[test]
fn id_check_off_checks_nothing() {
    let s = Setup::new(Some("off"));
    let r = s.collections(COLLECTIONS);
    assert_eq!(r["committed"], 6, "{r}");
    assert_eq!(r["warnings"], 0, "{r}");
    assert_eq!(r["rejects_file"], Value::Null, "{r}");
    let pop = s.population(POPULATION);
    assert_eq!(pop["warnings"], 0, "{pop}");
}

#[test]
fn a_lower_case_x_passes_the_check() {
    let s = Setup::new(Some("reject"));
    let r = s.collections(
        "tube,person,mode,collected_at\n\
         SG-0001,11010519491231002x,single,2022-04-02 08:00:00\n",
    );
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    assert_eq!(r["warnings"], 0, "{r}");
}

#[test]
fn config_writes_and_shows_id_check() {
    let s = Setup::new(None);
    s.collections(COLLECTIONS);
    let shown = stdout_of(pooltrack(&s.store()).arg("config"));
    assert!(shown.contains("ids.id_check = warn"), "{shown}");
    stdout_of(pooltrack(&s.store()).args(["config", "--write-defaults"]));
    let text = std::fs::read_to_string(s.store().join("pooltrack.toml")).expect("written");
    assert!(text.contains("[ids]\n"), "{text}");
    assert!(text.contains("id_check = \"warn\""), "{text}");
    // A word other than the three is refused with its line.
    std::fs::write(
        s.store().join("pooltrack.toml"),
        "[ids]\nid_check = \"strict\"\n",
    )
    .expect("write");
    let f = s.file(
        "more.csv",
        "tube,person,mode,collected_at\nPL-0009,p9,pool,2022-04-02 09:00:00\n",
    );
    let out = run(pooltrack(&s.store())
        .args(["ingest", "collections", "--round", ROUND])
        .arg(f));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_text(&out);
    assert!(err.contains("line 2") && err.contains("strict"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Scientific notation
// ---------------------------------------------------------------------------------------

fn assert_excel_reason(r: &RejectRow, what: &str) {
    assert_eq!(r.severity, "error", "{r:?}");
    assert!(
        r.reason
            .starts_with(&format!("{what} {} looks like a number Excel", r.value)),
        "{r:?}"
    );
    assert!(r.reason.contains("scientific notation"), "{}", r.reason);
    assert!(
        r.reason
            .contains("format the column as text in Excel and export again"),
        "{}",
        r.reason
    );
}

#[test]
fn ids_and_barcodes_in_scientific_notation_are_refused_with_the_reason() {
    let s = Setup::new(Some("off"));
    // Two persons Excel made into the same 1.10101E+17 must not become one membership.
    let r = s.collections(
        "tube,person,mode,collected_at\n\
         PL-0001,1.10101E+17,pool,2022-04-02 08:00:00\n\
         PL-0001,1.10101E+17,pool,2022-04-02 08:01:00\n\
         PL-0001,1.10101e+17,pool,2022-04-02 08:02:00\n\
         PL-0001,1.1E17,pool,2022-04-02 08:03:00\n\
         1.1E+17,p5,pool,2022-04-02 08:04:00\n\
         PL-0001,110105194912310021,pool,2022-04-02 08:05:00\n",
    );
    assert_eq!(r["committed"], 1, "{r}");
    assert_eq!(r["rejected"], 5, "{r}");
    let rejects = rejects_of(&r);
    let lines: Vec<(u64, &str)> = rejects
        .iter()
        .map(|x| (x.line, x.column.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (2, "person"),
            (3, "person"),
            (4, "person"),
            (5, "person"),
            (6, "tube")
        ]
    );
    for x in &rejects[..4] {
        assert_excel_reason(x, "person");
    }
    assert_excel_reason(&rejects[4], "tube");
    assert_eq!(round_status(&s.store(), ROUND)["persons"], 1);
    assert!(!has_person(&s.store(), "1.10101E+17"));

    // Results: a tube barcode in scientific notation.
    let f = s.file(
        "results.csv",
        "tube,result,reported_at\n\
         1.1E+17,negative,2022-04-02 20:00:00\n\
         PL-0001,negative,2022-04-02 20:00:00\n",
    );
    let r = ingest_results(&s.store(), &[f]);
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let rejects = rejects_of(&r);
    let x = only(&rejects);
    assert_eq!((x.line, x.column.as_str()), (2, "tube"));
    assert_excel_reason(x, "tube");

    // Population: a person id in scientific notation.
    let pop = s.population("person\n4.40304E+17\nE12345678\n");
    assert_eq!(
        (pop["committed"].as_u64(), pop["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{pop}"
    );
    let rejects = rejects_of(&pop);
    assert_excel_reason(only(&rejects), "person");
}

// ---------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------

#[test]
fn time_forms_excel_and_clerks_write_are_read() {
    let s = Setup::new(None);
    let cases = [
        ("t1", "2022/04/28 08:00", "2022-04-28T08:00:00+08:00"),
        ("t2", "2022-04-28 08:00", "2022-04-28T08:00:00+08:00"),
        ("t3", "2022/04/28 08:00:09", "2022-04-28T08:00:09+08:00"),
        ("t4", "2022/4/8 8:00", "2022-04-08T08:00:00+08:00"),
        ("t5", "2022-4-8 8:05:30", "2022-04-08T08:05:30+08:00"),
        ("t6", "2022-04-02T08:15:00Z", "2022-04-02T16:15:00+08:00"),
    ];
    let mut text = String::from("tube,person,mode,collected_at\n");
    for (i, (person, at, _)) in cases.iter().enumerate() {
        text.push_str(&format!("SG-000{i},{person},single,{at}\n"));
    }
    let r = s.collections(&text);
    assert_eq!(r["committed"], 6, "{r}");
    assert_eq!(r["rejected"], 0, "{r}");
    for (person, at, want) in cases {
        let p = person_report(&s.store(), ROUND, person);
        assert_eq!(p["tubes"][0]["collected_at"], want, "{at}: {p}");
    }
    let f = s.file(
        "results.csv",
        "tube,result,reported_at,received_at\n\
         SG-0003,negative,2022/4/8 20:30,2022/4/8 9:00\n",
    );
    let r = ingest_results(&s.store(), &[f]);
    assert_eq!(r["committed"], 1, "{r}");
    let p = person_report(&s.store(), ROUND, "t4");
    assert_eq!(
        p["tubes"][0]["results"][0]["reported_at"], "2022-04-08T20:30:00+08:00",
        "{p}"
    );
}

#[test]
fn a_date_with_the_year_last_is_refused_naming_the_forms() {
    let s = Setup::new(None);
    let r = s.collections(
        "tube,person,mode,collected_at\n\
         SG-0001,p1,single,28/04/2022 08:00\n\
         SG-0002,p2,single,04/05/2022 08:00\n\
         SG-0003,p3,single,2022/05/04 08:00\n",
    );
    assert_eq!(
        (r["committed"].as_u64(), r["rejected"].as_u64()),
        (Some(1), Some(2)),
        "{r}"
    );
    for x in rejects_of(&r) {
        assert_eq!(x.column, "collected_at", "{x:?}");
        assert!(x.reason.contains("year last"), "{}", x.reason);
        for form in ["YYYY-MM-DD HH:MM:SS", "YYYY/MM/DD HH:MM:SS", "RFC 3339"] {
            assert!(x.reason.contains(form), "{form}: {}", x.reason);
        }
    }
    let f = s.file(
        "results.csv",
        "tube,result,reported_at\nSG-0003,negative,05/04/2022 20:00\n",
    );
    // Its one row refused: nothing committed, exit 4.
    let r = ingest_refused(pooltrack(&s.store()).args(["ingest", "results"]).arg(&f));
    assert_eq!(r["rejected"], 1, "{r}");
    let rejects = rejects_of(&r);
    let x = only(&rejects);
    assert_eq!(x.column, "reported_at");
    assert!(x.reason.contains("year last"), "{}", x.reason);
}

#[test]
fn turnaround_reads_as_of_in_excel_form() {
    let s = Setup::new(None);
    s.collections(COLLECTIONS);
    let t = json_of(pooltrack(&s.store()).args([
        "turnaround",
        "--round",
        ROUND,
        "--as-of",
        "2022/04/03 09:00",
        "--json",
    ]));
    assert_eq!(t["as_of"], "2022-04-03T09:00:00+08:00", "{t}");
    let out = run(pooltrack(&s.store()).args([
        "turnaround",
        "--round",
        ROUND,
        "--as-of",
        "03/04/2022 09:00",
    ]));
    assert!(!out.status.success());
    let err = stderr_text(&out);
    assert!(
        err.contains("year last") && err.contains("YYYY/MM/DD"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Look-ups trimmed like ingest
// ---------------------------------------------------------------------------------------

#[test]
fn status_person_with_spaces_around_finds_the_person() {
    let s = Setup::new(None);
    s.collections(
        "tube,person,mode,collected_at\n\
         SG-0001,  11010519491231002X ,single,2022-04-02 08:00:00\n",
    );
    let p = person_report(&s.store(), ROUND, " 11010519491231002X ");
    assert_eq!(p["person"], "11010519491231002X", "{p}");
    let text = stdout_of(pooltrack(&s.store()).args([
        "status",
        "--round",
        ROUND,
        "--person",
        "\t11010519491231002X  ",
    ]));
    assert!(
        text.contains("person 11010519491231002X in round R1"),
        "{text}"
    );
}
