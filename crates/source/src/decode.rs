//! Decoding manifests: bytes (YAML or JSON) to `Pod`s.
//!
//! JSON is YAML, but JSON input (first non-blank byte `{` or `[`) goes through
//! `serde_json` for precise error positions; everything else through `serde-saphyr`.
//! The document is first read as a generic value to check `apiVersion`/`kind`, then
//! decoded into the typed `Pod` so type errors carry a line and column.
//!
//! - [`decode_pod`]: exactly one `v1` `Pod` (the file source).
//! - [`decode_pods`]: a `Pod`, a `v1` `PodList` or a `v1` `List` of Pods (the URL source),
//!   with one result per item so one bad item does not hide the others.
//!
//! Unknown fields are ignored (as upstream), with one exception: a volume whose only
//! non-null fields are unknown (a misspelt or unsupported volume type) is an error,
//! where upstream would silently turn it into an `emptyDir`. A volume with only a name
//! still defaults to `emptyDir`, as upstream.

use k8s_openapi::api::core::v1::Volume;
use serde_json::Value;

use crate::Pod;
use crate::validation::volume_source_names;

/// How a manifest is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// Why bytes could not be turned into a Pod.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty manifest")]
    Empty,
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid YAML: {message}")]
    Yaml { message: String },
    #[error("{count} YAML documents found, expected exactly one Pod per file")]
    MultipleDocuments { count: usize },
    #[error("expected an object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("missing apiVersion, expected \"v1\"")]
    MissingApiVersion,
    #[error("missing kind, expected {expected}")]
    MissingKind { expected: &'static str },
    #[error("kind {kind:?} is not supported, expected {expected}")]
    UnsupportedKind {
        kind: String,
        expected: &'static str,
    },
    #[error("apiVersion {api_version:?} is not supported for kind {kind}, expected \"v1\"")]
    UnsupportedApiVersion { api_version: String, kind: String },
    #[error("invalid Pod: {message}")]
    InvalidPod { message: String },
    #[error(
        "spec.volumes[{index}]: Required value: must specify a volume type \
         (unknown volume source {fields})"
    )]
    UnknownVolumeType { index: usize, fields: String },
    #[error("items[{index}]: {source}")]
    Item {
        index: usize,
        #[source]
        source: Box<DecodeError>,
    },
}

const EXPECT_POD: &str = "Pod";
const EXPECT_POD_OR_LIST: &str = "Pod, PodList or List";

/// JSON when the first non-blank byte (after an optional UTF-8 BOM) opens an object or
/// an array; YAML otherwise.
pub fn detect_format(data: &[u8]) -> Format {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => Format::Json,
        _ => Format::Yaml,
    }
}

/// True when the bytes hold nothing but whitespace (and YAML comments).
fn is_blank(data: &[u8]) -> bool {
    data.split(|b| *b == b'\n').all(|line| {
        let line = line.trim_ascii();
        line.is_empty() || line.starts_with(b"#")
    })
}

/// Decodes exactly one `v1` Pod (YAML or JSON).
pub fn decode_pod(data: &[u8]) -> Result<Pod, DecodeError> {
    let format = detect_format(data);
    let raw = parse_document(data, format)?;
    check_type(&raw, &["Pod"], EXPECT_POD, true)?;
    let pod = decode_typed(data, format)?;
    check_volume_sources(&raw, &pod)?;
    Ok(pod)
}

/// Decodes a Pod, a `v1` PodList or a `v1` List of Pods. Empty input is an empty set.
/// The outer error means nothing could be used; an inner error concerns one item.
pub fn decode_pods(data: &[u8]) -> Result<Vec<Result<Pod, DecodeError>>, DecodeError> {
    if is_blank(data) {
        return Ok(Vec::new());
    }
    let format = detect_format(data);
    let raw = parse_document(data, format)?;
    let kind = check_type(&raw, &["Pod", "PodList", "List"], EXPECT_POD_OR_LIST, true)?;
    if kind == "Pod" {
        let pod = decode_typed(data, format).and_then(|pod| {
            check_volume_sources(&raw, &pod)?;
            Ok(pod)
        });
        return Ok(vec![pod]);
    }
    let items = match raw.get("items") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(DecodeError::InvalidPod {
                message: format!("items: expected a list, found {}", value_kind(other)),
            });
        }
    };
    // PodList items usually omit apiVersion/kind; List items must carry them.
    let require_type = kind == "List";
    Ok(items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            decode_item(item, require_type).map_err(|source| DecodeError::Item {
                index,
                source: Box::new(source),
            })
        })
        .collect())
}

fn decode_item(item: &Value, require_type: bool) -> Result<Pod, DecodeError> {
    check_type(item, &["Pod"], EXPECT_POD, require_type)?;
    let pod: Pod = serde_json::from_value(item.clone()).map_err(|e| DecodeError::InvalidPod {
        message: e.to_string(),
    })?;
    check_volume_sources(item, &pod)?;
    Ok(pod)
}

/// Parses the bytes into one generic document.
fn parse_document(data: &[u8], format: Format) -> Result<Value, DecodeError> {
    if is_blank(data) {
        return Err(DecodeError::Empty);
    }
    match format {
        Format::Json => serde_json::from_slice(data).map_err(json_error),
        Format::Yaml => {
            let mut docs: Vec<Value> =
                serde_saphyr::from_slice_multiple(data).map_err(|e| DecodeError::Yaml {
                    message: yaml_message(&e),
                })?;
            match docs.len() {
                0 => Err(DecodeError::Empty),
                1 => Ok(docs.remove(0)),
                count => Err(DecodeError::MultipleDocuments { count }),
            }
        }
    }
}

/// Decodes the typed Pod straight from the bytes, so errors carry positions.
fn decode_typed(data: &[u8], format: Format) -> Result<Pod, DecodeError> {
    match format {
        Format::Json => serde_json::from_slice(data).map_err(|e| DecodeError::InvalidPod {
            message: e.to_string(),
        }),
        Format::Yaml => serde_saphyr::from_slice(data).map_err(|e| DecodeError::InvalidPod {
            message: yaml_message(&e),
        }),
    }
}

/// serde-saphyr's message on one line, without the source snippet (logs are lines).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    text.lines().next().unwrap_or_default().to_string()
}

fn json_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Json {
        line: e.line(),
        column: e.column(),
        message: strip_json_position(&e.to_string()),
    }
}

/// serde_json appends " at line L column C" to its messages; the variant carries them.
fn strip_json_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Checks `apiVersion` and `kind`; returns the kind.
fn check_type<'a>(
    raw: &'a Value,
    kinds: &[&str],
    expected: &'static str,
    required: bool,
) -> Result<&'a str, DecodeError> {
    let obj = raw.as_object().ok_or(DecodeError::NotAnObject {
        found: value_kind(raw),
    })?;
    let kind = match obj.get("kind") {
        Some(Value::String(k)) if !k.is_empty() => k.as_str(),
        None | Some(Value::Null) if !required => "Pod",
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(DecodeError::MissingKind { expected });
        }
        Some(other) => {
            return Err(DecodeError::UnsupportedKind {
                kind: other.to_string(),
                expected,
            });
        }
    };
    if !kinds.contains(&kind) {
        return Err(DecodeError::UnsupportedKind {
            kind: kind.to_string(),
            expected,
        });
    }
    match obj.get("apiVersion") {
        Some(Value::String(v)) if v == "v1" => Ok(kind),
        None | Some(Value::Null) if !required => Ok(kind),
        Some(Value::String(v)) if !v.is_empty() => Err(DecodeError::UnsupportedApiVersion {
            api_version: v.clone(),
            kind: kind.to_string(),
        }),
        Some(Value::String(_)) | Some(Value::Null) | None => Err(DecodeError::MissingApiVersion),
        Some(other) => Err(DecodeError::UnsupportedApiVersion {
            api_version: other.to_string(),
            kind: kind.to_string(),
        }),
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Rejects volumes that name only unknown sources (see the module doc).
fn check_volume_sources(raw: &Value, pod: &Pod) -> Result<(), DecodeError> {
    let Some(raw_volumes) = raw.pointer("/spec/volumes").and_then(Value::as_array) else {
        return Ok(());
    };
    let typed: &[Volume] = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    for (index, (raw_volume, volume)) in raw_volumes.iter().zip(typed).enumerate() {
        if !volume_source_names(volume).is_empty() {
            continue;
        }
        let Some(obj) = raw_volume.as_object() else {
            continue;
        };
        let unknown: Vec<String> = obj
            .iter()
            .filter(|(k, v)| k.as_str() != "name" && !v.is_null())
            .map(|(k, _)| format!("{k:?}"))
            .collect();
        if !unknown.is_empty() {
            return Err(DecodeError::UnknownVolumeType {
                index,
                fields: unknown.join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: kube-system
spec:
  containers:
  - name: nginx
    image: nginx:1.25
    ports:
    - containerPort: 80
    resources:
      limits:
        cpu: 1
        memory: 128Mi
";

    const JSON_POD: &str = r#"{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "web"},
  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
}"#;

    fn err_of(r: Result<Pod, DecodeError>) -> String {
        match r {
            Ok(p) => panic!("expected an error, got {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn detects_format() {
        assert_eq!(detect_format(b"  \n{\"a\":1}"), Format::Json);
        assert_eq!(detect_format(b"\xEF\xBB\xBF[1]"), Format::Json);
        assert_eq!(detect_format(b"apiVersion: v1"), Format::Yaml);
        assert_eq!(detect_format(b"---\n{}"), Format::Yaml);
    }

    #[test]
    fn decodes_yaml_pod() {
        let pod = decode_pod(YAML_POD.as_bytes()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
        let spec = pod.spec.unwrap();
        let c = &spec.containers[0];
        assert_eq!(c.image.as_deref(), Some("nginx:1.25"));
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 80);
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["cpu"].0, "1");
        assert_eq!(limits["memory"].0, "128Mi");
    }

    #[test]
    fn decodes_json_pod() {
        let pod = decode_pod(JSON_POD.as_bytes()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web"));
        assert_eq!(pod.spec.unwrap().containers[0].name, "nginx");
    }

    #[test]
    fn yaml_with_leading_separator_and_comments_is_one_document() {
        let data = format!("# static pod\n---\n{YAML_POD}");
        assert!(decode_pod(data.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_other_kinds_and_versions() {
        let e = err_of(decode_pod(
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
        ));
        assert_eq!(e, "kind \"Deployment\" is not supported, expected Pod");
        let e = err_of(decode_pod(b"kind: Pod\nmetadata: {name: x}\n"));
        assert_eq!(e, "missing apiVersion, expected \"v1\"");
        let e = err_of(decode_pod(b"apiVersion: v1\nmetadata: {name: x}\n"));
        assert_eq!(e, "missing kind, expected Pod");
        let e = err_of(decode_pod(b"apiVersion: v2\nkind: Pod\n"));
        assert_eq!(
            e,
            "apiVersion \"v2\" is not supported for kind Pod, expected \"v1\""
        );
        let e = err_of(decode_pod(b"apiVersion: v1\nkind: PodList\nitems: []\n"));
        assert!(e.contains("kind \"PodList\" is not supported"), "{e}");
    }

    #[test]
    fn bad_yaml_reports_position() {
        let e = err_of(decode_pod(
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: [x\n",
        ));
        assert_eq!(e, "invalid YAML: unclosed bracket '[' at line 4, column 9");
    }

    #[test]
    fn bad_json_reports_line_and_column() {
        let e = decode_pod(b"{\n  \"apiVersion\": \"v1\",\n  \"kind\": }").unwrap_err();
        match e {
            DecodeError::Json { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column > 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn type_errors_are_reported() {
        let e = err_of(decode_pod(
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: oops\n",
        ));
        assert_eq!(
            e,
            "invalid Pod: expected sequence start at line 5, column 15"
        );
        let e = err_of(decode_pod(
            br#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":"oops"}}"#,
        ));
        assert!(e.contains("line 1 column"), "{e}");
    }

    #[test]
    fn empty_and_scalar_documents() {
        assert!(matches!(
            decode_pod(b"  \n# nothing\n"),
            Err(DecodeError::Empty)
        ));
        assert_eq!(
            err_of(decode_pod(b"just a string\n")),
            "expected an object, found a string"
        );
    }

    #[test]
    fn multiple_documents_are_rejected() {
        let data = format!("{YAML_POD}---\n{YAML_POD}");
        assert!(matches!(
            decode_pod(data.as_bytes()),
            Err(DecodeError::MultipleDocuments { count: 2 })
        ));
    }

    #[test]
    fn unknown_volume_type_is_an_error_but_name_only_is_not() {
        let data = b"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: []\n  volumes:\n  - name: a\n  - name: b\n    fancyDisk: {size: 1}\n";
        let e = err_of(decode_pod(data));
        assert_eq!(
            e,
            "spec.volumes[1]: Required value: must specify a volume type (unknown volume source \"fancyDisk\")"
        );
        let ok = b"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: []\n  volumes:\n  - name: a\n  - name: b\n    emptyDir:\n";
        assert!(decode_pod(ok).is_ok());
    }

    #[test]
    fn decodes_pod_list_and_v1_list() {
        let list = br#"{"apiVersion":"v1","kind":"PodList","items":[
            {"metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i"}]}},
            {"metadata":{"name":"b"},"spec":{"containers":"bad"}}]}"#;
        let items = decode_pods(list).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].as_ref().unwrap().metadata.name.as_deref(),
            Some("a")
        );
        let e = items[1].as_ref().unwrap_err().to_string();
        assert!(e.starts_with("items[1]: invalid Pod:"), "{e}");

        let v1list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n";
        let items = decode_pods(v1list.as_bytes()).unwrap();
        assert!(items[0].is_ok());
        assert_eq!(
            items[1].as_ref().unwrap_err().to_string(),
            "items[1]: kind \"Service\" is not supported, expected Pod"
        );
    }

    #[test]
    fn decode_pods_single_pod_and_empty() {
        assert!(decode_pods(b"").unwrap().is_empty());
        assert!(decode_pods(b"\n\n").unwrap().is_empty());
        let items = decode_pods(YAML_POD.as_bytes()).unwrap();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok());
        let e = decode_pods(b"apiVersion: v1\nkind: Secret\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "kind \"Secret\" is not supported, expected Pod, PodList or List"
        );
        let list_no_items = decode_pods(b"apiVersion: v1\nkind: PodList\n").unwrap();
        assert!(list_no_items.is_empty());
    }
}
