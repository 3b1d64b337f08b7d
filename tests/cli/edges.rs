//! Rough edges a new user hit (issue 15): exports to standard output, usage lines that
//! show which flags are optional, `--store` only where a store is used, making a
//! pseudonym key, IANA zone names, turnaround's default "now", owner-only plan pages.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use assert_cmd::Command;

use crate::common::{pooltrack, stdout_of, testdata};
use crate::coverage::ingest_population;
use crate::rules::{ingest_collections, ingest_results, run, stderr_text};

const ROUND: &str = "2022-04-02";

fn bare() -> Command {
    let mut cmd = Command::cargo_bin("pooltrack").expect("the pooltrack binary is built");
    cmd.env_remove("POOLTRACK_STORE");
    cmd
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
}

fn example_store(store: &Path) {
    ingest_collections(store, ROUND, &[testdata("example_collections.csv")]);
    ingest_results(store, &[testdata("example_results.csv")]);
}

#[test]
fn exports_go_to_standard_output_without_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    example_store(&store);
    let status = stdout_of(pooltrack(&store).args(["export", "status", "--round", ROUND]));
    assert!(status.starts_with("person,"), "{status}");
    assert!(status.lines().count() > 1, "{status}");
    let codes = stdout_of(pooltrack(&store).args(["export", "health-codes", "--round", ROUND]));
    assert!(codes.starts_with("person,color,"), "{codes}");
    let json = stdout_of(pooltrack(&store).args([
        "export",
        "health-codes",
        "--round",
        ROUND,
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(codes.lines().count() - 1));
    // Parquet to a pipe (as here) is fine; only a terminal is refused.
    for what in ["status", "health-codes"] {
        let out =
            run(pooltrack(&store).args(["export", what, "--round", ROUND, "--format", "parquet"]));
        assert!(out.status.success(), "{what}: {}", stderr_text(&out));
        assert!(out.stdout.starts_with(b"PAR1"), "{what}: not Parquet");
        assert!(out.stdout.ends_with(b"PAR1"), "{what}: not whole");
    }
    let out = run(pooltrack(&store).args([
        "worklist",
        "positives",
        "--round",
        ROUND,
        "--format",
        "parquet",
    ]));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(out.stdout.starts_with(b"PAR1"));
    // --out still writes a file, owner-only.
    let file = dir.path().join("status.csv");
    let out = run(pooltrack(&store)
        .args(["export", "status", "--round", ROUND, "--out"])
        .arg(&file));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("written"), status);
    assert_eq!(mode(&file), 0o600);
}

/// The status export as Parquet holds the CSV's rows in the same order: text the same,
/// blank cells as nulls, times as UTC timestamps of the printed times (the Parquet
/// columns are built apart from the CSV rows, so the two could drift).
#[test]
fn the_status_exports_parquet_holds_the_csvs_rows() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMillisecondType;
    use arrow_array::{Array, RecordBatch};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full");
    example_store(&full);
    // Collections only: every person pending, so the result columns are all null.
    let pending = dir.path().join("pending");
    ingest_collections(&pending, ROUND, &[testdata("example_collections.csv")]);
    for store in [&full, &pending] {
        let csv = stdout_of(pooltrack(store).args(["export", "status", "--round", ROUND]));
        let file = dir.path().join("status.parquet");
        let out = run(pooltrack(store)
            .args(["export", "status", "--round", ROUND, "--out"])
            .arg(&file));
        assert!(out.status.success(), "{}", stderr_text(&out));
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).expect("written"))
                .expect("Parquet")
                .build()
                .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        let batch = arrow_select::concat::concat_batches(&batches[0].schema(), &batches)
            .expect("one schema");
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert!(!rows.is_empty());
        assert_eq!(batch.num_rows(), rows.len());
        for (c, name) in header.iter().enumerate() {
            let column = batch.column_by_name(name).expect("the CSV's column");
            for (i, row) in rows.iter().enumerate() {
                let cell = row[c];
                let got = if column.is_null(i) {
                    String::new()
                } else if let Some(t) = column.as_primitive_opt::<TimestampMillisecondType>() {
                    let ms = t.value(i);
                    let printed = chrono::DateTime::parse_from_rfc3339(cell).expect("a time");
                    assert_eq!(ms, printed.timestamp_millis(), "{name} of row {i}");
                    cell.to_owned()
                } else if let Some(s) = column.as_string_opt::<i32>() {
                    s.value(i).to_owned()
                } else {
                    let f = column
                        .as_primitive_opt::<arrow_array::types::Float32Type>()
                        .expect("text, time or Ct");
                    assert_eq!(
                        cell.parse::<f32>().ok(),
                        Some(f.value(i)),
                        "{name} of row {i}"
                    );
                    cell.to_owned()
                };
                assert_eq!(got, cell, "{name} of row {i}");
            }
        }
    }
}

/// The health-code export as Parquet holds the JSON export's rows in the same order,
/// blank text as nulls (the Parquet columns are appended from one reused row, apart
/// from the text writers), with results, pending persons and untested registered ones.
#[test]
fn the_health_code_exports_parquet_holds_the_json_rows() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float32Type;
    use arrow_array::{Array, RecordBatch};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().expect("tempdir");
    let full = dir.path().join("full");
    example_store(&full);
    ingest_population(&full, &[testdata("population_example.csv")]);
    let pending = dir.path().join("pending");
    ingest_collections(&pending, ROUND, &[testdata("example_collections.csv")]);
    for store in [&full, &pending] {
        let export = ["export", "health-codes", "--round", ROUND];
        let json = stdout_of(pooltrack(store).args(export).args(["--format", "json"]));
        let file = dir.path().join("codes.parquet");
        let out = run(pooltrack(store).args(export).arg("--out").arg(&file));
        assert!(out.status.success(), "{}", stderr_text(&out));
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).expect("written"))
                .expect("Parquet")
                .build()
                .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        let batch = arrow_select::concat::concat_batches(&batches[0].schema(), &batches)
            .expect("one schema");
        let rows: Vec<serde_json::Value> = serde_json::from_str(&json).expect("a JSON array");
        assert!(rows.len() > 10, "{json}");
        assert_eq!(batch.num_rows(), rows.len());
        let mut untested = 0;
        for (i, row) in rows.iter().enumerate() {
            let fields = row.as_object().expect("an object");
            assert_eq!(fields.len(), batch.num_columns());
            untested += usize::from(row["status"] == "untested");
            for (name, want) in fields {
                let column = batch.column_by_name(name).expect("the JSON's column");
                let got = if column.is_null(i) {
                    serde_json::Value::Null
                } else if let Some(s) = column.as_string_opt::<i32>() {
                    serde_json::Value::from(s.value(i))
                } else {
                    // JSON prints the f32 Ct's shortest decimal; compare as f32.
                    let ct = column.as_primitive::<Float32Type>().value(i);
                    #[allow(clippy::cast_possible_truncation)]
                    let printed = want.as_f64().map(|w| w as f32);
                    assert_eq!(printed, Some(ct), "{name} of row {i}");
                    want.clone()
                };
                let want = match want {
                    serde_json::Value::String(s) if s.is_empty() => &serde_json::Value::Null,
                    w => w,
                };
                assert_eq!(&got, want, "{name} of row {i}");
            }
        }
        assert_eq!(
            untested > 0,
            store == &full,
            "untested persons only with a register"
        );
    }
}

/// Every leaf command, as typed after `pooltrack`.
const COMMANDS: &[&[&str]] = &[
    &["ingest", "collections"],
    &["ingest", "results"],
    &["ingest", "population"],
    &["status"],
    &["worklist"],
    &["review"],
    &["turnaround"],
    &["coverage"],
    &["report"],
    &["export", "status"],
    &["export", "health-codes"],
    &["gen"],
    &["demo"],
    &["config"],
    &["plan"],
    &["bench"],
    &["verify"],
    &["migrate"],
    &["compact"],
    &["key", "new"],
];

fn usage_line(command: &[&str]) -> String {
    let help = stdout_of(bare().args(command).arg("--help"));
    help.lines()
        .find(|l| l.starts_with("Usage: "))
        .unwrap_or_else(|| panic!("{command:?}: no usage line in\n{help}"))
        .to_owned()
}

#[test]
fn usage_lines_show_which_flags_are_optional() {
    for command in COMMANDS {
        let usage = usage_line(command);
        assert!(!usage.contains("[OPTIONS]"), "{command:?}: {usage}");
        assert!(
            usage.starts_with(&format!("Usage: pooltrack {}", command.join(" "))),
            "{command:?}: {usage}"
        );
        // Every option the help lists appears in the usage line.
        let help = stdout_of(bare().args(*command).arg("--help"));
        for line in help.lines() {
            let Some(flag) = line.trim_start().strip_prefix("--") else {
                continue;
            };
            let flag: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if flag == "help" || flag == "version" {
                continue;
            }
            assert!(
                usage.contains(&format!("--{flag}")),
                "{command:?}: --{flag} missing from {usage}"
            );
        }
    }
    let codes = usage_line(&["export", "health-codes"]);
    // Without --round the codes are those across rounds (issue 20).
    assert!(
        codes.contains(" [--round <ROUND>] [--as-of <TIME>] "),
        "{codes}"
    );
    assert!(codes.contains("[--format <FORMAT>]"), "{codes}");
    assert!(codes.contains("[--out <FILE>]"), "{codes}");
    let ingest = usage_line(&["ingest", "collections"]);
    assert!(ingest.contains("[--store <DIR>]"), "{ingest}");
    assert!(ingest.ends_with("<FILES>..."), "{ingest}");
    assert!(usage_line(&["report"]).contains(" --out <DIR> "));
}

/// `--help` is plain text on a terminal: Markdown from the doc comments it is made of
/// (backticks around a name, as a Markdown lint would have them) shows up as it is.
#[test]
fn help_text_carries_no_markdown_backticks_around_names() {
    for command in COMMANDS {
        let help = stdout_of(bare().args(*command).arg("--help"));
        for word in [
            "$`POOLTRACK_STORE`",
            "`DuckDB`",
            "`collected_at`",
            "`reported_at`",
        ] {
            assert!(!help.contains(word), "{command:?} shows {word}:\n{help}");
        }
    }
    let help = stdout_of(bare().args(["status", "--help"]));
    assert!(help.contains("Default: $POOLTRACK_STORE, else"), "{help}");
}

#[test]
fn only_commands_that_use_a_store_offer_store() {
    for command in [&["gen"][..], &["demo"], &["bench"], &["key", "new"]] {
        let help = stdout_of(bare().args(command).arg("--help"));
        assert!(
            !help.contains("--store"),
            "{command:?} offers --store:\n{help}"
        );
        assert!(!help.contains("created on first ingest"), "{command:?}");
    }
    let plan = stdout_of(bare().args(["plan", "--help"]));
    assert!(!plan.contains("created on first ingest"), "{plan}");
    assert!(plan.contains("--measure-round measures"), "{plan}");
    for command in [
        &["status"][..],
        &["ingest", "collections"],
        &["export", "status"],
        &["verify"],
    ] {
        let help = stdout_of(bare().args(command).arg("--help"));
        assert!(help.contains("--store <DIR>"), "{command:?}:\n{help}");
        assert!(help.contains("POOLTRACK_STORE"), "{command:?}:\n{help}");
    }
}

#[test]
fn store_is_read_anywhere_on_the_line_and_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let file = testdata("example_collections.csv");
    // After the subcommand, between `ingest` and its subcommand, before the command.
    let out = run(bare()
        .args(["ingest", "collections", "--round", "R1", "--store"])
        .arg(&a)
        .arg(&file));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let out = run(bare()
        .arg("ingest")
        .arg("--store")
        .arg(&a)
        .args(["collections", "--round", "R2"])
        .arg(&file));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let out = run(bare()
        .arg("--store")
        .arg(&a)
        .args(["ingest", "collections", "--round", "R3"])
        .arg(&file));
    assert!(out.status.success(), "{}", stderr_text(&out));
    // $POOLTRACK_STORE, and a --store on the line wins over it.
    let out = run(bare()
        .env("POOLTRACK_STORE", &b)
        .args(["ingest", "collections", "--round", "R4"])
        .arg(&file));
    assert!(out.status.success(), "{}", stderr_text(&out));
    let rounds = |store: &Path, flag_first: bool| {
        let mut cmd = bare();
        cmd.env("POOLTRACK_STORE", dir.path().join("elsewhere"));
        if flag_first {
            cmd.arg("--store")
                .arg(store)
                .args(["status", "--round", "R1", "--json"]);
        } else {
            cmd.args(["status", "--round", "R1", "--json", "--store"])
                .arg(store);
        }
        run(&mut cmd)
    };
    assert!(
        rounds(&a, true).status.success(),
        "{}",
        stderr_text(&rounds(&a, true))
    );
    assert!(rounds(&a, false).status.success());
    // b holds only R4.
    assert!(!rounds(&b, false).status.success());
    let export = stdout_of(
        bare()
            .env("POOLTRACK_STORE", &b)
            .args(["export", "status", "--round", "R4"]),
    );
    assert!(export.starts_with("person,"), "{export}");
}

#[test]
fn key_new_makes_a_private_key_that_pseudonymizes_and_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    example_store(&store);
    let key = dir.path().join("office.key");

    // Without a key, the error says how to make one.
    let out = run(pooltrack(&store)
        .args(["export", "status", "--round", ROUND, "--pseudonymize"])
        .arg(&key));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_text(&out);
    assert!(err.contains("cannot read the key file"), "{err}");
    assert!(err.contains("pooltrack key new"), "{err}");

    let out = run(bare().args(["key", "new"]).arg(&key));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(mode(&key), 0o600);
    let text = std::fs::read_to_string(&key).expect("the key");
    let hex = text.trim_end();
    assert_eq!(hex.len(), 64, "{text:?}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{text:?}");

    let plain = stdout_of(pooltrack(&store).args(["export", "status", "--round", ROUND]));
    let pseudo = run(pooltrack(&store)
        .args(["export", "status", "--round", ROUND, "--pseudonymize"])
        .arg(&key));
    assert!(pseudo.status.success(), "{}", stderr_text(&pseudo));
    assert!(!stderr_text(&pseudo).contains("readable by others"));
    let pseudo = String::from_utf8(pseudo.stdout).expect("utf-8");
    assert_eq!(pseudo.lines().count(), plain.lines().count());
    let first_id = plain
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("a row");
    assert!(!pseudo.contains(first_id), "a real id leaked");
    let pseudonym = pseudo
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("a row");
    assert_eq!(pseudonym.len(), 32, "{pseudonym}");

    // A second `key new` on the same path refuses and leaves the key alone.
    let out = run(bare().args(["key", "new"]).arg(&key));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_text(&out).contains("exists already"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(std::fs::read_to_string(&key).expect("the key"), text);
    // Two keys differ.
    let other = dir.path().join("other.key");
    stdout_of(bare().args(["key", "new"]).arg(&other));
    assert_ne!(std::fs::read_to_string(&other).expect("the key"), text);
}

#[test]
fn time_zone_names_with_a_fixed_offset_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let shown = stdout_of(pooltrack(&store).args(["config", "--time-zone", "asia/shanghai"]));
    assert!(shown.contains("time_zone = Asia/Shanghai"), "{shown}");
    assert!(shown.contains("+08:00"), "{shown}");
    let settings = crate::crash::manifest_json(&store)["settings"].clone();
    assert_eq!(settings["time_zone"], "Asia/Shanghai", "{settings}");
    // Local times are read at +08:00.
    ingest_collections(&store, ROUND, &[testdata("turnaround_collections.csv")]);
    let p: serde_json::Value = crate::common::json_of(
        pooltrack(&store).args(["status", "--round", ROUND, "--person", "TA-01", "--json"]),
    );
    let text = p.to_string();
    assert!(text.contains("2022-04-02T06:00:00+08:00"), "{text}");
    stdout_of(pooltrack(&store).arg("verify"));
    let shown = stdout_of(pooltrack(&store).args(["config", "--time-zone", "Asia/Urumqi"]));
    assert!(
        shown.contains("time_zone = Asia/Urumqi   # UTC+06:00"),
        "{shown}"
    );

    // A zone with daylight-saving time is refused, saying why; the setting stays.
    let out = run(pooltrack(&store).args(["config", "--time-zone", "Europe/Berlin"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_text(&out);
    assert!(err.contains("daylight-saving"), "{err}");
    assert!(err.contains("+01:00 to +02:00"), "{err}");
    let out = run(pooltrack(&store).args(["config", "--time-zone", "Asia/Atlantis"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_text(&out).contains("IANA"), "{}", stderr_text(&out));
    let shown = stdout_of(pooltrack(&store).arg("config"));
    assert!(shown.contains("time_zone = Asia/Urumqi"), "{shown}");
}

#[test]
fn turnaround_of_a_past_round_is_measured_to_its_last_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    ingest_collections(&store, ROUND, &[testdata("turnaround_collections.csv")]);
    let text = stdout_of(pooltrack(&store).args(["turnaround", "--round", ROUND]));
    assert!(
        text.contains("as of 2022-04-02 12:00:00 (the round's last collection, it has no result yet; --as-of to change)"),
        "{text}"
    );
    ingest_results(&store, &[testdata("turnaround_results.csv")]);
    let text = stdout_of(pooltrack(&store).args(["turnaround", "--round", ROUND]));
    assert!(
        text.contains("as of 2022-04-03 08:00:00 (the round's last result; --as-of to change)"),
        "{text}"
    );
    // The default is the same as giving that time: nothing is months late.
    let json = |extra: &[&str]| {
        crate::common::json_of(
            pooltrack(&store)
                .args(["turnaround", "--round", ROUND, "--json"])
                .args(extra),
        )
    };
    let default = json(&[]);
    let given = json(&["--as-of", "2022-04-03 08:00:00"]);
    assert_eq!(default, given);
    for late in default["late"].as_array().expect("late tubes") {
        assert!(
            late["minutes_late"].as_f64().expect("minutes") < 2.0 * 24.0 * 60.0,
            "{late}"
        );
    }
    let out = run(pooltrack(&store).args(["turnaround", "--round", ROUND, "--json"]));
    assert!(
        stderr_text(&out).contains("as of 2022-04-03 08:00:00"),
        "{}",
        stderr_text(&out)
    );
    // --as-of is kept, and said as given.
    let text = stdout_of(pooltrack(&store).args([
        "turnaround",
        "--round",
        ROUND,
        "--as-of",
        "2022-04-05 08:00",
    ]));
    assert!(
        text.contains("as of 2022-04-05 08:00:00 (--as-of)"),
        "{text}"
    );
    // The report uses the same default.
    let out = run(pooltrack(&store)
        .args(["report", "--round", ROUND, "--out"])
        .arg(dir.path().join("r")));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(
        stderr_text(&out).contains("as of 2022-04-03 08:00:00 (the round's last result"),
        "{}",
        stderr_text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("r/report.json")).expect("report.json"),
    )
    .expect("JSON");
    assert_eq!(report["as_of"], "2022-04-03T08:00:00+08:00");
}

#[test]
fn plan_html_is_owner_only_like_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("plan-html");
    let out = run(bare()
        .args(["plan", "--config"])
        .arg(testdata("plan_pass.toml"))
        .arg("--html")
        .arg(&html));
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(mode(&html), 0o700);
    assert_eq!(mode(&html.join("index.html")), 0o600);
    // Written again, it stays owner-only and whole (no temporary file left).
    let out = run(bare()
        .args(["plan", "--config"])
        .arg(testdata("plan_pass.toml"))
        .arg("--html")
        .arg(&html));
    assert!(out.status.success());
    assert_eq!(mode(&html.join("index.html")), 0o600);
    let names: Vec<_> = std::fs::read_dir(&html)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn parquet_to_a_terminal_is_refused() {
    // `script` (util-linux) gives the command a terminal for its standard output.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` command to make a terminal");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    example_store(&store);
    let bin = assert_cmd::cargo::cargo_bin("pooltrack");
    for what in ["export status", "export health-codes", "worklist positives"] {
        let line = format!(
            "{} --store {} {what} --round {ROUND} --format parquet; echo \"exit=$?\"",
            bin.display(),
            store.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_remove("POOLTRACK_STORE")
            .output()
            .expect("script runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("exit=2"), "{what}: {text}");
        assert!(
            text.contains("standard output is a terminal"),
            "{what}: {text}"
        );
        assert!(!text.contains("PAR1"), "{what}: {text}");
    }
}
