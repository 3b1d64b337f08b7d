//! Reading text cells out of Arrow string columns.
//!
//! Lists, reports and the plate QC all print cells of the store's text columns, where
//! an optional field (site, lab, plate) is stored as a null; they print it as an empty
//! cell, so one helper decides that once, below the tracker and every list.

use arrow_array::{Array, StringArray};

const HEX: &[u8; 16] = b"0123456789abcdef";

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
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut v = v;
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(v % 10).unwrap_or(0);
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
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
