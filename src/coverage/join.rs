//! The join of the population register with a round, on sorted 128-bit person hashes.
//!
//! Both sides come from sorted sidecars (`.persons`: hash, row), so one range of the
//! hash space is joined by merging each sidecar's slice of that range ([`merged`]:
//! usually one slice, or a city's batch and its retests) and walking both sides once.
//! No person id is read and no map of ids is built.
//!
//! A person registered more than once has each optional field (district, community,
//! group) from the latest registration that states it — later batch, then later line —
//! so a blank field of a re-registration means "not stated" and keeps the earlier
//! value. A field no registration states stays blank.

/// A population registration: person hash, population segment (oldest first), row,
/// and the row's kind (what it states: see [`super::areas::Kind`]).
pub(crate) type Registration = (u128, u32, u32, u32);

/// A membership of the round: person hash and collection row of the round.
pub type Membership = (u128, u32);

/// A registration that states a district.
pub(crate) const DISTRICT: u8 = 1;
/// A registration that states a community.
pub(crate) const COMMUNITY: u8 = 2;
/// A registration that states a key group.
pub(crate) const GROUP: u8 = 4;
const ALL: u8 = DISTRICT | COMMUNITY | GROUP;

/// A registered person, each field from the latest registration that states it (or
/// from the latest registration when none does, which leaves the field blank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    /// The kind of the registration the district comes from.
    pub district: u32,
    /// The kind of the registration the community comes from.
    pub community: u32,
    /// The registration (segment, row) the group comes from: the row to read the
    /// person's id and group from.
    pub group: (u32, u32),
    /// Whether they have a tube in the round.
    pub tested: bool,
}

/// What joining one range of hashes found: what the tests below check.
#[cfg(test)]
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Joined {
    /// Each registered person, once.
    pub registered: Vec<Person>,
    /// The first collection row of each person in the round who is not registered.
    pub unregistered: Vec<u32>,
}

/// [`join_each`] without the rows: what the tests below check.
#[cfg(test)]
pub fn join(
    mut population: Vec<Registration>,
    mut round: Vec<Membership>,
    stated: impl Fn(u32) -> u8,
) -> Joined {
    population.sort_unstable();
    round.sort_unstable();
    let mut registered = Vec::new();
    let unregistered = join_each(
        &population,
        &round,
        stated,
        |_, _| {},
        |p| registered.push(p),
    );
    Joined {
        registered,
        unregistered,
    }
}

/// Merges sorted runs into one sorted vector of `len` items; equal items keep the
/// order of their runs. The round's memberships in a range of hashes are one run per
/// collections segment: one or two for a city's round, merged head by head without a
/// sort (sorting them was a twentieth of the round report); past [`MERGE_WAYS`] runs
/// (a lab's day of thousands of batches) they are gathered and sorted, which merges
/// the runs it finds.
pub(crate) fn merged<T: Ord + Copy>(mut runs: Vec<impl Iterator<Item = T>>, len: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    if runs.len() > MERGE_WAYS {
        for run in runs {
            out.extend(run);
        }
        out.sort();
        return out;
    }
    let mut heads: Vec<Option<T>> = runs.iter_mut().map(Iterator::next).collect();
    let mut live = heads.iter().filter(|h| h.is_some()).count();
    while live > 1 {
        // The first run holding the least head, so that ties keep the runs' order.
        let mut least: Option<(usize, T)> = None;
        for (k, head) in heads.iter().enumerate() {
            if let Some(h) = *head
                && least.is_none_or(|(_, l)| h < l)
            {
                least = Some((k, h));
            }
        }
        let Some((k, h)) = least else {
            break;
        };
        out.push(h);
        heads[k] = runs[k].next();
        if heads[k].is_none() {
            live -= 1;
        }
    }
    // One run left: the rest of it in one go.
    if let Some(k) = heads.iter().position(Option::is_some) {
        out.extend(heads[k].take());
        out.extend(runs.swap_remove(k));
    }
    out
}

/// Merges the sorted run `big`, read by position (`at(i)` for each `i` in `big`), with
/// the sorted run `small` into `out`: for each item of `small` the items of `big` below
/// it are found by galloping (1, 2, 4... ahead, then a binary search) and copied in
/// one go. A city's round is one large collections segment and a small one of
/// retests, so nearly every item is copied without a comparison of its own (a merge
/// comparing heads item by item was a twentieth of the round report).
pub(crate) fn merge_galloping<T: Ord + Copy>(
    out: &mut Vec<T>,
    big: std::ops::Range<usize>,
    at: impl Fn(usize) -> T,
    small: impl IntoIterator<Item = T>,
) {
    let end = big.end;
    let mut next = big.start;
    for s in small {
        // The first position from `next` on whose item is not below `s`.
        let (mut lo, mut hi, mut step) = (next, next, 1);
        while hi < end && at(hi) < s {
            lo = hi + 1;
            hi += step;
            step *= 2;
        }
        let hi = hi.min(end);
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if at(mid) < s {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        out.extend((next..a).map(&at));
        out.push(s);
        next = a;
    }
    out.extend((next..end).map(&at));
}

/// Runs [`merged`] merges head by head; more are gathered and sorted.
const MERGE_WAYS: usize = 8;

/// Joins registrations with memberships, both sorted. A person registered several
/// times is counted once; `stated` says which fields ([`DISTRICT`], [`COMMUNITY`], [`GROUP`])
/// a kind of registration states, and each field comes from the latest registration
/// stating it: the highest segment, then the highest row (rows of a segment are in
/// input order). Calls `on_person(person)` for each registered person, once, and
/// `on_row(row, person)` for every membership as [`resolve_rows`] does, so one walk
/// gives coverage and each row's area; returns the first collection row of each person
/// in the round who is not registered.
///
/// The persons go to a callback rather than into a vector: the report's join tallied
/// 25 M of them from vectors it wrote and read back.
pub(crate) fn join_each(
    population: &[Registration],
    round: &[Membership],
    stated: impl Fn(u32) -> u8,
    mut on_row: impl FnMut(u32, Option<Person>),
    mut on_person: impl FnMut(Person),
) -> Vec<u32> {
    debug_assert!(population.is_sorted() && round.is_sorted());
    let mut unregistered = Vec::new();
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
            let mut end = i + 1;
            while end < population.len() && population[end].0 == hash {
                end += 1;
            }
            let person = resolve(&population[i..end], &stated, tested);
            if let Some(person) = person {
                on_person(person);
            }
            i = end;
            if tested {
                let hash = round[j].0;
                while j < round.len() && round[j].0 == hash {
                    on_row(round[j].1, person);
                    j += 1;
                }
            }
        } else if tested {
            let (hash, first_row) = round[j];
            unregistered.push(first_row);
            while j < round.len() && round[j].0 == hash {
                on_row(round[j].1, None);
                j += 1;
            }
        }
    }
    unregistered
}

/// Joins registrations with memberships (both sorted) row by row: calls
/// `emit(row, person)` for every membership, with the person their registrations
/// resolve to (as [`join_each`] resolves them), or `None` for a person who is not
/// registered.
pub(crate) fn resolve_rows(
    population: &[Registration],
    round: &[Membership],
    stated: impl Fn(u32) -> u8,
    mut emit: impl FnMut(u32, Option<Person>),
) {
    debug_assert!(population.is_sorted() && round.is_sorted());
    let mut i = 0;
    let mut j = 0;
    while j < round.len() {
        let hash = round[j].0;
        while i < population.len() && population[i].0 < hash {
            i += 1;
        }
        let mut end = i;
        while end < population.len() && population[end].0 == hash {
            end += 1;
        }
        let person = resolve(&population[i..end], &stated, true);
        while j < round.len() && round[j].0 == hash {
            emit(round[j].1, person);
            j += 1;
        }
        i = end;
    }
}

/// The registered persons with no membership: of each person hash in `population`
/// (hash, row; sorted) that no membership in `round` (sorted) has, the row of its
/// latest registration (the highest row across the segments).
pub(crate) fn untested(population: &[(u128, u32)], round: &[Membership]) -> Vec<u32> {
    debug_assert!(population.is_sorted() && round.is_sorted());
    let mut out = Vec::new();
    let mut j = 0;
    let mut i = 0;
    while i < population.len() {
        let hash = population[i].0;
        let mut end = i + 1;
        while end < population.len() && population[end].0 == hash {
            end += 1;
        }
        while j < round.len() && round[j].0 < hash {
            j += 1;
        }
        if round.get(j).is_none_or(|m| m.0 != hash) {
            out.push(population[end - 1].1);
        }
        i = end;
    }
    out
}

/// One person's fields from their registrations `regs` (sorted, oldest first): each
/// from the latest registration stating it. Walks back from the latest only as far as
/// a field is still missing, and asks nothing of a person registered once.
fn resolve(regs: &[Registration], stated: &impl Fn(u32) -> u8, tested: bool) -> Option<Person> {
    let (&(_, segment, row, kind), earlier) = regs.split_last()?;
    let mut person = Person {
        district: kind,
        community: kind,
        group: (segment, row),
        tested,
    };
    if earlier.is_empty() {
        return Some(person);
    }
    let mut missing = ALL & !stated(kind);
    for &(_, segment, row, kind) in earlier.iter().rev() {
        if missing == 0 {
            break;
        }
        let found = stated(kind) & missing;
        if found & DISTRICT != 0 {
            person.district = kind;
        }
        if found & COMMUNITY != 0 {
            person.community = kind;
        }
        if found & GROUP != 0 {
            person.group = (segment, row);
        }
        missing &= !found;
    }
    Some(person)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_untested_are_the_registered_hashes_no_membership_has_at_their_latest_row() {
        // Two segments' sidecars (sorted runs) and a round of two segments.
        let population = vec![(1, 0), (3, 1), (5, 2), (7, 3), (3, 10), (9, 11), (9, 12)];
        let round = vec![(3, 0), (8, 1), (1, 2), (3, 3)];
        let (mut sorted_population, mut sorted_round) = (population.clone(), round.clone());
        sorted_population.sort_unstable();
        sorted_round.sort_unstable();
        let mut got = untested(&sorted_population, &sorted_round);
        got.sort_unstable();
        // A naive model: each registered hash's highest row, kept when no membership
        // names the hash.
        let mut latest = std::collections::BTreeMap::new();
        for &(h, row) in &population {
            let e = latest.entry(h).or_insert(row);
            *e = (*e).max(row);
        }
        let mut want: Vec<u32> = latest
            .into_iter()
            .filter(|(h, _)| !round.iter().any(|m| m.0 == *h))
            .map(|(_, row)| row)
            .collect();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(got, [2, 3, 12]);
    }

    /// In these tests a registration kind's low bits are the fields it states; higher
    /// bits tell kinds stating the same fields apart.
    fn states(kind: u32) -> u8 {
        u8::try_from(kind & u32::from(ALL)).unwrap_or(0)
    }

    fn person(district: u32, community: u32, group: (u32, u32), tested: bool) -> Person {
        Person {
            district,
            community,
            group,
            tested,
        }
    }

    /// A person who states every field in one registration.
    fn whole(segment: u32, row: u32, tested: bool) -> Person {
        person(u32::from(ALL), u32::from(ALL), (segment, row), tested)
    }

    const A: u32 = ALL as u32;

    #[test]
    fn one_walk_places_each_row_as_resolve_rows_does() {
        let d = u32::from(DISTRICT);
        let population = vec![(1, 0, 0, A), (2, 0, 1, A), (2, 1, 0, d), (4, 0, 2, A)];
        let mut round = vec![(2, 7), (3, 4), (2, 9), (4, 1), (0, 3)];
        round.sort_unstable();
        let mut by_walk = Vec::new();
        let mut registered = 0;
        let unregistered = join_each(
            &population,
            &round,
            states,
            |row, p| by_walk.push((row, p)),
            |_| registered += 1,
        );
        let mut by_rows = Vec::new();
        resolve_rows(&population, &round, states, |row, p| by_rows.push((row, p)));
        by_walk.sort_by_key(|&(row, _)| row);
        by_rows.sort_by_key(|&(row, _)| row);
        assert_eq!(by_walk, by_rows);
        assert_eq!(by_walk.len(), 5);
        assert_eq!(unregistered, [3, 4]);
        assert_eq!(registered, 3);
    }

    #[test]
    fn registered_persons_with_a_tube_are_tested() {
        let j = join(
            vec![(1, 0, 0, A), (2, 0, 1, A), (3, 0, 2, A)],
            vec![(2, 7), (3, 4)],
            states,
        );
        assert_eq!(
            j.registered,
            [whole(0, 0, false), whole(0, 1, true), whole(0, 2, true)],
            "{j:?}"
        );
        assert!(j.unregistered.is_empty());
    }

    #[test]
    fn the_latest_registration_wins() {
        // Person 5 registered in segment 0 row 3, again in segment 1 row 0, and twice
        // within segment 1 (rows 0 and 2): segment 1 row 2 is the latest.
        let j = join(
            vec![(5, 1, 2, A), (5, 0, 3, A), (5, 1, 0, A)],
            vec![],
            states,
        );
        assert_eq!(j.registered, [whole(1, 2, false)]);
    }

    #[test]
    fn a_blank_field_keeps_the_earlier_registration_s_value() {
        // Segment 0 states everything; segment 1 (a later batch) states only a
        // district: the district moves, the community and group stay.
        let d = u32::from(DISTRICT);
        let j = join(vec![(5, 1, 0, d), (5, 0, 3, A)], vec![], states);
        assert_eq!(j.registered, [person(d, A, (0, 3), false)]);
        // The same within one segment: row 4 leaves the district blank.
        let cg = u32::from(COMMUNITY | GROUP);
        let j = join(vec![(5, 0, 4, cg), (5, 0, 1, A)], vec![(5, 9)], states);
        assert_eq!(j.registered, [person(A, cg, (0, 4), true)]);
    }

    #[test]
    fn each_field_comes_from_the_latest_registration_stating_it() {
        let (d1, d2) = (u32::from(DISTRICT) | 8, u32::from(DISTRICT) | 16);
        let (c, g1, g2) = (u32::from(COMMUNITY), u32::from(GROUP) | 8, u32::from(GROUP));
        // Oldest first: group (0,0), community (0,1), group (0,2), district (1,0),
        // blank (1,1), another district (2,0), blank (2,1).
        let regs = vec![
            (7, 2, 1, 0),
            (7, 0, 0, g1),
            (7, 1, 1, 0),
            (7, 0, 2, g2),
            (7, 2, 0, d2),
            (7, 0, 1, c),
            (7, 1, 0, d1),
        ];
        let j = join(regs, vec![], states);
        assert_eq!(j.registered, [person(d2, c, (0, 2), false)]);
    }

    #[test]
    fn fields_never_stated_come_from_the_latest_registration() {
        let d = u32::from(DISTRICT);
        let j = join(vec![(3, 0, 0, d), (3, 1, 5, 0)], vec![], states);
        // District from row (0,0); community and group stated nowhere: the latest
        // registration, whose kind states neither.
        assert_eq!(j.registered, [person(d, 0, (1, 5), false)]);
        let j = join(vec![(3, 0, 0, 0), (3, 0, 1, 0)], vec![], states);
        assert_eq!(j.registered, [person(0, 0, (0, 1), false)]);
    }

    #[test]
    fn a_person_registered_once_is_not_asked_about() {
        let j = join(vec![(1, 0, 0, 99)], vec![], |_| {
            panic!("one registration needs no resolving")
        });
        assert_eq!(j.registered, [person(99, 99, (0, 0), false)]);
    }

    #[test]
    fn unregistered_persons_are_listed_once_with_their_first_row() {
        let j = join(
            vec![(4, 0, 0, A)],
            vec![(9, 12), (1, 30), (9, 3), (4, 8), (4, 2)],
            states,
        );
        assert_eq!(j.registered, [whole(0, 0, true)]);
        assert_eq!(j.unregistered, [30, 3]);
    }

    #[test]
    fn every_row_gets_its_person_or_none() {
        let d = u32::from(DISTRICT);
        let mut seen = Vec::new();
        resolve_rows(
            &[(2, 0, 1, A), (4, 0, 0, A), (4, 1, 3, d)],
            &[(2, 5), (4, 2), (4, 8), (9, 12)],
            states,
            |row, p| seen.push((row, p)),
        );
        seen.sort_unstable_by_key(|(row, _)| *row);
        assert_eq!(
            seen,
            [
                (2, Some(person(d, A, (0, 0), true))),
                (5, Some(whole(0, 1, true))),
                (8, Some(person(d, A, (0, 0), true))),
                (12, None),
            ]
        );
    }

    proptest::proptest! {
        /// Any number of sorted runs, with equal keys across runs, merge into what a
        /// stable sort of their concatenation gives: the same items, ties in the order
        /// of their runs (the run number rides along to show it).
        #[test]
        fn merged_runs_equal_a_stable_sort(
            runs in proptest::collection::vec(proptest::collection::vec(0u8..6, 0..40), 0..12)
        ) {
            let runs: Vec<Vec<(u8, usize)>> = runs
                .into_iter()
                .enumerate()
                .map(|(k, mut run)| {
                    run.sort_unstable();
                    run.into_iter().map(|key| (key, k)).collect()
                })
                .collect();
            let mut want: Vec<(u8, usize)> = runs.concat();
            want.sort_by_key(|&(key, _)| key);
            let len = want.len();
            let got = merged(runs.into_iter().map(Vec::into_iter).collect(), len);
            proptest::prop_assert_eq!(got, want);
        }
    }

    proptest::proptest! {
        /// A run read by position merged with a small run gives what sorting both does.
        #[test]
        fn galloping_merge_equals_a_sort(
            mut big in proptest::collection::vec(0u16..300, 0..200),
            mut small in proptest::collection::vec(0u16..300, 0..30),
        ) {
            big.sort_unstable();
            small.sort_unstable();
            let mut want = [big.clone(), small.clone()].concat();
            want.sort_unstable();
            let mut got = Vec::new();
            merge_galloping(&mut got, 0..big.len(), |i| big[i], small.iter().copied());
            proptest::prop_assert_eq!(&got, &want);
            // The roles swapped: a small run read by position, a large one streamed.
            let mut got = Vec::new();
            merge_galloping(&mut got, 0..small.len(), |i| small[i], big.iter().copied());
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn empty_sides() {
        assert_eq!(join(vec![], vec![], states), Joined::default());
        let j = join(vec![], vec![(u128::MAX, 0)], states);
        assert_eq!(j.unregistered, [0]);
        let j = join(vec![(u128::MAX, 2, 5, A)], vec![], states);
        assert_eq!(j.registered, [whole(2, 5, false)]);
    }
}
