//! API errors rendered as `meta/v1 Status`, shaped like the upstream API server's.

use serde_json::{Value, json};

/// One `details.causes` entry of a Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Machine-readable cause, e.g. `FieldValueRequired`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// JSON path of the offending field, e.g. `spec.containers[0].image`.
    pub field: String,
}

impl Cause {
    /// A cause for a field.
    pub fn new(reason: &str, field: &str, message: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.to_string(),
        }
    }
}

/// The group/kind/name an error is about (`details` of the Status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// API group ("" for core).
    pub group: String,
    /// Resource plural name (upstream puts the resource in `details.kind`).
    pub kind: String,
    /// Object name.
    pub name: String,
}

impl Subject {
    /// Builds a subject.
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        Subject {
            group: group.to_string(),
            kind: resource.to_string(),
            name: name.to_string(),
        }
    }

    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// An error returned to an API client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404 NotFound.
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(Subject),
    /// 409 AlreadyExists.
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(Subject),
    /// 409 Conflict.
    #[error("Operation cannot be fulfilled on {} \"{}\": {}", .0.qualified(), .0.name, .1)]
    Conflict(Subject, String),
    /// 422 Invalid.
    #[error("{}", invalid_message(.0, .1))]
    Invalid(Subject, Vec<Cause>, String),
    /// 410 Gone/Expired.
    #[error("{0}")]
    Expired(String),
    /// 403 Forbidden.
    #[error("{} \"{}\" is forbidden: {}", .0.qualified(), .0.name, .1)]
    Forbidden(Subject, String),
    /// 403 Forbidden with a free-form message (non-resource requests).
    #[error("{0}")]
    ForbiddenRaw(String),
    /// 401 Unauthorized.
    #[error("Unauthorized")]
    Unauthorized,
    /// 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// 405 MethodNotAllowed.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// 406 NotAcceptable.
    #[error("{0}")]
    NotAcceptable(String),
    /// 415 UnsupportedMediaType.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413 RequestEntityTooLarge.
    #[error("{0}")]
    TooLarge(String),
    /// 503 ServiceUnavailable.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 504 Timeout (also used for "Too large resource version").
    #[error("{0}")]
    Timeout(String, Vec<Cause>),
    /// 422 for a patch that cannot be applied.
    #[error("{0}")]
    Unprocessable(String),
    /// 500 InternalError.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 404 for a path that is no resource at all.
    #[error("the server could not find the requested resource")]
    PathNotFound,
}

fn invalid_message(s: &Subject, causes: &[Cause]) -> String {
    // Upstream names the group-qualified Kind: `Lease.coordination.k8s.io "x" is invalid`.
    let kind = s.qualified();
    let list: Vec<String> = causes
        .iter()
        .map(|c| {
            if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            }
        })
        .collect();
    match list.len() {
        0 => format!("{} \"{}\" is invalid", kind, s.name),
        1 => format!("{} \"{}\" is invalid: {}", kind, s.name, list[0]),
        _ => format!("{} \"{}\" is invalid: [{}]", kind, s.name, list.join(", ")),
    }
}

impl ApiError {
    /// An Invalid error for a kind/name with causes.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        ApiError::Invalid(Subject::new(group, kind, name), causes, String::new())
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::PathNotFound => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict(..) => 409,
            ApiError::Invalid(..) | ApiError::Unprocessable(_) => 422,
            ApiError::Expired(_) => 410,
            ApiError::Forbidden(..) | ApiError::ForbiddenRaw(_) => 403,
            ApiError::Unauthorized => 401,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooLarge(_) => 413,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::Timeout(..) => 504,
            ApiError::Internal(_) => 500,
        }
    }

    /// The upstream `reason` string.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::PathNotFound => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict(..) => "Conflict",
            ApiError::Invalid(..) | ApiError::Unprocessable(_) => "Invalid",
            ApiError::Expired(_) => "Expired",
            ApiError::Forbidden(..) | ApiError::ForbiddenRaw(_) => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(..) => "Timeout",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The error as a `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(details) = self.details() {
            status["details"] = details;
        }
        status
    }

    fn details(&self) -> Option<Value> {
        let (subject, causes) = match self {
            ApiError::NotFound(s) | ApiError::AlreadyExists(s) | ApiError::Forbidden(s, _) => {
                (s, None)
            }
            ApiError::Conflict(s, _) => (s, None),
            ApiError::Invalid(s, c, _) => (s, Some(c)),
            ApiError::Timeout(_, c) if !c.is_empty() => {
                return Some(json!({ "causes": causes_json(c), "retryAfterSeconds": 1 }));
            }
            ApiError::ServiceUnavailable(_) => return Some(json!({ "retryAfterSeconds": 1 })),
            ApiError::Internal(m) => {
                return Some(json!({ "causes": [{ "message": m }] }));
            }
            _ => return None,
        };
        let mut d = serde_json::Map::new();
        if !subject.name.is_empty() {
            d.insert("name".into(), json!(subject.name));
        }
        if !subject.group.is_empty() {
            d.insert("group".into(), json!(subject.group));
        }
        if !subject.kind.is_empty() {
            d.insert("kind".into(), json!(subject.kind));
        }
        if let Some(c) = causes
            && !c.is_empty()
        {
            d.insert("causes".into(), causes_json(c));
        }
        Some(Value::Object(d))
    }
}

fn causes_json(c: &[Cause]) -> Value {
    Value::Array(
        c.iter()
            .map(|c| {
                let mut m = serde_json::Map::new();
                if !c.reason.is_empty() {
                    m.insert("reason".into(), json!(c.reason));
                }
                m.insert("message".into(), json!(c.message));
                if !c.field.is_empty() {
                    m.insert("field".into(), json!(c.field));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// The `Status` returned for a successful delete of resources that do not return the object.
pub fn success_status(group: &str, kind: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({ "name": name, "kind": kind, "uid": uid });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// Result alias.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_is_shaped_like_upstream() {
        let e = ApiError::NotFound(Subject::new("", "pods", "web"));
        let s = e.to_status();
        assert_eq!(s["message"], "pods \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));
        assert_eq!(s["status"], "Failure");
    }

    #[test]
    fn conflict_names_group() {
        let e = ApiError::Conflict(
            Subject::new("coordination.k8s.io", "leases", "n1"),
            "the object has been modified; please apply your changes to the latest version and try again".into(),
        );
        assert!(
            e.to_string()
                .starts_with("Operation cannot be fulfilled on leases.coordination.k8s.io \"n1\"")
        );
        assert_eq!(e.code(), 409);
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "",
            "Pod",
            "p",
            vec![
                Cause::new("FieldValueRequired", "spec.containers", "Required value"),
                Cause::new("FieldValueInvalid", "metadata.name", "Invalid value: \"A\""),
            ],
        );
        assert_eq!(
            e.to_string(),
            "Pod \"p\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"A\"]"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "spec.containers"
        );
    }
}
