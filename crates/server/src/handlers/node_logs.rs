//! `/logs/`: the node's log directory (upstream: /var/log), listed and served like Go's
//! http.FileServer. `..` is refused (400) and nothing outside the directory is served,
//! not even through a symlink (404).

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::body::ChunkStream;
use crate::error::ApiError;
use crate::state::Shared;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

const HREF: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Resolve `rel` inside `root`; None when it would leave it.
fn resolve(root: &FsPath, rel: &str) -> Result<Option<PathBuf>, ApiError> {
    let rel_path = FsPath::new(rel);
    let mut clean = PathBuf::new();
    for c in rel_path.components() {
        match c {
            Component::Normal(p) => clean.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ApiError::BadRequest("invalid URL path".into()));
            }
        }
    }
    let Ok(root) = root.canonicalize() else {
        return Ok(None);
    };
    let Ok(full) = root.join(&clean).canonicalize() else {
        return Ok(None);
    };
    Ok(full.starts_with(&root).then_some(full))
}

async fn listing(dir: &FsPath) -> Result<Response, ApiError> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| ApiError::Internal(format!("Error reading directory: {e}")))?;
    let mut names = Vec::new();
    while let Ok(Some(e)) = entries.next_entry().await {
        let mut name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().await.map(|t| t.is_dir()).unwrap_or(false) {
            name.push('/');
        }
        names.push(name);
    }
    names.sort();
    let mut body = String::from(
        "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n",
    );
    for n in names {
        let href = percent_encoding::utf8_percent_encode(&n, HREF).to_string();
        body.push_str(&format!("<a href=\"{href}\">{}</a>\n", html_escape(&n)));
    }
    body.push_str("</pre>\n");
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(resp)
}

async fn file(path: PathBuf) -> Result<Response, ApiError> {
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::NotFound("404 page not found".into()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match f.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let mut resp = (StatusCode::OK, Body::from_stream(ChunkStream(rx))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

async fn serve(state: &Shared, rel: &str) -> Result<Response, ApiError> {
    let Some(full) = resolve(&state.settings.node_log_dir, rel)? else {
        return Err(ApiError::NotFound("404 page not found".into()));
    };
    if full.is_dir() {
        if !rel.is_empty() && !rel.ends_with('/') {
            // As Go: a directory without its slash redirects to it.
            let base = rel.rsplit('/').next().unwrap_or(rel);
            let location = format!("{}/", percent_encoding::utf8_percent_encode(base, HREF));
            let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(resp);
        }
        return listing(&full).await;
    }
    file(full).await
}

pub async fn root(State(state): State<Shared>) -> Result<Response, ApiError> {
    serve(&state, "").await
}

pub async fn path(
    State(state): State<Shared>,
    Path(rel): Path<String>,
) -> Result<Response, ApiError> {
    serve(&state, &rel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.log"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
        assert!(resolve(dir.path(), "sub/a.log").unwrap().is_some());
        assert!(resolve(dir.path(), "").unwrap().is_some());
        assert!(resolve(dir.path(), "../etc/passwd").is_err());
        assert!(resolve(dir.path(), "sub/../../x").is_err());
        assert!(
            resolve(dir.path(), "escape/passwd").unwrap().is_none(),
            "symlink out of the dir"
        );
        assert!(resolve(dir.path(), "missing").unwrap().is_none());
    }
}
