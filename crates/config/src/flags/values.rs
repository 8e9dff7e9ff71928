//! Parsers for flag values, following Go's `strconv`/`pflag` and
//! Kubernetes' `cliflag` value types, so command lines written for the
//! upstream kubelet parse the same way. Each parser turns one occurrence of a
//! flag into a [`FlagValue`]; clap reports a parser error together with the
//! flag name and the offending value.

use std::time::Duration;

use crate::go_duration;
use crate::quantity;
use crate::types::{MemoryReservation, Taint, VModuleItem};

/// One parsed occurrence of a flag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FlagValue {
    Bool(bool),
    Int(i64),
    Duration(Duration),
    Str(String),
    List(Vec<String>),
    Pairs(Vec<(String, String)>),
    BoolPairs(Vec<(String, bool)>),
    Multimap(Vec<(String, String)>),
    Taints(Vec<Taint>),
    Reservations(Vec<MemoryReservation>),
    VModule(Vec<VModuleItem>),
}

pub(crate) type Parser = fn(&str) -> Result<FlagValue, String>;

/// Go `strconv.ParseBool`.
pub(crate) fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go `strconv.ParseInt(s, 0, bits)`: optional sign, `0x`/`0o`/`0b`/leading-`0`
/// prefixes and `_` digit separators after a prefix.
pub(crate) fn go_int(s: &str, bits: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.ParseInt: parsing {s:?}: value out of range");
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    if digits.contains('_')
        && (!prefixed || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__"))
    {
        return Err(syntax());
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(syntax());
    }
    let magnitude = u128::from_str_radix(&digits, radix).map_err(|_| range())?;
    let limit = 1u128 << (bits - 1);
    let value = if negative {
        if magnitude > limit {
            return Err(range());
        }
        -(i128::try_from(magnitude).map_err(|_| range())?)
    } else {
        if magnitude >= limit {
            return Err(range());
        }
        i128::try_from(magnitude).map_err(|_| range())?
    };
    i64::try_from(value).map_err(|_| range())
}

pub(crate) fn bool_value(s: &str) -> Result<FlagValue, String> {
    go_bool(s).map(FlagValue::Bool)
}

pub(crate) fn int32_value(s: &str) -> Result<FlagValue, String> {
    go_int(s, 32).map(FlagValue::Int)
}

pub(crate) fn int64_value(s: &str) -> Result<FlagValue, String> {
    go_int(s, 64).map(FlagValue::Int)
}

/// `-v`: a base-10 unsigned 32-bit verbosity level.
pub(crate) fn level_value(s: &str) -> Result<FlagValue, String> {
    s.parse::<u32>()
        .map(|v| FlagValue::Int(i64::from(v)))
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: invalid syntax"))
}

pub(crate) fn duration_value(s: &str) -> Result<FlagValue, String> {
    go_duration::parse(s).map(FlagValue::Duration)
}

pub(crate) fn string_value(s: &str) -> Result<FlagValue, String> {
    Ok(FlagValue::Str(s.to_string()))
}

/// An IP address (`--address`, `--healthz-bind-address`).
pub(crate) fn ip_value(s: &str) -> Result<FlagValue, String> {
    s.parse::<std::net::IpAddr>()
        .map(|_| FlagValue::Str(s.to_string()))
        .map_err(|_| format!("{s:?} is not a valid IP address"))
}

pub(crate) fn quantity_value(s: &str) -> Result<FlagValue, String> {
    quantity::validate(s).map(|()| FlagValue::Str(s.to_string()))
}

/// pflag `StringSlice`: one CSV record (double quotes allowed); empty means
/// an empty list.
pub(crate) fn string_slice_value(s: &str) -> Result<FlagValue, String> {
    if s.is_empty() {
        return Ok(FlagValue::List(Vec::new()));
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if at_field_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
                continue;
            }
            other => field.push(other),
        }
        at_field_start = false;
    }
    if quoted {
        return Err(format!("{s:?}: extraneous or missing \" in quoted-field"));
    }
    fields.push(field);
    Ok(FlagValue::List(fields))
}

fn split_pairs(s: &str, separator: char, expect: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.split_once(separator)
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("malformed pair, expect {expect}"))
        })
        .collect()
}

/// cliflag `MapStringString`: `k=v,k2=v2`.
pub(crate) fn map_value(s: &str) -> Result<FlagValue, String> {
    split_pairs(s, '=', "string=string").map(FlagValue::Pairs)
}

/// cliflag `MapStringString` without comma splitting: a single `k=v`.
pub(crate) fn map_no_split_value(s: &str) -> Result<FlagValue, String> {
    s.split_once('=')
        .map(|(k, v)| FlagValue::Pairs(vec![(k.trim().to_string(), v.trim().to_string())]))
        .ok_or_else(|| "malformed pair, expect string=string".to_string())
}

/// cliflag `LangleSeparatedMapStringString`: `signal<quantity,...`.
pub(crate) fn langle_map_value(s: &str) -> Result<FlagValue, String> {
    split_pairs(s, '<', "string<string").map(FlagValue::Pairs)
}

/// cliflag `ConfigurationMap` (`--node-labels`): `k=v` or bare `k` (empty value).
pub(crate) fn label_map_value(s: &str) -> Result<FlagValue, String> {
    Ok(FlagValue::Pairs(
        s.split(',')
            .filter(|item| !item.is_empty())
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (item.trim().to_string(), String::new()),
            })
            .collect(),
    ))
}

/// cliflag `MapStringBool` (`--feature-gates`): `Gate=true,Other=false`.
pub(crate) fn bool_map_value(s: &str) -> Result<FlagValue, String> {
    s.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| "malformed pair, expect string=bool".to_string())?;
            let (k, v) = (k.trim(), v.trim());
            let on = go_bool(v).map_err(|e| format!("invalid value of {k}: {v}, err: {e}"))?;
            Ok((k.to_string(), on))
        })
        .collect::<Result<_, String>>()
        .map(FlagValue::BoolPairs)
}

/// cliflag `ColonSeparatedMultimapStringString` (`--manifest-url-header`):
/// `a:hello,b:again,b:more`; a key may repeat and keeps every value in order.
pub(crate) fn colon_multimap_value(s: &str) -> Result<FlagValue, String> {
    split_pairs(s, ':', "string:string").map(FlagValue::Multimap)
}

/// `--register-with-taints`: `key=value:Effect,key2:Effect`.
pub(crate) fn taints_value(s: &str) -> Result<FlagValue, String> {
    s.split(',')
        .map(parse_taint)
        .collect::<Result<_, _>>()
        .map(FlagValue::Taints)
}

/// Upstream `taints.ParseTaint`: `key[=value]:effect` or bare `key`.
pub(crate) fn parse_taint(spec: &str) -> Result<Taint, String> {
    let invalid = || format!("invalid taint spec: {spec}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (key_value, effect) = match parts.as_slice() {
        [key] => (*key, ""),
        [key_value, effect] => {
            crate::validate::names::check_taint_effect(effect)?;
            (*key_value, *effect)
        }
        _ => return Err(invalid()),
    };
    let kv: Vec<&str> = key_value.split('=').collect();
    let (key, value) = match kv.as_slice() {
        [key] => (*key, ""),
        [key, value] => (*key, *value),
        _ => return Err(invalid()),
    };
    crate::validate::names::check_qualified_name(key)
        .map_err(|e| format!("invalid taint key {key:?}: {e}"))?;
    crate::validate::names::check_label_value(value)
        .map_err(|e| format!("invalid taint value {value:?}: {e}"))?;
    Ok(Taint {
        key: key.to_string(),
        value: value.to_string(),
        effect: effect.to_string(),
        time_added: None,
    })
}

/// `--reserved-memory`: `0:memory=1Gi,hugepages-1M=2Gi;1:memory=2Gi`.
pub(crate) fn reserved_memory_value(s: &str) -> Result<FlagValue, String> {
    let mut reservations = Vec::new();
    for reservation in s.split(';').filter(|r| !r.is_empty()) {
        let (node, limits) = reservation.split_once(':').ok_or_else(|| {
            format!("the reserved memory has incorrect format, expected numaNodeID:type=quantity[,type=quantity...], got {reservation}")
        })?;
        let numa_node = node.trim().parse::<i32>().map_err(|_| {
            format!("failed to convert the NUMA node ID {node:?}, expected an integer")
        })?;
        let mut parsed = MemoryReservation {
            numa_node,
            limits: Default::default(),
        };
        for limit in limits.split(',') {
            let (resource, amount) = limit.split_once('=').ok_or_else(|| {
                format!(
                    "the reserved limit has incorrect value, expected type=quantity, got {limit}"
                )
            })?;
            if resource != "memory" && !resource.starts_with("hugepages-") {
                return Err(format!(
                    "memory type conversion error, unknown type: {resource:?}"
                ));
            }
            quantity::validate(amount)?;
            parsed
                .limits
                .insert(resource.to_string(), amount.to_string());
        }
        reservations.push(parsed);
    }
    Ok(FlagValue::Reservations(reservations))
}

/// `--vmodule`: `pattern=N,pattern2=M`.
pub(crate) fn vmodule_value(s: &str) -> Result<FlagValue, String> {
    s.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (pattern, level) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} does not have the pattern=N format"))?;
            let verbosity = level
                .parse::<u32>()
                .map_err(|e| format!("parsing verbosity in {item:?}: {e}"))?;
            Ok(VModuleItem {
                file_pattern: pattern.to_string(),
                verbosity,
            })
        })
        .collect::<Result<_, String>>()
        .map(FlagValue::VModule)
}

/// `--version[=true|false|raw|vX.Y.Z]`.
pub(crate) fn version_value(s: &str) -> Result<FlagValue, String> {
    Ok(FlagValue::Str(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_follow_strconv() {
        for t in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(go_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(go_bool(f), Ok(false));
        }
        assert!(go_bool("yes").unwrap_err().contains("invalid syntax"));
    }

    #[test]
    fn ints_follow_strconv_base_zero() {
        assert_eq!(go_int("10250", 32), Ok(10250));
        assert_eq!(go_int("-999", 32), Ok(-999));
        assert_eq!(go_int("+5", 32), Ok(5));
        assert_eq!(go_int("0x10", 32), Ok(16));
        assert_eq!(go_int("010", 32), Ok(8));
        assert_eq!(go_int("0b101", 32), Ok(5));
        assert_eq!(go_int("0o17", 32), Ok(15));
        assert_eq!(
            go_int("1_000", 32),
            Err("strconv.ParseInt: parsing \"1_000\": invalid syntax".into())
        );
        assert_eq!(go_int("0x1_0", 32), Ok(16));
        assert_eq!(go_int("2147483647", 32), Ok(2_147_483_647));
        assert_eq!(go_int("-2147483648", 32), Ok(-2_147_483_648));
        assert!(
            go_int("2147483648", 32)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            go_int("99999999999999999999", 64)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(go_int("abc", 32).unwrap_err().contains("invalid syntax"));
        assert!(go_int("", 32).is_err());
        assert!(go_int("09", 32).is_err(), "leading zero means octal");
    }

    #[test]
    fn string_slices_are_csv() {
        assert_eq!(
            string_slice_value("a,b,,c"),
            Ok(FlagValue::List(vec![
                "a".into(),
                "b".into(),
                "".into(),
                "c".into()
            ]))
        );
        assert_eq!(
            string_slice_value(r#""x,y",z"#),
            Ok(FlagValue::List(vec!["x,y".into(), "z".into()]))
        );
        assert_eq!(string_slice_value(""), Ok(FlagValue::List(vec![])));
        assert!(string_slice_value(r#""open"#).is_err());
    }

    #[test]
    fn maps_split_and_trim() {
        assert_eq!(
            map_value("cpu=200m, memory = 1Gi,"),
            Ok(FlagValue::Pairs(vec![
                ("cpu".into(), "200m".into()),
                ("memory".into(), "1Gi".into())
            ]))
        );
        assert_eq!(
            map_value("cpu"),
            Err("malformed pair, expect string=string".into())
        );
        assert_eq!(
            map_no_split_value("full-pcpus-only=true,x"),
            Ok(FlagValue::Pairs(vec![(
                "full-pcpus-only".into(),
                "true,x".into()
            )]))
        );
        assert_eq!(
            langle_map_value("memory.available<1Gi,nodefs.available<10%"),
            Ok(FlagValue::Pairs(vec![
                ("memory.available".into(), "1Gi".into()),
                ("nodefs.available".into(), "10%".into())
            ]))
        );
        assert!(langle_map_value("memory.available=1Gi").is_err());
    }

    #[test]
    fn node_labels_allow_bare_keys() {
        assert_eq!(
            label_map_value("a=b,c"),
            Ok(FlagValue::Pairs(vec![
                ("a".into(), "b".into()),
                ("c".into(), "".into())
            ]))
        );
    }

    #[test]
    fn feature_gates_parse_bools() {
        assert_eq!(
            bool_map_value("A=true,B=0"),
            Ok(FlagValue::BoolPairs(vec![
                ("A".into(), true),
                ("B".into(), false)
            ]))
        );
        assert!(
            bool_map_value("A=maybe")
                .unwrap_err()
                .contains("invalid value of A")
        );
        assert!(bool_map_value("A").unwrap_err().contains("string=bool"));
    }

    #[test]
    fn header_multimap_keeps_repeated_keys_in_order() {
        assert_eq!(
            colon_multimap_value("a:hello,b:again,b: more"),
            Ok(FlagValue::Multimap(vec![
                ("a".into(), "hello".into()),
                ("b".into(), "again".into()),
                ("b".into(), "more".into())
            ]))
        );
        assert_eq!(
            colon_multimap_value("Authorization:Bearer a:b"),
            Ok(FlagValue::Multimap(vec![(
                "Authorization".into(),
                "Bearer a:b".into()
            )]))
        );
        assert_eq!(
            colon_multimap_value("nocolon"),
            Err("malformed pair, expect string:string".into())
        );
    }

    #[test]
    fn taints_parse_like_upstream() {
        let FlagValue::Taints(taints) =
            taints_value("dedicated=infra:NoSchedule,gpu:NoExecute").unwrap()
        else {
            panic!("expected taints");
        };
        assert_eq!(taints[0].key, "dedicated");
        assert_eq!(taints[0].value, "infra");
        assert_eq!(taints[0].effect, "NoSchedule");
        assert_eq!(taints[1].key, "gpu");
        assert_eq!(taints[1].value, "");
        assert!(
            taints_value("a=b:Sometimes")
                .unwrap_err()
                .contains("invalid taint effect")
        );
        assert!(
            taints_value("a=b=c:NoSchedule")
                .unwrap_err()
                .contains("invalid taint spec")
        );
        assert!(
            taints_value("bad key:NoSchedule")
                .unwrap_err()
                .contains("invalid taint key")
        );
    }

    #[test]
    fn reserved_memory_parses_numa_reservations() {
        let FlagValue::Reservations(r) =
            reserved_memory_value("0:memory=1Gi,hugepages-1M=2Gi;1:memory=2Gi").unwrap()
        else {
            panic!("expected reservations");
        };
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].numa_node, 0);
        assert_eq!(
            r[0].limits.get("hugepages-1M").map(String::as_str),
            Some("2Gi")
        );
        assert!(reserved_memory_value("x:memory=1Gi").is_err());
        assert!(reserved_memory_value("0:cpu=1").is_err());
        assert!(reserved_memory_value("0:memory=lots").is_err());
    }

    #[test]
    fn vmodule_and_levels() {
        assert_eq!(
            vmodule_value("server=4,pod*=2"),
            Ok(FlagValue::VModule(vec![
                VModuleItem {
                    file_pattern: "server".into(),
                    verbosity: 4
                },
                VModuleItem {
                    file_pattern: "pod*".into(),
                    verbosity: 2
                }
            ]))
        );
        assert!(vmodule_value("server").is_err());
        assert_eq!(level_value("4"), Ok(FlagValue::Int(4)));
        assert!(level_value("-1").is_err());
    }

    #[test]
    fn ips_and_quantities_are_checked() {
        assert!(ip_value("10.0.0.1").is_ok());
        assert!(ip_value("::").is_ok());
        assert_eq!(
            ip_value("nope"),
            Err("\"nope\" is not a valid IP address".into())
        );
        assert!(quantity_value("64Ki").is_ok());
        assert!(quantity_value("64KB").is_err());
    }
}
