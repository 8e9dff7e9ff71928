//! Eviction thresholds (`evictionHard`, `evictionSoft` + `evictionSoftGracePeriod`,
//! `evictionMinimumReclaim`) and the state the manager keeps between observations, with
//! upstream's rules (eviction_manager.go synchronize, helpers.go):
//!
//! - a threshold is *met* when the signal's available value is below it (a percentage is
//!   of the signal's capacity);
//! - a threshold met before stays met until available ≥ threshold + minimum reclaim;
//! - node conditions follow the thresholds met (grace periods ignored) and stay true for
//!   `evictionPressureTransitionPeriod` after they were last observed;
//! - a threshold drives eviction once it has been met for its grace period (0 for hard
//!   thresholds).
//!
//! Pure: time comes in as an argument, so the state machine is unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::signals::{Observations, Pressure, Signal};
use kubelet_primitives::ThresholdValue;
use kubelet_primitives::duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Quantity(i128),
    /// A fraction of the capacity (0.1 for "10%").
    Percentage(f64),
}

impl Value {
    /// A percentage or a non-negative quantity, with the one threshold parser
    /// ([`ThresholdValue`]); percentages keep upstream's single precision.
    pub fn parse(text: &str) -> Result<Value, String> {
        Ok(match ThresholdValue::parse(text)? {
            ThresholdValue::Quantity(q) => Value::Quantity(q.value()),
            ThresholdValue::Percentage(p) => Value::Percentage(f64::from(p)),
        })
    }

    /// The absolute amount for a signal with this capacity (upstream GetThresholdQuantity).
    pub fn quantity(self, capacity: i128) -> i128 {
        match self {
            Value::Quantity(q) => q,
            Value::Percentage(p) => (capacity as f64 * p) as i128,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: Value,
    /// Zero for hard thresholds.
    pub grace_period: Duration,
    pub min_reclaim: Option<Value>,
}

impl Threshold {
    pub fn is_hard(&self) -> bool {
        self.grace_period.is_zero()
    }
}

/// Thresholds from the configuration. "0%" and "100%" are ignored, as upstream does;
/// with `enforce_pods_allocatable` every hard memory.available threshold is copied to
/// allocatableMemory.available (upstream addAllocatableThresholds).
pub fn parse(
    hard: &BTreeMap<String, String>,
    soft: &BTreeMap<String, String>,
    soft_grace: &BTreeMap<String, String>,
    min_reclaim: &BTreeMap<String, String>,
    enforce_pods_allocatable: bool,
) -> Result<Vec<Threshold>, String> {
    let signal = |name: &str| {
        Signal::parse(name).ok_or_else(|| format!("unsupported eviction signal {name:?}"))
    };
    let mut reclaims = BTreeMap::new();
    for (name, v) in min_reclaim {
        reclaims.insert(signal(name)?, Value::parse(v)?);
    }
    let mut out = Vec::new();
    for (map, soft) in [(hard, false), (soft, true)] {
        for (name, v) in map {
            let s = signal(name)?;
            if v == "0%" || v == "100%" {
                continue;
            }
            let value = Value::parse(v)?;
            if value == Value::Quantity(0) {
                return Err(format!("eviction threshold {name} must be positive: {v}"));
            }
            let grace_period = if soft {
                let g = soft_grace.get(name).ok_or_else(|| {
                    format!("grace period must be specified for the soft eviction threshold {name}")
                })?;
                duration::parse(g).map_err(|e| format!("evictionSoftGracePeriod {name}: {e}"))?
            } else {
                Duration::ZERO
            };
            out.push(Threshold {
                signal: s,
                value,
                grace_period,
                min_reclaim: reclaims.get(&s).copied(),
            });
        }
    }
    if enforce_pods_allocatable {
        let copies: Vec<Threshold> = out
            .iter()
            .filter(|t| t.signal == Signal::MemoryAvailable && t.is_hard())
            .map(|t| Threshold {
                signal: Signal::AllocatableMemoryAvailable,
                ..t.clone()
            })
            .collect();
        out.extend(copies);
    }
    Ok(out)
}

/// Indices of the thresholds whose signal is below them (plus min reclaim when asked).
pub fn met(
    thresholds: &[Threshold],
    indices: impl IntoIterator<Item = usize>,
    obs: &Observations,
    enforce_min_reclaim: bool,
) -> BTreeSet<usize> {
    indices
        .into_iter()
        .filter(|&i| {
            let t = &thresholds[i];
            let Some(o) = obs.get(&t.signal) else {
                return false;
            };
            let mut q = t.value.quantity(o.capacity);
            if enforce_min_reclaim && let Some(r) = t.min_reclaim {
                q += r.quantity(o.capacity);
            }
            q > o.available
        })
        .collect()
}

/// What one observation means.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Node conditions to report (within the transition period).
    pub conditions: BTreeSet<Pressure>,
    /// Thresholds whose grace period is over, memory first (upstream byEvictionPriority).
    pub to_reclaim: Vec<usize>,
}

/// What the manager remembers between observations.
#[derive(Debug)]
pub struct ThresholdState {
    pub thresholds: Vec<Threshold>,
    transition_period: Duration,
    first_observed: BTreeMap<usize, Instant>,
    condition_last_observed: BTreeMap<Pressure, Instant>,
    /// Met including the grace period and not yet resolved (min reclaim).
    met: BTreeSet<usize>,
}

impl ThresholdState {
    pub fn new(thresholds: Vec<Threshold>, transition_period: Duration) -> Self {
        ThresholdState {
            thresholds,
            transition_period,
            first_observed: BTreeMap::new(),
            condition_last_observed: BTreeMap::new(),
            met: BTreeSet::new(),
        }
    }

    pub fn observe(&mut self, obs: &Observations, now: Instant) -> Verdict {
        let all = 0..self.thresholds.len();
        let mut current = met(&self.thresholds, all, obs, false);
        if !self.met.is_empty() {
            current.extend(met(&self.thresholds, self.met.iter().copied(), obs, true));
        }
        self.first_observed = current
            .iter()
            .map(|&i| (i, self.first_observed.get(&i).copied().unwrap_or(now)))
            .collect();
        for &i in &current {
            self.condition_last_observed
                .insert(self.thresholds[i].signal.pressure(), now);
        }
        let period = self.transition_period;
        self.condition_last_observed
            .retain(|_, at| now.saturating_duration_since(*at) < period);
        let conditions = self.condition_last_observed.keys().copied().collect();
        self.met = self
            .first_observed
            .iter()
            .filter(|(i, at)| {
                now.saturating_duration_since(**at) >= self.thresholds[**i].grace_period
            })
            .map(|(i, _)| *i)
            .collect();
        let mut to_reclaim: Vec<usize> = self.met.iter().copied().collect();
        to_reclaim.sort_by_key(|&i| !self.thresholds[i].signal.is_memory());
        Verdict {
            conditions,
            to_reclaim,
        }
    }

    /// Whether, ignoring grace periods, any threshold is still met with its minimum
    /// reclaim added (upstream's check after reclaiming node-level resources).
    pub fn any_met_with_reclaim(&self, obs: &Observations) -> bool {
        !met(&self.thresholds, 0..self.thresholds.len(), obs, true).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::signals::Observation;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn obs(signal: Signal, available: i128, capacity: i128) -> Observations {
        [(
            signal,
            Observation {
                available,
                capacity,
            },
        )]
        .into()
    }

    #[test]
    fn parses_hard_soft_and_min_reclaim() {
        let t = parse(
            &map(&[
                ("memory.available", "100Mi"),
                ("nodefs.available", "10%"),
                ("imagefs.available", "0%"),
            ]),
            &map(&[("memory.available", "300Mi")]),
            &map(&[("memory.available", "1m30s")]),
            &map(&[("memory.available", "50Mi")]),
            true,
        )
        .unwrap();
        assert_eq!(t.len(), 4, "{t:?}");
        let soft = t.iter().find(|t| !t.is_hard()).unwrap();
        assert_eq!(soft.grace_period, Duration::from_secs(90));
        assert_eq!(soft.value, Value::Quantity(300 << 20));
        assert_eq!(soft.min_reclaim, Some(Value::Quantity(50 << 20)));
        let alloc = t
            .iter()
            .find(|t| t.signal == Signal::AllocatableMemoryAvailable)
            .unwrap();
        assert_eq!(alloc.value, Value::Quantity(100 << 20));
        assert!(alloc.is_hard());
        assert_eq!(Value::Percentage(0.1).quantity(1000), 100);
        assert!(
            parse(
                &map(&[("foo", "1")]),
                &map(&[]),
                &map(&[]),
                &map(&[]),
                false
            )
            .is_err()
        );
        assert!(
            parse(
                &map(&[]),
                &map(&[("memory.available", "1Gi")]),
                &map(&[]),
                &map(&[]),
                false
            )
            .unwrap_err()
            .contains("grace period")
        );
    }

    #[test]
    fn hard_threshold_sets_condition_and_reclaims_at_once() {
        let t = parse(
            &map(&[("nodefs.available", "10%")]),
            &map(&[]),
            &map(&[]),
            &map(&[]),
            false,
        )
        .unwrap();
        let mut s = ThresholdState::new(t, Duration::from_secs(30));
        let t0 = Instant::now();
        let v = s.observe(&obs(Signal::NodeFsAvailable, 50, 1000), t0);
        assert_eq!(v.conditions, [Pressure::Disk].into());
        assert_eq!(v.to_reclaim, vec![0]);
        // Recovered: nothing to reclaim, but the condition stays for the transition period.
        let v = s.observe(
            &obs(Signal::NodeFsAvailable, 500, 1000),
            t0 + Duration::from_secs(10),
        );
        assert!(v.to_reclaim.is_empty());
        assert_eq!(v.conditions, [Pressure::Disk].into());
        let v = s.observe(
            &obs(Signal::NodeFsAvailable, 500, 1000),
            t0 + Duration::from_secs(31),
        );
        assert!(v.conditions.is_empty());
    }

    #[test]
    fn soft_threshold_waits_for_its_grace_period() {
        let t = parse(
            &map(&[]),
            &map(&[("memory.available", "1Gi")]),
            &map(&[("memory.available", "30s")]),
            &map(&[]),
            false,
        )
        .unwrap();
        let mut s = ThresholdState::new(t, Duration::from_secs(60));
        let t0 = Instant::now();
        let low = obs(Signal::MemoryAvailable, 512 << 20, 8 << 30);
        let v = s.observe(&low, t0);
        // The condition is reported at once, eviction waits.
        assert_eq!(v.conditions, [Pressure::Memory].into());
        assert!(v.to_reclaim.is_empty());
        assert!(
            s.observe(&low, t0 + Duration::from_secs(29))
                .to_reclaim
                .is_empty()
        );
        assert_eq!(
            s.observe(&low, t0 + Duration::from_secs(30)).to_reclaim,
            vec![0]
        );
        // A recovery resets the grace period.
        let ok = obs(Signal::MemoryAvailable, 2 << 30, 8 << 30);
        s.observe(&ok, t0 + Duration::from_secs(31));
        assert!(
            s.observe(&low, t0 + Duration::from_secs(32))
                .to_reclaim
                .is_empty()
        );
    }

    #[test]
    fn minimum_reclaim_keeps_a_met_threshold_until_cleared() {
        let t = parse(
            &map(&[("memory.available", "100Mi")]),
            &map(&[]),
            &map(&[]),
            &map(&[("memory.available", "200Mi")]),
            false,
        )
        .unwrap();
        let mut s = ThresholdState::new(t, Duration::ZERO);
        let t0 = Instant::now();
        let m = |avail_mi: i128| obs(Signal::MemoryAvailable, avail_mi << 20, 8 << 30);
        // 250Mi available before pressure: not met.
        assert!(s.observe(&m(250), t0).to_reclaim.is_empty());
        assert_eq!(s.observe(&m(50), t0).to_reclaim, vec![0]);
        // Above the threshold but below threshold + min reclaim (300Mi): still met.
        assert_eq!(s.observe(&m(250), t0).to_reclaim, vec![0]);
        assert!(s.any_met_with_reclaim(&m(250)));
        assert!(s.observe(&m(301), t0).to_reclaim.is_empty());
        // And once resolved, 250Mi is fine again.
        assert!(s.observe(&m(250), t0).to_reclaim.is_empty());
    }

    #[test]
    fn memory_is_reclaimed_before_disk() {
        let t = parse(
            &map(&[("nodefs.available", "10%"), ("memory.available", "100Mi")]),
            &map(&[]),
            &map(&[]),
            &map(&[]),
            false,
        )
        .unwrap();
        let mut s = ThresholdState::new(t.clone(), Duration::from_secs(1));
        let mut o = obs(Signal::NodeFsAvailable, 1, 1000);
        o.insert(
            Signal::MemoryAvailable,
            Observation {
                available: 1,
                capacity: 1 << 30,
            },
        );
        let v = s.observe(&o, Instant::now());
        assert_eq!(t[v.to_reclaim[0]].signal, Signal::MemoryAvailable);
        assert_eq!(v.conditions, [Pressure::Memory, Pressure::Disk].into());
    }

    #[test]
    fn durations() {
        let go_duration = duration::parse;
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(go_duration("0").unwrap(), Duration::ZERO);
        assert!(go_duration("5").is_err());
    }
}
