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
    let [first @ .., last] = id else {
        return None;
    };
    if first.len() != 17 {
        return None;
    }
    let last = match last {
        b'0'..=b'9' => u64::from(last - b'0'),
        b'X' => 10,
        _ => return None,
    };
    let mut n = 0u64;
    for &b in first {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n * 11 + last)
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
    let mut n = key / 11;
    for c in out[..17].iter_mut().rev() {
        *c = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
    }
    out
}

/// Appends `v` in decimal. Sources (`batch N, FILE line L`) are written twice a row
/// for 25 million rows, where the formatting machinery cost more than the rest of
/// the line.
///
/// ```
/// let mut out = String::from("line ");
/// pooltrack::text::push_number(&mut out, 1_048_576);
/// pooltrack::text::push_number(&mut out, 0);
/// assert_eq!(out, "line 10485760");
/// ```
pub fn push_number(out: &mut String, v: u64) {
    let (digits, at) = decimal(v);
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// [`push_number`] onto a line of bytes.
pub(crate) fn push_number_bytes(out: &mut Vec<u8>, v: u64) {
    let (digits, at) = decimal(v);
    out.extend_from_slice(&digits[at..]);
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

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = String::new();
        for v in [0, 7, 10, 4_294_967_295, u64::MAX] {
            out.clear();
            push_number(&mut out, v);
            assert_eq!(out, v.to_string());
        }
    }
}
