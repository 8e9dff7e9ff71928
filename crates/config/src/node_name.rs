//! The node name: `--hostname-override`, or the host name, trimmed and
//! lower-cased like upstream `nodeutil.GetHostname`. No DNS lookup is made.

/// Derives the node name from an optional override, falling back to the
/// kernel host name.
pub(crate) fn node_name(hostname_override: Option<&str>) -> Result<String, String> {
    let raw = match hostname_override {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => host_name()?,
    };
    normalize(&raw)
}

fn normalize(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("empty hostname is invalid".to_string());
    }
    Ok(name.to_lowercase())
}

/// Reads the host name like Go's `os.Hostname` on Linux: the procfs file
/// first, then `gethostname(2)`.
fn host_name() -> Result<String, String> {
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname")
        && !name.trim().is_empty()
    {
        return Ok(name);
    }
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; gethostname
    // writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(format!(
            "couldn't determine hostname: {}",
            std::io::Error::last_os_error()
        ));
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_is_trimmed_and_lowercased() {
        assert_eq!(
            node_name(Some("  Node-1.Example \n")),
            Ok("node-1.example".to_string())
        );
    }

    #[test]
    fn falls_back_to_the_host_name() {
        let name = node_name(None).unwrap();
        assert!(!name.is_empty());
        assert_eq!(name, name.trim().to_lowercase());
        assert_eq!(
            node_name(Some("")).unwrap(),
            name,
            "empty override means no override"
        );
    }

    #[test]
    fn empty_names_are_rejected() {
        assert_eq!(
            normalize(" \n"),
            Err("empty hostname is invalid".to_string())
        );
        assert_eq!(
            node_name(Some("  ")),
            Err("empty hostname is invalid".to_string())
        );
    }
}
