//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

mod json_patch;
mod merge;
mod schema;
mod strategic;

use serde_json::Value;

pub use schema::{ListStrategy, list_strategy};

/// Which patch format a request uses (from its Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, approximated; JSON bodies only)
    Apply,
}

impl PatchType {
    /// From a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// A patch that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not valid for its patch type (400).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well formed but cannot be applied to this object (422).
    #[error("{0}")]
    Unapplicable(String),
}

/// Applies a patch to `original`. `kind` selects the strategic-merge list strategies.
pub fn apply(
    kind: &str,
    ptype: PatchType,
    original: &Value,
    body: &[u8],
) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    match ptype {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(PatchError::Malformed(
                    "merge patch must be a JSON object".into(),
                ));
            }
            Ok(merge::apply(original, &patch))
        }
        PatchType::Json => json_patch::apply(original, &patch),
        // Server-side apply approximated as a strategic merge of the applied configuration.
        PatchType::Strategic | PatchType::Apply => {
            let Value::Object(p) = &patch else {
                return Err(PatchError::Malformed(
                    "strategic merge patch must be a JSON object".into(),
                ));
            };
            strategic::apply(kind, original, p)
        }
    }
}
