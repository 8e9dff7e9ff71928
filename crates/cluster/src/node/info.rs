//! `status.nodeInfo` and `status.addresses`: machine IDs, kernel, OS image, runtime and
//! kubelet versions; InternalIP (the detected or `--node-ip` addresses) and Hostname.

use k8s_openapi::api::core::v1::{NodeAddress, NodeSwapStatus, NodeSystemInfo};

/// Upstream's GOARCH names.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `uname -r`.
pub fn kernel_version() -> String {
    // SAFETY: uname(2) fills the zeroed struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: `release` is NUL-terminated by the kernel.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// PRETTY_NAME of /etc/os-release, as upstream reports `osImage`.
pub fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    pretty_name(&text).unwrap_or_else(|| "Linux".to_string())
}

fn pretty_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
}

/// The identity of the machine and its software.
pub fn system_info(runtime_version: &str) -> NodeSystemInfo {
    let roots = kubelet_server::machine::Roots::default();
    let machine = kubelet_server::machine::collect(&roots, "");
    NodeSystemInfo {
        architecture: go_arch().to_string(),
        boot_id: machine.boot_id,
        container_runtime_version: runtime_version.to_string(),
        kernel_version: kernel_version(),
        kube_proxy_version: String::new(),
        kubelet_version: kubelet_config::KUBERNETES_VERSION.to_string(),
        machine_id: machine.machine_id,
        operating_system: std::env::consts::OS.to_string(),
        os_image: os_image(),
        swap: swap_status(machine.swap_capacity),
        system_uuid: machine.system_uuid,
    }
}

/// `nodeInfo.swap`: the swap capacity in bytes, or nothing at all on a node without swap
/// (as upstream's MachineInfo setter; the API server refuses a capacity of 0 with
/// `metadata.nodeSwapStatus.capacity: Invalid value: 0: must be greater than zero`).
pub fn swap_status(capacity_bytes: u64) -> Option<NodeSwapStatus> {
    (capacity_bytes > 0).then(|| NodeSwapStatus {
        capacity: Some(i64::try_from(capacity_bytes).unwrap_or(i64::MAX)),
    })
}

/// InternalIP for each node IP, then Hostname.
pub fn addresses(node_ips: &[String], hostname: &str) -> Vec<NodeAddress> {
    node_ips
        .iter()
        .map(|ip| NodeAddress {
            type_: "InternalIP".into(),
            address: ip.clone(),
        })
        .chain(std::iter::once(NodeAddress {
            type_: "Hostname".into(),
            address: hostname.to_string(),
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts() {
        assert_eq!(
            pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").unwrap(),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert!(!kernel_version().is_empty());
        let info = system_info("containerd://1.6.20");
        assert_eq!(info.kubelet_version, "v1.35.0");
        assert_eq!(info.operating_system, "linux");
        assert!(!info.boot_id.is_empty());
        assert_eq!(
            swap_status(0),
            None,
            "a swapless node reports no swap status"
        );
        assert_eq!(swap_status(2 << 30).and_then(|s| s.capacity), Some(2 << 30));
        let a = addresses(&["10.0.0.5".into()], "node-a");
        assert_eq!(a[0].type_, "InternalIP");
        assert_eq!(a[1].address, "node-a");
    }
}
