//! Network devices, skipping the ones cAdvisor ignores (loopback, veth, docker, nerdctl).

use super::{NetInfo, Roots, read_trim};

const IGNORED_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

pub fn devices(roots: &Roots) -> Vec<NetInfo> {
    let dir = roots.sys.join("class/net");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<NetInfo> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if IGNORED_PREFIXES.iter().any(|p| name.starts_with(p)) {
                return None;
            }
            let path = dir.join(&name);
            let speed = read_trim(&path.join("speed"))
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|s| *s > 0)
                .unwrap_or(0);
            Some(NetInfo {
                mac_address: read_trim(&path.join("address")).unwrap_or_default(),
                mtu: read_trim(&path.join("mtu"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                speed,
                name,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
