//! Pool positivity of each lab against the other labs testing tubes from the same
//! places: strata, the two steps of tests, and their findings.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

use super::checks::Context;
use super::stats::{Cmh, Sides, Table, adjust, cmh, p_text};
use super::{AuditOptions, Finding, FindingKind};
use crate::Result;
use crate::coverage::{self, AreaLevel};
use crate::model::{Mode, Outcome};
use crate::store::BatchKind;
use crate::store::labels::{UNSTATED, labels};
use crate::tracker::NONE;

/// What a stratum's place is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrataBy {
    /// The district of the tube's first person in the population register.
    District,
    /// The tube's sampling site.
    Site,
}

impl StrataBy {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            StrataBy::District => "district",
            StrataBy::Site => "site",
        }
    }
}

/// The test, in words.
pub(super) const TWO_SIDED_TEST: &str = "Mantel-Haenszel, two-sided";

/// One lab's positivity and the test that decided its flag.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LabPositivity {
    pub(super) pools: u64,
    pub(super) positives: u64,
    pub(super) test: Option<Cmh>,
    pub(super) test_name: &'static str,
    pub(super) adjusted: Option<f64>,
    pub(super) flag: &'static str,
}

/// Every lab's positivity, by lab number.
#[derive(Debug, Clone)]
pub struct Positivity {
    pub(super) by: StrataBy,
    pub(super) shared_strata: u64,
    labs: Vec<LabPositivity>,
    /// Labs left out of the second step's references, by number.
    excluded: Vec<usize>,
}

impl Positivity {
    pub(super) fn lab(&self, i: usize) -> LabPositivity {
        self.labs.get(i).copied().unwrap_or_default()
    }

    /// Counts and tests every lab (see the module docs of [`super`]).
    pub(super) fn compute(ctx: &Context<'_>, options: &AuditOptions) -> Result<Positivity> {
        let round = ctx.round;
        let t = &round.tubes;
        let by = match options.strata {
            Some(b) => b,
            None if ctx.store.manifest().population().next().is_some() => StrataBy::District,
            None => StrataBy::Site,
        };
        let place_of_row: Cow<'_, [u32]> = match by {
            StrataBy::District => match ctx.districts {
                Some(of_row) => Cow::Borrowed(of_row),
                None => Cow::Owned(
                    coverage::areas_of_rows(ctx.store, &round.name, AreaLevel::District)?.of_row,
                ),
            },
            StrataBy::Site => {
                Cow::Owned(labels(ctx.store, &round.name, BatchKind::Collections, "site")?.codes)
            }
        };
        let stages = round.stages(ctx.store)?;
        let n_labs = ctx.names.len();
        // (place, capacity) → [tubes, positives] by lab.
        let mut strata: HashMap<(u32, u8), Vec<[u64; 2]>> = HashMap::new();
        let mut labs = vec![LabPositivity::default(); n_labs];
        for i in 0..t.len() {
            let r = t.result[i];
            if r == NONE || t.mode[i] != Mode::Pool || !stages.is_first_stage(i) {
                continue;
            }
            let r = r as usize;
            if round.results.void.get(r).copied().unwrap_or(false) {
                continue;
            }
            let positive = match round.results.outcome[r] {
                Outcome::Positive => true,
                Outcome::Negative => false,
                _ => continue,
            };
            let lab = ctx.lab_of_tube[i] as usize;
            let place = place_of_row
                .get(t.row[i] as usize)
                .copied()
                .unwrap_or(UNSTATED);
            let cell = strata
                .entry((place, t.capacity[i]))
                .or_insert_with(|| vec![[0, 0]; n_labs]);
            cell[lab][0] += 1;
            cell[lab][1] += u64::from(positive);
            labs[lab].pools += 1;
            labs[lab].positives += u64::from(positive);
        }
        let shared_strata = strata
            .values()
            .filter(|c| c.iter().filter(|l| l[0] > 0).count() > 1)
            .count();
        // The tests sum over strata in floating point: in a fixed order (the cells'
        // own), the report's figures are the same at every run, which the map's
        // order did not give to the last digit.
        let mut cells: Vec<Vec<[u64; 2]>> = strata.into_values().collect();
        cells.sort_unstable();
        let excluded = decide(&cells, &mut labs, options.alpha);
        Ok(Positivity {
            by,
            shared_strata: u64::try_from(shared_strata).unwrap_or(u64::MAX),
            labs,
            excluded,
        })
    }

    /// A finding for each flagged lab.
    pub(super) fn findings(&self, names: &[String], alpha: f64) -> Vec<Finding> {
        let excluded: Vec<&str> = self
            .excluded
            .iter()
            .filter_map(|&l| names.get(l).map(String::as_str))
            .collect();
        self.labs
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.flag.is_empty())
            .filter_map(|(i, l)| {
                let test = l.test?;
                let kind = if l.flag == "higher" {
                    FindingKind::PositivityHigh
                } else {
                    FindingKind::PositivityLow
                };
                let earlier: Vec<&str> = excluded
                    .iter()
                    .take_while(|&&e| e != names.get(i).map_or("", String::as_str))
                    .copied()
                    .collect();
                let against = if earlier.is_empty() {
                    String::new()
                } else {
                    format!(" (against the labs other than {})", earlier.join(", "))
                };
                Some(Finding {
                    kind,
                    lab: names.get(i).cloned().unwrap_or_default(),
                    tube: String::new(),
                    at: String::new(),
                    detail: format!(
                        "{} positive of {} pools where the other labs' positivity by {} and pool size gives {:.1}{against}; {}: chi-square {:.2}, p = {}, Holm-adjusted p = {} < alpha {alpha}",
                        l.positives,
                        l.pools,
                        self.by.as_str(),
                        test.expected,
                        l.test_name,
                        test.chi_square,
                        p_text(test.p_value),
                        p_text(l.adjusted.unwrap_or(1.0)),
                    ),
                })
            })
            .collect()
    }
}

/// The step-down on the strata's cells (`[tubes, positives]` of each lab in each
/// stratum): each round tests every lab still in against the others still in
/// (two-sided), Holm-adjusts over them, and sets aside the most significant lab when
/// its adjusted p is below `alpha` — on a tie (two labs in a stratum give both the same
/// p) the one with more positives than expected. It stops when no lab is left to flag.
/// Fills each lab's test, adjusted p and flag from the last round it was tested in
/// (no test when it was left with no lab to compare with); returns the labs set
/// aside, in order.
fn decide(cells: &[Vec<[u64; 2]>], labs: &mut [LabPositivity], alpha: f64) -> Vec<usize> {
    let n_labs = labs.len();
    let tables = |lab: usize, leave_out: &[usize]| -> Vec<Table> {
        cells
            .iter()
            .map(|c| {
                let (mut n, mut x) = (0, 0);
                for (j, l) in c.iter().enumerate() {
                    if j != lab && !leave_out.contains(&j) {
                        n += l[0];
                        x += l[1];
                    }
                }
                let own = c.get(lab).copied().unwrap_or([0, 0]);
                Table {
                    tubes: own[0],
                    positives: own[1],
                    other_tubes: n,
                    other_positives: x,
                }
            })
            .collect()
    };
    let mut aside: Vec<usize> = Vec::new();
    loop {
        let tests: Vec<Option<Cmh>> = (0..n_labs)
            .map(|l| {
                if aside.contains(&l) {
                    None
                } else {
                    cmh(&tables(l, &aside), Sides::Two)
                }
            })
            .collect();
        let adjusted = adjust(&tests);
        for (l, lab) in labs.iter_mut().enumerate() {
            if aside.contains(&l) {
                continue;
            }
            lab.test = tests[l];
            lab.adjusted = adjusted[l];
            lab.test_name = if tests[l].is_some() {
                TWO_SIDED_TEST
            } else {
                ""
            };
        }
        let least = adjusted
            .iter()
            .flatten()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if least >= alpha {
            return aside;
        }
        let excess = |l: usize| tests[l].is_some_and(|t| t.observed as f64 > t.expected);
        let tied: Vec<usize> = (0..n_labs)
            .filter(|&l| adjusted[l].is_some_and(|p| p <= least * (1.0 + 1e-9)))
            .collect();
        let Some(&pick) = tied.iter().find(|&&l| excess(l)).or(tied.first()) else {
            return aside;
        };
        labs[pick].flag = if excess(pick) { "higher" } else { "lower" };
        aside.push(pick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cells: &[Vec<[u64; 2]>], n_labs: usize) -> (Vec<LabPositivity>, Vec<usize>) {
        let mut labs = vec![LabPositivity::default(); n_labs];
        let aside = decide(cells, &mut labs, 0.01);
        (labs, aside)
    }

    #[test]
    fn a_lab_with_too_few_positives_is_flagged_lower_and_only_it() {
        // Three labs share two districts; lab 2 finds far fewer positives.
        let cells = vec![
            vec![[500, 25], [500, 22], [500, 2]],
            vec![[400, 18], [400, 21], [400, 1]],
        ];
        let (labs, aside) = run(&cells, 3);
        assert_eq!(aside, [2]);
        assert_eq!(
            (labs[0].flag, labs[1].flag, labs[2].flag),
            ("", "", "lower")
        );
        assert_eq!(labs[2].test.expect("a test").observed, 3);
        // Labs 0 and 1, compared with each other only: 43 and 43 positives.
        let t = labs[0].test.expect("a test");
        assert!((t.expected - 43.0).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn an_excess_is_set_aside_before_the_others_are_compared() {
        let cells = vec![
            vec![[500, 60], [500, 5], [500, 6]],
            vec![[400, 50], [400, 4], [400, 3]],
        ];
        let (labs, aside) = run(&cells, 3);
        assert_eq!(aside, [0]);
        assert_eq!(
            (labs[0].flag, labs[1].flag, labs[2].flag),
            ("higher", "", "")
        );
        let t = labs[1].test.expect("a test");
        assert!((t.expected - 9.0).abs() < 1e-9, "{t:?}");
        // Two labs give the same p both ways: the one with the excess is flagged, and
        // the other is left with no lab to compare with.
        let (two, aside) = run(&[vec![[500, 60], [500, 5]], vec![[400, 50], [400, 4]]], 2);
        assert_eq!(aside, [0]);
        assert_eq!((two[0].flag, two[1].flag), ("higher", ""));
        assert!(two[1].test.is_none());
    }

    #[test]
    fn a_lab_alone_in_its_strata_is_not_tested() {
        let cells = vec![vec![[100, 30], [0, 0]], vec![[0, 0], [100, 1]]];
        let (labs, _) = run(&cells, 2);
        assert!(labs.iter().all(|l| l.test.is_none() && l.flag.is_empty()));
    }
}
