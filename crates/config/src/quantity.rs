//! Syntax checks for Kubernetes resource quantities (`"10Mi"`, `"200m"`,
//! `"1.5Gi"`, `"1e3"`) and eviction thresholds (`"10%"`).
//!
//! The configuration keeps quantities as strings (that is what the file and
//! `/configz` carry); this module only rejects values that upstream's
//! `resource.ParseQuantity` would reject, so errors surface at start-up.

/// Checks the `resource.Quantity` grammar:
/// `[+-]digits[.digits]` followed by nothing, a binary SI suffix
/// (`Ki`…`Ei`), a decimal SI suffix (`n u m k M G T P E`) or an exponent
/// (`e3`, `E-2`).
pub fn validate(value: &str) -> Result<(), String> {
    let invalid = || format!("quantity {value:?} is not valid (expected e.g. 100Mi, 1.5Gi, 200m)");
    let unsigned = value
        .strip_prefix('+')
        .or_else(|| value.strip_prefix('-'))
        .unwrap_or(value);
    let number_len = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_len);
    if !is_decimal(number) {
        return Err(invalid());
    }
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix.strip_prefix(['e', 'E']).is_some_and(|exponent| {
        let digits = exponent
            .strip_prefix('+')
            .or_else(|| exponent.strip_prefix('-'))
            .unwrap_or(exponent);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if suffix_ok { Ok(()) } else { Err(invalid()) }
}

/// `digits`, `digits.digits`, `digits.` or `.digits`.
fn is_decimal(number: &str) -> bool {
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let has_digits = !(whole.is_empty() && frac.is_empty());
    has_digits && !frac.contains('.')
}

/// Checks an eviction threshold value: a percentage in `[0%, 100%]` or a
/// non-negative quantity.
pub fn validate_threshold(value: &str) -> Result<(), String> {
    if let Some(percent) = value.strip_suffix('%') {
        return match percent.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(()),
            _ => Err(format!(
                "threshold {value:?} must be a percentage between 0% and 100%"
            )),
        };
    }
    validate(value)?;
    if value.starts_with('-') {
        return Err(format!("threshold {value:?} must not be negative"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_quantities() {
        for ok in [
            "10Mi", "0", "1", "200m", "1.5Gi", "1e3", "1E-2", "+5k", "-1", ".5", "5.", "100n",
            "3u", "2Ei",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_quantities() {
        for bad in [
            "", "Mi", "10MB", "1.2.3", "abc", "10 Mi", "1e", "1ee3", "--1", "1KiB",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate("10MB").unwrap_err().contains("10MB"));
    }

    #[test]
    fn thresholds_accept_percentages_and_quantities() {
        assert_eq!(validate_threshold("10%"), Ok(()));
        assert_eq!(validate_threshold("100Mi"), Ok(()));
        assert!(validate_threshold("101%").is_err());
        assert!(validate_threshold("x%").is_err());
        assert!(validate_threshold("-1Gi").is_err());
    }
}
