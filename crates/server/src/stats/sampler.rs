//! CPU rates: `usageNanoCores` needs two samples of cumulative usage. The sampler keeps
//! the last sample per key (node, pod cgroup) and the last rate it computed; a
//! background task feeds it every 10 s, as cAdvisor's housekeeping would, and every
//! stats request feeds it too.

use std::collections::HashMap;
use std::sync::Mutex;

/// Samples closer together than this reuse the previous rate.
const MIN_WINDOW_NS: i64 = 1_000_000_000;

#[derive(Default)]
pub struct CpuSampler {
    samples: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy)]
struct Entry {
    at_ns: i64,
    usage_ns: u64,
    rate: Option<u64>,
}

impl CpuSampler {
    /// Record cumulative usage `usage_ns` at `at_ns` and return the usage rate in
    /// nanocores, once two samples at least a second apart exist.
    pub fn observe(&self, key: &str, at_ns: i64, usage_ns: u64) -> Option<u64> {
        let mut map = kubelet_core::supervisor::lock(&self.samples, "CPU usage samples");
        match map.get_mut(key) {
            None => {
                map.insert(
                    key.to_string(),
                    Entry {
                        at_ns,
                        usage_ns,
                        rate: None,
                    },
                );
                None
            }
            Some(e) => {
                let window = at_ns - e.at_ns;
                if window < MIN_WINDOW_NS {
                    return e.rate;
                }
                let rate = if usage_ns >= e.usage_ns {
                    Some(((usage_ns - e.usage_ns) as u128 * 1_000_000_000 / window as u128) as u64)
                } else {
                    None // counter reset (cgroup recreated)
                };
                *e = Entry {
                    at_ns,
                    usage_ns,
                    rate,
                };
                rate
            }
        }
    }

    /// Forget keys not in `live` (pods that went away).
    pub fn retain(&self, live: &dyn Fn(&str) -> bool) {
        kubelet_core::supervisor::lock(&self.samples, "CPU usage samples").retain(|k, _| live(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_needs_two_samples_a_second_apart() {
        let s = CpuSampler::default();
        assert_eq!(s.observe("n", 0, 0), None);
        assert_eq!(
            s.observe("n", 500_000_000, 100),
            None,
            "too close: no rate yet"
        );
        // 0.5 core-seconds over 2 s = 250 millicores.
        assert_eq!(
            s.observe("n", 2_000_000_000, 500_000_000),
            Some(250_000_000)
        );
        assert_eq!(
            s.observe("n", 2_100_000_000, 600_000_000),
            Some(250_000_000),
            "reuses the last rate"
        );
        assert_eq!(s.observe("n", 4_000_000_000, 100), None, "counter reset");
        s.retain(&|k| k != "n");
        assert_eq!(s.observe("n", 5_000_000_000, 0), None);
    }
}
