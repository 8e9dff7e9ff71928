//! A minimal OpenAPI v3: one document per group/version listing each resource's paths and
//! operations with `x-kubernetes-group-version-kind` and the query parameters (notably
//! `fieldValidation`, which tells kubectl to validate on the server). Schemas are not
//! served; `/openapi/v2` is 404 as on servers that dropped it.

use serde_json::{Map, Value, json};

use super::http::{Response, respond};
use crate::error::ApiError;
use crate::registry::defs::{self, ResourceDef};

const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn gv_paths() -> Vec<String> {
    let mut v = vec!["api/v1".to_string()];
    v.extend(
        defs::GROUPS
            .iter()
            .map(|(g, ver)| format!("apis/{g}/{ver}")),
    );
    v
}

/// `/openapi/...`.
pub fn serve(path: &str) -> Response {
    if path == "v3" {
        let mut paths = Map::new();
        for p in gv_paths() {
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={HASH}")}),
            );
        }
        return respond::json(200, &json!({"paths": paths}));
    }
    let Some(gv) = path.strip_prefix("v3/") else {
        return respond::error(&ApiError::PathNotFound);
    };
    let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return respond::error(&ApiError::PathNotFound),
    };
    let defs: Vec<&ResourceDef> = defs::in_group_version(&group, &version).collect();
    if defs.is_empty() {
        return respond::error(&ApiError::PathNotFound);
    }
    respond::json(200, &document(&defs))
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "description": name, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(def: &ResourceDef, action: &str, write: bool) -> Value {
    let mut params = vec![param("pretty")];
    if write {
        params.extend([
            param("dryRun"),
            param("fieldManager"),
            param("fieldValidation"),
        ]);
    }
    json!({
        "operationId": format!("{action}{}", def.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "version": def.version, "kind": def.kind},
    })
}

fn document(defs: &[&ResourceDef]) -> Value {
    let mut paths = Map::new();
    for d in defs {
        let prefix = if d.group.is_empty() {
            format!("/api/{}", d.version)
        } else {
            format!("/apis/{}/{}", d.group, d.version)
        };
        let base = if d.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", d.plural)
        } else {
            format!("{prefix}/{}", d.plural)
        };
        let mut coll = Map::new();
        if d.verbs.contains(&"create") {
            coll.insert("post".into(), operation(d, "post", true));
        }
        if d.verbs.contains(&"list") {
            coll.insert("get".into(), operation(d, "list", false));
        }
        paths.insert(base.clone(), Value::Object(coll));
        if d.persisted() {
            paths.insert(
                format!("{base}/{{name}}"),
                json!({
                    "get": operation(d, "get", false),
                    "put": operation(d, "put", true),
                    "patch": operation(d, "patch", true),
                    "delete": operation(d, "delete", false),
                }),
            );
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR)},
        "paths": paths,
        "components": {"schemas": {}},
    })
}
