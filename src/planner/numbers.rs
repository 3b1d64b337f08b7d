//! Float ↔ count conversions and number formatting shared by the planner.
//!
//! The planner computes expected values (0.995 % of 2.5 M pools turn positive) in `f64`
//! and reports counts of tubes, tests and kits as whole numbers. Every conversion goes
//! through the few functions here, each saturating, so a pathological plan file can
//! never wrap or panic, and the rounding direction is chosen once: counts that must be
//! *had* (tubes, tests to order, hours) round up; capacity that must be *proved*
//! (whole runs in a shift) rounds down.

/// Rounds up to a count: negative and NaN give 0, values beyond `u64` saturate.
///
/// ```
/// use pooltrack::planner::numbers::ceil_u64;
/// assert_eq!(ceil_u64(248_877.99), 248_878);
/// assert_eq!(ceil_u64(-3.0), 0);
/// assert_eq!(ceil_u64(f64::NAN), 0);
/// ```
// Deliberate float → int rounding: the value is clamped to 0..=u64::MAX first.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn ceil_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= 18_446_744_073_709_551_615.0 {
        u64::MAX
    } else {
        x.ceil() as u64
    }
}

/// Rounds down to a count, saturating like [`ceil_u64`].
///
/// ```
/// use pooltrack::planner::numbers::floor_u64;
/// assert_eq!(floor_u64(12.999), 12);
/// ```
// Deliberate float → int rounding: the value is clamped to 0..=u64::MAX first.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn floor_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= 18_446_744_073_709_551_615.0 {
        u64::MAX
    } else {
        x.floor() as u64
    }
}

/// Rounds to the nearest signed whole number, saturating.
///
/// ```
/// use pooltrack::planner::numbers::round_i64;
/// assert_eq!(round_i64(-2.5), -3);
/// assert_eq!(round_i64(1e300), i64::MAX);
/// ```
// Deliberate float → int rounding: the value is clamped to the i64 range first.
#[allow(clippy::cast_possible_truncation)]
pub fn round_i64(x: f64) -> i64 {
    if x.is_nan() {
        0
    } else if x >= 9_223_372_036_854_775_807.0 {
        i64::MAX
    } else if x <= -9_223_372_036_854_775_808.0 {
        i64::MIN
    } else {
        x.round() as i64
    }
}

/// A count as `f64` for the arithmetic (exact below 2^53, far above any city).
///
/// ```
/// use pooltrack::planner::numbers::f;
/// assert_eq!(f(25_000_000), 25e6);
/// ```
// u64 → f64 may round above 2^53; counts here are people and tubes, far below that.
#[allow(clippy::cast_precision_loss)]
pub fn f(n: u64) -> f64 {
    n as f64
}

/// `1234567` → `1,234,567`.
///
/// ```
/// use pooltrack::planner::numbers::thousands;
/// assert_eq!(thousands(2_748_878), "2,748,878");
/// assert_eq!(thousands(7), "7");
/// ```
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed count with separators.
///
/// ```
/// use pooltrack::planner::numbers::thousands_i;
/// assert_eq!(thousands_i(-12_000), "-12,000");
/// ```
pub fn thousands_i(n: i64) -> String {
    if n < 0 {
        format!("-{}", thousands(n.unsigned_abs()))
    } else {
        thousands(n.unsigned_abs())
    }
}

/// An expected value rounded to a whole count with separators.
///
/// ```
/// use pooltrack::planner::numbers::thousands_f;
/// assert_eq!(thousands_f(24_887.8), "24,888");
/// ```
pub fn thousands_f(x: f64) -> String {
    thousands_i(round_i64(x))
}

/// Short human form of a large count, to three significant digits: `2.75 M`,
/// `31.4 k`, `940 k`, `2 M`, `940`.
///
/// ```
/// use pooltrack::planner::numbers::short;
/// assert_eq!(short(2_748_878.0), "2.75 M");
/// assert_eq!(short(31_400.0), "31.4 k");
/// assert_eq!(short(940_000.0), "940 k");
/// assert_eq!(short(2_000_000.0), "2 M");
/// assert_eq!(short(940.0), "940");
/// ```
pub fn short(x: f64) -> String {
    let a = x.abs();
    let (v, unit) = if a >= 1e9 {
        (x / 1e9, " G")
    } else if a >= 1e6 {
        (x / 1e6, " M")
    } else if a >= 1e3 {
        (x / 1e3, " k")
    } else {
        return format!("{x:.0}");
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s + unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate() {
        assert_eq!(ceil_u64(f64::INFINITY), u64::MAX);
        assert_eq!(floor_u64(f64::NEG_INFINITY), 0);
        assert_eq!(round_i64(f64::NEG_INFINITY), i64::MIN);
        assert_eq!(ceil_u64(0.000_001), 1);
        assert_eq!(floor_u64(0.999_999), 0);
    }

    #[test]
    fn separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(25_000_000), "25,000,000");
        assert_eq!(thousands_i(i64::MIN), "-9,223,372,036,854,775,808");
    }
}
