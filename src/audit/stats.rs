//! The arithmetic behind the audit's positivity and discordance tests: the normal tail,
//! the Cochran–Mantel–Haenszel test of 2 × 2 × K tables, and Holm's correction.
//!
//! Written here rather than taken from a statistics crate: it is forty lines, and the
//! one special function it needs (`erfc`) has a well-known rational approximation
//! whose relative error stays below 1.2 × 10⁻⁷ over the whole real line, tails
//! included, which is far finer than any decision at α = 0.01 needs.

/// The complementary error function, erfc(x) = 1 − erf(x), to a relative error below
/// 1.2 × 10⁻⁷ (the Chebyshev fit of Press et al., *Numerical Recipes*, 2nd ed., §6.2).
///
/// ```
/// use pooltrack::audit::stats::erfc;
/// // Within 1.2e-7 of the true value, relatively: erfc(1) = 0.157299207050285.
/// assert!((erfc(1.0) - 0.157_299_207_050_285_1).abs() < 1.2e-7 * 0.158);
/// assert!((erfc(0.0) - 1.0).abs() < 1.2e-7);
/// ```
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(Z ≥ z) for a standard normal Z.
///
/// ```
/// use pooltrack::audit::stats::normal_upper;
/// assert!((normal_upper(1.959_963_985) - 0.025).abs() < 1e-8);
/// ```
pub fn normal_upper(z: f64) -> f64 {
    // The approximation is 3e-8 above 1 at 0: a probability stays within [0, 1].
    (0.5 * erfc(z / std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
}

/// P(X ≥ x) for a chi-square X with one degree of freedom.
///
/// ```
/// use pooltrack::audit::stats::chi2_1_upper;
/// assert!((chi2_1_upper(3.841_458_821) - 0.05).abs() < 1e-8);
/// ```
pub fn chi2_1_upper(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    erfc((x / 2.0).sqrt()).clamp(0.0, 1.0)
}

/// A p-value in words: three significant digits, or "< 1e-300" where it underflows to 0
/// (a difference of thousands of positives).
///
/// ```
/// use pooltrack::audit::stats::p_text;
/// assert_eq!(p_text(0.000_304_678), "3.047e-4");
/// assert_eq!(p_text(0.0), "< 1e-300");
/// ```
pub fn p_text(p: f64) -> String {
    if p < 1e-300 {
        "< 1e-300".to_owned()
    } else {
        format!("{p:.3e}")
    }
}

/// One stratum of a comparison: the lab's tubes and positives, the other labs' tubes
/// and positives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Table {
    /// The lab's tubes.
    pub tubes: u64,
    /// Of them, positive.
    pub positives: u64,
    /// The other labs' tubes.
    pub other_tubes: u64,
    /// Of them, positive.
    pub other_positives: u64,
}

/// Which differences a test looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    /// More positives than expected only.
    Greater,
    /// More or fewer.
    Two,
}

/// A Cochran–Mantel–Haenszel test over strata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cmh {
    /// The lab's positives, over the strata that compare.
    pub observed: u64,
    /// Their expectation given each stratum's positives: Σ n·m₁/N.
    pub expected: f64,
    /// The Mantel–Haenszel chi-square with continuity correction, 1 degree of freedom.
    pub chi_square: f64,
    /// The p-value for `sides`.
    pub p_value: f64,
}

/// The Mantel–Haenszel test as R's `mantelhaen.test(x, correct = TRUE)` computes it for
/// 2 × 2 × K tables: Δ = Σ (a − n·m₁/N), V = Σ n·n′·m₁·m₀ / (N²(N − 1)), X² = (|Δ| − ½)² / V
/// (no ½ when |Δ| < ½), two-sided p = P(χ²₁ ≥ X²), one-sided (greater) p = P(Z ≥ sign(Δ)·√X²).
/// Strata where either side has no tubes, or with no positive or no negative at
/// all, carry no information (V = 0) and are skipped. `None` when no stratum is left.
///
/// ```
/// use pooltrack::audit::stats::{Sides, Table, cmh};
/// // R's example data `Rabbits` (?mantelhaen.test): X² = 3.9286, p = 0.04747.
/// let t = |a, c, b, d| Table { tubes: a + c, positives: a, other_tubes: b + d, other_positives: b };
/// let strata = [t(0, 6, 0, 5), t(3, 3, 0, 6), t(6, 0, 2, 4), t(5, 1, 6, 0), t(2, 0, 5, 0)];
/// let r = cmh(&strata, Sides::Two).unwrap();
/// assert!((r.chi_square - 3.928_571).abs() < 1e-6);
/// assert!((r.p_value - 0.047_472).abs() < 1e-6);
/// ```
pub fn cmh(strata: &[Table], sides: Sides) -> Option<Cmh> {
    let (mut observed, mut expected, mut variance) = (0u64, 0.0f64, 0.0f64);
    let mut any = false;
    for s in strata {
        let n = s.tubes as f64;
        let n_other = s.other_tubes as f64;
        let total = n + n_other;
        let m1 = (s.positives + s.other_positives) as f64;
        let m0 = total - m1;
        if s.tubes == 0 || s.other_tubes == 0 || m1 <= 0.0 || m0 <= 0.0 {
            continue;
        }
        any = true;
        observed += s.positives;
        expected += n * m1 / total;
        variance += n * n_other * m1 * m0 / (total * total * (total - 1.0));
    }
    if !any || variance <= 0.0 {
        return None;
    }
    let delta = observed as f64 - expected;
    let yates = if delta.abs() >= 0.5 { 0.5 } else { 0.0 };
    let chi_square = (delta.abs() - yates).powi(2) / variance;
    let p_value = match sides {
        Sides::Two => chi2_1_upper(chi_square),
        Sides::Greater => normal_upper(delta.signum() * chi_square.sqrt()),
    };
    Some(Cmh {
        observed,
        expected,
        chi_square,
        p_value,
    })
}

/// Holm's step-down adjustment of `p` (any order): the i-th smallest p is multiplied by
/// (m − i + 1), capped at 1 and made non-decreasing. A hypothesis is rejected at α when
/// its adjusted p is below α; this controls the chance of any false flag at α.
///
/// ```
/// use pooltrack::audit::stats::holm;
/// // R: p.adjust(c(0.01, 0.04, 0.03), "holm") = 0.03 0.06 0.06
/// let adj = holm(&[0.01, 0.04, 0.03]);
/// assert!((adj[0] - 0.03).abs() < 1e-12 && (adj[1] - 0.06).abs() < 1e-12 && (adj[2] - 0.06).abs() < 1e-12);
/// ```
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = p.len() as f64;
    let mut out = vec![1.0; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        let adjusted = ((m - rank as f64) * p[i]).min(1.0);
        running = running.max(adjusted);
        out[i] = running;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative closeness, for p-values that span many orders of magnitude.
    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn erfc_matches_the_c_library_far_into_the_tails() {
        // Python 3: math.erfc(x) (the platform's libm), printed with repr().
        let known = [
            (-2.0, 1.995_322_265_018_952_7),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (4.0, 1.541_725_790_028_002e-8),
            (6.0, 2.151_973_671_249_891_3e-17),
            (9.0, 4.137_031_746_513_81e-37),
        ];
        for (x, want) in known {
            assert!(
                close(erfc(x), want, 1.2e-7),
                "erfc({x}) = {} not {want}",
                erfc(x)
            );
        }
    }

    #[test]
    fn tails_match_r() {
        // R: qchisq(c(0.95, 0.99, 0.999), 1) = 3.841458820694124 6.634896601021214
        // 10.82756617066273, so the upper tail there is 0.05, 0.01, 0.001; and
        // pchisq(30, 1, lower.tail = FALSE) = 4.320463e-08.
        for (x, want) in [
            (3.841_458_820_694_124, 0.05),
            (6.634_896_601_021_214, 0.01),
            (10.827_566_170_662_73, 0.001),
            (30.0, 4.320_463e-8),
        ] {
            assert!(
                close(chi2_1_upper(x), want, 1e-6),
                "{x}: {}",
                chi2_1_upper(x)
            );
        }
        // R: pnorm(c(3, -1, 5), lower.tail = FALSE) = 0.001349898 0.8413447 2.866516e-07
        for (z, want) in [
            (3.0, 0.001_349_898),
            (-1.0, 0.841_344_7),
            (5.0, 2.866_516e-7),
        ] {
            assert!(
                close(normal_upper(z), want, 1e-6),
                "{z}: {}",
                normal_upper(z)
            );
        }
        assert_eq!(chi2_1_upper(0.0), 1.0);
        assert!(chi2_1_upper(1e-12) <= 1.0 && normal_upper(-40.0) <= 1.0);
    }

    #[test]
    fn cmh_one_sided_follows_the_sign_of_the_difference() {
        let t = |a, c, b, d| Table {
            tubes: a + c,
            positives: a,
            other_tubes: b + d,
            other_positives: b,
        };
        let strata = [
            t(0, 6, 0, 5),
            t(3, 3, 0, 6),
            t(6, 0, 2, 4),
            t(5, 1, 6, 0),
            t(2, 0, 5, 0),
        ];
        // One-sided, as R's mantelhaen.test(Rabbits, alternative = "greater") takes it:
        // pnorm(sqrt(3.928571), lower.tail = FALSE), which Python's
        // 0.5 * math.erfc(math.sqrt(3.928571428571429) / math.sqrt(2)) gives as 0.0237361.
        let g = cmh(&strata, Sides::Greater).expect("a test");
        assert!(close(g.p_value, 0.023_736_13, 1e-6), "{}", g.p_value);
        // The first and last strata have no positive or no negative: left out.
        assert_eq!(g.observed, 14);
        assert!((g.expected - 11.0).abs() < 1e-12);
        // The other way round the excess is a deficit: p = 1 − 0.0237.
        let flipped: Vec<Table> = strata
            .iter()
            .map(|s| Table {
                tubes: s.other_tubes,
                positives: s.other_positives,
                other_tubes: s.tubes,
                other_positives: s.positives,
            })
            .collect();
        let f = cmh(&flipped, Sides::Greater).expect("a test");
        assert!(close(f.p_value, 1.0 - 0.023_736_13, 1e-6), "{}", f.p_value);
    }

    #[test]
    fn strata_without_information_are_skipped() {
        let only_lab = Table {
            tubes: 10,
            positives: 3,
            other_tubes: 0,
            other_positives: 0,
        };
        let no_positive = Table {
            tubes: 10,
            positives: 0,
            other_tubes: 30,
            other_positives: 0,
        };
        assert_eq!(cmh(&[only_lab, no_positive], Sides::Two), None);
        assert_eq!(cmh(&[], Sides::Greater), None);
    }

    #[test]
    fn holm_keeps_order_and_caps_at_one() {
        let adj = holm(&[0.5, 0.001, 0.02, 0.9]);
        assert_eq!(adj[1], 0.004);
        assert!((adj[2] - 0.06).abs() < 1e-12);
        assert_eq!(adj[0], 1.0);
        assert_eq!(adj[3], 1.0);
    }
}
