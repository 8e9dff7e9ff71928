//! Garbage collection of what pods leave behind: dead containers and sandboxes with
//! their log files ([`containers`], every minute), unused images ([`images`], every five
//! minutes), and pod log directories of pods that no longer exist.
//!
//! Only objects labelled with this kubelet's node name are collected (as everywhere in
//! kubelet-rs); images are node-wide, so an image is "in use" when any container in the
//! runtime uses it. The eviction manager calls [`GarbageCollector::delete_all_unused_containers`]
//! and [`GarbageCollector::delete_unused_images`] to reclaim disk before evicting pods.
//! Every runtime call has the client's timeout; a failing pass is logged and retried on
//! the next period.

pub mod containers;
pub mod images;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use kubelet_source::DesiredPods;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::eviction::fs::statvfs;
use crate::runtime::cri::{CriClient, CriError};
use crate::runtime::labels;
use crate::runtime::model::now_ns;
pub use containers::ContainerGcPolicy;
pub use images::ImageGcPolicy;

/// Upstream ContainerGCPeriod and ImageGCPeriod.
pub const CONTAINER_GC_PERIOD: Duration = Duration::from_secs(60);
pub const IMAGE_GC_PERIOD: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct GcSettings {
    pub node_name: String,
    pub containers: ContainerGcPolicy,
    pub images: ImageGcPolicy,
    /// Images never collected besides the runtime's own pinned ones and sandbox image
    /// (`--pod-infra-container-image`).
    pub pinned_images: Vec<String>,
    pub pod_logs_dir: PathBuf,
    /// Where to statvfs when the runtime does not name its image filesystem.
    pub root_dir: PathBuf,
    pub container_period: Duration,
    pub image_period: Duration,
}

struct Inner {
    cri: CriClient,
    settings: GcSettings,
    desired: watch::Receiver<DesiredPods>,
    images: Mutex<ImageRecords>,
    /// One container collection at a time (periodic and eviction's).
    container_lock: Mutex<()>,
    began: Instant,
}

use images::ImageRecords;

/// Cheap to clone.
#[derive(Clone)]
pub struct GarbageCollector {
    inner: Arc<Inner>,
}

impl GarbageCollector {
    pub fn new(
        cri: CriClient,
        settings: GcSettings,
        desired: watch::Receiver<DesiredPods>,
    ) -> Self {
        GarbageCollector {
            inner: Arc::new(Inner {
                cri,
                settings,
                desired,
                images: Mutex::new(ImageRecords::default()),
                container_lock: Mutex::new(()),
                began: Instant::now(),
            }),
        }
    }

    /// The two periodic loops, until cancelled.
    pub async fn run(self, cancel: CancellationToken) {
        let containers = {
            let gc = self.clone();
            let cancel = cancel.clone();
            async move {
                loop {
                    if let Err(err) = gc.collect_containers().await {
                        tracing::warn!(error = %err, "container garbage collection failed");
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(gc.inner.settings.container_period) => {}
                    }
                }
            }
        };
        let images = {
            let gc = self.clone();
            async move {
                loop {
                    if let Err(err) = gc.collect_images().await {
                        tracing::warn!(error = %err, "image garbage collection failed");
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(gc.inner.settings.image_period) => {}
                    }
                }
            }
        };
        tokio::join!(containers, images);
    }

    /// Upstream DeleteAllUnusedContainers (eviction's reclaim step).
    pub async fn delete_all_unused_containers(&self) {
        tracing::info!("attempting to delete unused containers");
        if let Err(err) = self.collect_containers().await {
            tracing::warn!(error = %err, "deleting unused containers failed");
        }
    }

    /// Upstream DeleteUnusedImages (eviction's reclaim step): every unused image old
    /// enough, whatever the thresholds.
    pub async fn delete_unused_images(&self) {
        tracing::info!("attempting to delete unused images");
        if let Err(err) = self.free_images(i128::MAX).await {
            tracing::warn!(error = %err, "deleting unused images failed");
        }
    }

    fn selector(&self) -> HashMap<String, String> {
        HashMap::from([(
            labels::MANAGED_BY_NODE.to_string(),
            self.inner.settings.node_name.clone(),
        )])
    }

    /// One container collection: dead containers (and their logs), dead sandboxes, and
    /// the log files and directories nothing in the runtime owns any more.
    pub async fn collect_containers(&self) -> Result<(), CriError> {
        let _guard = self.inner.container_lock.lock().await;
        let cri = &self.inner.cri;
        let (configured, ready) = {
            let d = self.inner.desired.borrow();
            (
                d.pods.keys().cloned().collect::<HashSet<String>>(),
                d.all_sources_ready,
            )
        };
        // Read the log directory before listing: a file seen now belongs to a container
        // the listing below shows (containers exist before their log files).
        let logs_dir = self.inner.settings.pod_logs_dir.clone();
        let log_dirs = tokio::task::spawn_blocking(move || list_log_dirs(&logs_dir))
            .await
            .unwrap_or_default();
        let (containers, sandboxes) = tokio::try_join!(
            cri.list_containers(Some(cri::ContainerFilter {
                label_selector: self.selector(),
                ..Default::default()
            })),
            cri.list_pod_sandbox(Some(cri::PodSandboxFilter {
                label_selector: self.selector(),
                ..Default::default()
            })),
        )?;
        let plan = containers::plan(
            &containers,
            &sandboxes,
            &configured,
            ready,
            &self.inner.settings.containers,
            now_ns(),
        );
        let mut removed = HashSet::new();
        for (id, unknown) in &plan.containers {
            if *unknown && let Err(err) = cri.stop_container(id, 0).await {
                tracing::warn!(container = %id, error = %err, "cannot stop container in unknown state before removal");
                continue;
            }
            let log_path = cri.container_status(id).await.ok().map(|s| s.log_path);
            match cri.remove_container(id).await {
                Ok(()) => {
                    tracing::info!(container = %id, "removed dead container");
                    removed.insert(id.clone());
                    if let Some(path) = log_path.filter(|p| !p.is_empty()) {
                        remove_log_files(Path::new(&path));
                    }
                }
                Err(err) if err.is_not_found() => {
                    removed.insert(id.clone());
                }
                Err(err) => {
                    tracing::warn!(container = %id, error = %err, "failed to remove container")
                }
            }
        }
        for id in &plan.sandboxes {
            if let Err(err) = cri.stop_pod_sandbox(id).await
                && !err.is_not_found()
            {
                tracing::warn!(sandbox = %id, error = %err, "failed to stop sandbox before removal");
                continue;
            }
            match cri.remove_pod_sandbox(id).await {
                Ok(()) => tracing::info!(sandbox = %id, "removed dead sandbox"),
                Err(err) if err.is_not_found() => {}
                Err(err) => tracing::warn!(sandbox = %id, error = %err, "failed to remove sandbox"),
            }
        }
        // Logs: files of containers that no longer exist, directories of pods that no
        // longer exist anywhere in the runtime.
        let remaining: Vec<&cri::Container> = containers
            .iter()
            .filter(|c| !removed.contains(&c.id))
            .collect();
        let mut expected: HashMap<String, HashSet<String>> = HashMap::new();
        for c in &remaining {
            if let (Some(uid), Some(name)) = (
                c.labels.get(labels::POD_UID),
                c.labels.get(labels::CONTAINER_NAME),
            ) {
                let n = labels::restart_count(&c.annotations);
                expected
                    .entry(uid.clone())
                    .or_default()
                    .insert(crate::runtime::container::container_log_path(name, n));
            }
        }
        if ready && log_dirs.iter().any(|d| !configured.contains(&d.uid)) {
            // A pod dir may only go when no runtime object of any node has its UID.
            let (all_sandboxes, all_containers) =
                tokio::try_join!(cri.list_pod_sandbox(None), cri.list_containers(None))?;
            let live: HashSet<String> = all_sandboxes
                .iter()
                .filter_map(|s| s.labels.get(labels::POD_UID).cloned())
                .chain(
                    all_containers
                        .iter()
                        .filter_map(|c| c.labels.get(labels::POD_UID).cloned()),
                )
                .collect();
            for d in &log_dirs {
                let (dir, uid) = (&d.path, &d.uid);
                if !configured.contains(uid) && !live.contains(uid) {
                    match std::fs::remove_dir_all(dir) {
                        Ok(()) => {
                            tracing::info!(dir = %dir.display(), "removed log directory of a pod that no longer exists")
                        }
                        // Its pod's worker removed it while the lists were read.
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => {
                            tracing::warn!(dir = %dir.display(), error = %err, "failed to remove pod log directory")
                        }
                    }
                }
            }
        }
        // Our own pods' directories: files of containers that are gone.
        let ours: HashSet<String> = containers
            .iter()
            .filter_map(|c| c.labels.get(labels::POD_UID).cloned())
            .chain(
                sandboxes
                    .iter()
                    .filter_map(|s| s.labels.get(labels::POD_UID).cloned()),
            )
            .collect();
        for d in &log_dirs {
            if ours.contains(&d.uid) {
                let keep = expected.remove(&d.uid).unwrap_or_default();
                remove_stale_container_logs(d, &keep);
            }
        }
        Ok(())
    }

    /// Update the image records; returns (images, in use).
    async fn detect_images(
        &self,
        records: &mut ImageRecords,
    ) -> Result<(Vec<cri::Image>, HashSet<String>), CriError> {
        let cri = &self.inner.cri;
        let (images, all_containers) =
            tokio::try_join!(cri.list_images(), cri.list_containers(None))?;
        let used = images::images_in_use(&all_containers);
        let mut pinned = self.inner.settings.pinned_images.clone();
        if let Some(sandbox) = self.sandbox_image().await {
            pinned.push(sandbox);
        }
        let in_use = records.detect(&images, &used, &pinned, Instant::now());
        Ok((images, in_use))
    }

    /// The runtime's sandbox (pause) image, from containerd's verbose status.
    async fn sandbox_image(&self) -> Option<String> {
        let status = self.inner.cri.status_verbose().await.ok()?;
        let config = status.info.get("config")?;
        let v: serde_json::Value = serde_json::from_str(config).ok()?;
        v.get("sandboxImage")?.as_str().map(str::to_string)
    }

    /// One periodic image collection: images over the maximum age, then the threshold.
    pub async fn collect_images(&self) -> Result<(), CriError> {
        let policy = self.inner.settings.images;
        let mut records = self.inner.images.lock().await;
        let (_, in_use) = self.detect_images(&mut records).await?;
        let now = Instant::now();
        let old = records.old_images(&in_use, &policy, self.inner.began, now);
        let mut removed = HashSet::new();
        for r in old {
            if self.remove_image(&r, "age").await {
                removed.insert(r.id.clone());
            }
        }
        for id in &removed {
            records.records.remove(id);
        }
        let Some((capacity, available)) = self.image_fs_usage().await else {
            return Ok(());
        };
        let Some(bytes) = images::bytes_to_free(capacity, available, &policy) else {
            return Ok(());
        };
        tracing::info!(
            usage_percent = (100 - available * 100 / capacity.max(1)) as i64,
            high_threshold = policy.high_threshold_percent,
            low_threshold = policy.low_threshold_percent,
            bytes_to_free = bytes as i64,
            "disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold"
        );
        let plan = records.to_free(bytes, &in_use, &removed, policy.min_age, now);
        let mut freed: i128 = 0;
        for r in plan {
            if self.remove_image(&r, "space").await {
                freed += r.size as i128;
                records.records.remove(&r.id);
            }
        }
        if freed < bytes {
            tracing::warn!(
                wanted = bytes as i64,
                freed = freed as i64,
                "failed to garbage collect required amount of images"
            );
        }
        Ok(())
    }

    async fn free_images(&self, bytes: i128) -> Result<i128, CriError> {
        let mut records = self.inner.images.lock().await;
        let (_, in_use) = self.detect_images(&mut records).await?;
        let plan = records.to_free(
            bytes,
            &in_use,
            &HashSet::new(),
            self.inner.settings.images.min_age,
            Instant::now(),
        );
        let mut freed = 0;
        for r in plan {
            if self.remove_image(&r, "space").await {
                freed += r.size as i128;
                records.records.remove(&r.id);
            }
        }
        Ok(freed)
    }

    async fn remove_image(&self, r: &images::Removal, why: &str) -> bool {
        match self.inner.cri.remove_image(&r.id).await {
            Ok(()) => {
                tracing::info!(image = %r.name, id = %r.id, size = r.size, reason = why, "removed unused image");
                true
            }
            Err(err) if err.is_not_found() => true,
            Err(err) => {
                tracing::warn!(image = %r.name, error = %err, "failed to remove image");
                false
            }
        }
    }

    /// (capacity, available) of the image filesystem.
    async fn image_fs_usage(&self) -> Option<(i128, i128)> {
        let mount = self
            .inner
            .cri
            .image_fs_info()
            .await
            .ok()
            .and_then(|i| i.image_filesystems.into_iter().next())
            .and_then(|f| f.fs_id)
            .map(|id| PathBuf::from(id.mountpoint))
            .filter(|p| p.is_absolute() && p.exists())
            .unwrap_or_else(|| self.inner.settings.root_dir.clone());
        let fs = tokio::task::spawn_blocking(move || statvfs(&mount))
            .await
            .ok()?
            .ok()?;
        Some((fs.capacity_bytes, fs.available_bytes))
    }
}

/// A `<podLogsDir>/<ns>_<name>_<uid>` directory as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogDir {
    path: PathBuf,
    uid: String,
    /// `<container>/<file>` entries present when read.
    files: Vec<String>,
}

fn list_log_dirs(dir: &Path) -> Vec<LogDir> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.rsplitn(2, '_');
            let uid = parts.next()?.to_string();
            if !parts.next()?.contains('_') {
                return None;
            }
            let mut files = Vec::new();
            for c in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                if !c.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let cname = c.file_name().to_string_lossy().into_owned();
                for f in std::fs::read_dir(c.path()).into_iter().flatten().flatten() {
                    files.push(format!("{cname}/{}", f.file_name().to_string_lossy()));
                }
            }
            Some(LogDir {
                path: e.path(),
                uid,
                files,
            })
        })
        .collect()
}

/// A container's log file and its rotated (and compressed) predecessors.
pub fn remove_log_files(path: &Path) {
    for f in crate::logs::all_log_files(path) {
        if let Err(err) = std::fs::remove_file(&f)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %f.display(), error = %err, "failed to remove container log");
        }
    }
}

/// In a pod's log dir, remove the `<container>/<n>.log*` files (as read before the
/// runtime was listed) whose container is gone; `keep` lists `<container>/<n>.log` of
/// the containers that exist.
fn remove_stale_container_logs(dir: &LogDir, keep: &HashSet<String>) {
    for rel in &dir.files {
        let Some((cname, fname)) = rel.split_once('/') else {
            continue;
        };
        // "3.log", "3.log.20240101-000000", "3.log.20240101-000000.gz"
        let Some((n, _)) = fname.split_once(".log") else {
            continue;
        };
        if n.parse::<u32>().is_err() || keep.contains(&format!("{cname}/{n}.log")) {
            continue;
        }
        let path = dir.path.join(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "removed log file of a removed container")
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "cannot remove stale log file")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_dirs_and_stale_files() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("default_web_uid-1");
        std::fs::create_dir_all(pod.join("main")).unwrap();
        std::fs::create_dir_all(dir.path().join("not-a-pod-dir")).unwrap();
        for f in [
            "0.log",
            "1.log",
            "1.log.20240101-000000.gz",
            "2.log",
            "2.log.20240101-000001",
        ] {
            std::fs::write(pod.join("main").join(f), "x").unwrap();
        }
        let dirs = list_log_dirs(dir.path());
        assert_eq!(dirs.len(), 1);
        assert_eq!(
            (dirs[0].path.clone(), dirs[0].uid.as_str()),
            (pod.clone(), "uid-1")
        );
        // Written after the directory was read: left alone.
        std::fs::write(pod.join("main/3.log"), "x").unwrap();
        let keep: HashSet<String> = ["main/2.log".to_string()].into();
        remove_stale_container_logs(&dirs[0], &keep);
        let mut left: Vec<String> = std::fs::read_dir(pod.join("main"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["2.log", "2.log.20240101-000001", "3.log"]);
    }
}
