//! Go `time.Duration` strings in the configuration: serde adapters over the one
//! parser and formatter in [`kubelet_primitives::duration`].

pub use kubelet_primitives::duration::{format, parse};

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
    use std::time::Duration;

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
        assert_eq!(holder.o, Some(Duration::from_millis(100)));
        assert_eq!(
            serde_json::to_string(&holder).unwrap(),
            r#"{"d":"1m30s","o":"100ms"}"#
        );
        let err = serde_json::from_str::<Holder>(r#"{"d":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration"));
    }
}
