//! Field validation as kube-apiserver does it (`pkg/apis/core/validation`, the coordination
//! and event validation, apimachinery's ObjectMeta rules), written for objects held as JSON.
//!
//! Every rule reports what the real server reports: the field path (`metadata.labels`,
//! `status.capacity.cpu`, `spec.taints[0].effect`) and the message body
//! (`Invalid value: 0: must be greater than zero`), so a client that the real server would
//! refuse is refused here with the same 422 and the same causes.

pub mod content;
pub mod event;
pub mod lease;
pub mod meta;
pub mod mirror;
pub mod node;
pub mod pod_status;

use serde_json::Value;

use crate::error::Cause;

/// A rejected value as the server prints it after `Invalid value: `.
#[derive(Debug, Clone)]
pub enum Bad {
    /// Integers and booleans are printed as they are (`0`, `true`).
    Plain(String),
    /// Strings are quoted as Go's `%q` does.
    Str(String),
    /// Anything else is printed as its JSON.
    Json(Value),
}

impl Bad {
    fn render(&self) -> String {
        match self {
            Bad::Plain(s) => s.clone(),
            Bad::Str(s) => go_quote(s),
            Bad::Json(v) => serde_json::to_string(v).unwrap_or_default(),
        }
    }
}

impl From<&str> for Bad {
    fn from(s: &str) -> Self {
        Bad::Str(s.to_string())
    }
}
impl From<String> for Bad {
    fn from(s: String) -> Self {
        Bad::Str(s)
    }
}
impl From<i64> for Bad {
    fn from(n: i64) -> Self {
        Bad::Plain(n.to_string())
    }
}
impl From<&Value> for Bad {
    /// A JSON value as the server renders the Go value it decoded into: numbers and
    /// booleans plain, strings quoted, the rest as JSON.
    fn from(v: &Value) -> Self {
        match v {
            Value::Number(n) => Bad::Plain(n.to_string()),
            Value::Bool(b) => Bad::Plain(b.to_string()),
            Value::String(s) => Bad::Str(s.clone()),
            other => Bad::Json(other.clone()),
        }
    }
}

/// Go's `strconv.Quote` for the printable ASCII and UTF-8 strings objects carry.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The causes collected by one validation, in the order the server reports them.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<Cause>);

impl Errors {
    pub fn new() -> Self {
        Errors(Vec::new())
    }

    fn push(&mut self, reason: &str, field: &str, kind: &str, value: Option<Bad>, detail: &str) {
        let mut body = kind.to_string();
        if let Some(v) = value {
            body.push_str(": ");
            body.push_str(&v.render());
        }
        if !detail.is_empty() {
            body.push_str(": ");
            body.push_str(detail);
        }
        self.0.push(Cause::new(reason, field, body));
    }

    /// `field.Required`.
    pub fn required(&mut self, field: &str, detail: &str) {
        self.push("FieldValueRequired", field, "Required value", None, detail);
    }

    /// `field.Invalid`.
    pub fn invalid(&mut self, field: &str, value: impl Into<Bad>, detail: &str) {
        self.push(
            "FieldValueInvalid",
            field,
            "Invalid value",
            Some(value.into()),
            detail,
        );
    }

    /// `field.Forbidden`.
    pub fn forbidden(&mut self, field: &str, detail: &str) {
        self.push("FieldValueForbidden", field, "Forbidden", None, detail);
    }

    /// `field.Duplicate`.
    pub fn duplicate(&mut self, field: &str, value: impl Into<Bad>, detail: &str) {
        self.push(
            "FieldValueDuplicate",
            field,
            "Duplicate value",
            Some(value.into()),
            detail,
        );
    }

    /// `field.NotSupported` with the allowed values.
    pub fn not_supported(&mut self, field: &str, value: impl Into<Bad>, valid: &[&str]) {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        self.push(
            "FieldValueNotSupported",
            field,
            "Unsupported value",
            Some(value.into()),
            &detail,
        );
    }

    /// `field.TooLong` (the value is never printed).
    pub fn too_long(&mut self, field: &str, max: usize) {
        let unit = if max == 1 { "byte" } else { "bytes" };
        self.push(
            "FieldValueTooLong",
            field,
            "Too long",
            None,
            &format!("may not be more than {max} {unit}"),
        );
    }

    pub fn extend(&mut self, other: Errors) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_causes(self) -> Vec<Cause> {
        self.0
    }
}

/// `obj[key]` as a string ("" when absent or not a string).
pub fn s<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `obj[key]` as an object's entries (empty when absent).
pub fn entries<'a>(obj: &'a Value, key: &str) -> Vec<(&'a String, &'a Value)> {
    obj.get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// `obj[key]` as a list (empty when absent).
pub fn items<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_shaped_as_upstream_field_errors() {
        let mut e = Errors::new();
        e.invalid(
            "metadata.nodeSwapStatus.capacity",
            0,
            "must be greater than zero",
        );
        e.invalid("spec.x", "a\"b", "bad");
        e.invalid("spec.y", &json!({"a": 1}), "bad");
        e.required("metadata.name", "name or generateName is required");
        e.required("reportingInstance", "");
        e.forbidden("spec.podCIDRs", "no");
        e.not_supported("spec.taints[0].effect", "X", &["NoSchedule", "NoExecute"]);
        e.too_long("metadata.annotations", 262144);
        let msgs: Vec<String> = e.0.iter().map(|c| c.message.clone()).collect();
        assert_eq!(
            msgs,
            [
                "Invalid value: 0: must be greater than zero",
                "Invalid value: \"a\\\"b\": bad",
                "Invalid value: {\"a\":1}: bad",
                "Required value: name or generateName is required",
                "Required value",
                "Forbidden: no",
                "Unsupported value: \"X\": supported values: \"NoSchedule\", \"NoExecute\"",
                "Too long: may not be more than 262144 bytes",
            ]
        );
        assert_eq!(e.0[0].reason, "FieldValueInvalid");
        assert_eq!(e.0[0].field, "metadata.nodeSwapStatus.capacity");
    }
}
