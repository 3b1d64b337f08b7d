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
//! | `summary.json` | counts include the discordant pool; `"incidents": true` |
//!
//! The incidents:
//!
//! - **Failed plate.** One plate of the pooled stage (lab `L1`–`L3`, preferably full
//!   and without a positive tube, so the failure only costs reruns) has a negative
//!   control that amplifies (ORF1ab Ct 31.50). Every other control passes: negative
//!   controls have no Ct, positive controls both targets in \[29.50, 30.49\]. A plate's
//!   controls (`NC-` and `PC-` + plate id, wells `G12` and `H12`) are reported with
//!   its last sample.
//! - **Late lab.** Lab `L4` reports every tube, pooled stage and retests, 26 to 30
//!   hours after the tube's last swab, past the 24-hour deadline; the other labs keep
//!   the generator's 3 to 10 hours. The retests of `L4`'s positive pools move with
//!   their pool's report.
//! - **Discordant pool.** One negative pool tube of `L1`–`L3` (so nobody in it is
//!   infected) is reported positive at ORF1ab Ct 35.xx and N Ct 36.xx, as after a
//!   contamination; its members get single retest tubes, all negative, on a plate of
//!   their own.
//! - **Register.** `population.csv` registers every collected person but one (the
//!   unregistered person: uninfected, not in the discordant pool) plus 0.5 % more
//!   people who got no tube (ids continue after the last collected person). Each
//!   person's district and community come from their sampling site: 4 to 8 districts
//!   `D01`… of consecutive sites, each site a community `D01-C01`…; about 1 % are in
//!   the key group `cold_chain` and 5 % in `school`, the rest have no group.
//!
//! Samples get an internal-control Ct in \[25, 30\] and a `received_at` 20 % to 60 % of
//! the way from the tube's last swab to its report. Everything is drawn from one random
//! stream seeded from the config's seed, so a config gives the same bytes every time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::Serialize;

use super::chunk::{below, unit};
use super::files::write_summary;
use super::text::person_id;
use super::{GenConfig, GenSummary, PLATE_SAMPLES, SITE_PERSONS};
use crate::progress::Progress;
use crate::time::{self, Millis, Offset};
use crate::{Error, Result};

/// The largest city `--incidents` accepts: the second pass holds the round in memory.
pub const MAX_INCIDENT_PERSONS: u64 = 2_000_000;
/// The smallest: four sites, so that every lab, the late one too, gets tubes.
pub const MIN_INCIDENT_PERSONS: u64 = 3 * SITE_PERSONS + 1;
/// The lab that reports past the deadline.
pub const LATE_LAB: &str = "L4";
/// The pooled-stage deadline the late lab misses, in hours.
pub const DEADLINE_HOURS: u64 = 24;
/// What the failed plate's negative control reads on ORF1ab.
const FAILED_CONTROL_CT: &str = "31.50";

const HOUR_MS: i64 = 3_600_000;
const SECOND_MS: i64 = 1_000;
/// Salt of the incidents' random stream, so it differs from every chunk's stream.
const STREAM_SALT: u64 = 0x1C1D_E475_0F0C_17E5;

const RESULT_COLUMNS: [&str; 11] = [
    "tube",
    "result",
    "ct_orf1ab",
    "ct_n",
    "reported_at",
    "lab",
    "plate",
    "well",
    "sample_type",
    "ct_ic",
    "received_at",
];
const COLLECTION_COLUMNS: [&str; 6] =
    ["tube", "person", "mode", "capacity", "collected_at", "site"];
const POPULATION_COLUMNS: [&str; 4] = ["person", "district", "community", "group"];

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
}

/// The failed plate of the pooled stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedPlate {
    /// Its lab.
    pub lab: String,
    /// Its plate id.
    pub plate: String,
    /// The label of the control that failed it.
    pub negative_control: String,
    /// The control's ORF1ab Ct.
    pub ct_orf1ab: f64,
    /// Positive tubes on it (0 unless no plate was free of them).
    pub positive_tubes: u64,
    /// Its sample tubes, in well order: every one must be rerun.
    pub tubes: Vec<String>,
}

/// The lab that reported past the deadline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateLab {
    /// The lab.
    pub lab: String,
    /// The deadline it misses, in hours.
    pub deadline_hours: u64,
    /// Its tubes of the pooled stage.
    pub tubes: u64,
    /// Its retest tubes.
    pub retest_tubes: u64,
    /// Shortest time from a tube's last swab to its report, in hours.
    pub min_turnaround_hours: f64,
    /// Longest, in hours.
    pub max_turnaround_hours: f64,
}

/// The pool reported positive though nobody in it is infected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscordantPool {
    /// The pool tube.
    pub tube: String,
    /// Its lab.
    pub lab: String,
    /// Its plate.
    pub plate: String,
    /// Its reported ORF1ab Ct.
    pub ct_orf1ab: f64,
    /// Its reported N Ct.
    pub ct_n: f64,
    /// Its members, in collection order.
    pub members: Vec<String>,
    /// Their single retest tubes, in the same order; all negative.
    pub retest_tubes: Vec<String>,
}

/// The collected person the register lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnregisteredPerson {
    /// The person id.
    pub person: String,
    /// Their tube.
    pub tube: String,
    /// Their sampling site.
    pub site: String,
}

/// The register, `population.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// Rows of `population.csv`.
    pub registered: u64,
    /// Registered persons with no tube in the round.
    pub untested: u64,
    /// Their ids.
    pub untested_persons: Vec<String>,
    /// Districts.
    pub districts: u64,
    /// Communities (one per sampling site).
    pub communities: u64,
    /// Registered persons per key group.
    pub key_groups: BTreeMap<String, u64>,
}

/// Checks that `cfg` is a city `--incidents` can stage.
///
/// # Errors
/// [`Error::Usage`] when the city is above [`MAX_INCIDENT_PERSONS`] or below
/// [`MIN_INCIDENT_PERSONS`].
pub fn check(cfg: &GenConfig) -> Result<()> {
    if cfg.persons > MAX_INCIDENT_PERSONS {
        return Err(Error::Usage(format!(
            "--incidents works on cities of at most {MAX_INCIDENT_PERSONS} persons (it rewrites the round in memory), got {}; generate a larger city without --incidents",
            cfg.persons
        )));
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
    let mut summary = super::generate(cfg, out, progress)?;
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

/// A row of a collections file.
struct Collection {
    tube: String,
    person: String,
    mode: String,
    capacity: String,
    collected_at: Millis,
    site: String,
}

/// A row of a results file, controls included.
struct TubeResult {
    tube: String,
    result: String,
    ct_orf1ab: String,
    ct_n: String,
    reported_at: Millis,
    lab: String,
    plate: String,
    well: String,
    sample_type: &'static str,
    ct_ic: String,
    received_at: Option<Millis>,
}

/// The round as the generator wrote it, being rewritten.
struct Round {
    collections: Vec<Collection>,
    results: Vec<TubeResult>,
    retest_collections: Vec<Collection>,
    retest_results: Vec<TubeResult>,
    infected: HashSet<String>,
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
        population(&round, &discordant.members, cfg.persons, &mut rng)?;

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
    })
}

/// Makes a negative pool outside the late lab positive at a high Ct and gives its
/// members negative single retests on a plate of their own.
fn discordant_pool(round: &mut Round, rng: &mut Xoshiro256PlusPlus) -> Result<DiscordantPool> {
    let candidates: Vec<usize> = round
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.tube.starts_with("PL") && r.ct_orf1ab.is_empty() && r.lab != LATE_LAB)
        .map(|(i, _)| i)
        .collect();
    let Some(&row) = pick(&candidates, rng) else {
        return Err(Error::Usage(
            "--incidents needs a negative pool tube outside the late lab to make discordant; raise --pool-share or lower --prevalence".to_owned(),
        ));
    };
    let next_plate = round
        .results
        .iter()
        .chain(&round.retest_results)
        .filter_map(|r| r.plate.rsplit_once("-P")?.1.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let next_serial = round
        .retest_collections
        .iter()
        .filter_map(|c| c.tube.strip_prefix("RT")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let (orf, n) = (3_500 + below(rng, 100), 3_600 + below(rng, 100));
    let pool = &mut round.results[row];
    pool.ct_orf1ab = ct_text(orf);
    pool.ct_n = ct_text(n);
    if !pool.result.is_empty() {
        pool.result = "positive".to_owned();
    }
    let (tube, lab, reported) = (pool.tube.clone(), pool.lab.clone(), pool.reported_at);
    let plate = format!("{lab}-P{next_plate:06}");
    let members: Vec<&Collection> = round
        .collections
        .iter()
        .filter(|c| c.tube == tube)
        .collect();
    let mut retest_tubes = Vec::new();
    for (k, member) in (0u64..).zip(&members) {
        let retest = format!("RT{:09}", next_serial + k);
        let at = reported + hours_and_seconds(rng, 1, 4);
        round.retest_collections.push(Collection {
            tube: retest.clone(),
            person: member.person.clone(),
            mode: "single".to_owned(),
            capacity: "1".to_owned(),
            collected_at: at,
            site: member.site.clone(),
        });
        round.retest_results.push(TubeResult {
            tube: retest.clone(),
            result: "negative".to_owned(),
            ct_orf1ab: String::new(),
            ct_n: String::new(),
            reported_at: at + hours_and_seconds(rng, 2, 6),
            lab: lab.clone(),
            plate: plate.clone(),
            well: well_name(k),
            sample_type: "sample",
            ct_ic: String::new(),
            received_at: None,
        });
        retest_tubes.push(retest);
    }
    Ok(DiscordantPool {
        members: members.iter().map(|c| c.person.clone()).collect(),
        tube,
        lab,
        plate: round.results[row].plate.clone(),
        ct_orf1ab: ct_value(orf),
        ct_n: ct_value(n),
        retest_tubes,
    })
}

/// Moves every report of [`LATE_LAB`] to 26–30 h after the tube's last swab, and the
/// retests its positive pools called for by as much as their pool's report moved.
fn late_lab(round: &mut Round, rng: &mut Xoshiro256PlusPlus) -> LateLab {
    let mut last: HashMap<&str, Millis> = HashMap::new();
    let mut pool_of: HashMap<&str, &str> = HashMap::new();
    for c in &round.collections {
        let t = last.entry(&c.tube).or_insert(c.collected_at);
        *t = (*t).max(c.collected_at);
        pool_of.insert(&c.person, &c.tube);
    }
    let mut moved: HashMap<&str, Millis> = HashMap::new();
    let mut turnaround = Vec::new();
    let mut tubes = 0;
    for r in round.results.iter_mut().filter(|r| r.lab == LATE_LAB) {
        let swab = last.get(r.tube.as_str()).copied().unwrap_or(r.reported_at);
        let reported = swab + hours_and_seconds(rng, 26, 30);
        if let Some(tube) = last.get_key_value(r.tube.as_str()).map(|(k, _)| *k) {
            moved.insert(tube, reported - r.reported_at);
        }
        r.reported_at = reported;
        turnaround.push(reported - swab);
        tubes += 1;
    }
    let mut retest_moved: HashMap<String, Millis> = HashMap::new();
    for c in &mut round.retest_collections {
        let shift = pool_of
            .get(c.person.as_str())
            .and_then(|pool| moved.get(pool))
            .copied()
            .unwrap_or(0);
        c.collected_at += shift;
        retest_moved.insert(c.tube.clone(), shift);
    }
    let retest_at: HashMap<&str, Millis> = round
        .retest_collections
        .iter()
        .map(|c| (c.tube.as_str(), c.collected_at))
        .collect();
    let mut retest_tubes = 0;
    for r in &mut round.retest_results {
        let swab = retest_at.get(r.tube.as_str()).copied();
        match swab {
            Some(swab) if r.lab == LATE_LAB => {
                r.reported_at = swab + hours_and_seconds(rng, 26, 30);
                turnaround.push(r.reported_at - swab);
                retest_tubes += 1;
            }
            _ => r.reported_at += retest_moved.get(r.tube.as_str()).copied().unwrap_or(0),
        }
    }
    let hours = |ms: Option<&Millis>| ms.map_or(0.0, |&t| hours_value(t));
    LateLab {
        lab: LATE_LAB.to_owned(),
        deadline_hours: DEADLINE_HOURS,
        tubes,
        retest_tubes,
        min_turnaround_hours: hours(turnaround.iter().min()),
        max_turnaround_hours: hours(turnaround.iter().max()),
    }
}

/// Picks the plate whose negative control will amplify: a pooled-stage plate outside
/// the late lab and the discordant pool's plate, with as few positive tubes as any
/// (none, in a city of ordinary prevalence), full if one such is.
fn failed_plate(
    round: &Round,
    discordant: &DiscordantPool,
    rng: &mut Xoshiro256PlusPlus,
) -> FailedPlate {
    let mut plates: Vec<(&str, &str)> = Vec::new();
    let mut tubes: HashMap<(&str, &str), (Vec<&str>, u64)> = HashMap::new();
    for r in &round.results {
        let key = (r.lab.as_str(), r.plate.as_str());
        if r.lab == LATE_LAB || key == (discordant.lab.as_str(), discordant.plate.as_str()) {
            continue;
        }
        let entry = tubes.entry(key).or_insert_with(|| {
            plates.push(key);
            (Vec::new(), 0)
        });
        entry.0.push(&r.tube);
        entry.1 += u64::from(!r.ct_orf1ab.is_empty());
    }
    let fewest = |full: bool| {
        let ok = |p: &&(&str, &str)| {
            !full
                || tubes
                    .get(*p)
                    .is_some_and(|t| count(t.0.len()) == PLATE_SAMPLES)
        };
        let least = plates
            .iter()
            .filter(ok)
            .filter_map(|p| tubes.get(p).map(|t| t.1))
            .min();
        plates
            .iter()
            .filter(ok)
            .filter(|p| tubes.get(*p).map(|t| t.1) == least)
            .copied()
            .collect::<Vec<_>>()
    };
    let mut candidates = fewest(true);
    if candidates.is_empty() {
        candidates = fewest(false);
    }
    // Every generated round has a plate outside the late lab (there are four sites
    // and three such labs), so the default is never used.
    let (lab, plate) = pick(&candidates, rng).copied().unwrap_or_default();
    let (members, positives) = tubes.remove(&(lab, plate)).unwrap_or_default();
    FailedPlate {
        lab: lab.to_owned(),
        plate: plate.to_owned(),
        negative_control: format!("NC-{plate}"),
        ct_orf1ab: 31.5,
        positive_tubes: positives,
        tubes: members.into_iter().map(str::to_owned).collect(),
    }
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

/// Appends each plate's negative and positive control, reported with the plate's last
/// sample, in the order the plates first appear.
fn add_controls(
    results: &mut Vec<TubeResult>,
    failed: Option<&FailedPlate>,
    rng: &mut Xoshiro256PlusPlus,
) {
    let mut plates: Vec<(String, String, Millis)> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for r in results.iter() {
        let key = (r.lab.clone(), r.plate.clone());
        if let Some(&i) = index.get(&key) {
            plates[i].2 = plates[i].2.max(r.reported_at);
        } else {
            index.insert(key.clone(), plates.len());
            plates.push((key.0, key.1, r.reported_at));
        }
    }
    for (lab, plate, reported) in plates {
        let fails = failed.is_some_and(|f| f.lab == lab && f.plate == plate);
        let control = |label: &str, well: &str, kind, orf: String, n: String, ic| TubeResult {
            tube: format!("{label}-{plate}"),
            result: String::new(),
            ct_orf1ab: orf,
            ct_n: n,
            reported_at: reported,
            lab: lab.clone(),
            plate: plate.clone(),
            well: well.to_owned(),
            sample_type: kind,
            ct_ic: ic,
            received_at: None,
        };
        let negative_orf = if fails {
            FAILED_CONTROL_CT.to_owned()
        } else {
            String::new()
        };
        let ic = ct_text(2_500 + below(rng, 501));
        results.push(control(
            "NC",
            "G12",
            "negative_control",
            negative_orf,
            String::new(),
            ic,
        ));
        let (orf, n) = (
            ct_text(2_950 + below(rng, 100)),
            ct_text(2_950 + below(rng, 100)),
        );
        let ic = ct_text(2_500 + below(rng, 501));
        results.push(control("PC", "H12", "positive_control", orf, n, ic));
    }
}

/// The register: every collected person but one, plus people who got no tube.
fn population(
    round: &Round,
    discordant_members: &[String],
    persons: u64,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<(Population, UnregisteredPerson, Vec<Vec<String>>)> {
    let site_number = |site: &str| site.get(1..).and_then(|s| s.parse::<u64>().ok());
    let sites = round
        .collections
        .iter()
        .filter_map(|c| site_number(&c.site))
        .max()
        .unwrap_or(0)
        + 1;
    let districts = (sites / 10).clamp(4, 8).min(sites);
    let area = |site: u64| {
        let district = site * districts / sites;
        let first = (district * sites).div_ceil(districts);
        let name = format!("D{:02}", district + 1);
        let community = format!("{name}-C{:02}", site - first + 1);
        (name, community)
    };

    let start = below(rng, count(round.collections.len()).max(1));
    let unregistered = (0..round.collections.len())
        .map(|k| (usize::try_from(start).unwrap_or(0) + k) % round.collections.len())
        .map(|i| &round.collections[i])
        .find(|c| !round.infected.contains(&c.person) && !discordant_members.contains(&c.person))
        .ok_or_else(|| {
            Error::Usage(
                "--incidents needs an uninfected person to leave out of the register; lower --prevalence"
                    .to_owned(),
            )
        })?;

    let mut key_groups: BTreeMap<String, u64> = BTreeMap::new();
    let mut group = |rng: &mut Xoshiro256PlusPlus| {
        let u = unit(rng);
        let g = if u < 0.01 {
            "cold_chain"
        } else if u < 0.06 {
            "school"
        } else {
            return String::new();
        };
        *key_groups.entry(g.to_owned()).or_default() += 1;
        g.to_owned()
    };
    let mut register = Vec::new();
    for c in &round.collections {
        if c.person == unregistered.person {
            continue;
        }
        let (district, community) = area(site_number(&c.site).unwrap_or(0));
        register.push(vec![c.person.clone(), district, community, group(rng)]);
    }
    let untested = persons.div_ceil(200);
    let mut untested_persons = Vec::new();
    for index in persons..persons + untested {
        let person = person_id(index);
        let (district, community) = area(below(rng, sites));
        register.push(vec![person.clone(), district, community, group(rng)]);
        untested_persons.push(person);
    }
    let population = Population {
        registered: count(register.len()),
        untested,
        untested_persons,
        districts,
        communities: sites,
        key_groups,
    };
    let unregistered = UnregisteredPerson {
        person: unregistered.person.clone(),
        tube: unregistered.tube.clone(),
        site: unregistered.site.clone(),
    };
    Ok((population, unregistered, register))
}

/// A random element of `items`.
fn pick<'a, T>(items: &'a [T], rng: &mut Xoshiro256PlusPlus) -> Option<&'a T> {
    let n = u64::try_from(items.len()).ok().filter(|&n| n > 0)?;
    items.get(usize::try_from(below(rng, n)).ok()?)
}

/// A whole number of seconds between `lo` and `hi` hours, in milliseconds.
fn hours_and_seconds(rng: &mut Xoshiro256PlusPlus, lo: u64, hi: u64) -> Millis {
    let secs = lo * 3_600 + below(rng, (hi - lo) * 3_600 + 1);
    signed(secs) * SECOND_MS
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A Ct in hundredths as the generator writes it, two decimals.
fn ct_text(hundredths: u64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// A Ct in hundredths as a number for the JSON.
// Cts are below 100.00, far inside f64's exact integers.
#[allow(clippy::cast_precision_loss)]
fn ct_value(hundredths: u64) -> f64 {
    hundredths as f64 / 100.0
}

// Turnarounds are a few days of milliseconds, far inside f64's exact integers.
#[allow(clippy::cast_precision_loss)]
fn hours_value(ms: Millis) -> f64 {
    (ms as f64 / HOUR_MS as f64 * 100.0).round() / 100.0
}

/// Well `k` of a plate filled column by column: A01, B01, …, H01, A02, …
fn well_name(k: u64) -> String {
    let row = char::from(b'A' + u8::try_from(k % 8).unwrap_or(0));
    format!("{row}{:02}", k / 8 + 1)
}

fn read_csv(path: &Path, columns: &[&str]) -> Result<Vec<Vec<String>>> {
    let bad = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    let mut reader = csv::Reader::from_path(path).map_err(bad)?;
    let header = reader.headers().map_err(bad)?.clone();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h == *c)
                .ok_or_else(|| Error::input(path, format!("no {c} column")))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        rows.push(
            at.iter()
                .map(|&i| record.get(i).unwrap_or_default().to_owned())
                .collect(),
        );
    }
    Ok(rows)
}

fn read_time(path: &Path, text: &str) -> Result<Millis> {
    time::parse(text.as_bytes(), Offset::CHINA)
        .map_err(|e| Error::input(path, format!("time {text:?}: {e}")))
}

fn read_collections(path: &Path) -> Result<Vec<Collection>> {
    read_csv(path, &COLLECTION_COLUMNS)?
        .into_iter()
        .map(|r| {
            let [tube, person, mode, capacity, at, site] = <[String; 6]>::try_from(r)
                .map_err(|_| Error::input(path, "a row of the wrong width"))?;
            Ok(Collection {
                collected_at: read_time(path, &at)?,
                tube,
                person,
                mode,
                capacity,
                site,
            })
        })
        .collect()
}

fn read_results(path: &Path) -> Result<Vec<TubeResult>> {
    read_csv(path, &RESULT_COLUMNS[..8])?
        .into_iter()
        .map(|r| {
            let [tube, result, ct_orf1ab, ct_n, at, lab, plate, well] = <[String; 8]>::try_from(r)
                .map_err(|_| Error::input(path, "a row of the wrong width"))?;
            Ok(TubeResult {
                reported_at: read_time(path, &at)?,
                tube,
                result,
                ct_orf1ab,
                ct_n,
                lab,
                plate,
                well,
                sample_type: "sample",
                ct_ic: String::new(),
                received_at: None,
            })
        })
        .collect()
}

fn local(t: Millis) -> String {
    time::format_local(t, Offset::CHINA)
}

fn write_collections(path: &Path, rows: &[Collection]) -> Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            vec![
                c.tube.clone(),
                c.person.clone(),
                c.mode.clone(),
                c.capacity.clone(),
                local(c.collected_at),
                c.site.clone(),
            ]
        })
        .collect();
    write_csv(path, &COLLECTION_COLUMNS, &rows)
}

fn write_results(path: &Path, rows: &[TubeResult]) -> Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.tube.clone(),
                r.result.clone(),
                r.ct_orf1ab.clone(),
                r.ct_n.clone(),
                local(r.reported_at),
                r.lab.clone(),
                r.plate.clone(),
                r.well.clone(),
                r.sample_type.to_owned(),
                r.ct_ic.clone(),
                r.received_at.map(local).unwrap_or_default(),
            ]
        })
        .collect();
    write_csv(path, &RESULT_COLUMNS, &rows)
}

fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let bad = |e: csv::Error| Error::io(path, std::io::Error::other(e));
    let mut w = csv::Writer::from_path(path).map_err(bad)?;
    w.write_record(header).map_err(bad)?;
    for row in rows {
        w.write_record(row).map_err(bad)?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    const FILES: [&str; 8] = [
        "collections.csv",
        "results.csv",
        "retest_collections.csv",
        "retest_results.csv",
        "truth.csv",
        "population.csv",
        "incidents.json",
        "summary.json",
    ];

    fn cfg(persons: u64, seed: u64) -> GenConfig {
        GenConfig {
            persons,
            prevalence: 0.002,
            seed,
            ..GenConfig::default()
        }
    }

    fn staged(c: &GenConfig) -> (tempfile::TempDir, Incidents) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, incidents) = generate(c, dir.path(), None).expect("generate");
        (dir, incidents)
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).expect("read")
    }

    /// The round as written, with every result row's columns.
    fn load(dir: &Path) -> (Round, Vec<Vec<String>>, Vec<Vec<String>>) {
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

    fn ms(text: &str) -> Millis {
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
    fn exactly_one_plate_fails_and_it_holds_no_positive_tube() {
        let (dir, incidents) = staged(&cfg(20_000, 3));
        let (_, res, rt) = load(dir.path());
        let f = &incidents.failed_plate;
        let mut controls: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        let mut failing = Vec::new();
        for row in res.iter().chain(&rt) {
            let key = (row[5].as_str(), row[6].as_str());
            match row[8].as_str() {
                "sample" => {
                    controls.entry(key).or_default();
                }
                "negative_control" => {
                    controls.entry(key).or_default().push("nc");
                    assert_eq!(row[7], "G12");
                    if !row[2].is_empty() || !row[3].is_empty() {
                        failing.push(key);
                    }
                }
                "positive_control" => {
                    controls.entry(key).or_default().push("pc");
                    assert_eq!(row[7], "H12");
                    for ct in [&row[2], &row[3]] {
                        let v: f64 = ct.parse().expect("a positive control amplifies");
                        assert!((29.5..30.5).contains(&v), "{row:?}");
                    }
                }
                other => panic!("sample_type {other}"),
            }
        }
        for (plate, c) in &controls {
            assert_eq!(c, &["nc", "pc"], "{plate:?}");
        }
        assert_eq!(failing, [(f.lab.as_str(), f.plate.as_str())]);
        assert_ne!(f.lab, LATE_LAB);
        let on_plate: Vec<&Vec<String>> = res
            .iter()
            .filter(|r| r[8] == "sample" && r[5] == f.lab && r[6] == f.plate)
            .collect();
        let tubes: Vec<&str> = on_plate.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(tubes, f.tubes);
        assert_eq!(count(tubes.len()), PLATE_SAMPLES);
        assert!(on_plate.iter().all(|r| r[2].is_empty()), "no positive tube");
        assert_eq!(f.positive_tubes, 0);
    }

    #[test]
    fn the_unregistered_person_is_collected_but_not_registered() {
        let (dir, incidents) = staged(&cfg(10_000, 7));
        let (round, _, _) = load(dir.path());
        let register =
            read_csv(&dir.path().join("population.csv"), &POPULATION_COLUMNS).expect("population");
        let registered: HashSet<&str> = register.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(registered.len(), register.len(), "one row a person");
        let u = &incidents.unregistered_person;
        assert!(
            round
                .collections
                .iter()
                .any(|c| c.person == u.person && c.tube == u.tube && c.site == u.site)
        );
        assert!(!registered.contains(u.person.as_str()));
        assert!(!round.infected.contains(&u.person));
        for c in round.collections.iter().filter(|c| c.person != u.person) {
            assert!(registered.contains(c.person.as_str()), "{}", c.person);
        }
        // 0.5 % registered without a tube, named like the others.
        let p = &incidents.population;
        assert_eq!(p.untested, 50);
        assert_eq!(count(register.len()), 10_000 - 1 + p.untested);
        for id in &p.untested_persons {
            assert!(registered.contains(id.as_str()));
            assert!(id.len() == 18 && id.starts_with("31"), "{id}");
            assert!(!round.collections.iter().any(|c| &c.person == id));
        }
        // Districts and communities follow the sites; groups are few and known.
        assert_eq!((p.districts, p.communities), (4, 4));
        for row in &register {
            assert!(row[1].starts_with('D') && row[2].starts_with(&format!("{}-C", row[1])));
            assert!(
                ["", "cold_chain", "school"].contains(&row[3].as_str()),
                "{row:?}"
            );
        }
        assert!(p.key_groups.values().all(|&n| n > 0));
    }

    #[test]
    fn the_late_lab_misses_the_deadline_for_every_tube_and_no_other_lab_does() {
        let (dir, incidents) = staged(&cfg(20_000, 3));
        let (round, res, rt) = load(dir.path());
        let mut last: HashMap<&str, Millis> = HashMap::new();
        let mut first: HashMap<&str, Millis> = HashMap::new();
        for c in round.collections.iter().chain(&round.retest_collections) {
            let l = last.entry(&c.tube).or_insert(c.collected_at);
            *l = (*l).max(c.collected_at);
            let f = first.entry(&c.tube).or_insert(c.collected_at);
            *f = (*f).min(c.collected_at);
        }
        let deadline = signed(DEADLINE_HOURS) * HOUR_MS;
        let (mut late, mut late_retests) = (0, 0);
        for (row, retest) in res
            .iter()
            .map(|r| (r, false))
            .chain(rt.iter().map(|r| (r, true)))
        {
            if row[8] != "sample" {
                continue;
            }
            let tube = row[0].as_str();
            let reported = ms(&row[4]);
            let received = ms(&row[10]);
            assert!(last[tube] <= received && received <= reported, "{row:?}");
            let ic: f64 = row[9].parse().expect("ct_ic");
            assert!((25.0..=30.0).contains(&ic), "{row:?}");
            if row[5] == LATE_LAB {
                // Late even counted from the tube's first swab.
                assert!(reported - first[tube] > deadline, "{row:?}");
                if retest {
                    late_retests += 1;
                } else {
                    late += 1;
                }
            } else {
                assert!(reported - first[tube] < deadline, "{row:?}");
            }
        }
        let l = &incidents.late_lab;
        assert_eq!((l.tubes, l.retest_tubes), (late, late_retests));
        assert!(late > 0 && late_retests > 0, "{late} {late_retests}");
        assert!(l.min_turnaround_hours >= 26.0 && l.max_turnaround_hours <= 30.0);
        // A retest is still swabbed after its pool was reported.
        let pool_of: HashMap<&str, &str> = round
            .collections
            .iter()
            .map(|c| (c.person.as_str(), c.tube.as_str()))
            .collect();
        let reported: HashMap<&str, Millis> =
            res.iter().map(|r| (r[0].as_str(), ms(&r[4]))).collect();
        for c in &round.retest_collections {
            assert!(
                c.collected_at > reported[pool_of[c.person.as_str()]],
                "{}",
                c.tube
            );
        }
    }

    #[test]
    fn the_discordant_pool_is_positive_with_nobody_infected_and_its_retests_are_negative() {
        let (dir, incidents) = staged(&cfg(10_000, 9));
        let (round, res, rt) = load(dir.path());
        let d = &incidents.discordant_pool;
        let pool = res
            .iter()
            .find(|r| r[0] == d.tube)
            .expect("the pool's result");
        assert_eq!(pool[2].parse::<f64>().ok(), Some(d.ct_orf1ab));
        assert_eq!(pool[3].parse::<f64>().ok(), Some(d.ct_n));
        assert!((35.0..36.0).contains(&d.ct_orf1ab) && (36.0..37.0).contains(&d.ct_n));
        assert!(pool[1] == "positive" || (pool[1].is_empty() && pool[5] == "L3"));
        let members: Vec<&str> = round
            .collections
            .iter()
            .filter(|c| c.tube == d.tube)
            .map(|c| c.person.as_str())
            .collect();
        assert_eq!(members, d.members);
        assert!(members.iter().all(|p| !round.infected.contains(*p)));
        for (person, tube) in d.members.iter().zip(&d.retest_tubes) {
            assert!(
                round
                    .retest_collections
                    .iter()
                    .any(|c| &c.tube == tube && &c.person == person && c.mode == "single")
            );
            let result = rt.iter().find(|r| &r[0] == tube).expect("a retest result");
            assert_eq!(result[1], "negative");
        }
        let summary: serde_json::Value =
            serde_json::from_str(&read(dir.path(), "summary.json")).expect("json");
        assert_eq!(
            summary["retest_tubes"].as_u64(),
            Some(count(round.retest_collections.len()))
        );
        assert_eq!(summary["incidents"], true);
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
    }

    #[test]
    fn a_plain_round_has_no_incidents_flag() {
        let s = serde_json::to_value(GenSummary::default()).expect("json");
        assert!(s.get("incidents").is_none());
    }
}
