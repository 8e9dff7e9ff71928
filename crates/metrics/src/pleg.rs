//! `kubelet_pleg_*`: relist duration and interval, and when the PLEG last relisted.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Prometheus' default buckets, which upstream uses for the PLEG histograms.
const DEF_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub struct PlegMetrics {
    duration: Histogram,
    interval: Histogram,
    last_seen: Gauge<f64, AtomicU64>,
    last_start: Arc<Mutex<Option<Instant>>>,
}

impl Default for PlegMetrics {
    fn default() -> Self {
        PlegMetrics {
            duration: Histogram::new(DEF_BUCKETS),
            interval: Histogram::new(DEF_BUCKETS),
            last_seen: Gauge::default(),
            last_start: Arc::new(Mutex::new(None)),
        }
    }
}

impl PlegMetrics {
    /// Call when a relist starts: records the interval since the previous start.
    pub fn relist_started(&self) {
        let now = Instant::now();
        let mut last = match self.last_start.lock() {
            Ok(guard) => guard,
            // Propagated, never swallowed: the owning loop (the PLEG) fails.
            Err(_) => panic!("the PLEG relist-start lock is poisoned"),
        };
        if let Some(prev) = last.replace(now) {
            self.interval
                .observe(now.duration_since(prev).as_secs_f64());
        }
    }

    /// Call when a relist finished successfully, with how long it took.
    pub fn observe_relist(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.last_seen.set(now);
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "kubelet_pleg_relist_duration_seconds",
            "Duration in seconds for relisting pods in PLEG.",
            self.duration.clone(),
        );
        r.register(
            "kubelet_pleg_relist_interval_seconds",
            "Interval in seconds between relisting in PLEG.",
            self.interval.clone(),
        );
        r.register(
            "kubelet_pleg_last_seen_seconds",
            "Timestamp in seconds when PLEG was last seen active.",
            self.last_seen.clone(),
        );
    }
}
