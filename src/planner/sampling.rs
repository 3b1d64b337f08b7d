//! Sampling: sites, stations and collectors the population needs by the norms.
//!
//! The 3rd-edition guide: one sampling site (采样点) per 2,000–3,000 people (the
//! planner's default is the middle, 2,500), one sampling station (采样台) per 600–800
//! (default 700), and collectors = population ÷ 360. Each need is rounded up (half a
//! site is a site) and compared with what the plan has, when it says.

use serde::Serialize;

use super::numbers::{ceil_u64, f};

/// The norms and what the plan has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplingPlan {
    /// People one site serves.
    pub people_per_site: f64,
    /// People one station serves.
    pub people_per_station: f64,
    /// People one collector swabs in a round.
    pub people_per_collector: f64,
    /// Sites the plan has, if it says.
    pub sites: Option<u64>,
    /// Stations the plan has, if it says.
    pub stations: Option<u64>,
    /// Collectors the plan has, if it says.
    pub collectors: Option<u64>,
}

impl Default for SamplingPlan {
    fn default() -> Self {
        SamplingPlan {
            people_per_site: 2_500.0,
            people_per_station: 700.0,
            people_per_collector: 360.0,
            sites: None,
            stations: None,
            collectors: None,
        }
    }
}

/// One resource: needed against planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Need {
    /// `sites`, `stations` or `collectors`.
    pub what: &'static str,
    /// Needed by the norm.
    pub needed: u64,
    /// What the plan has, if it says.
    pub planned: Option<u64>,
    /// How many are missing (0 when enough or not said).
    pub short_by: u64,
    /// Whether the plan has enough (`None` when it does not say).
    pub pass: Option<bool>,
}

/// The sampling answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplingReport {
    /// People to sample.
    pub people: u64,
    /// Sites, stations, collectors.
    pub needs: Vec<Need>,
    /// Whether every resource the plan states is enough.
    pub pass: bool,
}

/// Works out the sampling needs of `people`.
///
/// ```
/// use pooltrack::planner::sampling::{assess, SamplingPlan};
/// let r = assess(1_300_000, &SamplingPlan { sites: Some(482), ..SamplingPlan::default() });
/// assert_eq!(r.needs[0].needed, 520); // 1,300,000 / 2,500
/// assert_eq!(r.needs[0].short_by, 38);
/// assert!(!r.pass);
/// ```
pub fn assess(people: u64, plan: &SamplingPlan) -> SamplingReport {
    let need = |what, per: f64, planned: Option<u64>| {
        let needed = ceil_u64(f(people) / per);
        Need {
            what,
            needed,
            planned,
            short_by: planned.map_or(0, |p| needed.saturating_sub(p)),
            pass: planned.map(|p| p >= needed),
        }
    };
    let needs = vec![
        need("sites", plan.people_per_site, plan.sites),
        need("stations", plan.people_per_station, plan.stations),
        need("collectors", plan.people_per_collector, plan.collectors),
    ];
    SamplingReport {
        people,
        pass: needs.iter().all(|n| n.pass != Some(false)),
        needs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xining_by_the_norms() {
        // Xining 2022: 1.3 M samples, 482 sites, 2,160 stations, about 6,400 collectors.
        //   sites      = 1,300,000 / 2,500 = 520      → 38 short
        //   stations   = 1,300,000 / 700   = 1,857.1  → 1,858: 2,160 is enough
        //   collectors = 1,300,000 / 360   = 3,611.1  → 3,612: 6,400 is enough
        let plan = SamplingPlan {
            sites: Some(482),
            stations: Some(2_160),
            collectors: Some(6_400),
            ..SamplingPlan::default()
        };
        let r = assess(1_300_000, &plan);
        let got: Vec<(u64, u64, Option<bool>)> = r
            .needs
            .iter()
            .map(|n| (n.needed, n.short_by, n.pass))
            .collect();
        assert_eq!(
            got,
            vec![
                (520, 38, Some(false)),
                (1_858, 0, Some(true)),
                (3_612, 0, Some(true))
            ]
        );
        assert!(!r.pass);
    }

    #[test]
    fn unstated_resources_neither_pass_nor_fail() {
        let r = assess(25_000_000, &SamplingPlan::default());
        // 25 M: 10,000 sites, 35,715 stations (35,714.3), 69,445 collectors (69,444.4).
        let needed: Vec<u64> = r.needs.iter().map(|n| n.needed).collect();
        assert_eq!(needed, vec![10_000, 35_715, 69_445]);
        assert!(r.needs.iter().all(|n| n.pass.is_none()));
        assert!(r.pass);
    }
}
