//! The incidents `pooltrack audit` finds: a lab with too many positives, a lab that
//! reports faster than its instruments can run, and a positive pool recalled late;
//! with them every other recall is brought within the hour, as the rules ask.
//!
//! - **Too many positives.** In lab `positives_lab` (one of `L1`–`L3`),
//!   [`FALSE_POSITIVES_SHARE`] of its pooled-stage pools, at least
//!   [`MIN_FALSE_POSITIVES`], chosen among its negative pools off the failed plate, are
//!   reported positive at a high Ct (`ORF1ab` 34.xx, N 35.xx), as a contaminated
//!   bench would; their members get single retests, all negative, on plates of their
//!   own. Each such pool is also a discordant pool, so the lab's discordant share
//!   stands out too. The staged share roughly triples a lab's pool positivity at
//!   0.1 % prevalence; the audit can see it once two labs share a district (cities of
//!   20,000 persons and more: 8 sites, 4 districts of 2 sites).
//! - **Recalls within the hour.** Every retest is swabbed 5 to 55 minutes after its
//!   pool's report (the plain generator takes 1 to 4 hours), its result and receipt
//!   moved with it, except the members of one true positive pool outside the late
//!   lab (`late_recall`), swabbed 90 to 150 minutes after it.
//! - **Too fast.** Lab `fast_lab` (another of `L1`–`L3`) reports up to
//!   [`BURST_TUBES`] of its negative pools, those swabbed first and off the failed
//!   plate, within [`BURST_MINUTES`] minutes, an hour after the last of them was
//!   swabbed; their `received_at` is drawn again between swab and report.
//!   `testdata/audit_plan.toml` gives each lab instruments for 282 tubes an hour.

use std::collections::{HashMap, HashSet};

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::discordant_pool::DiscordantPool;
use super::failed_plate::{FailedPlate, add_controls};
use super::round::{Collection, Round, TubeResult};
use super::values::{count, ct_text, pick, signed, well_name};
use super::{LATE_LAB, SECOND_MS};
use crate::synth::PLATE_SAMPLES;
use crate::synth::chunk::below;
use crate::time::Millis;

/// Share of the positives lab's pools staged positive.
pub(crate) const FALSE_POSITIVES_SHARE: f64 = 0.05;
/// The fewest pools staged positive.
pub(crate) const MIN_FALSE_POSITIVES: u64 = 25;
/// The most tubes of the fast lab's burst.
pub(crate) const BURST_TUBES: usize = 400;
/// The burst's length, minutes.
pub(crate) const BURST_MINUTES: u64 = 30;
/// A retest's swab after its pool's report, minutes: the one-hour rule kept...
const RECALL_MINUTES: (u64, u64) = (5, 55);
/// ...and broken, for the late recall.
const LATE_RECALL_MINUTES: (u64, u64) = (90, 150);

/// The lab that reports too many positives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PositivesLab {
    /// The lab.
    pub lab: String,
    /// Its pooled-stage pools.
    pub pools: u64,
    /// The negative pools reported positive, in file order.
    pub false_positive_pools: Vec<String>,
    /// Their members, who are recalled and retest negative.
    pub members: Vec<String>,
    /// Their retest tubes.
    pub retest_tubes: Vec<String>,
}

/// The lab that reports faster than its instruments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FastLab {
    /// The lab.
    pub lab: String,
    /// Tubes of the burst.
    pub tubes: u64,
    /// Its first report (local time).
    pub first_report: String,
    /// Its last report.
    pub last_report: String,
    /// The burst's length, minutes.
    pub minutes: u64,
}

/// The positive pool whose recall came late.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateRecall {
    /// The pool.
    pub tube: String,
    /// Its lab.
    pub lab: String,
    /// Its report (local time).
    pub reported_at: String,
    /// Its members' first retest swab.
    pub first_retest_at: String,
    /// Minutes between them.
    pub minutes: u64,
}

/// What the audit should find, in `incidents.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabAudit {
    /// Too many positives.
    pub positives_lab: PositivesLab,
    /// Too fast.
    pub fast_lab: FastLab,
    /// The late recall (none when the round has no positive pool to delay).
    pub late_recall: Option<LateRecall>,
    /// Minutes from a pool's report to its other recalls' first swab.
    pub recall_minutes: (u64, u64),
}

fn minutes_and_seconds(rng: &mut Xoshiro256PlusPlus, (lo, hi): (u64, u64)) -> Millis {
    signed(lo * 60 + below(rng, (hi - lo) * 60 + 1)) * SECOND_MS
}

fn local(t: Millis) -> String {
    crate::time::format_local(t, crate::time::Offset::CHINA)
}

/// Stages the three incidents (see the module docs).
pub(super) fn lab_audit(
    round: &mut Round,
    discordant: &DiscordantPool,
    failed: &FailedPlate,
    rng: &mut Xoshiro256PlusPlus,
) -> LabAudit {
    let mut labs = vec!["L1", "L2", "L3"];
    let positives = pick(&labs, rng).copied().unwrap_or("L1");
    labs.retain(|l| *l != positives);
    let fast = pick(&labs, rng).copied().unwrap_or("L2");
    let off_plate: HashSet<&str> = failed.tubes.iter().map(String::as_str).collect();
    let positives_lab = too_many_positives(round, positives, discordant, &off_plate, rng);
    let late_recall = recall_within_the_hour(round, discordant, &positives_lab, &off_plate, rng);
    let fast_lab = too_fast(round, fast, discordant, &off_plate, rng);
    LabAudit {
        positives_lab,
        fast_lab,
        late_recall,
        recall_minutes: RECALL_MINUTES,
    }
}

/// Each pool tube's last swab.
fn last_swabs(round: &Round) -> HashMap<String, Millis> {
    let mut last: HashMap<String, Millis> = HashMap::new();
    for c in &round.collections {
        let t = last.entry(c.tube.clone()).or_insert(c.collected_at);
        *t = (*t).max(c.collected_at);
    }
    last
}

fn is_negative_pool(
    r: &TubeResult,
    lab: &str,
    discordant: &DiscordantPool,
    off: &HashSet<&str>,
) -> bool {
    r.lab == lab
        && r.sample_type == "sample"
        && r.tube.starts_with("PL")
        && r.ct_orf1ab.is_empty()
        && r.tube != discordant.tube
        && !off.contains(r.tube.as_str())
}

fn too_many_positives(
    round: &mut Round,
    lab: &str,
    discordant: &DiscordantPool,
    off: &HashSet<&str>,
    rng: &mut Xoshiro256PlusPlus,
) -> PositivesLab {
    let pools = count(
        round
            .results
            .iter()
            .filter(|r| r.lab == lab && r.sample_type == "sample" && r.tube.starts_with("PL"))
            .count(),
    );
    let mut candidates: Vec<usize> = round
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| is_negative_pool(r, lab, discordant, off))
        .map(|(i, _)| i)
        .collect();
    // Share of a few hundred thousand pools: far inside f64's exact integers.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let wanted = ((pools as f64 * FALSE_POSITIVES_SHARE).ceil() as u64).max(MIN_FALSE_POSITIVES);
    let mut chosen = Vec::new();
    while count(chosen.len()) < wanted && !candidates.is_empty() {
        let k = usize::try_from(below(rng, count(candidates.len()))).unwrap_or(0);
        chosen.push(candidates.swap_remove(k));
    }
    chosen.sort_unstable();
    let next_plate = round
        .results
        .iter()
        .chain(&round.retest_results)
        .filter_map(|r| r.plate.rsplit_once("-P")?.1.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let mut serial = round
        .retest_collections
        .iter()
        .filter_map(|c| c.tube.strip_prefix("RT")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let mut members_of: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for c in &round.collections {
        members_of
            .entry(c.tube.as_str())
            .or_default()
            .push((c.person.clone(), c.site.clone()));
    }
    let mut staged = PositivesLab {
        lab: lab.to_owned(),
        pools,
        false_positive_pools: Vec::new(),
        members: Vec::new(),
        retest_tubes: Vec::new(),
    };
    let (mut new_collections, mut new_results) = (Vec::new(), Vec::new());
    let mut k = 0u64;
    for &row in &chosen {
        let (orf, n) = (3_400 + below(rng, 100), 3_500 + below(rng, 100));
        let pool = &mut round.results[row];
        pool.ct_orf1ab = ct_text(orf);
        pool.ct_n = ct_text(n);
        if !pool.result.is_empty() {
            "positive".clone_into(&mut pool.result);
        }
        let reported = pool.reported_at;
        staged.false_positive_pools.push(pool.tube.clone());
        for (person, site) in members_of
            .get(pool.tube.as_str())
            .cloned()
            .unwrap_or_default()
        {
            let tube = format!("RT{serial:09}");
            serial += 1;
            // Swabbed within the hour; `recall_within_the_hour` draws the time again.
            let at = reported + 30 * 60 * SECOND_MS;
            new_collections.push(Collection {
                tube: tube.clone(),
                person: person.clone(),
                mode: "single".to_owned(),
                capacity: "1".to_owned(),
                collected_at: at,
                site,
            });
            let swab_to_report = signed(2 * 3_600 + below(rng, 4 * 3_600 + 1)) * SECOND_MS;
            let received = at + swab_to_report * signed(200 + below(rng, 401)) / 1_000;
            new_results.push(TubeResult {
                tube: tube.clone(),
                result: "negative".to_owned(),
                ct_orf1ab: String::new(),
                ct_n: String::new(),
                reported_at: at + swab_to_report,
                lab: lab.to_owned(),
                plate: format!("{lab}-P{:06}", next_plate + k / PLATE_SAMPLES),
                well: well_name(k % PLATE_SAMPLES),
                sample_type: "sample",
                ct_ic: ct_text(2_500 + below(rng, 501)),
                received_at: Some(received),
            });
            k += 1;
            staged.members.push(person);
            staged.retest_tubes.push(tube);
        }
    }
    add_controls(&mut new_results, None, rng);
    round.retest_collections.extend(new_collections);
    round.retest_results.extend(new_results);
    staged
}

/// Swabs every retest 5–55 min after its pool's report, one true positive pool's
/// 90–150 min after, and moves each retest's result and receipt with its swab.
fn recall_within_the_hour(
    round: &mut Round,
    discordant: &DiscordantPool,
    positives: &PositivesLab,
    off: &HashSet<&str>,
    rng: &mut Xoshiro256PlusPlus,
) -> Option<LateRecall> {
    let pool_of: HashMap<&str, &str> = round
        .collections
        .iter()
        .map(|c| (c.person.as_str(), c.tube.as_str()))
        .collect();
    let report: HashMap<&str, (Millis, &str)> = round
        .results
        .iter()
        .filter(|r| r.sample_type == "sample")
        .map(|r| (r.tube.as_str(), (r.reported_at, r.lab.as_str())))
        .collect();
    let staged: HashSet<&str> = positives
        .false_positive_pools
        .iter()
        .map(String::as_str)
        .collect();
    // True positive pools outside the late lab, the failed plate and the staged ones.
    let mut candidates: Vec<&str> = round
        .retest_collections
        .iter()
        .filter_map(|c| pool_of.get(c.person.as_str()).copied())
        .filter(|p| {
            *p != discordant.tube
                && !staged.contains(p)
                && !off.contains(p)
                && report.get(p).is_some_and(|(_, lab)| *lab != LATE_LAB)
        })
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let late = pick(&candidates, rng).map(|p| (*p).to_owned());
    let mut first: Option<Millis> = None;
    let mut moved: HashMap<String, Millis> = HashMap::new();
    let mut retimed: Vec<(usize, Millis)> = Vec::new();
    for (i, c) in round.retest_collections.iter().enumerate() {
        let Some(pool) = pool_of.get(c.person.as_str()) else {
            continue;
        };
        let Some(&(reported, _)) = report.get(pool) else {
            continue;
        };
        let is_late = late.as_deref() == Some(*pool);
        let window = if is_late {
            LATE_RECALL_MINUTES
        } else {
            RECALL_MINUTES
        };
        let at = reported + minutes_and_seconds(rng, window);
        if is_late {
            first = Some(first.map_or(at, |f: Millis| f.min(at)));
        }
        moved.insert(c.tube.clone(), at - c.collected_at);
        retimed.push((i, at));
    }
    for (i, at) in retimed {
        round.retest_collections[i].collected_at = at;
    }
    for r in &mut round.retest_results {
        if let Some(&shift) = moved.get(&r.tube) {
            r.reported_at += shift;
            r.received_at = r.received_at.map(|t| t + shift);
        }
    }
    let tube = late?;
    let &(reported, lab) = report.get(tube.as_str())?;
    let first = first?;
    Some(LateRecall {
        lab: lab.to_owned(),
        reported_at: local(reported),
        first_retest_at: local(first),
        minutes: u64::try_from((first - reported) / (60 * SECOND_MS)).unwrap_or(0),
        tube,
    })
}

/// Reports the fast lab's first-swabbed negative pools within [`BURST_MINUTES`].
fn too_fast(
    round: &mut Round,
    lab: &str,
    discordant: &DiscordantPool,
    off: &HashSet<&str>,
    rng: &mut Xoshiro256PlusPlus,
) -> FastLab {
    let last = last_swabs(round);
    let mut candidates: Vec<(Millis, usize)> = round
        .results
        .iter()
        .enumerate()
        .filter(|(_, r)| is_negative_pool(r, lab, discordant, off))
        .filter_map(|(i, r)| last.get(&r.tube).map(|&t| (t, i)))
        .collect();
    candidates.sort_unstable();
    candidates.truncate(BURST_TUBES);
    let start = candidates.iter().map(|&(t, _)| t).max().unwrap_or(0) + 3_600 * SECOND_MS;
    let (mut first, mut last_report) = (Millis::MAX, Millis::MIN);
    for &(swab, i) in &candidates {
        let reported = start + signed(below(rng, BURST_MINUTES * 60)) * SECOND_MS;
        let span = (reported - swab).max(0) / SECOND_MS;
        let r = &mut round.results[i];
        r.reported_at = reported;
        r.received_at = Some(swab + span * signed(200 + below(rng, 401)) / 1_000 * SECOND_MS);
        first = first.min(reported);
        last_report = last_report.max(reported);
    }
    FastLab {
        lab: lab.to_owned(),
        tubes: count(candidates.len()),
        first_report: if candidates.is_empty() {
            String::new()
        } else {
            local(first)
        },
        last_report: if candidates.is_empty() {
            String::new()
        } else {
            local(last_report)
        },
        minutes: BURST_MINUTES,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::synth::incidents::tests::{cfg, load, ms, staged};

    #[test]
    fn the_audit_incidents_are_where_incidents_json_says() {
        let (dir, incidents) = staged(&cfg(20_000, 4));
        let (round, res, rt) = load(dir.path());
        let a = &incidents.lab_audit;
        let p = &a.positives_lab;
        assert_ne!(p.lab, a.fast_lab.lab);
        assert!(p.lab != LATE_LAB && a.fast_lab.lab != LATE_LAB);
        assert!(count(p.false_positive_pools.len()) >= MIN_FALSE_POSITIVES);
        // Nobody infected in a false-positive pool; each member retested negative.
        let tube_of: HashMap<&str, &str> = round
            .collections
            .iter()
            .map(|c| (c.person.as_str(), c.tube.as_str()))
            .collect();
        for person in &p.members {
            assert!(!round.infected.contains(person));
            assert!(
                p.false_positive_pools
                    .iter()
                    .any(|t| t == tube_of[person.as_str()])
            );
        }
        let result_of: HashMap<&str, &Vec<String>> =
            res.iter().chain(&rt).map(|r| (r[0].as_str(), r)).collect();
        for tube in &p.retest_tubes {
            assert_eq!(result_of[tube.as_str()][1], "negative");
        }
        for tube in &p.false_positive_pools {
            let r = result_of[tube.as_str()];
            assert_eq!(r[5], p.lab);
            assert!(r[2].starts_with("34."), "{r:?}");
        }
        // Every recall within the hour but the late one's.
        let reported: HashMap<&str, Millis> =
            res.iter().map(|r| (r[0].as_str(), ms(&r[4]))).collect();
        let late = a.late_recall.as_ref().expect("a late recall");
        let mut late_first = Millis::MAX;
        for c in &round.retest_collections {
            let pool = tube_of[c.person.as_str()];
            let minutes = (c.collected_at - reported[pool]) / 60_000;
            if pool == late.tube {
                assert!((90..=150).contains(&minutes), "{minutes}");
                late_first = late_first.min(c.collected_at);
            } else {
                assert!((5..=55).contains(&minutes), "{} {minutes}", c.tube);
            }
        }
        assert_eq!(
            u64::try_from((late_first - reported[late.tube.as_str()]) / 60_000).ok(),
            Some(late.minutes)
        );
        // The burst: its tubes within the half hour, received between swab and report.
        let (first, last) = (ms(&a.fast_lab.first_report), ms(&a.fast_lab.last_report));
        assert!(last - first <= signed(BURST_MINUTES) * 60_000);
        let burst: Vec<&Vec<String>> = res
            .iter()
            .filter(|r| r[5] == a.fast_lab.lab && (first..=last).contains(&ms(&r[4])))
            .collect();
        assert!(count(burst.len()) >= a.fast_lab.tubes && a.fast_lab.tubes > 282);
        for r in burst {
            assert!(ms(&r[10]) <= ms(&r[4]), "{r:?}");
        }
    }
}
