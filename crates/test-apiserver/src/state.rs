//! The shared state of one running server: store, credentials, policy, CA, test knobs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::auth::UserInfo;
use crate::auth::authz::Policy;
use crate::auth::ca::TestCa;
use crate::auth::tokens::TokenAuthenticator;
use crate::store::Store;

/// One request the server saw (for `/test/requests`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Sequence number.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Authenticated user ("" if authentication failed).
    pub user: String,
    /// Response status code (for watches: the initial code).
    pub code: u16,
    /// User-Agent header.
    pub user_agent: String,
}

/// Injected failures: the next `count` requests, or all until `until`.
#[derive(Debug, Default)]
struct FailState {
    count: u64,
    until: Option<Instant>,
}

/// Knobs tests flip at run time.
#[derive(Default)]
pub struct Knobs {
    fail: Mutex<FailState>,
    /// Approve every CSR automatically (csrapproving controller stand-in).
    pub auto_approve_csrs: AtomicBool,
    /// Cap on the lifetime of issued service account tokens in seconds, 0 = none
    /// (kube-apiserver `--service-account-max-token-expiration`, without its minimum, so
    /// tests can watch tokens being refreshed).
    pub max_token_seconds: AtomicU64,
}

impl Knobs {
    /// Fail the next `n` API requests with 503.
    pub fn fail_next(&self, n: u64) {
        self.fail.lock().unwrap_or_else(|p| p.into_inner()).count = n;
    }

    /// Fail all API requests with 503 for `d`.
    pub fn fail_for(&self, d: Duration) {
        self.fail.lock().unwrap_or_else(|p| p.into_inner()).until = Some(Instant::now() + d);
    }

    /// Stop failing.
    pub fn clear_failures(&self) {
        *self.fail.lock().unwrap_or_else(|p| p.into_inner()) = FailState::default();
    }

    /// Whether this request should fail (consumes one of `count`).
    pub fn should_fail(&self) -> bool {
        let mut f = self.fail.lock().unwrap_or_else(|p| p.into_inner());
        if f.until.is_some_and(|u| Instant::now() < u) {
            return true;
        }
        if f.count > 0 {
            f.count -= 1;
            return true;
        }
        false
    }
}

/// Everything handlers and controllers share.
pub struct Cluster {
    /// Object storage.
    pub store: Arc<Store>,
    /// Bearer tokens.
    pub tokens: RwLock<TokenAuthenticator>,
    /// Authorization policy.
    pub policy: RwLock<Policy>,
    /// The CA.
    pub ca: TestCa,
    /// Test knobs.
    pub knobs: Knobs,
    /// Lifetime of certificates issued for CSRs without spec.expirationSeconds.
    pub signed_cert_lifetime: Duration,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
    /// Whether requests without credentials over plain HTTP act as the admin.
    pub insecure_is_admin: bool,
    /// Whether unauthenticated TLS requests are `system:anonymous` (else 401).
    pub anonymous: bool,
    /// Requests seen.
    pub requests: Mutex<Vec<RequestRecord>>,
    seq: AtomicU64,
    /// TLS client config for proxying to kubelets (kubelet-client certificate).
    pub kubelet_client: Arc<rustls::ClientConfig>,
    /// Bumped to end every open watch (simulates an API server restart for watchers).
    pub watch_epoch: tokio::sync::watch::Sender<u64>,
}

impl Cluster {
    /// Builds the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        tokens: TokenAuthenticator,
        policy: Policy,
        ca: TestCa,
        signed_cert_lifetime: Duration,
        bookmark_interval: Duration,
        insecure_is_admin: bool,
        anonymous: bool,
        kubelet_client: Arc<rustls::ClientConfig>,
    ) -> Self {
        Cluster {
            store,
            tokens: RwLock::new(tokens),
            policy: RwLock::new(policy),
            ca,
            knobs: Knobs::default(),
            signed_cert_lifetime,
            bookmark_interval,
            insecure_is_admin,
            anonymous,
            requests: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            kubelet_client,
            watch_epoch: tokio::sync::watch::channel(0).0,
        }
    }

    /// Records a request.
    pub fn record(
        &self,
        method: &str,
        path: &str,
        query: &str,
        user: Option<&UserInfo>,
        code: u16,
        user_agent: &str,
    ) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() >= 100_000 {
            r.remove(0);
        }
        r.push(RequestRecord {
            seq,
            method: method.into(),
            path: path.into(),
            query: query.into(),
            user: user.map(|u| u.name.clone()).unwrap_or_default(),
            code,
            user_agent: user_agent.into(),
        });
    }

    /// The current policy.
    pub fn policy(&self) -> Policy {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ends every open watch.
    pub fn close_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }
}
