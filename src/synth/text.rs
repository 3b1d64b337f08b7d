//! The rows' text: ids, times, Ct values and whole CSV rows, appended to a buffer
//! without going through `format!`.

use super::{LAB_COUNT, PersonIds};
use crate::time::civil_from_days;

/// Upper bound of every Ct written (strictly below 38).
const CT_MAX: f64 = 37.99;
/// The offset the files are written in, +08:00.
const LOCAL_OFFSET: i64 = 8 * 3600;

/// A Ct value in hundredths, clamped to \[10.00, 37.99\].
pub(super) fn hundredths(ct: f64) -> u32 {
    hundredths_below(ct, CT_MAX)
}

/// A Ct value in hundredths, clamped to \[10.00, `max`\] (`max` at most 100).
// The value is clamped to a small positive range first, so the float-to-int cast
// neither truncates nor loses the sign.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) fn hundredths_below(ct: f64, max: f64) -> u32 {
    (ct.clamp(10.0, max.clamp(10.0, 100.0)) * 100.0).round() as u32
}

/// Appends a tube barcode: `prefix` and the serial in at least 9 digits.
pub(super) fn push_tube(buf: &mut Vec<u8>, prefix: &[u8], serial: u64) {
    buf.extend_from_slice(prefix);
    push_padded(buf, serial, 9);
}

fn digit(v: u64) -> u8 {
    b'0' + u8::try_from(v % 10).unwrap_or(0)
}

/// Appends `v` in decimal, zero-padded to at least `width` (at most 20) digits.
fn push_padded(buf: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = digit(v);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(tmp.len() - width.min(tmp.len()));
    buf.extend_from_slice(&tmp[start..]);
}

fn push_two(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&[digit(v / 10), digit(v)]);
}

/// Appends person `index`'s id in the form `ids` asks for. Both forms are valid
/// resident identity numbers (GB 11643 check character included), so that ingest finds
/// nothing to warn of.
pub(super) fn push_person(buf: &mut Vec<u8>, ids: PersonIds, index: u64) {
    let start = buf.len();
    match ids {
        // `31` and the index + 1 in 15 digits.
        PersonIds::Numbered => {
            buf.extend_from_slice(b"31");
            push_padded(buf, index + 1, 15);
        }
        PersonIds::Resident => push_resident(buf, index),
    }
    let check = buf
        .get(start..)
        .and_then(crate::model::resident_id_check_char)
        .unwrap_or(b'0');
    buf.push(check);
}

/// Person `index`'s id as [`push_person`] writes it.
pub(super) fn person_id(ids: PersonIds, index: u64) -> String {
    let mut buf = Vec::with_capacity(18);
    push_person(&mut buf, ids, index);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Shanghai's 16 district codes: the first six digits of its residents' ids.
const DISTRICTS: [&[u8; 6]; 16] = [
    b"310101", b"310104", b"310105", b"310106", b"310107", b"310109", b"310110", b"310112",
    b"310113", b"310114", b"310115", b"310116", b"310117", b"310118", b"310120", b"310151",
];
/// Birth dates from 1940-01-01 (day -10,958 of the Unix epoch) to 2019-12-31.
const FIRST_BIRTH_DAY: i64 = -10_958;
const BIRTH_DAYS: u64 = 29_220;
/// Sequence numbers of one district and birth date.
const SEQUENCES: u64 = 1_000;
/// Distinct ids [`PersonIds::Resident`] can give.
pub(super) const RESIDENT_IDS: u64 = DISTRICTS.len() as u64 * BIRTH_DAYS * SEQUENCES;

/// Person `index`'s place among the [`RESIDENT_IDS`] ids: a shuffle of `0..2^29` (an
/// odd multiplier and a right xorshift, twice, each one-to-one on 29 bits) walked
/// until it lands below [`RESIDENT_IDS`] (1.15 steps on average). One-to-one on
/// indexes below [`RESIDENT_IDS`], since the walk from one comes back to it at worst.
fn spread(index: u64) -> u64 {
    const MASK: u64 = (1 << 29) - 1;
    let mix = |mut x: u64| {
        x = x.wrapping_mul(0x9E37_79B1) & MASK;
        x ^= x >> 15;
        x = x.wrapping_mul(0x85EB_CA6B) & MASK;
        x ^ (x >> 13)
    };
    let mut x = index & MASK;
    loop {
        x = mix(x);
        if x < RESIDENT_IDS {
            return x;
        }
    }
}

/// The first 17 characters of person `index`'s resident id: district, birth date,
/// sequence. Indexes below [`RESIDENT_IDS`] get distinct ids.
fn push_resident(buf: &mut Vec<u8>, index: u64) {
    let at = spread(index);
    let district = DISTRICTS[usize::try_from(at % 16).unwrap_or(0)];
    let rest = at / 16;
    let day = i64::try_from(rest % BIRTH_DAYS).unwrap_or(0);
    let (y, m, d) = civil_from_days(FIRST_BIRTH_DAY + day);
    buf.extend_from_slice(district);
    push_padded(buf, y.unsigned_abs(), 4);
    push_two(buf, u64::from(m));
    push_two(buf, u64::from(d));
    push_padded(buf, rest / BIRTH_DAYS, 3);
}

/// Appends `unix_secs` as `YYYY-MM-DD HH:MM:SS` at +08:00.
fn push_time(buf: &mut Vec<u8>, unix_secs: i64) {
    let local = unix_secs + LOCAL_OFFSET;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400).unsigned_abs();
    push_padded(buf, y.unsigned_abs(), 4);
    buf.push(b'-');
    push_two(buf, u64::from(m));
    buf.push(b'-');
    push_two(buf, u64::from(d));
    buf.push(b' ');
    push_two(buf, sod / 3600);
    buf.push(b':');
    push_two(buf, sod / 60 % 60);
    buf.push(b':');
    push_two(buf, sod % 60);
}

/// Appends a collections row; `blank` leaves its optional fields (capacity, site) empty.
#[allow(clippy::too_many_arguments)]
pub(super) fn push_collection(
    buf: &mut Vec<u8>,
    prefix: &[u8],
    serial: u64,
    person: (PersonIds, u64),
    single: bool,
    capacity: u8,
    at: i64,
    site: u64,
    blank: bool,
) {
    push_tube(buf, prefix, serial);
    buf.push(b',');
    push_person(buf, person.0, person.1);
    buf.extend_from_slice(if single { b",single," } else { b",pool," });
    if !blank {
        push_padded(buf, u64::from(capacity), 1);
    }
    buf.push(b',');
    push_time(buf, at);
    buf.push(b',');
    if !blank {
        buf.push(b'S');
        push_padded(buf, site, 5);
    }
    buf.push(b'\n');
}

/// Appends a register row: the person and their site's `district,community` text.
pub(super) fn push_registered(buf: &mut Vec<u8>, ids: PersonIds, person: u64, area: &[u8]) {
    push_person(buf, ids, person);
    buf.push(b',');
    buf.extend_from_slice(area);
    buf.push(b'\n');
}

/// Appends a results row; `verdict` None leaves the result field empty. `blank`
/// leaves the optional fields empty: lab, plate and well, and the Cts when the
/// verdict is written (without it the Cts are the result).
#[allow(clippy::too_many_arguments)]
pub(super) fn push_result(
    buf: &mut Vec<u8>,
    prefix: &[u8],
    serial: u64,
    verdict: Option<bool>,
    cts: Option<(u32, u32)>,
    reported: i64,
    lab: usize,
    plate: u64,
    well: u64,
    blank: bool,
) {
    const LAB_NAMES: [&[u8]; LAB_COUNT] = [b"L1", b"L2", b"L3", b"L4"];
    buf.extend_from_slice(prefix);
    push_padded(buf, serial, 9);
    buf.extend_from_slice(match verdict {
        Some(true) => b",positive,",
        Some(false) => b",negative,",
        None => b",,",
    });
    match cts {
        Some((orf, n)) if !(blank && verdict.is_some()) => {
            push_ct(buf, orf);
            buf.push(b',');
            push_ct(buf, n);
        }
        _ => buf.push(b','),
    }
    buf.push(b',');
    push_time(buf, reported);
    if blank {
        buf.extend_from_slice(b",,,\n");
        return;
    }
    let name = LAB_NAMES[lab];
    buf.push(b',');
    buf.extend_from_slice(name);
    buf.push(b',');
    buf.extend_from_slice(name);
    buf.extend_from_slice(b"-P");
    push_padded(buf, plate, 6);
    // Column by column: A01, B01, ..., H01, A02, ...
    buf.push(b',');
    buf.push(b'A' + u8::try_from(well % 8).unwrap_or(0));
    push_two(buf, well / 8 + 1);
    buf.push(b'\n');
}

fn push_ct(buf: &mut Vec<u8>, hundredths: u32) {
    let h = u64::from(hundredths);
    push_padded(buf, h / 100, 1);
    buf.push(b'.');
    push_two(buf, h % 100);
}

#[cfg(test)]
mod tests {
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::SeedableRng;

    use super::*;
    use crate::synth::DAY_START;
    use crate::synth::chunk::{below, secs};
    use crate::time::{Offset, format_local};

    #[test]
    fn times_match_format_local() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut values: Vec<i64> = vec![0, -28_800, DAY_START, 951_782_400, 4_107_542_399];
        values.extend((0..5_000).map(|_| secs(below(&mut rng, 1 << 32))));
        values.extend((0..5_000).map(|_| DAY_START + secs(below(&mut rng, 400_000))));
        for t in values {
            let mut buf = Vec::new();
            push_time(&mut buf, t);
            assert_eq!(
                String::from_utf8(buf).expect("ascii"),
                format_local(t * 1000, Offset::CHINA),
                "{t}"
            );
        }
    }

    #[test]
    fn numbers_are_padded_and_widen() {
        let mut b = Vec::new();
        push_padded(&mut b, 42, 9);
        b.push(b' ');
        push_padded(&mut b, 1_234_567_890, 9);
        b.push(b' ');
        push_padded(&mut b, 0, 1);
        b.push(b' ');
        push_padded(&mut b, u64::MAX, 25);
        b.push(b' ');
        push_ct(&mut b, 2_305);
        b.push(b' ');
        push_person(&mut b, PersonIds::Numbered, 0);
        assert_eq!(
            String::from_utf8(b).expect("ascii"),
            "000000042 1234567890 0 18446744073709551615 23.05 310000000000000012"
        );
        assert_eq!(hundredths(40.3), 3_799);
        assert_eq!(hundredths(23.456), 2_346);
    }

    #[test]
    fn resident_ids_are_valid_distinct_and_dated() {
        let mut seen = std::collections::HashSet::new();
        let mut districts = std::collections::HashSet::new();
        let mut ordered = 0;
        let mut last = String::new();
        for index in (0..100_000).chain(RESIDENT_IDS - 1_000..RESIDENT_IDS) {
            let id = person_id(PersonIds::Resident, index);
            assert_eq!(
                crate::model::resident_id(&id),
                crate::model::ResidentId::Valid,
                "{id}"
            );
            assert!(
                DISTRICTS.iter().any(|d| id.as_bytes().starts_with(*d)),
                "{id}"
            );
            districts.insert(id[..6].to_owned());
            // A real date: it survives the trip through a day number.
            let field = |r: std::ops::Range<usize>| id[r].parse::<i64>().expect("digits");
            let (y, m, d) = (field(6..10), field(10..12), field(12..14));
            let day = crate::time::days_from_civil(y, m, d);
            assert_eq!(
                civil_from_days(day),
                (
                    y,
                    u32::try_from(m).expect("month"),
                    u32::try_from(d).expect("day")
                ),
                "{id}"
            );
            assert!((1940..2020).contains(&y), "{id}");
            ordered += usize::from(id > last);
            last.clone_from(&id);
            assert!(seen.insert(id), "index {index} repeats an id");
        }
        assert_eq!(districts.len(), DISTRICTS.len());
        assert_eq!(
            civil_from_days(FIRST_BIRTH_DAY + i64::try_from(BIRTH_DAYS).expect("small") - 1),
            (2019, 12, 31)
        );
        assert_eq!(civil_from_days(FIRST_BIRTH_DAY), (1940, 1, 1));
        // In no order the rows follow: about half of neighbours ascend.
        assert!((40_000..61_000).contains(&ordered), "{ordered}");
    }

    #[test]
    fn numbered_ids_follow_the_index() {
        assert_eq!(person_id(PersonIds::Numbered, 0), "310000000000000012");
        assert!(person_id(PersonIds::Numbered, 9) < person_id(PersonIds::Numbered, 10));
    }
}
