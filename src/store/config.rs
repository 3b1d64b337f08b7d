//! `STORE/pooltrack.toml`: the cut-offs and deadlines a lab or office tunes to its kits
//! and promises, with defaults when the file or a key is absent.
//!
//! ```toml
//! [results]
//! ic_cutoff = 40.0                # an internal-control Ct below this is a signal
//!
//! [plate_qc]
//! negative_control_cutoff = 40.0  # a negative control amplifying below this fails its plate
//! positive_control_cutoff = 40.0  # a positive control needs both targets below this
//!
//! [deadlines]
//! pool_hours = 24.0               # a pool's result is due this long after collection
//! single_hours = 6.0              # a single tube's result is due this long after collection
//!
//! [ids]
//! id_check = "warn"               # a resident id with a wrong check character: warn, reject or off
//!
//! [prevalence]
//! sensitivity = 1.0               # of the assay per tube, for prevalence estimates
//! specificity = 1.0
//!
//! [custody]
//! receipt_hours = 12.0            # a tube not received this long after collection is lost or stuck
//! specimen_limit_hours = 48.0     # a result tested later than this after its tube's first swab does not count
//!
//! [audit]
//! alpha = 0.01                    # the lab audit's significance level, after Holm
//! recall_hours = 1.0              # a positive pool's first retest swab is due this long after its report
//! window_minutes = 60             # the capacity check's sliding window
//! # plan = "plan.toml"            # the plan whose [[lab]] instruments bound a lab's reports
//!
//! [health_codes]                  # codes across rounds (export health-codes --as-of)
//! validity_hours = 48.0           # a registered person's negative swab keeps them green this long
//! clear_negatives = 2             # negative single tubes after a positive that clear its red
//! clear_gap_hours = 24.0          # hours between those negatives
//!
//! [health_codes.groups]           # key groups (the register's group column) with their own window
//! cold_chain = 24.0               # hours; 0: the group need not test
//! ```
//!
//! The sample cut-off itself (`ct_cutoff`) is a store setting (`pooltrack config
//! --ct-cutoff`); the control cut-offs default to it. Cut-offs are applied when a batch
//! is ingested, so committed rows keep the reading they were ingested with; deadlines
//! apply whenever a report is made.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{IdCheck, Mode};

mod health_codes;
use crate::time::Millis;
use crate::{Error, Result};
pub use health_codes::{HealthCodesConfig, hours_to_millis};

/// The file name inside the store.
pub const FILE: &str = "pooltrack.toml";

/// The store's tunable cut-offs and deadlines.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How result rows are read.
    pub results: ResultsConfig,
    /// When a plate's controls fail it.
    pub plate_qc: PlateQc,
    /// When a tube's result is late.
    pub deadlines: Deadlines,
    /// How person ids are checked at ingest.
    pub ids: IdsConfig,
    /// The assay prevalence estimates assume.
    pub prevalence: PrevalenceConfig,
    /// When `pooltrack custody` calls a tube lost, and when a specimen is too old for
    /// its result to count.
    pub custody: CustodyConfig,
    /// What the lab audit flags.
    pub audit: AuditConfig,
    /// Health codes across rounds: validity windows and what clears a red code.
    pub health_codes: HealthCodesConfig,
}

/// When `pooltrack custody` calls a tube lost or stuck, and a specimen too old to test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustodyConfig {
    /// A tube collected this many hours ago and not received (no receipt of it or its
    /// box, no result) is lost or stuck.
    pub receipt_hours: f64,
    /// The longest a swab may wait from its tube's first swab to its test (its
    /// result's `reported_at`): a result later than this does not count, in every
    /// report ([`crate::tracker::limit`]), and a tube with only such results needs a
    /// resample. Kits and cold chains differ; 48 h is kept apart from the 24 h
    /// reporting deadline so that a late lab is not also a mass resample.
    pub specimen_limit_hours: f64,
}

impl Default for CustodyConfig {
    fn default() -> Self {
        CustodyConfig {
            receipt_hours: 12.0,
            specimen_limit_hours: 48.0,
        }
    }
}

/// The lab audit's settings (`pooltrack audit`, the round report's audit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Significance level of the positivity and discordance tests, after Holm.
    pub alpha: f64,
    /// Hours from a positive pool's report to its first retest swab before it is late.
    pub recall_hours: f64,
    /// The capacity check's sliding window, minutes.
    pub window_minutes: u32,
    /// A plan file whose `[[lab]]` instruments the capacity check uses (relative to
    /// the store folder unless absolute); none: no capacity check.
    pub plan: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            alpha: 0.01,
            recall_hours: 1.0,
            window_minutes: 60,
            plan: None,
        }
    }
}

/// The assay `pooltrack prevalence` and the round report assume, per tube.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrevalenceConfig {
    /// Probability that a tube holding an infected person reads positive.
    pub sensitivity: f64,
    /// Probability that a tube holding no infected person reads negative.
    pub specificity: f64,
}

impl Default for PrevalenceConfig {
    /// A perfect assay: the tracker's own reading of a result.
    fn default() -> Self {
        PrevalenceConfig {
            sensitivity: 1.0,
            specificity: 1.0,
        }
    }
}

/// How person ids are checked at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdsConfig {
    /// What a resident identity number (GB 11643-1999: 17 digits and a check character)
    /// with a wrong check character does to its row: `warn` (kept, listed as a warning),
    /// `reject` (refused) or `off` (not checked). Ids of other forms are never checked.
    pub id_check: IdCheck,
}

/// How result rows are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResultsConfig {
    /// An internal-control Ct (`ct_ic`) below this is a signal. A sample with no target
    /// amplified and no internal-control signal is `invalid`.
    pub ic_cutoff: f32,
}

impl Default for ResultsConfig {
    fn default() -> Self {
        ResultsConfig { ic_cutoff: 40.0 }
    }
}

/// When a plate's controls fail it; unset cut-offs are the store's `ct_cutoff`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateQc {
    /// A negative control with any target Ct below this fails its plate.
    pub negative_control_cutoff: Option<f32>,
    /// A positive control without both target Cts below this fails its plate.
    pub positive_control_cutoff: Option<f32>,
}

/// When a tube's result is late, in hours after its collection.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    /// For pool tubes (screening rounds promise 24 h).
    pub pool_hours: f64,
    /// For single tubes, mostly retests of recalled persons (promised within 6 h).
    pub single_hours: f64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            pool_hours: 24.0,
            single_hours: 6.0,
        }
    }
}

impl Deadlines {
    /// Checks that both deadlines are a positive number of hours, at most a year.
    pub fn check(self) -> Result<Deadlines> {
        for (what, h) in [("pool", self.pool_hours), ("single", self.single_hours)] {
            if !(h.is_finite() && h > 0.0 && h <= 8_760.0) {
                return Err(Error::Usage(format!(
                    "the {what} deadline must be above 0 and at most 8760 hours, not {h}"
                )));
            }
        }
        Ok(self)
    }

    /// The deadline of a tube of `mode`, in milliseconds.
    pub fn millis(self, mode: Mode) -> Millis {
        let h = match mode {
            Mode::Pool => self.pool_hours,
            Mode::Single => self.single_hours,
        };
        // Checked hours are at most a year: the product fits an i64 with room to spare.
        #[allow(clippy::cast_possible_truncation)]
        let ms = (h.clamp(0.0, 8_760.0) * 3_600_000.0).round() as i64;
        ms
    }
}

impl Config {
    /// Reads `STORE/pooltrack.toml`, or the defaults when there is none. A file that
    /// cannot be read is an input error naming its line.
    ///
    /// ```
    /// use pooltrack::store::config::Config;
    /// let dir = tempfile::tempdir()?;
    /// assert_eq!(Config::load(dir.path())?, Config::default());
    /// std::fs::write(dir.path().join("pooltrack.toml"), "[deadlines]\npool_hours = 12\n")?;
    /// assert_eq!(Config::load(dir.path())?.deadlines.pool_hours, 12.0);
    /// std::fs::write(dir.path().join("pooltrack.toml"), "[deadlines]\npool_hour = 12\n")?;
    /// assert!(Config::load(dir.path()).unwrap_err().to_string().contains("line 2"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(store_root: &Path) -> Result<Config> {
        let path = Config::path(store_root);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Config::parse(&text).map_err(|why| Error::input(&path, why))
    }

    /// Parses the file's text; the error names the line.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            format!("line {line}: {}", e.message())
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let cutoffs = [
            ("results.ic_cutoff", Some(self.results.ic_cutoff)),
            (
                "plate_qc.negative_control_cutoff",
                self.plate_qc.negative_control_cutoff,
            ),
            (
                "plate_qc.positive_control_cutoff",
                self.plate_qc.positive_control_cutoff,
            ),
        ];
        for (key, v) in cutoffs {
            if let Some(v) = v
                && !(v > 0.0 && v <= 100.0)
            {
                return Err(format!("{key} must be above 0 and at most 100 (found {v})"));
            }
        }
        for (key, v) in [
            ("deadlines.pool_hours", self.deadlines.pool_hours),
            ("deadlines.single_hours", self.deadlines.single_hours),
            ("custody.receipt_hours", self.custody.receipt_hours),
            (
                "custody.specimen_limit_hours",
                self.custody.specimen_limit_hours,
            ),
        ] {
            if !(v > 0.0 && v <= 24.0 * 365.0) {
                return Err(format!(
                    "{key} must be a positive number of hours (found {v})"
                ));
            }
        }
        let p = self.prevalence;
        for (key, v) in [
            ("prevalence.sensitivity", p.sensitivity),
            ("prevalence.specificity", p.specificity),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("{key} must be above 0 and at most 1 (found {v})"));
            }
        }
        let a = &self.audit;
        if !(a.alpha > 0.0 && a.alpha < 1.0) {
            return Err(format!(
                "audit.alpha must be above 0 and below 1 (found {})",
                a.alpha
            ));
        }
        if !(a.recall_hours >= 0.0 && a.recall_hours <= 240.0) {
            return Err(format!(
                "audit.recall_hours must be from 0 to 240 (found {})",
                a.recall_hours
            ));
        }
        if !(1..=1_440).contains(&a.window_minutes) {
            return Err(format!(
                "audit.window_minutes must be from 1 to 1440 (found {})",
                a.window_minutes
            ));
        }
        if p.sensitivity + p.specificity <= 1.0 {
            return Err(format!(
                "prevalence.sensitivity + prevalence.specificity must exceed 1 (found {} + {})",
                p.sensitivity, p.specificity
            ));
        }
        self.health_codes.check()?;
        Ok(())
    }

    /// Where the file is.
    pub fn path(store_root: &Path) -> PathBuf {
        store_root.join(FILE)
    }

    /// The control cut-offs: (negative, positive), defaulting to the sample cut-off.
    pub fn control_cutoffs(&self, ct_cutoff: f32) -> (f32, f32) {
        (
            self.plate_qc.negative_control_cutoff.unwrap_or(ct_cutoff),
            self.plate_qc.positive_control_cutoff.unwrap_or(ct_cutoff),
        )
    }

    /// The file's text with every key at its default, commented, for `pooltrack config
    /// --write-defaults`.
    pub fn default_text() -> String {
        let base = "# pooltrack store configuration: cut-offs are applied when a batch is ingested,\n\
         # deadlines whenever a report is made. Delete a key to use its default.\n\
         \n\
         [results]\n\
         # An internal-control Ct (column ct_ic) below this is a signal; a sample with no\n\
         # target amplified and no internal-control signal is invalid.\n\
         ic_cutoff = 40.0\n\
         \n\
         [plate_qc]\n\
         # A negative control with any target Ct below this fails its plate, and a positive\n\
         # control without both target Cts below this fails it. Default: the store's ct_cutoff.\n\
         # negative_control_cutoff = 40.0\n\
         # positive_control_cutoff = 40.0\n\
         \n\
         [deadlines]\n\
         # A tube's result is late this many hours after its collection.\n\
         pool_hours = 24.0\n\
         single_hours = 6.0\n\
         \n\
         [ids]\n\
         # A person id of the form of a resident identity number (GB 11643-1999: 17 digits\n\
         # and a check character 0-9 or X) whose check character is wrong: \"warn\" keeps\n\
         # the row and lists it as a warning in the rejects report, \"reject\" refuses the\n\
         # row, \"off\" does not check. Ids of other forms are never checked.\n\
         id_check = \"warn\"\n\
         \n\
         [prevalence]\n\
         # The assay `pooltrack prevalence` and the round report assume, per tube: the\n\
         # probability that a tube holding an infected person reads positive, and that a\n\
         # tube holding none reads negative. Their sum must exceed 1.\n\
         sensitivity = 1.0\n\
         specificity = 1.0\n\
         \n\
         [custody]\n\
         # `pooltrack custody`: a tube collected this many hours ago and not received\n\
         # (no receipt scan of it or its box, no result) is lost or stuck. Every report:\n\
         # a result reported longer than specimen_limit_hours after its tube's first swab\n\
         # does not count, and a tube with only such results needs a resample.\n\
         receipt_hours = 12.0\n\
         specimen_limit_hours = 48.0\n\
         \n\
         [audit]\n\
         # pooltrack audit and the round report's audit: the significance level of the\n\
         # positivity and discordance tests (after Holm's correction), the hours from a\n\
         # positive pool's report to its first retest swab, the capacity check's window in\n\
         # minutes, and the plan whose [[lab]] instruments it checks (relative to the store).\n\
         alpha = 0.01\n\
         recall_hours = 1.0\n\
         window_minutes = 60\n\
         # plan = \"plan.toml\"\n";
        format!("{base}{}", health_codes::DEFAULT_TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_reads_as_the_defaults() {
        assert_eq!(
            Config::parse(&Config::default_text()),
            Ok(Config::default())
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::parse("[results]\nic_cutoff = -1\n").expect_err("refused");
        assert!(err.contains("results.ic_cutoff"), "{err}");
        let err = Config::parse("[deadlines]\nsingle_hours = 0\n").expect_err("refused");
        assert!(err.contains("deadlines.single_hours"), "{err}");
        let err = Config::parse("[results]\nic_cutoff = \"x\"\n").expect_err("refused");
        assert!(err.starts_with("line 2"), "{err}");
        let err = Config::parse("[prevalence]\nsensitivity = 1.5\n").expect_err("refused");
        assert!(err.contains("prevalence.sensitivity"), "{err}");
        let err = Config::parse("[prevalence]\nsensitivity = 0.5\nspecificity = 0.5\n")
            .expect_err("refused");
        assert!(err.contains("must exceed 1"), "{err}");
    }

    #[test]
    fn id_check_reads_its_three_words() {
        assert_eq!(Config::default().ids.id_check, IdCheck::Warn);
        for (word, want) in [
            ("warn", IdCheck::Warn),
            ("reject", IdCheck::Reject),
            ("off", IdCheck::Off),
        ] {
            let c = Config::parse(&format!("[ids]\nid_check = \"{word}\"\n")).expect("reads");
            assert_eq!(c.ids.id_check, want);
            assert_eq!(want.as_str(), word);
        }
        let err = Config::parse("[ids]\nid_check = \"strict\"\n").expect_err("refused");
        assert!(err.starts_with("line 2"), "{err}");
    }

    #[test]
    fn audit_settings_are_checked() {
        let c = Config::parse("[audit]\nplan = \"plan.toml\"\nrecall_hours = 2\n").expect("reads");
        assert_eq!(c.audit.plan, Some(PathBuf::from("plan.toml")));
        assert_eq!((c.audit.recall_hours, c.audit.alpha), (2.0, 0.01));
        for (text, key) in [
            ("alpha = 0", "audit.alpha"),
            ("recall_hours = -1", "audit.recall_hours"),
            ("window_minutes = 0", "audit.window_minutes"),
        ] {
            let err = Config::parse(&format!("[audit]\n{text}\n")).expect_err("refused");
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn control_cutoffs_default_to_the_sample_cutoff() {
        let c = Config::parse("[plate_qc]\npositive_control_cutoff = 35\n").expect("reads");
        assert_eq!(c.control_cutoffs(38.0), (38.0, 35.0));
    }
}
