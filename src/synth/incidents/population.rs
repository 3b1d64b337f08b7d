//! The register, `population.csv`: every collected person but the unregistered one,
//! people who got no tube, and each person's district, community and key group.

use std::collections::BTreeMap;

use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::round::Round;
use super::values::count;
use crate::synth::PersonIds;
use crate::synth::chunk::{below, unit};
use crate::synth::register;
use crate::synth::text::person_id;
use crate::{Error, Result};

/// The collected person the register lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnregisteredPerson {
    /// The person id.
    pub person: String,
    /// Their tube.
    pub tube: String,
    /// Their sampling site.
    pub site: String,
}

/// The register, `population.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// Rows of `population.csv`.
    pub registered: u64,
    /// Registered persons with no tube in the round.
    pub untested: u64,
    /// Their ids.
    pub untested_persons: Vec<String>,
    /// Districts.
    pub districts: u64,
    /// Communities (one per sampling site).
    pub communities: u64,
    /// Registered persons per key group.
    pub key_groups: BTreeMap<String, u64>,
}

/// The register: every collected person but one, plus people who got no tube.
pub(super) fn population(
    round: &Round,
    discordant_members: &[String],
    persons: u64,
    ids: PersonIds,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<(Population, UnregisteredPerson, Vec<Vec<String>>)> {
    let site_number = |site: &str| site.get(1..).and_then(|s| s.parse::<u64>().ok());
    let sites = round
        .collections
        .iter()
        .filter_map(|c| site_number(&c.site))
        .max()
        .unwrap_or(0)
        + 1;
    let districts = register::districts(sites);
    let area = |site: u64| register::area(site, sites);

    let start = below(rng, count(round.collections.len()).max(1));
    let unregistered = (0..round.collections.len())
        .map(|k| (usize::try_from(start).unwrap_or(0) + k) % round.collections.len())
        .map(|i| &round.collections[i])
        .find(|c| !round.infected.contains(&c.person) && !discordant_members.contains(&c.person))
        .ok_or_else(|| {
            Error::Usage(
                "--incidents needs an uninfected person to leave out of the register; lower --prevalence"
                    .to_owned(),
            )
        })?;

    let mut key_groups: BTreeMap<String, u64> = BTreeMap::new();
    let mut group = |rng: &mut Xoshiro256PlusPlus| {
        let u = unit(rng);
        let g = if u < 0.01 {
            "cold_chain"
        } else if u < 0.06 {
            "school"
        } else {
            return String::new();
        };
        *key_groups.entry(g.to_owned()).or_default() += 1;
        g.to_owned()
    };
    let mut register = Vec::new();
    for c in &round.collections {
        if c.person == unregistered.person {
            continue;
        }
        let (district, community) = area(site_number(&c.site).unwrap_or(0));
        register.push(vec![c.person.clone(), district, community, group(rng)]);
    }
    let untested = register::untested(persons);
    let mut untested_persons = Vec::new();
    for index in persons..persons + untested {
        let person = person_id(ids, index);
        let (district, community) = area(below(rng, sites));
        register.push(vec![person.clone(), district, community, group(rng)]);
        untested_persons.push(person);
    }
    let population = Population {
        registered: count(register.len()),
        untested,
        untested_persons,
        districts,
        communities: sites,
        key_groups,
    };
    let unregistered = UnregisteredPerson {
        person: unregistered.person.clone(),
        tube: unregistered.tube.clone(),
        site: unregistered.site.clone(),
    };
    Ok((population, unregistered, register))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::synth::incidents::round::{POPULATION_COLUMNS, read_csv};
    use crate::synth::incidents::tests::{cfg, load, staged};

    #[test]
    fn the_unregistered_person_is_collected_but_not_registered() {
        let (dir, incidents) = staged(&cfg(10_000, 7));
        let (round, _, _) = load(dir.path());
        let register =
            read_csv(&dir.path().join("population.csv"), &POPULATION_COLUMNS).expect("population");
        let registered: HashSet<&str> = register.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(registered.len(), register.len(), "one row a person");
        let u = &incidents.unregistered_person;
        assert!(
            round
                .collections
                .iter()
                .any(|c| c.person == u.person && c.tube == u.tube && c.site == u.site)
        );
        assert!(!registered.contains(u.person.as_str()));
        assert!(!round.infected.contains(&u.person));
        for c in round.collections.iter().filter(|c| c.person != u.person) {
            assert!(registered.contains(c.person.as_str()), "{}", c.person);
        }
        // 0.5 % registered without a tube, named like the others.
        let p = &incidents.population;
        assert_eq!(p.untested, 50);
        assert_eq!(count(register.len()), 10_000 - 1 + p.untested);
        for id in &p.untested_persons {
            assert!(registered.contains(id.as_str()));
            assert!(id.len() == 18 && id.starts_with("31"), "{id}");
            assert!(!round.collections.iter().any(|c| &c.person == id));
        }
        // Districts and communities follow the sites; groups are few and known.
        assert_eq!((p.districts, p.communities), (4, 4));
        for row in &register {
            assert!(row[1].starts_with('D') && row[2].starts_with(&format!("{}-C", row[1])));
            assert!(
                ["", "cold_chain", "school"].contains(&row[3].as_str()),
                "{row:?}"
            );
        }
        assert!(p.key_groups.values().all(|&n| n > 0));
    }
}
