//! The API client: a kubeconfig (token, client certificates, CA, plain http, scheme-less
//! servers as client-go reads them) turned into a `kube::Client`, with upstream's
//! client-side rate limit (`kubeAPIQPS` / `kubeAPIBurst`) in front of every request.
//! Reconnection is the HTTP pool's: a failed request fails, the caller's loop backs off
//! and the next request dials again.

pub mod kubeconfig;
pub mod ratelimit;
pub mod rotating;

use std::path::Path;

use kube::client::ClientBuilder;

use crate::error::ClusterError;

/// Build a client from `path`. `qps <= 0` disables the rate limit.
pub async fn connect(path: &Path, qps: f64, burst: u32) -> Result<kube::Client, ClusterError> {
    let config = kubeconfig::load(path).await?;
    build(config, qps, burst)
}

/// Build a client from a loaded config.
pub fn build(config: kube::Config, qps: f64, burst: u32) -> Result<kube::Client, ClusterError> {
    let builder = ClientBuilder::try_from(config)?;
    let limiter = ratelimit::RateLimitLayer::new(qps, burst);
    Ok(builder.with_layer(&limiter).build())
}
