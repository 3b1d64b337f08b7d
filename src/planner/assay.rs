//! The test's accuracy, and what it makes of a pooling scheme: expected tests, stages,
//! sensitivity and specificity of hierarchical pooling (Dorfman's two stages, and
//! three stages such as 20 → 5 → 1).
//!
//! ## The assay
//!
//! An [`Assay`] holds a single tube's sensitivity `Se₁` and specificity `Sp₁`, a pool
//! tube's specificity, and the dilution effect on a pool's sensitivity: a pool of `k`
//! swabs holds each swab diluted `k`-fold, which raises its Ct by about log₂ k, so the
//! weakest positives fall past the cut-off. A pool of `k` has sensitivity
//!
//! - the plan's (or a measured) figure for that pool size when there is one, else
//! - `Se(k) = Se₁ − loss × log₂ k`, clamped to 0–1 (`loss` per doubling of the pool).
//!
//! Without an `[assay]` in the plan the test is perfect (`Se = Sp = 1`, no loss): the
//! arithmetic the planner has always done, so a plan that states no assay keeps its
//! figures.
//!
//! ## A scheme's operating characteristics
//!
//! A hierarchical scheme tests pools of `k₁` persons; a positive pool's persons are
//! swabbed again and tested in pools of `k₂` (dividing `k₁`), and so on to single tubes
//! (`k_S = 1`). Every stage takes new swabs, so each stage's result is taken as
//! independent of the others given who in the pool is infected (the standard model of
//! hierarchical pooling with an imperfect test, as binGroup2 uses). A pool tests
//! positive with probability `Se_s` when it holds at least one infected person and
//! `1 − Sp_s` when it holds none; `Se_s` depends on the pool size, not on how many of
//! its persons are infected. With `q = 1 − p` at prevalence `p`:
//!
//! **A chain of nested pools all testing positive.** Take pools `P₁ ⊃ P₂ ⊃ … ⊃ P_n`
//! holding `m₁ ≥ m₂ ≥ … ≥ m_n` persons who may be infected. Exactly the first `j` of
//! them hold an infected person with probability `q^{m_{j+1}} − q^{m_j}` (with
//! `q^{m_0} = 0` and `q^{m_{n+1}} = 1`); then the first `j` tests are positive with
//! probability `Se₁ ⋯ Se_j` and the others are false positives with probability
//! `(1 − Sp_{j+1}) ⋯ (1 − Sp_n)`. So
//!
//! ```text
//! C(m₁..m_n) = Σ_{j=0..n} (q^{m_{j+1}} − q^{m_j}) · Π_{i≤j} Se_i · Π_{i>j} (1 − Sp_i)
//! ```
//!
//! **Reach and tests.** A stage-`s` pool is tested when all its ancestors test
//! positive: `A_s = C(k₁..k_{s−1})`, `A₁ = 1`. Each person is in one pool per stage,
//! so a share `A_s` of the people is swabbed at stage `s`, in `A_s / k_s` tubes per
//! person:
//!
//! - tests per person `T = Σ_s A_s / k_s`;
//! - stages per person `E = Σ_s A_s` (the last stage a person reaches gives their
//!   final result).
//!
//! **Sensitivity.** An infected person is in every pool of their chain, so the scheme
//! finds them with probability `Se₁ · Se₂ ⋯ Se_S`.
//!
//! **Specificity.** An uninfected person is called positive when every test of their
//! chain is positive; their stage-`s` pool holds `k_s − 1` others, so the scheme's
//! specificity is `1 − C(k₁ − 1, …, k_S − 1)` (the last stage, a single tube, holds no
//! other: its test is positive only falsely, `1 − Sp_S`).
//!
//! **Dorfman (two stages, `[k, 1]`)** with the same `Se`, `Sp` at both stages:
//! `A₂ = Se (1 − q^k) + (1 − Sp) q^k`, so `T = 1/k + Se − (Se + Sp − 1) q^k`; with a
//! perfect test `1/k + 1 − q^k`. Sensitivity `Se₁ Se₂`; specificity
//! `1 − (1 − Sp₂)(Se₁ (1 − q^{k−1}) + (1 − Sp₁) q^{k−1})`.
//!
//! **Three stages `[k₁, k₂, 1]`**: `A₂ = Se₁ (1 − q^{k₁}) + (1 − Sp₁) q^{k₁}` and
//! `A₃ = Se₁ Se₂ (1 − q^{k₂}) + Se₁ (1 − Sp₂)(q^{k₂} − q^{k₁}) + (1 − Sp₁)(1 − Sp₂) q^{k₁}`,
//! `T = 1/k₁ + A₂/k₂ + A₃`; sensitivity `Se₁ Se₂ Se₃`.
//!
//! ```
//! use pooltrack::planner::assay::hierarchical;
//! // [9, 3, 1] at p = 5 % with a perfect test: 0.95⁹ = 0.630 249, 0.95³ = 0.857 375,
//! // so per 9 persons 1 + 3 × 0.369 751 + 9 × 0.142 625 = 3.39 tests.
//! let c = hierarchical(0.05, &[9.0, 3.0, 1.0], &[1.0; 3], &[1.0; 3]);
//! assert!((c.tests_per_person * 9.0 - 3.392_877).abs() < 1e-6);
//! ```

use serde::Serialize;

/// A pool's sensitivity at one pool size, and where the figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSensitivity {
    /// People per pool tube.
    pub pool_size: u8,
    /// The share of pools holding an infected person that test positive.
    pub sensitivity: f64,
    /// `plan` for the plan file's figure, else what measured it (for example a round's
    /// Ct values).
    pub source: String,
}

/// The test's accuracy, per kind of tube.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assay {
    /// A single tube's sensitivity (the last stage of every scheme).
    pub sensitivity: f64,
    /// A single tube's specificity.
    pub specificity: f64,
    /// A pool tube's specificity, at any pool size.
    pub pool_specificity: f64,
    /// Sensitivity lost per doubling of the pool: `Se(k) = Se₁ − loss × log₂ k`.
    pub dilution_loss_per_log2: f64,
    /// Sensitivities stated (or measured) for particular pool sizes; they take the
    /// place of the dilution line for those sizes.
    pub pool_sensitivity: Vec<PoolSensitivity>,
}

impl Default for Assay {
    fn default() -> Self {
        Assay::PERFECT
    }
}

impl Assay {
    /// A test that finds every infected swab and no other, whatever the pool.
    pub const PERFECT: Assay = Assay {
        sensitivity: 1.0,
        specificity: 1.0,
        pool_specificity: 1.0,
        dilution_loss_per_log2: 0.0,
        pool_sensitivity: Vec::new(),
    };

    /// Whether every figure is 1 (and no dilution loss): the planner's old assumption.
    pub fn is_perfect(&self) -> bool {
        self.sensitivity >= 1.0
            && self.specificity >= 1.0
            && self.pool_specificity >= 1.0
            && self.dilution_loss_per_log2 <= 0.0
            && self.pool_sensitivity.iter().all(|s| s.sensitivity >= 1.0)
    }

    fn stated(&self, k: f64) -> Option<&PoolSensitivity> {
        self.pool_sensitivity
            .iter()
            .find(|s| f64::from(s.pool_size) == k)
    }

    /// The sensitivity of a tube of `k` persons' swabs (`k` ≤ 1: a single tube).
    ///
    /// ```
    /// use pooltrack::planner::assay::Assay;
    /// let a = Assay { sensitivity: 0.98, dilution_loss_per_log2: 0.01, ..Assay::PERFECT };
    /// // 0.98 − 0.01 × log₂ 8 = 0.98 − 0.03 = 0.95
    /// assert!((a.sensitivity_at(8.0) - 0.95).abs() < 1e-12);
    /// assert_eq!(a.sensitivity_at(1.0), 0.98);
    /// ```
    pub fn sensitivity_at(&self, k: f64) -> f64 {
        if k <= 1.0 {
            return self.sensitivity;
        }
        match self.stated(k) {
            Some(s) => s.sensitivity,
            None => (self.sensitivity - self.dilution_loss_per_log2 * k.log2()).clamp(0.0, 1.0),
        }
    }

    /// The specificity of a tube of `k` persons' swabs.
    pub fn specificity_at(&self, k: f64) -> f64 {
        if k <= 1.0 {
            self.specificity
        } else {
            self.pool_specificity
        }
    }

    /// Where the sensitivity at `k` comes from, in words.
    pub fn sensitivity_source(&self, k: f64) -> String {
        if k <= 1.0 {
            return "a single tube".to_owned();
        }
        match self.stated(k) {
            Some(s) if s.source == "plan" => "the plan's pool_sensitivity".to_owned(),
            Some(s) => s.source.clone(),
            None if self.dilution_loss_per_log2 > 0.0 => format!(
                "{} − {} × log2 {k}",
                self.sensitivity, self.dilution_loss_per_log2
            ),
            None => "no dilution loss stated".to_owned(),
        }
    }

    /// This assay with measured pool sensitivities in place of the plan's for their
    /// pool sizes: the seam through which a round's measurement (the Ct values of its
    /// single-tube positives, against each pool size's log₂ k shift) replaces the plan
    /// file's assumption.
    ///
    /// ```
    /// use pooltrack::planner::assay::{Assay, PoolSensitivity};
    /// let plan = Assay { sensitivity: 0.98, dilution_loss_per_log2: 0.01, ..Assay::PERFECT };
    /// let measured = plan.with_measured(&[PoolSensitivity {
    ///     pool_size: 10, sensitivity: 0.9, source: "round R".into(),
    /// }]);
    /// assert_eq!(measured.sensitivity_at(10.0), 0.9);
    /// assert_eq!(measured.sensitivity_source(10.0), "round R");
    /// assert_eq!(measured.sensitivity_at(5.0), plan.sensitivity_at(5.0));
    /// ```
    #[must_use]
    pub fn with_measured(&self, measured: &[PoolSensitivity]) -> Assay {
        let mut a = self.clone();
        for m in measured {
            let se = if m.sensitivity.is_finite() {
                m.sensitivity.clamp(0.0, 1.0)
            } else {
                continue;
            };
            a.pool_sensitivity.retain(|s| s.pool_size != m.pool_size);
            a.pool_sensitivity.push(PoolSensitivity {
                sensitivity: se,
                ..m.clone()
            });
        }
        a.pool_sensitivity.sort_by_key(|s| s.pool_size);
        a
    }

    /// The operating characteristics of a scheme whose stages hold `sizes` persons per
    /// tube (largest first, the last usually 1) at prevalence `p`, under this assay.
    pub fn characteristics(&self, p: f64, sizes: &[f64]) -> Characteristics {
        let se: Vec<f64> = sizes.iter().map(|&k| self.sensitivity_at(k)).collect();
        let sp: Vec<f64> = sizes.iter().map(|&k| self.specificity_at(k)).collect();
        hierarchical(p, sizes, &se, &sp)
    }
}

/// What a scheme does per person, on average.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Characteristics {
    /// The share of people swabbed and tested at each stage (1 at the first).
    pub reach: Vec<f64>,
    /// Expected tubes tested per person.
    pub tests_per_person: f64,
    /// Expected stages a person takes part in (their result comes with the last).
    pub stages_per_person: f64,
    /// The share of infected people the scheme calls positive.
    pub sensitivity: f64,
    /// The share of uninfected people the scheme calls negative.
    pub specificity: f64,
}

/// The probability that every test of a chain of nested pools is positive, the pools
/// holding `m[i]` persons who may be infected (see the module docs).
fn chain_positive(q: f64, m: &[f64], se: &[f64], sp: &[f64]) -> f64 {
    let n = m.len();
    let clean = |i: usize| if i >= n { 1.0 } else { q.powf(m[i]) };
    let mut total = 0.0;
    for j in 0..=n {
        // Exactly the first j pools hold an infected person.
        let mut term = clean(j) - if j == 0 { 0.0 } else { clean(j - 1) };
        for i in 0..n {
            let s = if i < j {
                se.get(i).copied().unwrap_or(1.0)
            } else {
                1.0 - sp.get(i).copied().unwrap_or(1.0)
            };
            term *= s;
        }
        total += term;
    }
    total.clamp(0.0, 1.0)
}

/// The operating characteristics of hierarchical pooling with `sizes[s]` persons per
/// tube at stage `s` and that stage's sensitivity `se[s]` and specificity `sp[s]`, at
/// prevalence `p` (see the module docs for the formulas).
///
/// ```
/// use pooltrack::planner::assay::hierarchical;
/// // Dorfman at p = 1 %, k = 10, Se = 0.95, Sp = 0.99:
/// // 1/10 + 0.95 − (0.95 + 0.99 − 1) × 0.99¹⁰ = 0.1 + 0.95 − 0.94 × 0.904 382 = 0.1999
/// let c = hierarchical(0.01, &[10.0, 1.0], &[0.95, 0.95], &[0.99, 0.99]);
/// assert!((c.tests_per_person - 0.199_881).abs() < 1e-6);
/// assert!((c.sensitivity - 0.9025).abs() < 1e-12);
/// ```
pub fn hierarchical(p: f64, sizes: &[f64], se: &[f64], sp: &[f64]) -> Characteristics {
    let q = 1.0 - p.clamp(0.0, 1.0);
    let mut reach = Vec::with_capacity(sizes.len());
    let mut tests_per_person = 0.0;
    for s in 0..sizes.len() {
        let a = if s == 0 {
            1.0
        } else {
            chain_positive(q, &sizes[..s], se, sp)
        };
        let k = sizes[s].max(1.0);
        tests_per_person += a / k;
        reach.push(a);
    }
    let others: Vec<f64> = sizes.iter().map(|k| (k - 1.0).max(0.0)).collect();
    let sensitivity = se.iter().take(sizes.len()).product();
    Characteristics {
        stages_per_person: reach.iter().sum(),
        reach,
        tests_per_person,
        sensitivity,
        specificity: 1.0 - chain_positive(q, &others, se, sp),
    }
}

/// Dorfman's expected tests per person for pools of `k` with the same `se` and `sp` at
/// both stages: `1/k + Se − (Se + Sp − 1)(1 − p)^k`; 1 for `k` ≤ 1 (single tubes).
///
/// ```
/// use pooltrack::planner::assay::dorfman_tests_per_person;
/// // A perfect test at p = 0.1 %, k = 10: 1/10 + 1 − 0.999¹⁰ = 0.1100.
/// assert!((dorfman_tests_per_person(0.001, 10.0, 1.0, 1.0) - 0.109_955).abs() < 1e-6);
/// ```
pub fn dorfman_tests_per_person(p: f64, k: f64, se: f64, sp: f64) -> f64 {
    if k <= 1.0 {
        return 1.0;
    }
    hierarchical(p, &[k, 1.0], &[se, se], &[sp, sp]).tests_per_person
}

/// The pool size from 1 (single tubes) to `max_k` with the fewest expected tests per
/// person under Dorfman's scheme, and that figure; the smaller size wins a tie. Every
/// size is tried, validated or not: this answers the textbook question, and the
/// advisor (which offers only validated sizes) checks itself against it.
///
/// ```
/// use pooltrack::planner::assay::best_pool_size;
/// let (k, t) = best_pool_size(0.01, 1.0, 1.0, 100);
/// assert_eq!(k, 11);
/// assert!((t - 0.1956).abs() < 5e-5);
/// ```
pub fn best_pool_size(p: f64, se: f64, sp: f64, max_k: u32) -> (u32, f64) {
    let mut best = (1, 1.0);
    for k in 2..=max_k.max(1) {
        let t = dorfman_tests_per_person(p, f64::from(k), se, sp);
        if t < best.1 {
            best = (k, t);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn dorfman_with_a_perfect_test_matches_the_textbook() {
        // The figures of issue 19, from 1/k + 1 − (1 − p)^k.
        let (k, t) = best_pool_size(0.01, 1.0, 1.0, 200);
        assert_eq!(k, 11);
        assert!(close(t, 0.1956, 5e-5), "{t}");
        let (k, t) = best_pool_size(0.05, 1.0, 1.0, 200);
        assert_eq!(k, 5);
        assert!(close(t, 0.4262, 5e-5), "{t}");
        let (k, t) = best_pool_size(0.10, 1.0, 1.0, 200);
        assert_eq!(k, 4);
        assert!(close(t, 0.5939, 5e-5), "{t}");
        assert!(close(
            dorfman_tests_per_person(0.001, 10.0, 1.0, 1.0),
            0.1100,
            5e-5
        ));
        // Above about 30 % pooling loses to single tubes.
        assert_eq!(best_pool_size(0.35, 1.0, 1.0, 200).0, 1);
    }

    #[test]
    fn dorfman_with_sensitivity_and_specificity() {
        let t = dorfman_tests_per_person(0.01, 10.0, 0.95, 0.99);
        assert!(close(t, 0.1999, 5e-5), "{t}");
        // The closed form, written out: 1/k + Se − (Se + Sp − 1)(1 − p)^k.
        let closed = 0.1 + 0.95 - (0.95 + 0.99 - 1.0) * 0.99_f64.powi(10);
        assert!(close(t, closed, 1e-12));
    }

    #[test]
    fn three_stages_nine_three_one() {
        let c = hierarchical(0.05, &[9.0, 3.0, 1.0], &[1.0; 3], &[1.0; 3]);
        assert!(close(c.tests_per_person * 9.0, 3.39, 5e-3), "{c:?}");
        assert_eq!(c.sensitivity, 1.0);
        assert_eq!(c.specificity, 1.0);
    }

    #[test]
    fn a_single_tube_is_the_assay_itself() {
        let c = hierarchical(0.2, &[1.0], &[0.9], &[0.97]);
        assert_eq!(c.tests_per_person, 1.0);
        assert_eq!(c.stages_per_person, 1.0);
        assert!(close(c.sensitivity, 0.9, 1e-15));
        assert!(close(c.specificity, 0.97, 1e-15));
    }

    fn fl(n: usize) -> f64 {
        f64::from(u32::try_from(n).expect("a small count"))
    }

    type Case<'a> = (f64, &'a [usize], &'a [f64], &'a [f64]);

    /// An independent computation: enumerate every infection pattern of one first-stage
    /// pool, and for each, the expected tests and each person's chance of being called
    /// positive, straight from the scheme's steps (no closed form).
    fn enumerate(p: f64, sizes: &[usize], se: &[f64], sp: &[f64]) -> (f64, f64, f64) {
        let k1 = sizes[0];
        let (mut tests, mut called_pos, mut called_neg) = (0.0, 0.0, 0.0);
        let (mut w_pos, mut w_neg) = (0.0, 0.0);
        for pattern in 0u32..(1 << k1) {
            let infected = |i: usize| pattern >> i & 1 == 1;
            let weight: f64 = (0..k1)
                .map(|i| if infected(i) { p } else { 1.0 - p })
                .product();
            let positive = |lo: usize, len: usize, s: usize| {
                if (lo..lo + len).any(infected) {
                    se[s]
                } else {
                    1.0 - sp[s]
                }
            };
            // Expected tests of the pool [lo, lo + len) at stage s and below.
            fn expect(
                lo: usize,
                s: usize,
                sizes: &[usize],
                pos: &dyn Fn(usize, usize, usize) -> f64,
            ) -> f64 {
                let len = sizes[s];
                let mut t = 1.0;
                if s + 1 < sizes.len() {
                    let pr = pos(lo, len, s);
                    let next = sizes[s + 1];
                    let below: f64 = (0..len / next)
                        .map(|c| expect(lo + c * next, s + 1, sizes, pos))
                        .sum();
                    t += pr * below;
                }
                t
            }
            tests += weight * expect(0, 0, sizes, &positive);
            for person in 0..k1 {
                // Every pool of the person's chain must test positive.
                let mut pr = 1.0;
                for (s, &len) in sizes.iter().enumerate() {
                    let lo = person / len * len;
                    pr *= positive(lo, len, s);
                }
                if infected(person) {
                    called_pos += weight * pr;
                    w_pos += weight;
                } else {
                    called_neg += weight * (1.0 - pr);
                    w_neg += weight;
                }
            }
        }
        (tests / fl(k1), called_pos / w_pos, called_neg / w_neg)
    }

    #[test]
    fn the_closed_form_agrees_with_enumeration() {
        let cases: [Case<'_>; 5] = [
            (0.05, &[6, 1], &[0.93, 0.98], &[0.99, 0.995]),
            (0.02, &[8, 4, 1], &[0.9, 0.94, 0.97], &[0.98, 0.985, 0.99]),
            (0.10, &[6, 2, 1], &[0.85, 0.9, 0.95], &[0.97, 0.99, 0.999]),
            (0.30, &[4, 2, 1], &[0.8, 0.9, 0.99], &[0.9, 0.95, 0.99]),
            (0.01, &[12, 6, 3, 1], &[0.9, 0.92, 0.95, 0.98], &[0.99; 4]),
        ];
        for (p, sizes, se, sp) in cases {
            let (t, sens, spec) = enumerate(p, sizes, se, sp);
            let fsizes: Vec<f64> = sizes.iter().map(|&k| fl(k)).collect();
            let c = hierarchical(p, &fsizes, se, sp);
            assert!(
                close(c.tests_per_person, t, 1e-12),
                "{sizes:?}: {c:?} vs {t}"
            );
            assert!(close(c.sensitivity, sens, 1e-12), "{sizes:?}");
            assert!(
                close(c.specificity, spec, 1e-12),
                "{sizes:?}: {c:?} vs {spec}"
            );
        }
    }

    #[test]
    fn the_dilution_line_and_stated_sizes() {
        let a = Assay {
            sensitivity: 0.98,
            dilution_loss_per_log2: 0.01,
            pool_sensitivity: vec![PoolSensitivity {
                pool_size: 10,
                sensitivity: 0.95,
                source: "plan".into(),
            }],
            ..Assay::PERFECT
        };
        assert!(close(a.sensitivity_at(4.0), 0.96, 1e-12));
        assert_eq!(a.sensitivity_at(10.0), 0.95);
        assert_eq!(a.sensitivity_source(10.0), "the plan's pool_sensitivity");
        assert_eq!(a.sensitivity_source(4.0), "0.98 − 0.01 × log2 4");
        // A loss that would go below 0 stops at 0.
        let steep = Assay {
            dilution_loss_per_log2: 0.5,
            ..Assay::PERFECT
        };
        assert_eq!(steep.sensitivity_at(16.0), 0.0);
        assert!(!a.is_perfect());
        assert!(Assay::PERFECT.is_perfect());
        // A measured figure that is not a number is ignored, not propagated.
        let m = a.with_measured(&[PoolSensitivity {
            pool_size: 5,
            sensitivity: f64::NAN,
            source: "x".into(),
        }]);
        assert_eq!(m, a);
    }

    #[test]
    fn extreme_prevalences_stay_within_bounds() {
        for p in [0.0, 1e-12, 0.5, 1.0, -1.0, 2.0] {
            let c = hierarchical(p, &[20.0, 5.0, 1.0], &[0.9, 0.95, 0.98], &[0.99; 3]);
            assert!(c.tests_per_person.is_finite() && c.tests_per_person >= 0.0);
            assert!((0.0..=1.0).contains(&c.specificity), "{p}: {c:?}");
            assert!(c.reach.iter().all(|a| (0.0..=1.0).contains(a)));
        }
    }
}
