//! The maximum-likelihood prevalence from tubes of mixed sizes, and its
//! likelihood-ratio interval.
//!
//! A tube of `k` persons, each infected with probability `p` on their own, holds no
//! infected person with probability `(1 − p)^k`. With an assay of sensitivity `Se` and
//! specificity `Sp` it reads positive with probability
//!
//! ```text
//! π_k(p) = Se·(1 − (1 − p)^k) + (1 − Sp)·(1 − p)^k
//! ```
//!
//! so tubes give the log-likelihood `ℓ(p) = Σ_k pos_k·ln π_k(p) + neg_k·ln(1 − π_k(p))`:
//! it needs only the counts of positive and negative tubes of each size, whatever the
//! number of tubes. [`estimate`] maximises it over `[0, 1]` (a scan of a grid that is
//! fine near 0, then golden-section search within the best grid cell, so a boundary
//! maximum — every tube negative, p̂ = 0 — is found as well as an inner one) and gives
//! the **95 % likelihood-ratio interval**: the `p` with `2·(ℓ(p̂) − ℓ(p)) ≤ 3.841`, the
//! 95 % point of χ² with one degree of freedom, found by bisection on each side.
//!
//! Why the likelihood ratio and not the Wald interval `p̂ ± 1.96·se`: at the prevalences
//! of a screening round (a few per 10,000) the likelihood is far from a parabola; the
//! Wald interval is symmetric, reaches below 0, and is empty (zero width) when no tube
//! is positive, where the likelihood ratio still gives an upper bound (about
//! 1.92 / (persons) for an all-negative round of a perfect assay, the "rule of 3"'s
//! likelihood cousin). Its coverage stays near 95 % down to a handful of positives.

use serde::Serialize;

use crate::{Error, Result};

/// The 95 % point of χ² with one degree of freedom.
pub const CHI2_95: f64 = 3.841_458_820_694_124;

/// The assay's sensitivity and specificity, per tube.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Assay {
    /// Probability that a tube holding an infected person reads positive.
    pub sensitivity: f64,
    /// Probability that a tube holding no infected person reads negative.
    pub specificity: f64,
}

impl Default for Assay {
    /// A perfect assay: sensitivity 1, specificity 1.
    fn default() -> Self {
        Assay {
            sensitivity: 1.0,
            specificity: 1.0,
        }
    }
}

impl Assay {
    /// Checks that both are in (0, 1] and that a positive tube says something
    /// (sensitivity + specificity > 1).
    ///
    /// ```
    /// use pooltrack::prevalence::Assay;
    /// assert!(Assay { sensitivity: 0.95, specificity: 0.99 }.check().is_ok());
    /// assert!(Assay { sensitivity: 0.4, specificity: 0.5 }.check().is_err());
    /// ```
    pub fn check(self) -> Result<Assay> {
        for (what, v) in [
            ("sensitivity", self.sensitivity),
            ("specificity", self.specificity),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(Error::Usage(format!(
                    "the {what} must be above 0 and at most 1, not {v}"
                )));
            }
        }
        if self.sensitivity + self.specificity <= 1.0 {
            return Err(Error::Usage(format!(
                "sensitivity {} + specificity {} must exceed 1, or a positive tube says nothing about prevalence",
                self.sensitivity, self.specificity
            )));
        }
        Ok(self)
    }
}

/// Tubes of one size: how many read positive and negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SizeCount {
    /// Persons in each tube.
    pub size: u32,
    /// Tubes that read positive.
    pub positive: u64,
    /// Tubes that read negative.
    pub negative: u64,
}

/// A prevalence estimate and its 95 % likelihood-ratio interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The maximum-likelihood prevalence.
    pub prevalence: f64,
    /// The interval's lower end (0 when p = 0 is inside it).
    pub lower: f64,
    /// The interval's upper end.
    pub upper: f64,
}

/// The log-likelihood of prevalence `p` (see the module docs).
///
/// ```
/// use pooltrack::prevalence::{Assay, SizeCount, log_likelihood};
/// // One positive and two negative tubes of 10, a perfect assay:
/// // ℓ(p) = ln(1 − (1 − p)^10) + 2 · 10 · ln(1 − p).
/// let tubes = [SizeCount { size: 10, positive: 1, negative: 2 }];
/// let p: f64 = 0.04;
/// let want = (1.0 - (1.0 - p).powi(10)).ln() + 20.0 * (1.0 - p).ln();
/// assert!((log_likelihood(p, &tubes, Assay::default()) - want).abs() < 1e-12);
/// ```
pub fn log_likelihood(p: f64, tubes: &[SizeCount], assay: Assay) -> f64 {
    let (se, sp) = (assay.sensitivity, assay.specificity);
    let c = se + sp - 1.0;
    let ln_q = (-p).ln_1p();
    tubes
        .iter()
        .map(|t| {
            let lqk = f64::from(t.size) * ln_q;
            // 1 − q^k without cancellation near p = 0.
            let some = -lqk.exp_m1();
            let positive = if sp >= 1.0 {
                c.ln() + some.ln()
            } else {
                ((1.0 - sp) + c * some).ln()
            };
            let negative = if se >= 1.0 {
                c.ln() + lqk
            } else {
                ((1.0 - se) + c * lqk.exp()).ln()
            };
            // 0 · ln 0 = 0: no positive tube says nothing of ln π.
            let term = |n: u64, ln: f64| if n == 0 { 0.0 } else { count(n) * ln };
            term(t.positive, positive) + term(t.negative, negative)
        })
        .sum()
}

/// The derivative of [`log_likelihood`] in `p` (the score), for `p` in (0, 1).
fn score(p: f64, tubes: &[SizeCount], assay: Assay) -> f64 {
    let (se, sp) = (assay.sensitivity, assay.specificity);
    let c = se + sp - 1.0;
    let ln_q = (-p).ln_1p();
    tubes
        .iter()
        .map(|t| {
            let k = f64::from(t.size);
            let lqk = k * ln_q;
            // dπ/dp = c·k·q^(k−1)
            let slope = c * k * ((k - 1.0) * ln_q).exp();
            let positive = (1.0 - sp) + c * -lqk.exp_m1();
            let negative = (1.0 - se) + c * lqk.exp();
            let term = |n: u64, v: f64| if n == 0 { 0.0 } else { count(n) * v };
            term(t.positive, slope / positive) - term(t.negative, slope / negative)
        })
        .sum()
}

/// A count as a float (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn count(n: u64) -> f64 {
    n as f64
}

/// The grid [`estimate`] scans: 0, then ratios of 10^0.01 from 10^−10 up, and steps of
/// 1/400 across \[0, 1\] where the ratios grow coarser than that.
fn grid() -> Vec<f64> {
    let mut g = vec![0.0];
    let mut x = 1e-10_f64;
    while x < 1.0 {
        g.push(x);
        x *= 10f64.powf(0.01);
    }
    g.extend((1..=400).map(|i| f64::from(i) / 400.0));
    g.sort_by(f64::total_cmp);
    // Points closer than a millionth of their size (a power of ten on both scales)
    // would make a best grid cell too narrow to hold the maximum.
    g.dedup_by(|a, b| (*a - *b).abs() <= 1e-6 * b.abs());
    g
}

/// Golden-section search for the maximum of `f` on `[a, b]`.
fn golden_max(f: &dyn Fn(f64) -> f64, mut a: f64, mut b: f64) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..200 {
        if b - a <= 1e-15 + 1e-13 * a.abs() {
            break;
        }
        if fc >= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    f64::midpoint(a, b)
}

/// Bisection for the `p` between `inside` (`f ≥ cut`) and `outside` (`f < cut`) where
/// `f` crosses `cut`.
fn crossing(f: &dyn Fn(f64) -> f64, cut: f64, mut inside: f64, mut outside: f64) -> f64 {
    for _ in 0..200 {
        let mid = f64::midpoint(inside, outside);
        if mid == inside || mid == outside {
            break;
        }
        if f(mid) >= cut {
            inside = mid;
        } else {
            outside = mid;
        }
    }
    f64::midpoint(inside, outside)
}

/// The maximum-likelihood prevalence and its 95 % likelihood-ratio interval from
/// tubes of mixed sizes; `None` without a tube (or with an assay [`Assay::check`]
/// refuses).
///
/// ```
/// use pooltrack::prevalence::{Assay, SizeCount, estimate};
/// // Three tubes of 10, one positive: p̂ = 1 − (2/3)^(1/10).
/// let tubes = [SizeCount { size: 10, positive: 1, negative: 2 }];
/// let e = estimate(&tubes, Assay::default()).expect("tubes");
/// assert!((e.prevalence - (1.0 - (2.0f64 / 3.0).powf(0.1))).abs() < 1e-9);
/// assert!(e.lower < e.prevalence && e.prevalence < e.upper);
/// // Every tube negative: p̂ = 0, and the interval gives an upper bound only.
/// let none = [SizeCount { size: 10, positive: 0, negative: 3 }];
/// let e = estimate(&none, Assay::default()).expect("tubes");
/// assert_eq!((e.prevalence, e.lower), (0.0, 0.0));
/// // 30 · ln(1 − upper) = −3.841 / 2
/// assert!((30.0 * (1.0 - e.upper).ln() + 3.841_458_820_694_124 / 2.0).abs() < 1e-9);
/// ```
pub fn estimate(tubes: &[SizeCount], assay: Assay) -> Option<Estimate> {
    let assay = assay.check().ok()?;
    let tubes: Vec<SizeCount> = tubes
        .iter()
        .filter(|t| t.size > 0 && t.positive + t.negative > 0)
        .copied()
        .collect();
    if tubes.is_empty() {
        return None;
    }
    let f = |p: f64| log_likelihood(p, &tubes, assay);
    let g = grid();
    // Without a negative tube the likelihood only grows with p, without a positive one
    // it only falls: the estimate is 1 or 0. Said outright, because far from the
    // data the log-likelihood is flat to the last bit and a search could stop early.
    let (positive, negative): (u64, u64) = tubes
        .iter()
        .fold((0, 0), |(a, b), t| (a + t.positive, b + t.negative));
    let boundary = if negative == 0 {
        Some(1.0)
    } else if positive == 0 {
        Some(0.0)
    } else {
        None
    };
    let values: Vec<f64> = g.iter().map(|&p| f(p)).collect();
    let best = (0..g.len())
        .filter(|&i| !values[i].is_nan())
        .max_by(|&i, &j| values[i].total_cmp(&values[j]).then(j.cmp(&i)))?;
    if !values[best].is_finite() {
        return None;
    }
    // The maximum of a unimodal likelihood lies within a grid cell of the best point;
    // two cells either side leave room for rounding in the comparisons.
    let lo = g[best.saturating_sub(2)];
    let hi = g[(best + 2).min(g.len() - 1)];
    let inner = golden_max(&f, lo, hi);
    let (mut p_hat, mut l_hat) = if f(inner) > values[best] {
        (inner, f(inner))
    } else {
        (g[best], values[best])
    };
    // Golden section stops at the square root of the float precision, where the
    // likelihood is flat; the score's sign change pins the maximum to the last bit.
    let s = |p: f64| score(p, &tubes, assay);
    let (a, b) = (lo.max(f64::MIN_POSITIVE), hi.min(1.0 - f64::EPSILON));
    if boundary.is_none() && s(a) > 0.0 && s(b) < 0.0 {
        let (mut up, mut down) = (a, b);
        for _ in 0..200 {
            let mid = f64::midpoint(up, down);
            if mid == up || mid == down {
                break;
            }
            if s(mid) > 0.0 {
                up = mid;
            } else {
                down = mid;
            }
        }
        let root = f64::midpoint(up, down);
        if f(root).is_finite() {
            (p_hat, l_hat) = (root, f(root));
        }
    }
    if let Some(edge) = boundary {
        (p_hat, l_hat) = (edge, f(edge));
    }
    let cut = l_hat - CHI2_95 / 2.0;
    // Below p̂: the first grid point (going down) outside the interval, then bisect.
    let lower = if p_hat <= 0.0 || f(0.0) >= cut {
        0.0
    } else {
        let mut inside = p_hat;
        let mut found = 0.0;
        for &p in g.iter().rev().filter(|&&p| p < p_hat) {
            if f(p) < cut {
                found = p;
                break;
            }
            inside = p;
        }
        crossing(&f, cut, inside, found)
    };
    let upper = if p_hat >= 1.0 || f(1.0) >= cut {
        1.0
    } else {
        let mut inside = p_hat;
        let mut found = 1.0;
        for &p in g.iter().filter(|&&p| p > p_hat) {
            if f(p) < cut {
                found = p;
                break;
            }
            inside = p;
        }
        crossing(&f, cut, inside, found)
    };
    Some(Estimate {
        prevalence: p_hat,
        lower,
        upper,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tubes(list: &[(u32, u64, u64)]) -> Vec<SizeCount> {
        list.iter()
            .map(|&(size, positive, negative)| SizeCount {
                size,
                positive,
                negative,
            })
            .collect()
    }

    #[test]
    fn one_size_has_the_closed_form() {
        // pos of n tubes of k: p̂ = 1 − (1 − pos/n)^(1/k).
        for &(k, pos, neg) in &[
            (10u32, 1u64, 2u64),
            (5, 7, 993),
            (20, 40, 124_960),
            (1, 3, 97),
        ] {
            let e = estimate(&tubes(&[(k, pos, neg)]), Assay::default()).expect("an estimate");
            let share = pos as f64 / (pos + neg) as f64;
            let want = 1.0 - (1.0 - share).powf(1.0 / f64::from(k));
            assert!(
                (e.prevalence - want).abs() < 1e-9 * want.max(1e-9),
                "{k}: {e:?} vs {want}"
            );
            let f = |p| log_likelihood(p, &tubes(&[(k, pos, neg)]), Assay::default());
            let l_hat = f(e.prevalence);
            for end in [e.lower, e.upper] {
                assert!((l_hat - f(end) - CHI2_95 / 2.0).abs() < 1e-6, "{k}: {e:?}");
            }
        }
    }

    #[test]
    fn all_positive_reaches_one() {
        let e = estimate(&tubes(&[(10, 4, 0)]), Assay::default()).expect("an estimate");
        assert_eq!((e.prevalence, e.upper), (1.0, 1.0));
        assert!(e.lower > 0.0 && e.lower < 1.0);
    }

    #[test]
    fn an_imperfect_assay_explains_some_positives_away() {
        // 1 % of tubes of 10 positive: with specificity 0.99 that is what no
        // infection gives, so p̂ is 0.
        let t = tubes(&[(10, 10, 990)]);
        let assay = Assay {
            sensitivity: 0.95,
            specificity: 0.99,
        };
        let e = estimate(&t, assay).expect("an estimate");
        assert!(e.prevalence < 1e-6, "{e:?}");
        let perfect = estimate(&t, Assay::default()).expect("an estimate");
        assert!(perfect.prevalence > 9e-4, "{perfect:?}");
        // A lower sensitivity needs more infection to explain the same positives.
        let t = tubes(&[(10, 50, 950)]);
        let low = Assay {
            sensitivity: 0.8,
            specificity: 1.0,
        };
        let a = estimate(&t, low).expect("an estimate").prevalence;
        let b = estimate(&t, Assay::default())
            .expect("an estimate")
            .prevalence;
        assert!(a > b, "{a} {b}");
    }

    #[test]
    fn no_tube_no_estimate() {
        assert!(estimate(&[], Assay::default()).is_none());
        assert!(estimate(&tubes(&[(10, 0, 0)]), Assay::default()).is_none());
    }
}
