//! An in-memory Kubernetes API server for kubelet-rs tests.
//!
//! It implements the REST semantics a kubelet and kubectl rely on: discovery, CRUD with
//! one global resourceVersion, list/watch with selectors, resume and 410 Gone, optimistic
//! concurrency, JSON/merge/strategic patches, status subresources, graceful deletion and
//! finalizers, Table output, tokens, client certificates, CSR signing, TokenReview and
//! SubjectAccessReview. See `docs/test-apiserver.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), test_apiserver::StartError> {
//! let server = test_apiserver::Server::start(test_apiserver::Options::default()).await?;
//! println!("{} {}", server.url(), server.kubeconfig_path().display());
//! server.stop().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod controllers;
pub mod discovery;
pub mod error;
pub mod http;
pub mod meta;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod registry;
pub mod selector;
pub mod server;
pub mod state;
pub mod store;
pub mod table;

pub use auth::UserInfo;
pub use auth::authz::{Policy, Rule};
pub use auth::tokens::{StaticToken, bootstrap_token};
pub use error::ApiError;
pub use server::{Credentials, KubeconfigAuth, Options, Server, StartError};
