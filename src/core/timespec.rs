// SPDX-License-Identifier: MPL-2.0
//! Time values as people write them, shared by every API of the plugin
//! (element properties, action signals, HTTP query parameters).
//!
//! # Durations ([`parse_duration`])
//!
//! Leading and trailing ASCII whitespace is ignored; whitespace inside the
//! value is rejected. A *number* is one or more ASCII digits, optionally
//! followed by `.` and one or more digits (`0.5` is fine, `.5` and `5.` are
//! not; signs and exponents such as `1e3` are rejected). Accepted forms:
//!
//! - plain seconds: `600`, `600.5`, `0.25`;
//! - number-unit pairs: `600s`, `500ms`, `10m`, `2h`, `1h2m3.5s`, `1h30m`,
//!   `2m500ms`. Units are `h`, `m`, `s` and `ms` (case-insensitive), each at
//!   most once and from largest to smallest. Any pair may have a fraction
//!   (`1.5h` is 90 minutes);
//! - clock time: `mm:ss` or `hh:mm:ss` (`10:00`, `1:02:03`, `00:10:00.5`).
//!   The leading field may be any size; the others must be below 60. Only
//!   the seconds field may have a fraction.
//!
//! Values are exact to the nanosecond: decimals are read with integer
//! arithmetic, and whatever lies below one nanosecond is truncated
//! (`0.1234567899` is 123 456 789 ns). The total must fit in `u64`
//! nanoseconds (about 584 years).
//!
//! # Instants ([`parse_utc`], [`parse_time_point`])
//!
//! Wall-clock instants are RFC 3339 timestamps such as `2026-11-23T13:01:38Z`
//! or `2026-11-23T13:01:38.250+01:00`, converted to UTC.

use std::fmt::{self, Write as _};
use std::time::Duration;

use chrono::{DateTime, Utc};

const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MIN: u64 = 60 * NS_PER_S;
const NS_PER_H: u64 = 60 * NS_PER_MIN;

/// Units from largest to smallest, with their length in nanoseconds.
const UNITS: [(&str, u64); 4] = [
    ("h", NS_PER_H),
    ("m", NS_PER_MIN),
    ("s", NS_PER_S),
    ("ms", NS_PER_MS),
];

/// Inputs quoted in error messages are cut to this many characters.
const MAX_QUOTED_CHARS: usize = 64;

const DURATION_EXAMPLES: &str = r#"e.g. "600", "600.5", "1h2m3.5s", "500ms" or "00:10:00.5""#;
const INSTANT_EXAMPLES: &str = r#"e.g. "2026-11-23T13:01:38Z" or "2026-11-23T13:01:38.250+01:00""#;

/// Why a time value was rejected.
///
/// Every variant except [`TimeSpecError::Empty`] carries the offending input
/// (trimmed, and cut to 64 characters) so that the message can quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSpecError {
    /// The input was empty or only whitespace.
    Empty,
    /// A valid duration with a leading `-`, such as `-5` or `-1m`.
    Negative {
        /// The offending input.
        input: String,
    },
    /// The input spells a non-finite number: `nan`, `inf` or `infinity`.
    NotFinite {
        /// The offending input.
        input: String,
    },
    /// The value does not fit in `u64` nanoseconds.
    Overflow {
        /// The offending input.
        input: String,
    },
    /// A number is followed by a unit other than `h`, `m`, `s` or `ms`.
    UnknownUnit {
        /// The offending input.
        input: String,
        /// The unit as written.
        unit: String,
    },
    /// The input is not a duration in any accepted form.
    Invalid {
        /// The offending input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input is not an RFC 3339 instant.
    InvalidUtc {
        /// The offending input.
        input: String,
        /// What is wrong with it, as reported by the timestamp parser.
        reason: String,
    },
}

impl fmt::Display for TimeSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(
                f,
                "empty time value; expected seconds or a duration, {DURATION_EXAMPLES}"
            ),
            Self::Negative { input } => {
                write!(f, "{input:?}: negative times are not allowed")
            }
            Self::NotFinite { input } => write!(
                f,
                "{input:?}: not a finite time; expected seconds or a duration, {DURATION_EXAMPLES}"
            ),
            Self::Overflow { input } => write!(
                f,
                "{input:?}: too large; the maximum is {} (about 584 years)",
                format_duration(Duration::from_nanos(u64::MAX))
            ),
            Self::UnknownUnit { input, unit } => write!(
                f,
                "{input:?}: unknown unit {unit:?} (use h, m, s or ms, or hh:mm:ss)"
            ),
            Self::Invalid { input, reason } => {
                write!(f, "{input:?}: {reason}; expected {DURATION_EXAMPLES}")
            }
            Self::InvalidUtc { input, reason } => write!(
                f,
                "{input:?}: not an RFC 3339 instant ({reason}); expected {INSTANT_EXAMPLES}"
            ),
        }
    }
}

impl std::error::Error for TimeSpecError {}

/// A point in time as requested through an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePoint {
    /// Recording time: the time since the start of a recording.
    Recording(Duration),
    /// A wall-clock instant.
    Utc(DateTime<Utc>),
}

/// Parses a duration in one of the forms described in the module
/// documentation: plain seconds (`600.5`), number-unit pairs (`1h2m3.5s`) or
/// clock time (`00:10:00.5`).
///
/// The result is exact to the nanosecond; digits below one nanosecond are
/// truncated.
///
/// # Errors
///
/// Returns a [`TimeSpecError`] naming what is wrong when `s` is empty,
/// negative, non-finite, too large for `u64` nanoseconds, uses an unknown unit
/// or is not in any accepted form.
pub fn parse_duration(s: &str) -> Result<Duration, TimeSpecError> {
    let input = s.trim_ascii();
    if input.is_empty() {
        return Err(TimeSpecError::Empty);
    }
    let (sign, body) = if let Some(rest) = input.strip_prefix('-') {
        (Some('-'), rest)
    } else if let Some(rest) = input.strip_prefix('+') {
        (Some('+'), rest)
    } else {
        (None, input)
    };
    if ["nan", "inf", "infinity"]
        .iter()
        .any(|word| body.eq_ignore_ascii_case(word))
    {
        return Err(TimeSpecError::NotFinite {
            input: excerpt(input),
        });
    }
    if input.contains(char::is_whitespace) {
        return Err(Fault::invalid(
            r#"whitespace inside the value is not allowed (write "10m", not "10 m")"#,
        )
        .at(input));
    }
    let nanos = match sign {
        Some('-') => {
            return Err(match parse_unsigned(body) {
                Ok(_) | Err(Fault::Overflow) => TimeSpecError::Negative {
                    input: excerpt(input),
                },
                Err(fault) => fault.at(input),
            });
        }
        Some(_) => return Err(Fault::invalid(r#"a leading "+" is not allowed"#).at(input)),
        None => parse_unsigned(body).map_err(|fault| fault.at(input))?,
    };
    Ok(Duration::from_nanos(nanos))
}

/// Parses an RFC 3339 instant such as `2026-11-23T13:01:38Z` or
/// `2026-11-23T13:01:38.250+01:00` and converts it to UTC.
///
/// Leading and trailing ASCII whitespace is ignored.
///
/// # Errors
///
/// Returns [`TimeSpecError::Empty`] for empty input and
/// [`TimeSpecError::InvalidUtc`] for anything that is not an RFC 3339
/// instant.
pub fn parse_utc(s: &str) -> Result<DateTime<Utc>, TimeSpecError> {
    let input = s.trim_ascii();
    if input.is_empty() {
        return Err(TimeSpecError::Empty);
    }
    DateTime::parse_from_rfc3339(input)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|error| TimeSpecError::InvalidUtc {
            input: excerpt(input),
            reason: error.to_string(),
        })
}

/// Parses a point in time: any form [`parse_duration`] accepts means
/// recording time, otherwise the input must be an RFC 3339 instant
/// ([`parse_utc`]).
///
/// When neither form matches, the error is the instant parser's if the input
/// looks like a date (a `-` right after a digit, as in `2026-11-23`), and the
/// duration parser's otherwise.
///
/// # Errors
///
/// Returns a [`TimeSpecError`] when `s` is neither a duration nor an
/// instant, chosen as described above.
pub fn parse_time_point(s: &str) -> Result<TimePoint, TimeSpecError> {
    let duration_error = match parse_duration(s) {
        Ok(duration) => return Ok(TimePoint::Recording(duration)),
        Err(error) => error,
    };
    match parse_utc(s) {
        Ok(instant) => Ok(TimePoint::Utc(instant)),
        Err(utc_error) if looks_like_date(s) => Err(utc_error),
        Err(_) => Err(duration_error),
    }
}

/// Formats a duration in the compact form [`parse_duration`] reads back
/// exactly: `1h2m3.5s`, `1m30s`, `250ms`, `0.000000001s`, `0s`.
///
/// Hours and minutes are whole; the rest is written as whole milliseconds
/// when it is a whole number of milliseconds below one second, and as
/// seconds with up to nine decimals otherwise. Durations longer than
/// `u64::MAX` nanoseconds are formatted the same way but do not parse back.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let hours = secs / 3600;
    let minutes = secs / 60 % 60;
    let seconds = secs % 60;

    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let whole_ms = u64::from(nanos) % NS_PER_MS == 0;
    if seconds > 0 || !whole_ms {
        let _ = write!(out, "{seconds}");
        if nanos > 0 {
            let fraction = format!("{nanos:09}");
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        out.push('s');
    } else if nanos > 0 {
        let _ = write!(out, "{}ms", u64::from(nanos) / NS_PER_MS);
    } else if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// A reason for rejecting a duration, before the input is attached.
#[derive(Debug)]
enum Fault {
    Overflow,
    UnknownUnit(String),
    Invalid(String),
}

impl Fault {
    fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid(reason.into())
    }

    fn at(self, input: &str) -> TimeSpecError {
        let input = excerpt(input);
        match self {
            Self::Overflow => TimeSpecError::Overflow { input },
            Self::UnknownUnit(unit) => TimeSpecError::UnknownUnit { input, unit },
            Self::Invalid(reason) => TimeSpecError::Invalid { input, reason },
        }
    }
}

/// Parses a duration without sign or surrounding whitespace into nanoseconds.
fn parse_unsigned(body: &str) -> Result<u64, Fault> {
    if body.contains(':') {
        parse_clock(body)
    } else {
        parse_units(body)
    }
}

/// Parses plain seconds or a sequence of number-unit pairs.
fn parse_units(body: &str) -> Result<u64, Fault> {
    let mut rest = body;
    let mut total: u64 = 0;
    let mut last_rank: Option<usize> = None;
    loop {
        let (number, after) = split_decimal(rest)?;
        let unit_len = after
            .char_indices()
            .find(|&(_, c)| !c.is_alphabetic())
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);

        if unit.is_empty() {
            if let Some(c) = next.chars().next() {
                return Err(Fault::invalid(format!("unexpected character {c:?}")));
            }
            if last_rank.is_none() {
                return number.to_nanos(NS_PER_S);
            }
            return Err(Fault::invalid(format!(
                "the number {:?} has no unit",
                excerpt(number.text)
            )));
        }

        let Some(rank) = UNITS
            .iter()
            .position(|(name, _)| unit.eq_ignore_ascii_case(name))
        else {
            if unit.eq_ignore_ascii_case("e")
                && next.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
            {
                return Err(Fault::invalid(
                    r#"exponent notation such as "1e3" is not supported"#,
                ));
            }
            return Err(Fault::UnknownUnit(excerpt(unit)));
        };
        match last_rank {
            Some(last) if last == rank => {
                return Err(Fault::invalid(format!(
                    "unit {:?} appears more than once",
                    UNITS[rank].0
                )));
            }
            Some(last) if last > rank => {
                return Err(Fault::invalid(
                    "units must go from largest to smallest: h, m, s, ms",
                ));
            }
            _ => {}
        }
        total = total
            .checked_add(number.to_nanos(UNITS[rank].1)?)
            .ok_or(Fault::Overflow)?;
        last_rank = Some(rank);
        if next.is_empty() {
            return Ok(total);
        }
        rest = next;
    }
}

/// Parses `mm:ss[.fff]` or `hh:mm:ss[.fff]`.
fn parse_clock(body: &str) -> Result<u64, Fault> {
    let fields: Vec<&str> = body.split(':').collect();
    let (hours, minutes, seconds) = match fields.as_slice() {
        [m, s] => (None, *m, *s),
        [h, m, s] => (Some(*h), *m, *s),
        _ => {
            return Err(Fault::invalid(
                "a clock time has the form hh:mm:ss or mm:ss",
            ));
        }
    };
    if fields.iter().any(|field| field.is_empty()) {
        return Err(Fault::invalid("a clock time has an empty field"));
    }
    for field in hours.iter().chain([&minutes]) {
        if !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Fault::invalid(if field.contains('.') {
                "only the seconds of a clock time may have a fraction".to_owned()
            } else {
                format!(
                    "clock fields must be whole numbers, found {:?}",
                    excerpt(field)
                )
            }));
        }
    }
    let (secs, after) = split_decimal(seconds)?;
    if !after.is_empty() {
        return Err(Fault::invalid(format!(
            "unexpected {:?} after the seconds of a clock time",
            excerpt(after)
        )));
    }

    let minutes_value = parse_int(minutes);
    if hours.is_some() && minutes_value.is_none_or(|m| m >= 60) {
        return Err(Fault::invalid("minutes must be below 60 in hh:mm:ss"));
    }
    if parse_int(secs.int).is_none_or(|s| s >= 60) {
        return Err(Fault::invalid("seconds must be below 60 in a clock time"));
    }

    let hours_ns = match hours {
        Some(h) => parse_int(h)
            .and_then(|h| h.checked_mul(NS_PER_H))
            .ok_or(Fault::Overflow)?,
        None => 0,
    };
    let minutes_ns = minutes_value
        .and_then(|m| m.checked_mul(NS_PER_MIN))
        .ok_or(Fault::Overflow)?;
    let seconds_ns = secs.to_nanos(NS_PER_S)?;
    hours_ns
        .checked_add(minutes_ns)
        .and_then(|total| total.checked_add(seconds_ns))
        .ok_or(Fault::Overflow)
}

/// A decimal number as written, split at the decimal point.
struct Decimal<'a> {
    /// The whole number as written, e.g. `3.5`.
    text: &'a str,
    /// Digits before the decimal point; never empty.
    int: &'a str,
    /// Digits after the decimal point; empty when there is none.
    frac: &'a str,
}

impl Decimal<'_> {
    /// The number times `unit` nanoseconds, truncated to whole nanoseconds.
    fn to_nanos(&self, unit: u64) -> Result<u64, Fault> {
        let whole = parse_int(self.int)
            .and_then(|n| n.checked_mul(unit))
            .ok_or(Fault::Overflow)?;
        whole
            .checked_add(fraction_nanos(self.frac, unit))
            .ok_or(Fault::Overflow)
    }
}

/// Splits a leading number `digits ['.' digits]` off `s`.
fn split_decimal(s: &str) -> Result<(Decimal<'_>, &str), Fault> {
    let int_len = count_digits(s);
    if int_len == 0 {
        return Err(match s.chars().next() {
            None => Fault::invalid("expected a number at the end"),
            Some('.') => {
                Fault::invalid(r#"a number must start with a digit (write "0.5", not ".5")"#)
            }
            Some(c) => Fault::invalid(format!("expected a number, found {c:?}")),
        });
    }
    let (int, rest) = s.split_at(int_len);
    let Some(after_point) = rest.strip_prefix('.') else {
        let number = Decimal {
            text: int,
            int,
            frac: "",
        };
        return Ok((number, rest));
    };
    let frac_len = count_digits(after_point);
    if frac_len == 0 {
        return Err(Fault::invalid(
            r#"a decimal point must be followed by digits (write "5" or "5.0", not "5.")"#,
        ));
    }
    let (frac, rest) = after_point.split_at(frac_len);
    let number = Decimal {
        text: &s[..int_len + 1 + frac_len],
        int,
        frac,
    };
    Ok((number, rest))
}

/// Length of the run of ASCII digits at the start of `s`.
fn count_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Reads a run of ASCII digits; `None` when it does not fit in `u64`.
fn parse_int(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
    })
}

/// `floor(0.<digits> × unit)` for a run of ASCII digits, exact for any
/// number of digits.
///
/// Works from the last digit to the first: with `carry = floor(tail × unit)`
/// for the digits after the current one, `floor((d × unit + carry) / 10)` is
/// the floor for the tail starting at `d`. The carry stays below `unit`, so
/// nothing overflows.
fn fraction_nanos(digits: &str, unit: u64) -> u64 {
    digits.bytes().rev().fold(0, |carry, b| {
        (unit * u64::from(b.wrapping_sub(b'0')) + carry) / 10
    })
}

/// Whether `s` has a `-` right after a digit, as dates do and durations never
/// do.
fn looks_like_date(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|pair| pair[0].is_ascii_digit() && pair[1] == b'-')
}

/// `s`, cut to [`MAX_QUOTED_CHARS`] characters for quoting in messages.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::{SecondsFormat, TimeZone};

    const S: u64 = NS_PER_S;

    fn nanos(s: &str) -> u64 {
        let d = parse_duration(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"));
        u64::try_from(d.as_nanos()).expect("fits in u64")
    }

    fn invalid_reason(s: &str) -> String {
        match parse_duration(s) {
            Err(TimeSpecError::Invalid { reason, .. }) => reason,
            other => panic!("{s:?} should be Invalid, got {other:?}"),
        }
    }

    #[test]
    fn plain_seconds() {
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("600"), 600 * S);
        assert_eq!(nanos("600.5"), 600 * S + S / 2);
        assert_eq!(nanos("0.5"), S / 2);
        assert_eq!(nanos("0.25"), S / 4);
        assert_eq!(nanos("007"), 7 * S);
        assert_eq!(nanos("0.000000001"), 1);
        assert_eq!(nanos("0000000000000000000000000001"), S);
    }

    #[test]
    fn surrounding_ascii_whitespace_is_ignored() {
        assert_eq!(nanos("  600\t\n"), 600 * S);
        assert_eq!(nanos(" 1h2m "), 3720 * S);
        assert_eq!(nanos("\r\n10:00 "), 600 * S);
    }

    #[test]
    fn unit_pairs() {
        assert_eq!(nanos("600s"), 600 * S);
        assert_eq!(nanos("500ms"), 500 * NS_PER_MS);
        assert_eq!(nanos("10m"), 600 * S);
        assert_eq!(nanos("2h"), 7200 * S);
        assert_eq!(nanos("1h2m3.5s"), 3723 * S + S / 2);
        assert_eq!(nanos("1h30m"), 5400 * S);
        assert_eq!(nanos("2m500ms"), 120 * S + S / 2);
        assert_eq!(nanos("1h2m3s4ms"), 3723 * S + 4 * NS_PER_MS);
        assert_eq!(nanos("1h3s"), 3603 * S);
        assert_eq!(nanos("1h4ms"), 3600 * S + 4 * NS_PER_MS);
        assert_eq!(nanos("0s"), 0);
        assert_eq!(nanos("0h0m0s0ms"), 0);
    }

    #[test]
    fn units_are_case_insensitive() {
        assert_eq!(nanos("1H30M"), 5400 * S);
        assert_eq!(nanos("500MS"), 500 * NS_PER_MS);
        assert_eq!(nanos("500Ms"), 500 * NS_PER_MS);
        assert_eq!(nanos("3S"), 3 * S);
    }

    #[test]
    fn any_pair_may_have_a_fraction() {
        assert_eq!(nanos("1.5h"), 5400 * S);
        assert_eq!(nanos("0.5m"), 30 * S);
        assert_eq!(nanos("1h0.5m"), 3630 * S);
        assert_eq!(nanos("1.5ms"), 1_500_000);
        assert_eq!(nanos("0.000001ms"), 1);
        assert_eq!(nanos("0.1h"), 360 * S);
        assert_eq!(nanos("1.25h1.5m"), 4500 * S + 90 * S);
    }

    #[test]
    fn clock_time() {
        assert_eq!(nanos("00:10:00.5"), 600 * S + S / 2);
        assert_eq!(nanos("10:00"), 600 * S);
        assert_eq!(nanos("1:02:03"), 3723 * S);
        assert_eq!(nanos("1:2:3"), 3723 * S);
        assert_eq!(nanos("0:00"), 0);
        assert_eq!(nanos("00:00:00.1"), S / 10);
        assert_eq!(nanos("1:59.5"), 119 * S + S / 2);
        // The leading field may be any size.
        assert_eq!(nanos("100:00"), 6000 * S);
        assert_eq!(
            nanos("123:59:59.999999999"),
            123 * 3600 * S + 3599 * S + S - 1
        );
        assert_eq!(nanos("5124095:34:33.709551615"), u64::MAX);
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(nanos("0.1"), 100_000_000);
        assert_eq!(nanos("0.3"), 300_000_000);
        assert_eq!(nanos("0.7s"), 700_000_000);
        assert_eq!(nanos("0.001"), NS_PER_MS);
        assert_eq!(nanos("0.3m"), 18 * S);
        assert_eq!(nanos("2.675"), 2_675_000_000);
        assert_eq!(nanos("18446744073.709551615"), u64::MAX);
        assert_eq!(nanos("5124095h34m33.709551615s"), u64::MAX);
        assert_eq!(nanos("5124095h34m33709.551615ms"), u64::MAX);
    }

    #[test]
    fn digits_below_a_nanosecond_are_truncated() {
        assert_eq!(nanos("0.1234567899"), 123_456_789);
        assert_eq!(nanos("0.9999999999"), 999_999_999);
        assert_eq!(nanos("1.0000000001s"), S);
        assert_eq!(nanos("0.0000000009"), 0);
        assert_eq!(nanos("0.0000000000000000000000000001h"), 0);
        assert_eq!(nanos("0.00000000001m"), 0);
        assert_eq!(nanos("0.0000000001m"), 6);
        // One nanosecond is 1/3.6e12 hours = 0.000000000000277…(7 repeating);
        // only digits far beyond the ninth decide which side of it we are on.
        assert_eq!(nanos("0.000000000000277777777777777777777777777778h"), 1);
        assert_eq!(nanos("0.000000000000277777777777777777777777777777h"), 0);
        assert_eq!(nanos("1:00.99999999999999999999"), 60 * S + S - 1);
    }

    #[test]
    fn empty() {
        for s in ["", " ", "\t\n", "\r\n  "] {
            assert_eq!(parse_duration(s), Err(TimeSpecError::Empty), "{s:?}");
            assert_eq!(parse_utc(s), Err(TimeSpecError::Empty), "{s:?}");
            assert_eq!(parse_time_point(s), Err(TimeSpecError::Empty), "{s:?}");
        }
    }

    #[test]
    fn negative() {
        for s in [
            "-5",
            "-1m",
            "-0",
            "-0.5",
            "-00:10",
            "-1h30m",
            "-99999999999999999999",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(TimeSpecError::Negative {
                    input: s.to_owned()
                }),
                "{s:?}"
            );
        }
        // A minus before something that is not a duration reports what is wrong.
        assert!(matches!(
            parse_duration("-abc"),
            Err(TimeSpecError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("-10x"),
            Err(TimeSpecError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn not_finite() {
        for s in [
            "nan",
            "NaN",
            "NAN",
            "inf",
            "INF",
            "Inf",
            "infinity",
            "Infinity",
            "-inf",
            "+inf",
            "-nan",
            "+Infinity",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(TimeSpecError::NotFinite {
                    input: s.to_owned()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn overflow() {
        for s in [
            "99999999999999999999",
            "600000000h",
            "18446744074",
            "18446744073.709551616",
            "5124095h34m33.709551616s",
            "5124096h",
            "307445735m",
            "5124096:00:00",
            "307445735:00",
            "99999999999999999999:00:00",
            "1000000000000000000000000000000",
            "99999999999999999999ms",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(TimeSpecError::Overflow {
                    input: s.to_owned()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn unknown_unit() {
        for (s, unit) in [
            ("10x", "x"),
            ("1d", "d"),
            ("10sec", "sec"),
            ("1hr", "hr"),
            ("5µs", "µs"),
            ("1e", "e"),
            ("1h2min", "min"),
            ("5ns", "ns"),
            ("0x10", "x"),
            ("99999999999999999999y", "y"),
        ] {
            assert_eq!(
                parse_duration(s),
                Err(TimeSpecError::UnknownUnit {
                    input: s.to_owned(),
                    unit: unit.to_owned()
                }),
                "{s:?}"
            );
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "abc",
            "1h1h",
            "1m2h",
            "1s1m",
            "1ms1s",
            "10:",
            ":10",
            ":",
            "::",
            "1:60",
            "1:60:00",
            "1:00:60",
            "1:2:3:4",
            "1e3",
            "1E-3",
            "1e+3",
            "10 m",
            "1 h 2 m",
            "1h 2m",
            ".5",
            "5.",
            "5.s",
            "1..5",
            "1.2.3",
            "+5",
            "+1m",
            "1m30",
            "10%",
            "1.5:00",
            "1:1.5:00",
            "a:00",
            "1h:2m",
            "--5",
            "-",
            "+",
            "1_000",
            "1,5",
            "\u{ff11}",
            "1:00:00s",
            "1:00x",
            "1\u{a0}m",
            "h",
            "ms",
            "m5",
            "1h-2m",
            "1:-2",
            "10:00:00.",
            "٣",
        ] {
            invalid_reason(s);
        }
    }

    #[test]
    fn invalid_reasons_explain_the_problem() {
        assert!(invalid_reason("1h1h").contains("more than once"));
        assert!(invalid_reason("1m2h").contains("largest to smallest"));
        assert!(invalid_reason("1:60").contains("seconds must be below 60"));
        assert!(invalid_reason("1:60:00").contains("minutes must be below 60"));
        assert!(invalid_reason("99999999999999999999:60:00").contains("minutes must be"));
        assert!(invalid_reason("99999999999999999999:00:60").contains("seconds must be"));
        assert!(invalid_reason("1:2:3:4").contains("hh:mm:ss"));
        assert!(invalid_reason("10:").contains("empty field"));
        assert!(invalid_reason("1e3").contains("exponent"));
        assert!(invalid_reason("10 m").contains("whitespace"));
        assert!(invalid_reason(".5").contains("0.5"));
        assert!(invalid_reason("5.").contains("5.0"));
        assert!(invalid_reason("+5").contains('+'));
        assert!(invalid_reason("1m30").contains("\"30\" has no unit"));
        assert!(invalid_reason("1.5:00").contains("only the seconds"));
        assert!(invalid_reason("abc").contains("expected a number, found 'a'"));
        assert!(invalid_reason("10%").contains("unexpected character '%'"));
    }

    #[test]
    fn messages_quote_the_input() {
        assert_eq!(
            parse_duration("10x").unwrap_err().to_string(),
            r#""10x": unknown unit "x" (use h, m, s or ms, or hh:mm:ss)"#
        );
        assert_eq!(
            parse_duration("-5").unwrap_err().to_string(),
            r#""-5": negative times are not allowed"#
        );
        assert_eq!(
            parse_duration("600000000h").unwrap_err().to_string(),
            r#""600000000h": too large; the maximum is 5124095h34m33.709551615s (about 584 years)"#
        );
        assert_eq!(
            parse_duration("1h1h").unwrap_err().to_string(),
            r#""1h1h": unit "h" appears more than once; expected e.g. "600", "600.5", "1h2m3.5s", "500ms" or "00:10:00.5""#
        );
        let nan = parse_duration(" nan ").unwrap_err().to_string();
        assert!(nan.starts_with(r#""nan": not a finite time"#), "{nan}");
        let empty = parse_duration("").unwrap_err().to_string();
        assert!(empty.starts_with("empty time value"), "{empty}");
        let utc = parse_utc("2026-13-01T00:00:00Z").unwrap_err().to_string();
        assert!(
            utc.starts_with(r#""2026-13-01T00:00:00Z": not an RFC 3339 instant ("#),
            "{utc}"
        );
        assert!(utc.contains("2026-11-23T13:01:38Z"), "{utc}");
        // Control characters are escaped rather than printed.
        let control = parse_duration("1\u{7}").unwrap_err().to_string();
        assert!(control.starts_with(r#""1\u{7}""#), "{control}");
    }

    #[test]
    fn long_inputs_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let error = parse_duration(&long).unwrap_err();
        let TimeSpecError::Invalid { input, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(input.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(input.ends_with('…'));
        assert!(error.to_string().len() < 400);

        let unit = format!("1{}", "é".repeat(1000));
        let Err(TimeSpecError::UnknownUnit { input, unit }) = parse_duration(&unit) else {
            panic!("expected an unknown unit");
        };
        assert!(input.ends_with('…') && unit.ends_with('…'));
        assert_eq!(unit.chars().count(), MAX_QUOTED_CHARS + 1);
    }

    #[test]
    fn error_trait() {
        fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
        assert_error::<TimeSpecError>();
        let error: Box<dyn std::error::Error> = Box::new(TimeSpecError::Empty);
        assert!(error.to_string().contains("empty"));
    }

    #[test]
    fn utc_instants() {
        let expected = Utc
            .with_ymd_and_hms(2026, 11, 23, 13, 1, 38)
            .single()
            .expect("valid date");
        assert_eq!(parse_utc("2026-11-23T13:01:38Z"), Ok(expected));
        assert_eq!(parse_utc(" 2026-11-23T13:01:38Z\n"), Ok(expected));
        assert_eq!(parse_utc("2026-11-23T15:01:38+02:00"), Ok(expected));
        assert_eq!(parse_utc("2026-11-23T13:01:38+00:00"), Ok(expected));

        let offset = parse_utc("2026-11-23T13:01:38.250+01:00").expect("valid instant");
        assert_eq!(
            offset.to_rfc3339_opts(SecondsFormat::Millis, true),
            "2026-11-23T12:01:38.250Z"
        );
        let fine = parse_utc("2026-11-23T13:01:38.123456789Z").expect("valid instant");
        assert_eq!(
            fine.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "2026-11-23T13:01:38.123456789Z"
        );
        // Crossing midnight when converting.
        let early = parse_utc("2026-11-24T00:30:00+01:00").expect("valid instant");
        assert_eq!(
            early.to_rfc3339_opts(SecondsFormat::Secs, true),
            "2026-11-23T23:30:00Z"
        );
    }

    #[test]
    fn utc_errors() {
        for s in [
            "2026-13-01T00:00:00Z",
            "2026-11-23T25:00:00Z",
            "2026-11-23T13:01:38",
            "2026-11-23",
            "13:01:38Z",
            "yesterday",
            "600",
            "2026-02-30T00:00:00Z",
            "2026-11-23T13:01:38+25:00",
        ] {
            assert!(
                matches!(parse_utc(s), Err(TimeSpecError::InvalidUtc { ref input, .. }) if input == s),
                "{s:?}: {:?}",
                parse_utc(s)
            );
        }
    }

    #[test]
    fn time_points() {
        assert_eq!(
            parse_time_point("600"),
            Ok(TimePoint::Recording(Duration::from_secs(600)))
        );
        assert_eq!(
            parse_time_point("00:10:00.5"),
            Ok(TimePoint::Recording(Duration::from_millis(600_500)))
        );
        assert_eq!(
            parse_time_point("1h2m3.5s"),
            Ok(TimePoint::Recording(Duration::from_millis(3_723_500)))
        );
        let expected = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 1, 38)
            .single()
            .expect("valid date");
        assert_eq!(
            parse_time_point("2026-11-23T13:01:38+01:00"),
            Ok(TimePoint::Utc(expected))
        );
        assert_eq!(
            parse_time_point(" 2026-11-23T12:01:38Z "),
            Ok(TimePoint::Utc(expected))
        );
    }

    #[test]
    fn time_point_errors() {
        // Not a date: the duration parser explains.
        assert!(matches!(
            parse_time_point("10x"),
            Err(TimeSpecError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_time_point("-5"),
            Err(TimeSpecError::Negative { .. })
        ));
        assert!(matches!(
            parse_time_point("nan"),
            Err(TimeSpecError::NotFinite { .. })
        ));
        assert!(matches!(
            parse_time_point("99999999999999999999"),
            Err(TimeSpecError::Overflow { .. })
        ));
        assert!(matches!(
            parse_time_point("1:60"),
            Err(TimeSpecError::Invalid { .. })
        ));
        assert!(matches!(
            parse_time_point("13:01:38Z"),
            Err(TimeSpecError::Invalid { .. })
        ));
        // Looks like a date: the instant parser explains.
        for s in [
            "2026-11-23T25:01:38Z",
            "2026-11-23T13:01:38",
            "2026-11-23",
            "2026-11-23 13:01:38 UTC",
        ] {
            assert!(
                matches!(parse_time_point(s), Err(TimeSpecError::InvalidUtc { .. })),
                "{s:?}: {:?}",
                parse_time_point(s)
            );
        }
    }

    #[test]
    fn format_is_compact() {
        let cases = [
            (0, "0s"),
            (1, "0.000000001s"),
            (NS_PER_MS, "1ms"),
            (250 * NS_PER_MS, "250ms"),
            (S / 2 + 1, "0.500000001s"),
            (S, "1s"),
            (S + S / 2, "1.5s"),
            (59 * S, "59s"),
            (60 * S, "1m"),
            (90 * S, "1m30s"),
            (3600 * S, "1h"),
            (3600 * S + S / 2, "1h500ms"),
            (3723 * S + S / 2, "1h2m3.5s"),
            (3723 * S + 1, "1h2m3.000000001s"),
            (u64::MAX, "5124095h34m33.709551615s"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_duration(Duration::from_nanos(ns)), text, "{ns}");
        }
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    fn assert_round_trip(ns: u64) {
        let d = Duration::from_nanos(ns);
        let text = format_duration(d);
        assert_eq!(parse_duration(&text), Ok(d), "{ns} formatted as {text:?}");
    }

    #[test]
    fn format_round_trips() {
        let mut values = vec![0, 1, 2, 999, NS_PER_MS - 1, NS_PER_MS, NS_PER_MS + 1];
        values.extend([S - 1, S, S + 1, 60 * S - 1, 60 * S, 3600 * S - 1, 3600 * S]);
        values.extend([u64::MAX, u64::MAX - 1, u64::MAX / 2, u64::MAX - S]);
        values.extend((0..64).map(|shift| 1u64 << shift));
        values.extend((0..64).map(|shift| (1u64 << shift) - 1));
        values.extend((0..20).map(|exp| 10u64.pow(exp)));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let raw = rng.next();
            let shift = rng.next() % 64;
            values.push(raw >> shift);
        }
        for ns in values {
            assert_round_trip(ns);
        }
    }

    #[test]
    fn format_beyond_u64_nanoseconds() {
        let text = format_duration(Duration::MAX);
        assert!(text.ends_with(".999999999s"), "{text}");
        assert!(matches!(
            parse_duration(&text),
            Err(TimeSpecError::Overflow { .. })
        ));
        let just_over = Duration::from_nanos(u64::MAX) + Duration::from_nanos(1);
        assert!(matches!(
            parse_duration(&format_duration(just_over)),
            Err(TimeSpecError::Overflow { .. })
        ));
    }

    const ODD_INPUTS: &[&str] = &[
        "\0",
        "\u{feff}600",
        "600\u{feff}",
        "\u{2003}600",
        "１０",
        "10ｍ",
        "💥",
        "1💥",
        "1:💥",
        "💥:1",
        "1h💥",
        "ᛗ",
        "1ᛗ",
        "1.💥",
        "1:2:💥",
        ":::",
        "1::2",
        "1:2:",
        "...",
        ".",
        "-.",
        "-:",
        "- 5",
        "5-",
        "1h-",
        "0x",
        "0b101",
        "1/2",
        "½",
        "1½s",
        "1h2m3s4ms5",
        "1h2m3s4ms5s",
        "NaNs",
        "infs",
        "1inf",
        "-infinity s",
        "1.5e",
        "1e-",
        "e",
        "E5",
        "\"600\"",
        "'600'",
        "600;",
        "600\n600",
        "99999999999999999999999999999999999999999999999999ms",
        "0.",
        "00:00:60",
        "00:60",
        "1:99999999999999999999999:00",
        "1:00:99999999999999999999999",
        "2026-11-23T13:01:38Z trailing",
        "T",
        "-T",
        "1-",
        "1-1",
        "Z",
    ];

    #[test]
    fn odd_inputs_are_rejected_without_panicking() {
        for s in ODD_INPUTS {
            let duration = parse_duration(s);
            assert!(duration.is_err(), "{s:?} gave {duration:?}");
            let point = parse_time_point(s);
            assert!(point.is_err(), "{s:?} gave {point:?}");
            let instant = parse_utc(s);
            assert!(instant.is_err(), "{s:?} gave {instant:?}");
            for error in [duration, point.map(|_| Duration::ZERO)] {
                let message = error.unwrap_err().to_string();
                assert!(!message.is_empty());
            }
        }
    }

    #[test]
    fn short_strings_never_panic() {
        const ALPHABET: [&str; 16] = [
            "0", "9", ".", ":", "h", "m", "s", "-", "+", "e", " ", "x", "µ", "T", "Z", "5",
        ];
        let mut strings = vec![String::new()];
        let mut previous = vec![String::new()];
        for _ in 0..4 {
            let next: Vec<String> = previous
                .iter()
                .flat_map(|prefix| ALPHABET.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            strings.extend(next.iter().cloned());
            previous = next;
        }
        assert!(strings.len() > 60_000);
        for s in &strings {
            match parse_duration(s) {
                Ok(d) => assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{s:?}"),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
            if let Err(e) = parse_time_point(s) {
                assert!(!e.to_string().is_empty());
            }
            if let Err(e) = parse_utc(s) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
