//! The selection a list or watch asks for: namespace, label and field selectors.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::registry::{ResourceDef, field_set, from_storage, supported_fields};
use crate::selector::{FieldSelector, LabelSelector};

/// A parsed selection.
#[derive(Debug, Clone)]
pub struct Filter {
    def: &'static ResourceDef,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// Parses selectors for `def`; unsupported field labels are a 400 as upstream.
    pub fn new(
        def: &'static ResourceDef,
        namespace: Option<&str>,
        labels: &str,
        fields: &str,
    ) -> ApiResult<Self> {
        let labels =
            LabelSelector::parse(labels).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields =
            FieldSelector::parse(fields).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if let Some(f) = fields.unsupported(supported_fields(def)) {
            return Err(ApiError::BadRequest(format!(
                "field label not supported: {f}"
            )));
        }
        Ok(Filter {
            def,
            namespace: namespace.filter(|n| !n.is_empty()).map(String::from),
            labels,
            fields,
        })
    }

    /// The namespace restriction.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Whether any selector is set (upstream omits remainingItemCount then).
    pub fn has_selectors(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    /// Matches a stored object.
    pub fn matches(&self, stored: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta::namespace(stored) != ns
        {
            return false;
        }
        if !self.labels.is_empty() && !self.labels.matches(&meta::labels(stored)) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        let obj = from_storage(self.def, stored);
        self.fields.matches(&field_set(self.def, &obj))
    }
}
