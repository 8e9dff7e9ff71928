//! One test per rule: a valid pod, mutated, must fail with the upstream-style message.

use super::*;
use crate::decode::decode_pod;
use crate::defaults::apply_api_defaults;

const BASE: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web-node1
  namespace: default
spec:
  nodeName: node1
  containers:
  - name: app
    image: nginx:1.25
    ports:
    - {name: http, containerPort: 80}
    volumeMounts:
    - {name: data, mountPath: /data}
  - name: sidecar
    image: busybox
  volumes:
  - name: data
    emptyDir: {}
";

/// Decodes, applies the API defaults, validates; returns the messages.
fn errors(yaml: &str) -> Vec<String> {
    let mut pod = decode_pod(yaml.as_bytes()).expect("test manifest decodes");
    apply_api_defaults(&mut pod);
    match validate_pod(&pod) {
        Ok(()) => Vec::new(),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

fn assert_error(yaml: &str, want: &str) {
    let got = errors(yaml);
    assert!(
        got.iter().any(|e| e == want),
        "expected {want:?} among {got:#?}"
    );
}

fn assert_error_prefix(yaml: &str, want: &str) {
    let got = errors(yaml);
    assert!(
        got.iter().any(|e| e.starts_with(want)),
        "expected an error starting with {want:?} among {got:#?}"
    );
}

#[test]
fn base_pod_is_valid() {
    assert_eq!(errors(BASE), Vec::<String>::new());
}

#[test]
fn name_must_be_a_dns_subdomain() {
    assert_error_prefix(
        &BASE.replace("name: web-node1", "name: Web_Node1"),
        "metadata.name: Invalid value: \"Web_Node1\": a lowercase RFC 1123 subdomain",
    );
    let long = "a".repeat(254);
    assert_error(
        &BASE.replace("name: web-node1", &format!("name: {long}")),
        &format!("metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"),
    );
}

#[test]
fn namespace_must_be_a_dns_label() {
    assert_error_prefix(
        &BASE.replace("namespace: default", "namespace: kube.system"),
        "metadata.namespace: Invalid value: \"kube.system\": a lowercase RFC 1123 label",
    );
}

#[test]
fn labels_and_annotations_are_checked() {
    let yaml = BASE.replace(
        "  namespace: default\n",
        "  namespace: default\n  labels: {\"bad key!\": x, ok: \"-bad\"}\n  annotations: {\"a/b/c\": x}\n",
    );
    let got = errors(&yaml);
    assert!(
        got.iter()
            .any(|e| e.starts_with("metadata.labels: Invalid value: \"bad key!\"")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|e| e.starts_with("metadata.labels[ok]: Invalid value: \"-bad\"")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|e| e.starts_with("metadata.annotations: Invalid value: \"a/b/c\"")),
        "{got:#?}"
    );
}

#[test]
fn at_least_one_container() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: default}\nspec:\n  containers: []\n";
    assert_error(yaml, "spec.containers: Required value");
}

#[test]
fn container_names_are_labels_and_unique() {
    assert_error(
        &BASE.replace("name: sidecar", "name: app"),
        "spec.containers[1].name: Duplicate value: \"app\"",
    );
    assert_error_prefix(
        &BASE.replace("name: sidecar", "name: Side_Car"),
        "spec.containers[1].name: Invalid value: \"Side_Car\": a lowercase RFC 1123 label",
    );
    let with_init = BASE.replace(
        "spec:\n",
        "spec:\n  initContainers:\n  - {name: sidecar, image: busybox}\n",
    );
    assert_error(
        &with_init,
        "spec.initContainers[0].name: Duplicate value: \"sidecar\"",
    );
    assert_error(
        &BASE.replace("- name: sidecar", "- name: \"\""),
        "spec.containers[1].name: Required value",
    );
}

#[test]
fn image_is_required() {
    assert_error(
        &BASE.replace("    image: busybox\n", ""),
        "spec.containers[1].image: Required value",
    );
    assert_error(
        &BASE.replace("image: busybox", "image: \" busybox\""),
        "spec.containers[1].image: Invalid value: \" busybox\": must not have leading or trailing whitespace",
    );
}

#[test]
fn volumes_are_named_unique_and_have_one_source() {
    let dup = BASE.replace(
        "    emptyDir: {}\n",
        "    emptyDir: {}\n  - name: data\n    emptyDir: {}\n",
    );
    assert_error(&dup, "spec.volumes[1].name: Duplicate value: \"data\"");
    let two = BASE.replace(
        "    emptyDir: {}\n",
        "    emptyDir: {}\n    hostPath: {path: /x}\n",
    );
    assert_error(
        &two,
        "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
    );
    assert_error_prefix(
        &BASE.replace("- name: data\n    emptyDir", "- name: Data\n    emptyDir"),
        "spec.volumes[0].name: Invalid value: \"Data\"",
    );
}

#[test]
fn a_volume_without_source_is_rejected_when_not_defaulted() {
    let mut pod = decode_pod(BASE.as_bytes()).unwrap();
    apply_api_defaults(&mut pod);
    let vols = pod.spec.as_mut().unwrap().volumes.as_mut().unwrap();
    vols[0].empty_dir = None;
    let e = validate_pod(&pod).unwrap_err();
    assert!(
        e.errors
            .iter()
            .any(|e| e.to_string() == "spec.volumes[0]: Required value: must specify a volume type"),
        "{e}"
    );
}

#[test]
fn host_path_essentials() {
    let hp = |body: &str| BASE.replace("    emptyDir: {}\n", &format!("    hostPath: {body}\n"));
    assert_error(
        &hp("{path: /a/../etc}"),
        "spec.volumes[0].hostPath.path: Invalid value: \"/a/../etc\": must not contain '..'",
    );
    assert_error_prefix(
        &hp("{path: /x, type: Weird}"),
        "spec.volumes[0].hostPath.type: Unsupported value: \"Weird\"",
    );
}

#[test]
fn volume_mounts_reference_volumes() {
    assert_error(
        &BASE.replace(
            "{name: data, mountPath: /data}",
            "{name: nope, mountPath: /data}",
        ),
        "spec.containers[0].volumeMounts[0].name: Not found: \"nope\"",
    );
    assert_error(
        &BASE.replace(
            "{name: data, mountPath: /data}",
            "{name: data, mountPath: \"\"}",
        ),
        "spec.containers[0].volumeMounts[0].mountPath: Required value",
    );
    assert_error(
        &BASE.replace(
            "{name: data, mountPath: /data}",
            "{name: data, mountPath: /data}\n    - {name: data, mountPath: /data}",
        ),
        "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique",
    );
    assert_error(
        &BASE.replace(
            "{name: data, mountPath: /data}",
            "{name: data, mountPath: /data, subPath: ../x}",
        ),
        "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../x\": must not contain '..'",
    );
}

#[test]
fn ports_are_checked() {
    let port = |p: &str| BASE.replace("{name: http, containerPort: 80}", p);
    assert_error(
        &port("{containerPort: 70000}"),
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_error(
        &port("{containerPort: 0}"),
        "spec.containers[0].ports[0].containerPort: Required value",
    );
    assert_error(
        &port("{containerPort: 80, hostPort: -1}"),
        "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive",
    );
    assert_error(
        &port("{containerPort: 80, protocol: ICMP}"),
        "spec.containers[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    );
    assert_error_prefix(
        &port("{containerPort: 80, name: HTTP}"),
        "spec.containers[0].ports[0].name: Invalid value: \"HTTP\"",
    );
    assert_error(
        &port("{containerPort: 80, name: web}\n    - {containerPort: 81, name: web}"),
        "spec.containers[0].ports[1].name: Duplicate value: \"web\"",
    );
    for ok in ["SCTP", "UDP", "TCP"] {
        assert!(errors(&port(&format!("{{containerPort: 80, protocol: {ok}}}"))).is_empty());
    }
}

#[test]
fn host_ports_are_unique_across_containers() {
    let yaml = BASE
        .replace(
            "{name: http, containerPort: 80}",
            "{containerPort: 80, hostPort: 8080}",
        )
        .replace(
            "    image: busybox\n",
            "    image: busybox\n    ports:\n    - {containerPort: 81, hostPort: 8080}\n",
        );
    assert_error(
        &yaml,
        "spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\"",
    );
}

#[test]
fn policies_are_checked() {
    let with = |line: &str| BASE.replace("spec:\n", &format!("spec:\n  {line}\n"));
    assert_error(
        &with("restartPolicy: Sometimes"),
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
    assert_error_prefix(
        &with("dnsPolicy: Google"),
        "spec.dnsPolicy: Unsupported value: \"Google\"",
    );
    assert_error(
        &with("dnsPolicy: None"),
        "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None",
    );
    assert!(
        errors(&with(
            "dnsPolicy: None\n  dnsConfig: {nameservers: [1.1.1.1]}"
        ))
        .is_empty()
    );
    assert_error_prefix(
        &BASE.replace(
            "image: busybox",
            "image: busybox\n    imagePullPolicy: Sometimes",
        ),
        "spec.containers[1].imagePullPolicy: Unsupported value: \"Sometimes\"",
    );
    assert_error(
        &with("activeDeadlineSeconds: 0"),
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
    );
}

#[test]
fn env_names_and_sources() {
    let env = |e: &str| {
        BASE.replace(
            "image: busybox",
            &format!("image: busybox\n    env:\n    - {e}"),
        )
    };
    assert!(
        errors(&env("{name: MY.VAR-1, value: x}")).is_empty(),
        "relaxed names"
    );
    assert_error_prefix(
        &env("{name: \"A=B\", value: x}"),
        "spec.containers[1].env[0].name: Invalid value: \"A=B\"",
    );
    assert_error(
        &env("{name: \"\", value: x}"),
        "spec.containers[1].env[0].name: Required value",
    );
    assert_error(
        &env("{name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}"),
        "spec.containers[1].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
    );
    assert_error_prefix(
        &env("{name: A, valueFrom: {}}"),
        "spec.containers[1].env[0].valueFrom: Invalid value: \"\": must specify exactly one of",
    );
}

#[test]
fn probes_need_exactly_one_handler() {
    let probe = |p: &str| {
        BASE.replace(
            "image: busybox",
            &format!("image: busybox\n    livenessProbe: {p}"),
        )
    };
    assert_error(
        &probe("{periodSeconds: 3}"),
        "spec.containers[1].livenessProbe: Required value: must specify a handler type",
    );
    assert_error(
        &probe("{exec: {command: [true]}, tcpSocket: {port: 80}}"),
        "spec.containers[1].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
    );
    assert_error(
        &probe("{exec: {command: [true]}, successThreshold: 2}"),
        "spec.containers[1].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    );
    assert_error(
        &probe("{httpGet: {port: 0}}"),
        "spec.containers[1].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
    );
    let init_probe = BASE.replace(
        "spec:\n",
        "spec:\n  initContainers:\n  - name: init\n    image: busybox\n    readinessProbe: {exec: {command: [true]}}\n",
    );
    assert_error(
        &init_probe,
        "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
    );
}

#[test]
fn resources_are_checked() {
    let res = |r: &str| {
        BASE.replace(
            "image: busybox",
            &format!("image: busybox\n    resources: {r}"),
        )
    };
    assert_error(
        &res("{limits: {memory: 1Gi}, requests: {memory: 2Gi}}"),
        "spec.containers[1].resources.requests[memory]: Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi",
    );
    assert_error_prefix(
        &res("{limits: {cpu: lots}}"),
        "spec.containers[1].resources.limits[cpu]: Invalid value: \"lots\"",
    );
    assert!(errors(&res("{limits: {cpu: 1}, requests: {cpu: 500m}}")).is_empty());
}

/// Every quantity form upstream accepts validates, and compares exactly: `500000u` is
/// 500m (equal, so not above a 500m limit), `1n` is above a `0` limit.
#[test]
fn quantities_are_read_exactly_as_upstream() {
    let res = |r: &str| {
        BASE.replace(
            "image: busybox",
            &format!("image: busybox\n    resources: {r}"),
        )
    };
    for ok in [
        "1", "100m", "1.5Gi", "128Mi", "2k", "2e3", "5E-1", ".5", "500000u", "1n", "Mi", ".",
    ] {
        let yaml = res(&format!("{{limits: {{cpu: \"{ok}\"}}}}"));
        assert!(errors(&yaml).is_empty(), "{ok}: {:?}", errors(&yaml));
    }
    for bad in ["abc", "1x", "1.2.3", "1 Gi", "1e", "1e+"] {
        assert_error_prefix(
            &res(&format!("{{limits: {{cpu: \"{bad}\"}}}}")),
            &format!("spec.containers[1].resources.limits[cpu]: Invalid value: \"{bad}\""),
        );
    }
    assert_error(
        &res("{limits: {cpu: \"-1\"}}"),
        "spec.containers[1].resources.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
    );
    assert!(errors(&res("{limits: {cpu: 500m}, requests: {cpu: 500000u}}")).is_empty());
    assert_error_prefix(
        &res("{limits: {cpu: \"0\"}, requests: {cpu: 1n}}"),
        "spec.containers[1].resources.requests[cpu]: Invalid value: \"1n\": must be less than or equal to cpu limit",
    );
    assert_error_prefix(
        &BASE.replace("emptyDir: {}", "emptyDir: {sizeLimit: 10MB}"),
        "spec.volumes[0].emptyDir.sizeLimit: Invalid value: \"10MB\"",
    );
    assert_error_prefix(
        &BASE.replace("  volumes:", "  overhead: {cpu: lots}\n  volumes:"),
        "spec.overhead[cpu]: Invalid value: \"lots\"",
    );
}

#[test]
fn tolerations_are_checked() {
    let tol = |t: &str| BASE.replace("spec:\n", &format!("spec:\n  tolerations:\n  - {t}\n"));
    assert!(errors(&tol("{operator: Exists}")).is_empty());
    assert_error_prefix(
        &tol("{key: k, operator: Maybe}"),
        "spec.tolerations[0].operator: Unsupported value: \"Maybe\"",
    );
    assert_error(
        &tol("{key: k, operator: Exists, value: v}"),
        "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
    );
    assert_error(
        &tol("{key: k, value: v, effect: NoSchedule, tolerationSeconds: 5}"),
        "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
    );
}

#[test]
fn ephemeral_containers_cannot_be_set_on_create() {
    let yaml = BASE.replace(
        "spec:\n",
        "spec:\n  ephemeralContainers:\n  - {name: debug, image: busybox}\n",
    );
    assert_error(
        &yaml,
        "spec.ephemeralContainers: Forbidden: cannot be set on create",
    );
}

#[test]
fn node_name_must_be_a_subdomain() {
    assert_error_prefix(
        &BASE.replace("nodeName: node1", "nodeName: Node_1"),
        "spec.nodeName: Invalid value: \"Node_1\"",
    );
}

#[test]
fn all_errors_are_collected() {
    let yaml = BASE
        .replace("name: sidecar", "name: app")
        .replace("{name: http, containerPort: 80}", "{containerPort: 70000}");
    assert!(errors(&yaml).len() >= 2);
}

#[test]
fn static_pods_may_not_reference_api_objects() {
    let mut pod = decode_pod(BASE.as_bytes()).unwrap();
    apply_api_defaults(&mut pod);
    assert!(validate_static_pod(&pod).is_ok());
    pod.spec.as_mut().unwrap().image_pull_secrets =
        Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
            name: "r".into(),
        }]);
    assert_eq!(
        validate_static_pod(&pod).unwrap_err().to_string(),
        "invalid pod: spec: Forbidden: static pods may not reference secrets"
    );
}

#[test]
fn unmasked_proc_mount_needs_own_user_namespace() {
    let unmasked = BASE.replace(
        "  - name: sidecar\n    image: busybox\n",
        "  - name: sidecar\n    image: busybox\n    securityContext: {procMount: Unmasked}\n",
    );
    assert_error(
        &unmasked,
        "spec.containers[1].securityContext.procMount: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`",
    );
    let own_userns = unmasked.replace("spec:\n", "spec:\n  hostUsers: false\n");
    assert_eq!(errors(&own_userns), Vec::<String>::new());
    assert_error_prefix(
        &unmasked.replace("Unmasked", "Bogus"),
        "spec.containers[1].securityContext.procMount: Unsupported value: \"Bogus\"",
    );
}
