//! The chain of custody: the pooled stage's tubes packed in boxes, the labs' receipt
//! scans, a box lost on the way and a tube tested past the specimen limit.
//!
//! Boxes are packed per site and lab in collection order, at most [`BOX_TUBES`] tubes
//! whose last swabs lie within [`BOX_SPAN_MINUTES`]; a box is sealed up to five
//! minutes after its last swab and scanned at its lab 30 to 90 minutes later, or when
//! its first tube was received if that was earlier (the results' `received_at`, at
//! least 36 minutes after a tube's last swab, so a box is never received before it
//! was sealed nor after one of its tubes). Retest tubes travel unboxed.
//!
//! - **Lost box.** One box of a lab other than the late one, holding no infected
//!   person, no tube of the failed plate and not the discordant pool, is never
//!   scanned and its tubes' results are taken out: they never reached the lab.
//! - **Past the limit.** One negative pool of the late lab is reported 50 to 54 hours
//!   after its last swab, past the [`SPECIMEN_LIMIT_HOURS`] limit: its result does not
//!   count and its persons need a resample.
//!
//! Files: `collections.csv` gains a `box` column, `boxes.csv` (`box`, `tube`, `site`,
//! `sealed_at`) and `receipts.csv` (`box`, `tube`, `received_at`, `lab`) are new.

use std::collections::{HashMap, HashSet};

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::LATE_LAB;
use super::round::Round;
use super::values::{count, hours_and_seconds, hours_value, pick};
use crate::synth::chunk::below;
use crate::time::{self, Millis, Offset};

/// Tubes a box holds at most.
pub(crate) const BOX_TUBES: usize = 40;
/// The longest span between the last swabs of a box's tubes, in minutes.
pub(crate) const BOX_SPAN_MINUTES: i64 = 20;
/// The specimen limit the staged tube misses, in hours (`pooltrack custody`'s default).
pub(crate) const SPECIMEN_LIMIT_HOURS: u64 = 48;
/// Hours after which a tube not received is lost (`pooltrack custody`'s default).
pub(crate) const RECEIPT_HOURS: u64 = 12;

const MINUTE_MS: i64 = 60_000;

/// The custody part of `incidents.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Custody {
    /// The limits the incidents are staged against.
    pub receipt_hours: u64,
    /// Hours from the first swab to the test past which a result does not count.
    pub specimen_limit_hours: u64,
    /// Boxes packed.
    pub boxes: u64,
    /// Tubes in them: every tube of the pooled stage.
    pub boxed_tubes: u64,
    /// Boxes scanned at a lab (all but the lost one).
    pub received_boxes: u64,
    /// The box that never arrived.
    pub lost_box: LostBox,
    /// The tube tested past the specimen limit.
    pub past_limit: PastLimit,
}

/// The box that never arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostBox {
    /// Its barcode.
    #[serde(rename = "box")]
    pub box_id: String,
    /// The site that sealed it.
    pub site: String,
    /// The lab it was sent to.
    pub lab: String,
    /// When it was sealed.
    pub sealed_at: String,
    /// Its tubes, in collection order; none has a result.
    pub tubes: Vec<String>,
    /// Persons swabbed into them.
    pub persons: u64,
}

/// The tube tested past the specimen limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PastLimit {
    /// The tube (a negative pool of the late lab).
    pub tube: String,
    /// Its box.
    #[serde(rename = "box")]
    pub box_id: String,
    /// Its lab.
    pub lab: String,
    /// Persons in it, who need a resample.
    pub persons: u64,
    /// Its first swab.
    pub first_swab: String,
    /// Its report.
    pub reported_at: String,
    /// Hours from the first swab to the report.
    pub hours: f64,
}

/// The staged custody and the rows of the files it adds.
pub(super) struct Staged {
    pub(super) incident: Custody,
    /// `boxes.csv`: `box`, `tube`, `site`, `sealed_at`.
    pub(super) boxes: Vec<Vec<String>>,
    /// `receipts.csv`: `box`, `tube`, `received_at`, `lab`.
    pub(super) receipts: Vec<Vec<String>>,
    /// The box of each row of `collections.csv`.
    pub(super) box_of_row: Vec<String>,
}

struct Tube<'a> {
    name: &'a str,
    site: &'a str,
    first: Millis,
    last: Millis,
    persons: u64,
    infected: bool,
}

struct Packed {
    id: String,
    site: String,
    lab: String,
    tubes: Vec<usize>,
    lowest: Millis,
    highest: Millis,
}

fn local(t: Millis) -> String {
    time::format_local(t, Offset::CHINA)
}

/// Packs the boxes, loses one and keeps one tube past its limit. `avoid`: tubes
/// another incident stages (the failed plate's, the discordant pool).
pub(super) fn custody(
    round: &mut Round,
    avoid: &HashSet<&str>,
    rng: &mut Xoshiro256PlusPlus,
) -> Staged {
    let mut order: Vec<Tube<'_>> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for c in &round.collections {
        let i = *at.entry(&c.tube).or_insert_with(|| {
            order.push(Tube {
                name: &c.tube,
                site: &c.site,
                first: c.collected_at,
                last: c.collected_at,
                persons: 0,
                infected: false,
            });
            order.len() - 1
        });
        let t = &mut order[i];
        t.first = t.first.min(c.collected_at);
        t.last = t.last.max(c.collected_at);
        t.persons += 1;
        t.infected |= round.infected.contains(&c.person);
    }
    let mut lab: HashMap<&str, &str> = HashMap::new();
    let mut received: HashMap<&str, Millis> = HashMap::new();
    for r in round.results.iter().filter(|r| r.sample_type == "sample") {
        lab.insert(&r.tube, &r.lab);
        if let Some(t) = r.received_at {
            let e = received.entry(&r.tube).or_insert(t);
            *e = (*e).min(t);
        }
    }

    // Pack per site and lab, in collection order.
    let span = BOX_SPAN_MINUTES * MINUTE_MS;
    let mut packed: Vec<Packed> = Vec::new();
    let mut open: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, t) in order.iter().enumerate() {
        let l = lab.get(t.name).copied().unwrap_or_default();
        let key = (t.site, l);
        let fits = open.get(&key).is_some_and(|&b| {
            let p = &packed[b];
            p.tubes.len() < BOX_TUBES && p.highest.max(t.last) - p.lowest.min(t.last) <= span
        });
        if !fits {
            packed.push(Packed {
                id: format!("BX{:06}", packed.len() + 1),
                site: t.site.to_owned(),
                lab: l.to_owned(),
                tubes: Vec::new(),
                lowest: t.last,
                highest: t.last,
            });
            open.insert(key, packed.len() - 1);
        }
        let b = open[&key];
        let p = &mut packed[b];
        p.tubes.push(i);
        p.lowest = p.lowest.min(t.last);
        p.highest = p.highest.max(t.last);
    }
    let sealed: Vec<Millis> = packed
        .iter()
        .map(|p| p.highest + i64::try_from(below(rng, 301)).unwrap_or(0) * 1_000)
        .collect();

    // The lost box.
    let candidates: Vec<usize> = (0..packed.len())
        .filter(|&b| {
            let p = &packed[b];
            p.lab != LATE_LAB
                && !p.lab.is_empty()
                && p.tubes
                    .iter()
                    .all(|&i| !order[i].infected && !avoid.contains(order[i].name))
        })
        .collect();
    let lost = pick(&candidates, rng).copied();
    let lost_tubes: HashSet<&str> = lost
        .map(|b| packed[b].tubes.iter().map(|&i| order[i].name).collect())
        .unwrap_or_default();

    // The tube past its limit: a negative pool of the late lab.
    let negative: HashSet<&str> = round
        .results
        .iter()
        .filter(|r| r.sample_type == "sample" && r.result == "negative")
        .map(|r| r.tube.as_str())
        .collect();
    let late: Vec<usize> = (0..order.len())
        .filter(|&i| {
            let t = &order[i];
            t.name.starts_with("PL")
                && lab.get(t.name) == Some(&LATE_LAB)
                && negative.contains(t.name)
                && !t.infected
                && !avoid.contains(t.name)
                && !lost_tubes.contains(t.name)
        })
        .collect();
    let past = pick(&late, rng).copied();
    let past_reported = past.map(|i| order[i].last + hours_and_seconds(rng, 50, 54));

    let tubes = &order;
    let box_of: HashMap<&str, usize> = packed
        .iter()
        .enumerate()
        .flat_map(|(b, p)| p.tubes.iter().map(move |&i| (tubes[i].name, b)))
        .collect();
    let mut boxes = Vec::new();
    let mut receipts: Vec<(Millis, Vec<String>)> = Vec::new();
    for (b, p) in packed.iter().enumerate() {
        for &i in &p.tubes {
            boxes.push(vec![
                p.id.clone(),
                order[i].name.to_owned(),
                p.site.clone(),
                local(sealed[b]),
            ]);
        }
        if Some(b) == lost {
            continue;
        }
        let first = p
            .tubes
            .iter()
            .filter_map(|&i| received.get(order[i].name).copied())
            .min();
        // A courier's trip of half an hour to an hour and a half, but never after a
        // tube of the box was received at the lab.
        let trip = sealed[b] + (1_800 + i64::try_from(below(rng, 3_601)).unwrap_or(0)) * 1_000;
        if let Some(r) = first.map(|f| f.min(trip)) {
            receipts.push((
                r,
                vec![p.id.clone(), String::new(), local(r), p.lab.clone()],
            ));
        }
    }
    receipts.sort_by_key(|(r, _)| *r);
    let received_boxes = count(receipts.len());
    let box_of_row: Vec<String> = round
        .collections
        .iter()
        .map(|c| {
            box_of
                .get(c.tube.as_str())
                .map(|&b| packed[b].id.clone())
                .unwrap_or_default()
        })
        .collect();

    let lost_box = match lost {
        Some(b) => {
            let p = &packed[b];
            LostBox {
                box_id: p.id.clone(),
                site: p.site.clone(),
                lab: p.lab.clone(),
                sealed_at: local(sealed[b]),
                tubes: p.tubes.iter().map(|&i| order[i].name.to_owned()).collect(),
                persons: p.tubes.iter().map(|&i| order[i].persons).sum(),
            }
        }
        None => LostBox {
            box_id: String::new(),
            site: String::new(),
            lab: String::new(),
            sealed_at: String::new(),
            tubes: Vec::new(),
            persons: 0,
        },
    };
    let past_limit = match (past, past_reported) {
        (Some(i), Some(reported)) => PastLimit {
            tube: order[i].name.to_owned(),
            box_id: box_of
                .get(order[i].name)
                .map(|&b| packed[b].id.clone())
                .unwrap_or_default(),
            lab: LATE_LAB.to_owned(),
            persons: order[i].persons,
            first_swab: local(order[i].first),
            reported_at: local(reported),
            hours: hours_value(reported - order[i].first),
        },
        _ => PastLimit {
            tube: String::new(),
            box_id: String::new(),
            lab: String::new(),
            persons: 0,
            first_swab: String::new(),
            reported_at: String::new(),
            hours: 0.0,
        },
    };
    let incident = Custody {
        receipt_hours: RECEIPT_HOURS,
        specimen_limit_hours: SPECIMEN_LIMIT_HOURS,
        boxes: count(packed.len()),
        boxed_tubes: count(order.len()),
        received_boxes,
        lost_box,
        past_limit,
    };
    let past_tube = incident.past_limit.tube.clone();
    let lost_names: HashSet<String> = lost_tubes.iter().map(|t| (*t).to_owned()).collect();
    round
        .results
        .retain(|r| !(r.sample_type == "sample" && lost_names.contains(&r.tube)));
    if let Some(reported) = past_reported {
        for r in round.results.iter_mut().filter(|r| r.tube == past_tube) {
            r.reported_at = reported;
        }
    }
    Staged {
        incident,
        boxes,
        receipts: receipts.into_iter().map(|(_, r)| r).collect(),
        box_of_row,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::incidents::tests::{cfg, load, ms, read, staged};

    #[test]
    fn the_lost_box_has_no_results_and_no_receipt_and_the_late_tube_is_past_its_limit() {
        let (dir, incidents) = staged(&cfg(20_000, 3));
        let c = &incidents.custody;
        let (round, res, _) = load(dir.path());
        assert!(!c.lost_box.tubes.is_empty());
        assert_ne!(c.lost_box.lab, LATE_LAB);
        let lost: HashSet<&str> = c.lost_box.tubes.iter().map(String::as_str).collect();
        assert!(res.iter().all(|r| !lost.contains(r[0].as_str())));
        let receipts = read(dir.path(), "receipts.csv");
        assert!(!receipts.contains(&c.lost_box.box_id));
        assert_eq!(
            count(receipts.lines().count() - 1),
            c.boxes - 1,
            "every other box is scanned once"
        );
        // Every tube of the pooled stage is in exactly one box.
        let boxes = read(dir.path(), "boxes.csv");
        let tubes: HashSet<&str> = round.collections.iter().map(|c| c.tube.as_str()).collect();
        assert_eq!(count(boxes.lines().count() - 1), count(tubes.len()));
        assert_eq!(c.boxed_tubes, count(tubes.len()));
        // The past-limit tube: the late lab's, reported over the limit after its first swab.
        let p = &c.past_limit;
        let row = res.iter().find(|r| r[0] == p.tube).expect("its result");
        assert_eq!(row[5], LATE_LAB);
        let first = round
            .collections
            .iter()
            .filter(|x| x.tube == p.tube)
            .map(|x| x.collected_at)
            .min()
            .expect("collected");
        let limit = i64::try_from(SPECIMEN_LIMIT_HOURS).expect("hours") * 3_600_000;
        assert!(ms(&row[4]) - first > limit, "{row:?}");
        // No other result is past the limit.
        let firsts: HashMap<&str, Millis> =
            round.collections.iter().fold(HashMap::new(), |mut m, x| {
                let e = m.entry(x.tube.as_str()).or_insert(x.collected_at);
                *e = (*e).min(x.collected_at);
                m
            });
        let over: Vec<&str> = res
            .iter()
            .filter(|r| r[8] == "sample")
            .filter(|r| ms(&r[4]) - firsts[r[0].as_str()] > limit)
            .map(|r| r[0].as_str())
            .collect();
        assert_eq!(over, [p.tube.as_str()]);
        // The collections carry each tube's box.
        let header = read(dir.path(), "collections.csv");
        assert!(header.starts_with("tube,person,mode,capacity,collected_at,site,box\n"));
    }

    #[test]
    fn every_box_is_received_after_it_was_sealed() {
        let (dir, _) = staged(&cfg(10_000, 7));
        let sealed: HashMap<String, Millis> = read(dir.path(), "boxes.csv")
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Some((f.first()?.to_string(), ms(f.get(3)?)))
            })
            .collect();
        for l in read(dir.path(), "receipts.csv").lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            assert!(ms(f[2]) >= sealed[f[0]], "{l}");
        }
    }
}
