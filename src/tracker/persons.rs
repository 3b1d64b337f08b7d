//! Persons with several rows in a round, found by merging the segments' sorted person
//! indexes, and the status decided for a person.

use crate::Result;
use crate::model::Status;
use crate::store::CollectionIndex;
use crate::store::index;
use crate::store::merge::merge_scans;

/// A person's decided status.
#[derive(Debug, Clone, Copy)]
pub struct PersonStatus {
    /// Their status.
    pub status: Status,
    /// The collection row (their membership of a tube) that decided it.
    pub row: u32,
}

/// Ranges of the person-key space decided in parallel ([`index::partition_start`]).
pub(super) const HASH_RANGES: u32 = index::person_partitions(RANGES_PER_FAMILY);

/// [`HASH_RANGES`] per family of keys.
const RANGES_PER_FAMILY: u32 = 256;

/// The rows of each person who has more than one row in the round, found by merging
/// the segments' sorted person indexes over one range of the hash space.
pub(super) fn multi_row_persons(
    segs: &[&CollectionIndex],
    range: u32,
    n_rows: usize,
) -> Result<Vec<Vec<u32>>> {
    let bound = |r: u32| index::partition_start(r, RANGES_PER_FAMILY).map(u128::to_be_bytes);
    let (lo, hi) = (bound(range).unwrap_or([0; 16]), bound(range + 1));
    let mut scans: Vec<(u32, index::Scan<'_>)> = Vec::with_capacity(segs.len());
    for seg in segs {
        let start = seg.persons.lower_bound_read(&lo)?;
        let end = match hi {
            Some(h) => seg.persons.lower_bound_read(&h)?,
            None => seg.persons.len(),
        };
        if start < end {
            scans.push((seg.base, seg.persons.scan(start..end)));
        }
    }
    let entry = |base: u32, r: &[u8]| {
        let (hash, row) = index::person_entry(r);
        (hash, base.saturating_add(row))
    };
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    // A group is started only when a hash repeats: the 25 M one-row persons cost a
    // comparison with the record before, not a push into a group.
    let mut prev: Option<(u128, u32)> = None;
    let mut open = false;
    let flush = |group: &mut Vec<u32>, groups: &mut Vec<Vec<u32>>| {
        if group.len() > 1 {
            groups.push(std::mem::take(group));
        }
        group.clear();
    };
    let (bases, mut scans): (Vec<u32>, Vec<index::Scan<'_>>) = scans.into_iter().unzip();
    // Rows of later segments are numbered after earlier ones, so (hash, segment) order
    // is (hash, row) order.
    merge_scans(&mut scans, 16, |k, r| {
        let (hash, row) = entry(bases[k], r);
        match prev {
            Some((h, p)) if h == hash => {
                if !open {
                    open = true;
                    if (p as usize) < n_rows {
                        group.push(p);
                    }
                }
                if (row as usize) < n_rows {
                    group.push(row);
                }
            }
            _ if open => {
                flush(&mut group, &mut groups);
                open = false;
            }
            _ => {}
        }
        prev = Some((hash, row));
    })?;
    if open {
        flush(&mut group, &mut groups);
    }
    Ok(groups)
}
