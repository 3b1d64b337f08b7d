//! The checks other than positivity: discordant pools, impossible report times, pools
//! over 20, late recalls and reports beyond the instruments.

use arrow_array::Array;
use rayon::prelude::*;

use super::stats::{Sides, Table, adjust, cmh, p_text};
use super::{AuditOptions, Finding, FindingKind, MAX_POOL_PERSONS, local};
use crate::model::{Mode, Outcome};
use crate::review;
use crate::store::{Store, read};
use crate::time::{Millis, Offset};
use crate::tracker::{NONE, Statuses};
use crate::{Error, Result};

const MS_PER_MINUTE: i64 = 60_000;

/// What every check reads.
pub(super) struct Context<'a> {
    pub(super) store: &'a Store,
    pub(super) round: &'a Statuses,
    /// Lab names by number, [`super::NO_LAB`] last.
    pub(super) names: &'a [String],
    /// Each result row's lab number.
    pub(super) lab_of_result: &'a [u32],
    /// Each tube's lab number: the lab of its effective result.
    pub(super) lab_of_tube: &'a [u32],
    pub(super) zone: Offset,
    /// Each collection row's district, when the caller already has them.
    pub(super) districts: Option<&'a [u32]>,
}

/// One lab's counts.
#[derive(Debug, Clone, Default)]
pub(super) struct LabCounts {
    pub(super) results: u64,
    pub(super) positive_pools: u64,
    pub(super) discordant: u64,
    pub(super) discordant_p: Option<f64>,
    pub(super) discordant_adjusted: Option<f64>,
    pub(super) before_receipt: u64,
    pub(super) before_collection: u64,
    pub(super) over_20: u64,
    pub(super) late_recalls: u64,
    pub(super) peak: Option<u64>,
    pub(super) capacity: Option<u64>,
}

/// The counts by lab number and the findings.
pub(super) struct Found {
    pub(super) per_lab: Vec<LabCounts>,
    pub(super) findings: Vec<Finding>,
}

/// A finding about one tube, before its barcode is read.
struct TubeFinding {
    kind: FindingKind,
    lab: u32,
    tube: u32,
    at: Millis,
    detail: String,
}

pub(super) fn run(ctx: &Context<'_>, options: &AuditOptions) -> Result<Found> {
    let round = ctx.round;
    let t = &round.tubes;
    let rs = &round.results;
    let mut per_lab = vec![LabCounts::default(); ctx.names.len()];
    let lab_name = |l: u32| ctx.names.get(l as usize).cloned().unwrap_or_default();
    let mut tube_findings: Vec<TubeFinding> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let minutes = |ms: Millis| ms as f64 / MS_PER_MINUTE as f64;

    let last_swab = &round.swabs().last;

    // Report times against receipt and collection.
    let received = read::receipt_times(ctx.store, &round.name)?;
    let received = Some(&received)
        .filter(|c| c.len() == rs.outcome.len())
        .ok_or_else(|| {
            Error::damaged(
                ctx.store.root(),
                format!(
                    "round {}: the received_at column does not match the results",
                    round.name
                ),
            )
        })?;
    for (r, &tube) in rs.tube.iter().enumerate() {
        if tube == NONE {
            continue;
        }
        let lab = ctx.lab_of_result.get(r).copied().unwrap_or(0);
        let counts = &mut per_lab[lab as usize];
        counts.results += 1;
        let reported = rs.reported_at[r];
        if received.is_valid(r) && reported < received.value(r) {
            counts.before_receipt += 1;
            tube_findings.push(TubeFinding {
                kind: FindingKind::ReportedBeforeReceipt,
                lab,
                tube,
                at: reported,
                detail: format!(
                    "reported {}, received {} ({:.0} min before receipt)",
                    local(reported, ctx.zone),
                    local(received.value(r), ctx.zone),
                    minutes(received.value(r) - reported)
                ),
            });
        }
        let swab = last_swab[tube as usize];
        if reported < swab {
            counts.before_collection += 1;
            tube_findings.push(TubeFinding {
                kind: FindingKind::ReportedBeforeCollection,
                lab,
                tube,
                at: reported,
                detail: format!(
                    "reported {}, last swab {} ({:.0} min before it)",
                    local(reported, ctx.zone),
                    local(swab, ctx.zone),
                    minutes(swab - reported)
                ),
            });
        }
    }

    // Pools over 20.
    for (i, &members) in t.members.iter().enumerate() {
        if members > MAX_POOL_PERSONS {
            let lab = ctx.lab_of_tube[i];
            per_lab[lab as usize].over_20 += 1;
            tube_findings.push(TubeFinding {
                kind: FindingKind::PoolOver20,
                lab,
                tube: u32::try_from(i).unwrap_or(NONE),
                at: last_swab[i],
                detail: format!(
                    "{members} persons in one tube (at most {MAX_POOL_PERSONS} are validated)"
                ),
            });
        }
    }

    // Positive pools: their first positive report.
    let first_positive: Vec<Option<Millis>> = (0..t.len())
        .into_par_iter()
        .map(|i| {
            let r = t.result[i];
            if r == NONE || t.mode[i] != Mode::Pool || rs.outcome[r as usize] != Outcome::Positive {
                return None;
            }
            let (a, b) = (t.result_start[i] as usize, t.result_start[i + 1] as usize);
            t.result_rows[a..b]
                .iter()
                .map(|&x| x as usize)
                .filter(|&x| {
                    rs.outcome[x] == Outcome::Positive && !rs.void.get(x).copied().unwrap_or(false)
                })
                .map(|x| rs.reported_at[x])
                .min()
        })
        .collect();
    for (i, f) in first_positive.iter().enumerate() {
        if f.is_some() {
            per_lab[ctx.lab_of_tube[i] as usize].positive_pools += 1;
        }
    }

    // Discordant pools and their share, one-sided against the other labs.
    let flags = review::flags(round, &round.group_rows);
    for (tube, _) in &flags.discordant {
        per_lab[ctx.lab_of_tube[*tube as usize] as usize].discordant += 1;
    }
    let (all_pos, all_disc) = per_lab
        .iter()
        .fold((0, 0), |(p, d), l| (p + l.positive_pools, d + l.discordant));
    let tests: Vec<_> = per_lab
        .iter()
        .map(|l| {
            let table = Table {
                tubes: l.positive_pools,
                positives: l.discordant,
                other_tubes: all_pos - l.positive_pools,
                other_positives: all_disc - l.discordant,
            };
            cmh(&[table], Sides::Greater)
        })
        .collect();
    let adjusted = adjust(&tests);
    for (l, counts) in per_lab.iter_mut().enumerate() {
        counts.discordant_p = tests[l].map(|c| c.p_value);
        counts.discordant_adjusted = adjusted[l];
        if let (Some(test), Some(adj)) = (tests[l], adjusted[l])
            && adj < options.alpha
        {
            findings.push(Finding {
                kind: FindingKind::DiscordantRate,
                lab: lab_name(u32::try_from(l).unwrap_or(0)),
                tube: String::new(),
                at: String::new(),
                detail: format!(
                    "{} of its {} positive pools discordant (all members retested negative), where the other labs' share gives {:.1}; Mantel-Haenszel, one-sided: chi-square {:.2}, p = {}, Holm-adjusted p = {} < alpha {}",
                    counts.discordant, counts.positive_pools, test.expected, test.chi_square, p_text(test.p_value), p_text(adj), options.alpha
                ),
            });
        }
    }

    // Late recalls: the earliest later single tube of any member.
    let mode_of = |row: u32| t.mode[round.tube_of_row[row as usize] as usize];
    let at = |row: u32| round.collected_at[row as usize];
    let recalls: Vec<(u32, Millis)> = round
        .group_rows
        .par_iter()
        .flat_map_iter(|rows| {
            rows.iter()
                .filter_map(|&r| {
                    let pool = round.tube_of_row[r as usize];
                    first_positive.get(pool as usize)?.as_ref()?;
                    let first = rows
                        .iter()
                        .copied()
                        .filter(|&x| mode_of(x) == Mode::Single && at(x) > at(r))
                        .map(at)
                        .min()?;
                    Some((pool, first))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut first_recall: Vec<Option<Millis>> = vec![None; t.len()];
    for (pool, when) in recalls {
        let slot = &mut first_recall[pool as usize];
        *slot = Some(slot.map_or(when, |s| s.min(when)));
    }
    // Hours to milliseconds: within 240 h, far inside i64.
    #[allow(clippy::cast_possible_truncation)]
    let limit = (options.recall_hours * 3_600_000.0).round() as i64;
    for (i, (report, recall)) in first_positive.iter().zip(&first_recall).enumerate() {
        if let (Some(report), Some(recall)) = (report, recall)
            && recall - report > limit
        {
            let lab = ctx.lab_of_tube[i];
            per_lab[lab as usize].late_recalls += 1;
            tube_findings.push(TubeFinding {
                kind: FindingKind::LateRecall,
                lab,
                tube: u32::try_from(i).unwrap_or(NONE),
                at: *report,
                detail: format!(
                    "reported positive {}, first member retested {} ({:.0} min later; limit {} h)",
                    local(*report, ctx.zone),
                    local(*recall, ctx.zone),
                    minutes(recall - report),
                    options.recall_hours
                ),
            });
        }
    }

    // Reports beyond the instruments.
    if let Some(capacity) = &options.capacity {
        let window = i64::from(options.window_minutes) * MS_PER_MINUTE;
        let mut times: Vec<Vec<Millis>> = vec![Vec::new(); ctx.names.len()];
        for (r, &tube) in rs.tube.iter().enumerate() {
            if tube != NONE {
                let lab = ctx.lab_of_result.get(r).copied().unwrap_or(0) as usize;
                times[lab].push(rs.reported_at[r]);
            }
        }
        for (l, mut times) in times.into_iter().enumerate() {
            if times.is_empty() {
                continue;
            }
            times.par_sort_unstable();
            let (peak, start) = peak_in_window(&times, window);
            let counts = &mut per_lab[l];
            counts.peak = Some(peak);
            let name = &ctx.names[l];
            counts.capacity = capacity
                .iter()
                .find(|c| &c.lab == name)
                .and_then(|c| c.in_window(options.window_minutes));
            if let Some(cap) = counts.capacity
                && peak > cap
            {
                findings.push(Finding {
                    kind: FindingKind::OverCapacity,
                    lab: name.clone(),
                    tube: String::new(),
                    at: local(start, ctx.zone),
                    detail: format!(
                        "{peak} tubes reported within {} min from {}, where its instruments finish at most {cap} in {} min",
                        options.window_minutes,
                        local(start, ctx.zone),
                        options.window_minutes
                    ),
                });
            }
        }
    }

    let wanted: Vec<u32> = tube_findings.iter().map(|f| f.tube).collect();
    let barcodes = round.barcodes_of(ctx.store, &wanted)?;
    findings.extend(tube_findings.into_iter().map(|f| Finding {
        kind: f.kind,
        lab: lab_name(f.lab),
        tube: barcodes.get(f.tube).to_owned(),
        at: local(f.at, ctx.zone),
        detail: f.detail,
    }));
    Ok(Found { per_lab, findings })
}

/// The most of the sorted `times` within any half-open window `[t, t + window)`, and
/// the first time of that window.
///
/// ```text
/// times 0, 10, 20, 70, 75 (minutes), window 60 → 3 from 0; window 66 → 4 from 10
/// ```
pub(super) fn peak_in_window(times: &[Millis], window: i64) -> (u64, Millis) {
    let (mut best, mut start, mut i) = (0usize, times.first().copied().unwrap_or(0), 0usize);
    for (j, &t) in times.iter().enumerate() {
        while t - times[i] >= window {
            i += 1;
        }
        if j + 1 - i > best {
            best = j + 1 - i;
            start = times[i];
        }
    }
    (u64::try_from(best).unwrap_or(u64::MAX), start)
}

#[cfg(test)]
mod tests {
    use super::peak_in_window;

    #[test]
    fn the_window_is_half_open_and_slides() {
        let m = |v: &[i64]| v.iter().map(|x| x * 60_000).collect::<Vec<_>>();
        assert_eq!(
            peak_in_window(&m(&[0, 10, 20, 70, 75]), 60 * 60_000),
            (3, 0)
        );
        assert_eq!(
            peak_in_window(&m(&[0, 10, 20, 70, 75]), 66 * 60_000),
            (4, 10 * 60_000)
        );
        // Exactly one window apart: not in the same window.
        assert_eq!(peak_in_window(&m(&[0, 60]), 60 * 60_000), (1, 0));
        assert_eq!(peak_in_window(&[], 1), (0, 0));
    }
}
