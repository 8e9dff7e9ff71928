//! Upstream operation names.

/// The `operation_type` label upstream uses for a CRI method: `RunPodSandbox` ->
/// `run_podsandbox`, `ListContainerStats` -> `list_container_stats`, `ExecSync` ->
/// `exec_sync`, `ImageFsInfo` -> `image_fs_info`.
pub fn operation_type(cri_method: &str) -> String {
    let mut out = String::with_capacity(cri_method.len() + 4);
    for (i, ch) in cri_method.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out.replace("pod_sandbox", "podsandbox")
}

#[cfg(test)]
mod tests {
    use super::operation_type;

    #[test]
    fn upstream_operation_names() {
        for (method, name) in [
            ("RunPodSandbox", "run_podsandbox"),
            ("ListPodSandbox", "list_podsandbox"),
            ("PodSandboxStatus", "podsandbox_status"),
            ("ListPodSandboxStats", "list_podsandbox_stats"),
            ("CreateContainer", "create_container"),
            ("ListContainerStats", "list_container_stats"),
            ("ExecSync", "exec_sync"),
            ("PortForward", "port_forward"),
            ("ImageFsInfo", "image_fs_info"),
            ("Version", "version"),
        ] {
            assert_eq!(operation_type(method), name);
        }
    }
}
