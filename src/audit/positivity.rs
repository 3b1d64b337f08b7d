//! Pool positivity of each lab against the other labs testing tubes from the same
//! places: strata, the two steps of tests, and their findings.

use std::collections::HashMap;

use serde::Serialize;

use super::checks::Context;
use super::stats::{Cmh, Sides, Table, cmh, holm};
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

/// The one-sided test of the first step.
pub(super) const EXCESS_TEST: &str = "Mantel-Haenszel, one-sided (more positives)";
/// The two-sided test of the second step.
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
        let place_of_row: Vec<u32> = match by {
            StrataBy::District => {
                coverage::areas_of_rows(ctx.store, &round.name, AreaLevel::District)?.of_row
            }
            StrataBy::Site => labels(ctx.store, &round.name, BatchKind::Collections, "site")?.codes,
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
        let cells: Vec<Vec<[u64; 2]>> = strata.into_values().collect();
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
                    Table {
                        tubes: c[lab][0],
                        positives: c[lab][1],
                        other_tubes: n,
                        other_positives: x,
                    }
                })
                .collect()
        };
        // Step 1: more positives than the others, one-sided.
        let first: Vec<Option<Cmh>> = (0..n_labs)
            .map(|l| cmh(&tables(l, &[]), Sides::Greater))
            .collect();
        let adjusted = adjust(&first);
        let mut excluded = Vec::new();
        for l in 0..n_labs {
            labs[l].test = first[l];
            labs[l].test_name = if first[l].is_some() { EXCESS_TEST } else { "" };
            labs[l].adjusted = adjusted[l];
            if adjusted[l].is_some_and(|p| p < options.alpha) {
                labs[l].flag = "higher";
                excluded.push(l);
            }
        }
        // Step 2: every other lab, two-sided, against the labs not flagged.
        let second: Vec<Option<Cmh>> = (0..n_labs)
            .map(|l| {
                if excluded.contains(&l) {
                    None
                } else {
                    cmh(&tables(l, &excluded), Sides::Two)
                }
            })
            .collect();
        let adjusted = adjust(&second);
        for l in 0..n_labs {
            if let Some(test) = second[l] {
                labs[l].test = Some(test);
                labs[l].test_name = TWO_SIDED_TEST;
                labs[l].adjusted = adjusted[l];
                if adjusted[l].is_some_and(|p| p < options.alpha) {
                    labs[l].flag = if test.observed as f64 > test.expected {
                        "higher"
                    } else {
                        "lower"
                    };
                }
            }
        }
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
                let against = if l.test_name == TWO_SIDED_TEST && !excluded.is_empty() {
                    format!(" (against the labs other than {})", excluded.join(", "))
                } else {
                    String::new()
                };
                Some(Finding {
                    kind,
                    lab: names.get(i).cloned().unwrap_or_default(),
                    tube: String::new(),
                    at: String::new(),
                    detail: format!(
                        "{} positive of {} pools where the other labs' positivity by {} and pool size gives {:.1}{against}; {}: chi-square {:.2}, p = {:.3e}, Holm-adjusted p = {:.3e} < alpha {alpha}",
                        l.positives,
                        l.pools,
                        self.by.as_str(),
                        test.expected,
                        l.test_name,
                        test.chi_square,
                        test.p_value,
                        l.adjusted.unwrap_or(1.0),
                    ),
                })
            })
            .collect()
    }
}

/// Holm-adjusted p-values of the tests that could be made, `None` for the others.
pub(super) fn adjust(tests: &[Option<Cmh>]) -> Vec<Option<f64>> {
    let made: Vec<(usize, f64)> = tests
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| (i, t.p_value)))
        .collect();
    let p: Vec<f64> = made.iter().map(|&(_, p)| p).collect();
    let mut out = vec![None; tests.len()];
    for ((i, _), a) in made.iter().zip(holm(&p)) {
        out[*i] = Some(a);
    }
    out
}
