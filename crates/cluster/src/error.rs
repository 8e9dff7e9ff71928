//! Errors of cluster mode.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("API client: {0}")]
    Client(#[from] kube::Error),
    #[error("API server: {0}")]
    Api(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("TLS bootstrap: {0}")]
    Bootstrap(String),
}

impl ClusterError {
    /// The HTTP status of an API error response, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClusterError::Client(kube::Error::Api(s)) => Some(s.code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }
}

/// The HTTP status of a kube error, if it is an API error response.
pub fn status_of(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Run `fut` with a deadline; the API client itself has no read timeout (watches).
pub async fn with_timeout<T>(
    limit: std::time::Duration,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, ClusterError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(ClusterError::from),
        Err(_) => Err(ClusterError::Timeout(limit)),
    }
}
