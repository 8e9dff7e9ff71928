//! Container lifecycle against the real containerd with busybox: init containers,
//! sidecars, probes, hooks, termination and pod status. Status is read from `/pods` on
//! the read-only port; what containers did is read from files they write to a hostPath.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use kubelet_core::runtime::labels;
use serde_json::Value;
use support::http::*;
use support::*;

/// A node whose kubelet serves `/pods` on a read-only port.
struct Lab {
    node: Node,
    ports: ApiPorts,
    client: reqwest::Client,
    marks: PathBuf,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let node = Node::new(test);
        let marks = node.dir.path().join("marks");
        std::fs::create_dir_all(&marks).unwrap();
        Lab {
            node,
            ports: ApiPorts::new(),
            client: insecure_client(),
            marks,
        }
    }

    fn start(&mut self) {
        let mut flags = self.ports.flags(&self.node);
        flags.push("--enable-server=false".into());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.node.start_with(&flags);
    }

    /// A pod manifest: `spec` is the YAML under `spec:` (indented two spaces), with the
    /// marks hostPath volume and `volumes` (list items) added.
    fn manifest(&self, name: &str, spec: &str, volumes: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{spec}  volumes:\n  - name: marks\n    hostPath: {{path: {}}}\n{volumes}",
            self.marks.display()
        )
    }

    fn write(&self, name: &str, spec: &str) {
        self.write_with_volumes(name, spec, "");
    }

    fn write_with_volumes(&self, name: &str, spec: &str, volumes: &str) {
        self.node
            .write_manifest(&format!("{name}.yaml"), &self.manifest(name, spec, volumes));
    }

    fn mark(&self, file: &str) -> String {
        std::fs::read_to_string(self.marks.join(file)).unwrap_or_default()
    }

    /// Wait until the marks file `file` reads `want`: a container's status can show it
    /// running a moment before its first command has written anything.
    async fn wait_mark(&self, file: &str, want: &str) {
        let started = Instant::now();
        loop {
            let have = self.mark(file);
            if have == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "marks/{file} is {have:?}, expected {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How long ago `file` in the marks dir was last written (its mtime): when a container
    /// did something, independent of how late the test's polling noticed it.
    fn mark_age(&self, file: &str) -> Option<Duration> {
        let written = std::fs::metadata(self.marks.join(file))
            .ok()?
            .modified()
            .ok()?;
        Some(
            SystemTime::now()
                .duration_since(written)
                .unwrap_or_default(),
        )
    }

    /// The pod's status from `/pods`, if it is listed.
    async fn status(&self, name: &str) -> Option<Value> {
        let pod = self.node.pod_name(name);
        let resp = self
            .client
            .get(self.ports.read_only_url("/pods"))
            .send()
            .await
            .ok()?;
        let list: Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
        list["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] == pod.as_str())
            .map(|p| p["status"].clone())
    }

    /// Wait until the pod's status satisfies `check`; returns it.
    async fn wait_status(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Duration::from_secs(90);
        let started = Instant::now();
        let mut last = Value::Null;
        loop {
            if let Some(s) = self.status(name).await {
                if check(&s) {
                    return s;
                }
                last = s;
            }
            if started.elapsed() > deadline {
                panic!(
                    "timed out waiting for pod {name}: {what}\nlast status: {}\nkubelet log:\n{}",
                    serde_json::to_string_pretty(&last).unwrap_or_default(),
                    tail(&self.node.logs(), 150)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Containers of pod `name` in the runtime (any state), by container name.
    async fn runtime_containers(&self, name: &str) -> Vec<k8s_cri::v1::Container> {
        let pod = self.node.pod_name(name);
        self.node
            .containers()
            .await
            .into_iter()
            .filter(|c| c.labels.get(labels::POD_NAME).map(String::as_str) == Some(&pod))
            .collect()
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn statuses<'a>(status: &'a Value, list: &str) -> &'a [Value] {
    status[list].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A container status by list (`containerStatuses`, `initContainerStatuses`) and name.
fn cstatus<'a>(status: &'a Value, list: &str, name: &str) -> &'a Value {
    statuses(status, list)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or(&Value::Null)
}

fn main_status<'a>(status: &'a Value, name: &str) -> &'a Value {
    cstatus(status, "containerStatuses", name)
}

fn condition<'a>(status: &'a Value, kind: &str) -> &'a Value {
    statuses(status, "conditions")
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or(&Value::Null)
}

fn phase(status: &Value) -> &str {
    status["phase"].as_str().unwrap_or_default()
}

fn waiting_reason(c: &Value) -> &str {
    c["state"]["waiting"]["reason"].as_str().unwrap_or_default()
}

fn is_running(c: &Value) -> bool {
    c["state"]["running"].is_object()
}

fn volume() -> &'static str {
    "    volumeMounts: [{name: marks, mountPath: /marks}]\n"
}

/// A busybox container running `script` with the marks volume, plus `extra` YAML lines.
fn container(name: &str, script: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    image: busybox\n    command: [\"/bin/sh\", \"-c\", {script:?}]\n{}{extra}",
        volume()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_in_order_and_report_progress() {
    let mut lab = Lab::new("lc-init");
    lab.write(
        "init",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  initContainers:\n{}{}  containers:\n{}",
            container("first", "echo first >> /marks/order; sleep 3", ""),
            container("second", "echo second >> /marks/order", ""),
            container("main", "echo main >> /marks/order; sleep 3600", ""),
        ),
    );
    lab.start();

    // While the first init container runs: Pending, Init 0/2, main waits.
    let s = lab
        .wait_status("init", "first init container running", |s| {
            is_running(cstatus(s, "initContainerStatuses", "first"))
        })
        .await;
    assert_eq!(phase(&s), "Pending", "{s:#}");
    let init = condition(&s, "Initialized");
    assert_eq!(init["status"], "False");
    assert_eq!(init["reason"], "ContainersNotInitialized");
    assert_eq!(
        init["message"],
        "containers with incomplete status: [first second]"
    );
    assert_eq!(
        waiting_reason(cstatus(&s, "initContainerStatuses", "second")),
        "PodInitializing"
    );
    assert_eq!(waiting_reason(main_status(&s, "main")), "PodInitializing");

    // Then all of them, in order, each to success, and main runs.
    let s = lab
        .wait_status("init", "main running", |s| {
            phase(s) == "Running" && is_running(main_status(s, "main"))
        })
        .await;
    lab.wait_mark("order", "first\nsecond\nmain\n").await;
    for name in ["first", "second"] {
        let c = cstatus(&s, "initContainerStatuses", name);
        assert_eq!(c["state"]["terminated"]["reason"], "Completed", "{c:#}");
        assert_eq!(c["state"]["terminated"]["exitCode"], 0);
        assert_eq!(c["ready"], true);
        assert_eq!(c["started"], false);
    }
    for kind in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert_eq!(condition(&s, kind)["status"], "True", "{kind}: {s:#}");
    }
    let main = main_status(&s, "main");
    assert_eq!(
        (main["ready"].clone(), main["started"].clone()),
        (true.into(), true.into())
    );
    assert!(s["startTime"].is_string(), "{s:#}");

    // The main container dies: it restarts, the init containers do not run again.
    let id = lab.node.running(&lab.node.pod_name("init")).await["main"]
        .id
        .clone();
    cri().stop_container(&id, 0).await.unwrap();
    let s = lab
        .wait_status("init", "main restarted", |s| {
            main_status(s, "main")["restartCount"] == 1 && is_running(main_status(s, "main"))
        })
        .await;
    assert_eq!(
        main_status(&s, "main")["lastState"]["terminated"]["exitCode"],
        137
    );
    lab.wait_mark("order", "first\nsecond\nmain\nmain\n").await;
    lab.node.remove_manifest("init.yaml");
    lab.node.wait_no_sandboxes().await;
    lab.node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_init_containers_fail_the_pod_or_retry_per_policy() {
    let mut lab = Lab::new("lc-initfail");
    let spec = |policy: &str| {
        format!(
            "  restartPolicy: {policy}\n  terminationGracePeriodSeconds: 2\n  initContainers:\n{}  containers:\n{}",
            container("setup", "exit 1", ""),
            container("main", "sleep 3600", ""),
        )
    };
    lab.write("never", &spec("Never"));
    lab.write("onfailure", &spec("OnFailure"));
    lab.start();

    let s = lab
        .wait_status("never", "phase Failed", |s| phase(s) == "Failed")
        .await;
    let setup = cstatus(&s, "initContainerStatuses", "setup");
    assert_eq!(setup["state"]["terminated"]["exitCode"], 1, "{s:#}");
    assert_eq!(setup["state"]["terminated"]["reason"], "Error");
    assert_eq!(condition(&s, "Initialized")["status"], "False");
    assert_eq!(condition(&s, "Ready")["reason"], "PodFailed");

    let s = lab
        .wait_status("onfailure", "init container retried", |s| {
            cstatus(s, "initContainerStatuses", "setup")["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 1)
        })
        .await;
    assert_eq!(phase(&s), "Pending", "{s:#}");
    // The main containers never ran in either pod.
    for pod in ["never", "onfailure"] {
        assert!(
            lab.runtime_containers(pod)
                .await
                .iter()
                .all(|c| c.labels[labels::CONTAINER_NAME] != "main"),
            "{pod}: main must not start"
        );
    }
    // Back-off between retries: the retried init container waits.
    lab.wait_status("onfailure", "init container in CrashLoopBackOff", |s| {
        waiting_reason(cstatus(s, "initContainerStatuses", "setup")) == "CrashLoopBackOff"
    })
    .await;
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_start_first_keep_running_and_stop_last() {
    let mut lab = Lab::new("lc-sidecar");
    let sidecar = |file: &str| {
        container(
            "side",
            &format!(
                "echo side-start >> /marks/{file}; trap 'echo side-term >> /marks/{file}; exit 0' TERM; while true; do sleep 0.2; done"
            ),
            "    restartPolicy: Always\n",
        )
    };
    // Never: main finishes, then the sidecar is stopped and the pod succeeds.
    lab.write(
        "job",
        &format!(
            "  restartPolicy: Never\n  terminationGracePeriodSeconds: 5\n  initContainers:\n{}  containers:\n{}",
            sidecar("job"),
            container(
                "main",
                "echo main-start >> /marks/job; sleep 2; echo main-done >> /marks/job",
                ""
            ),
        ),
    );
    // Always: a sidecar that keeps dying is restarted while main runs on.
    lab.write(
        "flaky",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  initContainers:\n{}  containers:\n{}",
            container("side", "sleep 1; exit 1", "    restartPolicy: Always\n"),
            container("main", "sleep 3600", ""),
        ),
    );
    // Teardown: main stops first, the sidecar after it.
    lab.write(
        "service",
        &format!(
            "  terminationGracePeriodSeconds: 10\n  initContainers:\n{}  containers:\n{}",
            sidecar("service"),
            container(
                "main",
                "trap 'sleep 1; echo main-term >> /marks/service; exit 0' TERM; while true; do sleep 0.2; done",
                ""
            ),
        ),
    );
    lab.start();

    let s = lab
        .wait_status("job", "phase Succeeded", |s| phase(s) == "Succeeded")
        .await;
    assert_eq!(
        lab.mark("job"),
        "side-start\nmain-start\nmain-done\nside-term\n"
    );
    let side = cstatus(&s, "initContainerStatuses", "side");
    assert!(side["state"]["terminated"].is_object(), "{s:#}");
    assert_eq!(
        main_status(&s, "main")["state"]["terminated"]["exitCode"],
        0
    );
    assert_eq!(condition(&s, "Ready")["reason"], "PodCompleted");

    let main_id = lab
        .node
        .wait_running(&lab.node.pod_name("flaky"), &["main"])
        .await["main"]
        .id
        .clone();
    let s = lab
        .wait_status("flaky", "sidecar restarted twice", |s| {
            cstatus(s, "initContainerStatuses", "side")["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 2)
        })
        .await;
    assert_eq!(phase(&s), "Running", "{s:#}");
    assert!(is_running(main_status(&s, "main")));
    assert_eq!(main_status(&s, "main")["restartCount"], 0);
    assert_eq!(
        lab.node.running(&lab.node.pod_name("flaky")).await["main"].id,
        main_id,
        "main keeps running while its sidecar restarts"
    );

    let s = lab
        .wait_status("service", "running and ready", |s| {
            condition(s, "Ready")["status"] == "True"
        })
        .await;
    assert_eq!(
        cstatus(&s, "initContainerStatuses", "side")["started"],
        true
    );
    lab.node.remove_manifest("service.yaml");
    eventually("service pod stopped", DEADLINE, || async {
        lab.runtime_containers("service")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert_eq!(lab.mark("service"), "side-start\nmain-term\nside-term\n");
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probes_drive_ready_and_the_pod_conditions() {
    let mut lab = Lab::new("lc-ready");
    lab.write(
        "web",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}{}",
            container(
                "web",
                "mkdir -p /www && echo hi > /www/index.html && httpd -f -p 8080 -h /www",
                "    ports: [{name: http, containerPort: 8080}]\n    readinessProbe:\n      httpGet: {path: /ready.html, port: http, httpHeaders: [{name: X-Probe, value: yes}]}\n      periodSeconds: 1\n      failureThreshold: 1\n"
            ),
            container(
                "tcp",
                "sleep 3; mkdir -p /t; httpd -f -p 9090 -h /t",
                "    readinessProbe:\n      tcpSocket: {port: 9090}\n      periodSeconds: 1\n"
            ),
        ),
    );
    lab.start();
    let s = lab
        .wait_status("web", "both running", |s| {
            is_running(main_status(s, "web")) && is_running(main_status(s, "tcp"))
        })
        .await;
    assert_eq!(main_status(&s, "web")["ready"], false, "{s:#}");
    assert_eq!(phase(&s), "Running");
    let ready = condition(&s, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ContainersNotReady");

    // The tcp container's port opens after 3 s: it becomes ready; web still is not.
    let s = lab
        .wait_status("web", "tcp ready", |s| {
            main_status(s, "tcp")["ready"] == true
        })
        .await;
    assert_eq!(main_status(&s, "web")["ready"], false);
    assert_eq!(
        condition(&s, "ContainersReady")["message"],
        "containers with unready status: [web]"
    );

    // Serve the readiness page: web becomes ready, and so does the pod.
    let pod = lab.node.pod_name("web");
    let web = lab.node.running(&pod).await["web"].id.clone();
    assert_eq!(exec(&web, "echo ok > /www/ready.html").await.0, 0);
    let s = lab
        .wait_status("web", "pod Ready", |s| {
            condition(s, "Ready")["status"] == "True"
        })
        .await;
    assert_eq!(condition(&s, "ContainersReady")["status"], "True");
    assert_eq!(main_status(&s, "web")["ready"], true);

    // Take it away: not ready again (failureThreshold 1), never restarted.
    assert_eq!(exec(&web, "rm /www/ready.html").await.0, 0);
    let s = lab
        .wait_status("web", "pod not Ready again", |s| {
            condition(s, "Ready")["status"] == "False"
        })
        .await;
    assert_eq!(main_status(&s, "web")["restartCount"], 0);
    assert_eq!(lab.node.running(&pod).await["web"].id, web);
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_liveness_restarts_the_container_within_the_probe_grace_period() {
    let mut lab = Lab::new("lc-live");
    // sh as PID 1 ignores SIGTERM: only SIGKILL ends it, after the probe's 2 s grace
    // period, not the pod's 120 s.
    lab.write(
        "live",
        &format!(
            "  terminationGracePeriodSeconds: 120\n  containers:\n{}",
            container(
                "main",
                "echo start >> /marks/live; touch /tmp/alive; sleep 3; rm /tmp/alive; while true; do sleep 1; done",
                "    livenessProbe:\n      exec: {command: [cat, /tmp/alive]}\n      periodSeconds: 1\n      failureThreshold: 2\n      terminationGracePeriodSeconds: 2\n"
            ),
        ),
    );
    lab.start();
    lab.wait_status("live", "running", |s| is_running(main_status(s, "main")))
        .await;
    let started = Instant::now();
    let s = lab
        .wait_status("live", "restarted after failing liveness", |s| {
            main_status(s, "main")["restartCount"] == 1 && is_running(main_status(s, "main"))
        })
        .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "killed with the probe's grace period: {took:?}"
    );
    let last = &main_status(&s, "main")["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{s:#}");
    assert_eq!(last["reason"], "Error");
    lab.wait_mark("live", "start\nstart\n").await;
    assert!(
        lab.node.logs().contains("failed liveness probe"),
        "the kill reason is logged"
    );
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_probes_gate_liveness_and_readiness() {
    let mut lab = Lab::new("lc-startup");
    lab.write(
        "slow",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "sleep 4; touch /tmp/started; while true; do sleep 1; done",
                "    startupProbe:\n      exec: {command: [cat, /tmp/started]}\n      periodSeconds: 1\n      failureThreshold: 30\n    livenessProbe:\n      exec: {command: [cat, /tmp/started]}\n      periodSeconds: 1\n      failureThreshold: 1\n    readinessProbe:\n      exec: {command: [cat, /tmp/started]}\n      periodSeconds: 1\n"
            ),
        ),
    );
    lab.write(
        "never-starts",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "while true; do sleep 1; done",
                "    startupProbe:\n      exec: {command: [\"false\"]}\n      periodSeconds: 1\n      failureThreshold: 2\n"
            ),
        ),
    );
    lab.start();
    let s = lab
        .wait_status("slow", "running", |s| is_running(main_status(s, "main")))
        .await;
    let main = main_status(&s, "main");
    assert_eq!(main["started"], false, "{s:#}");
    assert_eq!(main["ready"], false);
    // Liveness would fail before the file exists, but waits for startup.
    let s = lab
        .wait_status("slow", "started and ready", |s| {
            main_status(s, "main")["started"] == true && main_status(s, "main")["ready"] == true
        })
        .await;
    assert_eq!(main_status(&s, "main")["restartCount"], 0, "{s:#}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = lab.status("slow").await.unwrap();
    assert_eq!(main_status(&s, "main")["restartCount"], 0, "{s:#}");

    // A startup probe that never passes kills the container, which restarts.
    let s = lab
        .wait_status("never-starts", "restarted", |s| {
            main_status(s, "main")["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 1)
        })
        .await;
    assert_eq!(main_status(&s, "main")["started"], false, "{s:#}");
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_probes_speak_the_health_checking_protocol() {
    // A health server on the host, reached from the pod IP through a busybox nc relay
    // to the pod's gateway (the node).
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("good", tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("bad", tonic_health::ServingStatus::NotServing)
        .await;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let incoming = futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    });
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    let mut lab = Lab::new("lc-grpc");
    let probe = |service: &str| {
        format!(
            "    readinessProbe:\n      grpc: {{port: 9000, service: {service}}}\n      periodSeconds: 1\n      failureThreshold: 1\n"
        )
    };
    lab.write(
        "grpc",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}{}",
            container(
                "good",
                &format!(
                    "gw=$(ip route | awk '/default/ {{print $3}}'); exec nc -ll -p 9000 -e nc $gw {port}"
                ),
                &probe("good")
            ),
            container("bad", "while true; do sleep 1; done", &probe("bad")),
        ),
    );
    lab.start();
    let s = lab
        .wait_status("grpc", "good ready", |s| {
            main_status(s, "good")["ready"] == true
        })
        .await;
    assert_eq!(main_status(&s, "bad")["ready"], false, "{s:#}");
    assert_eq!(
        condition(&s, "Ready")["message"],
        "containers with unready status: [bad]"
    );
    // The server goes away: the good one is no longer ready either.
    server.abort();
    let _ = server.await;
    lab.wait_status("grpc", "good unready", |s| {
        main_status(s, "good")["ready"] == false
    })
    .await;
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_start_and_pre_stop_hooks() {
    let mut lab = Lab::new("lc-hooks");
    let hook_server = ManifestServer::start("ok").await;
    let hook_port = hook_server
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // postStart exec holds the container out of Running until it returns; postStart
    // httpGet reaches a host address; preStop runs before the stop signal.
    lab.write(
        "hooks",
        &format!(
            "  terminationGracePeriodSeconds: 10\n  containers:\n{}{}",
            container(
                "main",
                "trap 'echo term >> /marks/stop; exit 0' TERM; echo main >> /marks/start; while true; do sleep 0.2; done",
                "    lifecycle:\n      postStart:\n        exec: {command: [sh, -c, \"sleep 3; echo post >> /marks/start\"]}\n      preStop:\n        exec: {command: [sh, -c, \"echo prestop >> /marks/stop; sleep 1\"]}\n"
            ),
            container(
                "web",
                "trap 'exit 0' TERM; while true; do sleep 0.2; done",
                &format!(
                    "    lifecycle:\n      postStart:\n        httpGet: {{host: 127.0.0.1, port: {hook_port}, path: /hook}}\n      preStop:\n        sleep: {{seconds: 3}}\n"
                )
            ),
        ),
    );
    // A failing postStart hook kills the container, which is restarted.
    lab.write(
        "badhook",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "while true; do sleep 1; done",
                "    lifecycle:\n      postStart:\n        exec: {command: [sh, -c, \"exit 7\"]}\n"
            ),
        ),
    );
    lab.start();

    // The container runs (it wrote "main") but its hook has not returned: not Running.
    eventually("main container started", DEADLINE, || async {
        lab.mark("start").contains("main").then_some(())
    })
    .await;
    if !lab.mark("start").contains("post") {
        let s = lab.status("hooks").await.unwrap_or_default();
        assert!(
            !is_running(main_status(&s, "main")),
            "not Running while postStart runs: {s:#}"
        );
    }
    let s = lab
        .wait_status("hooks", "both running", |s| {
            is_running(main_status(s, "main")) && is_running(main_status(s, "web"))
        })
        .await;
    assert_eq!(lab.mark("start"), "main\npost\n", "{s:#}");
    let requests = hook_server.requests.lock().unwrap().clone();
    let hook = requests
        .iter()
        .find(|r| r.starts_with("GET /hook "))
        .unwrap_or_else(|| panic!("no postStart request: {requests:?}"));
    assert!(
        hook.to_ascii_lowercase()
            .contains("user-agent: kube-lifecycle/1.35"),
        "{hook}"
    );

    let s = lab
        .wait_status("badhook", "restarted after the failed hook", |s| {
            main_status(s, "main")["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 1)
                && matches!(
                    waiting_reason(main_status(s, "main")),
                    "PostStartHookError" | "CrashLoopBackOff"
                )
        })
        .await;
    let main = main_status(&s, "main");
    assert!(main["lastState"]["terminated"].is_object(), "{s:#}");
    assert!(lab.node.logs().contains("FailedPostStartHook"));

    // Removal: preStop first, then SIGTERM; the sleep hook holds web for 3 s.
    let removed = Instant::now();
    lab.node.remove_manifest("hooks.yaml");
    eventually("hooks pod stopped", DEADLINE, || async {
        lab.runtime_containers("hooks")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(
        removed.elapsed() >= Duration::from_secs(3),
        "the preStop sleep runs before the stop signal: {:?}",
        removed.elapsed()
    );
    assert_eq!(lab.mark("stop"), "prestop\nterm\n");
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_messages_and_reasons() {
    let mut lab = Lab::new("lc-term");
    let one = |script: &str, extra: &str| {
        format!(
            "  restartPolicy: Never\n  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container("main", script, extra)
        )
    };
    lab.write(
        "file",
        &one("printf bye > /dev/termination-log; exit 3", ""),
    );
    lab.write(
        "path",
        &one(
            "printf done > /tmp/done",
            "    terminationMessagePath: /tmp/done\n",
        ),
    );
    lab.write(
        "logs",
        &one(
            "i=1; while [ $i -le 100 ]; do echo line $i; i=$((i+1)); done; exit 1",
            "    terminationMessagePolicy: FallbackToLogsOnError\n",
        ),
    );
    lab.write(
        "big",
        &one(
            "head -c 5000 /dev/zero | tr '\\0' x > /dev/termination-log; printf END >> /dev/termination-log",
            "",
        ),
    );
    lab.write(
        "oom",
        &one(
            "head -c 300m /dev/zero | tail",
            "    resources: {limits: {memory: 20Mi}}\n",
        ),
    );
    lab.write(
        "cannotrun",
        "  restartPolicy: Never\n  containers:\n  - name: main\n    image: busybox\n    command: [/does-not-exist]\n    terminationMessagePolicy: FallbackToLogsOnError\n",
    );
    lab.start();
    let terminated = |s: &Value| main_status(s, "main")["state"]["terminated"].clone();

    let done = |s: &Value| matches!(phase(s), "Succeeded" | "Failed");

    let s = lab.wait_status("file", "finished", done).await;
    assert_eq!(phase(&s), "Failed");
    let t = terminated(&s);
    assert_eq!(
        (t["exitCode"].clone(), t["reason"].clone()),
        (3.into(), "Error".into()),
        "{s:#}"
    );
    assert_eq!(t["message"], "bye");

    let s = lab.wait_status("path", "finished", done).await;
    assert_eq!(phase(&s), "Succeeded");
    let t = terminated(&s);
    assert_eq!(t["reason"], "Completed", "{s:#}");
    assert_eq!(t["message"], "done");

    let s = lab.wait_status("logs", "finished", done).await;
    let t = terminated(&s);
    let msg = t["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("line 21\n") && msg.ends_with("line 100\n"),
        "last 80 lines: {msg:?}"
    );

    let s = lab.wait_status("big", "finished", done).await;
    let msg = terminated(&s)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(msg.len(), 4096, "at most 4096 bytes");
    assert!(msg.ends_with("xEND"), "the end of the file is kept");

    let s = lab.wait_status("oom", "finished", done).await;
    let t = terminated(&s);
    assert_eq!(t["reason"], "OOMKilled", "{s:#}");
    assert_eq!(t["exitCode"], 137);
    assert_eq!(phase(&s), "Failed");

    // A command that cannot run: containerd's reason is StartError, exit code 128 (what
    // docker called ContainerCannotRun), with the runtime's message.
    let s = lab.wait_status("cannotrun", "finished", done).await;
    let t = terminated(&s);
    assert_eq!(t["reason"], "StartError", "{s:#}");
    assert_eq!(t["exitCode"], 128);
    let msg = t["message"].as_str().unwrap_or_default();
    assert!(msg.contains("/does-not-exist"), "{s:#}");
    // FallbackToLogsOnError: the log of a container that never ran is empty, nothing
    // is added to the runtime's message.
    assert!(!msg.contains("Error on reading"), "{s:#}");
    assert_eq!(phase(&s), "Failed");

    // A finished pod's sandbox is stopped; nothing of it keeps running.
    for pod in ["file", "path", "logs", "big", "oom", "cannotrun"] {
        assert!(
            lab.node.running(&lab.node.pod_name(pod)).await.is_empty(),
            "{pod}"
        );
    }
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_fails_the_pod_and_stops_its_containers() {
    let mut lab = Lab::new("lc-deadline");
    lab.write(
        "deadline",
        &format!(
            "  activeDeadlineSeconds: 8\n  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "echo ran >> /marks/deadline; while true; do sleep 1; done",
                ""
            ),
        ),
    );
    lab.start();
    let pod = lab.node.pod_name("deadline");
    eventually("the container ran", DEADLINE, || async {
        (lab.mark("deadline") == "ran\n").then_some(())
    })
    .await;
    let s = lab
        .wait_status("deadline", "phase Failed", |s| phase(s) == "Failed")
        .await;
    assert_eq!(s["reason"], "DeadlineExceeded", "{s:#}");
    assert_eq!(
        s["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    eventually("containers stopped", DEADLINE, || async {
        lab.node.running(&pod).await.is_empty().then_some(())
    })
    .await;
    // And they stay stopped: nothing restarts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(lab.node.running(&pod).await.is_empty());
    assert_eq!(lab.mark("deadline"), "ran\n");
    let s = lab.status("deadline").await.unwrap();
    assert_eq!(phase(&s), "Failed");
    assert!(
        main_status(&s, "main")["state"]["terminated"].is_object(),
        "{s:#}"
    );
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_reasons_in_the_pod_status() {
    let mut lab = Lab::new("lc-waiting");
    lab.write(
        "crash",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container("main", "echo oops; exit 2", ""),
        ),
    );
    lab.write(
        "badimage",
        "  containers:\n  - name: main\n    image: no-such-image:1\n",
    );
    let missing = lab.node.dir.path().join("missing");
    lab.write_with_volumes(
        "badvolume",
        "  containers:\n  - name: main\n    image: busybox\n    command: [sleep, \"3600\"]\n    volumeMounts: [{name: gone, mountPath: /gone}]\n",
        &format!(
            "  - name: gone\n    hostPath: {{path: {}, type: Directory}}\n",
            missing.display()
        ),
    );
    lab.start();

    let s = lab
        .wait_status("crash", "CrashLoopBackOff", |s| {
            waiting_reason(main_status(s, "main")) == "CrashLoopBackOff"
        })
        .await;
    let main = main_status(&s, "main");
    assert!(
        main["restartCount"].as_i64().unwrap_or_default() >= 1,
        "{s:#}"
    );
    assert_eq!(main["lastState"]["terminated"]["exitCode"], 2);
    assert_eq!(main["lastState"]["terminated"]["reason"], "Error");
    assert!(
        main["state"]["waiting"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("back-off 10s restarting failed container=main"),
        "{main:#}"
    );
    assert_eq!(phase(&s), "Running");
    assert_eq!(condition(&s, "Ready")["reason"], "ContainersNotReady");

    let s = lab
        .wait_status("badimage", "image pull error", |s| {
            matches!(
                waiting_reason(main_status(s, "main")),
                "ErrImagePull" | "ImagePullBackOff"
            )
        })
        .await;
    assert_eq!(phase(&s), "Pending", "{s:#}");

    let s = lab
        .wait_status("badvolume", "config error", |s| {
            waiting_reason(main_status(s, "main")) == "CreateContainerConfigError"
        })
        .await;
    assert_eq!(phase(&s), "Pending", "{s:#}");
    lab.node.stop();
    lab.node.purge_runtime().await;
}

/// Poll `/pods` fast until the pod shows every container ready; returns how long after
/// `since` it was first listed, how long it was listed as not ready, and the last status.
async fn watch_until_ready(lab: &Lab, name: &str, since: Instant) -> (Duration, Duration, Value) {
    let deadline = Duration::from_secs(30);
    let mut first_seen = None;
    let mut not_ready = Duration::ZERO;
    let mut last_poll = Instant::now();
    let mut last = Value::Null;
    loop {
        let now = Instant::now();
        if let Some(s) = lab.status(name).await {
            first_seen.get_or_insert(since.elapsed());
            let all_ready = !statuses(&s, "containerStatuses").is_empty()
                && statuses(&s, "containerStatuses")
                    .iter()
                    .all(|c| c["ready"] == true)
                && condition(&s, "Ready")["status"] == "True";
            if all_ready {
                return (first_seen.unwrap_or_default(), not_ready, s);
            }
            not_ready += now - last_poll;
            last = s;
        }
        last_poll = now;
        assert!(
            since.elapsed() < deadline,
            "pod {name} not ready again within {deadline:?}: {last:#}\nkubelet log:\n{}",
            tail(&lab.node.logs(), 150)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopted_containers_are_probed_at_once_after_a_kubelet_restart() {
    let mut lab = Lab::new("lc-adopt");
    // Long periods: waiting for the next tick (or upstream's random start delay of up to
    // a period) would leave the pod unready for many seconds after the restart.
    lab.write(
        "ready",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}{}",
            container(
                "web",
                "mkdir -p /www && echo hi > /www/index.html && httpd -f -p 8080 -h /www",
                "    readinessProbe:\n      httpGet: {path: /index.html, port: 8080}\n      initialDelaySeconds: 1\n      periodSeconds: 20\n"
            ),
            container(
                "gated",
                "touch /tmp/ok; while true; do sleep 1; done",
                "    startupProbe:\n      exec: {command: [cat, /tmp/ok]}\n      initialDelaySeconds: 1\n      periodSeconds: 20\n    readinessProbe:\n      exec: {command: [cat, /tmp/ok]}\n      periodSeconds: 20\n"
            ),
        ),
    );
    lab.start();
    let s = lab
        .wait_status("ready", "pod Ready", |s| {
            condition(s, "Ready")["status"] == "True"
        })
        .await;
    assert_eq!(main_status(&s, "gated")["started"], true, "{s:#}");
    let pod = lab.node.pod_name("ready");
    let before = lab.node.running(&pod).await;

    lab.node.stop();
    let restarted = Instant::now();
    lab.start();
    let (listed_after, not_ready_for, s) = watch_until_ready(&lab, "ready", restarted).await;
    let ready_after = restarted.elapsed();
    eprintln!(
        "after the restart: listed after {listed_after:?}, ready after {ready_after:?}, \
         listed as not ready for {not_ready_for:?}"
    );
    // The containers were adopted, not restarted, and probed at once.
    let after = lab.node.running(&pod).await;
    for name in ["web", "gated"] {
        assert_eq!(after[name].id, before[name].id, "{name} was restarted");
        assert_eq!(main_status(&s, name)["restartCount"], 0);
    }
    assert_eq!(main_status(&s, "gated")["started"], true, "{s:#}");
    assert!(
        ready_after < Duration::from_secs(15),
        "ready again only after {ready_after:?} (probe period 20 s)"
    );
    // The first status after the restart already has the first probe results: the pod
    // is never listed as not ready (without that wait it was, for 100-200 ms here).
    assert_eq!(
        not_ready_for,
        Duration::ZERO,
        "listed as not ready after the restart"
    );
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_stop_runs_from_the_annotations_when_the_manifest_is_gone() {
    let mut lab = Lab::new("lc-orphan");
    // sh as PID 1 without a trap ignores SIGTERM: only SIGKILL at the end of the 6 s
    // grace period (counted from the start of the hook) ends it.
    lab.write(
        "orphan",
        &format!(
            "  terminationGracePeriodSeconds: 6\n  containers:\n{}",
            container(
                "main",
                "echo started >> /marks/orphan; while true; do sleep 0.2; done",
                "    lifecycle:\n      preStop:\n        exec: {command: [sh, -c, \"touch /marks/orphan-hook; echo prestop >> /marks/orphan; sleep 2; echo prestop-done >> /marks/orphan\"]}\n"
            ),
        ),
    );
    lab.start();
    let pod = lab.node.pod_name("orphan");
    let main = lab.node.wait_running(&pod, &["main"]).await["main"].clone();
    // The hook and the grace period are kept on the container, as upstream keeps them.
    let status = cri().container_status(&main.id).await.unwrap();
    let hook: Value = serde_json::from_str(
        status
            .annotations
            .get(labels::CONTAINER_PRE_STOP_HANDLER)
            .expect("preStop annotation"),
    )
    .unwrap();
    assert_eq!(hook["exec"]["command"][0], "sh", "{hook}");
    assert_eq!(
        status.annotations[labels::POD_TERMINATION_GRACE_PERIOD],
        "6"
    );

    // The manifest goes away while the kubelet is down: after the restart the pod is an
    // orphan with no spec; it is torn down with the hook and grace period from the
    // annotations.
    lab.node.stop();
    lab.node.remove_manifest("orphan.yaml");
    lab.node.start();
    eventually("preStop hook ran", DEADLINE, || async {
        lab.mark("orphan").contains("prestop").then_some(())
    })
    .await;
    eventually("orphan removed", DEADLINE, || async {
        lab.runtime_containers("orphan")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let took = lab.mark_age("orphan-hook").expect("hook mark");
    assert_eq!(lab.mark("orphan"), "started\nprestop\nprestop-done\n");
    assert!(
        took >= Duration::from_millis(4500) && took < Duration::from_secs(15),
        "stopped {took:?} after the hook started; the grace period is 6 s"
    );
    lab.node.wait_no_sandboxes().await;
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_again_in_a_new_sandbox() {
    let mut lab = Lab::new("lc-reinit");
    lab.write(
        "reinit",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  initContainers:\n{}  containers:\n{}",
            container("setup", "echo setup >> /marks/reinit", ""),
            container("main", "echo main >> /marks/reinit; sleep 3600", ""),
        ),
    );
    lab.start();
    let pod = lab.node.pod_name("reinit");
    lab.node.wait_running(&pod, &["main"]).await;
    lab.wait_mark("reinit", "setup\nmain\n").await;
    // The sandbox dies: the new one runs the init containers again before main.
    let sandbox = lab
        .node
        .sandboxes()
        .await
        .into_iter()
        .find(|s| s.labels.get(labels::POD_NAME) == Some(&pod))
        .expect("sandbox");
    cri().stop_pod_sandbox(&sandbox.id).await.unwrap();
    eventually("init and main ran again", DEADLINE, || async {
        (lab.mark("reinit") == "setup\nmain\nsetup\nmain\n").then_some(())
    })
    .await;
    let s = lab
        .wait_status("reinit", "running in the new sandbox", |s| {
            is_running(main_status(s, "main"))
        })
        .await;
    let setup = cstatus(&s, "initContainerStatuses", "setup");
    assert_eq!(setup["state"]["terminated"]["reason"], "Completed", "{s:#}");
    assert!(
        lab.node
            .sandboxes()
            .await
            .iter()
            .any(|s| s.labels.get(labels::POD_NAME) == Some(&pod)
                && s.metadata.as_ref().is_some_and(|m| m.attempt == 1)),
        "a new sandbox (attempt 1)"
    );
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_delay_thresholds_timeouts_and_http_headers() {
    let mut lab = Lab::new("lc-probetiming");
    // Probes aimed at a server on the host (host 127.0.0.1), which records them.
    let server = ManifestServer::start("ok").await;
    let port = server
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    lab.write(
        "timing",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "http",
                "while true; do sleep 1; done",
                &format!(
                    "    readinessProbe:\n      httpGet: {{host: 127.0.0.1, port: {port}, path: /probe, httpHeaders: [{{name: X-Probe, value: yes}}]}}\n      initialDelaySeconds: 4\n      periodSeconds: 1\n      successThreshold: 3\n"
                )
            ),
        ),
    );
    // An exec probe slower than its timeout fails, however it ends. Each run leaves a mark.
    lab.write(
        "slowprobe",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "while true; do sleep 1; done",
                "    readinessProbe:\n      exec: {command: [sh, -c, \"echo run >> /marks/slowprobe; sleep 3\"]}\n      timeoutSeconds: 1\n      periodSeconds: 1\n"
            ),
        ),
    );
    lab.start();
    let s = lab
        .wait_status("timing", "http running", |s| {
            is_running(main_status(s, "http"))
        })
        .await;
    let started_at = main_status(&s, "http")["state"]["running"]["startedAt"]
        .as_str()
        .unwrap()
        .to_string();
    let probes = || -> Vec<String> {
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("GET /probe "))
            .cloned()
            .collect()
    };
    let s = lab
        .wait_status("timing", "http ready", |s| {
            main_status(s, "http")["ready"] == true
        })
        .await;
    // Ready only after three successes in a row.
    let seen = probes();
    assert!(seen.len() >= 3, "ready after {} probes", seen.len());
    let req = seen[0].to_ascii_lowercase();
    assert!(req.contains("x-probe: yes"), "{req}");
    assert!(req.contains("user-agent: kube-probe/1.35"), "{req}");
    assert!(req.contains("accept: */*"), "{req}");
    // Not before the initial delay: first probe 4 s after the start, then two more 1 s
    // apart (both times have whole seconds).
    let start: k8s_openapi::jiff::Timestamp = started_at.parse().unwrap();
    let ready_at: k8s_openapi::jiff::Timestamp =
        condition(&s, "ContainersReady")["lastTransitionTime"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .unwrap_or_else(|e| panic!("ContainersReady time: {e}: {s:#}"));
    let took = ready_at.duration_since(start).as_secs_f64();
    assert!(
        took >= 5.0,
        "ready {took} s after the start: initial delay 4 s, then 3 probes 1 s apart"
    );
    // The slow probe would have passed (sleep exits 0 after 3 s) without its timeout: once
    // two runs have ended (a third began), the container would show ready.
    eventually("the slow probe ran 3 times", DEADLINE, || async {
        (lab.mark("slowprobe").lines().count() >= 3).then_some(())
    })
    .await;
    let slow = lab.wait_status("slowprobe", "status", |_| true).await;
    assert!(is_running(main_status(&slow, "main")), "{slow:#}");
    assert_eq!(main_status(&slow, "main")["ready"], false, "{slow:#}");
    assert_eq!(main_status(&slow, "main")["restartCount"], 0);
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signal_then_sigkill_after_the_pod_grace_period() {
    let mut lab = Lab::new("lc-grace");
    // The container notes SIGTERM and carries on: SIGKILL ends it after 4 s.
    lab.write(
        "grace",
        &format!(
            "  terminationGracePeriodSeconds: 4\n  containers:\n{}",
            container(
                "main",
                "trap 'echo term >> /marks/grace' TERM; while true; do sleep 0.2; done",
                ""
            ),
        ),
    );
    lab.start();
    let pod = lab.node.pod_name("grace");
    lab.node.wait_running(&pod, &["main"]).await;
    let removed = Instant::now();
    lab.node.remove_manifest("grace.yaml");
    eventually("SIGTERM received", DEADLINE, || async {
        (lab.mark("grace") == "term\n").then_some(())
    })
    .await;
    eventually("container gone", DEADLINE, || async {
        lab.runtime_containers("grace")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let killed_after = lab.mark_age("grace").expect("term mark");
    assert!(
        killed_after >= Duration::from_millis(3500) && killed_after < Duration::from_secs(12),
        "SIGKILL {killed_after:?} after SIGTERM; grace period 4 s (removed {:?} ago)",
        removed.elapsed()
    );
    assert_eq!(lab.mark("grace"), "term\n", "one stop signal");
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_under_never_sleep_hooks_and_image_reasons() {
    let mut lab = Lab::new("lc-misc");
    // A failed liveness probe kills the container; under Never it stays dead.
    lab.write(
        "dead",
        &format!(
            "  restartPolicy: Never\n  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "echo ran >> /marks/dead; while true; do sleep 1; done",
                "    livenessProbe:\n      exec: {command: [\"false\"]}\n      periodSeconds: 1\n      failureThreshold: 1\n"
            ),
        ),
    );
    // A postStart sleep holds the container out of Running for its duration.
    lab.write(
        "sleephook",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "echo started >> /marks/sleephook; while true; do sleep 1; done",
                "    lifecycle:\n      postStart:\n        sleep: {seconds: 3}\n"
            ),
        ),
    );
    lab.write(
        "neverpull",
        "  containers:\n  - name: main\n    image: never-pulled-here:1\n    imagePullPolicy: Never\n",
    );
    lab.write(
        "invalid",
        "  containers:\n  - name: main\n    image: \"Busybox:Bad Name\"\n",
    );
    lab.start();

    eventually("sleephook container started", DEADLINE, || async {
        lab.mark("sleephook").contains("started").then_some(())
    })
    .await;
    // While the hook runs the container is still waiting as ContainerCreating (upstream
    // reports nothing newer until the hook returns), and the pod is Pending.
    let seen = std::sync::Mutex::new(Vec::new());
    let s = lab
        .wait_status("sleephook", "running", |s| {
            let main = main_status(s, "main");
            seen.lock()
                .unwrap()
                .push(format!("{}/{}", phase(s), waiting_reason(main)));
            is_running(main)
        })
        .await;
    let held = lab.mark_age("sleephook").expect("start mark");
    assert!(
        held >= Duration::from_millis(2500),
        "Running {held:?} after the process started; the postStart sleep is 3 s: {s:#}"
    );
    let seen = seen.into_inner().unwrap();
    assert!(
        !seen.is_empty()
            && seen[..seen.len() - 1]
                .iter()
                .all(|w| w == "Pending/ContainerCreating"),
        "statuses while the postStart hook ran: {seen:?}"
    );

    let s = lab
        .wait_status("dead", "phase Failed", |s| phase(s) == "Failed")
        .await;
    let main = main_status(&s, "main");
    assert_eq!(main["restartCount"], 0, "{s:#}");
    assert_eq!(main["state"]["terminated"]["exitCode"], 137, "{s:#}");
    assert_eq!(main["state"]["terminated"]["reason"], "Error");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lab.mark("dead"), "ran\n", "never restarted");
    // Nothing is left to run: the whole pod is stopped (upstream KillPod), its sandbox too.
    eventually("dead pod's sandbox stopped", DEADLINE, || async {
        let pod = lab.node.pod_name("dead");
        lab.node
            .sandboxes()
            .await
            .iter()
            .filter(|s| s.labels.get(labels::POD_NAME) == Some(&pod))
            .all(|s| s.state != k8s_cri::v1::PodSandboxState::SandboxReady as i32)
            .then_some(())
    })
    .await;

    let s = lab
        .wait_status("neverpull", "ErrImageNeverPull", |s| {
            waiting_reason(main_status(s, "main")) == "ErrImageNeverPull"
        })
        .await;
    assert_eq!(phase(&s), "Pending", "{s:#}");
    let s = lab
        .wait_status("invalid", "InvalidImageName", |s| {
            waiting_reason(main_status(s, "main")) == "InvalidImageName"
        })
        .await;
    assert_eq!(phase(&s), "Pending", "{s:#}");
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_startup_probe_gates_the_next_init_container_and_readiness_counts() {
    let mut lab = Lab::new("lc-sidecarprobe");
    // The sidecar is started only once its startup probe passes (after 3 s); then the
    // next init container runs. Its readiness (a file main creates) gates the pod's Ready.
    lab.write(
        "gated",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  initContainers:\n{}{}  containers:\n{}",
            container(
                "side",
                "echo side >> /marks/gated; touch /marks/t-side; sleep 3; touch /tmp/up; while true; do sleep 0.2; done",
                "    restartPolicy: Always\n    startupProbe:\n      exec: {command: [cat, /tmp/up]}\n      periodSeconds: 1\n      failureThreshold: 30\n    readinessProbe:\n      exec: {command: [cat, /marks/side-ready]}\n      periodSeconds: 1\n"
            ),
            container("after", "touch /marks/t-after; echo after >> /marks/gated", ""),
            container("main", "echo main >> /marks/gated; sleep 3600", ""),
        ),
    );
    lab.start();
    eventually("next init container ran", DEADLINE, || async {
        lab.mark("gated").contains("after").then_some(())
    })
    .await;
    let gap = lab
        .mark_age("t-side")
        .expect("side mark")
        .checked_sub(lab.mark_age("t-after").expect("after mark"))
        .expect("the next init container ran after the sidecar");
    assert!(
        gap >= Duration::from_millis(2500),
        "the next init container ran {gap:?} after the sidecar's process; its startup probe passes after 3 s"
    );
    let s = lab
        .wait_status("gated", "main running", |s| {
            is_running(main_status(s, "main"))
        })
        .await;
    lab.wait_mark("gated", "side\nafter\nmain\n").await;
    let side = cstatus(&s, "initContainerStatuses", "side");
    assert_eq!(side["started"], true, "{s:#}");
    assert_eq!(side["ready"], false, "{s:#}");
    assert_eq!(condition(&s, "Ready")["status"], "False", "{s:#}");
    assert_eq!(
        condition(&s, "ContainersReady")["message"],
        "containers with unready status: [side]"
    );
    std::fs::write(lab.marks.join("side-ready"), "ok").unwrap();
    let s = lab
        .wait_status("gated", "pod Ready", |s| {
            condition(s, "Ready")["status"] == "True"
        })
        .await;
    assert_eq!(cstatus(&s, "initContainerStatuses", "side")["ready"], true);
    lab.node.stop();
    lab.node.purge_runtime().await;
}

/// Write an executable CGI script for busybox httpd under `<marks>/www/cgi-bin`.
fn cgi(lab: &Lab, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let dir = lab.marks.join("www/cgi-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A sleeping container whose readiness probe GETs `path` on the pod's port 8080.
fn redirect_prober(name: &str, path: &str) -> String {
    container(
        name,
        "trap 'exit 0' TERM; while true; do sleep 0.2; done",
        &format!(
            "    readinessProbe:\n      httpGet: {{path: {path}, port: 8080}}\n      periodSeconds: 1\n      timeoutSeconds: 5\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_probe_redirects_follow_the_same_host_only() {
    let mut lab = Lab::new("lc-redirect");
    // Each target logs its hits in the marks dir, so the test sees which requests were made.
    cgi(
        &lab,
        "ok",
        "echo hit >> /marks/hit-ok\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'",
    );
    cgi(
        &lab,
        "fail",
        "echo hit >> /marks/hit-fail\nprintf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nfail\\n'",
    );
    cgi(
        &lab,
        "to-ok",
        "printf 'Status: 302 Found\\r\\nLocation: /cgi-bin/ok\\r\\n\\r\\n'",
    );
    cgi(
        &lab,
        "to-fail",
        "printf 'Status: 301 Moved Permanently\\r\\nLocation: /cgi-bin/fail\\r\\n\\r\\n'",
    );
    // Another host (nothing listens there): followed, it would fail the probe.
    cgi(
        &lab,
        "elsewhere",
        "printf 'Status: 302 Found\\r\\nLocation: http://127.0.0.1:1/cgi-bin/ok\\r\\n\\r\\nmoved\\n'",
    );
    // Endless same-host redirects, numbered: each probe makes requests 0, 1, 2, ...
    cgi(
        &lab,
        "loop",
        "n=${QUERY_STRING:-0}\necho $n >> /marks/hit-loop\nprintf 'Status: 302 Found\\r\\nLocation: /cgi-bin/loop?%d\\r\\n\\r\\n' $((n+1))",
    );
    lab.write(
        "redirect",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}{}{}{}{}",
            container("server", "exec httpd -f -p 8080 -h /marks/www", ""),
            redirect_prober("to-ok", "/cgi-bin/to-ok"),
            redirect_prober("to-fail", "/cgi-bin/to-fail"),
            redirect_prober("elsewhere", "/cgi-bin/elsewhere"),
            redirect_prober("loop", "/cgi-bin/loop"),
        ),
    );
    lab.start();

    // Same host: followed to the target, whose answer decides. Another host: not
    // followed, and the 302 itself counts as success.
    let s = lab
        .wait_status("redirect", "to-ok and elsewhere ready", |s| {
            main_status(s, "to-ok")["ready"] == true && main_status(s, "elsewhere")["ready"] == true
        })
        .await;
    assert!(
        lab.mark("hit-ok").contains("hit"),
        "the redirect to /cgi-bin/ok was followed"
    );
    // The failing target was reached through the redirect; once it answered a few probes
    // (each result lands in the status within a second or two), to-fail is still unready.
    eventually("to-fail's target hit 3 times", DEADLINE, || async {
        (lab.mark("hit-fail").lines().count() >= 3).then_some(())
    })
    .await;
    let s2 = lab.wait_status("redirect", "status", |_| true).await;
    assert_eq!(
        main_status(&s2, "to-fail")["ready"],
        false,
        "{s2:#}\nfirst: {s:#}"
    );
    // 10 requests per probe (the original and 9 redirects), then the probe fails.
    eventually("the redirect loop probed", DEADLINE, || async {
        lab.mark("hit-loop").lines().any(|l| l == "9").then_some(())
    })
    .await;
    let seen: Vec<u32> = lab
        .mark("hit-loop")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert_eq!(
        seen.iter().max(),
        Some(&9),
        "at most 10 requests per probe: {seen:?}"
    );
    let s = lab.wait_status("redirect", "status", |_| true).await;
    assert_eq!(main_status(&s, "loop")["ready"], false, "{s:#}");
    assert_eq!(condition(&s, "Ready")["status"], "False");
    // The cross-host redirect is a warning event (logged as an event in standalone mode).
    let logs = eventually("ProbeWarning event", DEADLINE, || async {
        let logs = lab.node.logs();
        logs.contains("ProbeWarning").then_some(logs)
    })
    .await;
    let warning = logs
        .lines()
        .find(|l| l.contains("ProbeWarning"))
        .unwrap_or_default();
    assert!(
        warning.contains("Probe terminated redirects") && warning.contains("moved"),
        "{warning}"
    );
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_container_error_shows_the_runtime_message_and_is_retried() {
    let mut lab = Lab::new("lc-create");
    // A Localhost seccomp profile the kubelet finds but containerd cannot parse: the
    // runtime refuses CreateContainer.
    let profiles = lab.node.root_dir.join("seccomp");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("broken.json"), "this is not json").unwrap();
    lab.write(
        "refused",
        &format!(
            "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
            container(
                "main",
                "echo ran >> /marks/refused; trap 'exit 0' TERM; while true; do sleep 0.2; done",
                "    securityContext:\n      seccompProfile: {type: Localhost, localhostProfile: broken.json}\n"
            ),
        ),
    );
    lab.start();

    let s = lab
        .wait_status("refused", "CreateContainerError", |s| {
            waiting_reason(main_status(s, "main")) == "CreateContainerError"
        })
        .await;
    let main = main_status(&s, "main");
    let message = main["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("seccomp") && message.contains("broken.json"),
        "the runtime's message: {main:#}"
    );
    assert_eq!(phase(&s), "Pending", "{s:#}");
    assert_eq!(main["restartCount"], 0);
    assert!(main["containerID"].is_null(), "{main:#}");
    assert!(lab.runtime_containers("refused").await.is_empty());
    assert_eq!(condition(&s, "ContainersReady")["status"], "False");

    // Retried: once the profile is valid, the next attempt creates and starts it.
    std::fs::write(
        profiles.join("broken.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#,
    )
    .unwrap();
    let fixed = Instant::now();
    let s = lab
        .wait_status("refused", "running after the fix", |s| {
            is_running(main_status(s, "main"))
        })
        .await;
    assert!(
        fixed.elapsed() < Duration::from_secs(30),
        "retried within the pod worker's retry period: {:?}",
        fixed.elapsed()
    );
    assert_eq!(phase(&s), "Running", "{s:#}");
    assert_eq!(main_status(&s, "main")["restartCount"], 0, "{s:#}");
    lab.wait_mark("refused", "ran\n").await;
    lab.node.stop();
    lab.node.purge_runtime().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_messages_share_12_kib_across_the_pod() {
    let mut lab = Lab::new("lc-msgbudget");
    // Each container writes 5000 bytes: the kubelet keeps the last 4096 of the file, then
    // the pod's 12 KiB is split between its 4 containers: the first 3072 of those.
    let text: String = (1..=2000).map(|n| format!("{n},")).collect();
    let written = &text[..5000];
    let expected = &written[5000 - 4096..5000 - 4096 + 3072];
    let writer = |name: &str| {
        container(
            name,
            "seq 1 2000 | tr '\\n' , | head -c 5000 > /dev/termination-log",
            "",
        )
    };
    lab.write(
        "budget",
        &format!(
            "  restartPolicy: Never\n  containers:\n{}{}{}{}",
            writer("a"),
            writer("b"),
            writer("c"),
            writer("d"),
        ),
    );
    lab.start();

    let s = lab
        .wait_status("budget", "phase Succeeded", |s| phase(s) == "Succeeded")
        .await;
    let mut total = 0;
    for name in ["a", "b", "c", "d"] {
        let t = &main_status(&s, name)["state"]["terminated"];
        assert_eq!(t["reason"], "Completed", "{s:#}");
        let message = t["message"].as_str().unwrap_or_default();
        assert_eq!(message.len(), 3072, "container {name}");
        assert_eq!(message, expected, "container {name}");
        total += message.len();
    }
    assert_eq!(total, 12 * 1024);
    lab.node.stop();
    lab.node.purge_runtime().await;
}
