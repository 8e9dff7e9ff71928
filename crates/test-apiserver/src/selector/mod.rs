//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`), parsed as upstream.

mod field;
mod label;

pub use field::{FieldSelector, FieldTerm};
pub use label::{LabelSelector, Requirement};

/// A selector that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
