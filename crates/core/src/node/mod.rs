//! Facts about this node the pod code needs: its IP addresses.

use std::net::{IpAddr, Ipv4Addr};

/// The node's IPs: `--node-ip` when given, else the first IPv4 address of the interface
/// that holds the default route, else of any non-loopback interface. Upstream resolves
/// the node name through DNS here; a lookup per pod start is slow where the resolver
/// drops queries, so kubelet-rs reads the interfaces instead.
pub fn host_ips(node_ip: &[IpAddr]) -> Vec<String> {
    if !node_ip.is_empty() && !node_ip.iter().all(|ip| ip.is_unspecified()) {
        return node_ip.iter().map(|ip| ip.to_string()).collect();
    }
    let addrs = interface_addresses();
    let default_if = default_route_interface();
    let pick = default_if
        .as_deref()
        .and_then(|name| addrs.iter().find(|(n, _)| n == name))
        .or_else(|| addrs.iter().find(|(_, ip)| !ip.is_loopback()));
    pick.map(|(_, ip)| vec![ip.to_string()]).unwrap_or_default()
}

fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let iface = cols.next()?;
        (cols.next()? == "00000000").then(|| iface.to_string())
    })
}

/// (interface, IPv4) pairs of interfaces that are up.
fn interface_addresses() -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
            if up
                && !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned();
                out.push((name, ip));
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_node_ip_wins() {
        let ips = host_ips(&["192.0.2.7".parse().unwrap()]);
        assert_eq!(ips, vec!["192.0.2.7"]);
    }

    #[test]
    fn detected_ip_is_not_loopback_when_the_machine_has_a_network() {
        let ips = host_ips(&[]);
        let has_nic = interface_addresses()
            .iter()
            .any(|(_, ip)| !ip.is_loopback());
        assert_eq!(!ips.is_empty(), has_nic);
        if let Some(ip) = ips.first() {
            assert!(!ip.parse::<Ipv4Addr>().unwrap().is_loopback());
        }
    }
}
