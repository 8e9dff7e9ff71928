//! Node-wide limits on image pulls, as upstream's image manager:
//!
//! - `serializeImagePulls: true` (the default): one pull at a time, the others wait;
//!   `false`: pulls in parallel, at most `maxParallelImagePulls` at once (unset: no cap).
//! - `registryPullQPS` / `registryBurst` (defaults 5 and 10; QPS 0: no limit): a token
//!   bucket in front of the runtime's PullImage. As upstream's throttled image service,
//!   a pull that finds no token fails at once with "pull QPS exceeded" (ErrImagePull,
//!   then the image's pull backoff) instead of waiting.
//!
//! The slot is taken before the token, as upstream: the serial/parallel puller is in
//! front of the throttled image service.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Upstream's error when the pull rate limit is exceeded.
pub const PULL_QPS_EXCEEDED: &str = "pull QPS exceeded";

/// A token bucket: `burst` tokens, refilled at `qps` per second, full at the start
/// (flowcontrol.NewTokenBucketRateLimiter).
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            qps,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Take a token if one is there at `now` (never waits).
    pub fn try_accept(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The pull limits shared by every pod worker.
#[derive(Debug)]
pub struct PullLimits {
    /// None: pulls run in parallel without a cap.
    slots: Option<Arc<Semaphore>>,
    /// None: registryPullQPS 0, no rate limit.
    bucket: Option<Mutex<TokenBucket>>,
}

impl PullLimits {
    /// From the config fields (already validated: non-negative, and
    /// `maxParallelImagePulls` > 1 only with `serializeImagePulls: false`).
    pub fn new(
        registry_pull_qps: i32,
        registry_burst: i32,
        serialize_image_pulls: bool,
        max_parallel_image_pulls: Option<i32>,
    ) -> Self {
        let slots = if serialize_image_pulls {
            Some(1)
        } else {
            max_parallel_image_pulls
                .filter(|n| *n > 0)
                .map(|n| n as usize)
        };
        let bucket = (registry_pull_qps > 0).then(|| {
            Mutex::new(TokenBucket::new(
                f64::from(registry_pull_qps),
                registry_burst.max(0) as u32,
                Instant::now(),
            ))
        });
        PullLimits {
            slots: slots.map(|n| Arc::new(Semaphore::new(n))),
            bucket,
        }
    }

    /// No limits at all (tests, tools).
    pub fn unlimited() -> Self {
        PullLimits {
            slots: None,
            bucket: None,
        }
    }

    /// Wait for a pull slot; hold the returned permit while pulling.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        match &self.slots {
            // The semaphore is never closed.
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// Whether the rate limit lets a pull go now.
    pub fn try_accept(&self) -> bool {
        match &self.bucket {
            Some(b) => {
                crate::supervisor::lock(b, "image pull rate limiter").try_accept(Instant::now())
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_starts_full_and_refills_at_qps() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5.0, 10, t0);
        for i in 0..10 {
            assert!(b.try_accept(t0), "burst token {i}");
        }
        assert!(!b.try_accept(t0), "the burst is used up");
        // 5 per second: one token every 200 ms.
        assert!(!b.try_accept(t0 + Duration::from_millis(150)));
        assert!(b.try_accept(t0 + Duration::from_millis(210)));
        assert!(!b.try_accept(t0 + Duration::from_millis(220)));
        // Never more than the burst, however long it was idle.
        let later = t0 + Duration::from_secs(3600);
        let taken = (0..20).filter(|_| b.try_accept(later)).count();
        assert_eq!(taken, 10);
    }

    #[test]
    fn qps_zero_is_unlimited() {
        let l = PullLimits::new(0, 10, true, None);
        assert!((0..1000).all(|_| l.try_accept()));
        let l = PullLimits::new(1, 2, true, None);
        assert!(l.try_accept() && l.try_accept());
        assert!(!l.try_accept(), "burst 2 at 1 QPS");
    }

    #[tokio::test]
    async fn serialized_pulls_take_turns_and_parallel_ones_are_capped() {
        let serial = PullLimits::new(0, 0, true, None);
        let first = serial.slot().await.expect("a slot");
        let second = tokio::time::timeout(Duration::from_millis(50), serial.slot()).await;
        assert!(second.is_err(), "a second pull must wait while one runs");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), serial.slot()).await;
        assert!(
            second.is_ok_and(|p| p.is_some()),
            "its turn once the first is done"
        );

        let capped = PullLimits::new(0, 0, false, Some(2));
        let a = capped.slot().await;
        let b = capped.slot().await;
        assert!(a.is_some() && b.is_some());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), capped.slot())
                .await
                .is_err(),
            "no third pull at once"
        );

        let free = PullLimits::new(0, 0, false, None);
        assert!(free.slot().await.is_none(), "no cap: no permit needed");
    }
}
