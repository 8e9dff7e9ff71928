//! Field errors and paths, printed the way upstream `field.Error` prints them:
//! `<path>: <Type>[: <value>][: <detail>]`, e.g. `spec.containers[1].name: Duplicate value: "x"`.

use std::fmt;

/// A field path such as `spec.containers[0].ports[1].protocol`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The class of a field error (upstream `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }

    /// Types whose message never shows the offending value.
    fn omits_value(self) -> bool {
        matches!(
            self,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal
        )
    }
}

/// An offending value, printed quoted for strings and bare for numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    Str(String),
    Int(i64),
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue::Str(s.to_string())
    }
}

impl From<String> for BadValue {
    fn from(s: String) -> Self {
        BadValue::Str(s)
    }
}

impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        BadValue::Str(s.clone())
    }
}

impl From<i64> for BadValue {
    fn from(v: i64) -> Self {
        BadValue::Int(v)
    }
}

impl From<i32> for BadValue {
    fn from(v: i32) -> Self {
        BadValue::Int(v.into())
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => write!(f, "{s:?}"),
            BadValue::Int(v) => write!(f, "{v}"),
        }
    }
}

/// One validation failure at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub kind: ErrorType,
    pub value: Option<BadValue>,
    pub detail: String,
}

impl FieldError {
    fn new(kind: ErrorType, path: &Path, value: Option<BadValue>, detail: &str) -> Self {
        Self {
            field: path.as_str().to_string(),
            kind,
            value,
            detail: detail.to_string(),
        }
    }

    pub fn required(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::Required, path, None, detail)
    }

    pub fn forbidden(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::Forbidden, path, None, detail)
    }

    pub fn too_long(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::TooLong, path, None, detail)
    }

    pub fn too_many(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::TooMany, path, None, detail)
    }

    pub fn internal(path: &Path, detail: &str) -> Self {
        Self::new(ErrorType::Internal, path, None, detail)
    }

    pub fn invalid(path: &Path, value: impl Into<BadValue>, detail: &str) -> Self {
        Self::new(ErrorType::Invalid, path, Some(value.into()), detail)
    }

    pub fn duplicate(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::Duplicate, path, Some(value.into()), "")
    }

    pub fn not_found(path: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::NotFound, path, Some(value.into()), "")
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(path: &Path, value: impl Into<BadValue>, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let detail = format!("supported values: {}", list.join(", "));
        Self::new(ErrorType::NotSupported, path, Some(value.into()), &detail)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind.as_str())?;
        if let Some(v) = &self.value
            && !self.kind.omits_value()
        {
            write!(f, ": {v}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A rejected pod: every field error found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub errors: Vec<FieldError>,
}

impl ValidationError {
    pub fn single(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// True when some error is at `field` (exact path).
    pub fn has_field(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid pod: ")?;
        match self.errors.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_upstream() {
        let p = Path::new("spec").child("containers").index(1).child("name");
        assert_eq!(
            FieldError::duplicate(&p, "x").to_string(),
            "spec.containers[1].name: Duplicate value: \"x\""
        );
        let v = Path::new("spec").child("volumes").index(0);
        assert_eq!(
            FieldError::required(&v, "must specify a volume type").to_string(),
            "spec.volumes[0]: Required value: must specify a volume type"
        );
        let proto = Path::new("spec").child("ports").index(0).child("protocol");
        assert_eq!(
            FieldError::not_supported(&proto, "FOO", &["SCTP", "TCP", "UDP"]).to_string(),
            "spec.ports[0].protocol: Unsupported value: \"FOO\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        );
        let port = Path::new("p");
        assert_eq!(
            FieldError::invalid(&port, 70000, "must be between 1 and 65535, inclusive").to_string(),
            "p: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        let r = Path::new("x").key("cpu");
        assert_eq!(
            FieldError::required(&r, "").to_string(),
            "x[cpu]: Required value"
        );
    }

    #[test]
    fn aggregates_like_upstream() {
        let a = FieldError::required(&Path::new("a"), "");
        let b = FieldError::required(&Path::new("b"), "");
        assert_eq!(
            ValidationError::single(a.clone()).to_string(),
            "invalid pod: a: Required value"
        );
        let both = ValidationError { errors: vec![a, b] };
        assert_eq!(
            both.to_string(),
            "invalid pod: [a: Required value, b: Required value]"
        );
        assert!(both.has_field("b"));
    }
}
