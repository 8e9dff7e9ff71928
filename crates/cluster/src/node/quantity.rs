//! Quantities as the API server prints them (`resource.Quantity` canonical form): bytes
//! with the largest exact binary suffix, CPU in cores or millicores.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Bytes as BinarySI: `1Gi`, `32665980Ki`, `0`.
pub fn bytes(value: u64) -> Quantity {
    const SUFFIXES: [(&str, u64); 6] = [
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    if value == 0 {
        return Quantity("0".into());
    }
    for (suffix, unit) in SUFFIXES {
        if value.is_multiple_of(unit) {
            return Quantity(format!("{}{suffix}", value / unit));
        }
    }
    Quantity(value.to_string())
}

/// CPU in millicores: `4`, `3500m`.
pub fn cpu_milli(milli: i128) -> Quantity {
    let milli = milli.max(0);
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

/// A plain count.
pub fn count(n: i64) -> Quantity {
    Quantity(n.max(0).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(bytes(0).0, "0");
        assert_eq!(bytes(1 << 30).0, "1Gi");
        assert_eq!(bytes(33449963520).0, "32665980Ki");
        assert_eq!(bytes(1000).0, "1000");
        assert_eq!(bytes(2 * 1024 * 1024).0, "2Mi");
        assert_eq!(cpu_milli(8000).0, "8");
        assert_eq!(cpu_milli(3500).0, "3500m");
        assert_eq!(count(110).0, "110");
    }
}
