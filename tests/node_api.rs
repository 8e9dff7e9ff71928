//! The node API against the real kubelet binary running real pods on containerd: real
//! HTTP, TLS and WebSocket clients on ports 10250/10255/10248 (free ports per test).

mod support;

use std::time::Duration;

use support::http::*;
use support::*;

/// Prints numbered lines, serves /www on :8080 (busybox httpd).
const WEB_SCRIPT: &str = "mkdir -p /www && echo hello-from-pod > /www/index.html && httpd -p 8080 -h /www; \
                          i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done";

async fn start_web(node: &mut Node, ports: &ApiPorts, extra: &[&str]) -> String {
    node.write_manifest("web.yaml", &busybox_pod("web", WEB_SCRIPT, ""));
    let mut flags = ports.flags(node);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    node.start_with(&flags);
    let pod = node.pod_name("web");
    node.wait_running(&pod, &["main"]).await;
    pod
}

/// Wait until `/pods` on `url` reports the pod Running.
async fn wait_pod_running(client: &reqwest::Client, url: &str, pod: &str) -> serde_json::Value {
    eventually(&format!("{pod} Running in {url}"), DEADLINE, || async {
        let (status, body) = get(client, url).await;
        if status != 200 {
            return None;
        }
        let list = json(&body);
        list["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] == pod && p["status"]["phase"] == "Running")
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_healthz_ports_serve_the_read_only_endpoints() {
    let mut node = Node::new("api-readonly");
    let ports = ApiPorts::new();
    let pod = start_web(&mut node, &ports, &["--enable-server=false"]).await;
    wait_listening(ports.read_only).await;
    wait_listening(ports.healthz).await;
    let client = insecure_client();

    // 10248: plain "ok", as the seed curls it.
    let resp = client.get(ports.healthz_url()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(resp.text().await.unwrap(), "ok");
    let (_, verbose) = get(&client, &ports.read_only_url("/healthz?verbose")).await;
    assert!(
        verbose.contains("[+]syncloop ok") && verbose.ends_with("healthz check passed\n"),
        "{verbose}"
    );
    assert_eq!(
        get(&client, &format!("http://127.0.0.1:{}/pods", ports.healthz))
            .await
            .0,
        404,
        "healthz port serves only /healthz"
    );

    // /pods: a PodList as the API server writes it, the pod with defaults and status.
    let item = wait_pod_running(&client, &ports.read_only_url("/pods"), &pod).await;
    let (_, body) = get(&client, &ports.read_only_url("/pods")).await;
    assert!(
        body.starts_with(r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":["#),
        "{body}"
    );
    assert!(
        item.get("kind").is_none() && item.get("apiVersion").is_none(),
        "items carry no type meta"
    );
    assert_eq!(item["metadata"]["namespace"], "default");
    assert_eq!(
        item["spec"]["containers"][0]["terminationMessagePolicy"],
        "File"
    );
    assert_eq!(item["spec"]["restartPolicy"], "Always");
    let cs = &item["status"]["containerStatuses"][0];
    assert_eq!(cs["name"], "main");
    assert!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
    assert!(
        cs["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://"),
        "{cs}"
    );
    assert!(item["status"]["podIP"].is_string(), "{item}");

    // /spec/: machine facts read from this machine.
    let (status, body) = get(&client, &ports.read_only_url("/spec/")).await;
    assert_eq!(status, 200);
    let spec = json(&body);
    assert_eq!(
        spec["num_cores"],
        std::thread::available_parallelism().unwrap().get()
    );
    assert_eq!(
        spec["machine_id"],
        std::fs::read_to_string("/etc/machine-id").unwrap().trim()
    );
    assert_eq!(
        spec["boot_id"],
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim()
    );
    assert!(spec["memory_capacity"].as_u64().unwrap() > 0);
    for key in [
        "cpu_frequency_khz",
        "hugepages",
        "system_uuid",
        "filesystems",
        "disk_map",
        "network_devices",
        "cloud_provider",
        "instance_type",
        "instance_id",
    ] {
        assert!(spec.get(key).is_some(), "/spec/ lacks {key}: {body}");
    }
    assert!(
        !spec["topology"][0]["cores"].as_array().unwrap().is_empty(),
        "{body}"
    );
    assert_eq!(get(&client, &ports.read_only_url("/spec")).await.0, 200);

    // /stats/summary: node and the pod's container CPU and memory.
    let summary = eventually("pod stats in /stats/summary", DEADLINE, || async {
        let (_, body) = get(&client, &ports.read_only_url("/stats/summary")).await;
        let v = json(&body);
        let p = v["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == pod)?
            .clone();
        let c = &p["containers"][0];
        (c["cpu"]["usageCoreNanoSeconds"].as_u64()? > 0
            && c["memory"]["workingSetBytes"].as_u64()? > 0)
            .then_some(v)
    })
    .await;
    assert_eq!(summary["node"]["nodeName"], node.name.as_str());
    assert!(
        summary["node"]["cpu"]["usageCoreNanoSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        summary["node"]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(summary["node"]["fs"]["capacityBytes"].as_u64().unwrap() > 0);
    let p = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == pod)
        .unwrap();
    assert_eq!(p["podRef"]["namespace"], "default");
    assert!(p["memory"]["workingSetBytes"].as_u64().unwrap() > 0, "{p}");
    assert!(
        p["containers"][0]["logs"]["usedBytes"].as_u64().unwrap() > 0,
        "{p}"
    );
    assert!(p["ephemeral-storage"]["usedBytes"].is_u64(), "{p}");
    let (_, only) = get(
        &client,
        &ports.read_only_url("/stats/summary?only_cpu_and_memory=true"),
    )
    .await;
    let only = json(&only);
    assert!(only["node"].get("fs").is_none() && only["node"]["cpu"].is_object());

    // Metrics with upstream names.
    let (_, metrics) = get(&client, &ports.read_only_url("/metrics")).await;
    for name in [
        "kubelet_running_pods 1",
        "kubelet_running_containers{container_state=\"running\"} 1",
        "kubelet_runtime_operations_total{operation_type=\"run_podsandbox\"}",
        "kubelet_pleg_relist_duration_seconds_count",
        "kubelet_http_requests_total{",
        "kubelet_pod_start_duration_seconds_count 1",
        &format!("kubelet_node_name{{node=\"{}\"}} 1", node.name),
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    let (_, resource) = get(&client, &ports.read_only_url("/metrics/resource")).await;
    let series = format!(
        "container_cpu_usage_seconds_total{{container=\"main\",namespace=\"default\",pod=\"{pod}\"}}"
    );
    assert!(resource.contains(&series), "{resource}");
    assert!(
        resource.contains("node_memory_working_set_bytes ")
            && resource.contains("resource_scrape_error 0"),
        "{resource}"
    );
    let (status, probes) = get(&client, &ports.read_only_url("/metrics/probes")).await;
    assert!(
        status == 200 && probes.contains("process_start_time_seconds"),
        "{probes}"
    );

    // Debugging endpoints are not on the read-only port.
    for path in [
        format!("/containerLogs/default/{pod}/main"),
        format!("/exec/default/{pod}/main"),
        "/runningpods/".into(),
        "/logs/".into(),
    ] {
        let (status, body) = get(&client, &ports.read_only_url(&path)).await;
        assert_eq!(status, 405, "{path}: {body}");
        assert_status(&body, 405, "MethodNotAllowed");
    }
    assert_eq!(get(&client, &ports.read_only_url("/configz")).await.0, 404);

    // --enable-server=false: nothing on the HTTPS port.
    assert!(
        connect_refused(ports.secure).await,
        "port {} must be closed",
        ports.secure
    );

    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_set_to_zero_are_not_served() {
    // Everything off: the kubelet runs pods and listens on no TCP port at all.
    let mut node = Node::new("api-off");
    node.write_manifest("web.yaml", &busybox_pod("web", "sleep 3600", ""));
    node.start_with(&[
        "--enable-server=false",
        "--read-only-port=0",
        "--healthz-port=0",
    ]);
    node.wait_running(&node.pod_name("web"), &["main"]).await;
    assert_eq!(listening_ports(&node), Vec::<u16>::new());
    node.stop();

    // Each port on its own flag.
    let ports = ApiPorts::new();
    let mut flags = ports.flags(&node);
    flags.retain(|f| !f.starts_with("--enable-server"));
    flags.push("--enable-server=false".into());
    node.start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    wait_listening(ports.read_only).await;
    wait_listening(ports.healthz).await;
    let mut expected = vec![ports.read_only, ports.healthz];
    expected.sort_unstable();
    assert_eq!(
        listening_ports(&node),
        expected,
        "no HTTPS port with --enable-server=false"
    );
    node.stop();
    node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_container_logs_runningpods_configz_and_node_logs() {
    let mut node = Node::new("api-https");
    let ports = ApiPorts::new();
    let pod = start_web(&mut node, &ports, &[]).await;
    wait_listening(ports.secure).await;
    let client = insecure_client();
    wait_pod_running(&client, &ports.https("/pods"), &pod).await;
    let logs = |q: &str| ports.https(&format!("/containerLogs/default/{pod}/main{q}"));
    eventually("ten log lines", DEADLINE, || async {
        let (_, body) = get(&client, &logs("")).await;
        (body.lines().count() >= 10).then_some(())
    })
    .await;

    // Every log option.
    let (status, all) = get(&client, &logs("")).await;
    assert_eq!(status, 200);
    assert!(all.starts_with("line 0\nline 1\n"), "{all}");
    let (_, tail) = get(&client, &logs("?tailLines=3")).await;
    assert_eq!(tail.lines().count(), 3, "{tail}");
    assert!(tail.lines().all(|l| l.starts_with("line ")), "{tail}");
    let (_, limited) = get(&client, &logs("?limitBytes=7")).await;
    assert_eq!(limited, "line 0\n");
    let (_, stamped) = get(&client, &logs("?tailLines=2&timestamps=true")).await;
    for line in stamped.lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(chrono_like(ts), "timestamp {ts:?} in {line:?}");
        assert!(rest.starts_with("line "), "{line}");
    }
    let (_, future) = get(&client, &logs("?sinceTime=2999-01-01T00:00:00Z")).await;
    assert_eq!(future, "");
    let (_, recent) = get(&client, &logs("?sinceSeconds=1")).await;
    let (_, everything) = get(&client, &logs("")).await;
    assert!(
        recent.lines().count() < everything.lines().count(),
        "sinceSeconds=1 keeps only the last second"
    );
    let (_, tail_alias) = get(&client, &logs("?tail=1")).await;
    assert_eq!(tail_alias.lines().count(), 1);

    // follow: the body keeps growing with lines written after the request.
    let last_before: u64 = everything
        .lines()
        .last()
        .unwrap()
        .trim_start_matches("line ")
        .parse()
        .unwrap();
    let mut resp = client
        .get(logs("?follow=true&tailLines=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut followed = String::new();
    let newer = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            followed.push_str(&String::from_utf8_lossy(&chunk));
            if followed
                .lines()
                .filter_map(|l| l.strip_prefix("line ")?.parse::<u64>().ok())
                .any(|n| n > last_before + 3)
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        newer,
        Ok(true),
        "follow did not stream new lines: {followed:?}"
    );
    drop(resp);

    // Bad requests: upstream codes, Status bodies.
    let (status, body) = get(&client, &logs("?previous=true")).await;
    assert_eq!(status, 400, "{body}");
    assert_status(&body, 400, "BadRequest");
    for (q, code, reason) in [
        ("?tailLines=abc", 400, "BadRequest"),
        ("?tailLines=99999999999999999999999", 400, "BadRequest"),
        ("?sinceTime=yesterday", 400, "BadRequest"),
        ("?tailLines=-1", 422, "Invalid"),
        ("?limitBytes=0", 422, "Invalid"),
        (
            "?sinceSeconds=1&sinceTime=2020-01-01T00:00:00Z",
            422,
            "Invalid",
        ),
    ] {
        let (status, body) = get(&client, &logs(q)).await;
        assert_eq!(status, code, "{q}: {body}");
        assert_status(&body, code, reason);
    }
    let (_, huge) = get(&client, &logs("?tailLines=9223372036854775807")).await;
    assert!(
        huge.starts_with("line 0\n"),
        "a huge tailLines is the whole log"
    );
    let (status, body) = get(&client, &ports.https("/containerLogs/default/nope/main")).await;
    assert_eq!(status, 404);
    assert!(
        assert_status(&body, 404, "NotFound")["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    let (status, body) = get(
        &client,
        &ports.https(&format!("/containerLogs/default/{pod}/other")),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // /runningpods/ and /configz.
    let (_, running) = get(&client, &ports.https("/runningpods/")).await;
    let running = json(&running);
    let rp = running["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == pod)
        .expect("pod in /runningpods/");
    assert_eq!(rp["spec"]["containers"][0]["name"], "main");
    let (_, configz) = get(&client, &ports.https("/configz")).await;
    let configz = json(&configz);
    assert_eq!(configz["kubeletconfig"]["port"], ports.secure);
    assert_eq!(
        configz["kubeletconfig"]["staticPodPath"],
        node.manifests.display().to_string()
    );
    assert!(configz["kubeletconfig"].get("kind").is_none());

    // /logs/: the node log directory, no way out of it.
    let (status, listing) = get(&client, &ports.https("/logs/")).await;
    assert_eq!(status, 200);
    assert!(listing.contains("<pre>"), "{listing}");
    let escape = raw_tls(
        ports.secure,
        "GET /logs/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(escape.starts_with("HTTP/1.1 400"), "{escape}");
    assert!(!escape.contains("root:"), "{escape}");
    assert_eq!(
        get(&client, &ports.https("/logs/no-such-file")).await.0,
        404
    );
    assert_eq!(get(&client, &ports.https("/no/such/endpoint")).await.0, 404);

    // The self-signed certificate is generated once and reused after a restart.
    let crt = cert_dir(&node).join("kubelet.crt");
    let first = std::fs::read(&crt).expect("kubelet.crt generated");
    assert!(cert_dir(&node).join("kubelet.key").exists());
    let served = served_certificate(ports.secure).await;
    assert_eq!(
        served,
        pem_first_cert(&first),
        "the HTTPS port serves kubelet.crt"
    );
    node.stop();
    let mut flags = ports.flags(&node);
    flags.push("--v=2".into());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    node.start_with(&flags);
    wait_listening(ports.secure).await;
    assert_eq!(
        std::fs::read(&crt).unwrap(),
        first,
        "certificate reused, not regenerated"
    );
    assert_eq!(served_certificate(ports.secure).await, served);

    node.stop();
    node.purge_runtime().await;
}

fn chrono_like(ts: &str) -> bool {
    // 2024-01-02T03:04:05.123456789Z
    ts.len() == 30 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z') && ts.as_bytes()[19] == b'.'
}

fn pem_first_cert(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .next()
        .expect("a certificate")
        .expect("PEM")
        .to_vec()
}
