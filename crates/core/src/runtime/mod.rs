//! Everything that talks to or decides about the container runtime.

pub mod actions;
pub mod backoff;
pub mod container;
pub mod cri;
pub mod envvars;
pub mod images;
pub mod labels;
pub mod model;
pub mod pull_limits;
pub mod runtime_class;
pub mod sandbox;
pub mod security;
