//! Reagent reserve: for how many full rounds does the city hold reagent?
//!
//! The rule: hold reagent for **10 rounds**, of which **at least 6 physically** in
//! stock; the rest may be contracted reserve, which counts only when confirmed (for
//! example by a paid deposit). Both numbers are configurable in the plan.
//!
//! With `T` tests per round (every tube tested once: first-stage tubes plus retests):
//!
//! - rounds physical = physical tests ÷ T; rounds confirmed = confirmed contracted
//!   tests ÷ T; rounds total = the sum. Unconfirmed contracts are listed but count
//!   for nothing.
//! - physical shortfall = ⌈6 T⌉ − physical (≥ 0): must be bought and delivered;
//! - total shortfall = ⌈10 T⌉ − (physical + confirmed) (≥ 0), of which the part beyond
//!   the physical shortfall may also be covered by confirming a contract;
//! - kits = ⌈shortfall ÷ kit size⌉.
//!
//! Consumables scale with what they touch: swabs with people (plus a swab per person
//! swabbed again), single tubes with single-mode people plus single-tube retests, pool
//! tubes with pool tubes (a three-stage scheme's retest pools too).

use serde::Serialize;

use super::demand::Demand;
use super::numbers::{ceil_u64, f};

/// A contract for reagent held in reserve by a supplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contract {
    /// The supplier or contract name.
    pub name: String,
    /// Tests it covers.
    pub tests: u64,
    /// Whether it is confirmed (a paid deposit); only confirmed contracts count.
    pub confirmed: bool,
}

/// What the city holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stock {
    /// PCR tests physically on hand.
    pub physical_tests: u64,
    /// Contracted reserve.
    pub contracts: Vec<Contract>,
    /// Tests per kit, for orders.
    pub kit_size: u64,
    /// Swabs on hand, if tracked.
    pub swabs: Option<u64>,
    /// Single tubes on hand, if tracked.
    pub single_tubes: Option<u64>,
    /// Pool tubes on hand, if tracked.
    pub pool_tubes: Option<u64>,
    /// Rounds of reagent to hold in all (default 10).
    pub reserve_rounds: f64,
    /// Of which physically on hand (default 6).
    pub physical_rounds: f64,
    /// Days from order to delivery.
    pub order_lead_days: u32,
}

impl Default for Stock {
    fn default() -> Self {
        Stock {
            physical_tests: 0,
            contracts: Vec::new(),
            kit_size: 48,
            swabs: None,
            single_tubes: None,
            pool_tubes: None,
            reserve_rounds: 10.0,
            physical_rounds: 6.0,
            order_lead_days: 3,
        }
    }
}

impl Stock {
    /// Tests under confirmed contracts.
    pub(crate) fn confirmed_tests(&self) -> u64 {
        self.contracts
            .iter()
            .filter(|c| c.confirmed)
            .fold(0u64, |a, c| a.saturating_add(c.tests))
    }

    /// Tests under contracts not (yet) confirmed.
    pub fn unconfirmed_tests(&self) -> u64 {
        self.contracts
            .iter()
            .filter(|c| !c.confirmed)
            .fold(0u64, |a, c| a.saturating_add(c.tests))
    }
}

/// A consumable's stock in rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consumable {
    /// `pcr_tests`, `swabs`, `single_tubes` or `pool_tubes`.
    pub item: &'static str,
    /// Used by one full round.
    pub per_round: u64,
    /// On hand, if tracked.
    pub stock: Option<u64>,
    /// Full rounds the stock covers (`None` when untracked or nothing is used).
    pub rounds: Option<f64>,
}

/// The reserve answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reserve {
    /// Tests one full round uses (first stage plus retests).
    pub tests_per_round: u64,
    /// Tests on hand.
    pub physical_tests: u64,
    /// Tests under confirmed contracts.
    pub confirmed_tests: u64,
    /// Tests under unconfirmed contracts (not counted).
    pub unconfirmed_tests: u64,
    /// Rounds the physical stock covers.
    pub rounds_physical: f64,
    /// Rounds the confirmed contracts cover.
    pub rounds_confirmed: f64,
    /// Rounds physical plus confirmed cover.
    pub rounds_total: f64,
    /// Rounds the unconfirmed contracts would add if confirmed.
    pub rounds_unconfirmed: f64,
    /// Rounds required in all.
    pub required_rounds: f64,
    /// Rounds required physically.
    pub required_physical_rounds: f64,
    /// Whether the physical part is met.
    pub physical_pass: bool,
    /// Whether the total is met.
    pub total_pass: bool,
    /// Both.
    pub pass: bool,
    /// Tests that must be bought physically.
    pub shortfall_physical_tests: u64,
    /// Further tests, bought or under a confirmed contract.
    pub shortfall_other_tests: u64,
    /// Both.
    pub shortfall_tests: u64,
    /// The shortfall in kits.
    pub shortfall_kits: u64,
    /// Kit size used.
    pub kit_size: u64,
    /// Tests, swabs and tubes in rounds.
    pub consumables: Vec<Consumable>,
}

fn rounds(stock: u64, per_round: u64) -> f64 {
    if per_round == 0 {
        0.0
    } else {
        f(stock) / f(per_round)
    }
}

/// Assesses the stock against a round's demand.
///
/// ```
/// use pooltrack::planner::demand::{Demand, Group, Tubing};
/// use pooltrack::planner::reagent::{assess, Stock};
/// let round = Demand::of(&[Group {
///     name: "city".into(),
///     people: 1_000_000,
///     tubing: Tubing::Pooled { pool_size: 10 },
///     prevalence: 0.0,
/// }]);
/// let r = assess(&Stock { physical_tests: 1_000_000, ..Stock::default() }, &round);
/// assert_eq!(r.tests_per_round, 100_000);
/// assert_eq!(r.rounds_physical, 10.0);
/// assert!(r.pass);
/// ```
pub fn assess(stock: &Stock, demand: &Demand) -> Reserve {
    let t = demand.tubes;
    let physical = stock.physical_tests;
    let confirmed = stock.confirmed_tests();
    let unconfirmed = stock.unconfirmed_tests();
    let need_physical = ceil_u64(stock.physical_rounds * f(t));
    let need_total = ceil_u64(stock.reserve_rounds * f(t));
    let short_physical = need_physical.saturating_sub(physical);
    let short_total = need_total.saturating_sub(physical.saturating_add(confirmed));
    let short_other = short_total.saturating_sub(short_physical);
    let shortfall = short_physical.saturating_add(short_other);
    let consumable = |item, per_round: u64, stock: Option<u64>| Consumable {
        item,
        per_round,
        stock,
        rounds: stock
            .filter(|_| per_round > 0)
            .map(|s| rounds(s, per_round)),
    };
    Reserve {
        tests_per_round: t,
        physical_tests: physical,
        confirmed_tests: confirmed,
        unconfirmed_tests: unconfirmed,
        rounds_physical: rounds(physical, t),
        rounds_confirmed: rounds(confirmed, t),
        rounds_total: rounds(physical.saturating_add(confirmed), t),
        rounds_unconfirmed: rounds(unconfirmed, t),
        required_rounds: stock.reserve_rounds,
        required_physical_rounds: stock.physical_rounds,
        physical_pass: short_physical == 0,
        total_pass: short_total == 0,
        pass: shortfall == 0,
        shortfall_physical_tests: short_physical,
        shortfall_other_tests: short_other,
        shortfall_tests: shortfall,
        shortfall_kits: shortfall.div_ceil(stock.kit_size.max(1)),
        kit_size: stock.kit_size,
        consumables: vec![
            consumable("pcr_tests", t, Some(physical)),
            consumable("swabs", demand.swabs, stock.swabs),
            consumable("single_tubes", demand.single_tube_use, stock.single_tubes),
            consumable("pool_tubes", demand.pool_tube_use, stock.pool_tubes),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::demand::{Group, Tubing};

    fn shanghai() -> Demand {
        // 2,748,878 tests a round: 2,500,000 pools + 248,878 retests (see demand.rs).
        Demand::of(&[Group {
            name: "city".into(),
            people: 25_000_000,
            tubing: Tubing::Pooled { pool_size: 10 },
            prevalence: 0.001,
        }])
    }

    fn contract(tests: u64, confirmed: bool) -> Contract {
        Contract {
            name: "c".into(),
            tests,
            confirmed,
        }
    }

    #[test]
    fn a_city_that_holds_its_reserve() {
        // T = 2,748,878. Physical 20,000,000 → 20,000,000 / 2,748,878 = 7.28 rounds (≥ 6);
        // confirmed 8,000,000 → 2.91 rounds; total 28,000,000 → 10.19 rounds (≥ 10): pass.
        // The unconfirmed 5,000,000 (1.82 rounds) are shown but not counted.
        let stock = Stock {
            physical_tests: 20_000_000,
            contracts: vec![contract(8_000_000, true), contract(5_000_000, false)],
            ..Stock::default()
        };
        let r = assess(&stock, &shanghai());
        assert_eq!(r.tests_per_round, 2_748_878);
        assert!((r.rounds_physical - 7.2757).abs() < 1e-4);
        assert!((r.rounds_confirmed - 2.9103).abs() < 1e-4);
        assert!((r.rounds_total - 10.1860).abs() < 1e-4);
        assert!((r.rounds_unconfirmed - 1.8189).abs() < 1e-4);
        assert!(r.pass);
        assert_eq!(r.shortfall_tests, 0);
        assert_eq!(r.shortfall_kits, 0);
    }

    #[test]
    fn a_city_short_of_reagent() {
        // T = 2,748,878; 6 rounds = 16,493,268; 10 rounds = 27,488,780.
        // Physical 15,000,000 (5.46 rounds): short 16,493,268 − 15,000,000 = 1,493,268.
        // Physical + confirmed = 20,000,000 (7.28 rounds): short 27,488,780 − 20,000,000
        //   = 7,488,780, of which 1,493,268 physical and 5,995,512 physical or contract.
        // Kits of 48: ⌈7,488,780 / 48⌉ = ⌈156,016.25⌉ = 156,017.
        // Confirming the 10,000,000 unconfirmed would cover the non-physical part, not
        // the physical one.
        let stock = Stock {
            physical_tests: 15_000_000,
            contracts: vec![contract(5_000_000, true), contract(10_000_000, false)],
            ..Stock::default()
        };
        let r = assess(&stock, &shanghai());
        assert!(!r.physical_pass);
        assert!(!r.total_pass);
        assert_eq!(r.shortfall_physical_tests, 1_493_268);
        assert_eq!(r.shortfall_other_tests, 5_995_512);
        assert_eq!(r.shortfall_tests, 7_488_780);
        assert_eq!(r.shortfall_kits, 156_017);
    }

    #[test]
    fn enough_in_total_but_not_on_hand() {
        // T = 2,748,878: physical 10,000,000 (3.64 rounds) + confirmed 20,000,000: the
        // total (10.91 rounds) is met, the physical 6 is not: 6,493,268 to buy.
        let stock = Stock {
            physical_tests: 10_000_000,
            contracts: vec![contract(20_000_000, true)],
            ..Stock::default()
        };
        let r = assess(&stock, &shanghai());
        assert!(r.total_pass);
        assert!(!r.physical_pass);
        assert!(!r.pass);
        assert_eq!(r.shortfall_physical_tests, 6_493_268);
        assert_eq!(r.shortfall_other_tests, 0);
    }

    #[test]
    fn consumables_scale_with_what_they_touch() {
        // Swabs: 25,000,000 people + 248,878 retests = 25,248,878 a round;
        // 50,497,756 swabs is exactly 2 rounds.
        let stock = Stock {
            swabs: Some(50_497_756),
            pool_tubes: Some(5_000_000),
            ..Stock::default()
        };
        let r = assess(&stock, &shanghai());
        let swabs = &r.consumables[1];
        assert_eq!(swabs.per_round, 25_248_878);
        assert_eq!(swabs.rounds, Some(2.0));
        assert_eq!(r.consumables[2].rounds, None);
        assert_eq!(r.consumables[3].rounds, Some(2.0));
    }
}
