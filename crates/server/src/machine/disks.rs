//! Block devices (`disk_map`), keyed "major:minor" as cAdvisor does.

use std::collections::BTreeMap;

use super::{DiskInfo, Roots, read_trim, read_u64};

pub fn disk_map(roots: &Roots) -> BTreeMap<String, DiskInfo> {
    let dir = roots.sys.join("block");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["loop", "ram", "sr"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let path = dir.join(&name);
        let Some((major, minor)) = read_trim(&path.join("dev")).and_then(|d| {
            let (a, b) = d.split_once(':')?;
            Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
        }) else {
            continue;
        };
        let size = read_u64(&path.join("size")).unwrap_or(0) * 512;
        out.insert(
            format!("{major}:{minor}"),
            DiskInfo {
                name,
                major,
                minor,
                size,
                scheduler: scheduler(read_trim(&path.join("queue/scheduler"))),
            },
        );
    }
    out
}

/// The selected scheduler is the one in brackets: "none [mq-deadline] kyber" -> "mq-deadline".
fn scheduler(text: Option<String>) -> String {
    let Some(text) = text else {
        return "none".into();
    };
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .unwrap_or("none")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::scheduler;

    #[test]
    fn picks_bracketed_scheduler() {
        assert_eq!(
            scheduler(Some("none [mq-deadline] kyber bfq".into())),
            "mq-deadline"
        );
        assert_eq!(scheduler(Some("[none] mq-deadline".into())), "none");
        assert_eq!(scheduler(None), "none");
    }
}
