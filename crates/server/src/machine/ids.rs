//! Identifiers: machine-id, boot id, system UUID, and the cloud the machine runs in
//! (from DMI, never from a metadata server: the kubelet must not wait on the network).

use std::path::Path;

use super::{Roots, read_trim};

pub fn machine_id(roots: &Roots) -> String {
    [
        roots.etc.join("machine-id"),
        Path::new("/var/lib/dbus/machine-id").to_path_buf(),
    ]
    .iter()
    .find_map(|p| read_trim(p).filter(|s| !s.is_empty()))
    .unwrap_or_default()
}

pub fn boot_id(roots: &Roots) -> String {
    read_trim(&roots.proc.join("sys/kernel/random/boot_id")).unwrap_or_default()
}

fn dmi(roots: &Roots, name: &str) -> Option<String> {
    read_trim(&roots.sys.join("class/dmi/id").join(name)).filter(|s| !s.is_empty())
}

/// DMI product UUID (upper case as cAdvisor reports it); empty when not readable.
pub fn system_uuid(roots: &Roots) -> String {
    dmi(roots, "product_uuid")
        .map(|s| s.to_uppercase())
        .unwrap_or_default()
}

pub struct Cloud {
    pub provider: String,
    pub instance_type: String,
    pub instance_id: String,
}

/// cAdvisor's cloud detection from DMI vendor strings. Instance type and id need the
/// cloud's metadata server, which the kubelet does not query: "Unknown" and "None".
pub fn cloud(roots: &Roots, flag: &str) -> Cloud {
    let vendor = [
        dmi(roots, "sys_vendor"),
        dmi(roots, "bios_vendor"),
        dmi(roots, "product_name"),
        dmi(roots, "bios_version"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let provider = if vendor.contains("Amazon") || vendor.contains("amazon") {
        "AWS"
    } else if vendor.contains("Google") {
        "GCE"
    } else if vendor.contains("Microsoft Corporation") {
        "Azure"
    } else {
        match flag.to_ascii_lowercase().as_str() {
            "aws" => "AWS",
            "gce" => "GCE",
            "azure" => "Azure",
            _ => "Unknown",
        }
    };
    Cloud {
        provider: provider.into(),
        instance_type: "Unknown".into(),
        instance_id: "None".into(),
    }
}
