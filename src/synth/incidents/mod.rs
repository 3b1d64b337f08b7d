//! Staged incidents in a generated round (`pooltrack gen --incidents`): the things a
//! testing office must see in its round report, planted where a test can find them.
//!
//! [`generate`] makes the plain round with [`super::generate`] and then rewrites its
//! files. It is a second pass over the written CSV, not part of the chunked generator,
//! so that a plain round keeps its bytes (the city-scale benchmark reads them) and its
//! speed; it holds the round in memory, which is why it stops at
//! [`MAX_INCIDENT_PERSONS`].
//!
//! | file | what changes |
//! | --- | --- |
//! | `population.csv` | new: the register, `person,district,community,group` |
//! | `results.csv` | columns `sample_type,ct_ic,received_at` added; two control rows per plate |
//! | `retest_collections.csv` | the discordant pool's members; the late lab's retests later |
//! | `retest_results.csv` | as `results.csv`, plus the discordant pool's negative retests |
//! | `incidents.json` | new: the [`Incidents`], pretty JSON |
//! | `collections.csv` | column `box` added: the box each tube travels in |
//! | `boxes.csv`, `receipts.csv` | new: the box manifest and the labs' receipt scans |
//! | `summary.json` | counts include the discordant pool; `"incidents": true` |
//!
//! The incidents:
//!
//! - **Failed plate.** One plate of the pooled stage (lab `L1`–`L3`, preferably full
//!   and without a positive tube, so the failure only costs reruns) has a negative
//!   control that amplifies (`ORF1ab` Ct 31.50). Every other control passes: negative
//!   controls have no Ct, positive controls both targets in \[29.50, 30.49\]. A plate's
//!   controls (`NC-` and `PC-` + plate id, wells `G12` and `H12`) are reported with
//!   its last sample.
//! - **Late lab.** Lab `L4` reports every tube, pooled stage and retests, 26 to 30
//!   hours after the tube's last swab, past the 24-hour deadline; the other labs keep
//!   the generator's 3 to 10 hours. The retests of `L4`'s positive pools move with
//!   their pool's report.
//! - **Discordant pool.** One negative pool tube of `L1`–`L3` (so nobody in it is
//!   infected) is reported positive at `ORF1ab` Ct 35.xx and N Ct 36.xx, as after a
//!   contamination; its members get single retest tubes, all negative, on a plate of
//!   their own.
//! - **Lab audit** ([`LabAudit`]): a lab reporting
//!   too many positives (false-positive pools whose members retest negative), a lab
//!   reporting faster than `testdata/audit_plan.toml`'s instruments can run, one
//!   positive pool recalled late; every other retest is swabbed within the hour of
//!   its pool's report. Staged last, after the register.
//! - **Register.** `population.csv` registers every collected person but one (the
//!   unregistered person: uninfected, not in the discordant pool) plus 0.5 % more
//!   people who got no tube (ids continue after the last collected person). Each
//!   person's district and community come from their sampling site: 4 to 8 districts
//!   `D01`… of consecutive sites, each site a community `D01-C01`…; about 1 % are in
//!   the key group `cold_chain` and 5 % in `school`, the rest have no group.
//! - **Custody.** The pooled stage's tubes travel in boxes scanned at their labs; one
//!   box is lost (never scanned, its tubes without results) and one late-lab tube is
//!   tested past the specimen limit (see [`Custody`]).
//!
//! Samples get an internal-control Ct in \[25, 30\] and a `received_at` 20 % to 60 % of
//! the way from the tube's last swab to its report. Everything is drawn from one random
//! stream seeded from the config's seed, so a config gives the same bytes every time.
//!
//! Each incident is staged in a file of its own with the part of `incidents.json` it
//! fills (`failed_plate`, `late_lab`, `discordant_pool`, `population`, `lab_audit`); `round` reads
//! the generated CSV into memory and writes it back, `values` holds the draws and
//! formats they share. This file checks the config and runs the stages; they share
//! the one random stream, so their order is part of the output.

mod custody;
mod discordant_pool;
mod failed_plate;
mod lab_audit;
mod late_lab;
mod population;
mod round;
mod values;

use std::collections::HashMap;
use std::path::Path;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::Serialize;

use super::chunk::below;
use super::files::write_summary;
use super::{GenConfig, GenSummary, SITE_PERSONS};
use crate::progress::Progress;
use crate::time::Millis;
use crate::{Error, Result};
use discordant_pool::discordant_pool;
use failed_plate::{add_controls, failed_plate};
use lab_audit::lab_audit;
use late_lab::late_lab;
use population::population;
use round::{
    POPULATION_COLUMNS, Round, read_collections, read_csv, read_results, write_collections,
    write_csv, write_results,
};
use values::{count, ct_text, signed};

pub use custody::{Custody, LostBox, PastLimit};
pub use discordant_pool::DiscordantPool;
pub use failed_plate::FailedPlate;
pub use lab_audit::{FastLab, LabAudit, LateRecall, PositivesLab};
pub use late_lab::LateLab;
pub use population::{Population, UnregisteredPerson};

/// The largest city `--incidents` accepts: the second pass holds the round in memory.
pub const MAX_INCIDENT_PERSONS: u64 = 2_000_000;
/// The smallest: four sites, so that every lab, the late one too, gets tubes.
pub const MIN_INCIDENT_PERSONS: u64 = 3 * SITE_PERSONS + 1;
/// The lab that reports past the deadline.
pub(crate) const LATE_LAB: &str = "L4";
/// The pooled-stage deadline the late lab misses, in hours.
pub(crate) const DEADLINE_HOURS: u64 = 24;

const HOUR_MS: i64 = 3_600_000;
const SECOND_MS: i64 = 1_000;
/// Salt of the incidents' random stream, so it differs from every chunk's stream.
const STREAM_SALT: u64 = 0x1C1D_E475_0F0C_17E5;

/// What `incidents.json` names: each incident and where to find it in the files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incidents {
    /// The plate whose negative control amplified.
    pub failed_plate: FailedPlate,
    /// The lab that reported past the deadline.
    pub late_lab: LateLab,
    /// The pool reported positive with nobody infected in it.
    pub discordant_pool: DiscordantPool,
    /// The collected person missing from the register.
    pub unregistered_person: UnregisteredPerson,
    /// The register.
    pub population: Population,
    /// The boxes, the lost one and the tube tested past its limit.
    pub custody: Custody,
    /// What `pooltrack audit` finds: too many positives, too fast, a late recall.
    pub lab_audit: LabAudit,
}

/// Checks that `cfg` is a city `--incidents` can stage.
///
/// # Errors
/// [`Error::Usage`] when the city is above [`MAX_INCIDENT_PERSONS`] or below
/// [`MIN_INCIDENT_PERSONS`], or asks for blank optional columns.
pub fn check(cfg: &GenConfig) -> Result<()> {
    if cfg.persons > MAX_INCIDENT_PERSONS {
        return Err(Error::Usage(format!(
            "--incidents works on cities of at most {MAX_INCIDENT_PERSONS} persons (it rewrites the round in memory), got {}; generate a larger city without --incidents",
            cfg.persons
        )));
    }
    if cfg.blank_optional > 0.0 {
        return Err(Error::Usage(
            "--incidents stages its incidents in the lab, plate and site columns, so it cannot leave optional columns blank; drop --blank-optional".to_owned(),
        ));
    }
    if cfg.persons < MIN_INCIDENT_PERSONS {
        return Err(Error::Usage(format!(
            "--incidents needs at least {MIN_INCIDENT_PERSONS} persons, so that all four labs (the late one too) get tubes, got {}",
            cfg.persons
        )));
    }
    Ok(())
}

/// Generates a round with [`super::generate`] and stages the incidents in its files
/// (see the module docs). Returns the round's summary and the incidents.
///
/// # Errors
/// [`Error::Usage`] for a config [`check`] or [`super::generate`] refuses, or a round
/// with no negative pool tube outside the late lab to make discordant (prevalence near
/// 1 or no pools); [`Error::Io`] when a file cannot be read or written.
pub fn generate(
    cfg: &GenConfig,
    out: &Path,
    progress: Option<&dyn Progress>,
) -> Result<(GenSummary, Incidents)> {
    check(cfg)?;
    cfg.validate()?;
    // The incidents write a register of their own.
    let plain = GenConfig {
        population: false,
        ..cfg.clone()
    };
    let mut summary = super::generate(&plain, out, progress)?;
    let incidents = stage(cfg, out, &mut summary)?;
    summary.incidents = true;
    write_summary(out, &summary)?;
    let path = out.join("incidents.json");
    let mut json = serde_json::to_vec_pretty(&incidents)
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    json.push(b'\n');
    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
    Ok((summary, incidents))
}

fn stage(cfg: &GenConfig, out: &Path, summary: &mut GenSummary) -> Result<Incidents> {
    let mut round = Round {
        collections: read_collections(&out.join("collections.csv"))?,
        results: read_results(&out.join("results.csv"))?,
        retest_collections: read_collections(&out.join("retest_collections.csv"))?,
        retest_results: read_results(&out.join("retest_results.csv"))?,
        infected: read_csv(&out.join("truth.csv"), &["person"])?
            .into_iter()
            .filter_map(|mut r| r.pop())
            .collect(),
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ STREAM_SALT);
    let discordant = discordant_pool(&mut round, &mut rng)?;
    summary.positive_pools += 1;
    summary.recalled_persons += count(discordant.members.len());
    summary.retest_tubes += count(discordant.members.len());
    let late_lab = late_lab(&mut round, &mut rng);
    let failed_plate = failed_plate(&round, &discordant, &mut rng);
    let last_swab = last_swabs(&round);
    for r in round.results.iter_mut().chain(&mut round.retest_results) {
        let swab = last_swab.get(&r.tube).copied().unwrap_or(r.reported_at);
        r.ct_ic = ct_text(2_500 + below(&mut rng, 501));
        let share = 200 + below(&mut rng, 401);
        let span = (r.reported_at - swab).max(0) / SECOND_MS;
        r.received_at = Some(swab + span * signed(share) / 1_000 * SECOND_MS);
    }
    add_controls(&mut round.results, Some(&failed_plate), &mut rng);
    add_controls(&mut round.retest_results, None, &mut rng);
    let (population, unregistered, register) =
        population(&round, &discordant.members, cfg.persons, cfg.ids, &mut rng)?;
    let audit = lab_audit(&mut round, &discordant, &failed_plate, &mut rng);
    let staged = &audit.positives_lab;
    summary.positive_pools += count(staged.false_positive_pools.len());
    summary.recalled_persons += count(staged.members.len());
    summary.retest_tubes += count(staged.members.len());
    // The lost box and the tube past its limit keep off the other incidents' tubes
    // and off the audit's two labs, so that each incident is found as staged.
    let audit_labs = [
        audit.positives_lab.lab.as_str(),
        audit.fast_lab.lab.as_str(),
    ];
    let avoided: Vec<String> = failed_plate
        .tubes
        .iter()
        .chain([&discordant.tube])
        .chain(audit.late_recall.iter().map(|l| &l.tube))
        .chain(
            round
                .results
                .iter()
                .filter(|r| audit_labs.contains(&r.lab.as_str()))
                .map(|r| &r.tube),
        )
        .cloned()
        .collect();
    let avoid: std::collections::HashSet<&str> = avoided.iter().map(String::as_str).collect();
    let staged_custody = custody::custody(&mut round, &avoid, &mut rng);
    custody_files(out, &round, &staged_custody)?;

    write_collections(
        &out.join("retest_collections.csv"),
        &round.retest_collections,
    )?;
    write_results(&out.join("results.csv"), &round.results)?;
    write_results(&out.join("retest_results.csv"), &round.retest_results)?;
    write_csv(&out.join("population.csv"), &POPULATION_COLUMNS, &register)?;
    Ok(Incidents {
        failed_plate,
        late_lab,
        discordant_pool: discordant,
        unregistered_person: unregistered,
        population,
        custody: staged_custody.incident,
        lab_audit: audit,
    })
}

/// Writes `collections.csv` with each row's box, `boxes.csv` and `receipts.csv`.
fn custody_files(out: &Path, round: &Round, staged: &custody::Staged) -> Result<()> {
    let mut header: Vec<&str> = round::COLLECTION_COLUMNS.to_vec();
    header.push("box");
    let rows: Vec<Vec<String>> = round
        .collections
        .iter()
        .zip(&staged.box_of_row)
        .map(|(c, b)| {
            let mut row = round::collection_row(c);
            row.push(b.clone());
            row
        })
        .collect();
    write_csv(&out.join("collections.csv"), &header, &rows)?;
    write_csv(
        &out.join("boxes.csv"),
        &["box", "tube", "site", "sealed_at"],
        &staged.boxes,
    )?;
    write_csv(
        &out.join("receipts.csv"),
        &["box", "tube", "received_at", "lab"],
        &staged.receipts,
    )
}

/// Each tube's last swab, both stages.
fn last_swabs(round: &Round) -> HashMap<String, Millis> {
    let mut last: HashMap<String, Millis> = HashMap::new();
    for c in round.collections.iter().chain(&round.retest_collections) {
        let t = last.entry(c.tube.clone()).or_insert(c.collected_at);
        *t = (*t).max(c.collected_at);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::round::RESULT_COLUMNS;
    use super::*;
    use crate::time::{self, Offset};

    const FILES: [&str; 10] = [
        "boxes.csv",
        "receipts.csv",
        "collections.csv",
        "results.csv",
        "retest_collections.csv",
        "retest_results.csv",
        "truth.csv",
        "population.csv",
        "incidents.json",
        "summary.json",
    ];

    pub(super) fn cfg(persons: u64, seed: u64) -> GenConfig {
        GenConfig {
            persons,
            prevalence: 0.002,
            seed,
            ..GenConfig::default()
        }
    }

    pub(super) fn staged(c: &GenConfig) -> (tempfile::TempDir, Incidents) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, incidents) = generate(c, dir.path(), None).expect("generate");
        (dir, incidents)
    }

    pub(super) fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).expect("read")
    }

    /// The round as written, with every result row's columns.
    pub(super) fn load(dir: &Path) -> (Round, Vec<Vec<String>>, Vec<Vec<String>>) {
        let round = Round {
            collections: read_collections(&dir.join("collections.csv")).expect("collections"),
            results: Vec::new(),
            retest_collections: read_collections(&dir.join("retest_collections.csv"))
                .expect("retest collections"),
            retest_results: Vec::new(),
            infected: read_csv(&dir.join("truth.csv"), &["person"])
                .expect("truth")
                .into_iter()
                .flatten()
                .collect(),
        };
        let res = read_csv(&dir.join("results.csv"), &RESULT_COLUMNS).expect("results");
        let rt = read_csv(&dir.join("retest_results.csv"), &RESULT_COLUMNS).expect("retests");
        (round, res, rt)
    }

    pub(super) fn ms(text: &str) -> Millis {
        time::parse(text.as_bytes(), Offset::CHINA).expect("time")
    }

    #[test]
    fn the_same_config_gives_the_same_bytes() {
        let (a, _) = staged(&cfg(10_000, 5));
        let (b, _) = staged(&cfg(10_000, 5));
        for f in FILES {
            assert_eq!(read(a.path(), f), read(b.path(), f), "{f}");
        }
        let (c, _) = staged(&cfg(10_000, 6));
        assert_ne!(
            read(a.path(), "incidents.json"),
            read(c.path(), "incidents.json")
        );
    }

    #[test]
    fn cities_out_of_range_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        for persons in [MAX_INCIDENT_PERSONS + 1, MIN_INCIDENT_PERSONS - 1] {
            let out = dir.path().join(persons.to_string());
            assert!(matches!(
                generate(&cfg(persons, 1), &out, None),
                Err(Error::Usage(_))
            ));
            assert!(!out.exists());
        }
        assert!(check(&cfg(MAX_INCIDENT_PERSONS, 1)).is_ok());
        let blank = GenConfig {
            blank_optional: 0.1,
            ..cfg(10_000, 1)
        };
        assert!(matches!(check(&blank), Err(Error::Usage(_))));
    }

    #[test]
    fn the_staged_register_replaces_the_plain_one() {
        let (dir, incidents) = staged(&GenConfig {
            population: true,
            ..cfg(8_000, 2)
        });
        let register =
            read_csv(&dir.path().join("population.csv"), &POPULATION_COLUMNS).expect("population");
        assert_eq!(count(register.len()), incidents.population.registered);
        let summary = std::fs::read_to_string(dir.path().join("summary.json")).expect("summary");
        assert!(!summary.contains("registered"), "{summary}");
    }

    #[test]
    fn a_plain_round_has_no_incidents_flag() {
        let s = serde_json::to_value(GenSummary::default()).expect("json");
        assert!(s.get("incidents").is_none());
    }
}
