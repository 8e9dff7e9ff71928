//! Reading the `--config` file and `--config-dir` drop-ins.
//!
//! Each document is YAML or JSON (JSON is read as YAML, as upstream does),
//! must declare `kind: KubeletConfiguration` and
//! `apiVersion: kubelet.config.k8s.io/v1beta1`, and is decoded strictly
//! (unknown or duplicate fields are errors naming the field, file and line).
//! Relative paths in a document are resolved against that document's
//! directory, like upstream `resolveRelativePaths`. Drop-ins (`*.conf`, found
//! recursively, in lexical order) are applied on top of the main file as JSON
//! merge patches (RFC 7386), as upstream's `mergeKubeletConfigurations` does.

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::types::{API_VERSION, KIND, KubeletConfiguration};

/// Config fields holding file paths (upstream `KubeletConfigurationPathRefs`),
/// as JSON pointers into the document.
const PATH_FIELDS: &[&str] = &[
    "/staticPodPath",
    "/authentication/x509/clientCAFile",
    "/tlsCertFile",
    "/tlsPrivateKeyFile",
    "/resolvConf",
    "/volumePluginDir",
];

const DROP_IN_EXTENSION: &str = "conf";

fn file_error(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError::ConfigFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads, checks and decodes one config document, returning it as a JSON
/// value with its relative paths made absolute.
pub(crate) fn load_document(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("failed to read: {e}")))?;
    if text.trim().is_empty() {
        return Err(file_error(path, "the file is empty"));
    }
    let mut doc: Value = serde_saphyr::from_str(&text).map_err(|e| {
        file_error(
            path,
            describe_decode_error(&e.without_snippet().to_string()),
        )
    })?;
    if !doc.is_object() {
        return Err(file_error(
            path,
            "expected a KubeletConfiguration object (a YAML or JSON mapping)",
        ));
    }
    check_type_meta(&doc).map_err(|reason| file_error(path, reason))?;
    // Decode strictly from the text so errors carry line and column.
    serde_saphyr::from_str::<KubeletConfiguration>(&text).map_err(|e| {
        file_error(
            path,
            describe_decode_error(&e.without_snippet().to_string()),
        )
    })?;
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    resolve_relative_paths(&mut doc, &base);
    Ok(doc)
}

fn check_type_meta(doc: &Value) -> Result<(), String> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind != KIND {
        return Err(if kind.is_empty() {
            format!("missing \"kind\": expected {KIND:?}")
        } else {
            format!("kind {kind:?} is not supported: expected {KIND:?}")
        });
    }
    if api_version != API_VERSION {
        return Err(if api_version.is_empty() {
            format!("missing \"apiVersion\": expected {API_VERSION:?}")
        } else {
            format!("apiVersion {api_version:?} is not supported: expected {API_VERSION:?}")
        });
    }
    Ok(())
}

/// Turns a serde error text into a short reason. Unknown-field errors drop
/// serde's (long) list of expected fields: `unknown field "x" (line 3, column 1)`.
fn describe_decode_error(message: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((field, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    match tail.rfind(" at line ") {
        Some(at) => format!(
            "unknown field \"{field}\" ({})",
            tail[at + " at ".len()..].trim()
        ),
        None => format!("unknown field \"{field}\""),
    }
}

fn resolve_relative_paths(doc: &mut Value, base: &Path) {
    for pointer in PATH_FIELDS {
        if let Some(Value::String(path)) = doc.pointer_mut(pointer)
            && !path.is_empty()
            && !Path::new(path.as_str()).is_absolute()
        {
            *path = clean_path(&base.join(path.as_str()))
                .to_string_lossy()
                .into_owned();
        }
    }
}

/// Lexically cleans a path (`a/./b/../c` → `a/c`), like Go's `filepath.Clean`.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The drop-in files under `dir`: `*.conf`, recursively, in lexical order.
pub(crate) fn drop_in_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    collect_drop_ins(dir, &mut files)?;
    Ok(files)
}

fn collect_drop_ins(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), ConfigError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| file_error(dir, format!("failed to read the drop-in directory: {e}")))?;
    let mut paths = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(dir, format!("failed to read the drop-in directory: {e}")))?;
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_drop_ins(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == DROP_IN_EXTENSION) {
            files.push(path);
        }
    }
    Ok(())
}

/// Applies `patch` to `target` as a JSON merge patch (RFC 7386): objects
/// merge key by key, `null` deletes, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(&key);
            } else {
                merge_patch(target.entry(key).or_insert(Value::Null), value);
            }
        }
    }
}

/// Decodes a (merged) document into a configuration with file defaults applied.
/// `source` names the document in errors.
pub(crate) fn decode(doc: &Value, source: &Path) -> Result<KubeletConfiguration, ConfigError> {
    let mut config: KubeletConfiguration = serde_json::from_value(doc.clone())
        .map_err(|e| file_error(source, describe_decode_error(&e.to_string())))?;
    crate::defaults::apply_zero_value_defaults(&mut config);
    crate::defaults::apply_presence_defaults(&mut config, doc);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    const HEADER: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

    #[test]
    fn unknown_field_error_names_field_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "kubelet.yaml",
            &format!("{HEADER}staticPodPth: /x\n"),
        );
        let err = load_document(&path).unwrap_err().to_string();
        let expected = format!(
            "config file {}: unknown field \"staticPodPth\" (line 3, column 1)",
            path.display()
        );
        assert_eq!(err, expected);
    }

    #[test]
    fn nested_unknown_field_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{HEADER}authentication:\n  webhok:\n    enabled: true\n");
        let path = write(dir.path(), "kubelet.yaml", &text);
        let err = load_document(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field \"webhok\""), "{err}");
    }

    #[test]
    fn kind_and_api_version_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.yaml", "apiVersion: v1\nkind: Pod\n");
        let err = load_document(&path).unwrap_err().to_string();
        assert!(err.contains("kind \"Pod\" is not supported"), "{err}");

        let path = write(
            dir.path(),
            "b.yaml",
            "apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n",
        );
        let err = load_document(&path).unwrap_err().to_string();
        assert!(
            err.contains("apiVersion \"kubelet.config.k8s.io/v1alpha1\""),
            "{err}"
        );

        let path = write(dir.path(), "c.yaml", "port: 1\n");
        let err = load_document(&path).unwrap_err().to_string();
        assert!(err.contains("missing \"kind\""), "{err}");
    }

    #[test]
    fn empty_and_malformed_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "empty.yaml", "  \n");
        assert!(
            load_document(&path)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let path = write(dir.path(), "bad.yaml", &format!("{HEADER}port: [1\n"));
        let err = load_document(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("config file {}:", path.display())),
            "{err}"
        );
        let missing = dir.path().join("missing.yaml");
        assert!(
            load_document(&missing)
                .unwrap_err()
                .to_string()
                .contains("failed to read")
        );
    }

    #[test]
    fn wrong_value_type_names_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "k.yaml", &format!("{HEADER}port: abc\n"));
        let err = load_document(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        let path = write(
            dir.path(),
            "d.yaml",
            &format!("{HEADER}syncFrequency: soon\n"),
        );
        let err = load_document(&path).unwrap_err().to_string();
        assert!(err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_file_directory() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEADER}staticPodPath: manifests\ntlsCertFile: ../pki/cert.pem\nresolvConf: \"\"\nauthentication:\n  x509:\n    clientCAFile: /abs/ca.pem\n"
        );
        let path = write(dir.path(), "etc/kubelet.yaml", &text);
        let doc = load_document(&path).unwrap();
        let etc = dir.path().join("etc");
        assert_eq!(
            doc["staticPodPath"],
            json!(etc.join("manifests").to_string_lossy())
        );
        assert_eq!(
            doc["tlsCertFile"],
            json!(dir.path().join("pki/cert.pem").to_string_lossy())
        );
        assert_eq!(doc["resolvConf"], json!(""), "empty paths stay empty");
        assert_eq!(
            doc["authentication"]["x509"]["clientCAFile"],
            json!("/abs/ca.pem")
        );
    }

    #[test]
    fn json_documents_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","maxPods":20}"#;
        let path = write(dir.path(), "kubelet.json", text);
        let doc = load_document(&path).unwrap();
        assert_eq!(decode(&doc, &path).unwrap().max_pods, 20);
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 5});
        merge_patch(
            &mut target,
            json!({"a": {"b": 9, "c": null}, "d": [3], "f": "x"}),
        );
        assert_eq!(target, json!({"a": {"b": 9}, "d": [3], "e": 5, "f": "x"}));
    }

    #[test]
    fn drop_ins_are_found_recursively_in_lexical_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "20-b.conf", HEADER);
        write(dir.path(), "10-a.conf", HEADER);
        write(dir.path(), "15-sub/00-c.conf", HEADER);
        write(dir.path(), "99-ignored.yaml", HEADER);
        let names: Vec<String> = drop_in_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["10-a.conf", "15-sub/00-c.conf", "20-b.conf"]);
    }

    #[test]
    fn clean_path_matches_go_filepath_clean() {
        assert_eq!(clean_path(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(clean_path(Path::new("/..")), PathBuf::from("/"));
        assert_eq!(clean_path(Path::new("../x")), PathBuf::from("../x"));
        assert_eq!(clean_path(Path::new("a/..")), PathBuf::from("."));
    }
}
