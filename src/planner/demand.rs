//! Tubes a round needs: pooled, household and single tubes, and the expected single-tube
//! retests that positive pools bring (Dorfman's two-stage pooling, 1943).
//!
//! For a group of `N` people sampled `k` to a tube at prevalence `p`:
//!
//! - first-stage tubes = ⌈N / k⌉ (a partly filled last tube is still a tube);
//! - a tube is positive when at least one of its `k` swabs is:
//!   share = 1 − (1 − p)^k;
//! - each positive tube recalls its `k` people for a single tube each:
//!   retests = ⌈N / k⌉ × (1 − (1 − p)^k) × k;
//! - tests per person = 1/k + 1 − (1 − p)^k (the domain's Dorfman figure).
//!
//! Households use the mean household size as `k` (fractional `k` is fine in the
//! formula: it is the expected tube content). Single tubes bring no retest: a positive
//! single tube *is* the finding. Retests are expected values; the round's total is
//! rounded up, because a lab plans for whole tubes.
//!
//! Swabs scale with people plus retests (every retest is a new swab), single tubes
//! with single-mode people plus retests, pool tubes with pooled and household tubes.
//!
//! **An imperfect test, and three stages.** [`Demand::under`] counts with an
//! [`Assay`]'s sensitivity and specificity: a pool holding an infected swab turns
//! positive with the pool's sensitivity, a clean one with 1 − its specificity, so the
//! share of positive pools is `Se(k)(1 − (1 − p)^k) + (1 − Sp)(1 − p)^k` (see
//! [`super::assay`]). A three-stage zone (`20 → 5 → 1`) swabs a positive pool's people
//! again into pools of the second size, and a positive second pool's people again into
//! single tubes; each stage's tubes are `⌈N / k₁⌉ × k₁ × A_s / k_s`, with `A_s` the
//! share of people the stage reaches. Retests are then every tube after the first
//! stage, retest swabs every person swabbed again, and the second stage's tubes are
//! pool tubes. [`Demand::of`] is the perfect test, the planner's arithmetic before
//! assays: figures a plan without an `[assay]` gets unchanged.

use serde::Serialize;

use super::assay::Assay;
use super::numbers::{ceil_u64, f};

/// How a group's people are sampled into tubes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Tubing {
    /// One person, one tube (单人单管).
    Single,
    /// One household per tube (1户1管), at a mean household size.
    Household {
        /// Mean people per household.
        household_size: f64,
    },
    /// `pool_size` people per tube (混采); 5, 10 and 20 are the validated sizes.
    Pooled {
        /// People per tube.
        pool_size: u8,
    },
    /// Pools as a measured round filled them (a mean, usually a little under capacity).
    MeasuredPool {
        /// Mean people per pool tube seen in the round.
        mean_fill: f64,
    },
    /// Three stages: `pool_size` people per tube; a positive tube's people are swabbed
    /// again into pools of `retest_pool_size`, and a positive retest pool's people into
    /// single tubes (`20 → 5 → 1`).
    ThreeStage {
        /// People per first-stage tube.
        pool_size: u8,
        /// People per second-stage tube (divides `pool_size`).
        retest_pool_size: u8,
    },
}

impl Tubing {
    /// People per tube.
    ///
    /// ```
    /// use pooltrack::planner::demand::Tubing;
    /// assert_eq!(Tubing::Pooled { pool_size: 10 }.people_per_tube(), 10.0);
    /// assert_eq!(Tubing::Single.people_per_tube(), 1.0);
    /// ```
    pub fn people_per_tube(self) -> f64 {
        match self {
            Tubing::Single => 1.0,
            Tubing::Household { household_size } => household_size,
            Tubing::Pooled { pool_size } | Tubing::ThreeStage { pool_size, .. } => {
                f64::from(pool_size)
            }
            Tubing::MeasuredPool { mean_fill } => mean_fill,
        }
    }

    /// People per tube at each stage, the first stage first: `[1]` for single tubes,
    /// `[k, 1]` for pools retested in single tubes, `[k₁, k₂, 1]` for three stages.
    ///
    /// ```
    /// use pooltrack::planner::demand::Tubing;
    /// let t = Tubing::ThreeStage { pool_size: 20, retest_pool_size: 5 };
    /// assert_eq!(t.stage_sizes(), vec![20.0, 5.0, 1.0]);
    /// assert_eq!(Tubing::Single.stage_sizes(), vec![1.0]);
    /// ```
    pub fn stage_sizes(self) -> Vec<f64> {
        match self {
            Tubing::Single => vec![1.0],
            Tubing::ThreeStage {
                pool_size,
                retest_pool_size,
            } => vec![f64::from(pool_size), f64::from(retest_pool_size), 1.0],
            _ => vec![self.people_per_tube(), 1.0],
        }
    }

    /// The mode's name in the plan file and the output.
    pub fn name(self) -> &'static str {
        match self {
            Tubing::Single => "single",
            Tubing::Household { .. } => "household",
            Tubing::Pooled { .. } => "pooled",
            Tubing::MeasuredPool { .. } => "measured pools",
            Tubing::ThreeStage { .. } => "three-stage",
        }
    }

    /// A short label: `10:1`, `household 2.8`, `single`, `20→5→1`.
    pub fn label(self) -> String {
        match self {
            Tubing::Single => "single".to_owned(),
            Tubing::Household { household_size } => format!("household {household_size:.1}"),
            Tubing::Pooled { pool_size } => format!("{pool_size}:1"),
            Tubing::MeasuredPool { mean_fill } => format!("{mean_fill:.2}:1 measured"),
            Tubing::ThreeStage {
                pool_size,
                retest_pool_size,
            } => format!("{pool_size}→{retest_pool_size}→1"),
        }
    }
}

/// People sampled one way at one expected prevalence: a zone, or a routine group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The zone's or group's name.
    pub name: String,
    /// People in it.
    pub people: u64,
    /// How they are sampled.
    #[serde(flatten)]
    pub tubing: Tubing,
    /// Expected share infected, 0–1.
    pub prevalence: f64,
}

/// Share of `k`-person tubes that hold at least one positive swab at prevalence `p`.
///
/// ```
/// use pooltrack::planner::demand::positive_share;
/// // 1 − 0.999^10 = 1 − 0.990 044 880 = 0.009 955 12 (just under 1 %).
/// assert!((positive_share(0.001, 10.0) - 0.009_955_12).abs() < 1e-8);
/// ```
pub fn positive_share(p: f64, k: f64) -> f64 {
    1.0 - (1.0 - p).powf(k)
}

/// Dorfman's expected tests per person: 1/k + 1 − (1 − p)^k (1 for single tubes).
///
/// ```
/// use pooltrack::planner::demand::tests_per_person;
/// assert!((tests_per_person(0.001, 10.0) - 0.109_955_12).abs() < 1e-8);
/// assert_eq!(tests_per_person(0.05, 1.0), 1.0);
/// ```
pub fn tests_per_person(p: f64, k: f64) -> f64 {
    if k <= 1.0 {
        1.0
    } else {
        1.0 / k + positive_share(p, k)
    }
}

/// One group's tubes in a round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupDemand {
    /// The group.
    #[serde(flatten)]
    pub group: Group,
    /// First-stage pool tubes (pooled and household).
    pub pool_tubes: u64,
    /// First-stage single tubes.
    pub single_tubes: u64,
    /// Share of pool tubes expected positive.
    pub positive_share: f64,
    /// Expected positive pool tubes.
    pub positive_pools: f64,
    /// Expected retest tubes from them: single tubes, and for three stages also the
    /// second stage's pool tubes.
    pub retests: f64,
    /// Of the retests, pool tubes (the second stage of three).
    pub retest_pool_tubes: f64,
    /// People swabbed again for the retests (one swab each, per stage).
    pub retest_swabs: f64,
    /// Expected tests per person.
    pub tests_per_person: f64,
}

impl GroupDemand {
    /// Works out one group's tubes with a perfect test.
    ///
    /// ```
    /// use pooltrack::planner::demand::{Group, GroupDemand, Tubing};
    /// let g = Group {
    ///     name: "city".into(),
    ///     people: 25_000_000,
    ///     tubing: Tubing::Pooled { pool_size: 10 },
    ///     prevalence: 0.001,
    /// };
    /// let d = GroupDemand::of(&g);
    /// assert_eq!(d.pool_tubes, 2_500_000);
    /// assert_eq!(d.retests.round(), 248_878.0);
    /// ```
    pub fn of(group: &Group) -> GroupDemand {
        GroupDemand::under(group, &Assay::PERFECT)
    }

    /// Works out one group's tubes under `assay`. A measured round's pools are always
    /// counted with a perfect test: their prevalence is implied from the pools the round
    /// saw turn positive, which already holds the assay's misses and false alarms.
    ///
    /// ```
    /// use pooltrack::planner::assay::Assay;
    /// use pooltrack::planner::demand::{Group, GroupDemand, Tubing};
    /// let g = Group {
    ///     name: "zone".into(),
    ///     people: 1_000_000,
    ///     tubing: Tubing::Pooled { pool_size: 10 },
    ///     prevalence: 0.01,
    /// };
    /// let assay = Assay { sensitivity: 0.95, specificity: 0.99, pool_specificity: 0.99, ..Assay::PERFECT };
    /// let d = GroupDemand::under(&g, &assay);
    /// // 0.95 × (1 − 0.99¹⁰) + 0.01 × 0.99¹⁰ = 0.099 881 of 100,000 pools turn positive.
    /// assert_eq!(d.retests.round(), 99_881.0);
    /// assert!((d.tests_per_person - 0.199_881).abs() < 1e-6);
    /// ```
    pub fn under(group: &Group, assay: &Assay) -> GroupDemand {
        let sizes = group.tubing.stage_sizes();
        let k = group.tubing.people_per_tube();
        let people = f(group.people);
        let (pool_tubes, single_tubes) = match group.tubing {
            Tubing::Single => (0, group.people),
            _ => (ceil_u64(people / k), 0),
        };
        let assay = match group.tubing {
            Tubing::MeasuredPool { .. } => &Assay::PERFECT,
            _ => assay,
        };
        let c = assay.characteristics(group.prevalence, &sizes);
        let share = if pool_tubes == 0 {
            0.0
        } else {
            c.reach.get(1).copied().unwrap_or(0.0)
        };
        let positive_pools = f(pool_tubes) * share;
        let (mut retests, mut retest_pool_tubes, mut retest_swabs) = (0.0, 0.0, 0.0);
        if pool_tubes > 0 {
            for (s, &size) in sizes.iter().enumerate().skip(1) {
                let swabbed = f(pool_tubes) * c.reach[s] * k;
                let tubes = swabbed / size;
                retests += tubes;
                retest_swabs += swabbed;
                if size > 1.0 {
                    retest_pool_tubes += tubes;
                }
            }
        }
        GroupDemand {
            group: group.clone(),
            pool_tubes,
            single_tubes,
            positive_share: share,
            positive_pools,
            retests,
            retest_pool_tubes,
            retest_swabs,
            tests_per_person: c.tests_per_person,
        }
    }

    /// Expected tests (first stage plus retests), unrounded.
    pub fn tests(&self) -> f64 {
        f(self.pool_tubes) + f(self.single_tubes) + self.retests
    }

    /// Expected single tubes (first stage and retests), unrounded.
    pub(crate) fn single_tube_use(&self) -> f64 {
        f(self.single_tubes) + (self.retests - self.retest_pool_tubes)
    }

    /// Expected pool tubes (first stage and retests), unrounded.
    pub(crate) fn pool_tube_use(&self) -> f64 {
        f(self.pool_tubes) + self.retest_pool_tubes
    }
}

/// What a full round of some groups needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demand {
    /// Each group's tubes.
    pub groups: Vec<GroupDemand>,
    /// People in the round.
    pub people: u64,
    /// First-stage pool tubes.
    pub pool_tubes: u64,
    /// First-stage single tubes.
    pub single_tubes: u64,
    /// First-stage tubes, pool and single.
    pub first_stage_tubes: u64,
    /// Expected positive pool tubes.
    pub positive_pools: f64,
    /// Expected retests, rounded up.
    pub retests: u64,
    /// Tubes to test in the round: first stage plus retests (= PCR tests).
    pub tubes: u64,
    /// Swabs: people plus the people swabbed again for retests.
    pub swabs: u64,
    /// Single tubes used: single-mode people plus single-tube retests.
    pub single_tube_use: u64,
    /// Pool tubes used: first-stage pool tubes plus retest pools (three stages).
    pub pool_tube_use: u64,
}

impl Demand {
    /// Adds up the groups of a round.
    ///
    /// ```
    /// use pooltrack::planner::demand::{Demand, Group, Tubing};
    /// let groups = [
    ///     Group { name: "pooled".into(), people: 1_000, tubing: Tubing::Pooled { pool_size: 10 }, prevalence: 0.0 },
    ///     Group { name: "single".into(), people: 50, tubing: Tubing::Single, prevalence: 0.1 },
    /// ];
    /// let d = Demand::of(&groups);
    /// assert_eq!((d.pool_tubes, d.single_tubes, d.retests, d.tubes), (100, 50, 0, 150));
    /// ```
    pub fn of(groups: &[Group]) -> Demand {
        Demand::under(groups, &Assay::PERFECT)
    }

    /// Adds up the groups of a round under `assay` (see [`GroupDemand::under`]).
    pub fn under(groups: &[Group], assay: &Assay) -> Demand {
        let groups: Vec<GroupDemand> = groups
            .iter()
            .map(|g| GroupDemand::under(g, assay))
            .collect();
        let sum = |g: fn(&GroupDemand) -> u64| groups.iter().map(g).fold(0u64, u64::saturating_add);
        let people = sum(|g| g.group.people);
        let pool_tubes = sum(|g| g.pool_tubes);
        let single_tubes = sum(|g| g.single_tubes);
        let positive_pools = groups.iter().map(|g| g.positive_pools).sum();
        let retests = ceil_u64(groups.iter().map(|g| g.retests).sum::<f64>());
        let retest_swabs = ceil_u64(groups.iter().map(|g| g.retest_swabs).sum::<f64>());
        let retest_singles = ceil_u64(
            groups
                .iter()
                .map(|g| g.retests - g.retest_pool_tubes)
                .sum::<f64>(),
        );
        let retest_pools = ceil_u64(groups.iter().map(|g| g.retest_pool_tubes).sum::<f64>());
        let first_stage_tubes = pool_tubes.saturating_add(single_tubes);
        Demand {
            people,
            pool_tubes,
            single_tubes,
            first_stage_tubes,
            positive_pools,
            retests,
            tubes: first_stage_tubes.saturating_add(retests),
            swabs: people.saturating_add(retest_swabs),
            single_tube_use: single_tubes.saturating_add(retest_singles),
            pool_tube_use: pool_tubes.saturating_add(retest_pools),
            groups,
        }
    }

    /// The people-weighted mean prevalence of the groups (0 without people).
    pub(crate) fn mean_prevalence(&self) -> f64 {
        if self.people == 0 {
            return 0.0;
        }
        let weighted: f64 = self
            .groups
            .iter()
            .map(|g| f(g.group.people) * g.group.prevalence)
            .sum();
        weighted / f(self.people)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(people: u64, tubing: Tubing, prevalence: f64) -> Group {
        Group {
            name: "g".into(),
            people,
            tubing,
            prevalence,
        }
    }

    #[test]
    fn shanghai_sized_round_at_ten_to_one() {
        // 25,000,000 people, 10 to a tube, prevalence 0.1 %:
        //   pools          = 25,000,000 / 10                       = 2,500,000
        //   0.999^10       = 1 − 10·0.001 + 45·0.001² − 120·0.001³ + 210·0.001⁴ − …
        //                  = 1 − 0.01 + 0.000045 − 0.00000012 + 0.00000000021
        //                  = 0.990 044 880 2
        //   positive share = 1 − 0.990 044 880 2                   = 0.009 955 119 8 (0.9955 %)
        //   positive pools = 2,500,000 × 0.009 955 119 8           = 24,887.80
        //   retests        = 24,887.80 × 10                        = 248,877.99 → 248,878
        //   tubes          = 2,500,000 + 248,878                   = 2,748,878
        //   tests/person   = 1/10 + 0.009 955 12                   = 0.109 955 12
        // (issue 4's brief quoted ≈24,886 pools and 248,855 retests; the expansion above
        // gives 24,888 and 248,878.)
        let d = Demand::of(&[group(25_000_000, Tubing::Pooled { pool_size: 10 }, 0.001)]);
        let g = &d.groups[0];
        assert_eq!(g.pool_tubes, 2_500_000);
        assert!((g.positive_share - 0.009_955_119_8).abs() < 1e-10);
        assert!((g.positive_pools - 24_887.80).abs() < 0.01);
        assert!((g.retests - 248_877.99).abs() < 0.01);
        assert_eq!(d.retests, 248_878);
        assert_eq!(d.tubes, 2_748_878);
        assert!((g.tests_per_person - 0.109_955_12).abs() < 1e-8);
        // Swabs: everyone once, and every recalled person again.
        assert_eq!(d.swabs, 25_248_878);
        assert_eq!(d.single_tube_use, 248_878);
    }

    #[test]
    fn twenty_to_one_halves_the_pools_and_doubles_the_retests_roughly() {
        // 25,000,000 at 20:1, p = 0.001:
        //   pools          = 1,250,000
        //   0.999^20       = 1 − 0.02 + 190·10⁻⁶ − 1140·10⁻⁹ + 4845·10⁻¹² − … = 0.980 188 865
        //   positive share = 0.019 811 135
        //   positive pools = 1,250,000 × 0.019 811 135 = 24,763.92
        //   retests        = 24,763.92 × 20 = 495,278.4 → 495,279
        //   tubes          = 1,250,000 + 495,279 = 1,745,279
        let d = Demand::of(&[group(25_000_000, Tubing::Pooled { pool_size: 20 }, 0.001)]);
        assert_eq!(d.pool_tubes, 1_250_000);
        assert!((d.positive_pools - 24_763.92).abs() < 0.01);
        assert_eq!(d.retests, 495_279);
        assert_eq!(d.tubes, 1_745_279);
    }

    #[test]
    fn households_use_the_mean_size() {
        // 30,000 people in households of 3 on average, p = 1 %:
        //   tubes          = 30,000 / 3 = 10,000
        //   0.99^3         = 0.970 299
        //   positive share = 0.029 701
        //   positive tubes = 297.01; retests = 297.01 × 3 = 891.03 → 892
        let d = Demand::of(&[group(
            30_000,
            Tubing::Household {
                household_size: 3.0,
            },
            0.01,
        )]);
        assert_eq!(d.pool_tubes, 10_000);
        assert!((d.positive_pools - 297.01).abs() < 1e-6);
        assert_eq!(d.retests, 892);
        assert_eq!(d.tubes, 10_892);
    }

    #[test]
    fn single_tubes_bring_no_retests_and_partial_pools_count() {
        let d = Demand::of(&[
            group(100_000, Tubing::Single, 0.05),
            // 1,001 people at 5:1 need 201 tubes: 200 full and one with a single swab.
            group(1_001, Tubing::Pooled { pool_size: 5 }, 0.0),
        ]);
        assert_eq!(d.single_tubes, 100_000);
        assert_eq!(d.pool_tubes, 201);
        assert_eq!(d.retests, 0);
        assert_eq!(d.tubes, 100_201);
        assert!((d.mean_prevalence() - 0.05 * 100_000.0 / 101_001.0).abs() < 1e-12);
    }

    #[test]
    fn a_certain_positive_recalls_everyone() {
        let d = Demand::of(&[group(100, Tubing::Pooled { pool_size: 10 }, 1.0)]);
        assert_eq!(d.retests, 100);
        assert_eq!(d.tubes, 110);
    }
}
