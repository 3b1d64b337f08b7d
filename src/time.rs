//! Timestamps: parsing the two forms labs send, and printing them back.
//!
//! `collected_at` and `reported_at` arrive as RFC 3339 (`2022-04-02T08:15:00+08:00`,
//! `...Z`, optional fraction) or as a bare `YYYY-MM-DD HH:MM:SS`, which is read in
//! the store's time zone (a fixed UTC offset, +08:00 by default). Internally a time is
//! an `i64` of milliseconds since the Unix epoch, UTC.
//!
//! Files saved from Excel or typed by clerks also hold local times with `/` for `-`,
//! without seconds, and with one-digit month, day and hour (`2022/4/8 8:00`); these
//! are read too. A date with the year last (`28/04/2022`, `04/05/2022`) is refused:
//! its day and month could be either way round.
//!
//! The parser is hand-written rather than chrono's because it runs once per row on
//! 25-million-row batches: it does no allocation, and the two usual forms take a
//! fixed-layout path; the others are tried only when that path finds no time.
//! The tests cross-check it against chrono.
//!
//! One job: reading and writing times. The file passes 600 lines only with its tests.

use std::cell::Cell;

use std::fmt::Write as _;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

const MS_PER_DAY: i64 = 86_400_000;

/// A fixed offset from UTC, in seconds east (for example +08:00 is 28 800).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset(i32);

impl Offset {
    /// UTC+08:00, China Standard Time, the default for a new store.
    pub const CHINA: Offset = Offset(8 * 3600);
    /// UTC.
    pub const UTC: Offset = Offset(0);

    /// The offset in seconds east of UTC.
    pub fn seconds(self) -> i32 {
        self.0
    }

    /// Parses `+HH:MM`, `-HH:MM`, `Z` or `UTC`.
    ///
    /// ```
    /// use pooltrack::time::Offset;
    /// assert_eq!(Offset::parse("+08:00"), Some(Offset::CHINA));
    /// assert_eq!(Offset::parse("Z"), Some(Offset::UTC));
    /// assert_eq!(Offset::parse("8"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Offset> {
        let b = s.trim().as_bytes();
        match b {
            b"Z" | b"z" | b"UTC" | b"utc" => Some(Offset::UTC),
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let h = two(*h1, *h2)?;
                let m = two(*m1, *m2)?;
                if h > 23 || m > 59 {
                    return None;
                }
                let secs = i32::from(h) * 3600 + i32::from(m) * 60;
                Some(Offset(if *sign == b'-' { -secs } else { secs }))
            }
            _ => None,
        }
    }
}

/// The first and last years over which a zone name's offset must not change to be
/// accepted as the store's zone (see [`resolve_zone`]).
const FIXED_FROM: i64 = 2019;
const FIXED_TO: i64 = 2030;

/// A store's time-zone setting resolved: the offset times without one are read in, and
/// the text to keep (the canonical IANA name, or the offset as given).
///
/// The setting is a fixed offset (`+08:00`, `-05:30`, `Z`) or an IANA zone name whose
/// offset is the same from 2019 to 2030 (`Asia/Shanghai`, `Asia/Urumqi`, `Etc/GMT-8`),
/// looked up in the time-zone database built into pooltrack (the system's
/// /usr/share/zoneinfo is not needed, and two machines read a store alike). A zone with
/// daylight-saving time (`Europe/Berlin`) is refused: the store reads every local time
/// in one offset, and such a zone has two, so its summer times would be an hour wrong.
///
/// ```
/// use pooltrack::time::{resolve_zone, Offset};
/// assert_eq!(resolve_zone("+08:00"), Ok((Offset::CHINA, "+08:00".to_owned())));
/// assert_eq!(resolve_zone("asia/shanghai"), Ok((Offset::CHINA, "Asia/Shanghai".to_owned())));
/// assert!(resolve_zone("Europe/Berlin").unwrap_err().contains("daylight"));
/// assert!(resolve_zone("Mars/Olympus").is_err());
/// ```
pub fn resolve_zone(setting: &str) -> Result<(Offset, String), String> {
    let setting = setting.trim();
    if let Some(offset) = Offset::parse(setting) {
        return Ok((offset, setting.to_owned()));
    }
    let unknown = || {
        format!(
            "time zone {setting:?} is neither an offset (+08:00, -05:30, Z) nor a known \
             IANA zone name (Asia/Shanghai)"
        )
    };
    let tz = jiff::tz::TimeZone::get(setting).map_err(|_| unknown())?;
    let name = tz.iana_name().unwrap_or(setting).to_owned();
    let at = |y: i64| {
        let days = days_from_civil(y, 1, 1);
        jiff::Timestamp::from_second(days * 86_400).map_err(|e| e.to_string())
    };
    let (from, to) = (at(FIXED_FROM)?, at(FIXED_TO + 1)?);
    let first = tz.to_offset(from);
    let ours = |o: jiff::tz::Offset| Offset(o.seconds());
    for t in tz.following(from) {
        if t.timestamp() >= to {
            break;
        }
        if t.offset() != first {
            let (first, next) = (ours(first), ours(t.offset()));
            let mut when = format_local(t.timestamp().as_second() * 1000, next);
            when.truncate(10);
            return Err(format!(
                "time zone {name:?} changes its UTC offset ({first} to {next} on {when}: \
                 daylight-saving time or a change of law), and the store reads every time \
                 without an offset in one fixed offset; give the offset instead (for \
                 example --time-zone {first}) and write the summer times with their offset, \
                 or use a zone whose offset is fixed from {FIXED_FROM} to {FIXED_TO}"
            ));
        }
    }
    Ok((ours(first), name))
}

/// The offset of a store's time-zone setting ([`resolve_zone`]), if it is one.
pub fn zone_offset(setting: &str) -> Option<Offset> {
    resolve_zone(setting).ok().map(|(offset, _)| offset)
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    }
}

/// Why a timestamp was refused, worded for a lab clerk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not one of the accepted forms.
    Form,
    /// A field is out of range (month 13, 31 April, hour 25...).
    Range,
    /// The year is outside 2000–2199.
    Year,
    /// The year comes last (`28/04/2022`): the day and month could be either way round.
    YearLast,
}

/// The forms a time may take, for the reasons of refusals.
const FORMS: &str = "YYYY-MM-DD HH:MM:SS, YYYY/MM/DD HH:MM:SS (seconds optional; one-digit \
                     month, day and hour as Excel writes them, 2022/4/8 8:00) or RFC 3339 \
                     (2022-04-02T08:15:00+08:00)";

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeError::Form => write!(f, "is not a time: use {FORMS}"),
            TimeError::Range => f.write_str("is not a real date and time"),
            TimeError::Year => f.write_str("has a year outside 2000-2199"),
            TimeError::YearLast => write!(
                f,
                "puts the year last, so its day and month could be read either way round: \
                 write the year first, {FORMS}"
            ),
        }
    }
}

fn digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

fn two(a: u8, b: u8) -> Option<u8> {
    Some(digit(a)? * 10 + digit(b)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    // Both are small by construction (d in 1..=31, m in 1..=12).
    let d = u32::try_from(d).unwrap_or(1);
    let m = u32::try_from(m).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days in month `m` (1–12) of year `y`; 0 for a month that does not exist.
pub fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// The current time (0 if the clock is before 1970).
pub fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

thread_local! {
    /// The last date read on this thread and its day number: a batch's timestamps fall
    /// on a few days, and the calendar arithmetic was a tenth of reading a row.
    static LAST_DAY: Cell<([u8; 10], i64)> = const { Cell::new(([0; 10], 0)) };
}

/// Days since 1970-01-01 of `date`, `YYYY-MM-DD` (its dashes already checked).
fn day_number(date: &[u8]) -> Result<i64, TimeError> {
    use TimeError::{Form, Range, Year};
    let key: [u8; 10] = date.try_into().map_err(|_| Form)?;
    let (last, days) = LAST_DAY.with(Cell::get);
    if last == key {
        return Ok(days);
    }
    let f = |i: usize| digit(key[i]).ok_or(Form);
    let year = i64::from(f(0)?) * 1000 + i64::from(f(1)?) * 100 + i64::from(f(2)?) * 10;
    let year = year + i64::from(f(3)?);
    let month = f(5)? * 10 + f(6)?;
    let day = f(8)? * 10 + f(9)?;
    if !(2000..=2199).contains(&year) {
        return Err(Year);
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(Range);
    }
    let days = days_from_civil(year, i64::from(month), i64::from(day));
    LAST_DAY.with(|c| c.set((key, days)));
    Ok(days)
}

/// Parses a timestamp; a time without an offset is read at `local`.
///
/// ```
/// use pooltrack::time::{parse, Offset, TimeError};
/// let a = parse(b"2022-04-02 08:00:00", Offset::CHINA).unwrap();
/// let b = parse(b"2022-04-02T00:00:00Z", Offset::CHINA).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(parse(b"2022/4/2 8:00", Offset::CHINA), Ok(a));
/// assert_eq!(parse(b"02/04/2022 08:00", Offset::CHINA), Err(TimeError::YearLast));
/// ```
pub fn parse(s: &[u8], local: Offset) -> Result<Millis, TimeError> {
    match parse_fixed(s, local) {
        Err(TimeError::Form) => parse_loose(s, local),
        other => other,
    }
}

/// The leading run of `min..=max` digits of `s` as a number, and what follows it; `None`
/// if the run is shorter or longer.
fn number(s: &[u8], min: usize, max: usize) -> Option<(u32, &[u8])> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    let (run, rest) = s.split_at(n);
    let v = run.iter().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
    Some((v, rest))
}

/// Whether `s` starts with a date whose year comes last: `D/M/YYYY`, `M-D-YY`,
/// `DD.MM.YYYY`...
fn year_last(s: &[u8]) -> bool {
    let Some((_, rest)) = number(s, 1, 2) else {
        return false;
    };
    let [sep @ (b'/' | b'-' | b'.'), rest @ ..] = rest else {
        return false;
    };
    let Some((_, rest)) = number(rest, 1, 2) else {
        return false;
    };
    let [sep2, rest @ ..] = rest else {
        return false;
    };
    sep2 == sep && number(rest, 2, 4).is_some()
}

/// The forms other than the two fixed layouts, all local times: `Y-M-D H:MM[:SS]` or
/// `Y/M/D H:MM[:SS]` with a four-digit year and one- or two-digit month, day and hour
/// (`T` may stand for the space).
fn parse_loose(s: &[u8], local: Offset) -> Result<Millis, TimeError> {
    use TimeError::{Form, Range, Year, YearLast};
    if year_last(s) {
        return Err(YearLast);
    }
    let (year, rest) = number(s, 4, 4).ok_or(Form)?;
    let [sep @ (b'-' | b'/'), rest @ ..] = rest else {
        return Err(Form);
    };
    let (month, rest) = number(rest, 1, 2).ok_or(Form)?;
    let [sep2, rest @ ..] = rest else {
        return Err(Form);
    };
    if sep2 != sep {
        return Err(Form);
    }
    let (day, rest) = number(rest, 1, 2).ok_or(Form)?;
    let [b' ' | b'T' | b't', rest @ ..] = rest else {
        return Err(Form);
    };
    let (hour, rest) = number(rest, 1, 2).ok_or(Form)?;
    let [b':', rest @ ..] = rest else {
        return Err(Form);
    };
    let (minute, rest) = number(rest, 2, 2).ok_or(Form)?;
    let (second, rest) = match rest {
        [b':', tail @ ..] => number(tail, 2, 2).ok_or(Form)?,
        _ => (0, rest),
    };
    if !rest.is_empty() {
        return Err(Form);
    }
    let year = i64::from(year);
    if !(2000..=2199).contains(&year) {
        return Err(Year);
    }
    let (Ok(month), Ok(day)) = (u8::try_from(month), u8::try_from(day)) else {
        return Err(Range);
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(Range);
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(Range);
    }
    let days = days_from_civil(year, i64::from(month), i64::from(day));
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok((secs - i64::from(local.0)) * 1000)
}

/// The fixed layouts: `YYYY-MM-DD HH:MM:SS` and RFC 3339, nearly every row's form.
#[inline]
fn parse_fixed(s: &[u8], local: Offset) -> Result<Millis, TimeError> {
    use TimeError::{Form, Range};
    if s.len() < 19 {
        return Err(Form);
    }
    let f = |i: usize| digit(s[i]).ok_or(Form);
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return Err(Form);
    }
    if s[13] != b':' || s[16] != b':' {
        return Err(Form);
    }
    let hour = f(11)? * 10 + f(12)?;
    let minute = f(14)? * 10 + f(15)?;
    let second = f(17)? * 10 + f(18)?;
    let days = day_number(&s[..10])?;
    // A leap second (:60) is read as the last millisecond of :59.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(Range);
    }
    let mut rest = &s[19..];
    let mut millis: i64 = 0;
    if let [b'.' | b',', tail @ ..] = rest {
        let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return Err(Form);
        }
        for (i, b) in tail[..n].iter().enumerate().take(3) {
            millis += i64::from(b - b'0') * [100, 10, 1][i];
        }
        rest = &tail[n..];
    }
    let offset = if rest.is_empty() {
        local
    } else {
        let text = std::str::from_utf8(rest).map_err(|_| Form)?;
        Offset::parse(text).ok_or(Form)?
    };
    let (second, millis) = if second == 60 {
        (59, 999)
    } else {
        (second, millis)
    };
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok((secs - i64::from(offset.0)) * 1000 + millis)
}

/// Writes `t` as RFC 3339 at `offset`, with milliseconds only when they are not zero.
///
/// ```
/// use pooltrack::time::{format, Offset};
/// assert_eq!(format(0, Offset::CHINA), "1970-01-01T08:00:00+08:00");
/// ```
pub fn format(t: Millis, offset: Offset) -> String {
    let mut s = String::with_capacity(32);
    write_rfc3339(&mut s, t, offset);
    s
}

/// A time and the offset it is shown at, which prints and serializes as [`format()`]'s
/// text, made as it is written: a list that holds many times (a city's turnaround
/// lists 712,315 late tubes, three times each) holds 16 bytes a time, not a string.
///
/// ```
/// use pooltrack::time::{Offset, Stamp};
/// let s = Stamp { at: 0, offset: Offset::CHINA };
/// assert_eq!(s.to_string(), "1970-01-01T08:00:00+08:00");
/// assert_eq!(serde_json::to_string(&s)?, "\"1970-01-01T08:00:00+08:00\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The time.
    pub at: Millis,
    /// The offset it is shown at.
    pub offset: Offset,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match rfc3339_bytes(self.at, self.offset) {
            Some((b, n)) => f.write_str(std::str::from_utf8(&b[..n]).unwrap_or_default()),
            None => f.write_str(&format(self.at, self.offset)),
        }
    }
}

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match rfc3339_bytes(self.at, self.offset) {
            Some((b, n)) => s.serialize_str(std::str::from_utf8(&b[..n]).unwrap_or_default()),
            None => s.collect_str(self),
        }
    }
}

/// Appends `t` as RFC 3339 at `offset` to `out` (the allocation-free form of [`format()`]).
pub(crate) fn write_rfc3339(out: &mut String, t: Millis, offset: Offset) {
    if let Some((b, n)) = rfc3339_bytes(t, offset) {
        out.push_str(std::str::from_utf8(&b[..n]).unwrap_or_default());
    } else {
        let local = t + i64::from(offset.0) * 1000;
        let ymd = civil_from_days(local.div_euclid(MS_PER_DAY));
        write_rfc3339_wide(out, ymd, local.rem_euclid(MS_PER_DAY), offset);
    }
}

/// [`write_rfc3339`] onto a line of bytes (a CSV export's).
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, t: Millis, offset: Offset) {
    if let Some((b, n)) = rfc3339_bytes(t, offset) {
        out.extend_from_slice(&b[..n]);
    } else {
        let mut text = String::new();
        write_rfc3339(&mut text, t, offset);
        out.extend_from_slice(text.as_bytes());
    }
}

/// RFC 3339 text of `t` at `offset` in a buffer and its length, for a year in
/// 0000-9999 (`None` for another).
fn rfc3339_bytes(t: Millis, offset: Offset) -> Option<([u8; 29], usize)> {
    // Exports print two or three times a row for 25 million rows: the digits go to
    // fixed places by pairs from a table, and the date, which nearly every time shares
    // with the one before on its thread, is worked out once a day.
    let local = t + i64::from(offset.0) * 1000;
    let days = local.div_euclid(MS_PER_DAY);
    let ms_of_day = local.rem_euclid(MS_PER_DAY);
    let mut b = [0u8; 29];
    b[..10].copy_from_slice(&date_bytes(days)?);
    let secs = ms_of_day / 1000;
    let ms = ms_of_day % 1000;
    b[10] = b'T';
    b[11..13].copy_from_slice(&pair(secs / 3600));
    b[13] = b':';
    b[14..16].copy_from_slice(&pair(secs / 60 % 60));
    b[16] = b':';
    b[17..19].copy_from_slice(&pair(secs % 60));
    let mut n = 19;
    if ms != 0 {
        b[19] = b'.';
        b[20] = DIGITS[usize::try_from(ms / 100).unwrap_or(0) % 10];
        b[21..23].copy_from_slice(&pair(ms % 100));
        n = 23;
    }
    if offset.0 == 0 {
        b[n] = b'Z';
        n += 1;
    } else {
        let a = i64::from(offset.0.unsigned_abs());
        b[n] = if offset.0 < 0 { b'-' } else { b'+' };
        // Offsets are under a day (`Offset::parse` takes hours to 23, zones lie within
        // 14 h), so the hours take two digits.
        b[n + 1..n + 3].copy_from_slice(&pair(a / 3600));
        b[n + 3] = b':';
        b[n + 4..n + 6].copy_from_slice(&pair(a % 3600 / 60));
        n += 6;
    }
    Some((b, n))
}

/// `YYYY-MM-DD` of day `days` since 1970-01-01, for a year in 0000-9999 (`None` for
/// another), remembered per thread for the last day asked of each of [`DATE_SLOTS`]
/// consecutive days: a code's row prints its swab, its result's report and when its
/// window lapses, two days on, and with one day remembered each of them missed.
fn date_bytes(days: i64) -> Option<[u8; 10]> {
    thread_local! {
        static LAST: std::cell::Cell<[(i64, Option<[u8; 10]>); DATE_SLOTS]> =
            const { std::cell::Cell::new([(i64::MIN, None); DATE_SLOTS]) };
    }
    let slots = i64::try_from(DATE_SLOTS).unwrap_or(1);
    let slot = usize::try_from(days.rem_euclid(slots)).unwrap_or(0);
    let mut last = LAST.get();
    if let Some(&(day, date)) = last.get(slot)
        && day == days
    {
        return date;
    }
    let (y, m, d) = civil_from_days(days);
    let date = (0..10_000).contains(&y).then(|| {
        let mut b = *b"0000-00-00";
        b[..2].copy_from_slice(&pair(y / 100));
        b[2..4].copy_from_slice(&pair(y % 100));
        b[5..7].copy_from_slice(&pair(i64::from(m)));
        b[8..10].copy_from_slice(&pair(i64::from(d)));
        b
    });
    if let Some(s) = last.get_mut(slot) {
        *s = (days, date);
        LAST.set(last);
    }
    date
}

/// Days [`date_bytes`] remembers, one a slot by day number.
const DATE_SLOTS: usize = 4;

/// The two digits of `v` (taken mod 100).
fn pair(v: i64) -> [u8; 2] {
    const PAIRS: [[u8; 2]; 100] = {
        let mut t = [[0u8; 2]; 100];
        let mut i = 0u8;
        while i < 100 {
            t[i as usize] = [b'0' + i / 10, b'0' + i % 10];
            i += 1;
        }
        t
    };
    PAIRS[usize::try_from(v.rem_euclid(100)).unwrap_or(0)]
}

/// [`write_rfc3339`] of a year outside 0000-9999.
fn write_rfc3339_wide(
    out: &mut String,
    (y, m, d): (i64, u32, u32),
    ms_of_day: i64,
    offset: Offset,
) {
    let secs = ms_of_day / 1000;
    let ms = ms_of_day % 1000;
    let two = |out: &mut String, v: i64| {
        let v = usize::try_from(v.rem_euclid(100)).unwrap_or(0);
        out.push(char::from(DIGITS[v / 10]));
        out.push(char::from(DIGITS[v % 10]));
    };
    let _ = write!(out, "{y:04}");
    out.push('-');
    two(out, i64::from(m));
    out.push('-');
    two(out, i64::from(d));
    out.push('T');
    two(out, secs / 3600);
    out.push(':');
    two(out, (secs % 3600) / 60);
    out.push(':');
    two(out, secs % 60);
    if ms != 0 {
        out.push('.');
        out.push(char::from(
            DIGITS[usize::try_from(ms / 100).unwrap_or(0) % 10],
        ));
        two(out, ms);
    }
    if offset.0 == 0 {
        out.push('Z');
    } else {
        let a = i64::from(offset.0.unsigned_abs());
        out.push(if offset.0 < 0 { '-' } else { '+' });
        two(out, a / 3600);
        out.push(':');
        two(out, (a % 3600) / 60);
    }
}

const DIGITS: &[u8; 10] = b"0123456789";

/// Writes `t` as `YYYY-MM-DD HH:MM:SS` in `offset`, the form clerks type.
pub fn format_local(t: Millis, offset: Offset) -> String {
    let mut s = format(t - t.rem_euclid(1000), offset);
    s.truncate(19);
    s.replace_range(10..11, " ");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `t` at `zone` as chrono writes RFC 3339 (milliseconds only when there are any,
    /// `Z` for UTC), the text ours is compared with.
    fn chrono_text(t: i64, zone: Offset) -> String {
        let fixed = chrono::FixedOffset::east_opt(zone.0).expect("offset");
        let theirs = chrono::DateTime::from_timestamp_millis(t)
            .expect("in range")
            .with_timezone(&fixed);
        let frac = if t.rem_euclid(1000) == 0 { "" } else { "%.3f" };
        let zone_form = if zone.0 == 0 { "Z" } else { "%:z" };
        theirs
            .format(&format!("%Y-%m-%dT%H:%M:%S{frac}{zone_form}"))
            .to_string()
    }

    fn chrono_ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("valid rfc3339")
            .timestamp_millis()
    }

    #[test]
    fn rfc3339_forms_agree_with_chrono() {
        for s in [
            "2022-04-02T08:15:00+08:00",
            "2022-04-02T00:15:00Z",
            "2022-04-02T00:15:00.250Z",
            "2024-02-29T23:59:59-05:30",
            "2000-01-01T00:00:00+00:00",
            "2199-12-31T23:59:59.999+14:00",
        ] {
            assert_eq!(parse(s.as_bytes(), Offset::UTC), Ok(chrono_ms(s)), "{s}");
        }
    }

    proptest! {
        /// Times written one after another on a thread (the dates remembered from the
        /// ones before, days apart that share a slot among them) read as chrono writes
        /// them, in any zone.
        #[test]
        fn times_in_a_row_are_written_as_chrono_writes_them(
            times in proptest::collection::vec(-62_135_596_800_000i64..253_402_300_799_000, 1..40),
            near in proptest::collection::vec(0i64..900_000_000, 1..40),
            zone in -(14 * 3600i32)..=(14 * 3600),
        ) {
            let zone = Offset(zone / 60 * 60);
            // Random times, then times within ten days of each other.
            let base = times[0];
            for t in times.iter().copied().chain(near.iter().map(|d| base.saturating_add(*d))) {
                let local = t + i64::from(zone.0) * 1000;
                if !(-62_167_219_200_000..253_402_300_800_000).contains(&local) {
                    continue; // a year outside 0000-9999: the wide form, tested below
                }
                let want = chrono_text(t, zone);
                prop_assert_eq!(format(t, zone), want.clone());
                let mut line = Vec::new();
                push_rfc3339(&mut line, t, zone);
                prop_assert_eq!(line, want.into_bytes());
            }
        }
    }

    #[test]
    fn written_times_agree_with_chrono_and_wide_years_keep_their_digits() {
        let zones = [
            Offset::UTC,
            Offset::CHINA,
            Offset(-(5 * 3600 + 1800)),
            Offset(14 * 3600),
        ];
        for t in [
            0,
            1_648_857_600_000,
            1_648_857_600_250,
            1_648_857_600_007,
            -1,
            253_402_200_000_000,
            -62_135_596_800_000,
        ] {
            for zone in zones {
                let ours = format(t, zone);
                let want = chrono_text(t, zone);
                assert_eq!(ours, want, "{t} at {zone:?}");
                let stamp = Stamp {
                    at: t,
                    offset: zone,
                };
                assert_eq!(stamp.to_string(), want, "{t} at {zone:?} as a stamp");
            }
        }
        // Past 9999 the year takes the digits it needs.
        let far = 10_000 * 366 * 86_400_000;
        assert!(
            format(far, Offset::UTC).starts_with("11990-09-28T00:00:00Z"),
            "{}",
            format(far, Offset::UTC)
        );
        let stamp = Stamp {
            at: far,
            offset: Offset::UTC,
        };
        assert_eq!(stamp.to_string(), format(far, Offset::UTC));
    }

    #[test]
    fn bare_form_reads_in_the_store_zone() {
        let t = parse(b"2022-04-02 08:00:00", Offset::CHINA).expect("parses");
        assert_eq!(t, chrono_ms("2022-04-02T00:00:00Z"));
        let utc = parse(b"2022-04-02 08:00:00", Offset::UTC).expect("parses");
        assert_eq!(utc - t, 8 * 3600 * 1000);
    }

    #[test]
    fn a_remembered_day_changes_no_answer() {
        // Same day twice (the second from the cache), then the next day, then back.
        let a = parse(b"2022-04-02 08:00:00", Offset::UTC).expect("parses");
        let b = parse(b"2022-04-02 09:30:00", Offset::UTC).expect("parses");
        let c = parse(b"2022-04-03 08:00:00", Offset::UTC).expect("parses");
        assert_eq!(b - a, 90 * 60 * 1000);
        assert_eq!(c - a, 24 * 3600 * 1000);
        assert_eq!(parse(b"2022-04-02 08:00:00", Offset::UTC), Ok(a));
        // A remembered day still needs a valid time, and a bad day is never remembered.
        assert_eq!(
            parse(b"2022-04-02 08:0x:00", Offset::UTC),
            Err(TimeError::Form)
        );
        assert_eq!(
            parse(b"2023-02-29 08:00:00", Offset::UTC),
            Err(TimeError::Range)
        );
        assert_eq!(
            parse(b"2023-02-29 08:00:00", Offset::UTC),
            Err(TimeError::Range)
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        assert_eq!(parse(b"", Offset::UTC), Err(TimeError::Form));
        assert_eq!(
            parse(b"02/04/2022 08:00:00", Offset::UTC),
            Err(TimeError::YearLast)
        );
        assert_eq!(
            parse(b"2022-04-31 08:00:00", Offset::UTC),
            Err(TimeError::Range)
        );
        assert_eq!(
            parse(b"2023-02-29 08:00:00", Offset::UTC),
            Err(TimeError::Range)
        );
        assert_eq!(
            parse(b"2022-04-02 24:00:00", Offset::UTC),
            Err(TimeError::Range)
        );
        assert_eq!(
            parse(b"1999-04-02 08:00:00", Offset::UTC),
            Err(TimeError::Year)
        );
        assert_eq!(
            parse(b"2022-04-02T08:00:00+8", Offset::UTC),
            Err(TimeError::Form)
        );
        assert_eq!(
            parse(b"2022-04-02T08:00:00.Z", Offset::UTC),
            Err(TimeError::Form)
        );
        assert_eq!(
            parse(b"2022-04-02 08:00:00 ", Offset::UTC),
            Err(TimeError::Form)
        );
    }

    #[test]
    fn excel_and_clerk_forms_read_as_local_times() {
        let want = chrono_ms("2022-04-28T08:00:00+08:00");
        for s in [
            "2022/04/28 08:00",
            "2022-04-28 08:00",
            "2022/04/28 08:00:00",
            "2022-04-28T08:00",
            "2022/4/28 8:00",
            "2022-4-28 8:00:00",
        ] {
            assert_eq!(parse(s.as_bytes(), Offset::CHINA), Ok(want), "{s}");
        }
        let april_8 = chrono_ms("2022-04-08T08:05:09+08:00");
        assert_eq!(parse(b"2022/4/8 8:05:09", Offset::CHINA), Ok(april_8));
        assert_eq!(
            parse(b"2022/12/31 23:59", Offset::UTC),
            Ok(chrono_ms("2022-12-31T23:59:00Z"))
        );
        // Out of range or half-formed is still refused.
        for (s, e) in [
            ("2022/4/31 8:00", TimeError::Range),
            ("2023/2/29 8:00", TimeError::Range),
            ("2022/4/8 24:00", TimeError::Range),
            ("2022/4/8 8:60", TimeError::Range),
            ("1999/4/8 8:00", TimeError::Year),
            ("2022/04-08 08:00", TimeError::Form),
            ("2022/4/8", TimeError::Form),
            ("2022/4/8 8", TimeError::Form),
            ("2022/4/8 8:0", TimeError::Form),
            ("2022/4/8 8:00:0", TimeError::Form),
            ("2022/4/8 8:00 ", TimeError::Form),
            ("2022/4/8  8:00", TimeError::Form),
            ("2022/004/8 8:00", TimeError::Form),
            ("2022/4/8 8:00+08:00", TimeError::Form),
            ("22/4/8 8:00", TimeError::Form),
        ] {
            assert_eq!(parse(s.as_bytes(), Offset::CHINA), Err(e), "{s}");
        }
    }

    #[test]
    fn a_date_with_the_year_last_is_refused_naming_the_forms() {
        for s in [
            "28/04/2022 08:00",
            "04/05/2022 08:00",
            "4/5/2022 8:00",
            "28-04-2022 08:00:00",
            "28.04.2022 08:00",
            "04/05/22 08:00",
        ] {
            assert_eq!(
                parse(s.as_bytes(), Offset::CHINA),
                Err(TimeError::YearLast),
                "{s}"
            );
        }
        let why = TimeError::YearLast.to_string();
        for form in [
            "YYYY-MM-DD HH:MM:SS",
            "YYYY/MM/DD",
            "2022/4/8 8:00",
            "RFC 3339",
        ] {
            assert!(why.contains(form), "{why}");
        }
        assert!(TimeError::Form.to_string().contains("YYYY/MM/DD"));
    }

    #[test]
    fn formats_round_trip() {
        let t = chrono_ms("2022-04-02T08:15:07.5+08:00");
        assert_eq!(format(t, Offset::CHINA), "2022-04-02T08:15:07.500+08:00");
        assert_eq!(format(t, Offset::UTC), "2022-04-02T00:15:07.500Z");
        assert_eq!(format_local(t, Offset::CHINA), "2022-04-02 08:15:07");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(t in 946_684_800_000i64..7_258_118_400_000, off in -50_400i32..50_400) {
            let off = Offset(off - off % 60);
            let s = format(t, off);
            prop_assert_eq!(parse(s.as_bytes(), Offset::UTC), Ok(t));
            prop_assert_eq!(chrono_ms(&s), t);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse(&bytes, Offset::CHINA);
        }

        #[test]
        fn loose_forms_agree_with_the_fixed_form(t in 946_684_800i64..7_258_118_400) {
            let t = t - t.rem_euclid(60);
            let fixed = format_local(t * 1000, Offset::CHINA);
            let want = parse(fixed.as_bytes(), Offset::CHINA);
            prop_assert_eq!(want, Ok(t * 1000));
            // 2022-04-08 08:05:00 → 2022/4/8 8:05 (leading zeros dropped, no seconds).
            let (date, time) = fixed.split_at(10);
            let short: Vec<String> = date.split('-').map(|p| p.trim_start_matches('0').to_owned()).collect();
            let hour = time[1..3].trim_start_matches('0');
            let hour = if hour.is_empty() { "0" } else { hour };
            let excel = format!("{}/{}/{} {hour}:{}", short[0], short[1], short[2], &time[4..6]);
            prop_assert_eq!(parse(excel.as_bytes(), Offset::CHINA), want, "{}", excel);
        }
    }
}
