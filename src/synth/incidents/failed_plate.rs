//! The failed plate: a pooled-stage plate whose negative control amplifies, and the
//! controls of every plate, which is where that failure shows.

use std::collections::HashMap;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::LATE_LAB;
use super::discordant_pool::DiscordantPool;
use super::round::{Round, TubeResult};
use super::values::{count, ct_text, pick};
use crate::synth::PLATE_SAMPLES;
use crate::synth::chunk::below;
use crate::time::Millis;

/// What the failed plate's negative control reads on `ORF1ab`.
const FAILED_CONTROL_CT: &str = "31.50";
/// The failed plate of the pooled stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedPlate {
    /// Its lab.
    pub lab: String,
    /// Its plate id.
    pub plate: String,
    /// The label of the control that failed it.
    pub negative_control: String,
    /// The control's `ORF1ab` Ct.
    pub ct_orf1ab: f64,
    /// Positive tubes on it (0 unless no plate was free of them).
    pub positive_tubes: u64,
    /// Its sample tubes, in well order: every one must be rerun.
    pub tubes: Vec<String>,
}

/// Picks the plate whose negative control will amplify: a pooled-stage plate outside
/// the late lab and the discordant pool's plate, with as few positive tubes as any
/// (none, in a city of ordinary prevalence), full if one such is.
pub(super) fn failed_plate(
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

/// Appends each plate's negative and positive control, reported with the plate's last
/// sample, in the order the plates first appear.
pub(super) fn add_controls(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::incidents::tests::{cfg, load, staged};

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
}
