//! Client-side rate limit: a token bucket refilled at `qps` per second holding at most
//! `burst` tokens (client-go's `flowcontrol.NewTokenBucketRateLimiter`). It is a tower
//! layer: the service is not ready until a token is available, so callers queue instead
//! of failing. Watches take one token when they start, like any request.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{Layer, Service};

#[derive(Debug)]
struct Bucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Take a token, or say how long until one is available.
    fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// Shared bucket; `None` when unlimited.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl RateLimitLayer {
    pub fn new(qps: f64, burst: u32) -> Self {
        let bucket = (qps > 0.0).then(|| {
            let burst = f64::from(burst.max(1));
            Arc::new(Mutex::new(Bucket {
                qps,
                burst,
                tokens: burst,
                last: Instant::now(),
            }))
        });
        RateLimitLayer { bucket }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
            sleep: None,
            permit: false,
        }
    }
}

pub struct RateLimit<S> {
    inner: S,
    bucket: Option<Arc<Mutex<Bucket>>>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    permit: bool,
}

/// A clone shares the bucket but has its own readiness (no permit taken yet).
impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            bucket: self.bucket.clone(),
            sleep: None,
            permit: false,
        }
    }
}

impl<S, R> Service<R> for RateLimit<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if let Some(bucket) = &self.bucket {
            while !self.permit {
                if let Some(sleep) = self.sleep.as_mut() {
                    match sleep.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(()) => self.sleep = None,
                    }
                }
                let taken = kubelet_core::supervisor::lock(bucket, "API rate limiter")
                    .try_take(Instant::now());
                match taken {
                    Ok(()) => self.permit = true,
                    Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.permit = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_qps() {
        let start = Instant::now();
        let mut b = Bucket {
            qps: 10.0,
            burst: 3.0,
            tokens: 3.0,
            last: start,
        };
        for _ in 0..3 {
            assert!(b.try_take(start).is_ok());
        }
        let wait = b.try_take(start).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(b.try_take(start + Duration::from_millis(100)).is_ok());
        // Tokens never exceed the burst.
        assert!(b.try_take(start + Duration::from_secs(100)).is_ok());
        assert!(b.tokens <= 2.0);
    }

    #[tokio::test]
    async fn limits_a_service() {
        let layer = RateLimitLayer::new(20.0, 2);
        let mut svc = layer.layer(tower::service_fn(|_: ()| async {
            Ok::<_, std::convert::Infallible>(())
        }));
        let started = Instant::now();
        for _ in 0..6 {
            tower::ServiceExt::ready(&mut svc).await.unwrap();
            svc.call(()).await.unwrap();
        }
        // 2 free, then 4 at 20/s: at least ~200ms.
        assert!(
            started.elapsed() >= Duration::from_millis(180),
            "{:?}",
            started.elapsed()
        );
    }
}
