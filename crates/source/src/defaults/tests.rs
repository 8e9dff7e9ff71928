use super::*;
use crate::annotations::{CONFIG_HASH, CONFIG_SEEN, CONFIG_SOURCE};
use crate::decode::decode_pod;

const NODE: &str = "node-1";
const PATH: &str = "/etc/kubernetes/manifests/web.yaml";

fn decode(yaml: &str) -> Pod {
    decode_pod(yaml.as_bytes()).expect("test manifest decodes")
}

fn prepare(yaml: &str) -> Pod {
    prepare_static_pod(decode(yaml), SourceKind::File, PATH, NODE).expect("valid pod")
}

const MINIMAL: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx
";

const FULL: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: kube-system
spec:
  hostNetwork: true
  initContainers:
  - name: init
    image: busybox:1.36
  containers:
  - name: app
    image: registry.k8s.io/app@sha256:0123
    ports:
    - containerPort: 8080
    env:
    - name: NODE
      valueFrom:
        fieldRef: {fieldPath: spec.nodeName}
    resources:
      limits: {cpu: 500m, memory: 64Mi}
      requests: {cpu: 100m}
    livenessProbe:
      httpGet: {port: 8080}
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 5
    lifecycle:
      preStop:
        httpGet: {port: 8080, path: /stop}
  volumes:
  - name: data
    hostPath: {path: /var/lib/data}
  - name: scratch
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef: {fieldPath: metadata.labels}
";

fn spec(p: &Pod) -> &k8s_openapi::api::core::v1::PodSpec {
    p.spec.as_ref().unwrap()
}

fn annotation<'a>(p: &'a Pod, key: &str) -> &'a str {
    p.metadata.annotations.as_ref().unwrap()[key].as_str()
}

#[test]
fn pod_level_defaults() {
    let p = prepare(MINIMAL);
    let s = spec(&p);
    let table: [(&str, Option<String>, &str); 4] = [
        ("restartPolicy", s.restart_policy.clone(), "Always"),
        ("dnsPolicy", s.dns_policy.clone(), "ClusterFirst"),
        (
            "schedulerName",
            s.scheduler_name.clone(),
            "default-scheduler",
        ),
        ("nodeName", s.node_name.clone(), NODE),
    ];
    for (field, got, want) in table {
        assert_eq!(got.as_deref(), Some(want), "{field}");
    }
    assert_eq!(s.termination_grace_period_seconds, Some(30));
    assert_eq!(s.enable_service_links, Some(true));
    assert_eq!(s.security_context, Some(Default::default()));
    assert_eq!(s.priority, None, "priority is the API server's business");
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
}

#[test]
fn container_defaults() {
    let p = prepare(FULL);
    let s = spec(&p);
    let init = &s.init_containers.as_ref().unwrap()[0];
    let app = &s.containers[0];
    let table = [
        (
            "init pull",
            init.image_pull_policy.as_deref(),
            "IfNotPresent",
        ),
        (
            "app pull (digest)",
            app.image_pull_policy.as_deref(),
            "IfNotPresent",
        ),
        (
            "terminationMessagePath",
            app.termination_message_path.as_deref(),
            "/dev/termination-log",
        ),
        (
            "terminationMessagePolicy",
            app.termination_message_policy.as_deref(),
            "File",
        ),
        (
            "init terminationMessagePolicy",
            init.termination_message_policy.as_deref(),
            "File",
        ),
        (
            "port protocol",
            app.ports.as_ref().unwrap()[0].protocol.as_deref(),
            "TCP",
        ),
        (
            "fieldRef apiVersion",
            app.env.as_ref().unwrap()[0]
                .value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .api_version
                .as_deref(),
            "v1",
        ),
    ];
    for (what, got, want) in table {
        assert_eq!(got, Some(want), "{what}");
    }
    // hostNetwork: hostPort defaults to containerPort.
    assert_eq!(app.ports.as_ref().unwrap()[0].host_port, Some(8080));
    // Requests default to limits where unset; explicit requests are kept.
    let r = app.resources.as_ref().unwrap();
    let requests = r.requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "64Mi");
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, want) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("nginx@sha256:aa", "IfNotPresent"),
    ] {
        let p = prepare(&MINIMAL.replace("image: nginx", &format!("image: {image}")));
        assert_eq!(
            spec(&p).containers[0].image_pull_policy.as_deref(),
            Some(want),
            "{image}"
        );
    }
    let explicit = MINIMAL.replace("image: nginx", "image: nginx\n    imagePullPolicy: Never");
    assert_eq!(
        spec(&prepare(&explicit)).containers[0]
            .image_pull_policy
            .as_deref(),
        Some("Never")
    );
}

#[test]
fn probe_and_handler_defaults() {
    let p = prepare(FULL);
    let app = &spec(&p).containers[0];
    let live = app.liveness_probe.as_ref().unwrap();
    assert_eq!(
        (
            live.timeout_seconds,
            live.period_seconds,
            live.success_threshold,
            live.failure_threshold
        ),
        (Some(1), Some(10), Some(1), Some(3))
    );
    let get = live.http_get.as_ref().unwrap();
    assert_eq!(get.scheme.as_deref(), Some("HTTP"));
    assert_eq!(get.path.as_deref(), Some("/"));
    let ready = app.readiness_probe.as_ref().unwrap();
    assert_eq!(ready.period_seconds, Some(5), "explicit values are kept");
    let stop = app
        .lifecycle
        .as_ref()
        .unwrap()
        .pre_stop
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(stop.scheme.as_deref(), Some("HTTP"));
    assert_eq!(stop.path.as_deref(), Some("/stop"));
}

#[test]
fn volume_defaults() {
    let p = prepare(FULL);
    let vols = spec(&p).volumes.as_ref().unwrap();
    assert_eq!(
        vols[0].host_path.as_ref().unwrap().type_.as_deref(),
        Some("")
    );
    assert!(
        vols[1].empty_dir.is_some(),
        "a name-only volume is an emptyDir"
    );
    let d = vols[2].downward_api.as_ref().unwrap();
    assert_eq!(d.default_mode, Some(420));
    assert_eq!(
        d.items.as_ref().unwrap()[0]
            .field_ref
            .as_ref()
            .unwrap()
            .api_version
            .as_deref(),
        Some("v1")
    );
}

#[test]
fn naming_namespace_and_node() {
    let p = prepare(MINIMAL);
    assert_eq!(p.metadata.name.as_deref(), Some("web-node-1"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    let p = prepare(FULL);
    assert_eq!(p.metadata.name.as_deref(), Some("web-node-1"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("kube-system"));
    assert_eq!(
        static_pod_name("etcd", "Master.Example"),
        "etcd-master.example"
    );
}

#[test]
fn annotations_are_set() {
    let p = prepare(MINIMAL);
    let uid = p.metadata.uid.clone().unwrap();
    assert_eq!(uid.len(), 32);
    assert!(uid.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(annotation(&p, CONFIG_HASH), uid);
    assert_eq!(annotation(&p, CONFIG_SOURCE), "file");
    let seen = annotation(&p, CONFIG_SEEN);
    assert!(
        chrono::DateTime::parse_from_rfc3339(seen).is_ok(),
        "{seen} is RFC 3339"
    );
    let h = prepare_static_pod(decode(MINIMAL), SourceKind::Http, "http://x/p", NODE).unwrap();
    assert_eq!(annotation(&h, CONFIG_SOURCE), "http");
}

#[test]
fn uid_is_deterministic_and_changes_with_the_manifest() {
    let a = prepare(MINIMAL);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let b = prepare(MINIMAL);
    assert_eq!(a.metadata.uid, b.metadata.uid, "same manifest, same UID");
    assert_ne!(
        annotation(&a, CONFIG_SEEN),
        "",
        "seen is set but not part of the hash"
    );
    let edited = prepare(&MINIMAL.replace("nginx", "nginx:1.25"));
    assert_ne!(a.metadata.uid, edited.metadata.uid, "edit, new UID");
    let comment = prepare(&format!("# a comment\n{MINIMAL}"));
    assert_eq!(
        a.metadata.uid, comment.metadata.uid,
        "formatting is not content"
    );

    let other_node = prepare_static_pod(decode(MINIMAL), SourceKind::File, PATH, "node-2").unwrap();
    assert_ne!(a.metadata.uid, other_node.metadata.uid);
    let other_path =
        prepare_static_pod(decode(MINIMAL), SourceKind::File, "/other.yaml", NODE).unwrap();
    assert_ne!(a.metadata.uid, other_path.metadata.uid);
    let url = prepare_static_pod(decode(MINIMAL), SourceKind::Http, PATH, NODE).unwrap();
    assert_ne!(a.metadata.uid, url.metadata.uid);
}

#[test]
fn uid_matches_the_documented_recipe() {
    let pod = decode(MINIMAL);
    let mut h = Md5::new();
    h.update(serde_json::to_vec(&pod).unwrap());
    h.update(format!("host:{NODE}"));
    h.update(format!("file:{PATH}"));
    let want = hex::encode(h.finalize());
    assert_eq!(
        prepare(MINIMAL).metadata.uid.as_deref(),
        Some(want.as_str())
    );

    let mut h = Md5::new();
    h.update(serde_json::to_vec(&pod).unwrap());
    h.update("url:http://h/p");
    let want = hex::encode(h.finalize());
    let got = static_pod_uid(&pod, SourceKind::Http, "http://h/p", NODE).unwrap();
    assert_eq!(got, want, "a URL pod's hash has no host part, as upstream");
}

#[test]
fn manifest_uid_is_kept() {
    let p = prepare(&MINIMAL.replace("  name: web\n", "  name: web\n  uid: fixed-uid\n"));
    assert_eq!(p.metadata.uid.as_deref(), Some("fixed-uid"));
    assert_eq!(annotation(&p, CONFIG_HASH), "fixed-uid");
}

#[test]
fn file_pods_tolerate_no_execute_taints_http_pods_do_not() {
    let p = prepare(MINIMAL);
    let t = spec(&p).tolerations.as_ref().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].operator.as_deref(), Some("Exists"));
    assert_eq!(t[0].effect.as_deref(), Some("NoExecute"));
    assert_eq!(t[0].key, None);

    let with_own = MINIMAL.replace(
        "spec:\n",
        "spec:\n  tolerations:\n  - {operator: Exists, effect: NoExecute}\n  - {key: k, operator: Exists}\n",
    );
    let p = prepare(&with_own);
    assert_eq!(
        spec(&p).tolerations.as_ref().unwrap().len(),
        2,
        "not duplicated"
    );

    let h = prepare_static_pod(decode(MINIMAL), SourceKind::Http, "http://x", NODE).unwrap();
    assert!(spec(&h).tolerations.is_none());
}

#[test]
fn missing_name_is_rejected() {
    let pod = decode("apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: a, image: b}]\n");
    let e = prepare_static_pod(pod, SourceKind::File, PATH, NODE).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid pod: metadata.name: Required value: name is needed for the pod"
    );
}

#[test]
fn invalid_result_is_rejected_with_paths() {
    let pod = decode(&MINIMAL.replace("name: app", "name: App_1"));
    let e = prepare_static_pod(pod, SourceKind::File, PATH, NODE).unwrap_err();
    assert!(e.has_field("spec.containers[0].name"), "{e}");
}

#[test]
fn api_references_are_rejected() {
    let with_sa = MINIMAL.replace("spec:\n", "spec:\n  serviceAccountName: builder\n");
    let e = prepare_static_pod(decode(&with_sa), SourceKind::File, PATH, NODE).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid pod: spec: Forbidden: static pods may not reference serviceaccounts"
    );
    let with_cm = format!("{MINIMAL}  volumes:\n  - name: c\n    configMap: {{name: settings}}\n");
    let e = prepare_static_pod(decode(&with_cm), SourceKind::File, PATH, NODE).unwrap_err();
    assert!(
        e.to_string().contains("may not reference configmaps"),
        "{e}"
    );
}
