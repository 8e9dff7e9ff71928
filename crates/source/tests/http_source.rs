//! The URL source against a tiny HTTP/1.1 server on 127.0.0.1 (plain tokio TCP).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubelet_source::annotations::CONFIG_SEEN;
use kubelet_source::http::HttpSource;
use kubelet_source::{SourceError, SourceKind, SourceUpdate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const NODE: &str = "node1";
const DEADLINE: Duration = Duration::from_secs(5);

/// What the server answers, and what it was asked.
#[derive(Default)]
struct State {
    status: u16,
    body: String,
    requests: Vec<String>,
}

struct Server {
    url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(status: u16, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/manifests", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            status,
            body: body.to_string(),
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let (status, body) = {
                        let mut s = shared.lock().unwrap();
                        s.requests.push(String::from_utf8_lossy(&req).into_owned());
                        (s.status, s.body.clone())
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        Server { url, state, task }
    }

    fn set(&self, status: u16, body: &str) {
        let mut s = self.state.lock().unwrap();
        s.status = status;
        s.body = body.to_string();
    }

    fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pod_yaml(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: {image}\n"
    )
}

fn pod_json(name: &str, image: &str) -> String {
    format!(
        r#"{{"metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"{image}"}}]}}}}"#
    )
}

fn pod_list(items: &[String]) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"PodList","items":[{}]}}"#,
        items.join(",")
    )
}

fn names(u: &SourceUpdate) -> Vec<String> {
    u.pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn source(url: &str) -> HttpSource {
    HttpSource::new(
        url.to_string(),
        vec![
            ("X-Token".into(), "secret".into()),
            ("X-Multi".into(), "one".into()),
            ("X-Multi".into(), "two".into()),
        ],
        NODE.into(),
        Duration::from_millis(200),
    )
}

#[tokio::test]
async fn single_pod_with_headers() {
    let server = Server::start(200, &pod_yaml("web", "nginx:1")).await;
    let mut src = source(&server.url);
    let update = src.fetch_once().await.unwrap().expect("a first snapshot");
    assert_eq!(update.source, SourceKind::Http);
    assert_eq!(names(&update), vec!["web-node1"]);
    let ann = update.pods[0].metadata.annotations.as_ref().unwrap();
    assert_eq!(ann["kubernetes.io/config.source"], "http");
    let spec = update.pods[0].spec.as_ref().unwrap();
    assert!(
        spec.tolerations.is_none(),
        "only file pods get the NoExecute toleration"
    );

    let req = server.requests()[0].to_lowercase();
    assert!(req.starts_with("get /manifests "), "{req}");
    assert!(req.contains("x-token: secret"), "{req}");
    assert!(req.contains("x-multi: one"), "{req}");
    assert!(req.contains("x-multi: two"), "{req}");
}

#[tokio::test]
async fn pod_list_and_unchanged_content() {
    let body = pod_list(&[pod_json("a", "nginx:1"), pod_json("b", "nginx:1")]);
    let server = Server::start(200, &body).await;
    let mut src = source(&server.url);
    let first = src.fetch_once().await.unwrap().unwrap();
    assert_eq!(names(&first), vec!["a-node1", "b-node1"]);
    assert!(
        src.fetch_once().await.unwrap().is_none(),
        "same bytes, no snapshot"
    );
    assert_eq!(server.requests().len(), 2);

    // Add a pod: the old ones keep their UID and config.seen.
    server.set(
        200,
        &pod_list(&[
            pod_json("a", "nginx:1"),
            pod_json("b", "nginx:1"),
            pod_json("c", "x"),
        ]),
    );
    let second = src.fetch_once().await.unwrap().unwrap();
    assert_eq!(second.pods.len(), 3);
    for i in 0..2 {
        assert_eq!(second.pods[i].metadata.uid, first.pods[i].metadata.uid);
        assert_eq!(
            second.pods[i].metadata.annotations.as_ref().unwrap()[CONFIG_SEEN],
            first.pods[i].metadata.annotations.as_ref().unwrap()[CONFIG_SEEN]
        );
    }
}

#[tokio::test]
async fn v1_list_is_accepted() {
    let item = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
    let body = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{item}]}}"#);
    let server = Server::start(200, &body).await;
    let update = source(&server.url).fetch_once().await.unwrap().unwrap();
    assert_eq!(names(&update), vec!["a-node1"]);
}

#[tokio::test]
async fn errors_keep_the_last_snapshot() {
    let server = Server::start(200, &pod_yaml("web", "nginx:1")).await;
    let mut src = source(&server.url);
    src.fetch_once().await.unwrap().unwrap();

    server.set(500, "boom");
    match src.fetch_once().await {
        Err(SourceError::Status { status: 500, url }) => assert_eq!(url, server.url),
        other => panic!("expected a status error, got {other:?}"),
    }
    // Back with the same content: nothing to send (the last snapshot still holds).
    server.set(200, &pod_yaml("web", "nginx:1"));
    assert!(src.fetch_once().await.unwrap().is_none());

    // Undecodable content: an error naming the URL, and no snapshot.
    server.set(200, "apiVersion: v1\nkind: Pod\nmetadata: [");
    let e = src.fetch_once().await.unwrap_err().to_string();
    assert!(e.starts_with(&server.url), "{e}");
    assert!(e.contains("invalid YAML"), "{e}");
    // The same broken content again is not re-reported.
    assert!(src.fetch_once().await.unwrap().is_none());
}

#[tokio::test]
async fn invalid_pod_in_a_list_keeps_its_previous_version() {
    let server = Server::start(
        200,
        &pod_list(&[pod_json("a", "nginx:1"), pod_json("b", "nginx:1")]),
    )
    .await;
    let mut src = source(&server.url);
    let first = src.fetch_once().await.unwrap().unwrap();

    // a becomes invalid (no image), b changes, d is new and invalid.
    let broken_a = r#"{"metadata":{"name":"a"},"spec":{"containers":[{"name":"c"}]}}"#.to_string();
    let broken_d = r#"{"metadata":{"name":"d"},"spec":{"containers":[]}}"#.to_string();
    server.set(
        200,
        &pod_list(&[broken_a, pod_json("b", "nginx:2"), broken_d]),
    );
    let second = src.fetch_once().await.unwrap().unwrap();
    assert_eq!(names(&second), vec!["a-node1", "b-node1"]);
    assert_eq!(
        second.pods[0].metadata.uid, first.pods[0].metadata.uid,
        "a kept"
    );
    assert_ne!(
        second.pods[1].metadata.uid, first.pods[1].metadata.uid,
        "b updated"
    );
}

#[tokio::test]
async fn empty_body_is_an_empty_set() {
    let server = Server::start(200, &pod_yaml("web", "nginx:1")).await;
    let mut src = source(&server.url);
    assert_eq!(src.fetch_once().await.unwrap().unwrap().pods.len(), 1);
    server.set(200, "");
    let empty = src.fetch_once().await.unwrap().unwrap();
    assert!(empty.pods.is_empty());
    server.set(200, &pod_yaml("web", "nginx:1"));
    assert_eq!(
        src.fetch_once().await.unwrap().unwrap().pods.len(),
        1,
        "comes back"
    );
}

#[tokio::test]
async fn connection_refused_is_an_http_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    drop(listener);
    let mut src = source(&url);
    assert!(matches!(
        src.fetch_once().await,
        Err(SourceError::Http { .. })
    ));
}

#[tokio::test]
async fn run_polls_sends_changes_and_survives_errors() {
    let server = Server::start(500, "down").await;
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(source(&server.url).run(tx, cancel.clone()));

    // Failing at first: no snapshot is sent, but the loop keeps trying.
    assert!(
        timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err()
    );
    server.set(200, &pod_yaml("web", "nginx:1"));
    let first = timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
    assert_eq!(names(&first), vec!["web-node1"]);

    server.set(200, &pod_yaml("web", "nginx:2"));
    let second = timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
    assert_ne!(second.pods[0].metadata.uid, first.pods[0].metadata.uid);

    cancel.cancel();
    timeout(DEADLINE, task).await.unwrap().unwrap();
}
