//! Resource quantities (`"10Mi"`, `"200m"`, `"1.5Gi"`, `"1e3"`, `"500000u"`) and eviction
//! thresholds (`"10%"`) in the configuration.
//!
//! The configuration keeps them as strings (that is what the file and `/configz` carry);
//! validation parses them with the one exact parser, [`kubelet_primitives::Quantity`],
//! so what is accepted here is exactly what the kubelet later uses, and what upstream's
//! `resource.ParseQuantity` refuses is refused at start-up.

use kubelet_primitives::{Quantity, ThresholdValue};

/// Checks the `resource.Quantity` grammar; the error names the value and the reason.
pub fn validate(value: &str) -> Result<(), String> {
    Quantity::parse(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A quantity that must not be negative (reservations, sizes).
pub fn validate_non_negative(value: &str) -> Result<(), String> {
    let q = Quantity::parse(value).map_err(|e| e.to_string())?;
    if q.is_negative() {
        return Err(format!("quantity {value:?} must not be negative"));
    }
    Ok(())
}

/// Checks an eviction threshold value: a percentage in `[0%, 100%]` or a
/// non-negative quantity.
pub fn validate_threshold(value: &str) -> Result<(), String> {
    ThresholdValue::parse(value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_quantities() {
        for ok in [
            "10Mi", "0", "1", "200m", "1.5Gi", "1e3", "1E-2", "+5k", "-1", ".5", "5.", "100n",
            "3u", "2Ei", "500000u",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_quantities() {
        for bad in [
            "", "10MB", "1.2.3", "abc", "10 Mi", "1e", "1ee3", "--1", "1KiB",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        // Upstream reads an empty number as zero: "Mi" is 0, not an error.
        assert_eq!(validate("Mi"), Ok(()));
        assert!(validate("10MB").unwrap_err().contains("10MB"));
        assert!(
            validate_non_negative("-1")
                .unwrap_err()
                .contains("negative")
        );
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
