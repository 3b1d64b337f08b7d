//! Several rounds of one city (`pooltrack gen --rounds N`), for health codes across
//! rounds: the same persons swabbed every round, a round every `gap` hours, one folder
//! per round (`R1/`, `R2/`, ...) holding the files of a plain round, a register with a
//! `group` column beside them, and a few persons who miss the second round so that
//! their negative swab of the first lapses before the third (staged in `rounds.json`).
//!
//! Round `k` is the plain generator's round with seed `seed + k - 1` (other infections,
//! other pools), every time in it moved `(k - 1) * gap` hours later. Its files are
//! those of the plain round except that the staged persons' rows are left out of the
//! second round's `collections.csv`.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::{GenConfig, generate};
use crate::progress::Progress;
use crate::time::{self, Millis, Offset};
use crate::{Error, Result};

/// The key groups the register names: every 25th person is `cold_chain` (tested
/// daily), every 10th of the rest `lab_staff` (every three days).
pub const GROUPS: [(&str, f64); 2] = [("cold_chain", 24.0), ("lab_staff", 72.0)];

/// The group of the register's `j`th person (0-based), empty for none.
fn group_of(j: u64) -> &'static str {
    if j % 25 == 7 {
        GROUPS[0].0
    } else if j % 10 == 3 {
        GROUPS[1].0
    } else {
        ""
    }
}

/// One generated round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundFiles {
    /// The round's name for `ingest collections --round` (also its folder).
    pub name: String,
    /// Its first swab, `YYYY-MM-DD HH:MM:SS` at +08:00.
    pub first_swab: String,
    /// Its last swab (retests included).
    pub last_swab: String,
    /// Its last result.
    pub last_report: String,
}

/// A person staged to miss the second round.
#[derive(Debug, Clone, Serialize)]
pub struct Lapsed {
    /// Person id.
    pub person: String,
    /// Their group in the register (empty: none; the window is `validity_hours`).
    pub group: String,
    /// Their swab in the first round.
    pub first_round_swab: String,
}

/// What `rounds.json` records.
#[derive(Debug, Clone, Serialize)]
pub struct Staged {
    /// Hours between one round's start and the next.
    pub gap_hours: f64,
    /// The rounds, oldest first.
    pub rounds: Vec<RoundFiles>,
    /// The windows the groups are meant for (`[health_codes.groups]`).
    pub group_windows: Vec<(String, f64)>,
    /// Persons swabbed in the first and third rounds but not the second.
    pub lapsed: Vec<Lapsed>,
    /// A minute before the third round's first swab: every lapsed person without a
    /// group has had no swab for over 48 h by then.
    pub before_third_round: String,
}

/// Generates `rounds` rounds (2 to 10) of `cfg`'s city `gap_hours` apart under `out`.
pub fn generate_rounds(
    cfg: &GenConfig,
    rounds: u32,
    gap_hours: f64,
    out: &Path,
    progress: Option<&dyn Progress>,
) -> Result<Staged> {
    if !(2..=10).contains(&rounds) {
        return Err(Error::Usage(format!(
            "--rounds must be from 2 to 10, not {rounds}"
        )));
    }
    if !(gap_hours.is_finite() && (1.0..=720.0).contains(&gap_hours)) {
        return Err(Error::Usage(format!(
            "--round-gap-hours must be from 1 to 720, not {gap_hours}"
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut staged = Staged {
        gap_hours,
        rounds: Vec::new(),
        group_windows: GROUPS.iter().map(|&(g, h)| (g.to_owned(), h)).collect(),
        lapsed: Vec::new(),
        before_third_round: String::new(),
    };
    let mut groups: Vec<String> = Vec::new();
    for k in 1..=rounds {
        let name = format!("R{k}");
        let dir = out.join(&name);
        let round_cfg = GenConfig {
            seed: cfg.seed.wrapping_add(u64::from(k - 1)),
            population: k == 1,
            ..cfg.clone()
        };
        generate(&round_cfg, &dir, progress)?;
        if k == 1 {
            groups = write_register(&dir.join("population.csv"), &out.join("population.csv"))?;
        }
        // Checked above: at most 10 rounds of at most 720 hours.
        #[allow(clippy::cast_possible_truncation)]
        let shift = (f64::from(k - 1) * gap_hours * 3_600_000.0).round() as Millis;
        let skip = if k == 2 {
            staged.lapsed = pick_lapsed(&dir, cfg.persons, &groups)?;
            swab_times(&out.join("R1").join("collections.csv"), &mut staged.lapsed)?;
            staged.lapsed.iter().map(|l| l.person.clone()).collect()
        } else {
            HashSet::new()
        };
        let mut span = Span::default();
        for file in [
            "collections.csv",
            "retest_collections.csv",
            "results.csv",
            "retest_results.csv",
        ] {
            let skip = if file == "collections.csv" {
                &skip
            } else {
                &HashSet::new()
            };
            rewrite(&dir.join(file), k, shift, skip, &mut span)?;
        }
        staged.rounds.push(RoundFiles {
            name,
            first_swab: local(span.first_swab),
            last_swab: local(span.last_swab),
            last_report: local(span.last_report),
        });
    }
    if let Some(third) = staged.rounds.get(2) {
        let first = time::parse(third.first_swab.as_bytes(), Offset::CHINA).unwrap_or(0);
        staged.before_third_round = local(first - 60_000);
    }
    let json =
        serde_json::to_vec_pretty(&staged).map_err(|e| Error::io(out, std::io::Error::other(e)))?;
    std::fs::write(out.join("rounds.json"), json).map_err(|e| Error::io(out, e))?;
    Ok(staged)
}

fn local(t: Millis) -> String {
    time::format_local(t, Offset::CHINA)
}

/// Swab times seen in a round.
struct Span {
    first_swab: Millis,
    last_swab: Millis,
    last_report: Millis,
}

impl Default for Span {
    fn default() -> Self {
        Span {
            first_swab: Millis::MAX,
            last_swab: Millis::MIN,
            last_report: Millis::MIN,
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// The register with a `group` column: the plain register of the first round.
fn write_register(from: &Path, to: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(from).map_err(io(from))?;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut groups = Vec::new();
    for (j, line) in text.lines().enumerate() {
        if j == 0 {
            out.push_str(line);
            out.push_str(",group\n");
            continue;
        }
        let group = group_of(j as u64 - 1);
        out.push_str(line);
        out.push(',');
        out.push_str(group);
        out.push('\n');
        groups.push(group.to_owned());
    }
    std::fs::write(to, out).map_err(io(to))?;
    std::fs::remove_file(from).map_err(io(from))?;
    Ok(groups)
}

/// Persons to leave out of the second round: pooled, in a tube whose result is
/// negative, not retested, one in a thousand (at least one, at most 1,000), and among
/// them one `lab_staff` person whose 72 h window outlasts the gap.
fn pick_lapsed(dir: &Path, persons: u64, groups: &[String]) -> Result<Vec<Lapsed>> {
    let results = dir.join("results.csv");
    let mut negative: HashSet<String> = HashSet::new();
    for line in BufReader::new(std::fs::File::open(&results).map_err(io(&results))?)
        .lines()
        .skip(1)
    {
        let line = line.map_err(io(&results))?;
        let mut f = line.split(',');
        if let (Some(tube), Some("negative")) = (f.next(), f.next()) {
            negative.insert(tube.to_owned());
        }
    }
    let retests = dir.join("retest_collections.csv");
    let retested: HashSet<String> = std::fs::read_to_string(&retests)
        .map_err(io(&retests))?
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1).map(str::to_owned))
        .collect();
    let want = usize::try_from((persons / 1000).clamp(1, 1000)).unwrap_or(1);
    let every = usize::try_from((persons / want as u64).max(1)).unwrap_or(1);
    let group_by_person = |person: &str| -> String {
        person
            .get(..17)
            .and_then(|d| d.parse::<u64>().ok())
            .and_then(|n| n.checked_sub(31_000_000_000_000_001))
            .and_then(|j| groups.get(usize::try_from(j).ok()?))
            .cloned()
            .unwrap_or_default()
    };
    let collections = dir.join("collections.csv");
    let mut picked: Vec<Lapsed> = Vec::new();
    let mut lab_staff = false;
    for (i, line) in BufReader::new(std::fs::File::open(&collections).map_err(io(&collections))?)
        .lines()
        .skip(1)
        .enumerate()
    {
        let line = line.map_err(io(&collections))?;
        let f: Vec<&str> = line.split(',').collect();
        let (Some(tube), Some(person), Some(&"pool")) = (f.first(), f.get(1), f.get(2)) else {
            continue;
        };
        if !negative.contains(*tube) || retested.contains(*person) {
            continue;
        }
        let group = group_by_person(person);
        let take = (group.is_empty() && i % every == every / 2 && picked.len() < want)
            || (group == GROUPS[1].0 && !lab_staff);
        if take {
            lab_staff |= group == GROUPS[1].0;
            picked.push(Lapsed {
                person: (*person).to_owned(),
                group,
                first_round_swab: String::new(),
            });
        }
    }
    Ok(picked)
}

/// Fills in the lapsed persons' first-round swabs.
fn swab_times(collections: &Path, lapsed: &mut [Lapsed]) -> Result<()> {
    for line in BufReader::new(std::fs::File::open(collections).map_err(io(collections))?).lines() {
        let line = line.map_err(io(collections))?;
        let f: Vec<&str> = line.split(',').collect();
        if let (Some(person), Some(at)) = (f.get(1), f.get(4))
            && let Some(l) = lapsed.iter_mut().find(|l| l.person == *person)
        {
            (*at).clone_into(&mut l.first_round_swab);
        }
    }
    Ok(())
}

/// Moves every time column of a generated CSV of round `k` `shift` later, gives its
/// tubes barcodes of their own (`PL000000001` becomes `PL2000000001` in the second
/// round: a lab matches a result to the round that swabbed its tube) and drops the rows
/// of the persons in `skip`, in place. The first round is left as generated.
fn rewrite(
    path: &Path,
    k: u32,
    shift: Millis,
    skip: &HashSet<String>,
    span: &mut Span,
) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let names: Vec<&str> = header.split(',').collect();
    let col = |n: &str| names.iter().position(|&c| c == n);
    let (tube, swab, report, received, person) = (
        col("tube"),
        col("collected_at"),
        col("reported_at"),
        col("received_at"),
        col("person"),
    );
    let tmp = path.with_extension("csv.tmp");
    let mut out = BufWriter::new(std::fs::File::create(&tmp).map_err(io(&tmp))?);
    writeln!(out, "{header}").map_err(io(&tmp))?;
    let mut cells: Vec<String> = Vec::new();
    for line in lines {
        cells.clear();
        cells.extend(line.split(',').map(str::to_owned));
        if person
            .and_then(|p| cells.get(p))
            .is_some_and(|p| skip.contains(p))
        {
            continue;
        }
        if k > 1
            && let Some(cell) = tube.and_then(|c| cells.get_mut(c))
            && cell.len() > 2
            && cell.is_char_boundary(2)
        {
            cell.insert_str(2, &k.to_string());
        }
        for (c, seen) in [(swab, true), (report, false), (received, false)] {
            let Some(cell) = c.and_then(|c| cells.get_mut(c)) else {
                continue;
            };
            let Ok(t) = time::parse(cell.as_bytes(), Offset::CHINA) else {
                continue;
            };
            let t = t + shift;
            if seen {
                span.first_swab = span.first_swab.min(t);
                span.last_swab = span.last_swab.max(t);
            } else if report == c {
                span.last_report = span.last_report.max(t);
            }
            *cell = local(t);
        }
        writeln!(out, "{}", cells.join(",")).map_err(io(&tmp))?;
    }
    out.flush().map_err(io(&tmp))?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_rounds_move_their_times_and_stage_the_lapsed() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = GenConfig {
            persons: 3_000,
            prevalence: 0.01,
            ..GenConfig::default()
        };
        let staged = generate_rounds(&cfg, 3, 30.0, dir.path(), None).expect("generated");
        assert_eq!(staged.rounds.len(), 3);
        let first = |k: usize| {
            time::parse(staged.rounds[k].first_swab.as_bytes(), Offset::CHINA).expect("time")
        };
        // Each round's first swab is its own seed's, within a minute of 07:00.
        assert!((first(1) - first(0) - 30 * 3_600_000).abs() < 60_000);
        assert!((first(2) - first(0) - 60 * 3_600_000).abs() < 60_000);
        assert!(staged.lapsed.len() >= 3, "{:?}", staged.lapsed);
        assert!(staged.lapsed.iter().any(|l| l.group == "lab_staff"));
        let r2 = std::fs::read_to_string(dir.path().join("R2/collections.csv")).expect("r2");
        let r3 = std::fs::read_to_string(dir.path().join("R3/collections.csv")).expect("r3");
        for l in &staged.lapsed {
            assert!(
                !r2.contains(&l.person) && r3.contains(&l.person),
                "{}",
                l.person
            );
            assert!(!l.first_round_swab.is_empty());
        }
        let register = std::fs::read_to_string(dir.path().join("population.csv")).expect("reg");
        assert!(register.starts_with("person,district,community,group\n"));
        assert!(!dir.path().join("R1/population.csv").exists());
    }
}
