//! The late lab: every report of [`LATE_LAB`] moved past the deadline, its pools'
//! retests with them.

use std::collections::HashMap;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::round::Round;
use super::values::{hours_and_seconds, hours_value};
use super::{DEADLINE_HOURS, LATE_LAB};
use crate::time::Millis;

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

/// Moves every report of [`LATE_LAB`] to 26–30 h after the tube's last swab, and the
/// retests its positive pools called for by as much as their pool's report moved.
pub(super) fn late_lab(round: &mut Round, rng: &mut Xoshiro256PlusPlus) -> LateLab {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::incidents::HOUR_MS;
    use crate::synth::incidents::tests::{cfg, load, ms, staged};
    use crate::synth::incidents::values::signed;

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
}
