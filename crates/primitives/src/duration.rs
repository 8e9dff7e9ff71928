//! Go `time.Duration` text format: parsing (`time.ParseDuration`) and
//! formatting (`Duration.String()`), the one implementation every crate uses (the
//! configuration file and flags, eviction grace periods, health messages).
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

/// Parses a Go duration string such as `"1h2m3.5s"`, `"100ms"` or `"0"`, step for step as
/// Go's `time.ParseDuration` (including its float64 scaling of fractions, so
/// `0.3333333333333333333h` is exactly 20 minutes as in Go).
///
/// Accepts the units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m` and `h`, an optional
/// leading sign, and decimal fractions on any component. A bare number is only accepted
/// for zero. Error texts follow Go's wording (`time: invalid duration "abc"`); a negative
/// duration is refused (Rust durations are unsigned).
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
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let whole_len = digits_len(rest);
        let whole = leading_int(&rest[..whole_len]).ok_or_else(invalid)?;
        rest = &rest[whole_len..];
        let mut fraction = None;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let len = digits_len(after_dot);
            if len > 0 {
                fraction = Some(leading_fraction(&after_dot[..len]));
            }
            rest = &after_dot[len..];
        }
        if whole_len == 0 && fraction.is_none() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{input}\""));
        }
        let unit_nanos = unit_nanos(unit)
            .ok_or_else(|| format!("time: unknown unit \"{unit}\" in duration \"{input}\""))?;
        rest = &rest[unit_len..];
        if whole > LIMIT / unit_nanos {
            return Err(invalid());
        }
        let mut value = whole * unit_nanos;
        if let Some((f, scale)) = fraction.filter(|(f, _)| *f > 0) {
            // Go: float64 is nanosecond-accurate for fractions of the largest unit.
            value += (f as f64 * (unit_nanos as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    if negative && total != 0 {
        return Err(format!(
            "negative duration \"{input}\" is not supported by kubelet-rs"
        ));
    }
    Ok(Duration::from_nanos(total))
}

fn digits_len(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Go's `leadingInt`: `None` on overflow past 2^63.
fn leading_int(digits: &str) -> Option<u64> {
    let mut x: u64 = 0;
    for c in digits.bytes() {
        if x > (1 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > 1 << 63 {
            return None;
        }
    }
    Some(x)
}

/// Go's `leadingFraction`: the digits as an integer and the power of ten that scales
/// them; digits past int64 precision are ignored.
fn leading_fraction(digits: &str) -> (u64, f64) {
    let mut x: u64 = 0;
    let mut scale = 1.0f64;
    for c in digits.bytes() {
        if x > ((1u64 << 63) - 1) / 10 {
            break;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > 1 << 63 {
            break;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
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

    /// Go's time_test.go parseDurationTests (the cases a Rust string can hold; negative
    /// durations are refused here).
    #[test]
    fn go_parse_duration_table() {
        let ns = Duration::from_nanos;
        let secs = Duration::from_secs;
        for (input, want) in [
            ("0", Duration::ZERO),
            ("5s", secs(5)),
            ("30s", secs(30)),
            ("1478s", secs(1478)),
            ("+5s", secs(5)),
            ("+0", Duration::ZERO),
            ("5.0s", secs(5)),
            ("5.6s", ms(5_600)),
            ("5.s", secs(5)),
            (".5s", ms(500)),
            ("1.0s", secs(1)),
            ("1.00s", secs(1)),
            ("1.004s", ms(1_004)),
            ("1.0040s", ms(1_004)),
            ("100.00100s", ms(100_001)),
            ("10ns", ns(10)),
            ("11us", ns(11_000)),
            ("12\u{b5}s", ns(12_000)),
            ("12\u{3bc}s", ns(12_000)),
            ("13ms", ms(13)),
            ("14s", secs(14)),
            ("15m", secs(15 * 60)),
            ("16h", secs(16 * 3_600)),
            ("3h30m", secs(3 * 3_600 + 30 * 60)),
            ("10.5s4m", secs(4 * 60 + 10) + ms(500)),
            ("1h1m1s1ms1us1ns", ns(3_661_001_001_001)),
            ("39h9m14.425s", ms(((39 * 60 + 9) * 60 + 14) * 1_000 + 425)),
            ("52763797000ns", ns(52_763_797_000)),
            ("0.3333333333333333333h", secs(20 * 60)),
            ("9007199254740993ns", ns(9_007_199_254_740_993)),
            ("9223372036854775807ns", ns(i64::MAX as u64)),
            ("9223372036854775.807us", ns(i64::MAX as u64)),
            ("9223372036s854ms775us807ns", ns(i64::MAX as u64)),
            ("0.100000000000000000000h", secs(6 * 60)),
            (
                "0.830103483285477580700h",
                secs(49 * 60 + 48) + ns(372_539_827),
            ),
        ] {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(&format!("\"{bad}\"")), "{err}");
        }
    }
}
