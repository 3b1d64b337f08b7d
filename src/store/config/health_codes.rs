//! `[health_codes]`: how long a negative result keeps a code green, per key group, and
//! what clears a red code. Read by `pooltrack export health-codes --as-of T` (the codes
//! across every round of the store) and `pooltrack status --person ID`; the per-round
//! export (`--round R`) does not use it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// The hours a window or gap may span: a year.
const MAX_HOURS: f64 = 8_760.0;

/// How health codes are decided across rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCodesConfig {
    /// Hours a negative result keeps a registered person's code green, counted from
    /// the swab (collection time), for persons whose group names no window of its own.
    /// 0: registered persons outside a listed group need not test.
    pub validity_hours: f64,
    /// Negative single-tube results, collected after a positive swab, that clear the
    /// red code it gave.
    pub clear_negatives: u32,
    /// Hours between two negatives that clear a red code (the first may come any time
    /// after the positive swab; each next one at least this long after the one before).
    pub clear_gap_hours: f64,
    /// Key groups (the register's `group` column) with their own window in hours; 0:
    /// the group need not test.
    pub groups: BTreeMap<String, f64>,
}

impl Default for HealthCodesConfig {
    /// 48 h for everyone registered, no groups of their own, and two negative single
    /// tubes at least 24 h apart to clear a red code.
    fn default() -> Self {
        HealthCodesConfig {
            validity_hours: 48.0,
            clear_negatives: 2,
            clear_gap_hours: 24.0,
            groups: BTreeMap::new(),
        }
    }
}

impl HealthCodesConfig {
    /// Names the first value out of range.
    pub(super) fn check(&self) -> std::result::Result<(), String> {
        let mut hours = vec![
            (
                "health_codes.validity_hours".to_owned(),
                self.validity_hours,
            ),
            (
                "health_codes.clear_gap_hours".to_owned(),
                self.clear_gap_hours,
            ),
        ];
        hours.extend(
            self.groups
                .iter()
                .map(|(g, &h)| (format!("health_codes.groups.{g}"), h)),
        );
        for (key, h) in hours {
            if !(h.is_finite() && (0.0..=MAX_HOURS).contains(&h)) {
                return Err(format!(
                    "{key} must be a number of hours from 0 to {MAX_HOURS} (found {h})"
                ));
            }
        }
        if !(1..=10).contains(&self.clear_negatives) {
            return Err(format!(
                "health_codes.clear_negatives must be from 1 to 10 (found {})",
                self.clear_negatives
            ));
        }
        Ok(())
    }

    /// The window of a registered person in `group` (blank: none), in hours; 0 when
    /// they need not test.
    ///
    /// ```
    /// use pooltrack::store::config::HealthCodesConfig;
    /// let mut c = HealthCodesConfig::default();
    /// c.groups.insert("lab_staff".into(), 72.0);
    /// assert_eq!((c.window_hours(""), c.window_hours("lab_staff"), c.window_hours("other")), (48.0, 72.0, 48.0));
    /// ```
    pub fn window_hours(&self, group: &str) -> f64 {
        self.groups
            .get(group)
            .copied()
            .unwrap_or(self.validity_hours)
    }

    /// The gap between clearing negatives, in milliseconds.
    pub fn clear_gap(&self) -> Millis {
        hours_to_millis(self.clear_gap_hours)
    }
}

/// Checked hours (at most a year) in milliseconds.
pub fn hours_to_millis(h: f64) -> Millis {
    // At most a year of milliseconds: fits an i64 with room to spare.
    #[allow(clippy::cast_possible_truncation)]
    let ms = (h.clamp(0.0, MAX_HOURS) * 3_600_000.0).round() as i64;
    ms
}

/// The section's lines for `pooltrack config --write-defaults`.
pub(super) const DEFAULT_TEXT: &str = "\n\
[health_codes]\n\
# For `export health-codes --as-of T` across rounds: a registered person's code turns\n\
# yellow when their latest negative swab is older than this many hours (0: registered\n\
# persons need not test). A positive stays red until clear_negatives negative\n\
# single-tube results swabbed after it, each at least clear_gap_hours after the one before.\n\
validity_hours = 48.0\n\
clear_negatives = 2\n\
clear_gap_hours = 24.0\n\
\n\
[health_codes.groups]\n\
# Key groups (the register's group column) with their own window in hours (0: need not test).\n\
# cold_chain = 24.0\n\
# lab_staff = 72.0\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_clearing_are_checked() {
        let mut c = HealthCodesConfig::default();
        assert_eq!(c.check(), Ok(()));
        c.groups.insert("couriers".into(), -1.0);
        assert!(c.check().expect_err("refused").contains("groups.couriers"));
        let c = HealthCodesConfig {
            clear_negatives: 0,
            ..HealthCodesConfig::default()
        };
        assert!(c.check().expect_err("refused").contains("clear_negatives"));
        assert_eq!(hours_to_millis(48.0), 172_800_000);
    }
}
