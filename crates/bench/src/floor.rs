//! The CRI floor: the sandbox and container calls the kubelet makes for a pod
//! (RunPodSandbox, CreateContainer, StartContainer), made directly by the bench for all
//! pods at once, with the very configs the kubelet would build (same config builders of
//! kubelet-core, same settings loaded from an equivalent config file). Whatever the
//! kubelet takes beyond this is its own overhead.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use kubelet_core::cm::CgroupLayout;
use kubelet_core::runtime::container::{ContainerInputs, ContainerSettings, container_config};
use kubelet_core::runtime::cri::CriClient;
use kubelet_core::runtime::sandbox::{SandboxSettings, sandbox_config};
use kubelet_core::volume;
use kubelet_source::Pod;

pub struct Floor {
    cri: CriClient,
    pub node: String,
    dir: PathBuf,
    sandbox: SandboxSettings,
    container: ContainerSettings,
    cgroups: CgroupLayout,
    image_ref: String,
}

/// One pod started by the floor.
pub struct Started {
    pub uid: String,
    pub sandbox_id: String,
    /// From the start of the run to StartContainer returning.
    pub returned: Duration,
}

impl Floor {
    /// Settings come from a config file like the kubelet's, through kubelet-config.
    pub fn new(
        cri: CriClient,
        endpoint: &str,
        dir: &Path,
        node: &str,
        image_ref: &str,
    ) -> anyhow::Result<Floor> {
        let logs = dir.join("pod-logs");
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("pods"))?;
        std::fs::create_dir_all(&logs)?;
        let config = dir.join("floor.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                 podLogsDir: {}\ncontainerRuntimeEndpoint: {endpoint}\nenableServer: false\n\
                 healthzPort: 0\nreadOnlyPort: 0\n",
                logs.display()
            ),
        )?;
        let args = [
            "kubelet".to_string(),
            format!("--config={}", config.display()),
            format!("--root-dir={}", root.display()),
            format!("--hostname-override={node}"),
        ];
        let loaded =
            kubelet_config::load(args).map_err(|e| anyhow::anyhow!("floor settings: {e}"))?;
        let s = loaded.settings;
        let cgroups = CgroupLayout::detect(
            s.config.cgroups_per_qos,
            &s.config.cgroup_root,
            s.config.cgroup_driver == "systemd",
        );
        Ok(Floor {
            cri,
            node: s.node_name.clone(),
            dir: dir.to_path_buf(),
            sandbox: SandboxSettings {
                node_name: s.node_name.clone(),
                pod_logs_dir: logs,
                cgroups: cgroups.clone(),
                cluster_dns: s.config.cluster_dns.clone(),
                cluster_domain: s.config.cluster_domain.clone(),
                resolv_conf: PathBuf::from(&s.config.resolv_conf),
            },
            container: ContainerSettings {
                node_name: s.node_name.clone(),
                root_dir: root,
                host_ips: kubelet_core::node::host_ips(&s.flags.node_ip),
                cpu_cfs_quota: s.config.cpu_cfs_quota,
                cpu_cfs_period_us: s.config.cpu_cfs_quota_period.as_micros() as i64,
                memory_capacity: kubelet_core::cm::memory_capacity(),
                cluster_domain: s.config.cluster_domain.clone(),
                seccomp_default: s.config.seccomp_default,
                node: Default::default(),
                // What the kubelet adds to every container (swap, OOM group).
                memory: kubelet_core::cm::container_memory::MemoryPolicy::on_host(
                    cgroups.host.is_v2(),
                    kubelet_core::cm::container_memory::SwapBehavior::from_config(
                        &s.config.memory_swap.swap_behavior,
                    ),
                    true,
                    s.config.single_process_oom_kill,
                ),
            },
            cgroups,
            image_ref: image_ref.to_string(),
        })
    }

    /// The static pods the kubelet would make of these manifests (file name, text).
    pub fn pods(&self, manifests: &[(String, String)]) -> anyhow::Result<Vec<Pod>> {
        manifests
            .iter()
            .map(|(file, text)| {
                let origin = self.dir.join(file);
                kubelet_source::file::prepare_manifest(
                    text.as_bytes(),
                    &origin.to_string_lossy(),
                    &self.node,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))
            })
            .collect()
    }

    async fn start_one(&self, pod: &Pod, t0: Instant) -> anyhow::Result<Started> {
        let sandbox_cfg = sandbox_config(pod, 0, &self.sandbox);
        std::fs::create_dir_all(&sandbox_cfg.log_directory)?;
        let volumes = volume::prepare(&self.container.root_dir, pod).map_err(anyhow::Error::msg)?;
        let sandbox_id = self.cri.run_pod_sandbox(sandbox_cfg.clone(), "").await?;
        let spec = pod.spec.as_ref().context("pod without spec")?;
        for c in &spec.containers {
            let inputs = ContainerInputs {
                pod,
                container: c,
                image_ref: &self.image_ref,
                restart_count: 0,
                pod_ips: &[],
                volumes: &volumes,
                image_user: None,
                api: None,
            };
            let config = container_config(&inputs, &self.container).map_err(anyhow::Error::msg)?;
            let id = self
                .cri
                .create_container(&sandbox_id, config, sandbox_cfg.clone())
                .await?;
            self.cri.start_container(&id).await?;
        }
        Ok(Started {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            sandbox_id,
            returned: t0.elapsed(),
        })
    }

    /// Start every pod concurrently.
    pub async fn start(&self, pods: &[Pod], t0: Instant) -> Vec<anyhow::Result<Started>> {
        futures::future::join_all(pods.iter().map(|p| self.start_one(p, t0))).await
    }

    /// StopPodSandbox + RemovePodSandbox for every sandbox concurrently; how long it took
    /// until the last one was removed, and each pod's time.
    pub async fn teardown(&self, started: &[Started]) -> anyhow::Result<(Duration, Vec<Duration>)> {
        let t0 = Instant::now();
        let results = futures::future::join_all(started.iter().map(|s| async move {
            self.cri.stop_pod_sandbox(&s.sandbox_id).await?;
            self.cri.remove_pod_sandbox(&s.sandbox_id).await?;
            Ok::<_, anyhow::Error>(t0.elapsed())
        }))
        .await;
        let total = t0.elapsed();
        let per_pod = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        // Not part of the floor (the kubelet does it too, but containerd does not): the pod
        // cgroups, log dirs and pod dirs the floor's pods left.
        for s in started {
            self.cgroups.remove_pod_cgroups(&s.uid);
            let _ = std::fs::remove_dir_all(volume::pod_dir(&self.container.root_dir, &s.uid));
        }
        let _ = std::fs::remove_dir_all(&self.sandbox.pod_logs_dir);
        let _ = std::fs::create_dir_all(&self.sandbox.pod_logs_dir);
        Ok((total, per_pod))
    }
}
