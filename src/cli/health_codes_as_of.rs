//! `pooltrack export health-codes [--as-of T] [--out FILE]` (no `--round`): the codes
//! across every round of the store, and `pooltrack status --person ID` (no `--round`):
//! one person's rounds and code. The arguments live with `export` and `status`; this
//! file runs them.

use std::path::Path;

use pooltrack::health_code::Color;
use pooltrack::health_code::person;
use pooltrack::health_code::rounds::CodesAsOf;
use pooltrack::health_code::rules::Code;
use pooltrack::output::{Format, stream};
use pooltrack::report;
use pooltrack::store::Store;
use pooltrack::time::{self, Millis};
use serde::Serialize;

/// `--as-of`, or now.
fn as_of_or_now(store: &Store, text: Option<&str>) -> pooltrack::Result<Millis> {
    Ok(super::as_of(store, text)?.unwrap_or_else(time::now))
}

pub fn export(
    store: &Store,
    as_of: Option<&str>,
    format: Format,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let at = as_of_or_now(store, as_of)?;
    let codes = CodesAsOf::load(store, at)?;
    if !codes.registered {
        eprintln!(
            "pooltrack: note: no population register, so nobody must test and no code is yellow for a lapsed negative (pooltrack ingest population FILE)"
        );
    }
    let Some(out) = out else {
        return Ok(stream::write_stdout(&codes, format)?);
    };
    stream::write_file(&codes, format, out)?;
    let c = codes.counts();
    let reasons: Vec<String> = c
        .by_reason
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    eprintln!(
        "wrote {} health code(s) as of {} to {}: {} red, {} yellow, {} green ({})",
        stream::RowMaker::len(&codes),
        time::format_local(at, store.zone()),
        out.display(),
        c.red,
        c.yellow,
        c.green,
        reasons.join(", ")
    );
    if let [first, .., last] | [first @ last] = codes.saved_rounds() {
        eprintln!(
            "rounds {first} to {last} came from the fold saved by an earlier export ({}); the rest were read",
            pooltrack::store::CODES_STATE
        );
    }
    Ok(())
}

/// One round of a person's history.
#[derive(Serialize)]
struct RoundLine {
    round: String,
    /// Their status in the round as of the time (`no_tube` for a round that did not
    /// swab them).
    status_as_of: &'static str,
    /// The round's report of them (every tube and result, whenever reported).
    report: Option<report::PersonReport>,
}

/// A person's history and code.
#[derive(Serialize)]
struct History {
    person: String,
    as_of: String,
    color: Color,
    reason: String,
    valid_until: Option<String>,
    decided_by_round: Option<String>,
    registered: bool,
    group: String,
    window_hours: Option<f64>,
    rounds: Vec<RoundLine>,
}

pub fn person_history(
    store: &Store,
    person: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let at = as_of_or_now(store, as_of)?;
    let zone = store.zone();
    let Some((one, code)) = person::one_person(store, person, at)? else {
        anyhow::bail!("person {person:?} has no tube in any round and is not in the register");
    };
    let mut lines = Vec::new();
    for round in &one.rounds {
        let word = one.words.iter().find(|(r, _)| r == round).map(|(_, w)| w);
        lines.push(RoundLine {
            round: round.clone(),
            status_as_of: word.map_or("no_tube", |w| w.status.as_str()),
            report: match word {
                Some(_) => report::person_report(store, round, person)?,
                None => None,
            },
        });
    }
    let Code {
        color,
        reason,
        by,
        valid_until,
        window_hours,
    } = code;
    let mut why = String::new();
    reason.write(window_hours, &mut why);
    let history = History {
        person: person.to_owned(),
        as_of: time::format(at, zone),
        color,
        reason: why,
        valid_until: valid_until.map(|u| time::format(u, zone)),
        decided_by_round: by.and_then(|w| {
            one.words
                .iter()
                .find(|(_, x)| *x == w)
                .map(|(r, _)| r.clone())
        }),
        registered: one.window_hours.is_some(),
        group: one.group,
        window_hours: one.window_hours,
        rounds: lines,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(());
    }
    println!(
        "person {} as of {}: {} ({}{})",
        history.person,
        history.as_of,
        history.color.as_str(),
        history.reason,
        history
            .valid_until
            .as_ref()
            .map_or(String::new(), |u| format!(", valid until {u}"))
    );
    match (&history.decided_by_round, history.window_hours) {
        (Some(r), _) => println!("decided by their tube in round {r}"),
        (None, _) => println!("decided by the register: no tube swabbed by then"),
    }
    match history.window_hours {
        Some(h) if h > 0.0 => println!(
            "registered{}: a negative swab keeps the code green for {h} h",
            if history.group.is_empty() {
                String::new()
            } else {
                format!(" in group {}", history.group)
            }
        ),
        Some(_) => println!("registered in group {}, which need not test", history.group),
        None => println!("not in the register: nobody asks them to test"),
    }
    for line in &history.rounds {
        let Some(r) = &line.report else {
            println!("round {}: no tube", line.round);
            continue;
        };
        println!(
            "round {}: {} as of then ({} with every result in)",
            line.round,
            line.status_as_of,
            r.status.as_str()
        );
        for t in &r.tubes {
            println!(
                "  {} {} collected {}, result {}",
                t.tube,
                t.mode,
                t.collected_at,
                match (&t.not_counted, t.result.is_empty()) {
                    (Some(why), _) => format!("none that counts ({why})"),
                    (None, true) => "none yet".to_owned(),
                    (None, false) => t.result.clone(),
                }
            );
            for x in &t.results {
                println!(
                    "      {} reported {}{}",
                    x.result,
                    x.reported_at,
                    match (&x.past_limit, x.effective) {
                        (Some(why), _) => format!(" (does not count: {why})"),
                        (None, true) => " (effective)".to_owned(),
                        (None, false) => String::new(),
                    }
                );
            }
        }
    }
    Ok(())
}
