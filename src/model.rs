//! The domain's vocabulary: tube modes, test outcomes, person statuses, and the rules
//! for what a valid tube barcode, person id and round name look like.

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
pub type FieldError = &'static str;

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
