//! The kubelet's node API: three listeners with upstream semantics.
//!
//! - **port** (default 10250): HTTPS, authenticated and authorized; every endpoint,
//!   including logs, exec, attach, port-forward and `/configz`.
//! - **read-only port** (10255, off unless set): plain HTTP, no auth, only the read-only
//!   endpoints; debugging endpoints answer 405 as upstream.
//! - **healthz port** (default 10248 on 127.0.0.1): `/healthz` only.
//!
//! The server only reads shared views (the status store, the PLEG snapshot) and asks the
//! runtime for stats, logs and streaming URLs; it never starts or kills anything.
//! See docs/node-api.md for every endpoint.

pub mod auth;
mod body;
mod error;
mod handlers;
mod http_metrics;
mod listen;
pub mod logs;
pub mod machine;
mod proxy;
mod router;
mod settings;
mod state;
pub mod stats;
pub mod tls;

pub use error::{ApiError, ServerError};
pub use listen::{NodeApi, start};
pub use settings::{AuthSettings, ServerSettings, TlsSettings};
pub use state::{RejectedWrite, RejectedWrites, Reviewers, ServerDeps};
