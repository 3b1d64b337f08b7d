//! The join of the population register with a round, on sorted 128-bit person hashes.
//!
//! Both sides come from sorted sidecars (`.persons`: hash, row), so one range of the
//! hash space is joined by concatenating each sidecar's slice of that range, sorting
//! (the slices are already sorted runs, which the stable sort merges) and walking both
//! sides once. No person id is read and no map of ids is built.

/// A population registration: person hash, population segment (oldest first), row.
pub type Registration = (u128, u32, u32);

/// A membership of the round: person hash and collection row of the round.
pub type Membership = (u128, u32);

/// What joining one range of hashes found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Joined {
    /// Each registered person's latest registration (segment, row) and whether they
    /// have a tube in the round.
    pub registered: Vec<(u32, u32, bool)>,
    /// The first collection row of each person in the round who is not registered.
    pub unregistered: Vec<u32>,
}

/// Joins registrations with memberships. A person registered several times is
/// counted once, with the latest registration: the highest segment, then the highest
/// row (rows of a segment are in input order).
pub fn join(mut population: Vec<Registration>, mut round: Vec<Membership>) -> Joined {
    population.sort();
    round.sort();
    let mut out = Joined::default();
    let (mut i, mut j) = (0, 0);
    while i < population.len() || j < round.len() {
        let p = population.get(i).map(|r| r.0);
        let c = round.get(j).map(|r| r.0);
        let (registered, tested) = match (p, c) {
            (Some(p), Some(c)) => (p <= c, p >= c),
            (Some(_), None) => (true, false),
            (None, _) => (false, true),
        };
        if registered {
            let hash = population[i].0;
            while i + 1 < population.len() && population[i + 1].0 == hash {
                i += 1;
            }
            let (_, segment, row) = population[i];
            out.registered.push((segment, row, tested));
            i += 1;
        }
        if tested {
            let (hash, first_row) = round[j];
            if !registered {
                out.unregistered.push(first_row);
            }
            while j < round.len() && round[j].0 == hash {
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_persons_with_a_tube_are_tested() {
        let j = join(vec![(1, 0, 0), (2, 0, 1), (3, 0, 2)], vec![(2, 7), (3, 4)]);
        assert_eq!(
            j.registered,
            [(0, 0, false), (0, 1, true), (0, 2, true)],
            "{j:?}"
        );
        assert!(j.unregistered.is_empty());
    }

    #[test]
    fn the_latest_registration_wins() {
        // Person 5 registered in segment 0 row 3, again in segment 1 row 0, and twice
        // within segment 1 (rows 0 and 2): segment 1 row 2 is the latest.
        let j = join(vec![(5, 1, 2), (5, 0, 3), (5, 1, 0)], vec![]);
        assert_eq!(j.registered, [(1, 2, false)]);
    }

    #[test]
    fn unregistered_persons_are_listed_once_with_their_first_row() {
        let j = join(
            vec![(4, 0, 0)],
            vec![(9, 12), (1, 30), (9, 3), (4, 8), (4, 2)],
        );
        assert_eq!(j.registered, [(0, 0, true)]);
        assert_eq!(j.unregistered, [30, 3]);
    }

    #[test]
    fn empty_sides() {
        assert_eq!(join(vec![], vec![]), Joined::default());
        let j = join(vec![], vec![(u128::MAX, 0)]);
        assert_eq!(j.unregistered, [0]);
        let j = join(vec![(u128::MAX, 2, 5)], vec![]);
        assert_eq!(j.registered, [(2, 5, false)]);
    }
}
