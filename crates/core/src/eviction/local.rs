//! Local storage limits, enforced by eviction as upstream does when
//! localStorageCapacityIsolation is on (eviction_manager.go localStorageEviction): an
//! emptyDir above its sizeLimit, a pod above the sum of its containers'
//! ephemeral-storage limits, or a container whose writable layer and logs exceed its
//! own limit gets the pod evicted at once. Also the eviction messages, with upstream's
//! wording. Pure.

use k8s_openapi::api::core::v1::Pod;

use super::signals::{Observation, Signal};
use super::stats::PodStats;
use super::thresholds::Threshold;
use kubelet_primitives::quantity;

/// Go's `resource.Quantity` rendering of a byte count (BinarySI, canonical).
pub fn format_bytes(v: i128) -> String {
    kubelet_primitives::Quantity::from_bytes(v).to_string()
}

fn limit_of(c: &k8s_openapi::api::core::v1::Container) -> Option<(i128, String)> {
    let q = c
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("ephemeral-storage")?;
    let v = quantity::parse_value(&q.0).ok()?;
    (v > 0).then(|| (v, q.0.clone()))
}

/// The eviction message for a pod over one of its local storage limits, if it is.
pub fn check(pod: &Pod, stats: &PodStats) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    for v in spec.volumes.iter().flatten() {
        let Some(size) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) else {
            continue;
        };
        let Ok(limit) = quantity::parse_value(&size.0) else {
            continue;
        };
        if let Some(used) = stats.empty_dirs.get(&v.name)
            && limit > 0
            && used.bytes > limit
        {
            return Some(format!(
                "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                v.name, size.0
            ));
        }
    }
    let limits: Vec<(i128, String)> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter_map(limit_of)
        .collect();
    if !limits.is_empty() {
        let total: i128 = spec
            .containers
            .iter()
            .filter_map(limit_of)
            .map(|l| l.0)
            .sum();
        let init_max = spec
            .init_containers
            .iter()
            .flatten()
            .filter_map(limit_of)
            .map(|l| l.0)
            .max()
            .unwrap_or(0);
        let pod_limit = total.max(init_max);
        let used = stats.total.disk_bytes();
        if pod_limit > 0 && used > pod_limit {
            return Some(format!(
                "Pod ephemeral local storage usage exceeds the total limit of containers {}. ",
                format_bytes(pod_limit)
            ));
        }
    }
    for c in &spec.containers {
        let Some((limit, text)) = limit_of(c) else {
            continue;
        };
        let Some(usage) = stats.containers.get(&c.name) else {
            continue;
        };
        if usage.rootfs.bytes + usage.logs.bytes > limit {
            return Some(format!(
                "Container {} exceeded its local ephemeral storage limit {:?}. ",
                c.name, text
            ));
        }
    }
    None
}

/// Upstream evictionMessage: the starved resource, the threshold and what was available,
/// and every container using more than it requested.
pub fn eviction_message(
    pod: &Pod,
    stats: Option<&PodStats>,
    threshold: &Threshold,
    observed: Option<&Observation>,
) -> String {
    let resource = threshold.signal.resource();
    let mut msg = format!("The node was low on resource: {resource}. ");
    if let Some(o) = observed {
        msg += &format!(
            "Threshold quantity: {}, available: {}. ",
            format_quantity(threshold.signal, threshold.value.quantity(o.capacity)),
            format_quantity(threshold.signal, o.available)
        );
    }
    let Some(stats) = stats else {
        return msg;
    };
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        let Some(u) = stats.containers.get(&c.name) else {
            continue;
        };
        let usage = match resource {
            "memory" => u.memory,
            "ephemeral-storage" => u.rootfs.bytes + u.logs.bytes,
            _ => continue,
        };
        let request_text = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .map(|q| q.0.clone());
        let request = request_text
            .as_deref()
            .and_then(|q| quantity::parse_value(q).ok())
            .unwrap_or(0);
        if usage > request {
            msg += &format!(
                "Container {} was using {}, request is {}, has larger consumption of {resource}. ",
                c.name,
                format_bytes(usage),
                request_text.unwrap_or_else(|| "0".into())
            );
        }
    }
    msg
}

fn format_quantity(signal: Signal, v: i128) -> String {
    match signal.resource() {
        "memory" | "ephemeral-storage" => format_bytes(v),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::fs::Usage;
    use crate::eviction::stats::ContainerUsage;
    use crate::eviction::thresholds::Value;
    use k8s_openapi::api::core::v1::{
        Container, EmptyDirVolumeSource, PodSpec, ResourceRequirements, Volume,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn container(name: &str, limit: Option<&str>) -> Container {
        Container {
            name: name.into(),
            resources: limit.map(|l| ResourceRequirements {
                limits: Some(BTreeMap::from([(
                    "ephemeral-storage".to_string(),
                    Quantity(l.into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn stats(per_container: &[(&str, i128)], empty_dirs: &[(&str, i128)]) -> PodStats {
        let mut s = PodStats::default();
        for (name, bytes) in per_container {
            s.containers.insert(
                name.to_string(),
                ContainerUsage {
                    rootfs: Usage {
                        bytes: *bytes,
                        inodes: 1,
                    },
                    ..Default::default()
                },
            );
            s.total.rootfs_bytes += bytes;
        }
        for (name, bytes) in empty_dirs {
            s.empty_dirs.insert(
                name.to_string(),
                Usage {
                    bytes: *bytes,
                    inodes: 1,
                },
            );
            s.total.volumes_bytes += bytes;
        }
        s
    }

    #[test]
    fn quantities_render_like_go() {
        assert_eq!(format_bytes(100 << 20), "100Mi");
        assert_eq!(format_bytes(3 << 30), "3Gi");
        assert_eq!(format_bytes(1536), "1536");
        assert_eq!(format_bytes(0), "0");
        assert_eq!(format_bytes(123), "123");
        // Below 1024 upstream switches to decimal suffixes.
        assert_eq!(format_bytes(1000), "1k");
    }

    #[test]
    fn empty_dir_over_size_limit() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![container("main", None)],
                volumes: Some(vec![Volume {
                    name: "data".into(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        size_limit: Some(Quantity("10Mi".into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check(&pod, &stats(&[], &[("data", 5 << 20)])), None);
        assert_eq!(
            check(&pod, &stats(&[], &[("data", 20 << 20)])).as_deref(),
            Some("Usage of EmptyDir volume \"data\" exceeds the limit \"10Mi\". ")
        );
    }

    #[test]
    fn pod_and_container_ephemeral_limits() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![
                    container("writer", Some("10Mi")),
                    container("idle", Some("100Mi")),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            check(&pod, &stats(&[("writer", 30 << 20), ("idle", 0)], &[])).as_deref(),
            Some("Container writer exceeded its local ephemeral storage limit \"10Mi\". ")
        );
        assert_eq!(
            check(
                &pod,
                &stats(&[("writer", 5 << 20), ("idle", 107 << 20)], &[])
            )
            .as_deref(),
            Some("Pod ephemeral local storage usage exceeds the total limit of containers 110Mi. ")
        );
        assert_eq!(check(&pod, &stats(&[("writer", 1 << 20)], &[])), None);
    }

    #[test]
    fn message_names_threshold_and_offending_containers() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![container("hog", None)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut s = PodStats::default();
        s.containers.insert(
            "hog".into(),
            ContainerUsage {
                memory: 600 << 20,
                ..Default::default()
            },
        );
        let t = Threshold {
            signal: Signal::MemoryAvailable,
            value: Value::Quantity(100 << 20),
            grace_period: Duration::ZERO,
            min_reclaim: None,
        };
        let o = Observation {
            available: 50 << 20,
            capacity: 1 << 30,
        };
        assert_eq!(
            eviction_message(&pod, Some(&s), &t, Some(&o)),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container hog was using 600Mi, request is 0, has larger consumption of memory. "
        );
    }
}
