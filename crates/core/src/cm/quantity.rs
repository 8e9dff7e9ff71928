//! Kubernetes resource quantities ("50m", "1.5", "32Mi", "1G", "1e3") as exact integers,
//! enough for cgroup values and the downward API.

use k8s_openapi::api::core::v1::Container;

/// Parse a quantity into thousandths (milli-units), rounding up like upstream MilliValue.
pub fn parse_milli(q: &str) -> Result<i128, String> {
    let q = q.trim();
    let bad = || format!("invalid quantity {q:?}");
    if q.is_empty() {
        return Err(bad());
    }
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (mantissa_scale, num) = parse_decimal(num).ok_or_else(bad)?;
    // value = num * 10^-mantissa_scale * multiplier; result in milli.
    let (mult_num, mult_pow10): (i128, i32) = match suffix {
        "" => (1, 0),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        s if s.starts_with('e') || s.starts_with('E') => {
            (1, s[1..].parse::<i32>().map_err(|_| bad())?)
        }
        _ => return Err(bad()),
    };
    if num < 0 {
        return Err(format!("quantity {q:?} must not be negative"));
    }
    let exp = mult_pow10 + 3 - mantissa_scale;
    let base = num.checked_mul(mult_num).ok_or_else(bad)?;
    if exp >= 0 {
        base.checked_mul(10i128.checked_pow(exp as u32).ok_or_else(bad)?)
            .ok_or_else(bad)
    } else {
        let div = 10i128.checked_pow((-exp) as u32).ok_or_else(bad)?;
        Ok((base + div - 1) / div)
    }
}

fn parse_decimal(s: &str) -> Option<(i32, i128)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s.is_empty() || s == "." {
        return None;
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let v: i128 = digits.parse().ok()?;
    Some((frac.len() as i32, if neg { -v } else { v }))
}

/// Whole units, rounded up (bytes for memory, cores for cpu).
pub fn parse_value(q: &str) -> Result<i128, String> {
    parse_milli(q).map(|m| (m + 999) / 1000)
}

fn quantity_of(container: &Container, limits: bool, resource: &str) -> Option<String> {
    let res = container.resources.as_ref()?;
    let map = if limits {
        res.limits.as_ref()
    } else {
        res.requests.as_ref()
    }?;
    map.get(resource).map(|q| q.0.clone())
}

/// `resourceFieldRef` (limits.cpu, requests.memory, ...) with a divisor. An unset limit
/// has no node allocatable to fall back to here yet, so it resolves to 0 like an unset
/// request; the node-allocatable default comes with the resource manager.
pub fn resource_field_value(
    container: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, String> {
    let (limits, name) = resource
        .split_once('.')
        .map(|(kind, name)| (kind == "limits", name))
        .ok_or_else(|| format!("unsupported resource {resource:?}"))?;
    let raw = quantity_of(container, limits, name).unwrap_or_else(|| "0".into());
    let value = parse_milli(&raw)?;
    let divisor = parse_milli(divisor.unwrap_or("1"))?;
    if divisor == 0 {
        return Err("divisor must not be zero".into());
    }
    Ok(((value + divisor - 1) / divisor).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_milli("50m"), Ok(50));
        assert_eq!(parse_milli("1"), Ok(1000));
        assert_eq!(parse_milli("1.5"), Ok(1500));
        assert_eq!(parse_value("32Mi"), Ok(32 << 20));
        assert_eq!(parse_value("1G"), Ok(1_000_000_000));
        assert_eq!(parse_value("1e3"), Ok(1000));
        assert_eq!(parse_milli("0.0001"), Ok(1)); // rounds up
        assert!(parse_milli("abc").is_err());
        assert!(parse_milli("-1").is_err());
        assert!(parse_milli("1Zi").is_err());
        assert!(parse_milli("").is_err());
    }
}
