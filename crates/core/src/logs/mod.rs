//! Container log rotation (upstream pkg/kubelet/logs/container_log_manager.go) and
//! reading a log across its rotations.
//!
//! # Rotation
//!
//! Every `containerLogMonitorInterval` (10 s) the [`LogRotator`] looks at the running
//! containers of this node. When a container's log file has reached
//! `containerLogMaxSize` (10Mi) it:
//!
//! 1. removes leftovers of an interrupted rotation (`*.tmp`, and plain files whose `.gz`
//!    exists);
//! 2. removes the oldest rotated files so at most `containerLogMaxFiles − 2` remain
//!    (with the current file and the one being rotated that makes `containerLogMaxFiles`);
//! 3. compresses every rotated file that is not compressed yet to `<file>.gz` (gzip,
//!    through `<file>.gz.tmp` renamed into place);
//! 4. renames the current file to `<file>.<YYYYMMDD-hhmmss>` (UTC) and asks the runtime
//!    to reopen the log (CRI `ReopenContainerLog`); if that fails the rename is undone.
//!
//! So the newest rotated file stays uncompressed (a reader may still be finishing it)
//! and older ones are `.gz`. `containerLogMaxSize` below zero disables rotation.
//!
//! # Reading across rotation (API for the node API's containerLogs)
//!
//! A container's log path (CRI `ContainerStatus.log_path`, `<pod log dir>/<container>/
//! <restartCount>.log`) always names the current file. The node API keeps reading it as
//! upstream does; a reader that follows (`follow=true`) and sees the path name another
//! inode finishes the old file (it is renamed, not truncated, so an open handle still
//! reads it to the end) and opens the new one. For the whole history use:
//!
//! - [`all_log_files`]`(path)`: the rotated files oldest first, then the current one;
//! - [`open_log_file`]`(file)`: a reader of one of them, decompressing `.gz`;
//! - [`open_all`]`(path)`: one reader over all of them in order (CRI log lines, oldest
//!   first), for a `containerLogs` request that wants more than the current file holds.

pub mod rotate;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1 as cri;
use tokio_util::sync::CancellationToken;

use crate::runtime::cri::CriClient;
use crate::runtime::labels;

pub use rotate::RotatePolicy;

/// Suffix of compressed rotated files.
pub const COMPRESS_SUFFIX: &str = ".gz";
/// Suffix of a compression in progress.
pub const TMP_SUFFIX: &str = ".tmp";

/// The rotated files of `path` (oldest first, temporary files and files already
/// compressed left out), then `path` itself if it exists.
pub fn all_log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = rotate::in_use(&rotate::rotated_files(path));
    if path.exists() {
        files.push(path.to_path_buf());
    }
    files
}

/// A reader of one log file; `.gz` files are decompressed.
pub fn open_log_file(file: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let f = File::open(file)?;
    if file.to_string_lossy().ends_with(COMPRESS_SUFFIX) {
        Ok(Box::new(flate2::read::GzDecoder::new(BufReader::new(f))))
    } else {
        Ok(Box::new(f))
    }
}

/// One reader over every file of a container's log, oldest first. Files that vanish
/// between listing and opening (rotation removed them) are skipped.
pub fn open_all(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let mut reader: Box<dyn Read + Send> = Box::new(std::io::empty());
    let mut any = false;
    for f in all_log_files(path) {
        match open_log_file(&f) {
            Ok(r) => {
                reader = Box::new(reader.chain(r));
                any = true;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    if !any {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no log file at {}", path.display()),
        ));
    }
    Ok(reader)
}

/// Rotates the logs of this node's running containers.
pub struct LogRotator {
    cri: CriClient,
    node_name: String,
    policy: RotatePolicy,
    interval: Duration,
}

impl LogRotator {
    pub fn new(
        cri: CriClient,
        node_name: String,
        policy: RotatePolicy,
        interval: Duration,
    ) -> Self {
        LogRotator {
            cri,
            node_name,
            policy,
            interval,
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        if self.policy.max_size < 0 {
            tracing::info!("container log rotation is disabled (containerLogMaxSize < 0)");
            // Idle until shutdown: a supervised loop that returns early is a failure.
            cancel.cancelled().await;
            return;
        }
        // Log paths by container ID: a container's path never changes.
        let mut paths: HashMap<String, String> = HashMap::new();
        let mut failures: u32 = 0;
        loop {
            match self.pass(&mut paths).await {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(error = %err, "failed to rotate container logs");
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    async fn pass(
        &self,
        paths: &mut HashMap<String, String>,
    ) -> Result<(), crate::runtime::cri::CriError> {
        let containers = self
            .cri
            .list_containers(Some(cri::ContainerFilter {
                state: Some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                label_selector: [(labels::MANAGED_BY_NODE.to_string(), self.node_name.clone())]
                    .into(),
                ..Default::default()
            }))
            .await?;
        paths.retain(|id, _| containers.iter().any(|c| &c.id == id));
        for c in &containers {
            let path = match paths.get(&c.id) {
                Some(p) => p.clone(),
                None => match self.cri.container_status(&c.id).await {
                    Ok(s) => {
                        paths.insert(c.id.clone(), s.log_path.clone());
                        s.log_path
                    }
                    Err(err) => {
                        tracing::debug!(container = %c.id, error = %err, "cannot get container status for log rotation");
                        continue;
                    }
                },
            };
            if path.is_empty() {
                continue;
            }
            self.check(&c.id, Path::new(&path)).await;
        }
        Ok(())
    }

    async fn check(&self, id: &str, path: &Path) {
        let size = match std::fs::metadata(path) {
            Ok(m) => m.len() as i64,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // A rotation may have lost the file (reopen failed after the rename).
                if let Err(err) = self.cri.reopen_container_log(id).await {
                    tracing::debug!(container = %id, error = %err, "container log is missing and cannot be reopened");
                }
                return;
            }
            Err(_) => return,
        };
        if size < self.policy.max_size {
            return;
        }
        let policy = self.policy;
        let p = path.to_path_buf();
        let prepared = tokio::task::spawn_blocking(move || rotate::prepare(&p, &policy)).await;
        if let Ok(Err(err)) = prepared {
            tracing::warn!(path = %path.display(), error = %err, "failed to prepare log rotation");
            return;
        }
        let rotated = match rotate::rename_current(path, now_secs()) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "failed to rotate container log");
                return;
            }
        };
        if let Err(err) = self.cri.reopen_container_log(id).await {
            tracing::warn!(container = %id, error = %err, "failed to reopen container log; undoing the rotation");
            if let Err(err) = std::fs::rename(&rotated, path) {
                tracing::error!(path = %path.display(), error = %err, "failed to rename rotated log back");
            }
            return;
        }
        tracing::info!(container = %id, path = %path.display(), size, "rotated container log");
    }
}

/// Seconds since the epoch, for the rotated file's timestamp.
fn now_secs() -> i64 {
    crate::runtime::model::now_ns() / 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_every_rotation_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let gz = dir.path().join("0.log.20240101-000000.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"one\n").unwrap();
        enc.finish().unwrap();
        std::fs::write(dir.path().join("0.log.20240101-000001"), "two\n").unwrap();
        std::fs::write(dir.path().join("0.log.20240101-000002.tmp"), "junk\n").unwrap();
        std::fs::write(&path, "three\n").unwrap();
        let files = all_log_files(&path);
        assert_eq!(files.len(), 3);
        let mut text = String::new();
        open_all(&path).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "one\ntwo\nthree\n");
        assert!(open_all(&dir.path().join("9.log")).is_err());
    }
}
