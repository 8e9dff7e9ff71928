//! Errors of the sources. Each names where the manifest came from and why it failed.

use std::path::PathBuf;

use crate::{DecodeError, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: manifest is larger than {limit} bytes")]
    TooLarge { origin: String, limit: usize },
    #[error("{origin}: {source}")]
    Decode {
        origin: String,
        #[source]
        source: DecodeError,
    },
    #[error("{origin}: {source}")]
    Invalid {
        origin: String,
        #[source]
        source: ValidationError,
    },
    #[error("{url}: request failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: cannot build the HTTP client: {message}")]
    Client { url: String, message: String },
}

/// Upstream's `maxConfigLength`: manifests above 10 MiB are refused.
pub const MAX_MANIFEST_BYTES: usize = 10 * 1024 * 1024;
