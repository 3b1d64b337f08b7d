//! The discordant pool: a negative pool reported positive at a high Ct, and its
//! members' negative single retests.

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::LATE_LAB;
use super::round::{Collection, Round, TubeResult};
use super::values::{ct_text, ct_value, hours_and_seconds, pick, well_name};
use crate::synth::chunk::below;
use crate::{Error, Result};

/// The pool reported positive though nobody in it is infected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscordantPool {
    /// The pool tube.
    pub tube: String,
    /// Its lab.
    pub lab: String,
    /// Its plate.
    pub plate: String,
    /// Its reported `ORF1ab` Ct.
    pub ct_orf1ab: f64,
    /// Its reported N Ct.
    pub ct_n: f64,
    /// Its members, in collection order.
    pub members: Vec<String>,
    /// Their single retest tubes, in the same order; all negative.
    pub retest_tubes: Vec<String>,
}

/// Makes a negative pool outside the late lab positive at a high Ct and gives its
/// members negative single retests on a plate of their own.
pub(super) fn discordant_pool(
    round: &mut Round,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<DiscordantPool> {
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
        "positive".clone_into(&mut pool.result);
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

#[cfg(test)]
mod tests {
    use crate::synth::incidents::tests::{cfg, load, read, staged};
    use crate::synth::incidents::values::count;

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
}
