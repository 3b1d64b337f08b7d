//! Finding the flags on the columnar arrays: row and tube numbers only, no text.

use rayon::prelude::*;

use crate::model::{Mode, Outcome};
use crate::tracker::{NONE, Statuses};

/// The flags of a round as row and tube numbers, before any text is read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    /// Discordant pools: the pool tube, and for each member its pool row and the
    /// collection row of the negative single retest, in member row order.
    pub discordant: Vec<(u32, Vec<(u32, u32)>)>,
    /// Missed by pooling: (positive single tube's row, earlier negative pool's row).
    pub missed: Vec<(u32, u32)>,
    /// Tubes whose positive was kept against a later non-positive result.
    pub changed: Vec<u32>,
    /// Tubes whose rows disagree about its metadata.
    pub conflicting: Vec<u32>,
    /// Tubes called single that hold more than one person.
    pub shared_single: Vec<u32>,
}

/// Finds the flags of `round`; `groups` holds the rows of each person with more than
/// one row ([`Decided::group_rows`](crate::tracker::Decided::group_rows)).
pub fn flags(round: &Statuses, groups: &[Vec<u32>]) -> Flags {
    let outcome = |row: u32| {
        let r = round.result_of_row(row);
        (r != NONE).then(|| round.results.outcome[r as usize])
    };
    let mode = |row: u32| round.tubes.mode[round.tube_of_row[row as usize] as usize];
    let at = |row: u32| round.collected_at[row as usize];
    // (pool tube, member row, retest row) and (single row, pool row).
    type Found = (Vec<(u32, u32, u32)>, Vec<(u32, u32)>);
    let (mut retested, mut missed): Found = groups
        .par_iter()
        .fold(
            || (Vec::new(), Vec::new()),
            |(mut retested, mut missed), rows| {
                for &r in rows {
                    if mode(r) != Mode::Pool || outcome(r) != Some(Outcome::Positive) {
                        continue;
                    }
                    // The earliest later negative single tube is the retest.
                    let retest = rows
                        .iter()
                        .copied()
                        .filter(|&x| {
                            mode(x) == Mode::Single
                                && at(x) > at(r)
                                && outcome(x) == Some(Outcome::Negative)
                        })
                        .min_by_key(|&x| (at(x), x));
                    if let Some(x) = retest {
                        retested.push((round.tube_of_row[r as usize], r, x));
                    }
                }
                let single = rows
                    .iter()
                    .copied()
                    .filter(|&x| mode(x) == Mode::Single && outcome(x) == Some(Outcome::Positive))
                    .min_by_key(|&x| (at(x), x));
                if let Some(s) = single {
                    for &p in rows {
                        if mode(p) == Mode::Pool
                            && at(p) < at(s)
                            && outcome(p) == Some(Outcome::Negative)
                        {
                            missed.push((s, p));
                        }
                    }
                }
                (retested, missed)
            },
        )
        .reduce(
            || (Vec::new(), Vec::new()),
            |(mut a, mut b), (c, d)| {
                a.extend(c);
                b.extend(d);
                (a, b)
            },
        );
    retested.par_sort_unstable();
    missed.par_sort_unstable_by_key(|&(s, p)| (round.tube_of_row[p as usize], p, s));
    let mut discordant = Vec::new();
    for chunk in retested.chunk_by(|a, b| a.0 == b.0) {
        let tube = chunk[0].0;
        // Every member retested negative: the pool's row count equals the retested rows.
        if u32::try_from(chunk.len()).is_ok_and(|n| n == round.tubes.members[tube as usize]) {
            discordant.push((tube, chunk.iter().map(|&(_, r, x)| (r, x)).collect()));
        }
    }
    let tubes = &round.tubes;
    let where_ = |f: &dyn Fn(usize) -> bool| -> Vec<u32> {
        (0..tubes.len())
            .filter(|&t| f(t))
            .filter_map(|t| u32::try_from(t).ok())
            .collect()
    };
    let changed = where_(&|t| tubes.positive_kept[t]);
    let conflicting = where_(&|t| tubes.conflict.get(t) == Some(&true));
    let shared_single =
        where_(&|t| tubes.stated_mode.get(t) == Some(&Some(Mode::Single)) && tubes.members[t] > 1);
    Flags {
        discordant,
        missed,
        changed,
        conflicting,
        shared_single,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Offset;
    use crate::tracker::{Decided, ResultFacts, Tubes};
    use Mode::{Pool, Single};
    use Outcome::{Negative, Positive};

    /// A round of `tubes` (mode, outcome, members) and rows (tube, `collected_at`).
    fn round(tubes: &[(Mode, Option<Outcome>, u32)], rows: &[(u32, i64)]) -> Statuses {
        let mut t = Tubes::default();
        let mut results = ResultFacts::default();
        for (i, &(mode, outcome, members)) in tubes.iter().enumerate() {
            t.row.push(0);
            t.members.push(members);
            t.mode.push(mode);
            t.capacity.push(10);
            t.positive_kept.push(false);
            t.result_start
                .push(u32::try_from(results.outcome.len()).unwrap_or(NONE));
            match outcome {
                Some(o) => {
                    let r = u32::try_from(results.outcome.len()).unwrap_or(NONE);
                    t.result.push(r);
                    t.result_rows.push(r);
                    results.outcome.push(o);
                    results.ct_orf1ab.push(f32::NAN);
                    results.ct_n.push(f32::NAN);
                    results.reported_at.push(i64::try_from(i).unwrap_or(0));
                    results.void.push(false);
                }
                None => t.result.push(NONE),
            }
        }
        t.result_start
            .push(u32::try_from(results.outcome.len()).unwrap_or(NONE));
        Statuses::of(
            Decided {
                name: "r".into(),
                zone: Offset::UTC,
                specimen_limit: crate::tracker::SpecimenLimit::hours(48.0),
                rows: rows.len(),
                tubes: t,
                results,
                single: Vec::new(),
                groups: Vec::new(),
                group_rows: Vec::new(),
                grouped: Vec::new(),
                run_tube: Vec::new(),
            },
            rows.iter().map(|r| r.0).collect(),
            rows.iter().map(|r| r.1).collect(),
        )
    }

    #[test]
    fn discordant_needs_every_member_cleared_by_a_later_negative_single() {
        // Tube 0: positive pool of rows 0, 1. Tubes 1, 2: negative singles.
        let tubes = [
            (Pool, Some(Positive), 2),
            (Single, Some(Negative), 1),
            (Single, Some(Negative), 1),
        ];
        let rows = [(0, 10), (0, 10), (1, 20), (2, 20)];
        let s = round(&tubes, &rows);
        let f = flags(&s, &[vec![0, 2], vec![1, 3]]);
        assert_eq!(f.discordant, vec![(0, vec![(0, 2), (1, 3)])]);
        assert!(f.missed.is_empty());
        // One member only retested: not discordant.
        assert!(flags(&s, &[vec![0, 2]]).discordant.is_empty());
        // A retest collected before the pool does not count.
        let early = round(&tubes, &[(0, 10), (0, 10), (1, 5), (2, 20)]);
        assert!(
            flags(&early, &[vec![0, 2], vec![1, 3]])
                .discordant
                .is_empty()
        );
    }

    #[test]
    fn missed_needs_an_earlier_negative_pool() {
        let tubes = [(Pool, Some(Negative), 1), (Single, Some(Positive), 1)];
        let s = round(&tubes, &[(0, 10), (1, 20)]);
        assert_eq!(flags(&s, &[vec![0, 1]]).missed, vec![(1, 0)]);
        let later = round(&tubes, &[(0, 30), (1, 20)]);
        assert!(flags(&later, &[vec![0, 1]]).missed.is_empty());
    }
}
