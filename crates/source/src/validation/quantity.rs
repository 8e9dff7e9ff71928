//! Resource quantity syntax (`<signedNumber><suffix>`) and an approximate numeric value,
//! enough to validate manifests and compare requests with limits.

/// The value of a quantity such as `100m`, `1.5Gi`, `2e3`, or `None` when it does not
/// parse.
pub fn parse(s: &str) -> Option<f64> {
    let s = s.trim();
    let num_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(num_end);
    let digits = number.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    Some(value * multiplier(suffix)?)
}

fn multiplier(suffix: &str) -> Option<f64> {
    let m = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let digits = exp.trim_start_matches(['+', '-']);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let exp: i32 = exp.parse().ok()?;
            10f64.powi(exp)
        }
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_suffix_families() {
        assert_eq!(parse("1"), Some(1.0));
        assert_eq!(parse("100m"), Some(0.1));
        assert_eq!(parse("1.5Gi"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(parse("2k"), Some(2000.0));
        assert_eq!(parse("2e3"), Some(2000.0));
        assert_eq!(parse("5E-1"), Some(0.5));
        assert_eq!(parse(".5"), Some(0.5));
        assert_eq!(parse("-1"), Some(-1.0));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "abc", "1x", "1.2.3", "Mi", "1 Gi", ".", "1e", "1e+"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
