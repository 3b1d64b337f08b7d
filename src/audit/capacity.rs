//! What a lab's instruments can finish in a window of time, from a plan's `[[lab]]`.

use serde::Serialize;

use crate::planner::capacity::Lab;

/// A lab's instruments, as the capacity check reads them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabCapacity {
    /// The lab, as its results name it.
    pub lab: String,
    /// Per stage: (instruments, samples per run, minutes per run).
    pub stages: Vec<(u32, f64, f64)>,
}

impl LabCapacity {
    /// The labs of a plan.
    pub fn of_plan(labs: &[Lab]) -> Vec<LabCapacity> {
        labs.iter()
            .map(|l| LabCapacity {
                lab: l.name.clone(),
                stages: l
                    .stages
                    .iter()
                    .map(|s| (s.instruments, s.samples_per_run, s.minutes_per_run))
                    .collect(),
            })
            .collect()
    }

    /// Tubes the slowest stage finishes in any window of `minutes`: instruments ×
    /// samples per run × ⌈minutes ÷ minutes per run⌉, as a run that ends inside the
    /// window may have started before it. `None` for a lab with no stage.
    ///
    /// ```
    /// use pooltrack::audit::LabCapacity;
    /// // 3 PCR machines of 94 samples in 90 min, 4 extractors of 94 in 40 min.
    /// let lab = LabCapacity { lab: "L1".into(), stages: vec![(4, 94.0, 40.0), (3, 94.0, 90.0)] };
    /// // 60 min: PCR one run each (282), extraction two (752): PCR is the limit.
    /// assert_eq!(lab.in_window(60), Some(3 * 94));
    /// // 120 min: PCR two runs each (564), extraction three (1,128).
    /// assert_eq!(lab.in_window(120), Some(2 * 3 * 94));
    /// ```
    pub fn in_window(&self, minutes: u32) -> Option<u64> {
        self.stages
            .iter()
            .map(|&(instruments, samples, per_run)| {
                let runs = if per_run > 0.0 {
                    (f64::from(minutes) / per_run - 1e-9).ceil().max(0.0)
                } else {
                    0.0
                };
                let tubes = f64::from(instruments) * samples.max(0.0) * runs;
                // Plans cap instruments and samples far below 2^53.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let tubes = tubes.floor() as u64;
                tubes
            })
            .min()
    }
}
