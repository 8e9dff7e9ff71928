//! exec, attach, port-forward and run through the kubelet: WebSocket clients speaking
//! the Kubernetes channel protocols (v5/v4), and a SPDY upgrade passed through.

mod support;

use std::time::Duration;

use support::http::*;
use support::*;

const WEB_SCRIPT: &str = "mkdir -p /www && echo hello-from-pod > /www/index.html && httpd -p 8080 -h /www; \
                          i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done";

const CHANNEL_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_attach_port_forward_and_run_through_the_proxy() {
    let mut node = Node::new("api-streams");
    let ports = ApiPorts::new();
    node.write_manifest("web.yaml", &busybox_pod("web", WEB_SCRIPT, ""));
    let flags = ports.flags(&node);
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    let pod = node.pod_name("web");
    node.wait_running(&pod, &["main"]).await;
    wait_listening(ports.secure).await;
    let client = insecure_client();
    // The kubelet's own view must show the container running (exec resolves it there),
    // which can trail the runtime by one relist.
    eventually(
        "container running in the kubelet's /pods",
        DEADLINE,
        || async {
            let (_, body) = get(&client, &ports.https("/pods")).await;
            let list: serde_json::Value = serde_json::from_str(&body).ok()?;
            list["items"]
                .as_array()?
                .iter()
                .any(|p| {
                    p["metadata"]["name"] == pod.as_str()
                        && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
                })
                .then_some(())
        },
    )
    .await;

    // exec over WebSocket: stdout on channel 1, the final status on channel 3.
    let (mut ws, proto) = websocket(
        ports.secure,
        &format!("/exec/default/{pod}/main?command=sh&command=-c&command=echo%20hello%3B%20echo%20oops%201%3E%262&stdout=1&stderr=1"),
        &CHANNEL_PROTOCOLS,
    )
    .await;
    assert!(
        CHANNEL_PROTOCOLS.contains(&proto.as_str()),
        "negotiated {proto:?}"
    );
    let got = read_channels(&mut ws, |g| g.contains_key(&3)).await;
    assert_eq!(
        String::from_utf8_lossy(got.get(&1).map(Vec::as_slice).unwrap_or_default()),
        "hello\n",
        "{got:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(got.get(&2).map(Vec::as_slice).unwrap_or_default()),
        "oops\n",
        "{got:?}"
    );
    let status = String::from_utf8_lossy(&got[&3]).into_owned();
    assert!(status.contains("Success"), "{status}");

    // A failing command reports its exit code in the status.
    let (mut ws, _) = websocket(
        ports.secure,
        &format!("/exec/default/{pod}/main?command=false&stdout=1"),
        &CHANNEL_PROTOCOLS,
    )
    .await;
    let got = read_channels(&mut ws, |g| g.contains_key(&3)).await;
    let status = String::from_utf8_lossy(&got[&3]).into_owned();
    assert!(
        status.contains("Failure") && status.contains("NonZeroExitCode"),
        "{status}"
    );

    // stdin on channel 0 reaches the process (cat echoes it back).
    let (mut ws, _) = websocket(
        ports.secure,
        &format!("/exec/default/{pod}/main?command=cat&stdin=1&stdout=1"),
        &CHANNEL_PROTOCOLS,
    )
    .await;
    send_channel(&mut ws, 0, b"ping\n").await;
    let got = read_channels(&mut ws, |g| {
        g.get(&1).is_some_and(|d| d.ends_with(b"ping\n"))
    })
    .await;
    assert_eq!(
        got.get(&1).map(Vec::as_slice),
        Some(b"ping\n".as_slice()),
        "{got:?}"
    );
    drop(ws);

    // attach: the container's own output arrives on stdout.
    let (mut ws, _) = websocket(
        ports.secure,
        &format!("/attach/default/{pod}/main?stdout=1"),
        &CHANNEL_PROTOCOLS,
    )
    .await;
    let got = read_channels(&mut ws, |g| {
        g.get(&1)
            .is_some_and(|d| String::from_utf8_lossy(d).contains("line "))
    })
    .await;
    assert!(
        String::from_utf8_lossy(got.get(&1).map(Vec::as_slice).unwrap_or_default())
            .contains("line "),
        "{got:?}"
    );
    drop(ws);

    // port-forward over WebSocket: data channel 0, error channel 1, each starting with
    // the port; an HTTP request to the pod's httpd comes back through the tunnel.
    let (mut ws, proto) = websocket(
        ports.secure,
        &format!("/portForward/default/{pod}?port=8080"),
        &["v4.channel.k8s.io"],
    )
    .await;
    assert_eq!(proto, "v4.channel.k8s.io");
    let got = read_channels(&mut ws, |g| g.contains_key(&0) && g.contains_key(&1)).await;
    assert_eq!(
        got.get(&0).map(Vec::as_slice),
        Some(8080u16.to_le_bytes().as_slice()),
        "port prefix: {got:?}"
    );
    send_channel(
        &mut ws,
        0,
        b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let got = read_channels(&mut ws, |g| {
        g.get(&0)
            .is_some_and(|d| String::from_utf8_lossy(d).contains("hello-from-pod"))
    })
    .await;
    let data =
        String::from_utf8_lossy(got.get(&0).map(Vec::as_slice).unwrap_or_default()).into_owned();
    assert!(
        data.contains("200 OK") && data.contains("hello-from-pod"),
        "{data:?}"
    );
    drop(ws);

    // SPDY (kubectl's protocol) passes through: the runtime answers the upgrade.
    let spdy = raw_tls(
        ports.secure,
        &format!(
            "POST /exec/default/{pod}/main?command=true&stdout=1 HTTP/1.1\r\nHost: localhost\r\n\
             Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
             Content-Length: 0\r\n\r\n"
        ),
        Duration::from_secs(10),
    )
    .await;
    assert!(spdy.starts_with("HTTP/1.1 101"), "{spdy}");
    assert!(
        spdy.to_ascii_lowercase().contains("upgrade: spdy/3.1"),
        "{spdy}"
    );
    assert!(
        spdy.to_ascii_lowercase()
            .contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{spdy}"
    );

    // Bad streaming requests.
    let (status, body) = get(
        &client,
        &ports.https(&format!("/exec/default/{pod}/main?command=ls&stdout=1")),
    )
    .await;
    assert_eq!(status, 400, "no upgrade: {body}");
    assert_status(&body, 400, "BadRequest");
    let (status, body) = get(
        &client,
        &ports.https(&format!("/exec/default/{pod}/main?command=ls")),
    )
    .await;
    assert_eq!(status, 400, "no stream: {body}");
    let (status, body) = get(
        &client,
        &ports.https("/exec/default/nope/main?command=ls&stdout=1"),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_status(&body, 404, "NotFound");
    let (status, body) = get(
        &client,
        &ports.https(&format!(
            "/exec/default/{pod}/wrong-uid/main?command=ls&stdout=1"
        )),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(
        &client,
        &ports.https(&format!("/portForward/default/{pod}?port=0")),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // /run: the command's output.
    let resp = client
        .post(ports.https(&format!("/run/default/{pod}/main?cmd=echo%20hi")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hi\n");
    let resp = client
        .post(ports.https(&format!("/run/default/{pod}/main?cmd=false")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);

    node.stop();
    node.purge_runtime().await;
}
