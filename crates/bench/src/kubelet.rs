//! One kubelet-rs process in standalone mode: its own directory (manifests, root dir, pod
//! logs, config, log file), a unique node name, a read-only port for the node API. Dropped
//! = SIGTERM (the kubelet leaves pods running; the bench purges them).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Log filter: the kubelet's default (info) plus the PLEG's per-relist trace line, which
/// is how the relist duration is read without turning on trace logging everywhere.
const LOG_FILTER: &str = "warn,kubelet=info,kubelet_core=info,kubelet_source=info,kubelet_rs=info,\
                          kubelet_server=info,kubelet_core::pleg=trace";

pub struct Kubelet {
    child: Option<Child>,
    pub name: String,
    pub manifests: PathBuf,
    pub log: PathBuf,
    pub read_only_port: u16,
}

/// A port nobody listens on right now (bind to 0, read it, close).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The bench's pod: busybox `sleep` under a shell that exits at once on SIGTERM, so
/// teardown measures the kubelet and not a grace period (`sleep` as PID 1 ignores
/// SIGTERM). `arg` changes the spec (an edit).
pub fn manifest(name: &str, arg: u64) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n  \
         containers:\n  - name: sleep\n    image: busybox\n    imagePullPolicy: IfNotPresent\n    \
         command: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; sleep {arg} & wait\"]\n"
    )
}

impl Kubelet {
    /// `max_pods`: the bench runs N pods plus an extra one (the remove reaction), so above
    /// the default of 110 it raises maxPods.
    ///
    /// Image GC and disk-pressure eviction are off (memory eviction stays at its default):
    /// the disk of a shared development machine can sit near the 85% / 15% thresholds,
    /// and then a bench kubelet would evict its own pods mid-measurement and delete images
    /// other kubelets and tests on the same containerd use.
    pub fn start(
        bin: &Path,
        dir: &Path,
        name: &str,
        endpoint: &str,
        max_pods: usize,
    ) -> anyhow::Result<Kubelet> {
        let manifests = dir.join("manifests");
        let root = dir.join("root");
        let logs = dir.join("pod-logs");
        std::fs::create_dir_all(&manifests)?;
        let read_only_port = free_port()?;
        let healthz_port = free_port()?;
        let config = dir.join("kubelet.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                 staticPodPath: {}\npodLogsDir: {}\ncontainerRuntimeEndpoint: {endpoint}\n\
                 fileCheckFrequency: 20s\nenableServer: false\naddress: 127.0.0.1\n\
                 readOnlyPort: {read_only_port}\nhealthzPort: {healthz_port}\n\
                 healthzBindAddress: 127.0.0.1\nmaxPods: {max_pods}\n\
                 imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\nfailCgroupV1: false\n\
                 evictionHard: {{memory.available: 100Mi, nodefs.available: \"0%\", \
                 nodefs.inodesFree: \"0%\", imagefs.available: \"0%\", imagefs.inodesFree: \"0%\"}}\n",
                manifests.display(),
                logs.display(),
            ),
        )?;
        let log = dir.join("kubelet.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg(format!("--config={}", config.display()))
            .arg(format!("--root-dir={}", root.display()))
            .arg(format!("--hostname-override={name}"))
            .env("KUBELET_LOG", LOG_FILTER)
            .env("NO_COLOR", "1")
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Kubelet {
            child: Some(child),
            name: name.to_string(),
            manifests,
            log,
            read_only_port,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Wait until the kubelet has reached the runtime (its "connected" log line).
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            if !self.alive() {
                bail!("kubelet exited at start:\n{}", self.log_tail(30));
            }
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("connected to container runtime") {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!(
                    "kubelet not connected to the runtime after {timeout:?}:\n{}",
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM and wait (SIGKILL after 10 s); how long it took to exit.
    pub fn stop(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        let t0 = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(t0.elapsed());
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    fn log_range(&self, from: u64, to: u64) -> String {
        let mut buf = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.log)
            && f.seek(SeekFrom::Start(from)).is_ok()
        {
            let _ = f.take(to.saturating_sub(from)).read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// PLEG relist durations (seconds) logged between two log offsets.
    pub fn relists(&self, from: u64, to: u64) -> Vec<f64> {
        self.log_range(from, to)
            .lines()
            .filter(|l| l.contains("PLEG relist"))
            .filter_map(|l| {
                let v = l.split("elapsed_us=").nth(1)?;
                let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse::<f64>().ok().map(|us| us / 1e6)
            })
            .collect()
    }

    /// Warnings and errors logged between two offsets (a sign something went wrong).
    pub fn problems(&self, from: u64, to: u64) -> Vec<String> {
        self.log_range(from, to)
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_string)
            .collect()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Write then rename, as an editor or config management would.
    pub fn write_manifest(&self, file: &str, text: &str) -> anyhow::Result<()> {
        let tmp = self.manifests.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, self.manifests.join(file))?;
        Ok(())
    }

    pub fn remove_manifest(&self, file: &str) -> anyhow::Result<()> {
        Ok(std::fs::remove_file(self.manifests.join(file))?)
    }

    pub fn pod_name(&self, manifest_name: &str) -> String {
        format!("{manifest_name}-{}", self.name)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop();
    }
}
