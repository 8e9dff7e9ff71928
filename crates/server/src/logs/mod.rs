//! Container logs: the query options of `/containerLogs` (upstream `PodLogOptions`),
//! the CRI log file format, and a reader that applies tail, since, limit, timestamps
//! and follow the way the upstream kubelet's `ReadLogs` does.

pub mod format;
pub mod options;
pub mod reader;

pub use options::{LogOptions, Stream};
