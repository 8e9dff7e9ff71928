//! Is the kubelet binary linked with a current symbol ordering file? build.rs places the
//! functions listed in link/symbol-order.txt first in `.text`; names that no longer exist
//! (code changed since scripts/symbol-order.sh recorded them) fall back to the default
//! placement and each costs resident memory. The report states how many still match.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

/// The ordering file of this source tree.
const ORDER_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../link/symbol-order.txt");

/// "N of M ordered functions present", with a hint when the file is stale.
pub fn describe(kubelet: &Path) -> String {
    let Ok(order) = std::fs::read_to_string(ORDER_FILE) else {
        return "no symbol ordering file".to_string();
    };
    let wanted: Vec<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    let output = match Command::new("nm")
        .arg("--defined-only")
        .arg(kubelet)
        .output()
    {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => return format!("nm failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => return format!("nm not available: {e}"),
    };
    let text = String::from_utf8_lossy(&output);
    let present: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let found = wanted.iter().filter(|s| present.contains(*s)).count();
    let mut line = format!(
        "{found} of {} ordered functions present (link/symbol-order.txt)",
        wanted.len()
    );
    if found * 100 < wanted.len() * 98 {
        line.push_str(": stale, run scripts/symbol-order.sh and rebuild");
    }
    line
}
