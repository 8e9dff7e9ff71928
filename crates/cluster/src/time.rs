//! Wall-clock timestamps for API objects (k8s-openapi's jiff has no clock of its own).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;

pub fn now_ts() -> Timestamp {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    // Microsecond precision, like the API server keeps.
    Timestamp::from_nanosecond(ns / 1000 * 1000).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn now() -> Time {
    Time(now_ts())
}

pub fn now_micro() -> MicroTime {
    MicroTime(now_ts())
}
