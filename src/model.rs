//! The domain's vocabulary: tube modes, test outcomes, person statuses, and the rules
//! for what a valid tube barcode, person id and round name look like.
//!
//! One job: the words every layer shares. The file passes 600 lines only with its tests.

use serde::{Deserialize, Serialize};

/// How a tube was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One person, one tube (单采单检).
    Single,
    /// Several people's swabs in one tube (混采), 5, 10 or 20 to a tube.
    Pool,
}

impl Mode {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Pool => "pool",
        }
    }

    /// Reads `single` or `pool`, in any case.
    pub fn parse(s: &str) -> Option<Mode> {
        if s.eq_ignore_ascii_case("single") {
            Some(Mode::Single)
        } else if s.eq_ignore_ascii_case("pool") {
            Some(Mode::Pool)
        } else {
            None
        }
    }

    /// Persons a tube of this mode holds when the file does not say.
    pub fn default_capacity(self) -> u8 {
        match self {
            Mode::Single => 1,
            Mode::Pool => 10,
        }
    }

    /// The compact code stored in Parquet and in the index.
    pub fn code(self) -> u8 {
        match self {
            Mode::Single => 0,
            Mode::Pool => 1,
        }
    }

    /// Inverse of [`Mode::code`].
    pub fn from_code(c: u8) -> Option<Mode> {
        match c {
            0 => Some(Mode::Single),
            1 => Some(Mode::Pool),
            _ => None,
        }
    }
}

/// A tube's test outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No target amplified (阴性).
    Negative,
    /// Both targets amplified below the cut-off (阳性).
    Positive,
    /// Exactly one target amplified: resample and retest.
    Inconclusive,
    /// The internal control failed: the result says nothing.
    Invalid,
}

impl Outcome {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Negative => "negative",
            Outcome::Positive => "positive",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Invalid => "invalid",
        }
    }

    /// Reads a result word in any case, or 阴性 / 阳性.
    ///
    /// ```
    /// use pooltrack::model::Outcome;
    /// assert_eq!(Outcome::parse("POSITIVE"), Some(Outcome::Positive));
    /// assert_eq!(Outcome::parse("阴性"), Some(Outcome::Negative));
    /// assert_eq!(Outcome::parse("maybe"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Outcome> {
        const WORDS: [(&str, Outcome); 4] = [
            ("negative", Outcome::Negative),
            ("positive", Outcome::Positive),
            ("inconclusive", Outcome::Inconclusive),
            ("invalid", Outcome::Invalid),
        ];
        match s {
            "阴性" => return Some(Outcome::Negative),
            "阳性" => return Some(Outcome::Positive),
            _ => {}
        }
        WORDS
            .iter()
            .find(|(w, _)| s.eq_ignore_ascii_case(w))
            .map(|&(_, o)| o)
    }

    /// Reads Ct values: both targets below `cutoff` → positive, one → inconclusive,
    /// none → negative. `None` means no amplification.
    ///
    /// ```
    /// use pooltrack::model::Outcome;
    /// assert_eq!(Outcome::from_ct(Some(25.0), Some(27.5), 40.0), Outcome::Positive);
    /// assert_eq!(Outcome::from_ct(Some(38.0), None, 40.0), Outcome::Inconclusive);
    /// assert_eq!(Outcome::from_ct(Some(41.0), None, 40.0), Outcome::Negative);
    /// ```
    pub fn from_ct(orf1ab: Option<f32>, n: Option<f32>, cutoff: f32) -> Outcome {
        let hit = |ct: Option<f32>| ct.is_some_and(|c| c < cutoff);
        match (hit(orf1ab), hit(n)) {
            (true, true) => Outcome::Positive,
            (false, false) => Outcome::Negative,
            _ => Outcome::Inconclusive,
        }
    }

    /// The compact code stored in Parquet and in the index.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Negative => 0,
            Outcome::Positive => 1,
            Outcome::Inconclusive => 2,
            Outcome::Invalid => 3,
        }
    }

    /// Inverse of [`Outcome::code`].
    pub fn from_code(c: u8) -> Option<Outcome> {
        match c {
            0 => Some(Outcome::Negative),
            1 => Some(Outcome::Positive),
            2 => Some(Outcome::Inconclusive),
            3 => Some(Outcome::Invalid),
            _ => None,
        }
    }
}

/// What a result row is: a tested tube, or one of its plate's controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleType {
    /// A collected tube (the default when a file has no `sample_type` column).
    #[default]
    Sample,
    /// A no-template control: it must not amplify.
    NegativeControl,
    /// A weak-positive control: both targets must amplify.
    PositiveControl,
}

impl SampleType {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            SampleType::Sample => "sample",
            SampleType::NegativeControl => "negative_control",
            SampleType::PositiveControl => "positive_control",
        }
    }

    /// Reads a sample type in any case; empty is `sample`.
    ///
    /// ```
    /// use pooltrack::model::SampleType;
    /// assert_eq!(SampleType::parse(""), Some(SampleType::Sample));
    /// assert_eq!(SampleType::parse("Negative_Control"), Some(SampleType::NegativeControl));
    /// assert_eq!(SampleType::parse("blank"), None);
    /// ```
    pub fn parse(s: &str) -> Option<SampleType> {
        if s.is_empty() {
            return Some(SampleType::Sample);
        }
        [
            SampleType::Sample,
            SampleType::NegativeControl,
            SampleType::PositiveControl,
        ]
        .into_iter()
        .find(|t| s.eq_ignore_ascii_case(t.as_str()))
    }

    /// Whether the row is a control rather than a tube.
    pub fn is_control(self) -> bool {
        self != SampleType::Sample
    }
}

/// A person's status in a round, decided from their tubes by the rules in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A single tube of theirs is positive.
    Positive,
    /// Their pool tube is positive or inconclusive and no single retest has cleared it:
    /// they must be re-swabbed in a single tube.
    Recall,
    /// Recalled, and the single retest tube is collected but has no result yet.
    RetestPending,
    /// A tube was invalid, or their single tube inconclusive: swab again.
    Resample,
    /// A tube of theirs has no result yet.
    Pending,
    /// Every tube has a result and none calls for action.
    Negative,
}

impl Status {
    /// Every status, in the order reports list them.
    pub const ALL: [Status; 6] = [
        Status::Positive,
        Status::Recall,
        Status::RetestPending,
        Status::Resample,
        Status::Pending,
        Status::Negative,
    ];

    /// The name used in files and on the terminal.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Positive => "positive",
            Status::Recall => "recall",
            Status::RetestPending => "retest_pending",
            Status::Resample => "resample",
            Status::Pending => "pending",
            Status::Negative => "negative",
        }
    }

    /// Position in [`Status::ALL`], for counting into arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a field's value was refused, worded for a lab clerk.
pub(crate) type FieldError = &'static str;

/// Checks a tube barcode: 4–32 characters of `A-Z a-z 0-9 -`.
///
/// ```
/// use pooltrack::model::check_tube;
/// assert!(check_tube("PL-000123").is_ok());
/// assert!(check_tube("AB1").is_err());
/// assert!(check_tube("PL 0001").is_err());
/// ```
pub fn check_tube(s: &str) -> Result<(), FieldError> {
    if !(4..=32).contains(&s.len()) {
        return Err("tube barcode must be 4-32 characters long");
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err("tube barcode may hold only letters A-Z a-z, digits and '-'");
    }
    Ok(())
}

/// Checks a box barcode: the form of a tube barcode (4–32 characters of
/// `A-Z a-z 0-9 -`); the reason names the box.
///
/// ```
/// use pooltrack::model::check_box;
/// assert!(check_box("BX01").is_ok());
/// assert_eq!(check_box("B 1").unwrap_err(), "box barcode must be 4-32 characters long");
/// ```
pub fn check_box(s: &str) -> Result<(), String> {
    check_tube(s).map_err(|why| why.replace("tube barcode", "box barcode"))
}

/// Checks a person id: 1–64 printable characters (any script), no control characters.
pub fn check_person(s: &str) -> Result<(), FieldError> {
    // Nearly every id is printable ASCII: one pass over its bytes settles it.
    if (1..=64).contains(&s.len()) && s.bytes().all(|b| (b' '..0x7f).contains(&b)) {
        return Ok(());
    }
    if s.is_ascii() {
        return match s.len() {
            0 => Err("person id is empty"),
            65.. => Err("person id is longer than 64 characters"),
            _ => Err("person id holds a control character"),
        };
    }
    let n = s.chars().count();
    if n == 0 {
        return Err("person id is empty");
    }
    if n > 64 {
        return Err("person id is longer than 64 characters");
    }
    if s.chars().any(char::is_control) {
        return Err("person id holds a control character");
    }
    Ok(())
}

/// What ingest does with a resident identity number whose check character is wrong
/// (`[ids] id_check` in `STORE/pooltrack.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdCheck {
    /// Keep the row and list it as a warning in the rejects report (the default: the
    /// swab is real, the id is likely mis-scanned).
    #[default]
    Warn,
    /// Refuse the row.
    Reject,
    /// Do not check.
    Off,
}

impl IdCheck {
    /// The name used in `pooltrack.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdCheck::Warn => "warn",
            IdCheck::Reject => "reject",
            IdCheck::Off => "off",
        }
    }
}

/// ISO 7064 MOD 11-2 weights of the 17 digits of a resident identity number.
const RESIDENT_ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each weighted sum mod 11.
const RESIDENT_ID_CHECK: [u8; 11] = *b"10X98765432";

/// The check character (`0`-`9` or `X`) of a resident identity number (GB 11643-1999)
/// whose first 17 characters are `first17`, or `None` unless they are 17 digits.
///
/// ```
/// use pooltrack::model::resident_id_check_char;
/// assert_eq!(resident_id_check_char(b"11010519491231002"), Some(b'X'));
/// assert_eq!(resident_id_check_char(b"1101051949123100"), None);
/// ```
pub fn resident_id_check_char(first17: &[u8]) -> Option<u8> {
    // Every collection row's id comes through here: the digits are checked eight at a
    // time and summed eight at a time (a byte-by-byte loop was 2.8 % of a 2.5 M-row
    // collections ingest, a vectorised one over the slice still 6 % of its parse).
    let (Some(&a), Some(&b), [c]) = (
        first17.first_chunk::<8>(),
        first17.get(8..).and_then(<[u8]>::first_chunk::<8>),
        first17.get(16..)?,
    ) else {
        return None;
    };
    let (a, b) = (u64::from_le_bytes(a), u64::from_le_bytes(b));
    if !(all_digits(a) && all_digits(b) && c.is_ascii_digit()) {
        return None;
    }
    let sum = weighted_eight(a, WEIGHTS_0_8)
        + weighted_eight(b, WEIGHTS_8_16)
        + u64::from(c - b'0') * u64::from(RESIDENT_ID_WEIGHTS[16]);
    usize::try_from(sum % 11)
        .ok()
        .and_then(|i| RESIDENT_ID_CHECK.get(i))
        .copied()
}

/// The weights of eight digits as two multipliers of four 16-bit lanes: for the
/// digits at even places and at odd places, the first digit's weight in the top lane.
const fn lane_weights(w: &[u32]) -> [u64; 2] {
    let mut out = [0u64; 2];
    let mut k = 0;
    while k < 4 {
        out[0] |= (w[2 * (3 - k)] as u64) << (16 * k);
        out[1] |= (w[2 * (3 - k) + 1] as u64) << (16 * k);
        k += 1;
    }
    out
}

const WEIGHTS_0_8: [u64; 2] = lane_weights(RESIDENT_ID_WEIGHTS.split_at(8).0);
const WEIGHTS_8_16: [u64; 2] = lane_weights(RESIDENT_ID_WEIGHTS.split_at(8).1);

/// The weighted sum of the eight ASCII digits of `w` (little-endian: the first digit
/// in the lowest byte). The digits at even and at odd places go into four 16-bit lanes
/// each; one multiplication gathers each set's weighted sum in the top lane, where no
/// partial sum (at most 4 × 9 × 10) carries over from below.
fn weighted_eight(w: u64, weights: [u64; 2]) -> u64 {
    const LANES: u64 = 0x00FF_00FF_00FF_00FF;
    let digits = w - 0x3030_3030_3030_3030;
    let even = digits & LANES;
    let odd = (digits >> 8) & LANES;
    (even.wrapping_mul(weights[0]) >> 48) + (odd.wrapping_mul(weights[1]) >> 48)
}

/// Whether all eight bytes of `w` are ASCII digits: each byte's high nibble is 3, and
/// adding 6 keeps it 3 (so the low nibble is at most 9). When the first test holds no
/// byte carries into the next.
fn all_digits(w: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    (w & HIGH) == THREES && (w.wrapping_add(0x0606_0606_0606_0606) & HIGH) == THREES
}

/// What [`resident_id`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResidentId {
    /// Not of the form of a resident identity number (17 digits and a check character
    /// `0`-`9`, `X` or `x`): a passport, a pseudonym, a 15-digit old id... Not checked.
    OtherForm,
    /// A resident identity number with the right check character.
    Valid,
    /// A resident identity number whose check character should be this one.
    WrongCheck(char),
}

/// Checks the check character of `s` if it has the form of a resident identity number
/// (GB 11643-1999: 17 digits, then `0`-`9` or `X`; lower-case `x` counts as `X`).
///
/// ```
/// use pooltrack::model::{resident_id, ResidentId};
/// assert_eq!(resident_id("11010519491231002X"), ResidentId::Valid);
/// assert_eq!(resident_id("110105194912310021"), ResidentId::WrongCheck('X'));
/// assert_eq!(resident_id("E12345678"), ResidentId::OtherForm);
/// ```
pub fn resident_id(s: &str) -> ResidentId {
    let b = s.as_bytes();
    let [first17 @ .., last] = b else {
        return ResidentId::OtherForm;
    };
    if b.len() != 18 || !(last.is_ascii_digit() || matches!(last, b'X' | b'x')) {
        return ResidentId::OtherForm;
    }
    match resident_id_check_char(first17) {
        None => ResidentId::OtherForm,
        Some(c) if c == last.to_ascii_uppercase() => ResidentId::Valid,
        Some(c) => ResidentId::WrongCheck(char::from(c)),
    }
}

/// Whether `s` looks like a number Excel wrote in scientific notation (`1.10101E+17`,
/// `1.1e17`, `1,1E+17`): digits, optionally a decimal point or comma and more digits,
/// `E` or `e`, an optional sign and one to three digits. To leave alone barcodes such
/// as `1234E567`, a decimal point or a sign is required.
///
/// ```
/// use pooltrack::model::excel_scientific;
/// assert!(excel_scientific("1.10101E+17"));
/// assert!(excel_scientific("1.1E17"));
/// assert!(!excel_scientific("1234E567"));
/// assert!(!excel_scientific("110101199003077777"));
/// ```
pub fn excel_scientific(s: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = s.as_bytes();
    let n = digits(b);
    if n == 0 || n == b.len() {
        return false;
    }
    let mut rest = &b[n..];
    let mut marked = false;
    if let [b'.' | b',', tail @ ..] = rest {
        let n = digits(tail);
        if n == 0 {
            return false;
        }
        rest = &tail[n..];
        marked = true;
    }
    let [b'E' | b'e', tail @ ..] = rest else {
        return false;
    };
    rest = tail;
    if let [b'+' | b'-', tail @ ..] = rest {
        rest = tail;
        marked = true;
    }
    let n = digits(rest);
    marked && (1..=3).contains(&n) && n == rest.len()
}

/// The reason a field (`what`: "person", "tube") in Excel's scientific notation is
/// refused.
pub fn excel_scientific_reason(what: &str, value: &str) -> String {
    format!(
        "{what} {value} looks like a number Excel turned into scientific notation, losing \
         digits; format the column as text in Excel and export again"
    )
}

/// Checks a person id as ingest reads it: [`check_person`]'s shape, then no Excel
/// scientific notation, then (unless `id_check` is off) the check character of a
/// resident identity number. `Err` is why the row is refused; `Ok(Some(why))` is a
/// warning for a row that is kept.
///
/// ```
/// use pooltrack::model::{check_person_id, IdCheck};
/// assert_eq!(check_person_id("11010519491231002X", IdCheck::Warn), Ok(None));
/// assert!(matches!(check_person_id("110105194912310021", IdCheck::Warn), Ok(Some(_))));
/// assert!(check_person_id("110105194912310021", IdCheck::Reject).is_err());
/// assert_eq!(check_person_id("110105194912310021", IdCheck::Off), Ok(None));
/// assert!(check_person_id("1.10105E+17", IdCheck::Off).is_err());
/// ```
pub fn check_person_id(s: &str, id_check: IdCheck) -> Result<Option<String>, String> {
    check_person(s).map_err(str::to_owned)?;
    // An id of the resident-number form is digits (and an X): no Excel number.
    let form = resident_id(s);
    if form == ResidentId::OtherForm && excel_scientific(s) {
        return Err(excel_scientific_reason("person", s));
    }
    if id_check == IdCheck::Off {
        return Ok(None);
    }
    let ResidentId::WrongCheck(expected) = form else {
        return Ok(None);
    };
    let found = s.chars().last().unwrap_or('?');
    let why = format!(
        "person {s} has the form of a resident identity number (GB 11643) but its check \
         character is {found}, not {expected} as its first 17 digits require: likely a \
         mis-scan or typing error; check the id against the person's card"
    );
    if id_check == IdCheck::Reject {
        Err(format!(
            "{why} (refused: id_check = \"reject\" in pooltrack.toml)"
        ))
    } else {
        Ok(Some(format!("{why} (the row is kept)")))
    }
}

/// Checks a round name: 1–64 of `A-Z a-z 0-9 - _ .`, not starting with `.`.
/// Round names become directory names in the store, so nothing else is allowed.
pub fn check_round(s: &str) -> Result<(), FieldError> {
    if s.is_empty() || s.len() > 64 {
        return Err("round name must be 1-64 characters long");
    }
    if s.starts_with('.') {
        return Err("round name must not start with '.'");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("round name may hold only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Checks a free-text label (site, lab, plate, well): at most 64 characters, no control
/// characters.
pub fn check_label(s: &str) -> Result<(), FieldError> {
    if s.is_ascii() {
        if s.len() > 64 {
            return Err("is longer than 64 characters");
        }
        if s.bytes().any(|b| b.is_ascii_control()) {
            return Err("holds a control character");
        }
        return Ok(());
    }
    if s.chars().count() > 64 {
        return Err("is longer than 64 characters");
    }
    if s.chars().any(char::is_control) {
        return Err("holds a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for m in [Mode::Single, Mode::Pool] {
            assert_eq!(Mode::from_code(m.code()), Some(m));
            assert_eq!(Mode::parse(&m.as_str().to_uppercase()), Some(m));
        }
        for o in [
            Outcome::Negative,
            Outcome::Positive,
            Outcome::Inconclusive,
            Outcome::Invalid,
        ] {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Mode::from_code(9), None);
        assert_eq!(Outcome::from_code(9), None);
    }

    #[test]
    fn ct_at_the_cutoff_is_not_a_hit() {
        assert_eq!(
            Outcome::from_ct(Some(40.0), Some(40.0), 40.0),
            Outcome::Negative
        );
        assert_eq!(
            Outcome::from_ct(Some(39.9), Some(39.9), 40.0),
            Outcome::Positive
        );
        assert_eq!(
            Outcome::from_ct(None, Some(30.0), 40.0),
            Outcome::Inconclusive
        );
    }

    #[test]
    fn status_index_matches_all() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn eight_digits_at_a_time_agree_with_one_at_a_time() {
        for w in [
            *b"01234567",
            *b"99999999",
            *b"0123456:",
            *b"/1234567",
            *b"1234567X",
            *b"\x39\x39\x39\x39\x39\x39\x39\xff",
            *b"\x3f\x30\x30\x30\x30\x30\x30\x30",
        ] {
            assert_eq!(
                all_digits(u64::from_le_bytes(w)),
                w.iter().all(u8::is_ascii_digit),
                "{w:?}"
            );
        }
        for b in 0..=255u8 {
            let w = [b'5', b'5', b'5', b, b'5', b'5', b'5', b'5'];
            assert_eq!(all_digits(u64::from_le_bytes(w)), b.is_ascii_digit(), "{b}");
        }
    }

    proptest::proptest! {
        /// The check character summed eight digits at a time is the one summed a digit
        /// at a time, and anything but 17 digits has none.
        #[test]
        fn check_characters_agree_with_digit_by_digit(
            digits in "[0-9]{17}",
            other in proptest::collection::vec(proptest::sample::select(b"0123456789/:X".to_vec()), 15..19),
        ) {
            let by_digits = |d: &[u8]| -> Option<u8> {
                if d.len() != 17 || !d.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let sum: u32 = d.iter().zip(RESIDENT_ID_WEIGHTS).map(|(&b, w)| u32::from(b - b'0') * w).sum();
                Some(RESIDENT_ID_CHECK[(sum % 11) as usize])
            };
            proptest::prop_assert_eq!(resident_id_check_char(digits.as_bytes()), by_digits(digits.as_bytes()));
            proptest::prop_assert_eq!(resident_id_check_char(&other), by_digits(&other));
        }
    }

    #[test]
    fn resident_id_check_characters() {
        // 11010519491231002X is the standard's example; the others were computed here and
        // checked with Python: (12 - sum(d * w) % 11) % 11, 10 = X.
        for valid in [
            "11010519491231002X",
            "11010519491231002x",
            "110101199001011237",
            "440304198506150015",
        ] {
            assert_eq!(resident_id(valid), ResidentId::Valid, "{valid}");
            assert_eq!(check_person_id(valid, IdCheck::Reject), Ok(None), "{valid}");
        }
        assert_eq!(
            resident_id("110105194912310021"),
            ResidentId::WrongCheck('X')
        );
        assert_eq!(
            resident_id("110101199001011234"),
            ResidentId::WrongCheck('7')
        );
        assert_eq!(
            resident_id("440304198506150010"),
            ResidentId::WrongCheck('5')
        );
        // An X where a digit belongs is wrong too.
        assert_eq!(resident_id("110101199001011X37"), ResidentId::OtherForm);
        assert_eq!(
            resident_id("11010119900101123X"),
            ResidentId::WrongCheck('7')
        );
        for other in [
            "11010519491231002",   // 17 digits
            "1101051949123100201", // 19 digits
            "110105491231002",     // a 15-digit old id
            "E12345678",           // a passport
            "11010519491231002Y",
            "１１０１０５１９４９１２３１００２X", // full-width digits
            "",
        ] {
            assert_eq!(resident_id(other), ResidentId::OtherForm, "{other}");
        }
        assert_eq!(resident_id_check_char(b"31000000000000001"), Some(b'2'));
        assert_eq!(resident_id_check_char(b"3100000000000000a"), None);
    }

    #[test]
    fn the_id_check_setting_decides_warn_refuse_or_nothing() {
        let wrong = "110105194912310021";
        let warning = check_person_id(wrong, IdCheck::Warn)
            .expect("kept")
            .expect("a warning");
        assert!(warning.contains("check character is 1, not X"), "{warning}");
        assert!(warning.contains("GB 11643"), "{warning}");
        let refusal = check_person_id(wrong, IdCheck::Reject).expect_err("refused");
        assert!(refusal.contains("id_check = \"reject\""), "{refusal}");
        assert_eq!(check_person_id(wrong, IdCheck::Off), Ok(None));
        assert_eq!(check_person_id("E12345678", IdCheck::Reject), Ok(None));
        assert_eq!(check_person_id("张三-01", IdCheck::Reject), Ok(None));
        // The shape rules still come first.
        assert_eq!(
            check_person_id("", IdCheck::Off),
            Err("person id is empty".to_owned())
        );
        assert_eq!(IdCheck::default(), IdCheck::Warn);
    }

    #[test]
    fn excel_scientific_notation_is_recognised() {
        for sci in [
            "1.10101E+17",
            "1.10101e+17",
            "1.1E17",
            "1E+17",
            "1,10101E+17",
            "4.40304E-05",
        ] {
            assert!(excel_scientific(sci), "{sci}");
            let why = check_person_id(sci, IdCheck::Off).expect_err("refused");
            assert!(why.starts_with(&format!("person {sci} looks like a number Excel")));
            assert!(why.contains("format the column as text"), "{why}");
        }
        for not in [
            "1234E567",
            "1E17",
            "110101199001011237",
            "PL-1.1E+17",
            "1.1E+1234",
            "1.E+17",
            "1.1E+",
            "E+17",
            "1.1F+17",
            "",
        ] {
            assert!(!excel_scientific(not), "{not}");
        }
    }

    #[test]
    fn field_rules() {
        assert!(check_tube("ABCD").is_ok());
        assert!(check_tube(&"A".repeat(33)).is_err());
        assert!(check_tube("ABC\u{e9}").is_err());
        assert!(check_person("110101199003077777").is_ok());
        assert!(check_person("张三-01").is_ok());
        assert!(check_person("").is_err());
        assert!(check_person("a\u{0}b").is_err());
        assert!(check_person(&"x".repeat(65)).is_err());
        assert!(check_round("2022-04-02").is_ok());
        assert!(check_round("../etc").is_err());
        assert!(check_round("a/b").is_err());
        assert!(check_round("").is_err());
    }
}
