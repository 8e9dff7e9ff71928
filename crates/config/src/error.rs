//! The error type returned by [`crate::load`].

use std::path::PathBuf;

/// Why the kubelet's settings could not be loaded.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// Command-line problem, or `--help`/`--version`: the binary calls
    /// [`clap::Error::exit`], which prints the message (help and version to
    /// stdout with status 0, errors to stderr with status 2).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The `--config` file or a `--config-dir` drop-in could not be read or
    /// decoded. `Display` gives `config file <path>: <reason>`.
    #[error("config file {}: {reason}", path.display())]
    ConfigFile { path: PathBuf, reason: String },
    /// The effective configuration is invalid. Every problem found is listed;
    /// each message names the field (and its flag, if any).
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The node name could not be determined from the host name.
    #[error("failed to determine the node name: {0}")]
    NodeName(String),
}
