//! Reading text cells out of Arrow string columns.
//!
//! Lists, reports and the plate QC all print cells of the store's text columns, where
//! an optional field (site, lab, plate) is stored as a null; they print it as an empty
//! cell, so one helper decides that once, below the tracker and every list.

use arrow_array::{Array, StringArray};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The key of a person id of the resident-number form (GB 11643: 17 digits, then a
/// digit or `X`) that sorts as its text does; `None` for any other form.
///
/// The first 17 digits times 11, plus the last character (`0`-`9`, `X` as 10): equal
/// lengths make numeric order text order, and `X` sorts after the digits in both.
///
/// ```
/// use pooltrack::text::resident_key;
/// let a = resident_key(b"110105194912310021");
/// let b = resident_key(b"11010519491231002X");
/// assert!(a.is_some() && a < b);
/// assert_eq!(resident_key(b"E12345678"), None);
/// ```
pub fn resident_key(id: &[u8]) -> Option<u64> {
    // Eight digits at a time through a u64: a city's 25 M ids were each folded a digit
    // at a time, 17 dependent multiplications a row.
    let (Some(a), Some(b), [c, last]) = (
        id.first_chunk::<8>(),
        id.get(8..).and_then(<[u8]>::first_chunk::<8>),
        id.get(16..)?,
    ) else {
        return None;
    };
    let last = match last {
        b'0'..=b'9' => u64::from(last - b'0'),
        b'X' => 10,
        _ => return None,
    };
    if !c.is_ascii_digit() {
        return None;
    }
    let (a, b) = (eight_digits(*a)?, eight_digits(*b)?);
    Some(((a * 100_000_000 + b) * 10 + u64::from(c - b'0')) * 11 + last)
}

/// The number eight ASCII digits spell, `None` when one is not a digit.
///
/// The bytes as one little-endian word: a byte is a digit when its high nibble is 3
/// and its low one stays below 16 after adding 6; then three multiplications join
/// neighbours into pairs, fours and the whole.
fn eight_digits(bytes: [u8; 8]) -> Option<u64> {
    let v = u64::from_le_bytes(bytes);
    let high = v & 0xF0F0_F0F0_F0F0_F0F0;
    let carried = (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    if high | carried != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = (v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    Some((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32)
}

/// The id a [`resident_key`] was made of.
///
/// ```
/// use pooltrack::text::{resident_key, resident_text};
/// let key = resident_key(b"11010519491231002X").expect("resident form");
/// assert_eq!(&resident_text(key), b"11010519491231002X");
/// ```
pub fn resident_text(key: u64) -> [u8; 18] {
    let mut out = [b'0'; 18];
    let last = key % 11;
    out[17] = if last == 10 {
        b'X'
    } else {
        b'0' + u8::try_from(last).unwrap_or(0)
    };
    // Two independent halves of digit pairs: the exports and the collections' writer
    // write 25 M ids a round, where a digit at a time was 17 dependent divisions.
    let n = key / 11 % 100_000_000_000_000_000;
    let (high, low) = (n / 1_000_000_000, n % 1_000_000_000);
    let low_top = low / 100_000_000;
    write_eight(&mut out[..8], u32::try_from(high).unwrap_or(0));
    out[8] = b'0' + u8::try_from(low_top).unwrap_or(0);
    write_eight(
        &mut out[9..17],
        u32::try_from(low % 100_000_000).unwrap_or(0),
    );
    out
}

/// The two-digit texts of 0 to 99, end to end.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `v` (below 10^8) as eight digits into `out` (eight bytes long).
fn write_eight(out: &mut [u8], v: u32) {
    let (high, low) = (v / 10_000, v % 10_000);
    for (at, pair) in [high / 100, high % 100, low / 100, low % 100]
        .into_iter()
        .enumerate()
    {
        let p = pair as usize * 2;
        out[at * 2..at * 2 + 2].copy_from_slice(&PAIRS[p..p + 2]);
    }
}

/// Appends `v` in decimal. Sources (`batch N, FILE line L`) are written twice a row
/// for 25 million rows, where the formatting machinery cost more than the rest of
/// the line.
///
/// ```
/// let mut out = b"line ".to_vec();
/// pooltrack::text::push_number_bytes(&mut out, 1_048_576);
/// pooltrack::text::push_number_bytes(&mut out, 0);
/// assert_eq!(out, b"line 10485760");
/// ```
pub fn push_number_bytes(out: &mut Vec<u8>, v: u64) {
    let (digits, at) = decimal(v);
    out.extend_from_slice(&digits[at..]);
}

/// Lets `write` append to `out` as bytes, for writers of byte lines (citations,
/// times) that fill a row's strings too; text that `write` leaves not UTF-8 is
/// dropped, which the writers never do.
///
/// ```
/// let mut out = String::from("line ");
/// pooltrack::text::append_bytes(&mut out, |b| pooltrack::text::push_number_bytes(b, 42));
/// assert_eq!(out, "line 42");
/// ```
pub fn append_bytes(out: &mut String, write: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::mem::take(out).into_bytes();
    write(&mut bytes);
    *out = String::from_utf8(bytes).unwrap_or_default();
}

/// The decimal digits of `v`: `digits[at..]`.
fn decimal(mut v: u64) -> ([u8; 20], usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(v % 10).unwrap_or(0);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    (digits, at)
}

/// Appends `bytes` to `out` as lower-case hex digits, two a byte (so hex text sorts as
/// its bytes do).
///
/// ```
/// let mut out = String::from("id ");
/// pooltrack::text::push_hex(&mut out, &[0x0f, 0xa0]);
/// assert_eq!(out, "id 0fa0");
/// ```
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// The text of row `i` of `a`: `""` for a null, and for a row past the end, so a caller
/// that has checked its columns' lengths need not check each cell again.
///
/// ```
/// use arrow_array::StringArray;
/// use pooltrack::text::text_at;
/// let site = StringArray::from(vec![Some("S1"), None]);
/// assert_eq!(text_at(&site, 0), "S1");
/// assert_eq!(text_at(&site, 1), "");
/// assert_eq!(text_at(&site, 2), "");
/// ```
pub fn text_at(a: &StringArray, i: usize) -> &str {
    if i < a.len() && a.is_valid(i) {
        a.value(i)
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        /// Numbers appended as bytes read as Rust prints them, after what was there.
        #[test]
        fn numbers_appended_as_bytes_are_their_decimal_text(v in proptest::prelude::any::<u64>(), pow in 0u32..20) {
            for v in [v, v % 10u64.pow(pow), 10u64.pow(pow), 10u64.pow(pow) - 1] {
                let mut out = b"line ".to_vec();
                push_number_bytes(&mut out, v);
                proptest::prop_assert_eq!(out, format!("line {v}").into_bytes());
            }
        }
    }

    use super::*;

    /// A digit at a time: what [`resident_key`] and [`resident_text`] must agree with.
    fn key_by_digits(id: &[u8]) -> Option<u64> {
        let [first @ .., last] = id else { return None };
        if first.len() != 17 || !first.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let last = match last {
            b'0'..=b'9' => u64::from(last - b'0'),
            b'X' => 10,
            _ => return None,
        };
        Some(first.iter().fold(0, |n, &b| n * 10 + u64::from(b - b'0')) * 11 + last)
    }

    proptest::proptest! {
        /// Ids of 18 characters from digits, `X` and the bytes next to the digits
        /// (`/`, `:`, and the ones the word-wise check could confuse) read as a digit
        /// at a time reads them, and their keys write back the same text.
        #[test]
        fn resident_keys_read_and_write_as_digit_by_digit(
            id in proptest::collection::vec(proptest::sample::select(b"0123456789X/:\x00\x7f\xb0\xf9\x3a".to_vec()), 16..20),
            digits in "[0-9]{17}[0-9X]",
        ) {
            for id in [id.as_slice(), digits.as_bytes()] {
                let key = resident_key(id);
                proptest::prop_assert_eq!(key, key_by_digits(id));
                if let Some(k) = key {
                    let text = resident_text(k);
                    proptest::prop_assert_eq!(text.as_slice(), id);
                }
            }
        }
    }

    #[test]
    fn resident_keys_at_the_edges() {
        for id in [
            &b"000000000000000000"[..],
            b"99999999999999999X",
            b"00000000900000000X",
        ] {
            let k = resident_key(id).expect("resident form");
            assert_eq!(&resident_text(k), id);
        }
        assert_eq!(resident_key(b"0000000000000000a0"), None);
        assert_eq!(resident_key(b"00000000000000000"), None);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = Vec::new();
        for v in [0, 7, 10, 4_294_967_295, u64::MAX] {
            out.clear();
            push_number_bytes(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
        }
    }
}
