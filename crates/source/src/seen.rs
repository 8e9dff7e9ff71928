//! First-seen timestamps (`kubernetes.io/config.seen`).
//!
//! Upstream records the time a pod was first seen when it is added, and keeps that value
//! for as long as the pod (same UID) stays. A re-list must not change the annotation,
//! otherwise the pod would look modified downstream. [`FirstSeen`] remembers the first
//! value per UID for the UIDs still present.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{Pod, annotations::CONFIG_SEEN, pod_uid};

/// RFC 3339 with nanoseconds and trailing zeros trimmed, in UTC: the shape of Go's
/// `time.RFC3339Nano` (e.g. `2024-05-01T10:00:00.1234Z`, `2024-05-01T10:00:00Z`).
pub fn format_rfc3339_nano(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// The current time, formatted for `kubernetes.io/config.seen`.
pub fn now_rfc3339_nano() -> String {
    format_rfc3339_nano(Utc::now())
}

/// Remembers the first-seen timestamp of each UID.
#[derive(Clone, Debug, Default)]
pub struct FirstSeen {
    by_uid: HashMap<String, String>,
}

impl FirstSeen {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `kubernetes.io/config.seen` on `pod` to the first value recorded for its UID.
    /// A UID not seen before keeps the pod's own value (or gets "now" if it has none),
    /// and that value is recorded.
    pub fn stamp(&mut self, pod: &mut Pod) {
        let value = self.first_value(pod);
        pod.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(CONFIG_SEEN.to_string(), value);
    }

    /// [`stamp`](Self::stamp) for a shared pod: it is copied only when its annotation
    /// has to change, so a pod that already carries its first-seen value stays shared.
    pub fn stamp_shared(&mut self, pod: &mut Arc<Pod>) {
        let value = self.first_value(pod);
        if seen_of(pod) != Some(value.as_str()) {
            Arc::make_mut(pod)
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(CONFIG_SEEN.to_string(), value);
        }
    }

    /// The value `pod` must carry, recorded on first sight of its UID.
    fn first_value(&mut self, pod: &Pod) -> String {
        let uid = pod_uid(pod);
        if let Some(first) = self.by_uid.get(uid) {
            return first.clone();
        }
        let value = seen_of(pod)
            .filter(|v| !v.is_empty())
            .map_or_else(now_rfc3339_nano, str::to_string);
        self.by_uid.insert(uid.to_string(), value.clone());
        value
    }

    /// Forgets every UID not in `keep` (a pod that leaves and comes back is new again,
    /// as upstream).
    pub fn retain(&mut self, keep: &BTreeSet<String>) {
        self.by_uid.retain(|uid, _| keep.contains(uid));
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

fn seen_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_SEEN))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, seen: Option<&str>) -> Pod {
        let mut meta = ObjectMeta {
            uid: Some(uid.into()),
            ..Default::default()
        };
        if let Some(s) = seen {
            meta.annotations = Some([(CONFIG_SEEN.to_string(), s.to_string())].into());
        }
        Pod {
            metadata: meta,
            ..Default::default()
        }
    }

    fn seen_of(p: &Pod) -> String {
        p.metadata.annotations.as_ref().unwrap()[CONFIG_SEEN].clone()
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        let t = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
        assert_eq!(format_rfc3339_nano(t), "2024-05-01T10:00:00Z");
        let t = t + chrono::Duration::nanoseconds(123_400_000);
        assert_eq!(format_rfc3339_nano(t), "2024-05-01T10:00:00.1234Z");
        let t =
            Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap() + chrono::Duration::nanoseconds(5);
        assert_eq!(format_rfc3339_nano(t), "2024-05-01T10:00:00.000000005Z");
    }

    #[test]
    fn first_value_wins_for_a_uid() {
        let mut fs = FirstSeen::new();
        let mut a = pod("u1", Some("2024-01-01T00:00:00Z"));
        fs.stamp(&mut a);
        assert_eq!(seen_of(&a), "2024-01-01T00:00:00Z");
        let mut again = pod("u1", Some("2025-01-01T00:00:00Z"));
        fs.stamp(&mut again);
        assert_eq!(seen_of(&again), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn missing_value_gets_now_and_retain_forgets() {
        let mut fs = FirstSeen::new();
        let mut a = pod("u1", None);
        fs.stamp(&mut a);
        assert!(seen_of(&a).ends_with('Z'));
        assert_eq!(fs.len(), 1);
        fs.retain(&BTreeSet::new());
        assert!(fs.is_empty());
        let mut b = pod("u1", Some("2030-01-01T00:00:00Z"));
        fs.stamp(&mut b);
        assert_eq!(seen_of(&b), "2030-01-01T00:00:00Z");
    }
}
