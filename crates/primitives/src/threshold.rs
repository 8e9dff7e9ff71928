//! Eviction threshold values (`evictionHard`, `evictionSoft`, `evictionMinimumReclaim`):
//! a quantity or a percentage of capacity, parsed as upstream's eviction helpers.

use std::fmt;

use crate::quantity::Quantity;

/// An amount or a fraction of the capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdValue {
    Quantity(Quantity),
    /// The fraction (0.0 to 1.0) in single precision, as upstream (`float32(p) / 100`).
    Percentage(f32),
}

impl ThresholdValue {
    /// `"10%"` or a non-negative quantity (`"100Mi"`); the error names the text.
    pub fn parse(text: &str) -> Result<ThresholdValue, String> {
        if let Some(percent) = text.strip_suffix('%') {
            return match percent.parse::<f32>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(ThresholdValue::Percentage(p / 100.0)),
                _ => Err(format!(
                    "threshold {text:?} must be a percentage between 0% and 100%"
                )),
            };
        }
        let q = Quantity::parse(text).map_err(|e| e.to_string())?;
        if q.is_negative() {
            return Err(format!("threshold {text:?} must not be negative"));
        }
        Ok(ThresholdValue::Quantity(q))
    }

    /// The absolute amount for a resource with this capacity, in whole units (upstream
    /// GetThresholdQuantity: capacity times the fraction, truncated).
    pub fn amount(&self, capacity: i128) -> i128 {
        match self {
            ThresholdValue::Quantity(q) => q.value(),
            ThresholdValue::Percentage(p) => (capacity as f64 * f64::from(*p)) as i128,
        }
    }
}

impl fmt::Display for ThresholdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdValue::Quantity(q) => write!(f, "{q}"),
            ThresholdValue::Percentage(p) => write!(f, "{}%", p * 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_quantities() {
        let q = |s| ThresholdValue::parse(s).unwrap();
        assert_eq!(q("10%"), ThresholdValue::Percentage(0.1));
        assert_eq!(q("100Mi").amount(0), 100 << 20);
        assert_eq!(q("500000u").amount(0), 1);
        assert_eq!(q("10%").amount(1000), 100);
        assert_eq!(q("0%").amount(1000), 0);
        for bad in ["101%", "x%", "-1%", "-1Gi", "10MB", ""] {
            let err = ThresholdValue::parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
