//! Where a person is registered: the district and community of their sampling site,
//! shared by the plain register ([`super::GenConfig::population`]) and the one
//! `--incidents` stages, so both name the same places.

/// Districts of a city of `sites` sampling sites: 4 to 8, never more than the sites.
pub(super) fn districts(sites: u64) -> u64 {
    (sites / 10).clamp(4, 8).min(sites)
}

/// The district (`D01`…) and community (`D01-C01`…) of `site` (0-based) among
/// `sites`: districts hold consecutive sites, each site is a community.
pub(super) fn area(site: u64, sites: u64) -> (String, String) {
    let districts = districts(sites);
    let district = site * districts / sites.max(1);
    let first = (district * sites).div_ceil(districts.max(1));
    let name = format!("D{:02}", district + 1);
    let community = format!("{name}-C{:02}", site - first + 1);
    (name, community)
}

/// Registered people who got no tube, for a round of `persons`: 0.5 %, rounded up.
pub(super) fn untested(persons: u64) -> u64 {
    persons.div_ceil(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_sites_share_a_district() {
        assert_eq!(area(0, 4), ("D01".to_owned(), "D01-C01".to_owned()));
        assert_eq!(area(3, 4), ("D04".to_owned(), "D04-C01".to_owned()));
        // 100 sites: 8 districts of 12 or 13 sites, numbered from C01 in each.
        assert_eq!(districts(100), 8);
        assert_eq!(area(12, 100).0, "D01");
        assert_eq!(area(13, 100), ("D02".to_owned(), "D02-C01".to_owned()));
        assert_eq!(area(99, 100).0, "D08");
        assert_eq!(districts(1), 1);
        assert_eq!(area(0, 1), ("D01".to_owned(), "D01-C01".to_owned()));
        assert_eq!(untested(10_000), 50);
        assert_eq!(untested(1), 1);
    }
}
