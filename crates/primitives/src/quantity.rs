//! Kubernetes resource quantities (`resource.Quantity`): one exact parser and formatter for
//! every crate (configuration, manifests, cgroups, node status, the test API server).
//!
//! Semantics follow upstream apimachinery:
//! - the grammar is `[+-]digits[.digits][suffix]`, the suffix a decimal SI unit
//!   (`n u m "" k M G T P E`), a binary one (`Ki Mi Gi Ti Pi Ei`) or an exponent (`e3`,
//!   `E-2`); an empty number is zero, so `"Mi"`, `"."` and `"-"` parse to 0 as upstream;
//! - values are exact to the nano unit and anything finer is rounded away from zero
//!   ("if you ask for some resource, you get some");
//! - the suffix decides the format the value is printed back in; the canonical form is
//!   the one the API server writes (`0.5Gi` -> `512Mi`, `1000` -> `1k`, `1.5` -> `1500m`);
//! - [`Quantity::milli_value`] and [`Quantity::value`] round up, like `MilliValue`/`Value`.
//!
//! Difference: upstream falls back to arbitrary precision beyond int64; here values are held
//! as i128 nano units (about ±1.7e29 units) and a quantity beyond that, or with more than 38
//! significant digits, is refused with an error naming it.

use std::cmp::Ordering;
use std::fmt;

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;
/// Upstream caps BinarySI quantities at the largest int64.
const MAX_BINARY_NANOS: i128 = i64::MAX as i128 * NANOS_PER_UNIT;

/// How a quantity is printed back: the family of the suffix it was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `Ki`, `Mi`, ... (powers of 1024).
    BinarySI,
    /// `m`, `k`, `M`, ... or no suffix (powers of 1000).
    DecimalSI,
    /// `e3`, `E-2`.
    DecimalExponent,
}

/// An exact resource quantity.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a quantity string was refused; the message names the string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError {
    input: String,
    reason: &'static str,
}

impl QuantityError {
    /// Why the text was refused, without the text.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quantity {:?} is not valid: {}", self.input, self.reason)
    }
}

impl std::error::Error for QuantityError {}

const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const BAD_SUFFIX: &str = "unable to parse the quantity's suffix (expected e.g. 100Mi, 1.5Gi, 200m)";
const TOO_LARGE: &str =
    "the value is beyond what kubelet-rs holds exactly (about 1.7e29 units, 38 digits)";

impl Quantity {
    /// Parses a quantity as upstream's `resource.ParseQuantity`.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let err = |reason| QuantityError {
            input: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(err(FORMAT_WRONG));
        }
        let parts = split(text).ok_or_else(|| err(FORMAT_WRONG))?;
        let (base, exponent, format) =
            interpret_suffix(parts.suffix).ok_or_else(|| err(BAD_SUFFIX))?;
        let magnitude = magnitude_nanos(parts.whole, parts.fraction, base, exponent)
            .ok_or_else(|| err(TOO_LARGE))?;
        let (magnitude, format) = match format {
            Format::BinarySI if magnitude > MAX_BINARY_NANOS => (MAX_BINARY_NANOS, format),
            Format::BinarySI if magnitude > 0 && magnitude < NANOS_PER_UNIT => {
                (magnitude, Format::DecimalSI)
            }
            _ => (magnitude, format),
        };
        Ok(Quantity {
            nanos: if parts.negative {
                -magnitude
            } else {
                magnitude
            },
            format,
        })
    }

    /// A whole number of bytes, printed with binary suffixes (`1Gi`, `32665980Ki`).
    pub fn from_bytes(bytes: i128) -> Quantity {
        Quantity {
            nanos: bytes.saturating_mul(NANOS_PER_UNIT),
            format: Format::BinarySI,
        }
    }

    /// Thousandths of a unit (CPU millicores), printed with decimal suffixes (`4`, `3500m`).
    pub fn from_milli(milli: i128) -> Quantity {
        Quantity {
            nanos: milli.saturating_mul(NANOS_PER_MILLI),
            format: Format::DecimalSI,
        }
    }

    /// A plain count (`110`), printed with decimal suffixes.
    pub fn from_value(value: i128) -> Quantity {
        Quantity {
            nanos: value.saturating_mul(NANOS_PER_UNIT),
            format: Format::DecimalSI,
        }
    }

    /// The value in thousandths, rounded up (upstream `MilliValue`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_MILLI)
    }

    /// The value in whole units, rounded up (upstream `Value`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_UNIT)
    }

    /// The value in nano units (exact).
    pub fn nano_value(&self) -> i128 {
        self.nanos
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    pub fn format(&self) -> Format {
        self.format
    }
}

/// Thousandths to whole units, rounded up as upstream's `Value` (memory bytes from a
/// milli amount).
pub fn milli_to_units(milli: i128) -> i128 {
    div_ceil(milli, NANOS_PER_UNIT / NANOS_PER_MILLI)
}

/// A non-negative quantity in thousandths, rounded up (cgroup CPU values, the downward API).
pub fn parse_milli(text: &str) -> Result<i128, QuantityError> {
    parse_non_negative(text).map(|q| q.milli_value())
}

/// A non-negative quantity in whole units, rounded up (bytes, counts).
pub fn parse_value(text: &str) -> Result<i128, QuantityError> {
    parse_non_negative(text).map(|q| q.value())
}

fn parse_non_negative(text: &str) -> Result<Quantity, QuantityError> {
    let q = Quantity::parse(text)?;
    if q.is_negative() {
        return Err(QuantityError {
            input: text.to_string(),
            reason: "must not be negative",
        });
    }
    Ok(q)
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

/// The canonical form, as the API server writes it.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let whole_units = self.nanos % NANOS_PER_UNIT == 0;
        let binary = self.format == Format::BinarySI
            && self.nanos.abs() >= 1024 * NANOS_PER_UNIT
            && whole_units;
        if binary {
            let mut amount = self.nanos / NANOS_PER_UNIT;
            let mut power = 0;
            while power < BINARY_SUFFIXES.len() - 1 && amount % 1024 == 0 {
                amount /= 1024;
                power += 1;
            }
            return write!(f, "{amount}{}", BINARY_SUFFIXES[power]);
        }
        // Decimal: the smallest mantissa whose exponent is a multiple of 3.
        let mut mantissa = self.nanos;
        let mut exponent: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        let extra = exponent.rem_euclid(3);
        mantissa *= 10i128.pow(extra as u32);
        exponent -= extra;
        let suffix = match (self.format, exponent) {
            (_, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, e) => decimal_suffix(e).map_or_else(|| format!("e{e}"), str::to_string),
        };
        write!(f, "{mantissa}{suffix}")
    }
}

const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

fn decimal_suffix(exponent: i32) -> Option<&'static str> {
    Some(match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return None,
    })
}

struct Parts<'a> {
    negative: bool,
    whole: &'a str,
    fraction: &'a str,
    suffix: &'a str,
}

/// Splits the text as upstream's `parseQuantityString`; `None` when the grammar is broken.
fn split(text: &str) -> Option<Parts<'_>> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let whole_len = digits(rest);
    let (whole, rest) = rest.split_at(whole_len);
    let (fraction, suffix) = match rest.strip_prefix('.') {
        Some(after) => after.split_at(digits(after)),
        None => ("", rest),
    };
    // The suffix: unit letters, then an optional signed exponent.
    let letters = suffix
        .bytes()
        .take_while(|b| b"eEinumkKMGTP".contains(b))
        .count();
    let tail = &suffix[letters..];
    let tail = tail.strip_prefix(['+', '-']).unwrap_or(tail);
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Parts {
        negative,
        whole,
        fraction,
        suffix,
    })
}

/// (base, exponent, format) of a suffix, as upstream's suffixer.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSI));
    let binary = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ if suffix.len() > 1 && suffix.starts_with(['e', 'E']) => {
            let exponent: i32 = suffix[1..].parse().ok()?;
            Some((10, exponent, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// The magnitude in nano units, rounded away from zero; `None` when it does not fit.
fn magnitude_nanos(whole: &str, fraction: &str, base: u32, exponent: i32) -> Option<i128> {
    let fraction = fraction.trim_end_matches('0');
    let digits: String = whole.chars().chain(fraction.chars()).collect();
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 38 {
        return None;
    }
    let mut mantissa: i128 = digits.parse().ok()?;
    let mut pow10 = 9 - i32::try_from(fraction.len()).ok()?;
    match base {
        2 => mantissa = mantissa.checked_mul(1i128.checked_shl(exponent as u32)?)?,
        _ => pow10 = pow10.checked_add(exponent)?,
    }
    if pow10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(pow10 as u32)?)
    } else {
        match 10i128.checked_pow(pow10.unsigned_abs()) {
            Some(divisor) => Some(div_ceil(mantissa, divisor)),
            // Finer than 1e-38 of a nano unit: the smallest non-zero amount.
            None => Some(1),
        }
    }
}

/// Division rounding toward positive infinity.
fn div_ceil(numerator: i128, divisor: i128) -> i128 {
    let quotient = numerator.div_euclid(divisor);
    if numerator.rem_euclid(divisor) == 0 {
        quotient
    } else {
        quotient + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        Quantity::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    }

    /// Upstream's quantity_test.go examples: input and the canonical form it prints.
    #[test]
    fn canonical_forms_as_upstream() {
        for (input, want) in [
            ("0", "0"),
            ("0n", "0"),
            ("0u", "0"),
            ("0m", "0"),
            ("0Ki", "0"),
            ("0k", "0"),
            ("0Ei", "0"),
            ("0.0", "0"),
            ("1", "1"),
            ("1000", "1k"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            ("100m", "100m"),
            ("1.001", "1001m"),
            ("1Ki", "1Ki"),
            ("1024", "1024"),
            ("1024Ki", "1Mi"),
            ("0.5Gi", "512Mi"),
            ("1.5Gi", "1536Mi"),
            ("7Ei", "7Ei"),
            // 8Ei is 2^63: capped at the largest int64, which has no binary suffix.
            ("8Ei", "9223372036854775807"),
            ("5.5Mi", "5632Ki"),
            ("100Mi", "100Mi"),
            ("1.5k", "1500"),
            ("1M", "1M"),
            ("1G", "1G"),
            ("1T", "1T"),
            ("1P", "1P"),
            ("1E", "1E"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("1e-3", "1e-3"),
            ("1e-9", "1e-9"),
            ("100u", "100u"),
            ("1n", "1n"),
            ("500000u", "500m"),
            ("-1", "-1"),
            ("-100m", "-100m"),
            ("-1Ki", "-1Ki"),
            ("+5k", "5k"),
            ("5.", "5"),
            (".5", "500m"),
            ("0.1m", "100u"),
            ("1.0Ki", "1Ki"),
            ("0.001Ki", "1024m"),
            ("12.34Ki", "12636160m"),
            // Finer than a nano unit is rounded up.
            ("0.0000000001", "1n"),
            ("1.0000000001", "1000000001n"),
            ("1e-10", "1e-9"),
            // upstream: an empty number is zero.
            ("Mi", "0"),
            (".", "0"),
            ("-", "0"),
        ] {
            assert_eq!(canonical(input), want, "{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_refused_naming_them() {
        for bad in [
            "", "10MB", "1.2.3", "abc", "10 Mi", "1e", "1ee3", "--1", "1KiB", "1K", "1i", "1.5e",
            "1e3.5", "5m5", "1 ", " 1", "1Mi ",
        ] {
            let err = Quantity::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(Quantity::parse("1e100").is_err());
    }

    #[test]
    fn values_round_up_like_milli_value_and_value() {
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("100m").value(), 1);
        assert_eq!(q("1.5Gi").value(), 1610612736);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("500000u").milli_value(), 500);
        assert_eq!(q("2").milli_value(), 2000);
        assert_eq!(q("-1500m").value(), -1);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(milli_to_units(1001), 2);
        assert_eq!(milli_to_units(1000), 1);
        assert_eq!(milli_to_units(-1500), -1);
    }

    #[test]
    fn equal_values_compare_equal_whatever_their_form() {
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn constructors_print_like_the_api_server() {
        assert_eq!(Quantity::from_bytes(0).to_string(), "0");
        assert_eq!(Quantity::from_bytes(1 << 30).to_string(), "1Gi");
        assert_eq!(Quantity::from_bytes(33449963520).to_string(), "32665980Ki");
        // Below 1024 upstream switches a binary quantity to decimal suffixes.
        assert_eq!(Quantity::from_bytes(1000).to_string(), "1k");
        assert_eq!(Quantity::from_bytes(1023).to_string(), "1023");
        assert_eq!(Quantity::from_milli(8000).to_string(), "8");
        assert_eq!(Quantity::from_milli(3500).to_string(), "3500m");
        assert_eq!(Quantity::from_value(110).to_string(), "110");
    }

    #[test]
    fn binary_quantities_are_capped_at_the_largest_int64() {
        let q = Quantity::parse("16Ei").unwrap();
        assert_eq!(q.value(), i64::MAX as i128);
    }

    #[test]
    fn amounts_must_not_be_negative() {
        assert_eq!(parse_milli("250m"), Ok(250));
        assert_eq!(parse_value("64Mi"), Ok(64 << 20));
        assert!(
            parse_value("-1")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
    }
}
