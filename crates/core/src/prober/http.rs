//! httpGet probes and hooks (upstream pkg/probe/http): GET `scheme://host:port/path` with
//! the given headers (default `User-Agent: kube-probe/<version>`, `Accept: */*`; a `Host`
//! header sets the request host). Certificates are not verified. Redirects are followed
//! while they stay on the same host (at most 10); a redirect to another host ends the
//! request and, like any 3xx, counts as success with a warning. 200-399 is success. At most
//! 10 KiB of the body is read.

use std::time::Duration;

use k8s_openapi::api::core::v1::HTTPGetAction;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use super::{KUBE_VERSION, MAX_OUTPUT, Outcome, ProbeError, Target, join_host_port, resolve_port};

pub struct HttpProbe {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
}

/// The URL of an httpGet action (upstream NewRequestForHTTPGetAction / formatURL).
pub fn url_of(action: &HTTPGetAction, target: &Target) -> Result<reqwest::Url, ProbeError> {
    let scheme = action
        .scheme
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("http")
        .to_ascii_lowercase();
    let host = match action.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => target
            .pod_ip
            .clone()
            .ok_or_else(|| ProbeError("the pod has no IP yet".into()))?,
    };
    let port = resolve_port(&action.port, &target.container)?;
    let path = action.path.as_deref().unwrap_or_default();
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let text = format!("{scheme}://{}{path}", join_host_port(&host, port));
    reqwest::Url::parse(&text).map_err(|e| ProbeError(format!("invalid URL {text:?}: {e}")))
}

/// Request headers: the spec's, then the defaults it does not override. An empty
/// `Accept` removes the header.
pub fn headers_of(action: &HTTPGetAction, purpose: &str) -> Result<HeaderMap, ProbeError> {
    let mut headers = HeaderMap::new();
    for h in action.http_headers.iter().flatten() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| ProbeError(format!("invalid header name {:?}: {e}", h.name)))?;
        let value = HeaderValue::from_str(&h.value)
            .map_err(|e| ProbeError(format!("invalid value of header {:?}: {e}", h.name)))?;
        headers.append(name, value);
    }
    if !headers.contains_key(USER_AGENT) {
        let ua = format!("kube-{purpose}/{KUBE_VERSION}");
        if let Ok(v) = HeaderValue::from_str(&ua) {
            headers.insert(USER_AGENT, v);
        }
    }
    match headers.get(ACCEPT) {
        None => {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        Some(v) if v.is_empty() => {
            headers.remove(ACCEPT);
        }
        Some(_) => {}
    }
    Ok(headers)
}

fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first_host = attempt
            .previous()
            .first()
            .and_then(|u| u.host_str())
            .map(str::to_string);
        if attempt.url().host_str().map(str::to_string) != first_host {
            // Another host: stop here and judge the redirect response itself.
            attempt.stop()
        } else if attempt.previous().len() >= 10 {
            attempt.error("stopped after 10 redirects")
        } else {
            attempt.follow()
        }
    })
}

/// A client for one probe: no connection reuse (upstream DisableKeepAlives), no proxy,
/// no certificate checks, the probe timeout for the whole request.
pub fn client(timeout: Duration) -> Result<reqwest::Client, ProbeError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirect_policy())
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .map_err(|e| ProbeError(format!("building HTTP client: {e}")))
}

fn describe(url: &reqwest::Url, err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return format!(
            "Get {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            url.as_str()
        );
    }
    // The innermost causes say what happened ("Connection refused (os error 111)").
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let detail = parts.last().cloned().unwrap_or_else(|| err.to_string());
    format!("Get {:?}: {detail}", url.as_str())
}

impl HttpProbe {
    /// `purpose` is "probe" or "lifecycle" (the user agent's `kube-<purpose>`).
    pub fn new(
        action: &HTTPGetAction,
        target: &Target,
        timeout: Duration,
        purpose: &str,
    ) -> Result<HttpProbe, ProbeError> {
        Ok(HttpProbe {
            client: client(timeout)?,
            url: url_of(action, target)?,
            headers: headers_of(action, purpose)?,
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The response status and at most 10 KiB of its body, or why there was none.
    pub async fn get(&self) -> Result<(u16, String), String> {
        let mut resp = self
            .client
            .get(self.url.clone())
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| describe(&self.url, &e))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while body.len() < MAX_OUTPUT {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                // A body cut short does not change the verdict: the status decides.
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(MAX_OUTPUT);
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    pub async fn run(&self) -> Outcome {
        match self.get().await {
            Err(msg) => Outcome::Failure(msg),
            Ok((code, body)) => judge(code, body),
        }
    }
}

/// 200-299 success, 300-399 success with a warning, anything else failure.
pub fn judge(code: u16, body: String) -> Outcome {
    match code {
        200..=299 => Outcome::Success(body),
        300..=399 => Outcome::Warning(format!("Probe terminated redirects, Response body: {body}")),
        _ => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, HTTPHeader};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn target(ip: &str) -> Target {
        Target {
            container: Container {
                name: "c".into(),
                ..Default::default()
            },
            container_id: "id".into(),
            pod_ip: Some(ip.into()),
        }
    }

    fn action(port: u16, path: &str) -> HTTPGetAction {
        HTTPGetAction {
            port: IntOrString::Int(i32::from(port)),
            path: Some(path.into()),
            ..Default::default()
        }
    }

    #[test]
    fn url_and_default_headers() {
        let mut a = action(8080, "healthz?x=1");
        a.scheme = Some("HTTPS".into());
        assert_eq!(
            url_of(&a, &target("10.0.0.5")).unwrap().as_str(),
            "https://10.0.0.5:8080/healthz?x=1"
        );
        a.host = Some("fd00::2".into());
        assert_eq!(
            url_of(&a, &target("10.0.0.5")).unwrap().as_str(),
            "https://[fd00::2]:8080/healthz?x=1"
        );
        let no_ip = Target {
            pod_ip: None,
            ..target("x")
        };
        assert!(url_of(&action(80, "/"), &no_ip).is_err());

        let h = headers_of(&action(80, "/"), "probe").unwrap();
        assert_eq!(h[USER_AGENT], "kube-probe/1.35");
        assert_eq!(h[ACCEPT], "*/*");
        let mut a = action(80, "/");
        a.http_headers = Some(vec![
            HTTPHeader {
                name: "Accept".into(),
                value: String::new(),
            },
            HTTPHeader {
                name: "X-Custom".into(),
                value: "1".into(),
            },
            HTTPHeader {
                name: "X-Custom".into(),
                value: "2".into(),
            },
        ]);
        let h = headers_of(&a, "lifecycle").unwrap();
        assert!(!h.contains_key(ACCEPT));
        assert_eq!(h.get_all("x-custom").iter().count(), 2);
        assert_eq!(h[USER_AGENT], "kube-lifecycle/1.35");
    }

    #[test]
    fn status_codes() {
        assert!(matches!(judge(200, "ok".into()), Outcome::Success(b) if b == "ok"));
        assert!(matches!(judge(399, String::new()), Outcome::Warning(_)));
        assert_eq!(
            judge(500, String::new()),
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        assert!(!judge(199, String::new()).is_success());
    }

    /// A tiny HTTP server: answers each request with what `respond` returns for its path,
    /// and records the requests.
    async fn server(
        respond: fn(&str, u16) -> String,
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = 0;
                    while let Ok(n) = s.read(&mut buf[got..]).await {
                        if n == 0 {
                            break;
                        }
                        got += n;
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let req = String::from_utf8_lossy(&buf[..got]).into_owned();
                    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                    log.lock().unwrap().push(req);
                    let _ = s.write_all(respond(&path, port).as_bytes()).await;
                });
            }
        });
        (port, seen)
    }

    fn reply(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn redirects_on_the_same_host_are_followed_others_are_warnings() {
        let (port, seen) = server(|path, port| match path {
            "/ok" => reply("200 OK", "", "fine"),
            "/bad" => reply("503 Service Unavailable", "", "no"),
            "/same" => reply("302 Found", "Location: /bad\r\n", ""),
            "/other" => reply(
                "302 Found",
                &format!("Location: http://localhost:{port}/bad\r\n"),
                "",
            ),
            _ => reply("302 Found", "Location: /loop\r\n", ""),
        })
        .await;
        let t = target("127.0.0.1");
        let run = |path: &str| {
            let p =
                HttpProbe::new(&action(port, path), &t, Duration::from_secs(2), "probe").unwrap();
            async move { p.run().await }
        };
        assert_eq!(run("/ok").await, Outcome::Success("fine".into()));
        assert_eq!(
            run("/bad").await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        // Followed on the same host to /bad, which fails.
        assert!(!run("/same").await.is_success());
        // 127.0.0.1 -> localhost is another host: not followed, a warning (success).
        assert!(matches!(run("/other").await, Outcome::Warning(_)));
        // Endless same-host redirects fail after 10.
        let out = run("/loop").await;
        assert!(
            matches!(&out, Outcome::Failure(m) if m.contains("10 redirects")),
            "{out:?}"
        );
        let first = seen.lock().unwrap()[0].to_ascii_lowercase();
        assert!(first.contains("user-agent: kube-probe/1.35"), "{first}");
    }

    #[tokio::test]
    async fn refused_and_timed_out() {
        // A port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = target("127.0.0.1");
        let p = HttpProbe::new(&action(port, "/"), &t, Duration::from_secs(1), "probe").unwrap();
        let out = p.run().await;
        assert!(
            matches!(&out, Outcome::Failure(m) if m.to_lowercase().contains("refused")),
            "{out:?}"
        );
        // Accepts but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let p = HttpProbe::new(&action(port, "/"), &t, Duration::from_secs(1), "probe").unwrap();
        let started = std::time::Instant::now();
        let out = p.run().await;
        assert!(
            matches!(&out, Outcome::Failure(m) if m.contains("deadline exceeded")),
            "{out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(silent);
    }
}
