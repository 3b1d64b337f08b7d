//! The evidence behind each flag: the text of only the flagged rows, and every result
//! of their tubes.

use rayon::prelude::*;

use super::{
    ChangedFromPositive, DiscordantPool, Flags, MemberRow, MissedByPooling, Retest, Review,
    ReviewCounts, TubeRows, flags,
};
use crate::Result;
use crate::report::{ResultLine, TubeLine};
use crate::store::Store;
use crate::store::read::{CollectionText, ResultText};
use crate::time;
use crate::tracker::{NONE, Statuses};

/// Reads what the flagged rows show.
struct Evidence<'a> {
    round: &'a Statuses,
    results: ResultText,
    rows: CollectionText,
}

impl Evidence<'_> {
    /// The tube of collection row `row`, seen from that row, with every result row.
    fn tube(&self, row: u32) -> TubeLine {
        let s = self.round;
        let t = s.tube_of_row[row as usize] as usize;
        let c = self.rows.get(row);
        let effective = s.tubes.result[t];
        let (shown, not_counted) = s.shown_result(t);
        let lo = s.tubes.result_start[t] as usize;
        let hi = s.tubes.result_start[t + 1] as usize;
        let results = s.tubes.result_rows[lo..hi]
            .iter()
            .map(|&r| {
                let i = r as usize;
                let (ct_orf1ab, ct_n) = s.results.cts(i);
                let text = self.results.get(r);
                let void = s.results.is_void(i);
                let past_limit = match s.tubes.first_swab_if_late(t) {
                    Some(first) if !void && s.results.is_late(i) => {
                        Some(s.specimen_limit.explain(first, s.results.reported_at[i]))
                    }
                    _ => None,
                };
                ResultLine {
                    result: s.results.outcome[i].as_str(),
                    ct_orf1ab,
                    ct_n,
                    reported_at: time::format(s.results.reported_at[i], s.zone),
                    lab: text.lab.to_owned(),
                    plate: text.plate.to_owned(),
                    well: text.well.to_owned(),
                    effective: r == effective,
                    void: void.then(|| format!("plate {} failed its controls", text.plate)),
                    past_limit,
                    batch: text.batch,
                    source: text.source.to_owned(),
                    line: text.line,
                }
            })
            .collect();
        TubeLine {
            tube: c.tube.to_owned(),
            mode: s.tubes.mode[t].as_str(),
            capacity: s.tubes.capacity[t],
            members: s.tubes.members[t],
            site: c.site.to_owned(),
            collected_at: time::format(s.collected_at[row as usize], s.zone),
            result: if shown == NONE {
                String::new()
            } else {
                s.results.outcome[shown as usize].as_str().to_owned()
            },
            not_counted,
            positive_kept: s.tubes.positive_kept[t],
            results,
            batch: c.batch,
            source: c.source.to_owned(),
            line: c.line,
        }
    }
}

impl Review {
    /// Finds the review flags of a decided round and reads the text of only the rows
    /// they concern, and of their tubes' results.
    pub fn compute(store: &Store, round: &Statuses) -> Result<Review> {
        let found = flags(round, &round.group_rows);
        Review::from_flags(store, round, &found)
    }

    /// The review for flags already found.
    pub(crate) fn from_flags(store: &Store, round: &Statuses, found: &Flags) -> Result<Review> {
        // Every row of a changed, conflicting or shared tube is listed.
        const CHANGED: u8 = 1;
        const CONFLICTING: u8 = 2;
        const SHARED: u8 = 4;
        let marks: Vec<u8> = {
            let mut v = vec![0u8; round.tubes.len()];
            for (tubes, mark) in [
                (&found.changed, CHANGED),
                (&found.conflicting, CONFLICTING),
                (&found.shared_single, SHARED),
            ] {
                for &t in tubes {
                    v[t as usize] |= mark;
                }
            }
            v
        };
        let rows_of = |mark: u8| -> Vec<u32> {
            if !marks.iter().any(|m| m & mark != 0) {
                return Vec::new();
            }
            (0..round.tube_of_row.len())
                .into_par_iter()
                .filter(|&r| {
                    marks
                        .get(round.tube_of_row[r] as usize)
                        .is_some_and(|m| m & mark != 0)
                })
                .filter_map(|r| u32::try_from(r).ok())
                .collect()
        };
        let changed_rows = rows_of(CHANGED);
        let conflicting_rows = rows_of(CONFLICTING);
        let shared_rows = rows_of(SHARED);
        let mut wanted: Vec<u32> = changed_rows.clone();
        wanted.extend(&conflicting_rows);
        wanted.extend(&shared_rows);
        for (_, members) in &found.discordant {
            wanted.extend(members.iter().flat_map(|&(r, x)| [r, x]));
        }
        wanted.extend(found.missed.iter().flat_map(|&(s, p)| [s, p]));
        // The result rows of the listed rows' tubes, and only those.
        let tubes = &round.tubes;
        let result_rows: Vec<u32> = wanted
            .iter()
            .flat_map(|&row| {
                let t = round.tube_of_row[row as usize] as usize;
                let (lo, hi) = (
                    tubes.result_start[t] as usize,
                    tubes.result_start[t + 1] as usize,
                );
                tubes.result_rows[lo..hi].iter().copied()
            })
            .collect();
        let results = ResultText::fetch(store, &round.name, &result_rows)?;
        let rows = CollectionText::fetch(store, &round.name, &wanted)?;
        let ev = Evidence {
            round,
            results,
            rows,
        };
        let person = |row: u32| ev.rows.get(row).person.to_owned();
        let discordant_pool: Vec<DiscordantPool> = found
            .discordant
            .iter()
            .map(|(_, members)| DiscordantPool {
                pool: ev.tube(members[0].0),
                retests: members
                    .iter()
                    .map(|&(r, x)| Retest {
                        person: person(r),
                        tube: ev.tube(x),
                    })
                    .collect(),
            })
            .collect();
        let missed_by_pooling: Vec<MissedByPooling> = found
            .missed
            .iter()
            .map(|&(s, p)| MissedByPooling {
                person: person(s),
                single: ev.tube(s),
                pool: ev.tube(p),
            })
            .collect();
        let mut by_tube: Vec<(u32, u32)> = changed_rows
            .iter()
            .map(|&r| (round.tube_of_row[r as usize], r))
            .collect();
        by_tube.sort_unstable();
        let changed_from_positive: Vec<ChangedFromPositive> = by_tube
            .chunk_by(|a, b| a.0 == b.0)
            .map(|rows| {
                let mut persons: Vec<String> = rows.iter().map(|&(_, r)| person(r)).collect();
                persons.sort();
                ChangedFromPositive {
                    tube: ev.tube(rows[0].1),
                    persons,
                }
            })
            .collect();
        let tube_rows = |rows: &[u32]| -> Vec<TubeRows> {
            let mut by_tube: Vec<(u32, u32)> = rows
                .iter()
                .map(|&r| (round.tube_of_row[r as usize], r))
                .collect();
            by_tube.sort_unstable();
            by_tube
                .chunk_by(|a, b| a.0 == b.0)
                .map(|rows| TubeRows {
                    tube: ev.tube(rows[0].1),
                    rows: rows
                        .iter()
                        .map(|&(_, r)| {
                            let c = ev.rows.get(r);
                            MemberRow {
                                person: c.person.to_owned(),
                                mode: c.mode.to_owned(),
                                capacity: c.capacity,
                                site: c.site.to_owned(),
                                collected_at: time::format(
                                    round.collected_at[r as usize],
                                    round.zone,
                                ),
                                batch: c.batch,
                                source: c.source.to_owned(),
                                line: c.line,
                            }
                        })
                        .collect(),
                })
                .collect()
        };
        let conflicting_tube_rows = tube_rows(&conflicting_rows);
        let shared_single_tube = tube_rows(&shared_rows);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(Review {
            round: round.name.clone(),
            counts: ReviewCounts {
                discordant_pool: count(discordant_pool.len()),
                missed_by_pooling: count(missed_by_pooling.len()),
                changed_from_positive: count(changed_from_positive.len()),
                conflicting_tube_rows: count(conflicting_tube_rows.len()),
                shared_single_tube: count(shared_single_tube.len()),
            },
            discordant_pool,
            missed_by_pooling,
            changed_from_positive,
            conflicting_tube_rows,
            shared_single_tube,
        })
    }
}
