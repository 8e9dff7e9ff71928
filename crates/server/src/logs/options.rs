//! `PodLogOptions` from a query string: decoding (400 on a malformed value) and
//! validation (422), with upstream's rules and messages.

use chrono::{DateTime, FixedOffset};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    All,
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<DateTime<FixedOffset>>,
    pub stream: Option<Stream>,
    pub insecure_skip_tls_verify_backend: bool,
}

/// Go's query conversion for booleans: absent is false; "0" and "false" (any case)
/// are false; anything else, even empty, is true.
fn boolean(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

fn int(name: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "Unable to decode query: {name}={v:?} is not an integer"
        ))
    })
}

impl LogOptions {
    /// Decode and validate. `pairs` are the query parameters in order; for repeated
    /// names the first value counts, as with Go's url.Values.Get.
    pub fn from_query(pairs: &[(String, String)]) -> Result<LogOptions, ApiError> {
        let mut o = LogOptions::default();
        let mut seen = std::collections::HashSet::new();
        let mut tail_alias: Option<String> = None;
        for (k, v) in pairs {
            if !seen.insert(k.as_str()) {
                continue;
            }
            match k.as_str() {
                "container" => o.container = Some(v.clone()),
                "follow" => o.follow = boolean(v),
                "previous" => o.previous = boolean(v),
                "timestamps" => o.timestamps = boolean(v),
                "insecureSkipTLSVerifyBackend" => o.insecure_skip_tls_verify_backend = boolean(v),
                "tailLines" => o.tail_lines = Some(int(k, v)?),
                "limitBytes" => o.limit_bytes = Some(int(k, v)?),
                "sinceSeconds" => o.since_seconds = Some(int(k, v)?),
                "sinceTime" => {
                    let t = DateTime::parse_from_rfc3339(v).map_err(|_| {
                        ApiError::BadRequest(format!(
                            "Unable to decode query: sinceTime={v:?} is not RFC 3339"
                        ))
                    })?;
                    o.since_time = Some(t);
                }
                "stream" => {
                    o.stream = Some(match v.as_str() {
                        "All" => Stream::All,
                        "Stdout" => Stream::Stdout,
                        "Stderr" => Stream::Stderr,
                        other => {
                            return Err(ApiError::Invalid(format!(
                                "stream: Unsupported value: {other:?}: supported values: \"All\", \"Stderr\", \"Stdout\""
                            )));
                        }
                    })
                }
                // Backwards compatibility: `tail=N` means tailLines, `tail=all` everything.
                "tail" => tail_alias = Some(v.clone()),
                _ => {}
            }
        }
        if let Some(tail) = tail_alias {
            o.tail_lines = if tail == "all" {
                None
            } else {
                Some(int("tail", &tail)?)
            };
        }
        o.validate()?;
        Ok(o)
    }

    fn validate(&self) -> Result<(), ApiError> {
        let mut errs = Vec::new();
        if self.tail_lines.is_some_and(|t| t < 0) {
            errs.push("tailLines: Invalid value: must be greater than or equal to 0".to_string());
        }
        if self.limit_bytes.is_some_and(|l| l < 1) {
            errs.push("limitBytes: Invalid value: must be greater than 0".to_string());
        }
        if self.since_seconds.is_some() && self.since_time.is_some() {
            errs.push("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".to_string());
        }
        if self.since_seconds.is_some_and(|s| s < 1) {
            errs.push("sinceSeconds: Invalid value: must be greater than 0".to_string());
        }
        if self.tail_lines.is_some() && self.stream.is_some_and(|s| s != Stream::All) {
            errs.push("tailLines: Forbidden: `tailLines` and specific `stream` are mutually exclusive for now".to_string());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(format!(
                "Invalid request: {}",
                errs.join(", ")
            )))
        }
    }

    /// The earliest timestamp to print, in ns since the epoch.
    pub fn since_ns(&self, now_ns: i64) -> Option<i64> {
        if let Some(t) = self.since_time {
            // Saturate: a time past 2262 does not fit in i64 nanoseconds.
            return Some(
                t.timestamp()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(t.timestamp_subsec_nanos())),
            );
        }
        self.since_seconds
            .map(|s| now_ns.saturating_sub(s.saturating_mul(1_000_000_000)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn decodes() {
        let o = LogOptions::from_query(&q(
            "follow=true&timestamps=1&tailLines=5&limitBytes=10&previous=false",
        ))
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(5), Some(10)));
        let o = LogOptions::from_query(&q("follow&tail=all")).unwrap();
        assert!(o.follow);
        assert_eq!(o.tail_lines, None);
        assert_eq!(
            LogOptions::from_query(&q("tail=3")).unwrap().tail_lines,
            Some(3)
        );
        let o = LogOptions::from_query(&q("sinceTime=2024-01-02T03:04:05Z")).unwrap();
        assert_eq!(o.since_ns(0), Some(1_704_164_645_000_000_000));
        assert_eq!(
            LogOptions::from_query(&q("sinceSeconds=10"))
                .unwrap()
                .since_ns(20_000_000_000),
            Some(10_000_000_000)
        );
        assert_eq!(
            LogOptions::from_query(&q("sinceTime=2999-01-01T00:00:00Z"))
                .unwrap()
                .since_ns(0),
            Some(i64::MAX)
        );
    }

    #[test]
    fn rejects() {
        let status = |s: &str| LogOptions::from_query(&q(s)).unwrap_err().status().as_u16();
        assert_eq!(status("tailLines=abc"), 400);
        assert_eq!(status("tailLines=99999999999999999999999"), 400);
        assert_eq!(status("sinceTime=yesterday"), 400);
        assert_eq!(status("tailLines=-1"), 422);
        assert_eq!(status("limitBytes=0"), 422);
        assert_eq!(status("sinceSeconds=0"), 422);
        assert_eq!(status("sinceSeconds=5&sinceTime=2024-01-02T03:04:05Z"), 422);
        assert_eq!(status("stream=Both"), 422);
    }
}
