//! Termination messages (upstream convertToKubeContainerStatus / getTerminationMessage):
//! when a container has exited, the last 4096 bytes of the file it wrote at
//! `terminationMessagePath` are appended to the runtime's message. With
//! `terminationMessagePolicy: FallbackToLogsOnError`, a container that failed and wrote
//! nothing gets the tail of its log instead: the last 80 lines, at most 2048 bytes. The
//! pod status then cuts every message to an equal share of 12 KiB.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::runtime::cri::CriClient;
use crate::runtime::labels;

/// Upstream MaxContainerTerminationMessageLength.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;
/// Upstream MaxContainerTerminationMessageLogLength / MaxContainerTerminationMessageLogLines.
pub const MAX_LOG_BYTES: usize = 2 * 1024;
pub const MAX_LOG_LINES: usize = 80;
/// Upstream MaxPodTerminationMessageLogLength: shared by all containers of a pod.
pub const MAX_POD_MESSAGE_BYTES: usize = 12 * 1024;

/// The last `max` bytes of a file.
pub fn read_tail(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max as u64);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The content of the last `lines` log lines of a CRI log file (`<time> <stream> <P|F>
/// <text>`; partial lines are joined), keeping the last `max_bytes` bytes.
pub fn log_tail(path: &Path, lines: usize, max_bytes: usize) -> std::io::Result<String> {
    // Enough raw bytes for 80 ordinary lines; a few huge lines are cut, which is what the
    // byte limit does anyway.
    let raw = read_tail(path, 256 * 1024)?;
    let text = String::from_utf8_lossy(&raw);
    let mut records: Vec<String> = Vec::new();
    let mut partial = String::new();
    for line in text.lines() {
        let mut fields = line.splitn(4, ' ');
        let (Some(_time), Some(_stream), Some(tag)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let content = fields.next().unwrap_or_default();
        partial.push_str(content);
        if tag != "P" {
            partial.push('\n');
            records.push(std::mem::take(&mut partial));
        }
    }
    if !partial.is_empty() {
        records.push(partial);
    }
    let start = records.len().saturating_sub(lines);
    let joined: String = records[start..].concat();
    Ok(last_bytes(&joined, max_bytes).to_string())
}

/// The last `max` bytes of `s`, starting on a character boundary.
pub fn last_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The first `max` bytes of `s`, ending on a character boundary.
pub fn first_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Why a container exited, beyond its exit code: the runtime's reason and message.
pub struct Exit<'a> {
    pub container_id: &'a str,
    pub exit_code: i32,
    pub reason: &'a str,
    pub message: &'a str,
}

/// The full message of an exited container: the runtime's message, then (after ": ")
/// what the container left at its termination message path or, with
/// FallbackToLogsOnError after a failure, its log tail. Reads the container's mounts and
/// log path from the runtime; `None` when the runtime cannot say.
pub async fn message(cri: &CriClient, exit: &Exit<'_>) -> Option<String> {
    let status = cri.container_status(exit.container_id).await.ok()?;
    let path = status
        .annotations
        .get(labels::CONTAINER_TERMINATION_MESSAGE_PATH)
        .cloned()
        .unwrap_or_default();
    let policy = status
        .annotations
        .get(labels::CONTAINER_TERMINATION_MESSAGE_POLICY)
        .map(String::as_str)
        .unwrap_or("File");
    // As upstream: a container that could not even start has no logs worth reading, as
    // far as docker's reason says so. containerd's `StartError` is not excluded (upstream
    // reads the, empty, log of such a container too).
    let fallback = policy == "FallbackToLogsOnError"
        && exit.exit_code != 0
        && exit.reason != "ContainerCannotRun";
    let host_file = status
        .mounts
        .iter()
        .find(|m| !path.is_empty() && m.container_path == path)
        .map(|m| m.host_path.clone());
    let (mut text, check_logs) = match host_file {
        None => (String::new(), fallback),
        Some(file) => match read_tail(Path::new(&file), MAX_MESSAGE_BYTES) {
            Ok(data) => {
                let empty = data.is_empty();
                (
                    String::from_utf8_lossy(&data).into_owned(),
                    fallback && empty,
                )
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => (String::new(), fallback),
            Err(err) => (
                format!("Error on reading termination log {file}: {err}"),
                false,
            ),
        },
    };
    if check_logs && !status.log_path.is_empty() {
        text = match log_tail(Path::new(&status.log_path), MAX_LOG_LINES, MAX_LOG_BYTES) {
            Ok(t) => t,
            Err(err) => format!("Error on reading termination message from logs: {err}"),
        };
    }
    Some(compose(exit.message, &text))
}

/// `runtime message: container message`, either part may be empty.
pub fn compose(runtime: &str, written: &str) -> String {
    match (runtime.is_empty(), written.is_empty()) {
        (_, true) => runtime.to_string(),
        (true, false) => written.to_string(),
        (false, false) => format!("{runtime}: {written}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_of_a_file_is_limited() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("msg");
        let long = format!("{}END", "x".repeat(5000));
        std::fs::write(&f, &long).unwrap();
        let tail = read_tail(&f, MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(tail.len(), MAX_MESSAGE_BYTES);
        assert!(tail.ends_with(b"END"));
        std::fs::write(&f, "short").unwrap();
        assert_eq!(read_tail(&f, MAX_MESSAGE_BYTES).unwrap(), b"short");
    }

    #[test]
    fn log_tail_joins_partials_and_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("0.log");
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&format!(
                "2024-01-01T00:00:00.000000000Z stdout F line {i}\n"
            ));
        }
        text.push_str("2024-01-01T00:00:00.1Z stderr P half \n");
        text.push_str("2024-01-01T00:00:00.2Z stderr F and half\n");
        std::fs::write(&f, &text).unwrap();
        let tail = log_tail(&f, 80, 1 << 20).unwrap();
        assert_eq!(tail.lines().count(), 80);
        assert!(tail.starts_with("line 21\n"), "{tail}");
        assert!(tail.ends_with("half and half\n"), "{tail}");
        let small = log_tail(&f, 80, 20).unwrap();
        assert_eq!(small.len(), 20);
        assert!(small.ends_with("half and half\n"));
    }

    #[test]
    fn byte_cuts_respect_characters() {
        assert_eq!(last_bytes("héllo", 4), "llo");
        assert_eq!(first_bytes("héllo", 2), "h");
        assert_eq!(compose("OOMKilled", ""), "OOMKilled");
        assert_eq!(compose("", "bye"), "bye");
        assert_eq!(compose("Error", "bye"), "Error: bye");
    }
}
