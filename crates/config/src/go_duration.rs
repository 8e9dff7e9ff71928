//! Go `time.Duration` text format: parsing (`time.ParseDuration`) and
//! formatting (`Duration.String()`), plus serde helpers.
//!
//! Kubernetes serialises every `metav1.Duration` with Go's format, so the
//! kubelet config file and `/configz` use strings such as `"20s"`, `"1m0s"`,
//! `"100ms"` or `"1h2m3.5s"`. Go durations are signed; Rust's
//! [`std::time::Duration`] is not, so negative values are rejected with an
//! explicit error instead of being silently clamped.

use std::fmt::Write as _;
use std::time::Duration;

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Go durations are an `int64` count of nanoseconds.
const MAX_GO_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration string such as `"1h2m3.5s"`, `"100ms"` or `"0"`.
///
/// Accepts the units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m` and `h`, an optional
/// leading `+`, and decimal fractions on any component, like Go does. A bare
/// number is only accepted for zero. Error texts follow Go's wording
/// (`time: invalid duration "abc"`).
pub fn parse(input: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{input}\"");
    let mut rest = input;
    let mut negative = false;
    if let Some(stripped) = rest.strip_prefix('-') {
        negative = true;
        rest = stripped;
    } else if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }

    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, frac, after_number) = split_number(rest).ok_or_else(invalid)?;
        let unit_len = after_number
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after_number.len());
        let unit = &after_number[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{input}\""));
        }
        let unit_nanos = unit_nanos(unit)
            .ok_or_else(|| format!("time: unknown unit \"{unit}\" in duration \"{input}\""))?;
        total = total
            .checked_add(component_nanos(whole, frac, unit_nanos).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        if total > MAX_GO_NANOS {
            return Err(invalid());
        }
        rest = &after_number[unit_len..];
    }

    if negative && total != 0 {
        return Err(format!(
            "negative duration \"{input}\" is not supported by kubelet-rs"
        ));
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid())?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| invalid())?;
    Ok(Duration::new(secs, nanos))
}

/// Splits a leading `digits[.digits]` off `s`; at least one digit is required.
fn split_number(s: &str) -> Option<(&str, &str, &str)> {
    let whole_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let whole = &s[..whole_len];
    let mut rest = &s[whole_len..];
    let mut frac = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let frac_len = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        frac = &after_dot[..frac_len];
        rest = &after_dot[frac_len..];
    }
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    Some((whole, frac, rest))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// `whole.frac` units, in nanoseconds; fractional nanoseconds are truncated as in Go.
fn component_nanos(whole: &str, frac: &str, unit: u128) -> Option<u128> {
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)?
            .checked_add(u128::from(digit - b'0'))?;
        if nanos > MAX_GO_NANOS {
            return None;
        }
    }
    nanos = nanos.checked_mul(unit)?;
    let mut scale: u128 = 1;
    let mut frac_value: u128 = 0;
    // Digits past nanosecond precision cannot change the result.
    for digit in frac.bytes().take(20) {
        frac_value = frac_value * 10 + u128::from(digit - b'0');
        scale *= 10;
    }
    nanos.checked_add(frac_value.checked_mul(unit)? / scale)
}

/// Formats a duration the way Go's `Duration.String()` does: `"0s"`, `"1.5µs"`,
/// `"100ms"`, `"20s"`, `"1m0s"`, `"1h2m3.5s"`.
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if nanos < NANOS_PER_SEC {
        if nanos < NANOS_PER_MICRO {
            let _ = write!(out, "{nanos}ns");
        } else if nanos < NANOS_PER_MILLI {
            push_fraction(&mut out, nanos, NANOS_PER_MICRO);
            out.push_str("\u{b5}s");
        } else {
            push_fraction(&mut out, nanos, NANOS_PER_MILLI);
            out.push_str("ms");
        }
        return out;
    }
    let whole_secs = nanos / NANOS_PER_SEC;
    let hours = whole_secs / 3_600;
    let minutes = (whole_secs / 60) % 60;
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    push_fraction(&mut out, nanos % (60 * NANOS_PER_SEC), NANOS_PER_SEC);
    out.push('s');
    out
}

/// Writes `value / unit` with the remainder as a decimal fraction without trailing zeros.
fn push_fraction(out: &mut String, value: u128, unit: u128) {
    let _ = write!(out, "{}", value / unit);
    let remainder = value % unit;
    if remainder == 0 {
        return;
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{remainder:0width$}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// Serde adapter for `Duration` fields stored as Go duration strings.
pub mod serde_go {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<Duration>` fields stored as Go duration strings.
pub mod serde_go_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&super::format(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn parses_go_examples() {
        assert_eq!(parse("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("100ms"), Ok(ms(100)));
        assert_eq!(parse("1h2m3.5s"), Ok(ms(3_723_500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("-0"), Ok(Duration::ZERO));
        assert_eq!(parse("+5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse(".5s"), Ok(ms(500)));
        assert_eq!(parse("5.s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse("1µs"), Ok(Duration::from_micros(1)));
        assert_eq!(parse("1μs"), Ok(Duration::from_micros(1)));
        assert_eq!(parse("3ns"), Ok(Duration::from_nanos(3)));
        assert_eq!(parse("2h45m"), Ok(Duration::from_secs(9_900)));
    }

    #[test]
    fn rejects_malformed_input_with_go_messages() {
        assert_eq!(parse("abc"), Err("time: invalid duration \"abc\"".into()));
        assert_eq!(parse(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(parse("."), Err("time: invalid duration \".\"".into()));
        assert_eq!(
            parse("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse("5d"),
            Err("time: unknown unit \"d\" in duration \"5d\"".into())
        );
        assert!(parse("1s-2s").is_err());
        assert!(parse("-5s").unwrap_err().contains("negative duration"));
    }

    #[test]
    fn rejects_values_beyond_go_range() {
        assert!(parse("9223372036854775807ns").is_ok());
        assert!(parse("9223372036854775808ns").is_err());
        assert!(parse("3000000h").is_err());
        assert!(parse("99999999999999999999999999999999999999s").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(20)), "20s");
        assert_eq!(format(Duration::from_secs(60)), "1m0s");
        assert_eq!(format(Duration::from_secs(3_600)), "1h0m0s");
        assert_eq!(format(ms(100)), "100ms");
        assert_eq!(format(ms(3_723_500)), "1h2m3.5s");
        assert_eq!(format(Duration::from_secs(4 * 3_600)), "4h0m0s");
        assert_eq!(format(Duration::from_nanos(1_500)), "1.5\u{b5}s");
        assert_eq!(format(Duration::from_nanos(7)), "7ns");
        assert_eq!(format(Duration::from_nanos(1_000_000_001)), "1.000000001s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn format_then_parse_round_trips() {
        for nanos in [
            0u64,
            1,
            999,
            1_500,
            100_000_000,
            20_000_000_000,
            3_723_500_000_000,
            86_400_000_000_123,
        ] {
            let duration = Duration::from_nanos(nanos);
            assert_eq!(parse(&format(duration)), Ok(duration), "nanos={nanos}");
        }
    }

    #[test]
    fn serde_adapters_use_go_strings() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Holder {
            #[serde(with = "serde_go")]
            d: Duration,
            #[serde(with = "serde_go_opt", default)]
            o: Option<Duration>,
        }
        let holder: Holder = serde_json::from_str(r#"{"d":"1m30s","o":"100ms"}"#).unwrap();
        assert_eq!(holder.d, Duration::from_secs(90));
        assert_eq!(holder.o, Some(ms(100)));
        assert_eq!(
            serde_json::to_string(&holder).unwrap(),
            r#"{"d":"1m30s","o":"100ms"}"#
        );
        let err = serde_json::from_str::<Holder>(r#"{"d":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration"));
    }
}
